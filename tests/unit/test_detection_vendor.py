"""The relabel loop for boxes: export to a vendor (Label Studio, COCO, CSV), import back."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.detection.vendor import BoxImportReport, diff_boxes, read_box_labels
from workbench.errors import SchemaError
from workbench.project import write_project
from workbench.relabel import read_labels, restore_cell
from workbench.tags import TagStore

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"
TABLES = ("workbench.toml", "items.csv", "boxes.csv", "annotations.csv", "predictions.csv")


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator-1")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    if (SAMPLE / "items.csv").exists():
        return SAMPLE
    from workbench.detection.sample import build_detection_sample

    return build_detection_sample(tmp_path_factory.mktemp("built") / "sample", n_images=36)


@pytest.fixture
def sample(sample_dir, tmp_path):
    """A copy of the detection sample's tables (the images are not needed: sizes are given)."""
    root = tmp_path / "project"
    root.mkdir()
    for name in TABLES:
        shutil.copy2(sample_dir / name, root / name)
    return wb.open_project(root)


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".workbench" not in p.relative_to(root).parts}


def _vendor(tasks: list[dict], *, who=7, when="2026-05-01T10:00:00Z") -> list[dict]:
    """What a vendor does in Label Studio: start from the current boxes and submit."""
    tasks = copy.deepcopy(tasks)
    for k, task in enumerate(tasks):
        current = next(p for p in task["predictions"] if p["model_version"] == "current")
        task["id"] = 100 + k
        task["annotations"] = [{"id": 500 + k, "completed_by": who, "updated_at": when,
                                "result": copy.deepcopy(current["result"])}]
    return tasks


def _task(tasks, item):
    return next(t for t in tasks if t["data"]["item_id"] == item)


def _write(path: Path, payload) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the diff


def test_diff_hand_computed():
    old = pd.DataFrame({
        "box_id": ["a", "b", "c", "d", "f", "g", "h"],
        "item_id": ["i", "i", "i", "i", "i", "j", "k"],
        "label": ["cat", "dog", "cat", "cat", "dog", "dog", "cat"],
        "x": [0, 50, 100, 0, 0, 0, 0], "y": [0, 0, 100, 50, 100, 0, 0],
        "w": 10, "h": 10})
    new = pd.DataFrame({
        "item_id": ["i", "i", "i", "i", "i", "j"],
        "label": ["cat", "cat", "cat", "cat", "cat", "dog"],
        "x": [1, 50, 0, 200, 0, 100], "y": [0, 0, 50, 200, 102, 100],
        "w": [10, 10, 10, 5, 10, 10], "h": [10, 10, 10, 5, 10, 10],
        "source_box_id": [None, None, None, None, None, "g"]})
    diff = diff_boxes(old, new).set_index("old_box_id", drop=False)
    # a: x 0 -> 1, intersection 9 x 10, union 200 - 90
    assert diff.loc["a", "outcome"] == "moved"
    assert diff.loc["a", "iou"] == pytest.approx(90 / 110)
    # b: same place, dog -> cat
    assert diff.loc["b", "outcome"] == "reclassed" and not diff.loc["b", "moved"]
    assert diff.loc["b", "iou"] == 1.0 and diff.loc["b", "new_label"] == "cat"
    # c: nothing overlaps it
    assert diff.loc["c", "outcome"] == "deleted" and pd.isna(diff.loc["c", "new_box_id"])
    assert diff.loc["d", "outcome"] == "unchanged" and diff.loc["d", "new_box_id"] == "d"
    # f: dog -> cat and y 100 -> 102: intersection 8 x 10, union 200 - 80 -> reclassed + moved
    assert diff.loc["f", "outcome"] == "reclassed" and diff.loc["f", "moved"]
    assert diff.loc["f", "iou"] == pytest.approx(80 / 120)
    # g: drawn from g (its region id) far away: matched by identity, IoU 0
    assert diff.loc["g", "outcome"] == "moved" and diff.loc["g", "iou"] == 0.0
    assert diff.loc["h", "outcome"] == "deleted"
    added = diff[diff["outcome"] == "added"]
    assert added[["item_id", "x", "y", "w", "h"]].values.tolist() == [["i", 200, 200, 5, 5]]
    assert pd.isna(added["old_box_id"]).all() and pd.isna(added["new_box_id"]).all()
    assert sorted(diff["outcome"].value_counts().items()) == [
        ("added", 1), ("deleted", 2), ("moved", 2), ("reclassed", 2), ("unchanged", 1)]
    with pytest.raises(ValueError, match="'iou' parameter of diff_boxes"):
        diff_boxes(old, new, iou=0)


