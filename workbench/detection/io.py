"""The detection project format: reading, validating and writing boxes.

A detection project is a folder whose ``workbench.toml`` says ``task = "detection"``::

    workbench.toml   task = "detection"; classes, name, default_run, image_root as today
    items.*          one row per image: item_id, filepath, [width, height], metadata
    boxes.*          the dataset's boxes: item_id, label, x, y, w, h [, box_id] [, iscrowd]
                     [, any other column = box metadata]
    annotations.*    optional, boxes drawn by annotators: item_id, annotator, label,
                     x, y, w, h [, annotated_at] [, box_id]
    predictions.*    optional, detections per run: item_id, run, label, x, y, w, h,
                     confidence [, prob_<class>] [, pred_id]

Boxes are ``[x, y, w, h]`` in pixels, top-left origin, ``w`` and ``h`` > 0 (COCO's ``bbox``).
:func:`workbench.open_project` reads such a folder through :func:`load_detection`, with the
same checks and the same problem messages (file, line or row, column, fix) as a
classification project; :func:`detection_from_frames` does the same for in-memory frames and
:func:`write_detection_project` writes a project back (lossless).

Generated ids (when the column is absent), stable across reloads of the same file:

- boxes: ``{item_id}/b{k}``, ``k`` = 0-based order of the box among its image's rows;
- annotations: ``{item_id}/{annotator}/a{k}``, ``k`` among the rows of that image and annotator;
- predictions: ``{item_id}/{run}/p{k}``, ``k`` among the rows of that image and run.

Boxes outside their image: a box may stick out of the image by at most
:data:`OUTSIDE_TOLERANCE_PX` pixels or :data:`OUTSIDE_TOLERANCE_FRACTION` of the image's side,
whichever is larger; such boxes are kept as they are (not clipped) with one warning. Further
out is an error for boxes and annotations and a warning for predictions (a detector may
regress past the border; matching still treats the box as given).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .._ids import ItemIds, worker_count
from ..errors import SchemaError
from ..project import (
    _REQUIRED,
    PROB_PREFIX,
    Project,
    _check_empty,
    _check_known_ids,
    _check_labels,
    _check_required,
    _confined,
    _find_table,
    _has_required,
    _listed,
    _numeric,
    _parse_annotated_at,
    _prepared,
    _Problems,
    _read_table,
    _settings,
    _Source,
    _summary,
    _toml_lines,
    _toml_str,
    _validate_items,
    _validate_probs,
    _write_tables,
    csv_text_lines,
)

__all__ = [
    "DetectionProject",
    "load_detection",
    "detection_from_frames",
    "write_detection_project",
    "OUTSIDE_TOLERANCE_PX",
    "OUTSIDE_TOLERANCE_FRACTION",
    "BOX_COLUMNS",
]

#: A box may leave its image by this many pixels ...
OUTSIDE_TOLERANCE_PX = 1.0
#: ... or by this fraction of the image's width (x) or height (y), whichever is larger.
OUTSIDE_TOLERANCE_FRACTION = 0.01
#: The columns of ``project.boxes`` before the box metadata, in this order.
BOX_COLUMNS = ("box_id", "item_id", "label", "x", "y", "w", "h", "iscrowd")
ANNOTATION_COLUMNS = ("box_id", "item_id", "annotator", "label", "x", "y", "w", "h")
PREDICTION_COLUMNS = ("pred_id", "item_id", "run", "label", "x", "y", "w", "h", "confidence")
_ITEM_STANDARD = ("item_id", "filepath", "width", "height")
#: Item columns a detection project derives itself (the matches frame, the boxes).
#: (``predicted``, ``confidence``, ``run``... are refused for both tasks already.)
_RESERVED_ITEM = ("label", "box_id", "pred_id", "iou", "outcome", "is_fn", "is_fp", "area",
                  "size", "x", "y", "w", "h", "iscrowd")
#: Box metadata names that would clash with the columns match_detections derives.
_RESERVED_BOX = ("pred_id", "run", "predicted", "confidence", "iou", "outcome", "is_fn",
                 "is_fp", "size", "annotator", "filepath", "width", "height")
#: A class name a detection project cannot use: ``detection_metrics`` names its summary row
#: (every class pooled) ``all``, and the AP tables, dashboards and scorecards read it by name.
RESERVED_CLASS = "all"
_RESERVED_WHY = (f"is reserved in a detection project: detection_metrics names its summary row "
                 f"(every class pooled) {RESERVED_CLASS!r}")
_TABLES = (("items", "items"), ("boxes", "boxes"), ("annotations", "box_annotations"),
           ("predictions", "box_predictions"))
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


# --------------------------------------------------------------------------------------
# the project


class DetectionProject(Project):
    """A detection project: images, their boxes, annotators' boxes and detections per run.

    Built by :func:`workbench.open_project` on a folder whose ``workbench.toml`` says
    ``task = "detection"``, or by ``Project.from_frames(..., boxes=..., task="detection")``.
    Everything of :class:`~workbench.project.Project` applies (``items``, ``classes``,
    ``runs``, ``media_status()``...), plus ``boxes``; the per-item label views of a
    classification project (``errors()``, ``reference_labels()``, ``pred_probs()``) raise
    and name the detection function to call instead.

    Attributes
    ----------
    task : str
        ``'detection'``.
    items : DataFrame
        ``item_id``, ``filepath``, ``width``, ``height`` (int64, or Int64 with NA where the
        image could not be read), then the image metadata columns.
    boxes : DataFrame
        ``box_id`` (unique), ``item_id``, ``label``, ``x``, ``y``, ``w``, ``h`` (float64),
        ``iscrowd`` (bool), then the box metadata columns.
    annotations : DataFrame
        ``box_id``, ``item_id``, ``annotator``, ``label``, ``x``, ``y``, ``w``, ``h``
        [, ``annotated_at``], then any other column.
    predictions : DataFrame
        ``pred_id`` (unique), ``item_id``, ``run``, ``label``, ``x``, ``y``, ``w``, ``h``,
        ``confidence`` [, ``prob_<class>`` in class order], then any other column.
    """

    task = "detection"

    def __init__(self, *, boxes: pd.DataFrame, **kwargs):
        super().__init__(**kwargs)
        self.boxes: pd.DataFrame = boxes

    @property
    def metadata_columns(self) -> list[str]:
        """Image columns other than ``item_id``, ``filepath``, ``width`` and ``height``."""
        return [c for c in self.items.columns if c not in _ITEM_STANDARD]

    @property
    def box_metadata_columns(self) -> list[str]:
        """Box columns after ``box_id, item_id, label, x, y, w, h, iscrowd``."""
        return [c for c in self.boxes.columns if c not in BOX_COLUMNS]

    def _classification_only(self, what: str, instead: str):
        raise SchemaError(
            f"{what} is for classification projects (one label per image); this project's "
            f"task is 'detection' (boxes). {instead}")

    def errors(self, run: str | None = None) -> pd.DataFrame:
        """Not for detection: use :func:`workbench.match_detections` (raises SchemaError)."""
        self._classification_only(
            "Project.errors", "Use workbench.match_detections(project, run) for one row per "
                              "box with its outcome (targets is_fn and is_fp for "
                              "slice_metrics/discover_slices), and "
                              "workbench.detection_metrics(project) for AP per class.")

    def reference_labels(self) -> pd.Series:
        """Not for detection: the reference is ``project.boxes`` (raises SchemaError)."""
        self._classification_only(
            "Project.reference_labels", "The reference of a detection project is its boxes: "
                                        "project.boxes (one row per box, with its label); "
                                        "workbench.match_detections(project) pairs them with "
                                        "the detections.")

    def pred_probs(self, run: str | None = None):
        """Not for detection: probabilities are per box (raises SchemaError)."""
        self._classification_only(
            "Project.pred_probs", "Detections carry their probabilities per box: "
                                  "project.predictions (columns confidence and prob_<class> "
                                  "when given); match them with workbench.match_detections.")

    def __repr__(self) -> str:
        where = f" at {self.root}" if self.root else ""
        return (f"<DetectionProject {self.name!r}{where}: {len(self.items):,} images, "
                f"{len(self.boxes):,} boxes, {len(self.classes)} classes, "
                f"{len(self.annotations):,} annotated boxes by {len(self.annotators)} "
                f"annotators, {len(self.predictions):,} detections in runs {self.runs}>")


# --------------------------------------------------------------------------------------
# entry points


def load_detection(root: Path, config: dict, problems: _Problems) -> DetectionProject | None:
    """Read and check the tables of a detection project folder (called by ``open_project``).

    Parameters
    ----------
    root : Path
        The project folder (resolved).
    config : dict
        ``workbench.toml``, as read by the project loader.
    problems : list of Problem
        Every problem found is appended here.

    Returns
    -------
    DetectionProject or None
        None when an error was found (it is in ``problems``).
    """
    frames, sources = {}, {}
    for stem, kind in _TABLES:
        path = _find_table(root, stem, problems, required=stem == "items")
        if path is None:
            frames[stem], sources[stem] = None, _Source(f"{stem}.csv")
            continue
        frames[stem], sources[stem] = _read_table(path, kind, problems, config=config)
    if frames["items"] is None:
        return None
    try:
        return _build(frames, sources, config, root=root, problems=problems, info={}, own=True)
    except SchemaError as exc:
        if not problems.errors:
            problem = exc.problems[0] if exc.problems else None
            problems.error(problem.file if problem else str(root), str(exc),
                           column=problem.column if problem else None)
        return None


def detection_from_frames(items=None, *, boxes=None, annotations=None, predictions=None,
                          classes=None, name="project", default_run=None, root=None,
                          image_root=None, info=None) -> DetectionProject:
    """Build a detection project from DataFrames, with the same checks as the files.

    Called by ``Project.from_frames(..., task="detection")``; see
    :meth:`workbench.project.Project.from_frames` for the parameters.

    Returns
    -------
    DetectionProject

    Raises
    ------
    SchemaError
        Listing every problem found (file = the frame's name, row = 0-based position).
    """
    frames = {"items": items, "boxes": boxes, "annotations": annotations,
              "predictions": predictions}
    for key, frame in frames.items():
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise TypeError(f"The {key!r} parameter of Project.from_frames must be a pandas "
                            f"DataFrame or None. Got {type(frame).__name__} instead.")
    for key in ("boxes", "annotations", "predictions"):  # an empty frame means none
        if frames[key] is not None and frames[key].empty:
            frames[key] = None
    if frames["items"] is None:
        ids = []
        for key in ("boxes", "annotations", "predictions"):
            frame = frames[key]
            if frame is not None and "item_id" in frame.columns:
                ids.extend(pd.unique(frame["item_id"].astype(str)))
        frames["items"] = pd.DataFrame({"item_id": pd.unique(np.asarray(ids, dtype=object))})
    sources = {k: _Source(k) for k in frames}
    config = {"name": name, "default_run": default_run, "image_root": image_root}
    if classes is not None:
        config["classes"] = [str(c) for c in classes]
    return _build(frames, sources, config, root=Path(root) if root is not None else None,
                  problems=_Problems(), info=dict(info or {}))


def write_detection_project(project: DetectionProject, directory: str | os.PathLike, *,
                            format: Literal["csv", "parquet"] = "parquet") -> Path:
    """Write a detection project: items, boxes, annotations, predictions, ``workbench.toml``.

    Called by :func:`workbench.write_project`. Every id is written (generated ones too), so
    opening the folder again gives equal frames. Empty tables are not written (an existing
    file of that table is removed). ``project.info["coco"]`` (what :func:`import_coco`
    records) is written as the ``[coco]`` table of ``workbench.toml``.

    Returns
    -------
    Path
        The project folder.
    """
    from .._io import atomic_write

    root = Path(directory)
    text = _write_tables(root, {"items": project.items, "boxes": project.boxes,
                                "annotations": project.annotations,
                                "predictions": project.predictions}, format)
    lines = _toml_lines(project)
    coco = project.info.get("coco")
    if isinstance(coco, dict) and coco:
        lines += ["", "[coco]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in coco.items()]
    lines += csv_text_lines(text)
    atomic_write(root / "workbench.toml", lambda fh: fh.write("\n".join(lines) + "\n"))
    return root


def _toml_key(key) -> str:
    return _toml_str(key)


def _toml_value(value) -> str:
    """A TOML value for str, int, float, bool, lists and str-keyed dicts (inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to workbench.toml")


# --------------------------------------------------------------------------------------
# building and validating


def _build(frames, sources, config, *, root, problems: _Problems, info,
           own=False) -> DetectionProject:
    classes = config.get("classes")
    items = _prepared(frames.get("items"), "items", own)
    boxes = _prepared(frames.get("boxes"), "boxes", own)
    ann = _prepared(frames.get("annotations"), "box_annotations", own)
    pred = _prepared(frames.get("predictions"), "box_predictions", own)
    ids = ItemIds(items["item_id"]) if _has_required(items, "items") else None
    width = height = None
    if items is not None:
        items = _validate_items(items, sources["items"], None, problems,
                                ids.first if ids is not None else None)
    if items is not None:
        _check_reserved(items, _RESERVED_ITEM, sources["items"], problems, "image")
        items = _with_sizes(items, sources["items"], problems, root,
                            config.get("image_root"))
        width = items["width"].to_numpy(dtype=float, na_value=np.nan)
        height = items["height"].to_numpy(dtype=float, na_value=np.nan)
    context = _Context(ids, width, height, classes, problems)
    if boxes is not None:
        boxes = _validate_boxes(boxes, sources["boxes"], context)
    if ann is not None:
        ann = _validate_annotations(ann, sources["annotations"], context)
    prob_classes: list[str] = []
    if pred is not None:
        pred, prob_classes = _validate_predictions(pred, sources["predictions"], context)
    _check_reserved_classes(classes, (boxes, ann, pred), problems)
    if problems.errors:
        raise SchemaError(_summary(problems), problems=list(problems))

    boxes = boxes if boxes is not None else _empty(BOX_COLUMNS, iscrowd=bool)
    ann = ann if ann is not None else _empty(ANNOTATION_COLUMNS)
    pred = pred if pred is not None else _empty(PREDICTION_COLUMNS, confidence=float)
    if classes is None:
        seen: set[str] = set(prob_classes)
        for frame in (boxes, ann, pred):
            seen.update(pd.unique(frame["label"].dropna()))
        classes = sorted(seen)
    prob_cols = [PROB_PREFIX + c for c in classes if PROB_PREFIX + c in pred.columns]
    pred = _ordered(pred, list(PREDICTION_COLUMNS) + prob_cols)
    ann = _ordered(ann, list(ANNOTATION_COLUMNS) + (["annotated_at"] if "annotated_at" in
                                                    ann.columns else []))
    boxes = _ordered(boxes, list(BOX_COLUMNS))
    items = _ordered(items, list(_ITEM_STANDARD) if "filepath" in items.columns
                     else ["item_id", "width", "height"])
    runs = list(pd.unique(pred["run"])) if len(pred) else []
    default_run, image_root, name, info = _settings(config, root, runs, info)
    return DetectionProject(boxes=boxes, items=items, annotations=ann, predictions=pred,
                            classes=classes, name=name, default_run=default_run, root=root,
                            image_root=image_root, info=info, problems=list(problems))


class _Context:
    """What every table's checks share: the item ids, image sizes, classes, problems."""

    def __init__(self, ids, width, height, classes, problems):
        self.ids, self.width, self.height = ids, width, height
        self.classes, self.problems = classes, problems

    def positions(self, frame) -> np.ndarray | None:
        return self.ids.locate(frame["item_id"]) if self.ids is not None else None


def _empty(columns, **dtypes) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, float if c in "xywh" else "str"))
                         for c in columns})


