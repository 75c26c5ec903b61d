"""The per-image diff of old and new reference boxes: unchanged, moved, reclassed, added, deleted.

See :mod:`workbench.detection.vendor` for the matching rules.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

__all__ = ["diff_boxes", "DIFF_OUTCOMES"]


DIFF_OUTCOMES = ("unchanged", "moved", "reclassed", "added", "deleted")
_SAME = 1.0 - 1e-9


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