def test_diff_prefers_more_matches_then_iou():
    # two old boxes, two new ones: the Hungarian pairing matches both (greedy would match
    # the best pair first and leave the other unmatched)
    old = pd.DataFrame({"box_id": ["p", "q"], "item_id": "i", "label": "cat",
                        "x": [0.0, 6.0], "y": 0.0, "w": 10.0, "h": 10.0})
    new = pd.DataFrame({"item_id": "i", "label": "cat", "x": [3.0, 9.0], "y": 0.0,
                        "w": 10.0, "h": 10.0})
    diff = diff_boxes(old, new, iou=0.4)
    assert set(diff["outcome"]) == {"moved"}
    assert dict(zip(diff["old_box_id"], diff["iou"], strict=True)) == pytest.approx(
        {"p": 70 / 130, "q": 70 / 130})


# ------------------------------------------------------------------- a hand-built project


def _tiny(tmp_path, format="csv") -> wb.Project:
    items = pd.DataFrame({"item_id": ["im1", "im2"], "filepath": ["a.png", "b.png"],
                          "width": [200, 100], "height": [100, 100],
                          "site": ["north", "south"]})
    boxes = pd.DataFrame({"box_id": ["im1/b0", "im1/b1", "im2/b0"],
                          "item_id": ["im1", "im1", "im2"], "label": ["cat", "dog", "cat"],
                          "x": [20.0, 100.0, 10.0], "y": [10.0, 50.0, 10.0],
                          "w": [40.0, 50.0, 20.0], "h": [20.0, 40.0, 20.0]})
    ann = pd.DataFrame({"item_id": ["im1", "im1", "im1"], "annotator": ["ann1", "ann2", "ls-3"],
                        "label": ["cat", "cat", "cat"], "x": [20.0, 21.0, 0.0],
                        "y": [10.0, 10.0, 0.0], "w": [40.0, 40.0, 5.0], "h": 20.0,
                        "annotated_at": pd.Timestamp("2026-01-01T00:00:00Z")})
    project = wb.Project.from_frames(items, annotations=ann, boxes=boxes,
                                     classes=["cat", "dog"], task="detection")
    if format is None:  # in memory, no folder
        return project
    root = write_project(project, tmp_path / "tiny", format=format)
    return wb.open_project(root)


def _rect(rid, label, x, y, w, h, W, H):
    return {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": W, "original_height": H, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0,
                      "rectanglelabels": [label]}}


