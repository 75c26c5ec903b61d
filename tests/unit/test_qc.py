"""QC rounds: plan_qc_round, export_qc_round, qc_report and the [qc] thresholds."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

import workbench as wb
from workbench.errors import ReadOnlyError, SchemaError
from workbench.qc import _allocate
from workbench.tags import TagStore

CLASSES = ["cat", "dog", "fox"]
LATER = pd.Timestamp("2099-01-01", tz="UTC")  # labels made after any round is planned


def base_project(n=20, *, strata=None, predictions=True):
    """``n`` items (``i00``...), labels cycling cat/dog/fox, two annotators agreeing."""
    ids = [f"i{k:02d}" for k in range(n)]
    items = pd.DataFrame({"item_id": ids, "label": [CLASSES[k % 3] for k in range(n)],
                          "site": strata if strata is not None else
                          ["north" if k % 2 else "south" for k in range(n)],
                          "vendor": ["V" if k < n // 2 else "W" for k in range(n)]})
    rows = []
    for k, i in enumerate(ids):
        rows += [(i, "x", CLASSES[k % 3]), (i, "y", CLASSES[k % 3])]
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    ann["annotated_at"] = pd.Timestamp("2026-01-05", tz="UTC")
    pred = None
    if predictions:
        pred = pd.DataFrame({"item_id": ids, "run": "m", "label": items["label"],
                             "confidence": np.linspace(0.99, 0.40, n)})
    return wb.Project.from_frames(items=items, annotations=ann, predictions=pred,
                                  classes=CLASSES)


def tagged(project, ids):
    store = TagStore.for_project(project)
    store.add(list(ids), "gold", author="curator", reason="verified")
    return store


# ---------------------------------------------------------------- planning
def test_plan_shape_slots_and_store():
    project = base_project()
    store = tagged(project, ["i00", "i01", "i02", "i03"])
    r = wb.plan_qc_round(project, 10, overlap=3, gold_share=0.2, focus="random",
                         author="lead", name="week 1")
    assert isinstance(r, wb.QCRound) and r.round_id == 1 and r.name == "week 1"
    assert len(r.items) == 30 and len(r.item_ids) == 10 and len(set(r.item_ids)) == 10
    assert len(r.gold_ids) == 2 and set(r.gold_ids) <= {"i00", "i01", "i02", "i03"}
    # every item has annotator slots 0..2 and one batch position
    per = r.items.groupby("item_id").agg(slots=("annotator_slot", sorted),
                                         pos=("slot", "nunique"))
    assert (per["slots"].map(tuple) == (0, 1, 2)).all() and (per["pos"] == 1).all()
    assert sorted(r.items["slot"].unique()) == list(range(10))
    # gold is flagged in the store (never exported), truth kept with the round
    frame = store.qc_rounds.frame()
    assert frame.loc[0, "name"] == "week 1" and frame.loc[0, "author"] == "lead"
    assert frame.loc[0, "n_items"] == 10 and frame.loc[0, "n_gold"] == 2
    params = frame.loc[0, "params"]
    assert params["overlap"] == 3 and params["n_gold"] == 2 and params["focus"] == "random"
    assert params["gold_labels"] == {i: project.items.set_index("item_id").loc[i, "label"]
                                     for i in r.gold_ids}
    stored = store.qc_rounds.items(r.round_id)
    pd.testing.assert_frame_equal(stored, r.items)


def test_gold_count_rounds_half_up_and_at_least_one():
    project = base_project()
    tagged(project, [f"i{k:02d}" for k in range(5)])
    assert len(wb.plan_qc_round(project, 15, gold_share=0.1, focus="random").gold_ids) == 2
    assert len(wb.plan_qc_round(project, 4, gold_share=0.1, focus="random").gold_ids) == 1
    assert wb.plan_qc_round(project, 4, gold_share=0.0, focus="random").gold_ids == []


def test_deterministic_for_a_seed():
    def plan(seed):
        project = base_project()
        tagged(project, ["i00", "i01", "i02"])
        return wb.plan_qc_round(project, 12, gold_share=0.2, focus="random", seed=seed).items

    pd.testing.assert_frame_equal(plan(3), plan(3))
    assert plan(3)["item_id"].tolist() != plan(4)["item_id"].tolist()


def test_gold_is_shuffled_into_the_batch():
    project = base_project(40)
    tagged(project, [f"i{k:02d}" for k in range(0, 40, 4)])
    r = wb.plan_qc_round(project, 30, gold_share=0.3, focus="random", seed=0)
    first = r.items.drop_duplicates("item_id")
    gold_pos = first.loc[first["is_gold"], "slot"].to_numpy()
    assert len(gold_pos) == 9
    assert gold_pos.tolist() != list(range(21, 30))  # not appended at the end
    assert gold_pos.min() < 15  # some in the first half


def test_focus_disagreement_picks_the_most_disputed_items():
    project = base_project()
    ann = project.annotations.copy()
    ann.loc[(ann["item_id"] == "i05") & (ann["annotator"] == "y"), "label"] = "cat"  # fox
    ann.loc[(ann["item_id"] == "i09") & (ann["annotator"] == "y"), "label"] = "dog"  # cat
    extra = pd.DataFrame({"item_id": ["i09"], "annotator": ["z"], "label": ["fox"],
                          "annotated_at": [pd.Timestamp("2026-01-05", tz="UTC")]})
    project = wb.Project.from_frames(items=project.items, annotations=pd.concat([ann, extra]),
                                     classes=CLASSES)
    r = wb.plan_qc_round(project, 2, gold_share=0, focus="disagreement")
    # i09: three labels, three classes (2/3 disagreement); i05: 1/2
    assert sorted(r.item_ids) == ["i05", "i09"]
    # gold items are never chosen as focus items
    tagged(project, ["i09"])
    r = wb.plan_qc_round(project, 1, gold_share=0, focus="disagreement")
    assert r.item_ids == ["i05"]


def test_focus_uncertain_takes_the_lowest_confidence():
    project = base_project()  # confidence falls with the item number
    r = wb.plan_qc_round(project, 3, gold_share=0, focus="uncertain")
    assert sorted(r.item_ids) == ["i17", "i18", "i19"]
    assert r.params["run"] == "m"


def test_focus_confused_pairs_prefers_swapped_items_of_the_top_pair():
    project = base_project(12)
    ann = project.annotations.copy()
    # cat/dog swapped on i00 and i01 (twice), dog/fox on i02 (once)
    for item, label in (("i00", "dog"), ("i01", "cat"), ("i02", "dog")):
        ann.loc[(ann["item_id"] == item) & (ann["annotator"] == "y"), "label"] = label
    project = wb.Project.from_frames(items=project.items, annotations=ann, classes=CLASSES)
    r = wb.plan_qc_round(project, 2, gold_share=0, focus="confused_pairs")
    assert sorted(r.item_ids) == ["i00", "i01"]
    r = wb.plan_qc_round(project, 5, gold_share=0, focus="confused_pairs")
    # then the other cat/dog items (reference label cat or dog), before the fox items
    labels = project.items.set_index("item_id")["label"]
    assert {"i00", "i01"} <= set(r.item_ids)
    assert set(labels[r.item_ids]) <= {"cat", "dog"}


def test_stratified_allocation_is_proportional():
    strata = ["a"] * 70 + ["b"] * 30
    project = base_project(100, strata=strata)
    tagged(project, [f"i{k:02d}" for k in list(range(0, 20)) + list(range(70, 80))])
    r = wb.plan_qc_round(project, 30, gold_share=0.2, focus="random", stratify_by="site")
    site = project.items.set_index("item_id")["site"]
    chosen = pd.Series(site[r.item_ids].to_numpy())
    gold = pd.Series(site[r.gold_ids].to_numpy())
    other = pd.Series(site[[i for i in r.item_ids if i not in set(r.gold_ids)]].to_numpy())
    # non-gold pool: 50 a, 20 b -> 24 items: 17.14 / 6.86 -> 17 / 7
    assert other.value_counts().to_dict() == {"a": 17, "b": 7}
    # gold pool: 20 a, 10 b -> 6 items: 4 / 2
    assert gold.value_counts().to_dict() == {"a": 4, "b": 2}
    assert len(chosen) == 30


def test_allocate_largest_remainder_and_caps():
    assert _allocate([70, 30], 10).tolist() == [7, 3]
    assert _allocate([1, 1, 1], 2).tolist() == [1, 1, 0]
    assert _allocate([1, 50], 10).tolist() == [0, 10]  # 0.2 vs 9.8
    assert _allocate([1, 2], 5).tolist() == [1, 2]  # no stratum gets more than it has
    assert _allocate([2, 0], 2).tolist() == [2, 0]


def test_gold_file_instead_of_tags(tmp_path):
    project = base_project()
    path = tmp_path / "gold.csv"
    pd.DataFrame({"item_id": ["i03", "i04"], "label": ["fox", "fox"]}).to_csv(path, index=False)
    r = wb.plan_qc_round(project, 10, gold_share=0.2, focus="random", gold=path)
    assert sorted(r.gold_ids) == ["i03", "i04"]
    assert r.params["gold_source"] == "file"
    assert r.params["gold_labels"] == {"i03": "fox", "i04": "fox"}  # the file's labels win


def test_gold_ids_as_written_and_csv_guards_undone(tmp_path):
    project = base_project()
    items = project.items.copy()
    items.loc[0, "item_id"] = " i01"  # " i01" and "i01" are two items
    items.loc[5, "item_id"] = "=i05"  # a formula-like id: guarded as "'=i05" in a CSV
    ann = project.annotations.replace({"item_id": {"i00": " i01", "i05": "=i05"}})
    project = wb.Project.from_frames(items=items, annotations=ann, classes=CLASSES)
    path = tmp_path / "gold.csv"
    pd.DataFrame({"item_id": [" i01", "'=i05", "i07 "], "label": ["fox", "dog", "cat"]}
                 ).to_csv(path, index=False)
    r = wb.plan_qc_round(project, 10, gold_share=0.3, focus="random", gold=path)
    assert r.params["gold_labels"] == {" i01": "fox", "=i05": "dog", "i07": "cat"}


# ---------------------------------------------------------------- export
def planned_with_gold():
    project = base_project(30)
    store = tagged(project, [f"i{k:02d}" for k in range(0, 30, 3)])
    r = wb.plan_qc_round(project, 20, overlap=2, gold_share=0.25, focus="random", seed=1)
    return project, store, r


def test_csv_export_hides_gold(tmp_path):
    project, _, r = planned_with_gold()
    path = wb.export_qc_round(project, r.round_id, tmp_path / "qc.csv", format="csv")
    text = path.read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0]) == ["qc_round", "task", "annotator_slot", "item_id", "filepath",
                             "annotator", "label"]
    assert len(rows) == 40
    assert "gold" not in text.lower()
    # no dataset label, no prediction: the label column is empty everywhere
    assert all(row["label"] == "" and row["annotator"] == "" for row in rows)
    # the batch order of the round; gold rows carry exactly the fields others carry
    assert [row["item_id"] for row in rows[::2]] == r.item_ids
    gold = set(r.gold_ids)
    filled = {tuple(k for k, v in row.items() if v) for row in rows}
    assert len(filled) == 1
    for row in rows:
        assert set(row) == set(rows[0])
    tasks = [int(row["task"]) for row in rows if row["item_id"] in gold]
    assert sorted(set(tasks)) != list(range(16, 21))


def test_labelstudio_export_hides_gold(tmp_path):
    project, _, r = planned_with_gold()
    path = wb.export_qc_round(project, r, tmp_path / "qc.json")
    text = path.read_text(encoding="utf-8")
    tasks = json.loads(text)
    assert "gold" not in text.lower()
    assert [t["data"]["item_id"] for t in tasks] == r.item_ids
    assert {tuple(sorted(t)) for t in tasks} == {("data",)}  # no pre-annotations
    assert {tuple(sorted(t["data"])) for t in tasks} == {("item_id", "qc_round", "task")}
    assert [t["data"]["task"] for t in tasks] == list(range(1, 21))


def test_csv_export_guards_formulas_and_reads_back(tmp_path):
    items = pd.DataFrame({"item_id": ["=cmd|' /C calc'!A0", "@x", "plain"],
                          "label": ["cat", "dog", "cat"]})
    project = wb.Project.from_frames(items=items, classes=CLASSES)
    r = wb.plan_qc_round(project, 3, gold_share=0, focus="random")
    path = wb.export_qc_round(project, r.round_id, tmp_path / "qc.csv", format="csv")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(raw["item_id"]) == {"'=cmd|' /C calc'!A0", "'@x", "plain"}
    raw["annotator"] = "ann"
    raw["label"] = "cat"
    raw.to_csv(tmp_path / "back.csv", index=False)
    labels = wb.relabel.read_labels(tmp_path / "back.csv", format="csv",
                                    item_ids=items["item_id"], classes=CLASSES)
    assert set(labels["item_id"]) == set(items["item_id"])


def test_export_is_atomic_and_keeps_the_previous_file_on_bad_input(tmp_path):
    project, _, r = planned_with_gold()
    path = tmp_path / "qc.csv"
    path.write_text("previous\n")
    with pytest.raises(SchemaError, match="no QC round 99"):
        wb.export_qc_round(project, 99, path, format="csv")
    with pytest.raises(ValueError, match="'format' parameter of export_qc_round"):
        wb.export_qc_round(project, r.round_id, path, format="xlsx")
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["qc.csv"]


# ---------------------------------------------------------------- the report
def hand_round():
    """Six items (g1, g2, g3 gold), annotators a, b (vendor V) and c (vendor W).

    Truth: g1 cat, g2 dog, g3 fox; items n1 cat, n2 dog, n3 dog. Labels after the round:

    ====  ===  ===  ===
    item   a    b    c
    ====  ===  ===  ===
    g1    cat  cat  dog
    g2    dog  dog  cat
    g3    fox  dog  fox
    n1    cat  cat  cat
    n2    dog  cat   -
    n3    dog  dog  fox
    ====  ===  ===  ===
    """
    ids = ["g1", "g2", "g3", "n1", "n2", "n3"]
    items = pd.DataFrame({"item_id": ids, "label": ["cat", "dog", "fox", "cat", "dog", "dog"]})
    old = pd.DataFrame({"item_id": ids, "annotator": "a", "label": items["label"],
                        "annotated_at": pd.Timestamp("2026-01-01", tz="UTC"),
                        "vendor": "V"})
    project = wb.Project.from_frames(items=items, annotations=old, classes=CLASSES)
    store = tagged(project, ["g1", "g2", "g3"])
    r = wb.plan_qc_round(project, 6, overlap=3, gold_share=0.5, focus="random")
    assert sorted(r.gold_ids) == ["g1", "g2", "g3"]
    table = {"a": ["cat", "dog", "fox", "cat", "dog", "dog"],
             "b": ["cat", "dog", "dog", "cat", "cat", "dog"],
             "c": ["dog", "cat", "fox", "cat", None, "fox"]}
    rows = [(i, a, lab, LATER, {"a": "V", "b": "V", "c": "W"}[a])
            for a, labs in table.items() for i, lab in zip(ids, labs, strict=True) if lab]
    new = pd.DataFrame(rows, columns=["item_id", "annotator", "label", "annotated_at",
                                      "vendor"])
    labelled = wb.Project.from_frames(items=items, annotations=pd.concat([old, new]),
                                      classes=CLASSES)
    return labelled, store, r, table


def others_majority(table, who, item_pos):
    """The leave-one-out majority of the hand table (ties by class order)."""
    others = [table[o][item_pos] for o in table if o != who and table[o][item_pos]]
    if not others:
        return None
    counts = {c: others.count(c) for c in CLASSES}
    top = max(counts.values())
    return next(c for c in CLASSES if counts[c] == top)


def test_report_hand_computed():
    project, store, r, table = hand_round()
    report = wb.qc_report(project, r.round_id, store=store)
    assert report["level"].tolist() == ["vendor"] * 2 + ["annotator"] * 3
    a = report[report["level"] == "annotator"].set_index("annotator")
    v = report[report["level"] == "vendor"].set_index("vendor")
    # gold: a 3/3, b 2/3 (g3 fox -> dog), c 1/3 (g1 cat -> dog, g2 dog -> cat)
    assert a["n_gold"].to_dict() == {"a": 3, "b": 3, "c": 3}
    assert a["n_gold_correct"].to_dict() == {"a": 3, "b": 2, "c": 1}
    assert a.index.tolist() == ["a", "b", "c"]  # ranked by gold accuracy, worst last
    assert a.loc["c", "gold_miss_ids"] == ["g1", "g2"]
    assert v.loc["V", "n_gold_correct"] == 5 and v.loc["V", "n_gold"] == 6
    assert v.loc["W", "n_labels"] == 5 and a.loc["a", "n_labels"] == 6  # old labels ignored
    for who, row in a.iterrows():
        low, high = proportion_confint(row["n_gold_correct"], row["n_gold"], alpha=0.05,
                                       method="wilson")
        assert row["gold_ci_low"] == pytest.approx(low) and \
            row["gold_ci_high"] == pytest.approx(high)
        # kappa against the others' majority, item by item
        pairs = [(lab, others_majority(table, who, k)) for k, lab in enumerate(table[who])
                 if lab and others_majority(table, who, k)]
        mine, theirs = zip(*pairs, strict=True)
        assert row["n_compared"] == len(pairs)
        assert row["kappa"] == pytest.approx(cohen_kappa_score(theirs, mine,
                                                               labels=CLASSES))
        assert row["agreement"] == pytest.approx(np.mean(np.equal(mine, theirs)))
    # c on n2 has no label; b on n2 disagrees with a (the only other)
    assert "n2" in a.loc["b", "disagree_item_ids"]
    # worst class and pair on gold
    assert a.loc["a", "worst_class"] is pd.NA or pd.isna(a.loc["a", "worst_class"])
    assert a.loc["b", "worst_class"] == "fox" and a.loc["b", "worst_pair"] == "dog <-> fox"
    assert a.loc["b", "worst_pair_item_ids"] == ["g3"]
    assert a.loc["c", "worst_pair"] == "cat <-> dog" and a.loc["c", "worst_pair_misses"] == 2
    assert a.loc["c", "worst_class"] == "cat"  # recall 0 on cat and dog: class order
    assert a.loc["c", "worst_class_item_ids"] == ["g1"]
    # thresholds: defaults 0.9 and 0.6
    assert report.attrs["thresholds"] == {"min_gold_accuracy": 0.9, "min_kappa": 0.6,
                                          "source": "default"}
    assert bool(a.loc["c", "passed"]) is False
    assert "gold accuracy 0.333 < 0.9" in a.loc["c", "fail_reasons"]
    assert bool(a.loc["b", "passed"]) is False
    assert report.attrs["n_items"] == 6 and report.attrs["n_gold_items"] == 3
    assert report.attrs["n_ignored"] == 6 and report.attrs["n_labels"] == 17


def test_report_from_a_qcround_needs_no_store():
    # the labelled project is a new in-memory project (a new, empty store): the QCRound
    # returned by plan_qc_round is the round's record
    project, store, r, _ = hand_round()
    assert isinstance(r.created_at, pd.Timestamp)
    assert TagStore.for_project(project).qc_rounds.frame().empty
    pd.testing.assert_frame_equal(wb.qc_report(project, r),
                                  wb.qc_report(project, r.round_id, store=store))


def test_report_thresholds_override_and_pass():
    project, store, r, _ = hand_round()
    report = wb.qc_report(project, r, store=store, min_gold_accuracy=0.6, min_kappa=-1.0)
    a = report[report["level"] == "annotator"].set_index("annotator")
    assert a["passed"].to_dict() == {"a": True, "b": True, "c": False}
    assert a.loc["a", "fail_reasons"] == ""


def test_report_thresholds_from_project_info():
    project, store, r, _ = hand_round()
    project.info["qc"] = {"min_gold_accuracy": 0.5, "min_kappa": -1}
    report = wb.qc_report(project, r, store=store)
    assert report.attrs["thresholds"]["source"] == "workbench.toml"
    a = report[report["level"] == "annotator"].set_index("annotator")
    assert a["passed"].to_dict() == {"a": True, "b": True, "c": False}
    project.info["qc"] = {"min_gold_acuracy": 0.5}
    with pytest.raises(SchemaError, match="unknown key 'min_gold_acuracy'.*min_gold_accuracy"):
        wb.qc_report(project, r, store=store)


def test_report_without_new_labels_is_empty_not_an_error():
    project = base_project()
    store = tagged(project, ["i00"])
    r = wb.plan_qc_round(project, 5, focus="random")
    report = wb.qc_report(project, r, store=store)
    assert report.empty and report.attrs["n_labels"] == 0
    assert report.attrs["n_ignored"] == 10  # the two old labels of each item
    assert sorted(report.attrs["unlabelled_item_ids"]) == sorted(r.item_ids)


def test_unknown_round_lists_the_rounds():
    project = base_project()
    tagged(project, ["i00"])
    wb.plan_qc_round(project, 5, focus="random", name="first")
    with pytest.raises(SchemaError, match=r"no QC round 7 .*known rounds: 1 \('first'\)"):
        wb.qc_report(project, 7)
    with pytest.raises(TypeError, match="'round' parameter of qc_report"):
        wb.qc_report(project, "first")


# ---------------------------------------------------------------- workbench.toml [qc]
def write_small(tmp_path, toml_extra):
    root = tmp_path / "p"
    root.mkdir(parents=True)
    pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "dog"]}).to_csv(
        root / "items.csv", index=False)
    (root / "workbench.toml").write_text('classes = ["cat", "dog"]\n' + toml_extra)
    return root


def test_toml_qc_table_is_read(tmp_path):
    root = write_small(tmp_path, "[qc]\nmin_gold_accuracy = 0.75\nmin_kappa = 0.4\n")
    project = wb.open_project(root)
    assert project.info["qc"] == {"min_gold_accuracy": 0.75, "min_kappa": 0.4}
    assert wb.qc_thresholds(project) == {"min_gold_accuracy": 0.75, "min_kappa": 0.4,
                                         "source": "workbench.toml"}
    root2 = write_small(tmp_path / "x", "[qc]\nmin_kappa = 0\n")
    assert wb.qc_thresholds(wb.open_project(root2))["min_gold_accuracy"] == 0.9


@pytest.mark.parametrize("extra, match", [
    ('[qc]\nmin_gold_accuracy = "0.9"\n', r"min_gold_accuracy must be a number in \[0, 1\]"),
    ("[qc]\nmin_gold_accuracy = 1.5\n", r"min_gold_accuracy must be a number in \[0, 1\]"),
    ("[qc]\nmin_kappa = true\n", r"min_kappa must be a number in \[-1, 1\]"),
    ("[qc]\nmin_kapa = 0.5\n", "unknown key 'min_kapa'. Did you mean 'min_kappa'"),
    ('qc = "strict"\n', "'qc' must be a table"),
])
def test_toml_qc_table_bad_values(tmp_path, extra, match):
    root = write_small(tmp_path, extra)
    with pytest.raises(SchemaError, match="workbench.toml") as info:
        wb.open_project(root)
    assert any(p.file == "workbench.toml" for p in info.value.problems)
    import re

    assert re.search(match, str(info.value))
    problems = wb.validate_project(root)
    assert any(p.file == "workbench.toml" and (p.column or "").startswith("qc")
               for p in problems)


# ---------------------------------------------------------------- bad input
def test_round_larger_than_the_project_writes_nothing():
    project = base_project()
    store = tagged(project, ["i00", "i01"])
    with pytest.raises(SchemaError, match="larger than the project"):
        wb.plan_qc_round(project, 21, focus="random")
    # 19 items with 2 gold need 17 non-gold, but only 18 exist outside the gold pool: fine;
    # 20 items with 2 gold need 18: fine; 20 items with 4 gold need... the gold pool is 2
    with pytest.raises(SchemaError, match="needs 4 gold item"):
        wb.plan_qc_round(project, 20, gold_share=0.2, focus="random")
    store.add(["i02", "i03", "i04", "i05"], "gold", author="curator")
    with pytest.raises(SchemaError, match="larger than the project"):
        wb.plan_qc_round(project, 20, gold_share=0.05, focus="random")  # 1 gold + 19 > 14
    assert store.qc_rounds.frame().empty


def test_no_gold_says_how_to_tag():
    project = base_project()
    store = TagStore.for_project(project)
    with pytest.raises(SchemaError, match=r"none are available.*\.add\(item_ids, 'gold'"):
        wb.plan_qc_round(project, 5, gold_share=0.1, focus="random")
    assert store.qc_rounds.frame().empty
    assert len(wb.plan_qc_round(project, 5, gold_share=0, focus="random").item_ids) == 5


@pytest.mark.parametrize("kwargs, error, match", [
    ({"overlap": 0}, ValueError, r"'overlap' parameter of plan_qc_round must be an int in "
                                 r"the range \[1, inf\)"),
    ({"gold_share": 1.0}, ValueError, r"'gold_share' .* range \[0, 1\). Got 1.0"),
    ({"gold_share": -0.1}, ValueError, r"'gold_share' .* range \[0, 1\)"),
    ({"focus": "hard"}, ValueError, "'focus' parameter of plan_qc_round must be a str among"),
    ({"stratify_by": "colour"}, ValueError, "'stratify_by' .* among \\['site', 'vendor'\\]"),
    ({"n": 0}, ValueError, "'n' parameter"),
    ({"seed": -1}, ValueError, "'seed' parameter"),
])
def test_bad_parameters_write_nothing(kwargs, error, match):
    project = base_project()
    store = tagged(project, ["i00", "i01"])
    args = {"n": 5, "focus": "random", **kwargs}
    with pytest.raises(error, match=match):
        wb.plan_qc_round(project, **args)
    assert store.qc_rounds.frame().empty


def test_unusable_focus_and_gold_file(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["cat", "dog", "cat"]})
    project = wb.Project.from_frames(items=items, classes=CLASSES)
    with pytest.raises(SchemaError, match="needs annotations"):
        wb.plan_qc_round(project, 2, gold_share=0, focus="disagreement")
    with pytest.raises(SchemaError, match="needs model predictions"):
        wb.plan_qc_round(project, 2, gold_share=0, focus="uncertain")
    bad = tmp_path / "gold.csv"
    bad.write_text("item_id,label\na,cow\n")
    with pytest.raises(SchemaError, match="'cow'.* not classes"):
        wb.plan_qc_round(project, 2, focus="random", gold=bad)
    bad.write_text("item_id,label\nzz,cat\n")
    with pytest.raises(SchemaError, match="not in the project: \\['zz'\\]"):
        wb.plan_qc_round(project, 2, focus="random", gold=bad)
    bad.write_text("item_id,truth\na,cat\n")
    with pytest.raises(SchemaError, match="lacks the column"):
        wb.plan_qc_round(project, 2, focus="random", gold=bad)
    assert TagStore.for_project(project).qc_rounds.frame().empty


def test_read_only_session_cannot_plan(monkeypatch):
    project = base_project()
    store = tagged(project, ["i00"])
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    with pytest.raises(ReadOnlyError, match="plan a QC round"):
        wb.plan_qc_round(project, 5, focus="random")
    assert store.qc_rounds.frame().empty


def test_detection_project_is_refused():
    class Fake:
        task = "detection"

    with pytest.raises(SchemaError, match="classification"):
        wb.plan_qc_round(Fake(), 5)


# ---------------------------------------------------------------- the sample project
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def error_profiles(project, truth: pd.Series) -> dict[str, np.ndarray]:
    """Each sample annotator's confusion (true -> given), row-normalised, from the sample."""
    k = len(project.classes)
    ann = project.annotations
    t = pd.Index(project.classes).get_indexer(truth.reindex(ann["item_id"]).to_numpy())
    g = pd.Index(project.classes).get_indexer(ann["label"])
    out = {}
    for a in project.annotators:
        mine = (ann["annotator"] == a).to_numpy()
        cm = np.bincount(t[mine] * k + g[mine], minlength=k * k).reshape(k, k) + 1e-9
        out[a] = cm / cm.sum(axis=1, keepdims=True)
    return out


