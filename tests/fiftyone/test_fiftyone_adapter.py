"""Contract of workbench._fiftyone_adapter, the one module using FiftyOne's internals.

The fast writer inserts sample documents in FiftyOne's private raw layout. These tests
name the FiftyOne major version the layout was written against and fail loudly on another
one, check the raw documents against those FiftyOne's own ``add_samples`` writes, and check
the run-time fallback to the public path (``add_samples``/``set_values``).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import workbench._fiftyone_adapter as adapter

REPO = Path(__file__).resolve().parents[2]
needs_fiftyone = pytest.mark.skipif(importlib.util.find_spec("fiftyone") is None,
                                    reason="fiftyone is not installed")


# ---- version contract (no database needed) --------------------------------------------


@needs_fiftyone
def test_layout_was_written_against_the_installed_fiftyone_major():
    installed = adapter.fiftyone_version()
    assert adapter.KNOWN_MAJOR == 1
    assert adapter.WRITTEN_AGAINST.split(".")[0] == str(adapter.KNOWN_MAJOR)
    assert adapter.fiftyone_major() == adapter.KNOWN_MAJOR, (
        f"FiftyOne {installed} is a new major version: the raw sample layout in "
        f"workbench/_fiftyone_adapter.py was written against FiftyOne {adapter.KNOWN_MAJOR}.x "
        f"(checked on {adapter.WRITTEN_AGAINST}). Until it is re-checked, sync_project falls "
        "back to add_samples/set_values (10x slower). Run tests/fiftyone with the new "
        "version, fix the layout if test_raw_documents_match_add_samples fails, then bump "
        "KNOWN_MAJOR and WRITTEN_AGAINST."
    )


def test_unknown_major_or_missing_private_api_disables_the_bulk_writer(monkeypatch):
    class Collection:
        def insert_many(self, docs, ordered=True): ...

        def bulk_write(self, ops, ordered=True): ...

    class Doc:
        id = "0123456789abcdef01234567"

    class Good:
        _sample_collection = Collection()
        _doc = Doc()

    class NoDoc:
        _sample_collection = Collection()

    monkeypatch.setattr(adapter, "fiftyone_version", lambda: "1.22.1")
    assert adapter.bulk_unavailable_reason(Good()) is None
    assert "no private sample collection" in adapter.bulk_unavailable_reason(object())
    assert "no private document id" in adapter.bulk_unavailable_reason(NoDoc())
    monkeypatch.setattr(adapter, "fiftyone_version", lambda: "2.0.0")
    assert adapter.fiftyone_major() == 2
    assert adapter.bulk_unavailable_reason(Good()) == (
        "FiftyOne 2.0.0 is not the major version 1 the bulk writer's document layout was "
        "written for")
    monkeypatch.setattr(adapter, "fiftyone_version", lambda: None)
    assert adapter.fiftyone_major() is None
    assert "FiftyOne None is not the major version 1" in adapter.bulk_unavailable_reason(Good())


def test_session_client_state_is_unknown_without_the_private_client():
    class Client:
        def __init__(self, is_open, connected=None):
            self.is_open = is_open
            if connected is not None:
                self._connected = connected

    class Session:
        def __init__(self, client):
            self._client = client

    assert adapter.client_open(object()) is None
    assert adapter.client_connected(object()) is None
    assert adapter.client_open(Session(Client(False))) is False
    assert adapter.client_connected(Session(Client(False))) is False
    assert adapter.client_connected(Session(Client(True, connected=False))) is False
    assert adapter.client_connected(Session(Client(True, connected=True))) is True
    assert adapter.client_connected(Session(Client(True))) is True  # no flag: open is enough


_PRIVATE = re.compile(r"_sample_collection|\b_rand\b|\"_cls\"|'_cls'|\b_dataset_id\b|"
                      r"\b_media_type\b|\._doc\b|\._client\b")


def test_fiftyone_internals_are_used_only_in_the_adapter():
    offenders = []
    for path in sorted((REPO / "workbench").rglob("*.py")):
        if path.name == "_fiftyone_adapter.py":
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _PRIVATE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert offenders == [], ("FiftyOne internals used outside workbench/_fiftyone_adapter.py:\n"
                             + "\n".join(offenders))


# ---- the raw layout against FiftyOne's own writes (real mongod) ------------------------


def _raw_docs(ds) -> list[dict]:
    return list(ds._sample_collection.find({}))  # the contract: the test may look inside


def _shape(value):
    """Keys and value types of a raw document, recursively (ids and times vary)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


