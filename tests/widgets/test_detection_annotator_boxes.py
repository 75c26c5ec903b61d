"""The gallery draws every annotator's boxes in the annotator's own colour (no browser):
counts per card and per annotator, colours fixed by sorted annotator name, the legend,
selected annotation boxes always drawn (and cropped), and hostile names escaped."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from workbench.selection import Selection
from workbench.widgets import ItemGallery
from workbench.widgets._boxes import PRED_COLOR, REF_COLOR, SELECTED_COLOR
from workbench.widgets._detection_data import (
    ANNOTATOR_DASHES,
    ANNOTATOR_PALETTE,
    DetectionData,
)

from .conftest import HOSTILE

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample-detection"
ANN_RECT = re.compile(r"<rect class='wb-box wb-box-ann wb-annotator-(\d+)[^']*' [^>]*"
                      r"stroke='([^']*)'")
ANN_GROUP = re.compile(r"<g class='wb-box wb-box-ann[^']*' data-box-id='([^']*)' "
                       r"data-annotator='([^']*)'>")


def _ann_of(project, item_id):
    a = project.annotations
    return a[a["item_id"] == item_id]


def test_show_annotations_draws_every_annotators_boxes_in_their_colour(det_project):
    sel = Selection()
    g = ItemGallery(det_project, sel, run="candidate", show_annotations=True)
    assert g.show_annotations is True and g.annotations_toggle.value is True
    items = sorted(det_project.annotations["item_id"].unique())[:6]
    sel.select(items)
    names = sorted(det_project.annotations["annotator"].unique())
    expected_colour = {n: ANNOTATOR_PALETTE[k] for k, n in enumerate(names)}
    assert len(g.drawn) == len(items)
    for card, rec in zip(g.cards, g.drawn, strict=False):
        ann = _ann_of(det_project, rec["item_id"])
        assert rec["annotations"] == len(ann)
        assert rec["by_annotator"] == ann["annotator"].value_counts().to_dict()
        html = card.figure.value
        rects = ANN_RECT.findall(html)
        assert len(rects) == len(ann)
        groups = ANN_GROUP.findall(html)
        assert sorted(b for b, _a in groups) == sorted(ann["box_id"])
        # every annotator's rectangles carry that annotator's colour and class index
        for (index, colour), (_box, who) in zip(rects, groups, strict=True):
            assert colour == expected_colour[who]
            assert int(index) == names.index(who)
        # hover title: annotator, label, box id
        row = ann.iloc[0]
        assert (f"<title>annotator {row['annotator']} · label {row['label']} · "
                f"{row['box_id']}</title>") in html
        assert f"data-annotations='{len(ann)}'" in card.caption.value
        # reference and predicted boxes are still drawn
        assert rec["reference"] == int((det_project.boxes["item_id"] == rec["item_id"]).sum())
    legend = g.annotator_legend.value
    assert g.annotator_legend.layout.display is None
    for k, n in enumerate(names):
        assert f"data-annotator='{n}' data-color='{ANNOTATOR_PALETTE[k]}'" in legend
        assert f"wb-annotator-swatch wb-annotator-{k}" in legend
    assert "wb-gallery-annotations" in g.annotations_toggle._dom_classes
    assert "wb-gallery-legend" in g.annotator_legend._dom_classes


def test_colours_are_stable_across_pages_galleries_and_subsets(det_project):
    first = DetectionData(det_project).annotator_styles()
    names = sorted(det_project.annotations["annotator"].unique())
    assert list(first) == names
    assert DetectionData(det_project).annotator_styles() == first
    # the colour of an annotator does not depend on which images are shown
    sel = Selection()
    g = ItemGallery(det_project, sel, page_size=3, show_annotations=True)
    ids = sorted(det_project.annotations["item_id"].unique())[:9]
    sel.select(ids)
    seen: dict[str, set] = {}
    for page in range(g.n_pages):
        g.go(page)
        for card in g.cards:
            if card.item_id is None:
                continue
            for (_i, colour), (_b, who) in zip(ANN_RECT.findall(card.figure.value),
                                               ANN_GROUP.findall(card.figure.value),
                                               strict=True):
                seen.setdefault(who, set()).add(colour)
    assert sorted(seen) == names and all(v == {first[k][0]} for k, v in seen.items())
    # the palette keeps clear of the other layers' colours and has no duplicates
    palette = [c.lower() for c in ANNOTATOR_PALETTE]
    assert len(set(palette)) == len(palette)
    assert not {REF_COLOR.lower(), PRED_COLOR.lower(), SELECTED_COLOR.lower()} & set(palette)


def _png(w: int, h: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (w, h), color=(200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


def _project(tmp_path, annotators, *, label="a", item="img"):
    root = tmp_path / "det"
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "images" / "a.png").write_bytes(_png(80, 60))
    items = pd.DataFrame({"item_id": [item], "filepath": ["images/a.png"]})
    boxes = pd.DataFrame({"item_id": [item], "label": [label], "x": [2.0], "y": [3.0],
                          "w": [20.0], "h": [10.0]})
    ann = pd.DataFrame({"item_id": [item] * len(annotators), "annotator": annotators,
                        "label": [label] * len(annotators),
                        "x": [2.0 + i for i in range(len(annotators))],
                        "y": [3.0] * len(annotators), "w": [20.0] * len(annotators),
                        "h": [10.0] * len(annotators)})
    return wb.Project.from_frames(items=items, boxes=boxes, annotations=ann, root=root,
                                  task="detection", name="t", classes=[label])


def test_more_annotators_than_colours_differ_by_dash(tmp_path):
    names = [f"ann{k:02d}" for k in range(len(ANNOTATOR_PALETTE) + 3)]
    project = _project(tmp_path, list(reversed(names)))
    styles = DetectionData(project).annotator_styles()
    assert list(styles) == names  # sorted by name, not by order of appearance
    assert styles[names[0]] == (ANNOTATOR_PALETTE[0], ANNOTATOR_DASHES[0])
    n = len(ANNOTATOR_PALETTE)
    assert styles[names[n]] == (ANNOTATOR_PALETTE[0], ANNOTATOR_DASHES[1])
    assert len(set(styles.values())) == len(names)  # no two annotators look the same


def test_hostile_annotator_and_label_are_escaped(tmp_path):
    evil_label = "<b>x</b>"
    project = _project(tmp_path, [HOSTILE, "<img src=x onerror=alert(1)>", "zoe"],
                       label=evil_label, item="i<i>")
    sel = Selection()
    g = ItemGallery(project, sel, show_annotations=True)
    ann = project.annotations
    sel.select(["i<i>"], box_ids=[ann["box_id"].iloc[0]])
    html = g.cards[0].figure.value + g.cards[0].caption.value + g.annotator_legend.value
    for raw in (HOSTILE, "<img src=x onerror=alert(1)>", evil_label, "<i>"):
        assert raw not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in g.annotator_legend.value
    assert "&lt;b&gt;x&lt;/b&gt;" in g.cards[0].figure.value
    rec = g.drawn[0]
    assert rec["annotations"] == 3 and rec["selected"] == [ann["box_id"].iloc[0]]
    assert sorted(rec["by_annotator"]) == sorted(ann["annotator"])


def test_selected_annotation_boxes_are_always_drawn_and_cropped(det_project):
    sel = Selection()
    g = ItemGallery(det_project, sel)  # default: the layer is off
    assert g.show_annotations is False and g.annotations_toggle.value is False
    ann = det_project.annotations
    chosen = ann[ann["annotator"] == "ben"].head(3)
    sel.select(chosen["item_id"].unique(), box_ids=chosen["box_id"])
    drawn_ids = []
    for card in g.cards:
        if card.item_id is not None:
            drawn_ids += [b for b, _a in ANN_GROUP.findall(card.figure.value)]
    assert sorted(drawn_ids) == sorted(chosen["box_id"])  # only the selected ones
    assert sum(r["annotations"] for r in g.drawn) == len(chosen)
    assert all(set(r["selected"]) <= set(chosen["box_id"]) for r in g.drawn)
    assert sorted(b for r in g.drawn for b in r["selected"]) == sorted(chosen["box_id"])
    for card in g.cards:  # highlighted: a halo around each selected annotation box
        if card.item_id is not None:
            assert re.search(r"<g class='wb-box wb-box-ann wb-annotator-\d+ wb-box-selected'",
                             card.figure.value)
    # the legend appears because annotators' boxes are on the page
    assert g.annotator_legend.layout.display is None
    # turning the layer on draws everyone's boxes; off again keeps the selected ones
    g.annotations_toggle.value = True
    assert g.show_annotations is True
    total = sum(len(_ann_of(det_project, r["item_id"])) for r in g.drawn)
    assert sum(r["annotations"] for r in g.drawn) == total
    g.show_annotations = False
    assert sum(r["annotations"] for r in g.drawn) == len(chosen)
    # crops: one card per selected annotation box
    g.crops = True
    assert [r["crop"] for r in g.drawn] == sorted(chosen["box_id"],
                                                  key=lambda b: (b.split("/")[0], b))
    assert "crop of" in g.cards[0].caption.value
    # an image-level selection without annotators' boxes hides the legend
    sel.select(chosen["item_id"].unique())
    assert all(r["annotations"] == 0 for r in g.drawn)
    assert g.annotator_legend.layout.display == "none"


def test_show_annotations_must_be_a_bool(det_project, tiny_project):
    with pytest.raises(ValueError, match="'show_annotations' parameter of ItemGallery"):
        ItemGallery(det_project, show_annotations="yes")
    g = ItemGallery(tiny_project, show_annotations=True)  # classification: kept, harmless
    assert g.show_annotations is True


def test_project_without_annotations_has_an_empty_legend(tmp_path):
    root = tmp_path / "plain"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(_png(40, 40))
    project = wb.Project.from_frames(
        items=pd.DataFrame({"item_id": ["a"], "filepath": ["images/a.png"]}),
        boxes=pd.DataFrame({"item_id": ["a"], "label": ["c"], "x": [1.0], "y": [1.0],
                            "w": [5.0], "h": [5.0]}),
        root=root, task="detection", name="plain")
    sel = Selection()
    g = ItemGallery(project, sel, show_annotations=True)
    sel.select(["a"])
    assert g.drawn[0]["annotations"] == 0 and g.drawn[0]["reference"] == 1
    assert "No annotators' boxes" in g.annotator_legend.value
    assert g.annotations_toggle.disabled is True
