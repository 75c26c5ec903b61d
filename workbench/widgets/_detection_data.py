"""What the detection widgets share about one project: matches per (run, IoU), boxes per image.

One :class:`DetectionData` per dashboard: the explorer, the gallery, the confusion matrix and
the curves read the same cached frames, so moving the IoU control matches once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_fraction

__all__ = ["DetectionData", "BoxRows", "detection_data", "ANNOTATOR_PALETTE"]

#: The columns of a reference box record, an annotator's box record and a prediction record.
BOX_COLUMNS = ("box_id", "label", "x", "y", "w", "h")
ANN_COLUMNS = ("box_id", "annotator", "label", "x", "y", "w", "h")
PRED_COLUMNS = ("pred_id", "label", "x", "y", "w", "h", "confidence")
#: Colours of the annotators' boxes, given in order of the sorted annotator names: a
#: colourblind-safe set (Okabe & Ito's blue, reddish purple and sky blue; Paul Tol's wine,
#: indigo and teal; black) that keeps clear of the reference green (``#2e7d32``), the
#: prediction orange (``#ef6c00``) and the selection yellow (``#ffd600``). With more
#: annotators than colours the colours repeat, each round with another dash pattern
#: (:data:`ANNOTATOR_DASHES`), so no two annotators look the same.
ANNOTATOR_PALETTE = ("#0072b2", "#cc79a7", "#56b4e9", "#882255", "#332288", "#44aa99",
                     "#000000")
#: SVG ``stroke-dasharray`` of the annotators' boxes, one per round of the palette.
ANNOTATOR_DASHES = ("2 2", "7 3", "7 2 2 2", "1 3")
#: (run, iou) pairs whose matches stay cached.
_CACHE_SIZE = 4


class BoxRows:
    """Rows of a box frame grouped by image: ``records(item_id)`` are its rows as tuples.

    Built once: the chosen columns as numpy arrays and a dict of row positions per image,
    so a page of 24 images costs 24 dict lookups and array slices (no pandas indexing),
    whatever the project's size.

    Parameters
    ----------
    frame : DataFrame
        Boxes or predictions (``item_id`` and ``columns``).
    columns : sequence of str
        The columns of each record, in order.
    """

    def __init__(self, frame: pd.DataFrame, columns):
        self.columns = list(columns)
        self._arrays = [frame[c].to_numpy() for c in self.columns]
        ids = frame["item_id"].astype(str).to_numpy()
        if not len(ids):
            self._positions: dict = {}
            return
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.r_[0, np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1]
        ends = np.r_[starts[1:], len(ids)]
        self._positions = {sorted_ids[s]: order[s:e] for s, e in zip(starts, ends,
                                                                      strict=True)}

    def records(self, item_id: str) -> list[tuple]:
        """The rows of ``item_id`` as tuples of :attr:`columns`, in frame order."""
        pos = self._positions.get(str(item_id))
        if pos is None:
            return []
        pos = np.sort(pos)
        return list(zip(*(a[pos].tolist() for a in self._arrays), strict=True))

    def __contains__(self, item_id: str) -> bool:
        return str(item_id) in self._positions


class DetectionData:
    """Cached frames of a detection project for its widgets.

    Parameters
    ----------
    project : DetectionProject
        A project with ``task == "detection"`` (``boxes``, ``predictions``).

    Attributes
    ----------
    project : DetectionProject
    iou : float
        The IoU threshold the widgets show (the explorer's control), default 0.5.
    """

    def __init__(self, project: Any, *, iou: float = 0.5):
        if getattr(project, "task", None) != "detection":
            raise TypeError(
                "DetectionData needs a detection project (task = \"detection\" in "
                f"workbench.toml). Got {type(project).__name__} with task "
                f"{getattr(project, 'task', None)!r}.")
        self.project = project
        self.iou = check_fraction(iou, "iou", "DetectionData")
        self._matches: OrderedDict = OrderedDict()
        self._boxes: BoxRows | None = None
        self._preds: dict = {}
        self._outcomes: dict = {}
        self._items: BoxRows | None = None
        self._annotations: BoxRows | None = None
        self._annotator_styles: dict | None = None
        self._label_issues: dict = {}

    def item_values(self, item_id: str) -> dict | None:
        """``{column: value}`` of ``item_id`` in ``project.items`` (None when unknown)."""
        if self._items is None:
            items = self.project.items
            self._items = BoxRows(items, [c for c in items.columns if c != "item_id"])
        rows = self._items.records(item_id)
        return dict(zip(self._items.columns, rows[0], strict=True)) if rows else None

    def default_run(self) -> str | None:
        """The project's default run, else its first run, else None."""
        runs = list(self.project.runs or [])
        return self.project.default_run or (runs[0] if runs else None)

    def matches(self, run: str | None, iou: float | None = None) -> pd.DataFrame:
        """:func:`workbench.match_detections` of ``run`` at ``iou`` (cached)."""
        from ..detection import match_detections

        iou = self.iou if iou is None else float(iou)
        key = (run, round(iou, 6))
        if key in self._matches:
            self._matches.move_to_end(key)
            return self._matches[key]
        frame = match_detections(self.project, run, iou=iou)
        self._matches[key] = frame
        while len(self._matches) > _CACHE_SIZE:
            old = self._matches.popitem(last=False)[0]
            self._outcomes.pop(old, None)
        return frame

    def boxes(self) -> BoxRows:
        """The reference boxes grouped by image."""
        if self._boxes is None:
            self._boxes = BoxRows(self.project.boxes, BOX_COLUMNS)
        return self._boxes

    def annotations(self) -> BoxRows:
        """Every annotator's boxes grouped by image (:data:`ANN_COLUMNS`; empty without any)."""
        if self._annotations is None:
            a = self.project.annotations
            if not len(a) or any(c not in a.columns for c in ANN_COLUMNS):
                a = pd.DataFrame({c: pd.Series(dtype=object) for c in ("item_id",
                                                                       *ANN_COLUMNS)})
            self._annotations = BoxRows(a, ANN_COLUMNS)
        return self._annotations

    def annotator_styles(self) -> dict[str, tuple[str, str]]:
        """``{annotator: (colour, dash)}``, fixed by the sorted annotator names.

        The k-th annotator in sorted order gets ``ANNOTATOR_PALETTE[k % n]`` and
        ``ANNOTATOR_DASHES[k // n]`` (``n`` colours): the same annotator keeps its colour on
        every card, page and dashboard of the project.
        """
        if self._annotator_styles is None:
            a = self.project.annotations
            names = sorted(set(a["annotator"].astype(str))) if len(a) else []
            n = len(ANNOTATOR_PALETTE)
            self._annotator_styles = {
                name: (ANNOTATOR_PALETTE[k % n],
                       ANNOTATOR_DASHES[(k // n) % len(ANNOTATOR_DASHES)])
                for k, name in enumerate(names)}
        return self._annotator_styles

    def label_issues(self, run: str | None = None) -> pd.DataFrame:
        """:func:`workbench.label_issues` of ``run`` (None: the default run), computed once.

        Shared by the widgets of a dashboard (the suspected box errors list, the KPIs), so
        cleanlab and the consensus boxes run once per run; the warnings raised while
        computing are kept (:meth:`label_issue_notes`). Errors are raised, not cached.
        """
        key = run if run is not None else self.default_run()
        if key not in self._label_issues:
            import warnings

            from ..label_quality import label_issues

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                frame = label_issues(self.project, key)
            notes = [str(c.message) for c in caught if issubclass(c.category, UserWarning)]
            self._label_issues[key] = (frame, notes)
        return self._label_issues[key][0]

    def label_issue_notes(self, run: str | None = None) -> list[str]:
        """The warnings of :meth:`label_issues` for ``run`` (computing it if needed)."""
        self.label_issues(run)
        return list(self._label_issues[run if run is not None else self.default_run()][1])

    def predictions(self, run: str | None) -> BoxRows | None:
        """The predicted boxes of ``run`` grouped by image (None without a run)."""
        if run is None:
            return None
        if run not in self._preds:
            p = self.project.predictions
            self._preds[run] = BoxRows(p[(p["run"].astype(str) == str(run)).to_numpy()],
                                       PRED_COLUMNS)
        return self._preds[run]

    def outcomes(self, run: str | None, iou: float | None = None) -> dict[str, dict]:
        """``{"box": {box_id: info}, "pred": {pred_id: info}}`` at ``(run, iou)``.

        ``info`` is ``{"outcome", "iou", "confidence", "partner"}`` (the other box of the
        pair, or None). Boxes left out of the matching (crowd boxes, predictions beyond
        ``max_dets`` or absorbed by a crowd box) are absent.
        """
        iou = self.iou if iou is None else float(iou)
        key = (run, round(iou, 6))
        if key not in self._outcomes:
            m = self.matches(run, iou) if run is not None else None
            self._outcomes[key] = _outcome_maps(m)
        return self._outcomes[key]


def _outcome_maps(m: pd.DataFrame | None) -> dict[str, dict]:
    out: dict[str, dict] = {"box": {}, "pred": {}}
    if m is None or not len(m):
        return out
    box = m["box_id"].astype(object).to_numpy()
    pred = m["pred_id"].astype(object).to_numpy()
    outcome = m["outcome"].astype(str).to_numpy()
    iou = m["iou"].to_numpy(dtype=float)
    conf = m["confidence"].to_numpy(dtype=float)
    has_box, has_pred = ~pd.isna(box), ~pd.isna(pred)
    for i in np.flatnonzero(has_box):
        out["box"][str(box[i])] = {"outcome": outcome[i], "iou": iou[i],
                                   "confidence": conf[i],
                                   "partner": str(pred[i]) if has_pred[i] else None}
    for i in np.flatnonzero(has_pred):
        out["pred"][str(pred[i])] = {"outcome": outcome[i], "iou": iou[i],
                                     "confidence": conf[i],
                                     "partner": str(box[i]) if has_box[i] else None}
    return out


def detection_data(project: Any, data: DetectionData | None = None) -> DetectionData | None:
    """``data``, or a new :class:`DetectionData` for a detection project, else None."""
    if data is not None:
        return data
    if getattr(project, "task", None) == "detection":
        return DetectionData(project)
    return None
