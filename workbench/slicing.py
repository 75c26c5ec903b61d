"""Slice model errors: confusion tables, metrics per slice, slice discovery, run comparison.

Every function here is pure: DataFrames in, DataFrames out, no widgets. The input of most
functions is an *errors frame*, one row per item, as returned by :func:`project_errors`
(``Project.errors(run)``)::

    item_id  label  predicted  confidence  correct  <metadata columns...>

``label`` is the reference label (the item's own label, else the annotators' majority
consensus) and ``correct`` is ``label == predicted``. ``label`` and ``predicted`` are
categoricals whose categories are the project's classes, in class order.

Statistics used (stated once here, repeated in each docstring):

* Confidence intervals of a rate: 95 % Wilson score interval, the same numbers as
  ``statsmodels.stats.proportion.proportion_confint(count, nobs, method="wilson")``.
* Slice against the rest of the items: two-proportion z-test (pooled variance); when an
  expected cell count of the 2x2 table is below 5, Fisher's exact test instead. Scores that
  are not 0/1 use Welch's t-test. :func:`slice_metrics` is two-sided, :func:`discover_slices`
  one-sided ("worse than the rest").
* Multiple testing: Benjamini-Hochberg false discovery rate over every slice tested in the
  call (``q_value``).
* Numeric columns (with more distinct values than ``bins``) are cut at their quantiles into
  half-open bins ``[low, high)``, the last one closed ``[low, high]``; missing values are a
  slice of their own.

Beyond memory: :func:`confusion_table`, :func:`cell_items`, :func:`slice_metrics`,
:func:`discover_slices` and :func:`slice_items` also take a run's errors table where the
data lives, ``workbench.engine.register_project(path).errors(run)`` (DuckDB out of core, or
Spark through Ibis): the counting runs in the engine, the statistics here on its small
results (docs/scale.md).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_columns, check_fraction, check_int, check_option
from .errors import SchemaError

__all__ = [
    "project_errors",
    "confusion_table",
    "cell_items",
    "slice_metrics",
    "slice_items",
    "slice_mask",
    "discover_slices",
    "compare_runs",
    "RunDiff",
    "wilson_interval",
    "bh_adjust",
]

#: Columns of an errors frame that are not metadata (never sliced on by default).
CORE_COLUMNS = ("item_id", "label", "predicted", "confidence", "correct", "is_error",
                "filepath")
_NA_LABEL = "<NA>"
#: Columns that mark a matches frame of :func:`workbench.match_detections`; given one (or a
#: detection project), the functions below hand over to :mod:`workbench.detection.slicing`.
_MATCH_COLUMNS = frozenset({"item_id", "box_id", "pred_id", "label", "predicted", "outcome",
                            "is_fn", "is_fp"})
#: Targets that send a matches frame to the object-level slicing of detection.
_DETECTION_TARGETS = ("is_fn", "is_fp", "is_error")
#: Per-item data-issue flags (workbench.data_issues.data_issue_flags): targets, never features.
_DATA_ISSUE_TARGETS = ("is_outlier", "is_duplicate")


def _is_matches(frame: Any) -> bool:
    return isinstance(frame, pd.DataFrame) and _MATCH_COLUMNS.issubset(frame.columns)


def _is_detection(obj: Any) -> bool:
    """A matches frame or a detection project (both go to workbench.detection.slicing)."""
    if isinstance(obj, pd.DataFrame):
        return _is_matches(obj)
    return getattr(obj, "task", None) == "detection"


def _in_engine(errors: Any, func: str, run: str | None = None):
    """The run's errors table in the engine behind ``errors``, or None for anything else.

    ``errors`` may be ``EngineTables.errors(run)`` (a :class:`workbench.engine.EngineErrors`)
    or the ``EngineTables`` themselves (``run``, else the default run): the functions below
    then count where the data lives (:mod:`workbench.engine`).
    """
    if isinstance(errors, pd.DataFrame) or \
            not type(errors).__module__.startswith("workbench.engine"):
        return None
    from .engine.tables import EngineErrors, EngineTables

    if isinstance(errors, EngineTables):
        return errors.errors(run)
    if isinstance(errors, EngineErrors) and run is not None and run != errors.run:
        raise ValueError(f"{func}: run={run!r}, but the errors table given is run "
                         f"{errors.run!r}. Pass tables.errors({run!r}), or drop run.")
    return errors if isinstance(errors, EngineErrors) else None


def _engine_target(target: str, func: str) -> None:
    if target != "is_error":
        raise ValueError(f"The 'target' parameter of {func} must be 'is_error' for an errors "
                         f"table in the engine (it counts the model's errors). Got {target!r} "
                         "instead. Slice other targets on a loaded frame.")


def _classification_only(func: str, **given: Any) -> None:
    extra = [k for k, v in given.items() if v is not None]
    if extra:
        raise ValueError(f"The {extra[0]!r} parameter of {func} is for detection (a matches "
                         "frame or a detection project); a classification errors frame or "
                         "project has no IoU and its run is chosen by project_errors. Drop "
                         "it.")


# --------------------------------------------------------------------------------------
# errors frame
# --------------------------------------------------------------------------------------


def project_errors(project: Any, run: str | None = None) -> pd.DataFrame:
    """One row per item: its reference label, the run's prediction and whether it is right.

    Parameters
    ----------
    project : Project
        An open project (``workbench.open_project`` or ``Project.from_frames``).
    run : str, default=None
        The prediction run; None means ``project.default_run``.

    Returns
    -------
    DataFrame
        Columns ``item_id`` (str), ``label`` (the reference label: the item's ``label``, or
        the annotators' majority consensus where the item has none), ``predicted``,
        ``confidence`` (float, NaN when the run gave none), ``correct`` (bool: the model got
        the item right), ``is_error`` (bool, ``~correct``: the bad outcome that
        :func:`slice_metrics` and :func:`discover_slices` count by default), then every
        metadata column of the project. ``label`` and ``predicted`` are categoricals with
        the project's classes as categories. Items are in the project's item order.

        Items **without a prediction in the run** or **without any reference label** are
        excluded; how many is recorded in ``frame.attrs["excluded"]`` (a dict
        ``{"no_prediction": int, "no_reference": int}``) and ``frame.attrs["n_excluded"]``.
        ``frame.attrs`` also holds ``run``, ``classes`` and ``metadata_columns``.

    Raises
    ------
    ValueError
        If the project has no predictions, or ``run`` is not one of its runs.

    See Also
    --------
    confusion_table, slice_metrics, discover_slices
    """
    runs = list(getattr(project, "runs", []) or [])
    if not runs:
        raise ValueError(
            f"Project {getattr(project, 'name', '')!r} has no predictions, so there are no "
            "model errors to show. Add a predictions file (see the project format in the "
            "README) or use the disagreement tools, which need only annotations."
        )
    if run is None:
        run = getattr(project, "default_run", None) or runs[0]
    check_option(run, "run", "project_errors", runs)

    items = project.items
    meta_cols = [c for c in getattr(project, "metadata_columns", []) if c in items.columns]
    ref = project.reference_labels()
    preds = project.predictions
    preds = preds[preds["run"] == run]
    if preds["item_id"].duplicated().any():
        preds = preds.drop_duplicates("item_id", keep="last")

    # one lookup of item ids on the project's index (its hash table is built once), then
    # every column is taken by integer position and the labels compared as integer codes
    ids = items["item_id"]
    index = getattr(project, "_index", None)
    if not isinstance(index, pd.Index) or len(index) != len(ids):
        index = pd.Index(ids)
    n = len(ids)
    if ref.index is index or ref.index.equals(index):
        ref_values = ref.reset_index(drop=True)
    else:
        ref_values = ref.reindex(ids.to_numpy()).reset_index(drop=True)
    has_ref = ref_values.notna().to_numpy()
    pred_pos = index.get_indexer(preds["item_id"])
    found = pred_pos >= 0
    row_of_item = np.full(n, -1, dtype=np.int64)
    row_of_item[pred_pos[found]] = np.flatnonzero(found)
    has_pred = row_of_item >= 0
    keep = has_ref & has_pred
    rows = row_of_item[keep]

    classes = [str(c) for c in getattr(project, "classes", [])]
    ref_codes, ref_uniques = pd.factorize(ref_values[keep])
    pred_codes, pred_uniques = pd.factorize(preds["label"].take(rows))
    seen = {str(u) for u in ref_uniques} | {str(u) for u in pred_uniques}
    extra = sorted(seen - set(classes))
    categories = classes + extra
    cat_index = pd.Index(categories)
    label = pd.Categorical.from_codes(
        cat_index.get_indexer([str(u) for u in ref_uniques]).take(ref_codes)
        if len(ref_codes) else np.zeros(0, dtype=np.int64), categories=categories)
    predicted = pd.Categorical.from_codes(
        cat_index.get_indexer([str(u) for u in pred_uniques]).take(pred_codes)
        if len(pred_codes) else np.zeros(0, dtype=np.int64), categories=categories)

    if "confidence" in preds.columns:
        conf = preds["confidence"].to_numpy(dtype=float, na_value=np.nan)[rows]
    else:
        conf = np.full(len(rows), np.nan)
    kept = np.flatnonzero(keep)
    taken = errors_item_columns(items, meta_cols, None if len(kept) == n else kept)
    frame = pd.DataFrame({
        "item_id": taken["item_id"],
        "label": label,
        "predicted": predicted,
        "confidence": conf,
        "correct": np.asarray(label.codes == predicted.codes),
    })
    frame["is_error"] = ~frame["correct"]
    for col in meta_cols:
        frame[col] = taken[col]
    excluded = {"no_prediction": int((~has_pred).sum()),
                "no_reference": int((has_pred & ~has_ref).sum())}
    frame.attrs.update({
        "run": run,
        "classes": categories,
        "metadata_columns": list(meta_cols),
        "excluded": excluded,
        "n_excluded": int(sum(excluded.values())),
    })
    return frame


def errors_item_columns(items: pd.DataFrame, columns: list[str],
                        rows: np.ndarray | None) -> dict[str, Any]:
    """The columns an errors frame takes from the items: ``item_id`` and ``columns``.

    Parameters
    ----------
    items : DataFrame
        The project's items.
    columns : list of str
        Metadata columns of ``items``.
    rows : ndarray of int or None
        The item rows kept, in order; None: every row (Arrow string columns are shared,
        not copied: they are immutable, and a project read from its table cache keeps them
        memory-mapped).

    Returns
    -------
    dict
        Column name -> array (strings stay Arrow strings).
    """
    ids = items["item_id"].astype("str")
    out: dict[str, Any] = {"item_id": ids.array if rows is None else ids.array.take(rows)}
    for col in columns:  # strings taken in Arrow; other columns through numpy
        values = items[col]
        if isinstance(values.dtype, pd.StringDtype):
            out[col] = values.array if rows is None else values.array.take(rows)
        else:
            out[col] = values.to_numpy().copy() if rows is None else values.to_numpy()[rows]
    return out


# --------------------------------------------------------------------------------------
# helpers: statistics
# --------------------------------------------------------------------------------------


def wilson_interval(count, nobs, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval of ``count / nobs``.

    Same numbers as ``statsmodels.stats.proportion.proportion_confint(count, nobs,
    alpha, method="wilson")`` (clipped to [0, 1]); NaN where ``nobs`` is 0.

    Parameters
    ----------
    count, nobs : array-like
        Successes and trials.
    alpha : float, default=0.05
        One minus the coverage.

    Returns
    -------
    (ndarray, ndarray)
        Lower and upper bounds.

    Examples
    --------
    >>> low, high = wilson_interval([3], [10])
    >>> round(float(low[0]), 4), round(float(high[0]), 4)
    (0.1078, 0.6032)
    """
    from scipy import stats

    count = np.asarray(count, dtype=float)
    nobs = np.asarray(nobs, dtype=float)
    crit = stats.norm.isf(alpha / 2.0)
    crit2 = crit**2
    with np.errstate(divide="ignore", invalid="ignore"):
        q = count / nobs
        denom = 1 + crit2 / nobs
        center = (q + crit2 / (2 * nobs)) / denom
        dist = crit * np.sqrt(q * (1.0 - q) / nobs + crit2 / (4.0 * nobs**2)) / denom
    low = np.clip(center - dist, 0, 1)
    high = np.clip(center + dist, 0, 1)
    return low, high


def bh_adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN p-values stay NaN.

    Examples
    --------
    >>> bh_adjust([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(ranked, 1.0)
    out[ok] = q
    return out


def _test_vs_rest(n, s, ss, total_n, total_s, total_ss, *, binary: bool,
                  alternative: str) -> np.ndarray:
    """p-values of each slice (n items, sum s, sum of squares ss) against the rest."""
    from scipy import stats

    n = np.asarray(n, dtype=float)
    s = np.asarray(s, dtype=float)
    total_n, total_s, total_ss = (np.broadcast_to(np.asarray(t, dtype=float), n.shape)
                                  for t in (total_n, total_s, total_ss))
    n2 = total_n - n
    s2 = total_s - s
    p = np.full(n.shape, np.nan)
    valid = (n > 0) & (n2 > 0)
    if not valid.any():
        return p
    with np.errstate(divide="ignore", invalid="ignore"):
        if binary:
            p1 = s / n
            p2 = s2 / n2
            pooled = total_s / total_n
            se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n2))
            z = (p1 - p2) / se
            if alternative == "greater":
                pz = stats.norm.sf(z)
            else:
                pz = 2 * stats.norm.sf(np.abs(z))
            # degenerate: no variance at all (every item the same) -> no evidence
            pz = np.where(se == 0, 1.0, pz)
            p[valid] = pz[valid]
            # Fisher's exact test where an expected count is below 5
            exp_min = np.minimum.reduce([
                n * pooled, n * (1 - pooled), n2 * pooled, n2 * (1 - pooled)])
            small = valid & (exp_min < 5) & (se > 0)
            if small.any():
                idx = np.flatnonzero(small)
                if alternative == "greater":
                    # P(X >= s), X ~ Hypergeom(total_n, total_s, n)
                    p[idx] = stats.hypergeom.sf(s[idx] - 1, total_n[idx], total_s[idx],
                                                n[idx])
                else:
                    for i in idx:
                        table = [[s[i], n[i] - s[i]], [s2[i], n2[i] - s2[i]]]
                        p[i] = stats.fisher_exact(table, alternative="two-sided")[1]
        else:
            ss = np.asarray(ss, dtype=float)
            ss2 = total_ss - ss
            m1, m2 = s / n, s2 / n2
            v1 = (ss - n * m1**2) / (n - 1)
            v2 = (ss2 - n2 * m2**2) / (n2 - 1)
            se = np.sqrt(np.maximum(v1, 0) / n + np.maximum(v2, 0) / n2)
            t = (m1 - m2) / se
            dof = se**4 / ((np.maximum(v1, 0) / n) ** 2 / (n - 1)
                           + (np.maximum(v2, 0) / n2) ** 2 / (n2 - 1))
            if alternative == "greater":
                pt = stats.t.sf(t, dof)
            else:
                pt = 2 * stats.t.sf(np.abs(t), dof)
            pt = np.where(se == 0, 1.0, pt)
            ok = valid & (n > 1) & (n2 > 1)
            p[ok] = pt[ok]
    return np.clip(p, 0.0, 1.0)


# --------------------------------------------------------------------------------------
# helpers: target and encoding
# --------------------------------------------------------------------------------------


#: Column names that say "good" (1/True = right): counting them as the bad outcome would
#: silently rank the best slices first. Compared after lower-casing and dropping ``is_``.
_GOOD_NAMES = frozenset({"correct", "right", "ok", "good", "valid", "pass", "passed",
                         "accurate", "accuracy", "agree", "agrees", "agreement", "match",
                         "matches"})


def _looks_good(name: str) -> bool:
    key = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
    return key.removeprefix("is_") in _GOOD_NAMES


def _target_values(errors: pd.DataFrame, target: str, func: str, *,
                   binary_only: bool = False) -> tuple[np.ndarray, bool]:
    """The per-item bad outcome (1 = bad) as a float array, and whether it is 0/1.

    ``target="is_error"`` on a frame without that column but with the boolean ``correct``
    column of an errors frame counts ``~correct`` (the same values). A target whose name
    says "good" (``correct``, ``is_correct``, ``agreement``...) is refused: it would be
    counted the wrong way round. With ``binary_only`` the values must be 0/1 or boolean.
    """
    if not isinstance(target, str):
        raise TypeError(f"The 'target' parameter of {func} must be a str. Got {target!r} "
                        "instead.")
    if _looks_good(target):
        alt = ("target='is_error' (project_errors adds it)" if target == "correct" else
               f"errors.assign(is_bad=~errors[{target!r}].astype(bool)) and target='is_bad'")
        raise ValueError(
            f"The 'target' parameter of {func} names the column {target!r}, which looks like "
            "a 'good' indicator (1/True = right), but the target counts the bad outcome "
            "(1/True = bad), so the best slices would be reported as the worst. Pass the "
            f"error column instead: {alt}.")
    derived = target == "is_error" and "is_error" not in errors and "correct" in errors
    name = "correct" if derived else target
    check_columns(errors, [name], what="errors", func=func)
    col = errors[name]
    if col.isna().any():
        raise SchemaError(
            f"{func}: the target column {name!r} has {int(col.isna().sum())} missing "
            "value(s). Drop those rows or fill them before slicing.")
    if derived:
        _check_binary(col, name, func)
        col = ~col.astype(bool)
    if binary_only:
        _check_binary(col, target, func)
    if pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=bool).astype(float)
    elif pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=float)
    else:
        raise SchemaError(
            f"{func}: the target column {target!r} must be boolean or numeric (1 = bad). "
            f"Got dtype {col.dtype}.")
    binary = bool(np.isin(values, (0.0, 1.0)).all())
    return values, binary


