"""Every dashboard notebook runs on the text sample (``data/sample-text``) in a real kernel:
no cell error, the board is ready, and its galleries show the texts as escaped text cards.

(``make test`` also runs the notebooks under nbval with ``WORKBENCH_PROJECT`` set to the text
sample; the browser test is tests/browser/test_text_browser.py.)"""

from __future__ import annotations

import json

import pytest

from workbench.text_sample import TEXT_SAMPLE_DIR

from .conftest import REPO

NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("0*.ipynb"))
GALLERY_BOARDS = {"01_error_explorer.ipynb", "02_disagreements.ipynb",
                  "04_vendors_and_guidelines.ipynb", "05_see_the_data.ipynb"}

# Appended to each notebook: pick the board's galleries, give them a selection when they
# have none, and report what their cards show.
_PROBE = """
import json
from workbench.widgets.gallery import ItemGallery

def _walk(x):
    yield x
    for c in getattr(x, "children", ()):
        yield from _walk(c)

_galleries = [g for g in _walk(app) if isinstance(g, ItemGallery)]
for _g in _galleries:
    if not _g.ids_on_page:
        _g.selection.select(list(project.items["item_id"][:5]))
_cards = [c for g in _galleries for c in g.cards if c.item_id is not None]
print(json.dumps({
    "ready": "wb-ready" in app._dom_classes,
    "is_text": project.is_text,
    "galleries": len(_galleries),
    "cards": len(_cards),
    "text_cards": sum(c.text is not None and "wb-text" in c.text.value for c in _cards),
    "image_cards": sum(c.image is not None for c in _cards),
    "raw_markup": sum("<script" in c.text.value for c in _cards if c.text is not None),
    "fiftyone_shown": [type(x).__name__ for x in _walk(app)
                       if "wb-fiftyone" in getattr(x, "_dom_classes", ())
                       and x.layout.display != "none"],
}))
"""


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_dashboard_runs_on_the_text_sample(name, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    if not (TEXT_SAMPLE_DIR / "items.csv").exists():
        pytest.fail("data/sample-text is missing: run `make sample` (make test does it)")
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    monkeypatch.setenv("WORKBENCH_PROJECT", str(TEXT_SAMPLE_DIR))
    monkeypatch.setenv("WORKBENCH_USER", "curator-1")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert errors == []
    out = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    board = json.loads(out[0]["text"])
    assert board["ready"] and board["is_text"]
    assert board["image_cards"] == 0 and board["raw_markup"] == 0
    assert board["text_cards"] == board["cards"]
    if name in GALLERY_BOARDS:  # the boards with a gallery show the texts
        assert board["galleries"] >= 1 and board["cards"] > 0
    assert board["fiftyone_shown"] == []
