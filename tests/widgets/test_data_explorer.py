"""DataExplorer (dashboard 05) without a browser: every tab builds on the samples, clicks
select items, a project without embeddings, escaping of hostile metadata values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.coverage import coverage
from workbench.drift import drift, drift_items, drift_summary
from workbench.selection import Selection
from workbench.widgets.data_explorer import DataExplorer, default_groups, issue_colors

from .conftest import HOSTILE, REPO, dom_classes


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator-1")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


@pytest.fixture(scope="module")
def board(sample_project):
    return DataExplorer(sample_project)


def test_tabs_build_on_the_sample(board, sample_project):
    assert {"wb-data-explorer", "wb-ready", "wb-data-tabs", "wb-coverage", "wb-drift",
            "wb-data-issues"} <= dom_classes(board)
    assert [board.tabs.get_title(i) for i in range(4)] == ["Data issues", "Map", "Coverage",
                                                           "Drift"]
    # data issues: the list of workbench.data_issues, leaks first
    leak = board.issues.frame["is_leak"].to_numpy()
    assert leak.sum() > 0 and leak[: leak.sum()].all()
    # coverage: train against the other splits by default
    assert board.coverage.column_box.value == "split"
    assert board.coverage.reference_box.value == ("train",)
    assert set(board.coverage.target_box.value) == {"test", "val"}
    ref = sample_project.items.loc[sample_project.items["split"] == "train", "item_id"]
    assert sorted(board.coverage.result.reference_ids) == sorted(ref.astype(str))
    expected = coverage(sample_project, reference={"split": ["train"]},
                        target={"split": ["test", "val"]})
    pd.testing.assert_frame_equal(board.coverage.slices, expected.slices)
    # drift: by batch, the rows of drift_summary
    assert board.drift.by == "batch"
    pd.testing.assert_frame_equal(board.drift.frame,
                                  drift_summary(drift(sample_project, by="batch")))


def test_data_issue_click_selects_and_sets_the_tag_reason(sample_project):
    sel = Selection()
    app = DataExplorer(sample_project, sel)
    first = app.issues.frame.iloc[0]
    app.issues.rows[0].button.click()
    assert sel.ids == tuple(sorted([str(first["item_id"]), *map(str, first["related_ids"])]))
    assert app.tag_panel.reason_box.value == app.issues.reason != ""
    assert "leak" in app.tag_panel.reason_box.value
    assert f"{len(sel.ids)} items selected" in app.status.value
    assert set(app.gallery.ids_on_page) <= set(sel.ids) and app.gallery.ids_on_page


def test_map_is_coloured_by_data_issue_and_lasso_selects(board, sample_project):
    m = board.map_tab.map or board.map_tab.build()
    assert m is not None and m.color_by == "data_issue"
    assert m.color_picker.options[0] == ("data issue", "data_issue")
    colours = m._frame["data issue"]
    issues = board.issues.issues
    leak_ids = set(issues.loc[issues["is_leak"], "item_id"].astype(str))
    is_leak = pd.Series(m.ids).isin(leak_ids).to_numpy()
    assert np.asarray(colours.astype(str))[is_leak].tolist() == [
        c for c in np.asarray(colours.astype(str))[is_leak] if c.startswith("leak: ")]
    assert (np.asarray(colours.astype(str))[~pd.Series(m.ids).isin(
        set(issues["item_id"].astype(str))).to_numpy()] == "no data issue").all()
    m.select_points([0, 1, 2])
    assert set(board.selection.ids) == set(m.ids[[0, 1, 2]])
    m.color_by = "label"  # the other colourings still work
    assert "label" in m._frame.columns


def test_issue_colors_first_issue_and_no_issue():
    issues = pd.DataFrame({"item_id": ["a", "b", "a"],
                           "issue_type": ["near_duplicate", "outlier", "outlier"],
                           "is_leak": [True, False, False]})
    out = issue_colors(issues, ["a", "b", "c"])
    assert list(out.astype(str)) == ["leak: near_duplicate", "outlier", "no data issue"]
    assert list(issue_colors(issues.iloc[0:0], ["x"]).astype(str)) == ["no data issue"]


def test_coverage_row_selects_the_target_items_of_the_slice(sample_project):
    sel = Selection()
    app = DataExplorer(sample_project, sel)
    cov = app.coverage
    row = cov.slices.iloc[0]
    cov.slice_table.rows[0].button.click()
    items = sample_project.items
    target = items["split"].isin(["test", "val"]) & (items[row["column"]].astype(str)
                                                      == str(row["value"]))
    assert sel.ids == tuple(sorted(items.loc[target, "item_id"].astype(str)))
    assert len(sel.ids) == int(row["n_target"])
    # novel items: one click selects one, the button selects all
    if len(cov.novel):
        cov.novel_table.rows[0].button.click()
        assert sel.ids == (str(cov.novel["item_id"].iloc[0]),)
        cov.novel_button.click()
        assert set(sel.ids) == set(cov.result.novel_ids)
    # another grouping: batches, the last batch as the target
    cov.column_box.value = "batch"
    assert cov.target_box.value == ("2026-W06",)
    cov.run_button.click()
    assert cov.error_box.layout.display in (None, "none") or not cov.error_box.value
    assert set(cov.result.target_ids) == set(
        items.loc[items["batch"] == "2026-W06", "item_id"].astype(str))
    cov.target_box.value = cov.reference_box.value[:1]
    cov.raise_errors = True
    with pytest.raises(ValueError, match="both reference and target"):
        cov.compute()


def test_drift_row_selects_drift_items_and_by_picker(sample_project):
    sel = Selection()
    app = DataExplorer(sample_project, sel)
    d = app.drift
    r = d.frame.iloc[0]
    d.table.rows[0].button.click()
    expected = drift_items(sample_project, r["batch"], r["column"], r["value"], by="batch")
    assert sel.ids == tuple(sorted(expected["item_id"].astype(str)))
    d.by_box.value = "scanner"
    assert d.frame.attrs["by"] == "scanner"


def _hostile_project(tmp_path, *, embeddings: bool):
    n = 120
    rng = np.random.default_rng(0)
    ids = [f"it-{i:03d}" for i in range(n)]
    batch = np.where(np.arange(n) < 60, "w1", HOSTILE)
    site = np.where(np.arange(n) < 60, rng.choice(["north", "south"], n),
                    np.where(np.arange(n) % 3 == 0, "north", HOSTILE))
    items = pd.DataFrame({"item_id": ids, "label": rng.choice(["a", "b"], n),
                          "split": np.where(np.arange(n) % 4 == 0, "test", "train"),
                          "batch": batch, "site": site})
    emb = None
    if embeddings:
        X = rng.normal(size=(n, 4))
        emb = pd.DataFrame(X, columns=[f"e{i}" for i in range(4)]).assign(item_id=ids)
    return wb.Project.from_frames(items=items, embeddings=emb, root=tmp_path)


def test_hostile_metadata_values_are_escaped_in_coverage_and_drift(tmp_path):
    project = _hostile_project(tmp_path, embeddings=True)
    app = DataExplorer(project)
    app.coverage.column_box.value = "batch"
    app.coverage.compute()
    app.drift.compute()
    cells = [c.value for t in (app.coverage.slice_table, app.drift.table)
             for r in t.rows for c in r.cells] + [app.coverage.message.value,
                                                  app.drift.message.value]
    html = "".join(cells)
    assert "<img" not in html and "onerror=\"" not in html
    assert "&lt;img" in html  # the value is shown, as text
    # a row whose value is hostile still selects its items
    d = app.drift
    assert d.frame["batch"].eq("w1").all()  # "<img..." sorts first: the baseline
    hostile = [i for i in range(len(d.frame)) if d.frame["value"].iloc[i] == HOSTILE]
    assert hostile
    assert d.frame["share"].iloc[hostile[0]] == 0  # vanished from w1: the grown value
    ids = d.select_row(hostile[0])
    grown = drift_items(project, "w1", "site", by="batch")
    assert ids == grown["item_id"].tolist() and grown.attrs["value"] != HOSTILE
    assert "<img" not in app.status.value


def test_project_without_embeddings_says_how_to_add_them(tmp_path):
    project = _hostile_project(tmp_path, embeddings=False)
    assert not project.has_embeddings
    app = DataExplorer(project)
    assert "wb-ready" in dom_classes(app)
    assert app.map_tab.build() is None
    assert "workbench embed" in app.map_tab.message.value
    assert "workbench embed" in app.issues.message.value
    assert app.coverage.result.items is None and len(app.coverage.novel) == 0
    assert "workbench embed" in app.coverage.message.value
    assert app.coverage.novel_button.disabled
    assert len(app.drift.frame) > 0


def test_text_sample_builds_every_tab():
    from workbench.text_sample import TEXT_SAMPLE_DIR

    project = wb.open_project(TEXT_SAMPLE_DIR)
    sel = Selection()
    app = DataExplorer(project, sel)
    assert "wb-ready" in dom_classes(app)
    assert app.coverage.reference_box.value == ("train",)
    app.drift.table.rows[0].button.click()
    assert sel.ids
    assert all(c.text is not None for c in app.gallery.cards if c.item_id is not None)
    assert app.map_tab.build() is not None


def test_detection_project_gets_a_note(det_project):
    app = DataExplorer(det_project)
    assert "not supported for detection projects yet" in app.header.value
    assert "wb-ready" in dom_classes(app)


def test_default_groups_and_bad_selection():
    items = pd.DataFrame({"split": ["train", "test", "val"], "batch": ["w1", "w2", "w3"],
                          "site": ["a", "a", "b"]})
    assert default_groups(items, "split") == (["train"], ["test", "val"])
    assert default_groups(items, "batch") == (["w1", "w2"], ["w3"])
    assert default_groups(items, "site") == (["a"], ["b"])
    with pytest.raises(TypeError, match="'selection' parameter of DataExplorer"):
        DataExplorer(None, selection="nope")


def test_dashboard_notebook_is_thin_and_curator_only():
    path = REPO / "notebooks" / "05_see_the_data.ipynb"
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "wb.widgets.DataExplorer" in code and "wait_for_viewer()" in code
    assert "wb.widgets.preload()" in code
    assert "def " not in code and "class " not in code
    from workbench.serve import ROLE_NOTEBOOKS

    assert path.name in ROLE_NOTEBOOKS["curator"]
    assert path.name not in ROLE_NOTEBOOKS["manager"]
