"""ItemView: one item large, with everything the project knows about it.

The image at full resolution (read in the kernel through ``project.media_path``, confined
to the project folder, and sent as bytes) or the text (escaped, in a scrollable box); the
dataset label; every annotator's label with its time; every run's top-3 classes with their
probabilities; the label-issue score (:func:`workbench.label_issues`, computed once per
view) and the data-issue scores (:func:`workbench.data_issues`, when that module is there);
the item's tags and their history; its nearest neighbours in embedding space (when the
project has embeddings) as small cards with their labels.

Keys (typed in the view, or anywhere outside a text box while the view is the only item view
shown, or the one opened or clicked last): left / right move through the selection, ``r``
tags the item ``relabel`` (through :meth:`ItemView.tag_relabel`, which checks the write
permission itself: a read-only session is refused in the kernel, whatever the browser
sends). The keys and the clicks on neighbour cards come through :class:`ItemKeys`, a small
anywidget (an inline ES module, nothing loaded from elsewhere).

The gallery (:class:`workbench.widgets.gallery.ItemGallery`) opens a card here, so every
dashboard with a gallery has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anywidget
import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .._format import percent
from .._validation import check_int
from ..selection import Selection
from ..session import can_write, current_author, require_write
from ..tags import TagStore
from ._adapters import StatusMixin, esc, guarded

__all__ = ["ItemView", "ItemKeys", "top_classes"]

#: CSS class prefix that numbers the neighbour cards (``wb-nb-0`` ...).
NEIGHBOUR_CLASS = "wb-nb-"
#: Characters of a neighbour's text shown on its card.
_NEIGHBOUR_TEXT = 160
#: Characters of a data issue's related items shown (a large duplicate group is cut).
_RELATED_CHARS = 300

_ESM = """
function viewOf(el) { return el.closest(".wb-item-view"); }

function typing(target) {
  if (!target || !target.closest) return false;
  return !!target.closest("input, textarea, select, [contenteditable='true']");
}

