"""AgreementMatrix: annotator x annotator heatmap of Cohen's kappa; a click selects items.

For detection annotations (box columns ``x``, ``y``, ``w``, ``h``, or a detection project),
``AgreementMatrix(...)`` returns a :class:`DetectionAgreementMatrix`: detection F1 (or class
kappa, mean IoU, Krippendorff's alpha) per pair of annotators, and a click selects the images
where the two disagree together with the disagreeing boxes of both.
"""

from __future__ import annotations

import warnings
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .. import results
from .._validation import check_option, latest_annotations
from ..agreement import disagreeing_items, pairwise_agreement, pivot_pairwise
from ..selection import Selection
from ..slicing import _distinct
from ._adapters import (
    StatusMixin,
    esc,
    grid_point_to_cell,
    guarded,
    plot_text,
    square_axes,
    sync_figure_state,
)
from ._plotly_adapter import figure_widget, hide_modebar

__all__ = ["AgreementMatrix", "DetectionAgreementMatrix", "annotations_from",
           "is_detection", "sync_figure_state"]


def is_detection(project_or_annotations: Any) -> bool:
    """Whether the input is a detection project or a frame of annotator boxes."""
    if isinstance(project_or_annotations, pd.DataFrame):
        return {"x", "y", "w", "h"} <= set(project_or_annotations.columns)
    return getattr(project_or_annotations, "task", None) == "detection"


def annotations_from(project_or_annotations: Any) -> tuple[Any, pd.DataFrame]:
    """``(project or None, current annotations)`` from a Project or an annotations frame.

    Detection annotations (boxes) are returned as they are: an annotator draws many boxes
    on an image, so there is no "latest label" to keep.
    """
    if isinstance(project_or_annotations, pd.DataFrame):
        ann = project_or_annotations
        project = None
    elif hasattr(project_or_annotations, "annotations") and hasattr(project_or_annotations,
                                                                    "items"):
        project = project_or_annotations
        ann = project.annotations
    else:
        raise TypeError(
            "Expected a workbench Project or an annotations DataFrame (item_id, annotator, "
            f"label). Got {type(project_or_annotations).__name__} instead.")
    if len(ann) and not is_detection(ann):
        # a project's current annotations are filtered once per kernel (every widget needs them)
        ann = (results.current_annotations(project) if project is not None
               else latest_annotations(ann))
    return project, ann


