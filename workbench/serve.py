"""``workbench serve``: a hardened, standalone Voila over the vetted dashboards only.

Voila, as shipped, serves every notebook of a folder to anyone who can reach the port, has no
authentication unless asked, loads Font Awesome from a CDN, and lets a viewer send messages to
any widget. ``workbench serve`` closes that:

* **only the vetted dashboards**: the notebooks of the chosen role are copied (outputs
  cleared) into a private temporary folder (mode 0700) which becomes Voila's root; nothing
  else of the repository or the project is below it. The static-file route
  (``/voila/files``) is closed (empty allowlist, deny-everything denylist); the sources and
  the tracebacks are stripped from the pages; ``?template=``/``?theme=`` overrides are off.
* **token authentication by default**: the token comes from :mod:`secrets`, lives in a file
  readable only by the user (``$XDG_CONFIG_HOME/workbench/token``, mode 0600) and reaches
  Voila in-process (never on a command line, never in the server's environment). The
  login URL is printed as one line starting with ``http://``. ``--no-auth`` is refused
  unless the server listens on a loopback address, and a loopback server also checks the
  ``Host`` header (DNS-rebinding protection).
* **roles**: ``--role manager`` serves only ``00_overview`` and starts kernels with
  ``WORKBENCH_ROLE=manager``, which makes :func:`workbench.session.can_write` false, so every
  write handler refuses even when a crafted widget message reaches it. ``--role curator``
  serves the six dashboards.
* **air-gapped pages**: a ``workbench`` Voila template (voila's ``lab`` template without the
  CDN links, shipped in ``workbench/_voila``) and a Content-Security-Policy that only lets the
  page talk to its own server.
* **resources**: preheated kernels (``--pool-size``), a cell timeout, idle kernels culled.

The project reaches the notebooks through ``WORKBENCH_PROJECT`` in the kernels' environment
(:func:`workbench.open_project` reads it), so the notebooks are never edited.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from ._io import atomic_write
from ._voila_adapter import QUERY_SECRET_HEADER

if TYPE_CHECKING:
    from traitlets.config import Config

__all__ = [
    "ROLE_NOTEBOOKS",
    "default_token_path",
    "load_or_create_token",
    "is_loopback",
    "prepare_serve_dir",
    "voila_argv",
    "voila_config",
    "wait_for_viewer",
    "in_preheated_kernel",
    "preload",
    "PRELOAD_MODULES",
    "main",
    "ServeProcess",
]

#: The vetted dashboards of each role, in menu order. Nothing else is ever served.
ROLE_NOTEBOOKS: dict[str, tuple[str, ...]] = {
    "manager": ("00_overview.ipynb",),
    "curator": (
        "00_overview.ipynb",
        "01_error_explorer.ipynb",
        "02_disagreements.ipynb",
        "03_relabel_queue.ipynb",
        "04_vendors_and_guidelines.ipynb",
        "05_see_the_data.ipynb",
    ),
}

#: Seconds before a used preheated kernel is replaced (``workbench serve --refill-delay``;
#: Voila's default is 1 s). The replacement imports and builds its dashboard ahead, about 10 s
#: of one core; started at once, it competed with the page just requested: the 1,000,000-point
#: map was drawn after 5.95 s with 1 s, 4.95 s with 15 s (medians of 3, two servers in turn).
#: A second viewer within the delay (plus the replacement's own start) gets a kernel started
#: for the request, as without preheating; ``--pool-size 2`` keeps a spare.
REFILL_DELAY = 15.0
#: The marker a notebook calls to say "data loading starts here" (see :func:`wait_for_viewer`).
_PREHEAT_MARKER = "wait_for_viewer("
#: The calls computing a dashboard's results with a progress bar (:func:`workbench.results.warm`,
#: and :class:`workbench.widgets.Dashboard`, which calls it): no cell timeout (at 10M items a
#: cold result may take minutes; a precomputed one is read).
_WARM_MARKERS = ("warm(", "Dashboard(")

_PACKAGE_DIR = Path(__file__).resolve().parent
_TEMPLATE_ROOT = _PACKAGE_DIR / "_voila" / "jupyter"
_TEMPLATE = "workbench"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{32,256}$")

#: Only the page's own server: no CDN, no web font host, no beacon. Inline scripts and eval
#: are needed by Voila/requirejs/anywidget; XSS is handled by escaping in the widgets.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob: data:",
        "style-src 'self' 'unsafe-inline' blob: data:",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)


# --------------------------------------------------------------------------- helpers


def default_token_path() -> Path:
    """Return where the token is kept: ``$XDG_CONFIG_HOME/workbench/token`` (or ``~/.config``).

    Returns
    -------
    pathlib.Path
        The token file (it may not exist yet).
    """
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "workbench" / "token"


def load_or_create_token(path: str | os.PathLike | None = None, *, renew: bool = False) -> str:
    """Read the server token from ``path``, creating it (mode 0600) when needed.

    An existing token is reused only if the file is a regular file owned by the current user,
    readable by nobody else, and holds a well-formed token; otherwise a new token from
    :func:`secrets.token_urlsafe` replaces it.

    Parameters
    ----------
    path : path-like, default=None
        The token file; None means :func:`default_token_path`.
    renew : bool, default=False
        Always write a fresh token.

    Returns
    -------
    str
        The token.
    """
    path = Path(path) if path is not None else default_token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not renew:
        try:
            st = path.lstat()
        except FileNotFoundError:
            st = None
        if (
            st is not None
            and stat.S_ISREG(st.st_mode)
            and st.st_uid == os.getuid()
            and not st.st_mode & 0o077
        ):
            token = path.read_text(encoding="ascii", errors="replace").strip()
            if _TOKEN_RE.match(token):
                return token
    token = secrets.token_urlsafe(32)
    # private from the first byte (the temporary file too), fsynced, renamed into place
    atomic_write(path, lambda fh: fh.write(token + "\n"), mode=0o600)
    return token


def is_loopback(ip: str) -> bool:
    """Tell whether ``ip`` only accepts connections from this machine.

    Parameters
    ----------
    ip : str
        An address or ``"localhost"``; ``""`` and ``"0.0.0.0"`` listen everywhere.

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def default_notebooks_dir() -> Path:
    """Return the folder holding the vetted dashboards (the repository's ``notebooks/``)."""
    return _PACKAGE_DIR.parent / "notebooks"