def test_sample_round_with_ten_percent_gold_ranks_the_careless_annotator_last(tmp_path):
    """Export a round, let the sample's annotators label it with their own error profiles,
    import the file, report: ``eli`` (careless) is last on gold accuracy and fails."""
    root = tmp_path / "sample"
    root.mkdir()
    for name in ("items.csv", "annotations.csv", "predictions.csv", "workbench.toml",
                 "truth.csv"):
        shutil.copy(SAMPLE / name, root / name)
    project = wb.open_project(root)
    truth = pd.read_csv(root / "truth.csv", dtype=str).set_index("item_id")
    verified = truth.index[truth["is_label_error"].str.lower() == "false"]
    store = TagStore.for_project(project)
    store.add(list(verified[::10]), "gold", author="curator", reason="label verified")
    r = wb.plan_qc_round(project, 1000, overlap=3, gold_share=0.1, focus="disagreement",
                         stratify_by="scanner", seed=0, author="lead")
    assert len(r.item_ids) == 1000 and len(r.gold_ids) == 100
    path = wb.export_qc_round(project, r.round_id, tmp_path / "round.csv", format="csv")
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    # the vendor fills the sheet: slot a of task t goes to one of the six annotators
    # (each item to three different people), who labels with their own confusions
    rng = np.random.default_rng(0)
    people = np.array(project.annotators)
    profiles = error_profiles(project, truth["true_label"])
    task = sheet["task"].astype(int).to_numpy()
    slot = sheet["annotator_slot"].astype(int).to_numpy()
    who = people[(task + 2 * slot) % len(people)]
    true = truth["true_label"].reindex(sheet["item_id"]).to_numpy()
    given = [project.classes[rng.choice(len(project.classes), p=profiles[a][
        project.classes.index(t)])] for a, t in zip(who, true, strict=True)]
    sheet["annotator"], sheet["label"] = who, given
    sheet.to_csv(tmp_path / "back.csv", index=False)
    # the vendor's file is the complete record (import_labels skips a label equal to the
    # annotator's earlier label of the item); the labels appended to the annotations
    # after the round give the same report
    report = wb.qc_report(project, r.round_id, labels=tmp_path / "back.csv")
    later = sheet[["item_id", "annotator", "label"]].assign(
        annotated_at=pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1))
    appended = wb.Project.from_frames(
        items=project.items, annotations=pd.concat([project.annotations, later]),
        predictions=project.predictions, classes=project.classes)
    same = wb.qc_report(appended, r.round_id, store=store)
    pd.testing.assert_frame_equal(report, same)

    a = report[report["level"] == "annotator"]
    assert a["annotator"].iloc[-1] == "eli"  # last on gold accuracy
    assert a.set_index("annotator")["gold_accuracy"].idxmin() == "eli"
    assert (a["n_gold"] >= 40).all() and a["n_labels"].sum() == 3000
    eli = a.set_index("annotator").loc["eli"]
    assert not eli["passed"] and "gold accuracy" in eli["fail_reasons"]
    assert a.set_index("annotator").loc["ana", "passed"]
    # the worse vendor is worse on gold too
    v = report[report["level"] == "vendor"].set_index("vendor")
    assert v.loc["quicklabel", "gold_accuracy"] < v.loc["northstar", "gold_accuracy"]
    # the items behind the numbers: eli's misses are gold items eli labelled wrong
    gold_truth = r.params["gold_labels"]
    mine = sheet[(sheet["annotator"] == "eli") & sheet["item_id"].isin(set(gold_truth))]
    wrong = sorted(mine.loc[mine["label"] != mine["item_id"].map(gold_truth), "item_id"])
    assert eli["gold_miss_ids"] == wrong
    assert report.attrs["n_labels"] == 3000 and report.attrs["unlabelled_item_ids"] == []
