"""Detection metrics per class and per slice, equal to pycocotools' ``COCOeval``.

:func:`detection_metrics` computes, per class, COCO's AP at IoU 0.50 and averaged over
0.50:0.95 (101-point interpolated precision), with a vectorised numpy engine that replays
``COCOeval.evaluate`` + ``accumulate`` (``iouType='bbox'``, ``maxDets=100``) exactly:
the matching of :mod:`workbench.detection.matching` for every threshold at once, then per
class the predictions sorted by confidence (ties: image order, then row order, as COCO's
two merge sorts), cumulative true/false positives, the precision envelope and its value at
the recall thresholds ``0, 0.01, ..., 1``. Predictions matched to crowd (or, with area
ranges and box-metadata slices, to ignored) boxes count neither way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SchemaError
from . import matching as mt
from .io import RESERVED_CLASS
from .matching import at as at_

__all__ = ["detection_metrics", "RECALL_THRESHOLDS", "IOU_THRESHOLDS"]

#: COCO's recall thresholds (``Params.recThrs``), bit for bit.
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
#: COCO's IoU thresholds (``Params.iouThrs``), bit for bit.
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
_COUNTS = ("n_tp", "n_fp", "n_fn", "n_wrong_class", "n_mislocated", "n_duplicate")
_COLUMNS = ("class", "ap50", "ap", "precision", "recall") + _COUNTS + ("n_boxes",
                                                                      "n_predictions")
_EPS = np.spacing(1)


# ----------------------------------------------------------------------------- AP core


def precision_table(cls: np.ndarray, tp: np.ndarray, keep: np.ndarray, npig: np.ndarray,
                    n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """COCO's ``accumulate`` for sorted predictions.

    Parameters
    ----------
    cls : ndarray of int, shape (n,)
        Class code of each prediction; predictions are sorted by class, then in COCO's
        order (confidence descending, image order, row order).
    tp, keep : ndarray of bool, shape (n, T)
        Matched (true positive) and not ignored, per IoU threshold.
    npig : ndarray of int, shape (K,)
        Reference boxes that are not ignored, per class.

    Returns
    -------
    precision : ndarray of shape (T, R, K)
        Interpolated precision, NaN for a class without reference boxes (COCO's -1).
    recall : ndarray of shape (T, K)
        Recall with every prediction, NaN without reference boxes.
    """
    T = tp.shape[1]
    R = len(RECALL_THRESHOLDS)
    precision = np.full((T, R, n_classes), np.nan)
    recall = np.full((T, n_classes), np.nan)
    for t in range(T):
        k_keep = keep[:, t]
        c = cls[k_keep]
        hit = tp[k_keep, t].astype(np.int64)
        starts = np.searchsorted(c, np.arange(n_classes), side="left")
        ends = np.searchsorted(c, np.arange(n_classes), side="right")
        csum = np.cumsum(hit)
        for k in np.flatnonzero(npig > 0):
            s, e = starts[k], ends[k]
            n = e - s
            if n == 0:
                precision[t, :, k] = 0.0
                recall[t, k] = 0.0
                continue
            tps = (csum[s:e] - (csum[s - 1] if s else 0)).astype(float)
            fps = np.arange(1, n + 1, dtype=float) - tps
            rc = tps / npig[k]
            pr = tps / (fps + tps + _EPS)
            env = np.maximum.accumulate(pr[::-1])[::-1]
            inds = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
            q = np.where(inds < n, env[np.minimum(inds, n - 1)], 0.0)
            precision[t, :, k] = q
            recall[t, k] = rc[-1]
    return precision, recall


def _coco_order(p: mt.Prepared) -> np.ndarray:
    """Predictions by class, then confidence descending, image order, row order."""
    # dense rank of the confidence (descending) packed with the class, and the image rank
    # packed with the row: two int64 keys instead of four
    uniq, inv = np.unique(-p.d_score, return_inverse=True)
    bits = max(int(len(uniq)).bit_length(), 1)
    major = (p.d_cls.astype(np.int64) << bits) | inv.astype(np.int64)
    rbits = max(int(len(p.d_row) and p.d_row.max() + 1).bit_length(), 1)
    minor = (p.item_rank[p.d_item].astype(np.int64) << rbits) | p.d_row.astype(np.int64)
    return np.lexsort((minor, major))


def _ap_of(p: mt.Prepared, order: np.ndarray, det_gt: np.ndarray, g_ignore: np.ndarray,
           d_out: np.ndarray, d_sel: np.ndarray | None, g_sel: np.ndarray | None,
           thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision (T, R, K) and recall (T, K) of one scope (slice and area range)."""
    K = len(p.classes)
    g_count = ~g_ignore if g_sel is None else (~g_ignore & g_sel)
    npig = np.bincount(p.g_cls[g_count], minlength=K)
    dg = det_gt[order]
    matched = dg >= 0
    ign = at_(g_ignore, dg, False).astype(bool) | (~matched & d_out[order][:, None])
    keep = ~ign
    if d_sel is not None:
        keep &= d_sel[order][:, None]
    return precision_table(p.d_cls[order], matched & keep, keep, npig, K)


# ----------------------------------------------------------------------------- slices


def _as_list(by) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    if isinstance(by, Sequence) and all(isinstance(c, str) for c in by):
        return list(by)
    raise TypeError("The 'by' parameter of detection_metrics must be a str, a list of str or "
                    f"None. Got {by!r} instead.")


def _area_ranges(area_ranges) -> dict[str, tuple[float, float]] | None:
    if area_ranges is None:
        return None
    if isinstance(area_ranges, str):
        if area_ranges != "coco":
            raise ValueError("The 'area_ranges' parameter of detection_metrics must be 'coco', "
                             f"a dict name -> (low, high) or None. Got {area_ranges!r} instead.")
        return dict(mt.COCO_AREA_RANGES)
    if isinstance(area_ranges, Mapping):
        out = {}
        for name, rng in area_ranges.items():
            lo, hi = (float(v) for v in rng)
            if not lo <= hi:
                raise ValueError(f"detection_metrics: area range {name!r} has low {lo} > high "
                                 f"{hi}. Give (low, high) in square pixels.")
            out[str(name)] = (lo, hi)
        return out
    raise TypeError("The 'area_ranges' parameter of detection_metrics must be 'coco', a dict "
                    f"name -> (low, high) or None. Got {type(area_ranges).__name__} instead.")


def _thresholds(values) -> np.ndarray:
    thr = np.asarray(values, dtype=float).ravel()
    if not len(thr) or not ((thr > 0) & (thr <= 1)).all():
        raise ValueError("The 'iou_thresholds' parameter of detection_metrics must be a "
                         f"non-empty list of floats in (0, 1]. Got {values!r} instead.")
    return thr


def _summary(prec: np.ndarray, recall_unused, thresholds: np.ndarray) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """AP50 and AP@[thresholds] per class (NaN for classes without reference boxes)."""
    with np.errstate(invalid="ignore"):
        ap = prec.mean(axis=(0, 1))
    i50 = np.flatnonzero(np.isclose(thresholds, 0.5, rtol=0, atol=1e-12))
    ap50 = prec[i50[0]].mean(axis=0) if len(i50) else np.full(prec.shape[2], np.nan)
    return ap50, ap


def _count_table(rows: pd.DataFrame, keys: list[str], classes: list[str]) -> pd.DataFrame:
    """Outcome counts per (keys..., class) from light rows (label, predicted, outcome codes)."""
    K = len(classes)
    out = []
    groups = [((), rows)] if not keys else rows.groupby(
        keys[0] if len(keys) == 1 else keys, sort=True, dropna=False, observed=True)
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        lab, prd, oc = g["_label"].to_numpy(), g["_pred"].to_numpy(), g["_out"].to_numpy()
        counts = {}
        for name, code, by_label in (("n_tp", mt.TP, True), ("n_fn", mt.FN, True),
                                     ("n_wrong_class", mt.WRONG, True),
                                     ("n_mislocated", mt.MISLOC, True),
                                     ("n_fp", mt.FP, False), ("n_duplicate", mt.DUP, False)):
            src = lab if by_label else prd
            sel = (oc == code) & (src >= 0)
            counts[name] = np.bincount(src[sel], minlength=K)
        counts["n_boxes"] = np.bincount(lab[lab >= 0], minlength=K)
        counts["n_predictions"] = np.bincount(prd[prd >= 0], minlength=K)
        out.append((key, counts))
    return out


def _rows(counts: dict, ap50: np.ndarray, ap: np.ndarray, classes: list[str]) -> list[dict]:
    rows = []
    for k, c in enumerate(classes):
        r = {"class": c, "ap50": ap50[k], "ap": ap[k]}
        r.update({n: int(v[k]) for n, v in counts.items()})
        rows.append(r)
    total = {n: int(v.sum()) for n, v in counts.items()}
    with np.errstate(invalid="ignore"):
        overall = {"class": RESERVED_CLASS,
                   "ap50": np.nanmean(ap50) if np.isfinite(ap50).any() else np.nan,
                   "ap": np.nanmean(ap) if np.isfinite(ap).any() else np.nan}
    overall.update(total)
    rows.append(overall)
    for r in rows:
        r["precision"] = r["n_tp"] / r["n_predictions"] if r["n_predictions"] else np.nan
        r["recall"] = r["n_tp"] / r["n_boxes"] if r["n_boxes"] else np.nan
    return rows


# ----------------------------------------------------------------------------- public


def detection_metrics(matches_or_project: Any, by: str | list[str] | None = None, *,
                      iou_thresholds=IOU_THRESHOLDS, area_ranges=None, max_dets: int = 100,
                      iou: float = 0.5, run: str | None = None) -> pd.DataFrame:
    """AP, precision, recall and outcome counts per class (and per slice), as COCO computes.

    Parameters
    ----------
    matches_or_project : Project, dict or DataFrame
        A detection project (or a dict of its frames ``boxes``, ``predictions`` [,
        ``items``, ``classes``]): everything is computed, AP at every IoU threshold. Or the
        frame returned by :func:`match_detections`: it holds one IoU only, so ``ap50`` is
        computed from it when it was matched at 0.5 (else NaN), ``ap`` is NaN, and
        precision, recall and the counts are exact.
    by : str or list of str, optional
        Slice by these columns: item metadata (AP on the images of the slice, as COCOeval
        with ``params.imgIds`` set to them) or box metadata (reference boxes outside the
        slice are ignored the way COCO ignores boxes outside an area range; a prediction
        counts when it is matched to a box of the slice or, unmatched, when the reference
        box it overlaps most - any class, IoU > 0 - is in the slice; a prediction that
        overlaps no reference box counts in no box-metadata slice). Missing values form a
        slice of their own.
    iou_thresholds : array-like of float, default=np.linspace(.5, .95, 10)
        IoU thresholds averaged by ``ap`` (COCO's ``iouThrs``).
    area_ranges : {'coco'} or dict of str to (float, float), optional
        Add rows per area range (column ``area_range``): reference boxes whose area
        (their ``area`` column when present, else ``w * h``) is outside ``[low, high]``
        are ignored and so are unmatched predictions outside it, exactly as COCO. ``'coco'``
        is COCO's all/small/medium/large. Counts in a range use each row's ``area``.
    max_dets : int, default=100
        Predictions kept per image and class (COCO's ``maxDets``).
    iou : float, default=0.5
        IoU of the outcomes behind ``precision``, ``recall`` and the counts.
    run : str, optional
        The run; ``None`` evaluates every run (column ``run`` when there are several).

    Returns
    -------
    DataFrame
        One row per class and an ``all`` row (per run, slice and area range), columns
        [``run``], [*by*], [``area_range``], ``class``, ``ap50``, ``ap``, ``precision``,
        ``recall``, ``n_tp``, ``n_fp``, ``n_fn``, ``n_wrong_class``, ``n_mislocated``,
        ``n_duplicate``, ``n_boxes``, ``n_predictions``.

        * ``ap50``/``ap``: COCO's AP at 0.5 and averaged over ``iou_thresholds``;
          NaN for a class without (non-crowd) reference boxes in scope (COCO's -1). The
          ``all`` row is their mean over classes with reference boxes (COCO's summarize).
        * ``precision`` = ``n_tp / n_predictions`` and ``recall`` = ``n_tp / n_boxes`` at
          ``iou`` with every kept prediction (COCO's recall at that threshold); the
          ``all`` row pools the counts over classes (micro).
        * Counts come from :func:`match_detections`' outcomes: ``n_tp``, ``n_fn``,
          ``n_wrong_class``, ``n_mislocated`` and ``n_boxes`` by the reference class,
          ``n_fp``, ``n_duplicate`` and ``n_predictions`` by the predicted class (a
          ``wrong_class`` prediction is among the predictions of its predicted class).

    Raises
    ------
    SchemaError
        Frames lack a column, a ``by`` column is in no frame, or input values are invalid.
    ValueError
        A parameter is out of range.

    See Also
    --------
    match_detections : the outcome of every box.

    Notes
    -----
    Equal to ``pycocotools.cocoeval.COCOeval(gt, dt, 'bbox')`` after ``evaluate()`` and
    ``accumulate()``: ``ap50`` = mean of ``eval['precision'][0, :, k, 0, -1]``, ``ap`` = mean
    of ``eval['precision'][:, :, k, 0, -1]``, and the ``all`` row = ``stats[1]``/``stats[0]``,
    to floating-point rounding (tested to 1e-6 on random data with ties and crowd boxes).
    Intended difference: when ``matches_or_project`` is a matches frame, ties of confidence
    within one image and class are broken by the frame's row order, not the original file's.

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench.detection import detection_metrics
    >>> boxes = pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "cat"],
    ...                       "x": 0, "y": 0, "w": 10, "h": 10})
    >>> preds = pd.DataFrame({"item_id": ["a", "b"], "run": "r", "label": "cat",
    ...                       "x": [0, 20], "y": 0, "w": 10, "h": 10, "confidence": [.9, .8]})
    >>> m = detection_metrics({"boxes": boxes, "predictions": preds})
    >>> print(m[["class", "ap50", "precision", "recall", "n_tp", "n_fp", "n_fn"]]
    ...       .to_string(index=False))
    class    ap50  precision  recall  n_tp  n_fp  n_fn
      cat 0.50495        0.5     0.5     1     1     1
      all 0.50495        0.5     0.5     1     1     1

    ``ap50`` is 51/101: precision 1 at the recall thresholds 0, 0.01, ..., 0.50, then 0.
    """
    func = "detection_metrics"
    thresholds = _thresholds(iou_thresholds)
    ranges = _area_ranges(area_ranges)
    keys = _as_list(by)
    clash = [k for k in keys if k in (*_COLUMNS, "run", "area_range")]
    if clash:  # the slice's value would be overwritten by the output column of that name
        raise ValueError(f"The 'by' parameter of {func} names {clash}, which are columns of "
                         f"its output ({list(_COLUMNS)}, 'run', 'area_range'). Copy the "
                         f"metadata column under another name (e.g. items['{clash[0]}_'] = "
                         f"items['{clash[0]}']) and slice by that.")
    if isinstance(matches_or_project, pd.DataFrame):
        return _from_matches(matches_or_project, keys, ranges, run, func)
    iou = mt._check_common(iou, "boxes", max_dets, func)
    fr = mt.read_frames(matches_or_project, func)
    runs = mt.runs_of(fr.predictions, run, func)
    g_xywh = mt._coords(fr.boxes, "boxes", func)
    item_keys = [c for c in keys if fr.items is not None and c in fr.items.columns]
    box_keys = [c for c in keys if c not in item_keys and c in fr.boxes.columns]
    missing = [c for c in keys if c not in item_keys and c not in box_keys]
    if missing:
        raise SchemaError(
            f"{func}: by={keys!r}: the column(s) {missing} are neither item metadata "
            f"({list(fr.item_meta)}) nor box metadata ({list(fr.box_meta)}).")
    frames = []
    for r in runs or [None]:
        preds = fr.predictions if r is None else mt.run_predictions(fr.predictions, r)
        out = _evaluate_run(fr, preds, thresholds, ranges, item_keys, box_keys, iou, max_dets,
                            g_xywh, func, r)
        if len(runs) > 1:
            out.insert(0, "run", r)
        frames.append(out)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out.attrs = {"iou": iou, "iou_thresholds": thresholds.tolist(), "max_dets": max_dets,
                 "by": keys, "runs": [r for r in runs if r is not None]}
    return out


def _slice_codes(frame: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, list[tuple]]:
    """Slice code per row over ``cols`` (missing values are a value), and the slice keys."""
    if not cols:
        return np.zeros(len(frame), np.int64), [()]
    grouped = frame[cols].reset_index(drop=True).groupby(
        cols[0] if len(cols) == 1 else cols, sort=True, dropna=False, observed=True)
    codes = grouped.ngroup().to_numpy()
    index = grouped.size().index
    names = [k if isinstance(k, tuple) else (k,) for k in index.tolist()]
    return codes.astype(np.int64), names


def _evaluate_run(fr, preds, thresholds, ranges, item_keys, box_keys, iou, max_dets, g_xywh,
                  func, run) -> pd.DataFrame:
    p = mt.prepare(fr, preds, max_dets=max_dets, func=func, boxes_xywh=g_xywh)
    thr_all = thresholds
    at = np.flatnonzero(thresholds == iou)
    if not len(at):
        thr_all = np.r_[thresholds, iou]
        at = [len(thresholds)]
    det_gt, det_pair = mt.match(p, thr_all, with_pairs=True)
    c = mt.classify(p, det_gt[:, at[0]], iou, det_pair[:, at[0]])
    det_gt = det_gt[:, : len(thresholds)]
    order = _coco_order(p)
    keys = item_keys + box_keys
    # light rows of the outcomes (non-crowd boxes, then prediction-only rows)
    g_keep = np.flatnonzero(~p.g_crowd)
    d_only = np.flatnonzero((c["d_out"] == mt.FP) | (c["d_out"] == mt.DUP))
    gp = c["g_pred"][g_keep]
    rows = pd.DataFrame({
        "_label": np.r_[p.g_cls[g_keep], np.full(len(d_only), -1)],
        "_pred": np.r_[at_(p.d_cls, gp, -1), p.d_cls[d_only]],
        "_out": np.r_[c["g_out"][g_keep], c["d_out"][d_only]].astype(np.int64),
        "_area": np.r_[p.g_area[g_keep], p.d_area[d_only]],
    })
    # slices: codes per item, per box, and per prediction
    attr = None
    if box_keys:
        attr = _attribution(p)
        gframe = fr.boxes[box_keys].reset_index(drop=True)
        if item_keys:
            pos = p.g_item  # with items, item indices are their row positions
            gframe = pd.concat([fr.items[item_keys].iloc[pos].reset_index(drop=True), gframe],
                               axis=1)
        g_slice, names = _slice_codes(gframe[keys], keys)
        d_slice = at_(g_slice, attr, -1)
        only_slice = d_slice[d_only]
        rows["_slice"] = np.r_[g_slice[g_keep], only_slice]
    elif item_keys:
        pos = np.arange(p.n_items)  # with items, item indices are their row positions
        i_slice, names = _slice_codes(fr.items[item_keys].iloc[pos], item_keys)
        rows["_slice"] = np.r_[i_slice[p.g_item[g_keep]], i_slice[p.d_item[d_only]]]
    else:
        names = [()]
        rows["_slice"] = 0
    rng_items = list(ranges.items()) if ranges is not None else [(None, None)]
    out = []
    for rname, rng in rng_items:
        if rng is None:
            g_out_rng = np.zeros(len(p.g_item), bool)
            d_out_rng = np.zeros(len(p.d_item), bool)
            sub = rows
        else:
            lo, hi = rng
            g_out_rng = (p.g_area < lo) | (p.g_area > hi)
            d_out_rng = (p.d_area < lo) | (p.d_area > hi)
            sub = rows[((rows["_area"] >= lo) & (rows["_area"] <= hi)).to_numpy()]
        g_ignore = p.g_crowd | g_out_rng
        dg_rng = det_gt if rng is None else mt.match(p, thresholds, g_ignore=g_ignore)
        counts = dict(_count_table(sub, ["_slice"], p.classes))
        for s, name in enumerate(names):
            if box_keys:
                g_ig = g_ignore | (g_slice != s)
                dg = mt.match(p, thresholds, g_ignore=g_ig)
                prec, _ = _ap_of(p, order, dg, g_ig, d_out_rng | (d_slice != s), None, None,
                                 thresholds)
            elif item_keys:
                in_item = i_slice == s
                prec, _ = _ap_of(p, order, dg_rng, g_ignore, d_out_rng, in_item[p.d_item],
                                 in_item[p.g_item], thresholds)
            else:
                prec, _ = _ap_of(p, order, dg_rng, g_ignore, d_out_rng, None, None, thresholds)
            ap50, ap = _summary(prec, None, thresholds)
            cnt = counts.get((s,)) or counts.get(s)
            if cnt is None:
                zero = np.zeros(len(p.classes), np.int64)
                cnt = {n: zero for n in _COUNTS + ("n_boxes", "n_predictions")}
            for r in _rows(cnt, ap50, ap, p.classes):
                head = dict(zip(keys, name, strict=True))
                if rname is not None:
                    head["area_range"] = rname
                out.append({**head, **r})
    cols = keys + (["area_range"] if ranges is not None else []) + list(_COLUMNS)
    return pd.DataFrame(out, columns=cols)


def _attribution(p: mt.Prepared) -> np.ndarray:
    """For each prediction, the non-crowd reference box it overlaps most (any class), or -1."""
    ok_g = np.flatnonzero(~p.g_crowd)
    a, b = mt.ragged_pairs(p.d_item, p.g_item[ok_g])
    gi = ok_g[b]
    v = mt.coco_iou(p.d_box[:, a], p.g_box[:, gi], np.zeros(len(a), bool))
    best = np.full(len(p.d_item), -1, np.int64)
    pos = v > 0
    a, gi, v = a[pos], gi[pos], v[pos]
    if len(a):
        order = np.lexsort((gi, v, a))
        last = np.r_[a[order][1:] != a[order][:-1], True]
        best[a[order][last]] = gi[order][last]
    return best


def _from_matches(m: pd.DataFrame, keys: list[str], ranges, run, func) -> pd.DataFrame:
    """Metrics from a matches frame: counts, precision, recall, AP at its own IoU."""
    need = ["item_id", "box_id", "pred_id", "label", "predicted", "confidence", "outcome"]
    from .._validation import check_columns

    check_columns(m, need + keys, what="matches", func=func)
    if ranges is not None:
        check_columns(m, ["area"], what="matches", func=func)
    iou = m.attrs.get("iou")
    classes = list(m.attrs.get("classes") or [])
    seen = set(m["label"].dropna().astype(str)) | set(m["predicted"].dropna().astype(str))
    classes = classes + sorted(seen - set(classes))
    runs = mt.runs_of(m, run, func) if "run" in m.columns else [None]
    runs = [r for r in runs if r is not None and r == r] or [None]
    order_ids = m.attrs.get("item_order")
    frames = []
    for r in runs:
        sub = m if r is None or "run" not in m.columns else m[(m["run"].astype(str) == r)
                                                               .to_numpy()]
        frames.append(_matches_run(sub, keys, ranges, iou, classes, order_ids, r, len(runs)))
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out.attrs = {"iou": iou, "by": keys, "from": "matches"}
    return out


def _matches_run(m, keys, ranges, iou, classes, order_ids, run, n_runs) -> pd.DataFrame:
    names = np.array(mt.OUTCOMES)
    oc = pd.Index(names).get_indexer(m["outcome"].astype(str))
    if (oc < 0).any():
        bad = pd.unique(m["outcome"].astype(str)[oc < 0])
        raise SchemaError(f"detection_metrics: matches has unknown outcome(s) {bad[:5].tolist()}; "
                          f"expected {list(mt.OUTCOMES)} (the output of match_detections).")
    lab = pd.Categorical(m["label"].astype(object).where(m["label"].notna(), None),
                         categories=classes).codes.astype(np.int64)
    prd = pd.Categorical(m["predicted"].astype(object).where(m["predicted"].notna(), None),
                         categories=classes).codes.astype(np.int64)
    rows = pd.DataFrame({"_label": lab, "_pred": prd, "_out": oc})
    for k in keys:
        rows[k] = m[k].to_numpy()
    ids = m["item_id"].astype(str).to_numpy(dtype=object)
    uniq = pd.unique(ids) if order_ids is None else np.asarray(order_ids, dtype=object)
    rank_u = mt.item_order(uniq)
    rank = rank_u[mt.lookup(ids, pd.Series(uniq, dtype=object))]
    score = m["confidence"].to_numpy(dtype=float, na_value=np.nan)
    area = m["area"].to_numpy(dtype=float) if ranges is not None else None
    rng_items = list(ranges.items()) if ranges is not None else [(None, None)]
    K = len(classes)
    out = []
    groups = [((), np.arange(len(m)))] if not keys else [
        (k if isinstance(k, tuple) else (k,), idx)
        for k, idx in rows.groupby(keys[0] if len(keys) == 1 else keys, sort=True,
                                   dropna=False, observed=True).indices.items()]
    for rname, rng in rng_items:
        for name, idx in groups:
            if rng is not None:
                idx = idx[(area[idx] >= rng[0]) & (area[idx] <= rng[1])]
            sub = rows.iloc[idx]
            cnt = _count_table(sub, [], classes)[0][1]
            pr = idx[prd[idx] >= 0]
            order = np.lexsort((np.arange(len(pr)), rank[pr], -score[pr], prd[pr]))
            pr = pr[order]
            tp = (oc[pr] == mt.TP)[:, None]
            prec, _ = precision_table(prd[pr], tp, np.ones_like(tp), cnt["n_boxes"], K)
            ap_iou = prec[0].mean(axis=0)
            ap50 = ap_iou if iou is not None and abs(iou - 0.5) < 1e-12 else np.full(K, np.nan)
            for r in _rows(cnt, ap50, np.full(K, np.nan), classes):
                head = dict(zip(keys, name, strict=True))
                if rname is not None:
                    head["area_range"] = rname
                out.append({**head, **r})
    cols = keys + (["area_range"] if ranges is not None else []) + list(_COLUMNS)
    frame = pd.DataFrame(out, columns=cols)
    if n_runs > 1:
        frame.insert(0, "run", run)
    return frame
