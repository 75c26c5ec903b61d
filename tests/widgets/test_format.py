"""One percent formatter (``workbench._format``) for every widget and the sample's README."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench._format import MISSING, percent, points

WIDGETS = Path(__file__).resolve().parents[2] / "workbench" / "widgets"


@pytest.mark.parametrize("value, digits, expected", [
    (0, 1, "0.0%"),
    (1, 1, "100.0%"),
    (0.1234, 1, "12.3%"),
    (0.1234, 2, "12.34%"),
    (0.5, 0, "50%"),
    (0.00049, 1, "0.0%"),
    (-0.25, 1, "-25.0%"),
    (np.float32(0.25), 1, "25.0%"),
    (np.int64(1), 0, "100%"),
    (1.5, 1, "150.0%"),
])
def test_percent_formats_shares(value, digits, expected):
    assert percent(value, digits) == expected


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, pd.NA, pd.NaT,
                                     np.float64("nan")])
def test_missing_values_read_as_a_dash(missing):
    assert percent(missing) == MISSING == "–"
    assert points(missing) == "–"


def test_signed_percent_and_points():
    assert percent(0.02, signed=True) == "+2.0%" and percent(-0.02, signed=True) == "-2.0%"
    assert points(0.012) == "+1.2 pt" and points(-0.05, 0) == "-5 pt"
    assert points(0) == "+0.0 pt"


@pytest.mark.parametrize("bad", ["0.5", [0.1], np.array([0.1, 0.2]), object()])
def test_percent_refuses_what_is_not_a_number(bad):
    with pytest.raises(TypeError, match=r"percent\(\) formats a number"):
        percent(bad)


@pytest.mark.parametrize("digits", [-1, 1.5, "1", True])
def test_percent_checks_digits(digits):
    with pytest.raises(ValueError, match="The 'digits' parameter of percent must be an int"):
        percent(0.1, digits)


def test_no_widget_formats_percentages_by_hand():
    """Every percentage in the widgets goes through ``percent``/``points``."""
    pattern = re.compile(r"100 \* |:\.\d%|def _pct")
    offenders = [f"{p.name}:{n}" for p in sorted(WIDGETS.glob("*.py"))
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) and "tickformat" not in line and "%{" not in line]
    assert offenders == []


def test_widgets_show_a_missing_rate_as_a_dash(tiny_project):
    """A slice whose error rate interval is undefined reads '–', as in the other widgets."""
    from workbench.widgets.slice_table import SliceTable

    table = SliceTable(tiny_project, column="site")
    table.frame.loc[0, "ci_low"] = math.nan
    table._render()
    assert "[–, " in table.rows[0].cells[2].value
