"""Label issues on 1,000,000 items x 10 classes, against cleanlab called directly.

Peer: ``cleanlab.filter.find_label_issues`` + ``cleanlab.rank.get_label_quality_scores``
on the same integer labels and probability array. Ours: ``find_label_issues_frame`` from a
labels Series indexed by item_id and ``(item_ids, probs)`` (what ``label_issues(project)``
does), returning the sorted frame. Target: within 1.2x of the peer.

Also compares cleanlab's filters on the sample project, whose label errors are verified
(``truth.csv``): recall and precision of ``is_issue`` per ``filter_by`` (model only).

Usage: ``python benchmarks/bench_label_quality.py [n_items]`` (default 1000000).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.label_quality import find_label_issues_frame  # noqa: E402

TARGET_RATIO = 1.2


def make_data(n: int, k: int = 10, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.5 * np.eye(k)[truth]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    given = truth.copy()
    flip = rng.random(n) < noise
    given[flip] = (given[flip] + rng.integers(1, k, flip.sum())) % k
    classes = [f"c{j}" for j in range(k)]
    ids = np.char.add("i", np.arange(n).astype(str)).astype(object)
    labels = pd.Series(pd.array(np.asarray(classes)[given], dtype="str"), index=ids)
    return labels, ids, probs, given, classes, flip


def peer(given: np.ndarray, probs: np.ndarray):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return find_label_issues(given, probs), get_label_quality_scores(given, probs)


def ours(labels, ids, probs, classes):
    return find_label_issues_frame(labels, (ids, probs), classes=classes)


def filter_study() -> str:
    sample = wb.open_project()
    truth = pd.read_csv(sample.root / "truth.csv", dtype=str)
    planted = set(truth.loc[truth["is_label_error"].str.lower() == "true", "item_id"])
    parts = []
    for run in sample.runs:
        for filter_by in ("prune_by_noise_rate", "prune_by_class", "both",
                          "confident_learning", "predicted_neq_given"):
            out = wb.label_issues(sample, run, use_annotations=False, filter_by=filter_by)
            flagged = set(out.loc[out["is_issue"], "item_id"])
            hit = len(flagged & planted)
            parts.append(f"{run}/{filter_by}: recall {hit / len(planted):.2f}, precision "
                         f"{hit / max(len(flagged), 1):.2f}")
        out = wb.label_issues(sample, run)
        flagged = set(out.loc[out["is_issue"], "item_id"])
        hit = len(flagged & planted)
        top = len(set(out["item_id"].head(len(planted))) & planted) / len(planted)
        parts.append(f"{run}/combined with annotators (default): recall "
                     f"{hit / len(planted):.2f}, precision {hit / max(len(flagged), 1):.2f}, "
                     f"top-k recall {top:.2f}")
    return "; ".join(parts)


def main(n: int = 1_000_000) -> None:
    labels, ids, probs, given, classes, flip = make_data(n)
    size = f"{n:,} items x {len(classes)} classes"
    ours_res = measure(ours, labels, ids, probs, classes, repeat=3, timeout=900)
    peer_res = measure(peer, given, probs, repeat=3, timeout=900)
    ratio = (ours_res["seconds"] / peer_res["seconds"]
             if ours_res["seconds"] and peer_res["seconds"] else float("nan"))
    rows = [{
        "operation": "find_label_issues_frame (label_issues)", "size": size, "ours": ours_res,
        "peer": "cleanlab find_label_issues + get_label_quality_scores on the arrays",
        "peer_result": peer_res, "target": f"<= {TARGET_RATIO}x peer",
        "notes": f"ratio {ratio:.2f}; ours also maps ids/labels, builds and sorts the frame",
    }]
    print(rows[-1], flush=True)
    try:
        study = filter_study()
    except Exception as exc:  # the sample may be missing in a partial checkout
        study = f"filter study skipped: {exc}"
    rows.append({"operation": "filter choice on the sample (verified errors)",
                 "size": "1,797 items", "ours": {"seconds": None, "peak_mb": None,
                                                  "error": None},
                 "peer": None, "peer_result": None, "target": "recall >= 0.8",
                 "notes": study})
    print(study, flush=True)
    print(record("label_quality", rows))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
