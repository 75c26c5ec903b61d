"""Curators' label decisions: append-only rows, the latest decision per item wins.

A decision says "item X's label is Y" (``Project.decide``); label releases apply the latest
one per item. Rows are never updated or deleted: a new decision on an item is a new row, so
the history of every item's decisions stays readable.
"""

from __future__ import annotations

import unicodedata

import pandas as pd
import sqlalchemy as sa

from ..errors import SchemaError
from .dialect import among
from .frames import now_us, rows_frame
from .part import StorePart
from .validation import (
    MAX_AUTHOR_LENGTH,
    MAX_REASON_LENGTH,
    check_known_ids,
    normalize_text,
)

__all__ = ["LabelDecisions", "DECISION_COLUMNS", "MAX_LABEL_LENGTH"]

#: Columns of :meth:`LabelDecisions.frame` and :meth:`LabelDecisions.history`.
DECISION_COLUMNS = ["item_id", "label", "author", "reason", "decided_at", "decision_id"]
MAX_LABEL_LENGTH = 256


class LabelDecisions(StorePart):
    """Record and read curators' label decisions (``store.decisions``).

    Parameters
    ----------
    engine, tables : StoreEngine, Tables
        The store's connection and tables (see :class:`~workbench.store.part.StorePart`).
    known : KnownIds or None
        The project's item ids; decisions on others are refused. None accepts any id.

    Attributes
    ----------
    classes : frozenset of str or None
        The project's classes (set by ``TagStore.for_project``); a label outside them is
        refused. None accepts any label.

    Examples
    --------
    >>> from workbench.tags import TagStore
    >>> store = TagStore("sqlite://")
    >>> store.decisions.add(["a", "b"], ["cat", "dog"], author="lead", reason="checked")
    2
    >>> store.decisions.add(["a"], ["dog"], author="lead")
    1
    >>> store.decisions.frame()[["item_id", "label"]].values.tolist()
    [['a', 'dog'], ['b', 'dog']]
    >>> len(store.decisions.history("a"))
    2
    """

    classes: frozenset[str] | None = None  # set by TagStore.for_project

    def add(self, item_ids, labels, *, author: str, reason: str | None = None) -> int:
        """Record one decision per item (one transaction: all or nothing).

        Parameters
        ----------
        item_ids : sequence of str
            The items (a single str is one item). An item named twice gets two rows; the
            later one wins.
        labels : sequence of str
            The decided label of each item (same length; a single str applies to all).
        author : str
            Who decides.
        reason : str, optional
            Why (at most 2000 characters).

        Returns
        -------
        int
            Decisions written.

        Raises
        ------
        ValueError
            ``labels`` and ``item_ids`` differ in length.
        SchemaError
            An empty or unknown item id or label, or a bad author/reason; nothing is written.
        StoreError
            The store cannot be written.
        """
        func = "TagStore.decisions.add"
        ids = _strings(item_ids, "item_ids", func)
        labs = _strings(labels, "labels", func, n=len(ids))
        if len(labs) != len(ids):
            raise ValueError(f"The 'labels' parameter of {func} must have one label per item "
                             f"id. Got {len(labs)} labels for {len(ids)} item ids instead.")
        labs = [normalize_text(v, "label", func, MAX_LABEL_LENGTH, required=True,
                               allow_newlines=False) for v in labs]
        author = normalize_text(author, "author", func, MAX_AUTHOR_LENGTH, required=True,
                                allow_newlines=False)
        reason = normalize_text(reason, "reason", func, MAX_REASON_LENGTH, required=False,
                                allow_newlines=True)
        check_known_ids(list(dict.fromkeys(ids)), self.known, func)
        if self.classes is not None:  # the project's spelling of a class (NFD names stay)
            spelling = {unicodedata.normalize("NFC", c): c for c in self.classes}
            labs = [spelling.get(lab, lab) for lab in labs]
            bad = sorted(set(labs) - self.classes)
            if bad:
                raise SchemaError(f"{func}: label(s) {bad[:5]} are not classes of the project "
                                  f"{sorted(self.classes)}. Nothing was changed. Use one of "
                                  "the project's classes.")
        if not ids:
            return 0
        rows = [{"item_id": i, "label": lab, "author": author, "reason": reason}
                for i, lab in zip(ids, labs, strict=True)]

        def write(conn) -> int:
            now = now_us()
            conn.execute(sa.insert(self.tables.decisions),
                         [{**row, "decided_at": now} for row in rows])
            return len(rows)

        return self.engine.write(write, doing="record label decisions in")

    def frame(self, item_ids=None) -> pd.DataFrame:
        """Return the latest decision of each item, sorted by item id.

        Parameters
        ----------
        item_ids : iterable of str, optional
            Only these items (default: every item with a decision).

        Returns
        -------
        DataFrame
            ``item_id``, ``label``, ``author``, ``reason``, ``decided_at`` (UTC),
            ``decision_id``.
        """
        d = self.tables.decisions
        latest = sa.select(sa.func.max(d.c.decision_id)).group_by(d.c.item_id)
        q = self._select().where(d.c.decision_id.in_(latest))
        if item_ids is not None:
            ids = _strings(item_ids, "item_ids", "TagStore.decisions.frame")
            q = q.where(among(d.c.item_id, list(dict.fromkeys(ids)), self.engine.dialect))
        frame = self._frame(q)
        return frame.sort_values("item_id", kind="stable").reset_index(drop=True)

    def history(self, item_id: str | None = None) -> pd.DataFrame:
        """Return every decision (of one item, or all), oldest first.

        Returns
        -------
        DataFrame
            The columns of :meth:`frame`, one row per decision.
        """
        q = self._select()
        if item_id is not None:
            q = q.where(self.tables.decisions.c.item_id == str(item_id))
        return self._frame(q)

    def _select(self):
        d = self.tables.decisions
        return sa.select(d.c.item_id, d.c.label, d.c.author, d.c.reason, d.c.decided_at,
                         d.c.decision_id).order_by(d.c.decision_id)

    def _frame(self, q) -> pd.DataFrame:
        rows = self.engine.read(lambda conn: conn.execute(q).all())
        return rows_frame(rows, {"item_id": "str", "label": "str", "author": "str",
                                 "reason": "str", "decided_at": "time", "decision_id": "int"})


def _strings(values, name: str, func: str, *, n: int | None = None) -> list[str]:
    """``values`` as a list of non-empty str (a single str is one value, or ``n`` copies)."""
    if values is None or isinstance(values, pd.DataFrame):
        raise TypeError(f"The {name!r} parameter of {func} must be a list of str. Got "
                        f"{type(values).__name__} instead.")
    if isinstance(values, str):
        return [values] * (n if n is not None and name == "labels" else 1)
    out = []
    for pos, value in enumerate(values):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            raise SchemaError(f"{func}: {name} holds a missing value (None/NA) at position "
                              f"{pos}. Drop it; nothing was changed.")
        text = str(value)  # an id is taken as written (labels are normalised later)
        if not text.strip():
            raise SchemaError(f"{func}: {name} holds an empty value at position {pos}. Drop "
                              "it; nothing was changed.")
        out.append(text)
    return out
