"""ReleasePanel: the label releases, what a new release would change, release and decide.

Curators write a label release (:meth:`Project.release_labels`) and record label decisions
(:meth:`Project.decide`) here; a read-only session (``WORKBENCH_ROLE=manager``) sees the
releases and the preview, and its handlers refuse to write even when called directly.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from ..errors import SchemaError
from ..kpis import release_table
from ..releases import list_releases, preview_release
from ..selection import Selection
from ..session import can_write, current_author, require_write
from ._adapters import StatusMixin, esc, guarded

__all__ = ["ReleasePanel", "class_changes"]

#: Changed items listed in the preview.
_PREVIEW_ROWS = 20
_PREVIEW_COLUMNS = ["item_id", "old_label", "new_label", "source", "annotators",
                    "decided_by", "decision_reason"]


def class_changes(changes: pd.DataFrame, classes) -> pd.DataFrame:
    """Per class, how many items a set of label changes moves out of it and into it.

    Parameters
    ----------
    changes : DataFrame
        ``old_label`` and ``new_label`` columns (a release's or a preview's changes).
    classes : sequence of str
        The project's classes (their order is kept; other labels follow, sorted).

    Returns
    -------
    DataFrame
        ``class``, ``n_left``, ``n_joined``, ``net``; only classes with a change.

    Examples
    --------
    >>> changes = pd.DataFrame({"old_label": ["1", "1"], "new_label": ["7", "4"]})
    >>> class_changes(changes, ["1", "4", "7"]).to_dict("list")
    {'class': ['1', '4', '7'], 'n_left': [2, 0, 0], 'n_joined': [0, 1, 1], 'net': [-2, 1, 1]}
    """
    missing = [c for c in ("old_label", "new_label") if c not in changes.columns]
    if missing:
        raise SchemaError(f"class_changes: the changes have no {missing} column(s); pass a "
                          "release's or a preview's changes (old_label, new_label).")
    left = changes["old_label"].dropna().astype(str).value_counts()
    joined = changes["new_label"].dropna().astype(str).value_counts()
    order = [str(c) for c in classes]
    order += sorted((set(left.index) | set(joined.index)) - set(order))
    rows = [(c, int(left.get(c, 0)), int(joined.get(c, 0))) for c in order]
    rows = [(c, a, b, b - a) for c, a, b in rows if a or b]
    return pd.DataFrame(rows, columns=["class", "n_left", "n_joined", "net"])


def _html_table(frame: pd.DataFrame, css: str) -> str:
    """An HTML table, every cell escaped (messages, reasons and labels are user text)."""
    head = "".join(f"<th>{esc(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc('' if pd.isna(v) else v)}</td>" for v in rec)
                   + "</tr>" for rec in frame.itertuples(index=False))
    return f"<table class='wb-table {css}'><tr>{head}</tr>{body}</table>"


class ReleasePanel(StatusMixin, w.VBox):
    """Label releases for curators: the list, a dry-run preview, *Release labels*, *Decide*.

    Parameters
    ----------
    project : Project
        A classification project opened from a folder (releases live in
        ``<project>/.workbench/releases``).
    selection : Selection, optional
        The shared selection: *Decide* applies to its items.
    store : TagStore, optional
        Where the relabel queue and the decisions are read for the preview. Default:
        ``TagStore.for_project(project)`` (the store ``release_labels`` uses).
    tag : str, default='relabel'
        The relabel queue whose verified items are released.

    Attributes
    ----------
    last_release : int
        Number of the last release written here (0 before any).
    preview : DataFrame or None
        What a release would change now (:func:`workbench.releases.preview_release`).

    Notes
    -----
    *Release labels* calls ``project.release_labels(message, author=current_author())``;
    *Decide* calls ``project.decide(item_id, label, author=..., reason=...)`` for each selected
    item. Both handlers call :func:`workbench.session.require_write` first: a read-only session
    never writes, even through a crafted widget message. Errors (nothing verified, another
    curator's release won) show in the error banner; a release is written whole or not at all.

    CSS classes: ``wb-release-panel`` and ``wb-ready`` (root), ``wb-release-list``,
    ``wb-releases-table``, ``wb-no-release``, ``wb-release-preview``, ``wb-release-message``,
    ``wb-release-button``, ``wb-decide-class``, ``wb-decide-reason``, ``wb-decide-button``,
    ``wb-release-status``, ``wb-readonly``, ``wb-error``.
    """

    last_release = traitlets.Int(0)

    def __init__(self, project: Any, selection: Selection | None = None, *, store: Any = None,
                 tag: str = "relabel", **kwargs: Any):
        if selection is not None and not isinstance(selection, Selection):
            raise TypeError("The 'selection' parameter of ReleasePanel must be a workbench "
                            f"Selection or None. Got {type(selection).__name__} instead.")
        if getattr(project, "root", None) is None:
            raise ValueError("ReleasePanel needs a project opened from a folder (releases are "
                             "kept in <project>/.workbench/releases). Write it with "
                             "wb.write_project(project, folder) and open it with "
                             "wb.open_project(folder).")
        if getattr(project, "task", "classification") != "classification":
            raise SchemaError("ReleasePanel: label releases are for classification projects; "
                              f"this is a {project.task} project.")
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self._given_store = store
        self.tag = str(tag)
        self.read_only = not can_write()
        self.raise_errors = False
        self.preview: pd.DataFrame | None = None

        self.releases_html = w.HTML("")
        self.releases_html.add_class("wb-release-list")
        self.preview_html = w.HTML("")
        self.preview_html.add_class("wb-release-preview")
        self.message_box = w.Text(value="", placeholder="What this release is",
                                  description="Message", layout=w.Layout(width="420px"))
        self.message_box.add_class("wb-release-message")
        self.release_button = w.Button(description="Release labels", icon="tag",
                                       button_style="primary",
                                       tooltip="Write a new label release of the verified "
                                               "and decided items")
        self.release_button.add_class("wb-release-button")
        self.class_picker = w.Dropdown(options=[str(c) for c in project.classes],
                                       description="Class", layout=w.Layout(width="200px"))
        self.class_picker.add_class("wb-decide-class")
        self.reason_box = w.Text(value="", placeholder="Why (kept with the decision)",
                                 description="Reason", layout=w.Layout(width="320px"))
        self.reason_box.add_class("wb-decide-reason")
        self.decide_button = w.Button(description="Decide", icon="gavel",
                                      tooltip="Record this label for the selected items")
        self.decide_button.add_class("wb-decide-button")
        self.status = w.HTML("")
        self.status.add_class("wb-release-status")
        self.release_button.on_click(lambda _b: self.release())
        self.decide_button.on_click(lambda _b: self.decide())
        if self.read_only:
            controls: w.Widget = w.HTML("<span>Read-only session: releases are shown but "
                                        "cannot be written or decided here.</span>")
            controls.add_class("wb-readonly")
        else:
            controls = w.VBox([w.HBox([self.message_box, self.release_button]),
                               w.HBox([self.class_picker, self.reason_box,
                                       self.decide_button])])
            controls.add_class("wb-release-controls")
        super().__init__([w.HTML("<b>Label releases</b>"), self.releases_html,
                          self.preview_html, controls, self.status, self._make_error_box()],
                         **kwargs)
        self.add_class("wb-release-panel")
        self.refresh()
        self.add_class("wb-ready")

    # ---- state -> view ----------------------------------------------------------------

    @property
    def store(self):
        """The tag store read for the preview (the project's default one unless given)."""
        if self._given_store is not None:
            return self._given_store
        from ..tags import TagStore

        return TagStore.for_project(self.project)

    def set_project(self, project: Any) -> None:
        """Use a re-read project (after an import, ``report.project``) and redraw."""
        self.project = project
        self.refresh()

    @guarded
    def refresh(self) -> None:
        """Re-read the releases and the preview of the next release (writes nothing)."""
        table = release_table(list_releases(self.project))
        if table.empty:
            self.releases_html.value = "<i class='wb-no-release'>No release yet.</i>"
        else:
            self.releases_html.value = _html_table(table, "wb-releases-table")
        preview = preview_release(self.project, tag=self.tag, store=self.store)
        self.preview = preview
        self.preview_html.value = self._preview_html(preview)

    def _preview_html(self, preview: pd.DataFrame) -> str:
        parent = preview.attrs.get("parent", 0)
        base = f"release {parent}" if parent else "the dataset's labels"
        unresolved = preview.attrs.get("unresolved") or []
        note = (f" {len(unresolved)} verified item(s) have no re-imported label (or a tie) "
                "and no decision: they keep their label." if unresolved else "")
        if preview.empty:
            return (f"<div><b>Next release</b>: nothing to release against {esc(base)} "
                    f"(verify re-imported items or decide labels).{esc(note)}</div>")
        counts = class_changes(preview, self.project.classes)
        per_class = ", ".join(f"{r.cls} {r.net:+d}" for r in
                              counts.rename(columns={"class": "cls"}).itertuples())
        head = preview[[c for c in _PREVIEW_COLUMNS if c in preview.columns]].head(
            _PREVIEW_ROWS)
        more = (f"<div>... and {len(preview) - len(head)} more</div>"
                if len(preview) > len(head) else "")
        return (f"<div><b>Next release</b> would change {len(preview)} label(s) against "
                f"{esc(base)}: {esc(per_class)}.{esc(note)}</div>"
                + _html_table(head, "wb-release-preview-table") + more)

    # ---- handlers ---------------------------------------------------------------------

    @guarded
    def release(self):
        """Write a release of the verified and decided items; return it."""
        require_write("release labels")
        message = self.message_box.value.strip()
        if not message:
            raise ValueError("Write a message saying what this release is (like a commit "
                             "message); nothing was written.")
        release = self.project.release_labels(message, author=current_author(), tag=self.tag)
        self.last_release = int(release.number)
        self.message_box.value = ""
        self.refresh()
        self.status.value = (f"<span>Release {release.number} written: "
                             f"{release.n_changed} label(s) changed.</span>")
        return release

    @guarded
    def decide(self) -> int:
        """Record the picked class for every selected item; return how many."""
        require_write("decide labels")
        ids = list(self.selection.ids or ())
        if not ids:
            raise ValueError("Select the items to decide first (in a gallery or a table); "
                             "nothing was written.")
        label = self.class_picker.value
        if label is None:
            raise ValueError("Pick the class the selected items get; nothing was written.")
        known = set(self.project.items["item_id"].astype(str))
        unknown = [i for i in ids if i not in known]
        if unknown:
            shown = ", ".join(repr(i) for i in unknown[:5])
            raise SchemaError(f"ReleasePanel.decide: {len(unknown)} selected item(s) are not "
                              f"in the project ({shown}); nothing was written.")
        reason = self.reason_box.value.strip() or None
        author = current_author()
        for item_id in ids:
            self.project.decide(item_id, label, author=author, reason=reason)
        self.refresh()
        self.status.value = (f"<span>Decided {len(ids)} item(s) as "
                             f"<b>{esc(label)}</b>.</span>")
        return len(ids)

    def __repr__(self) -> str:
        n = 0 if self.preview is None else len(self.preview)
        return (f"ReleasePanel(tag={self.tag!r}, pending_changes={n}, "
                f"read_only={self.read_only})")
