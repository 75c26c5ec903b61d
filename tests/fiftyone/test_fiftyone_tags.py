"""Tags both ways between the tag store and FiftyOne sample tags (no App needed)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.fiftyone


def _sample_tags(ds) -> dict[str, list[str]]:
    ds.reload()
    return {i: sorted(t) for i, t in zip(ds.values("item_id"), ds.values("tags"), strict=True)}


@pytest.fixture
def store(tiny_project):
    from workbench.tags import TagStore

    return TagStore.for_project(tiny_project)


def test_store_tags_become_sample_tags(fo, tiny_project, store, ds_name):
    import workbench.fiftyone_bridge as fb

    store.add(["i01", "i02"], "blurry", author="alice")
    ds = fb.sync_project(tiny_project, name=ds_name).dataset
    tags = _sample_tags(ds)
    assert tags["i01"] == ["blurry"] and tags["i02"] == ["blurry"] and tags["i03"] == []

    # tags changed in the store later are pushed by the next sync (atomic tag ops)
    store.add(["i03"], "relabel", author="alice")
    store.remove(["i01"], "blurry", author="alice")
    stats = fb.sync_project(tiny_project, name=ds_name)
    assert (stats.added, stats.updated, stats.deleted) == (0, 0, 0)
    assert (stats.tags_added, stats.tags_removed) == (1, 1)
    tags = _sample_tags(ds)
    assert tags["i01"] == [] and tags["i02"] == ["blurry"] and tags["i03"] == ["relabel"]
    assert not fb.sync_project(tiny_project, name=ds_name).wrote


def test_pull_turns_app_tags_into_store_events(fo, tiny_project, store, ds_name):
    import workbench as wb

    store.add(["i05"], "keep", author="alice")
    ds = wb.to_fiftyone(tiny_project, name=ds_name)
    ds.select_by("item_id", ["i01", "i02", "i03"]).tag_samples("relabel")  # as the App does
    ds.select_by("item_id", ["i05"]).untag_samples("keep")

    stats = wb.sync_tags_from_fiftyone(tiny_project, author="bob", name=ds_name)
    assert (stats.store_added, stats.store_removed) == (3, 1)
    assert (stats.fiftyone_added, stats.fiftyone_removed) == (0, 0)
    assert store.items_with("relabel") == ["i01", "i02", "i03"]
    assert store.items_with("keep") == []
    hist = store.history(tag="relabel")
    assert set(hist["author"]) == {"bob"} and set(hist["action"]) == {"add"}
    assert hist["context"].iloc[0]["source"] == "fiftyone"
    removed = store.history(tag="keep")
    assert removed["action"].tolist() == ["add", "remove"]
    assert removed["author"].tolist() == ["alice", "bob"]

    again = wb.sync_tags_from_fiftyone(tiny_project, author="bob", name=ds_name)
    assert not again.wrote
    assert len(store.history()) == 5  # idempotent: no new events


def test_store_tag_added_since_last_sync_is_pushed_not_removed(fo, tiny_project, store,
                                                               ds_name):
    import workbench as wb

    ds = wb.to_fiftyone(tiny_project, name=ds_name)
    store.add(["i07"], "occluded", author="carol")       # store side, after the sync
    ds.select_by("item_id", ["i08"]).tag_samples("dup")  # App side
    store.add(["i09"], "both", author="carol")           # both sides, independently
    ds.select_by("item_id", ["i09"]).tag_samples("both")

    stats = wb.sync_tags_from_fiftyone(tiny_project, name=ds_name)
    assert stats.fiftyone_added == 1 and stats.store_added == 1
    tags = _sample_tags(ds)
    assert tags["i07"] == ["occluded"]  # pushed to FiftyOne, not removed from the store
    assert tags["i08"] == ["dup"] and tags["i09"] == ["both"]
    assert store.items_with("occluded") == ["i07"]
    assert store.items_with("dup") == ["i08"]
    assert store.history(tag="dup")["author"].tolist() == ["fiftyone"]
    assert len(store.history(tag="both")) == 1

    # and the store removing a synced tag untags it in FiftyOne on the next pull
    store.remove(["i08"], "dup", author="carol")
    stats = wb.sync_tags_from_fiftyone(tiny_project, name=ds_name)
    assert (stats.fiftyone_removed, stats.store_added, stats.store_removed) == (1, 0, 0)
    assert _sample_tags(ds)["i08"] == []
    assert not wb.sync_tags_from_fiftyone(tiny_project, name=ds_name).wrote


def test_invalid_app_tag_is_reported_not_pulled(fo, tiny_project, store, ds_name):
    import workbench as wb

    ds = wb.to_fiftyone(tiny_project, name=ds_name)
    ds.select_by("item_id", ["i01"]).tag_samples(" padded ")
    ds.select_by("item_id", ["i01"]).tag_samples("fine")
    with pytest.warns(UserWarning, match="padded"):
        stats = wb.sync_tags_from_fiftyone(tiny_project, name=ds_name)
    assert stats.rejected == (" padded ",)
    assert store.items_with("fine") == ["i01"]
    assert _sample_tags(ds)["i01"] == [" padded ", "fine"]  # left in FiftyOne


def test_pull_is_refused_in_read_only_session(fo, tiny_project, ds_name, monkeypatch):
    import workbench as wb
    from workbench.errors import ReadOnlyError

    wb.to_fiftyone(tiny_project, name=ds_name)
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    with pytest.raises(ReadOnlyError, match="sync tags from FiftyOne"):
        wb.sync_tags_from_fiftyone(tiny_project, name=ds_name)


def test_pull_needs_a_synced_dataset(fo, tiny_project, ds_name):
    import workbench as wb
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="run to_fiftyone"):
        wb.sync_tags_from_fiftyone(tiny_project, name=ds_name)
