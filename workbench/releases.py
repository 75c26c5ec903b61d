"""Versioned label releases: the relabel loop's verified outcomes, applied and frozen.

A release is an immutable folder ``<project>/.workbench/releases/<n>/`` holding

* ``labels.parquet``: the full label table (``item_id``, ``label``; a missing label is an
  unlabelled item), in the project's items order;
* ``changes.parquet``: the items this release changed, each with where its label came from
  (``source``: ``verified`` or ``decision``; the annotators and import files behind a verified
  consensus; the decision's author and reason);
* ``manifest.json``: number, parent, the SHA-256 of both tables' bytes, author, time,
  message, the counts changed per class and the items changed.

Release ``0`` is the dataset's own labels (:meth:`Project.reference_labels` of the items
file); the user's items file is never written. A release is written into a temporary folder
next to the releases (files and folder fsynced) and renamed to its number in one
``os.rename`` under a lock, so a release killed midway leaves only a hidden temporary
folder (removed by the next release) and every numbered folder is complete. A release whose
tables no longer match their hashes refuses to open.

The entry points are :meth:`Project.release_labels <workbench.project.Project.release_labels>`
and :meth:`Project.decide <workbench.project.Project.decide>` (thin hooks over
:func:`release_labels` and :func:`decide`), :func:`label_diff`, :func:`trace`,
:func:`export_release`, :func:`list_releases` and ``open_project(path, release=n)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import BACKUP_STAMP, backups_folder, file_lock
from ._validation import check_option
from .errors import SchemaError, WorkbenchError
from .session import require_write

__all__ = [
    "Release",
    "LabelDiff",
    "ReleaseError",
    "ACCEPT",
    "EXPORT_FORMATS",
    "release_labels",
    "preview_release",
    "decide",
    "list_releases",
    "read_release",
    "apply_release",
    "label_diff",
    "trace",
    "export_release",
    "read_release_export",
]

#: Where releases live, relative to the project folder.
RELEASES_DIR = Path(".workbench") / "releases"
LABELS_FILE = "labels.parquet"
CHANGES_FILE = "changes.parquet"
MANIFEST_FILE = "manifest.json"
#: What :func:`release_labels` applies: ``'verified'`` (the consensus of the re-imported
#: labels of verified items, and decisions), ``'relabeled'`` (also items re-imported but not
#: yet verified), ``'decided'`` (the curators' decisions only).
ACCEPT = ("verified", "relabeled", "decided")
EXPORT_FORMATS = ("parquet", "csv", "coco")
_FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"
_CHANGE_COLUMNS = ["item_id", "old_label", "new_label", "source", "annotators",
                   "import_files", "decided_by", "decision_reason"]
_MAX_LISTED = 5


class ReleaseError(WorkbenchError, RuntimeError):
    """A release cannot be written or opened (nothing to release, lost race, corrupt)."""


@dataclass(frozen=True)
class Release:
    """One written release.

    Attributes
    ----------
    number : int
        The release number (1, 2, ...).
    path : Path
        Its folder ``<project>/.workbench/releases/<number>``.
    manifest : dict
        The content of ``manifest.json``.
    changes : DataFrame
        The items it changed (``item_id``, ``old_label``, ``new_label``, ``source``,
        ``annotators``, ``import_files``, ``decided_by``, ``decision_reason``).
    """

    number: int
    path: Path
    manifest: dict
    changes: pd.DataFrame = field(repr=False)

    @property
    def sha256(self) -> str:
        """The SHA-256 of the label table's bytes."""
        return self.manifest["sha256"]

    @property
    def n_changed(self) -> int:
        """How many items this release changed."""
        return int(self.manifest["n_changed"])

    def __repr__(self) -> str:
        m = self.manifest
        return (f"Release({self.number}, parent={m['parent']}, {m['n_changed']} item(s) "
                f"changed, by {m['author']!r} at {m['created_at']}: {m['message']!r})")


@dataclass(frozen=True)
class LabelDiff:
    """The difference between the labels of two releases (see :func:`label_diff`).

    Attributes
    ----------
    a, b : int
        The releases compared (0 = the dataset's labels).
    items : DataFrame
        One row per item whose label differs: ``item_id``, ``old_label``, ``new_label``,
        ``release`` (the release in ``(min(a, b), max(a, b)]`` that last changed it),
        ``source``, ``annotators``, ``import_files``, ``decided_by``, ``decision_reason``.
    by_class : DataFrame
        ``class``, ``n_before``, ``n_after``, ``change``, ``n_left`` (items whose label moved
        away from the class), ``n_joined``; every class, in class order.
    by_slice : DataFrame
        ``column``, ``value``, ``n_items``, ``n_changed``, ``share_changed`` for each value of
        each item metadata column with at most 50 values.
    """

    a: int
    b: int
    items: pd.DataFrame
    by_class: pd.DataFrame
    by_slice: pd.DataFrame

    @property
    def n_changed(self) -> int:
        """How many items changed label."""
        return len(self.items)

    def __repr__(self) -> str:
        return f"LabelDiff({self.a} -> {self.b}: {self.n_changed} item(s) changed)"


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def _root(project, func: str) -> Path:
    root = getattr(project, "root", None)
    if root is None:
        raise ValueError(f"{func} needs a project opened from a folder (releases are kept in "
                         "<project>/.workbench/releases). Write the project with "
                         "wb.write_project(project, folder) and open it with "
                         "wb.open_project(folder).")
    if getattr(project, "task", "classification") != "classification":
        raise SchemaError(f"{func}: label releases are for classification projects; this is a "
                          f"{project.task} project.")
    return Path(root)


def _releases_dir(project, func: str) -> Path:
    return _root(project, func) / RELEASES_DIR


