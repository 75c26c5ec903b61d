"""The project format on disk, its validation, and the :class:`Project` every module uses.

A project is a folder::

    <project>/
      workbench.toml            optional: name, classes (ordered list), default_run, image_root
      items.csv|items.parquet   one row per item: item_id (unique), filepath (optional),
                                label (optional), text (optional: a text item's content;
                                or .txt filepaths, docs/text.md), any other column = metadata
      annotations.csv|.parquet  optional: item_id, annotator, label [, annotated_at]
      predictions.csv|.parquet  optional: item_id, run, label [, confidence] [, prob_<class>...]

IDs and labels are always read as strings, and so are the CSV columns ``workbench.toml``
lists under ``[csv_text_columns]`` (per table; written by :func:`write_project`). Every
problem found is reported with the file, the line (CSV) or row (Parquet, 0-based), the
column and how to fix it.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import os
import tomllib
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._ids import ItemIds, arrow_strings, blank_strings, rows_with, worker_count
from ._progress import progress
from .errors import SchemaError

__all__ = [
    "Project",
    "Problem",
    "open_project",
    "validate_project",
    "write_project",
    "PROB_PREFIX",
    "PROB_TOLERANCE",
]

PROB_PREFIX = "prob_"
#: Probability rows must sum to 1 within this absolute tolerance.
PROB_TOLERANCE = 1e-3
#: Metadata column names that would clash with columns the workbench derives.
RESERVED_ITEM_COLUMNS = ("predicted", "correct", "confidence", "run", "annotator")

_KINDS = ("items", "annotations", "predictions")
#: ``task`` values of ``workbench.toml``; a detection project is read by
#: :mod:`workbench.detection.io` (kinds ``boxes``, ``box_annotations``, ``box_predictions``).
TASKS = ("classification", "detection")
_BOX = ("label", "x", "y", "w", "h")
_REQUIRED = {
    "items": ("item_id",),
    "annotations": ("item_id", "annotator", "label"),
    "predictions": ("item_id", "run", "label"),
    "boxes": ("item_id",) + _BOX,
    "box_annotations": ("item_id", "annotator") + _BOX,
    "box_predictions": ("item_id", "run") + _BOX + ("confidence",),
}
_STRING_COLUMNS = {
    "items": ("item_id", "filepath", "label", "text"),
    "annotations": ("item_id", "annotator", "label"),
    "predictions": ("item_id", "run", "label"),
    "boxes": ("box_id", "item_id", "label"),
    "box_annotations": ("box_id", "item_id", "annotator", "label"),
    "box_predictions": ("pred_id", "item_id", "run", "label"),
}
#: Low-cardinality string columns read from Parquet as their dictionary: the integer codes
#: give the blank, unknown-label and pair checks without hashing every row again.
_CODED_COLUMNS = {
    "items": ("label",),
    "annotations": ("annotator", "label"),
    "predictions": ("run", "label"),
}
_TOML_KEYS = {"name": str, "classes": list, "default_run": str, "image_root": str,
              "task": str}
#: The ``workbench.toml`` table naming, per CSV table, the columns of text that a CSV reader
#: would otherwise take for numbers, booleans or dates (``"007"``, ``"TRUE"``): written by
#: :func:`write_project` in CSV format, so that opening the folder again gives equal frames.
CSV_TEXT_KEY = "csv_text_columns"
#: The ``[qc]`` table of ``workbench.toml``: pass/fail thresholds of
#: :func:`workbench.qc_report`, and their ranges (kept in ``Project.info["qc"]``).
QC_DEFAULTS = {"min_gold_accuracy": 0.9, "min_kappa": 0.6}
_QC_RANGES = {"min_gold_accuracy": (0.0, 1.0), "min_kappa": (-1.0, 1.0)}
_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
_MAX_LISTED = 5
#: The suffix of a text item's file (``filepath``), read as UTF-8 (docs/text.md).
TEXT_SUFFIX = ".txt"
#: A text file larger than this is refused (``media_status``: ``unreadable``).
_MAX_TEXT_BYTES = 8 * 2**20


# --------------------------------------------------------------------------------------
# problems


@dataclass(frozen=True)
class Problem:
    """One problem found in a project.

    Attributes
    ----------
    file : str
        File name (``items.csv``) or frame name (``items``) the problem is in.
    message : str
        What is wrong and how to fix it.
    line : int or None
        1-based line in a CSV file (the header is line 1).
    row : int or None
        0-based row position, for Parquet files and in-memory frames.
    column : str or None
        The column concerned.
    severity : {'error', 'warning'}
        Errors stop :func:`open_project`; warnings do not.
    """

    file: str
    message: str
    line: int | None = None
    row: int | None = None
    column: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = [self.file]
        if self.line is not None:
            where.append(f"line {self.line}")
        elif self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}"


class _Problems(list):
    def error(self, file, message, **kw):
        self.append(Problem(file, message, **kw))

    def warn(self, file, message, **kw):
        self.append(Problem(file, message, severity="warning", **kw))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self if p.severity == "error"]


@dataclass
class _Source:
    """Where a frame came from, to word positions the way the user sees them."""

    name: str
    csv: bool = False

    def where(self, positions: Iterable[int]) -> str:
        pos = [int(p) for p in positions]
        unit = "line" if self.csv else "row"
        shown = [str(p + 2 if self.csv else p) for p in pos[:_MAX_LISTED]]
        more = f" and {len(pos) - _MAX_LISTED} more" if len(pos) > _MAX_LISTED else ""
        return f"{unit}{'s' if len(pos) > 1 else ''} {', '.join(shown)}{more}"

    def at(self, position: int) -> dict:
        return {"line": int(position) + 2} if self.csv else {"row": int(position)}


def _listed(values: Iterable[Any]) -> str:
    vals = [v.item() if isinstance(v, np.generic) else v for v in values]  # 1.5, not np.float64
    shown = ", ".join(repr(v) for v in vals[:_MAX_LISTED])
    return shown + (f" and {len(vals) - _MAX_LISTED} more" if len(vals) > _MAX_LISTED else "")


def _did_you_mean(value: str, options: Iterable[str]) -> str:
    options = list(options)
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower().strip(): o for o in options}
        if str(value).lower().strip() in lowered:
            close = [lowered[str(value).lower().strip()]]
    return f" Did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------------------
# reading files


def _find_table(root: Path, stem: str, problems: _Problems, *, required: bool) -> Path | None:
    present = [p for p in (root / f"{stem}.csv", root / f"{stem}.parquet") if p.exists()]
    if len(present) > 1:
        problems.error(
            present[0].name,
            f"both {stem}.csv and {stem}.parquet exist in {root}; keep only one of them.",
        )
        return None
    if not present:
        if required:
            problems.error(
                f"{stem}.csv",
                f"no {stem}.csv or {stem}.parquet in {root}. Create one with at least the "
                f"column(s) {list(_REQUIRED[stem])} (see the project format in the README).",
            )
        return None
    return present[0]


def _check_header(names: list[str], file: str, problems: _Problems) -> bool:
    ok = True
    for i, name in enumerate(names):
        if not name:
            problems.error(file, f"column {i + 1} of the header has no name; name it or delete it.",
                           line=1)
            ok = False
    dups = sorted(n for n, c in Counter(names).items() if c > 1 and n)
    if dups:
        problems.error(
            file,
            f"duplicate column name(s) {dups} in the header. Each column needs a unique name: "
            "rename or delete the repeated ones.",
            line=1,
        )
        ok = False
    return ok


def _read_csv(path: Path, kind: str, problems: _Problems,
              text_columns: tuple = ()) -> pd.DataFrame | None:
    """Read a CSV table; ids, labels and ``text_columns`` as strings (see CSV_TEXT_KEY)."""
    file = path.name
    data = path.read_bytes()
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        problems.error(file, f"the file is empty. It needs a header line with at least "
                             f"{list(_REQUIRED[kind])} and one row per record.")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line = data.count(b"\n", 0, offset) + 1
        problems.error(
            file,
            f"the file is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line}). Save it as UTF-8 (in Excel: 'CSV UTF-8'; or "
            f"`iconv -f latin1 -t utf-8`).",
            line=line,
        )
        return None
    del data
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    names = [h.strip() for h in header]
    if not _check_header(names, file, problems):
        return None
    strings = {c: str for c in (*_STRING_COLUMNS[kind], *text_columns) if c in names}
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=strings,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=False,
        )
    except pd.errors.ParserError as exc:
        problems.error(file, f"cannot parse the CSV: {exc}. Quote values that contain commas "
                             "or line breaks.")
        return None
    frame.columns = names
    if frame.empty:
        problems.error(file, "the file has a header but no rows. Add rows, or delete the file "
                             "if it is optional and there is nothing to put in it yet.")
        return None
    return frame


def _read_parquet(path: Path, kind: str, problems: _Problems,
                  coded: dict | None = None) -> pd.DataFrame | None:
    """Read a Parquet table with its id and label columns as strings.

    When ``coded`` is a dict, the :data:`_CODED_COLUMNS` of ``kind`` are read as Parquet
    stores them (a dictionary) and ``coded[column]`` receives their :class:`_Coded` codes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = path.name
    try:
        wanted = _CODED_COLUMNS.get(kind, ()) if coded is not None else ()
        as_dictionary = [n for n in pq.read_schema(path).names if str(n).strip() in wanted] \
            if wanted else None
        table = pq.read_table(path, read_dictionary=as_dictionary)
    except (pa.ArrowException, OSError) as exc:
        problems.error(file, f"cannot read the Parquet file: {exc}. Re-export it, or use CSV.")
        return None
    names = [str(n).strip() for n in table.column_names]
    if not _check_header(names, file, problems):
        return None
    table = table.rename_columns(names)
    if table.num_rows == 0:
        problems.error(file, "the file has columns but no rows. Add rows, or delete the file "
                             "if it is optional and there is nothing to put in it yet.")
        return None
    for col in _STRING_COLUMNS[kind]:
        if col in names:
            i = names.index(col)
            typ = table.schema.field(i).type
            if pa.types.is_dictionary(typ):
                typ = typ.value_type
                if col in wanted and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
                    coded[col] = _Coded.of(table.column(i))
                table = table.set_column(i, col, table.column(i).cast(typ))
            if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
                if pa.types.is_floating(typ):
                    problems.error(file, f"column {col!r} is stored as floating point ({typ}); "
                                         f"ids and labels must be strings. Write it as strings.",
                                   column=col)
                    return None
                table = table.set_column(i, col, table.column(i).cast(pa.string()))
    return table.to_pandas()


