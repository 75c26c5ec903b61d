"""Dashboard 05 (see the data) served by ``workbench serve`` in real Chromium.

A curator opens it air-gapped: a data-issue row click fills the gallery with the item and its
duplicates, the map tab draws the map coloured by data issue; a manager cannot open it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import ERROR_CELL, curator_notebooks_present, is_local
    from .conftest import ARTIFACTS
except ImportError:
    from _browser import ERROR_CELL, curator_notebooks_present, is_local
    from conftest import ARTIFACTS

pytestmark = pytest.mark.skipif(
    not curator_notebooks_present(),
    reason="the curator dashboards are not all in the repository yet")

NOTEBOOK = "05_see_the_data"


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


def _external(pg) -> list[str]:
    return sorted({u for u in pg.requests if not is_local(u)})


def test_curator_clicks_a_data_issue_and_the_gallery_fills(page, serve, sample_root,
                                                           open_dashboard):
    srv = serve(sample_root, "curator")
    open_dashboard(page, srv, NOTEBOOK)
    page.wait_for_selector(".wb-data-explorer", timeout=60_000)
    rows = page.locator(".wb-dataissue-row")
    assert rows.count() > 0
    assert "leak" in page.inner_text(".wb-data-issue-message")
    first = rows.first.inner_text().strip()
    before = page.inner_text(".wb-gallery")  # the gallery before any selection
    rows.first.click()
    page.wait_for_function(
        "() => (document.querySelector('.wb-data-explorer .wb-status') || {}).innerText"
        "?.includes('2 items selected')", timeout=60_000)
    page.wait_for_function(
        "([id, before]) => { const g = document.querySelector('.wb-gallery');"
        " return g && g.innerText !== before && g.innerText.includes(id)"
        " && g.querySelectorAll('.wb-card img').length > 0; }",
        arg=[first, before], timeout=60_000)
    assert "leak" in page.input_value(".wb-tag-reason input")  # the issue is the reason

    # coverage and drift tabs list their rows
    page.locator(".lm-TabBar-tab", has_text="Coverage").click()
    page.wait_for_selector(".wb-coverage-row", state="visible", timeout=30_000)
    page.locator(".lm-TabBar-tab", has_text="Drift").click()
    page.wait_for_selector(".wb-drift-row", state="visible", timeout=30_000)

    # the map tab builds the map (coloured by data issue) when shown
    page.locator(".lm-TabBar-tab", has_text="Map").click()
    page.wait_for_selector(".wb-map canvas", timeout=240_000)
    page.wait_for_function(
        "() => (document.querySelector('.wb-map-info') || {}).innerText"
        "?.includes('coloured by data issue')", timeout=60_000)
    shown = page.inner_text(".wb-map")
    assert "leak: near_duplicate" in shown and "no data issue" in shown  # the legend
    assert "2 selected" in page.inner_text(".wb-map-info")  # the issue clicked earlier
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "see_the_data.png"), full_page=True)
    assert page.dialogs == []
    assert ERROR_CELL not in page.inner_text("body")
    assert _external(page) == []


def test_manager_cannot_open_dashboard_05(page, serve, sample_root):
    srv = serve(sample_root, "manager")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(srv.render_url(NOTEBOOK), timeout=120)
    assert err.value.code == 404
    page.goto(srv.login_url)
    page.wait_for_load_state("networkidle")
    page.goto(srv.url + "voila/api/contents")
    listing = json.loads(page.inner_text("body"))
    assert f"{NOTEBOOK}.ipynb" not in {c["name"] for c in listing["content"]}
    assert _external(page) == []
