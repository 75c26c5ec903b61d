"""A detection project in FiftyOne: Detections fields, eval attributes, re-sync, box views.

A hand-made project (5 images, every outcome of ``match_detections`` planted) is synced into
the private test mongod (see ``conftest.py``); one test syncs the detection sample too.
The App is never launched: ``open_in_fiftyone`` and the button run against a stand-in
session whose ``view`` they set.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.fiftyone

REPO = Path(__file__).resolve().parents[2]
SIZES = {"a": (100, 80), "b": (64, 48), "c": (120, 90), "d": (80, 80), "e": (None, None)}


def _frames():
    items = pd.DataFrame({
        "item_id": list(SIZES),
        "filepath": [f"images/{i}.png" for i in SIZES],
        "width": pd.array([w for w, _ in SIZES.values()], dtype="Int64"),
        "height": pd.array([h for _, h in SIZES.values()], dtype="Int64"),
        "camera": ["c1", "c2", "c1", "c2", "c1"],
        "tags": ["x"] * 5,  # an image metadata column named like a FiftyOne field
    })
    boxes = pd.DataFrame([
        ("a", "cat", 10, 10, 20, 20, False, False),
        ("a", "dog", 50, 40, 30, 30, False, True),
        ("a", "cat", 0, 60, 40, 20, True, False),   # crowd: no outcome, as in COCO
        ("b", "cat", 5.5, 5.25, 10, 10, False, False),
        ("d", "dog", 20, 20, 40, 40, False, False),
        ("e", "cat", 1, 1, 5, 5, False, False),      # on an image of unknown size
    ], columns=["item_id", "label", "x", "y", "w", "h", "iscrowd", "occluded"])
    preds = pd.DataFrame([
        ("a", "base", "cat", 10, 10, 20, 20, 0.9),   # tp
        ("a", "base", "cat", 11, 11, 20, 20, 0.8),   # duplicate
        ("a", "base", "cat", 50, 40, 30, 30, 0.7),   # wrong_class (the dog)
        ("c", "base", "dog", 10, 10, 10, 10, 0.6),   # fp on the negative image
        ("d", "base", "dog", 28, 28, 40, 40, 0.5),   # mislocated (IoU 0.47)
        ("a", "new run", "cat", 10, 10, 20, 20, 0.95),
        ("b", "new run", "cat", 5.5, 5.25, 10, 10, 0.9),
    ], columns=["item_id", "run", "label", "x", "y", "w", "h", "confidence"])
    ann = pd.DataFrame([
        ("a", "ann-1", "cat", 9, 9, 20, 20, "2026-01-02T10:00:00Z"),
        ("b", "ann-1", "cat", 5, 5, 10, 10, "2026-01-02T10:05:00Z"),
        ("d", "bo", "dog", 20, 20, 40, 40, "2026-01-03T09:00:00Z"),
    ], columns=["item_id", "annotator", "label", "x", "y", "w", "h", "annotated_at"])
    ann["annotated_at"] = pd.to_datetime(ann["annotated_at"])
    return items, boxes, ann, preds


def _project(root: Path, name: str, *, boxes=None, preds=None, items=None):
    import workbench as wb

    f_items, f_boxes, f_ann, f_preds = _frames()
    return wb.Project.from_frames(
        items=f_items if items is None else items, annotations=f_ann,
        predictions=f_preds if preds is None else preds,
        boxes=f_boxes if boxes is None else boxes, classes=["cat", "dog"], name=name,
        root=root)


@pytest.fixture
def det_project(tmp_path):
    from PIL import Image

    root = tmp_path / "det"
    for item_id, (w, h) in SIZES.items():
        if w is not None:
            (root / "images").mkdir(parents=True, exist_ok=True)
            Image.new("L", (w, h), 128).save(root / "images" / f"{item_id}.png")
    project = _project(root, f"det-{uuid.uuid4().hex[:8]}")
    assert project.task == "detection"
    return project


def _dets(ds, field: str) -> dict[str, list]:
    """``{item_id: [Detection, ...] or None}`` of a Detections field."""
    ds.reload()
    return {i: None if v is None else list(v.detections)
            for i, v in zip(ds.values("item_id"), ds.values(field), strict=True)}


def _check_boxes(dets: dict, frame: pd.DataFrame, id_col: str, sizes: dict) -> int:
    """The Detections hold exactly the frame's boxes, their pixels round back within 1e-9."""
    n = 0
    for item_id, group in frame.groupby("item_id", sort=False):
        got = {d[id_col]: d for d in dets[item_id]}
        assert sorted(got) == sorted(group[id_col])
        w, h = sizes[item_id]
        for row in group.itertuples(index=False):
            det = got[getattr(row, id_col)]
            x, y, bw, bh = det.bounding_box
            assert np.allclose([x * w, y * h, bw * w, bh * h], [row.x, row.y, row.w, row.h],
                               rtol=0, atol=1e-9)
            assert det.label == row.label
            n += 1
    return n


