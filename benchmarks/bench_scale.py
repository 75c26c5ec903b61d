"""Scale benchmark (issue 15): every library call of the three jobs at 1M, 5M and 10M items.

The projects are the project's own generator's (``workbench synth DIR --items N
--annotators 50 --labels-per-item 3 --metadata 10``: 3 labels per item from 50 annotators, 10
classes, 10 metadata columns, one run with probabilities), so N items carry 3N annotations.
A project ``p<N>`` is taken read-only from ``WORKBENCH_BENCH_SCALE_DATA`` (default
``/tmp/scale``) when it is there, else written once under ``WORKBENCH_BENCH_SCALE_WORK``
(default ``<tmp>/workbench-bench-scale``). Every implementation opens its own scratch copy
(symbolic links to the data files), so whatever a call writes to the project's state folder
(``.workbench/``) never reaches the source project.

Each call runs in ONE FRESH PROCESS (this script with ``--driver``): the process imports
workbench, loads what the call needs (not timed: ``open_project``, and ``project.errors()``
for the slicing calls), then times the call itself. Reported per call:

- ``seconds``: wall time of the call; ``cpu_seconds``: its user + system CPU time (the
  machine is shared: wall time over CPU time shows the load);
- ``process_peak_mb``: the process's peak resident set during the call (the peak is reset
  just before it through ``/proc/self/clear_refs``), data loaded before included: what a
  fresh kernel needs to make the call;
- ``peak_mb``: that peak minus the resident set just before the call (the harness's
  convention: the call's own growth), and ``bytes_per_annotation`` = ``peak_mb`` / annotations.

Implementations, measured in the same run on the same files:

- ``current``: the checkout this script belongs to (its working tree), or the committed
  ``workbench/`` of ``WORKBENCH_BENCH_SCALE_CURRENT`` (a commit) when that is set;
- ``baseline``: the previous implementation, ``workbench/`` of commit
  ``WORKBENCH_BENCH_SCALE_BASELINE`` (default ``225d2a4``, before issue 15) extracted with
  ``git archive`` and put first on ``PYTHONPATH``; run at sizes up to 5M unless asked, and a
  call whose memory, extrapolated linearly from a smaller size, would exceed the cap is
  skipped with that estimate;
- ``crowdkit``: crowd-kit's ``DawidSkene(n_iter=100)`` on the same annotations (the peer of
  ``consensus(method='dawid_skene')``), up to the largest size it completes within
  ``WORKBENCH_BENCH_SCALE_PEER_TIMEOUT`` seconds (default 600).

``workbench precompute`` and reading its preheated results are measured when the checkout
has them (``workbench.results``); otherwise the rows say "not available".

Every process at 2M items or more runs under ``flock WORKBENCH_BENCH_SCALE_LOCK`` (default
``/tmp/wb-bigmem.lock``), and a watchdog kills a process whose resident set (with its
children) passes ``WORKBENCH_BENCH_SCALE_MEM_CAP_GB`` (default 15) or which runs longer than
``WORKBENCH_BENCH_SCALE_TIMEOUT`` seconds (default 900) once it holds the lock.

Targets (issue 15, goal 1): at 10M items every call within 60 s and under 12 GB peak.

Usage::

    python benchmarks/bench_scale.py                       # 1M and 5M, all implementations
    WORKBENCH_BENCH_SCALE_10M=1 python benchmarks/bench_scale.py      # and 10M
    python benchmarks/bench_scale.py --impl baseline,crowdkit --sizes 1000000,5000000
    python benchmarks/bench_scale.py --quick               # 100k items, results to the work folder

Results merge into ``benchmarks/results/scale.json`` by (implementation, size, call), so a
run of one implementation or size keeps the others' figures; ``benchmarks/run_all.py`` turns
them into the "scale" section of ``RESULTS.md`` (:func:`markdown`).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "scale.json"

TARGET_SECONDS = 60.0
TARGET_GB = 12.0
N_ANNOTATORS, LABELS_PER_ITEM, N_METADATA = 50, 3, 10
COLUMNS = [f"meta_{i}" for i in range(N_METADATA)]
MARK = "@@scale "

#: the dashboards of ``workbench.results.DASHBOARDS`` (what each notebook warms at start)
DASHBOARDS = ("overview", "errors", "disagreements", "relabel", "vendors", "data")
#: calls that read what ``precompute`` wrote (the state folder is kept for them)
READS_CACHE = ("preheated", *(f"warm_{d}" for d in DASHBOARDS))

#: call name -> (label in the tables, implementations that run it)
CALLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "open_cold": ("open_project (cold)", ("current", "baseline")),
    "open_again": ("open_project (again, state folder kept)", ("current", "baseline")),
    "errors": ("project.errors()", ("current", "baseline")),
    "slice_metrics": ("slice_metrics, 10 columns", ("current", "baseline")),
    "discover_slices": ("discover_slices(max_order=2), 10 columns", ("current", "baseline")),
    "agreement_summary": ("agreement_summary", ("current", "baseline")),
    "consensus_majority": ("consensus(method='majority')", ("current", "baseline")),
    "consensus_dawid_skene": ("consensus(method='dawid_skene')", ("current", "baseline")),
    "annotator_quality": ("annotator_quality", ("current", "baseline")),
    "label_issues": ("label_issues(project)", ("current", "baseline")),
    "precompute": ("workbench precompute (CLI, all derived results)", ("current", "baseline")),
    "preheated": ("read every preheated result (results.precompute again)",
                  ("current", "baseline")),
    **{f"warm_{d}": (f"dashboard {d!r} ready, preheated (open, warm, build the app)",
                     ("current",))
       for d in DASHBOARDS},
    "crowdkit_dawid_skene": ("crowd-kit DawidSkene(n_iter=100).fit_predict",
                             ("crowdkit",)),
}
#: the peer of each call in the tables (besides the previous implementation)
PEER_OF = {"consensus_dawid_skene": "crowdkit_dawid_skene"}


# ----------------------------------------------------------------------------- driver side

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    """Reset the process's peak resident set (VmHWM); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _frame_digest(frame) -> str:
    """A digest of a frame's values (floats rounded to 6 places), to compare implementations."""
    import numpy as np
    import pandas as pd

    h = hashlib.sha256(repr((list(frame.columns), len(frame))).encode())
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            s = pd.Series(s.to_numpy(dtype=float, na_value=np.nan)).round(6)
        else:  # strings, categories, objects: compared by their text (missing as None)
            s = pd.Series(s.astype(object).where(s.notna(), None).to_numpy()).astype(str)
        v = pd.util.hash_pandas_object(s, index=False).to_numpy()
        h.update(np.asarray(v.sum(dtype=np.uint64)).tobytes())
    return h.hexdigest()[:16]


