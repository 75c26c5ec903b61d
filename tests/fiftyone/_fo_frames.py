"""Frames of the small test project (no side effects: importable from subprocesses)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_tiny_frames(n: int = 16, *, missing_image: str | None = "i15"):
    """Frames of a small project: ``n`` items, 3 classes, 3 annotators, 2 runs with probs."""
    ids = [f"i{k:02d}" for k in range(n)]
    classes = ["cat", "dog", "fox"]
    rng = np.random.default_rng(0)
    truth = [classes[k % 3] for k in range(n)]
    items = pd.DataFrame({
        "item_id": ids,
        "filepath": [f"images/{i}.png" for i in ids],
        "label": [t if k % 5 else None for k, t in enumerate(truth)],
        "scanner": ["s1" if k % 2 else "s2" for k in range(n)],
        "batch": [k // 4 for k in range(n)],
        "tags": ["x"] * n,  # a metadata column named like a FiftyOne field
    })
    ann = pd.DataFrame({
        "item_id": [i for i in ids for _ in range(3)],
        "annotator": ["ann_a", "ann_b", "ann_c"] * n,
        "label": [truth[k] if (k + j) % 4 else classes[(k + 1) % 3]
                  for k in range(n) for j in range(3)],
    })
    rows = []
    for run in ("baseline", "candidate"):
        probs = rng.dirichlet(np.ones(3), size=n)
        for k, item_id in enumerate(ids):
            rows.append({"item_id": item_id, "run": run, "label": classes[int(probs[k].argmax())],
                         **{f"prob_{c}": float(p) for c, p in zip(classes, probs[k], strict=True)}})
    preds = pd.DataFrame(rows)
    return items, ann, preds, classes
