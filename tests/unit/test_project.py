"""The project format: loading, and one test per bad-input case of the foundation issue."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench import _ids
from workbench.errors import SchemaError, WorkbenchError

ITEMS = "item_id,filepath,label,vendor\n007,img/a.png,cat,A\n008,img/b.png,dog,B\n009,,,A\n"
ANN = "item_id,annotator,label\n007,ann1,cat\n007,ann2,dog\n008,ann1,dog\n009,ann1,cat\n"
PRED = ("item_id,run,label,confidence,prob_cat,prob_dog\n"
        "007,r1,cat,0.8,0.8,0.2\n008,r1,dog,0.7,0.3,0.7\n")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00"
       b"\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8\xa9\x00\x00"
       b"\x00\x00IEND\xaeB`\x82")


def good(**over):
    files = {"items.csv": ITEMS, "annotations.csv": ANN, "predictions.csv": PRED,
             "img/a.png": PNG, "img/b.png": PNG}
    files.update(over)
    return {k: v for k, v in files.items() if v is not None}


def problem_text(root) -> str:
    with pytest.raises(SchemaError) as info:
        wb.open_project(root)
    assert isinstance(info.value, WorkbenchError) and isinstance(info.value, ValueError)
    return str(info.value)


# ---- loading ---------------------------------------------------------------------------


def test_valid_project_loads_with_string_ids(write_files):
    project = wb.open_project(write_files(good()))
    assert list(project.items["item_id"]) == ["007", "008", "009"]
    assert project.classes == ["cat", "dog"]
    assert project.runs == ["r1"] and project.default_run == "r1"
    assert project.items["label"].isna().sum() == 1  # 009 is unlabeled, not an error
    assert project.metadata_columns == ["vendor"]
    assert project.prob_columns == ["prob_cat", "prob_dog"]
    assert project.annotations["label"].tolist() == ["cat", "dog", "dog", "cat"]
    ids, probs = project.pred_probs()
    assert list(ids) == ["007", "008"] and probs.shape == (2, 2)


def test_na_and_none_stay_classes(write_files):
    root = write_files(good(**{
        "items.csv": "item_id,label\n1,NA\n2,None\n3,null\n",
        "annotations.csv": "item_id,annotator,label\n1,a,NA\n2,a,None\n3,a,nan\n",
        "predictions.csv": None}))
    project = wb.open_project(root)
    assert project.items["label"].tolist() == ["NA", "None", "null"]
    assert project.classes == sorted(["NA", "None", "nan", "null"])


def test_classes_from_toml_keep_declared_order(write_files):
    root = write_files(good(**{"workbench.toml": 'name = "pets"\nclasses = ["dog", "cat"]\n'}))
    project = wb.open_project(root)
    assert project.classes == ["dog", "cat"] and project.name == "pets"
    assert project.prob_columns == ["prob_dog", "prob_cat"]


def test_confidence_defaults_to_max_probability(write_files):
    pred = "item_id,run,label,prob_cat,prob_dog\n007,r1,cat,0.9,0.1\n"
    project = wb.open_project(write_files(good(**{"predictions.csv": pred})))
    assert project.predictions["confidence"].tolist() == [0.9]


def test_parquet_and_csv_give_the_same_project(write_files, tmp_path):
    csv_project = wb.open_project(write_files(good()))
    out = wb.write_project(csv_project, tmp_path / "pq", format="parquet")
    pq_project = wb.open_project(out)
    pd.testing.assert_frame_equal(csv_project.items, pq_project.items)
    pd.testing.assert_frame_equal(csv_project.predictions, pq_project.predictions)
    assert pq_project.classes == csv_project.classes


def test_from_frames_runs_the_same_checks():
    items = pd.DataFrame({"item_id": [1, 2, 2]})
    with pytest.raises(SchemaError, match=r"items, row 1, column 'item_id': duplicate item_id"):
        wb.Project.from_frames(items=items)
    project = wb.Project.from_frames(
        items=pd.DataFrame({"item_id": [1, 2]}),
        annotations=pd.DataFrame({"item_id": ["1", "2"], "annotator": "a", "label": ["x", "y"]}))
    assert project.items["item_id"].tolist() == ["1", "2"] and project.classes == ["x", "y"]


def test_reference_labels_fall_back_to_consensus(write_files):
    project = wb.open_project(write_files(good()))
    ref = project.reference_labels()
    assert ref["007"] == "cat" and ref["009"] == "cat"  # 009 has no label: one annotator said cat


# ---- bad input: one test per case --------------------------------------------------------


def test_missing_required_column(write_files):
    msg = problem_text(write_files(good(**{"items.csv": "id,label\n1,cat\n"})))
    assert "items.csv" in msg and "missing required column 'item_id'" in msg
    assert "Found columns ['id', 'label']" in msg


def test_missing_required_column_in_annotations(write_files):
    msg = problem_text(write_files(good(**{"annotations.csv": "item_id,rater,label\n007,a,cat\n"})))
    assert "annotations.csv" in msg and "missing required column 'annotator'" in msg


def test_duplicate_header(write_files):
    msg = problem_text(write_files(good(**{"items.csv": "item_id,label,label\n1,cat,dog\n"})))
    assert "items.csv, line 1" in msg and "duplicate column name(s) ['label']" in msg


def test_duplicate_item_id(write_files):
    items = "item_id,label\n007,cat\n008,dog\n007,dog\n"
    msg = problem_text(write_files(good(**{"items.csv": items})))
    assert "duplicate item_id(s) '007' (lines 2, 4)" in msg and "unique" in msg


def test_annotation_for_unknown_item(write_files):
    ann = ANN + "999,ann1,cat\n"
    msg = problem_text(write_files(good(**{"annotations.csv": ann})))
    assert "annotations.csv, line 6, column 'item_id'" in msg
    assert "not in items: '999'" in msg


def test_prediction_for_unknown_item(write_files):
    pred = PRED + "123,r1,cat,0.5,0.5,0.5\n"
    msg = problem_text(write_files(good(**{"predictions.csv": pred})))
    assert "predictions.csv" in msg and "not in items: '123'" in msg


def test_label_not_in_declared_classes_did_you_mean(write_files):
    root = write_files(good(**{"workbench.toml": 'classes = ["cat", "dog"]\n',
                               "annotations.csv": ANN + "008,ann2,dgo\n"}))
    msg = problem_text(root)
    assert "label 'dgo' is not among the declared classes" in msg
    assert "Did you mean 'dog'?" in msg and "line 6" in msg


def test_empty_label_in_annotations(write_files):
    msg = problem_text(write_files(good(**{"annotations.csv": ANN + "008,ann2,\n"})))
    assert "annotations.csv, line 6, column 'label': empty label" in msg


def test_empty_label_in_predictions(write_files):
    pred = "item_id,run,label\n007,r1,cat\n008,r1,\n"
    msg = problem_text(write_files(good(**{"predictions.csv": pred})))
    assert "predictions.csv, line 3, column 'label': empty label" in msg


def test_unlabeled_item_is_counted_not_an_error(write_files):
    project = wb.open_project(write_files(good()))
    assert int(project.items["label"].isna().sum()) == 1


def test_non_numeric_confidence(write_files):
    pred = "item_id,run,label,confidence\n007,r1,cat,high\n008,r1,dog,0.5\n"
    msg = problem_text(write_files(good(**{"predictions.csv": pred})))
    assert "column 'confidence'" in msg and "'high'" in msg and "line 2" in msg


def test_out_of_range_confidence(write_files):
    pred = "item_id,run,label,confidence\n007,r1,cat,93\n008,r1,dog,0.5\n"
    msg = problem_text(write_files(good(**{"predictions.csv": pred})))
    assert "between 0 and 1" in msg and "93" in msg and "percentages" in msg


def test_out_of_range_probability(write_files):
    pred = "item_id,run,label,prob_cat,prob_dog\n007,r1,cat,1.5,-0.5\n"
    msg = problem_text(write_files(good(**{"predictions.csv": pred})))
    assert "column 'prob_cat'" in msg and "between 0 and 1" in msg


def test_probabilities_must_sum_to_one(write_files):
    pred = "item_id,run,label,prob_cat,prob_dog\n007,r1,cat,0.6,0.3\n008,r1,dog,0.2,0.8\n"
    msg = problem_text(write_files(good(**{"predictions.csv": pred})))
    assert "do not sum to 1 (within 0.001) on line 2" in msg and "0.9" in msg


def test_probabilities_within_tolerance_are_accepted(write_files):
    pred = "item_id,run,label,prob_cat,prob_dog\n007,r1,cat,0.6,0.4005\n"
    wb.open_project(write_files(good(**{"predictions.csv": pred})))


def test_missing_prob_column_for_a_class(write_files):
    root = write_files(good(**{"workbench.toml": 'classes = ["cat", "dog", "bird"]\n'}))
    msg = problem_text(root)
    assert "missing probability column 'prob_bird' for class 'bird'" in msg


def test_non_utf8_file_names_byte_offset_and_line(write_files):
    data = b"item_id,label\n1,cat\n2," + "chat noir é".encode("latin-1") + b"\n"
    msg = problem_text(write_files(good(**{"items.csv": data})))
    offset = data.index(b"\xe9")
    assert f"byte offset {offset}" in msg and "(line 3)" in msg and "UTF-8" in msg


def test_utf8_bom_is_accepted(write_files):
    root = write_files(good(**{"items.csv": "\ufeff" + ITEMS}))
    project = wb.open_project(root)
    assert project.items.columns[0] == "item_id"


def test_empty_file(write_files):
    msg = problem_text(write_files(good(**{"annotations.csv": ""})))
    assert "annotations.csv" in msg and "the file is empty" in msg


def test_header_only_file(write_files):
    msg = problem_text(write_files(good(**{"predictions.csv": "item_id,run,label\n"})))
    assert "predictions.csv" in msg and "header but no rows" in msg


def test_malformed_toml(write_files):
    msg = problem_text(write_files(good(**{"workbench.toml": 'classes = ["cat", "dog"\n'})))
    assert "workbench.toml" in msg and "malformed TOML" in msg


def test_toml_with_wrong_types(write_files):
    msg = problem_text(write_files(good(**{"workbench.toml": 'classes = "cat,dog"\n'})))
    assert "'classes' must be a non-empty list" in msg


@pytest.mark.parametrize("path", ["../outside.png", "/etc/passwd", "img/../../x.png",
                                  "..\\win.png"])
def test_image_path_escaping_the_project(write_files, path):
    items = f"item_id,filepath\n1,{path}\n2,img/a.png\n"
    msg = problem_text(write_files(good(**{"items.csv": items, "annotations.csv": None,
                                           "predictions.csv": None})))
    assert "filepath escapes the project folder" in msg and "line 2" in msg


def test_symlink_out_of_the_project(write_files, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    root = write_files(good(**{"items.csv": "item_id,filepath\n1,img/link.png\n2,img/a.png\n",
                               "annotations.csv": None, "predictions.csv": None}))
    os.symlink(secret, root / "img" / "link.png")
    project = wb.open_project(root)  # loads (lexically fine) ...
    assert project.media_path("1") is None  # ... but the file is never served
    assert project.media_path("2") == (root / "img" / "a.png").resolve()
    problems = wb.validate_project(root)
    assert any(p.severity == "error" and "outside project" in p.message for p in problems)


def test_missing_and_unreadable_images_are_a_media_status(write_files):
    items = "item_id,filepath\n1,img/a.png\n2,img/gone.png\n3,img/bad.png\n4,\n"
    root = write_files(good(**{"items.csv": items, "img/bad.png": b"not an image",
                               "annotations.csv": None, "predictions.csv": None}))
    project = wb.open_project(root)  # no crash
    status = project.media_status()
    assert status.set_index("item_id")["status"].to_dict() == {
        "1": "ok", "2": "missing", "3": "unreadable", "4": "no_path"}
    assert status.attrs["counts"]["missing"] == 1
    problems = wb.validate_project(root)
    text = "\n".join(map(str, problems))
    assert "1 image(s) missing: '2'" in text and "1 image(s) unreadable: '3'" in text
    assert all(p.severity == "warning" for p in problems)


def test_duplicate_annotation_rows(write_files):
    msg = problem_text(write_files(good(**{"annotations.csv": ANN + "007,ann1,dog\n"})))
    assert "same annotator labelled the same item more than once" in msg


def test_reannotation_with_timestamps_is_kept(write_files):
    ann = ("item_id,annotator,label,annotated_at\n007,a,cat,2026-01-01T00:00:00Z\n"
           "007,a,dog,2026-02-01T00:00:00Z\n")
    project = wb.open_project(write_files(good(**{"annotations.csv": ann})))
    from workbench._validation import latest_annotations

    assert latest_annotations(project.annotations)["label"].tolist() == ["dog"]


def test_every_problem_is_reported_at_once(write_files):
    items = "item_id,label\n1,cat\n1,dog\n"
    ann = "item_id,annotator,label\n5,a,cat\n1,a,\n"
    msg = problem_text(write_files(good(**{"items.csv": items, "annotations.csv": ann,
                                           "predictions.csv": None})))
    assert "duplicate item_id" in msg and "not in items" in msg and "empty label" in msg


def test_missing_items_file(write_files):
    msg = problem_text(write_files({"annotations.csv": ANN}))
    assert "no items.csv or items.parquet" in msg


def test_not_a_folder(tmp_path):
    with pytest.raises(SchemaError, match="does not exist"):
        wb.open_project(tmp_path / "nope")


def test_unknown_default_run(write_files):
    msg = problem_text(write_files(good(**{"workbench.toml": 'default_run = "r2"\n'})))
    assert "default_run 'r2' is not a run" in msg


def test_float_ids_in_parquet_are_refused(tmp_path):
    root = tmp_path / "pq"
    root.mkdir()
    pd.DataFrame({"item_id": [1.5, 2.0]}).to_parquet(root / "items.parquet")
    with pytest.raises(SchemaError, match="stored as floating point"):
        wb.open_project(root)


def test_int_ids_in_parquet_become_strings(tmp_path):
    root = tmp_path / "pq"
    root.mkdir()
    pd.DataFrame({"item_id": np.array([7, 8]), "size": [1.0, 2.0]}).to_parquet(
        root / "items.parquet")
    project = wb.open_project(root)
    assert project.items["item_id"].tolist() == ["7", "8"]
    assert project.items["size"].dtype == float


# ---- the CLI --------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_cli_validate_sample_exits_zero(sample_root):
    out = run_cli("validate", str(sample_root))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK (1,797 items" in out.stdout


def test_cli_validate_prints_every_problem_and_fails(write_files):
    items = "item_id,label\n1,cat\n1,dog\n"
    ann = "item_id,annotator,label\n5,a,cat\n"
    out = run_cli("validate", str(write_files(good(**{"items.csv": items, "annotations.csv": ann,
                                                      "predictions.csv": None}))))
    assert out.returncode == 1
    assert "error: items.csv, line 2, column 'item_id': duplicate" in out.stdout
    assert "error: annotations.csv, line 2, column 'item_id'" in out.stdout


def test_import_is_light():
    code = ("import sys, workbench; import workbench.widgets; "
            "heavy = [m for m in ('fiftyone', 'cleanlab', 'sqlalchemy', 'plotly', 'voila') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_from_frames_accepts_empty_annotations_and_predictions():
    empty_pred = pd.DataFrame({"item_id": [], "run": [], "label": []})
    empty_ann = pd.DataFrame({"item_id": [], "annotator": [], "label": []})
    project = wb.Project.from_frames(items=pd.DataFrame({"item_id": ["a"], "label": ["x"]}),
                                     annotations=empty_ann, predictions=empty_pred)
    assert project.runs == [] and project.annotations.empty and project.classes == ["x"]


# ---- the optimised load: one hash of the item ids, byte-level checks ------------------



def shuffled_frames(n=3_000, seed=5):
    """Items, annotations (3 per item) and predictions, every file in its own row order."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"img-{i:07d}" for i in range(n)], dtype=object)
    classes = np.array(["cat", "dog", "bird"], dtype=object)
    order = rng.permutation(n)
    items = pd.DataFrame({"item_id": ids[order], "filepath": [f"images/{i}.jpg" for i in
                                                               ids[order]],
                          "label": classes[rng.integers(0, 3, n)],
                          "vendor": np.array(["acme", "globex"], dtype=object)[
                              rng.integers(0, 2, n)]}).astype("str")
    who = np.argsort(rng.random((n, 8)), axis=1)[:, :3].ravel()
    rows = np.repeat(np.arange(n), 3)
    shuffle = rng.permutation(len(rows))
    ann = pd.DataFrame({
        "item_id": ids[rows[shuffle]], "annotator": np.array(
            [f"ann-{k}" for k in range(8)], dtype=object)[who[shuffle]],
        "label": classes[rng.integers(0, 3, len(rows))],
        "annotated_at": pd.to_datetime(np.datetime64("2026-01-01T00:00:00", "s")
                                       + rng.integers(0, 10**6, len(rows)).astype(
                                           "timedelta64[s]"), utc=True),
    }).astype({"item_id": "str", "annotator": "str", "label": "str"})
    shuffle = rng.permutation(n)
    pred = pd.DataFrame({"item_id": ids[shuffle], "run": "r1",
                         "label": classes[rng.integers(0, 3, n)],
                         "confidence": rng.random(n)}).astype(
        {"item_id": "str", "run": "str", "label": "str"})
    return {"items": items, "annotations": ann, "predictions": pred}


