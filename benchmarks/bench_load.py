"""open_project on 1,000,000 items + 3,000,000 annotations + 1,000,000 predictions (Parquet).

Ours: ``workbench.open_project`` with every check of the project format (ids, duplicates,
unknown ids, classes, empty labels, confidences and probability rows, path escapes).
Peer: plain ``pandas.read_parquet`` of the same three files. Target: within 2x of the peer.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.synthetic import make_project  # noqa: E402

N = int(os.environ.get("BENCH_LOAD_ITEMS", 1_000_000))


def plain_read(root: Path):
    return [pd.read_parquet(root / f"{k}.parquet") for k in ("items", "annotations", "predictions")]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        project = make_project(N, n_classes=10, n_annotators=20, labels_per_item=3,
                               n_metadata=10, n_runs=1, seed=1)
        root = wb.write_project(project, Path(tmp) / "big", format="parquet")
        del project
        print(f"generated and wrote {N:,} items in {time.time() - t0:.0f} s", flush=True)
        sizes = {k: len(pd.read_parquet(root / f"{k}.parquet", columns=["item_id"]))
                 for k in ("items", "annotations", "predictions")}
        peer = measure(plain_read, root, repeat=2)
        ours = measure(wb.open_project, root, repeat=2)
        size = ", ".join(f"{v:,} {k}" for k, v in sizes.items())
        record("load", [{
            "operation": "open_project (Parquet, all validations)",
            "size": size,
            "ours": ours,
            "peer": "pandas.read_parquet x3",
            "peer_result": peer,
            "target": "within 2x of the plain read",
            "notes": "best of 2 calls each in a fresh process; 10 classes with prob_ columns, "
                     "10 metadata columns; image files are checked lazily by media_status()",
        }])
        print(ours, peer)


if __name__ == "__main__":
    main()
