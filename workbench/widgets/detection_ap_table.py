"""APTable: AP, precision and recall per class of a detection run; a row picks the class.

The numbers are :func:`workbench.detection_metrics` (equal to pycocotools' COCOeval): AP
averaged over IoU 0.50:0.95, AP at 0.50 and AP at the explorer's IoU threshold, with the
precision, recall and the counts of missed boxes and false detections at that threshold.
Clicking a row sets :attr:`APTable.label` (the explorer shows that class's
precision-recall curve).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .._format import MISSING, percent
from .._validation import check_fraction
from ..detection.io import RESERVED_CLASS
from ._adapters import RowGrid, StatusMixin, esc, guarded

__all__ = ["APTable", "class_table"]

_HEADERS = ["class", "AP .50:.95", "AP .50", "AP @IoU", "precision", "recall", "boxes",
            "missed", "false det."]


def class_table(project: Any, run: str | None = None, *, iou: float = 0.5) -> pd.DataFrame:
    """AP, precision, recall and error counts per class of one run, and an ``all`` row.

    Parameters
    ----------
    project : DetectionProject or dict
        What :func:`workbench.detection_metrics` takes.
    run : str, default=None
        The run (None: the only run).
    iou : float, default=0.5
        The IoU threshold of ``ap_iou``, ``precision``, ``recall`` and the counts.

    Returns
    -------
    DataFrame
        ``class``, ``ap`` (COCO's AP over IoU 0.50:0.95), ``ap50``, ``ap_iou`` (AP at
        ``iou``), ``precision``, ``recall``, ``n_boxes``, ``n_predictions``, ``n_missed``
        (reference boxes not found as a ``tp``: ``n_boxes - n_tp``) and ``n_false``
        (predictions that are not a ``tp``: ``n_predictions - n_tp``).
    """
    from ..detection import detection_metrics

    iou = check_fraction(iou, "iou", "class_table", low=0.05)
    base = detection_metrics(project, run=run, iou=iou)
    at = detection_metrics(project, run=run, iou=iou, iou_thresholds=[iou])
    out = base[["class", "ap", "ap50", "precision", "recall", "n_boxes",
                "n_predictions", "n_tp"]].copy()
    out.insert(3, "ap_iou", at["ap"].to_numpy(dtype=float))
    out["n_missed"] = out["n_boxes"] - out["n_tp"]
    out["n_false"] = out["n_predictions"] - out["n_tp"]
    out.attrs = {"iou": iou, "run": run}
    return out.drop(columns="n_tp").reset_index(drop=True)


class APTable(StatusMixin, w.VBox):
    """AP and recall per class of a detection run; clicking a row picks that class.

    Parameters
    ----------
    project : DetectionProject
    run : str, default=None
        The run (None: the project's default run).
    iou : float, default=0.5
        The IoU threshold (the explorer's control).

    Attributes
    ----------
    frame : DataFrame
        The rows shown (:func:`class_table`).
    label : str or None
        The class of the row clicked last (None: the ``all`` row or none).
    """

    label = traitlets.Unicode(None, allow_none=True)

    def __init__(self, project: Any, *, run: str | None = None, iou: float = 0.5):
        self.project = project
        self.run = run
        self.iou = iou
        self.summary = w.HTML("")
        self.summary.add_class("wb-ap-summary")
        self.frame = class_table(project, run, iou=iou)
        self.table = RowGrid(_HEADERS, len(self.frame), self._on_row, lambda _p: None,
                             prefix="ap", columns="70px repeat(8, minmax(52px, auto))")
        super().__init__([self.summary, self._make_error_box(), self.table.grid])
        self.add_class("wb-ap-table")
        self._render()

    def set_run(self, run: str | None, iou: float | None = None) -> None:
        """Recompute for another run and/or IoU threshold."""
        self.run = run
        if iou is not None:
            self.iou = iou
        self.frame = class_table(self.project, run, iou=self.iou)
        if len(self.frame) > len(self.table.rows):  # classes never change in a project
            raise ValueError("APTable: the project's classes changed; build a new table.")
        self._render()

    @guarded
    def _on_row(self, slot: int) -> None:
        if slot < len(self.frame):
            value = str(self.frame["class"].iloc[slot])
            self.label = None if slot == len(self.frame) - 1 and value == RESERVED_CLASS else value

    @traitlets.observe("label")
    def _on_label(self, change) -> None:
        if getattr(self, "table", None) is not None:
            self.table.highlight(self._is_selected)

    def _is_selected(self, i: int) -> bool:
        value = str(self.frame["class"].iloc[i])
        return value == self.label or (self.label is None and value == RESERVED_CLASS)

    def _row(self, i: int) -> tuple[str, str, list[str]]:
        r = self.frame.iloc[i]

        def ap(v):
            return MISSING if pd.isna(v) else f"{float(v):.3f}"

        name = str(r["class"])
        cells = [ap(r["ap"]), ap(r["ap50"]), ap(r["ap_iou"]), percent(r["precision"]),
                 percent(r["recall"]), f"{int(r['n_boxes']):,}", f"{int(r['n_missed']):,}",
                 f"{int(r['n_false']):,}"]
        if name == RESERVED_CLASS:
            cells = [f"<b>{c}</b>" for c in cells]
        return name, f"precision-recall curve of {name}", cells

    def _render(self) -> None:
        self.table.render(0, len(self.frame), self._row, selected=self._is_selected)
        overall = self.frame[self.frame["class"].astype(str) == RESERVED_CLASS]
        ap = float(overall["ap"].iloc[0]) if len(overall) else np.nan
        self.summary.value = (
            f"<b>AP {MISSING if np.isnan(ap) else f'{ap:.3f}'}</b> (COCO, IoU .50:.95) on run "
            f"<b>{esc(self.run)}</b>; precision, recall and counts at IoU "
            f"<b>{self.iou:.2f}</b>. <span style='color:#555'><i>missed</i>: boxes without a "
            "correct detection; <i>false det.</i>: detections that are not correct. Click a "
            "class for its precision-recall curve.</span>")

    def __repr__(self) -> str:
        return f"APTable(run={self.run!r}, iou={self.iou}, {len(self.frame)} rows)"
