"""The store's tables, its schema version, and the upgrade of older stores.

Tables
------
``wb_meta``         key/value, holds ``schema_version``
``wb_strings``      interned strings (tag names), referenced by ``tag_id`` columns
``tag_actions``     one row per ``add``/``remove`` call: who, what, why, from where, when
``tag_events``      one row per item or box a call changed; (item, box, action) is unique
``tag_current``     the current image tags, maintained in the write's transaction
``box_current``     the current box tags, (tag, item, box), maintained the same way
``status_events``   relabel-queue status transitions; (action key, item) is unique
``status_current``  the current status of each (queue, item)
``guideline_revisions``  labeling-guideline revisions per class or class pair (append-only)
``label_decisions``      curators' label decisions per item (append-only; the latest wins)
``qc_rounds``            QC rounds: name, author, time, parameters (JSON)
``qc_round_items``       the items of each round, their slot and annotator slot, gold or not

An image-level event has ``box_id = ''`` (:data:`NO_BOX`; never NULL, so the unique
constraint holds for image events too: SQL treats NULLs as distinct); box ids are never empty.
Image tags and box tags live in two current-state tables so the image-tag reads and writes
stay what they were before box tags existed.

Versions: schemas 1-2 kept one flat ``tag_events`` row per event; schema 3 split it into
actions and events; schema 4 points the current state at the action; schema 5 adds box tags
(``tag_events.box_id`` and ``box_current``); schema 6 adds guideline revisions, label
decisions and QC rounds (new tables only). :meth:`Schema.open` creates a new store,
upgrades an older one in place (in one transaction, keeping every event) and refuses a newer
one untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

import sqlalchemy as sa

from ..errors import StoreError
from .validation import MAX_KEY_LENGTH

__all__ = ["SCHEMA_VERSION", "NO_BOX", "Tables", "define_tables", "Schema", "intern_strings",
           "lookup_strings", "chunks"]

log = logging.getLogger(__name__)

#: Version of the store's tables; older stores are upgraded on open, newer ones refused.
SCHEMA_VERSION = 6
#: ``tag_events.box_id`` of an image-level event (box ids are never empty).
NO_BOX = ""
_CHUNK = 2000  # values per IN (...) query


def chunks(values: list, size: int = _CHUNK):
    """Yield successive slices of ``values`` of at most ``size`` items."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Tables(NamedTuple):
    """The store's tables (SQLAlchemy Core ``Table`` objects of one ``MetaData``)."""

    meta: sa.Table
    strings: sa.Table
    actions: sa.Table
    events: sa.Table
    current: sa.Table
    box_current: sa.Table
    status_events: sa.Table
    status_current: sa.Table
    guidelines: sa.Table
    decisions: sa.Table
    qc_rounds: sa.Table
    qc_round_items: sa.Table


