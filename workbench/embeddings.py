"""Embeddings of the items: the optional project file, a baseline to compute them, neighbours.

A project may hold one vector per item, in one of two forms::

    embeddings.parquet         item_id + numeric columns (one per dimension), or item_id +
                               one list column (one vector per row)
    embeddings.npy             a 2-D float array, one row per item in the order of the items
                               file, or in the order of
    embedding_ids.txt          one item_id per line (optional, beside embeddings.npy)

They are validated like the rest of the project (:func:`read_embeddings`: the file, row and
column of every problem, and how to fix it) and held as float32 by the
:class:`~workbench.project.Project` (:meth:`~workbench.project.Project.embedding_matrix`).
Items without a vector are allowed (a warning): they are left out of the map and of the
neighbour searches.

:func:`compute_embeddings` is an honest, offline *baseline* for projects that have none
(``workbench embed PROJECT``): HOG features + PCA for images, TF-IDF + truncated SVD for
text. It captures shape and wording, not meaning: a team with a model of its own should
write that model's embeddings instead (see ``docs/embeddings.md``).

:func:`knn_graph` builds the one nearest-neighbour graph (cleanlab's ``knn_graph`` format)
that the data issues and the item view share; :func:`nearest` reads it. Coverage does not
use it: it measures distances to the reference items only, so it fits its own Euclidean
:class:`~sklearn.neighbors.NearestNeighbors` on them (:func:`workbench.coverage.coverage`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._validation import check_int, check_option, check_random_state
from .errors import SchemaError, WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    from scipy.sparse import csr_matrix

    from .project import Project

__all__ = [
    "EMBEDDING_FILES",
    "compute_embeddings",
    "embedding_frame",
    "knn_graph",
    "nearest",
    "read_embeddings",
    "validate_embeddings",
    "write_embeddings",
]

#: The files of the embeddings (at most one of the first two).
EMBEDDING_FILES = ("embeddings.parquet", "embeddings.npy", "embedding_ids.txt")
#: Largest dimension :func:`compute_embeddings` keeps.
MAX_COMPUTED_DIM = 64
#: Side of the square grey image HOG features are computed on.
HOG_SIZE = 64
_METHODS = ("auto", "hog", "tfidf")
_FIX_COMPUTE = "or run `workbench embed PROJECT --force` to compute the baseline instead"


# --------------------------------------------------------------------------------------
# reading and validating


def _problems_module():
    from . import project as _project

    return _project


def read_embeddings(root: str | os.PathLike, item_ids, problems: list | None = None
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Read and validate the embeddings of a project folder, if it has any.

    Parameters
    ----------
    root : path-like
        The project folder.
    item_ids : array-like of str
        The project's item ids, in items-file order.
    problems : list, optional
        Where problems are collected (a :class:`~workbench.project.Problem` each). When
        omitted, errors raise :class:`~workbench.errors.SchemaError` and warnings are
        dropped.

    Returns
    -------
    (item_ids, X) or None
        ``item_ids`` : ndarray of str, ``X`` : ndarray of float32, shape (n, d), rows in
        items order (items without a vector left out); None when the folder has no
        embeddings or they have errors (listed in ``problems``).

    Raises
    ------
    SchemaError
        Only when ``problems`` is None and there are errors.
    """
    mod = _problems_module()
    collected = mod._Problems()
    result = _read(Path(root), np.asarray(item_ids, dtype=object).astype(str), collected)
    if problems is None:
        if collected.errors:
            raise SchemaError(mod._summary(collected), problems=list(collected))
    else:
        problems.extend(collected)
    return None if collected.errors else result


def _read(root: Path, item_ids: np.ndarray, problems) -> tuple[np.ndarray, np.ndarray] | None:
    parquet, npy, ids_txt = (root / name for name in EMBEDDING_FILES)
    if parquet.exists() and npy.exists():
        problems.error(parquet.name, "both embeddings.parquet and embeddings.npy exist; keep "
                                     "only one of them (delete the other).")
        return None
    if parquet.exists():
        if ids_txt.exists():
            problems.warn(ids_txt.name, "embedding_ids.txt is ignored: it goes with "
                                        "embeddings.npy, and embeddings.parquet has its own "
                                        "item_id column. Delete it.")
        frame = _read_parquet(parquet, problems)
        if frame is None:
            return None
        return _validated(frame, item_ids, problems, parquet.name, csv=False)
    if npy.exists():
        return _read_npy(npy, ids_txt, item_ids, problems)
    if ids_txt.exists():
        problems.warn(ids_txt.name, "embedding_ids.txt without embeddings.npy is ignored. Add "
                                    "embeddings.npy (one row per id) or delete it.")
    return None


