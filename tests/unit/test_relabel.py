"""The relabel loop: queue, export (CSV/JSONL/Label Studio), re-import with a report."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench._io import atomic_write
from workbench.errors import ReadOnlyError, SchemaError
from workbench.project import write_project
from workbench.relabel import (
    RelabelQueue,
    export_relabel_queue,
    import_labels,
    neutralize_cell,
    queue_statuses,
    restore_cell,
)
from workbench.tags import TagStore

CLASSES = ["cat", "dog"]


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator-1")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


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
    p_cat = [0.9, 0.6, 0.2, 0.3, 0.95, 0.05, 0.5, 0.1]
    pred = pd.DataFrame({"item_id": ids, "run": "m",
                         "label": ["cat" if p >= 0.5 else "dog" for p in p_cat],
                         "prob_cat": p_cat, "prob_dog": [1 - p for p in p_cat]})
    return items, ann, pred


@pytest.fixture
def project(tmp_path):
    items, ann, pred = _frames()
    mem = wb.Project.from_frames(items=items, annotations=ann, predictions=pred,
                                 classes=CLASSES, name="pets")
    root = write_project(mem, tmp_path / "pets", format="csv")
    return wb.open_project(root)


def _ls_export(tasks_path: Path, choices: dict, *, annotator=7) -> list:
    """Turn exported tasks into a Label Studio export with one annotation per task."""
    tasks = json.loads(tasks_path.read_text())
    out = []
    for n, task in enumerate(tasks):
        item = task["data"]["item_id"]
        if item not in choices:
            continue
        out.append({"id": n + 1, "data": task["data"], "annotations": [
            {"id": 100 + n, "completed_by": annotator, "was_cancelled": False,
             "created_at": "2026-03-01T09:00:00.000000Z",
             "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                         "value": {"choices": [choices[item]]}}]},
            {"id": 200 + n, "completed_by": {"id": 9, "email": "lead@vendor.example"},
             "was_cancelled": True, "result": []},
        ]})
    return out


def test_queue_status_priority_and_budget(project):
    store = TagStore.for_project(project)
    store.add(["it1", "it2", "it6"], "relabel", author="u", reason="looks off")
    queue = RelabelQueue(project)
    frame = queue.frame()
    assert set(frame["item_id"]) == {"it1", "it2", "it6"}
    assert (frame["status"] == "queued").all()
    assert frame["priority"].is_monotonic_decreasing
    assert queue.priority_source in ("label_issues", "model_probability")
    if queue.priority_source == "model_probability":  # 1 - p(reference label)
        assert frame.set_index("item_id")["priority"].round(3).to_dict() == {
            "it1": 0.4, "it2": 0.2, "it6": 0.5}
    assert len(queue.frame(limit=2)) == 2
    assert queue.frame(limit=2)["item_id"].tolist() == frame["item_id"].head(2).tolist()
    assert frame.columns[:6].tolist() == ["item_id", "status", "priority", "label", "predicted",
                                          "confidence"]
    queue.mark(["it1"], "sent")
    assert queue.counts().set_index("status")["n_items"].to_dict() == {
        "queued": 2, "sent": 1, "relabeled": 0, "verified": 0}
    assert store.status_history(item_id="it1")["author"].tolist() == ["curator-1"]


def test_export_csv_neutralises_formulas_and_marks_sent(project, tmp_path):
    store = TagStore.for_project(project)
    store.add(["it0"], "relabel", author="=cmd|' /C calc'!A0", reason="@SUM(A1)")
    store.add(["it3"], "relabel", author="u", reason="+1 looks wrong\tbadly")
    store.add(["it4"], "relabel", author="u", reason="-2 ok")
    out = tmp_path / "batch.csv"
    assert export_relabel_queue(project, out, format="csv") == 3
    rows = list(csv.DictReader(out.open(newline="")))
    by_id = {r["item_id"]: r for r in rows}
    assert by_id["it0"]["tagged_by"] == "'=cmd|' /C calc'!A0"
    assert by_id["it0"]["reason"] == "'@SUM(A1)"
    assert by_id["it3"]["reason"].startswith("'+1")
    assert by_id["it4"]["reason"] == "'-2 ok"
    assert by_id["it3"]["filepath"] == "images/it3.png"
    st = store.statuses("relabel")
    assert set(st["status"]) == {"sent"}
    hist = store.status_history()
    assert hist["context"].iloc[0] == {"export": str(out), "format": "csv"}
    # re-export sends the same outstanding batch; statuses are not duplicated
    assert export_relabel_queue(project, out, format="csv") == 3
    assert len(store.status_history()) == 3


def test_export_jsonl_and_labelstudio(project, tmp_path):
    TagStore.for_project(project).add(["it2", "it5"], "relabel", author="u")
    lines = (tmp_path / "b.jsonl")
    assert export_relabel_queue(project, lines, format="jsonl") == 2
    recs = [json.loads(x) for x in lines.read_text().splitlines()]
    assert {r["item_id"] for r in recs} == {"it2", "it5"}
    ls = tmp_path / "tasks.json"
    assert export_relabel_queue(project, ls, limit=1) == 1
    tasks = json.loads(ls.read_text())
    assert len(tasks) == 1
    task = tasks[0]
    assert task["data"]["image"] == f"images/{task['data']['item_id']}.png"
    versions = {p["model_version"]: p["result"][0] for p in task["predictions"]}
    assert set(versions) == {"current-label", "m"}
    for res in versions.values():
        assert res["type"] == "choices" and res["from_name"] == "label"
        assert res["value"]["choices"][0] in CLASSES
    q = RelabelQueue(project)
    q.export(ls, url_prefix="https://media.example/pets/")
    tasks = json.loads(ls.read_text())
    assert tasks[0]["data"]["image"].startswith("https://media.example/pets/images/")


def test_killed_export_leaves_previous_file(tmp_path):
    target = tmp_path / "batch.json"
    target.write_text("previous")

    def half(fh):
        fh.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half)
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.json"]
    # a real SIGKILL in the middle of writing
    code = (
        "import sys, time\n"
        "from workbench._io import atomic_write\n"
        "def slow(fh):\n"
        "    fh.write('x' * 1000); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
        "atomic_write(sys.argv[1], slow)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert target.read_text() == "previous"


def test_atomic_write_modes_bytes_and_failures(tmp_path):
    import workbench.relabel

    assert workbench.relabel.atomic_write is atomic_write  # one writer, re-exported
    secret = atomic_write(tmp_path / "sub" / "token", lambda fh: fh.write(b"s3cret\n"),
                          binary=True, mode=0o600)
    assert secret.read_bytes() == b"s3cret\n" and secret.stat().st_mode & 0o777 == 0o600
    atomic_write(secret, lambda fh: fh.write(b"again"), binary=True)  # keeps the mode
    assert secret.stat().st_mode & 0o777 == 0o600
    shared = tmp_path / "shared.txt"
    shared.write_text("old")
    shared.chmod(0o644)
    atomic_write(shared, lambda fh: fh.write("ünï\r\n"))
    assert shared.read_bytes() == "ünï\r\n".encode()  # text: UTF-8, no newline translation
    assert shared.stat().st_mode & 0o777 == 0o644
    frame = pd.DataFrame({"item_id": ["-1", "007"], "x": [1.5, 2.0]})
    pq = atomic_write(tmp_path / "t.parquet", lambda fh: frame.to_parquet(fh, index=False),
                      binary=True)
    pd.testing.assert_frame_equal(pd.read_parquet(pq), frame)
    with pytest.raises(TypeError, match="'write' parameter of atomic_write"):
        atomic_write(tmp_path / "x", "text")
    with pytest.raises(TypeError, match="'mode' parameter of atomic_write"):
        atomic_write(tmp_path / "x", lambda fh: None, mode="600")
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.txt", "sub", "t.parquet"]


def test_import_labelstudio_appends_reports_and_is_idempotent(project, tmp_path):
    store = TagStore.for_project(project)
    store.add(["it1", "it3", "it6"], "relabel", author="u")
    tasks = tmp_path / "tasks.json"
    export_relabel_queue(project, tasks)
    results = tmp_path / "ls-export.json"
    results.write_text(json.dumps(_ls_export(tasks, {"it1": "cat", "it3": "dog", "it6": "dog"})))
    ann_file = project.root / "annotations.csv"
    n_before = len(project.annotations)
    report = import_labels(project, results)
    assert (report.n_rows, report.n_new, report.n_changed, report.n_duplicates) == (3, 3, 0, 0)
    assert report.written and report.backup_path.exists()
    assert len(pd.read_csv(report.backup_path)) == n_before
    reopened = report.project
    assert len(reopened.annotations) == n_before + 3
    added = reopened.annotations[reopened.annotations["annotator"] == "ls-7"]
    assert dict(zip(added["item_id"], added["label"], strict=True)) == {
        "it1": "cat", "it3": "dog", "it6": "dog"}
    assert str(added["annotated_at"].iloc[0]) == "2026-03-01 09:00:00+00:00"
    assert len(project.annotations) == n_before  # the caller's object is untouched
    # before: it1 dog/cat (no), it3 dog/dog, it6 cat/cat; after +cat, +dog, +dog: only it3
    assert (report.items_agreeing_before, report.items_agreeing_after) == (2, 1)
    ps = report.per_slice.set_index(["column", "value"])
    assert ps.loc[("(all)", "(all)"), "n_items"] == 8
    assert ps.loc[("site", "north"), "n_imported"] == 2
    assert ps.loc[("site", "south"), "n_imported"] == 1
    assert set(store.statuses("relabel")["status"]) == {"relabeled"}
    assert report.n_relabeled == 3
    # importing the same file again adds nothing and does not rewrite the file
    content = ann_file.read_bytes()
    again = import_labels(reopened, results)
    assert (again.n_new, again.n_changed, again.n_duplicates) == (0, 0, 3)
    assert not again.written and ann_file.read_bytes() == content
    assert again.n_relabeled == 0
    assert len(store.status_history()) == 6  # 3 sent + 3 relabeled


def test_import_csv_changed_labels_without_times(project, tmp_path):
    path = tmp_path / "vendor.csv"
    path.write_text("item_id,annotator,label\nit1,ann1,cat\nit0,ann1,cat\nit5,vendor-9,dog\n")
    report = import_labels(project, path, format="csv")
    kinds = dict(zip(report.labels["item_id"], report.labels["kind"], strict=True))
    assert kinds == {"it1": "changed", "it0": "duplicate", "it5": "new"}
    assert report.labels.set_index("item_id").loc["it1", "previous_label"] == "dog"
    assert (report.items_agreeing_before, report.items_agreeing_after) == (2, 3)  # it1 agrees
    latest = wb._validation.latest_annotations(report.project.annotations)
    assert latest.set_index(["item_id", "annotator"]).loc[("it1", "ann1"), "label"] == "cat"
    again = import_labels(report.project, path, format="csv")
    assert (again.n_new, again.n_changed, again.n_duplicates) == (0, 0, 3)


@pytest.mark.parametrize("body, match", [
    ("item_id,annotator,label\nit1,a,cat\nghost,a,cat\n", r"not in the project: \['ghost'\]"),
    ("item_id,annotator,label\nit1,a,bird\n", r"label\(s\) \['bird'\] are not classes"),
    ("item_id,annotator,label\nit1,,cat\n", "empty annotator"),
    ("item_id,who,label\nit1,a,cat\n", "missing the column"),
    ("item_id,annotator,label,annotated_at\nit1,a,cat,yesterday\n", "not a date/time"),
])
def test_invalid_import_writes_nothing(project, tmp_path, body, match):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    ann_file = project.root / "annotations.csv"
    before = ann_file.read_bytes()
    with pytest.raises(SchemaError, match=match):
        import_labels(project, path, format="csv")
    assert ann_file.read_bytes() == before
    assert not (project.root / ".workbench" / "backups").exists()


def test_bad_labelstudio_json(project, tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[{\"data\": {}}]")
    with pytest.raises(SchemaError, match="no data.item_id"):
        import_labels(project, path)
    path.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        import_labels(project, path)
    ok = {"completed_by": 1, "result": [{"type": "choices", "value": {"choices": ["dog"]}}]}
    for task, what in (({"data": "it1"}, "'s data is str"),
                       ({"data": {"item_id": "it1"}, "annotations": "x"}, "annotations is str"),
                       ({"data": {"item_id": "it1"}, "annotations": ["x"]}, "an annotation is"),
                       ({"data": {"item_id": "it1"}, "annotations": [{**ok, "result": "r"}]},
                        "a result list is str"),
                       ({"data": {"item_id": "it1"}, "annotations": [{**ok, "result": ["r"]}]},
                        "a result is str")):
        path.write_text(json.dumps([task]))
        with pytest.raises(SchemaError, match=f"x.json: task #0.*{what}.*nothing was imported"):
            import_labels(project, path)


def test_read_only_session_refuses_export_and_import(project, tmp_path, monkeypatch):
    store = TagStore.for_project(project)
    store.add(["it1"], "relabel", author="u")
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    with pytest.raises(ReadOnlyError, match="read-only"):
        export_relabel_queue(project, tmp_path / "b.csv", format="csv")
    path = tmp_path / "v.csv"
    path.write_text("item_id,annotator,label\nit1,v,dog\n")
    with pytest.raises(ReadOnlyError):
        import_labels(project, path, format="csv")
    assert not (tmp_path / "b.csv").exists()
    assert store.status_history().empty
    assert RelabelQueue(project).frame()["status"].tolist() == ["queued"]  # reads still work


def test_import_into_project_without_folder(tmp_path):
    items, ann, pred = _frames()
    mem = wb.Project.from_frames(items=items, annotations=ann, predictions=pred,
                                 classes=CLASSES)
    path = tmp_path / "v.csv"
    path.write_text("item_id,annotator,label,annotated_at\nit2,v,cat,2026-02-01T00:00:00Z\n")
    report = import_labels(mem, path, format="csv")
    assert report.n_new == 1 and not report.written and report.annotations_path is None
    assert len(report.project.annotations) == len(ann) + 1


def test_time_is_recorded_in_order(project, tmp_path):
    """An import without times is later than every existing label (latest wins)."""
    path = tmp_path / "v.csv"
    path.write_text("item_id,annotator,label\nit0,ann1,dog\n")
    t0 = pd.Timestamp.now(tz="UTC")
    time.sleep(0.01)
    report = import_labels(project, path, format="csv")
    rows = report.project.annotations
    new = rows[(rows["item_id"] == "it0") & (rows["annotator"] == "ann1")]
    assert len(new) == 2 and new["annotated_at"].max() > t0


def test_import_into_parquet_project_without_annotations(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["cat", "dog", "cat"],
                          "site": ["n", "n", "s"]})
    root = write_project(wb.Project.from_frames(items=items, classes=CLASSES), tmp_path / "p",
                         format="parquet")
    project = wb.open_project(root)
    TagStore.for_project(project).add(["a", "b"], "relabel", author="u")
    path = tmp_path / "r.csv"
    path.write_text("item_id,annotator,label\na,v1,dog\nb,v1,dog\n")
    report = import_labels(project, path, format="csv")
    assert report.annotations_path == root / "annotations.parquet" and report.backup_path is None
    assert report.n_new == 2 and len(report.project.annotations) == 2
    assert RelabelQueue(report.project).counts().set_index("status")["n_items"]["relabeled"] == 2


# --------------------------------------------------------------------------- slice-lift priority


@pytest.fixture(scope="module")
def sample_queue_store(sample_project, tmp_path_factory):
    """A store on a temporary SQLite file holding 12 items in scanner-b and 12 elsewhere."""
    items = sample_project.items
    inside = sorted(items.loc[items["scanner"] == "scanner-b", "item_id"])[:12]
    outside = sorted(items.loc[items["scanner"] != "scanner-b", "item_id"])[:12]
    db = tmp_path_factory.mktemp("queue") / "tags.db"
    store = TagStore(f"sqlite:///{db}", item_ids=items["item_id"])
    store.add(inside + outside, "relabel", author="u", reason="check")
    return store, inside, outside


def test_queue_slice_lift_is_the_worst_found_slice_of_each_item(sample_project,
                                                                 sample_queue_store):
    store, inside, outside = sample_queue_store
    queue = RelabelQueue(sample_project, store=store, priority="slice_lift")
    frame = queue.frame().set_index("item_id")
    # the oracle: every slice discover_slices reports, and the largest lift holding the item
    errors = sample_project.errors()
    found = wb.discover_slices(errors)
    assert (found["slice"].str.contains("scanner=scanner-b")).any()
    worst = {}
    for row in found.itertuples():
        for item in wb.slice_items(errors, row.conditions):
            worst[item] = max(worst.get(item, 1.0), float(row.lift))
    for item in inside + outside:
        assert frame.loc[item, "slice_lift"] == pytest.approx(worst.get(item, 1.0))
    assert (frame.loc[inside, "slice_lift"] > 1.0).all()
    assert frame.loc[inside, "slice"].str.contains("scanner-b").all()
    assert (frame.loc[outside, "slice"] == "").sum() == (frame.loc[outside, "slice_lift"]
                                                          == 1.0).sum()
    # ranked by lift first: every scanner-b item before every item outside a found slice
    order = queue.frame()["item_id"].tolist()
    plain = [i for i in outside if worst.get(i, 1.0) == 1.0]
    assert max(order.index(i) for i in inside) < min(order.index(i) for i in plain)


def test_queue_priority_kinds_and_switching(sample_project, sample_queue_store):
    store, inside, outside = sample_queue_store
    queue = RelabelQueue(sample_project, store=store)
    assert queue.priority == "combined"
    combined = queue.frame().set_index("item_id")
    assert queue.priority_source == "label_issues"
    quality = wb.label_issues(sample_project).set_index("item_id")["label_quality"]
    ids = inside + outside
    np.testing.assert_allclose(combined.loc[ids, "score"], 1.0 - quality.loc[ids])
    np.testing.assert_allclose(combined.loc[ids, "priority"],
                               combined.loc[ids, "score"] * combined.loc[ids, "slice_lift"])
    queue.priority = "label_issue"  # switching keeps the computed scores and slices
    by_score = queue.frame()
    np.testing.assert_allclose(by_score["priority"], by_score["score"])
    assert by_score["score"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="The 'priority' parameter of RelabelQueue must be"):
        queue.priority = "urgent"
    with pytest.raises(ValueError, match="'combined', 'label_issue', 'slice_lift'"):
        RelabelQueue(sample_project, store=store, priority="random")
    # counts need no priorities at all
    fresh = RelabelQueue(sample_project, store=store)
    assert fresh.counts().set_index("status")["n_items"]["queued"] == len(ids)
    assert fresh._scores is None and fresh._slices is None


# --------------------------------------------------------------------------- lossless round trip

#: Legal ids a spreadsheet or a careless parser would mangle: formulas, the guard itself,
#: separators, quotes, line breaks, padding, non-ASCII, missing-value words, leading zeros.
HOSTILE_IDS = ["=SUM(A1)", "+1", "-1", "@x", "\tlead", "\rcr", "a,b", 'say "hi"', "two\nlines",
               "ünï-😀", "NA", "None", "007", "'quoted", "'-1", "''=2", "pad", "pad ", " pad"]
HOSTILE_CLASSES = ["-1", "+1", "=cls", "@c", "NA", "None", "007", "a,b", "'q", "ü 😀"]
HOSTILE_REASONS = ['=HYPERLINK("http://evil.example","x")', "+1, \"quoted\"\nsecond line",
                   "-2 off", "@SUM(A1)", "\tTAB", "ünï reason 😀", "'already", "plain, ok"]


@pytest.fixture(params=["csv", "parquet"])
def hostile_project(tmp_path, request):
    n = len(HOSTILE_IDS)
    labels = [HOSTILE_CLASSES[k % len(HOSTILE_CLASSES)] for k in range(n)]
    items = pd.DataFrame({"item_id": HOSTILE_IDS, "label": labels,
                          "site": ["=north" if k % 2 else "south" for k in range(n)]})
    ann = pd.DataFrame({"item_id": HOSTILE_IDS, "annotator": "ann1", "label": labels,
                        "annotated_at": pd.Timestamp("2026-01-05T10:00:00Z")})
    pred = pd.DataFrame({"item_id": HOSTILE_IDS, "run": "m",
                         "label": [HOSTILE_CLASSES[(k + 1) % len(HOSTILE_CLASSES)]
                                   for k in range(n)]})
    mem = wb.Project.from_frames(items=items, annotations=ann, predictions=pred,
                                 classes=HOSTILE_CLASSES, name="hostile")
    project = wb.open_project(write_project(mem, tmp_path / "hostile", format=request.param))
    assert project.items["item_id"].tolist() == HOSTILE_IDS  # the project format keeps them
    store = TagStore.for_project(project)
    for k, item in enumerate(HOSTILE_IDS):
        store.add([item], "relabel", author="=cmd|' /C calc'!A0" if k % 3 == 0 else "ana",
                  reason=HOSTILE_REASONS[k % len(HOSTILE_REASONS)])
    return project


def _vendor_csv(export: Path, results: Path, annotator: str) -> None:
    """What a tool that keeps the cells does: add an annotator column, keep the rest."""
    with export.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with results.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["item_id", "annotator", "label"],
                                lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({"item_id": row["item_id"], "annotator": annotator,
                             "label": row["label"]})


def _vendor_jsonl(export: Path, results: Path, annotator: str) -> None:
    recs = [json.loads(line) for line in export.read_text(encoding="utf-8").split("\n") if line]
    results.write_text("".join(json.dumps({"item_id": r["item_id"], "annotator": annotator,
                                           "label": r["label"]}) + "\n" for r in recs),
                       encoding="utf-8")


def _vendor_labelstudio(export: Path, results: Path, annotator: str) -> None:
    tasks = json.loads(export.read_text(encoding="utf-8"))
    out = []
    for n, task in enumerate(tasks):
        current = next(p for p in task["predictions"] if p["model_version"] == "current-label")
        out.append({"id": n + 1, "data": task["data"], "annotations": [
            {"id": 100 + n, "completed_by": {"id": 7, "email": annotator},
             "was_cancelled": False, "created_at": "2026-03-01T09:00:00Z",
             "result": current["result"]}]})
    results.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("fmt, vendor", [("csv", _vendor_csv), ("jsonl", _vendor_jsonl),
                                         ("labelstudio", _vendor_labelstudio)])
def test_relabel_round_trip_is_lossless_for_hostile_ids_and_labels(hostile_project, tmp_path,
                                                                   fmt, vendor):
    project = hostile_project
    truth = dict(zip(project.items["item_id"], project.items["label"], strict=True))
    export = tmp_path / f"batch.{fmt}"
    assert export_relabel_queue(project, export, format=fmt) == len(HOSTILE_IDS)
    results = tmp_path / f"results.{fmt}"
    vendor(export, results, "vendor-7@example.com")
    n_ann = len(project.annotations)
    report = import_labels(project, results, format=fmt)
    # exactly the exported ids and labels come back: nothing unknown, nothing altered
    got = dict(zip(report.labels["item_id"], report.labels["label"], strict=True))
    assert got == truth
    assert (report.n_rows, report.n_new, report.n_changed, report.n_duplicates) == (
        len(HOSTILE_IDS), len(HOSTILE_IDS), 0, 0)
    assert report.labels["previous_label"].isna().all()  # the vendor is a new annotator
    assert report.written and report.n_relabeled == len(HOSTILE_IDS)
    ann = report.project.annotations
    assert len(ann) == n_ann + len(HOSTILE_IDS)
    added = ann[ann["annotator"] == "vendor-7@example.com"]
    assert dict(zip(added["item_id"], added["label"], strict=True)) == truth
    # the rewritten annotations file kept every other row exactly, too
    old = ann[ann["annotator"] == "ann1"]
    assert dict(zip(old["item_id"], old["label"], strict=True)) == truth
    # importing the same file again: no spurious change
    again = import_labels(report.project, results, format=fmt)
    assert (again.n_new, again.n_changed, again.n_duplicates) == (0, 0, len(HOSTILE_IDS))
    assert not again.written


def test_csv_export_guards_every_formula_cell_reversibly(hostile_project, tmp_path):
    out = tmp_path / "batch.csv"
    export_relabel_queue(hostile_project, out, format="csv")
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(HOSTILE_IDS)
    formula = ("=", "+", "-", "@", "\t", "\r")
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(formula), cell  # a spreadsheet runs none of them
    by_id = {restore_cell(r["item_id"]): r for r in rows}
    assert set(by_id) == set(HOSTILE_IDS)
    assert by_id["-1"]["item_id"] == "'-1" and by_id["'-1"]["item_id"] == "''-1"
    assert by_id["007"]["item_id"] == "007" and by_id["NA"]["item_id"] == "NA"
    tags = TagStore.for_project(hostile_project).tags(tag="relabel").set_index("item_id")
    for item, row in by_id.items():
        # free text is guarded the same way, so it reads back exactly as well
        assert restore_cell(row["reason"]) == tags.loc[item, "reason"]
        assert restore_cell(row["tagged_by"]) == tags.loc[item, "author"]
    hyper = by_id[HOSTILE_IDS[0]]["reason"]
    assert hyper == "'" + HOSTILE_REASONS[0]
    assert by_id["=SUM(A1)"]["tagged_by"] == "'=cmd|' /C calc'!A0"


@pytest.mark.parametrize("value", HOSTILE_IDS + HOSTILE_CLASSES + HOSTILE_REASONS
                         + ["", "'", "''", "'=", "a'", "=", "-"])
def test_neutralize_and_restore_cell_are_exact_inverses(value):
    guarded = neutralize_cell(value)
    assert restore_cell(guarded) == value
    assert not guarded.startswith(("=", "+", "-", "@", "\t", "\r"))
    # a cell whose guard a spreadsheet dropped reads back the same
    if not value.startswith("'"):
        assert restore_cell(value) == value


def test_csv_import_restores_guards_and_tolerates_padding_only_when_unambiguous(
        hostile_project, tmp_path):
    path = tmp_path / "v.csv"
    # '-1 (guarded), -1 (guard dropped by a spreadsheet), "pad " (an id of its own),
    # "007 " (padding typed by hand around the id 007), label "'q" verbatim
    path.write_text("item_id,annotator,label\n'-1,v,'+1\n''-1,v,'-1\n"
                    "pad ,v,NA\n 007 ,v,'q\n=SUM(A1),v,None\n", encoding="utf-8")
    report = import_labels(hostile_project, path, format="csv")
    assert report.labels[["item_id", "label"]].values.tolist() == [
        ["-1", "+1"], ["'-1", "-1"], ["pad ", "NA"], ["007", "'q"], ["=SUM(A1)", "None"]]
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,annotator,label\n'ghost,v,-1\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"not in the project: \[\"'ghost\"\]"):
        import_labels(hostile_project, bad, format="csv")


@pytest.mark.parametrize("line, match", [
    ('{"item_id": 7, "annotator": "v", "label": "-1"}', "item_id must be a JSON string"),
    ('{"item_id": "007", "annotator": "v"}', r"has no \['label'\]"),
    ('["007", "v", "-1"]', "not a JSON object"),
    ("{not json", "line 1 is not valid JSON"),
])
def test_jsonl_import_errors_name_the_line(hostile_project, tmp_path, line, match):
    path = tmp_path / "v.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=match):
        import_labels(hostile_project, path, format="jsonl")


def test_import_report_rows_and_counts_agree(project, tmp_path):
    path = tmp_path / "vendor.csv"
    path.write_text("item_id,annotator,label\nit1,ann1,cat\nit0,ann1,cat\nit5,vendor-9,dog\n"
                    "it6,vendor-9,cat\n")
    report = import_labels(project, path, format="csv")
    assert report.new["item_id"].tolist() == ["it5", "it6"]
    assert report.changed["item_id"].tolist() == ["it1"]
    assert report.duplicates["item_id"].tolist() == ["it0"]
    assert (report.n_rows, report.n_new, report.n_changed, report.n_duplicates) == (4, 2, 1, 1)
    for old in ("n_duplicate", "duplicate"):
        assert not hasattr(report, old)
    assert "2 new, 1 changed, 1 duplicate" in report.summary()


def test_queue_statuses_rule():
    t = pd.to_datetime(["2026-01-01", "2026-03-01", "2026-01-01", "2026-01-01"], utc=True)
    got = queue_statuses(["sent", "relabeled", None, "verified"], tagged_at=t,
                         status_at=pd.to_datetime(["2026-02-01", "2026-02-01", None, None],
                                                  utc=True))
    assert got.tolist() == ["sent", "queued", "queued", "verified"]
    assert queue_statuses([None, "sent"]).tolist() == ["queued", "sent"]
    with pytest.raises(ValueError, match="same length"):
        queue_statuses(["sent"], tagged_at=t, status_at=t)


def test_import_keeps_the_later_label_and_refuses_conflicting_rows(project, tmp_path):
    # ann1 labelled it0 'cat' on 2026-01-05; a vendor file dated earlier is history only
    path = tmp_path / "v.csv"
    path.write_text("item_id,annotator,label,annotated_at\nit0,ann1,dog,2026-01-01T00:00:00Z\n")
    report = import_labels(project, path, format="csv")
    assert (report.n_older, report.n_changed) == (1, 0)
    assert report.older["previous_label"].tolist() == ["cat"]
    assert "1 older (history only)" in report.summary()
    now = report.project.annotations
    latest = now[(now["item_id"] == "it0") & (now["annotator"] == "ann1")].sort_values(
        "annotated_at")
    assert latest["label"].tolist() == ["dog", "cat"]  # kept in the history, cat current
    assert import_labels(report.project, path, format="csv").n_duplicates == 1
    # one annotator, one item, one time, two labels: which one? refused, by line
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,annotator,label\nit2,v,cat\nit3,v,dog\nit2,v,dog\n")
    before = (project.root / "annotations.csv").read_bytes()
    with pytest.raises(SchemaError, match=r"bad.csv: annotator 'v' gives item 'it2' different "
                                          r"labels at the same time \(lines \[2, 4\]\)"):
        import_labels(report.project, bad, format="csv")
    assert (project.root / "annotations.csv").read_bytes() == before  # nothing written
