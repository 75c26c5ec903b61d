"""Parameter checks with scikit-learn-style messages, shared by every module."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import SchemaError

__all__ = [
    "check_option",
    "check_columns",
    "check_int",
    "check_fraction",
    "latest_annotations",
    "has_two_values",
    "check_random_state",
    "check_float_array",
    "MAX_SEED",
]


def _describe(options: Iterable[Any]) -> str:
    return "{" + ", ".join(repr(o) for o in options) + "}"


def check_option(value: Any, name: str, func: str, options: Sequence[Any], *, allow_none=False):
    """Check that ``value`` is one of ``options``.

    Raises
    ------
    ValueError
        ``The 'weights' parameter of pairwise_kappa must be a str among {'linear',
        'quadratic'} or None. Got 'cubic' instead.``
    """
    if value is None and allow_none:
        return value
    if value not in options:
        kind = "a str among " if all(isinstance(o, str) for o in options) else "one of "
        tail = " or None" if allow_none else ""
        raise ValueError(
            f"The {name!r} parameter of {func} must be {kind}{_describe(options)}{tail}. "
            f"Got {value!r} instead."
        )
    return value


def check_int(value: Any, name: str, func: str, *, minimum: int | None = None, allow_none=False):
    """Check that ``value`` is an int (not a bool), at least ``minimum``."""
    if value is None and allow_none:
        return value
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"The {name!r} parameter of {func} must be an int"
            f"{' or None' if allow_none else ''}. Got {value!r} instead."
        )
    if minimum is not None and value < minimum:
        raise ValueError(
            f"The {name!r} parameter of {func} must be an int in the range "
            f"[{minimum}, inf). Got {value!r} instead."
        )
    return int(value)


def check_fraction(value: Any, name: str, func: str, *, low=0.0, high=1.0, allow_none=False):
    """Check that ``value`` is a real number in ``[low, high]``."""
    if value is None and allow_none:
        return value
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(
            f"The {name!r} parameter of {func} must be a float in the range "
            f"[{low}, {high}]. Got {value!r} instead."
        )
    return float(value)


def check_columns(frame: Any, required: Iterable[str], *, what: str, func: str) -> pd.DataFrame:
    """Check that ``frame`` is a DataFrame holding every column of ``required``.

    Parameters
    ----------
    frame : DataFrame
        The frame to check.
    required : iterable of str
        Column names that must be present.
    what : str
        What the frame is, for the message (``"annotations"``).
    func : str
        The public function that received it.

    Raises
    ------
    TypeError
        If ``frame`` is not a DataFrame.
    SchemaError
        If columns are missing; the message lists the missing and the present columns.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"The {what!r} parameter of {func} must be a pandas DataFrame. "
            f"Got {type(frame).__name__} instead."
        )
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{func}: {what} is missing the column(s) {missing}. "
            f"It has {list(map(str, frame.columns))}. Rename or add them "
            f"(see the project format in the README)."
        )
    return frame


def latest_annotations(annotations: pd.DataFrame) -> pd.DataFrame:
    """Keep one label per (item_id, annotator): the latest one.

    Re-imported labels are appended to ``annotations`` rather than overwriting, so an
    annotator may have several rows for one item; the row with the latest ``annotated_at``
    (or, without that column, the last row) is the annotator's current label.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations with ``item_id``, ``annotator``, ``label`` [, ``annotated_at``].

    Returns
    -------
    DataFrame
        The same columns, at most one row per (item_id, annotator), in the original order.
    """
    check_columns(annotations, ["item_id", "annotator", "label"], what="annotations",
                  func="latest_annotations")
    if annotations.empty:
        return annotations
    key = ["item_id", "annotator"]
    if not annotations.duplicated(key).any():
        return annotations
    frame = annotations
    if "annotated_at" in frame.columns:
        order = frame["annotated_at"].rank(method="first", na_option="bottom")
        frame = frame.assign(_order=order.to_numpy()).sort_values("_order", kind="stable")
        frame = frame.drop(columns="_order")
    keep = ~frame.duplicated(key, keep="last")
    return frame[keep].sort_index()


def has_two_values(values: pd.Series) -> bool:
    """Whether ``values`` holds at least two distinct non-missing values.

    The first rows usually tell; a 10M-row column is counted only when they do not.

    Examples
    --------
    >>> has_two_values(pd.Series(["a", "a", None, "b"])), has_two_values(pd.Series([1, 1]))
    (True, False)
    """
    head = values.iloc[:4096]
    return bool(head.nunique(dropna=True) >= 2 or values.nunique(dropna=True) >= 2)


#: The largest seed numpy's RandomState (and so scikit-learn, UMAP) takes.
MAX_SEED = 2**32 - 1


def check_random_state(value: Any, func: str, *, instances: bool = False):
    """Check a ``random_state`` parameter the way scikit-learn does.

    Parameters
    ----------
    value : object
        None, an int in ``[0, 2**32 - 1]`` (any :class:`numbers.Integral` but a bool) or,
        when ``instances``, a :class:`numpy.random.RandomState`.
    func : str
        The public function that received it, for the message.
    instances : bool, default=False
        Whether a RandomState instance is accepted.

    Returns
    -------
    int, RandomState or None
        ``value``, a numpy integer turned into an int.

    Raises
    ------
    ValueError
        ``The 'random_state' parameter of layout must be an int in the range
        [0, 4294967295] or None. Got -3 instead.``
    """
    import numbers

    if value is None or (instances and isinstance(value, np.random.RandomState)):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and 0 <= value <= MAX_SEED:
        return int(value)
    kinds = f"an int in the range [0, {MAX_SEED}]"
    kinds += ", an instance of 'numpy.random.RandomState'" if instances else ""
    raise ValueError(f"The 'random_state' parameter of {func} must be {kinds} or None. Got "
                     f"{value!r} instead.")


def check_float_array(value: Any, name: str, func: str, *, ndim: int, what: str) -> np.ndarray:
    """``value`` as a float array of ``ndim`` dimensions, or a scikit-learn-style error.

    Parameters
    ----------
    value : array-like
    name, func : str
        The parameter and the public function, for the message.
    ndim : int
        The dimensions required.
    what : str
        What it holds, for the message (``"counts"``, ``"vectors (n, n_dims)"``).

    Raises
    ------
    ValueError
        ``The 'x' parameter of f must be a 1-D array-like of counts. Got ... instead.``
    """
    try:
        out = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"The {name!r} parameter of {func} must be a {ndim}-D array-like of "
                         f"{what} (numbers). Got {str(value)[:60]!r} instead.") from None
    if out.ndim != ndim:
        raise ValueError(f"The {name!r} parameter of {func} must be {ndim}-D ({what}). Got "
                         f"shape {out.shape} instead.")
    return out