def test_import_on_a_hand_built_project(tmp_path):
    project = _tiny(tmp_path)
    store = TagStore.for_project(project)
    store.add(["im1"], "relabel", author="curator-1", reason="loose box")
    # im1 is 200 x 100: im1/b0 [20, 10, 40, 20] is x=10 %, y=10 %, 20 % x 20 %
    tasks = [{"id": 1, "data": {"item_id": "im1"}, "annotations": [{
        "id": 11, "completed_by": 3, "updated_at": "2026-02-01T00:00:00Z", "result": [
            _rect("im1/b0", "cat", 15, 10, 20, 20, 200, 100),     # moved to x = 30 px
            _rect("im1/b1", "cat", 50, 50, 25, 40, 200, 100),     # dog -> cat, same place
            _rect("xyz", "dog", 80, 0, 10, 10, 200, 100)]}]},     # added [160, 0, 20, 10]
        {"id": 2, "data": {"item_id": "im2"}, "annotations": [{
            "id": 12, "completed_by": {"id": 3, "email": "v@acme.test"},
            "created_at": "2026-02-01T00:00:00Z", "result": []}]}]   # every box deleted
    path = _write(tmp_path / "ls.json", tasks)
    report = wb.import_labels(project, path)
    assert isinstance(report, BoxImportReport)
    diff = report.diff.set_index("old_box_id", drop=False)
    # [30, 10, 40, 20] vs [20, 10, 40, 20]: intersection 30 x 20 = 600, union 1000
    assert diff.loc["im1/b0", "outcome"] == "moved"
    assert diff.loc["im1/b0", "iou"] == pytest.approx(0.6)
    assert diff.loc["im1/b1", ["outcome", "old_label", "new_label"]].tolist() == [
        "reclassed", "dog", "cat"]
    assert diff.loc["im2/b0", "outcome"] == "deleted"
    added = report.diff[report.diff["outcome"] == "added"].iloc[0]
    assert added["new_box_id"] == "im1/b2"
    assert [added[c] for c in "xywh"] == [160.0, 0.0, 20.0, 10.0]
    assert report.counts == {"unchanged": 0, "moved": 1, "reclassed": 1, "added": 1,
                             "deleted": 1}
    per = report.per_image.set_index("item_id")
    assert per.loc["im1", ["annotator", "n_old", "n_new", "moved", "added"]].tolist() == [
        "ls-3", 2, 3, 1, 1]
    assert per.loc["im2", ["annotator", "n_old", "n_new", "deleted"]].tolist() == [
        "v@acme.test", 1, 0, 1]
    # the files: boxes with their ids kept, the vendor's annotations replacing ls-3's
    after = wb.open_project(project.root)
    boxes = after.boxes.set_index("box_id")
    assert list(boxes.index) == ["im1/b0", "im1/b1", "im1/b2"]
    assert boxes.loc["im1/b0", ["x", "y", "w", "h"]].tolist() == [30.0, 10.0, 40.0, 20.0]
    assert boxes.loc["im1/b1", "label"] == "cat"
    assert "box_id" in pd.read_csv(project.root / "boxes.csv").columns
    ls3 = after.annotations[after.annotations["annotator"] == "ls-3"]
    assert sorted(ls3[["label", "x"]].itertuples(index=False, name=None)) == [
        ("cat", 30.0), ("cat", 100.0), ("dog", 160.0)]
    assert (ls3["annotated_at"] == pd.Timestamp("2026-02-01T00:00:00Z")).all()
    assert after.annotations["annotator"].value_counts()["ann1"] == 1   # others untouched
    assert report.n_annotations_replaced == 1   # v@acme.test drew nothing: no set to write
    assert report.backups and all(p.exists() for p in report.backups)
    assert store.statuses("relabel")["status"].tolist() == ["relabeled"]
    assert report.n_relabeled == 1
    # per slice: the project has no run (no label issues); agreement on the annotated image
    everything = report.slices.set_index("column").loc["(all)"]
    assert np.isnan(everything["label_issues_before"])
    assert everything["n_imported"] == 2
    assert set(report.slices["value"]) == {"(all)", "north", "south"}
    assert report.per_slice is report.slices
    assert "1 moved, 1 reclassed, 1 added, 1 deleted" in report.summary()
    assert repr(report).startswith("BoxImportReport(2 images imported from ls.json")
    # again: nothing changes, nothing is written
    files = _snapshot(project.root)
    again = wb.import_labels(after, path)
    assert again.counts == {"unchanged": 3, "moved": 0, "reclassed": 0, "added": 0,
                            "deleted": 0}
    assert not again.written and again.n_annotations_replaced == 0
    assert _snapshot(project.root) == files


