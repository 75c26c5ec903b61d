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
                            cull_idle_timeout=600, preheat_denylist=["03_relabel_queue.ipynb"])
    joined = " ".join(argv)
    for option in ["--VoilaConfiguration.strip_sources=True",
                   "--VoilaConfiguration.show_tracebacks=False",
                   "--VoilaConfiguration.file_allowlist=[]",
                   "--VoilaConfiguration.allow_template_override=NO",
                   "--VoilaConfiguration.template=workbench",
                   "--VoilaExecutor.timeout=30",
                   "--MappingKernelManager.cull_idle_timeout=600",
                   "--VoilaConfiguration.preheat_kernel=True",
                   "--Voila.port_retries=0"]:
        assert option in argv
    assert "03_relabel_queue.ipynb" in joined
    assert "token" not in joined.lower()
    assert argv[0] == str(tmp_path)
    assert "--VoilaConfiguration.preheat_kernel=False" in serve.voila_argv(
        tmp_path, port=1, ip="127.0.0.1", pool_size=0)


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
    argv = serve.voila_argv("/srv", port=1, ip="127.0.0.1", user_header="X-Forwarded-User")
    assert "--VoilaConfiguration.http_header_envs=['X-Forwarded-User']" in argv
    argv = serve.voila_argv("/srv", port=1, ip="127.0.0.1")
    assert "--VoilaConfiguration.http_header_envs=[]" in argv


def test_missing_project_is_refused(capsys, tmp_path):
    assert serve.main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_negative_pool_size_is_refused(capsys, tmp_path):
    assert serve.main([str(tmp_path), "--pool-size", "-1"]) == 2
    assert "--pool-size must be >= 0" in capsys.readouterr().err


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


@pytest.fixture
def query_server():
    """A real Tornado server with Voila's request-info socket (hardened as `serve` does)."""
    import asyncio

    import tornado.web
    from voila.request_info_handler import RequestInfoSocketHandler

    serve._harden_request_info_socket()
    RequestInfoSocketHandler._waiters.clear()
    RequestInfoSocketHandler._cache.clear()
    port = serve._free_port("127.0.0.1")
    started = threading.Event()
    box = {}

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = tornado.web.Application([(r"/voila/query/([^/]+)", RequestInfoSocketHandler)])
        box["server"] = app.listen(port, address="127.0.0.1")
        box["loop"] = loop
        started.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    started.wait(10)

    def call(fn):  # run fn on the server's loop and wait for it
        done = threading.Event()
        out = {}

        def go():
            out["value"] = fn()
            done.set()

        box["loop"].call_soon_threadsafe(go)
        assert done.wait(10)
        return out["value"]

    yield port, call, RequestInfoSocketHandler
    call(lambda: box["server"].stop())
    box["loop"].call_soon_threadsafe(box["loop"].stop)


def _wait_in_thread(url, **kw):
    out = {}
    t = threading.Thread(target=lambda: out.update(v=serve._run_request_info_loop(url, **kw)),
                         daemon=True)
    t.start()
    return t, out


def test_viewer_wait_gets_the_request_info_sent_while_it_reconnects(query_server):
    port, call, handler = query_server
    url = f"ws://127.0.0.1:{port}/voila/query/k1"
    t, out = _wait_in_thread(url, poll=0.3, give_up=30)
    time.sleep(1.2)  # several connections came and went
    assert t.is_alive()
    call(lambda: handler.send_updates({"kernel_id": "k1", "payload": {"QUERY_STRING": "a=1"}}))
    t.join(10)
    assert json.loads(out["v"]) == {"QUERY_STRING": "a=1"}


def test_viewer_wait_gets_request_info_sent_before_it_connected(query_server):
    port, call, handler = query_server
    call(lambda: handler.send_updates({"kernel_id": "k2", "payload": {"SERVER_NAME": "x"}}))
    t, out = _wait_in_thread(f"ws://127.0.0.1:{port}/voila/query/k2", poll=5, give_up=30)
    t.join(10)
    assert json.loads(out["v"]) == {"SERVER_NAME": "x"}


