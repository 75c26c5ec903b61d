"""coverage and embedding_novelty: thin slices of the target, novel items in embedding space."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control, fisher_exact

import workbench as wb
from workbench.coverage import coverage, embedding_novelty
from workbench.errors import WorkbenchError

N_REF, N_TGT, DIMS = 600, 300, 8


def _project(*, embeddings=True, far=10, seed=0):
    """Train and production items; production holds a scanner ('c') training never saw and
    ``far`` items planted far from every training item in embedding space."""
    rng = np.random.default_rng(seed)
    n = N_REF + N_TGT
    split = np.array(["train"] * N_REF + ["production"] * N_TGT, dtype=object)
    scanner = np.concatenate([rng.choice(["a", "b"], N_REF),
                              rng.choice(["a", "b", "c"], N_TGT, p=[0.4, 0.4, 0.2])])
    site = rng.choice(["x", "y", "z"], n)  # the same mix on both sides
    items = pd.DataFrame({"item_id": [f"it{i:04d}" for i in range(n)], "split": split,
                          "scanner": scanner, "site": site,
                          "exposure": rng.normal(1.0, 0.2, n)})
    x = rng.normal(size=(n, DIMS))
    planted = items["item_id"].iloc[n - far:].tolist() if far else []
    x[n - far:] += 12.0  # far from every training item
    emb = pd.DataFrame(x, columns=[f"e{j}" for j in range(DIMS)])
    emb.insert(0, "item_id", items["item_id"])
    project = wb.Project.from_frames(items=items, embeddings=emb if embeddings else None)
    return project, planted


def test_a_slice_present_only_in_the_target_is_flagged_and_no_other():
    project, _ = _project()
    cov = coverage(project)
    thin = cov.thin_slices
    assert list(zip(thin["column"], thin["value"], strict=True)) == [("scanner", "c")]
    row = thin.iloc[0]
    assert row["n_reference"] == 0 and row["share_reference"] == 0
    assert row["share_target"] == pytest.approx(
        (project.items["scanner"][project.items["split"] == "production"] == "c").mean())
    assert row["ratio"] == 0 and row["q_value"] < 0.01
    # the split column defines the sides: it is not sliced
    assert "split" not in set(cov.slices["column"]) and "split" in cov.skipped
    assert {"scanner", "site", "exposure"} == set(cov.slices["column"])
    assert cov.slices["is_thin"].sum() == 1
    assert "1 thin slices" in repr(cov)


def test_slice_p_values_are_one_sided_fisher_adjusted_by_benjamini_hochberg():
    project, _ = _project()
    cov = coverage(project)
    s = cov.slices
    n_t, n_r = len(cov.target_ids), len(cov.reference_ids)
    for rec in s.head(4).itertuples():
        expected = fisher_exact([[rec.n_target, n_t - rec.n_target],
                                 [rec.n_reference, n_r - rec.n_reference]],
                                alternative="greater").pvalue
        assert rec.p_value == pytest.approx(expected)
    assert s["q_value"].to_numpy() == pytest.approx(
        false_discovery_control(s["p_value"].to_numpy(), method="bh"))
    # numeric columns are binned at the reference's deciles: 10% of the reference per bin
    exposure = s[s["column"] == "exposure"]
    assert len(exposure) == 10
    assert exposure["share_reference"].to_numpy() == pytest.approx(0.1, abs=0.01)


def test_thresholds_are_parameters():
    project, _ = _project()
    # a slice two thirds as common in the reference: not thin at ratio 0.5, thin at 0.8
    items = project.items.copy()
    prod = items.index[items["split"] == "production"]
    items.loc[prod[: N_TGT // 4], "site"] = "x"  # x: ~1/3 of train, ~1/2 of production
    p2 = wb.Project.from_frames(items=items)
    s = coverage(p2).slices.set_index(["column", "value"])
    assert not s.loc[("site", "x"), "is_thin"]
    s = coverage(p2, ratio=0.8).slices.set_index(["column", "value"])
    assert s.loc[("site", "x"), "is_thin"]
    # a rare slice is never thin, however new
    s = coverage(project, min_share=0.5).slices
    assert not s["is_thin"].any()


def test_novelty_flags_the_planted_far_items_and_not_the_in_distribution_ones():
    project, planted = _project(far=10)
    cov = coverage(project, k=10)
    items = cov.items
    assert list(items.columns) == ["item_id", "distance", "novelty", "percentile_rank",
                                   "is_novel"]
    assert len(items) == N_TGT and set(items["item_id"]) == set(cov.target_ids)
    assert set(items["item_id"].head(10)) == set(planted)  # farthest first
    novel = set(cov.novel_ids)
    assert set(planted) <= novel
    in_dist = items[~items["item_id"].isin(planted)]
    # at the 99th percentile about 1% of in-distribution items are flagged by chance
    assert in_dist["is_novel"].mean() <= 0.03
    assert (items["is_novel"] == (items["novelty"] > 1)).all()
    assert items.set_index("item_id").loc[planted, "novelty"].min() > 3
    assert items.set_index("item_id").loc[planted, "percentile_rank"].min() == 1.0
    assert cov.threshold > 0 and cov.note == ""


def test_embedding_novelty_measures_the_reference_spread_leave_one_out():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(50, 3))
    tgt = rng.normal(size=(7, 3))
    k = 4
    out = embedding_novelty(ref, tgt, k=k, percentile=90)
    d_rr = np.linalg.norm(ref[:, None] - ref[None], axis=2)
    np.fill_diagonal(d_rr, np.inf)  # leave the item itself out
    loo = np.sort(d_rr, axis=1)[:, k - 1]
    assert out["reference_distance"] == pytest.approx(loo, rel=1e-6)
    d_tr = np.sort(np.linalg.norm(tgt[:, None] - ref[None], axis=2), axis=1)[:, k - 1]
    assert out["distance"] == pytest.approx(d_tr, rel=1e-6)
    assert out["threshold"] == pytest.approx(np.percentile(loo, 90))
    assert out["novelty"] == pytest.approx(d_tr / np.percentile(loo, 90))
    assert out["percentile_rank"] == pytest.approx([(loo < d).mean() for d in d_tr])
    # an exact duplicate in the reference is its own neighbour at distance 0, not a bug
    dup = np.vstack([ref, ref[:1]])
    assert embedding_novelty(dup, tgt, k=1)["reference_distance"][0] == 0


def test_without_embeddings_the_slices_work_and_the_items_say_how_to_get_them():
    project, _ = _project(embeddings=False)
    cov = coverage(project)
    assert cov.items is None and cov.threshold is None
    assert "workbench embed" in cov.note and "embeddings.parquet" in cov.note
    assert list(cov.thin_slices["value"]) == ["c"]
    with pytest.raises(WorkbenchError, match="workbench embed"):
        _ = cov.novel_ids
    assert "no embeddings" in repr(cov)


def test_items_without_a_vector_are_left_out_and_counted():
    project, _ = _project()
    ids, x = project.embedding_matrix()
    keep = np.ones(len(ids), bool)
    keep[[5, N_REF + 3]] = False  # one reference item, one target item
    emb = pd.DataFrame(np.asarray(x)[keep], columns=[f"e{j}" for j in range(DIMS)])
    emb.insert(0, "item_id", ids[keep])
    partial = wb.Project.from_frames(items=project.items, embeddings=emb)
    cov = coverage(partial)
    assert len(cov.items) == N_TGT - 1 and ids[N_REF + 3] not in set(cov.items["item_id"])
    assert cov.note.startswith("2 reference or target items have no embedding")


def test_filters_take_lists_and_any_item_column():
    project, _ = _project()
    cov = coverage(project, reference={"split": "train", "site": ["x", "y"]},
                   target={"split": "production", "site": "z"})
    items = project.items.set_index("item_id")
    assert set(items.loc[cov.reference_ids, "site"]) == {"x", "y"}
    assert set(items.loc[cov.target_ids, "site"]) == {"z"}
    assert set(cov.skipped) == {"split", "site"}
    only = coverage(project, columns=["scanner"])
    assert set(only.slices["column"]) == {"scanner"}


def test_overlapping_sides_warn():
    project, _ = _project()
    with pytest.warns(UserWarning, match=r"items are in both the reference and the target"):
        coverage(project, reference={"site": ["x", "y"]}, target={"site": ["y", "z"]})


def test_parameter_errors_name_the_fix():
    project, _ = _project()
    with pytest.raises(ValueError, match=r"'reference' parameter of coverage names the column "
                                         r"'splt'.*Did you mean 'split'\?"):
        coverage(project, reference={"splt": "train"})
    with pytest.raises(ValueError, match=r"'target' parameter of coverage selects "
                                         r"split='prod'.*\['production', 'train'\].*Did you "
                                         r"mean 'production'\?"):
        coverage(project, target={"split": "prod"})
    with pytest.raises(TypeError, match=r"'target' parameter of coverage must be a non-empty "
                                        r"dict"):
        coverage(project, target="production")
    with pytest.raises(ValueError, match=r"the target .* selects no item"):
        coverage(project, target={"split": "production", "scanner": "c", "site": "x",
                                  "exposure": float(project.items["exposure"].iloc[0])})
    with pytest.raises(ValueError, match="'columns' parameter of coverage .*Got 'scaner'"):
        coverage(project, columns=["scaner"])
    with pytest.raises(ValueError, match=r"'k' parameter of coverage must be smaller than "
                                         r"the number of reference items with an embedding "
                                         r"\(600\)"):
        coverage(project, k=600)
    with pytest.raises(ValueError, match="'k' parameter of coverage must be an int in the "
                                         "range"):
        coverage(project, k=0)
    with pytest.raises(ValueError, match="'min_share' parameter of coverage"):
        coverage(project, min_share=1.5)
    with pytest.raises(ValueError, match="'ratio' parameter of coverage"):
        coverage(project, ratio=0)
    with pytest.raises(ValueError, match="'percentile' parameter of coverage"):
        coverage(project, percentile=101)
    # the default target is the production split: the sample has none, and says so
    with pytest.raises(ValueError, match=r"split='production'.*\['test', 'train', 'val'\]"):
        coverage(wb.Project.from_frames(items=pd.DataFrame(
            {"item_id": ["a", "b", "c"], "split": ["train", "test", "val"]})))


def test_embedding_novelty_checks_its_arrays():
    ref = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"'k' parameter of embedding_novelty must be smaller "
                                         r"than the number of reference items \(5\)"):
        embedding_novelty(ref, ref, k=5)
    with pytest.raises(ValueError, match="reference has 2 dimensions and the target 3"):
        embedding_novelty(ref, np.zeros((1, 3)), k=1)
    with pytest.raises(ValueError, match=r"target rows \[0\] hold NaN"):
        embedding_novelty(ref, [[np.nan, 0.0]], k=1)
    with pytest.raises(ValueError, match="must be 2-D"):
        embedding_novelty(np.zeros(5), ref, k=1)


def test_on_the_real_sample_a_random_split_is_covered(sample_project):
    """The sample's splits are random: no thin slice, and about 1% novel by chance."""
    cov = coverage(sample_project, target={"split": "test"})
    assert len(cov.target_ids) == (sample_project.items["split"] == "test").sum()
    assert not cov.slices["is_thin"].any()
    assert {"scanner", "vendor", "batch"} <= set(cov.slices["column"])
    if not sample_project.has_embeddings:
        assert cov.items is None and "workbench embed" in cov.note
        return
    assert len(cov.items) == len(cov.target_ids)
    assert cov.items["is_novel"].mean() <= 0.03


