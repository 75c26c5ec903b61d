"""open_project on 1,000,000 items + 3,000,000 annotations + 1,000,000 predictions (Parquet).

Two shapes, each against the plain read of the same files in the same run:

- ``synthetic``: the generator's files (:func:`workbench.synthetic.make_project`): rows in
  item order, ten classes with ``prob_<class>`` columns (more to validate, and more to read)
  and ten one-letter metadata columns.
- ``realistic``: what users' files look like: every file's rows shuffled, string ids such as
  ``img-0000123``, a ``filepath``, a few string metadata columns (vendor, scanner, batch),
  ``annotated_at`` timestamps, a confidence and no probability columns. Here the plain read
  is fast, so the validation's own cost shows.

Ours: ``workbench.open_project`` with every check of the project format (ids, duplicates,
unknown ids, classes, empty values, confidences and probability rows, path escapes).
Peer: plain ``pandas.read_parquet`` of the same three files, in the same run. Target: within
2.5x of the peer.

The id checks alone (realistic shape, frames already read): :class:`workbench._ids.ItemIds`
(duplicate item ids, every annotation's and prediction's item, unknown ids) against the
library ways to the same integer keys, each answer checked equal to ours: one
``pyarrow`` ``dictionary_encode`` of all ids (items first, so codes below the items' count
are items; duplicates by ``bincount``), and ``pyarrow.compute.index_in`` with one
``SetLookupOptions``, the lookups on the same thread pool. The project rule: a hand-written
algorithm stays only where it beats the library.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).parent))
from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402
from workbench._ids import ItemIds, arrow_strings, worker_count  # noqa: E402
from workbench.synthetic import make_project  # noqa: E402

N = int(os.environ.get("BENCH_LOAD_ITEMS", 1_000_000))
KINDS = ("items", "annotations", "predictions")
PEER = "pandas.read_parquet x3"
TARGET = "within 2.5x of the plain read"
ROUNDS = 5


def plain_read(root: Path):
    return [pd.read_parquet(root / f"{k}.parquet") for k in KINDS]


def realistic_frames(n: int, *, labels_per_item: int = 3, n_annotators: int = 40,
                     seed: int = 0) -> dict[str, pd.DataFrame]:
    """Items, annotations and predictions shaped like a user's export, rows shuffled.

    Parameters
    ----------
    n : int
        Number of items (``img-0000000`` ...).
    labels_per_item : int, default=3
        Distinct annotators per item.
    n_annotators : int, default=40
    seed : int, default=0

    Returns
    -------
    dict of DataFrame
        ``items`` (item_id, filepath, label, vendor, scanner, batch), ``annotations``
        (item_id, annotator, label, annotated_at) and ``predictions`` (item_id, run, label,
        confidence), each in a random row order of its own.
    """
    rng = np.random.default_rng(seed)
    classes = np.array(["benign", "malignant", "normal", "artifact", "other"], dtype=object)
    width = max(7, len(str(n - 1)))
    ids = pd.Series(np.arange(n)).astype("str").str.zfill(width)
    ids = ("img-" + ids).to_numpy(dtype=object)
    truth = rng.integers(0, len(classes), n)

    def noisy(t: np.ndarray, rate: float) -> np.ndarray:
        flip = rng.random(t.size) < rate
        return np.where(flip, (t + rng.integers(1, len(classes), t.size)) % len(classes), t)

    order = rng.permutation(n)
    vendors = np.array(["acme-labs", "northwind", "globex"], dtype=object)
    scanners = np.array([f"scanner-{s}" for s in "abcdef"], dtype=object)
    batches = np.array([f"2026-{m:02d}-batch-{b}" for m in range(1, 13) for b in range(1, 5)],
                       dtype=object)
    items = pd.DataFrame({
        "item_id": ids[order],
        "filepath": ("images/" + pd.Series(ids[order]) + ".jpg").to_numpy(dtype=object),
        "label": classes[noisy(truth, 0.03)][order],
        "vendor": vendors[rng.integers(0, len(vendors), n)],
        "scanner": scanners[rng.integers(0, len(scanners), n)],
        "batch": batches[rng.integers(0, len(batches), n)],
    }).astype("str")

    m = labels_per_item
    who = _distinct(n, n_annotators, m, rng)
    row_item = np.repeat(np.arange(n), m)
    names = np.array([f"annotator-{i:03d}" for i in range(n_annotators)], dtype=object)
    seconds = rng.integers(0, 180 * 86400, row_item.size).astype("timedelta64[s]")
    shuffle = rng.permutation(row_item.size)
    annotations = pd.DataFrame({
        "item_id": ids[row_item[shuffle]],
        "annotator": names[who[shuffle]],
        "label": classes[noisy(truth[row_item], 0.08)][shuffle],
        "annotated_at": pd.to_datetime(np.datetime64("2026-01-01T00:00:00", "s")
                                       + seconds[shuffle], utc=True),
    }).astype({"item_id": "str", "annotator": "str", "label": "str"})

    shuffle = rng.permutation(n)
    predicted = noisy(truth, 0.12)
    predictions = pd.DataFrame({
        "item_id": ids[shuffle],
        "run": "resnet50-2026-03",
        "label": classes[predicted][shuffle],
        "confidence": rng.beta(6, 2, n)[shuffle],
    }).astype({"item_id": "str", "run": "str", "label": "str"})
    return {"items": items, "annotations": annotations, "predictions": predictions}


def _distinct(n: int, a: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``n * m`` annotator indices, ``m`` distinct ones per item (redraw the collisions)."""
    out = rng.integers(0, a, size=(n, m))
    while True:
        srt = np.sort(out, axis=1)
        bad = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if not bad.any():
            return out.ravel()
        out[bad] = rng.integers(0, a, size=(int(bad.sum()), m))


