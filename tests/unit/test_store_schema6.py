"""Store schema 6: guideline revisions, label decisions and QC rounds; upgrade from schema 5."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from workbench.errors import SchemaError, StoreError
from workbench.project import Project
from workbench.tags import SCHEMA_VERSION, TagStore

IDS = ["a", "b", "c", "d"]
NEW_TABLES = ("guideline_revisions", "label_decisions", "qc_rounds", "qc_round_items")


@pytest.fixture
def store(store_url):
    with TagStore(store_url, item_ids=IDS) as s:
        yield s


def _version(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.exec_driver_sql(
            "SELECT value FROM wb_meta WHERE key = 'schema_version'").scalar()
    engine.dispose()
    return value


def _downgrade_to_schema5(url: str) -> None:
    """Turn a schema-6 store into the schema-5 layout (no guideline/decision/QC tables)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name in NEW_TABLES:
            conn.exec_driver_sql(f"DROP TABLE {name}")
        conn.exec_driver_sql("UPDATE wb_meta SET value = '5' WHERE key = 'schema_version'")
    engine.dispose()


# ---------------------------------------------------------------- upgrade


def test_schema5_store_is_upgraded_in_place_keeping_everything(store_url):
    assert SCHEMA_VERSION == 6
    with TagStore(store_url) as first:
        first.add(["a", "b"], "relabel", author="ann", reason="why", context={"run": "r"},
                  action_key="k1")
        first.add(["a", "a"], "loose", author="ann", box_ids=["a/b0", "a/b1"])
        first.remove(["b"], "relabel", author="bob")
        first.set_status(["a"], "sent", queue="relabel", author="ann")
        tags, hist = first.tags(), first.history()
        statuses, status_hist = first.statuses("relabel"), first.status_history()
    _downgrade_to_schema5(store_url)
    assert _version(store_url) == "5"
    with TagStore(store_url) as store:
        pd.testing.assert_frame_equal(store.tags(), tags)
        pd.testing.assert_frame_equal(store.history(), hist)
        pd.testing.assert_frame_equal(store.statuses("relabel"), statuses)
        pd.testing.assert_frame_equal(store.status_history(), status_hist)
        assert store.integrity_check() == "ok"
        insp_engine = sa.create_engine(store_url)
        assert set(NEW_TABLES) <= set(sa.inspect(insp_engine).get_table_names())
        insp_engine.dispose()
        assert store.decisions.frame().empty and store.guidelines.frame().empty
        assert store.qc_rounds.frame().empty
        # the old action key still replays; the new tables take writes
        assert store.add(["a", "b"], "relabel", author="ann", action_key="k1") == 0
        assert store.decisions.add(["a"], ["cat"], author="lead") == 1
        assert store.guidelines.add("cat|dog", "Ears.", author="lead") == 1
    assert _version(store_url) == str(SCHEMA_VERSION)
    with TagStore(store_url) as again:  # opening an upgraded store changes nothing
        pd.testing.assert_frame_equal(again.history(), hist)
        assert again.decisions.frame()["label"].tolist() == ["cat"]


def test_a_newer_schema_is_refused_untouched(store_url):
    TagStore(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE wb_meta SET value = '7' WHERE key = 'schema_version'")
    engine.dispose()
    with pytest.raises(StoreError, match="newer workbench"):
        TagStore(store_url)
    assert _version(store_url) == "7"


# ---------------------------------------------------------------- decisions


def test_decisions_are_append_only_and_the_latest_per_item_wins(store):
    assert store.decisions.add(["a", "b"], ["cat", "dog"], author="lead", reason="checked") == 2
    assert store.decisions.add("a", "dog", author="lead2") == 1
    frame = store.decisions.frame()
    assert list(frame.columns) == ["item_id", "label", "author", "reason", "decided_at",
                                   "decision_id"]
    assert frame[["item_id", "label", "author"]].values.tolist() == [
        ["a", "dog", "lead2"], ["b", "dog", "lead"]]
    assert str(frame["decided_at"].dt.tz) == "UTC"
    assert frame["decision_id"].dtype == "int64"
    hist = store.decisions.history("a")
    assert hist["label"].tolist() == ["cat", "dog"]
    assert hist["decision_id"].is_monotonic_increasing
    assert pd.isna(hist["reason"].iloc[1]) and hist["reason"].iloc[0] == "checked"
    assert len(store.decisions.history()) == 3
    assert store.decisions.frame(["b", "zz"])["item_id"].tolist() == ["b"]
    # one item twice in one call: the later entry wins
    store.decisions.add(["c", "c"], ["x", "y"], author="lead")
    assert store.decisions.frame(["c"])["label"].tolist() == ["y"]


@pytest.mark.parametrize("item_ids, labels, error, match", [
    (["a", "b"], ["cat"], ValueError, "1 labels for 2 item ids"),
    (["a", "zz"], ["cat", "dog"], SchemaError, r"not in the project: \['zz'\]"),
    (["a", ""], ["cat", "dog"], SchemaError, "empty value at position 1"),
    (["a", None], ["cat", "dog"], SchemaError, "missing value"),
    (["a"], [" "], SchemaError, "empty value"),
    (["a"], ["ca\u202et"], SchemaError, "bidirectional"),
])
def test_bad_decisions_write_nothing(store, item_ids, labels, error, match):
    with pytest.raises(error, match=match):
        store.decisions.add(item_ids, labels, author="lead")
    assert store.decisions.history().empty


def test_decisions_need_an_author(store):
    with pytest.raises(TypeError, match="'author'"):
        store.decisions.add(["a"], ["cat"], author=None)
    with pytest.raises(SchemaError, match="author is empty"):
        store.decisions.add(["a"], ["cat"], author="  ")
    assert store.decisions.history().empty


def test_project_store_checks_decisions_against_the_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB_URL", f"sqlite:///{tmp_path / 'p.db'}")
    items = pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "dog"]})
    project = Project.from_frames(items, classes=["cat", "dog"])
    store = TagStore.for_project(project)
    with pytest.raises(SchemaError, match=r"\['bird'\] are not classes"):
        store.decisions.add(["a"], ["bird"], author="lead")
    assert store.decisions.add(["a"], ["dog"], author="lead") == 1
    assert store.decisions.history()["label"].tolist() == ["dog"]


