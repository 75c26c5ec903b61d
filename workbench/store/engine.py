"""The store's connection: where it is, how transactions start, errors and retries.

SQLite (the default): WAL journal, ``synchronous=FULL``, a busy timeout, and write
transactions that take the write lock at ``BEGIN IMMEDIATE`` (a second writer waits at the
start, rather than failing half-way). PostgreSQL: writers are serialised by a
transaction-level advisory lock; dropped connections are detected (``pool_pre_ping``).
Serialization failures, deadlocks, lost connections and (SQLite) a busy lock are retried with
jittered exponential back-off; every other driver error becomes a :class:`StoreError` saying
where the store is and what to do.
"""

from __future__ import annotations

import logging
import os
import random
import stat
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import StoreError

__all__ = ["StoreEngine", "resolve_url"]

log = logging.getLogger(__name__)

_PG_LOCK_KEY = 0x5742_5441  # advisory lock serialising writers ("WBTA")
# PostgreSQL SQLSTATEs worth a retry: serialization failure, deadlock, unique violation (a
# concurrent first write), admin/crash shutdown, cannot connect now, too many connections.
_PG_RETRY = ("40001", "40P01", "23505", "57P01", "57P02", "57P03", "53300")


def resolve_url(url: Any, root: Any) -> str:
    """Return the SQLAlchemy URL of a store given as ``TagStore(url, root=...)`` takes it.

    ``None`` means ``WORKBENCH_DB_URL`` if set, else ``<root>/.workbench/workbench.db``
    (``root`` defaulting to ``WORKBENCH_PROJECT``, else the working directory). A plain path
    is a SQLite file; ``postgresql://`` and ``postgres://`` use the psycopg driver.
    """
    if url is None:
        url = os.environ.get("WORKBENCH_DB_URL") or None
    if url is None:
        base = Path(root) if root is not None else Path(
            os.environ.get("WORKBENCH_PROJECT") or Path.cwd())
        url = base / ".workbench" / "workbench.db"
    text = os.fspath(url) if isinstance(url, os.PathLike) else str(url)
    if "://" not in text:  # a plain path: SQLite file
        text = f"sqlite:///{Path(text).expanduser().resolve()}"
    if text.startswith(("postgresql://", "postgres://")):
        text = "postgresql+psycopg://" + text.split("://", 1)[1]
    return text