def _read_table(path: Path, kind: str, problems: _Problems, coded: dict | None = None,
                config: dict | None = None) -> tuple[pd.DataFrame | None, _Source]:
    """Read a CSV or Parquet table; ``coded`` as in :func:`_read_parquet` (Parquet only).

    ``config``: the project's ``workbench.toml``; a CSV's columns it lists under
    :data:`CSV_TEXT_KEY` are read as text.
    """
    source = _Source(path.name, csv=path.suffix == ".csv")
    try:
        if source.csv:
            listed = ((config or {}).get(CSV_TEXT_KEY) or {}).get(path.stem) or ()
            text = tuple(c for c in listed if isinstance(c, str))
            return _read_csv(path, kind, problems, text), source
        return _read_parquet(path, kind, problems, coded), source
    except PermissionError as exc:
        problems.error(path.name, f"cannot read the file: {exc}. Check its permissions.")
        return None, source


def _read_toml(root: Path, problems: _Problems) -> dict:
    path = root / "workbench.toml"
    if not path.exists():
        return {}
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        problems.error("workbench.toml", f"not valid UTF-8 at byte offset {exc.start}; "
                                         "save it as UTF-8.")
        return {}
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        problems.error("workbench.toml", f"malformed TOML: {exc}. Fix the syntax (strings need "
                                         "quotes, lists use [\"a\", \"b\"]).", line=line)
        return {}
    out = {}
    for key, value in config.items():
        if key == "qc":
            bad = qc_table_problems(value)
            for column, message in bad:
                problems.error("workbench.toml", message, column=column)
            if not bad:
                out[key] = dict(value)  # ends up in Project.info["qc"]
            continue
        expected = _TOML_KEYS.get(key)
        if expected is None:
            out[key] = value  # free-form extras end up in Project.info
            continue
        if key == "classes":
            if not isinstance(value, list) or not value:
                problems.error("workbench.toml", f"'classes' must be a non-empty list of class "
                                                 f"names, like classes = [\"cat\", \"dog\"]. "
                                                 f"Got {value!r}.", column="classes")
                continue
            bad = [v for v in value if not isinstance(v, str | int) or isinstance(v, bool)
                   or str(v).strip() == ""]
            if bad:
                problems.error("workbench.toml", f"'classes' holds values that are not class "
                                                 f"names: {bad!r}. Use non-empty strings.",
                               column="classes")
                continue
            names = [str(v) for v in value]
            dups = sorted(n for n, c in Counter(names).items() if c > 1)
            if dups:
                problems.error("workbench.toml", f"'classes' lists {dups} more than once; list "
                                                 "each class once.", column="classes")
                continue
            out[key] = names
        elif key == "task" and value not in TASKS:
            problems.error("workbench.toml", f"'task' must be one of {list(TASKS)}. Got "
                                             f"{value!r}.{_did_you_mean(str(value), TASKS)} "
                                             f"Fix 'task' in workbench.toml (omit it for "
                                             f"classification).", column="task")
        elif not isinstance(value, expected):
            problems.error("workbench.toml", f"{key!r} must be a {expected.__name__}. Got "
                                             f"{value!r}.", column=key)
        else:
            out[key] = value
    return out


def qc_table_problems(table: Any) -> list[tuple[str, str]]:
    """Problems of a ``[qc]`` table of ``workbench.toml`` as ``(column, message)`` pairs.

    Keys: ``min_gold_accuracy`` (a number in [0, 1]) and ``min_kappa`` (in [-1, 1]); both
    optional (defaults :data:`QC_DEFAULTS`). An empty list means the table is valid.
    """
    if not isinstance(table, dict):
        return [("qc", f"'qc' must be a table, like [qc] followed by min_gold_accuracy = 0.9 "
                       f"and min_kappa = 0.6 on their own lines. Got {table!r}.")]
    out = []
    for key, value in table.items():
        if key not in _QC_RANGES:
            out.append((f"qc.{key}", f"[qc] has an unknown key {key!r}."
                                     f"{_did_you_mean(str(key), _QC_RANGES)} Known keys: "
                                     f"{list(_QC_RANGES)}."))
            continue
        low, high = _QC_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not low <= value <= high:
            out.append((f"qc.{key}", f"[qc] {key} must be a number in [{low:g}, {high:g}], "
                                     f"like {key} = {QC_DEFAULTS[key]}. Got {value!r} "
                                     f"({type(value).__name__})."))
    return out


# --------------------------------------------------------------------------------------
# validating frames (shared by files and in-memory frames)


def _as_string(frame: pd.DataFrame, col: str) -> None:
    s = frame[col]
    if not (pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype)):
        if pd.api.types.is_float_dtype(s.dtype):
            # 1.0 -> "1", keep NaN missing
            as_int = s.dropna()
            if (as_int == np.floor(as_int)).all():
                s = s.astype("Int64")
        frame[col] = s.astype(str).where(s.notna(), None).astype("str")


def _check_required(frame: pd.DataFrame, kind: str, source: _Source, problems: _Problems) -> bool:
    missing = [c for c in _REQUIRED[kind] if c not in frame.columns]
    for col in missing:
        hint = _did_you_mean(col, [str(c) for c in frame.columns])
        problems.error(source.name, f"missing required column {col!r}. Found columns "
                                    f"{list(map(str, frame.columns))}.{hint} Add or rename it.",
                       column=col, **({"line": 1} if source.csv else {}))
    return not missing


def _has_required(frame: pd.DataFrame | None, kind: str) -> bool:
    return frame is not None and all(c in frame.columns for c in _REQUIRED[kind])


def _prepared(frame: pd.DataFrame | None, kind: str, own: bool) -> pd.DataFrame | None:
    """The frame with its id and label columns as strings (a copy unless ``own``).

    A frame that lacks a required column is returned unchanged: its validation reports it.
    """
    if not _has_required(frame, kind):
        return frame
    frame = frame if own else frame.copy()
    for col in _STRING_COLUMNS[kind]:
        if col in frame.columns:
            _as_string(frame, col)
    return frame


def _blank(series: pd.Series) -> np.ndarray:
    """Rows that are missing, empty or only whitespace (what ``str.strip() == ''`` finds)."""
    values = arrow_strings(series)
    if values is None:
        return (series.isna() | (series.str.strip() == "")).to_numpy(dtype=bool)
    return blank_strings(values)


def _check_empty(frame, cols, source: _Source, problems: _Problems, what: str,
                 early: dict | None = None) -> np.ndarray:
    bad_any = np.zeros(len(frame), dtype=bool)
    for col in cols:
        bad = early[col].result() if early and col in early else _blank(frame[col])
        if bad.any():
            pos = np.flatnonzero(bad)
            problems.error(source.name, f"empty {col} on {source.where(pos)}. Every {what} needs "
                                        f"a {col}: fill it in or delete the row.",
                           column=col, **source.at(pos[0]))
            bad_any |= bad
    return bad_any


def _duplicated_first(first: np.ndarray) -> np.ndarray:
    """``duplicated(keep=False)`` of the item ids, from :attr:`ItemIds.first`."""
    later = first != np.arange(len(first))
    if not later.any():
        return later
    mask = later.copy()
    mask[first[later]] = True
    return mask


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of ``values`` (missing is a value too) and how many distinct."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes, len(uniques)


