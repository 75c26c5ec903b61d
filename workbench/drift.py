"""Data drift between batches: how each metadata column and the predicted classes change.

:func:`drift` compares, for every batch (the values of an item column such as ``batch``),
the distribution of each metadata column and of the model's predicted class with the
same distribution in a *baseline* batch (default: the first batch in order). Two measures:

* the **population stability index** (PSI), ``sum_v (a_v - e_v) * ln(a_v / e_v)`` over the
  values ``v`` (``a``: the batch's shares, ``e``: the baseline's). A share of 0 is counted
  as :data:`PSI_EPSILON` (0.0001) so that a value new in the batch (or gone from it) gives a
  large but finite term. The usual reading: below 0.1 stable, 0.1 to 0.2 a moderate shift,
  above 0.2 a significant shift;
* a **chi-square test** of the 2 x V table of counts (baseline, batch) by value
  (:func:`scipy.stats.chi2_contingency`, with its default Yates correction when the table is
  2 x 2), whose p-values are adjusted over every (batch, column) pair with the
  Benjamini-Hochberg procedure (:func:`scipy.stats.false_discovery_control`).

A (batch, column) pair is ``drifted`` when its PSI is above :data:`PSI_THRESHOLD` (0.2)
**and** its adjusted p-value (``q_value``) is below :data:`DRIFT_ALPHA` (0.01): the change is
large enough to matter and too large to be chance at the batch's size.

How values are formed (the same rule in :func:`drift` and :func:`drift_items`):

* text, boolean and categorical columns: each value is a level; a missing cell is the level
  ``"(missing)"``;
* numeric (datetime, duration) columns with more than ``n_bins`` distinct values are binned at the
  baseline's quantiles (deciles by default; bins ``< a``, ``[a, b)``, ``>= z``, open at both
  ends so that values beyond the baseline's range fall in the outer bins); with fewer
  distinct values each value is a level;
* a datetime reads as its date (``2026-03-01``) when every value of the column is a
  midnight, else as its full timestamp; a timezone-aware column is binned in UTC and shown
  in its own timezone (with the offset); datetime cut points are rounded to the second. The
  batches of a datetime ``by`` column are named the same way;
* the predicted class of a run is the column ``predicted`` (items without a prediction are
  ``"(missing)"``).

By default every metadata column is compared except ``by`` itself, columns with a single
value over all items (nothing can change), text columns with more than :data:`MAX_LEVELS`
distinct values (ids, free text) and dates with one value inside every batch (a batch date
says when the batch came, not what it holds). Any other column with one value per batch is
compared: a scanner that is ``a`` in every item of one batch and ``b`` in every item of the
next is the largest drift there is. Those left out are listed in ``attrs["skipped"]`` with
the reason. Name them in ``columns=`` to compare them anyway (a text column's rarest values
beyond the ``MAX_LEVELS - 1`` most frequent are then pooled as ``"(other)"``).
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_float_array, check_fraction, check_int
from .errors import SchemaError

__all__ = [
    "drift",
    "drift_items",
    "drift_summary",
    "psi",
    "PSI_EPSILON",
    "PSI_THRESHOLD",
    "DRIFT_ALPHA",
    "MAX_LEVELS",
    "MISSING",
    "OTHER",
]

#: The share an empty value (bin) counts as in the PSI, so that ``ln`` stays finite.
PSI_EPSILON = 1e-4
#: A PSI above this is a significant shift (the usual reading of the index).
PSI_THRESHOLD = 0.2
#: Largest Benjamini-Hochberg adjusted p-value of a drifted (batch, column) pair.
DRIFT_ALPHA = 0.01
#: Text columns with more distinct values are left out by default (ids, free text).
MAX_LEVELS = 50
#: The value of a missing cell.
MISSING = "(missing)"
#: The pooled rare values of a text column named in ``columns=`` with too many levels.
OTHER = "(other)"
#: The column name of the predicted class.
PREDICTED = "predicted"

_RESULT_COLUMNS = ["batch", "column", "value", "n_baseline", "n", "share_baseline", "share",
                   "change", "psi_term", "psi", "chi2", "dof", "p_value", "q_value", "drifted"]


def psi(expected, actual, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two distributions over the same values.

    Parameters
    ----------
    expected : array-like of shape (n_values,)
        Counts (or shares) of the baseline.
    actual : array-like of shape (n_values,)
        Counts (or shares) of the batch, in the same value order.
    epsilon : float, default=PSI_EPSILON
        The share an empty value counts as.

    Returns
    -------
    float
        ``sum((a - e) * ln(a / e))`` over the shares ``a`` and ``e`` (each vector divided by
        its sum, then shares of 0 raised to ``epsilon``).

    Raises
    ------
    ValueError
        If ``expected`` or ``actual`` is not a 1-D vector of finite, non-negative numbers
        with at least one positive, if their lengths differ, or if ``epsilon`` is not in
        ``(0, 1]``.

    Examples
    --------
    >>> round(psi([50, 50], [50, 50]), 6)
    0.0
    >>> round(psi([50, 50], [80, 20]), 4)
    0.4159
    """
    func = "psi"
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) \
            or not 0 < epsilon <= 1:
        raise ValueError(f"The 'epsilon' parameter of {func} must be a float in the range "
                         f"(0, 1]. Got {epsilon!r} instead.")
    e = _check_counts(expected, "expected", func)
    a = _check_counts(actual, "actual", func)
    if len(a) != len(e):
        raise ValueError(f"The 'actual' parameter of {func} must hold one count per value of "
                         f"'expected' ({len(e)} values, in the same order). Got {len(a)} "
                         f"values instead.")
    return float(_psi_terms(e, a, epsilon).sum())


