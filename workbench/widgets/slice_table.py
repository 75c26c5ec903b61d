"""SliceTable: error metrics per slice of a metadata column (or discovered slices); rows select."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .. import results
from .._format import MISSING, percent
from .._validation import check_int
from ..selection import Selection
from ..slicing import _default_features, _encode
from ._adapters import RowGrid, StatusMixin, errors_from, esc, guarded, ids_where

__all__ = ["SliceTable"]

#: (label, (column, ascending))
SORT_OPTIONS = [
    ("worst error rate", ("error_rate", False)),
    ("most items", ("n", False)),
    ("most errors", ("errors", False)),
    ("highest lift", ("lift", False)),
    ("most significant", ("q_value", True)),
    ("value", ("bin", True)),
    ("score (discovered)", ("score", False)),
]
_HEADERS = ["slice", "n", "errors", "error rate (95% CI)", "lift", "q-value"]


def _num(x: float, fmt: str = "{:.2f}") -> str:
    return MISSING if x is None or pd.isna(x) else fmt.format(x)


class SliceTable(StatusMixin, w.VBox):
    """Error rate per slice, sortable and paginated; clicking a row selects its items.

    Parameters
    ----------
    project_or_errors : Project or DataFrame
        A project (its errors for ``run``) or an errors frame.
    selection : Selection, default=None
        The shared selection; a new one when None.
    column : str, default=None
        The metadata column shown first (None: the first one).
    run : str, default=None
        The run when a project is given.
    discovered : bool, default=False
        Start with the automatically discovered slices
        (:func:`workbench.discover_slices`) instead of one column's values.
    page_size : int, default=12
        Rows per page (a fixed pool of row widgets is reused).
    bins : int, default=4
        Quantile bins for numeric columns.

    Attributes
    ----------
    frame : DataFrame
        The rows in display order (metrics of :func:`workbench.slice_metrics` or
        discovered slices).
    selected_row : int or None
        Position in ``frame`` of the row that made the current selection.
    """

    column = traitlets.Unicode(None, allow_none=True)
    discovered = traitlets.Bool(False)
    sort = traitlets.Tuple(("error_rate", False))
    page = traitlets.Int(0)
    selected_row = traitlets.Int(None, allow_none=True)
    #: The bad-outcome column counted (a subclass may count another, e.g. ``is_fn``).
    target = "is_error"

    def __init__(self, project_or_errors: Any, selection: Selection | None = None, *,
                 column: str | None = None, run: str | None = None, discovered: bool = False,
                 page_size: int = 12, bins: int | None = 4):
        self.project, errors = errors_from(project_or_errors, run)
        self.selection = selection if selection is not None else Selection()
        self.page_size = check_int(page_size, "page_size", "SliceTable", minimum=1)
        self.bins = bins
        self._ready = False
        self.column_picker = w.Dropdown(description="column", layout=w.Layout(width="220px"))
        self.column_picker.add_class("wb-slice-column")
        self.sort_picker = w.Dropdown(options=SORT_OPTIONS, value=SORT_OPTIONS[0][1],
                                      description="sort by", layout=w.Layout(width="230px"))
        self.sort_picker.add_class("wb-slice-sort")
        self.discovered_toggle = w.ToggleButton(
            value=discovered, description="discovered",
            tooltip="Show the worst slices found automatically (up to 2 conditions)")
        self.discovered_toggle.add_class("wb-slice-discovered")
        self.summary = w.HTML("")
        self.summary.add_class("wb-slice-summary")
        self.table = RowGrid(
            _HEADERS, self.page_size, self.select_row_on_page, self.go, prefix="slice",
            columns="minmax(120px, 2fr) 55px 55px minmax(160px, 1.6fr) 45px 70px")
        self.rows, self.grid = self.table.rows, self.table.grid
        self.prev_button, self.next_button = self.table.prev_button, self.table.next_button
        self.page_label = self.table.page_label
        super().__init__([
            w.HBox([self.column_picker, self.sort_picker, self.discovered_toggle],
                   layout=w.Layout(flex_flow="row wrap")),
            self._make_error_box(), self.summary, self.grid, self.table.pager,
        ])
        self.add_class("wb-slice-table")
        self._set_errors(errors, column)
        w.link((self.sort_picker, "value"), (self, "sort"))
        w.link((self.column_picker, "value"), (self, "column"))
        w.link((self.discovered_toggle, "value"), (self, "discovered"))
        self.selection.observe(self._on_selection, names=["ids"])
        self._ready = True
        self.refresh()

    # ---- state ------------------------------------------------------------------------

    def _set_errors(self, errors: pd.DataFrame, column: str | None = None) -> None:
        self.errors = errors
        self._encodings: dict = {}
        self._discovered_frame: pd.DataFrame | None = None
        self._ids = errors["item_id"]  # made str only where selected (ids_where)
        columns = _default_features(errors, self.target)
        self.columns = columns
        keep = column if column in columns else (
            self.column if self.column in columns else (columns[0] if columns else None))
        self.column_picker.options = columns
        self.column_picker.value = keep
        self.column = keep

    def set_errors(self, errors: pd.DataFrame) -> None:
        """Show another errors frame (for example after the run changed)."""
        ready, self._ready = self._ready, False
        self._set_errors(errors)
        self._ready = ready
        self.refresh()

    def _metrics(self) -> pd.DataFrame:
        if self.discovered:
            if self._discovered_frame is None:
                self._discovered_frame = results.discover_slices(self.errors, bins=self.bins,
                                                         target=self.target)
            frame = self._discovered_frame.copy()
            frame["bin"] = frame["slice"]
            return frame
        if self.column is None:
            return pd.DataFrame(columns=["column", "value", "bin", "n", "errors",
                                         "error_rate", "ci_low", "ci_high", "lift", "q_value"])
        frame = results.slice_metrics(self.errors, self.column, bins=self.bins,
                                      target=self.target).copy()  # shared: do not modify
        frame["_code"] = np.arange(len(frame))
        return frame

    def refresh(self) -> None:
        """Recompute the rows (column, mode or errors changed) and show the first page."""
        self.frame = self._sorted(self._metrics())
        self.selected_row = None
        self.page = 0
        self._render()

    def _sorted(self, frame: pd.DataFrame) -> pd.DataFrame:
        col, ascending = self.sort
        if col not in frame.columns:
            return frame.reset_index(drop=True)
        key = frame[col].astype(str) if col == "bin" else frame[col]
        order = np.argsort(key.to_numpy(), kind="stable")
        if not ascending:
            order = order[::-1] if col == "bin" else np.argsort(-key.to_numpy(dtype=float),
                                                                kind="stable")
        return frame.iloc[order].reset_index(drop=True)

    @traitlets.observe("column", "discovered")
    def _on_source(self, change) -> None:
        if change["name"] == "discovered":
            # discovered slices rank by score; metric rows by error rate
            ready, self._ready = self._ready, False
            if change["new"] and self.sort[0] == "error_rate":
                self.sort = ("score", False)
            elif not change["new"] and self.sort[0] == "score":
                self.sort = ("error_rate", False)
            self._ready = ready
        if self._ready:
            self._safe(self.refresh)

    @traitlets.observe("sort")
    def _on_sort(self, change) -> None:
        if self._ready:
            self._safe(self._resort)

    def _resort(self) -> None:
        self.frame = self._sorted(self.frame)
        self.selected_row = None
        self.page = 0
        self._render()

    def go(self, page: int) -> None:
        """Show ``page`` (clipped)."""
        page = RowGrid.clip(page, len(self.frame), self.page_size)
        if page != self.page:
            self.page = page
            self._render()

    def items_of_row(self, i: int) -> list[str]:
        """Item ids of row ``i`` of :attr:`frame`."""
        row = self.frame.iloc[int(i)]
        if self.discovered:
            return list(row["item_ids"])
        col = row["column"]
        if col not in self._encodings:
            self._encodings[col] = _encode(self.errors[col], self.bins)
        enc = self._encodings[col]
        return ids_where(self._ids, enc.codes == int(row["_code"]))

    def describe_row(self, i: int) -> str:
        """Readable name of row ``i`` (``"scanner=C"``)."""
        row = self.frame.iloc[int(i)]
        return str(row["slice"]) if self.discovered else f"{row['column']}={row['bin']}"

    def select_row(self, i: int) -> list[str]:
        """Select the items of row ``i`` of :attr:`frame` (what a click does)."""
        ids = self.items_of_row(i)
        self.selected_row = int(i)
        self.selection.select(ids, origin=self, description=self.describe_row(i))
        self._render_highlight()
        return ids

    @guarded
    def select_row_on_page(self, k: int) -> None:
        """Click handler of the ``k``-th row widget of the current page."""
        i = self.page * self.page_size + k
        if i < len(self.frame):
            self.select_row(i)

    @guarded
    def _on_selection(self, change) -> None:
        if self.selection.origin is not self and self.selected_row is not None:
            self.selected_row = None
            self._render_highlight()

    # ---- view -------------------------------------------------------------------------

    def _is_selected(self, i: int) -> bool:
        return i == self.selected_row

    def _render_highlight(self) -> None:
        self.table.highlight(self._is_selected)

    def _row_content(self, i: int, overall: float) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of row ``i`` of :attr:`frame`."""
        row = self.frame.iloc[i]
        label = self.describe_row(i) if self.discovered else str(row["bin"])
        ci = (f" <span style='color:#777'>[{percent(row['ci_low'])}, "
              f"{percent(row['ci_high'])}]</span>")
        q = row.get("q_value", np.nan)
        sig = " *" if not pd.isna(q) and q <= 0.05 and row["error_rate"] > overall else ""
        return label, label, [f"{int(row['n']):,}", f"{row['errors']:,.0f}",
                              f"<b>{percent(row['error_rate'])}</b>{ci}", _num(row["lift"]),
                              f"{_num(q, '{:.2g}')}{sig}"]

    def _render(self) -> None:
        overall = self._overall()
        self.table.render(self.page, len(self.frame), lambda i: self._row_content(i, overall),
                          selected=self._is_selected, noun="slices")
        what = ("discovered slices (up to 2 conditions, FDR 5%)" if self.discovered
                else f"slices of <b>{esc(self.column)}</b>")
        self.summary.value = (
            f"{what}; overall error rate {percent(overall)} over {len(self.errors):,} items. "
            "<span style='color:#555'><i>lift</i>: the slice's error rate divided by the "
            "overall one; <i>q-value</i>: how likely a gap this large is chance, corrected "
            "for the number of slices tried (Benjamini-Hochberg); * = worse than the rest "
            "beyond chance (q &le; 0.05).</span>")

    def _overall(self) -> float:
        if len(self.errors) == 0:
            return float("nan")
        return float(1 - self.errors["correct"].to_numpy(dtype=bool).mean())

    def __repr__(self) -> str:
        mode = "discovered" if self.discovered else f"column={self.column!r}"
        return f"SliceTable({mode}, {len(self.frame)} rows, selected_row={self.selected_row})"
