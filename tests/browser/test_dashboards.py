"""Served dashboards in a real browser: render, air-gapped, login, read-only, escaping."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import ERROR_CELL, curator_notebooks_present, is_local, write_notebooks
    from ._crafted import KernelWire, click, kernel_id_of, set_value, widget_states
except ImportError:
    from _browser import ERROR_CELL, curator_notebooks_present, is_local, write_notebooks
    from _crafted import KernelWire, click, kernel_id_of, set_value, widget_states

from workbench.serve import ROLE_NOTEBOOKS

needs_curator_notebooks = pytest.mark.skipif(
    not curator_notebooks_present(),
    reason="the curator dashboards (notebooks/01-03) are not all in the repository yet")


def _external(pg) -> list[str]:
    return sorted({u for u in pg.requests if not is_local(u)})


# --------------------------------------------------------------------------- rendering


def test_manager_overview_renders_air_gapped_without_write_controls(
        page, serve, sample_root, open_dashboard):
    srv = serve(sample_root, "manager")
    open_dashboard(page, srv, "00_overview")
    assert _external(page) == []
    assert page.dialogs == []
    cards = page.locator(".wb-overview .wb-card")
    assert cards.count() == 5
    assert "model error rate" in page.inner_text(".wb-kpi-error-rate").lower()
    # the trends figure is drawn by plotly's view after the page is ready (late when busy)
    page.wait_for_selector(".wb-overview-trends .scatterlayer .trace", timeout=60_000)
    assert page.locator(".wb-overview-trends .js-plotly-plot").count() == 1
    assert page.locator(".wb-overview-trends .scatterlayer .trace").count() >= 2
    # read-only: no tagging or status controls, no text inputs; only Refresh
    for css in [".wb-tag-panel", ".wb-tag-add", ".wb-tag-remove", ".wb-tag-name",
                ".wb-relabel-set-status", "input[type=text]", "textarea"]:
        assert page.locator(css).count() == 0, css
    buttons = [b.strip() for b in page.locator("button.jupyter-button").all_inner_texts()]
    assert buttons == ["Refresh"], buttons
    assert "read-only" in page.inner_text(".wb-overview-header")
    # the vendor scorecards, the sample's drop highlighted and named; the releases section
    scorecard = page.inner_text(".wb-overview-scorecard")
    assert "Vendor scorecards per batch" in scorecard
    assert "Quality dropped beyond chance: quicklabel 2026-W04." in scorecard
    flagged = page.locator(".wb-overview-scorecard tr.wb-flagged")
    assert flagged.count() == 1
    assert "quicklabel" in flagged.inner_text() and "2026-W04" in flagged.inner_text()
    assert "No release yet" in page.inner_text(".wb-overview-releases")


def test_a_tag_written_while_a_preheated_overview_waits_shows_on_the_page(
        page, serve, project_copy, open_dashboard):
    """The overview is built ahead in its preheated kernel; the tag comes after: rebuilt."""
    import time

    import workbench as wb

    root = project_copy("ahead")
    srv = serve(root, "manager")
    cache = root / ".workbench" / "cache"
    deadline = time.monotonic() + 150  # the kernel's build ahead writes the result cache
    while time.monotonic() < deadline and not (cache.is_dir() and any(cache.iterdir())):
        time.sleep(1)
    assert cache.is_dir() and any(cache.iterdir()), "the overview was not built ahead"
    time.sleep(15)  # the widgets built after the results
    ids = list(wb.open_project(root).items["item_id"][:3])
    wb.TagStore.for_project(wb.open_project(root)).add(ids, "relabel", author="elsewhere")
    open_dashboard(page, srv, "00_overview")
    assert "queued 3" in page.inner_text(".wb-kpi-relabel")


@needs_curator_notebooks
@pytest.mark.parametrize("name", ROLE_NOTEBOOKS["curator"])
def test_curator_dashboard_renders_air_gapped(page, serve, sample_root, open_dashboard, name):
    srv = serve(sample_root, "curator")
    open_dashboard(page, srv, name.removesuffix(".ipynb"))
    assert _external(page) == []
    assert page.dialogs == []
    assert page.locator(".jp-OutputArea-output[data-mime-type*='stderr']").count() == 0
    # no output left behind by a widget closed before the page came (a progress bar)
    assert "Error displaying widget" not in page.inner_text("body")


def test_tree_lists_only_the_role_dashboards(page, serve, sample_root):
    srv = serve(sample_root, "manager")
    page.goto(srv.login_url)
    page.wait_for_load_state("networkidle")
    page.goto(srv.url + "voila/api/contents")
    listing = json.loads(page.inner_text("body"))
    assert sorted(c["name"] for c in listing["content"]) == ["00_overview.ipynb"]
    page.goto(srv.url + "voila/render/no_such_dashboard.ipynb")  # the 404 page
    assert "does not exist" in page.inner_text("body") or "404" in page.inner_text("body")
    assert _external(page) == []


# --------------------------------------------------------------------------- login


def test_without_token_the_page_asks_to_log_in(page, serve, sample_root, open_dashboard):
    srv = serve(sample_root, "manager")
    page.goto(srv.render_url("00_overview", token=False))
    assert "/login" in page.url
    assert page.locator(".wb-overview").count() == 0
    assert _external(page) == []
    # a wrong token does not get in
    page.fill("#password_input", "x" * 43)
    page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert "/login" in page.url
    # the right one does, and lands on the dashboard
    page.fill("#password_input", srv.token)
    page.keyboard.press("Enter")
    page.wait_for_selector(".wb-ready", timeout=180_000)
    assert "voila/render/00_overview.ipynb" in page.url
    assert ERROR_CELL not in page.inner_text("body")
    assert _external(page) == []


# --------------------------------------------------------------------------- read-only kernel


def _render(srv, name: str) -> str:
    with urllib.request.urlopen(srv.render_url(name), timeout=300) as resp:
        html = resp.read().decode()
    assert ERROR_CELL not in html
    return html


def test_forged_messages_to_every_overview_widget_write_nothing(serve, project_copy):
    root = project_copy("forged-overview")
    srv = serve(root, "manager")
    wire = KernelWire(srv.url, kernel_id_of(_render(srv, "00_overview")), srv.token)
    try:
        states = widget_states(wire)
        assert any(s.get("_model_name") == "ButtonModel" for s in states.values())
        for comm_id, state in states.items():
            if state.get("_model_name") == "ButtonModel":
                click(wire, comm_id)
            if "value" in state and isinstance(state["value"], str):
                set_value(wire, comm_id, "forged")
        wire.drain(5)
    finally:
        wire.close()
    # not even a database was created: the state folder holds the result cache only
    state = root / ".workbench"
    assert not state.exists() or {p.name for p in state.iterdir()} <= {"cache"}


TAG_NOTEBOOK = """\
import workbench as wb
project = wb.open_project()
selection = wb.Selection()
selection.select(list(project.items["item_id"][:3]), source="test")
panel = wb.widgets.TagPanel(project, selection)
panel.add_class("wb-ready")
panel"""


def _tag_panel_notebooks(tmp: Path) -> Path:
    """A notebooks folder whose '00_overview' is a bare TagPanel: the write handlers exposed."""
    return write_notebooks(tmp, {"00_overview.ipynb": TAG_NOTEBOOK})


@pytest.mark.parametrize("role, writes", [("manager", False), ("curator", True)])
def test_forged_tag_click_is_refused_in_a_manager_session(
        serve, project_copy, tmp_path_factory, role, writes):
    """The TagPanel's own models, reached by raw comm messages; the curator is the control."""
    import workbench as wb

    root = project_copy(f"forged-{role}")
    nbs = _tag_panel_notebooks(tmp_path_factory.mktemp(f"nbs-{role}"))
    if role == "curator":  # the curator serves four notebooks: the same panel in each
        for name in ROLE_NOTEBOOKS["curator"][1:]:
            (nbs / name).write_text((nbs / "00_overview.ipynb").read_text())
    srv = serve(root, role, "--notebooks", str(nbs), "--pool-size", "0", user=f"forger-{role}")
    wire = KernelWire(srv.url, kernel_id_of(_render(srv, "00_overview")), srv.token)
    try:
        states = widget_states(wire)
        by_class = {c: cid for cid, s in states.items() for c in s.get("_dom_classes", [])}
        assert {"wb-tag-add", "wb-tag-name", "wb-tag-reason"} <= set(by_class)
        set_value(wire, by_class["wb-tag-name"], "forged")
        set_value(wire, by_class["wb-tag-reason"], "crafted message")
        wire.drain(1)
        click(wire, by_class["wb-tag-add"])
        wire.drain(4)
    finally:
        wire.close()
    project = wb.open_project(root)
    db = root / ".workbench" / "workbench.db"
    if writes:
        tags = wb.TagStore.for_project(project).tags()
        forged = tags[tags["tag"] == "forged"]
        assert len(forged) == 3
        assert set(forged["author"]) == {f"forger-{role}"}  # the server's user, not the wire's
    else:
        if db.exists():
            tags = wb.TagStore.for_project(project).tags()
            assert "forged" not in set(tags["tag"])


