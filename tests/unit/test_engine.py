"""The out-of-core engine (DuckDB through Ibis) gives the numbers of the pandas functions.

Each project is written to Parquet in ``tmp_path``, opened both ways (``open_project`` for
pandas, ``register_project`` for the engine) and every engine result compared with the pandas
one: the confusion table, slice metrics, slice discovery (order 2, with and without pruning),
the agreement count tables (pairwise agreement, agreement summary) and the items of a slice.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench.engine import aggregates as agg
from workbench.engine import (
    engine_agreement_summary,
    engine_confusion_table,
    engine_discover_slices,
    engine_pairwise_agreement,
    engine_slice_items,
    engine_slice_metrics,
    register_project,
    register_tables,
)
from workbench.errors import SchemaError
from workbench.synthetic import make_project

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _both(project, directory: Path):
    wb.write_project(project, directory, format="parquet")
    return wb.open_project(directory), register_project(directory)


def _random_project(seed: int) -> wb.Project:
    """Labels missing on some items (majority with ties), re-imported annotations with
    dates, numeric (binned and not), boolean and missing metadata, two runs."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 900))
    classes = ["cat", "dog", "eel", "fox"]
    ids = np.array([f"it{i:04d}" for i in rng.permutation(n)])
    label = rng.choice(classes, n).astype(object)
    label[rng.random(n) < 0.4] = None
    site = rng.choice(["north", "south", "east", "west", "zeta"], n, p=[.4, .3, .15, .1, .05])
    site = site.astype(object)
    site[rng.random(n) < 0.05] = None
    score = rng.normal(size=n).round(3)
    score[rng.random(n) < 0.08] = np.nan
    items = pd.DataFrame({
        "item_id": ids, "label": label, "site": site, "score": score,
        "age": rng.integers(18, 90, n), "grade": rng.integers(0, 3, n),
        "flag": rng.random(n) < 0.3, "tier": rng.choice(["a", "b"], n)})
    rows = []
    annotators = [f"ann{j}" for j in range(5)]
    t0 = np.datetime64("2026-01-01T00:00:00")
    for i, item in enumerate(ids):
        if rng.random() < 0.1:
            continue  # some items have no annotation at all
        m = int(rng.integers(1, 5))
        for a in rng.choice(annotators, m, replace=False):
            truth = label[i] if label[i] is not None else classes[i % 4]
            lab = truth if rng.random() < 0.7 else rng.choice(classes)
            rows.append((item, a, lab, t0 + np.timedelta64(int(rng.integers(0, 10**6)), "s")))
            if rng.random() < 0.1:  # a re-import: a later (or undated) label
                later = (np.datetime64("NaT") if rng.random() < 0.3
                         else t0 + np.timedelta64(2 * 10**6, "s"))
                rows.append((item, a, rng.choice(classes), later))
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label", "annotated_at"])
    ann["annotated_at"] = pd.to_datetime(ann["annotated_at"], utc=True)
    ann = ann.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    preds = []
    for run, share in (("base", 1.0), ("cand", 0.8)):
        keep = rng.random(n) < share
        preds.append(pd.DataFrame({
            "item_id": ids[keep], "run": run,
            "label": np.where(rng.random(keep.sum()) < np.where(
                (site[keep] == "east") | (items["flag"].to_numpy()[keep] & (
                    items["tier"].to_numpy()[keep] == "b")), 0.3, 0.8),
                              np.where(pd.isna(label[keep]), "cat", label[keep]),
                              rng.choice(classes, keep.sum())),
            "confidence": rng.random(keep.sum())}))
    pred = pd.concat(preds, ignore_index=True)
    return wb.Project.from_frames(items, ann, pred, classes=classes, name=f"random{seed}")


_BUILT: dict = {}


def _built(name: str, factory):
    if name not in _BUILT:
        _BUILT[name] = _both(_make(name), factory.mktemp(name))
    return _BUILT[name]


def _make(name: str) -> wb.Project:
    if name == "sample":
        return wb.open_project(SAMPLE)
    if name.startswith("random"):
        return _random_project(int(name.removeprefix("random")))
    return make_project(3000, n_metadata=6, seed=int(name.removeprefix("synthetic")))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return _built("sample", tmp_path_factory)


@pytest.fixture(scope="module", params=["random0", "random1", "random2"])
def random_project(request, tmp_path_factory):
    return _built(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=["synthetic3", "synthetic4"])
def synthetic(request, tmp_path_factory):
    return _built(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=["sample", "random0", "random1", "random2",
                                        "synthetic3", "synthetic4"])
