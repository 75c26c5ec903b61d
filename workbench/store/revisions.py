"""Guideline revisions: append-only Markdown texts per class or class pair.

The store keeps each revision as typed (``text`` is Markdown, never rendered here) with its
author, reason, the time it takes effect and its example items. Which classes a target may
name is the project's business (:class:`workbench.Guidelines` checks it); the store checks
the texts and writes one row per revision.
"""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa

from ..errors import SchemaError
from .frames import now_us, rows_frame
from .part import StorePart
from .validation import MAX_AUTHOR_LENGTH, MAX_REASON_LENGTH, normalize_text

__all__ = ["GuidelineRevisions", "REVISION_COLUMNS", "MAX_GUIDELINE_LENGTH", "EXAMPLE_KINDS"]

#: Columns of :meth:`GuidelineRevisions.frame`.
REVISION_COLUMNS = ["revision_id", "target", "text", "author", "reason", "effective_batch",
                    "effective_at", "created_at", "examples"]
MAX_GUIDELINE_LENGTH = 100_000
#: What an example item shows: how to label (``do``) or a mistake to avoid (``don't``).
EXAMPLE_KINDS = ("do", "don't")


class GuidelineRevisions(StorePart):
    """Record and read guideline revisions (``store.guidelines``).

    Parameters
    ----------
    engine, tables : StoreEngine, Tables
        The store's connection and tables (see :class:`~workbench.store.part.StorePart`).

    Examples
    --------
    >>> from workbench.tags import TagStore
    >>> store = TagStore("sqlite://")
    >>> store.guidelines.add("1|7", "A 7 has a bar on top.", author="lead")
    1
    >>> store.guidelines.frame()[["revision_id", "target", "author"]].values.tolist()
    [[1, '1|7', 'lead']]
    """

    def add(self, target: str, text: str, *, author: str, reason: str | None = None,
            effective_at: int | None = None, effective_batch: str | None = None,
            examples: dict | None = None) -> int:
        """Append a revision; return its ``revision_id``.

        Parameters
        ----------
        target : str
            A class, or a sorted class pair ``"a|b"``.
        text : str
            Markdown (blank lines before it and whitespace after it dropped, the first
            line's indentation kept; at most 100,000 characters; newlines and tabs allowed).
        author : str
            Who revises.
        reason : str, optional
            Why.
        effective_at : int, optional
            Microseconds since the epoch (UTC) from which labels follow this revision
            (default: now).
        effective_batch : str, optional
            The batch from which labels follow this revision, when it was given as a batch.
        examples : dict of str to {'do', "don't"}, optional
            Example items.

        Raises
        ------
        SchemaError
            Empty target or text, bad characters, too long, or a bad example kind; nothing
            is written.
        """
        func = "Guidelines.revise"
        target = normalize_text(target, "target", func, 2 * MAX_REASON_LENGTH, required=True,
                                allow_newlines=False)
        text = normalize_text(text, "text", func, MAX_GUIDELINE_LENGTH, required=True,
                              allow_newlines=True, keep_indent=True)
        author = normalize_text(author, "author", func, MAX_AUTHOR_LENGTH, required=True,
                                allow_newlines=False)
        reason = normalize_text(reason, "reason", func, MAX_REASON_LENGTH, required=False,
                                allow_newlines=True)
        payload = None
        if examples:
            bad = {k: v for k, v in examples.items() if v not in EXAMPLE_KINDS}
            if bad:
                raise SchemaError(f"{func}: examples must map item ids to 'do' or \"don't\"; "
                                  f"got {bad}. Nothing was written.")
            payload = json.dumps({str(k): v for k, v in examples.items()}, ensure_ascii=False)
        row = {"target": target, "text": text, "author": author, "reason": reason,
               "examples": payload, "effective_batch": None if effective_batch is None
               else str(effective_batch)}
        g = self.tables.guidelines

        def write(conn) -> int:
            now = now_us()
            return conn.execute(sa.insert(g).values(
                **row, created_at=now, effective_at=now if effective_at is None
                else int(effective_at)).returning(g.c.revision_id)).scalar_one()

        return int(self.engine.write(write, doing="record a guideline revision in"))

    def frame(self, target: str | None = None) -> pd.DataFrame:
        """Return the revisions (of one target, or all), oldest first.

        Returns
        -------
        DataFrame
            ``revision_id``, ``target``, ``text``, ``author``, ``reason``,
            ``effective_batch`` (NA unless given), ``effective_at`` and ``created_at`` (UTC),
            ``examples`` (dict, empty when none).
        """
        g = self.tables.guidelines
        q = sa.select(*(g.c[c] for c in REVISION_COLUMNS)).order_by(g.c.revision_id)
        if target is not None:
            q = q.where(g.c.target == str(target))
        rows = self.engine.read(lambda conn: conn.execute(q).all())
        return rows_frame(rows, {"revision_id": "int",
                                 **dict.fromkeys(REVISION_COLUMNS[1:6], "str"),
                                 "effective_at": "time", "created_at": "time",
                                 "examples": "json"})
