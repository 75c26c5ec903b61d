"""RelabelQueueView: the relabel queue by status and priority, export a batch, import results.

On a detection project the queue lists images with the boxes in question, "Select queue"
selects the images and their tagged boxes, a gallery draws them, and batches go out as Label
Studio rectangles, COCO or CSV (results come back as Label Studio or COCO JSON).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from ..relabel import RelabelQueue, atomic_write, import_labels
from ..selection import Selection
from ..session import can_write, current_author, require_write
from ..tags import STATUSES, TagStore
from ._adapters import StatusMixin, esc, guarded

__all__ = ["RelabelQueueView"]

_EXT = {"labelstudio": "json", "csv": "csv", "jsonl": "jsonl", "coco": "coco.json"}
_FORMATS = [("Label Studio", "labelstudio"), ("CSV", "csv"), ("JSON Lines", "jsonl")]
#: Detection projects: export formats of :func:`workbench.export_relabel_queue`.
_DETECTION_FORMATS = [("Label Studio (rectangles)", "labelstudio"), ("COCO", "coco"),
                      ("CSV", "csv")]
#: Columns of the queue table (classification, detection).
_COLUMNS = ["item_id", "status", "priority", "label", "predicted", "score", "slice",
            "slice_lift", "reason", "tagged_by"]
_DETECTION_COLUMNS = ["item_id", "status", "priority", "score", "n_boxes", "box_ids",
                      "issue_types", "reasons", "slice", "slice_lift", "tagged_by"]
#: Box ids shown per image in the table (the rest are counted).
_BOXES_SHOWN = 4
#: Largest uploaded results file accepted.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class RelabelQueueView(StatusMixin, w.VBox):
    """The relabel queue: counts by status, the most urgent items, export and import.

    Parameters
    ----------
    project : Project
    selection : Selection, optional
        The shared selection; "Select queue" puts the queue's items in it.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    tag : str, default="relabel"
        The tag that queues an item.
    rows : int, default=15
        Items listed.
    priority : {'combined', 'label_issue', 'slice_lift'}, default='combined'
        The first ranking (the "Rank by" picker changes it; see
        :class:`workbench.RelabelQueue`).
    gallery : bool, optional
        Show an :class:`~workbench.widgets.ItemGallery` of the selection below the queue.
        Default: True for a detection project (it draws the images with the selected boxes
        highlighted), False otherwise.

    Notes
    -----
    Exports go to ``<project>/exports/relabel-<time>.<ext>``; uploaded results are saved in
    ``<project>/imports/`` and imported with :func:`workbench.import_labels`. Every handler
    that writes checks the session's write permission itself; in a read-only session the
    export/import controls are not shown.

    Detection project (``project.task == "detection"``): one row per image with its boxes
    in question (``box_ids``, ``n_boxes``), the flagged issue types and the reasons (see
    :class:`~workbench.detection.queue.DetectionRelabelQueue`); "Select queue" sets
    ``selection.ids`` to the waiting images and ``selection.box_ids`` to their tagged boxes;
    export formats are Label Studio (``RectangleLabels``), COCO and CSV; an uploaded JSON
    file is imported as COCO when it is a COCO object (``images``, ``annotations``), else
    as a Label Studio export.

    CSS classes: ``wb-relabel-view`` and ``wb-ready`` (root), ``wb-relabel-counts``,
    ``wb-relabel-table``, ``wb-relabel-rank``, ``wb-relabel-format``, ``wb-relabel-limit``,
    ``wb-relabel-export``,
    ``wb-relabel-upload``, ``wb-relabel-import``, ``wb-relabel-select``, ``wb-relabel-verify``,
    ``wb-relabel-status``, ``wb-relabel-report``, ``wb-readonly``, ``wb-error``.

    A classification project opened from a folder also shows a
    :class:`~workbench.widgets.ReleasePanel` (``release_panel``, CSS ``wb-release-panel``):
    the label releases, what the next one would change, *Release labels* and *Decide* for
    the selected items.
    """

    #: Path of the last export ("" before any).
    last_export = traitlets.Unicode("")

    def __init__(self, project, selection: Selection | None = None, *,
                 store: TagStore | None = None, tag: str = "relabel", rows: int = 15,
                 priority: str = "combined", gallery: bool | None = None, **kwargs: Any):
        if selection is not None and not isinstance(selection, Selection):
            raise TypeError("The 'selection' parameter of RelabelQueueView must be a workbench "
                            f"Selection or None. Got {type(selection).__name__} instead.")
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.store = store if store is not None else TagStore.for_project(project)
        self.queue = RelabelQueue(project, store=self.store, tag=tag, priority=priority)
        self.detection = getattr(project, "task", None) == "detection"
        self.rows = int(rows)
        self.raise_errors = False
        self.read_only = not can_write()
        self.report = None

        self.rank_picker = w.Dropdown(
            options=[("label issue x slice lift", "combined"),
                     ("label issue score", "label_issue"), ("slice error lift", "slice_lift")],
            value=self.queue.priority, description="Rank by",
            tooltip="How the most urgent items are chosen (the budget takes them first)",
            layout=w.Layout(width="300px"))
        self.rank_picker.add_class("wb-relabel-rank")
        self.rank_picker.observe(self._on_rank, names="value")
        self.counts_html = w.HTML("")
        self.counts_html.add_class("wb-relabel-counts")
        self.table_html = w.HTML("")
        self.table_html.add_class("wb-relabel-table")
        self.format_picker = w.Dropdown(options=_DETECTION_FORMATS if self.detection
                                        else _FORMATS,
                                        value="labelstudio", description="Format",
                                        layout=w.Layout(width="220px"))
        self.format_picker.add_class("wb-relabel-format")
        self.limit_box = w.BoundedIntText(value=0, min=0, max=10_000_000,
                                          description="Budget",
                                          tooltip="Most urgent items to send (0 = all)",
                                          layout=w.Layout(width="180px"))
        self.limit_box.add_class("wb-relabel-limit")
        self.export_button = w.Button(description="Export batch", icon="download",
                                      button_style="primary")
        self.export_button.add_class("wb-relabel-export")
        self.upload = w.FileUpload(accept=".json" if self.detection else ".json,.csv,.jsonl",
                                   multiple=False,
                                   description="Results file")
        self.upload.add_class("wb-relabel-upload")
        self.import_button = w.Button(description="Import results", icon="upload")
        self.import_button.add_class("wb-relabel-import")
        self.select_button = w.Button(description="Select queue", icon="check-square",
                                      tooltip="Put the queued items in the shared selection")
        self.select_button.add_class("wb-relabel-select")
        self.verify_button = w.Button(description="Mark verified", icon="check",
                                      tooltip="Mark the selected relabeled items verified")
        self.verify_button.add_class("wb-relabel-verify")
        self.status = w.HTML("")
        self.status.add_class("wb-relabel-status")
        self.report_html = w.HTML("")
        self.report_html.add_class("wb-relabel-report")
        self.export_button.on_click(lambda _b: self.export())
        self.import_button.on_click(lambda _b: self.import_upload())
        self.select_button.on_click(lambda _b: self.select_queue())
        self.verify_button.on_click(lambda _b: self.verify_selection())
        if self.read_only:
            controls: w.Widget = w.HTML("<span>Read-only session: the queue is shown but "
                                        "batches cannot be exported or imported here.</span>")
            controls.add_class("wb-readonly")
        else:
            controls = w.VBox([
                w.HBox([self.format_picker, self.limit_box, self.export_button]),
                w.HBox([self.upload, self.import_button, self.verify_button])])
            controls.add_class("wb-relabel-controls")
        self.release_panel = None
        if not self.detection and getattr(project, "root", None) is not None:
            from .release_panel import ReleasePanel  # releases: classification, on disk

            self.release_panel = ReleasePanel(project, self.selection, store=self.store,
                                              tag=tag)
        self.gallery = None
        if gallery if gallery is not None else self.detection:
            from .gallery import ItemGallery

            self.gallery = ItemGallery(project, self.selection)
        super().__init__([w.HTML(f"<b>Relabel queue</b> (tag <code>{esc(self.queue.tag)}"
                                 "</code>)"),
                          self.counts_html, w.HBox([self.select_button, self.rank_picker]),
                          self.table_html,
                          controls, self.status, self._make_error_box(), self.report_html,
                          *([self.release_panel] if self.release_panel is not None else []),
                          *([self.gallery] if self.gallery is not None else [])],
                         **kwargs)
        self.add_class("wb-relabel-view")
        self.refresh()
        self.add_class("wb-ready")

    # ---- state -> view ----------------------------------------------------------------

    @guarded
    def refresh(self) -> None:
        """Re-read the queue and redraw the counts and the table."""
        frame = self.queue.frame()
        self._frame = frame
        n = frame["status"].value_counts()
        self.counts_html.value = " ".join(
            f"<span class='wb-status-{s}'>{esc(s)}: <b>{int(n.get(s, 0))}</b></span>"
            for s in STATUSES)
        if frame.empty:
            self.table_html.value = (f"<span>No items tagged {esc(self.queue.tag)!s} yet: tag "
                                     "items in a TagPanel to queue them.</span>")
            return
        head = frame.head(self.rows)
        cols = _DETECTION_COLUMNS if self.detection else _COLUMNS
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(_cell(c, getattr(r, c)))}</td>" for c in cols)
            + "</tr>" for r in head.itertuples())
        more = f"<div>... and {len(frame) - len(head)} more</div>" if len(frame) > len(head) \
            else ""
        self.table_html.value = ("<table><tr>" + "".join(f"<th>{c.replace('_', ' ')}</th>"
                                                         for c in cols) +
                                 f"</tr>{body}</table>{more}"
                                 f"<div><small>score: {esc(self.queue.priority_source)}"
                                 f" {esc(self.queue.priority_note)}</small></div>")

    @guarded
    def _on_rank(self, change) -> None:
        # a view choice, not a write: allowed in read-only sessions too
        self.queue.priority = change["new"]
        self.refresh()

    # ---- handlers ---------------------------------------------------------------------

    @guarded
    def select_queue(self) -> None:
        """Put the items still waiting (queued or sent) in the shared selection.

        Detection: the images, and their tagged boxes in ``selection.box_ids`` (None when
        only whole images are tagged).
        """
        frame = self.queue.frame(status=["queued", "sent"])
        if not self.detection:
            self.selection.select(frame["item_id"].tolist(), origin=self,
                                  description=f"relabel queue ({len(frame)} items)")
            return
        boxes = sorted({b for ids in frame["box_ids"] for b in ids})
        self.selection.select(frame["item_id"].tolist(), box_ids=boxes or None, origin=self,
                              description=f"relabel queue ({len(frame)} images, "
                                          f"{len(boxes)} boxes)")

    @guarded
    def verify_selection(self) -> int:
        """Mark the selected items that came back ``relabeled`` as ``verified``."""
        require_write("verify relabeled items")
        ids = set(self.selection.ids or ())
        frame = self.queue.frame(status="relabeled")
        todo = [i for i in frame["item_id"] if i in ids]
        if not todo:
            raise ValueError("Select relabeled items first (Select queue, then narrow the "
                             "selection in a gallery or table); nothing was changed.")
        n = self.queue.mark(todo, "verified", author=current_author())
        self.refresh()
        if self.release_panel is not None:  # the verified items join the next release
            self.release_panel.refresh()
        self.status.value = f"<span>Marked {n} item(s) verified.</span>"
        return n

    @guarded
    def export(self) -> Path:
        """Export the queue in the picked format into ``<project>/exports/``; return the path."""
        require_write("export the relabel queue")
        root = getattr(self.project, "root", None)
        if root is None:
            raise ValueError("This project has no folder to export into; use "
                             "workbench.export_relabel_queue(project, path) instead.")
        fmt = self.format_picker.value
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = Path(root) / "exports" / f"{self.queue.tag}-{stamp}.{_EXT[fmt]}"
        limit = self.limit_box.value or None
        n = self.queue.export(path, format=fmt, limit=limit, author=current_author())
        self.last_export = str(path)
        self.refresh()
        self.status.value = f"<span>Exported {n} item(s) to <code>{esc(path)}</code>.</span>"
        return path

    @guarded
    def import_upload(self):
        """Import the uploaded results file (Label Studio JSON, CSV or JSONL); return the report."""
        require_write("import labels")
        files = list(self.upload.value or ())
        if not files:
            raise ValueError("Choose a results file first (Label Studio or COCO JSON)."
                             if self.detection else
                             "Choose a results file first (Label Studio JSON export or CSV "
                             "item_id, annotator, label).")
        upload = files[0]
        content = bytes(upload["content"])
        if len(content) > MAX_UPLOAD_BYTES:
            raise ValueError(f"The file is {len(content)} bytes; at most {MAX_UPLOAD_BYTES} "
                             "are accepted here. Use workbench.import_labels for large files.")
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(upload.get("name", "upload"))).name)
        name = name.lstrip(".") or "upload"
        root = getattr(self.project, "root", None)
        if root is None:
            raise ValueError("This project has no folder; use workbench.import_labels.")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = Path(root) / "imports" / f"{stamp}-{name}"
        atomic_write(path, lambda fh: fh.write(content.decode("utf-8")))
        report = self.import_file(path)
        self.upload.value = ()
        return report

    def import_file(self, path, *, format: str | None = None):
        """Import a results file already on disk; show and return the report."""
        require_write("import labels")
        path = Path(path)
        fmt = format or _guess_format(path, detection=self.detection)
        report = import_labels(self.project, path, format=fmt, tag=self.queue.tag,
                               store=self.store, author=current_author())
        self.report = report
        project = getattr(report, "project", None)
        if project is None:  # a box import report: re-read the project from its folder
            project = self.project.reload() if getattr(self.project, "root", None) \
                else self.project
        self.project = project
        self.queue = RelabelQueue(project, store=self.store, tag=self.queue.tag,
                                  priority=self.queue.priority)
        if self.gallery is not None:  # draw the imported boxes
            from .gallery import ItemGallery

            old, self.gallery = self.gallery, ItemGallery(project, self.selection)
            self.children = tuple(self.gallery if c is old else c for c in self.children)
            old.close()
        if self.release_panel is not None:  # releases read the re-imported annotations
            self.release_panel.set_project(project)
        self.refresh()
        if self.detection:
            self.report_html.value = _box_report_html(report)
        else:
            self._show_report(report)
        self.status.value = f"<span>{esc(report.summary())}</span>"
        return report

    def _show_report(self, report) -> None:
        ps = report.per_slice
        cols = ["column", "value", "n_items", "n_imported", "agreement_before",
                "agreement_after", "accuracy_before", "accuracy_after"]

        def fmt(v):
            return f"{v:.3f}" if isinstance(v, float) else v

        body = "".join("<tr>" + "".join(f"<td>{esc(fmt(getattr(r, c)))}</td>" for c in cols)
                       + "</tr>" for r in ps.itertuples())
        self.report_html.value = (
            f"<div><b>Import</b>: {esc(report.summary())}</div><table><tr>"
            + "".join(f"<th>{c}</th>" for c in cols) + f"</tr>{body}</table>")

    def __repr__(self) -> str:
        return (f"RelabelQueueView(tag={self.queue.tag!r}, items={len(self._frame)}, "
                f"read_only={self.read_only})")


def _cell(column: str, value: Any) -> Any:
    """A queue table cell: floats rounded, box ids listed (the first few)."""
    if column == "box_ids":
        ids = list(value)
        more = f" +{len(ids) - _BOXES_SHOWN}" if len(ids) > _BOXES_SHOWN else ""
        return ", ".join(ids[:_BOXES_SHOWN]) + more if ids else "(image)"
    return round(value, 3) if isinstance(value, float) else value


def _guess_format(path: Path, *, detection: bool) -> str:
    """The import format of a results file, from its name (and, for detection, its JSON)."""
    suffix = path.suffix.lower()
    if not detection:
        return {".csv": "csv", ".jsonl": "jsonl"}.get(suffix, "labelstudio")
    if suffix != ".json":
        raise ValueError(f"{path.name}: a detection project imports Label Studio or COCO "
                         "JSON results (a .json file); export them from the vendor as JSON.")
    with open(path, encoding="utf-8") as fh:
        head = fh.read(1024).lstrip()
    if head.startswith("{"):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError:
            return "labelstudio"  # import_labels says what is wrong with the file
        if isinstance(data, dict) and "images" in data and "annotations" in data:
            return "coco"
    return "labelstudio"


def _frame_html(frame: pd.DataFrame, limit: int = 30) -> str:
    """A small HTML table of a report frame (floats to 3 decimals, cells escaped)."""
    if frame is None or frame.empty:
        return ""

    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else v

    cols = list(frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(v))}</td>" for v in row) + "</tr>"
                   for row in frame.head(limit).itertuples(index=False))
    return ("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols)
            + f"</tr>{body}</table>")


def _box_report_html(report) -> str:
    """A box import report: the summary, the diff counted by outcome, the per-slice table."""
    parts = [f"<div><b>Import</b>: {esc(report.summary())}</div>"]
    diff = getattr(report, "diff", None)
    if diff is not None and len(diff) and "outcome" in diff.columns:
        counts = diff["outcome"].value_counts().rename_axis("outcome").reset_index(
            name="boxes")
        parts.append(_frame_html(counts))
    parts.append(_frame_html(getattr(report, "slices", None)))
    return "".join(parts)
