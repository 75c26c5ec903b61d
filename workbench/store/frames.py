"""DataFrames of the store's reads, built column-wise (pure functions, no database).

Timestamps are stored as microseconds since the epoch and returned as UTC; text columns use
pandas' ``str`` dtype (missing reasons are NA).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

__all__ = ["now_us", "to_timestamps", "current_frame", "events_frame", "statuses_frame",
           "rows_frame"]


def now_us() -> int:
    """Return the time now in microseconds since the epoch."""
    return time.time_ns() // 1000


def to_timestamps(values) -> pd.DatetimeIndex:
    """Microseconds since the epoch -> UTC timestamps (no per-element conversion)."""
    return pd.DatetimeIndex(np.asarray(values, dtype="int64").view("M8[us]")).tz_localize("UTC")


def current_frame(items, tag_ids, action_ids, names, info, *, blocks: bool = False,
                  box_ids=None) -> pd.DataFrame:
    """Build the current-tags frame, sorted by tag then item.

    Parameters
    ----------
    items : list of str or pyarrow.Array
        ``tag_current.item_id``.
    tag_ids, action_ids : ndarray of int64
        ``tag_current.tag_id`` and ``tag_current.action_id`` of the same rows.
    names : dict of int to str
        Tag id -> tag name.
    info : list of tuple
        ``(action_id, author, reason, created_at)`` of every action referenced.
    blocks : bool, default=False
        The rows are in primary-key order (each tag id one block, items sorted within):
        then only the blocks are reordered (a stable sort of small ints).
    box_ids : list of (str or None), optional
        The box of each row (None: a tag on the image). Default: every row is an image tag.

    Returns
    -------
    DataFrame
        ``item_id``, ``tag``, ``author``, ``reason``, ``tagged_at`` (UTC), ``box_id`` (None
        for image tags), sorted by tag, item, then box (the image tag first).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(items)
    if n == 0:
        empty = pd.array([], dtype="str")
        return pd.DataFrame({"item_id": empty, "tag": empty, "author": empty, "reason": empty,
                             "tagged_at": to_timestamps([]),
                             "box_id": pd.Series([], dtype="object")})
    # tags: position in a dictionary of names, ranked alphabetically
    codes = np.asarray(sorted(names), dtype="int64")
    tag_names = [names[c] for c in codes.tolist()]
    tag_pos = np.searchsorted(codes, tag_ids)
    rank_of = np.empty(len(codes), dtype="int64")
    rank_of[np.argsort(np.asarray(tag_names, dtype=object), kind="stable")] = np.arange(
        len(codes))
    rank = rank_of[tag_pos]
    # actions: author, reason, time of the add that holds the tag
    info = sorted(info)
    act_codes = np.asarray([r[0] for r in info], dtype="int64")
    act_pos = np.searchsorted(act_codes, action_ids)
    text = pa.large_string()  # what pandas' str dtype holds: no cast later
    authors = pa.array([r[1] for r in info], type=text)
    reasons = pa.array([r[2] for r in info], type=text)
    created = np.asarray([r[3] for r in info], dtype="int64")

    arr = items.cast(text) if isinstance(items, pa.Array) else pa.array(items, type=text)
    order = None
    if n > 1:
        if blocks and box_ids is None:
            if (rank[1:] < rank[:-1]).any():
                order = np.argsort(rank, kind="stable")
        else:
            columns = {"t": rank, "i": arr}
            keys = [("t", "ascending"), ("i", "ascending")]
            if box_ids is not None:
                # '' (never a box id) sorts the image tag before the item's box tags
                columns["b"] = pa.array([b or "" for b in box_ids], type=text)
                keys.append(("b", "ascending"))
            order = pc.sort_indices(pa.table(columns), sort_keys=keys).to_numpy()
    if order is not None:
        arr = arr.take(pa.array(order))
        tag_pos, act_pos = tag_pos[order], act_pos[order]
    if box_ids is None:
        boxes = np.full(n, None, dtype=object)
    else:
        boxes = np.asarray(box_ids, dtype=object)
        boxes = boxes[order] if order is not None else boxes
    return pd.DataFrame({
        "item_id": pd.array(arr, dtype="str"),
        "tag": pd.array(pa.array(tag_names, type=text).take(pa.array(tag_pos)), dtype="str"),
        "author": pd.array(authors.take(pa.array(act_pos)), dtype="str"),
        "reason": pd.array(reasons.take(pa.array(act_pos)), dtype="str"),
        "tagged_at": to_timestamps(created[act_pos]),
        "box_id": pd.Series(boxes, dtype="object", copy=False),
    })


def events_frame(rows, columns) -> pd.DataFrame:
    """Build an audit-trail frame from result rows.

    ``event_id`` becomes int64, ``created_at`` UTC timestamps, ``context`` the decoded JSON
    (dict or None), ``box_id`` object (None for an image event), every other column ``str``.
    """
    data = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
    out = {}
    for name, values in zip(columns, data, strict=True):
        if name == "event_id":
            out[name] = np.asarray(values, dtype="int64")
        elif name == "created_at":
            out[name] = to_timestamps(values)
        elif name == "box_id":  # '' (schema.NO_BOX) is the image itself
            out[name] = pd.Series([v or None for v in values], dtype="object")
        elif name == "context":
            out[name] = pd.Series([json.loads(v) if v else None for v in values],
                                  dtype="object")
        else:
            out[name] = pd.array(list(values), dtype="str")
    return pd.DataFrame(out)


def statuses_frame(rows) -> pd.DataFrame:
    """Build the current-status frame from ``(item_id, status, author, reason, at)`` rows."""
    return rows_frame(rows, {"item_id": "str", "status": "str", "author": "str",
                             "reason": "str", "updated_at": "time"})


_KINDS = {
    "str": lambda v: pd.array(list(v), dtype="str"),
    "int": lambda v: np.asarray(v, dtype="int64"),
    "count": lambda v: np.asarray([x or 0 for x in v], dtype="int64"),
    "bool": lambda v: np.asarray(v, dtype=bool),
    "time": lambda v: to_timestamps(np.asarray(v, dtype="int64")),
    "json": lambda v: pd.Series([json.loads(x) if x else {} for x in v], dtype="object"),
}


def rows_frame(rows, kinds: dict[str, str]) -> pd.DataFrame:
    """Build a frame from result rows, one column per entry of ``kinds`` (in row order).

    A kind is ``"str"`` (pandas ``str``, NA for NULL), ``"int"`` (int64), ``"count"`` (int64,
    NULL is 0), ``"bool"``, ``"time"`` (microseconds -> UTC timestamps) or ``"json"`` (the
    decoded JSON, ``{}`` for NULL or empty).
    """
    data = list(zip(*rows, strict=True)) if rows else [[] for _ in kinds]
    return pd.DataFrame({name: _KINDS[kind](values)
                         for (name, kind), values in zip(kinds.items(), data, strict=True)})