class _ClickHeatmap(traitlets.HasTraits):
    """A plotly heatmap plus a transparent scatter grid whose points take the clicks.

    Plotly heatmaps cannot be lasso-selected; one near-invisible marker per cell (row-major:
    point ``i`` is row ``i // k``, column ``i % k``) receives ``on_click`` instead, as in
    FiftyOne's ``InteractiveHeatmap``.

    It also holds the state handlers both heatmaps share: a subclass defines the traits
    ``cell`` and ``value``, the attributes ``figure``, ``pairs`` and ``value_picker``, the
    methods ``_compute``, ``_render`` and ``_draw_highlight``. A selection made by another
    widget (``Selection.origin is not self``) drops the highlighted cell.
    """

    @guarded
    def _on_selection(self, change) -> None:
        if self.cell is not None and self.selection.origin is not self:
            self.cell = None

    @traitlets.observe("cell")
    def _on_cell(self, change) -> None:
        if getattr(self, "figure", None) is not None:
            self._draw_highlight()

    @traitlets.observe("value")
    def _on_value(self, change) -> None:
        if getattr(self, "pairs", None) is not None:
            try:
                self._render()
            except Exception as exc:  # shown, not swallowed
                self.show_error(exc)

    def _start(self, value: str) -> None:
        """Link the value picker, follow the selection, compute and draw (end of __init__)."""
        self.value = value
        w.link((self.value_picker, "value"), (self, "value"))
        self.selection.observe(self._on_selection, names=["ids"])
        self._compute()
        self._render()
        sync_figure_state(self.figure)

    def _make_figure(self, *, xtitle: str, ytitle: str, colorscale: str, zmin=None, zmax=None,
                     hover: str, size: int = 480):
        fig = figure_widget()
        fig.add_heatmap(z=[[0]], colorscale=colorscale, hoverinfo="skip", showscale=True,
                        zmin=zmin, zmax=zmax, texttemplate="%{text}")
        fig.add_scatter(x=[], y=[], mode="markers", showlegend=False,
                        marker={"size": 26, "opacity": 0.01, "symbol": "square",
                                "color": "black"},
                        hovertemplate=hover + "<extra></extra>")
        fig.update_layout(
            xaxis={"title": xtitle, "side": "top", "type": "category"},
            yaxis={"title": ytitle, "autorange": "reversed", "type": "category"},
            margin={"l": 70, "r": 10, "t": 70, "b": 10}, width=size + 40, height=size,
            clickmode="event")
        hide_modebar(fig)
        fig.data[1].on_click(self._on_click)
        return fig

    def _draw(self, labels: list[str], z: np.ndarray, text: list[list[str]],
              custom: list[str]) -> None:
        k = len(labels)
        shown = [plot_text(x) for x in labels]  # plotly would render markup in names
        with self.figure.batch_update():
            hm = self.figure.data[0]
            hm.z = z.tolist()
            hm.x = shown
            hm.y = shown
            hm.text = text
            sc = self.figure.data[1]
            sc.x = [shown[j] for _i in range(k) for j in range(k)]
            sc.y = [shown[i] for i in range(k) for _j in range(k)]
            sc.customdata = [plot_text(c) for c in custom]
            self.figure.update_layout(square_axes(k))
            self._draw_highlight(sync=False)
        sync_figure_state(self.figure)  # after the batch: its edits are applied on exit

    def _draw_empty(self, caption: str) -> None:
        """An empty figure with ``caption`` (HTML) saying why."""
        self.matrix = pd.DataFrame()
        self.caption.value = caption
        self._draw([], np.zeros((0, 0)), [], [])

    def _draw_matrix(self, mat: pd.DataFrame, shared: pd.DataFrame, diagonal: str, *,
                     noun: str) -> None:
        """Draw the annotator x annotator matrix ``mat`` (index and columns ``_labels``).

        Hover text: ``diagonal`` on the diagonal, elsewhere the number of ``noun`` the two
        share (``shared``, same shape).
        """
        names, k = self._labels, len(self._labels)
        self.matrix = mat
        z = mat.to_numpy(dtype=float, copy=True)
        text = [["" if np.isnan(z[i, j]) else f"{z[i, j]:.2f}" for j in range(k)]
                for i in range(k)]
        custom = []
        for i in range(k):
            for j in range(k):
                if i == j:
                    custom.append(diagonal)
                else:
                    n = shared.iat[i, j]
                    custom.append(f"{0 if np.isnan(n) else int(n)} shared {noun}")
        self._draw(names, z, text, custom)

    def _draw_highlight(self, sync: bool = True) -> None:
        labels = self._labels
        shapes = []
        cell = self.cell
        if cell is not None and cell[0] in labels and cell[1] in labels:
            i, j = labels.index(cell[0]), labels.index(cell[1])
            shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": j - 0.5,
                           "x1": j + 0.5, "y0": i - 0.5, "y1": i + 0.5,
                           "line": {"color": "#d62728", "width": 3}})
        self.figure.layout.shapes = shapes
        if sync:
            # live views got the change as a delta; a view opened later (Voila renders after
            # the cell ran, or a second display) starts from the synced state
            sync_figure_state(self.figure)

    def _cell_at(self, points) -> tuple[str, str] | None:
        return grid_point_to_cell(points, self._labels)