def test_a_message_written_to_a_lost_socket_is_delivered_on_the_next_connection(query_server):
    port, call, handler = query_server

    class Dead:  # a socket that is closing: Voila's write raises, the message was dropped
        def write_message(self, msg):
            raise RuntimeError("closed")

    call(lambda: handler._waiters.__setitem__("k3", Dead()))
    call(lambda: handler.send_updates({"kernel_id": "k3", "payload": {"P": "1"}}))
    call(lambda: handler._waiters.pop("k3"))
    t, out = _wait_in_thread(f"ws://127.0.0.1:{port}/voila/query/k3", poll=5, give_up=30)
    t.join(10)
    assert json.loads(out["v"]) == {"P": "1"}


def test_the_request_info_socket_answers_only_this_servers_kernels(query_server, monkeypatch):
    import urllib.request as ur

    port, call, handler = query_server
    call(lambda: serve._harden_request_info_socket("s3cret"))
    try:
        call(lambda: handler.send_updates({"kernel_id": "k5", "payload": {"QUERY_STRING":
                                                                          "token=abc"}}))
        url = f"ws://127.0.0.1:{port}/voila/query/k5"
        monkeypatch.delenv(serve.QUERY_SECRET_ENV, raising=False)
        t0 = time.monotonic()
        assert serve._run_request_info_loop(url, poll=1, give_up=30) is None  # 403 at once
        assert time.monotonic() - t0 < 10
        monkeypatch.setenv(serve.QUERY_SECRET_ENV, "wrong")
        assert serve._run_request_info_loop(url, poll=1, give_up=30) is None
        req = ur.Request(f"http://127.0.0.1:{port}/voila/query/k5",
                         headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                  "Sec-WebSocket-Version": "13",
                                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        with pytest.raises(urllib.error.HTTPError) as err:
            ur.urlopen(req, timeout=10)
        assert err.value.code == 403
        assert "k5" not in handler._waiters
        monkeypatch.setenv(serve.QUERY_SECRET_ENV, "s3cret")
        assert json.loads(serve._run_request_info_loop(url, poll=1, give_up=30)) == {
            "QUERY_STRING": "token=abc"}
    finally:
        call(lambda: serve._harden_request_info_socket(None))


def test_a_closing_socket_removes_only_itself(query_server):
    port, call, handler = query_server
    a, b = object(), object()
    call(lambda: handler._waiters.update({"ka": a, "kb": b}))
    stray = type("Stray", (), {})()
    handler.on_close(stray)  # not registered: Voila 0.5 deleted "kb" here
    assert handler._waiters == {"ka": a, "kb": b}
    handler.on_close(a)
    assert handler._waiters == {"kb": b}


def test_viewer_wait_gives_up_when_no_server_answers():
    port = serve._free_port("127.0.0.1")  # nothing listens there
    t0 = time.monotonic()
    assert serve._run_request_info_loop(f"ws://127.0.0.1:{port}/voila/query/k",
                                        poll=0.5, give_up=1.0) is None
    assert time.monotonic() - t0 < 10


def test_wait_for_viewer_puts_the_request_info_in_the_environment(query_server, monkeypatch):
    port, call, handler = query_server
    monkeypatch.setattr(serve, "preload", lambda *a, **k: [])
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("VOILA_KERNEL_ID", "k4")
    monkeypatch.setenv("VOILA_APP_IP", "127.0.0.1")
    monkeypatch.setenv("VOILA_APP_PORT", str(port))
    monkeypatch.setenv("VOILA_SERVER_URL", "/")
    monkeypatch.delenv("VOILA_WS_BASE_URL", raising=False)
    monkeypatch.delenv("QUERY_STRING", raising=False)
    call(lambda: handler.send_updates({"kernel_id": "k4", "payload": {"QUERY_STRING": "q=2"}}))
    serve.wait_for_viewer(poll=2)
    assert os.environ["QUERY_STRING"] == "q=2"
