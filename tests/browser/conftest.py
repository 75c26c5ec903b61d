"""Fixtures for the Voila journeys: ``workbench serve`` on a free loopback port + Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Python Playwright (which may not
download its own browser here). Servers are started once per (project, role, options) and
shared by the tests of a module; each test gets a fresh browser context and page that records every
request URL and every dialog.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import pytest

try:  # tests/browser is a package (tests/__init__.py); keep working if it is not
    from ._browser import ERROR_CELL, XSS
except ImportError:
    from _browser import ERROR_CELL, XSS

from workbench.serve import ServeProcess

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]
ARTIFACTS = Path(os.environ.get("WORKBENCH_BROWSER_ARTIFACTS", "/tmp/workbench-browser"))


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def config_home(tmp_path_factory) -> Path:
    """A private XDG_CONFIG_HOME so the tests never touch the user's token."""
    return tmp_path_factory.mktemp("xdg")


@pytest.fixture(scope="module")
def serve(config_home):
    """``serve(project, role, *extra) -> ServeProcess`` started once per arguments.

    Module-scoped: a module's servers (and their preheated kernels) are stopped before the
    next module starts its own, so a 2-core machine is not running a dozen kernel pools.
    Abandoned kernels are culled after two idle minutes.
    """
    running: dict[tuple, ServeProcess] = {}

    def start(project, role: str = "curator", *extra: str, user: str = "browser-test"):
        key = (str(project), role, extra, user)
        if key not in running:
            running[key] = ServeProcess(
                project, "--role", role, "--cull-idle-timeout", "120", "--log-level", "INFO",
                *extra,
                env={"XDG_CONFIG_HOME": str(config_home), "WORKBENCH_USER": user},
                startup_timeout=180).start()
        return running[key]

    yield start
    for srv in running.values():
        srv.stop()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.requests = []
    pg.dialogs = []
    pg.console_errors = []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("websocket", lambda ws: pg.requests.append(ws.url))

    def on_dialog(dialog):
        pg.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    yield pg
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def open_dashboard():
    """``open_dashboard(page, server, "00_overview") -> seconds`` until ``.wb-ready``."""

    def go(pg, server, name: str, *, timeout: float = 180) -> float:
        t0 = time.perf_counter()
        pg.goto(server.render_url(name), timeout=timeout * 1000)
        try:
            pg.wait_for_selector(".wb-ready", timeout=timeout * 1000 * 2 / 3)
        except Exception:
            # Seen once (CI, 2026-11-22): a page left on "Running ..." (its preheated kernel never
            # finished the waiting cell). Reload once, as a user would, and say so loudly
            # with the server's log; a second failure fails the test.
            stuck = (f"{name} not ready after {time.perf_counter() - t0:.0f} s; reloaded.\n"
                     f"--- server log (tail)\n{''.join(server.errors)[-6000:]}\n"
                     f"--- console errors\n{pg.console_errors[-20:]}\n"
                     f"--- page text\n{pg.inner_text('body')[-800:]}")
            warnings.warn(stuck, stacklevel=1)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / f"stuck-{name}-{int(time.time())}.log").write_text(stuck)
            pg.goto(server.render_url(name), timeout=timeout * 1000)
            try:
                pg.wait_for_selector(".wb-ready", timeout=timeout * 1000)
            except Exception as exc:  # say what the server and the page were doing
                raise AssertionError(
                    f"{name} not ready after a reload either\n{stuck}\n"
                    f"--- server log after the reload (tail)\n"
                    f"{''.join(server.errors)[-4000:]}") from exc
        seconds = time.perf_counter() - t0
        pg.wait_for_timeout(500)  # late outputs (errors are appended after the ready cell)
        body = pg.inner_text("body")
        assert ERROR_CELL not in body, body[-3000:]
        return seconds

    return go


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory, sample_root):
    """A writable copy of the sample project (own tag database)."""

    def make(name: str) -> Path:
        root = tmp_path_factory.mktemp(name) / "project"
        shutil.copytree(sample_root, root, ignore=shutil.ignore_patterns(".workbench"))
        return root

    return make


@pytest.fixture(scope="session")
def xss_project(project_copy) -> Path:
    """The sample project whose metadata, run and project name hold HTML and script."""
    import pandas as pd

    root = project_copy("xss")
    items = pd.read_csv(root / "items.csv", dtype=str)
    vendors = sorted(items["vendor"].dropna().unique())
    items["vendor"] = items["vendor"].replace({vendors[0]: XSS})
    batches = sorted(items["batch"].dropna().unique())
    items["batch"] = items["batch"].replace(
        {batches[0]: "<script>window.__xss=2;alert(2)</script>",
         batches[1]: "<svg onload=\"window.__xss=3;alert(3)\">"})
    scanners = sorted(items["scanner"].dropna().unique())
    items["scanner"] = items["scanner"].replace(
        {scanners[1]: "<b onmouseover=alert(4)>scanner</b>"})
    items.to_csv(root / "items.csv", index=False)
    toml = (root / "workbench.toml").read_text()
    toml = toml.replace('name = "digits-sample"', 'name = "digits <img src=x onerror=alert(5)>"')
    (root / "workbench.toml").write_text(toml)
    return root