# --------------------------------------------------------------------------- escaping


def _assert_no_injection(pg):
    assert pg.dialogs == []
    assert pg.evaluate("() => window.__xss === undefined")
    assert pg.locator("img[src='x']").count() == 0
    assert pg.locator("svg[onload]").count() == 0
    assert pg.locator("b[onmouseover]").count() == 0


def test_html_in_metadata_shows_as_text_in_the_overview(page, serve, xss_project,
                                                       open_dashboard):
    srv = serve(xss_project, "manager")
    open_dashboard(page, srv, "00_overview")
    _assert_no_injection(page)
    text = page.inner_text(".wb-overview")
    assert "<img src=x onerror=" in text  # the vendor, shown literally
    assert "<script>window.__xss=2" in text  # the batch
    # plotly: axis labels and hover text
    # plotly draws its axes after the widget view shows (seconds later on a loaded machine)
    page.wait_for_selector(".wb-overview-trends .xtick text", state="attached", timeout=60_000)
    ticks = " ".join(page.locator(".wb-overview-trends .xtick text").all_text_contents())
    assert "<script>" in ticks or "<svg" in ticks, ticks
    points = page.locator(".wb-overview-trends .scatterlayer .point")
    assert points.count() > 0
    hovers = []
    for i in range(points.count()):
        points.nth(i).hover(force=True)
        page.wait_for_timeout(120)
        hovers.append(" ".join(
            page.locator(".wb-overview-trends .hoverlayer").all_text_contents()))
    shown = " | ".join(hovers)
    assert "batch <script>window.__xss=2;alert(2)</script>" in shown, shown
    assert '<svg onload="window.__xss=3;alert(3)">' in shown, shown
    _assert_no_injection(page)
    assert _external(page) == []


@needs_curator_notebooks
@pytest.mark.parametrize("name", ROLE_NOTEBOOKS["curator"][1:])
def test_html_in_metadata_shows_as_text_in_curator_dashboards(page, serve, xss_project,
                                                              open_dashboard, name):
    srv = serve(xss_project, "curator")
    open_dashboard(page, srv, name.removesuffix(".ipynb"))
    _assert_no_injection(page)
    # move over every plot so hover labels are drawn too
    for plot in page.locator(".js-plotly-plot").all():
        box = plot.bounding_box()
        if box:
            for fx in (0.3, 0.5, 0.7):
                page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * 0.5)
                page.wait_for_timeout(100)
    _assert_no_injection(page)
    assert _external(page) == []
