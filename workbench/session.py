"""Who is working in this kernel, and whether they may write.

The author of every tag and status event comes from the server side (this module), never
from a widget value: a Voila viewer can send any value to any widget, but cannot change the
kernel's environment.

Environment variables
---------------------
``WORKBENCH_USER_HEADER``
    Set by ``workbench serve --user-header NAME``: the author is the value of the HTTP
    request header ``NAME`` of the request that opened the dashboard (Voila passes it to the
    kernel as ``HTTP_<NAME>``), as set by an authenticating reverse proxy
    (``X-Forwarded-User``...). A request without it may not write.
``WORKBENCH_USER``
    The author recorded in the audit trail. Falls back to the Jupyter/Voila user
    (``JUPYTERHUB_USER``), then to the operating-system user.
``WORKBENCH_ROLE``
    Unset, ``curator`` or ``engineer``: the session may write. Any other role (``manager``,
    ``viewer``, ``readonly``, a misspelt one) makes it read-only: widgets hide their write
    controls, and every write handler and the tag store itself refuse with
    :class:`~workbench.errors.ReadOnlyError`.
"""

from __future__ import annotations

import getpass
import os

from .errors import ReadOnlyError, WorkbenchError

__all__ = ["current_author", "can_write", "require_write", "current_role", "READ_ONLY_ROLES",
           "WRITER_ROLES", "header_env_name"]

#: Names the HTTP request header that holds the author (set by ``workbench serve``).
USER_HEADER_ENV = "WORKBENCH_USER_HEADER"


def header_env_name(header: str) -> str:
    """Return the environment variable Voila puts a request header in (``HTTP_X_USER``)."""
    return "HTTP_" + header.strip().upper().replace("-", "_")

#: Roles that may look but not write (documented names; any non-writer role is read-only).
READ_ONLY_ROLES = frozenset({"manager", "viewer", "readonly", "read-only"})
#: The roles that may write (``""``: ``WORKBENCH_ROLE`` unset). Any other role is read-only.
WRITER_ROLES = frozenset({"", "curator", "engineer"})


def current_role() -> str:
    """Return the session's role from ``WORKBENCH_ROLE`` (lower-cased, ``""`` when unset)."""
    return os.environ.get("WORKBENCH_ROLE", "").strip().lower()


def current_author() -> str:
    """Return the author recorded for writes made in this kernel.

    Returns
    -------
    str
        The viewer's user header when ``WORKBENCH_USER_HEADER`` names one, else
        ``WORKBENCH_USER`` if set, else the Jupyter/Voila user (``JUPYTERHUB_USER``), else
        the operating-system user, else ``"unknown"``.

    Raises
    ------
    WorkbenchError
        When the server takes the author from a request header and the request that
        opened this dashboard did not carry it (nothing is written).

    Examples
    --------
    >>> import os
    >>> os.environ["WORKBENCH_USER"] = "alice"
    >>> current_author()
    'alice'
    >>> del os.environ["WORKBENCH_USER"]
    """
    header = os.environ.get(USER_HEADER_ENV, "").strip()
    if header:
        value = os.environ.get(header_env_name(header), "").strip()
        if value:
            return value
        raise WorkbenchError(
            f"This server records the author from the {header!r} request header "
            "(workbench serve --user-header), but the request that opened this dashboard did "
            f"not carry it. Open the dashboard through the proxy that sets {header!r}; "
            "nothing was written.")
    for var in ("WORKBENCH_USER", "JUPYTERHUB_USER"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no passwd entry in some containers
        return "unknown"


def can_write() -> bool:
    """Return True when the session may write: ``WORKBENCH_ROLE`` unset or a writer role.

    Fails closed: a role that is not one of :data:`WRITER_ROLES` (``manager``, ``viewer``,
    or a misspelt ``curater``) is read-only.
    """
    return current_role() in WRITER_ROLES


def require_write(action: str) -> None:
    """Raise :class:`~workbench.errors.ReadOnlyError` unless this session may write.

    Parameters
    ----------
    action : str
        What was attempted, for the message (``"tag items"``).

    Raises
    ------
    ReadOnlyError
        When ``WORKBENCH_ROLE`` is not a writer role (:data:`WRITER_ROLES`).
    """
    if not can_write():
        raise ReadOnlyError(
            f"Cannot {action}: this session is read-only (WORKBENCH_ROLE={current_role()!r}). "
            "Ask a curator to do it, or start the workbench with WORKBENCH_ROLE unset or "
            f"one of the writer roles {sorted(r for r in WRITER_ROLES if r)}."
        )
