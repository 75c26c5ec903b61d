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
                          "lab": "lab-1",
                          "site": ["x", "y", "z"] * (n // 3)})
    project = wb.Project.from_frames(items=items)
    d = drift(project)
    assert d.attrs["columns"] == ["site"]
    assert set(d.attrs["skipped"]) == {"batch_date", "note", "lab"}
    assert "one date inside every batch" in d.attrs["skipped"]["batch_date"]
    assert "a single value over all items" in d.attrs["skipped"]["lab"]
    named = drift(project, columns=["batch_date", "note"])
    assert set(named["column"]) == {"batch_date", "note"}
    assert named.loc[named["column"] == "note", "value"].nunique() <= 50  # pooled "(other)"


def test_a_column_with_one_value_per_batch_that_changes_is_compared_by_default():
    """A complete swap (scanner 'a' in all of w1, 'b' in all of w2) is the largest drift."""
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(400)],
                          "batch": ["w1"] * 200 + ["w2"] * 200,
                          "scanner": ["a"] * 200 + ["b"] * 200,
                          "site": ["x", "y"] * 200})
    d = drift(wb.Project.from_frames(items=items))
    assert d.attrs["columns"] == ["scanner", "site"] and d.attrs["skipped"] == {}
    s = drift_summary(d).set_index("column")
    assert s.loc["scanner", "drifted"] and not s.loc["site", "drifted"]
    assert s.loc["scanner", "psi"] == pytest.approx(psi([200, 0], [0, 200]))
    res = chi2_contingency(np.array([[200, 0], [0, 200]]))
    assert s.loc["scanner", "chi2"] == pytest.approx(res.statistic)


def _dated(n=400):
    return pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n)], "batch": ["w1"] * 200 + ["w2"] * 200,
        "split": ["train"] * 200 + ["production"] * 200,
        "shipped": pd.to_datetime(["2026-01-01", "2026-02-01"] * 100 + ["2026-03-01"] * 200)})


def test_datetime_levels_read_as_dates_in_drift_and_coverage():
    project = wb.Project.from_frames(items=_dated())
    d = drift(project, columns=["shipped"])
    assert d["value"].tolist() == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert d["n_baseline"].tolist() == [100, 100, 0] and d["n"].tolist() == [0, 0, 200]
    assert d["drifted"].all()
    thin = wb.coverage(project, columns=["shipped"]).thin_slices
    assert thin[["value", "n_target", "n_reference"]].values.tolist() == [
        ["2026-03-01", 200, 0]]
    # a time of day anywhere in the column: every value shows its full timestamp
    items = _dated().assign(shipped=lambda f: f["shipped"] + pd.Timedelta(hours=6))
    d = drift(wb.Project.from_frames(items=items), columns=["shipped"])
    assert d["value"].tolist() == ["2026-01-01 06:00:00", "2026-02-01 06:00:00",
                                   "2026-03-01 06:00:00"]


def test_a_datetime_by_column_names_its_batches_by_date():
    items = _dated().assign(week=pd.to_datetime(["2026-01-05"] * 200 + ["2026-01-12"] * 200),
                            scanner=["a", "b"] * 100 + ["a"] * 180 + ["b"] * 20)
    project = wb.Project.from_frames(items=items.drop(columns=["batch", "split"]))
    d = drift(project, by="week", columns=["scanner"])
    assert d.attrs["batches"] == ["2026-01-05", "2026-01-12"]
    assert d.attrs["baseline"] == "2026-01-05" and set(d["batch"]) == {"2026-01-12"}
    assert d["drifted"].all()
    got = drift_items(project, "2026-01-12", "scanner", by="week")
    assert got.attrs["value"] == "a" and len(got) == 180
    assert drift(project, by="week", columns=["scanner"], baseline="2026-01-12")[
        "batch"].eq("2026-01-05").all()


def test_timezone_aware_datetimes_are_binned_in_utc_and_shown_in_their_timezone():
    rng = np.random.default_rng(0)
    seconds = np.concatenate([rng.integers(0, 10**6, 200), rng.integers(10**6, 2 * 10**6, 200)])
    stamps = pd.to_datetime("2026-01-01", utc=True) + pd.to_timedelta(seconds, unit="s")
    items = _dated().drop(columns="shipped").assign(captured=stamps)
    project = wb.Project.from_frames(items=items)
    d = drift(project)  # the default columns include the tz-aware one
    assert d.attrs["columns"] == ["split", "captured"]
    cap = d[d["column"] == "captured"]
    naive = stamps.tz_localize(None)
    cuts = np.quantile(naive[:200].as_unit("ns").asi8, np.linspace(0, 1, 11)[1:-1])
    first = pd.Timestamp(round(cuts[0] / 1e9), unit="s", tz="UTC")
    assert cap["value"].iloc[0] == f"< {first}"  # e.g. '< 2026-01-02 03:14:15+00:00'
    assert cap["value"].iloc[-1].startswith(">= ") and cap["value"].iloc[-1].endswith("+00:00")
    assert cap["n_baseline"].sum() == 200 and cap["n"].iloc[-1] == 200  # all of w2 is later
    assert cap["drifted"].all()
    # in another timezone the labels follow it; the bins (UTC) do not change
    paris = wb.Project.from_frames(items=items.assign(
        captured=stamps.tz_convert("Europe/Paris")))
    cp = drift(paris, columns=["captured"])
    assert cp["value"].iloc[-1].endswith("+01:00")
    assert cp["n"].tolist() == cap["n"].tolist()
    assert len(wb.coverage(project).slices.query("column == 'captured'")) == 10