@pytest.mark.parametrize("fmt", ["parquet", None])
def test_import_parquet_and_in_memory_projects(tmp_path, fmt):
    project = _tiny(tmp_path, fmt)
    tasks = [{"id": 1, "data": {"item_id": "im1"}, "annotations": [
        {"id": 11, "completed_by": 3, "updated_at": "2026-03-01T00:00:00Z", "result": [
            _rect("a", "dog", 10, 10, 20, 20, 200, 100)]},
        # older, but marked ground truth: its boxes become the reference
        {"id": 12, "completed_by": 4, "ground_truth": True,
         "updated_at": "2026-02-01T00:00:00Z", "result": [
            _rect("im1/b0", "cat", 10, 10, 20, 20, 200, 100),
            _rect("im1/b1", "cat", 50, 50, 25, 40, 200, 100)]}]}]
    path = _write(tmp_path / "gt.json", tasks)
    report = wb.import_labels(project, path)
    assert report.per_image["annotator"].tolist() == ["ls-4"]
    assert report.counts == {"unchanged": 1, "moved": 0, "reclassed": 1, "added": 0,
                             "deleted": 0}
    after = report.project
    assert after.boxes.set_index("box_id").loc["im1/b1", "label"] == "cat"
    by = after.annotations.groupby("annotator").size()
    assert (by["ls-3"], by["ls-4"]) == (1, 2)   # ls-3's earlier box replaced by its new one
    if fmt is None:
        assert project.root is None and not report.written
        assert project.boxes.set_index("box_id").loc["im1/b1", "label"] == "dog"  # unchanged
    else:
        assert report.boxes_path.name == "boxes.parquet"
        reread = wb.open_project(project.root)
        pd.testing.assert_frame_equal(reread.boxes, after.boxes)
        again = wb.import_labels(reread, path)
        assert set(again.diff["outcome"]) == {"unchanged"} and not again.written


def test_read_box_labels_refuses_a_classification_project(tmp_path):
    project = wb.Project.from_frames(pd.DataFrame({"item_id": ["a"], "label": ["cat"]}),
                                     classes=["cat"])
    path = _write(tmp_path / "x.json", [])
    with pytest.raises(ValueError, match="task is 'classification'"):
        read_box_labels(path, project)


# ------------------------------------------------------------------- the sample, twice