def _check_counts(counts: Any, name: str, func: str) -> np.ndarray:
    """``counts`` as a 1-D float vector of finite, non-negative numbers, not all 0."""
    x = check_float_array(counts, name, func, ndim=1, what="counts")
    bad = np.flatnonzero(~np.isfinite(x) | (x < 0))
    if len(bad):
        raise ValueError(f"The {name!r} parameter of {func} must hold finite, non-negative "
                         f"counts. Got {float(x[bad[0]])!r} at position {int(bad[0])} instead.")
    if not x.sum() > 0:
        raise ValueError(f"The {name!r} parameter of {func} must hold at least one positive "
                         f"count (shares of an all-zero distribution are undefined). Got "
                         f"{len(x)} zero(s) instead.")
    return x


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=float)


def _psi_terms(expected: np.ndarray, actual: np.ndarray, epsilon: float) -> np.ndarray:
    e = np.maximum(_shares(expected), epsilon)
    a = np.maximum(_shares(actual), epsilon)
    return (a - e) * np.log(a / e)


# ----------------------------------------------------------------------------- values


def _is_numeric(series: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)) \
        or _is_datetime(series) or _is_timedelta(series)


def _is_timedelta(series: pd.Series) -> bool:
    return pd.api.types.is_timedelta64_dtype(series)


def _is_datetime(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series)


def _datetime_text(stamps: pd.Series) -> pd.Series:
    """Datetimes (none missing) as text: the date alone when every one is a midnight.

    ``'2026-03-01'``; otherwise the full timestamp, ``'2026-03-01 06:30:00'`` (with the UTC
    offset, ``'+01:00'``, for a timezone-aware column, in its own timezone).
    """
    if (stamps == stamps.dt.normalize()).all():
        return stamps.dt.strftime("%Y-%m-%d")
    return stamps.astype(str)


