"""Vendor scorecards: per vendor (and annotator) per batch, how good are the labels they deliver.

:func:`vendor_scorecard` reads a classification project (its annotations, items and tag
store) and returns one DataFrame; every number is a pure function of those inputs:

* **labels delivered**, **gold accuracy** on the items tagged ``gold`` (their dataset label
  is the truth), **Cohen's kappa** and plain agreement against the consensus of all labels;
* the **Dawid-Skene** view (one model fitted on all labels, see
  :func:`workbench.agreement.dawid_skene`): the estimated accuracy, and the group's expected
  confusion matrix summarised as its **worst class** (lowest recall) and **worst pair** (the
  two classes it swaps most, as a rate);
* the **rework rate**: the share of their labels later changed through the relabel loop
  (:func:`reworked_labels`);
* the **trend** across batches: each batch against the same vendor's (or annotator's)
  earlier batches, a one-sided two-proportion z-test on the agreement with the consensus,
  Holm-corrected within the series, and a ``drop_flag`` where it falls beyond chance.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ._validation import check_columns, check_fraction, check_int, check_option
from .agreement import (
    _ds_posteriors,
    _encode,
    _kappa_from_confusion,
    _majority_codes,
    _soft_confusion,
)
from .errors import SchemaError

__all__ = ["vendor_scorecard", "reworked_labels", "loop_entries", "drop_test"]

_FUNC = "vendor_scorecard"


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _check_by(by) -> tuple[str, ...]:
    if isinstance(by, str):
        by = (by,)
    if not isinstance(by, (tuple, list)) or not 1 <= len(by) <= 2 or \
            not all(isinstance(c, str) and c for c in by) or len(set(by)) != len(by):
        raise ValueError(
            f"The 'by' parameter of {_FUNC} must be a str or a tuple of one or two distinct "
            f"column names (vendor[, batch]). Got {by!r} instead.")
    return tuple(by)


def _missing_column(col: str, ann: pd.DataFrame, items: pd.DataFrame | None) -> SchemaError:
    ann_cols = [c for c in ann.columns if c not in ("item_id", "label")]
    item_cols = [] if items is None else [c for c in items.columns
                                          if c not in ("item_id", "filepath", "label")]
    return SchemaError(
        f"{_FUNC}: column {col!r} is in neither the annotations (columns {ann_cols}) nor the "
        f"items (metadata columns {item_cols}). Add it to annotations.csv (per label) or "
        f"items.csv (per item), or pass by=(...) naming columns that exist.")


def _codes_of(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Sorted codes of the str form of ``values`` (-1 where missing) and the uniques."""
    missing = values.isna().to_numpy()
    codes = np.full(len(values), -1, dtype=np.int64)
    present = values[~missing] if missing.any() else values
    got, uniques = pd.factorize(present.astype(str), sort=True)
    codes[~missing] = got
    return codes, np.asarray(uniques, dtype=object)


class _ItemLookup:
    """Item metadata for every encoded label, through the positions of its item in ``items``."""

    def __init__(self, items: pd.DataFrame | None, enc):
        self.items = None if items is None else items.drop_duplicates("item_id")
        self.enc = enc
        self._pos: np.ndarray | None = None

    def has(self, col: str) -> bool:
        return self.items is not None and col in self.items.columns

    def positions(self) -> np.ndarray:
        """Row of each encoded item in ``items`` (-1 when absent)."""
        if self._pos is None:
            index = pd.Index(self.items["item_id"].astype(str))
            self._pos = index.get_indexer(self.enc.items)
        return self._pos

    def codes(self, col: str) -> tuple[np.ndarray, np.ndarray]:
        """Per label: the code of its item's value of ``col`` (-1 = missing) and uniques."""
        item_codes, uniques = _codes_of(self.items[col])
        pos = self.positions()
        per_item = np.where(pos >= 0, item_codes[np.maximum(pos, 0)], -1)
        return per_item[self.enc.item], uniques


