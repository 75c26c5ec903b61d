"""Who is working in this kernel, and whether they may write.

The author of every tag and status event comes from the server side (this module), never
from a widget value: a Voila viewer can send any value to any widget, but cannot change the
kernel's environment.

Environment variables
---------------------
``WORKBENCH_USER``
    The author recorded in the audit trail. Falls back to the Jupyter/Voila user
    (``JUPYTERHUB_USER``), then to the operating-system user.
``WORKBENCH_ROLE``
    ``manager`` or ``viewer`` (also ``readonly``/``read-only``) make the session read-only:
    widgets hide their write controls and every write handler refuses with
    :class:`~workbench.errors.ReadOnlyError`.
"""

from __future__ import annotations

import getpass
import os

from .errors import ReadOnlyError

__all__ = ["current_author", "can_write", "require_write", "current_role", "READ_ONLY_ROLES"]

#: Roles that may look but not write.
READ_ONLY_ROLES = frozenset({"manager", "viewer", "readonly", "read-only"})


def current_role() -> str:
    """Return the session's role from ``WORKBENCH_ROLE`` (lower-cased, ``""`` when unset)."""
    return os.environ.get("WORKBENCH_ROLE", "").strip().lower()


def current_author() -> str:
    """Return the author recorded for writes made in this kernel.

    Returns
    -------
    str
        ``WORKBENCH_USER`` if set, else the Jupyter/Voila user (``JUPYTERHUB_USER``), else
        the operating-system user, else ``"unknown"``.

    Examples
    --------
    >>> import os
    >>> os.environ["WORKBENCH_USER"] = "alice"
    >>> current_author()
    'alice'
    >>> del os.environ["WORKBENCH_USER"]
    """
    for var in ("WORKBENCH_USER", "JUPYTERHUB_USER"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no passwd entry in some containers
        return "unknown"


def can_write() -> bool:
    """Return False when the session is read-only (``WORKBENCH_ROLE`` is manager or viewer)."""
    return current_role() not in READ_ONLY_ROLES


def require_write(action: str) -> None:
    """Raise :class:`~workbench.errors.ReadOnlyError` unless this session may write.

    Parameters
    ----------
    action : str
        What was attempted, for the message (``"tag items"``).

    Raises
    ------
    ReadOnlyError
        When ``WORKBENCH_ROLE`` is a read-only role.
    """
    if not can_write():
        raise ReadOnlyError(
            f"Cannot {action}: this session is read-only (WORKBENCH_ROLE={current_role()!r}). "
            "Ask a curator to do it, or start the workbench without a read-only "
            "WORKBENCH_ROLE (manager, viewer)."
        )