def _value_labels(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each cell's value as text and the distinct values in display order.

    The one place a value becomes its label, for the items and for the order alike.

    Returns
    -------
    labels : ndarray of object
        One per cell; None where the cell is missing.
    order : list of str
        Numbers and datetimes by value, other values sorted as text.
    """
    missing = series.isna().to_numpy()
    present = series[~missing]
    text = (_datetime_text(present) if _is_datetime(series) else present.astype(str))
    text = text.to_numpy(dtype=object)
    labels = np.full(len(series), None, dtype=object)
    labels[~missing] = text
    if _is_numeric(series):
        by_value = present.reset_index(drop=True).sort_values(kind="stable").index.to_numpy()
        order = list(pd.unique(text[by_value]))
    else:
        order = sorted(set(text))
    return labels, order


def _as_numbers(series: pd.Series) -> np.ndarray:
    """A numeric column as float, a datetime or duration one as int64 nanoseconds.

    Datetimes count from the epoch, in UTC; durations (timedelta) from zero.
    """
    if _is_timedelta(series):
        return series.to_numpy(dtype="timedelta64[ns]").view("int64")
    if _is_datetime(series):
        if series.dt.tz is not None:
            series = series.dt.tz_convert(None)  # to UTC, then naive
        return series.to_numpy(dtype="datetime64[ns]").view("int64")
    return series.to_numpy(dtype=float, na_value=np.nan)


def _cut_labels(cuts: np.ndarray, series: pd.Series) -> list[str]:
    """The cut points as text.

    Datetimes in the column's timezone, durations as pandas writes them
    (``'0 days 00:01:30'``), numbers to 4 digits.
    """
    if _is_timedelta(series):
        return [str(pd.Timedelta(int(c), unit="ns")) for c in cuts]
    if not _is_datetime(series):
        return [f"{c:.4g}" for c in cuts]
    stamps = pd.Series(pd.to_datetime(cuts, unit="ns", utc=True))
    tz = series.dt.tz
    stamps = stamps.dt.tz_convert(tz) if tz is not None else stamps.dt.tz_localize(None)
    return _datetime_text(stamps).tolist()


def _bins(series: pd.Series, missing: np.ndarray, reference: np.ndarray,
          n_bins: int) -> tuple[np.ndarray, list[str]]:
    """Each item's quantile bin (of the reference's values) as text, and the bins in order.

    Datetime cut points are rounded to the second, so that their labels stay readable.
    """
    x = _as_numbers(series)
    base = x[reference & ~missing]
    if not len(base):
        base = x[~missing]
    cuts = np.quantile(base, np.linspace(0, 1, n_bins + 1)[1:-1])
    if _is_datetime(series):
        cuts = np.round(cuts / 1e9).astype(np.int64) * 1_000_000_000
    cuts = np.unique(cuts)
    if not len(cuts):
        cuts = np.array([base.min()])
    text = _cut_labels(cuts, series)
    labels = ([f"< {text[0]}"]
              + [f"[{lo}, {hi})" for lo, hi in zip(text[:-1], text[1:], strict=True)]
              + [f">= {text[-1]}"])
    codes = np.searchsorted(cuts, np.where(missing, cuts[0], x), side="right")
    return np.asarray(labels, dtype=object)[codes], labels


def slice_values(series: pd.Series, reference: np.ndarray, *, n_bins: int = 10,
                 max_levels: int | None = None) -> tuple[pd.Series, list[str]]:
    """The value (level or bin) of every item for one column, as text.

    Parameters
    ----------
    series : Series
        The column over all items.
    reference : ndarray of bool
        The items whose quantiles set the bins of a numeric column (the baseline batch, or
        the reference of :func:`workbench.coverage`).
    n_bins : int, default=10
        Quantile bins of a numeric column with more distinct values than this.
    max_levels : int, optional
        Pool a text column's values beyond the ``max_levels - 1`` most frequent as
        :data:`OTHER`.

    Returns
    -------
    values : Series of str
        Same index as ``series``; missing cells are :data:`MISSING`. A datetime is its date
        (``'2026-03-01'``) when every value of the column is a midnight, else its full
        timestamp; a timezone-aware one is shown in its timezone and binned in UTC.
    order : list of str
        The values in display order (bins low to high, numbers and datetimes by value,
        other levels sorted as text, then ``"(other)"`` and ``"(missing)"``).

    Examples
    --------
    >>> s = pd.Series(pd.to_datetime(["2026-03-01", None, "2026-01-01"]))
    >>> values, order = slice_values(s, np.ones(3, bool))
    >>> values.tolist(), order
    (['2026-03-01', '(missing)', '2026-01-01'], ['2026-01-01', '2026-03-01', '(missing)'])
    """
    missing = series.isna().to_numpy()
    if _is_numeric(series) and series[~missing].nunique() > n_bins:
        values, order = _bins(series, missing, reference, n_bins)
    else:
        values, order = _value_labels(series)
        if max_levels is not None and len(order) > max_levels:
            present = pd.Series(values[~missing])
            keep = set(present.value_counts().index[: max_levels - 1])
            values = np.where(pd.Series(values).isin(keep).to_numpy() | missing, values, OTHER)
            order = [v for v in order if v in keep] + [OTHER]
    values = np.where(missing, MISSING, values)
    if missing.any():
        order = order + [MISSING]
    return pd.Series(values, index=series.index, dtype=object), order


# ----------------------------------------------------------------------------- parameters


def _column_list(columns: Any, func: str) -> list:
    """The ``columns`` parameter (a str or an iterable of them, not None) as a list."""
    if isinstance(columns, str):
        return [columns]
    try:
        return list(columns)
    except TypeError:
        raise TypeError(f"The 'columns' parameter of {func} must be a list of str or None. "
                        f"Got {columns!r} instead.") from None


def _did_you_mean(value: Any, options) -> str:
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _batches(project: Any, by: Any, func: str) -> tuple[pd.Series, list[str]]:
    items = project.items
    if not isinstance(by, str):
        raise TypeError(f"The 'by' parameter of {func} must be a str (an item column). "
                        f"Got {by!r} instead.")
    if by not in items.columns or by == "item_id":
        cols = [c for c in items.columns if c != "item_id"]
        raise SchemaError(f"{func}: the items have no column {by!r} to group batches by; they "
                          f"have {cols}.{_did_you_mean(by, cols)} Pass by=<an item column>.")
    labels, order = _value_labels(items[by])  # the same labels as drift's values
    batch = pd.Series(labels, index=items.index, dtype=object)
    if len(order) < 2:
        raise ValueError(f"{func} compares batches, but the items' {by!r} column has "
                         f"{len(order)} value(s) {order}. Pass by=<a column with at least two "
                         f"values>.")
    return batch, order


def _check_baseline(baseline: Any, order: list[str], by: str, func: str) -> str:
    if baseline is None:
        return order[0]
    if str(baseline) not in order:
        shown = order if len(order) <= 20 else order[:20] + ["..."]
        raise ValueError(f"The 'baseline' parameter of {func} must be a value of the items' "
                         f"{by!r} column among {shown} or None.{_did_you_mean(baseline, order)} "
                         f"Got {baseline!r} instead.")
    return str(baseline)


def _predicted(project: Any, run: Any, func: str) -> pd.Series:
    run = project._check_run(run, func)
    pred = project.predictions
    pred = pred[pred["run"] == run]
    labels = pd.Series(pred["label"].to_numpy(), index=pred["item_id"].to_numpy())
    labels = labels[~labels.index.duplicated()]
    return pd.Series(labels.reindex(project.items["item_id"].to_numpy()).to_numpy(),
                     index=project.items.index, dtype=object)


def _candidates(project: Any, by: str) -> list[str]:
    cols = [c for c in project.metadata_columns if c != by]
    if getattr(project, "task", "classification") != "detection" and project.runs:
        cols.append(PREDICTED)
    return cols


def _is_date_like(col: pd.Series) -> bool:
    """A datetime column, or text whose every value reads as an ISO 8601 date."""
    if _is_datetime(col):
        return True
    if _is_numeric(col) or pd.api.types.is_bool_dtype(col):
        return False
    values = pd.Series(pd.unique(col.dropna())).astype(str)
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    return bool(len(values)) and bool(parsed.notna().all())


def _skip_reason(col: pd.Series, batch: pd.Series, by: str) -> str | None:
    """Why :func:`drift` leaves a metadata column out by default, or None to compare it.

    Left out: a column with one value over all items (missing counts as a value; nothing
    can change), a text column with more than :data:`MAX_LEVELS` values (ids, free text)
    and a date with one value inside every batch (the batch's date: it says when the batch
    came, not what it holds). Any other column with one value per batch is compared: a
    value that changes between batches (scanner 'a' in one batch, 'b' in the next) is the
    largest drift there is.
    """
    if col.nunique(dropna=False) <= 1:
        return "a single value over all items (nothing can change)"
    n_present = col.nunique()
    if not _is_numeric(col) and n_present > MAX_LEVELS:
        return (f"{n_present} distinct values (more than {MAX_LEVELS}); name it in "
                f"columns= to compare it")
    known = (col.notna() & batch.notna()).to_numpy()
    per_batch = col[known].astype(str).groupby(batch[known].to_numpy()).nunique()
    if len(per_batch) and (per_batch <= 1).all() and _is_date_like(col):
        return (f"one date inside every {by} (it dates the {by}, it does not drift); name "
                f"it in columns= to compare it")
    return None


def _resolve_columns(project: Any, columns: Any, by: str, batch: pd.Series,
                     func: str) -> tuple[list[str], dict[str, str]]:
    allowed = _candidates(project, by)
    skipped: dict[str, str] = {}
    if columns is None:
        chosen = []
        for c in allowed:
            why = None if c == PREDICTED else _skip_reason(project.items[c], batch, by)
            if why is None:
                chosen.append(c)
            else:
                skipped[c] = why
        if getattr(project, "task", "classification") == "detection" and project.runs:
            skipped[PREDICTED] = "detection projects: one prediction per box, not per image"
        return chosen, skipped
    columns = _column_list(columns, func)
    if not columns:
        raise ValueError(f"The 'columns' parameter of {func} must name at least one column "
                         f"among {allowed}, or be None. Got [] instead.")
    for c in columns:
        if c not in allowed:
            why = (f" ({c!r} is the batch column itself)" if c == by else
                   " (the project has no predictions)" if c == PREDICTED else "")
            raise ValueError(f"The 'columns' parameter of {func} must hold item metadata "
                             f"columns or {PREDICTED!r}, among {allowed}{why}."
                             f"{_did_you_mean(c, allowed)} Got {c!r} instead.")
    return list(dict.fromkeys(columns)), skipped


def _column_series(project: Any, column: str, run: Any, func: str) -> pd.Series:
    return _predicted(project, run, func) if column == PREDICTED else project.items[column]


# ----------------------------------------------------------------------------- drift


def drift(project: Any, by: str = "batch", columns=None, baseline=None, *, run=None,
          n_bins: int = 10, psi_threshold: float = PSI_THRESHOLD,
          alpha: float = DRIFT_ALPHA) -> pd.DataFrame:
    """Per batch, how each metadata column and the predicted class changed from a baseline.

    Parameters
    ----------
    project : Project
        An open project (a detection project: metadata columns only).
    by : str, default='batch'
        The item column whose values are the batches, in sorted order (text sorts as text,
        e.g. ISO weeks; numbers as numbers). Items with no value are left out.
    columns : list of str, optional
        Item metadata columns and/or ``'predicted'`` (the predicted class of ``run``).
        Default: every metadata column but ``by``, those with a single value over all items,
        text columns with more than :data:`MAX_LEVELS` values and dates with one value
        inside every batch (see ``attrs["skipped"]``), plus ``'predicted'`` when the project
        has predictions.
    baseline : str, optional
        The batch every other is compared with; default the first in order.
    run : str, optional
        The run of the ``predicted`` column; default the project's default run.
    n_bins : int, default=10
        Quantile bins (of the baseline) of numeric columns.
    psi_threshold : float, default=PSI_THRESHOLD
        ``drifted`` needs a PSI above this (0.2).
    alpha : float, default=DRIFT_ALPHA
        ... and a Benjamini-Hochberg adjusted chi-square p-value below this (0.01).

    Returns
    -------
    DataFrame
        One row per (batch, column, value), batches in order (the baseline left out),
        columns in the order given, values in display order (see
        :func:`slice_values`): ``batch``, ``column``, ``value``, ``n_baseline``, ``n``
        (items with that value in the baseline and in the batch), ``share_baseline``,
        ``share``, ``change`` (share minus baseline share), ``psi_term`` (the value's part of
        the PSI), then the (batch, column) figures repeated on each of its rows: ``psi``,
        ``chi2``, ``dof``, ``p_value``, ``q_value`` (adjusted over all pairs), ``drifted``.
        ``attrs``: ``by``, ``baseline``, ``batches`` (in order), ``columns``, ``run``,
        ``skipped`` (column -> why it was left out), ``psi_threshold``, ``alpha``.

    Raises
    ------
    SchemaError
        If the items have no ``by`` column.
    ValueError
        If ``by`` has fewer than two values, or ``baseline``, ``columns``, ``run`` or a
        threshold is not valid (the message lists the valid values).

    See Also
    --------
    drift_summary : One row per (batch, column), most drifted first.
    drift_items : The items behind a drifted value.

    Examples
    --------
    >>> import workbench as wb
    >>> items = pd.DataFrame({"item_id": [f"i{i}" for i in range(400)],
    ...                       "batch": ["w1"] * 200 + ["w2"] * 200,
    ...                       "scanner": ["a", "b"] * 100 + ["a"] * 180 + ["b"] * 20})
    >>> d = drift(wb.Project.from_frames(items=items))
    >>> d[["batch", "column", "value", "share_baseline", "share", "drifted"]]
      batch   column value  share_baseline  share  drifted
    0    w2  scanner     a             0.5    0.9     True
    1    w2  scanner     b             0.5    0.1     True
    """
    from scipy.stats import chi2_contingency, false_discovery_control

    func = "drift"
    n_bins = check_int(n_bins, "n_bins", func, minimum=1)
    if isinstance(psi_threshold, bool) or not isinstance(psi_threshold, int | float) \
            or not psi_threshold >= 0:
        raise ValueError(f"The 'psi_threshold' parameter of {func} must be a float in the "
                         f"range [0, inf). Got {psi_threshold!r} instead.")
    alpha = check_fraction(alpha, "alpha", func)
    if run is not None:
        project._check_run(run, func)
    batch, order = _batches(project, by, func)
    base = _check_baseline(baseline, order, by, func)
    cols, skipped = _resolve_columns(project, columns, by, batch, func)
    others = [b for b in order if b != base]
    in_base = (batch == base).to_numpy()
    batch_arr = batch.to_numpy()

    rows, pairs = [], []
    for col in cols:
        series = _column_series(project, col, run, func)
        values, vorder = slice_values(series, in_base, n_bins=n_bins,
                                      max_levels=MAX_LEVELS if col != PREDICTED else None)
        table = pd.crosstab(pd.Series(batch_arr, name="batch"),
                            pd.Series(values.to_numpy(), name="value"))
        table = table.reindex(columns=[v for v in vorder if v in table.columns])
        e = table.loc[base].to_numpy(float) if base in table.index else np.zeros(table.shape[1])
        for b in others:
            a = table.loc[b].to_numpy(float) if b in table.index else np.zeros(table.shape[1])
            keep = (a + e) > 0
            terms = _psi_terms(e[keep], a[keep], PSI_EPSILON)
            observed = np.vstack([e[keep], a[keep]])
            if keep.sum() >= 2 and e.sum() > 0 and a.sum() > 0:
                res = chi2_contingency(observed)
                chi2, p, dof = float(res.statistic), float(res.pvalue), int(res.dof)
            else:
                chi2, p, dof = 0.0, 1.0, 0
            pairs.append(p)
            vals = table.columns[keep]
            es, as_ = _shares(e[keep]), _shares(a[keep])
            rows.append(pd.DataFrame({
                "batch": b, "column": col, "value": np.asarray(vals, dtype=object),
                "n_baseline": e[keep].astype(int), "n": a[keep].astype(int),
                "share_baseline": es, "share": as_, "change": as_ - es, "psi_term": terms,
                "psi": float(terms.sum()), "chi2": chi2, "dof": dof, "p_value": p,
                "pair": len(pairs) - 1}))
    if rows:
        out = pd.concat(rows, ignore_index=True)
        q = false_discovery_control(np.asarray(pairs, float), method="bh")
        out["q_value"] = q[out.pop("pair").to_numpy()]
        out["drifted"] = (out["psi"] > psi_threshold) & (out["q_value"] < alpha)
    else:
        out = pd.DataFrame({c: [] for c in _RESULT_COLUMNS})
    out = out[_RESULT_COLUMNS]
    out.attrs.update({"by": by, "baseline": base, "batches": order, "columns": cols,
                      "run": (project.default_run if run is None else run)
                      if PREDICTED in cols else None,
                      "skipped": skipped, "psi_threshold": float(psi_threshold),
                      "alpha": alpha})
    return out


def drift_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (batch, column) of a :func:`drift` frame, most drifted first.

    Parameters
    ----------
    frame : DataFrame
        The output of :func:`drift`.

    Returns
    -------
    DataFrame
        ``batch``, ``column``, ``psi``, ``chi2``, ``dof``, ``p_value``, ``q_value``,
        ``drifted``, ``value`` (the value whose share changed most in PSI terms),
        ``share_baseline`` and ``share`` of that value; drifted pairs first, then by PSI
        descending. ``attrs`` are those of ``frame``.

    Examples
    --------
    >>> frame = pd.DataFrame({"batch": ["w2", "w2"], "column": ["c", "c"], "value": ["a", "b"],
    ...     "share_baseline": [.5, .5], "share": [.9, .1], "psi_term": [.24, .64],
    ...     "psi": [.88, .88], "chi2": [9., 9.], "dof": [1, 1], "p_value": [.001, .001],
    ...     "q_value": [.001, .001], "drifted": [True, True]})
    >>> drift_summary(frame)[["batch", "column", "psi", "value", "share"]]
      batch column   psi value  share
    0    w2      c  0.88     b    0.1
    """
    from ._validation import check_columns

    check_columns(frame, ["batch", "column", "value", "psi_term", "psi", "q_value", "drifted"],
                  what="frame", func="drift_summary")
    cols = ["batch", "column", "psi", "chi2", "dof", "p_value", "q_value", "drifted", "value",
            "share_baseline", "share"]
    if not len(frame):
        out = pd.DataFrame({c: [] for c in cols})
    else:
        top = frame.loc[frame.groupby(["batch", "column"], sort=False)["psi_term"].idxmax()]
        out = top[[c for c in cols if c in top.columns]].sort_values(
            ["drifted", "psi"], ascending=[False, False], kind="stable")
    out = out.reset_index(drop=True)
    out.attrs.update(frame.attrs)
    return out


