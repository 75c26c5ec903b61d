"""Coverage: how well the reference (training data) covers the target (production).

:func:`coverage` answers two questions about a *target* set of items (default: the
``production`` split) against a *reference* set (default: the ``train`` split):

**Which metadata slices are frequent in the target but thin in the reference?** For every
value of every metadata column (numeric columns binned at the reference's quantiles, as in
:func:`workbench.drift.slice_values`), the share of the target and of the reference holding
it. A slice is ``is_thin`` when all three hold:

* it is frequent in the target: ``share_target >= min_share`` (default 5%);
* it is thin in the reference: ``share_reference < ratio * share_target`` (default: less
  than half as common; a slice absent from the reference always is);
* the difference is not chance: Fisher's exact test (one-sided, target more likely than
  reference, :func:`scipy.stats.fisher_exact`) on the 2 x 2 table (in/out of the slice,
  target/reference), adjusted over every slice with Benjamini-Hochberg
  (:func:`scipy.stats.false_discovery_control`), has ``q_value < alpha`` (default 0.01).

**Which target items are unlike anything in the reference?** In embedding space (the
project's embeddings, see ``docs/embeddings.md``; Euclidean distance), each target item's
``distance`` is the distance to its ``k``-th nearest reference item
(:class:`sklearn.neighbors.NearestNeighbors` fitted on the reference). The reference's own
spread is the same distance for each reference item to its ``k``-th nearest *other*
reference item (leave-one-out). ``novelty`` is the item's distance divided by the
``percentile``-th percentile (default 99th) of that spread, and ``is_novel`` is
``novelty > 1``: farther from the reference than 99% of the reference items are from the
rest of it. If the target came from the same distribution as the reference, about
``100 - percentile`` percent of it (1%) would be flagged by chance. ``percentile_rank`` is
the share of reference items whose own spread is below the item's distance.

The reference set gets its own :class:`~sklearn.neighbors.NearestNeighbors` (Euclidean),
not the project's shared k-NN graph (:func:`workbench.embeddings.knn_graph`): that graph
links every item to its neighbours among all items, while novelty needs each target item's
distances to the reference items alone.

Without embeddings (for the project, or for every reference item) the slice part still
works; ``Coverage.items`` is None and ``Coverage.note`` says how to get embeddings
(``workbench embed PROJECT``).
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_float_array, check_fraction, check_int
from .drift import MAX_LEVELS, _column_list, _is_numeric, slice_values
from .errors import WorkbenchError

__all__ = [
    "Coverage",
    "coverage",
    "embedding_novelty",
    "THIN_MIN_SHARE",
    "THIN_RATIO",
    "THIN_ALPHA",
    "NOVEL_PERCENTILE",
]

#: A thin slice holds at least this share of the target.
THIN_MIN_SHARE = 0.05
#: ... and its reference share is below this times its target share.
THIN_RATIO = 0.5
#: ... and its Benjamini-Hochberg adjusted Fisher p-value is below this.
THIN_ALPHA = 0.01
#: A target item is novel beyond this percentile of the reference's own k-NN distances.
NOVEL_PERCENTILE = 99.0

_SLICE_COLUMNS = ["column", "value", "n_target", "n_reference", "share_target",
                  "share_reference", "ratio", "p_value", "q_value", "is_thin"]
_ITEM_COLUMNS = ["item_id", "distance", "novelty", "percentile_rank", "is_novel"]


@dataclasses.dataclass
class Coverage:
    """What :func:`coverage` found.

    Attributes
    ----------
    slices : DataFrame
        One row per (metadata column, value): ``column``, ``value``, ``n_target``,
        ``n_reference``, ``share_target``, ``share_reference``, ``ratio``
        (``share_reference / share_target``), ``p_value`` (Fisher, one-sided),
        ``q_value`` (Benjamini-Hochberg), ``is_thin``; thin slices first, then by how much
        more common the slice is in the target.
    items : DataFrame or None
        One row per target item with an embedding, farthest first: ``item_id``,
        ``distance`` (to the ``k``-th nearest reference item), ``novelty`` (distance over the
        reference's threshold), ``percentile_rank``, ``is_novel``. None without embeddings
        (for the project, or for every reference item).
    reference_ids, target_ids : list of str
        The items of each side, in the items' order.
    k : int
    threshold : float or None
        The ``percentile``-th percentile of the reference's leave-one-out k-NN distances.
    percentile : float
    note : str
        Why ``items`` is None (and how to fix it), or which items had no embedding.
    skipped : dict
        Metadata columns left out of ``slices`` and why.
    """

    slices: pd.DataFrame
    items: pd.DataFrame | None
    reference_ids: list[str]
    target_ids: list[str]
    k: int
    percentile: float
    threshold: float | None = None
    note: str = ""
    skipped: dict = dataclasses.field(default_factory=dict)

    @property
    def thin_slices(self) -> pd.DataFrame:
        """The rows of ``slices`` flagged ``is_thin``."""
        return self.slices[self.slices["is_thin"].to_numpy(bool)].reset_index(drop=True)

    @property
    def novel_ids(self) -> list[str]:
        """The target items flagged ``is_novel``, farthest first (ready to tag).

        Raises
        ------
        WorkbenchError
            When the project has no embeddings (the message says how to compute them).
        """
        if self.items is None:
            raise WorkbenchError(f"coverage: no novelty without embeddings. {self.note}")
        return self.items.loc[self.items["is_novel"].to_numpy(bool), "item_id"].tolist()

    def __repr__(self) -> str:
        novel = "no embeddings" if self.items is None else f"{len(self.novel_ids)} novel items"
        return (f"Coverage(reference={len(self.reference_ids)} items, "
                f"target={len(self.target_ids)} items, "
                f"{int(self.slices['is_thin'].sum())} thin slices, {novel})")


# ----------------------------------------------------------------------------- filters


def _hint(value: Any, options) -> str:
    options = [str(o) for o in options]
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    if not close:  # an abbreviation: 'prod' for 'production'
        close = [o for o in options if o.lower().startswith(str(value).lower())][:1]
    return f" Did you mean {close[0]!r}?" if close else ""


def _as_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def filter_mask(items: pd.DataFrame, spec: Any, name: str, func: str) -> np.ndarray:
    """The items a filter selects: every ``column -> value(s)`` condition holds.

    Parameters
    ----------
    items : DataFrame
        The project's items.
    spec : dict
        Column -> a value or a list of values (a list selects any of them). Text columns
        compare as text (``{"batch": 3}`` selects ``"3"``), numeric columns as numbers
        (``{"year": "2020"}`` selects 2020).
    name, func : str
        The parameter and the public function, for the messages.

    Returns
    -------
    ndarray of bool

    Raises
    ------
    TypeError
        If ``spec`` is not a non-empty dict.
    ValueError
        Naming an unknown column or a value the column does not hold (with the valid ones).
    """
    if not isinstance(spec, dict) or not spec:
        raise TypeError(f"The {name!r} parameter of {func} must be a non-empty dict of item "
                        f"column -> value or list of values, e.g. {{'split': 'train'}}. Got "
                        f"{spec!r} instead.")
    mask = np.ones(len(items), dtype=bool)
    columns = [c for c in items.columns if c != "item_id"]
    for col, wanted in spec.items():
        if col not in columns:
            raise ValueError(f"The {name!r} parameter of {func} names the column {col!r}, "
                             f"which the items do not have; they have {columns}."
                             f"{_hint(col, columns)}")
        values = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) \
            else [wanted]
        if not values:
            raise ValueError(f"The {name!r} parameter of {func} selects no value of {col!r} "
                             f"(an empty list). Give at least one value.")
        series = items[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            have = series.to_numpy()
            present = set(pd.unique(series.dropna()))
            values = [_as_number(v) for v in values]  # {"year": "2020"} selects 2020
        else:
            have = series.astype(str).where(series.notna(), None).to_numpy(dtype=object)
            values = [str(v) for v in values]
            present = set(series.dropna().astype(str))
        unknown = [v for v in values if v not in present]
        if unknown:
            shown = sorted(map(str, present))
            shown = shown if len(shown) <= 20 else shown[:20] + ["..."]
            raise ValueError(f"The {name!r} parameter of {func} selects {col}={unknown[0]!r}, "
                             f"but the items' {col!r} column has no such value; it has "
                             f"{shown}.{_hint(unknown[0], present)}")
        mask &= pd.Series(have).isin(values).to_numpy()
    return mask


# ----------------------------------------------------------------------------- novelty


def embedding_novelty(reference, target, *, k: int = 10,
                      percentile: float = NOVEL_PERCENTILE) -> dict:
    """How far each target vector is from the reference, relative to the reference's spread.

    Parameters
    ----------
    reference : array-like of shape (n_reference, n_dims)
        The reference's embeddings (at least ``k + 1`` rows).
    target : array-like of shape (n_target, n_dims)
        The target's embeddings.
    k : int, default=10
        The neighbour whose distance counts (the ``k``-th nearest).
    percentile : float, default=NOVEL_PERCENTILE
        The percentile (0-100) of the reference's leave-one-out ``k``-NN distances beyond
        which a target vector is novel.

    Returns
    -------
    dict
        ``distance`` (ndarray, n_target: Euclidean distance to the ``k``-th nearest
        reference vector), ``reference_distance`` (ndarray, n_reference: each reference
        vector's distance to its ``k``-th nearest other reference vector), ``threshold``
        (the percentile of ``reference_distance``), ``novelty`` (``distance / threshold``),
        ``percentile_rank`` (share of ``reference_distance`` below ``distance``),
        ``is_novel`` (``distance > threshold``).

    Raises
    ------
    ValueError
        If the arrays are not 2-D numbers of the same width, hold NaN or infinity, or the
        reference has at most ``k`` rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(500, 4))
    >>> out = embedding_novelty(ref, np.vstack([rng.normal(size=(3, 4)), [[9, 9, 9, 9]]]), k=5)
    >>> out["is_novel"].tolist()
    [False, False, False, True]
    """
    from sklearn.neighbors import NearestNeighbors

    func = "embedding_novelty"
    k = check_int(k, "k", func, minimum=1)
    if isinstance(percentile, bool) or not isinstance(percentile, int | float) \
            or not 0 <= percentile <= 100:
        raise ValueError(f"The 'percentile' parameter of {func} must be a float in the range "
                         f"[0, 100]. Got {percentile!r} instead.")
    arrays = []
    for name, x in (("reference", reference), ("target", target)):
        a = check_float_array(x, name, func, ndim=2, what="vectors, shape (n, n_dims)")
        bad = ~np.isfinite(a).all(axis=1)
        if bad.any():
            raise ValueError(f"{func}: {name} rows {np.flatnonzero(bad)[:5].tolist()} hold NaN "
                             f"or infinite values. Fix or drop those embeddings.")
        arrays.append(a)
    ref, tgt = arrays
    if ref.shape[1] != tgt.shape[1]:
        raise ValueError(f"{func}: the reference has {ref.shape[1]} dimensions and the target "
                         f"{tgt.shape[1]}; both must come from the same embedding.")
    if len(ref) <= k:
        raise ValueError(f"The 'k' parameter of {func} must be smaller than the number of "
                         f"reference items ({len(ref)}), since each reference item's spread is "
                         f"measured to its k-th nearest other one. Got {k!r} instead; pass a "
                         f"smaller k or a larger reference.")
    nn = NearestNeighbors(n_neighbors=k + 1).fit(ref)
    # leave-one-out: the nearest of a reference vector's k + 1 neighbours is itself (distance
    # 0; with an exact duplicate, the duplicate at the same distance 0), so the (k+1)-th is
    # its k-th nearest other vector
    ref_dist = nn.kneighbors(ref, n_neighbors=k + 1, return_distance=True)[0][:, k]
    dist = (nn.kneighbors(tgt, n_neighbors=k, return_distance=True)[0][:, k - 1]
            if len(tgt) else np.zeros(0))
    threshold = float(np.percentile(ref_dist, percentile))
    with np.errstate(divide="ignore", invalid="ignore"):
        novelty = np.where(dist == 0, 0.0, dist / threshold) if threshold > 0 else \
            np.where(dist > 0, np.inf, 0.0)
    rank = np.searchsorted(np.sort(ref_dist), dist, side="left") / len(ref_dist)
    return {"distance": dist, "reference_distance": ref_dist, "threshold": threshold,
            "novelty": novelty, "percentile_rank": rank, "is_novel": dist > threshold}


def _embed_command(project: Any) -> str:
    """The command that computes the project's baseline embeddings."""
    root = getattr(project, "root", None)
    return f"`workbench embed {root if root is not None else 'PROJECT'}`"


def _embeddings(project: Any) -> tuple[np.ndarray, np.ndarray] | str:
    """The project's (item_ids, X), or the reason there are none and how to get them."""
    if not getattr(project, "has_embeddings", False):
        return (f"The project has no embeddings, so no item is scored for novelty: compute "
                f"the offline baseline with {_embed_command(project)}, or write your model's "
                f"vectors to embeddings.parquet (item_id + one column per dimension; see "
                f"docs/embeddings.md).")
    ids, x = project.embedding_matrix()
    return np.asarray(ids, dtype=str), np.asarray(x)


def _no_reference_embeddings(project: Any, reference: dict, n_reference: int) -> str:
    """Why no target item is scored when the reference items have no embedding, and the fix."""
    return (f"None of the {n_reference} reference items ({reference!r}) has an embedding, so "
            f"no target item is scored for novelty: embed them with {_embed_command(project)} "
            f"(or add their vectors to embeddings.parquet), or choose a reference whose items "
            f"have embeddings.")


# ----------------------------------------------------------------------------- slices


def _slice_table(items: pd.DataFrame, columns: list[str], ref: np.ndarray, tgt: np.ndarray,
                 *, n_bins: int, min_share: float, ratio: float, alpha: float) -> pd.DataFrame:
    from scipy.stats import false_discovery_control, fisher_exact

    n_r, n_t = int(ref.sum()), int(tgt.sum())
    parts = []
    for col in columns:
        values, order = slice_values(items[col], ref, n_bins=n_bins, max_levels=MAX_LEVELS)
        v = values.to_numpy()
        ct = pd.Series(v[tgt]).value_counts()
        cr = pd.Series(v[ref]).value_counts()
        seen = [x for x in order if x in ct.index or x in cr.index]
        t = ct.reindex(seen, fill_value=0).to_numpy(int)
        r = cr.reindex(seen, fill_value=0).to_numpy(int)
        parts.append(pd.DataFrame({"column": col, "value": np.asarray(seen, dtype=object),
                                   "n_target": t, "n_reference": r}))
    if not parts:
        return pd.DataFrame({c: [] for c in _SLICE_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out["share_target"] = out["n_target"] / max(n_t, 1)
    out["share_reference"] = out["n_reference"] / max(n_r, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["share_reference"] / out["share_target"]
    p = np.array([fisher_exact([[t, n_t - t], [r, n_r - r]], alternative="greater").pvalue
                  for t, r in zip(out["n_target"], out["n_reference"], strict=True)], float)
    out["p_value"] = p
    out["q_value"] = false_discovery_control(p, method="bh") if len(p) else p
    out["is_thin"] = ((out["share_target"] >= min_share)
                      & (out["share_reference"] < ratio * out["share_target"])
                      & (out["q_value"] < alpha))
    gap = out["share_target"] - out["share_reference"]
    out = out.assign(_gap=gap).sort_values(["is_thin", "_gap"], ascending=[False, False],
                                           kind="stable").drop(columns="_gap")
    return out[_SLICE_COLUMNS].reset_index(drop=True)


def _slice_columns(project: Any, columns: Any, filters: set, ref, tgt,
                   func: str) -> tuple[list[str], dict]:
    meta = list(project.metadata_columns)
    skipped: dict[str, str] = {}
    if columns is None:
        chosen = []
        both = ref | tgt
        for c in meta:
            col = project.items[c]
            if c in filters:
                skipped[c] = "it defines the reference or the target"
            elif not _is_numeric(col) and col[both].nunique() > MAX_LEVELS:
                skipped[c] = (f"{col[both].nunique()} distinct values (more than {MAX_LEVELS}); "
                              f"name it in columns= to include it")
            else:
                chosen.append(c)
        return chosen, skipped
    columns = _column_list(columns, func)
    for c in columns:
        if c not in meta:
            raise ValueError(f"The 'columns' parameter of {func} must hold item metadata "
                             f"columns among {meta}.{_hint(c, meta)} Got {c!r} instead.")
    return list(dict.fromkeys(columns)), skipped


def coverage(project: Any, reference: dict | None = None, target: dict | None = None, *,
             k: int = 10, columns=None, n_bins: int = 10, min_share: float = THIN_MIN_SHARE,
             ratio: float = THIN_RATIO, alpha: float = THIN_ALPHA,
             percentile: float = NOVEL_PERCENTILE) -> Coverage:
    """Which slices and items of the target are thin or absent in the reference.

    Parameters
    ----------
    project : Project
        An open project.
    reference : dict, default={'split': 'train'}
        The reference items: item column -> a value or a list of values (all conditions
        must hold).
    target : dict, default={'split': 'production'}
        The target items, the same way.
    k : int, default=10
        The neighbour whose distance measures novelty (the ``k``-th nearest reference item).
    columns : list of str, optional
        Metadata columns to slice on; default every metadata column except those the
        filters use and text columns with more than :data:`workbench.drift.MAX_LEVELS`
        values (listed in ``Coverage.skipped``).
    n_bins : int, default=10
        Quantile bins (of the reference) of numeric columns.
    min_share : float, default=THIN_MIN_SHARE
        A thin slice holds at least this share of the target (0.05).
    ratio : float, default=THIN_RATIO
        ... its reference share is below ``ratio`` times its target share (0.5) ...
    alpha : float, default=THIN_ALPHA
        ... and its adjusted one-sided Fisher p-value is below ``alpha`` (0.01).
    percentile : float, default=NOVEL_PERCENTILE
        A target item is novel beyond this percentile (99) of the reference's leave-one-out
        ``k``-NN distances.

    Returns
    -------
    Coverage
        ``slices`` (per metadata value), ``items`` (per target item with an embedding, or
        None when the project or the reference items have no embeddings, with ``note``
        saying how to get them), ``novel_ids``.

    Raises
    ------
    ValueError
        Naming an unknown column or value in ``reference``/``target``/``columns``, an empty
        reference or target, or an out-of-range parameter.

    Warns
    -----
    UserWarning
        When some items are in both the reference and the target.

    See Also
    --------
    embedding_novelty : The item part on plain arrays.
    workbench.drift : Change between batches over time.

    Examples
    --------
    >>> import workbench as wb
    >>> items = pd.DataFrame({"item_id": [f"i{i}" for i in range(300)],
    ...                       "split": ["train"] * 200 + ["production"] * 100,
    ...                       "scanner": ["a", "b"] * 100 + ["c"] * 40 + ["a"] * 60})
    >>> cov = coverage(wb.Project.from_frames(items=items))
    >>> cov.thin_slices[["column", "value", "share_target", "share_reference"]]
        column value  share_target  share_reference
    0  scanner     c           0.4              0.0
    """
    func = "coverage"
    reference = {"split": "train"} if reference is None else reference
    target = {"split": "production"} if target is None else target
    k = check_int(k, "k", func, minimum=1)
    n_bins = check_int(n_bins, "n_bins", func, minimum=1)
    min_share = check_fraction(min_share, "min_share", func)
    alpha = check_fraction(alpha, "alpha", func)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio > 0:
        raise ValueError(f"The 'ratio' parameter of {func} must be a float in the range "
                         f"(0, inf). Got {ratio!r} instead.")
    if isinstance(percentile, bool) or not isinstance(percentile, int | float) \
            or not 0 <= percentile <= 100:
        raise ValueError(f"The 'percentile' parameter of {func} must be a float in the range "
                         f"[0, 100]. Got {percentile!r} instead.")
    items = project.items
    ref = filter_mask(items, reference, "reference", func)
    tgt = filter_mask(items, target, "target", func)
    for name, mask, spec in (("reference", ref, reference), ("target", tgt, target)):
        if not mask.any():
            raise ValueError(f"{func}: the {name} {spec!r} selects no item (each value exists, "
                             f"but no item has them all). Loosen the {name}.")
    both = ref & tgt
    if both.any():
        warnings.warn(f"{func}: {int(both.sum())} items are in both the reference and the "
                      f"target (e.g. {items['item_id'].iloc[np.flatnonzero(both)[0]]!r}); they "
                      f"count on both sides.", stacklevel=2)
    cols, skipped = _slice_columns(project, columns, set(reference) | set(target), ref, tgt,
                                   func)
    slices = _slice_table(items, cols, ref, tgt, n_bins=n_bins, min_share=min_share,
                          ratio=ratio, alpha=alpha)
    ids = items["item_id"].to_numpy(dtype=str)
    out = Coverage(slices=slices, items=None, reference_ids=ids[ref].tolist(),
                   target_ids=ids[tgt].tolist(), k=k, percentile=float(percentile),
                   skipped=skipped)

    emb = _embeddings(project)
    if isinstance(emb, str):
        out.note = emb
        return out
    emb_ids, x = emb
    pos = pd.Index(emb_ids).get_indexer(ids)
    ref_pos, tgt_pos = pos[ref], pos[tgt]
    missing = int((ref_pos < 0).sum() + (tgt_pos < 0).sum())
    if not (ref_pos >= 0).any():
        out.note = _no_reference_embeddings(project, reference, len(ref_pos))
        return out
    if (ref_pos >= 0).sum() <= k:
        raise ValueError(f"The 'k' parameter of {func} must be smaller than the number of "
                         f"reference items with an embedding ({int((ref_pos >= 0).sum())}). "
                         f"Got {k!r} instead; pass a smaller k or embed more items "
                         f"(`workbench embed PROJECT`).")
    nov = embedding_novelty(x[ref_pos[ref_pos >= 0]], x[tgt_pos[tgt_pos >= 0]], k=k,
                            percentile=percentile)
    frame = pd.DataFrame({"item_id": ids[tgt][tgt_pos >= 0], "distance": nov["distance"],
                          "novelty": nov["novelty"], "percentile_rank": nov["percentile_rank"],
                          "is_novel": nov["is_novel"]})
    out.items = frame.sort_values("distance", ascending=False, kind="stable").reset_index(
        drop=True)[_ITEM_COLUMNS]
    out.threshold = nov["threshold"]
    if missing:
        out.note = (f"{missing} reference or target items have no embedding and are left out "
                    f"of the novelty (`workbench embed PROJECT --force` recomputes them).")
    return out
