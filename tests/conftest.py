"""Shared fixtures: the sample project and small project folders written on the fly."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
# progress bars (workbench/_progress.py) stay quiet in tests, nbval kernels included
os.environ.setdefault("WORKBENCH_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
DET_SAMPLE = REPO / "data" / "sample-detection"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright's sync API: one per test process.

    Playwright's sync API keeps an event loop running in the main thread while it is open,
    so every browser test shares this one instance, and ``make test`` runs the tests marked
    ``browser`` in a pytest process of their own (nothing else sees that loop).
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def sample_root() -> Path:
    if not (SAMPLE / "items.csv").exists():
        pytest.fail("data/sample is missing: run `make sample` (make test does it)")
    return SAMPLE


@pytest.fixture(scope="session")
def sample_project(sample_root):
    import workbench as wb

    return wb.open_project(sample_root)


@pytest.fixture(scope="session")
def det_sample_root() -> Path:
    """The detection sample (``data/sample-detection``), read-only."""
    if not all((DET_SAMPLE / f).exists() for f in ("workbench.toml", "boxes.csv",
                                                   "annotations.csv")):
        pytest.fail("data/sample-detection is missing: run `workbench sample --task detection "
                    "data/sample-detection` (make test does it)")
    return DET_SAMPLE


@pytest.fixture(scope="module")
def det_project(det_sample_root):
    """The detection sample, opened (read-only use)."""
    import workbench as wb

    return wb.open_project(det_sample_root)


@pytest.fixture(scope="module")
def det_sample_copy(det_sample_root, tmp_path_factory) -> Path:
    """A writable copy of the detection sample, without its store, exports and imports."""
    root = tmp_path_factory.mktemp("det") / "sample-detection"
    shutil.copytree(det_sample_root, root,
                    ignore=shutil.ignore_patterns(".workbench", "exports", "imports"))
    return root


@pytest.fixture
def write_files(tmp_path):
    """Write a project folder from ``{name: text-or-bytes}`` and return its path."""

    def write(files: dict, root: Path | None = None) -> Path:
        root = root or tmp_path / "project"
        root.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    return write
