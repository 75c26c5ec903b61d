"""Boxes drawn on the gallery's images, in the kernel: an SVG overlay built in Python.

A card of a detection project is one ``ipywidgets.HTML``: the image (read in the kernel,
sent as a ``data:`` URI, never as a file URL) with an ``<svg>`` on top whose ``viewBox`` is
the image's pixel grid, so a box is drawn at its own ``x, y, w, h``. Every box is an element
the browser can count (``rect.wb-box``) with a hover title (label, outcome, confidence,
IoU; for an annotator's box: annotator, label and box id); every text in it is escaped.

Styles: reference boxes solid green, predictions dashed orange, annotators' boxes dotted in
the annotator's own colour (:data:`workbench.widgets._detection_data.ANNOTATOR_PALETTE`,
given by sorted annotator name), selected boxes with a thick yellow halo (CSS classes
``wb-box-ref``, ``wb-box-pred``, ``wb-box-ann`` and ``wb-annotator-<k>`` (k = the
annotator's position in sorted order), ``wb-box-selected``, ``wb-outcome-<outcome>``).
A crop shows the neighbourhood of one box, enlarged.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._adapters import esc

__all__ = ["Box", "figure_html", "crop_region", "image_for", "legend_html", "REF_COLOR",
           "PRED_COLOR", "SELECTED_COLOR"]

REF_COLOR = "#2e7d32"
PRED_COLOR = "#ef6c00"
SELECTED_COLOR = "#ffd600"
#: Images larger than this (bytes) or than twice the display size are resized in the kernel.
_MAX_SENT_BYTES = 256 * 1024
_CROP_MARGIN = 0.6  # of the box's larger side, on each side
_CROP_MIN = 24.0  # pixels: the smallest crop side


@dataclass(frozen=True)
class Box:
    """One box to draw (pixels, top-left origin).

    ``kind`` is ``"ref"`` (a reference box), ``"pred"`` (a detection) or ``"ann"`` (an
    annotator's box: ``annotator``, its ``color``, ``dash`` and ``style_index``, the
    annotator's position in sorted order).
    """

    kind: str  # "ref", "pred" or "ann"
    box_id: str
    label: str
    x: float
    y: float
    w: float
    h: float
    outcome: str | None = None
    confidence: float | None = None
    iou: float | None = None
    selected: bool = False
    annotator: str | None = None
    color: str | None = None
    dash: str | None = None
    style_index: int = 0

    def title(self) -> str:
        """Hover text (plain, escaped by the caller)."""
        if self.kind == "ann":
            return f"annotator {self.annotator} · label {self.label} · {self.box_id}"
        what = "reference" if self.kind == "ref" else "prediction"
        parts = [f"{what} {self.label}"]
        if self.confidence is not None and not math.isnan(self.confidence):
            parts.append(f"confidence {self.confidence:.2f}")
        if self.outcome:
            parts.append(self.outcome)
        if self.iou is not None and not math.isnan(self.iou):
            parts.append(f"IoU {self.iou:.2f}")
        parts.append(self.box_id)
        return " · ".join(parts)

    def tag(self) -> str:
        """Short text drawn by the box: the label (and a prediction's confidence)."""
        if self.kind == "ann":
            return f"{self.annotator}: {self.label}"
        if self.kind == "pred" and self.confidence is not None and \
                not math.isnan(self.confidence):
            return f"{self.label} {self.confidence:.2f}"
        return self.label


def crop_region(box: Box, width: float, height: float) -> tuple[float, float, float, float]:
    """``(x0, y0, w, h)``: the box with a margin around it, inside the image."""
    side = max(box.w, box.h)
    margin = max(side * _CROP_MARGIN, (_CROP_MIN - side) / 2, 0.0)
    x0, y0 = max(box.x - margin, 0.0), max(box.y - margin, 0.0)
    x1 = min(box.x + box.w + margin, float(width)) if width else box.x + box.w + margin
    y1 = min(box.y + box.h + margin, float(height)) if height else box.y + box.h + margin
    return x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)


def image_for(data: bytes, fmt: str, size: tuple[int, int], display: int,
              region: tuple[float, float, float, float] | None = None) -> tuple[bytes, str]:
    """The bytes to send for a card: the file as it is, or resized/cropped with Pillow.

    A small image shown whole is sent untouched; a large one is reduced to twice the
    display size; a crop is cut out and enlarged to the display size.
    """
    w, h = size
    if region is None and len(data) <= _MAX_SENT_BYTES and max(w, h) <= 2 * display:
        return data, fmt
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as im:
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        if region is not None:
            x0, y0, rw, rh = region
            im = im.crop((int(math.floor(x0)), int(math.floor(y0)),
                          int(math.ceil(x0 + rw)), int(math.ceil(y0 + rh))))
            scale = display / max(im.size)
        else:
            scale = min(1.0, 2 * display / max(im.size))
        if scale != 1.0:
            im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))),
                           PILImage.Resampling.BILINEAR)
        out = io.BytesIO()
        im.save(out, format="PNG", compress_level=1)
    return out.getvalue(), "png"


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


