"""The derived results the dashboards need, computed once per project and kept as Parquet.

Every function here returns exactly what the library function it names returns (same
frame, same dtypes, same ``attrs``), but a project opened from a folder keeps the result in
``<project>/.workbench/cache/`` (:mod:`workbench._cache`), so the next kernel, the next
dashboard and the next viewer read it instead of computing it again:

==========================  =====================================================  ======
function                    computed by                                            tags
==========================  =====================================================  ======
:func:`errors`              :func:`workbench.slicing.project_errors` per run
:func:`label_issues`        :func:`workbench.label_issues` per run
:func:`consensus`           :func:`workbench.consensus` (``majority``, ``dawid_skene``)
:func:`dawid_skene`         :func:`workbench.agreement.dawid_skene` (the fitted model)
:func:`agreement_summary`   :func:`workbench.agreement_summary` (a dict)
:func:`pairwise_agreement`  :func:`workbench.pairwise_agreement`
:func:`annotator_quality`   :func:`workbench.annotator_quality`
:func:`disagreeing_items`   :func:`workbench.agreement.disagreeing_items_by_annotator`
:func:`confused_pairs`      :func:`workbench.confused_pairs`
:func:`agreement_by`        :func:`workbench.agreement_by` (bootstrap intervals)
:func:`agreement_table`     :func:`workbench.kpis.agreement_table`
:func:`slice_metrics`       :func:`workbench.slice_metrics` of a run's errors
:func:`discover_slices`     :func:`workbench.discover_slices` of a run's errors
:func:`drift`               :func:`workbench.drift`
:func:`data_issues`         :func:`workbench.data_issues` (media files in the key)
:func:`scorecard`           :func:`workbench.vendor_scorecard`                     yes
==========================  =====================================================  ======

**The key** of an entry is the project's input fingerprint
(:func:`workbench._fingerprint.input_fingerprint`: name, size and mtime of every top-level
data file, taken when the project was opened), the label release it was opened at, the
workbench version, :data:`FORMAT_VERSION` and the call's options; a result that reads the
tag store (``tags`` above: gold tags, the relabel queue's history) adds the store's state
(its URL and the last id of every append-only table), so a new tag, status, decision or
guideline revision gives a new key. Editing an input file, reopening at another release or
upgrading the workbench invalidates everything; nothing is ever deleted, use
:func:`workbench._cache.clear_cache` or ``workbench precompute --clear``.

A project without a folder (``Project.from_frames`` without ``root``), or one whose files
changed while it was being read, computes without caching. Within one kernel each result is
also kept for the project object, so two widgets asking for the same frame read it once;
do not modify a returned frame in place (copy it first).

:func:`precompute` fills the cache ahead of time (``workbench precompute PROJECT``), and
:func:`warm` is what a dashboard calls first: its results, read or computed with a progress
bar.
"""

from __future__ import annotations

import contextvars
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._cache import cached_value
from ._validation import check_option

__all__ = ["DASHBOARDS", "FORMAT_VERSION", "RESULTS", "ListsByName", "agreement_by",
           "agreement_summary",
           "agreement_table", "annotator_quality", "confused_pairs", "consensus",
           "coverage", "current_annotations", "dashboard_steps", "dawid_skene", "discover_slices",
           "data_issues", "data_issues_shown", "data_state", "disagreeing_items", "drift",
           "errors", "label_issues", "pairwise_agreement", "precompute", "project_key",
           "scorecard", "slice_metrics", "store_state", "warm"]

#: Bumped when the stored form of a result changes, so older entries are not read.
FORMAT_VERSION = 1

#: The fingerprint of each project object, taken when it was opened (or first asked).
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Results already read in this kernel, per project object.
_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Where :func:`precompute` collects the status of the step it runs (outermost call only).
_INFO: contextvars.ContextVar = contextvars.ContextVar("workbench_results_info", default=None)
#: True inside :func:`precompute` with ``load=False``: the outermost result is only made
#: sure of on disk (the ones it is computed from are read).
_ENSURE: contextvars.ContextVar = contextvars.ContextVar("workbench_results_ensure",
                                                         default=False)


# ---- keys -------------------------------------------------------------------------------


def project_key(project: Any) -> dict | None:
    """What every result of ``project`` depends on, or None when it cannot be cached.

    Parameters
    ----------
    project : Project

    Returns
    -------
    dict or None
        ``inputs`` (the input fingerprint taken when the project was opened: its
        ``input_fingerprint`` attribute, else taken now), ``release``, ``task``,
        ``workbench`` (version) and ``format``; None for a project without a folder or
        whose folder cannot be read.
    """
    root = getattr(project, "root", None)
    if root is None:
        return None
    try:
        return _KEYS[project]
    except (KeyError, TypeError):
        pass
    from . import __version__

    # recorded by open_project before it read the files (None when they changed meanwhile);
    # a project built from frames has none: its folder's files are not its data
    opened = getattr(project, "input_fingerprint", None)
    key = None
    if opened is not None:
        key = {"inputs": opened, "release": getattr(project, "release", None) or 0,
               "task": getattr(project, "task", "classification"),
               "workbench": __version__, "format": FORMAT_VERSION}
    try:
        _KEYS[project] = key
    except TypeError:
        pass
    return key


