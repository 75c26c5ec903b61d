"""The 2-D layout of the embeddings and the fingerprint cache under it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from workbench._cache import cache_folder, cached_frame, key_digest
from workbench.embeddings import embedding_frame, write_embeddings
from workbench.errors import SchemaError, WorkbenchError
from workbench.layout import embedding_fingerprint, layout, layout_matrix
from workbench.project import Project, open_project

# ---- the cache --------------------------------------------------------------------------


class _Counter:
    def __init__(self, value=1.0):
        self.calls = 0
        self.value = value

    def __call__(self):
        self.calls += 1
        return pd.DataFrame({"item_id": ["a", "b"], "x": [self.value, 2.0]})


def test_cache_hit_and_invalidation_on_key_change(tmp_path):
    compute = _Counter()
    first = cached_frame(tmp_path, "demo", {"fp": "abc", "opt": 1}, compute)
    again = cached_frame(tmp_path, "demo", {"opt": 1, "fp": "abc"}, compute)  # same key
    assert compute.calls == 1
    pd.testing.assert_frame_equal(first, again)
    cached_frame(tmp_path, "demo", {"fp": "abd", "opt": 1}, compute)
    cached_frame(tmp_path, "demo", {"fp": "abc", "opt": 2}, compute)
    assert compute.calls == 3
    assert len(list(cache_folder(tmp_path).glob("demo-*.parquet"))) == 3


def test_cache_corrupt_entry_recomputed_never_trusted(tmp_path):
    key = {"fp": "x"}
    cached_frame(tmp_path, "demo", key, _Counter())
    (entry,) = cache_folder(tmp_path).glob("demo-*.parquet")
    entry.write_bytes(entry.read_bytes()[:40])  # truncated
    fresh = _Counter(value=9.0)
    assert cached_frame(tmp_path, "demo", key, fresh)["x"].tolist() == [9.0, 2.0]
    assert fresh.calls == 1
    entry.write_bytes(b"not parquet at all")
    assert cached_frame(tmp_path, "demo", key, _Counter(value=7.0))["x"].tolist() == [7.0, 2.0]
    # a readable Parquet file computed for another key under this name is not trusted either
    other = cache_folder(tmp_path) / "other.parquet"
    pd.DataFrame({"item_id": ["a"], "x": [-1.0]}).to_parquet(other)
    other.replace(entry)
    assert cached_frame(tmp_path, "demo", key, _Counter(value=5.0))["x"].tolist() == [5.0, 2.0]
    assert cached_frame(tmp_path, "demo", key, _Counter(value=0.0))["x"].tolist() == [5.0, 2.0]


def test_cache_two_writers(tmp_path):
    # the second kernel waits on the entry's lock and reads the first one's result
    errors, results, calls = [], [], []
    started = threading.Event()

    def writer(value):
        def compute():
            calls.append(value)
            started.set()
            time.sleep(0.5)  # the other writer arrives while this one computes
            return pd.DataFrame({"item_id": ["a"] * 5000, "x": np.full(5000, value)})
        try:
            results.append(cached_frame(tmp_path, "race", {"k": 1}, compute))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    first = threading.Thread(target=writer, args=(1.0,))
    first.start()
    started.wait(timeout=10)
    second = threading.Thread(target=writer, args=(2.0,))
    second.start()
    first.join()
    second.join()
    assert not errors and len(results) == 2 and calls == [1.0]
    pd.testing.assert_frame_equal(results[0], results[1])
    (entry,) = cache_folder(tmp_path).glob("race-*.parquet")  # one complete file, no temp left
    assert not list(cache_folder(tmp_path).glob(".*tmp"))
    stored = pd.read_parquet(entry)
    assert len(stored) == 5000 and stored["x"].nunique() == 1
    assert stored["x"].iloc[0] == 1.0


def test_cache_in_memory_and_parameter_errors(tmp_path):
    compute = _Counter()
    cached_frame(None, "demo", {"a": 1}, compute)
    cached_frame(None, "demo", {"a": 1}, compute)
    assert compute.calls == 2  # root=None: compute only
    assert not (tmp_path / ".workbench").exists()
    with pytest.raises(ValueError, match="The 'name' parameter of cached_frame"):
        cached_frame(tmp_path, "../escape", {"a": 1}, compute)
    with pytest.raises(TypeError, match="JSON values only"):
        cached_frame(tmp_path, "demo", {"a": np.zeros(2)}, compute)
    with pytest.raises(TypeError, match="must return a pandas DataFrame"):
        cached_frame(tmp_path, "demo", {"a": 2}, lambda: [1, 2])
    assert key_digest({"a": 1, "b": [1, 2]}) == key_digest({"b": [1, 2], "a": 1})


# ---- layouts ----------------------------------------------------------------------------


def _blobs(n_per=40, d=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=8, size=(3, d))
    X = np.vstack([c + rng.normal(size=(n_per, d)) for c in centers]).astype(np.float32)
    return X, np.repeat(np.arange(3), n_per)


@pytest.fixture
def folder(tmp_path):
    X, y = _blobs()
    items = pd.DataFrame({"item_id": [f"b{i:03d}" for i in range(len(X))],
                          "label": y.astype(str)})
    items.to_csv(tmp_path / "items.csv", index=False)
    write_embeddings(tmp_path, embedding_frame(items["item_id"], X))
    return tmp_path


def _separated(frame, y) -> bool:
    """Every point's nearest other point in 2-D has its blob."""
    xy = frame[["x", "y"]].to_numpy()
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return bool((y[d.argmin(1)] == y).mean() > 0.95)


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_layout_methods_keep_the_blobs_apart(folder, method):
    project = open_project(folder)
    frame = layout(project, method)
    assert list(frame.columns) == ["item_id", "x", "y"]
    assert frame["item_id"].tolist() == project.embedding_matrix()[0].tolist()
    assert np.isfinite(frame[["x", "y"]].to_numpy()).all()
    assert _separated(frame, _blobs()[1])


