"""Suspected box label errors (``workbench.label_issues`` on detection projects)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cleanlab.object_detection import rank

import workbench as wb
from workbench.detection.label_quality import detection_label_issues

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"

# ---- a hand-made image: one good, one loose, one swapped box, one missing box ----------

ITEMS = pd.DataFrame({"item_id": ["img", "empty"], "filepath": ["img.png", "empty.png"],
                      "width": [200, 200], "height": [200, 200]})
BOXES = pd.DataFrame({
    "box_id": ["img/good", "img/loose", "img/swapped"], "item_id": ["img"] * 3,
    "label": ["cat", "dog", "cat"],
    "x": [10, 100, 10], "y": [10, 10, 100], "w": [40, 80, 40], "h": [40, 80, 40]})
PRED = pd.DataFrame({
    "pred_id": ["p-good", "p-loose", "p-swapped", "p-missing", "p-empty"],
    "item_id": ["img"] * 4 + ["empty"], "run": ["r"] * 5,
    "label": ["cat", "dog", "dog", "cat", "dog"],
    "x": [10, 110, 10, 120, 50.0], "y": [10, 20, 100, 140, 50.0],
    "w": [40, 40, 40, 30, 20.0], "h": [40, 40, 40, 30, 20.0],
    "confidence": [0.9, 0.9, 0.9, 0.9, 0.2]})
# the same, written by hand in cleanlab's format (classes cat=0, dog=1; x1, y1, x2, y2)
CL_LABELS = [
    {"bboxes": np.array([[10, 10, 50, 50], [100, 10, 180, 90], [10, 100, 50, 140]], float),
     "labels": np.array([0, 1, 0])},
    {"bboxes": np.zeros((0, 4)), "labels": np.zeros(0, int)},
]
CL_PRED = [
    [np.array([[10, 10, 50, 50, 0.9], [120, 140, 150, 170, 0.9]]),
     np.array([[110, 20, 150, 60, 0.9], [10, 100, 50, 140, 0.9]])],
    [np.zeros((0, 5)), np.array([[50, 50, 70, 70, 0.2]])],
]


@pytest.fixture(scope="module")
def small():
    return wb.Project.from_frames(ITEMS, boxes=BOXES, predictions=PRED, task="detection",
                                  classes=["cat", "dog"], name="small")


def test_hand_made_image_flags_the_missing_loose_and_swapped_box(small):
    out = wb.label_issues(small)
    issues = out[out["is_issue"]]
    assert len(issues) == 3
    got = {r.issue_type: r for r in issues.itertuples()}
    assert set(got) == {"missing", "mislocated", "wrong_class"}
    missing = got["missing"]
    assert pd.isna(missing.box_id) and missing.pred_id == "p-missing"
    assert missing.suggested_label == "cat"
    assert (missing.x, missing.y, missing.w, missing.h) == (120, 140, 30, 30)
    loose = got["mislocated"]
    assert loose.box_id == "img/loose" and loose.pred_id == "p-loose"
    assert (loose.x, loose.y, loose.w, loose.h) == (110, 20, 40, 40)
    # IoU 0.25, centres 10*sqrt(2) apart: 0.9 * 0.25 + 0.1 * exp(-0.1 * 14.142)
    assert loose.score == pytest.approx(0.9 * 0.25 + 0.1 * np.exp(-0.1 * np.sqrt(200)))
    swapped = got["wrong_class"]
    assert swapped.box_id == "img/swapped" and swapped.label == "cat"
    assert swapped.suggested_label == "dog" and swapped.pred_id == "p-swapped"
    # every reference box has a mislocated and a wrong_class row; the good box is clean
    assert out.groupby("issue_type").size().to_dict() == {"missing": 1, "mislocated": 3,
                                                          "wrong_class": 3}
    good = out[out["box_id"] == "img/good"]
    assert (good["score"] > 0.99).all() and not good["is_issue"].any()
    assert good["pred_id"].isna().all() or set(good["pred_id"].dropna()) == {"p-good"}
    # one round of the round-robin: the three issues come first
    assert issues["rank"].tolist() == [1, 2, 3]


def test_hand_made_scores_equal_cleanlab_called_directly(small):
    out = wb.label_issues(small)
    image = rank.get_label_quality_scores(CL_LABELS, CL_PRED, verbose=False)
    by_item = out.groupby("item_id")["image_score"].first()
    assert by_item["img"] == pytest.approx(image[0], abs=1e-12)
    assert "empty" not in by_item.index  # no box and no confident detection: no row
    over = rank.compute_overlooked_box_scores(labels=CL_LABELS, predictions=CL_PRED,
                                              high_probability_threshold=0.5)
    bad = rank.compute_badloc_box_scores(labels=CL_LABELS, predictions=CL_PRED)
    swap = rank.compute_swap_box_scores(labels=CL_LABELS, predictions=CL_PRED,
                                        high_probability_threshold=0.5)
    score = out.set_index(["issue_type", out["box_id"].fillna(out["pred_id"])])["score"]
    # the workbench builds cleanlab's similarity matrix itself (vectorised): equal to the
    # last bits of float rounding
    assert score[("missing", "p-missing")] == pytest.approx(over[0][1], rel=1e-9, abs=1e-12)
    assert np.isnan(over[0][[0, 2, 3]]).all()  # the others overlap a box: no missing row
    for b, box_id in enumerate(["img/good", "img/loose", "img/swapped"]):
        assert score[("mislocated", box_id)] == pytest.approx(bad[0][b], abs=1e-12)
        assert score[("wrong_class", box_id)] == pytest.approx(swap[0][b], abs=1e-12)


def test_top_k_and_threshold(small):
    out = wb.label_issues(small, top_k=2)
    assert out["is_issue"].tolist()[:3] == [True, True, False] and out["is_issue"].sum() == 2
    assert wb.label_issues(small, threshold=0.0)["is_issue"].sum() == 0
    assert wb.label_issues(small, threshold=1.0)["is_issue"].all()
    # cleanlab's own 0.95: no detection is confident enough to suggest a missing box
    strict = wb.label_issues(small, high_probability_threshold=0.95)
    assert "missing" not in set(strict["issue_type"])


@pytest.mark.parametrize(("kw", "match"), [
    ({"threshold": 1.5}, "'threshold' parameter of label_issues must be a float"),
    ({"top_k": -1}, "'top_k' parameter of label_issues must be an int"),
    ({"high_probability_threshold": "high"}, "'high_probability_threshold' parameter"),
    ({"run": "nope"}, "'run' parameter of label_issues must be a str among"),
    ({"use_annotations": "yes"}, "'use_annotations' parameter of label_issues must be a bool"),
])
def test_bad_parameters(small, kw, match):
    with pytest.raises(ValueError, match=match):
        wb.label_issues(small, **kw)


def test_detection_options_on_a_classification_project_are_refused():
    project = wb.open_project(SAMPLE.parent / "sample")
    assert project.task == "classification"
    with pytest.raises(TypeError, match="for detection projects only"):
        wb.label_issues(project, top_k=3)


# ---- the detection sample: scores against cleanlab, planted faults ----------------------


@pytest.fixture(scope="module")
def sample():
    return wb.open_project(SAMPLE)


@pytest.fixture(scope="module")
def sample_issues(sample):
    """cleanlab alone (the sample has annotations, which are used by default)."""
    return wb.label_issues(sample, run="candidate", use_annotations=False)


@pytest.fixture(scope="module")
def combined_issues(sample):
    return wb.label_issues(sample, run="candidate")


def _cleanlab_inputs(project, run):
    """Cleanlab's format built here, independently of the workbench's converter."""
    classes = list(project.classes)
    boxes, pred = project.boxes, project.predictions
    pred = pred[pred["run"] == run]
    labels, preds, box_ids, pred_ids = [], [], [], []
    for item in project.items["item_id"]:
        g = boxes[boxes["item_id"] == item]
        xy = g[["x", "y", "w", "h"]].to_numpy(float)
        labels.append({"bboxes": np.c_[xy[:, :2], xy[:, :2] + xy[:, 2:]].reshape(-1, 4),
                       "labels": np.array([classes.index(c) for c in g["label"]], int)})
        box_ids.append(list(g["box_id"]))
        h = pred[pred["item_id"] == item]
        per_class, ids = [], []
        for c in classes:
            hc = h[h["label"] == c]
            xy = hc[["x", "y", "w", "h"]].to_numpy(float)
            per_class.append(np.c_[xy[:, :2], xy[:, :2] + xy[:, 2:],
                                   hc["confidence"].to_numpy(float)].reshape(-1, 5))
            ids += list(hc["pred_id"])
        preds.append(per_class)
        pred_ids.append(ids)
    return labels, preds, box_ids, pred_ids


def test_sample_scores_equal_cleanlab_called_directly(sample, sample_issues):
    labels, preds, box_ids, pred_ids = _cleanlab_inputs(sample, "candidate")
    image = rank.get_label_quality_scores(labels, preds, verbose=False)
    over = rank.compute_overlooked_box_scores(labels=labels, predictions=preds,
                                              high_probability_threshold=0.5)
    bad = rank.compute_badloc_box_scores(labels=labels, predictions=preds)
    swap = rank.compute_swap_box_scores(labels=labels, predictions=preds,
                                        high_probability_threshold=0.5)
    expected = {}
    for i in range(len(labels)):
        for j, s in enumerate(over[i]):
            if not np.isnan(s):
                expected[("missing", pred_ids[i][j])] = s
        for b, box_id in enumerate(box_ids[i]):
            expected[("mislocated", box_id)] = bad[i][b]
            expected[("wrong_class", box_id)] = swap[i][b]
    out = sample_issues
    keys = list(zip(out["issue_type"], out["box_id"].fillna(out["pred_id"]), strict=True))
    assert len(keys) == len(set(keys)) == len(expected)
    got = pd.Series(out["score"].to_numpy(), index=pd.MultiIndex.from_tuples(keys))
    want = pd.Series(expected).reindex(got.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-15)
    ids = sample.items["item_id"].to_numpy()
    img = out.groupby("item_id")["image_score"].first()
    np.testing.assert_allclose(img.to_numpy(),
                               pd.Series(image, index=ids).reindex(img.index).to_numpy(),
                               rtol=0, atol=1e-12)
    # the ranking: rank 1..n, round-robin over types, each type in score order
    assert out["rank"].tolist() == list(range(1, len(out) + 1))
    for _, g in out.groupby("issue_type"):
        assert g["score"].is_monotonic_increasing
    assert out["is_issue"].equals(out["score"] <= 0.5)


FACTOR = 2  # top-k = FACTOR x the number of planted faults


def _planted_recall(issues: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    faults = truth[truth["fault"].notna()]
    top = issues.head(FACTOR * len(faults))
    missing_items = set(top.loc[top["issue_type"] == "missing", "item_id"])
    flagged = {"mislocated": set(top.loc[top["issue_type"] == "mislocated", "box_id"]),
               "wrong_class": set(top.loc[top["issue_type"] == "wrong_class", "box_id"])}
    hits = {}
    for fault, g in faults.groupby("fault"):
        if fault == "missed":
            found = g["item_id"].isin(missing_items)
        else:  # a loose box may be flagged as mislocated or wrong_class: any flag counts
            found = g["box_id"].isin(flagged["mislocated"] | flagged["wrong_class"])
        hits[fault] = found.to_numpy()
    hits["all"] = np.concatenate(list(hits.values()))
    return {k: float(v.mean()) for k, v in hits.items()}


def test_sample_planted_faults_recall_at_2x_is_a_measured_baseline_of_0_51(sample_issues):
    """cleanlab alone finds about half of the planted faults among the top 2 x 96 flagged.

    Measured on the committed sample (run ``candidate``, default thresholds): recall 0.51
    overall at top-k = 2 x 96 = 192 (loose 0.56, missed 0.36, wrong_class 0.67); 0.63 at
    3 x 96. The issue's target of 0.8 is **not** reached by cleanlab alone: the detector
    finds only 80% of the boxes, and a missed object the detector does not confidently
    see cannot be suggested. The bounds below pin the measured baseline (a regression
    fails); combining with the annotators' consensus boxes reaches 0.8 (next tests).
    """
    truth = pd.read_csv(SAMPLE / "truth_boxes.csv", dtype={"box_id": "string"})
    recall = _planted_recall(sample_issues, truth)
    assert recall["all"] >= 0.48, recall
    assert recall["missed"] >= 0.3 and recall["loose"] >= 0.5 and recall["wrong_class"] >= 0.6
    # far better than flagging 2 x 96 rows at random among the scored rows
    assert recall["all"] > 5 * FACTOR * (truth["fault"].notna().sum() / len(sample_issues))


def test_sample_combined_with_annotators_finds_more_planted_faults(sample_issues,
                                                                  combined_issues):
    """cleanlab + the annotators' consensus boxes: recall at the same top-k (2 x 96)."""
    truth = pd.read_csv(SAMPLE / "truth_boxes.csv", dtype={"box_id": "string"})
    alone = _planted_recall(sample_issues, truth)
    combined = _planted_recall(combined_issues, truth)
    assert combined["all"] > alone["all"], (combined, alone)
    for fault in ("missed", "loose", "wrong_class", "all"):
        assert combined[fault] >= 0.8, (fault, combined, alone)
        assert combined[fault] >= alone[fault], (fault, combined, alone)


