"""Versioned label releases: release_labels, decide, label_diff, trace, export, open at n."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import ReadOnlyError, SchemaError
from workbench.project import write_project
from workbench.relabel import RelabelQueue, export_relabel_queue, import_labels
from workbench.releases import (
    ReleaseError,
    export_release,
    label_diff,
    list_releases,
    read_release_export,
    trace,
)
from workbench.tags import TagStore

CLASSES = ["cat", "dog"]


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator-1")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


def _store(project):
    return TagStore.for_project(project)


def _frames():
    ids = [f"it{k}" for k in range(8)]
    items = pd.DataFrame({
        "item_id": ids,
        "filepath": [f"images/{i}.png" for i in ids],
        "label": ["cat", "dog"] * 4,
        "site": ["north"] * 4 + ["south"] * 4,
    })
    ann = pd.DataFrame({
        "item_id": [i for i in ids for _ in range(2)],
        "annotator": ["ann1", "ann2"] * 8,
        "label": ["cat", "cat", "dog", "cat", "cat", "cat", "dog", "dog",
                  "cat", "dog", "dog", "dog", "cat", "cat", "dog", "dog"],
        "annotated_at": pd.Timestamp("2026-01-05T10:00:00Z"),
    })
    return items, ann


@pytest.fixture
def project(tmp_path):
    items, ann = _frames()
    mem = wb.Project.from_frames(items=items, annotations=ann, classes=CLASSES, name="pets")
    root = write_project(mem, tmp_path / "pets", format="csv")
    return wb.open_project(root)


def _relabel_round(project, tmp_path, vendor: dict, verify: list[str]):
    """Tag, export, import two vendor annotators' labels, verify some; return the project."""
    store = _store(project)
    store.add(sorted(vendor), "relabel", author="curator-1", reason="suspicious")
    export_relabel_queue(project, tmp_path / "batch.csv", format="csv")
    path = tmp_path / "vendor-batch-1.csv"
    lines = ["item_id,annotator,label"]
    for item, labels in vendor.items():
        lines += [f"{item},vendor-{k},{lab}" for k, lab in enumerate(labels)]
    path.write_text("\n".join(lines) + "\n")
    report = import_labels(project, path, format="csv")
    RelabelQueue(report.project, store=store).mark(verify, "verified", author="lead")
    return report.project


def test_release_changes_exactly_the_verified_items_and_the_diff_matches(project, tmp_path):
    items_file = (project.root / "items.csv").read_bytes()
    vendor = {"it1": ["cat", "cat"], "it3": ["cat", "cat"], "it6": ["dog", "dog"],
              "it0": ["cat", "cat"]}  # it0 already cat: verified but unchanged
    fresh = _relabel_round(project, tmp_path, vendor, verify=["it1", "it3", "it0"])
    release = fresh.release_labels("round 1", author="lead")
    assert release.number == 1 and release.manifest["parent"] == 0
    manifest = json.loads((release.path / "manifest.json").read_text())
    assert manifest["number"] == 1 and manifest["author"] == "lead"
    assert manifest["message"] == "round 1" and pd.Timestamp(manifest["created_at"]).tzinfo
    assert sorted(release.changes["item_id"]) == ["it1", "it3"]  # it6 only relabeled
    assert release.manifest["items_changed"] == ["it1", "it3"]
    assert release.manifest["counts_changed"] == {
        "cat": {"left": 0, "joined": 2, "net": 2}, "dog": {"left": 2, "joined": 0, "net": -2}}
    folder = project.root / ".workbench" / "releases" / "1"
    import hashlib
    assert hashlib.sha256((folder / "labels.parquet").read_bytes()).hexdigest() == \
        release.sha256 == json.loads((folder / "manifest.json").read_text())["sha256"]
    assert (project.root / "items.csv").read_bytes() == items_file  # never overwritten
    table = pd.read_parquet(folder / "labels.parquet")
    expected = fresh.items.set_index("item_id")["label"].copy()
    expected[["it1", "it3"]] = "cat"
    assert table.set_index("item_id")["label"].to_dict() == expected.to_dict()
    row = release.changes.set_index("item_id").loc["it1"]
    assert (row["old_label"], row["new_label"], row["source"]) == ("dog", "cat", "verified")
    assert row["annotators"] == "vendor-0, vendor-1"
    assert row["import_files"] == "vendor-batch-1.csv"

    diff = label_diff(fresh, 0, 1)
    assert diff.items[["item_id", "old_label", "new_label"]].values.tolist() == [
        ["it1", "dog", "cat"], ["it3", "dog", "cat"]]
    assert diff.items["release"].tolist() == [1, 1]
    assert diff.items["import_files"].tolist() == ["vendor-batch-1.csv"] * 2
    bc = diff.by_class.set_index("class")
    assert bc.loc["cat", ["n_before", "n_after", "change", "n_joined"]].tolist() == [4, 6, 2, 2]
    assert bc.loc["dog", ["n_before", "n_after", "change", "n_left"]].tolist() == [4, 2, -2, 2]
    sl = diff.by_slice.set_index(["column", "value"])
    assert sl.loc[("site", "north"), ["n_items", "n_changed"]].tolist() == [4, 2]
    assert sl.loc[("site", "south"), "n_changed"] == 0
    back = label_diff(fresh, 1, None)
    assert back.items[["old_label", "new_label"]].values.tolist() == [["cat", "dog"]] * 2
    assert label_diff(fresh, 1, 1).n_changed == 0

    # a second release with nothing new: refused, nothing written
    with pytest.raises(ReleaseError, match="already carry their labels in release 1"):
        fresh.release_labels("again", author="lead")
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.isdigit()) == ["1"]
    # accept='relabeled' takes it6 too, on top of release 1
    second = fresh.release_labels("take relabeled", author="lead", accept="relabeled")
    assert second.number == 2 and second.manifest["parent"] == 1
    assert second.changes["item_id"].tolist() == ["it6"]
    assert label_diff(fresh, 0, 2).items["item_id"].tolist() == ["it1", "it3", "it6"]
    releases = list_releases(fresh)
    assert releases["release"].tolist() == [1, 2]
    assert releases["n_changed"].tolist() == [2, 1]


