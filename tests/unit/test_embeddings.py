"""Embeddings: the project files and their validation, the baseline, the shared knn graph."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from workbench.cli import main as cli_main
from workbench.embeddings import (
    compute_embeddings,
    embedding_frame,
    knn_graph,
    nearest,
    read_embeddings,
    write_embeddings,
)
from workbench.errors import SchemaError, WorkbenchError
from workbench.project import Project, open_project, validate_project

N = 40


def _items(n=N):
    return pd.DataFrame({"item_id": [f"it-{i:03d}" for i in range(n)],
                         "label": [str(i % 3) for i in range(n)]})


def _vectors(n=N, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    _items().to_csv(tmp_path / "items.csv", index=False)
    return tmp_path


def _problems(root):
    return [p for p in validate_project(root, check_media=False) if p.severity == "error"]


# ---- round trips ------------------------------------------------------------------------


def test_parquet_round_trip_in_items_order(folder):
    X = _vectors()
    frame = embedding_frame(_items()["item_id"], X).iloc[::-1]  # any row order on disk
    frame.to_parquet(folder / "embeddings.parquet", index=False)
    project = open_project(folder)
    assert project.has_embeddings
    ids, M = project.embedding_matrix()
    assert ids.tolist() == _items()["item_id"].tolist()
    assert M.dtype == np.float32 and M.shape == (N, 6)
    np.testing.assert_array_equal(M, X)


def test_npy_in_items_order_and_with_ids_file(folder):
    X = _vectors()
    np.save(folder / "embeddings.npy", X.astype(np.float64))
    ids, M = open_project(folder).embedding_matrix()
    np.testing.assert_array_equal(M, X)
    # with embedding_ids.txt: any order, a subset (a warning names the missing items)
    order = np.arange(N)[::-1][:-2]  # items it-000 and it-001 have no vector
    np.save(folder / "embeddings.npy", X[order])
    (folder / "embedding_ids.txt").write_text(
        "\n".join(_items()["item_id"].to_numpy()[order]) + "\n")
    project = open_project(folder)
    ids, M = project.embedding_matrix()
    assert ids.tolist() == _items()["item_id"].tolist()[2:]
    np.testing.assert_array_equal(M, X[2:])
    warned = [p for p in project.problems if p.severity == "warning"]
    assert any("it-000" in p.message and "no vector" in p.message for p in warned)


def test_list_column_parquet(folder):
    X = _vectors()
    pd.DataFrame({"item_id": _items()["item_id"], "vector": list(X)}).to_parquet(
        folder / "embeddings.parquet", index=False)
    np.testing.assert_array_equal(open_project(folder).embedding_matrix()[1], X)


def test_from_frames_and_no_embeddings_error():
    items = _items()
    project = Project.from_frames(items, embeddings=embedding_frame(items["item_id"],
                                                                   _vectors()))
    assert project.has_embeddings
    bare = Project.from_frames(items)
    assert not bare.has_embeddings
    with pytest.raises(WorkbenchError, match="workbench embed"):
        bare.embedding_matrix()
    with pytest.raises(TypeError, match="'embeddings' parameter must be a pandas DataFrame"):
        Project.from_frames(items, embeddings=_vectors())


def test_matrix_is_read_only():
    items = _items()
    project = Project.from_frames(items, embeddings=embedding_frame(items["item_id"],
                                                                   _vectors()))
    with pytest.raises(ValueError, match="read-only"):
        project.embedding_matrix()[1][0, 0] = 1.0


# ---- validation -------------------------------------------------------------------------


def test_parquet_problems_name_file_row_column_and_fix(folder):
    frame = embedding_frame(_items()["item_id"], _vectors())
    frame.loc[3, "e2"] = np.nan
    frame.loc[5, "e0"] = np.inf
    frame.loc[7, "item_id"] = "ghost-1"
    frame.loc[9, "item_id"] = "it-010"  # it-010 twice (rows 9 and 10)
    frame.to_parquet(folder / "embeddings.parquet", index=False)
    problems = _problems(folder)
    text = "\n".join(map(str, problems))
    assert all(p.file == "embeddings.parquet" for p in problems)
    nan = next(p for p in problems if "NaN" in p.message)
    assert nan.row == 3 and nan.column == "e2" and "rows 3, 5" in nan.message
    assert "'it-003'" in nan.message and "'it-005'" in nan.message
    unknown = next(p for p in problems if "not in items" in p.message)
    assert unknown.row == 7 and "'ghost-1'" in unknown.message and "Delete" in unknown.message
    dup = next(p for p in problems if "more than one vector" in p.message)
    assert "'it-010'" in dup.message and "rows 9, 10" in dup.message
    with pytest.raises(SchemaError, match="not in items"):
        open_project(folder)
    assert "embeddings.parquet, row 7, column 'item_id'" in text


def test_non_numeric_column_and_missing_item_id(folder):
    frame = embedding_frame(_items()["item_id"], _vectors())
    frame["source"] = "resnet"
    frame.to_parquet(folder / "embeddings.parquet", index=False)
    (problem,) = _problems(folder)
    assert problem.column == "source" and "not numeric" in problem.message
    assert "drop the column" in problem.message
    frame.drop(columns=["source", "item_id"]).assign(itemid=_items()["item_id"]).to_parquet(
        folder / "embeddings.parquet", index=False)
    (problem,) = _problems(folder)
    assert "missing the column 'item_id'" in problem.message
    assert "Did you mean 'itemid'?" in problem.message


def test_ragged_vectors_named(folder):
    vectors = [list(v) for v in _vectors()]
    vectors[4] = vectors[4][:3]
    pd.DataFrame({"item_id": _items()["item_id"], "vector": vectors}).to_parquet(
        folder / "embeddings.parquet", index=False)
    (problem,) = _problems(folder)
    assert problem.row == 4 and "different lengths" in problem.message
    assert "'it-004'" in problem.message and "6 values" in problem.message


def test_npy_problems(folder):
    np.save(folder / "embeddings.npy", _vectors()[:-1])
    (problem,) = _problems(folder)
    assert problem.file == "embeddings.npy" and "39 rows" in problem.message
    assert "embedding_ids.txt" in problem.message
    np.save(folder / "embeddings.npy", _vectors().reshape(N, 2, 3))
    (problem,) = _problems(folder)
    assert "2-D" in problem.message and "(40, 2, 3)" in problem.message
    np.save(folder / "embeddings.npy", np.array([[1.0], [2.0, 3.0]], dtype=object),
            allow_pickle=True)
    (problem,) = _problems(folder)
    assert "different lengths" in problem.message or "2-D numeric" in problem.message
    X = _vectors()
    X[6, 1] = np.nan
    np.save(folder / "embeddings.npy", X)
    ids = _items()["item_id"].tolist()
    ids[8] = "nope"
    (folder / "embedding_ids.txt").write_text("\n".join(ids))
    problems = _problems(folder)
    assert {p.file for p in problems} == {"embeddings.npy", "embedding_ids.txt"}
    assert any(p.row == 6 and "NaN" in p.message for p in problems)
    assert any(p.row == 8 and "'nope'" in p.message for p in problems)
    (folder / "embedding_ids.txt").write_text("\n".join(ids[:10]))
    (problem,) = _problems(folder)
    assert problem.file == "embedding_ids.txt" and "10 ids for 40 rows" in problem.message


def test_both_forms_refused_and_float32_overflow(folder):
    X = _vectors()
    np.save(folder / "embeddings.npy", X)
    embedding_frame(_items()["item_id"], X).to_parquet(folder / "embeddings.parquet")
    (problem,) = _problems(folder)
    assert "keep only one" in problem.message
    (folder / "embeddings.npy").unlink()
    big = embedding_frame(_items()["item_id"], X).astype({"e1": "float64"})
    big.loc[2, "e1"] = 1e300
    big.to_parquet(folder / "embeddings.parquet")
    (problem,) = _problems(folder)
    assert problem.row == 2 and "too large for float32" in problem.message


def test_parquet_saved_with_an_index(folder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    X = _vectors()
    frame = embedding_frame(_items()["item_id"], X)
    path = folder / "embeddings.parquet"
    # the ids as an index named item_id (any row order): read as the item_id column
    frame.set_index("item_id").iloc[::-1].to_parquet(path)
    assert not _problems(folder)
    np.testing.assert_array_equal(open_project(folder).embedding_matrix()[1], X)
    # pandas' default index, even when stored as a column, is ignored
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=True), path)
    assert not _problems(folder)
    np.testing.assert_array_equal(open_project(folder).embedding_matrix()[1], X)
    # any other index: one error naming the file and the fix
    frame.set_index(pd.Index(np.arange(N) * 2, name="row")).to_parquet(path)
    (problem,) = _problems(folder)
    assert problem.file == "embeddings.parquet" and "pandas index (named 'row')" in problem.message
    assert "index=False" in problem.message and "rename_axis('item_id')" in problem.message
    frame.drop(columns="item_id").set_axis(list(frame["item_id"])).to_parquet(path)
    (problem,) = _problems(folder)
    assert "pandas index (unnamed)" in problem.message
    with pytest.raises(SchemaError, match="embeddings.parquet: the file was saved with a pandas"):
        open_project(folder)


def test_list_column_nan_element_named(folder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = [list(map(float, v)) for v in _vectors(d=2)]
    vectors[1][1] = None
    pq.write_table(pa.table({"item_id": _items()["item_id"], "vec": pa.array(vectors)}),
                   folder / "embeddings.parquet")
    (problem,) = _problems(folder)
    assert problem.row == 1 and problem.column == "vec"
    assert "NaN or infinite values" in problem.message and "'it-001'" in problem.message
    assert "row 1; column 'vec', element 1 of the vector" in problem.message


def test_list_column_null_and_empty_vectors_named(folder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = [list(map(float, v)) for v in _vectors()]
    vectors[0] = None  # only the first row is null: still a list column
    path = folder / "embeddings.parquet"
    pq.write_table(pa.table({"item_id": _items()["item_id"], "vec": pa.array(vectors)}), path)
    (problem,) = _problems(folder)
    assert problem.row == 0 and problem.column == "vec"
    assert problem.message.startswith("missing vector(s) (null) in column 'vec'")
    assert "'it-000' (row 0)" in problem.message and "not numeric" not in problem.message
    empty = pa.array([[]] * N, type=pa.list_(pa.float64()))
    pq.write_table(pa.table({"item_id": _items()["item_id"], "vec": empty}), path)
    (problem,) = _problems(folder)
    assert problem.message.startswith("empty vector(s) (no values) in column 'vec'")
    assert "'it-000', 'it-001'" in problem.message and "rows 0, 1" in problem.message
    assert "have ." not in problem.message and "Write each item's vector" in problem.message


def test_read_embeddings_raises_without_problem_list(folder):
    frame = embedding_frame(_items()["item_id"], _vectors())
    frame.loc[0, "item_id"] = "zz"
    frame.to_parquet(folder / "embeddings.parquet", index=False)
    with pytest.raises(SchemaError, match="'zz'"):
        read_embeddings(folder, _items()["item_id"])
    assert read_embeddings(folder, _items()["item_id"], problems=[]) is None


# ---- the shared knn graph ---------------------------------------------------------------


def _clusters(n_per=60, d=16, seed=1):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6, size=(3, d))
    X = np.vstack([c + rng.normal(size=(n_per, d)) for c in centers]).astype(np.float32)
    return X, np.repeat(np.arange(3), n_per)


def test_knn_graph_format_matches_cleanlab():
    from cleanlab.internal.neighbor.knn_graph import create_knn_graph_and_index

    X, _ = _clusters()
    graph = knn_graph(X, k=7)
    assert isinstance(graph, csr_matrix) and graph.shape == (len(X), len(X))
    assert np.all(np.diff(graph.indptr) == 7)
    data = graph.data.reshape(len(X), 7)
    assert np.all(np.diff(data, axis=1) >= 0)  # each row sorted by distance
    assert not np.any(graph.indices.reshape(len(X), 7) == np.arange(len(X))[:, None])
    theirs, _ = create_knn_graph_and_index(X, n_neighbors=7)
    np.testing.assert_array_equal(graph.indices, theirs.indices)
    np.testing.assert_allclose(graph.data, theirs.data, atol=1e-5)


def test_knn_graph_cached_once_per_project_and_reset():
    X, _ = _clusters()
    items = pd.DataFrame({"item_id": [f"p{i}" for i in range(len(X))]})
    project = Project.from_frames(items, embeddings=embedding_frame(items["item_id"], X))
    g10 = knn_graph(project)
    assert knn_graph(project) is g10
    g4 = knn_graph(project, k=4)  # read from the k=10 graph
    np.testing.assert_array_equal(g4.indices.reshape(-1, 4),
                                  g10.indices.reshape(-1, 10)[:, :4])
    assert len(project._knn_graphs) == 1
    project._set_embeddings(project.embedding_matrix())
    assert knn_graph(project) is not g10
    with pytest.raises(ValueError, match="The 'k' parameter of knn_graph must be an int"):
        knn_graph(project, k=0)
    with pytest.raises(ValueError, match="The 'metric' parameter of knn_graph"):
        knn_graph(project, metric="manhattan")


def test_knn_graph_accepted_by_datalab_find_issues(monkeypatch):
    from cleanlab import Datalab  # a dependency (cleanlab[datalab]): never skipped
    from cleanlab.datalab.internal.issue_manager import knn_graph_helpers

    searches = []  # cleanlab's own neighbour searches: there must be none (our graph is used)
    real_search = knn_graph_helpers.create_knn_graph_and_index
    monkeypatch.setattr(knn_graph_helpers, "create_knn_graph_and_index",
                        lambda *a, **kw: searches.append(kw) or real_search(*a, **kw))

    X, y = _clusters(n_per=50)
    X[3] = X[4]  # an exact duplicate
    X[10] = 60.0  # an outlier far from every cluster
    items = pd.DataFrame({"item_id": [f"d{i}" for i in range(len(X))], "label": y.astype(str)})
    project = Project.from_frames(items, embeddings=embedding_frame(items["item_id"], X))
    graph = knn_graph(project)
    lab = Datalab(data={"label": y}, label_name="label", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab.find_issues(features=project.embedding_matrix()[1], knn_graph=graph,
                        issue_types={"near_duplicate": {}, "outlier": {}})
    assert searches == []  # both issue types read the graph we built; none searched again
    stored = lab.get_info("statistics")["weighted_knn_graph"]
    np.testing.assert_array_equal(stored.indices, graph.indices)
    dups = lab.get_issues("near_duplicate")
    assert dups.loc[3, "is_near_duplicate_issue"] and dups.loc[4, "is_near_duplicate_issue"]
    outliers = lab.get_issues("outlier")
    assert outliers["outlier_score"].idxmin() == 10


def test_nearest():
    X, labels = _clusters()
    items = pd.DataFrame({"item_id": [f"n{i}" for i in range(len(X))]})
    project = Project.from_frames(items, embeddings=embedding_frame(items["item_id"], X))
    near = nearest(project, "n5", k=8)
    assert list(near.columns) == ["item_id", "distance"] and len(near) == 8
    assert "n5" not in near["item_id"].tolist()
    assert near["distance"].is_monotonic_increasing
    pos = near["item_id"].str[1:].astype(int)
    assert (labels[pos] == labels[5]).all()  # its neighbours are in its cluster
    with pytest.raises(KeyError, match="not in the project"):
        nearest(project, "missing")


# ---- the baseline and the command -------------------------------------------------------


def test_tfidf_baseline_groups_topics():
    texts = ([f"the cat sat on the mat {i} purr whiskers" for i in range(15)]
             + [f"stock market shares fell {i} investors trading" for i in range(15)])
    items = pd.DataFrame({"item_id": [f"t{i}" for i in range(30)], "text": texts})
    frame = compute_embeddings(Project.from_frames(items))
    assert frame.attrs["method"] == "tfidf"
    assert frame.shape[0] == 30 and 2 <= frame.shape[1] - 1 <= 64
    assert frame.dtypes.iloc[1] == np.float32
    project = Project.from_frames(items, embeddings=frame)
    near = nearest(project, "t0", k=5)
    assert near["item_id"].str[1:].astype(int).lt(15).all()


def test_compute_errors():
    with pytest.raises(ValueError, match="The 'method' parameter of compute_embeddings"):
        compute_embeddings(Project.from_frames(_items()), "bert")
    with pytest.raises(WorkbenchError, match="no image files"):
        compute_embeddings(Project.from_frames(_items()))


def test_compute_parameters_scikit_learn_style():
    texts = [f"word{i % 5} other{i % 3} common" for i in range(12)]
    project = Project.from_frames(pd.DataFrame({"item_id": [f"t{i}" for i in range(12)],
                                                "text": texts}))
    assert compute_embeddings(project, dim=np.int64(3)).shape == (12, 4)
    seeded = compute_embeddings(project, dim=3, random_state=np.uint32(7))
    pd.testing.assert_frame_equal(seeded, compute_embeddings(project, dim=3, random_state=7))
    assert compute_embeddings(project, random_state=np.random.RandomState(0)).shape[0] == 12
    assert compute_embeddings(project, random_state=None).shape[0] == 12
    with pytest.raises(TypeError, match="The 'dim' parameter of compute_embeddings must be an "
                                        "int. Got True"):
        compute_embeddings(project, dim=True)
    for bad in ("x", -3, 2**32, 1.5, True):
        with pytest.raises(ValueError, match=r"The 'random_state' parameter of "
                                             r"compute_embeddings must be an int in the range "
                                             r"\[0, 4294967295\]"):
            compute_embeddings(project, random_state=bad)


def test_hog_on_a_text_project_says_use_tfidf(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "text": ["x y", "y z", "z w"]})
    with pytest.raises(WorkbenchError, match=r"a text project .* method='tfidf'") as info:
        compute_embeddings(Project.from_frames(items), "hog")
    assert "no image files" not in str(info.value)
    for i in range(3):
        (tmp_path / f"d{i}.txt").write_text(f"words {i}", encoding="utf-8")
    items = pd.DataFrame({"item_id": ["a", "b", "c"],
                          "filepath": [f"d{i}.txt" for i in range(3)]})
    items.to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(WorkbenchError, match="--method tfidf"):
        compute_embeddings(open_project(tmp_path), "hog")


@pytest.fixture(scope="module")
def small_images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("imgs")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        img = np.zeros((20, 20), np.uint8)
        if i % 2:
            img[:, 8:12] = 255  # vertical bar
        else:
            img[8:12, :] = 255  # horizontal bar
        img = np.clip(img + rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"im{i}.png")
        rows.append({"item_id": f"im{i}", "filepath": f"images/im{i}.png",
                     "label": "v" if i % 2 else "h"})
    pd.DataFrame(rows).to_csv(root / "items.csv", index=False)
    return root


def test_hog_baseline_and_cli(small_images, capsys):
    assert cli_main(["embed", str(small_images)]) == 0
    assert "24 embeddings" in capsys.readouterr().out
    project = open_project(small_images)
    ids, X = project.embedding_matrix()
    assert X.shape[0] == 24 and X.shape[1] <= 64
    near = nearest(project, "im0", k=5)  # horizontal bars are nearest to horizontal bars
    assert all(int(i[2:]) % 2 == 0 for i in near["item_id"])
    before = (small_images / "embeddings.parquet").read_bytes()
    assert cli_main(["embed", str(small_images)]) == 1
    assert "--force" in capsys.readouterr().err
    assert (small_images / "embeddings.parquet").read_bytes() == before
    np.save(small_images / "embeddings.npy", X)
    (small_images / "embeddings.parquet").unlink()
    assert cli_main(["embed", str(small_images), "--force", "--method", "hog"]) == 0
    assert not (small_images / "embeddings.npy").exists()
    assert open_project(small_images).has_embeddings
    # broken embeddings are replaced with --force (the project is read without them)
    (small_images / "embeddings.parquet").write_bytes(b"garbage")
    assert cli_main(["embed", str(small_images), "--force"]) == 0
    assert open_project(small_images).embedding_matrix()[1].shape[0] == 24


def test_hog_reads_any_image_mode_and_names_unreadable_files(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    modes = ["LA", "RGBA", "P", "I;16", "RGB", "L", "1", "CMYK"]
    rows = []
    for i in range(16):
        grey = Image.fromarray(rng.integers(0, 255, (20, 20)).astype(np.uint8))
        suffix = "tif" if modes[i % 8] == "CMYK" else "png"
        grey.convert(modes[i % 8]).save(tmp_path / "images" / f"im{i}.{suffix}")
        rows.append({"item_id": f"im{i}", "filepath": f"images/im{i}.{suffix}"})
    pd.DataFrame(rows).to_csv(tmp_path / "items.csv", index=False)
    assert cli_main(["embed", str(tmp_path)]) == 0
    assert np.isfinite(open_project(tmp_path).embedding_matrix()[1]).all()
    (tmp_path / "images" / "im3.png").write_bytes(b"not an image")
    assert cli_main(["embed", str(tmp_path), "--force"]) == 1
    err = capsys.readouterr().err
    assert "cannot read the image" in err and "im3.png" in err and "item 'im3'" in err


def test_write_embeddings_validates(folder):
    frame = embedding_frame(_items()["item_id"], _vectors())
    frame.loc[0, "item_id"] = "stranger"
    with pytest.raises(SchemaError, match="'stranger'"):
        write_embeddings(folder, frame)
    assert not (folder / "embeddings.parquet").exists()


# ---- the sample ships its own model's embeddings ---------------------------------------


def test_sample_embeddings_are_its_models_and_rebuild(sample_root, tmp_path):
    from workbench.sample import EMBEDDING_DIM, _embeddings, _features, _render_images

    project = open_project(sample_root)
    ids, X = project.embedding_matrix()
    assert ids.tolist() == project.items["item_id"].tolist()
    assert X.shape == (1797, EMBEDDING_DIM) and X.dtype == np.float32
    assert (sample_root / "embeddings.parquet").stat().st_size < 400_000
    # the neighbours of an item mostly share its true digit: a real model, not noise
    truth = pd.read_csv(sample_root / "truth.csv", dtype=str)["true_label"].to_numpy()
    neighbours = knn_graph(project).indices.reshape(len(ids), -1)
    assert (truth[neighbours] == truth[:, None]).mean() > 0.8
    # and the committed file is what the sample builder computes
    from sklearn.datasets import load_digits

    items = project.items
    images = _render_images(load_digits().images,
                            (items["scanner"] == "scanner-b").to_numpy(), 0)
    again = _embeddings(_features(images), items["label"].to_numpy(),
                        (items["split"] == "train").to_numpy(), items["item_id"].to_numpy(), 0)
    np.testing.assert_allclose(again.iloc[:, 1:].to_numpy(), X, atol=2e-3)


def test_detection_project_embeddings_per_image(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "width": [10] * 3, "height": [10] * 3})
    boxes = pd.DataFrame({"item_id": ["a"], "label": ["x"], "x": [1.0], "y": [1.0],
                          "w": [2.0], "h": [2.0]})
    frame = embedding_frame(["a", "b", "c"], np.eye(3))
    project = Project.from_frames(items, boxes=boxes, embeddings=frame)
    assert project.task == "detection" and project.has_embeddings
    with pytest.raises(SchemaError, match="'z'"):
        Project.from_frames(items, boxes=boxes, embeddings=frame.assign(item_id=["a", "b", "z"]))


def test_tfidf_baseline_reads_txt_files(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    rows = []
    for i in range(12):
        words = "goal striker match referee" if i < 6 else "recipe oven flour butter"
        (tmp_path / "docs" / f"d{i}.txt").write_text(f"{words} {i}", encoding="utf-8")
        rows.append({"item_id": f"d{i}", "filepath": f"docs/d{i}.txt"})
    pd.DataFrame(rows).to_csv(tmp_path / "items.csv", index=False)
    assert cli_main(["embed", str(tmp_path)]) == 0
    assert "baseline tfidf" in capsys.readouterr().out
    near = nearest(open_project(tmp_path), "d0", k=4)
    assert near["item_id"].str[1:].astype(int).lt(6).all()
