"""Synthetic projects: shapes, determinism, and the planted slices are really planted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.project import Project, open_project
from workbench.synthetic import (
    default_planted_slices,
    make_project,
    read_planted,
    write_project,
)

N = 40_000


@pytest.fixture(scope="module")
def project():
    return make_project(N, seed=7)


def _in(frame: pd.DataFrame, conditions: dict) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for col, level in conditions.items():
        mask &= frame[col].to_numpy() == level
    return mask


def _errors(project: Project, run: str = "run_0") -> pd.DataFrame:
    pred = project.predictions[project.predictions["run"] == run]
    merged = pred[["item_id", "label"]].merge(project.items, on="item_id", suffixes=("_pred", ""))
    merged["error"] = merged["label_pred"] != merged["label"]
    return merged


def test_shapes_and_columns(project):
    assert isinstance(project, Project)
    items, ann, pred = project.items, project.annotations, project.predictions
    assert len(items) == N and items["item_id"].is_unique
    assert list(items.columns) == ["item_id", "label"] + [f"meta_{j}" for j in range(10)]
    assert items["item_id"].iloc[0] == "item-0000000"
    assert len(ann) == 3 * N
    assert ann["annotator"].nunique() == 5
    per_item = ann.groupby("item_id")["annotator"].agg(["size", "nunique"])
    assert (per_item["size"] == 3).all() and (per_item["nunique"] == 3).all()
    assert len(pred) == N and project.runs == ["run_0"] and project.default_run == "run_0"
    assert project.classes == [str(k) for k in range(10)]
    assert project.prob_columns == [f"prob_{k}" for k in range(10)]
    for frame, cols in ((items, ["item_id", "label", "meta_0"]),
                        (ann, ["item_id", "annotator", "label"]), (pred, ["run", "label"])):
        for col in cols:
            assert pd.api.types.is_string_dtype(frame[col].dtype), (col, frame[col].dtype)
    assert str(ann["annotated_at"].dtype).startswith("datetime64")
    assert set(project.items["label"]) <= set(project.classes)


def test_metadata_levels_are_few_and_all_used(project):
    for j in range(10):
        levels = project.items[f"meta_{j}"].value_counts()
        assert 3 <= len(levels) <= 8
        assert levels.min() / N > 0.02  # every level has support


def test_probabilities_sum_to_one_and_match_labels(project):
    pred = project.predictions
    probs = pred[project.prob_columns].to_numpy()
    assert np.abs(probs.sum(axis=1) - 1).max() < 1e-9
    assert (probs >= 0).all()
    top = np.asarray(project.classes)[probs.argmax(axis=1)]
    assert (top == pred["label"].to_numpy()).all()
    np.testing.assert_allclose(pred["confidence"].to_numpy(), probs.max(axis=1))


def test_wrong_predictions_are_less_confident(project):
    merged = _errors(project).merge(project.predictions[["item_id", "confidence"]], on="item_id")
    assert merged.loc[merged["error"], "confidence"].mean() < \
        merged.loc[~merged["error"], "confidence"].mean() - 0.2


def test_same_seed_same_project_other_seed_other_project():
    a, b, c = make_project(3_000, seed=3), make_project(3_000, seed=3), make_project(3_000, seed=4)
    for name in ("items", "annotations", "predictions"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_series_equal(a.info["truth"], b.info["truth"])
    assert not a.items["meta_0"].equals(c.items["meta_0"])
    assert not a.predictions["label"].equals(c.predictions["label"])


def test_default_planted_slices_are_recorded(project):
    planted = project.info["planted_slices"]
    assert [s["conditions"] for s in planted] == [
        {"meta_1": "b"}, {"meta_3": "c", "meta_5": "a"}, {"meta_2": "c"}]
    assert [s["target"] for s in planted] == ["correct", "correct", "agreement"]
    for spec in planted:
        assert spec["n_items"] == int(_in(project.items, spec["conditions"]).sum()) > 0.03 * N


@pytest.mark.parametrize("k", [0, 1])
def test_planted_model_slices_have_the_stated_error_rate(project, k):
    spec = project.info["planted_slices"][k]
    merged = _errors(project)
    inside = _in(merged, spec["conditions"])
    rate = merged["error"][inside].mean()
    n = inside.sum()
    # overlapping slices take the higher rate, so allow a little above the stated rate
    assert spec["error_rate"] - 4 * np.sqrt(0.25 / n) < rate < spec["error_rate"] + 0.03
    outside = ~np.zeros(len(merged), dtype=bool)
    for other in project.info["planted_slices"]:
        if other["target"] == "correct":
            outside &= ~_in(merged, other["conditions"])
    base = merged["error"][outside].mean()
    assert abs(base - project.info["base_error_rate"]) < 0.01
    assert rate > 3.5 * base  # several times the base rate


def test_label_noise_and_truth(project):
    truth = project.info["truth"]
    assert truth.index.name == "item_id" and len(truth) == N
    assert truth.index.equals(pd.Index(project.items["item_id"]))
    wrong = (project.items["label"].to_numpy() != truth.to_numpy()).mean()
    assert abs(wrong - project.info["label_noise"]) < 0.004


def test_planted_agreement_slice_has_noisier_annotators(project):
    spec = project.info["planted_slices"][2]
    ann = project.annotations.merge(project.items[["item_id", "meta_2"]], on="item_id")
    ann["correct"] = ann["label"].to_numpy() == project.info["truth"].reindex(
        ann["item_id"]).to_numpy()
    inside = _in(ann, spec["conditions"])
    assert abs((1 - ann["correct"][inside].mean()) - spec["annotator_error_rate"]) < 0.03
    assert 1 - ann["correct"][~inside].mean() < 0.15
    # annotators disagree more inside the slice
    unanimous = ann.groupby("item_id")["label"].nunique().eq(1)
    items_in = project.items.loc[_in(project.items, spec["conditions"]), "item_id"]
    assert unanimous[items_in].mean() < unanimous.drop(items_in).mean() - 0.2


def test_careless_annotator_is_the_worst(project):
    ann = project.annotations
    correct = ann["label"].to_numpy() == project.info["truth"].reindex(ann["item_id"]).to_numpy()
    acc = pd.Series(correct).groupby(ann["annotator"].to_numpy()).mean()
    assert acc.idxmin() == project.info["careless_annotator"] == "ann_04"


def test_custom_slices_runs_and_sizes():
    planted = [{"conditions": {"meta_0": "a"}, "target": "correct", "error_rate": 0.6}]
    p = make_project(20_000, n_classes=12, n_annotators=40, labels_per_item=4, n_metadata=3,
                     n_runs=3, planted_slices=planted, base_error_rate=0.05, label_noise=0.0,
                     seed=2)
    assert p.classes == [f"{k:02d}" for k in range(12)]
    assert p.runs == ["run_0", "run_1", "run_2"]
    assert len(p.predictions) == 3 * 20_000
    per_item = p.annotations.groupby("item_id")["annotator"].agg(["size", "nunique"])
    assert (per_item["size"] == 4).all() and (per_item["nunique"] == 4).all()
    assert p.annotations["annotator"].nunique() == 40
    merged = _errors(p, "run_2")
    inside = _in(merged, {"meta_0": "a"})
    assert abs(merged["error"][inside].mean() - 0.6) < 0.03
    rates = p.info["run_base_error_rates"]
    assert rates["run_0"] > rates["run_1"] > rates["run_2"]
    assert abs(merged["error"][~inside].mean() - rates["run_2"]) < 0.01


def test_no_annotations_no_predictions_no_probs():
    p = make_project(500, n_annotators=0, n_runs=0, n_metadata=0, seed=1)
    assert p.annotations.empty and p.predictions.empty and p.runs == []
    assert p.info["planted_slices"] == []
    q = make_project(500, with_probs=False, planted_slices=[], seed=1)
    assert q.prob_columns == [] and q.predictions["confidence"].between(0, 1).all()


def test_default_planted_slices_adapt_to_few_columns():
    assert default_planted_slices(0) == []
    two = default_planted_slices(2)
    assert two[0]["conditions"] == {"meta_1": "b"}
    assert all(c in ("meta_0", "meta_1") for s in two for c in s["conditions"])
    for m in range(1, 8):
        make_project(300, n_metadata=m, seed=0)  # every default is valid


def test_images_are_written(tmp_path):
    p = make_project(60, images=True, directory=tmp_path, seed=0)
    assert p.root == tmp_path
    assert (p.items["filepath"] == "images/" + p.items["item_id"] + ".png").all()
    assert (p.media_status()["status"] == "ok").all()
    from PIL import Image

    with Image.open(p.media_path("item-0000005")) as img:
        assert img.mode == "L" and img.size == (32, 32)


def test_write_project_round_trip(tmp_path):
    p = make_project(2_000, seed=5)
    root = write_project(p, tmp_path / "synth", format="parquet")
    assert (root / "items.parquet").exists() and (root / "truth.parquet").exists()
    reopened = open_project(root)
    pd.testing.assert_frame_equal(reopened.items, p.items)
    assert len(reopened.annotations) == len(p.annotations)
    info = read_planted(root)
    assert info["planted_slices"] == p.info["planted_slices"]
    pd.testing.assert_series_equal(info["truth"], p.info["truth"])
    root_csv = write_project(p, tmp_path / "synth_csv", format="csv")
    pd.testing.assert_series_equal(read_planted(root_csv)["truth"], p.info["truth"])
    with pytest.raises(FileNotFoundError, match="synthetic.json"):
        read_planted(tmp_path)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_items": 0}, ValueError, "'n_items' parameter of make_project"),
    ({"n_classes": 1}, ValueError, "'n_classes' parameter"),
    ({"labels_per_item": 6}, ValueError, "'labels_per_item' parameter"),
    ({"seed": 1.5}, TypeError, "'seed' parameter"),
    ({"base_error_rate": 0.01}, ValueError, "'base_error_rate' parameter"),
    ({"images": True}, ValueError, "needs a folder"),
    ({"with_probs": "yes"}, TypeError, "'with_probs' parameter"),
    ({"planted_slices": [{"conditions": {"meta_10": "a"}, "error_rate": 0.3}]}, ValueError,
     "meta_10"),
    ({"planted_slices": [{"conditions": {"meta_2": "z"}, "error_rate": 0.3}]}, ValueError,
     "levels are"),
    ({"planted_slices": [{"conditions": {"meta_2": "a"}, "target": "x", "error_rate": 0.3}]},
     ValueError, "'target' parameter"),
    ({"planted_slices": [{"conditions": {"meta_2": "a"}}]}, ValueError, "'error_rate'"),
    ({"planted_slices": "meta_1=b"}, TypeError, "'planted_slices' parameter"),
])
def test_parameter_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_project(**{"n_items": 100, **kwargs})


def test_every_annotator_on_every_item_when_asked():
    p = make_project(1_000, n_annotators=40, labels_per_item=40, n_metadata=2, n_runs=0, seed=0)
    per_item = p.annotations.groupby("item_id")["annotator"].nunique()
    assert (per_item == 40).all()


def test_write_project_drops_a_stale_answer_key(tmp_path):
    root = write_project(make_project(300, seed=0), tmp_path / "p")
    assert (root / "synthetic.json").exists()
    plain = Project.from_frames(items=pd.DataFrame({"item_id": ["x", "y"], "label": ["a", "b"]}))
    write_project(plain, root, format="csv")
    assert not (root / "synthetic.json").exists()
    assert not (root / "truth.parquet").exists() and not (root / "truth.csv").exists()
    assert open_project(root).items["item_id"].tolist() == ["x", "y"]
