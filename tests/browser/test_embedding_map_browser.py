"""The embedding map in a served Voila dashboard, in Chromium: points drawn, a lasso (shift +
drag) selects, the gallery follows, and nothing is fetched from outside 127.0.0.1 (the
jupyter-scatter bundle comes inlined from the installed package through anywidget)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import curator_notebooks_present, is_local, write_notebooks
    from .conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
except ImportError:
    from _browser import curator_notebooks_present, is_local, write_notebooks
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


LARGE_MAP_NOTEBOOK = """import os
import ipywidgets as w
import pandas as pd
import workbench as wb
from workbench.serve import wait_for_viewer
from workbench.widgets import _jscatter_adapter
from workbench.widgets.embedding_map import EmbeddingMap
wait_for_viewer()
ROOT = os.environ["WORKBENCH_PROJECT"]
project = wb.open_project(ROOT)
app = EmbeddingMap(project, layout=pd.read_parquet(os.path.join(ROOT, "layout.parquet")))
deferred = w.HTML(f"<span class='wb-deferred'>{_jscatter_adapter.is_deferred(app.scatter)}</span>")
faster_module = app.scatter.widget._esm == _jscatter_adapter.faster_bundle()
faster = w.HTML(f"<span class='wb-faster'>{faster_module}</span>")
ends = app.scatter.get_point_list()[[0, -1]].astype("float32").tolist()  # as sent
ends = w.HTML(f"<span class='wb-ends'>{ends}</span>")
# the widget's selected points when the shared Selection first changed (0: the kernel found
# the lasso's points from its outline before they arrived), and once they arrived whether
# they are the Selection's items
first = w.HTML("")
first.add_class("wb-first")
app.selection.observe(lambda change: first.value or setattr(
    first, "value", str(len(app.scatter.widget.selection))), ["ids"])
agree = w.HTML("")
agree.add_class("wb-agree")
app.scatter.widget.observe(lambda change: setattr(agree, "value", str(
    tuple(sorted(app.ids_of(change["new"]).tolist())) == app.selection.ids)), ["selection"])
app.children = (*app.children, deferred, faster, ends, first, agree)
app.add_class("wb-ready")
app
"""


def _large_map_project(root, n: int):
    """``n`` items in two clusters (left, right) with their layout, and a served notebook."""
    from workbench.serve import ROLE_NOTEBOOKS

    rng = np.random.default_rng(0)
    ids = np.char.add("it-", np.char.zfill(np.arange(n).astype(str), 7))
    label = np.where(np.arange(n) < n // 2, "left", "right")
    x = np.where(label == "left", -4.0, 4.0) + rng.normal(0, 0.5, n)
    root.mkdir(parents=True)
    pd.DataFrame({"item_id": ids, "label": label}).to_parquet(root / "items.parquet")
    (root / "workbench.toml").write_text("name = 'large-map'\nclasses = ['left', 'right']\n")
    pd.DataFrame({"item_id": ids, "x": x.astype(np.float32),
                  "y": rng.normal(0, 0.5, n).astype(np.float32)}).to_parquet(
        root / "layout.parquet")
    nbs = write_notebooks(root.parent / "notebooks", {
        name: LARGE_MAP_NOTEBOOK if name == "00_overview.ipynb" else "print('unused')"
        for name in ROLE_NOTEBOOKS["curator"]})
    return root, nbs


def test_a_large_map_gets_its_deferred_points_and_a_lasso_selects(
        page, serve, open_dashboard, tmp_path_factory):
    """From 100,000 points the kernel sends the points once the view rendered (drawn once),
    and the view reads them with the adapter's faster deserialiser (the same numbers)."""
    from workbench.widgets import _jscatter_adapter

    n = _jscatter_adapter.DEFER_MIN_POINTS + 20_000
    root, nbs = _large_map_project(tmp_path_factory.mktemp("large-map") / "project", n)
    srv = serve(root, "curator", "--notebooks", str(nbs), "--pool-size", "0")
    open_dashboard(page, srv, "00_overview")
    assert page.inner_text(".wb-deferred") == "True"  # the kernel held the points back
    assert page.inner_text(".wb-faster") == "True"  # and gave the view the faster module
    page.wait_for_function(  # then sent them all once the view rendered
        "n => { const c = document.querySelector('.wb-map canvas');"
        " const api = c && c.closest('[id]').api; return api && api.get('points').length === n; }",
        arg=n, timeout=120_000)
    ends = page.evaluate("n => { const api = document.querySelector('.wb-map canvas')"
                         ".closest('[id]').api; const p = api.get('points');"
                         " return [p[0], p[n - 1]]; }", n)
    assert ends == json.loads(page.inner_text(".wb-ends"))  # float32, read exactly
    page.wait_for_timeout(1500)  # the first frames of the WebGL canvas
    assert _drawn_pixels(page, ".wb-map canvas") > 2000
    page.bring_to_front()
    box = page.locator(".wb-map canvas").first.bounding_box()
    # a lasso around the left half of the map: the left cluster, none of the right one
    _lasso(page, {"x": box["x"], "y": box["y"], "width": box["width"] / 2,
                  "height": box["height"]})
    page.wait_for_function(
        "() => /[0-9,]+<\\/b> selected/.test(document.querySelector('.wb-map-info').innerHTML)",
        timeout=60_000)
    info = page.inner_text(".wb-map-info")
    selected = int(re.search(r"([\d,]+) selected", info).group(1).replace(",", ""))
    assert 0.5 * n / 2 < selected <= n / 2, info
    # the kernel took the lasso from its outline, before the points arrived: the same items
    page.wait_for_function("() => document.querySelector('.wb-agree').innerText === 'True'",
                           timeout=60_000)
    assert page.inner_text(".wb-first") == "0"
    assert page.dialogs == []
    assert sorted({u for u in page.requests if not is_local(u)}) == []