def write_frames(root, frames, fmt="parquet"):
    root.mkdir(parents=True, exist_ok=True)
    for kind, frame in frames.items():
        if fmt == "csv":
            frame.to_csv(root / f"{kind}.csv", index=False)
        else:
            frame.to_parquet(root / f"{kind}.parquet", index=False)
    return root


@pytest.fixture(params=[False, True], ids=["one-thread", "split"])
def lookup_parts(request, monkeypatch):
    """Run the id lookups whole, or split into parts on the thread pool and the hash of
    the item ids into many partitions."""
    if request.param:
        monkeypatch.setattr(_ids, "_MIN_PART", 700)
        monkeypatch.setattr(_ids, "_PARTITION_ROWS", 256)
    return request.param


def test_shuffled_project_loads_exactly_the_plain_read(tmp_path, lookup_parts):
    frames = shuffled_frames()
    root = write_frames(tmp_path / "pq", frames)
    project = wb.open_project(root)
    plain = {k: pd.read_parquet(root / f"{k}.parquet") for k in frames}
    pd.testing.assert_frame_equal(project.items, plain["items"], check_exact=True)
    pd.testing.assert_frame_equal(project.annotations, plain["annotations"], check_exact=True)
    pd.testing.assert_frame_equal(project.predictions, plain["predictions"], check_exact=True)
    assert str(project.items["item_id"].dtype) == "str"
    assert project.annotations["annotated_at"].dtype == plain["annotations"]["annotated_at"].dtype
    assert project.classes == ["bird", "cat", "dog"] and project.runs == ["r1"]
    # the CSV files of the same frames give the same project
    csv_project = wb.open_project(write_frames(tmp_path / "csv", frames, "csv"))
    pd.testing.assert_frame_equal(csv_project.items, project.items)
    pd.testing.assert_frame_equal(csv_project.predictions, project.predictions)
    pd.testing.assert_frame_equal(csv_project.annotations.drop(columns="annotated_at"),
                                  project.annotations.drop(columns="annotated_at"))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_shuffled_project_errors_name_file_line_and_column(tmp_path, fmt, lookup_parts):
    frames = shuffled_frames()
    items, ann, pred = (frames[k].copy() for k in ("items", "annotations", "predictions"))
    items = pd.concat([items, items.iloc[[7, 7]]], ignore_index=True)  # duplicate ids
    ann.loc[1_234, "item_id"] = "img-9999999"  # an unknown id, the same width as the others
    ann.loc[5_000, "item_id"] = "nope"  # an unknown id of another width
    # the same annotator on the same item, at the same time (later rows: another time)
    ann.loc[8_000, ["item_id", "annotator", "annotated_at"]] = \
        ann.loc[3, ["item_id", "annotator", "annotated_at"]].to_numpy()
    ann.loc[8_001, ["item_id", "annotator"]] = ann.loc[4, ["item_id", "annotator"]].to_numpy()
    pred = pd.concat([pred, pred.iloc[[11]]], ignore_index=True)  # two predictions, one run
    root = write_frames(tmp_path / fmt, {"items": items, "annotations": ann, "predictions": pred},
                        fmt)
    msg = problem_text(root)
    unit, off = ("line", 2) if fmt == "csv" else ("row", 0)
    dup_id = items.loc[7, "item_id"]
    assert (f"items.{fmt}, {unit} {7 + off}, column 'item_id': duplicate item_id(s) "
            f"{dup_id!r} ({unit}s {7 + off}, {3_000 + off}, {3_001 + off})") in msg
    assert (f"annotations.{fmt}, {unit} {1_234 + off}, column 'item_id': annotations for "
            f"item_id(s) not in items: 'img-9999999', 'nope' ({unit}s {1_234 + off}, "
            f"{5_000 + off})") in msg
    pair = f"{ann.loc[3, 'annotator']!r} on {ann.loc[3, 'item_id']!r}"
    assert (f"annotations.{fmt}, {unit} {3 + off}, column 'annotator': the same annotator "
            f"labelled the same item more than once ({pair}, {pair}; {unit}s {3 + off}, "
            f"{8_000 + off})") in msg
    assert (f"predictions.{fmt}, {unit} {11 + off}, column 'item_id': more than one prediction "
            f"per (item_id, run) ({unit}s {11 + off}, {len(pred) - 1 + off})") in msg
    # without annotated_at, the re-annotation at another time is a duplicate too
    root = write_frames(tmp_path / f"{fmt}-no-time", {
        "items": frames["items"], "annotations": ann.drop(columns="annotated_at")}, fmt)
    msg = problem_text(root)
    assert f"{unit}s {3 + off}, {4 + off}, {8_000 + off}, {8_001 + off})" in msg