def test_decisions_override_the_verified_consensus(project, tmp_path):
    vendor = {"it1": ["cat", "cat"], "it3": ["cat", "dog"]}  # it3: a tie
    fresh = _relabel_round(project, tmp_path, vendor, verify=["it1", "it3"])
    _store(fresh)
    with pytest.warns(UserWarning, match=r"1 item\(s\) verified .* 'it3'"):
        first = fresh.release_labels("round 1", author="lead")
    assert first.changes["item_id"].tolist() == ["it1"]
    assert first.manifest["unresolved"] == ["it3"]
    fresh.decide("it1", "dog", author="lead", reason="vendor misread the ears")
    fresh.decide("it3", "cat", author="lead", reason="tie broken")
    fresh.decide("it5", "cat", author="lead")  # not in the queue at all
    second = fresh.release_labels("decisions", author="lead")
    ch = second.changes.set_index("item_id")
    assert ch["new_label"].to_dict() == {"it1": "dog", "it3": "cat", "it5": "cat"}
    assert ch.loc["it1", "old_label"] == "cat"  # on top of release 1
    assert set(ch["source"]) == {"decision"}
    assert ch.loc["it1", "decision_reason"] == "vendor misread the ears"
    assert ch.loc["it1", "annotators"] == "vendor-0, vendor-1"
    with pytest.raises(SchemaError, match=r"label 'bird' is not a class"):
        fresh.decide("it1", "bird", author="lead")
    with pytest.raises(SchemaError, match=r"label 'Cat' is not a class.*Did you mean 'cat'"):
        fresh.decide("it1", "Cat", author="lead")
    with pytest.raises(SchemaError, match="item 'ghost' is not in the project"):
        fresh.decide("ghost", "cat", author="lead")


def test_read_only_session_cannot_decide_or_release(project, tmp_path, monkeypatch):
    _store(project)
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    with pytest.raises(ReadOnlyError, match="decide labels"):
        project.decide("it1", "cat", author="m")
    with pytest.raises(ReadOnlyError, match="release labels"):
        project.release_labels("x", author="m")
    assert not (project.root / ".workbench" / "releases").exists()


def test_nothing_verified_or_decided_is_a_clear_error(project, tmp_path):
    _store(project).add(["it1"], "relabel", author="c")
    with pytest.raises(ReleaseError, match="Nothing to release: no item is verified in the "
                                           "'relabel' queue and no label was decided"):
        project.release_labels("empty", author="lead")
    with pytest.raises(ReleaseError, match="Nothing to release: no label was decided"):
        project.release_labels("empty", author="lead", accept="decided")
    assert not list((project.root / ".workbench" / "releases").glob("[0-9]*"))
    with pytest.raises(ValueError, match="'accept' parameter of release_labels"):
        project.release_labels("x", author="lead", accept="everything")
    with pytest.raises(ValueError, match="'message' parameter of release_labels"):
        project.release_labels("  ", author="lead")
    mem = wb.Project.from_frames(items=_frames()[0], classes=CLASSES)
    with pytest.raises(ValueError, match="needs a project opened from a folder"):
        mem.release_labels("x", author="lead")


