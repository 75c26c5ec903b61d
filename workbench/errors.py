"""Exceptions raised by the workbench.

Every error the workbench raises on purpose derives from :class:`WorkbenchError`, so a
caller can catch them all; each also derives from the matching built-in (``ValueError``,
``ImportError``, ``PermissionError``) so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "WorkbenchError",
    "SchemaError",
    "MissingDependencyError",
    "ReadOnlyError",
    "StoreError",
]


class WorkbenchError(Exception):
    """Base class of every error raised by the workbench."""


class SchemaError(WorkbenchError, ValueError):
    """Input data does not follow the project format.

    Parameters
    ----------
    message : str
        What is wrong, where (file, line or row, column) and how to fix it.
    problems : list of Problem, optional
        Every problem found, when several were collected before raising.
    """

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class MissingDependencyError(WorkbenchError, ImportError):
    """An optional dependency needed by the called feature is not installed."""


class ReadOnlyError(WorkbenchError, PermissionError):
    """A write was attempted in a session that may only read (for example the manager role)."""


class StoreError(WorkbenchError, RuntimeError):
    """The tag store cannot be opened or written (corrupt, read-only, newer schema, ...)."""