def reference_locate(items: list, values: list) -> np.ndarray:
    first: dict = {}
    for pos, value in enumerate(items):
        key = "<NA>" if value is None else value
        first.setdefault(key, pos)
    return np.array([first.get("<NA>" if v is None else v, -1) for v in values])


ID_CASES = {
    "one width": ([f"img-{i:05d}" for i in range(0, 2_000, 2)],
                  [f"img-{i:05d}" for i in range(0, 2_400, 3)] + ["", "img-0", None]),
    "several widths": ([f"item-{i}" for i in range(1_500)] + ["é-1", "ümlaut-x", "7"],
                       [f"item-{i}" for i in range(1_600, -1, -7)] + ["é-1", "7", "item-"]),
    "uuid-like": ([f"{i:08x}-aaaa-4bbb-8ccc-{i * 7919:012x}" for i in range(900)],
                  [f"{i:08x}-aaaa-4bbb-8ccc-{i * 7919:012x}" for i in range(0, 1_200, 5)]
                  + ["00000000-aaaa-4bbb-8ccc-000000000001"]),
    "repeated ids": (["a", "b", "a", "c", "b"], ["b", "c", "z", "a"]),
    "missing ids": (["a", None, "b", None], ["b", None, "x"]),
    "too many widths": ([("x" * k) + str(k) for k in range(1, 30)], ["x3", "xx2", "x" * 30]),
    "long ids": (["p/" + "d" * 80 + str(i) for i in range(50)],
                 ["p/" + "d" * 80 + "7", "p/" + "d" * 80]),
}