def test_labelstudio_round_trip_twice(sample, tmp_path):
    root = sample.root
    store = TagStore.for_project(sample)
    items = ["scene-0000", "scene-0001", "scene-0002"]
    store.add(items, "relabel", author="curator-1", reason="check the boxes")
    store.add(["scene-0002"], "relabel", author="curator-1", reason="too loose",
              box_ids=["scene-0002/b1"])
    out = tmp_path / "batch-1.json"
    assert wb.export_relabel_queue(sample, out) == 3
    tasks = json.loads(out.read_text())
    assert sorted(t["data"]["item_id"] for t in tasks) == items
    assert set(store.statuses("relabel")["status"]) == {"sent"}
    # Label Studio's percent coordinates, the box ids as region ids, the model's boxes
    width = sample.items.set_index("item_id")["width"]
    height = sample.items.set_index("item_id")["height"]
    for task in tasks:
        item = task["data"]["item_id"]
        assert task["data"]["image"] == f"images/{item}.png"
        versions = [p["model_version"] for p in task["predictions"]]
        assert versions == ["current", sample.default_run]
        current = task["predictions"][0]["result"]
        mine = sample.boxes[sample.boxes["item_id"] == item]
        assert [r["id"] for r in current] == mine["box_id"].tolist()
        for r, (_, box) in zip(current, mine.iterrows(), strict=True):
            assert r["type"] == "rectanglelabels" and r["image_rotation"] == 0
            assert (r["original_width"], r["original_height"]) == (width[item], height[item])
            assert r["value"]["x"] == pytest.approx(100 * box["x"] / width[item])
            assert r["value"]["height"] == pytest.approx(100 * box["h"] / height[item])
            assert r["value"]["rectanglelabels"] == [box["label"]]
        model = task["predictions"][1]["result"]
        assert model and all(r["score"] >= 0.5 for r in model)
    t2 = _task(tasks, "scene-0002")
    assert t2["data"]["boxes_in_question"] == ["scene-0002/b1"]
    asked = [r for r in t2["predictions"][0]["result"] if "meta" in r]
    assert [(r["id"], r["meta"]["text"]) for r in asked] == [("scene-0002/b1", ["too loose"])]

    # round 1: on scene-0000 move b0, re-class b1, delete b2, add one box
    edited = _vendor(tasks)
    regions = _task(edited, "scene-0000")["annotations"][0]["result"]
    assert [r["id"] for r in regions] == ["scene-0000/b0", "scene-0000/b1", "scene-0000/b2"]
    regions[0]["value"]["x"] += 2.5                         # 2.5 % of 160 px = 4 px
    old_b1 = sample.boxes.set_index("box_id").loc["scene-0000/b1"]
    new_class = "3" if old_b1["label"] != "3" else "4"
    regions[1]["value"]["rectanglelabels"] = [new_class]
    del regions[2]
    regions.append(_rect("vendor-new", "8", 50.0, 50.0, 10.0, 12.5, 160, 120))
    path1 = _write(tmp_path / "result-1.json", edited)
    report = wb.import_labels(sample, path1)
    assert report.counts["moved"] == 1 and report.counts["reclassed"] == 1
    assert report.counts["added"] == 1 and report.counts["deleted"] == 1
    n_boxes = int(sample.boxes["item_id"].isin(items).sum())
    assert report.counts["unchanged"] == n_boxes - 3
    changed = report.changed.set_index("outcome")
    assert changed.loc["moved", "old_box_id"] == "scene-0000/b0"
    assert changed.loc["reclassed", ["old_box_id", "new_label"]].tolist() == [
        "scene-0000/b1", new_class]
    assert changed.loc["deleted", "old_box_id"] == "scene-0000/b2"
    new_id = changed.loc["added", "new_box_id"]
    assert new_id not in set(sample.boxes["box_id"])
    after = wb.open_project(root)
    boxes = after.boxes.set_index("box_id")
    old0 = sample.boxes.set_index("box_id").loc["scene-0000/b0"]
    assert boxes.loc["scene-0000/b0", "x"] == pytest.approx(old0["x"] + 4.0, abs=1e-6)
    assert boxes.loc["scene-0000/b1", "label"] == new_class
    assert "scene-0000/b2" not in boxes.index
    assert boxes.loc[new_id, ["x", "y", "w", "h"]].tolist() == [80.0, 60.0, 16.0, 15.0]
    assert len(after.boxes) == len(sample.boxes)  # one deleted, one added
    # the box tag survives (the id is kept), the vendor's boxes are an annotator's
    assert store.boxes_with("relabel")["box_id"].tolist() == ["scene-0002/b1"]
    vendor = after.annotations[after.annotations["annotator"] == "ls-7"]
    assert len(vendor) == n_boxes  # 3 - 1 + 1 on scene-0000
    assert len(after.annotations) == len(sample.annotations) + n_boxes
    assert set(store.statuses("relabel")["status"]) == {"relabeled"}
    # the per-slice before/after: label issues counted by wb.label_issues itself
    everything = report.slices.set_index("column").loc["(all)"]
    assert everything["label_issues_before"] == wb.label_issues(sample)["is_issue"].sum()
    assert everything["label_issues_after"] == wb.label_issues(after)["is_issue"].sum()
    assert 0 < everything["agreement_after"] <= 1
    cams = report.slices[report.slices["column"] == "camera"]
    assert cams["n_imported"].sum() == 3

    # the same file again: nothing changes, no duplicates, the files are untouched
    files = _snapshot(root)
    again = wb.import_labels(after, path1)
    assert set(again.diff["outcome"]) == {"unchanged"} and not again.written
    assert _snapshot(root) == files

    # round 2: re-queue scene-0000, export, move the added box, delete the re-classed one
    store.remove(["scene-0000"], "relabel", author="curator-1")
    store.add(["scene-0000"], "relabel", author="curator-1", reason="second look")
    out2 = tmp_path / "batch-2.json"
    assert wb.export_relabel_queue(after, out2) == 1
    tasks2 = json.loads(out2.read_text())
    assert [r["id"] for r in tasks2[0]["predictions"][0]["result"]] == [
        "scene-0000/b0", "scene-0000/b1", new_id]
    edited2 = _vendor(tasks2, when="2026-05-02T10:00:00Z")
    regions = edited2[0]["annotations"][0]["result"]
    regions[2]["value"]["y"] -= 25.0                      # 30 px up: far from where it was
    del regions[1]
    path2 = _write(tmp_path / "result-2.json", edited2)
    report2 = wb.import_labels(after, path2)
    assert report2.counts == {"unchanged": 1, "moved": 1, "reclassed": 0, "added": 0,
                              "deleted": 1}
    moved = report2.changed.set_index("outcome").loc["moved"]
    assert moved["old_box_id"] == moved["new_box_id"] == new_id
    assert moved["iou"] == 0.0                             # matched by its region id
    final = wb.open_project(root)
    mine = final.boxes[final.boxes["item_id"] == "scene-0000"]
    assert mine["box_id"].tolist() == ["scene-0000/b0", new_id]
    assert mine.set_index("box_id").loc[new_id, "y"] == pytest.approx(30.0)
    vendor = final.annotations[final.annotations["annotator"] == "ls-7"]
    assert (vendor["item_id"] == "scene-0000").sum() == 2   # replaced, not appended
    assert len(vendor) == n_boxes - 1
    assert not vendor["box_id"].duplicated().any()
    files = _snapshot(root)
    assert set(wb.import_labels(final, path2).diff["outcome"]) == {"unchanged"}
    assert _snapshot(root) == files


