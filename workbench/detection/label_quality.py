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

Every score is cleanlab's, between 0 and 1, and **lower means more likely a label error**.
cleanlab's ``filter.find_label_issues(..., return_indices_ranked_by_score=True)`` is not
used (it calls ``numpy.in1d``, removed in numpy 2.4); rows are ranked by score here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MissingDependencyError, SchemaError

__all__ = ["detection_label_issues", "to_cleanlab_inputs", "ISSUE_TYPES"]

ISSUE_TYPES = ("missing", "mislocated", "wrong_class")
_ALPHA = 0.9        # cleanlab.internal.constants.ALPHA (IoU weight in the similarity)
_EUC_FACTOR = 0.1   # cleanlab.internal.constants.EUC_FACTOR (centre distance decay)


def _xyxy(frame: pd.DataFrame) -> np.ndarray:
    xy = frame[["x", "y", "w", "h"]].to_numpy(dtype=np.float64, copy=True)
    xy[:, 2:] += xy[:, :2]
    return xy


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
        Per image (``project.items`` order): ``bboxes`` (L, 4) in ``x1, y1, x2, y2`` and
        ``labels`` (L,) class indices in ``project.classes`` order.
    predictions : list of list of ndarray
        Per image, one (M_k, 5) array ``[x1, y1, x2, y2, confidence]`` per class.
    box_ids : list of ndarray
        Per image, the ``box_id`` of each row of ``labels[i]['bboxes']``.
    pred_ids : list of ndarray
        Per image, the ``pred_id`` of each detection in cleanlab's order (class by class).
    """
    run = project._check_run(run, "label_issues")
    classes = list(project.classes)
    code = {c: i for i, c in enumerate(classes)}
    items = project.items["item_id"].to_numpy(dtype=object)
    boxes = project.boxes
    pred = project.predictions[project.predictions["run"] == run]
    unknown = sorted(set(map(str, boxes["label"].unique())) - set(code))
    if unknown:
        raise SchemaError(f"label_issues: boxes use labels {unknown[:10]} that are not among "
                          f"the project's classes {classes[:20]}. Add them to classes.")
    box_groups = dict(tuple(boxes.groupby("item_id", sort=False)))
    pred_groups = dict(tuple(pred.groupby("item_id", sort=False)))
    empty_lab = np.zeros((0, 4))
    labels, predictions, box_ids, pred_ids = [], [], [], []
    for item in items:
        g = box_groups.get(item)
        if g is None:
            labels.append({"bboxes": empty_lab, "labels": np.zeros(0, dtype=np.int64)})
            box_ids.append(np.array([], dtype=object))
        else:
            labels.append({"bboxes": _xyxy(g),
                           "labels": g["label"].astype(str).map(code).to_numpy(np.int64)})
            box_ids.append(g["box_id"].to_numpy(dtype=object))
        h = pred_groups.get(item)
        if h is None:
            predictions.append([np.zeros((0, 5)) for _ in classes])
            pred_ids.append(np.array([], dtype=object))
            continue
        k = h["label"].astype(str).map(code).to_numpy()
        arr = np.column_stack([_xyxy(h), h["confidence"].to_numpy(np.float64)])
        ids = h["pred_id"].to_numpy(dtype=object)
        predictions.append([arr[k == c] for c in range(len(classes))])
        pred_ids.append(np.concatenate([ids[k == c] for c in range(len(classes))]))
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
                           low_probability_threshold: float = 0.5) -> pd.DataFrame:
    """Suspected box label errors: missing, mislocated and wrong-class boxes, by cleanlab.

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
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 0):
        raise ValueError(f"The 'top_k' parameter of {func} must be an int in the range "
                         f"[0, inf) or None. Got {top_k!r} instead.")
    try:
        from cleanlab.object_detection import rank
    except ImportError as exc:  # pragma: no cover - core dependency
        raise MissingDependencyError("label issues need cleanlab: pip install cleanlab") from exc

    labels, predictions, box_ids, pred_ids = to_cleanlab_inputs(project, run)
    classes = np.array([str(c) for c in project.classes], dtype=object)
    items = project.items["item_id"].to_numpy(dtype=object)
    image_score = rank.get_label_quality_scores(labels, predictions, verbose=False)
    overlooked = rank.compute_overlooked_box_scores(
        labels=labels, predictions=predictions,
        high_probability_threshold=high_probability_threshold)
    badloc = rank.compute_badloc_box_scores(
        labels=labels, predictions=predictions,
        low_probability_threshold=low_probability_threshold)
    swap = rank.compute_swap_box_scores(
        labels=labels, predictions=predictions,
        high_probability_threshold=high_probability_threshold)

    cols: dict[str, list] = {k: [] for k in (
        "item_id", "box_id", "pred_id", "issue_type", "score", "label", "suggested_label",
        "x", "y", "w", "h", "image_score", "_conf")}

    def add(i, box_id, pred_j, kind, score, label, prd, pids):
        cols["item_id"].append(items[i])
        cols["box_id"].append(box_id)
        cols["issue_type"].append(kind)
        cols["score"].append(float(score))
        cols["label"].append(label)
        cols["image_score"].append(float(image_score[i]))
        if pred_j is None:
            cols["pred_id"].append(None)
            cols["suggested_label"].append(None)
            cols["_conf"].append(0.0)
            for c in "xywh":
                cols[c].append(np.nan)
        else:
            b = prd[pred_j]
            cols["pred_id"].append(pids[pred_j])
            cols["_conf"].append(b[4])
            cols["suggested_label"].append(classes[int(b[5])])
            cols["x"].append(b[0])
            cols["y"].append(b[1])
            cols["w"].append(b[2] - b[0])
            cols["h"].append(b[3] - b[1])

    for i in range(len(items)):
        lab_b, lab_k = labels[i]["bboxes"], labels[i]["labels"]
        prd = np.concatenate([np.column_stack([a, np.full(len(a), k)])
                              for k, a in enumerate(predictions[i])]) \
            if len(pred_ids[i]) else np.zeros((0, 6))
        conf, pk = prd[:, 4], prd[:, 5].astype(np.int64)
        sim, iou = _similarity(lab_b, prd[:, :4])
        for j, s in enumerate(overlooked[i]):
            if not np.isnan(s):
                add(i, None, j, "missing", s, None, prd, pred_ids[i])
        for b in range(len(lab_k)):
            k = lab_k[b]
            # mislocated: the same-class detection cleanlab compared the box with
            cand = np.flatnonzero((pk == k) & (conf > low_probability_threshold) & (iou[b] > 0))
            j = int(cand[np.argmax(sim[b, cand])]) if len(cand) and badloc[i][b] < 1 else None
            add(i, box_ids[i][b], j, "mislocated", badloc[i][b], classes[k], prd, pred_ids[i])
            # wrong_class: the confident other-class detection on the box closest to it
            cand = np.flatnonzero((pk != k) & (conf > high_probability_threshold)
                                  & (iou[b] > 0))
            j = int(cand[np.argmax(sim[b, cand])]) if len(cand) and swap[i][b] < 1 else None
            add(i, box_ids[i][b], j, "wrong_class", swap[i][b], classes[k], prd, pred_ids[i])

    out = pd.DataFrame(cols)
    for c in ("item_id", "box_id", "pred_id", "issue_type", "label", "suggested_label"):
        out[c] = out[c].astype("str") if c in ("item_id", "issue_type") else \
            pd.array(out[c].tolist(), dtype="str")
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