def _check_binary(col: pd.Series, name: str, func: str) -> None:
    """Raise unless ``col`` holds only 0/1 or booleans (missing values aside)."""
    if pd.api.types.is_bool_dtype(col):
        return
    values = col.dropna()
    bad = values[~values.isin([0, 1])]
    if len(bad):
        shown = bad.drop_duplicates().head(5).tolist()
        raise SchemaError(
            f"{func}: the target column {name!r} must hold 0/1 or True/False (1/True = bad), "
            f"but {len(bad)} row(s) hold other values, e.g. {shown}. Turn a score into a "
            f"flag first, e.g. errors.assign(bad=errors[{name!r}] > threshold) and "
            "target='bad' (slice_metrics also takes a score where higher is worse).")


def _is_binned(col: pd.Series, bins: int | None) -> bool:
    if not bins or pd.api.types.is_bool_dtype(col):
        return False
    if isinstance(col.dtype, pd.CategoricalDtype):
        return False
    if not pd.api.types.is_numeric_dtype(col):
        return False
    return col.nunique(dropna=True) > bins


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@dataclass
class _Encoded:
    """A column encoded as integer codes 0..k-1 with the value and label of each code."""

    name: str
    codes: np.ndarray  # intp, one per item
    values: list  # python value (or pd.Interval) per code
    labels: list[str]  # readable text per code
    edges: list[float] | None = None


