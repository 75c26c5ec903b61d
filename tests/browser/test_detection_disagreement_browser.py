"""The Disagreement Explorer on the detection sample, in Chromium: the served dashboard renders
air-gapped, the annotator x annotator F1 heatmap is drawn, a click on a cell shows the
images with the annotators' boxes, and an annotator named with HTML stays text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import REPO, XSS, is_local
    from .conftest import ARTIFACTS
except ImportError:
    from _browser import REPO, XSS, is_local
    from conftest import ARTIFACTS

SAMPLE = REPO / "data" / "sample-detection"

pytestmark = pytest.mark.skipif(not (SAMPLE / "boxes.csv").exists(),
                                reason="data/sample-detection is missing (make sample)")

_VISIBLE_CARDS = ".wb-gallery .wb-card:not([style*='display: none'])"
_MATRIX = ".wb-detection-agreement-matrix"


@pytest.fixture(scope="module")
def detection_root(tmp_path_factory) -> Path:
    """A writable copy of the detection sample whose annotator ``ben`` is named with HTML."""
    root = tmp_path_factory.mktemp("detection-disagreement") / "project"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".workbench"))
    ann = pd.read_csv(root / "annotations.csv", dtype=str, keep_default_na=False)
    ann["annotator"] = ann["annotator"].replace({"ben": XSS})
    ann.to_csv(root / "annotations.csv", index=False)
    return root


def _expected(root, a: str, b: str):
    """Images and boxes where annotators ``a`` and ``b`` disagree (the library's answer)."""
    import workbench as wb

    project = wb.open_project(root)
    m = wb.match_annotators(project.annotations, classes=project.classes)
    m = m[m["outcome"].astype(str) != "agree"]
    ma, mb = m["annotator_a"].astype(str), m["annotator_b"].astype(str)
    rows = m[((ma == a) & (mb == b)) | ((ma == b) & (mb == a))]
    boxes = set(rows["box_id_a"].dropna()) | set(rows["box_id_b"].dropna())
    names = sorted(set(project.annotations["annotator"].astype(str)))
    return sorted(set(rows["item_id"].astype(str))), sorted(boxes), names


def _click_point(page, index: int) -> None:
    point = page.locator(f"{_MATRIX} .js-plotly-plot .scatterlayer .point").nth(index)
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


def _assert_no_injection(pg):
    assert pg.dialogs == []
    assert pg.evaluate("() => window.__xss === undefined")
    assert pg.locator("img[src='x']").count() == 0


def test_disagreement_dashboard_on_boxes(page, serve, detection_root, open_dashboard):
    images, boxes, names = _expected(detection_root, "ana", "dev")
    assert names[0] == XSS and images and boxes
    srv = serve(detection_root, "curator", "--pool-size", "0")
    open_dashboard(page, srv, "02_disagreements")
    assert page.locator(".wb-detection-disagreement").count() == 1
    kpis = page.locator(".wb-kpi")
    assert kpis.count() == 4
    assert "detection F1" in page.inner_text(".wb-kpis")

    # the heatmap is drawn: one cell per annotator pair, the HTML name shown as text
    page.wait_for_selector(f"{_MATRIX} .js-plotly-plot .heatmaplayer image, "
                           f"{_MATRIX} .js-plotly-plot .heatmaplayer path", timeout=60_000)
    k = len(names)
    assert page.locator(f"{_MATRIX} .js-plotly-plot .scatterlayer .point").count() == k * k
    ticks = " ".join(page.locator(f"{_MATRIX} .xtick text").all_text_contents())
    assert XSS in ticks and "ana" in ticks, ticks
    cell_text = " ".join(page.locator(f"{_MATRIX} .js-plotly-plot text").all_text_contents())
    assert "0." in cell_text  # the F1 values written in the cells
    _assert_no_injection(page)

    # a click on (ana, dev) selects their disagreements; the gallery shows those images
    _click_point(page, names.index("ana") * k + names.index("dev"))
    status = ".wb-detection-disagreement .wb-status"
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).innerText.includes(text)",
        arg=[status, f"{len(boxes):,} boxes on {len(images):,} images"], timeout=60_000)
    assert "ana and dev disagree" in page.inner_text(status)
    n_cards = min(len(images), 24)  # the first page of the gallery
    page.wait_for_function(
        """([sel, n]) => { const cards = document.querySelectorAll(sel);
            return cards.length === n && [...cards].every(c => c.querySelector('g.wb-box-ann')
                && c.querySelector('.wb-figure img') && c.querySelector('.wb-figure img')
                .naturalWidth > 0); }""", arg=[_VISIBLE_CARDS, n_cards], timeout=60_000)
    drawn = page.evaluate("""sel => [...document.querySelectorAll(sel)].map(card => ({
        item: card.querySelector('g.wb-box').dataset.boxId.split('/')[0],
        ann: [...card.querySelectorAll('g.wb-box-ann')].map(g => [g.dataset.annotator,
             g.querySelector('rect.wb-box').getAttribute('stroke')]),
        pred: card.querySelectorAll('rect.wb-box-pred').length,
        selected: [...card.querySelectorAll('g.wb-box-selected')].map(g => g.dataset.boxId),
        img: card.querySelector('.wb-figure img') && card.querySelector('.wb-figure img')
             .naturalWidth}))""", _VISIBLE_CARDS)
    assert all(d["img"] and d["img"] > 0 for d in drawn)  # the images loaded
    # every annotator's boxes are drawn, each annotator in one colour of its own
    assert all(d["ann"] and d["pred"] == 0 for d in drawn), drawn
    colours: dict = {}
    for d in drawn:
        for who, colour in d["ann"]:
            colours.setdefault(who, set()).add(colour)
    assert set(colours) == set(names), colours
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == len(names)
    legend = page.inner_text(".wb-gallery-legend")
    assert all(n in legend for n in names), legend  # the HTML name as text
    # the selected boxes are the disagreeing boxes of ana and dev on the images shown
    shown = sorted(b for d in drawn for b in d["selected"])
    on_cards = {b for b in boxes if b.split("/")[0] in {d["item"] for d in drawn}}
    assert shown == sorted(on_cards) and shown, (shown, sorted(on_cards))

    # the annotator table: the HTML name is a row, as text
    rows = page.locator(".wb-annotator-row")
    assert XSS in rows.all_text_contents()
    _assert_no_injection(page)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "detection_disagreements.png"), full_page=True)
    assert sorted({u for u in page.requests if not is_local(u)}) == []
    assert "There was an error" not in page.inner_text("body")
