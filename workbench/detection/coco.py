"""COCO in and out: :func:`import_coco` writes a detection project, :func:`export_coco` the JSON.

The mapping (what the round trip relies on):

============================  =============================================================
COCO                          project
============================  =============================================================
``images[].id``               ``items.item_id`` = ``str(id)`` (``wb_item_id`` when every
                              image has a distinct one: the id a workbench export kept)
``images[].file_name``        ``items.filepath``, unchanged; ``images_root`` becomes the
                              project's ``image_root`` (relative to the project folder)
``images[].width/height``     ``items.width/height``
other image keys              image metadata columns (``license``, ``coco_url``, ...)
``categories``                ``classes``, in category id order; ``[coco] category_ids``
                              in ``workbench.toml`` maps each class to its id
``annotations[].id``          ``boxes.box_id`` = ``str(id)`` (or ``wb_box_id``, likewise)
``image_id`` / ``category_id`` ``boxes.item_id`` / ``boxes.label`` (the category's name)
``bbox``                      ``boxes.x, y, w, h``
``iscrowd``                   ``boxes.iscrowd`` (bool)
``area``                      box metadata column ``area`` (what matching uses, as COCO)
``segmentation``              box metadata column ``segmentation``, compact JSON text
other annotation keys         box metadata columns
results ``[{image_id, category_id, bbox, score}]``  ``predictions`` rows of the run named
                              by the ``predictions`` key, ``score`` -> ``confidence``,
                              ``pred_id`` generated (``{item_id}/{run}/p{k}``)
============================  =============================================================

What the project cannot hold in columns goes to the ``[coco]`` table of ``workbench.toml``:
``category_ids``; ``categories`` (the category entries as JSON text, in file order, so
``supercategory`` and any other key come back); ``extra`` (other top-level keys such as
``info`` and ``licenses``, JSON text); ``json_columns`` (columns holding JSON text: lists and
objects, or keys whose values mix types); ``renamed`` (keys stored under another column name
because the name is one of the project's own, e.g. an image key ``label`` -> ``coco_label``);
``string_ids`` (which of images / annotations had string ids).

**Where the images are.** ``file_name`` is relative to ``images_root`` (default: the project
folder), which must be the project folder or a folder inside it: the workbench reads images
only inside the project folder. When the images live elsewhere, put the project folder so
that it contains them (e.g. ``import_coco("annotations/instances.json", ".",
images_root="val2017")`` from the dataset's folder), or move or copy the images in (a
symbolic link that leads outside the project is refused when reading).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._io import atomic_write
from ..errors import SchemaError
from ..project import _Problems, _Source, _summary
from .io import _build, write_detection_project

__all__ = ["import_coco", "export_coco"]

_MAX_SHOWN = 20
#: The project's own column names: a COCO key with one of these names is stored as coco_<key>.
_OWN = {
    "items": {"item_id", "filepath", "width", "height", "label", "box_id", "pred_id", "iou",
              "outcome", "is_fn", "is_fp", "area", "size", "x", "y", "w", "h", "iscrowd",
              "predicted", "correct", "confidence", "run", "annotator"},
    "boxes": {"box_id", "item_id", "label", "x", "y", "w", "h", "iscrowd", "pred_id", "run",
              "predicted", "confidence", "iou", "outcome", "is_fn", "is_fp", "size",
              "annotator", "filepath", "width", "height"},
    "predictions": {"pred_id", "item_id", "run", "label", "x", "y", "w", "h", "confidence"},
}
_COCO_KEYS = {
    "items": {"id": "item_id", "file_name": "filepath", "width": "width", "height": "height"},
    "boxes": {"id": "box_id", "image_id": "item_id", "category_id": "label", "bbox": None,
              "iscrowd": "iscrowd"},
    "predictions": {"image_id": "item_id", "category_id": "label", "bbox": None,
                    "score": "confidence"},
}


# --------------------------------------------------------------------------------------
# import


def import_coco(instances_json: str | os.PathLike, project_dir: str | os.PathLike, *,
                images_root: str | os.PathLike | None = None,
                predictions: dict[str, str | os.PathLike] | None = None,
                name: str | None = None,
                format: Literal["csv", "parquet"] = "parquet"):
    """Write a detection project from a COCO instances file (and COCO results files).

    Parameters
    ----------
    instances_json : path-like
        A COCO instances file (``images``, ``annotations``, ``categories``).
    project_dir : path-like
        The project folder; created if missing. Its project tables and ``workbench.toml``
        are replaced.
    images_root : path-like, optional
        The folder COCO's ``file_name`` paths are relative to; the project folder or a
        folder inside it. Default: the project folder.
    predictions : dict of str to path-like, optional
        ``{run name: COCO results file}``; each results file is a list of
        ``{"image_id", "category_id", "bbox", "score"}`` detections.
    name : str, optional
        The project's name. Default: the project folder's name.
    format : {'parquet', 'csv'}, default='parquet'
        Format of the project tables.

    Returns
    -------
    DetectionProject
        The project written (the same frames :func:`workbench.open_project` reads back).

    Raises
    ------
    SchemaError
        Malformed JSON (with the line and column), a missing top-level key, an annotation
        or detection for an unknown image id or category id, a bad ``bbox`` (not 4 finite
        numbers, ``w`` or ``h`` <= 0), a missing or out-of-range ``score``, duplicate ids,
        an ``images_root`` outside the project folder; and every check of the project
        format (:func:`workbench.open_project`).

    See Also
    --------
    export_coco : write the boxes or a run back as COCO JSON.

    Examples
    --------
    >>> project = wb.import_coco("annotations/instances_val2017.json", ".",
    ...                          images_root="val2017",
    ...                          predictions={"detr": "detr_results.json"})  # doctest: +SKIP
    """
    if format not in ("csv", "parquet"):
        raise ValueError(f"The 'format' parameter of import_coco must be a str among "
                         f"{{'csv', 'parquet'}}. Got {format!r} instead.")
    if predictions is not None and not isinstance(predictions, dict):
        raise TypeError(f"The 'predictions' parameter of import_coco must be a dict "
                        f"{{run name: results file}} or None. Got "
                        f"{type(predictions).__name__} instead.")
    root = Path(project_dir)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    image_root = _image_root(root, images_root)

    path = Path(instances_json)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise SchemaError(f"{path.name}: a COCO instances file is a JSON object with the keys "
                          f"'images', 'annotations' and 'categories'; this file holds a "
                          f"{type(data).__name__}. (A list is a results file: pass it in "
                          f"predictions={{'run': ...}}.)")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise SchemaError(f"{path.name}: missing top-level key {key!r}. A COCO instances "
                              f"file has 'images', 'annotations' and 'categories'; found "
                              f"{sorted(data)}.",
                              problems=[_problem(path.name, f"missing key {key!r}")])
        if not isinstance(data[key], list):
            raise SchemaError(f"{path.name}: {key!r} must be a list; got "
                              f"{type(data[key]).__name__}.")
    problems = _Problems()
    coco: dict[str, Any] = {}
    categories = _categories(data["categories"], path.name, problems)
    _raise(problems)
    by_id = {cid: cname for cid, cname in categories}
    classes = [cname for _, cname in sorted(categories, key=lambda c: c[0])]
    coco["category_ids"] = {cname: cid for cid, cname in sorted(categories,
                                                                key=lambda c: c[0])}
    coco["categories"] = _compact(data["categories"])
    extra = {k: v for k, v in data.items() if k not in ("images", "annotations", "categories")}
    if extra:
        coco["extra"] = _compact(extra)

    items, image_ids, layout = _images(data["images"], path.name, problems)
    _raise(problems)
    boxes, box_layout = _annotations(data["annotations"], path.name, image_ids, by_id, problems)
    _raise(problems)
    del data
    runs = []
    for run, results in (predictions or {}).items():
        if not isinstance(run, str) or not run.strip():
            raise ValueError(f"The 'predictions' parameter of import_coco must map run names "
                             f"(non-empty str) to results files. Got the key {run!r}.")
        rpath = Path(results)
        frame, run_layout = _results(_read_json(rpath), rpath.name, run, image_ids, by_id,
                                     problems)
        runs.append((frame, run_layout))
    _raise(problems)
    pred = None
    if runs:
        pred = pd.concat([f for f, _ in runs], ignore_index=True) if len(runs) > 1 \
            else runs[0][0]
    layouts = {"items": layout, "boxes": box_layout,
               "predictions": _merge_layouts([lay for _, lay in runs])}
    for key in ("json_columns", "int_columns", "renamed"):
        found = {kind: lay[key] for kind, lay in layouts.items() if lay.get(key)}
        if found:
            coco[key] = found
    strings = [kind for kind, lay in (("images", layout), ("annotations", box_layout))
               if lay.get("string_ids")]
    if strings:
        coco["string_ids"] = strings

    frames = {"items": items, "boxes": boxes if len(boxes) else None, "annotations": None,
              "predictions": pred if pred is not None and len(pred) else None}
    sources = {"items": _Source(f"{path.name} 'images'"),
               "boxes": _Source(f"{path.name} 'annotations'"),
               "annotations": _Source("annotations"),
               "predictions": _Source("the results files (all runs, in order)")}
    config = {"name": name or root.name, "classes": classes, "image_root": image_root}
    project = _build(frames, sources, config, root=root, problems=_Problems(),
                     info={"coco": coco}, own=True)
    write_detection_project(project, root, format=format)
    return project


def _problem(file, message, **kw):
    from ..project import Problem

    return Problem(file, message, **kw)


def _raise(problems: _Problems) -> None:
    if problems.errors:
        raise SchemaError(_summary(problems), problems=list(problems))


def _image_root(root: Path, images_root) -> str | None:
    if images_root is None:
        return None
    folder = Path(images_root).resolve()
    if not folder.is_relative_to(root):
        raise SchemaError(
            f"import_coco: images_root {str(images_root)!r} ({folder}) is outside the project "
            f"folder {root}. The workbench reads images only inside the project folder: put "
            f"the project folder so that it contains the images (e.g. project_dir = "
            f"{_common_parent(root, folder)}), or move or copy the images into the project "
            f"folder and pass that folder as images_root.")
    rel = folder.relative_to(root).as_posix()
    return None if rel in ("", ".") else rel


def _common_parent(a: Path, b: Path) -> str:
    return os.path.commonpath([a, b])


def _read_json(path: Path):
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file. Check the path of the COCO JSON "
                                f"file.") from None
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path.name}: not valid UTF-8 (byte offset {exc.start}). Save the "
                          f"file as UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"{path.name}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}. "
            f"Fix the file there (a truncated download, a trailing comma, or a missing "
            f"quote or bracket).",
            problems=[_problem(path.name, f"malformed JSON: {exc.msg}", line=exc.lineno)],
        ) from None
    if (b"\\ud" in raw or b"\\uD" in raw) and not _is_text(data):  # escaped surrogates
        where = _lone_surrogate(data)
        if where is not None:
            raise SchemaError(
                f"{path.name}: {where} holds a lone UTF-16 surrogate (an escape \\ud800 to "
                f"\\udfff without its pair), which is not text: no file can store it. Fix the "
                f"escape there (a string cut in the middle of an emoji, or a bad encoder).",
                problems=[_problem(path.name, f"lone UTF-16 surrogate in {where}")]) from None
    return data


def _is_text(data) -> bool:
    """Whether every string of the parsed JSON can be stored (no lone surrogate); C speed."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lone_surrogate(value, where: str = "the file") -> str | None:
    """Where the first string (or key) holding a lone surrogate is, as ``images[3].name``."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, list):
        for k, v in enumerate(value):
            found = _lone_surrogate(v, f"{where}[{k}]" if where != "the file" else f"[{k}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, v in value.items():
            here = str(key) if where == "the file" else f"{where}.{key}"
            if _lone_surrogate(key, here) is not None:
                return f"a key of {where}"
            found = _lone_surrogate(v, here)
            if found is not None:
                return found
    return None


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _categories(entries: list, file: str, problems: _Problems) -> list[tuple[int, str]]:
    out, seen_ids, seen_names = [], {}, {}
    for k, cat in enumerate(entries):
        where = {"row": k, "column": "categories"}
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            problems.error(file, f"categories[{k}] must be an object with 'id' and 'name'; got "
                                 f"{_short(cat)}.", **where)
            continue
        cid, cname = cat["id"], cat["name"]
        if not (_is_int(cid) or isinstance(cid, str)) or not isinstance(cname, str) \
                or not cname.strip():
            problems.error(file, f"categories[{k}]: id must be an integer (or a string) and "
                                 f"name a non-empty string; got id {cid!r}, name {cname!r}.",
                           **where)
            continue
        if cid in seen_ids:
            problems.error(file, f"category id {cid!r} is used by categories[{seen_ids[cid]}] "
                                 f"and categories[{k}]; give each category its own id.",
                           **where)
            continue
        if cname in seen_names:
            problems.error(file, f"category name {cname!r} is used by ids "
                                 f"{seen_names[cname]!r} and {cid!r}; class names must be "
                                 f"unique: rename one.", **where)
            continue
        seen_ids[cid], seen_names[cname] = k, cid
        out.append((cid, cname))
    if not out and not problems.errors:
        problems.error(file, "'categories' is empty: a COCO file needs at least one category "
                             "(id and name).")
    kinds = {isinstance(cid, str) for cid, _ in out}
    if len(kinds) > 1:  # cannot be ordered (nor matched to annotations) consistently
        ints = next(cid for cid, _ in out if not isinstance(cid, str))
        text = next(cid for cid, _ in out if isinstance(cid, str))
        problems.error(file, f"category ids mix integers ({ints!r}) and strings ({text!r}); "
                             "give every category an integer id (COCO) or every one a "
                             "string.", column="categories")
        return []
    return out


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _column(records: list, key: str) -> list:
    try:
        return [r[key] for r in records]
    except KeyError:
        return [r.get(key) for r in records]


_ABSENT = object()  # a key missing from a record (an explicit null is None)


def _values(records: list, key: str) -> list:
    """The values of ``key``, :data:`_ABSENT` where a record lacks it."""
    try:
        return [r[key] for r in records]
    except KeyError:
        return [r.get(key, _ABSENT) for r in records]


def _keys(records: list) -> list:
    keys: dict = {}
    for r in records:
        if r.keys() != keys.keys():
            keys.update(dict.fromkeys(r))
    return list(keys)


def _scalar_column(values: list) -> tuple[pd.Series, str | None]:
    """A column for COCO values: typed when they are scalars of one kind, else JSON text.

    Returns the Series and how to write it back: None, ``'json'`` (JSON text) or
    ``'int'`` (whole numbers stored as float64 because some are missing: a plain dtype
    that CSV and Parquet both read back as it was written).
    """
    if any(v is None for v in values):  # explicit nulls: JSON text keeps null apart from absent
        return pd.Series([None if v is _ABSENT else _compact(v) for v in values],
                         dtype="str"), "json"
    values = [None if v is _ABSENT else v for v in values]
    kinds = {type(v) for v in values if v is not None}
    missing = len(kinds) and None in values
    if not kinds:
        return pd.Series([None] * len(values), dtype="str"), None
    if kinds <= {str}:
        return pd.Series(values, dtype="str"), None
    if kinds <= {bool} and not missing:
        return pd.Series(values, dtype=bool), None
    if kinds <= {int} and not missing and _fit_int64(values):
        return pd.Series(values, dtype=np.int64), None
    if kinds <= {int, float} and _fit_int64(values, 2 ** 53):  # else JSON text: every digit
        column = pd.Series([np.nan if v is None else v for v in values], dtype=float)
        return column, "int" if kinds <= {int} else None
    return pd.Series([None if v is None else _compact(v) for v in values], dtype="str"), "json"


def _extra_columns(records: list, kind: str, used: set, frame: dict, layout: dict,
                   keys: list | None = None) -> None:
    for key in keys if keys is not None else _keys(records):
        if key in used:
            continue
        col = key if key not in _OWN[kind] and key not in frame else f"coco_{key}"
        while col in frame or col in _OWN[kind]:
            col = f"coco_{col}"
        if col != key:
            layout.setdefault("renamed", {})[col] = key
        values = _values(records, key)
        frame[col], kind_ = _scalar_column(values)
        if kind_ is not None:
            layout.setdefault(f"{kind_}_columns", []).append(col)


def _ids(values: list, file: str, what: str, problems: _Problems) -> tuple[pd.Series, bool]:
    """``str(id)`` of integer (or string) ids; whether any id was a string."""
    kinds = {type(v) for v in values}
    if not kinds <= {int, str} or (not values):
        bad = [k for k, v in enumerate(values) if not (_is_int(v) or isinstance(v, str))]
        if bad:
            problems.error(file, f"{len(bad)} {what} have no integer 'id' "
                                 f"({', '.join(f'{what}[{k}]' for k in bad[:5])}"
                                 f"{' ...' if len(bad) > 5 else ''}: "
                                 f"{_short(values[bad[0]])}). Give each an integer id.",
                           row=bad[0], column="id")
    if kinds <= {int} and _fit_int64(values):
        ids = pd.Series(np.asarray(values, dtype=np.int64)).astype("str")
    else:
        ids = pd.Series([str(v) for v in values], dtype="str")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        pos = np.flatnonzero(dup)
        problems.error(file, f"{what} ids are not unique: {_listed_ids(ids, pos)} "
                             f"({what}[{pos[0]}] ...). Each of the {what} needs its own id.",
                       row=int(pos[0]), column="id")
    return ids, str in kinds


def _fit_int64(values: list, bound: int = 2 ** 63) -> bool:
    """Whether every int among ``values`` is in ``[-bound, bound)``.

    ``bound`` is int64's by default, or ``2 ** 53`` for float64 to hold the ints exactly
    (JSON integers may be of any size).
    """
    ints = [v for v in values if type(v) is int]
    return not ints or (min(ints) >= -bound and max(ints) < bound)


def _listed_ids(ids: pd.Series, pos: np.ndarray) -> str:
    vals = list(pd.unique(ids.to_numpy()[pos]))
    return ", ".join(vals[:5]) + (f" and {len(vals) - 5} more" if len(vals) > 5 else "")


def _images(images: list, file: str, problems: _Problems):
    layout: dict = {}
    bad = [k for k, im in enumerate(images) if not isinstance(im, dict)]
    if bad:
        problems.error(file, f"images[{bad[0]}] is not an object ({len(bad)} such entries).",
                       row=bad[0], column="images")
        return None, None, layout
    raw_ids = _column(images, "id")
    ids, strings = _ids(raw_ids, file, "images", problems)
    own = _own_ids(images, ITEM_ID_KEY)
    if own is not None:  # a workbench export: the item ids it renumbered
        ids, strings = own, True
    layout["string_ids"] = strings
    frame = {"item_id": ids}
    names = _column(images, "file_name")
    missing = [k for k, v in enumerate(names) if not isinstance(v, str) or not v]
    if missing:
        problems.error(file, f"{len(missing)} image(s) have no 'file_name' (images"
                             f"[{missing[0]}], id {raw_ids[missing[0]]!r}). COCO images need "
                             f"the image file's path, relative to images_root.",
                       row=missing[0], column="file_name")
    frame["filepath"] = pd.Series(names, dtype="str")
    for key in ("width", "height"):
        values = _column(images, key)
        if any(v is not None for v in values):
            frame[key] = pd.Series(values, dtype=object)  # checked by the project format
    used = {"id", "file_name", "width", "height"} | ({ITEM_ID_KEY} if own is not None else set())
    _extra_columns(images, "items", used, frame, layout)
    return pd.DataFrame(frame), dict(zip(raw_ids, ids, strict=True)), layout


#: Keys :func:`export_coco` adds where COCO's integer ids replace the project's own ids
#: (which :func:`import_coco` then reads back): on images and on annotations.
ITEM_ID_KEY, BOX_ID_KEY = "wb_item_id", "wb_box_id"


def _own_ids(records: list, key: str) -> pd.Series | None:
    """The ids under ``key`` when every record has a distinct non-empty str one, else None."""
    values = _values(records, key)
    if not values or not all(isinstance(v, str) and v for v in values):
        return None
    ids = pd.Series(values, dtype="str")
    return None if ids.duplicated().any() else ids


def _boxes_array(records: list, file: str, what: str, problems: _Problems) -> np.ndarray:
    """The bboxes as an (n, 4) float array; a problem for each bad one (COCO terms)."""
    values = _column(records, "bbox")
    try:
        arr = np.asarray(values)  # text, None or ragged lists fall to the slow path
        ok = (arr.dtype.kind in "fiu" and arr.ndim == 2 and arr.shape[1] == 4) or not values
        arr = arr.astype(float).reshape(len(values), 4) if ok else arr
    except (TypeError, ValueError):
        ok = False
    if ok:
        good = np.isfinite(arr).all(axis=1) & (arr[:, 2] > 0) & (arr[:, 3] > 0)
        if good.all():
            return arr
        bad = np.flatnonzero(~good).tolist()
    else:
        bad = [k for k, v in enumerate(values) if not _good_bbox(v)]
        arr = np.zeros((len(values), 4))
    for k in bad[:_MAX_SHOWN]:
        rec = records[k]
        ident = f"id {rec.get('id')!r}" if "id" in rec else f"image_id {rec.get('image_id')!r}"
        problems.error(file, f"{what}[{k}] ({ident}): bbox must be 4 finite numbers "
                             f"[x, y, w, h] with w, h > 0; got {_short(values[k])}. Fix or "
                             f"delete it.", row=k, column="bbox")
    if len(bad) > _MAX_SHOWN:
        problems.error(file, f"... and {len(bad) - _MAX_SHOWN} more bad bbox values in {what}.",
                       column="bbox")
    return arr


def _good_bbox(value) -> bool:
    if not isinstance(value, list | tuple) or len(value) != 4:
        return False
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return False
    return all(math.isfinite(v) for v in value) and value[2] > 0 and value[3] > 0


def _references(records: list, key: str, known: dict, file: str, what: str, field: str,
                problems: _Problems, fix: str) -> list:
    values = _column(records, key)
    try:
        out = [known[v] for v in values]
        return out
    except (KeyError, TypeError):
        pass
    bad = [k for k, v in enumerate(values) if not _hashable_in(v, known)]
    unknown = list(dict.fromkeys(repr(values[k]) for k in bad))
    ident = records[bad[0]].get("id")
    problems.error(file, f"{len(bad)} {what} refer to {field}(s) not in the file: "
                         f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} "
                         f"({what}[{bad[0]}]{'' if ident is None else f', id {ident!r}'}"
                         f"{' ...' if len(bad) > 1 else ''}). {fix}",
                   row=bad[0], column=key)
    return [known.get(v) if _hashable_in(v, known) else None for v in values]


def _hashable_in(value, known: dict) -> bool:
    try:
        return value in known
    except TypeError:
        return False


def _annotations(anns: list, file: str, image_ids: dict, by_id: dict, problems: _Problems):
    layout: dict = {}
    bad = [k for k, a in enumerate(anns) if not isinstance(a, dict)]
    if bad:
        problems.error(file, f"annotations[{bad[0]}] is not an object ({len(bad)} such "
                             f"entries).", row=bad[0], column="annotations")
        return None, layout
    if image_ids is None:
        return None, layout
    box_ids, strings = _ids(_column(anns, "id"), file, "annotations", problems)
    own = _own_ids(anns, BOX_ID_KEY)
    if own is not None:  # a workbench export: the box ids it renumbered
        box_ids, strings = own, True
    layout["string_ids"] = strings
    items = _references(anns, "image_id", image_ids, file, "annotations", "image id",
                        problems, "Add those images to 'images', or delete the annotations.")
    labels = _references(anns, "category_id", by_id, file, "annotations", "category id",
                         problems, "Add those categories to 'categories', or fix the "
                                   "category_id.")
    xywh = _boxes_array(anns, file, "annotations", problems)
    frame = {"box_id": box_ids, "item_id": pd.Series(items, dtype="str"),
             "label": pd.Series(labels, dtype="str")}
    for j, col in enumerate("xywh"):
        frame[col] = xywh[:, j]
    crowd = _column(anns, "iscrowd")
    bad = [k for k, v in enumerate(crowd) if v not in (0, 1, None)]  # True == 1, False == 0
    if bad:
        problems.error(file, f"{len(bad)} annotations have an iscrowd that is not 0 or 1: "
                             f"{_short(crowd[bad[0]])} (annotations[{bad[0]}], id "
                             f"{anns[bad[0]].get('id')!r}). Use 0 or 1.",
                       row=bad[0], column="iscrowd")
    frame["iscrowd"] = np.asarray([v == 1 for v in crowd], dtype=bool)
    keys = _keys(anns)
    if "segmentation" in keys:
        encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        frame["segmentation"] = pd.Series(
            [None if s is _ABSENT else encode(s) for s in _values(anns, "segmentation")],
            dtype="str")
        layout.setdefault("json_columns", []).append("segmentation")
    used = set(_COCO_KEYS["boxes"]) | {"segmentation"} | ({BOX_ID_KEY} if own is not None
                                                          else set())
    _extra_columns(anns, "boxes", used, frame, layout, keys)
    return pd.DataFrame(frame), layout


def _results(results, file: str, run: str, image_ids: dict, by_id: dict,
             problems: _Problems):
    layout: dict = {}
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(results, list):
        raise SchemaError(f"{file}: a COCO results file is a JSON list of detections "
                          f"{{\"image_id\", \"category_id\", \"bbox\", \"score\"}}; this file "
                          f"holds a {type(results).__name__}.")
    bad = [k for k, r in enumerate(results) if not isinstance(r, dict)]
    if bad:
        problems.error(file, f"detection [{bad[0]}] is not an object ({len(bad)} such "
                             f"entries).", row=bad[0])
        return pd.DataFrame(), layout
    items = _references(results, "image_id", image_ids, file, "detections", "image id",
                        problems, "Detections must be on images of the instances file.")
    labels = _references(results, "category_id", by_id, file, "detections", "category id",
                         problems, "Use the category ids of the instances file.")
    xywh = _boxes_array(results, file, "detections", problems)
    scores = _column(results, "score")
    bad = [k for k, s in enumerate(scores)
           if not (isinstance(s, numbers.Real) and not isinstance(s, bool)
                   and 0 <= s <= 1)]
    if bad:
        problems.error(file, f"{len(bad)} detections have a missing score or one outside "
                             f"[0, 1]: {_short(scores[bad[0]])} (detection [{bad[0]}], "
                             f"image_id {results[bad[0]].get('image_id')!r}). Scores are "
                             f"confidences between 0 and 1.", row=bad[0], column="score")
        return pd.DataFrame(), layout
    frame = {"item_id": pd.Series(items, dtype="str"), "run": run,
             "label": pd.Series(labels, dtype="str")}
    for j, col in enumerate("xywh"):
        frame[col] = xywh[:, j]
    frame["confidence"] = np.asarray(scores, dtype=float)
    _extra_columns(results, "predictions", set(_COCO_KEYS["predictions"]), frame, layout)
    out = pd.DataFrame(frame)
    out["run"] = out["run"].astype("str")
    return out, layout


def _merge_layouts(layouts: list[dict]) -> dict:
    out: dict = {}
    for lay in layouts:
        for key in ("json_columns", "int_columns"):
            for col in lay.get(key, []):
                if col not in out.setdefault(key, []):
                    out[key].append(col)
        out.setdefault("renamed", {}).update(lay.get("renamed", {}))
    return {k: v for k, v in out.items() if v}


# --------------------------------------------------------------------------------------
# export


def export_coco(project, path: str | os.PathLike, *, source: str = "boxes") -> Path:
    """Write a detection project's boxes (COCO instances) or one run (COCO results).

    Parameters
    ----------
    project : DetectionProject or path-like
        A detection project, or its folder.
    path : path-like
        The JSON file to write (replaced atomically).
    source : str, default='boxes'
        ``'boxes'``: a COCO instances file (images, annotations, categories and the
        top-level keys recorded at import). A run name: a COCO results file (a list of
        ``image_id``, ``category_id``, ``bbox``, ``score`` and any other prediction column
        but ``pred_id`` and ``prob_<class>``).

    Returns
    -------
    Path
        The file written.

    Notes
    -----
    A project imported with :func:`import_coco` is written back as it was read: the same
    ids, category ids, keys and values (floats as Python writes them), in the same order.
    Otherwise the ids are: the item/box id when every one is a whole number, else 1..N in
    row order, and then each image keeps its item id as ``wb_item_id`` and each annotation
    its box id as ``wb_box_id``, which :func:`import_coco` reads back as the ids (so the
    export re-imports with the project's own ids); category ids 1..K in class order (after
    the recorded ones). Every annotation gets ``iscrowd`` (0/1) and an ``area`` (the
    ``area`` column, else ``w * h``).

    Raises
    ------
    ValueError
        If ``source`` is neither 'boxes' nor a run of the project, or the project is not a
        detection project.
    """
    if isinstance(project, str | os.PathLike):
        from ..project import open_project

        project = open_project(project)
    if getattr(project, "task", None) != "detection":
        raise ValueError(f"export_coco needs a detection project (task = \"detection\"); this "
                         f"project's task is {getattr(project, 'task', None)!r}.")
    options = ["boxes", *project.runs]
    if source not in options:
        raise ValueError(f"The 'source' parameter of export_coco must be a str among "
                         f"{{{', '.join(repr(o) for o in options)}}}. Got {source!r} instead.")
    coco = project.info.get("coco") or {}
    if not isinstance(coco, dict):
        coco = {}
    cat_ids, categories = _export_categories(project.classes, coco)
    image_ids = _export_ids(project.items["item_id"], "images" in coco.get("string_ids", []))
    image_of = dict(zip(project.items["item_id"].tolist(), image_ids, strict=True))
    if source == "boxes":
        out = json.loads(coco["extra"]) if isinstance(coco.get("extra"), str) else {}
        out["images"] = _export_images(project, image_ids, coco)
        out["annotations"] = _export_boxes(project.boxes, image_of, cat_ids, coco)
        out["categories"] = categories
    else:
        out = _export_results(project.predictions, source, image_of, cat_ids, coco)
    atomic_write(Path(path), lambda fh: json.dump(out, fh, ensure_ascii=False))
    return Path(path)


def _export_categories(classes: list[str], coco: dict):
    known = coco.get("category_ids") if isinstance(coco.get("category_ids"), dict) else {}
    ids = {c: known[c] for c in classes if c in known}
    nxt = max([i for i in ids.values() if _is_int(i)], default=0) + 1
    for c in classes:
        if c not in ids:
            ids[c], nxt = nxt, nxt + 1
    stored = json.loads(coco["categories"]) if isinstance(coco.get("categories"), str) else []
    entries = [e for e in stored if isinstance(e, dict) and e.get("name") in ids
               and ids[e["name"]] == e.get("id")]
    have = {e["name"] for e in entries}
    entries += [{"id": ids[c], "name": c} for c in classes if c not in have]
    return ids, entries


def _export_ids(ids: pd.Series, keep_strings: bool) -> list:
    values = ids.tolist()
    if keep_strings:
        return values
    try:
        ints = [int(v) for v in values]
    except (TypeError, ValueError):
        return list(range(1, len(values) + 1))
    if all(str(i) == v for i, v in zip(ints, values, strict=True)):
        return ints
    return list(range(1, len(values) + 1))


def _records(frame: pd.DataFrame, columns: list[str], kind: str, coco: dict) -> list[dict]:
    """Per row, the extra columns as COCO keys (NA left out, JSON text parsed)."""
    json_cols = set((coco.get("json_columns") or {}).get(kind, []))
    int_cols = set((coco.get("int_columns") or {}).get(kind, []))
    renamed = (coco.get("renamed") or {}).get(kind, {})
    rows = [{} for _ in range(len(frame))]
    for col in columns:
        key = renamed.get(col, col)
        values = frame[col]
        present = values.notna().to_numpy()
        values = values.tolist()
        if col in json_cols:
            loads = json.loads
            for row, value, ok in zip(rows, values, present, strict=True):
                if ok:  # a CSV written before [csv_text_columns] typed some JSON already
                    row[key] = loads(value) if isinstance(value, str) else _plain(value)
        elif col in int_cols:
            for row, value, ok in zip(rows, values, present, strict=True):
                if ok:
                    row[key] = int(value)
        else:
            for row, value, ok in zip(rows, values, present, strict=True):
                if ok:
                    row[key] = _plain(value)
    return rows


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _export_images(project, image_ids: list, coco: dict) -> list[dict]:
    items = project.items
    extra = [c for c in items.columns if c not in ("item_id", "filepath", "width", "height")]
    rows = _records(items, extra, "items", coco)
    files = items["filepath"].tolist() if "filepath" in items.columns else [None] * len(items)
    width = items["width"].tolist()
    height = items["height"].tolist()
    out = []
    own = items["item_id"].tolist()
    for row, iid, item, fname, w, h in zip(rows, image_ids, own, files, width, height,
                                           strict=True):
        entry = {"id": iid}
        if str(iid) != item:  # renumbered: the item id kept for import_coco
            entry[ITEM_ID_KEY] = item
        if isinstance(fname, str):
            entry["file_name"] = fname
        if not pd.isna(w):
            entry["width"] = int(w)
        if not pd.isna(h):
            entry["height"] = int(h)
        entry.update(row)
        out.append(entry)
    return out


def _export_boxes(boxes: pd.DataFrame, image_of: dict, cat_ids: dict, coco: dict) -> list:
    ann_ids = _export_ids(boxes["box_id"], "annotations" in coco.get("string_ids", []))
    extra = [c for c in boxes.columns if c not in
             ("box_id", "item_id", "label", "x", "y", "w", "h", "iscrowd")]
    rows = _records(boxes, extra, "boxes", coco)
    xywh = boxes[["x", "y", "w", "h"]].to_numpy(dtype=float).tolist()
    has_area = "area" in boxes.columns
    out = []
    for row, aid, box, item, label, bbox, crowd in zip(
            rows, ann_ids, boxes["box_id"].tolist(), boxes["item_id"].tolist(),
            boxes["label"].tolist(), xywh, boxes["iscrowd"].tolist(), strict=True):
        entry = {"id": aid, "image_id": image_of[item], "category_id": cat_ids[label],
                 "bbox": bbox, "iscrowd": int(bool(crowd))}
        if str(aid) != box:  # renumbered: the box id kept for import_coco
            entry[BOX_ID_KEY] = box
        if not has_area:
            entry["area"] = bbox[2] * bbox[3]
        entry.update(row)
        out.append(entry)
    return out


def _export_results(pred: pd.DataFrame, run: str, image_of: dict, cat_ids: dict,
                    coco: dict) -> list:
    rows_of = pred[pred["run"] == run]
    extra = [c for c in rows_of.columns if c not in
             ("pred_id", "item_id", "run", "label", "x", "y", "w", "h", "confidence")
             and not str(c).startswith("prob_")]
    extra = [c for c in extra if rows_of[c].notna().any()]
    rows = _records(rows_of, extra, "predictions", coco)
    xywh = rows_of[["x", "y", "w", "h"]].to_numpy(dtype=float).tolist()
    out = []
    for row, item, label, bbox, score in zip(
            rows, rows_of["item_id"].tolist(), rows_of["label"].tolist(), xywh,
            rows_of["confidence"].tolist(), strict=True):
        entry = {"image_id": image_of[item], "category_id": cat_ids[label], "bbox": bbox,
                 "score": score}
        entry.update(row)
        out.append(entry)
    return out
