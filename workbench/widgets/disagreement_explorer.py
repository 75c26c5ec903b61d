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

from .._format import percent
from ..agreement import agreement_by, agreement_summary
from ..selection import Selection
from ._adapters import RowGrid, StatusMixin, esc, fiftyone_button, guarded
from .agreement_matrix import AgreementMatrix
from .annotator_table import AnnotatorTable
from .confused_pairs import ConfusedPairs
from .gallery import ItemGallery
from .label_issue_list import LabelIssueList
from .tag_panel import TagPanel

__all__ = ["DisagreementExplorer"]


def _fmt(x: Any) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.3f}"


class DisagreementExplorer(StatusMixin, w.VBox):
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

    def __new__(cls, project: Any = None, *args: Any, **kwargs: Any):
        """A :class:`DetectionDisagreementExplorer` for a detection project, else this."""
        if cls is DisagreementExplorer and getattr(project, "task", None) == "detection":
            from .detection_disagreement import DetectionDisagreementExplorer

            return DetectionDisagreementExplorer(project, *args, **kwargs)
        return super().__new__(cls, project, *args, **kwargs)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 run: str | None = None, slice_by: str | None = None):
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.notes: list[str] = []
        self.status = w.HTML("")
        self.status.add_class("wb-status")
        self.header = w.HTML("")
        self.header.add_class("wb-agreement-summary")
        super().__init__([self._make_error_box(), self.header, self.status])
        self.add_class("wb-disagreement-explorer")
        try:
            self._build(run, slice_by)
        except Exception as exc:  # a broken board says why instead of a blank page
            self.show_error(exc)
            raise
        self.selection.observe(self._on_selection, names=["ids"])
        self._update_status()
        self.add_class("wb-ready")

    # ---- build ------------------------------------------------------------------------
    def _build(self, run, slice_by) -> None:
        project, sel = self.project, self.selection
        ann = project.annotations
        self.summary: dict = {}
        if len(ann):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    self.summary = agreement_summary(ann, classes=project.classes or None)
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
        self.slice_picker = w.Dropdown(description="agreement by",
                                       options=list(project.metadata_columns),
                                       style={"description_width": "initial"},
                                       layout=w.Layout(width="300px"))
        self.slice_picker.add_class("wb-agreement-by")
        self.slice_table = w.HTML("")
        self.slice_table.add_class("wb-agreement-by-table")
        self.slice_frame = pd.DataFrame()
        self.slice_page = 0
        self._slice_selected: int | None = None  # row of slice_frame whose items are selected
        self.slice_rows = RowGrid(
            ["value", "items", "agreement", "Fleiss' kappa [95% CI]", "alpha"], 15,
            self._on_slice_row, self._go_slices, prefix="agreement-by",
            columns="minmax(120px, 220px) 60px 90px 200px 70px")
        self.slice_grid = self.slice_rows.grid
        if project.metadata_columns:
            default = slice_by or ("batch" if "batch" in project.metadata_columns
                                   else project.metadata_columns[0])
            self.slice_picker.value = default
        self.slice_picker.observe(self._on_slice_by, names=["value"])
        self._render_slices()

        self.tabs = w.Tab(children=[
            w.HBox([self.matrix, self.annotators],
                   layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                   grid_gap="8px 24px")),
            self.pairs,
            self.issues,
            w.VBox([self.slice_picker, self.slice_table, self.slice_grid,
                    self.slice_rows.pager]),
        ])
        for i, title in enumerate(["Annotators", "Confused labels", "Label issues",
                                   "Agreement by slice"]):
            self.tabs.set_title(i, title)
        self.tabs.add_class("wb-disagreement-tabs")

        self.gallery = ItemGallery(project, sel)
        self.tag_panel = TagPanel(project, sel, context={"dashboard": "disagreements"})
        self.fiftyone_button, why = fiftyone_button(project, sel)
        if why:
            self.notes.append(why)
            self.header.value = self._header_html()
        side = [x for x in (self.tag_panel, self.fiftyone_button) if x is not None]
        self.clear_button = w.Button(description="clear selection")
        self.clear_button.add_class("wb-clear-selection")
        self.clear_button.on_click(self._on_clear)
        # what to do with the selection (tag it, open it in FiftyOne) sits side by side above
        # the gallery, so the items stay in view at 1280 px
        actions = w.HBox(side, layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                               grid_gap="4px 32px"))
        actions.add_class("wb-actions")
        self.children = [self.error_box, self.header, self.tabs,
                         w.HBox([self.status, self.clear_button],
                                layout=w.Layout(align_items="center", grid_gap="12px")),
                         actions, self.gallery]

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

    def _render_slices(self) -> None:
        col = self.slice_picker.value
        ann = self.project.annotations
        self.slice_frame = pd.DataFrame()
        self.slice_page, self._slice_selected = 0, None
        table, message = None, "<i>No metadata column or no annotations.</i>"
        if col and len(ann):
            try:
                table = agreement_by(ann, self.project, col, n_boot=200)
            except Exception as exc:  # e.g. no item with two labels in any slice
                message = f"<i>{esc(exc)}</i>"
        if table is None:
            self.slice_table.value = message
            self._render_slice_rows()  # no rows
            return
        self.slice_frame = table.reset_index(drop=True)
        lowest = ""
        if len(table) > 1 and table["fleiss_kappa"].notna().any():
            worst = table.loc[table["fleiss_kappa"].idxmin()]
            lowest = (f" Lowest: <b>{esc(col)}={esc(worst[col])}</b> (kappa "
                      f"{_fmt(worst['fleiss_kappa'])}): look there first.")
        self.slice_table.value = (
            f"<span>Agreement of the annotators per <b>{esc(col)}</b>. <i>agreement</i>: the "
            "share of annotator pairs who gave an item the same label; <i>Fleiss' kappa</i> "
            "and <i>alpha</i>: the same corrected for chance (1 = perfect, 0 = no better "
            "than chance), with a 95% interval (bootstrap over items, 200 resamples, "
            f"seeded).{lowest} Click a value to see its items where annotators "
            "disagree.</span>")
        self.slice_rows.headers[0].value = f"<b>{esc(col)}</b>"
        self._render_slice_rows()

    def _slice_row_content(self, i: int, low: Any) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of row ``i`` of the agreement-by-slice table."""
        row, col = self.slice_frame.iloc[i], self.slice_picker.value
        kappa = _fmt(row["fleiss_kappa"])
        if low is not None and row["fleiss_kappa"] == low:
            kappa = f"<b style='color:#b00020'>{kappa}</b>"
        return (str(row[col]), f"select the items of {col}={row[col]} where annotators disagree",
                [f"{row['n_items']}", _fmt(row["percent_agreement"]),
                 f"{kappa} [{_fmt(row['fleiss_kappa_low'])}, {_fmt(row['fleiss_kappa_high'])}]",
                 _fmt(row["krippendorff_alpha"])])

    def _render_slice_rows(self) -> None:
        """Write the page of the agreement-by-slice table into the row pool."""
        table = self.slice_frame
        low = table["fleiss_kappa"].min() if len(table) > 1 else None
        self.slice_rows.render(self.slice_page, len(table),
                               lambda i: self._slice_row_content(i, low),
                               selected=lambda i: i == self._slice_selected)

    @property
    def slice_buttons(self) -> list:
        """The value buttons of the agreement-by-slice page shown, in display order."""
        n = len(self.slice_frame) - self.slice_page * self.slice_rows.page_rows
        return [r.button for r in self.slice_rows.rows[:max(0, n)]]

    def _go_slices(self, page: int) -> None:
        page = RowGrid.clip(page, len(self.slice_frame), self.slice_rows.page_rows)
        if page != self.slice_page:
            self.slice_page = page
            self._render_slice_rows()

    @guarded
    def _on_slice_row(self, slot: int) -> None:
        i = self.slice_page * self.slice_rows.page_rows + slot
        if i < len(self.slice_frame):
            self.select_slice(i)

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

    def select_slice(self, k: int) -> list[str]:
        """Select the disagreements of row ``k`` of the agreement-by-slice table (a click).

        Selects the items of that slice whose annotators gave more than one label; returns
        their ids.
        """
        col = self.slice_picker.value
        value = self.slice_frame.iloc[k][col]
        items = self.project.items
        in_slice = items.loc[items[col] == value, "item_id"].astype(str)
        ids = sorted(set(in_slice) & self._disagreeing())
        self.selection.select(ids, origin=self,
                              description=f"{col}={value}, annotators disagree")
        self._slice_selected = int(k)
        self._render_slice_rows()
        return ids

    # ---- callbacks --------------------------------------------------------------------
    @guarded
    def _on_slice_by(self, change) -> None:
        self._render_slices()

    @guarded
    def _on_clear(self, _button) -> None:
        self.selection.clear(origin=self)

    @guarded
    def _on_selection(self, change) -> None:
        if (getattr(self, "_slice_selected", None) is not None
                and (self.selection.ids is None
                     or self.selection.origin is not self)):
            self._slice_selected = None
            self._render_slice_rows()
        self._update_status()

    def _update_status(self) -> None:
        sel = self.selection
        if sel.ids is None:
            text = "No selection: click a cell, an annotator or a suspected label error."
        else:
            what = f": {esc(sel.description)}" if sel.description else ""
            src = f" (from {esc(sel.source)})" if sel.source else ""
            n = len(sel.ids)
            text = f"{n:,} item{'' if n == 1 else 's'} selected{what}{src}"
        self.status.value = f"<span>{text}</span>"

    def __repr__(self) -> str:
        return f"DisagreementExplorer({self.project!r}, {self.selection!r})"
