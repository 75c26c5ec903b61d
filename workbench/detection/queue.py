"""The relabel queue of a detection project: images, with the boxes in question and why.

A tag in the project's :class:`~workbench.tags.TagStore` goes on an image or on one of its
boxes (``TagStore.add(..., box_ids=...)``). The queue of a tag has **one row per image**
carrying it, on the image itself or on any of its boxes; the image is what moves through
the statuses ``queued -> sent -> relabeled -> verified`` (a vendor relabels an image, all
of its boxes at once), and the row lists the boxes in question (``box_ids``) and the reasons
the curators gave.

Priority, as for classification (see :class:`workbench.RelabelQueue`):

* ``score`` = ``1 - image_score``, where ``image_score`` is the image's label quality from
  :func:`workbench.label_issues` (cleanlab's ``get_label_quality_scores``, lower = worse), so
  the worst-labelled image comes first; 0 for an image that function does not score;
* ``slice_lift``: the error lift of the worst slice of image metadata holding the image,
  found by :func:`workbench.discover_slices` on the default run's missed reference boxes
  (target ``is_fn`` of :func:`workbench.match_detections`), 1 outside every such slice.

The functions here are pure (DataFrames in, DataFrames out);
:class:`DetectionRelabelQueue` is the thin :class:`~workbench.RelabelQueue` that calls them
(``RelabelQueue(detection_project)`` returns one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .._validation import check_columns, check_int, check_option
from ..errors import SchemaError
from ..relabel import RelabelQueue, queue_statuses
from ..tags import STATUSES

__all__ = [
    "DetectionRelabelQueue",
    "image_tags",
    "image_scores",
    "image_slice_lifts",
    "queue_state",
    "queue_frame",
    "box_index",
    "box_items",
]

#: Separator of the reasons joined in one cell.
REASON_SEPARATOR = "; "


def _texts(values: Iterable) -> list[str]:
    """The distinct non-empty strings of ``values``, in order."""
    out = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    return list(dict.fromkeys(out))


def image_tags(tags: pd.DataFrame) -> pd.DataFrame:
    """Group the tags of one queue by image: the boxes in question and the reasons.

    Parameters
    ----------
    tags : DataFrame
        Current tags of one tag (``TagStore.tags(tag=...)``): ``item_id``, ``author``,
        ``reason``, ``tagged_at`` and ``box_id`` (None/NA for a tag on the image itself; a
        frame without the column holds image tags only).

    Returns
    -------
    DataFrame
        One row per image, sorted by ``item_id``: ``item_id``, ``box_ids`` (sorted tuple of
        the tagged box ids, ``()`` when only the image is tagged), ``n_boxes``
        (``len(box_ids)``), ``image_tagged`` (the image itself carries the tag),
        ``reasons`` (the distinct reasons, oldest first, joined by ``"; "``; ``""`` when
        none), ``reason`` (the latest reason, NA when none), ``tagged_by`` (the distinct
        authors joined by ``", "``) and ``tagged_at`` (the latest tag: an image tagged again
        after it was sent is queued again).

    Examples
    --------
    >>> import pandas as pd
    >>> tags = pd.DataFrame({"item_id": ["a", "a", "b"], "box_id": ["a/b1", "a/b0", None],
    ...                      "author": ["ann", "bob", "ann"],
    ...                      "reason": ["loose", "wrong class", None],
    ...                      "tagged_at": pd.to_datetime(["2026-01-01", "2026-01-02",
    ...                                                   "2026-01-03"], utc=True)})
    >>> per_image = image_tags(tags)
    >>> per_image["box_ids"].tolist(), per_image["image_tagged"].tolist()
    ([('a/b0', 'a/b1'), ()], [False, True])
    >>> per_image["reasons"].tolist()
    ['loose; wrong class', '']
    """
    check_columns(tags, ["item_id", "author", "reason", "tagged_at"], what="tags",
                  func="image_tags")
    frame = tags.copy()
    if "box_id" not in frame.columns:
        frame["box_id"] = None
    frame["item_id"] = frame["item_id"].astype(str)
    frame["tagged_at"] = pd.to_datetime(frame["tagged_at"], utc=True)
    frame = frame.sort_values(["item_id", "tagged_at"], kind="stable")
    rows = []
    for item_id, group in frame.groupby("item_id", sort=True):
        box = group["box_id"]
        is_box = box.notna().to_numpy() & (box.astype(object) != "").to_numpy()
        boxes = tuple(sorted(set(map(str, box[is_box]))))
        reasons = _texts(group["reason"])
        latest = group["reason"].iloc[::-1]
        latest = latest[latest.notna()]
        rows.append({"item_id": item_id, "box_ids": boxes, "n_boxes": len(boxes),
                     "image_tagged": bool((~is_box).any()),
                     "reasons": REASON_SEPARATOR.join(reasons),
                     "reason": latest.iloc[0] if len(latest) else None,
                     "tagged_by": ", ".join(_texts(group["author"])),
                     "tagged_at": group["tagged_at"].max()})
    out = pd.DataFrame(rows, columns=["item_id", "box_ids", "n_boxes", "image_tagged",
                                      "reasons", "reason", "tagged_by", "tagged_at"])
    out["item_id"] = out["item_id"].astype("str")
    out["n_boxes"] = out["n_boxes"].astype(np.int64)
    out["image_tagged"] = out["image_tagged"].astype(bool)
    for col in ("reasons", "reason", "tagged_by"):
        out[col] = pd.array(out[col].to_numpy(dtype=object), dtype="str")
    out["tagged_at"] = pd.to_datetime(out["tagged_at"], utc=True)
    return out


def queue_state(per_image: pd.DataFrame, statuses: pd.DataFrame,
                status: str | Sequence[str] | None = None, *,
                func: str = "RelabelQueue.frame") -> pd.DataFrame:
    """Join the queued images with their current status.

    Parameters
    ----------
    per_image : DataFrame
        :func:`image_tags` of the queue.
    statuses : DataFrame
        ``TagStore.statuses(queue)``: ``item_id``, ``status``, ``updated_at``.
    status : str or list of str, optional
        Keep only images in these statuses.
    func : str
        The caller, for error messages.

    Returns
    -------
    DataFrame
        ``per_image`` with ``status`` (an image without a status, or tagged again after its
        last status change, is ``queued``: see :func:`workbench.relabel.queue_statuses`) and
        ``status_at``.
    """
    wanted = None
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        for s in wanted:
            check_option(s, "status", func, STATUSES)
    check_columns(statuses, ["item_id", "status", "updated_at"], what="statuses", func=func)
    st = statuses.rename(columns={"updated_at": "status_at"})[["item_id", "status",
                                                                "status_at"]]
    frame = per_image.merge(st, on="item_id", how="left")
    frame["status"] = pd.array(queue_statuses(frame["status"], frame["tagged_at"],
                                              frame["status_at"]), dtype="str")
    if wanted is not None:
        frame = frame[frame["status"].isin(wanted)]
    return frame.reset_index(drop=True)


def image_scores(issues: pd.DataFrame | None, item_ids: Iterable) -> pd.DataFrame:
    """How likely each image's boxes are wrong, from the label issues of its boxes.

    Parameters
    ----------
    issues : DataFrame or None
        :func:`workbench.label_issues` of the detection project (``item_id``,
        ``image_score``); None when unavailable (every score is then 0).
    item_ids : iterable of str
        Every image of the project.

    Returns
    -------
    DataFrame
        Indexed by ``item_id`` (in the given order): ``score`` = ``1 - image_score``
        (higher = relabel first; 0 for an image without a label-issue row) and
        ``image_score`` (NaN there).

    Examples
    --------
    >>> import pandas as pd
    >>> issues = pd.DataFrame({"item_id": ["a", "a", "b"], "image_score": [0.2, 0.2, 0.9]})
    >>> scores = image_scores(issues, ["a", "b", "c"])
    >>> scores["score"].round(2).tolist()
    [0.8, 0.1, 0.0]
    """
    ids = pd.Index([str(i) for i in item_ids], name="item_id")
    if issues is None or issues.empty:
        image = pd.Series(np.nan, index=ids)
    else:
        check_columns(issues, ["item_id", "image_score"], what="label issues",
                      func="image_scores")
        per = issues.groupby(issues["item_id"].astype(str), sort=False)["image_score"].min()
        image = per.astype(float).reindex(ids)
    score = (1.0 - image.to_numpy(dtype=float))
    return pd.DataFrame({"score": np.where(np.isnan(score), 0.0, np.clip(score, 0.0, 1.0)),
                         "image_score": image.to_numpy(dtype=float)}, index=ids)


def image_slice_lifts(slices: pd.DataFrame | None, item_ids: Iterable) -> pd.DataFrame:
    """The worst found slice of every image.

    Parameters
    ----------
    slices : DataFrame or None
        Found slices (:func:`workbench.discover_slices`): ``slice``, ``lift`` and
        ``item_ids`` (the images of the slice); None or empty: no slice.
    item_ids : iterable of str
        Every image of the project.

    Returns
    -------
    DataFrame
        Indexed by ``item_id``: ``slice`` (the name of the slice of highest ``lift`` holding
        the image, ``""`` outside every slice) and ``slice_lift`` (1.0 there).

    Examples
    --------
    >>> import pandas as pd
    >>> found = pd.DataFrame({"slice": ["camera=b", "site=x"], "lift": [1.6, 1.3],
    ...                       "item_ids": [["a", "b"], ["b", "c"]]})
    >>> lifts = image_slice_lifts(found, ["a", "b", "c", "d"])
    >>> lifts["slice"].tolist(), lifts["slice_lift"].tolist()
    (['camera=b', 'camera=b', 'site=x', ''], [1.6, 1.6, 1.3, 1.0])
    """
    ids = pd.Index([str(i) for i in item_ids], name="item_id")
    lift = pd.Series(1.0, index=ids)
    name = pd.Series("", index=ids, dtype=object)
    if slices is not None and len(slices):
        check_columns(slices, ["slice", "lift", "item_ids"], what="slices",
                      func="image_slice_lifts")
        # lowest lift first: a later (worse) slice overwrites an image's slice
        for row in slices.sort_values("lift", kind="stable").itertuples():
            members = ids.intersection(pd.Index([str(i) for i in row.item_ids]))
            lift[members] = float(row.lift)
            name[members] = str(row.slice)
    return pd.DataFrame({"slice": pd.array(name.to_numpy(), dtype="str"),
                         "slice_lift": lift.to_numpy(dtype=float)}, index=ids)


def _box_labels(boxes: pd.DataFrame | None, predictions: pd.DataFrame | None,
                annotations: pd.DataFrame | None) -> pd.Series:
    """Class of every box id of the project (reference, predicted and annotated boxes)."""
    parts = []
    for frame, key in ((boxes, "box_id"), (predictions, "pred_id"), (annotations, "box_id")):
        if frame is not None and len(frame) and key in frame.columns:
            parts.append(pd.Series(frame["label"].astype(str).to_numpy(),
                                   index=frame[key].astype(str).to_numpy()))
    if not parts:
        return pd.Series(dtype=object)
    out = pd.concat(parts)
    return out[~out.index.duplicated()]


def _issue_types(issues: pd.DataFrame | None, state: pd.DataFrame) -> list[str]:
    """Per queued image: the flagged issue types of its boxes in question (or of the image)."""
    if issues is None or issues.empty or "is_issue" not in issues.columns:
        return [""] * len(state)
    flagged = issues[issues["is_issue"].to_numpy(dtype=bool)]
    by_item: dict[str, list] = {}
    for item, box, pred, kind in zip(flagged["item_id"].astype(str), flagged["box_id"],
                                     flagged["pred_id"], flagged["issue_type"], strict=True):
        ids = {str(v) for v in (box, pred) if isinstance(v, str)}
        by_item.setdefault(item, []).append((ids, str(kind)))
    out = []
    for item, boxes, whole in zip(state["item_id"], state["box_ids"], state["image_tagged"],
                                  strict=True):
        wanted = set(boxes)
        kinds = [k for ids, k in by_item.get(item, []) if whole or ids & wanted]
        out.append(", ".join(sorted(set(kinds))))
    return out


def queue_frame(state: pd.DataFrame, items: pd.DataFrame, *, priorities: pd.Series,
                scores: pd.DataFrame, slices: pd.DataFrame, issues: pd.DataFrame | None = None,
                boxes: pd.DataFrame | None = None, predictions: pd.DataFrame | None = None,
                annotations: pd.DataFrame | None = None, limit: int | None = None
                ) -> pd.DataFrame:
    """The relabel queue of a detection project, most urgent image first.

    Parameters
    ----------
    state : DataFrame
        :func:`queue_state`: one row per queued image with its boxes and status.
    items : DataFrame
        The project's images (``item_id``, ``filepath``, ``width``, ``height``, metadata).
    priorities : Series
        Priority per ``item_id`` (higher = relabel first).
    scores : DataFrame
        :func:`image_scores`.
    slices : DataFrame
        :func:`image_slice_lifts`.
    issues : DataFrame, optional
        :func:`workbench.label_issues`; gives ``n_issues`` and ``issue_types``.
    boxes, predictions, annotations : DataFrame, optional
        The project's box frames; give the class of each box in question (``box_labels``).
    limit : int, optional
        Keep only the ``limit`` most urgent images.

    Returns
    -------
    DataFrame
        One row per image: ``item_id``, ``status``, ``priority``, ``score``,
        ``image_score``, ``slice``, ``slice_lift``, ``box_ids`` (tuple of the tagged box
        ids, ``()`` when the image itself is tagged), ``n_boxes``, ``box_labels`` (tuple
        parallel to ``box_ids``: the class of each, None for an unknown id),
        ``image_tagged``, ``reasons``, ``issue_types`` (the types flagged by
        ``label_issues`` on the boxes in question, or anywhere on an image tagged as a
        whole), ``n_issues`` (flagged rows on the image), ``filepath``, ``width``,
        ``height`` (when the items have them), the item metadata columns, ``tagged_by``,
        ``reason``, ``tagged_at``, ``status_at``. Sorted by priority (highest first), then
        ``item_id``.
    """
    check_int(limit, "limit", "RelabelQueue.frame", minimum=0, allow_none=True)
    frame = state.copy()
    ids = frame["item_id"].astype(str)
    frame["priority"] = priorities.reindex(ids).fillna(0.0).to_numpy(dtype=float)
    sc = scores.reindex(ids)
    frame["score"] = sc["score"].fillna(0.0).to_numpy(dtype=float)
    frame["image_score"] = sc["image_score"].to_numpy(dtype=float)
    sl = slices.reindex(ids)
    frame["slice"] = pd.array(sl["slice"].fillna("").to_numpy(dtype=object), dtype="str")
    frame["slice_lift"] = sl["slice_lift"].fillna(1.0).to_numpy(dtype=float)
    labels = _box_labels(boxes, predictions, annotations)
    frame["box_labels"] = [tuple(labels.get(b) if b in labels.index else None for b in bx)
                           for bx in frame["box_ids"]]
    frame["issue_types"] = pd.array(_issue_types(issues, frame), dtype="str")
    if issues is not None and len(issues) and "is_issue" in issues.columns:
        n = issues[issues["is_issue"].to_numpy(dtype=bool)].groupby(
            issues["item_id"].astype(str)).size()
        frame["n_issues"] = n.reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    else:
        frame["n_issues"] = np.zeros(len(frame), dtype=np.int64)
    item_cols = [c for c in items.columns if c != "item_id" and c not in frame.columns]
    meta = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id")[item_cols]
    meta = meta.reindex(ids)
    for col in item_cols:
        frame[col] = meta[col].to_numpy()
    frame = frame.sort_values(["priority", "item_id"], ascending=[False, True],
                              kind="stable", ignore_index=True)
    if limit is not None:
        frame = frame.head(limit)
    cols = ["item_id", "status", "priority", "score", "image_score", "slice", "slice_lift",
            "box_ids", "n_boxes", "box_labels", "image_tagged", "reasons", "issue_types",
            "n_issues", *item_cols, "tagged_by", "reason", "tagged_at", "status_at"]
    return frame[cols].reset_index(drop=True)


def box_index(boxes: pd.DataFrame, predictions: pd.DataFrame | None = None,
              annotations: pd.DataFrame | None = None) -> pd.Series:
    """The image of every box id of a project: reference, predicted and annotated boxes.

    Parameters
    ----------
    boxes, predictions, annotations : DataFrame
        The project's frames (``project.boxes``, ``.predictions``, ``.annotations``).

    Returns
    -------
    Series
        ``item_id`` indexed by box id (``box_id`` / ``pred_id``); an id used in two frames
        keeps the first frame's image.
    """
    keys, items = [], []
    for frame, key in ((boxes, "box_id"), (predictions, "pred_id"), (annotations, "box_id")):
        if frame is not None and len(frame) and key in frame.columns:
            keys.append(frame[key].astype(str).to_numpy(dtype=object))
            items.append(frame["item_id"].astype(str).to_numpy(dtype=object))
    if not keys:
        return pd.Series([], index=pd.Index([], dtype=object), dtype=object, name="item_id")
    out = pd.Series(np.concatenate(items), index=pd.Index(np.concatenate(keys)),
                    name="item_id")
    return out[~out.index.duplicated()] if not out.index.is_unique else out


def box_items(box_ids: Iterable, index: pd.Series) -> list[str]:
    """The image of every box id.

    Parameters
    ----------
    box_ids : iterable of str
        The boxes (``Selection.box_ids``).
    index : Series
        :func:`box_index` of the project.

    Returns
    -------
    list of str
        The ``item_id`` of each box, parallel to ``box_ids``.

    Raises
    ------
    SchemaError
        If a box id is not a box, a detection or an annotated box of the project.

    Examples
    --------
    >>> import pandas as pd
    >>> boxes = pd.DataFrame({"box_id": ["a/b0", "b/b0"], "item_id": ["a", "b"]})
    >>> box_items(["b/b0", "a/b0"], box_index(boxes))
    ['b', 'a']
    """
    wanted = [str(b) for b in box_ids]
    pos = index.index.get_indexer(wanted)
    missing = [b for b, p in zip(wanted, pos, strict=True) if p < 0]
    if missing:
        raise SchemaError(f"Box ids {missing[:5]} are not boxes, detections or annotated "
                          "boxes of the project. Select boxes of this project (nothing was "
                          "changed).")
    return index.to_numpy()[pos].astype(str).tolist()


class DetectionRelabelQueue(RelabelQueue):
    """:class:`workbench.RelabelQueue` of a detection project: one row per image.

    ``RelabelQueue(project)`` returns this class when ``project.task == "detection"``; the
    parameters, :meth:`mark`, :meth:`counts` and ``priority`` are those of
    :class:`~workbench.RelabelQueue`. An image is queued when it carries the tag, itself or
    on any of its boxes; :meth:`frame` lists the boxes in question (see
    :func:`queue_frame`). ``score`` is ``1 - image_score`` of
    :func:`workbench.label_issues`; ``slice_lift`` comes from the default run's missed
    boxes (see the module docstring). :meth:`export` writes the batch with
    :func:`workbench.detection.vendor_export.export_box_queue` (Label Studio rectangles, COCO or
    CSV), in this queue's order.
    """

    _issues: pd.DataFrame | None = None

    def scores(self) -> pd.Series:
        """Return ``1 - image_score`` of every image (higher = relabel first), by item_id."""
        if self._scores is not None:
            return self._scores
        project = self.project
        issues = None
        if project.default_run is not None and len(project.predictions):
            try:
                from ..label_quality import label_issues

                issues = label_issues(project)
                self.priority_source = "label_issues"
            except Exception as exc:  # no usable run/scorer: every image scores 0
                self.priority_note = (f"label_issues unavailable ({type(exc).__name__}: "
                                      f"{exc})")
        self._issues = issues
        self._image_scores = image_scores(issues, project.items["item_id"])
        self._scores = self._image_scores["score"].rename("score")
        return self._scores

    def slice_lifts(self) -> pd.DataFrame:
        """Return ``slice``, ``slice_lift`` of every image, indexed by item_id.

        :func:`workbench.discover_slices` (defaults) on the default run's missed reference
        boxes (``is_fn``) over the image metadata; each image gets the slice of highest lift.
        """
        if self._slices is not None:
            return self._slices
        project = self.project
        found = None
        if project.default_run is not None and len(project.predictions) \
                and project.metadata_columns:
            from ..slicing import discover_slices
            from .matching import match_detections

            try:
                matches = match_detections(project, project.default_run)
                found = discover_slices(matches, features=list(project.metadata_columns),
                                        target="is_fn")
            except Exception as exc:  # e.g. too few boxes: the lift stays 1
                self.priority_note = (self.priority_note + f" slice lift unavailable "
                                      f"({type(exc).__name__}: {exc})").strip()
        self._slices = image_slice_lifts(found, project.items["item_id"])
        return self._slices

    def _state(self, status, *, func: str) -> pd.DataFrame:
        per_image = image_tags(self.store.tags(tag=self.tag))
        return queue_state(per_image, self.store.statuses(self.tag), status, func=func)

    def frame(self, limit: int | None = None, *, status: str | list | None = None
              ) -> pd.DataFrame:
        """Return the queue, most urgent image first (columns: see :func:`queue_frame`).

        Parameters
        ----------
        limit : int, optional
            Keep only the ``limit`` highest-priority images.
        status : str or list of str, optional
            Keep only images in these statuses.
        """
        check_int(limit, "limit", "RelabelQueue.frame", minimum=0, allow_none=True)
        state = self._state(status, func="RelabelQueue.frame")
        priorities = self.priorities()
        self.scores()
        project = self.project
        return queue_frame(state, project.items, priorities=priorities,
                           scores=self._image_scores, slices=self.slice_lifts(),
                           issues=self._issues, boxes=project.boxes,
                           predictions=project.predictions, annotations=project.annotations,
                           limit=limit)

    def export(self, path, *, format: str = "labelstudio", limit: int | None = None,
               url_prefix: str | None = None, author: str | None = None, **kwargs) -> int:
        """Write a batch for the vendor and mark it ``sent`` (the queue's order and budget).

        Parameters
        ----------
        path : path-like
            The file to write.
        format : {'labelstudio', 'coco', 'csv'}, default='labelstudio'
        limit : int, optional
            Budget: the ``limit`` most urgent images, in this queue's ``priority``.
        url_prefix : str, optional
            Prefix of the Label Studio image URLs.
        author : str, optional
            Default: ``workbench.session.current_author()``.
        **kwargs
            Other options of :func:`workbench.detection.vendor_export.export_box_queue`
            (``statuses``, ``from_name``, ``to_name``, ``min_score``).

        Returns
        -------
        int
            Images written.
        """
        from .vendor_export import export_box_queue

        return export_box_queue(self.project, path, format=format, tag=self.tag, limit=limit,
                                store=self.store, url_prefix=url_prefix,
                                priority=self.priority, author=author, **kwargs)
