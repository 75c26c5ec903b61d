"""An audited tag store: append-only tag events, SQLite by default, PostgreSQL for teams.

Every ``add``/``remove`` call appends one action (who, when, what, why, from where) to
``tag_actions`` and one event per item it changed to ``tag_events``; the current tags are kept
in ``tag_current``, updated in the same transaction, so reads stay fast. Relabel-queue
statuses are stored the same way (``status_events``/``status_current``).

Storage
-------
* ``TagStore()`` / ``TagStore(root=folder)``: a SQLite file ``<folder>/.workbench/workbench.db``
  (``folder`` defaults to ``WORKBENCH_PROJECT``, else the working directory) unless
  ``WORKBENCH_DB_URL`` is set. WAL journal, ``synchronous=FULL``, a busy timeout, and write
  transactions that take the write lock at ``BEGIN IMMEDIATE``.
* ``TagStore("postgresql+psycopg://user@host/db")``: a shared PostgreSQL database. Writes are
  serialised with a transaction-level advisory lock and retried on serialization failures,
  deadlocks and dropped connections (``pool_pre_ping``).

Every write carries an *action key*; the pair (action key, item) is unique, so a retried or
replayed call never duplicates an event.
"""

from __future__ import annotations

import json
import logging
import os
import random
import stat
import threading
import time
import unicodedata
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import SchemaError, StoreError

__all__ = ["TagStore", "SCHEMA_VERSION", "STATUSES", "normalize_tag"]

log = logging.getLogger(__name__)

#: Version of the store's tables; older stores are upgraded on open, newer ones refused.
SCHEMA_VERSION = 4
#: Relabel-queue statuses, in workflow order.
STATUSES = ("queued", "sent", "relabeled", "verified")

MAX_TAG_LENGTH = 64
MAX_REASON_LENGTH = 2000
MAX_AUTHOR_LENGTH = 128
MAX_KEY_LENGTH = 200
_CHUNK = 2000  # ids per IN (...) query
_PG_LOCK_KEY = 0x5742_5441  # advisory lock serialising writers ("WBTA")

# Bidirectional overrides/isolates and marks: they make a tag display differently from what
# it is (Trojan-source style), so they are refused in names.
_BIDI = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


def _bad_chars(text: str, *, allow_newlines: bool) -> list[str]:
    bad = []
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            if allow_newlines and ch in "\n\t":
                continue
            bad.append(f"U+{ord(ch):04X}")
    return sorted(set(bad))


def normalize_tag(tag: Any, *, func: str = "TagStore") -> str:
    """Normalise and validate a tag name.

    Surrounding white space is stripped and the name is put in Unicode NFC form.

    Parameters
    ----------
    tag : str
        The tag name.
    func : str, default="TagStore"
        The calling function, for messages.

    Returns
    -------
    str
        The normalised name.

    Raises
    ------
    TypeError
        If ``tag`` is not a str.
    SchemaError
        If the name is empty, longer than 64 characters, or holds control or bidirectional
        formatting characters.

    Examples
    --------
    >>> normalize_tag("  relabel ")
    'relabel'
    """
    if not isinstance(tag, str):
        raise TypeError(f"The 'tag' parameter of {func} must be a str. Got {tag!r} instead.")
    name = unicodedata.normalize("NFC", tag.strip())
    if not name:
        raise SchemaError(
            f"{func}: the tag name {tag!r} is empty. Type a name such as 'relabel' or 'blurry'."
        )
    bad = _bad_chars(name, allow_newlines=False)
    if bad:
        raise SchemaError(
            f"{func}: the tag name {tag!r} contains control or bidirectional formatting "
            f"characters {bad}. Retype the name with visible characters only."
        )
    if len(name) > MAX_TAG_LENGTH:
        raise SchemaError(
            f"{func}: the tag name {name[:20]!r}... is {len(name)} characters long; tag names "
            f"may be at most {MAX_TAG_LENGTH}. Use a short name and put details in the reason."
        )
    return name


def _normalize_text(value: Any, what: str, func: str, limit: int, *, required: bool,
                    allow_newlines: bool) -> str | None:
    if value is None:
        if required:
            raise TypeError(f"The {what!r} parameter of {func} must be a str. Got None instead.")
        return None
    if not isinstance(value, str):
        raise TypeError(f"The {what!r} parameter of {func} must be a str"
                        f"{'' if required else ' or None'}. Got {value!r} instead.")
    text = unicodedata.normalize("NFC", value.strip())
    if not text:
        if required:
            raise SchemaError(f"{func}: the {what} is empty. Pass a non-empty {what}.")
        return None
    bad = _bad_chars(text, allow_newlines=allow_newlines)
    if bad:
        raise SchemaError(
            f"{func}: the {what} {value[:40]!r} contains control or bidirectional formatting "
            f"characters {bad}. Remove them."
        )
    if len(text) > limit:
        raise SchemaError(
            f"{func}: the {what} is {len(text)} characters long; at most {limit} are allowed. "
            f"Shorten it."
        )
    return text


def _normalize_ids(item_ids: Any, func: str) -> list[str]:
    if item_ids is None:
        raise TypeError(f"The 'item_ids' parameter of {func} must be a list of item ids. "
                        "Got None instead.")
    if isinstance(item_ids, str):
        item_ids = [item_ids]
    elif hasattr(item_ids, "ids") and not isinstance(item_ids, pd.DataFrame):  # a Selection
        item_ids = item_ids.ids or ()
    if isinstance(item_ids, pd.DataFrame):
        raise TypeError(f"The 'item_ids' parameter of {func} must be a list of item ids, "
                        "not a DataFrame; pass frame['item_id'].")
    if isinstance(item_ids, (list, tuple)) and all(type(v) is str for v in item_ids):
        if "" in item_ids:
            raise SchemaError(f"{func}: item_ids holds an empty id ''. Drop it.")
        return list(dict.fromkeys(item_ids))  # fast path: de-duplicate, keep order
    out: list[str] = []
    for value in item_ids:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            raise SchemaError(f"{func}: item_ids holds a missing value (None/NA). "
                              "Drop missing ids before tagging.")
        text = value if isinstance(value, str) else str(value)
        if not text:
            raise SchemaError(f"{func}: item_ids holds an empty id ''. Drop it.")
        out.append(text)
    return list(dict.fromkeys(out))  # de-duplicate, keep order


