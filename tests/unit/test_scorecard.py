"""workbench.vendor_scorecard: hand-computed case, the sample's worse vendor, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

import workbench as wb
from workbench.errors import SchemaError
from workbench.scorecard import drop_test, loop_entries, reworked_labels
from workbench.tags import TagStore

EARLY = pd.Timestamp("2026-01-05", tz="UTC")
LATER = pd.Timestamp("2030-01-01", tz="UTC")  # a re-import after the item entered the loop


def hand_project():
    """x and y (vendor V), z and the reworker r (vendor W) on four items; cat < dog."""
    rows = [("i1", "x", "cat"), ("i1", "y", "cat"), ("i1", "z", "cat"),
            ("i2", "x", "dog"), ("i2", "y", "dog"), ("i2", "z", "cat"),
            ("i3", "x", "cat"), ("i3", "y", "dog"), ("i3", "z", "dog"),
            ("i4", "x", "dog"), ("i4", "y", "dog"), ("i4", "z", "dog")]
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    ann["vendor"] = ann["annotator"].map({"x": "V", "y": "V", "z": "W"})
    ann["annotated_at"] = EARLY
    rework = pd.DataFrame({"item_id": ["i2"], "annotator": ["r"], "label": ["cat"],
                           "vendor": ["W"], "annotated_at": [LATER]})
    ann = pd.concat([ann, rework], ignore_index=True)
    items = pd.DataFrame({"item_id": ["i1", "i2", "i3", "i4"],
                          "label": ["cat", "cat", "cat", "dog"]})
    project = wb.Project.from_frames(items=items, annotations=ann, classes=["cat", "dog"])
    store = TagStore.for_project(project)
    store.add(["i3"], "gold", author="curator")
    store.add(["i2"], "relabel", author="curator")
    store.set_status(["i2"], "sent", queue="relabel", author="curator")
    store.set_status(["i2"], "relabeled", queue="relabel", author="curator")
    return project, store


def test_hand_computed_scorecard():
    project, store = hand_project()
    card = wb.vendor_scorecard(project, by="vendor", method="majority", min_support=1)
    assert list(card.columns[:3]) == ["vendor", "annotator", "level"]
    v = card[card["level"] == "vendor"].set_index("vendor")
    a = card[card["level"] == "annotator"].set_index("annotator")
    # consensus (majority, ties by class order): i1 cat, i2 cat (2-2), i3 dog, i4 dog
    assert v.loc["V", "n_labels"] == 8 and v.loc["W", "n_labels"] == 5
    assert v.loc["V", "consensus_agreement"] == 5 / 8 and v.loc["W", "consensus_agreement"] == 1
    assert a.loc["x", "consensus_agreement"] == 2 / 4 and a.loc["y", "consensus_agreement"] == 3 / 4
    cons = {"i1": "cat", "i2": "cat", "i3": "dog", "i4": "dog"}
    ann = project.annotations
    mine = ann[ann["vendor"] == "V"]
    assert v.loc["V", "kappa"] == pytest.approx(
        cohen_kappa_score(mine["item_id"].map(cons), mine["label"]))
    # gold: i3 (truly cat): x right, y wrong, z wrong
    assert v.loc["V", "n_gold"] == 2 and v.loc["V", "gold_accuracy"] == 0.5
    assert v.loc["W", "n_gold"] == 1 and v.loc["W", "gold_accuracy"] == 0.0
    assert a.loc["x", "gold_accuracy"] == 1.0 and np.isnan(a.loc["r", "gold_accuracy"])
    # rework: i2 went through the loop; r's later "cat" changes x's and y's "dog", not z's
    assert v.loc["V", "n_reworked"] == 2 and v.loc["V", "rework_rate"] == 2 / 8
    assert v.loc["W", "n_reworked"] == 0
    assert a.loc["x", "n_reworked"] == 1 and a.loc["z", "n_reworked"] == 0
    # Dawid-Skene accuracy: mean posterior of the given label (all items have >= 2 labels)
    post = wb.dawid_skene(ann, classes=["cat", "dog"]).posteriors
    p = post.to_numpy()[post.index.get_indexer(mine["item_id"]),
                        post.columns.get_indexer(mine["label"])]
    assert v.loc["V", "ds_accuracy"] == pytest.approx(p.mean())
    assert v.loc["V", "worst_pair"] == "cat <-> dog"
    # one batch: no trend
    assert card["trend_p_value"].isna().all() and not card["drop_flag"].any()
    assert card.attrs["flagged"] == []


def test_no_gold_gives_nan_and_gold_parameter_overrides_store():
    project, store = hand_project()
    card = wb.vendor_scorecard(project, by="vendor", gold=[], store=store)
    assert card["gold_accuracy"].isna().all() and (card["n_gold"] == 0).all()
    card = wb.vendor_scorecard(project, by="vendor", gold=["i1"], store=store)
    v = card[card["level"] == "vendor"].set_index("vendor")
    assert v.loc["V", "gold_accuracy"] == 1.0 and v.loc["V", "n_gold"] == 2


def test_reworked_labels_rules():
    t0, t1 = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-03-01", tz="UTC")
    ann = pd.DataFrame({
        "item_id": ["a", "a", "a", "a", "b", "b"],
        "annotator": ["x", "y", "w", "z", "x", "z"],
        "label": ["1", "7", "1", "7", "2", "3"],
        "annotated_at": [t0, t0, pd.NaT, t1, t0, t1],
    })
    entries = pd.Series([pd.Timestamp("2026-02-01", tz="UTC")], index=["a"])
    # x's 1 and w's 1 (no time: before) are changed by z's later 7; y's 7 is not; z's own
    # label is inside the loop; b never went through the loop
    assert reworked_labels(ann, entries).tolist() == [True, False, True, False, False, False]
    assert not reworked_labels(ann, entries.iloc[:0]).any()
    assert not reworked_labels(ann.drop(columns="annotated_at"), entries).any()


def test_loop_entries_reads_the_store():
    project, store = hand_project()
    entries = loop_entries(store)
    assert entries.index.tolist() == ["i2"]
    assert entries.iloc[0] == store.history(tag="relabel")["created_at"].min()
    store.add(["i4"], "relabel", author="curator")  # queued, never relabelled: no entry
    assert loop_entries(store).index.tolist() == ["i2"]


def drifting_project(seed=0, drop_to=0.6):
    """Three weekly batches of 300 items, each labelled twice by vendor V and twice by W.

    The vendor is an annotation column (per label), the batch item metadata; vendor V gets
    worse in the last batch.
    """
    rng = np.random.default_rng(seed)
    n, k = 900, 5
    truth = rng.integers(0, k, n)
    batch = np.repeat(["2026-W01", "2026-W02", "2026-W03"], n // 3)
    who = {"V": ["v1", "v2", "v3"], "W": ["w1", "w2", "w3"]}
    rows = []
    for i in range(n):
        for vendor, names in who.items():
            for name in rng.choice(names, 2, replace=False):
                acc = drop_to if vendor == "V" and batch[i] == "2026-W03" else 0.95
                lab = truth[i] if rng.random() < acc else (truth[i] + rng.integers(1, k)) % k
                rows.append((f"i{i:04d}", name, str(lab), vendor))
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label", "vendor"])
    items = pd.DataFrame({"item_id": [f"i{i:04d}" for i in range(n)],
                          "label": truth.astype(str), "batch": batch})
    return wb.Project.from_frames(items=items, annotations=ann)


def test_trend_flags_the_vendor_that_drops():
    project = drifting_project()
    card = wb.vendor_scorecard(project, gold=[])
    v = card[card["level"] == "vendor"].set_index(["vendor", "batch"])
    assert card.attrs["flagged"] == ["V"]
    assert v.loc[("V", "2026-W03"), "drop_flag"]
    assert v.loc[("V", "2026-W03"), "trend_change"] < -0.2
    assert np.isnan(v.loc[("V", "2026-W01"), "trend_p_value"])
    assert not v.xs("W", level="vendor")["drop_flag"].any()
    a = card[card["level"] == "annotator"]
    assert set(zip(a["vendor"], a["annotator"], strict=True)) == {
        ("V", "v1"), ("V", "v2"), ("V", "v3"), ("W", "w1"), ("W", "w2"), ("W", "w3")}
    assert a.loc[a["batch"] == "2026-W03", "drop_flag"].tolist() == [True] * 3 + [False] * 3
    # unchanged labels: no flag
    calm = wb.vendor_scorecard(drifting_project(drop_to=0.95), gold=[])
    assert calm.attrs["flagged"] == [] and not calm["drop_flag"].any()


def test_drop_test_matches_statsmodels():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    x1, n1, x2, n2 = 70, 100, 180, 200
    _, p = proportion.proportions_ztest([x1, x2], [n1, n2], alternative="smaller")
    assert drop_test([x1], [n1], [x2], [n2])[0] == pytest.approx(p)
    assert np.isnan(drop_test([5], [5], [0], [0])[0])  # no earlier batch
    assert np.isnan(drop_test([5], [5], [9], [9])[0])  # no variance


# ---------------------------------------------------------------- the sample project
@pytest.fixture(scope="module")
def sample_card(sample_project):
    # a copy of the sample in memory: the store is in-memory, nothing written to data/sample
    project = wb.Project.from_frames(items=sample_project.items,
                                     annotations=sample_project.annotations,
                                     classes=sample_project.classes)
    return wb.vendor_scorecard(project)


def test_sample_scorecard_flags_the_worse_vendor(sample_card):
    card = sample_card
    assert card.attrs["flagged"] == ["quicklabel"]
    v = card[card["level"] == "vendor"].set_index(["vendor", "batch"])
    flagged = v[v["drop_flag"]].index.tolist()
    assert flagged == [("quicklabel", "2026-W04")]  # the planted rushed week
    assert not v.xs("northstar", level="vendor")["drop_flag"].any()
    # the worse vendor is worse on every consensus measure, over all batches
    totals = card[card["level"] == "vendor"].groupby("vendor")[
        ["consensus_agreement", "ds_accuracy", "kappa"]].mean()
    assert (totals.loc["quicklabel"] < totals.loc["northstar"]).all()
    # annotators belong to their own vendor (taken from the items they mostly label)
    a = card[card["level"] == "annotator"].drop_duplicates("annotator")
    assert dict(zip(a["annotator"], a["vendor"], strict=True)) == {
        "ana": "northstar", "ben": "northstar", "cho": "northstar",
        "dev": "quicklabel", "eli": "quicklabel", "fay": "quicklabel"}
    # the planted confusions are the annotators' worst pairs
    pairs = card[card["level"] == "annotator"].groupby("annotator")["worst_pair"] \
        .agg(lambda s: s.mode().iloc[0])
    assert pairs["cho"] == "1 <-> 7" and pairs["dev"] == "4 <-> 9"
    assert (card["rework_rate"] == 0).all()  # nothing went through the relabel loop


def test_sample_gold_accuracy_ranks_vendors(sample_project):
    project = wb.Project.from_frames(items=sample_project.items,
                                     annotations=sample_project.annotations,
                                     classes=sample_project.classes)
    truth = pd.read_csv(sample_project.root / "truth.csv", dtype=str).set_index("item_id")
    verified = truth.index[truth["is_label_error"].str.lower().eq("false")]
    gold = list(verified[::10])  # 10% gold, items whose dataset label is right
    card = wb.vendor_scorecard(project, gold=gold)
    v = card[card["level"] == "vendor"]
    n = v.groupby("vendor")["n_gold"].sum()
    right = (v["gold_accuracy"] * v["n_gold"]).groupby(v["vendor"]).sum()
    assert (n > 100).all()
    assert right["quicklabel"] / n["quicklabel"] < right["northstar"] / n["northstar"]


# ---------------------------------------------------------------- bad input
def test_missing_by_column_names_the_columns():
    project, store = hand_project()
    with pytest.raises(SchemaError, match=r"column 'batch' is in neither the annotations "
                                          r"\(columns \['annotator', 'vendor', 'annotated_at'\]\)"):
        wb.vendor_scorecard(project, store=store)
    with pytest.raises(SchemaError, match=r"column 'team'.*items \(metadata columns \[\]\)"):
        wb.vendor_scorecard(project, by=("team",), store=store)


@pytest.mark.parametrize("kwargs, match", [
    ({"by": ()}, "'by' parameter of vendor_scorecard"),
    ({"by": ("vendor", "vendor")}, "'by' parameter of vendor_scorecard"),
    ({"by": 3}, "'by' parameter of vendor_scorecard"),
    ({"by": "vendor", "method": "crowdlab"}, "'method' parameter of vendor_scorecard"),
    ({"by": "vendor", "alpha": 1.5}, "'alpha' parameter of vendor_scorecard"),
    ({"by": "vendor", "min_drop": -0.1}, "'min_drop' parameter of vendor_scorecard"),
    ({"by": "vendor", "min_support": 0}, "'min_support' parameter of vendor_scorecard"),
    ({"by": "vendor", "queue": ""}, "'queue' parameter of vendor_scorecard"),
])
def test_bad_parameters(kwargs, match):
    project, store = hand_project()
    with pytest.raises(ValueError, match=match):
        wb.vendor_scorecard(project, store=store, **kwargs)


def test_bad_data():
    project, store = hand_project()
    with pytest.raises(TypeError, match="'project' parameter of vendor_scorecard"):
        wb.vendor_scorecard(project.annotations)
    with pytest.raises(TypeError, match="'gold' parameter"):
        wb.vendor_scorecard(project, by="vendor", gold="i1", store=store)
    ann = project.annotations.copy()
    ann.loc[ann["item_id"] == "i4", "vendor"] = None
    broken = wb.Project.from_frames(items=project.items, annotations=ann)
    with pytest.raises(SchemaError, match=r"annotations column 'vendor' is missing for 3 "
                                          r"label\(s\), e.g. on item\(s\) \['i4'\]"):
        wb.vendor_scorecard(broken, by="vendor")
    items = project.items.assign(batch=["w1", "w1", None, "w2"])
    no_batch = wb.Project.from_frames(items=items, annotations=project.annotations)
    with pytest.raises(SchemaError, match=r"items column 'batch' is missing for 3 label\(s\), "
                                          r"e.g. on item\(s\) \['i3'\]"):
        wb.vendor_scorecard(no_batch)
    empty = wb.Project.from_frames(items=project.items,
                                   annotations=project.annotations.iloc[:0])
    with pytest.raises(SchemaError, match="no annotations"):
        wb.vendor_scorecard(empty, by="vendor")
