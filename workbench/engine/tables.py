"""A project's Parquet tables registered in a query engine, never loaded into pandas.

:func:`register_project` opens a project folder (``items.parquet``, ``annotations.parquet``,
``predictions.parquet`` and ``workbench.toml``; each table may also be a folder of Parquet
parts such as ``items/part-000.parquet``) as Ibis tables on a backend: DuckDB in this
process by default, Spark by name or session (``backend="pyspark"``), or any Ibis backend
passed in (:func:`connect`). Only the Parquet footers are read here; every query runs in
the engine.

Each table gets a ``_row`` column, the row's position in the project (file order, then row
order inside the file; on DuckDB from ``read_parquet(file_row_number=true)``, on Spark from
the hidden ``_metadata.row_index`` column): the pandas functions keep "the last row" of
re-imported annotations and predictions, and list item ids in item order, and ``_row``
lets the engine do the same.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, SchemaError

__all__ = ["EngineErrors", "EngineTables", "backend_name", "connect", "register_project",
           "register_tables"]

#: Columns every table must have (as in the project format).
REQUIRED = {
    "items": ("item_id",),
    "annotations": ("item_id", "annotator", "label"),
    "predictions": ("item_id", "run", "label"),
}
#: Columns read as strings (ids, labels, names), as the project loader does.
STRING_COLUMNS = {
    "items": ("item_id", "filepath", "label", "text"),
    "annotations": ("item_id", "annotator", "label"),
    "predictions": ("item_id", "run", "label"),
}
#: Item columns that are not metadata (``Project.metadata_columns``).
NON_METADATA = ("item_id", "filepath", "label", "text", "_row")
#: Rows per Parquet file at most (``_row`` = file index * this + row in the file).
_FILE_STRIDE = 1 << 40


def _ibis():
    try:
        import ibis
    except ImportError as exc:  # pragma: no cover - the [scale] extra is installed in CI
        raise MissingDependencyError(
            "The out-of-core engine needs Ibis and DuckDB: pip install 'workbench[scale]'."
        ) from exc
    return ibis


#: The engines ``connect`` creates by name.
BACKENDS = ("duckdb", "pyspark")


def _is_spark_session(obj: Any) -> bool:
    """A ``pyspark.sql.SparkSession`` (checked without importing pyspark)."""
    return any(c.__name__ == "SparkSession" and c.__module__.startswith("pyspark.")
               for c in type(obj).__mro__)


def _is_ibis_backend(obj: Any) -> bool:
    if "ibis" not in type(obj).__module__.split(".")[0]:
        return False
    from ibis.backends import BaseBackend

    return isinstance(obj, BaseBackend)


def backend_name(backend: Any) -> str:
    """The Ibis backend's name (``"duckdb"``, ``"pyspark"``...)."""
    return str(getattr(backend, "name", ""))


def connect(backend: Any = None, *, memory_limit: str | None = None,
            temp_directory: str | os.PathLike | None = None, threads: int | None = None):
    """The Ibis backend the engine runs on.

    Parameters
    ----------
    backend : {'duckdb', 'pyspark'}, SparkSession, Ibis backend or None, default=None
        Where the counting runs:

        * None or ``'duckdb'``: a new in-process DuckDB database (``ibis.duckdb.connect()``),
          out of core on this machine;
        * ``'pyspark'``: Spark through Ibis (``ibis.pyspark.connect``) on the active
          SparkSession, else on ``SparkSession.builder.getOrCreate()`` (its master and
          resources come from ``spark-defaults.conf``/``PYSPARK_SUBMIT_ARGS``; local mode
          when none is set);
        * a ``pyspark.sql.SparkSession``: Spark on that session;
        * any connected Ibis backend (``ibis.duckdb.connect(path)``, ``ibis.pyspark.connect
          (session)``...), returned as is.
    memory_limit : str, default=None
        DuckDB only: the most memory DuckDB may use (``"4GB"``); beyond it, it spills to
        ``temp_directory``. None keeps DuckDB's default (80 % of the RAM).
    temp_directory : path-like, default=None
        DuckDB only: where it spills.
    threads : int, default=None
        DuckDB only: worker threads (None: one per core).

    Returns
    -------
    Ibis backend

    Raises
    ------
    ValueError
        If ``backend`` is none of these, or a DuckDB option is given with another backend.
    MissingDependencyError
        If Ibis, DuckDB or PySpark is not installed (``pip install 'workbench[scale]'``).
    RuntimeError
        If Spark cannot start because Java is missing (the message says what to install).

    Examples
    --------
    >>> connect()                                       # doctest: +SKIP
    >>> connect("pyspark")                              # doctest: +SKIP
    >>> register_project("big_project", backend="pyspark")  # doctest: +SKIP
    """
    func = "connect"
    duck_options = {"memory_limit": memory_limit, "temp_directory": temp_directory,
                    "threads": threads}
    given = [k for k, v in duck_options.items() if v is not None]
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(_backend_message(backend, func))
        if backend == "pyspark":
            _no_duck_options(given, "'pyspark'", func)
            return _spark_backend(None)
        backend = None
    if backend is None:
        return _duckdb_backend(memory_limit, temp_directory, threads)
    if _is_spark_session(backend):
        _no_duck_options(given, "a SparkSession", func)
        return _spark_backend(backend)
    if _is_ibis_backend(backend):
        _no_duck_options(given, "an Ibis backend", func)
        return backend
    raise ValueError(_backend_message(backend, func))


