"""data_issues: planted duplicates (exact and near, across splits), outliers, leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench import _cleanlab_adapter as adapter
from workbench.data_issues import (
    content_hashes,
    data_issue_flags,
    data_issues,
    leakage,
    leakage_inflation,
)
from workbench.embeddings import knn_graph
from workbench.errors import SchemaError

N, D, K = 300, 8, 3


def _planted(tmp_path=None, *, split=True, seed=0):
    """Three well separated classes, with planted duplicates and one far outlier.

    * i000 / i001: exact duplicates (same vector, same file content), i000 train, i001 test
    * i002 / i003: near duplicates (vector + 1e-4 noise), both train (not a leak)
    * i004 / i005: near duplicates across splits (train / test)
    * i010: far from every class centre (the planted outlier)
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=10, size=(K, D))
    y = np.arange(N) % K
    X = centers[y] + rng.normal(size=(N, D))
    X[1] = X[0]
    X[3] = X[2] + 1e-4 * rng.normal(size=D)
    X[5] = X[4] + 1e-4 * rng.normal(size=D)
    direction = rng.normal(size=D)
    direction -= sum(direction @ c / (c @ c) * c for c in centers)  # away from every class
    X[10] = 40 * direction / np.linalg.norm(direction)
    ids = [f"i{i:03d}" for i in range(N)]
    items = pd.DataFrame({"item_id": ids, "label": [f"c{c}" for c in y],
                          "site": np.where(np.arange(N) < 150, "north", "south")})
    if split:
        s = np.where(np.arange(N) % 4 == 0, "test", "train").astype(object)
        s[[0, 2, 3, 4]] = "train"
        s[[1, 5]] = "test"
        items["split"] = s
    emb = pd.DataFrame(X, columns=[f"e{j}" for j in range(D)])
    emb.insert(0, "item_id", ids)
    root = None
    if tmp_path is not None:
        (tmp_path / "img").mkdir()
        paths = []
        for i in range(N):
            content = b"same bytes" if i in (0, 1) else f"image {i}".encode()
            (tmp_path / "img" / f"{i}.png").write_bytes(content)
            paths.append(f"img/{i}.png")
        items.insert(1, "filepath", paths)
        root = tmp_path
    return items, emb, y, X, root


def _preds(items, y, correct):
    """A run whose prediction is right exactly where ``correct`` is True."""
    pred_label = np.where(correct, y, (y + 1) % K)
    probs = np.full((len(y), K), 0.01)
    probs[np.arange(len(y)), pred_label] = 0.98
    pred = pd.DataFrame({"item_id": items["item_id"], "run": "m",
                         "label": [f"c{c}" for c in pred_label]})
    for j in range(K):
        pred[f"prob_c{j}"] = probs[:, j]
    return pred


@pytest.fixture
def planted(tmp_path):
    items, emb, y, X, root = _planted(tmp_path)
    pred = _preds(items, y, np.ones(N, dtype=bool))
    return wb.Project.from_frames(items=items, predictions=pred, embeddings=emb, root=root)


def _rows(issues, kind):
    return issues[issues["issue_type"] == kind]


def test_exact_duplicates_by_file_content_across_splits(planted):
    hashes = content_hashes(planted)
    assert hashes["i000"] == hashes["i001"] and hashes.nunique() == N - 1
    issues = data_issues(planted)
    exact = _rows(issues, "exact_duplicate").set_index("item_id")
    assert set(exact.index) == {"i000", "i001"}
    assert exact.loc["i000", "related_ids"] == ["i001"] and exact.loc["i001", "related"] == "i000"
    assert exact["is_leak"].all() and set(exact["split_pair"]) == {"test | train"}
    assert (exact["score"] == 1.0).all()


def test_near_duplicates_found_and_leaks_listed_first(planted):
    issues = data_issues(planted)
    near = _rows(issues, "near_duplicate").set_index("item_id")
    assert {"i002", "i003", "i004", "i005"} <= set(near.index)
    assert "i003" in near.loc["i002", "related_ids"] and "i002" in near.loc["i003", "related_ids"]
    assert not near.loc["i002", "is_leak"] and pd.isna(near.loc["i002", "split_pair"])
    assert near.loc["i004", "is_leak"] and near.loc["i005", "split_pair"] == "test | train"
    # leaks first, then the rest
    leak = issues["is_leak"].to_numpy()
    assert leak[: leak.sum()].all() and not leak[leak.sum():].any()
    assert list(issues.columns) == ["item_id", "issue_type", "score", "related", "related_ids",
                                    "split_pair", "is_leak"]
    assert issues["score"].between(0, 1).all()


def test_planted_outlier_found(planted):
    issues = data_issues(planted)
    out = _rows(issues, "outlier")
    assert "i010" in set(out["item_id"])
    assert out["item_id"].iloc[0] == "i010"  # the most severe outlier
    assert len(out) < 0.1 * N


