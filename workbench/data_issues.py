"""Data issues beyond labels: duplicates, leakage across splits, outliers, non-iid data.

:func:`data_issues` lists, per item, what is wrong with the data itself:

* ``exact_duplicate``: the same content (SHA-256 of the media file through
  :meth:`Project.media_path`, or of the text of a text item);
* ``near_duplicate``, ``outlier``, ``non_iid``, ``underperforming_group``: cleanlab's
  :class:`~cleanlab.Datalab` on the project's embeddings, with **one** nearest-neighbour
  graph (:func:`workbench.embeddings.knn_graph`, built once per project and shared with
  the item view and coverage) passed to ``find_issues`` so that no check rebuilds it
  (cleanlab issue #780).

Duplicates whose group spans several ``split`` values are **leaks** (the same image in
train and test): :func:`leakage` lists them and :func:`leakage_inflation` measures how
much they flatter the test error rate. :func:`data_issue_flags` turns the issues into
per-item flags that :func:`workbench.discover_slices` takes as targets
(``target='is_outlier'`` or ``'is_duplicate'``).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ._validation import check_columns, check_int, check_option
from .errors import SchemaError

__all__ = [
    "ISSUE_TYPES",
    "data_issues",
    "leakage",
    "leakage_inflation",
    "data_issue_flags",
    "content_hashes",
]

#: Every issue type, in the order rows are listed (after the leaks).
ISSUE_TYPES = ("exact_duplicate", "near_duplicate", "outlier", "non_iid",
               "underperforming_group")
#: The issue types found by cleanlab's Datalab on the embeddings.
DATALAB_TYPES = ISSUE_TYPES[1:]
DUPLICATE_TYPES = ("exact_duplicate", "near_duplicate")
COLUMNS = ["item_id", "issue_type", "score", "related", "related_ids", "split_pair",
           "is_leak"]
_SPLIT = "split"
_CHUNK = 1 << 20

# per project object: results already computed, keyed by their options (projects are
# treated as immutable; a reloaded project is a new object)
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------------------
# exact duplicates: content hashes
# --------------------------------------------------------------------------------------


def _file_digest(path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def content_hashes(project) -> pd.Series:
    """SHA-256 of every item's content: the text of a text item, else its media file.

    Parameters
    ----------
    project : Project

    Returns
    -------
    Series
        Indexed by ``item_id`` (items order), hex digests; NA where the item has no text
        and no readable file inside the project folder (see ``Project.media_status``).
    """
    items = project.items
    ids = items["item_id"].astype(str).to_numpy()
    out = np.full(len(ids), None, dtype=object)
    if "text" in items.columns:
        for pos, value in enumerate(items["text"].to_numpy()):
            if value is not None and not pd.isna(value):
                out[pos] = hashlib.sha256(str(value).encode("utf-8")).hexdigest()
    elif "filepath" in items.columns and getattr(project, "root", None) is not None:
        for pos, item_id in enumerate(ids):
            path = project.media_path(item_id)
            if path is not None and path.is_file():
                out[pos] = _file_digest(path)
    return pd.Series(pd.array(out, dtype="str"), index=pd.Index(ids, name="item_id"),
                     name="sha256")


def _exact_duplicates(project) -> pd.DataFrame:
    items = project.items
    if "text" not in items.columns and ("filepath" not in items.columns
                                        or getattr(project, "root", None) is None):
        return _frame([])  # no content to compare (a table of metadata only)
    hashes = content_hashes(project).dropna()
    groups = hashes.groupby(hashes.to_numpy(), sort=False).groups
    rows = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(map(str, members))
        for item in members:
            others = [m for m in members if m != item]
            rows.append((item, "exact_duplicate", 1.0, others))
    return _frame(rows)


# --------------------------------------------------------------------------------------
# Datalab on the embeddings and the shared graph
# --------------------------------------------------------------------------------------


def _require_embeddings(project, func: str) -> None:
    if not getattr(project, "has_embeddings", False):
        name = getattr(project, "name", "")
        raise SchemaError(
            f"{func}: project {name!r} has no embeddings, which near duplicates, outliers, "
            "non-iid data and underperforming groups are found on. Compute them with "
            "`workbench embed PROJECT` (an offline baseline), or add your model's "
            "embeddings.parquet (item_id + one numeric column per dimension) to the project "
            "folder; exact duplicates alone need none: "
            "issue_types=['exact_duplicate'].")


def _labels_and_probs(project, ids: np.ndarray, run: str | None
                      ) -> tuple[np.ndarray, np.ndarray] | str:
    """Integer labels 0..m-1 and matching probability columns, or why there are none."""
    if not getattr(project, "runs", None):
        return "the project has no predictions"
    if not project.prob_columns:
        return "the predictions have no prob_<class> columns"
    pred_ids, probs = project.pred_probs(run)
    pos = pd.Index(pred_ids).get_indexer(ids)
    ref = project.reference_labels().reindex(ids)
    missing = (pos < 0) | ref.isna().to_numpy()
    if missing.any():
        shown = list(ids[missing][:5])
        return (f"{int(missing.sum())} item(s) with embeddings have no reference label or "
                f"no prediction in run {run or project.default_run!r}, e.g. {shown}")
    codes = pd.Categorical(ref.to_numpy(), categories=project.classes).codes
    present = np.unique(codes)
    # Datalab maps labels through np.unique: give it 0..m-1 and the m matching columns
    return np.searchsorted(present, codes), probs[pos][:, present]


def _datalab_issues(project, types: list[str], k: int, run: str | None, *,
                    required: bool) -> tuple[pd.DataFrame, dict, dict]:
    from ._cleanlab_adapter import find_issues
    from .embeddings import knn_graph

    func = "data_issues"
    ids, features = project.embedding_matrix()
    ids = np.asarray(ids, dtype=str)
    if len(ids) <= k:
        raise ValueError(f"The 'k' parameter of {func} must be an int smaller than the number "
                         f"of items with embeddings ({len(ids)}). Got {k!r} instead.")
    skipped: dict[str, str] = {}
    labels = pred_probs = None
    if "underperforming_group" in types:
        got = _labels_and_probs(project, ids, run)
        if isinstance(got, str):
            if required:
                raise SchemaError(f"{func}: underperforming_group needs a reference label and "
                                  f"class probabilities for every item; {got}. Add them, or "
                                  "leave underperforming_group out of issue_types.")
            skipped["underperforming_group"] = got
            types = [t for t in types if t != "underperforming_group"]
        else:
            labels, pred_probs = got
    graph = knn_graph(project, k=k)
    found_all = find_issues(types, k=k, features=features, knn_graph=graph, labels=labels,
                            pred_probs=pred_probs)
    rows: list[tuple] = []
    info: dict = {}
    for issue_type in types:
        if issue_type not in found_all.issues:
            reason = found_all.errors.get(issue_type, "cleanlab did not run it")
            if required:
                raise SchemaError(f"{func}: cleanlab could not check {issue_type}: {reason}")
            skipped[issue_type] = reason
            continue
        found = found_all.issues[issue_type]
        details = found_all.info[issue_type]
        flagged = np.flatnonzero(found[f"is_{issue_type}_issue"].to_numpy(dtype=bool))
        severity = 1.0 - found[f"{issue_type}_score"].to_numpy(dtype=float)
        if issue_type == "near_duplicate":
            names = ids.tolist()
            groups = near_duplicate_groups(details["near_duplicate_sets"], flagged)
            for i in flagged.tolist():
                others = sorted(names[j] for j in groups[i] if j != i)
                rows.append((names[i], issue_type, float(severity[i]), others))
        elif issue_type == "underperforming_group":
            stats = details.get("clustering", {}).get("stats", {})
            cluster = stats.get("cluster_ids")
            for i in flagged:
                group = "" if cluster is None else f"group {int(cluster[i])}"
                rows.append((str(ids[i]), issue_type, float(severity[i]), group))
            info[issue_type] = {"n_groups": stats.get("n_clusters")}
        else:
            for i in flagged:
                rows.append((str(ids[i]), issue_type, float(severity[i]), []))
            if issue_type == "non_iid":
                info[issue_type] = {"p_value": float(details.get("p-value", np.nan))}
    return _frame(rows), skipped, info


def near_duplicate_groups(sets, flagged: np.ndarray) -> dict[int, list[int]]:
    """Each flagged item's whole group of near duplicates (positions), itself included.

    cleanlab's ``near_duplicate_sets`` give each item its near duplicates among its ``k``
    nearest neighbours only: in a group of more than ``k + 1`` twins an item's set misses
    some of them, and a twin in another split can be missed with them. The groups are the
    connected components of the near-duplicate relation (an item, its set, their sets).

    Parameters
    ----------
    sets : sequence of array-like of int
        ``near_duplicate_sets`` from cleanlab's ``Datalab`` info, one per item.
    flagged : ndarray of int
        Positions of the items flagged as near duplicates.

    Returns
    -------
    dict
        ``{position: sorted positions of its group}`` for every flagged position.

    Examples
    --------
    >>> sets = [np.array([1]), np.array([0, 2]), np.array([1]), np.array([], dtype=int)]
    >>> near_duplicate_groups(sets, np.array([0, 1, 2]))[0]
    [0, 1, 2]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(sets)
    src = [np.full(len(sets[i]), i, dtype=np.int64) for i in flagged.tolist()]
    dst = [np.asarray(sets[i], dtype=np.int64) for i in flagged.tolist()]
    src = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    dst = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(np.isin(component, component[flagged])).tolist():
        members.setdefault(int(component[i]), []).append(i)
    return {i: members[int(component[i])] for i in flagged.tolist()}