@dataclass(frozen=True)
class _Coded:
    """A string column as integer codes into its distinct values (a Parquet dictionary).

    Attributes
    ----------
    codes : ndarray of int, shape (n_rows,)
        Each row's position in ``values``; -1 where the row is missing.
    values : Series of str
        The distinct non-missing strings.
    """

    codes: np.ndarray
    values: pd.Series
    has_missing: bool

    @classmethod
    def of(cls, column) -> _Coded:
        """From a pyarrow ChunkedArray of dictionary type (string values)."""
        import pyarrow.compute as pc

        column = column.unify_dictionaries()
        dictionary = column.chunk(0).dictionary if column.num_chunks else None
        codes = np.concatenate(
            [np.asarray(pc.fill_null(chunk.indices, -1) if chunk.null_count else chunk.indices)
             for chunk in column.chunks] or [np.zeros(0, dtype=np.int32)])
        values = dictionary.to_pandas().astype("str") if dictionary is not None else \
            pd.Series([], dtype="str")
        # Arrow allows a dictionary to repeat a value or hold a missing one: code the values
        of_value, uniques = pd.factorize(values)
        recoded = len(uniques) < len(values)
        if recoded:
            codes = np.append(of_value, -1)[codes]
            values = pd.Series(uniques, dtype="str")
        return cls(codes, values.reset_index(drop=True), bool(column.null_count) or recoded)

    def mask(self, of_values: np.ndarray, missing: bool) -> np.ndarray:
        """A row mask from a mask of the values, ``missing`` for missing rows."""
        of_values = np.asarray(of_values, dtype=bool)
        if not of_values.any():  # the usual answer, without a pass over the rows
            return self.codes < 0 if missing and self.has_missing else \
                np.zeros(len(self.codes), dtype=bool)
        return np.append(of_values, missing)[self.codes]

    def pair_codes(self) -> tuple[np.ndarray, int]:
        """What :func:`_codes` gives for the column (missing is a value too)."""
        n = len(self.values)
        codes = np.where(self.codes < 0, n, self.codes) if self.has_missing else self.codes
        return codes, n + 1


def _coded_blank(coded: _Coded) -> np.ndarray:
    """:func:`_blank` of a coded column."""
    return coded.mask(_blank(coded.values), True)


def _coded_unknown(coded: _Coded, classes: list[str]) -> np.ndarray:
    """:func:`_unknown_labels` of a coded column."""
    return coded.mask(_unknown_labels(coded.values, classes), False)


def _duplicated_pairs(frame: pd.DataFrame, positions: np.ndarray, codes: tuple,
                      keys: list[str]) -> np.ndarray:
    """``frame.duplicated(keys, keep=False)`` for keys item id, a coded key, maybe more.

    ``positions`` (every row's item, none unknown) and the :func:`_codes` ``codes`` of
    ``keys[1]`` give one integer per pair, sorted instead of hashed; further keys are
    compared on the few repeats only.
    """
    values, n_values = codes
    width = max(n_values, 1)
    span = (int(positions.max()) + 1) * width if len(positions) else 0
    dtype = np.int32 if span < np.iinfo(np.int32).max else np.int64
    dup = _duplicated_keys(positions.astype(dtype) * dtype(width) + values.astype(dtype))
    if len(keys) > 2 and dup.any():
        rows = np.flatnonzero(dup)
        dup[rows] = frame.iloc[rows].duplicated(keys, keep=False).to_numpy()
    return dup


def _duplicated_keys(key: np.ndarray) -> np.ndarray:
    """Mask of rows whose integer key occurs more than once (sort-based, no hashing)."""
    if len(key) < 2:
        return np.zeros(len(key), dtype=bool)
    ordered = np.sort(key)  # the usual case, no repeat: one unstable sort
    if not (ordered[1:] == ordered[:-1]).any():
        return np.zeros(len(key), dtype=bool)
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    hit = np.zeros(len(key), dtype=bool)
    hit[1:] |= same
    hit[:-1] |= same
    mask = np.zeros(len(key), dtype=bool)
    mask[order] = hit
    return mask


def _check_known_ids(frame, positions: np.ndarray, source: _Source, problems,
                     what: str) -> None:
    unknown = positions < 0
    if unknown.any():
        pos = np.flatnonzero(unknown & frame["item_id"].notna().to_numpy())
        if len(pos):
            ids = pd.unique(frame["item_id"].to_numpy()[pos])
            problems.error(source.name, f"{what} for item_id(s) not in items: {_listed(ids)} "
                                        f"({source.where(pos)}). Add these items to items, or "
                                        f"delete the rows.",
                           column="item_id", **source.at(pos[0]))


def _unknown_labels(labels: pd.Series, classes: list[str]) -> np.ndarray:
    return (~labels.isin(classes) & labels.notna()).to_numpy()


def _check_labels(frame, col: str, classes: list[str] | None, source, problems,
                  early=None) -> None:
    if classes is None or col not in frame.columns:
        return
    s = frame[col]
    bad = early.result() if early is not None else _unknown_labels(s, classes)
    if not bad.any():
        return
    pos = np.flatnonzero(bad)
    values = pd.unique(s.to_numpy()[pos])
    for value in values[:_MAX_LISTED]:
        vpos = np.flatnonzero(bad & (s == value).to_numpy())
        hint = _did_you_mean(value, classes)
        problems.error(source.name, f"label {value!r} is not among the declared classes "
                                    f"{classes} ({source.where(vpos)}).{hint} Correct the "
                                    f"label, or add the class to 'classes' in workbench.toml.",
                       column=col, **source.at(vpos[0]))
    if len(values) > _MAX_LISTED:
        problems.error(source.name, f"{len(values) - _MAX_LISTED} more unknown labels: "
                                    f"{_listed(values[_MAX_LISTED:])}.", column=col)


def _numeric(frame, col, source, problems, *, what: str, allow_missing: bool) -> np.ndarray:
    raw = frame[col]
    values = pd.to_numeric(raw, errors="coerce")
    nonnum = (values.isna() & raw.notna()).to_numpy()
    if nonnum.any():
        pos = np.flatnonzero(nonnum)
        problems.error(source.name, f"{what} must be a number between 0 and 1; found "
                                    f"{_listed(pd.unique(raw.to_numpy()[pos]))} "
                                    f"({source.where(pos)}). Write numbers like 0.93.",
                       column=col, **source.at(pos[0]))
    if not allow_missing:
        missing = raw.isna().to_numpy()
        if missing.any():
            pos = np.flatnonzero(missing)
            problems.error(source.name, f"empty {what} on {source.where(pos)}. Fill it in.",
                           column=col, **source.at(pos[0]))
    arr = values.to_numpy(dtype=float, na_value=np.nan)
    out = (arr < 0) | (arr > 1)
    if out.any():
        pos = np.flatnonzero(out)
        problems.error(source.name, f"{what} must be between 0 and 1; found "
                                    f"{_listed(np.unique(arr[pos]))} ({source.where(pos)}). "
                                    f"Rescale it (percentages: divide by 100).",
                       column=col, **source.at(pos[0]))
    return arr


_ABSOLUTE = r"^[A-Za-z]:[\\/]"
_PARENT = r"(?:^|[\\/])\.\.(?:[\\/]|$)"


def _escaping_paths(fp: pd.Series) -> np.ndarray:
    """Rows whose filepath is absolute or climbs out with '..'."""
    values = arrow_strings(fp)
    if values is not None:  # scan the bytes; the patterns run on the rows that may match
        bad = rows_with(values, b"/", at_start=True) | rows_with(values, b"\\", at_start=True)
        maybe = {":": rows_with(values, b":"), "..": rows_with(values, b"..")}
    else:
        bad = np.array(fp.str.startswith("/").fillna(False)
                       | fp.str.startswith("\\").fillna(False), dtype=bool)
        maybe = {literal: fp.str.contains(literal, regex=False).fillna(False)
                 .to_numpy(dtype=bool) for literal in (":", "..")}
    # the regular expressions can only match rows holding the literal they need
    for literal, pattern, anchored in ((":", _ABSOLUTE, True), ("..", _PARENT, False)):
        if maybe[literal].any():
            sub = fp[maybe[literal]]
            hit = sub.str.match(pattern) if anchored else sub.str.contains(pattern, regex=True)
            bad[np.flatnonzero(maybe[literal])[hit.fillna(False).to_numpy(dtype=bool)]] = True
    return bad


def _validate_items(items, source, classes, problems, first=None,
                    coded=None) -> pd.DataFrame | None:
    """Check items prepared by :func:`_prepared`; ``first`` is :attr:`ItemIds.first`.

    ``coded`` holds the :class:`_Coded` columns read from Parquet (or None).
    """
    if not _check_required(items, "items", source, problems):
        return None
    _check_empty(items, ["item_id"], source, problems, "item")
    if first is None:
        first = ItemIds(items["item_id"]).first
    dup = _duplicated_first(first)
    if dup.any():
        pos = np.flatnonzero(dup)
        ids = pd.unique(items["item_id"].to_numpy()[pos])
        problems.error(source.name, f"duplicate item_id(s) {_listed(ids)} ({source.where(pos)}). "
                                    f"Each item needs a unique item_id: remove or rename the "
                                    f"duplicates.", column="item_id", **source.at(pos[0]))
    reserved = [c for c in RESERVED_ITEM_COLUMNS if c in items.columns]
    if reserved:
        problems.error(source.name, f"column(s) {reserved} are reserved for what the workbench "
                                    f"derives (predictions and errors); rename them, e.g. to "
                                    f"'meta_{reserved[0]}'.", column=reserved[0])
    if "label" in items.columns:
        early = None
        if coded and "label" in coded and classes is not None:
            early = Future()
            early.set_result(_coded_unknown(coded["label"], classes))
        _check_labels(items, "label", classes, source, problems, early)
    if "filepath" in items.columns:
        fp = items["filepath"]
        bad = _escaping_paths(fp)
        if bad.any():
            pos = np.flatnonzero(bad)
            problems.error(source.name, f"filepath escapes the project folder: "
                                        f"{_listed(fp.to_numpy()[pos])} ({source.where(pos)}). "
                                        f"Image paths must be relative to the project folder and "
                                        f"stay inside it (no absolute paths, no '..'); copy or "
                                        f"link the images into the project.",
                           column="filepath", **source.at(pos[0]))
    _validate_text_items(items, source, problems)
    return items