def prepare_serve_dir(role: str, notebooks_dir: str | os.PathLike | None = None,
                      *, dest: str | os.PathLike | None = None) -> Path:
    """Copy the vetted dashboards of ``role`` into a private folder for Voila to serve.

    Outputs and execution counts are cleared on the way (a committed output must never leak
    to a viewer), and nothing but the notebooks is written.

    Parameters
    ----------
    role : {'manager', 'curator'}
        Which dashboards to copy (:data:`ROLE_NOTEBOOKS`).
    notebooks_dir : path-like, default=None
        Where the notebooks are; None means the repository's ``notebooks/``.
    dest : path-like, default=None
        An empty folder to fill; None creates a fresh temporary folder (mode 0700).

    Returns
    -------
    pathlib.Path
        The folder to serve.

    Raises
    ------
    FileNotFoundError
        If a notebook of the role is missing; the message names it and the folder.
    """
    from ._validation import check_option

    check_option(role, "role", "prepare_serve_dir", list(ROLE_NOTEBOOKS))
    src = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    missing = [name for name in ROLE_NOTEBOOKS[role] if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"The {role} dashboards {missing} are not in {src}. Pass --notebooks DIR to the "
            f"folder that holds {list(ROLE_NOTEBOOKS[role])}."
        )
    if dest is None:
        out = Path(tempfile.mkdtemp(prefix=f"workbench-serve-{role}-"))
    else:
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    for name in ROLE_NOTEBOOKS[role]:
        nb = json.loads((src / name).read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
                cell["execution_count"] = None
        nb.setdefault("metadata", {}).pop("widgets", None)
        target = out / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(nb, fh, indent=1)
    return out


def _calls_wait_for_viewer(path: Path) -> bool:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            if _PREHEAT_MARKER in src:
                return True
    return False


#: The slow imports of the dashboards (plotly's FigureWidget alone pulls nbformat and
#: jsonschema, scipy.stats seconds more on 2 cores): done by
#: :func:`wait_for_viewer` and ``workbench.widgets.preload()`` before a viewer arrives.
PRELOAD_MODULES = (
    "plotly.graph_objects", "plotly.graph_objs._figurewidget", "anywidget", "ipywidgets",
    "PIL.Image", "sqlalchemy", "scipy.stats", "sklearn.metrics", "cleanlab.filter",
    "cleanlab.rank",
    "workbench.project", "workbench.slicing", "workbench.agreement",
    "workbench.label_quality", "workbench.tags", "workbench.relabel", "workbench.session",
    "workbench.kpis", "workbench.scorecard", "workbench.guidelines", "workbench.qc",
    "nh3", "markdown_it", "jscatter",
    *(f"workbench.widgets.{m}" for m in (
        "confusion", "slice_table", "gallery", "run_comparison", "error_explorer",
        "agreement_matrix", "confused_pairs", "annotator_table", "label_issue_list",
        "disagreement_explorer", "tag_panel", "relabel_view", "overview", "scorecard_table",
        "guideline_panel", "qc_round_view", "vendors_guidelines", "embedding_map")),
)


def preload(modules=PRELOAD_MODULES) -> list[str]:
    """Import ``modules`` (those missing are skipped); return the ones that failed."""
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional module; the dashboard will say
            failed.append(name)
    return failed


def in_preheated_kernel() -> bool:
    """Whether this kernel is one of Voila's preheated kernels, waiting for its viewer."""
    return os.environ.get("VOILA_PREHEAT", "False") == "True" and bool(
        os.environ.get("VOILA_KERNEL_ID"))


def wait_for_viewer(*, poll: float = 15.0, give_up: float = 600.0) -> None:
    """Pause a preheated Voila kernel until a viewer opens the page; no-op anywhere else.

    ``workbench serve`` keeps one kernel per dashboard started before anyone asks (a
    preheated pool). A dashboard that reads live data (tags, the relabel queue) calls this
    right after its imports: the slow part (kernel start, the imports of
    :data:`PRELOAD_MODULES`) is done ahead, and the data is read when the page is
    requested, so it is never stale. Only the notebooks that call it are preheated by
    ``workbench serve``.

    Outside a preheated Voila kernel (JupyterLab, nbval, plain Python) it returns at once.

    Parameters
    ----------
    poll : float, default=15.0
        Seconds one connection to Voila's request-info socket waits before it is replaced
        by a new one. Voila keeps the request info of a kernel until the kernel connects, so
        a message lost with a dropped connection (or a socket entry Voila removed by
        mistake) is delivered on the next connection instead of never.
    give_up : float, default=600.0
        Seconds without reaching the server after which the wait ends (the server is gone).

    Notes
    -----
    Voila's own ``voila.utils.wait_for_request`` opens one connection and waits on it
    forever; this is the same protocol (``ws://<server>/voila/query/<kernel id>``, one JSON
    message of CGI-style variables put into ``os.environ``) with reconnects.
    """
    if not in_preheated_kernel():
        return
    preload()
    ip = os.environ.get("VOILA_APP_IP", "127.0.0.1")
    port = os.environ.get("VOILA_APP_PORT", "8866")
    base = os.environ.get("VOILA_WS_BASE_URL") or os.environ.get("VOILA_SERVER_URL", "/")
    url = f"ws://{ip}:{port}{base}voila/query/{os.environ['VOILA_KERNEL_ID']}"
    result: dict = {}
    # a thread with its own event loop: the kernel's loop is busy running this cell
    worker = threading.Thread(target=lambda: result.update(
        info=_run_request_info_loop(url, poll, give_up)), daemon=True)
    worker.start()
    worker.join()
    info = result.get("info")
    if info:
        for key, value in json.loads(info).items():
            os.environ[str(key)] = str(value)


#: The environment variable holding the secret a dashboard kernel sends in
#: :data:`QUERY_SECRET_HEADER` (set by ``workbench serve``, inherited by the kernels it
#: starts, never shown to a browser).
QUERY_SECRET_ENV = "WORKBENCH_QUERY_SECRET"


def _run_request_info_loop(url: str, poll: float, give_up: float) -> str | None:
    import asyncio

    return asyncio.new_event_loop().run_until_complete(_request_info(url, poll, give_up))


async def _request_info(url: str, poll: float, give_up: float) -> str | None:
    """Connect to ``url`` until one message arrives; reconnect every ``poll`` seconds."""
    import asyncio

    import websockets

    unreachable_since = None
    while True:
        try:
            secret = os.environ.get(QUERY_SECRET_ENV, "")
            async with websockets.connect(
                    url, open_timeout=10, ping_interval=None, close_timeout=1,
                    additional_headers={QUERY_SECRET_HEADER: secret} if secret else None
            ) as ws:
                unreachable_since = None
                return await asyncio.wait_for(ws.recv(), timeout=poll)
        except TimeoutError:
            pass  # no viewer yet, or a lost message: ask again on a new connection
        except websockets.exceptions.InvalidStatus as exc:
            if exc.response.status_code == 403:  # not this server's kernel: waiting is useless
                print(f"wait_for_viewer: {url} refused this kernel (403); not waiting.",
                      file=sys.stderr)
                return None
            unreachable_since = unreachable_since or time.monotonic()
        except (OSError, websockets.exceptions.WebSocketException):
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > give_up:
                return None
        await asyncio.sleep(0.2)


def voila_argv(serve_dir: str | os.PathLike, *, port: int, ip: str, pool_size: int = 1,
               timeout: int = 120, cull_idle_timeout: int = 1800,
               progressive: bool = False, refill_delay: float = REFILL_DELAY) -> list[str]:
    """Build Voila's command-line options for a hardened server (no secret in them).

    Only single values go on the command line; the list-valued options go in the
    :class:`~traitlets.config.Config` of :func:`voila_config` (a list on Voila's command
    line is deprecated in traitlets 5, and an empty list cannot be written there at all).

    Parameters
    ----------
    serve_dir : path-like
        The folder made by :func:`prepare_serve_dir`.
    port : int
        TCP port (no retry on another port: the printed URL must be right).
    ip : str
        Address to listen on.
    pool_size : int, default=1
        Preheated kernels per dashboard; 0 disables preheating.
    timeout : int, default=120
        Seconds a cell may run before it is stopped (waiting for a viewer is exempt).
    cull_idle_timeout : int, default=1800
        Seconds after which an idle kernel (also one whose tab is still open) is shut down.
    progressive : bool, default=False
        Voila's ``progressive_rendering``: each cell's output (the progress bar of the
        cell computing the dashboard's results) shows while the next cells run. Voila
        cannot do it with preheated kernels: ``pool_size`` must be 0.
    refill_delay : float, default=REFILL_DELAY
        Seconds after a viewer took a preheated kernel before its replacement starts (Voila's
        ``VoilaKernelManager.fill_delay``): the replacement imports and builds its dashboard
        ahead, CPU work that would otherwise compete with the page being opened.

    Returns
    -------
    list of str

    See Also
    --------
    voila_config : the list-valued options and the cell-timeout rule.
    """
    argv = [
        str(serve_dir),
        "--no-browser",
        f"--Voila.port={int(port)}",
        "--Voila.port_retries=0",
        f"--Voila.ip={ip}",
        "--Voila.base_url=/",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
        f"--VoilaConfiguration.template={_TEMPLATE}",
        "--VoilaConfiguration.theme=light",
        "--VoilaConfiguration.allow_template_override=NO",
        "--VoilaConfiguration.allow_theme_override=NO",
        # cell timeout and culling of idle kernels
        f"--VoilaExecutor.timeout={int(timeout)}",
        "--VoilaExecutor.interrupt_on_timeout=False",
        f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_timeout)}",
        f"--MappingKernelManager.cull_interval={max(10, min(300, int(cull_idle_timeout) // 4))}",
        "--MappingKernelManager.cull_connected=True",
        "--MappingKernelManager.cull_busy=False",
    ]
    if _ipc_fits():
        # the server talks to its kernels over Unix sockets in Voila's private (0700)
        # connection folder instead of TCP ports on loopback, which any local user can reach
        # (and ipykernel warns about: "running over TCP without encryption")
        argv.append("--KernelManager.transport=ipc")
    if pool_size > 0:
        argv += [
            "--VoilaConfiguration.preheat_kernel=True",
            f"--VoilaConfiguration.default_pool_size={int(pool_size)}",
            f"--VoilaKernelManager.fill_delay={float(refill_delay)}",
        ]
    else:
        argv += ["--VoilaConfiguration.preheat_kernel=False"]
    if progressive:
        if pool_size > 0:
            raise ValueError("progressive rendering needs pool_size=0 (Voila cannot render "
                             "progressively from a preheated kernel).")
        argv.append("--VoilaConfiguration.progressive_rendering=True")
    return argv


