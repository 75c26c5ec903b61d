"""Box-level agreement between annotators: matches, agreement measures, quality, swaps.

Every function takes the long detection ``annotations`` frame of a project (``item_id``,
``annotator``, ``label``, ``x``, ``y``, ``w``, ``h`` [, ``box_id``]; pixels, top-left
origin) and returns a DataFrame or a dict of numbers. :mod:`workbench.agreement` dispatches
to these functions when its input has box columns (``x``, ``y``, ``w``, ``h``).

Conventions
-----------
* **Which images an annotator labelled.** A box frame cannot say that an annotator looked
  at an image and found nothing, so ``labelled="all"`` (the default) assumes that every
  annotator of the frame labelled every image of the frame (the usual set-up: every
  annotator draws on the whole batch); ``labelled="boxes"`` counts an image as labelled
  by an annotator only when they drew at least one box on it.
* **Matching** is one-to-one and class-agnostic, per image and per pair of annotators:
  the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on ``1 - IoU``
  restricted to pairs with ``IoU >= iou``; it first maximises the number of matched pairs,
  then their total IoU. A matched pair with equal labels is ``agree``, with different
  labels ``other_class``; the unmatched boxes are ``only_a`` / ``only_b``. Images whose
  candidate pairs form a one-to-one graph already (the usual case) skip the solver.
* IoU is COCO's (no ``+1``), computed by :func:`workbench.detection.matching.coco_iou`.
* **Units for Krippendorff's alpha and the consensus.** Boxes are linked by their
  one-to-one matches over every pair of annotators; a connected group of linked boxes on
  one image is a *unit* (one object). When a group holds two boxes of the same annotator
  (a chain of matches), the later box (row order) forms a unit of its own. In every unit,
  each annotator who labelled the image and drew no box there contributes an *empty*
  value.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .._validation import check_columns, check_fraction, check_int, check_option
from ..agreement import _pairs_within
from ..errors import SchemaError
from .matching import _coords, _cumcount, coco_iou, ragged_pairs

__all__ = ["match_annotators", "detection_agreement_summary",
           "detection_pairwise_agreement", "detection_annotator_quality",
           "detection_confused_pairs", "detection_agreement_by", "is_detection_frame",
           "annotator_box_outcomes", "MATCH_OUTCOMES", "BOX_OUTCOMES"]

MATCH_OUTCOMES = ("agree", "other_class", "only_a", "only_b")
AGREE, OTHER, ONLY_A, ONLY_B = range(4)
_COLS = ("item_id", "annotator", "label", "x", "y", "w", "h")
_INVALID_COST = 1e3
_EXACT_EXPECTED = 3000   # boxes: exact expected disagreement up to this many, else sampled
_N_SAMPLE = 1_000_000


def is_detection_frame(frame: Any) -> bool:
    """Whether ``frame`` is a DataFrame with box columns ``x``, ``y``, ``w``, ``h``."""
    return isinstance(frame, pd.DataFrame) and {"x", "y", "w", "h"} <= set(frame.columns)


# ----------------------------------------------------------------------------- encoding


@dataclass
class _Boxes:
    """Annotation boxes as codes and arrays."""

    item: np.ndarray        # int64 codes into items
    ann: np.ndarray         # int64 codes into annotators
    label: np.ndarray       # int64 codes into classes
    xywh: np.ndarray        # (n, 4)
    box_id: np.ndarray      # object
    items: np.ndarray       # object, sorted
    annotators: np.ndarray  # object, sorted
    classes: list[str]
    labelled: np.ndarray    # bool (n_items, n_annotators)


def _encode_boxes(annotations: Any, func: str, *, classes=None, labelled="all",
                  min_annotators: int = 2) -> _Boxes:
    check_option(labelled, "labelled", func, ("all", "boxes"))
    check_columns(annotations, _COLS, what="annotations", func=func)
    for col in ("item_id", "annotator", "label"):
        if annotations[col].isna().any():
            rows = annotations.index[annotations[col].isna()][:5].tolist()
            raise SchemaError(
                f"{func}: annotations has missing values in column {col!r} (rows {rows}). "
                "Every box needs an item_id, an annotator and a label; drop those rows.")
    xywh = _coords(annotations, "annotations", func)
    item, items = pd.factorize(annotations["item_id"].astype(str).to_numpy(object), sort=True)
    ann, annotators = pd.factorize(annotations["annotator"].astype(str).to_numpy(object),
                                   sort=True)
    labels = annotations["label"].astype(str).to_numpy(object)
    if classes is None:
        label, uniq = pd.factorize(labels, sort=True)
        class_list = [str(c) for c in uniq]
    else:
        class_list = [str(c) for c in classes]
        label = pd.Index(class_list).get_indexer(labels)
        if (label < 0).any():
            unknown = sorted(set(labels[label < 0]))
            raise SchemaError(
                f"{func}: annotations use label(s) {unknown[:10]} that are not in classes "
                f"{class_list[:20]}. Add them to classes (workbench.toml) or fix the labels.")
    if len(annotators) < min_annotators:
        raise SchemaError(
            f"{func}: annotations hold boxes of {len(annotators)} annotator(s) "
            f"{list(map(str, annotators))}; box agreement needs at least {min_annotators}.")
    item = np.asarray(item, np.int64)
    ann = np.asarray(ann, np.int64)
    n_items, n_ann = len(items), len(annotators)
    if "box_id" in annotations.columns and not annotations["box_id"].isna().any():
        box_id = annotations["box_id"].astype(str).to_numpy(object)
    else:  # the project's generated ids: {item_id}/{annotator}/a{k}
        k = _cumcount(item * n_ann + ann)
        box_id = (annotations["item_id"].astype(str) + "/" + annotations["annotator"]
                  .astype(str) + "/a" + pd.Series(k, index=annotations.index).astype(str)
                  ).to_numpy(object)
    if labelled == "all":
        lab = np.ones((n_items, n_ann), bool)
    else:
        lab = np.zeros((n_items, n_ann), bool)
        lab[item, ann] = True
    return _Boxes(item, ann, np.asarray(label, np.int64), xywh, box_id,
                  np.asarray(items, object), np.asarray(annotators, object), class_list, lab)


# ----------------------------------------------------------------------------- matching


def _match_sets(item_a: np.ndarray, xywh_a: np.ndarray, item_b: np.ndarray,
                xywh_b: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matches of two box sets, per image (Hungarian on ``1 - IoU``).

    Returns the matched positions in ``a`` and ``b`` and their IoU.
    """
    pa_, pb_ = ragged_pairs(item_a, item_b)
    if not len(pa_):
        return pa_, pb_, np.zeros(0)
    val = coco_iou(xywh_a[pa_].T, xywh_b[pb_].T, np.zeros(len(pa_), bool))
    ok = val >= iou
    pa_, pb_, val = pa_[ok], pb_[ok], val[ok]
    if not len(pa_):
        return pa_, pb_, val
    deg_a = np.bincount(pa_, minlength=len(item_a))
    deg_b = np.bincount(pb_, minlength=len(item_b))
    edge_conflict = (deg_a[pa_] > 1) | (deg_b[pb_] > 1)
    bad_items = np.unique(item_a[pa_[edge_conflict]])
    in_bad = np.isin(item_a[pa_], bad_items)
    out_a, out_b, out_v = [pa_[~in_bad]], [pb_[~in_bad]], [val[~in_bad]]
    if len(bad_items):
        ea, eb, ev = pa_[in_bad], pb_[in_bad], val[in_bad]
        order = np.argsort(item_a[ea], kind="stable")
        ea, eb, ev = ea[order], eb[order], ev[order]
        bounds = np.flatnonzero(np.r_[True, np.diff(item_a[ea]) != 0, True])
        for s, e in zip(bounds[:-1], bounds[1:], strict=True):
            ua, ia = np.unique(ea[s:e], return_inverse=True)
            ub, ib = np.unique(eb[s:e], return_inverse=True)
            cost = np.full((len(ua), len(ub)), _INVALID_COST)
            cost[ia, ib] = 1.0 - ev[s:e]
            rows, cols = linear_sum_assignment(cost)
            good = cost[rows, cols] < _INVALID_COST
            rows, cols = rows[good], cols[good]
            out_a.append(ua[rows])
            out_b.append(ub[cols])
            out_v.append(1.0 - cost[rows, cols])
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_v)


