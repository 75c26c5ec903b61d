"""Tag events: audited ``add``/``remove`` writes and the audit trail.

Every call appends one row to ``tag_actions`` (who, when, what, why, from where) and one row
per item or box it changed to ``tag_events``, and updates ``tag_current`` (image tags) and
``box_current`` (box tags) in the same transaction. The triple (action, item, box) is unique,
so a retried or replayed call never duplicates an event.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from .dialect import among, insert_items
from .frames import events_frame, now_us
from .part import StorePart
from .schema import NO_BOX, intern_strings
from .validation import item_box_pairs, normalize_tag, write_args

__all__ = ["TagEvents", "values_among"]

_HISTORY = ["event_id", "item_id", "tag", "action", "author", "reason", "context",
            "created_at", "action_key", "box_id"]


def values_among(conn, column, where, values: list[str]) -> set[str]:
    """Return the ``values`` found in ``column`` on the rows matching ``where``."""
    dialect = conn.dialect.name
    return set(conn.execute(sa.select(column).where(where, among(column, values, dialect)))
               .scalars())


def pairs_among(conn, table, where, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Return the ``(item_id, box_id)`` pairs found in ``table`` on the rows matching ``where``."""
    items = list(dict.fromkeys(i for i, _ in pairs))
    found = conn.execute(sa.select(table.c.item_id, table.c.box_id).where(
        where, among(table.c.item_id, items, conn.dialect.name))).all()
    return set(pairs) & {(i, b) for i, b in found}


