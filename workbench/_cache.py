"""Derived results cached by fingerprint in the project's state folder.

Something expensive that several kernels need (the errors frame, consensus, label issues, a
2-D layout of the embeddings, ...) is computed once and kept as Parquet under
``<root>/.workbench/cache/``, in files named after a hash of everything it was computed
from (:func:`key_digest`). A changed input gives a new key, so a stale entry is never read.

- **Atomic**: every file is written with :func:`workbench._io.atomic_write` (a temporary
  file renamed over the target), so a reader sees a complete file or none.
- **One computation**: a computing process holds an exclusive ``fcntl.flock`` on
  ``<entry>.lock``; a second process asking for the same entry waits for it and reads its
  result instead of computing it again. The kernel drops the lock when its holder dies, so a
  killed process never leaves a stale lock; after ``lock_timeout`` seconds the waiter
  computes itself (both results are written atomically: one complete file stays).
- **Never trusted**: an entry that cannot be read, whose stored key differs, or whose parts
  come from two different writes is recomputed and replaced.
- **Several frames per entry**: :func:`cached_value` stores any value as named DataFrame
  parts plus JSON metadata through an encoder/decoder pair (a dict of figures, a fitted
  model); :func:`cached_frame` is the one-frame case.

A frame round-trips exactly: dtypes (categories and their order, ``str``), the index, the
column order, ``attrs`` (JSON values), list-of-str cells (``item_ids``) and dict cells
(``conditions``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LOCK_TIMEOUT", "ON_DISK", "cache_entries", "cache_folder", "cached_frame",
           "cached_value", "clear_cache", "key_digest"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Parquet schema metadata key holding the canonical key an entry was computed for.
_META_KEY = b"workbench.cache.key"
#: The write an entry's part belongs to, its part name, the number of parts, the value's
#: JSON metadata, the frame's attrs and the encoding of its object columns.
_META_TOKEN = b"workbench.cache.token"
_META_PART = b"workbench.cache.part"
_META_PARTS = b"workbench.cache.parts"
_META_VALUE = b"workbench.cache.value"
_META_ATTRS = b"workbench.cache.attrs"
_META_COLUMNS = b"workbench.cache.columns"
#: Seconds a process waits for another one computing the same entry before computing it.
LOCK_TIMEOUT = float(os.environ.get("WORKBENCH_CACHE_LOCK_TIMEOUT", "900"))


class _Uncacheable(TypeError):
    """The value cannot be stored faithfully (it is returned, not cached)."""


def cache_folder(root: str | os.PathLike) -> Path:
    """``<root>/.workbench/cache``: where cached frames live."""
    return Path(root) / ".workbench" / "cache"


def _canonical(key: dict, func: str = "cached_frame") -> str:
    if not isinstance(key, dict):
        raise TypeError(f"The 'key' parameter of {func} must be a dict of the inputs and "
                        f"options. Got {type(key).__name__} instead.")
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The 'key' parameter of {func} must hold JSON values only "
                        f"(str, int, float, bool, None, lists and dicts of them; hash arrays "
                        f"first): {exc}.") from None


def key_digest(key: dict) -> str:
    """The sha256 hex digest of ``key`` as canonical JSON (sorted keys, no spaces).

    Parameters
    ----------
    key : dict
        JSON values only.

    Returns
    -------
    str

    Examples
    --------
    >>> key_digest({"b": 1, "a": [1, 2]}) == key_digest({"a": [1, 2], "b": 1})
    True
    """
    return hashlib.sha256(_canonical(key).encode("ascii")).hexdigest()


def cached_frame(root: str | os.PathLike | None, name: str, key: dict,
                 compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Return ``compute()``, cached as Parquet under ``<root>/.workbench/cache/``.

    Parameters
    ----------
    root : path-like or None
        The project folder; None computes without caching (in-memory projects).
    name : str
        What is cached (``"layout"``): letters, digits, ``_ . -``; part of the file name.
    key : dict
        Everything the frame depends on (input fingerprints and options), JSON values only.
        The entry is ``<name>-<sha256 of the canonical JSON of key>.parquet``.
    compute : callable
        Called without arguments when there is no valid entry; returns a DataFrame with
        string column names that Parquet can store.

    Returns
    -------
    DataFrame

    Raises
    ------
    TypeError
        If ``key`` is not a JSON-able dict or ``compute`` does not return a DataFrame.
    ValueError
        If ``name`` is not a plain file-name part.

    Notes
    -----
    An entry that cannot be read (truncated, not Parquet, no permission) or whose stored key
    differs from ``key`` is recomputed and overwritten. A cache folder that cannot be
    written gives a warning and the computed frame (the cache is an optimisation only).
    See :func:`cached_value` for the lock against duplicate work.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> calls = []
    >>> def compute():
    ...     calls.append(1)
    ...     return pd.DataFrame({"x": [1.0, 2.0]})
    >>> cached_frame(root, "demo", {"n": 2}, compute)["x"].tolist()
    [1.0, 2.0]
    >>> cached_frame(root, "demo", {"n": 2}, compute)["x"].tolist(), len(calls)
    ([1.0, 2.0], 1)
    """
    return cached_value(root, name, key, lambda: _checked(compute()), func="cached_frame")