def test_layout_cached_once_and_invalidated_when_embeddings_change(folder, monkeypatch):
    import workbench.layout as layout_module

    calls = []
    real = layout_module.layout_matrix

    def counting(X, method, **kw):
        calls.append(method)
        return real(X, method, **kw)

    monkeypatch.setattr(layout_module, "layout_matrix", counting)
    first = layout(open_project(folder), "pca")
    second = layout(open_project(folder), "pca")  # another kernel: reads the file
    assert calls == ["pca"]
    pd.testing.assert_frame_equal(first, second)
    assert list(cache_folder(folder).glob("layout-pca-*.parquet"))
    X, _ = _blobs()
    X[0] += 100.0  # new embeddings: a new fingerprint, a new layout
    write_embeddings(folder, embedding_frame(first["item_id"], X))
    third = layout(open_project(folder), "pca")
    assert calls == ["pca", "pca"]
    assert not np.allclose(third[["x", "y"]].to_numpy(), first[["x", "y"]].to_numpy())


def test_layout_in_memory_project_kept_on_the_object(monkeypatch):
    import workbench.layout as layout_module

    X, _ = _blobs()
    items = pd.DataFrame({"item_id": [f"m{i}" for i in range(len(X))]})
    project = Project.from_frames(items, embeddings=embedding_frame(items["item_id"], X))
    calls = []
    real = layout_module.layout_matrix
    monkeypatch.setattr(layout_module, "layout_matrix",
                        lambda X, m, **kw: calls.append(m) or real(X, m, **kw))
    layout(project, "pca")
    layout(project, "pca")
    assert calls == ["pca"]


def test_layout_errors(folder):
    project = open_project(folder)
    with pytest.raises(ValueError, match=r"The 'method' parameter of layout must be a str "
                                         r"among \{'umap', 'pca', 'tsne'\}. Got 'mds'"):
        layout(project, "mds")
    with pytest.raises(ValueError, match="The 'random_state' parameter of layout"):
        layout(project, "pca", random_state="zero")
    bare = Project.from_frames(pd.DataFrame({"item_id": ["a", "b"]}))
    with pytest.raises(WorkbenchError, match="workbench embed"):
        layout(bare, "pca")


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_identical_vectors_refused_before_computing(method):
    # t-SNE crashed the process on them, UMAP gave NaN, PCA divided by zero
    with pytest.raises(SchemaError, match="all 50 vectors of the embeddings are identical"):
        layout_matrix(np.ones((50, 4)), method, random_state=0)
    items = pd.DataFrame({"item_id": [f"c{i}" for i in range(20)]})
    project = Project.from_frames(items, embeddings=embedding_frame(items["item_id"],
                                                                   np.ones((20, 3))))
    with pytest.raises(SchemaError, match="workbench embed PROJECT --force"):
        layout(project, method)
    with pytest.raises(SchemaError, match="NaN or infinite values"):
        layout_matrix(np.full((5, 3), np.nan), method)