def _bundle_function(text: str, start: str, end: str) -> str:
    """The JavaScript from ``start`` to the end of ``end`` (its first occurrence after)."""
    i = text.index(start)
    return text[i:text.index(end, i) + len(end)]


def test_the_kernels_lasso_finds_what_regl_scatterplot_finds(page):
    """The kernel's :func:`~workbench.widgets._lasso.points_in_lasso` beside
    regl-scatterplot's own functions (taken from jupyter-scatter's bundle) in Chromium, on
    float32 points (random, on the vertices, midway along the edges) and lassos (a circle, a
    concave star, a figure eight, a bow tie, scribbles that cross themselves, a flat one);
    and the page's checksum (the faster module's ``workbenchSendLasso``) is the kernel's."""
    from workbench.widgets import _jscatter_adapter, _lasso

    text = _jscatter_adapter._bundle()
    functions = "\n".join([
        _bundle_function(text, "function crossProduct(", "\n}\n"),
        _bundle_function(text, "var isPointInPolygon = ", "return winding !== 0;\n};"),
        _bundle_function(text, "var getBBox = ", "return [xMin, yMin, xMax, yMax];\n};"),
        _bundle_function(text, "var isValidBBox = ", ";\n")])
    find = ("(data) => {\n" + functions + """
      const poly = data.polygon, xy = new Float32Array(data.xy), out = [];
      const bBox = getBBox(poly);
      if (!isValidBBox(bBox)) return out;
      const [x0, y0, x1, y1] = bBox;
      for (let i = 0; i < xy.length / 2; i++) {
        const x = xy[2 * i], y = xy[2 * i + 1];
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1 && isPointInPolygon(poly, [x, y])) {
          out.push(i);
        }
      }
      return out;
    }""")
    method = _jscatter_adapter.SELECT_HANDLER_PATCHED.split("  selectHandler(event)")[0]
    send = ("(data) => { const proto = {" + method + "};"
            " const view = {workbenchLasso: data.lasso, model: {send: (m) => { view.sent = m; }}};"
            " proto.workbenchSendLasso.call(view, data.points); return view.sent; }")
    rng = np.random.default_rng(11)
    t = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    star = np.where(np.arange(90) % 2, 0.3, 0.9)
    shapes = [np.c_[0.6 * np.cos(t), 0.6 * np.sin(t)], np.c_[star * np.cos(t), star * np.sin(t)],
              np.c_[0.8 * np.sin(t), 0.5 * np.sin(2 * t)],
              np.array([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5], [-0.5, 0.5]]),
              rng.uniform(-1, 1, (7, 2)), rng.uniform(-1, 1, (60, 2)),
              np.array([[-0.5, 0.2], [0.5, 0.2], [0.1, 0.2]])]
    for shape in shapes:
        lasso = shape.astype(np.float32).astype(np.float64)  # as pointer positions are
        mid = (lasso + np.roll(lasso, 1, axis=0)) / 2
        xy = np.vstack([rng.uniform(-1, 1, (4000, 2)), lasso, mid]).astype(np.float32)
        polygon = lasso.ravel().tolist()
        expected = page.evaluate(find, {"polygon": polygon, "xy": xy.ravel().tolist()})
        assert _lasso.points_in_lasso(xy, polygon).tolist() == expected
        message = page.evaluate(send, {"lasso": lasso.tolist(), "points": expected})
        assert _lasso.parse_lasso_message(message) == (polygon, _lasso.checksum(expected))


def test_the_faster_deserialiser_reads_what_jupyter_scatters_reads(page):
    """The adapter's replacement of jupyter-scatter's ``Numpy2D`` deserialiser, run in
    Chromium beside the original on the same float32 buffers: the same arrays, in the same
    shape (one plain array per point), for the widths the widget sends (points: 4, lasso
    polygon: 2), empty and odd sizes included."""
    from workbench.widgets import _jscatter_adapter

    source = ("(data) => { const arr = new Float32Array(data.values);"
              " const height = data.height, width = data.width;\n{body}\nreturn points; }")
    original = source.replace("{body}", _jscatter_adapter.DESERIALIZER)
    faster = source.replace("{body}", _jscatter_adapter.FAST_DESERIALIZER)
    rng = np.random.default_rng(3)
    for height, width in [(0, 4), (1, 4), (1001, 4), (7, 2), (5, 3)]:
        values = rng.normal(size=height * width).astype(np.float32)
        data = {"values": values.tolist(), "height": height, "width": width}
        got = page.evaluate(faster, data)
        assert got == page.evaluate(original, data)
        assert got == values.reshape(height, width).tolist()
        assert page.evaluate(f"(data) => ({faster})(data).every(Array.isArray)", data)
