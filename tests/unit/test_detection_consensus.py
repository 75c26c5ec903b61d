"""Consensus boxes: hand-made cases, ensemble-boxes' WBF on random data, the detection sample."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.detection.consensus import BOX_CONSENSUS_COLUMNS, box_consensus
from workbench.errors import SchemaError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample-detection"


def _frame(rows):
    return pd.DataFrame(rows, columns=["box_id", "item_id", "annotator", "label", "x", "y", "w",
                                       "h"])


def random_annotations(n_images: int, seed: int, *, n_annotators: int = 3, n_classes: int = 4,
                       width: float = 640.0, height: float = 480.0) -> pd.DataFrame:
    """Annotators drawing jittered copies of random objects, sometimes missing, re-classing
    or adding boxes, so clusters of every size and class mix occur."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        n_obj = rng.integers(0, 7)
        objs = [(rng.uniform(0, width - 60), rng.uniform(0, height - 60), rng.uniform(8, 60),
                 rng.uniform(8, 60), int(rng.integers(n_classes))) for _ in range(n_obj)]
        for a in range(n_annotators):
            k = 0
            for x, y, w, h, c in objs:
                if rng.random() < 0.1:
                    continue  # missed
                jit = rng.normal(0, 0.12, 4) * [w, h, w, h]
                lab = int(rng.integers(n_classes)) if rng.random() < 0.15 else c
                rows.append((f"i{i}/a{a}/{k}", f"i{i}", f"ann{a}", f"c{lab}",
                             max(x + jit[0], 0), max(y + jit[1], 0), w + abs(jit[2]),
                             h + abs(jit[3])))
                k += 1
            if rng.random() < 0.3:  # an extra box
                rows.append((f"i{i}/a{a}/{k}", f"i{i}", f"ann{a}", f"c{rng.integers(n_classes)}",
                             rng.uniform(0, width - 40), rng.uniform(0, height - 40),
                             rng.uniform(5, 40), rng.uniform(5, 40)))
    ann = _frame(rows)
    ann["width"], ann["height"] = width, height
    return ann


def reference_wbf(ann: pd.DataFrame, *, class_agnostic: bool, iou: float = 0.55):
    """ensemble_boxes.weighted_boxes_fusion called per image (one model per annotator)."""
    from ensemble_boxes import weighted_boxes_fusion

    annotators = sorted(ann["annotator"].unique())
    classes = sorted(ann["label"].unique())
    out = {}
    for item, g in ann.groupby("item_id", sort=True):
        w, h = float(g["width"].iloc[0]), float(g["height"].iloc[0])
        boxes, scores, labels = [], [], []
        for a in annotators:
            ga = g[g["annotator"] == a]
            boxes.append(np.c_[ga.x / w, ga.y / h, (ga.x + ga.w) / w, (ga.y + ga.h) / h])
            scores.append(np.ones(len(ga)))
            labels.append(np.zeros(len(ga)) if class_agnostic
                          else ga["label"].map(classes.index).to_numpy())
        with warnings.catch_warnings():  # it warns when it clips a box to [0, 1]
            warnings.simplefilter("ignore", UserWarning)
            b, s, lab = weighted_boxes_fusion(boxes, scores, labels, iou_thr=iou)
        out[item] = (b, s, lab)
    return out, classes


def _canonical(arr: np.ndarray) -> np.ndarray:
    return arr[np.lexsort(np.round(arr, 5).T[::-1])]


# --------------------------------------------------------------------------- hand-made


def _three_annotators():
    return _frame([
        ("x0", "img", "x", "cat", 10, 10, 20, 20),
        ("y0", "img", "y", "cat", 11, 10, 20, 20),
        ("z0", "img", "z", "dog", 10, 11, 20, 20),
        ("x1", "img", "x", "cat", 60, 60, 6, 6),  # drawn by x only
    ])