def _numbers(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def _isin(series: pd.Series, values) -> np.ndarray:
    """``series.isin(values)`` as a bool array, through Arrow (fast on string columns)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(series.to_numpy(dtype=object)) if series.dtype == object else \
        pa.array(series)
    lookup = pa.array([str(v) for v in values], type=pa.string())
    if arr.type != lookup.type:
        lookup = lookup.cast(arr.type)
    return pc.is_in(arr, value_set=lookup).to_numpy(zero_copy_only=False).astype(bool)


def _joined(keys, names) -> dict:
    """``{key: 'a, b'}``: the distinct names of each key, sorted, joined."""
    out: dict = {}
    for k, n in zip(keys, names, strict=True):
        out.setdefault(k, set()).add(n)
    return {k: ", ".join(sorted(v)) for k, v in out.items()}


def _listed(values) -> str:
    vals = list(values)
    shown = ", ".join(repr(v) for v in vals[:_MAX_LISTED])
    return shown + (f" and {len(vals) - _MAX_LISTED} more" if len(vals) > _MAX_LISTED else "")


def _check_release(project, release, name: str, func: str, *, allow_none: bool = True) -> int:
    """Return the release number (0 for None/0) after checking it exists."""
    if release is None and allow_none:
        return 0
    if isinstance(release, bool) or not isinstance(release, int | np.integer):
        raise TypeError(f"The {name!r} parameter of {func} must be an int (a release number, "
                        f"0 = the dataset's labels) or None. Got {release!r} instead.")
    release = int(release)
    if release == 0:
        return 0
    numbers = _numbers(_releases_dir(project, func))
    if release not in numbers:
        have = (f"the existing releases are {numbers}" if numbers else
                "the project has no release yet (write one with project.release_labels)")
        raise ValueError(f"The {name!r} parameter of {func} names release {release}, which does "
                         f"not exist: {have}; 0 or None is the dataset's own labels.")
    return release


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(f"Release folder {folder} has no {MANIFEST_FILE}; it is not a "
                           "complete release and cannot be opened. Remove the folder (it "
                           "was not written by the workbench).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"{path} is not valid JSON ({exc}); the release is damaged and "
                           "cannot be opened. Restore it from a backup.") from None
    if not isinstance(manifest, dict) or "sha256" not in manifest:
        raise ReleaseError(f"{path} has no 'sha256'; the release is damaged and cannot be "
                           "opened. Restore it from a backup.")
    return manifest


def _verified_bytes(folder: Path, file: str, expected: str, number: int) -> bytes:
    path = folder / file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReleaseError(f"Release {number} is missing {file} ({path}); it cannot be "
                           "opened. Restore the release folder from a backup.") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ReleaseError(
            f"Release {number} refuses to open: the SHA-256 of {path} is {actual}, but its "
            f"manifest records {expected}. The file was changed or damaged after the release "
            "was written; restore it from a backup (a release is never edited).")
    return data


def _read_table(data: bytes) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pandas()


def read_release(project, release: int) -> tuple[pd.DataFrame, dict]:
    """Read a release's label table after checking its hash.

    Parameters
    ----------
    project : Project
    release : int
        The release number (at least 1).

    Returns
    -------
    labels : DataFrame
        ``item_id``, ``label`` (``str`` dtype, NA = unlabelled).
    manifest : dict

    Raises
    ------
    ValueError
        The release does not exist (the message lists those that do).
    ReleaseError
        The release is damaged: its label table does not match the manifest's hash.
    """
    number = _check_release(project, release, "release", "read_release", allow_none=False)
    if number == 0:
        return _original_labels(project), {"number": 0}
    folder = _releases_dir(project, "read_release") / str(number)
    manifest = _read_manifest(folder)
    data = _verified_bytes(folder, manifest.get("labels_file", LABELS_FILE), manifest["sha256"],
                           number)
    labels = _read_table(data)
    labels["item_id"] = labels["item_id"].astype("str")
    labels["label"] = labels["label"].astype("str")
    return labels, manifest


def _release_changes(project, number: int, manifest: dict | None = None) -> pd.DataFrame:
    folder = _releases_dir(project, "release changes") / str(number)
    manifest = manifest if manifest is not None else _read_manifest(folder)
    data = _verified_bytes(folder, CHANGES_FILE, manifest["changes_sha256"], number)
    return _read_table(data)


def _original_labels(project) -> pd.DataFrame:
    """The dataset's own labels (release 0), also for a project opened at a release."""
    ref = getattr(project, "_original_labels", None)
    if ref is None:
        ref = project.reference_labels()
    return pd.DataFrame({"item_id": ref.index.astype("str").array,  # no str per row
                         "label": ref.astype("str").array})


def _labels_of(project, release: int) -> pd.DataFrame:
    return _original_labels(project) if release == 0 else read_release(project, release)[0]


def list_releases(project) -> pd.DataFrame:
    """The project's releases, oldest first (hashes are checked when a release is opened).

    Parameters
    ----------
    project : Project

    Returns
    -------
    DataFrame
        ``release``, ``parent``, ``created_at`` (UTC), ``author``, ``message``,
        ``n_changed``, ``changed_per_class`` (dict: class -> net change), ``sha256``.
    """
    folder = _releases_dir(project, "list_releases")
    rows = []
    for n in _numbers(folder):
        m = _read_manifest(folder / str(n))
        rows.append({"release": n, "parent": m.get("parent"),
                     "created_at": pd.Timestamp(m.get("created_at")),
                     "author": m.get("author"), "message": m.get("message"),
                     "n_changed": m.get("n_changed"),
                     "changed_per_class": {c: v["net"] for c, v in
                                           m.get("counts_changed", {}).items()},
                     "sha256": m.get("sha256")})
    cols = ["release", "parent", "created_at", "author", "message", "n_changed",
            "changed_per_class", "sha256"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


# --------------------------------------------------------------------------------------
# decisions
# --------------------------------------------------------------------------------------


def _store(project, store=None):
    if store is not None:
        return store
    from .tags import TagStore

    return TagStore.for_project(project)


def decide(project, item_id: str, label: str, *, author: str, reason: str | None = None,
           store=None) -> int:
    """Record a curator's decision on an item's label (it overrides verified consensus).

    Parameters
    ----------
    project : Project
    item_id : str
        An item of the project.
    label : str
        One of ``project.classes``.
    author : str
        Who decides.
    reason : str, optional
        Why (shown by :func:`trace` and kept in the release's changes).
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Returns
    -------
    int
        What the store's ``decisions.add`` returns (the decisions written).

    Raises
    ------
    SchemaError
        Unknown item or a label that is not a project class; nothing is written.
    ReadOnlyError
        In a read-only session.
    """
    func = "Project.decide"
    if getattr(project, "task", "classification") != "classification":
        raise SchemaError(f"{func}: label decisions are for classification projects; this is "
                          f"a {project.task} project.")
    require_write("decide labels")
    item_id, label = str(item_id), str(label)
    if not project.items["item_id"].eq(item_id).any():
        raise SchemaError(f"{func}: item {item_id!r} is not in the project "
                          f"{project.name!r}. Check the id (ids are strings).")
    if label not in project.classes:
        import difflib

        close = difflib.get_close_matches(label, project.classes, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SchemaError(f"{func}: label {label!r} is not a class of the project "
                          f"{_listed(project.classes)}.{hint} Use one of the project's "
                          "classes (workbench.toml 'classes').")
    if not isinstance(author, str) or not author.strip():
        raise ValueError(f"The 'author' parameter of {func} must be a non-empty str. Got "
                         f"{author!r} instead.")
    return _store(project, store).decisions.add([item_id], [label], author=author,
                                                reason=reason)


def _decisions(store) -> pd.DataFrame:
    """The latest decision per item (``store.decisions.frame()``)."""
    return store.decisions.frame()


# --------------------------------------------------------------------------------------
# what a release applies
# --------------------------------------------------------------------------------------


def _accepted(store, tag: str, accept: str) -> pd.DataFrame:
    """Items whose queue status is accepted: ``item_id``, ``queued_at``, ``status_at``."""
    from .relabel import queue_statuses

    out_cols = ["item_id", "queued_at", "status_at"]
    if accept == "decided":
        return pd.DataFrame(columns=out_cols)
    st = store.statuses(tag)
    wanted = ("verified",) if accept == "verified" else ("relabeled", "verified")
    st = st[st["status"].isin(wanted)]
    if st.empty:
        return pd.DataFrame(columns=out_cols)
    tags = store.tags(st["item_id"].tolist(), tag=tag)
    tagged = tags.groupby("item_id")["tagged_at"].max()
    tagged_at = tagged.reindex(st["item_id"].to_numpy()).to_numpy()
    status = queue_statuses(st["status"].to_numpy(), tagged_at, st["updated_at"].to_numpy())
    st = st[np.isin(status, wanted)]
    if st.empty:
        return pd.DataFrame(columns=out_cols)
    # queued: the latest time the tag was added before the status (the current round)
    hist = store.history(tag=tag)
    hist = hist[(hist["action"] == "add").to_numpy() & _isin(hist["item_id"], st["item_id"])]
    hist = hist.merge(st[["item_id", "updated_at"]], on="item_id")
    hist = hist[hist["created_at"] <= hist["updated_at"]]
    queued = hist.groupby("item_id")["created_at"].max()
    frame = pd.DataFrame({"item_id": st["item_id"].to_numpy(),
                          "queued_at": queued.reindex(st["item_id"].to_numpy()).to_numpy(),
                          "status_at": st["updated_at"].to_numpy()})
    frame["queued_at"] = pd.to_datetime(frame["queued_at"], utc=True)
    frame["status_at"] = pd.to_datetime(frame["status_at"], utc=True)
    return frame


def _import_files(store, tag: str, accepted: pd.DataFrame) -> pd.Series:
    """Per accepted item: the import files (status-event context) of its current round."""
    if accepted.empty:
        return pd.Series(dtype="str")
    hist = store.status_history(queue=tag)
    hist = hist[(hist["status"] == "relabeled").to_numpy()
                & _isin(hist["item_id"], accepted["item_id"])]
    hist = hist.merge(accepted[["item_id", "queued_at"]], on="item_id")
    keep = hist["queued_at"].isna() | (hist["created_at"] >= hist["queued_at"])
    hist = hist[keep]
    files: dict = {}
    for item, ctx in zip(hist["item_id"], hist["context"], strict=True):
        name = ctx.get("import") if isinstance(ctx, dict) else None
        if name:
            files.setdefault(item, {})[name] = None
    return pd.Series({k: ", ".join(v) for k, v in files.items()}, dtype="str")


_BACKUP_PREFIX = "annotations-"
_EPOCH_US = 0


def _backups(root) -> list[tuple[pd.Timestamp, Path]]:
    """The annotation files saved by each import before it wrote (oldest first).

    :func:`workbench.import_labels` copies the annotations file to
    ``.workbench/backups/annotations-<UTC time>.<ext>`` before appending to it, so the
    backup taken by an import is the annotations as they were just before it.
    """
    import datetime as dt

    if root is None:
        return []
    folder = backups_folder(root)
    out = []
    for path in folder.glob(_BACKUP_PREFIX + "*"):
        if path.suffix not in (".csv", ".parquet"):
            continue
        try:
            when = dt.datetime.strptime(path.stem[len(_BACKUP_PREFIX):], BACKUP_STAMP)
        except ValueError:
            continue
        out.append((pd.Timestamp(when, tz="UTC"), path))
    return sorted(out)


def _row_keys(frame: pd.DataFrame) -> pd.MultiIndex:
    """(item, annotator, label, time in us; a missing time counts as 1970) of each row."""
    if "annotated_at" in frame.columns:
        at = pd.to_datetime(frame["annotated_at"], utc=True, format="mixed")
        us = at.dt.as_unit("us").astype("int64").where(at.notna(), _EPOCH_US)
    else:
        us = pd.Series(_EPOCH_US, index=frame.index)
    return pd.MultiIndex.from_arrays([frame["item_id"].astype(str).to_numpy(),
                                      frame["annotator"].astype(str).to_numpy(),
                                      frame["label"].astype(str).to_numpy(),
                                      np.asarray(us, dtype="int64")])


def _read_backup(path: Path, item_ids) -> pd.DataFrame | None:
    """The rows of ``item_ids`` in a backup of the annotations (None if unreadable)."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception:  # noqa: BLE001 - a damaged backup only loses the fallback
        return None
    frame.columns = [str(c).strip() for c in frame.columns]
    if not {"item_id", "annotator", "label"} <= set(frame.columns):
        return None
    return frame[_isin(frame["item_id"].astype(str), item_ids)]


def _added_since(project, rows: pd.DataFrame, since: pd.Timestamp) -> np.ndarray | None:
    """Which ``rows`` (annotations) were added by imports at or after ``since``.

    Read from the backup the first import at or after ``since`` took; None without one.
    """
    backup = next((p for t, p in _backups(getattr(project, "root", None)) if t >= since),
                  None)
    if backup is None:
        return None
    before = _read_backup(backup, pd.unique(rows["item_id"]))
    if before is None:
        return None
    return ~_row_keys(rows).isin(_row_keys(before))


def _reimported(project, accepted: pd.DataFrame) -> pd.DataFrame:
    """The annotations imported for each accepted item after it was queued.

    A row counts when its ``annotated_at`` is at or after the item's queue time (an import
    without times stamps the import time), or, for an item without such a row (a vendor's
    own times, earlier than the tag), when it is missing from the annotations the first
    import after the queue time backed up.
    """
    cols = ["item_id", "annotator", "label", "annotated_at"]
    ann = project.annotations
    if accepted.empty or ann.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    if "annotated_at" not in ann.columns:
        ann = ann.assign(annotated_at=pd.NaT)
    rows = ann[_isin(ann["item_id"], accepted["item_id"])][cols]
    rows = rows.merge(accepted[["item_id", "queued_at"]], on="item_id")
    at = pd.to_datetime(rows["annotated_at"], utc=True)
    # an item never queued (marked without its tag) has no re-imported labels: its
    # annotations are not evidence of a relabelling, and the item stays unresolved
    timed = (rows["queued_at"].notna() & (at >= rows["queued_at"])).to_numpy()
    keep = timed.copy()
    have = set(rows["item_id"].to_numpy()[timed])
    lacking = accepted[~accepted["item_id"].isin(have) & accepted["queued_at"].notna()]
    for since, group in lacking.groupby("queued_at"):
        mine = _isin(rows["item_id"], group["item_id"])
        added = _added_since(project, rows[mine], since)
        if added is not None:
            keep[np.flatnonzero(mine)[added]] = True
    return rows[keep][cols]


def _reimported_consensus(project, accepted: pd.DataFrame) -> pd.DataFrame:
    """The majority of the labels imported after each accepted item was queued.

    Returns ``item_id``, ``label`` (NA on a tie or without labels), ``annotators``.
    """
    from ._validation import latest_annotations

    cols = ["item_id", "label", "annotators"]
    rows = _reimported(project, accepted)
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    rows = latest_annotations(rows)
    counts = rows.groupby(["item_id", "label"], observed=True).size().rename("n").reset_index()
    counts = counts.sort_values(["item_id", "n"], ascending=[True, False], kind="stable")
    best = counts.groupby("item_id", sort=False)["n"].transform("max")
    top = counts[counts["n"] == best]
    n_top = top.groupby("item_id", sort=False)["label"].transform("size")
    first = top.drop_duplicates("item_id")
    label = np.where(n_top.loc[first.index].to_numpy() > 1, None, first["label"].to_numpy())
    who = pd.Series(_joined(rows["item_id"], rows["annotator"]), dtype="str")
    return pd.DataFrame({"item_id": first["item_id"].to_numpy(),
                         "label": pd.array(label, dtype="str"),
                         "annotators": pd.array(who.reindex(first["item_id"]).to_numpy(),
                                                dtype="str")})


def _outcomes(project, store, tag: str, accept: str) -> tuple[pd.DataFrame, list[str], int]:
    """The label each accepted or decided item gets, with where it came from.

    Returns the outcomes (``item_id``, ``new_label``, ``source``, ``annotators``,
    ``import_files``, ``decided_by``, ``decision_reason``), the accepted items left unresolved
    (no re-imported label, or a tie, and no decision), and the number of items considered.
    """
    accepted = _accepted(store, tag, accept)
    cons = _reimported_consensus(project, accepted)
    files = _import_files(store, tag, accepted)
    verified = cons.dropna(subset=["label"])
    out = pd.DataFrame({
        "item_id": verified["item_id"].to_numpy(),
        "new_label": verified["label"].to_numpy(),
        "source": "verified" if accept != "relabeled" else "relabeled",
        "annotators": verified["annotators"].to_numpy(),
        "import_files": files.reindex(verified["item_id"].to_numpy()).to_numpy(),
        "decided_by": None, "decision_reason": None})
    dec = _decisions(store)
    if len(dec):
        dec = dec[_isin(dec["item_id"], project.items["item_id"])]
    if len(dec):
        dec_rows = pd.DataFrame({
            "item_id": dec["item_id"].to_numpy(), "new_label": dec["label"].to_numpy(),
            "source": "decision",
            "annotators": pd.Series(out.set_index("item_id")["annotators"]).reindex(
                dec["item_id"].to_numpy()).to_numpy(),
            "import_files": files.reindex(dec["item_id"].to_numpy()).to_numpy(),
            "decided_by": dec["author"].to_numpy(), "decision_reason": dec["reason"].to_numpy()})
        out = pd.concat([out[~out["item_id"].isin(dec["item_id"])], dec_rows],
                        ignore_index=True)
    resolved = set(out["item_id"])
    unresolved = sorted(set(accepted["item_id"]) - resolved)
    considered = len(resolved) + len(unresolved)
    for col in _CHANGE_COLUMNS[1:]:
        if col in out.columns:
            out[col] = pd.array(out[col].to_numpy(dtype=object), dtype="str")
    return out, unresolved, considered


# --------------------------------------------------------------------------------------
# writing a release
# --------------------------------------------------------------------------------------


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean_stale(folder: Path) -> None:
    """Remove temporary folders left by releases whose process is gone (killed midway)."""
    for path in folder.glob(_TMP_PREFIX + "*"):
        try:
            pid = int(path.name[len(_TMP_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running: another release in progress
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            continue


def _class_counts(before: np.ndarray, after: np.ndarray, classes: list[str]) -> dict:
    """Per class: items that left it, joined it, and the net change."""
    out = {}
    left = pd.Series(before).value_counts()
    joined = pd.Series(after).value_counts()
    for c in classes:
        n_left, n_joined = int(left.get(c, 0)), int(joined.get(c, 0))
        if n_left or n_joined:
            out[c] = {"left": n_left, "joined": n_joined, "net": n_joined - n_left}
    return out


def release_labels(project, message: str, *, author: str, accept: str = "verified",
                   tag: str = "relabel", store=None) -> Release:
    """Apply the relabel loop's outcomes to the labels and write an immutable release.

    Starting from the latest release's labels (the dataset's own labels before the first
    release), every item whose queue status is accepted takes the majority of the labels
    imported for it after it was queued (:func:`workbench.import_labels` appends them to the
    annotations with their ``annotated_at``), and every item with a curator's decision
    (:func:`decide`) takes the latest decision, which overrides the consensus. Accepted
    items with no re-imported label, or a tie, and no decision are left unchanged and
    listed as ``unresolved`` in the manifest (with a warning).

    Parameters
    ----------
    project : Project
        A classification project opened from a folder. Pass the project returned by the
        import (``report.project``) or reopen it, so its annotations hold the imports.
    message : str
        What this release is (non-empty), like a commit message.
    author : str
        Who releases.
    accept : {'verified', 'relabeled', 'decided'}, default='verified'
        ``'verified'``: items in status ``verified``; ``'relabeled'``: also items re-imported
        but not verified; ``'decided'``: only the curators' decisions.
    tag : str, default='relabel'
        The relabel queue (its tag).
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Returns
    -------
    Release

    Raises
    ------
    ReleaseError
        Nothing verified or decided, nothing changed since the latest release, or another
        curator's release was written meanwhile (the message names it). Nothing is written.
    ReadOnlyError
        In a read-only session.
    """
    func = "release_labels"
    check_option(accept, "accept", func, ACCEPT)
    if not isinstance(message, str) or not message.strip():
        raise ValueError(f"The 'message' parameter of {func} must be a non-empty str saying "
                         f"what the release is. Got {message!r} instead.")
    if not isinstance(author, str) or not author.strip():
        raise ValueError(f"The 'author' parameter of {func} must be a non-empty str. Got "
                         f"{author!r} instead.")
    folder = _releases_dir(project, func)
    require_write("release labels")
    store = _store(project, store)
    numbers = _numbers(folder)
    parent = numbers[-1] if numbers else 0

    outcomes, unresolved, considered = _outcomes(project, store, tag, accept)
    what = {"verified": "verified in", "relabeled": "relabeled or verified in",
            "decided": "decided in"}[accept]
    if considered == 0:
        nothing = ("no label was decided" if accept == "decided" else
                   f"no item is {what} the {tag!r} queue and no label was decided")
        raise ReleaseError(
            f"Nothing to release: {nothing}. Verify re-imported items "
            "(RelabelQueue.mark(ids, 'verified')) or decide labels "
            "(project.decide(item_id, label, author=...)); nothing was written.")

    # the new label table: the current items, labels from the parent release
    ids = project.items["item_id"].to_numpy()
    base = _labels_of(project, parent)
    if len(base) == len(ids) and np.array_equal(base["item_id"].to_numpy(), ids):
        labels = base["label"].to_numpy(dtype=object, na_value=None).copy()
    else:
        orig = _original_labels(project).set_index("item_id")["label"]
        prev = base.set_index("item_id")["label"]
        labels = prev.reindex(ids).to_numpy(dtype=object, na_value=None)
        new = ~pd.Index(ids).isin(prev.index)
        labels[new] = orig.reindex(ids[new]).to_numpy(dtype=object, na_value=None)
    pos = pd.Index(ids).get_indexer(outcomes["item_id"].to_numpy())
    old = labels[pos]
    new_labels = outcomes["new_label"].to_numpy(dtype=object)
    differs = np.array([o != n for o, n in zip(old, new_labels, strict=True)], dtype=bool)
    changes = outcomes[differs].copy()
    changes.insert(1, "old_label", pd.array(old[differs], dtype="str"))
    changes = changes[_CHANGE_COLUMNS].sort_values("item_id", ignore_index=True)
    if unresolved:
        import warnings

        warnings.warn(f"{len(unresolved)} item(s) {what} the {tag!r} queue have no label "
                      f"imported after they were queued, or a tie, and no decision: "
                      f"{_listed(unresolved)}. They keep their label; decide them "
                      "(project.decide) or re-import, and pass the project returned by "
                      "import_labels (report.project).", stacklevel=2)
    if changes.empty:
        held = (f" ({len(unresolved)} of them unresolved: no label imported after they were "
                f"queued, or a tie)" if unresolved else "")
        raise ReleaseError(
            f"Nothing to release: the {considered} item(s) {what} the {tag!r} queue or "
            f"decided{held} already carry their labels in "
            f"{'release ' + str(parent) if parent else 'the dataset'}; nothing was written.")
    labels[pos[differs]] = new_labels[differs]

    table = pd.DataFrame({"item_id": pd.array(ids, dtype="str"),
                          "label": pd.array(labels, dtype="str")})
    label_bytes = _parquet_bytes(table)
    change_bytes = _parquet_bytes(changes)
    now = pd.Timestamp.now(tz="UTC")
    classes = list(project.classes)
    manifest = {
        "format_version": _FORMAT_VERSION, "number": None, "parent": parent,
        "sha256": hashlib.sha256(label_bytes).hexdigest(), "labels_file": LABELS_FILE,
        "changes_sha256": hashlib.sha256(change_bytes).hexdigest(),
        "author": author, "created_at": now.isoformat(), "message": message,
        "accept": accept, "queue": tag, "n_items": int(len(ids)),
        "n_changed": int(len(changes)),
        "counts_changed": _class_counts(changes["old_label"].dropna().to_numpy(),
                                        changes["new_label"].to_numpy(), classes),
        "items_changed": changes["item_id"].tolist(),
        "sources": {k: int(v) for k, v in changes["source"].value_counts().items()},
        "unresolved": unresolved,
    }
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        _fsync_dir(folder.parent)
    _clean_stale(folder)
    tmp = folder / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _write_synced(tmp / LABELS_FILE, label_bytes)
        _write_synced(tmp / CHANGES_FILE, change_bytes)
        with file_lock(folder / ".lock"):  # the kernel drops it if the process dies
            latest = _numbers(folder)
            latest = latest[-1] if latest else 0
            if latest != parent:
                raise ReleaseError(_lost_race(folder, latest, parent))
            number = parent + 1
            manifest["number"] = number
            _write_synced(tmp / MANIFEST_FILE,
                          json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8"))
            _fsync_dir(tmp)
            try:
                os.rename(tmp, folder / str(number))
            except OSError:
                raise ReleaseError(_lost_race(folder, number, parent)) from None
            _fsync_dir(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Release(number=number, path=folder / str(number), manifest=manifest, changes=changes)


def preview_release(project, *, accept: str = "verified", tag: str = "relabel",
                    store=None) -> pd.DataFrame:
    """What :func:`release_labels` would change now: a dry run that writes nothing.

    Parameters
    ----------
    project : Project
        A classification project opened from a folder.
    accept : {'verified', 'relabeled', 'decided'}, default='verified'
        As :func:`release_labels`.
    tag : str, default='relabel'
        The relabel queue (its tag).
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Returns
    -------
    DataFrame
        The changes the release would record (the columns of :attr:`Release.changes`:
        ``item_id``, ``old_label``, ``new_label``, ``source``, ...), sorted by ``item_id``;
        empty when there is nothing to release. ``attrs``: ``parent`` (the release it would
        build on), ``considered`` (items verified or decided), ``unresolved`` (accepted items
        left unchanged: no re-imported label or a tie, and no decision).
    """
    func = "preview_release"
    check_option(accept, "accept", func, ACCEPT)
    folder = _releases_dir(project, func)
    numbers = _numbers(folder)
    parent = numbers[-1] if numbers else 0
    outcomes, unresolved, considered = _outcomes(project, _store(project, store), tag, accept)
    old = _labels_at(project, parent, outcomes["item_id"].astype(str).to_numpy(dtype=object))
    new_labels = outcomes["new_label"].to_numpy(dtype=object)
    differs = np.array([o != n for o, n in zip(old, new_labels, strict=True)], dtype=bool)
    changes = outcomes[differs].copy()
    changes.insert(1, "old_label", pd.array(old[differs], dtype="str"))
    changes = changes[_CHANGE_COLUMNS].sort_values("item_id", ignore_index=True)
    changes.attrs.update(parent=parent, considered=considered, unresolved=unresolved)
    return changes


def _labels_at(project, release: int, ids: np.ndarray) -> np.ndarray:
    """The labels of the items ``ids`` in ``release`` (an item added since: its own label).

    Only these items are looked up (:func:`workbench._ids.locate_ids`): a preview of a
    few verified items does not index every label of a 10M-item project.
    """
    from ._ids import locate_ids

    old = np.full(len(ids), None, dtype=object)
    if not len(ids):
        return old
    todo = np.arange(len(ids))
    for labels in (_labels_of(project, release), _original_labels(project)):
        pos = locate_ids(labels["item_id"], ids[todo])
        found = pos >= 0
        old[todo[found]] = labels["label"].iloc[pos[found]].to_numpy(dtype=object,
                                                                     na_value=None)
        todo = todo[~found]
        if not len(todo) or release == 0:
            break
    return old


def _lost_race(folder: Path, winner: int, parent: int) -> str:
    try:
        m = _read_manifest(folder / str(winner))
        who = f" by {m.get('author')!r} at {m.get('created_at')} ({m.get('message')!r})"
    except ReleaseError:
        who = ""
    return (f"Release {winner} was written{who} while this release (on top of "
            f"{'release ' + str(parent) if parent else 'the dataset'}) was being prepared: "
            f"release {winner} won and nothing was written. Look at it "
            f"(wb.label_diff(project, {parent}, {winner})) and release again if still needed.")


# --------------------------------------------------------------------------------------
# opening at a release
# --------------------------------------------------------------------------------------


def apply_release(project, release: int):
    """Set a project's item labels to those of a release (its hash checked first).

    Used by ``open_project(path, release=n)``. Items added to the items file after the
    release keep their own label. ``project.release`` is set to ``n``.

    Parameters
    ----------
    project : Project
        Freshly opened (it is changed in place).
    release : int
        The release number; 0 leaves the dataset's labels.

    Returns
    -------
    Project
    """
    number = _check_release(project, release, "release", "open_project", allow_none=False)
    if number == 0:
        project.release = 0
        return project
    labels, _ = read_release(project, number)
    original = project.reference_labels()
    ids = project.items["item_id"]
    if len(labels) == len(ids) and np.array_equal(labels["item_id"].to_numpy(), ids.to_numpy()):
        values = labels["label"].to_numpy(dtype=object, na_value=None)
    else:
        values = labels.set_index("item_id")["label"].reindex(ids).to_numpy(
            dtype=object, na_value=None)
        missing = ~ids.isin(labels["item_id"]).to_numpy()
        values[missing] = original.reindex(ids[missing]).to_numpy(dtype=object, na_value=None)
    project.items["label"] = pd.array(values, dtype="str")
    project._original_labels = original
    project._reference = None
    project.release = number
    return project


# --------------------------------------------------------------------------------------
# diff and trace
# --------------------------------------------------------------------------------------


def label_diff(project, a: int | None, b: int | None) -> LabelDiff:
    """Compare the labels of two releases, per item, per class and per slice.

    Parameters
    ----------
    project : Project
    a, b : int or None
        Release numbers; 0 or None is the dataset's own labels.

    Returns
    -------
    LabelDiff
        ``items`` (every item whose label differs, with the release that changed it and
        where the label came from: annotators, import files, decision), ``by_class`` and
        ``by_slice``, over the items both releases hold (an item added after a release is
        not a label change; ``label_diff(p, a, b)`` and ``label_diff(p, b, a)`` compare the
        same items). ``by_class`` lists the project's classes, then any label of either
        release that is no class any more (renamed). :func:`trace` tells the whole story of
        one item.

    Raises
    ------
    ValueError
        An unknown release (the message lists those that exist).
    ReleaseError
        A release whose tables do not match their hashes.

    Examples
    --------
    >>> diff = wb.label_diff(project, 0, 1)  # doctest: +SKIP
    >>> diff.by_class  # doctest: +SKIP
    """
    func = "label_diff"
    a = _check_release(project, a, "a", func)
    b = _check_release(project, b, "b", func)
    import pyarrow as pa
    import pyarrow.compute as pc

    ids, new = _label_arrays(project, b)
    left_ids, old = _label_arrays(project, a)
    if not left_ids.equals(ids):  # items added or removed between the two: align on ids
        # the items both hold: an item added after a release is no label change, and
        # diff(a, b) and diff(b, a) compare the same items
        both = pc.is_in(ids, value_set=left_ids)
        ids, new = ids.filter(both), new.filter(both)
        old = old.take(pc.index_in(ids, value_set=left_ids))
    changed_arr = pc.or_(pc.fill_null(pc.not_equal(old, new), False),
                         pc.xor(pc.is_null(old), pc.is_null(new)))
    changed = changed_arr.to_numpy(zero_copy_only=False).astype(bool)
    where = pa.array(np.flatnonzero(changed))
    items = pd.DataFrame({
        "item_id": pd.array(ids.take(where).to_pylist(), dtype="str"),
        "old_label": pd.array(old.take(where).to_pylist(), dtype="str"),
        "new_label": pd.array(new.take(where).to_pylist(), dtype="str")})
    items = items.merge(_provenance(project, min(a, b), max(a, b)), on="item_id", how="left")
    items["release"] = items["release"].astype("Int64")
    items = items[["item_id", "old_label", "new_label", "release"] + _CHANGE_COLUMNS[3:]]

    classes = list(project.classes)  # then labels of a release no class has now (renamed)
    classes += sorted((set(_counts(old)) | set(_counts(new))) - set(classes))
    by_class = pd.DataFrame({"class": pd.array(classes, dtype="str")})
    for name, values in (("n_before", old), ("n_after", new),
                         ("n_left", old.filter(changed_arr)),
                         ("n_joined", new.filter(changed_arr))):
        counts = _counts(values)
        by_class[name] = [counts.get(c, 0) for c in classes]
    by_class["change"] = by_class["n_after"] - by_class["n_before"]
    by_class = by_class[["class", "n_before", "n_after", "change", "n_left", "n_joined"]]
    return LabelDiff(a=a, b=b, items=items, by_class=by_class,
                     by_slice=_by_slice(project, ids, changed))


def _counts(values) -> dict:
    import pyarrow.compute as pc

    vc = pc.value_counts(values)
    return {k: int(n) for k, n in zip(vc.field("values").to_pylist(),
                                        vc.field("counts").to_pylist(), strict=True)
            if k is not None}


def _arrow_strings(values):
    """A pandas/numpy column of strings (missing = null) as a pyarrow ``string`` array."""
    import pyarrow as pa

    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else \
        pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    return arr


def _label_arrays(project, release: int):
    """``(item_ids, labels)`` of a release as pyarrow string arrays (hash checked)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if release == 0:
        ref = getattr(project, "_original_labels", None)
        if ref is None:
            ref = project.reference_labels()
        return _arrow_strings(ref.index.to_series()), _arrow_strings(ref)
    folder = _releases_dir(project, "label_diff") / str(release)
    manifest = _read_manifest(folder)
    data = _verified_bytes(folder, manifest.get("labels_file", LABELS_FILE),
                           manifest["sha256"], release)
    table = pq.read_table(pa.BufferReader(data))
    return (_arrow_strings(table.column("item_id")), _arrow_strings(table.column("label")))


def _by_slice(project, ids, changed: np.ndarray) -> pd.DataFrame:
    import pyarrow.compute as pc

    rows = []
    meta = project.items
    own = _arrow_strings(meta["item_id"])
    positions = None
    if not own.equals(ids):
        positions = pc.index_in(ids, value_set=own)
    for col in project.metadata_columns:
        values = meta[col]
        if values.dtype.kind in "fiub":
            if values.nunique() > 50:
                continue
            values = values.astype(object).where(values.notna(), None).map(
                lambda v: None if v is None else str(v))
        try:
            arr = _arrow_strings(values)
        except Exception:  # noqa: BLE001 - mixed objects: compare their text
            arr = _arrow_strings(values.map(lambda v: None if pd.isna(v) else str(v)))
        if positions is not None:
            arr = arr.take(positions)
        enc = arr.dictionary_encode()
        if len(enc.dictionary) > 50 or len(enc.dictionary) == 0:
            continue
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
        valid = codes >= 0
        n = len(enc.dictionary)
        n_items = np.bincount(codes[valid], minlength=n)
        n_changed = np.bincount(codes[valid & changed], minlength=n)
        names = enc.dictionary.to_pylist()
        for k in sorted(range(n), key=lambda k: names[k]):
            rows.append({"column": col, "value": names[k], "n_items": int(n_items[k]),
                         "n_changed": int(n_changed[k])})
    frame = pd.DataFrame(rows, columns=["column", "value", "n_items", "n_changed"])
    frame["share_changed"] = frame["n_changed"] / frame["n_items"].where(frame["n_items"] > 0)
    frame["column"] = frame["column"].astype("str")
    frame["value"] = frame["value"].astype("str")
    return frame


def _provenance(project, low: int, high: int) -> pd.DataFrame:
    """The latest change of each item among releases ``low + 1 .. high``."""
    parts = []
    for n in range(low + 1, high + 1):
        ch = _release_changes(project, n)
        parts.append(ch.assign(release=n))
    cols = ["item_id", "release"] + _CHANGE_COLUMNS[3:]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols}).astype(
            {"release": "Int64"})
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.drop_duplicates("item_id", keep="last")
    return frame[cols]


