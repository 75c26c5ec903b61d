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

The implementation lives in :mod:`workbench.store` (one module per job); this module is its
public entry point.
"""

from __future__ import annotations

from .store import SCHEMA_VERSION, STATUSES, TagStore, normalize_tag

__all__ = ["TagStore", "SCHEMA_VERSION", "STATUSES", "normalize_tag"]