class AgreementMatrix(StatusMixin, _ClickHeatmap, w.VBox):
    """Annotator x annotator heatmap of pairwise agreement; clicking a cell selects items.

    A click on cell (a, b) selects the items where annotators a and b gave different
    labels; a click on the diagonal (a, a) selects the items where a disagrees with any
    other annotator.

    Parameters
    ----------
    project_or_annotations : Project or DataFrame
        A project or a long annotations frame.
    selection : Selection, default=None
        The shared selection; a new one when None.
    value : {'kappa', 'agreement'}, default='kappa'
        What the colours show: Cohen's kappa or raw agreement on the shared items.

    Attributes
    ----------
    pairs : DataFrame
        :func:`workbench.pairwise_agreement` of the annotations.
    matrix : DataFrame
        The square matrix shown.
    cell : tuple of (str, str) or None
        The selected ``(annotator_a, annotator_b)``.
    figure : plotly.graph_objects.FigureWidget
        ``data[0]`` the heatmap, ``data[1]`` the click grid.
    """

    cell = traitlets.Tuple(default_value=None, allow_none=True)
    value = traitlets.Unicode("kappa")

    def __new__(cls, project_or_annotations: Any = None, *args: Any, **kwargs: Any):
        """A :class:`DetectionAgreementMatrix` for boxes, else an AgreementMatrix."""
        if cls is AgreementMatrix and is_detection(project_or_annotations):
            return DetectionAgreementMatrix(project_or_annotations, *args, **kwargs)
        return super().__new__(cls, project_or_annotations, *args, **kwargs)

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 value: str = "kappa"):
        check_option(value, "value", "AgreementMatrix", ("kappa", "agreement"))
        self.project, self.annotations = annotations_from(project_or_annotations)
        self.selection = selection if selection is not None else Selection()
        self._labels: list[str] = []
        self.figure = self._make_figure(
            xtitle="annotator", ytitle="annotator", colorscale="RdYlGn", zmin=None, zmax=1,
            hover="%{y} vs %{x}<br>%{customdata}")
        self.value_picker = w.ToggleButtons(options=[("Cohen's kappa", "kappa"),
                                                     ("raw agreement", "agreement")],
                                            value=value)
        self.value_picker.add_class("wb-agreement-value")
        self.caption = w.HTML("")
        self.caption.add_class("wb-agreement-caption")
        super().__init__([self.value_picker, self._make_error_box(), self.caption, self.figure])
        self.add_class("wb-agreement-matrix")
        self._start(value)

    # ---- state ------------------------------------------------------------------------
    def _compute(self) -> None:
        if len(self.annotations) == 0:
            self.pairs = pd.DataFrame(columns=["annotator_a", "annotator_b", "n_shared",
                                               "agreement", "kappa"])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # surfaced in the caption instead
                self.pairs = (pairwise_agreement(self.annotations) if self.project is None
                              else results.pairwise_agreement(self.project))  # cached
        names = sorted(map(str, _distinct(self.annotations["annotator"]))) if len(
            self.annotations) else []
        self._labels = names
        self._cache: dict = {}

    def items_of(self, annotator_a: str, annotator_b: str) -> list[str]:
        """Items where the two annotators disagree (a == b: a disagrees with anyone)."""
        key = (str(annotator_a), str(annotator_b))
        if key not in self._cache:
            other = None if key[0] == key[1] else key[1]
            self._cache[key] = disagreeing_items(self.annotations, key[0], other)
        return self._cache[key]

    def select_pair(self, annotator_a: str, annotator_b: str) -> list[str]:
        """Select the items where the two annotators disagree (what a click does)."""
        ids = self.items_of(annotator_a, annotator_b)
        self.cell = (str(annotator_a), str(annotator_b))
        if annotator_a == annotator_b:
            desc = f"{annotator_a} disagrees with another annotator"
        else:
            desc = f"{annotator_a} and {annotator_b} disagree"
        self.selection.select(ids, origin=self, description=desc)
        return ids

    @guarded
    def _on_click(self, trace, points, state=None) -> None:
        """Adapter: plotly click on the grid -> annotator pair -> selection."""
        cell = self._cell_at(points)
        if cell is not None:
            self.select_pair(*cell)

    # ---- view -------------------------------------------------------------------------
    def _render(self) -> None:
        names = self._labels
        k = len(names)
        if k == 0 or self.pairs.empty:
            self._draw_empty("<i>No two annotators labelled the same item, so there is no "
                             "pairwise agreement to show.</i>")
            return
        mat = pivot_pairwise(self.pairs, self.value).reindex(index=names, columns=names)
        if self.value == "kappa":
            mat = mat.where(~np.eye(k, dtype=bool), np.nan)  # diagonal is not informative
        shared = pivot_pairwise(self.pairs, "n_shared").reindex(index=names, columns=names)
        self._draw_matrix(mat, shared, "click: items where this annotator disagrees with "
                          "others", noun="items")
        paired = set(self.pairs["annotator_a"]) | set(self.pairs["annotator_b"])
        alone = [a for a in names if a not in paired]
        note = (f" Annotators sharing no item: {esc(', '.join(alone))}." if alone else "")
        self.caption.value = (
            f"<span>{k} annotators, {len(self.pairs)} pairs with shared items. Click a cell to "
            f"see the items where two annotators disagree.{note}</span>")

    def __repr__(self) -> str:
        return f"AgreementMatrix({len(self._labels)} annotators, cell={self.cell})"


