"""Benchmark: slice metrics and slice discovery out of core, through DuckDB (workbench.engine).

A project of N synthetic items is written to Parquet by DuckDB itself (streamed to disk in
row groups, never held in pandas): ``items.parquet`` (``item_id``, ``label``, 10 metadata
columns: 6 categorical with 3 to 8 levels, one of them with missing values, an integer age
and a float brightness with missing values, both cut into quantile bins, a 3-value
resolution and a boolean) in shuffled item order, and ``predictions.parquet`` (one run, 10
classes, ~10 % errors, more on two planted slices) in another order, so the join is a real
one. Rows (each call measured in a fresh fork, see harness.py; peak memory is the growth of
the process's peak resident set, DuckDB's buffers included):

1. One engine session at N items (DuckDB, memory limit 5 GB, spilling to a temporary
   folder): register the Parquet files, ``prepare`` (the join of items and predictions,
   once, to a Parquet file), ``engine_slice_metrics`` over the 10 columns and
   ``engine_discover_slices(max_order=2)``; against pandas ``open_project`` + ``errors()`` +
   ``slice_metrics`` + ``discover_slices`` on the same kind of project at the pandas size M.
   The same session at M too (equal results checked before, outside the timings).
2. ``engine_slice_metrics`` alone, 3. ``engine_discover_slices`` alone (each joining for
   itself) at N, against the pandas call alone at M; skipped at 50M items and more unless
   ``WORKBENCH_BENCH_ENGINE_PER_CALL=1``.

4. The distributed path: the same session (register, ``prepare``, ``slice_metrics`` and
   ``discover_slices(max_order=2)`` through the public functions on ``tables.errors()``) on
   Spark's local mode through Ibis (``local[2]``, 4 GB driver, the session's start
   included) at S items, against the same session on DuckDB at S in the same run. The
   JVM is a process of its own: its peak resident set is in the notes, not in ``peak_mb``.
   Skipped without Java or with ``WORKBENCH_BENCH_ENGINE_SPARK_ITEMS=0``.

Sizes: N = 10,000,000 and M = 2,000,000 by default (about 10 minutes on 2 cores), S =
5,000,000; ``WORKBENCH_BENCH_ENGINE_ITEMS=100000000`` runs the 100M-item figure of issue 15
(target: each call within 3 minutes and under 8 GB); ``WORKBENCH_BENCH_ENGINE_PANDAS_ITEMS``
sets M, ``WORKBENCH_BENCH_ENGINE_SPARK_ITEMS`` S. The results are kept per (operation,
size): a run replaces the rows of the sizes it measured and keeps the others (the 100M
figures stay when the default run writes its 10M ones). The Parquet files go to
``WORKBENCH_BENCH_DIR`` (default: a temporary folder, removed after).

Run: ``python benchmarks/bench_engine.py`` (``--quick``: N = 1M, M = 200k, S = 1M;
``--spark-only``: only row 4). Runs at 2M items or more belong under the shared lock:
``flock /tmp/wb-bigmem.lock python benchmarks/bench_engine.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RESULTS_DIR, measure, record  # noqa: E402

import workbench as wb  # noqa: E402

QUICK = "--quick" in sys.argv
SPARK_ONLY = "--spark-only" in sys.argv
N = int(os.environ.get("WORKBENCH_BENCH_ENGINE_ITEMS", 1_000_000 if QUICK else 10_000_000))
M = int(os.environ.get("WORKBENCH_BENCH_ENGINE_PANDAS_ITEMS", 200_000 if QUICK else 2_000_000))
S = int(os.environ.get("WORKBENCH_BENCH_ENGINE_SPARK_ITEMS", 1_000_000 if QUICK else 5_000_000))
TIMEOUT = 1800
#: At 100M the per-call rows (each joining for itself) are skipped unless asked for.
SESSION_ONLY = N >= 50_000_000 and not os.environ.get("WORKBENCH_BENCH_ENGINE_PER_CALL")
MEMORY_LIMIT = "5GB"
CLASSES = [str(c) for c in range(10)]
COLUMNS = ["scanner", "vendor", "site", "split", "batch", "weather", "age", "brightness",
           "resolution", "is_night"]


def _u(i: str, k: int) -> str:
    """A deterministic uniform [0, 1) per row and stream ``k`` (DuckDB ``hash``)."""
    return f"((hash({i} * 16 + {k}) % 1000003) / 1000003.0)"


def _pick(i: str, k: int, levels: list[str], weights: list[float]) -> str:
    """CASE expression choosing one of ``levels`` with ``weights``."""
    total = sum(weights)
    cum, parts = 0.0, []
    for lvl, w in zip(levels[:-1], weights[:-1], strict=True):
        cum += w / total
        parts.append(f"WHEN {_u(i, k)} < {cum!r} THEN '{lvl}'")
    return f"CASE {' '.join(parts)} ELSE '{levels[-1]}' END"


def write_project(root: Path, n: int) -> Path:
    """Write an n-item project (items, predictions, workbench.toml) with DuckDB, streamed."""
    import duckdb

    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": "3GB", "temp_directory": str(root / "tmp"),
                                 "preserve_insertion_order": "true"})
    # a multiplicative permutation of 0..n-1: item order differs from prediction order
    step = 1_000_003 if n % 1_000_003 else 999_983
    i = "r"
    site = _pick(i, 3, [f"s{j}" for j in range(8)], [8, 7, 6, 5, 4, 3, 2, 1])
    meta = f"""
        {_pick(i, 1, ['A', 'B', 'C', 'D'], [4, 3, 2, 1])} AS scanner,
        {_pick(i, 2, ['v1', 'v2', 'v3'], [5, 3, 2])} AS vendor,
        {site} AS site,
        {_pick(i, 4, ['train', 'val', 'test'], [8, 1, 1])} AS split,
        {_pick(i, 5, [f'b{j}' for j in range(6)], [1, 1, 1, 1, 1, 1])} AS batch,
        CASE WHEN {_u(i, 6)} < 0.03 THEN NULL ELSE
            {_pick(i, 7, ['sun', 'rain', 'fog', 'snow', 'cloud'], [5, 2, 1, 1, 3])} END
            AS weather,
        CAST(18 + floor({_u(i, 8)} * 72) AS BIGINT) AS age,
        CASE WHEN {_u(i, 9)} < 0.02 THEN NULL ELSE round({_u(i, 10)} * 255, 2) END
            AS brightness,
        [512, 1024, 2048][1 + CAST(floor({_u(i, 11)} * 3) AS INTEGER)] AS resolution,
        {_u(i, 12)} < 0.3 AS is_night
    """
    # the item of row r is (r * step) % n; its attributes hash from that id, so items and
    # predictions agree whatever order each file is in
    con.execute(f"""
        COPY (
            SELECT printf('i%010d', r) AS item_id,
                   CAST(CAST(floor({_u(i, 0)} * 10) AS BIGINT) AS VARCHAR) AS label, {meta}
            FROM (SELECT (range * {step}) % {n} AS r FROM range({n}))
        ) TO '{root / "items.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)
    """)
    error_p = (f"CASE WHEN ({_pick(i, 1, ['A', 'B', 'C', 'D'], [4, 3, 2, 1])} = 'C' AND "
               f"{site} = 's3') THEN 0.45 "
               f"WHEN {_pick(i, 2, ['v1', 'v2', 'v3'], [5, 3, 2])} = 'v3' THEN 0.2 ELSE 0.1 END")
    con.execute(f"""
        COPY (
            SELECT printf('i%010d', r) AS item_id, 'run_0' AS run,
                   CASE WHEN {_u(i, 13)} < {error_p}
                        THEN CAST((CAST(floor({_u(i, 0)} * 10) AS BIGINT) + 1
                                   + CAST(floor({_u(i, 14)} * 9) AS BIGINT)) % 10 AS VARCHAR)
                        ELSE CAST(CAST(floor({_u(i, 0)} * 10) AS BIGINT) AS VARCHAR) END
                        AS label,
                   0.5 + 0.5 * {_u(i, 15)} AS confidence
            FROM range({n}) AS t(r)
        ) TO '{root / "predictions.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)
    """)
    con.close()
    shutil.rmtree(root / "tmp", ignore_errors=True)
    (root / "workbench.toml").write_text(
        'name = "engine-bench"\nclasses = [' + ", ".join(f'"{c}"' for c in CLASSES)
        + ']\ndefault_run = "run_0"\n')
    return root


def _tables(root: Path, tmp: Path):
    from workbench.engine import connect, register_project

    backend = connect(memory_limit=MEMORY_LIMIT, temp_directory=tmp)
    return register_project(root, backend=backend)


def engine_metrics(root: Path, tmp: Path):
    from workbench.engine import engine_slice_metrics

    return engine_slice_metrics(_tables(root, tmp), by=COLUMNS)


def engine_discover(root: Path, tmp: Path):
    from workbench.engine import engine_discover_slices

    return engine_discover_slices(_tables(root, tmp), features=COLUMNS, max_order=2)


def engine_session(root: Path, tmp: Path):
    """Both calls in one session: the join is computed once (``EngineTables.prepare``)."""
    from workbench.engine import engine_discover_slices, engine_slice_metrics

    tables = _tables(root, tmp)
    tables.prepare(directory=tmp)
    try:
        return (engine_slice_metrics(tables, by=COLUMNS),
                engine_discover_slices(tables, features=COLUMNS, max_order=2))
    finally:
        tables.release()


def pandas_metrics(root: Path):
    project = wb.open_project(root)
    return wb.slice_metrics(project.errors(), COLUMNS)


def pandas_discover(root: Path):
    project = wb.open_project(root)
    return wb.discover_slices(project.errors(), COLUMNS, max_order=2)


def pandas_session(root: Path):
    project = wb.open_project(root)
    errors = project.errors()
    return (wb.slice_metrics(errors, COLUMNS),
            wb.discover_slices(errors, COLUMNS, max_order=2))


def _spark(tmp: Path):
    """A local-mode Spark session on 2 cores, spilling to ``tmp``."""
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("workbench-bench-engine")
             .config("spark.driver.memory", "4g")
             .config("spark.sql.shuffle.partitions", "8")
             .config("spark.local.dir", str(tmp))
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _public_session(tables, tmp: Path):
    """``prepare``, then both calls through the public functions on ``tables.errors()``."""
    tables.prepare(directory=tmp)
    try:
        errors = tables.errors()
        return (wb.slice_metrics(errors, COLUMNS),
                wb.discover_slices(errors, COLUMNS, max_order=2))
    finally:
        tables.release()


def spark_session(root: Path, tmp: Path):
    """The session on Spark's local mode (its start included); the JVM's peak RSS to a file."""
    import threading

    import psutil

    from workbench.engine import register_project

    peak, done = [0], threading.Event()

    def watch():
        me = psutil.Process()
        while not done.wait(0.5):
            rss = 0
            for p in me.children(recursive=True):
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], rss)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    spark = _spark(tmp)
    try:
        return _public_session(register_project(root, backend=spark), tmp)
    finally:
        spark.stop()
        done.set()
        (tmp / "spark_jvm_peak_mb").write_text(str(peak[0] / 2**20))


def duckdb_public_session(root: Path, tmp: Path):
    """The same session on DuckDB (memory limit as above)."""
    return _public_session(_tables(root, tmp), tmp)


def _equal(root: Path, tmp: Path) -> str:
    """Check engine == pandas at the pandas size (outside the timed calls)."""
    import pandas as pd

    project = wb.open_project(root)
    errors = project.errors()
    tables = _tables(root, tmp)
    from workbench.engine import engine_discover_slices, engine_slice_metrics

    pd.testing.assert_frame_equal(engine_slice_metrics(tables, by=COLUMNS),
                                  wb.slice_metrics(errors, COLUMNS))
    a = engine_discover_slices(tables, features=COLUMNS).drop(columns="item_ids")
    b = wb.discover_slices(errors, COLUMNS).drop(columns="item_ids")
    pd.testing.assert_frame_equal(a, b)
    return f"engine == pandas at {len(errors):,} items (slice_metrics, discover_slices)"


def _per_item(ours: dict, n: int, peer: dict, m: int) -> str:
    """The sizes differ, so the ratio column does not compare like with like: per item."""
    if not ours.get("seconds") or not peer.get("seconds"):
        return ""
    return (f"; per item: engine {ours['seconds'] / n * 1e6:.2f} us, pandas "
            f"{peer['seconds'] / m * 1e6:.2f} us")


def _gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.glob("*.parquet")) / 1e9


def _project(base: Path, n: int) -> Path:
    root = base / f"items_{n}"
    if not (root / "predictions.parquet").exists():
        t0 = time.perf_counter()
        write_project(root, n)
        print(f"  wrote {n:,} items ({_gb(root):.2f} GB Parquet) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return root


def spark_rows(base: Path, tmp: Path) -> list[dict]:
    """Row 4: the session on Spark's local mode against DuckDB, both at S items."""
    if S <= 0:
        return []
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        print("  Spark row skipped: no Java (apt-get install openjdk-17-jre-headless)")
        return []
    root = _project(base, S)
    duck = measure(duckdb_public_session, root, tmp, timeout=TIMEOUT)
    ours = measure(spark_session, root, tmp, timeout=TIMEOUT)
    peak_file = tmp / "spark_jvm_peak_mb"
    jvm = float(peak_file.read_text()) if peak_file.exists() else float("nan")
    print(f"  Spark local[2] {S:,}: {ours} (JVM peak {jvm:.0f} MB); DuckDB {duck}", flush=True)
    op = ("slice_metrics + discover_slices(max_order=2), one session (join once), on Spark "
          "local mode (local[2], 4 GB driver) through Ibis")
    return [{"operation": f"engine {op}, from Parquet", "size": f"{S:,}", "ours": ours,
             "peer": f"the same session on DuckDB ({MEMORY_LIMIT} limit)",
             "peer_result": duck, "target": "",
             "notes": f"Spark's start included; the JVM's peak resident set {jvm / 1024:.1f} "
                      "GB is not in peak_mb (a process of its own); equal results: "
                      "tests/unit/test_engine_spark.py"}]


