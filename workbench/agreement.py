"""Annotator agreement, consensus labels, annotator quality and confused class pairs.

Every function takes the long ``annotations`` frame of a project (``item_id``, ``annotator``,
``label`` [, ``annotated_at``]) and returns a DataFrame (or a dict of numbers). When an
annotator labelled an item several times (re-imports), only the latest label counts
(:func:`workbench._validation.latest_annotations`).

Conventions
-----------
* Items with fewer than two labels carry no information about agreement; agreement measures
  skip them (and say so in ``n_items_scored``), consensus keeps them (``n_labels == 1``).
* Class order is the ``classes=`` parameter when given (labels outside it raise
  :class:`~workbench.errors.SchemaError`), else the sorted set of labels seen. Ties are
  always broken by this class order, so every result is deterministic.
* Detection annotations (box columns ``x``, ``y``, ``w``, ``h``) go to
  :mod:`workbench.detection.agreement` from :func:`agreement_summary`,
  :func:`pairwise_agreement`, :func:`agreement_by`, :func:`annotator_quality` and
  :func:`confused_pairs` (their ``iou=`` keyword is for detection only).
* Suspicious-but-valid input (an annotator who shares no item with anyone, a kappa that is
  undefined because both annotators used one class) raises a ``UserWarning``, never a
  silent NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_columns, check_fraction, check_int, check_option, latest_annotations
from .errors import MissingDependencyError, SchemaError

__all__ = [
    "agreement_summary",
    "pairwise_agreement",
    "pivot_pairwise",
    "agreement_by",
    "consensus",
    "dawid_skene",
    "DawidSkeneResult",
    "annotator_quality",
    "confused_pairs",
    "confused_pairs_matrix",
    "disagreement_frame",
    "disagreeing_items",
    "disagreeing_items_by_annotator",
]

CONSENSUS_METHODS = ("majority", "dawid_skene", "crowdlab")


# --------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------
@dataclass
class _Encoded:
    """Annotations as integer codes (one row per current (item, annotator) label)."""

    item: np.ndarray  # int64 codes into items
    annotator: np.ndarray  # int64 codes into annotators
    label: np.ndarray  # int64 codes into classes
    items: pd.Index  # item ids (str, sorted): an Arrow-backed Index, no per-item objects
    annotators: np.ndarray  # object array of annotator names (sorted)
    classes: list[str]
    _counts: np.ndarray | None = field(default=None, repr=False)
    frame: pd.DataFrame | None = field(default=None, repr=False)  # the rows encoded
    _order: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def counts(self) -> np.ndarray:
        """Matrix (n_items, n_classes) of label counts per item."""
        if self._counts is None:
            k = self.n_classes
            flat = np.bincount(self.item * k + self.label, minlength=self.n_items * k)
            self._counts = flat.reshape(self.n_items, k)
        return self._counts

    @property
    def order(self) -> np.ndarray:
        """Row positions sorted by item (stable: rows of one item keep their order)."""
        if self._order is None:
            self._order = _stable_argsort(self.item)
        return self._order


def _stage_bar(desc: str, n_stages: int):
    """A stage progress bar (``update()`` per stage done), starting at "encode"."""
    from ._progress import progress

    bar = progress(total=n_stages, desc=desc, unit="stage")
    bar.set_postfix_str("encode", refresh=False)
    return bar


def _labels_per_item(enc: _Encoded) -> np.ndarray:
    """Number of (current) labels of every item: ``enc.counts.sum(axis=1)`` by bincount."""
    return np.bincount(enc.item, minlength=enc.n_items)


def _stable_argsort(codes: np.ndarray) -> np.ndarray:
    """``np.argsort(codes, kind="stable")``, without the sort when codes already ascend."""
    if len(codes) < 2 or bool((codes[1:] >= codes[:-1]).all()):
        return np.arange(len(codes))
    return np.argsort(codes, kind="stable")


def _as_str_array(values: pd.Series) -> np.ndarray:
    return values.astype(str).to_numpy(dtype=object)


def _str_index(values) -> pd.Index:
    """An Index of dtype ``str`` holding ``values`` (Arrow strings, no Python objects)."""
    if isinstance(values, pd.Index) and values.dtype == "str":
        return values
    return pd.Index(pd.array(values, dtype="str"))


def _class_names(enc: _Encoded, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Class names (dtype ``str``) of class ``codes``: one Arrow take, no per-row objects."""
    return pd.array(enc.classes, dtype="str").take(np.asarray(codes, dtype=np.int64))


def _item_names(enc: _Encoded, codes: np.ndarray) -> list[str]:
    """Item ids (Python str, for list outputs) of item ``codes``, through one Arrow take."""
    import pyarrow as pa

    return pa.array(enc.items.array).take(pa.array(codes)).to_pylist()


def _sorted_distinct(key: np.ndarray) -> np.ndarray:
    """``np.unique(key)`` (sorted distinct values) by one sort and a comparison."""
    key = np.sort(key)
    if len(key) < 2:
        return key
    return key[np.r_[True, key[1:] != key[:-1]]]


def _sorted_codes(codes: np.ndarray, uniques: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Renumber ``codes`` into ``uniques`` so that the uniques are sorted by code point.

    ``uniques`` (str, distinct) is small next to ``codes``; only it is sorted, the codes
    are remapped with one gather. Arrow compares UTF-8 bytes, which is code point order
    (the order of ``pd.factorize(sort=True)`` on str values).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(uniques)
    if n < 2:
        return codes, uniques
    arr = pa.array(uniques.array)
    if pc.all(pc.less(arr.slice(0, n - 1), arr.slice(1))).as_py():
        return codes, uniques  # already sorted
    order = pc.sort_indices(arr).to_numpy()
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank[codes], uniques.take(order)


def _str_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Sorted factorisation of the str form of ``values`` (codes int64, uniques str Index).

    Works on integer codes wherever it can, so that no per-row Python string is made:
    a categorical column gives its codes as they are (only its categories, the distinct
    values, are turned into str, merged when two categories share a str form, and sorted);
    a column of Arrow strings is dictionary-encoded by Arrow; anything else is cast with
    ``astype(str)`` and factorised by pandas. All sort the uniques by code point, so the
    codes are the same either way. ``values`` must hold no missing value.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.cat.codes.to_numpy(), dtype=np.int64)
        cats = values.cat.categories
        used = np.bincount(codes, minlength=len(cats)) > 0 if len(codes) else \
            np.zeros(len(cats), dtype=bool)
        names = _str_index(cats.astype(str) if cats.dtype != "str" else cats)
        if not used.all():
            new = np.cumsum(used) - 1
            codes = new[codes]
            names = names[used]
        if names.has_duplicates:  # two categories with one str form (1 and "1")
            sub, uniq = pd.factorize(names)
            codes = np.asarray(sub, dtype=np.int64)[codes]
            names = _str_index(uniq)
        return _sorted_codes(codes, names)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(values.array)  # zero-copy view of the Arrow data
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        enc = pc.dictionary_encode(arr)
        codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        return _sorted_codes(codes, _str_index(pd.array(enc.dictionary, dtype="str")))
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype(str)
        if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
            return _str_codes(values)
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64), _str_index(uniques)


def _has_duplicate_pairs(item: np.ndarray, annotator: np.ndarray, n_ann: int) -> bool:
    """Whether some (item, annotator) pair occurs twice (a re-imported label)."""
    if len(item) < 2:
        return False
    key = item * max(n_ann, 1) + annotator
    key = np.sort(key, kind="stable")  # nearly sorted input (rows grouped by item) is fast
    return bool((key[1:] == key[:-1]).any())


def _encode(annotations: Any, func: str, *, classes=None, allow_empty=False) -> _Encoded:
    """Validate ``annotations`` and turn it into integer codes.

    The result's ``frame`` is the annotations the codes describe (the current label per
    item and annotator, :func:`~workbench._validation.latest_annotations`), row for row.
    """
    check_columns(annotations, ["item_id", "annotator", "label"], what="annotations", func=func)
    ann = annotations
    if len(ann) and not any(ann[c].isna().any() for c in ("item_id", "annotator")):
        item, items = _str_codes(ann["item_id"])
        annotator, annotators = _str_codes(ann["annotator"])
        if _has_duplicate_pairs(item, annotator, len(annotators)):
            ann = latest_annotations(annotations)  # re-imports: keep the latest label
            item, items = _str_codes(ann["item_id"])
            annotator, annotators = _str_codes(ann["annotator"])
    else:
        ann = latest_annotations(annotations)
        item = annotator = items = annotators = None
    for col in ("item_id", "annotator", "label"):
        if ann[col].isna().any():
            rows = ann.index[ann[col].isna()][:5].tolist()
            raise SchemaError(
                f"{func}: annotations has missing values in column {col!r} (rows {rows}). "
                f"Every annotation needs an item_id, an annotator and a label; drop those rows."
            )
    if ann.empty and not allow_empty:
        raise SchemaError(f"{func}: annotations is empty; there is nothing to compare.")
    if item is None:  # empty
        item, items = _str_codes(ann["item_id"])
        annotator, annotators = _str_codes(ann["annotator"])
    if classes is None:
        label, uniques = _str_codes(ann["label"])
        class_list = [str(c) for c in uniques]
    else:
        class_list = [str(c) for c in classes]
        if len(set(class_list)) != len(class_list):
            raise ValueError(f"The 'classes' parameter of {func} must not repeat a class. "
                             f"Got {class_list!r} instead.")
        seen_code, seen = _str_codes(ann["label"])
        to_class = pd.Index(class_list).get_indexer(seen)
        label = to_class[seen_code] if len(seen_code) else seen_code
        if (to_class < 0).any():
            unknown = sorted(set(seen[to_class < 0]))
            raise SchemaError(
                f"{func}: annotations use label(s) {unknown[:10]} that are not in classes "
                f"{class_list[:20]}. Add them to classes (workbench.toml) or fix the labels."
            )
    return _Encoded(
        item=np.asarray(item, dtype=np.int64),
        annotator=np.asarray(annotator, dtype=np.int64),
        label=np.asarray(label, dtype=np.int64),
        items=_str_index(items),
        annotators=np.asarray(annotators, dtype=object),
        classes=class_list,
        frame=ann,
    )


