"""Ibis expressions for the small tables the workbench's statistics are computed on.

Every function here builds an Ibis expression on :class:`~workbench.engine.tables.EngineTables`
(or runs one and returns its *small* result as a DataFrame), so the heavy work (joins,
group-bys over millions of rows) runs where the data lives: DuckDB out of core by default,
the same expressions on any other Ibis backend. The rules are those of the pandas functions:

* **current annotations**: one label per (item, annotator), the latest ``annotated_at``
  (missing dates count as latest, then the later row), as
  :func:`workbench._validation.latest_annotations`;
* **reference label**: the item's ``label``, else the annotators' majority, ties going to the
  class that comes first in the class order (``Project.reference_labels``, consensus
  ``method='majority'``);
* **errors table**: items with a reference label and a prediction in the run
  (:func:`workbench.slicing.project_errors`), ``is_error = label != predicted``;
* **buckets**: a feature's value, or for a numeric column with more distinct values than
  ``bins`` its quantile bin ``[low, high)`` (the last closed), with the edges of
  ``numpy.quantile`` (linear) over the non-missing values, computed from the exact order
  statistics the engine returns; missing values are a bucket of their own
  (``slicing._encode``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..slicing import _bin_values
from .tables import EngineTables, _ibis, backend_name

__all__ = [
    "current_annotations",
    "label_counts",
    "majority_labels",
    "reference_table",
    "errors_table",
    "confusion_counts",
    "Bucket",
    "bucket",
    "slice_counts",
    "cube_counts",
    "pair_counts",
    "annotator_pair_counts",
    "agreement_sums",
]

_NA_LABEL = "<NA>"


class Materialized:
    """An expression computed once and kept where the engine keeps data.

    On DuckDB it is written to Parquet in a temporary folder (in ``directory``): later
    queries scan the compressed file (in parallel, out of core) instead of recomputing the
    expression (a join over every item). Other engines keep it their own way through
    Ibis' ``Table.cache()`` (Spark: a cached DataFrame on the executors, memory then disk).
    ``drop()`` deletes it.
    """

    def __init__(self, expr, directory=None):
        backend = expr._find_backend()
        self._dir = None
        self._cached = None
        if backend_name(backend) != "duckdb":
            self._cached = expr.cache()
            self.table = self._cached
            return
        import shutil
        import tempfile
        from pathlib import Path

        self._dir = Path(tempfile.mkdtemp(prefix="wb-engine-", dir=directory))
        path = self._dir / "table.parquet"
        try:
            # DuckDB's own parallel COPY (Ibis' to_parquet goes through Arrow batches)
            target = str(path).replace("'", "''")
            backend.raw_sql(f"COPY ({backend.compile(expr)}) TO '{target}' "
                            "(FORMAT parquet, COMPRESSION uncompressed)").fetchall()
            self.table = backend.read_parquet(str(path))
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def drop(self) -> None:
        """Delete the file or release the engine's cache (idempotent)."""
        import shutil

        if self._cached is not None:
            self._cached.release()
            self._cached = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def _count():
    return _ibis()._.count()


# --------------------------------------------------------------------------------------
# annotations, reference labels, errors
# --------------------------------------------------------------------------------------


def current_annotations(tables: EngineTables):
    """The current label per (item, annotator): ``item_id``, ``annotator``, ``label``.

    Without ``annotated_at`` the project format allows one row per pair, kept as is; with
    it, the latest date wins (a missing date counts as the latest), then the later row.
    """
    ibis = _ibis()
    a = tables.annotations
    if a is None:
        raise ValueError("The project has no annotations; add an annotations table "
                         "(item_id, annotator, label).")
    if "annotated_at" not in a.columns:
        return a.select("item_id", "annotator", "label")
    rank = ibis.row_number().over(
        group_by=[a.item_id, a.annotator],
        order_by=[a.annotated_at.isnull().desc(), a.annotated_at.desc(), a._row.desc()])
    return a.mutate(_rank=rank).filter(lambda t: t._rank == 0).select(
        "item_id", "annotator", "label")


def label_counts(tables: EngineTables):
    """Agreement count table: labels per item and class, ``item_id``, ``label``, ``n``.

    The long (non-zero) form of the item x class count matrix that
    :func:`workbench.agreement_summary` and majority consensus work on.
    """
    cur = current_annotations(tables)
    return cur.group_by(["item_id", "label"]).aggregate(n=_count())


