"""The served dashboards' wrapper: built ahead of the viewer, rebuilt when the data changed."""

from __future__ import annotations

import ipywidgets as w
import pandas as pd
import pytest

import workbench as wb
from workbench import results
from workbench.widgets import dashboard as D

TOML = "name = 'ahead'\nclasses = ['a', 'b']\n"


@pytest.fixture
def root(write_files):
    return write_files({"workbench.toml": TOML,
                        "items.csv": "item_id,label\nx1,a\nx2,b\nx3,a\n"})


@pytest.fixture
def preheated(monkeypatch):
    """A kernel as Voila preheats it; ``waits`` runs while it waits for the viewer."""
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("VOILA_KERNEL_ID", "k-1")
    monkeypatch.delenv(D.BUILD_AHEAD_ENV, raising=False)
    waits: list = []
    monkeypatch.setattr("workbench.serve.wait_for_viewer", lambda: [f() for f in waits])
    return waits


def _view(project):
    out = w.HTML(f"{len(project.items)} items")
    out.add_class("wb-ready")
    return out


def test_outside_voila_it_is_built_at_once_and_not_again(root):
    app = D.Dashboard(_view, path=root)
    assert app.built == 1 and app.view.value == "3 items"
    assert app.wait_for_viewer() is app.view and app.built == 1


def test_a_file_changed_while_waiting_is_read_again(root, preheated):
    app = D.Dashboard(_view, path=root)
    first = app.view
    assert app.built == 1  # ahead: before the viewer
    preheated.append(lambda: (root / "items.csv").write_text(
        "item_id,label\nx1,a\nx2,b\nx3,a\nx4,b\n"))
    assert app.wait_for_viewer().value == "4 items"
    assert app.built == 2 and len(app.project.items) == 4
    assert first.comm is None  # the stale widget is closed


def test_nothing_changed_means_nothing_rebuilt(root, preheated):
    app = D.Dashboard(_view, "overview", path=root)
    view = app.view
    assert isinstance(app.report, pd.DataFrame)
    app.wait_for_viewer()
    assert app.built == 1 and app.view is view


def test_a_tag_written_while_waiting_is_read_again(root, preheated):
    from workbench.tags import TagStore

    app = D.Dashboard(_view, path=root)
    preheated.append(lambda: TagStore.for_project(app.project).add(["x1"], "relabel",
                                                                   author="bob"))
    app.wait_for_viewer()
    assert app.built == 2
    preheated[:] = [lambda: TagStore.for_project(app.project).add(["x2"], "relabel",
                                                                  author="bob")]
    app.wait_for_viewer()  # the store existed already: a new tag is a new state too
    assert app.built == 3


def test_data_state_sees_releases_and_files_changed_during_open(root):
    project = wb.open_project(root)
    before = results.data_state(project)
    assert before == results.data_state(project, opened=True)
    (root / ".workbench" / "releases" / "1").mkdir(parents=True)
    assert results.data_state(project) != before
    project.input_fingerprint = None  # open_project saw the files change while reading them
    assert results.data_state(project, opened=True) is None
    assert results.data_state(wb.Project.from_frames(
        items=pd.DataFrame({"item_id": ["a"]}), classes=["x"])) is None


def test_no_progress_bar_is_shown_before_the_viewer(root, preheated, monkeypatch):
    from workbench._progress import progress_enabled

    monkeypatch.delenv("WORKBENCH_PROGRESS", raising=False)
    seen = []
    D.Dashboard(lambda project: seen.append(progress_enabled()) or _view(project), path=root)
    assert seen == [False] and progress_enabled()


def test_never_reads_when_the_viewer_arrives(root, preheated, monkeypatch):
    monkeypatch.setenv(D.BUILD_AHEAD_ENV, "never")
    app = D.Dashboard(_view, path=root)
    assert app.built == 0 and app.view is None and app.project is None
    app.wait_for_viewer()
    assert app.built == 1 and app.view.value == "3 items"


def test_auto_builds_ahead_only_small_projects(root, preheated, monkeypatch):
    assert D.builds_ahead(root)
    monkeypatch.setattr(D, "BUILD_AHEAD_MAX_ITEMS", 2)
    assert not D.builds_ahead(root)
    assert D.Dashboard(_view, path=root).built == 0
    monkeypatch.setenv(D.BUILD_AHEAD_ENV, "always")
    assert D.builds_ahead(root)


def test_a_bad_mode_is_named(root, preheated, monkeypatch):
    monkeypatch.setenv(D.BUILD_AHEAD_ENV, "sometimes")
    with pytest.raises(ValueError, match="'WORKBENCH_BUILD_AHEAD' parameter of Dashboard"):
        D.Dashboard(_view, path=root)


def test_a_broken_project_fails_when_the_viewer_arrives(write_files, preheated):
    bad = write_files({"workbench.toml": TOML, "items.csv": "label\na\n"})
    app = D.Dashboard(_view, path=bad)  # ahead: the error is kept for the page
    assert app.built == 0
    with pytest.raises(Exception, match="item_id"):
        app.wait_for_viewer()


def test_a_broken_project_fails_at_once_outside_voila(write_files):
    bad = write_files({"workbench.toml": TOML, "items.csv": "label\na\n"})
    with pytest.raises(Exception, match="item_id"):
        D.Dashboard(_view, path=bad)


def test_count_items_reads_sizes_cheaply(tmp_path):
    (tmp_path / "items.csv").write_text("item_id\na\nb")  # no final line break
    assert D.count_items(tmp_path) == 2
    (tmp_path / "items.csv").write_text("item_id\na\nb\n")
    assert D.count_items(tmp_path) == 2
    (tmp_path / "items.csv").unlink()
    assert D.count_items(tmp_path) is None
    pd.DataFrame({"item_id": list("abcde")}).to_parquet(tmp_path / "items.parquet")
    assert D.count_items(tmp_path) == 5
