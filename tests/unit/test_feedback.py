"""workbench.vendor_feedback: the vendor's numbers, examples, guidelines, safety, isolation."""

from __future__ import annotations

import base64
import math
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

import workbench as wb
from workbench.errors import SchemaError
from workbench.guidelines import Guidelines
from workbench.project import Project
from workbench.sample import SAMPLE_DIR
from workbench.tags import TagStore

EVIL = "Look at the top. <script>alert(1)</script><img src=x onerror=alert(1)>"
EVIL_NAME = '<script>alert("n")</script><img src=x onerror=alert(2)>'


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


@pytest.fixture(scope="module")
def sample():
    return wb.load_sample()


def _project(sample, annotations=None, items=None) -> Project:
    """The sample as a new project object (images under the sample folder, nothing written)."""
    return Project.from_frames(sample.items if items is None else items,
                               annotations=sample.annotations if annotations is None
                               else annotations,
                               classes=sample.classes, root=SAMPLE_DIR, name="digits")


@pytest.fixture
def project(sample):
    return _project(sample)


@pytest.fixture
def store(project):
    with TagStore("sqlite://", item_ids=project.items["item_id"]) as s:
        yield s


class _Doc(HTMLParser):
    """Tags, attributes, scorecard cells (by data-col) and examples of a report."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.rows = [], [], []
        self._col = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        a = dict(attrs)
        if tag == "tr" and a.get("class", "").split()[:1] in (["vendor"], ["annotator"]):
            self.rows.append({"_class": a["class"]})
        if tag == "td" and "data-col" in a:
            self._col = a["data-col"]
            self.rows[-1][self._col] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._col = None

    def handle_data(self, data):
        if self._col is not None:
            self.rows[-1][self._col] += data


def _parse(text: str) -> _Doc:
    doc = _Doc()
    doc.feed(text)
    return doc


def _fmt(value) -> str:
    """The report's number format, written out independently."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _without_images(text: str) -> str:
    return re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "data:", text)


def _assert_safe(text: str) -> _Doc:
    doc = _parse(text)
    assert "script" not in doc.tags and "link" not in doc.tags and "iframe" not in doc.tags
    assert not [a for a in doc.attrs if a[1].lower().startswith("on")]
    for _, key, value in doc.attrs:
        if key in ("src", "href"):
            assert value.startswith("data:image/"), (key, value)
    assert "http://" not in text and "https://" not in text
    assert "default-src 'none'" in text
    return doc


# ---------------------------------------------------------------- the vendor's numbers


@pytest.mark.parametrize("batch", [None, "2026-W04"])
def test_report_numbers_equal_the_scorecard(project, store, tmp_path, batch):
    path = wb.vendor_feedback(project, "quicklabel", tmp_path / "q.html", batch=batch,
                              store=store)
    assert path == tmp_path / "q.html"
    assert [p.name for p in tmp_path.iterdir()] == ["q.html"]  # atomic: no temp left
    text = path.read_text(encoding="utf-8")
    doc = _assert_safe(text)
    card = wb.vendor_scorecard(project, store=store)
    mine = card[card["vendor"] == "quicklabel"]
    if batch is not None:
        mine = mine[mine["batch"] == batch]
    assert len(doc.rows) == len(mine) > 0
    for row, (_, expected) in zip(doc.rows, mine.iterrows(), strict=True):
        for col in ("level", "annotator", "batch", "n_labels", "n_gold", "gold_accuracy",
                    "consensus_agreement", "kappa", "ds_accuracy", "worst_class",
                    "worst_class_recall", "worst_pair", "worst_pair_rate", "n_reworked",
                    "rework_rate", "trend_change", "trend_p_value", "drop_flag"):
            value = expected[col]
            value = value.item() if hasattr(value, "item") else value
            assert row[col] == _fmt(value), (col, row, expected)
        assert ("flag" in row["_class"].split()) == bool(expected["drop_flag"])
    # the planted rushed week is flagged, for the vendor and in the trend
    assert "Quality dropped beyond chance in 2026-W04" in text
    assert re.search(r'<tr class="flag"><td>2026-W04</td>', text)
    assert '<svg id="trend"' in text and text.count("<circle") == 6  # six weekly batches