def store_state(store: Any) -> dict | None:
    """The tag store's identity and state: its URL and the last id of each event table.

    Every table of the store is append-only (tags, statuses, decisions, guideline
    revisions, QC rounds), so the largest ids say whether anything was written since.

    Parameters
    ----------
    store : TagStore

    Returns
    -------
    dict or None
        None for an in-memory store (its state lives in one kernel only: not cached).
    """
    if store is None or not getattr(store, "persistent", True):
        return None
    import sqlalchemy as sa

    from .store.schema import define_tables

    t = define_tables()
    columns = [t.actions.c.action_id, t.events.c.event_id, t.status_events.c.event_id,
               t.decisions.c.decision_id, t.guidelines.c.revision_id, t.qc_rounds.c.round_id]
    with store._engine.connect() as conn:  # noqa: SLF001 - our own store
        row = conn.execute(sa.select(*[sa.select(sa.func.max(c)).scalar_subquery()
                                       for c in columns])).one()
    return {"store": str(store.url), "last": [None if v is None else int(v) for v in row]}


def data_state(project: Any, *, opened: bool = False) -> dict | None:
    """Everything a dashboard of ``project`` reads, as a value that changes when any of it does.

    The input files (:func:`workbench._fingerprint.input_fingerprint`), the label releases
    made (the folders of ``<project>/.workbench/releases``) and the tag store's state
    (:func:`store_state`; None while the project has no store). A dashboard built ahead of its
    viewer (:class:`workbench.widgets.Dashboard`) keeps this value and builds again when the
    value read at the viewer's arrival differs. Media files are not part of it (one ``stat``
    per item): an image replaced in place under the same name is seen by the next kernel.

    Parameters
    ----------
    project : Project
        A project opened from a folder.
    opened : bool, default=False
        Take the input files as ``open_project`` found them before reading them (the
        project's ``input_fingerprint``; None when they changed while it read them), not
        as they are now.

    Returns
    -------
    dict or None
        None for a project without a folder, or (``opened=True``) one whose files changed
        while it was opened: compare it as "unknown", never equal to a later state.
    """
    import os

    from ._fingerprint import input_fingerprint
    from .releases import RELEASES_DIR

    root = getattr(project, "root", None)
    if root is None:
        return None
    inputs = getattr(project, "input_fingerprint", None) if opened else input_fingerprint(root)
    if inputs is None:
        return None
    try:
        releases = sorted(os.listdir(os.path.join(root, RELEASES_DIR)))
    except OSError:
        releases = []
    return {"inputs": inputs, "releases": releases,
            "store": store_state(_project_store(project, None))}


def _project_store(project: Any, store: Any):
    """``store``, else the project's store when it exists (never creates one), else None."""
    if store is not None:
        return store
    from .kpis import _store_exists

    if not _store_exists(project):
        return None
    from .tags import TagStore

    return TagStore.for_project(project)


def _run(project: Any, run: str | None, func: str) -> str:
    runs = list(getattr(project, "runs", []) or [])
    if not runs:
        from .slicing import project_errors

        project_errors(project, run)  # raises its message: the project has no predictions
    if run is None:
        run = getattr(project, "default_run", None) or runs[0]
    check_option(run, "run", func, runs)
    return run


def _get(project: Any, name: str, options: dict, compute: Callable[[], Any], *,
         encode=None, decode=None, tags: Any = False, info: dict | None = None,
         warns: bool = False, columns: list[str] | None = None) -> Any:
    """The cached result ``name`` of ``project`` for ``options`` (memo, then disk, then compute).

    ``warns``: the warnings the computation raised are kept with the result and raised
    again on every call, so a caller sees what it would see computing it. ``columns``: only
    these columns of a frame (read from disk alone when the frame is not in memory).
    Inside :func:`precompute` with ``load=False`` the outermost result is only made sure of
    on disk (None is returned when it was there).
    """
    from ._cache import _frame_parts, _frame_value, key_digest

    if warns:
        inner, encode, decode = compute, (encode or _frame_parts), (decode or _frame_value)
        compute, encode, decode = _recording(inner), _with_warnings(encode), \
            _without_warnings(decode)
        pair = _get(project, name, options, compute, encode=encode, decode=decode,
                    tags=tags, info=info, columns=columns)
        if pair is None:  # on disk, not read
            return None
        value, caught = pair
        for category, message in caught:
            warnings.warn(message, _category(category), stacklevel=3)
        return _only(value, columns)

    base = project_key(project)
    state = None
    if tags is not False:
        state = store_state(tags) if tags is not None else {"store": None}
    whole_key = key_digest({"name": name, "options": options, "tags": state})
    memo_key = whole_key if columns is None else key_digest(
        {"name": name, "options": options, "tags": state, "columns": list(columns)})
    try:
        memo = _MEMO.setdefault(project, {})
    except TypeError:
        memo = {}
    info = {} if info is None else info
    for key_ in dict.fromkeys([memo_key, whole_key]):
        if key_ in memo:
            info.update(status="in memory", seconds=0.0, path=None)
            if _INFO.get() is not None:
                _INFO.get().update(info)
            return memo[key_] if key_ == memo_key else _pair_only(memo[key_], columns)
    root = getattr(project, "root", None)
    cacheable = base is not None and (tags is False or state is not None)
    kwargs = {}
    if encode is not None:
        kwargs = {"encode": encode, "decode": decode}
    key = {**(base or {}), "result": name, "options": options}
    if tags is not False:
        key["tags"] = state
    from ._cache import ON_DISK

    outer = _INFO.get()
    load = not _ENSURE.get()
    token = _INFO.set(None)  # a result computed inside this one does not report
    ensure = _ENSURE.set(False)  # ... and is read: this one needs it
    try:
        value = cached_value(root if cacheable else None, name, key, compute, info=info,
                             func=f"workbench.results.{name}", columns=columns, load=load,
                             **kwargs)
    finally:
        _INFO.reset(token)
        _ENSURE.reset(ensure)
    if outer is not None:
        outer.update(info)
    if value is ON_DISK:
        return None
    if info.get("status") != "reused":  # computed: the whole value
        memo[whole_key] = value
        value = _pair_only(value, columns)
    memo[memo_key] = value
    return value


