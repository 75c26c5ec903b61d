"""The cells of a detection confusion matrix, for :class:`ConfusionMatrix` (kernel side).

Rows are the reference classes plus ``background``, columns the predicted classes plus
``background``. Each outcome of :func:`workbench.match_detections` lands in:

==============  ======================================  =====================
outcome         cell                                    boxes it selects
==============  ======================================  =====================
tp              (label, predicted)                      the box and the prediction
wrong_class     (label, predicted)                      the box and the prediction
fn              (label, background)                     the box (a miss)
mislocated      (label, background) and                 the box, then the prediction
                (background, predicted)
fp, duplicate   (background, predicted)                 the prediction (a false detection)
==============  ======================================  =====================

A mislocated pair is a miss *and* a false detection (IoU below the threshold), so it is
counted in both cells, as detection confusion matrices do with unmatched pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["BACKGROUND", "DetectionCells", "detection_cells", "is_matches_frame"]

BACKGROUND = "background"


def is_matches_frame(frame) -> bool:
    """Whether ``frame`` is a :func:`workbench.match_detections` frame (not an errors frame)."""
    return isinstance(frame, pd.DataFrame) and {"box_id", "pred_id", "outcome"} <= set(
        frame.columns)


@dataclass
class DetectionCells:
    """One entry per (row of the matches frame, cell it counts in)."""

    classes: list[str]  # the classes, then BACKGROUND
    code: np.ndarray  # cell code: true * k + predicted
    item_id: np.ndarray
    box_id: np.ndarray  # object: the selected box id of the entry, or None
    pred_id: np.ndarray

    def table(self, normalize: str | None = None) -> pd.DataFrame:
        """Counts (or rates) per cell, rows = true, columns = predicted."""
        k = len(self.classes)
        counts = np.bincount(self.code, minlength=k * k).reshape(k, k)
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
        return pd.DataFrame(values, index=pd.Index(self.classes, name="true"),
                            columns=pd.Index(self.classes, name="predicted"))

    def cell(self, true: str, predicted: str) -> tuple[list[str], list[str]]:
        """``(item ids, box ids)`` of a cell; box ids hold ``box_id`` and ``pred_id`` values."""
        k = len(self.classes)
        code = self.classes.index(str(true)) * k + self.classes.index(str(predicted))
        mask = self.code == code
        items = list(dict.fromkeys(self.item_id[mask].tolist()))
        boxes = [b for b in self.box_id[mask].tolist() if b is not None]
        boxes += [p for p in self.pred_id[mask].tolist() if p is not None]
        return items, boxes


def detection_cells(matches: pd.DataFrame, classes: list[str] | None = None) -> DetectionCells:
    """The cell entries of a matches frame (see the module docstring)."""
    if classes is None:
        label = matches["label"]
        if isinstance(label.dtype, pd.CategoricalDtype):
            classes = [str(c) for c in label.cat.categories]
        else:
            seen = set(label.dropna().astype(str)) | set(matches["predicted"].dropna().astype(str))
            classes = sorted(seen)
    classes = [str(c) for c in classes]
    bg_name = BACKGROUND if BACKGROUND not in classes else f"({BACKGROUND})"
    names = classes + [bg_name]
    k, bg = len(names), len(names) - 1
    t = pd.Categorical(matches["label"].astype(object), categories=classes).codes.astype(np.intp)
    p = pd.Categorical(matches["predicted"].astype(object),
                       categories=classes).codes.astype(np.intp)
    outcome = matches["outcome"].astype(str).to_numpy()
    box = matches["box_id"].astype(object).to_numpy()
    pred = matches["pred_id"].astype(object).to_numpy()
    box = np.where(pd.isna(box), None, box)
    pred = np.where(pd.isna(pred), None, pred)
    items = matches["item_id"].astype(str).to_numpy()
    none = np.full(len(matches), None, dtype=object)
    pair = np.isin(outcome, ["tp", "wrong_class"])
    miss = np.isin(outcome, ["fn", "mislocated"])
    false = np.isin(outcome, ["fp", "duplicate", "mislocated"])
    parts = [  # (rows, true code, predicted code, box ids, pred ids)
        (pair, t, p, box, pred),
        (miss, t, np.full(len(t), bg), box, none),
        (false, np.full(len(t), bg), p, none, pred),
    ]
    code, item, bids, pids = [], [], [], []
    for rows, tc, pc, b, pr in parts:
        ok = rows & (tc >= 0) & (pc >= 0)
        code.append(tc[ok] * k + pc[ok])
        item.append(items[ok])
        bids.append(b[ok])
        pids.append(pr[ok])
    return DetectionCells(names, np.concatenate(code).astype(np.intp), np.concatenate(item),
                          np.concatenate(bids), np.concatenate(pids))
