"""Tag events: audited ``add``/``remove`` writes and the audit trail.

Every call appends one row to ``tag_actions`` (who, when, what, why, from where) and one row
per item it changed to ``tag_events``, and updates ``tag_current`` in the same transaction.
The pair (action key, item) is unique, so a retried or replayed call never duplicates an
event.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from .dialect import among, insert_items
from .engine import StoreEngine
from .frames import events_frame, now_us
from .schema import Tables, intern_strings
from .validation import normalize_tag, write_args

__all__ = ["TagEvents", "values_among"]

_HISTORY = ["event_id", "item_id", "tag", "action", "author", "reason", "context",
            "created_at", "action_key"]


def values_among(conn, column, where, values: list[str]) -> set[str]:
    """Return the ``values`` found in ``column`` on the rows matching ``where``."""
    dialect = conn.dialect.name
    return set(conn.execute(sa.select(column).where(where, among(column, values, dialect)))
               .scalars())


class TagEvents:
    """Write tag events and read the audit trail.

    Parameters
    ----------
    engine : StoreEngine
        The store's connection.
    tables : Tables
        The store's tables.
    known : frozenset of str or None
        The project's item ids; writes naming others are refused. None accepts any id.
    """

    def __init__(self, engine: StoreEngine, tables: Tables, known: frozenset[str] | None):
        self.engine = engine
        self.tables = tables
        self.known = known

    def change(self, action: str, item_ids, tag, *, author, reason, context,
               action_key) -> int:
        """Add (``action="add"``) or remove a tag; return the events written.

        Items that already are in the wanted state are left alone (no event). A call whose
        ``action_key`` was used before writes only the items it has not written yet.
        """
        func = f"TagStore.{action}"
        args = write_args(func, item_ids, tag, author, reason, context, action_key, self.known)
        if not args[0]:
            return 0
        return self.engine.write(lambda conn: self._apply(conn, func, action, *args),
                                 doing=f"{action} tags in")

    def _apply(self, conn, func, action, ids, tag, author, reason, ctx, key) -> int:
        t = self.tables
        act, ev, cur = t.actions, t.events, t.current
        todo = ids
        prior = conn.execute(sa.select(act.c.action_id, act.c.action, act.c.tag)
                             .where(act.c.action_key == key)).first()
        if prior is not None:  # a replayed call: skip the items it already wrote
            if (prior.action, prior.tag) != (action, tag):
                raise ValueError(
                    f"{func}: the action_key {key!r} was already used to {prior.action} the "
                    f"tag {prior.tag!r}. Use a new key for a different action.")
            done = values_among(conn, ev.c.item_id, ev.c.action_id == prior.action_id, todo)
            todo = [i for i in todo if i not in done]
            if not todo:
                return 0
        tag_id = intern_strings(conn, t, [tag])[tag]
        present = values_among(conn, cur.c.item_id, cur.c.tag_id == tag_id, todo)
        adding = action == "add"
        todo = [i for i in todo if (i in present) != adding]
        if not todo:
            return 0
        if prior is None:
            action_id = conn.execute(sa.insert(act).values(
                action_key=key, action=action, tag=tag, author=author, reason=reason,
                context=ctx, created_at=now_us()).returning(act.c.action_id)).scalar_one()
        else:
            action_id = prior.action_id
        dialect = self.engine.dialect
        conn.execute(insert_items(ev, todo, dialect, action_id=action_id))
        if adding:
            conn.execute(insert_items(cur, todo, dialect, tag_id=tag_id, action_id=action_id))
        else:
            conn.execute(sa.delete(cur).where(cur.c.tag_id == tag_id,
                                              among(cur.c.item_id, todo, dialect)))
        return len(todo)

    def history(self, item_id: str | None = None, tag: str | None = None, *,
                limit: int | None = None) -> pd.DataFrame:
        """Return the tag events, oldest first (see :meth:`TagStore.history`)."""
        ev, act = self.tables.events, self.tables.actions
        q = sa.select(ev.c.event_id, ev.c.item_id, act.c.tag, act.c.action, act.c.author,
                      act.c.reason, act.c.context, act.c.created_at, act.c.action_key
                      ).join_from(ev, act, ev.c.action_id == act.c.action_id)
        if item_id is not None:
            q = q.where(ev.c.item_id == str(item_id))
        if tag is not None:
            q = q.where(act.c.tag == normalize_tag(tag, func="TagStore.history"))
        if limit is not None:
            from .._validation import check_int

            check_int(limit, "limit", "TagStore.history", minimum=0)
            q = q.order_by(ev.c.event_id.desc()).limit(limit)
        else:
            q = q.order_by(ev.c.event_id)
        rows = self.engine.read(lambda conn: conn.execute(q).all())
        if limit is not None:
            rows = rows[::-1]
        return events_frame(rows, _HISTORY)

    def known_tags(self) -> list[str]:
        """Return every tag name ever used (sorted)."""
        act = self.tables.actions
        return self.engine.read(lambda conn: sorted(
            conn.execute(sa.select(act.c.tag).distinct()).scalars().all()))

    def replay_mismatches(self, conn) -> int:
        """Count the (item, tag) pairs where ``tag_current`` differs from a replay of events."""
        t = self.tables
        ev, act, cur, s = t.events, t.actions, t.current, t.strings
        named = (sa.select(ev.c.event_id, ev.c.item_id, act.c.tag, act.c.action)
                 .join_from(ev, act, ev.c.action_id == act.c.action_id).cte("ev"))
        last = (sa.select(named.c.item_id, named.c.tag,
                          sa.func.max(named.c.event_id).label("m"))
                .group_by(named.c.item_id, named.c.tag).subquery("l"))
        final = conn.execute(sa.select(named.c.item_id, named.c.tag, named.c.action)
                             .join(last, named.c.event_id == last.c.m)).all()
        derived = {(i, g) for i, g, a in final if a == "add"}
        stored = set(conn.execute(sa.select(cur.c.item_id, s.c.value)
                                  .join_from(cur, s, s.c.string_id == cur.c.tag_id)).all())
        return len(derived ^ stored)