def _validate_text_items(items, source, problems) -> None:
    """Text items (docs/text.md): a non-blank ``text`` column or ``.txt`` filepaths, not mixed."""
    if "text" in items.columns:
        if "filepath" in items.columns:
            problems.error(source.name, "items have both a 'text' column and a 'filepath' "
                                        "column. A text project takes its text from one of "
                                        "them: drop 'filepath' (or rename it, e.g. to "
                                        "'source_path'), or drop 'text' and point filepath at "
                                        ".txt files.", column="text")
        bad = _blank(items["text"])
        if bad.any():
            pos = np.flatnonzero(bad)
            ids = items["item_id"].to_numpy()[pos]
            problems.error(source.name, f"empty text for item(s) {_listed(ids)} "
                                        f"({source.where(pos)}). Every text item needs its "
                                        f"text: fill it in or delete the row.",
                           column="text", **source.at(pos[0]))
    elif "filepath" in items.columns:
        is_txt, has_path = _text_paths(items["filepath"])
        if is_txt.any() and (has_path & ~is_txt).any():
            pos = np.flatnonzero(has_path & ~is_txt)
            problems.error(source.name, f"items mix .txt files and other files: "
                                        f"{_listed(items['filepath'].to_numpy()[pos])} "
                                        f"({source.where(pos)}) are not .txt while "
                                        f"{int(is_txt.sum())} row(s) are. A project holds "
                                        f"either images or texts: split it into two projects.",
                           column="filepath", **source.at(pos[0]))