def test_sample_combined_scores_are_cleanlab_times_the_annotator_score(sample_issues,
                                                                        combined_issues):
    def keyed(out):
        rows = out[out["box_id"].notna()]
        return rows.set_index(["issue_type", "box_id"]).sort_index()

    alone, both = keyed(sample_issues), keyed(combined_issues)
    assert alone.index.equals(both.index)
    assert (both["score"] <= alone["score"]).all()
    # the annotator score, recomputed from the consensus boxes: 1 - confidence of the
    # consensus box (wrong_class), the IoU with the fused box (mislocated)
    project = wb.open_project(SAMPLE)
    cons = wb.detection.box_consensus(project.annotations, "majority",
                                      items=project).set_index("consensus_id")
    from_ann = both[both["evidence"] == "annotators"]
    assert len(from_ann)
    c = cons.loc[from_ann["consensus_id"]]
    wrong = (from_ann.index.get_level_values("issue_type") == "wrong_class")
    boxes = project.boxes.set_index("box_id").loc[from_ann.index.get_level_values("box_id")]
    b = boxes[["x", "y", "w", "h"]].to_numpy(float)
    f = c[["x", "y", "w", "h"]].to_numpy(float)
    lo, hi = np.maximum(b[:, :2], f[:, :2]), np.minimum(b[:, :2] + b[:, 2:], f[:, :2] + f[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    iou = inter / (b[:, 2] * b[:, 3] + f[:, 2] * f[:, 3] - inter)
    ann_score = np.where(wrong, 1.0 - c["confidence"].to_numpy(float), iou)
    np.testing.assert_allclose(from_ann["score"].to_numpy(float),
                               alone.loc[from_ann.index, "score"].to_numpy(float) * ann_score,
                               rtol=1e-3, atol=1e-12)
    # rows whose suggestion stays cleanlab's: the annotators' factor was no lower
    from_cl = both[both["evidence"] == "cleanlab"]
    ratio = from_cl["score"] / alone.loc[from_cl.index, "score"]
    ok = alone.loc[from_cl.index, "score"] > 0
    assert (ratio[ok] >= alone.loc[from_cl.index, "score"][ok] - 1e-9).all()
    assert (ratio[ok] <= 1 + 1e-12).all()
    # an annotator suggestion names its consensus box and carries its fused box and class
    sugg = combined_issues[combined_issues["consensus_id"].notna()]
    assert (sugg["evidence"] == "annotators").all() and sugg["pred_id"].isna().all()
    c = cons.loc[sugg["consensus_id"]]
    np.testing.assert_allclose(sugg[["x", "y", "w", "h"]].to_numpy(float),
                               c[["x", "y", "w", "h"]].to_numpy(float), atol=1e-4)
    assert (sugg["suggested_label"].to_numpy() == c["label"].astype(str).to_numpy()).all()
    assert (c["support"] >= 2).all()
    # missing rows from annotators alone: a consensus box no dataset box matches
    new = combined_issues[(combined_issues["issue_type"] == "missing")
                          & combined_issues["pred_id"].isna()]
    assert len(new) and new["consensus_id"].notna().all()
    assert combined_issues["image_score"].notna().all()
    assert combined_issues["rank"].tolist() == list(range(1, len(combined_issues) + 1))


def test_label_issues_dispatches_to_the_detection_function(small):
    pd.testing.assert_frame_equal(wb.label_issues(small, "r", top_k=2),
                                  detection_label_issues(small, "r", top_k=2))
    assert wb.detection.detection_label_issues is detection_label_issues


def test_images_without_boxes_or_without_detections():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "filepath": ["a.png", "b.png", "c.png"],
                          "width": [100] * 3, "height": [100] * 3})
    boxes = pd.DataFrame({"item_id": ["b"], "label": ["y"], "x": [5.0], "y": [5.0],
                          "w": [20.0], "h": [20.0]})
    pred = pd.DataFrame({"item_id": ["a"], "run": ["r"], "label": ["x"], "x": [50.0],
                         "y": [50.0], "w": [10.0], "h": [10.0], "confidence": [0.8]})
    project = wb.Project.from_frames(items, boxes=boxes, predictions=pred, task="detection",
                                     classes=["x", "y"], name="edge")
    out = wb.label_issues(project)
    rows = {(r.item_id, r.issue_type): r for r in out.itertuples()}
    assert set(rows) == {("a", "missing"), ("b", "mislocated"), ("b", "wrong_class")}
    missing = rows[("a", "missing")]
    assert missing.is_issue and pd.isna(missing.box_id)
    assert missing.pred_id == project.predictions["pred_id"].iloc[0]
    assert (missing.suggested_label, missing.x, missing.w) == ("x", 50.0, 10.0)
    assert rows[("b", "mislocated")].score == 1.0 and pd.isna(rows[("b", "mislocated")].pred_id)
    assert not rows[("b", "wrong_class")].is_issue
    # cleanlab on the same inputs: the image without boxes has the lowest image score
    assert out.groupby("item_id")["image_score"].first().idxmin() == "a"