def _read_parquet(path: Path, problems) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        problems.error(path.name, f"cannot read the Parquet file: {exc}. Write it again "
                                  f"(`frame.to_parquet(...)`), {_FIX_COMPUTE}.")
        return None
    table = _without_pandas_index(table, path, problems)
    if table is None:
        return None
    names = [str(n).strip() for n in table.column_names]
    if len(set(names)) < len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        problems.error(path.name, f"duplicate column name(s) {dups}; give each dimension its "
                                  f"own column name.")
        return None
    lists = [i for i, f in enumerate(table.schema)
             if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)
             or pa.types.is_fixed_size_list(f.type)]
    if lists:  # item_id + one list column: expanded into columns by _validated
        out = pd.DataFrame({names[i]: table.column(i).to_pandas() for i in range(len(names))
                            if i not in lists})
        for i in lists:
            out[names[i]] = pd.Series(table.column(i).to_pylist(), dtype=object)
        return out
    frame = table.to_pandas(ignore_metadata=True)  # the index is a column now, or gone
    frame.columns = names
    return frame


def _without_pandas_index(table, path: Path, problems):
    """The table with the pandas index it was saved with resolved, or None (an error).

    ``frame.set_index('item_id').to_parquet(path)`` stores the ids as an index named
    ``item_id``: it becomes the ``item_id`` column. pandas' default index (0 .. n-1,
    unnamed) is dropped. Any other index is reported, with the fix.
    """
    import pyarrow as pa

    meta = table.schema.pandas_metadata or {}
    levels = meta.get("index_columns") or []
    if not levels:
        return table
    if len(levels) == 1:
        level = levels[0]
        if isinstance(level, dict):  # a RangeIndex: kept in the metadata, not as a column
            name, field = level.get("name"), None
            values = np.arange(level.get("start", 0), level.get("stop", 0), level.get("step", 1))
        else:
            names = {c.get("field_name"): c.get("name") for c in meta.get("columns", [])}
            name, field = names.get(level), level
            values = table.column(level)
        others = [c for c in table.column_names if c != field]
        if name == "item_id" and "item_id" not in others:
            if field is None:
                return table.append_column("item_id", pa.array(values))
            return table.rename_columns([("item_id" if c == field else c)
                                         for c in table.column_names])
        if name is None and _is_default_index(values):
            return table if field is None else table.drop_columns([field])
    shown = ", ".join("unnamed" if n is None else f"named {n!r}"
                      for n in (_index_name(level, meta) for level in levels))
    problems.error(path.name, f"the file was saved with a pandas index ({shown}); only an "
                              f"index named item_id (with no item_id column beside it) or "
                              f"pandas' default index can be read. Save it without the index "
                              f"(`frame.to_parquet(path, index=False)`, the ids in an item_id "
                              f"column) or, when the index holds the item ids, name it item_id "
                              f"(`frame.rename_axis('item_id').to_parquet(path)`).")
    return None


def _is_default_index(values) -> bool:
    """Whether ``values`` are 0, 1, ..., n - 1: pandas' default index."""
    values = np.asarray(values)
    return values.dtype.kind in "iu" and np.array_equal(values, np.arange(len(values)))


def _index_name(level, meta: dict):
    if isinstance(level, dict):
        return level.get("name")
    return next((c.get("name") for c in meta.get("columns", [])
                 if c.get("field_name") == level), level)


