"""Box tags in the TagStore: (item, box, tag) keys, audit trail, checks, schema-5 upgrade."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from workbench.errors import SchemaError
from workbench.project import Project
from workbench.tags import SCHEMA_VERSION, TagStore

IDS = ["im1", "im2", "im3", "im4"]


@pytest.fixture
def store(store_url):
    with TagStore(store_url, item_ids=IDS) as s:
        yield s


@pytest.fixture
def detection_project():
    items = pd.DataFrame({"item_id": ["im1", "im2", "im3"], "filepath": ["a.png", "b.png",
                                                                          "c.png"],
                          "width": [100] * 3, "height": [100] * 3})
    box = {"x": [1.0, 20.0, 5.0], "y": [1.0, 20.0, 5.0], "w": [10.0] * 3, "h": [10.0] * 3}
    boxes = pd.DataFrame({"item_id": ["im1", "im1", "im2"], "label": ["cat", "dog", "cat"],
                          **box})
    ann = pd.DataFrame({"item_id": ["im1", "im2"], "annotator": ["ann1", "ann1"],
                        "label": ["cat", "dog"], "x": [1.0, 5.0], "y": [1.0, 5.0],
                        "w": [10.0, 10.0], "h": [10.0, 10.0]})
    pred = pd.DataFrame({"item_id": ["im3"], "run": ["r1"], "label": ["cat"], "x": [1.0],
                         "y": [1.0], "w": [10.0], "h": [10.0], "confidence": [0.9]})
    return Project.from_frames(items, boxes=boxes, annotations=ann, predictions=pred,
                               classes=["cat", "dog"])


def _pairs(frame: pd.DataFrame) -> list[tuple]:
    return [(i, None if pd.isna(b) else b) for i, b in zip(frame["item_id"], frame["box_id"],
                                                            strict=True)]


# ---------------------------------------------------------------- writes and the audit trail


def test_add_remove_box_tags_with_audit_trail(store):
    assert store.add(["im1", "im1", "im2"], "loose", author="alice", reason="box too big",
                     context={"view": "issues"}, box_ids=["im1/b0", "im1/b1", "im2/b0"]) == 3
    cur = store.tags()
    assert list(cur.columns) == ["item_id", "tag", "author", "reason", "tagged_at", "box_id"]
    assert _pairs(cur) == [("im1", "im1/b0"), ("im1", "im1/b1"), ("im2", "im2/b0")]
    assert cur["reason"].tolist() == ["box too big"] * 3
    assert cur["author"].tolist() == ["alice"] * 3
    assert str(cur["tagged_at"].dt.tz) == "UTC"

    assert store.remove(["im1"], "loose", author="bob", reason="fine after all",
                        box_ids=["im1/b1"]) == 1
    assert store.remove(["im1"], "loose", author="bob", box_ids=["im1/b1"]) == 0  # gone
    assert _pairs(store.tags(tag="loose")) == [("im1", "im1/b0"), ("im2", "im2/b0")]

    hist = store.history()
    assert hist["box_id"].tolist() == ["im1/b0", "im1/b1", "im2/b0", "im1/b1"]
    assert hist["action"].tolist() == ["add", "add", "add", "remove"]
    assert hist["author"].tolist() == ["alice"] * 3 + ["bob"]
    assert hist["reason"].iloc[3] == "fine after all"
    assert hist["context"].iloc[0] == {"view": "issues"}
    assert hist["action_key"].nunique() == 2  # one action per call
    assert store.history(box_id="im1/b1")["action"].tolist() == ["add", "remove"]
    assert store.history(item_id="im2")["box_id"].tolist() == ["im2/b0"]
    assert store.integrity_check() == "ok"


def test_box_ids_are_stripped_and_deduplicated(store):
    assert store.add(["im1", "im1", "im1"], "x", author="u",
                     box_ids=[" im1/b0 ", "im1/b0", "im1/b1"]) == 2
    assert store.boxes_with("x")["box_id"].tolist() == ["im1/b0", "im1/b1"]
    assert store.add(("im1",), "x", author="u", box_ids=("im1/b0",)) == 0  # already tagged
    assert store.add("im1", "x", author="u", box_ids="im1/b2") == 1  # single str each
    assert len(store.history()) == 3


def test_idempotency_per_item_box_and_tag_with_action_key(store):
    kw = {"author": "alice", "action_key": "queue-2024-05-01"}
    assert store.add(["im1", "im2"], "relabel", box_ids=["im1/b0", None], **kw) == 2
    assert store.add(["im1", "im2"], "relabel", box_ids=["im1/b0", None], **kw) == 0  # replay
    # the replayed key writes only what it has not written: a new box of im1 and image im3
    assert store.add(["im1", "im1", "im3"], "relabel", box_ids=["im1/b0", "im1/b1", None],
                     **kw) == 2
    hist = store.history()
    assert hist["action_key"].unique().tolist() == ["queue-2024-05-01"]
    # a call writes its image events, then its box events
    assert _pairs(hist) == [("im2", None), ("im1", "im1/b0"), ("im3", None),
                            ("im1", "im1/b1")]
    # a box tag and the image tag of the same item are separate keys
    assert store.add(["im1"], "relabel", author="bob") == 1
    assert store.add(["im1"], "relabel", author="bob", box_ids=["im1/b0"]) == 0
    with pytest.raises(ValueError, match="already used to add the tag 'relabel'"):
        store.remove(["im1"], "relabel", box_ids=["im1/b0"], **kw)
    assert len(store.history()) == 5
    assert store.integrity_check() == "ok"


def test_mixed_image_and_box_tags_items_with_boxes_with_counts(store):
    assert store.add(["im1", "im1", "im2", "im3"], "relabel", author="alice", reason="why",
                     box_ids=[None, "im1/b0", "im2/b0", "im3/b4"]) == 4
    assert store.add(["im4"], "relabel", author="bob") == 1
    assert store.add(["im2"], "blurry", author="bob", box_ids=["im2/b0"]) == 1

    assert store.items_with("relabel") == ["im1", "im2", "im3", "im4"]
    assert store.items_with("blurry") == ["im2"]  # on a box only
    assert store.items_with("nothing") == []
    boxes = store.boxes_with("relabel")
    assert list(boxes.columns) == ["item_id", "box_id", "reason", "author", "tagged_at"]
    assert _pairs(boxes) == [("im1", "im1/b0"), ("im2", "im2/b0"), ("im3", "im3/b4")]
    assert boxes["reason"].tolist() == ["why"] * 3
    assert store.boxes_with("nothing").empty
    assert list(store.boxes_with("nothing").columns) == list(boxes.columns)
    # images, each once: im1 has the tag on the image and on a box
    assert store.counts().to_dict("records") == [{"tag": "relabel", "n_items": 4},
                                                 {"tag": "blurry", "n_items": 1}]
    # the frame sorts by tag, item, then box (the image first)
    assert _pairs(store.tags(tag="relabel")) == [("im1", None), ("im1", "im1/b0"),
                                                 ("im2", "im2/b0"), ("im3", "im3/b4"),
                                                 ("im4", None)]
    assert _pairs(store.tags(["im2"])) == [("im2", "im2/b0"), ("im2", "im2/b0")]
    assert store.tags(["im2"])["tag"].tolist() == ["blurry", "relabel"]

    # removing the image tag leaves the box tag, and the other way round
    assert store.remove(["im1"], "relabel", author="alice") == 1
    assert store.items_with("relabel") == ["im1", "im2", "im3", "im4"]
    assert store.remove(["im1", "im4"], "relabel", author="alice",
                        box_ids=["im1/b0", None]) == 2
    assert store.items_with("relabel") == ["im2", "im3"]
    assert store.counts().set_index("tag")["n_items"].to_dict() == {"relabel": 2, "blurry": 1}
    assert store.integrity_check() == "ok"


# ---------------------------------------------------------------- refused input


@pytest.mark.parametrize("box_ids, error, match", [
    (["im1/b0"], ValueError, r"item_ids has 2 and box_ids has 1"),
    (["im1/b0", "im2/b0", None], ValueError, r"item_ids has 2 and box_ids has 3"),
    (["im1/b0", "  "], SchemaError, r"box_ids\[1\] is empty"),
    (["im1/b0", "x" * 300], SchemaError, "300 characters long; at most 256"),
    (["im1/b0", "bad\u202ebox"], SchemaError, "control or bidirectional"),
    (["im1/b0", 7], TypeError, "must hold box id strs or None"),
    ({"im1": "im1/b0"}, TypeError, "must be a sequence parallel to item_ids"),
])
def test_bad_box_ids_are_refused_and_nothing_is_written(store, box_ids, error, match):
    with pytest.raises(error, match=match):
        store.add(["im1", "im2"], "relabel", author="u", box_ids=box_ids)
    assert store.history().empty and store.tags().empty


def test_unknown_item_with_a_box_is_refused(store):
    with pytest.raises(SchemaError, match=r"not in the project: \['nope'\]"):
        store.add(["im1", "nope"], "relabel", author="u", box_ids=["im1/b0", "nope/b0"])
    assert store.history().empty


def test_for_project_checks_each_box_belongs_to_its_item(detection_project, store_url,
                                                         monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB_URL", store_url)
    store = TagStore.for_project(detection_project)
    # reference boxes, annotators' boxes and predictions are all taggable
    assert store.add(["im1", "im2", "im3", "im3"], "relabel", author="u",
                     box_ids=["im1/b1", "im2/ann1/a0", "im3/r1/p0", None]) == 4
    with pytest.raises(SchemaError, match=r"box id 'im1/b7' \(item 'im1'\) is not a box of the"
                                          r" project.*Nothing was changed"):
        store.add(["im2", "im1"], "x", author="u", box_ids=["im2/b0", "im1/b7"])
    with pytest.raises(SchemaError, match=r"box id 'im1/b0' belongs to item 'im1', not to item"
                                          r" 'im2'"):
        store.add(["im1", "im2"], "x", author="u", box_ids=["im1/b1", "im1/b0"])
    with pytest.raises(SchemaError, match="belongs to item 'im1', not to item 'im3'"):
        store.remove(["im3"], "relabel", author="u", box_ids=["im1/b1"])
    assert len(store.history()) == 4  # the refused calls wrote nothing
    assert store.items_with("x") == []
    # a box the project no longer has (deleted by a relabel, say) keeps a removable tag
    with TagStore(store_url) as plain:  # a store without the project accepts any box id
        assert plain.add(["im2"], "relabel", author="u", box_ids=["im2/b9"]) == 1
    assert store.remove(["im2", "im2"], "relabel", author="u",
                        box_ids=["im2/b9", "im2/b8"]) == 1
    assert store.items_with("relabel") == ["im1", "im2", "im3"]
    assert store.integrity_check() == "ok"


def test_classification_project_has_no_boxes_to_tag(store_url, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB_URL", store_url)
    ann = pd.DataFrame({"item_id": ["a", "b"], "annotator": ["x", "x"], "label": ["c", "d"]})
    project = Project.from_frames(annotations=ann)
    store = TagStore.for_project(project)
    with pytest.raises(SchemaError, match="the project has no boxes.*box_ids=None"):
        store.add(["a"], "relabel", author="u", box_ids=["a/b0"])
    assert store.add(["a"], "relabel", author="u", box_ids=[None]) == 1  # the image itself


def test_fiftyone_sync_reads_image_tags_only(detection_project, store_url, monkeypatch):
    """Box tags are not synced to FiftyOne (its tags are per sample)."""
    from workbench import fiftyone_bridge

    monkeypatch.setenv("WORKBENCH_DB_URL", store_url)
    store = TagStore.for_project(detection_project)
    store.add(["im1"], "relabel", author="u")
    store.add(["im2"], "loose", author="u", box_ids=["im2/b0"])
    assert fiftyone_bridge._store_tags(detection_project, []) == {"im1": ["relabel"]}


# ---------------------------------------------------------------- schema 5 upgrade


def _downgrade_to_schema4(url: str) -> None:
    """Turn a schema-5 store holding image tags only into the schema-4 layout."""
    engine = sa.create_engine(url)
    md = sa.MetaData()
    big_id = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    v4_events = sa.Table(  # exactly schema 4's tag_events
        "tag_events", md,
        sa.Column("event_id", big_id, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("action_id", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("item_id", "action_id", name="uq_tag_events_item_action"))
    with engine.begin() as conn:
        rows = conn.exec_driver_sql(
            "SELECT event_id, item_id, action_id, box_id FROM tag_events ORDER BY event_id"
        ).all()
        assert all(r[3] == "" for r in rows)
        conn.exec_driver_sql("DROP TABLE tag_events")
        conn.exec_driver_sql("DROP TABLE box_current")
        v4_events.create(conn)
        conn.execute(sa.insert(v4_events), [{"event_id": e, "item_id": i, "action_id": a}
                                            for e, i, a, _ in rows])
        if engine.dialect.name == "postgresql":  # as a schema-4 store's sequence would be
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('tag_events', "
                                 "'event_id'), (SELECT max(event_id) FROM tag_events))")
        conn.exec_driver_sql("UPDATE wb_meta SET value = '4' WHERE key = 'schema_version'")
    engine.dispose()


def test_schema4_store_is_upgraded_keeping_every_tag_and_event(store_url):
    assert SCHEMA_VERSION >= 5  # schema 6 (issue 13) adds tables only
    with TagStore(store_url) as first:
        first.add(["a", "b", "c"], "relabel", author="ann", reason="why",
                  context={"run": "r1"}, action_key="k1")
        first.remove(["b"], "relabel", author="bob")
        first.add(["b", "d"], "blurry", author="cid")
        first.set_status(["a"], "sent", queue="relabel", author="ann")
        tags_before, hist_before = first.tags(), first.history()
    _downgrade_to_schema4(store_url)
    store = TagStore(store_url)
    pd.testing.assert_frame_equal(store.tags(), tags_before)
    pd.testing.assert_frame_equal(store.history(), hist_before)
    assert store.history()["box_id"].isna().all()
    assert store.statuses("relabel")["status"].tolist() == ["sent"]
    assert store.integrity_check() == "ok"
    # the old key still replays; the new unique key takes two boxes of one item in one call
    assert store.add(["a", "c", "e"], "relabel", author="ann", action_key="k1") == 1
    assert store.add(["a", "a"], "relabel", author="ann", box_ids=["a/b0", "a/b1"]) == 2
    hist = store.history()
    assert hist["event_id"].tolist()[:len(hist_before)] == hist_before["event_id"].tolist()
    assert hist["event_id"].is_monotonic_increasing and hist["event_id"].is_unique
    assert store.items_with("relabel") == ["a", "c", "e"]
    assert store.integrity_check() == "ok"
    store.close()
    with sa.create_engine(store_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM wb_meta WHERE key = 'schema_version'"
                                    ).scalar() == str(SCHEMA_VERSION)
    with TagStore(store_url) as again:  # opening an upgraded store changes nothing
        pd.testing.assert_frame_equal(again.history(), hist)
