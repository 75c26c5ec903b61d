"""Out-of-core and distributed aggregates: the workbench's counting where the data lives.

Ibis expressions over the project's Parquet files, on DuckDB in this process by default
(out of core) or on Spark (``connect("pyspark")``, or any Ibis backend); the statistics are
computed in pandas on the small aggregated results, so every engine gives the numbers of
the pandas functions. Needs the ``[scale]`` extra (``duckdb``, ``ibis-framework``,
``pyspark``; Spark also needs Java 17); importing this package does not import them (they
load on the first call). See docs/scale.md, "Out of core" and "Distributed".

The public slicing functions take a run's errors table in the engine in place of an errors
frame (``tables.errors(run)``, :class:`EngineErrors`); the ``engine_*`` functions are the
same computations with the run and the engine-only options (``limit``, ``max_cells``,
``item_ids``) as parameters.

>>> import workbench as wb                                               # doctest: +SKIP
>>> from workbench.engine import register_project                       # doctest: +SKIP
>>> tables = register_project("big_project")             # or backend="pyspark"  # doctest: +SKIP
>>> wb.slice_metrics(tables.errors(), by=["scanner", "site"])             # doctest: +SKIP
"""

from .stats import (
    engine_agreement_summary,
    engine_cell_items,
    engine_confusion_table,
    engine_discover_slices,
    engine_pairwise_agreement,
    engine_slice_items,
    engine_slice_metrics,
)
from .tables import EngineErrors, EngineTables, connect, register_project, register_tables

__all__ = [
    "EngineTables",
    "EngineErrors",
    "connect",
    "register_project",
    "register_tables",
    "engine_confusion_table",
    "engine_cell_items",
    "engine_slice_metrics",
    "engine_discover_slices",
    "engine_slice_items",
    "engine_pairwise_agreement",
    "engine_agreement_summary",
]
