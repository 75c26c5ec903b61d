"""Out-of-core aggregates: the workbench's counting where the data lives (DuckDB, Ibis).

Needs the ``[scale]`` extra (``duckdb``, ``ibis-framework[duckdb]``); importing this package
does not import them (they load on the first call). See docs/scale.md, "Out of core".

>>> from workbench.engine import register_project, engine_slice_metrics  # doctest: +SKIP
>>> tables = register_project("big_project")                             # doctest: +SKIP
>>> engine_slice_metrics(tables, by=["scanner", "site"])                 # doctest: +SKIP
"""

from .stats import (
    engine_agreement_summary,
    engine_confusion_table,
    engine_discover_slices,
    engine_pairwise_agreement,
    engine_slice_items,
    engine_slice_metrics,
)
from .tables import EngineTables, connect, register_project, register_tables

__all__ = [
    "EngineTables",
    "connect",
    "register_project",
    "register_tables",
    "engine_confusion_table",
    "engine_slice_metrics",
    "engine_discover_slices",
    "engine_slice_items",
    "engine_pairwise_agreement",
    "engine_agreement_summary",
]