def test_majority_keeps_a_box_one_annotator_drew_and_votes_the_class():
    out = wb.consensus(_three_annotators())
    assert list(out.columns) == list(BOX_CONSENSUS_COLUMNS)
    assert out["consensus_id"].tolist() == ["img/c0", "img/c1"]
    first, solo = out.iloc[0], out.iloc[1]
    assert (first["label"], first["support"]) == ("cat", 3)
    assert first["confidence"] == pytest.approx(2 / 3)
    # the mean box of the three (WBF with unit scores)
    assert first[["x", "y", "w", "h"]].tolist() == pytest.approx([31 / 3, 31 / 3, 20, 20])
    assert sorted(first["box_ids"]) == ["x0", "y0", "z0"]
    assert (solo["label"], solo["support"], solo["box_ids"]) == ("cat", 1, ["x1"])
    assert solo["confidence"] == pytest.approx(1 / 3)
    assert solo[["x", "y", "w", "h"]].tolist() == pytest.approx([60, 60, 6, 6])


def test_wbf_clusters_per_class_like_ensemble_boxes():
    out = wb.consensus(_three_annotators(), "wbf")
    got = {(r.label, r.support, tuple(r.box_ids)) for r in out.itertuples()}
    assert got == {("cat", 2, ("y0", "x0")), ("dog", 1, ("z0",)), ("cat", 1, ("x1",))}
    cat = out[out["box_ids"].map(tuple) == ("y0", "x0")].iloc[0]
    assert cat["confidence"] == pytest.approx(2 / 3)
    assert cat["x"] == pytest.approx(10.5)


def test_dawid_skene_discounts_an_annotator_who_always_swaps_two_classes():
    # z calls every cat a dog; x and y are right but disagree with each other once
    rows = []
    for i in range(30):
        truth = "cat" if i % 2 else "dog"
        swapped = {"cat": "dog", "dog": "cat"}[truth]
        labels = {"x": truth, "y": truth, "z": swapped}
        if i == 0:
            labels["y"] = swapped  # x alone against y and z on this image
        for a, lab in labels.items():
            rows.append((f"{i}{a}", f"im{i:02d}", a, lab, 5, 5, 30, 30))
    ann = _frame(rows)
    maj = wb.consensus(ann, "majority").set_index("item_id")
    ds = wb.consensus(ann, "dawid_skene").set_index("item_id")
    assert maj.loc["im00", "label"] == "cat"  # two swapped votes outvote x
    assert ds.loc["im00", "label"] == "dog"  # z is known to swap: x and y's usual view wins
    assert (ds["support"] == 3).all()
    assert (ds.drop(index="im00")["label"] == maj.drop(index="im00")["label"]).all()


def test_clipping_to_the_image_and_empty_input():
    ann = _three_annotators()
    items = pd.DataFrame({"item_id": ["img"], "width": [62], "height": [200]})
    out = box_consensus(ann, items=items)
    solo = out[out["box_ids"].map(tuple) == ("x1",)].iloc[0]
    assert solo["w"] == pytest.approx(2.0)  # 60..66 clipped at 62
    assert box_consensus(ann.iloc[:0]).columns.tolist() == list(BOX_CONSENSUS_COLUMNS)
    outside = pd.DataFrame({"item_id": ["img"], "width": [50], "height": [200]})
    with pytest.warns(UserWarning, match=r"1 box\(es\) lie outside their image"):
        out = wb.consensus(ann, items=outside)
    assert "x1" not in out["box_ids"].explode().tolist() and out["support"].tolist() == [3]


def test_bad_inputs_get_clear_errors():
    ann = _three_annotators()
    with pytest.raises(ValueError, match="'method' parameter of consensus"):
        wb.consensus(ann, "crowdlab")
    with pytest.raises(ValueError, match="'iou' parameter of consensus"):
        wb.consensus(ann, iou=1.5)
    with pytest.raises(SchemaError, match=r"not in classes \['cat'\]"):
        wb.consensus(ann, classes=["cat"])
    with pytest.raises(SchemaError, match=r"items has no row for item\(s\) \['img'\]"):
        wb.consensus(ann, items=pd.DataFrame({"item_id": ["other"], "width": [1], "height": [1]}))
    with pytest.raises(ValueError, match="detection annotations .* take none"):
        wb.consensus(ann, pred_probs=pd.DataFrame({"cat": [1.0]}, index=["img"]))
    bad = ann.copy()
    bad.loc[1, "w"] = -3
    with pytest.raises(SchemaError, match="'w' is not a positive number"):
        wb.consensus(bad)