def _only(value: Any, columns: list[str] | None) -> Any:
    """``value[columns]`` for a frame when ``columns`` is given."""
    if columns is None or not isinstance(value, pd.DataFrame):
        return value
    wanted = [c for c in columns if c in value.columns]
    return value if list(value.columns) == wanted else value[wanted]


def _pair_only(value: Any, columns: list[str] | None) -> Any:
    """:func:`_only` of a value, or of the value of a ``(value, warnings)`` pair."""
    if columns is not None and isinstance(value, tuple) and len(value) == 2 \
            and isinstance(value[0], pd.DataFrame):
        return _only(value[0], columns), value[1]
    return _only(value, columns)


def _recording(compute: Callable[[], Any]) -> Callable[[], tuple]:
    def run() -> tuple:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = compute()
        return value, [(c.category.__name__, str(c.message)) for c in caught]
    return run


def _with_warnings(encode):
    def run(pair: tuple) -> tuple[dict, dict]:
        parts, meta = encode(pair[0])
        return parts, {**meta, "_warnings": [list(w) for w in pair[1]]}
    return run


def _without_warnings(decode):
    def run(parts: dict, meta: dict) -> tuple:
        return decode(parts, meta), [tuple(w) for w in meta["_warnings"]]
    return run


def _category(name: str) -> type[Warning]:
    import builtins

    found = getattr(builtins, name, None)
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


# ---- results ---------------------------------------------------------------------------


def errors(project: Any, run: str | None = None) -> pd.DataFrame:
    """:func:`workbench.slicing.project_errors` of ``run``, cached.

    Parameters
    ----------
    project : Project
    run : str, optional
        Default: the project's default run.

    Returns
    -------
    DataFrame
        As ``project.errors(run)``.
    """
    run = _run(project, run, "workbench.results.errors")
    from .slicing import project_errors

    frame = _get(project, "errors", {"run": run}, lambda: project_errors(project, run),
                 encode=lambda f: _errors_encode(project, f),
                 decode=lambda parts, meta: _errors_decode(project, parts, meta))
    if frame is None:  # precompute(load=False): on disk, not read
        return None
    _ORIGIN[id(frame)] = (weakref.ref(frame), weakref.ref(project), run)
    return frame


def _errors_encode(project: Any, frame: pd.DataFrame) -> tuple[dict, dict]:
    """An errors frame without the columns it takes from the items.

    The items are kept once, in the project's table cache; the entry holds the frame's own
    columns, and the item rows when items were excluded.
    """
    from ._cache import _Uncacheable

    items = project.items
    item_columns = ["item_id", *frame.attrs.get("metadata_columns", [])]
    ids = items["item_id"].astype("str")
    if len(frame) == len(items) and frame["item_id"].equals(ids):
        rows = None
    else:
        rows = pd.Index(ids).get_indexer(frame["item_id"])
        if (rows < 0).any():
            raise _Uncacheable("the errors frame holds items the project does not have")
    own = frame.drop(columns=item_columns)
    own.attrs = dict(frame.attrs)
    parts = {"frame": own}
    if rows is not None:
        parts["rows"] = pd.DataFrame({"row": rows})
    return parts, {"item_columns": item_columns, "columns": list(frame.columns)}


def _errors_decode(project: Any, parts: dict, meta: dict) -> pd.DataFrame:
    """The errors frame from its own columns and the project's items (see the encoder)."""
    from .slicing import errors_item_columns

    own = parts["frame"]
    rows = parts["rows"]["row"].to_numpy() if "rows" in parts else None
    if len(own) != (len(project.items) if rows is None else len(rows)):
        raise ValueError("the errors entry does not fit the project's items")
    taken = errors_item_columns(project.items, meta["item_columns"][1:], rows)
    frame = pd.DataFrame({c: taken[c] if c in taken else own[c] for c in meta["columns"]})
    frame.attrs = own.attrs
    return frame


#: errors frames handed out by :func:`errors`: id -> (frame ref, project ref, run).
_ORIGIN: dict[int, tuple] = {}


def _origin(frame: pd.DataFrame) -> tuple[Any, str] | None:
    """``(project, run)`` when ``frame`` is (the very object) returned by :func:`errors`."""
    entry = _ORIGIN.get(id(frame))
    if entry is None:
        return None
    ref, project_ref, run = entry
    if ref() is not frame or project_ref() is None:
        _ORIGIN.pop(id(frame), None)
        return None
    return project_ref(), run


def label_issues(project: Any, run: str | None = None, *,
                 columns: list[str] | None = None) -> pd.DataFrame:
    """:func:`workbench.label_issues` of ``run`` (default options), cached.

    Parameters
    ----------
    project : Project
    run : str, optional
        Default: the project's default run.
    columns : list of str, optional
        Only these columns (read alone from the cache: a count of issues of a 10M-item
        project reads one column).

    Returns
    -------
    DataFrame
    """
    from .label_quality import label_issues as compute

    if getattr(project, "task", None) == "detection":  # boxes: computed, not cached
        return _only(compute(project, run), columns)
    run = _run(project, run, "workbench.results.label_issues")
    return _get(project, "label_issues", {"run": run}, lambda: compute(project, run),
                warns=True, columns=None if columns is None else [str(c) for c in columns])