def test_an_item_marked_verified_without_being_queued_keeps_its_label(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "cat"]})
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["x", "y", "x", "y"],
                        "label": ["dog", "dog", "cat", "cat"],
                        "annotated_at": pd.Timestamp("2026-01-05", tz="UTC")})
    project = wb.open_project(wb.write_project(wb.Project.from_frames(
        items=items, annotations=ann, classes=["cat", "dog"], name="n"), tmp_path / "p"))
    RelabelQueue(project, store=_store(project)).mark(["a"], "verified")  # never tagged
    # its old annotations are no relabelling: unresolved, nothing to release
    with pytest.warns(UserWarning, match="1 item\\(s\\) verified in the 'relabel' queue have "
                                         "no label imported after they were queued"), \
            pytest.raises(ReleaseError, match="1 of them unresolved"):
        project.release_labels("r", author="lead")


def _release_in_child(root, barrier, queue):
    os.environ["WORKBENCH_USER"] = "child"
    project = wb.open_project(root)
    TagStore.for_project(project).decisions.add(["it1"], ["cat"], author="child")
    barrier.wait()
    try:
        rel = project.release_labels(f"from {os.getpid()}", author=f"curator-{os.getpid()}")
        queue.put(("ok", rel.number))
    except ReleaseError as exc:
        queue.put(("lost", str(exc)))


def test_two_curators_releasing_at_once_one_wins(project, tmp_path):
    _relabel_round(project, tmp_path, {"it1": ["cat", "cat"]}, verify=["it1"])
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_release_in_child, args=(project.root, barrier, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert [r[0] for r in results] == ["lost", "ok"]
    assert results[1][1] == 1
    assert "Release 1 was written by 'curator-" in results[0][1]
    assert "nothing was written" in results[0][1]
    folder = project.root / ".workbench" / "releases"
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == ["1"]
    assert not list(folder.glob(".tmp-*"))


def test_damaged_release_refuses_to_open(project, tmp_path):
    fresh = _relabel_round(project, tmp_path, {"it1": ["cat", "cat"]}, verify=["it1"])
    fresh.release_labels("round 1", author="lead")
    table = project.root / ".workbench" / "releases" / "1" / "labels.parquet"
    frame = pd.read_parquet(table)
    frame.loc[0, "label"] = "dog"
    frame.to_parquet(table, index=False)
    with pytest.raises(ReleaseError, match=r"Release 1 refuses to open: the SHA-256 of .*"
                                           r"labels.parquet is [0-9a-f]{64}, but its manifest "
                                           r"records [0-9a-f]{64}"):
        wb.open_project(project.root, release=1)
    with pytest.raises(ReleaseError, match="refuses to open"):
        label_diff(fresh, 0, 1)
    with pytest.raises(ReleaseError, match="refuses to open"):
        export_release(fresh, tmp_path / "out.parquet")


def test_open_project_at_a_release_and_unknown_releases(project, tmp_path):
    fresh = _relabel_round(project, tmp_path, {"it1": ["cat", "cat"], "it3": ["cat", "cat"]},
                           verify=["it1"])
    fresh.release_labels("round 1", author="lead")
    at1 = wb.open_project(project.root, release=1)
    assert at1.release == 1
    assert at1.items.set_index("item_id").loc["it1", "label"] == "cat"
    assert at1.reference_labels()["it3"] == "dog"
    assert at1.reload().release == 1
    # the diff from a project opened at a release still starts from the dataset's labels
    assert label_diff(at1, 0, 1).items["item_id"].tolist() == ["it1"]
    plain = wb.open_project(project.root)
    assert plain.items.set_index("item_id").loc["it1", "label"] == "dog"
    assert plain.release is None
    with pytest.raises(ValueError, match=r"release 7, which does not exist: the existing "
                                         r"releases are \[1\]"):
        wb.open_project(project.root, release=7)
    with pytest.raises(ValueError, match=r"'b' parameter of label_diff names release 3"):
        label_diff(fresh, 1, 3)
    with pytest.raises(TypeError, match="'a' parameter of label_diff must be an int"):
        label_diff(fresh, "1", 1)
    with pytest.raises(ValueError, match="has no release yet"):
        export_release(wb.open_project(write_project(fresh, tmp_path / "copy")),
                       tmp_path / "x.parquet")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "coco"])
