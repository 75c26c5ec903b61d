"""The integer-coded fast paths of workbench.agreement against straightforward references.

The 10M-item work (issue 15) computes everything from integer codes (categorical codes,
Arrow dictionary encoding, bincounts, class-major Dawid-Skene). These tests recompute each
result the plain way -- per item and per annotation in Python, dense arrays -- on random
crowds with ties, items nobody else labelled, annotators with a single label, items with
more labels than the E-step's gather positions, and gold labels with gaps, and on every
input dtype (str, object, categorical with unsorted / unused / non-str categories).
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from workbench import agreement as ag


def _crowd(seed: int, n_items: int = 120, n_ann: int = 14, k: int = 4) -> pd.DataFrame:
    """A random crowd: 1-5 labels per item, a few items with 10-13 labels (past the
    E-step's 8 gather positions), one annotator with a single label, noisy annotators."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    skill = rng.uniform(0.3, 0.95, n_ann)
    rows = []
    for i in range(n_items):
        m = int(rng.integers(1, 6)) if i % 17 else int(rng.integers(10, n_ann))
        for a in rng.choice(n_ann - 1, size=min(m, n_ann - 1), replace=False):
            lab = truth[i] if rng.random() < skill[a] else rng.integers(0, k)
            rows.append((f"it{i:04d}", f"ann{a:02d}", f"c{lab}"))
    rows.append(("it0000", f"ann{n_ann - 1:02d}", "c0"))  # an annotator with one label
    frame = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows unsorted


def _dtypes(ann: pd.DataFrame):
    """The same annotations as str, object and categorical (shuffled, unused categories)."""
    obj = ann.astype(object)
    cat = ann.copy()
    for col in ("item_id", "annotator", "label"):
        cats = sorted(set(ann[col])) + [f"zz_unused_{col}"]
        cats = cats[::-1]  # unsorted categories
        cat[col] = pd.Categorical(ann[col], categories=cats)
    return {"str": ann.astype({"item_id": "str", "annotator": "str", "label": "str"}),
            "object": obj, "category": cat}


# --------------------------------------------------------------------------------------
# straightforward references
# --------------------------------------------------------------------------------------
def _ref_majority(ann: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    rows = []
    for item, grp in sorted(ann.groupby("item_id", observed=True), key=lambda g: str(g[0])):
        counts = Counter(map(str, grp["label"]))
        top = max(counts.values())
        winners = [c for c in classes if counts.get(c, 0) == top]
        rows.append((str(item), winners[0], top / len(grp), len(grp), len(winners) > 1))
    return pd.DataFrame(rows, columns=["item_id", "label", "confidence", "n_labels", "tie"])


def _ref_dawid_skene(ann: pd.DataFrame, smoothing=2.0, max_iter=100, tol=1e-6):
    """Dawid-Skene as written in the docstring, with dense per-annotation Python loops."""
    items = sorted(set(map(str, ann["item_id"])))
    annotators = sorted(set(map(str, ann["annotator"])))
    classes = sorted(set(map(str, ann["label"])))
    k, n, n_ann = len(classes), len(items), len(annotators)
    labels = [(items.index(str(i)), annotators.index(str(a)), classes.index(str(c)))
              for i, a, c in zip(ann["item_id"], ann["annotator"], ann["label"], strict=True)]
    counts = np.zeros((n, k))
    for i, _, c in labels:
        counts[i, c] += 1
    post = counts / counts.sum(axis=1, keepdims=True)
    ll_old, converged, it = -np.inf, False, 0
    for it in range(1, max_iter + 1):  # noqa: B007
        prior = post.mean(axis=0) + 1e-12
        log_prior = np.log(prior / prior.sum())
        conf = np.zeros((n_ann, k, k))
        for i, a, c in labels:
            conf[a, :, c] += post[i]
        pooled = conf.sum(axis=0) + 1e-3
        pooled /= pooled.sum(axis=1, keepdims=True)
        conf += smoothing * pooled[None] + 1e-3
        conf /= conf.sum(axis=2, keepdims=True)
        log_conf = np.log(conf)
        log_post = np.tile(log_prior, (n, 1))
        for i, a, c in labels:
            log_post[i] += log_conf[a, :, c]
        mx = log_post.max(axis=1, keepdims=True)
        unnorm = np.exp(log_post - mx)
        z = unnorm.sum(axis=1, keepdims=True)
        post = unnorm / z
        ll = float((np.log(z) + mx).sum() / len(labels))
        if ll - ll_old < tol:
            converged = True
            break
        ll_old = ll
    return items, classes, annotators, post, np.exp(log_conf), np.exp(log_prior), it, ll, \
        converged


def _co_labelled_pairs(ann: pd.DataFrame):
    """Every unordered pair of labels on one item: (item, ann_a, label_a, ann_b, label_b)."""
    for item, grp in ann.groupby("item_id", observed=True):
        recs = sorted(zip(map(str, grp["annotator"]), map(str, grp["label"]), strict=True))
        for (a1, l1), (a2, l2) in itertools.combinations(recs, 2):
            yield str(item), a1, l1, a2, l2


# --------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_majority_consensus_equals_per_item_counting(seed):
    ann = _crowd(seed)
    classes = sorted(set(ann["label"]))
    ref = _ref_majority(ann, classes)
    assert ref["tie"].any() and (ref["n_labels"] == 1).any()  # the data has both
    for name, frame in _dtypes(ann).items():
        got = ag.consensus(frame)
        assert got["item_id"].tolist() == ref["item_id"].tolist(), name
        assert got["label"].tolist() == ref["label"].tolist(), name
        assert got["tie"].tolist() == ref["tie"].tolist(), name
        assert got["n_labels"].tolist() == ref["n_labels"].tolist(), name
        np.testing.assert_allclose(got["confidence"], ref["confidence"], rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_dawid_skene_equals_a_dense_loop_implementation(seed):
    ann = _crowd(seed)
    items, classes, annotators, post, conf, prior, n_iter, ll, converged = \
        _ref_dawid_skene(ann)
    for name, frame in _dtypes(ann).items():
        res = ag.dawid_skene(frame)
        assert res.posteriors.index.tolist() == items, name
        assert res.posteriors.columns.tolist() == classes, name
        np.testing.assert_allclose(res.posteriors.to_numpy(), post, rtol=1e-9, atol=1e-12)
        for j, a in enumerate(annotators):
            np.testing.assert_allclose(res.confusion[a].to_numpy(), conf[j], rtol=1e-9)
        np.testing.assert_allclose(res.priors.to_numpy(), prior, rtol=1e-9)
        assert (res.n_iter, res.converged) == (n_iter, converged), name
        assert res.log_likelihood == pytest.approx(ll, rel=1e-12)
        cons = ag.consensus(frame, method="dawid_skene")
        assert cons["label"].tolist() == [classes[c] for c in post.argmax(axis=1)]
        np.testing.assert_allclose(cons["confidence"], post.max(axis=1), rtol=1e-9)


def test_dawid_skene_on_items_with_many_labels_uses_every_label():
    # every item labelled by all 12 annotators: positions 8-11 go through the rest path
    rng = np.random.default_rng(5)
    rows = [(f"i{i}", f"a{a:02d}", f"c{rng.integers(0, 3)}") for i in range(40)
            for a in range(12)]
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    _, _, _, post, *_ = _ref_dawid_skene(ann)
    np.testing.assert_allclose(ag.dawid_skene(ann).posteriors.to_numpy(), post, rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 4])
def test_agreement_summary_and_pairwise_equal_pair_by_pair_counting(seed):
    ann = _crowd(seed)
    pairs = list(_co_labelled_pairs(ann))
    by_item = {}
    for item, grp in ann.groupby("item_id"):
        by_item[item] = Counter(grp["label"])
    scored = {i: c for i, c in by_item.items() if sum(c.values()) >= 2}
    p_i = [sum(v * (v - 1) for v in c.values()) / (m * (m - 1))
           for c in scored.values() for m in [sum(c.values())]]
    for name, frame in _dtypes(ann).items():
        with pytest.warns(UserWarning):
            summary = ag.agreement_summary(frame, min_shared=100)  # no pair: NaN mean kappa
        assert summary["percent_agreement"] == pytest.approx(np.mean(p_i), rel=1e-12), name
        assert summary["n_items_scored"] == len(scored)
        assert summary["n_items_single_label"] == len(by_item) - len(scored)
        with warnings.catch_warnings():  # undefined kappas may warn
            warnings.simplefilter("ignore", UserWarning)
            got = ag.pairwise_agreement(frame)
        got = got.set_index(["annotator_a", "annotator_b"])
        shared = {}
        for _, a1, l1, a2, l2 in pairs:
            shared.setdefault((a1, a2), []).append((l1, l2))
        assert sorted(got.index) == sorted(shared), name
        for key, labs in shared.items():
            row = got.loc[key]
            la, lb = zip(*labs, strict=True)
            assert row["n_shared"] == len(labs)
            assert row["agreement"] == pytest.approx(np.mean(np.array(la) == np.array(lb)))
            if len(set(la) | set(lb)) > 1:
                assert row["kappa"] == pytest.approx(cohen_kappa_score(la, lb), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 6])
def test_confused_pairs_equal_pair_by_pair_counting(seed):
    ann = _crowd(seed)
    n_pairs, items = Counter(), {}
    for item, _, l1, _, l2 in _co_labelled_pairs(ann):
        if l1 != l2:
            key = tuple(sorted((l1, l2)))
            n_pairs[key] += 1
            items.setdefault(key, set()).add(item)
    for name, frame in _dtypes(ann).items():
        got = ag.confused_pairs(frame)
        assert {(a, b): n for a, b, n in zip(got["class_a"], got["class_b"], got["n_pairs"],
                                              strict=True)} == dict(n_pairs), name
        for a, b, ids in zip(got["class_a"], got["class_b"], got["item_ids"], strict=True):
            assert ids == sorted(items[(a, b)])
            assert all(type(i) is str for i in ids)


@pytest.mark.parametrize("seed", [0, 7])
def test_disagreement_outputs_equal_per_item_counting(seed):
    ann = _crowd(seed)
    frames = _dtypes(ann)
    expected = {a: ag.disagreeing_items(ann, a) for a in sorted(set(ann["annotator"]))}
    ref = _ref_majority(ann, sorted(set(ann["label"])))
    ref = ref[ref["n_labels"] >= 2]
    n_distinct = ann.groupby("item_id")["label"].nunique()
    for name, frame in frames.items():
        assert ag.disagreeing_items_by_annotator(frame) == expected, name
        got = ag.disagreement_frame(frame)
        assert got["item_id"].tolist() == ref["item_id"].tolist()
        assert got["consensus_label"].tolist() == ref["label"].tolist()
        assert got["n_distinct"].tolist() == n_distinct[ref["item_id"]].tolist()
        np.testing.assert_allclose(got["agreement"], ref["confidence"], rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 8])