def consensus(project: Any, method: str = "majority") -> pd.DataFrame:
    """:func:`workbench.consensus` of the project's annotations in its class order, cached.

    Parameters
    ----------
    project : Project
    method : {'majority', 'dawid_skene'}, default='majority'

    Returns
    -------
    DataFrame
    """
    check_option(method, "method", "workbench.results.consensus", ["majority", "dawid_skene"])
    from .agreement import consensus as compute

    return _get(project, f"consensus-{method}", {"method": method},
                lambda: compute(project.annotations, method, classes=project.classes or None))


def _ds_encode(result) -> tuple[dict, dict]:
    names = list(result.confusion)
    parts = {"posteriors": result.posteriors, "priors": result.priors.to_frame()}
    for i, name in enumerate(names):
        parts[f"confusion{i}"] = result.confusion[name]
    meta = {"annotators": names, "n_iter": int(result.n_iter),
            "log_likelihood": float(result.log_likelihood),
            "converged": bool(result.converged), "priors_name": result.priors.name}
    return parts, meta


def _ds_decode(parts: dict, meta: dict):
    from .agreement import DawidSkeneResult

    priors = parts["priors"].iloc[:, 0].rename(meta["priors_name"])
    confusion = {name: parts[f"confusion{i}"] for i, name in enumerate(meta["annotators"])}
    return DawidSkeneResult(posteriors=parts["posteriors"], confusion=confusion, priors=priors,
                            n_iter=int(meta["n_iter"]),
                            log_likelihood=float(meta["log_likelihood"]),
                            converged=bool(meta["converged"]))


def dawid_skene(project: Any) -> Any:
    """:func:`workbench.agreement.dawid_skene` of the project's annotations, cached.

    Parameters
    ----------
    project : Project

    Returns
    -------
    DawidSkeneResult
        Posteriors, per-annotator confusion matrices, priors and the fit's figures, read
        back exactly as fitted.
    """
    from .agreement import dawid_skene as compute

    return _get(project, "dawid_skene", {},
                lambda: compute(project.annotations, classes=project.classes or None),
                encode=_ds_encode, decode=_ds_decode)


def _dict_encode(value: dict) -> tuple[dict, dict]:
    return {"empty": pd.DataFrame()}, {"value": value}


def _dict_decode(parts: dict, meta: dict) -> dict:
    return meta["value"]


def agreement_summary(project: Any) -> dict:
    """:func:`workbench.agreement_summary` of the annotations (project class order), cached.

    Parameters
    ----------
    project : Project

    Returns
    -------
    dict
    """
    from .agreement import agreement_summary as compute

    return _get(project, "agreement_summary", {},
                lambda: compute(project.annotations, classes=project.classes or None),
                encode=_dict_encode, decode=_dict_decode, warns=True)


def pairwise_agreement(project: Any) -> pd.DataFrame:
    """:func:`workbench.pairwise_agreement` of the annotations (default options), cached."""
    from .agreement import pairwise_agreement as compute

    return _get(project, "pairwise_agreement", {}, lambda: compute(_current(project)),
                warns=True)


def annotator_quality(project: Any) -> pd.DataFrame:
    """:func:`workbench.annotator_quality` (no gold, Dawid-Skene ranking), cached."""
    from .agreement import annotator_quality as compute

    return _get(project, "annotator_quality", {}, lambda: compute(_current(project)),
                warns=True)


def _current(project: Any) -> pd.DataFrame:
    """The current annotations (the latest label of each annotator and item)."""
    return current_annotations(project)


def current_annotations(project: Any) -> pd.DataFrame:
    """:func:`workbench._validation.latest_annotations` of the project, once per kernel.

    Kept for the project object (not on disk: it is a filter of the annotations); the
    widgets of a dashboard share it. Do not modify it in place.

    Parameters
    ----------
    project : Project

    Returns
    -------
    DataFrame
    """
    from ._validation import latest_annotations

    ann = project.annotations
    try:
        memo = _MEMO.setdefault(project, {})
    except TypeError:
        memo = {}
    key = ("current_annotations", id(ann))
    if key not in memo or memo[key][0] is not ann:
        if not len(ann) or not pd.api.types.is_integer_dtype(ann.index.dtype):
            current = latest_annotations(ann) if len(ann) else ann
        else:  # which rows are current is cached on disk (a 10M check costs seconds)
            kept = _get(project, "current_rows", {}, lambda: _current_rows(ann),
                        encode=_rows_encode, decode=_rows_decode)
            current = ann if kept is None else ann.loc[kept]
        memo[key] = (ann, current)
    return memo[key][1]


def _current_rows(ann: pd.DataFrame):
    """The index labels of the current annotations, or None when every row is current."""
    from ._validation import latest_annotations

    current = latest_annotations(ann)
    return None if current is ann else current.index.to_numpy()


def _rows_encode(rows) -> tuple[dict, dict]:
    if rows is None:
        return {"rows": pd.DataFrame()}, {"all": True}
    return {"rows": pd.DataFrame({"row": rows})}, {"all": False}


def _rows_decode(parts: dict, meta: dict):
    return None if meta["all"] else parts["rows"]["row"].to_numpy()


def _lists_encode(value: dict) -> tuple[dict, dict]:
    names = list(value)
    frame = pd.DataFrame({"item_id": pd.Series([i for n in names for i in value[n]],
                                               dtype="str")})
    return {"pairs": frame}, {"annotators": names, "sizes": [len(value[n]) for n in names]}


def _lists_decode(parts: dict, meta: dict) -> ListsByName:
    return ListsByName(meta["annotators"], meta["sizes"], parts["pairs"]["item_id"])


