"""Talk to a served dashboard's kernel the way a hostile viewer could: raw widget messages.

Voila lets the browser send ``comm_msg`` to any widget model of its kernel, visible or not,
enabled or not. :func:`widget_states` lists every widget model (``comm_info_request`` then
``request_state``); :func:`click` and :func:`set_value` send what a forged front end would.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime


def kernel_id_of(html: str) -> str:
    """The kernel id in a rendered Voila page (its ``jupyter-config-data``)."""
    m = re.search(r'<script id="jupyter-config-data" type="application/json">\s*(\{.*?\})\s*'
                  r"</script>", html, re.S)
    return json.loads(m.group(1))["kernelId"]


def _msg(msg_type: str, content: dict, session: str, channel: str = "shell") -> str:
    return json.dumps({
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "forged",
                   "session": session, "version": "5.3",
                   "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "content": content, "channel": channel,
        "buffers": [],
    })


class KernelWire:
    """A raw websocket to ``/api/kernels/<id>/channels`` (token in the URL).

    Uses the synchronous ``websocket-client`` (a jupyter_server dependency), so it works next
    to Playwright's sync API, which keeps an asyncio loop running in the main thread.
    """

    def __init__(self, base_url: str, kernel_id: str, token: str):
        import websocket

        self.url = (base_url.replace("http://", "ws://")
                    + f"api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
                    + (f"&token={token}" if token else ""))
        self.session = uuid.uuid4().hex
        self._timeout_error = websocket.WebSocketTimeoutException
        self.ws = websocket.create_connection(self.url, origin=base_url.rstrip("/"),
                                              timeout=10)

    def send(self, msg_type: str, content: dict) -> None:
        self.ws.send(_msg(msg_type, content, self.session))

    def read_until(self, predicate, timeout: float = 30) -> list[dict]:
        """Read messages until ``predicate(msg)`` is true (or the time is up)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                raw = self.ws.recv()
            except self._timeout_error:
                break
            if isinstance(raw, bytes) or not raw:
                continue  # binary (buffers) frames: not needed here
            msg = json.loads(raw)
            seen.append(msg)
            if predicate(msg):
                break
        return seen

    def drain(self, seconds: float = 2.0) -> list[dict]:
        """Read whatever the kernel sends for ``seconds``."""
        return self.read_until(lambda m: False, timeout=seconds)

    def close(self) -> None:
        self.ws.close()


def widget_states(wire: KernelWire) -> dict[str, dict]:
    """``{comm_id: state}`` of every widget model in the kernel."""
    wire.send("comm_info_request", {"target_name": "jupyter.widget"})
    replies = wire.read_until(lambda m: m.get("msg_type") == "comm_info_reply")
    comms = next(m for m in replies if m.get("msg_type") == "comm_info_reply")["content"]["comms"]
    for comm_id in comms:
        wire.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_state"}})
    states: dict[str, dict] = {}

    def collect(msg):
        if msg.get("msg_type") == "comm_msg":
            data = msg["content"].get("data", {})
            if data.get("method") == "update" and msg["content"]["comm_id"] in comms:
                states.setdefault(msg["content"]["comm_id"], {}).update(data.get("state", {}))
        return len(states) >= len(comms)

    wire.read_until(collect, timeout=60)
    return states


def click(wire: KernelWire, comm_id: str) -> None:
    """What a button's view sends when clicked."""
    wire.send("comm_msg", {"comm_id": comm_id,
                           "data": {"method": "custom", "content": {"event": "click"}}})


def set_value(wire: KernelWire, comm_id: str, value) -> None:
    """What a text box's view sends when typed into."""
    wire.send("comm_msg", {"comm_id": comm_id, "data": {"method": "update",
                                                        "state": {"value": value},
                                                        "buffer_paths": []}})