_KIND_CLASS = {"ref": "wb-box-ref", "pred": "wb-box-pred", "ann": "wb-box-ann"}


def _svg_box(b: Box, unit: float) -> str:
    """One box: a halo when selected, the rectangle with its title, and its tag."""
    dash = ""
    classes = ["wb-box", _KIND_CLASS[b.kind]]
    if b.kind == "ann":
        color = b.color or "#000000"
        dash = f" stroke-dasharray='{esc(b.dash)}'" if b.dash else ""
        classes.append(f"wb-annotator-{int(b.style_index)}")
    else:
        color = REF_COLOR if b.kind == "ref" else PRED_COLOR
        dash = " stroke-dasharray='4 3'" if b.kind == "pred" else ""
    if b.selected:
        classes.append("wb-box-selected")
    if b.outcome:
        classes.append(f"wb-outcome-{esc(b.outcome)}")
    xywh = f"x='{_num(b.x)}' y='{_num(b.y)}' width='{_num(b.w)}' height='{_num(b.h)}'"
    halo = (f"<rect {xywh} fill='none' stroke='{SELECTED_COLOR}' stroke-width='6' "
            "stroke-opacity='0.9' vector-effect='non-scaling-stroke'/>") if b.selected else ""
    width = 3 if b.selected else (1.3 if b.kind == "ann" else 1.6)
    font = 10 * unit
    if b.kind == "ref":  # tag above the box (inside when at the top edge)
        ty = b.y - 2 * unit if b.y > font else b.y + font
    elif b.kind == "ann":  # inside the box, top left
        ty = b.y + font
    else:  # predictions: below the box
        ty = b.y + b.h + font
    tag = ""
    if b.kind != "ann" or b.selected:  # annotators' tags only when selected: less clutter
        tag = (f"<text x='{_num(b.x)}' y='{_num(ty)}' font-size='{_num(font)}' "
               f"fill='{esc(color)}' stroke='white' stroke-width='{_num(2.5 * unit)}' "
               "paint-order='stroke' font-family='sans-serif' font-weight='bold'>"
               f"{esc(b.tag())}</text>")
    who = f" data-annotator='{esc(b.annotator)}'" if b.kind == "ann" else ""
    return (f"<g class='{' '.join(classes)}' data-box-id='{esc(b.box_id)}'{who}>"
            f"<title>{esc(b.title())}</title>{halo}"
            f"<rect class='{' '.join(classes)}' {xywh} fill='none' stroke='{esc(color)}' "
            f"stroke-width='{width}'{dash} vector-effect='non-scaling-stroke'/>{tag}</g>")