def test_a_crowd_region_and_the_detections_it_absorbs_are_not_issues():
    # as COCO's matching: a crowd region is neither a mislocated box nor are the people
    # detected inside it missing boxes; a detection outside it still is
    items = pd.DataFrame({"item_id": ["i0", "i1"], "filepath": ["a.jpg", "b.jpg"],
                          "width": 300, "height": 300})
    boxes = pd.DataFrame({"item_id": ["i0", "i0", "i1"], "label": ["person"] * 3,
                          "x": [0.0, 200, 10], "y": [0.0, 200, 10], "w": [150.0, 50, 50],
                          "h": [150.0, 50, 50], "iscrowd": [True, False, False]})
    pred = pd.DataFrame({"item_id": ["i0"] * 5 + ["i1"], "run": "r", "label": "person",
                         "x": [5.0, 40, 80, 200, 260, 10], "y": [5.0, 40, 80, 200, 260, 10],
                         "w": [30.0, 30, 30, 50, 30, 50], "h": [30.0, 30, 30, 50, 30, 50],
                         "confidence": 0.9})
    project = wb.Project.from_frames(items, boxes=boxes, predictions=pred, task="detection",
                                     classes=["person"])
    out = wb.label_issues(project, run="r")
    crowd_id = project.boxes.loc[project.boxes["iscrowd"].astype(bool), "box_id"].iloc[0]
    assert crowd_id not in set(out["box_id"].dropna())
    missing = out[out["issue_type"] == "missing"]
    assert missing["pred_id"].tolist() == ["i0/r/p4"]  # the one outside the crowd
    assert not out.loc[out["issue_type"] != "missing", "is_issue"].any()