def _bin_values(edges) -> tuple[list, list[str]]:
    """``pandas.Interval`` values and readable labels of the bins cut at ``edges``.

    The last bin is closed on both sides, the others on the left; shared with the engine
    (``workbench.engine.aggregates.bin_values``).
    """
    k = len(edges) - 1
    values: list = []
    labels: list[str] = []
    for i in range(k):
        closed = "both" if i == k - 1 else "left"
        values.append(pd.Interval(float(edges[i]), float(edges[i + 1]), closed=closed))
        right = "]" if i == k - 1 else ")"
        labels.append(f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}{right}")
    return values, labels


def _encode(col: pd.Series, bins: int | None) -> _Encoded:
    name = str(col.name)
    if _is_binned(col, bins):
        x = col.to_numpy(dtype=float, na_value=np.nan)
        finite = x[~np.isnan(x)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([finite.min(), finite.max()])
        inner = edges[1:-1]
        codes = np.searchsorted(inner, x, side="right").astype(np.intp)
        k = len(edges) - 1
        values, labels = _bin_values(edges)
        nan = np.isnan(x)
        if nan.any():
            codes[nan] = k
            values.append(None)
            labels.append(_NA_LABEL)
        return _Encoded(name, codes, values, labels, edges=[float(e) for e in edges])
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.intp)
        cats = list(col.cat.categories)
        if (codes < 0).any():
            codes = np.where(codes < 0, len(cats), codes)
            cats = cats + [None]
        labels = [_NA_LABEL if v is None else str(v) for v in cats]
        return _Encoded(name, codes, cats, labels)
    codes, uniques = pd.factorize(col, sort=True, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.intp)
    values = [v.item() if hasattr(v, "item") else v for v in np.asarray(uniques, dtype=object)]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(values), codes)
        values.append(None)
    labels = [_NA_LABEL if v is None else str(v) for v in values]
    return _Encoded(name, codes, values, labels)


def _value_mask(col: pd.Series, value: Any) -> np.ndarray:
    if isinstance(value, pd.Interval):
        x = col.to_numpy(dtype=float, na_value=np.nan)
        lo = x >= value.left if value.closed in ("left", "both") else x > value.left
        hi = x <= value.right if value.closed in ("right", "both") else x < value.right
        return lo & hi
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return col.isna().to_numpy()
    return (col == value).fillna(False).to_numpy(dtype=bool)


def slice_items(errors: pd.DataFrame, conditions: dict) -> list[str]:
    """Item ids of the rows of ``errors`` meeting every ``column: value`` condition.

    Parameters
    ----------
    errors : DataFrame
        An errors frame (or any frame with ``item_id``).
    conditions : dict
        ``{column: value}``; a value may be a ``pandas.Interval`` (a numeric bin, as found in
        the ``value``/``conditions`` of :func:`slice_metrics`/:func:`discover_slices`) or
        None (missing values).

    Returns
    -------
    list of str
        In the frame's order.

        **Out of core / distributed**: given a run's errors table in the engine
        (``EngineTables.errors(run)``), only these ids are fetched, in item order
        (:func:`workbench.engine.engine_slice_items`).
    """
    src = _in_engine(errors, "slice_items")
    if src is not None:
        from .engine import engine_slice_items

        return engine_slice_items(src.tables, src.run, conditions)
    check_columns(errors, ["item_id", *conditions], what="errors", func="slice_items")
    mask = slice_mask(errors, conditions)
    return errors["item_id"].to_numpy()[mask].astype(str).tolist()


def slice_mask(frame: pd.DataFrame, conditions: dict) -> np.ndarray:
    """The rows of ``frame`` meeting every ``column: value`` condition (see :func:`slice_items`).

    Parameters
    ----------
    frame : DataFrame
        Any frame with the conditions' columns (an errors frame, or some of its rows).
    conditions : dict
        As in :func:`slice_items`.

    Returns
    -------
    ndarray of bool, shape (len(frame),)
    """
    check_columns(frame, list(conditions), what="errors", func="slice_mask")
    mask = np.ones(len(frame), dtype=bool)
    for col, value in conditions.items():
        mask &= _value_mask(frame[col], value)
    return mask


def _default_features(errors: pd.DataFrame, target: str) -> list[str]:
    meta = errors.attrs.get("metadata_columns")
    if meta:
        return [c for c in meta if c in errors.columns and c != target]
    return [c for c in errors.columns
            if c not in CORE_COLUMNS and c != target and not str(c).startswith("prob_")
            and c not in _DATA_ISSUE_TARGETS]


def _as_columns(by: str | Iterable[str] | None, errors: pd.DataFrame, target: str,
                name: str, func: str) -> list[str]:
    if by is None:
        cols = _default_features(errors, target)
    elif isinstance(by, str):
        cols = [by]
    else:
        cols = list(by)
    check_columns(errors, cols, what="errors", func=func)
    if target in cols:
        raise ValueError(f"The {name!r} parameter of {func} must not contain the target "
                         f"column {target!r}.")
    return cols


# --------------------------------------------------------------------------------------
# confusion table
# --------------------------------------------------------------------------------------


def _classes_of(errors: pd.DataFrame) -> list[str]:
    label, pred = errors["label"], errors["predicted"]
    if isinstance(label.dtype, pd.CategoricalDtype):
        classes = [str(c) for c in label.cat.categories]
        extra = set(map(str, _distinct(pred))) - set(classes)
        return classes + sorted(extra)
    values = set(map(str, _distinct(label))) | set(map(str, _distinct(pred)))
    return sorted(values)


def _distinct(values: pd.Series):
    """The distinct non-missing values (a categorical's used categories), no loop over rows."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0].astype(np.intp),
                           minlength=len(values.cat.categories))
        return values.cat.categories[np.flatnonzero(used)]
    from ._ids import arrow_strings

    arrow = arrow_strings(values)
    if arrow is not None:  # Arrow strings: hashed in Arrow, no copy without the missing
        import pyarrow.compute as pc

        return pd.Index(pc.unique(arrow).drop_null().to_pylist(), dtype=values.dtype)
    return pd.unique(values.dropna())


def _class_codes(values: pd.Series, classes: list[str]) -> np.ndarray:
    """``pd.Categorical(values.astype(str), categories=classes).codes``, fast.

    A categorical is recoded from its codes (no string per row: 10M labels in milliseconds).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        index = pd.Index(classes, dtype=object)
        text = [str(c) for c in values.cat.categories] + ["nan"]  # code -1: astype(str) 'nan'
        lookup = index.get_indexer(text).astype(np.intp)
        return lookup[values.cat.codes.to_numpy()]
    return pd.Categorical(values.astype(str), categories=classes).codes.astype(np.intp)