def _summary(call: str, result, root: Path) -> dict:
    """Small facts about a call's result (computed after the measurement, not timed)."""
    import numpy as np
    import pandas as pd

    if result is None:
        return {}
    if isinstance(result, str):  # a command's output
        return {"output": result.strip().splitlines()[-30:]}
    if isinstance(result, dict):
        return {"result": {k: (round(float(v), 6) if isinstance(v, (int, float, np.number))
                               else str(v)) for k, v in result.items()}}
    if call.startswith("open"):
        return {"n_items": len(result.items), "n_annotations": len(result.annotations)}
    if call in READS_CACHE:  # precompute's report: one row per result and its status
        return {"statuses": result["status"].value_counts().to_dict(),
                "failed": result.loc[result["status"] == "failed", "result"].tolist()[:10]}
    if isinstance(result, pd.Series):
        result = result.rename("label").rename_axis("item_id").reset_index()
    out = {"rows": len(result)}
    if call in ("consensus_majority", "consensus_dawid_skene", "crowdkit_dawid_skene"):
        truth = pd.read_parquet(root / "truth.parquet")
        got = result.set_index("item_id")["label"].astype(str)
        joined = truth.set_index("item_id")["true_label"].astype(str).reindex(got.index)
        out["accuracy_vs_truth"] = round(float((got.to_numpy() == joined.to_numpy()).mean()), 6)
        work = os.environ.get("WORKBENCH_BENCH_SCALE_LABELS")
        if work:  # the labels, for comparing the peer's with ours
            pd.DataFrame({"item_id": got.index.astype(str), "label": got.to_numpy()}).to_parquet(
                work)
    if call == "crowdkit_dawid_skene":
        return out
    if hasattr(result, "columns"):
        out["digest"] = _frame_digest(result)
    return out


def _prepare(call: str, root: Path):
    """Load what ``call`` needs (not timed); return the zero-argument call to time."""
    if call == "crowdkit_dawid_skene":
        import pandas as pd
        from crowdkit.aggregation import DawidSkene

        ann = pd.read_parquet(root / "annotations.parquet",
                              columns=["item_id", "annotator", "label"])
        ann.columns = ["task", "worker", "label"]
        return lambda: DawidSkene(n_iter=100).fit_predict(ann)
    if call == "precompute":
        return _prepare_precompute(root)
    import workbench as wb
    import workbench.project  # noqa: F401  (imports pandas, pyarrow: not part of the call)

    if call in ("open_cold", "open_again"):
        return lambda: wb.open_project(root)
    if call == "preheated":
        results = _results_module()
        project = wb.open_project(root)
        return lambda: results.precompute(project, progress=False)
    if call in READS_CACHE:
        return _prepare_dashboard(root, call[len("warm_"):])
    project = wb.open_project(root)
    if call == "errors":
        return project.errors
    if call in ("slice_metrics", "discover_slices"):
        errors = project.errors()
        if call == "slice_metrics":
            return lambda: wb.slice_metrics(errors, COLUMNS)
        return lambda: wb.discover_slices(errors, COLUMNS, max_order=2)
    ann = project.annotations
    if call == "agreement_summary":
        return lambda: wb.agreement_summary(ann)
    if call == "consensus_majority":
        return lambda: wb.consensus(ann, "majority")
    if call == "consensus_dawid_skene":
        return lambda: wb.consensus(ann, "dawid_skene")
    if call == "annotator_quality":
        return lambda: wb.annotator_quality(ann)
    if call == "label_issues":
        return lambda: wb.label_issues(project)
    raise ValueError(f"unknown call {call!r}; expected one of {sorted(CALLS)}")