class ListsByName(Mapping):
    """A read-only ``{name: [item ids]}`` over one column of ids, grouped by name in order.

    Each list is made (as Python strings) when its name is first read: a dashboard of a
    10M-item project counts each annotator's items (:meth:`size`) without making 10M
    strings, and makes the list of the annotator a curator clicks.

    Parameters
    ----------
    names : list of str
        The keys, in order.
    sizes : list of int
        How many ids each key has.
    ids : Series of str
        The ids of every key, one after the other.
    """

    def __init__(self, names: list[str], sizes: list[int], ids: pd.Series):
        if len(names) != len(sizes) or sum(sizes) != len(ids):
            raise ValueError("ListsByName: the sizes do not add up to the ids")
        ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
        self._span = {str(n): (int(e) - int(k), int(e)) for n, k, e in zip(names, sizes, ends,
                                                                          strict=True)}
        self._ids = ids.reset_index(drop=True)
        self._made: dict[str, list[str]] = {}

    def __getitem__(self, name: str) -> list[str]:
        if name not in self._made:
            start, stop = self._span[name]
            self._made[name] = self._ids.iloc[start:stop].astype(str).tolist()
        return self._made[name]

    def __contains__(self, name: object) -> bool:
        return name in self._span

    def __iter__(self):
        return iter(self._span)

    def __len__(self) -> int:
        return len(self._span)

    def size(self, name: str) -> int:
        """How many ids ``name`` has (its list is not made)."""
        start, stop = self._span[name]
        return stop - start


def disagreeing_items(project: Any) -> Mapping[str, list[str]]:
    """:func:`workbench.agreement.disagreeing_items_by_annotator`, cached.

    Returns
    -------
    Mapping
        The dict when computed; read from the cache, a :class:`ListsByName` (each
        annotator's list made when first read; ``size(name)`` counts without making it).
    """
    from .agreement import disagreeing_items_by_annotator

    return _get(project, "disagreeing_items", {},
                lambda: disagreeing_items_by_annotator(_current(project)),
                encode=_lists_encode, decode=_lists_decode)


def confused_pairs(project: Any, *, columns: list[str] | None = None) -> pd.DataFrame:
    """:func:`workbench.confused_pairs` in the project's class order, cached.

    The class order is dropped (sorted labels) when an annotation holds a label outside
    the project's classes, as the confused-pairs widget does. ``columns``: only these
    columns (without ``item_ids`` the entry is read without making its item ids).
    """
    from .agreement import confused_pairs as compute

    def run() -> pd.DataFrame:
        ann = _current(project)
        classes = list(getattr(project, "classes", None) or [])
        if classes and len(ann) and not set(ann["label"].astype(str)) <= set(classes):
            classes = []
        return compute(ann, classes=classes or None)

    return _get(project, "confused_pairs", {}, run,
                columns=None if columns is None else [str(c) for c in columns])


def agreement_by(project: Any, by: str, *, n_boot: int = 200) -> pd.DataFrame:
    """:func:`workbench.agreement_by` of the annotations per ``by`` (seed 0), cached."""
    from .agreement import agreement_by as compute

    return _get(project, "agreement_by", {"by": by, "n_boot": int(n_boot)},
                lambda: compute(project.annotations, project, by, n_boot=n_boot))


def agreement_table(project: Any, by: str) -> pd.DataFrame:
    """:func:`workbench.kpis.agreement_table` per ``by`` (the overview's table), cached."""
    from .kpis import agreement_table as compute

    return _get(project, "agreement_table", {"by": by},
                lambda: compute(project.annotations, project.items, by))


def _errors_args(source: Any, run: str | None
                 ) -> tuple[Any, str | None, Callable[[], pd.DataFrame]]:
    """``(project or None, run, errors)`` from a project or an errors frame.

    ``errors`` is called when the frame is needed (a result already cached never reads it).
    """
    if isinstance(source, pd.DataFrame):
        origin = _origin(source)
        if origin is None:
            return None, None, lambda: source
        return origin[0], origin[1], lambda: source
    run = _run(source, run, "workbench.results")
    return source, run, lambda: errors(source, run)


def slice_metrics(source: Any, by: str, *, run: str | None = None, bins: int | None = 4,
                  target: str = "is_error") -> pd.DataFrame:
    """:func:`workbench.slice_metrics` of a run's errors per ``by``, cached.

    Parameters
    ----------
    source : Project or DataFrame
        A project (its ``run`` errors), or an errors frame: cached when it is the frame
        :func:`errors` returned, else computed.
    by : str
    run : str, optional
    bins : int or None, default=4
    target : str, default='is_error'

    Returns
    -------
    DataFrame
    """
    from .slicing import slice_metrics as compute

    project, run, frame = _errors_args(source, run)
    if project is None:
        return compute(frame(), by, bins=bins, target=target)
    return _get(project, "slice_metrics",
                {"run": run, "by": by, "bins": bins, "target": target},
                lambda: compute(frame(), by, bins=bins, target=target))


def discover_slices(source: Any, *, run: str | None = None, bins: int | None = 4,
                    target: str = "is_error", top: int | None = 20) -> pd.DataFrame:
    """:func:`workbench.discover_slices` of a run's errors (default search), cached.

    Parameters
    ----------
    source : Project or DataFrame
        As in :func:`slice_metrics`.
    run : str, optional
    bins : int or None, default=4
    target : str, default='is_error'
    top : int or None, default=20

    Returns
    -------
    DataFrame
    """
    from .slicing import discover_slices as compute

    project, run, frame = _errors_args(source, run)
    if project is None:
        return compute(frame(), bins=bins, target=target, top=top)
    return _get(project, "discover_slices",
                {"run": run, "bins": bins, "target": target, "top": top},
                lambda: compute(frame(), bins=bins, target=target, top=top))