def _attr(det, name: str):
    """An attribute of a Detection, None when it has none (FiftyOne raises instead)."""
    return det[name] if det.has_field(name) else None


def _check_eval(dets_gt: dict, dets_pred: dict, matches: pd.DataFrame, key: str) -> None:
    """``eval_<run>`` attributes equal the outcomes of match_detections, box by box."""
    gt = {d.box_id: d for ds in dets_gt.values() for d in ds or ()}
    pr = {d.pred_id: d for ds in dets_pred.values() for d in ds or ()}
    seen_gt, seen_pr = set(), set()
    for row in matches.itertuples(index=False):
        for ident, table, seen, partner in ((row.box_id, gt, seen_gt, row.pred_id),
                                            (row.pred_id, pr, seen_pr, row.box_id)):
            if pd.isna(ident):
                continue
            det = table[ident]
            seen.add(ident)
            assert det[key] == row.outcome
            if np.isnan(row.iou):
                assert _attr(det, f"{key}_iou") is None
            else:
                assert det[f"{key}_iou"] == pytest.approx(row.iou, abs=1e-12)
            assert _attr(det, f"{key}_match") == (None if pd.isna(partner) else partner)
    # boxes the matching leaves out (crowd boxes) carry no outcome
    for ident, det in [*gt.items(), *pr.items()]:
        if ident not in seen_gt | seen_pr:
            assert _attr(det, key) is None


