"""The out-of-core engine (DuckDB through Ibis) gives the numbers of the pandas functions.

Each project is written to Parquet in ``tmp_path``, opened both ways (``open_project`` for
pandas, ``register_project`` for the engine) and every engine result compared with the pandas
one: the confusion table, slice metrics, slice discovery (order 2, with and without pruning),
the agreement count tables (pairwise agreement, agreement summary), the items of a slice or
of a confusion cell, and the public slicing functions given ``tables.errors(run)``. The checks
live in ``_engine_checks.py``; test_engine_spark.py runs them on Spark's local mode.
"""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench.engine import (
    connect,
    engine_confusion_table,
    engine_discover_slices,
    engine_slice_metrics,
    register_project,
    register_tables,
)
from workbench.errors import SchemaError

try:  # the equality checks shared with test_engine_spark.py
    from . import _engine_checks as checks
except ImportError:
    import _engine_checks as checks

SAMPLE = checks.SAMPLE
_assert_frames = checks.assert_frames

_BUILT: dict = {}


def _built(name: str, factory):
    if name not in _BUILT:
        _BUILT[name] = checks.both(name, factory.mktemp(name))
    return _BUILT[name]


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


# --------------------------------------------------------------------------------------
# equality with the pandas functions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [None, "true", "all"])
def test_confusion_table_equal(pair, normalize):
    checks.check_confusion_table(*pair, normalize)


def test_reference_labels_equal(pair):
    checks.check_reference_labels(*pair)


@pytest.mark.parametrize("bins", [4, 3, None])
def test_slice_metrics_equal(pair, bins):
    checks.check_slice_metrics(*pair, bins)


def test_slice_metrics_per_class_recall_equal(random_project):
    checks.check_slice_metrics_per_class_recall(*random_project)


@pytest.mark.parametrize("prune", [True, False])
def test_discover_slices_equal(pair, prune):
    checks.check_discover_slices(*pair, prune)


def test_discover_slices_pair_queries_equal(random_project):
    """Beyond max_cells (no joint table) each feature pair is counted by its own query."""
    project, tables = random_project
    checks.check_discover_pair_queries(project, tables)
    with pytest.raises(ValueError, match="max_cells"):
        engine_discover_slices(tables, "base", max_cells=1)


def test_discover_finds_the_planted_slices(synthetic):
    project, tables = synthetic
    found = engine_discover_slices(tables)
    assert len(found) and found.attrs["n"] == len(project.errors())
    _assert_frames(found.drop(columns="item_ids"),
                   wb.discover_slices(project.errors()).drop(columns="item_ids"))


def test_slice_items_equal(random_project):
    checks.check_slice_items(*random_project)


def test_pairwise_agreement_equal(pair):
    checks.check_pairwise_agreement(*pair)


def test_agreement_summary_equal(pair):
    checks.check_agreement_summary(*pair)


def test_label_counts_equal(random_project):
    """The item x class count table of agreement, row for row."""
    checks.check_label_counts(*random_project)


# --------------------------------------------------------------------------------------
# the public slicing functions, given the engine's errors table
# --------------------------------------------------------------------------------------


def test_public_functions_count_in_the_engine(random_project):
    project, tables = random_project
    for run in project.runs:
        checks.check_public_functions(project, tables, run)


def test_public_functions_with_the_tables_use_the_default_run(random_project):
    project, tables = random_project
    errors = project.errors()
    _assert_frames(wb.slice_metrics(tables, ["site"]), wb.slice_metrics(errors, ["site"]))
    _assert_frames(wb.confusion_table(tables), wb.confusion_table(errors))
    assert wb.slice_items(tables, {"tier": "b"}) == wb.slice_items(errors, {"tier": "b"})
    assert repr(tables.errors("cand")).startswith("EngineErrors(run='cand', backend='duckdb'")


def test_public_functions_refuse_what_the_engine_cannot_do(random_project):
    _, tables = random_project
    where = tables.errors("cand")
    with pytest.raises(ValueError, match=r"The 'target' parameter of slice_metrics must be "
                                         r"'is_error'.*Got 'disagree' instead"):
        wb.slice_metrics(where, target="disagree")
    with pytest.raises(ValueError, match=r"The 'target' parameter of discover_slices"):
        wb.discover_slices(where, target="is_outlier")
    with pytest.raises(ValueError, match=r"run='base', but the errors table given is run "
                                         r"'cand'\. Pass tables\.errors\('base'\)"):
        wb.confusion_table(where, run="base")
    with pytest.raises(ValueError, match="'iou' parameter of cell_items is for detection"):
        wb.cell_items(where, "cat", "dog", iou=0.5)
    with pytest.raises(ValueError, match=r"The 'run' parameter of EngineTables\.errors must "
                                         r"be a str among \{'base', 'cand'\}"):
        tables.errors("nope")
    with pytest.raises(SchemaError, match=r"no metadata column\(s\) \['nope'\]"):
        wb.slice_metrics(where, by=["nope"])


def test_connect_backend_parameter():
    with pytest.raises(ValueError, match=r"The 'backend' parameter of connect must be a str "
                                         r"among \{'duckdb', 'pyspark'\}, a pyspark\.sql\."
                                         r"SparkSession, a connected Ibis backend or None\. "
                                         r"Got 'spark' instead\."):
        connect("spark")
    with pytest.raises(ValueError, match=r"Got 42 instead"):
        register_project(SAMPLE, backend=42)
    duck = connect("duckdb", threads=1)
    assert duck.name == "duckdb" and connect(duck) is duck
    with pytest.raises(ValueError, match="threads configure"):
        connect(duck, threads=1)
    with pytest.raises(ValueError, match=r"memory_limit configure.*not 'pyspark'"):
        connect("pyspark", memory_limit="1GB")


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
    held = tables._prepared["cand"]
    assert (held._dir / "table.parquet").exists()
    checks.check_prepared(project, tables)
    assert not held._dir.exists()