def _read_npy(npy: Path, ids_txt: Path, item_ids: np.ndarray, problems):
    try:
        X = np.load(npy, allow_pickle=False, mmap_mode=None)
    except ValueError as exc:  # object arrays (ragged rows) need pickle: refused
        problems.error(npy.name, f"cannot read the array: {exc}. Save a 2-D numeric array "
                                 f"(np.save(path, X.astype('float32'))); rows of different "
                                 f"lengths cannot be stored.")
        return None
    except OSError as exc:
        problems.error(npy.name, f"cannot read the file: {exc}. Save it with np.save, "
                                 f"{_FIX_COMPUTE}.")
        return None
    if X.ndim != 2 or X.shape[1] == 0:
        problems.error(npy.name, f"the array has shape {X.shape}; it must be 2-D (one row per "
                                 f"item, one column per dimension). Reshape it, e.g. "
                                 f"X.reshape(len(X), -1).")
        return None
    if X.dtype.kind not in "biuf":
        problems.error(npy.name, f"the array holds {X.dtype} values; it must be numeric. Save "
                                 f"X.astype('float32').")
        return None
    if ids_txt.exists():
        try:
            lines = ids_txt.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            problems.error(ids_txt.name, f"not valid UTF-8 at byte offset {exc.start}; save it "
                                         f"as UTF-8, one item_id per line.")
            return None
        while lines and not lines[-1].strip():
            lines.pop()
        ids = np.array([s.strip() for s in lines], dtype=object)
        if len(ids) != len(X):
            problems.error(ids_txt.name, f"{len(ids):,} ids for {len(X):,} rows of "
                                         f"embeddings.npy; write exactly one item_id per row "
                                         f"of the array, in the same order.")
            return None
        source = "ids"
    else:
        if len(X) != len(item_ids):
            problems.error(npy.name, f"{len(X):,} rows but the items file has "
                                     f"{len(item_ids):,} items. Without embedding_ids.txt the "
                                     f"rows must follow the items file one to one; add "
                                     f"embedding_ids.txt (one item_id per line, in row order).")
            return None
        ids = item_ids.astype(object)
        source = None
    frame = pd.DataFrame(X)
    frame.columns = [f"e{i}" for i in range(X.shape[1])]
    frame.insert(0, "item_id", ids)
    return _validated(frame, item_ids, problems, npy.name, csv=False,
                      id_file=ids_txt.name if source else None)


def _validated(frame: pd.DataFrame, item_ids: np.ndarray, problems, file: str, *,
               csv: bool, id_file: str | None = None):
    """Check an embeddings frame (item_id + numeric columns); return (ids, X) in items order.

    Problems are added to ``problems`` (rows 0-based, like the other Parquet tables);
    ``id_file`` names the file the ids came from, when it is not ``file``.
    """
    mod = _problems_module()
    id_file = id_file or file
    if "item_id" not in frame.columns:
        hint = mod._did_you_mean("item_id", [str(c) for c in frame.columns])
        problems.error(file, f"missing the column 'item_id'. Found columns "
                             f"{list(map(str, frame.columns))[:8]}.{hint} Add the item ids "
                             f"(or use embeddings.npy in items-file order).", column="item_id")
        return None
    dims = [c for c in frame.columns if c != "item_id"]
    if not dims:
        problems.error(file, "no embedding columns: add one numeric column per dimension "
                             "(e0, e1, ...) beside item_id.")
        return None
    X = _matrix(frame, dims, problems, file)
    if X is None:
        return None
    raw_ids = frame["item_id"]
    blank = (raw_ids.isna() | (raw_ids.astype(str).str.strip() == "")).to_numpy()
    ids = raw_ids.astype(str).to_numpy(dtype=object)
    ok = True
    if blank.any():
        pos = np.flatnonzero(blank)
        problems.error(id_file, f"empty item_id on {_where(pos)}. Every vector needs the "
                                f"item_id it belongs to.", column="item_id", row=int(pos[0]))
        ok = False
    dup = pd.Series(ids).duplicated(keep=False).to_numpy() & ~blank
    if dup.any():
        pos = np.flatnonzero(dup)
        problems.error(id_file, f"item_id(s) with more than one vector: "
                                f"{mod._listed(pd.unique(ids[pos]))} ({_where(pos)}). Keep one "
                                f"vector per item.", column="item_id", row=int(pos[0]))
        ok = False
    index = pd.Index(item_ids)
    where = index.get_indexer(ids) if index.is_unique else \
        pd.Index(pd.unique(item_ids)).get_indexer(ids)
    unknown = (where < 0) & ~blank
    if unknown.any():
        pos = np.flatnonzero(unknown)
        problems.error(id_file, f"vectors for item_id(s) not in items: "
                                f"{mod._listed(pd.unique(ids[pos]))} ({_where(pos)}). Delete "
                                f"these rows or add the items.", column="item_id",
                       row=int(pos[0]))
        ok = False
    if not _all_finite(X, ids, dims, problems, file):
        ok = False
    if not ok:
        return None
    missing = len(index) - len(ids)
    if missing > 0:
        absent = np.setdiff1d(np.arange(len(index)), where, assume_unique=False)
        problems.warn(id_file, f"{len(absent):,} item(s) have no vector: "
                               f"{mod._listed(item_ids[absent])}. They are left out of the map "
                               f"and of the neighbour searches; add their vectors to include "
                               f"them.", column="item_id")
    order = np.argsort(where, kind="stable")
    return item_ids[where[order]].astype(str), np.ascontiguousarray(X[order])