class TagEvents(StorePart):
    """Write tag events and read the audit trail.

    Parameters
    ----------
    engine, tables : StoreEngine, Tables
        The store's connection and tables (see :class:`~workbench.store.part.StorePart`).
    known : KnownIds or None
        The project's item ids; writes naming others are refused. None accepts any id.

    Attributes
    ----------
    boxes : ProjectBoxes or None
        The project's box ids (set by ``TagStore.for_project``); None accepts any box id.
    """

    boxes = None  # set by TagStore.for_project

    def change(self, action: str, item_ids, tag, *, author, reason, context,
               action_key, box_ids=None) -> int:
        """Add (``action="add"``) or remove a tag; return the events written.

        Items (and boxes) already in the wanted state are left alone (no event). A call whose
        ``action_key`` was used before writes only the items and boxes it has not written yet.
        """
        func = f"TagStore.{action}"
        pairs: list[tuple[str, str]] = []
        if box_ids is not None:
            images, pairs = item_box_pairs(item_ids, box_ids, func)
            item_ids = images + list(dict.fromkeys(i for i, _ in pairs))
        ids, *args = write_args(func, item_ids, tag, author, reason, context, action_key,
                                self.known)
        if box_ids is not None:
            ids = images
            if pairs and self.boxes is not None:
                self.boxes.check(pairs, func, allow_unknown=action == "remove")
        if not ids and not pairs:
            return 0
        return self.engine.write(lambda conn: self._apply(conn, func, action, ids, pairs,
                                                          *args),
                                 doing=f"{action} tags in")

    def _apply(self, conn, func, action, ids, pairs, tag, author, reason, ctx, key) -> int:
        t = self.tables
        act, ev, cur, bcur = t.actions, t.events, t.current, t.box_current
        todo = ids
        prior = conn.execute(sa.select(act.c.action_id, act.c.action, act.c.tag)
                             .where(act.c.action_key == key)).first()
        if prior is not None:  # a replayed call: skip the items and boxes it already wrote
            if (prior.action, prior.tag) != (action, tag):
                raise ValueError(
                    f"{func}: the action_key {key!r} was already used to {prior.action} the "
                    f"tag {prior.tag!r}. Use a new key for a different action.")
            if todo:
                done = values_among(conn, ev.c.item_id, sa.and_(
                    ev.c.action_id == prior.action_id, ev.c.box_id == NO_BOX), todo)
                todo = [i for i in todo if i not in done]
            if pairs:
                done_pairs = pairs_among(conn, ev, ev.c.action_id == prior.action_id, pairs)
                pairs = [p for p in pairs if p not in done_pairs]
            if not todo and not pairs:
                return 0
        tag_id = intern_strings(conn, t, [tag])[tag]
        adding = action == "add"
        if todo:
            present = values_among(conn, cur.c.item_id, cur.c.tag_id == tag_id, todo)
            todo = [i for i in todo if (i in present) != adding]
        if pairs:
            tagged = pairs_among(conn, bcur, bcur.c.tag_id == tag_id, pairs)
            pairs = [p for p in pairs if (p in tagged) != adding]
        if not todo and not pairs:
            return 0
        if prior is None:
            action_id = conn.execute(sa.insert(act).values(
                action_key=key, action=action, tag=tag, author=author, reason=reason,
                context=ctx, created_at=now_us()).returning(act.c.action_id)).scalar_one()
        else:
            action_id = prior.action_id
        dialect = self.engine.dialect
        if todo:  # image tags: box_id takes its default ('')
            conn.execute(insert_items(ev, todo, dialect, action_id=action_id))
            if adding:
                conn.execute(insert_items(cur, todo, dialect, tag_id=tag_id,
                                          action_id=action_id))
            else:
                conn.execute(sa.delete(cur).where(cur.c.tag_id == tag_id,
                                                  among(cur.c.item_id, todo, dialect)))
        if pairs:
            self._write_boxes(conn, adding, pairs, tag_id, action_id)
        return len(todo) + len(pairs)

    def _write_boxes(self, conn, adding: bool, pairs, tag_id: int, action_id: int) -> None:
        """Append the box events and update ``box_current`` (a few rows: executemany)."""
        ev, bcur = self.tables.events, self.tables.box_current
        conn.execute(sa.insert(ev), [{"item_id": i, "box_id": b, "action_id": action_id}
                                     for i, b in pairs])
        if adding:
            conn.execute(sa.insert(bcur), [{"tag_id": tag_id, "item_id": i, "box_id": b,
                                            "action_id": action_id} for i, b in pairs])
        else:
            conn.execute(sa.delete(bcur).where(
                bcur.c.tag_id == tag_id, bcur.c.item_id == sa.bindparam("p_item"),
                bcur.c.box_id == sa.bindparam("p_box")),
                [{"p_item": i, "p_box": b} for i, b in pairs])

    def history(self, item_id: str | None = None, tag: str | None = None, *,
                box_id: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Return the tag events, oldest first (see :meth:`TagStore.history`)."""
        ev, act = self.tables.events, self.tables.actions
        q = sa.select(ev.c.event_id, ev.c.item_id, act.c.tag, act.c.action, act.c.author,
                      act.c.reason, act.c.context, act.c.created_at, act.c.action_key,
                      ev.c.box_id).join_from(ev, act, ev.c.action_id == act.c.action_id)
        if item_id is not None:
            q = q.where(ev.c.item_id == str(item_id))
        if tag is not None:
            q = q.where(act.c.tag == normalize_tag(tag, func="TagStore.history"))
        if box_id is not None:
            q = q.where(ev.c.box_id == str(box_id).strip())
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

    def integrity_check(self) -> str:
        """Return ``"ok"`` or the problems found (see :meth:`TagStore.integrity_check`)."""
        def run(conn) -> list[str]:
            problems = []
            if self.engine.dialect == "sqlite":  # a PRAGMA: no SQLAlchemy construct
                rows = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
                if rows != ["ok"]:
                    problems.extend(rows)
            n = self.replay_mismatches(conn)
            if n:
                problems.append(f"current tags differ from the event log for {n} (item, box, "
                                "tag) triples")
            return problems

        problems = self.engine.read(run)
        return "ok" if not problems else "; ".join(problems)

    def replay_mismatches(self, conn) -> int:
        """Count the (item, box, tag) triples where the current state differs from a replay.

        The current state is ``tag_current`` (image tags) plus ``box_current`` (box tags).
        """
        t = self.tables
        ev, act, cur, bcur, s = t.events, t.actions, t.current, t.box_current, t.strings
        named = (sa.select(ev.c.event_id, ev.c.item_id, ev.c.box_id, act.c.tag, act.c.action)
                 .join_from(ev, act, ev.c.action_id == act.c.action_id).cte("ev"))
        last = (sa.select(named.c.item_id, named.c.box_id, named.c.tag,
                          sa.func.max(named.c.event_id).label("m"))
                .group_by(named.c.item_id, named.c.box_id, named.c.tag).subquery("l"))
        final = conn.execute(sa.select(named.c.item_id, named.c.box_id, named.c.tag,
                                       named.c.action)
                             .join(last, named.c.event_id == last.c.m)).all()
        derived = {(i, b, g) for i, b, g, a in final if a == "add"}
        stored = {(i, NO_BOX, g) for i, g in conn.execute(
            sa.select(cur.c.item_id, s.c.value).join_from(cur, s, s.c.string_id == cur.c.tag_id))}
        stored |= set(conn.execute(sa.select(bcur.c.item_id, bcur.c.box_id, s.c.value)
                                   .join_from(bcur, s, s.c.string_id == bcur.c.tag_id)).all())
        return len(derived ^ stored)
