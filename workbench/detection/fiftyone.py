"""A detection project in FiftyOne: ``Detections`` fields, evaluation attributes, box views.

Called by :mod:`workbench.fiftyone_bridge` (which owns the dataset, the incremental writes,
the tags and the App session) when ``project.task == "detection"``; FiftyOne itself is only
imported by :func:`box_view`, lazily.

One sample per image, with (see ``docs/fiftyone.md``, "Detection projects"):

- ``metadata``: ``ImageMetadata(width, height)`` from ``project.items``;
- one field per image metadata column, as for classification;
- ``ground_truth``: ``Detections`` of the dataset's boxes (``project.boxes``), each with
  ``label``, ``bounding_box`` (FiftyOne's relative ``[x/W, y/H, w/W, h/H]``), the attributes
  ``box_id``, ``iscrowd`` and the box metadata columns;
- ``pred_<run>`` per run: ``Detections`` with ``confidence`` and ``pred_id``;
- ``ann_<annotator>`` per annotator: ``Detections`` with ``box_id`` (and ``annotated_at``);
- per run, the outcome of :func:`workbench.match_detections` stored the way FiftyOne's own
  ``evaluate_detections(eval_key=...)`` stores an evaluation: on every matched reference box
  and prediction the attributes ``eval_<run>`` (``tp``, ``fp``, ``fn``, ``wrong_class``,
  ``mislocated``, ``duplicate``), ``eval_<run>_iou`` and ``eval_<run>_match`` (the id of the
  box it was paired with), and on the sample the counts ``eval_<run>_tp``,
  ``eval_<run>_fp`` (predictions with ``is_fp``) and ``eval_<run>_fn`` (boxes with
  ``is_fn``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from ..errors import WorkbenchError

__all__ = ["detection_records", "box_view", "box_items", "selected_boxes",
           "LABEL_FIELD_SOURCES"]

#: where the boxes of each kind of label field come from, and their id attribute
LABEL_FIELD_SOURCES = {"boxes": "box_id", "annotations": "box_id", "predictions": "pred_id"}
#: ``Detection`` attributes FiftyOne defines or the workbench writes itself: a box metadata
#: column of one of these names is stored as ``meta_<name>``
_LABEL_KEYS = frozenset({"id", "tags", "label", "bounding_box", "mask", "mask_path",
                         "confidence", "index", "attributes", "box_id", "pred_id", "iscrowd",
                         "annotated_at"})
_EVAL_OUTCOME_COUNTS = ("tp", "fp", "fn")


def _unique(name: str, used: set[str]) -> str:
    while name in used:
        name += "_"
    used.add(name)
    return name


def _values(series: pd.Series) -> list:
    """Plain python values of a column (NA -> None; aware datetimes as naive UTC)."""
    from ..fiftyone_bridge import _column_values

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return _column_values(series)


def _attribute_names(columns: list[str], used: set[str]) -> dict[str, str]:
    """Valid FiftyOne attribute names of extra columns (``meta_<col>`` when taken)."""
    from ..fiftyone_bridge import _field_name

    out = {}
    for col in columns:
        name = _field_name(col)
        if name in used or name.startswith("eval_"):
            name = _field_name(f"meta_{col}")
        out[col] = _unique(name, used)
    return out


def _per_item(frame: pd.DataFrame, pos: dict[str, int], n: int, size: np.ndarray,
              attrs: dict[str, list], *, confidence: bool = False) -> list[list[dict]]:
    """One list of Detection dicts per item (in item order), in the frame's row order.

    ``size`` holds the (width, height) of every item (NaN when unknown: such items are
    skipped by the caller). Attributes whose value is None are left out of the dict.
    """
    out: list[list[dict]] = [[] for _ in range(n)]
    if not len(frame):
        return out
    where = [pos.get(i, -1) for i in frame["item_id"].astype(str).tolist()]
    labels = frame["label"].astype(str).tolist()
    xywh = frame[["x", "y", "w", "h"]].to_numpy(dtype=float)
    wh = size[np.maximum(where, 0)] if len(where) else np.empty((0, 2))
    rel = (xywh / np.c_[wh, wh]).tolist()
    conf = frame["confidence"].to_numpy(dtype=float).tolist() if confidence else None
    names = list(attrs)
    cols = [attrs[a] for a in names]
    for j, i in enumerate(where):
        if i < 0:
            continue
        det: dict[str, Any] = {"label": labels[j], "bounding_box": rel[j]}
        if conf is not None and conf[j] == conf[j]:
            det["confidence"] = conf[j]
        for name, col in zip(names, cols, strict=True):
            value = col[j]
            if value is not None:
                det[name] = value
        out[i].append(det)
    return out


def _evaluation(project, run: str, iou: float, pos: dict[str, int], n: int):
    """Per-box and per-prediction ``(outcome, iou, partner id)``, per-item counts."""
    from .matching import match_detections

    m = match_detections(project, run, iou=iou)
    box_ids = m["box_id"].astype(object).where(m["box_id"].notna(), None).tolist()
    pred_ids = m["pred_id"].astype(object).where(m["pred_id"].notna(), None).tolist()
    outcomes = m["outcome"].astype(str).tolist()
    ious = [None if v != v else float(v) for v in m["iou"].to_numpy(dtype=float).tolist()]
    on_box: dict[str, tuple] = {}
    on_pred: dict[str, tuple] = {}
    for b, p, o, v in zip(box_ids, pred_ids, outcomes, ious, strict=True):
        if b is not None:
            on_box[b] = (o, v, p)
        if p is not None:
            on_pred[p] = (o, v, b)
    counts = {k: [0] * n for k in _EVAL_OUTCOME_COUNTS}
    where = [pos.get(i, -1) for i in m["item_id"].astype(str).tolist()]
    flags = {"tp": (m["outcome"] == "tp").to_numpy(), "fp": m["is_fp"].to_numpy(bool),
             "fn": m["is_fn"].to_numpy(bool)}
    for key, flag in flags.items():
        col = counts[key]
        for i in np.flatnonzero(flag).tolist():
            if where[i] >= 0:
                col[where[i]] += 1
    return on_box, on_pred, counts


def _eval_attrs(ids: list, found: dict[str, tuple], key: str) -> dict[str, list]:
    got = [found.get(i) for i in ids]
    return {key: [None if g is None else g[0] for g in got],
            f"{key}_iou": [None if g is None else g[1] for g in got],
            f"{key}_match": [None if g is None else g[2] for g in got]}


def detection_records(project, skipped: list[str], *, media=None, iou: float = 0.5):
    """Per-image field values of a detection project, for the bridge's writers.

    Parameters
    ----------
    project : DetectionProject
        The project.
    skipped : list of str
        Notes about parts left out are appended here (``SyncStats.skipped``).
    media : DataFrame, default=None
        ``project.media_status()`` when already computed.
    iou : float, default=0.5
        IoU threshold of :func:`workbench.match_detections` for the ``eval_<run>`` fields.

    Returns
    -------
    ids : list of str
        The item ids, in item order.
    columns : dict of str to list
        ``{field: one value per item}``; a ``detections`` value is a list of dicts
        (``label``, ``bounding_box``, [``confidence``], attributes), ``[]`` for an image
        without boxes, None when unknown (the annotator drew nothing on it, or the image
        size is unknown).
    kinds : dict of str to str
        ``"value"``, ``"image_metadata"`` or ``"detections"`` per field.
    info : dict
        What the dataset's ``info["workbench"]`` records besides the bridge's keys:
        ``task``, ``iou``, ``label_fields`` (``{field: {"source", "id_attribute", "run" or
        "annotator"}}``) and ``eval_keys`` (``{run: key}``).
    """
    from ..fiftyone_bridge import _RESERVED, _column_values, _field_name, _media, _run_field

    items = project.items
    ids = items["item_id"].astype(str).tolist()
    n = len(ids)
    pos = {item_id: i for i, item_id in enumerate(ids)}
    columns: dict[str, list] = {"item_id": ids}
    kinds: dict[str, str] = {"item_id": "value"}
    columns["filepath"], columns["wb_media"] = _media(project, ids, media)
    kinds["filepath"] = kinds["wb_media"] = "value"

    width = items["width"].to_numpy(dtype=float, na_value=np.nan)
    height = items["height"].to_numpy(dtype=float, na_value=np.nan)
    size = np.c_[width, height]
    known = ~np.isnan(size).any(axis=1) & (size > 0).all(axis=1)
    columns["metadata"] = [{"width": int(w), "height": int(h)} if ok else None
                           for w, h, ok in zip(width, height, known, strict=True)]
    kinds["metadata"] = "image_metadata"
    if not known.all():
        missing = [ids[i] for i in np.flatnonzero(~known)]
        skipped.append(f"detections: {len(missing)} image(s) without a known width/height, "
                       f"their boxes are not written (FiftyOne's coordinates are relative): "
                       f"{missing[:5]}")

    used = set(_RESERVED)
    label_fields: dict[str, dict] = {"ground_truth": {"source": "boxes",
                                                      "id_attribute": "box_id"}}
    run_field, eval_key = {}, {}
    for run in project.runs:
        run_field[run] = _unique(_run_field(run), used)
        key = _field_name(f"eval_{run}")
        while key in used or any(f"{key}_{c}" in used for c in _EVAL_OUTCOME_COUNTS):
            key += "_"
        used.update([key, *(f"{key}_{c}" for c in _EVAL_OUTCOME_COUNTS)])
        eval_key[run] = key
        label_fields[run_field[run]] = {"source": "predictions", "id_attribute": "pred_id",
                                        "run": str(run)}
    ann_field = {}
    for annotator in project.annotators:
        ann_field[annotator] = _unique(_field_name(f"ann_{annotator}"), used)
        label_fields[ann_field[annotator]] = {"source": "annotations",
                                              "id_attribute": "box_id",
                                              "annotator": str(annotator)}
    for col in project.metadata_columns:
        name = _field_name(col)
        if name in used:
            name = _field_name(f"meta_{col}")
        name = _unique(name, used)
        columns[name] = _column_values(items[col])
        kinds[name] = "value"

    def blank(lists):  # images of unknown size: no boxes at all (None)
        return [v if known[i] else None for i, v in enumerate(lists)]

    # reference boxes, with the outcome of every run
    boxes = project.boxes
    box_ids = boxes["box_id"].astype(str).tolist()
    attrs: dict[str, list] = {"box_id": box_ids,
                              "iscrowd": [bool(v) for v in boxes["iscrowd"].tolist()]}
    meta_names = _attribute_names(project.box_metadata_columns, set(_LABEL_KEYS))
    for col, name in meta_names.items():
        attrs[name] = _values(boxes[col])
    pred_eval: dict[str, tuple] = {}
    preds = project.predictions
    for run in project.runs:
        on_box, on_pred, counts = _evaluation(project, run, iou, pos, n)
        attrs.update(_eval_attrs(box_ids, on_box, eval_key[run]))
        pred_eval[run] = (on_pred, eval_key[run])
        for key, values in counts.items():
            columns[f"{eval_key[run]}_{key}"] = values
            kinds[f"{eval_key[run]}_{key}"] = "value"
    columns["ground_truth"] = blank(_per_item(boxes, pos, n, size, attrs))
    kinds["ground_truth"] = "detections"

    run_col = preds["run"].astype(str) if len(preds) else pd.Series([], dtype=str)
    for run in project.runs:
        sub = preds[run_col == str(run)]
        pids = sub["pred_id"].astype(str).tolist()
        on_pred, key = pred_eval[run]
        attrs = {"pred_id": pids, **_eval_attrs(pids, on_pred, key)}
        columns[run_field[run]] = blank(_per_item(sub, pos, n, size, attrs, confidence=True))
        kinds[run_field[run]] = "detections"

    ann = project.annotations
    if len(ann):
        extra = [c for c in ann.columns if c not in ("box_id", "item_id", "annotator", "label",
                                                       "x", "y", "w", "h", "annotated_at")]
        extra_names = _attribute_names(extra, set(_LABEL_KEYS) | {"annotator"})
        who = ann["annotator"].astype(str)
        for annotator, field in ann_field.items():
            sub = ann[who == str(annotator)]
            attrs = {"box_id": sub["box_id"].astype(str).tolist()}
            if "annotated_at" in sub.columns:
                attrs["annotated_at"] = _values(sub["annotated_at"])
            for col, name in extra_names.items():
                attrs[name] = _values(sub[col])
            lists = _per_item(sub, pos, n, size, attrs)
            drawn = set(sub["item_id"].astype(str))
            columns[field] = blank([v if ids[i] in drawn else None
                                    for i, v in enumerate(lists)])
            kinds[field] = "detections"

    attributes = {}
    for field in label_fields:
        if field in columns:
            names = {k for dets in columns[field] for d in dets or () for k in d}
            attributes[field] = sorted(names - {"label", "bounding_box", "confidence"})
    info = {"task": "detection", "iou": float(iou), "label_fields": label_fields,
            "eval_keys": {str(r): k for r, k in eval_key.items()},
            "label_attributes": attributes}
    return ids, columns, kinds, info


def box_items(project, box_ids) -> dict[str, dict[str, str]]:
    """``{source: {box id: item id}}`` of the given box ids, by where they are found.

    ``source`` is ``"boxes"``, ``"annotations"`` (``box_id``) or ``"predictions"``
    (``pred_id``).

    Raises
    ------
    WorkbenchError
        If some ids are in none of them (the message lists the first ones).
    """
    wanted = set(box_ids)
    out: dict[str, dict[str, str]] = defaultdict(dict)
    frames = {"boxes": (project.boxes, "box_id"), "annotations": (project.annotations, "box_id"),
              "predictions": (project.predictions, "pred_id")}
    for source, (frame, col) in frames.items():
        if frame is None or not len(frame) or col not in frame.columns:
            continue
        ids = frame[col].astype(str)
        hit = ids.isin(wanted).to_numpy()
        out[source].update(zip(ids[hit].tolist(), frame["item_id"].astype(str)[hit].tolist(),
                               strict=True))
    found = set().union(*(d.keys() for d in out.values())) if out else set()
    missing = sorted(wanted - found)
    if missing:
        raise WorkbenchError(
            f"{len(missing)} box id(s) are not boxes, annotations or predictions of project "
            f"{project.name!r}: {missing[:10]}. Check the ids (box_id or pred_id values).")
    return dict(out)


def box_view(dataset, project, item_ids: list[str] | None, box_ids: list[str]):
    """The images of ``item_ids`` showing only the boxes ``box_ids`` (``filter_labels``).

    Every label field the workbench wrote (``ground_truth``, ``pred_<run>``,
    ``ann_<annotator>``) is filtered on its id attribute (``box_id`` or ``pred_id``) with
    ``F(attr).is_in(ids)``, keeping images without a selected box in that field.

    Parameters
    ----------
    dataset : fiftyone.core.dataset.Dataset
        The synced dataset of the project.
    project : DetectionProject
        The project (the ids are looked up in its boxes, annotations and predictions).
    item_ids : list of str or None
        The images to show; None means the images of the boxes.
    box_ids : list of str
        The boxes to show (``box_id`` and ``pred_id`` values).

    Returns
    -------
    (fiftyone.core.view.DatasetView, list of str)
        The view and the item ids it selects (sorted).
    """
    from fiftyone import ViewField as F

    where = box_items(project, box_ids)
    if item_ids is None:
        item_ids = sorted({i for d in where.values() for i in d.values()})
    info = dataset.info.get("workbench") or {}
    fields = info.get("label_fields") or {}
    schema = dataset.get_field_schema()
    view = dataset.select_by("item_id", item_ids)
    for field, spec in fields.items():
        if field not in schema or not re.fullmatch(r"[A-Za-z][0-9A-Za-z_]*", field):
            continue
        keep = sorted(where.get(spec.get("source"), {}))
        view = view.filter_labels(field, F(spec.get("id_attribute", "box_id")).is_in(keep),
                                  only_matches=False)
    return view, item_ids


def selected_boxes(dataset, labels: list[dict]) -> tuple[list[str], list[str]]:
    """The workbench ids of labels selected in the App (``session.selected_labels``).

    Parameters
    ----------
    dataset : fiftyone.core.dataset.Dataset
        The synced dataset of a detection project.
    labels : list of dict
        ``session.selected_labels`` (``label_id``, ``sample_id``, ``field``...).

    Returns
    -------
    (list of str, list of str)
        The item ids of their images and their ``box_id``/``pred_id`` values (sorted);
        labels of fields the workbench did not write are left out.
    """
    fields = (dataset.info.get("workbench") or {}).get("label_fields") or {}
    labels = [d for d in labels if d.get("field") in fields]
    if not labels:
        return [], []
    view = dataset.select_labels(labels=labels, fields=sorted({d["field"] for d in labels}))
    items: set[str] = set()
    boxes: set[str] = set()
    for field in sorted({d["field"] for d in labels}):
        attr = fields[field].get("id_attribute", "box_id")
        for item_id, ids in zip(view.values("item_id"),
                                view.values(f"{field}.detections.{attr}"), strict=True):
            if ids:
                items.add(item_id)
                boxes.update(i for i in ids if i is not None)
    return sorted(items), sorted(boxes)