@pytest.mark.parametrize("case", list(ID_CASES))
@pytest.mark.parametrize("storage", ["arrow", "object"])
def test_item_ids_match_a_dictionary_lookup(case, storage, lookup_parts, monkeypatch):
    monkeypatch.setattr(_ids, "_MIN_PART", 50 if lookup_parts else _ids._MIN_PART)
    items, values = ID_CASES[case]
    dtype = "str" if storage == "arrow" else object
    item_s = pd.Series(items, dtype=dtype)
    if storage == "arrow":  # several Arrow chunks, as a file read in row groups gives
        import pyarrow as pa

        half = len(items) // 2
        item_s = pd.Series(pa.chunked_array([pa.array(items[:half], pa.large_string()),
                                             pa.array(items[half:], pa.large_string())]),
                           dtype="str")
        assert item_s.array.__arrow_array__().num_chunks == 2
    value_s = pd.Series(values, dtype=dtype)
    with ThreadPoolExecutor(2) as pool:
        ids = _ids.ItemIds(item_s, pool)
        found = ids.locate(value_s)
    np.testing.assert_array_equal(ids.first, reference_locate(items, items))
    np.testing.assert_array_equal(found, reference_locate(items, values))


def test_partitioned_print_index_answers_like_one_index(monkeypatch):
    monkeypatch.setattr(_ids, "_PARTITION_ROWS", 8)
    rng = np.random.default_rng(11)
    prints = rng.integers(0, 2**64 - 1, 5_000, dtype=np.uint64)
    probes = np.concatenate([prints[rng.integers(0, 5_000, 9_000)],
                             rng.integers(0, 2**64 - 1, 1_000, dtype=np.uint64)])
    index = _ids._PrintIndex(prints)
    assert index.is_unique and len(index._tables) == 1024
    np.testing.assert_array_equal(index.get_indexer(probes),
                                  pd.Index(prints).get_indexer(probes))
    assert not _ids._PrintIndex(np.concatenate([prints, prints[:1]])).is_unique