def voila_config(*, timeout: int | None = 120,
                 preheat_denylist: list[str] | tuple[str, ...] = (),
                 user_header: str | None = None) -> Config:
    """Build the list-valued and callable Voila options of a hardened server.

    Parameters
    ----------
    timeout : int or None, default=120
        Seconds a cell may run; the cells that call :func:`wait_for_viewer`,
        :func:`workbench.results.warm` or build a :class:`workbench.widgets.Dashboard` are
        exempt (waiting for a viewer, or computing the results with a progress bar, is not a
        stuck cell). None or 0: no limit.
    preheat_denylist : sequence of str, default=()
        Notebooks never preheated (they do not call :func:`wait_for_viewer`).
    user_header : str, default=None
        The one request header passed to the kernels (``HTTP_<NAME>``): the author's.

    Returns
    -------
    traitlets.config.Config
        ``VoilaConfiguration.file_allowlist`` empty and ``file_denylist`` ``['.*']`` (no
        static file of the served folder at all), ``http_header_envs``,
        ``extension_denylist`` (the ``jupyterlab-plotly`` mime renderer would load a second
        4.8 MB copy of plotly.js; the dashboards use ``FigureWidget``, whose JS comes with
        the widget), ``VoilaKernelManager.preheat_denylist`` and
        ``VoilaExecutor.timeout_func``.

    Examples
    --------
    >>> cfg = voila_config(user_header="X-Forwarded-User")
    >>> cfg.VoilaConfiguration.file_allowlist, cfg.VoilaConfiguration.http_header_envs
    ([], ['X-Forwarded-User'])
    """
    from traitlets.config import Config

    limit = int(timeout) if timeout else None

    def cell_timeout(cell):
        source = cell.get("source") or ""
        # waiting for a viewer, and computing the results (with a progress bar), are not
        # stuck cells
        exempt = _PREHEAT_MARKER in source or any(m in source for m in _WARM_MARKERS)
        return None if exempt else limit

    cfg = Config()
    cfg.VoilaConfiguration.file_allowlist = []
    cfg.VoilaConfiguration.file_denylist = [".*"]
    cfg.VoilaConfiguration.http_header_envs = [user_header] if user_header else []
    cfg.VoilaConfiguration.extension_denylist = ["jupyterlab-plotly"]
    cfg.VoilaKernelManager.preheat_denylist = list(preheat_denylist)
    cfg.VoilaExecutor.timeout_func = cell_timeout
    return cfg


