"""Agreement measures, consensus, annotator quality and confused pairs."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

import workbench as wb
from workbench.agreement import (
    confused_pairs_matrix,
    dawid_skene,
    disagreeing_items,
    pivot_pairwise,
)
from workbench.errors import SchemaError

try:  # fixtures shared by the agreement tests (tests/unit may or may not be a package)
    from ._agreement_fixtures import long_from_matrix, sample_project, sample_truth, simulate  # noqa: F401
except ImportError:
    from _agreement_fixtures import long_from_matrix, sample_project, sample_truth, simulate  # noqa: F401

# Krippendorff (2011) "Computing Krippendorff's alpha-reliability", the nominal example with
# missing data: 4 observers (rows) x 12 units (columns); published alpha = 0.743.
KRIPP_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]

# Fleiss (1971) / the worked example reproduced on Wikipedia: 10 subjects, 14 raters,
# 5 categories; kappa = 0.210.
FLEISS_TABLE = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
])


def _from_table(table):
    recs = []
    for i, row in enumerate(table):
        rater = 0
        for k, count in enumerate(row):
            for _ in range(int(count)):
                recs.append((f"s{i}", f"r{rater}", f"cat{k}"))
                rater += 1
    return pd.DataFrame(recs, columns=["item_id", "annotator", "label"]).astype("str")


# ---------------------------------------------------------------- published examples
def test_krippendorff_alpha_published_example():
    units_by_coder = np.array(KRIPP_2011, dtype=object).T  # units x coders
    ann = long_from_matrix(units_by_coder.tolist())
    out = wb.agreement_summary(ann, min_shared=1)
    assert out["krippendorff_alpha"] == pytest.approx(0.743, abs=5e-4)
    # unit 12 has a single label: it is not pairable and is reported
    assert out["n_items_single_label"] == 1
    assert out["n_items_scored"] == 11


def test_krippendorff_alpha_matches_package_with_missing():
    krippendorff = pytest.importorskip("krippendorff")
    for seed in range(5):
        rng = np.random.default_rng(seed)
        data = rng.integers(0, 4, size=(6, 60)).astype(float)  # coders x units
        truth = np.broadcast_to(rng.integers(0, 4, 60).astype(float), data.shape)
        agree = rng.random(data.shape) < 0.5
        data[agree] = truth[agree]
        data[rng.random(data.shape) < 0.3] = np.nan
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        ann = long_from_matrix(data.T.tolist())
        ann["label"] = ann["label"].str.replace(".0", "", regex=False)
        got = wb.agreement_summary(ann, min_shared=1)["krippendorff_alpha"]
        assert got == pytest.approx(expected, abs=1e-9)


def test_fleiss_published_example_and_statsmodels():
    from statsmodels.stats.inter_rater import fleiss_kappa

    ann = _from_table(FLEISS_TABLE)
    out = wb.agreement_summary(ann, min_shared=1)
    assert out["fleiss_kappa"] == pytest.approx(0.210, abs=5e-4)
    assert out["fleiss_kappa"] == pytest.approx(fleiss_kappa(FLEISS_TABLE), abs=1e-12)
    # percent agreement is Fleiss' P-bar (0.378 in the worked example)
    assert out["percent_agreement"] == pytest.approx(0.378, abs=5e-4)


def test_fleiss_matches_statsmodels_on_random_tables():
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    ann, _ = simulate(n_items=300, n_annotators=5, labels_per_item=5, n_classes=4, seed=7)
    wide = ann.pivot(index="item_id", columns="annotator", values="label")
    table, _ = aggregate_raters(wide.to_numpy())
    assert wb.agreement_summary(ann)["fleiss_kappa"] == pytest.approx(fleiss_kappa(table),
                                                                      abs=1e-12)


def test_fleiss_unequal_labels_documented_generalisation():
    ann, _ = simulate(n_items=200, n_annotators=6, labels_per_item=4, n_classes=3, seed=2)
    rng = np.random.default_rng(0)
    ann = ann[rng.random(len(ann)) > 0.25]  # unequal numbers of labels per item
    counts = pd.crosstab(ann["item_id"], ann["label"]).to_numpy().astype(float)
    counts = counts[counts.sum(1) >= 2]
    m = counts.sum(1)
    p_i = (counts * (counts - 1)).sum(1) / (m * (m - 1))
    p_j = counts.sum(0) / counts.sum()
    expected = (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())
    out = wb.agreement_summary(ann)
    assert out["fleiss_kappa"] == pytest.approx(expected, abs=1e-12)
    assert out["percent_agreement"] == pytest.approx(p_i.mean(), abs=1e-12)


# ---------------------------------------------------------------- pairwise / Cohen
def test_pairwise_kappa_matches_sklearn():
    ann, _ = simulate(n_items=300, n_annotators=5, labels_per_item=3, seed=1)
    pairs = wb.pairwise_agreement(ann)
    wide = ann.pivot(index="item_id", columns="annotator", values="label")
    assert len(pairs) == 10
    for row in pairs.itertuples():
        both = wide[[row.annotator_a, row.annotator_b]].dropna()
        assert row.n_shared == len(both)
        a, b = both[row.annotator_a], both[row.annotator_b]
        assert row.agreement == pytest.approx((a == b).mean())
        assert row.kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    summary = wb.agreement_summary(ann, min_shared=1)
    assert summary["mean_cohen_kappa"] == pytest.approx(pairs["kappa"].mean())
    assert summary["n_annotators"] == 5 and summary["n_items"] == 300


def test_pivot_pairwise_is_symmetric():
    ann, _ = simulate(n_items=100, n_annotators=4, labels_per_item=3, seed=4)
    pairs = wb.pairwise_agreement(ann)
    mat = pivot_pairwise(pairs, "kappa")
    assert list(mat.index) == ["a0", "a1", "a2", "a3"]
    np.testing.assert_allclose(mat.to_numpy(), mat.to_numpy().T)
    assert np.all(np.diag(mat.to_numpy()) == 1)
    n = pivot_pairwise(pairs, "n_shared")
    assert n.loc["a0", "a1"] == pairs.query("annotator_a == 'a0' and annotator_b == 'a1'")[
        "n_shared"].item()
    with pytest.raises(ValueError, match="'value' parameter of pivot_pairwise"):
        pivot_pairwise(pairs, "f1")


def test_annotator_without_overlap_warns():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b", "c"],
                        "annotator": ["x", "y", "x", "y", "z"],
                        "label": ["1", "1", "2", "1", "2"]}).astype("str")
    with pytest.warns(UserWarning, match=r"\['z'\] share no item"):
        pairs = wb.pairwise_agreement(ann)
    assert set(pairs["annotator_a"]) | set(pairs["annotator_b"]) == {"x", "y"}
    with pytest.warns(UserWarning, match=r"\['z'\] have no label with a reference"):
        q = wb.annotator_quality(ann)
    assert q["annotator"].iloc[-1] == "z" and np.isnan(q["accuracy"].iloc[-1])


def test_undefined_kappa_warns_not_silent():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["x", "y"] * 2,
                        "label": ["1", "1", "1", "1"]}).astype("str")
    with pytest.warns(UserWarning, match="undefined"):
        pairs = wb.pairwise_agreement(ann)
    assert np.isnan(pairs["kappa"].item()) and pairs["agreement"].item() == 1.0
    with pytest.warns(UserWarning, match="mean_cohen_kappa is NaN"):
        wb.agreement_summary(ann, min_shared=1)


# ---------------------------------------------------------------- bad inputs
def test_single_annotator_is_a_clear_error():
    ann = pd.DataFrame({"item_id": ["a", "b"], "annotator": ["x", "x"], "label": ["1", "2"]})
    with pytest.raises(SchemaError, match="no item has labels from two annotators"):
        wb.agreement_summary(ann)


def test_unknown_classes_and_missing_columns():
    ann = pd.DataFrame({"item_id": ["a", "a"], "annotator": ["x", "y"], "label": ["1", "9"]})
    with pytest.raises(SchemaError, match=r"label\(s\) \['9'\] that are not in classes"):
        wb.consensus(ann, classes=["1", "2"])
    with pytest.raises(SchemaError, match="missing the column"):
        wb.agreement_summary(ann.drop(columns="annotator"))
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        wb.consensus(ann.to_numpy())
    with pytest.raises(ValueError, match="'method' parameter of consensus must be a str among"):
        wb.consensus(ann, method="vote")
    bad = ann.astype(object)
    bad.loc[0, "label"] = None
    with pytest.raises(SchemaError, match="missing values in column 'label'"):
        wb.consensus(bad)


def test_item_with_one_label_is_documented():
    ann = pd.DataFrame({"item_id": ["a", "a", "b"], "annotator": ["x", "y", "x"],
                        "label": ["1", "2", "2"]}).astype("str")
    out = wb.agreement_summary(ann, min_shared=1)
    assert out["n_items_scored"] == 1 and out["n_items_single_label"] == 1
    cons = wb.consensus(ann)
    assert cons.set_index("item_id").loc["b", "n_labels"] == 1
    assert cons.set_index("item_id").loc["b", "confidence"] == 1.0
    frame = wb.disagreement_frame(ann)
    assert list(frame["item_id"]) == ["a"]


def test_latest_label_counts():
    ann = pd.DataFrame({"item_id": ["a", "a", "a"], "annotator": ["x", "y", "x"],
                        "label": ["1", "2", "2"],
                        "annotated_at": pd.to_datetime(["2026-01-01", "2026-01-01",
                                                        "2026-01-02"])})
    cons = wb.consensus(ann)
    assert cons["label"].item() == "2" and cons["n_labels"].item() == 2


# ---------------------------------------------------------------- consensus
def test_majority_tie_policy():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b", "b"],
                        "annotator": ["x", "y", "x", "y", "z"],
                        "label": ["dog", "cat", "dog", "dog", "cat"]}).astype("str")
    cons = wb.consensus(ann).set_index("item_id")
    assert cons.loc["a", "label"] == "cat" and cons.loc["a", "tie"]  # sorted label order
    assert cons.loc["a", "confidence"] == 0.5
    assert cons.loc["b", "label"] == "dog" and not cons.loc["b", "tie"]
    assert cons.loc["b", "confidence"] == pytest.approx(2 / 3)
    by_order = wb.consensus(ann, classes=["dog", "cat"]).set_index("item_id")
    assert by_order.loc["a", "label"] == "dog"  # first in classes= wins the tie
    probs = pd.DataFrame({"cat": [0.2, 0.9], "dog": [0.8, 0.1]}, index=["a", "b"])
    with_model = wb.consensus(ann, pred_probs=probs).set_index("item_id")
    assert with_model.loc["a", "label"] == "dog"  # the model breaks the tie
    assert with_model.loc["b", "label"] == "dog"  # but never overrides a majority
    assert list(wb.consensus(ann).columns) == ["item_id", "label", "confidence", "n_labels",
                                               "tie"]


def test_consensus_empty_annotations():
    empty = pd.DataFrame({"item_id": [], "annotator": [], "label": []}).astype("str")
    cons = wb.consensus(empty)
    assert cons.empty and list(cons.columns)[:4] == ["item_id", "label", "confidence",
                                                     "n_labels"]


def test_dawid_skene_hand_checked():
    # a and b are reliable; c always swaps the two classes. Items 0-5 are labelled by all
    # three, item 6 only by c (who says "y"). Dawid-Skene learns that c inverts and so
    # reads c's "y" on item 6 as "x", where the majority vote takes it at face value.
    recs = []
    for i, lab in enumerate(["x", "y", "x", "y", "x", "y"]):
        swap = "y" if lab == "x" else "x"
        recs += [(f"i{i}", "a", lab), (f"i{i}", "b", lab), (f"i{i}", "c", swap)]
    recs.append(("i6", "c", "y"))
    ann = pd.DataFrame(recs, columns=["item_id", "annotator", "label"]).astype("str")
    res = dawid_skene(ann, smoothing=0.1)
    assert res.converged
    conf_c = res.confusion["c"]
    assert conf_c.loc["x", "y"] > 0.8 and conf_c.loc["y", "x"] > 0.8
    assert res.confusion["a"].loc["x", "x"] > 0.8
    ds = wb.consensus(ann, "dawid_skene", smoothing=0.1).set_index("item_id")
    mv = wb.consensus(ann, "majority").set_index("item_id")
    assert ds.loc["i6", "label"] == "x" and mv.loc["i6", "label"] == "y"
    assert (ds["label"].iloc[:6] == mv["label"].iloc[:6]).all()
    assert ds.loc["i0", "confidence"] > 0.95
    np.testing.assert_allclose(res.posteriors.sum(axis=1), 1)
    for m in res.confusion.values():
        np.testing.assert_allclose(m.sum(axis=1), 1)


def test_dawid_skene_beats_majority_and_matches_crowdkit():
    crowdkit = pytest.importorskip("crowdkit.aggregation")
    ann, gold = simulate(n_items=1500, n_annotators=10, labels_per_item=3, n_classes=4,
                         seed=11, accuracies=[0.95, 0.9, 0.9, 0.85, 0.8, 0.6, 0.5, 0.45,
                                              0.4, 0.35])
    ds = wb.consensus(ann, "dawid_skene").set_index("item_id")["label"]
    mv = wb.consensus(ann, "majority").set_index("item_id")["label"]
    acc_ds = (ds == gold.reindex(ds.index)).mean()
    acc_mv = (mv == gold.reindex(mv.index)).mean()
    assert acc_ds > acc_mv
    ck = crowdkit.DawidSkene(n_iter=100).fit_predict(
        ann.rename(columns={"item_id": "task", "annotator": "worker"}))
    acc_ck = (ck == gold.reindex(ck.index)).mean()
    assert acc_ds >= acc_ck - 0.01
    assert (ck.reindex(ds.index) == ds).mean() > 0.97


def test_dawid_skene_bad_params():
    ann, _ = simulate(n_items=20, seed=0)
    with pytest.raises(ValueError, match="'smoothing' parameter of dawid_skene"):
        dawid_skene(ann, smoothing=-1)
    with pytest.raises(ValueError, match="'max_iter' parameter of dawid_skene"):
        dawid_skene(ann, max_iter=0)


def test_crowdlab_needs_pred_probs(sample_project, sample_truth):
    ann = sample_project.annotations
    with pytest.raises(ValueError, match="needs out-of-sample model probabilities"):
        wb.consensus(ann, "crowdlab")
    cons = wb.consensus(ann, "crowdlab", pred_probs=sample_project.pred_probs(),
                        classes=sample_project.classes)
    gold = sample_truth.set_index("item_id")["true_label"]
    acc = (cons.set_index("item_id")["label"] == gold.reindex(cons["item_id"]).to_numpy()).mean()
    mv = wb.consensus(ann, classes=sample_project.classes).set_index("item_id")["label"]
    assert acc >= (mv == gold.reindex(mv.index)).mean()
    assert cons["confidence"].between(0, 1).all()
    probs = sample_project.pred_probs()
    with pytest.raises(SchemaError, match="no row for 1 item"):
        wb.consensus(ann, "crowdlab", pred_probs=(probs[0][1:], probs[1][1:]),
                     classes=sample_project.classes)


def test_consensus_on_sample_is_accurate(sample_project, sample_truth):
    gold = sample_truth.set_index("item_id")["true_label"]
    for method in ("majority", "dawid_skene"):
        cons = wb.consensus(sample_project.annotations, method, classes=sample_project.classes)
        assert len(cons) == len(sample_project.items)
        acc = (cons.set_index("item_id")["label"] == gold.reindex(cons["item_id"]).to_numpy())
        assert acc.mean() > 0.98, method


# ---------------------------------------------------------------- annotator quality
def test_careless_annotator_ranks_last(sample_project, sample_truth):
    gold = sample_truth.set_index("item_id")["true_label"]
    for reference in (None, gold, "majority", "dawid_skene",
                      sample_project.reference_labels()):
        q = wb.annotator_quality(sample_project.annotations, reference)
        assert q["annotator"].iloc[-1] == "eli", reference
        assert list(q["rank"]) == list(range(1, 7))
    q = wb.annotator_quality(sample_project.annotations, gold).set_index("annotator")
    assert q.loc["cho", "worst_class"] in {"1", "7"}
    assert q.loc["dev", "worst_class"] in {"4", "9"}


def test_annotator_quality_against_gold_matches_sklearn():
    ann, gold = simulate(n_items=300, n_annotators=5, seed=5)
    q = wb.annotator_quality(ann, gold, confusion=True).set_index("annotator")
    for name, rows in ann.groupby("annotator"):
        ref = gold.reindex(rows["item_id"]).to_numpy()
        assert q.loc[name, "n_labels"] == len(rows)
        assert q.loc[name, "accuracy"] == pytest.approx((rows["label"].to_numpy() == ref).mean())
        assert q.loc[name, "kappa"] == pytest.approx(cohen_kappa_score(ref, rows["label"]))
        cm = q.loc[name, "confusion"]
        assert cm.to_numpy().sum() == len(rows)
        assert np.trace(cm.to_numpy()) == (rows["label"].to_numpy() == ref).sum()
    # gold as a frame gives the same
    frame_ref = gold.rename_axis("item_id").reset_index()
    q2 = wb.annotator_quality(ann, frame_ref).set_index("annotator")
    pd.testing.assert_series_equal(q["accuracy"], q2.loc[q.index, "accuracy"])


def test_annotator_quality_leave_one_out():
    # x agrees with y and z; y and z disagree with each other on item b
    ann = pd.DataFrame({"item_id": ["a"] * 3 + ["b"] * 3, "annotator": ["x", "y", "z"] * 2,
                        "label": ["1", "1", "1", "1", "1", "2"]}).astype("str")
    q = wb.annotator_quality(ann).set_index("annotator")
    assert q.loc["x", "accuracy"] == 1.0 and q.loc["x", "n_scored"] == 1  # b: y, z tie
    assert q.loc["z", "accuracy"] == 0.5 and q.loc["z", "n_scored"] == 2
    with pytest.raises(TypeError, match="'reference' parameter of annotator_quality"):
        wb.annotator_quality(ann, reference=3)
    with pytest.raises(ValueError, match="'reference' parameter of annotator_quality"):
        wb.annotator_quality(ann, reference="gold")


# ---------------------------------------------------------------- confused pairs
def test_confused_pairs_counts_by_hand():
    ann = pd.DataFrame({
        "item_id": ["a", "a", "a", "b", "b", "c", "c"],
        "annotator": ["x", "y", "z", "x", "y", "x", "y"],
        "label": ["1", "7", "7", "7", "1", "4", "9"]}).astype("str")
    pairs = wb.confused_pairs(ann)
    assert list(pairs.columns) == ["class_a", "class_b", "n_pairs", "n_items", "share", "rate",
                                   "item_ids"]
    top = pairs.iloc[0]
    assert (top["class_a"], top["class_b"]) == ("1", "7")
    assert top["n_pairs"] == 3 and top["n_items"] == 2 and top["item_ids"] == ["a", "b"]
    second = pairs.iloc[1]
    assert (second["class_a"], second["class_b"], second["n_pairs"]) == ("4", "9", 1)
    assert pairs["share"].sum() == pytest.approx(1)
    # rate: co-labelled pairs touching 1 or 7 are a(3) + b(1) = 4, 3 of them disagree
    assert top["rate"] == pytest.approx(3 / 4)
    mat = confused_pairs_matrix(pairs)
    assert mat.loc["7", "1"] == 3 and mat.loc["1", "7"] == 3 and mat.loc["1", "1"] == 0
    unanimous = ann.assign(label="1")
    assert wb.confused_pairs(unanimous).empty


def test_confused_pairs_on_sample(sample_project):
    pairs = wb.confused_pairs(sample_project.annotations)
    top2 = {frozenset(p) for p in pairs[["class_a", "class_b"]].head(2).to_numpy().tolist()}
    assert top2 == {frozenset({"1", "7"}), frozenset({"4", "9"})}


def test_disagreeing_items():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b", "c"], "annotator": ["x", "y"] * 2 + ["x"],
                        "label": ["1", "2", "1", "1", "3"]}).astype("str")
    assert disagreeing_items(ann, "x", "y") == ["a"]
    assert disagreeing_items(ann, "x") == ["a"]


# ---------------------------------------------------------------- slices and frames
def test_agreement_by_batch_finds_noisy_batch(sample_project):
    out = wb.agreement_by(sample_project.annotations, sample_project, "batch", n_boot=100)
    assert list(out["batch"]) == sorted(out["batch"])
    worst = out.sort_values("fleiss_kappa").iloc[0]
    assert worst["batch"] == "2026-W04"
    assert (out["fleiss_kappa_low"] <= out["fleiss_kappa"]).all()
    assert (out["fleiss_kappa"] <= out["fleiss_kappa_high"]).all()
    assert out["n_items"].sum() == len(sample_project.items)
    again = wb.agreement_by(sample_project.annotations, sample_project.items, "batch",
                            n_boot=100)
    pd.testing.assert_frame_equal(out, again)  # seeded
    two = wb.agreement_by(sample_project.annotations, sample_project, ["vendor", "batch"],
                          n_boot=0)
    assert len(two) == 12 and two["fleiss_kappa_low"].isna().all()
    with pytest.raises(SchemaError, match="missing the column"):
        wb.agreement_by(sample_project.annotations, sample_project, "nope")


def test_agreement_by_matches_summary_per_slice(sample_project):
    items = sample_project.items
    out = wb.agreement_by(sample_project.annotations, sample_project, "vendor", n_boot=0)
    for row in out.itertuples():
        ids = items.loc[items["vendor"] == row.vendor, "item_id"]
        sub = sample_project.annotations[sample_project.annotations["item_id"].isin(ids)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = wb.agreement_summary(sub)
        assert row.fleiss_kappa == pytest.approx(s["fleiss_kappa"])
        assert row.krippendorff_alpha == pytest.approx(s["krippendorff_alpha"])


def test_disagreement_frame(sample_project):
    frame = wb.disagreement_frame(sample_project)
    assert {"item_id", "disagree", "disagreement", "agreement", "scanner", "vendor",
            "batch"} <= set(frame.columns)
    assert set(frame["disagree"].unique()) <= {0, 1}
    assert ((frame["disagree"] == 1) == (frame["n_distinct"] > 1)).all()
    np.testing.assert_allclose(frame["disagreement"], 1 - frame["agreement"])
    assert "disagreement" not in frame.attrs["metadata_columns"]
    plain = wb.disagreement_frame(sample_project.annotations)
    assert len(plain) == len(frame) and "vendor" not in plain.columns


def test_disagreement_slices_found(sample_project):
    frame = wb.disagreement_frame(sample_project)
    slices = wb.discover_slices(frame, target="disagree")
    assert len(slices)
    top = slices.iloc[0]["conditions"]
    assert top.get("batch") == "2026-W04" or top.get("batch_date") is not None


def test_pair_enumeration_is_complete():
    from workbench.agreement import _encode, _within_item_pairs

    ann, _ = simulate(n_items=50, n_annotators=9, labels_per_item=5, seed=9)
    ann = ann.iloc[np.random.default_rng(0).permutation(len(ann))]
    enc = _encode(ann, "t")
    r1, r2 = _within_item_pairs(enc)
    assert (enc.item[r1] == enc.item[r2]).all()
    got = {tuple(sorted((a, b))) for a, b in zip(r1, r2, strict=True)}
    expected = set()
    for _, rows in pd.Series(np.arange(len(ann))).groupby(enc.item):
        expected |= {tuple(sorted(p)) for p in itertools.combinations(rows.to_numpy(), 2)}
    assert got == expected and len(r1) == 50 * 10


def test_crowdlab_with_frame_takes_model_classes(sample_project):
    ids, probs = sample_project.pred_probs()
    frame = pd.DataFrame(probs, index=ids, columns=sample_project.classes)
    ann = sample_project.annotations[sample_project.annotations["label"] != "3"]
    cons = wb.consensus(ann, "crowdlab", pred_probs=frame)
    assert "3" in set(cons["label"])  # a class no annotator used can still win
    assert list(cons.columns) == ["item_id", "label", "confidence", "n_labels"]


def test_disagreeing_items_by_annotator_matches_pairwise_form():
    from workbench.agreement import disagreeing_items_by_annotator

    ann, _ = simulate(n_items=200, n_annotators=6, labels_per_item=3, seed=8)
    every = disagreeing_items_by_annotator(ann)
    assert set(every) == set(ann["annotator"])
    for name, ids in every.items():
        assert ids == disagreeing_items(ann, name)