def define_tables(metadata: sa.MetaData | None = None) -> Tables:
    """Declare the tables of the current schema on ``metadata`` (a new one by default)."""
    from sqlalchemy import (
        BigInteger,
        Boolean,
        Column,
        Index,
        Integer,
        String,
        Table,
        Text,
        UniqueConstraint,
    )

    md = sa.MetaData() if metadata is None else metadata
    big_id = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY = rowid
    return Tables(
        meta=Table("wb_meta", md,
                   Column("key", String(64), primary_key=True),
                   Column("value", Text, nullable=False)),
        strings=Table("wb_strings", md,
                      Column("string_id", big_id, primary_key=True, autoincrement=True),
                      Column("value", Text, nullable=False, unique=True)),
        actions=Table(
            "tag_actions", md,
            Column("action_id", big_id, primary_key=True, autoincrement=True),
            Column("action_key", String(MAX_KEY_LENGTH), nullable=False, unique=True),
            Column("action", String(8), nullable=False),
            Column("tag", Text, nullable=False),
            Column("author", Text, nullable=False),
            Column("reason", Text),
            Column("context", Text),
            Column("created_at", BigInteger, nullable=False),  # microseconds since epoch, UTC
            Index("ix_tag_actions_tag", "tag"),
        ),
        events=Table(
            "tag_events", md,
            Column("event_id", big_id, primary_key=True, autoincrement=True),
            Column("item_id", Text, nullable=False),
            Column("action_id", BigInteger, nullable=False),
            Column("box_id", Text, nullable=False, server_default=NO_BOX),  # '': the image
            UniqueConstraint("item_id", "box_id", "action_id",
                             name="uq_tag_events_item_box_action"),
        ),
        current=Table(
            "tag_current", md,
            Column("tag_id", BigInteger, primary_key=True),  # wb_strings id of the tag name
            Column("item_id", Text, primary_key=True),
            Column("action_id", BigInteger, nullable=False),  # the add: who, why, when
            sqlite_with_rowid=False,
        ),
        box_current=Table(
            "box_current", md,
            Column("tag_id", BigInteger, primary_key=True),
            Column("item_id", Text, primary_key=True),
            Column("box_id", Text, primary_key=True),
            Column("action_id", BigInteger, nullable=False),
            sqlite_with_rowid=False,
        ),
        status_events=Table(
            "status_events", md,
            Column("event_id", big_id, primary_key=True, autoincrement=True),
            Column("item_id", Text, nullable=False),
            Column("queue", Text, nullable=False),
            Column("status", String(16), nullable=False),
            Column("author", Text, nullable=False),
            Column("reason", Text),
            Column("context", Text),
            Column("created_at", BigInteger, nullable=False),
            Column("action_key", String(MAX_KEY_LENGTH), nullable=False),
            UniqueConstraint("action_key", "item_id", name="uq_status_events_key_item"),
            Index("ix_status_events_item", "item_id"),
        ),
        status_current=Table(
            "status_current", md,
            Column("queue", Text, primary_key=True),
            Column("item_id", Text, primary_key=True),
            Column("status", String(16), nullable=False),
            Column("author", Text, nullable=False),
            Column("reason", Text),
            Column("updated_at", BigInteger, nullable=False),
            sqlite_with_rowid=False,
        ),
        guidelines=Table(
            "guideline_revisions", md,
            Column("revision_id", big_id, primary_key=True, autoincrement=True),
            Column("target", Text, nullable=False),  # a class, or "a|b" (sorted pair)
            Column("text", Text, nullable=False),  # Markdown as typed (rendered on read)
            Column("author", Text, nullable=False),
            Column("reason", Text),
            Column("effective_at", BigInteger, nullable=False),  # microseconds, UTC
            Column("effective_batch", Text),  # effective from this batch on, if given so
            Column("created_at", BigInteger, nullable=False),
            Column("examples", Text),  # JSON {item_id: "do" | "don't"}
            Index("ix_guideline_revisions_target", "target"),
        ),
        decisions=Table(
            "label_decisions", md,
            Column("decision_id", big_id, primary_key=True, autoincrement=True),
            Column("item_id", Text, nullable=False),
            Column("label", Text, nullable=False),
            Column("author", Text, nullable=False),
            Column("reason", Text),
            Column("decided_at", BigInteger, nullable=False),
            Index("ix_label_decisions_item", "item_id"),
        ),
        qc_rounds=Table(
            "qc_rounds", md,
            Column("round_id", big_id, primary_key=True, autoincrement=True),
            Column("name", Text, nullable=False),
            Column("author", Text, nullable=False),
            Column("created_at", BigInteger, nullable=False),
            Column("params", Text),  # JSON
        ),
        qc_round_items=Table(
            "qc_round_items", md,
            Column("round_id", BigInteger, primary_key=True),
            Column("item_id", Text, primary_key=True),
            Column("annotator_slot", Integer, primary_key=True),
            Column("slot", Integer, nullable=False),  # the item's position in the batch
            Column("is_gold", Boolean, nullable=False),
            sqlite_with_rowid=False,
        ),
    )


# The flat event table of schemas 1-2, kept as tag_events_v1 by the upgrade.
_FLAT_V1 = sa.table("tag_events_v1", *(sa.column(name) for name in (
    "event_id", "item_id", "tag", "action", "author", "reason", "context", "created_at",
    "action_key")))


def intern_strings(conn, tables: Tables, values: Iterable[str | None]) -> dict[str, int]:
    """Return the ``wb_strings`` id of each value, inserting the new ones."""
    s = tables.strings
    wanted = sorted({v for v in values if v is not None})
    found: dict[str, int] = {}
    for chunk in chunks(wanted):
        found.update(conn.execute(sa.select(s.c.value, s.c.string_id)
                                  .where(s.c.value.in_(chunk))).all())
    for value in wanted:
        if value not in found:
            found[value] = conn.execute(sa.insert(s).values(value=value)
                                        .returning(s.c.string_id)).scalar_one()
    return found


