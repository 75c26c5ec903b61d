"""Box agreement between annotators on 100,000 images x 3 annotators (about 1,500,000 boxes).

Data: ``make_boxes`` of ``bench_consensus.py`` (0-10 objects per image, each drawn by each
annotator with probability 0.95, jittered, 10% re-classed, extra boxes), rows shuffled.
Ours, each on the full size: ``wb.agreement_summary``, ``wb.pairwise_agreement``,
``wb.annotator_quality`` (against the majority consensus) and ``wb.confused_pairs``
(target: each under 20 s).

Peer, measured in the same run: the straightforward per-image approach. For every image and
every pair of annotators, the IoU matrix of their boxes (numpy), then
``scipy.optimize.linear_sum_assignment`` on the ``1 - IoU`` cost matrix with the pairs
under the IoU threshold gated out (cost 1e3), keeping the assigned pairs with IoU >= 0.5;
per pair of annotators the detection F1 (``2 matched / (boxes_a + boxes_b)``), the share of
matched boxes with the same class, Cohen's kappa of the matched classes
(``sklearn.metrics.cohen_kappa_score``) and the mean IoU of the matches. The peer's inputs
(per image and annotator, the boxes and classes as arrays) are built before its clock
starts. It loops in Python over images and pairs, so it is measured on the first 10,000
images and scaled by the ratio of boxes; ours is measured on that subset too, and its
per-pair F1, class agreement and mean IoU and the summary's pooled F1 and mean IoU are
compared with the peer's (absolute difference, to 1e-9). The peer computes no
Krippendorff's alpha (ours does, in both calls).

Usage: ``python benchmarks/bench_detection_agreement.py [n_images] [n_peer_images]``
(defaults 100000 and 10000).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import cohen_kappa_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_consensus import make_boxes  # noqa: E402
from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402

TARGET_SECONDS = 20.0
IOU = 0.5
GATE = 1e3
NOISE = ("2 shared cores (other engineers running tests at the same time): timings are "
         "noisy; compare with the peer measured in the same run.")


def make_data(n_images: int, seed: int = 0) -> pd.DataFrame:
    """``make_boxes`` with its rows shuffled (a real export is not sorted)."""
    ann = make_boxes(n_images, seed=seed)
    order = np.random.default_rng(seed + 1).permutation(len(ann))
    return ann.iloc[order].reset_index(drop=True)


def peer_inputs(ann: pd.DataFrame):
    """Per image: one (xyxy boxes, class codes) tuple per annotator (sorted names)."""
    annotators = sorted(ann["annotator"].unique())
    classes = sorted(ann["label"].unique())
    a_code = pd.Index(annotators).get_indexer(ann["annotator"])
    l_code = pd.Index(classes).get_indexer(ann["label"])
    item = ann["item_id"].to_numpy(dtype=object)
    x, y = ann["x"].to_numpy(), ann["y"].to_numpy()
    xyxy = np.c_[x, y, x + ann["w"].to_numpy(), y + ann["h"].to_numpy()]
    codes, uniq = pd.factorize(item, sort=True)
    order = np.lexsort((np.arange(len(ann)), a_code, codes))
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    out = []
    for i in range(len(uniq)):
        rows = order[bounds[i]:bounds[i + 1]]
        out.append([(xyxy[r], l_code[r]) for r in
                    (rows[a_code[rows] == a] for a in range(len(annotators)))])
    return out, annotators, len(classes)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """COCO IoU (no +1) of every box of ``a`` with every box of ``b`` (x1, y1, x2, y2)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def peer(inputs, annotators, n_classes: int) -> dict:
    """Per pair of annotators (a < b): counts, F1, class agreement, kappa, mean IoU."""
    n_ann = len(annotators)
    pairs = [(a, b) for a in range(n_ann) for b in range(a + 1, n_ann)]
    acc = {p: {"n_a": 0, "n_b": 0, "iou": [], "la": [], "lb": []} for p in pairs}
    for per_ann in inputs:
        for a, b in pairs:
            (ba, la), (bb, lb) = per_ann[a], per_ann[b]
            s = acc[(a, b)]
            s["n_a"] += len(ba)
            s["n_b"] += len(bb)
            if not len(ba) or not len(bb):
                continue
            iou = _iou_matrix(ba, bb)
            cost = np.where(iou >= IOU, 1.0 - iou, GATE)
            r, c = linear_sum_assignment(cost)
            ok = iou[r, c] >= IOU
            s["iou"].append(iou[r[ok], c[ok]])
            s["la"].append(la[r[ok]])
            s["lb"].append(lb[c[ok]])
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for (a, b), s in acc.items():
            v = np.concatenate(s["iou"]) if s["iou"] else np.zeros(0)
            la = np.concatenate(s["la"]) if s["la"] else np.zeros(0, int)
            lb = np.concatenate(s["lb"]) if s["lb"] else np.zeros(0, int)
            n_m = len(v)
            out[(annotators[a], annotators[b])] = {
                "n_boxes_a": s["n_a"], "n_boxes_b": s["n_b"], "n_matched": n_m,
                "iou_sum": float(v.sum()),
                "detection_f1": 2 * n_m / (s["n_a"] + s["n_b"]),
                "class_agreement": float((la == lb).mean()) if n_m else np.nan,
                "kappa": float(cohen_kappa_score(la, lb, labels=np.arange(n_classes))),
                "mean_iou": float(v.mean()) if n_m else np.nan,
            }
    return out


