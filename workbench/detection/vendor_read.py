"""Read a vendor's boxes back (Label Studio rectangles, COCO), validating everything first.

See :mod:`workbench.detection.vendor` for the rules; nothing here writes.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import parse_times
from .._validation import check_option
from ..errors import SchemaError

__all__ = ["read_box_labels", "IMPORT_FORMATS"]


IMPORT_FORMATS = ("labelstudio", "coco")
#: Annotator of COCO boxes without an ``annotator`` key (and no ``annotator=``).
DEFAULT_ANNOTATOR = "vendor"
_DECIMALS = 6           # pixels read back from percent are rounded to 1e-6 px
_SIZE_TOLERANCE = 0.5   # px: original_width/height must be the project's image size
_MAX_SHOWN = 20
_LABEL_COLUMNS = ["item_id", "annotator", "label", "x", "y", "w", "h", "annotated_at",
                  "source_box_id", "annotation", "region"]


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
        frame["annotated_at"] = parse_times(frame["annotated_at"], path,
                                            "updated_at/created_at")
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
