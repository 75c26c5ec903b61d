"""The Error Explorer on the detection sample, in Chromium: renders air-gapped, and a click
on a confusion cell shows the images with their boxes drawn (counted in the DOM)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import REPO, is_local
    from .conftest import ARTIFACTS
except ImportError:
    from _browser import REPO, is_local
    from conftest import ARTIFACTS

SAMPLE = REPO / "data" / "sample-detection"

pytestmark = pytest.mark.skipif(not (SAMPLE / "boxes.csv").exists(),
                                reason="data/sample-detection is missing (make sample)")

_VISIBLE_CARDS = ".wb-gallery .wb-card:not([style*='display: none'])"


@pytest.fixture(scope="module")
def detection_root(tmp_path_factory) -> Path:
    """A writable copy of the detection sample (its own tag database)."""
    root = tmp_path_factory.mktemp("detection") / "project"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".workbench"))
    return root


def _miss_cell(root):
    """The class whose ``background`` cell (missed boxes) is largest on one gallery page."""
    import workbench as wb

    project = wb.open_project(root)
    m = wb.match_detections(project, project.default_run)
    table = wb.confusion_table(m)
    best = None
    for cls in table.index[:-1]:
        rows = wb.cell_items(m, cls, "background")
        boxes = sorted(rows["box_id"].dropna().astype(str))
        images = set(rows["item_id"].astype(str))
        if len(images) <= 24 and (best is None or len(boxes) > len(best[1])):
            best = (str(cls), boxes, images)
    assert best is not None and best[1]
    return best[0], best[1], best[2], [str(c) for c in table.index]


def _click_point(page, index: int) -> None:
    point = page.locator(".wb-confusion .js-plotly-plot .scatterlayer .point").nth(index)
    box = point.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


def test_detection_explorer_click_shows_images_with_boxes(page, serve, detection_root,
                                                          open_dashboard):
    cls, missed, images, classes = _miss_cell(detection_root)
    srv = serve(detection_root, "curator", "--pool-size", "0")
    open_dashboard(page, srv, "01_error_explorer")
    assert page.locator(".wb-detection-explorer").count() == 1
    # the confusion heatmap's axes are drawn by plotly after the view shows
    page.wait_for_function(
        "() => (document.querySelector('.wb-confusion') || {}).innerText?.includes('background')",
        timeout=60_000)
    assert "background" in page.inner_text(".wb-confusion")
    assert page.locator(".wb-ap-table").count() == 1 and page.locator(".wb-pr-curve").count()

    k = len(classes)
    _click_point(page, classes.index(cls) * k + classes.index("background"))
    page.wait_for_function(
        "n => document.querySelectorAll(\"" + _VISIBLE_CARDS + " rect.wb-box-selected\")"
        ".length >= n", arg=len(missed), timeout=60_000)
    cards = page.locator(_VISIBLE_CARDS)
    assert cards.count() == len(images)
    # every drawn box is an SVG rect; the captions say how many each card drew
    drawn = page.evaluate("""sel => [...document.querySelectorAll(sel)].map(card => ({
        rects: card.querySelectorAll('rect.wb-box').length,
        ref: card.querySelectorAll('rect.wb-box-ref').length,
        pred: card.querySelectorAll('rect.wb-box-pred').length,
        selected: [...card.querySelectorAll('g.wb-box-selected')].map(g => g.dataset.boxId),
        captionRef: Number(card.querySelector('.wb-card-boxes').dataset.reference),
        captionPred: Number(card.querySelector('.wb-card-boxes').dataset.predictions),
        img: card.querySelector('.wb-figure img') && card.querySelector('.wb-figure img')
             .naturalWidth,
        src: card.querySelector('.wb-figure img').getAttribute('src').slice(0, 22)}))""",
                          _VISIBLE_CARDS)
    assert all(d["rects"] == d["ref"] + d["pred"] > 0 for d in drawn), drawn
    assert all(d["ref"] == d["captionRef"] and d["pred"] == d["captionPred"] for d in drawn)
    assert sorted(b for d in drawn for b in d["selected"]) == missed
    assert all(d["img"] and d["img"] > 0 for d in drawn)  # the images loaded
    assert all(d["src"] == "data:image/png;base64," for d in drawn)  # through the kernel
    status = page.inner_text(".wb-error-explorer .wb-status")
    assert f"{len(missed)} boxes on {len(images)} images" in status, status

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "detection_explorer.png"), full_page=True)
    gallery = page.locator(".wb-gallery").first
    gallery.scroll_into_view_if_needed()
    gallery.screenshot(path=str(ARTIFACTS / "detection_gallery.png"))
    assert page.dialogs == []
    assert sorted({u for u in page.requests if not is_local(u)}) == []
