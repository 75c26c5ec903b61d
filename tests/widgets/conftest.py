"""Fixtures for the error-slicing widgets: a tiny project with images, hostile metadata and
broken media, built on the fly (the sample project comes from tests/conftest.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

HOSTILE = '<img src=x onerror="alert(1)">'
REPO = Path(__file__).resolve().parents[2]


def walk(widget):
    """``widget`` and every widget under it (depth first)."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def dom_classes(widget) -> set:
    """The CSS classes of ``widget`` and of every widget under it."""
    return {c for x in walk(widget) for c in x._dom_classes}


def run_dashboard_notebook(name: str, project_root: Path, monkeypatch) -> tuple[dict, list]:
    """Run ``notebooks/<name>`` on ``project_root`` (``WORKBENCH_PROJECT``) in a kernel.

    Returns what a last cell added here reports about the board (``cls``: the class of
    ``app``, ``task``: the project's task, ``ready``: ``wb-ready`` set) and the error outputs
    of every cell.
    """
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json\nprint(json.dumps({'cls': type(app).__name__, 'task': project.task, "
        "'ready': 'wb-ready' in app._dom_classes}))"))
    monkeypatch.setenv("WORKBENCH_PROJECT", str(project_root))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute()
    out = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    return json.loads(out[0]["text"]), errors


def _png(value: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), color=value).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def tiny_project(tmp_path):
    """12 items, classes a/b/c, two runs; images: ok, missing, corrupt and outside the root."""
    import workbench as wb

    root = tmp_path / "tiny"
    (root / "images").mkdir(parents=True)
    n = 12
    ids = [f"it-{i:02d}" for i in range(n)]
    paths = []
    for i in range(n):
        if i == 1:
            paths.append("images/missing.png")  # never written
        elif i == 2:
            (root / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
            paths.append("images/corrupt.png")
        elif i == 3:
            # a link inside the project that points outside it: refused by media_path
            (root / "images" / "link.png").symlink_to(tmp_path / "outside.png")
            paths.append("images/link.png")
        else:
            (root / "images" / f"{ids[i]}.png").write_bytes(_png(20 * i))
            paths.append(f"images/{ids[i]}.png")
    (tmp_path / "outside.png").write_bytes(_png(0))
    labels = ["a", "b", "c"] * 4
    items = pd.DataFrame({
        "item_id": ids, "filepath": paths, "label": labels,
        "site": [HOSTILE if i == 0 else ("north" if i % 2 else "south") for i in range(n)],
        "score": [float(i) for i in range(n)],
    })
    base = ["a", "b", "c", "a", "a", "c", "a", "b", "b", "a", "c", "c"]
    cand = ["a", "b", "c", "b", "b", "c", "a", "b", "c", "a", "b", "c"]
    preds = pd.DataFrame({
        "item_id": ids * 2, "run": ["base"] * n + ["cand"] * n, "label": base + cand,
        "confidence": [0.5 + i / 50 for i in range(2 * n)],
    })
    ann = pd.DataFrame({"item_id": [ids[0], ids[0], ids[5]],
                        "annotator": ["ann<b>", "zed", "zed"],
                        "label": ["a", "b", "c"]})
    return wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                  classes=["a", "b", "c"], root=root, default_run="base",
                                  name="tiny")
