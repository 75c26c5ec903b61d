"""The relabel loop for boxes without a browser: TagPanel on box-level selections, and the
RelabelQueueView (queue table, Select queue, gallery, export/import, read-only) on the
detection sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import workbench as wb
from workbench.selection import Selection
from workbench.tags import TagStore
from workbench.widgets.relabel_view import RelabelQueueView, _guess_format
from workbench.widgets.tag_panel import TagPanel

from .conftest import dom_classes

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample-detection"


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "server-side-user")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


@pytest.fixture
def project(det_sample_copy, tmp_path):
    """A fresh copy of the sample per test (imports rewrite its files)."""
    root = tmp_path / "sample-detection"
    shutil.copytree(det_sample_copy, root)
    return wb.open_project(root)


def _boxes_of(project, item):
    return project.boxes.loc[project.boxes["item_id"] == item, "box_id"].tolist()


def _upload(view, name, content):
    """What the browser sends when a file is picked in the FileUpload."""
    view.upload.set_state({"value": [{"name": name, "type": "application/json",
                                      "size": len(content), "content": memoryview(content),
                                      "last_modified": 1_700_000_000_000}]})


def test_tag_panel_tags_the_selected_boxes_with_the_reason(project):
    store = TagStore.for_project(project)
    sel = Selection()
    panel = TagPanel(project, sel, context={"view": "detection"})
    b1, b2 = _boxes_of(project, "scene-0002")[:2]
    b3 = _boxes_of(project, "scene-0007")[0]
    sel.select(["scene-0002", "scene-0007"], box_ids=[b1, b2, b3], source="DetectionIssueList",
               description="wrong class")
    assert "3 boxes on 2 images selected" in panel.status.value
    assert panel.add_button.description == "Tag 3 boxes"
    panel.tag_box.value = "relabel"
    panel.reason_box.value = "wrong class"
    panel.add_button.click()
    assert panel.error_box.value == "" and panel.last_written == 3
    tagged = store.boxes_with("relabel")
    assert sorted(zip(tagged["item_id"], tagged["box_id"], strict=True)) == sorted(
        [("scene-0002", b1), ("scene-0002", b2), ("scene-0007", b3)])
    assert set(tagged["reason"]) == {"wrong class"}
    assert set(tagged["author"]) == {"server-side-user"}
    assert store.tags(tag="relabel")["box_id"].notna().all()  # no image tag written
    assert store.items_with("relabel") == ["scene-0002", "scene-0007"]
    assert f"(box {b1})" in panel.history_html.value
    assert "Tagged 3 box(es) on 2 image(s)" in panel.status.value
    # the same boxes again: nothing new
    panel.add_button.click()
    assert panel.last_written == 0 and "already had it" in panel.status.value
    # picked images restrict the boxes to theirs
    sel.picked = ["scene-0007"]
    assert "1 selected box(es) on the 1 picked image(s)" in panel.status.value
    panel.remove_button.click()
    assert panel.last_written == 1
    assert sorted(store.boxes_with("relabel")["box_id"]) == sorted([b1, b2])
    # a detection (pred_id) can be tagged as a box in question too (a missing box)
    pred = project.predictions.loc[project.predictions["item_id"] == "scene-0003",
                                   "pred_id"].iloc[0]
    sel.select(["scene-0003"], box_ids=[pred])
    assert "1 box on 1 image selected" in panel.status.value
    panel.add_button.click()
    assert panel.error_box.value == "" and pred in set(store.boxes_with("relabel")["box_id"])
    # an item selection without boxes still tags the images
    sel.select(["scene-0004"])
    assert "1 item(s) selected" in panel.status.value
    panel.add_button.click()
    image_tags = store.tags(tag="relabel")
    assert image_tags.loc[image_tags["item_id"] == "scene-0004", "box_id"].isna().all()
    # an unknown box id: refused visibly, nothing written
    n_events = len(store.history())
    sel.select(["scene-0002"], box_ids=["scene-0002/b99"])
    panel.add_button.click()
    assert "scene-0002/b99" in panel.error_box.value
    assert len(store.history()) == n_events


def test_tag_panel_read_only_cannot_tag_boxes(project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    sel = Selection()
    panel = TagPanel(project, sel)
    assert "wb-readonly" in dom_classes(panel) and "wb-tag-add" not in dom_classes(panel)
    box = _boxes_of(project, "scene-0001")[0]
    sel.select(["scene-0001"], box_ids=[box])
    panel.tag_box.value = "relabel"
    panel.add_button.click()  # a crafted message to the hidden button
    assert panel.add_tags() is None and panel.remove_tags() is None
    assert "read-only" in panel.error_box.value
    assert TagStore.for_project(project).history().empty


def test_relabel_view_lists_images_with_boxes_and_selects_them(project):
    store = TagStore.for_project(project)
    b1, b2 = _boxes_of(project, "scene-0002")[:2]
    b3 = _boxes_of(project, "scene-0007")[0]
    store.add(["scene-0002", "scene-0002", "scene-0007"], "relabel", author="u",
              reason="loose box", box_ids=[b1, b2, b3])
    store.add(["scene-0005"], "relabel", author="u", reason="objects missing")
    sel = Selection()
    view = RelabelQueueView(project, sel)
    assert view.detection and view.error_box.value == ""
    assert {"wb-relabel-view", "wb-ready", "wb-relabel-export", "wb-gallery"} <= \
        dom_classes(view)
    assert "queued: <b>3</b>" in view.counts_html.value  # three images, four tags
    html = view.table_html.value
    assert f"{b1}, {b2}" in html and "(image)" in html
    assert "loose box" in html and "objects missing" in html and "n boxes" in html
    assert [v for _, v in view.format_picker.options] == ["labelstudio", "coco", "csv"]
    frame = view.queue.frame()
    assert frame["priority"].is_monotonic_decreasing
    view.select_button.click()
    assert sel.ids == ("scene-0002", "scene-0005", "scene-0007")
    assert sel.box_ids == tuple(sorted([b1, b2, b3]))
    assert sel.origin is view and "3 images, 3 boxes" in sel.description
    # the dashboard's gallery draws the selected images, the tagged boxes highlighted
    gallery = view.gallery
    assert sorted(gallery.ids_on_page) == ["scene-0002", "scene-0005", "scene-0007"]
    selected = {b for card in gallery.drawn for b in card["selected"]}
    assert selected == {b1, b2, b3}
    # only image tags: an image-level selection
    store.remove(["scene-0002", "scene-0002", "scene-0007"], "relabel", author="u",
                 box_ids=[b1, b2, b3])
    view.refresh()
    view.select_button.click()
    assert sel.ids == ("scene-0005",) and sel.box_ids is None


def test_relabel_view_exports_and_imports_boxes(project):
    store = TagStore.for_project(project)
    boxes = _boxes_of(project, "scene-0001")
    store.add(["scene-0001"], "relabel", author="u", reason="loose", box_ids=[boxes[0]])
    store.add(["scene-0002"], "relabel", author="u", reason="check")
    sel = Selection()
    view = RelabelQueueView(project, sel)
    view.format_picker.value = "coco"
    view.export_button.click()
    assert view.error_box.value == "", view.error_box.value
    path = Path(view.last_export)
    assert path.parent == project.root / "exports" and path.name.endswith(".coco.json")
    assert "sent: <b>2</b>" in view.counts_html.value
    assert _guess_format(path, detection=True) == "coco"
    # the vendor moves the box in question and sends the file back
    coco = json.loads(path.read_text())
    images = {img["id"]: img for img in coco["images"]}
    ann = next(a for a in coco["annotations"]
               if images[a["image_id"]].get("wb_item_id") == "scene-0001"
               and a.get("wb_box_id") == boxes[0])
    x, y, w, h = ann["bbox"]
    ann["bbox"] = [x + w / 2, y, w, h]  # IoU 1/3 with the old box
    content = json.dumps(coco).encode()
    _upload(view, "vendor-results.json", content)
    view.import_button.click()
    assert view.error_box.value == "", view.error_box.value
    report = view.report
    assert report.counts["moved"] == 1
    moved = report.diff[report.diff["outcome"] == "moved"]
    assert moved["old_box_id"].tolist() == [boxes[0]]
    assert "moved" in view.report_html.value and "(all)" in view.report_html.value
    assert "relabeled: <b>2</b>" in view.counts_html.value
    assert view.project is report.project and view.gallery.project is report.project
    new = report.project.boxes.set_index("box_id")
    assert new.loc[boxes[0], "x"] == pytest.approx(x + w / 2)
    # importing the same file again changes nothing
    _upload(view, "vendor-results.json", content)
    view.import_button.click()
    assert view.error_box.value == ""
    assert view.report.counts["moved"] == 0 and not view.report.written
    # a CSV cannot be imported into a detection project: said plainly
    _upload(view, "results.csv", b"item_id,annotator,label\n")
    view.import_button.click()
    assert "Label Studio or COCO JSON" in view.error_box.value


def test_relabel_view_read_only_on_detection(project, monkeypatch):
    box = _boxes_of(project, "scene-0001")[0]
    TagStore.for_project(project).add(["scene-0001"], "relabel", author="u", box_ids=[box])
    monkeypatch.setenv("WORKBENCH_ROLE", "viewer")
    sel = Selection()
    view = RelabelQueueView(project, sel)
    classes = dom_classes(view)
    assert "wb-readonly" in classes and "wb-relabel-export" not in classes
    assert "queued: <b>1</b>" in view.counts_html.value
    view.select_button.click()  # selecting is a view, allowed
    assert sel.box_ids == (box,)
    view.export_button.click()
    assert "read-only" in view.error_box.value
    assert view.queue.frame()["status"].tolist() == ["queued"]
    assert not (project.root / "exports").exists()


def test_guess_format_tells_coco_from_label_studio(tmp_path):
    ls = tmp_path / "ls.json"
    ls.write_text('[{"data": {"item_id": "a"}}]')
    one = tmp_path / "one.json"
    one.write_text('{"data": {"item_id": "a"}}')
    coco = tmp_path / "c.json"
    coco.write_text('{"images": [], "annotations": [], "categories": []}')
    assert _guess_format(ls, detection=True) == "labelstudio"
    assert _guess_format(one, detection=True) == "labelstudio"
    assert _guess_format(coco, detection=True) == "coco"
    assert _guess_format(tmp_path / "r.csv", detection=False) == "csv"
    with pytest.raises(ValueError, match="Label Studio or COCO"):
        _guess_format(tmp_path / "r.csv", detection=True)


def test_relabel_notebook_runs_on_the_detection_sample(project, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    repo = SAMPLE.parents[1]
    box = _boxes_of(project, "scene-0002")[0]
    TagStore.for_project(project).add(["scene-0002"], "relabel", author="u", box_ids=[box])
    nb = nbformat.read(repo / "notebooks" / "03_relabel_queue.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json\napp.select_queue()\nprint(json.dumps({'cls': type(app.queue).__name__, "
        "'ready': 'wb-ready' in app._dom_classes, 'gallery': app.gallery is not None, "
        "'boxes': list(app.selection.box_ids)}))"))
    monkeypatch.setenv("WORKBENCH_PROJECT", str(project.root))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(repo / "notebooks")}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert errors == []
    out = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    assert json.loads(out[0]["text"]) == {"cls": "DetectionRelabelQueue", "ready": True,
                                          "gallery": True, "boxes": [box]}