def _ipc_fits() -> bool:
    """Tell whether kernels can use Unix sockets here (POSIX, and the paths are short enough).

    Voila puts the connection files in ``<tmp>/voila_XXXXXXXX/``; a kernel's sockets are
    ``kernel-<uuid>-ipc-<n>`` next to them, and a Unix socket path has at most 104 bytes on
    macOS (108 on Linux).
    """
    if os.name != "posix":
        return False
    longest = os.path.join(tempfile.gettempdir(), "voila_" + "x" * 8,
                           "kernel-" + "x" * 36 + "-ipc-99")
    return len(os.fsencode(longest)) < 100


def _trusted_copies(serve_dir: Path, names) -> Config:
    """Sign the vetted copies for this server only; return the notary settings that trust them.

    Voila's contents manager logs "Notebook ... is not trusted" for every notebook it loads
    whose signature it does not know. The copies were vetted (and their outputs cleared) by
    :func:`prepare_serve_dir`, so the server signs them with its own secret in a signature
    store held in memory: nothing is written to the user's Jupyter signature database, and
    nothing stays trusted after the server stops.
    """
    import nbformat
    from nbformat.sign import MemorySignatureStore, NotebookNotary
    from traitlets.config import Config

    store = MemorySignatureStore()
    secret = secrets.token_bytes(32)

    def store_factory():
        return store

    notary = NotebookNotary(secret=secret, store_factory=store_factory)
    for name in names:
        notary.sign(nbformat.read(serve_dir / name, as_version=4))
    cfg = Config()
    cfg.NotebookNotary.secret = secret
    cfg.NotebookNotary.store_factory = store_factory
    return cfg


