"""The text sample (``data/sample-text``) served in Chromium: every dashboard renders air-gapped
without an error, the galleries show escaped text cards (no image, no FiftyOne button), and
"more" expands a long text in place without picking the card."""

from __future__ import annotations

import shutil

import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import curator_notebooks_present, is_local
except ImportError:
    from _browser import curator_notebooks_present, is_local

from workbench.serve import ROLE_NOTEBOOKS
from workbench.text_sample import TEXT_SAMPLE_DIR

pytestmark = pytest.mark.skipif(
    not curator_notebooks_present(),
    reason="the curator dashboards (notebooks/01-03) are not all in the repository yet")

_VISIBLE_CARDS = ("() => [...document.querySelectorAll('.wb-gallery .wb-card')]"
                  ".filter(c => c.offsetParent !== null).length")


@pytest.fixture(scope="module")
def text_root(tmp_path_factory):
    """A writable copy of the text sample (its own tag database)."""
    if not (TEXT_SAMPLE_DIR / "items.csv").exists():
        pytest.fail("data/sample-text is missing: run `make sample` (make test does it)")
    root = tmp_path_factory.mktemp("text") / "project"
    shutil.copytree(TEXT_SAMPLE_DIR, root, ignore=shutil.ignore_patterns(".workbench"))
    return root


def _external(pg) -> list[str]:
    return sorted({u for u in pg.requests if not is_local(u)})


def _check_page(pg) -> None:
    assert _external(pg) == []
    assert pg.dialogs == []  # no docstring's markup ran (the html module's docs hold tags)
    assert pg.locator(".jp-OutputArea-output[data-mime-type*='stderr']").count() == 0
    assert pg.locator(".wb-card-text script, .wb-card-text img, .wb-card-image").count() == 0
    for button in pg.locator(".wb-fiftyone").all():  # hidden in a text project
        assert not button.is_visible()


@pytest.mark.parametrize("name", ROLE_NOTEBOOKS["curator"])
def test_text_dashboard_renders_air_gapped(page, serve, text_root, open_dashboard, name):
    srv = serve(text_root, "curator")
    open_dashboard(page, srv, name.removesuffix(".ipynb"))
    _check_page(page)


def test_error_explorer_gallery_shows_texts_that_expand(page, serve, text_root,
                                                        open_dashboard):
    import workbench as wb
    from workbench.slicing import cell_items, confusion_table
    from workbench.widgets.gallery import TEXT_PREVIEW_CHARS

    project = wb.open_project(text_root)
    errors = project.errors()
    table = confusion_table(errors)
    classes = [str(c) for c in table.index]
    true, pred = max(((t, p) for t in table.index for p in table.columns if t != p),
                     key=lambda tp: table.loc[tp[0], tp[1]])
    srv = serve(text_root, "curator")
    open_dashboard(page, srv, "01_error_explorer")
    k = len(classes)
    point = page.locator(".wb-confusion .js-plotly-plot .scatterlayer .point").nth(
        classes.index(str(true)) * k + classes.index(str(pred)))
    box = point.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expected = min(int(table.loc[true, pred]), 24)  # the cell's items, one gallery page
    page.wait_for_function(f"n => ({_VISIBLE_CARDS})() === n", arg=expected, timeout=30_000)
    # every visible card shows its text (none an image)
    page.wait_for_function(
        "n => [...document.querySelectorAll('.wb-gallery .wb-card')]"
        ".filter(c => c.offsetParent !== null && c.querySelector('.wb-card-text .wb-text') &&"
        " c.querySelector('.wb-card-text .wb-text').innerText.trim().length > 0).length === n",
        arg=expected, timeout=30_000)
    texts = [t for t in page.locator(".wb-gallery .wb-card-text .wb-text").all()
             if t.is_visible()]
    # the texts are the items' own texts, as text
    shown = "\n".join(t.inner_text() for t in texts)
    first_words = [" ".join(project.item_text(i).split()[:4]) for i in project.items["item_id"]]
    assert any(words in " ".join(shown.split()) for words in first_words)
    # "more" opens a long text in place and does not pick the card
    ids = sorted(cell_items(errors, true, pred))[:expected]
    assert any(len(project.item_text(i)) > TEXT_PREVIEW_CHARS for i in ids)
    more = page.locator(".wb-gallery .wb-card-text details.wb-text-more").first
    more.locator("summary").click()
    page.wait_for_timeout(500)
    assert more.evaluate("d => d.open") is True
    card = more.locator("xpath=ancestor::*[contains(concat(' ', @class, ' '), ' wb-card ')][1]")
    assert "wb-card" in card.get_attribute("class").split()
    assert "wb-picked" not in card.get_attribute("class").split()
    _check_page(page)
