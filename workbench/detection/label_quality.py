"""Suspected box label errors of a detection project, scored by ``cleanlab.object_detection``.

The project's boxes and one run's detections are converted to cleanlab's format (per image:
``{'bboxes': [[x1, y1, x2, y2], ...], 'labels': [class index, ...]}`` and a list of one
``[x1, y1, x2, y2, confidence]`` array per class) and scored by cleanlab's public functions
in ``cleanlab.object_detection.rank``:

- ``missing``: ``compute_overlooked_box_scores``, one score per confident detection that
  overlaps no reference box;
- ``mislocated``: ``compute_badloc_box_scores``, one score per reference box;
- ``wrong_class``: ``compute_swap_box_scores``, one score per reference box;
- ``image_score``: ``get_label_quality_scores``, one score per image.

The three per-box scorers get cleanlab's documented ``auxiliary_inputs`` (per image the
boxes, the detections, their IoU and similarity matrices and the dataset's smallest
non-zero similarity), built here once with numpy instead of three times by cleanlab's
Python loops; the scores equal cleanlab's on the same inputs to float rounding (1e-9
relative), which the tests check against cleanlab called directly.

Every score is between 0 and 1, and **lower means more likely a label error**. Crowd regions
(``iscrowd``) are not scored, and the detections inside them are not ``missing`` boxes: COCO's
matching ignores both, and cleanlab has no notion of a crowd.

Annotator evidence (``use_annotations=True``, the default when the project has annotations):
the annotators' boxes are clustered by :func:`workbench.detection.consensus.box_consensus`
(``method='majority'``, its default IoU 0.55); consensus boxes with ``support >= 2`` are
compared with the dataset boxes of the same image (class-agnostic IoU):

- ``mislocated``: a dataset box whose best consensus IoU is below 0.7 gets the annotator
  score = that IoU (a box no consensus box overlaps gets no annotator score: it may be an
  object the annotators missed); suggestion = the fused box;
- ``wrong_class``: a dataset box whose best consensus box (IoU >= 0.5) has another class
  gets ``1 - confidence`` of that consensus box; suggestion = its class and fused box;
- ``missing``: a consensus box overlapping no dataset box at IoU >= 0.5 gets
  ``1 - confidence``; it is merged with a cleanlab ``missing`` row whose detection overlaps
  it at IoU >= 0.5, else it is a row of its own (``pred_id`` NA).

The combined score of a row is the product of cleanlab's and the annotator score (1 when
the annotators do not argue against the box): at most the lower of the two, and lower
still when both argue against the box (two independent pieces of evidence); the
suggestion comes from the lower of the two.
cleanlab's ``filter.find_label_issues(..., return_indices_ranked_by_score=True)`` is not
used (it calls ``numpy.in1d``, removed in numpy 2.4); rows are ranked by score here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MissingDependencyError, SchemaError
from .consensus import box_consensus

__all__ = ["detection_label_issues", "to_cleanlab_inputs", "ISSUE_TYPES"]

ISSUE_TYPES = ("missing", "mislocated", "wrong_class")
_ALPHA = 0.9        # cleanlab.internal.constants.ALPHA (IoU weight in the similarity)
_EUC_FACTOR = 0.1   # cleanlab.internal.constants.EUC_FACTOR (centre distance decay)
_MIN_SUPPORT = 2    # consensus boxes drawn by at least this many annotators are evidence
_MATCH_IOU = 0.5    # a consensus box is the same object as a dataset box at this IoU
_LOOSE_IOU = 0.7    # a dataset box further than this from its consensus box is mislocated


def _xyxy(frame: pd.DataFrame) -> np.ndarray:
    xy = frame[["x", "y", "w", "h"]].to_numpy(dtype=np.float64, copy=True)
    xy[:, 2:] += xy[:, :2]
    return xy


def _encode(project, run, func):
    """Boxes and detections as arrays sorted by image (then class for detections)."""
    run = project._check_run(run, func)
    classes = [str(c) for c in project.classes]
    item_index = pd.Index(project.items["item_id"].astype(str))
    boxes = project.boxes
    pred = project.predictions[project.predictions["run"] == run]
    boxes, pred = _without_crowds(boxes, pred)
    class_index = pd.Index(classes)
    out = {}
    for name, frame in (("box", boxes), ("pred", pred)):
        k = class_index.get_indexer(frame["label"].astype(str))
        if (k < 0).any():
            bad = sorted(set(frame["label"].astype(str)[k < 0]))[:10]
            what = "boxes" if name == "box" else f"detections of run {run!r}"
            raise SchemaError(f"{func}: {what} use labels {bad} that are not among the "
                              f"project's classes {classes[:20]}. Add them to classes.")
        pos = item_index.get_indexer(frame["item_id"].astype(str))
        order = np.lexsort((k, pos)) if name == "pred" else np.argsort(pos, kind="stable")
        xyxy = _xyxy(frame)[order]
        ids = frame["box_id" if name == "box" else "pred_id"].to_numpy(dtype=object)[order]
        conf = frame["confidence"].to_numpy(np.float64)[order] if name == "pred" else None
        bounds = np.searchsorted(pos[order], np.arange(len(item_index) + 1))
        out[name] = (xyxy, k[order], ids, conf, bounds)
    return item_index, classes, out


def _without_crowds(boxes: pd.DataFrame, pred: pd.DataFrame
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The boxes without crowd regions, the detections without those a crowd absorbs.

    A crowd region (``iscrowd``) marks many objects not boxed one by one; COCO's matching
    ignores it and the detections inside it (see :mod:`workbench.detection.matching`).
    cleanlab knows no crowds: given one, it would call the region a mislocated box and its
    detections missing boxes. A detection is absorbed when its same-class crowd IoU
    (intersection over the detection's area) is at least 0.5 and no regular box of its
    class overlaps it at IoU 0.5, the rule COCO applies at that threshold.
    """
    if "iscrowd" not in boxes.columns:
        return boxes, pred
    crowd = boxes["iscrowd"].fillna(False).astype(bool).to_numpy()
    if not crowd.any():
        return boxes, pred
    absorbed = _overlapping(pred, boxes[crowd], crowd=True)
    inside = np.flatnonzero(absorbed)  # only these can be kept by a regular box
    absorbed[inside[_overlapping(pred.iloc[inside], boxes[~crowd], crowd=False)]] = False
    return boxes[~crowd], pred[~absorbed]