def _all_finite(X: np.ndarray, ids: np.ndarray, dims: list, problems, file: str) -> bool:
    """Whether every value is finite; else one problem naming the rows and the first column.

    ``dims`` are the dimension columns, or the one list column (its first bad element is
    named then).
    """
    bad = ~np.isfinite(X).all(axis=1)
    if not bad.any():
        return True
    pos = np.flatnonzero(bad)
    first = int(np.flatnonzero(~np.isfinite(X[pos[0]]))[0])
    col = dims[first] if len(dims) == X.shape[1] else dims[0]
    where = _where(pos) if len(dims) == X.shape[1] else \
        f"{_where(pos)}; column {str(col)!r}, element {first} of the vector"
    problems.error(file, f"NaN or infinite values (or values too large for float32) in "
                         f"the vectors of item_id(s) {_problems_module()._listed(ids[pos])} "
                         f"({where}). Recompute these vectors or delete the rows.",
                   column=str(col), row=int(pos[0]))
    return False


def _where(pos: np.ndarray) -> str:
    shown = ", ".join(str(int(p)) for p in pos[:5])
    more = f" and {len(pos) - 5} more" if len(pos) > 5 else ""
    return f"row{'s' if len(pos) > 1 else ''} {shown}{more}"


def _matrix(frame: pd.DataFrame, dims: list, problems, file: str) -> np.ndarray | None:
    """The float32 matrix of the dimension columns (or of one list column), else None."""
    mod = _problems_module()
    if len(dims) == 1 and _is_list_column(frame[dims[0]]):
        return _list_matrix(frame, dims[0], problems, file)
    nonnum = [c for c in dims if not (pd.api.types.is_numeric_dtype(frame[c].dtype)
                                      and not pd.api.types.is_bool_dtype(frame[c].dtype))]
    if nonnum:
        c = nonnum[0]
        sample = frame[c].dropna().astype(str).head(3).tolist()
        problems.error(file, f"column(s) {mod._listed(map(str, nonnum))} are not numeric "
                             f"(e.g. {sample!r} in {c!r}). Every column other than item_id "
                             f"must be one dimension of the vector: write numbers, or drop the "
                             f"column.", column=str(c))
        return None
    with np.errstate(over="ignore"):
        return frame[dims].to_numpy(dtype=np.float32, na_value=np.nan)


def _is_list_column(values: pd.Series) -> bool:
    """Whether ``values`` holds one vector (list, tuple, array) per row: its first non-null."""
    if values.dtype != object:
        return False
    present = values.notna().to_numpy()
    return bool(present.any()) and isinstance(values.iloc[int(present.argmax())],
                                              list | tuple | np.ndarray)


def _list_matrix(frame: pd.DataFrame, col, problems, file: str) -> np.ndarray | None:
    """The float32 matrix of a list column (one vector per row), else None (problems added)."""
    mod = _problems_module()
    values = frame[col].to_numpy()
    ids = frame["item_id"].to_numpy()
    lengths = np.array([len(v) if hasattr(v, "__len__") else -1 for v in values])
    ok = True
    checks = ((lengths < 0, "missing vector(s) (null)",
               "Write each item's vector, or delete these rows (items without a vector are "
               "allowed)."),
              (lengths == 0, "empty vector(s) (no values)",
               "Write each item's vector (one number per dimension), or delete these rows."))
    for mask, what, fix in checks:
        if mask.any():
            pos = np.flatnonzero(mask)
            problems.error(file, f"{what} in column {col!r} for item_id(s) "
                                 f"{mod._listed(ids[pos])} ({_where(pos)}). {fix}",
                           column=str(col), row=int(pos[0]))
            ok = False
    sized = lengths[lengths > 0]
    width = int(pd.Series(sized).mode().iloc[0]) if len(sized) else 0
    ragged = (lengths > 0) & (lengths != width)
    if ragged.any():
        pos = np.flatnonzero(ragged)
        problems.error(file, f"vectors of different lengths in column {col!r}: most have "
                             f"{width} values, but {mod._listed(ids[pos])} ({_where(pos)}) "
                             f"have {mod._listed(sorted(set(lengths[pos].tolist())))}. Every "
                             f"vector needs the same dimension.",
                       column=str(col), row=int(pos[0]))
        ok = False
    if not ok:
        return None
    try:
        return np.asarray(np.stack(values), dtype=np.float32)
    except (TypeError, ValueError) as exc:
        problems.error(file, f"column {col!r} holds values that are not numbers ({exc}). "
                             f"Write numeric vectors.", column=str(col))
        return None


