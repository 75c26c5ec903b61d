"""Picking gallery cards in Chromium: a slice of 540 items, three cards picked, only they tagged."""

from __future__ import annotations

import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import curator_notebooks_present, is_local
    from .conftest import ARTIFACTS
except ImportError:
    from _browser import curator_notebooks_present, is_local
    from conftest import ARTIFACTS

pytestmark = pytest.mark.skipif(
    not curator_notebooks_present(),
    reason="the curator dashboards (notebooks/01-03) are not all in the repository yet")

AUTHOR = "curator-pick"


def _wait_picked(page, n: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.wb-gallery .wb-card.wb-picked').length === n",
        arg=n, timeout=30_000)


def test_curator_picks_three_cards_and_tags_only_those(page, serve, project_copy,
                                                       open_dashboard):
    import workbench as wb

    root = project_copy("picks")
    srv = serve(root, "curator", user=AUTHOR)
    open_dashboard(page, srv, "01_error_explorer")

    # a slice of 540 items: the tag panel would tag all of them
    page.locator(".wb-slice-row", has_text="scanner-b").first.click()
    page.wait_for_function(
        "() => document.querySelector('.wb-tag-status').innerText"
        ".includes('Tag all 540 selected items')", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-gallery .wb-card img').length > 0",
        timeout=30_000)

    # click card 1 and card 3, then shift-click card 4: three cards picked
    page.click(".wb-gallery .wb-slot-1")
    _wait_picked(page, 1)
    page.click(".wb-gallery .wb-slot-3")
    _wait_picked(page, 2)
    page.click(".wb-gallery .wb-slot-4", modifiers=["Shift"])
    _wait_picked(page, 3)
    page.wait_for_function(
        "() => document.querySelector('.wb-tag-status').innerText"
        ".includes('Tag 3 picked item(s) only')", timeout=30_000)
    picked = page.evaluate(
        "() => [...document.querySelectorAll('.wb-gallery .wb-card.wb-picked')]"
        ".map(c => c.querySelector('.wb-card-caption b').innerText.trim())")
    classes = page.evaluate(
        "() => [...document.querySelectorAll('.wb-gallery .wb-card.wb-picked')]"
        ".map(c => [...c.classList].find(k => k.startsWith('wb-slot-')))")
    assert sorted(classes) == ["wb-slot-1", "wb-slot-3", "wb-slot-4"]
    assert "3 picked" in page.inner_text(".wb-gallery-status")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".wb-gallery").screenshot(path=str(ARTIFACTS / "gallery_picks.png"))

    page.fill(".wb-tag-name input", "relabel")
    page.click("button.wb-tag-add")
    page.wait_for_function(
        "() => document.querySelector('.wb-tag-status').innerText.includes('Tagged')",
        timeout=30_000)
    assert "Tagged 3 item(s)" in page.inner_text(".wb-tag-status")

    store = wb.TagStore.for_project(wb.open_project(root))
    tags = store.tags()
    assert sorted(tags["item_id"]) == sorted(picked) and len(picked) == 3
    assert set(tags["tag"]) == {"relabel"} and set(tags["author"]) == {AUTHOR}

    # "Select none": the panel is back to the whole selection
    page.click(".wb-gallery-pick-none")
    _wait_picked(page, 0)
    page.wait_for_function(
        "() => document.querySelector('.wb-tag-status').innerText"
        ".includes('Tag all 540 selected items')", timeout=30_000)
    assert page.dialogs == []
    assert sorted({u for u in page.requests if not is_local(u)}) == []
