"""``workbench serve``: configuration units, then a real server answering real HTTP requests."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from workbench import serve

REPO = Path(__file__).resolve().parents[2]
ERROR_CELL = "There was an error when executing cell"


# --------------------------------------------------------------------------- token


def test_token_created_private_and_reused(tmp_path):
    path = tmp_path / "cfg" / "workbench" / "token"
    token = serve.load_or_create_token(path)
    assert re.fullmatch(r"[A-Za-z0-9_\-]{40,}", token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert serve.load_or_create_token(path) == token
    renewed = serve.load_or_create_token(path, renew=True)
    assert renewed != token and path.read_text().strip() == renewed


def test_token_with_loose_permissions_is_replaced(tmp_path):
    path = tmp_path / "token"
    path.write_text("a" * 43 + "\n")
    os.chmod(path, 0o644)  # readable by others: the old token must be considered leaked
    token = serve.load_or_create_token(path)
    assert token != "a" * 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_malformed_token_is_replaced(tmp_path):
    path = tmp_path / "token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    assert serve.load_or_create_token(path) != "short"


def test_default_token_path_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert serve.default_token_path() == tmp_path / "workbench" / "token"


@pytest.mark.parametrize("ip, expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("192.168.1.10", False),
    ("example.org", False),
])
def test_is_loopback(ip, expected):
    assert serve.is_loopback(ip) is expected


# --------------------------------------------------------------------------- serve dir


def _fake_notebooks(root: Path, names) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        nb = {"cells": [{"cell_type": "code", "execution_count": 3, "metadata": {},
                         "outputs": [{"output_type": "stream", "name": "stdout",
                                      "text": "SECRET-OUTPUT"}],
                         "source": "print(1)"}],
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                          "language": "python"},
                           "widgets": {"state": "SECRET-WIDGET-STATE"}},
              "nbformat": 4, "nbformat_minor": 5}
        (root / name).write_text(json.dumps(nb))
    (root / "99_scratch.ipynb").write_text("{}")  # never vetted, never served
    (root / "helper.py").write_text("x = 1\n")
    return root


def test_manager_serve_dir_holds_only_the_overview(tmp_path):
    src = _fake_notebooks(tmp_path / "nbs", serve.ROLE_NOTEBOOKS["curator"])
    out = serve.prepare_serve_dir("manager", src, dest=tmp_path / "serve")
    assert sorted(p.name for p in out.iterdir()) == ["00_overview.ipynb"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_curator_serve_dir_holds_the_four_dashboards_without_outputs(tmp_path):
    src = _fake_notebooks(tmp_path / "nbs", serve.ROLE_NOTEBOOKS["curator"])
    out = serve.prepare_serve_dir("curator", src)
    try:
        assert sorted(p.name for p in out.iterdir()) == sorted(serve.ROLE_NOTEBOOKS["curator"])
        assert out.name.startswith("workbench-serve-curator-")
        for path in out.iterdir():
            text = path.read_text()
            assert "SECRET" not in text
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        import shutil

        shutil.rmtree(out)


def test_missing_dashboard_is_named(tmp_path):
    src = _fake_notebooks(tmp_path / "nbs", ["00_overview.ipynb"])
    with pytest.raises(FileNotFoundError, match="01_error_explorer.ipynb"):
        serve.prepare_serve_dir("curator", src, dest=tmp_path / "serve")


def test_unknown_role_is_a_parameter_error(tmp_path):
    with pytest.raises(ValueError, match="The 'role' parameter of prepare_serve_dir must be"):
        serve.prepare_serve_dir("admin", tmp_path)


def test_repository_overview_is_vetted_and_thin():
    nb = json.loads((REPO / "notebooks" / "00_overview.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("OverviewDashboard" in c for c in code)
    assert any("wait_for_viewer()" in c for c in code)
    for c in nb["cells"]:
        assert c.get("outputs", []) == []  # committed stripped
    assert not any(re.search(r"^\s*(def|class)\s", c, re.M) for c in code)


# --------------------------------------------------------------------------- voila options


def test_voila_argv_is_hardened_and_holds_no_secret(tmp_path):
    argv = serve.voila_argv(tmp_path, port=9999, ip="127.0.0.1", timeout=30,
                            cull_idle_timeout=600)
    joined = " ".join(argv)
    for option in ["--VoilaConfiguration.strip_sources=True",
                   "--VoilaConfiguration.show_tracebacks=False",
                   "--VoilaConfiguration.allow_template_override=NO",
                   "--VoilaConfiguration.template=workbench",
                   "--VoilaExecutor.timeout=30",
                   "--MappingKernelManager.cull_idle_timeout=600",
                   "--VoilaConfiguration.preheat_kernel=True",
                   "--Voila.port_retries=0",
                   f"--VoilaKernelManager.fill_delay={serve.REFILL_DELAY}"]:
        assert option in argv
    assert "--VoilaKernelManager.fill_delay=3.5" in serve.voila_argv(
        tmp_path, port=1, ip="127.0.0.1", refill_delay=3.5)
    assert "token" not in joined.lower()
    assert argv[0] == str(tmp_path)
    assert "--VoilaConfiguration.preheat_kernel=False" in serve.voila_argv(
        tmp_path, port=1, ip="127.0.0.1", pool_size=0)
    # lists are not written on the command line (deprecated there since traitlets 5)
    assert not any("=[" in a or "=(" in a for a in argv), argv


def test_voila_config_closes_the_static_files_and_lists_the_denied_notebooks():
    cfg = serve.voila_config(timeout=30, preheat_denylist=["03_relabel_queue.ipynb"])
    assert cfg.VoilaConfiguration.file_allowlist == []
    assert cfg.VoilaConfiguration.file_denylist == [".*"]
    assert cfg.VoilaConfiguration.extension_denylist == ["jupyterlab-plotly"]
    assert cfg.VoilaKernelManager.preheat_denylist == ["03_relabel_queue.ipynb"]
    timeout_of = cfg.VoilaExecutor.timeout_func
    assert timeout_of({"source": "import time\ntime.sleep(1)"}) == 30
    assert timeout_of({"source": "wait_for_viewer()"}) is None  # waiting is not a stuck cell
    # nor is computing the results, alone or as a dashboard built ahead of its viewer
    assert timeout_of({"source": "report = warm(project, 'data')"}) is None
    assert timeout_of({"source": "board = wb.widgets.Dashboard(wb.widgets.X, 'data')"}) is None
    assert serve.voila_config(timeout=0).VoilaExecutor.timeout_func({"source": "x"}) is None


_INIT_VOILA = """
import json, sys
from voila.app import Voila
from workbench import _voila_adapter, serve
app = Voila()
app.initialize(serve.voila_argv(sys.argv[1], port=1, ip="127.0.0.1"))
_voila_adapter.apply_config(app, serve.voila_config())
c = app.voila_configuration
print(json.dumps([c.file_allowlist, c.file_denylist, c.strip_sources,
                  float(app.config.VoilaKernelManager.fill_delay)]))
