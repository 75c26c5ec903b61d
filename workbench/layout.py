"""A 2-D layout of the embeddings for the map: UMAP, PCA or t-SNE, computed once and cached.

The layout is kept as Parquet in the project's state folder (``.workbench/cache/``, see
:mod:`workbench._cache`) under a key made of a fingerprint of the embeddings (a hash of the
vectors' bytes and their item ids) and the options, so it is computed once for all kernels
and recomputed by itself when the embeddings change. In-memory projects keep it on the
project object.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._validation import check_option, check_random_state
from .errors import SchemaError, WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    from .project import Project

__all__ = ["LAYOUT_METHODS", "embedding_fingerprint", "layout", "layout_matrix"]

LAYOUT_METHODS = ("umap", "pca", "tsne")
#: Bumped when the way a layout is computed changes, so old cache entries are not reused.
#: (3: degenerate UMAP starts spread; version 2 entries may hold NaN.)
_VERSION = 3
#: UMAP runs on the first principal components of wider embeddings (a standard speed-up
#: that barely changes the map; see docs/embeddings.md).
UMAP_PCA_DIM = 50
#: Worker threads of UMAP when it is not seeded (the bench machines have 2 cores).
UMAP_JOBS = 2


def embedding_fingerprint(item_ids, X) -> str:
    """The sha256 of the item ids and the vectors' bytes (float32, C order).

    Parameters
    ----------
    item_ids : array-like of str, shape (n,)
    X : array-like of shape (n, d)

    Returns
    -------
    str
        Hex digest; changes when any id, any value, the order or the shape changes.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    h = hashlib.sha256()
    h.update(f"{X.shape[0]}x{X.shape[1]}\n".encode())
    h.update("\n".join(map(str, item_ids)).encode("utf-8"))
    h.update(b"\0")
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()


def _check(method, random_state, func: str) -> int | None:
    """Check the options; return ``random_state`` (an int or None)."""
    check_option(method, "method", func, LAYOUT_METHODS)
    return check_random_state(random_state, func)


def _check_vectors(X: np.ndarray) -> None:
    """Refuse vectors no method can lay out (t-SNE crashes the process on identical rows)."""
    if not np.isfinite(X).all():
        rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise SchemaError(f"layout: NaN or infinite values (or values too large for float32) "
                          f"in rows {rows[:5].tolist()} of the embeddings. Recompute these "
                          f"vectors (`workbench validate PROJECT` names their items).")
    if (X == X[0]).all():
        raise SchemaError(f"layout: all {len(X):,} vectors of the embeddings are identical "
                          f"(no variance in any dimension), so there is nothing to lay out. "
                          f"Check the model that wrote them (a constant output usually means "
                          f"a broken export) and write varied vectors, or compute the baseline "
                          f"with `workbench embed PROJECT --force`.")


def _finite(xy: np.ndarray, method: str) -> np.ndarray:
    """``xy``, checked finite (a layout with NaN is never returned nor cached)."""
    if not np.isfinite(xy).all():
        bad = int((~np.isfinite(xy).all(axis=1)).sum())
        raise WorkbenchError(f"layout: the {method} layout has NaN or infinite coordinates "
                             f"for {bad:,} of {len(xy):,} points (degenerate embeddings, e.g. "
                             f"nearly all vectors identical); it was not kept. Try "
                             f"method='pca', or check the embeddings for a constant output.")
    return xy


def layout_matrix(X, method: str = "umap", *, random_state: int | None = None) -> np.ndarray:
    """2-D coordinates of the rows of ``X`` (no cache; :func:`layout` caches).

    Parameters
    ----------
    X : array-like of shape (n, d)
    method : {'umap', 'pca', 'tsne'}, default='umap'
        ``'umap'``: :class:`umap.UMAP` (15 neighbours, min_dist 0.1, started from the
        PCA layout) on the first 50 principal components when ``d > 50``;
        ``'pca'``: :class:`sklearn.decomposition.PCA`;
        ``'tsne'``: :class:`sklearn.manifold.TSNE` (PCA init).
    random_state : int or None, default=None
        Seed, an int in [0, 2**32 - 1]. For UMAP, None (the default) lets umap-learn use
        :data:`UMAP_JOBS` threads for the neighbour search and the optimisation: the fast
        choice, but two runs give slightly different maps (the same clusters, not the same
        bits). An int makes the UMAP layout reproducible bit for bit, and single-threaded
        (umap-learn's own rule for a seeded layout), so it takes about twice the wall time
        on 2 cores. PCA (the ``'pca'`` method, the reduction to 50 dimensions and the start
        of UMAP) is seeded with it, or with 0 when it is None, so those steps stay
        reproducible; t-SNE is seeded by it.

    Returns
    -------
    ndarray of float32, shape (n, 2)
        Finite coordinates.

    Raises
    ------
    ValueError
        An unknown ``method`` or a bad ``random_state`` (None or an int in
        [0, 2**32 - 1]).
    SchemaError
        Vectors with NaN or infinite values, or all identical (from 3 rows and 2
        dimensions; t-SNE would crash the process on them, UMAP return NaN).
    WorkbenchError
        A computed layout that is not finite.

    Notes
    -----
    The default is unseeded because the layout is computed once and cached
    (:func:`layout`): every kernel then shows the same stored map, so bit-reproducibility
    buys little, while the seeded path missed the "100,000 x 128 under 90 s on 2 cores"
    target (see docs/embeddings.md and ``benchmarks/bench_layout.py``).
    """
    random_state = _check(method, random_state, "layout_matrix")
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 3 or X.shape[1] < 2:  # nothing to learn: the first coordinates, padded
        out = np.zeros((n, 2), np.float32)
        out[:, :min(2, X.shape[1])] = X[:, :2]
        return out
    _check_vectors(X)
    return _finite(_computed(X, method, random_state), method)