def test_sync_writes_detections_in_relative_coordinates_with_outcomes(fo, det_project, ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    stats = fb.sync_project(det_project, name=ds_name)
    ds = stats.dataset
    assert (stats.added, stats.writer) == (5, "bulk")
    assert any("1 image(s) without a known width/height" in s and "'e'" in s
               for s in stats.skipped)
    sizes = {k: v for k, v in SIZES.items() if v[0] is not None}
    info = ds.info["workbench"]
    assert info["task"] == "detection" and info["iou"] == 0.5
    assert info["eval_keys"] == {"base": "eval_base", "new run": "eval_new_run"}
    assert {f: s["source"] for f, s in info["label_fields"].items()} == {
        "ground_truth": "boxes", "pred_base": "predictions", "pred_new_run": "predictions",
        "ann_ann_1": "annotations", "ann_bo": "annotations"}

    # reference boxes: one Detection per box, attributes box_id, iscrowd, box metadata
    gt = _dets(ds, "ground_truth")
    assert gt["c"] == [] and gt["e"] is None  # a negative image; an image of unknown size
    known = det_project.boxes[det_project.boxes["item_id"] != "e"]
    assert _check_boxes(gt, known, "box_id", sizes) == 5
    crowd = next(d for d in gt["a"] if d.box_id == "a/b2")
    assert crowd.iscrowd is True and crowd.occluded is False
    assert next(d for d in gt["a"] if d.box_id == "a/b1").occluded is True

    # one field per run (confidence, pred_id) and per annotator (box_id, annotated_at)
    for run, field in (("base", "pred_base"), ("new run", "pred_new_run")):
        preds = det_project.predictions[det_project.predictions["run"] == run]
        dets = _dets(ds, field)
        assert _check_boxes(dets, preds, "pred_id", sizes) == len(preds)
        assert all(dets[i] == [] for i in sizes if i not in set(preds["item_id"]))
        conf = {d.pred_id: d.confidence for v in dets.values() for d in v or ()}
        assert conf == dict(zip(preds["pred_id"], preds["confidence"], strict=True))
    for annotator, field in (("ann-1", "ann_ann_1"), ("bo", "ann_bo")):
        ann = det_project.annotations[det_project.annotations["annotator"] == annotator]
        dets = _dets(ds, field)
        assert _check_boxes(dets, ann, "box_id", sizes) == len(ann)
        assert all(dets[i] is None for i in sizes if i not in set(ann["item_id"]))
    first = _dets(ds, "ann_ann_1")["a"][0]
    assert first.annotated_at == pd.Timestamp("2026-01-02T10:00:00").to_pydatetime()

    # outcomes: exactly match_detections' at IoU 0.5, stored as FiftyOne's eval fields are
    for run, key in info["eval_keys"].items():
        m = wb.match_detections(det_project, run, iou=0.5)
        m = m[m["item_id"] != "e"]
        _check_eval(gt, _dets(ds, f"pred_{key[5:]}"), m, key)
        counts = pd.DataFrame({"item_id": m["item_id"], "tp": m["outcome"] == "tp",
                               "fp": m["is_fp"], "fn": m["is_fn"]}).groupby("item_id").sum()
        for what in ("tp", "fp", "fn"):
            got = dict(zip(ds.values("item_id"), ds.values(f"{key}_{what}"), strict=True))
            want = {i: int(counts[what].get(i, 0)) for i in sizes}
            assert {i: got[i] for i in sizes} == want
    base = wb.match_detections(det_project, "base")
    assert set(base["outcome"].astype(str)) == {"tp", "fp", "fn", "wrong_class", "mislocated",
                                                "duplicate"}  # every outcome is planted
    assert ds.count_values("ground_truth.detections.eval_base") == {
        "tp": 1, "wrong_class": 1, "fn": 1, "mislocated": 1, None: 1}  # None: the crowd box
    assert ds.count_values("pred_base.detections.eval_base") == {
        "tp": 1, "duplicate": 1, "wrong_class": 1, "fp": 1, "mislocated": 1}

    # image fields as for classification, the image size in FiftyOne's metadata
    samples = {s.item_id: s for s in ds}
    assert samples["a"].camera == "c1" and samples["a"].meta_tags == "x"
    assert (samples["b"].metadata.width, samples["b"].metadata.height) == (64, 48)
    assert samples["e"].metadata is None
    # FiftyOne's own expressions work on the fields (relative boxes times metadata)
    from fiftyone import ViewField as F

    area = F("bounding_box")[2] * F("$metadata.width") * F("bounding_box")[3] * F(
        "$metadata.height")
    big = ds.filter_labels("ground_truth", area > 500)
    assert sorted(big.values("ground_truth.detections.box_id", unwind=True)) == [
        "a/b1", "a/b2", "d/b0"]


def _values(ds) -> dict:
    """Every field's values by item_id, without FiftyOne's ids and times."""
    skip = {"id", "created_at", "last_modified_at"}
    out = {}
    for field in sorted(set(ds.get_field_schema(flat=True)) - skip):
        if field.endswith(".id") or "." in field:
            continue
        out[field] = dict(zip(ds.values("item_id"), map(_plain, ds.values(field)),
                              strict=True))
    return out


def _plain(value):
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in ("_id", "id")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_public_path_writes_the_same_dataset_as_the_bulk_writer(fo, det_project, ds_name):
    import workbench.fiftyone_bridge as fb

    other = ds_name + "-api"
    try:
        bulk = fb.sync_project(det_project, name=ds_name)
        api = fb.sync_project(det_project, name=other, fast=False)
        assert (bulk.writer, api.writer) == ("bulk", "api")
        assert _values(bulk.dataset) == _values(api.dataset)
        schema_bulk = {k: type(v).__name__
                       for k, v in bulk.dataset.get_field_schema(flat=True).items()}
        schema_api = {k: type(v).__name__
                      for k, v in api.dataset.get_field_schema(flat=True).items()}
        assert schema_bulk == schema_api
        assert "ground_truth.detections.eval_base_iou" in schema_bulk
        # the raw documents have the keys and types FiftyOne's add_samples writes
        raw_b = {d["item_id"]: d for d in bulk.dataset._sample_collection.find({})}
        raw_a = {d["item_id"]: d for d in api.dataset._sample_collection.find({})}
        for item_id in SIZES:
            for field in ("ground_truth", "pred_base", "ann_ann_1", "metadata"):
                assert _shape(raw_b[item_id].get(field)) == _shape(raw_a[item_id].get(field))
    finally:
        if fo.dataset_exists(other):
            fo.delete_dataset(other)


def test_second_sync_is_a_noop_and_changes_update_only_their_images(fo, det_project,
                                                                     ds_name):
    import workbench.fiftyone_bridge as fb

    first = fb.sync_project(det_project, name=ds_name)
    ds = first.dataset
    n_dets = ds.count("ground_truth.detections") + ds.count("pred_base.detections")
    again = fb.sync_project(det_project, name=ds_name)
    assert again.inputs_unchanged and not again.wrote
    assert (len(ds), ds.count("ground_truth.detections") + ds.count("pred_base.detections")
            ) == (5, n_dets)
    # the same inputs recomputed (new project object, fingerprint forced to differ): no write
    ds.info["workbench"]["input_fingerprint"] = "stale"
    ds.save()
    recomputed = fb.sync_project(_project(det_project.root, det_project.name), name=ds_name)
    assert not recomputed.inputs_unchanged
    assert (recomputed.added, recomputed.updated, recomputed.unchanged) == (0, 0, 5)

    # a loosened box on image d and a new detection on image b: those two images only
    items, boxes, _, preds = _frames()
    boxes.loc[boxes["item_id"] == "d", "w"] = 44
    preds = pd.concat([preds, pd.DataFrame([("b", "base", "dog", 30, 30, 10, 10, 0.4)],
                                           columns=preds.columns)], ignore_index=True)
    changed = _project(det_project.root, det_project.name, boxes=boxes, preds=preds)
    before = dict(zip(ds.values("item_id"), ds.values("last_modified_at"), strict=True))
    stats = fb.sync_project(changed, name=ds_name)
    assert (stats.added, stats.updated, stats.deleted, stats.unchanged) == (0, 2, 0, 3)
    after = dict(zip(ds.values("item_id"), ds.values("last_modified_at"), strict=True))
    assert sorted(i for i in after if after[i] != before[i]) == ["b", "d"]
    d_box = _dets(ds, "ground_truth")["d"][0]
    assert d_box.bounding_box[2] * 80 == pytest.approx(44, abs=1e-9)
    assert [d.pred_id for d in _dets(ds, "pred_base")["b"]] == ["b/base/p0"]
    assert len(ds) == 5 and ds.count("pred_base.detections") == 6

    # a run removed from the predictions: its fields go, nothing else is touched
    only_base = preds[preds["run"] == "base"]
    dropped = fb.sync_project(_project(det_project.root, det_project.name, boxes=boxes,
                                       preds=only_base), name=ds_name)
    assert set(dropped.fields_dropped) == {
        "pred_new_run", "eval_new_run_tp", "eval_new_run_fp", "eval_new_run_fn",
        "ground_truth.detections.eval_new_run", "ground_truth.detections.eval_new_run_iou",
        "ground_truth.detections.eval_new_run_match"}
    schema = ds.get_field_schema(flat=True)
    assert not [f for f in schema if "new_run" in f]
    assert "ground_truth.detections.eval_base" in schema
    # the set of fields changed, so every sample's hash did: all rewritten, none added
    assert (dropped.updated, dropped.added, len(ds)) == (5, 0, 5)
    assert "eval_new_run" not in dropped.dataset.info["workbench"]["eval_keys"].values()


def test_view_of_an_object_level_selection_has_exactly_the_selected_boxes(fo, det_project,
                                                                          ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb
    from workbench.detection.fiftyone import box_view
    from workbench.errors import WorkbenchError

    ds = fb.sync_project(det_project, name=ds_name).dataset
    chosen = ["a/b1", "a/base/p2", "d/bo/a0", "c/base/p0"]
    view, ids = box_view(ds, det_project, None, chosen)
    assert ids == ["a", "c", "d"] and sorted(view.values("item_id")) == ids
    shown = {f: sorted(view.values(f"{f}.detections.{attr}", unwind=True))
             for f, attr in (("ground_truth", "box_id"), ("pred_base", "pred_id"),
                             ("pred_new_run", "pred_id"), ("ann_ann_1", "box_id"),
                             ("ann_bo", "box_id"))}
    assert shown == {"ground_truth": ["a/b1"], "pred_base": ["a/base/p2", "c/base/p0"],
                     "pred_new_run": [], "ann_ann_1": [], "ann_bo": ["d/bo/a0"]}
    assert ds.count("ground_truth.detections") == 5  # the dataset itself is not changed

    # given images: those images, still only the selected boxes
    view, ids = box_view(ds, det_project, ["a", "b"], ["a/b0"])
    assert sorted(view.values("item_id")) == ["a", "b"]
    assert view.values("ground_truth.detections.box_id", unwind=True) == ["a/b0"]

    with pytest.raises(WorkbenchError, match=r"2 box id\(s\) are not boxes.*\['nope', "
                                             r"'x/b9'\]"):
        box_view(ds, det_project, None, ["a/b0", "nope", "x/b9"])
    with pytest.raises(TypeError, match="'box_ids' parameter of open_in_fiftyone must be a "
                                        "sequence of box ids"):
        wb.open_in_fiftyone(["a"], det_project, box_ids="a/b0")


class _Session:
    """Stands in for the App session: holds the dataset and the view set on it."""

    def __init__(self, dataset):
        self.dataset, self.view, self.url = dataset, None, "http://127.0.0.1:1/"

    def show(self):  # pragma: no cover - the button runs in link mode here
        raise AssertionError("not shown inline")


def test_open_in_fiftyone_and_the_button_filter_the_selected_boxes(fo, det_project, ds_name,
                                                                   tiny_project, monkeypatch):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    ds = fb.sync_project(det_project, name=ds_name).dataset
    fake = _Session(ds)
    opened = []
    monkeypatch.setattr(fb, "fiftyone_session",
                        lambda project, **kw: opened.append(project) or fake)

    sel = wb.Selection()
    sel.select(["a", "d"], box_ids=["a/b0", "d/base/p0"], source="test")
    session = wb.open_in_fiftyone(sel, det_project, name=ds_name)
    assert session is fake and opened == [det_project]
    assert sorted(fake.view.values("item_id")) == ["a", "d"]
    assert fake.view.values("ground_truth.detections.box_id", unwind=True) == ["a/b0"]
    assert fake.view.values("pred_base.detections.pred_id", unwind=True) == ["d/base/p0"]

    # explicit box ids without item ids: the images of the boxes
    wb.open_in_fiftyone(None, det_project, box_ids=["b/b0"], name=ds_name)
    assert fake.view.values("item_id") == ["b"]
    assert fake.view.count("ground_truth.detections") == 1
    assert fake.view.count("pred_new_run.detections") == 0
    # an item-level selection: every box of those images
    sel.select(["a"], source="test")
    wb.open_in_fiftyone(sel, det_project, name=ds_name)
    assert fake.view.count("ground_truth.detections") == 3

    # the button passes the Selection's box ids
    button = wb.widgets.FiftyOneButton(det_project, sel, display="link", name=ds_name)
    button.raise_errors = True
    sel.select(["a"], box_ids=["a/b1", "a/base/p1"], source="test")
    assert "1 selected item(s) with 2 selected box(es)" in button.status.value
    button.open_app()
    assert button.n_open == 1
    assert fake.view.values("ground_truth.detections.box_id", unwind=True) == ["a/b1"]
    assert fake.view.values("pred_base.detections.pred_id", unwind=True) == ["a/base/p1"]

    with pytest.raises(ValueError, match="'box_ids' parameter of open_in_fiftyone is for "
                                         "detection projects"):
        wb.open_in_fiftyone(["i01"], tiny_project, box_ids=["i01/b0"])


def test_tags_sync_both_ways_on_a_detection_project(fo, det_project, ds_name):
    import workbench as wb
    from workbench.tags import TagStore

    store = TagStore.for_project(det_project)
    store.add(["a"], "blurry", author="alice")
    ds = wb.to_fiftyone(det_project, name=ds_name)
    assert dict(zip(ds.values("item_id"), ds.values("tags"), strict=True))["a"] == ["blurry"]
    ds.select_by("item_id", ["c", "d"]).tag_samples("missed-box")  # as the App does
    stats = wb.sync_tags_from_fiftyone(det_project, author="bob", name=ds_name)
    assert (stats.store_added, stats.store_removed, stats.items) == (2, 0, 5)
    assert store.items_with("missed-box") == ["c", "d"]
    assert not wb.sync_tags_from_fiftyone(det_project, author="bob", name=ds_name).wrote
    assert not wb.fiftyone_bridge.sync_project(det_project, name=ds_name).wrote


@pytest.fixture(scope="module")
def detection_sample(tmp_path_factory):
    """A private copy of data/sample-detection (so the sync's state file stays out of it)."""
    import workbench as wb

    src = REPO / "data" / "sample-detection"
    if not (src / "items.csv").exists():
        pytest.skip("data/sample-detection is not built (make data)")
    dest = tmp_path_factory.mktemp("detsample") / "sample-detection"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".workbench*", "*.db",
                                                             "*.sqlite*", "tags*"))
    project = wb.open_project(dest)
    project.name = f"detsample-{uuid.uuid4().hex[:8]}"
    return project


