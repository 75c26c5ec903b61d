"""ConfusionMatrix: a plotly heatmap whose cells select their items (or, in detection, boxes)."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .._validation import check_option
from ..detection.slicing import BACKGROUND, is_matches_frame
from ..selection import Selection
from ..slicing import _class_codes, cell_items, confusion_table
from ._adapters import (
    StatusMixin,
    errors_from,
    grid_point_to_cell,
    guarded,
    ids_where,
    plot_text,
    square_axes,
    sync_figure_state,
)
from ._plotly_adapter import figure_widget, hide_modebar

__all__ = ["ConfusionMatrix"]

_NORMALIZE_OPTIONS = [("counts", "counts"), ("rates per true class", "true"),
                      ("rates per predicted class", "pred"), ("share of all", "all")]


class ConfusionMatrix(StatusMixin, w.VBox):
    """Confusion matrix heatmap (rows = true class, columns = predicted); a click selects.

    Plotly heatmaps cannot be lasso-selected, so a transparent scatter grid with one point
    per cell sits on top and its ``on_click`` selects the cell's items (as FiftyOne's
    ``InteractiveHeatmap`` does). The selected cell is outlined.

    Parameters
    ----------
    project_or_errors : Project or DataFrame
        A project (its errors for ``run`` are used) or an errors frame
        (:func:`workbench.slicing.project_errors`). Detection: a detection project (its
        matches for ``run`` at ``iou``) or a :func:`workbench.match_detections` frame; the
        matrix then has a ``background`` row (false detections) and column (misses), and a
        click selects the cell's boxes (``Selection.box_ids``) and their images.
    selection : Selection, default=None
        The shared selection; a new one when None.
    run : str, default=None
        The run when a project is given (None: the default run).
    hide_diagonal : bool, default=False
        Blank the diagonal so the errors stand out.
    normalize : {'true', 'pred', 'all'}, default=None
        Show rates instead of counts (as :func:`workbench.confusion_table`).
    iou : float, default=0.5
        Detection project: the IoU threshold of the matching.

    Attributes
    ----------
    figure : plotly.graph_objects.FigureWidget
        ``data[0]`` the heatmap, ``data[1]`` the click grid.
    cell : tuple of (str, str) or None
        The selected ``(true, predicted)`` cell.
    table : DataFrame
        The counts shown (the same as ``confusion_table(errors)``).
    detection : bool
        Whether this is a detection matrix (``errors`` is then the matches frame).
    """

    cell = traitlets.Tuple(default_value=None, allow_none=True)
    hide_diagonal = traitlets.Bool(False)
    normalize = traitlets.Unicode(None, allow_none=True)

    def __init__(self, project_or_errors: Any, selection: Selection | None = None, *,
                 run: str | None = None, hide_diagonal: bool = False,
                 normalize: str | None = None, iou: float = 0.5):
        import plotly.graph_objects as go

        check_option(normalize, "normalize", "ConfusionMatrix", ["true", "pred", "all"],
                     allow_none=True)
        if getattr(project_or_errors, "task", None) == "detection":
            from ..detection import match_detections

            self.project = project_or_errors
            self.errors = match_detections(project_or_errors, run or _default_run(
                project_or_errors), iou=iou)
        else:
            self.project, self.errors = errors_from(project_or_errors, run)
        self.selection = selection if selection is not None else Selection()
        self.hide_diagonal = hide_diagonal
        self.normalize = normalize
        self._compute()
        # the figure is built with its content: in Voila the page connects after the
        # notebook ran, and plotly's incremental messages sent before that are lost
        heat, grid, shapes = self._content()
        self.figure = figure_widget(
            data=[go.Heatmap(**heat, colorscale="Blues", hoverinfo="skip", showscale=False,
                             texttemplate="%{text}"),
                  go.Scatter(**grid, mode="markers", showlegend=False,
                             marker={"size": 28, "opacity": 0.01, "symbol": "square",
                                     "color": "black"},
                             hovertemplate="true %{y}, predicted %{x}<br>%{customdata}"
                                           "<extra></extra>")],
            layout=self._layout(shapes))
        hide_modebar(self.figure)
        self.figure.data[1].on_click(self._on_click)
        self.figure.data[0].on_click(self._on_click)
        sync_figure_state(self.figure)
        self.diag_box = w.Checkbox(value=hide_diagonal, description="hide diagonal",
                                   indent=False)
        self.norm_box = w.Dropdown(options=_NORMALIZE_OPTIONS, value=normalize or "counts",
                                   description="show", layout=w.Layout(width="260px"))
        self.diag_box.add_class("wb-confusion-hide-diagonal")
        self.norm_box.add_class("wb-confusion-normalize")
        controls = w.HBox([self.norm_box, self.diag_box])
        super().__init__([controls, self._make_error_box(), self.figure])
        self.add_class("wb-confusion")
        w.link((self.diag_box, "value"), (self, "hide_diagonal"))
        w.link((self.norm_box, "value"), (self, "normalize"),
               transform=(lambda v: None if v == "counts" else v,
                          lambda v: "counts" if v is None else v))
        self.selection.observe(self._on_selection, names=["ids", "box_ids"])

    # ---- state ------------------------------------------------------------------------

    @property
    def detection(self) -> bool:
        """Whether the matrix shows detections (a matches frame, with ``background``)."""
        return is_matches_frame(self.errors)

    def _compute(self) -> None:
        self._cell_ids_cache: dict = {}
        self._detection = self.detection
        self.table = confusion_table(self.errors)
        if self._detection:
            self.classes = [str(c) for c in self.table.index]
            return
        self.classes = [str(c) for c in self.table.index]
        k = len(self.classes)
        t = _class_codes(self.errors["label"], self.classes)
        p = _class_codes(self.errors["predicted"], self.classes)
        code = t * k + p
        code[(t < 0) | (p < 0)] = -1
        self._cell_code = code
        self._ids = self.errors["item_id"]

    def items_of(self, true: str, predicted: str) -> list[str]:
        """Item ids in cell ``(true, predicted)`` (detection: the images of its boxes)."""
        key = (str(true), str(predicted))
        if self._detection:
            return self._detection_cell(key)[0]
        if key not in self._cell_ids_cache:
            k = len(self.classes)
            if key[0] in self.classes and key[1] in self.classes:
                code = self.classes.index(key[0]) * k + self.classes.index(key[1])
                self._cell_ids_cache[key] = ids_where(self._ids, self._cell_code == code)
            else:
                self._cell_ids_cache[key] = cell_items(self.errors, *key)
        return self._cell_ids_cache[key]

    def boxes_of(self, true: str, predicted: str) -> list[str] | None:
        """Detection: the box ids of cell ``(true, predicted)``; None for classification.

        The ids are the ``box_id`` of the reference boxes and the ``pred_id`` of the
        predictions behind the cell.
        """
        if not self._detection:
            return None
        return self._detection_cell((str(true), str(predicted)))[1]

    def _detection_cell(self, key: tuple[str, str]) -> tuple[list[str], list[str]]:
        """``(images, boxes)`` of a cell (from :func:`workbench.cell_items`).

        The boxes that make the cell: the missed box of a miss, the prediction of a false
        detection, both boxes of a pair.
        """
        if key not in self._cell_ids_cache:
            rows = cell_items(self._light(), *key)
            items = list(dict.fromkeys(rows["item_id"].astype(str).tolist()))
            cols = (["box_id"] if key[1] == BACKGROUND else
                    ["pred_id"] if key[0] == BACKGROUND else ["box_id", "pred_id"])
            boxes = [str(b) for c in cols for b in rows[c].dropna().tolist()]
            self._cell_ids_cache[key] = (items, boxes)
        return self._cell_ids_cache[key]

    def _light(self) -> pd.DataFrame:
        """The matches frame's columns that :func:`workbench.cell_items` needs.

        Without the metadata columns and the bulky ``attrs`` (pandas copies ``attrs`` on
        every operation), a cell's lookup is a few milliseconds.
        """
        if "light" not in self._cell_ids_cache:
            cols = [c for c in ("run", "item_id", "box_id", "pred_id", "label", "predicted",
                                "outcome", "is_fn", "is_fp") if c in self.errors.columns]
            light = self.errors[cols]
            light.attrs = {k: self.errors.attrs[k] for k in ("classes", "iou", "run")
                           if k in self.errors.attrs}
            self._cell_ids_cache["light"] = light
        return self._cell_ids_cache["light"]

    def _describe(self, true: str, predicted: str) -> str:
        if not self._detection:
            return f"true {true}, predicted {predicted}"
        bg = BACKGROUND
        if predicted == bg and true != bg:
            return f"missed boxes of class {true} (true {true}, predicted {bg})"
        if true == bg and predicted != bg:
            return f"false detections of class {predicted} (true {bg}, predicted {predicted})"
        return f"true {true}, predicted {predicted}"
    def set_errors(self, errors: pd.DataFrame) -> None:
        """Show another errors frame (after the run changed; detection: a matches frame)."""
        self.errors = errors
        self.cell = None
        self._compute()
        self._render()

    def select_cell(self, true: str, predicted: str) -> list[str]:
        """Select the items of a cell (what a click does); returns their ids."""
        ids = self.items_of(true, predicted)
        self.cell = (str(true), str(predicted))
        self.selection.select(ids, box_ids=self.boxes_of(true, predicted), origin=self,
                              description=self._describe(true, predicted))
        return ids

    @guarded
    def _on_click(self, trace, points, state=None) -> None:
        """Adapter: plotly click on the grid -> cell -> selection."""
        cell = grid_point_to_cell(points, self.classes)
        if cell is not None:
            self.select_cell(*cell)

    @guarded
    def _on_selection(self, change) -> None:
        if self.cell is None:
            return
        if self.selection.origin is self:
            return
        if self.selection.ids != tuple(sorted(self.items_of(*self.cell))):
            self.cell = None
        elif self._detection and self.selection.box_ids != tuple(
                sorted(self.boxes_of(*self.cell))):
            self.cell = None

    @traitlets.observe("cell")
    def _on_cell(self, change) -> None:
        if getattr(self, "figure", None) is not None:
            self._render_highlight()

    @traitlets.observe("hide_diagonal", "normalize")
    def _on_view(self, change) -> None:
        if getattr(self, "figure", None) is not None:
            try:
                self._render()
            except Exception as exc:
                self.show_error(exc)

    # ---- view -------------------------------------------------------------------------

    def _shapes(self) -> list[dict]:
        if self.cell is None or self.cell[0] not in self.classes or \
                self.cell[1] not in self.classes:
            return []
        i, j = self.classes.index(self.cell[0]), self.classes.index(self.cell[1])
        return [{"type": "rect", "xref": "x", "yref": "y", "x0": j - 0.5, "x1": j + 0.5,
                 "y0": i - 0.5, "y1": i + 0.5, "line": {"color": "#d62728", "width": 3}}]

    def _render_highlight(self) -> None:
        self.figure.layout.shapes = self._shapes()
        sync_figure_state(self.figure)  # a view opened later starts from the current state

    def _layout(self, shapes: list) -> dict:
        axes = square_axes(len(self.classes))
        return {"xaxis": {"title": {"text": "predicted"}, "side": "top", "type": "category",
                          **axes["xaxis"]},
                "yaxis": {"title": {"text": "true"}, "type": "category", **axes["yaxis"]},
                "margin": {"l": 60, "r": 10, "t": 60, "b": 10}, "width": 520,
                "height": 500, "clickmode": "event", "shapes": shapes}

    def _content(self) -> tuple[dict, dict, list]:
        counts = self.table.to_numpy()
        shown = confusion_table(self.errors, normalize=self.normalize).to_numpy(dtype=float)
        k = len(self.classes)
        noun = "boxes" if self._detection else "items"
        z = shown.copy()
        if self.hide_diagonal and k:
            z[np.arange(k), np.arange(k)] = np.nan
        if self.normalize is None:
            text = [["" if np.isnan(z[i, j]) else f"{int(counts[i, j])}" for j in range(k)]
                    for i in range(k)]
        else:
            text = [["" if np.isnan(z[i, j]) else f"{z[i, j]:.2f}" for j in range(k)]
                    for i in range(k)]
        shown_names = [plot_text(c) for c in self.classes]  # plotly shows markup as is
        heat = {"z": z.tolist(), "x": shown_names, "y": shown_names, "text": text}
        grid = {"x": [shown_names[j] for _i in range(k) for j in range(k)],
                "y": [shown_names[i] for i in range(k) for _j in range(k)],
                "customdata": [f"{int(counts[i, j])} {noun}" for i in range(k)
                               for j in range(k)]}
        return heat, grid, self._shapes()

    def _render(self) -> None:
        heat, grid, shapes = self._content()
        with self.figure.batch_update():
            self.figure.data[0].update(heat)
            self.figure.data[1].update(grid)
            self.figure.layout.shapes = shapes
            self.figure.update_layout(square_axes(len(self.classes)))
        # live views got the changes as deltas; a view opened later (Voila, a second
        # display) starts from the synced state, so keep it current
        sync_figure_state(self.figure)

    def __repr__(self) -> str:
        rows = "rows" if self._detection else "items"
        return (f"ConfusionMatrix({len(self.classes)} classes, {len(self.errors)} {rows}, "
                f"cell={self.cell})")


def _default_run(project: Any) -> str | None:
    runs = list(getattr(project, "runs", []) or [])
    return getattr(project, "default_run", None) or (runs[0] if runs else None)
