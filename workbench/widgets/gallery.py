"""ItemGallery: thumbnails of the selected items, paginated over a fixed pool of cards.

Cards can be picked (click, shift-click for a range, select page / none): the picks go to
the shared ``Selection.picked``, and the tag panel then acts on them only.

In a detection project every card draws the image's boxes (reference and predicted, the
selected ones highlighted) in the kernel (:mod:`workbench.widgets._detection_cards`), and a
box-level selection can be shown as crops, one card per selected box. With
``show_annotations`` every annotator's boxes are drawn too, each annotator in its own colour
(a fixed colourblind-safe palette given by sorted annotator name,
:data:`workbench.widgets._detection_data.ANNOTATOR_PALETTE`), with a legend above the cards.
"""

from __future__ import annotations

import io
import os
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .._validation import check_int, latest_annotations
from ..selection import Selection
from ._adapters import StatusMixin, esc, guarded
from ._detection_data import DetectionData, detection_data
from ._picks import PICKED_CLASS, SLOT_CLASS, CardClicks, range_pick, toggle_pick

__all__ = ["ItemGallery", "read_image", "text_html"]

_WEB_FORMATS = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
}
#: Detection: predictions below this confidence are not drawn at first (a slider changes it).
DEFAULT_MIN_CONFIDENCE = 0.3
#: Largest image file read into the kernel for a thumbnail.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Characters of a text item shown on its card before "more" (the rest expands in place).
TEXT_PREVIEW_CHARS = 280
#: A card's "open" link (the item view); a click on it opens, it does not pick.
_OPEN_LINK = ("<div style='font-size:11px;text-align:right'><span class='wb-card-open' "
              "role='button' title='Show this item large'>open &#x2922;</span></div>")


def read_image(path) -> tuple[bytes, str] | None:
    """Bytes and format of an image file for ``ipywidgets.Image``, or None if unusable.

    PNG/JPEG/GIF are sent as they are (after checking that Pillow can parse them); other
    formats Pillow reads (BMP, TIFF, ...) are converted to PNG. Anything missing, too large,
    or unreadable gives None (the card shows a placeholder).
    """
    if path is None or not os.path.isfile(path):  # a FIFO would block the kernel
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)
    except OSError:
        return None
    if not data or len(data) > MAX_IMAGE_BYTES:
        return None
    fmt = next((f for magic, f in _WEB_FORMATS.items() if data.startswith(magic)), None)
    try:
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(data)) as im:
            if fmt is not None:
                im.verify()
                return data, fmt
            im.load()
            out = io.BytesIO()
            im.convert("RGBA" if "A" in im.getbands() else "RGB").save(out, format="PNG")
            return out.getvalue(), "png"
    except ImportError:  # pragma: no cover - pillow is a core dependency
        return (data, fmt) if fmt else None
    except Exception:  # any decoding failure -> placeholder
        return None


def text_html(text: str | None, *, limit: int = TEXT_PREVIEW_CHARS) -> str:
    """A text item as escaped HTML: its first ``limit`` characters, the rest behind "more".

    The whole text is escaped (``<`` stays text, never markup) and kept as written (line
    breaks and spaces, ``white-space: pre-wrap``). A text longer than ``limit`` is a
    ``<details>`` element (CSS class ``wb-text-more``): the summary shows the beginning,
    opening it shows the whole text. None (a missing or unreadable file) and a text of only
    whitespace give "no text".

    Parameters
    ----------
    text : str or None
    limit : int, default=280

    Returns
    -------
    str
        HTML for an ``ipywidgets.HTML`` (CSS class ``wb-text``).

    Examples
    --------
    >>> text_html("a <b> tag")
    "<div class='wb-text' style='white-space:pre-wrap;word-break:break-word'>a &lt;b&gt; tag</div>"
    """
    style = "white-space:pre-wrap;word-break:break-word"
    if text is None or not text.strip():  # missing, unreadable or empty: said, not blank
        return "<div class='wb-text wb-text-missing' style='color:#777'><i>no text</i></div>"
    if len(text) <= limit:
        return f"<div class='wb-text' style='{style}'>{esc(text)}</div>"
    cut = text.rfind(" ", 0, limit)
    cut = cut if cut > limit // 2 else limit
    return (f"<div class='wb-text' style='{style}'><details class='wb-text-more'><summary "
            f"title='Show the whole text'>{esc(text[:cut])} <span style='color:#1565c0'>"
            f"&#8230; more ({len(text):,} characters)</span></summary>{esc(text)}"
            f"</details></div>")