@pytest.mark.parametrize("storage", ["arrow", "chunks"])
def test_counter_ids_are_looked_up_in_a_direct_table(storage):
    import pyarrow as pa

    items = [f"img-{i:06d}" for i in range(0, 30_000, 3)][::-1]
    values = [f"img-{i:06d}" for i in range(0, 31_000, 2)] + \
        ["img-0000a0", "img-00000", "imx-000003", "img-0099999", None, ""]
    item_s = pd.Series(items, dtype="str")
    if storage == "chunks":
        item_s = pd.Series(pa.chunked_array([pa.array(items[:777]), pa.array(items[777:])]),
                           dtype="str")
    ids = _ids.ItemIds(item_s)
    assert ids._packed is not None and ids._packed.index is None  # the direct table
    np.testing.assert_array_equal(ids.locate(pd.Series(values, dtype="str")),
                                  reference_locate(items, values))
    # a repeated counter is found by the table, and reported like any repeat
    twice = items + [items[5]]
    ids = _ids.ItemIds(pd.Series(twice, dtype="str"))
    assert ids._packed is None
    np.testing.assert_array_equal(ids.first, reference_locate(twice, twice))


def test_a_shared_fingerprint_is_never_taken_for_the_same_id(monkeypatch):
    monkeypatch.setattr(_ids, "_DIRECT_MAX_SLOTS", 0)  # fingerprints, not a direct table
    # a weak fingerprint: the first word only, so ids that differ further on collide
    monkeypatch.setattr(_ids, "_fingerprint", lambda width, words: words[0].copy())
    rng = np.random.default_rng(3)
    tails = ["".join(rng.choice(list("0123456789abcdef"), 12)) for _ in range(300)]
    items = [f"{i:08x}{tail}" for i, tail in enumerate(tails)]
    values = [f"{i:08x}{tails[(i + 1) % 300]}" for i in range(300)] + items[:5]
    ids = _ids.ItemIds(pd.Series(items, dtype="str"))
    assert ids._packed is not None and ids._packed.groups[0].n_words > 1
    np.testing.assert_array_equal(ids.locate(pd.Series(values, dtype="str")),
                                  reference_locate(items, values))
    # items sharing a print fall back to Arrow's exact lookup
    twins = ["00000000x", "00000000y", "11111111x"]
    ids = _ids.ItemIds(pd.Series(twins, dtype="str"))
    assert ids._packed is None
    np.testing.assert_array_equal(ids.locate(pd.Series(["00000000y", "q"], dtype="str")),
                                  [1, -1])


