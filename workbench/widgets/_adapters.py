"""Adapters between browser payloads and workbench state, and small shared widget helpers.

An adapter is a one-line translation (plotly ``Points.point_inds`` -> item ids or a cell);
keeping them here makes them testable without a browser.
"""

from __future__ import annotations

import functools
import html
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import traitlets

from ._plotly_adapter import sync_figure_state  # re-exported: plotly internals live there

__all__ = [
    "point_indices",
    "points_to_ids",
    "ids_where",
    "grid_point_to_cell",
    "errors_from",
    "StatusMixin",
    "guarded",
    "esc",
    "plot_text",
    "sync_figure_state",
    "square_axes",
    "RowGrid",
    "fiftyone_button",
    "shared_html_style",
]


def esc(value: Any, *, quote: bool = True) -> str:
    """HTML-escape any value for display (``None``/NA shown as an empty string).

    ``quote=False`` leaves quotes alone (text content, never an attribute value).
    """
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return html.escape(str(value), quote=quote)


def plot_text(value: Any) -> str:
    """Text for plotly (tick labels, hover, cell text) that shows as typed.

    Plotly interprets a subset of HTML in text (``<b>``, ``<i>``, ``<br>``, ``<a>``...), so
    an annotator called ``<b>x</b>`` would be shown as a bold "x". Escaping ``< > &`` makes
    plotly show the literal name (it decodes those entities back); quotes are left as they
    are, because plotly does not decode ``&quot;`` and would show it literally.

    Examples
    --------
    >>> plot_text('<b>12" pipe</b>')
    '&lt;b&gt;12" pipe&lt;/b&gt;'
    """
    return esc(value, quote=False)


def square_axes(k: int) -> dict:
    """Layout of a k x k category heatmap: axes fit the cells exactly (row 0 at the top).

    Without explicit ranges the transparent click-grid markers make plotly pad the axes,
    which leaves an empty band around the heatmap.
    """
    if k <= 0:
        return {"xaxis": {"autorange": True}, "yaxis": {"autorange": "reversed"}}
    return {"xaxis": {"range": [-0.5, k - 0.5], "autorange": False},
            "yaxis": {"range": [k - 0.5, -0.5], "autorange": False}}


def point_indices(points: Any) -> list[int]:
    """The ``point_inds`` of a plotly ``Points`` (or anything with that attribute / a list)."""
    if points is None:
        return []
    inds = getattr(points, "point_inds", points)
    return [int(i) for i in inds]


def points_to_ids(points: Any, ids: Sequence[str]) -> list[str]:
    """Translate the point indices of a plotly callback into item ids (``ids[i]``)."""
    return [str(ids[i]) for i in point_indices(points) if 0 <= i < len(ids)]


def ids_where(ids: pd.Series, mask: Any) -> list[str]:
    """The item ids of ``ids`` where ``mask`` holds, as str.

    Only those ids become Python strings: a widget keeps its frame's ``item_id`` column as
    it is (Arrow strings) instead of 10M Python strings made up front.

    Parameters
    ----------
    ids : Series
        An ``item_id`` column.
    mask : ndarray of bool
        One value per row.

    Returns
    -------
    list of str
    """
    picked = ids.array[mask] if isinstance(ids.dtype, pd.StringDtype) else \
        ids.to_numpy()[mask]
    return [str(i) for i in picked]