class _Card:
    """One reusable card: image + placeholder + caption (CSS classes ``wb-card``, ``wb-slot-i``).

    A text card (``text=True``) shows the item's text (CSS class ``wb-card-text``) instead
    of the image and placeholder.

    ``shared`` is ``(html_style, caption_layout)``, one of each for every card of a gallery
    (fewer widget models for the browser to build); None for the first card, whose caption's
    style and layout the others then share.
    """

    def __init__(self, size: int, slot: int, shared: tuple | None = None, *,
                 boxes: bool = False, text: bool = False):
        if shared is None:
            self.caption = w.HTML("", layout=w.Layout())
        else:
            self.caption = w.HTML("", style=shared[0], layout=shared[1])
        self.caption.add_class("wb-card-caption")
        html_style = self.caption.style
        self.text = None
        if text:  # a text item: its (escaped, expandable) text above the caption
            self.image = self.placeholder = self.figure = None
            self.text = w.HTML("", layout=w.Layout(width=f"{size}px"), style=html_style)
            self.text.add_class("wb-card-text")
            parts = [self.text, self.caption]
        elif boxes:  # a detection card: one HTML picture (image + SVG boxes)
            self.image = self.placeholder = None
            self.figure = w.HTML("", style=html_style)
            self.figure.add_class("wb-card-figure")
            parts = [self.figure, self.caption]
        else:
            self.figure = None
            self.image = w.Image(format="png", layout=w.Layout(width=f"{size}px",
                                                               height=f"{size}px"))
            self.image.add_class("wb-card-image")
            self.placeholder = w.HTML(
                f"<div style='width:{size}px;height:{size}px;display:flex;"
                "align-items:center;justify-content:center;background:#eee;color:#777;"
                "font-size:11px'>no image</div>",
                layout=w.Layout(display="none"), style=html_style)
            self.placeholder.add_class("wb-placeholder")
            parts = [self.image, self.placeholder, self.caption]
        self.box = w.VBox(parts, layout=w.Layout(padding="4px", border="1px solid #ddd",
                                                 display="none"))
        self.box.add_class("wb-card")
        self.box.add_class(f"{SLOT_CLASS}{slot}")
        self.item_id: str | None = None
        self.record: dict | None = None  # detection: what the card drew


