"""The one place where ``workbench serve`` relies on Voila's (and jupyter_server's) internals.

Everything else in :mod:`workbench.serve` uses public APIs: Voila's application class and its
configurable traits, traitlets :class:`~traitlets.config.Config` objects, Tornado's
``IOLoop``. What has no public API lives here, each with the reason:

* **The request-info socket** (``voila.request_info_handler.RequestInfoSocketHandler``, the
  ``/voila/query/<kernel_id>`` websocket that hands a preheated kernel its page request).
  Voila 0.5 offers no hook to authenticate it or to change its delivery, so
  :func:`harden_request_info_socket` patches the class (Voila's app and its page handler
  both use that class object): a connection must carry the server's secret, the request info
  is kept until the kernel has it, and a closing socket unregisters only itself.
* **Settings applied after start-up** (:func:`apply_config`): Voila builds its
  ``VoilaConfiguration`` inside :meth:`Voila.initialize`, after reading the user's config
  files; the hardened values are applied on top of them so that no config file reopens what
  ``workbench serve`` closes.
* **jupyter_server's host check** (:func:`server_settings`): the ``allow_remote_access`` and
  ``local_hostnames`` Tornado settings are the names jupyter_server's ``ServerApp`` passes
  its own traits under; Voila has no trait for them.

Written against Voila 0.5.x (:data:`SUPPORTED_VOILA`; tested with 0.5.6 to 0.5.13) and
jupyter_server 2.x. ``tests/unit/test_voila_adapter.py`` is the contract test: it fails
loudly when the installed Voila is outside that range or the internals moved. At run time,
an unknown Voila is not patched: :func:`harden_request_info_socket` logs one warning in the
server log and returns False, and ``workbench serve`` keeps serving without preheated
kernels (Voila's public path: kernels start when a page is requested, and the request-info
socket is not opened at all).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import re

from .errors import MissingDependencyError

__all__ = [
    "INSTALL_COMMAND",
    "SUPPORTED_VOILA",
    "QUERY_SECRET_HEADER",
    "require_voila",
    "voila_version",
    "is_supported_version",
    "request_info_handler",
    "harden_request_info_socket",
    "apply_config",
    "server_settings",
]

#: How to install what ``workbench serve`` needs.
INSTALL_COMMAND = 'pip install "workbench[serve]"'

#: The Voila versions this adapter was written against: ``(lowest, first unsupported)``.
SUPPORTED_VOILA = ((0, 5), (0, 6))

#: The request header by which a dashboard kernel proves it was started by this server.
QUERY_SECRET_HEADER = "X-Workbench-Query-Secret"

#: How many kernels' request info is kept for a kernel that has not connected yet.
MAX_PENDING_REQUESTS = 1000

#: What the patch of :func:`harden_request_info_socket` needs from the handler class.
_HANDLER_INTERNALS = ("_waiters", "_cache", "send_updates", "open", "on_close")

_warned: set[str] = set()


def require_voila():
    """Import Voila's application module, or say how to install it.

    Returns
    -------
    module
        ``voila.app``.

    Raises
    ------
    MissingDependencyError
        If Voila (or the Jupyter server it runs on) is not installed; the message holds
        :data:`INSTALL_COMMAND`.
    """
    try:
        return importlib.import_module("voila.app")
    except ImportError as exc:
        raise MissingDependencyError(
            f"`workbench serve` needs Voila, which is not installed ({exc}). Install the "
            f"serving extra with: {INSTALL_COMMAND}"
        ) from exc


def voila_version() -> str:
    """Return the installed Voila's version string (``"0.5.13"``).

    Raises
    ------
    MissingDependencyError
        If Voila is not installed.
    """
    try:
        return importlib.metadata.version("voila")
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingDependencyError(
            f"`workbench serve` needs Voila, which is not installed. Install the serving "
            f"extra with: {INSTALL_COMMAND}"
        ) from exc


def is_supported_version(version: str) -> bool:
    """Tell whether ``version`` is a Voila this adapter was written against.

    Parameters
    ----------
    version : str
        A version string such as ``"0.5.13"`` or ``"0.6.0a1"``.

    Returns
    -------
    bool
        True inside :data:`SUPPORTED_VOILA` (pre-releases of the first unsupported version
        are outside it).

    Examples
    --------
    >>> is_supported_version("0.5.6"), is_supported_version("0.6.0a1"), is_supported_version("1")
    (True, False, False)
    """
    m = re.match(r"^\s*v?(\d+)(?:\.(\d+))?", str(version))
    if m is None:
        return False
    release = (int(m.group(1)), int(m.group(2) or 0))
    low, high = SUPPORTED_VOILA
    return low <= release < high


def request_info_handler() -> type:
    """Return Voila's request-info websocket handler class (``/voila/query/<kernel_id>``)."""
    from voila.request_info_handler import RequestInfoSocketHandler

    return RequestInfoSocketHandler


