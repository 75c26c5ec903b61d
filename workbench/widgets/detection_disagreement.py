"""DetectionDisagreementExplorer: where annotators' boxes disagree, in one board.

``wb.widgets.DisagreementExplorer(project)`` builds this for a project whose ``task`` is
``"detection"``. Every view is a thin view over :mod:`workbench.detection.agreement`
(reached through :func:`workbench.agreement_summary`, :func:`workbench.pairwise_agreement`,
:func:`workbench.match_annotators`, :func:`workbench.annotator_quality`,
:func:`workbench.confused_pairs`, :func:`workbench.agreement_by`) and every click selects
images *and* boxes (``selection.ids`` and ``selection.box_ids``), which the gallery draws
with every annotator's boxes in their own colour.
"""

from __future__ import annotations

import warnings
from typing import Any

import ipywidgets as w
import pandas as pd

from .._format import MISSING
from ..agreement import agreement_by, agreement_summary
from ..selection import Selection
from ._adapters import StatusMixin, esc
from ._detection_data import DetectionData
from .agreement_by_slice import AgreementBySliceMixin, mark_lowest
from .agreement_matrix import DetectionAgreementMatrix
from .annotator_table import DetectionAnnotatorTable
from .confused_pairs import DetectionConfusedPairs
from .detection_issue_list import DetectionIssueList
from .gallery import ItemGallery

__all__ = ["DetectionDisagreementExplorer", "KPIS"]

#: The numbers at the top: (key of agreement_summary, title, what it means).
KPIS = (
    ("detection_f1", "detection F1",
     "two annotators draw the same objects (boxes matched one to one at the IoU threshold, "
     "any class): 1 = every box has a partner"),
    ("mean_cohen_kappa", "class kappa",
     "Cohen's kappa of the classes of matched boxes, mean over annotator pairs "
     "(1 = same class always, 0 = chance)"),
    ("mean_iou", "mean IoU",
     "how tightly matched boxes overlap (1 = the same box)"),
    ("krippendorff_alpha", "Krippendorff's alpha",
     "agreement on where the objects are, corrected for chance, distance 1 - IoU "
     "(1 = perfect, 0 = chance)"),
)

HELP = """<ol style='margin:4px 0;padding-left:20px;font-size:13px;line-height:1.45'>
<li><b>Annotators</b>: the annotator x annotator heatmap of detection F1 (or class kappa,
mean IoU, Krippendorff's alpha). Click a cell for the images where those two annotators
disagree: a box one drew and the other did not, or the same object given another class;
those boxes are highlighted. The table scores each annotator against the consensus boxes:
miss rate, extra boxes, tightness (mean IoU) and class accuracy; pick what a click selects
(missed objects, extra, loose or wrong-class boxes) and click a name.</li>
<li><b>Confused classes</b>: the classes two annotators gave the same object. Click a cell
(or a pair in the list) for those boxes; clear examples belong in the labeling guide.</li>
<li><b>Box errors</b>: suspected errors of the dataset's boxes, a box missing, badly
placed or of the wrong class (cleanlab with the model's detections and the annotators'
consensus); click one to see it.</li>
<li><b>By slice</b>: detection F1, class agreement and mean IoU per camera, site,
... with 95% bootstrap intervals; a click selects the slice's images where annotators
disagree.</li>
<li>The <b>gallery</b> draws every annotator's boxes in their own colour (legend above the
cards), the selected ones highlighted, and the dataset's boxes; the model's detections
are hidden (switch <i>predictions</i> on to draw them). Tag the images (or the selected
boxes) in the tag panel, or open them in FiftyOne.</li></ol>"""

def _fmt(x: Any) -> str:
    return MISSING if x is None or pd.isna(x) else f"{x:.3f}"


def _with_ci(row: pd.Series, name: str) -> str:
    return f"{_fmt(row[name])} [{_fmt(row[f'{name}_low'])}, {_fmt(row[f'{name}_high'])}]"


