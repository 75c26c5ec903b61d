"""The agreement-by-slice tab and the selection tools shared by the disagreement explorers.

:class:`AgreementBySliceMixin` holds what :class:`~workbench.widgets.DisagreementExplorer`
(class labels) and :class:`~workbench.widgets.detection_disagreement.DetectionDisagreementExplorer`
(boxes) have in common: a metadata-column picker, a caption, a paged table of
:func:`workbench.agreement_by` whose rows select the slice's disagreements, the status line
and the "clear selection" button. The explorer supplies the metric columns, the table, the
row content and what a row selects.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd

from ..selection import Selection
from ._adapters import RowGrid, esc, fiftyone_button, guarded
from .tag_panel import TagPanel

__all__ = ["AgreementBySliceMixin", "mark_lowest"]


def mark_lowest(text: str, lowest: bool) -> str:
    """``text`` in bold red when ``lowest`` (the slice to look at first), else as is."""
    return f"<b style='color:#b00020'>{text}</b>" if lowest else text


class AgreementBySliceMixin:
    """Agreement per slice, status line and "clear selection" for an explorer board.

    The explorer (a ``StatusMixin, ipywidgets.VBox`` with ``_build(run, slice_by)`` and
    ``_header_html``) calls :meth:`_start_board` and :meth:`_finish_board` in its
    ``__init__``, sets the class attributes, implements the four hooks below, and calls
    :meth:`_build_slices`, :meth:`_build_tabs` (with its ``matrix``, ``annotators``,
    ``pairs`` and ``issues`` built) and :meth:`_selection_tools` in its build.

    Class attributes
    ----------------
    _SLICE_HEADERS : list of str
        Column titles of the table (the first one is replaced by the column picked).
    _SLICE_WIDTHS : str
        CSS ``grid-template-columns`` of the table.
    _SLICE_METRIC : str
        Column of the :func:`workbench.agreement_by` table whose lowest value is marked.
    _SLICE_EMPTY : str
        Caption (HTML) when there is no table to show.
    _IDLE_STATUS, _NOUN, _COUNT_BOXES : str, str, bool
        Status line without a selection, what an item is called, whether selected boxes
        are counted.

    Hooks
    -----
    _slice_agreement(col) -> DataFrame or None
        The agreement table per value of ``col`` (None: nothing to show; an exception:
        its message is shown).
    _slice_caption(col, worst) -> str
        Caption (HTML) of the table; ``worst`` is the row with the lowest metric or None.
    _slice_row_content(row, col, lowest) -> (label, tooltip, cells)
        One row of the table; ``lowest``: the row holds the lowest metric.
    _slice_selection(k) -> (ids, select keyword arguments, description)
        What a click on row ``k`` selects.
    """

    _SLICE_EMPTY = "<i>Nothing to show.</i>"
    _IDLE_STATUS = "No selection."
    _NOUN = "item"
    _COUNT_BOXES = False

    # ---- build ------------------------------------------------------------------------
    def _start_board(self, project: Any, selection: Selection | None) -> None:
        """Set the project and selection and show the header and status (before the build)."""
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.notes: list[str] = []
        self.status = w.HTML("")
        self.status.add_class("wb-status")
        self.header = w.HTML("")
        self.header.add_class("wb-agreement-summary")
        super().__init__([self._make_error_box(), self.header, self.status])
        self.add_class("wb-disagreement-explorer")

    def _finish_board(self, run: str | None, slice_by: str | None, *,
                      observe: list[str]) -> None:
        """Build the board, then follow the selection's ``observe`` traits.

        A build (``_build(run, slice_by)``) that raises is shown in the error box and
        re-raised.
        """
        try:
            self._build(run, slice_by)
        except Exception as exc:  # a broken board says why instead of a blank page
            self.show_error(exc)
            raise
        self.selection.observe(self._on_selection, names=observe)
        self._update_status()
        self.add_class("wb-ready")

    def _build_slices(self, default: str | None) -> None:
        """Create the picker, the caption and the table; ``default``: the column shown."""
        self.slice_picker = w.Dropdown(description="agreement by",
                                       options=list(self.project.metadata_columns),
                                       style={"description_width": "initial"},
                                       layout=w.Layout(width="300px"))
        self.slice_picker.add_class("wb-agreement-by")
        self.slice_table = self.slice_caption = w.HTML("")
        self.slice_table.add_class("wb-agreement-by-table")
        self.slice_frame = pd.DataFrame()
        self.slice_page = 0
        self._slice_selected: int | None = None  # row of slice_frame whose items are selected
        self.slice_rows = RowGrid(self._SLICE_HEADERS, 15, self._on_slice_row,
                                  self._go_slices, prefix="agreement-by",
                                  columns=self._SLICE_WIDTHS)
        self.slice_grid = self.slice_rows.grid
        if default is not None:
            self.slice_picker.value = default
        self.slice_picker.observe(self._on_slice_by, names=["value"])
        self._render_slices()

    def _build_tabs(self, titles: list[str]) -> w.Tab:
        """The board's tabs: matrix and annotators, pairs, issues, agreement by slice."""
        tabs = w.Tab(children=[
            w.HBox([self.matrix, self.annotators],
                   layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                   grid_gap="8px 24px")),
            self.pairs,
            self.issues,
            w.VBox([self.slice_picker, self.slice_table, self.slice_grid,
                    self.slice_rows.pager]),
        ])
        for i, title in enumerate(titles):
            tabs.set_title(i, title)
        tabs.add_class("wb-disagreement-tabs")
        return tabs

    def _selection_tools(self) -> tuple[w.HBox, w.HBox]:
        """``(status and clear button, actions)``: tag panel and FiftyOne button row."""
        self.tag_panel = TagPanel(self.project, self.selection,
                                  context={"dashboard": "disagreements"})
        self.fiftyone_button, why = fiftyone_button(self.project, self.selection)
        if why:
            self.notes.append(why)
            self.header.value = self._header_html()
        side = [x for x in (self.tag_panel, self.fiftyone_button) if x is not None]
        self.clear_button = w.Button(description="clear selection")
        self.clear_button.add_class("wb-clear-selection")
        self.clear_button.on_click(self._on_clear)
        # what to do with the selection (tag it, open it in FiftyOne) sits side by side above
        # the gallery, so the items stay in view at 1280 px
        actions = w.HBox(side, layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                               grid_gap="4px 32px"))
        actions.add_class("wb-actions")
        status_row = w.HBox([self.status, self.clear_button],
                            layout=w.Layout(align_items="center", grid_gap="12px"))
        return status_row, actions

    # ---- agreement by slice -----------------------------------------------------------
    def _render_slices(self) -> None:
        col = self.slice_picker.value
        self.slice_frame = pd.DataFrame()
        self.slice_page, self._slice_selected = 0, None
        table, message = None, self._SLICE_EMPTY
        if col:
            try:
                table = self._slice_agreement(col)
            except Exception as exc:  # e.g. no item with two labels in any slice
                message = f"<i>{esc(exc)}</i>"
        if table is not None:
            self.slice_frame = table.reset_index(drop=True)
            metric, worst = self.slice_frame[self._SLICE_METRIC], None
            if len(metric) > 1 and metric.notna().any():
                worst = self.slice_frame.loc[metric.idxmin()]
            message = self._slice_caption(col, worst)
            self.slice_rows.headers[0].value = f"<b>{esc(col)}</b>"
        self.slice_table.value = message
        self._render_slice_rows()

    def _render_slice_rows(self) -> None:
        """Write the page of the agreement-by-slice table into the row pool."""
        table, col = self.slice_frame, self.slice_picker.value
        low = table[self._SLICE_METRIC].min() if len(table) > 1 else None

        def content(i: int) -> tuple[str, str, list[str]]:
            row = table.iloc[i]
            return self._slice_row_content(row, col,
                                           low is not None and row[self._SLICE_METRIC] == low)

        self.slice_rows.render(self.slice_page, len(table), content,
                               selected=lambda i: i == self._slice_selected)

    @property
    def slice_buttons(self) -> list:
        """The value buttons of the agreement-by-slice page shown, in display order."""
        n = len(self.slice_frame) - self.slice_page * self.slice_rows.page_rows
        return [r.button for r in self.slice_rows.rows[:max(0, n)]]

    def _go_slices(self, page: int) -> None:
        page = RowGrid.clip(page, len(self.slice_frame), self.slice_rows.page_rows)
        if page != self.slice_page:
            self.slice_page = page
            self._render_slice_rows()

    @guarded
    def _on_slice_row(self, slot: int) -> None:
        i = self.slice_page * self.slice_rows.page_rows + slot
        if i < len(self.slice_frame):
            self.select_slice(i)

    def _slice_items(self, k: int) -> tuple[str, Any, set]:
        """``(column, value, item ids)`` of row ``k`` of the agreement-by-slice table."""
        col = self.slice_picker.value
        value = self.slice_frame.iloc[k][col]
        items = self.project.items
        return col, value, set(items.loc[items[col] == value, "item_id"].astype(str))

    def select_slice(self, k: int) -> list[str]:
        """Select the disagreements of row ``k`` of the agreement-by-slice table (a click).

        Returns the ids of the items selected: those of the slice where annotators
        disagree.
        """
        ids, extra, description = self._slice_selection(k)
        self.selection.select(ids, origin=self, description=description, **extra)
        self._slice_selected = int(k)
        self._render_slice_rows()
        return ids

    # ---- callbacks --------------------------------------------------------------------
    @guarded
    def _on_slice_by(self, change) -> None:
        self._render_slices()

    @guarded
    def _on_clear(self, _button) -> None:
        self.selection.clear(origin=self)

    @guarded
    def _on_selection(self, change) -> None:
        if (getattr(self, "_slice_selected", None) is not None
                and (self.selection.ids is None or self.selection.origin is not self)):
            self._slice_selected = None
            self._render_slice_rows()
        self._update_status()

    def _update_status(self) -> None:
        sel = self.selection
        if sel.ids is None:
            text = self._IDLE_STATUS
        else:
            n = len(sel.ids)
            count = f"{n:,} {self._NOUN}{'' if n == 1 else 's'}"
            if self._COUNT_BOXES and sel.box_ids is not None:
                count = f"{len(sel.box_ids):,} boxes on {count}"
            what = f": {esc(sel.description)}" if sel.description else ""
            src = f" (from {esc(sel.source)})" if sel.source else ""
            text = f"{count} selected{what}{src}"
        self.status.value = f"<span>{text}</span>"