class StoreEngine:
    """One store's SQLAlchemy engine, with its transactions, error mapping and retries.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL (see :func:`resolve_url`), SQLite or PostgreSQL.
    max_attempts : int, default=8
        Attempts of a write before a transient failure is reported.
    busy_timeout : float, default=30.0
        Seconds a SQLite writer waits for the write lock.

    Attributes
    ----------
    url : str
        The URL, password hidden.
    dialect : {'sqlite', 'postgresql'}
    path : pathlib.Path or None
        The SQLite file; None for memory and PostgreSQL.
    persistent : bool
        False for an in-memory SQLite store.
    read_only : bool
        True when the SQLite file is not writable.
    engine : sqlalchemy.engine.Engine
    """

    def __init__(self, url: str, *, max_attempts: int = 8, busy_timeout: float = 30.0):
        self.path: Path | None = None
        self.persistent = True
        self.read_only = False
        self.max_attempts = int(max_attempts)
        try:
            parsed = sa.engine.make_url(url)
        except Exception as exc:
            raise StoreError(f"Cannot parse the tag store URL {url!r}: {exc}. Use "
                             "sqlite:///path/to/file.db or postgresql+psycopg://user@host/db."
                             ) from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"The tag store supports SQLite and PostgreSQL; got {self.dialect!r} "
                             f"in {parsed.render_as_string(hide_password=True)!r}.")
        self.url = parsed.render_as_string(hide_password=True)
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(parsed, busy_timeout)
        else:
            self.engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=2,
                                           max_overflow=2)
        self._driver_error = self.engine.dialect.loaded_dbapi.Error

    @property
    def where(self) -> str:
        """The store's location for messages: its file, else its URL."""
        return str(self.path) if self.path is not None else self.url

    def _sqlite_engine(self, parsed, busy_timeout: float):
        database = parsed.database or ""
        memory = database in ("", ":memory:") or "mode=memory" in str(parsed)
        kwargs: dict[str, Any] = {}
        if memory:
            self.persistent = False
            kwargs["poolclass"] = sa.pool.StaticPool
        else:
            self.path = Path(database).expanduser().resolve()
            self.read_only = _sqlite_read_only(self.path)
            if self.read_only:
                parsed = parsed.set(database=f"file:{self.path}?mode=ro", query={"uri": "true"})
        engine = sa.create_engine(parsed, connect_args={
            "timeout": busy_timeout, "check_same_thread": False}, **kwargs)
        busy_ms = int(busy_timeout * 1000)
        read_only = self.read_only

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, record):  # pragma: no cover - exercised via engine
            dbapi_conn.isolation_level = None  # BEGIN is emitted by _on_begin
            cur = dbapi_conn.cursor()
            try:  # connection settings: PRAGMAs have no SQLAlchemy construct
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
            else:  # take the write lock now: a second writer waits here (busy timeout)
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    # ------------------------------------------------------------------ errors

    def error(self, exc: BaseException, doing: str) -> StoreError:
        """Return the :class:`StoreError` for a driver error, with the store and a fix."""
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        low = text.lower()
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
        return StoreError(f"Cannot {doing} the tag store {self.where}: {text}. {hint}")

    def retryable(self, exc: BaseException) -> bool:
        """Whether a failed transaction may succeed if run again."""
        if getattr(exc, "connection_invalidated", False):
            return True
        orig = getattr(exc, "orig", None) or exc
        if self.dialect == "postgresql":
            code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            if code in _PG_RETRY or (code or "").startswith("08"):  # 08: connection errors
                return True
            return code is None and (isinstance(exc, sa.exc.OperationalError)
                                     or type(orig).__name__ == "OperationalError")
        text = str(orig).lower()
        return "locked" in text or "busy" in text

    # ------------------------------------------------------------------ transactions

    def connect(self):
        """Return a connection for reading (SQLite: a plain ``BEGIN``, no write lock)."""
        conn = self.engine.connect()
        if self.dialect == "sqlite":
            conn = conn.execution_options(wb_read=True)
        return conn

    def write(self, fn, *, doing: str = "write to", records: bool = True):
        """Run ``fn(conn)`` in one write transaction, retrying transient failures.

        ``fn`` may run more than once: it must compute its writes from what it reads.
        ``records``: the transaction records something (a tag, a status, a decision, a
        revision, a QC round), refused in a read-only session
        (:func:`workbench.session.require_write`) whichever API called it; opening the store
        (creating or upgrading its tables) records nothing.
        """
        if records:
            from ..session import require_write

            require_write(f"{doing} the tag store")
        if self.read_only:
            raise StoreError(
                f"Cannot {doing} the tag store {self.where}: the file is read-only. Make it "
                "writable by this user (chmod u+w), or point WORKBENCH_DB_URL at a writable "
                "store.")
        delay = 0.02
        for attempt in range(self.max_attempts):
            try:
                with self.engine.begin() as conn:
                    if self.dialect == "postgresql":
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
                    return fn(conn)
            except (sa.exc.DBAPIError, self._driver_error) as exc:
                if attempt + 1 < self.max_attempts and self.retryable(exc):
                    log.warning("Tag store %s: retrying after %s", self.where,
                                str(getattr(exc, "orig", None) or exc).splitlines()[0])
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
                    continue
                raise self.error(exc, doing) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, fn):
        """Run ``fn(conn)`` on a read connection (PostgreSQL: retried twice if transient)."""
        for attempt in range(3):
            try:
                with self.connect() as conn:
                    return fn(conn)
            except (sa.exc.DBAPIError, self._driver_error) as exc:
                if attempt < 2 and self.dialect == "postgresql" and self.retryable(exc):
                    time.sleep(0.05)
                    continue
                raise self.error(exc, "read") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()


def _sqlite_read_only(path: Path) -> bool:
    """Whether an existing SQLite file is read-only; create the folder of a new one."""
    if path.exists():
        if not path.is_file():
            raise StoreError(f"The tag store path {path} is not a file. Point "
                             "WORKBENCH_DB_URL (or the project folder) at a .db file.")
        mode = path.stat().st_mode
        return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(
            path, os.W_OK)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"Cannot create the folder for the tag store {path}: {exc}. "
                         "Make the project folder writable or set WORKBENCH_DB_URL.") from exc
    return False
