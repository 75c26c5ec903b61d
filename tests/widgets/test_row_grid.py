"""RowGrid: the one page-render loop of the paged tables."""

from __future__ import annotations

import re
from pathlib import Path

from workbench.widgets._adapters import RowGrid

WIDGETS = Path(__file__).resolve().parents[2] / "workbench" / "widgets"


def _grid(n_rows=3, clicks=None, pages=None):
    clicks = [] if clicks is None else clicks
    pages = [] if pages is None else pages
    return RowGrid(["name", "a", "b"], n_rows, clicks.append, pages.append, prefix="t",
                   columns="1fr 1fr 1fr")


def _content(i):
    return f"row {i}", f"tip {i}", [f"<b>{i}</b>", f"{i * i}"]


def _shown(grid):
    return [r.button.description for r in grid.rows if r.layout.display is None]


def test_render_fills_a_page_and_hides_the_rest():
    grid = _grid()
    grid.render(0, 7, _content, noun="things")
    assert _shown(grid) == ["row 0", "row 1", "row 2"]
    assert [c.value for c in grid.rows[1].cells] == ["<b>1</b>", "1"]
    assert grid.rows[2].button.tooltip == "tip 2"
    assert grid.page_label.value == "page 1 of 3 (7 things)"
    assert grid.prev_button.disabled and not grid.next_button.disabled
    grid.render(2, 7, _content, noun="things")
    assert _shown(grid) == ["row 6"]
    assert [r.layout.display for r in grid.rows[1:]] == ["none", "none"]
    assert grid.page == 2 and grid.page_label.value == "page 3 of 3 (7 things)"
    assert not grid.prev_button.disabled and grid.next_button.disabled


def test_render_of_an_empty_table():
    grid = _grid()
    grid.render(0, 0, _content)
    assert _shown(grid) == [] and grid.page_label.value == "page 1 of 1"
    assert grid.prev_button.disabled and grid.next_button.disabled


def test_highlight_marks_the_selected_rows_of_the_page():
    grid = _grid()
    grid.render(1, 7, _content, selected=lambda i: i == 4)
    assert [r.button.button_style for r in grid.rows] == ["", "info", ""]
    grid.highlight(lambda i: i in (3, 5))
    assert [r.button.button_style for r in grid.rows] == ["info", "", "info"]
    grid.highlight(None)
    assert [r.button.button_style for r in grid.rows] == ["", "", ""]
    # rows past the end of the table are never asked about
    asked = []
    grid.render(2, 7, _content, selected=lambda i: asked.append(i) or True)
    assert asked == [6] and grid.rows[0].button.button_style == "info"


def test_row_and_pager_clicks_reach_the_callbacks():
    clicks, pages = [], []
    grid = _grid(clicks=clicks, pages=pages)
    grid.render(1, 7, _content)
    grid.rows[2].button.click()
    grid.next_button.click()
    grid.prev_button.click()
    assert clicks == [2] and pages == [2, 0]


def test_the_tables_use_the_one_render_loop():
    """No widget writes its rows' cells itself (the loop lives in RowGrid.render)."""
    pattern = re.compile(r"\.cells\b|\.show\((True|False|i )")
    offenders = [f"{p.name}:{n}" for p in sorted(WIDGETS.glob("*.py")) if p.name != "_adapters.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_the_cells_of_a_grid_share_one_public_html_style():
    import ipywidgets as w

    grid = _grid()
    styles = {id(c.style) for r in grid.rows for c in r.cells}
    assert len(styles) == 1
    style = grid.rows[0].cells[0].style
    assert isinstance(style, type(w.HTML().style)) and style.comm is not None
