"""Detection slicing: confusion table with background, object-level slices, run comparison."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.detection import (
    BACKGROUND,
    DetectionRunDiff,
    detection_metrics,
    match_detections,
    object_frame,
)
from workbench.errors import SchemaError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sample():
    return wb.open_project(SAMPLE)


@pytest.fixture(scope="module")
def baseline(sample):
    return match_detections(sample, "baseline")


def _hand_made():
    """One image with every outcome, one negative image with a false detection."""
    boxes = pd.DataFrame({
        "item_id": ["a", "a", "a", "a"],
        "label": ["cat", "dog", "cat", "dog"],
        "x": [0, 50, 100, 0], "y": [0, 0, 0, 50], "w": 10, "h": 10,
        "occluded": [False, True, False, True],
    })
    preds = pd.DataFrame({
        "item_id": ["a", "a", "a", "a", "a", "b"],
        "run": "r",
        "label": ["cat", "cat", "cat", "cat", "dog", "cat"],
        "x": [0, 1, 50, 104, 100, 0], "y": [0, 0, 0, 0, 100, 0],
        "w": [10, 10, 10, 10, 10, 5], "h": [10, 10, 10, 10, 10, 5],
        "confidence": [0.9, 0.5, 0.8, 0.7, 0.6, 0.3],
    })
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "camera": ["x", "y", "y"]})
    return {"boxes": boxes, "predictions": preds, "items": items, "classes": ["cat", "dog"]}


def _independent_counts(m: pd.DataFrame) -> Counter:
    """The confusion cells counted row by row (the documented rule, written plainly)."""
    counts: Counter = Counter()
    for r in m.itertuples():
        if r.outcome in ("tp", "wrong_class"):
            counts[(str(r.label), str(r.predicted))] += 1
        if r.outcome in ("fn", "mislocated"):
            counts[(str(r.label), BACKGROUND)] += 1
        if r.outcome in ("fp", "duplicate", "mislocated"):
            counts[(BACKGROUND, str(r.predicted))] += 1
    return counts


def _synthetic(seed: int = 0, n: int = 600):
    """A detection project with a planted weak slice: camera C and occluded boxes.

    Each box is found (a prediction of its class, slightly shifted) with probability 0.9,
    0.2 when the image's camera is C and the box is occluded; plus random false detections.
    Run ``strong`` finds every box with probability 0.95 everywhere.
    """
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": [f"img{i:04d}" for i in range(n)],
                          "camera": rng.choice(["A", "B", "C"], n),
                          "exposure": np.round(rng.uniform(0, 1, n), 3)})
    rows, preds = [], []
    for item, cam in zip(items["item_id"], items["camera"], strict=True):
        k = int(rng.integers(1, 5))
        for j in range(k):
            s = float(rng.uniform(10, 60))
            x, y = 200.0 * j + 5, float(rng.uniform(0, 100))
            occ = bool(rng.random() < 0.3)
            label = str(rng.choice(["p", "q"]))
            rows.append({"item_id": item, "label": label, "x": x, "y": y, "w": s, "h": s,
                         "occluded": occ})
            for run, p_hit in (("weak", 0.2 if (cam == "C" and occ) else 0.9),
                               ("strong", 0.95)):
                if rng.random() < p_hit:
                    preds.append({"item_id": item, "run": run, "label": label,
                                  "x": x + rng.uniform(-1, 1), "y": y + rng.uniform(-1, 1),
                                  "w": s, "h": s, "confidence": float(rng.uniform(0.3, 1))})
        for run in ("weak", "strong"):
            if rng.random() < 0.3:
                preds.append({"item_id": item, "run": run, "label": "p", "x": 900.0,
                              "y": 10.0, "w": 20.0, "h": 20.0,
                              "confidence": float(rng.uniform(0, 0.5))})
    items["width"], items["height"] = 1200, 200
    return wb.Project.from_frames(items, boxes=pd.DataFrame(rows),
                                  predictions=pd.DataFrame(preds), classes=["p", "q"],
                                  task="detection")


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic()


# ----------------------------------------------------------------------------- confusion


def test_confusion_table_hand_made():
    frames = _hand_made()
    m = match_detections(frames)
    assert m["outcome"].astype(str).tolist() == ["tp", "wrong_class", "mislocated", "fn",
                                                  "duplicate", "fp", "fp"]
    t = wb.confusion_table(m)
    assert t.index.tolist() == ["cat", "dog", BACKGROUND]
    assert t.columns.tolist() == ["cat", "dog", BACKGROUND]
    assert t.index.name == "true" and t.columns.name == "predicted"
    # rows: reference class or background; columns: predicted class or background
    assert t.to_numpy().tolist() == [[1, 0, 1],   # cat: tp; mislocated (a miss)
                                     [1, 0, 1],   # dog: wrong_class as cat; fn
                                     [3, 1, 0]]   # background: dup + mislocated + fp(b); fp dog
    assert t.attrs["task"] == "detection"
    # the boxes behind each cell
    cell = wb.cell_items(m, "cat", BACKGROUND)
    assert cell["box_id"].tolist() == ["a/b2"] and cell["outcome"].tolist() == ["mislocated"]
    cell = wb.cell_items(m, BACKGROUND, "cat")
    assert sorted(cell["outcome"].astype(str)) == ["duplicate", "fp", "mislocated"]
    assert cell["item_id"].unique().tolist() == ["a", "b"]
    assert cell["pred_id"].tolist() == ["a/r/p3", "a/r/p1", "b/r/p0"]
    cell = wb.cell_items(m, "dog", "cat")
    assert cell[["box_id", "pred_id"]].values.tolist() == [["a/b1", "a/r/p2"]]
    # a whole row, a whole column; a mislocated row once in the union
    assert len(wb.cell_items(m, None, None)) == len(m)
    assert wb.cell_items(m, None, BACKGROUND)["box_id"].tolist() == ["a/b2", "a/b3"]
    assert len(wb.cell_items(m, "cat", None)) == 2


def test_confusion_table_normalized_hand_made():
    m = match_detections(_hand_made())
    true = wb.confusion_table(m, normalize="true")
    np.testing.assert_allclose(true.to_numpy(), [[0.5, 0, 0.5], [0.5, 0, 0.5],
                                                 [0.75, 0.25, 0]])
    pred = wb.confusion_table(m, normalize="pred")
    np.testing.assert_allclose(pred.to_numpy()[:, 0], [0.2, 0.2, 0.6])
    assert wb.confusion_table(m, normalize="all").to_numpy().sum() == pytest.approx(1.0)


def test_confusion_table_sample_equals_independent_counts(sample, baseline):
    t = wb.confusion_table(baseline)
    counts = _independent_counts(baseline)
    names = [*sample.classes, BACKGROUND]
    assert t.index.tolist() == names and t.columns.tolist() == names
    expected = np.array([[counts.get((a, b), 0) for b in names] for a in names])
    np.testing.assert_array_equal(t.to_numpy(), expected)
    assert t.loc[BACKGROUND, BACKGROUND] == 0

    # against detection_metrics' counts (computed by another module)
    d = detection_metrics(sample, run="baseline").set_index("class").loc[sample.classes]
    cls = t.loc[sample.classes, sample.classes].to_numpy()
    np.testing.assert_array_equal(t.loc[sample.classes].sum(axis=1), d["n_boxes"])
    np.testing.assert_array_equal(t[sample.classes].sum(axis=0), d["n_predictions"])
    np.testing.assert_array_equal(np.diag(cls), d["n_tp"])
    np.testing.assert_array_equal(cls.sum(axis=1) - np.diag(cls), d["n_wrong_class"])
    np.testing.assert_array_equal(t.loc[sample.classes, BACKGROUND],
                                  d["n_fn"] + d["n_mislocated"])
    np.testing.assert_array_equal(t.loc[BACKGROUND, sample.classes],
                                  d["n_fp"] + d["n_duplicate"] + d["n_mislocated"])
    # normalize="true": recall of each class on the diagonal
    rec = wb.confusion_table(baseline, normalize="true")
    np.testing.assert_allclose(np.diag(rec.loc[sample.classes, sample.classes]), d["recall"])


def test_cell_items_sample_every_cell(sample, baseline):
    t = wb.confusion_table(baseline)
    for true in t.index:
        for pred in t.columns:
            rows = wb.cell_items(baseline, true, pred)
            assert len(rows) == t.loc[true, pred], (true, pred)
            if len(rows) == 0:
                continue
            if true != BACKGROUND:
                assert (rows["label"].astype(str) == true).all()
                assert rows["box_id"].notna().all()
            if pred != BACKGROUND:
                assert (rows["predicted"].astype(str) == pred).all()
                assert rows["pred_id"].notna().all()
            if pred == BACKGROUND:
                assert set(rows["outcome"].astype(str)) <= {"fn", "mislocated"}
            if true == BACKGROUND:
                assert set(rows["outcome"].astype(str)) <= {"fp", "duplicate", "mislocated"}
    missed = wb.cell_items(baseline, None, BACKGROUND)
    ref = baseline[baseline["outcome"].isin(["fn", "mislocated"])]
    assert missed["box_id"].tolist() == ref["box_id"].tolist()
    assert set(missed["item_id"].unique()) == set(ref["item_id"])


def test_project_input_equals_matches_input(sample, baseline):
    direct = wb.confusion_table(sample, run="baseline")
    pd.testing.assert_frame_equal(direct, wb.confusion_table(baseline))
    default = wb.confusion_table(sample)  # the project's default run
    assert default.attrs["run"] == sample.default_run == "candidate"
    pd.testing.assert_frame_equal(
        default, wb.confusion_table(match_detections(sample, "candidate")))
    strict = wb.confusion_table(sample, run="baseline", iou=0.75)
    assert strict.attrs["iou"] == 0.75
    assert np.trace(strict.to_numpy()) < np.trace(direct.to_numpy())
    rows = wb.cell_items(sample, "3", BACKGROUND, run="baseline")
    pd.testing.assert_frame_equal(rows, wb.cell_items(baseline, "3", BACKGROUND),
                                  check_like=True)


def test_several_runs_need_run(sample, baseline):
    both = match_detections(sample)
    with pytest.raises(ValueError, match=r"holds the runs \['baseline', 'candidate'\]"):
        wb.confusion_table(both)
    with pytest.raises(ValueError, match="run=..."):
        wb.discover_slices(both, target="is_fn")
    pd.testing.assert_frame_equal(wb.confusion_table(both, run="baseline"),
                                  wb.confusion_table(baseline))
    with pytest.raises(ValueError, match="'run' parameter of confusion_table"):
        wb.confusion_table(both, run="nope")


def test_confusion_bad_inputs(baseline):
    with pytest.raises(ValueError, match="matched at IoU 0.5"):
        wb.confusion_table(baseline, iou=0.7)
    with pytest.raises(ValueError, match="'true' parameter of cell_items"):
        wb.cell_items(baseline, "cat", None)
    with pytest.raises(ValueError, match="'normalize' parameter of confusion_table"):
        wb.confusion_table(baseline, normalize="rows")
    frames = _hand_made()
    frames["boxes"] = frames["boxes"].assign(label="background")
    frames["classes"] = ["background", "cat", "dog"]
    with pytest.raises(SchemaError, match="a class is named 'background'"):
        wb.confusion_table(match_detections(frames))
    broken = baseline.copy()
    broken["outcome"] = broken["outcome"].astype(str).replace("tp", "hit")
    with pytest.raises(SchemaError, match=r"unknown outcome\(s\) \['hit'\]"):
        wb.confusion_table(broken)
    # classification frames keep their behaviour and refuse the detection options
    errors = pd.DataFrame({"item_id": ["a", "b"], "label": ["x", "y"],
                           "predicted": ["x", "x"]})
    assert wb.confusion_table(errors).to_numpy().tolist() == [[1, 0], [1, 0]]
    assert wb.cell_items(errors, "y", "x") == ["b"]
    with pytest.raises(ValueError, match="'iou' parameter of confusion_table is for detection"):
        wb.confusion_table(errors, iou=0.5)
    with pytest.raises(ValueError, match="'run' parameter of cell_items is for detection"):
        wb.cell_items(errors, "x", "x", run="r")


# ----------------------------------------------------------------------------- object rows


def test_object_frame_rows(baseline):
    fn = object_frame(baseline, "is_fn")
    assert fn["box_id"].notna().all() and len(fn) == baseline["box_id"].notna().sum()
    assert set(fn["outcome"].astype(str)) == {"tp", "fn", "wrong_class", "mislocated"}
    assert fn["occluded"].dtype == bool
    assert fn.attrs["metadata_columns"] == ["camera", "site", "time_of_day", "capture_week",
                                            "occluded", "size"]
    assert fn.attrs["id_column"] == "box_id" and fn.attrs["rows"] == "reference boxes"
    fp = object_frame(baseline, "is_fp")
    assert fp["pred_id"].notna().all() and len(fp) == baseline["pred_id"].notna().sum()
    assert len(fp) == 7717  # every baseline detection of the sample (its README)
    assert set(fp["outcome"].astype(str)) == {"tp", "fp", "duplicate", "wrong_class",
                                              "mislocated"}
    assert fp.attrs["metadata_columns"] == ["camera", "site", "time_of_day", "capture_week",
                                            "size"]
    # attrs lost: box metadata is recognised as the column missing on every prediction row
    bare = baseline.copy()
    bare.attrs = {}
    assert object_frame(bare, "is_fp").attrs["metadata_columns"] == fp.attrs[
        "metadata_columns"]
    assert object_frame(bare, "is_fn").attrs["metadata_columns"] == fn.attrs[
        "metadata_columns"]
    with pytest.raises(ValueError, match="'target' parameter of object_frame"):
        object_frame(baseline, "is_error")
    with pytest.raises(SchemaError, match="outcome"):
        object_frame(baseline.drop(columns="outcome"), "is_fn")


def test_slice_metrics_on_matches(baseline):
    got = wb.slice_metrics(baseline, "camera", target="is_fn")
    ref = baseline[baseline["box_id"].notna()]
    expect = ref.groupby("camera")["is_fn"].agg(["size", "sum"])
    assert got["value"].tolist() == expect.index.tolist()
    assert got["n"].tolist() == expect["size"].tolist()
    assert got["errors"].tolist() == expect["sum"].tolist()
    assert got.attrs["overall_rate"] == pytest.approx(ref["is_fn"].mean())
    assert got.attrs["rows"] == "reference boxes"

    fp = wb.slice_metrics(baseline, ["site"], target="is_fp")
    pred = baseline[baseline["pred_id"].notna()]
    expect = pred.groupby("site")["is_fp"].agg(["size", "sum"])
    assert fp["n"].tolist() == expect["size"].tolist()
    assert fp["errors"].tolist() == expect["sum"].tolist()

    every = wb.slice_metrics(baseline, target="is_fn")
    assert list(dict.fromkeys(every["column"])) == ["camera", "site", "time_of_day",
                                                    "capture_week", "occluded", "size"]
    with_recall = wb.slice_metrics(baseline, "camera", target="is_fn", per_class_recall=True)
    cam_b = ref[(ref["camera"] == "cam-b") & (ref["label"] == "3")]
    assert with_recall.set_index("value").loc["cam-b", "recall_3"] == pytest.approx(
        (cam_b["outcome"] == "tp").mean())
    with pytest.raises(ValueError, match="needs target='is_fn'"):
        wb.slice_metrics(baseline, "camera", target="is_fp", per_class_recall=True)
    with pytest.raises(ValueError, match="target='is_fn'"):
        wb.slice_metrics(baseline, "camera")


def test_discover_slices_sample_weak_camera(sample, baseline):
    """The planted weak camera is the top slice of misses for the baseline run."""
    found = wb.discover_slices(baseline, target="is_fn")
    top = found.iloc[0]
    assert top["conditions"].get("camera") == "cam-b"
    assert set(top["conditions"]) <= {"camera", "size"}
    assert found.attrs["rows"] == "reference boxes" and found.attrs["id_column"] == "box_ids"
    # the slice's boxes and images, checked against the project directly
    cam_b = set(sample.items.loc[sample.items["camera"] == "cam-b", "item_id"])
    boxes = sample.boxes[sample.boxes["item_id"].isin(cam_b)]
    if "size" in top["conditions"]:
        area = boxes["w"] * boxes["h"]
        boxes = boxes[(area < 32**2) == (top["conditions"]["size"] == "small")]
    assert sorted(top["box_ids"]) == sorted(boxes["box_id"])
    assert top["item_ids"] == list(dict.fromkeys(boxes["item_id"]))
    assert top["n"] == len(boxes)
    missed = baseline.set_index("box_id").loc[top["box_ids"], "is_fn"]
    assert top["errors"] == int(missed.sum())
    assert top["lift"] > 1.2


def test_discover_slices_false_detections(baseline):
    found = wb.discover_slices(baseline, target="is_fp")
    assert found.attrs["id_column"] == "pred_ids"
    assert "occluded" not in found.attrs["features"]
    top = found.iloc[0]
    pred = baseline.set_index("pred_id")
    assert pred.loc[top["pred_ids"], "is_fp"].sum() == top["errors"]
    assert len(top["pred_ids"]) == top["n"]


def test_discover_slices_image_and_box_metadata_together(synthetic):
    """A slice planted on an image column and a box column at once is found first."""
    m = match_detections(synthetic, "weak")
    found = wb.discover_slices(m, target="is_fn")
    assert found.iloc[0]["conditions"] == {"camera": "C", "occluded": True}
    assert found.iloc[0]["order"] == 2
    # an explicit feature list works too and n counts boxes
    only = wb.discover_slices(m, ["camera"], target="is_fn")
    assert only.iloc[0]["slice"] == "camera=C"
    ref = m[m["box_id"].notna()]
    assert only.iloc[0]["n"] == int((ref["camera"] == "C").sum())


# ----------------------------------------------------------------------------- compare runs


def test_compare_runs_detection_sample(sample):
    diff = wb.compare_runs(sample, "baseline", "candidate")
    assert isinstance(diff, DetectionRunDiff) and isinstance(diff, wb.RunDiff)
    o = diff.overall.iloc[0]
    for run, side in (("baseline", "base"), ("candidate", "candidate")):
        d = detection_metrics(sample, run=run).set_index("class").loc["all"]
        assert o[f"{side}_ap50"] == pytest.approx(d["ap50"], abs=1e-12)
        assert o[f"{side}_ap"] == pytest.approx(d["ap"], abs=1e-12)
        assert o[f"{side}_recall"] == pytest.approx(d["recall"], abs=1e-12)
        assert o[f"{side}_precision"] == pytest.approx(d["precision"], abs=1e-12)
    assert o["ap50_delta"] == pytest.approx(o["candidate_ap50"] - o["base_ap50"])
    assert o["n"] == len(sample.boxes) and o["n_images"] == len(sample.items)
    assert o["base_error_rate"] == pytest.approx(1 - o["base_recall"])

    # fixed / broken boxes, computed independently from the two matches frames
    mb = match_detections(sample, "baseline").dropna(subset=["box_id"]).set_index("box_id")
    mc = match_detections(sample, "candidate").dropna(subset=["box_id"]).set_index("box_id")
    fixed = mb.index[mb["outcome"].isin(["fn", "wrong_class", "mislocated"])
                     & (mc.loc[mb.index, "outcome"] == "tp")]
    broken = mb.index[(mb["outcome"] == "tp")
                      & mc.loc[mb.index, "outcome"].isin(["fn", "wrong_class", "mislocated"])]
    assert sorted(diff.fixed_box_ids) == sorted(fixed)
    assert sorted(diff.broken_box_ids) == sorted(broken)
    assert o["n_fixed"] == len(fixed) and o["n_broken"] == len(broken)
    assert diff.fixed_ids == list(dict.fromkeys(mb.loc[diff.fixed_box_ids, "item_id"]))
    row = diff.fixed.set_index("box_id").loc[diff.fixed_box_ids[0]]
    assert row["base_outcome"] != "tp" and row["candidate_outcome"] == "tp"
    assert row["candidate_pred_id"] == mc.loc[diff.fixed_box_ids[0], "pred_id"]

    by = diff.by_slice
    assert list(dict.fromkeys(by["column"])) == ["camera", "site", "time_of_day",
                                                 "capture_week", "occluded", "size"]
    for col in ("camera", "occluded"):  # image metadata, box metadata
        part = by[by["column"] == col].set_index("value")
        for run, side in (("baseline", "base"), ("candidate", "candidate")):
            d = detection_metrics(sample, col, run=run)
            d = d[d["class"] == "all"].set_index(col).reindex(part.index)  # not a mask
            assert d.notna().all().all()
            np.testing.assert_allclose(part[f"{side}_ap50"], d["ap50"])
            np.testing.assert_allclose(part[f"{side}_ap"], d["ap"])
            np.testing.assert_allclose(part[f"{side}_recall"], d["recall"])
            np.testing.assert_allclose(part["n"], d["n_boxes"])
        assert part["n_fixed"].sum() == o["n_fixed"]
        assert part["n_broken"].sum() == o["n_broken"]
    ok = by["n"] > 0
    np.testing.assert_allclose(by.loc[ok, "base_recall"], 1 - by.loc[ok, "base_error_rate"])
    np.testing.assert_allclose(by.loc[ok, "candidate_recall"],
                               1 - by.loc[ok, "candidate_error_rate"])
    # the planted weak camera stays the worst for both runs
    cam = by[by["column"] == "camera"].set_index("value")
    assert cam["base_recall"].idxmin() == cam["candidate_recall"].idxmin() == "cam-b"
    assert "DetectionRunDiff('baseline' -> 'candidate'" in repr(diff)


def test_compare_runs_size_and_iou(sample):
    diff = wb.compare_runs(sample, "baseline", "candidate", by=["size"], iou=0.75)
    assert diff.iou == 0.75
    o = diff.overall.iloc[0]
    d = detection_metrics(sample, run="baseline", iou=0.75).set_index("class").loc["all"]
    assert o["base_recall"] == pytest.approx(d["recall"])
    size = diff.by_slice.set_index("value")
    boxes = sample.boxes.assign(size=np.where(sample.boxes["w"] * sample.boxes["h"] < 32**2,
                                              "small", "medium"))
    frames = {"boxes": boxes, "predictions": sample.predictions, "items": sample.items,
              "classes": sample.classes}
    d = detection_metrics(frames, "size", run="candidate", iou=0.75)
    d = d[d["class"] == "all"].set_index("size")
    for value in ("small", "medium"):
        assert size.loc[value, "candidate_ap50"] == pytest.approx(d.loc[value, "ap50"])
        assert size.loc[value, "candidate_recall"] == pytest.approx(d.loc[value, "recall"])
        assert size.loc[value, "n"] == d.loc[value, "n_boxes"]
    assert size.loc["large", "n"] == 0 and np.isnan(size.loc["large", "base_ap50"])


def test_compare_runs_numeric_column_binned(synthetic):
    diff = wb.compare_runs(synthetic, "weak", "strong", by=["exposure"])
    part = diff.by_slice
    assert len(part) == 4 and part["bin"].iloc[0].startswith("[")
    # the bins: quantiles of the reference boxes' exposure, as slice_metrics cuts them
    ref = diff.errors
    edges = np.quantile(ref["exposure"], np.linspace(0, 1, 5))
    code = np.searchsorted(edges[1:-1], ref["exposure"], side="right")
    assert part["n"].tolist() == np.bincount(code, minlength=4).tolist()
    # AP of a bin = AP on the images whose exposure falls in it
    img_code = np.searchsorted(edges[1:-1], synthetic.items["exposure"], side="right")
    inside = ((synthetic.items["exposure"] >= edges[0])
              & (synthetic.items["exposure"] <= edges[-1])).to_numpy()
    items = synthetic.items.assign(bin=np.where(inside, img_code, -1))
    frames = {"boxes": synthetic.boxes, "predictions": synthetic.predictions,
              "items": items, "classes": synthetic.classes}
    d = detection_metrics(frames, "bin", run="strong")
    d = d[d["class"] == "all"].set_index("bin")
    np.testing.assert_allclose(part["candidate_ap50"], d.loc[[0, 1, 2, 3], "ap50"])
    assert part["n_images"].tolist() == [int((items["bin"] == c).sum()) for c in range(4)]
    # the planted weakness shows as fixed boxes: occluded boxes on camera C
    fixed = diff.fixed.merge(diff.errors[["box_id", "camera", "occluded"]], on="box_id")
    share = ((fixed["camera"] == "C") & fixed["occluded"]).mean()
    base = ((diff.errors["camera"] == "C") & diff.errors["occluded"]).mean()
    assert share > 3 * base


def test_compare_runs_bad_inputs(sample):
    with pytest.raises(ValueError, match="'base' parameter of compare_runs"):
        wb.compare_runs(sample, "nope", "candidate")
    with pytest.raises(SchemaError, match="nope"):
        wb.compare_runs(sample, "baseline", "candidate", by=["nope"])
    classification = SimpleNamespace(task="classification", runs=["a", "b"])
    with pytest.raises(ValueError, match="'iou' parameter of compare_runs is for detection"):
        wb.compare_runs(classification, "a", "b", iou=0.5)


def test_run_comparison_widget_shows_detection_diff(sample):
    """The existing RunComparison widget works on the detection diff unchanged."""
    from workbench.widgets import RunComparison

    view = RunComparison(sample, base="baseline", candidate="candidate", column="camera")
    assert isinstance(view.diff, DetectionRunDiff)
    ids = view.select_flips("fixed")
    assert ids == view.diff.fixed_ids
    assert set(view.selection.ids) == set(ids)
    assert set(view.selection.box_ids) == set(view.diff.fixed_box_ids)
    view.select_flips("broken")
    assert set(view.selection.box_ids) == set(view.diff.broken_box_ids)
    i = int(np.flatnonzero(view.rows_frame["bin"] == "cam-b")[0])
    cam_b = set(sample.items.loc[sample.items["camera"] == "cam-b", "item_id"])
    shown = set(view.items_of_row(i))
    assert shown and shown <= cam_b
