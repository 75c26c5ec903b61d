"""ReleasePanel: releases list, dry-run preview, Release labels and Decide, without a browser."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import workbench as wb
from workbench.errors import ReadOnlyError
from workbench.project import write_project
from workbench.relabel import RelabelQueue, export_relabel_queue, import_labels
from workbench.releases import list_releases, preview_release, read_release
from workbench.selection import Selection
from workbench.tags import TagStore
from workbench.widgets.release_panel import ReleasePanel, class_changes

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator-1")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    monkeypatch.delenv("WORKBENCH_USER_HEADER", raising=False)


def _make(tmp_path, name="pets"):
    ids = [f"it{k}" for k in range(8)]
    items = pd.DataFrame({"item_id": ids, "label": ["cat", "dog"] * 4,
                          "site": ["north"] * 4 + ["south"] * 4})
    ann = pd.DataFrame({
        "item_id": [i for i in ids for _ in range(2)], "annotator": ["ann1", "ann2"] * 8,
        "label": ["cat", "cat", "dog", "cat", "cat", "cat", "dog", "dog",
                  "cat", "dog", "dog", "dog", "cat", "cat", "dog", "dog"],
        "annotated_at": pd.Timestamp("2026-01-05T10:00:00Z")})
    mem = wb.Project.from_frames(items=items, annotations=ann, classes=["cat", "dog"],
                                 name=name)
    return wb.open_project(write_project(mem, tmp_path / name, format="csv"))


def _relabel_round(project, tmp_path, vendor: dict, verify: list[str]):
    """Tag, export, import two vendor labels per item, verify some; return the project."""
    store = TagStore.for_project(project)
    store.add(sorted(vendor), "relabel", author="curator-1", reason="suspicious")
    export_relabel_queue(project, tmp_path / "batch.csv", format="csv")
    path = tmp_path / "vendor.csv"
    lines = ["item_id,annotator,label"]
    for item, labels in vendor.items():
        lines += [f"{item},vendor-{k},{lab}" for k, lab in enumerate(labels)]
    path.write_text("\n".join(lines) + "\n")
    report = import_labels(project, path, format="csv")
    RelabelQueue(report.project, store=store).mark(verify, "verified", author="lead")
    return report.project


VENDOR = {"it1": ["cat", "cat"], "it3": ["cat", "cat"], "it6": ["dog", "dog"],
          "it0": ["cat", "cat"]}


def _releases_dir(project):
    return project.root / ".workbench" / "releases"


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _classes(widget):
    return {c for x in _walk(widget) for c in getattr(x, "_dom_classes", ())}


def test_release_through_the_panel_writes_what_release_labels_would(tmp_path):
    # the same round on two copies: one released by the API, one through the panel
    by_api = _relabel_round(_make(tmp_path / "a"), tmp_path / "a", VENDOR,
                            verify=["it1", "it3", "it0"])
    by_panel = _relabel_round(_make(tmp_path / "b"), tmp_path / "b", VENDOR,
                              verify=["it1", "it3", "it0"])
    expected = by_api.release_labels("round 1", author="curator-1")

    panel = ReleasePanel(by_panel)
    assert "wb-ready" in panel._dom_classes and "No release yet" in panel.releases_html.value
    # the preview is a dry run: exactly the changes the release records, nothing written
    assert panel.preview["item_id"].tolist() == ["it1", "it3"]
    assert "would change 2 label(s)" in panel.preview_html.value
    assert "cat +2, dog -2" in panel.preview_html.value
    assert not _releases_dir(by_panel).exists()
    pd.testing.assert_frame_equal(panel.preview.reset_index(drop=True),
                                  expected.changes.reset_index(drop=True), check_like=True)

    panel.message_box.value = "round 1"
    panel.release_button.click()
    assert panel.error_box.value == ""
    assert panel.last_release == 1
    labels, manifest = read_release(by_panel, 1)
    api_labels, api_manifest = read_release(by_api, 1)
    pd.testing.assert_frame_equal(labels, api_labels)
    assert manifest["sha256"] == api_manifest["sha256"]
    for key in ("number", "parent", "author", "message", "n_changed", "counts_changed",
                "items_changed", "sources", "unresolved"):
        assert manifest[key] == api_manifest[key], key
    assert manifest["author"] == "curator-1"
    assert "Release 1 written: 2 label(s) changed" in panel.status.value
    assert "wb-releases-table" in panel.releases_html.value
    assert "round 1" in panel.releases_html.value
    assert panel.preview.empty and "nothing to release against release 1" in \
        panel.preview_html.value
    assert panel.message_box.value == ""


def test_nothing_verified_shows_the_error_and_writes_nothing(tmp_path):
    project = _make(tmp_path)
    panel = ReleasePanel(project)
    assert panel.preview.empty and "nothing to release" in panel.preview_html.value
    panel.message_box.value = "empty"
    panel.release_button.click()
    assert "Nothing to release" in panel.error_box.value
    assert panel.error_box.layout.display is None  # shown
    assert panel.last_release == 0
    assert not _releases_dir(project).exists() or not any(_releases_dir(project).iterdir())
    # an empty message is refused before anything is read or written
    panel.message_box.value = "  "
    panel.release_button.click()
    assert "Write a message" in panel.error_box.value


def test_a_lost_race_is_shown_and_leaves_the_winner_intact(tmp_path, monkeypatch):
    import workbench.releases as releases

    project = _relabel_round(_make(tmp_path), tmp_path, VENDOR, verify=["it1"])
    panel = ReleasePanel(project)
    real = releases._outcomes
    raced = []

    def racing(*args, **kwargs):  # another curator releases while this one prepares
        if not raced:
            raced.append(True)
            project.release_labels("the other curator", author="other")
        return real(*args, **kwargs)

    monkeypatch.setattr(releases, "_outcomes", racing)
    panel.message_box.value = "mine"
    panel.release_button.click()
    assert "Release 1 was written by &#x27;other&#x27;" in panel.error_box.value
    assert "nothing was written" in panel.error_box.value
    assert panel.last_release == 0
    assert list_releases(project)["release"].tolist() == [1]
    assert read_release(project, 1)[1]["author"] == "other"  # hash checked on read
    assert not [p for p in _releases_dir(project).iterdir() if p.name.startswith(".tmp")]


def test_read_only_session_refuses_and_writes_nothing(tmp_path, monkeypatch):
    project = _relabel_round(_make(tmp_path), tmp_path, VENDOR, verify=["it1", "it3"])
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    sel = Selection()
    panel = ReleasePanel(project, sel)
    classes = _classes(panel)
    assert "wb-readonly" in classes
    assert "wb-release-button" not in classes and "wb-decide-button" not in classes
    assert len(panel.preview) == 2  # the preview is a read
    # crafted messages to the hidden buttons still reach the kernel: they must refuse
    panel.message_box.value = "sneaky"
    panel.release_button.click()
    assert "read-only" in panel.error_box.value
    sel.select(["it2"])
    panel.class_picker.value = "cat"
    panel.decide_button.click()
    assert "read-only" in panel.error_box.value
    panel.raise_errors = True
    with pytest.raises(ReadOnlyError):
        panel.release()
    with pytest.raises(ReadOnlyError):
        panel.decide()
    assert not _releases_dir(project).exists()
    assert TagStore.for_project(project).decisions.frame().empty


def test_decide_writes_decisions_for_the_selected_items(tmp_path):
    project = _make(tmp_path)
    sel = Selection()
    panel = ReleasePanel(project, sel)
    panel.decide_button.click()
    assert "Select the items" in panel.error_box.value
    sel.select(["it2", "it3"])
    panel.class_picker.value = "dog"
    panel.reason_box.value = "ears"
    panel.decide_button.click()
    assert panel.error_box.value == ""
    dec = TagStore.for_project(project).decisions.frame().set_index("item_id")
    assert dec["label"].to_dict() == {"it2": "dog", "it3": "dog"}
    assert set(dec["author"]) == {"curator-1"} and set(dec["reason"]) == {"ears"}
    assert "Decided 2 item(s)" in panel.status.value
    # the preview now shows the decisions: it2 was cat, it3 already dog
    assert panel.preview["item_id"].tolist() == ["it2"]
    assert panel.preview["source"].tolist() == ["decision"]
    # an unknown id: nothing written, not even for the known ones
    sel.select(["it1", "nope"])
    panel.class_picker.value = "cat"
    panel.decide_button.click()
    assert "not in the project" in panel.error_box.value
    assert "it1" not in set(TagStore.for_project(project).decisions.frame()["item_id"])


def test_hostile_release_message_is_escaped_in_the_list(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", f"lead{HOSTILE}")
    project = _relabel_round(_make(tmp_path), tmp_path, VENDOR, verify=["it1"])
    project.decide("it1", "cat", author="lead", reason=HOSTILE)
    panel = ReleasePanel(project)
    assert HOSTILE not in panel.preview_html.value
    assert "&lt;img src=x onerror=" in panel.preview_html.value
    panel.message_box.value = f"fix {HOSTILE}"
    panel.release()
    manifest = json.loads((_releases_dir(project) / "1" / "manifest.json").read_text())
    assert manifest["message"] == f"fix {HOSTILE}"  # stored as typed
    html = panel.releases_html.value
    assert HOSTILE not in html and "<img" not in html
    assert "fix &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "lead&lt;img" in html


def test_panel_refuses_projects_it_cannot_release():
    items = pd.DataFrame({"item_id": ["p", "q"], "label": ["a", "b"]})
    with pytest.raises(ValueError, match="opened from a folder"):
        ReleasePanel(wb.Project.from_frames(items=items))
    with pytest.raises(TypeError, match="Selection"):
        ReleasePanel(wb.Project.from_frames(items=items), selection="x")


def test_relabel_view_carries_the_release_panel(tmp_path):
    project = _make(tmp_path)
    TagStore.for_project(project).add(["it1", "it3"], "relabel", author="u")
    view = wb.widgets.RelabelQueueView(project)
    assert isinstance(view.release_panel, ReleasePanel)
    assert view.release_panel in view.children
    assert view.release_panel.selection is view.selection
    path = tmp_path / "res.csv"
    path.write_text("item_id,annotator,label\nit1,v1,cat\nit1,v2,cat\nit3,v1,cat\n")
    RelabelQueue(project).mark(["it1", "it3"], "sent", author="u")
    view.import_file(path, format="csv")
    assert view.release_panel.project is view.project  # re-read annotations
    view.selection.select(["it1", "it3"])
    assert view.verify_selection() == 2
    # verified items appear in the panel's preview at once
    assert view.release_panel.preview["item_id"].tolist() == ["it1", "it3"]
    view.release_panel.message_box.value = "from the queue"
    rel = view.release_panel.release()
    assert rel.number == 1 and sorted(rel.changes["item_id"]) == ["it1", "it3"]


def test_preview_release_writes_nothing_and_matches(tmp_path):
    project = _relabel_round(_make(tmp_path), tmp_path, VENDOR, verify=["it1", "it3", "it0"])
    preview = preview_release(project)
    assert preview.attrs["parent"] == 0 and preview.attrs["considered"] == 3
    assert not _releases_dir(project).exists()
    rel = project.release_labels("r", author="lead")
    pd.testing.assert_frame_equal(preview, rel.changes, check_like=True)
    assert preview_release(project).empty


def test_class_changes_counts_and_bad_input():
    changes = pd.DataFrame({"old_label": ["cat", "cat", "dog"],
                            "new_label": ["dog", "dog", "cat"]})
    out = class_changes(changes, ["cat", "dog", "bird"])
    assert out.to_dict("list") == {"class": ["cat", "dog"], "n_left": [2, 1],
                                   "n_joined": [1, 2], "net": [-1, 1]}
    with pytest.raises(wb.errors.SchemaError, match="old_label"):
        class_changes(pd.DataFrame({"new_label": ["a"]}), ["a"])
