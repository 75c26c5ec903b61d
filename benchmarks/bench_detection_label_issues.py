"""Box label issues on 100,000 images, against ``cleanlab.object_detection`` called directly.

Data (rows shuffled, 10 classes, 640 x 480 images): 0-10 objects per image (mean 5). The
dataset's boxes are the objects with planted faults (3% dropped = missing, 3% shifted by
about half their size = mislocated, 3% re-classed = wrong class). Detections: each object
found with probability 0.85 (jittered about 5% of its size, 5% of another class,
confidence ~ Beta(6, 2)), plus about one background detection per image (Beta(2, 5)).
Three annotators draw each object with probability 0.95 (jittered, 5% re-classed). The
project is built with ``Project.from_frames(..., task='detection')`` before any clock.

Ours: ``wb.label_issues(project, 'model', use_annotations=False)`` (cleanlab alone: the
like-for-like comparison) and, reported separately, ``use_annotations=True`` (cleanlab
combined with the annotators' consensus boxes, which adds ``box_consensus`` on 1.4M
annotated boxes). Both return the ranked frame of every scored box.

Peer: the cleanlab functions ``detection_label_issues`` uses, called directly on cleanlab's
format (per image ``{'bboxes', 'labels'}`` and one ``[x1, y1, x2, y2, confidence]`` array
per class), with the same parameters: ``rank.get_label_quality_scores(labels, predictions)``,
``rank.compute_overlooked_box_scores(..., high_probability_threshold=0.5)``,
``rank.compute_badloc_box_scores(..., low_probability_threshold=0.5)`` and
``rank.compute_swap_box_scores(..., high_probability_threshold=0.5)`` (each builds its own
auxiliary inputs, as a direct call does). The peer's inputs are built independently of
workbench (numpy on the frames), before its clock starts. cleanlab's
``filter.find_label_issues(labels, predictions)`` (per-image mask, cleanlab's own
thresholds) is measured too and reported in the notes: our function does not call it.
Scores are compared per box (and per detection for ``missing``) on the measured images:
largest absolute difference, and whether all are within the tests' tolerance (relative
1e-9, absolute 1e-12).

cleanlab's ``filter.find_label_issues`` and the score comparison (which calls the peer again)
run on the first 10,000 images.

Usage: ``python benchmarks/bench_detection_label_issues.py [n_images] [n_peer_images]
[n_check_images]`` (defaults 100000, 100000, 10000; a smaller second number measures the
peer and ours on that many images and says so).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from cleanlab.object_detection import filter as cl_filter
from cleanlab.object_detection import rank as cl_rank

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402

TARGET_RATIO = 1.5
WIDTH, HEIGHT = 640.0, 480.0
N_CLASSES = 10
RUN = "model"
HIGH, LOW = 0.5, 0.5   # detection_label_issues' defaults
RTOL, ATOL = 1e-9, 1e-12
NOISE = ("2 shared cores (other engineers running tests at the same time): timings are "
         "noisy; the ratio is against the peer measured in the same run.")


def _clip_boxes(x, y, w, h):
    x = np.clip(x, 0, WIDTH - 2)
    y = np.clip(y, 0, HEIGHT - 2)
    w = np.minimum(np.maximum(w, 2), WIDTH - x)
    h = np.minimum(np.maximum(h, 2), HEIGHT - y)
    return x, y, w, h


def make_frames(n_images: int, seed: int = 0) -> dict:
    """Items, boxes (with planted faults), detections and three annotators' boxes."""
    rng = np.random.default_rng(seed)
    classes = [f"c{k}" for k in range(N_CLASSES)]
    names = np.asarray(classes, dtype=object)
    item_ids = np.char.add("img", np.arange(n_images).astype(str)).astype(object)
    n_obj = rng.integers(0, 11, n_images)
    obj_item = np.repeat(np.arange(n_images), n_obj)
    m = len(obj_item)
    ow, oh = rng.uniform(10, 120, m), rng.uniform(10, 120, m)
    ox, oy = rng.uniform(0, WIDTH - ow), rng.uniform(0, HEIGHT - oh)
    oc = rng.integers(0, N_CLASSES, m)

    # the dataset's boxes: faults planted
    fault = rng.random(m)
    keep = fault >= 0.03                                   # 3% missing
    shift = (fault >= 0.03) & (fault < 0.06)               # 3% mislocated
    swap = (fault >= 0.06) & (fault < 0.09)                # 3% wrong class
    sgn = rng.choice([-1.0, 1.0], (m, 2))
    bx, by, bw, bh = _clip_boxes(ox + shift * sgn[:, 0] * 0.5 * ow,
                                 oy + shift * sgn[:, 1] * 0.5 * oh, ow.copy(), oh.copy())
    bc = np.where(swap, (oc + rng.integers(1, N_CLASSES, m)) % N_CLASSES, oc)
    boxes = pd.DataFrame({"box_id": np.char.add("b", np.arange(m).astype(str)).astype(object),
                          "item_id": item_ids[obj_item], "label": names[bc],
                          "x": bx, "y": by, "w": bw, "h": bh})[keep]

    # detections of the objects, plus background
    found = rng.random(m) < 0.85
    jit = rng.normal(0, 0.05, (m, 4)) * np.c_[ow, oh, ow, oh]
    dx, dy, dw, dh = _clip_boxes(ox + jit[:, 0], oy + jit[:, 1], ow + jit[:, 2],
                                 oh + jit[:, 3])
    dc = np.where(rng.random(m) < 0.05, rng.integers(0, N_CLASSES, m), oc)
    n_bg = rng.poisson(1.0, n_images)
    bg_item = np.repeat(np.arange(n_images), n_bg)
    g = len(bg_item)
    gw, gh = rng.uniform(8, 80, g), rng.uniform(8, 80, g)
    gx, gy = rng.uniform(0, WIDTH - gw), rng.uniform(0, HEIGHT - gh)
    pred = pd.DataFrame({
        "item_id": item_ids[np.r_[obj_item[found], bg_item]], "run": RUN,
        "label": names[np.r_[dc[found], rng.integers(0, N_CLASSES, g)]],
        "x": np.r_[dx[found], gx], "y": np.r_[dy[found], gy],
        "w": np.r_[dw[found], gw], "h": np.r_[dh[found], gh],
        "confidence": np.r_[rng.beta(6, 2, int(found.sum())), rng.beta(2, 5, g)],
    })
    pred.insert(0, "pred_id", np.char.add("p", np.arange(len(pred)).astype(str)).astype(object))

    # three annotators
    parts = []
    for a in range(3):
        drawn = rng.random(m) < 0.95
        jit = rng.normal(0, 0.06, (m, 4)) * np.c_[ow, oh, ow, oh]
        ax, ay, aw, ah = _clip_boxes(ox + jit[:, 0], oy + jit[:, 1], ow + jit[:, 2],
                                     oh + jit[:, 3])
        ac = np.where(rng.random(m) < 0.05, rng.integers(0, N_CLASSES, m), oc)
        parts.append(pd.DataFrame({"item_id": item_ids[obj_item], "annotator": f"ann{a}",
                                   "label": names[ac], "x": ax, "y": ay, "w": aw,
                                   "h": ah})[drawn])
    ann = pd.concat(parts, ignore_index=True)
    ann.insert(0, "box_id", np.char.add("a", np.arange(len(ann)).astype(str)).astype(object))

    def shuffled(frame, s):
        return frame.sample(frac=1, random_state=seed + s).reset_index(drop=True)

    items = pd.DataFrame({"item_id": item_ids, "filepath": item_ids + ".jpg",
                          "width": int(WIDTH), "height": int(HEIGHT)})
    return {"items": items, "boxes": shuffled(boxes, 1), "predictions": shuffled(pred, 2),
            "annotations": shuffled(ann, 3), "classes": classes}