def test_classification_annotations_still_get_one_label_per_item():
    ann = pd.DataFrame({"item_id": ["a", "a", "a"], "annotator": ["x", "y", "z"],
                        "label": ["cat", "dog", "cat"]})
    out = wb.consensus(ann)
    assert out["label"].tolist() == ["cat"] and "support" not in out


# --------------------------------------------------------------------------- ensemble-boxes


@pytest.mark.parametrize("seed", [0, 1])
def test_wbf_equals_ensemble_boxes_per_image_on_random_data(seed):
    pytest.importorskip("ensemble_boxes")
    ann = random_annotations(150, seed)
    ref, classes = reference_wbf(ann, class_agnostic=False)
    out = wb.consensus(ann, "wbf")
    assert set(out["item_id"]) == set(ref)
    n_fused = 0
    for item, g in out.groupby("item_id"):
        b, s, lab = ref[item]
        mine = np.c_[g.x / 640, g.y / 480, (g.x + g.w) / 640, (g.y + g.h) / 480, g.confidence,
                     g.label.map(classes.index)]
        theirs = np.c_[b, s, lab]
        assert mine.shape == theirs.shape, item
        np.testing.assert_allclose(_canonical(mine), _canonical(theirs), atol=1e-6, rtol=0)
        n_fused += int((g["support"] > 1).sum())
    assert n_fused > 200  # the data really exercises fusion, not just single boxes


def test_class_agnostic_clusters_equal_ensemble_boxes_with_one_class():
    pytest.importorskip("ensemble_boxes")
    ann = random_annotations(150, 7)
    ref, _ = reference_wbf(ann, class_agnostic=True)
    out = wb.consensus(ann, "majority")
    for item, g in out.groupby("item_id"):
        b = ref[item][0]
        mine = np.c_[g.x / 640, g.y / 480, (g.x + g.w) / 640, (g.y + g.h) / 480]
        assert mine.shape == b.shape, item
        np.testing.assert_allclose(_canonical(mine), _canonical(b), atol=1e-6, rtol=0)
    # majority: confidence = winning votes / annotators, support <= annotators
    assert out["support"].between(1, 3).all()
    assert (out["confidence"] <= out["support"] / 3 + 1e-12).all()


# --------------------------------------------------------------------------- the sample


def _recovered(truth: pd.DataFrame, cons: pd.DataFrame, thr: float = 0.5) -> float:
    m = truth.merge(cons, on="item_id", suffixes=("", "_c"))
    ix = np.minimum(m.x + m.w, m.x_c + m.w_c) - np.maximum(m.x, m.x_c)
    iy = np.minimum(m.y + m.h, m.y_c + m.h_c) - np.maximum(m.y, m.y_c)
    inter = ix.clip(lower=0) * iy.clip(lower=0)
    iou = inter / (m.w * m.h + m.w_c * m.h_c - inter)
    hit = m[(iou >= thr) & (m["label"] == m["label_c"])]
    return hit["true_id"].nunique() / len(truth)


@pytest.mark.parametrize("method", ["majority", "wbf", "dawid_skene"])
def test_consensus_of_the_sample_annotators_recovers_the_true_boxes(method):
    project = wb.open_project(SAMPLE)
    truth = pd.read_csv(SAMPLE / "truth_boxes.csv", dtype={"label": str, "item_id": str})
    cons = wb.consensus(project.annotations, method, items=project)
    assert _recovered(truth, cons) >= 0.95
    # every annotation box is in exactly one consensus box
    members = cons["box_ids"].explode()
    assert sorted(members) == sorted(project.annotations["box_id"].astype(str))
    assert cons["consensus_id"].is_unique


def test_box_ids_holding_a_bar_stay_whole():
    """``box_ids`` is a list: a '|' inside an item id (so its generated box ids) splits nothing."""
    plain = _three_annotators()
    barred = plain.assign(item_id="scan|7", box_id=plain["box_id"] + "|b")
    out = wb.consensus(barred)
    assert sorted(out.iloc[0]["box_ids"]) == ["x0|b", "y0|b", "z0|b"]
    assert out.iloc[1]["box_ids"] == ["x1|b"]
    # what reads the members (annotator quality against the consensus) sees the same boxes
    from workbench.detection.agreement import detection_annotator_quality

    expected = detection_annotator_quality(plain)
    got = detection_annotator_quality(barred)
    pd.testing.assert_frame_equal(got, expected)