def write_realistic(root: Path, n: int, seed: int = 0) -> Path:
    """Write :func:`realistic_frames` as Parquet files into ``root``, classes declared."""
    root.mkdir(parents=True, exist_ok=True)
    for kind, frame in realistic_frames(n, seed=seed).items():
        frame.to_parquet(root / f"{kind}.parquet", index=False)
    (root / "workbench.toml").write_text(
        'name = "realistic"\nclasses = ["benign", "malignant", "normal", "artifact", "other"]\n')
    return root


def write_synthetic(root: Path, n: int) -> Path:
    project = make_project(n, n_classes=10, n_annotators=20, labels_per_item=3,
                           n_metadata=10, n_runs=1, seed=1)
    return wb.write_project(project, root, format="parquet")


def _faster(best: dict | None, new: dict) -> dict:
    if best is None or best.get("seconds") is None:
        return new
    if new.get("seconds") is None:
        return best
    return new if new["seconds"] < best["seconds"] else best


def bench_shape(root: Path, operation: str, notes: str) -> dict:
    sizes = {k: pd.read_parquet(root / f"{k}.parquet", columns=["item_id"]).shape[0]
             for k in KINDS}
    # rounds interleaved, the fastest of each kept: the machine is shared, so one round
    # can land on a busy moment for one side only
    peer = ours = None
    for _ in range(ROUNDS):
        peer = _faster(peer, measure(plain_read, root, repeat=2))
        ours = _faster(ours, measure(wb.open_project, root, repeat=2))
    ratio = (ours["seconds"] / peer["seconds"]
             if ours.get("seconds") and peer.get("seconds") else None)
    print(f"{operation}: ours {ours} peer {peer} ratio {ratio}", flush=True)
    # other work on the machine slows the peer's threaded read more than ours: say how busy
    notes = f"{notes}; machine load average {os.getloadavg()[0]:.1f} after the rounds"
    return {
        "operation": operation,
        "size": ", ".join(f"{v:,} {k}" for k, v in sizes.items()),
        "ours": ours,
        "peer": PEER,
        "peer_result": peer,
        "target": TARGET,
        "notes": notes,
    }


def ids_ours(items: pd.Series, ann: pd.Series, pred: pd.Series):
    """Duplicate item rows, and each annotation's and prediction's item (-1: unknown)."""
    with ThreadPoolExecutor(worker_count()) as pool:
        ids = ItemIds(items, pool)
        found = [ids.locate_async(ann), ids.locate_async(pred)]
        first = ids.first
        later = first != np.arange(len(first))
        dup = later.copy()
        dup[first[later]] = True
        return dup, found[0].result(), found[1].result()


def ids_dictionary_encode(items: pd.Series, ann: pd.Series, pred: pd.Series):
    """The same answer from one ``dictionary_encode`` of all ids (keys: item codes)."""
    arrays = [arrow_strings(s) for s in (items, ann, pred)]
    encoded = pa.chunked_array([c for a in arrays for c in a.chunks]).dictionary_encode()
    codes = np.concatenate([np.asarray(c.indices) for c in encoded.chunks])
    mine = codes[:len(items)]
    k = int(mine.max()) + 1  # items come first: their ids hold codes 0 .. k - 1
    dup = np.bincount(mine, minlength=k)[mine] > 1
    keys = codes[len(items):]
    keys = np.where(keys < k, keys, -1)
    return dup, keys[:len(ann)], keys[len(ann):], mine