def test_read_labels_dispatches_for_boxes(sample, tmp_path):
    store = TagStore.for_project(sample)
    store.add(["scene-0001"], "relabel", author="curator-1")
    out = tmp_path / "b.json"
    wb.export_relabel_queue(sample, out)
    path = _write(tmp_path / "r.json", _vendor(json.loads(out.read_text())))
    read = read_labels(path, project=sample)
    box = sample.boxes[sample.boxes["item_id"] == "scene-0001"]
    assert read[["label", "x", "y", "w", "h"]].values.tolist() == box[
        ["label", "x", "y", "w", "h"]].values.tolist()
    assert read["annotator"].tolist() == ["ls-7"] * len(box)
    assert read["source_box_id"].tolist() == box["box_id"].tolist()


# ----------------------------------------------------------------------------- COCO


def _free_spot(boxes: pd.DataFrame, width: float, height: float) -> list[float]:
    """An 8 x 8 px box overlapping none of ``boxes``."""
    for y in np.arange(0, height - 8, 4.0):
        for x in np.arange(0, width - 8, 4.0):
            if all(x + 8 <= bx or bx + bw <= x or y + 8 <= by or by + bh <= y
                   for bx, by, bw, bh in boxes[["x", "y", "w", "h"]].to_numpy()):
                return [float(x), float(y), 8.0, 8.0]
    raise AssertionError("no free spot")