@dataclass
class _PairMatches:
    """Rows of :func:`match_annotators` as arrays (positions into the boxes, -1 = none)."""

    pair_a: np.ndarray   # annotator codes
    pair_b: np.ndarray
    item: np.ndarray
    row_a: np.ndarray
    row_b: np.ndarray
    iou: np.ndarray
    outcome: np.ndarray


def _pair_matches(bx: _Boxes, iou: float) -> _PairMatches:
    n_ann = len(bx.annotators)
    parts = []
    rows_of = [np.flatnonzero(bx.ann == a) for a in range(n_ann)]
    for a in range(n_ann):
        for b in range(a + 1, n_ann):
            shared = bx.labelled[:, a] & bx.labelled[:, b]
            ra = rows_of[a][shared[bx.item[rows_of[a]]]]
            rb = rows_of[b][shared[bx.item[rows_of[b]]]]
            ma, mb, v = _match_sets(bx.item[ra], bx.xywh[ra], bx.item[rb], bx.xywh[rb], iou)
            free_a = np.ones(len(ra), bool)
            free_a[ma] = False
            free_b = np.ones(len(rb), bool)
            free_b[mb] = False
            ga, gb = ra[ma], rb[mb]
            oa, ob = ra[free_a], rb[free_b]
            n_m, n_oa, n_ob = len(ga), len(oa), len(ob)
            out = np.where(bx.label[ga] == bx.label[gb], AGREE, OTHER)
            parts.append((
                np.full(n_m + n_oa + n_ob, a), np.full(n_m + n_oa + n_ob, b),
                np.r_[bx.item[ga], bx.item[oa], bx.item[ob]],
                np.r_[ga, oa, np.full(n_ob, -1)], np.r_[gb, np.full(n_oa, -1), ob],
                np.r_[v, np.full(n_oa + n_ob, np.nan)],
                np.r_[out, np.full(n_oa, ONLY_A), np.full(n_ob, ONLY_B)]))
    cols = [np.concatenate([p[j] for p in parts]).astype(np.float64 if j == 5 else np.int64)
            for j in range(7)]
    return _PairMatches(*cols)


