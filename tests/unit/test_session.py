"""session: the author comes from the server environment; read-only roles refuse writes."""

from __future__ import annotations

import getpass

import pytest

from workbench.errors import ReadOnlyError, WorkbenchError
from workbench.session import can_write, current_author, require_write


def test_author_order(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "alice")
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-bob")
    assert current_author() == "alice"
    monkeypatch.delenv("WORKBENCH_USER")
    assert current_author() == "hub-bob"
    monkeypatch.delenv("JUPYTERHUB_USER")
    assert current_author() == getpass.getuser()
    monkeypatch.setenv("WORKBENCH_USER", "   ")
    assert current_author() == getpass.getuser()


def test_author_from_the_configured_request_header(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "server-wide")
    monkeypatch.setenv("WORKBENCH_USER_HEADER", "X-Forwarded-User")
    monkeypatch.setenv("HTTP_X_FORWARDED_USER", " dana@example.org ")
    assert current_author() == "dana@example.org"  # the viewer's own, over the server's
    monkeypatch.delenv("HTTP_X_FORWARDED_USER")
    with pytest.raises(WorkbenchError, match="'X-Forwarded-User' request header.*nothing was"):
        current_author()
    monkeypatch.delenv("WORKBENCH_USER_HEADER")
    assert current_author() == "server-wide"


@pytest.mark.parametrize("role, writable", [
    (None, True), ("", True), ("curator", True), ("engineer", True), ("manager", False),
    ("Manager ", False), ("viewer", False),
    ("read_only", False), ("managers", False), ("curater", False),  # fails closed
])
def test_roles(monkeypatch, role, writable):
    if role is None:
        monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    else:
        monkeypatch.setenv("WORKBENCH_ROLE", role)
    assert can_write() is writable
    if writable:
        require_write("tag items")
    else:
        with pytest.raises(ReadOnlyError, match=r"Cannot tag items: this session is read-only"):
            require_write("tag items")


def test_read_only_error_is_a_permission_error(monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    with pytest.raises(PermissionError):
        require_write("export")


def test_the_store_itself_refuses_writes_in_a_read_only_session(monkeypatch, tmp_path):
    import pandas as pd

    from workbench.tags import TagStore

    url = f"sqlite:///{tmp_path / 'tags.db'}"
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    store = TagStore(url, item_ids=["a", "b"])
    store.add(["a"], "relabel", author="curator")
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    store = TagStore(url, item_ids=["a", "b"])  # opening (and reading) is allowed
    assert store.tags()["item_id"].tolist() == ["a"]
    plan = pd.DataFrame({"item_id": ["a"], "slot": [0], "annotator_slot": [0],
                         "is_gold": [False]})
    writes = {
        "tag": lambda: store.add(["b"], "relabel", author="m"),
        "untag": lambda: store.remove(["a"], "relabel", author="m"),
        "status": lambda: store.set_status(["a"], "verified", queue="relabel", author="m"),
        "decision": lambda: store.decisions.add(["a"], ["x"], author="m"),
        "guideline": lambda: store.guidelines.add("x", "text", author="m"),
        "qc round": lambda: store.qc_rounds.create("r", plan, author="m"),
    }
    for write in writes.values():
        with pytest.raises(ReadOnlyError, match="this session is read-only"):
            write()
    monkeypatch.delenv("WORKBENCH_ROLE")
    assert store.tags()["item_id"].tolist() == ["a"]  # nothing was written
    assert store.history()["action"].tolist() == ["add"]


def test_decisions_keep_ids_as_written_and_take_nfd_classes(monkeypatch, tmp_path):
    import unicodedata

    import pandas as pd

    import workbench as wb
    from workbench.tags import TagStore

    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    cafe = unicodedata.normalize("NFD", "caf\u00e9")  # a class named after a macOS folder
    items = pd.DataFrame({"item_id": ["pad", " pad", "b"], "label": [cafe, "tea", "tea"]})
    project = wb.Project.from_frames(items=items, classes=[cafe, "tea"])
    store = TagStore.for_project(project)
    store.decisions.add([" pad", "b"], ["tea", "caf\u00e9"], author="lead")
    got = store.decisions.frame().set_index("item_id")["label"].to_dict()
    assert got == {" pad": "tea", "b": cafe}  # not "pad"; the project's spelling