# --------------------------------------------------------------------------------------
# the frame
# --------------------------------------------------------------------------------------


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows ``(item_id, issue_type, score, related ids or a group name)`` as a frame."""
    related_ids = [r[3] if isinstance(r[3], list) else [] for r in rows]
    related = [", ".join(r[3]) if isinstance(r[3], list) else r[3] for r in rows]
    return pd.DataFrame({
        "item_id": pd.array([r[0] for r in rows], dtype="str"),
        "issue_type": pd.array([r[1] for r in rows], dtype="str"),
        "score": np.array([r[2] for r in rows], dtype=float),
        "related": pd.array(related, dtype="str"),
        "related_ids": pd.Series(related_ids, dtype=object),
    })


def _with_splits(project, frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``split_pair`` (the splits a duplicate group spans) and ``is_leak``."""
    pair = np.full(len(frame), None, dtype=object)
    if _SPLIT in project.items.columns and len(frame):
        split = pd.Categorical(project.items[_SPLIT].astype("str"))
        categories = [str(c) for c in split.categories]
        codes = np.append(split.codes, -1)  # position -1 (an unknown id): no split
        where = pd.Index(project.items["item_id"].astype(str))
        dup = np.flatnonzero(frame["issue_type"].isin(DUPLICATE_TYPES).to_numpy())
        groups = [[item, *others] for item, others in zip(
            frame["item_id"].to_numpy()[dup], frame["related_ids"].to_numpy()[dup],
            strict=True)]
        if groups:
            sizes = np.fromiter((len(g) for g in groups), dtype=np.int64, count=len(groups))
            pos = where.get_indexer(np.concatenate(groups))
            got = codes[pos]
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            low = np.minimum.reduceat(np.where(got < 0, np.iinfo(np.int16).max, got), starts)
            high = np.maximum.reduceat(got, starts)
            for row in np.flatnonzero((high >= 0) & (low < high)):  # spans 2+ splits
                g = got[starts[row]:starts[row] + sizes[row]]
                names = sorted(categories[c] for c in set(g[g >= 0].tolist()))
                pair[dup[row]] = " | ".join(names)
    frame["split_pair"] = pd.array(pair, dtype="str")
    frame["is_leak"] = frame["split_pair"].notna().to_numpy()
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    order = {t: i for i, t in enumerate(ISSUE_TYPES)}
    key = frame["issue_type"].map(order).astype(int)
    frame = frame.assign(_leak=~frame["is_leak"], _type=key).sort_values(
        ["_leak", "_type", "score", "item_id"], ascending=[True, True, False, True],
        kind="stable")
    return frame.drop(columns=["_leak", "_type"]).reset_index(drop=True)[COLUMNS]


