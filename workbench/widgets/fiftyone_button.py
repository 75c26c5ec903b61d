"""FiftyOneButton: open the shared selection in the FiftyOne App, pull its tags and selection.

FiftyOne is imported only when a button is clicked (through ``workbench.fiftyone_bridge``),
so building the widget is cheap and works without FiftyOne installed.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import traitlets

from ..selection import Selection
from ._adapters import StatusMixin, esc, guarded

__all__ = ["FiftyOneButton"]

_DISPLAYS = ("auto", "inline", "link")


class FiftyOneButton(StatusMixin, w.VBox):
    """A button that shows the shared selection in the FiftyOne App.

    Clicking *Open in FiftyOne* syncs the project into its FiftyOne dataset (incremental),
    launches the kernel's App session once (the first launch takes 30-40 s on 2 cores) and sets
    the App's view to exactly the selected items (every item when nothing is selected; only
    the selected boxes drawn when the selection holds box ids). In a
    notebook the App is shown inline below the button; in Voila (or with
    ``display='link'``) the status shows the App's URL as a link. *Use App selection* makes
    the samples selected in the App the shared selection; *Pull App tags* merges the tags
    changed in the App into the tag store (hidden in read-only sessions).

    In a text project (``project.is_text``) the whole widget is hidden: the App shows
    images, the workbench's gallery and item view show the texts (docs/text.md).

    Parameters
    ----------
    project : Project
        The project.
    selection : Selection, default=None
        The shared selection; a new one when None.
    port : int, default=None
        App port (env ``WORKBENCH_FIFTYONE_PORT``, else 5151).
    proxy_url : str, default=None
        The App's URL behind a proxy (env ``WORKBENCH_FIFTYONE_PROXY_URL``); see
        ``docs/fiftyone.md``.
    display : {'auto', 'inline', 'link'}, default='auto'
        ``'auto'``: inline in a notebook, a link in Voila or elsewhere.
    name : str, default=None
        The FiftyOne dataset; None means the one the project was last synced to (remembered
        in the project's ``.workbench/fiftyone.json``, see
        ``workbench.fiftyone_bridge.synced_dataset_name``), else ``workbench-<project name>``.

    Attributes
    ----------
    url : str
        The App's URL once opened (trait).
    n_open : int
        Items shown in the App by the last click (trait; -1 before any).

    CSS classes: ``wb-fiftyone`` (root), ``wb-fiftyone-button``, ``wb-fiftyone-status``,
    ``wb-fiftyone-pull-selection``, ``wb-fiftyone-pull-tags``, ``wb-fiftyone-app`` (the
    inline App output), ``wb-error`` (callback errors).

    Examples
    --------
    >>> app = wb.widgets.FiftyOneButton(project, selection)  # doctest: +SKIP
    >>> app  # doctest: +SKIP
    """

    url = traitlets.Unicode("")
    n_open = traitlets.Int(-1)

    def __init__(self, project, selection: Selection | None = None, *, port: int | None = None,
                 proxy_url: str | None = None, display: str = "auto",
                 name: str | None = None, **kwargs: Any):
        from .._validation import check_option

        check_option(display, "display", "FiftyOneButton", _DISPLAYS)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError("The 'name' parameter of FiftyOneButton must be a non-empty str "
                             f"or None. Got {name!r} instead.")
        if selection is not None and not isinstance(selection, Selection):
            raise TypeError("The 'selection' parameter of FiftyOneButton must be a "
                            f"workbench Selection or None. Got {type(selection).__name__} "
                            "instead.")
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.port = port
        self.proxy_url = proxy_url
        self.display_mode = display
        self.dataset_name = name
        self.raise_errors = False
        self.session = None

        self.button = w.Button(description="Open in FiftyOne", icon="external-link",
                               tooltip="Show the selected items in the FiftyOne App")
        self.button.add_class("wb-fiftyone-button")
        self.pull_selection_button = w.Button(description="Use App selection",
                                              tooltip="Make the samples selected in the App "
                                                      "the workbench selection")
        self.pull_selection_button.add_class("wb-fiftyone-pull-selection")
        self.pull_tags_button = w.Button(description="Pull App tags",
                                         tooltip="Record tags added or removed in the App in "
                                                 "the tag store")
        self.pull_tags_button.add_class("wb-fiftyone-pull-tags")
        from ..session import can_write

        if not can_write():
            self.pull_tags_button.layout.display = "none"
        self.status = w.HTML(self._idle_text())
        self.status.add_class("wb-fiftyone-status")
        self.app_output = w.Output()
        self.app_output.add_class("wb-fiftyone-app")
        self.button.on_click(lambda _b: self.open_app())
        self.pull_selection_button.on_click(lambda _b: self.pull_selection())
        self.pull_tags_button.on_click(lambda _b: self.pull_tags())
        self.selection.observe(self._on_selection, names=["ids", "box_ids"])
        super().__init__([w.HBox([self.button, self.pull_selection_button,
                                  self.pull_tags_button]),
                          self.status, self._make_error_box(), self.app_output], **kwargs)
        self.add_class("wb-fiftyone")
        if getattr(project, "is_text", False):  # the App is for images; nothing to open
            self.layout.display = "none"

    # ---- state -> view ----------------------------------------------------------------

    def _idle_text(self) -> str:
        ids, boxes = self.selection.ids, self.selection.box_ids
        what = "all items" if ids is None else f"{len(ids)} selected item(s)"
        if boxes is not None:
            what += f" with {len(boxes)} selected box(es)"
        app = f" The App: {self._link()}" if self.url else ""
        return f"<span>FiftyOne: click to open {esc(what)} in the App.{app}</span>"

    def _on_selection(self, change) -> None:
        self.status.value = self._idle_text()

    def _mode(self) -> str:
        if self.display_mode != "auto":
            return self.display_mode
        from ..fiftyone_bridge import _in_notebook, _in_voila

        return "inline" if _in_notebook() and not _in_voila() else "link"

    def _link(self) -> str:
        return (f'<a href="{esc(self.url)}" target="_blank" rel="noopener noreferrer">'
                f"{esc(self.url)}</a>")

    # ---- actions (callbacks) ----------------------------------------------------------

    @guarded
    def open_app(self):
        """Open the current selection in the App (what the button does); returns the session."""
        from ..fiftyone_bridge import open_in_fiftyone

        if getattr(self.project, "is_text", False):
            raise ValueError("This is a text project: the FiftyOne App shows images. Read the "
                             "texts in the gallery and the item view instead.")
        ids, boxes = self.selection.ids, self.selection.box_ids
        n = None if ids is None else len(ids)
        self.status.value = (f"<span>Opening {'all items' if n is None else f'{n} item(s)'} "
                             "in FiftyOne... (the first launch takes up to a minute)</span>")
        self.button.disabled = True
        try:
            session = open_in_fiftyone(ids, self.project, port=self.port,
                                       proxy_url=self.proxy_url, show=False,
                                       name=self.dataset_name, box_ids=boxes)
        except Exception:
            self.status.value = self._idle_text()
            raise
        finally:
            self.button.disabled = False
        self.session = session
        with self.hold_trait_notifications():
            self.url = session.url
            self.n_open = len(session.view) if session.view is not None else len(
                session.dataset)
        self.status.value = (f"<span>Showing {self.n_open} item(s) in FiftyOne: "
                             f"{self._link()}</span>")
        if self._mode() == "inline":
            self.app_output.clear_output()
            with self.app_output:
                session.show()
        return session

    @guarded
    def pull_selection(self):
        """Make the samples selected in the App the shared selection; returns the ids."""
        from ..fiftyone_bridge import selection_from_fiftyone

        if self.session is None:
            raise RuntimeError("Open the App first (Open in FiftyOne), select samples there, "
                               "then click Use App selection.")
        ids = selection_from_fiftyone(self.selection, session=self.session, origin=self)
        self.status.value = (f"<span>{len(ids)} item(s) selected in the App are now the "
                             f"selection. {self._link()}</span>")
        return ids

    @guarded
    def pull_tags(self):
        """Merge the App's tag changes into the tag store; returns the TagSyncStats."""
        from ..fiftyone_bridge import sync_tags_from_fiftyone
        from ..session import current_author

        stats = sync_tags_from_fiftyone(self.project, author=current_author(),
                                        name=self.dataset_name)
        extra = (f" Not pulled (invalid names): {esc(', '.join(stats.rejected))}."
                 if stats.rejected else "")
        self.status.value = (
            f"<span>Tags pulled from FiftyOne: {stats.store_added} added, "
            f"{stats.store_removed} removed in the tag store; {stats.fiftyone_added} added, "
            f"{stats.fiftyone_removed} removed in FiftyOne.{extra}</span>")
        return stats

    def __repr__(self) -> str:
        return f"FiftyOneButton({self.project!r}, {self.selection!r}, url={self.url!r})"
