"""The relabel dashboard on the detection sample, in Chromium: the queue lists images with
their boxes in question, "Select queue" makes the gallery draw those boxes highlighted, and a
COCO batch is exported from the page."""

from __future__ import annotations

import json
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
def tagged_root(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the detection sample with two images' boxes and one image tagged relabel."""
    import workbench as wb

    root = tmp_path_factory.mktemp("detection-relabel") / "project"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".workbench", "exports",
                                                                "imports"))
    project = wb.open_project(root)
    boxes = project.boxes.groupby("item_id")["box_id"].apply(list)
    two = [i for i, b in boxes.items() if len(b) >= 3][:2]
    tagged = {two[0]: boxes[two[0]][:2], two[1]: boxes[two[1]][:1]}
    whole = next(i for i in project.items["item_id"] if i not in tagged)
    store = wb.TagStore.for_project(project)
    items = [i for i, bs in tagged.items() for _ in bs]
    store.add(items, "relabel", author="ana", reason="loose box",
              box_ids=[b for bs in tagged.values() for b in bs])
    store.add([whole], "relabel", author="ana", reason="objects missing")
    store.close()
    return root, {"boxes": tagged, "whole": whole}


def test_relabel_dashboard_selects_and_draws_the_boxes_in_question(page, serve, tagged_root,
                                                                    open_dashboard):
    root, tagged = tagged_root
    boxes = sorted(b for bs in tagged["boxes"].values() for b in bs)
    images = sorted([*tagged["boxes"], tagged["whole"]])
    srv = serve(root, "curator", "--pool-size", "0")
    open_dashboard(page, srv, "03_relabel_queue")
    assert "queued: 3" in page.inner_text(".wb-relabel-counts")
    table = page.inner_text(".wb-relabel-table")
    assert all(i in table for i in images), table[:2000]
    assert all(b in table for b in boxes) and "(image)" in table
    assert "loose box" in table and "objects missing" in table
    options = page.eval_on_selector_all(".wb-relabel-format select option",
                                        "opts => opts.map(o => o.textContent)")
    assert [o.replace("\xa0", " ") for o in options] == ["Label Studio (rectangles)", "COCO",
                                                          "CSV"]

    # Select queue: the gallery shows the three images, the tagged boxes highlighted
    page.click("button.wb-relabel-select")
    page.wait_for_function(
        "n => document.querySelectorAll(\"" + _VISIBLE_CARDS + "\").length == n",
        arg=len(images), timeout=60_000)
    page.wait_for_function(
        "n => document.querySelectorAll(\"" + _VISIBLE_CARDS + " g.wb-box-selected\")"
        ".length >= n", arg=len(boxes), timeout=60_000)
    drawn = page.evaluate("""sel => [...document.querySelectorAll(sel)].map(card => ({
        selected: [...card.querySelectorAll('g.wb-box-selected')].map(g => g.dataset.boxId),
        rects: card.querySelectorAll('rect.wb-box').length}))""", _VISIBLE_CARDS)
    assert sorted(b for d in drawn for b in d["selected"]) == boxes
    assert all(d["rects"] > 0 for d in drawn)
    assert "3 images, 3 boxes" in page.inner_text(".wb-gallery-status")

    # export a COCO batch from the page: the file is written and the images become sent
    page.select_option(".wb-relabel-format select", label="COCO")
    page.click("button.wb-relabel-export")
    page.wait_for_function(
        "() => document.querySelector('.wb-relabel-status').innerText.includes('Exported')",
        timeout=60_000)
    assert "Exported 3 item(s)" in page.inner_text(".wb-relabel-status")
    written = sorted((root / "exports").glob("*.coco.json"))
    assert len(written) == 1
    coco = json.loads(written[0].read_text())
    assert sorted(img["wb_item_id"] for img in coco["images"]) == images
    assert "sent: 3" in page.inner_text(".wb-relabel-counts")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "detection_relabel.png"), full_page=True)
    assert page.dialogs == []
    assert sorted({u for u in page.requests if not is_local(u)}) == []
