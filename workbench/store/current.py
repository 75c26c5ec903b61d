"""Reads of the current tags (``tag_current``): the frame, one tag's items, counts.

The full table is read column-wise: one aggregate row per column (SQLite ``group_concat``,
PostgreSQL ``string_agg``), split by Arrow, so no Python object is made per row (1 M items
with 2 M current tags read in about a second). Filtered reads use the primary key
``(tag_id, item_id)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .dialect import among, string_agg
from .engine import StoreEngine
from .frames import current_frame
from .schema import Tables, chunks, lookup_strings
from .validation import normalize_ids, normalize_tag

__all__ = ["CurrentTags"]

_SEP = "\x1f"  # unit separator between item ids in the aggregated column


class CurrentTags:
    """Read the current tags of a store.

    Parameters
    ----------
    engine : StoreEngine
        The store's connection.
    tables : Tables
        The store's tables.
    """

    def __init__(self, engine: StoreEngine, tables: Tables):
        self.engine = engine
        self.tables = tables

    def frame(self, item_ids=None, *, tag: str | None = None) -> pd.DataFrame:
        """Return the current tags, sorted by tag then item (see :meth:`TagStore.tags`)."""
        ids = None if item_ids is None else normalize_ids(item_ids, "TagStore.tags")
        only = None if tag is None else normalize_tag(tag, func="TagStore.tags")

        def run(conn):
            if ids is None and only is None:
                items, tag_ids, action_ids = self._columns(conn)
                # SQLite groups the WITHOUT ROWID table in (tag_id, item_id) order
                blocks = self.engine.dialect == "sqlite"
            else:
                items, tag_ids, action_ids = self._rows(conn, ids, only)
                blocks = False
            names = lookup_strings(conn, self.tables, pd.unique(tag_ids))
            return items, tag_ids, action_ids, names, self._action_info(conn, action_ids), \
                blocks

        items, tag_ids, action_ids, names, info, blocks = self.engine.read(run)
        return current_frame(items, tag_ids, action_ids, names, info, blocks=blocks)

    def _columns(self, conn):
        """Read the whole table column-wise: per tag, two aggregated strings split by Arrow.

        One row per tag keeps each string within the databases' limits on a value's size.
        """
        cur, dialect = self.tables.current, self.engine.dialect
        rows = conn.execute(sa.select(
            cur.c.tag_id, sa.func.count(), string_agg(cur.c.item_id, _SEP, dialect),
            string_agg(cur.c.action_id, ",", dialect)).group_by(cur.c.tag_id)).all()
        sizes = [int(r[1]) for r in rows]
        n = sum(sizes)
        if n == 0:
            return [], np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
        import pyarrow as pa
        import pyarrow.compute as pc

        items = pc.split_pattern(pa.array([r[2] for r in rows], type=pa.large_string()),
                                 _SEP).flatten()
        actions = ",".join(r[3] for r in rows)
        action_ids = (np.array(actions.split(","), dtype="int64") if n < 1000 else
                      np.fromstring(actions, sep=",", dtype=np.int64))
        if len(items) != n or len(action_ids) != n:  # an id holding \x1f
            return self._rows(conn, None, None)
        return items, np.repeat(np.asarray([r[0] for r in rows], dtype="int64"), sizes), \
            action_ids

    def _rows(self, conn, ids: list[str] | None, only: str | None):
        """Read the rows of the given items and/or tag, probing the primary key."""
        cur, s = self.tables.current, self.tables.strings
        q = sa.select(cur.c.item_id, cur.c.tag_id, cur.c.action_id)
        if only is not None or ids is not None:
            # the tag ids to probe (tag_id, item_id) with: the one asked for, or all in use
            names = sa.select(s.c.string_id).where(
                s.c.value == only if only is not None else
                s.c.value.in_(sa.select(self.tables.actions.c.tag).distinct()))
            wanted = conn.execute(names).scalars().all()
            if not wanted:
                return [], np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
            q = q.where(cur.c.tag_id.in_(wanted))
        if ids is not None:
            q = q.where(among(cur.c.item_id, ids, self.engine.dialect))
        rows = conn.execute(q).all()
        return ([r[0] for r in rows], np.asarray([r[1] for r in rows], dtype="int64"),
                np.asarray([r[2] for r in rows], dtype="int64"))

    def _action_info(self, conn, action_ids) -> list[tuple]:
        """Return ``(action_id, author, reason, created_at)`` of the given actions."""
        act = self.tables.actions
        info: list[tuple] = []
        for chunk in chunks(sorted(pd.unique(action_ids).tolist()), 5000):
            info.extend(conn.execute(sa.select(act.c.action_id, act.c.author, act.c.reason,
                                               act.c.created_at)
                                     .where(act.c.action_id.in_(chunk))).all())
        return info

    def items_with(self, tag: str) -> list[str]:
        """Return the sorted ids of the items that currently carry ``tag``."""
        tag = normalize_tag(tag, func="TagStore.items_with")
        cur, s = self.tables.current, self.tables.strings

        def run(conn):
            tag_id = conn.execute(sa.select(s.c.string_id).where(s.c.value == tag)).scalar()
            if tag_id is None:
                return []
            return list(conn.execute(sa.select(cur.c.item_id).where(cur.c.tag_id == tag_id)
                                     .order_by(cur.c.item_id)).scalars().all())

        return self.engine.read(run)

    def counts(self) -> pd.DataFrame:
        """Return ``tag``, ``n_items`` for every tag in use, most used first."""
        cur = self.tables.current

        def run(conn):
            rows = conn.execute(sa.select(cur.c.tag_id, sa.func.count())
                                .group_by(cur.c.tag_id)).all()
            return rows, lookup_strings(conn, self.tables, [r[0] for r in rows])

        rows, names = self.engine.read(run)
        frame = pd.DataFrame({"tag": pd.array([names[r[0]] for r in rows], dtype="str"),
                              "n_items": np.array([r[1] for r in rows], dtype="int64")})
        return frame.sort_values(["n_items", "tag"], ascending=[False, True],
                                 ignore_index=True)
