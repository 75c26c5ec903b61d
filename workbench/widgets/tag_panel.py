"""TagPanel: tag the picked or selected items (with a reason), see tag counts and history."""

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
        self.selection.observe(self._on_selection, names=["ids", "picked"])
        self.refresh()

    # ---- state -> view ----------------------------------------------------------------

    def _on_selection(self, change) -> None:
        self._show_selection()

    def _show_selection(self) -> None:
        ids, picked = self.selection.ids, self.selection.picked
        add, remove = "Add tag", "Remove tag"
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
                f"{esc(r.item_id)}{': ' + esc(r.reason) if isinstance(r.reason, str) else ''}"
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

    @guarded
    def add_tags(self) -> int:
        """Add the typed tag (with the reason) to the selected items; return events written."""
        require_write("tag items")
        ids, picked = self.targets("tag")
        n = self.store.add(ids, self.tag_box.value, author=current_author(),
                           reason=self.reason_box.value or None, context=self._event_context())
        self.last_written = n
        self.refresh()
        tag = self.tag_box.value.strip()
        scope = f" (the {len(ids)} picked)" if picked else ""
        self.status.value = (f"<span>Tagged {n} item(s) {esc(tag)!s}{scope}"
                             f"{f' ({len(ids) - n} already had it)' if n < len(ids) else ''}"
                             ".</span>")
        return n

    @guarded
    def remove_tags(self) -> int:
        """Remove the typed tag from the selected items; return events written."""
        require_write("remove tags")
        ids, picked = self.targets("untag")
        n = self.store.remove(ids, self.tag_box.value, author=current_author(),
                              reason=self.reason_box.value or None,
                              context=self._event_context())
        self.last_written = n
        self.refresh()
        tag = self.tag_box.value.strip()
        scope = f" (of the {len(ids)} picked)" if picked else ""
        self.status.value = f"<span>Removed {esc(tag)} from {n} item(s){scope}.</span>"
        return n

    def __repr__(self) -> str:
        n = "None" if self.selection.ids is None else len(self.selection.ids)
        return (f"TagPanel(selected={n}, picked={len(self.selection.picked)}, "
                f"store={self.store!r}, read_only={self.read_only})")