def _backend_message(backend: Any, func: str) -> str:
    return (f"The 'backend' parameter of {func} must be a str among {{'duckdb', 'pyspark'}}, "
            "a pyspark.sql.SparkSession, a connected Ibis backend or None. Got "
            f"{backend!r} instead.")


def _no_duck_options(given: list[str], what: str, func: str) -> None:
    if given:
        raise ValueError(f"{func}: {', '.join(given)} configure(s) the DuckDB database "
                         f"created when backend is None or 'duckdb', not {what}; configure "
                         "the engine you pass yourself (for Spark: its session's config).")


def _duckdb_backend(memory_limit, temp_directory, threads):
    ibis = _ibis()
    # every order-dependent result is ordered by _row explicitly: let DuckDB reorder freely
    config: dict[str, Any] = {"preserve_insertion_order": False}
    if memory_limit is not None:
        config["memory_limit"] = str(memory_limit)
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    if threads is not None:
        config["threads"] = int(threads)
    return ibis.duckdb.connect(**config)


def _spark_backend(session):
    """Ibis on ``session`` (None: the active SparkSession, else a new default one)."""
    ibis = _ibis()
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MissingDependencyError(
            "The Spark engine needs PySpark: pip install 'workbench[scale]' (and Java 17, "
            "e.g. apt-get install openjdk-17-jre-headless).") from exc
    if session is None:
        session = SparkSession.getActiveSession()
    if session is None:
        java = os.environ.get("JAVA_HOME") or shutil.which("java")
        if not java:
            raise RuntimeError(
                "connect: Spark needs Java (17 for PySpark 4), and neither JAVA_HOME nor "
                "java on the PATH was found. Install it (apt-get install "
                "openjdk-17-jre-headless) or set JAVA_HOME.")
        session = SparkSession.builder.getOrCreate()
    return ibis.pyspark.connect(session)