"""


def test_voila_takes_the_options_without_warnings_and_over_a_config_file(tmp_path):
    import subprocess
    import sys

    # a voila.json in the folder `workbench serve` is started from must not reopen files
    (tmp_path / "voila.json").write_text(json.dumps(
        {"VoilaConfiguration": {"file_allowlist": [".*"], "file_denylist": []}}))
    (tmp_path / "root").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    out = subprocess.run([sys.executable, "-c", _INIT_VOILA, str(tmp_path / "root")],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr  # traitlets' "for containers is deprecated"
    assert json.loads(out.stdout) == [[], [".*"], True, serve.REFILL_DELAY]


def test_template_has_no_cdn_links():
    template = REPO / "workbench" / "_voila" / "jupyter" / "voila" / "templates" / "workbench"
    for name in ["index.html.j2", "page.html"]:
        text = (template / name).read_text()
        assert "cdn.jsdelivr" not in text and "cdnjs" not in text and "https://" not in text \
            .replace("https://github.com/pallets/jinja/issues/1044", "")
    assert json.loads((template / "conf.json").read_text())["base_template"] == "lab"


def test_only_notebooks_calling_wait_for_viewer_are_preheated(tmp_path):
    src = _fake_notebooks(tmp_path, ["a.ipynb"])
    assert not serve._calls_wait_for_viewer(src / "a.ipynb")
    assert serve._calls_wait_for_viewer(REPO / "notebooks" / "00_overview.ipynb")


def test_wait_for_viewer_is_a_no_op_outside_a_preheated_kernel(monkeypatch):
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    assert serve.wait_for_viewer() is None


def test_preload_imports_every_dashboard_module():
    import sys

    assert serve.preload() == []
    for name in serve.PRELOAD_MODULES:
        assert name in sys.modules
    assert serve.preload(["workbench.no_such_module"]) == ["workbench.no_such_module"]


# --------------------------------------------------------------------------- refusals


def test_no_auth_on_a_public_address_is_refused(capsys, tmp_path):
    code = serve.main([str(tmp_path), "--ip", "0.0.0.0", "--no-auth"])
    assert code == 2
    assert "refusing --no-auth on '0.0.0.0'" in capsys.readouterr().err


def test_the_workbench_command_dispatches_serve(capsys, tmp_path):
    from workbench.cli import main

    assert main(["serve", str(tmp_path), "--ip", "0.0.0.0", "--no-auth"]) == 2
    assert "refusing --no-auth" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--user-header", "X Forwarded"], "is not an HTTP header name"),
    (["--user-header", "X-User\r\nEvil: 1"], "is not an HTTP header name"),
    (["--user-header", "X-User", "--author", "bob"], "either --author"),
])
def test_bad_user_header_options_are_refused(capsys, tmp_path, extra, message):
    assert serve.main([str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_only_the_user_header_reaches_the_kernels():
    cfg = serve.voila_config(user_header="X-Forwarded-User")
    assert cfg.VoilaConfiguration.http_header_envs == ["X-Forwarded-User"]
    assert serve.voila_config().VoilaConfiguration.http_header_envs == []


def test_missing_project_is_refused(capsys, tmp_path):
    assert serve.main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_negative_pool_size_is_refused(capsys, tmp_path):
    assert serve.main([str(tmp_path), "--pool-size", "-1"]) == 2
    assert "--pool-size must be >= 0" in capsys.readouterr().err


# --------------------------------------------------------------------------- without Voila

_WITHOUT_VOILA = """
import sys
sys.modules["voila"] = None  # as in a core install: `import voila` fails
import workbench, workbench.session, workbench.widgets, workbench.serve
from workbench.widgets import _plotly_adapter, preload  # the widgets package itself
loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                ("voila", "jupyter_server", "tornado") and sys.modules[m] is not None)
print("LOADED", loaded)
from workbench.errors import MissingDependencyError
try:
    workbench.serve.main([sys.argv[1], "--port", "1"])
