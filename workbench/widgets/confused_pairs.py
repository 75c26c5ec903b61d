"""ConfusedPairs: class x class heatmap of the labels annotators swap; a click selects.

For detection annotations, ``ConfusedPairs(...)`` returns a :class:`DetectionConfusedPairs`:
the classes of boxes two annotators drew on the same object (matched by IoU), and a click
selects the images and those boxes.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .. import results
from .._format import percent
from .._validation import check_option
from ..agreement import confused_pairs, confused_pairs_matrix
from ..selection import Selection
from ..slicing import _distinct
from ._adapters import StatusMixin, guarded
from .agreement_matrix import _ClickHeatmap, annotations_from, is_detection

#: The columns of the confused pairs shown (their item ids are read on a click).
_PAIR_COLUMNS = ["class_a", "class_b", "n_pairs", "n_items", "share", "rate"]

__all__ = ["ConfusedPairs", "DetectionConfusedPairs"]


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
        :func:`workbench.confused_pairs` of the annotations; read from a project's cache
        without ``item_ids`` (:meth:`items_of` reads them when a pair is clicked).
    matrix : DataFrame
        The symmetric class x class matrix shown.
    cell : tuple of (str, str) or None
        The selected class pair.
    """

    cell = traitlets.Tuple(default_value=None, allow_none=True)
    value = traitlets.Unicode("n_pairs")
    #: Words of the captions: what a pair is, what an item is.
    _pair_noun, _item_noun = "annotator pairs", "items"
    _axis_titles = ("label given by one annotator", "label given by another")

    def __new__(cls, project_or_annotations: Any = None, *args: Any, **kwargs: Any):
        """A :class:`DetectionConfusedPairs` for boxes, else a ConfusedPairs."""
        if cls is ConfusedPairs and is_detection(project_or_annotations):
            return DetectionConfusedPairs(project_or_annotations, *args, **kwargs)
        return super().__new__(cls, project_or_annotations, *args, **kwargs)

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 value: str = "n_pairs", top: int = 5):
        check_option(value, "value", "ConfusedPairs", ("n_pairs", "n_items", "rate"))
        self.project, self.annotations = annotations_from(project_or_annotations)
        self.selection = selection if selection is not None else Selection()
        self.top = top
        self._labels: list[str] = []
        self.figure = self._make_figure(
            xtitle=self._axis_titles[0], ytitle=self._axis_titles[1],
            colorscale="Oranges", hover="%{y} vs %{x}<br>%{customdata}")
        self.value_picker = w.ToggleButtons(options=[(self._pair_noun, "n_pairs"),
                                                     (self._item_noun, "n_items"),
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
                map(str, _distinct(self.annotations["label"]))) <= set(classes):
            classes = None
        self._items = None
        if len(self.annotations) and self.project is not None:
            # cached, same class rule; each pair's items are read when one is clicked
            self.pairs = results.confused_pairs(self.project, columns=_PAIR_COLUMNS)
        elif len(self.annotations):
            self.pairs = confused_pairs(self.annotations, classes=classes or None)
        else:
            self.pairs = pd.DataFrame(columns=["class_a", "class_b", "n_pairs", "n_items",
                                               "share", "rate", "item_ids"])
        if classes:
            self._labels = [str(c) for c in classes]
        else:
            self._labels = sorted(map(str, _distinct(self.annotations["label"]))) if len(
                self.annotations) else []
        if "item_ids" in self.pairs.columns:
            self._items = self.pairs

    def items_of(self, class_a: str, class_b: str) -> list[str]:
        """Items where some annotators said ``class_a`` and others ``class_b``."""
        if self._items is None:  # read from the project's cache on the first click
            self._items = results.confused_pairs(self.project)
        if not hasattr(self, "_index") or self._index_of is not self._items:
            self._index = {(a, b): ids for a, b, ids in zip(
                self._items["class_a"], self._items["class_b"], self._items["item_ids"],
                strict=True)}
            self._index_of = self._items
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
        custom = [f"{int(n_items[i, j])} {self._item_noun}" for i in range(k)
                  for j in range(k)]
        self._draw(labels, z, text, custom)
        for b in self.top_buttons:
            b.layout.display = "none"
        if self.pairs.empty:
            self.top_list.value = "<i>Annotators never disagree.</i>"
            return
        head = self.pairs.head(self.top)
        self.top_list.value = (
            f"<b>Most confused label pairs</b> (click one to see its {self._item_noun}; "
            "clear examples of them belong in the labeling guide)")
        for b, r in zip(self.top_buttons, head.itertuples(), strict=False):
            b.description = (f"{r.class_a} ↔ {r.class_b}: {r.n_pairs} {self._pair_noun} on "
                             f"{r.n_items} {self._item_noun} ({percent(r.share, 0)} of "
                             "disagreements)")
            b.tooltip = f"select the {r.n_items} {self._item_noun} labelled {r.class_a} by " \
                        f"some annotators and {r.class_b} by others"
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


class DetectionConfusedPairs(ConfusedPairs):
    """Which classes annotators give the same object; a click selects images and boxes.

    Cell (a, b) counts the pairs of boxes two annotators drew on the same object (matched
    one to one by IoU, :func:`workbench.match_annotators`) with classes a and b
    (:func:`workbench.confused_pairs` on boxes). A click (or one of the most-confused
    pairs listed under the heatmap) selects the images behind the pair and, in
    ``selection.box_ids``, the boxes of both sides.

    Parameters
    ----------
    project_or_annotations : DetectionProject or DataFrame
        A detection project or its annotations.
    selection : Selection, default=None
        The shared selection; a new one when None.
    value : {'n_pairs', 'n_items', 'rate'}, default='n_pairs'
        What the colours show: matched box pairs, images, or the rate.
    top : int, default=5
        Number of most-confused pairs listed under the heatmap.
    iou : float, default=0.5
        Minimum IoU of a matched pair of boxes.

    Attributes
    ----------
    pairs : DataFrame
        :func:`workbench.confused_pairs` of the boxes (with ``item_ids`` and ``box_ids``).
    cell : tuple of (str, str) or None
        The selected class pair.
    """

    _pair_noun, _item_noun = "box pairs", "images"
    _axis_titles = ("class of one annotator's box", "class of the matched box of another")

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 value: str = "n_pairs", top: int = 5, iou: float = 0.5):
        self.iou = iou
        super().__init__(project_or_annotations, selection, value=value, top=top)
        self.add_class("wb-detection-confused-pairs")

    def _compute(self) -> None:
        classes = [str(c) for c in (getattr(self.project, "classes", None) or [])]
        ann = self.annotations
        if len(ann) and ann["annotator"].nunique() >= 2:
            self.pairs = confused_pairs(ann, classes=classes or None, iou=self.iou)
        else:
            self.pairs = pd.DataFrame(columns=["class_a", "class_b", "n_pairs", "n_items",
                                               "share", "rate", "item_ids", "box_ids"])
        self._labels = classes or (sorted(set(ann["label"].astype(str))) if len(ann) else [])
        self._index = {(a, b): (ids, boxes) for a, b, ids, boxes in zip(
            self.pairs["class_a"], self.pairs["class_b"], self.pairs["item_ids"],
            self.pairs["box_ids"], strict=True)}

    def boxes_of(self, class_a: str, class_b: str) -> tuple[list[str], list[str]]:
        """``(images, boxes)`` of the matched box pairs labelled ``class_a`` and ``class_b``."""
        a, b = str(class_a), str(class_b)
        ids, boxes = self._index.get((a, b)) or self._index.get((b, a)) or ([], [])
        return list(ids), sorted(set(boxes))

    def items_of(self, class_a: str, class_b: str) -> list[str]:
        """Images with a matched box pair labelled ``class_a`` by one, ``class_b`` by another."""
        return self.boxes_of(class_a, class_b)[0]

    def select_pair(self, class_a: str, class_b: str) -> list[str]:
        """Select the images and boxes behind a class pair (what a click does)."""
        ids, boxes = self.boxes_of(class_a, class_b)
        self.cell = (str(class_a), str(class_b))
        self.selection.select(ids, box_ids=boxes, origin=self,
                              description=f"boxes labelled {class_a} by one annotator and "
                                          f"{class_b} by another")
        return ids

    def __repr__(self) -> str:
        return (f"DetectionConfusedPairs({len(self._labels)} classes, {len(self.pairs)} "
                f"pairs, cell={self.cell})")
