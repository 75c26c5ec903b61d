"""Consensus boxes: the boxes of several annotators fused into one box per object.

:func:`box_consensus` (reached through :func:`workbench.consensus` when the annotations have
box columns) clusters the annotators' boxes of each image by IoU and fuses every cluster with
weighted boxes fusion (Solovyev et al., 2021), exactly as ``ensemble_boxes.weighted_boxes_fusion``
does when it is called on one image with one "model" per annotator, every box scored 1 and
every annotator weighted 1 -- but for all images at once: the sequential clustering runs in
rounds, round ``r`` taking the ``r``-th box of every image (numpy over the images, a Python
loop only over the rounds, i.e. the largest number of boxes on one image).

The clustering (WBF's own)
--------------------------
Boxes are visited in WBF's order: by score, descending; every box here scores 1, so the order
is the tie order of ``ensemble-boxes``, i.e. the reverse of the order the boxes were passed in:
annotators in reverse sorted order, each annotator's boxes in reverse row order. A box joins
the existing cluster whose *fused* box it overlaps most when that IoU is above ``iou``
(strictly, as WBF), else it starts a new cluster. The fused box is the score-weighted mean of
the member boxes (here the plain mean).

* ``method='wbf'`` clusters per class, as ``weighted_boxes_fusion`` does: boxes of different
  classes never fuse, the cluster's class is its members' class, and ``confidence`` is WBF's
  fused score (``min(n_members, n_annotators) / n_annotators`` with unit scores).
* ``method='majority'`` and ``method='dawid_skene'`` cluster class-agnostically (WBF with
  every box given the same class), so a box two annotators call "cat" and one calls "dog" is
  one object with three votes. Each annotator votes once per cluster (the first of its boxes
  in the visiting order). ``'majority'`` takes the most frequent class (ties: the class that
  comes first in the class order); ``'dawid_skene'`` fits
  :func:`workbench.dawid_skene`'s EM on the cluster-level votes (one "item" per cluster), so
  an annotator who habitually confuses two classes is discounted.
  ``confidence`` = the probability of the chosen class (its vote share, or the Dawid-Skene
  posterior) x ``support / n_annotators``: how sure we are that the object exists *and* has
  that class.

``support`` is the number of distinct annotators with a box in the cluster. A box drawn by
one annotator only is kept (``support == 1``), never dropped: filter on ``support`` or
``confidence`` yourself. ``n_annotators`` is the number of annotators in the frame: every
annotator is taken to have seen every image of the frame (an image an annotator left empty
counts as "no object there"), as WBF counts every model for every image.

When the image sizes are known (``items=``, or ``width``/``height`` columns) the boxes are
normalised to [0, 1] and clipped, as WBF expects, so the arithmetic (and every IoU exactly at
the threshold) is WBF's; boxes of zero area after clipping are skipped with a warning; the
result is scaled back to pixels. Without sizes the same algorithm runs on pixels (IoU and means
do not depend on the scale; only the clipping and the last bits of rounding differ). Fused
boxes are rounded to float32 as ``ensemble-boxes`` does.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_columns, check_fraction, check_option
from ..errors import SchemaError

__all__ = ["box_consensus", "BOX_CONSENSUS_METHODS", "BOX_CONSENSUS_COLUMNS"]

BOX_CONSENSUS_METHODS = ("majority", "wbf", "dawid_skene")
BOX_CONSENSUS_COLUMNS = ("item_id", "consensus_id", "label", "x", "y", "w", "h", "support",
                         "confidence", "box_ids")


# --------------------------------------------------------------------------------------
# the clustering, vectorised over groups (images, or image x class)
# --------------------------------------------------------------------------------------
def wbf_clusters(group: np.ndarray, boxes: np.ndarray, iou: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WBF's sequential clustering in every group at once.

    Parameters
    ----------
    group : ndarray of shape (n,)
        Group code of every box, non-decreasing (boxes sorted by group, each group's boxes in
        visiting order).
    boxes : ndarray of shape (n, 4)
        ``x1, y1, x2, y2``.
    iou : float
        A box joins the cluster whose fused box it overlaps most if that IoU is > ``iou``.

    Returns
    -------
    cluster : ndarray of shape (n,)
        Cluster code of every box; clusters are numbered by group, then creation order.
    fused : ndarray of shape (n_clusters, 4)
        The fused (mean) box of every cluster.
    size : ndarray of shape (n_clusters,)
        Number of boxes in every cluster.
    """
    n = len(group)
    if n == 0:
        return np.empty(0, np.int64), np.empty((0, 4)), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, n])
    pos = np.arange(n) - np.repeat(starts, sizes)
    gcode = np.repeat(np.arange(len(starts)), sizes)
    by_round = np.argsort(pos, kind="stable")
    round_bounds = np.r_[0, np.cumsum(np.bincount(pos))]
    # cluster slots: a group of s boxes has at most s clusters -> slots starts[g] + k
    acc = np.zeros((n, 4), np.float32)
    count = np.zeros(n, np.int64)
    fused = np.zeros((n, 4))
    n_clusters = np.zeros(len(starts), np.int64)
    local = np.empty(n, np.int64)
    for r in range(len(round_bounds) - 1):
        idx = by_round[round_bounds[r]:round_bounds[r + 1]]
        g = gcode[idx]
        k = n_clusters[g]
        b = boxes[idx]
        c_max = int(k.max())
        if c_max == 0:
            target = k
        else:
            slots = starts[g][:, None] + np.arange(c_max)[None, :]
            valid = np.arange(c_max)[None, :] < k[:, None]
            f = fused[np.where(valid, slots, 0)]  # (A, C, 4)
            ix1 = np.maximum(f[..., 0], b[:, None, 0])
            iy1 = np.maximum(f[..., 1], b[:, None, 1])
            ix2 = np.minimum(f[..., 2], b[:, None, 2])
            iy2 = np.minimum(f[..., 3], b[:, None, 3])
            inter = np.maximum(ix2 - ix1, 0) * np.maximum(iy2 - iy1, 0)
            area_f = (f[..., 2] - f[..., 0]) * (f[..., 3] - f[..., 1])
            area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                ious = inter / (area_f + area_b - inter)
            ious = np.where(valid, ious, -1.0)
            best = np.argmax(ious, axis=1)
            best_iou = ious[np.arange(len(idx)), best]
            target = np.where(best_iou > iou, best, k)
        n_clusters[g] = np.maximum(k, target + 1)
        slot = starts[g] + target
        # one box per group per round: no repeated slots. WBF keeps a fused box in float32
        # (``get_weighted_box``) and a one-box cluster as the box itself: so do we
        acc[slot] = (acc[slot].astype(np.float64) + b).astype(np.float32)
        count[slot] += 1
        mean = (acc[slot].astype(np.float64) / count[slot][:, None]).astype(np.float32)
        fused[slot] = np.where(count[slot][:, None] == 1, b, mean)
        local[idx] = target
    # compact slots -> cluster codes (group order, then creation order)
    offsets = np.r_[0, np.cumsum(n_clusters)[:-1]]
    cluster = offsets[gcode] + local
    used = (np.repeat(starts, n_clusters)
            + np.arange(int(n_clusters.sum())) - np.repeat(offsets, n_clusters))
    return cluster, fused[used], count[used]


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _image_sizes(annotations: pd.DataFrame, items: Any, func: str) -> np.ndarray | None:
    """(width, height) per annotation row, or None when the sizes are unknown."""
    if items is None:
        if {"width", "height"} <= set(annotations.columns):
            sizes = annotations[["width", "height"]]
            return sizes.to_numpy(dtype=float)
        return None
    frame = items if isinstance(items, pd.DataFrame) else getattr(items, "items", items)
    check_columns(frame, ["item_id", "width", "height"], what="items", func=func)
    frame = frame.drop_duplicates("item_id")
    index = pd.Index(frame["item_id"].astype(str))
    pos = index.get_indexer(annotations["item_id"].astype(str))
    if (pos < 0).any():
        missing = sorted(set(annotations["item_id"].astype(str)[pos < 0]))
        raise SchemaError(f"{func}: items has no row for item(s) {missing[:5]} of the annotations. "
                          "Pass the project (or its items) the annotations belong to.")
    sizes = frame[["width", "height"]].to_numpy(dtype=float)[pos]
    if not (np.isfinite(sizes) & (sizes > 0)).all():
        bad = sorted(set(annotations["item_id"].astype(str)[~(sizes > 0).all(axis=1)]))
        raise SchemaError(f"{func}: items has no positive width/height for item(s) {bad[:5]}. "
                          "Fill them in (the project reads them from the image files).")
    return sizes


