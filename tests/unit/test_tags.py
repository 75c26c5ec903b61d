"""TagStore: audited events, derived current state, idempotency, validation, durability."""

from __future__ import annotations

import sqlite3
import stat
import unicodedata

import pandas as pd
import pytest

from workbench.errors import SchemaError, StoreError
from workbench.tags import SCHEMA_VERSION, TagStore


@pytest.fixture
def store(store_url):
    with TagStore(store_url, item_ids=[f"i{k}" for k in range(20)] + ["a", "b", "c"]) as s:
        yield s


# ---------------------------------------------------------------- events and state


def test_add_remove_and_derived_state(store):
    assert store.add(["a", "b"], "relabel", author="alice", reason="blurry",
                     context={"run": "baseline", "slice": "scanner=c"}) == 2
    assert store.add(["a", "c"], "relabel", author="bob") == 1  # a already tagged
    assert store.remove(["a", "i1"], "relabel", author="bob", reason="fine") == 1  # i1 lacks it
    assert store.items_with("relabel") == ["b", "c"]
    cur = store.tags()
    assert list(cur.columns) == ["item_id", "tag", "author", "reason", "tagged_at", "box_id"]
    assert cur["item_id"].tolist() == ["b", "c"]
    assert cur["author"].tolist() == ["alice", "bob"]
    assert cur["reason"].iloc[0] == "blurry" and pd.isna(cur["reason"].iloc[1])
    assert str(cur["tagged_at"].dt.tz) == "UTC"
    hist = store.history()
    assert list(hist.columns[:8]) == ["event_id", "item_id", "tag", "action", "author", "reason",
                                      "context", "created_at"]
    assert hist["action"].tolist() == ["add", "add", "add", "remove"]
    assert hist["item_id"].tolist() == ["a", "b", "c", "a"]
    assert hist["context"].iloc[0] == {"run": "baseline", "slice": "scanner=c"}
    assert hist["context"].iloc[2] is None
    assert store.history(item_id="a")["action"].tolist() == ["add", "remove"]
    assert len(store.history(tag="other")) == 0
    assert store.counts().to_dict("records") == [{"tag": "relabel", "n_items": 2}]
    assert store.integrity_check() == "ok"


def test_tags_filter_counts_order_and_undo(store):
    store.add(["a", "b", "c"], "x", author="u")
    store.add(["a"], "y", author="u")
    assert store.tags(["a"])[["item_id", "tag"]].values.tolist() == [["a", "x"], ["a", "y"]]
    assert store.tags(tag="x")["item_id"].tolist() == ["a", "b", "c"]
    assert store.tags(["b", "a"], tag=" y")[["item_id", "tag"]].values.tolist() == [["a", "y"]]
    assert store.tags(tag="never-used").empty
    assert store.counts()["tag"].tolist() == ["x", "y"]
    store.remove(["a", "b", "c"], "x", author="u")  # undo is a remove event
    assert store.items_with("x") == []
    assert store.counts()["tag"].tolist() == ["y"]
    assert len(store.history(tag="x")) == 6
    assert store.tags(["zz-not-tagged"]).empty


def test_action_key_makes_calls_idempotent(store):
    assert store.add(["a", "b"], "t", author="u", action_key="k1") == 2
    assert store.remove(["a"], "t", author="u") == 1
    # a replay of the first call writes nothing, even though 'a' lacks the tag now
    assert store.add(["a", "b"], "t", author="u", action_key="k1") == 0
    assert store.items_with("t") == ["b"]
    # same key, a new item in the batch: only the new item is written
    assert store.add(["a", "c"], "t", author="u", action_key="k1") == 1
    assert store.items_with("t") == ["b", "c"]
    with pytest.raises(ValueError, match="already used to add the tag 't'"):
        store.remove(["b"], "t", author="u", action_key="k1")
    keys = store.history()
    assert keys.groupby(["action_key", "item_id"]).size().max() == 1


