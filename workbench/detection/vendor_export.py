"""Export the relabel queue of a detection project to a labelling vendor.

Label Studio tasks with ``RectangleLabels`` pre-annotations (percent coordinates), COCO or CSV;
see :mod:`workbench.detection.vendor` for the formats and the whole loop.
"""

from __future__ import annotations

import copy
import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_write
from .._validation import check_fraction, check_int, check_option
from ..errors import SchemaError
from ..session import current_author, require_write
from ..tags import STATUSES, TagStore

__all__ = ["export_box_queue", "EXPORT_FORMATS"]


EXPORT_FORMATS = ("labelstudio", "coco", "csv")
#: Model version of the pre-annotation holding the current reference boxes.
CURRENT_VERSION = "current"


def _queue_batch(project, store: TagStore, tag: str, statuses, limit,
                 priority: str) -> pd.DataFrame:
    """The images to send, most urgent first: the detection relabel queue's own frame."""
    from ..relabel import RelabelQueue

    queue = RelabelQueue(project, store=store, tag=tag, priority=priority)
    frame = queue.frame(limit=limit, status=list(statuses))
    out = frame[["item_id", "status", "priority"]].copy()
    out["reason"] = pd.array([r if isinstance(r, str) else "" for r in frame["reasons"]],
                             dtype="str")
    return out


def _boxes_in_question(project, store: TagStore, tag: str, item_ids) -> pd.DataFrame:
    """``item_id, box_id, reason`` of the tagged boxes (box tags, when the store has them)."""
    empty = pd.DataFrame({"item_id": pd.Series(dtype="str"), "box_id": pd.Series(dtype="str"),
                          "reason": pd.Series(dtype="str")})
    if not hasattr(store, "boxes_with"):
        return empty
    found = store.boxes_with(tag)
    if found is None or not len(found):
        return empty
    found = found[found["item_id"].isin(set(item_ids))]
    # reference boxes and detections (a detection tagged as an object the dataset misses);
    # tags on annotators' boxes stay in the store and the dashboards
    known = set(project.boxes["box_id"])
    if len(project.predictions):
        known |= set(project.predictions["pred_id"])
    found = found[found["box_id"].isin(known)]
    return found[["item_id", "box_id", "reason"]].reset_index(drop=True)


def _image_url(filepath, url_prefix: str | None) -> str | None:
    if not isinstance(filepath, str) or not filepath:
        return None
    rel = filepath.replace(os.sep, "/")
    if url_prefix:
        from urllib.parse import quote

        return url_prefix.rstrip("/") + "/" + quote(rel.lstrip("/"))
    return rel