def _check_types(issue_types, func: str) -> tuple[list[str], bool]:
    if issue_types is None:
        return list(ISSUE_TYPES), False
    if isinstance(issue_types, str):
        issue_types = [issue_types]
    if not isinstance(issue_types, Iterable):
        raise TypeError(f"The 'issue_types' parameter of {func} must be a list of str among "
                        f"{{{', '.join(repr(t) for t in ISSUE_TYPES)}}} or None. Got "
                        f"{issue_types!r} instead.")
    wanted = list(dict.fromkeys(issue_types))
    for t in wanted:
        check_option(t, "issue_types", func, ISSUE_TYPES)
    if not wanted:
        raise ValueError(f"The 'issue_types' parameter of {func} must name at least one issue "
                         "type. Got an empty list instead.")
    return [t for t in ISSUE_TYPES if t in wanted], True


def data_issues(project, *, k: int = 10, run: str | None = None,
                issue_types: Iterable[str] | None = None) -> pd.DataFrame:
    """Per item, what is wrong with the data itself; leaks across splits first.

    Parameters
    ----------
    project : Project
        A classification project with embeddings (``embeddings.parquet``, see
        docs/embeddings.md; ``workbench embed PROJECT`` computes a baseline).
    k : int, default=10
        Neighbours per item in the shared nearest-neighbour graph
        (:func:`workbench.embeddings.knn_graph`, built once per project).
    run : str, default=None
        The run whose probabilities ``underperforming_group`` uses (None: the default run).
    issue_types : list of str, default=None
        Among ``'exact_duplicate'``, ``'near_duplicate'``, ``'outlier'``, ``'non_iid'``,
        ``'underperforming_group'``; None means all of them, with ``underperforming_group``
        skipped (reason in ``frame.attrs['skipped']``) when the project has no reference
        label and class probabilities for every item. ``['exact_duplicate']`` alone needs no
        embeddings.

    Returns
    -------
    DataFrame
        One row per flagged item and issue type: ``item_id``, ``issue_type``, ``score``
        (severity in [0, 1], higher = worse: 1 - cleanlab's quality score, 1 for an exact
        duplicate), ``related`` (str: the duplicate ids, comma-separated, or the group of an
        underperforming group), ``related_ids`` (list of str: the duplicates),
        ``split_pair`` (the ``split`` values a duplicate group spans, ``"test | train"``;
        NA when it stays in one split) and ``is_leak`` (bool: a duplicate across splits).
        Leaks come first, then by issue type, most severe first. ``frame.attrs`` holds
        ``k``, ``skipped`` ({issue_type: reason}) and ``info`` (``non_iid``'s p-value).

    Raises
    ------
    SchemaError
        The project has no embeddings (the message names ``workbench embed``), or an issue
        type asked for explicitly cannot be checked.
    ValueError
        A bad parameter (scikit-learn style), or ``k`` not smaller than the number of items
        with embeddings.

    See Also
    --------
    leakage, leakage_inflation, data_issue_flags

    Notes
    -----
    ``non_iid`` is a property of the whole data set (cleanlab flags at most the one least
    typical item, and only when the permutation test finds the item order not independent);
    its p-value is in ``frame.attrs['info']``.
    """
    func = "data_issues"
    k = check_int(k, "k", func, minimum=1)
    types, explicit = _check_types(issue_types, func)
    if run is not None:
        project._check_run(run, func)
    key = (k, run, tuple(types), explicit)
    cache = _CACHE.setdefault(project, {})
    if key in cache:
        return _copy(cache[key])
    parts = []
    skipped: dict[str, str] = {}
    info: dict = {}
    wanted = [t for t in types if t in DATALAB_TYPES]
    if wanted:  # before hashing every file
        _require_embeddings(project, func)
    if "exact_duplicate" in types:
        parts.append(_exact_duplicates(project))
    if wanted:
        found, skipped, info = _datalab_issues(project, wanted, k, run, required=explicit)
        parts.append(found)
    frame = _sorted(_with_splits(project, pd.concat(parts, ignore_index=True)))
    frame.attrs.update({"k": k, "skipped": skipped, "info": info})
    cache[key] = frame
    return _copy(frame)


