"""The Disagreement Explorer on the detection sample, without a browser: every click (simulated
plotly / ipywidgets callbacks) selects the images and the boxes the library frames name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.callbacks import Points

import workbench as wb
from workbench._format import percent
from workbench.detection.agreement import annotator_box_outcomes
from workbench.selection import Selection
from workbench.widgets import DisagreementExplorer
from workbench.widgets.agreement_matrix import AgreementMatrix, DetectionAgreementMatrix
from workbench.widgets.annotator_table import AnnotatorTable, DetectionAnnotatorTable
from workbench.widgets.confused_pairs import ConfusedPairs, DetectionConfusedPairs
from workbench.widgets.detection_disagreement import DetectionDisagreementExplorer

from .conftest import run_dashboard_notebook

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample-detection"


@pytest.fixture(scope="module")
def app(det_project):
    return DisagreementExplorer(det_project)


@pytest.fixture(scope="module")
def matches(det_project):
    return wb.match_annotators(det_project.annotations, iou=0.5,
                               classes=det_project.classes)


def _points(*inds):
    return Points(point_inds=list(inds), xs=[], ys=[], trace_name="", trace_index=1)


def _click(heatmap, row: str, col: str) -> None:
    labels = heatmap._labels
    k = len(labels)
    heatmap._on_click(heatmap.figure.data[1],
                      _points(labels.index(row) * k + labels.index(col)))


def _disagreements(matches, a, b=None):
    """Images and boxes of the pair (a, b) (b None: a against anyone) not ``agree``."""
    m = matches[matches["outcome"].astype(str) != "agree"]
    ma, mb = m["annotator_a"].astype(str), m["annotator_b"].astype(str)
    if b is None:
        rows = m[(ma == a) | (mb == a)]
    else:
        rows = m[((ma == a) & (mb == b)) | ((ma == b) & (mb == a))]
    boxes = set(rows["box_id_a"].dropna()) | set(rows["box_id_b"].dropna())
    return tuple(sorted(set(rows["item_id"].astype(str)))), tuple(sorted(map(str, boxes)))


# ---- dispatch ------------------------------------------------------------------------------


def test_a_detection_project_gets_the_detection_views(det_project, app):
    assert type(app) is DetectionDisagreementExplorer
    assert isinstance(AgreementMatrix(det_project), DetectionAgreementMatrix)
    assert isinstance(ConfusedPairs(det_project.annotations), DetectionConfusedPairs)
    assert isinstance(AnnotatorTable(det_project), DetectionAnnotatorTable)
    assert "wb-ready" in app._dom_classes and "wb-disagreement-explorer" in app._dom_classes
    assert app.error_box.value == ""
    assert "DetectionDisagreementExplorer(" in repr(app)


def test_kpis_are_the_library_summary(det_project, app):
    s = wb.agreement_summary(det_project.annotations, classes=det_project.classes)
    assert app.summary == s
    for key in ("detection_f1", "mean_cohen_kappa", "mean_iou", "krippendorff_alpha"):
        assert f"data-kpi='{key}'" in app.header.value
        assert f"{s[key]:.3f}" in app.header.value
    assert f"{s['n_boxes']:,} boxes" in app.header.value


# ---- the annotator x annotator heatmap ---------------------------------------------------


def test_heatmap_shows_pairwise_f1_and_a_cell_selects_images_and_boxes(det_project, matches):
    sel = Selection()
    m = DetectionAgreementMatrix(det_project, sel)
    pairs = wb.pairwise_agreement(det_project.annotations, classes=det_project.classes)
    assert m._labels == ["ana", "ben", "dev"] and m.value == "detection_f1"
    for r in pairs.itertuples():
        assert m.matrix.loc[r.annotator_a, r.annotator_b] == pytest.approx(r.detection_f1)
        assert m.matrix.loc[r.annotator_b, r.annotator_a] == pytest.approx(r.detection_f1)
    # the figure carries the same numbers
    z = np.array(m.figure.data[0].z, dtype=float)
    assert z[0, 2] == pytest.approx(m.matrix.loc["ana", "dev"])

    _click(m, "dev", "ana")
    ids, boxes = _disagreements(matches, "ana", "dev")
    assert sel.ids == ids and sel.box_ids == boxes and len(boxes) > len(ids) > 0
    assert m.cell == ("dev", "ana") and len(m.figure.layout.shapes) == 1
    # every selected box belongs to ana or dev, on a selected image
    ann = det_project.annotations.set_index("box_id")
    assert set(ann.loc[list(boxes), "annotator"]) == {"ana", "dev"}
    assert set(ann.loc[list(boxes), "item_id"]) == set(ids)

    _click(m, "ben", "ben")  # the diagonal: ben against anyone
    assert (sel.ids, sel.box_ids) == _disagreements(matches, "ben")

    m.value = "mean_iou"
    row = pairs.set_index(["annotator_a", "annotator_b"]).loc[("ana", "ben")]
    assert m.matrix.loc["ben", "ana"] == pytest.approx(row["mean_iou"])
    sel.select(["scene-0001"], source="elsewhere")
    assert m.cell is None and len(m.figure.layout.shapes) == 0
    with pytest.raises(ValueError, match="'value' parameter of AgreementMatrix"):
        DetectionAgreementMatrix(det_project, value="agreement")


# ---- confused classes of matched boxes ---------------------------------------------------


def test_confused_pair_selects_the_matched_boxes_behind_it(det_project, matches):
    sel = Selection()
    c = DetectionConfusedPairs(det_project, sel)
    _click(c, "7", "1")
    pairs = wb.confused_pairs(det_project.annotations, classes=det_project.classes)
    row = pairs[(pairs["class_a"] == "1") & (pairs["class_b"] == "7")].iloc[0]
    assert sel.ids == tuple(sorted(row["item_ids"]))
    assert sel.box_ids == tuple(sorted(set(row["box_ids"])))
    # the selected boxes are exactly both sides of the other_class matches labelled 1 / 7
    m = matches[matches["outcome"].astype(str) == "other_class"]
    la, lb = m["label_a"].astype(str), m["label_b"].astype(str)
    swapped = m[((la == "1") & (lb == "7")) | ((la == "7") & (lb == "1"))]
    assert set(sel.box_ids) == set(swapped["box_id_a"]) | set(swapped["box_id_b"])
    assert c.matrix.loc["1", "7"] == c.matrix.loc["7", "1"] == row["n_pairs"]
    # the most-confused list: dev's swaps 1/7 and 4/9 come first, and select like a cell
    tops = [b.description for b in c.top_buttons if b.layout.display is None]
    assert tops[0].startswith("1 ↔ 7") and tops[1].startswith("4 ↔ 9")
    assert "box pairs" in tops[0] and "images" in tops[0]
    c.top_buttons[1].click()
    nine = pairs.iloc[1]
    assert c.cell == ("4", "9") and sel.box_ids == tuple(sorted(set(nine["box_ids"])))
    before = (sel.ids, sel.box_ids)
    _click(c, "4", "4")  # the diagonal does nothing
    assert (sel.ids, sel.box_ids) == before


# ---- the annotator table -----------------------------------------------------------------


def test_annotator_table_scores_and_selects_problem_boxes(det_project):
    sel = Selection()
    t = DetectionAnnotatorTable(det_project, sel)
    ann = det_project.annotations
    q = wb.annotator_quality(ann, classes=det_project.classes)
    pd.testing.assert_frame_equal(t.quality.drop(columns="n_problems"), q)
    # the planted habits: ana misses small objects, dev swaps classes, ben draws loose boxes
    assert q.loc[q["miss_rate"].idxmax(), "annotator"] == "ana"
    assert q.loc[q["class_accuracy"].idxmin(), "annotator"] == "dev"
    assert q.loc[q["mean_iou"].idxmin(), "annotator"] == "ben"
    assert [b.description for b in t.buttons] == ["ana", "ben", "dev"]
    # the miss rate column reads as the library's, ana's the worst
    miss = [r.cells[1].value for r in t.table.rows[:3]]
    assert miss == [percent(x) for x in q["miss_rate"]]

    out = annotator_box_outcomes(ann, classes=det_project.classes)
    t.buttons[0].click()  # ana, all problems
    rows = out[(out["annotator"] == "ana") & (out["outcome"].astype(str) != "match")]
    assert sel.ids == tuple(sorted(set(rows["item_id"])))
    own = set(rows["box_id"].dropna())
    missed = rows[rows["outcome"].astype(str) == "missed"]
    others = {b for members in missed["reference_box_ids"] for b in members}
    assert set(sel.box_ids) == own | others and t.annotator == "ana"
    assert t.buttons[0].button_style == "info"

    t.kind = "missed"  # the toggle re-selects the same annotator's missed objects
    assert sel.ids == tuple(sorted(set(missed["item_id"])))
    assert set(sel.box_ids) == others
    boxes = ann.set_index("box_id").loc[list(sel.box_ids)]
    assert "ana" not in set(boxes["annotator"])  # what ana missed, drawn by the others
    assert "ana: objects missed" in sel.description

    t.kind = "loose"
    t.buttons[1].click()
    loose = out[(out["annotator"] == "ben") & (out["outcome"].astype(str) == "loose")]
    assert sel.box_ids == tuple(sorted(loose["box_id"])) and len(loose) > 0
    assert (out["iou"][out.index.isin(loose.index)] < 0.7).all()
    per_kind = out.groupby(["annotator", "outcome"], observed=False).size()
    assert per_kind["ben", "loose"] > max(per_kind["ana", "loose"], per_kind["dev", "loose"])
    assert per_kind["dev", "wrong_class"] > max(per_kind["ana", "wrong_class"],
                                                per_kind["ben", "wrong_class"])
    sel.clear(source="test")
    assert t.annotator is None and t.buttons[1].button_style == ""
    with pytest.raises(ValueError, match="'kind' parameter of AnnotatorTable"):
        DetectionAnnotatorTable(det_project, kind="sloppy")


def test_annotator_box_outcomes_are_the_boxes_behind_annotator_quality(det_project):
    ann = det_project.annotations
    for reference in (None, det_project.boxes):
        q = wb.annotator_quality(ann, reference, classes=det_project.classes).set_index(
            "annotator")
        out = annotator_box_outcomes(ann, reference, classes=det_project.classes)
        for name, g in out.groupby("annotator"):
            kind = g["outcome"].astype(str)
            r = q.loc[name]
            assert (kind != "missed").sum() == r["n_boxes"]
            assert (kind == "missed").sum() / r["n_reference"] == pytest.approx(r["miss_rate"])
            assert (kind == "extra").sum() / r["n_boxes"] == pytest.approx(r["extra_rate"])
            matched = g[kind.isin(["match", "loose", "wrong_class"])]
            assert matched["iou"].mean() == pytest.approx(r["mean_iou"])
            assert (kind[matched.index] != "wrong_class").mean() == pytest.approx(
                r["class_accuracy"])
        if reference is not None:  # gold ids are the dataset's box ids
            assert set(out["reference_id"].dropna()) <= set(det_project.boxes["box_id"])


# ---- agreement by slice ------------------------------------------------------------------


def test_slice_rows_show_agreement_by_and_select_disagreements(det_project, app, matches):
    expected = wb.agreement_by(det_project.annotations, det_project, "camera", n_boot=200,
                               classes=det_project.classes)
    assert app.slice_picker.value == "camera"
    pd.testing.assert_frame_equal(app.slice_frame, expected)
    assert [b.description for b in app.slice_buttons] == list(expected["camera"])
    app.slice_buttons[1].click()
    cam = expected["camera"].iloc[1]
    in_cam = set(det_project.items.loc[det_project.items["camera"] == cam, "item_id"])
    bad = matches[(matches["outcome"].astype(str) != "agree")
                  & matches["item_id"].astype(str).isin(in_cam)]
    sel = app.selection
    assert sel.ids == tuple(sorted(set(bad["item_id"].astype(str))))
    assert sel.box_ids == tuple(sorted(set(bad["box_id_a"].dropna())
                                       | set(bad["box_id_b"].dropna())))
    assert f"{len(sel.box_ids):,} boxes on {len(sel.ids):,} images selected" in \
        app.status.value
    assert app.slice_buttons[1].button_style == "info"
    app.slice_picker.value = "site"
    assert list(app.slice_frame.columns[:1]) == ["site"]
    assert app.slice_frame["n_items"].gt(0).all()
    app.selection.clear()
    assert "No selection" in app.status.value


# ---- the board: shared selection, gallery, status ------------------------------------------


def test_explorer_links_heatmap_table_and_gallery(det_project, app, matches):
    sel = app.selection
    _click(app.matrix, "ana", "ben")
    ids, boxes = _disagreements(matches, "ana", "ben")
    assert (sel.ids, sel.box_ids) == (ids, boxes)
    assert set(app.gallery.ids_on_page) <= set(ids) and app.gallery.ids_on_page
    assert "boxes where ana and ben disagree" in app.status.value
    app.annotators.buttons[2].click()  # another widget: the heatmap drops its cell
    assert app.matrix.cell is None and app.annotators.annotator == "dev"
    app.pairs.top_buttons[0].click()
    assert app.annotators.annotator is None and app.pairs.cell is not None
    app.clear_button.click()
    assert sel.ids is None and sel.box_ids is None and app.pairs.cell is None


def test_gallery_draws_every_annotators_boxes_and_the_selected_ones(det_project, app,
                                                                    matches):
    gallery = app.gallery
    assert gallery.show_annotations is True and gallery.show_predictions is False
    _click(app.matrix, "ana", "dev")
    ids, boxes = _disagreements(matches, "ana", "dev")
    drawn = gallery.drawn
    assert drawn and {d["item_id"] for d in drawn} <= set(ids)
    ann = det_project.annotations
    for d in drawn:
        on_image = ann[ann["item_id"] == d["item_id"]]
        # every annotator's boxes of the image, counted per annotator, and no detection
        assert d["annotations"] == len(on_image) and d["predictions"] == 0
        assert d["by_annotator"] == on_image.groupby("annotator").size().to_dict()
        expected = {b for b in boxes if b.startswith(d["item_id"] + "/")}
        assert set(d["selected"]) == expected
    assert "wb-gallery-legend" in gallery.annotator_legend._dom_classes


def test_suspected_box_errors_select_images_and_boxes(det_project, app):
    from workbench.widgets.detection_issue_list import DetectionIssueList

    issues = app.issues
    assert isinstance(issues, DetectionIssueList) and issues.data is app.data
    flagged = issues.frame
    assert len(flagged) and flagged["is_issue"].all()
    issues.rows[0].button.click()  # the most suspicious box
    first = flagged.iloc[0]
    sel = app.selection
    assert sel.ids == (str(first["item_id"]),) and sel.box_ids
    assert "suspected" in app.status.value
    assert app.matrix.cell is None and app.annotators.annotator is None
    known = set(det_project.boxes["box_id"]) | set(det_project.annotations["box_id"]) | \
        set(det_project.predictions["pred_id"])
    assert set(sel.box_ids) <= known
    app.selection.clear()


def test_without_two_annotators_the_board_says_why(det_project):
    one = det_project.annotations[det_project.annotations["annotator"] == "ana"]
    project = wb.Project.from_frames(items=det_project.items, boxes=det_project.boxes,
                                     annotations=one, predictions=det_project.predictions,
                                     classes=det_project.classes, task="detection",
                                     root=SAMPLE, name="one annotator")
    board = DisagreementExplorer(project)
    assert "Only one annotator (ana)" in board.header.value and board.summary == {}
    assert "no pairwise agreement" in board.matrix.caption.value
    assert board.slice_frame.empty and "wb-ready" in board._dom_classes


def test_disagreements_notebook_runs_on_the_detection_sample(monkeypatch):
    board, errors = run_dashboard_notebook("02_disagreements.ipynb", SAMPLE, monkeypatch)
    assert board == {"cls": "DetectionDisagreementExplorer", "task": "detection", "ready": True}
    assert errors == []
    assert os.environ["WORKBENCH_PROJECT"] == str(SAMPLE)
