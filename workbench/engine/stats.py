"""The workbench's statistics on the engine's small aggregated tables.

Each ``engine_*`` function counts where the data lives (:mod:`workbench.engine.aggregates`)
and computes the statistics in pandas with the helpers of :mod:`workbench.slicing` and
:mod:`workbench.agreement` (Wilson intervals, two-proportion / Fisher tests,
Benjamini-Hochberg), so it returns the frame the pandas function returns on the loaded
project:

=====================================  ==================================================
engine function                        equals
=====================================  ==================================================
``engine_confusion_table(t, run)``     ``confusion_table(project.errors(run))``
``engine_slice_metrics(t, run, by)``   ``slice_metrics(project.errors(run), by)``
``engine_discover_slices(t, run)``     ``discover_slices(project.errors(run))``
``engine_pairwise_agreement(t)``       ``pairwise_agreement(project.annotations)``
``engine_agreement_summary(t)``        ``agreement_summary(project.annotations)``
``engine_slice_items(t, run, cond)``   ``slice_items(project.errors(run), cond)``
``engine_cell_items(t, run, tr, pr)``   ``cell_items(project.errors(run), tr, pr)``
=====================================  ==================================================
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._validation import check_fraction, check_int, check_option
from ..errors import SchemaError
from . import aggregates as agg
from .tables import EngineTables, _ibis

__all__ = [
    "engine_confusion_table",
    "engine_cell_items",
    "engine_slice_metrics",
    "engine_discover_slices",
    "engine_slice_items",
    "engine_pairwise_agreement",
    "engine_agreement_summary",
]

#: Most feature combinations :func:`engine_discover_slices` fetches as its joint table.
MAX_CELLS = 20_000_000


def _categories(tables: EngineTables, counts: pd.DataFrame) -> list[str]:
    """The project's classes, then the sorted labels seen outside them (project_errors)."""
    classes = list(tables.classes)
    seen = set(counts["label"].astype(str)) | set(counts["predicted"].astype(str))
    return classes + sorted(seen - set(classes))


def engine_confusion_table(tables: EngineTables, run: str | None = None,
                           normalize: str | None = None) -> pd.DataFrame:
    """:func:`workbench.confusion_table` of a run, counted in the engine.

    Parameters
    ----------
    tables : EngineTables
        From :func:`workbench.engine.register_project`.
    run : str, default=None
        None: the project's default run.
    normalize : {'true', 'pred', 'all'}, default=None
        As in :func:`workbench.confusion_table`.

    Returns
    -------
    DataFrame
        Equal to ``confusion_table(project.errors(run), normalize)``.
    """
    from ..slicing import _confusion_frame

    check_option(normalize, "normalize", "engine_confusion_table", ["true", "pred", "all"],
                 allow_none=True)
    counts = agg.confusion_counts(agg.errors_table(tables, run))
    classes = _categories(tables, counts)
    k = len(classes)
    pos = {c: i for i, c in enumerate(classes)}
    mat = np.zeros((k, k), dtype=np.int64)
    for t, p, n in counts[["label", "predicted", "n"]].itertuples(index=False):
        mat[pos[str(t)], pos[str(p)]] += int(n)
    return _confusion_frame(mat, classes, normalize)


def _columns(tables: EngineTables, by, name: str, func: str) -> list[str]:
    meta = tables.metadata_columns
    cols = meta if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [c for c in cols if c not in meta]
    if missing:
        files = [str(f) for f in tables.files.get("items", [])]
        raise SchemaError(f"{func}: the items table ({', '.join(files) or 'items'}) has no "
                          f"metadata column(s) {missing}. It has {meta}. Pass {name} from "
                          "those.")
    return list(cols)


class _Kept:
    """A table kept by ``EngineTables.prepare``: nothing to drop after the call."""

    def __init__(self, table):
        self.table = table

    def drop(self) -> None:
        """Nothing: the tables own it."""


def _errors(tables: EngineTables, run, cols: list[str], label: bool = False):
    """The run's errors table reduced to ``is_error`` and ``cols``, computed once.

    The table of ``tables.prepare(run)`` when there is one, else a temporary Parquet copy
    (dropped after the call).
    """
    keep = ["is_error", *cols] + (["label"] if label else [])
    prepared = tables.prepared(run)
    if prepared is not None:
        return _Kept(prepared.select(*keep))
    return agg.Materialized(agg.errors_table(tables, run).select(*keep))