def _free_port(ip: str) -> int:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((ip if ip not in ("", "localhost") else "127.0.0.1", 0))
        return s.getsockname()[1]


def _display_host(ip: str) -> str:
    if ip in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    if ":" in ip:
        return f"[{ip}]"
    return ip


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench serve",
        description="Serve the workbench dashboards with Voila: only the vetted notebooks, "
        "token login, read-only manager role, no request to any external host.",
    )
    p.add_argument("project", nargs="?", default=None,
                   help="project folder (default: $WORKBENCH_PROJECT, else data/sample)")
    p.add_argument("--role", choices=sorted(ROLE_NOTEBOOKS), default="curator",
                   help="manager: the read-only overview only; curator: all six dashboards "
                   "(default: %(default)s)")
    p.add_argument("--port", type=int, default=8866, help="TCP port, 0 = any free port "
                   "(default: %(default)s)")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--no-auth", action="store_true",
                   help="no token (refused unless --ip is a loopback address)")
    p.add_argument("--token-file", default=None,
                   help="where the token is kept, mode 0600 (default: "
                   "$XDG_CONFIG_HOME/workbench/token)")
    p.add_argument("--new-token", action="store_true", help="replace the stored token")
    p.add_argument("--pool-size", type=int, default=1,
                   help="preheated kernels per dashboard, 0 = no preheating "
                   "(default: %(default)s)")
    p.add_argument("--build-ahead", choices=["auto", "always", "never"], default=None,
                   help="whether a preheated kernel reads the project and builds its dashboard "
                   "before a viewer arrives (checked, and rebuilt if the data changed, when one "
                   "does): auto = for projects of at most 2,000,000 items, as each waiting "
                   "kernel holds its dashboard's data (default: $WORKBENCH_BUILD_AHEAD, else "
                   "auto)")
    p.add_argument("--refill-delay", type=float, default=REFILL_DELAY, metavar="S",
                   help="seconds after a viewer took a preheated kernel before its "
                   "replacement starts, so that it does not compete with the page being "
                   "opened (default: %(default)s)")
    p.add_argument("--progressive", action="store_true",
                   help="render the cells as they run (a dashboard computing its results "
                   "shows its progress bar); implies --pool-size 0")
    p.add_argument("--timeout", type=int, default=120,
                   help="seconds a notebook cell may run (default: %(default)s)")
    p.add_argument("--cull-idle-timeout", type=int, default=1800,
                   help="seconds before an idle kernel is shut down (default: %(default)s)")
    p.add_argument("--notebooks", default=None,
                   help="folder holding the vetted dashboards (default: the repository's "
                   "notebooks/)")
    p.add_argument("--author", default=None,
                   help="author recorded on tags written through this server "
                   "(default: the current user)")
    p.add_argument("--user-header", default=None, metavar="NAME",
                   help="record as author the value of this HTTP request header, set per "
                   "viewer by an authenticating reverse proxy (e.g. X-Forwarded-User); "
                   "requests without it may not write. Only behind a proxy that sets it")
    p.add_argument("--log-level", default="WARN",
                   choices=["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"])
    return p