@dataclass
class EngineTables:
    """A project's tables on an Ibis backend.

    Attributes
    ----------
    backend : Ibis backend
    items, annotations, predictions : ibis Table or None
        The project's tables, each with a ``_row`` column (its position in the project);
        ``annotations``/``predictions`` are None when the project has none.
    classes : list of str
        The class order (``workbench.toml``, else the sorted labels seen).
    default_run : str or None
    files : dict
        ``{kind: [Path, ...]}``, the Parquet files of each table.
    """

    backend: Any
    items: Any
    annotations: Any
    predictions: Any
    classes: list[str]
    default_run: str | None = None
    files: dict = field(default_factory=dict)
    _runs: list[str] | None = field(default=None, repr=False)
    _prepared: dict = field(default_factory=dict, repr=False)
    _edges: dict = field(default_factory=dict, repr=False)
    _cubes: dict = field(default_factory=dict, repr=False)

    def prepare(self, run: str | None = None, *, directory=None) -> None:
        """Compute the run's errors table once and keep it as Parquet.

        The join of items, the annotators' majority and the predictions is written to a
        temporary folder (in ``directory``), so the next engine calls on the run scan it
        instead of joining again.

        Without it, each call joins for itself. :meth:`release` deletes the files.
        """
        from .aggregates import Materialized, errors_table

        run = self.run(run, "EngineTables.prepare")
        if run not in self._prepared:
            cols = ["label", "predicted", "is_error", *self.metadata_columns]
            self._prepared[run] = Materialized(errors_table(self, run).select(*cols),
                                               directory)

    def prepared(self, run: str | None):
        """The prepared errors table of ``run`` (None if :meth:`prepare` was not called)."""
        held = self._prepared.get(self.run(run, "EngineTables.prepared"))
        return None if held is None else held.table

    def release(self) -> None:
        """Delete the tables kept by :meth:`prepare`."""
        for held in self._prepared.values():
            held.drop()
        self._prepared.clear()
        self._edges.clear()
        self._cubes.clear()

    def errors(self, run: str | None = None) -> EngineErrors:
        """The errors table of ``run`` in the engine, for the public slicing functions.

        The engine's counterpart of ``Project.errors(run)``: nothing is computed here;
        :func:`workbench.slice_metrics`, :func:`workbench.discover_slices`,
        :func:`workbench.confusion_table`, :func:`workbench.cell_items` and
        :func:`workbench.slice_items` given it count in the engine.

        Parameters
        ----------
        run : str, default=None
            None: the project's default run.

        Returns
        -------
        EngineErrors
        """
        return EngineErrors(self, self.run(run, "EngineTables.errors"))

    @property
    def metadata_columns(self) -> list[str]:
        """Item columns other than ``item_id``, ``filepath``, ``label``, ``text``."""
        return [c for c in self.items.columns if c not in NON_METADATA]

    @property
    def runs(self) -> list[str]:
        """Prediction runs in order of first appearance (one small query, then cached)."""
        if self._runs is None:
            if self.predictions is None:
                self._runs = []
            else:
                first = (self.predictions.group_by("run")
                         .aggregate(first=self.predictions["_row"].min())
                         .order_by("first").execute())
                self._runs = [str(r) for r in first["run"]]
        return list(self._runs)

    def run(self, run: str | None, func: str) -> str:
        """``run``, or the default run, checked against :attr:`runs`."""
        runs = self.runs
        if not runs:
            raise ValueError(f"{func}: the project has no predictions, so there are no model "
                             "errors to count. Add a predictions table (item_id, run, label).")
        if run is None:
            run = self.default_run or runs[0]
        if run not in runs:
            raise ValueError(f"The 'run' parameter of {func} must be a str among "
                             f"{{{', '.join(repr(r) for r in runs)}}} or None. Got {run!r} "
                             "instead.")
        return run


@dataclass(frozen=True)
class EngineErrors:
    """A run's errors table where the data lives (``EngineTables.errors(run)``).

    Pass it to the public slicing functions in place of ``project.errors(run)``: they count
    in the engine and compute the statistics in pandas on the small counts, returning the
    frames they return on the loaded project (:mod:`workbench.engine.stats`), except that
    :func:`workbench.discover_slices` leaves ``item_ids`` None: a slice's items are fetched
    when a curator opens it (:func:`workbench.slice_items` with its ``conditions``).

    Attributes
    ----------
    tables : EngineTables
    run : str
    """

    tables: EngineTables
    run: str

    @property
    def table(self):
        """The Ibis expression of the errors table (``aggregates.errors_table``)."""
        from .aggregates import errors_table

        return errors_table(self.tables, self.run)

    def __repr__(self) -> str:
        return (f"EngineErrors(run={self.run!r}, backend={backend_name(self.tables.backend)!r}"
                f", metadata_columns={self.tables.metadata_columns})")


def _parquet_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise SchemaError(f"{path}: the folder holds no Parquet files (*.parquet). Put the "
                              "table's parts there, or pass a .parquet file.")
        return files
    if not path.is_file():
        raise SchemaError(f"{path}: no such Parquet file or folder.")
    return [path]