def subset(frames: dict, n: int) -> dict:
    """The first ``n`` images of ``frames`` and their rows."""
    ids = set(frames["items"]["item_id"].iloc[:n])
    return {k: (v[v["item_id"].isin(ids)].reset_index(drop=True)
                if isinstance(v, pd.DataFrame) else v) for k, v in frames.items()}


def peer_inputs(frames: dict):
    """cleanlab's format, built with numpy from the frames (not with workbench).

    Returns labels, predictions and, per image, the box ids and detection ids in cleanlab's
    order (boxes in row order; detections class by class, row order within a class).
    """
    items = frames["items"]["item_id"].to_numpy(dtype=object)
    pos_of = pd.Index(items)
    cls_of = pd.Index(frames["classes"])
    b, p = frames["boxes"], frames["predictions"]
    b_item = pos_of.get_indexer(b["item_id"])
    p_item = pos_of.get_indexer(p["item_id"])
    b_cls = cls_of.get_indexer(b["label"])
    p_cls = cls_of.get_indexer(p["label"])
    b_xyxy = np.c_[b.x, b.y, b.x + b.w, b.y + b.h]
    p_arr = np.c_[p.x, p.y, p.x + p.w, p.y + p.h, p.confidence]
    b_order = np.lexsort((np.arange(len(b)), b_item))
    p_order = np.lexsort((np.arange(len(p)), p_cls, p_item))
    b_bounds = np.searchsorted(b_item[b_order], np.arange(len(items) + 1))
    p_bounds = np.searchsorted(p_item[p_order], np.arange(len(items) + 1))
    b_ids, p_ids = b["box_id"].to_numpy(dtype=object), p["pred_id"].to_numpy(dtype=object)
    labels, predictions, box_ids, pred_ids = [], [], [], []
    for i in range(len(items)):
        rb = b_order[b_bounds[i]:b_bounds[i + 1]]
        labels.append({"bboxes": b_xyxy[rb], "labels": b_cls[rb]})
        box_ids.append(b_ids[rb])
        rp = p_order[p_bounds[i]:p_bounds[i + 1]]
        predictions.append([p_arr[rp[p_cls[rp] == k]] for k in range(N_CLASSES)])
        pred_ids.append(p_ids[rp])
    return labels, predictions, box_ids, pred_ids