def compare(sub: pd.DataFrame, inputs, annotators, n_classes: int) -> str:
    """Largest absolute difference between ours and the peer on the subset."""
    ref = peer(inputs, annotators, n_classes)
    pairs = wb.pairwise_agreement(sub)
    summary = wb.agreement_summary(sub)
    worst = {"detection_f1": 0.0, "class_agreement": 0.0, "kappa": 0.0, "mean_iou": 0.0}
    counts_equal = True
    for row in pairs.itertuples(index=False):
        r = ref[(row.annotator_a, row.annotator_b)]
        counts_equal &= (row.n_boxes_a, row.n_boxes_b, row.n_matched) == \
            (r["n_boxes_a"], r["n_boxes_b"], r["n_matched"])
        for key in worst:
            worst[key] = max(worst[key], abs(getattr(row, key) - r[key]))
    n_m = sum(r["n_matched"] for r in ref.values())
    sides = sum(r["n_boxes_a"] + r["n_boxes_b"] for r in ref.values())
    pooled_f1 = abs(summary["detection_f1"] - 2 * n_m / sides)
    pooled_iou = abs(summary["mean_iou"] - sum(r["iou_sum"] for r in ref.values()) / n_m)
    ok = counts_equal and max(*worst.values(), pooled_f1, pooled_iou) <= 1e-9
    return (f"{'same' if ok else 'DIFFERENT'} results as the peer on the subset: per-pair "
            f"counts (boxes, matched) {'equal' if counts_equal else 'differ'}; largest "
            f"differences per pair: F1 {worst['detection_f1']:.1e}, class agreement "
            f"{worst['class_agreement']:.1e}, kappa {worst['kappa']:.1e}, mean IoU "
            f"{worst['mean_iou']:.1e}; summary pooled F1 {pooled_f1:.1e}, mean IoU "
            f"{pooled_iou:.1e} (tolerance 1e-9).")


def main(n_images: int = 100_000, n_peer: int = 10_000) -> None:
    ann = make_data(n_images)
    size = f"{n_images:,} images x 3 annotators ({len(ann):,} boxes, 10 classes, shuffled)"
    n_sub = min(n_peer, n_images)
    sub_ids = set(np.char.add("img", np.arange(n_sub).astype(str)))
    sub = ann[ann["item_id"].isin(sub_ids)].reset_index(drop=True)
    inputs, annotators, n_classes = peer_inputs(sub)
    scale = len(ann) / len(sub)  # by boxes: the peer's time grows with the boxes

    peer_sub = measure(peer, inputs, annotators, n_classes, timeout=1800)
    print("peer on the subset", peer_sub, flush=True)
    check = compare(sub, inputs, annotators, n_classes)
    print(check, flush=True)
    peer_scaled = (dict(peer_sub, seconds=peer_sub["seconds"] * scale, peak_mb=None)
                   if peer_sub["seconds"] is not None else peer_sub)
    peer_note = (f"Peer measured on the first {n_sub:,} images ({len(inputs):,} with boxes, "
                 f"{len(sub):,} boxes): {peer_sub['seconds'] or float('nan'):.2f} s, scaled "
                 f"x{scale:.2f} (boxes) to the full size")
    rows = []
    for name, fn in (("agreement_summary", wb.agreement_summary),
                     ("pairwise_agreement", wb.pairwise_agreement),
                     ("annotator_quality", wb.annotator_quality),
                     ("confused_pairs", wb.confused_pairs)):
        res = measure(fn, ann, timeout=900)
        with_peer = name in ("agreement_summary", "pairwise_agreement")
        notes = NOISE
        if with_peer:
            ours_sub = measure(fn, sub, timeout=600)
            notes = (f"{peer_note}; ours on the same subset "
                     f"{ours_sub['seconds'] or float('nan'):.2f} s (includes Krippendorff's "
                     f"alpha, which the peer does not compute). {check} {NOISE}")
        elif name == "annotator_quality":
            notes = ("against the majority consensus (box_consensus, then Hungarian matching "
                     f"of each annotator to it); no per-image peer. {NOISE}")
        else:
            notes = f"matched box pairs of other classes, with images and boxes; {NOISE}"
        rows.append({
            "operation": f"{name} [boxes]", "size": size, "ours": res,
            "peer": ("per image and pair: numpy IoU + scipy linear_sum_assignment "
                     f"({n_sub // 1000}k-image subset, scaled)" if with_peer else None),
            "peer_result": peer_scaled if with_peer else None,
            "target": f"< {TARGET_SECONDS:.0f} s", "notes": notes,
        })
        print(rows[-1]["operation"], res, flush=True)
    print(record("detection_agreement", rows))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
