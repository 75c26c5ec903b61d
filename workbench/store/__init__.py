"""The tag store: audited tag events and relabel-queue statuses, SQLite or PostgreSQL.

Every ``add``/``remove`` call appends one action (who, when, what, why, from where) to
``tag_actions`` and one event per item (or box) it changed to ``tag_events``; the current tags
are kept in ``tag_current`` (images) and ``box_current`` (boxes of a detection project),
updated in the same transaction, so reads stay fast. Relabel-queue
statuses are stored the same way (``status_events``/``status_current``). Every write carries
an *action key*; the triple (action key, item, box) is unique, so a retried or replayed call never
duplicates an event.

Modules, one job each:

``validation``  checks of names, texts, ids, keys and contexts (pure functions)
``engine``      the connection: SQLite WAL / PostgreSQL, transactions, retries, errors
``schema``      the tables, the schema version and the upgrade of older stores
``events``      tag writes (``add``/``remove``) and the audit trail
``current``     reads of the current tags
``boxes``       which image each box of a project belongs to (checks of box tags)
``statuses``    relabel-queue statuses
``frames``      the DataFrames returned (pure functions)
``decisions``   curators' label decisions (``store.decisions``; the latest per item wins)
``revisions``   labeling-guideline revisions (``store.guidelines``)
``qc_rounds``   QC rounds and their items (``store.qc_rounds``)
``tag_store``   :class:`TagStore`, composing the above
"""

from .schema import SCHEMA_VERSION
from .statuses import STATUSES
from .tag_store import TagStore
from .validation import normalize_tag

__all__ = ["TagStore", "SCHEMA_VERSION", "STATUSES", "normalize_tag"]