def test_filters_compare_text_as_text_and_numbers_as_numbers():
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(40)],
                          "week": [str(1 + i % 4) for i in range(40)],
                          "year": [2020 + i % 2 for i in range(40)],
                          "site": ["x", "y"] * 20})
    project = wb.Project.from_frames(items=items)
    cov = coverage(project, reference={"week": [1, 2], "year": "2020"},
                   target={"week": "4", "year": 2021.0})
    chosen = items.set_index("item_id")
    assert set(chosen.loc[cov.reference_ids, "week"]) <= {"1", "2"}
    assert set(chosen.loc[cov.reference_ids, "year"]) == {2020}
    assert set(chosen.loc[cov.target_ids, "year"]) == {2021}
    with pytest.raises(ValueError, match=r"selects year=2019.0, .* has no such value"):
        coverage(project, reference={"year": "2019"}, target={"year": 2021})


def test_a_reference_without_embeddings_says_so_and_keeps_the_slices():
    project, _ = _project()
    ids, x = project.embedding_matrix()
    target_only = pd.DataFrame(np.asarray(x)[N_REF:], columns=[f"e{j}" for j in range(DIMS)])
    target_only.insert(0, "item_id", ids[N_REF:])
    partial = wb.Project.from_frames(items=project.items, embeddings=target_only)
    cov = coverage(partial, k=3)
    assert cov.items is None and cov.threshold is None
    assert cov.note.startswith(f"None of the {N_REF} reference items ({{'split': 'train'}}) "
                               f"has an embedding")
    assert "workbench embed" in cov.note and "'k'" not in cov.note
    assert list(cov.thin_slices["value"]) == ["c"]
    with pytest.raises(WorkbenchError, match=r"None of the 600 reference items"):
        _ = cov.novel_ids


def test_datetime_slices_read_as_dates_and_timezone_aware_ones_are_binned():
    n = 400
    rng = np.random.default_rng(0)
    items = pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n)], "split": ["train"] * 200 + ["production"] * 200,
        "shipped": pd.to_datetime(["2026-01-01", "2026-02-01"] * 100 + ["2026-03-01"] * 200),
        "captured": pd.to_datetime("2026-01-01", utc=True)
        + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s")})
    cov = coverage(wb.Project.from_frames(items=items))
    shipped = cov.slices[cov.slices["column"] == "shipped"].set_index("value")
    assert sorted(shipped.index) == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert shipped.loc["2026-03-01", ["n_target", "n_reference"]].tolist() == [200, 0]
    assert list(cov.thin_slices["value"]) == ["2026-03-01"]
    captured = cov.slices[cov.slices["column"] == "captured"]
    assert len(captured) == 10 and captured["n_reference"].sum() == 200
    assert captured["value"].str.fullmatch(
        r"(< |>= |\[)2026-01-\d\d \d\d:\d\d:\d\d\+00:00"
        r"(, 2026-01-\d\d \d\d:\d\d:\d\d\+00:00\))?").all()
