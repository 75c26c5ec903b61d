"""OverviewDashboard: the manager's read-only overview, without a browser."""

from __future__ import annotations

import ipywidgets as w
import pandas as pd
import pytest

import workbench as wb
from workbench.widgets.overview import OverviewDashboard

XSS = '<img src=x onerror="alert(1)">'


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _xss_project():
    n = 60
    items = pd.DataFrame({
        "item_id": [f"i{i:03d}" for i in range(n)],
        "label": [str(i % 3) for i in range(n)],
        "vendor": [XSS if i % 2 else "v<b>2</b>" for i in range(n)],
        "batch": [f"<script>alert({i % 3})</script>" for i in range(n)],
    })
    ann = pd.DataFrame([{"item_id": f"i{i:03d}", "annotator": f"a{j}<svg onload=alert(2)>",
                         "label": str((i + (j == 2 and i % 4 == 0)) % 3)}
                        for i in range(n) for j in range(3)])
    pred = pd.DataFrame([{"item_id": f"i{i:03d}", "run": run,
                          "label": str((i + (i % 5 == 0)) % 3), "confidence": 0.8}
                         for run in ["base", f"new{XSS}"] for i in range(n)])
    return wb.Project.from_frames(items=items, annotations=ann, predictions=pred,
                                  name=f"proj{XSS}")


def test_overview_builds_on_the_sample(sample_project):
    app = OverviewDashboard(sample_project)
    assert "wb-ready" in app._dom_classes and "wb-overview" in app._dom_classes
    assert app.kpis.problems == {}
    cards = app.cards.value
    for key in ["error-rate", "agreement", "label-issues", "relabel", "project"]:
        assert f"wb-kpi-{key}" in cards
    assert f"{len(sample_project.items):,} items" in cards
    assert "vs baseline" in cards  # change from the previous run
    assert "Label agreement per vendor" in app.tables.value
    assert "Label agreement per batch" in app.tables.value
    assert app.figure is not None
    names = {t.name for t in app.figure.data}
    assert names == {f"error rate: {r}" for r in sample_project.runs} | {"label agreement"}
    assert "Computed in" in app.status.value
    assert "OverviewDashboard(project=" in repr(app)


def test_overview_shows_the_scorecards_with_the_flagged_vendor(sample_project):
    app = OverviewDashboard(sample_project)
    html = app.scorecard.value
    assert "wb-overview-scorecard" in app.scorecard._dom_classes
    assert "Vendor scorecards per batch" in html and "wb-scorecard-table" in html
    assert "Quality dropped beyond chance: quicklabel 2026-W04." in html
    flagged = [row for row in html.split("<tr")[1:] if "wb-flagged" in row]
    assert len(flagged) == 1
    assert "<td>quicklabel</td><td>2026-W04</td>" in flagged[0]
    for vendor in sample_project.items["vendor"].dropna().unique():
        assert f"<td>{vendor}</td>" in html
    assert "No release yet" in app.releases.value  # the sample has no release


def test_overview_lists_releases_escaped(tmp_path, monkeypatch):
    from workbench.project import write_project

    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "y", "x"]})
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["u", "v"] * 2,
                        "label": ["x", "x", "y", "y"]})
    mem = wb.Project.from_frames(items=items, annotations=ann, classes=["x", "y"])
    project = wb.open_project(write_project(mem, tmp_path / "p", format="csv"))
    app = OverviewDashboard(project)
    assert "No release yet" in app.releases.value
    project.decide("a", "y", author=f"lead{XSS}")
    project.release_labels(f"fix {XSS}", author=f"lead{XSS}")
    app.refresh_button.click()  # re-reads the releases
    html = app.releases.value
    assert "wb-releases-table" in html and "<img" not in html
    assert "fix &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<td>1</td>" in html and "x -1, y +1" in html