class _Lookups:
    """What the cards show, indexed by item id: built once per project (predictions: per run).

    Parameters
    ----------
    project : Project
    run : str or None
        The run whose predictions are shown (None: ``project.default_run``).
    """

    def __init__(self, project: Any, run: str | None = None):
        self.project = project
        self._cache: dict = {}
        self.run = run

    def set_run(self, run: str | None) -> None:
        """Show the predictions of ``run`` from now on."""
        self.run = run
        self._cache.pop("pred", None)

    def items(self) -> pd.DataFrame:
        """The items, indexed by ``item_id``."""
        if "items" not in self._cache:
            frame = self.project.items.set_index("item_id", drop=False)
            frame.index.get_indexer(frame.index[:1])  # build the hash table now, not on click
            self._cache["items"] = frame
        return self._cache["items"]

    def pred(self) -> pd.DataFrame | None:
        """The run's prediction (label, confidence) per item, or None."""
        if "pred" not in self._cache:
            p = self.project.predictions
            run = self.run or getattr(self.project, "default_run", None)
            frame = None
            if run is not None and len(p):
                cols = [c for c in ("item_id", "label", "confidence") if c in p.columns]
                frame = p.loc[p["run"] == run, cols].drop_duplicates("item_id", keep="last")
                frame = frame.set_index("item_id")
                frame.index.get_indexer(frame.index[:1])
            self._cache["pred"] = frame
        return self._cache["pred"]

    def ann(self) -> pd.DataFrame | None:
        """Every annotator's latest label per item, or None."""
        if "ann" not in self._cache:
            a = self.project.annotations
            frame = None
            if len(a):
                a = latest_annotations(a)
                frame = a[["item_id", "annotator", "label"]].sort_values(
                    ["item_id", "annotator"], kind="stable").set_index("item_id")
            self._cache["ann"] = frame
        return self._cache["ann"]

    def reference(self) -> pd.Series | None:
        """The reference label per item, or None."""
        if "ref" not in self._cache:
            try:
                self._cache["ref"] = self.project.reference_labels()
            except Exception:  # a project without labels at all: show none
                self._cache["ref"] = None
        return self._cache["ref"]

    def caption(self, item_id: str) -> str:
        """The card's HTML for ``item_id``; every value in it is escaped."""
        items, pred, ann, ref = self.items(), self.pred(), self.ann(), self.reference()
        meta_cols = [c for c in getattr(self.project, "metadata_columns", [])
                     if c in items.columns]
        row = items.loc[item_id] if item_id in items.index else None
        label = None
        if row is not None and "label" in items.columns and not pd.isna(row["label"]):
            label = row["label"]
        ref_label = ref.get(item_id) if ref is not None else None
        lines = [f"<b>{esc(item_id)}</b>"]
        if label is not None:
            lines.append(f"label: <b>{esc(label)}</b>")
        elif ref_label is not None and not pd.isna(ref_label):
            lines.append(f"consensus: <b>{esc(ref_label)}</b>")
        else:
            lines.append("label: <i>none</i>")
        if pred is not None and item_id in pred.index:
            p = pred.loc[item_id]
            shown = label if label is not None else ref_label
            wrong = shown is not None and not pd.isna(shown) and str(shown) != str(p["label"])
            color = "#b00020" if wrong else "#1b5e20"
            conf = p.get("confidence", np.nan)
            conf_txt = "" if conf is None or pd.isna(conf) else f" ({float(conf):.2f})"
            lines.append(f"pred: <span style='color:{color}'><b>{esc(p['label'])}</b>"
                         f"{esc(conf_txt)}</span>")
        if ann is not None and item_id in ann.index:
            rows = ann.loc[[item_id]]
            votes = ", ".join(f"{esc(a)}={esc(lbl)}" for a, lbl in
                              zip(rows["annotator"].tolist(), rows["label"].tolist(),
                                  strict=True))
            lines.append(f"<span class='wb-card-annotations'>annotators: {votes}</span>")
        if row is not None and meta_cols:
            meta = "; ".join(f"{esc(c)}={esc(row[c])}" for c in meta_cols)
            lines.append(f"<span style='color:#555'>{meta}</span>")
        return ("<div style='font-size:11px;line-height:1.3;word-break:break-all'>"
                + "<br>".join(lines) + "</div>")