def _ordered(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    cols = [c for c in first if c in frame.columns]
    frame = frame[cols + [c for c in frame.columns if c not in cols]]
    return frame.reset_index(drop=True)


def _check_reserved(frame, reserved, source: _Source, problems: _Problems, what: str) -> None:
    clash = [c for c in reserved if c in frame.columns]
    if clash:
        problems.error(source.name, f"column(s) {clash} are reserved in a detection project "
                                    f"(the {what}'s standard columns and what match_detections "
                                    f"derives); rename them, e.g. to '{what}_{clash[0]}'.",
                       column=clash[0], **({"line": 1} if source.csv else {}))


# ---- image sizes ----------------------------------------------------------------------


def _with_sizes(items, source, problems, root, image_root) -> pd.DataFrame:
    """``width`` and ``height`` checked, and read from the image files where absent."""
    sizes = {}
    for col in ("width", "height"):
        if col not in items.columns:
            sizes[col] = np.full(len(items), np.nan)
            continue
        raw = items[col]
        values = np.array(pd.to_numeric(raw, errors="coerce"), dtype=float)
        nonnum = np.isnan(values) & raw.notna().to_numpy()
        bad = ~np.isnan(values) & ((values <= 0) | ~np.isfinite(values)
                                   | (values != np.floor(values)))
        for mask, kind in ((nonnum, "not a number"), (bad, "not a whole number > 0")):
            if mask.any():
                pos = np.flatnonzero(mask)
                found = _listed(pd.unique(raw.to_numpy()[pos]))
                problems.error(source.name, f"{col} is {kind}: {found} "
                                            f"({source.where(pos)}). Write the image's {col} in "
                                            f"pixels (a whole number), or leave the cell empty "
                                            f"to read it from the image file.",
                               column=col, **source.at(pos[0]))
        values[nonnum | bad] = np.nan
        sizes[col] = values
    need = np.flatnonzero(np.isnan(sizes["width"]) | np.isnan(sizes["height"]))
    if len(need) and root is not None and "filepath" in items.columns:
        base = root / image_root if image_root else root
        paths = items["filepath"].to_numpy()[need]
        with ThreadPoolExecutor(min(worker_count(), 8)) as pool:
            read = list(pool.map(lambda rel: _image_size(root, base, rel), paths))
        for pos, size in zip(need, read, strict=True):
            if size is not None:
                for col, value in zip(("width", "height"), size, strict=True):
                    if np.isnan(sizes[col][pos]):
                        sizes[col][pos] = value
    for col in ("width", "height"):
        values = sizes[col]
        missing = np.isnan(values)
        if missing.any():
            items[col] = pd.array(values, dtype="Int64")
        else:
            items[col] = values.astype(np.int64)
    return items


def _image_size(root: Path, base: Path, rel) -> tuple[int, int] | None:
    """(width, height) from the image file's header (Pillow reads no pixels), or None."""
    path = _confined(root, base, rel)
    if path is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


# ---- shared checks of the three box tables -------------------------------------------


def _coordinates(frame, source: _Source, problems: _Problems, what: str) -> np.ndarray:
    """x, y, w, h as float64 (shape (4, n)); problems for non-numbers, NaN, inf, w/h <= 0."""
    out = np.empty((4, len(frame)))
    for j, col in enumerate("xywh"):
        raw = frame[col]
        if pd.api.types.is_bool_dtype(raw.dtype):
            values = np.full(len(raw), np.nan)
            nonnum = np.ones(len(raw), dtype=bool)
        else:
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            nonnum = np.isnan(values) & raw.notna().to_numpy()
            if pd.api.types.is_float_dtype(raw.dtype):
                nonnum &= False  # a NaN float is reported as missing or NaN below
        missing = np.isnan(values) & ~nonnum
        checks = [
            (nonnum, f"{col} must be a number (pixels); found {{values}} ({{where}}). Write "
                     f"plain numbers like 12.5 (no units, no text)."),
            (missing, f"{col} is empty or NaN on {{where}}. Every {what} needs x, y, w, h in "
                      f"pixels: fill it in or delete the row."),
            (np.isinf(values), f"{col} is infinite on {{where}}. Coordinates must be finite "
                               f"pixel values."),
        ]
        if col in "wh":
            checks.append((values <= 0, f"{col} must be > 0 (a box has a positive size); "
                                        f"found {{values}} ({{where}}). Fix the box or delete "
                                        f"the row."))
        for mask, message in checks:
            if mask.any():
                pos = np.flatnonzero(mask)
                shown = _listed(pd.unique(raw.to_numpy()[pos]))
                problems.error(source.name, message.format(values=shown,
                                                           where=source.where(pos)),
                               column=col, **source.at(pos[0]))
        out[j] = values
    return out


def _check_inside(xywh: np.ndarray, positions, ids, context: _Context, source: _Source,
                  what: str, *, strict: bool) -> None:
    """Report boxes outside their image.

    Beyond the tolerance: an error (a warning unless ``strict``); within it: a warning.
    """
    if positions is None or context.width is None or not len(positions):
        return
    known = positions >= 0
    at = np.where(known, positions, 0)
    width, height = context.width[at], context.height[at]
    known &= ~np.isnan(width) & ~np.isnan(height) & np.isfinite(xywh).all(axis=0)
    if not known.any():
        return
    x, y, w, h = xywh
    with np.errstate(invalid="ignore"):
        tol_x = np.maximum(OUTSIDE_TOLERANCE_PX, OUTSIDE_TOLERANCE_FRACTION * width)
        tol_y = np.maximum(OUTSIDE_TOLERANCE_PX, OUTSIDE_TOLERANCE_FRACTION * height)
        over = np.maximum.reduce([-x, -y, x + w - width, y + h - height])
        far = known & ((x < -tol_x) | (y < -tol_y) | (x + w > width + tol_x)
                       | (y + h > height + tol_y))
        near = known & (over > 0) & ~far
    rule = (f"the tolerance is {OUTSIDE_TOLERANCE_PX:g} px or "
            f"{OUTSIDE_TOLERANCE_FRACTION:.0%} of the image's side, whichever is larger")
    if far.any():
        pos = np.flatnonzero(far)
        shown = "; ".join(f"{ids[p]} [{x[p]:g}, {y[p]:g}, {w[p]:g}, {h[p]:g}] in a "
                          f"{width[p]:g}x{height[p]:g} image" for p in pos[:3])
        message = (f"{len(pos)} {what}(es) lie outside their image ({rule}): {shown} "
                   f"({source.where(pos)}). Boxes are [x, y, w, h] in pixels from the top-left "
                   f"corner (x + w <= width, y + h <= height): fix the coordinates, or the "
                   f"image's width/height in items.")
        if strict:
            context.problems.error(source.name, message, column="x", **source.at(pos[0]))
        else:
            context.problems.warn(source.name, message + " They are kept as they are.",
                                  column="x", **source.at(pos[0]))
    if near.any():
        pos = np.flatnonzero(near)
        context.problems.warn(source.name, f"{len(pos)} {what}(es) stick out of their image by "
                                           f"at most the tolerance ({rule}; "
                                           f"{source.where(pos)}); they are kept as they are, "
                                           f"not clipped.", column="x", **source.at(pos[0]))


def _ids_column(frame, col: str, keys: list[str], sep: list[str], source: _Source,
                problems: _Problems, what: str) -> None:
    """Check the id column, or generate it: ``{keys[0]}{sep[0]}{keys[1]}...{k}``."""
    if col in frame.columns:
        blank = frame[col].isna().to_numpy() | (frame[col].str.strip() == "").to_numpy(
            dtype=bool, na_value=True)
        if blank.any():
            pos = np.flatnonzero(blank)
            problems.error(source.name, f"empty {col} on {source.where(pos)}. Give every {what} "
                                        f"an id, or remove the {col} column to have ids "
                                        f"generated.", column=col, **source.at(pos[0]))
        dup = frame[col].duplicated(keep=False).to_numpy() & ~blank
        if dup.any():
            pos = np.flatnonzero(dup)
            found = _listed(pd.unique(frame[col].to_numpy()[pos]))
            problems.error(source.name, f"duplicate {col}(s) {found} "
                                        f"({source.where(pos)}). Each {what} needs a unique "
                                        f"{col}: rename the duplicates, or remove the column "
                                        f"to have ids generated.", column=col,
                           **source.at(pos[0]))
        return
    k = frame.groupby(keys, sort=False, dropna=False).cumcount().astype("str")
    generated = frame[keys[0]].astype("str")
    for key, part in zip(keys[1:], sep[:-1], strict=True):
        generated = generated + part + frame[key].astype("str")
    frame[col] = (generated + sep[-1] + k).astype("str")


def _check_reserved_class(frame, source: _Source, problems: _Problems) -> None:
    hit = (frame["label"] == RESERVED_CLASS).to_numpy(dtype=bool, na_value=False)
    if hit.any():
        pos = np.flatnonzero(hit)
        problems.error(source.name, f"label {RESERVED_CLASS!r} ({source.where(pos)}) "
                                    f"{_RESERVED_WHY}. Rename the class, for example to "
                                    f"'{RESERVED_CLASS}_', in every table (and in 'classes' "
                                    f"in workbench.toml, or the COCO category).",
                       column="label", **source.at(pos[0]))


def _check_reserved_classes(classes, frames, problems: _Problems) -> None:
    """Refuse a declared class named ``all``, when no table's label said it already.

    Declared: ``classes`` in workbench.toml, the COCO categories or the ``classes`` given to
    from_frames.
    """
    if classes is None or RESERVED_CLASS not in classes:
        return
    if any(f is not None and "label" in f.columns and (f["label"] == RESERVED_CLASS).any()
           for f in frames):
        return
    problems.error("workbench.toml", f"class {RESERVED_CLASS!r} is declared (in 'classes', or "
                                     f"as a COCO category) but {_RESERVED_WHY}. Rename the "
                                     f"class, for example to '{RESERVED_CLASS}_'.",
                   column="classes")


def _iscrowd(frame, source: _Source, problems: _Problems) -> None:
    if "iscrowd" not in frame.columns:
        frame["iscrowd"] = False
        return
    raw = frame["iscrowd"]
    if pd.api.types.is_bool_dtype(raw.dtype) and not raw.isna().any():
        frame["iscrowd"] = raw.astype(bool)
        return
    text = raw.astype("str").str.strip().str.lower()
    text = text.where(~text.isin(["1.0", "0.0"]), text.str[0])  # 1.0 read from a float column
    truth = text.isin(_TRUE).to_numpy(dtype=bool)
    bad = ~(truth | text.isin(_FALSE).to_numpy(dtype=bool)) | raw.isna().to_numpy()
    if bad.any():
        pos = np.flatnonzero(bad)
        problems.error(source.name, f"iscrowd must be 0, 1, true or false; found "
                                    f"{_listed(pd.unique(raw.to_numpy()[pos]))} "
                                    f"({source.where(pos)}). Fix the values, or drop the column "
                                    f"(no box is then a crowd).", column="iscrowd",
                       **source.at(pos[0]))
    frame["iscrowd"] = truth


def _common(frame, kind: str, source: _Source, context: _Context, what: str, plural: str,
            *, strict_inside: bool, id_col: str, id_keys: list[str], id_sep: list[str]):
    """The checks the three box tables share (required columns already checked)."""
    problems = context.problems
    _check_empty(frame, [c for c in _REQUIRED[kind] if c not in "xywh" and c != "confidence"],
                 source, problems, what)
    xywh = _coordinates(frame, source, problems, what)
    positions = context.positions(frame)
    if positions is not None:
        _check_known_ids(frame, positions, source, problems, plural)
    _check_labels(frame, "label", context.classes, source, problems)
    _check_reserved_class(frame, source, problems)
    _ids_column(frame, id_col, id_keys, id_sep, source, problems, what)
    _check_inside(xywh, positions, frame[id_col].to_numpy(), context, source, what,
                  strict=strict_inside)
    for j, col in enumerate("xywh"):
        frame[col] = xywh[j]
    return frame


def _validate_boxes(boxes, source: _Source, context: _Context):
    problems = context.problems
    if not _check_required(boxes, "boxes", source, problems):
        return None
    _check_reserved(boxes, _RESERVED_BOX, source, problems, "box")
    boxes = _common(boxes, "boxes", source, context, "box", "boxes", strict_inside=True,
                    id_col="box_id", id_keys=["item_id"], id_sep=["/b"])
    _iscrowd(boxes, source, problems)
    if "area" in boxes.columns:  # COCO's area, which match_detections uses for its sizes
        raw = boxes["area"]
        area = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = (np.isnan(area) & raw.notna().to_numpy()) | np.isinf(area) | (area < 0)
        if bad.any():
            pos = np.flatnonzero(bad)
            problems.error(source.name, f"area must be a finite number >= 0 (pixels²); found "
                                        f"{_listed(pd.unique(raw.to_numpy()[pos]))} "
                                        f"({source.where(pos)}). Fix it, or leave it empty to "
                                        f"use w * h.", column="area", **source.at(pos[0]))
        else:
            boxes["area"] = area
    return boxes


def _validate_annotations(ann, source: _Source, context: _Context):
    problems = context.problems
    if not _check_required(ann, "box_annotations", source, problems):
        return None
    ann = _common(ann, "box_annotations", source, context, "annotated box", "annotations",
                  strict_inside=True, id_col="box_id", id_keys=["item_id", "annotator"],
                  id_sep=["/", "/a"])
    if "annotated_at" in ann.columns:
        _parse_annotated_at(ann, source, problems)
    return ann


def _validate_predictions(pred, source: _Source, context: _Context):
    problems = context.problems
    if not _check_required(pred, "box_predictions", source, problems):
        return None, []
    pred = _common(pred, "box_predictions", source, context, "detection", "predictions",
                   strict_inside=False, id_col="pred_id", id_keys=["item_id", "run"],
                   id_sep=["/", "/p"])
    pred["confidence"] = _numeric(pred, "confidence", source, problems, what="confidence",
                                  allow_missing=False)
    prob_classes = _validate_probs(pred, source, context.classes, problems)
    if RESERVED_CLASS in prob_classes:
        problems.error(source.name, f"column '{PROB_PREFIX}{RESERVED_CLASS}' names the class "
                                    f"{RESERVED_CLASS!r}, which {_RESERVED_WHY}. Rename the "
                                    f"class, for example to '{RESERVED_CLASS}_'.",
                       column=PROB_PREFIX + RESERVED_CLASS)
    return pred, prob_classes