def test_coco_round_trip(sample, tmp_path):
    store = TagStore.for_project(sample)
    n_of = sample.boxes["item_id"].value_counts()
    items = sorted(n_of[n_of >= 2].index)[:2]
    store.add(items, "relabel", author="curator-1", reason="check")
    out = tmp_path / "batch.json"
    assert wb.export_relabel_queue(sample, out, format="coco") == 2
    coco = json.loads(out.read_text())
    assert sorted(img["wb_item_id"] for img in coco["images"]) == items
    mine = sample.boxes[sample.boxes["item_id"].isin(items)]
    assert sorted(a["wb_box_id"] for a in coco["annotations"]) == sorted(mine["box_id"])
    assert [c["name"] for c in coco["categories"]] == sample.classes
    size = sample.items.set_index("item_id").loc[items[0]]
    on_first = mine[mine["item_id"] == items[0]]
    first = on_first.loc[(on_first["x"] + on_first["w"]).idxmin(), "box_id"]  # room to move
    second = on_first.loc[on_first["box_id"] != first, "box_id"].iloc[0]
    spot = _free_spot(on_first, size["width"], size["height"])
    by_box = {a["wb_box_id"]: a for a in coco["annotations"]}
    assert by_box[first]["bbox"] == mine.set_index("box_id").loc[
        first, ["x", "y", "w", "h"]].tolist()
    # a vendor tool renumbers the images (keeping file_name) and drops our keys
    vendor = copy.deepcopy(coco)
    renumber = {img["id"]: 1000 + k for k, img in enumerate(vendor["images"])}
    for img in vendor["images"]:
        img["id"] = renumber[img["id"]]
        del img["wb_item_id"]
    cat_of = {c["name"]: c["id"] for c in vendor["categories"]}
    anns = []
    for a in vendor["annotations"]:
        a["image_id"] = renumber[a["image_id"]]
        if a["wb_box_id"] == first:
            a["bbox"] = [a["bbox"][0] + 3, a["bbox"][1], a["bbox"][2], a["bbox"][3]]
        if a["wb_box_id"] == second:
            continue                                          # deleted
        anns.append(a)
    image_of = {img["wb_item_id"]: renumber[img["id"]] for img in coco["images"]}
    anns.append({"id": 99999, "image_id": image_of[items[0]], "category_id": cat_of["7"],
                 "bbox": spot, "iscrowd": 0, "area": 64.0})
    vendor["annotations"] = anns
    path = _write(tmp_path / "vendor-coco.json", vendor)
    report = wb.import_labels(sample, path, format="coco")
    assert report.counts["moved"] == 1 and report.counts["deleted"] == 1
    assert report.counts["added"] == 1 and report.counts["reclassed"] == 0
    assert report.counts["unchanged"] == len(mine) - 2
    assert set(report.per_image["annotator"]) == {"vendor"}
    assert report.changed.set_index("outcome").loc["moved", "old_box_id"] == first
    after = wb.open_project(sample.root)
    assert after.boxes.set_index("box_id").loc[first, "x"] == pytest.approx(
        by_box[first]["bbox"][0] + 3)
    assert len(after.annotations[after.annotations["annotator"] == "vendor"]) == len(mine)
    files = _snapshot(sample.root)
    again = wb.import_labels(after, path, format="coco")
    assert set(again.diff["outcome"]) == {"unchanged"} and not again.written
    assert _snapshot(sample.root) == files


def test_csv_export_one_row_per_box_formulas_guarded(sample, tmp_path):
    store = TagStore.for_project(sample)
    store.add(["scene-0005"], "relabel", author="curator-1", reason="=HYPERLINK(\"x\")")
    store.add(["scene-0005"], "relabel", author="curator-1", reason="-too tight",
              box_ids=["scene-0005/b0"])
    out = tmp_path / "batch.csv"
    assert wb.export_relabel_queue(sample, out, format="csv") == 1
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    mine = sample.boxes[sample.boxes["item_id"] == "scene-0005"]
    assert [r["box_id"] for r in rows] == mine["box_id"].tolist()
    assert [float(r["x"]) for r in rows] == mine["x"].tolist()
    flagged = [r for r in rows if r["in_question"] == "True"]
    assert [r["box_id"] for r in flagged] == ["scene-0005/b0"]
    assert flagged[0]["reason"] == "'-too tight"                     # guarded
    assert restore_cell(flagged[0]["reason"]) == "-too tight"
    others = [r for r in rows if r["in_question"] == "False"]
    assert all(r["reason"].startswith("'=") for r in others)
    assert {r["status"] for r in rows} == {"queued"}


# ----------------------------------------------------------------------------- bad input


def _bad(kind: str, tasks: list[dict]) -> tuple[list[dict], str]:
    region = _task(tasks, "scene-0000")["annotations"][0]["result"][0]
    if kind == "no_original_width":
        del region["original_width"]
        return tasks, r"region 'scene-0000/b0'.*original_width is missing.*export the"
    if kind == "unknown_label":
        region["value"]["rectanglelabels"] = ["giraffe"]
        return tasks, r"task #0 .*region 'scene-0000/b0'.*label 'giraffe' is not a class"
    if kind == "outside":
        region["value"]["x"] = 95.0                            # 152 px + 17 px > 160 px
        return tasks, r"region 'scene-0000/b0'.*outside its 160x120 image.*x=95.0"
    if kind == "empty_box":
        region["value"]["width"] = 0
        return tasks, r"region 'scene-0000/b0'.*size <= 0"
    if kind == "unknown_image":
        tasks[0]["data"]["item_id"] = "no-such-scene"
        return tasks, r"task #0 .*image 'no-such-scene' is not in the project"
    if kind == "rotated":
        region["value"]["rotation"] = 15
        return tasks, r"value.rotation is 15: a rotated rectangle"
    if kind == "other_image_size":
        region["original_width"] = 640
        return tasks, r"640x120 but the project's image 'scene-0000' is 160x120"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["no_original_width", "unknown_label", "outside",
                                  "empty_box", "unknown_image", "rotated",
                                  "other_image_size"])
