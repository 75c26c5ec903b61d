"""Per-box label targets for slice discovery: missing dataset boxes and disputed boxes.

:func:`label_frame` turns a detection project into one row per dataset box (plus one row per
object the annotators drew that has no dataset box) with 0/1 columns that
:func:`workbench.discover_slices` can search as targets::

    frame = workbench.detection.label_frame(project)
    workbench.discover_slices(frame, target="is_disputed")

How the columns are built
-------------------------
1. The annotators' boxes are clustered into objects by
   :func:`workbench.detection.box_consensus` (``method='majority'``: class-agnostic WBF
   clusters, a fused box, the majority class, ``support`` = annotators who drew it).
2. Dataset boxes are matched one to one to the consensus boxes of their image (Hungarian on
   IoU, class-agnostic, IoU >= ``iou``: the matching of
   :func:`workbench.detection.match_annotators`).
3. ``is_disputed`` is 1 unless every annotator drew exactly one box in the matched cluster and
   all of them gave it the same class: a dataset box that no annotator, or not every
   annotator, drew, or that the annotators class differently, is disputed.
4. ``is_missing_label`` is 1 on the rows added for consensus boxes with ``support >=
   min_support`` that match no dataset box: objects the annotators agree on and the
   dataset lacks.

Every annotator is taken to have labelled every image of the annotations (as
:func:`workbench.detection.match_annotators` with ``labelled='all'``); dataset boxes of
images without any annotation are left out (nobody looked at them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_int
from ..errors import SchemaError
from .agreement import _check_iou, _encode_boxes, _match_sets
from .consensus import box_consensus
from .matching import size_labels

__all__ = ["label_frame", "discover_label_slices", "LABEL_TARGETS"]

#: The 0/1 target columns of :func:`label_frame`.
LABEL_TARGETS = ("is_missing_label", "is_disputed")


def label_frame(project: Any, *, iou: float = 0.5, min_support: int = 2) -> pd.DataFrame:
    """One row per dataset box and per missing box, with label targets for slicing.

    Parameters
    ----------
    project : DetectionProject
        A detection project with ``boxes``, ``annotations`` (at least two annotators) and
        ``items``.
    iou : float, default=0.5
        IoU threshold, in (0, 1]: annotator boxes join a consensus cluster above it (WBF's
        rule), a dataset box matches a consensus box at or above it.
    min_support : int, default=2
        Fewest annotators who drew an object for its absence from the dataset to count as a
        missing label.

    Returns
    -------
    DataFrame
        Dataset boxes first (in ``project.boxes`` order), then the missing boxes (by image):
        ``item_id``, ``box_id`` (missing on added rows), ``consensus_id`` (the matched
        consensus box of :func:`workbench.detection.box_consensus`, missing when none),
        ``label`` (the dataset label; the consensus class on added rows), ``x``, ``y``,
        ``w``, ``h`` (the dataset box; the fused box on added rows), ``consensus_label``,
        ``support`` (annotators who drew the matched object, 0 when none), the targets
        ``is_missing_label`` and ``is_disputed`` (int 0/1, see the module notes), ``size``
        (COCO's small/medium/large of the box), then the box metadata (missing on added
        rows) and the image metadata. ``attrs["metadata_columns"]`` lists the default
        slicing features of :func:`workbench.discover_slices`: image metadata, ``size`` and
        ``label`` (not the box metadata: missing on every added row, it would single out
        exactly the ``is_missing_label`` rows; name it in ``features=`` to slice
        ``is_disputed`` by it).

    Raises
    ------
    SchemaError
        If the project is not a detection project, or its annotations hold fewer than two
        annotators (see :func:`workbench.detection.match_annotators` for the column
        checks).

    Notes
    -----
    :func:`workbench.discover_slices` with target ``is_missing_label`` or ``is_disputed``
    hands this frame to :func:`discover_label_slices`: it counts rows (boxes), lists a
    slice's images once each in ``item_ids`` and its boxes in ``box_ids`` /
    ``consensus_ids``.

    Examples
    --------
    >>> import workbench as wb
    >>> project = wb.open_project("data/sample-detection")  # doctest: +SKIP
    >>> frame = wb.detection.label_frame(project)  # doctest: +SKIP
    >>> wb.discover_slices(frame, target="is_disputed").slice.head(3)  # doctest: +SKIP
    """
    func = "label_frame"
    _check_iou(iou, func)
    check_int(min_support, "min_support", func, minimum=1)
    if getattr(project, "task", None) != "detection" or not hasattr(project, "boxes"):
        raise SchemaError(f"{func}: needs a detection project (with boxes and annotations); "
                          f"got {type(project).__name__}. Open one with "
                          "workbench.open_project on a folder with task = 'detection'.")
    ann = project.annotations
    if ann is None or len(ann) == 0:
        raise SchemaError(f"{func}: the project has no annotations; the label targets compare "
                          "the dataset boxes with the annotators' boxes. Add annotations.csv.")
    classes = list(map(str, project.classes)) or None
    bx = _encode_boxes(ann, func, classes=classes)
    n_ann = len(bx.annotators)
    cons = box_consensus(ann.assign(box_id=bx.box_id), "majority", iou=iou,
                         classes=bx.classes)
    # members of every cluster: their annotators and labels
    ann_of = dict(zip(bx.box_id, bx.ann, strict=True))
    label_of = dict(zip(bx.box_id, bx.label, strict=True))
    members = cons["box_ids"]
    unanimous = np.array([
        len(m) == n_ann and len({ann_of[b] for b in m}) == n_ann
        and len({label_of[b] for b in m}) == 1
        for m in members], bool)
    support = cons["support"].to_numpy(np.int64)
    # dataset boxes on annotated images, matched one to one to the consensus boxes
    boxes = project.boxes
    b_item = pd.Index(bx.items).get_indexer(boxes["item_id"].astype(str).to_numpy(object))
    boxes = boxes[b_item >= 0]
    b_item = b_item[b_item >= 0]
    c_item = pd.Index(bx.items).get_indexer(cons["item_id"].astype(str).to_numpy(object))
    b_xywh = boxes[["x", "y", "w", "h"]].to_numpy(float)
    c_xywh = cons[["x", "y", "w", "h"]].to_numpy(float)
    mb, mc, _ = _match_sets(b_item, b_xywh, c_item, c_xywh, iou)
    match = np.full(len(boxes), -1, np.int64)
    match[mb] = mc
    hit = match >= 0
    m0 = np.maximum(match, 0)
    cons_ids = cons["consensus_id"].astype(object).to_numpy()
    cons_labels = cons["label"].astype(object).to_numpy()

    def pick(values, fill):
        return np.where(hit, values[m0] if len(values) else fill, fill)

    box_meta = list(project.box_metadata_columns)
    dataset = pd.DataFrame({
        "item_id": boxes["item_id"].astype(str).to_numpy(object),
        "box_id": boxes["box_id"].astype(str).to_numpy(object),
        "consensus_id": pick(cons_ids, None),
        "label": boxes["label"].astype(str).to_numpy(object),
        "x": b_xywh[:, 0], "y": b_xywh[:, 1], "w": b_xywh[:, 2], "h": b_xywh[:, 3],
        "consensus_label": pick(cons_labels, None),
        "support": pick(support, 0).astype(np.int64),
        "is_missing_label": np.zeros(len(boxes), np.int64),
        "is_disputed": (~pick(unanimous, False)).astype(np.int64),
    })
    for col in box_meta:
        dataset[col] = boxes[col].to_numpy()
    taken = np.zeros(len(cons), bool)
    taken[mc] = True
    miss = np.flatnonzero(~taken & (support >= min_support))
    added = pd.DataFrame({
        "item_id": cons["item_id"].astype(str).to_numpy(object)[miss],
        "box_id": np.full(len(miss), None, object),
        "consensus_id": cons_ids[miss],
        "label": cons_labels[miss],
        "x": c_xywh[miss, 0], "y": c_xywh[miss, 1], "w": c_xywh[miss, 2],
        "h": c_xywh[miss, 3],
        "consensus_label": cons_labels[miss],
        "support": support[miss],
        "is_missing_label": np.ones(len(miss), np.int64),
        "is_disputed": (~unanimous[miss]).astype(np.int64),
    })
    for col in box_meta:
        added[col] = pd.Series([pd.NA] * len(miss), dtype=object)
    frame = pd.concat([dataset, added], ignore_index=True) if len(added) else dataset
    frame.insert(list(frame.columns).index("is_disputed") + 1, "size",
                 size_labels((frame["w"] * frame["h"]).to_numpy(float)))
    item_meta = list(project.metadata_columns)
    if item_meta:
        meta = project.items[["item_id", *item_meta]].copy()
        meta["item_id"] = meta["item_id"].astype(str)
        meta = meta.drop_duplicates("item_id").set_index("item_id")
        frame = frame.join(meta, on="item_id")
    # box metadata is missing on every added row, so it would "explain" is_missing_label:
    # not a default feature (pass features=[...] to slice is_disputed on it)
    frame.attrs["metadata_columns"] = [*item_meta, "size", "label"]
    frame.attrs["targets"] = list(LABEL_TARGETS)
    frame.attrs["iou"] = float(iou)
    return frame


def discover_label_slices(frame: pd.DataFrame, features=None, max_order: int = 2,
                          min_support=None, top: int | None = 20,
                          target: str = "is_disputed", *, bins: int | None = 4,
                          alpha: float = 0.05, min_refinement: float = 0.1,
                          prune_explained: bool = True) -> pd.DataFrame:
    """:func:`workbench.discover_slices` on a :func:`label_frame`: slices of the worst labels.

    Called by :func:`workbench.discover_slices` for a :func:`label_frame` with target
    ``is_missing_label`` or ``is_disputed``. Rows (boxes) are counted: ``n``, ``errors``
    and ``min_support`` count boxes; ``features=None`` means
    ``frame.attrs["metadata_columns"]`` (image metadata, ``size`` and ``label``).

    Returns
    -------
    DataFrame
        The columns of :func:`workbench.discover_slices`, with ``item_ids`` the slice's
        images (each once, in frame order), plus ``box_ids`` (the slice's dataset boxes)
        and ``consensus_ids`` (its missing boxes: the consensus boxes no dataset box
        matches, ``is_missing_label`` rows). ``attrs["rows"]`` is ``"boxes"``.
    """
    from ..slicing import _discover_slices

    func = "discover_slices"
    if target not in LABEL_TARGETS:
        raise ValueError(f"The 'target' parameter of {func} on a label_frame must be one of "
                         f"{list(LABEL_TARGETS)}. Got {target!r} instead.")
    box = frame["box_id"].astype(object).to_numpy()
    cons = frame["consensus_id"].astype(object).to_numpy()
    has_box = ~pd.isna(box)
    key = np.where(has_box, box, cons).astype(str)
    keyed = frame.assign(item_id=key)
    keyed.attrs = dict(frame.attrs)
    feats = frame.attrs.get("metadata_columns") if features is None else features
    out = _discover_slices(keyed, feats, max_order, min_support, top, target, bins=bins,
                           alpha=alpha, min_refinement=min_refinement,
                           prune_explained=prune_explained)
    item_of = dict(zip(key, frame["item_id"].astype(str), strict=True))
    is_box = dict(zip(key, has_box, strict=True))
    rows = out["item_ids"].tolist()
    out["box_ids"] = [[k for k in ids if is_box[k]] for ids in rows]
    out["consensus_ids"] = [[k for k in ids if not is_box[k]] for ids in rows]
    out["item_ids"] = [list(dict.fromkeys(item_of[k] for k in ids)) for ids in rows]
    out.attrs.update({"rows": "boxes", "id_column": "box_ids", "iou": frame.attrs.get("iou")})
    return out
