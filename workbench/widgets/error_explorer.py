"""ErrorExplorer: confusion matrix, slices, run comparison, gallery and tagging in one app.

``ErrorExplorer(project)`` detects the project's task: a detection project gets a
:class:`~workbench.widgets.detection_explorer.DetectionErrorExplorer` (boxes, AP, IoU).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import traitlets

from .. import results
from ..selection import Selection
from ._adapters import StatusMixin, esc, fiftyone_button, guarded
from .confusion import ConfusionMatrix
from .embedding_map import MapPanel, no_embeddings_note
from .gallery import ItemGallery
from .run_comparison import RunComparison
from .slice_table import SliceTable
from .tag_panel import TagPanel

__all__ = ["ErrorExplorer"]


class ErrorExplorer(StatusMixin, w.VBox):
    """Where is the model wrong? One app over one shared selection of items.

    The curator picks a run, clicks a confusion-matrix cell, a slice (a metadata value or a
    discovered conjunction) or the items a new run fixed/broke; the gallery shows the
    selected items and the tag panel tags them for relabeling.

    Parameters
    ----------
    project : Project
        A project with at least one prediction run.
    selection : Selection, default=None
        The shared selection; a new one when None.
    run : str, default=None
        The run shown first (None: the project's default run).

    Attributes
    ----------
    confusion : ConfusionMatrix
    slices : SliceTable
    runs : RunComparison or None
        None when the project has a single run.
    gallery : ItemGallery
    tags : TagPanel
    fiftyone : FiftyOneButton or None
        None when FiftyOne is not installed (a note says how to install it) or the project
        has no predictions.
    map_panel : MapPanel or None
        The "map" tab (an :class:`EmbeddingMap`, built when the tab is opened); None when
        the project has no embeddings (a note says how to get them).
    status : ipywidgets.HTML
        What is selected (CSS class ``wb-status``).
    errors : DataFrame
        The current run's errors frame.

    Notes
    -----
    For a project whose ``task`` is ``"detection"``, ``ErrorExplorer(project, ...)``
    returns a :class:`~workbench.widgets.detection_explorer.DetectionErrorExplorer` (same
    arguments, plus ``iou``): the confusion matrix with ``background``, AP per class with a
    precision-recall curve, the IoU threshold as a control, slice tables on misses and false
    detections, and a gallery that draws the boxes.

    Examples
    --------
    >>> app = ErrorExplorer(wb.open_project())  # doctest: +SKIP
    >>> app  # doctest: +SKIP
    """

    run = traitlets.Unicode(None, allow_none=True)

    def __new__(cls, project: Any = None, *args: Any, **kwargs: Any):
        """A :class:`DetectionErrorExplorer` for a detection project, else an ErrorExplorer."""
        if cls is ErrorExplorer and getattr(project, "task", None) == "detection":
            from .detection_explorer import DetectionErrorExplorer

            return DetectionErrorExplorer(project, *args, **kwargs)
        return super().__new__(cls, project, *args, **kwargs)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 run: str | None = None):
        self.project = project
        self.selection = selection if selection is not None else Selection()
        runs = list(getattr(project, "runs", []) or [])
        run = run if run is not None else (getattr(project, "default_run", None) or
                                           (runs[0] if runs else None))
        if not runs:
            self._build_without_runs(project)
            return
        self.errors = results.errors(project, run)  # cached for every kernel
        self.run_picker = w.Dropdown(options=runs, value=run, description="run",
                                     layout=w.Layout(width="260px"))
        self.run_picker.add_class("wb-run-picker")
        self.status = w.HTML("")
        self.status.add_class("wb-status")
        self.clear_button = w.Button(description="clear selection",
                                     layout=w.Layout(width="140px"))
        self.clear_button.add_class("wb-clear")
        self.clear_button.on_click(lambda _b: self.selection.clear(origin=self))

        self.confusion = ConfusionMatrix(self.errors, self.selection, hide_diagonal=False)
        self.slices = SliceTable(self.errors, self.selection)
        self.runs = (RunComparison(project, self.selection) if len(runs) >= 2 else None)
        self.gallery = ItemGallery(project, self.selection, run=run)
        self.notes = w.HTML("")
        self.notes.add_class("wb-notes")
        self.tags = TagPanel(project, self.selection,
                             context={"source": "ErrorExplorer", "run": run})
        self.fiftyone, why = fiftyone_button(project, self.selection)
        if why:
            self._note(why)

        self.map_panel = (MapPanel(project, self.selection, run=run)
                          if getattr(project, "has_embeddings", False) else None)
        if self.map_panel is None:
            self._note_html(no_embeddings_note(project))
        tabs = [self.slices] + ([self.runs] if self.runs is not None else [])
        titles = ["slices"] + (["compare runs"] if self.runs is not None else [])
        if self.map_panel is not None:
            tabs.append(self.map_panel)
            titles.append("map")
        # beside the confusion matrix when the window is wide enough, below it otherwise
        tab = w.Tab(children=tabs, layout=w.Layout(flex="1 1 520px", min_width="0"))
        for i, title in enumerate(titles):
            tab.set_title(i, title)
        tab.add_class("wb-error-tabs")
        self.tabs = tab
        if self.map_panel is not None:
            self.map_panel.follow(tab, len(tabs) - 1)
        side = [x for x in (self.tags, self.fiftyone) if x is not None]
        self.confusion.layout.flex = "0 0 auto"
        top = w.HBox([self.confusion, tab], layout=w.Layout(
            flex_flow="row wrap", align_items="flex-start", grid_gap="8px 16px"))
        header = w.HBox([self.run_picker, self.clear_button, self.status],
                        layout=w.Layout(align_items="center", grid_gap="8px"))
        title = w.HTML(f"<h3 style='margin:4px 0'>Model errors: {esc(project.name)}</h3>")
        # what to do with the selection (tag it, open it in FiftyOne) sits above the
        # gallery, side by side, so that the gallery gets the full width
        actions = w.HBox(side, layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                               grid_gap="4px 32px"))
        actions.add_class("wb-actions")
        bottom = w.VBox([actions, self.notes, self.gallery], layout=w.Layout(width="100%"))
        super().__init__([title, header, self._make_error_box(), top, bottom])
        self.add_class("wb-error-explorer")
        self.run = run
        w.link((self.run_picker, "value"), (self, "run"))
        self.selection.observe(self._on_selection, names=["ids", "description"])
        self._render_status()
        self.add_class("wb-ready")

    def _build_without_runs(self, project) -> None:
        """No predictions: say so, and keep the gallery and tag panel usable."""
        self.errors = None
        self.confusion = self.slices = self.runs = self.map_panel = None
        self.run_picker = w.Dropdown(options=[], description="run", disabled=True)
        self.gallery = ItemGallery(project, self.selection)
        self.notes = w.HTML("")
        self.tags = TagPanel(project, self.selection, context={"source": "ErrorExplorer"})
        self.fiftyone = None
        self.status = w.HTML(
            f"Project {esc(project.name)} has no model predictions, so there are no model "
            "errors to show. Add a predictions file (item_id, run, label) to the project; "
            "annotator disagreements are in the disagreement explorer.")
        self.status.add_class("wb-status")
        w.VBox.__init__(self, [self.status, self._make_error_box(),
                               w.HBox([self.gallery, w.VBox([self.tags, self.notes])])])
        self.add_class("wb-error-explorer")
        self.add_class("wb-ready")

    def _note(self, text: str) -> None:
        """Add a grey note under the actions (why a companion widget is not shown)."""
        self._note_html(f"<span style='color:#777;font-size:11px'>{esc(text)}</span>")

    def _note_html(self, html: str) -> None:
        """Add a note that is already HTML (escaped by its maker)."""
        notes = getattr(self, "_notes_html", [])
        notes.append(html)
        self._notes_html = notes
        if getattr(self, "notes", None) is not None:
            self.notes.value = "<br>".join(notes)

    # ---- state ------------------------------------------------------------------------

    @traitlets.observe("run")
    def _on_run(self, change) -> None:
        if change["old"] is None or change["new"] == change["old"] or \
                getattr(self, "gallery", None) is None:
            return
        try:
            self.set_run(change["new"])
            self.clear_error()
        except Exception as exc:
            self.show_error(exc)

    def set_run(self, run: str) -> None:
        """Recompute the errors for ``run`` and update every child widget."""
        self.errors = results.errors(self.project, run)
        self.confusion.set_errors(self.errors)
        self.slices.set_errors(self.errors)
        self.gallery.run = run
        if self.map_panel is not None:
            self.map_panel.set_run(run)
        self.tags.context = {**self.tags.context, "run": run}
        if self.run != run:
            self.run = run
        self._render_status()

    @guarded
    def _on_selection(self, change) -> None:
        self._render_status()

    def _render_status(self) -> None:
        if self.errors is None:
            return
        ids = self.selection.ids
        if ids is None:
            self.status.value = (f"No selection: {len(self.errors):,} items with a prediction "
                                 f"in run <b>{esc(self.run)}</b>.")
            return
        what = self.selection.description
        text = f"{len(ids):,} items" + (f": {esc(what)}" if what else "")
        self.status.value = text

    def __repr__(self) -> str:
        return f"ErrorExplorer(run={self.run!r}, {self.selection!r})"