def _overlapping(pred: pd.DataFrame, boxes: pd.DataFrame, *, crowd: bool) -> np.ndarray:
    """Per detection: whether a box of its image and class overlaps it at COCO IoU >= 0.5."""
    from .matching import coco_iou

    left = pd.DataFrame({"d": np.arange(len(pred)), "item_id": pred["item_id"].astype(str),
                         "label": pred["label"].astype(str)})
    right = pd.DataFrame({"g": np.arange(len(boxes)), "item_id": boxes["item_id"].astype(str),
                          "label": boxes["label"].astype(str)})
    pairs = left.merge(right, on=["item_id", "label"])
    d = pred[["x", "y", "w", "h"]].to_numpy(np.float64)[pairs["d"].to_numpy()].T
    g = boxes[["x", "y", "w", "h"]].to_numpy(np.float64)[pairs["g"].to_numpy()].T
    hit = coco_iou(d, g, np.full(len(pairs), crowd)) >= 0.5
    out = np.zeros(len(pred), bool)
    out[pairs["d"].to_numpy()[hit]] = True
    return out


def to_cleanlab_inputs(project, run: str | None = None):
    """Convert a detection project's boxes and one run's detections to cleanlab's format.

    Parameters
    ----------
    project : DetectionProject
        The reference is ``project.boxes``; detections come from ``project.predictions``.
    run : str, optional
        The run; default the project's default run.

    Returns
    -------
    labels : list of dict
        Per image (``project.items`` order), crowd regions (``iscrowd``) left out with the
        detections they absorb: ``bboxes`` (L, 4) in ``x1, y1, x2, y2`` and
        ``labels`` (L,) class indices in ``project.classes`` order.
    predictions : list of list of ndarray
        Per image, one (M_k, 5) array ``[x1, y1, x2, y2, confidence]`` per class.
    box_ids : list of ndarray
        Per image, the ``box_id`` of each row of ``labels[i]['bboxes']``.
    pred_ids : list of ndarray
        Per image, the ``pred_id`` of each detection in cleanlab's order (class by class).
    """
    items, classes, enc = _encode(project, run, "to_cleanlab_inputs")
    return _split(len(items), len(classes), enc)


