"""File helpers shared by the package: one atomic writer, backups, locks, time columns.

Every file workbench writes for a user (exports, rewritten annotations, project tables, the
serve token) goes through :func:`atomic_write`, so a crash or a kill mid-write never leaves a
half-written file behind. A project table is copied to ``.workbench/backups/`` before an
import rewrites it (:func:`backup_copy`), and imports and releases hold a file lock
(:func:`file_lock`, :func:`import_lock`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["BACKUP_STAMP", "atomic_write", "backup_copy", "backup_stamp", "backups_folder",
           "csv_line_end", "file_lock", "import_lock", "parse_times", "table_path"]

#: ``strftime`` format of the UTC time in a backup's name (``annotations-<stamp>.csv``).
BACKUP_STAMP = "%Y%m%dT%H%M%S%fZ"


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], object], *,
                 binary: bool = False, mode: int | None = None) -> Path:
    r"""Write a file atomically: temporary file in the same folder, fsync, rename, fsync folder.

    The data goes to a hidden temporary file ``.<name>.<random>.tmp`` next to ``path``
    (created readable by the owner only), which is flushed and fsynced, given its final
    permissions, renamed over ``path`` with :func:`os.replace` (atomic on POSIX), and the
    folder is fsynced so that the rename itself survives a power loss. If ``write`` raises,
    the previous file stays intact and the temporary file is removed; after a kill the
    previous file is intact too and only the hidden temporary file may remain.

    Parameters
    ----------
    path : path-like
        The target file. Its folder is created if missing. A symbolic link at ``path`` is
        replaced by the new file (the link's target is not touched).
    write : callable
        Called once with the open temporary file: a text file (UTF-8, ``newline=""``, so
        :mod:`csv` and :meth:`pandas.DataFrame.to_csv` control line endings), or a binary
        file if ``binary`` (e.g. ``lambda fh: frame.to_parquet(fh, index=False)``). Its
        return value is ignored; it must not close the file.
    binary : bool, default=False
        Open the temporary file in binary mode.
    mode : int, optional
        Permission bits of the written file (e.g. ``0o600`` for a secret; the data is never
        readable by others, not even while it is being written). Default: the mode of the
        file being replaced, or ``0o666`` minus the umask for a new file (what
        :func:`open` would give).

    Returns
    -------
    Path
        The target file.

    Raises
    ------
    TypeError
        If ``write`` is not callable or ``mode`` is not an int.
    OSError
        If the folder cannot be written (the previous file is intact).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(folder / "a.txt", lambda fh: fh.write("héllo\n")).read_text("utf-8")
    'héllo\n'
    >>> p = atomic_write(folder / "secret", lambda fh: fh.write(b"x"), binary=True, mode=0o600)
    >>> oct(p.stat().st_mode & 0o777)
    '0o600'
    """
    if not callable(write):
        raise TypeError(f"The 'write' parameter of atomic_write must be a callable taking the "
                        f"open file. Got {type(write).__name__} instead.")
    if mode is not None and (isinstance(mode, bool) or not isinstance(mode, int)):
        raise TypeError(f"The 'mode' parameter of atomic_write must be an int (e.g. 0o600) or "
                        f"None. Got {mode!r} instead.")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    final_mode = (mode if mode is not None else _current_mode(target)) & 0o7777
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if binary
              else os.fdopen(fd, "w", encoding="utf-8", newline="")) as fh:
            write(fh)
            fh.flush()
            os.fchmod(fh.fileno(), final_mode)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
    return target


def csv_line_end(frame: Any) -> str:
    r"""Return the line ending that keeps ``frame`` lossless in a CSV: ``"\n"`` or ``"\r\n"``.

    :mod:`csv` (and :meth:`pandas.DataFrame.to_csv`) quote a cell holding a line break only
    if the break is part of the line ending, and CSV readers take a bare carriage return as
    the end of a line. A frame with a carriage return in a text cell is therefore written
    with ``"\r\n"`` line endings (every such cell is quoted); any other with ``"\n"``.

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> csv_line_end(pd.DataFrame({"a": ["x", "y\rz"]})), csv_line_end(pd.DataFrame({"a": [1]}))
    ('\r\n', '\n')
    """
    for col in frame.columns:
        values = frame[col]
        if values.dtype.kind not in "biufcmM" and values.astype(str).str.contains(
                "\r", regex=False).any():
            return "\r\n"
    return "\n"


def backups_folder(root: str | os.PathLike) -> Path:
    """``<root>/.workbench/backups``: where imports keep the tables they rewrite."""
    return Path(root) / ".workbench" / "backups"


def backup_stamp() -> str:
    """The current UTC time as :data:`BACKUP_STAMP` (microseconds, sorts by time)."""
    import pandas as pd

    return pd.Timestamp.now(tz="UTC").strftime(BACKUP_STAMP)


def backup_copy(root: str | os.PathLike, target: Path, stamp: str) -> Path | None:
    """Copy ``target`` to ``<root>/.workbench/backups/<stem>-<stamp><suffix>``.

    Returns the copy, or None when ``target`` does not exist (nothing to keep).
    """
    if not target.exists():
        return None
    folder = backups_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    backup = folder / f"{target.stem}-{stamp}{target.suffix}"
    shutil.copy2(target, backup)
    return backup


def table_path(root: str | os.PathLike, stem: str) -> Path:
    """The project table ``<stem>.parquet`` or ``.csv`` under ``root``.

    The existing file (Parquet first); else Parquet when the items are Parquet, else CSV.
    """
    root = Path(root)
    for suffix in (".parquet", ".csv"):
        if (root / f"{stem}{suffix}").exists():
            return root / f"{stem}{suffix}"
    return root / (f"{stem}.parquet" if (root / "items.parquet").exists() else f"{stem}.csv")


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing).

    The kernel drops the lock when the process dies, so a killed holder never blocks the
    next one.
    """
    import fcntl

    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def import_lock(root: str | os.PathLike):
    """:func:`file_lock` on ``<root>/.workbench/import.lock``: one import at a time."""
    folder = Path(root) / ".workbench"
    folder.mkdir(parents=True, exist_ok=True)
    return file_lock(folder / "import.lock")


def parse_times(raw: Any, path: Any, what: str) -> Any:
    """Parse a time column read from ``path`` to UTC microseconds, or raise SchemaError.

    Missing values stay missing; a value that is not a date/time raises, naming ``what``
    (the column) and the first offending values.
    """
    import pandas as pd

    from .errors import SchemaError

    parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        raise SchemaError(f"{path}: {what} is not a date/time: "
                          f"{sorted(set(raw[bad].astype(str)))[:5]}. Use ISO 8601 like "
                          "2026-01-31T14:05:00Z; nothing was imported.")
    return parsed.dt.as_unit("us")


def _current_mode(target: Path) -> int:
    """The permission bits of the file being replaced, else what ``open`` would give."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    umask = os.umask(0o077)  # elsewhere: set and restore (briefly restrictive, never lax)
    os.umask(umask)
    return umask


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
