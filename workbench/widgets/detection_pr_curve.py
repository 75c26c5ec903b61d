"""PrecisionRecallCurve: a detection run's precision-recall curve; a click picks a threshold.

Each point of the curve is a confidence threshold (:func:`workbench.detection.curves.
precision_recall_curve`). Clicking it selects the predicted boxes above it (kept at that
threshold) or below it (dropped), as the *select* toggle says: their ``pred_id`` go to
``Selection.box_ids`` and their images to ``Selection.ids``.
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .._format import percent
from ..detection.curves import boxes_at_threshold, precision_recall_curve
from ..selection import Selection
from ._adapters import StatusMixin, esc, guarded, plot_text, point_indices, sync_figure_state
from ._plotly_adapter import figure_widget, hide_modebar

__all__ = ["PrecisionRecallCurve"]

#: Most points drawn per curve (evenly spaced along it; the ends always kept).
MAX_POINTS = 400
ALL = "all classes"
_SIDES = [("predictions ≥ threshold", "above"), ("predictions < threshold", "below")]


def _thin(n: int, most: int = MAX_POINTS) -> np.ndarray:
    """Positions of at most ``most`` points spread over ``n``, first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


class PrecisionRecallCurve(StatusMixin, w.VBox):
    """The precision-recall curve of one class (or all) of a detection run; points select.

    Parameters
    ----------
    matches : DataFrame
        :func:`workbench.match_detections` of one run (its IoU is the curve's).
    selection : Selection, default=None
        The shared selection; a new one when None.
    label : str, default=None
        The class shown first (None: all classes pooled).
    side : {'above', 'below'}, default='above'
        What a click selects: the predictions kept at the threshold, or those dropped.

    Attributes
    ----------
    figure : plotly.graph_objects.FigureWidget
        ``data[0]`` the curve (one point per threshold), ``data[1]`` the chosen point.
    curve : DataFrame
        The points drawn (:func:`~workbench.detection.curves.precision_recall_curve`).
    threshold : float or None
        The confidence threshold picked by the last click.
    """

    label = traitlets.Unicode(None, allow_none=True)
    side = traitlets.Unicode("above")
    threshold = traitlets.Float(None, allow_none=True)

    def __init__(self, matches: pd.DataFrame, selection: Selection | None = None, *,
                 label: str | None = None, side: str = "above"):
        import plotly.graph_objects as go

        from .._validation import check_option

        check_option(side, "side", "PrecisionRecallCurve", ["above", "below"])
        self.selection = selection if selection is not None else Selection()
        self.matches = matches
        self._classes = self._classes_of(matches)
        if label is not None and str(label) not in self._classes:
            raise ValueError(f"The 'label' parameter of PrecisionRecallCurve must be one of "
                             f"the classes {self._classes} or None. Got {label!r} instead.")
        self.class_picker = w.Dropdown(options=[ALL, *self._classes],
                                       value=ALL if label is None else str(label),
                                       description="class", layout=w.Layout(width="200px"))
        self.class_picker.add_class("wb-pr-class")
        self.side_toggle = w.ToggleButtons(options=_SIDES, value=side,
                                           description="click selects",
                                           style={"button_width": "150px"})
        self.side_toggle.add_class("wb-pr-side")
        self.summary = w.HTML("")
        self.summary.add_class("wb-pr-summary")
        self.curve = self._curve(label)
        self.figure = figure_widget(
            data=[go.Scatter(**self._points(), mode="lines+markers", name="curve",
                             line={"color": "#1565c0", "width": 2},
                             marker={"size": 5, "color": "#1565c0"},
                             hovertemplate="confidence ≥ %{customdata:.3f}<br>precision "
                                           "%{y:.3f}, recall %{x:.3f}<extra></extra>"),
                  go.Scatter(x=[], y=[], mode="markers", name="threshold",
                             marker={"size": 14, "color": "rgba(0,0,0,0)",
                                     "line": {"color": "#d62728", "width": 3}},
                             hoverinfo="skip")],
            layout={"xaxis": {"title": {"text": "recall"}, "range": [0, 1.02]},
                    "yaxis": {"title": {"text": "precision"}, "range": [0, 1.02]},
                    "width": 420, "height": 340, "showlegend": False,
                    "margin": {"l": 55, "r": 10, "t": 30, "b": 45}, "clickmode": "event",
                    "title": {"text": self._title(), "font": {"size": 13}}})
        hide_modebar(self.figure)
        self.figure.data[0].on_click(self._on_click)
        sync_figure_state(self.figure)
        super().__init__([w.HBox([self.class_picker, self.side_toggle],
                                 layout=w.Layout(flex_flow="row wrap")),
                          self._make_error_box(), self.figure, self.summary])
        self.add_class("wb-pr-curve")
        self.label = label
        self.side = side
        w.link((self.class_picker, "value"), (self, "label"),
               transform=(lambda v: None if v == ALL else v,
                          lambda v: ALL if v is None else v))
        w.link((self.side_toggle, "value"), (self, "side"))
        self.selection.observe(self._on_selection, names=["ids", "box_ids"])
        self._render_summary()

    # ---- state ------------------------------------------------------------------------

    @staticmethod
    def _classes_of(matches: pd.DataFrame) -> list[str]:
        label = matches["label"]
        if isinstance(label.dtype, pd.CategoricalDtype):
            return [str(c) for c in label.cat.categories]
        return sorted(set(label.dropna().astype(str)) | set(matches["predicted"].dropna()
                                                             .astype(str)))

    def _curve(self, label: str | None) -> pd.DataFrame:
        full = precision_recall_curve(self.matches, label)
        curve = full.iloc[_thin(len(full))].reset_index(drop=True)
        curve.attrs = dict(full.attrs)
        return curve

    def set_matches(self, matches: pd.DataFrame) -> None:
        """Show another run or IoU (a new matches frame); the picked threshold is dropped."""
        self.matches = matches
        self._classes = self._classes_of(matches)
        options = [ALL, *self._classes]
        if list(self.class_picker.options) != options:
            keep = self.class_picker.value if self.class_picker.value in options else ALL
            self.class_picker.options = options
            self.class_picker.value = keep
        self._refresh()

    def _refresh(self) -> None:
        self.curve = self._curve(self.label)
        self.threshold = None
        self._render()

    @traitlets.observe("label")
    def _on_label(self, change) -> None:
        if getattr(self, "figure", None) is not None and change["old"] != change["new"]:
            self._safe(self._refresh)

    @traitlets.observe("side")
    def _on_side(self, change) -> None:
        if getattr(self, "figure", None) is not None and self.threshold is not None \
                and change["old"] != change["new"]:
            self._safe(lambda: self.select_threshold(self.threshold))

    def select_threshold(self, threshold: float, side: str | None = None) -> list[str]:
        """Select the predicted boxes above/below ``threshold`` (what a click does).

        Parameters
        ----------
        threshold : float
            A confidence threshold (a point of the curve).
        side : {'above', 'below'}, default=None
            None: the toggle's value (:attr:`side`).

        Returns
        -------
        list of str
            The selected ``pred_id`` values.
        """
        if side is not None and side != self.side:
            self.side = side  # re-selects through _on_side when a threshold is set
        chosen = boxes_at_threshold(self.matches, threshold, label=self.label, side=self.side)
        self.threshold = float(threshold)
        pred_ids = chosen["pred_id"].astype(str).tolist()
        items = list(dict.fromkeys(chosen["item_id"].astype(str).tolist()))
        what = "all classes" if self.label is None else f"class {self.label}"
        sign = "≥" if self.side == "above" else "<"
        self.selection.select(items, box_ids=pred_ids, origin=self,
                              description=f"predictions of {what} with confidence {sign} "
                                          f"{threshold:.3f}")
        self._render_marker()
        self._render_summary()
        return pred_ids

    @guarded
    def _on_click(self, trace, points, state=None) -> None:
        """Adapter: plotly click on the curve -> threshold -> selection."""
        inds = point_indices(points)
        if inds and 0 <= inds[0] < len(self.curve):
            self.select_threshold(float(self.curve["threshold"].iloc[inds[0]]))

    @guarded
    def _on_selection(self, change) -> None:
        if self.selection.origin is not self and self.threshold is not None:
            self.threshold = None
            self._render_marker()
            self._render_summary()

    # ---- view -------------------------------------------------------------------------

    def _points(self) -> dict:
        c = self.curve
        return {"x": c["recall"].tolist(), "y": c["precision"].tolist(),
                "customdata": c["threshold"].tolist()}

    def _title(self) -> str:
        what = ALL if self.label is None else f"class {plot_text(self.label)}"
        return f"precision-recall, {what} ({self.curve.attrs.get('n_boxes', 0):,} boxes)"

    def _marker(self) -> dict:
        if self.threshold is None:
            return {"x": [], "y": []}
        row = self.curve.loc[np.isclose(self.curve["threshold"], self.threshold)]
        if not len(row):
            return {"x": [], "y": []}
        return {"x": [float(row["recall"].iloc[0])], "y": [float(row["precision"].iloc[0])]}

    def _render_marker(self) -> None:
        self.figure.data[1].update(self._marker())
        sync_figure_state(self.figure)

    def _render(self) -> None:
        with self.figure.batch_update():
            self.figure.data[0].update(self._points())
            self.figure.data[1].update(self._marker())
            self.figure.layout.title.text = self._title()
        sync_figure_state(self.figure)
        self._render_summary()

    def _render_summary(self) -> None:
        if self.threshold is None:
            self.summary.value = ("<span style='color:#555;font-size:12px'>Click a point of "
                                  "the curve: its confidence threshold selects the predicted "
                                  "boxes above it (or below it, with the toggle).</span>")
            return
        row = self.curve.loc[np.isclose(self.curve["threshold"], self.threshold)]
        stats = ""
        if len(row):
            r = row.iloc[0]
            stats = (f": precision {percent(r['precision'])}, recall {percent(r['recall'])}, "
                     f"{int(r['n_predictions']):,} predictions kept")
        n = len(self.selection.box_ids or ())
        self.summary.value = (f"<span class='wb-pr-threshold'>threshold <b>"
                              f"{self.threshold:.3f}</b>{esc(stats)}; {n:,} predicted boxes "
                              f"selected ({esc(self.side)})</span>")

    def __repr__(self) -> str:
        return (f"PrecisionRecallCurve(label={self.label!r}, {len(self.curve)} points, "
                f"threshold={self.threshold})")