#: the app each dashboard notebook builds (notebooks/0*_*.ipynb), by workbench.widgets name
APPS = {"overview": "OverviewDashboard", "errors": "ErrorExplorer",
        "disagreements": "DisagreementExplorer", "relabel": "RelabelQueueView",
        "vendors": "VendorsAndGuidelines", "data": "DataExplorer"}


def _prepare_dashboard(root: Path, dashboard: str):
    """What a served dashboard kernel does once a viewer opens the page, as one call.

    Not timed (the kernel does it while it waits for a viewer): importing workbench and
    ``workbench.widgets.preload()``. Timed: the notebook's cells after
    ``wait_for_viewer()``, that is ``open_project``, ``results.warm`` and building the app.
    The app is kept until the measurement is taken; the call returns warm's report.
    """
    import workbench as wb

    results = _results_module()
    preload = getattr(wb.widgets, "preload", None)
    if preload is not None:
        preload()
    app_class = getattr(wb.widgets, APPS[dashboard])
    kept = []

    def run():
        project = wb.open_project(root)
        report = results.warm(project, dashboard)
        kept.append(app_class(project))
        return report
    return run


class NotAvailable(Exception):
    """The checkout has no such feature (recorded as "not available", not as a failure)."""


def _results_module():
    try:
        import workbench.results as results
    except ImportError as exc:
        raise NotAvailable(f"no workbench.results in this checkout ({exc})") from None
    return results


def _prepare_precompute(root: Path):
    """``workbench precompute ROOT`` in a child process; the driver reports its peak."""
    import importlib.util

    if importlib.util.find_spec("workbench.results") is None:
        raise NotAvailable("no workbench.results / `workbench precompute` in this checkout")
    cmd = [sys.executable, "-c", "import sys; from workbench.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "precompute", str(root)]

    def run():
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"workbench precompute exited {proc.returncode}: "
                               f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
        return proc.stdout
    return run


def driver(call: str, root: Path) -> int:
    """Measure one call in this (fresh) process; print the result as one JSON line."""
    os.environ.setdefault("WORKBENCH_PROGRESS", "0")
    print(MARK + json.dumps({"started": True}), flush=True)
    out: dict = {"call": call, "error": None}
    try:
        t0 = time.perf_counter()
        fn = _prepare(call, root)
        out["load_seconds"] = round(time.perf_counter() - t0, 3)
        if "workbench" in sys.modules:
            out["workbench_file"] = sys.modules["workbench"].__file__
        gc.collect()
        before_kb = _status_kb("VmRSS")
        exact = _reset_peak()
        c0, t0 = os.times(), time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        c1 = os.times()
        peak_kb = _status_kb("VmHWM") if exact else _ru_maxrss_kb()
        if call == "precompute":  # the child's own peak
            import resource

            peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            before_kb = 0
        out.update(seconds=seconds,
                   cpu_seconds=round((c1.user - c0.user) + (c1.system - c0.system)
                                     + (c1.children_user - c0.children_user)
                                     + (c1.children_system - c0.children_system), 2),
                   rss_before_mb=round(before_kb / 1024, 1),
                   process_peak_mb=round(peak_kb / 1024, 1),
                   peak_mb=round(max(peak_kb - before_kb, 0) / 1024, 1),
                   peak_exact=exact)
        try:
            out.update(_summary(call, result, root))
        except Exception as exc:  # a fact about the result, never the measurement
            out["summary_error"] = f"{type(exc).__name__}: {exc}"
    except NotAvailable as exc:
        out.update(seconds=None, peak_mb=None, not_available=str(exc))
    except BaseException as exc:  # report, never hang the parent
        import traceback

        out.update(seconds=None, peak_mb=None,
                   error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}")
    print(MARK + json.dumps(out), flush=True)
    return 0


def _ru_maxrss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ----------------------------------------------------------------------------- parent side

def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _work() -> Path:
    return Path(os.environ.get("WORKBENCH_BENCH_SCALE_WORK")
                or Path(tempfile.gettempdir()) / "workbench-bench-scale")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def source_project(n: int) -> Path:
    """The synthetic project of ``n`` items: reused when present, else written once."""
    for base in (Path(os.environ.get("WORKBENCH_BENCH_SCALE_DATA") or "/tmp/scale"), _work()):
        root = base / f"p{n}"
        if (root / "annotations.parquet").exists() and (root / "workbench.toml").exists():
            return root
    root = _work() / f"p{n}"
    root.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", "import sys; from workbench.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "synth", str(root), "--items", str(n),
           "--annotators", str(N_ANNOTATORS), "--labels-per-item", str(LABELS_PER_ITEM),
           "--metadata", str(N_METADATA)]
    print(f"  writing {root} ...", flush=True)
    subprocess.run(_locked(cmd, n), check=True, cwd=REPO,
                   env=dict(os.environ, WORKBENCH_PROGRESS="0"))
    return root