def validate_embeddings(frame: pd.DataFrame, item_ids, *, name: str = "embeddings",
                        problems: list | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Check an in-memory embeddings frame against the item ids (as the file would be).

    Parameters
    ----------
    frame : DataFrame
        ``item_id`` + one numeric column per dimension (or one list column).
    item_ids : array-like of str
        The project's items, in order.
    name : str, default='embeddings'
        The name problems are reported under.
    problems : list, optional
        As in :func:`read_embeddings`.

    Returns
    -------
    (item_ids, X) or None
        As :func:`read_embeddings`.

    Raises
    ------
    TypeError
        If ``frame`` is not a DataFrame.
    SchemaError
        When ``problems`` is None and the frame has errors.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"The 'embeddings' parameter must be a pandas DataFrame (item_id + "
                        f"numeric columns) or None. Got {type(frame).__name__} instead.")
    mod = _problems_module()
    collected = mod._Problems()
    if frame.empty:
        collected.error(name, "the frame has no rows; pass None when there are no embeddings.")
        result = None
    else:
        frame = frame.rename(columns=str)
        result = _validated(frame, np.asarray(item_ids, dtype=object).astype(str), collected,
                            name, csv=False)
    if problems is None:
        if collected.errors:
            raise SchemaError(mod._summary(collected), problems=list(collected))
    else:
        problems.extend(collected)
    return None if collected.errors else result


def embedding_frame(item_ids, X) -> pd.DataFrame:
    """``item_id`` + float32 columns ``e0..e{d-1}``: the frame :func:`write_embeddings` takes.

    Parameters
    ----------
    item_ids : array-like of str, shape (n,)
    X : array-like of shape (n, d)

    Returns
    -------
    DataFrame
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) != len(item_ids):
        raise ValueError(f"embedding_frame: X must have shape (len(item_ids), d) = "
                         f"({len(item_ids)}, d). Got {X.shape} instead.")
    frame = pd.DataFrame(X, columns=[f"e{i}" for i in range(X.shape[1])])
    frame.insert(0, "item_id", pd.Series(np.asarray(item_ids).astype(str), dtype="str"))
    return frame


def write_embeddings(root: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write ``<root>/embeddings.parquet`` atomically (float32), replacing any other form.

    Parameters
    ----------
    root : path-like
        The project folder.
    frame : DataFrame
        ``item_id`` + numeric columns (see :func:`embedding_frame`). It is checked first
        (numbers, finite, one vector per id) against the project's items when the folder
        holds an items file.

    Returns
    -------
    Path
        The written file. ``embeddings.npy`` and ``embedding_ids.txt`` are removed after it
        is in place (the project holds one form).

    Raises
    ------
    SchemaError
        If the frame is not valid embeddings of the project's items.
    """
    from ._io import atomic_write

    root = Path(root)
    item_ids = _project_item_ids(root)
    if item_ids is None:
        item_ids = np.asarray(frame["item_id"] if isinstance(frame, pd.DataFrame)
                              and "item_id" in frame.columns else [], dtype=object).astype(str)
    ids, X = validate_embeddings(frame, item_ids, name="embeddings.parquet")
    out = embedding_frame(ids, X)
    target = atomic_write(root / "embeddings.parquet",
                          lambda fh: out.to_parquet(fh, index=False), binary=True)
    for stale in EMBEDDING_FILES[1:]:
        if (root / stale).exists():
            (root / stale).unlink()
    return target


def _project_item_ids(root: Path) -> np.ndarray | None:
    for name in ("items.parquet", "items.csv"):
        path = root / name
        if path.exists():
            if name.endswith(".csv"):
                ids = pd.read_csv(path, usecols=["item_id"], dtype=str, keep_default_na=False)
            else:
                ids = pd.read_parquet(path, columns=["item_id"])
            return ids["item_id"].astype(str).to_numpy(dtype=object)
    return None


