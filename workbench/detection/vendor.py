"""The relabel loop for boxes: send queued images to a labelling vendor, import their boxes.

:func:`workbench.export_relabel_queue`, :func:`workbench.import_labels` and
:func:`workbench.read_labels` dispatch here for a detection project.

Export (:func:`export_box_queue`)
    The images of the relabel queue (tagged ``relabel`` on the image or on one of its boxes)
    as Label Studio tasks, a COCO instances file or a CSV, written atomically; the exported
    images are marked ``sent``.

    * ``labelstudio``: one task per image. ``data`` holds ``image`` (the URL, as for
      classification), ``item_id``, ``width``, ``height``, the image metadata,
      ``boxes_in_question`` (the tagged box ids) and ``reason``. Two pre-annotations
      (``predictions``): model version ``"current"`` with the image's reference boxes,
      and, when the project has a run, the default run's boxes (model version = the run,
      each region with its ``score``; boxes below ``min_score`` left out). Each region is
      a ``rectanglelabels`` result in Label Studio's **percent** coordinates
      (``x = 100 * x_px / width``, ``y = 100 * y_px / height``, same for ``width`` and
      ``height``) with ``original_width``, ``original_height`` and ``image_rotation`` 0.
      A reference box's region ``id`` **is its box_id** (a detection's, its pred_id), so a
      region that comes back with that id is recognised however far it was moved (any
      other region is matched by IoU); a box in question carries its reason in the
      region's ``meta.text``.
    * ``coco``: :func:`workbench.export_coco` of the queued images and their current boxes;
      each image carries ``wb_item_id`` and each annotation ``wb_box_id`` (COCO ids must be
      numbers), ``in_question`` and ``reason``.
    * ``csv``: one row per box (``item_id``, ``filepath``, ``width``, ``height``,
      ``box_id``, ``label``, ``x``, ``y``, ``w``, ``h`` in pixels, ``in_question``,
      ``reason``, ``status``; an image without boxes gets one row with empty box cells);
      formula-like cells guarded as for classification
      (:func:`workbench.relabel.neutralize_cell`).

Import (:func:`import_box_labels`)
    Reads a Label Studio JSON export (``annotations[].result[]`` of type
    ``rectanglelabels``, or ``rectangle`` + ``labels`` results sharing an id) or a COCO
    instances file, validates **everything** before writing (a rectangle without
    ``original_width``/``original_height``, an image size that is not the project's, a
    rotated rectangle, a label not among the classes, a box outside the image beyond the
    project's tolerance, ``w``/``h`` <= 0, an unknown image: one :class:`SchemaError`
    naming the file, task, annotation, region and value, and the fix; nothing written),
    then, under the import lock:

    * every imported annotation becomes its annotator's boxes on that image (Label Studio:
      ``completed_by`` -> ``ls-<id>`` or the user's email, as for classification; COCO: the
      annotation's ``annotator`` key, else ``annotator=``, else ``"vendor"``), replacing that
      annotator's earlier boxes on the image;
    * the image's newest imported annotation (``updated_at``, else ``created_at``, else
      file order; one Label Studio marks ``ground_truth`` first) becomes its **reference
      boxes**, replacing the old ones: a box matched to
      an old box keeps the old ``box_id`` (so its tags survive) and metadata (``area`` is
      emptied when the box changed shape, so ``w * h`` is used); an added box gets a new id
      ``{item_id}/b{k}``; the boxes file is written with its ``box_id`` column;
    * an annotation with no rectangle means "no object on this image" (all its boxes are
      deleted); a task without annotations imports nothing for its image;
    * the imported images in the queue are marked ``relabeled``.

    Both files are rewritten atomically after a backup in ``.workbench/backups/``.
    Importing the same file again changes nothing (every box ``unchanged``, no annotation
    duplicated, nothing rewritten).

The diff (:func:`diff_boxes`)
    Per image, old reference boxes against new ones, one to one: first by identity (a
    region whose id is an old box_id of that image), then the rest by the Hungarian
    algorithm on ``1 - IoU`` over pairs with ``IoU >= iou`` (class-agnostic, so a box that
    changed class in place is matched; the same solver as
    :func:`workbench.match_annotators`). A matched pair is ``unchanged`` (same class, IoU
    >= 1 - 1e-9), ``moved`` (same class, coordinates changed) or ``reclassed`` (class
    changed; when the box also moved, the outcome is ``reclassed`` and the column ``moved``
    is True: one row per box, the class change being what a curator checks first). An
    unmatched old box is ``deleted``, an unmatched new one ``added``.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import numbers
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_write
from .._validation import check_fraction, check_int, check_option
from ..errors import SchemaError, StoreError
from ..session import current_author, require_write
from ..tags import STATUSES, TagStore

__all__ = ["export_box_queue", "read_box_labels", "import_box_labels", "diff_boxes",
           "BoxImportReport", "DIFF_OUTCOMES", "EXPORT_FORMATS", "IMPORT_FORMATS"]

EXPORT_FORMATS = ("labelstudio", "coco", "csv")
IMPORT_FORMATS = ("labelstudio", "coco")
DIFF_OUTCOMES = ("unchanged", "moved", "reclassed", "added", "deleted")
#: Model version of the pre-annotation holding the current reference boxes.
CURRENT_VERSION = "current"
#: Annotator of COCO boxes without an ``annotator`` key (and no ``annotator=``).
DEFAULT_ANNOTATOR = "vendor"
_SAME = 1.0 - 1e-9
_DECIMALS = 6           # pixels read back from percent are rounded to 1e-6 px
_SIZE_TOLERANCE = 0.5   # px: original_width/height must be the project's image size
_MAX_SHOWN = 20
_LABEL_COLUMNS = ["item_id", "annotator", "label", "x", "y", "w", "h", "annotated_at",
                  "source_box_id", "annotation", "region"]


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


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
    found = found[found["box_id"].isin(set(project.boxes["box_id"]))]
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
    preds_of: dict = {}
    if run is not None and len(project.predictions):
        pred = project.predictions
        pred = pred[(pred["run"] == run) & pred["item_id"].isin(set(ids))
                    & (pred["confidence"] >= min_score)]
        preds_of = {k: g for k, g in pred.groupby("item_id", sort=False)}
    reason_of = {(i, b): ("" if not isinstance(r, str) else r) for i, b, r in zip(
        in_question["item_id"], in_question["box_id"], in_question["reason"], strict=True)}
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
                                         score=c))
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


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


class _Known:
    """What the file is checked against: images, sizes, classes, boxes."""

    def __init__(self, project=None, classes=None, item_ids=None):
        self.classes = None
        self.ids = None
        self.width: dict = {}
        self.height: dict = {}
        self.by_file: dict = {}
        self.boxes: dict = {}
        if project is not None:
            self.classes = [str(c) for c in project.classes]
            items = project.items
            self.ids = set(items["item_id"])
            for i, w, h in zip(items["item_id"], items["width"], items["height"], strict=True):
                if not pd.isna(w) and not pd.isna(h):
                    self.width[i], self.height[i] = float(w), float(h)
            if "filepath" in items.columns:
                counts = items["filepath"].value_counts()
                for i, f in zip(items["item_id"], items["filepath"], strict=True):
                    if isinstance(f, str) and counts.get(f, 0) == 1:
                        self.by_file[f.replace(os.sep, "/")] = i
            for i, b in zip(project.boxes["item_id"], project.boxes["box_id"], strict=True):
                self.boxes.setdefault(i, set()).add(b)
        if classes is not None:
            self.classes = [str(c) for c in classes]
        if item_ids is not None:
            self.ids = set(map(str, item_ids))

    def source_box(self, item, box_id) -> str | None:
        if box_id is None:
            return None
        box_id = str(box_id)
        return box_id if box_id in self.boxes.get(item, ()) else None


class _Problems(list):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")

    def raise_if_any(self, path: Path) -> None:
        if not self:
            return
        shown = "\n".join(f"  - {p}" for p in self[:_MAX_SHOWN])
        more = f"\n  ... and {len(self) - _MAX_SHOWN} more" if len(self) > _MAX_SHOWN else ""
        raise SchemaError(f"{path}: {len(self)} problem(s) in the vendor's boxes; nothing was "
                          f"imported:\n{shown}{more}")


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _check_box(item, x, y, w, h, width, height, where: str, problems: _Problems,
               shown: str) -> bool:
    """w/h > 0 and inside the image (the project's tolerance); problems otherwise."""
    from .io import OUTSIDE_TOLERANCE_FRACTION, OUTSIDE_TOLERANCE_PX

    if w <= 0 or h <= 0:
        problems.add(where, f"the box has a size <= 0 ({shown}). Delete the region or redraw "
                            f"it.")
        return False
    if width is None or height is None:
        return True
    tol_x = max(OUTSIDE_TOLERANCE_PX, OUTSIDE_TOLERANCE_FRACTION * width)
    tol_y = max(OUTSIDE_TOLERANCE_PX, OUTSIDE_TOLERANCE_FRACTION * height)
    if x < -tol_x or y < -tol_y or x + w > width + tol_x or y + h > height + tol_y:
        problems.add(where, f"the box lies outside its {width:g}x{height:g} image ({shown}; "
                            f"pixels [{x:g}, {y:g}, {w:g}, {h:g}]; the tolerance is "
                            f"{OUTSIDE_TOLERANCE_PX:g} px or {OUTSIDE_TOLERANCE_FRACTION:.0%} "
                            f"of the side). Redraw the box inside the image.")
        return False
    return True


def _check_label(label, known: _Known, where: str, problems: _Problems) -> bool:
    if known.classes is not None and label not in known.classes:
        problems.add(where, f"label {label!r} is not a class of the project "
                            f"{known.classes[:20]}. Fix the labelling config (the "
                            f"RectangleLabels values must be the project's classes) or relabel "
                            f"the box.")
        return False
    return True


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc}). {what}; nothing was "
                          f"imported.") from exc