def test_export_formats_read_back_losslessly(tmp_path, fmt):
    ids = ["=cmd|' /C calc'!A0", "+1", "it,2", "it\"3", "plain", "-4", "ünï"]
    items = pd.DataFrame({"item_id": ids, "label": ["@a", "b", None, "@a", "b", "b", None],
                          "filepath": [f"img/{k}.png" for k in range(7)]})
    mem = wb.Project.from_frames(items=items, classes=["@a", "b"], name="hostile")
    root = write_project(mem, tmp_path / "hostile", format="csv")
    project = wb.open_project(root)
    _store(project).decisions.add(["plain", "it,2"], ["@a", "b"], author="lead")
    release = project.release_labels("hostile", author="lead", accept="decided")
    assert release.n_changed == 2
    out = export_release(project, tmp_path / f"labels.{fmt}", format=fmt)
    back = read_release_export(out, format=fmt)
    expected = pd.read_parquet(release.path / "labels.parquet")
    assert back["item_id"].tolist() == expected["item_id"].tolist()
    assert back["label"].isna().tolist() == expected["label"].isna().tolist()
    assert back["label"].dropna().tolist() == expected["label"].dropna().tolist()
    if fmt == "csv":
        assert "'=cmd" in out.read_text()
    if fmt == "coco":
        doc = json.loads(out.read_text())
        assert [c["name"] for c in doc["categories"]] == ["@a", "b"]
        assert len(doc["annotations"]) == 6 and doc["info"]["release"] == 1
        assert doc["images"][0]["file_name"] == "img/0.png"
    orig = read_release_export(export_release(project, tmp_path / f"o.{fmt}", release=0,
                                              format=fmt), format=fmt)
    assert orig["label"].isna().sum() == 2


def test_trace_tells_the_whole_story(project, tmp_path):
    fresh = _relabel_round(project, tmp_path, {"it1": ["cat", "cat"]}, verify=["it1"])
    fresh.release_labels("round 1", author="lead")
    _store(fresh)
    fresh.decide("it1", "dog", author="boss", reason="actually a dog")
    fresh.release_labels("round 2", author="boss")
    story = trace(fresh, "it1")
    events = story["event"].tolist()
    assert events[:2] == ["annotation", "annotation"]  # the original labels, oldest
    assert events[2:] == ["tag added", "status", "annotation", "annotation", "status",
                          "status", "release", "decision", "release"]
    assert story["time"].is_monotonic_increasing
    st = story[story["event"] == "status"]["detail"].tolist()
    assert st == ["sent", "relabeled", "verified"]
    imported = story[(story["event"] == "annotation") & story["author"].str.startswith("vendor")]
    assert imported["source"].tolist() == ["vendor-batch-1.csv"] * 2
    rel = story[story["event"] == "release"]
    assert rel["source"].tolist() == ["release 1", "release 2"]
    assert rel["detail"].tolist()[0].startswith("dog -> cat (verified): round 1")
    assert rel["detail"].tolist()[1].startswith("cat -> dog (decision): round 2")
    assert story[story["event"] == "decision"]["detail"].tolist() == ["actually a dog"]
    with pytest.raises(SchemaError, match="item 'nope' is not in the project"):
        trace(fresh, "nope")


def _release_then_add_an_item(project, tmp_path) -> None:
    """Release 1 (it1 relabelled cat), then an item 'new' (dog) added to items.csv."""
    fresh = _relabel_round(project, tmp_path, {"it1": ["cat", "cat"]}, verify=["it1"])
    fresh.release_labels("round 1", author="lead")
    items = pd.concat([fresh.items, pd.DataFrame({"item_id": ["new"],
                                                  "filepath": ["images/n.png"],
                                                  "label": ["dog"], "site": ["north"]})],
                      ignore_index=True)
    items.to_csv(project.root / "items.csv", index=False)


def test_items_added_after_a_release_keep_their_own_label(project, tmp_path):
    _release_then_add_an_item(project, tmp_path)
    at1 = wb.open_project(project.root, release=1)
    lab = at1.items.set_index("item_id")["label"]
    assert (lab["new"], lab["it1"]) == ("dog", "cat")
    diff = label_diff(at1, 0, 1)
    assert diff.items["item_id"].tolist() == ["it1"]
    assert np.isfinite(diff.by_slice["share_changed"]).all()