def match_annotators(annotations: pd.DataFrame, *, iou: float = 0.5, classes=None,
                     labelled: str = "all") -> pd.DataFrame:
    """Match the boxes of every pair of annotators, image by image, one to one by IoU.

    Parameters
    ----------
    annotations : DataFrame
        Detection annotations ``item_id``, ``annotator``, ``label``, ``x``, ``y``, ``w``,
        ``h`` [, ``box_id``] (a detection project's ``.annotations``). Without ``box_id``
        the project's ids ``{item_id}/{annotator}/a{k}`` are generated.
    iou : float, default=0.5
        Minimum IoU of a matched pair, in (0, 1].
    classes : sequence of str, optional
        Class order; labels outside it raise. Default: sorted labels seen.
    labelled : {'all', 'boxes'}, default='all'
        Which images each annotator labelled: ``'all'`` every image of the frame,
        ``'boxes'`` only the images where they drew a box. Pairs are compared on the
        images both labelled.

    Returns
    -------
    DataFrame
        One row per matched pair and per unmatched box, for every pair of annotators
        (``annotator_a < annotator_b``): ``item_id``, ``annotator_a``, ``annotator_b``,
        ``box_id_a``, ``box_id_b``, ``label_a``, ``label_b`` (missing on the side without a
        box), ``iou`` (NaN when unmatched), ``outcome`` in {``agree``, ``other_class``,
        ``only_a``, ``only_b``}. Sorted by item, annotator pair, outcome.

    Raises
    ------
    SchemaError
        Missing columns or values, coordinates that are not numbers or sizes <= 0, labels
        outside ``classes``, fewer than two annotators.

    Examples
    --------
    >>> import pandas as pd
    >>> ann = pd.DataFrame({"item_id": ["i", "i"], "annotator": ["a", "b"],
    ...                     "label": ["cat", "dog"], "x": [0, 0], "y": [0, 0],
    ...                     "w": [10, 10], "h": [10, 8]})
    >>> row = match_annotators(ann).iloc[0]
    >>> row["outcome"], float(row["iou"])
    ('other_class', 0.8)
    """
    func = "match_annotators"
    _check_iou(iou, func)
    bx = _encode_boxes(annotations, func, classes=classes, labelled=labelled)
    pm = _pair_matches(bx, iou)
    order = np.lexsort((pm.outcome, pm.pair_b, pm.pair_a, pm.item))
    pm = _PairMatches(*(getattr(pm, f)[order] for f in
                        ("pair_a", "pair_b", "item", "row_a", "row_b", "iou", "outcome")))
    ann_cats = list(map(str, bx.annotators))

    def side(values, rows, fill):
        return np.where(rows >= 0, values[np.maximum(rows, 0)] if len(values) else fill, fill)

    return pd.DataFrame({
        "item_id": pd.Categorical.from_codes(pm.item, categories=list(map(str, bx.items))),
        "annotator_a": pd.Categorical.from_codes(pm.pair_a, categories=ann_cats),
        "annotator_b": pd.Categorical.from_codes(pm.pair_b, categories=ann_cats),
        "box_id_a": side(bx.box_id, pm.row_a, None),
        "box_id_b": side(bx.box_id, pm.row_b, None),
        "label_a": pd.Categorical.from_codes(side(bx.label, pm.row_a, -1),
                                             categories=bx.classes),
        "label_b": pd.Categorical.from_codes(side(bx.label, pm.row_b, -1),
                                             categories=bx.classes),
        "iou": pm.iou,
        "outcome": pd.Categorical.from_codes(pm.outcome, categories=list(MATCH_OUTCOMES)),
    })


# ----------------------------------------------------------------------------- units, alpha


