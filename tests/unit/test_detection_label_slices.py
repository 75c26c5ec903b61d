"""Label targets for slicing detection projects (workbench/detection/label_slices.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.detection import label_frame
from workbench.detection.matching import coco_iou
from workbench.errors import SchemaError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"


def _ann(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label", "x", "y", "w", "h"])


@pytest.fixture
def project():
    """Three annotators on one image; four dataset boxes and two objects without a box."""
    boxes = pd.DataFrame({
        "item_id": "i", "label": ["cat", "dog", "cat", "cat"],
        "x": [0, 30, 60, 90], "y": 0, "w": 10, "h": 10, "occluded": [False, True, False, False],
    })
    ann = _ann([
        *[("i", a, "cat", 0, 0, 10, 10) for a in "abc"],         # b0: unanimous
        ("i", "a", "dog", 30, 0, 10, 10), ("i", "b", "dog", 31, 0, 10, 10),
        ("i", "c", "cat", 30, 0, 10, 10),                        # b1: classes differ
        ("i", "a", "cat", 60, 0, 10, 10),                        # b2: one annotator
        ("i", "a", "cat", 0, 30, 10, 10), ("i", "b", "cat", 0, 31, 10, 10),  # missing box
        ("i", "c", "dog", 30, 30, 10, 10),                       # one annotator, no box
    ])                                                           # b3 (90, 0): nobody
    items = pd.DataFrame({"item_id": ["i"], "width": 200, "height": 200, "camera": "cam-a"})
    return wb.Project.from_frames(items, boxes=boxes, annotations=ann, task="detection")


def test_label_frame_hand_case(project):
    f = label_frame(project)
    assert list(f.columns) == ["item_id", "box_id", "consensus_id", "label", "x", "y", "w",
                               "h", "consensus_label", "support", "is_missing_label",
                               "is_disputed", "size", "occluded", "camera"]
    assert f["box_id"].tolist()[:4] == ["i/b0", "i/b1", "i/b2", "i/b3"]
    assert f["is_disputed"].tolist() == [0, 1, 1, 1, 1]
    assert f["is_missing_label"].tolist() == [0, 0, 0, 0, 1]
    assert f["support"].tolist() == [3, 3, 1, 0, 2]
    assert f["consensus_label"].tolist()[:3] == ["cat", "dog", "cat"]
    assert pd.isna(f.loc[3, "consensus_id"]) and pd.isna(f.loc[4, "box_id"])
    added = f.iloc[4]
    assert (added["label"], added["x"], added["y"]) == ("cat", 0.0, 30.5)
    assert pd.isna(added["occluded"]) and added["camera"] == "cam-a"
    assert f["size"].astype(str).eq("small").all()
    assert f.attrs["metadata_columns"] == ["camera", "size", "label"]
    # a lower min_support adds the object only annotator c drew
    low = label_frame(project, min_support=1)
    assert low["is_missing_label"].sum() == 2 and low["support"].iloc[-1] == 1
    # a strict threshold: a's and b's shifted boxes no longer cluster (IoU 9/11 < 0.9)
    strict = label_frame(project, iou=0.9)
    assert strict.loc[strict["box_id"] == "i/b1", "is_disputed"].item() == 1
    assert strict["is_missing_label"].sum() == 0


def test_label_frame_bad_inputs(project):
    with pytest.raises(ValueError, match="'iou' parameter of label_frame"):
        label_frame(project, iou=0)
    with pytest.raises(ValueError, match="'min_support' parameter of label_frame"):
        label_frame(project, min_support=0)
    with pytest.raises(SchemaError, match="detection project"):
        label_frame(project.boxes)
    one = wb.Project.from_frames(
        project.items, boxes=project.boxes,
        annotations=project.annotations[project.annotations["annotator"] == "a"],
        task="detection")
    with pytest.raises(SchemaError, match="at least 2"):
        label_frame(one)


@pytest.fixture(scope="module")
def sample():
    return wb.open_project(SAMPLE)


def test_sample_planted_faults_show_up(sample):
    f = label_frame(sample)
    assert set(f["is_disputed"].unique()) <= {0, 1}
    # ana misses 45% of the objects under 20 px high: those boxes are disputed far more
    small = f["h"] < 20
    assert f.loc[small, "is_disputed"].mean() > 2 * f.loc[~small, "is_disputed"].mean()
    # every planted missing box is a missing-label row (IoU >= 0.5 with the true box)
    truth = pd.read_csv(SAMPLE / "truth_boxes.csv")
    missed = truth[truth["fault"] == "missed"]
    added = f[f["is_missing_label"] == 1]
    pairs = missed.merge(added, on="item_id", suffixes=("_t", ""))
    iou = coco_iou(pairs[["x_t", "y_t", "w_t", "h_t"]].to_numpy(float).T,
                   pairs[["x", "y", "w", "h"]].to_numpy(float).T, np.zeros(len(pairs), bool))
    assert pairs.loc[iou >= 0.5, "true_id"].nunique() == len(missed) > 0
    assert len(added) < 2 * len(missed)


def test_sample_discover_slices_on_label_targets(sample):
    f = label_frame(sample)
    found = wb.discover_slices(f, target="is_disputed")
    top = found["slice"].tolist()
    # dev swaps 1/7 and 4/9, ana misses small objects
    assert set(top[:3]) <= {"label=1", "label=7", "label=4", "label=9"}
    assert "size=small" in top
    assert not any("camera" in s or "site" in s for s in top)
    assert all(i.startswith("scene-") for i in found["item_ids"].iloc[0])
    # boxes counted, images listed once each, the slice's boxes beside them
    first = found.iloc[0]
    rows = f[f["label"] == first["conditions"]["label"]]
    assert first["n"] == len(rows)
    assert first["box_ids"] == rows["box_id"].dropna().tolist()
    assert first["item_ids"] == list(dict.fromkeys(rows["item_id"]))
    assert len(first["item_ids"]) == len(set(first["item_ids"])) < first["n"]
    assert set(first["consensus_ids"]) == set(rows.loc[rows["box_id"].isna(), "consensus_id"])
    assert found.attrs["rows"] == "boxes"
    # missing boxes are planted at random: no slice stands out, and the target is accepted
    missing = wb.discover_slices(f, target="is_missing_label")
    assert not any("occluded" in s for s in missing["slice"])
