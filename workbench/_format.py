"""How numbers read in the widgets, the status text and the sample's README: one formatter each.

Shares (0.123) are shown as percentages (``12.3%``), changes of a share as percentage points
(``+1.2 pt``); a missing value (None, NaN, ``pd.NA``) is an en dash, ``–``, everywhere.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["MISSING", "percent", "points"]

#: What a missing number reads as.
MISSING = "–"


def _share(x: Any, name: str) -> float | None:
    """``float(x)``, or None for a missing value; a TypeError for anything not a number."""
    if x is None:
        return None
    if isinstance(x, numbers.Real):
        v = float(x)
        return None if math.isnan(v) else v
    if type(x).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    raise TypeError(f"{name}() formats a number (a share such as 0.123) or None. "
                    f"Got {type(x).__name__} {x!r} instead.")


def _check_digits(digits: Any, name: str) -> int:
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or digits < 0:
        raise ValueError(f"The 'digits' parameter of {name} must be an int >= 0. "
                         f"Got {digits!r} instead.")
    return int(digits)


def percent(x: Any, digits: int = 1, *, signed: bool = False) -> str:
    """A share as a percentage: ``0.1234 -> '12.3%'``; missing values read ``'–'``.

    Parameters
    ----------
    x : float, int, None or NA
        The share (1.0 is 100%).
    digits : int, default=1
        Digits after the decimal point.
    signed : bool, default=False
        Always show the sign (``'+12.3%'``).

    Returns
    -------
    str
        Plain text (no HTML).

    Raises
    ------
    TypeError
        If ``x`` is neither a number nor missing (a str, a list...).

    Examples
    --------
    >>> percent(0.1234), percent(1), percent(0), percent(0.5, 0), percent(float("nan"))
    ('12.3%', '100.0%', '0.0%', '50%', '–')
    >>> percent(None), percent(-0.02, signed=True)
    ('–', '-2.0%')
    """
    digits = _check_digits(digits, "percent")
    v = _share(x, "percent")
    if v is None:
        return MISSING
    return f"{100 * v:{'+' if signed else ''}.{digits}f}%"


def points(x: Any, digits: int = 1) -> str:
    """A change of a share in percentage points, signed: ``0.012 -> '+1.2 pt'``.

    Parameters
    ----------
    x : float, int, None or NA
        The difference of two shares (0.01 is one percentage point).
    digits : int, default=1
        Digits after the decimal point.

    Returns
    -------
    str
        Plain text; ``'–'`` for a missing value.

    Examples
    --------
    >>> points(0.012), points(-0.05), points(0), points(None)
    ('+1.2 pt', '-5.0 pt', '+0.0 pt', '–')
    """
    digits = _check_digits(digits, "points")
    v = _share(x, "points")
    if v is None:
        return MISSING
    return f"{100 * v:+.{digits}f} pt"
