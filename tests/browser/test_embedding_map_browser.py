"""The embedding map in a served Voila dashboard, in Chromium: points drawn, a lasso (shift +
drag) selects, the gallery follows, and nothing is fetched from outside 127.0.0.1 (the
jupyter-scatter bundle comes inlined from the installed package through anywidget)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import curator_notebooks_present, is_local
    from .conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
except ImportError:
    from _browser import curator_notebooks_present, is_local
    from conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not curator_notebooks_present(),
    reason="the curator dashboards (notebooks/01-03) are not all in the repository yet")


@pytest.fixture(scope="module")
def map_project(project_copy):
    """A copy of the sample with embeddings and its 2-D layout cached (as a first run does)."""
    import workbench as wb
    from workbench.embeddings import compute_embeddings, write_embeddings
    from workbench.layout import layout

    root = project_copy("map")
    if not (root / "embeddings.parquet").exists():  # the sample ships them once H1's are in
        write_embeddings(root, compute_embeddings(wb.open_project(root)))
    project = wb.open_project(root)
    assert project.has_embeddings
    layout(project)  # UMAP once (~30 s on 2 cores), cached in .workbench/cache
    return root


@pytest.fixture(scope="module")
def browser(browser):
    """The session's Chromium relaunched with switches to keep producing frames.

    Overrides pytest-playwright's ``browser`` for this module only, so conftest's ``page``
    fixture (a fresh context that records requests, dialogs and console errors) runs on it.
    regl-scatterplot collects the lasso path on animation frames; headless Chromium
    throttles them for a page it considers in the background, so without these switches
    a lasso made by the test may end with an empty path (a user's visible window is never
    throttled). Launched from the session's Playwright (one sync loop per process).
    """
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, "--disable-backgrounding-occluded-windows",
        "--disable-renderer-backgrounding", "--disable-background-timer-throttling"])
    yield b
    b.close()


#: The map's camera (regl-scatterplot's view matrix) through the plot jupyter-scatter hangs
#: on its container (``container.api``): a pan or zoom changes it.
CAMERA_VIEW = ("() => Array.from(document.querySelector('.wb-map canvas')"
               ".closest('[id]').api.get('cameraView'))")


def _drawn_pixels(page, selector: str) -> int:
    """How many pixels of the element differ from its most common colour (the background)."""
    from PIL import Image

    png = page.locator(selector).first.screenshot()
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colors, counts = np.unique(img, axis=0, return_counts=True)
    background = colors[counts.argmax()]
    return int((np.abs(img.astype(int) - background).sum(axis=1) > 30).sum())


def _lasso(page, box: dict) -> None:
    """Shift + drag along 85% of an ellipse inside ``box``, then release."""
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    rx, ry = box["width"] * 0.42, box["height"] * 0.42
    page.mouse.move(cx - rx * 0.707, cy - ry * 0.707)
    page.wait_for_timeout(100)
    page.keyboard.down("Shift")
    page.mouse.down()
    page.wait_for_timeout(50)
    for t in np.linspace(1.25 * np.pi, 2.95 * np.pi, 40):
        page.mouse.move(cx + rx * np.cos(t), cy + ry * np.sin(t), steps=3)
        page.wait_for_timeout(20)
    # the lasso path is collected on animation frames, which headless Chromium produces
    # on demand: a screenshot (kept for whoever reads a failure) makes it draw one
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "embedding-map-lasso.png"))
    page.mouse.up()
    page.keyboard.up("Shift")


def test_map_draws_points_and_a_lasso_selects_items_for_the_gallery(
        page, serve, map_project, open_dashboard):
    srv = serve(map_project, "curator")
    open_dashboard(page, srv, "01_error_explorer")
    page.locator(".wb-error-tabs .lm-TabBar-tab", has_text="map").click()
    page.wait_for_selector(".wb-map canvas", timeout=120_000)
    page.wait_for_function(
        "() => document.querySelector('.wb-map-info') && "
        "document.querySelector('.wb-map-info').innerText.includes('items, coloured by')",
        timeout=60_000)
    page.wait_for_timeout(1500)  # the first frames of the WebGL canvas

    # points drawn: the canvas is far from blank
    canvas = ".wb-map canvas"
    assert _drawn_pixels(page, canvas) > 2000
    assert "1,797 items" in page.inner_text(".wb-map-info")
    assert "label" in page.inner_text(".wb-map")  # the legend's title

    # a lasso: shift + drag along most of an ellipse around the middle of the map (an open
    # path: regl-scatterplot closes it; ending where it started would read as a click)
    page.bring_to_front()
    box = page.locator(canvas).first.bounding_box()
    view = page.evaluate(CAMERA_VIEW)
    _lasso(page, box)
    # the kernel's Selection got the lassoed items: status, map and gallery follow
    page.wait_for_function(
        "() => document.querySelector('.wb-status').innerText.includes('lassoed on the map')",
        timeout=30_000)
    # shift + drag drew a lasso and did not pan the map (jupyter-scatter 1.0 drops
    # regl-scatterplot's shift lasso key unless the map sets it: the points slid off-centre)
    assert page.evaluate(CAMERA_VIEW) == view
    status = page.inner_text(".wb-status")
    n = int(re.search(r"([\d,]+) items lassoed on the map", status).group(1).replace(",", ""))
    assert 0 < n < 1797, status
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-gallery .wb-card:not([style*=\"display: none\"])')"
        ".length > 0", timeout=30_000)
    page.wait_for_function(  # the map's own line, written by the kernel after the Selection
        "n => document.querySelector('.wb-map-info').innerText.includes(n + ' selected')",
        arg=f"{n:,}", timeout=30_000)
    assert re.search(r"digit-\d{4}", page.inner_text(".wb-gallery"))

    assert page.dialogs == []
    assert sorted({u for u in page.requests if not is_local(u)}) == []
