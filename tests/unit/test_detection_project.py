"""The detection project format: loading, generated ids, image sizes, validation messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import workbench as wb
from workbench.detection.io import BOX_COLUMNS, DetectionProject
from workbench.errors import SchemaError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"
TOML = 'task = "detection"\n'
ITEMS = ("item_id,filepath,width,height,camera\n"
         "im1,a.png,100,80,c1\nim2,b.png,50,40,c2\nim3,c.png,64,64,c1\n")
BOXES = ("item_id,label,x,y,w,h\n"
         "im1,cat,10,10,20,20\n"
         "im2,dog,0,0,50,40\n"
         "im1,dog,50,30,10.5,20\n")  # im3 has no boxes: a negative image
ANN = ("item_id,annotator,label,x,y,w,h\n"
       "im1,ann,cat,11,10,20,20\nim1,ann,dog,50,30,10,20\nim1,bob,cat,10,10,19,20\n")
PRED = ("item_id,run,label,x,y,w,h,confidence\n"
        "im1,r1,cat,10,10,20,21,0.9\nim2,r1,dog,1,1,40,30,0.4\nim1,r1,cat,60,60,5,5,0.1\n"
        "im1,r2,dog,50,30,10,20,0.8\n")


def files(**over):
    out = {"workbench.toml": TOML, "items.csv": ITEMS, "boxes.csv": BOXES,
           "annotations.csv": ANN, "predictions.csv": PRED}
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def errors_of(root) -> str:
    with pytest.raises(SchemaError) as info:
        wb.open_project(root)
    return str(info.value)


def png(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 30)).save(path)


# ---- loading ---------------------------------------------------------------------------


def test_detection_project_loads_into_the_contract_frames(write_files):
    project = wb.open_project(write_files(files()))
    assert isinstance(project, DetectionProject) and project.task == "detection"
    assert project.classes == ["cat", "dog"]
    assert list(project.boxes.columns) == list(BOX_COLUMNS)
    assert project.boxes["box_id"].tolist() == ["im1/b0", "im2/b0", "im1/b1"]
    assert project.boxes[["x", "y", "w", "h"]].dtypes.eq(np.float64).all()
    assert project.boxes["iscrowd"].dtype == bool and not project.boxes["iscrowd"].any()
    assert project.items["width"].dtype == np.int64
    assert project.items["width"].tolist() == [100, 50, 64]
    assert project.metadata_columns == ["camera"] and project.box_metadata_columns == []
    assert project.annotations["box_id"].tolist() == ["im1/ann/a0", "im1/ann/a1",
                                                      "im1/bob/a0"]
    assert list(project.annotations.columns[:8]) == ["box_id", "item_id", "annotator",
                                                     "label", "x", "y", "w", "h"]
    assert project.predictions["pred_id"].tolist() == ["im1/r1/p0", "im2/r1/p0", "im1/r1/p1",
                                                       "im1/r2/p0"]
    assert project.runs == ["r1", "r2"] and project.default_run == "r1"
    assert project.predictions["confidence"].dtype == np.float64
    assert "3 images, 3 boxes" in repr(project)


def test_generated_ids_are_stable_across_reloads_and_writes(write_files, tmp_path):
    root = write_files(files())
    first = wb.open_project(root)
    again = wb.open_project(root)
    pd.testing.assert_frame_equal(first.boxes, again.boxes)
    written = wb.open_project(wb.write_project(first, tmp_path / "copy", format="csv"))
    assert written.boxes["box_id"].tolist() == first.boxes["box_id"].tolist()
    assert written.predictions["pred_id"].tolist() == first.predictions["pred_id"].tolist()


def test_given_ids_are_kept(write_files):
    boxes = "box_id,item_id,label,x,y,w,h\n007,im1,cat,1,1,2,2\nx-1,im2,dog,1,1,2,2\n"
    project = wb.open_project(write_files(files(**{"boxes.csv": boxes})))
    assert project.boxes["box_id"].tolist() == ["007", "x-1"]


def test_image_without_boxes_is_a_valid_negative_image(write_files, tmp_path):
    project = wb.open_project(write_files(files()))
    assert "im3" in set(project.items["item_id"]) and "im3" not in set(project.boxes["item_id"])
    only_negatives = wb.open_project(write_files(files(**{"boxes.csv": None,
                                                          "annotations.csv": None}),
                                                 tmp_path / "negatives"))
    assert only_negatives.boxes.empty and list(only_negatives.boxes.columns) == list(BOX_COLUMNS)


def test_width_and_height_read_from_the_image_files(write_files):
    items = ("item_id,filepath,width,height\n"
             "im1,img/a.png,,\nim2,img/b.jpg,50,40\nim3,img/gone.png,,\n")
    root = write_files(files(**{"items.csv": items, "predictions.csv": None}))
    png(root / "img" / "a.png", (120, 90))
    Image.new("RGB", (50, 40)).save(root / "img" / "b.jpg")
    project = wb.open_project(root)
    assert project.items["width"].tolist()[:2] == [120, 50]
    assert project.items["height"].tolist()[:2] == [90, 40]
    assert project.items["width"].isna().tolist() == [False, False, True]  # missing image: NA
    assert str(project.items["width"].dtype) == "Int64"
    status = project.media_status().set_index("item_id")["status"]
    assert status["im3"] == "missing" and status["im1"] == "ok"
    # no width/height columns at all: every size comes from the files
    items = "item_id,filepath\nim1,img/a.png\nim2,img/b.jpg\nim3,img/a.png\n"
    project = wb.open_project(write_files(files(**{"items.csv": items,
                                                   "predictions.csv": None}), root))
    assert project.items["width"].tolist() == [120, 50, 120]
    assert project.items["width"].dtype == np.int64


def test_image_size_reads_only_the_header(write_files, monkeypatch):
    root = write_files(files(**{"items.csv": "item_id,filepath\nim1,a.png\nim2,b.png\nim3,c.png\n",
                                "predictions.csv": None}))
    for name in "abc":
        png(root / f"{name}.png", (100, 80))
    loaded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(1))
    assert wb.open_project(root).items["width"].tolist() == [100, 100, 100]
    assert loaded == []  # no pixel was decoded


def test_classes_declared_or_the_sorted_union(write_files):
    toml = TOML + 'classes = ["dog", "cat", "bird"]\n'
    project = wb.open_project(write_files(files(**{"workbench.toml": toml})))
    assert project.classes == ["dog", "cat", "bird"]
    pred = "item_id,run,label,x,y,w,h,confidence\nim1,r1,ant,1,1,2,2,0.5\n"
    project = wb.open_project(write_files(files(**{"predictions.csv": pred})))
    assert project.classes == ["ant", "cat", "dog"]


def test_classification_is_the_default_task(write_files):
    root = write_files({"items.csv": "item_id,label\n1,cat\n"})
    project = wb.open_project(root)
    assert project.task == "classification" and not hasattr(project, "boxes")


def test_unknown_task_names_the_file_and_the_allowed_values(write_files):
    text = errors_of(write_files(files(**{"workbench.toml": 'task = "detections"\n'})))
    assert "workbench.toml" in text and "column 'task'" in text
    assert "['classification', 'detection']" in text and "Did you mean 'detection'?" in text


def test_classification_views_raise_and_name_the_detection_call(write_files):
    project = wb.open_project(write_files(files()))
    with pytest.raises(SchemaError, match=r"workbench\.match_detections"):
        project.errors()
    with pytest.raises(SchemaError, match=r"project\.boxes"):
        project.reference_labels()
    with pytest.raises(SchemaError, match=r"project\.predictions"):
        project.pred_probs()
    with pytest.raises(SchemaError, match=r"match_detections"):
        wb.project_errors(project)


def test_matching_runs_on_a_loaded_project(write_files):
    project = wb.open_project(write_files(files()))
    matches = wb.match_detections(project, "r1")
    assert set(matches["box_id"].dropna()) == {"im1/b0", "im1/b1", "im2/b0"}
    assert "camera" in matches.columns


# ---- from_frames and write_project -----------------------------------------------------


def frames():
    items = pd.DataFrame({"item_id": ["a", "b"], "filepath": ["a.png", "b.png"],
                          "width": [100, 200], "height": [100, 50], "site": ["n", "s"]})
    boxes = pd.DataFrame({"item_id": ["a", "a", "b"], "label": ["x", "y", "x"],
                          "x": [1, 2, 3], "y": [1, 2, 3], "w": [5, 5, 5.5], "h": [5, 5, 5],
                          "iscrowd": [0, 1, 0], "occluded": [True, False, True],
                          "area": [25.0, 20.0, 27.5]})
    ann = pd.DataFrame({"item_id": ["a"], "annotator": ["ana"], "label": ["x"], "x": [1.0],
                        "y": [1.0], "w": [5.0], "h": [5.0],
                        "annotated_at": ["2026-01-02T03:04:05Z"]})
    pred = pd.DataFrame({"item_id": ["a", "b"], "run": ["r", "r"], "label": ["x", "y"],
                         "x": [1.0, 3], "y": [1.0, 3], "w": [5.0, 4], "h": [5.0, 4],
                         "confidence": [0.9, 0.3], "prob_x": [0.9, 0.7], "prob_y": [0.1, 0.3]})
    return items, boxes, ann, pred


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_from_frames_write_then_open_gives_equal_frames(tmp_path, fmt):
    items, boxes, ann, pred = frames()
    project = wb.Project.from_frames(items, boxes=boxes, annotations=ann, predictions=pred,
                                     task="detection", classes=["x", "y"], name="det")
    assert project.task == "detection" and project.boxes["iscrowd"].tolist() == [False, True,
                                                                                  False]
    assert project.box_metadata_columns == ["occluded", "area"]
    assert project.prob_columns == ["prob_x", "prob_y"]
    again = wb.open_project(wb.write_project(project, tmp_path / fmt, format=fmt))
    assert again.task == "detection" and again.classes == ["x", "y"] and again.name == "det"
    for kind in ("items", "boxes", "annotations", "predictions"):
        pd.testing.assert_frame_equal(getattr(project, kind), getattr(again, kind))


def test_from_frames_infers_detection_from_boxes_and_checks_task():
    items, boxes, _, _ = frames()
    assert wb.Project.from_frames(items, boxes=boxes).task == "detection"
    assert wb.Project.from_frames(boxes=boxes).items["item_id"].tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="The 'task' parameter of Project.from_frames must be"):
        wb.Project.from_frames(items, boxes=boxes, task="segmentation")
    with pytest.raises(ValueError, match="belong to a detection project"):
        wb.Project.from_frames(items, boxes=boxes, task="classification")


def test_from_frames_reports_rows():
    items, boxes, _, _ = frames()
    boxes.loc[2, "w"] = -1
    with pytest.raises(SchemaError, match=r"boxes, row 2, column 'w': w must be > 0"):
        wb.Project.from_frames(items, boxes=boxes)


def test_empty_tables_are_not_written(tmp_path):
    items, boxes, _, _ = frames()
    root = tmp_path / "p"
    (root).mkdir()
    (root / "predictions.csv").write_text("stale")
    wb.write_project(wb.Project.from_frames(items, boxes=boxes), root, format="csv")
    assert not (root / "predictions.csv").exists() and (root / "boxes.csv").exists()
    assert 'task = "detection"' in (root / "workbench.toml").read_text()


# ---- validation: one test per bad input, with its message -----------------------------


def test_missing_required_box_column(write_files):
    boxes = "item_id,label,x,y,w\nim1,cat,1,1,2\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 1, column 'h': missing required column 'h'" in text


def test_missing_confidence_column(write_files):
    pred = "item_id,run,label,x,y,w,h\nim1,r1,cat,1,1,2,2\n"
    text = errors_of(write_files(files(**{"predictions.csv": pred})))
    assert "predictions.csv, line 1, column 'confidence': missing required column" in text


def test_non_numeric_coordinate(write_files):
    boxes = "item_id,label,x,y,w,h\nim1,cat,1,1,2,2\nim1,cat,ten,1,2,2\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 3, column 'x': x must be a number (pixels); found 'ten'" in text


def test_empty_nan_and_inf_coordinates(write_files):
    boxes = "item_id,label,x,y,w,h\nim1,cat,1,,2,2\nim1,cat,1,1,nan,2\nim1,cat,1,1,2,inf\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "line 2, column 'y': y is empty or NaN on line 2" in text
    assert "line 3, column 'w': w must be a number (pixels); found 'nan'" in text
    assert "line 4, column 'h': h is infinite on line 4" in text


def test_nan_and_inf_in_parquet(write_files, tmp_path):
    root = write_files(files(**{"boxes.csv": None}))
    pd.DataFrame({"item_id": ["im1", "im1"], "label": ["cat", "cat"], "x": [np.nan, 1.0],
                  "y": [1.0, -np.inf], "w": [2.0, 2.0], "h": [2.0, 2.0]}).to_parquet(
        root / "boxes.parquet")
    text = errors_of(root)
    assert "boxes.parquet, row 0, column 'x': x is empty or NaN on row 0" in text
    assert "boxes.parquet, row 1, column 'y': y is infinite on row 1" in text


@pytest.mark.parametrize("w,h,col,shown", [(0, 5, "w", "0"), (5, -3, "h", "-3")])
def test_zero_or_negative_size(write_files, w, h, col, shown):
    boxes = f"item_id,label,x,y,w,h\nim1,cat,1,1,{w},{h}\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert (f"boxes.csv, line 2, column '{col}': {col} must be > 0 (a box has a positive "
            f"size); found {shown} ") in text


def test_box_far_outside_the_image_is_an_error(write_files):
    boxes = "item_id,label,x,y,w,h\nim1,cat,90,10,20,20\n"  # 10 px past a 100 px wide image
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 2, column 'x': 1 box(es) lie outside their image" in text
    assert "1 px or 1% of the image's side" in text
    assert "im1/b0 [90, 10, 20, 20] in a 100x80 image" in text


def test_box_slightly_outside_is_kept_and_warned(write_files):
    boxes = "item_id,label,x,y,w,h\nim1,cat,-0.5,10,100.9,20\nim2,dog,0,0,50.4,40\n"
    root = write_files(files(**{"boxes.csv": boxes}))
    project = wb.open_project(root)
    assert project.boxes["x"].tolist() == [-0.5, 0.0]  # not clipped
    assert project.boxes["w"].tolist() == [100.9, 50.4]
    warnings = [p for p in wb.validate_project(root, check_media=False)
                if p.severity == "warning"]
    assert len(warnings) == 1 and warnings[0].file == "boxes.csv"
    assert "2 box(es) stick out of their image by at most the tolerance" in warnings[0].message


def test_prediction_outside_is_a_warning_only(write_files):
    pred = "item_id,run,label,x,y,w,h,confidence\nim1,r1,cat,90,10,40,20,0.5\n"
    root = write_files(files(**{"predictions.csv": pred}))
    problems = wb.validate_project(root, check_media=False)
    assert [p.severity for p in problems] == ["warning"]
    assert "1 detection(es) lie outside their image" in problems[0].message
    assert wb.open_project(root).predictions["w"].tolist() == [40.0]


def test_box_for_an_unknown_item(write_files):
    boxes = "item_id,label,x,y,w,h\nim1,cat,1,1,2,2\nim9,cat,1,1,2,2\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 3, column 'item_id': boxes for item_id(s) not in items: 'im9'" \
        in text


def test_label_not_declared_with_did_you_mean(write_files):
    toml = TOML + 'classes = ["cat", "dog"]\n'
    boxes = "item_id,label,x,y,w,h\nim1,dgo,1,1,2,2\n"
    text = errors_of(write_files(files(**{"workbench.toml": toml, "boxes.csv": boxes})))
    assert ("boxes.csv, line 2, column 'label': label 'dgo' is not among the declared classes "
            "['cat', 'dog'] (line 2). Did you mean 'dog'?") in text


@pytest.mark.parametrize("value,message", [
    ("", "empty confidence on line 2"),
    ("1.5", "confidence must be between 0 and 1; found 1.5"),
    ("-0.1", "confidence must be between 0 and 1; found -0.1"),
    ("high", "confidence must be a number between 0 and 1; found 'high'"),
])
def test_confidence_missing_or_out_of_range(write_files, value, message):
    pred = f"item_id,run,label,x,y,w,h,confidence\nim1,r1,cat,1,1,2,2,{value}\n"
    text = errors_of(write_files(files(**{"predictions.csv": pred})))
    assert f"predictions.csv, line 2, column 'confidence': {message}" in text


def test_duplicate_box_id(write_files):
    boxes = "box_id,item_id,label,x,y,w,h\nb1,im1,cat,1,1,2,2\nb1,im2,cat,1,1,2,2\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 2, column 'box_id': duplicate box_id(s) 'b1' (lines 2, 3)" in text


def test_duplicate_pred_id(write_files):
    pred = ("pred_id,item_id,run,label,x,y,w,h,confidence\n"
            "p,im1,r1,cat,1,1,2,2,0.5\np,im1,r1,cat,1,1,2,2,0.5\n")
    text = errors_of(write_files(files(**{"predictions.csv": pred})))
    assert "column 'pred_id': duplicate pred_id(s) 'p'" in text


@pytest.mark.parametrize("value", ["2", "yes", ""])
def test_iscrowd_must_be_0_1_true_false(write_files, value):
    boxes = f"item_id,label,x,y,w,h,iscrowd\nim1,cat,1,1,2,2,0\nim1,cat,1,1,2,2,{value}\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 3, column 'iscrowd': iscrowd must be 0, 1, true or false" in text


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("TRUE", True),
                                            ("False", False), ("0", False)])
def test_iscrowd_values(write_files, value, expected):
    boxes = f"item_id,label,x,y,w,h,iscrowd\nim1,cat,1,1,2,2,{value}\n"
    project = wb.open_project(write_files(files(**{"boxes.csv": boxes})))
    assert project.boxes["iscrowd"].tolist() == [expected]


def test_bad_width_in_items(write_files):
    items = "item_id,filepath,width,height\nim1,a.png,100.5,80\nim2,b.png,wide,40\nim3,c.png,0,1\n"
    text = errors_of(write_files(files(**{"items.csv": items})))
    assert "items.csv, line 3, column 'width': width is not a number: 'wide'" in text
    assert "items.csv, line 2, column 'width': width is not a whole number > 0" in text


def test_reserved_column_names(write_files):
    boxes = "item_id,label,x,y,w,h,outcome\nim1,cat,1,1,2,2,ok\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 1, column 'outcome': column(s) ['outcome'] are reserved" in text
    items = "item_id,filepath,label\nim1,a.png,cat\nim2,b.png,dog\nim3,c.png,cat\n"
    text = errors_of(write_files(files(**{"items.csv": items})))
    assert "column(s) ['label'] are reserved" in text and "'image_label'" in text


def test_empty_annotator_and_run(write_files):
    ann = "item_id,annotator,label,x,y,w,h\nim1,,cat,1,1,2,2\n"
    text = errors_of(write_files(files(**{"annotations.csv": ann})))
    assert "annotations.csv, line 2, column 'annotator': empty annotator" in text


def test_bad_annotated_at(write_files):
    ann = "item_id,annotator,label,x,y,w,h,annotated_at\nim1,a,cat,1,1,2,2,yesterday\n"
    text = errors_of(write_files(files(**{"annotations.csv": ann})))
    assert "annotated_at is not a date/time: 'yesterday'" in text


def test_every_problem_is_listed_at_once(write_files):
    boxes = "item_id,label,x,y,w,h\nim9,cat,1,1,2,2\nim1,cat,x,1,0,2\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert text.startswith("3 problem(s) found:")


# ---- the sample and the CLI ------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    if not (SAMPLE / "boxes.csv").exists():
        pytest.fail("data/sample-detection is missing: run `make sample`")
    return SAMPLE


def test_detection_sample_opens_and_validates_without_problems(sample):
    assert wb.validate_project(sample) == []
    project = wb.open_project(sample)
    assert project.task == "detection" and len(project.classes) == 10
    assert project.box_metadata_columns == ["occluded"]
    assert project.boxes["box_id"].is_unique and project.predictions["pred_id"].is_unique
    assert project.annotations["box_id"].is_unique
    assert project.media_status()["status"].eq("ok").all()
    # the sizes in items.csv are the images' own
    first = project.items.iloc[0]
    with Image.open(sample / first["filepath"]) as image:
        assert image.size == (first["width"], first["height"])


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_validate_detection(sample, write_files):
    out = run_cli("validate", str(sample))
    assert out.returncode == 0, out.stdout + out.stderr
    n_boxes = len(pd.read_csv(sample / "boxes.csv", dtype=str))
    assert f"items, {n_boxes:,} boxes, " in out.stdout
    boxes = "item_id,label,x,y,w,h\nim1,cat,1,1,-2,2\n"
    out = run_cli("validate", str(write_files(files(**{"boxes.csv": boxes}))))
    assert out.returncode == 1
    assert "error: boxes.csv, line 2, column 'w': w must be > 0" in out.stdout


def test_class_named_all_is_refused_everywhere_it_can_appear(write_files):
    """``all`` is detection_metrics' summary row: a class of that name would be a second one."""
    boxes = BOXES + "im2,all,1,1,2,2\n"
    text = errors_of(write_files(files(**{"boxes.csv": boxes})))
    assert "boxes.csv, line 5, column 'label': label 'all' (line 5) is reserved" in text
    assert "'all_'" in text
    pred = PRED + "im2,r1,all,1,1,2,2,0.3\n"
    text = errors_of(write_files(files(**{"predictions.csv": pred})))
    assert "predictions.csv, line 6, column 'label': label 'all'" in text
    toml = TOML + 'classes = ["cat", "dog", "all"]\n'
    text = errors_of(write_files(files(**{"workbench.toml": toml})))
    assert "class 'all' is declared (in 'classes', or as a COCO category) but is reserved" in text
    # other spellings are ordinary classes
    boxes = BOXES + "im2,All,1,1,2,2\n"
    assert "All" in wb.open_project(write_files(files(**{"boxes.csv": boxes}))).classes


def test_class_named_all_is_refused_from_frames():
    boxes = pd.DataFrame({"item_id": ["a"], "label": ["all"], "x": 0, "y": 0, "w": 5, "h": 5})
    with pytest.raises(SchemaError, match="label 'all' .* is reserved"):
        wb.Project.from_frames(pd.DataFrame({"item_id": ["a"], "width": [10], "height": [10]}),
                               boxes=boxes, task="detection")
    pred = pd.DataFrame({"item_id": ["a"], "run": "r", "label": ["cat"], "x": 0, "y": 0, "w": 5,
                         "h": 5, "confidence": .9, "prob_cat": .9, "prob_all": .1})
    with pytest.raises(SchemaError, match="column 'prob_all' names the class 'all'"):
        wb.Project.from_frames(pd.DataFrame({"item_id": ["a"], "width": [10], "height": [10]}),
                               boxes=boxes.assign(label="cat"), predictions=pred,
                               task="detection")
