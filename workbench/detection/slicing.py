"""Slice detection errors: confusion table with background, object-level slices, run comparison.

The detection forms of :func:`workbench.confusion_table`, :func:`workbench.cell_items`,
:func:`workbench.slice_metrics`, :func:`workbench.discover_slices` and
:func:`workbench.compare_runs`. Those functions hand over to this module when they are given
a *matches frame* (the output of :func:`workbench.match_detections`, recognised by its
``outcome``, ``is_fn``, ``is_fp``, ``box_id`` and ``pred_id`` columns) or a detection project;
classification inputs never reach it. The statistics (tests, intervals, slice search) are
those of :mod:`workbench.slicing`, called on the object-level frame, not copied.

Conventions, stated once:

* **Confusion table.** Rows are the reference class (``true``), or ``background`` for a
  prediction that matches no reference box; columns are the predicted class, or
  ``background`` for a reference box that no prediction found. ``tp`` and ``wrong_class``
  pairs fill the class cells, ``fn`` goes to ``(label, background)``, ``fp`` and
  ``duplicate`` to ``(background, predicted)``. A ``mislocated`` pair (same class, IoU below
  the threshold) is, as in COCO at that threshold, both a miss of the reference box and a
  false detection: it is counted **twice**, in ``(label, background)`` and in
  ``(background, predicted)``. So row ``c`` sums to the reference boxes of class ``c`` and
  column ``c`` to the predictions of class ``c`` (``n_boxes`` and ``n_predictions`` of
  :func:`workbench.detection_metrics`).
* **Object-level rows.** ``is_fn`` (a missed reference box) is counted on the reference-box
  rows only (``box_id`` present: ``tp``, ``fn``, ``wrong_class``, ``mislocated``) and
  ``is_fp`` (a false detection) on the prediction rows only (``pred_id`` present: ``tp``,
  ``wrong_class``, ``mislocated``, ``fp``, ``duplicate``); the other rows would only dilute
  the rate. :func:`object_frame` makes that frame; the default slicing features are the
  image metadata, the box metadata (for ``is_fn`` only: prediction-only rows have none) and
  ``size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import slicing as sl
from .._validation import check_columns, check_option
from ..errors import SchemaError
from . import matching as mt
from .io import RESERVED_CLASS

__all__ = [
    "BACKGROUND",
    "object_frame",
    "is_matches_frame",
    "detection_confusion_table",
    "detection_cell_items",
    "object_slice_metrics",
    "discover_object_slices",
    "compare_detection_runs",
    "DetectionRunDiff",
]

#: Name of the row (false detections) and column (missed boxes) of the confusion table.
BACKGROUND = "background"
#: The columns that make a frame a matches frame (see :func:`is_matches_frame`).
MATCH_COLUMNS = ("item_id", "box_id", "pred_id", "label", "predicted", "outcome", "is_fn",
                 "is_fp")
#: The id column of the rows each target is counted on.
TARGET_ROWS = {"is_fn": "box_id", "is_fp": "pred_id"}
_ROW_NAMES = {"is_fn": "reference boxes", "is_fp": "predictions"}
_PAIR = ("tp", "wrong_class")
_MISS = ("fn", "mislocated")
_FALSE = ("fp", "duplicate", "mislocated")


# ----------------------------------------------------------------------------- inputs


def is_matches_frame(frame: Any) -> bool:
    """Whether ``frame`` is a matches frame (it has the columns of :data:`MATCH_COLUMNS`).

    Parameters
    ----------
    frame : object
        Anything; only a DataFrame holding ``item_id``, ``box_id``, ``pred_id``, ``label``,
        ``predicted``, ``outcome``, ``is_fn`` and ``is_fp`` is a matches frame.

    Returns
    -------
    bool
    """
    return isinstance(frame, pd.DataFrame) and set(MATCH_COLUMNS).issubset(frame.columns)


def _one_run(matches: pd.DataFrame, run: str | None, func: str) -> pd.DataFrame:
    """The rows of one run; refuse a frame stacking several runs when ``run`` is None."""
    if "run" not in matches.columns:
        if run is not None:
            raise SchemaError(f"{func}: run={run!r} was given but the matches frame has no "
                              "'run' column. Drop run= or pass the frame of match_detections.")
        return matches
    runs = [str(r) for r in pd.unique(matches["run"].dropna())]
    if run is None:
        if len(runs) > 1:
            raise ValueError(
                f"{func}: the matches frame holds the runs {runs}; a table, a slice or a "
                f"confusion count is about one run. Pass run=..., or filter the frame first: "
                f"matches[matches['run'] == {runs[0]!r}] (or match_detections(project, "
                f"{runs[0]!r})).")
        return matches
    check_option(run, "run", func, runs)
    if len(runs) == 1:
        return matches
    keep = (matches["run"].astype(str) == run).to_numpy(dtype=bool)
    out = matches[keep]
    out.attrs = dict(matches.attrs, run=run)
    return out


def _matches_of(source: Any, run: str | None, iou: float | None, func: str) -> pd.DataFrame:
    """The matches of one run: from a matches frame (checked) or a detection project."""
    if isinstance(source, pd.DataFrame):
        check_columns(source, MATCH_COLUMNS, what="matches", func=func)
        have = source.attrs.get("iou")
        if iou is not None and have is not None and abs(float(have) - float(iou)) > 1e-12:
            raise ValueError(
                f"{func}: iou={iou!r} but the matches frame was matched at IoU {have!r}. "
                "Match again at that threshold (match_detections(project, run, iou=...)) or "
                "drop iou=.")
        return _one_run(source, run, func)
    if getattr(source, "task", None) != "detection":
        raise TypeError(
            f"The 'matches' parameter of {func} must be a matches frame (match_detections) or "
            f"a detection project. Got {type(source).__name__} instead.")
    if run is None:
        runs = list(getattr(source, "runs", []) or [])
        run = getattr(source, "default_run", None) or (runs[0] if runs else None)
    return mt.match_detections(source, run, iou=0.5 if iou is None else iou)


def _classes(matches: pd.DataFrame, func: str) -> list[str]:
    label, pred = matches["label"], matches["predicted"]
    classes = [str(c) for c in (matches.attrs.get("classes") or [])]
    if not classes and isinstance(label.dtype, pd.CategoricalDtype):
        classes = [str(c) for c in label.cat.categories]
    seen = set(label.dropna().astype(str)) | set(pred.dropna().astype(str))
    classes = classes + sorted(seen - set(classes))
    if BACKGROUND in classes:
        raise SchemaError(
            f"{func}: a class is named {BACKGROUND!r}, the name of the confusion table's row "
            "and column for false detections and missed boxes. Rename that class in the "
            "project (workbench.toml classes and the label columns).")
    return classes


def _codes(values: pd.Series, classes: list[str]) -> np.ndarray:
    obj = values.astype(object).where(values.notna(), None)
    return pd.Categorical(obj, categories=classes).codes.astype(np.intp)


def _cells(matches: pd.DataFrame, classes: list[str], func: str):
    """Every (row position, true cell, predicted cell) of the table; background = K."""
    k = len(classes)
    outcome = matches["outcome"].astype(str).to_numpy()
    t = _codes(matches["label"], classes)
    p = _codes(matches["predicted"], classes)
    unknown = ~np.isin(outcome, mt.OUTCOMES)
    if unknown.any():
        raise SchemaError(
            f"{func}: matches has unknown outcome(s) {sorted(set(outcome[unknown]))[:5]}; "
            f"expected {list(mt.OUTCOMES)} (the output of match_detections).")
    pair = np.isin(outcome, _PAIR)
    miss = np.isin(outcome, _MISS)
    false = np.isin(outcome, _FALSE)
    for mask, code, col in ((pair | miss, t, "label"), (pair | false, p, "predicted")):
        bad = np.flatnonzero(mask & (code < 0))
        if bad.size:
            raise SchemaError(
                f"{func}: {bad.size} row(s) of matches (positions {bad[:5].tolist()}) have the "
                f"outcome {outcome[bad[0]]!r} but no {col!r}. Pass the frame of "
                "match_detections unchanged.")
    rows = np.concatenate([np.flatnonzero(pair), np.flatnonzero(miss), np.flatnonzero(false)])
    true = np.concatenate([t[pair], t[miss], np.full(int(false.sum()), k)])
    pred = np.concatenate([p[pair], np.full(int(miss.sum()), k), p[false]])
    return rows, true.astype(np.intp), pred.astype(np.intp)


# ----------------------------------------------------------------------------- confusion


def detection_confusion_table(matches: Any, normalize: str | None = None, *,
                              run: str | None = None, iou: float | None = None) -> pd.DataFrame:
    """Confusion table of a detection run: classes plus a ``background`` row and column.

    Called by :func:`workbench.confusion_table` for a matches frame or a detection project.

    Parameters
    ----------
    matches : DataFrame or Project
        The frame of :func:`workbench.match_detections` (one run, or pass ``run``), or a
        detection project (matched here at ``iou``).
    normalize : {'true', 'pred', 'all'}, default=None
        As in ``sklearn.metrics.confusion_matrix``: ``'true'`` divides each row by its total
        (the diagonal is then the recall of each class at ``iou``), ``'pred'`` each column
        (the diagonal is the precision), ``'all'`` everything by the table's total.
    run : str, default=None
        The run: required when the frame stacks several; for a project, None means
        ``project.default_run``.
    iou : float, default=None
        IoU threshold of a match, for a project (None: 0.5). Given with a frame, it must be
        the frame's own (``matches.attrs["iou"]``).

    Returns
    -------
    DataFrame
        Square, index ``true`` and columns ``predicted``: the classes in project order, then
        ``background``. Cells: ``tp`` and ``wrong_class`` pairs at (reference class,
        predicted class); ``fn`` at (reference class, background); ``fp`` and ``duplicate``
        at (background, predicted class); ``mislocated`` at both (reference class,
        background) and (background, predicted class), since at this IoU it is both a miss
        and a false detection (COCO counts it so). (background, background) is 0. Row sums
        are the reference boxes per class and column sums the predictions per class.
        ``attrs``: ``normalize``, ``iou``, ``run``, ``task`` (``'detection'``).

    Raises
    ------
    SchemaError
        A column is missing, an outcome is unknown, or a class is named ``background``.
    ValueError
        The frame holds several runs and ``run`` is None, or a parameter is invalid.
    """
    func = "confusion_table"
    check_option(normalize, "normalize", func, ["true", "pred", "all"], allow_none=True)
    m = _matches_of(matches, run, iou, func)
    classes = _classes(m, func)
    k = len(classes) + 1
    _, t, p = _cells(m, classes, func)
    counts = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    values: np.ndarray = counts
    if normalize is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            if normalize == "true":
                values = counts / counts.sum(axis=1, keepdims=True)
            elif normalize == "pred":
                values = counts / counts.sum(axis=0, keepdims=True)
            else:
                values = counts / counts.sum()
        values = np.nan_to_num(values)
    names = [*classes, BACKGROUND]
    table = pd.DataFrame(values, index=pd.Index(names, name="true"),
                         columns=pd.Index(names, name="predicted"))
    table.attrs.update({"normalize": normalize, "iou": m.attrs.get("iou"),
                        "run": _run_name(m), "task": "detection"})
    return table


def _run_name(m: pd.DataFrame):
    if "run" in m.columns:
        runs = pd.unique(m["run"].dropna())
        if len(runs) == 1:
            return str(runs[0])
    return m.attrs.get("run")


def detection_cell_items(matches: Any, true: str | None, predicted: str | None, *,
                         run: str | None = None, iou: float | None = None) -> pd.DataFrame:
    """The boxes (and their images) behind one cell of the detection confusion table.

    Called by :func:`workbench.cell_items` for a matches frame or a detection project.

    Parameters
    ----------
    matches : DataFrame or Project
        As in :func:`detection_confusion_table`.
    true, predicted : str or None
        The row and the column: a class, ``'background'``, or None for a whole column or row.
    run, iou
        As in :func:`detection_confusion_table`.

    Returns
    -------
    DataFrame
        The rows of the matches frame counted in the cell (each once, in the frame's order,
        index reset), with every column of the frame: ``item_id``, ``box_id`` (the reference
        box; NA for a false detection), ``pred_id`` (NA for a miss), ``label``,
        ``predicted``, ``iou``, ``confidence``, ``outcome`` and the metadata. A cell's
        images are ``rows["item_id"].unique()``; its reference boxes
        ``rows["box_id"].dropna()`` and its predictions ``rows["pred_id"].dropna()``. A
        ``mislocated`` row is behind both of its cells (see
        :func:`detection_confusion_table`).

    Raises
    ------
    ValueError
        ``true`` or ``predicted`` is neither a class, ``'background'`` nor None.

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench import cell_items, match_detections
    >>> boxes = pd.DataFrame({"item_id": ["a", "a"], "label": ["cat", "dog"],
    ...                       "x": [0, 50], "y": 0, "w": 10, "h": 10})
    >>> preds = pd.DataFrame({"item_id": ["a"], "run": "r", "label": ["cat"], "x": [0],
    ...                       "y": 0, "w": 10, "h": 10, "confidence": [0.9]})
    >>> m = match_detections({"boxes": boxes, "predictions": preds})
    >>> cell_items(m, "dog", "background")[["item_id", "box_id", "outcome"]]
      item_id box_id outcome
    0       a   a/b1      fn
    """
    func = "cell_items"
    m = _matches_of(matches, run, iou, func)
    classes = _classes(m, func)
    names = [*classes, BACKGROUND]
    check_option(true, "true", func, names, allow_none=True)
    check_option(predicted, "predicted", func, names, allow_none=True)
    rows, t, p = _cells(m, classes, func)
    keep = np.ones(rows.size, dtype=bool)
    if true is not None:
        keep &= t == names.index(true)
    if predicted is not None:
        keep &= p == names.index(predicted)
    pos = np.unique(rows[keep])
    out = m.iloc[pos].reset_index(drop=True)
    out.attrs = dict(m.attrs, cell=(true, predicted))
    return out


# ----------------------------------------------------------------------------- slicing


def _features(m: pd.DataFrame, rows: pd.DataFrame, target: str) -> list[str]:
    """Image metadata, box metadata (``is_fn`` only) and ``size`` present in ``rows``."""
    item_meta = m.attrs.get("metadata_columns")
    box_meta = m.attrs.get("box_metadata_columns")
    if item_meta is None or box_meta is None:
        # attrs lost (a filtered or rebuilt frame): every non-standard column; box metadata
        # is the one missing on every prediction-only row
        extra = [c for c in m.columns if c not in mt._OUT_COLS]
        only = m["box_id"].isna().to_numpy()
        box_meta = [c for c in extra if only.any() and m.loc[only, c].isna().all()]
        item_meta = [c for c in extra if c not in box_meta]
    feats = list(item_meta) + (list(box_meta) if target == "is_fn" else [])
    if "size" in m.columns:
        feats.append("size")
    return [c for c in dict.fromkeys(feats) if c in rows.columns]


def object_frame(matches: pd.DataFrame, target: str = "is_fn", *,
                 run: str | None = None) -> pd.DataFrame:
    """The rows of a matches frame that a detection target is counted on.

    Parameters
    ----------
    matches : DataFrame
        The frame of :func:`workbench.match_detections`.
    target : {'is_fn', 'is_fp'}, default='is_fn'
        ``is_fn`` (a reference box missed: ``fn``, ``wrong_class`` or ``mislocated``) keeps
        the reference-box rows (``box_id`` present); ``is_fp`` (a false detection: ``fp``,
        ``duplicate``, ``wrong_class`` or ``mislocated``) keeps the prediction rows
        (``pred_id`` present). The other rows have the target False by construction and
        would dilute every rate.
    run : str, default=None
        The run, required when the frame stacks several.

    Returns
    -------
    DataFrame
        Those rows (index reset) with every column; box metadata columns get their dtype
        back on reference rows. ``attrs``: ``metadata_columns`` (the default slicing
        features: image metadata, box metadata for ``is_fn``, ``size``; for ``is_fp`` the
        ``size`` of a paired prediction is its reference box's), ``target``, ``rows``,
        ``id_column`` (``box_id`` or ``pred_id``), ``run``, and the frame's own attrs.

    Raises
    ------
    SchemaError
        ``matches`` lacks a column of a matches frame.
    ValueError
        ``target`` is not ``is_fn``/``is_fp``, or the frame holds several runs and ``run``
        is None.

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench import match_detections
    >>> from workbench.detection import object_frame
    >>> boxes = pd.DataFrame({"item_id": ["a", "a"], "label": ["cat", "dog"],
    ...                       "x": [0, 50], "y": 0, "w": 10, "h": 10})
    >>> preds = pd.DataFrame({"item_id": ["a", "a"], "run": "r", "label": ["cat", "cat"],
    ...                       "x": [0, 100], "y": 0, "w": 10, "h": 10, "confidence": [.9, .8]})
    >>> m = match_detections({"boxes": boxes, "predictions": preds})
    >>> object_frame(m, "is_fn")[["box_id", "outcome", "is_fn"]]
      box_id outcome  is_fn
    0   a/b0      tp  False
    1   a/b1      fn   True
    >>> object_frame(m, "is_fp")[["pred_id", "outcome", "is_fp"]]
      pred_id outcome  is_fp
    0  a/r/p0      tp  False
    1  a/r/p1      fp   True
    """
    func = "object_frame"
    check_columns(matches, MATCH_COLUMNS, what="matches", func=func)
    check_option(target, "target", func, list(TARGET_ROWS))
    m = _one_run(matches, run, func)
    key = TARGET_ROWS[target]
    keep = m[key].notna().to_numpy(dtype=bool)
    out = m[keep].reset_index(drop=True)
    feats = _features(m, out, target)
    box_meta = m.attrs.get("box_metadata_columns") or []
    if target == "is_fn":
        for col in box_meta:
            if col in out.columns and out[col].dtype == object:
                out[col] = out[col].infer_objects()
    out.attrs = {**m.attrs, "metadata_columns": feats, "target": target,
                 "rows": _ROW_NAMES[target], "id_column": key, "run": _run_name(m)}
    return out


def _check_target(target: Any, func: str) -> None:
    if target == "is_error":
        raise ValueError(
            f"{func}: this is a matches frame (match_detections), which has two bad outcomes "
            "and no 'is_error': pass target='is_fn' (reference boxes missed) or "
            "target='is_fp' (false detections).")


def object_slice_metrics(matches: pd.DataFrame, by: str | Sequence[str] | None = None, *,
                         bins: int | None = 4, per_class_recall: bool = False,
                         target: str = "is_fn", run: str | None = None) -> pd.DataFrame:
    """:func:`workbench.slice_metrics` on the object-level rows of a matches frame.

    Called by :func:`workbench.slice_metrics` for a matches frame with target ``is_fn`` or
    ``is_fp``: the rows are those of :func:`object_frame` (reference boxes for ``is_fn``,
    predictions for ``is_fp``), ``by=None`` slices on image metadata, box metadata
    (``is_fn`` only) and ``size``, and ``n`` counts boxes. ``per_class_recall`` (``is_fn``
    only) adds ``recall_<class>``: the share of the slice's reference boxes of that class
    that are ``tp``. Everything else is :func:`workbench.slice_metrics`.
    """
    func = "slice_metrics"
    _check_target(target, func)
    objects = object_frame(matches, target, run=run)
    cols = objects.attrs["metadata_columns"] if by is None else by
    if per_class_recall:
        if target != "is_fn":
            raise ValueError(
                f"{func}: per_class_recall is the share of reference boxes found, so it needs "
                "target='is_fn'. Got target='is_fp'.")
        objects = objects.assign(correct=~objects["is_fn"].to_numpy(dtype=bool))
    out = sl._slice_metrics(objects, cols, bins=bins, per_class_recall=per_class_recall,
                            target=target)
    out.attrs.update({"rows": objects.attrs["rows"], "run": objects.attrs["run"],
                      "iou": objects.attrs.get("iou")})
    return out


def discover_object_slices(matches: pd.DataFrame, features: Sequence[str] | None = None,
                           max_order: int = 2, min_support: int | float | None = None,
                           top: int | None = 20, target: str = "is_fn", *,
                           bins: int | None = 4, alpha: float = 0.05,
                           min_refinement: float = 0.1, prune_explained: bool = True,
                           run: str | None = None) -> pd.DataFrame:
    """:func:`workbench.discover_slices` on the object-level rows of a matches frame.

    Called by :func:`workbench.discover_slices` for a matches frame with target ``is_fn`` or
    ``is_fp``. The rows are those of :func:`object_frame`; ``features=None`` means image
    metadata, box metadata (``is_fn`` only) and ``size``, so a slice may combine both
    (``camera=cam-b & size=small``). ``n``, ``errors`` and ``min_support`` count boxes.

    Returns
    -------
    DataFrame
        The columns of :func:`workbench.discover_slices`, with ``item_ids`` the slice's
        images (each once, in frame order), plus ``box_ids`` (``is_fn``: the slice's
        reference boxes) or ``pred_ids`` (``is_fp``: its predictions), every row of the
        slice, in frame order. ``attrs["id_column"]`` names that column; ``attrs["rows"]``
        says what was counted.
    """
    func = "discover_slices"
    _check_target(target, func)
    objects = object_frame(matches, target, run=run)
    key = objects.attrs["id_column"]
    feats = objects.attrs["metadata_columns"] if features is None else features
    keyed = objects.assign(item_id=objects[key].astype(str).to_numpy())
    keyed.attrs = dict(objects.attrs)
    out = sl._discover_slices(keyed, feats, max_order, min_support, top, target, bins=bins,
                              alpha=alpha, min_refinement=min_refinement,
                              prune_explained=prune_explained)
    item_of = dict(zip(keyed["item_id"], objects["item_id"].astype(str), strict=True))
    ids_col = f"{key}s"
    out[ids_col] = out["item_ids"]
    out["item_ids"] = [list(dict.fromkeys(item_of[i] for i in ids)) for ids in out["item_ids"]]
    out.attrs.update({"rows": objects.attrs["rows"], "id_column": ids_col,
                      "run": objects.attrs["run"], "iou": objects.attrs.get("iou")})
    return out


# ----------------------------------------------------------------------------- run comparison


@dataclass(repr=False)
class DetectionRunDiff(sl.RunDiff):
    """Result of :func:`workbench.compare_runs` on a detection project.

    The fields of :class:`workbench.RunDiff`, counted on reference boxes: an *error* is a
    missed box (``is_fn``: ``fn``, ``wrong_class`` or ``mislocated``), so
    ``base_error_rate`` is ``1 - recall``. AP and precision come from
    :func:`workbench.detection_metrics`.

    Attributes
    ----------
    base, candidate : str
        The compared runs.
    iou : float
        IoU threshold of the matches (AP 50:95 always averages COCO's ten thresholds).
    overall : DataFrame
        One row: ``n`` (reference boxes), ``n_images``, ``base_ap50``, ``candidate_ap50``,
        ``ap50_delta``, ``base_ap``, ``candidate_ap``, ``ap_delta``, ``base_recall``,
        ``candidate_recall``, ``recall_delta``, ``base_precision``,
        ``candidate_precision``, ``precision_delta``, ``base_error_rate``,
        ``candidate_error_rate``, ``delta`` (candidate minus base; negative = fewer misses),
        ``n_fixed``, ``n_broken``, ``p_value`` (exact McNemar test on the box flips).
    by_slice : DataFrame
        The same per metadata ``column`` and ``value`` (numeric columns binned, ``bin``
        text), with ``n_images`` the images of the slice.
    fixed, broken : DataFrame
        Reference boxes missed by the base run and found (``tp``) by the candidate
        (fixed), or the reverse (broken): ``item_id``, ``box_id``, ``label``,
        ``base_outcome``, ``candidate_outcome``, ``base_pred_id``, ``candidate_pred_id``,
        ``base_predicted``, ``candidate_predicted``, ``base_iou``, ``candidate_iou``,
        ``base_confidence``, ``candidate_confidence``.
    errors : DataFrame
        One row per reference box: those columns, ``base_missed``, ``candidate_missed``,
        then the slicing columns (image metadata, box metadata, ``size``).
    """

    iou: float = 0.5

    @property
    def fixed_ids(self) -> list[str]:
        """Images holding a fixed box (each once)."""
        return list(dict.fromkeys(self.fixed["item_id"].astype(str)))

    @property
    def broken_ids(self) -> list[str]:
        """Images holding a broken box (each once)."""
        return list(dict.fromkeys(self.broken["item_id"].astype(str)))

    @property
    def fixed_box_ids(self) -> list[str]:
        """Ids of the fixed reference boxes."""
        return self.fixed["box_id"].astype(str).tolist()

    @property
    def broken_box_ids(self) -> list[str]:
        """Ids of the broken reference boxes."""
        return self.broken["box_id"].astype(str).tolist()

    def __repr__(self) -> str:
        o = self.overall.iloc[0]
        return (f"DetectionRunDiff({self.base!r} -> {self.candidate!r}: {int(o['n'])} boxes, "
                f"AP50 {o['base_ap50']:.3f} -> {o['candidate_ap50']:.3f}, recall "
                f"{o['base_recall']:.3f} -> {o['candidate_recall']:.3f} at IoU {self.iou:g}, "
                f"fixed={int(o['n_fixed'])}, broken={int(o['n_broken'])})")


_FLIP_COLS = ["item_id", "box_id", "label", "base_outcome", "candidate_outcome",
              "base_pred_id", "candidate_pred_id", "base_predicted", "candidate_predicted",
              "base_iou", "candidate_iou", "base_confidence", "candidate_confidence"]
_METRIC_NAMES = ("ap50", "ap", "recall", "precision")


def _box_frame(project: Any, base: str, candidate: str, iou: float) -> tuple[pd.DataFrame,
                                                                                list[str]]:
    """One row per reference box with both runs' outcomes, and the slicing columns."""
    func = "compare_runs"
    mb = mt.match_detections(project, base, iou=iou)
    mc = mt.match_detections(project, candidate, iou=iou)
    rb = object_frame(mb, "is_fn")
    rc = object_frame(mc, "is_fn")
    feats = list(rb.attrs["metadata_columns"])
    keep = ["box_id", "pred_id", "predicted", "iou", "confidence", "outcome", "is_fn"]
    left = rb[["item_id", "box_id", "label"] + keep[1:] + feats]
    merged = left.merge(rc[keep], on="box_id", how="inner", suffixes=("_base", "_cand"),
                        validate="one_to_one")
    if len(merged) != len(rb) or len(merged) != len(rc):
        raise SchemaError(f"{func}: the runs were matched against different reference boxes "
                          f"({len(rb)} and {len(rc)}); box ids must be unique.")
    ren = {f"{c}_base": f"base_{c}" for c in keep[1:]}
    ren.update({f"{c}_cand": f"candidate_{c}" for c in keep[1:]})
    merged = merged.rename(columns=ren).rename(columns={
        "base_is_fn": "base_missed", "candidate_is_fn": "candidate_missed"})
    order = _FLIP_COLS + ["base_missed", "candidate_missed"] + feats
    return merged[order], feats


def _slice_codes(values: pd.Series, enc) -> np.ndarray:
    """Codes of ``values`` in the encoding ``enc`` of another frame; -1 when unseen."""
    if enc.edges is not None:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        k = len(enc.edges) - 1
        codes = np.searchsorted(np.asarray(enc.edges[1:-1]), x, side="right").astype(np.intp)
        outside = (x < enc.edges[0]) | (x > enc.edges[-1])
        codes = np.where(outside, -1, codes)
        na = k if len(enc.values) > k else -1
        return np.where(np.isnan(x), na, codes)
    # the missing-value level, when there is one, is the last (see slicing._encode)
    known = [v for v in enc.values if v is not None]
    na = len(known) if len(known) < len(enc.values) else -1
    codes = pd.Index(known, dtype=object).get_indexer(values.astype(object).to_numpy())
    return np.where(values.isna().to_numpy(), na, codes).astype(np.intp)


def _metrics_all(frames: dict, col: str | None, runs: list[str], iou: float) -> dict:
    """``{(run, slice code): {metric: value}}`` from the ``all`` rows of detection_metrics."""
    from .metrics import detection_metrics

    d = detection_metrics(frames, None if col is None else col, iou=iou)
    d = d[d["class"] == RESERVED_CLASS]
    out = {}
    for _, r in d.iterrows():
        run = r["run"] if "run" in d.columns else runs[0]
        code = -1 if col is None else int(r[col])
        out[(str(run), code)] = {m: float(r[m]) for m in _METRIC_NAMES}
    return out


def compare_detection_runs(project: Any, base: str, candidate: str, *, bins: int | None = 4,
                           by: Sequence[str] | None = None,
                           iou: float = 0.5) -> DetectionRunDiff:
    """Compare two detection runs: AP, recall and misses, overall and per slice, and flips.

    Called by :func:`workbench.compare_runs` for a detection project.

    Parameters
    ----------
    project : Project
        A detection project holding both runs.
    base, candidate : str
        Run names (``project.runs``).
    bins : int, default=4
        Quantile bins for numeric slicing columns (cut on the reference boxes' values, as
        :func:`workbench.slice_metrics` does).
    by : list of str, default=None
        Slicing columns: image metadata, box metadata or ``size``; None means all of them.
    iou : float, default=0.5
        IoU threshold of a match (recall, precision, the misses and the flips).

    Returns
    -------
    DetectionRunDiff
        See :class:`DetectionRunDiff`. Per slice, AP is :func:`workbench.detection_metrics`
        with ``by=column`` (image metadata: AP on the images of the slice, as COCOeval with
        those image ids; box metadata and ``size``: reference boxes outside the slice
        ignored, as COCO ignores boxes outside an area range), and ``recall`` there equals
        ``1 - error_rate``. ``size`` is matched like box metadata (so its AP differs from
        COCO's APs/APm/APl at the area bounds' unmatched predictions; those are
        ``detection_metrics(project, area_ranges="coco")``).
    """
    from .matching import read_frames

    func = "compare_runs"
    runs = list(getattr(project, "runs", []) or [])
    check_option(base, "base", func, runs)
    check_option(candidate, "candidate", func, runs)
    errors, feats = _box_frame(project, base, candidate, iou)
    cols_by = list(feats) if by is None else ([by] if isinstance(by, str) else list(by))
    check_columns(errors, cols_by, what="errors", func=func)

    fr = read_frames(project, func)
    preds = fr.predictions
    preds = preds[preds["run"].astype(str).isin([base, candidate]).to_numpy()]
    boxes = fr.boxes
    items = fr.items if fr.items is not None else pd.DataFrame(
        {"item_id": pd.unique(pd.concat([boxes["item_id"], preds["item_id"]]))})
    if "size" in cols_by and "size" not in boxes.columns:
        area = (boxes["area"].to_numpy(dtype=float) if "area" in boxes.columns else
                boxes["w"].to_numpy(dtype=float) * boxes["h"].to_numpy(dtype=float))
        boxes = boxes.assign(size=mt.size_labels(area))
    classes = list(fr.classes)
    pair = [base, candidate]

    bm = errors["base_missed"].to_numpy(dtype=bool).astype(float)
    cm = errors["candidate_missed"].to_numpy(dtype=bool).astype(float)
    fixed_m = (bm == 1) & (cm == 0)
    broken_m = (bm == 0) & (cm == 1)
    fx, br = fixed_m.astype(float), broken_m.astype(float)

    def block(stats_b: dict, stats_c: dict, n, n_img, b_rate, c_rate, nf, nb) -> dict:
        out = {"n": n, "n_images": n_img}
        for m in _METRIC_NAMES:
            out[f"base_{m}"] = stats_b[m]
            out[f"candidate_{m}"] = stats_c[m]
            out[f"{m}_delta"] = stats_c[m] - stats_b[m]
        out.update({"base_error_rate": b_rate, "candidate_error_rate": c_rate,
                    "delta": c_rate - b_rate, "n_fixed": nf, "n_broken": nb})
        return out

    nan = dict.fromkeys(_METRIC_NAMES, np.nan)
    whole = _metrics_all({"boxes": boxes, "predictions": preds, "items": items,
                          "classes": classes}, None, pair, iou)
    n = len(errors)
    with np.errstate(divide="ignore", invalid="ignore"):
        overall = pd.DataFrame([block(whole.get((base, -1), nan), whole.get((candidate, -1), nan),
                                      n, len(items), bm.sum() / n, cm.sum() / n,
                                      int(fx.sum()), int(br.sum()))])
    overall["p_value"] = sl._mcnemar(overall["n_fixed"], overall["n_broken"])

    item_cols = set(items.columns)
    parts = []
    for col in cols_by:
        enc = sl._encode(errors[col], bins)
        k = len(enc.values)
        codes = enc.codes
        cnt = np.bincount(codes, minlength=k).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            b_rate = np.bincount(codes, weights=bm, minlength=k) / cnt
            c_rate = np.bincount(codes, weights=cm, minlength=k) / cnt
        nf = np.bincount(codes, weights=fx, minlength=k).astype(np.int64)
        nb = np.bincount(codes, weights=br, minlength=k).astype(np.int64)
        img = errors["item_id"].astype(str).to_numpy()
        if col in item_cols:
            icodes = _slice_codes(items[col], enc)
            n_img = np.bincount(icodes[icodes >= 0], minlength=k)
            frames = {"boxes": boxes, "predictions": preds, "classes": classes,
                      "items": items.assign(**{col: icodes})}
        else:
            n_img = np.array([len(set(img[codes == c])) for c in range(k)])
            frames = {"boxes": boxes.assign(**{col: _slice_codes(boxes[col], enc)}),
                      "predictions": preds, "items": items.drop(
                          columns=[c for c in items.columns if c == col]), "classes": classes}
        stats = _metrics_all(frames, col, pair, iou)
        rows = [block(stats.get((base, c), nan), stats.get((candidate, c), nan), int(cnt[c]),
                      int(n_img[c]), b_rate[c], c_rate[c], int(nf[c]), int(nb[c]))
                for c in range(k)]
        part = pd.DataFrame(rows)
        part.insert(0, "bin", enc.labels)
        part.insert(0, "value", list(enc.values))
        part.insert(0, "column", col)
        part["p_value"] = sl._mcnemar(nf, nb)
        parts.append(part)
    by_cols = ["column", "value", "bin", *overall.columns]
    by_slice = (pd.concat(parts, ignore_index=True) if parts
                else pd.DataFrame({c: [] for c in by_cols}))

    fixed = errors.loc[fixed_m, _FLIP_COLS].reset_index(drop=True)
    broken = errors.loc[broken_m, _FLIP_COLS].reset_index(drop=True)
    errors.attrs = {"base": base, "candidate": candidate, "metadata_columns": cols_by,
                    "iou": iou, "task": "detection"}
    return DetectionRunDiff(base=base, candidate=candidate, overall=overall,
                            by_slice=by_slice, fixed=fixed, broken=broken, errors=errors,
                            iou=iou)