BLANKS = ["", " ", "\t\n", "\u3000", "\u00a0x", "x ", " x", "\u2028\u2029", "\x1c", "é",
          "\u0085", "ab", None, "\u200b", "  \u202f "]


def test_blank_strings_agree_with_strip():
    s = pd.Series(BLANKS * 3, dtype="str")
    expected = (s.isna() | (s.str.strip() == "")).to_numpy(dtype=bool)
    np.testing.assert_array_equal(_ids.blank_strings(_ids.arrow_strings(s)), expected)
    np.testing.assert_array_equal(_ids.blank_strings(_ids.arrow_strings(s.iloc[5:])),
                                  expected[5:])


@pytest.mark.parametrize("needle", [b"..", b":", b"/"])
def test_rows_with_agrees_with_str_contains(needle):
    paths = ["a/../b", "..", "a.", ".a", "x:y", "C:\\x", "/etc", "a/b", "", None, "é..",
             "a.b.c", "a.", ".b"]
    s = pd.Series(paths * 2, dtype="str")
    text = needle.decode()
    contains = s.str.contains(text, regex=False).fillna(False).to_numpy(dtype=bool)
    starts = s.str.startswith(text).fillna(False).to_numpy(dtype=bool)
    np.testing.assert_array_equal(_ids.rows_with(_ids.arrow_strings(s), needle), contains)
    np.testing.assert_array_equal(_ids.rows_with(_ids.arrow_strings(s), needle, at_start=True),
                                  starts)


