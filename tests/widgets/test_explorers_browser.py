"""The two curator explorers in real Chromium, served by plain Voila on a loopback port.

One Voila server serves ``notebooks/`` with ``WORKBENCH_PROJECT`` pointing at a copy of the
sample project whose metadata, annotator names and one item id carry markup. Each explorer is
opened once; the test checks what a curator sees (figures with data, clicks that select and
fill the gallery), that the markup shows as text with no dialog, and that no request leaves
127.0.0.1. Bounded: the server is given 60 s to start, each page 150 s to build.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]
XSS_META = "<img src=x onerror=alert('meta')>"
XSS_ANNOTATOR = "<b>bold</b>"
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:http://127.0.0.1", "about:")
#: Plain Voila's default template links Font Awesome from a CDN (``workbench serve`` uses its
#: own template without it). Such requests are aborted by the page's route, so nothing leaves
#: the machine; they are the only outside requests tolerated.
TEMPLATE_CDN = ("https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory) -> Path:
    src = REPO / "data" / "sample"
    if not (src / "items.csv").exists():
        pytest.skip("data/sample is missing (run `workbench sample`)")
    root = tmp_path_factory.mktemp("hostile") / "project"
    shutil.copytree(src, root)
    items = pd.read_csv(root / "items.csv", dtype=str)
    ann = pd.read_csv(root / "annotations.csv", dtype=str)
    items.loc[items["scanner"] == "scanner-b", "scanner"] = XSS_META
    ann.loc[ann["annotator"] == "eli", "annotator"] = XSS_ANNOTATOR
    items.to_csv(root / "items.csv", index=False)
    ann.to_csv(root / "annotations.csv", index=False)
    return root


@pytest.fixture(scope="module")
def voila_url(hostile_project, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian Chromium not found at {CHROMIUM}")
    pytest.importorskip("playwright.sync_api")
    voila = Path(sys.executable).with_name("voila")
    if not voila.exists():
        pytest.skip("voila is not installed in this environment")
    port = _free_port()
    env = {**os.environ, "WORKBENCH_PROJECT": str(hostile_project),
           "FIFTYONE_DO_NOT_TRACK": "true", "VOILA_PREHEAT": "False",
           "JUPYTER_CONFIG_DIR": str(tmp_path_factory.mktemp("jupyter-config"))}
    log = tmp_path_factory.mktemp("voila-log") / "voila.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(voila), str(REPO / "notebooks"), "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=5).read(100)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"voila did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.requests, page.dialogs = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    # nothing may leave 127.0.0.1: every other request is aborted before it is sent
    page.route(lambda u: not u.startswith(LOCAL), lambda route: route.abort())
    page.goto(url, timeout=150_000)
    page.wait_for_selector(".wb-ready", timeout=150_000)
    return page


def _click_plot_point(page, scope: str, index: int) -> None:
    point = page.locator(f"{scope} .js-plotly-plot .scatterlayer .point").nth(index)
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def _visible_cards(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('.wb-gallery .wb-card')]"
        ".filter(c => c.offsetParent !== null).length")


def _check_clean(page) -> None:
    assert page.dialogs == [], page.dialogs
    assert page.locator("img[src='x']").count() == 0
    outside = [u for u in page.requests
               if not u.startswith(LOCAL) and not u.startswith(TEMPLATE_CDN)]
    assert outside == [], outside  # the widgets themselves ask for nothing outside


def _wait_for_status(page, text: str) -> None:
    """Wait until the explorer's status line mentions ``text``."""
    page.wait_for_function(
        "t => document.querySelector('.wb-status').innerText.includes(t)", arg=text,
        timeout=30_000)


def _wait_for_gallery_images(page) -> None:
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-gallery .wb-card img').length > 0",
        timeout=30_000)


def test_error_explorer_in_chromium(browser, voila_url):
    page = _open(browser, voila_url + "/voila/render/01_error_explorer.ipynb")
    try:
        # the confusion matrix arrives with its counts (a late view of a FigureWidget)
        page.wait_for_function(
            "() => document.querySelectorAll('.wb-confusion .js-plotly-plot "
            ".scatterlayer .point').length === 100", timeout=30_000)
        counts = page.evaluate("() => [...document.querySelectorAll("
                               "'.wb-confusion .heatmaplayer text')].map(e => e.textContent)")
        assert len(counts) == 100 and all(c.isdigit() for c in counts)
        assert sum(map(int, counts)) == 1797  # every sample item in one cell
        titles = page.evaluate("() => [...document.querySelectorAll('.wb-confusion .xtitle, "
                               ".wb-confusion .ytitle')].map(e => e.textContent)")
        assert sorted(titles) == ["predicted", "true"]
        # click the cell (true 8, predicted 1): status and gallery follow
        _click_plot_point(page, ".wb-confusion", 8 * 10 + 1)
        _wait_for_status(page, "true 8, predicted 1")
        _wait_for_gallery_images(page)
        gallery = page.inner_text(".wb-gallery")
        assert "label: 8" in gallery and "pred: 1" in gallery and "annotators:" in gallery
        assert _visible_cards(page) > 0
        # the slice of the hostile scanner value: shown as text, selects its items
        row = page.locator(".wb-slice-row", has_text="onerror").first
        assert row.inner_text().strip().startswith("<img")
        row.click()
        _wait_for_status(page, "540 items")
        assert XSS_META in page.inner_text(".wb-gallery")
        # pagination
        page.click(".wb-gallery-next")
        page.wait_for_function(
            "() => document.querySelector('.wb-gallery-status').innerText.includes('page 2')",
            timeout=30_000)
        page.screenshot(path=str(Path(os.environ.get("TMPDIR", "/tmp"))
                                 / "wb_error_explorer.png"), full_page=True)
        _check_clean(page)
    finally:
        page.close()


def test_disagreement_explorer_in_chromium(browser, voila_url):
    page = _open(browser, voila_url + "/voila/render/02_disagreements.ipynb")
    try:
        page.wait_for_function(
            "() => document.querySelectorAll('.wb-agreement-matrix .js-plotly-plot "
            ".scatterlayer .point').length === 36", timeout=30_000)
        ticks = page.locator(".wb-agreement-matrix .js-plotly-plot").inner_text()
        assert XSS_ANNOTATOR in ticks  # the name as typed, not a bold "bold"
        # annotator row -> status and gallery with every annotator's label
        page.locator(".wb-annotator-row", has_text=XSS_ANNOTATOR).click()
        _wait_for_status(page, "disagrees")
        _wait_for_gallery_images(page)
        assert f"{XSS_ANNOTATOR}=" in page.inner_text(".wb-gallery")
        # a label issue row
        page.locator(".wb-disagreement-tabs .lm-TabBar-tab", has_text="Label issues").click()
        first = page.locator(".wb-issue-row").first
        first.wait_for(timeout=30_000)
        item = first.inner_text().strip()
        first.click()
        page.wait_for_function(
            "id => document.querySelector('.wb-status').innerText.startsWith('1 item selected')"
            " && document.querySelector('.wb-gallery').innerText.includes(id)", arg=item,
            timeout=30_000)
        assert page.locator("b", has_text="bold").count() == 0
        _check_clean(page)
    finally:
        page.close()