def pair(request, tmp_path_factory):
    """(project opened by pandas, the same project's Parquet files in the engine)."""
    return _built(request.param, tmp_path_factory)


def _assert_frames(engine: pd.DataFrame, pandas: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(engine, pandas)
    assert engine.attrs == pandas.attrs


# --------------------------------------------------------------------------------------
# equality with the pandas functions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [None, "true", "all"])
def test_confusion_table_equal(pair, normalize):
    project, tables = pair
    for run in project.runs:
        _assert_frames(engine_confusion_table(tables, run, normalize),
                       wb.confusion_table(project.errors(run), normalize))


def test_reference_labels_equal(pair):
    project, tables = pair
    ref = agg.reference_table(tables).select("item_id", "label").execute()
    got = ref.set_index("item_id")["label"].reindex(project.items["item_id"])
    want = project.reference_labels()
    assert got.isna().tolist() == want.isna().tolist()
    assert got.dropna().tolist() == want.dropna().tolist()


@pytest.mark.parametrize("bins", [4, 3, None])
def test_slice_metrics_equal(pair, bins):
    project, tables = pair
    for run in project.runs:
        _assert_frames(engine_slice_metrics(tables, run, bins=bins),
                       wb.slice_metrics(project.errors(run), bins=bins))


def test_slice_metrics_per_class_recall_equal(random_project):
    project, tables = random_project
    _assert_frames(engine_slice_metrics(tables, "cand", ["site", "score"],
                                        per_class_recall=True),
                   wb.slice_metrics(project.errors("cand"), ["site", "score"],
                                    per_class_recall=True))


@pytest.mark.parametrize("prune", [True, False])
def test_discover_slices_equal(pair, prune):
    project, tables = pair
    for run in project.runs:
        errors = project.errors(run)
        want = wb.discover_slices(errors, max_order=2, min_support=10, top=None,
                                  prune_explained=prune, alpha=0.2)
        got = engine_discover_slices(tables, run, max_order=2, min_support=10, top=None,
                                     prune_explained=prune, alpha=0.2, item_ids=True)
        _assert_frames(got, want)


def test_discover_slices_pair_queries_equal(random_project):
    """Beyond max_cells (no joint table) each feature pair is counted by its own query."""
    project, tables = random_project
    errors = project.errors("base")
    want = wb.discover_slices(errors, min_support=5, prune_explained=False, alpha=0.3)
    assert len(want) > 1  # pairs of conditions among them
    got = engine_discover_slices(tables, "base", min_support=5, prune_explained=False,
                                 alpha=0.3, max_cells=1)
    assert got["item_ids"].isna().all()  # fetched only when asked for
    _assert_frames(got.drop(columns="item_ids"), want.drop(columns="item_ids"))
    with pytest.raises(ValueError, match="max_cells"):
        engine_discover_slices(tables, "base", max_cells=1)


def test_discover_finds_the_planted_slices(synthetic):
    project, tables = synthetic
    found = engine_discover_slices(tables)
    assert len(found) and found.attrs["n"] == len(project.errors())
    _assert_frames(found.drop(columns="item_ids"),
                   wb.discover_slices(project.errors()).drop(columns="item_ids"))


def test_slice_items_equal(random_project):
    project, tables = random_project
    errors = project.errors("cand")
    metrics = wb.slice_metrics(errors, ["site", "score", "flag"])
    for value, col in zip(metrics["value"], metrics["column"], strict=True):
        assert engine_slice_items(tables, "cand", {col: value}) == \
            wb.slice_items(errors, {col: value})
    cond = {"tier": "a", "site": None}
    assert engine_slice_items(tables, "cand", cond) == wb.slice_items(errors, cond)
    assert engine_slice_items(tables, "cand", cond, limit=2) == \
        wb.slice_items(errors, cond)[:2]


def test_pairwise_agreement_equal(pair):
    project, tables = pair
    for min_shared in (1, 20):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = wb.pairwise_agreement(project.annotations, min_shared=min_shared)
            got = engine_pairwise_agreement(tables, min_shared=min_shared)
        pd.testing.assert_frame_equal(got, want)


def test_agreement_summary_equal(pair):
    project, tables = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = wb.agreement_summary(project.annotations)
        got = engine_agreement_summary(tables)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if isinstance(value, int):
            assert got[key] == value, key
        else:
            np.testing.assert_allclose(got[key], value, rtol=1e-12, err_msg=key)


def test_label_counts_equal(random_project):
    """The item x class count table of agreement, row for row."""
    project, tables = random_project
    from workbench.agreement import _encode

    enc = _encode(project.annotations, "test", classes=project.classes)
    item, label = np.nonzero(enc.counts)
    want = pd.DataFrame({"item_id": enc.items[item].astype(str),
                         "label": np.asarray(enc.classes, dtype=object)[label],
                         "n": enc.counts[item, label].astype(np.int64)})
    got = (agg.label_counts(tables).execute().astype({"n": np.int64})
           .sort_values(["item_id", "label"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(got[["item_id", "label", "n"]].astype(
        {"item_id": object, "label": object}), want.astype({"item_id": object,
                                                            "label": object}))


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------


def test_folder_of_parquet_parts(tmp_path, random_project):
    """A table may be a folder of parts; rows keep their order across the parts."""
    project, _ = random_project
    wb.write_project(project, tmp_path / "one", format="parquet")
    root = tmp_path / "parts"
    root.mkdir()
    for kind in ("items", "annotations", "predictions"):
        frame = pq.read_table(tmp_path / "one" / f"{kind}.parquet")
        (root / kind).mkdir()
        half = frame.num_rows // 2
        pq.write_table(frame.slice(0, half), root / kind / "part-0.parquet")
        pq.write_table(frame.slice(half), root / kind / "part-1.parquet")
    tables = register_tables(root / "items", root / "annotations", root / "predictions",
                             classes=project.classes)
    errors = project.errors("cand")
    _assert_frames(engine_slice_metrics(tables, "cand"), wb.slice_metrics(errors))
    got = engine_discover_slices(tables, "cand", min_support=10, alpha=0.2, item_ids=True)
    _assert_frames(got, wb.discover_slices(errors, min_support=10, alpha=0.2))
    assert tables.runs == project.runs
    inferred = register_tables(root / "items", root / "annotations", root / "predictions")
    assert inferred.classes == project.classes  # the sorted labels seen, as the loader


def test_missing_column_names_file_and_column(tmp_path, random_project):
    project, _ = random_project
    wb.write_project(project, tmp_path, format="parquet")
    path = tmp_path / "predictions.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["run"]), path)
    with pytest.raises(SchemaError, match=r"predictions\.parquet.*\['run'\]"):
        register_project(tmp_path)
    items = tmp_path / "items.parquet"
    pq.write_table(pq.read_table(items).rename_columns(
        ["id" if c == "item_id" else c for c in pq.read_schema(items).names]), items)
    with pytest.raises(SchemaError, match=r"items\.parquet.*\['item_id'\]"):
        register_project(tmp_path)


def test_bad_arguments(sample):
    _, tables = sample
    with pytest.raises(SchemaError, match=r"no metadata column\(s\) \['nope'\]"):
        engine_slice_metrics(tables, by=["nope"])
    with pytest.raises(ValueError, match="'run' parameter"):
        engine_confusion_table(tables, "nope")
    with pytest.raises(SchemaError, match="Parquet only"):
        register_project(SAMPLE)


def test_core_package_imports_without_the_engine_libraries():
    """``import workbench`` and ``import workbench.engine`` load neither duckdb nor ibis."""
    code = ("import sys, workbench, workbench.engine; "
            "print(sorted({'duckdb', 'ibis'} & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "[]"


def test_prepared_errors_table_is_reused_and_released(random_project):
    """``prepare`` joins once into a Parquet file; the calls scan it; ``release`` deletes it."""
    project, tables = random_project
    tables.prepare("cand")
    try:
        held = tables._prepared["cand"]
        assert (held._dir / "table.parquet").exists()
        errors = project.errors("cand")
        _assert_frames(engine_slice_metrics(tables, "cand"), wb.slice_metrics(errors))
        _assert_frames(engine_discover_slices(tables, "cand", min_support=10, alpha=0.2,
                                              item_ids=True),
                       wb.discover_slices(errors, min_support=10, alpha=0.2))
        # the joint counts kept for the run serve other options and column subsets too
        for kw in ({"bins": 3}, {"by": ["flag", "score"]}, {"bins": None}):
            _assert_frames(engine_slice_metrics(tables, "cand", **kw),
                           wb.slice_metrics(errors, kw.get("by"), bins=kw.get("bins", 4)))
        _assert_frames(engine_discover_slices(tables, "cand", ["flag", "score", "site"],
                                              bins=3, min_support=5, alpha=0.3,
                                              prune_explained=False, item_ids=True),
                       wb.discover_slices(errors, ["flag", "score", "site"], bins=3,
                                          min_support=5, alpha=0.3, prune_explained=False))
        assert len(tables._cubes) >= 4
    finally:
        tables.release()
    assert not held._dir.exists() and tables.prepared("cand") is None