def _checked(frame) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"cached_frame: 'compute' must return a pandas DataFrame. Got "
                        f"{type(frame).__name__} instead.")
    return frame


def _frame_parts(frame: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], dict]:
    return {"frame": frame}, {}


def _frame_value(parts: dict[str, pd.DataFrame], meta: dict) -> pd.DataFrame:
    return parts["frame"]


def cached_value(root: str | os.PathLike | None, name: str, key: dict,
                 compute: Callable[[], Any], *,
                 encode: Callable[[Any], tuple[dict[str, pd.DataFrame], dict]] = _frame_parts,
                 decode: Callable[[dict[str, pd.DataFrame], dict], Any] = _frame_value,
                 lock_timeout: float | None = None, info: dict | None = None,
                 func: str = "cached_value", columns: list[str] | None = None,
                 load: bool = True) -> Any:
    """Return ``compute()``, cached under ``<root>/.workbench/cache/`` as Parquet parts.

    Parameters
    ----------
    root : path-like or None
        The project folder; None computes without caching.
    name : str
        What is cached; letters, digits, ``_ . -`` (at most 64); part of the file names.
    key : dict
        Everything the value depends on, JSON values only.
    compute : callable
        Called without arguments when there is no valid entry.
    encode : callable, default=the value is one DataFrame
        ``encode(value) -> (parts, meta)``: named DataFrames and a dict of JSON values.
    decode : callable, default=the value is one DataFrame
        ``decode(parts, meta) -> value``, the inverse of ``encode``.
    lock_timeout : float, optional
        Seconds to wait for another process computing the same entry (default
        :data:`LOCK_TIMEOUT`, 900, or ``WORKBENCH_CACHE_LOCK_TIMEOUT``); then compute anyway.
    info : dict, optional
        Filled with ``status`` (``'computed'``, ``'reused'`` or ``'uncached'``) and
        ``seconds`` (what the computation or the read took) and ``path`` (the first part).
    func : str, default='cached_value'
        Name used in error messages.
    columns : list of str, optional
        Read only these columns of the part named ``"frame"`` (a computed value is
        returned whole: the caller selects).
    load : bool, default=True
        False: only make sure a valid entry is on disk (its parts' metadata are checked,
        the data is not read) and return :data:`ON_DISK`; an absent or invalid entry is
        computed, stored and returned.

    Returns
    -------
    object
        The value (decoded from the cache, or computed), or :data:`ON_DISK`.

    Raises
    ------
    TypeError
        If ``key`` is not a JSON-able dict, or ``compute`` is not callable.
    ValueError
        If ``name`` is not a plain file-name part.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"The 'name' parameter of {func} must be a str of letters, "
                         f"digits, '_', '.' or '-' (at most 64). Got {name!r} instead.")
    canonical = _canonical(key, func)
    if not callable(compute):
        raise TypeError(f"The 'compute' parameter of {func} must be a callable. Got "
                        f"{type(compute).__name__} instead.")
    info = {} if info is None else info
    t0 = time.perf_counter()
    if root is None:
        value = compute()
        info.update(status="uncached", seconds=time.perf_counter() - t0, path=None)
        return value
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:40]
    base = cache_folder(root) / f"{name}-{digest}"
    value = _load(base, canonical, decode, columns, load)
    if value is not _MISSING:
        info.update(status="reused", seconds=time.perf_counter() - t0,
                    path=_part_path(base, 0))
        return value
    timeout = LOCK_TIMEOUT if lock_timeout is None else float(lock_timeout)
    with _entry_lock(base, timeout) as locked:
        if locked:  # another process may have written it while we waited
            value = _load(base, canonical, decode, columns, load)
            if value is not _MISSING:
                info.update(status="reused", seconds=time.perf_counter() - t0,
                            path=_part_path(base, 0))
                return value
        t0 = time.perf_counter()
        value = compute()
        seconds = time.perf_counter() - t0
        try:
            parts, meta = encode(value)
            _store(base, canonical, parts, meta)
        except _Uncacheable as exc:
            warnings.warn(f"{name}: not cached ({exc}).", stacklevel=3)
    info.update(status="computed", seconds=seconds, path=_part_path(base, 0))
    return value


_MISSING = object()


class _OnDisk:
    def __repr__(self) -> str:
        return "ON_DISK"


#: What :func:`cached_value` returns with ``load=False`` when a valid entry is on disk.
ON_DISK = _OnDisk()


def _part_path(base: Path, i: int) -> Path:
    return base.with_name(base.name + (".parquet" if i == 0 else f".p{i}.parquet"))


@contextlib.contextmanager
def _entry_lock(base: Path, timeout: float):
    """Hold ``<entry>.lock`` (yields True), or yield False (no folder, or timed out)."""
    import fcntl

    lock = base.with_name(base.name + ".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a+")  # noqa: SIM115 - closed below
    except OSError:
        yield False
        return
    try:
        deadline = time.monotonic() + max(0.0, timeout)
        delay = 0.05
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    warnings.warn(f"waited {timeout:g} s for another process computing "
                                  f"{base.name}; computing it here too.", stacklevel=4)
                    yield False
                    return
                time.sleep(delay)
                delay = min(1.0, delay * 1.5)
            except OSError:  # a file system without locks: compute without one
                yield False
                return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def _load(base: Path, canonical: str, decode, columns: list[str] | None = None,
          load: bool = True) -> Any:
    """The value stored at ``base`` for ``canonical``, or ``_MISSING`` (absent or invalid).

    ``columns``: only these columns of the ``frame`` part; ``load=False``: only the parts'
    metadata are checked and :data:`ON_DISK` is returned.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = _part_path(base, 0)
    if not first.exists():
        return _MISSING
    parts: dict[str, pd.DataFrame] = {}
    token = None
    n_parts = 1
    meta: dict = {}
    i = 0
    try:
        while i < n_parts:
            path = _part_path(base, i)
            schema = pq.read_schema(path)
            md = schema.metadata or {}
            if md.get(_META_KEY) != canonical.encode("ascii"):
                return _MISSING
            if i == 0:
                token = md.get(_META_TOKEN)
                n_parts = int(md.get(_META_PARTS, b"1"))
                meta = json.loads(md.get(_META_VALUE, b"{}"))
            elif md.get(_META_TOKEN) != token:  # parts of two different writes
                return _MISSING
            part = md.get(_META_PART, b"frame").decode("utf-8")
            if load:
                wanted = None
                if columns is not None and part == "frame":
                    wanted = [c for c in schema.names if c in set(columns)
                              or c.startswith("__index_level_")]
                table = pq.read_table(path, columns=wanted)
                if table.schema.metadata is None or \
                        table.schema.metadata.get(_META_TOKEN) != md.get(_META_TOKEN):
                    return _MISSING  # replaced between the two reads
                parts[part] = _from_table(table, md)
            i += 1
        return decode(parts, meta) if load else ON_DISK
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError, IndexError):
        return _MISSING