def _parse_labelstudio(path: Path, known: _Known, problems: _Problems):
    from ..relabel import _annotator_of

    tasks = _read_json(path, "Export the project from Label Studio with 'Export > JSON'")
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise SchemaError(f"{path}: expected a JSON list of Label Studio tasks; got a "
                          f"{type(tasks).__name__}. Export with 'Export > JSON'; nothing was "
                          f"imported.")
    rows, annotations = [], []
    for n, task in enumerate(tasks):
        if not isinstance(task, dict):
            problems.add(f"task #{n}", "not a JSON object.")
            continue
        data = task.get("data") or {}
        item = data.get("item_id") if isinstance(data, dict) else None
        if isinstance(item, numbers.Integral) and not isinstance(item, bool):
            item = str(item)
        where_task = f"task #{n} (id {task.get('id')!r})"
        if not isinstance(item, str) or not item.strip():
            problems.add(where_task, f"no data.item_id (got {item!r}). Import tasks exported "
                                     f"by workbench (they carry data.item_id).")
            continue
        where_task = f"task #{n} (id {task.get('id')!r}, item {item!r})"
        if known.ids is not None and item not in known.ids:
            problems.add(where_task, f"image {item!r} is not in the project. Check that the "
                                     f"file is for this project.")
            continue
        for m, ann in enumerate(task.get("annotations") or []):
            if not isinstance(ann, dict):
                problems.add(f"{where_task}, annotation #{m}", "not a JSON object.")
                continue
            if ann.get("was_cancelled"):
                continue
            where_ann = f"{where_task}, annotation #{m} (id {ann.get('id')!r})"
            annotator = _annotator_of(ann.get("completed_by"), ann)
            if annotator is None:
                problems.add(where_ann, "no completed_by: cannot tell who drew the boxes. "
                                        "Export from Label Studio with the annotators.")
                continue
            when = ann.get("updated_at") or ann.get("created_at")
            key = f"task#{n}/annotation#{m}"
            annotations.append({"item_id": item, "annotator": annotator,
                                "annotated_at": when, "annotation": key,
                                "ground_truth": ann.get("ground_truth") is True})
            results = [r for r in (ann.get("result") or []) if isinstance(r, dict)]
            labels_of = {}
            for res in results:
                if res.get("type") == "labels":
                    labels_of[res.get("id")] = (res.get("value") or {}).get("labels")
            for res in results:
                value = res.get("value") if isinstance(res.get("value"), dict) else {}
                kind = res.get("type")
                if kind not in ("rectanglelabels", "rectangle") and not (
                        kind is None and "rectanglelabels" in value):
                    continue
                rid = res.get("id")
                where = f"{where_ann}, region {rid!r}"
                row = _ls_region(item, res, value, labels_of.get(rid), known, where, problems)
                if row is not None:
                    rows.append({**row, "item_id": item, "annotator": annotator,
                                 "annotated_at": when,
                                 "source_box_id": known.source_box(item, rid),
                                 "annotation": key, "region": where})
    return rows, annotations