def grid_point_to_cell(points: Any, classes: Sequence[str]) -> tuple[str, str] | None:
    """Translate a click on the confusion matrix's scatter grid into ``(true, predicted)``.

    The grid has one point per cell in row-major order: point ``i`` is row ``i // k``
    (true class) and column ``i % k`` (predicted class), ``k = len(classes)``. A click on
    the heatmap trace itself (``point_inds == [[row, column]]``) is understood too.
    """
    k = len(classes)
    raw = list(getattr(points, "point_inds", points) or [])
    if not raw or k == 0:
        return None
    first = raw[0]
    if isinstance(first, (list, tuple)) and len(first) == 2:
        # a click on the heatmap itself: plotly gives [row, column]
        r, c = int(first[0]), int(first[1])
        if 0 <= r < k and 0 <= c < k:
            return str(classes[r]), str(classes[c])
        return None
    i = int(first)
    if not 0 <= i < k * k:
        return None
    return str(classes[i // k]), str(classes[i % k])


def errors_from(project_or_errors: Any, run: str | None = None) -> tuple[Any, pd.DataFrame]:
    """``(project or None, errors frame)`` from a Project or an errors DataFrame."""
    if isinstance(project_or_errors, pd.DataFrame):
        return None, project_or_errors
    if hasattr(project_or_errors, "errors") and hasattr(project_or_errors, "items"):
        if getattr(project_or_errors, "task", "classification") == "detection":
            return project_or_errors, project_or_errors.errors(run)  # raises its message
        from .. import results

        return project_or_errors, results.errors(project_or_errors, run)
    raise TypeError(
        "Expected a workbench Project or an errors DataFrame (Project.errors()). "
        f"Got {type(project_or_errors).__name__} instead.")


def fiftyone_button(project: Any, selection: Any) -> tuple[Any, str | None]:
    """``(FiftyOneButton, None)``, or ``(None, note)`` when FiftyOne is not installed.

    The button imports FiftyOne only when it is clicked, so it could be built anyway; without
    FiftyOne every click would fail, so the explorers show the note (naming the extra to
    install) instead. Any other error building the button is raised, not turned into a note.
    """
    from ..fiftyone_bridge import INSTALL_COMMAND, _fiftyone_installed

    if not _fiftyone_installed():
        return None, ("FiftyOne is not installed, so the selection cannot be opened in the "
                      f"FiftyOne App. Install it with: {INSTALL_COMMAND}")
    from .fiftyone_button import FiftyOneButton

    return FiftyOneButton(project, selection), None


class PagedFrameMixin(traitlets.HasTraits):
    """Pages of a list widget's ``frame``, ``page_size`` rows each (a mixin).

    The widget sets ``frame`` and ``page_size`` and defines ``_render``; it gets the trait
    ``page``, :attr:`n_pages`, :meth:`go` and a render whenever ``page`` changes.
    """

    page = traitlets.Int(0)
    frame: Any
    page_size: int

    @property
    def n_pages(self) -> int:
        """Number of pages (at least 1)."""
        return RowGrid.n_pages(len(self.frame), self.page_size)

    def go(self, page: int) -> None:
        """Show page ``page`` (clipped to the valid range)."""
        self.page = RowGrid.clip(page, len(self.frame), self.page_size)

    @traitlets.observe("page")
    def _on_page(self, change) -> None:
        if getattr(self, "frame", None) is not None:
            self._render()


class StatusMixin:
    """Gives a widget a visible error banner (``self.error_box``, class ``wb-error``)."""

    error_box: Any

    def _make_error_box(self):
        import ipywidgets as w

        self.error_box = w.HTML("", layout=w.Layout(display="none"))
        self.error_box.add_class("wb-error")
        return self.error_box

    def show_error(self, exc: BaseException) -> None:
        """Show an exception raised in a callback (Jupyter would swallow it)."""
        text = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc(limit=3)
        self.error_box.value = (
            f"<div style='color:#b00020'><b>Error:</b> {esc(text)}"
            f"<details><summary>details</summary><pre>{esc(tb)}</pre></details></div>")
        self.error_box.layout.display = None

    def clear_error(self) -> None:
        """Hide the error banner."""
        if getattr(self, "error_box", None) is not None and self.error_box.value:
            self.error_box.value = ""
            self.error_box.layout.display = "none"

    def _safe(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()``; show its exception in the banner instead of raising it."""
        try:
            fn()
            self.clear_error()
        except Exception as exc:  # shown to the user, never swallowed
            self.show_error(exc)


def guarded(method: Callable) -> Callable:
    """Decorator for callbacks: exceptions go to the widget's error banner, not the void.

    Only the outermost guarded call of a widget shows or clears its banner: a guarded method
    called by another (a key press calling ``next``) passes its error up, so the caller's
    success cannot clear the error the inner call raised.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        depth = getattr(self, "_guarded_depth", 0)
        self._guarded_depth = depth + 1
        try:
            out = method(self, *args, **kwargs)
        except Exception as exc:  # shown to the user, never swallowed
            if depth or getattr(self, "error_box", None) is None:
                raise
            self.show_error(exc)
            if getattr(self, "raise_errors", False):
                raise
            return None
        finally:
            self._guarded_depth = depth
        if not depth:
            self.clear_error()
        return out

    return wrapper


def shared_html_style() -> Any:
    """One style model for many ``ipywidgets.HTML`` (public API: a probe widget's ``style``).

    ipywidgets does not export the ``HTMLStyle`` class, but every ``HTML`` widget has one
    and accepts an existing one as ``style=``: sharing it makes a page of cells one style
    model instead of one per cell. The probe is closed; its style stays open.
    """
    import ipywidgets as w

    probe = w.HTML()
    style = probe.style
    probe.close()
    return style


class _Row:
    """One row of a :class:`RowGrid`: a button (the first column) and HTML cells.

    The row's widgets share one ``Layout`` (showing or hiding the row is one state update)
    and the grid's cells share one style: a page of 15 rows x 5 columns is 90 widget models
    instead of 225, which the browser builds faster.
    """

    def __init__(self, slot: int, n_cells: int, on_click: Callable[[int], Any], prefix: str,
                 styles: tuple):
        import ipywidgets as w

        self.slot = slot
        self.layout = w.Layout(width="auto", justify_content="flex-start")
        button_style, html_style = styles
        self.button = w.Button(description="", layout=self.layout, style=button_style)
        self.button.add_class(f"wb-{prefix}-row")
        self.button.on_click(lambda _b: on_click(self.slot))
        self.cells = [w.HTML("", layout=self.layout, style=html_style) for _ in range(n_cells)]
        for c in self.cells:
            c.add_class(f"wb-{prefix}-cell")

    @property
    def widgets(self) -> list:
        return [self.button, *self.cells]

    def show(self, visible: bool) -> None:
        self.layout.display = None if visible else "none"


class RowGrid:
    """A paginated table: a fixed pool of clickable rows in a grid, and a pager.

    The widgets are made once; a page is shown by writing into them (no widget is created
    or destroyed when paging), so a page change is a handful of small state updates.

    Parameters
    ----------
    headers : sequence of str
        Column titles (HTML-escaped here); the first column holds the row's button.
    n_rows : int
        Rows per page.
    on_row : callable
        ``on_row(slot)`` when the button of row ``slot`` (0-based on the page) is clicked.
    on_page : callable
        ``on_page(page)`` when the pager asks for another page.
    prefix : str
        CSS class prefix: ``wb-{prefix}-grid``, ``-row``, ``-cell``, ``-prev``, ``-next``,
        ``-page``.
    columns : str
        The grid's ``grid_template_columns``.
    """

    def __init__(self, headers: Sequence[str], n_rows: int, on_row: Callable[[int], Any],
                 on_page: Callable[[int], Any], *, prefix: str, columns: str):
        import ipywidgets as w

        self.page = 0
        self.page_rows = n_rows
        self.n_items = 0
        styles = (w.ButtonStyle(), shared_html_style())
        self.rows = [_Row(i, len(headers) - 1, on_row, prefix, styles) for i in range(n_rows)]
        self.headers = [w.HTML(f"<b>{esc(h)}</b>") for h in headers]
        self.grid = w.GridBox(self.headers + [x for r in self.rows for x in r.widgets],
                              layout=w.Layout(grid_template_columns=columns,
                                              grid_gap="2px 8px", align_items="center"))
        self.grid.add_class(f"wb-{prefix}-grid")
        self.prev_button = w.Button(description="◀", layout=w.Layout(width="40px"))
        self.next_button = w.Button(description="▶", layout=w.Layout(width="40px"))
        self.prev_button.add_class(f"wb-{prefix}-prev")
        self.next_button.add_class(f"wb-{prefix}-next")
        self.page_label = w.HTML("")
        self.page_label.add_class(f"wb-{prefix}-page")
        self.prev_button.on_click(lambda _b: on_page(self.page - 1))
        self.next_button.on_click(lambda _b: on_page(self.page + 1))
        self.pager = w.HBox([self.prev_button, self.next_button, self.page_label])

    @staticmethod
    def n_pages(n_items: int, page_size: int) -> int:
        """Pages needed for ``n_items`` rows (at least 1)."""
        return max(1, -(-int(n_items) // int(page_size)))

    @classmethod
    def clip(cls, page: int, n_items: int, page_size: int) -> int:
        """``page`` clipped to the pages of ``n_items`` rows."""
        return min(max(int(page), 0), cls.n_pages(n_items, page_size) - 1)

    def show_pager(self, page: int, n_pages: int, label: str) -> None:
        """Record the page shown and update the pager's label and buttons."""
        self.page = page
        self.page_label.value = label
        self.prev_button.disabled = page <= 0
        self.next_button.disabled = page >= n_pages - 1

    def render(self, page: int, n_items: int, content: Callable[[int], tuple],
               *, selected: Callable[[int], bool] | None = None, noun: str = "") -> None:
        """Show page ``page`` of ``n_items`` rows: the one page-render loop of every table.

        Parameters
        ----------
        page : int
            The page to show (0-based; the caller clips it, see :meth:`clip`).
        n_items : int
            Rows of the whole table.
        content : callable
            ``content(i) -> (label, tooltip, cells)`` for row ``i`` of the table: the
            button's text and tooltip, and one HTML string per cell (already escaped).
        selected : callable, default=None
            ``selected(i) -> bool``: rows drawn as selected (see :meth:`highlight`).
        noun : str, default=""
            What a row is (``"slices"``): the pager then reads "page 2 of 5 (48 slices)".
        """
        self.n_items = int(n_items)
        start = page * self.page_rows
        for r in self.rows:
            i = start + r.slot
            if i >= n_items:
                r.show(False)
                continue
            label, tooltip, values = content(i)
            r.button.description = label
            r.button.tooltip = tooltip
            for cell, value in zip(r.cells, values, strict=True):
                cell.value = value
            r.show(True)
        n_pages = self.n_pages(n_items, self.page_rows)
        count = f" ({n_items:,} {noun})" if noun else ""
        self.show_pager(page, n_pages, f"page {page + 1} of {n_pages}{count}")
        self.highlight(selected)

    def highlight(self, selected: Callable[[int], bool] | None) -> None:
        """Draw the buttons of the rows ``selected(i)`` of the page shown as selected."""
        start = self.page * self.page_rows
        for r in self.rows:
            i = start + r.slot
            on = selected is not None and i < self.n_items and bool(selected(i))
            r.button.button_style = "info" if on else ""
