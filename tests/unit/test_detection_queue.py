"""The relabel queue of a detection project (``RelabelQueue(detection_project)``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.detection.queue import (
    DetectionRelabelQueue,
    box_index,
    box_items,
    image_scores,
    image_slice_lifts,
    image_tags,
    queue_frame,
    queue_state,
)
from workbench.errors import ReadOnlyError, SchemaError
from workbench.tags import TagStore

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


def _t(text):
    return pd.Timestamp(text, tz="UTC")


# ---- hand-built frames -----------------------------------------------------------------

TAGS = pd.DataFrame({
    "item_id": ["a", "a", "b", "c", "c"],
    "box_id": ["a/b1", "a/b0", None, "c/run/p2", None],
    "tag": "relabel",
    "author": ["ann", "bob", "ann", "ann", "ann"],
    "reason": ["loose", "wrong class", None, "missing box", "loose"],
    "tagged_at": [_t("2026-01-01"), _t("2026-01-02"), _t("2026-01-03"), _t("2026-01-04"),
                  _t("2026-01-05")],
})


def test_image_tags_groups_the_boxes_and_reasons_of_each_image():
    out = image_tags(TAGS)
    assert out["item_id"].tolist() == ["a", "b", "c"]
    assert out["box_ids"].tolist() == [("a/b0", "a/b1"), (), ("c/run/p2",)]
    assert out["n_boxes"].tolist() == [2, 0, 1]
    assert out["image_tagged"].tolist() == [False, True, True]
    # distinct reasons, oldest first; "loose" of c once
    assert out["reasons"].tolist() == ["loose; wrong class", "", "missing box; loose"]
    assert out["reason"].iloc[0] == "wrong class" and pd.isna(out["reason"].iloc[1])
    assert out["tagged_by"].tolist() == ["ann, bob", "ann", "ann"]
    assert out["tagged_at"].tolist() == [_t("2026-01-02"), _t("2026-01-03"),
                                         _t("2026-01-05")]


def test_image_tags_without_box_column_are_image_tags():
    out = image_tags(TAGS.drop(columns="box_id").iloc[[2]])
    assert out["box_ids"].tolist() == [()] and out["image_tagged"].tolist() == [True]
    with pytest.raises(SchemaError, match="reason"):
        image_tags(TAGS.drop(columns="reason"))


def test_queue_state_requeues_an_image_tagged_after_it_was_sent():
    per_image = image_tags(TAGS)
    statuses = pd.DataFrame({"item_id": ["a", "c"], "status": ["sent", "sent"],
                             "updated_at": [_t("2026-01-03"), _t("2026-01-04 12:00")]})
    out = queue_state(per_image, statuses)
    # a: sent after its last tag; b: never sent; c: a box tagged after the export
    assert out.set_index("item_id")["status"].to_dict() == {"a": "sent", "b": "queued",
                                                           "c": "queued"}
    assert queue_state(per_image, statuses, "sent")["item_id"].tolist() == ["a"]
    with pytest.raises(ValueError, match="'status' parameter"):
        queue_state(per_image, statuses, "lost")


def test_image_scores_and_slice_lifts():
    issues = pd.DataFrame({"item_id": ["a", "a", "c"], "image_score": [0.3, 0.3, 0.9]})
    sc = image_scores(issues, ["a", "b", "c"])
    assert sc["score"].to_numpy() == pytest.approx([0.7, 0.0, 0.1])
    assert np.isnan(sc.loc["b", "image_score"])
    assert (image_scores(None, ["a"])["score"] == 0).all()
    found = pd.DataFrame({"slice": ["camera=x", "camera=x & site=y"], "lift": [1.5, 2.0],
                          "item_ids": [["a", "c"], ["c"]]})
    lifts = image_slice_lifts(found, ["a", "b", "c"])
    assert lifts["slice"].tolist() == ["camera=x", "", "camera=x & site=y"]
    assert lifts["slice_lift"].tolist() == [1.5, 1.0, 2.0]


def test_queue_frame_orders_by_priority_and_lists_boxes_and_issues():
    per_image = image_tags(TAGS)
    state = queue_state(per_image, pd.DataFrame(columns=["item_id", "status",
                                                         "updated_at"]))
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "filepath": ["a.png", "b.png", "c.png"],
                          "width": [10, 10, 10], "height": [10, 10, 10],
                          "camera": ["x", "y", "x"]})
    issues = pd.DataFrame({
        "item_id": ["a", "a", "a", "b", "c"],
        "box_id": ["a/b0", "a/b1", "a/b2", "b/b0", pd.NA],
        "pred_id": [pd.NA, "a/run/p0", pd.NA, pd.NA, "c/run/p2"],
        "issue_type": ["wrong_class", "mislocated", "missing", "mislocated", "missing"],
        "image_score": [0.2, 0.2, 0.2, 0.6, 0.9], "is_issue": [True, True, True, True, True]})
    scores = image_scores(issues, items["item_id"])
    boxes = pd.DataFrame({"box_id": ["a/b0", "a/b1", "a/b2", "b/b0"],
                          "item_id": ["a", "a", "a", "b"], "label": ["3", "5", "1", "7"]})
    preds = pd.DataFrame({"pred_id": ["a/run/p0", "c/run/p2"], "item_id": ["a", "c"],
                          "label": ["5", "8"]})
    out = queue_frame(state, items, priorities=scores["score"], scores=scores,
                      slices=image_slice_lifts(None, items["item_id"]), issues=issues,
                      boxes=boxes, predictions=preds)
    assert out["item_id"].tolist() == ["a", "b", "c"]  # 1 - image_score: 0.8, 0.4, 0.1
    assert out["priority"].to_numpy() == pytest.approx([0.8, 0.4, 0.1])
    assert out["box_labels"].tolist() == [("3", "5"), (), ("8",)]
    # a: only the issues of its two tagged boxes; b: the whole image is tagged
    assert out["issue_types"].tolist() == ["mislocated, wrong_class", "mislocated",
                                           "missing"]
    assert out["n_issues"].tolist() == [3, 1, 1]
    assert out["camera"].tolist() == ["x", "y", "x"]
    assert list(out.columns[:8]) == ["item_id", "status", "priority", "score", "image_score",
                                     "slice", "slice_lift", "box_ids"]
    assert queue_frame(state, items, priorities=scores["score"], scores=scores,
                       slices=image_slice_lifts(None, items["item_id"]),
                       limit=1)["item_id"].tolist() == ["a"]


def test_box_items_maps_boxes_detections_and_annotations_to_images():
    index = box_index(pd.DataFrame({"box_id": ["a/b0"], "item_id": ["a"]}),
                      pd.DataFrame({"pred_id": ["b/r/p0"], "item_id": ["b"]}),
                      pd.DataFrame({"box_id": ["c/ann/a0"], "item_id": ["c"]}))
    assert box_items(["c/ann/a0", "a/b0", "b/r/p0"], index) == ["c", "a", "b"]
    with pytest.raises(SchemaError, match=r"\['nope'\]"):
        box_items(["a/b0", "nope"], index)


# ---- on the detection sample -------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_issues(det_sample_copy):
    return wb.label_issues(wb.open_project(det_sample_copy))


@pytest.fixture
def project(det_sample_copy):
    """The sample, opened fresh, with an empty tag store."""
    db = det_sample_copy / ".workbench"
    if db.exists():
        shutil.rmtree(db)
    return wb.open_project(det_sample_copy)


def test_queue_on_the_sample_ranks_images_by_label_issue_image_score(project, sample_issues):
    per_image = sample_issues.groupby("item_id")["image_score"].first().sort_values()
    worst, middle, best = per_image.index[0], per_image.index[len(per_image) // 2], \
        per_image.index[-1]
    store = TagStore.for_project(project)
    store.add([best, worst, middle], "relabel", author="u", reason="look again")
    queue = wb.RelabelQueue(project, store=store, priority="label_issue")
    assert isinstance(queue, DetectionRelabelQueue)
    frame = queue.frame()
    assert frame["item_id"].tolist() == [worst, middle, best]  # worst image score first
    assert frame["score"].to_numpy() == pytest.approx(
        1 - per_image.reindex([worst, middle, best]).to_numpy())
    assert frame["priority"].to_numpy() == pytest.approx(frame["score"].to_numpy())
    assert queue.priority_source == "label_issues"
    assert frame["box_ids"].tolist() == [(), (), ()]
    assert frame["n_boxes"].tolist() == [0, 0, 0]
    assert frame["reasons"].tolist() == ["look again"] * 3
    assert {"camera", "site", "filepath", "width"} <= set(frame.columns)
    # combined = score x the lift of the worst slice of missed boxes holding the image
    queue.priority = "combined"
    combined = queue.frame().set_index("item_id")
    assert combined["priority"].to_numpy() == pytest.approx(
        (combined["score"] * combined["slice_lift"]).to_numpy())
    assert (combined["slice_lift"] >= 1).all()
    assert combined["slice_lift"].max() > 1  # the sample has a worse camera
    assert queue.frame(limit=1)["item_id"].tolist() == [combined.index[0]]


def test_mark_and_counts_move_images_through_the_statuses(project):
    store = TagStore.for_project(project)
    store.add(["scene-0001", "scene-0002"], "relabel", author="u")
    queue = wb.RelabelQueue(project, store=store)
    assert queue.counts().set_index("status")["n_items"].to_dict() == {
        "queued": 2, "sent": 0, "relabeled": 0, "verified": 0}
    assert queue.mark(["scene-0001"], "sent") == 1
    assert queue.frame(status="sent")["item_id"].tolist() == ["scene-0001"]
    assert queue.counts().set_index("status")["n_items"].to_dict()["sent"] == 1


def test_mark_refused_in_a_read_only_session(project, monkeypatch):
    store = TagStore.for_project(project)
    store.add(["scene-0001"], "relabel", author="u")
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    queue = wb.RelabelQueue(project, store=store)
    assert len(queue.frame()) == 1  # reading is allowed
    with pytest.raises(ReadOnlyError):
        queue.mark(["scene-0001"], "sent")


def test_box_tags_queue_their_image_with_the_boxes_in_question(project, sample_issues):
    store = TagStore.for_project(project)
    flagged = sample_issues[sample_issues["is_issue"]
                            & (sample_issues["issue_type"] == "wrong_class")]
    row = flagged.iloc[0]
    item, box = row["item_id"], row["box_id"]
    other = project.boxes[(project.boxes["item_id"] == item)
                          & (project.boxes["box_id"] != box)]["box_id"].iloc[0]
    store.add([item, item], "relabel", author="u", reason="wrong class",
              box_ids=[box, other])
    store.add(["scene-0003"], "relabel", author="u", reason="blurry")
    queue = wb.RelabelQueue(project, store=store)
    frame = queue.frame().set_index("item_id")
    assert set(frame.index) == {item, "scene-0003"}  # one row per image
    assert frame.loc[item, "box_ids"] == tuple(sorted([box, other]))
    assert frame.loc[item, "n_boxes"] == 2 and not frame.loc[item, "image_tagged"]
    assert frame.loc[item, "reasons"] == "wrong class"
    assert "wrong_class" in frame.loc[item, "issue_types"]
    labels = project.boxes.set_index("box_id")["label"]
    assert frame.loc[item, "box_labels"] == tuple(labels[b] for b in frame.loc[item,
                                                                              "box_ids"])
    assert frame.loc["scene-0003", "box_ids"] == () and frame.loc["scene-0003", "image_tagged"]
    assert queue.counts().set_index("status")["n_items"].to_dict()["queued"] == 2
    # a box tagged after the image was sent puts it back in the queue
    queue.mark([item], "sent")
    assert queue.frame(status="sent").index.size == 1
    box3 = project.boxes[(project.boxes["item_id"] == item)]["box_id"]
    extra = next(b for b in box3 if b not in (box, other)) if len(box3) > 2 else None
    if extra is None:  # an image with two boxes: tag a detection of it instead
        extra = project.predictions[project.predictions["item_id"] == item]["pred_id"].iloc[0]
    store.add([item], "relabel", author="u", reason="also this", box_ids=[extra])
    again = queue.frame().set_index("item_id")
    assert again.loc[item, "status"] == "queued" and again.loc[item, "n_boxes"] == 3
    assert again.loc[item, "reasons"] == "wrong class; also this"
    # the manager overview counts the images as the queue does (the latest tag counts)
    from workbench.kpis import relabel_status_counts

    overview = relabel_status_counts(store.tags(), store.statuses("relabel"))
    assert overview.set_index("status")["n_items"].to_dict() == \
        queue.counts().set_index("status")["n_items"].to_dict() == \
        {"queued": 2, "sent": 0, "relabeled": 0, "verified": 0}


def test_queue_of_a_hand_built_project_in_memory():
    # img: a good, a loose and a swapped box and a missed object; clean: one good box;
    # empty: no box at all (no label-issue row: score 0)
    items = pd.DataFrame({"item_id": ["img", "clean", "empty"],
                          "filepath": ["img.png", "clean.png", "empty.png"],
                          "width": 200, "height": 200})
    boxes = pd.DataFrame({
        "box_id": ["img/good", "img/loose", "img/swapped", "clean/b0"],
        "item_id": ["img", "img", "img", "clean"], "label": ["cat", "dog", "cat", "dog"],
        "x": [10, 100, 10, 60], "y": [10, 10, 100, 60], "w": [40, 80, 40, 40],
        "h": [40, 80, 40, 40]})
    pred = pd.DataFrame({
        "pred_id": ["p-good", "p-loose", "p-swapped", "p-missing", "p-clean"],
        "item_id": ["img", "img", "img", "img", "clean"], "run": "r",
        "label": ["cat", "dog", "dog", "cat", "dog"], "x": [10, 110, 10, 120, 60.0],
        "y": [10, 20, 100, 140, 60.0], "w": [40, 40, 40, 30, 40.0],
        "h": [40, 40, 40, 30, 40.0], "confidence": [0.9, 0.9, 0.9, 0.9, 0.9]})
    project = wb.Project.from_frames(items, boxes=boxes, predictions=pred, task="detection",
                                     classes=["cat", "dog"], name="hand")
    store = TagStore.for_project(project)
    assert not store.persistent  # no folder: kept in memory
    store.add(["clean", "img", "img"], "relabel", author="u", reason="swapped?",
              box_ids=["clean/b0", "img/swapped", "p-missing"])
    store.add(["empty"], "relabel", author="u", reason="empty?")
    queue = wb.RelabelQueue(project, store=store, priority="label_issue")
    frame = queue.frame()
    image = wb.label_issues(project).groupby("item_id")["image_score"].first()
    assert image["img"] < image["clean"]
    assert frame["item_id"].tolist() == ["img", "clean", "empty"]
    assert frame["score"].to_numpy() == pytest.approx(
        [1 - image["img"], 1 - image["clean"], 0.0])
    assert frame["box_ids"].tolist() == [("img/swapped", "p-missing"), ("clean/b0",), ()]
    assert frame["box_labels"].tolist() == [("cat", "cat"), ("dog",), ()]
    # the issues of the tagged boxes only (not the loose box of img)
    assert frame["issue_types"].tolist() == ["missing, wrong_class", "", ""]
    assert frame["n_issues"].tolist() == [3, 0, 0]


def test_export_takes_the_budget_in_the_queue_order(project):
    store = TagStore.for_project(project)
    ids = project.items["item_id"].tolist()[:6]
    store.add(ids, "relabel", author="u")
    queue = wb.RelabelQueue(project, store=store, priority="slice_lift")
    first = queue.frame()["item_id"].tolist()[:2]
    out = project.root / "exports" / "batch.csv"
    assert queue.export(out, format="csv", limit=2) == 2
    sent = pd.read_csv(out, dtype=str)["item_id"].unique().tolist()
    assert sorted(sent) == sorted(first)
    assert sorted(queue.frame(status="sent")["item_id"]) == sorted(first)
    assert store.status_history()["author"].unique().tolist() == ["curator"]