def _equals_text(values: pd.Series, text: str) -> np.ndarray:
    """``(values.astype(str) == text)`` as a bool array, from a categorical's codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        same = np.array([str(c) == text for c in values.cat.categories] + [text == "nan"],
                        dtype=bool)
        return same[values.cat.codes.to_numpy()]
    return (values.astype(str) == text).to_numpy(dtype=bool)


def confusion_table(errors: pd.DataFrame, normalize: str | None = None, *,
                    run: str | None = None, iou: float | None = None) -> pd.DataFrame:
    """Confusion matrix as a labelled DataFrame: rows = true class, columns = predicted.

    Parameters
    ----------
    errors : DataFrame
        An errors frame with ``label`` and ``predicted`` (see :func:`project_errors`).
    normalize : {'true', 'pred', 'all'}, default=None
        As in ``sklearn.metrics.confusion_matrix``: None gives counts; ``'true'`` divides
        each row by its total (recall on the diagonal), ``'pred'`` each column (precision on
        the diagonal), ``'all'`` everything by the number of items. Empty rows/columns give
        0 (like scikit-learn).

    Returns
    -------
    DataFrame
        Square, index named ``true`` and columns named ``predicted``, both in class order
        (the categories of ``label`` when it is categorical, else the sorted union of the
        labels seen). Equal to ``confusion_matrix(label, predicted, labels=classes)``.
        The items behind a cell: :func:`cell_items`.

        **Out of core / distributed**: given ``EngineTables`` (with ``run``, default the
        default run) or a run's ``EngineTables.errors(run)``, the pairs are counted in the
        engine (:func:`workbench.engine.engine_confusion_table`); the same table.

        **Detection**: given a matches frame (:func:`workbench.match_detections`) or a
        detection project (matched at ``iou``, default 0.5, for ``run``, default the
        project's default run), the table has the classes plus a ``background`` row (false
        detections) and column (missed boxes); see
        :func:`workbench.detection.slicing.detection_confusion_table` for how each outcome
        is counted (a ``mislocated`` pair counts as a miss and as a false detection).

    Examples
    --------
    >>> errors = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "x", "y"],
    ...                        "predicted": ["x", "y", "y"]})
    >>> confusion_table(errors).to_numpy().tolist()
    [[1, 1], [0, 1]]
    """
    src = _in_engine(errors, "confusion_table", run)
    if src is not None:
        from .engine import engine_confusion_table

        _classification_only("confusion_table", iou=iou)
        return engine_confusion_table(src.tables, src.run, normalize)
    if _is_detection(errors):
        from .detection.slicing import detection_confusion_table

        return detection_confusion_table(errors, normalize, run=run, iou=iou)
    _classification_only("confusion_table", run=run, iou=iou)
    check_columns(errors, ["label", "predicted"], what="errors", func="confusion_table")
    check_option(normalize, "normalize", "confusion_table", ["true", "pred", "all"],
                 allow_none=True)
    classes = _classes_of(errors)
    k = len(classes)
    t = _class_codes(errors["label"], classes)
    p = _class_codes(errors["predicted"], classes)
    ok = (t >= 0) & (p >= 0)
    counts = np.bincount(t[ok] * k + p[ok], minlength=k * k).reshape(k, k)
    return _confusion_frame(counts, classes, normalize)


def _confusion_frame(counts: np.ndarray, classes: list[str], normalize: str | None
                     ) -> pd.DataFrame:
    """The :func:`confusion_table` frame of a ``(k, k)`` count matrix (true x predicted).

    Shared with the engine (``engine_confusion_table``); ``normalize`` as there, empty rows
    or columns give 0.
    """
    values: np.ndarray = counts
    if normalize is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            if normalize == "true":
                values = counts / counts.sum(axis=1, keepdims=True)
            elif normalize == "pred":
                values = counts / counts.sum(axis=0, keepdims=True)
            else:
                values = counts / counts.sum()
        values = np.nan_to_num(values)
    table = pd.DataFrame(values, index=pd.Index(classes, name="true"),
                         columns=pd.Index(classes, name="predicted"))
    table.attrs["normalize"] = normalize
    return table


def cell_items(errors: pd.DataFrame, true: str | None, predicted: str | None, *,
               run: str | None = None, iou: float | None = None) -> list[str] | pd.DataFrame:
    """Item ids behind one cell of :func:`confusion_table`.

    Parameters
    ----------
    errors : DataFrame
        An errors frame.
    true, predicted : str or None
        The row and column of the cell; None matches every class (a whole row or column).

    Returns
    -------
    list of str
        In the frame's order.

        **Detection** (a matches frame or a detection project, with ``run`` and ``iou`` as
        in :func:`confusion_table`; ``true``/``predicted`` may be ``'background'``): a
        DataFrame of the boxes behind the cell, one row of the matches frame each, with
        ``item_id``, ``box_id``, ``pred_id``, ``outcome`` and the other columns; the images
        are ``rows["item_id"].unique()``. See
        :func:`workbench.detection.slicing.detection_cell_items`.

        **Out of core / distributed** (``EngineTables``, with ``run``, or
        ``EngineTables.errors(run)``): only these ids are fetched, in item order.

    Examples
    --------
    >>> errors = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "x", "y"],
    ...                        "predicted": ["x", "y", "y"]})
    >>> cell_items(errors, "x", "y")
    ['b']
    """
    src = _in_engine(errors, "cell_items", run)
    if src is not None:
        from .engine import engine_cell_items

        _classification_only("cell_items", iou=iou)
        return engine_cell_items(src.tables, src.run, true, predicted)
    if _is_detection(errors):
        from .detection.slicing import detection_cell_items

        return detection_cell_items(errors, true, predicted, run=run, iou=iou)
    _classification_only("cell_items", run=run, iou=iou)
    check_columns(errors, ["item_id", "label", "predicted"], what="errors", func="cell_items")
    mask = np.ones(len(errors), dtype=bool)
    if true is not None:
        mask &= _equals_text(errors["label"], str(true))
    if predicted is not None:
        mask &= _equals_text(errors["predicted"], str(predicted))
    return errors["item_id"].to_numpy()[mask].astype(str).tolist()


# --------------------------------------------------------------------------------------
# metrics per slice
# --------------------------------------------------------------------------------------

_METRIC_COLUMNS = ["column", "value", "bin", "n", "errors", "error_rate", "ci_low", "ci_high",
                   "lift", "p_value", "q_value"]


def slice_metrics(errors: pd.DataFrame, by: str | Sequence[str] | None = None, *,
                  bins: int | None = 4, per_class_recall: bool = False,
                  target: str = "is_error") -> pd.DataFrame:
    """Error rate and its uncertainty for every value of one or more metadata columns.

    Parameters
    ----------
    errors : DataFrame
        An errors frame (:func:`project_errors`), or any frame with ``item_id`` and the
        ``target`` column.
    by : str or list of str, default=None
        Columns to slice on; None means every metadata column.
    bins : int, default=4
        Numeric columns with more distinct values than ``bins`` are cut at their quantiles
        into at most ``bins`` half-open bins ``[low, high)`` (the last closed); the edges are
        in ``frame.attrs["bins"]``. None or 0 never bins.
    per_class_recall : bool, default=False
        Add ``recall_<class>``: the share of the slice's items of that (reference) class
        that are predicted right (NaN where the slice has none of the class).
    target : str, default="is_error"
        The column holding the per-item **bad** outcome that is counted: 0/1 or boolean
        with 1/True = bad (``is_error``: the model got the item wrong; or e.g. annotator
        disagreement, a label-issue flag), or a score where higher is worse. A frame
        without ``is_error`` but with the boolean ``correct`` column counts ``~correct``.
        A column named like a "good" indicator (``correct``, ``is_correct``,
        ``agreement``...) is refused: pass the error column instead.

    Returns
    -------
    DataFrame
        One row per (column, value), in column order then value order, with ``column``,
        ``value`` (the value, a ``pandas.Interval`` for a numeric bin, None for missing),
        ``bin`` (readable text of the value, e.g. ``"[0.12, 0.55)"``), ``n``, ``errors``
        (sum of the target), ``error_rate``, ``ci_low``/``ci_high`` (95 % Wilson interval;
        mean +- 1.96 standard errors for a non-0/1 score), ``lift`` (error rate over the
        overall rate), ``p_value`` (slice against the rest of the items, two-sided:
        two-proportion z-test, or Fisher's exact test when an expected count is below 5;
        Welch's t-test for scores) and ``q_value`` (Benjamini-Hochberg over all rows).
        ``frame.attrs``: ``overall_rate``, ``n``, ``bins``, ``target``, ``tests``.

    Raises
    ------
    SchemaError
        If a column is missing or the target is not boolean/numeric.
    ValueError
        If ``target`` names a "good" indicator such as ``correct`` or ``is_correct``.

    Notes
    -----
    **Detection**: a matches frame (:func:`workbench.match_detections`, one run) with
    ``target='is_fn'`` (missed reference boxes) or ``'is_fp'`` (false detections) is sliced
    on its object-level rows, :func:`workbench.detection.object_frame`: the reference-box
    rows for ``is_fn``, the prediction rows for ``is_fp``; ``by=None`` means image
    metadata, box metadata (``is_fn`` only) and ``size``; ``n`` counts boxes. Other targets
    count every row.

    **Out of core / distributed**: ``errors`` may be a run's errors table in the engine,
    ``EngineTables.errors(run)`` (or ``EngineTables``: the default run), from
    :func:`workbench.engine.register_project` on DuckDB or Spark. The items and errors per
    value are counted where the data lives and the statistics computed here on those counts:
    the same frame as on ``project.errors(run)`` (target ``is_error`` only). See
    docs/scale.md.

    See Also
    --------
    discover_slices : the worst conjunctions of conditions, found automatically.

    Examples
    --------
    >>> errors = pd.DataFrame({"item_id": list("abcd"), "correct": [True, False, False, True],
    ...                        "scanner": ["A", "B", "B", "A"]})
    >>> slice_metrics(errors, "scanner")[["column", "value", "n", "errors", "error_rate"]]
        column value  n  errors  error_rate
    0  scanner     A  2       0         0.0
    1  scanner     B  2       2         1.0
    """
    src = _in_engine(errors, "slice_metrics")
    if src is not None:
        from .engine import engine_slice_metrics

        _engine_target(target, "slice_metrics")
        return engine_slice_metrics(src.tables, src.run, by, bins=bins,
                                    per_class_recall=per_class_recall)
    if _is_matches(errors) and target in _DETECTION_TARGETS:
        from .detection.slicing import object_slice_metrics

        return object_slice_metrics(errors, by, bins=bins, per_class_recall=per_class_recall,
                                    target=target)
    return _slice_metrics(errors, by, bins=bins, per_class_recall=per_class_recall,
                          target=target)


def _slice_metrics(errors: pd.DataFrame, by: str | Sequence[str] | None = None, *,
                   bins: int | None = 4, per_class_recall: bool = False,
                   target: str = "is_error") -> pd.DataFrame:
    """:func:`slice_metrics` on the rows of ``errors`` as given (no detection hand-over)."""
    func = "slice_metrics"
    check_columns(errors, ["item_id"], what="errors", func=func)
    if bins is not None:
        check_int(bins, "bins", func, minimum=0)
    cols = _as_columns(by, errors, target, "by", func)
    y, binary = _target_values(errors, target, func)
    total_n = len(y)
    total_s = float(y.sum())
    total_ss = float((y * y).sum())
    overall = total_s / total_n if total_n else np.nan

    recall_codes = None
    classes: list[str] = []
    if per_class_recall:
        check_columns(errors, ["label", "correct"], what="errors", func=func)
        classes = _classes_of(errors) if "predicted" in errors else sorted(
            set(errors["label"].dropna().astype(str)))
        recall_codes = _class_codes(errors["label"], classes)
        correct = errors["correct"].to_numpy(dtype=bool).astype(float)

    parts = []
    bin_edges: dict[str, list[float]] = {}
    for col in cols:
        enc = _encode(errors[col], bins)
        k = len(enc.values)
        n = np.bincount(enc.codes, minlength=k).astype(float)
        s = np.bincount(enc.codes, weights=y, minlength=k)
        ss = s if binary else np.bincount(enc.codes, weights=y * y, minlength=k)
        if enc.edges is not None:
            bin_edges[col] = enc.edges
        part = {
            "column": [col] * k,
            "value": list(enc.values),
            "bin": enc.labels,
            "n": n.astype(np.int64),
            "errors": s.astype(np.int64) if binary else s,
            "_s": s,
            "_ss": ss,
        }
        if recall_codes is not None:
            kc = len(classes)
            valid = recall_codes >= 0
            idx = enc.codes[valid] * kc + recall_codes[valid]
            cnt = np.bincount(idx, minlength=k * kc).reshape(k, kc)
            hit = np.bincount(idx, weights=correct[valid], minlength=k * kc).reshape(k, kc)
            with np.errstate(divide="ignore", invalid="ignore"):
                rec = hit / cnt
            for j, c in enumerate(classes):
                part[f"recall_{c}"] = rec[:, j]
        parts.append(pd.DataFrame(part))
    return _metrics_from_counts(parts, binary=binary, total_n=total_n, total_s=total_s,
                                total_ss=total_ss, overall=overall, bin_edges=bin_edges,
                                target=target)


def _metrics_from_counts(parts: list[pd.DataFrame], *, binary: bool, total_n, total_s: float,
                         total_ss: float, overall: float, bin_edges: dict,
                         target: str) -> pd.DataFrame:
    """The :func:`slice_metrics` frame from its per-level counts.

    Shared by the pandas path and the engine (``engine_slice_metrics``), which count
    differently but test alike.

    Parameters
    ----------
    parts : list of DataFrame
        Per column: ``column``, ``value``, ``bin``, ``n``, ``errors``, ``_s`` (sum of the
        target), ``_ss`` (sum of its squares) and any ``recall_<class>`` columns.
    binary : bool
        The target is 0/1 (Wilson intervals, proportion tests) or numeric (normal
        intervals, Welch tests).
    total_n, total_s, total_ss : float
        Items, sum and sum of squares of the target over all items.
    overall : float
        ``total_s / total_n`` (NaN without items).
    bin_edges : dict
        ``frame.attrs["bins"]``.
    target : str
        ``frame.attrs["target"]``.

    Returns
    -------
    DataFrame
        The rows of ``parts`` with rates, intervals, lifts, p- and q-values.
    """
    if parts:
        frame = pd.concat(parts, ignore_index=True)
    else:
        frame = pd.DataFrame({c: [] for c in [*_METRIC_COLUMNS, "_s", "_ss"]})
    n = frame["n"].to_numpy(dtype=float)
    s = frame["_s"].to_numpy(dtype=float)
    ss = frame["_ss"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = s / n
        if binary:
            low, high = wilson_interval(s, n)
        else:
            var = (ss - n * rate**2) / (n - 1)
            half = 1.959963984540054 * np.sqrt(np.maximum(var, 0) / n)
            low, high = rate - half, rate + half
        lift = rate / overall if overall else np.full(len(rate), np.nan)
    p = _test_vs_rest(n, s, ss, total_n, total_s, total_ss, binary=binary,
                      alternative="two-sided")
    frame["error_rate"] = rate
    frame["ci_low"] = low
    frame["ci_high"] = high
    frame["lift"] = lift
    frame["p_value"] = p
    frame["q_value"] = bh_adjust(p)
    extra = [c for c in frame.columns if c.startswith("recall_")]
    frame = frame[_METRIC_COLUMNS + extra]
    frame.attrs.update({
        "overall_rate": overall,
        "n": total_n,
        "bins": bin_edges,
        "target": target,
        "tests": ("two-sided two-proportion z-test (Fisher exact when an expected count < 5)"
                  if binary else "two-sided Welch t-test") + ", Benjamini-Hochberg q-values",
    })
    return frame


# --------------------------------------------------------------------------------------
# slice discovery
# --------------------------------------------------------------------------------------

_DISCOVER_COLUMNS = ["slice", "conditions", "order", "n", "errors", "error_rate", "ci_low",
                     "ci_high", "lift", "score", "p_value", "q_value", "item_ids"]


def discover_slices(errors: pd.DataFrame, features: Sequence[str] | None = None,
                    max_order: int = 2, min_support: int | float | None = None,
                    top: int | None = 20, target: str = "is_error", *, bins: int | None = 4,
                    alpha: float = 0.05, min_refinement: float = 0.1,
                    prune_explained: bool = True) -> pd.DataFrame:
    """Find the slices (conjunctions of ``feature=value``) where the bad outcome is most common.

    Every conjunction of up to ``max_order`` conditions on distinct features with at least
    ``min_support`` items is counted (exhaustively, with integer codes and ``np.bincount``);
    then each is tested against the rest of the items, the tests are corrected for their
    number, redundant refinements are pruned and the rest ranked.

    Parameters
    ----------
    errors : DataFrame
        An errors frame (:func:`project_errors`) or any frame with ``item_id``, the
        ``target`` column and the feature columns.
    features : list of str, default=None
        Columns to build conditions from; None means every metadata column
        (``errors.attrs["metadata_columns"]`` when present, else every column but
        ``item_id``, ``label``, ``predicted``, ``confidence``, ``correct``, ``filepath``,
        ``prob_*`` and the target).
    max_order : int, default=2
        Most conditions in one slice.
    min_support : int or float, default=None
        Fewest items in a reported slice: an int is a count, a float in (0, 1) a fraction
        of the items. None means ``max(20, 1 % of the items)``.
    top : int, default=20
        Most slices returned (None: all significant ones).
    target : str, default="is_error"
        The 0/1 or boolean column counted as the **bad** outcome: **1/True = bad**, 0/False
        = fine. The default ``is_error`` (from :func:`project_errors`) is 1 where the model
        is wrong; a frame without it but with the boolean ``correct`` column counts
        ``~correct``. Any other per-item flag works the same way (``"disagree"`` of
        :func:`workbench.disagreement_frame`, a label-issue flag). Other values (a score)
        are refused: threshold it first, or use :func:`slice_metrics`. A column named like a
        "good" indicator (``correct``, ``is_correct``, ``agreement``...) is refused too.
    bins : int, default=4
        Quantile bins for numeric features (see :func:`slice_metrics`).
    alpha : float, default=0.05
        False discovery rate: slices with ``q_value > alpha`` are not returned, and the
        level of the pruning test.
    min_refinement : float, default=0.1
        A slice of order >= 2 must also raise the rate of its worst parent by at least
        this relative amount (0.1: 10 %), so that large slices do not report every
        statistically detectable but negligible refinement.
    prune_explained : bool, default=True
        Also drop a slice whose excess is explained by other reported slices: (1) by its
        refinements: once their items are removed, the rest of it is not significantly
        (level ``alpha``) or not ``min_refinement`` worse than the items outside it; (2) by
        better-ranked overlapping slices: slices are accepted best first, and a slice is
        retested without the items of the slices accepted before it (its ancestors
        excepted) against the items in no accepted slice and, for a refinement, against
        the likewise reduced rest of its worst parent (Bonferroni level ``alpha`` over all
        slices tested).

    Returns
    -------
    DataFrame
        One row per slice, best first: ``slice`` (readable, e.g. ``"scanner=C & vendor=B"``),
        ``conditions`` (dict ``{feature: value}``, a ``pandas.Interval`` for a numeric bin),
        ``order``, ``n``, ``errors``, ``error_rate``, ``ci_low``/``ci_high`` (Wilson),
        ``lift`` (rate over the overall rate), ``score``, ``p_value``, ``q_value`` and
        ``item_ids`` (list of str). ``errors`` counts the bad outcomes (target = 1) in the
        slice. ``frame.attrs`` records the settings (``target`` among them), the overall
        rate and ``n_tested``.

    Raises
    ------
    SchemaError
        If a column is missing, or the target column holds missing values or anything
        but 0/1 or True/False (the message lists the offending values).
    ValueError
        If ``target`` names a "good" indicator such as ``correct`` or ``is_correct``, or a
        parameter is out of range.

    Notes
    -----
    * **Score**: ``(rate - overall_rate) * sqrt(n)``, the excess error weighted by the
      square root of the slice size (proportional to the z statistic of the slice against
      the overall rate); a refinement scores higher than its parent only when it
      concentrates the errors.
    * **Test**: one-sided (the slice is worse than the rest of the items) two-proportion
      z-test, Fisher's exact (hypergeometric) test when an expected count is below 5.
      **Multiple testing**: Benjamini-Hochberg over every slice
      tested (all conjunctions with enough support), reported as ``q_value``.
    * **Pruning**: a slice of order >= 2 is dropped when its rate is not significantly
      (one-sided, level ``alpha``) higher than that of the rest of its worst parent (the
      parent minus the slice; Benjamini-Hochberg over these tests), i.e. when the added
      condition does not make things worse, or when it is less than ``min_refinement``
      (relative) above the worst parent's rate.
      With ``prune_explained``, a parent is then dropped when its refinements explain it,
      and any slice when better-ranked overlapping slices explain it.
    * **Detection**: a matches frame (:func:`workbench.match_detections`, one run) with
      ``target='is_fn'`` (missed reference boxes) or ``'is_fp'`` (false detections) is
      searched on its object-level rows (:func:`workbench.detection.object_frame`: the
      reference-box rows for ``is_fn``, the prediction rows for ``is_fp``), on image
      metadata, box metadata (``is_fn`` only) and ``size`` together by default; ``n`` and
      ``min_support`` count boxes, ``item_ids`` lists the slice's images once each, and a
      ``box_ids`` (``is_fn``) or ``pred_ids`` (``is_fp``) column lists its boxes.
    * **Data issues**: ``target='is_outlier'`` or ``'is_duplicate'`` counts the items
      :func:`workbench.data_issues.data_issue_flags` flags (outliers; exact or near
      duplicates): ``discover_slices(data_issue_flags(project), target='is_outlier')``, or
      merge those columns into an errors frame.
    * **Label slices** (detection): a :func:`workbench.detection.label_frame` with
      ``target='is_missing_label'`` or ``'is_disputed'`` is searched on its box rows
      (:func:`workbench.detection.discover_label_slices`); ``item_ids`` lists the slice's
      images once each, ``box_ids`` its dataset boxes and ``consensus_ids`` its missing
      boxes.
    * **Out of core / distributed**: ``errors`` may be a run's errors table in the engine,
      ``EngineTables.errors(run)`` (or ``EngineTables``: the default run). The engine
      returns the items and errors of every combination of the features' levels and the
      search runs here on those counts: the same slices and numbers as on
      ``project.errors(run)`` (target ``is_error`` only), but ``item_ids`` is None; fetch a
      slice's items when a curator opens it, ``slice_items(errors, row.conditions)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> errors = pd.DataFrame({"item_id": [f"i{i}" for i in range(2000)],
    ...                        "scanner": rng.choice(list("ABC"), 2000),
    ...                        "vendor": rng.choice(list("XY"), 2000)})
    >>> bad = (errors.scanner == "C") & (errors.vendor == "Y")
    >>> errors["correct"] = rng.random(2000) > np.where(bad, 0.5, 0.05)
    >>> discover_slices(errors).slice.iloc[0]
    'scanner=C & vendor=Y'
    """
    src = _in_engine(errors, "discover_slices")
    if src is not None:
        from .engine import engine_discover_slices

        _engine_target(target, "discover_slices")
        return engine_discover_slices(
            src.tables, src.run, features, max_order, min_support, top, bins=bins, alpha=alpha,
            min_refinement=min_refinement, prune_explained=prune_explained)
    if target in _DATA_ISSUE_TARGETS and target not in errors.columns:
        raise SchemaError(
            f"discover_slices: target={target!r} is a data-issue flag, which the errors frame "
            "does not hold. Slice workbench.data_issues.data_issue_flags(project) instead "
            f"(discover_slices(data_issue_flags(project), target={target!r})), or merge its "
            f"columns in: errors.merge(data_issue_flags(project)[['item_id', {target!r}]], "
            "on='item_id').")
    if target in ("is_missing_label", "is_disputed") and {"box_id", "consensus_id"} <= set(
            errors.columns):
        from .detection.label_slices import discover_label_slices

        return discover_label_slices(errors, features, max_order, min_support, top, target,
                                     bins=bins, alpha=alpha, min_refinement=min_refinement,
                                     prune_explained=prune_explained)
    if _is_matches(errors) and target in _DETECTION_TARGETS:
        from .detection.slicing import discover_object_slices

        return discover_object_slices(errors, features, max_order, min_support, top, target,
                                      bins=bins, alpha=alpha, min_refinement=min_refinement,
                                      prune_explained=prune_explained)
    return _discover_slices(errors, features, max_order, min_support, top, target, bins=bins,
                            alpha=alpha, min_refinement=min_refinement,
                            prune_explained=prune_explained)


def _discover_slices(errors: pd.DataFrame, features: Sequence[str] | None = None,
                     max_order: int = 2, min_support: int | float | None = None,
                     top: int | None = 20, target: str = "is_error", *,
                     bins: int | None = 4, alpha: float = 0.05, min_refinement: float = 0.1,
                     prune_explained: bool = True) -> pd.DataFrame:
    """:func:`discover_slices` on the rows of ``errors`` as given (no detection hand-over)."""
    func = "discover_slices"
    check_columns(errors, ["item_id"], what="errors", func=func)
    max_order = check_int(max_order, "max_order", func, minimum=1)
    top = check_int(top, "top", func, minimum=1, allow_none=True)
    if bins is not None:
        check_int(bins, "bins", func, minimum=0)
    alpha = check_fraction(alpha, "alpha", func)
    min_refinement = check_fraction(min_refinement, "min_refinement", func, high=np.inf)
    feats = _as_columns(features, errors, target, "features", func)
    # 0/1 only, so y * y == y: every sum of squares below is the plain sum
    y, _ = _target_values(errors, target, func, binary_only=True)
    total_n = len(y)
    if min_support is None:
        min_n = max(20, int(math.ceil(0.01 * total_n)))
    elif isinstance(min_support, float) and not isinstance(min_support, bool):
        if not 0 < min_support < 1:
            raise ValueError("The 'min_support' parameter of discover_slices must be an int "
                             "in the range [1, inf), a float in the range (0, 1) or None. "
                             f"Got {min_support!r} instead.")
        min_n = max(1, int(math.ceil(min_support * total_n)))
    else:
        min_n = check_int(min_support, "min_support", func, minimum=1)
    total_s = float(y.sum())
    overall = total_s / total_n if total_n else np.nan

    # encode each feature once; levels without support share a sentinel code k
    encs: list[_Encoded] = []
    codes: list[np.ndarray] = []
    ks: list[int] = []
    for f in feats:
        enc = _encode(errors[f], bins)
        k = len(enc.values)
        cnt = np.bincount(enc.codes, minlength=k)
        supported = cnt >= min_n
        if supported.sum() == 0:
            continue
        remap = np.where(supported, np.arange(k), k)
        encs.append(enc)
        codes.append(remap[enc.codes].astype(np.intp))
        ks.append(k)

    keys, ns, ss_ = _candidates(codes, ks, y, None, min_n, max_order)
    n_arr = np.asarray(ns, dtype=float)
    s_arr = np.asarray(ss_, dtype=float)
    idx, rate, score, p, q = _discover_from_counts(
        keys, n_arr, s_arr, codes, y, None, total_n, total_s, alpha=alpha,
        min_refinement=min_refinement, top=top, prune_explained=prune_explained)

    rows = []
    item_ids = errors["item_id"].to_numpy()
    for i in idx.tolist():
        key = keys[i]
        conds = {encs[f].name: encs[f].values[c] for f, c in key}
        text = " & ".join(f"{encs[f].name}={encs[f].labels[c]}" for f, c in key)
        mask = _key_mask(codes, key, total_n)
        rows.append({"slice": text, "conditions": conds, "order": len(key),
                     "item_ids": item_ids[mask].astype(str).tolist(), "_i": i})
    frame = _discover_frame(rows, n_arr, s_arr, rate, score, p, q, overall)
    frame = frame[_DISCOVER_COLUMNS].reset_index(drop=True)
    frame.attrs.update({
        "overall_rate": overall, "n": total_n, "n_tested": len(keys), "min_support": min_n,
        "max_order": max_order, "alpha": alpha, "min_refinement": min_refinement,
        "prune_explained": prune_explained,
        "target": target, "features": feats,
        "score": "(rate - overall_rate) * sqrt(n)",
        "tests": "one-sided two-proportion z-test (Fisher exact when an expected count < 5)"
                 ", Benjamini-Hochberg over all tested slices",
    })
    return frame


def _candidates(codes: list[np.ndarray], ks: list[int], y: np.ndarray, w: np.ndarray | None,
                min_n: float, max_order: int) -> tuple[list[tuple], list[float], list[float]]:
    """Candidate slices of :func:`discover_slices`, level combinations with ``min_n`` items.

    Every combination of up to ``max_order`` features' levels with at least ``min_n``
    items whose parents are all candidates. Shared by the pandas path (one row per item,
    ``w`` None) and the engine (one row per cell of a joint count table with ``w`` items).

    Parameters
    ----------
    codes : list of ndarray
        Level code per row and feature; code ``ks[f]`` marks an unsupported level.
    ks : list of int
        Supported levels per feature.
    y : ndarray
        0/1 target (error count) per row.
    w : ndarray or None
        Items per row; None: one each.
    min_n : float
        Minimum slice size.
    max_order : int
        Most features per slice.

    Returns
    -------
    keys : list of tuple
        Tuples of ``(feature index, level code)``, sorted by feature index; every parent of
        a refinement comes before it.
    ns, ss : list of float
        Items and errors per candidate.
    """
    keys: list[tuple] = []
    ns: list[float] = []
    ss: list[float] = []
    seen: set[tuple] = set()
    supported_at: dict[int, set] = {}
    for order in range(1, max_order + 1):
        found: set = set()
        for combo in itertools.combinations(range(len(codes)), order):
            if order > 1:
                # Apriori: every sub-combination of features must have supported slices
                if any(sub not in supported_at.get(order - 1, set())
                       for sub in itertools.combinations(combo, order - 1)):
                    continue
            radix = [ks[i] + 1 for i in combo]
            size = int(np.prod(radix))
            code = codes[combo[0]]
            for i, r in zip(combo[1:], radix[1:], strict=True):
                code = code * r + codes[i]
            cnt = np.bincount(code, weights=w, minlength=size)
            cand = np.flatnonzero(cnt >= min_n)
            if cand.size == 0:
                continue
            digits = np.array(np.unravel_index(cand, radix)).T  # (m, order)
            valid = (digits < np.array(radix) - 1).all(axis=1)
            cand, digits = cand[valid], digits[valid]
            if cand.size == 0:
                continue
            s = np.bincount(code, weights=y, minlength=size)
            any_kept = False
            for c, dig in zip(cand.tolist(), digits.tolist(), strict=True):
                key = tuple(zip(combo, dig, strict=True))
                if order > 1 and any(key[:j] + key[j + 1:] not in seen
                                     for j in range(order)):
                    continue
                keys.append(key)
                ns.append(float(cnt[c]))
                ss.append(float(s[c]))
                seen.add(key)
                any_kept = True
            if any_kept:
                found.add(combo)
        supported_at[order] = found
        if not found:
            break
    return keys, ns, ss


def _key_mask(codes: list[np.ndarray], key: tuple, size: int) -> np.ndarray:
    """Rows whose ``codes`` match every ``(feature, level)`` of ``key``."""
    m = np.ones(size, dtype=bool)
    for f, c in key:
        m &= codes[f] == c
    return m


def _discover_from_counts(keys: list[tuple], n_arr: np.ndarray, s_arr: np.ndarray,
                          codes: list[np.ndarray], y: np.ndarray, w: np.ndarray | None,
                          total_n, total_s: float, *, alpha: float, min_refinement: float,
                          top: int | None, prune_explained: bool):
    """Tests, corrections, pruning and ranking of :func:`discover_slices` on counts.

    Shared by the pandas path (one row per item, ``w`` None) and the engine (one row per
    cell of a joint count table, ``w`` its item counts): sizes are sums of ``w`` (or row
    counts), error counts sums of the 0/1 target ``y``. Every sum is of whole numbers, so
    both give the same result to the last bit.

    Parameters
    ----------
    keys : list of tuple
        Candidate slices: tuples of ``(feature index, level code)``; every parent of a
        refinement is among them.
    n_arr, s_arr : ndarray
        Items and errors per candidate.
    codes : list of ndarray
        Level code per row and feature.
    y : ndarray
        0/1 target (error count) per row.
    w : ndarray or None
        Items per row; None: one each. ``codes``, ``y`` and ``w`` are read only with
        ``prune_explained``.
    total_n, total_s : float
        Items and errors overall.
    alpha, min_refinement, top, prune_explained
        As in :func:`discover_slices`.

    Returns
    -------
    idx : ndarray
        Kept candidates, best first.
    rate, score, p, q : ndarray
        Per candidate: error rate, ranking score, p-value, Benjamini-Hochberg q-value.
    """
    overall = total_s / total_n if total_n else np.nan
    stats_by_key = {k: (n_arr[i], s_arr[i], s_arr[i]) for i, k in enumerate(keys)}
    # 0/1 target: every sum of squares is the plain sum
    p = _test_vs_rest(n_arr, s_arr, s_arr, total_n, total_s, total_s, binary=True,
                      alternative="greater")
    q = bh_adjust(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = s_arr / n_arr
    score = (rate - overall) * np.sqrt(n_arr)

    keep = (q <= alpha) & (rate > overall)
    # prune refinements that are not significantly worse than the rest of their worst
    # parent (one-sided test of the slice against "parent minus slice", Benjamini-Hochberg
    # over all these tests) or not min_refinement worse than that parent
    refine = np.flatnonzero(keep & (np.array([len(k) for k in keys], dtype=int) > 1))
    if refine.size:
        worst = np.empty((refine.size, 3))
        for r, i in enumerate(refine.tolist()):
            key = keys[i]
            pstats = [stats_by_key[key[:j] + key[j + 1:]] for j in range(len(key))]
            worst[r] = max(pstats, key=lambda t: t[1] / t[0])
        pn, ps, psq = worst[:, 0], worst[:, 1], worst[:, 2]
        ok = (pn - n_arr[refine] > 0) & (rate[refine] >= (ps / pn) * (1 + min_refinement))
        pp = _test_vs_rest(n_arr[refine], s_arr[refine], s_arr[refine], pn, ps, psq,
                           binary=True, alternative="greater")
        pq = bh_adjust(np.where(ok, pp, np.nan))
        keep[refine] = ok & (pq <= alpha)

    if prune_explained:
        rows = len(y)
        # drop a slice whose excess is explained by its kept refinements: without them, the
        # rest of it is not significantly (or hardly) worse than the items outside it
        kept_keys = {keys[i]: i for i in np.flatnonzero(keep)}
        for i in sorted(np.flatnonzero(keep).tolist(), key=lambda j: -len(keys[j])):
            key = set(keys[i])
            children = [k for k, j in kept_keys.items() if keep[j] and len(k) > len(key)
                        and key.issubset(k)]
            if not children:
                continue
            rest = _key_mask(codes, keys[i], rows)
            for ck in children:
                rest &= ~_key_mask(codes, ck, rows)
            rn = float(rest.sum()) if w is None else float(w[rest].sum())
            if rn == 0:
                keep[i] = False
                continue
            rs = float(y[rest].sum())
            rsq = rs
            out_n = total_n - n_arr[i]
            out_s = total_s - s_arr[i]
            out_sq = total_s - s_arr[i]
            pv = _test_vs_rest(np.array([rn]), np.array([rs]), np.array([rsq]),
                               rn + out_n, rs + out_s, rsq + out_sq, binary=True,
                               alternative="greater")[0]
            out_rate = out_s / out_n if out_n else overall
            if not pv <= alpha or rs / rn < out_rate * (1 + min_refinement):
                keep[i] = False

    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((-n_arr[idx], -score[idx]))]
    if prune_explained:
        idx = _greedy_overlaps(idx, keys, codes, y, y, True, total_n, total_s, total_s,
                               alpha, min_refinement, top, len(keys), w=w)
    if top is not None:
        idx = idx[:top]
    return idx, rate, score, p, q


def _discover_frame(rows: list[dict], n_arr, s_arr, rate, score, p, q,
                    overall: float) -> pd.DataFrame:
    """The :func:`discover_slices` frame before its column order.

    ``rows`` (slice, conditions, order, item_ids and ``_i``, the candidate index) with the
    candidates' counts and statistics.
    """
    frame = pd.DataFrame(rows, columns=["slice", "conditions", "order", "item_ids", "_i"])
    sel = frame["_i"].to_numpy(dtype=np.intp)
    frame["n"] = n_arr[sel].astype(np.int64)
    frame["errors"] = s_arr[sel].astype(np.int64)
    frame["error_rate"] = rate[sel]
    low, high = wilson_interval(s_arr[sel], n_arr[sel])
    frame["ci_low"] = low
    frame["ci_high"] = high
    frame["lift"] = rate[sel] / overall if overall else np.nan
    frame["score"] = score[sel]
    frame["p_value"] = p[sel]
    frame["q_value"] = q[sel]
    return frame


def _greedy_overlaps(order, keys, codes, y, y2, binary, total_n, total_s, total_ss, alpha,
                     min_refinement, top, n_tested, w=None):
    """Accept slices best first; drop one whose excess comes from overlapping better ones.

    A candidate is retested without the items of the slices accepted before it (except its
    own ancestors): against the background (items in no accepted slice and not in it) and,
    for a refinement, against the rest of its worst parent (likewise reduced); each test at
    the Bonferroni level ``alpha / n_tested`` (every slice tested could have been here).
    Rows are items (``w`` None) or cells of a joint count table with ``w`` items each.
    """
    level = alpha / max(n_tested, 1)
    accepted: list[int] = []
    rows = len(y)
    union = np.zeros(rows, dtype=bool)
    bg = [float(total_n), float(total_s), float(total_ss)]
    ysq = y if binary else y2

    def size(idx) -> float:
        return float(idx.size) if w is None else float(w[idx].sum())

    def members_of(key):
        return np.flatnonzero(_key_mask(codes, key, rows))

    def without(members, others):
        own = np.ones(members.size, dtype=bool)
        for ok in others:
            hit = np.ones(members.size, dtype=bool)
            for f, c in ok:
                hit &= codes[f][members] == c
            own &= ~hit
        return members[own]

    def worse(n1, s1, q1, n2, s2, q2):
        if n1 <= 0 or n2 <= 0:
            return n2 <= 0 < n1
        p = _test_vs_rest(np.array([n1]), np.array([s1]), np.array([q1]), n1 + n2,
                          s1 + s2, q1 + q2, binary=binary, alternative="greater")[0]
        return bool(p <= level and s1 / n1 >= (s2 / n2) * (1 + min_refinement))

    for i in order.tolist():
        key = keys[i]
        kset = set(key)
        members = members_of(key)
        others = [keys[j] for j in accepted if not set(keys[j]) <= kset]
        sel = without(members, others)
        rn, rs, rq = size(sel), float(y[sel].sum()), float(ysq[sel].sum())
        outside = members[~union[members]]
        b = (bg[0] - size(outside), bg[1] - float(y[outside].sum()),
             bg[2] - float(ysq[outside].sum()))
        if not worse(rn, rs, rq, *b):
            continue
        if len(key) > 1:
            in_c = np.zeros(rows, dtype=bool)
            in_c[members] = True
            best = None
            for j in range(len(key)):
                pm = without(members_of(key[:j] + key[j + 1:]), others)
                pm = pm[~in_c[pm]]
                if pm.size:
                    st = (size(pm), float(y[pm].sum()), float(ysq[pm].sum()))
                    if st[0] > 0 and (best is None or st[1] / st[0] > best[1] / best[0]):
                        best = st
            if best is not None and not worse(rn, rs, rq, *best):
                continue
        accepted.append(i)
        newly = members[~union[members]]
        union[members] = True
        bg[0] -= size(newly)
        bg[1] -= float(y[newly].sum())
        bg[2] -= float(ysq[newly].sum())
        if top is not None and len(accepted) >= top:
            break
    return np.asarray(accepted, dtype=np.intp)


# --------------------------------------------------------------------------------------
# run comparison
# --------------------------------------------------------------------------------------


@dataclass
class RunDiff:
    """Result of :func:`compare_runs`.

    Attributes
    ----------
    base, candidate : str
        The compared runs.
    overall : DataFrame
        One row: ``n`` (items with a reference label and a prediction in both runs),
        ``base_error_rate``, ``candidate_error_rate``, ``delta`` (candidate minus base;
        negative = better), ``n_fixed``, ``n_broken``, ``p_value`` (exact McNemar test on
        the flips).
    by_slice : DataFrame
        The same per metadata ``column`` and ``value`` (numeric columns binned, ``bin`` text).
    fixed, broken : DataFrame
        Items wrong in base and right in candidate (fixed), or the reverse (broken):
        ``item_id``, ``label``, ``base_predicted``, ``candidate_predicted``,
        ``base_confidence``, ``candidate_confidence``.
    """

    base: str
    candidate: str
    overall: pd.DataFrame
    by_slice: pd.DataFrame
    fixed: pd.DataFrame
    broken: pd.DataFrame
    errors: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def fixed_ids(self) -> list[str]:
        """Ids of the fixed items."""
        return self.fixed["item_id"].astype(str).tolist()

    @property
    def broken_ids(self) -> list[str]:
        """Ids of the broken items."""
        return self.broken["item_id"].astype(str).tolist()

    def __repr__(self) -> str:
        o = self.overall.iloc[0]
        return (f"RunDiff({self.base!r} -> {self.candidate!r}: n={int(o['n'])}, error rate "
                f"{o['base_error_rate']:.3f} -> {o['candidate_error_rate']:.3f}, "
                f"fixed={int(o['n_fixed'])}, broken={int(o['n_broken'])})")


def _mcnemar(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    from scipy import stats

    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    m = b + c
    p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, c), m, 0.5))
    return np.where(m == 0, 1.0, p)


def compare_runs(project: Any, base: str, candidate: str, *, bins: int | None = 4,
                 by: Sequence[str] | None = None, iou: float | None = None) -> RunDiff:
    """Compare two prediction runs on the same items: overall, per slice, and the flips.

    Parameters
    ----------
    project : Project
        The project holding both runs.
    base, candidate : str
        Run names (``project.runs``).
    bins : int, default=4
        Quantile bins for numeric metadata (see :func:`slice_metrics`).
    by : list of str, default=None
        Metadata columns for ``by_slice``; None means all.
    iou : float, default=None
        Detection projects only: IoU threshold of a match (None: 0.5).

    Returns
    -------
    RunDiff
        ``.overall``, ``.by_slice``, ``.fixed``, ``.broken`` (see :class:`RunDiff`). Only
        items with a reference label and a prediction in both runs are compared.
        ``p_value`` is the two-sided exact McNemar test on the fixed/broken counts.

        For a **detection project**, a
        :class:`workbench.detection.slicing.DetectionRunDiff` (a ``RunDiff``) counted on
        reference boxes: per slice AP50, AP, recall and precision of both runs and their
        deltas (:func:`workbench.detection_metrics`), the miss rate as ``error_rate``, and
        the boxes fixed (missed by ``base``, found by ``candidate``) or broken, with
        ``item_id`` and ``box_id``.
    """
    func = "compare_runs"
    if _is_detection(project):
        from .detection.slicing import compare_detection_runs

        return compare_detection_runs(project, base, candidate, bins=bins, by=by,
                                      iou=0.5 if iou is None else iou)
    _classification_only(func, iou=iou)
    runs = list(getattr(project, "runs", []) or [])
    check_option(base, "base", func, runs)
    check_option(candidate, "candidate", func, runs)
    eb = project_errors(project, base)
    ec = project_errors(project, candidate)
    cols = ["item_id", "predicted", "confidence", "correct"]
    merged = eb.merge(ec[cols], on="item_id", suffixes=("_base", "_candidate"))
    merged = merged.rename(columns={
        "predicted_base": "base_predicted", "predicted_candidate": "candidate_predicted",
        "confidence_base": "base_confidence", "confidence_candidate": "candidate_confidence",
        "correct_base": "base_correct", "correct_candidate": "candidate_correct"})
    bc = merged["base_correct"].to_numpy(dtype=bool)
    cc = merged["candidate_correct"].to_numpy(dtype=bool)
    fixed_m = ~bc & cc
    broken_m = bc & ~cc
    flip_cols = ["item_id", "label", "base_predicted", "candidate_predicted",
                 "base_confidence", "candidate_confidence"]
    fixed = merged.loc[fixed_m, flip_cols].reset_index(drop=True)
    broken = merged.loc[broken_m, flip_cols].reset_index(drop=True)

    n = len(merged)
    be = (~bc).astype(float)
    ce = (~cc).astype(float)
    fx = fixed_m.astype(float)
    br = broken_m.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        overall = pd.DataFrame({
            "n": [n], "base_error_rate": [be.sum() / n], "candidate_error_rate": [ce.sum() / n],
        })
    overall["delta"] = overall["candidate_error_rate"] - overall["base_error_rate"]
    overall["n_fixed"] = [int(fx.sum())]
    overall["n_broken"] = [int(br.sum())]
    overall["p_value"] = _mcnemar(overall["n_fixed"], overall["n_broken"])

    meta = eb.attrs.get("metadata_columns", [])
    cols_by = list(meta) if by is None else list(by)
    check_columns(merged, cols_by, what="errors", func=func)
    parts = []
    for col in cols_by:
        enc = _encode(merged[col], bins)
        k = len(enc.values)
        cnt = np.bincount(enc.codes, minlength=k).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            b_rate = np.bincount(enc.codes, weights=be, minlength=k) / cnt
            c_rate = np.bincount(enc.codes, weights=ce, minlength=k) / cnt
        nf = np.bincount(enc.codes, weights=fx, minlength=k)
        nb = np.bincount(enc.codes, weights=br, minlength=k)
        parts.append(pd.DataFrame({
            "column": [col] * k, "value": list(enc.values), "bin": enc.labels,
            "n": cnt.astype(np.int64), "base_error_rate": b_rate,
            "candidate_error_rate": c_rate, "delta": c_rate - b_rate,
            "n_fixed": nf.astype(np.int64), "n_broken": nb.astype(np.int64),
            "p_value": _mcnemar(nf, nb)}))
    by_cols = ["column", "value", "bin", "n", "base_error_rate", "candidate_error_rate",
               "delta", "n_fixed", "n_broken", "p_value"]
    by_slice = (pd.concat(parts, ignore_index=True) if parts
                else pd.DataFrame({c: [] for c in by_cols}))
    merged.attrs = {"base": base, "candidate": candidate, "metadata_columns": cols_by}
    return RunDiff(base=base, candidate=candidate, overall=overall, by_slice=by_slice,
                   fixed=fixed, broken=broken, errors=merged)