def scratch(source: Path, impl: str, n: int) -> Path:
    """A folder of symbolic links to ``source``'s files: state written there stays there."""
    root = _work() / f"run-{impl}-{n}"
    root.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        link = root / f.name
        if f.is_file() and not link.exists():
            link.symlink_to(f)
    return root


def code_tree(ref: str) -> Path:
    """``workbench/`` of commit ``ref``, extracted once (``git archive``)."""
    full = _git("rev-parse", "--short", ref)
    root = _work() / f"code-{full}"
    if not (root / "workbench" / "__init__.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", full, "workbench"], cwd=REPO,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


def _locked(cmd: list[str], n: int) -> list[str]:
    lock = os.environ.get("WORKBENCH_BENCH_SCALE_LOCK", "/tmp/wb-bigmem.lock")
    if n >= _env_int("WORKBENCH_BENCH_SCALE_LOCK_FROM", 2_000_000) and lock \
            and shutil.which("flock"):
        return ["flock", lock, *cmd]
    return cmd


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_driver(call: str, root: Path, n: int, *, pythonpath: Path | None, timeout: float,
               mem_cap_gb: float, labels: Path | None = None) -> dict:
    """Run ``--driver call root`` in a fresh process (under the lock at >= 2M items)."""
    env = dict(os.environ, WORKBENCH_PROGRESS="0")
    env.pop("WORKBENCH_BENCH_SCALE_LABELS", None)
    if labels is not None:
        env["WORKBENCH_BENCH_SCALE_LABELS"] = str(labels)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    cmd = _locked([sys.executable, str(Path(__file__).resolve()), "--driver", call,
                   str(root)], n)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=root, start_new_session=True)
    lines: list[str] = []
    err: list[str] = []
    started = threading.Event()

    def read_out():
        for line in proc.stdout:
            if line.startswith(MARK):
                lines.append(line[len(MARK):])
                started.set()

    def read_err():
        for line in proc.stderr:
            err.append(line)
            del err[:-40]

    threads = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    t_start, watched_peak, killed = None, 0.0, None
    load = os.getloadavg()[0]
    while proc.poll() is None:
        time.sleep(0.5)
        if started.is_set() and t_start is None:
            t_start, load = time.time(), os.getloadavg()[0]
        if t_start is None:
            continue
        rss = _tree_rss_mb(proc.pid)
        watched_peak = max(watched_peak, rss)
        if rss > mem_cap_gb * 1024:
            killed = f"killed: resident set passed the {mem_cap_gb:g} GB cap"
        elif time.time() - t_start > timeout:
            killed = f"killed: timed out after {timeout:.0f} s"
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    for t in threads:
        t.join(5)
    result = json.loads(lines[-1]) if len(lines) > 1 else {"call": call}
    if killed or "seconds" not in result:
        result.update(seconds=None, peak_mb=None,
                      error=killed or f"exit {proc.returncode}: {''.join(err)[-1500:]}")
    result.update(watched_peak_mb=round(watched_peak, 1), load_average=round(load, 2),
                  when=time.strftime("%Y-%m-%d %H:%M:%S"))
    return result


def _load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"bench": "scale", "meta": {}, "rows": [], "measurements": []}