def _check_schema(files: list[Path], kind: str) -> list[str]:
    """The columns of ``kind``'s files (all alike), or a SchemaError naming file and column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names: list[str] | None = None
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (pa.ArrowException, OSError) as exc:
            raise SchemaError(f"{f}: cannot read the Parquet file ({exc}). Re-export it.") from exc
        cols = [str(n) for n in schema.names]
        missing = [c for c in REQUIRED[kind] if c not in cols]
        if missing:
            raise SchemaError(
                f"{f}: the {kind} table is missing the column(s) {missing}. It has {cols}. "
                f"Rename or add them: {kind} needs {list(REQUIRED[kind])}.")
        if "_row" in cols:
            raise SchemaError(f"{f}: the column '_row' is reserved by the engine (the row's "
                              "position). Rename it.")
        for c in STRING_COLUMNS[kind]:
            if c in cols and pa.types.is_floating(schema.field(c).type):
                raise SchemaError(f"{f}: column {c!r} is stored as floating point "
                                  f"({schema.field(c).type}); ids and labels must be strings. "
                                  "Write it as strings.")
        if names is None:
            names = cols
        elif sorted(cols) != sorted(names):
            raise SchemaError(f"{f}: its columns {cols} differ from those of {files[0]} "
                              f"{names}. Every part of the {kind} table needs the same "
                              "columns.")
    return names or []


def _read(backend, files: list[Path], kind: str, names: list[str]):
    """One Ibis table over ``files`` with string ids/labels and a ``_row`` column."""
    parts = []
    for i, f in enumerate(files):
        t = _read_file(backend, f, i * _FILE_STRIDE)
        casts = {c: t[c].cast("string") for c in STRING_COLUMNS[kind]
                 if c in t.columns and not t[c].type().is_string()}
        if casts:
            t = t.mutate(**casts)
        parts.append(t.select(*names, "_row"))
    table = parts[0]
    for t in parts[1:]:
        table = table.union(t, distinct=False)
    return table


def _read_file(backend, path: Path, offset: int):
    """One Parquet file as an Ibis table with ``_row`` = ``offset`` + the row's position."""
    ibis = _ibis()
    name = backend_name(backend)
    if name == "duckdb":
        t = backend.read_parquet(str(path), file_row_number=True)
        return t.mutate(_row=t["file_row_number"].cast("int64") + ibis.literal(offset, "int64"))
    if name == "pyspark":
        return _read_spark(backend, path, offset)
    # other engines: their scan order
    t = backend.read_parquet(str(path))
    return t.mutate(_row=ibis.row_number().cast("int64") + ibis.literal(offset, "int64"))


