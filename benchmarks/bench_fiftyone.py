"""Sync a project into FiftyOne: first sync, no-op re-sync and a 1% change, against a peer.

Peer: the plain FiftyOne way, i.e. build one ``fo.Sample`` per item with the same fields
(from the same per-item records, so both sides pay for the consensus and label-issue
computation) and ``dataset.add_samples(...)`` them into a new dataset. Without incremental
sync the peer's re-sync is a rebuild, so its first-sync time is the peer of every row.

Sizes: the sample project (data/sample, built into a temp folder if absent) and a synthetic
project (``workbench.synthetic.make_project``, ``images=False``; default 100,000 items, env
``BENCH_FIFTYONE_N``). Runs FiftyOne's bundled ``mongod`` itself, on a free loopback port
with its data in a temp folder, and points ``FIFTYONE_DATABASE_URI`` at it, so every measured
child only connects (the path of a team with an existing MongoDB).

Bounded: every measurement runs in a forked child killed after ``BENCH_FIFTYONE_TIMEOUT``
seconds (default 900).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

TMP = Path(tempfile.mkdtemp(prefix="wb-bench-fiftyone-"))
os.environ.pop("FIFTYONE_DATABASE_URI", None)  # set to our own mongod in main()
os.environ["FIFTYONE_DATABASE_DIR"] = str(TMP / "db")
os.environ["FIFTYONE_CONFIG_PATH"] = str(TMP / "config.json")
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"

from harness import measure, record  # noqa: E402

N = int(os.environ.get("BENCH_FIFTYONE_N", "100000"))
TIMEOUT = float(os.environ.get("BENCH_FIFTYONE_TIMEOUT", "900"))


def _peer_build(project, name: str) -> None:
    """The peer: fo.Sample objects with the same fields, then dataset.add_samples."""
    import fiftyone as fo

    import workbench.fiftyone_bridge as fb

    ids, columns, kinds = fb._records(project, [])
    fields = [f for f in columns if f not in ("item_id", "filepath")]
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    ds = fo.Dataset(name, persistent=True)

    def samples():
        for i, item_id in enumerate(ids):
            yield fo.Sample(filepath=columns["filepath"][i], item_id=item_id,
                            **{f: fb._to_fo(fo, kinds[f], columns[f][i]) for f in fields})

    ds.add_samples(samples(), progress=False)
    if len(ds) != len(ids):
        raise RuntimeError(f"peer wrote {len(ds)} samples, expected {len(ids)}")


def _ours(project, name: str, *, overwrite: bool = False, fast: bool = True,
          expect: tuple | None = None, unchanged_inputs: bool | None = None,
          recompute: bool = False) -> None:
    import workbench.fiftyone_bridge as fb

    if recompute:  # as after an upgrade: the fingerprint differs, every field is recomputed
        fb._FIELDS_VERSION += 1
    stats = fb.sync_project(project, name=name, overwrite=overwrite, fast=fast)
    got = (stats.added, stats.updated, stats.deleted)
    if expect is not None and got != expect:
        raise RuntimeError(f"sync wrote {got}, expected {expect}")
    if unchanged_inputs is not None and stats.inputs_unchanged != unchanged_inputs:
        raise RuntimeError(f"inputs_unchanged is {stats.inputs_unchanged}")


def _changed(project, share: float = 0.01):
    """The project with one metadata value changed on ``share`` of the items.

    (A label change would also move the label-quality scores of many other items, which
    cleanlab computes over the whole project.)
    """
    import workbench as wb

    items = project.items.copy()
    col = project.metadata_columns[0]
    n = max(1, int(len(items) * share))
    idx = items.index[:: max(1, len(items) // n)][:n]
    items[col] = items[col].astype(object)
    items.loc[idx, col] = "changed"
    return wb.Project.from_frames(items=items, annotations=project.annotations,
                                  predictions=project.predictions, classes=project.classes,
                                  name=project.name, root=project.root,
                                  default_run=project.default_run,
                                  image_root=project.image_root), n


def _start_mongod() -> subprocess.Popen:
    """Start the mongod that ships with FiftyOne on a free loopback port, in our temp dir.

    The benchmark then uses it as an "existing MongoDB" (``FIFTYONE_DATABASE_URI``): the
    measured children only connect, and no FiftyOne service decides when it stops.
    """
    import importlib.util
    import socket

    import pymongo

    spec = importlib.util.find_spec("fiftyone")
    mongod = Path(list(spec.submodule_search_locations)[0]) / "db" / "bin" / "mongod"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dbpath = TMP / "mongo"
    dbpath.mkdir()
    proc = subprocess.Popen([str(mongod), "--dbpath", str(dbpath), "--port", str(port),
                             "--bind_ip", "127.0.0.1", "--nounixsocket", "--quiet",
                             "--logpath", str(TMP / "mongod.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000)
            client.admin.command("ping")
            client.close()
            break
        except pymongo.errors.PyMongoError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"mongod did not start; see {TMP / 'mongod.log'}") from None
            time.sleep(0.5)
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    return proc


def bench_size(label: str, project, rows: list) -> None:
    n = len(project.items)
    ours_name, peer_name = f"bench-ours-{label}", f"bench-peer-{label}"
    print(f"[{label}] {n:,} items", flush=True)
    peer = measure(_peer_build, project, peer_name, timeout=TIMEOUT)
    print(f"  peer add_samples: {peer}", flush=True)
    first = measure(_ours, project, ours_name, overwrite=True, expect=(n, 0, 0),
                    timeout=TIMEOUT)
    print(f"  first sync: {first}", flush=True)
    noop = measure(_ours, project, ours_name, expect=(0, 0, 0), unchanged_inputs=True,
                   timeout=TIMEOUT)
    print(f"  no-op re-sync: {noop}", flush=True)
    rehash = measure(_ours, project, ours_name, expect=(0, 0, 0), unchanged_inputs=False,
                     recompute=True, timeout=TIMEOUT)
    print(f"  no-op re-sync, fields recomputed: {rehash}", flush=True)
    changed, k = _changed(project)
    upd = measure(_ours, changed, ours_name, expect=(0, k, 0), timeout=TIMEOUT)
    print(f"  1% changed: {upd}", flush=True)
    peer_name_txt = "fo.Sample + dataset.add_samples (rebuild)"
    rows += [
        {"operation": "first sync (sync_project)", "size": f"{n:,} items", "ours": first,
         "peer": peer_name_txt, "peer_result": peer, "target": "< peer",
         "notes": "bulk MongoDB writes in FiftyOne's layout, schema declared first"},
        {"operation": "no-op re-sync", "size": f"{n:,} items", "ours": noop,
         "peer": peer_name_txt, "peer_result": peer, "target": "writes nothing",
         "notes": "input fingerprint unchanged: nothing recomputed, tags pushed (checked)"},
        {"operation": "no-op re-sync, fields recomputed", "size": f"{n:,} items",
         "ours": rehash, "peer": peer_name_txt, "peer_result": peer,
         "target": "writes nothing",
         "notes": "fingerprint forced to differ: records + hashes recomputed, compared with "
                  "wb_hash; 0 writes checked"},
        {"operation": f"re-sync, {k:,} items changed (1%)", "size": f"{n:,} items",
         "ours": upd, "peer": peer_name_txt, "peer_result": peer,
         "target": "updates only the changed", "notes": f"{k:,} updated (checked)"},
    ]
    if n <= 20_000:
        api = measure(_ours, project, f"{ours_name}-api", overwrite=True, fast=False,
                      expect=(n, 0, 0), timeout=TIMEOUT)
        print(f"  first sync fast=False: {api}", flush=True)
        rows.append({"operation": "first sync (fast=False: add_samples path)",
                     "size": f"{n:,} items", "ours": api, "peer": peer_name_txt,
                     "peer_result": peer, "target": "-",
                     "notes": "the reference path the bulk writer is tested against"})


def main() -> int:
    mongod = _start_mongod()
    import fiftyone  # noqa: F401 - imported (not connected) before forking the children

    import workbench as wb

    rows: list = []
    try:
        sample_dir = HERE.parent / "data" / "sample"
        if not (sample_dir / "items.csv").exists():
            sample_dir = TMP / "sample"
            wb.build_sample(sample_dir)
        sample = wb.open_project(sample_dir)
        sample.name = "bench-sample"
        bench_size("sample", sample, rows)

        t0 = time.perf_counter()
        synth = wb.make_project(N, n_runs=1, images=False, seed=0)
        synth.name = "bench-synthetic"
        print(f"made the synthetic project in {time.perf_counter() - t0:.1f} s", flush=True)
        bench_size(f"synthetic-{N}", synth, rows)
    finally:
        mongod.terminate()
        try:
            mongod.wait(60)
        except subprocess.TimeoutExpired:
            mongod.kill()
        shutil.rmtree(TMP, ignore_errors=True)
    path = record("fiftyone", rows)
    print(f"wrote {path}")
    failed = [r["operation"] for r in rows if r["ours"].get("error")]
    if failed:
        print("failed:", failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
