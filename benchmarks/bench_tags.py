"""Tag store benchmarks (SQLite), each against a peer measured in the same run.

1. Tag 10,000 items in one call: ``TagStore.add`` vs FiftyOne's ``tag_samples`` on a
   non-persistent dataset of the same 10,000 items (bundled mongod; deleted afterwards).
   Target: < 100 ms.
2. Read the current tags of 1,000,000 items that have 10 tag events each (10 M events,
   2 M current tags): ``TagStore.tags()`` vs the obvious row-wise read of the same table with
   ``pandas.read_sql``. Target: < 2 s.

Sizes can be lowered for a quick look: ``BENCH_TAGS_ITEMS=100000 python benchmarks/bench_tags.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import measure, record  # noqa: E402

from workbench.tags import TagStore  # noqa: E402

N_TAG = 10_000
N_READ = int(os.environ.get("BENCH_TAGS_ITEMS", 1_000_000))
# 10 events per item; afterwards every item carries 'a' and 'e' (2 current tags)
SEQUENCE = [("add", "a"), ("add", "b"), ("remove", "a"), ("add", "c"), ("remove", "b"),
            ("add", "d"), ("remove", "c"), ("add", "e"), ("remove", "d"), ("add", "a")]


def bench_add(tmp: Path) -> dict:
    ids = [f"item-{k:06d}" for k in range(N_TAG)]
    store = TagStore(tmp / "add.db", item_ids=ids)
    store.add(ids[:10], "warmup", author="bench")  # schema created, file warm
    counter = iter(range(1000))

    def ours():
        n = store.add(ids, f"relabel-{next(counter)}", author="bench", reason="benchmark")
        assert n == N_TAG

    result = measure(ours, repeat=3)
    peer, note = fiftyone_tag(ids, tmp)
    return {"operation": "tag 10,000 items in one call (SQLite, WAL, synchronous=FULL)",
            "size": f"{N_TAG:,} items", "ours": result,
            "peer": "FiftyOne dataset.tag_samples (MongoDB)", "peer_result": peer,
            "target": "< 0.1 s", "notes": note}


def fiftyone_tag(ids: list[str], tmp: Path):
    import atexit

    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    db_dir = Path(tempfile.mkdtemp(prefix="wb-bench-fiftyone-"))
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(db_dir))
    # registered before FiftyOne's own exit handlers, so it runs after theirs
    atexit.register(_cleanup_fiftyone, db_dir)
    try:
        import fiftyone as fo
    except Exception as exc:  # not installed / no mongod
        return None, f"FiftyOne unavailable: {type(exc).__name__}: {exc}"
    dataset = None
    try:
        dataset = fo.Dataset(f"bench-tags-{os.getpid()}")
        dataset.persistent = False
        dataset.add_samples([fo.Sample(filepath=f"/tmp/bench/{i}.png", item_id=i) for i in ids])
        counter = iter(range(1000))

        def peer():
            # a forked child must not reuse the parent's MongoClient (not fork-safe)
            import fiftyone.core.odm.database as fodb

            fodb._client = None
            fodb._async_client = None
            dataset.tag_samples(f"relabel-{next(counter)}")

        peer_result = measure(peer, repeat=3)
        in_process = []
        for k in range(3):  # the same call without the fork/reconnect, for reference
            t0 = time.perf_counter()
            dataset.tag_samples(f"inproc-{k}")
            in_process.append(time.perf_counter() - t0)
        note = ("FiftyOne's forked measurement includes reconnecting to mongod; in-process "
                f"(no fork) its best of 3 was {min(in_process):.3f} s. Non-persistent dataset, "
                "deleted afterwards.")
        return peer_result, note
    except Exception as exc:
        return None, f"FiftyOne failed: {type(exc).__name__}: {exc}"
    finally:
        if dataset is not None:
            try:
                dataset.delete()
            except Exception:
                pass


def _cleanup_fiftyone(db_dir: Path) -> None:
    """Stop the bundled mongod (wait for it), then delete its throwaway database folder."""
    try:
        import fiftyone.core.odm.database as fodb
        import psutil

        if fodb._db_service is not None:
            fodb._db_service.stop()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            running = [p for p in psutil.process_iter(["cmdline"])
                       if str(db_dir) in " ".join(p.info["cmdline"] or [])]
            if not running:
                break
            time.sleep(0.2)
    except Exception as exc:  # cleanup must not hide the results
        print(f"   FiftyOne cleanup: {type(exc).__name__}: {exc}", flush=True)
    shutil.rmtree(db_dir, ignore_errors=True)


def build_read_store(path: Path) -> TagStore:
    ids = [f"item-{k:07d}" for k in range(N_READ)]
    store = TagStore(path)
    t0 = time.perf_counter()
    for action, tag in SEQUENCE:
        getattr(store, action)(ids, tag, author="bench", reason=None)
    print(f"   built {N_READ:,} items x {len(SEQUENCE)} events in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return store


def bench_read(tmp: Path) -> dict:
    path = tmp / "read.db"
    store = build_read_store(path)

    def ours():
        frame = store.tags()
        assert len(frame) == 2 * N_READ

    def peer():
        import sqlite3

        import pandas as pd

        con = sqlite3.connect(path)
        frame = pd.read_sql(
            "SELECT c.item_id, t.value AS tag, a.author, a.reason, a.created_at AS tagged_at "
            "FROM tag_current c JOIN wb_strings t ON t.string_id = c.tag_id "
            "JOIN tag_actions a ON a.action_id = c.action_id", con)
        frame["tagged_at"] = pd.to_datetime(frame["tagged_at"], unit="us", utc=True)
        assert len(frame) == 2 * N_READ

    return {"operation": "current tags (TagStore.tags) after 10 events per item",
            "size": f"{N_READ:,} items, {10 * N_READ:,} events",
            "ours": measure(ours, repeat=2, timeout=600),
            "peer": "pandas.read_sql row-wise over the same tables",
            "peer_result": measure(peer, repeat=1, timeout=600),
            "target": "< 2 s",
            "notes": f"SQLite file of {path.stat().st_size / 1e9:.2f} GB"}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-tags-"))
    try:
        rows = [bench_add(tmp)]
        print(rows[-1]["ours"], rows[-1]["peer_result"], flush=True)
        rows.append(bench_read(tmp))
        print(rows[-1]["ours"], rows[-1]["peer_result"], flush=True)
        print(record("tags", rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