def _now_us() -> int:
    return time.time_ns() // 1000


def _to_ts(values) -> pd.DatetimeIndex:
    """Microseconds since the epoch -> UTC timestamps (no per-element conversion)."""
    return pd.DatetimeIndex(np.asarray(values, dtype="int64").view("M8[us]")).tz_localize("UTC")


# --------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------


def _tables(metadata):
    from sqlalchemy import (
        BigInteger,
        Column,
        Index,
        Integer,
        String,
        Table,
        Text,
        UniqueConstraint,
    )

    big_id = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY = rowid
    t = {}
    t["meta"] = Table("wb_meta", metadata,
                      Column("key", String(64), primary_key=True),
                      Column("value", Text, nullable=False))
    t["strings"] = Table("wb_strings", metadata,
                         Column("string_id", big_id, primary_key=True, autoincrement=True),
                         Column("value", Text, nullable=False, unique=True))
    # one row per call (who, what, why, from where, when) ...
    t["actions"] = Table(
        "tag_actions", metadata,
        Column("action_id", big_id, primary_key=True, autoincrement=True),
        Column("action_key", String(MAX_KEY_LENGTH), nullable=False, unique=True),
        Column("action", String(8), nullable=False),
        Column("tag", Text, nullable=False),
        Column("author", Text, nullable=False),
        Column("reason", Text),
        Column("context", Text),
        Column("created_at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
        Index("ix_tag_actions_tag", "tag"),
    )
    # ... and one row per item it changed; (item, action) is unique: no duplicated event
    t["events"] = Table(
        "tag_events", metadata,
        Column("event_id", big_id, primary_key=True, autoincrement=True),
        Column("item_id", Text, nullable=False),
        Column("action_id", BigInteger, nullable=False),
        UniqueConstraint("item_id", "action_id", name="uq_tag_events_item_action"),
    )
    t["current"] = Table(
        "tag_current", metadata,
        Column("tag_id", BigInteger, primary_key=True),  # wb_strings id of the tag name
        Column("item_id", Text, primary_key=True),
        Column("action_id", BigInteger, nullable=False),  # the add: who, why, when
        sqlite_with_rowid=False,
    )
    t["status_events"] = Table(
        "status_events", metadata,
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
    )
    t["status_current"] = Table(
        "status_current", metadata,
        Column("queue", Text, primary_key=True),
        Column("item_id", Text, primary_key=True),
        Column("status", String(16), nullable=False),
        Column("author", Text, nullable=False),
        Column("reason", Text),
        Column("updated_at", BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    return t


_STORES: dict[int, TagStore] = {}
_STORES_LOCK = threading.Lock()


class TagStore:
    """Audited tags on items: append-only events plus a maintained current state.

    Parameters
    ----------
    url : str or path-like, optional
        ``None``: ``WORKBENCH_DB_URL`` if set, else a SQLite file
        ``<root>/.workbench/workbench.db``. A SQLAlchemy URL
        (``sqlite:///path.db``, ``sqlite://`` for memory, ``postgresql+psycopg://...``) or a
        plain file path (SQLite).
    root : path-like, optional
        Project folder for the default SQLite file (default: ``WORKBENCH_PROJECT``, else the
        working directory).
    item_ids : iterable of str, optional
        The known item ids. When given, writes naming other ids are refused.

    Attributes
    ----------
    url : str
        The database URL (password hidden).
    path : pathlib.Path or None
        The SQLite file, None for memory and PostgreSQL.
    persistent : bool
        False for an in-memory store (its tags vanish with the kernel).
    read_only : bool
        True when the SQLite file is not writable; reads work, writes raise StoreError.

    Raises
    ------
    StoreError
        When the database cannot be opened, is corrupt, or was written by a newer workbench.

    Examples
    --------
    >>> store = TagStore("sqlite://")
    >>> store.add(["a", "b"], "relabel", author="alice", reason="blurry")
    2
    >>> store.items_with("relabel")
    ['a', 'b']
    >>> store.remove(["a"], "relabel", author="alice")
    1
    >>> store.counts()
           tag  n_items
    0  relabel        1
    """

    def __init__(self, url: Any = None, *, root: Any = None, item_ids: Iterable | None = None,
                 max_attempts: int = 8, busy_timeout: float = 30.0):
        import sqlalchemy as sa

        self._sa = sa
        self.path: Path | None = None
        self.persistent = True
        self.read_only = False
        self.max_attempts = int(max_attempts)
        self._known = None if item_ids is None else frozenset(map(str, item_ids))
        if url is None:
            url = os.environ.get("WORKBENCH_DB_URL") or None
        if url is None:
            base = Path(root) if root is not None else Path(
                os.environ.get("WORKBENCH_PROJECT") or Path.cwd())
            url = base / ".workbench" / "workbench.db"
        url_text = os.fspath(url) if isinstance(url, os.PathLike) else str(url)
        if "://" not in url_text:  # a plain path: SQLite file
            self.path = Path(url_text).expanduser().resolve()
            url_text = f"sqlite:///{self.path}"
        if url_text.startswith(("postgresql://", "postgres://")):
            url_text = "postgresql+psycopg://" + url_text.split("://", 1)[1]
        try:
            parsed = sa.engine.make_url(url_text)
        except Exception as exc:
            raise StoreError(f"Cannot parse the tag store URL {url_text!r}: {exc}. Use "
                             "sqlite:///path/to/file.db or postgresql+psycopg://user@host/db."
                             ) from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"The tag store supports SQLite and PostgreSQL; got {self.dialect!r} "
                             f"in {parsed.render_as_string(hide_password=True)!r}.")
        self.url = parsed.render_as_string(hide_password=True)
        if self.dialect == "sqlite":
            self._engine = self._sqlite_engine(parsed, busy_timeout)
        else:
            self._engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=2,
                                            max_overflow=2, future=True)
        self._driver_error = self._engine.dialect.loaded_dbapi.Error
        self._tables = _tables(sa.MetaData())
        self._open()

    # ------------------------------------------------------------------ construction

    @classmethod
    def for_project(cls, project) -> TagStore:
        """Return the project's default store (one per project object in this kernel).

        ``WORKBENCH_DB_URL`` if set, else ``<project.root>/.workbench/workbench.db``; a
        project without a folder (``Project.from_frames``) gets an in-memory store
        (``store.persistent`` is False) shared by every widget of that project object.
        Writes are validated against ``project.items["item_id"]``.
        """
        key = id(project)
        with _STORES_LOCK:
            store = _STORES.get(key)
            if store is not None and store._project_ref() is project:
                return store
        ids = project.items["item_id"].astype(str).tolist()
        url = os.environ.get("WORKBENCH_DB_URL") or None
        root = getattr(project, "root", None)
        if url is None and root is None:
            url = "sqlite://"
            log.info("Project %r has no folder: tags are kept in memory for this kernel only.",
                     getattr(project, "name", "?"))
        store = cls(url, root=root, item_ids=ids)
        try:
            store._project_ref = weakref.ref(project)
            weakref.finalize(project, _STORES.pop, key, None)
        except TypeError:  # not weak-referenceable: do not cache
            return store
        with _STORES_LOCK:
            _STORES[key] = store
        return store

    def _sqlite_engine(self, parsed, busy_timeout):
        sa = self._sa
        database = parsed.database or ""
        memory = database in ("", ":memory:") or "mode=memory" in str(parsed)
        kwargs: dict[str, Any] = {"future": True}
        connect_args: dict[str, Any] = {"timeout": busy_timeout, "check_same_thread": False}
        if memory:
            self.persistent = False
            kwargs["poolclass"] = sa.pool.StaticPool
        else:
            self.path = Path(database).expanduser().resolve()
            if self.path.exists():
                if not self.path.is_file():
                    raise StoreError(f"The tag store path {self.path} is not a file. Point "
                                     "WORKBENCH_DB_URL (or the project folder) at a .db file.")
                mode = self.path.stat().st_mode
                if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(
                        self.path, os.W_OK):
                    self.read_only = True
            else:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"Cannot create the folder for the tag store {self.path}: {exc}. "
                        "Make the project folder writable or set WORKBENCH_DB_URL.") from exc
            if self.read_only:
                parsed = parsed.set(database=f"file:{self.path}?mode=ro",
                                    query={"uri": "true"})
        engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
        busy_ms = int(busy_timeout * 1000)
        read_only = self.read_only

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, record):  # pragma: no cover - exercised via engine
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                if not read_only and not memory:
                    cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = FULL")
            finally:
                cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):  # pragma: no cover - exercised via engine
            if conn.get_execution_options().get("wb_read") or read_only:
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _where(self) -> str:
        return str(self.path) if self.path is not None else self.url

    def _store_error(self, exc: BaseException, doing: str) -> StoreError:
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        low = text.lower()
        where = self._where()
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            hint = ("The file looks corrupt; it was left untouched. Restore it from a backup, "
                    "or move it aside (do not delete it) to start a new store.")
        elif "readonly" in low or "read-only" in low or "permission" in low or \
                "unable to open" in low:
            hint = ("The store is not writable. Make the file and its folder writable by this "
                    "user (chmod u+w), or point WORKBENCH_DB_URL at a writable store.")
        elif "locked" in low or "busy" in low:
            hint = "Another process held the write lock too long. Retry in a moment."
        else:
            hint = "Check that the database is reachable and retry."
        return StoreError(f"Cannot {doing} the tag store {where}: {text}. {hint}")

    def _open(self) -> None:
        sa = self._sa
        t = self._tables
        try:
            if self.read_only:
                with self._read() as conn:
                    version = self._version(conn)
                if version is None:
                    raise StoreError(
                        f"The tag store {self._where()} is read-only and has no workbench tables."
                        " Make it writable (chmod u+w) so they can be created.")
                self._check_version(version)
                if version < SCHEMA_VERSION:
                    raise StoreError(
                        f"The tag store {self._where()} uses schema {version} and must be "
                        f"upgraded to {SCHEMA_VERSION}, but it is read-only. Make it writable "
                        "(chmod u+w) and open it once.")
                return

            def init(conn):
                version = self._version(conn)
                if version is not None:
                    self._check_version(version)
                    if version < SCHEMA_VERSION:
                        self._upgrade(conn, version)
                    return
                t["meta"].metadata.create_all(conn)
                conn.execute(sa.insert(t["meta"]).values(key="schema_version",
                                                         value=str(SCHEMA_VERSION)))

            self._write(init, doing="open")
        except StoreError:
            self._engine.dispose()
            raise

    def _version(self, conn) -> int | None:
        if not self._sa.inspect(conn).has_table("wb_meta"):
            if self._sa.inspect(conn).has_table("tag_events"):
                return 1  # a schema-1 store without its meta table
            return None
        row = conn.execute(self._sa.text(
            "SELECT value FROM wb_meta WHERE key = 'schema_version'")).fetchone()
        if row is None:
            return 1
        try:
            return int(row[0])
        except ValueError:
            raise StoreError(f"The tag store {self._where()} has an unreadable schema version "
                             f"{row[0]!r}. It was left untouched; restore it from a backup."
                             ) from None

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The tag store {self._where()} was written by a newer workbench (schema "
                f"{version}; this version reads up to {SCHEMA_VERSION}). Upgrade workbench "
                "(pip install -U workbench); the store was left untouched.")

    def _upgrade(self, conn, version: int) -> None:
        """Upgrade an older store in place (inside the open transaction)."""
        sa = self._sa
        t = self._tables
        log.info("Upgrading tag store %s from schema %s to %s", self._where(), version,
                 SCHEMA_VERSION)
        if version < 4:
            # Schemas 1-2 kept one flat row per event (action key, tag, author... repeated on
            # every item). Since schema 3 each call is stored once (tag_actions) with one
            # small row per item (tag_events); schema 4 points the current state at the
            # action. The flat table is kept as tag_events_v1 (audit data is never dropped);
            # the current state is derived, so it is rebuilt by replaying the events.
            insp = sa.inspect(conn)
            if insp.has_table("tag_current"):
                conn.exec_driver_sql("DROP TABLE tag_current")
            flat = []
            if insp.has_table("tag_events") and "action_key" in {
                    c["name"] for c in insp.get_columns("tag_events")}:
                conn.exec_driver_sql("ALTER TABLE tag_events RENAME TO tag_events_v1")
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(
                        "ALTER INDEX IF EXISTS tag_events_pkey RENAME TO tag_events_v1_pkey")
                flat = conn.exec_driver_sql(
                    "SELECT event_id, item_id, tag, action, author, reason, context, "
                    "created_at, action_key FROM tag_events_v1 ORDER BY event_id").fetchall()
            t["meta"].metadata.create_all(conn)
            actions: dict[tuple, int] = {}
            keys_used: set[str] = set()
            events = []
            for event_id, item_id, tag, action, author, reason, context, created, key in flat:
                attrs = (key, action, tag, author, reason, context, int(created))
                if attrs not in actions:
                    new_key, n = key, 1
                    while new_key in keys_used:
                        n += 1
                        new_key = f"{key}#{n}"
                    keys_used.add(new_key)
                    actions[attrs] = conn.execute(sa.insert(t["actions"]).values(
                        action_key=new_key, action=action, tag=tag, author=author,
                        reason=reason, context=context, created_at=int(created)
                    ).returning(t["actions"].c.action_id)).scalar_one()
                events.append({"event_id": int(event_id), "item_id": item_id,
                               "action_id": actions[attrs]})
            if events:
                conn.execute(sa.insert(t["events"]), events)
            replay = conn.exec_driver_sql(
                "SELECT e.item_id, a.tag, a.action, a.action_id FROM tag_events e "
                "JOIN tag_actions a ON a.action_id = e.action_id ORDER BY e.event_id").fetchall()
            state: dict[tuple[str, str], int] = {}
            for item_id, tag, action, action_id in replay:
                if action == "add":
                    state[(item_id, tag)] = action_id
                else:
                    state.pop((item_id, tag), None)
            ids = self._intern(conn, {tag for _, tag in state})
            if state:
                conn.execute(sa.insert(t["current"]), [
                    {"tag_id": ids[g], "item_id": i, "action_id": a}
                    for (i, g), a in state.items()])
        conn.execute(sa.delete(t["meta"]).where(t["meta"].c.key == "schema_version"))
        conn.execute(sa.insert(t["meta"]).values(key="schema_version", value=str(SCHEMA_VERSION)))

    # ------------------------------------------------------------------ transactions

    def _read(self):
        conn = self._engine.connect()
        if self.dialect == "sqlite":
            conn = conn.execution_options(wb_read=True)
        return conn

    def _retryable(self, exc) -> bool:
        sa = self._sa
        if getattr(exc, "connection_invalidated", False):
            return True
        orig = getattr(exc, "orig", None) or exc
        if self.dialect == "postgresql":
            code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            if code in ("40001", "40P01", "23505", "57P01", "57P02", "57P03", "53300") or (
                    code or "").startswith("08"):
                return True
            return code is None and (isinstance(exc, sa.exc.OperationalError)
                                     or type(orig).__name__ == "OperationalError")
        text = str(orig).lower()
        return "locked" in text or "busy" in text

    def _write(self, fn, *, doing: str = "write to"):
        """Run ``fn(conn)`` in one write transaction, retrying transient failures."""
        sa = self._sa
        if self.read_only:
            raise StoreError(
                f"Cannot {doing} the tag store {self._where()}: the file is read-only. Make it "
                "writable by this user (chmod u+w), or point WORKBENCH_DB_URL at a writable "
                "store.")
        delay = 0.02
        for attempt in range(self.max_attempts):
            try:
                with self._engine.begin() as conn:
                    if self.dialect == "postgresql":
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
                    return fn(conn)
            except (sa.exc.DBAPIError, self._driver_error) as exc:
                if attempt + 1 < self.max_attempts and self._retryable(exc):
                    log.warning("Tag store %s: retrying after %s", self._where(),
                                str(getattr(exc, "orig", None) or exc).splitlines()[0])
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
                    continue
                raise self._store_error(exc, doing) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _reading(self, fn):
        sa = self._sa
        for attempt in range(3):
            try:
                with self._read() as conn:
                    return fn(conn)
            except (sa.exc.DBAPIError, self._driver_error) as exc:
                if attempt < 2 and self.dialect == "postgresql" and self._retryable(exc):
                    time.sleep(0.05)
                    continue
                raise self._store_error(exc, "read") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _intern(self, conn, values: Iterable[str | None]) -> dict[str, int]:
        sa = self._sa
        s = self._tables["strings"]
        wanted = sorted({v for v in values if v is not None})
        found: dict[str, int] = {}
        for chunk in _chunks(wanted):
            found.update(conn.execute(sa.select(s.c.value, s.c.string_id)
                                      .where(s.c.value.in_(chunk))).all())
        for value in wanted:
            if value not in found:
                found[value] = conn.execute(sa.insert(s).values(value=value)
                                            .returning(s.c.string_id)).scalar_one()
        return found

    def _strings(self, conn, ids) -> dict[int, str]:
        sa = self._sa
        s = self._tables["strings"]
        out: dict[int, str] = {}
        for chunk in _chunks(sorted({int(i) for i in ids})):
            out.update(conn.execute(sa.select(s.c.string_id, s.c.value)
                                    .where(s.c.string_id.in_(chunk))).all())
        return out

    # ------------------------------------------------------------------ checks

    def _check_ids(self, ids: list[str], func: str) -> None:
        if self._known is None:
            return
        unknown = [i for i in ids if i not in self._known]
        if unknown:
            raise SchemaError(
                f"{func}: {len(unknown)} item id(s) are not in the project: {unknown[:5]}"
                f"{' ...' if len(unknown) > 5 else ''}. Nothing was changed. Use ids from "
                "project.items['item_id'] (check for typos or a stale selection).")

    @staticmethod
    def _key(action_key: Any, func: str) -> str:
        if action_key is None:
            return uuid.uuid4().hex  # one per call, reused by every retry of this call
        if not isinstance(action_key, str) or not action_key.strip():
            raise TypeError(f"The 'action_key' parameter of {func} must be a non-empty str or "
                            f"None. Got {action_key!r} instead.")
        if len(action_key) > MAX_KEY_LENGTH:
            raise ValueError(f"The 'action_key' parameter of {func} must be at most "
                             f"{MAX_KEY_LENGTH} characters. Got {len(action_key)}.")
        return action_key

    @staticmethod
    def _context(context: Any, func: str) -> str | None:
        if context is None:
            return None
        if not isinstance(context, dict):
            raise TypeError(f"The 'context' parameter of {func} must be a dict or None. "
                            f"Got {type(context).__name__} instead.")
        try:
            return json.dumps(context, default=str, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{func}: context cannot be stored as JSON ({exc}). Pass plain "
                             "str/number/list/dict values.") from exc

    # ------------------------------------------------------------------ writes

    def add(self, item_ids, tag: str, *, author: str, reason: str | None = None,
            context: dict | None = None, action_key: str | None = None) -> int:
        """Tag items; items that already carry the tag are left alone (no event).

        Parameters
        ----------
        item_ids : iterable of str
            The items (a single str is one item; a ``Selection`` uses its ids).
        tag : str
            The tag name (stripped, NFC-normalised, at most 64 characters).
        author : str
            Who tags them (``workbench.session.current_author()`` in widgets).
        reason : str, optional
            Why (at most 2000 characters).
        context : dict, optional
            Where the action came from: run, slice, view, ... (stored as JSON).
        action_key : str, optional
            Idempotency key: a call repeated with the same key never writes again for the
            same item. Default: a fresh key per call (reused by internal retries).

        Returns
        -------
        int
            Events written (items newly tagged).

        Raises
        ------
        SchemaError
            Bad tag/reason, or ids unknown to the project; nothing is written.
        StoreError
            The store cannot be written.
        """
        return self._change("add", item_ids, tag, author=author, reason=reason, context=context,
                            action_key=action_key)

    def remove(self, item_ids, tag: str, *, author: str, reason: str | None = None,
               context: dict | None = None, action_key: str | None = None) -> int:
        """Untag items (the undo of :meth:`add`); items without the tag are left alone.

        Parameters are those of :meth:`add`. Returns the events written.
        """
        return self._change("remove", item_ids, tag, author=author, reason=reason,
                            context=context, action_key=action_key)

    def _event_args(self, func, item_ids, tag, author, reason, context, action_key) -> tuple:
        """Validate the arguments of an audited write (nothing is written on a bad one)."""
        ids = _normalize_ids(item_ids, func)
        tag = normalize_tag(tag, func=func)
        author = _normalize_text(author, "author", func, MAX_AUTHOR_LENGTH, required=True,
                                 allow_newlines=False)
        reason = _normalize_text(reason, "reason", func, MAX_REASON_LENGTH, required=False,
                                 allow_newlines=True)
        ctx = self._context(context, func)
        key = self._key(action_key, func)
        self._check_ids(ids, func)
        return ids, tag, author, reason, ctx, key

    def _change(self, action, item_ids, tag, *, author, reason, context, action_key) -> int:
        func = f"TagStore.{action}"
        ids, tag, author, reason, ctx, key = self._event_args(
            func, item_ids, tag, author, reason, context, action_key)
        if not ids:
            return 0

        def run(conn) -> int:
            cursor = _Cursor(conn, self.dialect)
            todo = ids
            prior = cursor.execute("SELECT action_id, action, tag FROM tag_actions "
                                   "WHERE action_key = ?", [key]).fetchone()
            if prior is not None:  # a replayed call: skip the items it already wrote
                if (prior[1], prior[2]) != (action, tag):
                    raise ValueError(
                        f"{func}: the action_key {key!r} was already used to {prior[1]} the "
                        f"tag {prior[2]!r}. Use a new key for a different action.")
                done: set[str] = set()
                for chunk in _chunks(todo):
                    done.update(cursor.column(
                        "SELECT item_id FROM tag_events WHERE action_id = ? AND item_id IN "
                        f"({', '.join('?' * len(chunk))})", [prior[0], *chunk]))
                todo = [i for i in todo if i not in done]
                if not todo:
                    return 0
            tag_id = self._intern(conn, [tag])[tag]
            present: set[str] = set()
            for chunk in _chunks(todo):
                present.update(cursor.column(
                    "SELECT item_id FROM tag_current WHERE tag_id = ? AND item_id IN "
                    f"({', '.join('?' * len(chunk))})", [tag_id, *chunk]))
            if action == "add":
                todo = [i for i in todo if i not in present]
            else:
                todo = [i for i in todo if i in present]
            if not todo:
                return 0
            now = _now_us()
            if prior is None:
                action_id = cursor.execute(
                    "INSERT INTO tag_actions (action_key, action, tag, author, reason, context, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING action_id",
                    [key, action, tag, author, reason, ctx, now]).fetchone()[0]
            else:
                action_id = prior[0]
            cursor.executemany("INSERT INTO tag_events (item_id, action_id) VALUES (?, ?)",
                               [(i, action_id) for i in todo])
            if action == "add":
                cursor.executemany(
                    "INSERT INTO tag_current (tag_id, item_id, action_id) VALUES (?, ?, ?)",
                    [(tag_id, i, action_id) for i in todo])
            else:
                for chunk in _chunks(todo):
                    cursor.execute(
                        "DELETE FROM tag_current WHERE tag_id = ? AND item_id IN "
                        f"({', '.join('?' * len(chunk))})", [tag_id, *chunk])
            return len(todo)

        return self._write(run, doing=f"{action} tags in")

    def set_status(self, item_ids, status: str, *, queue: str, author: str,
                   reason: str | None = None, context: dict | None = None,
                   action_key: str | None = None) -> int:
        """Record a relabel-queue status transition (an audited event) for items.

        Parameters
        ----------
        item_ids : iterable of str
            The items.
        status : {'queued', 'sent', 'relabeled', 'verified'}
            The new status. Items already in that status are left alone (no event).
        queue : str
            The queue, named after its tag (``"relabel"``).
        author, reason, context, action_key
            As in :meth:`add`.

        Returns
        -------
        int
            Events written.
        """
        from ._validation import check_option

        func = "TagStore.set_status"
        sa = self._sa
        check_option(status, "status", func, STATUSES)
        ids, queue, author, reason, ctx, key = self._event_args(
            func, item_ids, queue, author, reason, context, action_key)
        if not ids:
            return 0
        ev, cur = self._tables["status_events"], self._tables["status_current"]

        def run(conn) -> int:
            done = set(conn.execute(sa.select(ev.c.item_id).where(ev.c.action_key == key))
                       .scalars().all())
            todo = [i for i in ids if i not in done]
            old: dict[str, str] = {}
            for chunk in _chunks(todo):
                old.update(conn.execute(sa.select(cur.c.item_id, cur.c.status).where(
                    cur.c.queue == queue, cur.c.item_id.in_(chunk))).all())
            todo = [i for i in todo if old.get(i) != status]
            if not todo:
                return 0
            now = _now_us()
            conn.execute(sa.insert(ev), [
                {"item_id": i, "queue": queue, "status": status, "author": author,
                 "reason": reason, "context": ctx, "created_at": now, "action_key": key}
                for i in todo])
            existing = [i for i in todo if i in old]
            for chunk in _chunks(existing):
                conn.execute(sa.update(cur).where(cur.c.queue == queue, cur.c.item_id.in_(chunk))
                             .values(status=status, author=author, reason=reason,
                                     updated_at=now))
            fresh = [i for i in todo if i not in old]
            if fresh:
                conn.execute(sa.insert(cur), [
                    {"queue": queue, "item_id": i, "status": status, "author": author,
                     "reason": reason, "updated_at": now} for i in fresh])
            return len(todo)

        return self._write(run, doing="record statuses in")

    # ------------------------------------------------------------------ reads

    def tags(self, item_ids=None, *, tag: str | None = None) -> pd.DataFrame:
        """Return the current tags.

        Parameters
        ----------
        item_ids : iterable of str, optional
            Only these items (default: every tagged item).
        tag : str, optional
            Only this tag.

        Returns
        -------
        DataFrame
            ``item_id``, ``tag``, ``author`` (who added it), ``reason``, ``tagged_at``
            (UTC), one row per (item, tag), sorted by tag then item_id.
        """
        sa = self._sa
        cur = self._tables["current"]
        ids = None if item_ids is None else _normalize_ids(item_ids, "TagStore.tags")
        only = None if tag is None else normalize_tag(tag, func="TagStore.tags")

        def run(conn):
            if ids is None and only is None and self.dialect == "sqlite":
                items, tag_ids, action_ids = self._fast_current(conn)
                blocks = True  # primary-key order: one block per tag id, items sorted
            elif ids is None and only is None:
                items, tag_ids, action_ids = self._copy_current(conn)
                blocks = False
            else:
                blocks = False
                q = sa.select(cur.c.item_id, cur.c.tag_id, cur.c.action_id)
                rows: list = []
                if only is not None:
                    wanted = conn.execute(sa.text(
                        "SELECT string_id FROM wb_strings WHERE value = :v"), {"v": only}
                    ).scalars().all()
                else:  # probe the (tag_id, item_id) primary key for each tag in use
                    wanted = conn.execute(sa.text(
                        "SELECT string_id FROM wb_strings WHERE value IN "
                        "(SELECT DISTINCT tag FROM tag_actions)")).scalars().all()
                if ids is None and only is None:
                    rows = conn.execute(q).all()
                elif ids is None:
                    if wanted:
                        rows = conn.execute(q.where(cur.c.tag_id.in_(wanted))).all()
                elif wanted:
                    q = q.where(cur.c.tag_id.in_(wanted))
                    for chunk in _chunks(ids):
                        rows.extend(conn.execute(q.where(cur.c.item_id.in_(chunk))))
                items = [r[0] for r in rows]
                tag_ids = np.asarray([r[1] for r in rows], dtype="int64")
                action_ids = np.asarray([r[2] for r in rows], dtype="int64")
            names = self._strings(conn, pd.unique(tag_ids))
            act = self._tables["actions"]
            info = []
            for chunk in _chunks(sorted(pd.unique(action_ids).tolist()), 5000):
                info.extend(conn.execute(sa.select(act.c.action_id, act.c.author, act.c.reason,
                                                   act.c.created_at)
                                         .where(act.c.action_id.in_(chunk))).all())
            return items, tag_ids, action_ids, names, info, blocks

        items, tag_ids, action_ids, names, info, blocks = self._reading(run)
        return _current_frame(items, tag_ids, action_ids, names, info, blocks=blocks)

    def _fast_current(self, conn):
        """Read tag_current column-wise with group_concat (fast for millions of rows)."""
        row = conn.exec_driver_sql(
            "SELECT count(*), group_concat(item_id, char(31)), group_concat(tag_id, ','), "
            "group_concat(action_id, ',') FROM tag_current").fetchone()
        n = int(row[0])
        if n == 0:
            return [], np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
        import pyarrow as pa
        import pyarrow.compute as pc

        # split in Arrow: no Python str object per item
        items = pc.split_pattern(pa.array([row[1]], type=pa.large_string()), "\x1f").flatten()
        ints = [np.array(row[k].split(","), dtype="int64") if n < 1000 else
                np.fromstring(row[k], sep=",", dtype=np.int64) for k in (2, 3)]
        if len(items) != n or any(len(a) != n for a in ints):  # an id holding \x1f
            rows = conn.exec_driver_sql(
                "SELECT item_id, tag_id, action_id FROM tag_current").fetchall()
            items = [r[0] for r in rows]
            ints = [np.array([r[k] for r in rows], dtype="int64") for k in (1, 2)]
        return items, ints[0], ints[1]

    def _copy_current(self, conn):
        """Read tag_current with PostgreSQL's COPY, parsed by Arrow (no per-row objects)."""
        import io

        import pyarrow as pa
        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy("COPY (SELECT item_id, tag_id, action_id FROM tag_current) "
                          "TO STDOUT WITH (FORMAT csv)") as copy:
                for data in copy:
                    buf.write(data)
        if buf.tell() == 0:
            return [], np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
        names = ["item_id", "tag_id", "action_id"]
        table = pacsv.read_csv(
            io.BytesIO(buf.getvalue()),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={"item_id": pa.large_string(), "tag_id": pa.int64(),
                              "action_id": pa.int64()},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
        return (table["item_id"].combine_chunks(), table["tag_id"].to_numpy(),
                table["action_id"].to_numpy())

    def items_with(self, tag: str) -> list[str]:
        """Return the sorted ids of the items that currently carry ``tag``."""
        sa = self._sa
        tag = normalize_tag(tag, func="TagStore.items_with")
        cur, s = self._tables["current"], self._tables["strings"]

        def run(conn):
            tag_id = conn.execute(sa.select(s.c.string_id).where(s.c.value == tag)).scalar()
            if tag_id is None:
                return []
            return list(conn.execute(sa.select(cur.c.item_id).where(cur.c.tag_id == tag_id)
                                     .order_by(cur.c.item_id)).scalars().all())

        return self._reading(run)

    def counts(self) -> pd.DataFrame:
        """Return ``tag``, ``n_items`` for every tag in use, most used first."""
        sa = self._sa
        cur = self._tables["current"]

        def run(conn):
            rows = conn.execute(sa.select(cur.c.tag_id, sa.func.count())
                                .group_by(cur.c.tag_id)).all()
            return rows, self._strings(conn, [r[0] for r in rows])

        rows, names = self._reading(run)
        frame = pd.DataFrame({"tag": pd.array([names[r[0]] for r in rows], dtype="str"),
                              "n_items": np.array([r[1] for r in rows], dtype="int64")})
        return frame.sort_values(["n_items", "tag"], ascending=[False, True],
                                 ignore_index=True)

    def known_tags(self) -> list[str]:
        """Return every tag name ever used in this store (sorted), for pickers."""
        sa = self._sa
        act = self._tables["actions"]
        return self._reading(lambda conn: sorted(
            conn.execute(sa.select(act.c.tag).distinct()).scalars().all()))

    def history(self, item_id: str | None = None, tag: str | None = None, *,
                limit: int | None = None) -> pd.DataFrame:
        """Return the tag events (the audit trail), oldest first.

        Parameters
        ----------
        item_id : str, optional
            Only this item's events.
        tag : str, optional
            Only this tag's events.
        limit : int, optional
            Only the latest ``limit`` events.

        Returns
        -------
        DataFrame
            ``event_id``, ``item_id``, ``tag``, ``action`` ('add' or 'remove'), ``author``,
            ``reason``, ``context`` (dict or None), ``created_at`` (UTC), ``action_key``.
        """
        sa = self._sa
        ev, act = self._tables["events"], self._tables["actions"]
        q = sa.select(ev.c.event_id, ev.c.item_id, act.c.tag, act.c.action, act.c.author,
                      act.c.reason, act.c.context, act.c.created_at, act.c.action_key
                      ).join_from(ev, act, ev.c.action_id == act.c.action_id)
        if item_id is not None:
            q = q.where(ev.c.item_id == str(item_id))
        if tag is not None:
            q = q.where(act.c.tag == normalize_tag(tag, func="TagStore.history"))
        if limit is not None:
            from ._validation import check_int

            check_int(limit, "limit", "TagStore.history", minimum=0)
            q = q.order_by(ev.c.event_id.desc()).limit(limit)
        else:
            q = q.order_by(ev.c.event_id)
        rows = self._reading(lambda conn: conn.execute(q).all())
        if limit is not None:
            rows = rows[::-1]
        return _events_frame(rows, ["event_id", "item_id", "tag", "action", "author", "reason",
                                    "context", "created_at", "action_key"])

    def statuses(self, queue: str, item_ids=None) -> pd.DataFrame:
        """Return the current status of items in ``queue``.

        Returns
        -------
        DataFrame
            ``item_id``, ``status``, ``author``, ``reason``, ``updated_at`` (UTC); items never
            given a status are absent.
        """
        sa = self._sa
        cur = self._tables["status_current"]
        queue = normalize_tag(queue, func="TagStore.statuses")
        ids = None if item_ids is None else _normalize_ids(item_ids, "TagStore.statuses")
        q = sa.select(cur.c.item_id, cur.c.status, cur.c.author, cur.c.reason,
                      cur.c.updated_at).where(cur.c.queue == queue)

        def run(conn):
            if ids is None:
                return conn.execute(q.order_by(cur.c.item_id)).all()
            rows = []
            for chunk in _chunks(ids):
                rows.extend(conn.execute(q.where(cur.c.item_id.in_(chunk))))
            return sorted(rows)

        rows = self._reading(run)
        frame = pd.DataFrame(rows, columns=["item_id", "status", "author", "reason", "at"])
        out = pd.DataFrame({
            "item_id": pd.array(frame["item_id"].tolist(), dtype="str"),
            "status": pd.array(frame["status"].tolist(), dtype="str"),
            "author": pd.array(frame["author"].tolist(), dtype="str"),
            "reason": pd.array(frame["reason"].tolist(), dtype="str"),
            "updated_at": _to_ts(frame["at"].to_numpy(dtype="int64")),
        })
        return out

    def status_history(self, item_id: str | None = None, queue: str | None = None
                       ) -> pd.DataFrame:
        """Return the status events, oldest first.

        Returns
        -------
        DataFrame
            ``event_id``, ``item_id``, ``queue``, ``status``, ``author``, ``reason``,
            ``context`` (dict or None), ``created_at`` (UTC), ``action_key``.
        """
        sa = self._sa
        ev = self._tables["status_events"]
        q = sa.select(ev.c.event_id, ev.c.item_id, ev.c.queue, ev.c.status, ev.c.author,
                      ev.c.reason, ev.c.context, ev.c.created_at, ev.c.action_key
                      ).order_by(ev.c.event_id)
        if item_id is not None:
            q = q.where(ev.c.item_id == str(item_id))
        if queue is not None:
            q = q.where(ev.c.queue == normalize_tag(queue, func="TagStore.status_history"))
        rows = self._reading(lambda conn: conn.execute(q).all())
        return _events_frame(rows, ["event_id", "item_id", "queue", "status", "author",
                                    "reason", "context", "created_at", "action_key"])

    # ------------------------------------------------------------------ maintenance

    def integrity_check(self) -> str:
        """Run the database's integrity check; return ``"ok"`` or the problems found.

        SQLite: ``PRAGMA integrity_check`` plus a comparison of the current-state table with
        a replay of the events. PostgreSQL: the replay comparison only.
        """
        sa = self._sa
        problems: list[str] = []

        def run(conn):
            if self.dialect == "sqlite":
                rows = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
                if rows != ["ok"]:
                    problems.extend(rows)
            last = conn.execute(sa.text(
                "WITH ev AS (SELECT e.event_id, e.item_id, a.tag, a.action FROM tag_events e "
                "JOIN tag_actions a ON a.action_id = e.action_id) "
                "SELECT ev.item_id, ev.tag, ev.action FROM ev JOIN ("
                " SELECT item_id, tag, max(event_id) AS m FROM ev GROUP BY item_id, tag"
                ") l ON ev.event_id = l.m")).all()
            derived = {(i, g) for i, g, a in last if a == "add"}
            stored = set(conn.execute(sa.text(
                "SELECT c.item_id, s.value FROM tag_current c JOIN wb_strings s "
                "ON s.string_id = c.tag_id")).all())
            if derived != stored:
                problems.append(f"current tags differ from the event log for "
                                f"{len(derived ^ stored)} (item, tag) pairs")

        self._reading(run)
        return "ok" if not problems else "; ".join(problems)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> TagStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        extra = "" if self.persistent else ", in memory"
        extra += ", read-only" if self.read_only else ""
        return f"TagStore({self.url!r}{extra})"


class _Cursor:
    """The driver cursor of a SQLAlchemy connection, for bulk statements.

    No per-row SQLAlchemy overhead; SQL is written with ``?`` placeholders.
    """

    def __init__(self, conn, dialect: str):
        self._cursor = conn.connection.driver_connection.cursor()
        self._pg = dialect == "postgresql"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def execute(self, sql: str, params=()):
        self._cursor.execute(self._sql(sql), tuple(params))
        return self._cursor

    def column(self, sql: str, params=()) -> list:
        return [row[0] for row in self.execute(sql, params).fetchall()]

    def executemany(self, sql: str, rows: list) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)


