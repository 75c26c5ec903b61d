"""Detection widgets without a browser: box-level selection, boxes drawn by the gallery,
the detection ErrorExplorer (confusion with background, PR curve, IoU control, slice tables),
the overview's AP, and the error-explorer notebook on the detection sample."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.callbacks import Points

import workbench as wb
from workbench.detection.curves import boxes_at_threshold, precision_recall_curve
from workbench.selection import Selection
from workbench.widgets import ErrorExplorer, ItemGallery
from workbench.widgets.detection_ap_table import class_table
from workbench.widgets.detection_explorer import DetectionErrorExplorer
from workbench.widgets.detection_pr_curve import PrecisionRecallCurve

from .conftest import HOSTILE, run_dashboard_notebook

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample-detection"
RECT = re.compile(r"<rect class='wb-box [^']*'")


@pytest.fixture(scope="module")
def app(det_project):
    return ErrorExplorer(det_project)


def _points(*inds, trace_index=1):
    return Points(point_inds=list(inds), xs=[], ys=[], trace_name="t", trace_index=trace_index)


def _click_cell(cm, true, pred):
    k = len(cm.classes)
    cm._on_click(cm.figure.data[1], _points(cm.classes.index(true) * k + cm.classes.index(pred)),
                 None)


def _rects(html: str) -> list[str]:
    return RECT.findall(html)


# ---- Selection with box ids -------------------------------------------------------------


def test_selection_holds_box_ids_with_their_images():
    sel = Selection()
    changes = []
    sel.observe(lambda c: changes.append(c["name"]), names=["ids", "box_ids"])
    owner = object()
    sel.select(["b", "a"], box_ids=["a/b1", "a/b0", "a/b1"], origin=owner, description="x")
    assert sel.ids == ("a", "b") and sel.box_ids == ("a/b0", "a/b1")
    assert sel.origin is owner and sorted(changes) == ["box_ids", "ids"]
    sel.picked = ["a"]
    sel.select(["a", "b"], box_ids=["b/b0"])  # same images, other boxes
    assert sel.box_ids == ("b/b0",) and sel.picked == ("a",)  # picks follow ids only
    sel.select(["a", "b"])  # select without boxes: no box-level selection
    assert sel.box_ids is None
    sel.select(["a"], box_ids=["a/b0"])
    sel.ids = ["c"]  # ids set on their own drop the boxes
    assert sel.box_ids is None and sel.ids == ("c",)
    sel.select(["a"], box_ids=["a/b0"])
    sel.clear()
    assert sel.ids is None and sel.box_ids is None
    with pytest.raises(ValueError, match="pass the images of the boxes as ids"):
        sel.select(None, box_ids=["a/b0"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        sel.select(["a"], box_ids="a/b0")
    assert sel.ids is None  # a rejected selection changes nothing


# ---- the explorer: dispatch and the background cell ------------------------------------------


def test_error_explorer_dispatches_on_the_task(det_project, sample_project):
    det = ErrorExplorer(det_project, run="baseline")
    assert isinstance(det, DetectionErrorExplorer) and det.run == "baseline"
    assert "wb-ready" in det._dom_classes and "wb-error-explorer" in det._dom_classes
    cls = ErrorExplorer(sample_project)
    assert type(cls) is ErrorExplorer and cls.errors is not None


def test_click_background_cell_selects_missed_boxes_and_gallery_draws_them(app, det_project):
    sel = app.selection
    m = wb.match_detections(det_project, app.run)
    _click_cell(app.confusion, "8", "background")
    rows = wb.cell_items(m, "8", "background")
    missed = rows["box_id"].dropna().astype(str)
    assert len(missed) == app.confusion.table.loc["8", "background"] > 0
    assert sel.box_ids == tuple(sorted(missed))
    assert set(rows["outcome"]) <= {"fn", "mislocated"}
    assert sel.ids == tuple(sorted(set(rows["item_id"].astype(str))))
    assert "missed boxes of class 8" in sel.description
    assert app.confusion.cell == ("8", "background")
    assert "boxes on" in app.status.value
    # the gallery drew every selected box on its card
    g = app.gallery
    assert len(g.drawn) == min(len(sel.ids), g.page_size)
    shown = set()
    for card, rec in zip(g.cards, g.drawn, strict=False):
        html = card.figure.value
        rects = _rects(html)
        assert len(rects) == rec["reference"] + rec["predictions"] > 0
        selected = [r for r in rects if "wb-box-selected" in r]
        assert len(selected) == len(rec["selected"]) >= 1
        assert set(rec["selected"]) <= set(missed)
        for box_id in rec["selected"]:
            assert f"data-box-id='{box_id}'" in html
        assert "data:image/png;base64," in html and "/voila/files" not in html
        assert f"data-selected='{len(rec['selected'])}'" in card.caption.value
        shown |= set(rec["selected"])
    on_page = {b for b in missed if b.split("/")[0] in set(g.ids_on_page)}
    assert shown == on_page  # every missed box of the page's images is drawn, highlighted


def test_background_row_selects_false_detections(app, det_project):
    _click_cell(app.confusion, "background", "1")
    m = wb.match_detections(det_project, app.run)
    rows = wb.cell_items(m, "background", "1")
    assert app.selection.box_ids == tuple(sorted(rows["pred_id"].dropna().astype(str)))
    assert all("/p" in b for b in app.selection.box_ids)  # predictions only
    # a pair cell selects the reference box and the prediction
    _click_cell(app.confusion, "8", "1")
    pair = wb.cell_items(m, "8", "1")
    assert set(app.selection.box_ids) == set(pair["box_id"].astype(str)) | set(
        pair["pred_id"].astype(str))
    app.selection.clear()
    assert app.confusion.cell is None and app.gallery.drawn == []


# ---- gallery: layers, crops, confidence, escaping -------------------------------------------


def test_gallery_layers_crops_and_confidence(det_project):
    sel = Selection()
    g = ItemGallery(det_project, sel, run="candidate")
    m = wb.match_detections(det_project, "candidate")
    fn = m[m["outcome"] == "fn"].head(5)
    sel.select(fn["item_id"], box_ids=fn["box_id"])
    first = g.drawn[0]
    refs = det_project.boxes[det_project.boxes["item_id"] == first["item_id"]]
    assert first["reference"] == len(refs)
    preds = det_project.predictions
    preds = preds[(preds["item_id"] == first["item_id"]) & (preds["run"] == "candidate")]
    assert first["predictions"] == int((preds["confidence"] >= g.min_confidence).sum())
    g.min_confidence = 0.0
    assert g.drawn[0]["predictions"] == len(preds)
    g.reference_toggle.value = False  # hide the reference layer: only selected boxes stay
    assert g.show_reference is False
    assert all(r["reference"] == len(r["selected"]) for r in g.drawn)
    g.predictions_toggle.value = False
    assert all(r["predictions"] == 0 for r in g.drawn)
    assert all("wb-box-pred" not in c.figure.value for c in g.cards if c.item_id)
    g.reference_toggle.value = g.predictions_toggle.value = True
    g.crops_toggle.value = True  # one card per selected box
    assert [r["crop"] for r in g.drawn] == sorted(fn["box_id"].astype(str),
                                                  key=lambda b: (b.split("/")[0], b))
    assert "crop of" in g.cards[0].caption.value
    assert g.cards[0].figure.value.count("wb-box-selected") >= 1
    sel.select(fn["item_id"])  # an image-level selection: no crops to show
    assert [r["crop"] for r in g.drawn] == [None] * len(g.drawn)


def _png(w: int, h: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (w, h), color=(200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


def test_gallery_escapes_labels_ids_and_metadata(tmp_path):
    root = tmp_path / "det"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(_png(64, 48))
    evil = "<b>x</b>"
    items = pd.DataFrame({"item_id": ["a<i>"], "filepath": ["images/a.png"],
                          "site": [HOSTILE]})
    boxes = pd.DataFrame({"item_id": ["a<i>"], "label": [evil], "x": [2.0], "y": [3.0],
                          "w": [20.0], "h": [10.0], "box_id": ["b'<svg onload=alert(1)>"]})
    preds = pd.DataFrame({"item_id": ["a<i>"], "run": ["r<script>"], "label": [evil],
                          "x": [4.0], "y": [3.0], "w": [20.0], "h": [10.0],
                          "confidence": [0.9]})
    project = wb.Project.from_frames(items=items, boxes=boxes, predictions=preds, root=root,
                                     task="detection", name="evil")
    sel = Selection()
    g = ItemGallery(project, sel)
    sel.select(["a<i>"], box_ids=["b'<svg onload=alert(1)>"])
    html = g.cards[0].figure.value + g.cards[0].caption.value
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<svg onload" not in html and "<img src=x" not in html and "<i>" not in html
    assert "<script" not in html
    rec = g.drawn[0]
    assert rec["reference"] == 1 and rec["predictions"] == 1 and rec["image"] is True
    assert rec["selected"] == ["b'<svg onload=alert(1)>"]
    assert len(_rects(g.cards[0].figure.value)) == 2


# ---- precision-recall curve -------------------------------------------------------------


def test_pr_curve_point_selects_predictions_above_or_below(det_project):
    m = wb.match_detections(det_project, "candidate")
    sel = Selection()
    curve = PrecisionRecallCurve(m, sel, label="3")
    full = precision_recall_curve(m, "3")
    metrics = wb.detection_metrics(m).set_index("class")
    assert full["precision"].iloc[-1] == pytest.approx(metrics.loc["3", "precision"])
    assert full["recall"].iloc[-1] == pytest.approx(metrics.loc["3", "recall"])
    assert len(curve.curve) <= 400 and curve.curve["threshold"].is_monotonic_decreasing
    i = len(curve.curve) // 3
    thr = float(curve.curve["threshold"].iloc[i])
    curve._on_click(curve.figure.data[0], _points(i, trace_index=0), None)
    preds = m[m["pred_id"].notna() & (m["predicted"].astype(object) == "3")]
    above = preds[preds["confidence"] >= thr]
    assert sel.box_ids == tuple(sorted(above["pred_id"].astype(str)))
    assert sel.ids == tuple(sorted(set(above["item_id"].astype(str))))
    assert int(curve.curve["n_predictions"].iloc[i]) == len(above)
    assert curve.threshold == thr and len(curve.figure.data[1].x) == 1
    curve.side_toggle.value = "below"  # the same threshold, the other side
    below = preds[preds["confidence"] < thr]
    assert sel.box_ids == tuple(sorted(below["pred_id"].astype(str)))
    assert "<" in sel.description
    sel.select(["scene-0000"])  # someone else selects: the marker goes
    assert curve.threshold is None and len(curve.figure.data[1].x) == 0
    both = boxes_at_threshold(m, thr, side="above")
    assert len(both) == int((m["pred_id"].notna() & (m["confidence"] >= thr)).sum())


def test_ap_table_row_picks_the_curve_class(app, det_project):
    table = app.ap_table
    expected = wb.detection_metrics(det_project, run=app.run).set_index("class")
    got = table.frame.set_index("class")
    np.testing.assert_allclose(got["ap"], expected.loc[got.index, "ap"])
    np.testing.assert_allclose(got["ap50"], expected.loc[got.index, "ap50"])
    assert (got["n_missed"] == expected["n_boxes"] - expected["n_tp"]).all()
    table.table.rows[2].button.click()
    assert table.label == app.pr_curve.label == str(got.index[2])
    assert table.table.rows[2].button.button_style == "info"


# ---- the IoU control -------------------------------------------------------------------


def test_iou_control_rematches_every_view(det_project):
    app = ErrorExplorer(det_project)
    _click_cell(app.confusion, "3", "background")
    app.iou_picker.value = 0.75
    assert app.error_box.value == "" and app.iou == 0.75
    m = wb.match_detections(det_project, app.run, iou=0.75)
    assert app.matches.attrs["iou"] == pytest.approx(0.75)
    pd.testing.assert_frame_equal(app.confusion.table, wb.confusion_table(m),
                                  check_dtype=False)
    at = wb.detection_metrics(det_project, run=app.run, iou=0.75, iou_thresholds=[0.75])
    np.testing.assert_allclose(app.ap_table.frame["ap_iou"], at["ap"])
    assert len(app.misses.errors) == int(m["box_id"].notna().sum())
    assert app.misses._overall() == pytest.approx(m.loc[m["box_id"].notna(), "is_fn"].mean())
    # a stricter IoU misses more boxes
    before = class_table(det_project, app.run, iou=0.5)
    assert app.ap_table.frame["n_missed"].iloc[-1] > before["n_missed"].iloc[-1]
    # the gallery shows outcomes at the new IoU
    _click_cell(app.confusion, "3", "background")
    outcomes = app.gallery._detection.data.outcomes(app.run)
    assert all(outcomes["box"][b]["outcome"] in ("fn", "mislocated")
               for b in app.selection.box_ids)
    app.run_picker.value = "baseline"
    assert app.gallery.run == "baseline" and app.matches["run"].iloc[0] == "baseline"


# ---- slice tables on misses and false detections ---------------------------------------------


def test_slice_tables_select_the_bad_boxes(app, det_project):
    misses = app.misses
    misses.discovered_toggle.value = True
    assert "cam-b" in str(misses.frame["slice"].iloc[0])  # the planted weak camera
    misses.rows[0].button.click()
    m = app.matches
    fn = set(m.loc[m["is_fn"].to_numpy(dtype=bool), "box_id"].astype(str))
    assert app.selection.box_ids and set(app.selection.box_ids) <= fn
    assert len(app.selection.box_ids) == int(misses.frame["errors"].iloc[0])
    assert app.selection.origin is misses
    fp = app.false_detections
    fp.rows[0].button.click()
    bad = set(m.loc[m["is_fp"].to_numpy(dtype=bool), "pred_id"].astype(str))
    assert set(app.selection.box_ids) <= bad
    assert len(app.selection.box_ids) == int(fp.frame["errors"].iloc[0])
    assert misses.selected_row is None  # the other table's highlight went


# ---- overview ---------------------------------------------------------------------------


def test_overview_shows_ap_per_run_and_its_change(det_project):
    from workbench.widgets.overview import OverviewDashboard

    view = OverviewDashboard(det_project, trend_by="capture_week")
    metrics = wb.detection_metrics(det_project)
    overall = metrics[metrics["class"] == "all"].set_index("run")["ap"]
    ap = view.kpis.ap.set_index("run")
    np.testing.assert_allclose(ap["ap"], overall.loc[ap.index])
    assert ap.loc["candidate", "change"] == pytest.approx(
        overall["candidate"] - overall["baseline"])
    assert "wb-kpi-ap" in view.cards.value and "wb-kpi-error-rate" not in view.cards.value
    assert f"{overall['candidate']:.3f}" in view.cards.value
    assert "vs baseline" in view.cards.value and "AP per run" in view.tables.value
    assert view.figure is not None and "cam-b" in view.worst.value


# ---- the notebook serves both tasks ------------------------------------------------------


def test_error_explorer_notebook_runs_on_the_detection_sample(det_project, monkeypatch):
    board, errors = run_dashboard_notebook("01_error_explorer.ipynb", SAMPLE, monkeypatch)
    assert board == {"cls": "DetectionErrorExplorer", "task": "detection", "ready": True}
    assert errors == []
    assert os.environ["WORKBENCH_PROJECT"] == str(SAMPLE)