#: What the detection heatmap can show: (column of pairwise_agreement, button label).
DETECTION_VALUES = (("detection_f1", "detection F1"), ("kappa", "class kappa"),
                    ("mean_iou", "mean IoU"), ("krippendorff_alpha", "Krippendorff's alpha"))


def pivot_pairs(pairs: pd.DataFrame, value: str, names: list[str]) -> pd.DataFrame:
    """Square annotator x annotator matrix of ``pairs[value]`` (symmetric, NaN diagonal)."""
    mat = pd.DataFrame(np.nan, index=pd.Index(names, name="annotator"),
                       columns=pd.Index(names, name="annotator"))
    ia = mat.index.get_indexer(pairs["annotator_a"].astype(str))
    ib = mat.columns.get_indexer(pairs["annotator_b"].astype(str))
    ok = (ia >= 0) & (ib >= 0)
    arr = mat.to_numpy(copy=True)
    vals = pairs[value].to_numpy(dtype=float)[ok]
    arr[ia[ok], ib[ok]] = vals
    arr[ib[ok], ia[ok]] = vals
    return pd.DataFrame(arr, index=mat.index, columns=mat.columns)


class DetectionAgreementMatrix(AgreementMatrix):
    """Annotator x annotator heatmap of box agreement; a click selects images and boxes.

    Cell (a, b) shows :func:`workbench.pairwise_agreement` of the two annotators' boxes
    (detection F1 at the IoU threshold, Cohen's kappa of the classes of matched boxes, mean
    IoU of matched boxes, or Krippendorff's alpha with the ``1 - IoU`` distance). A click
    selects the images where :func:`workbench.match_annotators` has an outcome other than
    ``agree`` for the pair (a box of one without a match in the other, or a matched box of
    another class) and, in ``selection.box_ids``, those boxes of both annotators. A click on
    the diagonal (a, a) does the same for a against every other annotator.

    Parameters
    ----------
    project_or_annotations : DetectionProject or DataFrame
        A detection project or its annotations (``item_id``, ``annotator``, ``label``,
        ``x``, ``y``, ``w``, ``h`` [, ``box_id``]).
    selection : Selection, default=None
        The shared selection; a new one when None.
    value : {'detection_f1', 'kappa', 'mean_iou', 'krippendorff_alpha'}, default='detection_f1'
        What the colours show.
    iou : float, default=0.5
        Minimum IoU of a matched pair of boxes.
    matches : DataFrame, default=None
        :func:`workbench.match_annotators` of the annotations at ``iou``, when the caller
        has it already (a dashboard computes it once).

    Attributes
    ----------
    pairs : DataFrame
        :func:`workbench.pairwise_agreement` of the annotations.
    matches : DataFrame
        :func:`workbench.match_annotators` of the annotations.
    matrix : DataFrame
        The square matrix shown.
    cell : tuple of (str, str) or None
        The selected ``(annotator_a, annotator_b)``.
    """

    value = traitlets.Unicode("detection_f1")

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 value: str = "detection_f1", iou: float = 0.5, matches=None):
        check_option(value, "value", "AgreementMatrix", [v for v, _ in DETECTION_VALUES])
        self.project, self.annotations = annotations_from(project_or_annotations)
        self.selection = selection if selection is not None else Selection()
        self.iou = iou
        self.matches = matches
        self._labels: list[str] = []
        # one fixed scale for every measure (0 = chance or nothing matched, 1 = perfect):
        # an F1 of 0.89 beside 0.96 is good, not red
        self.figure = self._make_figure(
            xtitle="annotator", ytitle="annotator", colorscale="RdYlGn", zmin=0, zmax=1,
            hover="%{y} vs %{x}<br>%{customdata}")
        self.value_picker = w.ToggleButtons(options=[(t, v) for v, t in DETECTION_VALUES],
                                            value=value)
        self.value_picker.add_class("wb-agreement-value")
        self.caption = w.HTML("")
        self.caption.add_class("wb-agreement-caption")
        w.VBox.__init__(self, [self.value_picker, self._make_error_box(), self.caption,
                               self.figure])
        self.add_class("wb-agreement-matrix")
        self.add_class("wb-detection-agreement-matrix")
        self._start(value)

    def _compute(self) -> None:
        from ..detection.agreement import match_annotators

        ann = self.annotations
        names = sorted(set(ann["annotator"].astype(str))) if len(ann) else []
        self._labels = names
        self._cache: dict = {}
        if len(names) < 2:
            self.pairs = pd.DataFrame(columns=["annotator_a", "annotator_b", "n_shared",
                                               *[v for v, _ in DETECTION_VALUES]])
            self.matches = pd.DataFrame(columns=["item_id", "annotator_a", "annotator_b",
                                                 "box_id_a", "box_id_b", "outcome"])
            return
        classes = getattr(self.project, "classes", None) or None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # surfaced by the dashboard instead
            self.pairs = pairwise_agreement(ann, iou=self.iou, classes=classes)
        if self.matches is None:
            self.matches = match_annotators(ann, iou=self.iou, classes=classes)
        m = self.matches
        bad = m[m["outcome"].astype(str) != "agree"]
        self._disagree = bad.assign(annotator_a=bad["annotator_a"].astype(str),
                                    annotator_b=bad["annotator_b"].astype(str),
                                    item_id=bad["item_id"].astype(str))

    def _rows_of(self, annotator_a: str, annotator_b: str) -> pd.DataFrame:
        d = getattr(self, "_disagree", None)
        if d is None:
            return pd.DataFrame(columns=["item_id", "box_id_a", "box_id_b"])
        a, b = str(annotator_a), str(annotator_b)
        if a == b:
            return d[(d["annotator_a"] == a) | (d["annotator_b"] == a)]
        return d[((d["annotator_a"] == a) & (d["annotator_b"] == b))
                 | ((d["annotator_a"] == b) & (d["annotator_b"] == a))]

    def items_of(self, annotator_a: str, annotator_b: str) -> list[str]:
        """Images where the two annotators' boxes disagree (a == b: a against anyone)."""
        return self.boxes_of(annotator_a, annotator_b)[0]

    def boxes_of(self, annotator_a: str, annotator_b: str) -> tuple[list[str], list[str]]:
        """``(images, boxes)`` where the two disagree: outcomes other than ``agree``."""
        key = (str(annotator_a), str(annotator_b))
        if key not in self._cache:
            rows = self._rows_of(*key)
            boxes = pd.concat([rows["box_id_a"], rows["box_id_b"]]).dropna().astype(str)
            self._cache[key] = (sorted(set(rows["item_id"])), sorted(set(boxes)))
        return self._cache[key]

    def select_pair(self, annotator_a: str, annotator_b: str) -> list[str]:
        """Select the images and boxes where the two annotators disagree (a click)."""
        ids, boxes = self.boxes_of(annotator_a, annotator_b)
        self.cell = (str(annotator_a), str(annotator_b))
        if annotator_a == annotator_b:
            desc = f"boxes of {annotator_a} that another annotator does not match"
        else:
            desc = f"boxes where {annotator_a} and {annotator_b} disagree"
        self.selection.select(ids, box_ids=boxes, origin=self, description=desc)
        return ids

    def _render(self) -> None:
        names = self._labels
        k = len(names)
        if k == 0 or self.pairs.empty:
            self._draw_empty("<i>Fewer than two annotators drew boxes, so there is no "
                             "pairwise agreement to show.</i>")
            return
        self._draw_matrix(pivot_pairs(self.pairs, self.value, names),
                          pivot_pairs(self.pairs, "n_shared", names),
                          "click: this annotator's boxes that others do not match",
                          noun="images")
        label = dict(DETECTION_VALUES)[self.value]
        self.caption.value = (
            "<div style='white-space:normal;max-width:560px;line-height:1.35'>"
            f"{k} annotators, {len(self.pairs)} pairs. <i>{esc(label)}</i> of two "
            f"annotators' boxes matched one to one at IoU &ge; {self.iou:.2f}. Click a cell "
            "to see the images where those two disagree (a box without a match, or a "
            "matched box of another class), with those boxes highlighted; click the "
            "diagonal for one annotator against everyone.</div>")

    def __repr__(self) -> str:
        return (f"DetectionAgreementMatrix({len(self._labels)} annotators, "
                f"value={self.value!r}, cell={self.cell})")
