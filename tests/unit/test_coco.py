"""COCO import and export: lossless round trips, images_root, and the bad-input messages."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import workbench as wb
from workbench.errors import SchemaError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"

INSTANCES = {
    "info": {"year": 2026, "description": "tiny", "contributor": None},
    "licenses": [{"id": 4, "name": "CC BY", "url": "http://example.org"}],
    "images": [
        {"id": 397133, "file_name": "val/été à Köln.jpg", "width": 640, "height": 427,
         "license": 4, "coco_url": "http://x/1.jpg", "date_captured": "2013-11-14 17:02:52"},
        {"id": 37777, "file_name": "val/b.jpg", "width": 352, "height": 230, "license": None},
        {"id": 5, "file_name": "val/empty.jpg", "width": 64, "height": 48},  # no annotations
    ],
    "annotations": [
        {"id": 1768, "image_id": 397133, "category_id": 18, "bbox": [388.66, 69.92, 109.41, 277.62],
         "area": 17376.91885, "iscrowd": 0,
         "segmentation": [[400.1, 70.5, 490.0, 70.5, 490.0, 340.0, 400.1, 340.0]]},
        {"id": 900100397133, "image_id": 397133, "category_id": 1,
         "bbox": [0, 0, 640, 300], "area": 120000, "iscrowd": 1,
         "segmentation": {"counts": "ab[]cd:;<=", "size": [427, 640]}},
        {"id": 3, "image_id": 37777, "category_id": 18, "bbox": [10.5, 20, 30, 40.25],
         "area": 1207.5, "iscrowd": 0, "segmentation": [],
         "attributes": {"occluded": True, "note": "naïve"}},
        {"id": 4, "image_id": 37777, "category_id": 90, "bbox": [1, 2, 3, 4], "area": 12,
         "iscrowd": 0, "segmentation": [[1, 2, 4, 2, 4, 6]]},
    ],
    "categories": [
        {"id": 18, "name": "dog", "supercategory": "animal"},
        {"id": 1, "name": "person", "supercategory": "person"},
        {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
        {"id": 44, "name": "bottle", "supercategory": "kitchen"},  # no boxes at all
    ],
}
RESULTS = [
    {"image_id": 397133, "category_id": 18, "bbox": [390.0, 70.1, 105.3, 270.0], "score": 0.93},
    {"image_id": 37777, "category_id": 44, "bbox": [1.5, 2.5, 3.5, 4.5], "score": 0.051},
    {"image_id": 397133, "category_id": 1, "bbox": [5, 5, 100, 100], "score": 1},
]


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def coco(tmp_path):
    return (write_json(tmp_path / "instances.json", INSTANCES),
            write_json(tmp_path / "results.json", RESULTS))


def imported(tmp_path, instances, **kw):
    return wb.import_coco(instances, tmp_path / "project", **kw)


# ---- import ---------------------------------------------------------------------------


def test_import_maps_images_categories_annotations_and_results(tmp_path, coco):
    instances, results = coco
    project = imported(tmp_path, instances, predictions={"detr": results})
    assert project.task == "detection"
    assert project.classes == ["person", "dog", "bottle", "toothbrush"]  # category id order
    assert project.info["coco"]["category_ids"] == {"person": 1, "dog": 18, "toothbrush": 90,
                                                    "bottle": 44}
    assert project.items["item_id"].tolist() == ["397133", "37777", "5"]
    assert project.items["filepath"].tolist()[0] == "val/été à Köln.jpg"
    assert project.items["width"].tolist() == [640, 352, 64]
    assert project.boxes["box_id"].tolist() == ["1768", "900100397133", "3", "4"]
    assert project.boxes["label"].tolist() == ["dog", "person", "dog", "toothbrush"]
    assert project.boxes["iscrowd"].tolist() == [False, True, False, False]
    assert project.boxes.loc[0, ["x", "y", "w", "h"]].tolist() == [388.66, 69.92, 109.41, 277.62]
    assert "area" in project.box_metadata_columns
    assert json.loads(project.boxes.loc[1, "segmentation"]) == {"counts": "ab[]cd:;<=",
                                                                "size": [427, 640]}
    assert project.runs == ["detr"]
    pred = project.predictions
    assert pred["pred_id"].tolist() == ["397133/detr/p0", "37777/detr/p0", "397133/detr/p1"]
    assert pred["confidence"].tolist() == [0.93, 0.051, 1.0]
    assert pred["label"].tolist() == ["dog", "bottle", "person"]


def test_import_writes_a_project_that_opens_to_the_same_frames(tmp_path, coco):
    instances, results = coco
    project = imported(tmp_path, instances, predictions={"detr": results}, name="tiny")
    again = wb.open_project(tmp_path / "project")
    assert again.name == "tiny" and again.classes == project.classes
    assert again.info["coco"] == project.info["coco"]
    for kind in ("items", "boxes", "annotations", "predictions"):
        pd.testing.assert_frame_equal(getattr(project, kind), getattr(again, kind))
    assert wb.validate_project(tmp_path / "project", check_media=False) == []


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip_instances_and_results_are_the_same_json(tmp_path, coco, fmt):
    instances, results = coco
    imported(tmp_path, instances, predictions={"detr": results}, format=fmt)
    project = wb.open_project(tmp_path / "project")  # from disk: nothing kept in memory
    out = wb.export_coco(project, tmp_path / "out.json")
    assert json.loads(out.read_text(encoding="utf-8")) == INSTANCES
    out = wb.export_coco(tmp_path / "project", tmp_path / "res.json", source="detr")
    assert json.loads(out.read_text(encoding="utf-8")) == RESULTS


def test_round_trip_keeps_explicit_null_apart_from_an_absent_key(tmp_path):
    data = copy.deepcopy(INSTANCES)
    data["images"][2]["flickr_url"] = None  # explicit null; the other images lack the key
    data["annotations"][0]["score_hint"] = 3
    project = imported(tmp_path, write_json(tmp_path / "i.json", data))
    out = wb.export_coco(project, tmp_path / "out.json")
    back = json.loads(out.read_text(encoding="utf-8"))
    assert back == data
    assert "flickr_url" not in back["images"][0] and back["images"][2]["flickr_url"] is None


def test_round_trip_string_ids_and_clashing_keys(tmp_path):
    data = {"images": [{"id": "a7", "file_name": "a.jpg", "width": 10, "height": 10,
                        "label": "outdoor"}],
            "annotations": [{"id": "x1", "image_id": "a7", "category_id": 2,
                             "bbox": [1, 1, 2, 2], "iscrowd": 0, "area": 4.0, "x": "extra"}],
            "categories": [{"id": 2, "name": "cat"}]}
    project = imported(tmp_path, write_json(tmp_path / "i.json", data))
    assert project.items["item_id"].tolist() == ["a7"] and "coco_label" in project.items
    assert "coco_x" in project.boxes.columns
    out = wb.export_coco(wb.open_project(tmp_path / "project"), tmp_path / "out.json")
    assert json.loads(out.read_text(encoding="utf-8")) == data


def test_import_many_runs_and_an_empty_results_file(tmp_path, coco):
    instances, results = coco
    empty = write_json(tmp_path / "empty.json", [])
    project = imported(tmp_path, instances, predictions={"a": results, "b": results,
                                                         "none": empty})
    assert project.runs == ["a", "b"] and len(project.predictions) == 6
    assert project.predictions["pred_id"].is_unique


def test_images_root_inside_the_project_becomes_image_root(tmp_path, coco):
    instances, _ = coco
    root = tmp_path / "project"
    Image.new("RGB", (352, 230)).save(_mkdir(root / "media" / "val") / "b.jpg")
    project = wb.import_coco(instances, root, images_root=root / "media")
    assert project.image_root == "media"
    assert 'image_root = "media"' in (root / "workbench.toml").read_text(encoding="utf-8")
    status = project.media_status().set_index("item_id")["status"]
    assert status["37777"] == "ok" and status["5"] == "missing"
    out = wb.export_coco(project, tmp_path / "out.json")
    assert json.loads(out.read_text(encoding="utf-8"))["images"][1]["file_name"] == "val/b.jpg"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_images_root_outside_the_project_is_refused(tmp_path, coco):
    instances, _ = coco
    with pytest.raises(SchemaError, match=r"images_root .* is outside the project folder .*"
                                          r"put the project folder so that it contains the "
                                          r"images"):
        wb.import_coco(instances, tmp_path / "project", images_root=_mkdir(tmp_path / "imgs"))


def test_width_and_height_from_the_files_when_coco_lacks_them(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [],
            "categories": [{"id": 1, "name": "x"}]}
    root = _mkdir(tmp_path / "project")
    Image.new("RGB", (33, 21)).save(root / "a.png")
    project = wb.import_coco(write_json(tmp_path / "i.json", data), root)
    assert project.items[["width", "height"]].values.tolist() == [[33, 21]]
    assert project.boxes.empty


# ---- export of projects that did not come from COCO -----------------------------------


def test_export_of_the_detection_sample_evaluates_like_detection_metrics(tmp_path):
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    from pycocotools.coco import COCO

    project = wb.open_project(SAMPLE)
    gt_path = wb.export_coco(project, tmp_path / "gt.json")
    dt_path = wb.export_coco(project, tmp_path / "dt.json", source="candidate")
    gt = json.loads(gt_path.read_text())
    assert [c["id"] for c in gt["categories"]] == list(range(1, 11))  # 1..K in class order
    assert [im["id"] for im in gt["images"]] == list(range(1, len(project.items) + 1))
    assert gt["images"][0]["camera"] == project.items.loc[0, "camera"]  # metadata kept
    ground = COCO(str(gt_path))
    ev = cocoeval.COCOeval(ground, ground.loadRes(str(dt_path)), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    ours = wb.detection_metrics(project, run="candidate")
    overall = ours.set_index("class").loc["all"]
    assert overall["ap"] == pytest.approx(ev.stats[0], abs=1e-6)
    assert overall["ap50"] == pytest.approx(ev.stats[1], abs=1e-6)
    # and the exported file imports back to the same boxes
    again = wb.import_coco(gt_path, tmp_path / "again")
    assert again.boxes[["x", "y", "w", "h"]].equals(project.boxes[["x", "y", "w", "h"]])
    assert again.boxes["label"].tolist() == project.boxes["label"].tolist()
    assert again.boxes["occluded"].tolist() == project.boxes["occluded"].tolist()
    # with the project's own ids (COCO's are 1..N; the export kept them as wb_*_id)
    assert gt["images"][0]["wb_item_id"] == project.items.loc[0, "item_id"]
    assert again.items["item_id"].tolist() == project.items["item_id"].tolist()
    assert again.boxes["box_id"].tolist() == project.boxes["box_id"].tolist()
    assert "wb_item_id" not in again.items.columns and "wb_box_id" not in again.boxes.columns


def test_export_errors(tmp_path, coco, sample_project):
    instances, _ = coco
    project = imported(tmp_path, instances)
    with pytest.raises(ValueError, match=r"The 'source' parameter of export_coco must be a "
                                         r"str among \{'boxes'\}. Got 'nope' instead."):
        wb.export_coco(project, tmp_path / "x.json", source="nope")
    with pytest.raises(ValueError, match="export_coco needs a detection project"):
        wb.export_coco(sample_project, tmp_path / "x.json")


def test_export_is_atomic(tmp_path, coco, monkeypatch):
    instances, _ = coco
    project = imported(tmp_path, instances)
    target = tmp_path / "out.json"
    target.write_text("previous")
    monkeypatch.setattr(json, "dump", lambda *a, **k: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError, match="full"):
        wb.export_coco(project, target)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.json")] == []


# ---- bad input: one test per case, with its message -----------------------------------


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(SchemaError, match=r"broken\.json: malformed JSON at line 2, column 12"):
        wb.import_coco(path, tmp_path / "project")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes('{"images": "é"}'.encode("latin-1"))
    with pytest.raises(SchemaError, match=r"latin\.json: not valid UTF-8"):
        wb.import_coco(path, tmp_path / "project")


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(tmp_path, key):
    data = {k: v for k, v in INSTANCES.items() if k != key}
    with pytest.raises(SchemaError, match=rf"i\.json: missing top-level key '{key}'"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")


def test_results_file_passed_as_instances(tmp_path):
    with pytest.raises(SchemaError, match="A list is a results file"):
        wb.import_coco(write_json(tmp_path / "r.json", RESULTS), tmp_path / "project")


def test_annotation_for_an_unknown_image_id(tmp_path):
    data = copy.deepcopy(INSTANCES)
    data["annotations"][2]["image_id"] = 99
    with pytest.raises(SchemaError, match=r"i\.json, row 2, column 'image_id': 1 annotations "
                                          r"refer to image id\(s\) not in the file: 99 "
                                          r"\(annotations\[2\], id 3\)"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")


def test_annotation_for_an_unknown_category_id(tmp_path):
    data = copy.deepcopy(INSTANCES)
    data["annotations"][0]["category_id"] = 7
    with pytest.raises(SchemaError, match=r"refer to category id\(s\) not in the file: 7"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")


@pytest.mark.parametrize("bbox", [["a", None, 5, 5], [1, 2, 3], [1, 2, -3, 4], [1, 2, 3, 0],
                                  [1, 2, float("inf"), 4], "1,2,3,4", None])
def test_bad_bbox(tmp_path, bbox):
    data = copy.deepcopy(INSTANCES)
    data["annotations"][1]["bbox"] = bbox
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))  # inf is written as Infinity, which json reads back
    with pytest.raises(SchemaError) as info:
        wb.import_coco(path, tmp_path / "project")
    assert (f"i.json, row 1, column 'bbox': annotations[1] (id 900100397133): bbox must be 4 "
            f"finite numbers [x, y, w, h] with w, h > 0; got {bbox!r}") in str(info.value)


def test_missing_bbox_in_results(tmp_path, coco):
    instances, _ = coco
    res = [{"image_id": 5, "category_id": 1, "score": 0.5}]
    with pytest.raises(SchemaError, match=r"detections\[0\] \(image_id 5\): bbox must be 4"):
        imported(tmp_path, instances, predictions={"r": write_json(tmp_path / "r.json", res)})


@pytest.mark.parametrize("score", [1.5, -0.2, None, "high"])
def test_bad_score(tmp_path, coco, score):
    instances, _ = coco
    res = [{"image_id": 5, "category_id": 1, "bbox": [1, 1, 2, 2], "score": score}]
    with pytest.raises(SchemaError, match=r"r\.json, row 0, column 'score': 1 detections have "
                                          r"a missing score or one outside \[0, 1\]"):
        imported(tmp_path, instances, predictions={"r": write_json(tmp_path / "r.json", res)})


def test_result_on_an_unknown_image(tmp_path, coco):
    instances, _ = coco
    res = [{"image_id": 6, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 0.5}]
    with pytest.raises(SchemaError, match=r"1 detections refer to image id\(s\) not in the "
                                          r"file: 6"):
        imported(tmp_path, instances, predictions={"r": write_json(tmp_path / "r.json", res)})


def test_duplicate_image_and_annotation_ids(tmp_path):
    data = copy.deepcopy(INSTANCES)
    data["images"][1]["id"] = 397133
    with pytest.raises(SchemaError, match=r"images ids are not unique: 397133"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")
    data = copy.deepcopy(INSTANCES)
    data["annotations"][3]["id"] = 3
    with pytest.raises(SchemaError, match=r"annotations ids are not unique: 3"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")


def test_bad_iscrowd_and_categories(tmp_path):
    data = copy.deepcopy(INSTANCES)
    data["annotations"][0]["iscrowd"] = 2
    with pytest.raises(SchemaError, match=r"1 annotations have an iscrowd that is not 0 or 1"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")
    data = copy.deepcopy(INSTANCES)
    data["categories"][1]["name"] = "dog"
    with pytest.raises(SchemaError, match=r"category name 'dog' is used by ids 18 and 1"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")
    data = copy.deepcopy(INSTANCES)
    data["categories"][1]["id"] = "x"
    with pytest.raises(SchemaError, match=r"category ids mix integers \(18\) and strings "
                                          r"\('x'\)"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")


def test_box_outside_its_image_is_reported_in_coco_terms(tmp_path):
    data = copy.deepcopy(INSTANCES)
    data["annotations"][3]["bbox"] = [340, 2, 30, 4]  # 18 px past a 352 px wide image
    with pytest.raises(SchemaError, match=r"i\.json 'annotations', row 3, column 'x': 1 "
                                          r"box\(es\) lie outside their image"):
        wb.import_coco(write_json(tmp_path / "i.json", data), tmp_path / "project")


def test_parameter_errors(tmp_path, coco):
    instances, results = coco
    with pytest.raises(TypeError, match="The 'predictions' parameter of import_coco must be"):
        wb.import_coco(instances, tmp_path / "p", predictions=[results])
    with pytest.raises(ValueError, match="The 'format' parameter of import_coco must be"):
        wb.import_coco(instances, tmp_path / "p", format="xlsx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        wb.import_coco(tmp_path / "nope.json", tmp_path / "p")


def test_import_is_fast_enough_to_be_linear(tmp_path):
    """A 20,000-box file imports in well under the time of a slow per-row path."""
    rng = np.random.default_rng(0)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480}
              for i in range(2000)]
    anns = [{"id": k, "image_id": int(k % 2000), "category_id": int(rng.integers(1, 4)),
             "bbox": [1.0, 2.0, 30.5, 40.25], "area": 1227.6, "iscrowd": 0}
            for k in range(20000)]
    cats = [{"id": i, "name": f"c{i}"} for i in range(1, 4)]
    path = write_json(tmp_path / "i.json", {"images": images, "annotations": anns,
                                            "categories": cats})
    project = wb.import_coco(path, tmp_path / "project")
    assert len(project.boxes) == 20000 and project.boxes["box_id"].iloc[-1] == "19999"


def test_ids_and_numbers_past_int64_round_trip(tmp_path):
    """JSON integers have no size limit: ids and extra keys past int64 (or past float64's
    exact integers, when some are missing) are kept to the digit, not a raw OverflowError."""
    data = copy.deepcopy(INSTANCES)
    data["images"][0]["id"] = 2 ** 64 + 7
    for ann in data["annotations"]:
        if ann["image_id"] == INSTANCES["images"][0]["id"]:
            ann["image_id"] = 2 ** 64 + 7
    data["annotations"][0]["id"] = -(2 ** 63) - 1
    data["annotations"][0]["serial"] = 2 ** 70
    data["images"][1]["shot"] = 2 ** 53 + 1  # the other images lack the key
    project = imported(tmp_path, write_json(tmp_path / "i.json", data))
    assert str(2 ** 64 + 7) in project.items["item_id"].tolist()
    assert str(-(2 ** 63) - 1) in project.boxes["box_id"].tolist()
    out = wb.export_coco(wb.open_project(tmp_path / "project"), tmp_path / "out.json")
    assert json.loads(out.read_text(encoding="utf-8")) == data


@pytest.mark.parametrize("text,where", [
    ('"name": "cat\\ud83d"', "categories[0].name"),
    ('"name": "\\udc00cat"', "categories[0].name"),
])
def test_lone_surrogate_is_named(tmp_path, text, where):
    path = tmp_path / "odd.json"
    path.write_text('{"images": [], "annotations": [], "categories": [{"id": 1, ' + text + '}]}')
    with pytest.raises(SchemaError, match=rf"odd\.json: {re.escape(where)} holds a lone UTF-16 "
                                          "surrogate"):
        wb.import_coco(path, tmp_path / "project")
    assert not (tmp_path / "project" / "workbench.toml").exists()


def test_a_surrogate_pair_is_text(tmp_path):
    data = copy.deepcopy(INSTANCES)
    path = tmp_path / "emoji.json"
    text = json.dumps(data)  # ensure_ascii: escapes, and then an emoji as a surrogate pair
    path.write_text(text.replace('"name": "dog"', '"name": "dog \\ud83d\\udc36"'))
    project = wb.import_coco(path, tmp_path / "project")
    assert "dog \N{DOG FACE}" in project.classes
