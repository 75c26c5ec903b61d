"""Match predicted boxes to reference boxes the way COCO does, and name every leftover.

:func:`match_detections` turns a detection project (or its frames) into one row per
reference box and per unmatched predicted box, each with an ``outcome`` (``tp``, ``fp``,
``fn``, ``wrong_class``, ``mislocated``, ``duplicate``), ready for :func:`slice_metrics` and
:func:`discover_slices` (targets ``is_fn`` and ``is_fp``).

The matching engine here is shared with :func:`workbench.detection.metrics.detection_metrics`
and replicates pycocotools' ``COCOeval.evaluateImg`` (``iouType='bbox'``) exactly:

* IoU of boxes ``[x, y, w, h]`` in pixels, without COCO's old ``+1``; for a crowd reference
  box (``iscrowd``) the union is the predicted box's area (intersection over prediction).
* Per image and per class, predictions are sorted by ``confidence``, highest first, with a
  stable sort (ties keep the order of the ``predictions`` rows), and only the first
  ``max_dets`` (100) of each image and class take part; the others are left out.
* Greedy, highest confidence first: each prediction takes the not yet matched, non-crowd
  reference box with the highest IoU ``>= iou`` (on equal IoU the later row of ``boxes``,
  as COCO's loop does); when no regular box qualifies it may take a crowd box, which can
  absorb any number of predictions. Predictions absorbed by a crowd box, and crowd boxes,
  count neither way.
* Images are ordered by ``item_id`` - numerically when every id is an integer (COCO's image
  ids imported as strings), else as strings. That order only breaks ties of confidence
  between images, exactly as COCO's ``accumulate`` does with its sorted image ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._validation import check_columns, check_fraction, check_int, check_option
from ..errors import SchemaError

__all__ = ["match_detections", "OUTCOMES", "SIZE_LABELS", "COCO_AREA_RANGES"]

OUTCOMES = ("tp", "fp", "fn", "wrong_class", "mislocated", "duplicate")
SIZE_LABELS = ("small", "medium", "large")
#: COCO's area ranges (``COCOeval.Params.areaRng``), bounds inclusive.
COCO_AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2),
                    "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
MISLOCATED_IOU = 0.1
_BOX_COLS = ("item_id", "label", "x", "y", "w", "h")
_STANDARD_BOX = {"box_id", "item_id", "label", "x", "y", "w", "h", "iscrowd", "area"}
_STANDARD_ITEM = {"item_id", "filepath", "width", "height", "label"}
_OUT_COLS = ("run", "item_id", "box_id", "pred_id", "label", "predicted", "iou", "confidence",
             "outcome", "is_fn", "is_fp", "area", "size")
# outcome codes used in the arrays
TP, FP, FN, WRONG, MISLOC, DUP = range(6)


# ----------------------------------------------------------------------------- inputs


@dataclass
class _Frames:
    """The three frames of a detection project, read from a Project or a mapping."""

    boxes: pd.DataFrame
    predictions: pd.DataFrame
    items: pd.DataFrame | None
    classes: list[str]
    item_meta: list[str]
    box_meta: list[str]


def _get(obj: Any, name: str):
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def read_frames(obj: Any, func: str) -> _Frames:
    """Read boxes, predictions, items and classes from a Project, a mapping or an object."""
    if isinstance(obj, pd.DataFrame):
        raise TypeError(
            f"{func} needs the reference boxes and the predictions: pass a detection Project, "
            "or a dict {'boxes': DataFrame, 'predictions': DataFrame[, 'items': DataFrame]}. "
            "Got a single DataFrame.")
    task = _get(obj, "task")
    if task is not None and task != "detection":
        raise ValueError(
            f"{func} needs a detection project (task = \"detection\" in workbench.toml, with "
            f"boxes). This project's task is {task!r}: use project_errors and slice_metrics.")
    boxes, preds, items = _get(obj, "boxes"), _get(obj, "predictions"), _get(obj, "items")
    if boxes is None or preds is None:
        raise TypeError(
            f"{func} needs an object with .boxes and .predictions (a detection Project) or a "
            f"dict with the keys 'boxes' and 'predictions'. Got {type(obj).__name__}.")
    check_columns(boxes, _BOX_COLS, what="boxes", func=func)
    check_columns(preds, _BOX_COLS + ("confidence",), what="predictions", func=func)
    if items is not None and len(items.columns):
        check_columns(items, ["item_id"], what="items", func=func)
    else:
        items = None
    classes = [str(c) for c in (_get(obj, "classes") or [])]
    seen = set(boxes["label"].astype(str).unique()) | set(preds["label"].astype(str).unique())
    classes = classes + sorted(seen - set(classes))
    meta = _get(obj, "metadata_columns")
    if items is None:
        item_meta = []
    elif meta is not None and not isinstance(obj, Mapping):
        item_meta = [c for c in meta if c in items.columns and c not in _STANDARD_ITEM]
    else:
        item_meta = [c for c in items.columns if c not in _STANDARD_ITEM]
    bmeta = _get(obj, "box_metadata_columns")
    if bmeta is None or isinstance(obj, Mapping):
        bmeta = [c for c in boxes.columns if c not in _STANDARD_BOX]
    bmeta = [c for c in bmeta if c in boxes.columns and c not in _STANDARD_BOX]
    item_meta = [c for c in item_meta if c not in _OUT_COLS]
    box_meta = [c for c in bmeta if c not in _OUT_COLS and c not in item_meta]
    return _Frames(boxes, preds, items, classes, item_meta, box_meta)


def _coords(frame: pd.DataFrame, what: str, func: str) -> np.ndarray:
    out = np.empty((len(frame), 4))
    for j, col in enumerate("xywh"):
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if col in "wh":
            bad |= values <= 0
        if bad.any():
            rows = np.flatnonzero(bad)
            raise SchemaError(
                f"{func}: {what} has {len(rows)} row(s) whose {col!r} is "
                f"{'not a positive number' if col in 'wh' else 'not a number'} "
                f"(rows {rows[:5].tolist()}, values {frame[col].iloc[rows[:5]].tolist()}). "
                "Boxes are [x, y, w, h] in pixels with w, h > 0: fix or drop those rows.")
        out[:, j] = values
    return out


def item_order(ids: np.ndarray) -> np.ndarray:
    """Rank of each unique item id: numeric order when every id is an integer, else string."""
    ids = np.asarray(ids, dtype=object).astype(str)
    if len(ids) and all(re.fullmatch(r"[+-]?\d{1,18}", s) for s in ids):
        order = np.argsort(ids.astype(np.int64), kind="stable")
    else:
        order = np.argsort(ids, kind="stable")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    return rank


def arrow_str(values) -> pa.Array:
    """The values as one Arrow ``large_string`` array (missing values are nulls)."""
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks()
    elif isinstance(values, pa.Array):
        arr = values
    else:
        series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        if series.dtype != "str":
            series = series.astype("str")
        arr = pa.array(series.array)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def lookup(values, universe) -> np.ndarray:
    """Position of each value in ``universe`` (hash lookup in Arrow), -1 when absent."""
    found = pc.index_in(arrow_str(values), value_set=arrow_str(universe))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _cumcount(codes: np.ndarray) -> np.ndarray:
    """0-based position of each row among the rows with the same code (in row order)."""
    if not len(codes):
        return np.zeros(0, np.int64)
    order = np.argsort(codes, kind="stable")
    cs = codes[order]
    start = np.r_[True, cs[1:] != cs[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(cs)), 0))
    out = np.empty(len(cs), np.int64)
    out[order] = np.arange(len(cs)) - first
    return out


def row_ids(frame: pd.DataFrame, col: str, sep: str) -> pa.Array:
    """``frame[col]`` as strings, or the contract's generated ids when the column is absent.

    Generated: ``{item_id}{sep}{k}`` with ``k`` the 0-based order of the row among its
    item's rows (``sep`` is ``"/b"`` for boxes, ``"/{run}/p"`` for predictions, ``"/p"``
    for predictions without a ``run`` column).
    """
    if col in frame.columns:
        return arrow_str(frame[col])
    item = arrow_str(frame["item_id"])
    codes = pc.dictionary_encode(item).indices.to_numpy(zero_copy_only=False)
    k = arrow_str(pd.Series(_cumcount(codes.astype(np.int64))).astype("str"))
    return pc.binary_join_element_wise(item, pa.scalar(sep, pa.large_string()), k,
                                        pa.scalar("", pa.large_string()))


@dataclass
class Prepared:
    """Boxes and predictions of one run as arrays (the matching engine's input)."""

    n_items: int
    item_ids: np.ndarray          # unique item ids (object), position = item index
    item_rank: np.ndarray         # rank of each item index in COCO image order
    classes: list[str]
    # reference boxes
    g_item: np.ndarray
    g_cls: np.ndarray
    g_box: np.ndarray             # shape (4, n): rows x, y, w, h
    g_crowd: np.ndarray
    g_area: np.ndarray
    # predictions (only those kept: the first max_dets of each image and class)
    d_row: np.ndarray             # row position in the run's predictions frame
    d_item: np.ndarray
    d_cls: np.ndarray
    d_box: np.ndarray             # shape (4, n): rows x, y, w, h
    d_score: np.ndarray
    d_rank: np.ndarray            # rank within (image, class) by (-score, row)
    n_dropped: int                # predictions beyond max_dets
    # same image and class pairs (filled by pair_same_class)
    pairs: dict = field(default_factory=dict)

    @property
    def d_area(self) -> np.ndarray:
        return self.d_box[2] * self.d_box[3]


def _labels_codes(labels: pd.Series, classes: list[str]) -> np.ndarray:
    return lookup(labels, pd.Series(classes, dtype=object))


def prepare(fr: _Frames, run_preds: pd.DataFrame, *, max_dets: int, func: str,
            boxes_xywh: np.ndarray | None = None) -> Prepared:
    """Arrays of one run: item indices, class codes, boxes, kept predictions."""
    boxes = fr.boxes
    if fr.items is not None:
        universe = arrow_str(fr.items["item_id"])
    else:
        universe = pc.unique(pa.concat_arrays([arrow_str(boxes["item_id"]),
                                               arrow_str(fr.predictions["item_id"])]))
    g_item = lookup(boxes["item_id"], universe)
    d_item_all = lookup(run_preds["item_id"], universe)
    for what, idx, frame in (("boxes", g_item, boxes), ("predictions", d_item_all, run_preds)):
        if (idx < 0).any():
            bad = pd.unique(frame["item_id"].astype(str).to_numpy()[idx < 0])
            raise SchemaError(
                f"{func}: {what} refer to item_id(s) {bad[:5].tolist()} that are not in items. "
                "Add those images to items or drop their rows.")
    g_box = _coords(boxes, "boxes", func) if boxes_xywh is None else boxes_xywh
    d_box_all = _coords(run_preds, "predictions", func)
    score = pd.to_numeric(run_preds["confidence"], errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)
    bad = ~(score >= 0) | ~(score <= 1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise SchemaError(
            f"{func}: predictions has {len(rows)} row(s) whose 'confidence' is not in [0, 1] "
            f"(rows {rows[:5].tolist()}, values "
            f"{run_preds['confidence'].iloc[rows[:5]].tolist()}). Fix or drop those rows.")
    crowd = (boxes["iscrowd"].fillna(False).astype(bool).to_numpy()
             if "iscrowd" in boxes.columns else np.zeros(len(boxes), bool))
    if "area" in boxes.columns:
        g_area = pd.to_numeric(boxes["area"], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan)
        g_area = np.where(np.isfinite(g_area), g_area, g_box[:, 2] * g_box[:, 3])
    else:
        g_area = g_box[:, 2] * g_box[:, 3]
    classes = fr.classes
    g_cls = _labels_codes(boxes["label"], classes)
    d_cls_all = _labels_codes(run_preds["label"], classes)
    # rank of each prediction within its (image, class) by (-score, row): COCO's mergesort
    n_cls = max(len(classes), 1)
    group = d_item_all.astype(np.int64) * n_cls + d_cls_all
    rank = _rank_in(group, score)
    keep = rank < max_dets
    rows = np.flatnonzero(keep)
    item_ids = universe.to_numpy(zero_copy_only=False).astype(object)
    return Prepared(
        n_items=len(universe), item_ids=item_ids, item_rank=item_order(item_ids),
        classes=classes,
        g_item=g_item.astype(np.int64), g_cls=g_cls, g_box=np.ascontiguousarray(g_box.T),
        g_crowd=crowd, g_area=g_area,
        d_row=rows, d_item=d_item_all[rows].astype(np.int64), d_cls=d_cls_all[rows],
        d_box=np.ascontiguousarray(d_box_all[rows].T), d_score=score[rows], d_rank=rank[rows],
        n_dropped=int((~keep).sum()))


# ----------------------------------------------------------------------------- engine


def coco_iou(d_box: np.ndarray, g_box: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of paired boxes, with pycocotools' ``bbIou`` arithmetic (same float operations).

    Parameters
    ----------
    d_box, g_box : ndarray of shape (4, n)
        Predicted and reference boxes, rows ``x, y, w, h`` (columns are paired).
    crowd : ndarray of bool, shape (n,)
        Whether the reference box is a crowd region (then union = predicted area).
    """
    dx, dy, dw, dh = d_box
    gx, gy, gw, gh = g_box
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    ok = (w > 0) & (h > 0)
    inter = w * h
    da = dw * dh
    union = np.where(crowd, da, (da + gw * gh) - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, inter / union, 0.0)


def ragged_pairs(d_key: np.ndarray, g_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (prediction, reference) index pair with equal keys (a grouped cross product).

    Pairs come ordered by prediction index, then by reference index.
    """
    d_key = np.asarray(d_key, dtype=np.int64)
    g_key = np.asarray(g_key, dtype=np.int64)
    if not len(d_key) or not len(g_key):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = int(max(d_key.max(), g_key.max())) + 1
    if top <= 4 * (len(d_key) + len(g_key)) + 1_000_000:  # dense keys: counting sort
        counts_g = np.bincount(g_key, minlength=top)
        start_g = np.cumsum(counts_g) - counts_g
        g_order = np.argsort(g_key, kind="stable")
        lo = start_g[d_key]
        counts = counts_g[d_key]
    else:
        g_order = np.argsort(g_key, kind="stable")
        gk = g_key[g_order]
        lo = np.searchsorted(gk, d_key, side="left")
        counts = np.searchsorted(gk, d_key, side="right") - lo
    total = int(counts.sum())
    pd_idx = np.repeat(np.arange(len(d_key)), counts)
    starts = np.cumsum(counts) - counts
    within = np.arange(total) - np.repeat(starts, counts)
    pg_idx = g_order[np.repeat(lo, counts) + within]
    return pd_idx, pg_idx


def at(values: np.ndarray, idx: np.ndarray, fill):
    """``values[idx]`` where ``idx >= 0``, else ``fill`` (also when ``values`` is empty)."""
    if not len(values):
        return np.full(np.shape(idx), fill)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], fill)


def _float_key(values: np.ndarray) -> np.ndarray:
    """Order-preserving int64 of non-negative floats (their IEEE-754 bits): exact ties."""
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


def greedy(pair_d: np.ndarray, pair_g: np.ndarray, pair_iou: np.ndarray, pair_prio: np.ndarray,
           d_rank: np.ndarray, n_d: int, n_g: int, rematch: np.ndarray,
           thresholds: np.ndarray) -> np.ndarray:
    """COCO's greedy matching, for every threshold at once, vectorised over groups.

    Predictions of one group (image and class) are processed in ``d_rank`` order; the
    predictions of equal rank belong to different groups and are matched together (one
    numpy round per rank). Within a prediction, candidates are ordered by (``pair_prio``,
    IoU, reference index); the last valid one wins, which is COCO's rule: a regular box
    before an ignored one, then the highest IoU, then the later box on ties.

    Returns
    -------
    matched : ndarray of int32, shape (n_d, n_thresholds)
        The matched reference index per prediction and threshold, -1 when unmatched.
    pair : ndarray of int32, shape (n_d, n_thresholds)
        The index of the matching pair in the input arrays, -1 when unmatched.
    """
    thr = np.minimum(np.asarray(thresholds, dtype=float), 1 - 1e-10)
    T = len(thr)
    out = np.full((n_d, T), -1, dtype=np.int32)
    out_pair = np.full((n_d, T), -1, dtype=np.int32)
    if len(pair_d) == 0:
        return out, out_pair
    # candidates of one prediction ordered by (priority, IoU, reference index): the pairs
    # come ordered by reference index within a prediction, and both sorts are stable
    inner = (pair_prio.astype(np.int64) << 62) | _float_key(pair_iou)
    order = np.argsort(inner, kind="stable")
    outer = d_rank[pair_d].astype(np.int64) * (n_d + 1) + pair_d
    order = order[np.argsort(outer[order], kind="stable")]
    pair_d, pair_g, pair_iou = pair_d[order], pair_g[order], pair_iou[order]
    rk = d_rank[pair_d]
    matched = np.zeros((n_g, T), dtype=bool)
    bounds = np.flatnonzero(np.r_[True, rk[1:] != rk[:-1], True])
    ge = pair_iou[:, None] >= thr[None, :]
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        g = pair_g[s:e]
        valid = ge[s:e] & (rematch[g][:, None] | ~matched[g])
        dd = pair_d[s:e]
        seg = np.flatnonzero(np.r_[True, dd[1:] != dd[:-1]])
        pos = np.where(valid, np.arange(e - s, dtype=np.int32)[:, None], np.int32(-1))
        best = np.maximum.reduceat(pos, seg, axis=0)
        hit = best >= 0
        chosen = np.where(hit, g[np.maximum(best, 0)], -1)
        out[dd[seg]] = chosen
        out_pair[dd[seg]] = np.where(hit, order[s + np.maximum(best, 0)], -1)
        r, c = np.nonzero(hit)
        matched[chosen[r, c], c] = True
    return out, out_pair


def pair_same_class(p: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of predictions and reference boxes of the same image and class, with IoUs."""
    if "same" not in p.pairs:
        n = max(len(p.classes), 1)
        pd_idx, pg_idx = ragged_pairs(p.d_item * n + p.d_cls, p.g_item * n + p.g_cls)
        iou = coco_iou(p.d_box[:, pd_idx], p.g_box[:, pg_idx], p.g_crowd[pg_idx])
        p.pairs["same"] = (pd_idx, pg_idx, iou)
    return p.pairs["same"]


def match(p: Prepared, thresholds, *, g_ignore: np.ndarray | None = None,
          with_pairs: bool = False):
    """Match predictions of each image and class at every threshold (COCO's evaluateImg)."""
    pd_idx, pg_idx, iou = pair_same_class(p)
    ignore = p.g_crowd if g_ignore is None else g_ignore
    out = greedy(pd_idx, pg_idx, iou, (~ignore[pg_idx]).astype(np.int8), p.d_rank,
                  len(p.d_item), len(p.g_item), p.g_crowd, np.asarray(thresholds, float))
    return out if with_pairs else out[0]


# ----------------------------------------------------------------------------- outcomes


def _rank_in(groups: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Rank within each group by score descending; ties keep the input order (stable)."""
    if not len(groups):
        return np.zeros(0, np.int64)
    order = np.lexsort((-_float_key(score), groups))
    gs = groups[order]
    start = np.r_[True, gs[1:] != gs[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(gs)), 0))
    rank = np.empty(len(gs), dtype=np.int64)
    rank[order] = np.arange(len(gs)) - first
    return rank


def _segment_max(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Max of ``values`` per key (keys ascending), NaN where a key has none."""
    out = np.full(n, np.nan)
    if len(keys):
        seg = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        out[keys[seg]] = np.maximum.reduceat(values, seg)
    return out


def classify(p: Prepared, det_gt: np.ndarray, iou: float,
             det_pair: np.ndarray | None = None) -> dict:
    """Name every prediction and every non-crowd reference box at one IoU threshold.

    Order of the rules (each on what the previous ones left):

    1. ``tp``: COCO's match (``det_gt``), same class, IoU >= ``iou``.
    2. ``wrong_class``: an unmatched prediction takes the unmatched reference box of
       another class in its image with the highest IoU >= ``iou``; one-to-one, greedy by
       confidence (highest first, ties by row order), like COCO's matching.
    3. ``mislocated``: same rule on the boxes still unmatched, same class,
       0.1 <= IoU < ``iou``.
    4. ``duplicate``: a prediction still unmatched with IoU >= ``iou`` with a reference box
       of its class that a ``tp`` already holds.
    5. ``fp``: every other prediction; ``fn``: every reference box still unmatched.

    Predictions absorbed by a crowd box are ``-1`` (left out), as in COCO.
    """
    n_d, n_g = len(p.d_item), len(p.g_item)
    d_out = np.full(n_d, FP, dtype=np.int8)
    d_iou = np.full(n_d, np.nan)
    g_out = np.full(n_g, FN, dtype=np.int8)
    g_pred = np.full(n_g, -1, dtype=np.int64)
    pd_idx, pg_idx, piou = pair_same_class(p)
    if det_pair is None:
        det_gt, det_pair = (a[:, 0] for a in match(p, [iou], with_pairs=True))
    hit = det_gt >= 0
    crowd_hit = at(p.g_crowd, det_gt, False).astype(bool)
    tp = np.flatnonzero(hit & ~crowd_hit)
    d_out[crowd_hit] = -1
    d_out[tp] = TP
    g_out[det_gt[tp]] = TP
    g_pred[det_gt[tp]] = tp
    d_iou[tp] = piou[det_pair[tp]]
    thr = min(iou, 1 - 1e-10)
    left_d = np.flatnonzero(d_out == FP)
    left_g = np.flatnonzero((g_out == FN) & ~p.g_crowd)
    # leftover pairs of one image with IoU >= 0.1, computed once for both rules
    a, b = ragged_pairs(p.d_item[left_d], p.g_item[left_g])
    di, gi = left_d[a], left_g[b]
    v = coco_iou(p.d_box[:, di], p.g_box[:, gi], np.zeros(len(di), bool))
    ok = v >= min(MISLOCATED_IOU, thr)
    di, gi, v = di[ok], gi[ok], v[ok]
    same_cls = p.d_cls[di] == p.g_cls[gi]
    for outcome, same, lo in ((WRONG, False, thr), (MISLOC, True, MISLOCATED_IOU)):
        sel = (same_cls == same) & (v >= lo) & (d_out[di] == FP) & (g_out[gi] == FN)
        if not sel.any():
            continue
        sd, sg, sv = di[sel], gi[sel], v[sel]
        # local indices for the engine; greedy by confidence within each image
        ud, dloc = np.unique(sd, return_inverse=True)
        ug, gloc = np.unique(sg, return_inverse=True)
        rank = _rank_in(p.d_item[ud], p.d_score[ud])  # ud ascends with the row order
        res, pair = greedy(dloc, gloc, sv, np.ones(len(sv), np.int8), rank, len(ud), len(ug),
                           np.zeros(len(ug), bool), np.array([lo]))
        got = res[:, 0] >= 0
        dsel, gsel = ud[got], ug[res[got, 0]]
        d_out[dsel] = outcome
        g_out[gsel] = outcome
        g_pred[gsel] = dsel
        d_iou[dsel] = sv[pair[got, 0]]
    # duplicates: same class, IoU >= iou with a box a tp holds
    if len(pd_idx):
        cand = (d_out[pd_idx] == FP) & (g_out[pg_idx] == TP) & (piou >= thr)
        best = _segment_max(pd_idx[cand], piou[cand], n_d)
        dup = np.isfinite(best)
        d_out[dup] = DUP
        d_iou[dup] = best[dup]
    return {"d_out": d_out, "d_iou": d_iou, "g_out": g_out, "g_pred": g_pred}


# ----------------------------------------------------------------------------- public


def _check_common(iou, reference, max_dets, func):
    iou = check_fraction(iou, "iou", func)
    if iou <= 0:
        raise ValueError(f"The 'iou' parameter of {func} must be a float in the range "
                         f"(0, 1]. Got {iou!r} instead.")
    check_option(reference, "reference", func, ["boxes"])
    check_int(max_dets, "max_dets", func, minimum=1)
    return iou


def runs_of(preds: pd.DataFrame, run, func: str, default=None) -> list:
    """The runs to evaluate: ``run`` if given (checked), else every run in the file."""
    if "run" not in preds.columns:
        if run is not None:
            raise ValueError(f"{func}: predictions have no 'run' column, so run={run!r} cannot "
                             "be selected. Add a 'run' column or pass run=None.")
        return [None]
    runs = list(pd.unique(preds["run"].astype(str)))
    if run is None:
        return runs or ([default] if default is not None else [])
    check_option(str(run), "run", func, runs)
    return [str(run)]


def run_predictions(preds: pd.DataFrame, run) -> pd.DataFrame:
    """The rows of one run (all rows when ``run`` is None)."""
    if run is None:
        return preds
    mask = (preds["run"].astype(str) == run).to_numpy()
    return preds if mask.all() else preds[mask]


def size_labels(area: np.ndarray) -> pd.Categorical:
    """COCO's size of a box: small < 32**2 <= medium < 96**2 <= large."""
    codes = np.where(area < 32.0**2, 0, np.where(area < 96.0**2, 1, 2))
    codes = np.where(np.isnan(area), -1, codes)
    return pd.Categorical.from_codes(codes, categories=list(SIZE_LABELS))


def match_detections(project_or_frames: Any, run: str | None = None, *, iou: float = 0.5,
                     reference: str = "boxes", max_dets: int = 100) -> pd.DataFrame:
    """Match predicted boxes to the reference boxes (COCO's rules) and name each outcome.

    Parameters
    ----------
    project_or_frames : Project or dict
        A detection project (``.boxes``, ``.predictions``, ``.items``, ``.classes``), or a
        dict with the frames ``"boxes"`` and ``"predictions"`` (and optionally ``"items"``,
        ``"classes"``) in the columns of the project format.
    run : str, optional
        The run to match. ``None`` matches every run and stacks them (column ``run``).
    iou : float, default=0.5
        IoU threshold of a match, in (0, 1].
    reference : {'boxes'}, default='boxes'
        The reference boxes: the dataset's boxes (annotators come in part 2).
    max_dets : int, default=100
        Predictions kept per image and class, highest confidence first (COCO's
        ``maxDets``); the others are left out of the frame (counted in
        ``attrs["n_beyond_max_dets"]``).

    Returns
    -------
    DataFrame
        One row per non-crowd reference box (first, in the order of ``boxes``) and per
        prediction that is not paired with a reference box (then, in the order of
        ``predictions``), per run. Columns: ``run``, ``item_id``, ``box_id`` (NA for
        prediction-only rows), ``pred_id`` (NA for ``fn``), ``label`` (reference class, NA
        for prediction-only rows), ``predicted`` (NA for ``fn``), ``iou`` (of the pair; for
        ``duplicate`` the IoU with the box it duplicates; NaN for ``fn``/``fp``),
        ``confidence`` (NaN for ``fn``), ``outcome``, ``is_fn``, ``is_fp``, ``area`` (the
        reference box's area - its ``area`` column when ``boxes`` has one, as in COCO,
        else ``w * h`` - or the predicted box's area), ``size`` (``small``/``medium``/
        ``large``, COCO's bounds), then the item metadata columns, then the box metadata
        columns (NA on prediction-only rows). ``label``/``predicted`` are categoricals over
        the project's classes. A metadata column named like one of these is left out.

        ``outcome`` (rules applied in this order, each on what the previous left):

        * ``tp``: COCO's greedy match, same class, IoU >= ``iou``.
        * ``wrong_class``: an unmatched prediction and the unmatched reference box of
          another class in its image with the highest IoU >= ``iou``; one-to-one, greedy
          by confidence.
        * ``mislocated``: the same on the remaining boxes of the same class with
          0.1 <= IoU < ``iou``.
        * ``duplicate``: a remaining prediction with IoU >= ``iou`` with a box of its
          class already held by a ``tp``.
        * ``fp``: any other prediction; ``fn``: any reference box still unmatched.

        ``is_fn`` = outcome in {fn, wrong_class, mislocated}; ``is_fp`` = outcome in
        {fp, duplicate, wrong_class, mislocated}. Crowd boxes and the predictions they
        absorb are left out, as COCO ignores them (``attrs["n_crowd_boxes"]``,
        ``attrs["n_absorbed_by_crowd"]``). ``attrs`` also holds ``iou``, ``max_dets``,
        ``classes``, ``item_order`` (the item ids in COCO image order),
        ``metadata_columns`` and ``box_metadata_columns``.

    Raises
    ------
    SchemaError
        A frame lacks a column, a box is not a positive-size number box, a confidence is
        outside [0, 1], or a row names an item absent from ``items``.
    ValueError
        A parameter is out of range, or ``run`` is not a run of the predictions.

    See Also
    --------
    detection_metrics : AP and counts per class, equal to pycocotools' COCOeval.

    Notes
    -----
    COCO's rules as implemented: see the module docstring. Differences from COCO: none in
    the matching; the leftover names (``wrong_class``, ``mislocated``, ``duplicate``) are
    ours (COCO counts them all as false positives / misses).

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench.detection import match_detections
    >>> boxes = pd.DataFrame({"item_id": ["a", "a"], "label": ["cat", "dog"],
    ...                       "x": [0, 50], "y": [0, 0], "w": [10, 10], "h": [10, 10]})
    >>> preds = pd.DataFrame({"item_id": ["a", "a"], "run": "r", "label": ["cat", "cat"],
    ...                       "x": [0, 50], "y": [0, 0], "w": [10, 10], "h": [10, 10],
    ...                       "confidence": [0.9, 0.8]})
    >>> m = match_detections({"boxes": boxes, "predictions": preds})
    >>> print(m[["box_id", "pred_id", "outcome"]].to_string(index=False))
    box_id pred_id     outcome
      a/b0  a/r/p0          tp
      a/b1  a/r/p1 wrong_class
    """
    func = "match_detections"
    iou = _check_common(iou, reference, max_dets, func)
    fr = read_frames(project_or_frames, func)
    runs = runs_of(fr.predictions, run, func)
    g_xywh = _coords(fr.boxes, "boxes", func)
    frames = [_match_frame(fr, r, iou, max_dets, g_xywh, func) for r in runs]
    if not frames:
        frames = [_match_frame(fr, None, iou, max_dets, g_xywh, func)]
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out.attrs = dict(frames[0].attrs)
    out.attrs["n_beyond_max_dets"] = sum(f.attrs["n_beyond_max_dets"] for f in frames)
    out.attrs["n_absorbed_by_crowd"] = sum(f.attrs["n_absorbed_by_crowd"] for f in frames)
    out.attrs["runs"] = [r for r in runs if r is not None]
    return out


def _match_frame(fr: _Frames, run, iou, max_dets, g_xywh, func) -> pd.DataFrame:
    preds = fr.predictions if run is None else run_predictions(fr.predictions, run)
    p = prepare(fr, preds, max_dets=max_dets, func=func, boxes_xywh=g_xywh)
    det_gt, det_pair = (a[:, 0] for a in match(p, [iou], with_pairs=True))
    c = classify(p, det_gt, iou, det_pair)
    return build_frame(fr, p, preds, c, run, iou, max_dets)


def build_frame(fr: _Frames, p: Prepared, preds: pd.DataFrame, c: dict, run, iou: float,
                max_dets: int) -> pd.DataFrame:
    """Assemble the rows of one run from the arrays of :func:`classify`."""
    boxes = fr.boxes
    g_keep = np.flatnonzero(~p.g_crowd)
    d_only = np.flatnonzero((c["d_out"] == FP) | (c["d_out"] == DUP))
    gp = c["g_pred"][g_keep]
    has = gp >= 0
    gpi = np.maximum(gp, 0)
    n_g, n_d = len(g_keep), len(d_only)
    n = n_g + n_d
    cls = list(p.classes)
    box_ids = row_ids(boxes, "box_id", "/b")
    pred_ids = row_ids(preds, "pred_id", "/p" if run is None else f"/{run}/p")

    def strings(*parts) -> pd.Series:
        arr = pa.concat_arrays([a for a in parts]) if len(parts) > 1 else parts[0]
        return pd.Series(pd.array(arr, dtype="str"))

    def cat(codes):
        return pd.Categorical.from_codes(codes, categories=cls)

    def pick(values, missing):  # the matched prediction's value on reference rows
        if not len(values):
            return np.full(n_g, missing)
        return np.where(has, values[gpi], missing)

    nulls = pa.nulls(n_d, pa.large_string())
    outcome = np.r_[c["g_out"][g_keep], c["d_out"][d_only]].astype(np.int64)
    area = np.r_[p.g_area[g_keep], p.d_area[d_only]]
    out = pd.DataFrame({
        "run": pd.Series(run, index=range(n), dtype="str") if run is not None
        else pd.Series(None, index=range(n), dtype="str"),
        "item_id": strings(arrow_str(boxes["item_id"]).take(g_keep),
                           arrow_str(preds["item_id"]).take(p.d_row[d_only])),
        "box_id": strings(box_ids.take(g_keep), nulls),
        "pred_id": strings(pred_ids.take(pa.array(p.d_row[gpi], mask=~has)) if len(p.d_row)
                           else pa.nulls(n_g, pa.large_string()),
                           pred_ids.take(p.d_row[d_only])),
        "label": cat(np.r_[p.g_cls[g_keep], np.full(n_d, -1)]),
        "predicted": cat(np.r_[pick(p.d_cls, -1), p.d_cls[d_only]]),
        "iou": np.r_[pick(c["d_iou"], np.nan), c["d_iou"][d_only]],
        "confidence": np.r_[pick(p.d_score, np.nan), p.d_score[d_only]],
        "outcome": pd.Categorical.from_codes(outcome, categories=list(OUTCOMES)),
        "is_fn": np.isin(outcome, [FN, WRONG, MISLOC]),
        "is_fp": np.isin(outcome, [FP, DUP, WRONG, MISLOC]),
        "area": area,
        "size": size_labels(area),
    })
    if fr.items is not None and fr.item_meta:
        item_idx = np.r_[p.g_item[g_keep], p.d_item[d_only]]
        for col in fr.item_meta:  # items rows are the universe: positions are item indices
            out[col] = fr.items[col].iloc[item_idx].reset_index(drop=True)
    for col in fr.box_meta:
        out[col] = boxes[col].iloc[g_keep].reset_index(drop=True).reindex(range(n))
    out.attrs = {
        "iou": iou, "max_dets": max_dets, "classes": cls, "run": run,
        "item_order": list(p.item_ids[np.argsort(p.item_rank)]),
        "metadata_columns": list(fr.item_meta), "box_metadata_columns": list(fr.box_meta),
        "n_crowd_boxes": int(p.g_crowd.sum()),
        "n_absorbed_by_crowd": int((c["d_out"] == -1).sum()),
        "n_beyond_max_dets": p.n_dropped,
    }
    return out
