"""Box tags and FiftyOne tag sync: only image tags travel; box tags stay in the store."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

pytestmark = pytest.mark.fiftyone

SIZES = {"a": (100, 80), "b": (64, 48), "c": (120, 90)}


@pytest.fixture
def det_project(tmp_path):
    from PIL import Image

    import workbench as wb

    root = tmp_path / "det"
    (root / "images").mkdir(parents=True)
    for item_id, (w, h) in SIZES.items():
        Image.new("L", (w, h), 128).save(root / "images" / f"{item_id}.png")
    items = pd.DataFrame({"item_id": list(SIZES),
                          "filepath": [f"images/{i}.png" for i in SIZES],
                          "width": [w for w, _ in SIZES.values()],
                          "height": [h for _, h in SIZES.values()]})
    boxes = pd.DataFrame([("a", "cat", 10, 10, 20, 20), ("b", "dog", 5, 5, 10, 10),
                          ("c", "cat", 1, 1, 30, 30)],
                         columns=["item_id", "label", "x", "y", "w", "h"])
    return wb.Project.from_frames(items=items, boxes=boxes, classes=["cat", "dog"],
                                  name=f"det-{uuid.uuid4().hex[:8]}", root=root)


def _sample_tags(ds) -> dict[str, list[str]]:
    ds.reload()
    return {i: sorted(t) for i, t in zip(ds.values("item_id"), ds.values("tags"), strict=True)}


def _pairs(frame) -> list[tuple]:
    return [(i, None if pd.isna(b) else b) for i, b in zip(frame["item_id"], frame["box_id"],
                                                            strict=True)]


def test_box_tags_are_not_synced_and_survive_pulls(fo, det_project, ds_name):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    store = wb.TagStore.for_project(det_project)
    store.add(["a"], "relabel", author="alice")
    store.add(["b", "c"], "loose", author="alice", box_ids=["b/b0", "c/b0"])
    ds = fb.sync_project(det_project, name=ds_name).dataset
    assert _sample_tags(ds) == {"a": ["relabel"], "b": [], "c": []}

    pulled = wb.sync_tags_from_fiftyone(det_project, author="bob", name=ds_name)
    assert not pulled.wrote  # box tags are neither pushed nor taken as removed in the App
    assert _pairs(store.boxes_with("loose")) == [("b", "b/b0"), ("c", "c/b0")]

    # the App tags image b 'loose': an image tag of b, beside its box's tag
    ds.select_by("item_id", ["b"]).tag_samples("loose")
    pulled = wb.sync_tags_from_fiftyone(det_project, author="bob", name=ds_name)
    assert (pulled.store_added, pulled.store_removed) == (1, 0)
    assert _pairs(store.tags(tag="loose")) == [("b", None), ("b", "b/b0"), ("c", "c/b0")]

    # and untagging it in the App removes the image tag only
    ds.select_by("item_id", ["b"]).untag_samples("loose")
    pulled = wb.sync_tags_from_fiftyone(det_project, author="bob", name=ds_name)
    assert (pulled.store_added, pulled.store_removed) == (0, 1)
    assert _pairs(store.tags(tag="loose")) == [("b", "b/b0"), ("c", "c/b0")]
    assert store.integrity_check() == "ok"