def _spark_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _read_spark(backend, path: Path, offset: int):
    """``_read_file`` on Spark: ``_row`` from the hidden ``_metadata.row_index`` column.

    Spark cannot read nanosecond timestamps (pandas' default in Parquet) as timestamps:
    with ``spark.sql.legacy.parquet.nanosAsLong`` (set on the session when a file has
    them) they arrive as nanoseconds since the epoch; ``annotated_at`` stays so (it only
    orders labels, exactly), other columns become Spark's microsecond timestamps.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    cols = []
    for f in schema:
        col = _spark_name(f.name)
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns":
            backend.raw_sql("SET spark.sql.legacy.parquet.nanosAsLong = true")
            if f.name != "annotated_at":
                col = f"timestamp_micros({col} DIV 1000) AS {col}"
        cols.append(col)
    return backend.sql(f"SELECT {', '.join(cols)}, CAST(_metadata.row_index AS BIGINT) + "
                       f"{int(offset)} AS _row FROM parquet.{_spark_name(str(path))}")


def _find(root: Path, kind: str) -> Path | None:
    for cand in (root / f"{kind}.parquet", root / kind):
        if cand.exists():
            return cand
    if (root / f"{kind}.csv").exists():
        raise SchemaError(f"{root / (kind + '.csv')}: the engine reads Parquet only. Convert "
                          "the project with workbench.write_project(open_project(path), path, "
                          "format='parquet').")
    return None


def _distinct_labels(tables: list) -> list[str]:
    seen: set[str] = set()
    for t in tables:
        if t is not None and "label" in t.columns:
            vals = t.select("label").distinct().execute()["label"]
            seen.update(str(v) for v in vals.dropna())
    return sorted(seen)


def register_tables(items, annotations=None, predictions=None, *, backend=None,
                    classes=None, default_run: str | None = None) -> EngineTables:
    """Register Parquet files (or folders of Parquet parts) as the project's tables.

    Parameters
    ----------
    items : path-like
        ``items.parquet`` or a folder of its parts: ``item_id`` [, ``filepath``] [,
        ``label``], metadata columns.
    annotations, predictions : path-like, optional
        ``item_id``, ``annotator``, ``label`` [, ``annotated_at``]; ``item_id``, ``run``,
        ``label`` [, ``confidence``, ``prob_<class>``].
    backend : {'duckdb', 'pyspark'}, SparkSession, Ibis backend or None, default=None
        Where the queries run, see :func:`connect` (None: in-process DuckDB).
    classes : list of str, default=None
        The class order; None: the sorted labels seen (one query).
    default_run : str, default=None
        None: the first run.

    Returns
    -------
    EngineTables

    Raises
    ------
    SchemaError
        If a file is missing or unreadable, or lacks a required column (the message names
        the file and the column).
    """
    backend = connect(backend)
    files: dict[str, list[Path]] = {}
    tables: dict[str, Any] = {}
    for kind, path in (("items", items), ("annotations", annotations),
                       ("predictions", predictions)):
        if path is None:
            if kind == "items":
                raise ValueError("register_tables: items is required (a Parquet file or a "
                                 "folder of Parquet parts).")
            tables[kind] = None
            continue
        fl = _parquet_files(Path(path))
        names = _check_schema(fl, kind)
        files[kind] = fl
        tables[kind] = _read(backend, fl, kind, names)
    if classes is None:  # as the project loader: labels seen and prob_<class> columns
        seen = set(_distinct_labels([tables["items"], tables["annotations"],
                                     tables["predictions"]]))
        if tables["predictions"] is not None:
            seen |= {c.removeprefix("prob_") for c in tables["predictions"].columns
                     if c.startswith("prob_")}
        classes = sorted(seen)
    out = EngineTables(backend=backend, items=tables["items"], annotations=tables["annotations"],
                       predictions=tables["predictions"], classes=[str(c) for c in classes],
                       default_run=default_run, files=files)
    if default_run is not None and default_run not in out.runs:
        raise SchemaError(f"default_run {default_run!r} is not a run in the predictions "
                          f"{out.runs}. Fix default_run or add the run.")
    return out


def register_project(path: str | os.PathLike, *, backend=None) -> EngineTables:
    """Register a project folder in Parquet format (``workbench.toml`` + tables).

    Parameters
    ----------
    path : path-like
        The project folder: ``items.parquet`` (or ``items/`` with Parquet parts),
        optional ``annotations`` and ``predictions`` the same way, optional
        ``workbench.toml`` (``classes``, ``default_run``). Write one with
        ``workbench.write_project(project, path, format="parquet")``.
    backend : {'duckdb', 'pyspark'}, SparkSession, Ibis backend or None, default=None
        Where the queries run, see :func:`connect` (None: in-process DuckDB).

    Returns
    -------
    EngineTables

    Raises
    ------
    SchemaError
        If the folder has no items table, a table is CSV, or a file lacks a required
        column (the message names the file and the column).

    Examples
    --------
    >>> tables = register_project("my_project")                       # doctest: +SKIP
    >>> wb.slice_metrics(tables.errors(), by=["scanner", "site"])     # doctest: +SKIP
    >>> on_spark = register_project("my_project", backend="pyspark")  # doctest: +SKIP
    """
    backend = connect(backend)  # a wrong backend is reported before the files are read
    root = Path(path)
    if not root.is_dir():
        raise SchemaError(f"{root}: not a project folder.")
    config: dict = {}
    toml = root / "workbench.toml"
    if toml.exists():
        try:
            config = tomllib.loads(toml.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"{toml}: not valid TOML ({exc}).") from exc
        if config.get("task", "classification") != "classification":
            raise SchemaError(f"{toml}: task = {config['task']!r}; the engine counts "
                              "classification projects only.")
    items = _find(root, "items")
    if items is None:
        raise SchemaError(f"{root}: no items.parquet (or items/ folder of Parquet parts). "
                          "Every project needs an items table.")
    return register_tables(items, _find(root, "annotations"), _find(root, "predictions"),
                           backend=backend, classes=config.get("classes"),
                           default_run=config.get("default_run"))