def _plain(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _sizes(project, item_ids) -> tuple[np.ndarray, np.ndarray]:
    items = project.items.set_index("item_id")
    width = items["width"].reindex(item_ids).to_numpy(dtype=float, na_value=np.nan)
    height = items["height"].reindex(item_ids).to_numpy(dtype=float, na_value=np.nan)
    missing = [i for i, w, h in zip(item_ids, width, height, strict=True)
               if np.isnan(w) or np.isnan(h)]
    if missing:
        raise SchemaError(f"export_relabel_queue: image(s) {missing[:5]} have no width/height "
                          f"(the image file could not be read). Label Studio needs the image "
                          f"size for its percent coordinates: fill width and height in items, "
                          f"or make the images readable.")
    return width, height


def _region(box_id, label, x, y, w, h, width, height, from_name, to_name, *,
            score=None, reason=None) -> dict:
    region = {"id": str(box_id), "from_name": from_name, "to_name": to_name,
              "type": "rectanglelabels", "original_width": int(width),
              "original_height": int(height), "image_rotation": 0,
              "value": {"x": 100.0 * x / width, "y": 100.0 * y / height,
                        "width": 100.0 * w / width, "height": 100.0 * h / height,
                        "rotation": 0, "rectanglelabels": [str(label)]}}
    if score is not None:
        region["score"] = float(score)
    if reason is not None:
        region["meta"] = {"text": [reason or "in question"]}
    return region


def _labelstudio_tasks(project, batch: pd.DataFrame, in_question: pd.DataFrame, url_prefix,
                       from_name: str, to_name: str, min_score: float) -> list[dict]:
    ids = batch["item_id"].tolist()
    width, height = _sizes(project, ids)
    items = project.items.set_index("item_id")
    meta_cols = [c for c in project.metadata_columns
                 if c not in ("image", "item_id", "width", "height", "boxes_in_question",
                              "reason", "status")]
    boxes = project.boxes[project.boxes["item_id"].isin(set(ids))]
    boxes_of = {k: g for k, g in boxes.groupby("item_id", sort=False)}
    run = project.default_run
    reason_of = {(i, b): ("" if not isinstance(r, str) else r) for i, b, r in zip(
        in_question["item_id"], in_question["box_id"], in_question["reason"], strict=True)}
    preds_of: dict = {}
    if run is not None and len(project.predictions):
        pred = project.predictions
        # the run's confident boxes, and every tagged detection whatever its confidence
        asked_pred = pred["pred_id"].isin({b for _, b in reason_of}).to_numpy()
        pred = pred[(pred["run"] == run) & pred["item_id"].isin(set(ids))
                    & ((pred["confidence"] >= min_score).to_numpy() | asked_pred)]
        preds_of = {k: g for k, g in pred.groupby("item_id", sort=False)}
    tasks = []
    for k, (item, reason) in enumerate(zip(ids, batch["reason"].tolist(), strict=True)):
        W, H = width[k], height[k]
        data: dict[str, Any] = {}
        url = _image_url(items["filepath"].get(item) if "filepath" in items.columns else None,
                         url_prefix)
        if url is not None:
            data["image"] = url
        data["item_id"] = item
        data["width"], data["height"] = int(W), int(H)
        for col in meta_cols:
            value = _plain(items.at[item, col])
            if value is not None:
                data[col] = value
        asked = [b for (i, b) in reason_of if i == item]
        data["boxes_in_question"] = asked
        data["reason"] = reason if isinstance(reason, str) else ""
        g = boxes_of.get(item)
        current = []
        if g is not None:
            for b, lab, x, y, w, h in zip(g["box_id"], g["label"], g["x"], g["y"], g["w"],
                                          g["h"], strict=True):
                current.append(_region(b, lab, x, y, w, h, W, H, from_name, to_name,
                                       reason=reason_of.get((item, b))))
        predictions = [{"model_version": CURRENT_VERSION, "result": current}]
        p = preds_of.get(item)
        if run is not None:
            model = []
            if p is not None:
                for pid, lab, x, y, w, h, c in zip(p["pred_id"], p["label"], p["x"], p["y"],
                                                   p["w"], p["h"], p["confidence"],
                                                   strict=True):
                    model.append(_region(pid, lab, x, y, w, h, W, H, from_name, to_name,
                                         score=c, reason=reason_of.get((item, pid))))
            entry: dict[str, Any] = {"model_version": str(run), "result": model}
            if model:
                entry["score"] = float(np.mean([r["score"] for r in model]))
            predictions.append(entry)
        tasks.append({"data": data, "predictions": predictions})
    return tasks


def _write_coco(project, batch: pd.DataFrame, in_question: pd.DataFrame, path: Path) -> None:
    from .coco import export_coco

    ids = batch["item_id"].tolist()
    items = project.items.set_index("item_id").reindex(ids).reset_index()
    items["wb_item_id"] = pd.array(ids, dtype="str")
    boxes = project.boxes[project.boxes["item_id"].isin(set(ids))].copy()
    rank = {i: k for k, i in enumerate(ids)}
    boxes = boxes.iloc[np.argsort(boxes["item_id"].map(rank).to_numpy(), kind="stable")]
    boxes["wb_box_id"] = boxes["box_id"].astype("str")
    reason = dict(zip(in_question["box_id"], in_question["reason"], strict=True))
    boxes["in_question"] = boxes["box_id"].isin(set(reason)).to_numpy()
    boxes["reason"] = pd.array([reason.get(b) for b in boxes["box_id"]], dtype="str")
    sub = copy.copy(project)
    sub.items = items.reset_index(drop=True)
    sub.boxes = boxes.reset_index(drop=True)
    export_coco(sub, path)


def _write_csv(project, batch: pd.DataFrame, in_question: pd.DataFrame, fh) -> None:
    from ..relabel import neutralize_cell

    ids = batch["item_id"].tolist()
    items = project.items.set_index("item_id")
    boxes = project.boxes[project.boxes["item_id"].isin(set(ids))]
    boxes_of = {k: g for k, g in boxes.groupby("item_id", sort=False)}
    reason_of = dict(zip(zip(in_question["item_id"], in_question["box_id"], strict=True),
                         in_question["reason"], strict=True))
    fields = ["item_id", "filepath", "width", "height", "box_id", "label", "x", "y", "w", "h",
              "in_question", "reason", "status"]
    rows = []
    for item, status, image_reason in zip(ids, batch["status"], batch["reason"], strict=True):
        base = {"item_id": item,
                "filepath": _plain(items["filepath"].get(item)) if "filepath" in items.columns
                else None,
                "width": _plain(items.at[item, "width"]),
                "height": _plain(items.at[item, "height"]), "status": status}
        g = boxes_of.get(item)
        if g is None:
            rows.append({**base, "in_question": False, "reason": image_reason})
            continue
        for b, lab, x, y, w, h in zip(g["box_id"], g["label"], g["x"], g["y"], g["w"], g["h"],
                                      strict=True):
            asked = (item, b) in reason_of
            reason = reason_of.get((item, b)) if asked else image_reason
            rows.append({**base, "box_id": b, "label": lab, "x": float(x), "y": float(y),
                         "w": float(w), "h": float(h), "in_question": asked,
                         "reason": reason if isinstance(reason, str) else ""})
    out = [{k: neutralize_cell("" if r.get(k) is None else r[k]) for k in fields}
           for r in rows]
    cr = any(isinstance(v, str) and "\r" in v for r in out for v in r.values())
    writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\r\n" if cr else "\n")
    writer.writeheader()
    writer.writerows(out)


def export_box_queue(project, path, *, format: str = "labelstudio", tag: str = "relabel",
                     limit: int | None = None, store: TagStore | None = None,
                     url_prefix: str | None = None,
                     statuses: tuple[str, ...] = ("queued", "sent"),
                     from_name: str = "label", to_name: str = "image",
                     min_score: float = 0.5, priority: str = "combined",
                     author: str | None = None) -> int:
    """Export a detection project's relabel queue for a vendor and mark it ``sent``.

    Called by :func:`workbench.export_relabel_queue` for a detection project (see the
    module notes for the three layouts).

    Parameters
    ----------
    project : DetectionProject
    path : path-like
        The file to write (replaced atomically).
    format : {'labelstudio', 'coco', 'csv'}, default='labelstudio'
    tag : str, default='relabel'
        The queue: images carrying the tag, on the image or on one of its boxes.
    limit : int, optional
        Budget: the ``limit`` most urgent images, in the order of the detection
        :class:`~workbench.RelabelQueue` (``priority``).
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    url_prefix : str, optional
        Label Studio ``data.image`` = ``url_prefix + filepath`` (default: the path relative
        to the project folder).
    statuses : tuple of str, default=('queued', 'sent')
        Which images to send (default: every image not yet relabelled).
    from_name, to_name : str
        The names of the RectangleLabels and Image tags of the Label Studio config.
    min_score : float, default=0.5
        Detections of the default run below this confidence are left out of the model's
        pre-annotation.
    priority : {'combined', 'label_issue', 'slice_lift'}, default='combined'
        How the queue ranks the images (see :class:`workbench.RelabelQueue`).
    author : str, optional
        Default: ``workbench.session.current_author()``.

    Returns
    -------
    int
        Images written.

    Raises
    ------
    SchemaError
        An image without width/height (Label Studio's percent coordinates need them).
    ReadOnlyError
        In a read-only session.

    Examples
    --------
    >>> wb.export_relabel_queue(project, "batch.json")  # doctest: +SKIP
    """
    func = "export_relabel_queue"
    check_option(format, "format", func, EXPORT_FORMATS)
    check_int(limit, "limit", func, minimum=0, allow_none=True)
    check_fraction(min_score, "min_score", func)
    for s in statuses:
        check_option(s, "statuses", func, STATUSES)
    from ..tags import normalize_tag

    tag = normalize_tag(tag, func=func)
    require_write("export the relabel queue")
    store = store if store is not None else TagStore.for_project(project)
    batch = _queue_batch(project, store, tag, statuses, limit, priority)
    in_question = _boxes_in_question(project, store, tag, batch["item_id"])
    path = Path(path)
    if format == "labelstudio":
        payload = _labelstudio_tasks(project, batch, in_question, url_prefix, from_name,
                                     to_name, min_score)
        atomic_write(path, lambda fh: json.dump(payload, fh, ensure_ascii=False, indent=1))
    elif format == "coco":
        _write_coco(project, batch, in_question, path)
    else:
        atomic_write(path, lambda fh: _write_csv(project, batch, in_question, fh))
    if len(batch):
        store.set_status(batch["item_id"].tolist(), "sent", queue=tag,
                         author=author or current_author(),
                         context={"export": str(path), "format": format})
    return len(batch)