def _keyed(row: dict) -> tuple:
    return row["operation"], row["size"]


def merge_rows(rows: list[dict]) -> list[dict]:
    """The rows of ``results/engine.json`` with those of this run in place (per operation
    and size): a run never drops the figures of sizes it did not measure."""
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = [dict(r, when=when) for r in rows]
    path = RESULTS_DIR / "engine.json"
    if not path.exists():
        return rows
    old = json.loads(path.read_text())
    new = {_keyed(r): r for r in rows}
    merged = []
    for r in old.get("rows", []):
        merged.append(new.pop(_keyed(r), None) or dict(r, when=r.get("when",
                                                                     old["meta"]["when"])))
    return merged + list(new.values())


def main() -> None:
    base = Path(os.environ.get("WORKBENCH_BENCH_DIR") or tempfile.mkdtemp(prefix="wb-engine-"))
    keep = "WORKBENCH_BENCH_DIR" in os.environ
    try:
        tmp = base / "spill"
        tmp.mkdir(parents=True, exist_ok=True)
        rows = spark_rows(base, tmp) if SPARK_ONLY else engine_rows(base, tmp)
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    if rows:
        print(f"wrote {record('engine', merge_rows(rows))}")


def engine_rows(base: Path, tmp: Path) -> list[dict]:
    """Rows 1 to 4."""
    rows = []
    small, big = _project(base, M), _project(base, N)
    check = _equal(small, tmp)
    print(" ", check, flush=True)
    note = (f"DuckDB {MEMORY_LIMIT} limit, out of core; {_gb(big):.1f} GB Parquet; the "
            "peer is pandas at the largest size this benchmark runs it")
    for op, eng, pan in (
            ("slice_metrics + discover_slices(max_order=2), one session (join once)",
             engine_session, pandas_session),
            ("slice_metrics, 10 columns", engine_metrics, pandas_metrics),
            ("discover_slices(max_order=2), 10 columns", engine_discover,
             pandas_discover)):
        ours = measure(eng, big, tmp, timeout=TIMEOUT)
        peer = measure(pan, small, timeout=TIMEOUT)
        print(f"  {op}: engine {N:,} {ours}; pandas {M:,} {peer}", flush=True)
        rows.append({"operation": f"engine {op}, from Parquet", "size": f"{N:,}",
                     "ours": ours, "peer": f"pandas open+errors+call at {M:,}",
                     "peer_result": peer, "target": "100M: < 180 s, < 8 GB",
                     "notes": note + _per_item(ours, N, peer, M)})
        if eng is engine_session:
            same = measure(eng, small, tmp, timeout=TIMEOUT)
            print(f"  {op}: engine {M:,} {same}", flush=True)
            rows.append({"operation": f"engine {op}, from Parquet", "size": f"{M:,}",
                         "ours": same, "peer": "pandas open+errors+calls",
                         "peer_result": peer, "target": "", "notes": check})
        if SESSION_ONLY and eng is engine_session:
            break  # the per-call rows repeat the join: skipped at 100M unless asked
    return rows + spark_rows(base, tmp)


if __name__ == "__main__":
    main()