def _units(bx: _Boxes, pm: _PairMatches) -> tuple[np.ndarray, np.ndarray]:
    """Unit code of every box and the number of empty values of every unit."""
    n = len(bx.item)
    m = (pm.row_a >= 0) & (pm.row_b >= 0)
    graph = coo_matrix((np.ones(int(m.sum())), (pm.row_a[m], pm.row_b[m])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    # a second box of one annotator in a unit becomes a unit of its own
    dup = _cumcount(comp.astype(np.int64) * len(bx.annotators) + bx.ann) > 0
    comp = comp.astype(np.int64)
    comp[dup] = comp.max() + 1 + np.arange(int(dup.sum()))
    unit = np.unique(comp, return_inverse=True)[1].astype(np.int64)
    n_units = int(unit.max()) + 1 if n else 0
    present = np.bincount(unit, minlength=n_units)
    u_item = np.zeros(n_units, np.int64)
    u_item[unit] = bx.item
    n_empty = bx.labelled.sum(axis=1)[u_item] - present
    return unit, n_empty


def _iou_distance_alpha(unit: np.ndarray, xywh: np.ndarray, n_empty: np.ndarray,
                        seed: int = 0) -> float:
    """Krippendorff's alpha with the distance ``1 - IoU`` (empty vs box: 1, empty vs empty: 0).

    ``unit`` is the unit code of each box, ``n_empty`` the number of empty values of each
    unit. Coincidence form (Krippendorff 2011): ``alpha = 1 - D_o / D_e`` over the
    pairable values (units with at least two values).
    """
    n_units = len(n_empty)
    n_box_u = np.bincount(unit, minlength=n_units)
    m_u = n_box_u + n_empty
    ok_u = m_u >= 2
    keep = ok_u[unit]
    unit, xywh = unit[keep], xywh[keep]
    n_box_u, n_empty, m_u = n_box_u * ok_u, n_empty * ok_u, m_u * ok_u
    n = float(m_u.sum())
    n_b, n_e = int(len(unit)), float(n_empty.sum())
    if n < 2:
        return np.nan
    # observed: ordered pairs inside units, each weighted 1 / (m_u - 1)
    w_u = np.zeros(n_units)
    w_u[ok_u] = 1.0 / (m_u[ok_u] - 1)
    d_obs = (2.0 * n_box_u * n_empty * w_u).sum()   # box vs empty, distance 1
    r1, r2 = _pairs_within(unit)
    if len(r1):
        dist = 1.0 - coco_iou(xywh[r1].T, xywh[r2].T, np.zeros(len(r1), bool))
        d_obs += 2.0 * (dist * w_u[unit[r1]]).sum()
    d_obs /= n
    # expected: every ordered pair of distinct values over all units
    box_box = 0.0
    if n_b >= 2:
        if n_b <= _EXACT_EXPECTED:
            for s in range(0, n_b, 500):
                blk = xywh[s:s + 500]
                i = np.repeat(np.arange(len(blk)), n_b)
                j = np.tile(np.arange(n_b), len(blk))
                d = 1.0 - coco_iou(blk[i].T, xywh[j].T, np.zeros(len(i), bool))
                d[s + i == j] = 0.0
                box_box += d.sum()
        else:  # a seeded sample of ordered pairs i != j estimates the mean distance
            rng = np.random.default_rng(seed)
            i = rng.integers(0, n_b, _N_SAMPLE)
            j = (i + rng.integers(1, n_b, _N_SAMPLE)) % n_b
            d = 1.0 - coco_iou(xywh[i].T, xywh[j].T, np.zeros(_N_SAMPLE, bool))
            box_box = d.mean() * n_b * (n_b - 1)
    d_exp = (box_box + 2.0 * n_b * n_e) / (n * (n - 1))
    return float(1.0 - d_obs / d_exp) if d_exp > 0 else np.nan


# ----------------------------------------------------------------------------- agreement


def _kappa(la: np.ndarray, lb: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import cohen_kappa_score

    if not len(la) or (len(np.unique(la)) == 1 and np.array_equal(np.unique(la),
                                                                   np.unique(lb))):
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(la, lb, labels=np.arange(n_classes)))


def _pair_stats(bx: _Boxes, pm: _PairMatches) -> pd.DataFrame:
    n_ann = len(bx.annotators)
    rows = []
    for a in range(n_ann):
        for b in range(a + 1, n_ann):
            sel = (pm.pair_a == a) & (pm.pair_b == b)
            out = pm.outcome[sel]
            matched = out <= OTHER
            n_a = int((pm.row_a[sel] >= 0).sum())
            n_b = int((pm.row_b[sel] >= 0).sum())
            n_m = int(matched.sum())
            ra, rb = pm.row_a[sel][matched], pm.row_b[sel][matched]
            # units of this pair: matched pairs (2 boxes) and single boxes with one empty
            unit_a = np.arange(n_a)
            pos_b = np.r_[np.arange(n_m), n_a + np.arange(n_b - n_m)]
            only_a = pm.row_a[sel][out == ONLY_A]
            only_b = pm.row_b[sel][out == ONLY_B]
            xywh = np.r_[bx.xywh[ra], bx.xywh[only_a], bx.xywh[rb], bx.xywh[only_b]]
            unit = np.r_[unit_a, pos_b]
            n_units = n_a + n_b - n_m
            n_empty = np.r_[np.zeros(n_m, np.int64), np.ones(n_units - n_m, np.int64)]
            shared = bx.labelled[:, a] & bx.labelled[:, b]
            rows.append({
                "annotator_a": str(bx.annotators[a]), "annotator_b": str(bx.annotators[b]),
                "n_shared": int(shared.sum()), "n_boxes_a": n_a, "n_boxes_b": n_b,
                "n_matched": n_m, "n_agree": int((out == AGREE).sum()),
                "detection_f1": 2 * n_m / (n_a + n_b) if n_a + n_b else np.nan,
                "class_agreement": float((out == AGREE).sum() / n_m) if n_m else np.nan,
                "kappa": _kappa(bx.label[ra], bx.label[rb], len(bx.classes)),
                "mean_iou": float(pm.iou[sel][matched].mean()) if n_m else np.nan,
                "krippendorff_alpha": _iou_distance_alpha(unit, xywh, n_empty),
            })
    return pd.DataFrame(rows)


def detection_pairwise_agreement(annotations: pd.DataFrame, *, iou: float = 0.5,
                                 classes=None, labelled: str = "all") -> pd.DataFrame:
    """Box agreement of every pair of annotators (see :func:`match_annotators`).

    Parameters
    ----------
    annotations : DataFrame
        Detection annotations (see :func:`match_annotators`).
    iou : float, default=0.5
        Minimum IoU of a matched pair.
    classes : sequence of str, optional
        Class order. Default: sorted labels seen.
    labelled : {'all', 'boxes'}, default='all'
        Which images each annotator labelled (see :func:`match_annotators`).

    Returns
    -------
    DataFrame
        One row per pair: ``annotator_a``, ``annotator_b``, ``n_shared`` (images both
        labelled), ``n_boxes_a``, ``n_boxes_b`` (their boxes on those images),
        ``n_matched`` (one-to-one pairs with IoU >= ``iou``, any class), ``n_agree``
        (matched with the same class), ``detection_f1`` = ``2 n_matched / (n_boxes_a +
        n_boxes_b)`` (NaN when neither drew a box), ``class_agreement`` = ``n_agree /
        n_matched``, ``kappa`` (Cohen's kappa of the classes of matched boxes,
        ``sklearn.metrics.cohen_kappa_score``; NaN when undefined), ``mean_iou`` (of matched
        boxes), ``krippendorff_alpha`` (distance ``1 - IoU``; units: each matched pair, and
        each unmatched box with an empty value for the other annotator).
    """
    func = "pairwise_agreement"
    _check_iou(iou, func)
    bx = _encode_boxes(annotations, func, classes=classes, labelled=labelled)
    return _pair_stats(bx, _pair_matches(bx, iou))


def detection_agreement_summary(annotations: pd.DataFrame, *, iou: float = 0.5,
                                classes=None, labelled: str = "all") -> dict:
    """Overall box agreement of the annotators.

    Parameters
    ----------
    annotations : DataFrame
        Detection annotations (see :func:`match_annotators`).
    iou : float, default=0.5
        Minimum IoU of a matched pair.
    classes : sequence of str, optional
        Class order. Default: sorted labels seen.
    labelled : {'all', 'boxes'}, default='all'
        Which images each annotator labelled (see :func:`match_annotators`).

    Returns
    -------
    dict
        ``detection_f1``: ``2 * matched / (boxes_a + boxes_b)`` summed over every pair of
        annotators (matched pairs of any class). ``class_agreement``: share of matched
        pairs with the same class. ``mean_cohen_kappa``: mean over pairs of Cohen's kappa
        of matched boxes' classes (pairs with an undefined kappa left out). ``mean_iou``:
        over all matched pairs. ``krippendorff_alpha``: distance ``1 - IoU`` over the
        units (linked boxes of all annotators, see the module notes; an annotator without
        a box in a unit is an empty value at distance 1 from any box and 0 from another
        empty value). The expected disagreement is exact up to 3,000 boxes, else the
        box-to-box part is estimated from 1,000,000 random pairs (seed 0).
        ``iou_threshold``, ``n_items``, ``n_annotators``, ``n_boxes``, ``n_pairs``,
        ``n_matched``, ``n_units``.
    """
    func = "agreement_summary"
    _check_iou(iou, func)
    bx = _encode_boxes(annotations, func, classes=classes, labelled=labelled)
    pm = _pair_matches(bx, iou)
    pairs = _pair_stats(bx, pm)
    matched = pm.outcome <= OTHER
    n_sides = int((pm.row_a >= 0).sum() + (pm.row_b >= 0).sum())
    unit, n_empty = _units(bx, pm)
    kappas = pairs["kappa"].dropna()
    return {
        "detection_f1": 2 * int(matched.sum()) / n_sides if n_sides else np.nan,
        "class_agreement": float((pm.outcome == AGREE).sum() / matched.sum())
        if matched.any() else np.nan,
        "mean_cohen_kappa": float(kappas.mean()) if len(kappas) else np.nan,
        "mean_iou": float(pm.iou[matched].mean()) if matched.any() else np.nan,
        "krippendorff_alpha": _iou_distance_alpha(unit, bx.xywh, n_empty),
        "iou_threshold": float(iou),
        "n_items": int(len(bx.items)),
        "n_annotators": int(len(bx.annotators)),
        "n_boxes": int(len(bx.item)),
        "n_pairs": int(len(pairs)),
        "n_matched": int(matched.sum()),
        "n_units": int(len(n_empty)),
    }


def _check_iou(iou, func):
    check_fraction(iou, "iou", func, low=0.0)
    if iou <= 0:
        raise ValueError(f"The 'iou' parameter of {func} must be a float in (0, 1]. "
                         f"Got {iou!r} instead.")


# ----------------------------------------------------------------------------- quality


@dataclass
class _Reference:
    """Reference boxes (gold or consensus) as codes into the annotations' encoding."""

    item: np.ndarray        # int64 codes into bx.items
    xywh: np.ndarray        # (n, 4)
    label: np.ndarray       # int64 codes into bx.classes
    ref_id: np.ndarray      # object: gold box_id or consensus_id
    members: np.ndarray     # object: tuples of the annotation box ids behind a consensus box


def _reference_boxes(annotations, reference, func, *, iou, classes, labelled):
    """Encode the annotations and the reference boxes they are scored against.

    ``reference`` is gold boxes (a frame), or None / ``'majority'``: the majority-consensus
    boxes drawn by more than half of the image's annotators (see
    :func:`detection_annotator_quality`).
    """
    if isinstance(reference, str):
        check_option(reference, "reference", func, ("majority",))
        reference = None
    if reference is not None:
        check_columns(reference, ("item_id", "label", "x", "y", "w", "h"),
                      what="reference", func=func)
        if classes is None:
            classes = sorted(set(annotations["label"].astype(str))
                             | set(reference["label"].astype(str)))
        bx = _encode_boxes(annotations, func, classes=classes, labelled=labelled,
                           min_annotators=1)
        r_xywh = _coords(reference, "reference", func)
        r_label = pd.Index(bx.classes).get_indexer(reference["label"].astype(str))
        if (r_label < 0).any():
            unknown = sorted(set(reference["label"].astype(str).to_numpy(object)[r_label < 0]))
            raise SchemaError(
                f"{func}: reference uses label(s) {unknown[:10]} that are not in classes "
                f"{bx.classes[:20]}. Add them to classes or fix the reference labels.")
        # only the images of the annotations are scored; gold boxes elsewhere are ignored
        r_item = pd.Index(bx.items).get_indexer(
            reference["item_id"].astype(str).to_numpy(object))
        if "box_id" in reference.columns and not reference["box_id"].isna().any():
            r_id = reference["box_id"].astype(str).to_numpy(object)
        else:  # the project's generated ids: {item_id}/b{k}
            r_id = (reference["item_id"].astype(str) + "/b" + pd.Series(
                _cumcount(pd.factorize(reference["item_id"].astype(str))[0]),
                index=reference.index).astype(str)).to_numpy(object)
        on = r_item >= 0
        members = pd.Series([()] * int(on.sum()), dtype=object).to_numpy()
        return bx, _Reference(r_item[on], r_xywh[on], r_label[on], r_id[on], members)
    from .consensus import box_consensus

    bx = _encode_boxes(annotations, func, classes=classes, labelled=labelled)
    cons = box_consensus(annotations, "majority", iou=iou, classes=bx.classes)
    c_item = pd.Index(bx.items).get_indexer(cons["item_id"].astype(str).to_numpy(object))
    keep = 2 * cons["support"].to_numpy() > bx.labelled.sum(axis=1)[c_item]
    members = pd.Series([tuple(m) for m in cons["box_ids"].to_numpy()[keep]],
                        dtype=object).to_numpy()
    return bx, _Reference(
        c_item[keep], cons[["x", "y", "w", "h"]].to_numpy(float)[keep],
        pd.Index(bx.classes).get_indexer(cons["label"].astype(str))[keep],
        cons["consensus_id"].astype(str).to_numpy(object)[keep], members)


def detection_annotator_quality(annotations: pd.DataFrame, reference=None, *,
                                iou: float = 0.5, classes=None, labelled: str = "all",
                                min_support: int = 1) -> pd.DataFrame:
    """How well each annotator's boxes match reference boxes (gold, or the consensus).

    Parameters
    ----------
    annotations : DataFrame
        Detection annotations (see :func:`match_annotators`).
    reference : DataFrame or {'majority'}, optional
        Gold boxes ``item_id``, ``label``, ``x``, ``y``, ``w``, ``h`` (e.g. a project's
        ``.boxes``), for the images of ``annotations`` (one without gold boxes is a
        negative image; gold boxes of other images are ignored). ``None`` or ``'majority'``: the
        majority-consensus boxes of :func:`workbench.detection.box_consensus` (method
        ``'majority'``, same ``iou``) drawn by more than half of the image's annotators
        (2 of 3); the scored annotator is part of that consensus.
    iou : float, default=0.5
        Minimum IoU of a match (one to one, Hungarian, class-agnostic).
    classes : sequence of str, optional
        Class order. Default: sorted labels of annotations and reference.
    labelled : {'all', 'boxes'}, default='all'
        Which images each annotator labelled (see :func:`match_annotators`); each
        annotator is scored on those images only.
    min_support : int, default=1
        Reference classes with fewer boxes are not candidates for ``worst_class``.

    Returns
    -------
    DataFrame
        One row per annotator (sorted by name): ``annotator``, ``n_boxes``,
        ``n_reference`` (reference boxes on their images), ``n_matched``, ``miss_rate``
        (reference boxes left unmatched), ``extra_rate`` (their boxes matching no
        reference box), ``mean_iou`` (tightness of matched boxes), ``class_accuracy``
        (matched boxes with the reference class), ``worst_class`` (reference class with
        the lowest recall: matched with the right class over its reference boxes),
        ``worst_class_recall``.
    """
    func = "annotator_quality"
    _check_iou(iou, func)
    check_int(min_support, "min_support", func, minimum=1)
    bx, ref = _reference_boxes(annotations, reference, func, iou=iou, classes=classes,
                               labelled=labelled)
    r_item, r_xywh, r_label, lab = ref.item, ref.xywh, ref.label, bx.labelled
    k = len(bx.classes)
    rows = []
    for a, name in enumerate(bx.annotators):
        mine = np.flatnonzero(bx.ann == a)
        refs = np.flatnonzero(lab[r_item, a])
        ma, mr, v = _match_sets(bx.item[mine], bx.xywh[mine], r_item[refs], r_xywh[refs], iou)
        n_ref, n_box, n_m = len(refs), len(mine), len(ma)
        right = bx.label[mine[ma]] == r_label[refs[mr]]
        support = np.bincount(r_label[refs], minlength=k)
        hits = np.bincount(r_label[refs[mr]][right], minlength=k)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.where(support >= min_support, hits / support, np.inf)
        worst = int(np.argmin(recall)) if k else -1
        has = k > 0 and np.isfinite(recall[worst])
        rows.append({
            "annotator": str(name), "n_boxes": n_box, "n_reference": n_ref, "n_matched": n_m,
            "miss_rate": 1 - n_m / n_ref if n_ref else np.nan,
            "extra_rate": 1 - n_m / n_box if n_box else np.nan,
            "mean_iou": float(v.mean()) if n_m else np.nan,
            "class_accuracy": float(right.mean()) if n_m else np.nan,
            "worst_class": bx.classes[worst] if has else None,
            "worst_class_recall": float(recall[worst]) if has else np.nan,
        })
    out = pd.DataFrame(rows)
    out["worst_class"] = out["worst_class"].astype("str")
    return out


BOX_OUTCOMES = ("match", "loose", "wrong_class", "extra", "missed")


def _take(values: np.ndarray, rows: np.ndarray, missing) -> np.ndarray:
    """``values[rows]`` as objects, ``missing`` where ``rows`` is -1."""
    out = pd.Series([missing] * len(rows), dtype=object).to_numpy(copy=True)
    ok = rows >= 0
    out[ok] = values[rows[ok]]
    return out


def annotator_box_outcomes(annotations: pd.DataFrame, reference=None, *, iou: float = 0.5,
                           loose_iou: float = 0.7, classes=None,
                           labelled: str = "all") -> pd.DataFrame:
    """Every annotator box, and every reference box an annotator missed, with its outcome.

    The per-box view of :func:`detection_annotator_quality` (same reference, same one-to-one
    matching): the boxes behind an annotator's miss rate, extra-box rate and tightness.

    Parameters
    ----------
    annotations : DataFrame
        Detection annotations (see :func:`match_annotators`).
    reference : DataFrame or {'majority'}, optional
        Gold boxes, or None / ``'majority'`` for the majority-consensus boxes (see
        :func:`detection_annotator_quality`).
    iou : float, default=0.5
        Minimum IoU of a match.
    loose_iou : float, default=0.7
        A matched box of the right class with a lower IoU is ``loose``.
    classes : sequence of str, optional
        Class order. Default: sorted labels of annotations and reference.
    labelled : {'all', 'boxes'}, default='all'
        Which images each annotator labelled (see :func:`match_annotators`).

    Returns
    -------
    DataFrame
        One row per annotator box and per (annotator, reference box left unmatched):
        ``annotator``, ``item_id``, ``box_id`` (the annotator's box; missing for ``missed``),
        ``reference_id`` (the gold ``box_id`` or the ``consensus_id``; missing for
        ``extra``),
        ``reference_box_ids`` (tuple: the annotation boxes fused into that consensus box,
        empty for gold boxes), ``label``, ``reference_label`` (missing on the side without a
        box), ``iou`` (NaN when
        unmatched), ``outcome`` in {``match``, ``loose`` (right class, ``iou`` below
        ``loose_iou``), ``wrong_class`` (matched, another class), ``extra`` (matches no
        reference box), ``missed`` (a reference box of an image the annotator labelled,
        left unmatched)}. Per annotator, ``missed`` rows / reference boxes is
        :func:`detection_annotator_quality`'s ``miss_rate`` and ``extra`` rows / boxes its
        ``extra_rate``. Sorted by annotator, item, outcome.

    Examples
    --------
    >>> import pandas as pd
    >>> ann = pd.DataFrame({"item_id": ["i"] * 5, "annotator": ["a", "b", "c", "a", "b"],
    ...                     "label": ["cat"] * 5, "x": [0, 0, 0, 50, 50], "y": [0] * 5,
    ...                     "w": [10, 10, 10, 10, 10], "h": [10, 10, 10, 10, 10]})
    >>> out = annotator_box_outcomes(ann)
    >>> out.loc[out["annotator"] == "c", ["box_id", "outcome"]].fillna("-").to_numpy().tolist()
    [['i/c/a0', 'match'], ['-', 'missed']]
    """
    func = "annotator_box_outcomes"
    _check_iou(iou, func)
    check_fraction(loose_iou, "loose_iou", func)
    bx, ref = _reference_boxes(annotations, reference, func, iou=iou, classes=classes,
                               labelled=labelled)
    classes_arr = np.asarray(bx.classes, object)
    parts = []
    for a, name in enumerate(bx.annotators):
        mine = np.flatnonzero(bx.ann == a)
        refs = np.flatnonzero(bx.labelled[ref.item, a])
        ma, mr, v = _match_sets(bx.item[mine], bx.xywh[mine], ref.item[refs],
                                ref.xywh[refs], iou)
        box_ref = np.full(len(mine), -1)
        box_ref[ma] = refs[mr]
        box_iou = np.full(len(mine), np.nan)
        box_iou[ma] = v
        matched = box_ref >= 0
        right = matched.copy()
        right[matched] = bx.label[mine[matched]] == ref.label[box_ref[matched]]
        outcome = np.where(~matched, "extra", np.where(
            ~right, "wrong_class", np.where(box_iou < loose_iou, "loose", "match")))
        missed = np.setdiff1d(refs, refs[mr])
        n_m = len(missed)
        ref_rows = np.r_[box_ref, missed]  # the reference box of every row, -1 = none
        parts.append(pd.DataFrame({
            "annotator": str(name),
            "item_id": np.r_[bx.items[bx.item[mine]], bx.items[ref.item[missed]]],
            "box_id": np.r_[bx.box_id[mine], np.full(n_m, None, object)],
            "reference_id": _take(ref.ref_id, ref_rows, None),
            "reference_box_ids": _take(ref.members, ref_rows, ()),
            "label": np.r_[classes_arr[bx.label[mine]], np.full(n_m, None, object)],
            "reference_label": _take(classes_arr[ref.label], ref_rows, None),
            "iou": np.r_[box_iou, np.full(n_m, np.nan)],
            "outcome": np.r_[outcome, np.full(n_m, "missed", object)],
        }))
    out = pd.concat(parts, ignore_index=True)
    out["outcome"] = pd.Categorical(out["outcome"], categories=list(BOX_OUTCOMES))
    return out.sort_values(["annotator", "item_id", "outcome"], kind="stable",
                           ignore_index=True)


# ----------------------------------------------------------------------------- confused pairs


def detection_confused_pairs(annotations: pd.DataFrame, *, iou: float = 0.5, classes=None,
                             labelled: str = "all", min_count: int = 1) -> pd.DataFrame:
    """Class pairs swapped on matched boxes, with the images and boxes behind each.

    Parameters
    ----------
    annotations : DataFrame
        Detection annotations (see :func:`match_annotators`).
    iou : float, default=0.5
        Minimum IoU of a matched pair.
    classes : sequence of str, optional
        Class order (``class_a`` comes before ``class_b`` in it). Default: sorted labels.
    labelled : {'all', 'boxes'}, default='all'
        Which images each annotator labelled (see :func:`match_annotators`).
    min_count : int, default=1
        Drop pairs seen fewer times.

    Returns
    -------
    DataFrame
        ``class_a``, ``class_b``, ``n_pairs`` (matched box pairs with these two classes),
        ``n_items`` (distinct images), ``share`` (of all ``other_class`` pairs), ``rate``
        (``n_pairs`` over the matched pairs where either box has ``class_a`` or
        ``class_b``), ``item_ids`` (sorted), ``box_ids`` (sorted ids of the boxes of both
        sides). Sorted by ``n_pairs`` descending, then class order.
    """
    func = "confused_pairs"
    _check_iou(iou, func)
    check_int(min_count, "min_count", func, minimum=1)
    bx = _encode_boxes(annotations, func, classes=classes, labelled=labelled)
    pm = _pair_matches(bx, iou)
    k = len(bx.classes)
    m = pm.outcome <= OTHER
    la, lb = bx.label[pm.row_a[m]], bx.label[pm.row_b[m]]
    lo, hi = np.minimum(la, lb), np.maximum(la, lb)
    touch = np.bincount(lo, minlength=k) + np.bincount(hi, minlength=k) - \
        np.bincount(lo[lo == hi], minlength=k)
    diff = lo != hi
    cols = ["class_a", "class_b", "n_pairs", "n_items", "share", "rate", "item_ids", "box_ids"]
    if not diff.any():
        return pd.DataFrame({c: pd.Series([], dtype="str" if c.startswith("class") else
                                          ("object" if c.endswith("ids") else "float64"))
                             for c in cols})
    key = lo[diff] * k + hi[diff]
    item = pm.item[m][diff]
    ra, rb = pm.row_a[m][diff], pm.row_b[m][diff]
    rows = []
    total = int(diff.sum())
    for u in np.unique(key):
        s = key == u
        a, b = int(u // k), int(u % k)
        n_pairs = int(s.sum())
        rows.append({
            "class_a": bx.classes[a], "class_b": bx.classes[b], "n_pairs": n_pairs,
            "n_items": int(len(np.unique(item[s]))), "share": n_pairs / total,
            "rate": n_pairs / (touch[a] + touch[b] - n_pairs),
            "item_ids": sorted(map(str, bx.items[np.unique(item[s])])),
            "box_ids": sorted(map(str, np.r_[bx.box_id[ra[s]], bx.box_id[rb[s]]])),
        })
    out = pd.DataFrame(rows, columns=cols)
    out = out[out["n_pairs"] >= min_count]
    for c in ("class_a", "class_b"):
        out[c] = out[c].astype("str")
    return out.sort_values("n_pairs", ascending=False, kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- per slice

_BY_MEASURES = ("detection_f1", "class_agreement", "mean_iou")
_BOOT_CELLS = 20_000_000   # resample weights held at once (n_boot x images of a slice)


def _ratios(sums: np.ndarray) -> np.ndarray:
    """F1, class agreement, mean IoU from summed (sides, matched, agree, iou) columns."""
    sides, matched, agree, iou_sum = sums[..., 0], sums[..., 1], sums[..., 2], sums[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([2 * matched / sides, agree / matched, iou_sum / matched], axis=-1)


def detection_agreement_by(annotations: pd.DataFrame, project_or_items: Any, by, *,
                           n_boot: int = 200, confidence_level: float = 0.95, seed: int = 0,
                           classes=None, min_items: int = 2, iou: float = 0.5,
                           labelled: str = "all") -> pd.DataFrame:
    """Box agreement per metadata slice (camera, site, batch...) with bootstrap intervals.

    :func:`workbench.agreement_by` calls this for annotations with box columns.

    Parameters
    ----------
    annotations : DataFrame
        Detection annotations (see :func:`match_annotators`).
    project_or_items : Project or DataFrame
        Where the image metadata lives: a project (its ``items``) or a frame with
        ``item_id`` and the ``by`` column(s).
    by : str or list of str
        Image metadata column(s) to group by.
    n_boot : int, default=200
        Bootstrap resamples of the slice's images. 0 disables the intervals.
    confidence_level : float, default=0.95
        Width of the percentile intervals.
    seed : int, default=0
        Seed of the bootstrap (results are reproducible).
    classes : sequence of str, optional
        Class order. Default: sorted labels seen.
    min_items : int, default=2
        Slices with fewer scored images are dropped.
    iou : float, default=0.5
        Minimum IoU of a matched pair (see :func:`match_annotators`).
    labelled : {'all', 'boxes'}, default='all'
        Which images each annotator labelled (see :func:`match_annotators`).

    Returns
    -------
    DataFrame
        One row per slice, sorted by ``by``: the ``by`` column(s), ``n_items`` (scored
        images: at least one box of a compared pair), ``n_boxes`` (annotator boxes on them),
        then ``detection_f1``, ``class_agreement``, ``mean_iou`` (pooled over every pair of
        annotators, as :func:`detection_agreement_summary`) each with ``<measure>_low`` /
        ``<measure>_high``. Images whose slice value is missing form no slice.

    Notes
    -----
    The three measures are ratios of sums over images (``2 matched / boxes of both sides``,
    ``agreeing / matched``, ``IoU sum / matched``), so an image is the resampling unit: the
    percentile bootstrap draws the slice's images with replacement (multinomial weights,
    all resamples at once with numpy) and recomputes the ratios. The percentile interval is
    used rather than ``scipy.stats.bootstrap``'s default BCa, whose jackknife acceleration
    is undefined (NaN with a warning) for a slice with perfect agreement; that slice gets
    the interval [1, 1].
    """
    func = "agreement_by"
    _check_iou(iou, func)
    n_boot = check_int(n_boot, "n_boot", func, minimum=0)
    confidence_level = check_fraction(confidence_level, "confidence_level", func)
    check_int(min_items, "min_items", func, minimum=1)
    by_cols = [by] if isinstance(by, str) else list(by)
    items = (project_or_items if isinstance(project_or_items, pd.DataFrame)
             else getattr(project_or_items, "items", project_or_items))
    check_columns(items, ["item_id", *by_cols], what="items", func=func)
    bx = _encode_boxes(annotations, func, classes=classes, labelled=labelled)
    pm = _pair_matches(bx, iou)
    n_items = len(bx.items)
    matched = pm.outcome <= OTHER
    terms = np.stack([
        np.bincount(pm.item, weights=(pm.row_a >= 0).astype(float) + (pm.row_b >= 0),
                    minlength=n_items),
        np.bincount(pm.item, weights=matched, minlength=n_items),
        np.bincount(pm.item, weights=pm.outcome == AGREE, minlength=n_items),
        np.bincount(pm.item[matched], weights=pm.iou[matched], minlength=n_items),
    ], axis=1)
    n_boxes = np.bincount(bx.item, minlength=n_items)
    meta = items[["item_id", *by_cols]].copy()
    meta["item_id"] = meta["item_id"].astype(str)
    meta = meta.drop_duplicates("item_id").set_index("item_id")
    meta = meta.reindex(pd.Index(bx.items.astype(str)))
    keep = (terms[:, 0] > 0) & meta.notna().all(axis=1).to_numpy()
    if not keep.any():
        raise SchemaError(f"{func}: no image has boxes of two annotators to compare and a "
                          f"value in {by_cols}. Check that item_id matches the items.")
    groups = meta[keep].groupby(by_cols, sort=True, observed=True).indices
    kept = np.flatnonzero(keep)
    rng = np.random.default_rng(seed)
    q = [(1 - confidence_level) / 2, 1 - (1 - confidence_level) / 2]
    rows = []
    for key, pos in groups.items():
        idx = kept[pos]
        n = len(idx)
        if n < min_items:
            continue
        t = terms[idx]
        est = _ratios(t.sum(axis=0))
        low = high = np.full(len(_BY_MEASURES), np.nan)
        if n_boot:
            boots = []
            step = max(1, _BOOT_CELLS // n)
            for s in range(0, n_boot, step):
                w = rng.multinomial(n, np.full(n, 1.0 / n), size=min(step, n_boot - s))
                boots.append(_ratios(w @ t))
            b = np.concatenate(boots)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN measure
                low, high = np.nanquantile(b, q, axis=0)
        row = dict(zip(by_cols, key if isinstance(key, tuple) else (key,), strict=True))
        row.update(n_items=n, n_boxes=int(n_boxes[idx].sum()))
        for j, name in enumerate(_BY_MEASURES):
            row.update({name: float(est[j]), f"{name}_low": float(low[j]),
                        f"{name}_high": float(high[j])})
        rows.append(row)
    cols = [*by_cols, "n_items", "n_boxes"]
    for name in _BY_MEASURES:
        cols += [name, f"{name}_low", f"{name}_high"]
    return pd.DataFrame(rows, columns=cols)