def _copy(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["related_ids"] = [list(x) for x in frame["related_ids"]]
    out.attrs = {key: (dict(v) if isinstance(v, dict) else v)
                 for key, v in frame.attrs.items()}
    return out


# --------------------------------------------------------------------------------------
# leakage
# --------------------------------------------------------------------------------------


def _require_split(project, func: str) -> None:
    if _SPLIT not in project.items.columns:
        raise SchemaError(
            f"{func}: the items have no 'split' column, so there is nothing to leak between. "
            "Add a 'split' column (train/validation/test...) to items.csv.")


def leakage(project, *, k: int = 10) -> pd.DataFrame:
    """Duplicates and near-duplicates whose group spans several ``split`` values.

    Parameters
    ----------
    project : Project
        With a ``split`` item column. Near duplicates need embeddings; without them only
        exact duplicates (content hashes) are checked (``frame.attrs['skipped']`` says so).
    k : int, default=10
        Neighbours in the shared nearest-neighbour graph.

    Returns
    -------
    DataFrame
        The leak rows of :func:`data_issues` (same columns, plus ``split``, the item's own
        split), most severe first.

    Raises
    ------
    SchemaError
        The items have no ``split`` column.
    """
    func = "leakage"
    k = check_int(k, "k", func, minimum=1)
    _require_split(project, func)
    types = ["exact_duplicate"]
    skipped = {}
    if getattr(project, "has_embeddings", False):
        types.append("near_duplicate")
    else:
        skipped["near_duplicate"] = ("the project has no embeddings (run `workbench embed "
                                     "PROJECT`); only exact duplicates were checked")
    issues = data_issues(project, k=k, issue_types=types)
    leaks = issues[issues["is_leak"]].reset_index(drop=True)
    split = project.items.set_index(project.items["item_id"].astype(str))[_SPLIT]
    leaks.insert(1, "split", pd.array(split.reindex(leaks["item_id"]).astype("str")
                                      .to_numpy(), dtype="str"))
    leaks.attrs.update({"k": k, "skipped": {**issues.attrs.get("skipped", {}), **skipped}})
    return leaks


def leakage_inflation(project, run: str | None = None, *, split: str = "test",
                      k: int = 10, leaks: pd.DataFrame | None = None) -> pd.DataFrame:
    """How much the leaked items flatter the error rate of the ``split`` (per run).

    The leaked items of the split are those with a duplicate or near-duplicate in another
    split (:func:`leakage`): the model has seen them, or their twins, in training. The
    error rate is computed on the split's items with and without them.

    Parameters
    ----------
    project : Project
        With a ``split`` column and predictions.
    run : str, default=None
        One run; None means every run of the project.
    split : str, default='test'
        The evaluation split (a value of the ``split`` column).
    k : int, default=10
        Neighbours in the shared graph (see :func:`leakage`).
    leaks : DataFrame, default=None
        A ready :func:`leakage` frame (computed when None).

    Returns
    -------
    DataFrame
        One row per run: ``run``, ``split``, ``n_items`` (items of the split with a
        prediction and a reference label), ``n_leaked``, ``error_rate`` (all of them),
        ``error_rate_without_leaks`` and ``inflation`` (``error_rate_without_leaks -
        error_rate``: how many points of accuracy the leaks add; positive = the reported
        accuracy is too good).

    Raises
    ------
    SchemaError
        No ``split`` column.
    ValueError
        ``split`` is not a value of the column, or ``run`` is not a run of the project.
    """
    from .slicing import project_errors

    func = "leakage_inflation"
    _require_split(project, func)
    values = sorted(pd.unique(project.items[_SPLIT].dropna().astype(str)))
    check_option(split, "split", func, values)
    runs = list(project.runs) if run is None else [run]
    if run is not None:
        check_option(run, "run", func, list(project.runs))
    if not runs:
        raise SchemaError(f"{func}: the project has no predictions, so there is no error "
                          "rate to inflate. Add a predictions file.")
    if leaks is None:
        leaks = leakage(project, k=k)
    leaks = check_columns(leaks, ["item_id", "split"], what="leaks", func=func)
    leaked = set(leaks.loc[leaks["split"] == split, "item_id"].astype(str))
    in_split = set(project.items.loc[project.items[_SPLIT].astype(str) == split, "item_id"]
                   .astype(str))
    rows = []
    for r in runs:
        errors = project_errors(project, r)
        ids = errors["item_id"].astype(str)
        sub = errors[ids.isin(in_split).to_numpy()]
        bad = sub["is_error"].to_numpy(dtype=bool)
        is_leaked = sub["item_id"].astype(str).isin(leaked).to_numpy()
        rate = bad.mean() if len(bad) else np.nan
        clean = bad[~is_leaked].mean() if (~is_leaked).any() else np.nan
        rows.append({"run": r, "split": split, "n_items": int(len(sub)),
                     "n_leaked": int(is_leaked.sum()), "error_rate": float(rate),
                     "error_rate_without_leaks": float(clean),
                     "inflation": float(clean - rate)})
    frame = pd.DataFrame(rows)
    for col in ("run", "split"):
        frame[col] = frame[col].astype("str")
    return frame


# --------------------------------------------------------------------------------------
# flags for discover_slices
# --------------------------------------------------------------------------------------


def data_issue_flags(project, *, k: int = 10) -> pd.DataFrame:
    """Per item: ``is_outlier`` and ``is_duplicate``, with the metadata, for slicing.

    ``discover_slices(data_issue_flags(project), target="is_outlier")`` finds the metadata
    slices where outliers (or, with ``target="is_duplicate"``, exact or near duplicates)
    concentrate. Merge it into an errors frame
    (``errors.merge(flags[["item_id", "is_outlier"]], on="item_id")``) to slice both.

    Parameters
    ----------
    project : Project
        With embeddings (see :func:`data_issues`).
    k : int, default=10
        Neighbours in the shared graph.

    Returns
    -------
    DataFrame
        ``item_id``, every metadata column, ``is_outlier``, ``is_duplicate`` (bool), one row
        per item with an embedding (items order); ``frame.attrs['metadata_columns']`` lists
        the metadata columns (the default features of ``discover_slices``).
    """
    func = "data_issue_flags"
    k = check_int(k, "k", func, minimum=1)
    _require_embeddings(project, func)
    issues = data_issues(project, k=k,
                         issue_types=["exact_duplicate", "near_duplicate", "outlier"])
    ids, _ = project.embedding_matrix()
    ids = pd.Index(np.asarray(ids, dtype=str))
    meta = list(project.metadata_columns)
    items = project.items.set_index(project.items["item_id"].astype(str))
    frame = items.loc[ids, meta].reset_index(drop=True)
    frame.insert(0, "item_id", pd.array(ids.to_numpy(), dtype="str"))
    kind = issues["issue_type"]
    frame["is_outlier"] = ids.isin(issues.loc[kind == "outlier", "item_id"])
    frame["is_duplicate"] = ids.isin(issues.loc[kind.isin(DUPLICATE_TYPES), "item_id"])
    frame.attrs["metadata_columns"] = meta
    return frame