def lookup_strings(conn, tables: Tables, ids: Iterable[int]) -> dict[int, str]:
    """Return the value of each ``wb_strings`` id."""
    s = tables.strings
    out: dict[int, str] = {}
    for chunk in chunks(sorted({int(i) for i in ids})):
        out.update(conn.execute(sa.select(s.c.string_id, s.c.value)
                                .where(s.c.string_id.in_(chunk))).all())
    return out


class Schema:
    """Create, check and upgrade the tables of one store.

    Parameters
    ----------
    engine : StoreEngine
        The store's connection (its transactions, dialect and location).
    tables : Tables
        The tables of the current schema.
    """

    def __init__(self, engine, tables: Tables):
        self.engine = engine
        self.tables = tables

    def open(self) -> None:
        """Create the tables of a new store, upgrade an older one, refuse a newer one.

        Raises
        ------
        StoreError
            The store was written by a newer workbench, has an unreadable version, or is
            read-only and lacks the tables or needs an upgrade. The engine is disposed.
        """
        try:
            if self.engine.read_only:
                self._check_read_only()
            else:
                self.engine.write(self._init, doing="open", records=False)
        except StoreError:
            self.engine.dispose()
            raise

    def _check_read_only(self) -> None:
        where = self.engine.where
        version = self.engine.read(self.version)
        if version is None:
            raise StoreError(f"The tag store {where} is read-only and has no workbench tables."
                             " Make it writable (chmod u+w) so they can be created.")
        self.check(version)
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"The tag store {where} uses schema {version} and must be upgraded to "
                f"{SCHEMA_VERSION}, but it is read-only. Make it writable (chmod u+w) and "
                "open it once.")

    def _init(self, conn) -> None:
        version = self.version(conn)
        if version is not None:
            self.check(version)
            if version < SCHEMA_VERSION:
                self.upgrade(conn, version)
            return
        self.tables.meta.metadata.create_all(conn)
        conn.execute(sa.insert(self.tables.meta).values(key="schema_version",
                                                        value=str(SCHEMA_VERSION)))

    def version(self, conn) -> int | None:
        """Return the schema version of the store (None for an empty database)."""
        insp = sa.inspect(conn)
        if not insp.has_table("wb_meta"):
            return 1 if insp.has_table("tag_events") else None  # schema 1 without meta
        meta = self.tables.meta
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")
                             ).scalar()
        if value is None:
            return 1
        try:
            return int(value)
        except ValueError:
            raise StoreError(f"The tag store {self.engine.where} has an unreadable schema "
                             f"version {value!r}. It was left untouched; restore it from a "
                             "backup.") from None

    def check(self, version: int) -> None:
        """Refuse a store written by a newer workbench."""
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The tag store {self.engine.where} was written by a newer workbench (schema "
                f"{version}; this version reads up to {SCHEMA_VERSION}). Upgrade workbench "
                "(pip install -U workbench); the store was left untouched.")

    def upgrade(self, conn, version: int) -> None:
        """Upgrade an older store in place (inside the open transaction).

        Schemas 1-2 kept one flat row per event (action key, tag, author... repeated on
        every item). Since schema 3 each call is stored once (``tag_actions``) with one small
        row per item (``tag_events``); schema 4 points the current state at the action;
        schema 5 gives each event a ``box_id`` (``''`` for the image, so every existing
        event stays an image event) and adds the empty ``box_current``; schema 6 adds the
        empty guideline, decision and QC-round tables (``create_all`` creates only the
        tables missing, so every older row is kept as it is). The flat table is
        kept as ``tag_events_v1`` (audit data is never dropped); the current state is
        derived, so it is rebuilt by replaying the events (schemas 1-3).
        """
        t = self.tables
        log.info("Upgrading tag store %s from schema %s to %s", self.engine.where, version,
                 SCHEMA_VERSION)
        flat = []
        if version < 4:
            insp = sa.inspect(conn)
            if insp.has_table("tag_current"):
                t.current.drop(conn)
            if insp.has_table("tag_events") and "action_key" in {
                    c["name"] for c in insp.get_columns("tag_events")}:
                # DDL without a Core construct (Alembic's op.rename_table does the same)
                conn.exec_driver_sql("ALTER TABLE tag_events RENAME TO tag_events_v1")
                if self.engine.dialect == "postgresql":
                    conn.exec_driver_sql(
                        "ALTER INDEX IF EXISTS tag_events_pkey RENAME TO tag_events_v1_pkey")
                flat = conn.execute(sa.select(*_FLAT_V1.c).order_by(_FLAT_V1.c.event_id)).all()
        insp = sa.inspect(conn)  # a new inspector: the tables may have been renamed
        if insp.has_table("tag_events") and "box_id" not in {
                c["name"] for c in insp.get_columns("tag_events")}:
            self._add_box_ids(conn)
        t.meta.metadata.create_all(conn)
        if version < 4:
            self._split_flat_events(conn, flat)
            self._rebuild_current(conn)
        conn.execute(sa.delete(t.meta).where(t.meta.c.key == "schema_version"))
        conn.execute(sa.insert(t.meta).values(key="schema_version", value=str(SCHEMA_VERSION)))

    def _add_box_ids(self, conn) -> None:
        """Give the events of a schema-3/4 store a ``box_id`` ('' = image) and the new key.

        PostgreSQL alters the table in place (a column with a constant default costs no
        rewrite; the event id sequence is kept). SQLite cannot drop a table's unique
        constraint: the table is rebuilt, its rows copied with their ids (SQLite's documented
        12-step ALTER).
        """
        if self.engine.dialect == "postgresql":  # DDL without a Core construct (as Alembic)
            conn.exec_driver_sql(
                "ALTER TABLE tag_events ADD COLUMN box_id TEXT NOT NULL DEFAULT ''")
            conn.exec_driver_sql(
                "ALTER TABLE tag_events DROP CONSTRAINT IF EXISTS uq_tag_events_item_action")
            conn.exec_driver_sql(
                "ALTER TABLE tag_events ADD CONSTRAINT uq_tag_events_item_box_action "
                "UNIQUE (item_id, box_id, action_id)")
            return
        ev = self.tables.events
        conn.exec_driver_sql("ALTER TABLE tag_events RENAME TO tag_events_v4")
        ev.create(conn)
        old = sa.table("tag_events_v4", sa.column("event_id"), sa.column("item_id"),
                       sa.column("action_id"))
        conn.execute(sa.insert(ev).from_select(
            ["event_id", "item_id", "action_id", "box_id"],
            sa.select(old.c.event_id, old.c.item_id, old.c.action_id,
                      sa.literal(NO_BOX, sa.Text)).order_by(old.c.event_id)))
        conn.exec_driver_sql("DROP TABLE tag_events_v4")  # every row copied just above

    def _split_flat_events(self, conn, flat: list) -> None:
        """Write schema-1/2 rows as one action per call plus one event per item."""
        t = self.tables
        actions: dict[tuple, int] = {}
        keys_used: set[str] = set()
        events = []
        for event_id, item_id, tag, action, author, reason, context, created, key in flat:
            attrs = (key, action, tag, author, reason, context, int(created))
            if attrs not in actions:
                new_key, n = key, 1
                while new_key in keys_used:  # one key reused for another call: suffix it
                    n += 1
                    new_key = f"{key}#{n}"
                keys_used.add(new_key)
                actions[attrs] = conn.execute(sa.insert(t.actions).values(
                    action_key=new_key, action=action, tag=tag, author=author, reason=reason,
                    context=context, created_at=int(created)
                ).returning(t.actions.c.action_id)).scalar_one()
            events.append({"event_id": int(event_id), "item_id": item_id,
                           "action_id": actions[attrs]})
        if events:
            conn.execute(sa.insert(t.events), events)

    def _rebuild_current(self, conn) -> None:
        """Derive ``tag_current`` and ``box_current`` by replaying every tag event in order."""
        t = self.tables
        ev, act = t.events, t.actions
        replay = conn.execute(
            sa.select(ev.c.item_id, ev.c.box_id, act.c.tag, act.c.action, act.c.action_id)
            .join_from(ev, act, ev.c.action_id == act.c.action_id).order_by(ev.c.event_id))
        state: dict[tuple[str, str, str], int] = {}
        for item_id, box_id, tag, action, action_id in replay:
            if action == "add":
                state[(item_id, box_id, tag)] = action_id
            else:
                state.pop((item_id, box_id, tag), None)
        ids = intern_strings(conn, t, {tag for _, _, tag in state})
        conn.execute(sa.delete(t.box_current))
        images = [{"tag_id": ids[g], "item_id": i, "action_id": a}
                  for (i, b, g), a in state.items() if b == NO_BOX]
        boxes = [{"tag_id": ids[g], "item_id": i, "box_id": b, "action_id": a}
                 for (i, b, g), a in state.items() if b != NO_BOX]
        if images:
            conn.execute(sa.insert(t.current), images)
        if boxes:
            conn.execute(sa.insert(t.box_current), boxes)
