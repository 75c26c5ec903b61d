"""The one shared selection of item ids that links every widget of a dashboard."""

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

    @traitlets.observe("ids")
    def _drop_picks(self, change):
        self.picked = ()

    def select(self, ids, *, origin: Any = None, source: str | None = None,
               description: str = "") -> None:
        """Set the selection, recording who made it and a human-readable description.

        Parameters
        ----------
        ids : iterable of str or None
            The selected item ids (None: no selection, everything in scope).
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
        with self.hold_trait_notifications():
            self.origin = origin
            self.source = source
            self.description = description
            self.ids = ids

    def clear(self, *, origin: Any = None, source: str | None = None) -> None:
        """Drop the selection (everything back in scope)."""
        self.select(None, origin=origin, source=source, description="")

    def __len__(self) -> int:
        return 0 if self.ids is None else len(self.ids)

    def __repr__(self) -> str:
        n = "None" if self.ids is None else f"{len(self.ids)} items"
        return f"Selection({n}, source={self.source!r})"