def test_annotator_quality_equals_per_label_scoring(seed):
    ann = _crowd(seed)
    rng = np.random.default_rng(seed)
    items = sorted(set(ann["item_id"]))
    # gold for a subset of items, with a missing value and an item nobody labelled
    gold = pd.Series(rng.choice(sorted(set(ann["label"])), len(items)), index=items)
    gold = gold.iloc[::2].copy()
    gold.iloc[1] = None
    gold["not-annotated"] = "c0"
    has = gold.dropna()
    # leave-one-out majority reference, per label in Python
    loo_hits, loo_n = Counter(), Counter()
    for _, grp in ann.groupby("item_id"):
        for a, lab in zip(grp["annotator"], grp["label"], strict=True):
            others = Counter(grp.loc[grp["annotator"] != a, "label"])
            if not others:
                continue
            top = max(others.values())
            if sum(v == top for v in others.values()) > 1:
                continue
            loo_n[a] += 1
            loo_hits[a] += lab == max(others, key=others.get)
    for name, frame in _dtypes(ann).items():
        with warnings.catch_warnings():  # annotators with nothing scored may warn
            warnings.simplefilter("ignore", UserWarning)
            got = ag.annotator_quality(frame, gold, method="majority").set_index("annotator")
        for a, grp in ann.groupby("annotator"):
            sel = grp[grp["item_id"].isin(has.index)]
            assert got.loc[a, "n_scored"] == len(sel), name
            if len(sel):
                acc = np.mean(sel["label"].to_numpy() == has[sel["item_id"]].to_numpy())
                assert got.loc[a, "accuracy"] == pytest.approx(acc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            loo = ag.annotator_quality(frame, method="majority").set_index("annotator")
        for a in loo.index:
            assert loo.loc[a, "n_scored"] == loo_n[a], name
            if loo_n[a]:
                assert loo.loc[a, "accuracy"] == pytest.approx(loo_hits[a] / loo_n[a])
        # reference='dawid_skene': the reference is the DS consensus, fitted once
        ds = ag.annotator_quality(frame, reference="dawid_skene").set_index("annotator")
        cons = ag.consensus(frame, method="dawid_skene").set_index("item_id")["label"]
        same = ag.annotator_quality(frame, reference=cons).set_index("annotator")
        pd.testing.assert_series_equal(ds["accuracy"].sort_index(),
                                       same["accuracy"].sort_index())
        pd.testing.assert_series_equal(ds["ds_accuracy"].sort_index(),
                                       same["ds_accuracy"].sort_index())


def test_categorical_input_with_non_str_categories_and_merged_str_forms():
    ann = pd.DataFrame({"item_id": [1, 1, 2, 2, 10, 10],
                        "annotator": ["x", "y", "x", "y", "x", "y"],
                        "label": [3, 3, 1, 3, 1, 1]})
    cat = ann.astype("category")
    mixed = ann.astype(object)
    mixed.loc[0, "label"] = "3"  # the str forms of 3 and "3" are one class
    mixed["label"] = pd.Categorical(mixed["label"], categories=[1, 3, "3"])
    expected = ag.consensus(ann)
    for frame in (cat, mixed):
        pd.testing.assert_frame_equal(ag.consensus(frame), expected)
    assert expected["item_id"].tolist() == ["1", "10", "2"]  # code point order of str ids