def _import_of_rows(project, ann: pd.DataFrame) -> list | None:
    """Per annotation row of one item: when the import that added it ran (from the backups).

    None without backups; a row present before the first import gets None.
    """
    backups = _backups(getattr(project, "root", None))
    if not backups or ann.empty:
        return None
    keys = _row_keys(ann)
    added: list = [None] * len(ann)
    ids = pd.unique(ann["item_id"])
    for when, path in backups:  # a row is missing from the backups older than its import
        before = _read_backup(path, ids)
        if before is None:
            return None
        missing = ~keys.isin(_row_keys(before))
        for k in np.flatnonzero(missing):
            added[k] = when
    return added


def _why(reason) -> str:
    return f": {reason}" if isinstance(reason, str) and reason else ""


def trace(project, item_id: str, *, tag: str | None = None, store=None) -> pd.DataFrame:
    """The whole story of one item, oldest first.

    Tag events (``store.history``), relabel-queue statuses (with the import file of each
    ``relabeled``), every annotation (annotator, ``annotated_at``, and the import file: the
    first import recorded at or after the annotation's time), curators' decisions, and the
    releases that changed the item's label.

    Parameters
    ----------
    project : Project
    item_id : str
    tag : str, optional
        Only this tag's events and queue (default: every tag and queue).
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Returns
    -------
    DataFrame
        ``time`` (UTC; NaT for annotations without a time, listed first), ``event``
        (``tag added``, ``tag removed``, ``status``, ``annotation``, ``decision``,
        ``release``), ``label``, ``author`` (annotator for an annotation), ``detail``,
        ``source`` (import file, tag or queue, release number).
    """
    item_id = str(item_id)
    if not project.items["item_id"].eq(item_id).any():
        raise SchemaError(f"trace: item {item_id!r} is not in the project {project.name!r}. "
                          "Check the id (ids are strings).")
    store = _store(project, store)
    rows: list[dict[str, Any]] = []
    for ev in store.history(item_id, tag).itertuples(index=False):
        box = f" on box {ev.box_id}" if isinstance(ev.box_id, str) and ev.box_id else ""
        rows.append({"time": ev.created_at, "event": f"tag {ev.action}ed".replace("removeed",
                                                                                "removed"),
                     "label": None, "author": ev.author,
                     "detail": f"{ev.tag}{box}" + _why(ev.reason),
                     "source": ev.tag})
    statuses = store.status_history(item_id, tag)
    imports = []
    for ev in statuses.itertuples(index=False):
        ctx = ev.context if isinstance(ev.context, dict) else {}
        if ctx.get("import"):
            imports.append((ev.created_at, ctx["import"]))
        rows.append({"time": ev.created_at, "event": "status", "label": None,
                     "author": ev.author,
                     "detail": ev.status + _why(ev.reason),
                     "source": ctx.get("import") or ev.queue})
    ann = project.annotations
    ann = ann[ann["item_id"] == item_id]
    times = (pd.to_datetime(ann["annotated_at"], utc=True) if "annotated_at" in ann.columns
             else pd.Series(pd.NaT, index=ann.index, dtype="datetime64[us, UTC]"))
    imports.sort()
    added_by = _import_of_rows(project, ann)
    first_tag = min((r["time"] for r in rows if r["event"] == "tag added"), default=None)
    for k, ((_, row), when) in enumerate(zip(ann.iterrows(), times, strict=True)):
        detail, source = "label by annotator", None
        if added_by is not None:
            if added_by[k] is not None:  # the import that added the row, from the backups
                source = next((name for t, name in imports if t >= added_by[k]), None)
                detail = f"label by annotator, imported at {added_by[k].isoformat()}"
        elif pd.notna(when) and first_tag is not None and when >= first_tag:
            source = next((name for t, name in imports if t >= when), None)
        rows.append({"time": when, "event": "annotation", "label": row["label"],
                     "author": row["annotator"], "detail": detail, "source": source})
    for ev in store.decisions.history(item_id).itertuples(index=False):
        rows.append({"time": pd.Timestamp(ev.decided_at), "event": "decision",
                     "label": ev.label, "author": ev.author,
                     "detail": _why(ev.reason)[2:], "source": None})
    if getattr(project, "root", None) is not None:
        folder = Path(project.root) / RELEASES_DIR
        for n in _numbers(folder):
            m = _read_manifest(folder / str(n))
            if item_id not in set(m.get("items_changed", ())):
                continue
            ch = _release_changes(project, n, m)
            ch = ch[ch["item_id"] == item_id].iloc[0]
            rows.append({"time": pd.Timestamp(m["created_at"]), "event": "release",
                         "label": ch["new_label"], "author": m["author"],
                         "detail": f"{ch['old_label']} -> {ch['new_label']} ({ch['source']}): "
                                   f"{m['message']}", "source": f"release {n}"})
    frame = pd.DataFrame(rows, columns=["time", "event", "label", "author", "detail", "source"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    order = {"tag added": 0, "status": 1, "annotation": 2, "decision": 3, "tag removed": 4,
             "release": 5}
    frame["_o"] = frame["event"].map(order).fillna(9)
    frame = frame.sort_values(["time", "_o"], na_position="first", kind="stable")
    frame = frame.drop(columns="_o").reset_index(drop=True)
    for col in ("event", "label", "author", "detail", "source"):
        frame[col] = frame[col].astype("str")
    return frame


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


def export_release(project, path, *, release: int | None = None,
                   format: str = "parquet") -> Path:
    """Export a release's labels for training (atomically).

    Parameters
    ----------
    project : Project
    path : path-like
        The file to write.
    release : int, optional
        Default: the latest release. 0 exports the dataset's own labels.
    format : {'parquet', 'csv', 'coco'}, default='parquet'
        ``'parquet'``/``'csv'``: ``item_id``, ``label`` (empty = unlabelled), plus
        ``filepath`` when the items have one. A CSV cell a spreadsheet would run as a
        formula carries the reversible guard of :func:`workbench.relabel.neutralize_cell`.
        ``'coco'``: COCO for classification: ``images`` (``id``, ``file_name``, ``item_id``),
        ``categories`` (``id`` 1..K in class order, ``name``) and one annotation per
        labelled image (``image_id``, ``category_id``; no box); ``info`` names the release
        and its hash. :func:`read_release_export` reads any of them back.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        Unknown release or format; no release yet with ``release=None``.
    ReleaseError
        A release whose table does not match its hash.
    """
    from ._io import atomic_write, csv_line_end
    from .relabel import neutralize_cell

    func = "export_release"
    check_option(format, "format", func, EXPORT_FORMATS)
    if release is None:
        numbers = _numbers(_releases_dir(project, func))
        if not numbers:
            raise ValueError(f"{func}: the project has no release yet. Write one with "
                             "project.release_labels(message, author=...), or pass release=0 "
                             "to export the dataset's own labels.")
        release = numbers[-1]
    number = _check_release(project, release, "release", func, allow_none=False)
    labels, manifest = read_release(project, number) if number else (
        _original_labels(project), {"number": 0, "sha256": None})
    if "filepath" in project.items.columns:
        fp = project.items.set_index("item_id")["filepath"]
        labels["filepath"] = pd.array(fp.reindex(labels["item_id"]).to_numpy(), dtype="str")
    path = Path(path)
    if format == "parquet":
        atomic_write(path, lambda fh: labels.to_parquet(fh, index=False), binary=True)
    elif format == "csv":
        guarded = labels.astype(object).map(neutralize_cell)
        atomic_write(path, lambda fh: guarded.to_csv(fh, index=False,
                                                     lineterminator=csv_line_end(guarded)))
    else:
        doc = _coco(labels, list(project.classes), number, manifest.get("sha256"))
        atomic_write(path, lambda fh: json.dump(doc, fh, ensure_ascii=False))
    return path


def _coco(labels: pd.DataFrame, classes: list[str], number: int, sha: str | None) -> dict:
    # the project's classes, then labels of the release no class has now (a class renamed
    # in workbench.toml after the release)
    known = set(classes)
    extra = sorted({v for v in labels["label"] if isinstance(v, str) and v not in known})
    cat = {c: k + 1 for k, c in enumerate([*classes, *extra])}
    has_fp = "filepath" in labels.columns
    images, annotations = [], []
    for k, row in enumerate(labels.itertuples(index=False)):
        fp = row.filepath if has_fp and isinstance(row.filepath, str) else row.item_id
        images.append({"id": k + 1, "file_name": fp, "item_id": row.item_id})
        if isinstance(row.label, str):
            annotations.append({"id": len(annotations) + 1, "image_id": k + 1,
                                "category_id": cat[row.label]})
    return {"info": {"description": "workbench label release (classification)",
                     "release": number, "sha256": sha},
            "images": images,
            "categories": [{"id": i, "name": c} for c, i in cat.items()],
            "annotations": annotations}


def read_release_export(path, *, format: str = "parquet") -> pd.DataFrame:
    """Read a file written by :func:`export_release` back (``item_id``, ``label``).

    Parameters
    ----------
    path : path-like
    format : {'parquet', 'csv', 'coco'}, default='parquet'

    Returns
    -------
    DataFrame
        ``item_id``, ``label`` (``str`` dtype, NA = unlabelled), in the exported order.
    """
    from .relabel import restore_cell

    check_option(format, "format", "read_release_export", EXPORT_FORMATS)
    path = Path(path)
    if format == "parquet":
        frame = pd.read_parquet(path)[["item_id", "label"]]
    elif format == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        frame = frame[["item_id", "label"]].map(restore_cell)
    else:
        doc = json.loads(path.read_text(encoding="utf-8"))
        names = {c["id"]: c["name"] for c in doc["categories"]}
        by_image = {a["image_id"]: names[a["category_id"]] for a in doc["annotations"]}
        frame = pd.DataFrame({"item_id": [im["item_id"] for im in doc["images"]],
                              "label": [by_image.get(im["id"]) for im in doc["images"]]})
    return pd.DataFrame({"item_id": pd.array(frame["item_id"].to_numpy(), dtype="str"),
                         "label": pd.array(frame["label"].to_numpy(dtype=object), dtype="str")})