def figure_html(image: tuple[bytes, str] | None, size: tuple[int, int], boxes: Sequence[Box],
                *, display: int, region: tuple[float, float, float, float] | None = None,
                ) -> str:
    """HTML of a card's picture: the image and its boxes as an SVG overlay.

    Parameters
    ----------
    image : (bytes, str) or None
        The bytes to show (already cropped/resized, see :func:`image_for`) and their format;
        None draws the boxes on a grey placeholder.
    size : (int, int)
        The image's size in pixels (the boxes' coordinate system).
    boxes : sequence of Box
        Drawn reference boxes first, then annotators' boxes, then predictions, selected
        ones last.
    display : int
        The longer side of the picture on screen, in CSS pixels.
    region : (x0, y0, w, h), default=None
        The part of the image shown (a crop); None: all of it.

    Returns
    -------
    str
        ``<div class='wb-figure'>`` with an ``<img>`` (a ``data:`` URI) and an ``<svg>``.
    """
    x0, y0, rw, rh = region if region is not None else (0.0, 0.0, float(size[0]),
                                                         float(size[1]))
    rw, rh = max(rw, 1.0), max(rh, 1.0)
    scale = display / max(rw, rh)
    dw, dh = max(1, round(rw * scale)), max(1, round(rh * scale))
    unit = 1.0 / scale  # one screen pixel in image pixels
    if image is None:
        under = ("<div class='wb-figure-missing' style='position:absolute;inset:0;"
                 "background:#eee;color:#777;font-size:11px;display:flex;align-items:center;"
                 "justify-content:center'>no image</div>")
    else:
        uri = f"data:image/{esc(image[1])};base64,{base64.b64encode(image[0]).decode()}"
        under = (f"<img src='{uri}' alt='' draggable='false' style='position:absolute;"
                 f"left:0;top:0;width:{dw}px;height:{dh}px;image-rendering:auto'/>")
    layer = {"ref": 0, "ann": 1, "pred": 2}
    drawn = sorted(boxes, key=lambda b: (b.selected, layer.get(b.kind, 3)))
    svg = (f"<svg class='wb-boxes' viewBox='{_num(x0)} {_num(y0)} {_num(rw)} {_num(rh)}' "
           f"preserveAspectRatio='none' width='{dw}' height='{dh}' "
           "style='position:absolute;left:0;top:0;overflow:hidden'>"
           + "".join(_svg_box(b, unit) for b in drawn) + "</svg>")
    return (f"<div class='wb-figure' style='position:relative;width:{dw}px;height:{dh}px;"
            f"overflow:hidden'>{under}{svg}</div>")


def legend_html(styles: dict[str, tuple[str, str]], counts: dict[str, int] | None = None
                ) -> str:
    """The annotators' legend: one swatch (colour and dash of the box outline) per annotator.

    Parameters
    ----------
    styles : dict
        ``{annotator: (colour, dash)}`` in the order to show (sorted annotator names).
    counts : dict, default=None
        ``{annotator: boxes drawn on the page}``, shown after each name when given.

    Returns
    -------
    str
        ``<div class='wb-annotator-legend'>`` with one ``span.wb-annotator-swatch`` per
        annotator (``data-annotator`` and the name escaped).
    """
    if not styles:
        return ("<div class='wb-annotator-legend' style='font-size:11px;color:#555'>"
                "No annotators' boxes in this project.</div>")
    parts = []
    for k, (name, (color, dash)) in enumerate(styles.items()):
        n = "" if counts is None else f" ({int(counts.get(name, 0))})"
        svg = (f"<svg width='22' height='12' style='vertical-align:middle'><rect x='1' y='1' "
               f"width='20' height='10' fill='none' stroke='{esc(color)}' stroke-width='2' "
               f"stroke-dasharray='{esc(dash)}'/></svg>")
        parts.append(f"<span class='wb-annotator-swatch wb-annotator-{k}' "
                     f"data-annotator='{esc(name)}' data-color='{esc(color)}' "
                     f"style='margin-right:10px;white-space:nowrap'>{svg} "
                     f"<span style='color:{esc(color)};font-weight:600'>{esc(name)}</span>"
                     f"{n}</span>")
    return ("<div class='wb-annotator-legend' style='font-size:11px;line-height:1.8'>"
            "<span style='color:#555'>annotators' boxes: </span>" + "".join(parts) + "</div>")


def counts_by_outcome(boxes: Sequence[Box]) -> dict[str, int]:
    """Number of boxes per outcome (reference boxes and predictions together)."""
    out: dict[str, int] = {}
    for b in boxes:
        if b.outcome:
            out[b.outcome] = out.get(b.outcome, 0) + 1
    return dict(sorted(out.items()))


def finite(value) -> float | None:
    """``float(value)``, or None for a missing value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(v) else v