def _column_codes(ann: pd.DataFrame, lookup: _ItemLookup, col: str):
    """Codes per label (and sorted uniques) of ``col``, read per label or from the items."""
    if col in ann.columns:
        codes, uniques = _codes_of(ann[col])
        where = "annotations"
    elif lookup.has(col):
        codes, uniques = lookup.codes(col)
        where = "items"
    else:
        raise _missing_column(col, ann, lookup.items)
    bad = codes < 0
    if bad.any():
        ids = lookup.enc.items[np.unique(lookup.enc.item[bad])[:5]].tolist()
        raise SchemaError(
            f"{_FUNC}: {where} column {col!r} is missing for {int(bad.sum())} label(s), e.g. "
            f"on item(s) {ids}. Fill it in (every label needs a {col}) or drop those rows.")
    return codes, uniques, where


def _vendor_codes(ann: pd.DataFrame, lookup: _ItemLookup, col: str, enc):
    """The vendor of every label: its own column, else its annotator's vendor."""
    codes, vendors, where = _column_codes(ann, lookup, col)
    if where == "annotations":
        return codes, vendors
    # an annotator works for one vendor: the vendor owning most of the items they labelled
    n_a, n_v = len(enc.annotators), len(vendors)
    counts = np.bincount(enc.annotator * n_v + codes, minlength=n_a * n_v).reshape(n_a, n_v)
    home = np.argmax(counts, axis=1)  # ties: first vendor in sorted order
    return home[enc.annotator], vendors


def _gold_ids(project, gold, store) -> list[str]:
    if gold is not None:
        if isinstance(gold, str):
            raise TypeError(f"The 'gold' parameter of {_FUNC} must be a collection of item "
                            f"ids or None. Got the str {gold!r} instead: wrap it in a list.")
        return [str(g) for g in gold]
    return [str(g) for g in _store(project, store).items_with("gold")]


def _store(project, store):
    if store is None:
        from .tags import TagStore

        store = TagStore.for_project(project)
    return store


# --------------------------------------------------------------------------------------
# rework
# --------------------------------------------------------------------------------------
def loop_entries(store, queue: str = "relabel") -> pd.Series:
    """When each item that went through the relabel loop entered it.

    An item went through the loop when its queue history holds a ``relabeled`` status (its
    new labels were imported). It entered the loop at its first ``add`` event of the queue's
    tag, else (tag events purged) its first status event in the queue.

    Parameters
    ----------
    store : TagStore
        The project's store.
    queue : str, default='relabel'
        The queue (named after its tag).

    Returns
    -------
    Series
        Entry time (UTC) indexed by ``item_id``; empty when nothing was relabelled.
    """
    status = store.status_history(queue=queue)
    done = status.loc[status["status"] == "relabeled", "item_id"].astype(str).unique()
    if len(done) == 0:
        return pd.Series([], index=pd.Index([], name="item_id", dtype="str"),
                         dtype="datetime64[us, UTC]", name="entered_at")
    first_status = status.assign(item_id=status["item_id"].astype(str)).groupby(
        "item_id")["created_at"].min()
    tags = store.history(tag=queue)
    tags = tags[tags["action"] == "add"]
    first_tag = tags.assign(item_id=tags["item_id"].astype(str)).groupby(
        "item_id")["created_at"].min()
    entered = first_tag.reindex(done).fillna(first_status.reindex(done))
    entered = pd.to_datetime(entered, utc=True)
    entered.index.name = "item_id"
    return entered.rename("entered_at")


