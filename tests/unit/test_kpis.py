"""The manager overview's key figures (workbench.kpis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import kpis
from workbench.errors import SchemaError


def test_error_rate_table_change_from_previous_run():
    errors = pd.DataFrame({"run": ["a"] * 4 + ["b"] * 4 + ["c"] * 2,
                           "correct": [True, False, False, True, True, True, True, False,
                                       False, False]})
    out = kpis.error_rate_table(errors, runs=["a", "b", "c"])
    assert out["run"].tolist() == ["a", "b", "c"]
    assert out["n"].tolist() == [4, 4, 2]
    assert out["errors"].tolist() == [2, 1, 2]
    np.testing.assert_allclose(out["error_rate"], [0.5, 0.25, 1.0])
    assert np.isnan(out["change"].iloc[0])
    np.testing.assert_allclose(out["change"].iloc[1:], [-0.25, 0.75])


def test_error_rate_table_keeps_a_run_without_items():
    errors = pd.DataFrame({"run": ["a", "a"], "correct": [True, False]})
    out = kpis.error_rate_table(errors, runs=["a", "b"])
    assert out["n"].tolist() == [2, 0]
    assert np.isnan(out["error_rate"].iloc[1])


def test_error_rate_table_names_missing_columns():
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['correct'\]"):
        kpis.error_rate_table(pd.DataFrame({"run": ["a"]}))


def test_relabel_status_counts_like_the_relabel_queue():
    tags = pd.DataFrame({"item_id": ["a", "b", "c", "d", "f"],
                         "tag": ["relabel", "relabel", "blurry", "relabel", "relabel"],
                         "tagged_at": pd.to_datetime(["2026-01-01"] * 4 + ["2026-03-01"])})
    statuses = pd.DataFrame({"item_id": ["b", "d", "e", "f"],
                             "status": ["sent", "verified", "queued", "relabeled"],
                             "updated_at": pd.to_datetime(["2026-02-01"] * 4)})
    out = kpis.relabel_status_counts(tags, statuses)
    assert out["status"].tolist() == list(kpis.STATUS_ORDER)
    # a: tagged, no status -> queued; f: re-tagged after its status -> queued;
    # e: a status but no tag -> not in the queue; c: another tag
    assert dict(zip(out["status"], out["n_items"], strict=True)) == {
        "queued": 2, "sent": 1, "relabeled": 0, "verified": 1}


def test_relabel_status_counts_matches_relabel_queue(sample_project, tmp_path):
    from workbench.relabel import RelabelQueue
    from workbench.tags import TagStore

    store = TagStore(f"sqlite:///{tmp_path / 'tags.db'}",
                     item_ids=sample_project.items["item_id"].tolist())
    ids = sample_project.items["item_id"].tolist()[:6]
    store.add(ids, "relabel", author="alice")
    store.set_status(ids[:2], "sent", queue="relabel", author="alice")
    store.set_status(ids[2:3], "verified", queue="relabel", author="alice")
    store.add(ids[2:3], "relabel", author="bob")  # already tagged: no new event
    mine = kpis.relabel_status_counts(store.tags(), store.statuses("relabel"))
    theirs = RelabelQueue(sample_project, store=store).counts()
    assert dict(zip(mine["status"], mine["n_items"], strict=True)) == dict(
        zip(theirs["status"], theirs["n_items"], strict=True))


def test_status_order_is_the_store_statuses():
    from workbench.tags import STATUSES

    assert kpis.STATUS_ORDER is STATUSES


def _retag_store(sample_project, tmp_path):
    """Six items: two never given a status, sent, verified, and two re-tagged after one."""
    from workbench.tags import TagStore

    store = TagStore(f"sqlite:///{tmp_path / 'tags.db'}",
                     item_ids=sample_project.items["item_id"].tolist())
    ids = sample_project.items["item_id"].tolist()[:6]
    store.add(ids, "relabel", author="alice")
    store.set_status(ids[2:3], "sent", queue="relabel", author="alice")
    store.set_status(ids[3:6], "verified", queue="relabel", author="alice")
    store.remove(ids[4:6], "relabel", author="bob")
    store.add(ids[4:6], "relabel", author="bob", reason="still wrong")  # after its status
    return store, ids


def test_relabel_status_counts_and_queue_share_the_retag_rule(sample_project, tmp_path,
                                                             monkeypatch):
    from workbench import relabel
    from workbench.relabel import RelabelQueue

    store, ids = _retag_store(sample_project, tmp_path)

    def both():
        mine = kpis.relabel_status_counts(store.tags(), store.statuses("relabel"))
        theirs = RelabelQueue(sample_project, store=store).counts()
        return (dict(zip(mine["status"], mine["n_items"], strict=True)),
                dict(zip(theirs["status"], theirs["n_items"], strict=True)))

    mine, theirs = both()
    assert mine == theirs == {"queued": 4, "sent": 1, "relabeled": 0, "verified": 1}
    per_item = RelabelQueue(sample_project, store=store).frame().set_index("item_id")["status"]
    assert per_item[ids[4]] == per_item[ids[5]] == "queued"  # re-tagged after "verified"
    # one rule: change it in relabel and both follow
    calls, rule = [], relabel.queue_statuses

    def never_requeue(status, tagged_at=None, status_at=None):
        calls.append(len(status))
        return rule(status)  # only items without a status are queued

    monkeypatch.setattr(relabel, "queue_statuses", never_requeue)
    mine, theirs = both()
    assert mine == theirs == {"queued": 2, "sent": 1, "relabeled": 0, "verified": 3}
    assert calls == [6, 6]


def test_label_issue_rate():
    assert kpis.label_issue_rate(pd.DataFrame({"is_issue": [True, True, False]})) == {
        "n_items": 3, "n_issues": 2, "rate": 2 / 3}
    assert np.isnan(kpis.label_issue_rate(pd.DataFrame({"is_issue": []}))["rate"])


def test_batch_trends_long_frame():
    errors = pd.DataFrame({"run": ["a", "a", "a", "b"], "correct": [True, False, True, False],
                           "batch": ["w2", "w1", "w1", "w1"]})
    agreement = pd.DataFrame({"batch": ["w1", "w2"], "n_items": [5, 6],
                              "percent_agreement": [0.9, 0.8]})
    out = kpis.batch_trends(errors, agreement)
    got = {(r.series, r.batch): (r.value, r.n) for r in out.itertuples()}
    assert got == {("error rate: a", "w1"): (0.5, 2), ("error rate: a", "w2"): (0.0, 1),
                   ("error rate: b", "w1"): (1.0, 1), ("label agreement", "w1"): (0.9, 5),
                   ("label agreement", "w2"): (0.8, 6)}


def test_overview_kpis_on_the_sample(sample_project):
    k = kpis.overview_kpis(sample_project)
    assert k.problems == {}
    s = k.summary
    assert s["n_items"] == len(sample_project.items)
    assert s["n_classes"] == len(sample_project.classes)
    assert s["n_annotators"] == sample_project.annotations["annotator"].nunique()
    assert s["runs"] == sample_project.runs
    errors = sample_project.errors(sample_project.default_run)
    row = k.error_rates.set_index("run").loc[sample_project.default_run]
    assert row["error_rate"] == pytest.approx(1 - errors["correct"].mean())
    assert set(k.agreement) == {"vendor", "batch"}
    assert set(k.agreement["vendor"]["vendor"]) == set(sample_project.items["vendor"].dropna())
    assert 0 < k.label_issues["rate"] < 0.5
    assert k.trends["series"].str.startswith("error rate: ").sum() == \
        len(sample_project.runs) * sample_project.items["batch"].nunique()
    assert len(k.worst) >= 1 and (k.worst["lift"] > 1).all()


def test_overview_kpis_reports_missing_sections_instead_of_failing():
    import workbench as wb

    items = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "y", "x"],
                          "vendor": ["v1", "v1", "v2"]})
    project = wb.Project.from_frames(items=items)
    k = kpis.overview_kpis(project)
    assert k.summary["n_items"] == 3
    assert "error_rates" in k.problems and "no predictions" in k.problems["error_rates"]
    assert "agreement" in k.problems
    assert k.error_rates is None and k.worst is None
    assert k.relabel["n_items"].sum() == 0


def test_overview_kpis_reads_the_relabel_queue(sample_project, tmp_path):
    from workbench.tags import TagStore

    store = TagStore(f"sqlite:///{tmp_path / 'tags.db'}",
                     item_ids=sample_project.items["item_id"].tolist())
    ids = sample_project.items["item_id"].tolist()[:5]
    store.add(ids, "relabel", author="alice", reason="blurry")
    store.set_status(ids[:2], "sent", queue="relabel", author="alice")
    k = kpis.overview_kpis(sample_project, store=store, issues=False)
    counts = dict(zip(k.relabel["status"], k.relabel["n_items"], strict=True))
    assert counts["queued"] == 3 and counts["sent"] == 2


def test_overview_never_creates_a_tag_database(tmp_path, sample_root):
    import shutil

    import workbench as wb

    root = tmp_path / "proj"
    shutil.copytree(sample_root, root, ignore=shutil.ignore_patterns(".workbench", "images"))
    project = wb.open_project(root)
    k = kpis.overview_kpis(project, issues=False)
    assert k.relabel["n_items"].sum() == 0
    # no tag database (the result cache, .workbench/cache, is not one)
    assert not (root / ".workbench" / "workbench.db").exists()
    assert not list((root / ".workbench").glob("*.db*"))


# --------------------------------------------------------------------------- scorecards


def test_overview_scorecard_flags_quicklabel_on_the_sample(sample_project):
    from workbench.scorecard import vendor_scorecard

    k = kpis.overview_kpis(sample_project, issues=False)
    assert "scorecard" not in k.problems
    flagged = [tuple(r) for r in k.scorecard_flagged[["vendor", "batch"]].itertuples(
        index=False)]
    assert flagged == [("quicklabel", "2026-W04")]
    assert k.scorecard_flagged["trend_change"].iloc[0] < -0.03
    # one row per vendor and batch, the vendor-level rows of the scorecard itself
    card = vendor_scorecard(sample_project)
    vendor_rows = card[card["level"] == "vendor"]
    assert len(k.scorecard) == len(vendor_rows)
    assert set(zip(k.scorecard["vendor"], k.scorecard["batch"], strict=True)) == \
        set(zip(vendor_rows["vendor"], vendor_rows["batch"], strict=True))
    assert k.scorecard["n_labels"].sum() == vendor_rows["n_labels"].sum()
    assert "annotator" not in k.scorecard.columns
    assert k.scorecard["drop_flag"].sum() == 1


def test_scorecard_is_computed_once_per_project_load(sample_root):
    import workbench as wb

    project = wb.open_project(sample_root)
    first = kpis.cached_scorecard(project)
    assert kpis.cached_scorecard(project) is first  # same load: cached
    again = kpis.cached_scorecard(wb.open_project(sample_root))
    assert again is not first  # a new load computes afresh
    pd.testing.assert_frame_equal(again, first)


def test_scorecard_table_and_flags_on_a_small_card():
    card = pd.DataFrame({
        "vendor": ["b", "a", "a", "a"], "annotator": [None, None, None, "x"],
        "batch": ["w1", "w2", "w1", "w1"], "level": ["vendor"] * 3 + ["annotator"],
        "n_labels": [5, 6, 7, 7], "trend_change": [np.nan, -0.2, np.nan, np.nan],
        "drop_flag": [False, True, False, False]})
    table = kpis.scorecard_table(card)
    assert table[["vendor", "batch"]].values.tolist() == [["a", "w1"], ["a", "w2"],
                                                          ["b", "w1"]]
    assert table["n_labels"].tolist() == [7, 6, 5]
    flags = kpis.scorecard_flags(table)
    assert flags.to_dict("list") == {"vendor": ["a"], "batch": ["w2"], "trend_change": [-0.2]}
    with pytest.raises(SchemaError, match="level"):
        kpis.scorecard_table(card.drop(columns="level"))
    with pytest.raises(SchemaError, match="drop_flag"):
        kpis.scorecard_flags(table.drop(columns="drop_flag"))


# --------------------------------------------------------------------------- releases


def test_release_table_newest_first_with_changes_per_class():
    releases = pd.DataFrame({
        "release": [1, 2],
        "created_at": pd.to_datetime(["2026-01-05 10:00", "2026-01-06 11:30"], utc=True),
        "author": ["ann", "bob"], "message": ["first", "second"], "n_changed": [2, 1],
        "changed_per_class": [{"cat": 2, "dog": -2}, {"cat": 0, "bird": 1, "dog": -1}]})
    out = kpis.release_table(releases)
    assert out["release"].tolist() == [2, 1]
    assert out["created_at"].tolist() == ["2026-01-06 11:30", "2026-01-05 10:00"]
    assert out["changes"].tolist() == ["bird +1, dog -1", "cat +2, dog -2"]
    assert kpis.release_table(releases.iloc[:0]).empty
    with pytest.raises(SchemaError, match="changed_per_class"):
        kpis.release_table(releases.drop(columns="changed_per_class"))


def test_overview_lists_releases_after_a_release(tmp_path, monkeypatch):
    import workbench as wb
    from workbench.project import write_project

    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "y", "x"]})
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["u", "v"] * 2,
                        "label": ["x", "x", "y", "y"]})
    mem = wb.Project.from_frames(items=items, annotations=ann, classes=["x", "y"])
    project = wb.open_project(write_project(mem, tmp_path / "p", format="csv"))
    k = kpis.overview_kpis(project, issues=False)
    assert k.releases is not None and k.releases.empty and "releases" not in k.problems
    project.decide("a", "y", author="lead", reason="checked")
    project.decide("c", "y", author="lead")
    project.release_labels("two fixes", author="lead")
    k = kpis.overview_kpis(project, issues=False)
    row = k.releases.iloc[0].to_dict()
    assert (row["release"], row["author"], row["message"], row["n_changed"]) == \
        (1, "lead", "two fixes", 2)
    assert row["changes"] == "x -2, y +2"
    # a project without a folder has no releases (and it is not a problem)
    k = kpis.overview_kpis(wb.Project.from_frames(items=items), issues=False)
    assert k.releases is None and "releases" not in k.problems


def test_overview_kpis_drift_row(sample_project):
    k = kpis.overview_kpis(sample_project)
    assert "drift" not in k.problems
    assert set(k.drift["column"]) == {"scanner", "vendor", "split", "predicted"}
    head = kpis.drift_headline(k.drift)
    assert head["baseline"] == "2026-W01" and head["n_drifted"] == 0
    assert head["n_pairs"] == len(k.drift) == 5 * 4
    assert head["psi"] == k.drift["psi"].max()
    import workbench as wb

    items = pd.DataFrame({"item_id": ["a", "b"], "label": ["x", "y"]})
    k = kpis.overview_kpis(wb.Project.from_frames(items=items))
    assert k.drift is None and k.problems["drift"] == "the items have no 'batch' column"
    assert kpis.drift_headline(k.drift if k.drift is not None else
                               pd.DataFrame(columns=["batch", "column", "psi",
                                                     "drifted"])) is None
