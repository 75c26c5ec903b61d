"""The Voila adapter: the contract with the Voila it was written for, and its fallback.

``workbench/_voila_adapter.py`` is the only module that touches Voila's internals (the
request-info socket of preheated kernels) and jupyter_server's host-check settings. These
tests fail loudly when the installed Voila is not the one the adapter was written against
(0.5.x) or when the internals it patches moved, and check that an unknown Voila is served
unpatched, without preheating, after one warning in the server log.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error

import pytest

from workbench import _voila_adapter as adapter
from workbench import serve

# --------------------------------------------------------------------------- the contract

#: What the adapter was written against; widen only after re-reading Voila's
#: request_info_handler.py, app.py (init_handlers) and handler.py (send_updates) of the new
#: version and running this file and tests/browser.
WRITTEN_FOR = "0.5.x"


def test_installed_voila_is_the_version_the_adapter_was_written_for():
    version = adapter.voila_version()
    assert adapter.SUPPORTED_VOILA == ((0, 5), (0, 6))
    assert adapter.is_supported_version(version), (
        f"Voila {version} is installed, but workbench/_voila_adapter.py was written against "
        f"Voila {WRITTEN_FOR}. Re-check the internals it patches (RequestInfoSocketHandler) "
        "against the new version, then update SUPPORTED_VOILA, WRITTEN_FOR and the pin in "
        "pyproject.toml.")


@pytest.mark.parametrize("version, supported", [
    ("0.5.6", True), ("0.5.13", True), ("0.5", True), ("0.4.6", False), ("0.6.0", False),
    ("0.6.0a1", False), ("1.0.0", False), ("", False), ("dev", False),
])
def test_version_range(version, supported):
    assert adapter.is_supported_version(version) is supported


def test_the_internals_the_patch_relies_on_are_there():
    import voila.app
    import voila.handler

    handler = adapter.request_info_handler()
    for name in ("_waiters", "_cache"):
        assert isinstance(handler.__dict__.get(name), dict), name
    for name in ("open", "on_close", "send_updates", "prepare"):
        assert callable(getattr(handler, name)), name
    # Voila's app routes /voila/query/ to this class object, and its page handler calls
    # send_updates on it: the patch of the class reaches both
    assert voila.app.RequestInfoSocketHandler is handler
    assert voila.handler.RequestInfoSocketHandler is handler
    assert "RequestInfoSocketHandler.send_updates(" in inspect.getsource(voila.handler)
    # the request info is published only for preheated kernels
    assert "preheat_kernel" in inspect.getsource(voila.app.Voila.init_handlers)


def test_jupyter_server_reads_the_host_check_settings():
    from jupyter_server.base.handlers import JupyterHandler

    source = inspect.getsource(JupyterHandler.check_host)
    assert 'settings.get("allow_remote_access"' in source
    assert 'settings.get("local_hostnames"' in source
    settings = adapter.server_settings({"x": 1}, headers={"X-Frame-Options": "DENY"},
                                       loopback=True)
    assert settings == {"x": 1, "headers": {"X-Frame-Options": "DENY"},
                        "allow_remote_access": False, "local_hostnames": ["localhost"]}
    assert adapter.server_settings({}, headers={}, loopback=False)["allow_remote_access"]


def test_voila_builds_its_configuration_in_initialize():
    from voila.app import Voila

    assert "self.voila_configuration = VoilaConfiguration(parent=self)" in inspect.getsource(
        Voila.initialize)


# --------------------------------------------------------------------------- the fallback


def test_an_unknown_voila_is_not_patched_and_warned_about_once(monkeypatch, caplog):
    handler = adapter.request_info_handler()
    before = {name: handler.__dict__.get(name) for name in ("send_updates", "on_close",
                                                            "prepare")}
    monkeypatch.setattr(adapter, "voila_version", lambda: "0.6.1")
    monkeypatch.setattr(adapter, "_warned", set())
    log = logging.getLogger("test-voila-adapter")
    with caplog.at_level(logging.WARNING, logger="test-voila-adapter"):
        assert adapter.harden_request_info_socket("s", log=log) is False
        assert adapter.harden_request_info_socket("s", log=log) is False
    warnings = [r.getMessage() for r in caplog.records if r.name == "test-voila-adapter"]
    assert len(warnings) == 1
    assert "Voila 0.6.1 is not a version workbench was written for (0.5.x)" in warnings[0]
    assert "without preheated kernels" in warnings[0]
    assert 'pip install "workbench[serve]"' in warnings[0]
    assert {name: handler.__dict__.get(name) for name in before} == before


def test_changed_internals_are_not_patched(monkeypatch, caplog):
    handler = adapter.request_info_handler()
    monkeypatch.delattr(handler, "_cache")
    monkeypatch.setattr(adapter, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="workbench.serve"):
        assert adapter.harden_request_info_socket() is False
    assert "RequestInfoSocketHandler changed" in caplog.text


_UNKNOWN_VOILA_SERVER = """
import sys
from workbench import _voila_adapter, serve
_voila_adapter.voila_version = lambda: "0.6.0"
sys.exit(serve.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_an_unknown_voila_keeps_serving_without_preheated_kernels(tmp_path, sample_root):
    import re
    import signal
    import urllib.request

    port = serve._free_port("127.0.0.1")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _UNKNOWN_VOILA_SERVER, str(sample_root), "--role", "manager",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True)
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("http://"):
                break
        text = "".join(lines)
        assert "Voila 0.6.0 is not a version workbench was written for" in text, text
        assert text.count("is not a version workbench was written for") == 1
        assert "(preheated: none)" in text
        token = re.search(r"token=([^&\s]+)", lines[-1]).group(1)
        url = f"http://127.0.0.1:{port}/voila/render/00_overview.ipynb?token={token}"
        with urllib.request.urlopen(url, timeout=180) as resp:
            body = resp.read().decode()
        assert resp.status == 200
        assert "There was an error when executing cell" not in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


# --------------------------------------------------------------------------- the patch, served


@pytest.fixture
def query_server():
    """A real Tornado server with Voila's request-info socket (hardened as `serve` does)."""
    import asyncio

    import tornado.web

    RequestInfoSocketHandler = adapter.request_info_handler()
    assert adapter.harden_request_info_socket()
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
    call(lambda: adapter.harden_request_info_socket("s3cret"))
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
        call(lambda: adapter.harden_request_info_socket(None))


def test_a_closing_socket_removes_only_itself(query_server):
    port, call, handler = query_server
    a, b = object(), object()
    call(lambda: handler._waiters.update({"ka": a, "kb": b}))
    stray = type("Stray", (), {})()
    handler.on_close(stray)  # not registered: Voila 0.5 deleted "kb" here
    assert handler._waiters == {"ka": a, "kb": b}
    handler.on_close(a)
    assert handler._waiters == {"kb": b}


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