def test_overview_has_no_write_controls(sample_project):
    app = OverviewDashboard(sample_project)
    buttons = [c for c in _walk(app) if isinstance(c, w.Button)]
    assert buttons == [app.refresh_button]
    inputs = [c for c in _walk(app) if isinstance(c, (w.Text, w.Textarea, w.Combobox,
                                                      w.Dropdown, w.Checkbox, w.ToggleButton))]
    assert inputs == []


def test_refresh_rereads_the_tag_store(sample_project, tmp_path):
    from workbench.tags import TagStore

    store = TagStore(f"sqlite:///{tmp_path / 'tags.db'}",
                     item_ids=sample_project.items["item_id"].tolist())
    app = OverviewDashboard(sample_project, store=store)
    assert "Relabel queue" in app.cards.value
    before = app.kpis.relabel["n_items"].sum()
    store.add(sample_project.items["item_id"].tolist()[:4], "relabel", author="alice")
    app.refresh_button.click()
    assert app.kpis.relabel["n_items"].sum() == before + 4
    assert "queued 4" in app.cards.value


def test_manager_session_shows_read_only_badge(sample_project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    assert "read-only" in OverviewDashboard(sample_project).header.value
    monkeypatch.setenv("WORKBENCH_ROLE", "curator")
    assert "read-only" not in OverviewDashboard(sample_project).header.value


def test_every_data_string_is_escaped():
    app = OverviewDashboard(_xss_project())
    html = "".join(c.value for c in _walk(app) if isinstance(c, w.HTML))
    for raw in ["<img", "<script>alert", "<svg", "v<b>2"]:
        assert raw not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;script&gt;" in html  # the batch names are shown, as text
    fig = app.figure
    assert fig is not None
    for trace in fig.data:
        texts = [trace.name, trace.hovertemplate, *map(str, trace.x)]
        assert not any("<img" in t or "<script" in t for t in texts), texts
    assert "<script" not in str(fig.layout.xaxis.categoryarray)


def test_problems_are_shown_not_raised():
    items = pd.DataFrame({"item_id": ["a", "b"], "label": ["x", "y"]})
    app = OverviewDashboard(wb.Project.from_frames(items=items))
    assert "wb-ready" in app._dom_classes
    assert "Not shown" in app.status.value and "no predictions" in app.status.value
    assert app.figure is None


@pytest.mark.parametrize("role", ["manager", "curator"])
def test_overview_notebook_is_thin_and_runs(role, monkeypatch, sample_root):
    """The notebook's code, run as Voila runs it (WORKBENCH_PROJECT, WORKBENCH_ROLE)."""
    import json
    from pathlib import Path

    monkeypatch.setenv("WORKBENCH_PROJECT", str(sample_root))
    monkeypatch.setenv("WORKBENCH_ROLE", role)
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    nb = json.loads((Path(__file__).resolve().parents[2] / "notebooks"
                     / "00_overview.ipynb").read_text())
    ns: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), ns)  # noqa: S102 - our own vetted notebook
    assert isinstance(ns["app"], OverviewDashboard)
    assert ns["project"].root.resolve() == sample_root.resolve()


def test_overview_drift_row_names_the_most_drifted_batch(sample_project):
    app = OverviewDashboard(sample_project)
    assert "wb-overview-drift" in app.drift._dom_classes
    assert "against batch 2026-W01: no batch drifted" in app.drift.value  # none on the sample
    n = 600
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)],
                          "batch": [f"w{1 + i // 200}" for i in range(n)],
                          "vendor": ["v1", "v2"] * (n // 2)})
    # batch w3: the model predicts class 0 for nearly everything (a changed class mix)
    pred = pd.DataFrame({"item_id": items["item_id"], "run": "r1",
                         "label": [("0" if i >= 400 and i % 10 else str(i % 4))
                                   for i in range(n)]})
    app = OverviewDashboard(wb.Project.from_frames(items=items, predictions=pred))
    html = app.drift.value
    assert "wb-drift-flagged" in html and "1 of 4 batch/column pairs drifted" in html
    assert "w3 predicted" in html and "PSI &gt; 0.20 and q &lt; 0.01" in html