def drift(project: Any, by: str = "batch") -> pd.DataFrame:
    """:func:`workbench.drift` per ``by`` (default options), cached."""
    from .drift import drift as compute

    return _get(project, "drift", {"by": by}, lambda: compute(project, by=by))


def data_issues(project: Any, *, k: int = 10, issue_types: list[str] | None = None
                ) -> pd.DataFrame:
    """:func:`workbench.data_issues` (default run), cached.

    Exact duplicates are found by the content of the media files, which are not input files
    of the project: their names, sizes and modification times are part of the key.

    Parameters
    ----------
    project : Project
    k : int, default=10
    issue_types : list of str, optional

    Returns
    -------
    DataFrame
    """
    from .data_issues import data_issues as compute

    types = None if issue_types is None else [str(t) for t in issue_types]
    return _get(project, "data_issues",
                {"k": int(k), "issue_types": types, "media": _media_state(project)},
                lambda: compute(project, k=k, issue_types=types))


def _media_state(project: Any) -> str | None:
    """A digest of the media files' paths, sizes and modification times (None: no files)."""
    import hashlib
    import os

    items = project.items
    root = getattr(project, "root", None)
    if "filepath" not in items.columns or root is None or "text" in items.columns:
        return None
    digest = hashlib.sha256()
    for rel in items["filepath"].astype(str).to_numpy(dtype=object):
        try:
            st = os.stat(os.path.join(root, rel))
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{rel}\0-\n".encode())
    return digest.hexdigest()


def data_issues_shown(project: Any, *, k: int = 10) -> tuple[pd.DataFrame, str | None]:
    """What the data dashboard shows: every data issue, or exact duplicates without embeddings.

    Parameters
    ----------
    project : Project
    k : int, default=10

    Returns
    -------
    issues : DataFrame
        :func:`data_issues` (cached).
    unavailable : str or None
        None, or why only exact duplicates are listed (the project has no embeddings: the
        message of the :class:`~workbench.errors.SchemaError` that says how to add them).
    """
    from .errors import SchemaError

    try:
        return data_issues(project, k=k), None
    except SchemaError as exc:
        return data_issues(project, issue_types=["exact_duplicate"]), str(exc)


def _coverage_encode(result) -> tuple[dict, dict]:
    parts = {"slices": result.slices,
             "reference_ids": pd.DataFrame({"item_id": pd.Series(result.reference_ids,
                                                                 dtype="str")}),
             "target_ids": pd.DataFrame({"item_id": pd.Series(result.target_ids, dtype="str")})}
    if result.items is not None:
        parts["items"] = result.items
    meta = {"k": int(result.k), "percentile": result.percentile,
            "threshold": None if result.threshold is None else float(result.threshold),
            "note": result.note, "skipped": result.skipped,
            "types": [type(result.percentile).__name__]}
    return parts, meta


def _coverage_decode(parts: dict, meta: dict):
    from .coverage import Coverage

    percentile = meta["percentile"]
    if meta["types"][0] == "int":
        percentile = int(percentile)
    elif meta["types"][0] == "float":
        percentile = float(percentile)
    return Coverage(slices=parts["slices"], items=parts.get("items"),
                    reference_ids=parts["reference_ids"]["item_id"].tolist(),
                    target_ids=parts["target_ids"]["item_id"].tolist(), k=meta["k"],
                    percentile=percentile, threshold=meta["threshold"], note=meta["note"],
                    skipped=meta["skipped"])


def coverage(project: Any, reference: dict, target: dict) -> Any:
    """:func:`workbench.coverage` of ``target`` against ``reference`` (default options), cached.

    Parameters
    ----------
    project : Project
    reference, target : dict
        ``{column: [values]}`` as :func:`workbench.coverage` takes them.

    Returns
    -------
    Coverage
    """
    from ._cache import _plain
    from .coverage import coverage as compute

    def plain(groups: dict) -> dict:
        return {str(c): [v if isinstance(v, (str, int, float, bool)) or v is None
                         else _plain(v) for v in values] for c, values in groups.items()}

    try:
        options = {"reference": plain(reference), "target": plain(target),
                   "types": {c: [type(v).__name__ for v in vs]
                             for side in (reference, target) for c, vs in side.items()}}
    except TypeError:  # values that are not JSON: computed, not cached
        return compute(project, reference=reference, target=target)
    return _get(project, "coverage", options,
                lambda: compute(project, reference=reference, target=target),
                encode=_coverage_encode, decode=_coverage_decode)


def scorecard(project: Any, *, by: tuple[str, ...] = ("vendor", "batch"),
              store: Any = None) -> pd.DataFrame:
    """:func:`workbench.vendor_scorecard`, cached under the tag store's state.

    The scorecard reads the gold tags and the relabel queue's history, so a new tag or
    status gives a new entry. A project without a store is scored without gold and rework
    (never creating a store, as the read-only overview does).

    Parameters
    ----------
    project : Project
    by : tuple of str, default=('vendor', 'batch')
    store : TagStore, optional
        Default: the project's store if it exists.

    Returns
    -------
    DataFrame
    """
    from .scorecard import vendor_scorecard

    by = tuple(by)
    store = _project_store(project, store)

    def run() -> pd.DataFrame:
        from .tags import TagStore

        return vendor_scorecard(project, by=by,
                                store=store if store is not None else TagStore("sqlite://"))

    return _get(project, "scorecard", {"by": list(by)}, run, tags=store)


