"""The relabel loop: queue tagged items, export a batch for a labelling vendor, import results.

The queue is every item carrying a tag (``relabel`` by default) in the project's
:class:`~workbench.tags.TagStore`. Each queued item moves through the statuses
``queued -> sent -> relabeled -> verified``; every transition is an audited event in the store.

* :func:`export_relabel_queue` writes a batch (Label Studio tasks, CSV or JSON Lines),
  atomically, and marks it ``sent``.
* :func:`import_labels` reads the vendor's results (a Label Studio JSON export, a CSV or
  JSON Lines), validates them, appends the new labels to the project's annotations file
  (atomically, with a backup), marks the items ``relabeled`` and reports what changed, per
  slice.

Both are idempotent: exporting the same queue twice sends the same items with the same
content (a CSV or JSON Lines file differs only in their ``status``, ``sent`` the second
time), importing the same results twice adds nothing. Exports are lossless: every legal id
and label reads back exactly from its own export, in every format (in a CSV, formula-like
cells carry a guard that :func:`restore_cell` undoes exactly; see :func:`neutralize_cell`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import (
    atomic_write,
    backup_copy,
    backup_stamp,
    csv_line_end,
    import_lock,
    parse_times,
    table_path,
)
from ._validation import check_columns, check_int, check_option, latest_annotations
from .errors import SchemaError, StoreError
from .session import current_author, require_write
from .tags import STATUSES, TagStore

__all__ = [
    "RelabelQueue",
    "ImportReport",
    "export_relabel_queue",
    "import_labels",
    "read_labels",
    "neutralize_cell",
    "restore_cell",
    "queue_statuses",
    "atomic_write",
]

EXPORT_FORMATS = ("labelstudio", "csv", "jsonl")
#: How a :class:`RelabelQueue` ranks its items.
PRIORITIES = ("combined", "label_issue", "slice_lift")
IMPORT_FORMATS = ("labelstudio", "csv", "jsonl")
#: A CSV cell starting with one of these is run as a formula by spreadsheets (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GUARD = "'"
#: Cells :func:`neutralize_cell` prefixes with the guard: formulas, and the guard itself
#: (so that the prefix is reversible).
_GUARDED_START = (*_FORMULA_START, _GUARD)
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------


def neutralize_cell(value: Any) -> Any:
    r"""Guard a CSV cell against formula injection, reversibly (see :func:`restore_cell`).

    A text cell a spreadsheet would run as a formula (it starts with ``= + - @``, a tab or a
    carriage return) gets a leading ``'``, which spreadsheets show as text. A cell that
    already starts with ``'`` gets one more, so that :func:`restore_cell` can tell the guard
    from data: ``restore_cell(neutralize_cell(v)) == v`` for every string ``v``. Other
    values are returned unchanged.

    Parameters
    ----------
    value : object
        A cell; only ``str`` values are changed.

    Returns
    -------
    object
        The guarded cell.

    Examples
    --------
    >>> neutralize_cell('=HYPERLINK("http://x")')
    '\'=HYPERLINK("http://x")'
    >>> neutralize_cell("-1"), neutralize_cell("'quoted"), neutralize_cell("cat")
    ("'-1", "''quoted", 'cat')
    """
    if isinstance(value, str) and value.startswith(_GUARDED_START):
        return _GUARD + value
    return value


def restore_cell(value: Any) -> Any:
    r"""Undo :func:`neutralize_cell`: drop the guard ``'`` it added, and nothing else.

    A leading ``'`` is removed only when what follows starts with a character the guard
    protects (``= + - @ '``, tab, carriage return), that is, only when
    :func:`neutralize_cell` could have added it. A cell written without the guard (by a
    spreadsheet that dropped it, or by hand) is returned as is, so ``-1`` and ``'-1`` both
    read back as ``-1``, and ``'cat`` stays ``'cat``.

    Parameters
    ----------
    value : object
        A cell read from a CSV; only ``str`` values are changed.

    Returns
    -------
    object
        The original value.

    Examples
    --------
    >>> restore_cell("'-1"), restore_cell("-1"), restore_cell("''quoted"), restore_cell("'cat")
    ('-1', '-1', "'quoted", "'cat")
    >>> all(restore_cell(neutralize_cell(v)) == v for v in ["=A1", "'", "''+1", "\tx", "a"])
    True
    """
    if (isinstance(value, str) and value.startswith(_GUARD)
            and value[len(_GUARD):].startswith(_GUARDED_START)):
        return value[len(_GUARD):]
    return value


def _atomic_frame(frame: pd.DataFrame, target: Path) -> None:
    if target.suffix == ".parquet":
        atomic_write(target, lambda fh: frame.to_parquet(fh, index=False), binary=True)
    else:
        atomic_write(target, lambda fh: frame.to_csv(fh, index=False,
                                                     lineterminator=csv_line_end(frame),
                                                     date_format="%Y-%m-%dT%H:%M:%S.%fZ"))


# --------------------------------------------------------------------------------------
# the queue
# --------------------------------------------------------------------------------------


def queue_statuses(status, tagged_at=None, status_at=None) -> np.ndarray:
    """Return the status each tagged item has in its relabel queue.

    The one rule of the queue (used by :class:`RelabelQueue` and
    :func:`workbench.kpis.relabel_status_counts`): an item never given a status, or tagged
    again after its latest status (``tagged_at`` later than ``status_at``), is
    ``'queued'``; any other item has its latest status.

    Parameters
    ----------
    status : array-like of shape (n_items,)
        Each tagged item's latest status in the queue; None/NaN/NA where it has none.
    tagged_at, status_at : array-like of shape (n_items,), optional
        When the item got its current tag, and when its latest status was set (datetimes or
        ISO strings; naive times are taken as UTC). Without both, only items without a
        status are ``'queued'``.

    Returns
    -------
    ndarray of shape (n_items,)
        The statuses (object dtype, str values).

    Raises
    ------
    ValueError
        If the arrays differ in length.

    Examples
    --------
    >>> queue_statuses(["sent", None, "verified"],
    ...                tagged_at=["2026-03-01", "2026-01-01", "2026-01-01"],
    ...                status_at=["2026-02-01", None, "2026-02-01"]).tolist()
    ['queued', 'queued', 'verified']
    """
    status = pd.Series(np.asarray(status, dtype=object), dtype=object)
    fresh = status.isna().to_numpy()
    if tagged_at is not None and status_at is not None:
        tagged = pd.to_datetime(pd.Series(np.asarray(tagged_at, dtype=object)), utc=True,
                                format="mixed")
        changed = pd.to_datetime(pd.Series(np.asarray(status_at, dtype=object)), utc=True,
                                 format="mixed")
        if not len(tagged) == len(changed) == len(status):
            raise ValueError(f"queue_statuses: status, tagged_at and status_at must have the "
                             f"same length. Got {len(status)}, {len(tagged)} and "
                             f"{len(changed)}.")
        fresh = fresh | (tagged > changed).to_numpy()  # NaT compares False
    return np.where(fresh, "queued", status.to_numpy()).astype(object)



def _taken(values: np.ndarray, rows: np.ndarray, missing: Any) -> np.ndarray:
    """``values[rows]``, with ``missing`` where a row is -1 (not found)."""
    out = values[np.maximum(rows, 0)] if len(values) else np.full(len(rows), missing)
    if out.dtype == object or missing is None:
        out = out.astype(object)
        out[rows < 0] = missing
        return out
    out = out.astype(float)
    out[rows < 0] = missing
    return out


class RelabelQueue:
    """The items tagged for relabelling, with their status and priority.

    Parameters
    ----------
    project : Project
        The project.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    tag : str, default="relabel"
        The tag that puts an item in the queue (also the queue's name for statuses).
    priority : {'combined', 'label_issue', 'slice_lift'}, default='combined'
        How items are ranked (higher = relabel first):

        * ``'label_issue'``: the item's ``score``, how likely its label is wrong (see
          ``priority_source``);
        * ``'slice_lift'``: the ``slice_lift`` of the worst automatically found slice
          (:func:`workbench.discover_slices` on the default run's errors) holding the item,
          1 outside every such slice; ties broken by ``score``;
        * ``'combined'``: ``score * slice_lift``, a suspicious label counts more where the
          model fails most (labels there are what the model learned the slice from).

    Attributes
    ----------
    priority_source : str
        Where ``score`` comes from: ``"label_issues"`` (1 - cleanlab label quality),
        ``"model_probability"`` (1 - the model's probability of the reference label),
        ``"model_disagreement"`` (1 when the model disagrees with the label) or ``"none"``.
    priority_note : str
        Why the label-issue score or the slice lift was not used, when it failed ("" otherwise).

    Examples
    --------
    >>> queue = RelabelQueue(project)  # doctest: +SKIP
    >>> queue.frame(limit=50)  # the 50 most urgent items  # doctest: +SKIP

    For a detection project (``project.task == "detection"``) ``RelabelQueue(project)``
    returns a :class:`~workbench.detection.queue.DetectionRelabelQueue`: one row per image,
    with the tagged boxes in question (``box_ids``) and the reasons.
    """

    def __new__(cls, project=None, *args: Any, **kwargs: Any):
        """A :class:`~workbench.detection.queue.DetectionRelabelQueue` for a detection project."""
        if cls is RelabelQueue and getattr(project, "task", None) == "detection":
            from .detection.queue import DetectionRelabelQueue

            return super().__new__(DetectionRelabelQueue)
        return super().__new__(cls)

    def __init__(self, project, *, store: TagStore | None = None, tag: str = "relabel",
                 priority: str = "combined"):
        from .tags import normalize_tag

        self.project = project
        self.store = store if store is not None else TagStore.for_project(project)
        self.tag = normalize_tag(tag, func="RelabelQueue")
        self.priority = priority
        self.priority_source = "none"
        self.priority_note = ""
        self._scores: pd.Series | None = None
        self._slices: pd.DataFrame | None = None

    # ------------------------------------------------------------------ priorities

    @property
    def priority(self) -> str:
        """How items are ranked; may be changed (the scores and slices are kept)."""
        return self._priority_kind

    @priority.setter
    def priority(self, value: str) -> None:
        check_option(value, "priority", "RelabelQueue", PRIORITIES)
        self._priority_kind = value

    def scores(self) -> pd.Series:
        """Return how likely each item's label is wrong (higher = more), indexed by item_id.

        The label-issue score of :func:`workbench.label_quality.label_issues`
        (``1 - label_quality``) when available, else ``1 -`` the default run's probability
        of the item's reference label, else 1 where the run disagrees with it, else 0.
        """
        if self._scores is None:
            ids = self._item_ids()
            self._scores = pd.Series(self._scores_of(ids), index=pd.Index(ids, name="item_id"),
                                     name="score")
        return self._scores

    def slice_lifts(self) -> pd.DataFrame:
        """Return the worst found slice of every item, indexed by item_id.

        :func:`workbench.discover_slices` (default settings: up to two conditions, false
        discovery rate 5 %) on the default run's errors; each item gets the slice of highest
        ``lift`` (error rate over the overall rate) that holds it.

        Returns
        -------
        DataFrame
            ``slice`` ("" outside every found slice) and ``slice_lift`` (1.0 there, and
            everywhere when the project has no run).
        """
        if self._slices is None:
            ids = self._item_ids()
            name, lift = self._slices_of(ids)
            self._slices = pd.DataFrame({"slice": pd.array(name, dtype="str"),
                                         "slice_lift": lift},
                                        index=pd.Index(ids, name="item_id"))
        return self._slices

    def priorities(self) -> pd.Series:
        """Return the priority of every item (higher = relabel first), indexed by item_id.

        See the ``priority`` parameter: ``score``, ``slice_lift`` (ties broken by
        ``score``) or their product.
        """
        score = self.scores()
        lift = self.slice_lifts()["slice_lift"].to_numpy()
        return pd.Series(self._priority(score.to_numpy(), lift), index=score.index,
                         name="priority")

    def _priority(self, score: np.ndarray, lift: np.ndarray) -> np.ndarray:
        if self.priority == "label_issue":
            return score
        if self.priority == "slice_lift":
            # the score is in [0, 1]: a tie-break below any difference of lift that matters
            return lift + 1e-6 * score
        return score * lift

    def _item_ids(self) -> np.ndarray:
        return self.project.items["item_id"].astype(str).to_numpy(dtype=object)

    def _scores_of(self, ids: np.ndarray) -> np.ndarray:
        """:meth:`scores` of the items ``ids`` only (0 for an item without a score).

        The items are looked up in the frames (:func:`workbench._ids.locate_ids`), so the
        queue of a 10M-item project is scored without a score of every item.
        """
        from ._ids import locate_ids

        project = self.project
        if project.default_run is not None and project.prob_columns:
            try:
                from . import results

                issues = results.label_issues(  # cached for every kernel
                    project, columns=["item_id", "label_quality"])
                if "label_quality" in issues.columns:
                    pos = locate_ids(issues["item_id"], ids)
                    quality = issues["label_quality"].to_numpy(dtype=float, na_value=np.nan)
                    self.priority_source = "label_issues"
                    return _taken(1.0 - quality, pos, 0.0)
            except Exception as exc:  # optional scorer unavailable/failing: fall back below
                self.priority_note = (f"label_issues unavailable ({type(exc).__name__}: "
                                      f"{exc}); using the model's probabilities")
        if project.default_run is None:
            return np.zeros(len(ids))
        given = _taken(project.reference_labels().to_numpy(dtype=object),
                       locate_ids(project.items["item_id"], ids), None)
        if project.prob_columns:
            item_ids, probs = project.pred_probs()
            row = locate_ids(pd.Series(item_ids, dtype=object), ids)
            pos = {c: k for k, c in enumerate(project.classes)}
            code = np.array([pos.get(v, -1) if isinstance(v, str) else -1 for v in given],
                            dtype=np.int64)
            ok = (row >= 0) & (code >= 0)
            p = np.full(len(ids), np.nan)
            p[ok] = probs[row[ok], code[ok]]
            self.priority_source = "model_probability"
            return np.nan_to_num(1.0 - p, nan=0.0)
        pred = project.predictions
        pred = pred[pred["run"] == project.default_run]
        row = locate_ids(pred["item_id"], ids)
        predicted = _taken(pred["label"].to_numpy(dtype=object), row, None)
        self.priority_source = "model_disagreement"
        return np.where(row >= 0, (predicted != given).astype(float), 0.0)

    def _slices_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`slice_lifts` of the items ``ids`` only: (slice names, lifts)."""
        name = np.full(len(ids), "", dtype=object)
        lift = np.ones(len(ids))
        if self.project.default_run is None:
            return name, lift
        from . import results
        from ._ids import locate_ids
        from .slicing import slice_mask

        try:
            errors = results.errors(self.project)  # cached for every kernel
            found = results.discover_slices(errors)
        except Exception as exc:  # e.g. no metadata column: the lift stays 1
            self.priority_note = (self.priority_note + f" slice lift unavailable "
                                  f"({type(exc).__name__}: {exc})").strip()
            return name, lift
        pos = locate_ids(errors["item_id"], ids)
        held = np.flatnonzero(pos >= 0)
        rows = errors.iloc[pos[held]]
        # lowest lift first: a later (worse) slice overwrites an item's slice
        for row in found.sort_values("lift", kind="stable").itertuples():
            members = held[slice_mask(rows, row.conditions)]
            lift[members] = float(row.lift)
            name[members] = row.slice
        return name, lift

    # ------------------------------------------------------------------ state

    def frame(self, limit: int | None = None, *, status: str | list | None = None
              ) -> pd.DataFrame:
        """Return the queue, most urgent first.

        Parameters
        ----------
        limit : int, optional
            Budget cut: keep only the ``limit`` highest-priority items.
        status : str or list of str, optional
            Keep only items in these statuses.

        Returns
        -------
        DataFrame
            ``item_id``, ``status``, ``priority``, ``label`` (reference label),
            ``predicted`` and ``confidence`` (default run), ``score`` (how likely the label
            is wrong, see :meth:`scores`), ``slice`` and ``slice_lift`` (the item's worst
            found slice, see :meth:`slice_lifts`), ``filepath`` (if any), ``tagged_by``,
            ``reason``, ``tagged_at``, ``status_at``.
        """
        from ._ids import locate_ids

        check_int(limit, "limit", "RelabelQueue.frame", minimum=0, allow_none=True)
        frame = self._state(status, func="RelabelQueue.frame")
        ids = frame["item_id"].astype(str).to_numpy(dtype=object)
        score = self._scores_of(ids)
        name, lift = self._slices_of(ids)
        frame["priority"] = self._priority(score, lift)
        frame["score"] = score
        frame["slice"] = pd.array(name, dtype="str")
        frame["slice_lift"] = lift
        project = self.project
        at = locate_ids(project.items["item_id"], ids)
        ref = project.reference_labels().to_numpy(dtype=object)
        frame["label"] = pd.array(_taken(ref, at, None), dtype="str")
        pred = project.predictions
        if project.default_run is not None and len(pred):
            pred = pred[pred["run"] == project.default_run]
            row = locate_ids(pred["item_id"], ids)
            frame["predicted"] = pd.array(_taken(pred["label"].to_numpy(dtype=object), row,
                                                 None), dtype="str")
            frame["confidence"] = _taken(pred["confidence"].to_numpy(dtype=float,
                                                                     na_value=np.nan),
                                         row, np.nan)
        else:
            frame["predicted"] = pd.array([pd.NA] * len(frame), dtype="str")
            frame["confidence"] = np.nan
        if "filepath" in project.items.columns:
            paths = project.items["filepath"].to_numpy(dtype=object)
            frame["filepath"] = pd.array(_taken(paths, at, None), dtype="str")
        frame = frame.sort_values(["priority", "item_id"], ascending=[False, True],
                                  kind="stable", ignore_index=True)
        if limit is not None:
            frame = frame.head(limit)
        cols = ["item_id", "status", "priority", "label", "predicted", "confidence", "score",
                "slice", "slice_lift"]
        cols += ["filepath"] if "filepath" in frame.columns else []
        cols += ["tagged_by", "reason", "tagged_at", "status_at"]
        return frame[cols].reset_index(drop=True)

    def _state(self, status, *, func: str) -> pd.DataFrame:
        """The queued items with their tag and current status (no priorities)."""
        wanted = None
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            for s in wanted:
                check_option(s, "status", func, STATUSES)
        tags = self.store.tags(tag=self.tag).drop(columns="tag")
        tags = tags.rename(columns={"author": "tagged_by"}).reset_index(drop=True)
        st = self.store.statuses(self.tag).rename(columns={"updated_at": "status_at"})
        frame = tags.merge(st[["item_id", "status", "status_at"]], on="item_id", how="left")
        frame["status"] = pd.array(queue_statuses(frame["status"], frame["tagged_at"],
                                                  frame["status_at"]), dtype="str")
        if wanted is not None:
            frame = frame[frame["status"].isin(wanted)].reset_index(drop=True)
        return frame

    def counts(self) -> pd.DataFrame:
        """Return ``status``, ``n_items`` for every status (in workflow order)."""
        frame = self._state(None, func="RelabelQueue.counts")
        n = frame["status"].value_counts()
        return pd.DataFrame({"status": pd.array(list(STATUSES), dtype="str"),
                             "n_items": [int(n.get(s, 0)) for s in STATUSES]})

    def mark(self, item_ids, status: str, *, author: str | None = None,
             reason: str | None = None, context: dict | None = None,
             action_key: str | None = None) -> int:
        """Move items to ``status`` (an audited event); returns the events written.

        Raises
        ------
        ReadOnlyError
            In a read-only session.
        """
        require_write(f"mark items {status}")
        return self.store.set_status(item_ids, status, queue=self.tag,
                                     author=author or current_author(), reason=reason,
                                     context=context, action_key=action_key)

    # ------------------------------------------------------------------ export

    def export(self, path, *, format: str = "labelstudio", limit: int | None = None,
               statuses: tuple[str, ...] = ("queued", "sent"), url_prefix: str | None = None,
               from_name: str = "label", to_name: str | None = None, author: str | None = None
               ) -> int:
        """Write a batch for the labelling vendor and mark it ``sent``.

        Parameters
        ----------
        path : path-like
            The file to write (replaced atomically: a killed export leaves the previous one).
        format : {'labelstudio', 'csv', 'jsonl'}, default='labelstudio'
            Label Studio task import JSON (with the current label and the model prediction
            as pre-annotations), CSV (formula-like cells guarded, reversibly: see
            :func:`neutralize_cell`) or JSON Lines.
        limit : int, optional
            Budget: the ``limit`` most urgent items only.
        statuses : tuple of str, default=('queued', 'sent')
            Which items to send (default: everything not yet relabelled).
        url_prefix : str, optional
            Label Studio ``data.image`` = ``url_prefix + filepath`` (default: the path
            relative to the project folder).
        from_name, to_name : str
            The names of the Choices and Image (or Text) tags of the Label Studio labelling
            config; ``to_name`` defaults to ``'text'`` in a text project, else ``'image'``.
        author : str, optional
            Default: ``workbench.session.current_author()``.

        Returns
        -------
        int
            Items written.
        """
        func = "export_relabel_queue"
        check_option(format, "format", func, EXPORT_FORMATS)
        check_int(limit, "limit", func, minimum=0, allow_none=True)
        require_write("export the relabel queue")
        batch = self.frame(limit=limit, status=list(statuses))
        if getattr(self.project, "is_text", False):  # the vendor reads the text itself
            batch["text"] = [self.project.item_text(i) for i in batch["item_id"]]
            _require_texts(batch, self.project, path)
            to_name = "text" if to_name is None else to_name
        to_name = "image" if to_name is None else to_name
        path = Path(path)
        if format == "labelstudio":
            payload = _labelstudio_tasks(batch, self.project, url_prefix, from_name, to_name)
            atomic_write(path, lambda fh: json.dump(payload, fh, ensure_ascii=False, indent=1))
        elif format == "csv":
            atomic_write(path, lambda fh: _write_csv(batch, fh))
        else:
            atomic_write(path, lambda fh: _write_jsonl(batch, fh))
        if len(batch):
            self.store.set_status(batch["item_id"].tolist(), "sent", queue=self.tag,
                                  author=author or current_author(),
                                  context={"export": str(path), "format": format})
        return len(batch)


def _record(row: pd.Series) -> dict:
    out = {}
    for key in ("item_id", "filepath", "text", "label", "predicted", "confidence", "priority",
                "status", "reason", "tagged_by"):
        if key not in row.index:
            continue
        value = row[key]
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            out[key] = None
        elif isinstance(value, (float, np.floating)):
            out[key] = round(float(value), 6)
        else:
            out[key] = str(value)
    return out


def _write_csv(batch: pd.DataFrame, fh) -> None:
    fields = [c for c in ("item_id", "filepath", "text", "label", "predicted", "confidence",
                          "priority", "status", "reason", "tagged_by") if c in batch.columns]
    rows = []
    for _, row in batch.iterrows():
        rec = _record(row)
        rows.append({k: neutralize_cell("" if rec[k] is None else rec[k]) for k in fields})
    # a bare carriage return in a cell is quoted only if it is part of the line ending
    cr = any(isinstance(v, str) and "\r" in v for r in rows for v in r.values())
    end = "\r\n" if cr else "\n"
    writer = csv.DictWriter(fh, fieldnames=fields, lineterminator=end)
    writer.writeheader()
    writer.writerows(rows)


def _write_jsonl(batch: pd.DataFrame, fh) -> None:
    for _, row in batch.iterrows():
        fh.write(json.dumps(_record(row), ensure_ascii=False) + "\n")


def _require_texts(batch: pd.DataFrame, project, path) -> None:
    """Refuse a text batch with items whose text is missing, empty or unreadable.

    The vendor labels the text in the file; a task without it cannot be labelled, and the
    items would be marked ``sent`` all the same.
    """
    bad = [i for i, t in zip(batch["item_id"], batch["text"], strict=True)
           if not isinstance(t, str) or not t.strip()]
    if not bad:
        return
    files = project.items.set_index("item_id")["filepath"] \
        if "filepath" in project.items.columns else None
    shown = ", ".join(repr(i) + (f" ({files.get(i)})" if files is not None else "")
                      for i in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    raise SchemaError(f"Cannot export {path}: {len(bad)} item(s) of the batch have no readable "
                      f"text: {shown}. Each text must be a non-empty UTF-8 file inside the "
                      "project folder; fix or add the files (`workbench validate PROJECT` "
                      "lists them), or untag the items. Nothing was written or marked sent.")


def _shaped(value: Any, kind: type, what: str) -> Any:
    """``value`` if it is a ``kind`` (a JSON object or list), else the file's error."""
    if isinstance(value, kind):
        return value
    name = "a JSON object" if kind is dict else "a JSON list"
    raise SchemaError(f"{what} is {type(value).__name__} {str(value)[:40]!r}, not {name}. "
                      "Import the file Label Studio exported (Export > JSON), unedited; "
                      "nothing was imported.")


def _labelstudio_tasks(batch: pd.DataFrame, project, url_prefix, from_name, to_name) -> list:
    run = project.default_run
    tasks = []
    for _, row in batch.iterrows():
        rec = _record(row)
        data: dict[str, Any] = {"item_id": rec["item_id"]}
        if "text" in rec:  # a text item: Label Studio's <Text value="$text"/> shows it
            data["text"] = rec["text"]
        elif rec.get("filepath"):
            rel = rec["filepath"].replace(os.sep, "/")
            if url_prefix:
                from urllib.parse import quote

                data["image"] = url_prefix.rstrip("/") + "/" + quote(rel.lstrip("/"))
            else:
                data["image"] = rel
        if rec.get("label") is not None:
            data["label"] = rec["label"]
        if rec.get("predicted") is not None:
            data["predicted"] = rec["predicted"]
        predictions = []
        for version, choice, score in (("current-label", rec.get("label"), None),
                                       (run, rec.get("predicted"), rec.get("confidence"))):
            if choice is None:
                continue
            pred = {"model_version": str(version),
                    "result": [{"from_name": from_name, "to_name": to_name, "type": "choices",
                                "value": {"choices": [choice]}}]}
            if score is not None:
                pred["score"] = score
            predictions.append(pred)
        tasks.append({"data": data, "predictions": predictions})
    return tasks


def export_relabel_queue(project, path, *, format: str = "labelstudio", tag: str = "relabel",
                         limit: int | None = None, store: TagStore | None = None,
                         url_prefix: str | None = None, priority: str = "combined") -> int:
    """Export the relabel queue (most urgent first) and mark the exported items ``sent``.

    Parameters
    ----------
    project : Project
    path : path-like
        The file to write, atomically.
    format : {'labelstudio', 'csv', 'jsonl'}, default='labelstudio'
    tag : str, default='relabel'
    limit : int, optional
        Budget: at most this many items, by priority.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    url_prefix : str, optional
        Prefix for Label Studio image URLs (default: paths relative to the project).
    priority : {'combined', 'label_issue', 'slice_lift'}, default='combined'
        How the budget picks the most urgent items (see :class:`RelabelQueue`).

    Returns
    -------
    int
        Items written.

    Raises
    ------
    ReadOnlyError
        In a read-only session.

    See Also
    --------
    RelabelQueue.export, import_labels
    """
    if getattr(project, "task", None) == "detection":  # boxes: formats labelstudio/coco/csv
        from .detection.vendor_export import export_box_queue

        return export_box_queue(project, path, format=format, tag=tag, limit=limit,
                                store=store, url_prefix=url_prefix, priority=priority)
    queue = RelabelQueue(project, store=store, tag=tag, priority=priority)
    return queue.export(path, format=format, limit=limit, url_prefix=url_prefix)


# --------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------


def _annotator_of(completed_by: Any, annotation: dict) -> str | None:
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if email:
            return str(email)
        completed_by = completed_by.get("id")
    if completed_by is None or completed_by == "":
        email = annotation.get("created_username") or ""
        return email.split(",")[0].strip() or None
    return f"ls-{completed_by}"


def _parse_labelstudio(path: Path) -> pd.DataFrame:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc}). Export the project from Label "
                          "Studio with 'Export > JSON'.") from exc
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise SchemaError(f"{path}: expected a JSON list of Label Studio tasks.")
    rows = []
    for n, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise SchemaError(f"{path}: task #{n} is not a JSON object.")
        data = _shaped(task.get("data") or {}, dict, f"{path}: task #{n}'s data")
        item_id = data.get("item_id")
        if item_id is None or str(item_id).strip() == "":
            raise SchemaError(f"{path}: task #{n} (id {task.get('id')!r}) has no data.item_id. "
                              "Import tasks exported by workbench (they carry data.item_id).")
        where = f"{path}: task #{n} (item {item_id!r})"
        for ann in _shaped(task.get("annotations") or [], list, f"{where}: annotations"):
            ann = _shaped(ann, dict, f"{where}: an annotation")
            if ann.get("was_cancelled"):
                continue
            choice = None
            for res in _shaped(ann.get("result") or [], list, f"{where}: a result list"):
                res = _shaped(res, dict, f"{where}: a result")
                value = _shaped(res.get("value") or {}, dict, f"{where}: a result's value")
                if res.get("type") == "choices" or "choices" in value:
                    choices = value.get("choices") or []
                    if choices:
                        choice = choices[0]
                        break
            if choice is None:
                continue
            annotator = _annotator_of(ann.get("completed_by"), ann)
            if annotator is None:
                raise SchemaError(f"{path}: an annotation of task #{n} (item "
                                  f"{item_id!r}) has no completed_by; cannot tell who labelled.")
            rows.append({"item_id": str(item_id), "annotator": annotator, "label": str(choice),
                         "annotated_at": ann.get("updated_at") or ann.get("created_at")})
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label", "annotated_at"])


def _parse_csv(path: Path) -> pd.DataFrame:
    """Read a results CSV verbatim: every cell a str, ``NA``/``None`` kept, no trimming."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise SchemaError(f"{path}: cannot read the CSV ({exc}). Expected columns item_id, "
                          "annotator, label[, annotated_at].") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    check_columns(frame, ["item_id", "annotator", "label"], what=f"labels file {path.name}",
                  func="import_labels")
    cols = ["item_id", "annotator", "label"] + (
        ["annotated_at"] if "annotated_at" in frame.columns else [])
    frame = frame[cols].copy()
    # the annotator and the time are not project keys: trim them; item_id and label are
    # matched verbatim first (see _resolve)
    frame["annotator"] = frame["annotator"].str.strip().map(restore_cell)
    if "annotated_at" not in frame.columns:
        frame["annotated_at"] = None
    frame["annotated_at"] = frame["annotated_at"].str.strip().replace("", None)
    return frame


def _parse_jsonl(path: Path) -> pd.DataFrame:
    """Read JSON Lines results: one object per line with string item_id, annotator, label."""
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    # split on line feeds only: a raw U+2028 inside a JSON string is not a line break
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: line {n} is not valid JSON ({exc}). Each line must be "
                              'one object like {"item_id": "...", "annotator": "...", '
                              '"label": "..."}; nothing was imported.') from exc
        if not isinstance(rec, dict):
            raise SchemaError(f"{path}: line {n} is not a JSON object; nothing was imported.")
        missing = [k for k in ("item_id", "annotator", "label") if k not in rec]
        if missing:
            raise SchemaError(f"{path}: line {n} has no {missing}. Each line needs item_id, "
                              "annotator and label [, annotated_at]; nothing was imported.")
        for key in ("item_id", "label"):
            if not isinstance(rec[key], str):
                raise SchemaError(f"{path}: line {n}: {key} must be a JSON string, got "
                                  f"{rec[key]!r} ({type(rec[key]).__name__}). Quote it (ids "
                                  'and classes are text: "007" is not 7); nothing was '
                                  "imported.")
        annotator = rec["annotator"]
        if isinstance(annotator, bool) or not isinstance(annotator, (str, int)):
            raise SchemaError(f"{path}: line {n}: annotator must be a string, got "
                              f"{annotator!r}; nothing was imported.")
        rows.append({"item_id": rec["item_id"], "annotator": str(annotator).strip(),
                     "label": rec["label"], "annotated_at": rec.get("annotated_at")})
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label", "annotated_at"])


def _resolve(raw: pd.Series, decode: Callable[[Any], Any], known: set | None) -> pd.Series:
    """Decode cells exactly; tolerate padding only where the exact value is unknown.

    The exact (decoded) value wins, so every legal id and class, including ones with
    leading or trailing whitespace, reads back as written. A value the project does not
    know whose trimmed form it does know (``"cat "`` typed in a spreadsheet) is trimmed.
    """
    exact = raw.map(decode)
    if known is None:
        return exact
    miss = ~exact.isin(known)
    if miss.any():
        trimmed = raw[miss].astype(str).str.strip().map(decode)
        exact = exact.where(~miss, trimmed.where(trimmed.isin(known), exact[miss]))
    return exact


def read_labels(path, *, format: str = "labelstudio", classes=None, item_ids=None,
                project=None) -> pd.DataFrame:
    """Read a vendor's labels into long annotations, validated.

    Parameters
    ----------
    path : path-like
        A Label Studio JSON export (``data.item_id``; ``annotations[].completed_by`` becomes
        the annotator ``ls-<id>`` or the user's email; ``result[].value.choices[0]`` the
        label), a CSV with the columns ``item_id``, ``annotator``, ``label``
        [, ``annotated_at``], or JSON Lines with one such object per line (``item_id`` and
        ``label`` JSON strings).
    format : {'labelstudio', 'csv', 'jsonl'}, default='labelstudio'
    classes : list of str, optional
        Allowed labels.
    item_ids : iterable of str, optional
        Known item ids.
    project : Project, optional
        A detection project (or ``format='coco'``): the boxes are read by
        :func:`workbench.detection.vendor_read.read_box_labels`, checked against the project.

    Notes
    -----
    Ids and labels are read verbatim (``NA``, ``None``, ``007`` stay strings), so every file
    written by :func:`export_relabel_queue` reads back exactly. In a CSV the formula guard
    of the export is undone (:func:`restore_cell`), whether or not a spreadsheet kept it.
    Only a value unknown to the project whose trimmed form is known (``"cat "``) is trimmed.

    Returns
    -------
    DataFrame
        ``item_id``, ``annotator``, ``label``, ``annotated_at`` (UTC, NaT when not given).

    Raises
    ------
    SchemaError
        Unreadable file, missing fields, unknown items or classes, empty values; the message
        lists the offenders.
    """
    if getattr(project, "task", None) == "detection" or format == "coco":
        from .detection.vendor_read import read_box_labels

        return read_box_labels(path, project, format=format, classes=classes,
                               item_ids=item_ids)
    check_option(format, "format", "import_labels", IMPORT_FORMATS)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"import_labels: no file {path}.")
    parse = {"labelstudio": _parse_labelstudio, "csv": _parse_csv, "jsonl": _parse_jsonl}
    frame = parse[format](path)
    # CSV cells may carry the formula guard of the export: undo exactly that guard
    decode = restore_cell if format == "csv" else (lambda value: value)
    known_ids = None if item_ids is None else set(map(str, item_ids))
    allowed = None if classes is None else set(map(str, classes))
    frame["item_id"] = _resolve(frame["item_id"], decode, known_ids)
    frame["label"] = _resolve(frame["label"], decode, allowed)
    for col in ("item_id", "annotator", "label"):
        empty = frame[col].isna() | (frame[col].astype(str).str.strip().str.len() == 0)
        if empty.any():
            rows = (np.flatnonzero(empty.to_numpy()) + 2).tolist()[:5]
            raise SchemaError(f"{path}: empty {col} on line(s) {rows}. Fill them or drop "
                              "those rows; nothing was imported.")
    frame["annotated_at"] = parse_times(frame["annotated_at"], path, "annotated_at")
    if known_ids is not None:
        unknown = sorted(set(frame["item_id"]) - known_ids)
        if unknown:
            raise SchemaError(f"{path}: {len(unknown)} item id(s) are not in the project: "
                              f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}. Check the "
                              "file is for this project; nothing was imported.")
    if allowed is not None:
        unknown = sorted(set(frame["label"]) - allowed)
        if unknown:
            raise SchemaError(f"{path}: label(s) {unknown[:5]} are not classes of the project "
                              f"{sorted(allowed)[:20]}. Fix the labelling config or map them; "
                              "nothing was imported.")
    for col in ("item_id", "annotator", "label"):
        frame[col] = frame[col].astype("str")
    return frame.reset_index(drop=True)


@dataclass
class ImportReport:
    """What an :func:`import_labels` call did.

    Every row read is in ``labels`` with its ``kind``; ``new``, ``changed`` and
    ``duplicates`` are those rows split by kind, and ``n_<kind>`` their lengths, so the
    counts can never disagree with the rows.

    Attributes
    ----------
    path : Path
        The imported file.
    format : str
        ``'labelstudio'``, ``'csv'`` or ``'jsonl'``.
    labels : DataFrame
        Every row read: ``item_id``, ``annotator``, ``label``, ``annotated_at``, ``kind``
        (``'new'``, ``'changed'``, ``'older'``, ``'duplicate'``) and ``previous_label``
        (the annotator's label for the item before the import, NA if none).
    new, changed, older, duplicates : DataFrame
        The rows of ``labels`` that are labels from an annotator new to the item, labels
        replacing the annotator's previous different label, labels dated before the
        annotator's current one (added to the history; the current label stays), and
        labels already recorded (skipped).
    n_rows, n_new, n_changed, n_older, n_duplicates : int
        ``len(labels)``, ``len(new)``, ``len(changed)``, ``len(older)``,
        ``len(duplicates)``.
    items_agreeing_before, items_agreeing_after : int
        Imported items whose annotators all agree, before and after.
    per_slice : DataFrame
        ``column``, ``value``, ``n_items``, ``n_imported``, ``agreement_before``,
        ``agreement_after``, ``accuracy_before``, ``accuracy_after``, ``accuracy_change``:
        the share of items whose annotators agree, and the default run's accuracy against the
        annotators' consensus, for the whole project (``column='(all)'``) and each metadata
        slice holding imported items.
    written : bool
        Whether the annotations file was rewritten (False when nothing was new).
    annotations_path, backup_path : Path or None
        The rewritten annotations file and the backup of its previous version.
    n_relabeled : int
        Queue items marked ``relabeled``.
    project : Project
        The project re-read after the import (the caller's object is not modified).
    """

    path: Path
    format: str
    labels: pd.DataFrame
    items_agreeing_before: int
    items_agreeing_after: int
    per_slice: pd.DataFrame
    written: bool
    annotations_path: Path | None
    backup_path: Path | None
    n_relabeled: int
    project: Any = field(repr=False)

    def _of_kind(self, kind: str) -> pd.DataFrame:
        return self.labels[self.labels["kind"] == kind]

    @property
    def new(self) -> pd.DataFrame:
        """Rows read that are labels from an annotator new to the item."""
        return self._of_kind("new")

    @property
    def changed(self) -> pd.DataFrame:
        """Rows read that replace the annotator's previous, different label."""
        return self._of_kind("changed")

    @property
    def older(self) -> pd.DataFrame:
        """Rows read dated before the annotator's current label (history only)."""
        return self._of_kind("older")

    @property
    def duplicates(self) -> pd.DataFrame:
        """Rows read that were already recorded (skipped)."""
        return self._of_kind("duplicate")

    @property
    def n_rows(self) -> int:
        """Number of labels read."""
        return len(self.labels)

    @property
    def n_new(self) -> int:
        """``len(new)``."""
        return len(self.new)

    @property
    def n_changed(self) -> int:
        """``len(changed)``."""
        return len(self.changed)

    @property
    def n_older(self) -> int:
        """``len(older)``."""
        return len(self.older)

    @property
    def n_duplicates(self) -> int:
        """``len(duplicates)``."""
        return len(self.duplicates)

    def summary(self) -> str:
        """One line: counts and agreement before/after."""
        older = f"{self.n_older} older (history only), " if self.n_older else ""
        return (f"{self.n_rows} labels read from {self.path.name}: {self.n_new} new, "
                f"{self.n_changed} changed, {older}{self.n_duplicates} duplicate; items agreeing "
                f"{self.items_agreeing_before} -> {self.items_agreeing_after}; "
                f"{self.n_relabeled} queue items marked relabeled.")

    def __repr__(self) -> str:
        return f"ImportReport({self.summary()})"


def _consensus(ann: pd.DataFrame) -> pd.DataFrame:
    """Per item: majority label (NA on ties) and whether all annotators agree."""
    if ann.empty:
        return pd.DataFrame({"consensus": pd.Series(dtype="str"),
                             "agree": pd.Series(dtype=bool)})
    counts = ann.groupby(["item_id", "label"], observed=True).size().rename("n").reset_index()
    counts = counts.sort_values(["item_id", "n"], ascending=[True, False], kind="stable")
    top = counts.groupby("item_id", sort=False).head(2)
    first = top.groupby("item_id", sort=False).nth(0).set_index("item_id")
    second = top.groupby("item_id", sort=False).nth(1).set_index("item_id")["n"]
    tie = second.reindex(first.index).fillna(0).to_numpy() == first["n"].to_numpy()
    n_labels = counts.groupby("item_id", sort=False).size().reindex(first.index)
    out = pd.DataFrame(index=first.index)
    out["consensus"] = pd.array(np.where(tie, None, first["label"].to_numpy()), dtype="str")
    out["agree"] = (n_labels == 1).to_numpy()
    return out


def _slice_report(project, before: pd.DataFrame, after: pd.DataFrame, imported: set
                  ) -> pd.DataFrame:
    items = project.items.set_index("item_id")
    cb, ca = _consensus(latest_annotations(before)), _consensus(latest_annotations(after))
    base = pd.DataFrame(index=items.index)
    base["agree_before"] = cb["agree"].reindex(base.index)
    base["agree_after"] = ca["agree"].reindex(base.index)
    pred = project.predictions
    if project.default_run is not None and len(pred):
        p = pred[pred["run"] == project.default_run].set_index("item_id")["label"]
        p = p.reindex(base.index)
        for when, cons in (("before", cb), ("after", ca)):
            c = cons["consensus"].reindex(base.index)
            ok = (p.to_numpy() == c.to_numpy())
            valid = p.notna().to_numpy() & c.notna().to_numpy()
            base[f"correct_{when}"] = np.where(valid, ok, np.nan)
    else:
        base["correct_before"] = np.nan
        base["correct_after"] = np.nan
    base["imported"] = base.index.isin(list(imported))

    def row(column, value, mask):
        sub = base[mask]
        acc_b = sub["correct_before"].astype(float).mean()
        acc_a = sub["correct_after"].astype(float).mean()
        return {"column": column, "value": value, "n_items": int(len(sub)),
                "n_imported": int(sub["imported"].sum()),
                "agreement_before": sub["agree_before"].dropna().astype(float).mean(),
                "agreement_after": sub["agree_after"].dropna().astype(float).mean(),
                "accuracy_before": acc_b, "accuracy_after": acc_a,
                "accuracy_change": acc_a - acc_b}

    rows = [row("(all)", "(all)", np.ones(len(base), dtype=bool))]
    for col in project.metadata_columns:
        values = items[col]
        if values.nunique(dropna=True) > 50:
            continue
        hit = pd.unique(values[base["imported"].to_numpy()].dropna())
        for value in sorted(map(str, hit)):
            rows.append(row(col, value, (values.astype(str) == value).to_numpy()))
    frame = pd.DataFrame(rows)
    frame["column"] = frame["column"].astype("str")
    frame["value"] = frame["value"].astype("str")
    return frame


def import_labels(project, path, *, format: str = "labelstudio", tag: str = "relabel",
                  store: TagStore | None = None, author: str | None = None) -> ImportReport:
    """Import a vendor's labels: append them to the project's annotations, report changes.

    The file is read and validated first (unknown items or classes raise and nothing is
    written). Labels already recorded (the annotator's current label for the item is the same,
    or the same row with the same ``annotated_at`` exists) are skipped, so importing a file
    twice adds nothing. The others are appended to ``annotations.csv``/``.parquet``, which is
    rewritten atomically after a backup copy in ``.workbench/backups/``. Imported items in the
    queue are marked ``relabeled``.

    Parameters
    ----------
    project : Project
    path : path-like
        A Label Studio JSON export, a CSV ``item_id, annotator, label[, annotated_at]``, or
        JSON Lines with those keys (see :func:`read_labels`).
    format : {'labelstudio', 'csv', 'jsonl'}, default='labelstudio'
    tag : str, default='relabel'
        The queue whose items are marked ``relabeled``.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    author : str, optional
        Who imports (default: ``workbench.session.current_author()``).

    Returns
    -------
    ImportReport
        Counts, the per-slice before/after, and ``.project`` re-read from disk. For a project
        without a folder nothing is written to disk and ``.project`` is a new in-memory
        project holding the appended annotations.

    Raises
    ------
    SchemaError
        Invalid file content (nothing written).
    ReadOnlyError
        In a read-only session.
    """
    if getattr(project, "task", None) == "detection":  # boxes: a BoxImportReport
        from .detection.vendor import import_box_labels

        return import_box_labels(project, path, format=format, tag=tag, store=store,
                                 author=author)
    check_option(format, "format", "import_labels", IMPORT_FORMATS)
    require_write("import labels")
    path = Path(path)
    root = getattr(project, "root", None)
    lock = import_lock(root) if root is not None else contextlib.nullcontext()
    with lock:
        current = project.reload() if root is not None else project
        labels = read_labels(path, format=format, classes=current.classes,
                             item_ids=current.items["item_id"])
        before = current.annotations.copy()
        if "annotated_at" in before.columns:
            before["annotated_at"] = pd.to_datetime(before["annotated_at"], utc=True)
        now = pd.Timestamp.now(tz="UTC").as_unit("us")
        _check_conflicting_rows(labels, path, format)
        latest = latest_annotations(before) if len(before) else before
        times = latest["annotated_at"] if "annotated_at" in latest.columns else \
            pd.Series(pd.NaT, index=latest.index)
        state = {(i, a): (lab, t) for i, a, lab, t in zip(
            latest["item_id"], latest["annotator"], latest["label"], times, strict=True)}
        exact = set()
        if "annotated_at" in before.columns:
            exact = set(zip(before["item_id"], before["annotator"], before["label"],
                            before["annotated_at"], strict=True))
        order = labels.assign(_t=labels["annotated_at"].fillna(now)).sort_values(
            "_t", kind="stable")
        kinds, previous = {}, {}
        for idx, i, a, lab, t in zip(order.index, order["item_id"], order["annotator"],
                                     order["label"], order["annotated_at"], strict=True):
            prev, prev_t = state.get((i, a), (None, pd.NaT))
            previous[idx] = prev
            if prev == lab or (not pd.isna(t) and (i, a, lab, t) in exact):
                kinds[idx] = "duplicate"
                continue
            if prev is not None and not pd.isna(t) and not pd.isna(prev_t) and t < prev_t:
                kinds[idx] = "older"  # history only: the annotator's later label stays
                continue
            kinds[idx] = "new" if prev is None else "changed"
            state[(i, a)] = (lab, t)
        labels["kind"] = pd.array([kinds[k] for k in labels.index], dtype="str")
        labels["previous_label"] = pd.array([previous[k] for k in labels.index], dtype="str")
        added = labels[labels["kind"] != "duplicate"]
        new_rows = added[["item_id", "annotator", "label", "annotated_at"]].copy()
        new_rows["annotated_at"] = new_rows["annotated_at"].fillna(now)
        after = before
        if len(new_rows):
            old = before.copy()
            if "annotated_at" not in old.columns:
                # rows without a time are older than any import: stamp them 1970-01-01
                old["annotated_at"] = _EPOCH
            old["annotated_at"] = pd.to_datetime(old["annotated_at"], utc=True).dt.as_unit("us")
            after = pd.concat([old, new_rows], ignore_index=True)
            for col in ("item_id", "annotator", "label"):
                after[col] = after[col].astype("str")
        target = backup = None
        written = False
        if len(new_rows):
            from .project import Project

            # validate the result exactly as the loader will before touching the disk
            Project.from_frames(items=current.items, annotations=after,
                                predictions=_or_none(current.predictions),
                                classes=current.classes, default_run=current.default_run)
            if root is not None:
                target, backup = _write_annotations(Path(root), after)
                written = True
        imported = set(labels["item_id"])
        per_slice = _slice_report(current, before, after, imported)
        agree_b = _consensus(latest_annotations(before)).reindex(sorted(imported))["agree"]
        agree_a = _consensus(latest_annotations(after)).reindex(sorted(imported))["agree"]
        if root is not None:
            refreshed = project.reload()
        else:
            from .project import Project

            refreshed = Project.from_frames(items=current.items, annotations=_or_none(after),
                                            predictions=_or_none(current.predictions),
                                            classes=current.classes, name=current.name,
                                            default_run=current.default_run,
                                            info=current.info)
    queue_store = store if store is not None else TagStore.for_project(project)
    n_relabeled = _mark_relabeled(queue_store, tag, sorted(imported), path,
                                  author or current_author())
    return ImportReport(
        path=path, format=format, labels=labels,
        items_agreeing_before=int(agree_b.fillna(False).sum()),
        items_agreeing_after=int(agree_a.fillna(False).sum()), per_slice=per_slice,
        written=written, annotations_path=target, backup_path=backup,
        n_relabeled=n_relabeled, project=refreshed)


def _check_conflicting_rows(labels: pd.DataFrame, path: Path, format: str) -> None:
    """Refuse a file giving one annotator two labels for an item at the same time.

    Rows without a time count as the import's time, so two such rows conflict too.
    """
    keyed = labels[["item_id", "annotator", "label"]].assign(
        _t=labels["annotated_at"].astype("string").fillna("(no time)"))
    n = keyed.groupby(["item_id", "annotator", "_t"], sort=False)["label"].transform("nunique")
    bad = n.to_numpy() > 1
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    first = labels.iloc[rows[0]]
    offset = {"csv": 2, "jsonl": 1}.get(format)  # a header line; JSON Lines from line 1
    where = (f"lines {(rows[:6] + offset).tolist()}" if offset is not None
             else f"annotations at positions {rows[:6].tolist()}")
    raise SchemaError(f"{path.name}: annotator {first['annotator']!r} gives item "
                      f"{first['item_id']!r} different labels at the same time ({where}). "
                      "Keep one label per item, annotator and time (or give the rows their "
                      "annotated_at); nothing was imported.")


def _or_none(frame: pd.DataFrame) -> pd.DataFrame | None:
    """An empty frame as None (``Project.from_frames`` treats None as 'no such table')."""
    return None if frame is None or frame.empty else frame


def _mark_relabeled(store: TagStore, tag: str, item_ids: list[str], path: Path,
                    author: str) -> int:
    queued = set(store.items_with(tag))
    st = store.statuses(tag, item_ids)
    verified = set(st.loc[st["status"] == "verified", "item_id"])
    ids = [i for i in item_ids if (i in queued or i in set(st["item_id"])) and i not in verified]
    if not ids:
        return 0
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    return store.set_status(ids, "relabeled", queue=tag, author=author,
                            context={"import": path.name, "sha256": digest},
                            action_key=f"import:{digest}")


def _write_annotations(root: Path, frame: pd.DataFrame) -> tuple[Path, Path | None]:
    target = table_path(root, "annotations")
    backup = backup_copy(root, target, backup_stamp())
    try:
        _atomic_frame(frame, target)
    except OSError as exc:
        raise StoreError(f"Cannot write {target}: {exc}. The previous file is intact"
                         f"{f' (backup: {backup})' if backup else ''}; make the project "
                         "folder writable and retry.") from exc
    return target, backup