def majority_labels(tables: EngineTables):
    """Majority label per annotated item (ties: first class in class order).

    Returns an expression with ``item_id``, ``label``, ``n_labels`` and ``tie``.
    """
    ibis = _ibis()
    counts = label_counts(tables)
    # the class's position in the class order (labels outside it after every class)
    pos = counts.label.substitute({c: i for i, c in enumerate(tables.classes)},
                                  else_=len(tables.classes))
    c = counts.select("item_id", "label", "n", _pos=pos.cast("int64"))
    w = dict(group_by=[c.item_id])
    c = c.mutate(
        _rank=ibis.row_number().over(order_by=[c.n.desc(), c._pos.asc()], **w),
        _top=c.n.max().over(**w),
        n_labels=c.n.sum().over(**w))
    c = c.mutate(_is_top=(c.n == c._top).cast("int64"))
    c = c.mutate(_n_top=c._is_top.sum().over(group_by=[c.item_id]))
    return c.filter(c._rank == 0).select("item_id", "label", "n_labels",
                                        tie=c._n_top > 1)


def reference_table(tables: EngineTables):
    """Items with their reference label.

    Columns ``item_id``, ``_row``, ``label`` (null without a label or annotations), then the
    metadata columns.
    """
    items = tables.items
    meta = tables.metadata_columns
    has_label = "label" in items.columns
    if tables.annotations is None:
        if has_label:
            return items.select("item_id", "_row", "label", *meta)
        return items.select("item_id", "_row", *meta, label=_ibis().null("string")).select(
            "item_id", "_row", "label", *meta)
    maj = majority_labels(tables).select(_mid="item_id", _maj="label")
    j = items.left_join(maj, items.item_id == maj._mid)
    label = items.label.coalesce(j._maj) if has_label else j._maj
    return j.select("item_id", "_row", *meta, label=label).select(
        "item_id", "_row", "label", *meta)


def errors_table(tables: EngineTables, run: str | None = None):
    """The errors table of a run: one row per item with a reference label and a prediction.

    Columns ``item_id``, ``_row``, ``label``, ``predicted``, ``confidence`` (float, null
    when the run gave neither a confidence nor probabilities), ``is_error`` (bool), then
    the metadata columns: :func:`workbench.slicing.project_errors`, as an expression.
    """
    ibis = _ibis()
    run = tables.run(run, "errors_table")
    p = tables.predictions
    p = p.filter(p.run == run)
    probs = [f"prob_{c}" for c in tables.classes]
    if "confidence" in p.columns:
        conf = p.confidence.cast("float64")
    elif probs and all(c in p.columns for c in probs):
        conf = ibis.greatest(*[p[c].cast("float64") for c in probs])
    else:
        conf = ibis.null("float64")
    p = p.select(_pid="item_id", predicted="label", confidence=conf)
    ref = reference_table(tables)
    ref = ref.filter(ref.label.notnull())
    j = ref.inner_join(p, ref.item_id == p._pid)
    meta = tables.metadata_columns
    return j.select("item_id", "_row", "label", "predicted", "confidence", *meta,
                    is_error=j.label != j.predicted).select(
        "item_id", "_row", "label", "predicted", "confidence", "is_error", *meta)


def confusion_counts(errors) -> pd.DataFrame:
    """Counts per (reference ``label``, ``predicted``) pair: a small DataFrame with ``n``."""
    return errors.group_by(["label", "predicted"]).aggregate(n=_count()).execute()


# --------------------------------------------------------------------------------------
# buckets (the engine side of slicing._encode)
# --------------------------------------------------------------------------------------


@dataclass
class Bucket:
    """One feature as the engine groups it: its raw value or its quantile bin.

    Attributes
    ----------
    name : str
        The column.
    expr : ibis expression
        What to group by: the column itself, or the bin index (0..k-1, k for missing).
    edges : list of float or None
        The bin edges of a binned numeric column.
    """

    name: str
    expr: Any
    edges: list[float] | None = None

    @property
    def binned(self) -> bool:
        """Whether the feature is cut into quantile bins."""
        return self.edges is not None


def bin_values(edges: list[float]) -> tuple[list, list[str]]:
    """``pandas.Interval`` values and readable labels of the bins cut at ``edges``."""
    return _bin_values(edges)


def _order_stats(table, col: str, n: int, positions: list[int]) -> dict[int, float]:
    """The values at 0-based ``positions`` of the sorted non-missing ``col`` (exact).

    One query: the discrete percentile at ``(j + 0.5) / n`` is the ``j``-th order statistic
    exactly (the first value whose cumulative share reaches it), on DuckDB
    (``quantile_disc``) and Spark (``percentile_disc``); other engines sort.
    """
    x = table[col].cast("float64")
    values = table.filter(x.notnull()).select(x=x)
    backend = table._find_backend()
    qs = [(j + 0.5) / n for j in positions]
    name = backend_name(backend)
    if name == "duckdb":
        sql = f"SELECT quantile_disc(x, {qs!r}) FROM ({backend.compile(values)}) AS t"
        raw = backend.raw_sql(sql).fetchall()[0][0]
        return {j: float(v) for j, v in zip(positions, raw, strict=True)}
    if name == "pyspark":
        cols = ", ".join(f"percentile_disc({q!r}) WITHIN GROUP (ORDER BY x) AS q{i}"
                         for i, q in enumerate(qs))
        row = backend.sql(f"SELECT {cols} FROM ({backend.compile(values)}) AS t").execute()
        return {j: float(row[f"q{i}"].iloc[0]) for i, j in enumerate(positions)}
    ibis = _ibis()
    ranked = values.mutate(_j=ibis.row_number().over(order_by=values.x))
    got = ranked.filter(ranked._j.isin(positions)).execute()
    return {int(j): float(v) for j, v in zip(got["_j"], got["x"], strict=True)}


