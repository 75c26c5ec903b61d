"""Detection matching and metrics: against pycocotools' COCOeval, and hand-made cases."""

from __future__ import annotations

import contextlib
import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.detection import detection_metrics, match_detections
from workbench.detection.matching import item_order
from workbench.errors import SchemaError

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

# ----------------------------------------------------------------------------- helpers


def coco_dicts(boxes: pd.DataFrame, preds: pd.DataFrame, classes: list[str],
               items: list[str] | None = None):
    """COCO instances and results built from frames, ids in the workbench's image order."""
    ids = items if items is not None else sorted(
        set(boxes["item_id"].astype(str)) | set(preds["item_id"].astype(str)))
    ids = np.asarray(ids, dtype=object)
    rank = item_order(ids)
    image_id = {i: int(r) + 1 for i, r in zip(ids, rank, strict=True)}
    cat_id = {c: k + 1 for k, c in enumerate(classes)}
    crowd = boxes["iscrowd"] if "iscrowd" in boxes else pd.Series(False, index=boxes.index)
    anns = [{"id": n + 1, "image_id": image_id[str(r.item_id)], "category_id": cat_id[r.label],
             "bbox": [float(r.x), float(r.y), float(r.w), float(r.h)],
             "area": float(r.w) * float(r.h), "iscrowd": int(c)}
            for n, (r, c) in enumerate(zip(boxes.itertuples(), crowd, strict=True))]
    gt = {"images": [{"id": v} for v in image_id.values()], "annotations": anns,
          "categories": [{"id": v, "name": k} for k, v in cat_id.items()]}
    dt = [{"image_id": image_id[str(r.item_id)], "category_id": cat_id[r.label],
           "bbox": [float(r.x), float(r.y), float(r.w), float(r.h)],
           "score": float(r.confidence)} for r in preds.itertuples()]
    return gt, dt