def test_concurrent_decision_writers_lose_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    TagStore(url).close()
    errors = []

    def writer(k):
        try:
            with TagStore(url) as s:
                for n in range(15):
                    s.decisions.add([f"i{k}-{n}"], ["x"], author=f"w{k}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with TagStore(url) as s:
        hist = s.decisions.history()
    assert len(hist) == 45 and hist["decision_id"].is_unique


def test_read_only_store_refuses_decisions(tmp_path):
    path = tmp_path / "ro.db"
    with TagStore(f"sqlite:///{path}") as s:
        s.decisions.add(["a"], ["cat"], author="lead")
    path.chmod(0o444)
    try:
        with TagStore(f"sqlite:///{path}") as s:
            assert s.decisions.frame()["label"].tolist() == ["cat"]
            with pytest.raises(StoreError, match="read-only"):
                s.decisions.add(["a"], ["dog"], author="lead")
    finally:
        path.chmod(0o644)


# ---------------------------------------------------------------- guidelines and QC rounds


def test_guideline_revisions_are_kept_as_typed(store):
    text = "# 1 vs 7\n\nA 7 has a bar.\t<script>x</script>"
    first = store.guidelines.add("1|7", text, author="lead", reason="cho",
                                 effective_at=1_700_000_000_000_000, effective_batch="W04",
                                 examples={"a": "do", "b": "don't"})
    second = store.guidelines.add("1", "Just a stroke.", author="lead")
    assert (first, second) == (1, 2)
    frame = store.guidelines.frame()
    assert frame["revision_id"].tolist() == [1, 2]
    row = frame.iloc[0]
    assert row["text"] == text and row["examples"] == {"a": "do", "b": "don't"}
    assert row["effective_batch"] == "W04"
    assert row["effective_at"] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert frame.iloc[1]["examples"] == {} and pd.isna(frame.iloc[1]["effective_batch"])
    assert store.guidelines.frame("1")["revision_id"].tolist() == [2]
    with pytest.raises(SchemaError, match="'do' or"):
        store.guidelines.add("1", "x", author="lead", examples={"a": "maybe"})
    with pytest.raises(SchemaError, match="text is empty"):
        store.guidelines.add("1", "  \n", author="lead")
    assert len(store.guidelines.frame()) == 2


def test_qc_rounds_are_written_whole_and_read_back(store):
    plan = pd.DataFrame({"item_id": ["a", "a", "b", "b", "c", "c"],
                         "slot": [0, 0, 1, 1, 2, 2], "annotator_slot": [0, 1] * 3,
                         "is_gold": [False, False, True, True, False, False]})
    rid = store.qc_rounds.create("round 1", plan, author="lead",
                                 params={"n": 3, "overlap": 2, "gold_share": 0.3})
    assert rid == 1
    items = store.qc_rounds.items(rid)
    assert list(items.columns) == ["round_id", "item_id", "slot", "annotator_slot", "is_gold"]
    assert items["item_id"].tolist() == ["a", "a", "b", "b", "c", "c"]
    assert items["is_gold"].tolist() == [False, False, True, True, False, False]
    rounds = store.qc_rounds.frame()
    assert rounds[["round_id", "name", "n_items", "n_gold"]].values.tolist() == [
        [1, "round 1", 3, 1]]
    assert rounds.iloc[0]["params"] == {"gold_share": 0.3, "n": 3, "overlap": 2}
    with pytest.raises(SchemaError, match=r"known rounds: \[1\]"):
        store.qc_rounds.items(99)
    dup = pd.concat([plan, plan.iloc[:1]])
    with pytest.raises(SchemaError, match="appears twice in annotator slot 0"):
        store.qc_rounds.create("dup", dup, author="lead")
    with pytest.raises(SchemaError, match="not in the project"):
        store.qc_rounds.create("bad", plan.assign(item_id="zz" + plan["item_id"]),
                               author="lead")
    with pytest.raises(SchemaError, match="lacks the column"):
        store.qc_rounds.create("bad", plan.drop(columns="is_gold"), author="lead")
    assert len(store.qc_rounds.frame()) == 1