class DetectionDisagreementExplorer(AgreementBySliceMixin, StatusMixin, w.VBox):
    """Where annotators' boxes disagree, who is reliable, and which boxes look wrong.

    Parameters
    ----------
    project : DetectionProject
        A project with ``task == "detection"``; the views need its ``annotations`` (boxes
        of at least two annotators), the suspected box errors its predictions.
    selection : Selection, default=None
        The shared selection; a new one when None.
    run : str, default=None
        The model run of the suspected box errors and of the detections the gallery can
        draw (hidden at first); None: the project's default run.
    slice_by : str, default=None
        Image metadata column of the agreement-by-slice tab (None: the first one).
    iou : float, default=0.5
        Minimum IoU of two annotators' boxes matched as the same object.

    Attributes
    ----------
    summary : dict
        :func:`workbench.agreement_summary` of the boxes (empty without two annotators).
    matches : DataFrame
        :func:`workbench.match_annotators` of the boxes (shared by the heatmap and the
        slice table).
    matrix : DetectionAgreementMatrix
    annotators : DetectionAnnotatorTable
    pairs : DetectionConfusedPairs
    data : DetectionData
        The frames shared by the gallery and the suspected box errors.
    issues : DetectionIssueList
        The suspected box errors list.
    slice_frame : DataFrame
        :func:`workbench.agreement_by` of the slice column picked.
    gallery : ItemGallery
    tag_panel : TagPanel
    fiftyone_button : FiftyOneButton or None
    status : ipywidgets.HTML
        What is selected (CSS class ``wb-status``).

    Examples
    --------
    >>> project = wb.open_project("data/sample-detection")  # doctest: +SKIP
    >>> app = wb.widgets.DisagreementExplorer(project)  # doctest: +SKIP
    """

    _SLICE_HEADERS = ["value", "images", "detection F1 [95% CI]", "class agreement [95% CI]",
                      "mean IoU [95% CI]"]
    _SLICE_WIDTHS = "minmax(120px, 220px) 60px 190px 190px 190px"
    _SLICE_METRIC = "detection_f1"
    _SLICE_EMPTY = "<i>No image metadata column, or fewer than two annotators.</i>"
    _IDLE_STATUS = ("No selection: click a cell, an annotator, a class pair, a suspected box "
                    "error or a slice.")
    _NOUN = "image"
    _COUNT_BOXES = True

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 run: str | None = None, slice_by: str | None = None, iou: float = 0.5):
        self.iou = float(iou)
        self._start_board(project, selection)
        self.add_class("wb-detection-disagreement")
        self._finish_board(run, slice_by, observe=["ids", "box_ids", "description"])

    # ---- build ------------------------------------------------------------------------
    def _build(self, run, slice_by) -> None:
        project, sel = self.project, self.selection
        ann = project.annotations
        classes = [str(c) for c in project.classes] or None
        self.summary: dict = {}
        self.matches = None
        n_annotators = ann["annotator"].nunique() if len(ann) else 0
        if n_annotators >= 2:
            from ..detection.agreement import match_annotators

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.summary = agreement_summary(ann, classes=classes, iou=self.iou)
                self.matches = match_annotators(ann, iou=self.iou, classes=classes)
            self.notes += [str(c.message) for c in caught]
        elif len(ann):
            self.notes.append(f"Only one annotator ({ann['annotator'].iloc[0]}) drew boxes: "
                              "agreement needs two. The suspected box errors are in their "
                              "tab.")
        else:
            self.notes.append("This project has no annotations (boxes drawn by annotators), "
                              "so there is no agreement to show. The suspected box errors "
                              "are in their tab.")
        self.header.value = self._header_html()

        self.matrix = DetectionAgreementMatrix(project, sel, iou=self.iou,
                                               matches=self.matches)
        self.annotators = DetectionAnnotatorTable(project, sel, iou=self.iou)
        self.annotators.layout.flex = "1 1 560px"  # beside the heatmap when there is room
        self.annotators.layout.min_width = "0"
        self.matrix.layout.flex = "0 0 auto"
        self.pairs = DetectionConfusedPairs(project, sel, iou=self.iou)
        self.data = DetectionData(project, iou=self.iou)
        self.issues = DetectionIssueList(project, sel, data=self.data, run=run)
        columns = list(project.metadata_columns)
        self._build_slices((slice_by if slice_by in columns else columns[0])
                           if columns else None)
        self.tabs = self._build_tabs(["Annotators", "Confused classes", "Box errors",
                                      "By slice"])

        self.gallery = ItemGallery(project, sel, run=run, detection=self.data,
                                   show_annotations=True)
        self.gallery.show_predictions = False  # the annotators' boxes are the subject here
        status_row, actions = self._selection_tools()
        self.help = w.Accordion(children=[w.HTML(HELP)], selected_index=None)
        self.help.set_title(0, "how to use")
        self.help.add_class("wb-help")
        self.children = [self.error_box, self.header, self.help, self.tabs, status_row,
                         actions, self.gallery]

    def _header_html(self) -> str:
        s = self.summary
        name = esc(getattr(self.project, "name", "") or "")
        title = f"<h3 style='margin:4px 0'>Box agreement between annotators: {name}</h3>"
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        notes = f"<ul style='color:#a60'>{notes}</ul>" if notes else ""
        if not s:
            return f"{title}{notes}"
        cards = "".join(
            f"<div class='wb-kpi' data-kpi='{key}' title='{esc(tip)}' style='display:inline-"
            "block;min-width:130px;margin:2px 12px 2px 0;padding:4px 10px;border:1px solid "
            f"#ddd;border-radius:4px'><div style='font-size:11px;color:#555'>{esc(label)}"
            f"</div><div style='font-size:20px;font-weight:600'>{_fmt(s.get(key))}</div></div>"
            for key, label, tip in KPIS)
        return (f"{title}<div class='wb-kpis'>{cards}</div>"
                f"<span>{s['n_items']:,} images, {s['n_annotators']} annotators, "
                f"{s['n_boxes']:,} boxes; boxes of two annotators are the same object when "
                f"their IoU is at least {s['iou_threshold']:.2f} (matched one to one). "
                f"Hover a number for what it means; 1 is perfect.</span>{notes}")

    # ---- agreement by slice (hooks of AgreementBySliceMixin) -----------------------------
    def _slice_agreement(self, col: str) -> pd.DataFrame | None:
        if self.matches is None:
            return None
        return agreement_by(self.project.annotations, self.project, col, n_boot=200,
                            classes=[str(c) for c in self.project.classes] or None,
                            iou=self.iou)

    def _slice_caption(self, col: str, worst: pd.Series | None) -> str:
        lowest = ""
        if worst is not None:
            lowest = (f" Lowest detection F1: <b>{esc(col)}={esc(worst[col])}</b> "
                      f"({_fmt(worst['detection_f1'])}): look there first.")
        return (
            f"<span>Box agreement of the annotators per <b>{esc(col)}</b>: detection F1, "
            "class agreement of matched boxes and their mean IoU, pooled over every pair "
            "of annotators, with 95% intervals (bootstrap over images, 200 resamples, "
            f"seeded).{lowest} Click a value to see its images where annotators "
            "disagree.</span>")

    def _slice_row_content(self, row: pd.Series, col: str,
                           lowest: bool) -> tuple[str, str, list[str]]:
        return (str(row[col]),
                f"select the images of {col}={row[col]} where annotators' boxes disagree",
                [f"{row['n_items']}", mark_lowest(_with_ci(row, "detection_f1"), lowest),
                 _with_ci(row, "class_agreement"), _with_ci(row, "mean_iou")])

    def slice_boxes(self, k: int) -> tuple[list[str], list[str]]:
        """``(images, boxes)`` of row ``k`` where two annotators' boxes disagree.

        The images of the slice with a :func:`workbench.match_annotators` outcome other
        than ``agree``, and the boxes of those outcomes.
        """
        in_slice = self._slice_items(k)[2]
        m = self.matches
        bad = m[(m["outcome"].astype(str) != "agree")
                & m["item_id"].astype(str).isin(in_slice)]
        boxes = pd.concat([bad["box_id_a"], bad["box_id_b"]]).dropna().astype(str)
        return sorted(set(bad["item_id"].astype(str))), sorted(set(boxes))

    def _slice_selection(self, k: int) -> tuple[list[str], dict, str]:
        col, value, _ = self._slice_items(k)
        ids, boxes = self.slice_boxes(k)
        return ids, {"box_ids": boxes}, f"{col}={value}, annotators' boxes disagree"

    def __repr__(self) -> str:
        return f"DetectionDisagreementExplorer({self.project!r}, {self.selection!r})"
