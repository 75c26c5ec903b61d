"""The gallery's cards for a detection project: which boxes to draw on an image, and the caption.

:class:`DetectionCards` is the gallery's helper for ``task == "detection"``: for one image
(or one box, in crop mode) it returns the picture (:func:`workbench.widgets._boxes.figure_html`),
the caption and a record of what was drawn (``{"reference": n, "predictions": n,
"annotations": n, "selected": [...]}``), which tests and the browser can check.
Annotators' boxes (``project.annotations``) are drawn in each annotator's own colour when
``show_annotations`` is on; selected ones always.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from ._adapters import esc
from ._boxes import (
    Box,
    counts_by_outcome,
    crop_region,
    figure_html,
    finite,
    image_for,
    legend_html,
)
from ._detection_data import DetectionData

__all__ = ["DetectionCards", "BoxControls"]

_CAPTION_BOXES = 4  # selected boxes listed in a caption


class DetectionCards:
    """Boxes, pictures and captions of a detection project's gallery cards.

    Parameters
    ----------
    data : DetectionData
        The shared frames (boxes per image, matches of ``run`` at ``data.iou``).
    run : str or None
        The run whose predictions are drawn.

    Attributes
    ----------
    show_reference, show_predictions : bool
        The two layers (a toggle hides either).
    show_annotations : bool
        Draw every annotator's boxes in the annotator's colour (default False).
    min_confidence : float
        Predictions below it are not drawn unless selected.
    """

    def __init__(self, data: DetectionData, run: str | None = None):
        self.data = data
        self.run = run
        self.show_reference = True
        self.show_predictions = True
        self.show_annotations = False
        self.min_confidence = 0.0
        self._box_item: pd.Series | None = None
        self._sizes: dict = {}

    @property
    def project(self) -> Any:
        return self.data.project

    # ---- lookups ----------------------------------------------------------------------

    def items_of(self, box_ids) -> list[str]:
        """The image of each box id (unknown ids give ``""``).

        A box id is a reference ``box_id``, a ``pred_id`` or an annotator's ``box_id``.
        """
        if self._box_item is None:
            b, p, a = self.project.boxes, self.project.predictions, self.project.annotations
            frames = [(b, "box_id"), (p, "pred_id")]
            if len(a) and "box_id" in a.columns:
                frames.append((a, "box_id"))
            ids = pd.concat([f[c].astype(str) for f, c in frames], ignore_index=True)
            items = pd.concat([f["item_id"].astype(str) for f, _c in frames],
                              ignore_index=True)
            series = pd.Series(items.to_numpy(), index=pd.Index(ids.to_numpy()))
            self._box_item = series[~series.index.duplicated(keep="first")]
        box_ids = [str(i) for i in box_ids]
        pos = self._box_item.index.get_indexer(box_ids)
        values = self._box_item.to_numpy()
        return [str(values[i]) if i >= 0 else "" for i in pos]

    def crop_units(self, box_ids) -> tuple[list[str], list[str]]:
        """``(images, boxes)``: one gallery card per known box, by image then box id."""
        boxes = [str(b) for b in box_ids]
        pairs = sorted((i, b) for i, b in zip(self.items_of(boxes), boxes, strict=True) if i)
        return [i for i, _b in pairs], [b for _i, b in pairs]

    def image_size(self, item_id: str, data: bytes | None) -> tuple[int, int] | None:
        """The image's size: the project's ``width``/``height``, else read from the bytes."""
        if item_id in self._sizes:
            return self._sizes[item_id]
        row = self.data.item_values(item_id)
        size = None
        if row is not None and "width" in row and "height" in row:
            width, height = row["width"], row["height"]
            if not (pd.isna(width) or pd.isna(height)):
                size = (int(width), int(height))
        if size is None and data is not None:
            try:
                import io

                from PIL import Image as PILImage

                with PILImage.open(io.BytesIO(data)) as im:
                    size = im.size
            except Exception:  # unreadable: the card shows a placeholder
                size = None
        self._sizes[item_id] = size
        return size

    def boxes(self, item_id: str, selected: frozenset | set = frozenset()) -> list[Box]:
        """The boxes drawn on ``item_id``: the visible layers, and every selected box.

        Reference boxes, then the annotators' boxes (by annotator, then in file order),
        then the run's predictions.
        """
        out: list[Box] = []
        outcomes = self.data.outcomes(self.run) if self.run is not None else {"box": {},
                                                                                 "pred": {}}
        for bid, label, x, y, bw, bh in self.data.boxes().records(item_id):
            bid = str(bid)
            sel = bid in selected
            if not (self.show_reference or sel):
                continue
            info = outcomes["box"].get(bid, {})
            out.append(Box("ref", bid, str(label), float(x), float(y), float(bw), float(bh),
                           info.get("outcome"), None, finite(info.get("iou")), sel))
        out.extend(self.annotation_boxes(item_id, selected))
        preds = self.data.predictions(self.run)
        if preds is not None:
            for pid, label, x, y, bw, bh, confidence in preds.records(item_id):
                pid = str(pid)
                sel = pid in selected
                conf = finite(confidence)
                shown = self.show_predictions and (conf is None or
                                                   conf >= self.min_confidence)
                if not (shown or sel):
                    continue
                info = outcomes["pred"].get(pid, {})
                out.append(Box("pred", pid, str(label), float(x), float(y), float(bw),
                               float(bh), info.get("outcome"), conf, finite(info.get("iou")),
                               sel))
        return out

    def annotation_boxes(self, item_id: str, selected: frozenset | set = frozenset()
                         ) -> list[Box]:
        """The annotators' boxes drawn on ``item_id`` (all when shown, else the selected)."""
        if not (self.show_annotations or selected):
            return []
        styles = self.data.annotator_styles()
        order = {name: k for k, name in enumerate(styles)}
        out = []
        for bid, annotator, label, x, y, bw, bh in self.data.annotations().records(item_id):
            bid, annotator = str(bid), str(annotator)
            sel = bid in selected
            if not (self.show_annotations or sel):
                continue
            color, dash = styles.get(annotator, ("#000000", "2 2"))
            out.append(Box("ann", bid, str(label), float(x), float(y), float(bw), float(bh),
                           selected=sel, annotator=annotator, color=color, dash=dash,
                           style_index=order.get(annotator, 0)))
        out.sort(key=lambda b: order.get(b.annotator, 0))  # stable: file order per annotator
        return out

    def legend(self, records: list[dict] | None = None) -> str:
        """HTML of the annotators' legend (boxes drawn per annotator on ``records``)."""
        counts: dict[str, int] | None = None
        if records is not None:
            counts = {}
            for r in records:
                for name, n in r.get("by_annotator", {}).items():
                    counts[name] = counts.get(name, 0) + n
        return legend_html(self.data.annotator_styles(), counts)

    # ---- a card -------------------------------------------------------------------------

    def card(self, item_id: str, selected: frozenset | set, *, display: int,
             crop: str | None = None) -> tuple[str, str, dict]:
        """``(picture html, caption html, record)`` of one card.

        Parameters
        ----------
        item_id : str
            The image.
        selected : set of str
            The selected box ids (``Selection.box_ids``).
        display : int
            Longer side of the picture in CSS pixels.
        crop : str, default=None
            A box id: show the neighbourhood of that box only.
        """
        from .gallery import read_image

        image = read_image(self.project.media_path(item_id))
        size = self.image_size(item_id, image[0] if image else None)
        boxes = self.boxes(item_id, selected)
        region = None
        if crop is not None:
            target = next((b for b in boxes if b.box_id == crop), None)
            if target is not None:
                region = crop_region(target, *(size or (0, 0)))
        if size is None:  # no usable image and no recorded size: frame the boxes
            right = max([b.x + b.w for b in boxes], default=1.0)
            bottom = max([b.y + b.h for b in boxes], default=1.0)
            size = (int(np.ceil(right)), int(np.ceil(bottom)))
            image = None
        if image is not None:
            try:
                image = image_for(image[0], image[1], size, display, region)
            except Exception:  # Pillow could not re-encode it: placeholder
                image = None
        html = figure_html(image, size, boxes, display=display, region=region)
        record = {"item_id": item_id, "crop": crop if region is not None else None,
                  "reference": sum(b.kind == "ref" for b in boxes),
                  "predictions": sum(b.kind == "pred" for b in boxes),
                  "annotations": sum(b.kind == "ann" for b in boxes),
                  "by_annotator": _by_annotator(boxes),
                  "selected": sorted(b.box_id for b in boxes if b.selected),
                  "image": image is not None}
        return html, self.caption(item_id, boxes, record), record

    def caption(self, item_id: str, boxes: list[Box], record: dict) -> str:
        """The card's text: image id, box counts, outcomes, selected boxes, metadata."""
        lines = [f"<b>{esc(item_id)}</b>"]
        if record.get("crop"):
            lines[0] += f" &middot; crop of <b>{esc(record['crop'])}</b>"
        run = f" ({esc(self.run)})" if self.run is not None else ""
        n_ann = record.get("annotations", 0)
        ann = (f" &middot; <span class='wb-card-annotator-boxes' style='color:#555'>"
               f"&#9633; {n_ann} by annotators</span>") if n_ann else ""
        lines.append(
            f"<span class='wb-card-boxes' data-reference='{record['reference']}' "
            f"data-predictions='{record['predictions']}' data-annotations='{n_ann}' "
            f"data-selected='{len(record['selected'])}'>"
            f"<span style='color:#2e7d32'>&#9634; {record['reference']} boxes</span> &middot; "
            f"<span style='color:#ef6c00'>&#9636; {record['predictions']} predicted"
            f"{run}</span>{ann}</span>")
        counts = counts_by_outcome(boxes)
        if counts:
            lines.append("<span class='wb-card-outcomes' style='color:#555'>" + ", ".join(
                f"{esc(k)} {v}" for k, v in counts.items()) + "</span>")
        chosen = [b for b in boxes if b.selected]
        for b in chosen[:_CAPTION_BOXES]:
            kind = {"ref": "box", "pred": "pred"}.get(b.kind, "")
            if b.kind == "ann":
                kind = (f"<span style='color:{esc(b.color)}'>{esc(b.annotator)}</span>")
            conf = (f" {b.confidence:.2f}" if b.confidence is not None else "")
            outcome = f" <b>{esc(b.outcome)}</b>" if b.outcome else ""
            lines.append(f"<span class='wb-card-selected-box' style='background:#fff59d'>"
                         f"{kind} {esc(b.label)}{esc(conf)}{outcome}</span>")
        if len(chosen) > _CAPTION_BOXES:
            lines.append(f"<i>+{len(chosen) - _CAPTION_BOXES} more selected</i>")
        meta = self._metadata(item_id)
        if meta:
            lines.append(f"<span style='color:#555'>{meta}</span>")
        return ("<div style='font-size:11px;line-height:1.3;word-break:break-all'>"
                + "<br>".join(lines) + "</div>")

    def _metadata(self, item_id: str) -> str:
        cols = list(getattr(self.project, "metadata_columns", []))
        row = self.data.item_values(item_id) if cols else None
        if row is None:
            return ""
        return "; ".join(f"{esc(c)}={esc(row[c])}" for c in cols if c in row)


