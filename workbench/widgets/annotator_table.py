"""AnnotatorTable: per-annotator quality; clicking an annotator selects their disagreements."""

from __future__ import annotations

import warnings
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from ..agreement import annotator_quality, disagreeing_items, disagreeing_items_by_annotator
from ..selection import Selection
from ._adapters import StatusMixin, esc, guarded
from .agreement_matrix import annotations_from

__all__ = ["AnnotatorTable"]

_HEADERS = ["annotator", "labels", "accuracy", "kappa", "worst class", "disagrees on"]


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or pd.isna(x):
        return "–"
    return f"{100 * x:.1f}%" if pct else f"{x:.2f}"


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

    Attributes
    ----------
    quality : DataFrame
        The :func:`workbench.annotator_quality` frame shown, plus ``n_disagreements``.
    annotator : str or None
        The annotator whose items are selected.
    buttons : list of ipywidgets.Button
        One per row, in display order (CSS class ``wb-annotator-row``).
    """

    annotator = traitlets.Unicode(None, allow_none=True)

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 reference=None):
        self.project, self.annotations = annotations_from(project_or_annotations)
        self.selection = selection if selection is not None else Selection()
        self.reference = reference
        self.caption = w.HTML("")
        self.caption.add_class("wb-annotator-caption")
        self.grid = w.GridBox([], layout=w.Layout(
            grid_template_columns="minmax(90px, 1fr) 55px 75px 50px 95px 105px",
            grid_gap="2px 8px", align_items="center"))
        self.grid.add_class("wb-annotator-grid")
        super().__init__([self._make_error_box(), self.caption, self.grid])
        self.add_class("wb-annotator-table")
        self.selection.observe(self._on_selection, names=["ids"])
        self._compute()
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
        self.selection.select(ids, source="AnnotatorTable",
                              description=f"{annotator} disagrees with another annotator")
        return ids

    @guarded
    def _on_button(self, button) -> None:
        """Adapter: a click on an annotator's button."""
        self.select_annotator(button.annotator_name)

    @guarded
    def _on_selection(self, change) -> None:
        if self.annotator is not None and self.selection.source != "AnnotatorTable":
            self.annotator = None

    @traitlets.observe("annotator")
    def _on_annotator(self, change) -> None:
        for b in getattr(self, "buttons", []):
            b.button_style = "info" if b.annotator_name == change["new"] else ""

    def _render(self) -> None:
        header = [w.HTML(f"<b>{h}</b>") for h in _HEADERS]
        cells: list = []
        self.buttons = []
        for row in self.quality.itertuples():
            b = w.Button(description=str(row.annotator), tooltip=(
                f"select the {row.n_disagreements} items where {row.annotator} disagrees "
                f"with another annotator"), layout=w.Layout(width="auto"))
            b.annotator_name = str(row.annotator)
            b.add_class("wb-annotator-row")
            b.on_click(self._on_button)
            self.buttons.append(b)
            worst = "" if pd.isna(row.worst_class) else (
                f"{esc(row.worst_class)} ({_fmt(row.worst_class_recall, pct=True)})")
            cells += [b, w.HTML(f"{row.n_labels}"), w.HTML(_fmt(row.accuracy, pct=True)),
                      w.HTML(_fmt(row.kappa)), w.HTML(worst),
                      w.HTML(f"{row.n_disagreements}")]
        self.grid.children = header + cells
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
