"""The one shared selection of item ids that links every widget of a dashboard."""

from __future__ import annotations

import traitlets

__all__ = ["Selection"]


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
    source = traitlets.Unicode("")
    description = traitlets.Unicode("")

    @traitlets.validate("ids")
    def _canonical(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        if isinstance(value, str):
            raise TypeError(
                "Selection.ids must be a sequence of item ids or None, not a single str "
                f"({value!r}); wrap it in a list."
            )
        return tuple(sorted(set(map(str, value))))

    def select(self, ids, *, source: str = "", description: str = "") -> None:
        """Set the selection, recording who made it and a human-readable description."""
        with self.hold_trait_notifications():
            self.source = source
            self.description = description
            self.ids = None if ids is None else list(ids)

    def clear(self, *, source: str = "") -> None:
        """Drop the selection (everything back in scope)."""
        self.select(None, source=source, description="")

    def __len__(self) -> int:
        return 0 if self.ids is None else len(self.ids)

    def __repr__(self) -> str:
        n = "None" if self.ids is None else f"{len(self.ids)} items"
        return f"Selection({n}, source={self.source!r})"
