"""The one shared selection of item ids (and, for detection, box ids) linking every widget."""

from __future__ import annotations

import bisect
from typing import Any

import traitlets

__all__ = ["Selection"]


def _canonical_ids(value):
    """A sorted tuple of unique ``str`` ids, or None (no selection)."""
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(
            "Selection.ids must be a sequence of item ids or None, not a single str "
            f"({value!r}); wrap it in a list."
        )
    if isinstance(value, tuple) and _is_sorted_strs(value):
        return value  # canonical already (a 100,000-item lasso: no re-sort)
    return tuple(sorted(set(map(str, value))))


def _is_sorted_strs(value: tuple) -> bool:
    """Whether ``value`` holds only ``str`` and is strictly increasing (sorted, unique)."""
    # map(type) and map(str.__lt__) run in C: ~10x faster than a generator on a 100,000-id lasso
    return set(map(type, value)) <= {str} and all(map(str.__lt__, value, value[1:]))


def _canonical_box_ids(value):
    """A sorted tuple of unique ``str`` box ids, or None (no box-level selection)."""
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(
            "Selection.box_ids must be a sequence of box ids (box_id or pred_id values) or "
            f"None, not a single str ({value!r}); wrap it in a list.")
    return tuple(sorted(set(map(str, value))))


def _is_in(sorted_ids: tuple, item_id: str) -> bool:
    """Whether ``item_id`` is in the sorted tuple ``sorted_ids`` (binary search)."""
    i = bisect.bisect_left(sorted_ids, item_id)
    return i < len(sorted_ids) and sorted_ids[i] == item_id


class Selection(traitlets.HasTraits):
    """A set of selected ``item_id`` values shared by the widgets of a dashboard.

    ``ids is None`` means no active selection (everything in scope); ``ids == ()`` is a
    selection that matched nothing. Values are canonicalised to a sorted tuple of unique
    strings, so assigning an equal selection notifies nobody and mutual observers stop
    after one bounce.

    Examples
    --------
    >>> sel = Selection()
    >>> sel.ids = ["b", "a", "a"]
    >>> sel.ids
    ('a', 'b')

    In a detection project a selection can also name boxes: ``box_ids`` holds the selected
    reference boxes (``box_id``) and predicted boxes (``pred_id``), and ``ids`` the images
    they are on, so every widget that works on item ids keeps working.

    >>> sel.select(["img-1"], box_ids=["img-1/b0", "img-1/run/p3"])
    >>> sel.box_ids
    ('img-1/b0', 'img-1/run/p3')
    >>> sel.ids = ["img-2"]  # item ids set without boxes: no box-level selection any more
    >>> sel.box_ids is None
    True
    """

    ids = traitlets.Tuple(default_value=None, allow_none=True)
    #: The object (usually the widget) that made the selection; widgets recognise their
    #: own selection by identity (``selection.origin is self``), never by name.
    origin = traitlets.Any(None)
    #: Who made it, for status text only (the origin's class name unless given).
    source = traitlets.Unicode("")
    description = traitlets.Unicode("")
    #: The items picked one by one among ``ids`` (the gallery's cards): a sorted tuple,
    #: ``()`` when none. Emptied whenever ``ids`` changes.
    picked = traitlets.Tuple(default_value=())
    #: The selected boxes of a detection project (``box_id`` and ``pred_id`` values), a
    #: sorted tuple; None when the selection is not box-level. Set only together with
    #: ``ids`` (:meth:`select` with ``box_ids=``), which then hold the boxes' images;
    #: cleared whenever ``ids`` is set without ``box_ids``.
    box_ids = traitlets.Tuple(default_value=None, allow_none=True)

    @traitlets.validate("ids")
    def _canonical(self, proposal):
        return _canonical_ids(proposal["value"])

    @traitlets.validate("picked")
    def _canonical_picked(self, proposal):
        value = proposal["value"]
        if value is None or isinstance(value, str):
            raise TypeError("Selection.picked must be a sequence of item ids, not "
                            f"{value!r}; wrap a single id in a list, use () for none.")
        picked = tuple(sorted(set(map(str, value))))
        ids = self.ids or ()
        outside = [i for i in picked if not _is_in(ids, i)]
        if outside:
            raise ValueError(
                f"Selection.picked must be among the selected items: {outside[:5]} "
                f"{'is' if len(outside) == 1 else 'are'} not selected "
                f"({len(ids)} selected). Select them first, or pick among the selected ones.")
        return picked

    @traitlets.validate("box_ids")
    def _canonical_boxes(self, proposal):
        return _canonical_box_ids(proposal["value"])

    @traitlets.observe("ids")
    def _drop_picks(self, change):
        self.picked = ()
        if not getattr(self, "_with_boxes", False):
            self.box_ids = None  # item ids set on their own: no box-level selection

    def select(self, ids, *, box_ids=None, origin: Any = None, source: str | None = None,
               description: str = "") -> None:
        """Set the selection, recording who made it and a human-readable description.

        Parameters
        ----------
        ids : iterable of str or None
            The selected item ids (None: no selection, everything in scope). With
            ``box_ids``: the images of those boxes.
        box_ids : iterable of str, default=None
            The selected boxes (``box_id`` / ``pred_id`` values of a detection project);
            None: the selection is not box-level (any previous ``box_ids`` are dropped).
        origin : object, default=None
            What made the selection (a widget passes itself); compared by identity, so
            two widgets of the same class tell their selections apart.
        source : str, default=None
            Who made it, for status text (None: the class name of ``origin``, or ``""``).
        description : str, default=""
            What was selected, for status text (``"true 3, predicted 5"``).
        """
        if source is None:
            source = "" if origin is None else type(origin).__name__
        # checked before anything changes: inside hold_trait_notifications the validator
        # runs only when the block exits, where its error would not undo origin and source
        ids = _canonical_ids(ids)
        box_ids = _canonical_box_ids(box_ids)
        if box_ids is not None and ids is None:
            raise ValueError("Selection.select: box_ids were given with ids=None; pass the "
                             "images of the boxes as ids (ids always hold the selected "
                             "boxes' images).")
        self._with_boxes = True
        try:
            with self.hold_trait_notifications():
                self.origin = origin
                self.source = source
                self.description = description
                self.ids = ids
                self.box_ids = box_ids
        finally:
            self._with_boxes = False

    def clear(self, *, origin: Any = None, source: str | None = None) -> None:
        """Drop the selection (everything back in scope)."""
        self.select(None, origin=origin, source=source, description="")

    def __len__(self) -> int:
        return 0 if self.ids is None else len(self.ids)

    def __repr__(self) -> str:
        n = "None" if self.ids is None else f"{len(self.ids)} items"
        if self.box_ids is not None:
            n += f", {len(self.box_ids)} boxes"
        return f"Selection({n}, source={self.source!r})"