def cocoeval(boxes, preds, classes, items=None) -> COCOeval:
    gt, dt = coco_dicts(boxes, preds, classes, items)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes(dt) if dt else COCO()
        if not dt:
            cd.dataset = {"images": gt["images"], "annotations": [],
                          "categories": gt["categories"]}
            cd.createIndex()
        e = COCOeval(cg, cd, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def coco_per_class(e: COCOeval) -> tuple[np.ndarray, np.ndarray]:
    prec = e.eval["precision"][:, :, :, 0, -1]  # T, R, K at area 'all', maxDets 100
    ap = np.array([prec[:, :, k].mean() if (prec[:, :, k] > -1).any() else np.nan
                   for k in range(prec.shape[2])])
    ap50 = np.array([prec[0, :, k].mean() if (prec[0, :, k] > -1).any() else np.nan
                     for k in range(prec.shape[2])])
    return ap50, ap


def random_data(seed: int, n_images=60, n_classes=7, crowd=0.05, ties=True, empty=0.1):
    rng = np.random.default_rng(seed)
    classes = [f"c{k}" for k in range(n_classes)]
    items = [f"img{i}" for i in range(n_images)]
    b, p = [], []
    for item in items:
        if rng.random() < empty:
            n_gt = 0
        else:
            n_gt = rng.integers(1, 9)
        for _ in range(n_gt):
            # class c6 never has a reference box; class c5 never a prediction
            c = classes[rng.integers(0, n_classes - 1)]
            x, y = rng.uniform(0, 200, 2).round(1)
            w, h = rng.uniform(5, 120, 2).round(1)
            b.append((item, c, x, y, w, h, bool(rng.random() < crowd)))
            for _ in range(rng.poisson(1.3)):  # perturbed copies
                cp = c if rng.random() < 0.85 else classes[rng.integers(0, n_classes)]
                if cp == "c5":
                    cp = "c6"
                jit = rng.normal(0, 0.15, 4) * [w, h, w, h]
                p.append((item, cp, x + jit[0], y + jit[1], max(w + jit[2], 1.0),
                          max(h + jit[3], 1.0), rng.random()))
        for _ in range(rng.poisson(1.5)):  # background detections
            cp = classes[rng.integers(0, n_classes)]
            cp = "c6" if cp == "c5" else cp
            p.append((item, cp, *rng.uniform(0, 200, 2), *rng.uniform(5, 80, 2), rng.random()))
    boxes = pd.DataFrame(b, columns=["item_id", "label", "x", "y", "w", "h", "iscrowd"])
    preds = pd.DataFrame(p, columns=["item_id", "label", "x", "y", "w", "h", "confidence"])
    if ties:  # coarse scores: many exact ties, within and across images
        preds["confidence"] = (preds["confidence"] * 8).round() / 8
    preds["run"] = "r"
    # shuffle rows: ties are then broken by row order, as COCO does by results order
    boxes = boxes.sample(frac=1, random_state=seed).reset_index(drop=True)
    preds = preds.sample(frac=1, random_state=seed + 1).reset_index(drop=True)
    return boxes, preds, classes, items


def frames(boxes, preds, classes, items=None):
    out = {"boxes": boxes, "predictions": preds, "classes": classes}
    if items is not None:
        out["items"] = pd.DataFrame({"item_id": items})
    return out


def box(item, label, x, y, w, h, **kw):
    return {"item_id": item, "label": label, "x": x, "y": y, "w": w, "h": h, **kw}


def pred(item, label, x, y, w, h, conf, run="r"):
    return {"item_id": item, "run": run, "label": label, "x": x, "y": y, "w": w, "h": h,
            "confidence": conf}


def assert_equal_to_coco(boxes, preds, classes, items=None):
    e = cocoeval(boxes, preds, classes, items)
    ours = detection_metrics(frames(boxes, preds, classes, items))
    per = ours[ours["class"] != "all"].set_index("class").loc[classes]
    ap50, ap = coco_per_class(e)
    np.testing.assert_allclose(per["ap50"].to_numpy(), ap50, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(per["ap"].to_numpy(), ap, atol=1e-6, equal_nan=True)
    overall = ours[ours["class"] == "all"].iloc[0]
    assert overall["ap"] == pytest.approx(e.stats[0], abs=1e-6)
    assert overall["ap50"] == pytest.approx(e.stats[1], abs=1e-6)
    # recall at 0.5 = COCO's recall at the first threshold (classes with reference boxes)
    rec = e.eval["recall"][0, :, 0, -1]
    has = rec > -1
    np.testing.assert_allclose(per["recall"].to_numpy()[has], rec[has], atol=1e-12)
    return ours, e


# ----------------------------------------------------------------------------- vs COCOeval


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_equal_to_pycocotools_on_random_data_with_ties_and_crowds(seed):
    boxes, preds, classes, items = random_data(seed)
    assert preds["confidence"].duplicated().any()  # ties are exercised
    assert boxes["iscrowd"].any() or seed > 0
    ours, e = assert_equal_to_coco(boxes, preds, classes, items)
    per = ours.set_index("class")
    assert np.isnan(per.loc["c6", "ap"]) and per.loc["c6", "n_predictions"] > 0  # no GT
    assert per.loc["c5", "n_predictions"] == 0 and per.loc["c5", "ap"] == 0  # no predictions


@pytest.mark.parametrize("seed", [10, 11])
def test_equal_to_pycocotools_with_many_classes_and_continuous_scores(seed):
    boxes, preds, classes, items = random_data(seed, n_images=150, n_classes=40, ties=False,
                                               crowd=0.1)
    assert_equal_to_coco(boxes, preds, classes, items)


def test_equal_to_pycocotools_beyond_max_dets_and_integer_ids():
    """More than 100 predictions in one image and class; item ids are integers."""
    rng = np.random.default_rng(5)
    b = [box(str(i), "a", *rng.uniform(0, 300, 2), *rng.uniform(10, 50, 2))
         for i in (2, 10, 10, 10, 1)]
    boxes = pd.DataFrame(b)
    p = [pred(str(i), "a", *rng.uniform(0, 300, 2), *rng.uniform(10, 50, 2),
              round(rng.random(), 1)) for i in [10] * 150 + [2] * 5 + [1] * 3]
    # some exact hits so that there are true positives, with tied scores across images
    p += [pred(r["item_id"], "a", r["x"], r["y"], r["w"], r["h"], 0.5) for r in b]
    preds = pd.DataFrame(p).sample(frac=1, random_state=0).reset_index(drop=True)
    assert_equal_to_coco(boxes, preds, ["a"])
    m = match_detections(frames(boxes, preds, ["a"]))
    assert m.attrs["n_beyond_max_dets"] == 150 + 3 - 100


def test_area_ranges_equal_pycocotools():
    boxes, preds, classes, items = random_data(7, n_images=120)
    e = cocoeval(boxes, preds, classes, items)
    ours = detection_metrics(frames(boxes, preds, classes, items), area_ranges="coco")
    for a, name in enumerate(["all", "small", "medium", "large"]):
        prec = e.eval["precision"][:, :, :, a, -1]
        sel = ours[(ours["area_range"] == name) & (ours["class"] != "all")]
        sel = sel.set_index("class").loc[classes]
        expect = [prec[:, :, k].mean() if (prec[:, :, k] > -1).any() else np.nan
                  for k in range(len(classes))]
        np.testing.assert_allclose(sel["ap"].to_numpy(), expect, atol=1e-6, equal_nan=True)


def test_item_metadata_slice_equals_cocoeval_on_those_images():
    boxes, preds, classes, items = random_data(8, n_images=80)
    meta = pd.DataFrame({"item_id": items, "camera": ["A" if i % 3 else "B"
                                                      for i in range(len(items))]})
    ours = detection_metrics({"boxes": boxes, "predictions": preds, "classes": classes,
                              "items": meta}, by="camera")
    for cam in ("A", "B"):
        keep = set(meta.loc[meta["camera"] == cam, "item_id"])
        sub_items = [i for i in items if i in keep]
        e = cocoeval(boxes[boxes["item_id"].isin(keep)], preds[preds["item_id"].isin(keep)],
                     classes, sub_items)
        row = ours[(ours["camera"] == cam) & (ours["class"] == "all")].iloc[0]
        assert row["ap"] == pytest.approx(e.stats[0], abs=1e-6)
        assert row["ap50"] == pytest.approx(e.stats[1], abs=1e-6)


def _iou(a, b):
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return 0.0 if w <= 0 or h <= 0 else w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def test_box_metadata_slice_equals_cocoeval_with_an_ignore_range():
    """A box-metadata slice is COCO's area-range rule with 'in the slice' as the range.

    COCO is given area 1 for the boxes of the slice and 1e9 for the others; a prediction
    gets area 1 when the reference box it overlaps most is in the slice, else 1e9; then
    COCOeval runs with the single area range [0, 10].
    """
    boxes, preds, classes, items = random_data(9, n_images=80)
    boxes["occluded"] = np.random.default_rng(0).random(len(boxes)) < 0.4
    ours = detection_metrics(frames(boxes, preds, classes, items), by="occluded")
    regular = boxes[~boxes["iscrowd"]]
    for value in (True, False):
        gt, dt = coco_dicts(boxes, preds, classes, items)
        for ann, occ in zip(gt["annotations"], boxes["occluded"], strict=True):
            ann["area"] = 1.0 if occ == value else 1e9
        with contextlib.redirect_stdout(io.StringIO()):
            cg = COCO()
            cg.dataset = gt
            cg.createIndex()
            cd = cg.loadRes(dt)
            for k, r in enumerate(preds.itertuples()):
                mine = regular[regular["item_id"] == r.item_id]
                best, occ = 0.0, None
                for b in mine.itertuples():
                    v = _iou((r.x, r.y, r.w, r.h), (b.x, b.y, b.w, b.h))
                    if v > best:
                        best, occ = v, b.occluded
                cd.anns[k + 1]["area"] = 1.0 if occ is not None and occ == value else 1e9
            e = COCOeval(cg, cd, "bbox")
            e.params.areaRng, e.params.areaRngLbl = [[0, 10]], ["slice"]
            e.evaluate()
            e.accumulate()
        prec = e.eval["precision"][:, :, :, 0, -1]
        expect = [prec[:, :, k].mean() if (prec[:, :, k] > -1).any() else np.nan
                  for k in range(len(classes))]
        got = ours[(ours["occluded"] == value) & (ours["class"] != "all")]
        got = got.set_index("class").loc[classes, "ap"].to_numpy()
        np.testing.assert_allclose(got, expect, atol=1e-6, equal_nan=True)


def test_faster_coco_eval_agrees():
    faster = pytest.importorskip("faster_coco_eval")
    boxes, preds, classes, items = random_data(3, n_images=100, ties=False)
    gt, dt = coco_dicts(boxes, preds, classes, items)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = faster.COCO(gt)
        cd = cg.loadRes(dt)
        e = faster.COCOeval_faster(cg, cd, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    ours = detection_metrics(frames(boxes, preds, classes, items))
    assert ours.iloc[-1]["ap"] == pytest.approx(e.stats[0], abs=1e-6)


# ----------------------------------------------------------------------------- hand-made


def test_every_outcome_on_one_image():
    b = pd.DataFrame([
        box("im", "cat", 0, 0, 100, 100),       # tp + a duplicate
        box("im", "dog", 200, 0, 100, 100),     # predicted as cat: wrong_class
        box("im", "cat", 400, 0, 100, 100),     # loose prediction: mislocated
        box("im", "bird", 600, 0, 100, 100),    # nothing there: fn
    ])
    p = pd.DataFrame([
        pred("im", "cat", 0, 0, 100, 100, 0.9),       # tp (IoU 1)
        pred("im", "cat", 5, 5, 100, 100, 0.8),       # duplicate of the tp
        pred("im", "cat", 200, 0, 100, 100, 0.7),     # wrong_class on the dog
        pred("im", "cat", 400, 0, 300, 100, 0.6),     # IoU 1/3 with the cat: mislocated
        pred("im", "cat", 900, 900, 50, 50, 0.5),     # fp on background
    ])
    m = match_detections({"boxes": b, "predictions": p})
    by_box = m.set_index("box_id")
    assert by_box.loc["im/b0", "outcome"] == "tp" and by_box.loc["im/b0", "pred_id"] == "im/r/p0"
    assert by_box.loc["im/b1", "outcome"] == "wrong_class"
    assert by_box.loc["im/b1", "predicted"] == "cat" and by_box.loc["im/b1", "label"] == "dog"
    assert by_box.loc["im/b2", "outcome"] == "mislocated"
    assert by_box.loc["im/b2", "iou"] == pytest.approx(1 / 3)
    assert by_box.loc["im/b3", "outcome"] == "fn" and pd.isna(by_box.loc["im/b3", "pred_id"])
    only = m[m["box_id"].isna()].set_index("pred_id")
    assert only.loc["im/r/p1", "outcome"] == "duplicate"
    assert only.loc["im/r/p4", "outcome"] == "fp" and np.isnan(only.loc["im/r/p4", "iou"])
    assert sorted(m["outcome"].astype(str)) == sorted(
        ["tp", "wrong_class", "mislocated", "fn", "duplicate", "fp"])
    assert m["is_fn"].tolist() == [False, True, True, True, False, False]
    assert m["is_fp"].tolist() == [False, True, True, False, True, True]
    assert m["size"].astype(str).tolist()[:4] == ["large"] * 4  # 100**2 >= 96**2
    met = detection_metrics({"boxes": b, "predictions": p}).set_index("class")
    assert met.loc["cat", "n_tp"] == 1 and met.loc["cat", "n_duplicate"] == 1
    assert met.loc["cat", "n_fp"] == 1 and met.loc["cat", "n_mislocated"] == 1
    assert met.loc["dog", "n_wrong_class"] == 1 and met.loc["bird", "n_fn"] == 1
    assert met.loc["cat", "n_predictions"] == 5 and met.loc["cat", "precision"] == 0.2
    assert met.loc["all", "recall"] == 0.25
    assert_equal_to_coco(b, p, ["bird", "cat", "dog"])


def test_a_box_matched_twice_is_one_tp_and_one_duplicate():
    b = pd.DataFrame([box("a", "x", 10, 10, 40, 40)])
    p = pd.DataFrame([pred("a", "x", 10, 10, 40, 40, 0.6), pred("a", "x", 12, 10, 40, 40, 0.9)])
    m = match_detections({"boxes": b, "predictions": p})
    assert m["outcome"].astype(str).tolist() == ["tp", "duplicate"]
    assert m.loc[0, "pred_id"] == "a/r/p1"  # the higher confidence wins
    ours, _ = assert_equal_to_coco(b, p, ["x"])
    # precision 1 then 1/2 at recall 1: AP 1
    assert ours.iloc[0]["ap50"] == pytest.approx(1.0)


def test_crowd_box_absorbs_predictions_and_counts_neither_way():
    b = pd.DataFrame([box("a", "p", 0, 0, 200, 200, iscrowd=True),
                      box("a", "p", 300, 300, 50, 50, iscrowd=False)])
    p = pd.DataFrame([pred("a", "p", 10, 10, 30, 30, 0.9),    # inside the crowd: ignored
                      pred("a", "p", 50, 50, 30, 30, 0.8),    # also
                      pred("a", "p", 300, 300, 50, 50, 0.3)])  # tp
    m = match_detections({"boxes": b, "predictions": p})
    assert m["outcome"].astype(str).tolist() == ["tp"]
    assert m.attrs["n_crowd_boxes"] == 1 and m.attrs["n_absorbed_by_crowd"] == 2
    ours, _ = assert_equal_to_coco(b, p, ["p"])
    assert ours.iloc[0]["ap"] == pytest.approx(1.0)


def test_crowd_iou_is_intersection_over_prediction():
    # prediction 60x60 half inside a big crowd box: IoU = 1/2 by COCO's crowd rule
    b = pd.DataFrame([box("a", "p", 0, 0, 300, 300, iscrowd=True)])
    p = pd.DataFrame([pred("a", "p", 270, 0, 60, 60, 0.9)])
    m = match_detections({"boxes": b, "predictions": p})
    assert len(m) == 0 and m.attrs["n_absorbed_by_crowd"] == 1  # IoU 0.5 >= 0.5
    m = match_detections({"boxes": b, "predictions": p}, iou=0.55)
    assert m["outcome"].astype(str).tolist() == ["fp"]


def test_image_without_boxes_and_class_without_predictions():
    items = ["empty", "one"]
    b = pd.DataFrame([box("one", "a", 0, 0, 10, 10), box("one", "b", 50, 50, 10, 10)])
    p = pd.DataFrame([pred("empty", "a", 0, 0, 10, 10, 0.95),  # fp on a negative image
                      pred("one", "a", 0, 0, 10, 10, 0.5)])
    ours, _ = assert_equal_to_coco(b, p, ["a", "b"], items)
    per = ours.set_index("class")
    assert per.loc["a", "ap50"] == pytest.approx(0.5)   # precision 1/2 at recall 1
    assert per.loc["b", "ap50"] == 0 and per.loc["b", "n_fn"] == 1
    assert np.isnan(per.loc["b", "precision"])
    assert per.loc["all", "ap50"] == pytest.approx(0.25)
    m = match_detections(frames(b, p, ["a", "b"], items))
    assert m.loc[m["item_id"] == "empty", "outcome"].astype(str).tolist() == ["fp"]


def test_iou_tie_takes_the_later_box_like_coco():
    # the prediction overlaps two boxes equally; COCO keeps the later one, so the second
    # prediction (which only overlaps the first box) is then a tp too
    b = pd.DataFrame([box("a", "x", 0, 0, 10, 10), box("a", "x", 10, 0, 10, 10)])
    p = pd.DataFrame([pred("a", "x", 5, 0, 10, 10, 0.9), pred("a", "x", 0, 0, 9, 10, 0.8)])
    m = match_detections({"boxes": b, "predictions": p}, iou=0.3)
    assert m.set_index("box_id")["pred_id"].to_dict() == {"a/b0": "a/r/p1", "a/b1": "a/r/p0"}


def test_metrics_from_a_matches_frame():
    boxes, preds, classes, items = random_data(2, ties=False)
    fr = frames(boxes, preds, classes, items)
    full = detection_metrics(fr)
    m = match_detections(fr)
    part = detection_metrics(m)
    cols = ["class", "precision", "recall", "n_tp", "n_fp", "n_fn", "n_wrong_class",
            "n_mislocated", "n_duplicate", "n_boxes", "n_predictions"]
    pd.testing.assert_frame_equal(part[cols], full[cols])
    np.testing.assert_allclose(part["ap50"], full["ap50"], atol=1e-12)
    assert part["ap"].isna().all()


def test_several_runs_and_box_metadata():
    boxes, preds, classes, items = random_data(4, n_images=40)
    boxes["occluded"] = np.arange(len(boxes)) % 2 == 0
    p2 = preds.assign(run="s", confidence=preds["confidence"][::-1].to_numpy())
    both = pd.concat([preds, p2], ignore_index=True)
    m = match_detections(frames(boxes, both, classes))
    assert set(m["run"]) == {"r", "s"} and "occluded" in m.columns
    assert (m["box_id"].notna() == m["occluded"].notna()).all()
    met = detection_metrics(frames(boxes, both, classes), by="occluded")
    assert list(met.columns[:3]) == ["run", "occluded", "class"]
    r = met[(met["run"] == "r")]
    # every reference box is in one slice
    assert r.loc[r["class"] == "all", "n_boxes"].sum() == (~boxes["iscrowd"]).sum()


def test_no_predictions_no_boxes_and_no_run_column():
    b = pd.DataFrame([box("a", "x", 0, 0, 10, 10)])
    p = pd.DataFrame([pred("a", "x", 0, 0, 10, 10, 0.5)])
    m = match_detections({"boxes": b, "predictions": p.iloc[:0]})
    assert m["outcome"].astype(str).tolist() == ["fn"]
    met = detection_metrics({"boxes": b, "predictions": p.iloc[:0]})
    assert met.iloc[0]["ap"] == 0 and met.iloc[0]["recall"] == 0
    m = match_detections({"boxes": b.iloc[:0], "predictions": p})
    assert m["outcome"].astype(str).tolist() == ["fp"]
    met = detection_metrics({"boxes": b.iloc[:0], "predictions": p})
    assert np.isnan(met.iloc[0]["ap"]) and met.iloc[0]["n_fp"] == 1
    m = match_detections({"boxes": b, "predictions": p.drop(columns="run")})
    assert m["pred_id"].tolist() == ["a/p0"] and m["outcome"].astype(str).tolist() == ["tp"]


def test_bad_input_messages():
    b = pd.DataFrame([box("a", "x", 0, 0, 10, 10)])
    p = pd.DataFrame([pred("a", "x", 0, 0, 10, 10, 1.5)])
    with pytest.raises(SchemaError, match=r"'confidence' is not in \[0, 1\]"):
        match_detections({"boxes": b, "predictions": p})
    with pytest.raises(SchemaError, match="'w' is not a positive number"):
        match_detections({"boxes": b.assign(w=0), "predictions": p.assign(confidence=.5)})
    with pytest.raises(SchemaError, match="missing the column"):
        match_detections({"boxes": b.drop(columns="h"), "predictions": p})
    with pytest.raises(SchemaError, match=r"item_id\(s\) \['zz'\] that are not in items"):
        match_detections({"boxes": b, "predictions": p.assign(item_id="zz", confidence=.5),
                          "items": pd.DataFrame({"item_id": ["a"]})})
    with pytest.raises(ValueError, match="'reference' parameter of match_detections"):
        match_detections({"boxes": b, "predictions": p}, reference="alice")
    with pytest.raises(ValueError, match="'run' parameter"):
        match_detections({"boxes": b, "predictions": p.assign(confidence=.5)}, run="nope")
    with pytest.raises(ValueError, match="needs a detection project"):
        match_detections(SimpleNamespace(task="classification", boxes=b, predictions=p))
    with pytest.raises(TypeError, match="single DataFrame"):
        match_detections(b)
    with pytest.raises(SchemaError, match="neither item metadata"):
        detection_metrics({"boxes": b, "predictions": p.assign(confidence=.5)}, by="camera")
    items = pd.DataFrame({"item_id": ["a"], "class": ["indoor"]})  # a metadata column 'class'
    with pytest.raises(ValueError, match=r"'by' parameter of detection_metrics names "
                                         r"\['class'\], which are columns of its output"):
        detection_metrics({"boxes": b, "predictions": p.assign(confidence=.5),
                           "items": items}, by="class")


def test_exported_from_the_package():
    assert wb.match_detections is match_detections
    assert wb.detection_metrics is detection_metrics
    assert {"match_detections", "detection_metrics"} <= set(wb.__all__)
