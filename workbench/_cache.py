"""Derived frames cached by fingerprint in the project's state folder.

Something expensive that several kernels need (a 2-D layout of the embeddings, ...) is
computed once and kept as Parquet under ``<root>/.workbench/cache/``, in a file named after
a hash of everything it was computed from (:func:`key_digest`). A changed input gives a new
key, so a stale entry is never read; an entry that cannot be read, or whose stored key does
not match, is recomputed and replaced (never trusted); entries are written atomically
(:func:`workbench._io.atomic_write`), so two kernels computing the same entry at once each
write a complete file and the last rename wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

__all__ = ["cache_folder", "cached_frame", "key_digest"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Parquet schema metadata key holding the canonical key an entry was computed for.
_META_KEY = b"workbench.cache.key"


def cache_folder(root: str | os.PathLike) -> Path:
    """``<root>/.workbench/cache``: where cached frames live."""
    return Path(root) / ".workbench" / "cache"


def _canonical(key: dict) -> str:
    if not isinstance(key, dict):
        raise TypeError(f"The 'key' parameter of cached_frame must be a dict of the inputs and "
                        f"options. Got {type(key).__name__} instead.")
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The 'key' parameter of cached_frame must hold JSON values only "
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
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"The 'name' parameter of cached_frame must be a str of letters, "
                         f"digits, '_', '.' or '-' (at most 64). Got {name!r} instead.")
    canonical = _canonical(key)
    if not callable(compute):
        raise TypeError(f"The 'compute' parameter of cached_frame must be a callable. Got "
                        f"{type(compute).__name__} instead.")
    if root is None:
        return _checked(compute())
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    path = cache_folder(root) / f"{name}-{digest[:40]}.parquet"
    frame = _read(path, canonical)
    if frame is not None:
        return frame
    frame = _checked(compute())
    _write(path, frame, canonical)
    return frame


def _checked(frame) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"cached_frame: 'compute' must return a pandas DataFrame. Got "
                        f"{type(frame).__name__} instead.")
    return frame


def _read(path: Path, canonical: str) -> pd.DataFrame | None:
    """The entry at ``path`` if it is readable and was computed for ``canonical``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError):
        return None
    meta = table.schema.metadata or {}
    if meta.get(_META_KEY) != canonical.encode("ascii"):
        return None
    try:
        return table.to_pandas()
    except (pa.ArrowException, ValueError):
        return None


def _write(path: Path, frame: pd.DataFrame, canonical: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ._io import atomic_write

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _META_KEY: canonical.encode("ascii")})
    try:
        atomic_write(path, lambda fh: pq.write_table(table, fh), binary=True)
    except OSError as exc:
        warnings.warn(f"cannot write the cache entry {path}: {exc}. The result is computed "
                      f"again next time; check the permissions of {path.parent}.",
                      stacklevel=3)