@pytest.mark.fiftyone
def test_raw_documents_match_add_samples(fo, ds_name):
    """A document written by insert_samples has the keys and types add_samples writes."""
    other = ds_name + "-api"
    try:
        api = fo.Dataset(other)
        api.add_sample(fo.Sample(
            filepath="/tmp/wb-a.png", tags=["t"], item_id="a", note="x", score=0.5,
            gt=fo.Classification(label="cat", confidence=0.9),
            votes=fo.Classifications(classifications=[
                fo.Classification(label="cat", annotator="ann_1")])))
        ours = fo.Dataset(ds_name)
        ours.media_type = "image"
        for path, kwargs in [("item_id", {}), ("note", {}), ("score", {})]:
            ftype = fo.FloatField if path == "score" else fo.StringField
            ours.add_sample_field(path, ftype, **kwargs)
        ours.add_sample_field("gt", fo.EmbeddedDocumentField,
                              embedded_doc_type=fo.Classification)
        ours.add_sample_field("votes", fo.EmbeddedDocumentField,
                              embedded_doc_type=fo.Classifications)
        ours.add_sample_field("votes.classifications.annotator", fo.StringField)
        assert adapter.bulk_unavailable_reason(ours) is None
        values = {"filepath": ["/tmp/wb-a.png"], "tags": [["t"]], "item_id": ["a"],
                  "note": ["x"], "score": [0.5], "gt": [{"label": "cat", "confidence": 0.9}],
                  "votes": [[{"label": "cat", "annotator": "ann_1"}]]}
        kinds = {"gt": "classification", "votes": "classifications"}
        assert adapter.insert_samples(ours, values, kinds, [0]) == 1

        (theirs_doc,), (ours_doc,) = _raw_docs(api), _raw_docs(ours)
        assert _shape(ours_doc) == _shape(theirs_doc)
        assert ours_doc["_dataset_id"] == ours._doc.id
        assert ours_doc["_media_type"] == theirs_doc["_media_type"] == "image"
        assert 0 <= ours_doc["_rand"] <= 1
        assert ours_doc["gt"]["_cls"] == theirs_doc["gt"]["_cls"] == "Classification"
        # FiftyOne reads our document back as the same sample
        sample, want = ours.first(), api.first()
        assert sample.gt.label == want.gt.label and sample.gt.confidence == 0.9
        assert sample.votes.classifications[0].annotator == "ann_1"
        assert sample.tags == ["t"] and sample.media_type == "image"
        assert ours.count_values("gt.label") == {"cat": 1}

        # updates set only the given fields, as set_values does
        sid = sample.id
        assert adapter.update_samples(ours, {"note": ["y"], "gt": [{"label": "dog"}]}, kinds,
                                      [(sid, 0)]) == 1
        sample = ours.first()
        assert (sample.note, sample.gt.label, sample.score) == ("y", "dog", 0.5)
        assert sample.last_modified_at >= sample.created_at
    finally:
        if fo.dataset_exists(other):
            fo.delete_dataset(other)


def _field_values(ds):
    skip = {"id", "created_at", "last_modified_at"}
    out = {}
    for field in sorted(set(ds.get_field_schema(flat=True)) - skip):
        if field.endswith(".id"):
            continue
        out[field] = dict(zip(ds.values("item_id"), map(_no_ids, ds.values(field)),
                              strict=True))
    return out


def _no_ids(value):
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _no_ids(v) for k, v in value.items() if k not in ("_id", "id")}
    if isinstance(value, list):
        return [_no_ids(v) for v in value]
    return value


@pytest.mark.fiftyone
def test_unknown_fiftyone_major_falls_back_to_the_public_path(fo, tiny_project, ds_name,
                                                              monkeypatch):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    other = ds_name + "-bulk"
    try:
        bulk = fb.sync_project(tiny_project, name=other)
        assert bulk.writer == "bulk"
        assert not any(s.startswith("fast writer") for s in bulk.skipped)

        monkeypatch.setattr(adapter, "fiftyone_version", lambda: "2.0.0")
        calls = []
        real_insert = adapter.insert_samples
        monkeypatch.setattr(adapter, "insert_samples",
                            lambda *a, **k: calls.append(1) or real_insert(*a, **k))
        stats = fb.sync_project(tiny_project, name=ds_name)
        assert stats.writer == "api" and stats.added == 16 and calls == []
        assert ("fast writer: FiftyOne 2.0.0 is not the major version 1 the bulk writer's "
                "document layout was written for; wrote with add_samples/set_values"
                ) in stats.skipped
        assert _field_values(stats.dataset) == _field_values(bulk.dataset)

        items = tiny_project.items.copy()
        items.loc[items["item_id"] == "i02", "scanner"] = "s7"
        changed = wb.Project.from_frames(items=items, annotations=tiny_project.annotations,
                                         predictions=tiny_project.predictions,
                                         classes=tiny_project.classes,
                                         name=tiny_project.name, root=tiny_project.root)
        again = fb.sync_project(changed, name=ds_name)
        assert (again.updated, again.writer) == (1, "api") and calls == []
        ds = again.dataset
        assert dict(zip(ds.values("item_id"), ds.values("scanner"), strict=True))["i02"] == "s7"
    finally:
        if fo.dataset_exists(other):
            fo.delete_dataset(other)
