"""The distributed path: the engine's expressions on Spark (local mode) give the pandas numbers.

The same checks as test_engine.py (``_engine_checks.py``), on one Spark session for the
module (``local[1]``, one shuffle partition, no UI: Spark's start is most of the time), on
the random project that exercises every rule (missing labels and majority ties, re-imported
annotations with nanosecond and missing dates, binned and unbinned numeric, boolean and
missing metadata, a run with missing predictions) and on the sample. The pandas side is the
loaded project; the Spark side reads the same Parquet files.

Needs Java (CI installs Debian's ``openjdk-17-jre-headless`` in ``.ci/run``); without it the
module is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil

import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench.engine import connect, register_tables

try:  # the equality checks shared with test_engine.py
    from . import _engine_checks as checks
except ImportError:
    import _engine_checks as checks

pytestmark = pytest.mark.slow

#: Small and quick for tests: Spark's defaults are made for big data on many cores.
SPARK_TEST_CONFIG = {
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "false",
    # tiny queries: interpreting beats compiling generated code, and a quick JIT start
    "spark.sql.codegen.wholeStage": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.driver.memory": "1g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.skip("Spark's local mode needs Java, which is not installed: apt-get install "
                    "openjdk-17-jre-headless (CI installs it in .ci/run).")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[1]").appName("workbench-engine-tests")
    for key, value in SPARK_TEST_CONFIG.items():
        builder = builder.config(key, value)
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = builder.config("spark.sql.warehouse.dir", str(warehouse)).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def random0(spark, tmp_path_factory):
    """(the random project opened by pandas, its Parquet files registered on Spark)."""
    return checks.both("random0", tmp_path_factory.mktemp("random0"), backend=spark)


@pytest.fixture(scope="module")
def sample(spark, tmp_path_factory):
    return checks.both("sample", tmp_path_factory.mktemp("sample"), backend=spark)


def test_the_tables_are_on_spark(random0, spark):
    project, tables = random0
    assert tables.backend.name == "pyspark"
    assert tables.runs == project.runs  # first appearance, from _metadata.row_index
    assert connect("pyspark").name == "pyspark"  # by name: the active session


def test_confusion_table_and_cells_equal(random0):
    checks.check_confusion_table(*random0, "true", runs=["cand"])


def test_reference_labels_equal(random0):
    checks.check_reference_labels(*random0)


def test_slice_metrics_equal(random0):
    checks.check_slice_metrics(*random0, 4, runs=["cand"])


def test_slice_metrics_per_class_recall_equal(random0):
    checks.check_slice_metrics_per_class_recall(*random0)


def test_discover_slices_equal(random0):
    checks.check_discover_slices(*random0, True, runs=["cand"])


def test_discover_slices_without_pruning_equal(random0):
    """Many more slices: their items are left to test_engine.py (one query per slice)."""
    checks.check_discover_slices(*random0, False, runs=["cand"], item_ids=False)


def test_discover_slices_pair_queries_equal(random0):
    checks.check_discover_pair_queries(*random0)


def test_slice_items_equal(random0):
    """Bins of a numeric column with missing values, a missing value, a limit."""
    checks.check_slice_items(*random0, columns=["score"])


def test_pairwise_agreement_equal(random0):
    checks.check_pairwise_agreement(*random0)


def test_agreement_summary_equal(random0):
    checks.check_agreement_summary(*random0)


def test_label_counts_equal(random0):
    checks.check_label_counts(*random0)


def test_prepared_errors_table_is_cached_and_released(random0):
    """On Spark, ``prepare`` keeps the errors table as a cached DataFrame (Ibis' cache)."""
    checks.check_prepared(*random0)


def test_sample_project_through_the_public_functions(sample):
    """Ten classes, probabilities, microsecond dates; ``tables.errors()`` in the public
    functions (the dispatch itself is tested on every project in test_engine.py)."""
    project, tables = sample
    errors, where = project.errors(), tables.errors()
    checks.assert_frames(wb.confusion_table(where), wb.confusion_table(errors))
    checks.assert_frames(wb.slice_metrics(where), wb.slice_metrics(errors))


def test_folder_of_parquet_parts_keeps_the_row_order(random0, spark, tmp_path):
    """Each part's rows follow the previous part's (``_row`` = part offset + row index)."""
    project, _ = random0
    wb.write_project(project, tmp_path / "one", format="parquet")
    root = tmp_path / "parts"
    for kind in ("items", "annotations", "predictions"):
        frame = pq.read_table(tmp_path / "one" / f"{kind}.parquet")
        (root / kind).mkdir(parents=True)
        third = frame.num_rows // 3
        for i, (start, stop) in enumerate(((0, third), (third, 2 * third),
                                           (2 * third, frame.num_rows))):
            pq.write_table(frame.slice(start, stop - start),
                           root / kind / f"part-{i}.parquet")
    tables = register_tables(root / "items", root / "annotations", root / "predictions",
                             classes=project.classes, backend=spark)
    assert tables.runs == project.runs
    errors = project.errors("cand")
    where = tables.errors("cand")
    assert wb.slice_items(where, {"tier": "b"}) == wb.slice_items(errors, {"tier": "b"})
    checks.check_reference_labels(project, tables)  # the latest label of re-imports