# --------------------------------------------------------------------------------------
# the baseline


def compute_embeddings(project: Project, method: str = "auto", *, dim: int = MAX_COMPUTED_DIM,
                       random_state: int | np.random.RandomState | None = 0) -> pd.DataFrame:
    """Compute baseline embeddings offline: HOG + PCA for images, TF-IDF + SVD for text.

    This is a *baseline*, honest about what it is: HOG (histograms of oriented gradients,
    :func:`skimage.feature.hog` on each image turned grey and resized to 64 x 64) captures
    shape and edges, TF-IDF captures shared words; neither knows what an item means. A team
    with a model of its own should write that model's embeddings (``embeddings.parquet``).

    Parameters
    ----------
    project : Project
    method : {'auto', 'hog', 'tfidf'}, default='auto'
        ``'auto'``: ``'tfidf'`` when the items have a ``text`` column or ``.txt`` files,
        else ``'hog'`` when they have image files.
    dim : int, default=64
        The most dimensions kept (PCA / truncated SVD components; fewer on tiny projects).
    random_state : int, RandomState instance or None, default=0
        Seed of the randomized PCA / SVD solvers: an int in [0, 2**32 - 1], a
        :class:`numpy.random.RandomState`, or None (not reproducible).

    Returns
    -------
    DataFrame
        ``item_id`` + float32 columns ``e0..``, one row per item, in items order.

    Raises
    ------
    TypeError
        A ``dim`` that is not an int.
    ValueError
        An unknown ``method``, a ``dim`` below 1 or a bad ``random_state``.
    WorkbenchError
        When the project has neither text nor images to embed (or only text, with
        ``method='hog'``), or an image cannot be read (the message names the file and the
        item).
    """
    check_option(method, "method", "compute_embeddings", _METHODS)
    dim = check_int(dim, "dim", "compute_embeddings", minimum=1)
    random_state = check_random_state(random_state, "compute_embeddings", instances=True)
    if method == "auto":
        method = "tfidf" if _has_text(project) else "hog"
    ids = project.items["item_id"].to_numpy(dtype=str)
    if method == "tfidf":
        X = _tfidf_svd(_texts(project), dim, random_state)
    else:
        X = _hog_pca(ids, _images(project), dim, random_state)
    frame = embedding_frame(ids, X)
    frame.attrs["method"] = method
    return frame


def _has_text(project) -> bool:
    return "text" in project.items.columns or _txt_files(project.items)


def _txt_files(items: pd.DataFrame) -> bool:
    """Whether the items' files are all ``.txt`` files (a text project without a text column)."""
    if "filepath" in items.columns and len(items):
        paths = items["filepath"].dropna().astype(str)
        return len(paths) > 0 and bool(paths.str.lower().str.endswith(".txt").all())
    return False


def _texts(project) -> list[str]:
    items = project.items
    if "text" in items.columns:
        return items["text"].fillna("").astype(str).tolist()
    if not _has_text(project):
        raise WorkbenchError("compute_embeddings(method='tfidf'): the items have no 'text' "
                             "column and no .txt files. Add a text column, or use "
                             "method='hog' for images.")
    out, bad = [], []
    for item_id in items["item_id"].astype(str):
        path = project.media_path(item_id)
        try:
            out.append(path.read_text(encoding="utf-8", errors="replace") if path else "")
            if path is None:
                bad.append(item_id)
        except OSError:
            out.append("")
            bad.append(item_id)
    _refuse_unreadable(bad, "text file")
    return out


def _images(project) -> list[Path]:
    no_files = "filepath" not in project.items.columns or project.root is None
    if (no_files and "text" in project.items.columns) or _txt_files(project.items):
        raise WorkbenchError(
            "compute_embeddings(method='hog'): this is a text project (a 'text' column or .txt "
            "files), and HOG embeds images. Use method='tfidf' (`workbench embed PROJECT "
            "--method tfidf`) or the default 'auto'.")
    if no_files:
        raise WorkbenchError(
            "compute_embeddings: the project has no image files (a 'filepath' column in a "
            "project folder) and no text. Supply your own embeddings.parquet (item_id + one "
            "column per dimension).")
    paths, bad = [], []
    for item_id in project.items["item_id"].astype(str):
        path = project.media_path(item_id)
        if path is None or not path.is_file():
            bad.append(item_id)
        paths.append(path)
    _refuse_unreadable(bad, "image")
    return paths