def ids_index_in(items: pd.Series, ann: pd.Series, pred: pd.Series):
    """The same answer from ``pc.index_in`` (one SetLookupOptions), lookups on a pool."""
    mine = arrow_strings(items)
    options = pc.SetLookupOptions(value_set=mine.combine_chunks())
    look = arrow_strings(ann)
    half = len(look) // 2
    parts = [mine, look.slice(0, half), look.slice(half), arrow_strings(pred)]
    with ThreadPoolExecutor(worker_count()) as pool:
        found = [np.asarray(pc.fill_null(f.result(), -1).to_numpy(), dtype=np.int64) for f in
                 [pool.submit(pc.index_in, part, options=options) for part in parts]]
    first = found[0]
    dup = np.bincount(first, minlength=len(first))[first] > 1
    return dup, np.concatenate(found[1:3]), found[3], first


def check_same_ids(ours, theirs) -> bool:
    """Same duplicates, same unknown rows, and the same item behind every known row.

    ``theirs`` ends with the key it gives each item row.
    """
    item_key = theirs[-1]
    ok = np.array_equal(ours[0], theirs[0])
    for mine, their in zip(ours[1:], theirs[1:-1], strict=True):
        ok &= np.array_equal(mine < 0, their < 0)
        ok &= np.array_equal(item_key[mine[mine >= 0]], their[their >= 0])
    return bool(ok)


def bench_ids(root: Path) -> list[dict]:
    frames = [pd.read_parquet(root / f"{k}.parquet", columns=["item_id"])["item_id"]
              for k in KINDS]
    sizes = ", ".join(f"{len(f):,} {k}" for f, k in zip(frames, KINDS, strict=True))
    ours = ids_ours(*frames)
    peers = {"pyarrow dictionary_encode of all ids (one hash), checks on integer codes":
             ids_dictionary_encode,
             "pyarrow.compute.index_in (one SetLookupOptions), lookups on the pool":
             ids_index_in}
    rows = []
    for name, fn in peers.items():
        same = check_same_ids(ours, fn(*frames))
        mine = peer = None
        for _ in range(ROUNDS):
            peer = _faster(peer, measure(fn, *frames, repeat=2))
            mine = _faster(mine, measure(ids_ours, *frames, repeat=2))
        ratio = mine["seconds"] / peer["seconds"] if mine.get("seconds") and \
            peer.get("seconds") else None
        print(f"id checks vs {name}: ours {mine} peer {peer} ratio {ratio} same {same}",
              flush=True)
        rows.append({
            "operation": "id checks alone: workbench._ids.ItemIds (realistic ids)",
            "size": sizes, "ours": mine, "peer": name, "peer_result": peer,
            "target": "faster than the library, or replaced by it",
            "notes": f"frames read before; duplicate item ids, the item of every annotation "
                     f"and prediction, unknown ids; answers equal to ours: {same}; fastest "
                     f"of {ROUNDS} interleaved rounds of 2 calls; ids 'img-0000123' go "
                     f"through ItemIds' direct table (one slot per combination of the bytes "
                     f"seen in each varying byte column)",
        })
    return rows


def main():
    rows = []
    common = f"fastest of {ROUNDS} interleaved rounds of 2 calls, each round in a fresh " \
             "process; open_project looks ids up on up to " \
             "pyarrow.cpu_count() threads, as the peer's reader reads; image files are " \
             "checked lazily by media_status()"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        root = write_realistic(Path(tmp) / "realistic", N)
        print(f"realistic: wrote {N:,} items in {time.time() - t0:.0f} s", flush=True)
        rows.append(bench_shape(
            root, "open_project, realistic shape (Parquet, all validations)",
            f"{common}; every file's rows shuffled, ids like 'img-0000123' (one byte"
            " length, digits: direct-table lookups), filepath, vendor/scanner/batch strings, "
            "annotated_at timestamps, confidence, no prob_ columns, 5 declared classes, "
            "40 annotators"))
        rows.extend(bench_ids(root))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        root = write_synthetic(Path(tmp) / "synthetic", N)
        print(f"synthetic: wrote {N:,} items in {time.time() - t0:.0f} s", flush=True)
        rows.append(bench_shape(
            root, "open_project, synthetic generator's shape (Parquet, all validations)",
            f"{common}; rows in item order, ids like 'item-0000123', 10 declared classes "
            "with prob_ columns (each range-checked, rows summed), 10 one-letter metadata "
            "columns, 20 annotators"))
    record("load", rows)


if __name__ == "__main__":
    main()