def test_normalisation_strip_and_nfc(store):
    decomposed = unicodedata.normalize("NFD", "café")
    store.add(["a"], f"  {decomposed} ", author="u")
    assert store.add(["a"], "café", author="u") == 0
    assert store.items_with(" café") == ["a"]
    assert store.tags()["tag"].tolist() == ["café"]


@pytest.mark.parametrize("tag, match", [
    ("", "empty"),
    ("   ", "empty"),
    ("a\x00b", "control"),
    ("bad\nname", "control"),
    ("evil\u202egnp", "bidirectional"),
    ("x\u2066y", "bidirectional"),
    ("x\u200fy", "bidirectional"),
    ("x" * 65, "at most 64"),
])
def test_bad_tag_names_are_refused_and_change_nothing(store, tag, match):
    with pytest.raises(SchemaError, match=match):
        store.add(["a"], tag, author="u")
    assert store.history().empty


def test_bad_reason_unknown_ids_and_types_change_nothing(store):
    with pytest.raises(SchemaError, match="at most 2000"):
        store.add(["a"], "t", author="u", reason="r" * 2001)
    with pytest.raises(SchemaError, match=r"not in the project: \['nope'\]"):
        store.add(["a", "nope"], "t", author="u")
    with pytest.raises(SchemaError, match="bidirectional"):
        store.add(["a"], "t", author="u", reason="see \u202e here")
    with pytest.raises(SchemaError, match="author is empty"):
        store.add(["a"], "t", author=" ")
    with pytest.raises(TypeError, match="'tag' parameter"):
        store.add(["a"], 5, author="u")
    with pytest.raises(TypeError, match="'context' parameter"):
        store.add(["a"], "t", author="u", context="run=1")
    assert store.history().empty
    # a reason may span lines
    assert store.add(["a"], "t", author="u", reason="line 1\nline 2") == 1