def test_durations_are_binned_and_ordered_by_value_not_as_text():
    rng = np.random.default_rng(1)
    seconds = np.concatenate([rng.uniform(0, 100, 200), rng.uniform(200, 300, 200)])
    items = _dated().drop(columns="shipped").assign(
        scan_time=pd.to_timedelta(seconds, unit="s"))
    project = wb.Project.from_frames(items=items)
    d = drift(project)  # many distinct durations: binned like numbers, not left out as text
    assert "scan_time" in d.attrs["columns"]
    scan = d[d["column"] == "scan_time"]
    cuts = np.quantile(pd.to_timedelta(seconds[:200], unit="s").as_unit("ns").asi8,
                       np.linspace(0, 1, 11)[1:-1])
    assert scan["value"].iloc[0] == f"< {pd.Timedelta(int(cuts[0]), unit='ns')}"
    assert scan["value"].iloc[-1] == f">= {pd.Timedelta(int(cuts[-1]), unit='ns')}"
    assert scan["n"].iloc[-1] == 200 and scan["drifted"].all()
    # few distinct durations: levels in the order of their values ('2 days' before '10 days')
    few = items.assign(scan_time=pd.to_timedelta(["10 days", "2 days"] * 100 + ["2 days"] * 200))
    d = drift(wb.Project.from_frames(items=few), columns=["scan_time"])
    assert d["value"].tolist() == ["2 days", "10 days"]
    assert d["n_baseline"].tolist() == [100, 100] and d["n"].tolist() == [200, 0]


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


def test_an_unknown_run_is_an_error():
    project, _ = _shifted_project()
    with pytest.raises(ValueError, match=r"The 'run' parameter of drift must be a str among "
                                         r"\{'.*'\} or None\. Got 'nope' instead\."):
        drift(project, columns=["meta_0"], run="nope")
    with pytest.raises(ValueError, match="The 'run' parameter of drift_items"):
        drift_items(project, "w4", "meta_0", run="nope")
    assert drift(project, columns=["meta_0"], run=project.default_run).attrs["columns"] == \
        ["meta_0"]


@pytest.mark.parametrize(("expected", "actual", "match"), [
    ([1, 2], [1, 2, 3], r"'actual' parameter of psi must hold one count per value of "
                        r"'expected' \(2 values"),
    ([0, 0], [1, 1], r"'expected' parameter of psi must hold at least one positive count"),
    ([1, 1], [0, 0], r"'actual' parameter of psi must hold at least one positive count"),
    ([1, -1], [1, 1], r"'expected' parameter of psi must hold finite, non-negative counts\. "
                      r"Got -1\.0 at position 1"),
    ([1, np.nan], [1, 1], r"non-negative counts\. Got nan at position 1"),
    ([1, 1], [np.inf, 1], r"'actual' parameter of psi must hold finite"),
    ([[1, 2]], [1, 2], r"'expected' parameter of psi must be 1-D"),
    (["a", "b"], [1, 2], r"'expected' parameter of psi must be a 1-D array-like of counts"),
])
def test_psi_rejects_invalid_counts(expected, actual, match):
    with pytest.raises(ValueError, match=match):
        psi(expected, actual)


def test_psi_checks_epsilon_and_takes_shares():
    with pytest.raises(ValueError, match=r"'epsilon' parameter of psi must be a float in the "
                                         r"range \(0, 1\]\. Got 0 instead"):
        psi([1, 1], [1, 0], epsilon=0)
    assert psi([0.5, 0.5], [0.8, 0.2]) == pytest.approx(psi([50, 50], [80, 20]))


def test_the_package_exports_the_functions_not_the_modules():
    import importlib

    module = importlib.import_module("workbench.drift")  # imported by the tests above, too
    assert wb.drift is module.drift and wb.drift_items is module.drift_items
    assert wb.coverage is importlib.import_module("workbench.coverage").coverage
    assert {"coverage", "drift", "drift_items", "Coverage"} <= set(wb.__all__)