def _refuse_unreadable(bad: list[str], what: str) -> None:
    if bad:
        mod = _problems_module()
        raise WorkbenchError(f"compute_embeddings: {len(bad):,} item(s) have no readable "
                             f"{what}: {mod._listed(bad)}. Fix their filepath (see `workbench "
                             f"validate`) or remove the items, then run it again.")


def _hog_pca(ids, paths: list[Path], dim: int, random_state) -> np.ndarray:
    from skimage.feature import hog
    from skimage.transform import resize

    feats = []
    for item_id, path in zip(ids, paths, strict=True):
        try:
            img = _grey(path)
        except Exception as exc:  # noqa: BLE001 - any decoder failure: this file's
            raise WorkbenchError(f"compute_embeddings: cannot read the image {str(path)!r} of "
                                 f"item {str(item_id)!r} ({type(exc).__name__}: {exc}). Fix or "
                                 f"replace the file, or remove the item, then run it "
                                 f"again.") from None
        img = resize(img, (HOG_SIZE, HOG_SIZE), anti_aliasing=True)
        feats.append(hog(img, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                         feature_vector=True).astype(np.float32))
    F = np.vstack(feats) if feats else np.zeros((0, 1), np.float32)
    return _reduce(F, dim, random_state, "pca")


def _grey(path: Path) -> np.ndarray:
    """The image at ``path`` as a 2-D float64 array of grey levels, whatever its mode.

    Any Pillow mode (grey, grey + alpha, palette, RGB, RGBA, CMYK, ...) is turned grey;
    transparent pixels are laid on white (as :func:`skimage.color.rgba2rgb` does). 8-bit
    images give values in [0, 1]; 16- and 32-bit grey images keep their own scale (HOG
    normalises each block, so the scale does not matter). A multi-frame file gives its
    first frame.
    """
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I", "F") or im.mode.startswith("I;16"):
            return np.asarray(im, dtype=np.float64)
        if "A" in im.getbands() or "transparency" in im.info:
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im.convert("RGBA"))
        return np.asarray(im.convert("L"), dtype=np.float64) / 255.0


def _tfidf_svd(texts: list[str], dim: int, random_state) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, min_df=1, max_features=50_000,
                          token_pattern=r"(?u)\b\w+\b")
    try:
        F = vec.fit_transform(texts)
    except ValueError:  # every text empty: no vocabulary
        raise WorkbenchError("compute_embeddings: the texts hold no words. Check the 'text' "
                             "column or the .txt files.") from None
    return _reduce(F, dim, random_state, "svd")


def _reduce(F, dim: int, random_state, kind: str) -> np.ndarray:
    n, d = F.shape
    if kind == "pca":
        from sklearn.decomposition import PCA

        k = min(dim, n, d)
        if k < 1:
            return np.zeros((n, 1), np.float32)
        return PCA(n_components=k, random_state=random_state).fit_transform(F).astype(
            np.float32)
    from sklearn.decomposition import TruncatedSVD

    k = min(dim, n - 1, d - 1)
    if k < 1:  # a single item or a single word: the tf-idf itself
        return np.asarray(F.toarray(), dtype=np.float32)
    return TruncatedSVD(n_components=k, random_state=random_state).fit_transform(F).astype(
        np.float32)


# --------------------------------------------------------------------------------------
# neighbours


def _default_metric(X: np.ndarray) -> str:
    """Pick cleanlab's default: cosine above 3 dimensions, else euclidean."""
    return "cosine" if X.shape[1] > 3 else "euclidean"