def _chunks(values: list, size: int = _CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _current_frame(items, tag_ids, action_ids, names, info, *, blocks: bool = False
                   ) -> pd.DataFrame:
    """Build the current-tags frame, sorted by tag then item.

    ``items``/``tag_ids``/``action_ids`` are the rows of ``tag_current``; ``names`` maps
    tag ids to names and ``info`` holds ``(action_id, author, reason, created_at)``.
    ``blocks=True`` promises primary-key order (each tag id one block, items sorted within):
    then only the blocks are reordered (a stable sort of small ints).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(items)
    if n == 0:
        empty = pd.array([], dtype="str")
        return pd.DataFrame({"item_id": empty, "tag": empty, "author": empty, "reason": empty,
                             "tagged_at": _to_ts([])})
    # tags: position in a dictionary of names, ranked alphabetically
    codes = np.asarray(sorted(names), dtype="int64")
    tag_names = [names[c] for c in codes.tolist()]
    tag_pos = np.searchsorted(codes, tag_ids)
    rank_of = np.empty(len(codes), dtype="int64")
    rank_of[np.argsort(np.asarray(tag_names, dtype=object), kind="stable")] = np.arange(
        len(codes))
    rank = rank_of[tag_pos]
    # actions: author, reason, time of the add that holds the tag
    info = sorted(info)
    act_codes = np.asarray([r[0] for r in info], dtype="int64")
    act_pos = np.searchsorted(act_codes, action_ids)
    text = pa.large_string()  # what pandas' str dtype holds: no cast later
    authors = pa.array([r[1] for r in info], type=text)
    reasons = pa.array([r[2] for r in info], type=text)
    created = np.asarray([r[3] for r in info], dtype="int64")

    arr = items.cast(text) if isinstance(items, pa.Array) else pa.array(items, type=text)
    order = None
    if n > 1:
        if blocks:
            if (rank[1:] < rank[:-1]).any():
                order = np.argsort(rank, kind="stable")
        else:
            table = pa.table({"t": rank, "i": arr})
            order = pc.sort_indices(table, sort_keys=[("t", "ascending"),
                                                      ("i", "ascending")]).to_numpy()
    if order is not None:
        arr = arr.take(pa.array(order))
        tag_pos, act_pos = tag_pos[order], act_pos[order]
    return pd.DataFrame({
        "item_id": pd.array(arr, dtype="str"),
        "tag": pd.array(pa.array(tag_names, type=text).take(pa.array(tag_pos)), dtype="str"),
        "author": pd.array(authors.take(pa.array(act_pos)), dtype="str"),
        "reason": pd.array(reasons.take(pa.array(act_pos)), dtype="str"),
        "tagged_at": _to_ts(created[act_pos]),
    })


def _events_frame(rows, columns) -> pd.DataFrame:
    data = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
    out = {}
    for name, values in zip(columns, data, strict=True):
        if name == "event_id":
            out[name] = np.asarray(values, dtype="int64")
        elif name == "created_at":
            out[name] = _to_ts(values)
        elif name == "context":
            out[name] = pd.Series([json.loads(v) if v else None for v in values],
                                  dtype="object")
        else:
            out[name] = pd.array(list(values), dtype="str")
    return pd.DataFrame(out)