# ---- the validated-frame cache of open_project ----------------------------------------


PUBLIC = ("classes", "runs", "default_run", "name", "root", "image_root", "info", "problems",
          "release", "task", "metadata_columns", "prob_columns", "annotators",
          "input_fingerprint")


def assert_same_project(got, expected):
    for kind in ("items", "annotations", "predictions"):
        pd.testing.assert_frame_equal(getattr(got, kind), getattr(expected, kind),
                                      check_exact=True)
    for name in PUBLIC:
        assert getattr(got, name) == getattr(expected, name), name
    pd.testing.assert_series_equal(got.reference_labels(), expected.reference_labels())
    pd.testing.assert_frame_equal(got.errors(), expected.errors())


def uncached(root):
    from workbench.project import _load, _Problems

    return _load(root, _Problems())


def cache_files(root):
    folder = root / ".workbench" / "cache"
    return sorted(p.name for p in folder.glob("project-frames-*.arrow")) if folder.is_dir() \
        else []


def frames_with_extras(n=400):
    frames = shuffled_frames(n)
    rng = np.random.default_rng(1)
    frames["items"]["score"] = rng.random(n)
    frames["items"]["count"] = rng.integers(0, 9, n)
    frames["items"]["site"] = pd.Categorical(rng.choice(["x", "y"], n))
    frames["items"].loc[3, "label"] = None  # an unlabelled item: reference from annotators
    probs = rng.dirichlet(np.ones(3), n)
    for i, c in enumerate(["bird", "cat", "dog"]):
        frames["predictions"][f"prob_{c}"] = probs[:, i]
    return frames


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_open_reuses_the_validated_frames(tmp_path, fmt, monkeypatch):
    from workbench import project as project_module

    root = write_frames(tmp_path / fmt, frames_with_extras(), fmt)
    (root / "workbench.toml").write_text('name = "cached"\ndefault_run = "r1"\n')
    first = wb.open_project(root)
    assert len(cache_files(root)) == 3  # items, annotations, predictions
    expected = uncached(root)
    assert_same_project(first, expected)

    def no_validation(*args, **kwargs):
        raise AssertionError("validated again")

    monkeypatch.setattr(project_module, "_build", no_validation)
    again = wb.open_project(root)  # read back, not validated
    assert_same_project(again, expected)
    assert again.items["site"].dtype == expected.items["site"].dtype == (
        "category" if fmt == "parquet" else "str")
    assert again.root == root.resolve() and again.name == "cached"


def test_open_cache_of_a_project_without_annotations_or_predictions(tmp_path):
    root = write_frames(tmp_path / "p", {"items": shuffled_frames(50)["items"]})
    first = wb.open_project(root)
    again = wb.open_project(root)
    for kind in ("items", "annotations", "predictions"):
        pd.testing.assert_frame_equal(getattr(again, kind), getattr(first, kind))
    assert again.runs == [] and again.default_run is None and len(cache_files(root)) == 3


@pytest.mark.parametrize("changed", ["items", "annotations", "predictions", "workbench.toml"])
def test_open_cache_follows_every_input_file(tmp_path, changed):
    frames = frames_with_extras()
    root = write_frames(tmp_path / "p", frames)
    (root / "workbench.toml").write_text('name = "before"\n')
    wb.open_project(root)
    before = cache_files(root)
    if changed == "workbench.toml":
        (root / "workbench.toml").write_text('name = "after!"\n')  # the same size
    else:
        frame = frames[changed].copy()
        frame.loc[0, "label"] = "cat" if frame.loc[0, "label"] != "cat" else "dog"
        frame.to_parquet(root / f"{changed}.parquet", index=False)
    opened = wb.open_project(root)
    assert_same_project(opened, uncached(root))
    if changed == "workbench.toml":
        assert opened.name == "after!"
    else:
        assert getattr(opened, changed)["label"].iloc[0] == frame["label"].iloc[0]
    after = cache_files(root)  # a new entry, under the new key; the stale one is gone
    assert len(after) == 3 and not set(after) & set(before)