export default {
  render({model, el}) {
    el.classList.add("wb-item-keys-hint");
    const show = () => { el.textContent = model.get("hint"); };
    show();
    model.on("change:hint", show);
    const onKey = (event) => {
      const view = viewOf(el);
      if (!view || typing(event.target)) return;
      // keys typed in the view, or outside every item view (and every text box) while this
      // view is shown and is the only one shown (or the one opened or clicked last)
      const other = event.target.closest && event.target.closest(".wb-item-view");
      const shown = [...document.querySelectorAll(".wb-item-view")]
        .filter((v) => v.offsetParent !== null);
      const mine = view.contains(event.target) || (!other && shown.includes(view) &&
        (shown.length === 1 || window.__wbItemView === view));
      if (!mine) return;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key;
      const tag = key.toLowerCase() === model.get("tag_key");
      if (key !== "ArrowLeft" && key !== "ArrowRight" && !tag) return;
      event.preventDefault();
      model.send({event: "key", key: key.length === 1 ? key.toLowerCase() : key,
                  item: model.get("item_id")});
    };
    const onClick = (event) => {
      const view = viewOf(el);
      if (!view || !view.contains(event.target)) return;
      window.__wbItemView = view;
      const card = event.target.closest(".wb-item-neighbour");
      if (!card || !view.contains(card)) return;
      const slot = [...card.classList].find((c) => c.startsWith("wb-nb-"));
      if (slot === undefined) return;
      model.send({event: "open", slot: Number(slot.slice(6)), item: model.get("item_id")});
    };
    const focus = () => {
      const view = viewOf(el);
      if (!view) return;
      if (view.tabIndex < 0) view.tabIndex = 0;
      window.__wbItemView = view;
      view.focus({preventScroll: true});
    };
    document.addEventListener("keydown", onKey, true);  // before the page's own handlers
    document.addEventListener("click", onClick);
    model.on("change:focus_epoch", focus);
    requestAnimationFrame(() => {  // opened before this view was drawn: take the focus now
      const v = viewOf(el);
      if (v && v.tabIndex < 0) v.tabIndex = 0;
      if (model.get("focus_epoch") > 0) focus();
    });
    return () => {
      document.removeEventListener("keydown", onKey, true);
      document.removeEventListener("click", onClick);
    };
  },
};
"""

_CSS = """
.wb-item-view:focus { outline: 2px solid #90caf9; }
.wb-item-view .wb-item-neighbour { cursor: pointer; }
.wb-item-keys-hint { font-size: 11px; color: #555; align-self: center; }
.wb-item-view table.wb-item-table td, .wb-item-view table.wb-item-table th {
  padding: 1px 8px 1px 0; text-align: left; vertical-align: top; }
"""


class ItemKeys(anywidget.AnyWidget):
    """Reports key presses and neighbour-card clicks made in the item view it is placed in.

    Only events inside the same ``wb-item-view`` element count (keys typed in a text box are
    left alone), so two item views on a page never answer each other.

    Parameters
    ----------
    on_message : callable
        ``on_message(content)`` for each browser message about the item the browser showed
        (``content["item"] == item_id``); messages about an item already replaced are dropped.
    hint : str
        Text shown in the view.
    """

    _esm = _ESM
    _css = _CSS
    hint = traitlets.Unicode("").tag(sync=True)
    #: The item shown (stale messages name another one).
    item_id = traitlets.Unicode("").tag(sync=True)
    #: The key that tags the item (lower case).
    tag_key = traitlets.Unicode("r").tag(sync=True)
    #: Bumped to move the keyboard focus to the view (when an item is opened).
    focus_epoch = traitlets.Int(0).tag(sync=True)

    def __init__(self, on_message, *, hint: str = "", **kwargs):
        super().__init__(hint=hint, **kwargs)
        self._on_message = on_message
        self.on_msg(self._handle)

    def _handle(self, _widget, content, _buffers) -> None:
        """Adapter: browser message -> ``on_message``; anything malformed or stale is ignored."""
        if not isinstance(content, dict) or content.get("item") != self.item_id:
            return
        if content.get("event") in ("key", "open"):
            self._on_message(content)


def top_classes(row: pd.Series, classes: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one prediction row (``prob_<class>`` columns).

    Parameters
    ----------
    row : Series
        A row of ``project.predictions``.
    classes : sequence of str
        The classes whose ``prob_<class>`` columns ``row`` has.
    k : int, default=3

    Returns
    -------
    list of (str, float)
        Most probable first; ties keep the class order.

    Examples
    --------
    >>> top_classes(pd.Series({"prob_a": 0.1, "prob_b": 0.7, "prob_c": 0.2}), ["a", "b", "c"], 2)
    [('b', 0.7), ('c', 0.2)]
    """
    probs = np.array([float(row[f"prob_{c}"]) for c in classes], dtype=float)
    order = np.argsort(-probs, kind="stable")[:k]
    return [(str(classes[i]), float(probs[i])) for i in order]


def _when(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` (UTC), escaped; missing -> empty."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp | np.datetime64):
        return esc(pd.Timestamp(value).strftime("%Y-%m-%d %H:%M"))
    return esc(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    """An HTML table of cells that are already escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='wb-item-table {cls}'><tr>{head}</tr>{body}</table>"


def _section(title: str, body: str, cls: str) -> str:
    return f"<div class='{cls}' style='margin-top:6px'><b>{esc(title)}</b><br>{body}</div>"


class _Facts:
    """What the view shows about an item, read from the project (expensive parts cached).

    The label issues and data issues are computed once, on first use, and kept; a failure is
    kept too (as the note shown instead), so a project without probabilities is not
    recomputed on every item.
    """

    def __init__(self, project: Any, store: TagStore):
        self.project = project
        self.store = store
        self.items = project.items.set_index("item_id", drop=False)
        self._label_issues: pd.DataFrame | str | None = None
        self._data_issues: pd.DataFrame | str | None = None
        self._reference: pd.Series | None = None
        #: Said under the data issues (what was not checked), "" when all was.
        self.data_note = ""

    def label_issues(self) -> pd.DataFrame | str:
        """``label_issues(project)`` indexed by item id, or the note why there are none."""
        if self._label_issues is None:
            from .. import results

            try:
                self._label_issues = results.label_issues(self.project).set_index("item_id")
            except Exception as exc:  # no probabilities, no labels: shown as a note
                self._label_issues = f"No label-issue scores: {exc}"
        return self._label_issues

    def data_issues(self) -> pd.DataFrame | str:
        """``data_issues(project)``, or the note why there are none."""
        if self._data_issues is None:
            try:
                from ..data_issues import data_issues
            except ImportError:
                self._data_issues = "Data-issue scores are not available in this version."
                return self._data_issues
            try:
                embedded = len(self.project.embedding_matrix()[0]) \
                    if getattr(self.project, "has_embeddings", False) else 0
                if embedded >= 2:  # k neighbours need k + 1 items: fewer on a small project
                    self._data_issues = data_issues(self.project, k=min(10, embedded - 1))
                else:  # exact duplicates (file content) need no embeddings
                    self._data_issues = data_issues(self.project,
                                                    issue_types=["exact_duplicate"])
                    self.data_note = ("Only exact duplicates were checked: this project has "
                                      + ("no embeddings" if not embedded else "one embedded item")
                                      + " (`workbench embed PROJECT` adds them).")
            except Exception as exc:  # shown as a note
                self._data_issues = f"No data-issue scores: {exc}"
        return self._data_issues

    def label(self, item_id: str) -> Any:
        if "label" in self.items.columns and item_id in self.items.index:
            value = self.items.at[item_id, "label"]
            return None if pd.isna(value) else value
        return None

    def reference(self, item_id: str) -> Any:
        if self._reference is None:
            try:
                self._reference = self.project.reference_labels()
            except Exception:  # a project without labels at all
                self._reference = pd.Series(dtype=object)
        value = self._reference.get(item_id)
        return None if value is None or pd.isna(value) else value

    def text(self, item_id: str) -> str | None:
        if not getattr(self.project, "is_text", False):
            return None
        return self.project.item_text(item_id)


class ItemView(StatusMixin, w.VBox):
    """One item large: media, labels, annotators, runs, issue scores, tags, neighbours.

    Parameters
    ----------
    project : Project
        A classification project (images or texts).
    selection : Selection, default=None
        The shared selection: left / right move through its items (or through the order
        given to :meth:`show`, the gallery's). A new one when None.
    store : TagStore, default=None
        Default: ``TagStore.for_project(project)`` (the tag panel's store).
    n_neighbours : int, default=8
        Nearest neighbours shown (``workbench.embeddings.nearest``), when the project has
        embeddings; without them the section says how to add them.
    relabel_tag : str, default="relabel"
        The tag the ``r`` key (and the button) puts on the item.

    Attributes
    ----------
    item_id : str or None
        The item shown (None: the view is empty).
    neighbour_ids : list of str
        The neighbours shown, nearest first.

    Notes
    -----
    CSS classes: ``wb-item-view`` (root), ``wb-item-title``, ``wb-item-image``,
    ``wb-item-text``, ``wb-item-details`` (labels, ``wb-item-annotators``, ``wb-item-runs``,
    ``wb-item-label-issue``, ``wb-item-data-issues``), ``wb-item-tags``,
    ``wb-item-neighbours`` (cards ``wb-item-neighbour wb-nb-<i>``), ``wb-item-prev``,
    ``wb-item-next``, ``wb-item-relabel``, ``wb-item-close``, ``wb-readonly``, ``wb-error``.

    Examples
    --------
    >>> view = ItemView(project, selection)  # doctest: +SKIP
    >>> view.show("img-0042")  # doctest: +SKIP
    """

    item_id = traitlets.Unicode(None, allow_none=True)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 store: TagStore | None = None, n_neighbours: int = 8,
                 relabel_tag: str = "relabel"):
        if selection is not None and not isinstance(selection, Selection):
            raise TypeError("The 'selection' parameter of ItemView must be a workbench "
                            f"Selection or None. Got {type(selection).__name__} instead.")
        if getattr(project, "task", "classification") == "detection":
            raise ValueError("ItemView shows classification items (images or texts); this "
                             "project's task is 'detection': use the detection explorer's "
                             "gallery, which draws the boxes.")
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.store = store if store is not None else TagStore.for_project(project)
        self.n_neighbours = check_int(n_neighbours, "n_neighbours", "ItemView", minimum=0)
        self.relabel_tag = str(relabel_tag)
        self.read_only = not can_write()
        self.raise_errors = False
        self.neighbour_ids: list[str] = []
        self._order: list[str] | Callable[[], Sequence[str]] | None = None
        self._facts = _Facts(project, self.store)
        self.title = w.HTML("")
        self.title.add_class("wb-item-title")
        self.prev_button = w.Button(description="◀", tooltip="Previous item (left arrow)",
                                    layout=w.Layout(width="44px"))
        self.next_button = w.Button(description="▶", tooltip="Next item (right arrow)",
                                    layout=w.Layout(width="44px"))
        self.close_button = w.Button(description="Close", layout=w.Layout(width="70px"))
        self.relabel_button = w.Button(description=f"Tag {self.relabel_tag} (r)",
                                       icon="tag", layout=w.Layout(width="auto"))
        for b, cls in ((self.prev_button, "wb-item-prev"), (self.next_button, "wb-item-next"),
                       (self.close_button, "wb-item-close"),
                       (self.relabel_button, "wb-item-relabel")):
            b.add_class(cls)
        self.key_events = ItemKeys(
            self._on_browser, hint=f"← → move through the selection, r tags {self.relabel_tag}")
        if self.read_only:
            note = w.HTML("<span>Read-only session: tags are shown but cannot be changed "
                          "here.</span>")
            note.add_class("wb-readonly")
            write_part: w.Widget = note
        else:
            write_part = self.relabel_button
        header = w.HBox([self.prev_button, self.next_button, self.title, write_part,
                         self.close_button, self.key_events], layout=w.Layout(grid_gap="6px"))
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", display="none"))
        self.image.add_class("wb-item-image")
        self.text = w.HTML("", layout=w.Layout(display="none"))
        self.text.add_class("wb-item-text")
        self.details = w.HTML("")
        self.details.add_class("wb-item-details")
        self.tags_html = w.HTML("")
        self.tags_html.add_class("wb-item-tags")
        self.neighbours_note = w.HTML("")
        self.neighbour_cards = [self._neighbour_card(k) for k in range(self.n_neighbours)]
        grid = w.HBox([c[0] for c in self.neighbour_cards],
                      layout=w.Layout(flex_flow="row wrap", grid_gap="4px"))
        neighbours = w.VBox([w.HTML("<b>Nearest neighbours</b>"), self.neighbours_note, grid])
        neighbours.add_class("wb-item-neighbours")
        self.neighbours_box = neighbours
        body = w.HBox([w.VBox([self.image, self.text], layout=w.Layout(max_width="60%")),
                       w.VBox([self.details, self.tags_html])],
                      layout=w.Layout(grid_gap="12px"))
        super().__init__([header, self._make_error_box(), body, neighbours],
                         layout=w.Layout(border="1px solid #bbb", padding="6px"))
        self.add_class("wb-item-view")
        self.prev_button.on_click(lambda _b: self.prev())
        self.next_button.on_click(lambda _b: self.next())
        self.relabel_button.on_click(lambda _b: self.tag_relabel())
        self.close_button.on_click(lambda _b: self.close_item())
        self.selection.observe(self._on_selection, names=["ids"])
        self.render()

    def _neighbour_card(self, k: int) -> tuple:
        image = w.Image(format="png", layout=w.Layout(width="64px", height="64px"))
        caption = w.HTML("")
        box = w.VBox([image, caption], layout=w.Layout(width="100px", padding="2px",
                                                       border="1px solid #ddd",
                                                       display="none"))
        box.add_class("wb-item-neighbour")
        box.add_class(f"{NEIGHBOUR_CLASS}{k}")
        return box, image, caption

    # ---- state ------------------------------------------------------------------------

    @property
    def order(self) -> list[str]:
        """The items left / right move through.

        The order given to :meth:`show`, else the selection's items.
        """
        if callable(self._order):
            return list(self._order())
        if self._order is not None:
            return self._order
        return list(self.selection.ids or ())

    def show(self, item_id: str, order: Sequence[str] | None = None) -> None:
        """Open ``item_id`` (and move the keyboard focus to the view).

        Parameters
        ----------
        item_id : str
            An item of the project.
        order : sequence of str or callable, optional
            The items left / right move through: a list (kept until the selection changes)
            or a function returning the current list (the gallery passes its own order).
            Default: the selection's items.

        Raises
        ------
        ValueError
            When the project has no item ``item_id``.
        """
        item_id = str(item_id)
        if item_id not in self._facts.items.index:
            raise ValueError(f"Item {item_id!r} is not in the project; pick one of its "
                             f"{len(self._facts.items)} items.")
        if callable(order):
            self._order = order
        elif order is not None:
            self._order = [str(i) for i in order]
        self.item_id = item_id
        self.render()
        self.key_events.focus_epoch += 1

    def step(self, delta: int) -> None:
        """Show the item ``delta`` places away in :attr:`order` (clipped to its ends)."""
        order = self.order
        if self.item_id is None or not order:
            return
        try:
            pos = order.index(self.item_id)
        except ValueError:  # the item left the selection: start from its first item
            pos = -1 if delta > 0 else len(order)
        new = min(max(pos + int(delta), 0), len(order) - 1)
        if order[new] != self.item_id:
            self.item_id = order[new]
            self.render()

    def next(self) -> None:
        """Show the next item of the selection."""
        self.step(1)

    def prev(self) -> None:
        """Show the previous item of the selection."""
        self.step(-1)

    def close_item(self) -> None:
        """Empty the view (the gallery hides it)."""
        self.item_id = None
        self.render()

    @guarded
    def tag_relabel(self) -> int:
        """Tag the item shown with :attr:`relabel_tag` (the ``r`` key); return events written.

        Raises
        ------
        ReadOnlyError
            In a read-only session (shown in the view's error banner).
        """
        return self._tag_relabel()

    def _tag_relabel(self) -> int:
        require_write(f"tag items {self.relabel_tag}")
        if self.item_id is None:
            raise ValueError("No item is open: open an item to tag it (nothing was changed).")
        n = self.store.add([self.item_id], self.relabel_tag, author=current_author(),
                           context={"view": "ItemView"})
        self._render_tags()
        return n

    @guarded
    def _on_browser(self, content: dict) -> None:
        """Adapter: a key or a neighbour click from the browser -> a method."""
        if content["event"] == "key":
            key = content.get("key")
            if key == "ArrowLeft":
                self.prev()
            elif key == "ArrowRight":
                self.next()
            elif key == self.key_events.tag_key:
                self._tag_relabel()  # the error, if any, goes to the banner once
        else:
            slot = content.get("slot")
            if type(slot) is int and 0 <= slot < len(self.neighbour_ids):
                self.item_id = self.neighbour_ids[slot]
                self.render()

    def _on_selection(self, change) -> None:
        if not callable(self._order):
            self._order = None  # a new selection: move through its items
        self._safe(self._render_title)

    # ---- view -------------------------------------------------------------------------

    @guarded
    def render(self) -> None:
        """Show the current item (or an empty view)."""
        item_id = self.item_id
        self.key_events.item_id = item_id or ""
        self.layout.display = "none" if item_id is None else None
        if item_id is None:
            self.neighbour_ids = []
            return
        self._render_title()
        self.details.value = ""  # never the previous item's details under this title
        self._render_media(item_id)
        self.details.value = self._details(item_id)
        self._render_tags()
        self._render_neighbours(item_id)

    def _render_title(self) -> None:
        if self.item_id is None:
            return
        order = self.order
        where = ""
        if self.item_id in order:
            where = f" &middot; {order.index(self.item_id) + 1} of {len(order)}"
        self.title.value = f"<b>{esc(self.item_id)}</b>{where}"
        pos = order.index(self.item_id) if self.item_id in order else None
        self.prev_button.disabled = pos is None or pos <= 0
        self.next_button.disabled = pos is None or pos >= len(order) - 1

    def _render_media(self, item_id: str) -> None:
        from .gallery import read_image

        text = self._facts.text(item_id)
        if getattr(self.project, "is_text", False) and (text is None or not text.strip()):
            self.text.value = ("<i>No text for this item (missing, empty, not UTF-8 or outside "
                               "the project folder).</i>")
            self.text.layout.display = None
            self.image.layout.display = "none"
            return
        if text is not None:
            self.text.value = ("<div style='max-height:420px;overflow:auto;white-space:pre-wrap;"
                               "border:1px solid #ddd;padding:6px;font-size:13px'>"
                               f"{esc(text, quote=False)}</div>")
            self.text.layout.display = None
            self.image.layout.display = "none"
            return
        image = read_image(self.project.media_path(item_id))
        if image is None:
            self.text.value = "<i>No image for this item (missing, unreadable or outside the " \
                              "project folder).</i>"
            self.text.layout.display = None
            self.image.layout.display = "none"
        else:
            self.image.format, self.image.value = image[1], image[0]
            self.image.layout.display = None
            self.text.layout.display = "none"

    def _details(self, item_id: str) -> str:
        facts = self._facts
        parts = []
        label, ref = facts.label(item_id), facts.reference(item_id)
        lines = [f"dataset label: <b>{esc(label)}</b>" if label is not None
                 else "dataset label: <i>none</i>"]
        if label is None and ref is not None:
            lines.append(f"annotators' consensus: <b>{esc(ref)}</b>")
        row = facts.items.loc[item_id]
        meta = [c for c in getattr(self.project, "metadata_columns", []) if c in row.index]
        if meta:
            lines.append("; ".join(f"{esc(c)}={esc(row[c])}" for c in meta))
        parts.append(_section("Labels", "<br>".join(lines), "wb-item-labels"))
        parts.append(self._annotators(item_id))
        parts.append(self._runs(item_id, ref if label is None else label))
        parts.append(self._label_issue(item_id))
        parts.append(self._data_issues(item_id))
        return "".join(parts)

    def _annotators(self, item_id: str) -> str:
        ann = self.project.annotations
        rows = ann[ann["item_id"] == item_id] if len(ann) else ann
        if not len(rows):
            return _section("Annotators", "<i>no annotations</i>", "wb-item-annotators")
        keys = ["annotator"] + (["annotated_at"] if "annotated_at" in rows.columns else [])
        rows = rows.sort_values(keys, kind="stable")
        cells = [[esc(r["annotator"]), f"<b>{esc(r['label'])}</b>",
                  _when(r.get("annotated_at"))] for _, r in rows.iterrows()]
        return _section("Annotators", _table(["annotator", "label", "when"], cells, ""),
                        "wb-item-annotators")

    def _runs(self, item_id: str, shown: Any) -> str:
        pred = self.project.predictions
        rows = pred[pred["item_id"] == item_id] if len(pred) else pred
        if not len(rows):
            return _section("Model runs", "<i>no predictions</i>", "wb-item-runs")
        probs = list(getattr(self.project, "prob_columns", []))
        cells = []
        for _, r in rows.iterrows():
            if probs:
                top = top_classes(r, self.project.classes, 3)
            else:
                conf = r.get("confidence")
                top = [(str(r["label"]), None if conf is None or pd.isna(conf) else float(conf))]
            right = shown is not None and top[0][0] == str(shown)
            color = "#1b5e20" if right else ("#b00020" if shown is not None else "#333")
            classes = " &middot; ".join(
                f"<span style='color:{color if i == 0 else '#333'}'><b>{esc(c)}</b> "
                f"{esc(percent(p))}</span>" for i, (c, p) in enumerate(top))
            cells.append([esc(r["run"]), classes])
        return _section("Model runs (top 3)", _table(["run", "classes"], cells, ""),
                        "wb-item-runs")

    def _label_issue(self, item_id: str) -> str:
        issues = self._facts.label_issues()
        if isinstance(issues, str):
            body = f"<i>{esc(issues)}</i>"
        elif item_id not in issues.index:
            body = "<i>not scored (no label or no probabilities for this item)</i>"
        else:
            r = issues.loc[item_id]
            flag = ("<b style='color:#b00020'>flagged as a likely label error</b>"
                    if bool(r["is_issue"]) else "not flagged")
            body = (f"label quality {esc(percent(r['label_quality']))} (rank "
                    f"{int(r['rank'])} of {len(issues)}, 1 = most suspicious) &middot; {flag}"
                    f" &middot; suggested: <b>{esc(r['suggested_label'])}</b>")
        run = getattr(self.project, "default_run", None)
        title = "Label issue" + (f" (run {run})" if run is not None else "")
        return _section(title, body, "wb-item-label-issue")

    def _data_issues(self, item_id: str) -> str:
        issues = self._facts.data_issues()
        if isinstance(issues, str):
            return _section("Data issues", f"<i>{esc(issues)}</i>", "wb-item-data-issues")
        mine = issues[issues["item_id"].astype(str) == item_id]
        note = f"<br><i>{esc(self._facts.data_note)}</i>" if self._facts.data_note else ""
        if not len(mine):
            return _section("Data issues", "none found" + note, "wb-item-data-issues")
        cells = []
        for _, r in mine.iterrows():
            score, related = r.get("score"), r.get("related")
            leak = " (leak across splits)" if bool(r.get("is_leak", False)) else ""
            if isinstance(related, str) and len(related) > _RELATED_CHARS:
                related = related[:_RELATED_CHARS] + "…"
            cells.append([f"{esc(r['issue_type'])}{leak}",
                          esc(percent(None if score is None or pd.isna(score) else score)),
                          esc(related)])
        return _section("Data issues (score: higher is worse)",
                        _table(["issue", "score", "related"], cells, "") + note,
                        "wb-item-data-issues")

    def _render_tags(self) -> None:
        if self.item_id is None:
            return
        current = self.store.tags([self.item_id])
        tags = (", ".join(f"<b>{esc(t)}</b>" for t in pd.unique(current["tag"]))
                if len(current) else "<i>none</i>")
        hist = self.store.history(self.item_id)
        lines = "".join(
            f"<li>{_when(r.created_at)} {esc(r.author)} "
            f"{'added' if r.action == 'add' else 'removed'} <b>{esc(r.tag)}</b>"
            f"{'' if r.box_id is None or pd.isna(r.box_id) else ' on box ' + esc(r.box_id)}"
            f"{': ' + esc(r.reason) if isinstance(r.reason, str) else ''}</li>"
            for r in hist.iloc[::-1].itertuples())
        history = f"<ul style='margin:2px 0'>{lines}</ul>" if lines else ""
        self.tags_html.value = _section("Tags", f"{tags}{history}", "wb-item-tag-list")

    def _render_neighbours(self, item_id: str) -> None:
        self.neighbour_ids = []
        note, frame = self._nearest(item_id)
        if frame is not None:
            self.neighbour_ids = [str(i) for i in frame["item_id"].tolist()]
        self.neighbours_note.value = f"<i>{esc(note)}</i>" if note else ""
        self.neighbours_box.layout.display = None
        for k, (box, image, caption) in enumerate(self.neighbour_cards):
            if k >= len(self.neighbour_ids):
                box.layout.display = "none"
                continue
            nid = self.neighbour_ids[k]
            label = self._facts.label(nid)
            label = label if label is not None else self._facts.reference(nid)
            lines = [f"<b>{esc(nid)}</b>", f"label: <b>{esc(label)}</b>" if label is not None
                     else "label: <i>none</i>"]
            text = self._facts.text(nid)
            if text is not None:
                short = text if len(text) <= _NEIGHBOUR_TEXT else text[:_NEIGHBOUR_TEXT] + "…"
                lines.append(f"<span style='color:#555'>{esc(short, quote=False)}</span>")
                image.layout.display = "none"
            else:
                from .gallery import read_image

                data = read_image(self.project.media_path(nid))
                if data is None:
                    image.layout.display = "none"
                else:
                    image.format, image.value = data[1], data[0]
                    image.layout.display = None
            caption.value = ("<div style='font-size:11px;line-height:1.3;word-break:break-all'>"
                             + "<br>".join(lines) + "</div>")
            box.layout.display = None

    def _nearest(self, item_id: str) -> tuple[str, pd.DataFrame | None]:
        """``(note, frame)``: the neighbours (``item_id``, ``distance``) or why there are none."""
        if self.n_neighbours == 0:
            return "", None
        if not getattr(self.project, "has_embeddings", False):
            return ("No neighbours: this project has no embeddings. Add embeddings.parquet "
                    "or run `workbench embed PROJECT`."), None
        try:
            from ..embeddings import nearest
        except ImportError:
            return "No neighbours: embeddings are not available in this version.", None
        try:
            frame = nearest(self.project, item_id, k=self.n_neighbours)
        except Exception as exc:  # e.g. this item has no vector: shown as a note
            why = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # unquoted
            return f"No neighbours: {why}", None
        return "", frame

    def __repr__(self) -> str:
        return f"ItemView({self.item_id!r}, {len(self.order)} in the selection)"