# ---- precompute ---------------------------------------------------------------------------


def _meta(project: Any, names: Iterable[str]) -> list[str]:
    return [c for c in names if c in project.items.columns]


def _has_ann(project: Any) -> bool:
    return len(project.annotations) > 0


def _has_probs(project: Any) -> bool:
    return bool(project.runs) and bool(getattr(project, "prob_columns", []))


def _steps(project: Any, runs: list[str],
           names: Iterable[str] | None = None) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """The results ``names`` (default: all) of ``project``: ``{name: [(label, call)]}``."""
    names = RESULTS if names is None else tuple(names)
    p = project
    default = p.default_run if p.default_run in runs else (runs[0] if runs else None)
    steps: dict[str, list] = {}

    def add(name, label, call):
        steps.setdefault(name, []).append((label, call))

    for r in runs:
        add("errors", f"errors {r}", lambda r=r: errors(p, r))
    if _has_probs(p):
        for r in runs:
            add("label_issues", f"label_issues {r}", lambda r=r: label_issues(p, r))
    if _has_ann(p):
        add("agreement_summary", "agreement_summary", lambda: agreement_summary(p))
        add("pairwise_agreement", "pairwise_agreement", lambda: pairwise_agreement(p))
        add("annotator_quality", "annotator_quality", lambda: annotator_quality(p))
        add("disagreeing_items", "disagreeing_items", lambda: disagreeing_items(p))
        add("confused_pairs", "confused_pairs", lambda: confused_pairs(p))
        add("consensus", "consensus majority", lambda: consensus(p, "majority"))
        add("consensus", "consensus dawid_skene", lambda: consensus(p, "dawid_skene"))
        for col in _meta(p, ("vendor", "batch")):
            add("agreement_table", f"agreement_table {col}", lambda c=col: agreement_table(p, c))
        columns = list(p.metadata_columns)
        if columns:
            col = "batch" if "batch" in columns else columns[0]
            add("agreement_by", f"agreement_by {col}", lambda c=col: agreement_by(p, c))
        if _meta(p, ("vendor", "batch")) or "vendor" in p.annotations.columns:
            add("scorecard", "scorecard", lambda: _overview_scorecard(p))
    for r in runs:
        cols = [c for c in p.metadata_columns]
        for col in cols:
            add("slice_metrics", f"slice_metrics {r} {col}",
                lambda r=r, c=col: slice_metrics(p, c, run=r))
        if cols:
            add("discover_slices", f"discover_slices {r}", lambda r=r: discover_slices(p, run=r))
    if default is not None and p.metadata_columns:
        add("discover_slices", f"discover_slices {default} top 5",
            lambda: discover_slices(p, run=default, top=5))
    drift_by = _first_column(p, "batch") if "drift" in names else None
    if drift_by is not None:
        add("drift", f"drift {drift_by}", lambda: drift(p, drift_by))
    if "data_issues" in names:
        add("data_issues", "data_issues", lambda: data_issues_shown(p)[0])
    cover_by = _first_column(p, "split") if "coverage" in names else None
    if cover_by is not None:
        add("coverage", f"coverage {cover_by}", lambda: _default_coverage(p, cover_by))
    return steps


def _first_column(project: Any, preferred: str) -> str | None:
    """The column the data dashboard opens with: ``preferred``, else the first with 2 values."""
    from ._validation import has_two_values

    options = [c for c in project.metadata_columns if has_two_values(project.items[c])]
    return preferred if preferred in options else (options[0] if options else None)


def _default_coverage(project: Any, column: str) -> Any:
    """The coverage the data dashboard opens with (its default groups of ``column``)."""
    from .widgets.data_explorer import default_groups

    ref, tgt = default_groups(project.items, column)
    if not ref or not tgt:
        return None
    lookup = {str(v): v for v in project.items[column].dropna().unique()}
    return coverage(project, {column: [lookup[v] for v in ref]},
                    {column: [lookup[v] for v in tgt]})


def _overview_scorecard(project: Any) -> pd.DataFrame:
    """The overview's scorecard: by the first two of vendor, batch that exist."""
    cols = tuple(c for c in ("vendor", "batch") if c in project.items.columns
                 or c in project.annotations.columns)[:2]
    return scorecard(project, by=cols)


#: The result names :func:`precompute` knows, in the order it computes them.
RESULTS = ("errors", "label_issues", "agreement_summary", "pairwise_agreement",
           "annotator_quality", "disagreeing_items", "confused_pairs", "consensus",
           "agreement_table", "agreement_by", "scorecard", "slice_metrics", "discover_slices",
           "drift", "data_issues", "coverage")

#: What each dashboard reads at start (its notebook calls :func:`warm` with its name).
DASHBOARDS = {
    "overview": ("errors", "agreement_summary", "agreement_table", "label_issues",
                 "discover_slices", "scorecard", "drift"),
    "errors": ("errors", "slice_metrics", "discover_slices"),
    "disagreements": ("agreement_summary", "pairwise_agreement", "annotator_quality",
                      "disagreeing_items", "confused_pairs", "label_issues", "agreement_by"),
    "relabel": ("label_issues", "errors", "discover_slices"),
    "vendors": ("scorecard", "confused_pairs"),
    "data": ("drift", "data_issues", "coverage"),
}


