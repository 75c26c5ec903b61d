"""Box-level annotator agreement (workbench/detection/agreement.py) and its dispatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.detection import agreement as A
from workbench.errors import SchemaError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"


def _frame(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator", "box_id", "label",
                                       "x", "y", "w", "h"])


@pytest.fixture
def hand():
    """Two annotators, three boxes each: agree, other class, only-a and only-b."""
    return _frame([
        ("i", "a", "a1", "cat", 0, 0, 10, 10),
        ("i", "a", "a2", "dog", 20, 0, 10, 10),
        ("i", "a", "a3", "cat", 50, 50, 10, 10),
        ("i", "b", "b1", "cat", 1, 0, 10, 10),    # IoU with a1: 90 / 110 = 9/11
        ("i", "b", "b2", "cat", 20, 0, 10, 8),    # IoU with a2: 80 / 100 = 0.8
        ("i", "b", "b3", "dog", 80, 80, 10, 10),  # overlaps nothing
    ])


def test_match_annotators_hand_case(hand):
    m = wb.match_annotators(hand)
    assert list(m.columns) == ["item_id", "annotator_a", "annotator_b", "box_id_a",
                               "box_id_b", "label_a", "label_b", "iou", "outcome"]
    rows = {r.outcome: r for r in m.itertuples()}
    assert len(m) == 4 and set(rows) == {"agree", "other_class", "only_a", "only_b"}
    assert (rows["agree"].box_id_a, rows["agree"].box_id_b) == ("a1", "b1")
    assert rows["agree"].iou == pytest.approx(9 / 11)
    assert (rows["other_class"].box_id_a, rows["other_class"].box_id_b) == ("a2", "b2")
    assert (rows["other_class"].label_a, rows["other_class"].label_b) == ("dog", "cat")
    assert rows["other_class"].iou == pytest.approx(0.8)
    assert rows["only_a"].box_id_a == "a3" and pd.isna(rows["only_a"].box_id_b)
    assert np.isnan(rows["only_a"].iou) and pd.isna(rows["only_a"].label_b)
    assert rows["only_b"].box_id_b == "b3" and pd.isna(rows["only_b"].box_id_a)
    assert set(m["annotator_a"]) == {"a"} and set(m["annotator_b"]) == {"b"}


def test_threshold_turns_match_into_only_sides(hand):
    m = wb.match_annotators(hand, iou=0.85)  # 9/11 and 0.8 are both below
    assert m["outcome"].value_counts().to_dict() == {"only_a": 3, "only_b": 3,
                                                     "agree": 0, "other_class": 0}


def test_hungarian_maximises_matches_where_greedy_would_not():
    # a1-b1 9/11, a2-b1 9/11, a1-b2 7/13: greedy on IoU takes a1-b1 and leaves a2, b2
    ann = _frame([("i", "a", "a1", "c", 0, 0, 10, 10), ("i", "a", "a2", "c", 2, 0, 10, 10),
                  ("i", "b", "b1", "c", 1, 0, 10, 10), ("i", "b", "b2", "c", -3, 0, 10, 10)])
    m = wb.match_annotators(ann)
    pairs = set(zip(m["box_id_a"], m["box_id_b"], strict=True))
    assert pairs == {("a1", "b2"), ("a2", "b1")}
    assert sorted(m["iou"]) == pytest.approx([7 / 13, 9 / 11])


def test_labelled_scope_and_generated_ids():
    ann = _frame([("i", "a", None, "c", 0, 0, 10, 10), ("i", "b", None, "c", 0, 0, 10, 10),
                  ("j", "a", None, "c", 0, 0, 10, 10)]).drop(columns="box_id")
    every = wb.match_annotators(ann)
    assert every.loc[every["item_id"] == "j", "outcome"].tolist() == ["only_a"]
    assert every["box_id_a"].tolist() == ["i/a/a0", "j/a/a0"]
    drawn = wb.match_annotators(ann, labelled="boxes")
    assert drawn["item_id"].tolist() == ["i"]


def _kripp_by_hand(hand_alpha_units, boxes):
    """Coincidence-form alpha for units given as lists of box indices or None (empty)."""
    def dist(u, v):
        if u is None and v is None:
            return 0.0
        if u is None or v is None:
            return 1.0
        return 1.0 - float(A.coco_iou(boxes[[u]].T, boxes[[v]].T, np.zeros(1, bool))[0])
    values = [v for unit in hand_alpha_units for v in unit]
    n = len(values)
    d_o = sum(dist(u, v) / (len(unit) - 1) for unit in hand_alpha_units
              for i, u in enumerate(unit) for j, v in enumerate(unit) if i != j) / n
    d_e = sum(dist(u, v) for i, u in enumerate(values) for j, v in enumerate(values)
              if i != j) / (n * (n - 1))
    return 1 - d_o / d_e


def test_pairwise_hand_case(hand):
    pw = wb.pairwise_agreement(hand)
    assert len(pw) == 1
    r = pw.iloc[0]
    assert (r["n_boxes_a"], r["n_boxes_b"], r["n_matched"], r["n_agree"]) == (3, 3, 2, 1)
    assert r["detection_f1"] == pytest.approx(2 * 2 / 6)
    assert r["class_agreement"] == pytest.approx(0.5)
    assert r["mean_iou"] == pytest.approx((9 / 11 + 0.8) / 2)
    # kappa of matched classes a = [cat, dog], b = [cat, cat]: p_o = 0.5, p_e = 0.5 -> 0
    assert r["kappa"] == pytest.approx(0.0)
    # worked example of alpha: 4 units (a1 b1), (a2 b2), (a3, -), (b3, -); n = 8 values.
    # D_o = (2 (2/11) + 2 (0.2) + 2 + 2) / 8
    # D_e = (box pairs: 2 (13 + 2/11 + 0.2) + box-empty: 2 * 6 * 2) / (8 * 7)
    d_o = (2 * 2 / 11 + 2 * 0.2 + 2 + 2) / 8
    d_e = (2 * (13 + 2 / 11 + 0.2) + 2 * 6 * 2) / 56
    assert r["krippendorff_alpha"] == pytest.approx(1 - d_o / d_e)
    boxes = hand[["x", "y", "w", "h"]].to_numpy(float)
    assert r["krippendorff_alpha"] == pytest.approx(
        _kripp_by_hand([[0, 3], [1, 4], [2, None], [5, None]], boxes))


def test_summary_hand_case(hand):
    s = wb.agreement_summary(hand)
    assert s["detection_f1"] == pytest.approx(2 / 3)
    assert s["class_agreement"] == pytest.approx(0.5)
    assert s["mean_iou"] == pytest.approx((9 / 11 + 0.8) / 2)
    assert s["mean_cohen_kappa"] == pytest.approx(0.0)
    # two annotators: the overall units are the pair's units
    assert s["krippendorff_alpha"] == pytest.approx(
        wb.pairwise_agreement(hand)["krippendorff_alpha"].iloc[0])
    assert (s["n_boxes"], s["n_matched"], s["n_units"], s["n_annotators"]) == (6, 2, 4, 2)


def test_alpha_against_krippendorff_package():
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        for k in range(rng.integers(1, 4)):
            x, y, s = rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(10, 30)
            for a in ("p", "q", "r"):
                if rng.random() < 0.8:
                    rows.append((f"im{i}", a, f"{i}-{k}-{a}", str(rng.integers(0, 3)),
                                 x + rng.normal(0, 2), y + rng.normal(0, 2), s, s))
    ann = _frame(rows)
    alpha = wb.agreement_summary(ann)["krippendorff_alpha"]
    bx = A._encode_boxes(ann, "t")
    unit, n_empty = A._units(bx, A._pair_matches(bx, 0.5))
    n_b = len(unit)
    counts = np.zeros((len(n_empty), n_b + 1))
    counts[unit, np.arange(n_b)] = 1
    counts[:, n_b] = n_empty
    dmat = np.ones((n_b + 1, n_b + 1))
    for i in range(n_b):
        dmat[i, :n_b] = 1 - A.coco_iou(np.repeat(bx.xywh[[i]], n_b, 0).T, bx.xywh.T,
                                       np.zeros(n_b, bool))
    dmat[n_b, n_b] = 0.0
    np.fill_diagonal(dmat, 0.0)

    def metric(v1, v2, i1, i2, n_v, dtype=np.float64):
        return dmat[i1, i2].astype(dtype)

    expected = krippendorff.alpha(value_counts=counts, value_domain=np.arange(n_b + 1),
                                  level_of_measurement=metric)
    assert alpha == pytest.approx(float(expected), rel=1e-9)
    # each unit holds at most one box per annotator and one value per annotator
    assert (np.bincount(unit) + n_empty == 3).all()


def test_quality_against_gold(hand):
    gold = pd.DataFrame({"item_id": ["i", "i", "i"], "label": ["cat", "dog", "dog"],
                         "x": [0, 20, 80], "y": [0, 0, 80], "w": [10, 10, 10],
                         "h": [10, 10, 10]})
    q = wb.annotator_quality(hand, gold).set_index("annotator")
    # a: a1 (cat, IoU 1), a2 (dog, IoU 1) matched; a3 extra; gold box 3 missed
    assert q.loc["a", ["n_boxes", "n_reference", "n_matched"]].tolist() == [3, 3, 2]
    assert q.loc["a", "miss_rate"] == pytest.approx(1 / 3)
    assert q.loc["a", "extra_rate"] == pytest.approx(1 / 3)
    assert q.loc["a", "mean_iou"] == pytest.approx(1.0)
    assert q.loc["a", "class_accuracy"] == pytest.approx(1.0)
    # b: all three matched (9/11, 0.8, 1.0); b2 says cat for gold dog
    assert q.loc["b", "miss_rate"] == pytest.approx(0.0)
    assert q.loc["b", "mean_iou"] == pytest.approx((9 / 11 + 0.8 + 1) / 3)
    assert q.loc["b", "class_accuracy"] == pytest.approx(2 / 3)
    assert q.loc["b", "worst_class"] == "dog"
    assert q.loc["b", "worst_class_recall"] == pytest.approx(0.5)
    # gold boxes of images nobody annotated are not scored
    more = pd.concat([gold, gold.iloc[[0]].assign(item_id="z")], ignore_index=True)
    pd.testing.assert_frame_equal(wb.annotator_quality(hand, more), q.reset_index())
    with pytest.raises(SchemaError, match=r"reference uses label\(s\) \['bird'\]"):
        wb.annotator_quality(hand, gold.assign(label="bird"), classes=["cat", "dog"])


def test_confused_pairs_hand_case(hand):
    cp = wb.confused_pairs(hand)
    assert cp[["class_a", "class_b", "n_pairs", "n_items"]].values.tolist() == \
        [["cat", "dog", 1, 1]]
    assert cp["item_ids"].iloc[0] == ["i"] and cp["box_ids"].iloc[0] == ["a2", "b2"]
    assert cp["rate"].iloc[0] == pytest.approx(0.5)  # one swap among 2 matched pairs


def test_bad_inputs(hand):
    with pytest.raises(ValueError, match="'iou' parameter of match_annotators"):
        wb.match_annotators(hand, iou=0)
    with pytest.raises(ValueError, match="'labelled' parameter"):
        wb.match_annotators(hand, labelled="some")
    with pytest.raises(SchemaError, match="at least 2"):
        wb.match_annotators(hand[hand["annotator"] == "a"])
    with pytest.raises(SchemaError, match="'w'"):
        wb.match_annotators(hand.assign(w=[10, 0, 10, 10, 10, 10]))
    with pytest.raises(SchemaError, match="annotator"):
        wb.match_annotators(hand.drop(columns="annotator"))
    with pytest.raises(ValueError, match="applies to detection"):
        wb.agreement_summary(hand.drop(columns=["x", "y", "w", "h"]), iou=0.5)


def test_classification_unchanged():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["x", "y"] * 2,
                        "label": ["cat", "cat", "dog", "cat"]})
    assert wb.agreement_summary(ann, min_shared=1)["percent_agreement"] == 0.5
    assert "kappa" in wb.pairwise_agreement(ann).columns


@pytest.fixture(scope="module")
def sample():
    return wb.open_project(SAMPLE)


def test_sample_annotator_profiles(sample):
    q = wb.annotator_quality(sample.annotations).set_index("annotator")
    assert q["miss_rate"].idxmax() == "ana"
    assert q["mean_iou"].idxmin() == "ben"
    assert q["class_accuracy"].idxmin() == "dev"
    gold = wb.annotator_quality(sample.annotations, sample.boxes).set_index("annotator")
    assert gold["miss_rate"].idxmax() == "ana"
    assert gold["mean_iou"].idxmin() == "ben"
    assert gold["class_accuracy"].idxmin() == "dev"


def test_sample_confused_pairs_and_summary(sample):
    cp = wb.confused_pairs(sample.annotations)
    assert cp[["class_a", "class_b"]].head(2).values.tolist() == [["1", "7"], ["4", "9"]]
    assert all(i.startswith("scene-") for i in cp["item_ids"].iloc[0])
    s = wb.agreement_summary(sample.annotations)
    assert 0 < s["krippendorff_alpha"] < 1 and 0.8 < s["detection_f1"] <= 1
    pw = wb.pairwise_agreement(sample.annotations).set_index(["annotator_a", "annotator_b"])
    # ben's loose boxes: both of his pairs have a lower mean IoU than ana-dev
    assert pw.loc[("ana", "dev"), "mean_iou"] > pw.loc[("ana", "ben"), "mean_iou"]
    assert pw.loc[("ana", "dev"), "mean_iou"] > pw.loc[("ben", "dev"), "mean_iou"]
    # dev's swaps: his pairs have the lower class kappa
    assert pw.loc[("ana", "ben"), "kappa"] > pw.loc[("ana", "dev"), "kappa"]


# ----------------------------------------------------------------------------- agreement_by


def _by_frames(hand):
    """Slice 'q': the hand case on image i; slice 'p': two images of perfect agreement."""
    same = _frame([
        (img, ann, f"{img}{ann}{k}", lab, x, 0, 10, 10)
        for img in ("p1", "p2") for ann in ("a", "b")
        for k, (lab, x) in enumerate([("cat", 0), ("dog", 30)])
    ])
    ann = pd.concat([hand, same], ignore_index=True)
    items = pd.DataFrame({"item_id": ["i", "p1", "p2"], "camera": ["q", "p", "p"]})
    return ann, items


def test_agreement_by_hand_case(hand):
    ann, items = _by_frames(hand)
    # one image in 'q': allow it with min_items=1
    out = wb.agreement_by(ann, items, "camera", n_boot=300, min_items=1).set_index("camera")
    assert list(out.columns[:3]) == ["n_items", "n_boxes", "detection_f1"]
    p, q = out.loc["p"], out.loc["q"]
    assert (p["n_items"], p["n_boxes"], q["n_items"], q["n_boxes"]) == (2, 8, 1, 6)
    for name in ("detection_f1", "class_agreement", "mean_iou"):
        assert p[name] == p[f"{name}_low"] == p[f"{name}_high"] == 1.0
    # hand case: 2 matches of 3 + 3 boxes, one agreeing, IoUs 9/11 and 0.8
    assert q["detection_f1"] == pytest.approx(4 / 6)
    assert q["class_agreement"] == pytest.approx(0.5)
    assert q["mean_iou"] == pytest.approx((9 / 11 + 0.8) / 2)
    # a single image resampled is itself: the interval is the point
    assert q["detection_f1_low"] == pytest.approx(4 / 6)
    # seeded: same result twice; n_boot=0 gives no intervals
    again = wb.agreement_by(ann, items, "camera", n_boot=300, min_items=1)
    pd.testing.assert_frame_equal(out.reset_index(), again)
    none = wb.agreement_by(ann, items, "camera", n_boot=0, min_items=1)
    assert none["detection_f1_low"].isna().all()
    # min_items drops the one-image slice
    assert wb.agreement_by(ann, items, "camera")["camera"].tolist() == ["p"]


def test_agreement_by_interval_covers_estimate():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        for k in range(3):
            x = 30 * k
            rows.append((f"i{i}", "a", f"i{i}a{k}", "cat", x, 0, 10, 10))
            if rng.random() < 0.7:  # b misses some boxes and shifts others
                lab = "dog" if rng.random() < 0.2 else "cat"
                rows.append((f"i{i}", "b", f"i{i}b{k}", lab, x + int(rng.integers(0, 3)), 0,
                             10, 10))
    ann = _frame(rows)
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(40)], "site": "s"})
    out = wb.agreement_by(ann, items, ["site"], n_boot=500, seed=1).iloc[0]
    summary = wb.agreement_summary(ann)
    for name in ("detection_f1", "class_agreement", "mean_iou"):
        assert out[name] == pytest.approx(summary[name])
        assert out[f"{name}_low"] < out[name] < out[f"{name}_high"]
    assert out["n_items"] == 40


def test_agreement_by_bad_inputs(hand):
    ann, items = _by_frames(hand)
    with pytest.raises(SchemaError, match="'vendor'"):
        wb.agreement_by(ann, items, "vendor")
    with pytest.raises(ValueError, match="'iou' parameter of agreement_by"):
        wb.agreement_by(ann, items, "camera", iou=0)
    with pytest.raises(ValueError, match="applies to detection"):
        wb.agreement_by(ann.drop(columns=["x", "y", "w", "h"]), items, "camera", iou=0.5)
    with pytest.raises(SchemaError, match="no image"):
        wb.agreement_by(ann, items.assign(item_id=["u", "v", "w"]), "camera")


def test_sample_agreement_by_small_objects(sample):
    # planted: ana misses 45% of the objects under 20 px high; the cameras play no part in
    # the simulated annotators (they draw on the true objects, not the pixels)
    items = sample.items.copy()
    smallest = sample.boxes.groupby("item_id")["h"].min()
    items["has_small"] = items["item_id"].map(smallest < 20).fillna(False)
    out = wb.agreement_by(sample.annotations, items, "has_small").set_index("has_small")
    assert out.loc[True, "detection_f1_high"] < out.loc[False, "detection_f1_low"]
    cam = wb.agreement_by(sample.annotations, sample, "camera")
    assert cam["camera"].tolist() == ["cam-a", "cam-b", "cam-c"]
    assert cam["detection_f1_low"].max() < cam["detection_f1_high"].min()
