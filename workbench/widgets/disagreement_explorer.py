"""DisagreementExplorer: annotator disagreements and suspected label errors, in one board.

``DisagreementExplorer(project)`` detects the project's task: a detection project gets a
:class:`~workbench.widgets.detection_disagreement.DetectionDisagreementExplorer` (box
agreement, images and boxes selected, every annotator's boxes drawn).
"""

from __future__ import annotations

import warnings
from typing import Any

import ipywidgets as w
import pandas as pd

from .. import results
from .._format import percent
from ..selection import Selection
from ._adapters import StatusMixin, esc
from .agreement_by_slice import AgreementBySliceMixin, mark_lowest
from .agreement_matrix import AgreementMatrix
from .annotator_table import AnnotatorTable
from .confused_pairs import ConfusedPairs
from .embedding_map import MapPanel, no_embeddings_note
from .gallery import ItemGallery
from .label_issue_list import LabelIssueList

__all__ = ["DisagreementExplorer"]


def _fmt(x: Any) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.3f}"


class DisagreementExplorer(AgreementBySliceMixin, StatusMixin, w.VBox):
    """Where annotators disagree, who is reliable, and which labels look wrong.

    Composes :class:`AgreementMatrix`, :class:`AnnotatorTable`, :class:`ConfusedPairs`,
    :class:`LabelIssueList` and an agreement-per-slice table, all linked by one
    :class:`~workbench.selection.Selection`; the selected items appear in the
    ``ItemGallery`` (with every annotator's label), where they can be tagged with the
    ``TagPanel`` or opened in FiftyOne.

    Parameters
    ----------
    project : Project
        The project (annotations, items, and predictions with probabilities for the label
        issues).
    selection : Selection, default=None
        The shared selection; a new one when None.
    run : str, default=None
        Model run for the label issues (None: the project's default run).
    slice_by : str, default=None
        Metadata column of the agreement-per-slice tab (None: ``batch`` when present, else
        the first metadata column).

    Attributes
    ----------
    matrix, annotators, pairs, issues : widgets
        The linked views.
    map_panel : MapPanel or None
        The "Map" tab (an :class:`EmbeddingMap` coloured by annotator disagreement, built
        when the tab is opened); None when the project has no embeddings (the header's notes
        say how to get them).
    gallery : ItemGallery
    tag_panel : TagPanel
    fiftyone_button : FiftyOneButton or None
        None when FiftyOne is not installed (the header's notes say how to install it).
    status : ipywidgets.HTML
        The status line (CSS class ``wb-status``).
    summary : dict
        :func:`workbench.agreement_summary` of the annotations (empty without them).

    Notes
    -----
    For a project whose ``task`` is ``"detection"``, ``DisagreementExplorer(project, ...)``
    returns a :class:`~workbench.widgets.detection_disagreement.DetectionDisagreementExplorer`
    (same arguments, plus ``iou``): detection F1, class kappa, mean IoU and Krippendorff's
    alpha at the top, the annotator x annotator F1 heatmap, confused classes of matched
    boxes, the annotator table (miss rate, extra boxes, tightness), suspected box errors
    and agreement per slice; every click selects images and boxes, which the gallery draws
    with every annotator's boxes in their own colour.
    """

    _SLICE_HEADERS = ["value", "items", "agreement", "Fleiss' kappa [95% CI]", "alpha"]
    _SLICE_WIDTHS = "minmax(120px, 220px) 60px 90px 200px 70px"
    _SLICE_METRIC = "fleiss_kappa"
    _SLICE_EMPTY = "<i>No metadata column or no annotations.</i>"
    _IDLE_STATUS = "No selection: click a cell, an annotator or a suspected label error."

    def __new__(cls, project: Any = None, *args: Any, **kwargs: Any):
        """A :class:`DetectionDisagreementExplorer` for a detection project, else this."""
        if cls is DisagreementExplorer and getattr(project, "task", None) == "detection":
            from .detection_disagreement import DetectionDisagreementExplorer

            return DetectionDisagreementExplorer(project, *args, **kwargs)
        return super().__new__(cls, project, *args, **kwargs)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 run: str | None = None, slice_by: str | None = None):
        self._start_board(project, selection)
        self._finish_board(run, slice_by, observe=["ids"])

    # ---- build ------------------------------------------------------------------------
    def _build(self, run, slice_by) -> None:
        project, sel = self.project, self.selection
        ann = project.annotations
        self.summary: dict = {}
        if len(ann):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    self.summary = results.agreement_summary(project)  # cached
                except Exception as exc:  # e.g. no item with two labels
                    self.notes.append(str(exc))
            self.notes += [str(c.message) for c in caught]
        else:
            self.notes.append("This project has no annotations: only label issues are shown.")
        self.header.value = self._header_html()

        self.matrix = AgreementMatrix(project, sel)
        self.annotators = AnnotatorTable(project, sel)
        self.annotators.layout.flex = "1 1 420px"  # beside the matrix when there is room
        self.annotators.layout.min_width = "0"
        self.matrix.layout.flex = "0 0 auto"
        self.pairs = ConfusedPairs(project, sel)
        self.issues = LabelIssueList(project, sel, run=run)
        columns = list(project.metadata_columns)
        self._build_slices((slice_by or ("batch" if "batch" in columns else columns[0]))
                           if columns else None)

        self.tabs = self._build_tabs(["Annotators", "Confused labels", "Label issues",
                                      "Agreement by slice"])
        self.map_panel = (MapPanel(project, sel, run=run, color_by=(
            "disagreement" if len(ann) else "label"))
            if getattr(project, "has_embeddings", False) else None)
        if self.map_panel is not None:
            index = len(self.tabs.children)
            self.tabs.children = (*self.tabs.children, self.map_panel)
            self.tabs.set_title(index, "Map")
            self.map_panel.follow(self.tabs, index)
        else:
            self.notes.append(no_embeddings_note(project, html=False))
            self.header.value = self._header_html()

        self.gallery = ItemGallery(project, sel)
        status_row, actions = self._selection_tools()
        self.children = [self.error_box, self.header, self.tabs, status_row, actions,
                         self.gallery]

    def _header_html(self) -> str:
        s = self.summary
        name = esc(getattr(self.project, "name", "") or "")
        title = (f"<h3 style='margin:4px 0'>Annotator agreement: {name}</h3>" if name
                 else "<h3 style='margin:4px 0'>Annotator agreement</h3>")
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        notes = f"<ul style='color:#a60'>{notes}</ul>" if notes else ""
        if not s:
            return f"{title}{notes}"
        return (
            f"{title}"
            f"<span>{s['n_items']:,} items, {s['n_annotators']} annotators, "
            f"{s['n_labels']:,} labels. Two annotators give an item the same label "
            f"<b>{percent(s['percent_agreement'])}</b> of the time. Corrected for chance "
            "(1 = perfect, 0 = chance): Fleiss' kappa "
            f"{_fmt(s['fleiss_kappa'])} · Krippendorff's alpha {_fmt(s['krippendorff_alpha'])}"
            f" · mean Cohen's kappa {_fmt(s['mean_cohen_kappa'])}.</span>{notes}")

    # ---- agreement by slice (hooks of AgreementBySliceMixin) -----------------------------
    def _slice_agreement(self, col: str) -> pd.DataFrame | None:
        ann = self.project.annotations
        return results.agreement_by(self.project, col, n_boot=200) if len(ann) else None

    def _slice_caption(self, col: str, worst: pd.Series | None) -> str:
        lowest = ""
        if worst is not None:
            lowest = (f" Lowest: <b>{esc(col)}={esc(worst[col])}</b> (kappa "
                      f"{_fmt(worst['fleiss_kappa'])}): look there first.")
        return (
            f"<span>Agreement of the annotators per <b>{esc(col)}</b>. <i>agreement</i>: the "
            "share of annotator pairs who gave an item the same label; <i>Fleiss' kappa</i> "
            "and <i>alpha</i>: the same corrected for chance (1 = perfect, 0 = no better "
            "than chance), with a 95% interval (bootstrap over items, 200 resamples, "
            f"seeded).{lowest} Click a value to see its items where annotators "
            "disagree.</span>")

    def _slice_row_content(self, row: pd.Series, col: str,
                           lowest: bool) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of a row of the agreement-by-slice table."""
        kappa = mark_lowest(_fmt(row["fleiss_kappa"]), lowest)
        return (str(row[col]), f"select the items of {col}={row[col]} where annotators disagree",
                [f"{row['n_items']}", _fmt(row["percent_agreement"]),
                 f"{kappa} [{_fmt(row['fleiss_kappa_low'])}, {_fmt(row['fleiss_kappa_high'])}]",
                 _fmt(row["krippendorff_alpha"])])

    def _disagreeing(self) -> set:
        """Items whose annotators gave more than one label (current labels)."""
        if getattr(self, "_disagreeing_ids", None) is None:
            from .._validation import latest_annotations

            ann = self.project.annotations
            ids: set = set()
            if len(ann):
                n = latest_annotations(ann).groupby("item_id")["label"].nunique()
                ids = set(n.index[n > 1].astype(str))
            self._disagreeing_ids = ids
        return self._disagreeing_ids

    def _slice_selection(self, k: int) -> tuple[list[str], dict, str]:
        """The items of row ``k``'s slice whose annotators gave more than one label."""
        col, value, in_slice = self._slice_items(k)
        return (sorted(in_slice & self._disagreeing()), {},
                f"{col}={value}, annotators disagree")

    def __repr__(self) -> str:
        return f"DisagreementExplorer({self.project!r}, {self.selection!r})"
