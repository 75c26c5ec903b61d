"""The App session on the sample project: open a selection, pull tags and selection back.

One App session (a real FiftyOne server on a free loopback port) serves the whole module;
the first launch takes 10-40 s on 2 cores.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.fiftyone

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]


@pytest.fixture(scope="module")
def project(fo, sample_copy):
    import workbench as wb

    project = wb.open_project(sample_copy)
    project.name = f"sample-{uuid.uuid4().hex[:8]}"
    yield project
    import workbench.fiftyone_bridge as fb

    name = fb.dataset_name(project)
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


@pytest.fixture(scope="module")
def session(fo, project):
    import workbench.fiftyone_bridge as fb
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = fb.fiftyone_session(project, port=port)
    yield session
    fb.close_fiftyone_session()


def _twelve(project) -> list[str]:
    ids = sorted(project.items["item_id"])
    return ids[5::150][:12]


def test_open_selection_shows_exactly_those_items(project, session):
    import workbench as wb

    ids = _twelve(project)
    assert len(ids) == 12
    again = wb.open_in_fiftyone(ids, project)
    assert again is session  # one App session per kernel, reused
    assert len(session.view) == 12
    assert sorted(session.view.values("item_id")) == ids
    assert session.dataset.name == wb.fiftyone_bridge.dataset_name(project)
    assert len(session.dataset) == len(project.items)

    # a Selection works too, and None shows everything
    sel = wb.Selection()
    sel.select(ids[:3])
    wb.open_in_fiftyone(sel, project)
    assert sorted(session.view.values("item_id")) == ids[:3]
    wb.open_in_fiftyone(None, project)
    assert len(session.view) == len(project.items)


def test_unknown_ids_are_named(project, session):
    import workbench as wb

    with pytest.raises(wb.WorkbenchError, match=r"not in the FiftyOne dataset.*'nope'"):
        wb.open_in_fiftyone(["nope", _twelve(project)[0]], project)


def test_tag_in_fiftyone_pull_back_then_resync_is_noop(project, session):
    import workbench as wb
    import workbench.fiftyone_bridge as fb
    from workbench.tags import TagStore

    ids = _twelve(project)[:4]
    dataset = session.dataset
    dataset.select_by("item_id", ids).tag_samples("relabel")

    stats = wb.sync_tags_from_fiftyone(project, author="fiftyone")
    assert stats.store_added == 4
    store = TagStore.for_project(project)
    assert store.items_with("relabel") == ids
    hist = store.history(tag="relabel")
    assert sorted(hist["item_id"]) == ids
    assert set(hist["author"]) == {"fiftyone"} and set(hist["action"]) == {"add"}

    before = max(dataset.values("last_modified_at"))
    resync = fb.sync_project(project)
    assert (resync.added, resync.updated, resync.deleted) == (0, 0, 0)
    assert resync.unchanged == len(project.items)
    assert (resync.tags_added, resync.tags_removed) == (0, 0)
    assert not resync.wrote
    dataset.reload()
    assert max(dataset.values("last_modified_at")) == before
    assert not wb.sync_tags_from_fiftyone(project).wrote


def test_reopening_pushes_store_tags_without_a_full_sync(project, session):
    import workbench as wb
    import workbench.fiftyone_bridge as fb
    from workbench.tags import TagStore

    item = _twelve(project)[8]
    stats_before = fb.last_sync_stats(project)
    TagStore.for_project(project).add([item], "from-store", author="erin")
    wb.open_in_fiftyone([item], project)
    assert fb.last_sync_stats(project) is stats_before  # no full re-sync
    assert "from-store" in session.view.first().tags
    assert fb.push_tags(project) == (0, 0)


def test_app_selection_becomes_workbench_selection(project, session):
    import workbench as wb

    ids = _twelve(project)[4:7]
    sample_ids = session.dataset.select_by("item_id", ids).values("id")
    session.select_samples(ids=sample_ids)
    sel = wb.Selection()
    got = wb.fiftyone_bridge.selection_from_fiftyone(sel)
    assert got == ids
    assert sel.ids == tuple(ids) and sel.source == "fiftyone"
    session.clear_selected()
    assert wb.fiftyone_bridge.selection_from_fiftyone(sel) == []
    assert sel.ids == ()


def test_button_opens_the_shared_selection_and_links_the_app(project, session):
    import workbench as wb

    sel = wb.Selection()
    button = wb.widgets.FiftyOneButton(project, sel, display="link")
    assert "wb-fiftyone-button" in button.button._dom_classes
    assert "wb-fiftyone-status" in button.status._dom_classes
    ids = _twelve(project)[:5]
    sel.select(ids, source="test")
    assert "5 selected" in button.status.value
    button.button.click()
    assert not button.error_box.value, button.error_box.value
    assert button.n_open == 5
    assert sorted(session.view.values("item_id")) == ids
    assert f'<a href="{session.url}"' in button.status.value

    # pulling the App's selection back into the shared selection
    session.select_samples(ids=session.view.values("id")[:2])
    button.pull_selection_button.click()
    assert sel.ids == tuple(ids[:2]) and sel.source == "fiftyone"

    # pulling tags from the widget records the kernel's author
    session.dataset.select_by("item_id", ids[:1]).tag_samples("from-app")
    os.environ["WORKBENCH_USER"] = "dana"
    try:
        button.pull_tags_button.click()
    finally:
        del os.environ["WORKBENCH_USER"]
    assert "1 added" in button.status.value
    from workbench.tags import TagStore

    hist = TagStore.for_project(project).history(tag="from-app")
    assert hist["author"].tolist() == ["dana"]


def test_button_errors_are_shown_not_swallowed(project, session):
    import workbench as wb

    button = wb.widgets.FiftyOneButton(project, display="link")
    button.pull_selection_button.click()  # before opening: a visible error
    assert "Open the App first" in button.error_box.value
    with pytest.raises(ValueError, match="'display' parameter of FiftyOneButton"):
        wb.widgets.FiftyOneButton(project, display="popup")


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
def test_browser_app_shows_the_twelve_selected_samples(project, session, browser):
    import workbench as wb

    ids = _twelve(project)
    wb.open_in_fiftyone(ids, project)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(session.url, wait_until="domcontentloaded", timeout=120_000)
        page.get_by_text(re.compile(r"^\s*\d[\d,]* samples?\s*$")).first.wait_for(
            timeout=120_000)
        # the App may first draw the whole dataset and apply the session's view a moment
        # later: give the view time to arrive (the count is still asserted below)
        try:
            page.get_by_text(re.compile(r"^\s*12 samples\s*$")).first.wait_for(
                timeout=60_000)
        except Exception:  # noqa: BLE001 - reported by the assertion with the page text
            pass
        # wait for the grid to draw the images before taking the screenshot
        page.wait_for_timeout(3000)
        page.screenshot(path="/tmp/wb_fiftyone_app.png")
        text = page.inner_text("body")
    finally:
        page.close()
    counts = re.findall(r"(\d[\d,]*) samples?\b", text)
    assert counts and int(counts[0].replace(",", "")) == 12, text[:2000]
    assert len(project.items) > 12  # so the 12 is the view, not the dataset


def test_proxy_url_is_used_for_the_link(project, session):
    import workbench as wb

    proxy = "https://hub.example.org/user/a&b/proxy/5151/"
    button = wb.widgets.FiftyOneButton(project, proxy_url=proxy, display="link")
    button.button.click()
    assert not button.error_box.value, button.error_box.value
    assert session.url.startswith(proxy)
    assert "https://hub.example.org/user/a&amp;b/proxy/5151/" in button.status.value
    assert "a&b" not in button.status.value  # escaped


def test_a_custom_named_dataset_is_found_by_open_the_button_and_the_pull(
        fo, project, session, sample_project_copy):
    """After ``to_fiftyone(name=...)`` nobody has to be told the name again."""
    import workbench as wb
    import workbench.fiftyone_bridge as fb
    from workbench.tags import TagStore

    other = sample_project_copy  # same folder as ``project``, another project name
    custom = f"custom-{uuid.uuid4().hex[:8]}"
    try:
        wb.to_fiftyone(other, name=custom)
        ids = _twelve(other)[:3]
        assert wb.open_in_fiftyone(ids, other) is session
        assert session.dataset.name == custom
        assert sorted(session.view.values("item_id")) == ids

        # a new project object on the folder (another kernel) finds it through the state file
        again = wb.open_project(other.root)
        again.name = other.name
        sel = wb.Selection()
        sel.select(ids[:2])
        button = wb.widgets.FiftyOneButton(again, sel, display="link")
        button.button.click()
        assert not button.error_box.value, button.error_box.value
        assert session.dataset.name == custom and button.n_open == 2
        session.dataset.select_by("item_id", ids[:1]).tag_samples("custom-app")
        button.pull_tags_button.click()
        assert not button.error_box.value, button.error_box.value
        assert "1 added" in button.status.value
        assert TagStore.for_project(again).items_with("custom-app") == ids[:1]
        assert not fo.dataset_exists(fb.dataset_name(other))  # no default-named copy
    finally:
        fb.fiftyone_session(project, sync=False)  # back to the module's dataset
        if fo.dataset_exists(custom):
            fo.delete_dataset(custom)


def test_button_in_a_notebook_kernel_opens_the_app_inline(fo, tiny_project):
    """In a kernel FiftyOne refuses remote sessions: the button must still open the App."""
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    name = f"nb-{uuid.uuid4().hex[:8]}"
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from _fo_frames import make_tiny_frames
import workbench as wb
items, ann, preds, classes = make_tiny_frames()
p = wb.Project.from_frames(items=items, annotations=ann, predictions=preds, classes=classes,
                           name={name!r}, root={str(tiny_project.root)!r})
sel = wb.Selection()
sel.select(["i01", "i02", "i03"])
b = wb.widgets.FiftyOneButton(p, sel, port={port})
b.open_app()
print("RESULT", b._mode(), b.n_open, repr(b.error_box.value[:300]))
wb.fiftyone_bridge.close_fiftyone_session()
import fiftyone as fo
fo.delete_dataset(wb.fiftyone_bridge.dataset_name(p))
"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "RESULT inline 3 ''" in text, text[-2000:]