def test_one_shared_graph(planted, monkeypatch):
    from workbench import embeddings

    calls = []
    real = embeddings.knn_graph

    def counting(*args, **kwargs):
        calls.append(kwargs.get("k"))
        return real(*args, **kwargs)

    monkeypatch.setattr(embeddings, "knn_graph", counting)
    seen = []
    real_find = adapter.find_issues

    def spy(types, **kwargs):
        seen.append((tuple(types), kwargs["knn_graph"]))
        return real_find(types, **kwargs)

    monkeypatch.setattr(adapter, "find_issues", spy)
    data_issues(planted, k=7)
    assert calls == [7] and len(seen) == 1
    types, graph = seen[0]
    assert set(types) == {"near_duplicate", "outlier", "non_iid", "underperforming_group"}
    assert graph is real(planted, k=7)  # the project's cached graph, not a new one


def test_cleanlab_runs_as_datalab(planted):
    ids, X = planted.embedding_matrix()
    found = adapter.find_issues(["near_duplicate", "outlier"], k=10, features=X,
                                knn_graph=knn_graph(planted, k=10))
    assert found.engine == "cleanlab Datalab" and not found.errors
    assert set(found.issues) == {"near_duplicate", "outlier"}
    assert len(found.issues["outlier"]) == len(ids)


def test_underperforming_group_runs_with_labels_and_probs():
    items, emb, y, X, _ = _planted(split=False)
    correct = np.ones(N, dtype=bool)
    correct[y == 2] = False  # the model fails on every item of class c2
    p = wb.Project.from_frames(items=items, predictions=_preds(items, y, correct),
                               embeddings=emb)
    issues = data_issues(p, issue_types=["underperforming_group"])
    assert "underperforming_group" not in issues.attrs["skipped"]
    group = _rows(issues, "underperforming_group")
    assert len(group) and (y[group["item_id"].str[1:].astype(int)] == 2).mean() > 0.9
    assert group["related"].str.startswith("group ").all()


def test_underperforming_group_skipped_without_predictions():
    items, emb, *_ = _planted(split=False)
    p = wb.Project.from_frames(items=items, embeddings=emb)
    issues = data_issues(p)
    assert "predictions" in issues.attrs["skipped"]["underperforming_group"]
    with pytest.raises(SchemaError, match="underperforming_group needs"):
        data_issues(p, issue_types=["underperforming_group"])


def test_leakage_lists_cross_split_duplicates_only(planted):
    leaks = leakage(planted)
    assert set(leaks["item_id"]) == {"i000", "i001", "i004", "i005"}
    split = dict(zip(leaks["item_id"], leaks["split"], strict=True))
    assert split["i001"] == "test" and split["i000"] == "train"
    assert set(leaks["issue_type"]) == {"exact_duplicate", "near_duplicate"}


def test_leakage_inflation_hand_checked(tmp_path):
    items, emb, y, X, root = _planted(tmp_path)
    test_ids = items.loc[items["split"] == "test", "item_id"].tolist()
    # wrong on 10 test items that are not leaked, right everywhere else (leaks included)
    wrong = [i for i in test_ids if i not in ("i001", "i005")][:10]
    correct = ~items["item_id"].isin(wrong).to_numpy()
    p = wb.Project.from_frames(items=items, predictions=_preds(items, y, correct),
                               embeddings=emb, root=root)
    out = leakage_inflation(p)
    row = out.iloc[0]
    n_test = len(test_ids)
    assert row["run"] == "m" and row["split"] == "test" and row["n_items"] == n_test
    assert row["n_leaked"] == 2  # i001 (exact) and i005 (near) have a twin in train
    assert row["error_rate"] == pytest.approx(10 / n_test)
    assert row["error_rate_without_leaks"] == pytest.approx(10 / (n_test - 2))
    assert row["inflation"] == pytest.approx(10 / (n_test - 2) - 10 / n_test)
    assert leakage_inflation(p, "m").equals(out)


def test_leakage_without_embeddings_checks_exact_duplicates(tmp_path):
    items, _, y, _, root = _planted(tmp_path)
    p = wb.Project.from_frames(items=items, root=root)
    leaks = leakage(p)
    assert set(leaks["item_id"]) == {"i000", "i001"}
    assert "workbench embed" in leaks.attrs["skipped"]["near_duplicate"]


def test_text_items_hash_their_text():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "text": ["hello", "world", "hello"],
                          "split": ["train", "train", "test"]})
    p = wb.Project.from_frames(items=items)
    issues = data_issues(p, issue_types=["exact_duplicate"])
    assert set(issues["item_id"]) == {"a", "c"} and issues["is_leak"].all()


def test_without_embeddings_names_workbench_embed():
    items, *_ = _planted(split=False)
    p = wb.Project.from_frames(items=items)
    with pytest.raises(SchemaError, match="workbench embed PROJECT"):
        data_issues(p)
    with pytest.raises(SchemaError, match="workbench embed"):
        data_issue_flags(p)