def _bucket(tables: EngineTables, run, errors, col: str, bins) -> agg.Bucket:
    """``aggregates.bucket``; on a prepared run, the bin edges are computed once."""
    if tables.prepared(run) is None:
        return agg.bucket(errors, col, bins)
    key = (tables.run(run, "bucket"), col, bins)
    edges = tables._edges.get(key, False)
    if edges is False:
        b = agg.bucket(errors, col, bins)
        tables._edges[key] = b.edges
        return b
    return agg.binned(errors, col, edges) if edges is not None else agg.Bucket(col, errors[col])


def _joint(tables: EngineTables, run, errors, cols: list[str], bins, buckets,
           max_cells: int):
    """The joint counts of ``cols`` (``aggregates.cube_counts``), kept per prepared run.

    None when the levels have more than ``max_cells`` combinations.
    """
    key = (tables.run(run, "joint"), tuple(cols), bins)
    prepared = tables.prepared(run) is not None
    if prepared and key in tables._cubes:
        return tables._cubes[key]
    if not buckets or math.prod(agg.level_counts(errors, buckets)) > max_cells:
        return None
    cube = agg.cube_counts(errors, buckets)
    if prepared:
        tables._cubes[key] = cube
    return cube


def engine_slice_metrics(tables: EngineTables, run: str | None = None,
                         by: str | Sequence[str] | None = None, *, bins: int | None = 4,
                         per_class_recall: bool = False) -> pd.DataFrame:
    """:func:`workbench.slice_metrics` of a run's errors, counted in the engine.

    Parameters
    ----------
    tables : EngineTables
    run : str, default=None
        None: the project's default run.
    by : str or list of str, default=None
        Metadata columns; None: all.
    bins : int, default=4
        Quantile bins of numeric columns, as in :func:`workbench.slice_metrics`.
    per_class_recall : bool, default=False
        Add ``recall_<class>`` columns.

    Returns
    -------
    DataFrame
        Equal to ``slice_metrics(project.errors(run), by, bins=bins,
        per_class_recall=per_class_recall)`` (target ``is_error``): one group-by per column
        (plus a few order-statistic queries per binned numeric column) runs in the engine,
        the intervals and tests in pandas.
    """
    from ..slicing import _metrics_from_counts

    func = "engine_slice_metrics"
    if bins is not None:
        check_int(bins, "bins", func, minimum=0)
    cols = _columns(tables, by, "by", func)
    held = _errors(tables, run, cols, label=per_class_recall)
    errors = held.table
    try:
        total_n, total_s = agg.totals(errors)
        overall = total_s / total_n if total_n else np.nan
        classes: list[str] = []
        if per_class_recall:
            seen = errors.select("label").distinct().execute()["label"].astype(str)
            classes = list(tables.classes) + sorted(set(seen) - set(tables.classes))
        parts = []
        bin_edges: dict[str, list[float]] = {}
        cube = None
        if not per_class_recall and tables.prepared(run) is not None:
            # a prepared run: one joint count of the columns, kept for discover_slices too
            buckets = [_bucket(tables, run, errors, c, bins) for c in cols]
            cube = _joint(tables, run, errors, cols, bins, buckets, MAX_CELLS)
        for i, col in enumerate(cols):
            b = _bucket(tables, run, errors, col, bins)
            if cube is not None:
                counts = cube.groupby(f"k{i}", dropna=False, sort=False)[["n", "s"]].sum(
                    ).rename_axis("key").reset_index()
            else:
                counts = agg.slice_counts(errors, b)
            lv = agg.levels(b, counts["key"])
            k = len(lv.values)
            codes = lv.codes(counts["key"])
            n = np.zeros(k)
            s = np.zeros(k)
            np.add.at(n, codes, counts["n"].to_numpy(dtype=float))
            np.add.at(s, codes, counts["s"].fillna(0).to_numpy(dtype=float))
            if lv.edges is not None:
                bin_edges[col] = lv.edges
            part = {"column": [col] * k, "value": list(lv.values), "bin": lv.labels,
                    "n": n.astype(np.int64), "errors": s.astype(np.int64), "_s": s, "_ss": s}
            if per_class_recall:
                part.update(_recall(errors, b, lv, classes))
            parts.append(pd.DataFrame(part))
    finally:
        held.drop()
    return _metrics_from_counts(parts, binary=True, total_n=total_n,
                                total_s=float(total_s), total_ss=float(total_s),
                                overall=overall, bin_edges=bin_edges,
                                target="is_error")


