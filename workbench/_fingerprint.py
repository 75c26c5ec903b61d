r"""What a project's derived results depend on, as JSON for :func:`workbench._cache.key_digest`.

The inputs are the project folder's top-level data files (its tables, ``workbench.toml``,
embedding files): each is fingerprinted by name, size and modification time in nanoseconds,
as ``make`` does, so checking a 10M-item project costs one ``stat`` per file. Editing,
replacing or adding a file changes the fingerprint; the media (images, ``.txt`` items under
sub-folders) do not take part.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "items.csv").write_text("item_id\\na\\n")
>>> before = input_fingerprint(root)
>>> _ = (root / "items.csv").write_text("item_id\\na\\nb\\n")
>>> input_fingerprint(root) == before
False
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_SUFFIXES", "input_fingerprint"]

#: Top-level files that are project inputs.
DATA_SUFFIXES = (".csv", ".parquet", ".toml", ".npy", ".txt", ".json", ".jsonl")


def input_fingerprint(root: str | os.PathLike) -> dict:
    """Name, size and mtime (ns) of every top-level data file of the project folder ``root``.

    Parameters
    ----------
    root : path-like
        The project folder.

    Returns
    -------
    dict
        ``{"files": [[name, size, mtime_ns], ...]}`` sorted by name; JSON values only.
    """
    folder = Path(root)
    files = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.is_file() or not entry.name.lower().endswith(DATA_SUFFIXES):
                continue
            st = entry.stat()
            files.append([entry.name, int(st.st_size), int(st.st_mtime_ns)])
    files.sort()
    return {"files": files}
