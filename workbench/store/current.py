"""Reads of the current tags: the frame, one tag's items and boxes, counts.

Image tags are in ``tag_current``, box tags in ``box_current``. The full image-tag table is
read column-wise: one aggregate row per column (SQLite ``group_concat``,
PostgreSQL ``string_agg``), split by Arrow, so no Python object is made per row (1 M items
with 2 M current tags read in about a second). Filtered reads use the primary key
``(tag_id, item_id)``. Box tags (usually far fewer) are read row by row and merged in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .dialect import among, string_agg
from .frames import current_frame, to_timestamps
from .part import StorePart
from .schema import chunks, lookup_strings
from .validation import normalize_ids, normalize_tag

__all__ = ["CurrentTags"]

_SEP = "\x1f"  # unit separator between item ids in the aggregated column


class CurrentTags(StorePart):
    """Read the current tags of a store.

    Parameters
    ----------
    engine, tables : StoreEngine, Tables
        The store's connection and tables (see :class:`~workbench.store.part.StorePart`).
    """

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
                items, tag_ids, action_ids = self._rows(conn, ids, only)[:3]
                blocks = False
            box_ids = None
            boxes = self._rows(conn, ids, only, table=self.tables.box_current)
            if len(boxes[0]):  # box tags: appended, the frame sorts every row
                import pyarrow as pa

                text = pa.large_string()
                box_ids = [None] * len(items) + boxes[3]
                items = pa.concat_arrays([
                    items.cast(text) if isinstance(items, pa.Array) else pa.array(items, text),
                    pa.array(boxes[0], type=text)])
                tag_ids = np.concatenate([tag_ids, boxes[1]])
                action_ids = np.concatenate([action_ids, boxes[2]])
            names = lookup_strings(conn, self.tables, pd.unique(tag_ids))
            return items, tag_ids, action_ids, names, self._action_info(conn, action_ids), \
                blocks, box_ids

        items, tag_ids, action_ids, names, info, blocks, box_ids = self.engine.read(run)
        return current_frame(items, tag_ids, action_ids, names, info, blocks=blocks,
                             box_ids=box_ids)

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
            return self._rows(conn, None, None)[:3]
        return items, np.repeat(np.asarray([r[0] for r in rows], dtype="int64"), sizes), \
            action_ids

    def _rows(self, conn, ids: list[str] | None, only: str | None, *, table=None):
        """Read the rows of the given items and/or tag, probing the primary key.

        ``table`` is ``tag_current`` (default) or ``box_current``, whose rows also give
        their box ids (a fourth list).
        """
        cur, s = self.tables.current if table is None else table, self.tables.strings
        boxes = "box_id" in cur.c
        q = sa.select(cur.c.item_id, cur.c.tag_id, cur.c.action_id,
                      *([cur.c.box_id] if boxes else []))
        if only is not None or ids is not None:
            # the tag ids to probe (tag_id, item_id) with: the one asked for, or all in use
            names = sa.select(s.c.string_id).where(
                s.c.value == only if only is not None else
                s.c.value.in_(sa.select(self.tables.actions.c.tag).distinct()))
            wanted = conn.execute(names).scalars().all()
            if not wanted:
                return [], np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64"), []
            q = q.where(cur.c.tag_id.in_(wanted))
        if ids is not None:
            q = q.where(among(cur.c.item_id, ids, self.engine.dialect))
        rows = conn.execute(q).all()
        return ([r[0] for r in rows], np.asarray([r[1] for r in rows], dtype="int64"),
                np.asarray([r[2] for r in rows], dtype="int64"),
                [r[3] for r in rows] if boxes else [])

    def _action_info(self, conn, action_ids) -> list[tuple]:
        """Return ``(action_id, author, reason, created_at)`` of the given actions."""
        act = self.tables.actions
        info: list[tuple] = []
        for chunk in chunks(sorted(pd.unique(action_ids).tolist()), 5000):
            info.extend(conn.execute(sa.select(act.c.action_id, act.c.author, act.c.reason,
                                               act.c.created_at)
                                     .where(act.c.action_id.in_(chunk))).all())
        return info

    def _tag_id(self, conn, tag: str) -> int | None:
        s = self.tables.strings
        return conn.execute(sa.select(s.c.string_id).where(s.c.value == tag)).scalar()

    def items_with(self, tag: str) -> list[str]:
        """Return the sorted ids of the items carrying ``tag`` on the image or on a box."""
        tag = normalize_tag(tag, func="TagStore.items_with")
        cur, bcur = self.tables.current, self.tables.box_current

        def run(conn):
            tag_id = self._tag_id(conn, tag)
            if tag_id is None:
                return []
            items = list(conn.execute(sa.select(cur.c.item_id).where(cur.c.tag_id == tag_id)
                                      .order_by(cur.c.item_id)).scalars().all())
            boxed = conn.execute(sa.select(bcur.c.item_id).distinct()
                                 .where(bcur.c.tag_id == tag_id)).scalars().all()
            return sorted(set(items).union(boxed)) if boxed else items

        return self.engine.read(run)

    def boxes_with(self, tag: str) -> pd.DataFrame:
        """Return the boxes carrying ``tag`` (see :meth:`TagStore.boxes_with`)."""
        tag = normalize_tag(tag, func="TagStore.boxes_with")
        bcur = self.tables.box_current

        def run(conn):
            tag_id = self._tag_id(conn, tag)
            if tag_id is None:
                return [], []
            rows = conn.execute(sa.select(bcur.c.item_id, bcur.c.box_id, bcur.c.action_id)
                                .where(bcur.c.tag_id == tag_id)).all()
            return sorted(rows), self._action_info(
                conn, np.asarray([r[2] for r in rows], dtype="int64"))

        rows, info = self.engine.read(run)
        by_action = {r[0]: r[1:] for r in info}
        about = [by_action[r[2]] for r in rows]
        return pd.DataFrame({
            "item_id": pd.array([r[0] for r in rows], dtype="str"),
            "box_id": pd.Series([r[1] for r in rows], dtype="object"),
            "reason": pd.array([a[1] for a in about], dtype="str"),
            "author": pd.array([a[0] for a in about], dtype="str"),
            "tagged_at": to_timestamps([a[2] for a in about]),
        })

    def counts(self) -> pd.DataFrame:
        """Return ``tag``, ``n_items`` for every tag in use, most used first.

        ``n_items`` counts images: those carrying the tag on the image or on any box (as
        :meth:`items_with`); an image with three tagged boxes counts once.
        """
        cur, bcur = self.tables.current, self.tables.box_current

        def run(conn):
            n = dict(conn.execute(sa.select(cur.c.tag_id, sa.func.count())
                                  .group_by(cur.c.tag_id)).all())
            # images tagged only through their boxes
            image_tag = sa.select(cur.c.item_id).where(cur.c.tag_id == bcur.c.tag_id,
                                                       cur.c.item_id == bcur.c.item_id)
            for tag_id, extra in conn.execute(
                    sa.select(bcur.c.tag_id, sa.func.count(sa.distinct(bcur.c.item_id)))
                    .where(~image_tag.exists()).group_by(bcur.c.tag_id)):
                n[tag_id] = n.get(tag_id, 0) + extra
            return list(n.items()), lookup_strings(conn, self.tables, n)

        rows, names = self.engine.read(run)
        frame = pd.DataFrame({"tag": pd.array([names[r[0]] for r in rows], dtype="str"),
                              "n_items": np.array([r[1] for r in rows], dtype="int64")})
        return frame.sort_values(["n_items", "tag"], ascending=[False, True],
                                 ignore_index=True)