def _recall(errors, b, lv, classes: list[str]) -> dict:
    counts = errors.group_by(key=b.expr, label=errors.label).aggregate(
        n=_ibis()._.count(), hit=(~errors.is_error).cast("int64").sum()).execute()
    k, kc = len(lv.values), len(classes)
    codes = lv.codes(counts["key"])
    cpos = pd.Index(classes).get_indexer(counts["label"].astype(str))
    cnt = np.zeros((k, kc))
    hit = np.zeros((k, kc))
    np.add.at(cnt, (codes, cpos), counts["n"].to_numpy(dtype=float))
    np.add.at(hit, (codes, cpos), counts["hit"].to_numpy(dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = hit / cnt
    return {f"recall_{c}": rec[:, j] for j, c in enumerate(classes)}


# --------------------------------------------------------------------------------------
# slice discovery
# --------------------------------------------------------------------------------------


def _condition(b: agg.Bucket, lv: agg.Levels, code: int):
    """The engine predicate of ``feature = level code``."""
    value = lv.values[code]
    if b.binned:
        return b.expr == code
    if value is None:
        return b.expr.isnull()
    return b.expr == value


def engine_slice_items(tables: EngineTables, run: str | None = None,
                       conditions: dict | None = None, *, limit: int | None = None
                       ) -> list[str]:
    """Item ids of the run's errors table meeting every ``column: value`` condition.

    Only these rows are fetched (for the gallery), in item order.

    Parameters
    ----------
    tables : EngineTables
    run : str, default=None
    conditions : dict
        ``{column: value}``; a value may be a ``pandas.Interval`` (a bin, as returned by
        :func:`engine_slice_metrics`/:func:`engine_discover_slices`) or None (missing).
    limit : int, default=None
        Most ids returned (the first in item order); None: all.

    Returns
    -------
    list of str
        Equal to ``slice_items(project.errors(run), conditions)`` (up to ``limit``).
    """
    func = "engine_slice_items"
    conditions = dict(conditions or {})
    _columns(tables, list(conditions), "conditions", func)
    limit = check_int(limit, "limit", func, minimum=0, allow_none=True)
    e = agg.errors_table(tables, run)
    for col, value in conditions.items():
        x = e[col]
        if isinstance(value, pd.Interval):
            xf = x.cast("float64")
            lo = xf >= value.left if value.closed in ("left", "both") else xf > value.left
            hi = xf <= value.right if value.closed in ("right", "both") else xf < value.right
            e = e.filter(lo & hi)
        elif value is None or (not isinstance(value, str) and pd.isna(value)):
            e = e.filter(x.isnull())
        else:
            e = e.filter(x == value)
    return _ids_in_order(e, limit)


def engine_cell_items(tables: EngineTables, run: str | None = None, true: str | None = None,
                      predicted: str | None = None, *, limit: int | None = None
                      ) -> list[str]:
    """Item ids behind one cell of :func:`engine_confusion_table`, in item order.

    Parameters
    ----------
    tables : EngineTables
    run : str, default=None
    true, predicted : str or None
        The row and column of the cell; None matches every class.
    limit : int, default=None
        Most ids returned (the first in item order); None: all.

    Returns
    -------
    list of str
        Equal to ``cell_items(project.errors(run), true, predicted)`` (up to ``limit``).
    """
    limit = check_int(limit, "limit", "engine_cell_items", minimum=0, allow_none=True)
    e = agg.errors_table(tables, run)
    if true is not None:
        e = e.filter(e.label == str(true))
    if predicted is not None:
        e = e.filter(e.predicted == str(predicted))
    return _ids_in_order(e, limit)


def _ids_in_order(e, limit: int | None) -> list[str]:
    e = e.select("item_id", "_row").order_by("_row")
    if limit is not None:
        e = e.limit(limit)
    return e.execute()["item_id"].astype(str).tolist()


def _min_support(min_support, total_n: int, func: str) -> int:
    if min_support is None:
        return max(20, int(math.ceil(0.01 * total_n)))
    if isinstance(min_support, float) and not isinstance(min_support, bool):
        if not 0 < min_support < 1:
            raise ValueError(f"The 'min_support' parameter of {func} must be an int in the "
                             "range [1, inf), a float in the range (0, 1) or None. Got "
                             f"{min_support!r} instead.")
        return max(1, int(math.ceil(min_support * total_n)))
    return check_int(min_support, "min_support", func, minimum=1)


def engine_discover_slices(tables: EngineTables, run: str | None = None,
                           features: Sequence[str] | None = None, max_order: int = 2,
                           min_support: int | float | None = None, top: int | None = 20, *,
                           bins: int | None = 4, alpha: float = 0.05,
                           min_refinement: float = 0.1, prune_explained: bool = True,
                           item_ids: bool = False, max_cells: int = MAX_CELLS
                           ) -> pd.DataFrame:
    """:func:`workbench.discover_slices` of a run's errors, counted in the engine.

    The engine returns one small table, the items and errors of every combination of the
    features' levels present (the *joint table*; numeric features cut into their quantile
    bins); the slices' counts, the apriori pruning, the tests, the Benjamini-Hochberg
    correction and the pruning of explained slices run on it in pandas, weighted by its
    counts, which gives exactly the numbers of the per-item computation.

    Parameters
    ----------
    tables : EngineTables
    run : str, default=None
    features, max_order, min_support, top, bins, alpha, min_refinement, prune_explained
        As in :func:`workbench.discover_slices` (target ``is_error``).
    item_ids : bool, default=False
        Fetch the ``item_ids`` of each returned slice (one filtered query per slice). False
        leaves the column None: fetch a slice's items when a curator opens it
        (:func:`engine_slice_items` with its ``conditions``).
    max_cells : int, default=MAX_CELLS
        Most combinations of levels (the product of the features' level counts) the joint
        table may have. Beyond it, with ``prune_explained=False`` and ``max_order <= 2``,
        the engine counts each pair of features instead; otherwise a ValueError says to
        pass fewer features.

    Returns
    -------
    DataFrame
        Equal to ``discover_slices(project.errors(run), features, max_order, min_support,
        top, bins=bins, alpha=alpha, min_refinement=min_refinement,
        prune_explained=prune_explained)`` (with ``item_ids=True``; else the ``item_ids``
        column holds None).
    """
    from ..slicing import _DISCOVER_COLUMNS

    func = "engine_discover_slices"
    max_order = check_int(max_order, "max_order", func, minimum=1)
    top = check_int(top, "top", func, minimum=1, allow_none=True)
    if bins is not None:
        check_int(bins, "bins", func, minimum=0)
    alpha = check_fraction(alpha, "alpha", func)
    min_refinement = check_fraction(min_refinement, "min_refinement", func, high=np.inf)
    max_cells = check_int(max_cells, "max_cells", func, minimum=1)
    feats = _columns(tables, features, "features", func)
    held = _errors(tables, run, feats)
    errors = held.table
    try:
        total_n, total_s_int = agg.totals(errors)
        min_n = _min_support(min_support, total_n, func)
        buckets = [_bucket(tables, run, errors, f, bins) for f in feats]
        cube = _joint(tables, run, errors, feats, bins, buckets, max_cells)
        if cube is not None or not buckets:
            lvs = [agg.levels(b, cube[f"k{i}"]) for i, b in enumerate(buckets)]
            counted = _from_cube(cube, lvs, min_n, max_order)
        elif prune_explained or max_order > 2:
            cells = math.prod(agg.level_counts(errors, buckets))
            raise ValueError(
                f"{func}: the features {feats} have {cells:,} combinations of levels, more "
                f"than max_cells={max_cells:,}, which prune_explained (or max_order > 2) "
                "needs as one table. Pass fewer features (or numeric ones with fewer bins), "
                "a larger max_cells, or prune_explained=False with max_order <= 2.")
        else:
            singles = [agg.slice_counts(errors, b) for b in buckets]
            lvs = [agg.levels(b, c["key"]) for b, c in zip(buckets, singles, strict=True)]
            counted = _from_pairs(errors, buckets, singles, lvs, min_n, max_order)
    finally:
        held.drop()
    frame = _discover_stats(counted, lvs, feats, total_n, float(total_s_int), min_n, top, alpha,
                            min_refinement, prune_explained)
    if item_ids and len(frame):
        frame["item_ids"] = [engine_slice_items(tables, run, c) for c in frame["conditions"]]
    frame = frame[_DISCOVER_COLUMNS].reset_index(drop=True)
    frame.attrs.update({
        "overall_rate": total_s_int / total_n if total_n else np.nan, "n": total_n,
        "n_tested": len(counted["keys"]), "min_support": min_n, "max_order": max_order,
        "alpha": alpha, "min_refinement": min_refinement,
        "prune_explained": prune_explained, "target": "is_error",
        "features": feats, "score": "(rate - overall_rate) * sqrt(n)",
        "tests": "one-sided two-proportion z-test (Fisher exact when an expected count < 5)"
                 ", Benjamini-Hochberg over all tested slices",
    })
    return frame


def _supported(lvs, singles_n: list[np.ndarray], min_n: int):
    """Features with a supported level, and each one's codes remapped (unsupported -> k)."""
    encs, remaps, ks = [], [], []
    for f, (lv, cnt) in enumerate(zip(lvs, singles_n, strict=True)):
        k = len(lv.values)
        supported = cnt >= min_n
        if supported.sum() == 0:
            continue
        encs.append(f)
        remaps.append(np.where(supported, np.arange(k), k))
        ks.append(k)
    return encs, remaps, ks


def _from_cube(cube, lvs, min_n: int, max_order: int) -> dict:
    """Candidate slices counted on the joint table (weights = its item counts)."""
    from ..slicing import _candidates

    if cube is None:
        return {"keys": [], "ns": [], "ss": [], "encs": [], "codes": [],
                "w": np.zeros(0), "y": np.zeros(0)}
    w = cube["n"].to_numpy(dtype=float)
    y = cube["s"].fillna(0).to_numpy(dtype=float)
    raw_codes = [lv.codes(cube[f"k{i}"]) for i, lv in enumerate(lvs)]
    singles_n = [np.bincount(c, weights=w, minlength=len(lv.values))
                 for c, lv in zip(raw_codes, lvs, strict=True)]
    encs, remaps, ks = _supported(lvs, singles_n, min_n)
    codes = [remaps[j][raw_codes[f]].astype(np.intp) for j, f in enumerate(encs)]

    keys, ns, ss = _candidates(codes, ks, y, w, min_n, max_order)
    return {"keys": keys, "ns": ns, "ss": ss, "encs": encs, "codes": codes, "w": w, "y": y}


def _from_pairs(errors, buckets, singles, lvs, min_n: int, max_order: int) -> dict:
    """Candidate slices of order 1 and 2 counted by one engine group-by per feature pair."""
    singles_n, singles_s = [], []
    for lv, c in zip(lvs, singles, strict=True):
        codes = lv.codes(c["key"])
        n = np.zeros(len(lv.values))
        s = np.zeros(len(lv.values))
        np.add.at(n, codes, c["n"].to_numpy(dtype=float))
        np.add.at(s, codes, c["s"].fillna(0).to_numpy(dtype=float))
        singles_n.append(n)
        singles_s.append(s)
    encs, remaps, ks = _supported(lvs, singles_n, min_n)
    keys: list[tuple] = []
    ns: list[float] = []
    ss: list[float] = []
    found = set()
    for j, f in enumerate(encs):
        for c in np.flatnonzero(remaps[j] < ks[j]).tolist():
            if singles_n[f][c] >= min_n:
                keys.append(((j, c),))
                ns.append(float(singles_n[f][c]))
                ss.append(float(singles_s[f][c]))
                found.add(j)
    if max_order >= 2:
        for a, b in itertools.combinations(range(len(encs)), 2):
            if a not in found or b not in found:
                continue
            fa, fb = encs[a], encs[b]
            pc = agg.pair_counts(errors, buckets[fa], buckets[fb])
            ca = remaps[a][lvs[fa].codes(pc["ka"])]
            cb = remaps[b][lvs[fb].codes(pc["kb"])]
            ok = (ca < ks[a]) & (cb < ks[b])
            size = (ks[a] + 1) * (ks[b] + 1)
            code = ca * (ks[b] + 1) + cb
            cnt = np.bincount(code[ok], weights=pc["n"].to_numpy(dtype=float)[ok],
                              minlength=size)
            s = np.bincount(code[ok], weights=pc["s"].fillna(0).to_numpy(dtype=float)[ok],
                            minlength=size)
            for cell in np.flatnonzero(cnt >= min_n).tolist():
                keys.append(((a, cell // (ks[b] + 1)), (b, cell % (ks[b] + 1))))
                ns.append(float(cnt[cell]))
                ss.append(float(s[cell]))
    return {"keys": keys, "ns": ns, "ss": ss, "encs": encs, "codes": None, "w": None,
            "y": None}


def _discover_stats(counted: dict, lvs, names: list[str], total_n: int, total_s: float, min_n: int,
                    top, alpha: float, min_refinement: float, prune_explained: bool
                    ) -> pd.DataFrame:
    """Tests, corrections, pruning and ranking of ``slicing._discover_slices`` on counts.

    Where the pandas function masks items, this masks rows of the joint table and sums
    their weights (item counts) and errors; every sum is of whole numbers, so the results
    are the same to the last bit.
    """
    from ..slicing import _discover_frame, _discover_from_counts

    keys = counted["keys"]
    n_arr = np.asarray(counted["ns"], dtype=float)
    s_arr = np.asarray(counted["ss"], dtype=float)
    overall = total_s / total_n if total_n else np.nan
    idx, rate, score, p, q = _discover_from_counts(
        keys, n_arr, s_arr, counted["codes"], counted["y"], counted["w"], total_n, total_s,
        alpha=alpha, min_refinement=min_refinement, top=top, prune_explained=prune_explained)

    encs = counted["encs"]
    rows = []
    for i in idx.tolist():
        key = keys[i]
        text = " & ".join(f"{names[encs[f]]}={lvs[encs[f]].labels[c]}" for f, c in key)
        conds = {names[encs[f]]: lvs[encs[f]].values[c] for f, c in key}
        rows.append({"slice": text, "conditions": conds, "order": len(key), "item_ids": None,
                     "_i": i})
    return _discover_frame(rows, n_arr, s_arr, rate, score, p, q, overall)


# --------------------------------------------------------------------------------------
# agreement
# --------------------------------------------------------------------------------------


def _pair_frame(tables: EngineTables) -> tuple[pd.DataFrame, list[str]]:
    """Per annotator pair: ``n_shared``, ``agreement``, ``kappa``; and the classes used.

    All pairs, in the order of :func:`workbench.pairwise_agreement`.
    """
    counts = agg.annotator_pair_counts(tables).execute()
    labels = sorted(set(counts["label_a"].astype(str)) | set(counts["label_b"].astype(str)))
    k = len(labels)
    counts = counts.sort_values(["annotator_a", "annotator_b"], kind="stable")
    pair_idx, pairs = pd.factorize(pd.MultiIndex.from_frame(
        counts[["annotator_a", "annotator_b"]].astype(str)), sort=True)
    npairs = len(pairs)
    la = pd.Index(labels).get_indexer(counts["label_a"].astype(str))
    lb = pd.Index(labels).get_indexer(counts["label_b"].astype(str))
    n = counts["n"].to_numpy(dtype=np.int64)
    n_shared = np.bincount(pair_idx, weights=n, minlength=npairs).astype(np.int64)
    agree = np.bincount(pair_idx, weights=np.where(la == lb, n, 0), minlength=npairs)
    marg_a = np.zeros((npairs, k), dtype=np.int64)
    marg_b = np.zeros((npairs, k), dtype=np.int64)
    np.add.at(marg_a, (pair_idx, la), n)
    np.add.at(marg_b, (pair_idx, lb), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = agree / n_shared
        p_e = (marg_a * marg_b).sum(axis=1) / n_shared.astype(np.float64) ** 2
        kappa = np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)
    frame = pd.DataFrame({
        "annotator_a": pd.array([a for a, _ in pairs], dtype="str"),
        "annotator_b": pd.array([b for _, b in pairs], dtype="str"),
        "n_shared": n_shared,
        "agreement": p_o,
        "kappa": kappa,
    })
    return frame, labels


def engine_pairwise_agreement(tables: EngineTables, *, min_shared: int = 1) -> pd.DataFrame:
    """:func:`workbench.pairwise_agreement` of the project's annotations, in the engine.

    The engine joins the current annotations with themselves on ``item_id`` and returns
    the counts per annotator pair and label pair (at most pairs x classes^2 rows); raw
    agreement and Cohen's kappa are computed from them here.

    Parameters
    ----------
    tables : EngineTables
    min_shared : int, default=1
        Pairs sharing fewer items are dropped.

    Returns
    -------
    DataFrame
        Equal to ``pairwise_agreement(project.annotations, min_shared=min_shared)``, with
        the same warnings.
    """
    func = "engine_pairwise_agreement"
    check_int(min_shared, "min_shared", func, minimum=1)
    frame, _ = _pair_frame(tables)
    frame = frame[frame["n_shared"] >= min_shared].reset_index(drop=True)
    annotators = sorted(str(a) for a in agg.current_annotations(tables).select("annotator")
                        .distinct().execute()["annotator"])
    seen = set(frame["annotator_a"]) | set(frame["annotator_b"])
    alone = [a for a in annotators if a not in seen]
    if alone:
        warnings.warn(
            f"pairwise_agreement: annotator(s) {alone[:10]} share no item (at least "
            f"{min_shared}) with any other annotator; they have no pairwise agreement and "
            "are left out.", stacklevel=2)
    undefined = int(frame["kappa"].isna().sum())
    if undefined:
        warnings.warn(
            f"pairwise_agreement: Cohen's kappa is undefined (NaN) for {undefined} pair(s) "
            "whose shared items all got one and the same class from both annotators.",
            stacklevel=2)
    return frame


def engine_agreement_summary(tables: EngineTables, *, min_shared: int = 10) -> dict:
    """:func:`workbench.agreement_summary` of the project's annotations, in the engine.

    Parameters
    ----------
    tables : EngineTables
    min_shared : int, default=10
        Annotator pairs sharing fewer items are left out of ``mean_cohen_kappa``.

    Returns
    -------
    dict
        The keys of ``agreement_summary(project.annotations, min_shared=min_shared)``;
        the counts and ``mean_cohen_kappa`` are equal, the other measures equal up to the
        order of a floating-point sum (relative 1e-12): the engine sums the per-item terms
        in its own order.
    """
    from ..agreement import _stats_from_sums

    func = "engine_agreement_summary"
    check_int(min_shared, "min_shared", func, minimum=1)
    sums, cls = agg.agreement_sums(tables)
    row = sums.iloc[0]
    n_scored = int(row["n_scored"] or 0)
    if n_scored == 0:
        raise SchemaError(
            f"{func}: no item has labels from two annotators, so agreement is undefined. "
            "Collect overlapping labels (at least 2 per item) for some items.")
    labels = sorted(str(v) for v in agg.current_annotations(tables).select("label")
                    .distinct().execute()["label"])
    n_c = cls.set_index(cls["label"].astype(str))["n"].reindex(labels).fillna(0)
    vec = np.concatenate([[float(row["p_sum"]), float(row["d_sum"])],
                          n_c.to_numpy(dtype=float)])
    out = _stats_from_sums(vec, float(n_scored))
    pairs, _ = _pair_frame(tables)
    use = pairs[(pairs["n_shared"] >= min_shared) & pairs["kappa"].notna()]
    if use.empty:
        warnings.warn(
            f"agreement_summary: no annotator pair shares at least {min_shared} items with "
            "a defined kappa, so mean_cohen_kappa is NaN. Lower min_shared to include "
            "sparser pairs.", stacklevel=2)
        mean_kappa = np.nan
    else:
        mean_kappa = float(use["kappa"].mean())
    n_annotators = int(agg.current_annotations(tables).select("annotator").distinct()
                       .count().execute())
    out.update(
        mean_cohen_kappa=mean_kappa,
        n_items=int(row["n_items"]),
        n_annotators=n_annotators,
        n_labels=int(row["n_labels"]),
        n_items_scored=n_scored,
        n_pairs_scored=int(len(use)),
    )
    if n_scored < int(row["n_items"]):
        out["n_items_single_label"] = int(row["n_items"]) - n_scored
    return out