def _xyxy(annotations: pd.DataFrame, func: str) -> np.ndarray:
    from .matching import _coords

    xywh = _coords(annotations, "annotations", func)
    return np.column_stack([xywh[:, 0], xywh[:, 1], xywh[:, 0] + xywh[:, 2],
                            xywh[:, 1] + xywh[:, 3]])


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": pd.array([], dtype="str"), "consensus_id": pd.array([], dtype="str"),
        "label": pd.array([], dtype="str"), "x": np.empty(0), "y": np.empty(0),
        "w": np.empty(0), "h": np.empty(0), "support": np.empty(0, np.int64),
        "confidence": np.empty(0), "box_ids": np.empty(0, dtype=object)})


# --------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------
def box_consensus(annotations: pd.DataFrame, method: str = "majority", *, iou: float = 0.55,
                  items: Any = None, classes=None, smoothing: float = 2.0, max_iter: int = 100,
                  tol: float = 1e-6) -> pd.DataFrame:
    """Consensus boxes of several annotators: clustered by IoU, fused, classed, counted.

    See the module docstring for the clustering. :func:`workbench.consensus` calls this for
    annotations with box columns ``x, y, w, h``.

    Parameters
    ----------
    annotations : DataFrame
        Annotators' boxes ``item_id``, ``annotator``, ``label``, ``x``, ``y``, ``w``, ``h``
        (pixels) [, ``box_id``] [, ``width``, ``height``], e.g. ``project.annotations``.
        Without ``box_id`` the frame's index (as text) names the boxes.
    method : {'majority', 'wbf', 'dawid_skene'}, default='majority'
        ``'wbf'``: weighted boxes fusion per class (ensemble-boxes' semantics);
        ``'majority'`` / ``'dawid_skene'``: class-agnostic clusters, class by majority vote /
        Dawid-Skene over the cluster's votes.
    iou : float, default=0.55
        A box joins a cluster when its IoU with the cluster's fused box is above this
        (``weighted_boxes_fusion``'s ``iou_thr``, same default).
    items : DataFrame or project, optional
        ``item_id``, ``width``, ``height`` of the images (or a project: its ``items``); boxes
        are then clipped to the image first. Default: ``width``/``height`` columns of the
        annotations if present, else no clipping.
    classes : sequence of str, optional
        Class order (ties of ``'majority'`` go to the earlier class). Default: sorted labels.
    smoothing, max_iter, tol
        Dawid-Skene options (see :func:`workbench.dawid_skene`).

    Returns
    -------
    DataFrame
        One row per consensus box, sorted by ``item_id`` then ``confidence`` (descending):
        ``item_id``, ``consensus_id`` (``<item_id>/c<k>``, ``k`` counting from 0 in this
        order), ``label``, ``x``, ``y``, ``w``, ``h`` (pixels), ``support`` (distinct
        annotators who drew it), ``confidence`` (in [0, 1]), ``box_ids`` (the member boxes'
        ``box_id``, a list of str in visiting order; a list rather than joined text, so that
        any character may appear in a box id).

    Raises
    ------
    SchemaError
        If a column is missing, a coordinate is not a number, ``w``/``h`` is not positive,
        a label is outside ``classes`` or an image's size is unknown.

    Examples
    --------
    >>> import pandas as pd
    >>> ann = pd.DataFrame({"item_id": ["a"] * 4, "annotator": ["x", "y", "z", "x"],
    ...                     "label": ["cat", "cat", "dog", "cat"],
    ...                     "x": [10, 11, 10, 50], "y": [10, 10, 11, 50],
    ...                     "w": [20, 20, 20, 5], "h": [20, 20, 20, 5]})
    >>> box_consensus(ann)[["consensus_id", "label", "support", "confidence"]].round(3)
      consensus_id label  support  confidence
    0         a/c0   cat        3       0.667
    1         a/c1   cat        1       0.333
    """
    func = "consensus"
    check_option(method, "method", func, BOX_CONSENSUS_METHODS)
    iou = check_fraction(iou, "iou", func)
    check_columns(annotations, ["item_id", "annotator", "label", "x", "y", "w", "h"],
                  what="annotations", func=func)
    for col in ("item_id", "annotator", "label"):
        if annotations[col].isna().any():
            rows = annotations.index[annotations[col].isna()][:5].tolist()
            raise SchemaError(f"{func}: annotations has missing values in column {col!r} "
                              f"(rows {rows}). Every box needs an item_id, an annotator and a "
                              "label; drop those rows.")
    if annotations.empty:
        return _empty()
    boxes = _xyxy(annotations, func)
    sizes = _image_sizes(annotations, items, func)
    keep = np.ones(len(boxes), bool)
    if sizes is not None:  # WBF's own arithmetic: normalised [0, 1] coordinates
        scale = np.tile(sizes, 2)
        boxes = np.clip(boxes / scale, 0.0, 1.0)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not keep.all():
            rows = annotations.index[~keep][:5].tolist()
            warnings.warn(f"{func}: {int((~keep).sum())} box(es) lie outside their image "
                          f"(rows {rows}) and are skipped.", stacklevel=3)
    item, items_u = pd.factorize(annotations["item_id"].astype(str).to_numpy(), sort=True)
    ann, annotators = pd.factorize(annotations["annotator"].astype(str).to_numpy(), sort=True)
    labels = annotations["label"].astype(str).to_numpy()
    if classes is None:
        lab, class_u = pd.factorize(labels, sort=True)
        class_list = [str(c) for c in class_u]
    else:
        class_list = [str(c) for c in classes]
        lab = pd.Index(class_list).get_indexer(labels)
        if (lab < 0).any():
            unknown = sorted(set(labels[lab < 0]))
            raise SchemaError(f"{func}: annotations use label(s) {unknown[:10]} that are not in "
                              f"classes {class_list[:20]}. Add them to classes or fix the labels.")
    box_id = (annotations["box_id"].astype(str).to_numpy() if "box_id" in annotations.columns
              else annotations.index.astype(str).to_numpy())
    n_ann = len(annotators)
    rows = np.flatnonzero(keep)
    item, ann, lab, boxes = item[rows], ann[rows], lab[rows], boxes[rows]
    if sizes is None:
        scale = np.ones((len(rows), 4))
    else:
        scale = scale[rows]
    # visiting order: per group, the reverse of (annotator, row) order (WBF's tie order)
    per_class = method == "wbf"
    group_key = item * len(class_list) + lab if per_class else item
    order = np.lexsort((-np.arange(len(rows)), -ann, group_key))
    group_key, item, ann, lab, boxes = (group_key[order], item[order], ann[order], lab[order],
                                        boxes[order])
    cluster, fused, size = wbf_clusters(group_key, boxes, iou)
    n_cl = len(size)
    # one vote per (cluster, annotator): the first of the annotator's boxes in visiting order
    vote_key = cluster * n_ann + ann
    _, first = np.unique(vote_key, return_index=True)
    v_cluster, v_ann, v_lab = cluster[first], ann[first], lab[first]
    support = np.bincount(v_cluster, minlength=n_cl)
    k = len(class_list)
    if per_class:
        label = np.empty(n_cl, np.int64)
        label[cluster] = lab  # every member of a per-class cluster has its class
        conf = np.minimum(size, n_ann) / n_ann
    else:
        counts = np.bincount(v_cluster * k + v_lab, minlength=n_cl * k).reshape(n_cl, k)
        if method == "majority":
            from ..agreement import _majority_codes

            label, top, _ = _majority_codes(counts)
            p_class = top / support
        else:
            from ..agreement import _check_dawid_skene, _dawid_skene, _Encoded

            enc = _Encoded(item=v_cluster, annotator=v_ann, label=v_lab,
                           items=np.arange(n_cl).astype(object), annotators=annotators,
                           classes=class_list)
            res = _dawid_skene(enc, smoothing, _check_dawid_skene(smoothing, max_iter, func), tol)
            post = res.posteriors.to_numpy()
            label = np.argmax(post, axis=1)
            p_class = post[np.arange(n_cl), label]
        conf = p_class * support / n_ann
    cl_item = np.empty(n_cl, np.int64)
    cl_item[cluster] = item
    cl_scale = np.empty((n_cl, 4))
    cl_scale[cluster] = scale[order]
    fused = fused * cl_scale
    # output order: item, confidence descending, creation order
    out_order = np.lexsort((np.arange(n_cl), -conf, cl_item))
    rank = np.empty(n_cl, np.int64)
    rank[out_order] = np.arange(n_cl)
    members = np.argsort(rank[cluster], kind="stable")
    ids = box_id[rows][order][members].tolist()
    bounds = np.r_[0, np.cumsum(size[out_order])]
    lists = np.empty(n_cl, dtype=object)  # a list per row (assigned one by one: not 2-D)
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        lists[k] = ids[a:b]
    o_item = cl_item[out_order]
    within = np.arange(n_cl) - np.r_[0, np.flatnonzero(o_item[1:] != o_item[:-1]) + 1].repeat(
        np.diff(np.r_[0, np.flatnonzero(o_item[1:] != o_item[:-1]) + 1, n_cl]))
    item_ids = np.asarray(items_u, dtype=object)[o_item]
    f = fused[out_order]
    return pd.DataFrame({
        "item_id": pd.array(item_ids, dtype="str"),
        "consensus_id": pd.array(pd.Series(item_ids).str.cat(
            pd.Series(within.astype(str)), sep="/c").to_numpy(), dtype="str"),
        "label": pd.array(np.asarray(class_list, dtype=object)[label[out_order]], dtype="str"),
        "x": f[:, 0], "y": f[:, 1], "w": f[:, 2] - f[:, 0], "h": f[:, 3] - f[:, 1],
        "support": support[out_order].astype(np.int64),
        "confidence": conf[out_order].astype(np.float64),
        "box_ids": lists,
    })
