"""Precision-recall curves of a detection run, and the boxes above or below a threshold.

:func:`precision_recall_curve` reads the frame of :func:`match_detections` (one IoU): each
distinct confidence is a threshold ``t``; keeping the predictions with ``confidence >= t``
gives the precision and recall of that point. :func:`boxes_at_threshold` returns the
predicted boxes on either side of a threshold, for a click on the curve to select.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import check_columns, check_option

__all__ = ["precision_recall_curve", "boxes_at_threshold"]

_NEEDED = ("item_id", "box_id", "pred_id", "label", "predicted", "confidence", "outcome")


def _predictions(matches: pd.DataFrame, label, func: str) -> pd.DataFrame:
    """The prediction rows of ``matches`` (of class ``label``; every class when None)."""
    check_columns(matches, list(_NEEDED), what="matches", func=func)
    mask = np.array(matches["pred_id"].notna(), dtype=bool)
    if label is not None:
        mask &= (matches["predicted"].astype(object) == str(label)).to_numpy(dtype=bool)
    return matches.loc[mask, ["item_id", "pred_id", "confidence", "outcome"]]


def precision_recall_curve(matches: pd.DataFrame, label: str | None = None) -> pd.DataFrame:
    """Precision and recall at every confidence threshold of one class (or of all classes).

    Parameters
    ----------
    matches : DataFrame
        The frame of :func:`workbench.match_detections` for one run (its IoU threshold is
        the one of the curve).
    label : str, default=None
        The class; None pools every class (micro average: every prediction against every
        reference box).

    Returns
    -------
    DataFrame
        One row per distinct confidence, highest first: ``threshold`` (keep predictions with
        ``confidence >= threshold``), ``n_predictions``, ``n_tp``, ``n_fp`` (kept
        predictions that are not ``tp``), ``precision`` = ``n_tp / n_predictions`` and
        ``recall`` = ``n_tp / n_boxes`` (NaN without reference boxes). ``attrs["n_boxes"]``
        holds the number of reference boxes of the class.

    Notes
    -----
    A prediction is a true positive when its outcome is ``tp`` (COCO's greedy match at the
    frame's IoU); the last row's precision and recall are those of
    :func:`workbench.detection_metrics` at the same IoU. This is the raw curve, not COCO's
    interpolated precision envelope that AP averages.

    Examples
    --------
    >>> m = pd.DataFrame({"item_id": ["a", "a", "b"], "box_id": ["a/b0", None, "b/b0"],
    ...                   "pred_id": ["a/p0", "a/p1", None], "label": ["cat", None, "cat"],
    ...                   "predicted": ["cat", "cat", None], "confidence": [0.9, 0.4, None],
    ...                   "outcome": ["tp", "fp", "fn"]})
    >>> precision_recall_curve(m, "cat")[["threshold", "precision", "recall"]]
       threshold  precision  recall
    0        0.9        1.0     0.5
    1        0.4        0.5     0.5
    """
    func = "precision_recall_curve"
    preds = _predictions(matches, label, func)
    refs = np.array(matches["box_id"].notna(), dtype=bool)
    if label is not None:
        refs &= (matches["label"].astype(object) == str(label)).to_numpy(dtype=bool)
    n_boxes = int(refs.sum())
    conf = preds["confidence"].to_numpy(dtype=float)
    tp = (preds["outcome"].astype(object) == "tp").to_numpy(dtype=bool)
    order = np.argsort(-conf, kind="stable")
    conf, tp = conf[order], tp[order]
    n_tp = np.cumsum(tp)
    n = np.arange(1, len(conf) + 1)
    # one point per distinct confidence: the last prediction of each run of ties
    last = np.r_[conf[1:] != conf[:-1], True] if len(conf) else np.zeros(0, dtype=bool)
    n_tp, n, thr = n_tp[last], n[last], conf[last]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = n_tp / n
        recall = n_tp / n_boxes if n_boxes else np.full(len(n), np.nan)
    out = pd.DataFrame({"threshold": thr, "n_predictions": n.astype(np.int64),
                        "n_tp": n_tp.astype(np.int64), "n_fp": (n - n_tp).astype(np.int64),
                        "precision": precision.astype(float),
                        "recall": np.asarray(recall, dtype=float)})
    out.attrs["n_boxes"] = n_boxes
    out.attrs["label"] = label
    return out


def boxes_at_threshold(matches: pd.DataFrame, threshold: float, *, label: str | None = None,
                       side: str = "above") -> pd.DataFrame:
    """The predicted boxes on one side of a confidence threshold.

    Parameters
    ----------
    matches : DataFrame
        The frame of :func:`workbench.match_detections` for one run.
    threshold : float
        The confidence threshold (a point of :func:`precision_recall_curve`).
    label : str, default=None
        The predicted class (None: every class).
    side : {'above', 'below'}, default='above'
        ``'above'``: the predictions kept at this threshold (``confidence >= threshold``);
        ``'below'``: the ones it drops (``confidence < threshold``).

    Returns
    -------
    DataFrame
        ``item_id``, ``pred_id``, ``confidence``, ``outcome`` of those predictions, in the
        order of ``matches``.

    Examples
    --------
    >>> m = pd.DataFrame({"item_id": ["a", "a", "b"], "box_id": ["a/b0", None, "b/b0"],
    ...                   "pred_id": ["a/p0", "a/p1", None], "label": ["cat", None, "cat"],
    ...                   "predicted": ["cat", "cat", None], "confidence": [0.9, 0.4, None],
    ...                   "outcome": ["tp", "fp", "fn"]})
    >>> boxes_at_threshold(m, 0.5, side="below")["pred_id"].tolist()
    ['a/p1']
    """
    func = "boxes_at_threshold"
    check_option(side, "side", func, ["above", "below"])
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"The 'threshold' parameter of {func} must be a float. Got "
                        f"{threshold!r} instead.") from None
    preds = _predictions(matches, label, func)
    conf = preds["confidence"].to_numpy(dtype=float)
    keep = conf >= threshold if side == "above" else conf < threshold
    return preds.loc[keep].reset_index(drop=True)
