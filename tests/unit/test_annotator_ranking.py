"""Quality without gold: annotator_quality ranks by Dawid-Skene by default (issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import workbench as wb

NAMES = ["g1", "g2", "g3", "g4", "d", "s1", "s2", "x"]


def shared_confusion_crowd(seed: int, n_items: int = 600):
    """Planted crowd where a careless annotator hides behind a shared confusion.

    Four good annotators (0.92) and ``d`` (0.95); ``s1`` and ``s2`` label almost every
    true 0 as 1 (a guideline misread, otherwise 0.95); ``x`` is careless (20% random slips)
    and misreads 0 like them. 40% of the items go to 3 random annotators, 30% to the team
    {d, s1, s2} and 30% to the team {x, s1, s2}. In team {x, s1, s2} the majority agrees
    with x's errors on the 0s; in team {d, s1, s2} it outvotes d where d is right.
    """
    rng = np.random.default_rng(seed)
    k = 4
    truth = rng.integers(0, k, n_items)
    kind = rng.choice(3, n_items, p=[0.4, 0.3, 0.3])
    rows = []
    for i in range(n_items):
        who = (rng.choice(8, 3, replace=False) if kind[i] == 0 else
               [4, 5, 6] if kind[i] == 1 else [7, 5, 6])
        t = truth[i]
        for a in who:
            name = NAMES[a]
            if name in ("s1", "s2") and t == 0:
                lab = 1 if rng.random() < 0.95 else 0
            elif name == "x" and t == 0:
                lab = 1
            else:
                acc = {"x": 0.8, "d": 0.95, "s1": 0.95, "s2": 0.95}.get(name, 0.92)
                lab = t if rng.random() < acc else (t + rng.integers(1, k)) % k
            rows.append((f"i{i:04d}", name, f"c{lab}", lab == t))
    frame = pd.DataFrame(rows, columns=["item_id", "annotator", "label", "ok"])
    true_acc = frame.groupby("annotator")["ok"].mean()
    return frame[["item_id", "annotator", "label"]].astype("str"), true_acc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dawid_skene_ranks_careless_last_where_majority_does_not(seed):
    ann, true_acc = shared_confusion_crowd(seed)
    assert true_acc.idxmin() == "x"  # the planted careless annotator is truly the worst
    majority = wb.annotator_quality(ann, method="majority")
    ds = wb.annotator_quality(ann, method="dawid_skene")
    assert majority["annotator"].iloc[-1] != "x"  # the majority is fooled ...
    assert majority.set_index("annotator").loc["x", "rank"] < \
        majority.set_index("annotator").loc["d", "rank"]
    assert ds["annotator"].iloc[-1] == "x"  # ... Dawid-Skene is not
    assert list(ds["rank"]) == list(range(1, 9))
    assert ds["ds_accuracy"].is_monotonic_decreasing
    rho = {m: spearmanr(q.set_index("annotator")[col].reindex(true_acc.index),
                        true_acc).statistic
           for m, q, col in (("majority", majority, "accuracy"),
                             ("dawid_skene", ds, "ds_accuracy"))}
    assert rho["dawid_skene"] > 0.6 > rho["majority"]
    # the estimate is close to the planted truth for everyone
    est = ds.set_index("annotator")["ds_accuracy"].reindex(true_acc.index)
    assert np.abs(est - true_acc).max() < 0.1


def test_default_method_is_dawid_skene():
    ann, _ = shared_confusion_crowd(0)
    pd.testing.assert_frame_equal(wb.annotator_quality(ann),
                                  wb.annotator_quality(ann, method="dawid_skene"))
    q = wb.annotator_quality(ann, method="majority")
    # the columns are kept; ds_accuracy is added before rank; majority sorts by accuracy
    assert list(q.columns) == ["annotator", "n_labels", "n_scored", "accuracy", "kappa",
                               "worst_class", "worst_class_recall", "ds_accuracy", "rank"]
    assert q["accuracy"].is_monotonic_decreasing
    # same numbers, only the order differs
    ds = wb.annotator_quality(ann).set_index("annotator")
    pd.testing.assert_frame_equal(ds.drop(columns="rank").sort_index(),
                                  q.set_index("annotator").drop(columns="rank").sort_index())


def test_ds_accuracy_is_mean_posterior_of_given_label():
    ann, _ = shared_confusion_crowd(1, n_items=200)
    post = wb.dawid_skene(ann).posteriors
    q = wb.annotator_quality(ann).set_index("annotator")
    p = post.to_numpy()[post.index.get_indexer(ann["item_id"]),
                        post.columns.get_indexer(ann["label"])]
    expected = pd.Series(p).groupby(ann["annotator"].to_numpy()).mean()
    np.testing.assert_allclose(q.loc[expected.index, "ds_accuracy"], expected)


def test_gold_reference_ranks_by_gold_whatever_the_method():
    ann, _ = shared_confusion_crowd(2, n_items=300)
    gold = pd.Series(["c0"] * 300, index=[f"i{i:04d}" for i in range(300)])
    for method in ("dawid_skene", "majority"):
        q = wb.annotator_quality(ann, gold, method=method)
        assert q["accuracy"].is_monotonic_decreasing, method


def test_annotator_without_shared_item_has_no_ds_accuracy():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b", "c"],
                        "annotator": ["x", "y", "x", "y", "z"],
                        "label": ["1", "1", "2", "1", "2"]}).astype("str")
    with pytest.warns(UserWarning, match=r"\['z'\] have no label"):
        q = wb.annotator_quality(ann)
    assert q["annotator"].iloc[-1] == "z" and np.isnan(q["ds_accuracy"].iloc[-1])


def test_bad_method_is_a_parameter_error():
    ann, _ = shared_confusion_crowd(0, n_items=50)
    with pytest.raises(ValueError, match="'method' parameter of annotator_quality"):
        wb.annotator_quality(ann, method="crowdlab")
