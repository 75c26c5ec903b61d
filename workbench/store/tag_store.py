"""``TagStore``: the public face of the store, composing its parts.

The parts each do one job: :class:`~workbench.store.engine.StoreEngine` (connection,
transactions, retries, errors), :class:`~workbench.store.schema.Schema` (tables, version,
upgrades), :class:`~workbench.store.events.TagEvents` (tag writes, audit trail),
:class:`~workbench.store.current.CurrentTags` (current tags) and
:class:`~workbench.store.statuses.QueueStatuses` (relabel-queue statuses). The records of
schema 6 are sub-objects sharing the engine: ``store.decisions``
(:class:`~workbench.store.decisions.LabelDecisions`), ``store.guidelines``
(:class:`~workbench.store.revisions.GuidelineRevisions`) and ``store.qc_rounds``
(:class:`~workbench.store.qc_rounds.QcRounds`).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .boxes import ProjectBoxes
from .current import CurrentTags
from .decisions import LabelDecisions
from .engine import StoreEngine, resolve_url
from .events import TagEvents
from .qc_rounds import QcRounds
from .revisions import GuidelineRevisions
from .schema import Schema, define_tables
from .statuses import QueueStatuses
from .validation import KnownIds

__all__ = ["TagStore"]

log = logging.getLogger(__name__)

_STORES: dict[int, TagStore] = {}
_STORES_LOCK = threading.Lock()


class TagStore:
    """Audited tags on items and their boxes: append-only events plus the current state.

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
    max_attempts : int, default=8
        Attempts of a write before a transient failure (lock, serialization failure,
        dropped connection) is reported.
    busy_timeout : float, default=30.0
        Seconds a SQLite writer waits for the write lock.

    Attributes
    ----------
    url, path, persistent, read_only, dialect
        The database URL (password hidden), the SQLite file (None for memory and
        PostgreSQL), False for an in-memory store, True when the SQLite file is not
        writable (reads work, writes raise StoreError), 'sqlite' or 'postgresql'.
    decisions, guidelines, qc_rounds : LabelDecisions, GuidelineRevisions, QcRounds
        Label decisions, guideline revisions and QC rounds (schema 6; append-only).

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
    >>> store.add(["a", "a"], "loose", author="alice", box_ids=["a/b0", "a/b1"])
    2
    >>> store.boxes_with("loose")[["item_id", "box_id"]].values.tolist()
    [['a', 'a/b0'], ['a', 'a/b1']]
    """

    def __init__(self, url: Any = None, *, root: Any = None, item_ids: Iterable | None = None,
                 max_attempts: int = 8, busy_timeout: float = 30.0):
        self._db = StoreEngine(resolve_url(url, root), max_attempts=max_attempts,
                               busy_timeout=busy_timeout)
        if item_ids is not None and not isinstance(item_ids, (pd.Series, pd.Index, list, tuple)):
            item_ids = list(item_ids)  # a generator is read once
        known = None if item_ids is None else KnownIds(item_ids)
        tables = define_tables()
        self._events = TagEvents(self._db, tables, known)
        self._current = CurrentTags(self._db, tables)
        self._statuses = QueueStatuses(self._db, tables, known)
        self.decisions = LabelDecisions(self._db, tables, known)
        self.guidelines = GuidelineRevisions(self._db, tables)
        self.qc_rounds = QcRounds(self._db, tables, known)
        Schema(self._db, tables).open()

    # ------------------------------------------------------------------ the connection

    url = property(lambda self: self._db.url, doc="The database URL (password hidden).")
    path = property(lambda self: self._db.path, doc="The SQLite file, or None.")
    persistent = property(lambda self: self._db.persistent,
                          doc="False for an in-memory store.")
    read_only = property(lambda self: self._db.read_only,
                         doc="True when the SQLite file is not writable.")
    dialect = property(lambda self: self._db.dialect, doc="'sqlite' or 'postgresql'.")
    _engine = property(lambda self: self._db.engine, doc="The SQLAlchemy engine.")

    @property
    def max_attempts(self) -> int:
        """Attempts of a write before a transient failure is reported."""
        return self._db.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self._db.max_attempts = int(value)

    @classmethod
    def for_project(cls, project) -> TagStore:
        """Return the project's default store (one per project object in this kernel).

        ``WORKBENCH_DB_URL`` if set, else ``<project.root>/.workbench/workbench.db``; a
        project without a folder (``Project.from_frames``) gets an in-memory store
        (``store.persistent`` is False) shared by every widget of that project object.
        Writes are validated against ``project.items["item_id"]``, box tags against the
        project's boxes (``boxes``/``annotations`` ``box_id``, ``predictions`` ``pred_id``).
        """
        return _project_store(cls, project)

    # ------------------------------------------------------------------ tags

    def add(self, item_ids, tag: str, *, author: str, reason: str | None = None,
            context: dict | None = None, action_key: str | None = None,
            box_ids=None) -> int:
        """Tag items or boxes; those already carrying the tag are left alone (no event).

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
            same item or box. Default: a fresh key per call (reused by internal retries).
        box_ids : sequence of (str or None), optional
            None: tag the images. Else one entry per item id (same length): the box to tag
            on that item (stripped, at most 256 characters), or None for the image itself.
            A box tag is keyed by (item, box, tag); a store from :meth:`for_project`
            checks that each box is one of that item's boxes.

        Returns
        -------
        int
            Events written (items and boxes newly tagged).

        Raises
        ------
        ValueError
            ``box_ids`` and ``item_ids`` differ in length.
        SchemaError
            Bad tag/reason/box id, ids unknown to the project, or a box of another item;
            nothing is written.
        StoreError
            The store cannot be written.
        """
        return self._events.change("add", item_ids, tag, author=author, reason=reason,
                                   context=context, action_key=action_key, box_ids=box_ids)

    def remove(self, item_ids, tag: str, *, author: str, reason: str | None = None,
               context: dict | None = None, action_key: str | None = None,
               box_ids=None) -> int:
        """Untag items or boxes (the undo of :meth:`add`); untagged ones are left alone.

        Parameters are those of :meth:`add`; a box the project no longer has may be named
        (its tag stays removable), a box of another item may not. Returns the events written.
        """
        return self._events.change("remove", item_ids, tag, author=author, reason=reason,
                                   context=context, action_key=action_key, box_ids=box_ids)

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
            ``item_id``, ``tag``, ``author`` (who added it), ``reason``, ``tagged_at`` (UTC),
            ``box_id`` (None for a tag on the image); one row per (item, box, tag), sorted by
            tag, item_id, then box_id (the image first).
        """
        return self._current.frame(item_ids, tag=tag)

    def items_with(self, tag: str) -> list[str]:
        """Return the sorted ids of the items carrying ``tag`` on the image or on a box."""
        return self._current.items_with(tag)

    def boxes_with(self, tag: str) -> pd.DataFrame:
        """Return the boxes that currently carry ``tag`` (box tags only).

        Returns
        -------
        DataFrame
            ``item_id``, ``box_id``, ``reason``, ``author``, ``tagged_at`` (UTC), sorted by
            item_id then box_id.
        """
        return self._current.boxes_with(tag)

    def counts(self) -> pd.DataFrame:
        """Return ``tag``, ``n_items`` for every tag in use, most used first.

        ``n_items`` counts images carrying the tag on the image or on any of its boxes.
        """
        return self._current.counts()

    def known_tags(self) -> list[str]:
        """Return every tag name ever used in this store (sorted), for pickers."""
        return self._events.known_tags()

    def history(self, item_id: str | None = None, tag: str | None = None, *,
                box_id: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Return the tag events (the audit trail), oldest first.

        Parameters
        ----------
        item_id : str, optional
            Only this item's events.
        tag : str, optional
            Only this tag's events.
        box_id : str, optional
            Only this box's events.
        limit : int, optional
            Only the latest ``limit`` events.

        Returns
        -------
        DataFrame
            ``event_id``, ``item_id``, ``tag``, ``action`` ('add' or 'remove'), ``author``,
            ``reason``, ``context`` (dict or None), ``created_at`` (UTC), ``action_key``,
            ``box_id`` (None for an event on the image).
        """
        return self._events.history(item_id, tag, box_id=box_id, limit=limit)

    # ------------------------------------------------------------------ queue statuses

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
        return self._statuses.set(item_ids, status, queue=queue, author=author,
                                  reason=reason, context=context, action_key=action_key)

    def statuses(self, queue: str, item_ids=None) -> pd.DataFrame:
        """Return the current status of items in ``queue``.

        Returns
        -------
        DataFrame
            ``item_id``, ``status``, ``author``, ``reason``, ``updated_at`` (UTC); items never
            given a status are absent.
        """
        return self._statuses.current(queue, item_ids)

    def status_history(self, item_id: str | None = None, queue: str | None = None
                       ) -> pd.DataFrame:
        """Return the status events, oldest first.

        Returns
        -------
        DataFrame
            ``event_id``, ``item_id``, ``queue``, ``status``, ``author``, ``reason``,
            ``context`` (dict or None), ``created_at`` (UTC), ``action_key``.
        """
        return self._statuses.history(item_id, queue)

    # ------------------------------------------------------------------ maintenance

    def integrity_check(self) -> str:
        """Run the database's integrity check; return ``"ok"`` or the problems found.

        SQLite: ``PRAGMA integrity_check`` plus a comparison of the current-state tables with
        a replay of the events. PostgreSQL: the replay comparison only.
        """
        return self._events.integrity_check()

    def close(self) -> None:
        """Release the database connections."""
        self._db.dispose()

    def __enter__(self) -> TagStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        extra = "" if self.persistent else ", in memory"
        extra += ", read-only" if self.read_only else ""
        return f"TagStore({self.url!r}{extra})"


def _project_store(cls, project) -> TagStore:
    """The store of :meth:`TagStore.for_project`: cached per project object (weakly)."""
    key = id(project)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is not None and store._project_ref() is project:
            return store
    ids = project.items["item_id"]  # hashed on the first write (KnownIds)
    url = os.environ.get("WORKBENCH_DB_URL") or None
    root = getattr(project, "root", None)
    if url is None and root is None:
        url = "sqlite://"
        log.info("Project %r has no folder: tags are kept in memory for this kernel only.",
                 getattr(project, "name", "?"))
    store = cls(url, root=root, item_ids=ids)
    store._events.boxes = ProjectBoxes(project)
    classes = getattr(project, "classes", None)
    if classes:
        store.decisions.classes = frozenset(map(str, classes))
    try:
        store._project_ref = weakref.ref(project)
        weakref.finalize(project, _STORES.pop, key, None)
    except TypeError:  # not weak-referenceable: do not cache
        return store
    with _STORES_LOCK:
        _STORES[key] = store
    return store
