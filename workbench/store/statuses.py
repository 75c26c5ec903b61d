"""Relabel-queue statuses: audited transitions and the current status of each item.

A transition appends one ``status_events`` row per item it changed and upserts
``status_current`` in the same transaction; (action key, item) is unique, so a replayed
import never records a transition twice.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from .dialect import among, insert_items, upsert
from .events import values_among
from .frames import events_frame, now_us, statuses_frame
from .part import StorePart
from .validation import normalize_ids, normalize_tag, write_args

__all__ = ["STATUSES", "QueueStatuses"]

#: Relabel-queue statuses, in workflow order.
STATUSES = ("queued", "sent", "relabeled", "verified")

_HISTORY = ["event_id", "item_id", "queue", "status", "author", "reason", "context",
            "created_at", "action_key"]


class QueueStatuses(StorePart):
    """Record and read relabel-queue statuses.

    Parameters
    ----------
    engine, tables : StoreEngine, Tables
        The store's connection and tables (see :class:`~workbench.store.part.StorePart`).
    known : KnownIds or None
        The project's item ids; writes naming others are refused. None accepts any id.
    """

    def set(self, item_ids, status: str, *, queue: str, author: str, reason=None,
            context=None, action_key=None) -> int:
        """Record a status transition; return the events written (see ``set_status``)."""
        from .._validation import check_option

        func = "TagStore.set_status"
        check_option(status, "status", func, STATUSES)
        args = write_args(func, item_ids, queue, author, reason, context, action_key,
                          self.known)
        if not args[0]:
            return 0
        return self.engine.write(lambda conn: self._apply(conn, status, *args),
                                 doing="record statuses in")

    def _apply(self, conn, status, ids, queue, author, reason, ctx, key) -> int:
        ev, cur = self.tables.status_events, self.tables.status_current
        done = values_among(conn, ev.c.item_id, ev.c.action_key == key, ids)
        todo = [i for i in ids if i not in done]
        dialect = self.engine.dialect
        same = values_among(conn, cur.c.item_id,
                            sa.and_(cur.c.queue == queue, cur.c.status == status), todo)
        todo = [i for i in todo if i not in same]
        if not todo:
            return 0
        now = now_us()
        conn.execute(insert_items(ev, todo, dialect, queue=queue, status=status, author=author,
                                  reason=reason, context=ctx, created_at=now, action_key=key))
        insert = upsert(cur, dialect)
        conn.execute(insert_items(
            cur, todo, dialect, insert=insert, queue=queue, status=status, author=author,
            reason=reason, updated_at=now,
        ).on_conflict_do_update(
            index_elements=[cur.c.queue, cur.c.item_id],
            set_={c: insert.excluded[c] for c in ("status", "author", "reason", "updated_at")}))
        return len(todo)

    def current(self, queue: str, item_ids=None) -> pd.DataFrame:
        """Return the current status of items in ``queue`` (see ``TagStore.statuses``)."""
        cur = self.tables.status_current
        queue = normalize_tag(queue, func="TagStore.statuses")
        ids = None if item_ids is None else normalize_ids(item_ids, "TagStore.statuses")
        q = sa.select(cur.c.item_id, cur.c.status, cur.c.author, cur.c.reason,
                      cur.c.updated_at).where(cur.c.queue == queue)
        if ids is None:
            rows = self.engine.read(lambda conn: conn.execute(q.order_by(cur.c.item_id)).all())
        else:
            q = q.where(among(cur.c.item_id, ids, self.engine.dialect))
            rows = sorted(self.engine.read(lambda conn: conn.execute(q).all()))
        return statuses_frame(rows)

    def history(self, item_id: str | None = None, queue: str | None = None) -> pd.DataFrame:
        """Return the status events, oldest first (see ``TagStore.status_history``)."""
        ev = self.tables.status_events
        q = sa.select(ev.c.event_id, ev.c.item_id, ev.c.queue, ev.c.status, ev.c.author,
                      ev.c.reason, ev.c.context, ev.c.created_at, ev.c.action_key
                      ).order_by(ev.c.event_id)
        if item_id is not None:
            q = q.where(ev.c.item_id == str(item_id))
        if queue is not None:
            q = q.where(ev.c.queue == normalize_tag(queue, func="TagStore.status_history"))
        return events_frame(self.engine.read(lambda conn: conn.execute(q).all()), _HISTORY)