def reworked_labels(annotations: pd.DataFrame, entries: pd.Series) -> np.ndarray:
    """Which labels were later changed through the relabel loop.

    A label (annotator *A*, item *i*, label *L*, time *t*) is **reworked** when item *i* went
    through the loop (it is in ``entries``), *t* is before *i* entered it (a missing
    ``annotated_at`` counts as before), and another annotator's label on *i* made at or
    after the entry differs from *L*. Labels made inside the loop are never reworked.

    Parameters
    ----------
    annotations : DataFrame
        ``item_id``, ``annotator``, ``label`` [, ``annotated_at``], one current label per
        (item, annotator) (see :func:`workbench._validation.latest_annotations`).
    entries : Series
        Entry time into the loop (UTC) indexed by ``item_id`` (:func:`loop_entries`).

    Returns
    -------
    ndarray of bool, shape (n_labels,)
        In the row order of ``annotations``.

    Examples
    --------
    >>> import pandas as pd
    >>> ann = pd.DataFrame({"item_id": ["a", "a", "a", "b"], "annotator": ["x", "y", "z", "x"],
    ...                     "label": ["1", "1", "7", "2"],
    ...                     "annotated_at": pd.to_datetime(["2026-01-01", "2026-01-01",
    ...                                                     "2026-03-01", "2026-01-01"], utc=True)})
    >>> entries = pd.Series(pd.to_datetime(["2026-02-01"], utc=True), index=["a"])
    >>> reworked_labels(ann, entries).tolist()
    [True, True, False, False]
    """
    n = len(annotations)
    out = np.zeros(n, dtype=bool)
    if n == 0 or len(entries) == 0:
        return out
    starts = pd.to_datetime(pd.Series(entries.to_numpy(), index=entries.index.astype(str)),
                            utc=True)
    sel = np.flatnonzero(annotations["item_id"].astype(str).isin(starts.index).to_numpy())
    if sel.size == 0:
        return out
    sub = annotations.iloc[sel]
    item = sub["item_id"].astype(str).to_numpy()
    start = starts.reindex(item).reset_index(drop=True)
    if "annotated_at" in sub.columns:
        t = pd.to_datetime(sub["annotated_at"], utc=True, errors="coerce").reset_index(drop=True)
        after = (t >= start).to_numpy(dtype=bool) & t.notna().to_numpy()
    else:
        after = np.zeros(sel.size, dtype=bool)
    rows = pd.DataFrame({"item": item, "annotator": sub["annotator"].astype(str).to_numpy(),
                         "label": sub["label"].astype(str).to_numpy(), "row": sel})
    orig, later = rows[~after], rows[after]
    if orig.empty or later.empty:
        return out
    pairs = orig.merge(later, on="item", suffixes=("", "_later"))
    changed = (pairs["annotator"] != pairs["annotator_later"]) & \
        (pairs["label"] != pairs["label_later"])
    out[pairs.loc[changed, "row"].unique()] = True
    return out


