"""drift, drift_summary, drift_items: PSI and chi-square per batch against a baseline batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, false_discovery_control

import workbench as wb
from workbench.drift import PSI_EPSILON, drift, drift_items, drift_summary, psi
from workbench.errors import SchemaError

BATCHES = ["w1", "w2", "w3", "w4", "w5"]


def _shifted_project(seed: int = 0, shifted: str = "w4", to_class: str = "3", share=0.5):
    """A synthetic project in five batches; in ``shifted`` the model predicts ``to_class``
    for ``share`` of the items instead of its own prediction (a changed class mix)."""
    p = wb.make_project(3_000, n_classes=6, n_annotators=0, n_metadata=3, with_probs=False,
                        seed=seed)
    rng = np.random.default_rng(seed)
    items = p.items.assign(batch=rng.choice(BATCHES, size=len(p.items)))
    pred = p.predictions.copy()
    in_batch = pred["item_id"].map(items.set_index("item_id")["batch"]).eq(shifted).to_numpy()
    moved = in_batch & (rng.random(len(pred)) < share)
    pred.loc[moved, "label"] = to_class
    project = wb.Project.from_frames(items=items, predictions=pred, classes=p.classes)
    return project, set(pred.loc[in_batch & pred["label"].eq(to_class).to_numpy(), "item_id"])


def test_drift_flags_the_batch_whose_class_mix_changed_and_no_other():
    project, _ = _shifted_project()
    d = drift(project)
    assert d.attrs["baseline"] == "w1" and d.attrs["batches"] == BATCHES
    assert d.attrs["columns"] == ["meta_0", "meta_1", "meta_2", "predicted"]
    assert set(d["batch"]) == {"w2", "w3", "w4", "w5"}  # the baseline is not compared to itself
    summary = drift_summary(d)
    flagged = summary[summary["drifted"]]
    assert list(zip(flagged["batch"], flagged["column"], strict=True)) == [("w4", "predicted")]
    top = flagged.iloc[0]
    assert top["value"] == "3" and top["share"] > top["share_baseline"] + 0.3
    assert top["psi"] > 0.2 and top["q_value"] < 0.01
    # the unchanged batches and the random metadata stay well below the threshold
    calm = summary[~summary["drifted"]]
    assert (calm["psi"] < 0.1).all()


def test_drift_with_another_baseline_flags_every_batch_against_the_shifted_one():
    project, _ = _shifted_project()
    summary = drift_summary(drift(project, baseline="w4", columns=["predicted"]))
    assert set(summary.loc[summary["drifted"], "batch"]) == {"w1", "w2", "w3", "w5"}


def test_drift_items_are_the_items_behind_the_drifted_value():
    project, expected = _shifted_project()
    items = drift_items(project, "w4", "predicted")
    assert items.attrs["value"] == "3"
    assert list(items.columns) == ["item_id", "batch", "predicted"]
    assert set(items["item_id"]) == expected
    assert (items["batch"] == "w4").all()
    same = drift_items(project, "w4", "predicted", value="3")
    assert same["item_id"].tolist() == items["item_id"].tolist()
    other = drift_items(project, "w4", "meta_0", value="a")
    ids = project.items.loc[project.items["batch"].eq("w4") & project.items["meta_0"].eq("a"),
                            "item_id"]
    assert other["item_id"].tolist() == ids.tolist()


def _small():
    items = pd.DataFrame({
        "item_id": [f"i{i:03d}" for i in range(300)],
        "batch": ["b1"] * 100 + ["b2"] * 100 + ["b3"] * 100,
        "color": (["red"] * 50 + ["blue"] * 50) + (["red"] * 70 + ["blue"] * 30)
        + (["red"] * 40 + ["blue"] * 40 + ["green"] * 20),
        "shape": ["square", "round"] * 150,
    })
    return wb.Project.from_frames(items=items)


def test_psi_and_chi_square_match_a_hand_computation_and_scipy():
    d = drift(_small())
    assert d.attrs["columns"] == ["color", "shape"]
    color = d[d["column"] == "color"]
    b2 = color[color["batch"] == "b2"].set_index("value")
    assert list(b2.index) == ["blue", "red"]  # levels sorted as text
    assert b2.loc["red", ["n_baseline", "n"]].tolist() == [50, 70]
    hand = (0.7 - 0.5) * np.log(0.7 / 0.5) + (0.3 - 0.5) * np.log(0.3 / 0.5)
    assert b2["psi"].iloc[0] == pytest.approx(hand)
    assert b2["psi_term"].sum() == pytest.approx(hand)
    res = chi2_contingency(np.array([[50, 50], [30, 70]]))  # columns blue, red
    assert b2["chi2"].iloc[0] == pytest.approx(res.statistic)
    assert b2["p_value"].iloc[0] == pytest.approx(res.pvalue)
    assert b2["dof"].iloc[0] == 1
    # a value new in the batch: its baseline share counts as epsilon
    b3 = color[color["batch"] == "b3"].set_index("value")
    assert b3.loc["green", "n_baseline"] == 0 and b3.loc["green", "share"] == pytest.approx(0.2)
    assert b3.loc["green", "psi_term"] == pytest.approx(
        (0.2 - PSI_EPSILON) * np.log(0.2 / PSI_EPSILON))
    assert b3["psi"].iloc[0] == pytest.approx(psi([50, 50, 0], [40, 40, 20]))
    # the q-values are Benjamini-Hochberg over every (batch, column) pair
    pairs = d.drop_duplicates(["batch", "column"])
    assert pairs["q_value"].to_numpy() == pytest.approx(
        false_discovery_control(pairs["p_value"].to_numpy(), method="bh"))
    # a column that does not change: PSI 0, p 1 (shape alternates in every batch)
    shape = d[d["column"] == "shape"]
    assert shape["psi"].to_numpy() == pytest.approx(0.0) and not shape["drifted"].any()


def test_drifted_needs_both_psi_and_significance():
    d = drift(_small())
    s = drift_summary(d).set_index(["batch", "column"])
    # b3/color: a new value (PSI ~1.5) on 100 items: significant and large
    assert s.loc[("b3", "color"), "psi"] > 0.2 and s.loc[("b3", "color"), "drifted"]
    # b2/color: PSI 0.08 below the threshold, however small p is
    assert s.loc[("b2", "color"), "psi"] < 0.2 and not s.loc[("b2", "color"), "drifted"]
    loose = drift_summary(drift(_small(), psi_threshold=0.05, alpha=0.05))
    assert loose.set_index(["batch", "column"]).loc[("b2", "color"), "drifted"]


def test_numeric_columns_are_binned_at_the_baseline_quantiles():
    rng = np.random.default_rng(3)
    n = 2_000
    batch = np.repeat(["b1", "b2", "b3"], [800, 600, 600])
    size = rng.normal(10, 1, n)
    size[batch == "b3"] += 3.0  # beyond the baseline's range for many items
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "batch": batch,
                          "size": size})
    d = drift(wb.Project.from_frames(items=items))
    base = np.quantile(size[batch == "b1"], np.linspace(0, 1, 11)[1:-1])
    b2 = d[(d["batch"] == "b2")]
    assert len(b2) == 10
    assert b2["value"].iloc[0] == f"< {base[0]:.4g}" and b2["value"].iloc[-1] == \
        f">= {base[-1]:.4g}"
    assert b2["share_baseline"].to_numpy() == pytest.approx(0.1, abs=0.002)
    s = drift_summary(d).set_index("batch")
    assert s.loc["b3", "drifted"] and not s.loc["b2", "drifted"]
    assert s.loc["b3", "value"].startswith(">= ")
    top = drift_items(wb.Project.from_frames(items=items), "b3", "size")
    assert top.attrs["value"] == s.loc["b3", "value"]
    assert (items.set_index("item_id").loc[top["item_id"], "size"] >= base[-1]).all()


def test_missing_values_are_a_value_of_their_own():
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(200)],
                          "batch": ["b1"] * 100 + ["b2"] * 100,
                          "site": ["x", "y"] * 50 + ["x"] * 40 + [None] * 60})
    d = drift(wb.Project.from_frames(items=items))
    assert "(missing)" in set(d["value"])
    assert drift_summary(d).iloc[0]["drifted"]
    gone = drift_items(wb.Project.from_frames(items=items), "b2", "site")
    assert gone.attrs["value"] == "(missing)" and len(gone) == 60


def test_default_columns_skip_batch_descriptions_and_identifiers():
    n = 120
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)],
                          "batch": np.repeat(["b1", "b2"], n // 2),
                          "batch_date": np.repeat(["2026-01-01", "2026-01-08"], n // 2),
                          "note": [f"free text {i}" for i in range(n)],
                          "site": ["x", "y", "z"] * (n // 3)})
    project = wb.Project.from_frames(items=items)
    d = drift(project)
    assert d.attrs["columns"] == ["site"]
    assert set(d.attrs["skipped"]) == {"batch_date", "note"}
    assert "one value inside every batch" in d.attrs["skipped"]["batch_date"]
    named = drift(project, columns=["batch_date", "note"])
    assert set(named["column"]) == {"batch_date", "note"}
    assert named.loc[named["column"] == "note", "value"].nunique() <= 50  # pooled "(other)"


def test_drift_on_the_sample_finds_no_drift(sample_project):
    d = drift(sample_project)
    assert d.attrs["baseline"] == sorted(sample_project.items["batch"].unique())[0]
    assert "batch_date" in d.attrs["skipped"]
    assert "predicted" in d.attrs["columns"] and d.attrs["run"] == sample_project.default_run
    assert not d["drifted"].any()


def test_a_detection_project_compares_metadata_only():
    items = pd.DataFrame({"item_id": [f"img{i}" for i in range(40)], "width": 100,
                          "height": 80, "batch": ["b1", "b2"] * 20,
                          "camera": ["c1", "c1", "c2", "c2"] * 10})
    boxes = pd.DataFrame({"item_id": items["item_id"], "label": "cat", "x": 1.0, "y": 1.0,
                          "w": 10.0, "h": 10.0})
    preds = boxes.assign(run="r1", confidence=0.9)
    project = wb.Project.from_frames(items=items, boxes=boxes, predictions=preds)
    assert project.task == "detection"
    d = drift(project, columns=None)
    assert "predicted" not in d.attrs["columns"] and "predicted" in d.attrs["skipped"]
    assert "camera" in d.attrs["columns"] and not d["drifted"].any()


def test_parameter_errors_name_the_fix():
    project = _small()
    with pytest.raises(SchemaError, match=r"no column 'bacth'.*Did you mean 'batch'\?"):
        drift(project, by="bacth")
    with pytest.raises(TypeError, match="'by' parameter of drift must be a str"):
        drift(project, by=3)
    with pytest.raises(ValueError, match=r"'baseline' parameter of drift .* among \['b1', 'b2', "
                                         r"'b3'\].*Got 'b9'"):
        drift(project, baseline="b9")
    with pytest.raises(ValueError, match=r"'columns' parameter of drift .*Did you mean "
                                         r"'color'\? Got 'colour'"):
        drift(project, columns=["colour"])
    with pytest.raises(ValueError, match="the batch column itself"):
        drift(project, columns=["batch"])
    with pytest.raises(ValueError, match="the project has no predictions"):
        drift(project, columns=["predicted"])
    with pytest.raises(ValueError, match="must name at least one column"):
        drift(project, columns=[])
    with pytest.raises(ValueError, match="'psi_threshold' parameter of drift"):
        drift(project, psi_threshold=-1)
    with pytest.raises(ValueError, match="'alpha' parameter of drift"):
        drift(project, alpha=2)
    with pytest.raises(ValueError, match=r"has 1 value\(s\) \['b1'\]"):
        drift(wb.Project.from_frames(items=project.items[project.items["batch"] == "b1"]))
    with pytest.raises(ValueError, match=r"'batch' parameter of drift_items .*Got 'b7'"):
        drift_items(project, "b7", "color")
    with pytest.raises(ValueError, match=r"'value' parameter of drift_items .*\['blue', "
                                         r"'green', 'red'\].*Got 'pink'"):
        drift_items(project, "b3", "color", value="pink")
    with pytest.raises(ValueError, match="no value of 'shape' grew"):
        drift_items(project, "b2", "shape")


def test_the_package_exports_the_functions_not_the_modules():
    import importlib

    module = importlib.import_module("workbench.drift")  # imported by the tests above, too
    assert wb.drift is module.drift and wb.drift_items is module.drift_items
    assert wb.coverage is importlib.import_module("workbench.coverage").coverage
    assert {"coverage", "drift", "drift_items", "Coverage"} <= set(wb.__all__)