def _by_annotator(boxes: list[Box]) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in boxes:
        if b.kind == "ann":
            out[str(b.annotator)] = out.get(str(b.annotator), 0) + 1
    return out


class BoxControls(w.HBox):
    """The gallery's box controls: layer toggles, crops toggle, confidence slider, legend.

    Each control is linked to the gallery trait of the same meaning (``show_reference``,
    ``show_predictions``, ``show_annotations``, ``crops``, ``min_confidence``); CSS classes
    ``wb-gallery-reference``, ``-predictions``, ``-annotations`` (a checkbox), ``-crops``,
    ``-min-confidence``.
    """

    def __init__(self, gallery: Any):
        self.reference = w.ToggleButton(
            value=gallery.show_reference, description="reference boxes", icon="square-o",
            tooltip="Draw the dataset's boxes (solid green)", layout=w.Layout(width="150px"))
        self.predictions = w.ToggleButton(
            value=gallery.show_predictions, description="predictions", icon="square-o",
            tooltip="Draw the run's predicted boxes (dashed orange)",
            layout=w.Layout(width="130px"))
        self.annotations = w.Checkbox(
            value=gallery.show_annotations, description="annotators' boxes", indent=False,
            tooltip="Draw every annotator's boxes, each annotator in its own colour",
            layout=w.Layout(width="140px"))
        self.crops = w.ToggleButton(
            value=gallery.crops, description="crops", icon="crop",
            tooltip="With selected boxes: one card per box, cropped around it",
            layout=w.Layout(width="90px"))
        self.min_confidence = w.FloatSlider(
            value=gallery.min_confidence, min=0.0, max=1.0, step=0.05,
            description="min conf.", readout_format=".2f", continuous_update=False,
            tooltip="Predictions below this confidence are not drawn (selected ones are)",
            layout=w.Layout(width="260px"))
        pairs = ((self.reference, "show_reference", "reference"),
                 (self.predictions, "show_predictions", "predictions"),
                 (self.annotations, "show_annotations", "annotations"),
                 (self.crops, "crops", "crops"),
                 (self.min_confidence, "min_confidence", "min-confidence"))
        for widget, trait, css in pairs:
            widget.add_class(f"wb-gallery-{css}")
            w.link((widget, "value"), (gallery, trait))
        legend = w.HTML(
            "<span style='font-size:11px;color:#555'><span style='color:#2e7d32'>"
            "&#9473; reference</span> &middot; <span style='color:#ef6c00'>&#9476; "
            "predicted</span> &middot; <span style='background:#ffd600'>&nbsp;selected"
            "&nbsp;</span> &middot; hover a box for its outcome</span>")
        super().__init__([self.reference, self.predictions, self.annotations, self.crops,
                          self.min_confidence, legend],
                         layout=w.Layout(flex_flow="row wrap", align_items="center",
                                         grid_gap="4px 8px"))
        self.add_class("wb-gallery-box-controls")