class ItemGallery(StatusMixin, w.VBox):
    """Thumbnails of the selected items with their labels, prediction and metadata.

    Parameters
    ----------
    project : Project
        Images are read in the kernel through ``project.media_path(item_id)`` (confined to
        the project folder) and sent as bytes; never through a file URL.
    selection : Selection, default=None
        The shared selection; a new one when None.
    page_size : int, default=24
        Cards per page. The cards are a fixed pool reused for every page.
    run : str, default=None
        The run whose prediction is shown; None means ``project.default_run``.
    thumb_size : int, default=None
        Thumbnail size in pixels (None: 96, or 180 in a detection project, where boxes are
        drawn on the image).
    errors_first : bool, default=True
        Show the items the model gets wrong (prediction of ``run`` != reference label)
        first, then the others, each group by item id: a slice of 500 items opens on its
        errors. False keeps the selection's order (sorted item ids). Classification only.
    detection : DetectionData, default=None
        Detection projects: the frames shared with the other widgets of the dashboard (a
        new one when None).
    show_annotations : bool, default=False
        Detection projects: draw every annotator's boxes (``project.annotations``), each
        annotator in its own colour, with a legend above the cards (the Disagreement
        Explorer turns it on). Selected annotators' boxes are drawn either way.

    Attributes
    ----------
    page : int
        Current page (0-based).
    ids_on_page : list of str
        The items shown now.
    picked : tuple of str
        The picked items (``selection.picked``): click a card to pick or unpick it,
        shift-click to pick every card from the last one clicked (across pages, in the
        gallery's order), "Select page" / "Select none". A new selection drops the picks.
        Picked cards carry the CSS class ``wb-picked``.
    item_view : ItemView or None
        Classification projects: the item view (:class:`workbench.widgets.ItemView`,
        CSS class ``wb-item-view``, inside ``wb-gallery-item-view`` above the cards) that a
        card's "open" link (``wb-card-open``) or :meth:`open_item` fills; None until then.
    show_reference, show_predictions : bool
        Detection: draw the reference boxes / the run's predicted boxes (selected boxes are
        always drawn). Toggles ``wb-gallery-reference`` / ``wb-gallery-predictions``.
    show_annotations : bool
        Detection: draw every annotator's boxes (dotted, in the annotator's colour; hover
        title "annotator ana · label 7 · box id"); checkbox ``wb-gallery-annotations``. The
        legend (``annotator_legend``, CSS class ``wb-gallery-legend``) shows each
        annotator's colour whenever annotators' boxes can be on the page.
    min_confidence : float
        Detection: predictions below this confidence are not drawn unless selected
        (default :data:`DEFAULT_MIN_CONFIDENCE`, 0.3; slider ``wb-gallery-min-confidence``).
    crops : bool
        Detection: with a box-level selection (``selection.box_ids``), show one card per
        selected box, cropped around it (toggle ``wb-gallery-crops``).
    drawn : list of dict
        Detection: what each card of the page drew, ``{"item_id", "crop", "reference",
        "predictions", "annotations", "by_annotator", "selected", "image"}`` (counts of
        drawn boxes, annotators' boxes per annotator; the selected box ids).

    Notes
    -----
    Picking is view state, allowed in a read-only session too; what acts on the picks (the
    tag panel) checks the write permission itself.

    Examples
    --------
    >>> gallery = ItemGallery(project, selection)  # doctest: +SKIP
    """

    page = traitlets.Int(0)
    run = traitlets.Unicode(None, allow_none=True)
    show_reference = traitlets.Bool(True)
    show_predictions = traitlets.Bool(True)
    show_annotations = traitlets.Bool(False)
    min_confidence = traitlets.Float(0.0)
    crops = traitlets.Bool(False)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 page_size: int = 24, run: str | None = None, thumb_size: int | None = None,
                 errors_first: bool = True, detection: DetectionData | None = None,
                 show_annotations: bool = False):
        if not isinstance(show_annotations, (bool, np.bool_)):
            raise ValueError("The 'show_annotations' parameter of ItemGallery must be a bool. "
                             f"Got {show_annotations!r} instead.")
        self.project = project
        self._detection = None
        data = detection_data(project, detection)
        if data is not None:
            from ._detection_cards import DetectionCards

            self._detection = DetectionCards(data, run if run is not None
                                             else data.default_run())
        self._text = self._detection is None and bool(getattr(project, "is_text", False))
        if thumb_size is None:
            thumb_size = 180 if self._detection is not None else (230 if self._text else 96)
        if self._detection is not None:  # most detections are low-confidence noise
            self.min_confidence = self._detection.min_confidence = DEFAULT_MIN_CONFIDENCE
            self._detection.show_annotations = bool(show_annotations)
        self.show_annotations = bool(show_annotations)
        self.thumb_size = check_int(thumb_size, "thumb_size", "ItemGallery", minimum=16)
        self.drawn: list[dict] = []
        self._shown_state: tuple | None = None
        self.errors_first = bool(errors_first)
        self.selection = selection if selection is not None else Selection()
        self.page_size = check_int(page_size, "page_size", "ItemGallery", minimum=1)
        self.ids_on_page: list[str] = []
        self._ids: list[str] = []
        self._lookups = _Lookups(project, run)
        self.status = w.HTML("")
        self.status.add_class("wb-gallery-status")
        self.prev_button = w.Button(description="◀ prev", layout=w.Layout(width="80px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="80px"))
        self.prev_button.add_class("wb-gallery-prev")
        self.next_button.add_class("wb-gallery-next")
        self.pick_page_button = w.Button(description="Select page",
                                         tooltip="Pick every card of this page",
                                         layout=w.Layout(width="110px"))
        self.pick_none_button = w.Button(description="Select none",
                                         tooltip="Unpick every card (on every page)",
                                         layout=w.Layout(width="110px"))
        self.pick_page_button.add_class("wb-gallery-pick-page")
        self.pick_none_button.add_class("wb-gallery-pick-none")
        self.card_clicks = CardClicks(
            self._on_card_click,
            hint="Click a card to pick it, shift-click to pick a range: tags then go on "
                 "the picked cards only." + ("" if self._detection is not None else
                                              " \"open\" shows the item large."),
            on_open=self._on_card_open)
        #: The item view (built on the first "open"; shown above the cards).
        self.item_view = None
        self.item_view_box = w.VBox([])
        self.item_view_box.add_class("wb-gallery-item-view")
        self._anchor: str | None = None  # the last card clicked (start of a shift range)
        boxes = self._detection is not None
        first = _Card(thumb_size, 0, boxes=boxes, text=self._text)  # the others share its style
        shared = (first.caption.style, first.caption.layout)
        self.cards = [first] + [_Card(thumb_size, i, shared, boxes=boxes, text=self._text)
                                for i in range(1, self.page_size)]
        grid = w.GridBox([c.box for c in self.cards], layout=w.Layout(
            grid_template_columns=f"repeat(auto-fill, minmax({thumb_size + 70}px, 1fr))",
            grid_gap="6px", width="100%"))
        grid.add_class("wb-gallery-grid")
        header = w.HBox([self.prev_button, self.next_button, self.status])
        picks = w.HBox([self.pick_page_button, self.pick_none_button, self.card_clicks],
                       layout=w.Layout(grid_gap="6px"))
        picks.add_class("wb-gallery-picks")
        parts = [header, picks]
        if boxes:
            parts.append(self._make_box_controls())
            self.annotator_legend = w.HTML("", layout=w.Layout(display="none"))
            self.annotator_legend.add_class("wb-gallery-legend")
            parts.append(self.annotator_legend)
        super().__init__([*parts, self._make_error_box(), self.item_view_box, grid])
        self.add_class("wb-gallery")
        self.run = run
        self.prev_button.on_click(lambda _b: self.go(self.page - 1))
        self.next_button.on_click(lambda _b: self.go(self.page + 1))
        self.pick_page_button.on_click(lambda _b: self.pick_page())
        self.pick_none_button.on_click(lambda _b: self.pick_none())
        self.selection.observe(self._on_selection, names=["ids", "box_ids"])
        self.selection.observe(self._on_picked, names=["picked"])
        try:  # load Pillow's image plugins now, not on the first click
            from PIL import Image as PILImage

            PILImage.preinit()
        except ImportError:  # pragma: no cover - pillow is a core dependency
            pass
        self._load_ids()
        self.render()

    def _make_box_controls(self) -> w.HBox:
        """Detection: the layer toggles, the crops toggle and the confidence slider."""
        from ._detection_cards import BoxControls

        self.box_controls = BoxControls(self)
        c = self.box_controls
        self.reference_toggle, self.predictions_toggle = c.reference, c.predictions
        self.annotations_toggle = c.annotations
        self.crops_toggle, self.confidence_slider = c.crops, c.min_confidence
        return c

    @traitlets.observe("show_reference", "show_predictions", "show_annotations",
                       "min_confidence", "crops")
    def _on_layers(self, change) -> None:
        if self._detection is None or getattr(self, "cards", None) is None:
            return
        self._detection.show_reference = self.show_reference
        self._detection.show_predictions = self.show_predictions
        self._detection.show_annotations = self.show_annotations
        self._detection.min_confidence = self.min_confidence
        if change["name"] == "crops":
            self._load_ids()
            self.page = 0
        self._safe(self.render)

    # ---- state ------------------------------------------------------------------------

    @property
    def n_pages(self) -> int:
        """Number of pages of the current selection (at least 1)."""
        return max(1, -(-len(self._ids) // self.page_size))

    def _load_ids(self) -> None:
        ids = self.selection.ids
        self._crop_boxes: list[str] | None = None
        self._shown_state = (self.selection.ids, self.selection.box_ids, self.crops)
        if self._detection is not None and self.crops and self.selection.box_ids:
            self._ids, self._crop_boxes = self._detection.crop_units(self.selection.box_ids)
        else:
            self._ids = [] if ids is None else self._ordered(list(ids))
        self._position_of: dict | None = None

    def _ordered(self, ids: list[str]) -> list[str]:
        """``ids`` with the model's errors first (stable: item-id order within each group)."""
        self._reordered = False
        if not self.errors_first or len(ids) < 2 or self._detection is not None:
            return ids
        pred, ref = self._lookups.pred(), self._lookups.reference()
        if pred is None or ref is None or "label" not in pred.columns:
            return ids
        index = pd.Index(ids)
        p = pred["label"].reindex(index).astype(object).to_numpy()
        r = ref.reindex(index).astype(object).to_numpy()
        known = ~(pd.isna(p) | pd.isna(r))
        wrong = np.zeros(len(ids), dtype=bool)
        wrong[known] = p[known].astype(str) != r[known].astype(str)
        if not wrong.any() or wrong.all():
            return ids
        order = np.argsort(~wrong, kind="stable")
        self._reordered = True
        return [ids[i] for i in order]

    @guarded
    def _on_selection(self, change) -> None:
        state = (self.selection.ids, self.selection.box_ids, self.crops)
        if self._shown_state is not None and all(
                a is b for a, b in zip(state, self._shown_state, strict=True)):
            return  # ids and box_ids changed together: shown once already
        self._anchor = None  # the Selection has dropped the picks itself
        self._load_ids()
        if self.page != 0:
            with self.hold_trait_notifications():
                self.page = 0
        self.render()

    @traitlets.observe("run")
    def _on_run(self, change) -> None:
        self._lookups.set_run(change["new"])
        if self._detection is not None and change["new"] is not None:
            self._detection.run = change["new"]
        if getattr(self, "cards", None) is not None and change["old"] != change["new"]:
            self._load_ids()  # the errors of the new run come first
            self.render()

    def go(self, page: int) -> None:
        """Show ``page`` (clipped to the valid range)."""
        page = min(max(int(page), 0), self.n_pages - 1)
        if page != self.page:
            self.page = page
            self.render()

    # ---- picks (state on the shared Selection) -----------------------------------------

    @property
    def picked(self) -> tuple:
        """The picked items (``selection.picked``, a sorted tuple; ``()`` when none)."""
        return self.selection.picked

    def pick(self, item_id: str, *, shift: bool = False) -> None:
        """Pick or unpick one shown item, as a click on its card does.

        Parameters
        ----------
        item_id : str
            An item of the current selection.
        shift : bool, default=False
            Pick every item from the last one clicked to ``item_id`` (in the gallery's
            order, across pages) instead of toggling ``item_id``.
        """
        item_id = str(item_id)
        if item_id not in self._positions():
            raise ValueError(f"Item {item_id!r} is not in the gallery (it shows the "
                             f"{len(self._ids)} selected items); select it first.")
        picked = list(self.selection.picked)
        if shift and self._anchor is not None:
            picked = range_pick(picked, self._ids, self._anchor, item_id)
        else:
            picked = toggle_pick(picked, item_id)
        self._anchor = item_id
        self.selection.picked = picked

    def pick_page(self) -> None:
        """Pick every card of the current page (the picks of other pages stay)."""
        self.selection.picked = [*self.selection.picked, *self.ids_on_page]

    def pick_none(self) -> None:
        """Unpick every card, on every page."""
        self._anchor = None
        self.selection.picked = ()

    def _positions(self) -> dict:
        """``{item_id: position}`` in the gallery's order (built once per selection)."""
        if self._position_of is None:
            self._position_of = {i: k for k, i in enumerate(self._ids)}
        return self._position_of

    @guarded
    def _on_card_click(self, slot: int, shift: bool) -> None:
        """Adapter: a click on card ``slot`` (from the browser) -> :meth:`pick`."""
        if 0 <= slot < len(self.cards) and self.cards[slot].item_id is not None:
            self.pick(self.cards[slot].item_id, shift=shift)

    # ---- the item view (a card's "open" link) ------------------------------------------

    def open_item(self, item_id: str) -> None:
        """Show ``item_id`` large in the gallery's item view (built on first use).

        Left / right in the view move through the gallery's items, in the gallery's order.

        Parameters
        ----------
        item_id : str
            An item of the project.

        Raises
        ------
        ValueError
            In a detection project (its cards draw the boxes instead), or for an unknown item.
        """
        if self._detection is not None:
            raise ValueError("The item view shows classification items; a detection card "
                             "already shows the image with its boxes.")
        if self.item_view is None:
            from .item_view import ItemView

            self.item_view = ItemView(self.project, self.selection)
            self.item_view_box.children = (self.item_view,)
        self.item_view.show(item_id, order=lambda: self._ids)

    @guarded
    def _on_card_open(self, slot: int) -> None:
        """Adapter: a click on card ``slot``'s "open" link -> :meth:`open_item`."""
        if 0 <= slot < len(self.cards) and self.cards[slot].item_id is not None:
            self.open_item(self.cards[slot].item_id)

    @guarded
    def _on_picked(self, change) -> None:
        self._show_picks()
        self._render_status()

    def _show_picks(self) -> None:
        picked = set(self.selection.picked)
        for card in self.cards:
            if card.item_id is not None and card.item_id in picked:
                card.box.add_class(PICKED_CLASS)
            else:
                card.box.remove_class(PICKED_CLASS)
        self.pick_page_button.disabled = not self.ids_on_page
        self.pick_none_button.disabled = not picked

    # ---- view -------------------------------------------------------------------------

    def render(self) -> None:
        """Fill the card pool with the current page of the selection."""
        start = self.page * self.page_size
        page_ids = self._ids[start:start + self.page_size]
        self.ids_on_page = list(page_ids)
        crops = (self._crop_boxes[start:start + self.page_size]
                 if self._crop_boxes is not None else [None] * len(page_ids))
        selected = frozenset(self.selection.box_ids or ())
        drawn = []
        for k, (card, item_id) in enumerate(zip(
                self.cards, page_ids + [None] * (len(self.cards) - len(page_ids)),
                strict=True)):
            card.item_id = item_id
            if item_id is None:
                card.box.layout.display = "none"
                card.record = None
                continue
            if self._detection is not None:
                html, caption, card.record = self._detection.card(
                    item_id, selected, display=self.thumb_size, crop=crops[k])
                card.figure.value = html
                card.caption.value = caption
                drawn.append(card.record)
                card.box.layout.display = None
                continue
            card.caption.value = _OPEN_LINK + self._lookups.caption(item_id)
            if card.text is not None:  # a text project: the text, escaped, "more" to expand
                card.text.value = text_html(self.project.item_text(item_id))
                card.box.layout.display = None
                continue
            image = read_image(self.project.media_path(item_id))
            if image is None:
                card.image.layout.display = "none"
                card.placeholder.layout.display = None
            else:
                card.image.format = image[1]
                card.image.value = image[0]
                card.image.layout.display = None
                card.placeholder.layout.display = "none"
            card.box.layout.display = None
        self.drawn = drawn
        if self._detection is not None:
            self._render_legend()
        self.card_clicks.epoch += 1  # clicks on the cards' previous items are stale now
        self._show_picks()
        self._render_status()
        self.prev_button.disabled = self.page <= 0
        self.next_button.disabled = self.page >= self.n_pages - 1

    def _render_legend(self) -> None:
        """The annotators' legend: shown when annotators' boxes are (or can be) drawn."""
        has = bool(self._detection.data.annotator_styles())
        on_page = any(r.get("annotations") for r in self.drawn)
        if self.show_annotations or on_page:
            self.annotator_legend.value = self._detection.legend(self.drawn)
            self.annotator_legend.layout.display = None
        else:
            self.annotator_legend.layout.display = "none"
        self.annotations_toggle.disabled = not has

    def _render_status(self) -> None:
        if self.selection.ids is None:
            self.status.value = ("No selection: click a cell, a row or a button above to see "
                                 "its items here.")
            return
        what = esc(self.selection.description)
        what = f" &middot; {what}" if what else ""
        first = ""
        if getattr(self, "_reordered", False):
            first = " &middot; model errors first"
        picked = len(self.selection.picked)
        picks = f" &middot; <b>{picked} picked</b>" if picked else ""
        unit = "selected"
        if self.selection.box_ids is not None:
            n_boxes = len(self.selection.box_ids)
            unit = (f"boxes selected (crops), on {len(self.selection.ids or ())} images"
                    if self._crop_boxes is not None else
                    f"images selected ({n_boxes} boxes)")
        self.status.value = (f"{len(self._ids)} {unit}, page {self.page + 1} of "
                             f"{self.n_pages}{what}{first}{picks}")

    def __repr__(self) -> str:
        return (f"ItemGallery({len(self._ids)} selected, page {self.page + 1} of "
                f"{self.n_pages})")
