"""The curator journey, in Chromium: confusion cell -> gallery -> tag -> store -> relabel queue."""

from __future__ import annotations

import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import curator_notebooks_present, is_local
except ImportError:
    from _browser import curator_notebooks_present, is_local

pytestmark = pytest.mark.skipif(
    not curator_notebooks_present(),
    reason="the curator dashboards (notebooks/01-03) are not all in the repository yet")

AUTHOR = "curator-alice"
REASON = "journey: label looks wrong"


def _worst_cell(project):
    """The off-diagonal confusion cell with the most items (true, predicted, ids)."""
    from workbench.slicing import cell_items, confusion_table

    errors = project.errors()
    table = confusion_table(errors)
    best = max(((t, p) for t in table.index for p in table.columns if t != p),
               key=lambda tp: table.loc[tp[0], tp[1]])
    return str(best[0]), str(best[1]), cell_items(errors, *best), [str(c) for c in table.index]


def test_curator_tags_a_confusion_cell_and_finds_it_in_the_relabel_queue(
        page, serve, project_copy, open_dashboard):
    import workbench as wb

    root = project_copy("journey")
    project = wb.open_project(root)
    true, pred, ids, classes = _worst_cell(project)
    assert 0 < len(ids) <= 24  # one gallery page
    srv = serve(root, "curator", user=AUTHOR)

    # 1. the Error Explorer; click the cell (true, pred) of the confusion matrix
    open_dashboard(page, srv, "01_error_explorer")
    k = len(classes)
    point = page.locator(".wb-confusion .js-plotly-plot .scatterlayer .point").nth(
        classes.index(true) * k + classes.index(pred))
    box = point.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    # 2. the gallery shows the cell's items
    page.wait_for_function(
        "n => document.querySelectorAll('.wb-gallery .wb-card:not([style*=\"display: none\"])')"
        ".length > 0", arg=len(ids), timeout=30_000)
    page.wait_for_function(
        "n => document.querySelector('.wb-tag-status') && "
        "document.querySelector('.wb-tag-status').innerText.includes(n + ' item(s) selected')",
        arg=len(ids), timeout=30_000)
    gallery_text = page.inner_text(".wb-gallery")
    shown = [i for i in ids if i in gallery_text]
    assert shown, gallery_text[:1000]

    # 3. tag them with a reason
    page.fill(".wb-tag-name input", "relabel")
    page.fill(".wb-tag-reason input", REASON)
    page.click("button.wb-tag-add")
    page.wait_for_function(
        "() => document.querySelector('.wb-tag-status').innerText.includes('Tagged')",
        timeout=30_000)
    assert f"Tagged {len(ids)} item(s)" in page.inner_text(".wb-tag-status")

    # 4. the tags are in the store, with the author (from the server) and the reason
    store = wb.TagStore.for_project(wb.open_project(root))
    tags = store.tags()
    mine = tags[tags["tag"] == "relabel"]
    assert sorted(mine["item_id"]) == sorted(ids)
    assert set(mine["author"]) == {AUTHOR}
    assert set(mine["reason"]) == {REASON}

    # 5. the relabel dashboard lists them
    open_dashboard(page, srv, "03_relabel_queue")
    table = page.inner_text(".wb-relabel-table")
    listed = [i for i in ids if i in table]
    assert len(listed) == min(len(ids), 15), table[:2000]
    assert str(len(ids)) in page.inner_text(".wb-relabel-counts")

    # 6. and the manager overview counts them, without a token for writing anything
    mgr = serve(root, "manager", "--pool-size", "0")
    open_dashboard(page, mgr, "00_overview")
    assert f"queued {len(ids)}" in page.inner_text(".wb-kpi-relabel")

    assert page.dialogs == []
    assert sorted({u for u in page.requests if not is_local(u)}) == []
