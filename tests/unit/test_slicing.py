"""Slicing: errors frame, confusion table, metrics per slice, discovery, run comparison.

Metrics are checked against scikit-learn, statsmodels and scipy on the sample project and on
random data; discovery against slices planted where the truth is known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

import workbench as wb
from workbench.errors import SchemaError
from workbench.slicing import bh_adjust, slice_items, wilson_interval


@pytest.fixture(scope="module")
def sample_errors(sample_project):
    return sample_project.errors()


def _random_errors(seed: int, n: int = 500, k: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(k)]
    label = rng.choice(classes, n)
    pred = np.where(rng.random(n) < 0.7, label, rng.choice(classes, n))
    return pd.DataFrame({
        "item_id": [f"r{i}" for i in range(n)], "label": label, "predicted": pred,
        "correct": label == pred, "group": rng.choice(["x", "y", "z"], n),
        "size": rng.normal(size=n),
    })


# ---- project_errors -------------------------------------------------------------------


def test_project_errors_columns_and_reference(sample_project, sample_errors):
    e = sample_errors
    assert list(e.columns[:5]) == ["item_id", "label", "predicted", "confidence", "correct"]
    assert set(sample_project.metadata_columns) <= set(e.columns)
    assert len(e) == len(sample_project.items)
    assert e.attrs["n_excluded"] == 0 and e.attrs["run"] == sample_project.default_run
    ref = sample_project.reference_labels()
    assert (e["label"].astype(str).to_numpy() == ref.loc[e["item_id"]].to_numpy()).all()
    preds = sample_project.predictions
    preds = preds[preds["run"] == sample_project.default_run].set_index("item_id")
    assert (e["predicted"].astype(str).to_numpy() == preds.loc[e["item_id"], "label"]).all()
    assert (e["correct"] == (e["label"].astype(str) == e["predicted"].astype(str))).all()
    assert e["is_error"].dtype == bool and (e["is_error"] == ~e["correct"]).all()
    assert "is_error" not in e.attrs["metadata_columns"]
    assert list(e["label"].cat.categories) == sample_project.classes


def test_project_errors_other_run_differs(sample_project):
    a, b = sample_project.errors("baseline"), sample_project.errors("candidate")
    assert a.attrs["run"] == "baseline" and b.attrs["run"] == "candidate"
    assert (a["predicted"].astype(str) != b["predicted"].astype(str)).any()


def test_project_errors_excludes_items_without_prediction_or_reference():
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "label": ["x", None, None, "y"],
                          "site": ["s", "s", "t", "t"]})
    ann = pd.DataFrame({"item_id": ["b", "b"], "annotator": ["p", "q"], "label": ["y", "y"]})
    preds = pd.DataFrame({"item_id": ["a", "b", "c"], "run": "r", "label": ["x", "x", "y"]})
    project = wb.Project.from_frames(items=items, annotations=ann, predictions=preds)
    e = project.errors()
    assert e["item_id"].tolist() == ["a", "b"]  # c: no reference label; d: no prediction
    assert e["label"].astype(str).tolist() == ["x", "y"]  # b: consensus of the annotators
    assert e["correct"].tolist() == [True, False]
    assert e.attrs["excluded"] == {"no_prediction": 1, "no_reference": 1}
    assert e.attrs["n_excluded"] == 2
    assert np.isnan(e["confidence"]).all()


def test_project_errors_bad_run(sample_project):
    with pytest.raises(ValueError, match="The 'run' parameter of project_errors must be"):
        sample_project.errors("nope")


def test_project_errors_without_predictions():
    project = wb.Project.from_frames(items=pd.DataFrame({"item_id": ["a"], "label": ["x"]}))
    with pytest.raises(ValueError, match="no predictions"):
        wb.project_errors(project)


# ---- confusion table ------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_table_equals_sklearn_on_sample(sample_project, sample_errors, normalize):
    table = wb.confusion_table(sample_errors, normalize=normalize)
    classes = sample_project.classes
    expected = confusion_matrix(sample_errors["label"].astype(str),
                                sample_errors["predicted"].astype(str), labels=classes,
                                normalize=normalize)
    assert list(table.index) == classes and list(table.columns) == classes
    assert table.index.name == "true" and table.columns.name == "predicted"
    np.testing.assert_allclose(table.to_numpy(), expected)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_table_equals_sklearn_on_random_data(seed, normalize):
    e = _random_errors(seed, n=200, k=5)
    e = e[e["label"] != "c4"]  # a class only predicted: an empty row
    table = wb.confusion_table(e, normalize=normalize)
    classes = sorted(set(e["label"]) | set(e["predicted"]))
    assert list(table.index) == classes
    expected = confusion_matrix(e["label"], e["predicted"], labels=classes,
                                normalize=normalize)
    np.testing.assert_allclose(table.to_numpy(), expected)


def test_confusion_table_uses_category_order():
    cats = ["zebra", "ant", "mole"]
    e = pd.DataFrame({"item_id": ["1", "2"],
                      "label": pd.Categorical(["ant", "zebra"], categories=cats),
                      "predicted": pd.Categorical(["ant", "ant"], categories=cats)})
    table = wb.confusion_table(e)
    assert list(table.index) == cats and list(table.columns) == cats
    assert table.loc["zebra", "ant"] == 1 and table.to_numpy().sum() == 2


def test_cell_items_are_the_cell(sample_errors):
    table = wb.confusion_table(sample_errors)
    total = 0
    for t in table.index[:4]:
        for p in table.columns:
            ids = wb.cell_items(sample_errors, t, p)
            assert len(ids) == table.loc[t, p]
            sub = sample_errors.set_index("item_id").loc[ids]
            assert (sub["label"].astype(str) == t).all() and (sub["predicted"].astype(str)
                                                              == p).all()
            total += len(ids)
    assert total == table.iloc[:4].to_numpy().sum()
    assert len(wb.cell_items(sample_errors, "1", None)) == table.loc["1"].sum()


def test_confusion_table_rejects_bad_normalize(sample_errors):
    with pytest.raises(ValueError, match="The 'normalize' parameter of confusion_table must "
                                         "be a str among"):
        wb.confusion_table(sample_errors, normalize="rows")


def test_confusion_table_missing_column():
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['predicted'\]"):
        wb.confusion_table(pd.DataFrame({"label": ["a"]}))


# ---- statistics helpers ---------------------------------------------------------------


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(0)
    nobs = rng.integers(1, 500, 200)
    count = rng.integers(0, nobs + 1)
    count[:3] = [0, nobs[1], 1]
    low, high = wilson_interval(count, nobs)
    exp_low, exp_high = proportion_confint(count, nobs, alpha=0.05, method="wilson")
    np.testing.assert_allclose(low, exp_low, atol=1e-12)
    np.testing.assert_allclose(high, exp_high, atol=1e-12)
    # a value from the literature: 3 of 10 -> [0.1078, 0.6032]
    low, high = wilson_interval([3], [10])
    assert round(low[0], 4) == 0.1078 and round(high[0], 4) == 0.6032


def test_bh_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(1).random(50) ** 3
    np.testing.assert_allclose(bh_adjust(p), multipletests(p, method="fdr_bh")[1])


# ---- slice_metrics --------------------------------------------------------------------


def test_slice_metrics_counts_match_groupby(sample_errors):
    cols = ["scanner", "vendor", "split"]
    m = wb.slice_metrics(sample_errors, cols)
    assert list(m.columns[:11]) == ["column", "value", "bin", "n", "errors", "error_rate",
                                    "ci_low", "ci_high", "lift", "p_value", "q_value"]
    overall = 1 - sample_errors["correct"].mean()
    for col in cols:
        g = (~sample_errors["correct"]).groupby(sample_errors[col]).agg(["size", "sum", "mean"])
        sub = m[m["column"] == col].set_index("value")
        assert sub["n"].sum() == len(sample_errors)
        np.testing.assert_array_equal(sub.loc[g.index, "n"], g["size"])
        np.testing.assert_array_equal(sub.loc[g.index, "errors"], g["sum"])
        np.testing.assert_allclose(sub.loc[g.index, "error_rate"], g["mean"])
        np.testing.assert_allclose(sub.loc[g.index, "lift"], g["mean"] / overall)
    assert m.attrs["overall_rate"] == pytest.approx(overall)


def test_slice_metrics_sample_finds_degraded_scanner(sample_errors):
    from workbench.sample import DEGRADED_SCANNER

    m = wb.slice_metrics(sample_errors, "scanner")
    worst = m.sort_values("error_rate").iloc[-1]
    assert worst["value"] == DEGRADED_SCANNER
    assert worst["lift"] > 1.5 and worst["q_value"] < 0.001
    assert worst["ci_low"] < worst["error_rate"] < worst["ci_high"]


def test_slice_metrics_intervals_and_tests_against_references(sample_errors):
    from scipy.stats import fisher_exact
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportion_confint, proportions_ztest

    m = wb.slice_metrics(sample_errors, ["scanner", "split", "batch"])
    low, high = proportion_confint(m["errors"], m["n"], method="wilson")
    np.testing.assert_allclose(m["ci_low"], low)
    np.testing.assert_allclose(m["ci_high"], high)
    total_n, total_e = len(sample_errors), int((~sample_errors["correct"]).sum())
    for _, r in m.iterrows():
        n2, e2 = total_n - r["n"], total_e - r["errors"]
        _, p = proportions_ztest([r["errors"], e2], [r["n"], n2])
        assert r["p_value"] == pytest.approx(p, rel=1e-6)  # all expected counts >= 5 here
    np.testing.assert_allclose(m["q_value"], multipletests(m["p_value"], method="fdr_bh")[1])
    # a tiny slice uses Fisher's exact test
    e = sample_errors.assign(tiny=np.where(np.arange(total_n) < 6, "few", "many"))
    r = wb.slice_metrics(e, "tiny").set_index("value").loc["few"]
    table = [[r["errors"], r["n"] - r["errors"]],
             [total_e - r["errors"], total_n - r["n"] - (total_e - r["errors"])]]
    assert r["p_value"] == pytest.approx(fisher_exact(table)[1])


def test_slice_metrics_per_class_recall_matches_sklearn(sample_project, sample_errors):
    m = wb.slice_metrics(sample_errors, "scanner", per_class_recall=True)
    classes = sample_project.classes
    for _, row in m.iterrows():
        sub = sample_errors[sample_errors["scanner"] == row["value"]]
        rec = recall_score(sub["label"].astype(str), sub["predicted"].astype(str),
                           labels=classes, average=None, zero_division=np.nan)
        np.testing.assert_allclose(row[[f"recall_{c}" for c in classes]].to_numpy(float), rec)
        acc = accuracy_score(sub["label"].astype(str), sub["predicted"].astype(str))
        assert 1 - row["error_rate"] == pytest.approx(acc)


def test_slice_metrics_bins_numeric_columns():
    e = _random_errors(3, n=1000)
    m = wb.slice_metrics(e, "size", bins=4)
    assert len(m) == 4 and m["n"].sum() == 1000
    assert m["n"].between(240, 260).all()  # quantile bins
    assert m["bin"].iloc[0].startswith("[") and m["bin"].iloc[0].endswith(")")
    assert m["bin"].iloc[-1].endswith("]")
    edges = m.attrs["bins"]["size"]
    assert len(edges) == 5 and edges[0] == e["size"].min() and edges[-1] == e["size"].max()
    for _, r in m.iterrows():
        ids = slice_items(e, {"size": r["value"]})
        assert len(ids) == r["n"]
        assert isinstance(r["value"], pd.Interval)


def test_slice_metrics_missing_values_are_a_slice():
    e = _random_errors(4, n=100)
    e["group"] = e["group"].astype(object)
    e.loc[:9, "group"] = None
    m = wb.slice_metrics(e, "group")
    assert m["n"].sum() == 100
    assert m.loc[m["bin"] == "<NA>", "n"].item() == 10


def test_slice_metrics_other_target():
    e = _random_errors(5, n=400)
    e["flag"] = (e["group"] == "x") & (np.arange(400) % 2 == 0)
    m = wb.slice_metrics(e, "group", target="flag").set_index("value")
    assert m.loc["x", "errors"] == e["flag"].sum() and m.loc["y", "errors"] == 0
    # a non-0/1 score: Welch's t-test against the rest
    from scipy.stats import ttest_ind

    e["loss"] = np.random.default_rng(0).gamma(2, size=400) + (e["group"] == "z")
    m = wb.slice_metrics(e, "group", target="loss").set_index("value")
    z = e["group"] == "z"
    expected = ttest_ind(e.loc[z, "loss"], e.loc[~z, "loss"], equal_var=False).pvalue
    assert m.loc["z", "p_value"] == pytest.approx(expected, rel=1e-6)
    assert m.loc["z", "error_rate"] == pytest.approx(e.loc[z, "loss"].mean())


def test_slice_metrics_parameter_errors(sample_errors):
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['nope'\]"):
        wb.slice_metrics(sample_errors, "nope")
    with pytest.raises(ValueError, match="The 'bins' parameter of slice_metrics"):
        wb.slice_metrics(sample_errors, "scanner", bins=-1)
    with pytest.raises(SchemaError, match="target column 'scanner' must be boolean or numeric"):
        wb.slice_metrics(sample_errors, "vendor", target="scanner")


# ---- discover_slices ------------------------------------------------------------------


def test_discover_finds_degraded_scanner_in_sample(sample_errors):
    from workbench.sample import DEGRADED_SCANNER

    d = wb.discover_slices(sample_errors)
    assert d["slice"].iloc[0] == f"scanner={DEGRADED_SCANNER}"
    assert d["conditions"].iloc[0] == {"scanner": DEGRADED_SCANNER}
    assert (d["q_value"] <= 0.05).all() and (d["lift"] > 1).all()


@pytest.fixture(scope="module")
def synthetic():
    return wb.make_project(30_000, n_runs=1, seed=7)


def _planted(project, target):
    return [p["conditions"] for p in project.info["planted_slices"] if p["target"] == target]


def test_discover_finds_planted_model_slices(synthetic):
    e = synthetic.errors()
    d = wb.discover_slices(e, max_order=2)
    planted = _planted(synthetic, "correct")
    assert planted, "the synthetic project should plant model slices"
    found = d["conditions"].tolist()
    for cond in planted:
        assert cond in found
    # the planted slices are the best ones, and nothing spurious is reported
    assert sorted(map(str, found[:len(planted)])) == sorted(map(str, planted))
    assert len(d) <= len(planted) + 1
    for _, r in d.iterrows():
        assert sorted(r["item_ids"]) == sorted(slice_items(e, r["conditions"]))
        assert r["n"] == len(r["item_ids"])
        assert " & ".join(f"{k}={v}" for k, v in r["conditions"].items()) == r["slice"]


def test_discover_other_target_finds_annotator_disagreement(synthetic):
    from workbench._validation import latest_annotations

    ann = latest_annotations(synthetic.annotations)
    disagree = ann.groupby("item_id")["label"].nunique() > 1
    e = synthetic.errors()
    e["disagree"] = disagree.reindex(e["item_id"]).fillna(False).to_numpy(dtype=bool)
    d = wb.discover_slices(e, target="disagree")
    planted = _planted(synthetic, "agreement")
    assert planted
    assert d["conditions"].iloc[0] in planted


def test_discover_random_data_finds_little():
    rng = np.random.default_rng(11)
    n = 5000
    e = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)],
                      "correct": rng.random(n) > 0.2,
                      **{f"f{j}": rng.choice(list("abcd"), n) for j in range(5)}})
    d = wb.discover_slices(e)
    assert len(d) <= 1  # FDR 5 %: at most a rare false discovery


def test_discover_pruning_and_ranking():
    rng = np.random.default_rng(2)
    n = 20_000
    e = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)],
                      "a": rng.choice(list("xyz"), n), "b": rng.choice(list("pq"), n),
                      "c": rng.choice(list("uvw"), n), "num": rng.normal(size=n)})
    bad = (e["a"] == "x") & (e["b"] == "p")
    e["correct"] = rng.random(n) > np.where(bad, 0.5, 0.1)
    d = wb.discover_slices(e, max_order=2)
    assert d["slice"].iloc[0] == "a=x & b=p"
    assert (np.diff(d["score"]) <= 0).all()
    # refinements of the planted slice by unrelated features are pruned
    assert not any(set(c) >= {"a", "b", "c"} or ("c" in c and len(c) == 2)
                   for c in d["conditions"])
    # parents explained by their refinement are pruned too
    assert {"a": "x"} not in d["conditions"].tolist()
    kept = wb.discover_slices(e, max_order=2, prune_explained=False)["conditions"].tolist()
    assert {"a": "x"} in kept


def test_discover_numeric_feature_is_binned():
    rng = np.random.default_rng(3)
    n = 8000
    x = rng.random(n)
    e = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "x": x,
                      "correct": rng.random(n) > np.where(x > 0.75, 0.5, 0.1)})
    d = wb.discover_slices(e, bins=4)
    cond = d["conditions"].iloc[0]["x"]
    assert isinstance(cond, pd.Interval) and cond.left == pytest.approx(0.75, abs=0.02)
    assert d["slice"].iloc[0].startswith("x=[")


def test_discover_parameter_errors(sample_errors):
    with pytest.raises(ValueError, match="The 'max_order' parameter of discover_slices"):
        wb.discover_slices(sample_errors, max_order=0)
    with pytest.raises(ValueError, match="The 'min_support' parameter of discover_slices"):
        wb.discover_slices(sample_errors, min_support=1.5)
    with pytest.raises(SchemaError, match="missing the column"):
        wb.discover_slices(sample_errors, features=["nope"])
    with pytest.raises(SchemaError, match="missing the column"):
        wb.discover_slices(sample_errors, target="nope")


def test_discover_target_counts_ones_as_bad(sample_errors):
    d = wb.discover_slices(sample_errors)
    assert d.attrs["target"] == "is_error"
    for _, row in d.iterrows():
        bad = sample_errors.set_index("item_id").loc[row["item_ids"], "is_error"]
        assert row["errors"] == bad.sum() and row["error_rate"] == pytest.approx(bad.mean())
    # 0/1 integers are the same flag as booleans; an errors frame without is_error (only
    # correct, as built by hand) counts ~correct: the same slices
    ints = sample_errors.assign(is_error=sample_errors["is_error"].astype(int))
    pd.testing.assert_frame_equal(wb.discover_slices(ints), d)
    pd.testing.assert_frame_equal(wb.discover_slices(sample_errors.drop(columns="is_error")), d)
    # the same flag under another name, and its opposite: the opposite finds other slices
    flags = sample_errors.assign(wrong=sample_errors["is_error"],
                                 fine=~sample_errors["is_error"])
    pd.testing.assert_frame_equal(wb.discover_slices(flags, target="wrong")
                                  .drop(columns=["errors"]),
                                  d.drop(columns=["errors"]), check_like=True)
    other = wb.discover_slices(flags, target="fine")
    assert other.empty or other["slice"].iloc[0] != d["slice"].iloc[0]


@pytest.mark.parametrize("func", [wb.discover_slices, wb.slice_metrics])
@pytest.mark.parametrize("column", ["correct", "is_correct", "IS_CORRECT", "agreement"])
def test_a_good_indicator_as_target_is_refused(sample_errors, func, column):
    e = sample_errors.assign(**{column: sample_errors["correct"]})
    with pytest.raises(ValueError, match=rf"'{column}', which looks like a 'good' indicator "
                                         r".*1/True = bad.*Pass the error column instead"):
        func(e, target=column)


def test_refusing_correct_suggests_is_error(sample_errors):
    with pytest.raises(ValueError, match=r"target='is_error' \(project_errors adds it\)"):
        wb.discover_slices(sample_errors, target="correct")
    with pytest.raises(ValueError, match=r"errors.assign\(is_bad=~errors\['is_correct'\]"):
        wb.discover_slices(sample_errors.assign(is_correct=True), target="is_correct")


def test_discover_target_must_be_0_1(sample_errors):
    e = sample_errors.assign(loss=np.linspace(0, 2, len(sample_errors)),
                             grade=np.where(sample_errors["is_error"], 2, 0),
                             word=np.where(sample_errors["is_error"], "bad", "ok"))
    with pytest.raises(SchemaError, match=r"target column 'grade' must hold 0/1 or True/False "
                                          r"\(1/True = bad\), but \d+ row\(s\) hold other "
                                          r"values, e.g. \[2\]"):
        wb.discover_slices(e, target="grade")
    with pytest.raises(SchemaError, match=r"target column 'loss' must hold 0/1.*threshold"):
        wb.discover_slices(e, target="loss")
    with pytest.raises(SchemaError, match=r"target column 'word' must hold 0/1.*'ok'"):
        wb.discover_slices(e, target="word")
    with pytest.raises(SchemaError, match=r"target column 'is_error' has 1 missing value"):
        wb.discover_slices(e.assign(is_error=e["is_error"].astype(float).where(
            np.arange(len(e)) != 3)))
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['is_error'\]"):
        wb.discover_slices(e.drop(columns=["is_error", "correct"]))
    with pytest.raises(SchemaError, match=r"target column 'correct' must hold 0/1"):
        wb.discover_slices(e.drop(columns="is_error").assign(correct=e["loss"]))
    # slice_metrics still takes a score where higher is worse (Welch's t-test)
    assert wb.slice_metrics(e, "scanner", target="loss").attrs["tests"].startswith(
        "two-sided Welch")


def test_discover_min_support_and_top(sample_errors):
    d = wb.discover_slices(sample_errors, min_support=0.2, top=1)
    assert len(d) == 1 and d["n"].iloc[0] >= 0.2 * len(sample_errors)
    assert d.attrs["min_support"] == int(np.ceil(0.2 * len(sample_errors)))


# ---- compare_runs ---------------------------------------------------------------------


def test_compare_runs_on_sample(sample_project):
    diff = wb.compare_runs(sample_project, "baseline", "candidate")
    a = sample_project.errors("baseline").set_index("item_id")
    b = sample_project.errors("candidate").set_index("item_id")
    o = diff.overall.iloc[0]
    assert o["n"] == len(a)
    assert o["base_error_rate"] == pytest.approx(1 - a["correct"].mean())
    assert o["candidate_error_rate"] == pytest.approx(1 - b["correct"].mean())
    assert o["delta"] == pytest.approx(o["candidate_error_rate"] - o["base_error_rate"])
    fixed = set(a.index[~a["correct"] & b.loc[a.index, "correct"]])
    broken = set(a.index[a["correct"] & ~b.loc[a.index, "correct"]])
    assert set(diff.fixed_ids) == fixed and set(diff.broken_ids) == broken
    assert o["n_fixed"] == len(fixed) and o["n_broken"] == len(broken)
    assert {"label", "base_predicted", "candidate_predicted"} <= set(diff.fixed.columns)
    f = diff.fixed.set_index("item_id")
    assert (f["label"].astype(str) == f["candidate_predicted"].astype(str)).all()
    # exact McNemar
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[0, len(broken)], [len(fixed), 0]]
    assert o["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    s = diff.by_slice[diff.by_slice["column"] == "scanner"].set_index("value")
    for v, row in s.iterrows():
        ids = a.index[a["scanner"] == v]
        assert row["n"] == len(ids)
        assert row["base_error_rate"] == pytest.approx(1 - a.loc[ids, "correct"].mean())
        assert row["candidate_error_rate"] == pytest.approx(1 - b.loc[ids, "correct"].mean())
    assert diff.by_slice.groupby("column")["n_fixed"].sum().eq(len(fixed)).all()


def test_compare_runs_bad_run(sample_project):
    with pytest.raises(ValueError, match="The 'candidate' parameter of compare_runs"):
        wb.compare_runs(sample_project, "baseline", "nope")


def test_discover_order_three():
    rng = np.random.default_rng(0)
    n = 30_000
    e = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)],
                      **{f"f{j}": rng.choice(list("abc"), n) for j in range(5)}})
    bad = (e["f0"] == "a") & (e["f1"] == "b") & (e["f2"] == "c")
    e["correct"] = rng.random(n) > np.where(bad, 0.5, 0.1)
    d = wb.discover_slices(e, max_order=3)
    assert d["conditions"].iloc[0] == {"f0": "a", "f1": "b", "f2": "c"}
    assert d["order"].iloc[0] == 3
    assert wb.discover_slices(e, max_order=2)["order"].max() <= 2