def test_batch_is_all_or_nothing(tmp_path):
    path = tmp_path / "tags.db"
    store = TagStore(path)
    ids = [f"item-{k}" for k in range(3000)]
    # a real failure in the middle of the batch: a trigger refusing one row
    con = sqlite3.connect(path)
    con.execute("CREATE TRIGGER boom BEFORE INSERT ON tag_current WHEN NEW.item_id = 'item-2500'"
                " BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="refused by test trigger"):
        store.add(ids, "big", author="u")
    assert store.history().empty and store.tags().empty
    sqlite3.connect(path).execute("DROP TRIGGER boom").connection.commit()
    assert store.add(ids, "big", author="u") == 3000
    assert len(store.items_with("big")) == 3000


def test_fast_read_path_matches_plain_rows(store_url):
    store = TagStore(store_url)
    ids = [f"it{k:04d}" for k in range(2500)] + ["odd\x1fid", 'comma, "quote"\nline', "é"]
    store.add(ids, "a", author="u", reason="why")
    store.add(ids[::3], "b", author="v")
    full = store.tags()  # column-wise path (SQLite group_concat, PostgreSQL COPY)
    plain = store.tags(ids)  # per-row path
    pd.testing.assert_frame_equal(full, plain)
    assert len(full) == 2503 + 835
    assert set(full["item_id"]) == set(ids)


def test_for_project_with_and_without_folder(tmp_path, monkeypatch):
    import workbench as wb

    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    items = pd.DataFrame({"item_id": ["p", "q"], "label": ["x", "y"]})
    memory = wb.Project.from_frames(items=items)
    store = TagStore.for_project(memory)
    assert not store.persistent and store.path is None
    assert TagStore.for_project(memory) is store  # widgets of one project share the store
    with pytest.raises(SchemaError, match="not in the project"):
        store.add(["r"], "t", author="u")
    on_disk = wb.Project.from_frames(items=items, root=tmp_path)
    disk_store = TagStore.for_project(on_disk)
    assert disk_store.path == (tmp_path / ".workbench" / "workbench.db").resolve()
    disk_store.add(["p"], "t", author="u")
    assert TagStore(root=tmp_path).items_with("t") == ["p"]


def test_env_url_and_sqlite_settings(tmp_path, monkeypatch):
    target = tmp_path / "shared.db"
    monkeypatch.setenv("WORKBENCH_DB_URL", f"sqlite:///{target}")
    store = TagStore(root=tmp_path / "ignored")
    assert store.path == target.resolve()
    store.add(["a"], "t", author="u")
    con = sqlite3.connect(target)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    assert con.execute("SELECT value FROM wb_meta").fetchone()[0] == str(SCHEMA_VERSION)


def test_write_lock_taken_at_begin(tmp_path):
    """A second writer waits at BEGIN IMMEDIATE (busy timeout), instead of failing later."""
    path = tmp_path / "t.db"
    store = TagStore(path, busy_timeout=0.2, max_attempts=1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.add(["a"], "t", author="u")
        assert store.tags().empty  # readers are not blocked by the writer (WAL)
    finally:
        holder.execute("ROLLBACK")
    assert store.add(["a"], "t", author="u") == 1


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "t.db"
    with TagStore(path) as first:
        first.add(["a"], "t", author="u")
    con = sqlite3.connect(path)
    con.execute("UPDATE wb_meta SET value = ? WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"newer workbench.*pip install -U workbench"):
        TagStore(path)
    assert path.read_bytes() == before


def test_older_schema_is_upgraded(tmp_path):
    """A schema-1 store (events only) gets the current-state table rebuilt from its events."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE wb_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO wb_meta VALUES ('schema_version', '1');
        CREATE TABLE tag_events (event_id INTEGER PRIMARY KEY, item_id TEXT NOT NULL,
            tag TEXT NOT NULL, action VARCHAR(8) NOT NULL, author TEXT NOT NULL, reason TEXT,
            context TEXT, created_at BIGINT NOT NULL, action_key VARCHAR(200) NOT NULL,
            UNIQUE (action_key, item_id));
        INSERT INTO tag_events VALUES (1, 'a', 'x', 'add', 'ann', 'old', NULL, 1000000, 'k1');
        INSERT INTO tag_events VALUES (2, 'b', 'x', 'add', 'ann', 'old', NULL, 1000000, 'k1');
        INSERT INTO tag_events VALUES (3, 'a', 'x', 'remove', 'ann', NULL, NULL, 3000000, 'k2');
        INSERT INTO tag_events VALUES (4, 'a', 'y', 'add', 'bob', 'r', NULL, 4000000, 'k3');
    """)
    con.commit()
    con.close()
    store = TagStore(path)
    assert store.tags()[["item_id", "tag", "author"]].values.tolist() == [
        ["b", "x", "ann"], ["a", "y", "bob"]]  # sorted by tag, then item
    assert sqlite3.connect(path).execute("SELECT value FROM wb_meta").fetchone()[0] == str(
        SCHEMA_VERSION)
    # the old rows are kept, never dropped
    assert sqlite3.connect(path).execute("SELECT count(*) FROM tag_events_v1").fetchone()[0] == 4
    assert len(store.history()) == 4
    assert store.add(["b"], "x", author="u") == 0
    assert store.add(["b", "c"], "x", author="u", action_key="k1") == 1  # k1 replay: c only
    assert store.history(item_id="b")["action_key"].tolist() == ["k1"]
    assert store.integrity_check() == "ok"


def test_corrupt_store_gets_clear_error_and_is_kept(tmp_path):
    path = tmp_path / ".workbench" / "workbench.db"
    path.parent.mkdir()
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"workbench\.db.*corrupt.*backup"):
        TagStore(root=tmp_path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_read_only_store_reads_but_refuses_writes(tmp_path):
    path = tmp_path / "t.db"
    with TagStore(path) as first:
        first.add(["a"], "t", author="u")
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        store = TagStore(path)
        assert store.read_only
        assert store.items_with("t") == ["a"]
        with pytest.raises(StoreError, match=r"t\.db.*read-only.*chmod"):
            store.add(["b"], "t", author="u")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert TagStore(path).items_with("t") == ["a"]


def test_status_events_are_audited(store):
    assert store.set_status(["a", "b"], "sent", queue="relabel", author="u") == 2
    assert store.set_status(["a"], "sent", queue="relabel", author="u") == 0
    assert store.set_status(["a"], "relabeled", queue="relabel", author="v",
                            action_key="imp-1") == 1
    assert store.set_status(["a"], "relabeled", queue="relabel", author="v",
                            action_key="imp-1") == 0
    cur = store.statuses("relabel")
    assert cur[["item_id", "status", "author"]].values.tolist() == [
        ["a", "relabeled", "v"], ["b", "sent", "u"]]
    assert store.status_history(item_id="a")["status"].tolist() == ["sent", "relabeled"]
    with pytest.raises(ValueError, match="'status' parameter"):
        store.set_status(["a"], "done", queue="relabel", author="u")


@pytest.mark.postgres
def test_postgresql_survives_dropped_connections(pg_url):
    import psycopg

    store = TagStore(pg_url)
    assert store.add(["a"], "t", author="u") == 1
    dbname = pg_url.rsplit("/", 1)[1]
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + \
        "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", [dbname]).fetchone()[0]
    assert killed >= 1  # the store's pooled connection is gone
    assert store.add(["b"], "t", author="u", action_key="after-drop") == 1
    assert store.items_with("t") == ["a", "b"]
    assert store.integrity_check() == "ok"


def test_store_url_forms(tmp_path):
    store = TagStore(str(tmp_path / "plain.db"))  # a plain path is a SQLite file
    assert store.path == (tmp_path / "plain.db").resolve() and store.persistent
    assert "memory" in repr(TagStore("sqlite://"))
    with pytest.raises(StoreError, match="supports SQLite and PostgreSQL"):
        TagStore("mysql://u@h/db")


# ---------------------------------------------------------------- store package (issue 10)


def test_column_wise_read_matches_rows_when_tag_ids_are_not_alphabetical(store_url):
    """The whole-table read (one aggregate per tag) equals the per-row read, on both backends."""
    store = TagStore(store_url)
    ids = [f"it{k:04d}" for k in range(1500)] + ["é", "a,b", 'q"uote', "new\nline"]
    store.add(ids[::2], "zeta", author="u", reason="z")  # created first: smallest tag id
    store.add(ids, "beta", author="v")
    store.add(ids[::5], "alpha", author="w", reason="a\nb")
    store.remove(ids[::10], "beta", author="v")
    full = store.tags()
    pd.testing.assert_frame_equal(full, store.tags(ids))
    assert full["tag"].tolist() == sorted(full["tag"].tolist())
    for tag, part in full.groupby("tag", sort=False):
        assert part["item_id"].tolist() == sorted(part["item_id"].tolist()), tag
    assert len(full) == len(ids[::2]) + len(ids) - len(ids[::10]) + len(ids[::5])
    assert store.integrity_check() == "ok"


def test_id_lists_beyond_sqlite_parameter_limit(store_url):
    """A list of ids is one bound parameter: 40,000 ids (> SQLite's 32,766) in one call."""
    ids = [f"item-{k:05d}" for k in range(40_000)]
    store = TagStore(store_url, item_ids=ids)
    assert store.add(ids, "t", author="u") == 40_000
    assert store.add(ids, "t", author="u") == 0
    assert len(store.tags(ids[::-1])) == 40_000
    assert store.set_status(ids, "queued", queue="t", author="u") == 40_000
    assert store.set_status(ids[:30_000], "sent", queue="t", author="u") == 30_000
    assert store.statuses("t", ids)["status"].value_counts().to_dict() == {
        "sent": 30_000, "queued": 10_000}
    assert store.remove(ids[1:], "t", author="u") == 39_999
    assert store.items_with("t") == ids[:1]
    assert store.history()["item_id"].tolist()[:3] == ids[:3]  # events in the order given


def test_schema1_store_is_upgraded_on_both_backends(store_url):
    """A schema-1 store (flat events, no current table) upgrades on SQLite and PostgreSQL."""
    import sqlalchemy as sa

    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        for sql in [
            "CREATE TABLE wb_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO wb_meta VALUES ('schema_version', '1')",
            "CREATE TABLE tag_events (event_id INTEGER PRIMARY KEY, item_id TEXT NOT NULL, "
            "tag TEXT NOT NULL, action VARCHAR(8) NOT NULL, author TEXT NOT NULL, reason TEXT, "
            "context TEXT, created_at BIGINT NOT NULL, action_key VARCHAR(200) NOT NULL, "
            "UNIQUE (action_key, item_id))",
            "INSERT INTO tag_events VALUES (1, 'a', 'x', 'add', 'ann', 'old', NULL, 1000000, 'k1')",
            "INSERT INTO tag_events VALUES (2, 'b', 'x', 'add', 'ann', 'old', NULL, 1000000, 'k1')",
            "INSERT INTO tag_events VALUES (3, 'a', 'x', 'remove', 'ann', NULL, NULL, 3000000, "
            "'k2')",
            "INSERT INTO tag_events VALUES (4, 'a', 'y', 'add', 'bob', 'r', '{\"run\": \"r1\"}', "
            "4000000, 'k3')",
        ]:
            conn.exec_driver_sql(sql)
    engine.dispose()
    store = TagStore(store_url)
    assert store.tags()[["item_id", "tag", "author"]].values.tolist() == [
        ["b", "x", "ann"], ["a", "y", "bob"]]
    hist = store.history()
    assert hist["event_id"].tolist() == [1, 2, 3, 4]
    assert hist["context"].iloc[3] == {"run": "r1"}
    assert str(hist["created_at"].iloc[0]) == "1970-01-01 00:00:01+00:00"
    assert store.add(["b", "c"], "x", author="u", action_key="k1") == 1  # k1 replay: c only
    assert store.integrity_check() == "ok"
    store.close()
    with sa.create_engine(store_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM tag_events_v1").scalar() == 4
        assert conn.exec_driver_sql(
            "SELECT value FROM wb_meta WHERE key = 'schema_version'").scalar() == str(
            SCHEMA_VERSION)


def test_schema3_store_gets_its_current_state_rebuilt(store_url):
    """Schema 3 kept author/reason/time in tag_current; the upgrade rebuilds it from events."""
    import sqlalchemy as sa

    with TagStore(store_url) as first:
        first.add(["a", "b"], "x", author="ann", reason="why")
        first.remove(["a"], "x", author="ann")
        first.add(["c"], "y", author="bob")
        first.set_status(["b"], "sent", queue="x", author="ann")
        before = first.tags()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE tag_current")
        conn.exec_driver_sql(
            "CREATE TABLE tag_current (tag_id BIGINT NOT NULL, item_id TEXT NOT NULL, "
            "author_id BIGINT NOT NULL, reason_id BIGINT, tagged_at BIGINT NOT NULL, "
            "PRIMARY KEY (tag_id, item_id))")
        conn.exec_driver_sql("INSERT INTO tag_current VALUES (999, 'stale', 1, NULL, 0)")
        conn.exec_driver_sql("UPDATE wb_meta SET value = '3' WHERE key = 'schema_version'")
    engine.dispose()
    store = TagStore(store_url)
    pd.testing.assert_frame_equal(store.tags(), before)
    assert store.statuses("x")["status"].tolist() == ["sent"]
    assert len(store.history()) == 4
    assert store.integrity_check() == "ok"


def test_store_modules_stay_small():
    """Each class of the store package fits on a few screens (issue 10: about 300 lines)."""
    import ast
    from pathlib import Path

    import workbench.store

    folder = Path(workbench.store.__file__).parent
    sizes = {}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                sizes[node.name] = node.end_lineno - node.lineno + 1
    assert {"TagStore", "StoreEngine", "Schema", "TagEvents", "CurrentTags",
            "QueueStatuses"} <= set(sizes)
    assert max(sizes.values()) <= 300, sizes