# --------------------------------------------------------------------------------------
# trend
# --------------------------------------------------------------------------------------
def drop_test(successes, trials, earlier_successes, earlier_trials) -> np.ndarray:
    """One-sided two-proportion z-test that a batch's rate is below the earlier batches'.

    The pooled-variance z statistic of ``statsmodels.stats.proportion.proportions_ztest``
    with ``alternative='smaller'``, vectorised; NaN where either side has no trial or the
    pooled rate is 0 or 1 (no variance, no evidence).

    Parameters
    ----------
    successes, trials : array-like of int
        The batch.
    earlier_successes, earlier_trials : array-like of int
        The earlier batches pooled.

    Returns
    -------
    ndarray of float
        One-sided p-values.
    """
    x1, n1 = np.asarray(successes, float), np.asarray(trials, float)
    x2, n2 = np.asarray(earlier_successes, float), np.asarray(earlier_trials, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
        p = ndtr(z)
    ok = (n1 > 0) & (n2 > 0) & (se > 0)
    return np.where(ok, p, np.nan)


def _holm(p: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values within each series (NaN stays NaN)."""
    out = np.full(len(p), np.nan)
    for s in np.unique(series):
        idx = np.flatnonzero((series == s) & ~np.isnan(p))
        if idx.size == 0:
            continue
        order = idx[np.argsort(p[idx], kind="stable")]
        m = order.size
        adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adj, 1.0)
    return out


# --------------------------------------------------------------------------------------
# the scorecard
# --------------------------------------------------------------------------------------
def _summaries(soft: np.ndarray, classes: np.ndarray, min_support: float):
    """Worst class (lowest recall) and worst pair (highest swap rate) per group."""
    k = soft.shape[1]
    support = soft.sum(axis=2)  # (G, K) expected labels per true class
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.diagonal(soft, axis1=1, axis2=2) / support
    recall = np.where(support >= min_support, recall, np.inf)
    g = np.arange(len(soft))
    worst = np.argmin(recall, axis=1)
    worst_recall = recall[g, worst]
    has = np.isfinite(worst_recall)
    worst_class = np.where(has, classes[worst], None)
    a, b = np.triu_indices(k, 1)
    swaps = soft[:, a, b] + soft[:, b, a]
    both = support[:, a] + support[:, b]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where((support[:, a] >= min_support) & (support[:, b] >= min_support),
                        swaps / both, -np.inf)
    if rate.shape[1] == 0:
        return (worst_class, np.where(has, worst_recall, np.nan),
                np.full(len(soft), None), np.full(len(soft), np.nan))
    pair = np.argmax(rate, axis=1)
    pair_rate = rate[g, pair]
    has_pair = np.isfinite(pair_rate) & (pair_rate > 0)
    names = np.array([f"{classes[i]} <-> {classes[j]}" for i, j in zip(a, b, strict=True)],
                     dtype=object)
    return (worst_class, np.where(has, worst_recall, np.nan),
            np.where(has_pair, names[pair], None), np.where(has_pair, pair_rate, np.nan))


def _level_table(level: str, group: np.ndarray, keys: pd.DataFrame, series: np.ndarray,
                 batch_rank: np.ndarray, n_batches: int, parts: dict, classes: np.ndarray,
                 min_support: float, alpha: float, min_drop: float) -> pd.DataFrame:
    """Scorecard rows for one grouping (``group`` codes per label, ``keys`` per group)."""
    n_g = len(keys)
    k = len(classes)
    cnt = lambda w=None, sel=None: np.bincount(  # noqa: E731
        group if sel is None else group[sel], weights=w, minlength=n_g)
    n_labels = cnt()
    gold_sel = parts["gold_truth"] >= 0
    n_gold = cnt(sel=gold_sel)
    gold_right = cnt(w=(parts["label"] == parts["gold_truth"])[gold_sel].astype(float),
                     sel=gold_sel)
    agree = parts["label"] == parts["consensus"]
    n_agree = cnt(w=agree.astype(float))
    cm = np.bincount(group * k * k + parts["consensus"] * k + parts["label"],
                     minlength=n_g * k * k).reshape(n_g, k, k)
    kappa = _kappa_from_confusion(cm)
    shared = parts["shared"]
    soft = _soft_confusion(group[shared], n_g, parts["label"][shared], parts["item"][shared],
                           parts["post"])
    n_shared = cnt(sel=shared)
    worst_class, worst_recall, worst_pair, pair_rate = _summaries(soft, classes, min_support)
    n_rework = cnt(w=parts["reworked"].astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = keys.assign(
            level=level,
            n_labels=n_labels.astype(np.int64),
            n_gold=n_gold.astype(np.int64),
            gold_accuracy=np.where(n_gold > 0, gold_right / n_gold, np.nan),
            consensus_agreement=n_agree / n_labels,
            kappa=kappa,
            ds_accuracy=np.trace(soft, axis1=1, axis2=2) / n_shared,
            worst_class=pd.array(worst_class, dtype="str"),
            worst_class_recall=worst_recall,
            worst_pair=pd.array(worst_pair, dtype="str"),
            worst_pair_rate=pair_rate,
            n_reworked=n_rework.astype(np.int64),
            rework_rate=n_rework / n_labels,
        )
    # trend: each batch against the series' earlier batches pooled
    if n_batches > 1:
        grid_n = np.zeros((series.max() + 1, n_batches))
        grid_x = np.zeros_like(grid_n)
        grid_n[series, batch_rank] = n_labels
        grid_x[series, batch_rank] = n_agree
        cum_n = np.cumsum(grid_n, axis=1) - grid_n
        cum_x = np.cumsum(grid_x, axis=1) - grid_x
        earlier_n, earlier_x = cum_n[series, batch_rank], cum_x[series, batch_rank]
        p = drop_test(n_agree, n_labels, earlier_x, earlier_n)
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.where(earlier_n > 0, n_agree / n_labels - earlier_x / earlier_n, np.nan)
        p_adj = _holm(p, series)
    else:
        change = p = p_adj = np.full(n_g, np.nan)
    out["trend_change"] = change
    out["trend_p_value"] = p_adj
    out["drop_flag"] = (np.nan_to_num(p_adj, nan=1.0) < alpha) & \
        (np.nan_to_num(change, nan=0.0) <= -min_drop)
    return out


def encoded_labels(project, vendor_col: str, batch_col: str | None, func: str):
    """The labels as the scorecard reads them: codes, vendor and batch per label, consensus.

    Returns ``(enc, lookup, vendor_code, vendors, batch_code, batches, post)``: the
    encoded annotations (classes in the project's order when it names them all), the item
    lookup, the vendor of each label (per label, or the annotator's home vendor), its batch
    (one empty batch when ``batch_col`` is None) and the Dawid-Skene posteriors per item.
    Shared by :func:`vendor_scorecard` and :func:`workbench.vendor_feedback`.
    """
    items = getattr(project, "items", None)
    classes = [str(c) for c in (getattr(project, "classes", None) or [])]
    enc = _encode(project.annotations, func)
    if classes and set(enc.classes) <= set(classes):  # keep the project's class order
        to_class = pd.Index(classes).get_indexer(enc.classes)
        enc = replace(enc, label=to_class[enc.label], classes=classes, _counts=None)
    lookup = _ItemLookup(items if isinstance(items, pd.DataFrame) else None, enc)
    vendor_code, vendors = _vendor_codes(enc.frame, lookup, vendor_col, enc)
    if batch_col is not None:
        batch_code, batches, _ = _column_codes(enc.frame, lookup, batch_col)
    else:
        batch_code = np.zeros(len(enc.frame), dtype=np.int64)
        batches = np.array([""], dtype=object)
    return enc, lookup, vendor_code, vendors, batch_code, batches, _ds_posteriors(enc)


def vendor_scorecard(project, by=("vendor", "batch"), *, gold=None, store=None,
                     queue: str = "relabel", method: str = "dawid_skene", alpha: float = 0.05,
                     min_drop: float = 0.03, min_support: int = 5) -> pd.DataFrame:
    """Score each vendor (and annotator) per batch: labels, quality, rework and trend.

    Parameters
    ----------
    project : Project
        A classification project (``annotations`` with ``item_id``, ``annotator``,
        ``label`` [, ``annotated_at``]; ``items`` with ``item_id``, ``label`` and metadata).
    by : str or tuple of str, default=('vendor', 'batch')
        The vendor column, then optionally the batch column. Each is read from the
        annotations when they have it (per label), else from the item metadata. A vendor
        taken from the items is the **annotator's** vendor: each annotator is assigned the
        vendor owning most of the items they labelled (vendors label their own items and
        cross-check others'), so a cross-check label counts for the vendor who made it. A
        batch taken from the items is the item's batch. Batches are ordered by their sorted
        values (ISO weeks and ISO dates sort in time).
    gold : collection of str, optional
        Gold item ids (their dataset ``label`` is the truth). Default: the items tagged
        ``gold`` in the project's store (``TagStore.for_project(project).items_with("gold")``).
    store : TagStore, optional
        The store holding the gold tag and the relabel queue. Default: the project's.
    queue : str, default='relabel'
        The relabel queue whose re-imports count as rework (:func:`reworked_labels`).
    method : {'dawid_skene', 'majority'}, default='dawid_skene'
        The consensus the labels are compared with (``kappa``, ``consensus_agreement`` and
        the trend): the Dawid-Skene posterior argmax, or the majority vote (ties by class
        order). Dawid-Skene is the default for the reason :func:`workbench.annotator_quality`
        ranks by it: it ranks annotators closer to their true accuracy.
    alpha : float, default=0.05
        Significance level of ``drop_flag`` (after Holm's correction within a series).
    min_drop : float, default=0.03
        Smallest fall in ``consensus_agreement`` (3 percentage points) worth a flag. With
        hundreds of thousands of labels a test finds tiny drops, for example the one a
        vendor shows when *another* vendor's bad week spoils the consensus on the items
        both labelled; a flag needs the drop to be beyond chance *and* this large.
    min_support : int, default=5
        ``worst_class`` / ``worst_pair`` consider only classes with at least this many
        (expected) labels of the group.

    Returns
    -------
    DataFrame
        One row per vendor and batch (``level == 'vendor'``, ``annotator`` missing) and per
        vendor, annotator and batch (``level == 'annotator'``), sorted by vendor, level,
        annotator, batch. Columns: ``<vendor column>``, ``annotator``, ``<batch column>``
        (absent when ``by`` has one column), ``level``, ``n_labels`` (labels delivered:
        current label per item and annotator), ``n_gold`` (of them on gold items),
        ``gold_accuracy`` (NaN without gold), ``consensus_agreement`` (share equal to the
        consensus), ``kappa`` (Cohen's kappa of their labels against the consensus),
        ``ds_accuracy`` (Dawid-Skene estimated accuracy over their labels on items with at
        least two labels), ``worst_class`` / ``worst_class_recall`` (lowest recall in their
        expected Dawid-Skene confusion matrix), ``worst_pair`` (``"a <-> b"``) /
        ``worst_pair_rate`` (expected swaps between a and b over their labels of items truly
        a or b), ``n_reworked``, ``rework_rate`` (share of their labels changed through the
        relabel loop), ``trend_change`` (``consensus_agreement`` minus that of the series'
        earlier batches), ``trend_p_value`` (one-sided two-proportion z-test of a drop,
        Holm-corrected within the vendor's or annotator's series; NaN for a first batch) and
        ``drop_flag`` (bool: ``trend_p_value < alpha`` and ``trend_change <= -min_drop``).
        ``frame.attrs["flagged"]`` lists the vendors with a vendor-level drop.

    Raises
    ------
    SchemaError
        If a ``by`` column is in neither the annotations nor the items (the message lists
        the columns available), has missing values, or the annotations are detection boxes
        or empty.

    Examples
    --------
    >>> import workbench as wb
    >>> card = wb.vendor_scorecard(wb.load_sample(), gold=[])  # doctest: +SKIP
    >>> card.attrs["flagged"]  # doctest: +SKIP
    ['quicklabel']
    """
    by = _check_by(by)
    check_option(method, "method", _FUNC, ("dawid_skene", "majority"))
    alpha = check_fraction(alpha, "alpha", _FUNC, low=0.0, high=0.5)
    min_drop = check_fraction(min_drop, "min_drop", _FUNC)
    check_int(min_support, "min_support", _FUNC, minimum=1)
    if not isinstance(queue, str) or not queue:
        raise ValueError(f"The 'queue' parameter of {_FUNC} must be a non-empty str. "
                         f"Got {queue!r} instead.")
    annotations = getattr(project, "annotations", None)
    if not isinstance(annotations, pd.DataFrame):
        raise TypeError(f"The 'project' parameter of {_FUNC} must be a workbench Project "
                        f"(with annotations and items). Got {type(project).__name__} instead.")
    check_columns(annotations, ["item_id", "annotator", "label"], what="annotations",
                  func=_FUNC)
    if {"x", "y", "w", "h"} <= set(annotations.columns):
        raise SchemaError(f"{_FUNC}: the annotations are detection boxes (columns x, y, w, "
                          f"h); the scorecard covers classification projects only.")
    if annotations.empty:
        raise SchemaError(f"{_FUNC}: the project has no annotations; there is nothing to "
                          f"score. Import vendor labels first (annotations.csv).")
    vendor_col = by[0]
    batch_col = by[1] if len(by) > 1 else None
    items = getattr(project, "items", None)
    item_cols = set(items.columns) if isinstance(items, pd.DataFrame) else set()
    for col in by:  # before encoding 30M labels
        if col not in annotations.columns and col not in item_cols:
            raise _missing_column(col, annotations,
                                  items if isinstance(items, pd.DataFrame) else None)
    (enc, lookup, vendor_code, vendors, batch_code, batches,
     post) = encoded_labels(project, vendor_col, batch_col, _FUNC)
    ann = enc.frame
    classes_arr = np.asarray(enc.classes, dtype=object)
    if method == "dawid_skene":
        cons_item = np.argmax(post, axis=1)[enc.item]
    else:
        cons_item = _majority_codes(enc.counts)[0][enc.item]
    # gold: the dataset label of gold items
    gold_truth = np.full(len(enc.item), -1, dtype=np.int64)
    gold_ids = _gold_ids(project, gold, store)
    if gold_ids and lookup.has("label"):
        truth_code, truth_values = lookup.codes("label")
        to_class = np.append(pd.Index(enc.classes).get_indexer(truth_values), -1)
        is_gold = pd.Index(sorted(set(gold_ids))).get_indexer(enc.items) >= 0
        gold_truth = np.where(is_gold[enc.item], to_class[truth_code], -1)
    # rework
    entries = loop_entries(_store(project, store), queue)
    reworked = reworked_labels(ann, entries)

    parts = {
        "label": enc.label, "item": enc.item, "consensus": cons_item, "post": post,
        "gold_truth": gold_truth,
        "shared": enc.counts.sum(axis=1)[enc.item] >= 2, "reworked": reworked,
    }
    n_b = len(batches)
    ann_code = enc.annotator
    n_a = len(enc.annotators)
    tables = []
    # vendor level
    vb = vendor_code * n_b + batch_code
    used, group = np.unique(vb, return_inverse=True)
    keys = pd.DataFrame({vendor_col: pd.array(np.asarray(vendors, dtype=object)[used // n_b]
                                              .astype(str), dtype="str"),
                         "annotator": pd.array([None] * len(used), dtype="str"),
                         "_batch": used % n_b})
    tables.append(_level_table("vendor", group, keys, used // n_b, used % n_b, n_b, parts,
                               classes_arr, float(min_support), alpha, min_drop))
    # annotator level (an annotator may work for several vendors when the column is per label)
    vab = (vendor_code * n_a + ann_code) * n_b + batch_code
    used, group = np.unique(vab, return_inverse=True)
    series = used // n_b
    keys = pd.DataFrame({
        vendor_col: pd.array(np.asarray(vendors, dtype=object)[series // n_a].astype(str),
                             dtype="str"),
        "annotator": pd.array(enc.annotators[series % n_a].astype(str), dtype="str"),
        "_batch": used % n_b})
    _, series_code = np.unique(series, return_inverse=True)
    tables.append(_level_table("annotator", group, keys, series_code, used % n_b, n_b, parts,
                               classes_arr, float(min_support), alpha, min_drop))
    out = pd.concat(tables, ignore_index=True)
    out["_level"] = (out["level"] == "annotator").astype(int)
    out = out.sort_values([vendor_col, "_level", "annotator", "_batch"], kind="stable",
                          na_position="first")
    if batch_col is not None:
        out.insert(2, batch_col, pd.array(np.asarray(batches, dtype=object)[out["_batch"]]
                                          .astype(str), dtype="str"))
    out = out.drop(columns=["_level", "_batch"]).reset_index(drop=True)
    flagged = out.loc[(out["level"] == "vendor") & out["drop_flag"], vendor_col]
    out.attrs["flagged"] = sorted(set(flagged))
    out.attrs["by"] = by
    out.attrs["method"] = method
    return out

