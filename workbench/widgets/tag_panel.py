"""TagPanel: tag the picked or selected items or boxes (with a reason), see counts and history."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import traitlets

from ..selection import Selection
from ..session import can_write, current_author, require_write
from ..tags import TagStore
from ._adapters import StatusMixin, esc, guarded

__all__ = ["TagPanel"]


class TagPanel(StatusMixin, w.VBox):
    """Add or remove a tag on the picked or selected items; the author is the session's.

    The panel acts on the items picked in the gallery (``selection.picked``) when there are
    any, else on the whole selection (``selection.ids``); its status line and buttons say
    which ("Tag 3 picked items" / "Tag all 540 selected items").

    In a detection project a box-level selection (``selection.box_ids``) tags the boxes
    themselves (``TagStore.add(items, tag, box_ids=boxes)``, each box with its image), on
    the picked images only when any are picked; the status line says "5 boxes on 3 images".
    Box ids are reference boxes (``box_id``), detections (``pred_id``) or annotated boxes.

    Parameters
    ----------
    project : Project
        The project (its items validate the ids).
    selection : Selection, optional
        The shared selection; a new one if omitted.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    context : dict, optional
        Recorded with every event (run, slice, view the panel is part of).
    history_rows : int, default=8
        Recent events shown.

    Notes
    -----
    In a read-only session (``WORKBENCH_ROLE=manager``/``viewer``) the controls are not
    built into the view (a ``wb-readonly`` note replaces them) and :meth:`add_tags` /
    :meth:`remove_tags` still refuse: a browser can send messages to hidden widgets.

    CSS classes: ``wb-tag-panel`` (root), ``wb-tag-name``, ``wb-tag-reason``, ``wb-tag-add``,
    ``wb-tag-remove``, ``wb-tag-status``, ``wb-tag-counts``, ``wb-tag-history``,
    ``wb-readonly``, ``wb-error``.

    Examples
    --------
    >>> panel = wb.widgets.TagPanel(project, selection)  # doctest: +SKIP
    """

    #: Events written by the last add/remove (-1 before any).
    last_written = traitlets.Int(-1)

    def __init__(self, project, selection: Selection | None = None, *,
                 store: TagStore | None = None, context: dict | None = None,
                 history_rows: int = 8, **kwargs: Any):
        if selection is not None and not isinstance(selection, Selection):
            raise TypeError("The 'selection' parameter of TagPanel must be a workbench "
                            f"Selection or None. Got {type(selection).__name__} instead.")
        if context is not None and not isinstance(context, dict):
            raise TypeError("The 'context' parameter of TagPanel must be a dict or None. "
                            f"Got {type(context).__name__} instead.")
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.store = store if store is not None else TagStore.for_project(project)
        self.context = dict(context or {})
        self.history_rows = int(history_rows)
        self.raise_errors = False
        self.read_only = not can_write()

        self.tag_box = w.Combobox(placeholder="tag, e.g. relabel", ensure_option=False,
                                  description="Tag", layout=w.Layout(width="260px"))
        self.tag_box.add_class("wb-tag-name")
        self.reason_box = w.Text(placeholder="reason (optional)", description="Reason",
                                 layout=w.Layout(width="360px"))
        self.reason_box.add_class("wb-tag-reason")
        self.add_button = w.Button(description="Add tag", button_style="primary", icon="tag",
                                   tooltip="Tag the picked items, or all selected items",
                                   layout=w.Layout(width="auto"))
        self.add_button.add_class("wb-tag-add")
        self.remove_button = w.Button(description="Remove tag", icon="times",
                                      tooltip="Remove the tag from the picked items, or from "
                                              "all selected items",
                                      layout=w.Layout(width="auto"))
        self.remove_button.add_class("wb-tag-remove")
        self.status = w.HTML("")
        self.status.add_class("wb-tag-status")
        self.counts_html = w.HTML("")
        self.counts_html.add_class("wb-tag-counts")
        self.history_html = w.HTML("")
        self.history_html.add_class("wb-tag-history")
        self.add_button.on_click(lambda _b: self.add_tags())
        self.remove_button.on_click(lambda _b: self.remove_tags())
        if self.read_only:
            note = w.HTML("<span>Read-only session: tags are shown but cannot be changed "
                          "here.</span>")
            note.add_class("wb-readonly")
            controls: w.Widget = note
        else:
            controls = w.VBox([w.HBox([self.tag_box, self.reason_box]),
                               w.HBox([self.add_button, self.remove_button])])
            controls.add_class("wb-tag-controls")
        where = "" if self.store.persistent else (
            " <i>(kept in memory only: this project has no folder)</i>")
        title = w.HTML(f"<b>Tags</b>{where}")
        super().__init__([title, controls, self.status, self._make_error_box(),
                          self.counts_html, self.history_html], **kwargs)
        self.add_class("wb-tag-panel")
        self._box_index = None  # detection: image of every box id, built on first use
        self.selection.observe(self._on_selection, names=["ids", "picked", "box_ids"])
        self.refresh()

    # ---- state -> view ----------------------------------------------------------------

    def _on_selection(self, change) -> None:
        self._show_selection()

    def _show_selection(self) -> None:
        ids, picked = self.selection.ids, self.selection.picked
        add, remove = "Add tag", "Remove tag"
        if ids is not None and self.selection.box_ids:
            self._show_boxes()
            return
        if ids is None:
            text = "Select items (in a table, chart or gallery) to tag them."
        else:
            text = f"{len(ids)} item(s) selected."
            if self.selection.description:
                text += f" ({self.selection.description})"
            if picked:
                text += (f" Tag {len(picked)} picked item(s) only; unpick them in the gallery "
                         "to tag the whole selection.")
                add, remove = f"Tag {len(picked)} picked", f"Untag {len(picked)} picked"
            elif ids:
                text += (f" Tag all {len(ids)} selected items, or pick cards in the gallery "
                         "to tag only those.")
                add, remove = f"Tag all {len(ids)} selected", f"Untag all {len(ids)} selected"
        self.add_button.description, self.remove_button.description = add, remove
        self.status.value = f"<span>{esc(text)}</span>"

    def _show_boxes(self) -> None:
        sel = self.selection
        n_boxes, n_images = len(sel.box_ids), len(sel.ids)
        text = (f"{n_boxes} box{'es' if n_boxes != 1 else ''} on {n_images} "
                f"image{'s' if n_images != 1 else ''} selected.")
        if sel.description:
            text += f" ({sel.description})"
        if sel.picked:  # which boxes are on the picked images (the box index, built once)
            try:
                _items, boxes, _picked = self.box_targets()
            except Exception:  # unknown boxes, none on the picks: the buttons will say why
                boxes = []
            text += (f" Tag the {len(boxes)} selected box(es) on the {len(sel.picked)} picked "
                     "image(s) only; unpick them in the gallery to tag every selected box.")
            add, remove = f"Tag {len(boxes)} boxes", f"Untag {len(boxes)} boxes"
        else:
            text += (f" Tag all {n_boxes} selected boxes, or pick images in the gallery to "
                     "tag only their boxes.")
            add, remove = f"Tag {n_boxes} boxes", f"Untag {n_boxes} boxes"
        self.add_button.description, self.remove_button.description = add, remove
        self.status.value = f"<span>{esc(text)}</span>"

    @guarded
    def refresh(self) -> None:
        """Re-read tag names, counts and recent history from the store."""
        self.tag_box.options = tuple(self.store.known_tags())
        counts = self.store.counts()
        if counts.empty:
            self.counts_html.value = "<span>No tags yet.</span>"
        else:
            rows = "".join(f"<tr><td>{esc(r.tag)}</td><td>{int(r.n_items)}</td></tr>"
                           for r in counts.head(15).itertuples())
            self.counts_html.value = ("<table><tr><th>tag</th><th>items</th></tr>"
                                      f"{rows}</table>")
        hist = self.store.history(limit=self.history_rows)
        if hist.empty:
            self.history_html.value = ""
        else:
            lines = "".join(
                f"<li>{esc(r.created_at.strftime('%Y-%m-%d %H:%M'))} {esc(r.author)} "
                f"{'added' if r.action == 'add' else 'removed'} <b>{esc(r.tag)}</b> on "
                f"{_target(r)}"
                f"{': ' + esc(r.reason) if isinstance(r.reason, str) else ''}"
                "</li>" for r in hist.iloc[::-1].itertuples())
            self.history_html.value = f"<details><summary>Recent</summary><ul>{lines}</ul>" \
                                      "</details>"
        self._show_selection()

    # ---- handlers (each checks the write permission itself) ---------------------------

    def _event_context(self) -> dict:
        ctx = dict(self.context)
        ctx.setdefault("view", "TagPanel")
        if self.selection.source:
            ctx["selection_source"] = self.selection.source
        if self.selection.description:
            ctx["selection"] = self.selection.description
        if self.selection.picked:
            ctx["picked"] = f"{len(self.selection.picked)} of {len(self.selection)}"
        return ctx

    def targets(self, verb: str = "tag") -> tuple[list[str], bool]:
        """The items a tag goes on, and whether they are picks.

        Parameters
        ----------
        verb : str, default="tag"
            What is about to be done, for the error message.

        Returns
        -------
        ids : list of str
            ``selection.picked`` when any item is picked, else ``selection.ids``.
        picked : bool
            True when ``ids`` are the picked items.

        Raises
        ------
        ValueError
            When nothing is selected.
        """
        if self.selection.ids is None:
            raise ValueError(f"No items selected: select the items to {verb} first "
                             "(nothing was changed).")
        if self.selection.picked:
            return list(self.selection.picked), True
        return list(self.selection.ids), False

    def box_targets(self, verb: str = "tag") -> tuple[list[str], list[str], bool]:
        """The boxes a tag goes on (box-level selection), with their images.

        Parameters
        ----------
        verb : str, default="tag"
            What is about to be done, for the error message.

        Returns
        -------
        item_ids : list of str
            The image of each box (parallel to ``box_ids``).
        box_ids : list of str
            ``selection.box_ids``, only those on picked images when any image is picked.
        picked : bool
            True when images are picked.

        Raises
        ------
        ValueError
            When the selection is not box-level, or no selected box is on a picked image.
        SchemaError
            When a selected box id is not a box of the project.
        """
        from ..detection.queue import box_index, box_items

        boxes = list(self.selection.box_ids or ())
        if self.selection.ids is None or not boxes:
            raise ValueError(f"No boxes selected: select the boxes to {verb} first "
                             "(nothing was changed).")
        if self._box_index is None:
            project = self.project
            self._box_index = box_index(project.boxes, getattr(project, "predictions", None),
                                        getattr(project, "annotations", None))
        items = box_items(boxes, self._box_index)
        picked = set(self.selection.picked)
        if picked:
            keep = [k for k, item in enumerate(items) if item in picked]
            if not keep:
                raise ValueError(f"None of the selected boxes is on the {len(picked)} picked "
                                 f"image(s): pick images with selected boxes to {verb} them, "
                                 "or unpick every image (nothing was changed).")
            items, boxes = [items[k] for k in keep], [boxes[k] for k in keep]
        return items, boxes, bool(picked)

    def _box_level(self) -> bool:
        return bool(self.selection.box_ids) and self.selection.ids is not None

    def _write(self, verb: str, write) -> tuple[int, str, int, bool]:
        """Write the typed tag to the selected items or boxes with ``store.add``/``remove``.

        ``verb`` ("tag" or "untag") names the write in the targets' errors. Returns the
        events written, what was written to ("item(s)" or "box(es) on n image(s)"), how many
        targets and whether they were picked in the gallery.
        """
        boxes: dict = {}
        if self._box_level():
            ids, box_ids, picked = self.box_targets(verb)
            boxes = {"box_ids": box_ids}
            what, total = f"box(es) on {len(set(ids))} image(s)", len(box_ids)
        else:
            ids, picked = self.targets(verb)
            what, total = "item(s)", len(ids)
        n = write(ids, self.tag_box.value, author=current_author(),
                  reason=self.reason_box.value or None, context=self._event_context(), **boxes)
        self.last_written = n
        self.refresh()
        return n, what, total, picked

    @guarded
    def add_tags(self) -> int:
        """Add the typed tag (with the reason) to the selected items or boxes.

        Returns the events written.
        """
        require_write("tag items")
        tag = self.tag_box.value.strip()
        n, what, total, picked = self._write("tag", self.store.add)
        scope = f" (the {total} picked)" if picked else ""
        self.status.value = (f"<span>Tagged {n} {what} {esc(tag)!s}{scope}"
                             f"{f' ({total - n} already had it)' if n < total else ''}"
                             ".</span>")
        return n

    @guarded
    def remove_tags(self) -> int:
        """Remove the typed tag from the selected items or boxes; return events written."""
        require_write("remove tags")
        tag = self.tag_box.value.strip()
        n, what, total, picked = self._write("untag", self.store.remove)
        scope = f" (of the {total} picked)" if picked else ""
        self.status.value = f"<span>Removed {esc(tag)} from {n} {what}{scope}.</span>"
        return n

    def __repr__(self) -> str:
        n = "None" if self.selection.ids is None else len(self.selection.ids)
        if self.selection.box_ids is not None:
            n = f"{n}, boxes={len(self.selection.box_ids)}"
        return (f"TagPanel(selected={n}, picked={len(self.selection.picked)}, "
                f"store={self.store!r}, read_only={self.read_only})")


def _target(row) -> str:
    """What a history row was about: the item, and the box when it is a box tag."""
    box = getattr(row, "box_id", None)
    if isinstance(box, str) and box:
        return f"{esc(row.item_id)} (box {esc(box)})"
    return esc(row.item_id)
