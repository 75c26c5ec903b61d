"""AnnotatorTable: per-annotator quality; clicking an annotator selects their disagreements."""

from __future__ import annotations

import warnings
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from .._format import MISSING, percent
from .._validation import check_int
from ..agreement import annotator_quality, disagreeing_items, disagreeing_items_by_annotator
from ..selection import Selection
from ._adapters import RowGrid, StatusMixin, esc, guarded
from .agreement_matrix import annotations_from

__all__ = ["AnnotatorTable"]

_HEADERS = ["annotator", "labels", "accuracy", "kappa", "worst class", "disagrees on"]


def _fmt(x: Any) -> str:
    return MISSING if x is None or pd.isna(x) else f"{x:.2f}"


class AnnotatorTable(StatusMixin, w.VBox):
    """One row per annotator (best first); clicking a name selects their disagreeing items.

    Scores come from :func:`workbench.annotator_quality` (by default each label against the
    leave-one-out majority of the other annotators of the item).

    Parameters
    ----------
    project_or_annotations : Project or DataFrame
        A project or a long annotations frame.
    selection : Selection, default=None
        The shared selection; a new one when None.
    reference : Series, DataFrame, str or None, default=None
        Passed to :func:`workbench.annotator_quality` (gold labels, ``'majority'``,
        ``'dawid_skene'`` or None).
    page_size : int, default=15
        Annotators per page (a crowd of hundreds is paged, not drawn at once).

    Attributes
    ----------
    quality : DataFrame
        The :func:`workbench.annotator_quality` frame shown, plus ``n_disagreements``.
    annotator : str or None
        The annotator whose items are selected.
    buttons : list of ipywidgets.Button
        One per annotator of the page shown, in display order (CSS class
        ``wb-annotator-row``).
    """

    annotator = traitlets.Unicode(None, allow_none=True)

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 reference=None, page_size: int = 15):
        self.project, self.annotations = annotations_from(project_or_annotations)
        self.selection = selection if selection is not None else Selection()
        self.reference = reference
        self.page_size = check_int(page_size, "page_size", "AnnotatorTable", minimum=1)
        self.page = 0
        self.caption = w.HTML("")
        self.caption.add_class("wb-annotator-caption")
        self._compute()
        # no more row widgets than annotators: six annotators are six rows
        self.table = RowGrid(_HEADERS, max(1, min(self.page_size, len(self.quality))),
                             self._on_row, self.go, prefix="annotator",
                             columns="minmax(90px, 1fr) 55px 75px 50px 95px 105px")
        self.grid = self.table.grid
        super().__init__([self._make_error_box(), self.caption, self.grid, self.table.pager])
        self.add_class("wb-annotator-table")
        self.selection.observe(self._on_selection, names=["ids"])
        self._render()

    def _compute(self) -> None:
        self._cache: dict[str, list[str]] = {}
        if len(self.annotations) == 0:
            self.quality = pd.DataFrame(columns=["annotator", "n_labels", "accuracy", "kappa",
                                                 "worst_class", "n_disagreements"])
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            q = annotator_quality(self.annotations, self.reference)
        self._warnings = [str(c.message) for c in caught]
        self._cache = disagreeing_items_by_annotator(self.annotations)
        q["n_disagreements"] = [len(self.items_of(a)) for a in q["annotator"]]
        self.quality = q

    def items_of(self, annotator: str) -> list[str]:
        """Items where ``annotator`` disagrees with at least one other annotator."""
        key = str(annotator)
        if key not in self._cache:
            self._cache[key] = disagreeing_items(self.annotations, key)
        return self._cache[key]

    def select_annotator(self, annotator: str) -> list[str]:
        """Select the items where ``annotator`` disagrees with others (what a click does)."""
        ids = self.items_of(annotator)
        self.annotator = str(annotator)
        self.selection.select(ids, origin=self,
                              description=f"{annotator} disagrees with another annotator")
        return ids

    @guarded
    def _on_row(self, slot: int) -> None:
        """Adapter: a click on the annotator button of row ``slot`` of the page."""
        i = self.page * self.page_size + slot
        if i < len(self.quality):
            self.select_annotator(self.quality["annotator"].iloc[i])

    def go(self, page: int) -> None:
        """Show page ``page`` of the annotators (clipped to the valid range)."""
        page = RowGrid.clip(page, len(self.quality), self.page_size)
        if page != self.page:
            self.page = page
            self._render_rows()

    @property
    def buttons(self) -> list:
        """The annotator buttons of the page shown, in display order."""
        n = len(self.quality) - self.page * self.page_size
        return [r.button for r in self.table.rows[:max(0, n)]]

    @guarded
    def _on_selection(self, change) -> None:
        if self.annotator is not None and self.selection.origin is not self:
            self.annotator = None

    @traitlets.observe("annotator")
    def _on_annotator(self, change) -> None:
        if hasattr(self, "table"):
            self._render_highlight()

    def _is_selected(self, i: int) -> bool:
        return str(self.quality["annotator"].iat[i]) == self.annotator

    def _render_highlight(self) -> None:
        self.table.highlight(self._is_selected)

    def _row_content(self, i: int) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of annotator ``i`` of :attr:`quality`."""
        row = self.quality.iloc[i]
        worst = "" if pd.isna(row["worst_class"]) else (
            f"{esc(row['worst_class'])} ({percent(row['worst_class_recall'])})")
        return (str(row["annotator"]),
                f"select the {row['n_disagreements']} items where {row['annotator']} "
                "disagrees with another annotator",
                [f"{row['n_labels']}", percent(row["accuracy"]), _fmt(row["kappa"]), worst,
                 f"{row['n_disagreements']}"])

    def _render_rows(self) -> None:
        self.table.render(self.page, len(self.quality), self._row_content,
                          selected=self._is_selected, noun="annotators")

    def _render(self) -> None:
        self._render_rows()
        ref = ("gold labels" if isinstance(self.reference, (pd.Series, pd.DataFrame)) else
               "the other annotators' majority" if self.reference is None else
               f"the {self.reference} consensus")
        notes = "".join(f"<br><span style='color:#a60'>{esc(m)}</span>"
                        for m in getattr(self, "_warnings", []))
        self.caption.value = (
            f"<span>How often each annotator agrees with {esc(ref)} (<i>accuracy</i>, and "
            "<i>kappa</i>: the same corrected for chance, 1 = perfect); <i>worst class</i> is "
            "the class they get right least often. Click an annotator to see the items where "
            f"they disagree with the others.</span>{notes}")

    def __repr__(self) -> str:
        return f"AnnotatorTable({len(self.quality)} annotators, annotator={self.annotator!r})"