def dashboard_steps(project: Any, dashboard: str | None = None, *,
                    runs: Iterable[str] | None = None,
                    only: Iterable[str] | None = None) -> list[tuple[str, Callable[[], Any]]]:
    """The results to compute for a dashboard (or every one), as ``(label, call)`` pairs.

    Parameters
    ----------
    project : Project
    dashboard : str, optional
        A key of :data:`DASHBOARDS`; None: every result of :data:`RESULTS`.
    runs : iterable of str, optional
        The runs (default: all; a dashboard other than ``overview`` uses the default run).
    only : iterable of str, optional
        Result names among :data:`RESULTS` to keep.

    Returns
    -------
    list of (str, callable)
    """
    if dashboard is not None:
        check_option(dashboard, "dashboard", "dashboard_steps", list(DASHBOARDS))
    all_runs = list(getattr(project, "runs", []) or [])
    if runs is None:
        if dashboard in (None, "overview"):
            runs = all_runs
        else:
            runs = [project.default_run] if project.default_run else []
    runs = [str(r) for r in runs]
    for r in runs:
        check_option(r, "runs", "dashboard_steps", all_runs)
    names = list(RESULTS) if dashboard is None else list(DASHBOARDS[dashboard])
    if only is not None:
        only = [str(o) for o in only]
        for o in only:
            check_option(o, "only", "dashboard_steps", list(RESULTS))
        names = [n for n in names if n in only]
    if getattr(project, "task", "classification") == "detection":
        return []  # detection dashboards compute their own (box) results
    steps = _steps(project, runs, names)
    if dashboard == "errors":
        col = (list(project.metadata_columns) or [None])[0]
        steps["slice_metrics"] = [s for s in steps.get("slice_metrics", [])
                                  if col is not None and s[0].endswith(f" {col}")]
        steps["discover_slices"] = [s for s in steps.get("discover_slices", [])
                                    if not s[0].endswith("top 5")]
    if dashboard == "overview":
        steps["discover_slices"] = [s for s in steps.get("discover_slices", [])
                                    if s[0].endswith("top 5")]
    if dashboard in ("relabel",):
        steps["discover_slices"] = [s for s in steps.get("discover_slices", [])
                                    if not s[0].endswith("top 5")]
    return [step for name in names for step in steps.get(name, [])]


def precompute(project: Any, *, runs: Iterable[str] | None = None,
               only: Iterable[str] | None = None, dashboard: str | None = None,
               progress: bool | None = None, raise_errors: bool = False,
               keep: bool = True, load: bool = True) -> pd.DataFrame:
    """Compute (or read) the dashboards' results of ``project`` into its cache.

    Parameters
    ----------
    project : Project
        A project opened from a folder (an in-memory project is computed, not cached).
    runs : iterable of str, optional
        Runs to compute the per-run results for (default: every run).
    only : iterable of str, optional
        Result names among :data:`RESULTS` (default: all).
    dashboard : str, optional
        Only what this dashboard of :data:`DASHBOARDS` reads.
    progress : bool, optional
        Show a progress bar (one step per result); None: unless ``WORKBENCH_PROGRESS=0``.
    raise_errors : bool, default=False
        Raise the first failure instead of recording it.
    keep : bool, default=True
        Keep each result in this kernel for the project (what a dashboard reads next).
        False frees it after its step (``workbench precompute``): the peak memory is then
        that of the largest single result, not of all of them together.
    load : bool, default=True
        Read each result that is already cached. False only checks that its entry is on
        disk and valid (the parts' metadata), as :func:`warm` does: a dashboard then reads
        what it shows, and a result it does not show at start is not read at all.

    Returns
    -------
    DataFrame
        One row per result: ``result``, ``status`` (``computed``, ``reused`` from the
        cache, ``in memory``, ``uncached``, or ``failed``), ``seconds`` and ``error``.
    """
    from ._progress import progress as bar

    steps = dashboard_steps(project, dashboard, runs=runs, only=only)
    rows = []
    with bar(total=len(steps), desc="precompute", unit="result",
             disable=None if progress is None else not progress) as pb:
        for label, call in steps:
            pb.set_postfix_str(label)
            info: dict = {}
            t0 = time.perf_counter()
            token = _INFO.set(info)
            ensure = _ENSURE.set(not load)
            try:
                call()
                status, error = info.get("status", "in memory"), ""
            except Exception as exc:  # noqa: BLE001 - one failure does not stop the others
                if raise_errors:
                    raise
                status, error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
            finally:
                _INFO.reset(token)
                _ENSURE.reset(ensure)
            if not keep:
                _forget(project)
            rows.append({"result": label, "status": status,
                         "seconds": time.perf_counter() - t0, "error": error})
            pb.update()
    return pd.DataFrame(rows, columns=["result", "status", "seconds", "error"])


def _forget(project: Any) -> None:
    """Drop the results kept in this kernel for ``project`` and give the memory back."""
    try:
        _MEMO.pop(project, None)
    except TypeError:
        pass
    release_memory()


def release_memory() -> None:
    """Collect garbage and return freed memory to the system (Arrow's pool, glibc's heap)."""
    import gc

    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):  # pragma: no cover - older pyarrow
        pass
    try:  # glibc keeps freed pages in its arenas until asked
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def warm(project: Any, dashboard: str) -> pd.DataFrame:
    """Read or compute what a dashboard shows, with a progress bar; what a notebook calls first.

    Parameters
    ----------
    project : Project
    dashboard : str
        A key of :data:`DASHBOARDS`.

    Returns
    -------
    DataFrame
        See :func:`precompute`. Failures are recorded, not raised (the dashboard shows them).

    Notes
    -----
    A result already cached is not read here (``precompute(load=False)``): the widgets read
    what they show, and only that.
    """
    return precompute(project, dashboard=dashboard, load=False)

