"""TagPanel and RelabelQueueView: widget state without a browser, and read-only refusal."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import workbench as wb
from workbench.project import write_project
from workbench.selection import Selection
from workbench.tags import TagStore
from workbench.widgets.relabel_view import RelabelQueueView
from workbench.widgets.tag_panel import TagPanel

from .conftest import dom_classes


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "server-side-user")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


@pytest.fixture
def project(tmp_path):
    ids = [f"it{k}" for k in range(6)]
    items = pd.DataFrame({"item_id": ids, "filepath": [f"images/{i}.png" for i in ids],
                          "label": ["a", "b", "a", "b", "a", "b"], "site": list("xxxyyy")})
    ann = pd.DataFrame({"item_id": ids, "annotator": "ann1",
                        "label": ["a", "b", "b", "b", "a", "a"]})
    pred = pd.DataFrame({"item_id": ids, "run": "m", "label": list("abbbab"),
                         "prob_a": [.9, .2, .3, .4, .8, .45], "prob_b": [.1, .8, .7, .6, .2, .55]})
    mem = wb.Project.from_frames(items=items, annotations=ann, predictions=pred,
                                 classes=["a", "b"], name="w")
    return wb.open_project(write_project(mem, tmp_path / "w", format="csv"))


def _upload(view, name, content):
    """What the browser sends when a file is picked in the FileUpload."""
    view.upload.set_state({"value": [{"name": name, "type": "text/csv", "size": len(content),
                                      "content": memoryview(content),
                                      "last_modified": 1_700_000_000_000}]})


def test_tag_panel_adds_and_removes_with_server_author(project):
    sel = Selection()
    panel = TagPanel(project, sel, context={"run": "m", "view": "errors"})
    assert {"wb-tag-panel", "wb-tag-add", "wb-tag-status", "wb-tag-remove"} <= dom_classes(panel)
    assert "wb-readonly" not in dom_classes(panel)
    assert "Select items" in panel.status.value
    panel.add_button.click()  # nothing selected: refused visibly, nothing written
    assert "No items selected" in panel.error_box.value
    assert panel.store.history().empty
    sel.select(["it1", "it2"], source="SliceTable", description="site = x")
    assert "2 item(s) selected" in panel.status.value
    panel.tag_box.value = "relabel"
    panel.reason_box.value = "<b>wrong</b>"
    panel.add_button.click()
    assert panel.last_written == 2 and panel.error_box.value == ""
    store = TagStore.for_project(project)
    assert panel.store is store
    hist = store.history()
    assert set(hist["author"]) == {"server-side-user"}
    assert hist["context"].iloc[0] == {"run": "m", "view": "errors", "selection": "site = x",
                                       "selection_source": "SliceTable"}
    assert "<b>wrong</b>" not in panel.history_html.value  # escaped
    assert "&lt;b&gt;wrong&lt;/b&gt;" in panel.history_html.value
    assert "relabel" in panel.counts_html.value
    assert panel.tag_box.options == ("relabel",)
    sel.select(["it2"])
    panel.remove_button.click()
    assert store.items_with("relabel") == ["it1"]
    panel.tag_box.value = "\u202eevil"
    panel.add_button.click()
    assert "bidirectional" in panel.error_box.value
    assert store.items_with("relabel") == ["it1"] and len(store.history()) == 3


def test_tag_panel_read_only_hides_controls_and_refuses(project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    sel = Selection()
    panel = TagPanel(project, sel)
    classes = dom_classes(panel)
    assert "wb-readonly" in classes
    assert "wb-tag-add" not in classes and "wb-tag-remove" not in classes
    # a crafted message to the hidden button still reaches the kernel: it must refuse
    sel.select(["it1"])
    panel.tag_box.value = "relabel"
    panel.add_button.click()
    panel.remove_button.click()
    assert panel.add_tags() is None
    assert "read-only" in panel.error_box.value
    assert TagStore.for_project(project).history().empty


def test_relabel_view_export_import_and_report(project, tmp_path):
    store = TagStore.for_project(project)
    store.add(["it2", "it5"], "relabel", author="u", reason="model disagrees")
    sel = Selection()
    view = RelabelQueueView(project, sel)
    assert {"wb-relabel-view", "wb-ready", "wb-relabel-export", "wb-relabel-upload"} <= \
        dom_classes(view)
    assert "queued: <b>2</b>" in view.counts_html.value
    view.select_button.click()
    assert sel.ids == ("it2", "it5")
    view.format_picker.value = "csv"
    view.export_button.click()
    assert view.error_box.value == ""
    out = view.last_export
    assert out.startswith(str(project.root / "exports")) and out.endswith(".csv")
    assert "sent: <b>2</b>" in view.counts_html.value
    assert "Exported 2 item(s)" in view.status.value
    view.format_picker.value = "labelstudio"
    view.limit_box.value = 1
    path = view.export()
    tasks = json.loads(path.read_text())
    assert len(tasks) == 1
    # the vendor returns labels for both items: uploaded as a CSV
    content = b"item_id,annotator,label\nit2,vendor-1,a\nit5,vendor-1,b\n"
    _upload(view, "../../results.csv", content)
    view.import_button.click()
    assert view.error_box.value == "", view.error_box.value
    assert view.report.n_new == 2
    assert "relabeled: <b>2</b>" in view.counts_html.value
    assert "2 new" in view.report_html.value and "site" in view.report_html.value
    saved = list((project.root / "imports").iterdir())
    assert len(saved) == 1 and saved[0].name.endswith("results.csv")
    assert len(view.project.annotations) == len(project.annotations) + 2
    sel.select(["it2", "it4"])
    view.verify_button.click()
    assert "verified: <b>1</b>" in view.counts_html.value
    assert store.statuses("relabel").set_index("item_id")["status"].to_dict() == {
        "it2": "verified", "it5": "relabeled"}
    assert store.status_history(item_id="it2")["status"].tolist() == [
        "sent", "relabeled", "verified"]


def test_relabel_view_read_only(project, monkeypatch):
    TagStore.for_project(project).add(["it1"], "relabel", author="u")
    monkeypatch.setenv("WORKBENCH_ROLE", "viewer")
    view = RelabelQueueView(project)
    classes = dom_classes(view)
    assert "wb-readonly" in classes and "wb-relabel-export" not in classes
    assert "wb-ready" in classes and "queued: <b>1</b>" in view.counts_html.value
    view.export_button.click()
    content = b"item_id,annotator,label\nit1,v,a\n"
    _upload(view, "r.csv", content)
    view.import_button.click()
    assert "read-only" in view.error_box.value
    assert not (project.root / "exports").exists() and not (project.root / "imports").exists()
    assert TagStore.for_project(project).status_history().empty


def test_widgets_on_a_project_without_folder():
    items = pd.DataFrame({"item_id": ["p", "q"], "label": ["a", "b"]})
    project = wb.Project.from_frames(items=items)
    panel = TagPanel(project)
    assert "memory only" in panel.children[0].value
    view = RelabelQueueView(project, panel.selection)
    panel.selection.select(["p"])
    panel.tag_box.value = "relabel"
    panel.add_tags()
    view.refresh()
    assert "queued: <b>1</b>" in view.counts_html.value
    view.export_button.click()
    assert "no folder" in view.error_box.value


def test_queue_view_rank_picker_reorders_the_table_read_only_too(sample_project, tmp_path,
                                                                 monkeypatch):
    items = sample_project.items
    inside = sorted(items.loc[items["scanner"] == "scanner-b", "item_id"])[:5]
    outside = sorted(items.loc[items["scanner"] == "scanner-a", "item_id"])[:5]
    store = TagStore(f"sqlite:///{tmp_path / 'tags.db'}", item_ids=items["item_id"])
    store.add(inside + outside, "relabel", author="u")
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")  # ranking is a view, not a write
    view = RelabelQueueView(sample_project, store=store, rows=20)
    assert view.read_only and view.rank_picker.value == "combined"

    def listed():
        return [i for i in view._frame["item_id"]]

    view.rank_picker.value = "slice_lift"
    assert view.error_box.value == ""
    by_lift = listed()
    assert set(by_lift[:5]) == set(inside), by_lift
    assert "scanner=scanner-b" in view.table_html.value
    view.rank_picker.value = "label_issue"
    assert view._frame["priority"].tolist() == sorted(view._frame["score"], reverse=True)
    assert view.queue.priority == "label_issue"
