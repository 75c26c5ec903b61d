"""VendorsAndGuidelines: vendor scorecards and labeling guidelines, in one curator board."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..selection import Selection
from ._adapters import StatusMixin, esc, fiftyone_button, guarded
from .gallery import ItemGallery
from .guideline_panel import GuidelinePanel
from .qc_round_view import QcRoundView
from .scorecard_table import ScorecardTable
from .tag_panel import TagPanel

__all__ = ["VendorsAndGuidelines"]


class _SelectionBoard:
    """What a tabbed dashboard shows below its tabs.

    The selection's status line with a clear button, the ``TagPanel`` and FiftyOne button,
    and the ``ItemGallery``. Shared by :class:`VendorsAndGuidelines` and
    :class:`~workbench.widgets.data_explorer.DataExplorer`: a board sets ``project`` and
    ``selection``, calls :meth:`_make_header`, then :meth:`_build_and_link`, whose
    ``_build`` makes ``tabs`` and calls :meth:`_lay_out`; ``_EMPTY_STATUS`` is its status
    text without a selection.
    """

    _EMPTY_STATUS = "No selection."

    def _make_header(self, title: str, css_class: str) -> None:
        """The status line (``wb-status``) and the header ``title: <project name>``."""
        self.status = w.HTML("")
        self.status.add_class("wb-status")
        name = esc(getattr(self.project, "name", "") or "")
        self.header = w.HTML(f"<h3 style='margin:4px 0'>{esc(title)}: {name}</h3>")
        self.header.add_class(css_class)

    def _build_and_link(self) -> None:
        """Build the board (``_build``), follow the selection, mark it ``wb-ready``.

        A build error is shown in the board, then raised.
        """
        try:
            self._build()
        except Exception as exc:  # a broken board says why instead of a blank page
            self.show_error(exc)
            raise
        self.selection.observe(self._on_selection, names=["ids"])
        self._update_status()
        self.add_class("wb-ready")

    def _lay_out(self, context: dict) -> None:
        """Gallery, tag panel (with ``context``), FiftyOne and clear buttons under the tabs."""
        project, sel = self.project, self.selection
        self.gallery = ItemGallery(project, sel)
        self.tag_panel = TagPanel(project, sel, context=context)
        self.fiftyone_button, why = fiftyone_button(project, sel)
        if why:
            self.header.value += f"<div style='color:#a60'>{esc(why)}</div>"
        self.clear_button = w.Button(description="clear selection")
        self.clear_button.add_class("wb-clear-selection")
        self.clear_button.on_click(self._on_clear)
        side = [x for x in (self.tag_panel, self.fiftyone_button) if x is not None]
        actions = w.HBox(side, layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                               grid_gap="4px 32px"))
        actions.add_class("wb-actions")
        self.children = [self.error_box, self.header, self.tabs,
                         w.HBox([self.status, self.clear_button],
                                layout=w.Layout(align_items="center", grid_gap="12px")),
                         actions, self.gallery]

    @guarded
    def _on_clear(self, _button) -> None:
        self.selection.clear(origin=self)

    @guarded
    def _on_selection(self, change) -> None:
        self._update_status()

    def _update_status(self) -> None:
        sel = self.selection
        if sel.ids is None:
            text = self._EMPTY_STATUS
        else:
            what = f": {esc(sel.description)}" if sel.description else ""
            n = len(sel.ids)
            text = f"{n:,} item{'' if n == 1 else 's'} selected{what}"
        self.status.value = f"<span>{text}</span>"


class VendorsAndGuidelines(_SelectionBoard, StatusMixin, w.VBox):
    """How good each vendor's labels are, and the guidelines for the classes they confuse.

    Composes a :class:`~workbench.widgets.scorecard_table.ScorecardTable` (vendor
    scorecards; a row selects that vendor's items of that batch), a
    :class:`~workbench.widgets.guideline_panel.GuidelinePanel` (confused class pairs; a pair
    shows its current guideline, history and effect, and a curator revises it with examples
    picked in the gallery) and a :class:`~workbench.widgets.qc_round_view.QcRoundView` (QC
    rounds; a round shows its report with pass/fail, a report row selects its items),
    linked by one :class:`~workbench.selection.Selection` to the ``ItemGallery`` and the
    ``TagPanel`` below.

    Parameters
    ----------
    project : Project
        A classification project with annotations (a ``vendor`` column for the scorecard).
    selection : Selection, default=None
        The shared selection; a new one when None.

    Attributes
    ----------
    scorecard : ScorecardTable
    guidelines : GuidelinePanel
    qc_rounds : QcRoundView
    gallery : ItemGallery
    tag_panel : TagPanel
    status : ipywidgets.HTML
        The status line (CSS class ``wb-status``).
    """

    _EMPTY_STATUS = "No selection: click a scorecard row or a confused pair."

    def __init__(self, project: Any, selection: Selection | None = None):
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self._make_header("Vendors and guidelines", "wb-vendors-header")
        super().__init__([self._make_error_box(), self.header, self.status])
        self.add_class("wb-vendors-guidelines")
        self._build_and_link()

    def _build(self) -> None:
        project, sel = self.project, self.selection
        self.scorecard = ScorecardTable(project, sel)
        self.guidelines = GuidelinePanel(project, sel)
        self.qc_rounds = QcRoundView(project, sel, store=self.guidelines.guidelines.store)
        self.tabs = w.Tab(children=[self.scorecard, self.guidelines, self.qc_rounds])
        for i, title in enumerate(["Vendor scorecards", "Guidelines", "QC rounds"]):
            self.tabs.set_title(i, title)
        self.tabs.add_class("wb-vendors-tabs")
        self._lay_out({"dashboard": "vendors_guidelines"})

    def __repr__(self) -> str:
        return f"VendorsAndGuidelines({self.project!r}, {self.selection!r})"