def _split(n_items: int, n_classes: int, enc):
    bxy, bk, bids, _, bb = enc["box"]
    pxy, pk, pids, pconf, pb = enc["pred"]
    parr = np.column_stack([pxy, pconf])
    labels, predictions, box_ids, pred_ids = [], [], [], []
    for i in range(n_items):
        labels.append({"bboxes": bxy[bb[i]:bb[i + 1]], "labels": bk[bb[i]:bb[i + 1]]})
        box_ids.append(bids[bb[i]:bb[i + 1]])
        a, k = parr[pb[i]:pb[i + 1]], pk[pb[i]:pb[i + 1]]
        cut = np.searchsorted(k, np.arange(n_classes + 1))
        predictions.append([a[cut[c]:cut[c + 1]] for c in range(n_classes)])
        pred_ids.append(pids[pb[i]:pb[i + 1]])
    return labels, predictions, box_ids, pred_ids


def _similarity(lab: np.ndarray, prd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box similarity as cleanlab computes it, and the IoU matrix."""
    x1 = np.maximum(lab[:, None, 0], prd[None, :, 0])
    y1 = np.maximum(lab[:, None, 1], prd[None, :, 1])
    x2 = np.minimum(lab[:, None, 2], prd[None, :, 2])
    y2 = np.minimum(lab[:, None, 3], prd[None, :, 3])
    inter = np.where((x2 >= x1) & (y2 >= y1), (x2 - x1) * (y2 - y1), 0.0)
    area_l = (lab[:, 2] - lab[:, 0]) * (lab[:, 3] - lab[:, 1])
    area_p = (prd[:, 2] - prd[:, 0]) * (prd[:, 3] - prd[:, 1])
    iou = inter / np.maximum(area_l[:, None] + area_p[None, :] - inter, 1e-6)
    cl = (lab[:, :2] + lab[:, 2:4]) / 2
    cp = (prd[:, :2] + prd[:, 2:4]) / 2
    dist = np.linalg.norm(cl[:, None, :] - cp[None, :, :], axis=2)
    return _ALPHA * iou + (1 - _ALPHA) * np.exp(-dist * _EUC_FACTOR), iou


def detection_label_issues(project, run: str | None = None, *, threshold: float = 0.5,
                           top_k: int | None = None, high_probability_threshold: float = 0.5,
                           low_probability_threshold: float = 0.5,
                           use_annotations: bool = True) -> pd.DataFrame:
    """Suspected box label errors: missing, mislocated and wrong-class boxes.

    Scored by cleanlab and, where the project has annotations, by the annotators' consensus
    boxes (see the module docstring); the combined score is the product of the two.

    Parameters
    ----------
    project : DetectionProject
        Reference boxes ``project.boxes``; detections of ``run`` (out of sample, e.g.
        cross-validated, for the scores to mean anything).
    run : str, optional
        Model run; default the project's default run.
    threshold : float, default=0.5
        A row is an issue (``is_issue``) when its score is at most this value.
    top_k : int, optional
        If given, the ``top_k`` lowest-scored rows are the issues instead (``threshold`` is
        then ignored).
    high_probability_threshold : float, default=0.5
        cleanlab's confidence above which a detection can suggest a ``missing`` box or a
        ``wrong_class`` (``compute_overlooked_box_scores``, ``compute_swap_box_scores``).
        cleanlab's own default, 0.95, suits raw detector scores; with calibrated
        confidences (the probability that the detection is right) almost no detection
        reaches it, so the default here is 0.5: more likely right than wrong.
    low_probability_threshold : float, default=0.5
        cleanlab's minimum confidence of a detection used for ``mislocated``
        (``compute_badloc_box_scores``; 0.5 is cleanlab's default).
    use_annotations : bool, default=True
        Combine cleanlab's scores with the annotators' consensus boxes when the project has
        annotations (``project.annotations``); ``False``: cleanlab alone.

    Returns
    -------
    DataFrame
        One row per scored box, most suspicious first (``rank``, see Notes):
        ``item_id``, ``box_id`` (NA for ``missing``), ``pred_id`` (the detection behind
        the suggestion: for ``missing`` the detection itself, for ``mislocated`` the
        same-class detection cleanlab compared the box with, for ``wrong_class`` the
        confident other-class detection overlapping the box most; NA when none),
        ``issue_type`` (``missing``, ``mislocated``,
        ``wrong_class``), ``score`` (cleanlab's per-box score, 0 to 1, **lower = more
        likely an issue**), ``label`` (the box's class; NA for ``missing``),
        ``suggested_label``, ``x``, ``y``, ``w``, ``h`` (the suggesting detection's box;
        NA without one), ``image_score`` (cleanlab's ``get_label_quality_scores`` of the
        image, lower = worse), ``rank`` (1 = most suspicious) and ``is_issue``. Rows for
        ``missing`` exist only for detections above ``high_probability_threshold`` that
        overlap no reference box; every reference box has a ``mislocated`` and a
        ``wrong_class`` row (score 1.0 when no detection argues against it).
        ``score`` is the combined score when annotations are used; ``evidence`` says
        which gave it (``'cleanlab'`` or ``'annotators'``) and ``consensus_id`` names the
        consensus box behind an annotator suggestion (NA otherwise). With annotations,
        ``missing`` rows also come from consensus boxes no dataset box matches.

    Raises
    ------
    ValueError
        If a parameter is out of range or ``run`` is not a run of the project.
    SchemaError
        If boxes use a label outside ``project.classes``.

    Notes
    -----
    The three scores are not on one scale (an overlooked score is at most 0.1 by
    construction: the detection overlaps no box), so a plain sort by score would list every
    ``missing`` row before any other. The ranking is therefore round-robin over the issue
    types: within each type by score ascending (ties: the suggesting detection's confidence,
    higher first), then the first of each type, the second of each type, and so on, each
    round in score order. ``top_k`` takes the first ``top_k`` of that ranking.

    Examples
    --------
    >>> import workbench as wb  # doctest: +SKIP
    >>> project = wb.open_project("data/sample-detection")  # doctest: +SKIP
    >>> issues = wb.label_issues(project, run="candidate")  # doctest: +SKIP
    >>> issues[issues["is_issue"]].head()  # doctest: +SKIP
    """
    func = "label_issues"
    for name, value in (("threshold", threshold),
                        ("high_probability_threshold", high_probability_threshold),
                        ("low_probability_threshold", low_probability_threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 <= value <= 1:
            raise ValueError(f"The '{name}' parameter of {func} must be a float in the range "
                             f"[0, 1]. Got {value!r} instead.")
    if not isinstance(use_annotations, (bool, np.bool_)):
        raise ValueError(f"The 'use_annotations' parameter of {func} must be a bool. "
                         f"Got {use_annotations!r} instead.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 0):
        raise ValueError(f"The 'top_k' parameter of {func} must be an int in the range "
                         f"[0, inf) or None. Got {top_k!r} instead.")
    try:
        from cleanlab.object_detection import rank
    except ImportError as exc:  # pragma: no cover - core dependency
        raise MissingDependencyError("label issues need cleanlab: pip install cleanlab") from exc

    items, classes, enc = _encode(project, run, func)
    n = len(items)
    labels, predictions, _, _ = _split(n, len(classes), enc)
    bxy, bk, bids, _, bb = enc["box"]
    pxy, pk, pids, pconf, pb = enc["pred"]
    image_score = rank.get_label_quality_scores(labels, predictions, verbose=False)

    # cleanlab's documented ``auxiliary_inputs``, built once (vectorised per image) and
    # shared by its three per-box scorers; and the detection behind each box's score
    aux, sims = [], []
    mis_j, swap_j = np.full(len(bk), -1), np.full(len(bk), -1)
    for i in range(n):
        lab, ps = labels[i], slice(pb[i], pb[i + 1])
        sim, iou = _similarity(lab["bboxes"], pxy[ps])
        aux.append({"pred_labels": pk[ps], "pred_label_probs": pconf[ps],
                    "pred_bboxes": pxy[ps], "lab_labels": lab["labels"],
                    "lab_bboxes": lab["bboxes"], "similarity_matrix": sim, "iou_matrix": iou})
        sims.append(sim[sim != 0])
        if sim.size:
            same = pk[ps][None, :] == lab["labels"][:, None]
            overlap = iou > 0
            for mask, out_j in (
                    (same & (pconf[ps] > low_probability_threshold)[None, :] & overlap, mis_j),
                    (~same & (pconf[ps] > high_probability_threshold)[None, :] & overlap,
                     swap_j)):
                j = np.argmax(np.where(mask, sim, -np.inf), axis=1)
                out_j[bb[i]:bb[i + 1]] = np.where(mask.any(axis=1), pb[i] + j, -1)
    nonzero = np.concatenate(sims) if sims else np.zeros(0)
    min_similarity = min(1.0, float(nonzero.min())) if nonzero.size else 1.0
    for a in aux:
        a["min_possible_similarity"] = min_similarity
    overlooked = rank.compute_overlooked_box_scores(
        auxiliary_inputs=aux, high_probability_threshold=high_probability_threshold)
    badloc = rank.compute_badloc_box_scores(
        auxiliary_inputs=aux, low_probability_threshold=low_probability_threshold)
    swap = rank.compute_swap_box_scores(
        auxiliary_inputs=aux, high_probability_threshold=high_probability_threshold)

    def flat(scores, size):
        return np.concatenate(scores) if len(scores) else np.zeros(size)

    over = flat(overlooked, len(pk))
    bad, sw = flat(badloc, len(bk)), flat(swap, len(bk))
    box_item = np.repeat(np.arange(n), np.diff(bb))
    pred_item = np.repeat(np.arange(n), np.diff(pb))
    miss = np.flatnonzero(~np.isnan(over))
    mis_j = np.where(bad < 1, mis_j, -1)   # no suggestion for a box cleanlab finds clean
    swap_j = np.where(sw < 1, swap_j, -1)
    box_pos = np.arange(len(bk))
    item_pos = np.concatenate([pred_item[miss], box_item, box_item])
    box_pos = np.concatenate([np.full(len(miss), -1), box_pos, box_pos])
    pred_pos = np.concatenate([miss, mis_j, swap_j])
    kinds = np.repeat(np.array(ISSUE_TYPES, dtype=object), [len(miss), len(bk), len(bk)])
    has_pred, has_box = pred_pos >= 0, box_pos >= 0
    names = pd.array(classes, dtype="str")
    ids_str = pd.array(np.asarray(items, dtype=object), dtype="str")
    xy = pxy[np.where(has_pred, pred_pos, 0)] if len(pxy) else np.zeros((len(pred_pos), 4))
    nan = np.nan
    out = pd.DataFrame({
        "item_id": ids_str.take(item_pos),
        "box_id": pd.array(bids, dtype="str").take(np.where(has_box, box_pos, -1),
                                                   allow_fill=True),
        "pred_id": pd.array(pids, dtype="str").take(np.where(has_pred, pred_pos, -1),
                                                    allow_fill=True),
        "issue_type": pd.array(kinds, dtype="str"),
        "score": np.concatenate([over[miss], bad, sw]),
        "label": names.take(np.where(has_box, bk[np.where(has_box, box_pos, 0)]
                                     if len(bk) else -1, -1), allow_fill=True),
        "suggested_label": names.take(np.where(has_pred, pk[np.where(has_pred, pred_pos, 0)]
                                               if len(pk) else -1, -1), allow_fill=True),
        "x": np.where(has_pred, xy[:, 0], nan),
        "y": np.where(has_pred, xy[:, 1], nan),
        "w": np.where(has_pred, xy[:, 2] - xy[:, 0], nan),
        "h": np.where(has_pred, xy[:, 3] - xy[:, 1], nan),
        "image_score": np.asarray(image_score, dtype=np.float64)[item_pos],
        "_conf": np.where(has_pred, pconf[np.where(has_pred, pred_pos, 0)]
                          if len(pconf) else 0.0, 0.0),
    })
    out["evidence"] = "cleanlab"
    out["consensus_id"] = pd.array([pd.NA] * len(out), dtype="str")
    ann = getattr(project, "annotations", None)
    if use_annotations and ann is not None and len(ann):
        out = _combine(out, project, items, classes, enc, len(miss),
                       np.asarray(image_score, dtype=np.float64))
    # within a type: by score, ties by the suggesting detection's confidence (higher first);
    # then round-robin over the types (each type's 1st, then each type's 2nd...)
    out = out.sort_values(["score", "_conf"], ascending=[True, False], kind="stable",
                          ignore_index=True)
    out["_turn"] = out.groupby("issue_type", sort=False).cumcount()
    out = out.sort_values(["_turn", "score"], kind="stable", ignore_index=True)
    out = out.drop(columns=["_conf", "_turn"])
    out["rank"] = np.arange(1, len(out) + 1)
    if top_k is None:
        out["is_issue"] = out["score"].to_numpy() <= threshold
    else:
        out["is_issue"] = out["rank"].to_numpy() <= top_k
    return out


def _annotator_evidence(project, items, classes, enc):
    """Per dataset box and per unmatched consensus box, the annotators' scores."""
    cons = box_consensus(project.annotations, "majority", items=project, classes=classes)
    cons = cons[cons["support"].to_numpy() >= _MIN_SUPPORT]
    n = len(items)
    annotated = np.zeros(n, dtype=bool)
    ann_pos = items.get_indexer(project.annotations["item_id"].astype(str))
    annotated[ann_pos[ann_pos >= 0]] = True
    cpos = items.get_indexer(cons["item_id"].astype(str))
    keep = cpos >= 0
    cons, cpos = cons[keep], cpos[keep]
    order = np.argsort(cpos, kind="stable")
    cxy = _xyxy(cons)[order]
    ck = pd.Index(classes).get_indexer(cons["label"].astype(str))[order]
    cconf = cons["confidence"].to_numpy(np.float64)[order]
    cids = cons["consensus_id"].astype(str).to_numpy(dtype=object)[order]
    cb = np.searchsorted(cpos[order], np.arange(n + 1))
    bxy, bk, _, _, bb = enc["box"]
    loc, loc_c = np.ones(len(bk)), np.full(len(bk), -1)
    cls, cls_c = np.ones(len(bk)), np.full(len(bk), -1)
    cluster_best = np.zeros(len(ck))
    for i in np.flatnonzero(annotated):
        bs, cs = slice(bb[i], bb[i + 1]), slice(cb[i], cb[i + 1])
        if bb[i] == bb[i + 1]:
            continue
        if cb[i] == cb[i + 1]:
            continue
        _, iou = _similarity(bxy[bs], cxy[cs])
        cluster_best[cs] = iou.max(axis=0)
        j = iou.argmax(axis=1)
        best = iou[np.arange(len(j)), j]
        cj = cb[i] + j
        loose = (best > 0) & (best < _LOOSE_IOU)
        loc[bs] = np.where(loose, best, 1.0)
        loc_c[bs] = np.where(loose, cj, -1)
        swapped = (best >= _MATCH_IOU) & (ck[cj] != bk[bs])
        cls[bs] = np.where(swapped, 1.0 - cconf[cj], 1.0)
        cls_c[bs] = np.where(swapped, cj, -1)
    unmatched = np.flatnonzero(cluster_best < _MATCH_IOU)
    return {"xy": cxy, "k": ck, "conf": cconf, "ids": cids, "item": cpos[order],
            "loc": loc, "loc_c": loc_c, "cls": cls, "cls_c": cls_c, "missing": unmatched}


def _combine(out, project, items, classes, enc, n_miss, image_score):
    """Fold the annotator evidence into cleanlab's rows (before ranking)."""
    ev = _annotator_evidence(project, items, classes, enc)
    names = np.asarray(classes, dtype=object)
    nb = len(enc["box"][1])
    score = out["score"].to_numpy(np.float64).copy()
    cols = {c: out[c].to_numpy(dtype=object).copy()
            for c in ("pred_id", "suggested_label", "evidence", "consensus_id")}
    xywh = out[["x", "y", "w", "h"]].to_numpy(np.float64).copy()
    conf = out["_conf"].to_numpy(np.float64).copy()

    def take(rows, a_score, c):
        better = a_score < score[rows]
        score[rows] = score[rows] * a_score  # two independent pieces of evidence
        rows, c = rows[better], c[better]
        cols["evidence"][rows] = "annotators"
        has = c >= 0
        r, cc = rows[has], c[has]
        cols["pred_id"][r] = pd.NA
        cols["consensus_id"][r] = ev["ids"][cc]
        cols["suggested_label"][r] = names[ev["k"][cc]]
        xy = ev["xy"][cc]
        xywh[r] = np.column_stack([xy[:, :2], xy[:, 2:] - xy[:, :2]])
        conf[r] = ev["conf"][cc]

    box_rows = np.arange(nb)
    take(n_miss + box_rows, ev["loc"], ev["loc_c"])
    take(n_miss + nb + box_rows, ev["cls"], ev["cls_c"])
    # consensus boxes nobody put in the dataset: merge with cleanlab's missing rows
    item_ids = out["item_id"].to_numpy(dtype=object)
    miss_rows = np.arange(n_miss)
    miss_xy = np.column_stack([xywh[:n_miss, :2], xywh[:n_miss, :2] + xywh[:n_miss, 2:]])
    new = []
    items_arr = np.asarray(items, dtype=object)
    for c in ev["missing"]:
        a_score = 1.0 - ev["conf"][c]
        same = miss_rows[item_ids[:n_miss] == items_arr[ev["item"][c]]]
        if len(same):
            _, iou = _similarity(ev["xy"][c:c + 1], miss_xy[same])
            j = int(iou[0].argmax())
            if iou[0, j] >= _MATCH_IOU:
                take(same[j:j + 1], np.array([a_score]), np.array([c]))
                continue
        new.append(c)
    out = out.assign(score=score, x=xywh[:, 0], y=xywh[:, 1], w=xywh[:, 2], h=xywh[:, 3],
                     _conf=conf, **{k: pd.array(v, dtype="str") if k != "evidence" else v
                                    for k, v in cols.items()})
    if new:
        new = np.asarray(new)
        xy = ev["xy"][new]
        item = pd.array(items_arr[ev["item"][new]].astype(str), dtype="str")
        extra = pd.DataFrame({
            "item_id": item, "box_id": pd.array([pd.NA] * len(new), dtype="str"),
            "pred_id": pd.array([pd.NA] * len(new), dtype="str"), "issue_type": "missing",
            "score": 1.0 - ev["conf"][new], "label": pd.array([pd.NA] * len(new), dtype="str"),
            "suggested_label": pd.array(names[ev["k"][new]], dtype="str"),
            "x": xy[:, 0], "y": xy[:, 1], "w": xy[:, 2] - xy[:, 0], "h": xy[:, 3] - xy[:, 1],
            "image_score": image_score[ev["item"][new]],
            "_conf": ev["conf"][new], "evidence": "annotators",
            "consensus_id": pd.array(ev["ids"][new], dtype="str")})
        out = pd.concat([out, extra[out.columns]], ignore_index=True)
    return out