def _resolve_project(arg: str | None) -> Path:
    if arg is None:
        arg = os.environ.get("WORKBENCH_PROJECT") or str(_PACKAGE_DIR.parent / "data" / "sample")
    path = Path(arg).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Project folder {str(path)!r} does not exist. Pass a project folder (one with "
            f"items.csv), or build the sample with `workbench sample data/sample`."
        )
    return path


def main(argv: list[str] | None = None) -> int:
    """Run ``workbench serve [PROJECT] [--role manager|curator] [--port] [--ip] ...``.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after ``serve``; None means ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 after a clean stop, 2 for a refused configuration.

    Raises
    ------
    MissingDependencyError
        If Voila is not installed (the message says ``pip install "workbench[serve]"``).
    """
    args = _parser().parse_args(argv)
    from ._voila_adapter import require_voila

    require_voila()  # before anything else: say how to install the serving extra
    if args.no_auth and not is_loopback(args.ip):
        print(
            f"workbench serve: refusing --no-auth on {args.ip!r}: without a token anyone who "
            f"can reach this address could use the dashboards. Drop --no-auth (a token is "
            f"generated) or listen on 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    if args.user_header is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", args.user_header):
            print(f"workbench serve: --user-header {args.user_header!r} is not an HTTP header "
                  "name (letters, digits and '-', e.g. X-Forwarded-User).", file=sys.stderr)
            return 2
        if args.author:
            print("workbench serve: use either --author (one author for every viewer) or "
                  "--user-header (each viewer's own), not both.", file=sys.stderr)
            return 2
    for name in ("pool_size", "timeout", "cull_idle_timeout", "refill_delay"):
        if getattr(args, name) < 0:
            print(f"workbench serve: --{name.replace('_', '-')} must be >= 0.", file=sys.stderr)
            return 2
    try:
        project = _resolve_project(args.project)
        serve_dir = prepare_serve_dir(args.role, args.notebooks)
    except (FileNotFoundError, ValueError) as exc:
        print(f"workbench serve: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, project, serve_dir)
    finally:
        shutil.rmtree(serve_dir, ignore_errors=True)
        shutil.rmtree(serve_dir.with_name(serve_dir.name + "-static"), ignore_errors=True)


#: Environment variable telling a dashboard kernel where the server serves plotly's bundle.
PLOTLY_ESM_ENV = "WORKBENCH_PLOTLY_ESM"


def _plotly_bundle(directory: Path) -> Path | None:
    """Copy plotly's FigureWidget bundle into ``directory`` under a content-hashed name."""
    import hashlib

    try:
        from .widgets._plotly_adapter import widget_bundle  # plotly's file layout lives there

        source = widget_bundle()  # None on a plotly the adapter does not know
        if source is None:
            return None
        data = source.read_bytes()
    except (ImportError, OSError):
        return None
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / f"plotly-widget-{hashlib.sha256(data).hexdigest()[:16]}.js"
    target.write_bytes(data)
    return target


def _run(args: argparse.Namespace, project: Path, serve_dir: Path) -> int:
    token = "" if args.no_auth else load_or_create_token(args.token_file, renew=args.new_token)
    token_file = None if args.no_auth else (Path(args.token_file) if args.token_file
                                            else default_token_path())
    ip = args.ip
    port = args.port or _free_port(ip)
    notebooks = ROLE_NOTEBOOKS[args.role]
    denylist = [nb for nb in notebooks if not _calls_wait_for_viewer(serve_dir / nb)]

    # What the kernels inherit: the project, the role, where the preheat query socket is.
    os.environ["WORKBENCH_PROJECT"] = str(project)
    os.environ["WORKBENCH_ROLE"] = args.role
    if args.build_ahead:
        os.environ["WORKBENCH_BUILD_AHEAD"] = args.build_ahead
    if args.author:
        os.environ["WORKBENCH_USER"] = args.author
    from .session import USER_HEADER_ENV, header_env_name

    if args.user_header:
        os.environ[USER_HEADER_ENV] = args.user_header
        # only the viewer's request may set it, never this server's own environment
        os.environ.pop(header_env_name(args.user_header), None)
    else:
        os.environ.pop(USER_HEADER_ENV, None)
    if ip in ("", "0.0.0.0", "::", "localhost"):
        os.environ["VOILA_APP_IP"] = "127.0.0.1"  # where a preheated kernel finds the server
    else:
        os.environ["VOILA_APP_IP"] = f"[{ip}]" if ":" in ip else ip
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(_TEMPLATE_ROOT)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
                                 if p]
    )
    os.environ.pop("JUPYTER_TOKEN", None)  # never let a stray env token change the auth

    from . import _voila_adapter

    Voila = _voila_adapter.require_voila().Voila
    app = Voila()
    query_secret = secrets.token_urlsafe(32)
    os.environ[QUERY_SECRET_ENV] = query_secret  # the kernels' proof, see wait_for_viewer
    # on a Voila the adapter does not know, nothing is patched: serve without preheating
    # (the request-info socket exists only for preheated kernels)
    pool_size = args.pool_size if _voila_adapter.harden_request_info_socket(
        query_secret, log=app.log) else 0
    if args.progressive:
        pool_size = 0  # Voila renders progressively only from kernels started per request
    app.initialize(voila_argv(serve_dir, port=port, ip=ip, pool_size=pool_size,
                              timeout=args.timeout, cull_idle_timeout=args.cull_idle_timeout,
                              progressive=args.progressive, refill_delay=args.refill_delay)
                   + [f"--Voila.log_level={args.log_level}"])
    cfg = voila_config(timeout=args.timeout, preheat_denylist=denylist,
                       user_header=args.user_header)
    cfg.merge(_trusted_copies(serve_dir, notebooks))
    _voila_adapter.apply_config(app, cfg)
    # plotly's 5 MB widget bundle, served once as a static file that the browser fetches,
    # parses and caches once per page (instead of once per figure through the websocket)
    static = _plotly_bundle(serve_dir.with_name(serve_dir.name + "-static"))
    if static is not None:
        app.static_paths = [*app.static_paths, str(static.parent)]
        os.environ[PLOTLY_ESM_ENV] = f"/voila/static/{static.name}"
    # the secret never appears on a command line or in the server's environment
    app.token = token
    app.tornado_settings = _voila_adapter.server_settings(
        app.tornado_settings,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            # not "no-referrer": Chromium would then send "Origin: null" on the login POST
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "SAMEORIGIN",
        },
        # a loopback server only answers to loopback Host headers (DNS rebinding)
        loopback=is_loopback(ip),
    )

    host = _display_host(ip)
    url = f"http://{host}:{port}/"
    login = f"{url}?token={token}" if token else url

    def _announce():
        names = [nb.removesuffix(".ipynb") for nb in notebooks]
        warm = [nb.removesuffix(".ipynb") for nb in notebooks
                if nb not in denylist and pool_size > 0]
        lines = [
            f"workbench serve: role={args.role}, project={project}",
            f"  dashboards: {', '.join(names)} (preheated: {', '.join(warm) or 'none'})",
        ]
        if args.user_header:
            lines.append(f"  author of each write: the {args.user_header} request header "
                         "(serve behind a proxy that sets it)")
        if token:
            lines.append(f"  token kept in {token_file} (mode 0600). Open this login URL:")
        else:
            lines.append("  WARNING: no authentication (loopback only). Open:")
        lines.append(login)
        print("\n".join(lines), flush=True)

    import tornado.ioloop

    tornado.ioloop.IOLoop.current().add_callback(_announce)
    app.start()
    return 0