@pytest.mark.parametrize("kwargs, match", [
    ({"k": 0}, r"The 'k' parameter of data_issues must be an int in the range \[1, inf\)"),
    ({"k": "3"}, "The 'k' parameter of data_issues must be an int"),
    ({"k": N}, "The 'k' parameter of data_issues must be an int smaller than the number"),
    ({"issue_types": ["duplicates"]}, "The 'issue_types' parameter of data_issues must be a "
                                      "str among"),
    ({"issue_types": []}, "must name at least one issue type"),
    ({"run": "nope"}, "The 'run' parameter of data_issues must be a str among"),
])
def test_bad_parameters(planted, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        data_issues(planted, **kwargs)


def test_bad_leakage_parameters(planted):
    with pytest.raises(ValueError, match="The 'split' parameter of leakage_inflation must be"):
        leakage_inflation(planted, split="holdout")
    with pytest.raises(ValueError, match="The 'run' parameter of leakage_inflation"):
        leakage_inflation(planted, "other")
    items, emb, *_ = _planted(split=False)
    p = wb.Project.from_frames(items=items, embeddings=emb)
    with pytest.raises(SchemaError, match="no 'split' column"):
        leakage(p)
    with pytest.raises(SchemaError, match="leaks.*missing.*split"):
        leakage_inflation(planted, leaks=data_issues(planted))  # not a leakage() frame


def test_a_twin_group_larger_than_k_leaks_whole():
    # one train item and 15 test twins: each item's cleanlab set holds at most k = 10 of
    # its twins, so the group (and whether it spans the splits) is taken over all of them
    rng = np.random.default_rng(0)
    n = 300
    ids = [f"i{i:03d}" for i in range(n)]
    x = rng.normal(size=(n, D)) * 3
    twins = [0, *range(150, 165)]
    x[twins] = x[0] + rng.normal(size=(len(twins), D)) * 1e-3
    items = pd.DataFrame({"item_id": ids, "split": ["train"] * 150 + ["test"] * 150,
                          "label": rng.choice(["a", "b"], n)})
    emb = pd.DataFrame(x, columns=[f"e{j}" for j in range(D)]).assign(item_id=ids)
    prob = rng.dirichlet([1, 1], n)
    pred = pd.DataFrame({"item_id": ids, "run": "r", "label": np.where(prob[:, 0] > .5, "a", "b"),
                         "prob_a": prob[:, 0], "prob_b": prob[:, 1]})
    p = wb.Project.from_frames(items=items, embeddings=emb, predictions=pred)
    found = data_issues(p, k=10, issue_types=["near_duplicate"]).set_index("item_id")
    names = {ids[i] for i in twins}
    assert set(found.index) == names
    assert found["is_leak"].all()
    assert all(set(found.at[i, "related_ids"]) == names - {i} for i in names)
    leaks = leakage(p, k=10)
    assert sorted(leaks.loc[leaks["split"] == "test", "item_id"]) == sorted(names - {"i000"})
    assert leakage_inflation(p, k=10, leaks=leaks)["n_leaked"].tolist() == [15]


def test_discover_slices_on_outliers_and_duplicates():
    items, emb, y, X, _ = _planted(split=False, seed=1)
    rng = np.random.default_rng(3)
    # 30 more outliers, all at the south site, each in its own direction far from the classes
    south = np.flatnonzero(items["site"].to_numpy() == "south")[10:40]
    for i in south:
        v = rng.normal(size=D)
        emb.loc[i, [f"e{j}" for j in range(D)]] = 60 * v / np.linalg.norm(v)
    # 20 exact-vector duplicate pairs, all at the north site
    north = np.flatnonzero(items["site"].to_numpy() == "north")[20:60]
    cols = [f"e{j}" for j in range(D)]
    for a, b in zip(north[::2], north[1::2], strict=True):
        emb.loc[b, cols] = emb.loc[a, cols].to_numpy()
    p = wb.Project.from_frames(items=items, embeddings=emb)
    flags = data_issue_flags(p)
    assert list(flags.columns) == ["item_id", "site", "is_outlier", "is_duplicate"]
    assert flags["is_outlier"].sum() >= 20 and flags["is_duplicate"].sum() >= 40
    out = wb.discover_slices(flags, target="is_outlier", min_support=10)
    assert out["slice"].iloc[0] == "site=south"
    dup = wb.discover_slices(flags, target="is_duplicate", min_support=10)
    assert dup["slice"].iloc[0] == "site=north"
    errors = pd.DataFrame({"item_id": flags["item_id"], "site": flags["site"],
                           "is_error": False})
    with pytest.raises(SchemaError, match="data_issue_flags"):
        wb.discover_slices(errors, target="is_outlier")


def test_exported_and_cached(planted):
    assert wb.data_issues is data_issues
    a = data_issues(planted)
    a.loc[0, "score"] = -1.0
    a["related_ids"].iloc[0].append("x")
    b = data_issues(planted)
    assert (b["score"] >= 0).all() and "x" not in b["related_ids"].iloc[0]
