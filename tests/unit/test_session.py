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
    (None, True), ("", True), ("curator", True), ("manager", False), ("Manager ", False),
    ("viewer", False),
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
