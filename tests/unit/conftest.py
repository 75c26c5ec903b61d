"""Fixtures of the tag-store tests: a throwaway PostgreSQL 15 cluster on 127.0.0.1.

The cluster is started once per test session (``initdb`` + ``pg_ctl`` as the ``postgres``
user when running as root: the server refuses root), in a temporary folder that also holds
its socket, on a free loopback port; it is stopped and deleted at the end of the session.
Tests using it skip with the reason when the binaries or psycopg are missing (CI installs
``postgresql``). Set ``WORKBENCH_PG_BIN`` to use binaries elsewhere.

The throwaway cluster runs with ``fsync=off``: the crash tests kill *clients*, never the
server, so server-side durability (PostgreSQL's own job) is not what they measure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("WORKBENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        args = [runuser, "-u", "postgres", "--", *args] if runuser else \
            ["su", "postgres", "-c", " ".join(map(str, args))]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="session")
def pg_server():
    """Start a PostgreSQL cluster; yield its admin URL (``postgresql+psycopg://...``)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} "
                    "(apt-get install postgresql, or set WORKBENCH_PG_BIN)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root but there is no 'postgres' user to run the server")
    base = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    if os.geteuid() == 0:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data = base / "data"
    port = _free_port()
    init = _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                         "-A", "trust", "-E", "UTF8", "--no-sync"])
    if init.returncode:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed: {init.stderr[-2000:]}")
    opts = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=60 "
            "-c shared_buffers=32MB -c fsync=off -c full_page_writes=off")
    start = _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts,
                          "-l", str(base / "server.log"), "-w", "-t", "60", "start"])
    if start.returncode:
        log = (base / "server.log").read_text(errors="replace")[-2000:] \
            if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {start.stderr[-1000:]}\n{log}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                      "stop"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server):
    """A fresh empty database on the session's server; yield its URL."""
    import psycopg

    name = "wb_" + uuid.uuid4().hex[:12]
    admin = pg_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A URL for an empty store on each backend (SQLite file, PostgreSQL database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tags.db'}"
    return request.getfixturevalue("pg_url")