except MissingDependencyError as exc:
    print("MISSING", exc)
from workbench.cli import main
main(["serve", sys.argv[1]])  # the `workbench serve` command: the error reaches the user
"""


def test_the_core_imports_without_voila_and_serve_names_the_extra(sample_root):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _WITHOUT_VOILA, str(sample_root)],
                         capture_output=True, text=True, timeout=120)
    assert "LOADED []" in out.stdout, out.stdout + out.stderr
    missing = [ln for ln in out.stdout.splitlines() if ln.startswith("MISSING")]
    assert len(missing) == 1, out.stdout + out.stderr
    assert 'Install the serving extra with: pip install "workbench[serve]"' in missing[0]
    assert out.returncode == 1
    assert "workbench.errors.MissingDependencyError" in out.stderr
    assert 'pip install "workbench[serve]"' in out.stderr


# --------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def manager_server(tmp_path_factory, sample_root):
    cfg = tmp_path_factory.mktemp("cfg")
    with serve.ServeProcess(sample_root, "--role", "manager", "--pool-size", "1",
                            env={"XDG_CONFIG_HOME": str(cfg)}) as srv:
        srv.token_file = cfg / "workbench" / "token"
        yield srv


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url, *, follow=False, timeout=120, headers=None):
    opener = urllib.request.build_opener(*(() if follow else (_NoRedirect(),)))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}),
                         timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


@pytest.mark.slow
def test_serve_prints_one_login_url_and_serves_the_overview(manager_server):
    srv = manager_server
    lines = [ln.strip() for ln in srv.output if ln.startswith("http://")]
    assert len(lines) == 1 and "token=" in lines[0]
    assert srv.token == srv.token_file.read_text().strip()
    assert stat.S_IMODE(srv.token_file.stat().st_mode) == 0o600
    status, headers, body = _get(srv.render_url("00_overview"))
    assert status == 200, body[-2000:]
    assert ERROR_CELL not in body
    assert "jupyter-config-data" in body and "application/vnd.jupyter.widget-view+json" in body
    # sources stripped: the notebook's code never reaches the page
    assert "wait_for_viewer" not in body and "open_project" not in body
    assert "cdn.jsdelivr" not in body and "cdnjs.cloudflare" not in body
    assert "connect-src 'self'" in headers.get("Content-Security-Policy", "")


@pytest.mark.slow
def test_server_process_command_line_holds_no_token(manager_server):
    cmdline = Path(f"/proc/{manager_server.proc.pid}/cmdline").read_bytes()
    assert manager_server.token.encode() not in cmdline
    environ = Path(f"/proc/{manager_server.proc.pid}/environ").read_bytes()
    assert manager_server.token.encode() not in environ


@pytest.mark.slow
@pytest.mark.parametrize("path", ["", "voila/render/00_overview.ipynb", "voila/tree"])
def test_pages_redirect_to_login_without_token(manager_server, path):
    status, headers, _ = _get(manager_server.url + path)
    assert status == 302
    assert "/login?next=" in headers["Location"]


@pytest.mark.slow
def test_wrong_token_is_not_accepted(manager_server):
    status, headers, _ = _get(manager_server.render_url("00_overview", token=False)
                              + "?token=" + "x" * 43)
    assert status == 302 and "/login" in headers["Location"]


@pytest.mark.slow
def test_other_notebooks_are_not_served_to_a_manager(manager_server):
    status, _, body = _get(manager_server.url + "voila/render/01_error_explorer.ipynb?token="
                           + manager_server.token)
    assert status == 404, body[:500]


# what a leaked copy of each private file would contain
_MARKERS = {
    "items.csv": "digit-0000", "annotations.csv": "annotated_at", "predictions.csv": "prob_0",
    "workbench.toml": "digits-sample", ".workbench/workbench.db": "SQLite format",
    "images/digit-0000.png": "PNG", "workbench/serve.py": "load_or_create_token",
    "notebooks/00_overview.ipynb": "wait_for_viewer",
}
_PREFIXES = ["voila/files/", "files/", "voila/static/", "voila/templates/lab/static/",
             "voila/labextensions/", "voila/api/themes/", "voila/render/", "static/",
             "notebooks/", "tree/", "api/contents/", "voila/api/contents/", "voila/tree/"]
_UPS = ["../", "..%2f", "%2e%2e/", "%2e%2e%2f", "..%252f", "%252e%252e%252f", "....//",
        "..\\", "%2e%2e%5c", ".%2e/"]


def _private_paths(sample_root: Path) -> list[tuple[str, str]]:
    """(absolute path without the leading slash, marker) of private files."""
    out = []
    for rel, marker in _MARKERS.items():
        base = REPO if rel.startswith(("workbench/", "notebooks/")) else sample_root.resolve()
        out.append(((base / rel).as_posix().lstrip("/"), marker))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("with_token", [False, True])
def test_private_files_cannot_be_fetched(manager_server, sample_root, with_token):
    srv = manager_server
    q = f"?token={srv.token}" if with_token else ""
    tried = 0
    for prefix in _PREFIXES:
        # relative to the served folder (which holds only the notebook copies)
        for name in ["items.csv", "predictions.csv", "workbench.toml", "serve.py",
                     "helper.py", ".workbench/workbench.db"]:
            status, _, body = _get(srv.url + prefix + name + q)
            assert status != 200 or not any(m in body for m in _MARKERS.values()), \
                (prefix + name, status, body[:200])
            tried += 1
        # path traversal to the absolute path of every private file, in many encodings
        for up in _UPS:
            for path, marker in _private_paths(sample_root):
                if prefix == "voila/render/" and path.endswith(".ipynb"):
                    continue  # would start a kernel; covered by the 404 test above
                for climb in (up * 3, up * 12):
                    url = srv.url + prefix + climb + path + q
                    status, _, body = _get(url)
                    assert not (status == 200 and marker in body), (url, status, body[:200])
                    tried += 1
    assert tried > 1000
    # the tree/API answers never list the project either
    for api in ["voila/api/contents", "api/contents", "api/kernels", "api/sessions",
                "voila/tree", "voila/api/contents/.."]:
        status, _, body = _get(srv.url + api + q)
        assert "items.csv" not in body and "predictions" not in body, (api, status)


@pytest.mark.slow
def test_etc_passwd_cannot_be_fetched(manager_server):
    for prefix in ["voila/static/", "voila/templates/lab/static/", "voila/labextensions/",
                   "voila/files/", "voila/api/themes/"]:
        for up in ["../" * 12, "..%2f" * 12, "%2e%2e/" * 12, "..%252f" * 12]:
            status, _, body = _get(manager_server.url + prefix + up + "etc/passwd")
            assert "root:" not in body, (prefix, up, status)


@pytest.mark.slow
def test_kernel_api_and_websocket_refuse_without_token(manager_server):
    srv = manager_server
    status, _, body = _get(srv.render_url("00_overview"))
    kernel_id = json.loads(re.search(
        r'<script id="jupyter-config-data" type="application/json">\s*(\{.*?\})\s*</script>',
        body, re.S).group(1))["kernelId"]
    assert _get(srv.url + f"api/kernels/{kernel_id}")[0] == 403
    assert _get(srv.url + f"api/kernels/{kernel_id}?token={srv.token}")[0] == 200

    import tornado.httpclient
    import tornado.ioloop
    import tornado.websocket

    async def connect(url):
        req = tornado.httpclient.HTTPRequest(url, headers={"Origin": srv.url.rstrip("/")})
        try:
            ws = await tornado.websocket.websocket_connect(req)
        except tornado.httpclient.HTTPClientError as exc:
            return exc.code
        ws.close()
        return 101

    ws_url = srv.url.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels"
    assert tornado.ioloop.IOLoop.current().run_sync(lambda: connect(ws_url)) == 403
    assert tornado.ioloop.IOLoop.current().run_sync(
        lambda: connect(ws_url + "?token=" + srv.token)) == 101


@pytest.mark.slow
def test_foreign_host_header_is_refused_on_loopback(manager_server):
    req = urllib.request.Request(manager_server.render_url("00_overview"),
                                 headers={"Host": "attacker.example:80"})
    try:
        status = urllib.request.urlopen(req, timeout=60).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 403  # DNS rebinding: a page on another origin cannot reach the server


def _one_notebook(folder: Path, *cells: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                     "outputs": [], "source": src} for src in cells],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (folder / "00_overview.ipynb").write_text(json.dumps(nb))
    return folder


@pytest.mark.slow
def test_a_stuck_cell_is_stopped_by_the_timeout(tmp_path, sample_root):
    nbs = _one_notebook(tmp_path / "nbs", "import time\ntime.sleep(600)", "print('after')")
    with serve.ServeProcess(sample_root, "--role", "manager", "--notebooks", str(nbs),
                            "--pool-size", "0", "--timeout", "3",
                            env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")}) as srv:
        status, _, body = _get(srv.render_url("00_overview"), timeout=120)
    assert status == 200
    assert "Cell execution timed out" in body  # the page says so, without a traceback
    assert "Traceback" not in body and "time.sleep" not in body
    assert "after" not in body.split("jupyter-config-data")[1]  # the notebook was aborted


@pytest.mark.slow
def test_a_preheated_kernel_waiting_for_a_viewer_is_not_timed_out(tmp_path, sample_root):
    nbs = _one_notebook(
        tmp_path / "nbs",
        "from workbench.serve import wait_for_viewer\nwait_for_viewer()",
        "import os\nprint('role=' + os.environ['WORKBENCH_ROLE'] + ' project=' "
        "+ os.path.basename(os.environ['WORKBENCH_PROJECT']))")
    with serve.ServeProcess(sample_root, "--role", "manager", "--notebooks", str(nbs),
                            "--pool-size", "1", "--timeout", "2",
                            env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")}) as srv:
        assert "(preheated: 00_overview)" in "".join(srv.output)
        import time

        time.sleep(8)  # longer than the cell timeout: the pooled kernel is still waiting
        status, _, body = _get(srv.render_url("00_overview"), timeout=120)
    assert status == 200
    assert ERROR_CELL not in body
    assert f"role=manager project={sample_root.name}" in body


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["1", "0"])  # preheated, and a kernel started on request
def test_the_author_is_the_viewers_request_header(tmp_path, sample_root, pool):
    nbs = _one_notebook(
        tmp_path / "nbs",
        "from workbench.serve import wait_for_viewer\nwait_for_viewer()",
        "from workbench.session import current_author\n"
        "try:\n    print('author=' + current_author())\n"
        "except Exception as exc:\n    print('refused:', exc)")
    with serve.ServeProcess(sample_root, "--role", "manager", "--notebooks", str(nbs),
                            "--pool-size", pool, "--user-header", "X-Forwarded-User",
                            env={"XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                                 "WORKBENCH_USER": "server-user",
                                 "HTTP_X_FORWARDED_USER": "from-the-server-env"}) as srv:
        assert "the X-Forwarded-User request header" in "".join(srv.output)
        status, _, body = _get(srv.render_url("00_overview"), timeout=120,
                               headers={"X-Forwarded-User": "dana"})
        assert status == 200 and "author=dana" in body
        status, _, body = _get(srv.render_url("00_overview"), timeout=120)
        assert status == 200
        assert "refused:" in body and "author=" not in body, body[-2000:]


# --------------------------------------------------------------------------- viewer wait


def test_viewer_wait_gives_up_when_no_server_answers():
    port = serve._free_port("127.0.0.1")  # nothing listens there
    t0 = time.monotonic()
    assert serve._run_request_info_loop(f"ws://127.0.0.1:{port}/voila/query/k",
                                        poll=0.5, give_up=1.0) is None
    assert time.monotonic() - t0 < 10


# --------------------------------------------------------------------------- first screen


def _serve_command() -> list[str]:
    """``workbench serve`` as ``make serve`` runs it: the installed console script."""
    import sys

    script = Path(sys.executable).with_name("workbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "workbench.cli"]


@pytest.mark.slow
def test_make_serve_prints_the_login_url_and_no_warning(tmp_path, sample_root):
    """A newcomer's first screen: the login URL, and no warning before or during a first page."""
    import signal
    import subprocess

    port = serve._free_port("127.0.0.1")
    # the environment of `make serve`: no PYTHONWARNINGS from the test runner
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*_serve_command(), "serve", str(sample_root), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    lines: list[str] = []  # stderr and stdout in the order they were written
    url_seen = threading.Event()

    def pump():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("http://"):
                url_seen.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert url_seen.wait(120), "no login URL:\n" + "".join(lines)
        before_url = lines[:next(i for i, ln in enumerate(lines) if ln.startswith("http://"))]
        token = re.search(r"token=([^&\s]+)", lines[len(before_url)]).group(1)
        # the first page a newcomer opens (its preheated kernel, the other dashboards' too)
        status, _, body = _get(f"http://127.0.0.1:{port}/voila/render/00_overview.ipynb"
                               f"?token={token}", timeout=180)
        first_screen = list(lines)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    warning = re.compile(r"Warning|WARNING|^\[W ")
    assert [ln for ln in before_url if warning.search(ln)] == [], "".join(before_url)
    assert before_url[0].startswith("workbench serve: role=curator")
    assert status == 200 and ERROR_CELL not in body
    assert [ln for ln in first_screen if warning.search(ln)] == [], "".join(first_screen)