def test_gold_numbers_appear_when_items_are_gold(project, store, tmp_path):
    gold = project.items["item_id"].astype(str).tolist()[::10]
    store.add(gold, "gold", author="curator")
    text = wb.vendor_feedback(project, "northstar", tmp_path / "n.html",
                              store=store).read_text()
    card = wb.vendor_scorecard(project, store=store)
    mine = card[card["vendor"] == "northstar"]
    rows = _parse(text).rows
    assert [r["gold_accuracy"] for r in rows] == [_fmt(float(v))
                                                   for v in mine["gold_accuracy"]]
    assert all(r["gold_accuracy"] != "-" for r in rows)


# ---------------------------------------------------------------- weak pairs and examples


def test_weakest_pair_has_examples_of_their_swaps(project, store, tmp_path):
    overall = wb.vendor_scorecard(project, by="vendor", store=store)
    worst = overall[(overall["level"] == "vendor")
                    & (overall["vendor"] == "quicklabel")].iloc[0]["worst_pair"]
    assert worst == "4 <-> 9"  # dev's planted confusion
    text = wb.vendor_feedback(project, "quicklabel", tmp_path / "q.html",
                              store=store).read_text()
    section = text.split("<h2>4 vs 9</h2>", 1)[1].split("</section>", 1)[0]
    examples = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"><br>'
                          r"\1<br>(\w+) labelled <b>(\w)</b>; consensus <b>(\w)</b>", section)
    assert len(examples) == 4
    ann = project.annotations.astype({"item_id": str, "annotator": str, "label": str})
    card = wb.vendor_scorecard(project, store=store)
    theirs = set(card.loc[(card["vendor"] == "quicklabel") & (card["level"] == "annotator"),
                          "annotator"])
    for item_id, data, annotator, label, cons in examples:
        assert annotator in theirs
        assert {label, cons} == {"4", "9"}
        given = ann[(ann["item_id"] == item_id) & (ann["annotator"] == annotator)]["label"]
        assert given.iloc[-1] == label
        assert base64.b64decode(data) == project.media_path(item_id).read_bytes()
    # the consensus shown is the Dawid-Skene consensus of all labels
    cons = wb.consensus(project.annotations, method="dawid_skene", classes=project.classes)
    cons = dict(zip(cons["item_id"].astype(str), cons["label"].astype(str), strict=True))
    assert all(cons[item_id] == c for item_id, _, _, _, c in examples)
    assert "No guideline for 4 vs 9 yet." in section


# ---------------------------------------------------------------- guidelines and escaping


def test_current_guideline_and_hostile_text_show_as_text(sample, tmp_path):
    ann = sample.annotations.copy()
    ann["annotator"] = ann["annotator"].astype(str).replace({"dev": EVIL_NAME})
    items = sample.items.copy()
    items["vendor"] = items["vendor"].astype(str).replace({"quicklabel": "Quick<b>Label"})
    project = _project(sample, annotations=ann, items=items)
    with TagStore("sqlite://", item_ids=project.items["item_id"]) as store:
        g = Guidelines(project, store=store)
        g.revise((4, 9), "Old rule: **closed** tops.", author="lead")
        rev = g.revise((9, 4), "A **4** has an open top. " + EVIL, author="lead",
                       effective="2026-W04")
        g.revise("4", "Class four rule.", author="lead")
        text = wb.vendor_feedback(project, "Quick<b>Label", tmp_path / "q.html",
                                  store=store).read_text()
    doc = _assert_safe(text)
    assert "img" in doc.tags  # the example images, all data: URIs (checked above)
    section = text.split("<h2>4 vs 9</h2>", 1)[1].split("</section>", 1)[0]
    assert f"revision {rev}, applies from batch 2026-W04" in section
    assert "A <strong>4</strong> has an open top." in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in section
    assert "Old rule" not in text  # only the current revision
    assert "Class four rule." in text  # the worst class's guideline
    assert html_escape(EVIL_NAME) in text and EVIL_NAME not in text
    assert "Labeling feedback for Quick&lt;b&gt;Label" in text


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


# ---------------------------------------------------------------- nobody else's data


def _split(sample) -> Project:
    """The sample where every 4th item of each vendor is labelled by that vendor only."""
    people = {"northstar": {"ana", "ben", "cho"}, "quicklabel": {"dev", "eli", "fay"}}
    items, ann = sample.items, sample.annotations
    drop = False
    for vendor, own in people.items():
        solo = items.loc[items["vendor"] == vendor, "item_id"].iloc[::4]
        drop = drop | (ann["item_id"].isin(solo) & ~ann["annotator"].isin(own))
    return _project(sample, annotations=ann[~drop])