def _detection(annotations: Any, iou, func: str) -> bool:
    """Whether ``annotations`` holds boxes (``x``, ``y``, ``w``, ``h``): detection dispatch."""
    if isinstance(annotations, pd.DataFrame) and {"x", "y", "w", "h"} <= set(annotations):
        return True
    if iou is not None:
        raise ValueError(f"The 'iou' parameter of {func} applies to detection annotations "
                         f"(with box columns x, y, w, h) only. Got {iou!r} with "
                         "classification annotations: leave it out.")
    return False


def _iou(iou) -> float:
    return 0.5 if iou is None else iou


def _within_item_pairs(enc: _Encoded) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (r1, r2) of every unordered pair of annotations on the same item."""
    return _pairs_within(enc.item)


def _pairs_within(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (r1, r2) of every unordered pair of rows with the same code."""
    order = _stable_argsort(codes)
    cs = codes[order]
    n = len(order)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    sizes = np.diff(np.r_[starts, n])
    size_of_row = np.repeat(sizes, sizes)
    pos = np.arange(n) - np.repeat(starts, sizes)
    left, right = [], []
    candidates = np.arange(n)
    d = 1
    while True:
        candidates = candidates[pos[candidates] + d < size_of_row[candidates]]
        if candidates.size == 0:
            break
        left.append(order[candidates])
        right.append(order[candidates + d])
        d += 1
    if not left:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(left), np.concatenate(right)


# --------------------------------------------------------------------------------------
# agreement measures from per-item counts
# --------------------------------------------------------------------------------------
def _item_terms(counts: np.ndarray) -> np.ndarray:
    """Per-item terms whose (weighted) sums give every agreement measure.

    Columns: ``p_i`` (share of agreeing ordered pairs), ``d_i`` (Krippendorff's diagonal
    coincidences ``sum_c n_ic (n_ic - 1) / (m_i - 1)``), then the class counts. Items must
    have at least two labels.
    """
    counts = counts.astype(np.float64, copy=False)
    m = counts.sum(axis=1)
    same_pairs = (counts * (counts - 1)).sum(axis=1)  # ordered agreeing pairs per item
    return np.column_stack([same_pairs / (m * (m - 1)), same_pairs / (m - 1), counts])


def _stats_from_sums(sums: np.ndarray, wsum: float) -> dict[str, float]:
    """Measures from ``weights @ _item_terms(counts)`` and the sum of the weights."""
    if wsum == 0:
        return {"percent_agreement": np.nan, "fleiss_kappa": np.nan,
                "krippendorff_alpha": np.nan}
    p_bar = sums[0] / wsum
    o_diag = sums[1]
    n_c = sums[2:]
    total = n_c.sum()
    # Fleiss: class shares over all labels of the scored items
    p_e = ((n_c / total) ** 2).sum()
    fleiss = (p_bar - p_e) / (1 - p_e) if p_e < 1 else np.nan
    # Krippendorff (nominal): alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2)
    d_e = total * total - (n_c * n_c).sum()
    alpha = 1 - (total - 1) * (total - o_diag) / d_e if d_e > 0 else np.nan
    return {"percent_agreement": float(p_bar), "fleiss_kappa": float(fleiss),
            "krippendorff_alpha": float(alpha)}


def _agreement_stats(counts: np.ndarray) -> dict[str, float]:
    """Percent agreement, Fleiss' kappa and Krippendorff's alpha from item x class counts.

    ``counts`` must only hold items with at least two labels.
    """
    return _stats_from_sums(_term_sums(counts), float(len(counts)))


