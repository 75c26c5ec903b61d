"""The one place where the workbench touches FiftyOne's private internals.

FiftyOne has no public bulk-insert API: ``add_samples`` builds one ``fo.Sample`` object per
item and is about 10x slower than inserting the sample documents directly
(``benchmarks/bench_fiftyone.py``: 15.8 s against 189 s for 100,000 items). The fast writer
here therefore writes MongoDB documents in FiftyOne's *raw* sample layout (``_id``,
``_media_type``, ``_rand``, ``_dataset_id``, ``created_at``, ``last_modified_at``, labels as
embedded documents with ``_id``, ``_cls`` and ``tags``) through the dataset's private
``_sample_collection``. It also reads the App session's private client to know when the
App is connected (the session has no public "connected" flag).

That layout is not a public contract. It was written against FiftyOne :data:`KNOWN_MAJOR`
(checked on :data:`WRITTEN_AGAINST`), and:

- ``tests/fiftyone/test_fiftyone_adapter.py`` fails loudly when another FiftyOne major is
  installed, and checks the documents written here against those ``add_samples`` writes;
- at run time, :func:`bulk_unavailable_reason` says why the fast writer cannot be used (an
  unknown major version, or the private API missing), and the caller falls back to the
  public path (``add_samples`` / ``set_values``).

Everything else the workbench does with FiftyOne uses its public API.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "KNOWN_MAJOR",
    "WRITTEN_AGAINST",
    "fiftyone_version",
    "fiftyone_major",
    "bulk_unavailable_reason",
    "raw_label",
    "insert_samples",
    "update_samples",
    "client_open",
    "client_connected",
]

#: The FiftyOne major version whose raw sample layout this module writes.
KNOWN_MAJOR = 1
#: The FiftyOne release the layout was last checked against (by the contract test).
WRITTEN_AGAINST = "1.22.1"


def fiftyone_version() -> str | None:
    """The installed FiftyOne version (from the package metadata), or None if not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fiftyone")
    except PackageNotFoundError:
        return None


def fiftyone_major() -> int | None:
    """The installed FiftyOne major version, or None if unknown."""
    text = fiftyone_version()
    if not text:
        return None
    head = text.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def bulk_unavailable_reason(ds) -> str | None:
    """Why the fast writer cannot write into ``ds``; None when it can.

    Parameters
    ----------
    ds : fiftyone.core.dataset.Dataset
        The dataset to write.

    Returns
    -------
    str or None
        None, or a short reason (for ``SyncStats.skipped``): the installed FiftyOne is not
        major :data:`KNOWN_MAJOR`, or the private API the writer needs is missing.
    """
    major = fiftyone_major()
    if major != KNOWN_MAJOR:
        return (f"FiftyOne {fiftyone_version()} is not the major version {KNOWN_MAJOR} the "
                "bulk writer's document layout was written for")
    coll = getattr(ds, "_sample_collection", None)
    if coll is None or not all(hasattr(coll, m) for m in ("insert_many", "bulk_write")):
        return "FiftyOne's dataset has no private sample collection"
    if getattr(getattr(ds, "_doc", None), "id", None) is None:
        return "FiftyOne's dataset has no private document id"
    return None


def raw_label(kind: str, value: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None):
    """A label as FiftyOne stores it in a sample document.

    Parameters
    ----------
    kind : {'value', 'classification', 'classifications', 'detections', 'image_metadata'}
        ``'value'`` returns ``value`` unchanged.
    value : dict, list of dict or None
        The label's fields (``{"label": "cat", "confidence": 0.9}``), a list of them for
        ``'classifications'`` and ``'detections'`` (each detection with ``label``,
        ``bounding_box`` in relative coordinates and any attributes), ``{"width": W,
        "height": H}`` for ``'image_metadata'``, or None (an empty field).

    Returns
    -------
    object
        The embedded document (with ``_id``, ``_cls`` and ``tags`` as FiftyOne writes them).
    """
    from bson import ObjectId

    if value is None:
        return None
    if kind == "classification":
        return {"_id": ObjectId(), "_cls": "Classification", "tags": [], **value}
    if kind == "classifications":
        return {"_cls": "Classifications", "classifications": [
            {"_id": ObjectId(), "_cls": "Classification", "tags": [], **d} for d in value]}
    if kind == "detections":
        return {"_cls": "Detections", "detections": [
            {"_id": ObjectId(), "_cls": "Detection", "attributes": {}, "tags": [], **d}
            for d in value]}
    if kind == "image_metadata":
        return {"_cls": "ImageMetadata", **value}
    return value