@pytest.mark.parametrize("vendor", ["quicklabel", "northstar"])
def test_no_other_vendors_data(sample, tmp_path, vendor):
    project = _split(sample)
    store = TagStore("sqlite://", item_ids=project.items["item_id"])
    card = wb.vendor_scorecard(project, store=store)
    people = card[card["level"] == "annotator"]
    others = sorted(set(card["vendor"]) - {vendor})
    assert others
    text = _without_images(wb.vendor_feedback(project, vendor, tmp_path / "r.html",
                                              store=store).read_text())
    mine = set(people.loc[people["vendor"] == vendor, "annotator"])
    theirs = set(people.loc[people["vendor"] != vendor, "annotator"])
    assert mine and theirs and not mine & theirs
    for name in others:
        assert name not in text
    for name in theirs:
        assert not re.search(rf"\b{re.escape(name)}\b", text), name
    for name in mine:
        assert re.search(rf"\b{re.escape(name)}\b", text), name
    ann = project.annotations.astype({"item_id": str, "annotator": str})
    labelled_by_me = set(ann.loc[ann["annotator"].isin(mine), "item_id"])
    only_theirs = set(ann.loc[ann["annotator"].isin(theirs), "item_id"]) - labelled_by_me
    assert only_theirs
    shown = set(re.findall(r"digit-\d+", text))
    assert shown and shown <= labelled_by_me and not shown & only_theirs
    # their own rows only: one vendor row and one per annotator per batch
    assert len(_parse(text).rows) == (card["vendor"] == vendor).sum()
    store.close()


# ---------------------------------------------------------------- bad input


def test_bad_input_is_clear_and_writes_nothing(project, store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SchemaError, match=r"unknown vendor 'acme'; the project's vendors are "
                                          r"\['northstar', 'quicklabel'\]"):
        wb.vendor_feedback(project, "acme", out / "a.html", store=store)
    with pytest.raises(SchemaError, match=r"unknown batch '2026-W09'; the project's batches "
                                          r"are \['2026-W01', .*'2026-W06'\]"):
        wb.vendor_feedback(project, "quicklabel", out / "a.html", batch="2026-W09",
                           store=store)
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing.* does not exist"):
        wb.vendor_feedback(project, "quicklabel", tmp_path / "missing" / "a.html",
                           store=store)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        wb.vendor_feedback(project, "quicklabel", out, store=store)
    with pytest.raises(TypeError, match="'vendor' parameter of vendor_feedback"):
        wb.vendor_feedback(project, None, out / "a.html", store=store)
    with pytest.raises(TypeError, match="'batch' parameter of vendor_feedback"):
        wb.vendor_feedback(project, "quicklabel", out / "a.html", batch=4, store=store)
    with pytest.raises(TypeError, match="'max_pairs' parameter of vendor_feedback"):
        wb.vendor_feedback(project, "quicklabel", out / "a.html", max_pairs=1.5, store=store)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "missing").exists()


def test_batch_the_vendor_did_not_label(sample, tmp_path):
    items = sample.items.copy()
    week7 = items["vendor"].eq("northstar") & items["batch"].eq("2026-W06")
    items.loc[week7, "batch"] = "2026-W07"  # a week only northstar labelled
    quick = {"dev", "eli", "fay"}
    ann = sample.annotations
    ann = ann[~(ann["item_id"].isin(items.loc[week7, "item_id"])
                & ann["annotator"].isin(quick))]
    project = _project(sample, annotations=ann, items=items)
    with TagStore("sqlite://", item_ids=project.items["item_id"]) as store:
        with pytest.raises(SchemaError, match=r"vendor 'quicklabel' delivered no labels in "
                                              r"batch '2026-W07'; their batches are "
                                              r"\['2026-W01', .*'2026-W06'\]"):
            wb.vendor_feedback(project, "quicklabel", tmp_path / "a.html", batch="2026-W07",
                               store=store)
        path = wb.vendor_feedback(project, "northstar", tmp_path / "n.html",
                                  batch="2026-W07", store=store)
    rows = _parse(path.read_text()).rows
    assert rows and {r["batch"] for r in rows} == {"2026-W07"}
    assert [p.name for p in tmp_path.iterdir()] == ["n.html"]