def test_sample_relabel_round_with_vendor_times_changes_exactly_the_verified_items(
        sample_root, tmp_path):
    """On the sample: Label Studio results stamped by the vendor before the tag (their own
    clock) still count as re-imported (read from the import's backup of the annotations)."""
    import shutil

    root = tmp_path / "sample"
    shutil.copytree(sample_root, root, ignore=shutil.ignore_patterns("images"))
    project = wb.open_project(root)
    store = _store(project)
    truth = pd.read_csv(root / "truth.csv", dtype=str).set_index("item_id")
    wrong = truth.index[truth["is_label_error"] == "True"][:12].tolist()
    assert len(wrong) == 12
    store.add(wrong, "relabel", author="curator-1", reason="label issue")
    tasks = tmp_path / "tasks.json"
    export_relabel_queue(project, tasks)
    results = []
    for n, task in enumerate(json.loads(tasks.read_text())):
        item = task["data"]["item_id"]
        results.append({"id": n + 1, "data": task["data"], "annotations": [
            {"id": 10 * n + k, "completed_by": 40 + k, "was_cancelled": False,
             "created_at": "2026-03-01T09:00:00.000000Z",  # before the tag: vendor's clock
             "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                         "value": {"choices": [truth.loc[item, "true_label"]]}}]}
            for k in range(2)]})
    path = tmp_path / "vendor-ls.json"
    path.write_text(json.dumps(results))
    fresh = import_labels(project, path).project
    verified = wrong[:8]
    RelabelQueue(fresh, store=store).mark(verified, "verified", author="lead")
    release = fresh.release_labels("sample round", author="lead")
    changed = sorted(release.changes["item_id"])
    assert changed == sorted(verified)
    diff = label_diff(fresh, 0, 1)
    assert sorted(diff.items["item_id"]) == changed
    assert (diff.items.set_index("item_id")["new_label"]
            == truth.loc[diff.items["item_id"], "true_label"].to_numpy()).all()
    assert set(diff.items["import_files"]) == {"vendor-ls.json"}
    assert set(diff.items["annotators"]) == {"ls-40, ls-41"}
    assert diff.by_class["change"].sum() == 0
    assert diff.by_class["n_left"].sum() == diff.by_class["n_joined"].sum() == 8
    by_vendor = diff.by_slice[diff.by_slice["column"] == "vendor"]
    assert by_vendor["n_changed"].sum() == 8
    story = trace(fresh, verified[0])
    vendor_rows = story[(story["event"] == "annotation")
                        & story["author"].str.startswith("ls-")]
    assert vendor_rows["source"].tolist() == ["vendor-ls.json"] * 2
    assert vendor_rows["detail"].str.contains("imported at").all()
    original = story[(story["event"] == "annotation") & ~story["author"].str.startswith("ls-")]
    assert len(original) >= 2 and original["source"].isna().all()
    at1 = wb.open_project(root, release=1)
    assert (at1.items.set_index("item_id").loc[verified, "label"]
            == truth.loc[verified, "true_label"]).all()


def test_diff_is_symmetric_and_a_renamed_class_still_exports(project, tmp_path):
    _release_then_add_an_item(project, tmp_path)
    now = wb.open_project(project.root)
    forth, back = label_diff(now, 1, 0), label_diff(now, 0, 1)
    assert forth.items["item_id"].tolist() == back.items["item_id"].tolist() == ["it1"]
    assert (forth.by_class["n_before"].tolist() == back.by_class["n_after"].tolist())
    # a class renamed in workbench.toml after the release: its labels still export and count
    toml = project.root / "workbench.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('"dog"', '"hound"'),
                    encoding="utf-8")
    for table in ("items.csv", "annotations.csv"):
        frame = pd.read_csv(project.root / table, dtype=str)
        frame.assign(label=frame["label"].replace({"dog": "hound"})).to_csv(
            project.root / table, index=False)
    renamed = wb.open_project(project.root)
    doc = json.loads(wb.export_release(renamed, tmp_path / "r.json", release=1,
                                       format="coco").read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert sorted(names.values()) == ["cat", "dog", "hound"]
    assert sum(names[a["category_id"]] == "dog" for a in doc["annotations"]) == 3  # it1: cat
    by_class = label_diff(renamed, 1, 0).by_class.set_index("class")
    assert by_class.loc["dog", "n_before"] == 3 and by_class.loc["hound", "n_after"] == 4
    assert by_class["n_before"].sum() == by_class["n_after"].sum() == 8