def test_open_cache_is_never_read_when_an_input_becomes_invalid(tmp_path):
    frames = frames_with_extras()
    root = write_frames(tmp_path / "p", frames)
    wb.open_project(root)
    bad = frames["annotations"].copy()
    bad.loc[5, "item_id"] = "nope"
    bad.to_parquet(root / "annotations.parquet", index=False)
    assert "annotations for item_id(s) not in items: 'nope'" in problem_text(root)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-key", "one-part-missing"])
def test_open_cache_recomputes_a_corrupt_entry(tmp_path, damage):
    root = write_frames(tmp_path / "p", frames_with_extras())
    first = wb.open_project(root)
    folder = root / ".workbench" / "cache"
    target = next(folder.glob("project-frames-*.annotations.arrow"))
    if damage == "garbage":
        target.write_bytes(b"not an arrow file at all")
    elif damage == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif damage == "other-key":  # a valid file of another entry under this entry's name
        other = write_frames(tmp_path / "q", shuffled_frames(30))
        wb.open_project(other)
        source = next((other / ".workbench" / "cache").glob("*.annotations.arrow"))
        target.write_bytes(source.read_bytes())
    else:
        target.unlink()
    again = wb.open_project(root)
    assert_same_project(again, first)
    assert_same_project(wb.open_project(root), first)  # and the entry is whole again


def test_open_cache_skipped_when_the_folder_is_not_writable(tmp_path, monkeypatch):
    from workbench import project as project_module

    root = write_frames(tmp_path / "p", frames_with_extras())
    monkeypatch.setattr(project_module, "_writable", lambda root: False)
    opened = wb.open_project(root)
    assert not (root / ".workbench").exists()
    assert_same_project(opened, uncached(root))


def test_open_cache_writable_check(tmp_path):
    from workbench.project import _writable

    assert _writable(tmp_path)
    assert not _writable(tmp_path / "missing")
    if os.geteuid() != 0:  # root may write anywhere
        tmp_path.chmod(0o555)
        try:
            assert not _writable(tmp_path)
        finally:
            tmp_path.chmod(0o755)


def test_validate_project_does_not_use_the_cache(tmp_path, monkeypatch):
    root = write_frames(tmp_path / "p", frames_with_extras())
    wb.open_project(root)
    calls = []
    from workbench import project as project_module

    real = project_module._build
    monkeypatch.setattr(project_module, "_build",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    assert wb.validate_project(root, check_media=False) == []
    assert calls == [1]


def test_open_records_the_input_fingerprint(tmp_path):
    from workbench._fingerprint import input_fingerprint

    root = write_frames(tmp_path / "p", frames_with_extras())
    assert wb.open_project(root).input_fingerprint == input_fingerprint(root)
    assert wb.Project.from_frames(**shuffled_frames(20)).input_fingerprint is None


def test_a_class_name_with_a_del_character_round_trips_through_workbench_toml(tmp_path):
    classes = ["cat\x7f", "dog"]  # DEL: JSON keeps it raw, TOML forbids it raw
    items = pd.DataFrame({"item_id": ["a", "b"], "label": classes})
    root = wb.write_project(wb.Project.from_frames(items=items, classes=classes),
                            tmp_path / "p")
    assert wb.open_project(root).classes == classes


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_csv_text_that_looks_like_numbers_reads_back_as_text(tmp_path, task):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["cat", "dog", "cat"],
                          "code": ["007", "1e3", None], "flag": ["TRUE", "false", "x"],
                          "day": ["2026-01-05", "2026-01-06", "n/a"],
                          "weight": [1.5, 2.0, None], "ok": [True, False, True]})
    extra = {}
    if task == "detection":
        items = items.drop(columns="label").assign(filepath=["a.png", "b.png", "c.png"],
                                                   width=10, height=10)
        extra["boxes"] = pd.DataFrame({"item_id": ["a"], "label": ["cat"], "x": [1.0],
                                       "y": [1.0], "w": [2.0], "h": [2.0], "part": ["0012"]})
    project = wb.Project.from_frames(items=items, classes=["cat", "dog"], task=task, **extra)
    root = wb.write_project(project, tmp_path / "p", format="csv")
    assert "[csv_text_columns]" in (root / "workbench.toml").read_text(encoding="utf-8")
    back = wb.open_project(root)
    for col in ("code", "flag", "day"):
        assert back.items[col].tolist() == project.items[col].tolist(), col
    assert back.items["weight"].tolist()[:2] == [1.5, 2.0]
    assert back.items["ok"].tolist() == [True, False, True]
    if task == "detection":
        assert back.boxes["part"].tolist() == ["0012"]