# --------------------------------------------------------------------------- tests/benchmarks


class ServeProcess:
    """Run ``workbench serve`` in a child process (for tests and benchmarks).

    Parameters
    ----------
    project : path-like
        The project folder.
    *extra : str
        More ``workbench serve`` options (``"--role", "manager"``, ...).
    port : int, default=0
        0 picks a free loopback port.
    env : dict, default=None
        Extra environment variables (``XDG_CONFIG_HOME`` to keep the token out of ``~``).
    startup_timeout : float, default=120
        Seconds to wait for the login URL and for the server to answer.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:PORT/``.
    login_url : str
        The printed login URL (holds ``token=`` unless ``--no-auth``).
    token : str
        The token ('' without authentication).
    output, errors : list of str
        The lines the server printed so far on stdout and on stderr (its log).
    """

    def __init__(self, project, *extra: str, port: int = 0, env: dict | None = None,
                 startup_timeout: float = 120):
        self.project = str(project)
        self.extra = list(extra)
        self.port = port or _free_port("127.0.0.1")
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self.errors: list[str] = []
        self.login_url = ""
        self.token = ""
        self.url = f"http://127.0.0.1:{self.port}/"

    def start(self) -> ServeProcess:
        """Start the server and wait until it printed the login URL and answers HTTP."""
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        # the same entry point as `workbench serve` / `make serve`
        cmd = [sys.executable, "-m", "workbench.cli", "serve", self.project,
               "--port", str(self.port), *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        lines: queue.Queue = queue.Queue()

        def pump(stream, sink, q=None):
            with contextlib.suppress(Exception):
                for line in stream:
                    sink.append(line)
                    if q is not None:
                        q.put(line)

        threading.Thread(target=pump, args=(self.proc.stderr, self.errors), daemon=True).start()
        threading.Thread(target=pump, args=(self.proc.stdout, self.output, lines),
                         daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.login_url:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("workbench serve did not print a login URL:\n"
                                   + "".join(self.output + self.errors)[-4000:])
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line.startswith("http://"):
                self.login_url = line.strip()
        m = re.search(r"token=([^&\s]+)", self.login_url)
        self.token = m.group(1) if m else ""
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "voila/static/voila-style.js", timeout=5)
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("workbench serve did not answer HTTP in time")

    def stop(self, timeout: float = 20) -> None:
        """Stop the server (SIGTERM to its process group, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def render_url(self, notebook: str, *, token: bool = True) -> str:
        """URL of a dashboard (``"00_overview"``), with the token as a query parameter."""
        name = notebook if notebook.endswith(".ipynb") else notebook + ".ipynb"
        url = f"{self.url}voila/render/{name}"
        return f"{url}?token={self.token}" if token and self.token else url


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
