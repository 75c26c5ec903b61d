"""Benchmark harness: time and peak memory of one call, measured in a forked child.

Every benchmark script (``benchmarks/bench_*.py``) measures our operation and a peer on the
same data in the same run, then calls :func:`record`. ``make bench`` runs every script and
``benchmarks/run_all.py`` writes ``benchmarks/RESULTS.md`` from ``benchmarks/results/*.json``.

Peak memory is the growth of the child's peak resident set over its resident set at the
start of the call (``ru_maxrss`` minus ``VmRSS`` before), so data prepared before the call is
not counted. Each measurement runs in a fresh ``fork`` so peaks do not leak between calls.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).with_name("results")


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(conn, fn, args, kwargs, repeat):
    try:
        before = _rss_mb()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(*args, **kwargs)
            times.append(time.perf_counter() - t0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn.send({"seconds": min(times), "peak_mb": max(peak - before, 0.0), "error": None})
    except BaseException as exc:  # report, never hang the parent
        conn.send({"seconds": None, "peak_mb": None,
                   "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}"})
    finally:
        conn.close()


def measure(fn: Callable[..., Any], *args: Any, repeat: int = 1, timeout: float = 900,
            **kwargs: Any) -> dict:
    """Run ``fn(*args, **kwargs)`` in a forked child and return seconds and peak memory.

    Parameters
    ----------
    fn : callable
        The operation. Its inputs should be prepared before (they are inherited by fork).
    repeat : int, default=1
        Calls in the child; the fastest is reported (later calls may be warm).
    timeout : float, default=900
        Seconds before the child is killed and the measurement reported as timed out.

    Returns
    -------
    dict
        ``seconds`` (float or None), ``peak_mb`` (float or None), ``error`` (str or None).
    """
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs, repeat))
    proc.start()
    child.close()
    if parent.poll(timeout):
        out = parent.recv()
    else:
        proc.kill()
        out = {"seconds": None, "peak_mb": None, "error": f"timed out after {timeout:.0f} s"}
    proc.join(10)
    return out


def record(bench: str, rows: list[dict]) -> Path:
    """Write the rows of one benchmark script to ``benchmarks/results/<bench>.json``.

    Each row: ``operation``, ``size``, ``ours`` (a :func:`measure` result), ``peer`` (name),
    ``peer_result`` (a :func:`measure` result or None), ``target`` (text), ``notes``.
    """
    RESULTS_DIR.mkdir(exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = RESULTS_DIR / f"{bench}.json"
    path.write_text(json.dumps({"bench": bench, "meta": meta, "rows": rows}, indent=2))
    return path