def peer(labels, predictions):
    """The cleanlab calls of ``detection_label_issues``, made directly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = cl_rank.get_label_quality_scores(labels, predictions, verbose=False)
        over = cl_rank.compute_overlooked_box_scores(
            labels=labels, predictions=predictions, high_probability_threshold=HIGH)
        bad = cl_rank.compute_badloc_box_scores(
            labels=labels, predictions=predictions, low_probability_threshold=LOW)
        swap = cl_rank.compute_swap_box_scores(
            labels=labels, predictions=predictions, high_probability_threshold=HIGH)
    return image, over, bad, swap


def peer_filter(labels, predictions):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl_filter.find_label_issues(labels, predictions)


def ours(project, use_annotations: bool) -> pd.DataFrame:
    return wb.label_issues(project, RUN, use_annotations=use_annotations)


def compare(project, labels, predictions, box_ids, pred_ids) -> str:
    """Largest difference between our scores and cleanlab's, per box type."""
    image, over, bad, swap = peer(labels, predictions)
    out = ours(project, False)
    worst, ok = {}, True

    def diff(got, ref):
        """Largest absolute difference; whether all are within the tests' tolerance."""
        a, b = np.asarray(got, float), np.asarray(ref, float)
        if a.shape != b.shape or np.isnan(a).any():
            return np.inf, False
        d = np.abs(a - b)
        return (float(d.max()) if len(d) else 0.0), bool((d <= ATOL + RTOL * np.abs(b)).all())

    for kind, scores, ids, key in (("mislocated", bad, box_ids, "box_id"),
                                   ("wrong_class", swap, box_ids, "box_id"),
                                   ("missing", over, pred_ids, "pred_id")):
        s, i = np.concatenate(scores), np.concatenate(ids)
        ref = pd.Series(s[~np.isnan(s)], index=i[~np.isnan(s)])
        got = out[out["issue_type"] == kind].set_index(key)["score"]
        worst[kind], good = diff(got.reindex(ref.index), ref) if len(got) == len(ref) \
            else (np.inf, False)
        ok &= good
    items = project.items["item_id"].to_numpy(dtype=object)
    img = out.drop_duplicates("item_id").set_index("item_id")["image_score"]
    on = pd.Index(items).isin(img.index)
    worst["image"], good = diff(img.reindex(items[on]), np.asarray(image)[on])
    ok &= good
    counts = out["issue_type"].value_counts()
    return (f"{'Same' if ok else 'DIFFERENT'} scores as cleanlab (rtol {RTOL:g}, atol "
            f"{ATOL:g}, the tests' tolerance): largest absolute difference missing "
            f"{worst['missing']:.1e} ({counts.get('missing', 0):,} rows), mislocated "
            f"{worst['mislocated']:.1e}, wrong_class {worst['wrong_class']:.1e} "
            f"({counts.get('mislocated', 0):,} boxes each), image score {worst['image']:.1e} "
            "(cleanlab computes the distance term as 1 - (1 - exp(-d/10)), so it returns 0 "
            "where ours gives a score under 1e-16).")