def test_bad_labelstudio_input_imports_nothing(sample, tmp_path, kind):
    store = TagStore.for_project(sample)
    store.add(["scene-0000", "scene-0001"], "relabel", author="curator-1")
    out = tmp_path / "batch.json"
    wb.export_relabel_queue(sample, out)
    tasks = sorted(_vendor(json.loads(out.read_text())), key=lambda t: t["data"]["item_id"])
    tasks, message = _bad(kind, tasks)
    path = _write(tmp_path / "bad.json", tasks)
    files = _snapshot(sample.root)
    statuses = store.statuses("relabel")
    with pytest.raises(SchemaError, match=message) as err:
        wb.import_labels(sample, path)
    assert "bad.json" in str(err.value) and "nothing was imported" in str(err.value)
    assert _snapshot(sample.root) == files
    assert not (sample.root / ".workbench" / "backups").exists()
    pd.testing.assert_frame_equal(store.statuses("relabel"), statuses)


def test_bad_coco_input_imports_nothing(sample, tmp_path):
    store = TagStore.for_project(sample)
    store.add(["scene-0000"], "relabel", author="curator-1")
    out = tmp_path / "batch.json"
    wb.export_relabel_queue(sample, out, format="coco")
    coco = json.loads(out.read_text())
    files = _snapshot(sample.root)
    bad = copy.deepcopy(coco)
    bad["categories"].append({"id": 77, "name": "giraffe"})
    bad["annotations"][0]["category_id"] = 77
    bad["annotations"][1]["bbox"] = [150.0, 0.0, 30.0, 10.0]
    path = _write(tmp_path / "bad-coco.json", bad)
    with pytest.raises(SchemaError) as err:
        wb.import_labels(sample, path, format="coco")
    text = str(err.value)
    assert "annotations[0] (id 1) (category_id 77): label 'giraffe' is not a class" in text
    assert "annotations[1] (id 2): the box lies outside its 160x120 image" in text
    bad = copy.deepcopy(coco)
    bad["images"][0]["wb_item_id"] = "nope"
    bad["images"][0]["file_name"] = "elsewhere.png"
    bad["images"][0]["id"] = 123456
    with pytest.raises(SchemaError, match=r"images\[0\] \(id 123456.*not an image of the "
                                          r"project"):
        wb.import_labels(sample, _write(tmp_path / "bad-2.json", bad), format="coco")
    assert _snapshot(sample.root) == files
    with pytest.raises(ValueError, match="'format' parameter of import_labels"):
        read_box_labels(path, sample, format="csv")


def test_a_tagged_detection_goes_to_the_vendor_whatever_its_confidence(sample, tmp_path):
    """A detection tagged as an object the dataset misses is in the task, with its reason."""
    pred = sample.predictions
    pred = pred[pred["run"] == sample.default_run]
    low = pred[pred["confidence"] < 0.5].iloc[0]
    store = TagStore.for_project(sample)
    store.add([low["item_id"]], "relabel", author="curator-1", reason="missing 7 here",
              box_ids=[low["pred_id"]])
    out = tmp_path / "batch.json"
    assert wb.export_relabel_queue(sample, out) == 1
    (task,) = json.loads(out.read_text())
    assert task["data"]["boxes_in_question"] == [low["pred_id"]]
    model = task["predictions"][1]["result"]
    asked = [r for r in model if r["id"] == low["pred_id"]]
    assert len(asked) == 1 and asked[0]["meta"]["text"] == ["missing 7 here"]
    assert asked[0]["score"] == pytest.approx(low["confidence"])
    # the other detections of the run still need min_score
    assert all(r["score"] >= 0.5 for r in model if r["id"] != low["pred_id"])