def _text_paths(fp: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose filepath ends with ``.txt`` (any case), and rows with a filepath at all."""
    has_path = ~_blank(fp)
    is_txt = fp.str.lower().str.endswith(TEXT_SUFFIX).fillna(False).to_numpy(dtype=bool)
    return is_txt & has_path, has_path


def _early_checks(pool, frame, kind: str, classes, located, coded=None) -> dict:
    """Start the row-wise checks of annotations or predictions on the pool.

    Returns the futures by name (a required column: its blank rows; ``codes``: the
    :func:`_codes` of the second key; ``labels``: rows with an undeclared label) and
    ``located`` (:meth:`ItemIds.locate_async` of its ids, or None) as ``positions``. The
    validation reports their problems later, in its usual order. ``coded`` holds the
    :class:`_Coded` columns read from Parquet; their checks run on the distinct values.
    """
    early = {"positions": located}
    if frame is None or not _has_required(frame, kind):
        return early
    coded = coded or {}
    for col in _REQUIRED[kind]:
        early[col] = pool.submit(_coded_blank, coded[col]) if col in coded else \
            pool.submit(_blank, frame[col])
    if located is not None:
        key = _REQUIRED[kind][1]
        early["codes"] = pool.submit(coded[key].pair_codes) if key in coded else \
            pool.submit(_codes, frame[key])
    if classes is not None:
        early["labels"] = pool.submit(_coded_unknown, coded["label"], classes) \
            if "label" in coded else pool.submit(_unknown_labels, frame["label"], classes)
    return early


def _validate_long(frame, kind, source, early, classes, problems):
    """Checks shared by annotations and predictions (prepared by :func:`_prepared`).

    ``early`` holds what :func:`_early_checks` started (or None). Returns the frame, its
    rows' item positions (-1: unknown item; None without items) and the :func:`_codes` of
    its second key (annotator, run) for the pair check.
    """
    early = early or {}
    _check_empty(frame, list(_REQUIRED[kind]), source, problems, kind[:-1], early)
    pending = early.get("positions")
    positions = pending.result() if pending is not None else None
    codes = None
    if positions is not None:
        codes = early["codes"].result() if "codes" in early else \
            _codes(frame[_REQUIRED[kind][1]])
        _check_known_ids(frame, positions, source, problems, kind)
    _check_labels(frame, "label", classes, source, problems, early.get("labels"))
    return frame, positions, codes


def _validate_annotations(ann, source, early, classes, problems) -> pd.DataFrame | None:
    """Check annotations; ``early`` from :func:`_early_checks` (or None)."""
    if not _check_required(ann, "annotations", source, problems):
        return None
    ann, positions, codes = _validate_long(ann, "annotations", source, early, classes,
                                           problems)
    keys = ["item_id", "annotator"]
    if "annotated_at" in ann.columns:
        _parse_annotated_at(ann, source, problems)
        keys = keys + ["annotated_at"]
    if positions is not None and (positions >= 0).all():
        # the same annotator again, at another annotated_at, is fine
        dup = _duplicated_pairs(ann, positions, codes, keys)
    else:
        dup = ann.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        pos = np.flatnonzero(dup)
        pairs = ann.iloc[pos[:_MAX_LISTED]][["item_id", "annotator"]].itertuples(index=False)
        problems.error(source.name, f"the same annotator labelled the same item more than once "
                                    f"({', '.join(f'{a!r} on {i!r}' for i, a in pairs)}; "
                                    f"{source.where(pos)}). Keep one row per (item_id, annotator), "
                                    f"or give each an 'annotated_at' so the latest one counts.",
                       column="annotator", **source.at(pos[0]))
    return ann


def _validate_predictions(pred, source, early, classes, problems):
    """Check predictions; ``early`` from :func:`_early_checks` (or None)."""
    if not _check_required(pred, "predictions", source, problems):
        return None, []
    pred, positions, codes = _validate_long(pred, "predictions", source, early, classes,
                                            problems)
    if positions is not None and (positions >= 0).all():
        dup = _duplicated_pairs(pred, positions, codes, ["item_id", "run"])
    else:
        dup = pred.duplicated(["item_id", "run"], keep=False).to_numpy()
    if dup.any():
        pos = np.flatnonzero(dup)
        problems.error(source.name, f"more than one prediction per (item_id, run) "
                                    f"({source.where(pos)}). Keep one row per item and run.",
                       column="item_id", **source.at(pos[0]))
    prob_classes = _validate_probs(pred, source, classes, problems)
    if "confidence" in pred.columns:
        pred["confidence"] = _numeric(pred, "confidence", source, problems, what="confidence",
                                      allow_missing=True)
    elif prob_classes:
        pred["confidence"] = pred[[PROB_PREFIX + c for c in prob_classes]].to_numpy().max(axis=1)
    else:
        pred["confidence"] = np.nan
    return pred, prob_classes


#: Rows per block when the probability rows are summed.
_SUM_ROWS = 1 << 16


def _validate_probs(pred, source, classes, problems) -> list[str]:
    """Check the ``prob_<class>`` columns (numbers in [0, 1], rows summing to 1), in place.

    Returns the classes of the probability columns, in column order.
    """
    prob_cols = [c for c in pred.columns if str(c).startswith(PROB_PREFIX)]
    prob_classes = [c[len(PROB_PREFIX):] for c in prob_cols]
    if prob_cols:
        if classes is not None:
            unknown = [c for c in prob_classes if c not in classes]
            for c in unknown:
                problems.error(source.name, f"probability column {PROB_PREFIX + c!r} is for a "
                                            f"class that is not declared in {classes}."
                                            f"{_did_you_mean(c, classes)} Rename or drop it, or "
                                            f"add the class.", column=PROB_PREFIX + c)
            missing = [c for c in classes if c not in prob_classes]
            for c in missing:
                problems.error(source.name, f"missing probability column {PROB_PREFIX + c!r} for "
                                            f"class {c!r}. When probabilities are given, every "
                                            f"class needs a '{PROB_PREFIX}<class>' column.",
                               column=PROB_PREFIX + c)
        columns = []
        for c in prob_cols:
            arr = _numeric(pred, c, source, problems, what=f"probability {c}",
                           allow_missing=False)
            if pred[c].dtype != np.float64:  # a float64 column is already these numbers
                pred[c] = arr
            columns.append(arr)
        # the row sums of the stacked columns, a block of rows at a time (no n x k copy)
        sums = np.empty(len(pred))
        for start in range(0, len(pred), _SUM_ROWS):
            rows = slice(start, start + _SUM_ROWS)
            sums[rows] = np.column_stack([arr[rows] for arr in columns]).sum(axis=1)
        bad = np.abs(sums - 1.0) > PROB_TOLERANCE
        bad &= ~np.isnan(sums)
        if bad.any():
            pos = np.flatnonzero(bad)
            problems.error(source.name, f"probabilities do not sum to 1 (within "
                                        f"{PROB_TOLERANCE}) on {source.where(pos)}: sums "
                                        f"{_listed(np.round(sums[pos], 4))}. Normalise each row "
                                        f"(divide by its sum) or export softmax outputs.",
                           column=prob_cols[0], **source.at(pos[0]))
    return prob_classes


# --------------------------------------------------------------------------------------
# the project


class Project:
    """A labelled dataset with its annotations and model predictions.

    Build it with :func:`open_project` (from a folder) or :meth:`Project.from_frames`.

    Attributes
    ----------
    root : Path or None
        The project folder (None for in-memory projects).
    name : str
    classes : list of str
        Ordered class names.
    runs : list of str
        Model runs in order of first appearance in the predictions.
    default_run : str or None
    items, annotations, predictions : DataFrame
        The long frames of the project format (see the module docstring).
    info : dict
        Free-form extras (unknown keys of ``workbench.toml``, generator truth, ...).
    problems : list of Problem
        Warnings found while loading (errors raise instead).
    task : {'classification', 'detection'}
        ``'classification'`` here; a detection project is a
        :class:`workbench.detection.io.DetectionProject`.
    """

    task = "classification"

    def __init__(self, *, items, annotations, predictions, classes, name, default_run, root,
                 image_root, info, problems, index=None):
        self.items: pd.DataFrame = items
        self.annotations: pd.DataFrame = annotations
        self.predictions: pd.DataFrame = predictions
        self.classes: list[str] = list(classes)
        self.name: str = name
        self.root: Path | None = root
        self.image_root: str | None = image_root
        self.info: dict = info
        self.problems: list[Problem] = problems
        self.runs: list[str] = (
            list(pd.unique(predictions["run"])) if len(predictions) else []
        )
        self.default_run = default_run if default_run is not None else (
            self.runs[0] if self.runs else None)
        self._index = index if index is not None else pd.Index(items["item_id"])
        self._reference: pd.Series | None = None
        self._media: pd.DataFrame | None = None
        #: The label release the project was opened at (``open_project(path, release=n)``).
        self.release: int | None = None
        #: :func:`workbench._fingerprint.input_fingerprint` of the folder, taken by
        #: :func:`open_project` before it read the files (None for in-memory projects).
        self.input_fingerprint: dict | None = None
        self._embeddings: tuple[np.ndarray, np.ndarray] | None = None
        self._knn_graphs: dict = {}  # (k, metric) -> csr_matrix, see embeddings.knn_graph

    # ---- construction -----------------------------------------------------------------

    @classmethod
    def from_frames(cls, items=None, annotations=None, predictions=None, classes=None, *,
                    boxes=None, task=None, name="project", default_run=None, root=None,
                    image_root=None, info=None, embeddings=None) -> Project:
        """Build a project from in-memory DataFrames, with the same checks as the files.

        Parameters
        ----------
        items : DataFrame, optional
            One row per item (``item_id`` [, ``filepath``] [, ``label``], metadata). When
            omitted, items are the union of ids in annotations and predictions (and boxes).
        annotations, predictions : DataFrame, optional
            Long frames of the project format.
        classes : list of str, optional
            Ordered class names; default: the sorted union of labels seen.
        boxes : DataFrame, optional
            The dataset's boxes (detection projects only).
        task : {'classification', 'detection'}, optional
            Default: ``'detection'`` when ``boxes`` is given (or called on a detection
            project class), else ``'classification'``. A detection project is built by
            :func:`workbench.detection.io.detection_from_frames`.
        name : str, default='project'
        default_run : str, optional
        root : path-like, optional
            Folder that image paths are relative to (and where the tag store lives).
        image_root : str, optional
        info : dict, optional
        embeddings : DataFrame, optional
            ``item_id`` + one numeric column per dimension (see :mod:`workbench.embeddings`).

        Returns
        -------
        Project

        Raises
        ------
        SchemaError
            Listing every problem found (file = the frame's name, row = 0-based position).
        """
        if task is None:
            task = "detection" if boxes is not None else cls.task
        if task not in TASKS:
            raise ValueError(f"The 'task' parameter of Project.from_frames must be a str among "
                             f"{{{', '.join(repr(t) for t in TASKS)}}} or None. Got {task!r} "
                             f"instead.")
        if task == "detection":
            from .detection.io import detection_from_frames

            project = detection_from_frames(
                items, boxes=boxes, annotations=annotations, predictions=predictions,
                classes=classes, name=name, default_run=default_run, root=root,
                image_root=image_root, info=info)
            return project._with_frame_embeddings(embeddings)
        if boxes is not None:
            raise ValueError("Project.from_frames: 'boxes' belong to a detection project; pass "
                             "task='detection' (or leave task unset), or drop boxes.")
        if items is None:
            ids = []
            for f in (annotations, predictions):
                if f is not None and "item_id" in f.columns:
                    ids.extend(pd.unique(f["item_id"].astype(str)))
            items = pd.DataFrame({"item_id": pd.unique(np.asarray(ids, dtype=object))})
        frames = {"items": items, "annotations": annotations, "predictions": predictions}
        for key, frame in frames.items():
            if frame is not None and not isinstance(frame, pd.DataFrame):
                raise TypeError(f"The {key!r} parameter of Project.from_frames must be a pandas "
                                f"DataFrame or None. Got {type(frame).__name__} instead.")
        for key in ("annotations", "predictions"):  # an empty frame means none yet
            if frames[key] is not None and frames[key].empty:
                frames[key] = None
        sources = {k: _Source(k) for k in frames}
        config = {"name": name, "default_run": default_run, "image_root": image_root}
        if classes is not None:
            config["classes"] = [str(c) for c in classes]
        problems = _Problems()
        project = _build(frames, sources, config, root=Path(root) if root is not None else None,
                         problems=problems, info=dict(info or {}))
        return project._with_frame_embeddings(embeddings)

    def _with_frame_embeddings(self, embeddings) -> Project:
        """Validate and hold an in-memory embeddings frame (``from_frames``); returns self."""
        if embeddings is not None:
            from .embeddings import validate_embeddings

            self._set_embeddings(validate_embeddings(
                embeddings, self.items["item_id"].to_numpy(), problems=self.problems))
            if any(p.severity == "error" for p in self.problems):
                errors = _Problems(self.problems)
                raise SchemaError(_summary(errors), problems=list(errors))
        return self

    # ---- derived views ----------------------------------------------------------------

    @property
    def metadata_columns(self) -> list[str]:
        """Item columns other than ``item_id``, ``filepath``, ``label`` and ``text``."""
        return [c for c in self.items.columns
                if c not in ("item_id", "filepath", "label", "text")]

    @property
    def media_kind(self) -> str | None:
        """``'text'`` (a ``text`` column or ``.txt`` filepaths), ``'image'`` or None (no media)."""
        if "text" in self.items.columns:
            return "text"
        if "filepath" not in self.items.columns:
            return None
        is_txt, _ = _text_paths(self.items["filepath"])
        return "text" if is_txt.any() else "image"

    @property
    def is_text(self) -> bool:
        """True when the items are texts (see :attr:`media_kind` and docs/text.md)."""
        return self.media_kind == "text"

    @property
    def prob_columns(self) -> list[str]:
        """``prob_<class>`` columns of the predictions, in class order (empty if none)."""
        cols = [PROB_PREFIX + c for c in self.classes]
        return cols if all(c in self.predictions.columns for c in cols) else []

    @property
    def annotators(self) -> list[str]:
        """Annotators in sorted order."""
        return sorted(pd.unique(self.annotations["annotator"])) if len(self.annotations) else []

    # ---- embeddings (workbench/embeddings.py) ------------------------------------------

    @property
    def has_embeddings(self) -> bool:
        """Whether the project holds embeddings (``embeddings.parquet`` / ``.npy``)."""
        return getattr(self, "_embeddings", None) is not None

    def embedding_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """The embeddings as ``(item_ids, X)``, rows in items order.

        Returns
        -------
        item_ids : ndarray of str, shape (n,)
            Items without a vector are left out.
        X : ndarray of float32, shape (n, d)
            Read-only (shared with :func:`workbench.embeddings.knn_graph`); copy to change.

        Raises
        ------
        WorkbenchError
            When the project has no embeddings (the message says how to add them).
        """
        if not self.has_embeddings:
            from .errors import WorkbenchError

            where = f" {self.root}" if self.root is not None else " PROJECT"
            raise WorkbenchError(
                f"project {self.name!r} has no embeddings. Compute the offline baseline with "
                f"`workbench embed{where}`, or write your model's vectors to "
                f"embeddings.parquet (item_id + one column per dimension; see "
                f"docs/embeddings.md).")
        return self._embeddings

    def _set_embeddings(self, value: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Hold ``(item_ids, X)`` (or None); forgets the neighbour graphs built before."""
        if value is not None:
            ids, X = value
            ids, X = np.asarray(ids, dtype=str), np.asarray(X, dtype=np.float32)
            ids.flags.writeable = False
            X.flags.writeable = False
            value = (ids, X)
        self._embeddings = value
        self._knn_graphs = {}

    def reference_labels(self) -> pd.Series:
        """The reference label of every item: its ``label``, else the annotators' consensus.

        The consensus is the majority vote of :func:`workbench.consensus` (its tie policy
        applies). Items with neither are NA.

        Returns
        -------
        Series
            Indexed by ``item_id`` (all items, in items order), named ``label``.
        """
        if self._reference is None:
            if "label" in self.items.columns:
                ref = pd.Series(self.items["label"].to_numpy(), index=self._index, name="label",
                                dtype="str")
            else:
                ref = pd.Series(pd.NA, index=self._index, name="label", dtype="str")
            missing = ref.isna()
            if missing.any() and len(self.annotations):
                from .agreement import consensus

                need = self.annotations[self.annotations["item_id"].isin(ref.index[missing])]
                if len(need):
                    cons = consensus(need, method="majority", classes=self.classes)
                    ref.loc[cons["item_id"].to_numpy()] = cons["label"].to_numpy()
            self._reference = ref
        return self._reference.copy()

    def pred_probs(self, run: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted probabilities of one run, in class order.

        Parameters
        ----------
        run : str, optional
            Default: the project's default run.

        Returns
        -------
        item_ids : ndarray of str, shape (n,)
        probs : ndarray of float, shape (n, n_classes)

        Raises
        ------
        SchemaError
            If the run has no ``prob_<class>`` columns.
        """
        run = self._check_run(run, "Project.pred_probs")
        if not self.prob_columns:
            raise SchemaError(
                f"predictions of run {run!r} have no probability columns; add "
                f"{[PROB_PREFIX + c for c in self.classes[:3]]}... (one per class) to "
                f"predictions to use probability-based features such as label issues.")
        rows = self.predictions
        if len(self.runs) > 1:  # else every row is of this run: no filtered copy
            rows = rows[rows["run"] == run]
        return rows["item_id"].to_numpy(dtype=str), rows[self.prob_columns].to_numpy(float)

    def _check_run(self, run, func):
        if run is None:
            run = self.default_run
            if run is None:
                raise SchemaError(f"{func}: the project has no predictions. Add a "
                                  f"predictions.csv with item_id, run, label.")
        if run not in self.runs:
            raise ValueError(f"The 'run' parameter of {func} must be a str among "
                             f"{{{', '.join(repr(r) for r in self.runs)}}} or None. Got "
                             f"{run!r} instead.")
        return run

    def errors(self, run: str | None = None) -> pd.DataFrame:
        """One row per item: reference ``label``, ``predicted``, ``confidence``, ``correct``.

        See :func:`workbench.slicing.project_errors`.
        """
        from .slicing import project_errors

        return project_errors(self, run)

    def to_fiftyone(self, name: str | None = None, overwrite: bool = False):
        """Sync the project into a persistent FiftyOne dataset (see ``fiftyone_bridge``)."""
        from .fiftyone_bridge import to_fiftyone

        return to_fiftyone(self, name=name, overwrite=overwrite)

    def reload(self) -> Project:
        """Read the project again from its folder (after an import changed the files)."""
        if self.root is None:
            raise ValueError("Project.reload needs a project opened from a folder.")
        return open_project(self.root, release=getattr(self, "release", None) or None)

    # ---- label releases (workbench/releases.py) ---------------------------------------

    def decide(self, item_id: str, label: str, *, author: str, reason: str | None = None):
        """Record a curator's label decision; see :func:`workbench.releases.decide`."""
        from .releases import decide

        return decide(self, item_id, label, author=author, reason=reason)

    def release_labels(self, message: str, *, author: str, accept: str = "verified",
                       tag: str = "relabel"):
        """Write a label release; see :func:`workbench.releases.release_labels`."""
        from .releases import release_labels

        return release_labels(self, message, author=author, accept=accept, tag=tag)

    # ---- media ------------------------------------------------------------------------

    def _media_base(self) -> Path | None:
        if self.root is None:
            return None
        return (self.root / self.image_root) if self.image_root else self.root

    def media_path(self, item_id: str) -> Path | None:
        """The image file of an item, or None when absent or outside the project folder.

        The path is resolved (symbolic links followed) and must stay inside the project
        folder; anything else is refused, so a crafted ``filepath`` cannot read other files.
        """
        base = self._media_base()
        if base is None or "filepath" not in self.items.columns:
            return None
        pos = self._index.get_indexer([str(item_id)])[0]
        if pos < 0:
            return None
        rel = self.items["filepath"].iloc[pos]
        return _confined(self.root, base, rel)

    def item_text(self, item_id: str) -> str | None:
        """The text of a text item, or None (no text, not a text project, unreadable file).

        From the ``text`` column, else the item's ``.txt`` file read as UTF-8 through
        :meth:`media_path` (confined to the project folder, at most 8 MiB). Never raises for a
        bad file: :meth:`media_status` and ``workbench validate`` say what is wrong with it.
        """
        pos = self._index.get_indexer([str(item_id)])[0]
        if pos < 0:
            return None
        if "text" in self.items.columns:
            value = self.items["text"].iloc[pos]
            return None if value is None or pd.isna(value) else str(value)
        if not self.is_text:
            return None
        return _read_text(self.media_path(item_id))

    def media_status(self) -> pd.DataFrame:
        """Per-item image (or ``.txt`` file) status.

        One of ``ok``, ``missing``, ``unreadable`` (not an image, or no permission),
        ``outside_project`` (resolves outside the project folder) and ``no_path``.

        Returns
        -------
        DataFrame
            ``item_id``, ``status``; ``frame.attrs['counts']`` holds the count per status.
        """
        if self._media is None:
            ids = self.items["item_id"].to_numpy()
            if "filepath" not in self.items.columns or self.root is None:
                status = np.full(len(ids), "no_path", dtype=object)
            else:
                base = self._media_base()
                status = np.array([_status(self.root, base, p)
                                   for p in self.items["filepath"].to_numpy()], dtype=object)
            frame = pd.DataFrame({"item_id": ids, "status": status})
            frame.attrs["counts"] = frame["status"].value_counts().to_dict()
            self._media = frame
        return self._media.copy()

    def __repr__(self) -> str:
        where = f" at {self.root}" if self.root else ""
        return (f"<Project {self.name!r}{where}: {len(self.items):,} items, "
                f"{len(self.classes)} classes, {len(self.annotations):,} annotations by "
                f"{len(self.annotators)} annotators, runs {self.runs}>")


def _confined(root: Path, base: Path, rel: Any) -> Path | None:
    if rel is None or (isinstance(rel, float) and np.isnan(rel)) or pd.isna(rel) or not str(rel):
        return None
    rel = str(rel)
    if ("\0" in rel or os.path.isabs(rel) or rel.startswith("\\")
            or ".." in Path(rel.replace("\\", "/")).parts):
        return None
    try:
        real_root = root.resolve()
        path = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(real_root):
        return None
    return path


def _status(root: Path, base: Path, rel: Any) -> str:
    if rel is None or pd.isna(rel) or not str(rel):
        return "no_path"
    path = _confined(root, base, rel)
    if path is None:
        return "outside_project"
    if not path.is_file():  # a folder, a FIFO or a device is never opened (a FIFO blocks)
        return "unreadable" if path.exists() else "missing"
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return "missing"
    except (IsADirectoryError, PermissionError, OSError):
        return "unreadable"
    if path.suffix.lower() == TEXT_SUFFIX:  # a text item: UTF-8, not empty
        text = _read_text(path)
        return "unreadable" if text is None else ("ok" if text.strip() else "empty")
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "ok"
    return "unreadable"


def _read_text(path: Path | None) -> str | None:
    """A ``.txt`` file as UTF-8 (a BOM dropped), or None: absent, too large, not UTF-8."""
    if path is None or not os.path.isfile(path):  # a FIFO would block the kernel
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_TEXT_BYTES + 1)
    except OSError:
        return None
    if len(data) > _MAX_TEXT_BYTES:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _build(frames, sources, config, *, root, problems: _Problems, info,
           own=False, coded=None) -> Project:
    """Validate the frames into a Project; ``coded``: the :class:`_Coded` columns by kind."""
    classes = config.get("classes")
    coded = coded or {}
    items, ann, pred = (_prepared(frames.get(kind), kind, own) for kind in _KINDS)
    prob_classes: list[str] = []
    with ThreadPoolExecutor(worker_count()) as pool:
        # one hash of the item ids answers every id check: duplicates in items, unknown ids
        # in annotations and predictions (looked up on the pool meanwhile), and the item
        # positions the pair checks use
        ids, located = None, {}
        if _has_required(items, "items"):
            ids = ItemIds(items["item_id"], pool)
            located = {kind: ids.locate_async(frame["item_id"])
                       for kind, frame in (("annotations", ann), ("predictions", pred))
                       if _has_required(frame, kind)}
        # the row-wise checks of annotations and predictions run on the pool too, while
        # items are checked; every problem is still reported in the same order
        early = {kind: _early_checks(pool, frame, kind, classes, located.get(kind),
                                     coded.get(kind))
                 for kind, frame in (("annotations", ann), ("predictions", pred))}
        if items is not None:
            items = _validate_items(items, sources["items"], classes, problems,
                                    ids.first if ids is not None else None,
                                    coded.get("items"))
        if ann is not None:
            ann = _validate_annotations(ann, sources["annotations"], early["annotations"],
                                        classes, problems)
        if pred is not None:
            pred, prob_classes = _validate_predictions(pred, sources["predictions"],
                                                       early["predictions"], classes,
                                                       problems)
    if problems.errors:
        raise SchemaError(_summary(problems), problems=list(problems))

    if ann is None:
        ann = pd.DataFrame({c: pd.Series(dtype="str") for c in _REQUIRED["annotations"]})
    if pred is None:
        pred = pd.DataFrame({c: pd.Series(dtype="str") for c in _REQUIRED["predictions"]})
        pred["confidence"] = pd.Series(dtype=float)
    if classes is None:
        seen: set[str] = set(prob_classes)
        for frame in (items, ann, pred):
            if "label" in frame.columns:
                seen.update(pd.unique(frame["label"].dropna()))
        classes = sorted(seen)
    # keep columns in a stable order: required first, then probabilities in class order
    prob_cols = [PROB_PREFIX + c for c in classes if PROB_PREFIX + c in pred.columns]
    base_cols = ["item_id", "run", "label", "confidence"]
    pred = pred[base_cols + prob_cols + [c for c in pred.columns
                                         if c not in base_cols and c not in prob_cols]]
    pred = pred.reset_index(drop=True)
    ann = ann.reset_index(drop=True)
    items = items.reset_index(drop=True)

    runs = list(pd.unique(pred["run"])) if len(pred) else []
    default_run, image_root, name, info = _settings(config, root, runs, info)
    return Project(items=items, annotations=ann, predictions=pred, classes=classes, name=name,
                   default_run=default_run, root=root, image_root=image_root, info=info,
                   problems=list(problems))


def _settings(config: dict, root: Path | None, runs: list, info: dict):
    """Check ``default_run`` and ``image_root``; return them with the name and the info."""
    default_run = config.get("default_run")
    if default_run is not None and default_run not in runs:
        raise SchemaError(
            f"workbench.toml: default_run {default_run!r} is not a run in the predictions "
            f"{runs}.{_did_you_mean(default_run, runs)} Fix default_run or add the run.",
            problems=[Problem("workbench.toml", "unknown default_run", column="default_run")])
    image_root = config.get("image_root")
    if image_root is not None and root is not None:
        if _confined(root, root, image_root) is None:
            raise SchemaError(
                f"workbench.toml: image_root {image_root!r} is outside the project folder "
                f"{root}. It must be a folder inside the project.",
                problems=[Problem("workbench.toml", "image_root outside project",
                                  column="image_root")])
    name = config.get("name") or (root.name if root is not None else "project")
    info = {**{k: v for k, v in config.items() if k not in _TOML_KEYS}, **info}
    return default_run, image_root, name, info


def _summary(problems: _Problems, limit: int = 25) -> str:
    errors = problems.errors
    lines = [f"{len(errors)} problem(s) found:"]
    lines += [f"  - {p}" for p in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"  ... and {len(errors) - limit} more (run `workbench validate` to see all)")
    return "\n".join(lines)


def _default_path() -> Path:
    env = os.environ.get("WORKBENCH_PROJECT")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "data" / "sample"


def _load(path, problems: _Problems, *, embeddings: bool = True,
          cache: bool = False) -> Project | None:
    """Read and validate a project folder; None when ``problems`` holds errors.

    ``embeddings=False`` leaves its embedding files unread (``workbench embed --force``).
    ``cache=True`` reuses (or stores) the validated frames of a classification project in
    its state folder (:func:`_cached_tables`).
    """
    root = Path(path)
    if not root.exists():
        problems.error(str(root), "the project folder does not exist. Check the path.")
        return None
    if not root.is_dir():
        problems.error(str(root), "is not a folder. Pass the project folder that holds "
                                  "items.csv or items.parquet.")
        return None
    root = root.resolve()
    from ._fingerprint import input_fingerprint

    fingerprint = input_fingerprint(root)  # before reading: what the project was read from
    config = _read_toml(root, problems)
    if any(p.file == "workbench.toml" and p.column == "task" for p in problems):
        return None  # an unknown task: reading the tables as either task would mislead
    if config.get("task") == "detection":
        from .detection.io import load_detection

        project = load_detection(root, config, problems)
        if project is not None:
            project.input_fingerprint = fingerprint
        return _with_embeddings(project, root, problems) if embeddings else project
    cache = cache and not problems.errors
    # stages: [cache lookup,] read, validate, [cache store,] embeddings
    with progress(total=5 if cache else 3, desc=f"open {root.name}", unit="stage") as bar:
        if cache:
            project = _cached_tables(root, config, problems, bar, fingerprint)
        else:
            project = _read_and_build(root, config, problems, bar)
        if project is None:
            return None
        project.input_fingerprint = fingerprint
        _stage(bar, "embeddings")
        project = _with_embeddings(project, root, problems) if embeddings else project
        _stage(bar, "done")
        return project


def _stage(bar, name: str) -> None:
    """Mark the stage before as done on the bar of :func:`open_project`; show ``name``."""
    if bar is None:
        return
    if getattr(bar, "_workbench_stage", None) is not None and (bar.total is None
                                                               or bar.n < bar.total):
        bar.update()
    bar._workbench_stage = name
    bar.set_postfix_str(name)


def _read_and_build(root: Path, config: dict, problems: _Problems, bar=None
                    ) -> Project | None:
    """Read the tables of a classification project folder and validate them."""
    _stage(bar, "read")
    frames, sources, coded = {}, {}, {}
    for kind in _KINDS:
        path_ = _find_table(root, kind, problems, required=kind == "items")
        if path_ is None:
            frames[kind], sources[kind] = None, _Source(f"{kind}.csv")
            continue
        coded[kind] = {}
        frames[kind], sources[kind] = _read_table(path_, kind, problems, coded[kind],
                                                  config=config)
    if frames["items"] is None:
        return None
    _stage(bar, "validate")
    try:
        # read errors are already in `problems`, so _build raises after adding its own
        return _build(frames, sources, config, root=root, problems=problems, info={},
                      own=True, coded=coded)
    except SchemaError as exc:
        if not problems.errors:
            problem = exc.problems[0] if exc.problems else None
            problems.error(problem.file if problem else str(root), str(exc),
                           column=problem.column if problem else None)
        return None


#: Version of the layout of the validated frames kept by :func:`_cached_tables`; entries
#: written under another version (or another workbench, pandas or pyarrow) are not read.
FRAME_CACHE_FORMAT = 1


class _NotValid(Exception):
    """The project has errors: nothing to cache (they are in ``problems``)."""


def _frame_cache_key(root: Path, inputs: dict) -> dict:
    """What the validated frames of the project at ``root`` depend on (JSON values).

    ``inputs`` is its :func:`workbench._fingerprint.input_fingerprint`.
    """
    import pyarrow as pa

    from . import __version__

    # also each file's inode: a file replaced (renamed over) within the file system's time
    # granularity, at the same size, still gives another key (not the change time: a hard
    # link made elsewhere changes it)
    inodes = []
    for name, *_ in inputs["files"]:
        with contextlib.suppress(OSError):
            inodes.append([name, int(os.stat(root / name).st_ino)])
    return {"inputs": inputs, "inodes": inodes, "format": FRAME_CACHE_FORMAT,
            "workbench": __version__, "pandas": pd.__version__, "pyarrow": pa.__version__,
            "release": None}


def _writable(root: Path) -> bool:
    """Whether the project's state folder can be written (else the cache is skipped)."""
    state = root / ".workbench"
    for folder in (state / "cache", state, root):
        if folder.exists():
            return os.access(folder, os.W_OK | os.X_OK)
    return False


def _cached_tables(root: Path, config: dict, problems: _Problems, bar, fingerprint: dict
                   ) -> Project | None:
    """:func:`_read_and_build`, its validated frames cached in ``<root>/.workbench/cache``.

    The entry (``project-frames-<digest>``: items, annotations and predictions as Arrow
    files, with the classes and the warnings found; :mod:`workbench._table_cache`) is keyed
    by :func:`_frame_cache_key`: the name, size and mtime of every input file, and the
    library versions. A later open with the same inputs reads the frames back without
    validating them again; a changed input file gives another key; an entry that cannot be
    read is recomputed. A project folder that cannot be written is opened without the cache.
    """
    if not _writable(root):
        return _read_and_build(root, config, problems, bar)
    from ._table_cache import cached_tables

    built: list[Project] = []

    def compute() -> tuple[dict, dict]:
        project = _read_and_build(root, config, problems, bar)
        if project is None:
            raise _NotValid
        built.append(project)
        _stage(bar, "store")
        frames = {"items": project.items, "annotations": project.annotations,
                  "predictions": project.predictions}
        meta = {"classes": list(project.classes),
                "problems": [[p.file, p.message, p.line, p.row, p.column, p.severity]
                             for p in project.problems]}
        return frames, meta

    _stage(bar, "cache")
    try:
        frames, meta = cached_tables(root, "project-frames", _frame_cache_key(root, fingerprint),
                                     ["items", "annotations", "predictions"], compute)
    except _NotValid:
        return None
    if built:
        return built[0]
    if bar is not None:  # read back: no read, validate and store stages
        bar.total = bar.n + 2
    # read back: the frames as validated, the settings from workbench.toml (in the key)
    pred = frames["predictions"]
    runs = list(pd.unique(pred["run"])) if len(pred) else []
    default_run, image_root, name, info = _settings(config, root, runs, {})
    found = [Problem(*p) for p in meta["problems"]]
    problems.extend(p for p in found if p not in problems)
    return Project(items=frames["items"], annotations=frames["annotations"], predictions=pred,
                   classes=[str(c) for c in meta["classes"]], name=name,
                   default_run=default_run, root=root, image_root=image_root, info=info,
                   problems=found)


def _with_embeddings(project: Project | None, root: Path, problems: _Problems
                     ) -> Project | None:
    """Read the folder's embedding files into ``project`` (their problems into ``problems``)."""
    if project is None:
        return None
    from .embeddings import EMBEDDING_FILES, read_embeddings

    if any((root / name).exists() for name in EMBEDDING_FILES):  # else no pass over the ids
        project._set_embeddings(read_embeddings(root, project.items["item_id"].to_numpy(),
                                                problems))
    project.problems = list(problems)
    return None if problems.errors else project


def open_project(path: str | os.PathLike | None = None, release: int | None = None
                 ) -> Project:
    """Open a project folder.

    Parameters
    ----------
    path : path-like, optional
        The project folder. Default: the ``WORKBENCH_PROJECT`` environment variable, else
        the bundled sample project (``data/sample``).
    release : int, optional
        Open with the item labels of this label release (its hash checked first; see
        :mod:`workbench.releases`); 0 or None: the items file's labels.

    Returns
    -------
    Project

    Raises
    ------
    SchemaError
        Listing every problem found, each with its file, line or row, column and fix.
    ValueError
        An unknown ``release`` (the message lists the releases that exist).
    ReleaseError
        The release's label table does not match its recorded hash (it refuses to open).

    Examples
    --------
    >>> project = open_project()        # the sample project
    >>> project.classes[:3]
    ['0', '1', '2']
    """
    path = _default_path() if path is None else Path(path)
    problems = _Problems()
    before = _inputs(path)
    project = _load(path, problems, cache=True)
    if project is None:
        raise SchemaError(_summary(problems), problems=list(problems))
    # the files read, for the result cache (workbench.results); None if they changed meanwhile
    project.input_fingerprint = before if before is not None and before == _inputs(path) else None
    if release is not None:
        from .releases import apply_release

        return apply_release(project, release)
    return project


def _inputs(path: Path) -> dict | None:
    """:func:`workbench._fingerprint.input_fingerprint` of ``path``, None if unreadable."""
    from ._fingerprint import input_fingerprint

    try:
        return input_fingerprint(path)
    except OSError:
        return None


def validate_project(path: str | os.PathLike, *, check_media: bool = True) -> list[Problem]:
    """Every problem of a project folder, errors and warnings, without raising.

    Parameters
    ----------
    path : path-like
        The project folder.
    check_media : bool, default=True
        Also check every image file (missing, unreadable, outside the project folder).

    Returns
    -------
    list of Problem
        Empty when the project is valid.
    """
    problems = _Problems()
    project = _load(path, problems)
    if project is not None and check_media:
        media = project.media_status()
        if "filepath" in project.items.columns:
            text = project.is_text
            for status, severity in (("outside_project", "error"), ("missing", "warning"),
                                     ("unreadable", "warning"), ("empty", "warning")):
                bad = np.flatnonzero(media["status"].to_numpy() == status)
                if not len(bad):
                    continue
                src = _Source(next((p.name for p in (project.root / "items.csv",
                                                     project.root / "items.parquet")
                                    if p.exists()), "items"),
                              csv=(project.root / "items.csv").exists())
                kind = "text file" if text else "image"
                fix = {"outside_project": "the path is absolute, climbs out with '..', holds a "
                                          "NUL character or resolves (through a symbolic link) "
                                          f"outside the project folder; copy the {kind} into "
                                          "the project and give its path inside it",
                       "missing": f"the file does not exist; fix the path or add the {kind}",
                       "unreadable": "the file cannot be read as an image (permissions, not a "
                                     "regular file, or not PNG/JPEG/GIF/BMP/TIFF/WebP)",
                       "empty": "the text file holds no text; fill it in or drop the item"
                       }[status]
                if text and status == "unreadable":
                    fix = ("the text file cannot be read as UTF-8 (permissions, not a regular "
                           "file, larger than 8 MiB, or another encoding); save it as UTF-8")
                files = _listed(project.items["filepath"].to_numpy()[bad])
                ids = media["item_id"].to_numpy()[bad]
                msg = (f"{len(bad)} {'text file' if text else 'image'}(s) "
                       f"{status.replace('_', ' ')}: {_listed(ids)} ({src.where(bad)}; "
                       f"file(s) {files}); {fix}.")
                (problems.error if severity == "error" else problems.warn)(
                    src.name, msg, column="filepath", **src.at(bad[0]))
    return list(problems)


def write_project(project: Project, directory: str | os.PathLike, *,
                  format: Literal["csv", "parquet"] = "parquet") -> Path:
    """Write a project in the on-disk format (tables and ``workbench.toml``).

    Parameters
    ----------
    project : Project
    directory : path-like
        Created if missing. Existing tables of the other format are removed so the folder
        holds one copy of each table.
    format : {'csv', 'parquet'}, default='parquet'

    Returns
    -------
    Path
        The project folder.

    Notes
    -----
    Each file is replaced atomically (:func:`workbench._io.atomic_write`: temporary file,
    fsync, rename), so a crash leaves every table either old or new, never half written.
    """
    from ._io import atomic_write

    if format not in ("csv", "parquet"):
        raise ValueError(f"The 'format' parameter of write_project must be a str among "
                         f"{{'csv', 'parquet'}}. Got {format!r} instead.")
    if project.task == "detection":
        from .detection.io import write_detection_project

        return write_detection_project(project, directory, format=format)
    root = Path(directory)
    text = _write_tables(root, {"items": project.items, "annotations": project.annotations,
                                "predictions": project.predictions}, format)
    lines = _toml_lines(project) + csv_text_lines(text)
    atomic_write(root / "workbench.toml", lambda fh: fh.write("\n".join(lines) + "\n"))
    return root


def _write_tables(root: Path, tables: dict[str, pd.DataFrame], format: str
                  ) -> dict[str, list[str]]:
    """Write a project's tables into ``root`` atomically, one format, as ``<kind>.<format>``.

    The other format's copy of each table is removed, so the folder holds one copy; an
    empty table other than ``items`` is not written (an existing file of it is removed).
    Returns, in CSV format, each written table's text columns (:func:`_csv_text_columns`).
    """
    from ._io import atomic_write, csv_line_end

    root.mkdir(parents=True, exist_ok=True)
    other = "parquet" if format == "csv" else "csv"
    text: dict[str, list[str]] = {}
    for kind, frame in tables.items():
        stale = root / f"{kind}.{other}"
        if stale.exists():
            stale.unlink()
        target = root / f"{kind}.{format}"
        if kind != "items" and frame.empty:
            if target.exists():
                target.unlink()
            continue
        if format == "csv":
            atomic_write(target, lambda fh, frame=frame: frame.to_csv(
                fh, index=False, lineterminator=csv_line_end(frame),
                date_format="%Y-%m-%dT%H:%M:%S.%fZ"))
            text[kind] = _csv_text_columns(frame)
        else:
            atomic_write(target, lambda fh, frame=frame: frame.to_parquet(fh, index=False),
                         binary=True)
    return {kind: cols for kind, cols in text.items() if cols}


def _csv_text_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` holding text only (missing cells aside), in order."""
    out = []
    for col in frame.columns:
        values = frame[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            present = values.dropna()
            if len(present) and all(isinstance(v, str) for v in present.to_numpy()):
                out.append(str(col))
    return out


def csv_text_lines(text: dict[str, list[str]]) -> list[str]:
    """The ``[csv_text_columns]`` table of ``workbench.toml`` (no lines when empty)."""
    if not text:
        return []
    return ["", f"[{CSV_TEXT_KEY}]"] + [
        f"{_toml_str(kind)} = [" + ", ".join(_toml_str(c) for c in cols) + "]"
        for kind, cols in text.items()]


def _toml_lines(project) -> list[str]:
    """The ``workbench.toml`` lines of a project's settings (name, task, classes, ...)."""
    lines = [f"name = {_toml_str(project.name)}"]
    if project.task != "classification":
        lines.append(f"task = {_toml_str(project.task)}")
    lines.append("classes = [" + ", ".join(_toml_str(c) for c in project.classes) + "]")
    if project.default_run is not None:
        lines.append(f"default_run = {_toml_str(project.default_run)}")
    if project.image_root:
        lines.append(f"image_root = {_toml_str(project.image_root)}")
    return lines


def _parse_annotated_at(ann: pd.DataFrame, source, problems) -> None:
    """Parse ``ann["annotated_at"]`` in place as UTC; unparseable cells are reported."""
    raw = ann["annotated_at"]
    if isinstance(raw.dtype, pd.DatetimeTZDtype) and str(raw.dtype.tz) == "UTC":
        parsed = raw  # what to_datetime(utc=True) returns for it, without the copy
    else:
        parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
    bad = (parsed.isna() & raw.notna()).to_numpy()
    if bad.any():
        pos = np.flatnonzero(bad)
        problems.error(source.name, f"annotated_at is not a date/time: "
                                    f"{_listed(pd.unique(raw.to_numpy()[pos]))} "
                                    f"({source.where(pos)}). Use ISO 8601, like "
                                    f"2026-01-31T14:05:00Z.", column="annotated_at",
                       **source.at(pos[0]))
    ann["annotated_at"] = parsed


def _toml_str(value: str) -> str:
    """A TOML basic string: JSON's escapes, plus DEL (TOML forbids it raw; JSON keeps it)."""
    import json

    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007F")