def quantile_edges(table, col: str, bins: int) -> list[float]:
    """The quantile bin edges of ``col``, as ``slicing`` cuts them.

    ``numpy.unique(numpy.quantile(x, linspace(0, 1, bins + 1)))`` of the non-missing values,
    computed from the exact order statistics the engine returns.
    """
    x = table[col]
    n = int(table.filter(x.notnull()).count().execute())
    qs = np.linspace(0, 1, bins + 1)
    # numpy's "linear" method: virtual index (n - 1) q, lerp between its neighbours
    virtual = (n - 1) * qs
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    prev = prev.astype(np.intp)
    nxt = nxt.astype(np.intp)
    gamma = virtual - prev
    pos = sorted({int(p) % n for p in prev} | {int(p) % n for p in nxt})
    stats = _order_stats(table, col, n, pos)
    a = np.array([stats[int(p) % n] for p in prev])
    b = np.array([stats[int(p) % n] for p in nxt])
    diff = b - a
    out = a + diff * gamma
    out = np.where(gamma >= 0.5, b - diff * (1 - gamma), out)
    edges = np.unique(out)
    if len(edges) < 2:
        edges = np.array([edges.min(), edges.max()])
    return [float(e) for e in edges]


def _is_numeric(dtype) -> bool:
    return (dtype.is_integer() or dtype.is_floating() or dtype.is_decimal()) \
        and not dtype.is_boolean()


def bucket(table, col: str, bins: int | None) -> Bucket:
    """The :class:`Bucket` of ``col`` in ``table`` (a few small queries for a numeric one)."""
    x = table[col]
    if bins and _is_numeric(x.type()):
        distinct = table.filter(x.notnull()).select(col).distinct().limit(bins + 1)
        if int(distinct.count().execute()) > bins:
            return binned(table, col, quantile_edges(table, col, bins))
    return Bucket(col, x)


def binned(table, col: str, edges: list[float]) -> Bucket:
    """The bucket of ``col`` cut at ``edges``: ``[e0, e1)``, ..., ``[e_k-1, e_k]``, missing k."""
    ibis = _ibis()
    x = table[col]
    k = len(edges) - 1
    xf = x.cast("float64")
    code = ibis.literal(0, "int64")
    for e in edges[1:-1]:
        code = code + (xf >= e).cast("int64")
    return Bucket(col, ibis.ifelse(x.isnull(), ibis.literal(k, "int64"), code), list(edges))


@dataclass
class Levels:
    """A bucket's levels in the order of ``slicing._encode``.

    Their values, readable labels, bin edges, and how engine group keys map to codes.
    """

    values: list
    labels: list[str]
    edges: list[float] | None
    lookup: dict

    def codes(self, keys: pd.Series) -> np.ndarray:
        """Codes of engine group keys (NA keys: the missing level)."""
        if self.edges is not None:  # bin indices, the missing bin is k
            return keys.to_numpy().astype(np.intp)
        present = [v for v in self.values if v is not None]
        out = pd.Index(present, dtype=object).get_indexer(keys.astype(object))
        na = keys.isna().to_numpy()
        if na.any():
            out[na] = self.lookup[None]
        if (out < 0).any():
            raise RuntimeError("engine keys outside the levels found; the data changed "
                               "between two queries")
        return out.astype(np.intp)