def drift_items(project: Any, batch: Any, column: str, value: Any = None, *, by: str = "batch",
                baseline: Any = None, run: Any = None, n_bins: int = 10) -> pd.DataFrame:
    """The items of one batch behind a drifted value of a column.

    Parameters
    ----------
    project : Project
    batch : str
        The batch (a value of ``by``, named as in :func:`drift`'s ``batch`` column: a date
        such as ``'2026-01-12'`` for a datetime ``by``).
    column : str
        A metadata column or ``'predicted'``, as in :func:`drift`.
    value : str, optional
        The value (a level, a bin label such as ``'[0.5, 0.7)'``, ``'(missing)'``) as in
        :func:`drift`'s ``value`` column. Default: the value that moved the PSI most among
        those whose share grew against the baseline.
    by, baseline, run, n_bins
        As given to :func:`drift` (the bins of a numeric column depend on the baseline).

    Returns
    -------
    DataFrame
        ``item_id``, ``<by>``, ``<column>`` (the item's value as in :func:`drift`), in the
        items' order. ``attrs``: ``value`` (the value selected), ``share_baseline``,
        ``share``.

    Raises
    ------
    ValueError
        If ``batch``, ``column``, ``value`` or ``run`` is not one :func:`drift` knows (the
        message lists those it knows).

    Examples
    --------
    >>> import workbench as wb
    >>> items = pd.DataFrame({"item_id": [f"i{i}" for i in range(8)],
    ...                       "batch": ["w1"] * 4 + ["w2"] * 4,
    ...                       "scanner": ["a", "b", "a", "b", "a", "a", "a", "b"]})
    >>> drift_items(wb.Project.from_frames(items=items), "w2", "scanner")["item_id"].tolist()
    ['i4', 'i5', 'i6']
    """
    func = "drift_items"
    n_bins = check_int(n_bins, "n_bins", func, minimum=1)
    if run is not None:
        project._check_run(run, func)
    series_batch, order = _batches(project, by, func)
    base = _check_baseline(baseline, order, by, func)
    if batch is None or str(batch) not in order:
        shown = order if len(order) <= 20 else order[:20] + ["..."]
        raise ValueError(f"The 'batch' parameter of {func} must be a value of the items' {by!r} "
                         f"column among {shown}.{_did_you_mean(batch, order)} Got {batch!r} "
                         f"instead.")
    batch = str(batch)
    _resolve_columns(project, [column], by, series_batch, func)
    in_base = (series_batch == base).to_numpy()
    series = _column_series(project, column, run, func)
    values, vorder = slice_values(series, in_base, n_bins=n_bins,
                                  max_levels=MAX_LEVELS if column != PREDICTED else None)
    in_batch = (series_batch == batch).to_numpy()
    counts_b = values[in_batch].value_counts()
    counts_e = values[in_base].value_counts()
    present = [v for v in vorder if v in counts_b.index]
    share_b = counts_b.reindex(vorder, fill_value=0) / max(int(in_batch.sum()), 1)
    share_e = counts_e.reindex(vorder, fill_value=0) / max(int(in_base.sum()), 1)
    if value is None:
        grew = [v for v in present if share_b[v] > share_e[v]]
        if not grew:
            raise ValueError(f"{func}: no value of {column!r} grew in {by} {batch!r} against "
                             f"the baseline {base!r}; pass value= among {present}.")
        e = np.maximum(share_e[grew].to_numpy(), PSI_EPSILON)
        a = np.maximum(share_b[grew].to_numpy(), PSI_EPSILON)
        terms = (a - e) * np.log(a / e)
        value = grew[int(np.argmax(terms))]
    elif str(value) not in present:
        raise ValueError(f"The 'value' parameter of {func} must be a value of {column!r} in "
                         f"{by} {batch!r}, among {present}.{_did_you_mean(value, present)} "
                         f"Got {value!r} instead.")
    value = str(value)
    mask = in_batch & (values.to_numpy() == value)
    out = pd.DataFrame({"item_id": project.items["item_id"].to_numpy()[mask],
                        by: batch, column: value})
    out.attrs.update({"value": value, "share_baseline": float(share_e[value]),
                      "share": float(share_b[value]), "baseline": base})
    return out