def knn_graph(project_or_X, k: int = 10, *, metric: str | None = None) -> csr_matrix:
    """The k-nearest-neighbour graph of the embeddings, in cleanlab's ``knn_graph`` format.

    A :class:`scipy.sparse.csr_matrix` of shape (n, n): row i holds the ``k`` nearest other
    rows of row i (itself left out), their distances as data, sorted by increasing distance
    -- what :meth:`cleanlab.Datalab.find_issues` takes as ``knn_graph`` and what cleanlab
    would build itself (:class:`sklearn.neighbors.NearestNeighbors`, cosine distance above
    3 dimensions, else euclidean). Exact duplicates are at distance 0.

    For a project the graph is computed once and kept on the project (one shared graph for
    the data issues and the item view; coverage fits its own on the reference items); a
    smaller ``k`` than the kept one is read from it, not recomputed.

    Parameters
    ----------
    project_or_X : Project or array-like of shape (n, d)
        A project (rows in :meth:`Project.embedding_matrix` order) or a matrix.
    k : int, default=10
        Neighbours per row (at most n - 1).
    metric : {'cosine', 'euclidean'}, optional
        Default: cleanlab's choice (above).

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n, n)

    Raises
    ------
    ValueError
        A bad ``k`` or ``metric``, or fewer than 2 rows.
    WorkbenchError
        A project without embeddings (the message says how to add them).

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    >>> g = knn_graph(X, k=1)
    >>> g.toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 2., 0.]])
    """
    from .project import Project

    if isinstance(project_or_X, Project):
        X = project_or_X.embedding_matrix()[1]
    else:
        X = np.asarray(project_or_X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"knn_graph: X must be 2-D (n, d). Got shape {X.shape} instead.")
    n = len(X)
    if n < 2:
        raise ValueError(f"knn_graph needs at least 2 rows; got {n}.")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n - 1:
        raise ValueError(f"The 'k' parameter of knn_graph must be an int in the range "
                         f"[1, {n - 1}]. Got {k!r} instead.")
    if metric is not None and metric not in ("cosine", "euclidean"):
        raise ValueError(f"The 'metric' parameter of knn_graph must be a str among "
                         f"{{'cosine', 'euclidean'}} or None. Got {metric!r} instead.")
    metric = metric or _default_metric(X)
    if not isinstance(project_or_X, Project):
        return _graph(X, int(k), metric)
    cache = project_or_X._knn_graphs
    for (kk, mm), graph in cache.items():
        if mm == metric and kk >= k:
            return graph if kk == k else _first_k(graph, kk, int(k))
    graph = _graph(X, int(k), metric)
    cache[(int(k), metric)] = graph
    return graph


def _graph(X: np.ndarray, k: int, metric: str):
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric=metric).fit(X)
    dist, ind = nn.kneighbors(X=None, return_distance=True)  # self left out, sorted
    dist = np.maximum(dist, 0.0)  # cosine of identical vectors can round to -1e-8
    n = len(X)
    indptr = np.arange(0, n * k + 1, k)
    return csr_matrix((dist.reshape(-1), ind.reshape(-1), indptr), shape=(n, n))


def _first_k(graph, kk: int, k: int):
    from scipy.sparse import csr_matrix

    n = graph.shape[0]
    data = graph.data.reshape(n, kk)[:, :k]
    ind = graph.indices.reshape(n, kk)[:, :k]
    return csr_matrix((data.reshape(-1), ind.reshape(-1), np.arange(0, n * k + 1, k)),
                      shape=(n, n))


def nearest(project: Project, item_id: Any, k: int = 8) -> pd.DataFrame:
    """The ``k`` nearest items of one item in embedding space (the item itself left out).

    Read from the project's shared :func:`knn_graph` (built once, with at least 10
    neighbours).

    Parameters
    ----------
    project : Project
        With embeddings.
    item_id : str
    k : int, default=8

    Returns
    -------
    DataFrame
        ``item_id``, ``distance`` (increasing).

    Raises
    ------
    KeyError
        An item that is not in the project, or has no vector.
    """
    ids, X = project.embedding_matrix()
    pos = pd.Index(ids).get_indexer([str(item_id)])[0]
    if pos < 0:
        known = str(item_id) in set(project.items["item_id"].astype(str))
        raise KeyError(f"nearest: item {item_id!r} " + (
            "has no embedding; add its vector to the embeddings file." if known else
            "is not in the project."))
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"The 'k' parameter of nearest must be an int in the range [1, inf). "
                         f"Got {k!r} instead.")
    k = min(int(k), len(ids) - 1)
    if k < 1:
        return pd.DataFrame({"item_id": pd.Series([], dtype="str"),
                             "distance": pd.Series([], dtype=float)})
    graph = knn_graph(project, k=max(k, min(10, len(ids) - 1)))
    row = slice(graph.indptr[pos], graph.indptr[pos + 1])
    cols, dist = graph.indices[row][:k], graph.data[row][:k]
    return pd.DataFrame({"item_id": pd.Series(ids[cols], dtype="str"),
                         "distance": dist.astype(float)})