def _store(base: Path, canonical: str, parts: dict[str, pd.DataFrame], meta: dict) -> None:
    """Write every part (atomically each), the first one last (it makes the entry valid)."""
    import pyarrow.parquet as pq

    from ._io import atomic_write

    token = secrets.token_hex(8).encode("ascii")
    names = list(parts)
    value_meta = _json(meta, "the value's metadata").encode("utf-8")
    tables = []
    for i, part in enumerate(names):
        extra = {_META_KEY: canonical.encode("ascii"), _META_TOKEN: token,
                 _META_PART: part.encode("utf-8"), _META_PARTS: str(len(names)).encode("ascii")}
        if i == 0:
            extra[_META_VALUE] = value_meta
        tables.append(_to_table(parts[part], extra))
    try:
        for i in [*range(1, len(tables)), 0]:
            atomic_write(_part_path(base, i),
                         lambda fh, t=tables[i]: pq.write_table(t, fh), binary=True)
    except OSError as exc:
        warnings.warn(f"cannot write the cache entry {_part_path(base, 0)}: {exc}. The "
                      f"result is computed again next time; check the permissions of "
                      f"{base.parent}.", stacklevel=4)


# ---- one DataFrame <-> one Arrow table, exactly ---------------------------------------


def _plain(value: Any) -> Any:
    """JSON-able form of numpy scalars and arrays (other values unchanged)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        raise TypeError(f"{type(value).__name__} is not stored")
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_plain, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise _Uncacheable(f"{what} is not JSON ({exc})") from None


def _is_str_list(values: np.ndarray) -> bool:
    return all(v is None or (isinstance(v, list) and all(isinstance(s, str) for s in v))
               for v in values)


def _to_table(frame: pd.DataFrame, extra: dict):
    import pyarrow as pa

    if not isinstance(frame, pd.DataFrame):
        raise _Uncacheable(f"a part is a {type(frame).__name__}, not a DataFrame")
    if not all(isinstance(c, str) for c in frame.columns) or frame.columns.has_duplicates:
        raise _Uncacheable("column names must be unique strings")
    encoded = {}
    out = frame
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        values = frame[col].to_numpy()
        if all(v is None or isinstance(v, str) for v in values):
            continue
        if _is_str_list(values):
            encoded[col] = "list"
            continue
        if out is frame:
            out = frame.copy(deep=False)
        out[col] = [None if v is None else _json(v, f"column {col!r}") for v in values]
        encoded[col] = "json"
    try:
        table = pa.Table.from_pandas(out, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise _Uncacheable(f"Parquet cannot store it ({exc})") from None
    meta = {**(table.schema.metadata or {}), **extra,
            _META_ATTRS: _json(frame.attrs, "attrs").encode("utf-8"),
            _META_COLUMNS: json.dumps(encoded).encode("utf-8")}
    return table.replace_schema_metadata(meta)


def _from_table(table, md: dict) -> pd.DataFrame:
    encoded = {c: how for c, how in json.loads(md.get(_META_COLUMNS, b"{}")).items()
               if c in table.column_names}  # a read of some columns: those read
    lists = [c for c, how in encoded.items() if how == "list"]
    order = list(table.column_names)
    # lists of str are made from the flat values (Arrow's own conversion to pandas makes a
    # numpy array per cell: 8x slower for a slice of 2M items)
    frame = table.drop_columns(lists).to_pandas() if lists else table.to_pandas()
    for col, how in encoded.items():
        if how == "list":
            cells = _list_cells(table[col])
        else:
            cells = [None if v is None else json.loads(v)
                     for v in frame[col].to_numpy(dtype=object)]
        column = np.empty(len(cells), dtype=object)
        column[:] = cells
        frame[col] = pd.Series(column, index=frame.index, dtype=object)
    if lists:
        frame = frame[[c for c in order if c in frame.columns]]
    frame.attrs = json.loads(md.get(_META_ATTRS, b"{}"))
    return frame


def _list_cells(column) -> list:
    """The cells of an Arrow list<str> column as lists of str (None for a missing cell)."""
    array = column.combine_chunks()
    values = array.flatten().to_numpy(zero_copy_only=False)
    offsets = array.offsets.to_numpy()
    offsets = offsets - offsets[0]
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    return [values[offsets[i]:offsets[i + 1]].tolist() if valid[i] else None
            for i in range(len(array))]


# ---- housekeeping ---------------------------------------------------------------------


def cache_entries(root: str | os.PathLike) -> pd.DataFrame:
    """The cache files of a project: ``file``, ``name``, ``bytes``, ``modified``.

    Parameters
    ----------
    root : path-like
        The project folder.

    Returns
    -------
    DataFrame
        One row per Parquet file under ``<root>/.workbench/cache`` (empty when none).
    """
    folder = cache_folder(root)
    rows = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.parquet")):
            st = path.stat()
            rows.append({"file": path.name, "name": path.name.rsplit("-", 1)[0],
                         "bytes": int(st.st_size),
                         "modified": pd.Timestamp(st.st_mtime_ns, unit="ns", tz="UTC")})
    return pd.DataFrame(rows, columns=["file", "name", "bytes", "modified"])


def clear_cache(root: str | os.PathLike) -> int:
    """Delete every cached result of a project (they are recomputed when needed).

    Parameters
    ----------
    root : path-like
        The project folder.

    Returns
    -------
    int
        The number of files deleted.
    """
    folder = cache_folder(root)
    n = 0
    if folder.is_dir():
        for path in folder.iterdir():
            if path.suffix in (".parquet", ".lock", ".tmp") and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    n += 1
    return n