def test_umap_on_vectors_without_a_second_direction_is_finite():
    line = np.zeros((60, 4), np.float32)
    line[:, 0] = np.random.default_rng(0).normal(size=60)  # one direction of variance
    two = np.repeat(np.eye(4, dtype=np.float32)[:2], 30, axis=0)  # two distinct vectors
    for X in (line, two):
        assert np.isfinite(layout_matrix(X, "umap", random_state=0)).all()


def test_non_finite_layout_never_cached(folder, monkeypatch):
    import workbench.layout as layout_module

    real = layout_module.layout_matrix
    monkeypatch.setattr(layout_module, "layout_matrix",
                        lambda X, m, **kw: np.full((len(X), 2), np.nan, np.float32))
    with pytest.raises(WorkbenchError, match="NaN or infinite coordinates .* not kept"):
        layout(open_project(folder), "pca")
    assert not list(cache_folder(folder).glob("layout-pca-*.parquet"))
    # an entry holding NaN (written before this check) is recomputed, not shown
    project = open_project(folder)
    ids, X = project.embedding_matrix()
    key = {"what": "layout", "version": layout_module._VERSION, "method": "pca",
           "random_state": None, "embeddings": embedding_fingerprint(ids, X)}
    cached_frame(folder, "layout-pca", key, lambda: pd.DataFrame(
        {"item_id": pd.Series(ids, dtype="str"), "x": np.nan, "y": 0.0}))
    monkeypatch.setattr(layout_module, "layout_matrix", real)
    frame = layout(project, "pca")
    assert np.isfinite(frame[["x", "y"]].to_numpy()).all()


def test_layout_random_state_checked_up_front(folder, monkeypatch):
    import workbench.layout as layout_module

    project = open_project(folder)
    monkeypatch.setattr(layout_module, "layout_matrix",
                        lambda *a, **kw: pytest.fail("computed before checking"))
    for bad in (-3, 2**32, "x", 1.0, True):
        with pytest.raises(ValueError, match=r"The 'random_state' parameter of layout must be "
                                             r"an int in the range \[0, 4294967295\] or None"):
            layout(project, "pca", random_state=bad)
    with pytest.raises(ValueError, match="The 'random_state' parameter of layout_matrix"):
        layout_matrix(np.ones((5, 3)), "pca", random_state=-1)  # the module's own
    monkeypatch.undo()
    seeded = layout(project, "pca", random_state=np.int64(3))
    pd.testing.assert_frame_equal(seeded, layout(project, "pca", random_state=3))


def test_fingerprint_changes_with_ids_values_and_order():
    X, _ = _blobs()
    ids = [f"i{i}" for i in range(len(X))]
    base = embedding_fingerprint(ids, X)
    assert embedding_fingerprint(list(ids), X.copy()) == base
    Y = X.copy()
    Y[5, 3] += 1e-3
    assert embedding_fingerprint(ids, Y) != base
    assert embedding_fingerprint(ids[::-1], X) != base
    assert embedding_fingerprint(ids[:-1] + ["other"], X) != base


def test_layout_matrix_tiny_inputs():
    assert layout_matrix(np.zeros((0, 4))).shape == (0, 2)
    assert layout_matrix(np.ones((2, 4)), "umap").shape == (2, 2)
    assert layout_matrix(np.arange(5.0)[:, None], "pca").shape == (5, 2)


def test_umap_default_is_parallel_and_the_seed_is_part_of_the_cache_key(folder, monkeypatch):
    import umap

    import workbench.layout as layout_module

    made = []

    class Recording:  # stands in for umap.UMAP: records how it is configured
        def __init__(self, **kwargs):
            made.append(kwargs)

        def fit_transform(self, X):
            return np.asarray(X)[:, :2] * 1.0

    monkeypatch.setattr(umap, "UMAP", Recording)
    default = layout(open_project(folder), "umap")
    assert made[-1]["random_state"] is None and made[-1]["n_jobs"] == layout_module.UMAP_JOBS
    seeded = layout(open_project(folder), "umap", random_state=0)
    assert made[-1]["random_state"] == 0 and made[-1]["n_jobs"] == 1
    assert len(made) == 2 and len(default) == len(seeded)
    assert len(list(cache_folder(folder).glob("layout-umap-*.parquet"))) == 2
    layout(open_project(folder), "umap")  # the unseeded entry is read back, not recomputed
    layout(open_project(folder), "umap", random_state=0)
    assert len(made) == 2