def test_the_detection_sample_syncs_every_box_and_outcome(fo, detection_sample, ds_name):
    import workbench as wb

    project = detection_sample
    ds = wb.to_fiftyone(project, name=ds_name)
    assert len(ds) == len(project.items)
    ds_ids = ds.values("item_id")
    for field, frame, id_attr in (("ground_truth", project.boxes, "box_id"),
                                  ("pred_baseline", project.predictions[
                                      project.predictions["run"] == "baseline"], "pred_id"),
                                  ("ann_ana", project.annotations[
                                      project.annotations["annotator"] == "ana"], "box_id")):
        per_sample = dict(zip(ds_ids, ds.values(f"{field}.detections.{id_attr}"), strict=True))
        want = frame.groupby("item_id")[id_attr].apply(sorted).to_dict()
        assert {i: sorted(v or []) for i, v in per_sample.items() if v} == want
    m = wb.match_detections(project, "candidate")
    got = dict(zip(ds.values("ground_truth.detections.box_id", unwind=True),
                   ds.values("ground_truth.detections.eval_candidate", unwind=True),
                   strict=True))
    ref = m[m["box_id"].notna()]
    assert {b: got[b] for b in ref["box_id"]} == dict(
        zip(ref["box_id"], ref["outcome"].astype(str), strict=True))
    got = dict(zip(ds.values("pred_candidate.detections.pred_id", unwind=True),
                   ds.values("pred_candidate.detections.eval_candidate", unwind=True),
                   strict=True))
    pred = m[m["pred_id"].notna()]
    assert {p: got[p] for p in pred["pred_id"]} == dict(
        zip(pred["pred_id"], pred["outcome"].astype(str), strict=True))
    assert sum(ds.values("eval_candidate_fn")) == int(m["is_fn"].sum())
    again = wb.fiftyone_bridge.sync_project(project, name=ds_name)
    assert again.inputs_unchanged and not again.wrote and len(ds) == len(project.items)