def _ls_region(item, res: dict, value: dict, labels, known: _Known, where: str,
               problems: _Problems) -> dict | None:
    ok = True
    size = {}
    for key in ("original_width", "original_height"):
        v = _number(res.get(key))
        if v is None or v <= 0:
            problems.add(where, f"{key} is missing or not a positive number (got "
                                f"{res.get(key)!r}). Label Studio's percent coordinates need "
                                f"the image size: export the annotations from Label Studio "
                                f"(it writes original_width and original_height on every "
                                f"region), not hand-made results.")
            ok = False
        size[key] = v
    W, H = size["original_width"], size["original_height"]
    pw, ph = known.width.get(item), known.height.get(item)
    if ok and pw is not None and (abs(W - pw) > _SIZE_TOLERANCE
                                  or abs(H - ph) > _SIZE_TOLERANCE):
        problems.add(where, f"original_width x original_height is {W:g}x{H:g} but the "
                            f"project's image {item!r} is {pw:g}x{ph:g}. The vendor labelled "
                            f"another copy of the image: send the project's own image.")
        ok = False
    for key, what in (("image_rotation", "image_rotation"), ("rotation", "value.rotation")):
        raw = res.get(key) if key == "image_rotation" else value.get(key)
        rot = _number(raw) if raw is not None else 0.0
        if rot is None or abs(rot) % 360 > 1e-9:
            problems.add(where, f"{what} is {raw!r}: a rotated rectangle cannot be stored as "
                                f"[x, y, w, h]. Unrotate it in Label Studio and export again.")
            ok = False
    coords = {}
    for key in ("x", "y", "width", "height"):
        v = _number(value.get(key))
        if v is None:
            problems.add(where, f"value.{key} is missing or not a finite number (got "
                                f"{value.get(key)!r}). Fix the region or delete it.")
            ok = False
        coords[key] = v
    if labels is None:
        labels = value.get("rectanglelabels")
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        problems.add(where, f"the region needs exactly one label; got {labels!r}. Give every "
                            f"rectangle one class (RectangleLabels with choice='single').")
        return None
    label = labels[0]
    ok = _check_label(label, known, where, problems) and ok
    if not ok:
        return None
    x = round(coords["x"] * W / 100.0, _DECIMALS)
    y = round(coords["y"] * H / 100.0, _DECIMALS)
    w = round(coords["width"] * W / 100.0, _DECIMALS)
    h = round(coords["height"] * H / 100.0, _DECIMALS)
    shown = (f"x={coords['x']!r}, y={coords['y']!r}, width={coords['width']!r}, "
             f"height={coords['height']!r} percent")
    if not _check_box(item, x, y, w, h, pw if pw is not None else W,
                      ph if ph is not None else H, where, problems, shown):
        return None
    return {"label": label, "x": x, "y": y, "w": w, "h": h}