def _save(data: dict, path: Path) -> None:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    data["meta"] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                               f"{platform.python_version()}, {ram:.0f} GB",
                    "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    if path.exists():  # another run may have written meanwhile: keep its other figures
        ours = {(m["impl"], m["n_items"], m["call"]) for m in data["measurements"]}
        disk = json.loads(path.read_text()).get("measurements", [])
        data["measurements"] += [m for m in disk
                                 if (m["impl"], m["n_items"], m["call"]) not in ours]
    data["rows"] = rows(data["measurements"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _put(data: dict, m: dict) -> None:
    key = (m["impl"], m["n_items"], m["call"])
    data["measurements"] = [x for x in data["measurements"]
                            if (x["impl"], x["n_items"], x["call"]) != key] + [m]


def _find(measurements: list[dict], impl: str, n: int, call: str) -> dict | None:
    for m in measurements:
        if (m["impl"], m["n_items"], m["call"]) == (impl, n, call):
            return m
    return None


def _estimate(data: dict, impl: str, n: int, call: str) -> tuple[float, float] | None:
    """(GB, s) of ``call`` at ``n``, linear from the largest smaller size measured."""
    done = [m for m in data["measurements"] if m["impl"] == impl and m["call"] == call
            and m.get("process_peak_mb") and m["n_items"] < n]
    if not done:
        return None
    m = max(done, key=lambda x: x["n_items"])
    f = n / m["n_items"]
    return m["process_peak_mb"] * f / 1024, (m["seconds"] or 0) * f


def measure_size(data: dict, impl: str, n: int, calls: list[str], out: Path) -> None:
    """Run every call of ``impl`` at ``n`` items, each in a fresh process."""
    timeout = _env_int("WORKBENCH_BENCH_SCALE_TIMEOUT", 900)
    cap = float(os.environ.get("WORKBENCH_BENCH_SCALE_MEM_CAP_GB") or 15)
    source = source_project(n)
    root = scratch(source, impl, n)
    pythonpath, version = None, None
    if impl == "baseline":
        ref = os.environ.get("WORKBENCH_BENCH_SCALE_BASELINE", "225d2a4")
        pythonpath, version = code_tree(ref), _git("rev-parse", "--short", ref)
    elif impl == "current" and os.environ.get("WORKBENCH_BENCH_SCALE_CURRENT"):
        ref = os.environ["WORKBENCH_BENCH_SCALE_CURRENT"]
        pythonpath, version = code_tree(ref), _git("rev-parse", "--short", ref)
    elif impl == "current":
        dirty = _git("status", "--porcelain", "--", "workbench")
        version = _git("rev-parse", "--short", "HEAD") + ("+uncommitted" if dirty else "")
    else:
        import importlib.metadata as md

        version = "crowd-kit " + md.version("crowd-kit")
    state = root / ".workbench"
    snapshot: set[str] | None = None
    for call in calls:
        if impl not in CALLS[call][1]:
            continue
        if call == "open_cold":
            shutil.rmtree(state, ignore_errors=True)
        elif snapshot is not None and call not in READS_CACHE:
            for f in _state_files(state) - snapshot:  # no call reuses another's results
                (state / f).unlink(missing_ok=True)
        est = _estimate(data, impl, n, call)
        pre = _find(data["measurements"], impl, n, "precompute")
        if call in READS_CACHE and pre is not None and pre.get("error"):
            m = {"seconds": None, "peak_mb": None,
                 "skipped": "skipped: precompute did not complete ("
                            + pre["error"].splitlines()[0][:80] + ")"}
        elif impl == "baseline" and est and est[0] > cap:
            m = {"seconds": None, "peak_mb": None,
                 "skipped": f"skipped: would need ~{est[0]:.0f} GB (linear from the largest "
                            f"size measured), over the {cap:g} GB cap"}
        else:
            timeout_ = (_env_int("WORKBENCH_BENCH_SCALE_PEER_TIMEOUT", 600)
                        if impl == "crowdkit" else 2 * timeout if call == "precompute"
                        else timeout)
            labels = (_work() / f"labels-{impl}-{n}-{call}.parquet"
                      if call in ("consensus_dawid_skene", "crowdkit_dawid_skene") else None)
            before = _state_files(state)
            m = run_driver(call, root, n, pythonpath=pythonpath, timeout=timeout_,
                           mem_cap_gb=cap, labels=labels)
            new = sorted(_state_files(state) - before)
            if new:
                m["state_written"] = new[:20]
            if labels is not None and labels.exists():
                m["labels_file"] = str(labels)
        m.update(impl=impl, n_items=n, n_annotations=n * LABELS_PER_ITEM, call=call,
                 version=version)
        if call == "open_again" or (call == "open_cold" and "open_again" not in calls):
            snapshot = _state_files(state)
        _put(data, m)
        _save(data, out)
        shown = {k: m.get(k) for k in ("seconds", "cpu_seconds", "process_peak_mb", "peak_mb",
                                       "error", "skipped", "not_available") if m.get(k)}
        print(f"  {impl} {n:,} {call}: {shown}", flush=True)


def _not_run(data: dict, n: int, calls: list[str], limit: int) -> None:
    """Rows for the previous implementation above its size limit: the linear estimate."""
    for call in calls:
        done = _find(data["measurements"], "baseline", n, call)
        if "baseline" not in CALLS[call][1] or (done and not done.get("skipped")):
            continue
        est = _estimate(data, "baseline", n, call)
        text = f"not run above {limit:,} items"
        if est:
            text += f": would need ~{est[0]:.0f} GB and ~{est[1]:.0f} s (linear)"
        _put(data, {"seconds": None, "peak_mb": None, "impl": "baseline", "n_items": n,
                    "n_annotations": n * LABELS_PER_ITEM, "call": call, "skipped": text})


def _state_files(state: Path) -> set[str]:
    if not state.exists():
        return set()
    return {str(p.relative_to(state)) for p in state.rglob("*") if p.is_file()}


def compare_labels(data: dict, n: int) -> None:
    """Share of items where crowd-kit's Dawid-Skene label equals ours (current, else baseline)."""
    import pandas as pd

    peer = _find(data["measurements"], "crowdkit", n, "crowdkit_dawid_skene")
    if not peer or not peer.get("labels_file") or not Path(peer["labels_file"]).exists():
        return
    for impl in ("current", "baseline"):
        ours = _find(data["measurements"], impl, n, "consensus_dawid_skene")
        if ours and ours.get("labels_file") and Path(ours["labels_file"]).exists():
            a = pd.read_parquet(ours["labels_file"]).set_index("item_id")["label"]
            b = pd.read_parquet(peer["labels_file"]).set_index("item_id")["label"]
            b = b.reindex(a.index)
            peer.setdefault("same_label_as", {})[impl] = round(
                float((a.to_numpy() == b.to_numpy()).mean()), 6)


# ----------------------------------------------------------------------------- tables

def _ours(m: dict | None) -> dict:
    if m is None:
        return {"seconds": None, "peak_mb": None, "error": None}
    return {"seconds": m.get("seconds"), "peak_mb": m.get("peak_mb"),
            "process_peak_mb": m.get("process_peak_mb"), "error": m.get("error")}


def _target(call: str) -> tuple[float, float] | None:
    """(seconds, GB) a call must stay under: issue 15's goals 1 (calls) and 2 (dashboards)."""
    if call.startswith("warm_"):
        return 5.0, TARGET_GB
    if call in ("precompute", "preheated"):
        return None  # many results in one go: measured, no target of its own
    return TARGET_SECONDS, TARGET_GB


def _verdict(m: dict | None, call: str = "") -> str:
    target = _target(call)
    if target is None:
        return "-"
    if not m or m.get("seconds") is None:
        if m and m.get("skipped"):
            return "not measured"
        return "-" if not m or m.get("not_available") else "fail"
    mem_ok = (m.get("process_peak_mb") or 0) < target[1] * 1024
    if m["seconds"] < target[0] and mem_ok:
        return "pass"
    if mem_ok and (m.get("cpu_seconds") or 0) < target[0]:
        return f"fail (wall; cpu {m['cpu_seconds']:.0f} s)"
    return "fail"


def rows(measurements: list[dict]) -> list[dict]:
    """The harness's row format (``operation``, ``size``, ``ours``, ``peer``...), one per call
    and size: ours = the current implementation, peer = the previous one (crowd-kit for
    Dawid-Skene when it ran at that size)."""
    out = []
    sizes = sorted({m["n_items"] for m in measurements})
    for n in sizes:
        for call, (label, impls) in CALLS.items():
            if "current" not in impls:
                continue
            cur = _find(measurements, "current", n, call)
            base = _find(measurements, "baseline", n, call)
            if cur is None and base is None:
                continue
            peer_call = PEER_OF.get(call)
            peer = _find(measurements, "crowdkit", n, peer_call) if peer_call else None
            peer_m, peer_name = ((peer, "crowd-kit DawidSkene") if peer and peer.get("seconds")
                                 else (base, f"previous ({(base or {}).get('version')})"))
            notes = []
            for who, m in (("ours", cur), ("previous", base), ("crowd-kit", peer)):
                if m and (m.get("skipped") or m.get("not_available")):
                    notes.append(f"{who}: {m.get('skipped') or m.get('not_available')}")
            out.append({"operation": label,
                        "size": f"{n:,} items, {n * LABELS_PER_ITEM:,} annotations",
                        "ours": _ours(cur), "peer": peer_name, "peer_result": _ours(peer_m),
                        "target": f"< {TARGET_SECONDS:.0f} s, < {TARGET_GB:.0f} GB peak "
                                  "(at 10M)",
                        "notes": "; ".join(notes), "pass": _verdict(cur, call)})
    return out


def _s(m: dict | None) -> str:
    if m is None:
        return "not run"
    if m.get("not_available"):
        return "not available"
    if m.get("skipped"):
        return m["skipped"]
    if m.get("seconds") is None:
        return (m.get("error") or "failed").splitlines()[0][:80]
    cpu = f" (cpu {m['cpu_seconds']:.1f})" if m.get("cpu_seconds") is not None else ""
    return f"{m['seconds']:.1f} s{cpu}"


def _gb(mb) -> str:
    return "-" if mb is None else f"{mb / 1024:.2f}"


def _ratio(a: dict | None, b: dict | None) -> str:
    """Wall-time ratio, and the CPU-time ratio (steadier on a shared machine)."""
    if a and b and a.get("seconds") and b.get("seconds"):
        out = f"{a['seconds'] / b['seconds']:.2f}x"
        if a.get("cpu_seconds") and b.get("cpu_seconds"):
            out += f" (cpu {a['cpu_seconds'] / b['cpu_seconds']:.2f}x)"
        return out
    return "-"


def markdown(data: dict, results_dir: Path | None = None) -> list[str]:
    """The "scale" section of RESULTS.md: one table per size, the bytes per annotation, the
    100M out-of-core figures of ``engine.json``."""
    ms = data.get("measurements", [])
    lines = [
        "## scale", "",
        f"Machine: {data['meta'].get('machine')}; written {data['meta'].get('when')} "
        "(`benchmarks/bench_scale.py`, raw figures in `benchmarks/results/scale.json`). "
        "Project: `workbench synth --items N --annotators 50 --labels-per-item 3 "
        "--metadata 10` (3N annotations, 10 classes, one run with probabilities). Each call "
        "in one fresh process, its inputs loaded before the clock starts; **s** = wall time "
        "of the call (in brackets its CPU seconds, all threads: the 2 cores are shared, so "
        "wall well above CPU means a loaded machine; the load average when the call started "
        "is in the notes), **peak GB** = the process's peak resident set during "
        "the call (data loaded before included), **growth** = that peak minus the resident "
        "set before the call, **B/ann** = growth per annotation. **vs previous** = our "
        "seconds over the previous implementation's (below 1 = faster; CPU ratio in brackets). "
        f"**target**: each call < {TARGET_SECONDS:.0f} s and < {TARGET_GB:.0f} GB peak (goal "
        "1, set at 10M items), a preheated dashboard < 5 s (goal 2); `fail (wall; cpu N s)` "
        "= over the time on the wall clock but not in CPU time.", ""]
    for n in sorted({m["n_items"] for m in ms}):
        cur_version = ", ".join(sorted({m["version"] for m in ms if m["n_items"] == n
                                        and m["impl"] == "current" and m.get("version")
                                        and m.get("seconds")})) or "-"
        base_version = ", ".join(sorted({m["version"] for m in ms if m["n_items"] == n
                                         and m["impl"] == "baseline" and m.get("version")
                                         and m.get("seconds")})) or "-"
        lines += [f"### {n:,} items, {n * LABELS_PER_ITEM:,} annotations", "",
                  f"Ours: {cur_version} (each row's commit is in the raw figures); "
                  f"previous: {base_version}.", "",
                  "| call | s | peak GB | growth GB | B/ann | previous s | "
                  "previous peak GB | vs previous | peer | peer s | peer peak GB | vs peer "
                  "| target | notes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
                  "| --- | --- | --- |"]
        for call, (label, impls) in CALLS.items():
            if "current" not in impls:
                continue
            cur = _find(ms, "current", n, call)
            base = _find(ms, "baseline", n, call)
            peer = (_find(ms, "crowdkit", n, PEER_OF[call]) if call in PEER_OF else None)
            if cur is None and base is None:
                continue
            bpa = (f"{cur['peak_mb'] * 2**20 / (n * LABELS_PER_ITEM):.0f}"
                   if cur and cur.get("peak_mb") is not None else "-")
            notes = []
            for who, m in (("ours", cur), ("previous", base)):
                if m and m.get("error") and m.get("seconds") is None:
                    notes.append(f"{who} failed: {m['error'].splitlines()[0][:120]}")
            loads = [f"{m['load_average']:.0f}" for m in (cur, base)
                     if m and m.get("load_average") is not None and m.get("seconds")]
            if loads:
                notes.append("load average " + " / ".join(loads))
            for who, m in (("ours", cur), ("previous", base), ("crowd-kit", peer)):
                if m and m.get("accuracy_vs_truth") is not None:
                    notes.append(f"{who} accuracy vs planted truth "
                                 f"{m['accuracy_vs_truth']:.4f}")
            if peer and peer.get("same_label_as"):
                notes.append("crowd-kit's label = ours on " + ", ".join(
                    f"{v:.2%} ({k})" for k, v in peer["same_label_as"].items()))
            if cur and base and cur.get("digest") and base.get("digest"):
                notes.append("same result as previous" if cur["digest"] == base["digest"]
                             else "result differs from previous (digest)")
            if cur and base and cur.get("result") and base.get("result"):
                same = cur["result"] == base["result"]
                notes.append("same result as previous" if same else
                             "result differs from previous: " + ", ".join(
                                 f"{k} {base['result'].get(k)} -> {v}"
                                 for k, v in cur["result"].items()
                                 if base["result"].get(k) != v)[:200])
            if cur and cur.get("state_written"):
                notes.append(f"wrote {len(cur['state_written'])} state file(s)")
            peer_name = ("crowd-kit DawidSkene" if call in PEER_OF else "-")
            lines.append(
                f"| {label} | {_s(cur)} | "
                f"{_gb((cur or {}).get('process_peak_mb'))} | {_gb((cur or {}).get('peak_mb'))} "
                f"| {bpa} | {_s(base)} | {_gb((base or {}).get('process_peak_mb'))} | "
                f"{_ratio(cur, base)} | {peer_name} | {_s(peer) if call in PEER_OF else '-'} | "
                f"{_gb((peer or {}).get('process_peak_mb'))} | {_ratio(cur, peer)} | "
                f"{_verdict(cur, call)} | {'; '.join(notes)} |")
        lines.append("")
    lines += _bytes_table(ms) + _engine_lines(results_dir or HERE / "results")
    return lines


def _bytes_table(ms: list[dict]) -> list[str]:
    sizes = sorted({m["n_items"] for m in ms if m["impl"] == "current"})
    if not sizes:
        return []
    lines = ["### Memory per annotation (current implementation)", "",
             "Growth of the peak resident set during the call, in bytes per annotation, at "
             "each size: a flat row means memory grows linearly with the data.", "",
             "| call | " + " | ".join(f"{n:,}" for n in sizes) + " |",
             "| --- | " + " | ".join("---" for _ in sizes) + " |"]
    for call, (label, impls) in CALLS.items():
        if "current" not in impls:
            continue
        cells = []
        for n in sizes:
            m = _find(ms, "current", n, call)
            cells.append(f"{m['peak_mb'] * 2**20 / (n * LABELS_PER_ITEM):.0f}"
                         if m and m.get("peak_mb") is not None else "-")
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def _n_of(size) -> int:
    try:
        return int(str(size).replace(",", "").split()[0])
    except (ValueError, IndexError):
        return 0


def _engine_lines(results_dir: Path) -> list[str]:
    path = results_dir / "engine.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    big = [r for r in data["rows"] if _n_of(r["size"]) >= 50_000_000]
    if not big:
        return []
    lines = ["### Out of core: 100M items through DuckDB (from `benchmarks/results/engine.json`)",
             "", f"Measured {data['meta']['when']} by `benchmarks/bench_engine.py`; target: "
             "each call within 180 s and under 8 GB.", "",
             "| operation | size | s | peak GB | target | notes |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in big:
        o = r["ours"]
        ok = (o.get("seconds") is not None and o["seconds"] < 180
              and (o.get("peak_mb") or 0) < 8 * 1024)
        secs = "-" if o.get("seconds") is None else f"{o['seconds']:.1f}"
        lines.append(f"| {r['operation']} | {r['size']} | {secs} | "
                     f"{_gb(o.get('peak_mb'))} | {'pass' if ok else 'fail'} | "
                     f"{r.get('notes', '')} |")
    return lines + [""]


# ----------------------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--driver", nargs=2, metavar=("CALL", "PROJECT"), help=argparse.SUPPRESS)
    ap.add_argument("--impl", default=os.environ.get("WORKBENCH_BENCH_SCALE_IMPLS",
                                                     "current,baseline,crowdkit"),
                    help="comma-separated: current, baseline, crowdkit")
    ap.add_argument("--sizes", default=os.environ.get("WORKBENCH_BENCH_SCALE_SIZES"),
                    help="comma-separated item counts (default 1000000,5000000, and "
                         "10000000 with WORKBENCH_BENCH_SCALE_10M=1)")
    ap.add_argument("--calls", default=None, help="comma-separated subset of the calls")
    ap.add_argument("--baseline-max", type=int,
                    default=_env_int("WORKBENCH_BENCH_SCALE_BASELINE_MAX", 5_000_000),
                    help="largest size the previous implementation runs at")
    ap.add_argument("--out", type=Path, default=None,
                    help="results file (default benchmarks/results/scale.json)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="only merge these results files' figures into the results file "
                         "(a figure measured later replaces an earlier one)")
    ap.add_argument("--quick", action="store_true",
                    help="100,000 items; results to the work folder, not benchmarks/results")
    args = ap.parse_args(argv)
    if args.driver:
        return driver(args.driver[0], Path(args.driver[1]))
    if args.merge:
        out = args.out or RESULTS
        data = _load_results() if out == RESULTS else json.loads(out.read_text())
        for path in args.merge:
            for m in json.loads(path.read_text())["measurements"]:
                old = _find(data["measurements"], m["impl"], m["n_items"], m["call"])
                if old is None or (m.get("when") or "") >= (old.get("when") or ""):
                    _put(data, m)
        for n in sorted({m["n_items"] for m in data["measurements"]}):
            compare_labels(data, n)
        _save(data, out)
        print(f"wrote {out}")
        return 0
    if args.quick:
        sizes, out = [100_000], args.out or _work() / "scale_quick.json"
    else:
        sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes else
                 [1_000_000, 5_000_000]
                 + ([10_000_000] if os.environ.get("WORKBENCH_BENCH_SCALE_10M") == "1" else []))
        out = args.out or RESULTS
    impls = [i.strip() for i in args.impl.split(",") if i.strip()]
    unknown = set(impls) - {"current", "baseline", "crowdkit"}
    if unknown:
        ap.error(f"unknown --impl {sorted(unknown)}; use current, baseline, crowdkit")
    calls = [c.strip() for c in args.calls.split(",")] if args.calls else list(CALLS)
    bad = set(calls) - set(CALLS)
    if bad:
        ap.error(f"unknown --calls {sorted(bad)}; use {', '.join(CALLS)}")
    data = json.loads(out.read_text()) if out.exists() else _load_results() if not args.quick \
        else {"bench": "scale", "meta": {}, "rows": [], "measurements": []}
    for n in sizes:
        for impl in impls:
            if impl == "baseline" and n > args.baseline_max:
                print(f"  baseline {n:,}: not run (above --baseline-max {args.baseline_max:,})")
                _not_run(data, n, calls, args.baseline_max)
                _save(data, out)
                continue
            if impl == "crowdkit":
                smaller = [m for m in data["measurements"] if m["impl"] == "crowdkit"
                           and m["n_items"] < n and m.get("seconds") is None
                           and not m.get("skipped")]
                if smaller:
                    m = {"seconds": None, "peak_mb": None, "impl": "crowdkit", "n_items": n,
                         "n_annotations": n * LABELS_PER_ITEM, "call": "crowdkit_dawid_skene",
                         "skipped": f"skipped: did not complete at {smaller[0]['n_items']:,} "
                                    "items"}
                    _put(data, m)
                    _save(data, out)
                    continue
                measure_size(data, impl, n, ["crowdkit_dawid_skene"], out)
            else:
                measure_size(data, impl, n, [c for c in calls if c != "crowdkit_dawid_skene"],
                             out)
        compare_labels(data, n)
        _save(data, out)
    print(f"wrote {out}")
    print("\n".join(markdown(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
