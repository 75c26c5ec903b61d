"""Fixtures for the error-slicing widgets: a tiny project with images, hostile metadata and
broken media, built on the fly (the sample project comes from tests/conftest.py)."""

from __future__ import annotations

import io

import pandas as pd
import pytest

HOSTILE = '<img src=x onerror="alert(1)">'


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