def _term_sums(counts: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
    """``_item_terms(counts).sum(axis=0)`` without the (n_items, K + 2) array (in chunks)."""
    sums = np.zeros(counts.shape[1] + 2)
    ones = np.ones(counts.shape[1])
    for start in range(0, len(counts), chunk):
        c = counts[start:start + chunk].astype(np.float64)
        m = c @ ones  # row sums by matrix product (exact: small integers)
        same_pairs = (c * (c - 1)) @ ones
        sums[0] += (same_pairs / (m * (m - 1))).sum()
        sums[1] += (same_pairs / (m - 1)).sum()
        sums[2:] += np.ones(len(c)) @ c
    return sums


def agreement_summary(annotations: pd.DataFrame, *, classes=None, min_shared: int = 10,
                      iou: float | None = None) -> dict:
    """Summarise how much annotators agree, with the usual chance-corrected measures.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label`` [, ``annotated_at``].
    classes : sequence of str, optional
        The class order; labels outside it raise. Default: sorted labels seen.
    min_shared : int, default=10
        Annotator pairs sharing fewer items are left out of ``mean_cohen_kappa``.
    iou : float, optional
        Detection annotations only (default 0.5): the IoU threshold of matched boxes.

    Returns
    -------
    dict
        Detection annotations (box columns ``x``, ``y``, ``w``, ``h``) get the box measures
        of :func:`workbench.detection.agreement.detection_agreement_summary`.
        ``percent_agreement`` : share of agreeing annotator pairs, averaged over items with
        at least two labels (a fraction in [0, 1]).
        ``fleiss_kappa`` : Fleiss' kappa. Items with unequal numbers of labels are handled
        by the usual generalisation: each item's agreement uses its own number of labels
        ``m_i`` (``sum_k n_ik (n_ik - 1) / (m_i (m_i - 1))``), chance agreement uses the
        class shares over all labels. With equal numbers of labels this is exactly
        Fleiss (1971) (and ``statsmodels.stats.inter_rater.fleiss_kappa``).
        ``krippendorff_alpha`` : Krippendorff's alpha, nominal metric, missing labels
        allowed (the coincidence-matrix form of Krippendorff 2011).
        ``mean_cohen_kappa`` : mean Cohen's kappa over annotator pairs sharing at least
        ``min_shared`` items and whose kappa is defined (NaN, with a warning, if none).
        ``n_items``, ``n_annotators``, ``n_labels`` : sizes of the (current) annotations.
        ``n_items_scored`` : items with at least two labels (the ones measured).
        ``n_pairs_scored`` : annotator pairs averaged in ``mean_cohen_kappa``.

    Raises
    ------
    SchemaError
        If no item has two labels (agreement is undefined), or labels are outside
        ``classes``.

    Examples
    --------
    >>> import pandas as pd
    >>> ann = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["x", "y"] * 2,
    ...                     "label": ["cat", "cat", "dog", "cat"]})
    >>> agreement_summary(ann, min_shared=1)["percent_agreement"]
    0.5
    """
    func = "agreement_summary"
    if _detection(annotations, iou, func):
        from .detection.agreement import detection_agreement_summary

        return detection_agreement_summary(annotations, iou=_iou(iou), classes=classes)
    check_int(min_shared, "min_shared", func, minimum=1)
    bar = _stage_bar(func, 3)
    enc = _encode(annotations, func, classes=classes)
    counts = enc.counts
    m = _labels_per_item(enc)
    scored = m >= 2
    if not scored.any():
        raise SchemaError(
            f"{func}: no item has labels from two annotators, so agreement is undefined. "
            f"Collect overlapping labels (at least 2 per item) for some items."
        )
    bar.update()
    bar.set_postfix_str("item agreement", refresh=False)
    out = _agreement_stats(counts[scored])
    bar.update()
    bar.set_postfix_str("annotator pairs", refresh=False)
    pairs = _pairwise_frame(enc, 1)
    use = pairs[(pairs["n_shared"] >= min_shared) & pairs["kappa"].notna()]
    if use.empty:
        warnings.warn(
            f"{func}: no annotator pair shares at least {min_shared} items with a defined "
            f"kappa, so mean_cohen_kappa is NaN. Lower min_shared to include sparser pairs.",
            stacklevel=2,
        )
        mean_kappa = np.nan
    else:
        mean_kappa = float(use["kappa"].mean())
    out.update(
        mean_cohen_kappa=mean_kappa,
        n_items=int(enc.n_items),
        n_annotators=int(len(enc.annotators)),
        n_labels=int(len(enc.item)),
        n_items_scored=int(scored.sum()),
        n_pairs_scored=int(len(use)),
    )
    if int(scored.sum()) < enc.n_items:
        out["n_items_single_label"] = int(enc.n_items - scored.sum())
    bar.close()
    return out


# --------------------------------------------------------------------------------------
# pairwise
# --------------------------------------------------------------------------------------
def pairwise_agreement(annotations: pd.DataFrame, *, classes=None, min_shared: int = 1,
                       iou: float | None = None) -> pd.DataFrame:
    """Raw agreement and Cohen's kappa for every pair of annotators that share items.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.
    classes : sequence of str, optional
        The class order. Default: sorted labels seen.
    min_shared : int, default=1
        Pairs sharing fewer items are dropped.
    iou : float, optional
        Detection annotations only (default 0.5): the IoU threshold of matched boxes.

    Returns
    -------
    DataFrame
        Detection annotations (box columns ``x``, ``y``, ``w``, ``h``) get the box measures
        of :func:`workbench.detection.agreement.detection_pairwise_agreement`.
        Otherwise one row per unordered pair (``annotator_a < annotator_b``): ``annotator_a``,
        ``annotator_b``, ``n_shared`` (items both labelled), ``agreement`` (share of
        those items with the same label), ``kappa`` (Cohen's kappa on the shared items,
        as ``sklearn.metrics.cohen_kappa_score``; NaN when undefined, i.e. both annotators
        used one and the same class on every shared item). Pivot it with
        :func:`pivot_pairwise`.

    Warns
    -----
    UserWarning
        When some annotators share no item with anyone (they are absent from the frame),
        or some kappas are undefined.
    """
    func = "pairwise_agreement"
    if _detection(annotations, iou, func):
        from .detection.agreement import detection_pairwise_agreement

        frame = detection_pairwise_agreement(annotations, iou=_iou(iou), classes=classes)
        return frame[frame["n_shared"] >= min_shared].reset_index(drop=True)
    check_int(min_shared, "min_shared", func, minimum=1)
    enc = _encode(annotations, func, classes=classes)
    frame = _pairwise_frame(enc, min_shared)
    seen = set(frame["annotator_a"]) | set(frame["annotator_b"])
    alone = [a for a in enc.annotators if a not in seen]
    if alone:
        warnings.warn(
            f"{func}: annotator(s) {alone[:10]} share no item (at least {min_shared}) "
            f"with any other annotator; they have no pairwise agreement and are left out.",
            stacklevel=2,
        )
    undefined = int(frame["kappa"].isna().sum())
    if undefined:
        warnings.warn(
            f"{func}: Cohen's kappa is undefined (NaN) for {undefined} pair(s) whose "
            f"shared items all got one and the same class from both annotators.",
            stacklevel=2,
        )
    return frame


def _pairwise_frame(enc: _Encoded, min_shared: int) -> pd.DataFrame:
    """The computation of :func:`pairwise_agreement` on encoded annotations (no warnings)."""
    k = enc.n_classes
    n_ann = len(enc.annotators)
    r1, r2 = _within_item_pairs(enc)
    a1, a2 = enc.annotator[r1], enc.annotator[r2]
    l1, l2 = enc.label[r1], enc.label[r2]
    swap = a1 > a2
    a1, a2 = np.where(swap, a2, a1), np.where(swap, a1, a2)
    l1, l2 = np.where(swap, l2, l1), np.where(swap, l1, l2)
    key = a1 * n_ann + a2
    del a1, a2, r1, r2
    ukeys, inv = _small_unique(key, n_ann * n_ann)
    npairs = len(ukeys)
    n_shared = np.bincount(inv, minlength=npairs).astype(np.int64)
    agree = np.bincount(inv, weights=(l1 == l2), minlength=npairs)
    marg_a = np.bincount(inv * k + l1, minlength=npairs * k).reshape(npairs, k)
    marg_b = np.bincount(inv * k + l2, minlength=npairs * k).reshape(npairs, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = agree / n_shared
        p_e = (marg_a * marg_b).sum(axis=1) / n_shared.astype(np.float64) ** 2
        kappa = np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)
    frame = pd.DataFrame({
        "annotator_a": pd.array(enc.annotators[ukeys // n_ann].astype(str), dtype="str"),
        "annotator_b": pd.array(enc.annotators[ukeys % n_ann].astype(str), dtype="str"),
        "n_shared": n_shared,
        "agreement": p_o,
        "kappa": kappa,
    })
    return frame[frame["n_shared"] >= min_shared].reset_index(drop=True)


def _small_unique(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True)`` for keys in ``[0, n_keys)``.

    With few possible keys (annotator pairs, class pairs) a bincount finds the keys in use
    and a gather numbers them, instead of sorting every key.
    """
    if n_keys > max(4 * len(key), 1 << 20):
        return np.unique(key, return_inverse=True)
    used = np.bincount(key, minlength=n_keys) > 0
    return np.flatnonzero(used), (np.cumsum(used) - 1)[key]


def pivot_pairwise(pairs: pd.DataFrame, value: str = "kappa") -> pd.DataFrame:
    """Turn the long output of :func:`pairwise_agreement` into a square annotator matrix.

    Parameters
    ----------
    pairs : DataFrame
        Output of :func:`pairwise_agreement`.
    value : {'kappa', 'agreement', 'n_shared'}, default='kappa'
        The measure to put in the cells.

    Returns
    -------
    DataFrame
        Symmetric annotator x annotator matrix (index and columns sorted). The diagonal is
        1 for ``kappa``/``agreement`` and NaN for ``n_shared``; pairs that share no item
        are NaN.
    """
    check_option(value, "value", "pivot_pairwise", ("kappa", "agreement", "n_shared"))
    check_columns(pairs, ["annotator_a", "annotator_b", value], what="pairs",
                  func="pivot_pairwise")
    names = sorted(set(pairs["annotator_a"]) | set(pairs["annotator_b"]))
    mat = pd.DataFrame(np.nan, index=pd.Index(names, name="annotator"),
                       columns=pd.Index(names, name="annotator"))
    ia = mat.index.get_indexer(pairs["annotator_a"])
    ib = mat.columns.get_indexer(pairs["annotator_b"])
    arr = mat.to_numpy(copy=True)
    vals = pairs[value].to_numpy(dtype=float)
    arr[ia, ib] = vals
    arr[ib, ia] = vals
    if value != "n_shared":
        np.fill_diagonal(arr, 1.0)
    return pd.DataFrame(arr, index=mat.index, columns=mat.columns)


# --------------------------------------------------------------------------------------
# agreement per slice
# --------------------------------------------------------------------------------------
def agreement_by(annotations: pd.DataFrame, project_or_items: Any, by, *, n_boot: int = 200,
                 confidence_level: float = 0.95, seed: int = 0, classes=None,
                 min_items: int = 2, iou: float | None = None) -> pd.DataFrame:
    """Agreement per metadata slice (vendor, batch, ...) with bootstrap confidence intervals.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.
    project_or_items : Project or DataFrame
        Where the metadata lives: a project (its ``items``) or a frame with ``item_id``
        and the ``by`` column(s).
    by : str or list of str
        Metadata column(s) to group by.
    n_boot : int, default=200
        Bootstrap resamples (of items, within each slice). 0 disables the intervals.
    confidence_level : float, default=0.95
        Width of the percentile intervals.
    seed : int, default=0
        Seed of the bootstrap, so results are reproducible.
    classes : sequence of str, optional
        Class order (default: sorted labels seen).
    min_items : int, default=2
        Slices with fewer scored items (items with two or more labels) are dropped.
    iou : float, optional
        Detection annotations only (default 0.5): the IoU threshold of matched boxes.

    Returns
    -------
    DataFrame
        Detection annotations (box columns ``x``, ``y``, ``w``, ``h``) get detection F1,
        class agreement and mean IoU per slice with image-bootstrap intervals, from
        :func:`workbench.detection.agreement.detection_agreement_by`.
        Otherwise one row per slice, sorted by ``by``: the ``by`` column(s), ``n_items`` (scored
        items), ``n_labels``, then for each of ``percent_agreement``, ``fleiss_kappa``,
        ``krippendorff_alpha`` the estimate and ``<measure>_low`` / ``<measure>_high``.
        Items whose slice value is missing form no slice.
    """
    func = "agreement_by"
    if _detection(annotations, iou, func):
        from .detection.agreement import detection_agreement_by

        return detection_agreement_by(annotations, project_or_items, by, n_boot=n_boot,
                                      confidence_level=confidence_level, seed=seed,
                                      classes=classes, min_items=min_items, iou=_iou(iou))
    n_boot = check_int(n_boot, "n_boot", func, minimum=0)
    confidence_level = check_fraction(confidence_level, "confidence_level", func)
    check_int(min_items, "min_items", func, minimum=1)
    by_cols = [by] if isinstance(by, str) else list(by)
    items = (project_or_items if isinstance(project_or_items, pd.DataFrame)
             else getattr(project_or_items, "items", project_or_items))
    check_columns(items, ["item_id", *by_cols], what="items", func=func)
    enc = _encode(annotations, func, classes=classes)
    counts = enc.counts
    m = counts.sum(axis=1)
    meta = items[["item_id", *by_cols]].copy()
    meta["item_id"] = meta["item_id"].astype(str)
    meta = meta.drop_duplicates("item_id").set_index("item_id")
    meta = meta.reindex(pd.Index(enc.items.astype(str)))
    keep = (m >= 2) & meta.notna().all(axis=1).to_numpy()
    if not keep.any():
        raise SchemaError(f"{func}: no item has two labels and a value in {by_cols}.")
    groups = meta[keep].groupby(by_cols, sort=True, observed=True).indices
    rng = np.random.default_rng(seed)
    measures = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha")
    rows = []
    kept_idx = np.flatnonzero(keep)
    lo_q, hi_q = (1 - confidence_level) / 2, 1 - (1 - confidence_level) / 2
    for key, pos in groups.items():
        idx = kept_idx[pos]
        if len(idx) < min_items:
            continue
        terms = _item_terms(counts[idx])
        est = _stats_from_sums(terms.sum(axis=0), float(len(idx)))
        row = dict(zip(by_cols, key if isinstance(key, tuple) else (key,), strict=True))
        row.update(n_items=len(idx), n_labels=int(m[idx].sum()))
        boots = {name: np.empty(n_boot) for name in measures}
        for b in range(n_boot):
            w = np.bincount(rng.integers(0, len(idx), len(idx)), minlength=len(idx))
            stats = _stats_from_sums(w @ terms, float(len(idx)))
            for name in measures:
                boots[name][b] = stats[name]
        for name in measures:
            row[name] = est[name]
            if n_boot:
                vals = boots[name][np.isfinite(boots[name])]
                low, high = (np.quantile(vals, [lo_q, hi_q]) if len(vals)
                             else (np.nan, np.nan))
            else:
                low = high = np.nan
            row[f"{name}_low"] = float(low)
            row[f"{name}_high"] = float(high)
        rows.append(row)
    cols = [*by_cols, "n_items", "n_labels"]
    for name in measures:
        cols += [name, f"{name}_low", f"{name}_high"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------------------
# consensus
# --------------------------------------------------------------------------------------
def _align_pred_probs(pred_probs: Any, item_ids: np.ndarray, classes: list[str], func: str,
                      *, require_all: bool = True) -> np.ndarray:
    """Return model probabilities as an (n_items, K) array aligned to ``item_ids``.

    ``pred_probs`` is a DataFrame indexed by item_id with one column per class (``<class>``
    or ``prob_<class>``), or a DataFrame with an ``item_id`` column and such columns, or a
    tuple ``(item_ids, array)`` with columns in class order.
    """
    if isinstance(pred_probs, tuple) and len(pred_probs) == 2:
        ids, arr = pred_probs
        arr = np.asarray(arr, dtype=np.float64)
        ids = np.asarray(ids).astype(str)
        if arr.ndim != 2 or arr.shape[0] != len(ids):
            raise ValueError(
                f"The 'pred_probs' parameter of {func} must be (item_ids, array of shape "
                f"(n_items, n_classes)). Got ids of length {len(ids)} and an array of shape "
                f"{arr.shape} instead."
            )
        if arr.shape[1] != len(classes):
            raise SchemaError(
                f"{func}: pred_probs has {arr.shape[1]} columns but there are "
                f"{len(classes)} classes {classes[:20]}. Pass classes= in the model's order."
            )
        index = pd.Index(ids)
    elif isinstance(pred_probs, pd.DataFrame):
        frame = pred_probs
        if "item_id" in frame.columns:
            frame = frame.set_index("item_id")
        by_name = {str(col): col for col in frame.columns}
        cols = []
        for c in classes:
            if c in by_name:
                cols.append(by_name[c])
            elif f"prob_{c}" in by_name:
                cols.append(by_name[f"prob_{c}"])
            else:
                raise SchemaError(
                    f"{func}: pred_probs has no column for class {c!r} (looked for {c!r} "
                    f"and 'prob_{c}'). It has {list(map(str, frame.columns))[:20]}."
                )
        arr = frame[cols].to_numpy(dtype=np.float64)
        index = pd.Index(frame.index.astype(str))
    else:
        raise TypeError(
            f"The 'pred_probs' parameter of {func} must be a DataFrame indexed by item_id "
            f"with one column per class, or a tuple (item_ids, array). "
            f"Got {type(pred_probs).__name__} instead."
        )
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()[:5].tolist()
        raise SchemaError(f"{func}: pred_probs has several rows for item(s) {dup}.")
    pos = index.get_indexer(pd.Index(np.asarray(item_ids).astype(str)))
    missing = pos < 0
    if missing.any():
        if require_all:
            raise SchemaError(
                f"{func}: pred_probs has no row for {int(missing.sum())} item(s), e.g. "
                f"{list(np.asarray(item_ids)[missing][:5])}. Predict every annotated item "
                f"(out of sample) or drop those items."
            )
        out = np.full((len(pos), arr.shape[1]), np.nan)
        out[~missing] = arr[pos[~missing]]
        return out
    out = arr[pos]
    if not np.isfinite(out).all():
        raise SchemaError(f"{func}: pred_probs holds NaN or infinite values.")
    return out


def _majority_codes(counts: np.ndarray, pred_probs: np.ndarray | None = None):
    """Winning class per row (ties: highest pred_prob when given, then class order)."""
    top = counts.max(axis=1)
    is_top = counts == top[:, None]
    tie = is_top.sum(axis=1) > 1
    if pred_probs is None:
        label = np.argmax(is_top, axis=1)  # first tied class in class order
    else:
        score = np.where(is_top, pred_probs, -np.inf)
        label = np.argmax(score, axis=1)
    return label, top, tie


def consensus(annotations: pd.DataFrame, method: str = "majority", *, pred_probs=None,
              classes=None, smoothing: float = 2.0, max_iter: int = 100,
              tol: float = 1e-6, iou: float = 0.55, items=None) -> pd.DataFrame:
    """One consensus label per annotated item (or consensus boxes for detection).

    Detection annotations (with box columns ``x``, ``y``, ``w``, ``h``) go to
    :func:`workbench.detection.consensus.box_consensus`: ``method`` in {'majority', 'wbf',
    'dawid_skene'}, ``iou`` (clustering threshold) and ``items`` (image sizes) apply there
    only, and the result has one row per consensus box.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label`` [, ``annotated_at``].
    method : {'majority', 'dawid_skene', 'crowdlab'}, default='majority'
        ``'majority'``: most frequent label. **Tie policy**: when model probabilities are
        given, the tied class the model finds most probable wins; otherwise the tied class
        that comes first in the class order (``classes=``, else sorted labels). Ties are
        flagged in the ``tie`` column.
        ``'dawid_skene'``: Dawid & Skene (1979) EM with one full confusion matrix per
        annotator (see :func:`dawid_skene`).
        ``'crowdlab'``: cleanlab's CROWDLAB
        (``cleanlab.multiannotator.get_label_quality_multiannotator``), which also needs
        out-of-sample ``pred_probs``.
    pred_probs : DataFrame or tuple (item_ids, array), optional
        Model probabilities: a DataFrame indexed by ``item_id`` (or with an ``item_id``
        column) with one column per class (``<class>`` or ``prob_<class>``), or
        ``project.pred_probs(run)``. Required by ``'crowdlab'``; breaks majority ties.
    classes : sequence of str, optional
        Class order (labels outside it raise). Default: sorted labels seen.
    smoothing : float, default=2.0
        Dawid-Skene only: pseudo-labels per true class added to each annotator's
        confusion matrix, spread like the pooled matrix of all annotators.
    max_iter : int, default=100
        Dawid-Skene only: maximum EM iterations.
    tol : float, default=1e-6
        Dawid-Skene only: stop when the mean log-likelihood per label improves less.
    iou : float, default=0.55
        Detection only: IoU above which a box joins a cluster (WBF's ``iou_thr``).
    items : DataFrame or project, optional
        Detection only: image sizes (``item_id``, ``width``, ``height``) to clip boxes with.

    Returns
    -------
    DataFrame
        One row per annotated item, sorted by ``item_id``: ``item_id``, ``label``,
        ``confidence`` (majority: share of labels for the winner; dawid_skene: posterior
        probability; crowdlab: cleanlab's consensus quality score), ``n_labels``, and for
        majority ``tie`` (bool).

    Raises
    ------
    MissingDependencyError
        If ``method='crowdlab'`` and cleanlab is not installed.
    ValueError
        If ``method='crowdlab'`` and ``pred_probs`` is None.

    Examples
    --------
    >>> import pandas as pd
    >>> ann = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b"],
    ...                     "annotator": ["x", "y", "z", "x", "y"],
    ...                     "label": ["cat", "dog", "cat", "dog", "cat"]})
    >>> consensus(ann)[["item_id", "label", "n_labels", "tie"]]
      item_id label  n_labels    tie
    0       a   cat         3  False
    1       b   cat         2   True
    """
    func = "consensus"
    if isinstance(annotations, pd.DataFrame) and {"x", "y", "w", "h"} <= set(annotations.columns):
        from .detection.consensus import box_consensus

        if pred_probs is not None:
            raise ValueError("consensus: pred_probs applies to one label per item; detection "
                             "annotations (box columns x, y, w, h) take none. Drop pred_probs.")
        return box_consensus(annotations, method, iou=iou, items=items, classes=classes,
                             smoothing=smoothing, max_iter=max_iter, tol=tol)
    check_option(method, "method", func, CONSENSUS_METHODS)
    if method == "crowdlab" and pred_probs is None:
        raise ValueError(
            "consensus(method='crowdlab') needs out-of-sample model probabilities: pass "
            "pred_probs=project.pred_probs(run) (or a DataFrame indexed by item_id with one "
            "column per class). Without a model use method='majority' or 'dawid_skene'."
        )
    if method == "crowdlab" and classes is None and isinstance(pred_probs, pd.DataFrame):
        classes = _classes_from_probs(pred_probs, annotations)
    bar = _stage_bar(func, 3)
    enc = _encode(annotations, func, classes=classes, allow_empty=True)
    if enc.n_items == 0:
        empty = {"item_id": pd.array([], dtype="str"), "label": pd.array([], dtype="str"),
                 "confidence": np.empty(0), "n_labels": np.empty(0, dtype=np.int64)}
        if method == "majority":
            empty["tie"] = np.empty(0, dtype=bool)
        bar.close()
        return pd.DataFrame(empty)
    bar.update()
    bar.set_postfix_str(method, refresh=False)
    n_labels = _labels_per_item(enc)
    if method == "majority":
        probs = (None if pred_probs is None else
                 _align_pred_probs(pred_probs, enc.items, enc.classes, func,
                                   require_all=False))
        if probs is not None:
            probs = np.where(np.isnan(probs), -1.0, probs)
        label, top, tie = _majority_codes(enc.counts, probs)
        with np.errstate(invalid="ignore"):
            conf = top / n_labels
        extra = {"tie": tie}
    elif method == "dawid_skene":
        fit = _dawid_skene_fit(enc, smoothing, _check_dawid_skene(smoothing, max_iter, func),
                               tol)
        label = np.argmax(fit.post, axis=0)
        conf = fit.post.max(axis=0)
        del fit
        extra = {}
    else:
        label, conf = _crowdlab(enc, pred_probs, func)
        extra = {}
    bar.update()
    bar.set_postfix_str("result", refresh=False)
    out = pd.DataFrame({
        "item_id": enc.items.array,
        "label": _class_names(enc, label),
        "confidence": np.asarray(conf, dtype=np.float64),
        "n_labels": n_labels.astype(np.int64),
        **extra,
    })
    bar.close()
    return out


def _classes_from_probs(pred_probs: pd.DataFrame, annotations: Any) -> list[str] | None:
    """The model's classes (column order) when they cover every label annotators used."""
    cols = [str(c) for c in pred_probs.columns if str(c) != "item_id"]
    cols = [c[len("prob_"):] if c.startswith("prob_") else c for c in cols]
    try:
        seen = set(annotations["label"].dropna().astype(str))
    except (KeyError, TypeError):
        return None
    return cols if seen <= set(cols) and len(set(cols)) == len(cols) else None


def _crowdlab(enc: _Encoded, pred_probs, func: str):
    try:
        from cleanlab.multiannotator import get_label_quality_multiannotator
    except ImportError as exc:  # pragma: no cover - cleanlab is a core dependency
        raise MissingDependencyError(
            "consensus(method='crowdlab') needs cleanlab: pip install cleanlab"
        ) from exc
    probs = _align_pred_probs(pred_probs, enc.items, enc.classes, func)
    n_ann = len(enc.annotators)
    wide = np.full((enc.n_items, n_ann), np.nan)
    wide[enc.item, enc.annotator] = enc.label
    labels = pd.DataFrame(wide, columns=[str(a) for a in enc.annotators])
    # cleanlab requires every annotator to have labelled something (true by construction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = get_label_quality_multiannotator(labels, probs, verbose=False)
    lq = res["label_quality"]
    return (lq["consensus_label"].to_numpy(dtype=np.int64),
            lq["consensus_quality_score"].to_numpy(dtype=np.float64))


# --------------------------------------------------------------------------------------
# Dawid-Skene
# --------------------------------------------------------------------------------------
@dataclass
class DawidSkeneResult:
    """Fitted Dawid-Skene model.

    Attributes
    ----------
    posteriors : DataFrame
        (n_items, n_classes) posterior class probabilities, index ``item_id``.
    confusion : dict of str to DataFrame
        Per annotator, rows = true class, columns = given label, rows sum to 1.
    priors : Series
        Estimated class prevalence.
    n_iter : int
        EM iterations run.
    log_likelihood : float
        Final mean log-likelihood per label.
    converged : bool
        Whether ``tol`` was reached before ``max_iter``.
    """

    posteriors: pd.DataFrame
    confusion: dict[str, pd.DataFrame]
    priors: pd.Series
    n_iter: int
    log_likelihood: float
    converged: bool


def dawid_skene(annotations: pd.DataFrame, *, classes=None, smoothing: float = 2.0,
                max_iter: int = 100, tol: float = 1e-6) -> DawidSkeneResult:
    """Fit Dawid & Skene (1979): true labels and one confusion matrix per annotator by EM.

    Vectorised numpy. EM starts from the soft majority vote (label shares per item). The
    M-step adds ``smoothing`` pseudo-labels to every row of each annotator's confusion
    matrix, distributed like the pooled confusion matrix of all annotators (plus a tiny
    uniform floor), so annotators with few labels are pulled towards the average annotator
    instead of getting degenerate 0/1 matrices.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.
    classes : sequence of str, optional
        Class order. Default: sorted labels seen.
    smoothing : float, default=2.0
        Pseudo-labels per true class and annotator (0 = plain maximum likelihood).
    max_iter : int, default=100
        Maximum EM iterations.
    tol : float, default=1e-6
        Stop when the mean log-likelihood per label improves by less than this.

    Returns
    -------
    DawidSkeneResult
    """
    func = "dawid_skene"
    max_iter = _check_dawid_skene(smoothing, max_iter, func)
    return _dawid_skene(_encode(annotations, func, classes=classes), smoothing, max_iter, tol)


def _check_dawid_skene(smoothing, max_iter, func: str) -> int:
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or smoothing < 0:
        raise ValueError(f"The 'smoothing' parameter of {func} must be a float in the range "
                         f"[0, inf). Got {smoothing!r} instead.")
    return check_int(max_iter, "max_iter", func, minimum=1)


#: Label positions within an item that the E-step handles with one gather each (every
#: item's first label, second label, ...); labels past them go through ``np.add.at``.
_DS_POSITIONS = 8


def _label_positions(enc: _Encoded, code: np.ndarray, limit: int = _DS_POSITIONS):
    """Per-annotation ``code`` laid out by position within the item, for gathers by item.

    Returns ``(parts, rest)``: ``parts[p]`` is ``(items, codes)`` for the ``p``-th label of
    every item that has one (``items`` None when that is every item, the usual case for the
    first labels), ``rest`` the same for all labels at positions ``limit`` and beyond (None
    when no item has that many). Summing ``table[:, codes]`` into ``items`` over the parts
    and the rest adds up every label of every item, without an (n_labels, K) temporary.
    """
    n = enc.n_items
    order = enc.order
    m = np.bincount(enc.item, minlength=n)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(m[:-1], out=starts[1:])
    code_sorted = code[order]
    top = int(m.max()) if n else 0
    parts = []
    for p in range(min(limit, top)):
        have = m > p
        if have.all():
            parts.append((None, code_sorted[starts + p]))
        else:
            idx = np.flatnonzero(have)
            parts.append((idx, code_sorted[starts[idx] + p]))
    rest = None
    if top > limit:
        pos = np.arange(len(order)) - np.repeat(starts, m)
        extra = pos >= limit
        rest = (np.repeat(np.arange(n), m)[extra], code_sorted[extra])
    return parts, rest


@dataclass
class _DSFit:
    """The arrays of a Dawid-Skene fit (posteriors class-major: (K, n_items))."""

    post: np.ndarray
    log_conf: np.ndarray  # (n_annotators, K true, K given)
    log_prior: np.ndarray
    n_iter: int
    log_likelihood: float
    converged: bool


def _dawid_skene(enc: _Encoded, smoothing: float, max_iter: int, tol: float
                 ) -> DawidSkeneResult:
    """The EM of :func:`dawid_skene` on encoded annotations (parameters checked)."""
    fit = _dawid_skene_fit(enc, smoothing, max_iter, tol)
    items = (enc.items if isinstance(enc.items, pd.Index)
             else pd.Index(np.asarray(enc.items).astype(str))).rename("item_id")
    cls = pd.Index(enc.classes)
    confusion = {
        str(a): pd.DataFrame(np.exp(fit.log_conf[j]), index=cls.rename("true"),
                             columns=cls.rename("given"))
        for j, a in enumerate(enc.annotators)
    }
    return DawidSkeneResult(
        posteriors=pd.DataFrame(fit.post.T, index=items, columns=cls, copy=False),
        confusion=confusion,
        priors=pd.Series(np.exp(fit.log_prior), index=cls, name="prior"),
        n_iter=fit.n_iter,
        log_likelihood=fit.log_likelihood,
        converged=fit.converged,
    )


def _dawid_skene_fit(enc: _Encoded, smoothing: float, max_iter: int, tol: float) -> _DSFit:
    """Dawid-Skene EM on integer codes.

    Everything per item is class-major, ``(K, n_items)``, so the per-item reductions of
    the E-step run over K contiguous rows. Both steps go label position by label position
    within the item (:func:`_label_positions`): the M-step is a weighted ``np.bincount`` of
    the (annotator, given label) codes per true class, the E-step gathers each label's
    log-likelihood ``log_conf[annotator, :, label]`` from a small (K, n_annotators * K)
    table. Memory: a few (K, n_items) float64 arrays and one code per label, no
    (n_labels, K), (n_items, n_annotators) or (n_items, K, K) array.
    """
    from ._progress import progress

    k = enc.n_classes
    n = enc.n_items
    n_ann = len(enc.annotators)
    n_cols = n_ann * k
    parts, rest = _label_positions(enc, (enc.annotator * k + enc.label).astype(np.intp))
    n_labels = max(len(enc.item), 1)
    counts = enc.counts
    post = np.empty((k, n))
    np.divide(counts.T, _labels_per_item(enc), out=post)
    floor = 1e-3
    ll = ll_old = -np.inf
    converged = False
    it = 0
    log_conf = np.zeros((n_ann, k, k))
    log_prior = np.zeros(k)
    with progress(total=max_iter, desc="Dawid-Skene", unit="iter") as bar:
        for it in range(1, max_iter + 1):  # noqa: B007
            # M-step: priors and confusion matrices [annotator, true, given]
            prior = post.mean(axis=1) + 1e-12
            log_prior = np.log(prior / prior.sum())
            # expected counts [true t, (annotator, given)]: one bincount per class and
            # label position, weighted by that class's (contiguous) posteriors
            sums = np.zeros((k, n_cols))
            for t in range(k):
                for idx, codes in parts:
                    weights = post[t] if idx is None else post[t, idx]
                    sums[t] += np.bincount(codes, weights=weights, minlength=n_cols)
                if rest is not None:
                    sums[t] += np.bincount(rest[1], weights=post[t, rest[0]], minlength=n_cols)
            conf = np.ascontiguousarray(sums.reshape(k, n_ann, k).transpose(1, 0, 2))
            del post
            pooled = conf.sum(axis=0) + floor
            pooled /= pooled.sum(axis=1, keepdims=True)
            conf += smoothing * pooled[None, :, :] + floor
            conf /= conf.sum(axis=2, keepdims=True)
            log_conf = np.log(conf)
            # E-step: log p(true = t | labels) per item, gathered label by label
            table = np.ascontiguousarray(log_conf.transpose(1, 0, 2).reshape(k, n_ann * k))
            log_post = np.empty((k, n))
            buf = np.empty(n)
            for t in range(k):
                row, out = table[t], log_post[t]
                np.take(row, parts[0][1], out=out)
                for idx, codes in parts[1:]:
                    if idx is None:
                        out += np.take(row, codes, out=buf)
                    else:
                        out[idx] += row[codes]
                if rest is not None:
                    np.add.at(out, rest[0], row[rest[1]])
                out += log_prior[t]
            mx = log_post.max(axis=0)
            log_post -= mx
            np.exp(log_post, out=log_post)
            z = log_post.sum(axis=0)
            log_post /= z
            post = log_post
            del log_post
            ll = float((np.log(z) + mx).sum() / n_labels)
            bar.update()
            bar.set_postfix_str(f"log-likelihood {ll:.6f}")
            if ll - ll_old < tol:
                converged = True
                break
            ll_old = ll
    return _DSFit(post=post, log_conf=log_conf, log_prior=log_prior, n_iter=it,
                  log_likelihood=ll, converged=converged)


# --------------------------------------------------------------------------------------
# annotator quality
# --------------------------------------------------------------------------------------
def _reference_codes(reference: Any, enc: _Encoded, func: str) -> np.ndarray:
    """Reference class code per item of ``enc`` (-1 = no reference).

    Item ids are matched with Arrow's hash lookup and the reference labels are factorised
    once (their distinct values mapped to classes), so no per-item Python string is made.
    """
    if isinstance(reference, pd.DataFrame):
        check_columns(reference, ["item_id", "label"], what="reference", func=func)
        ref = pd.Series(reference["label"].to_numpy(), index=reference["item_id"].astype(str))
    elif isinstance(reference, pd.Series):
        ref = reference
    else:
        raise TypeError(
            f"The 'reference' parameter of {func} must be a Series indexed by item_id, a "
            f"DataFrame with item_id and label, a str among {{'majority', 'dawid_skene'}} "
            f"or None. Got {type(reference).__name__} instead."
        )
    ref_ids = _str_index(ref.index.astype(str))
    if _has_duplicates(ref_ids):
        raise SchemaError(f"{func}: reference has several labels for some items, e.g. "
                          f"{ref_ids[ref_ids.duplicated()][:5].tolist()}.")
    pos = _lookup(enc.items, ref_ids)  # reference row of each encoded item, -1 if none
    valid = ref.notna().to_numpy()
    row_code = np.full(len(ref), -1, dtype=np.int64)
    vals = pd.Index([], dtype="str")
    if valid.any():
        row_code[valid], vals = _str_codes(ref[valid].reset_index(drop=True))
    item_code = np.where(pos >= 0, row_code[np.maximum(pos, 0)], -1) if len(ref) else \
        np.full(enc.n_items, -1, dtype=np.int64)
    present = item_code >= 0
    to_class = pd.Index(enc.classes).get_indexer(vals)
    used = np.zeros(len(vals), dtype=bool)
    used[item_code[present]] = True
    if (used & (to_class < 0)).any():
        raise SchemaError(
            f"{func}: reference uses label(s) {sorted(vals[used & (to_class < 0)])[:10]} "
            f"that no annotator used and that are not in classes {enc.classes[:20]}. "
            f"Pass classes= with every class."
        )
    if not present.any():
        raise SchemaError(f"{func}: reference has no label for any annotated item "
                          f"(check that its index holds item_id values).")
    return np.where(present, np.append(to_class, -1)[item_code], -1).astype(np.int64)


def _has_duplicates(index: pd.Index) -> bool:
    """Whether a str Index repeats a value (Arrow's distinct count for Arrow strings)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        return pc.count_distinct(pa.array(index.array), mode="all").as_py() != len(index)
    except (TypeError, ValueError, ImportError):  # pragma: no cover - non-Arrow strings
        return bool(index.has_duplicates)


def _lookup(values: pd.Index, keys: pd.Index) -> np.ndarray:
    """Position in ``keys`` (distinct str) of every value (-1 when absent)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.index_in(pa.array(values.array), value_set=pa.array(keys.array))
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    except (TypeError, ValueError, ImportError):  # pragma: no cover - non-Arrow strings
        return np.asarray(keys.get_indexer(values), dtype=np.int64)


def _str_set(values: pd.Series) -> set[str]:
    """The str forms of the distinct non-missing ``values`` (distinct values first)."""
    return {str(v) for v in pd.unique(values.dropna())}


def _kappa_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Cohen's kappa for a stack of (K, K) confusion matrices."""
    n = cm.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = np.trace(cm, axis1=1, axis2=2) / n
        p_e = (cm.sum(axis=2) * cm.sum(axis=1)).sum(axis=1) / n**2
        return np.where((p_e < 1) & (n > 0), (p_o - p_e) / (1 - p_e), np.nan)


def _soft_confusion(group: np.ndarray, n_groups: int, label: np.ndarray, item: np.ndarray,
                    post: np.ndarray) -> np.ndarray:
    """Dawid-Skene confusion counts per group: (n_groups, K true, K given).

    One entry of ``group``, ``label`` and ``item`` per label; ``post`` holds the posterior
    true-class probabilities of every item (n_items, K). Entry ``[g, t, c]`` is the expected
    number of group ``g``'s labels ``c`` whose item is truly ``t``; its trace is the expected
    number of the group's labels that are right. One weighted bincount per true class over
    the class-major posteriors (``post.T`` is contiguous for :func:`_ds_posteriors`), so
    the only temporaries are one float per label.
    """
    k = post.shape[1]
    post_t = np.ascontiguousarray(post.T)
    key = np.asarray(group, dtype=np.intp) * k + label
    out = np.empty((k, n_groups * k))
    for t in range(k):
        out[t] = np.bincount(key, weights=post_t[t][item], minlength=n_groups * k)
    return np.ascontiguousarray(out.reshape(k, n_groups, k).transpose(1, 0, 2))


def _ds_posteriors(enc: _Encoded, *, smoothing: float = 2.0, max_iter: int = 100,
                   tol: float = 1e-6) -> np.ndarray:
    """Dawid-Skene posterior true-class probabilities of every encoded item (n_items, K).

    A transposed view of the class-major array of the fit (``result.T`` is contiguous).
    """
    return _dawid_skene_fit(enc, smoothing, max_iter, tol).post.T


def _leave_one_out_majority(enc: _Encoded, chunk: int = 2_000_000) -> np.ndarray:
    """Per label: the majority class of the *other* labels of its item (-1: none or tie).

    Goes through the labels in chunks so the (labels, K) counts stay small.
    """
    out = np.empty(len(enc.item), dtype=np.int64)
    counts = enc.counts
    for start in range(0, len(enc.item), chunk):
        stop = min(start + chunk, len(enc.item))
        c = counts[enc.item[start:stop]]  # (chunk, K) counts of the label's item
        c[np.arange(stop - start), enc.label[start:stop]] -= 1
        label_ref, top, tie = _majority_codes(c)
        out[start:stop] = np.where((top > 0) & ~tie, label_ref, -1)
    return out


def annotator_quality(annotations: pd.DataFrame, reference=None, *, method: str = "dawid_skene",
                      confusion: bool = False, classes=None, min_support: int = 1,
                      iou: float | None = None) -> pd.DataFrame:
    """How well each annotator matches a reference (gold labels, or the other annotators).

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.
    reference : Series, DataFrame, {'majority', 'dawid_skene'} or None, default=None
        Gold labels: a Series indexed by ``item_id`` or a frame with ``item_id`` and
        ``label``. ``None`` (default) compares each label with the **leave-one-out
        majority** of the *other* annotators of the item (so an annotator's own vote does
        not inflate their score; items where the others tie or that nobody else labelled
        are not scored). ``'majority'`` / ``'dawid_skene'`` use that consensus of all
        labels.
    method : {'dawid_skene', 'majority'}, default='dawid_skene'
        How annotators are **ranked when no gold labels are given** (``reference`` None or
        a consensus name). ``'dawid_skene'`` (default): by ``ds_accuracy``, the accuracy
        that Dawid & Skene's per-annotator confusion matrices estimate, which down-weights
        careless annotators instead of letting them drag the vote (on planted crowds it
        ranks annotators closer to their true accuracy: ``benchmarks/bench_annotator_ranking.py``).
        ``'majority'``: by ``accuracy`` against the reference (the ranking before this
        parameter existed). With gold labels (a Series or DataFrame ``reference``) the
        ranking is always by ``accuracy`` against the gold. Classification only: detection
        annotations are scored by :mod:`workbench.detection.agreement` as before.
    confusion : bool, default=False
        Add a ``confusion`` column holding each annotator's confusion matrix (DataFrame,
        rows = reference class, columns = given label).
    classes : sequence of str, optional
        Class order. Default: sorted labels seen (plus reference labels).
    min_support : int, default=1
        ``worst_class`` considers only reference classes with at least this many scored
        labels from the annotator.

    Returns
    -------
    DataFrame
        One row per annotator, best first (by ``ds_accuracy`` with
        ``method='dawid_skene'`` and no gold, else by ``accuracy``; ties by ``kappa``):
        ``annotator``, ``n_labels``, ``n_scored`` (labels with a reference), ``accuracy``,
        ``kappa`` (Cohen's kappa against the reference), ``worst_class`` (reference class
        with the lowest recall), ``worst_class_recall``, ``ds_accuracy`` (Dawid-Skene
        estimate of the share of the annotator's labels that are right: the mean posterior
        probability, under the model fitted on all labels, of the label they gave, over
        their labels on items someone else labelled too; NaN if there are none),
        ``rank`` (1 = best) [, ``confusion``]. Annotators with nothing scored are last
        with NaN scores (and a warning) when ranked by ``accuracy``.

    Examples
    --------
    >>> import pandas as pd
    >>> ann = pd.DataFrame({"item_id": list("aaabbbccc"), "annotator": list("xyz") * 3,
    ...                     "label": list("111222331")})
    >>> annotator_quality(ann)["annotator"].tolist()
    ['x', 'y', 'z']
    """
    func = "annotator_quality"
    if _detection(annotations, iou, func):
        from .detection.agreement import detection_annotator_quality

        if confusion:
            raise ValueError(f"The 'confusion' parameter of {func} applies to classification "
                             "annotations only. Got True with detection annotations.")
        return detection_annotator_quality(annotations, reference, iou=_iou(iou),
                                           classes=classes, min_support=min_support)
    check_option(method, "method", func, ("dawid_skene", "majority"))
    check_int(min_support, "min_support", func, minimum=1)
    if isinstance(reference, str):
        check_option(reference, "reference", func, ("majority", "dawid_skene"))
    gold = isinstance(reference, (pd.Series, pd.DataFrame))
    if classes is None and isinstance(reference, (pd.Series, pd.DataFrame)):
        ann_labels = _str_set(annotations["label"]) if "label" in \
            annotations.columns else set()
        ref_vals = reference["label"] if isinstance(reference, pd.DataFrame) and \
            "label" in reference.columns else reference
        if isinstance(ref_vals, pd.Series):
            classes = sorted(ann_labels | _str_set(ref_vals))
    bar = _stage_bar(func, 4)
    enc = _encode(annotations, func, classes=classes)
    bar.update()
    bar.set_postfix_str("reference", refresh=False)
    k = enc.n_classes
    n_ann = len(enc.annotators)
    post = None  # Dawid-Skene posteriors (n_items, K), fitted once
    if reference is None:
        ref_per_ann = _leave_one_out_majority(enc)
    else:
        if isinstance(reference, str) and reference == "dawid_skene":
            post = _ds_posteriors(enc)
            ref_codes = np.argmax(post.T, axis=0)
        elif isinstance(reference, str):  # "majority"
            ref_codes = _majority_codes(enc.counts)[0]
        else:
            ref_codes = _reference_codes(reference, enc, func)
        ref_per_ann = ref_codes[enc.item]
    bar.update()
    bar.set_postfix_str("scores", refresh=False)
    scored = ref_per_ann >= 0
    a, r, g = enc.annotator[scored], ref_per_ann[scored], enc.label[scored]
    cm = np.bincount(a * k * k + r * k + g, minlength=n_ann * k * k).reshape(n_ann, k, k)
    n_labels = np.bincount(enc.annotator, minlength=n_ann)
    n_scored = cm.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.trace(cm, axis1=1, axis2=2) / n_scored
        support = cm.sum(axis=2)  # (n_ann, K) per reference class
        recall = np.diagonal(cm, axis1=1, axis2=2) / support
    kappa = _kappa_from_confusion(cm)
    recall_masked = np.where(support >= min_support, recall, np.inf)
    worst = np.argmin(recall_masked, axis=1)
    has_worst = np.isfinite(recall_masked[np.arange(n_ann), worst])
    classes_arr = np.asarray(enc.classes, dtype=object)
    out = pd.DataFrame({
        "annotator": pd.array(enc.annotators.astype(str), dtype="str"),
        "n_labels": n_labels.astype(np.int64),
        "n_scored": n_scored.astype(np.int64),
        "accuracy": accuracy.astype(np.float64),
        "kappa": kappa,
        "worst_class": pd.array(np.where(has_worst, classes_arr[worst], None), dtype="str"),
        "worst_class_recall": np.where(has_worst, recall_masked[np.arange(n_ann), worst],
                                       np.nan),
    })
    # Dawid-Skene: labels on items that someone else labelled too (a lone label only
    # confirms itself); NaN for an annotator who shares no item
    shared = _labels_per_item(enc)[enc.item] >= 2
    bar.update()
    bar.set_postfix_str("Dawid-Skene accuracy", refresh=False)
    if post is None:
        post = _ds_posteriors(enc)
    soft = _soft_confusion(enc.annotator[shared], n_ann, enc.label[shared], enc.item[shared],
                           post)
    del post
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ds_accuracy"] = (np.trace(soft, axis1=1, axis2=2)
                              / np.bincount(enc.annotator[shared], minlength=n_ann))
    if confusion:
        cls = pd.Index(enc.classes)
        out["confusion"] = [pd.DataFrame(cm[j], index=cls.rename("reference"),
                                         columns=cls.rename("given")) for j in range(n_ann)]
    unscored = out.loc[out["n_scored"] == 0, "annotator"].tolist()
    if unscored:
        warnings.warn(
            f"{func}: annotator(s) {unscored[:10]} have no label with a reference (no shared "
            f"item, or no gold label for their items); their scores are NaN.",
            stacklevel=2,
        )
    first = "ds_accuracy" if method == "dawid_skene" and not gold else "accuracy"
    out = out.sort_values([first, "kappa", "annotator"], ascending=[False, False, True],
                          na_position="last", kind="stable").reset_index(drop=True)
    out.insert(len(out.columns) - (1 if confusion else 0), "rank", np.arange(1, len(out) + 1))
    bar.close()
    return out


# --------------------------------------------------------------------------------------
# confused pairs and disagreement
# --------------------------------------------------------------------------------------
def confused_pairs(annotations: pd.DataFrame, *, classes=None, min_count: int = 1,
                   iou: float | None = None) -> pd.DataFrame:
    """Class pairs that annotators swap, most frequent first, with the items behind them.

    Every two annotators who labelled the same item form a co-labelled pair; when their
    labels differ, the unordered class pair ``{a, b}`` is counted once.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.
    classes : sequence of str, optional
        Class order (``class_a`` comes before ``class_b`` in it). Default: sorted labels.
    min_count : int, default=1
        Drop pairs seen fewer times.

    Returns
    -------
    DataFrame
        ``class_a``, ``class_b``, ``n_pairs`` (disagreeing annotator pairs), ``n_items``
        (distinct items), ``share`` (of all disagreeing annotator pairs), ``rate``
        (``n_pairs`` over the co-labelled pairs where either label is ``class_a`` or
        ``class_b``), ``item_ids`` (sorted list of str). Sorted by ``n_pairs`` descending.
        Empty (with these columns) when annotators never disagree.
    """
    func = "confused_pairs"
    if _detection(annotations, iou, func):
        from .detection.agreement import detection_confused_pairs

        return detection_confused_pairs(annotations, iou=_iou(iou), classes=classes,
                                        min_count=min_count)
    check_int(min_count, "min_count", func, minimum=1)
    enc = _encode(annotations, func, classes=classes)
    k = enc.n_classes
    r1, r2 = _within_item_pairs(enc)
    l1, l2 = enc.label[r1], enc.label[r2]
    lo, hi = np.minimum(l1, l2), np.maximum(l1, l2)
    # co-labelled pairs touching each class (for the rate)
    touch = np.bincount(lo, minlength=k) + np.bincount(hi, minlength=k) - \
        np.bincount(lo[lo == hi], minlength=k)
    diff = lo != hi
    lo, hi, item = lo[diff], hi[diff], enc.item[r1][diff]
    key = lo * k + hi
    cols = ["class_a", "class_b", "n_pairs", "n_items", "share", "rate", "item_ids"]
    if key.size == 0:
        return pd.DataFrame({c: pd.Series([], dtype="str" if c.startswith("class") else
                                          ("object" if c == "item_ids" else "float64"))
                             for c in cols})
    ukeys, inv = _small_unique(key, k * k)
    n_pairs = np.bincount(inv, minlength=len(ukeys))
    # distinct items per pair
    pair_item = _sorted_distinct(inv.astype(np.int64) * max(enc.n_items, 1) + item)
    pi_pair = pair_item // max(enc.n_items, 1)
    pi_item = pair_item % max(enc.n_items, 1)
    n_items = np.bincount(pi_pair, minlength=len(ukeys))
    bounds = np.r_[0, np.cumsum(n_items)]
    ids = _item_names(enc, pi_item)
    item_lists = [ids[bounds[j]:bounds[j + 1]] for j in range(len(ukeys))]
    a, b = ukeys // k, ukeys % k
    both = np.zeros(len(ukeys))
    both[:] = touch[a] + touch[b] - n_pairs  # pairs touching a or b
    classes_arr = np.asarray(enc.classes, dtype=object)
    out = pd.DataFrame({
        "class_a": pd.array(classes_arr[a].astype(str), dtype="str"),
        "class_b": pd.array(classes_arr[b].astype(str), dtype="str"),
        "n_pairs": n_pairs.astype(np.int64),
        "n_items": n_items.astype(np.int64),
        "share": n_pairs / n_pairs.sum(),
        "rate": n_pairs / both,
        "item_ids": item_lists,
    })
    out = out[out["n_pairs"] >= min_count]
    return out.sort_values(["n_pairs", "class_a", "class_b"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)


def confused_pairs_matrix(pairs: pd.DataFrame, classes=None, value: str = "n_pairs"
                          ) -> pd.DataFrame:
    """Symmetric class x class matrix of :func:`confused_pairs` (zero where never swapped).

    Parameters
    ----------
    pairs : DataFrame
        Output of :func:`confused_pairs`.
    classes : sequence of str, optional
        Row/column order. Default: the classes appearing in ``pairs``, sorted.
    value : {'n_pairs', 'n_items', 'share', 'rate'}, default='n_pairs'
        The cell value.

    Returns
    -------
    DataFrame
    """
    check_option(value, "value", "confused_pairs_matrix", ("n_pairs", "n_items", "share",
                                                           "rate"))
    if classes is None:
        classes = sorted(set(pairs["class_a"]) | set(pairs["class_b"]))
    classes = [str(c) for c in classes]
    idx = pd.Index(classes)
    arr = np.zeros((len(classes), len(classes)))
    ia, ib = idx.get_indexer(pairs["class_a"]), idx.get_indexer(pairs["class_b"])
    ok = (ia >= 0) & (ib >= 0)
    vals = pairs[value].to_numpy(dtype=float)[ok]
    arr[ia[ok], ib[ok]] = vals
    arr[ib[ok], ia[ok]] = vals
    return pd.DataFrame(arr, index=idx, columns=idx)


def disagreeing_items(annotations: pd.DataFrame, annotator_a: str,
                      annotator_b: str | None = None) -> list[str]:
    """Items where two annotators (or one annotator and anyone else) gave different labels.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.
    annotator_a : str
        An annotator.
    annotator_b : str, optional
        Another annotator. ``None``: items where ``annotator_a`` disagrees with at least
        one other annotator of the item.

    Returns
    -------
    list of str
        Sorted item ids.
    """
    check_columns(annotations, ["item_id", "annotator", "label"], what="annotations",
                  func="disagreeing_items")
    ann = latest_annotations(annotations)
    ann = ann.assign(item_id=ann["item_id"].astype(str), annotator=ann["annotator"].astype(str),
                     label=ann["label"].astype(str))
    mine = ann[ann["annotator"] == str(annotator_a)][["item_id", "label"]]
    if annotator_b is None:
        others = ann[ann["annotator"] != str(annotator_a)][["item_id", "label"]]
    else:
        others = ann[ann["annotator"] == str(annotator_b)][["item_id", "label"]]
    merged = mine.merge(others, on="item_id", suffixes=("_a", "_b"))
    bad = merged.loc[merged["label_a"] != merged["label_b"], "item_id"]
    return sorted(set(bad))


def disagreeing_items_by_annotator(annotations: pd.DataFrame) -> dict[str, list[str]]:
    """For every annotator, the items where they disagree with at least one other annotator.

    Vectorised form of ``disagreeing_items(annotations, a)`` for all annotators at once.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.

    Returns
    -------
    dict of str to list of str
        Every annotator (also those without disagreements) to sorted item ids.
    """
    enc = _encode(annotations, "disagreeing_items_by_annotator", allow_empty=True)
    n_ann = len(enc.annotators)
    out: dict[str, list[str]] = {str(a): [] for a in enc.annotators}
    if enc.n_items == 0:
        return out
    r1, r2 = _within_item_pairs(enc)
    diff = enc.label[r1] != enc.label[r2]
    who = np.concatenate([enc.annotator[r1][diff], enc.annotator[r2][diff]])
    item = np.concatenate([enc.item[r1][diff], enc.item[r2][diff]])
    key = _sorted_distinct(who.astype(np.int64) * enc.n_items + item)  # by annotator, item
    who, item = key // enc.n_items, key % enc.n_items
    bounds = np.searchsorted(who, np.arange(n_ann + 1))
    ids = _item_names(enc, item)
    for j, a in enumerate(enc.annotators):
        out[str(a)] = ids[bounds[j]:bounds[j + 1]]
    return out


def disagreement_frame(project_or_annotations: Any, items: pd.DataFrame | None = None, *,
                       min_labels: int = 2, classes=None) -> pd.DataFrame:
    """Per item: do the annotators disagree, and how much — joined with item metadata.

    The result feeds disagreement-driven slicing:
    ``workbench.discover_slices(disagreement_frame(project), target="disagree")``.

    Parameters
    ----------
    project_or_annotations : Project or DataFrame
        A project (annotations and items are taken from it) or a long annotations frame.
    items : DataFrame, optional
        Item metadata (``item_id`` plus columns) to join; default the project's items.
    min_labels : int, default=2
        Items with fewer labels are left out (one label cannot disagree).
    classes : sequence of str, optional
        Class order for the consensus tie policy.

    Returns
    -------
    DataFrame
        ``item_id``, ``n_labels``, ``n_distinct`` (distinct labels), ``consensus_label``
        (majority; ties by class order), ``agreement`` (share of labels equal to it),
        ``disagreement`` (``1 - agreement``), ``disagree`` (int 0/1: not unanimous),
        then the metadata columns of ``items`` (``filepath`` and ``label`` excluded).
        ``frame.attrs["metadata_columns"]`` lists those metadata columns, so
        :func:`workbench.discover_slices` slices on them and not on the derived scores.
    """
    func = "disagreement_frame"
    check_int(min_labels, "min_labels", func, minimum=1)
    if isinstance(project_or_annotations, pd.DataFrame):
        annotations = project_or_annotations
    else:
        annotations = project_or_annotations.annotations
        if items is None:
            items = project_or_annotations.items
        if classes is None:
            classes = getattr(project_or_annotations, "classes", None) or None
    if classes is not None:
        seen = set(annotations["label"].dropna().astype(str)) if "label" in \
            annotations.columns else set()
        if not seen <= set(map(str, classes)):
            classes = None
    enc = _encode(annotations, func, classes=classes)
    counts = enc.counts
    n_labels = _labels_per_item(enc)
    label, top, _ = _majority_codes(counts)
    keep = n_labels >= min_labels
    agreement = top / n_labels
    classes_arr = np.asarray(enc.classes, dtype=object)
    out = pd.DataFrame({
        "item_id": pd.array(enc.items[keep].astype(str), dtype="str"),
        "n_labels": n_labels[keep].astype(np.int64),
        "n_distinct": (counts[keep] > 0).sum(axis=1).astype(np.int64),
        "consensus_label": pd.array(classes_arr[label[keep]].astype(str), dtype="str"),
        "agreement": agreement[keep],
        "disagreement": 1 - agreement[keep],
        "disagree": (agreement[keep] < 1).astype(np.int64),
    })
    if items is not None:
        check_columns(items, ["item_id"], what="items", func=func)
        meta_cols = [c for c in items.columns
                     if c not in ("filepath", "label", "text") and c not in out.columns]
        meta = items[["item_id", *[c for c in meta_cols if c != "item_id"]]].copy()
        meta["item_id"] = meta["item_id"].astype("str")
        out = out.merge(meta.drop_duplicates("item_id"), on="item_id", how="left")
        out.attrs["metadata_columns"] = [c for c in meta_cols if c != "item_id"]
    else:
        out.attrs["metadata_columns"] = []
    out.attrs["target"] = "disagree"
    return out