def main(n_images: int = 100_000, n_peer: int = 100_000, n_check: int = 10_000) -> None:
    frames = make_frames(n_images)
    n_sub = min(n_peer, n_images)
    data = subset(frames, n_sub) if n_sub < n_images else frames
    project = _project(data)
    labels, predictions, _, _ = peer_inputs(data)
    size = (f"{n_sub:,} images ({len(data['boxes']):,} boxes, {len(data['predictions']):,} "
            f"detections, {len(data['annotations']):,} annotated boxes by 3 annotators, "
            f"{N_CLASSES} classes, shuffled)")
    where = ("" if n_sub == n_images else
             f"Measured on the first {n_sub:,} of {n_images:,} images (both ours and the "
             f"peer): cleanlab's Python loops over images make the full size too long. ")
    print(size, flush=True)

    peer_res = measure(peer, labels, predictions, timeout=3000)
    print("peer", peer_res, flush=True)
    ours_res = measure(ours, project, False, timeout=3000)
    print("ours (cleanlab alone)", ours_res, flush=True)
    ours_ann = measure(ours, project, True, timeout=3000)
    print("ours (with annotators)", ours_ann, flush=True)
    del project, labels, predictions

    # scores compared, and cleanlab's find_label_issues timed, on the first n_check images
    n_chk = min(n_check, n_sub)
    small = subset(frames, n_chk)
    s_project = _project(small)
    s_labels, s_predictions, s_box_ids, s_pred_ids = peer_inputs(small)
    filt = measure(peer_filter, s_labels, s_predictions, timeout=3000)
    print("cleanlab find_label_issues", filt, flush=True)
    check = compare(s_project, s_labels, s_predictions, s_box_ids, s_pred_ids)
    print(check, flush=True)
    filt_note = ("cleanlab's filter.find_label_issues (per-image mask; not called by ours) "
                 + (f"on the first {n_chk:,} images: {filt['seconds']:.1f} s (measured on "
                    f"the subset only, not scaled to the full size)."
                    if filt["seconds"] is not None else f"failed: {filt['error']}"))

    def ratio(res):
        return (res["seconds"] / peer_res["seconds"]
                if res["seconds"] and peer_res["seconds"] else float("nan"))

    peer_name = ("cleanlab.object_detection.rank: get_label_quality_scores + "
                 "compute_overlooked/badloc/swap_box_scores on the arrays")
    rows = [{
        "operation": "label_issues(detection, use_annotations=False)", "size": size,
        "ours": ours_res, "peer": peer_name, "peer_result": peer_res,
        "target": f"<= {TARGET_RATIO}x peer",
        "notes": (f"{where}ratio {ratio(ours_res):.2f}; ours also converts the frames to "
                  f"cleanlab's format, ranks and builds the frame of every scored box. On the "
                  f"first {n_chk:,} images: {check} {filt_note} {NOISE}"),
    }, {
        "operation": "label_issues(detection, use_annotations=True)", "size": size,
        "ours": ours_ann, "peer": peer_name, "peer_result": peer_res,
        "target": "reported (no peer combines annotators)",
        "notes": (f"{where}ratio {ratio(ours_ann):.2f}; cleanlab's scores combined with the "
                  f"annotators' majority consensus boxes (box_consensus on "
                  f"{len(data['annotations']):,} boxes), so more work than the peer. {NOISE}"),
    }]
    print(record("detection_label_issues", rows))


def _project(data: dict):
    return wb.Project.from_frames(
        data["items"], boxes=data["boxes"], annotations=data["annotations"],
        predictions=data["predictions"], classes=data["classes"], task="detection",
        default_run=RUN)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    main(*args)
