"""DetectionErrorExplorer: where does the detector fail? The ErrorExplorer of a detection project.

``wb.widgets.ErrorExplorer(project)`` builds this for a project whose ``task`` is
``"detection"``. One shared :class:`~workbench.selection.Selection` (images in ``ids``,
boxes in ``box_ids``) links the confusion matrix with ``background``, the AP table and
precision-recall curve, the slice tables on misses and false detections, the run
comparison, the gallery (boxes drawn in the kernel), the tag panel and the FiftyOne button.
The IoU control re-matches every view at the chosen threshold.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import traitlets

from ..selection import Selection
from ._adapters import StatusMixin, esc, fiftyone_button, guarded
from ._detection_data import DetectionData
from .confusion import ConfusionMatrix
from .detection_ap_table import APTable
from .detection_pr_curve import PrecisionRecallCurve
from .detection_slices import ObjectSliceTable
from .gallery import ItemGallery
from .run_comparison import RunComparison
from .tag_panel import TagPanel

__all__ = ["DetectionErrorExplorer", "IOU_OPTIONS"]

#: The IoU thresholds offered (COCO's 0.50:0.05:0.95).
IOU_OPTIONS = [round(0.5 + 0.05 * i, 2) for i in range(10)]

HELP = """<ol style='margin:4px 0;padding-left:20px;font-size:13px;line-height:1.45'>
<li><b>Pick a run and the IoU threshold</b> (how much a predicted box must overlap a
reference box to count as found, 0.50 to 0.95); every view re-matches.</li>
<li><b>The confusion matrix</b> has a <code>background</code> column (boxes the detector
<b>missed</b>) and a <code>background</code> row (<b>false detections</b>). Click a cell to
select those boxes and their images.</li>
<li><b>AP per class</b>: COCO's AP, precision and recall of each class; click a class for
its <b>precision-recall curve</b>, then click a point of the curve: its confidence threshold
selects the predicted boxes above it (or below it, with the toggle).</li>
<li><b>Missed boxes / false detections</b>: the miss rate (or false-detection rate) per
camera, site, box size... and the worst combinations found automatically; a row selects its
missed boxes (or false detections).</li>
<li>The <b>gallery</b> draws the boxes on each image: the dataset's boxes solid green, the
predictions dashed orange, the selected boxes highlighted in yellow (hover a box for its
outcome and confidence). Hide either layer or low-confidence predictions, or show
<b>crops</b> of the selected boxes. Tag the images in the tag panel, or open the selected
boxes in FiftyOne.</li></ol>"""


class DetectionErrorExplorer(StatusMixin, w.VBox):
    """Where does the detector fail? One app over one shared selection of images and boxes.

    Parameters
    ----------
    project : DetectionProject
        A project with ``task == "detection"`` and at least one prediction run.
    selection : Selection, default=None
        The shared selection; a new one when None.
    run : str, default=None
        The run shown first (None: the project's default run).
    iou : float, default=0.5
        The IoU threshold of a match, one of :data:`IOU_OPTIONS`.

    Attributes
    ----------
    data : DetectionData
        The frames the widgets share (matches per run and IoU).
    matches : DataFrame
        :func:`workbench.match_detections` of the current run at the current IoU.
    confusion : ConfusionMatrix
        With a ``background`` row (false detections) and column (misses).
    ap_table : APTable
    pr_curve : PrecisionRecallCurve
    misses, false_detections : ObjectSliceTable
        Slice tables on ``is_fn`` and ``is_fp``.
    runs : RunComparison or None
        None when the project has a single run.
    gallery : ItemGallery
    tags : TagPanel
    fiftyone : FiftyOneButton or None
    status : ipywidgets.HTML
        What is selected (CSS class ``wb-status``).

    Examples
    --------
    >>> app = wb.widgets.ErrorExplorer(wb.open_project("data/sample-detection"))  # doctest: +SKIP
    """

    run = traitlets.Unicode(None, allow_none=True)
    iou = traitlets.Float(0.5)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 run: str | None = None, iou: float = 0.5):
        if round(float(iou), 2) not in IOU_OPTIONS:
            raise ValueError(f"The 'iou' parameter of ErrorExplorer must be one of "
                             f"{IOU_OPTIONS}. Got {iou!r} instead.")
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.data = DetectionData(project, iou=round(float(iou), 2))
        runs = list(project.runs or [])
        run = run if run is not None else self.data.default_run()
        self.status = w.HTML("")
        self.status.add_class("wb-status")
        self.notes = w.HTML("")
        self.notes.add_class("wb-notes")
        self.gallery = ItemGallery(project, self.selection, run=run, detection=self.data)
        self.tags = TagPanel(project, self.selection,
                             context={"source": "ErrorExplorer", "run": run})
        if not runs:
            self._build_without_runs()
            return
        self.matches = self.data.matches(run)
        self.run_picker = w.Dropdown(options=runs, value=run, description="run",
                                     layout=w.Layout(width="240px"))
        self.run_picker.add_class("wb-run-picker")
        self.iou_picker = w.Dropdown(options=[(f"{v:.2f}", v) for v in IOU_OPTIONS],
                                     value=self.data.iou, description="IoU ≥",
                                     tooltip="IoU threshold of a match: every view re-matches",
                                     layout=w.Layout(width="150px"))
        self.iou_picker.add_class("wb-iou-picker")
        self.clear_button = w.Button(description="clear selection",
                                     layout=w.Layout(width="140px"))
        self.clear_button.add_class("wb-clear")
        self.clear_button.on_click(lambda _b: self.selection.clear(origin=self))
        self.confusion = ConfusionMatrix(self.matches, self.selection, hide_diagonal=False)
        self.ap_table = APTable(project, run=run, iou=self.data.iou)
        self.pr_curve = PrecisionRecallCurve(self.matches, self.selection)
        w.link((self.ap_table, "label"), (self.pr_curve, "label"))
        self.misses = ObjectSliceTable(self.matches, self.selection, target="is_fn")
        self.false_detections = ObjectSliceTable(self.matches, self.selection, target="is_fp")
        self.runs = RunComparison(project, self.selection) if len(runs) >= 2 else None
        self.fiftyone, why = fiftyone_button(project, self.selection)
        if why:
            self.notes.value = f"<span style='color:#777;font-size:11px'>{esc(why)}</span>"
        super().__init__(self._layout())
        self.add_class("wb-error-explorer")
        self.add_class("wb-detection-explorer")
        self.run, self.iou = run, self.data.iou
        w.link((self.run_picker, "value"), (self, "run"))
        w.link((self.iou_picker, "value"), (self, "iou"))
        self.selection.observe(self._on_selection, names=["ids", "box_ids", "description"])
        self._render_status()
        self.add_class("wb-ready")

    def _layout(self) -> list:
        ap = w.HBox([self.ap_table, self.pr_curve], layout=w.Layout(
            flex_flow="row wrap", align_items="flex-start", grid_gap="8px 16px"))
        ap.add_class("wb-ap-tab")
        tabs = [("AP per class", ap), ("missed boxes", self.misses),
                ("false detections", self.false_detections)]
        if self.runs is not None:
            tabs.append(("compare runs", self.runs))
        tab = w.Tab(children=[t[1] for t in tabs],
                    layout=w.Layout(flex="1 1 560px", min_width="0"))
        for i, (title, _child) in enumerate(tabs):
            tab.set_title(i, title)
        tab.add_class("wb-error-tabs")
        self.confusion.layout.flex = "0 0 auto"
        top = w.HBox([self.confusion, tab], layout=w.Layout(
            flex_flow="row wrap", align_items="flex-start", grid_gap="8px 16px"))
        header = w.HBox([self.run_picker, self.iou_picker, self.clear_button, self.status],
                        layout=w.Layout(align_items="center", grid_gap="8px"))
        title = w.HTML(f"<h3 style='margin:4px 0'>Detection errors: "
                       f"{esc(self.project.name)}</h3>")
        self.help = w.Accordion(children=[w.HTML(HELP)], selected_index=None)
        self.help.set_title(0, "how to use")
        self.help.add_class("wb-help")
        side = [x for x in (self.tags, self.fiftyone) if x is not None]
        actions = w.HBox(side, layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                               grid_gap="4px 32px"))
        actions.add_class("wb-actions")
        bottom = w.VBox([actions, self.notes, self.gallery], layout=w.Layout(width="100%"))
        return [title, self.help, header, self._make_error_box(), top, bottom]

    def _build_without_runs(self) -> None:
        """No predictions: say so; the gallery (reference boxes) and tags stay usable."""
        self.matches = None
        self.confusion = self.ap_table = self.pr_curve = None
        self.misses = self.false_detections = self.runs = self.fiftyone = None
        self.status.value = (
            f"Project {esc(self.project.name)} has no detections, so there are no model "
            "errors to show. Add a predictions file (item_id, run, label, x, y, w, h, "
            "confidence) to the project.")
        w.VBox.__init__(self, [self.status, self._make_error_box(),
                               w.HBox([self.gallery, w.VBox([self.tags, self.notes])])])
        self.add_class("wb-error-explorer")
        self.add_class("wb-detection-explorer")
        self.add_class("wb-ready")

    # ---- state ------------------------------------------------------------------------

    @traitlets.observe("run", "iou")
    def _on_run_or_iou(self, change) -> None:
        if change["old"] is None or change["new"] == change["old"] or \
                getattr(self, "confusion", None) is None:
            return
        try:
            self.set_run(self.run, iou=self.iou)
            self.clear_error()
        except Exception as exc:
            self.show_error(exc)

    def set_run(self, run: str, *, iou: float | None = None) -> None:
        """Re-match ``run`` (at ``iou``, default the current one) and update every view."""
        if iou is not None:
            self.data.iou = round(float(iou), 2)
        self.matches = self.data.matches(run)
        self.confusion.set_errors(self.matches)
        self.ap_table.set_run(run, self.data.iou)
        self.pr_curve.set_matches(self.matches)
        self.misses.set_errors(self.matches)
        self.false_detections.set_errors(self.matches)
        self.tags.context = {**self.tags.context, "run": run, "iou": self.data.iou}
        if self.gallery.run != run:
            self.gallery.run = run  # re-renders with the new run's boxes
        else:
            self.gallery.render()  # the outcomes at the new IoU
        if self.run != run:
            self.run = run
        if self.iou != self.data.iou:
            self.iou = self.data.iou
        self._render_status()

    @guarded
    def _on_selection(self, change) -> None:
        self._render_status()

    def _render_status(self) -> None:
        if self.matches is None:
            return
        ids = self.selection.ids
        if ids is None:
            n_boxes = int(self.matches["box_id"].notna().sum())
            self.status.value = (f"No selection: {n_boxes:,} reference boxes, run "
                                 f"<b>{esc(self.run)}</b> matched at IoU "
                                 f"{self.data.iou:.2f}.")
            return
        what = self.selection.description
        boxes = self.selection.box_ids
        count = f"{len(boxes):,} boxes on " if boxes is not None else ""
        self.status.value = f"{count}{len(ids):,} images" + (f": {esc(what)}" if what else "")

    def __repr__(self) -> str:
        return (f"DetectionErrorExplorer(run={self.run!r}, iou={self.iou}, "
                f"{self.selection!r})")
