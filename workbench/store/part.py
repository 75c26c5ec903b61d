"""StorePart: what every part of a tag store holds (its connection, tables, item ids)."""

from __future__ import annotations

from .engine import StoreEngine
from .schema import Tables
from .validation import KnownIds

__all__ = ["StorePart"]


class StorePart:
    """One part of a :class:`~workbench.tags.TagStore` (events, statuses, decisions, ...).

    Parameters
    ----------
    engine : StoreEngine
        The store's connection.
    tables : Tables
        The store's tables.
    known : KnownIds or None, default=None
        The project's item ids; writes naming others are refused. None accepts any id.
    """

    def __init__(self, engine: StoreEngine, tables: Tables,
                 known: KnownIds | None = None):
        self.engine = engine
        self.tables = tables
        self.known = known
