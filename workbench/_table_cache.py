"""Validated project tables kept in the state folder, read back memory-mapped.

:func:`workbench.open_project` validates a project's tables once and keeps the validated
frames under ``<root>/.workbench/cache/`` (:func:`workbench._cache.cache_folder`), keyed by
:func:`workbench._cache.key_digest` of the input fingerprint and the library versions. They
are stored in the Arrow IPC file format, uncompressed, rather than as Parquet like the other
cached results: a 10M-item project's 50M id strings would otherwise be decoded again at every
open (Parquet: ~15 s), whereas an Arrow file is memory-mapped and its string columns become
pandas ``str`` columns without a copy (well under a second; the operating system's page cache
is shared by every kernel that opens the project).

The same rules as :mod:`workbench._cache` hold: every file is written atomically
(:func:`workbench._io.atomic_write`) and carries the canonical key and a token of the write
in its schema metadata; an entry is used only when every part is readable, holds the key and
comes from the same write, else it is recomputed and replaced (never trusted); one process
computes an entry while the others wait for it (a ``fcntl.flock`` the kernel drops when its
holder dies).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from ._cache import _canonical, _entry_lock, cache_folder

__all__ = ["cached_tables"]

_KEY = b"workbench.tables.key"
_TOKEN = b"workbench.tables.token"
_META = b"workbench.tables.meta"


def _paths(root: Path, name: str, canonical: str, parts: list[str]) -> dict[str, Path]:
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:40]
    folder = cache_folder(root)
    return {part: folder / f"{name}-{digest}.{part}.arrow" for part in parts}


def _read(paths: dict[str, Path], canonical: str) -> tuple[dict, dict] | None:
    """The frames and metadata of a complete entry written for ``canonical``, or None."""
    import pyarrow as pa

    frames, token, meta = {}, None, None
    try:
        for part, path in paths.items():
            if not path.exists():
                return None
            with pa.memory_map(str(path), "r") as source:
                table = pa.ipc.open_file(source).read_all()
            md = table.schema.metadata or {}
            if md.get(_KEY) != canonical.encode("ascii"):
                return None
            if token is None:
                token, meta = md.get(_TOKEN), json.loads(md.get(_META, b"null"))
            elif md.get(_TOKEN) != token:
                return None  # parts of two different writes
            frames[part] = table.to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError):
        return None
    return (frames, meta) if token is not None and isinstance(meta, dict) else None


def _write(paths: dict[str, Path], canonical: str, frames: dict, meta: dict) -> bool:
    """Write every part atomically, the first one last; False if it cannot be stored."""
    import pyarrow as pa

    from ._io import atomic_write

    extra = {_KEY: canonical.encode("ascii"), _TOKEN: secrets.token_hex(8).encode("ascii"),
             _META: json.dumps(meta).encode("utf-8")}
    tables = {}
    try:
        for part in paths:
            table = pa.Table.from_pandas(frames[part], preserve_index=False)
            tables[part] = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                          **extra})
    except (pa.ArrowException, TypeError, ValueError):
        return False  # a column Arrow cannot store faithfully: not cached

    def writer(table):
        def write(fh):
            with pa.ipc.new_file(fh, table.schema) as out:
                out.write_table(table)
        return write

    order = list(paths)[1:] + list(paths)[:1]
    try:
        for part in order:
            atomic_write(paths[part], writer(tables[part]), binary=True)
    except OSError:
        return False
    return True


def _drop_others(paths: dict[str, Path], name: str) -> None:
    """Delete the other entries of ``name``: written for inputs that have changed since.

    A process still reading one keeps its data (the file lives on until it is unmapped).
    """
    keep = {p.name for p in paths.values()}
    first = next(iter(paths.values()))
    for path in first.parent.glob(f"{name}-*.arrow*"):
        stem = path.name.removesuffix(".lock")
        if stem not in keep and path.name not in keep:
            with contextlib.suppress(OSError):
                path.unlink()


def cached_tables(root: str | os.PathLike, name: str, key: dict, parts: list[str],
                  compute: Callable[[], tuple[dict, dict]], *,
                  info: dict | None = None) -> tuple[dict, dict]:
    """Return ``compute()``: named frames and JSON metadata, cached as Arrow files.

    Parameters
    ----------
    root : path-like
        The project folder (its ``.workbench/cache`` holds the entry).
    name : str
        What is cached (``"project-frames"``); part of the file names.
    key : dict
        Everything the frames depend on (JSON values).
    parts : list of str
        The names of the frames, the keys of the dict ``compute`` returns.
    compute : callable
        Returns ``(frames, meta)``: a dict of DataFrames (string column names, default
        index) and a dict of JSON values.
    info : dict, optional
        Filled with ``status``: ``'reused'``, ``'computed'`` (and stored) or ``'uncached'``
        (computed, but it could not be stored).

    Returns
    -------
    (dict of DataFrame, dict)
    """
    info = {} if info is None else info
    canonical = _canonical(key)  # what workbench._cache.key_digest hashes
    root = Path(root)
    paths = _paths(root, name, canonical, parts)
    found = _read(paths, canonical)
    if found is not None:
        info["status"] = "reused"
        return found
    first = paths[parts[0]]
    # the result cache's entry lock (<entry>.lock), waiting as long as the writer takes
    with _entry_lock(first, math.inf) as locked:
        if locked:  # another process may have written it while we waited
            found = _read(paths, canonical)
            if found is not None:
                info["status"] = "reused"
                return found
        frames, meta = compute()
        stored = _write(paths, canonical, frames, meta)
        if stored:
            _drop_others(paths, name)
    info["status"] = "computed" if stored else "uncached"
    return frames, meta

