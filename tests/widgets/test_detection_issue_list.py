"""The suspected box errors list (DetectionIssueList) without a browser: rows of
wb.label_issues in rank order, the issue-type filter, row / page clicks selecting images and
boxes (drawn by the gallery), label issues computed once per dashboard, escaping, and the
overview's share of images with a suspected box error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
import workbench.label_quality as label_quality
from workbench.detection.consensus import box_consensus
from workbench.kpis import image_issue_rate, overview_kpis
from workbench.selection import Selection
from workbench.widgets import DetectionIssueList, ItemGallery, LabelIssueList
from workbench.widgets._detection_data import DetectionData

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample-detection"


@pytest.fixture(scope="module")
def issues(det_project):
    return wb.label_issues(det_project)


@pytest.fixture(scope="module")
def data(det_project):
    return DetectionData(det_project)


def _slot_of(lst: DetectionIssueList, mask) -> int:
    """Go to the page of the first listed row matching ``mask``; its slot on that page."""
    pos = int(mask.to_numpy().nonzero()[0][0])
    lst.go(pos // lst.page_size)
    return pos % lst.page_size


def test_label_issue_list_dispatches_and_lists_flagged_boxes_by_rank(det_project, issues,
                                                                     data):
    sel = Selection()
    lst = LabelIssueList(det_project, sel, page_size=10)
    assert isinstance(lst, DetectionIssueList)
    flagged = issues[issues["is_issue"]].sort_values("rank")
    assert len(lst.frame) == len(flagged)
    assert lst.frame["rank"].tolist() == flagged["rank"].tolist()
    assert [r.button.description for r in lst.rows] == \
        flagged["item_id"].head(10).astype(str).tolist()
    counts = flagged["issue_type"].value_counts()
    assert lst.type_picker.options[0] == (f"all issue types ({len(flagged):,})", "all")
    assert dict((v, label) for label, v in lst.type_picker.options[1:]) == {
        t: f"{name} ({int(counts.get(t, 0)):,})" for t, name in
        (("missing", "missing box"), ("mislocated", "mislocated"),
         ("wrong_class", "wrong class"))}
    n_images = flagged["item_id"].nunique()
    assert f"{len(flagged):,} boxes on {n_images:,} images" in lst.message.value
    # every scored box when "flagged only" is off
    lst.only_box.value = False
    assert len(lst.frame) == len(issues) and lst.issue_type == "all"
    assert "wb-detection-issues" in lst._dom_classes


def test_issue_type_filter_keeps_order_and_survives_the_flag_toggle(det_project, data):
    lst = DetectionIssueList(det_project, Selection(), data)
    for kind in ("missing", "mislocated", "wrong_class"):
        lst.type_picker.value = kind
        assert lst.issue_type == kind
        assert set(lst.frame["issue_type"]) == {kind}
        assert lst.frame["rank"].is_monotonic_increasing
        assert lst.frame["is_issue"].all()
    lst.only_box.value = False  # the filter stays on the same type
    assert lst.issue_type == "wrong_class" and not lst.frame["is_issue"].all()
    assert set(lst.frame["issue_type"]) == {"wrong_class"}
    with pytest.raises(Exception, match="issue_type must be one of"):
        lst.issue_type = "bogus"


def test_row_click_selects_the_image_and_the_box_in_question(det_project, issues, data):
    sel = Selection()
    lst = DetectionIssueList(det_project, sel, data)
    gallery = ItemGallery(det_project, sel, detection=data, show_annotations=True)
    frame = lst.frame
    cases = {
        "mislocated": frame["issue_type"] == "mislocated",
        "wrong_class": frame["issue_type"] == "wrong_class",
        "missing (detection)": (frame["issue_type"] == "missing") & frame["pred_id"].notna(),
        "missing (annotators)": (frame["issue_type"] == "missing") & frame["pred_id"].isna(),
    }
    members = box_consensus(det_project.annotations, "majority", items=det_project,
                            classes=[str(c) for c in det_project.classes])
    members = dict(zip(members["consensus_id"], members["box_ids"], strict=True))
    for name, mask in cases.items():
        assert mask.any(), name
        slot = _slot_of(lst, mask)
        row = lst.frame.iloc[lst.page * lst.page_size + slot]
        lst._on_row(slot)  # the browser's click on that row
        assert sel.ids == (row["item_id"],), name
        if name.startswith("missing (detection)"):
            expected = [row["pred_id"]]
        elif name.startswith("missing (annotators)"):
            expected = members[row["consensus_id"]]
        else:
            expected = [row["box_id"]]
        assert sel.box_ids == tuple(sorted(expected)), name
        assert sel.origin is lst and lst.item_id == row["item_id"]
        assert lst.row == lst.frame.index[lst.page * lst.page_size + slot]
        assert lst.rows[slot].button.button_style == "info"
        # the gallery shows that image with the selected boxes highlighted
        assert [r["item_id"] for r in gallery.drawn] == [row["item_id"]]
        assert gallery.drawn[0]["selected"] == sorted(expected), name
    # another widget's selection clears the highlighted row
    sel.select(["scene-0000"])
    assert lst.row is None and lst.item_id is None


def test_select_page_and_all_listed_select_images_and_boxes(det_project, data):
    sel = Selection()
    lst = DetectionIssueList(det_project, sel, data, page_size=8)
    lst.type_picker.value = "wrong_class"
    lst.go(1)
    page = lst.frame.iloc[8:16]
    ids, boxes = lst.select_page()
    assert sel.ids == tuple(sorted(set(page["item_id"])))
    assert sel.box_ids == tuple(sorted(set(page["box_id"])))
    assert sorted(ids) == sorted(set(page["item_id"])) and len(boxes) == len(set(boxes))
    assert "page 2" in sel.description and lst.row is None
    lst.select_all_button.click()
    assert sel.box_ids == tuple(sorted(set(lst.frame["box_id"])))
    assert sel.ids == tuple(sorted(set(lst.frame["item_id"])))
    lst.select_page_button.click()  # via the button: page 2 still
    assert sel.ids == tuple(sorted(set(page["item_id"])))


def test_label_issues_computed_once_per_dashboard(det_project, monkeypatch):
    calls = []
    real = label_quality.label_issues

    def counting(project, run=None, **kw):
        calls.append(run)
        return real(project, run, **kw)

    monkeypatch.setattr(label_quality, "label_issues", counting)
    shared = DetectionData(det_project)
    a = DetectionIssueList(det_project, Selection(), shared)
    b = DetectionIssueList(det_project, Selection(), shared)
    assert calls == ["candidate"]
    pd.testing.assert_frame_equal(a.issues, b.issues)
    DetectionIssueList(det_project, Selection(), shared, run="baseline")
    assert calls == ["candidate", "baseline"]


def test_hostile_labels_are_escaped_and_missing_runs_are_explained(tmp_path):
    evil = "<b>x</b>"
    items = pd.DataFrame({"item_id": ["a", "b"], "filepath": ["a.png", "b.png"],
                          "width": [100, 100], "height": [100, 100]})
    boxes = pd.DataFrame({"item_id": ["a", "a", "b"], "label": [evil, "y", evil],
                          "x": [10.0, 50, 10], "y": [10.0, 50, 10], "w": [20.0, 20, 30],
                          "h": [20.0, 20, 30]})
    preds = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "run": ["r"] * 4,
                          "label": ["y", "y", evil, evil], "x": [10.0, 50, 10, 60],
                          "y": [10.0, 50, 10, 60], "w": [20.0, 20, 30, 20],
                          "h": [20.0, 20, 30, 20], "confidence": [0.99, 0.9, 0.9, 0.95]})
    project = wb.Project.from_frames(items=items, boxes=boxes, predictions=preds,
                                     task="detection", name="evil", root=tmp_path,
                                     classes=[evil, "y"])
    sel = Selection()
    lst = DetectionIssueList(project, sel)
    assert len(lst.frame) == 2  # a wrong-class box and a missing one
    cells = "".join(c.value for r in lst.rows for c in r.cells)
    assert evil not in cells and "&lt;b&gt;x&lt;/b&gt;" in cells
    lst._on_row(1)  # the missing box: its detection is selected
    missing = lst.frame.iloc[1]
    assert missing["issue_type"] == "missing"
    assert sel.ids == ("b",) and sel.box_ids == (missing["pred_id"],)

    no_run = wb.Project.from_frames(items=items, boxes=boxes, task="detection",
                                    name="norun", root=tmp_path)
    empty = DetectionIssueList(no_run, Selection())
    assert len(empty.frame) == 0 and "need a model run" in empty.message.value
    assert empty.select_page_button.disabled
    with pytest.raises(TypeError, match="needs a detection project"):
        DetectionIssueList(wb.Project.from_frames(items=items[["item_id", "filepath"]]
                                                  .assign(label=["c", "c"]), root=tmp_path))
    with pytest.raises(ValueError, match="'page_size' parameter of DetectionIssueList"):
        DetectionIssueList(project, page_size=0)


def test_image_issue_rate_counts_images_with_a_flagged_box():
    issues = pd.DataFrame({"item_id": ["a", "a", "b", "c"],
                           "is_issue": [True, True, False, True]})
    assert image_issue_rate(issues, ["a", "b", "c", "d", "e"]) == {
        "n_items": 5, "n_issues": 2, "rate": 0.4, "n_boxes": 3}
    with pytest.raises(Exception, match="item_id"):
        image_issue_rate(pd.DataFrame({"is_issue": [True]}), ["a"])


def test_overview_reports_the_share_of_images_with_a_suspected_box_error(det_project,
                                                                        issues):
    from workbench.widgets.overview import OverviewDashboard

    k = overview_kpis(det_project, trend_by="capture_week")
    flagged = issues.loc[issues["is_issue"], "item_id"].nunique()
    n = len(det_project.items)
    assert k.label_issues == {"n_items": n, "n_issues": flagged, "rate": flagged / n,
                              "n_boxes": int(issues["is_issue"].sum())}
    assert "label_issues" not in k.problems
    view = OverviewDashboard(det_project, trend_by="capture_week")
    assert f"{flagged:,} of {n:,} images" in view.cards.value
    assert "Suspected box label errors" in view.cards.value
    assert overview_kpis(det_project, issues=False).label_issues is None