def _unsupported_reason() -> str | None:
    """Why the request-info socket cannot be patched here, or None if it can."""
    version = voila_version()
    low, high = SUPPORTED_VOILA
    if not is_supported_version(version):
        return (f"Voila {version} is not a version workbench was written for "
                f"({low[0]}.{low[1]}.x)")
    try:
        handler = request_info_handler()
    except ImportError as exc:
        return f"Voila {version} has no request-info handler ({exc})"
    missing = [name for name in _HANDLER_INTERNALS if not hasattr(handler, name)]
    if missing or not isinstance(handler.__dict__.get("_waiters"), dict) \
            or not isinstance(handler.__dict__.get("_cache"), dict):
        return (f"Voila {version}'s RequestInfoSocketHandler changed (missing or not a "
                f"dict: {missing or ['_waiters/_cache']})")
    return None


def _warn_once(log: logging.Logger | None, key: str, message: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    (log or logging.getLogger("workbench.serve")).warning(message)


def harden_request_info_socket(secret: str | None = None, *,
                               log: logging.Logger | None = None) -> bool:
    """Make Voila's request-info socket safe and reliable (server side), if this Voila is known.

    Voila 0.5's ``RequestInfoSocketHandler`` (``/voila/query/<kernel_id>``) answers anyone
    who knows a kernel id; it writes the request info (URL with its query string, the
    configured headers) to the kernel's socket if one is open and keeps it only otherwise,
    so a message written to a socket that is closing is lost; and its ``on_close`` deletes
    the *last* registered socket when the closing one is no longer registered (another
    kernel's). After this call a connection must carry ``secret`` in
    :data:`QUERY_SECRET_HEADER` (the kernels have it from their environment; 403
    otherwise), the info is always kept (the most recent :data:`MAX_PENDING_REQUESTS`
    kernels) so a reconnecting :func:`workbench.serve.wait_for_viewer` receives it, and a
    closing socket removes only itself. Calling it again only replaces the secret.

    Parameters
    ----------
    secret : str, default=None
        What a kernel must send; None accepts every connection.
    log : logging.Logger, default=None
        Where the warning about an unknown Voila goes (the server's log).

    Returns
    -------
    bool
        True if the socket is hardened; False on a Voila this adapter does not know (nothing
        is patched, one warning is logged): serve without preheated kernels then.
    """
    reason = _unsupported_reason()
    if reason is not None:
        _warn_once(log, reason,
                   f"workbench serve: {reason}; its request-info socket is left unpatched and "
                   "the dashboards are served without preheated kernels (pages take longer to "
                   f"open). Install a supported Voila ({INSTALL_COMMAND}) for preheating.")
        return False

    import hmac

    import tornado.web

    handler = request_info_handler()
    handler._workbench_secret = secret
    if handler.__dict__.get("_workbench_hardened", False):
        return True

    def prepare(self):
        expected = handler._workbench_secret
        if expected and not hmac.compare_digest(
                self.request.headers.get(QUERY_SECRET_HEADER, "").encode(),
                expected.encode()):
            raise tornado.web.HTTPError(403)

    def send_updates(cls, msg: dict) -> None:
        kernel_id, payload = msg["kernel_id"], msg["payload"]
        cls._cache[kernel_id] = payload
        while len(cls._cache) > MAX_PENDING_REQUESTS:
            cls._cache.pop(next(iter(cls._cache)))
        waiter = cls._waiters.get(kernel_id)
        if waiter is not None:
            try:
                waiter.write_message(payload)
            except Exception:  # noqa: BLE001 - kept in the cache for the next connection
                pass

    def on_close(self) -> None:
        for kernel_id, waiter in list(handler._waiters.items()):
            if waiter is self:
                del handler._waiters[kernel_id]

    handler.prepare = prepare
    handler.send_updates = classmethod(send_updates)
    handler.on_close = on_close
    handler._workbench_hardened = True
    return True


def apply_config(app, config) -> None:
    """Apply ``config`` to an initialized Voila app, over the user's config files.

    :meth:`Voila.initialize` reads the config files (current folder, Jupyter config path)
    and builds the app's ``VoilaConfiguration`` from them; a value given to the constructor
    would lose to a config file. Applied here, after ``initialize``, the hardened values
    win, as command-line options do.

    Parameters
    ----------
    app : voila.app.Voila
        An app on which ``initialize`` was called.
    config : traitlets.config.Config
        The values to apply (sections ``VoilaConfiguration``, ``VoilaExecutor``,
        ``VoilaKernelManager``...); objects created later read them from the app.
    """
    app.update_config(config)
    voila_configuration = getattr(app, "voila_configuration", None)
    if voila_configuration is not None:
        voila_configuration.update_config(config)


def server_settings(settings: dict, *, headers: dict[str, str], loopback: bool) -> dict:
    """Return Voila's ``tornado_settings`` with response headers and jupyter_server's host check.

    Parameters
    ----------
    settings : dict
        The app's current ``tornado_settings``.
    headers : dict of str to str
        Headers added to every response (``Content-Security-Policy``...), under the
        ``headers`` setting jupyter_server documents.
    loopback : bool
        The server listens on a loopback address: then only loopback ``Host`` headers are
        answered (DNS-rebinding protection), through jupyter_server's ``check_host``
        settings ``allow_remote_access`` and ``local_hostnames``.

    Returns
    -------
    dict
        The new settings (``settings`` is not modified).
    """
    return {
        **settings,
        "headers": dict(headers),
        "allow_remote_access": not loopback,
        "local_hostnames": ["localhost"],
    }