def _parse_coco(path: Path, known: _Known, problems: _Problems, annotator: str | None):
    data = _read_json(path, "Export the vendor's boxes as a COCO instances file")
    if not isinstance(data, dict) or not all(
            isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise SchemaError(f"{path}: a COCO instances file is a JSON object with the lists "
                          f"'images', 'annotations' and 'categories'; nothing was imported.")
    default = annotator or DEFAULT_ANNOTATOR
    info = data.get("info")
    if annotator is None and isinstance(info, dict) and isinstance(info.get("contributor"),
                                                                   str):
        default = info["contributor"].strip() or default
    categories = {}
    for k, cat in enumerate(data["categories"]):
        where = f"categories[{k}] (id {cat.get('id') if isinstance(cat, dict) else None!r})"
        if not isinstance(cat, dict) or not isinstance(cat.get("name"), str):
            problems.add(where, "a category needs an id and a name.")
            continue
        categories[_key(cat.get("id"))] = cat["name"]  # checked where used
    image_of, annotations = {}, []
    for k, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            problems.add(f"images[{k}]", "not a JSON object.")
            continue
        where = f"images[{k}] (id {img.get('id')!r}, file_name {img.get('file_name')!r})"
        item = _coco_item(img, known)
        if item is None:
            problems.add(where, "not an image of the project (matched by wb_item_id, else "
                                "file_name = the item's filepath, else id = item_id). Keep "
                                "the images of the exported file.")
            continue
        for key, sizes in (("width", known.width), ("height", known.height)):
            v = img.get(key)
            if v is not None and item in sizes and (
                    _number(v) is None or abs(_number(v) - sizes[item]) > _SIZE_TOLERANCE):
                problems.add(where, f"{key} is {v!r} but the project's image {item!r} has "
                                    f"{key} {sizes[item]:g}. The vendor labelled another copy "
                                    f"of the image: send the project's own image.")
        image_of[_key(img.get("id"))] = item
        annotations.append({"item_id": item, "annotator": default, "annotated_at": None,
                            "annotation": _coco_key(item, default)})
    rows = []
    extra: dict = {}
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            problems.add(f"annotations[{k}]", "not a JSON object.")
            continue
        where = f"annotations[{k}] (id {ann.get('id')!r})"
        item = image_of.get(_key(ann.get("image_id")))
        if item is None:
            problems.add(where, f"image_id {ann.get('image_id')!r} is not an image of the file "
                                f"that belongs to the project. Add the image or delete the "
                                f"annotation.")
            continue
        label = categories.get(_key(ann.get("category_id")))
        if label is None:
            problems.add(where, f"category_id {ann.get('category_id')!r} is not a category of "
                                f"the file. Fix the category_id.")
            continue
        if not _check_label(label, known, f"{where} (category_id "
                                          f"{ann.get('category_id')!r})", problems):
            continue
        bbox = ann.get("bbox")
        values = [_number(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 \
            else None
        if values is None or any(v is None for v in values):
            problems.add(where, f"bbox must be 4 finite numbers [x, y, w, h] in pixels; got "
                                f"{bbox!r}. Fix or delete it.")
            continue
        x, y, w, h = values
        if not _check_box(item, x, y, w, h, known.width.get(item), known.height.get(item),
                          where, problems, f"bbox {bbox!r}"):
            continue
        who = ann.get("annotator")
        who = who.strip() if isinstance(who, str) and who.strip() else default
        if who != default:
            extra.setdefault((item, who), None)
        source = ann.get("wb_box_id")
        rows.append({"item_id": item, "annotator": who, "label": label, "x": x, "y": y,
                     "w": w, "h": h, "annotated_at": None,
                     "source_box_id": known.source_box(item, source if source is not None
                                                       else ann.get("id")),
                     "annotation": _coco_key(item, who), "region": where})
    # one annotation per (image, annotator): the default annotator's on every listed image
    annotations += [{"item_id": i, "annotator": a, "annotated_at": None,
                     "annotation": _coco_key(i, a)} for (i, a) in extra]
    return rows, annotations


def _coco_key(item: str, annotator: str) -> str:
    return json.dumps(["coco", item, annotator], ensure_ascii=False)


def _key(value):
    """COCO ids compare as written, with 3 and 3.0 (and "3") kept apart only by type."""
    return (type(value).__name__ if not isinstance(value, numbers.Integral) else "int",
            value)


def _coco_item(img: dict, known: _Known) -> str | None:
    wid = img.get("wb_item_id")
    if isinstance(wid, str) and (known.ids is None or wid in known.ids):
        return wid
    fname = img.get("file_name")
    if isinstance(fname, str) and fname.replace(os.sep, "/") in known.by_file:
        return known.by_file[fname.replace(os.sep, "/")]
    iid = img.get("id")
    if iid is not None and not isinstance(iid, bool):
        text = str(iid)
        if known.ids is None or text in known.ids:
            return text
    return None


def _read(path, project, *, format: str, annotator=None, classes=None, item_ids=None):
    check_option(format, "format", "import_labels", IMPORT_FORMATS)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"import_labels: no file {path}.")
    known = _Known(project, classes, item_ids)
    problems = _Problems()
    if format == "labelstudio":
        rows, annotations = _parse_labelstudio(path, known, problems)
    else:
        rows, annotations = _parse_coco(path, known, problems, annotator)
    problems.raise_if_any(path)
    labels = pd.DataFrame(rows, columns=_LABEL_COLUMNS)
    sets = pd.DataFrame(annotations, columns=["item_id", "annotator", "annotated_at",
                                              "annotation", "ground_truth"])
    sets["ground_truth"] = np.array([v is True for v in sets["ground_truth"]], dtype=bool)
    for frame in (labels, sets):
        raw = frame["annotated_at"]
        parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
        bad = parsed.isna() & raw.notna()
        if bad.any():
            raise SchemaError(f"{path}: updated_at/created_at is not a date/time: "
                              f"{sorted(set(raw[bad].astype(str)))[:5]}. Use ISO 8601 like "
                              f"2026-01-31T14:05:00Z; nothing was imported.")
        frame["annotated_at"] = parsed.dt.as_unit("us")
        for col in ("item_id", "annotator"):
            frame[col] = frame[col].astype("str")
    labels["label"] = labels["label"].astype("str")
    labels["source_box_id"] = labels["source_box_id"].astype("str")
    labels["region"] = labels["region"].astype("str")
    labels["annotation"] = labels["annotation"].astype("str")
    sets["annotation"] = sets["annotation"].astype("str")
    for col in "xywh":
        labels[col] = labels[col].astype(float)
    return labels, sets


def read_box_labels(path, project=None, *, format: str = "labelstudio",
                    annotator: str | None = None, classes=None, item_ids=None
                    ) -> pd.DataFrame:
    """Read a vendor's boxes (Label Studio JSON export or COCO), validated, in pixels.

    Called by :func:`workbench.read_labels` for a detection project (or ``format='coco'``).

    Parameters
    ----------
    path : path-like
    project : DetectionProject, optional
        Checks the images, their sizes, the classes and recognises the exported box ids.
    format : {'labelstudio', 'coco'}, default='labelstudio'
    annotator : str, optional
        COCO only: the annotator of boxes without an ``annotator`` key (default: the
        file's ``info.contributor``, else ``"vendor"``).
    classes, item_ids : sequence of str, optional
        Allowed classes and images (default: the project's).

    Returns
    -------
    DataFrame
        One row per box: ``item_id``, ``annotator``, ``label``, ``x``, ``y``, ``w``, ``h``
        (pixels), ``annotated_at`` (UTC, NaT when not given), ``source_box_id`` (the
        project's box the region was exported from, NA for a new region), ``annotation``
        (which annotation of the file) and ``region`` (where it is in the file).

    Raises
    ------
    SchemaError
        Listing every bad region (see the module notes); nothing is imported.
    """
    if project is not None and getattr(project, "task", None) != "detection":
        raise ValueError(f"read_box_labels reads boxes into a detection project; this "
                         f"project's task is {getattr(project, 'task', None)!r}. Read "
                         f"classification labels with workbench.relabel.read_labels "
                         f"(formats labelstudio, csv, jsonl).")
    labels, _ = _read(path, project, format=format, annotator=annotator, classes=classes,
                      item_ids=item_ids)
    return labels


# --------------------------------------------------------------------------------------
# the diff
# --------------------------------------------------------------------------------------


def _match(old: pd.DataFrame, new: pd.DataFrame, iou: float):
    """Matched (old position, new position, IoU) per image: identity, then Hungarian."""
    from .agreement import _match_sets
    from .matching import coco_iou

    old_item = old["item_id"].astype(str).to_numpy(object)
    new_item = new["item_id"].astype(str).to_numpy(object)
    old_ids = old["box_id"].astype(str).to_numpy(object)
    pos_of = {(i, b): k for k, (i, b) in enumerate(zip(old_item, old_ids, strict=True))}
    src = (new["source_box_id"].to_numpy(object) if "source_box_id" in new.columns
           else np.full(len(new), None, object))
    mo, mn = [], []
    used = set()
    for k, (item, s) in enumerate(zip(new_item, src, strict=True)):
        if isinstance(s, str) and (item, s) in pos_of and pos_of[(item, s)] not in used:
            used.add(pos_of[(item, s)])
            mo.append(pos_of[(item, s)])
            mn.append(k)
    mo_arr, mn_arr = np.asarray(mo, np.int64), np.asarray(mn, np.int64)
    oxy = old[["x", "y", "w", "h"]].to_numpy(float)
    nxy = new[["x", "y", "w", "h"]].to_numpy(float)
    free_o = np.setdiff1d(np.arange(len(old)), mo_arr)
    free_n = np.setdiff1d(np.arange(len(new)), mn_arr)
    codes, _ = pd.factorize(np.r_[old_item[free_o], new_item[free_n]])
    a, b, _v = _match_sets(codes[:len(free_o)], oxy[free_o], codes[len(free_o):],
                           nxy[free_n], iou)
    mo_arr = np.r_[mo_arr, free_o[a]].astype(np.int64)
    mn_arr = np.r_[mn_arr, free_n[b]].astype(np.int64)
    val = coco_iou(oxy[mo_arr].T, nxy[mn_arr].T, np.zeros(len(mo_arr), bool)) \
        if len(mo_arr) else np.zeros(0)
    return mo_arr, mn_arr, val


def _diff_frame(old: pd.DataFrame, new: pd.DataFrame, mo, mn, val,
                new_ids: np.ndarray) -> pd.DataFrame:
    old_lab = old["label"].astype(str).to_numpy(object)
    new_lab = new["label"].astype(str).to_numpy(object)
    same_class = old_lab[mo] == new_lab[mn]
    moved = val < _SAME
    outcome = np.where(~same_class, "reclassed", np.where(moved, "moved", "unchanged"))
    del_o = np.setdiff1d(np.arange(len(old)), mo)
    add_n = np.setdiff1d(np.arange(len(new)), mn)
    nxy = new[["x", "y", "w", "h"]].to_numpy(float)
    oxy = old[["x", "y", "w", "h"]].to_numpy(float)
    old_ids = old["box_id"].astype(str).to_numpy(object)
    frame = pd.DataFrame({
        "item_id": np.r_[old["item_id"].to_numpy(object)[mo],
                         new["item_id"].to_numpy(object)[add_n],
                         old["item_id"].to_numpy(object)[del_o]],
        "outcome": np.r_[outcome, np.full(len(add_n), "added"), np.full(len(del_o), "deleted")],
        "old_box_id": np.r_[old_ids[mo], np.full(len(add_n), None), old_ids[del_o]],
        "new_box_id": np.r_[new_ids[mn], new_ids[add_n], np.full(len(del_o), None)],
        "old_label": np.r_[old_lab[mo], np.full(len(add_n), None), old_lab[del_o]],
        "new_label": np.r_[new_lab[mn], new_lab[add_n], np.full(len(del_o), None)],
        "iou": np.r_[val, np.full(len(add_n) + len(del_o), np.nan)],
        "moved": np.r_[moved, np.zeros(len(add_n) + len(del_o), bool)],
    })
    xywh = np.r_[nxy[mn], nxy[add_n], oxy[del_o]].reshape(-1, 4)
    for j, col in enumerate("xywh"):
        frame[col] = xywh[:, j]
    for col in ("item_id", "outcome", "old_box_id", "new_box_id", "old_label", "new_label"):
        frame[col] = frame[col].astype("str")
    rank = {o: k for k, o in enumerate(DIFF_OUTCOMES)}
    frame["_r"] = frame["outcome"].map(rank)
    frame["_k"] = frame["old_box_id"].fillna(frame["new_box_id"])
    frame = frame.sort_values(["item_id", "_r", "_k"], kind="stable").drop(columns=["_r", "_k"])
    return frame.reset_index(drop=True)


def diff_boxes(old: pd.DataFrame, new: pd.DataFrame, *, iou: float = 0.5) -> pd.DataFrame:
    """Per image, the IoU-matched diff of old reference boxes against new ones.

    Parameters
    ----------
    old : DataFrame
        ``box_id``, ``item_id``, ``label``, ``x``, ``y``, ``w``, ``h`` (pixels).
    new : DataFrame
        ``item_id``, ``label``, ``x``, ``y``, ``w``, ``h`` [, ``box_id``]
        [, ``source_box_id``: the old box the new one was drawn from, matched first].
    iou : float, default=0.5
        Minimum IoU for the boxes without a ``source_box_id`` to match, in (0, 1].

    Returns
    -------
    DataFrame
        One row per matched pair and unmatched box: ``item_id``, ``outcome`` (one of
        ``unchanged``, ``moved``, ``reclassed``, ``added``, ``deleted``), ``old_box_id``,
        ``new_box_id`` (the new frame's ``box_id``, else the matched old id; NA for a
        deleted box), ``old_label``, ``new_label``, ``iou`` of the pair (NaN unmatched),
        ``moved`` (coordinates changed: True for every ``moved`` row and for a
        ``reclassed`` box that also moved), ``x``, ``y``, ``w``, ``h`` (the new box; the
        old one for ``deleted``). Sorted by image, outcome, box id.

    Examples
    --------
    >>> import pandas as pd
    >>> old = pd.DataFrame({"box_id": ["a", "b"], "item_id": "i", "label": ["cat", "dog"],
    ...                     "x": [0, 50], "y": 0, "w": 10, "h": 10})
    >>> new = pd.DataFrame({"item_id": "i", "label": ["cat", "cat"], "x": [1, 50], "y": 0,
    ...                     "w": 10, "h": 10})
    >>> diff_boxes(old, new)[["old_box_id", "outcome"]].values.tolist()
    [['a', 'moved'], ['b', 'reclassed']]
    """
    if iou is None or isinstance(iou, bool) or not isinstance(iou, numbers.Real) \
            or not 0 < iou <= 1:
        raise ValueError(f"The 'iou' parameter of diff_boxes must be a float in (0, 1]. Got "
                         f"{iou!r} instead.")
    from .._validation import check_columns

    check_columns(old, ["box_id", "item_id", "label", "x", "y", "w", "h"], what="old",
                  func="diff_boxes")
    check_columns(new, ["item_id", "label", "x", "y", "w", "h"], what="new",
                  func="diff_boxes")
    old = old.reset_index(drop=True)
    new = new.reset_index(drop=True)
    mo, mn, val = _match(old, new, iou)
    if "box_id" in new.columns:
        new_ids = new["box_id"].astype(object).to_numpy(object)
    else:
        new_ids = np.full(len(new), None, object)
        new_ids[mn] = old["box_id"].astype(str).to_numpy(object)[mo]
    return _diff_frame(old, new, mo, mn, val, new_ids)


# --------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------


class BoxImportReport:
    """What an import of a vendor's boxes did (:func:`import_box_labels`).

    Attributes
    ----------
    path : Path
        The imported file.
    format : str
        ``'labelstudio'`` or ``'coco'``.
    labels : DataFrame
        Every box read (see :func:`read_box_labels`).
    diff : DataFrame
        The reference boxes of the imported images, old against new (see
        :func:`diff_boxes`): ``item_id``, ``outcome``, ``old_box_id``, ``new_box_id``,
        ``old_label``, ``new_label``, ``iou``, ``moved``, ``x``, ``y``, ``w``, ``h``.
    per_image : DataFrame
        ``item_id``, ``annotator`` (whose boxes became the reference), ``n_old``, ``n_new``
        and one count per outcome.
    slices : DataFrame
        ``column``, ``value``, ``n_items``, ``n_imported``, ``label_issues_before``,
        ``label_issues_after`` (rows flagged ``is_issue`` by :func:`workbench.label_issues`
        on the slice's images; NaN without a run), ``agreement_before``,
        ``agreement_after`` (the annotators' detection F1 of
        :func:`workbench.agreement_summary` on the slice's images, computed with
        ``labelled='boxes'`` so that a vendor who drew on a few images is compared on those
        only; NaN with fewer than two annotators), for the whole project
        (``column='(all)'``) and each image metadata value holding imported images.
    per_slice : DataFrame
        ``slices`` (the attribute name of the classification ``ImportReport``).
    changed : DataFrame
        The rows of ``diff`` that are not ``unchanged``.
    counts : dict
        Boxes per outcome.
    n_annotations_replaced : int
        (image, annotator) box sets rewritten in the annotations.
    written : bool
        Whether the project files were rewritten (False when nothing changed).
    boxes_path, annotations_path : Path or None
        The rewritten files; ``backups`` the copies of their previous versions.
    n_relabeled : int
        Queue images marked ``relabeled``.
    project : DetectionProject
        The project after the import (re-read from disk; the caller's object is unchanged).
    """

    def __init__(self, *, path, format, labels, diff, per_image, slices,
                 n_annotations_replaced, written, boxes_path, annotations_path, backups,
                 n_relabeled, project):
        self.path, self.format, self.labels = Path(path), format, labels
        self.diff, self.per_image, self.slices = diff, per_image, slices
        self.n_annotations_replaced = n_annotations_replaced
        self.written, self.boxes_path, self.annotations_path = written, boxes_path, \
            annotations_path
        self.backups, self.n_relabeled, self.project = backups, n_relabeled, project

    @property
    def counts(self) -> dict:
        """Boxes per outcome (every outcome present, 0 when none)."""
        n = self.diff["outcome"].value_counts()
        return {o: int(n.get(o, 0)) for o in DIFF_OUTCOMES}

    @property
    def per_slice(self) -> pd.DataFrame:
        """``slices``, under the name :class:`workbench.relabel.ImportReport` uses."""
        return self.slices

    @property
    def changed(self) -> pd.DataFrame:
        """The rows of ``diff`` that are not ``unchanged``."""
        return self.diff[self.diff["outcome"] != "unchanged"].reset_index(drop=True)

    def summary(self) -> str:
        """One line: images, outcomes, issues and agreement before/after, queue."""
        c = self.counts
        line = (f"{len(self.per_image)} images imported from {self.path.name}: "
                + ", ".join(f"{c[o]} {o}" for o in DIFF_OUTCOMES) + " boxes")
        everything = self.slices[self.slices["column"] == "(all)"]
        if len(everything):
            row = everything.iloc[0]
            if not pd.isna(row["label_issues_before"]):
                line += (f"; label issues {int(row['label_issues_before'])} -> "
                         f"{int(row['label_issues_after'])}")
            if not pd.isna(row["agreement_before"]) or not pd.isna(row["agreement_after"]):
                line += (f"; annotator F1 {row['agreement_before']:.3f} -> "
                         f"{row['agreement_after']:.3f}")
        line += (f"; {self.n_annotations_replaced} annotator box sets replaced; "
                 f"{self.n_relabeled} queue images marked relabeled.")
        return line

    def __repr__(self) -> str:
        return f"BoxImportReport({self.summary()})"


def _latest(sets: pd.DataFrame, by: list[str], *, ground_truth: bool = False
            ) -> pd.DataFrame:
    """The newest annotation per group (time, else file order: the later one wins).

    With ``ground_truth``, an annotation Label Studio marks as ground truth wins over any
    other of its group.
    """
    order = sets.assign(_pos=np.arange(len(sets)),
                        _gt=sets["ground_truth"].to_numpy(bool) if ground_truth
                        else np.zeros(len(sets), bool))
    order = order.sort_values(["_gt", "annotated_at", "_pos"], kind="stable",
                              na_position="first")
    return order.groupby(by, sort=False).tail(1).drop(columns=["_pos", "_gt"])


def _fresh_ids(item: str, taken: set, n: int, prefix: str) -> list[str]:
    out, k = [], 0
    while len(out) < n:
        candidate = f"{item}{prefix}{k}"
        if candidate not in taken:
            out.append(candidate)
            taken.add(candidate)
        k += 1
    return out


def _same_boxes(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if len(a) != len(b):
        return False
    key = ["label", "x", "y", "w", "h"]
    sa = a[key].assign(label=a["label"].astype(str)).sort_values(key).to_numpy(object)
    sb = b[key].assign(label=b["label"].astype(str)).sort_values(key).to_numpy(object)
    if (sa[:, 0] != sb[:, 0]).any():
        return False
    return bool(np.allclose(sa[:, 1:].astype(float), sb[:, 1:].astype(float), rtol=0,
                            atol=1e-6))


def _new_boxes(old_all: pd.DataFrame, new: pd.DataFrame, imported: list[str], iou: float):
    """The boxes table after the import, and the diff."""
    in_imp = old_all["item_id"].isin(set(imported)).to_numpy()
    old = old_all[in_imp].reset_index(drop=True)
    mo, mn, val = _match(old, new, iou)
    new_ids = np.full(len(new), None, object)
    new_ids[mn] = old["box_id"].astype(str).to_numpy(object)[mo]
    taken = set(old_all["box_id"])
    for k in np.setdiff1d(np.arange(len(new)), mn):
        new_ids[k] = _fresh_ids(new["item_id"].iat[k], taken, 1, "/b")[0]
    diff = _diff_frame(old, new, mo, mn, val, new_ids)
    # matched: the old row (id, metadata), with the new class and coordinates if changed;
    # in the file's order
    order = np.argsort(mo, kind="stable")
    mo, mn, val = mo[order], mn[order], val[order]
    kept = old.iloc[mo].reset_index(drop=True)
    changed_geom = val < _SAME
    nxy = new[["x", "y", "w", "h"]].to_numpy(float)
    for j, col in enumerate("xywh"):
        kept[col] = np.where(changed_geom, nxy[mn, j], kept[col].to_numpy(float))
    kept["label"] = pd.array(new["label"].to_numpy(object)[mn], dtype="str")
    if "area" in kept.columns and changed_geom.any():
        kept["area"] = np.where(changed_geom, np.nan, kept["area"].to_numpy(float))
    add_n = np.setdiff1d(np.arange(len(new)), mn)
    added = pd.DataFrame({
        "box_id": pd.array(new_ids[add_n], dtype="str"),
        "item_id": pd.array(new["item_id"].to_numpy(object)[add_n], dtype="str"),
        "label": pd.array(new["label"].to_numpy(object)[add_n], dtype="str"),
        **{c: nxy[add_n, j] for j, c in enumerate("xywh")},
        "iscrowd": np.zeros(len(add_n), bool)})
    parts = [old_all[~in_imp], kept]
    if len(added):
        parts.append(added)
    boxes = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else old_all.iloc[:0]
    # keep the file's image order: an image's boxes where its first box was
    first = {}
    for k, i in enumerate(old_all["item_id"].tolist()):
        first.setdefault(i, k)
    rank = boxes["item_id"].map(lambda i: first.get(i, len(old_all))).to_numpy()
    boxes = boxes.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    return boxes[list(old_all.columns)], diff


def _new_annotations(ann: pd.DataFrame, labels: pd.DataFrame, sets: pd.DataFrame,
                     now: pd.Timestamp):
    """The annotations after the import, and how many (image, annotator) sets changed."""
    latest = _latest(sets, ["item_id", "annotator"])
    keep = np.ones(len(ann), bool)
    new_parts, replaced = [], 0
    taken = set(ann["box_id"]) if "box_id" in ann.columns else set()
    touched = ann[ann["item_id"].isin(set(latest["item_id"]))]
    groups = {k: g for k, g in touched.groupby(["item_id", "annotator"], sort=False)}
    label_groups = {k: g for k, g in labels.groupby("annotation", sort=False)}
    for item, who, key, when in zip(latest["item_id"], latest["annotator"],
                                    latest["annotation"], latest["annotated_at"],
                                    strict=True):
        rows = label_groups.get(key, labels.iloc[:0])
        rows = rows[(rows["item_id"] == item) & (rows["annotator"] == who)]
        old = groups.get((item, who))
        if old is not None and _same_boxes(old, rows):
            continue
        if old is None and not len(rows):
            continue
        replaced += 1
        if old is not None:
            keep[ann.index.get_indexer(old.index)] = False
            taken -= set(old["box_id"])
        ids = _fresh_ids(f"{item}/{who}", taken, len(rows), "/a")
        stamp = when if not pd.isna(when) else now
        part = pd.DataFrame({"box_id": pd.array(ids, dtype="str"),
                             "item_id": pd.array([item] * len(rows), dtype="str"),
                             "annotator": pd.array([who] * len(rows), dtype="str"),
                             "label": pd.array(rows["label"].to_numpy(object), dtype="str"),
                             **{c: rows[c].to_numpy(float) for c in "xywh"},
                             "annotated_at": pd.Series([stamp] * len(rows),
                                                       dtype="datetime64[us, UTC]")})
        new_parts.append(part)
    if not replaced:
        return ann, 0
    old = ann[keep]
    if "annotated_at" not in old.columns:
        old = old.assign(annotated_at=pd.Series(pd.NaT, index=old.index,
                                                dtype="datetime64[us, UTC]"))
    else:
        old = old.assign(annotated_at=pd.to_datetime(old["annotated_at"], utc=True)
                         .dt.as_unit("us"))
    out = pd.concat([p for p in [old, *new_parts] if len(p)], ignore_index=True)
    if not len(out):
        out = old
    cols = [c for c in ann.columns] + (["annotated_at"] if "annotated_at" not in ann.columns
                                       else [])
    return out[cols].reset_index(drop=True), replaced


def _per_image(diff: pd.DataFrame, ref: pd.DataFrame, imported: list[str]) -> pd.DataFrame:
    counts = pd.crosstab(diff["item_id"], diff["outcome"]).reindex(
        index=imported, columns=list(DIFF_OUTCOMES), fill_value=0)
    frame = pd.DataFrame({"item_id": pd.array(imported, dtype="str")})
    who = ref.set_index("item_id")["annotator"]
    frame["annotator"] = pd.array(who.reindex(imported).to_numpy(object), dtype="str")
    frame["n_old"] = (counts["unchanged"] + counts["moved"] + counts["reclassed"]
                      + counts["deleted"]).to_numpy(int)
    frame["n_new"] = (counts["unchanged"] + counts["moved"] + counts["reclassed"]
                      + counts["added"]).to_numpy(int)
    for o in DIFF_OUTCOMES:
        frame[o] = counts[o].to_numpy(int)
    return frame


def _per_item_evidence(project) -> pd.DataFrame:
    """Per image: label issues flagged, and matched / drawn boxes over annotator pairs."""
    ids = project.items["item_id"]
    out = pd.DataFrame(index=pd.Index(ids.to_numpy(object), name="item_id"))
    out["issues"] = np.nan
    if project.default_run is not None and len(project.predictions) and len(project.boxes):
        from .label_quality import detection_label_issues

        issues = detection_label_issues(project)
        n = issues[issues["is_issue"]].groupby("item_id").size()
        out["issues"] = n.reindex(out.index).fillna(0).to_numpy(float)
    out["matched"] = np.nan
    out["sides"] = np.nan
    ann = project.annotations
    if len(ann) and ann["annotator"].nunique() >= 2:
        from .agreement import match_annotators

        m = match_annotators(ann, classes=project.classes, labelled="boxes")
        item = m["item_id"].astype(str)
        matched = m["outcome"].isin(["agree", "other_class"]).astype(float)
        sides = m["box_id_a"].notna().astype(float) + m["box_id_b"].notna().astype(float)
        out["matched"] = matched.groupby(item).sum().reindex(out.index).fillna(0).to_numpy()
        out["sides"] = sides.groupby(item).sum().reindex(out.index).fillna(0).to_numpy()
    return out


def _slice_report(before, eb: pd.DataFrame, ea: pd.DataFrame, imported: list[str]
                  ) -> pd.DataFrame:
    """Per slice, before/after label issues and annotator F1 (``eb``/``ea``: evidence)."""
    items = before.items.set_index("item_id")
    hit = items.index.isin(imported)

    def f1(ev, mask):
        sides = ev["sides"].to_numpy()[mask]
        if np.isnan(sides).all():
            return np.nan
        total = np.nansum(sides)
        return 2 * np.nansum(ev["matched"].to_numpy()[mask]) / total if total else np.nan

    def issues(ev, mask):
        values = ev["issues"].to_numpy()[mask]
        return np.nan if np.isnan(values).all() else float(np.nansum(values))

    def row(column, value, mask):
        return {"column": column, "value": value, "n_items": int(mask.sum()),
                "n_imported": int((mask & hit).sum()),
                "label_issues_before": issues(eb, mask), "label_issues_after": issues(ea, mask),
                "agreement_before": f1(eb, mask), "agreement_after": f1(ea, mask)}

    rows = [row("(all)", "(all)", np.ones(len(items), bool))]
    for col in before.metadata_columns:
        values = items[col]
        if values.nunique(dropna=True) > 50:
            continue
        for value in sorted(map(str, pd.unique(values[hit].dropna()))):
            rows.append(row(col, value, (values.astype(str) == value).to_numpy()))
    frame = pd.DataFrame(rows)
    frame["column"] = frame["column"].astype("str")
    frame["value"] = frame["value"].astype("str")
    frame["label_issues_change"] = frame["label_issues_after"] - frame["label_issues_before"]
    frame["agreement_change"] = frame["agreement_after"] - frame["agreement_before"]
    return frame


def _backup(root: Path, target: Path, stamp: str) -> Path | None:
    if not target.exists():
        return None
    backups = root / ".workbench" / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    backup = backups / f"{target.stem}-{stamp}{target.suffix}"
    shutil.copy2(target, backup)
    return backup


def _table_path(root: Path, stem: str) -> Path:
    for suffix in (".parquet", ".csv"):
        if (root / f"{stem}{suffix}").exists():
            return root / f"{stem}{suffix}"
    return root / (f"{stem}.parquet" if (root / "items.parquet").exists() else f"{stem}.csv")


def _write(root: Path, tables: dict[str, pd.DataFrame]) -> tuple[dict, list[Path]]:
    """Back up and rewrite the tables atomically; on a failure, put the written ones back."""
    from ..relabel import _atomic_frame

    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%fZ")
    targets = {stem: _table_path(root, stem) for stem in tables}
    backups = {stem: _backup(root, targets[stem], stamp) for stem in tables}
    done: list[str] = []
    try:
        for stem, frame in tables.items():
            _atomic_frame(frame, targets[stem])
            done.append(stem)
    except OSError as exc:
        for stem in done:  # best effort: the project stays as it was
            with contextlib.suppress(OSError):
                if backups[stem] is not None:
                    data = backups[stem].read_bytes()
                    atomic_write(targets[stem], lambda fh, d=data: fh.write(d), binary=True)
        raise StoreError(f"Cannot write {targets[stem]}: {exc}. The previous files are intact "
                         f"(backups in {root / '.workbench' / 'backups'}); make the project "
                         f"folder writable and retry.") from exc
    return targets, [b for b in backups.values() if b is not None]


def import_box_labels(project, path, *, format: str = "labelstudio", tag: str = "relabel",
                      store: TagStore | None = None, author: str | None = None,
                      annotator: str | None = None, iou: float = 0.5) -> BoxImportReport:
    """Import a vendor's boxes into a detection project and report the diff.

    Called by :func:`workbench.import_labels` for a detection project; see the module
    notes for what is written and how the diff is computed.

    Parameters
    ----------
    project : DetectionProject
    path : path-like
        A Label Studio JSON export or a COCO instances file.
    format : {'labelstudio', 'coco'}, default='labelstudio'
    tag : str, default='relabel'
        The queue whose images are marked ``relabeled``.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    author : str, optional
        Who imports (default: ``workbench.session.current_author()``).
    annotator : str, optional
        COCO: the annotator of the boxes (see :func:`read_box_labels`).
    iou : float, default=0.5
        Minimum IoU for a box the vendor drew anew to match an old box (see
        :func:`diff_boxes`).

    Returns
    -------
    BoxImportReport

    Raises
    ------
    SchemaError
        Invalid file content (nothing written).
    ReadOnlyError
        In a read-only session.

    Examples
    --------
    >>> report = wb.import_labels(project, "export.json")  # doctest: +SKIP
    >>> report.diff[report.diff["outcome"] != "unchanged"]  # doctest: +SKIP
    """
    from ..relabel import _import_lock, _mark_relabeled, _or_none
    from .io import detection_from_frames

    check_option(format, "format", "import_labels", IMPORT_FORMATS)
    check_fraction(iou, "iou", "import_labels")
    if iou <= 0:
        raise ValueError(f"The 'iou' parameter of import_labels must be a float in (0, 1]. "
                         f"Got {iou!r} instead.")
    require_write("import labels")
    path = Path(path)
    root = getattr(project, "root", None)
    lock = _import_lock(Path(root)) if root is not None else contextlib.nullcontext()
    with lock:
        current = project.reload() if root is not None else project
        labels, sets = _read(path, current, format=format, annotator=annotator)
        now = pd.Timestamp.now(tz="UTC").as_unit("us")
        ref = _latest(sets, ["item_id"], ground_truth=True).reset_index(drop=True)
        imported = sorted(ref["item_id"].tolist())
        # an annotation key names one image (a task, or a COCO image and annotator)
        new = labels[labels["annotation"].isin(set(ref["annotation"]))].reset_index(drop=True)
        boxes, diff = _new_boxes(current.boxes, new, imported, iou)
        annotations, replaced = _new_annotations(current.annotations, labels, sets, now)
        boxes_changed = bool((diff["outcome"] != "unchanged").any())
        tables = {}
        if boxes_changed:
            tables["boxes"] = boxes
        if replaced:
            tables["annotations"] = annotations
        after = current
        if tables:
            # validate the result exactly as the loader will before touching the disk
            after = detection_from_frames(
                current.items, boxes=boxes if boxes_changed else current.boxes,
                annotations=_or_none(annotations), predictions=_or_none(current.predictions),
                classes=current.classes, name=current.name, default_run=current.default_run,
                image_root=current.image_root, info=current.info)
        # the evidence before the files change: a failure here leaves them as they are
        evidence_before = _per_item_evidence(current)
        targets: dict = {}
        backups: list[Path] = []
        if tables and root is not None:
            targets, backups = _write(Path(root), tables)
            after = project.reload()
        evidence_after = (evidence_before if after is current
                          else _per_item_evidence(after))
        slices = _slice_report(current, evidence_before, evidence_after, imported)
    queue_store = store if store is not None else TagStore.for_project(project)
    n_relabeled = _mark_relabeled(queue_store, tag, imported, path,
                                  author or current_author()) if imported else 0
    return BoxImportReport(
        path=path, format=format, labels=labels.drop(columns=["annotation"]), diff=diff,
        per_image=_per_image(diff, ref, imported), slices=slices,
        n_annotations_replaced=replaced, written=bool(targets), boxes_path=targets.get("boxes"),
        annotations_path=targets.get("annotations"), backups=backups,
        n_relabeled=n_relabeled, project=after)