def _now() -> datetime.datetime:
    # FiftyOne stores naive UTC datetimes at millisecond precision (BSON dates)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def insert_samples(ds, values: Mapping[str, Sequence], kinds: Mapping[str, str],
                   rows: Sequence[int], *, batch_size: int = 2000) -> int:
    """Insert image samples as raw documents (``insert_many``), in batches.

    Every field must already be declared in the dataset's schema (the caller does it with the
    public ``add_sample_field``) and :func:`bulk_unavailable_reason` must be None.

    Parameters
    ----------
    ds : fiftyone.core.dataset.Dataset
        The dataset (media type ``image``).
    values : mapping of str to sequence
        Column-wise field values, one entry per item; must hold ``filepath`` and ``tags``.
    kinds : mapping of str to str
        Kind of each field (see :func:`raw_label`); fields not in it are plain values.
    rows : sequence of int
        The positions (in ``values``) of the items to insert.
    batch_size : int, default=2000
        Documents per ``insert_many``.

    Returns
    -------
    int
        Documents inserted.
    """
    from bson import ObjectId

    coll = ds._sample_collection
    dataset_id = ds._doc.id
    now = _now()
    rng = random.Random()
    fields = [f for f in values if f not in ("filepath", "tags")]
    filepaths, tags = values["filepath"], values["tags"]
    n = 0
    for start in range(0, len(rows), batch_size):
        docs = []
        for i in rows[start:start + batch_size]:
            doc = {"_id": ObjectId(), "filepath": filepaths[i], "tags": list(tags[i]),
                   "_media_type": "image", "_rand": rng.random() * 0.001 + 0.999}
            for f in fields:
                doc[f] = raw_label(kinds.get(f, "value"), values[f][i])
            doc["_dataset_id"] = dataset_id
            doc["created_at"] = now
            doc["last_modified_at"] = now
            docs.append(doc)
        coll.insert_many(docs, ordered=False)
        n += len(docs)
    if n:
        ds.reload()
    return n


def update_samples(ds, values: Mapping[str, Sequence], kinds: Mapping[str, str],
                   updates: Sequence[tuple[str, int]], *, batch_size: int = 2000) -> int:
    """Set fields of existing samples with bulk ``$set`` updates (other fields untouched).

    Parameters
    ----------
    ds : fiftyone.core.dataset.Dataset
        The dataset.
    values : mapping of str to sequence
        Column-wise values of the fields to set, one entry per item.
    kinds : mapping of str to str
        Kind of each field (see :func:`raw_label`).
    updates : sequence of (str, int)
        ``(sample id, position in values)`` of each sample to update.
    batch_size : int, default=2000
        Updates per ``bulk_write``.

    Returns
    -------
    int
        Samples updated.
    """
    from bson import ObjectId
    from pymongo import UpdateOne

    coll = ds._sample_collection
    now = _now()
    n = 0
    for start in range(0, len(updates), batch_size):
        ops = []
        for sid, i in updates[start:start + batch_size]:
            update = {f: raw_label(kinds.get(f, "value"), col[i]) for f, col in values.items()}
            update["last_modified_at"] = now
            ops.append(UpdateOne({"_id": ObjectId(sid)}, {"$set": update}))
        coll.bulk_write(ops, ordered=False)
        n += len(ops)
    if n:
        ds.reload()
    return n


def client_open(session) -> bool | None:
    """Whether the App session's client (its link to the App server) is open; None if unknown."""
    client = getattr(session, "_client", None)
    if client is None or not hasattr(client, "is_open"):
        return None
    return bool(client.is_open)


def client_connected(session) -> bool | None:
    """Whether the session's client is open and connected to the App; None if unknown."""
    is_open = client_open(session)
    if not is_open:
        return is_open
    return bool(getattr(session._client, "_connected", True))