def _computed(X: np.ndarray, method: str, random_state: int | None) -> np.ndarray:
    pca_seed = 0 if random_state is None else random_state
    n = len(X)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=pca_seed).fit_transform(X).astype(
            np.float32)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, init="pca", perplexity=min(30.0, (n - 1) / 3),
                    random_state=random_state).fit_transform(X).astype(np.float32)
    import warnings

    import umap
    from sklearn.decomposition import PCA

    if X.shape[1] > UMAP_PCA_DIM and n > UMAP_PCA_DIM:
        X = PCA(n_components=UMAP_PCA_DIM, random_state=pca_seed).fit_transform(X)
    init = _umap_start(X, pca_seed)
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), min_dist=0.1,
                        random_state=random_state,
                        n_jobs=1 if random_state is not None else UMAP_JOBS,
                        init=init if n > 15 else "random")
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state" and small-data notes
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(X), dtype=np.float32)


def _umap_start(X: np.ndarray, seed: int) -> np.ndarray:
    """UMAP's starting layout: the PCA coordinates, scaled to [-10, 10].

    Deterministic, and much cheaper than UMAP's spectral start on 100k points (which also
    needs a connected graph). umap-learn rescales each start column by its range, so a
    column without spread (vectors on a line, or only two distinct ones) would give NaN:
    such a column is replaced by small seeded noise.
    """
    from sklearn.decomposition import PCA

    init = PCA(n_components=2, random_state=seed).fit_transform(X)
    init = init / max(float(np.abs(init).max()), 1e-12) * 10.0
    flat = np.ptp(init, axis=0) <= 1e-4
    if flat.any():
        noise = np.random.default_rng(seed).normal(scale=1e-2, size=(len(init), int(flat.sum())))
        init[:, flat] = noise.astype(init.dtype)
    return init


def layout(project: Project, method: str = "umap", *, random_state: int | None = None
           ) -> pd.DataFrame:
    """The 2-D layout of a project's embeddings, computed once and cached.

    Parameters
    ----------
    project : Project
        With embeddings (:attr:`Project.has_embeddings`).
    method : {'umap', 'pca', 'tsne'}, default='umap'
        See :func:`layout_matrix`.
    random_state : int or None, default=None
        See :func:`layout_matrix`: None (parallel UMAP, not bit-reproducible; the cached
        layout is what every kernel shows) or an int (reproducible, single-threaded UMAP).
        Part of the cache key: a seeded and an unseeded layout are separate entries.

    Returns
    -------
    DataFrame
        ``item_id``, ``x``, ``y`` (float32), rows in :meth:`Project.embedding_matrix` order.

    Raises
    ------
    ValueError
        An unknown ``method`` or a bad ``random_state`` (None or an int in
        [0, 2**32 - 1]).
    SchemaError
        Embeddings with nothing to lay out: every vector identical.
    WorkbenchError
        A project without embeddings, or a computed layout that is not finite (it is not
        cached).

    Notes
    -----
    Cached in ``<root>/.workbench/cache/layout-<hash>.parquet``, the hash covering
    :func:`embedding_fingerprint` and the options: a second call (in any kernel) reads the
    file; changed embeddings give a new key and a new layout. A project without a folder
    keeps it on the object.

    Examples
    --------
    >>> import workbench as wb
    >>> from workbench.layout import layout
    >>> frame = layout(wb.load_sample(), "pca")   # doctest: +SKIP
    """
    from ._cache import cached_frame, key_digest

    random_state = _check(method, random_state, "layout")
    ids, X = project.embedding_matrix()
    key = {"what": "layout", "version": _VERSION, "method": method,
           "random_state": random_state, "embeddings": embedding_fingerprint(ids, X)}

    def compute() -> pd.DataFrame:
        xy = _finite(np.asarray(layout_matrix(X, method, random_state=random_state)), method)
        return pd.DataFrame({"item_id": pd.Series(ids, dtype="str"),
                             "x": xy[:, 0], "y": xy[:, 1]})

    if project.root is None:
        memo = project.__dict__.setdefault("_layouts", {})
        digest = key_digest(key)
        if digest not in memo:
            memo[digest] = compute()
        return memo[digest].copy()
    frame = cached_frame(project.root, f"layout-{method}", key, compute)
    if len(frame) != len(ids) or not np.array_equal(frame["item_id"].to_numpy(dtype=str),
                                                     ids) \
            or not np.isfinite(frame[["x", "y"]].to_numpy()).all():
        frame = compute()  # the entry is not for these items, or not finite: never trusted
    return frame