def test_iou_threshold_names_and_projects_without_predictions(fo, det_project, ds_name,
                                                               tmp_path):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    with pytest.raises(ValueError, match=r"The 'iou' parameter of sync_project must be a "
                                         r"float in the range \[0.0, 1.0\]. Got 1.5"):
        fb.sync_project(det_project, name=ds_name, iou=1.5)
    ds = fb.sync_project(det_project, name=ds_name).dataset
    # another threshold: only the image whose outcome changes (d: IoU 0.47) is rewritten
    stats = fb.sync_project(det_project, name=ds_name, iou=0.4)
    assert (stats.updated, stats.unchanged) == (1, 4)
    assert ds.info["workbench"]["iou"] == 0.4
    assert _dets(ds, "ground_truth")["d"][0].eval_base == "tp"

    # runs whose field names collide, metadata named like a workbench field; boxes only
    items, boxes, _, preds = _frames()
    items = items.rename(columns={"tags": "eval_a_b_tp"})
    preds = preds.assign(run=preds["run"].map({"base": "a b", "new run": "a_b"}))
    project = wb.Project.from_frames(items=items, boxes=boxes, predictions=preds,
                                     name=f"names-{uuid.uuid4().hex[:6]}", root=tmp_path)
    other = ds_name + "-names"
    try:
        info = fb.sync_project(project, name=other).dataset.info["workbench"]
        assert info["eval_keys"] == {"a b": "eval_a_b", "a_b": "eval_a_b_"}
        assert [f for f, s in info["label_fields"].items() if s["source"] == "predictions"
                ] == ["pred_a_b", "pred_a_b_"]
        assert "meta_eval_a_b_tp" in info["fields"] and "eval_a_b_tp" in info["fields"]
        only_boxes = wb.Project.from_frames(items=items, boxes=boxes,
                                            name=f"boxes-{uuid.uuid4().hex[:6]}",
                                            root=tmp_path)
        ds = fb.sync_project(only_boxes, name=other, overwrite=True).dataset
        assert set(ds.info["workbench"]["label_fields"]) == {"ground_truth"}
        assert ds.count("ground_truth.detections") == 5 and not ds.has_sample_field(
            "pred_a_b")
    finally:
        if fo.dataset_exists(other):
            fo.delete_dataset(other)