def _is_na(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def _py(v):
    return v.item() if hasattr(v, "item") else v


def levels(b: Bucket, keys: pd.Series) -> Levels:
    """The levels of bucket ``b`` given every group key the engine returned for it."""
    if b.binned:
        k = len(b.edges) - 1
        values, labels = bin_values(b.edges)
        lookup: dict = {i: i for i in range(k)}
        if k in {int(v) for v in keys.tolist() if not _is_na(v)}:
            values.append(None)  # the engine's missing bin is the key k
            labels.append(_NA_LABEL)
        return Levels(values, labels, list(b.edges), lookup | {k: k})
    raw = [_py(v) for v in keys.tolist()]
    present = sorted({v for v in raw if not _is_na(v)})
    values = list(present)
    lookup = {v: i for i, v in enumerate(values)}
    if any(_is_na(v) for v in raw):
        lookup[None] = len(values)
        values.append(None)
    labels = [_NA_LABEL if v is None else str(v) for v in values]
    return Levels(values, labels, None, lookup)


# --------------------------------------------------------------------------------------
# counts for slicing
# --------------------------------------------------------------------------------------


def totals(errors) -> tuple[int, int]:
    """Items and errors of the errors table."""
    row = errors.aggregate(n=_count(), s=errors.is_error.cast("int64").sum()).execute()
    n = int(row["n"].iloc[0])
    s = row["s"].iloc[0]
    return n, 0 if n == 0 or pd.isna(s) else int(s)


def level_counts(errors, buckets: list[Bucket]) -> list[int]:
    """How many levels each bucket has in ``errors`` (one query for all of them)."""
    if not buckets:
        return []
    aggs = {}
    for i, b in enumerate(buckets):
        raw = errors[b.name]
        aggs[f"u{i}"] = raw.nunique()
        aggs[f"z{i}"] = raw.isnull().cast("int64").sum()
    row = errors.aggregate(**aggs).execute().iloc[0]
    out = []
    for i, b in enumerate(buckets):
        has_na = int(row[f"z{i}"] or 0) > 0
        k = len(b.edges) - 1 if b.binned else int(row[f"u{i}"])
        out.append(k + int(has_na))
    return out


def slice_counts(errors, b: Bucket) -> pd.DataFrame:
    """Items ``n`` and errors ``s`` per bucket key ``key`` of one feature (small)."""
    return errors.group_by(key=b.expr).aggregate(
        n=_count(), s=errors.is_error.cast("int64").sum()).execute()


def cube_counts(errors, buckets: list[Bucket]) -> pd.DataFrame:
    """Items and errors per combination of every feature's bucket (``k0``, ``k1``...).

    The joint table answers every count over the features exactly (any conjunction, any
    union), so slice discovery's pruning can run on it instead of on the items; its size
    is the number of combinations present, at most the product of the levels.
    """
    keys = {f"k{i}": b.expr for i, b in enumerate(buckets)}
    return errors.group_by(**keys).aggregate(
        n=_count(), s=errors.is_error.cast("int64").sum()).execute()


def pair_counts(errors, a: Bucket, b: Bucket) -> pd.DataFrame:
    """Items and errors per (``ka``, ``kb``) pair of bucket keys of two features."""
    return errors.group_by(ka=a.expr, kb=b.expr).aggregate(
        n=_count(), s=errors.is_error.cast("int64").sum()).execute()


# --------------------------------------------------------------------------------------
# agreement count tables
# --------------------------------------------------------------------------------------


def annotator_pair_counts(tables: EngineTables):
    """Agreement count table: items per annotator pair and label pair.

    One row per unordered annotator pair (``annotator_a < annotator_b``) and label pair
    (``label_a``, ``label_b``): ``n``, the items both labelled, with those labels.

    Everything :func:`workbench.pairwise_agreement` needs: ``n_shared`` is the sum of ``n``
    over the label pairs, agreement the sum where ``label_a == label_b``, the marginals of
    Cohen's kappa the sums per ``label_a`` and per ``label_b``.
    """
    cur = current_annotations(tables)
    left = cur.select(item_id="item_id", annotator_a="annotator", label_a="label")
    right = cur.select(_iid="item_id", annotator_b="annotator", label_b="label")
    j = left.inner_join(right, [left.item_id == right._iid,
                                left.annotator_a < right.annotator_b])
    return j.group_by(["annotator_a", "annotator_b", "label_a", "label_b"]).aggregate(
        n=_count())


def agreement_sums(tables: EngineTables) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sums of ``agreement._item_terms`` over items with at least two labels.

    Returns
    -------
    (DataFrame, DataFrame)
        One row: ``n_items``, ``n_labels``, ``n_scored``, ``p_sum`` (sum of the share of
        agreeing ordered pairs), ``d_sum`` (sum of ``same / (m - 1)``); and the labels per
        class over the scored items (``label``, ``n``).
    """
    ibis = _ibis()
    counts = label_counts(tables)
    per_item = counts.group_by("item_id").aggregate(
        m=counts.n.sum(), same=(counts.n * (counts.n - 1)).sum())
    m = per_item.m.cast("float64")
    same = per_item.same.cast("float64")
    scored = per_item.m >= 2
    sums = per_item.aggregate(
        n_items=_count(), n_labels=per_item.m.sum(),
        n_scored=scored.cast("int64").sum(),
        p_sum=ibis.ifelse(scored, same / (m * (m - 1)), 0.0).sum(),
        d_sum=ibis.ifelse(scored, same / (m - 1), 0.0).sum()).execute()
    sc = per_item.filter(scored).select(_iid="item_id")
    cls = counts.inner_join(sc, counts.item_id == sc._iid).group_by("label").aggregate(
        n=ibis._.n.sum()).execute()
    return sums, cls
