"""ConfusedPairs: class x class heatmap of the labels annotators swap; a click selects."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .._format import percent
from .._validation import check_option
from ..agreement import confused_pairs, confused_pairs_matrix
from ..selection import Selection
from ._adapters import StatusMixin, guarded
from .agreement_matrix import _ClickHeatmap, annotations_from

__all__ = ["ConfusedPairs"]


class ConfusedPairs(StatusMixin, _ClickHeatmap, w.VBox):
    """Which classes annotators confuse with each other; clicking a cell selects its items.

    Cell (a, b) counts the pairs of annotators who labelled the same item a and b (the
    matrix is symmetric; the diagonal is empty). These are the places where the labeling
    instructions need revising. A click selects the items behind the pair.

    Parameters
    ----------
    project_or_annotations : Project or DataFrame
        A project or a long annotations frame.
    selection : Selection, default=None
        The shared selection; a new one when None.
    value : {'n_pairs', 'n_items', 'rate'}, default='n_pairs'
        What the colours show (see :func:`workbench.confused_pairs`).
    top : int, default=5
        Number of most-confused pairs listed under the heatmap.

    Attributes
    ----------
    pairs : DataFrame
        :func:`workbench.confused_pairs` of the annotations.
    matrix : DataFrame
        The symmetric class x class matrix shown.
    cell : tuple of (str, str) or None
        The selected class pair.
    """

    cell = traitlets.Tuple(default_value=None, allow_none=True)
    value = traitlets.Unicode("n_pairs")

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 value: str = "n_pairs", top: int = 5):
        check_option(value, "value", "ConfusedPairs", ("n_pairs", "n_items", "rate"))
        self.project, self.annotations = annotations_from(project_or_annotations)
        self.selection = selection if selection is not None else Selection()
        self.top = top
        self._labels: list[str] = []
        self.figure = self._make_figure(
            xtitle="label given by one annotator", ytitle="label given by another",
            colorscale="Oranges", hover="%{y} vs %{x}<br>%{customdata}")
        self.value_picker = w.ToggleButtons(options=[("annotator pairs", "n_pairs"),
                                                     ("items", "n_items"),
                                                     ("rate", "rate")], value=value)
        self.value_picker.add_class("wb-confused-value")
        self.top_list = w.HTML("")
        self.top_list.add_class("wb-confused-top")
        # one button per most-confused pair: a click selects its items, like the cell
        self.top_buttons = []
        for k in range(top):
            b = w.Button(description="", layout=w.Layout(width="auto", display="none"))
            b.add_class("wb-confused-top-row")
            b.on_click(lambda _b, k=k: self._click_top(k))
            self.top_buttons.append(b)
        top_box = w.VBox(self.top_buttons, layout=w.Layout(align_items="flex-start"))
        super().__init__([self.value_picker, self._make_error_box(), self.figure,
                          self.top_list, top_box])
        self.add_class("wb-confused-pairs")
        self._start(value)

    def _compute(self) -> None:
        classes = getattr(self.project, "classes", None)
        if classes and len(self.annotations) and not set(
                self.annotations["label"].astype(str)) <= set(classes):
            classes = None
        if len(self.annotations):
            self.pairs = confused_pairs(self.annotations, classes=classes or None)
        else:
            self.pairs = pd.DataFrame(columns=["class_a", "class_b", "n_pairs", "n_items",
                                               "share", "rate", "item_ids"])
        if classes:
            self._labels = [str(c) for c in classes]
        else:
            self._labels = sorted(set(self.annotations["label"].astype(str))) if len(
                self.annotations) else []
        self._index = {(a, b): ids for a, b, ids in zip(
            self.pairs["class_a"], self.pairs["class_b"], self.pairs["item_ids"], strict=True)}

    def items_of(self, class_a: str, class_b: str) -> list[str]:
        """Items where some annotators said ``class_a`` and others ``class_b``."""
        a, b = str(class_a), str(class_b)
        return list(self._index.get((a, b)) or self._index.get((b, a)) or [])

    def select_pair(self, class_a: str, class_b: str) -> list[str]:
        """Select the items behind a class pair (what a click does)."""
        ids = self.items_of(class_a, class_b)
        self.cell = (str(class_a), str(class_b))
        self.selection.select(ids, origin=self,
                              description=f"annotators disagree between {class_a} and "
                                          f"{class_b}")
        return ids

    @guarded
    def _on_click(self, trace, points, state=None) -> None:
        """Adapter: plotly click on the grid -> class pair -> selection."""
        cell = self._cell_at(points)
        if cell is not None and cell[0] != cell[1]:
            self.select_pair(*cell)

    def _render(self) -> None:
        labels = self._labels
        k = len(labels)
        mat = confused_pairs_matrix(self.pairs, labels, self.value)
        self.matrix = mat
        z = mat.to_numpy(dtype=float, copy=True)
        z[np.arange(k), np.arange(k)] = np.nan
        z[z == 0] = np.nan
        fmt = "{:.2f}" if self.value == "rate" else "{:.0f}"
        text = [["" if np.isnan(z[i, j]) else fmt.format(z[i, j]) for j in range(k)]
                for i in range(k)]
        n_items = confused_pairs_matrix(self.pairs, labels, "n_items").to_numpy()
        custom = [f"{int(n_items[i, j])} items" for i in range(k) for j in range(k)]
        self._draw(labels, z, text, custom)
        for b in self.top_buttons:
            b.layout.display = "none"
        if self.pairs.empty:
            self.top_list.value = "<i>Annotators never disagree.</i>"
            return
        head = self.pairs.head(self.top)
        self.top_list.value = (
            "<b>Most confused label pairs</b> (click one to see its items; clear examples of "
            "them belong in the labeling guide)")
        for b, r in zip(self.top_buttons, head.itertuples(), strict=False):
            b.description = (f"{r.class_a} ↔ {r.class_b}: {r.n_pairs} annotator pairs on "
                             f"{r.n_items} items ({percent(r.share, 0)} of disagreements)")
            b.tooltip = f"select the {r.n_items} items labelled {r.class_a} by some " \
                        f"annotators and {r.class_b} by others"
            b.layout.display = None

    def _click_top(self, k: int) -> None:
        """Adapter: a click on the k-th most-confused pair."""
        try:
            r = self.pairs.iloc[k]
            self.select_pair(r["class_a"], r["class_b"])
            self.clear_error()
        except Exception as exc:  # shown, not swallowed
            self.show_error(exc)

    def __repr__(self) -> str:
        return f"ConfusedPairs({len(self._labels)} classes, {len(self.pairs)} pairs, " \
               f"cell={self.cell})"