def test_boxes_selected_in_the_app_become_the_selection_box_ids(fo, det_project, ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    ds = fb.sync_project(det_project, name=ds_name).dataset
    sample_of = dict(zip(ds.values("item_id"), ds.values("id"), strict=True))

    def label(field, item_id, attr, value):  # a row of session.selected_labels
        dets = _dets(ds, field)[item_id]
        det = next(d for d in dets if d[attr] == value)
        return {"label_id": det.id, "sample_id": sample_of[item_id], "field": field,
                "frame_number": None}

    fake = _Session(ds)
    fake.selected = [sample_of["c"]]
    fake.selected_labels = [label("ground_truth", "a", "box_id", "a/b1"),
                            label("pred_base", "d", "pred_id", "d/base/p0"),
                            {"label_id": "0" * 24, "sample_id": sample_of["b"],
                             "field": "not_ours", "frame_number": None}]
    sel = wb.Selection()
    ids = fb.selection_from_fiftyone(sel, session=fake)
    assert ids == ["a", "c", "d"] and sel.ids == ("a", "c", "d")
    assert sel.box_ids == ("a/b1", "d/base/p0")
    assert sel.description == "3 selected in FiftyOne (2 boxes)"
    fake.selected_labels = []
    fb.selection_from_fiftyone(sel, session=fake)
    assert (sel.ids, sel.box_ids) == (("c",), None)
