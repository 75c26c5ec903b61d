"""Labeling guidelines: revisions in the store, safe rendering, vendor export, their effect."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import workbench as wb
from workbench.errors import ReadOnlyError, SchemaError
from workbench.guidelines import Guidelines, guideline_effect, render_html
from workbench.project import Project
from workbench.sample import SAMPLE_DIR
from workbench.tags import TagStore

EVIL = ("Watch the bar. <script>alert('x')</script> <img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(2)) ![remote](https://example.com/tracker.png)")


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


@pytest.fixture(scope="module")
def sample():
    return wb.load_sample()


def _project(sample, annotations=None) -> Project:
    """The sample as a new project object (its images under the sample folder)."""
    return Project.from_frames(sample.items, annotations=sample.annotations
                               if annotations is None else annotations,
                               classes=sample.classes, root=SAMPLE_DIR, name="digits")


@pytest.fixture
def project(sample):
    return _project(sample)


@pytest.fixture
def store(store_url, project):
    with TagStore(store_url, item_ids=project.items["item_id"]) as s:
        yield s


@pytest.fixture
def guidelines(project, store):
    return Guidelines(project, store=store)


# ---------------------------------------------------------------- API and history


def test_revise_current_history(guidelines):
    assert guidelines.current((1, 7)) is None
    first = guidelines.revise((1, 7), "A **7** has a bar on top.", author="lead",
                              reason="cho mixes them", effective="2026-W04",
                              examples={"digit-0001": "do", "digit-0002": "don't"})
    second = guidelines.revise("7|1", "A 7 has a bar; a 1 has none.", author="lead2")
    third = guidelines.revise("7", "Sevens.", author="lead")
    assert (first, second, third) == (1, 2, 3)
    cur = guidelines.current(["7", "1"])
    assert cur["revision_id"] == 2 and cur["author"] == "lead2" and cur["target"] == "1|7"
    assert cur["html"] == "<p>A 7 has a bar; a 1 has none.</p>\n"
    hist = guidelines.history("1|7")
    assert hist["revision_id"].tolist() == [1, 2]
    assert list(hist.columns) == ["revision_id", "target", "text", "author", "reason",
                                  "effective_batch", "effective_at", "created_at", "examples"]
    row = hist.iloc[0]
    assert row["text"] == "A **7** has a bar on top."
    assert row["effective_batch"] == "2026-W04"
    assert row["effective_at"] == pd.Timestamp("2026-01-19", tz="UTC")  # W04's batch_date
    assert row["examples"] == {"digit-0001": "do", "digit-0002": "don't"}
    assert guidelines.history()["target"].tolist() == ["1|7", "1|7", "7"]
    assert guidelines.targets() == ["1|7", "7"]
    assert guidelines.current(7)["text"] == "Sevens."


def test_effective_time_forms(guidelines):
    guidelines.revise("1|7", "x", author="a", effective="2026-02-01T12:00")
    guidelines.revise("1|7", "y", author="a", effective=pd.Timestamp("2026-02-01", tz="CET"))
    before = pd.Timestamp.now(tz="UTC")
    guidelines.revise("1|7", "z", author="a")
    hist = guidelines.history()
    assert hist["effective_at"].iloc[0] == pd.Timestamp("2026-02-01 12:00", tz="UTC")
    assert hist["effective_at"].iloc[1] == pd.Timestamp("2026-01-31 23:00", tz="UTC")
    assert hist["effective_at"].iloc[2] >= before - pd.Timedelta("1s")
    assert hist["effective_batch"].isna().all()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"target": "11"}, SchemaError, r"'11' is not a class of the project; its classes are "
                                    r"\['0', '1'"),
    ({"target": ("1", "cat")}, SchemaError, "'cat' is not a class"),
    ({"target": "1|1"}, SchemaError, "names the class '1' twice"),
    ({"target": ("1", "7", "9")}, SchemaError, "got 3 classes"),
    ({"target": 1.5}, TypeError, "'target' parameter"),
    ({"text": ""}, SchemaError, "text for '1|7' is empty"),
    ({"text": "  \n\t"}, SchemaError, "is empty"),
    ({"text": None}, TypeError, "'text' parameter"),
    ({"examples": {"digit-9999": "do"}}, SchemaError, r"\['digit-9999'\] are not in the "),
    ({"examples": {"digit-0001": "maybe"}}, SchemaError, "must be 'do' or"),
    ({"examples": ["digit-0001"]}, TypeError, "'examples' parameter"),
    ({"effective": "2026-W99"}, SchemaError, "neither a batch of the project"),
    ({"author": ""}, SchemaError, "author is empty"),
])
def test_bad_input_writes_nothing(guidelines, kwargs, error, match):
    args = {"target": ("1", "7"), "text": "A 7 has a bar.", "author": "lead", **kwargs}
    with pytest.raises(error, match=match):
        guidelines.revise(args.pop("target"), args.pop("text"), **args)
    assert guidelines.history().empty


def test_read_only_session_cannot_revise(guidelines, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    with pytest.raises(ReadOnlyError, match="revise guidelines"):
        guidelines.revise("1|7", "text", author="boss")
    assert guidelines.history().empty


def test_default_store_is_the_projects(sample, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB_URL", f"sqlite:///{tmp_path / 'g.db'}")
    project = _project(sample)
    wb.Guidelines(project).revise("4|9", "A 4 is open at the top.", author="lead")
    assert TagStore.for_project(project).guidelines.frame()["target"].tolist() == ["4|9"]
    with TagStore(f"sqlite:///{tmp_path / 'g.db'}") as other:  # the same database
        assert other.guidelines.frame()["text"].tolist() == ["A 4 is open at the top."]


# ---------------------------------------------------------------- sanitising


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]


def _parse(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    return parser


def test_render_html_shows_scripts_and_handlers_as_text():
    out = render_html(EVIL)
    parsed = _parse(out)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [a for a in parsed.attrs if a[1].startswith("on")]
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in out.replace("&#39;", "'")
    assert "onerror=alert(1)&gt;" in out  # shown as text
    assert "javascript:" not in [v for _, k, v in parsed.attrs if k == "href"]
    assert "https://example.com" not in out  # no image fetched from elsewhere
    md = render_html("# Title\n\n* **bold** and `code`\n\n| a | b |\n|---|---|\n| 1 | 7 |\n\n"
                     "[docs](https://example.org/guide)")
    assert "<h1>Title</h1>" in md and "<strong>bold</strong>" in md and "<table>" in md
    assert '<a href="https://example.org/guide" rel="noopener noreferrer">docs</a>' in md
    assert render_html(None) == ""
    with pytest.raises(TypeError, match="'text' parameter of render_html"):
        render_html(3)


# ---------------------------------------------------------------- export


def _revise_with_examples(guidelines):
    guidelines.revise((1, 7), EVIL, author="lead <b>x</b>", reason="why & how",
                      effective="2026-W04",
                      examples={"digit-0001": "do", "digit-0002": "don't"})
    guidelines.revise((4, 9), "A 4 is open.", author="lead")


def test_export_html_is_self_contained_and_escaped(guidelines, project, tmp_path):
    _revise_with_examples(guidelines)
    path = guidelines.export(tmp_path / "out" / "guidelines.html")
    assert path == tmp_path / "out" / "guidelines.html"
    text = path.read_text(encoding="utf-8")
    parsed = _parse(text)
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert not [a for a in parsed.attrs if a[1].lower().startswith("on")]
    srcs = [v for _, k, v in parsed.attrs if k == "src"]
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1]) == project.media_path(
        "digit-0001").read_bytes()
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert "default-src 'none'" in text
    assert "lead &lt;b&gt;x&lt;/b&gt;" in text and "why &amp; how" in text
    assert "1 vs 7" in text and "4 vs 9" in text and "batch 2026-W04" in text
    assert [p.name for p in path.parent.iterdir()] == ["guidelines.html"]  # atomic, no temp


def test_export_markdown_inlines_images_and_escapes_html(guidelines, tmp_path):
    _revise_with_examples(guidelines)
    text = guidelines.export(tmp_path / "g.md", format="md").read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text
    assert "&lt;script>alert('x')&lt;/script>" in text
    assert text.count("](data:image/png;base64,") == 2
    assert "https://example.com/tracker.png" in text  # the raw text is kept ...
    assert "![remote](https://" in text  # ... but the rendered HTML version drops it
    assert "## 1 vs 7" in text and "DO: digit-0001" in text and "DON'T: digit-0002" in text
    only = guidelines.export(tmp_path / "one.md", format="md", targets=[(4, 9)])
    assert "4 vs 9" in only.read_text() and "1 vs 7" not in only.read_text()


def test_export_bad_input_writes_nothing(guidelines, tmp_path):
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    with pytest.raises(SchemaError, match="no guideline to export"):
        guidelines.export(tmp_path / "g.html")
    guidelines.revise("1|7", "x", author="lead")
    with pytest.raises(ValueError, match="'format' parameter of Guidelines.export"):
        guidelines.export(tmp_path / "g.pdf", format="pdf")
    with pytest.raises(SchemaError, match="'x' is not a class"):
        guidelines.export(tmp_path / "g.html", targets=["x"])
    assert list(tmp_path.iterdir()) == []


def test_export_reads_images_inside_the_project_folder_only(tmp_path):
    root, outside = tmp_path / "proj", tmp_path / "secret.png"
    (root / "images").mkdir(parents=True)
    Image.new("L", (4, 4), 128).save(root / "images" / "ok.png")
    Image.new("L", (4, 4), 0).save(outside)
    (root / "images" / "link.png").symlink_to(outside)  # resolves outside the project
    (root / "images" / "notes.png").write_text("<script>not an image</script>")
    items = pd.DataFrame({"item_id": ["ok", "link", "notes", "gone"],
                          "label": ["a", "b", "a", "b"],
                          "filepath": ["images/ok.png", "images/link.png", "images/notes.png",
                                       "images/gone.png"]})
    project = Project.from_frames(items, classes=["a", "b"], root=root)
    with TagStore("sqlite://", item_ids=items["item_id"]) as store:
        g = Guidelines(project, store=store)
        g.revise("a|b", "A or B.", author="lead",
                 examples={"ok": "do", "link": "don't", "notes": "don't", "gone": "do"})
        text = g.export(tmp_path / "g.html").read_text()
    srcs = [v for _, k, v in _parse(text).attrs if k == "src"]
    assert len(srcs) == 1 and base64.b64decode(srcs[0].split(",", 1)[1]) == (
        root / "images" / "ok.png").read_bytes()
    assert text.count("(no image)") == 3 and "not an image" not in text


# ---------------------------------------------------------------- effect


def _fixed_after(sample, batch: str) -> pd.DataFrame:
    """The sample's annotations with cho's 1/7 confusion gone from ``batch`` on."""
    truth = pd.read_csv(SAMPLE_DIR / "truth.csv", dtype=str).set_index("item_id")["true_label"]
    ann = sample.annotations.copy()
    later = ann["item_id"].map(sample.items.set_index("item_id")["batch"]) >= batch
    sel = later & (ann["annotator"] == "cho") & ann["item_id"].map(truth).isin(["1", "7"])
    assert sel.sum() > 50
    ann.loc[sel, "label"] = ann.loc[sel, "item_id"].map(truth)
    return ann


@pytest.mark.parametrize("effective", ["2026-W04", "2026-01-19"])
def test_a_revision_followed_by_less_confusion_shows_a_significant_drop(sample, store_url,
                                                                         effective):
    project = _project(sample, _fixed_after(sample, "2026-W04"))
    with TagStore(store_url, item_ids=project.items["item_id"]) as store:
        rid = Guidelines(project, store=store).revise((1, 7), "A 7 has a bar.", author="lead",
                                                      effective=effective)
        out = guideline_effect(project, rid, store=store, n_boot=300)
    assert out.attrs["split_by"] == ("batch" if effective == "2026-W04" else "annotated_at")
    overall, cho = out.iloc[0], out.set_index("annotator").loc["cho"]
    assert overall["annotator"] == "all" and overall["target"] == "1|7"
    for row in (overall, cho):
        assert row["verdict"] == "helped" and row["p_value"] < 0.01
        assert row["confusion_after"] < row["confusion_before"]
        assert row["kappa_after"] > row["kappa_before"]
    assert cho["confusion_after_high"] < cho["confusion_before_low"]  # Wilson CIs apart
    assert cho["kappa_after_low"] > cho["kappa_before_high"]  # bootstrap CIs apart
    assert cho["confusion_before"] > 0.15 and cho["confusion_after"] == 0
    assert overall["summary"].startswith("The revision helped")


def test_unchanged_labels_show_no_significant_change(sample, store_url):
    project = _project(sample)
    with TagStore(store_url, item_ids=project.items["item_id"]) as store:
        rid = Guidelines(project, store=store).revise("1|7", "A 7 has a bar.", author="lead",
                                                      effective="2026-W04")
        out = guideline_effect(project, rid, store=store, n_boot=200)
    by = out.set_index("annotator")
    for name in ("all", "cho"):
        assert by.loc[name, "verdict"] == "no significant change"
        assert by.loc[name, "p_value"] > 0.05
    assert "did not measurably help" in by.loc["all", "summary"]


def test_effect_numbers_match_the_references(sample):
    sm = pytest.importorskip("statsmodels.stats.proportion")
    from sklearn.metrics import cohen_kappa_score

    project = _project(sample, _fixed_after(sample, "2026-W04"))
    with TagStore("sqlite://", item_ids=project.items["item_id"]) as store:
        rid = Guidelines(project, store=store).revise("1|7", "x", author="l",
                                                      effective="2026-W04")
        out = guideline_effect(project, rid, store=store, annotators=["cho"], n_boot=400,
                               seed=3)
        again = guideline_effect(project, rid, store=store, annotators="cho", n_boot=400,
                                 seed=3)
    pd.testing.assert_frame_equal(out, again)  # seeded
    row = out.iloc[0]
    assert out["annotator"].tolist() == ["all", "cho"]
    low, high = sm.proportion_confint(row["confused_before"], row["n_before"],
                                      method="wilson")
    assert row["confusion_before_low"] == pytest.approx(low)
    assert row["confusion_before_high"] == pytest.approx(high)
    _, p = sm.proportions_ztest([row["confused_before"], row["confused_after"]],
                                [row["n_before"], row["n_after"]])
    assert row["p_value"] == pytest.approx(p)
    # kappa against the majority consensus on cho's labels of items whose consensus is 1 or 7
    ann = project.annotations
    cons = wb.consensus(ann, classes=project.classes).set_index("item_id")["label"]
    batch = ann["item_id"].map(project.items.set_index("item_id")["batch"])
    mine = ann[(ann["annotator"] == "cho") & ann["item_id"].map(cons).isin(["1", "7"])
               & (batch < "2026-W04")]
    assert len(mine) == row["n_before"]
    expected = cohen_kappa_score(mine["item_id"].map(cons), mine["label"])
    assert row["kappa_before"] == pytest.approx(expected)
    assert row["kappa_before_low"] <= expected <= row["kappa_before_high"]


def test_effect_of_a_single_class_and_without_times(sample):
    ann = _fixed_after(sample, "2026-W04").drop(columns="annotated_at")
    project = _project(sample, ann)
    with TagStore("sqlite://", item_ids=project.items["item_id"]) as store:
        g = Guidelines(project, store=store)
        rid = g.revise("7", "Sevens have a bar.", author="l", effective="2026-01-19")
        out = guideline_effect(project, rid, store=store, n_boot=100, annotators="cho")
        assert out.attrs["split_by"] == "batch"  # batch_date stands in for the time
        assert out["target"].tolist() == ["7", "7"] and out["annotator"].tolist() == [
            "all", "cho"]
        assert out.iloc[0]["verdict"] == "helped" and out.iloc[0]["p_value"] < 0.001
        late = g.revise("1|7", "x", author="l", effective="2099-01-01")
        none = guideline_effect(project, late, store=store, n_boot=50)
        assert (none["verdict"] == "not enough labels").all() and np.isnan(
            none["p_value"]).all()
        with pytest.raises(SchemaError, match=r"no guideline revision 99 .* known revisions: "
                                              r"\[1, 2\]"):
            guideline_effect(project, 99, store=store)
        with pytest.raises(SchemaError, match=r"annotator\(s\) \['zed'\]"):
            guideline_effect(project, rid, store=store, annotators="zed")
        with pytest.raises(TypeError, match="revision_id"):
            guideline_effect(project, "1", store=store)
        with pytest.raises(ValueError, match="'n_boot' parameter of guideline_effect"):
            guideline_effect(project, rid, store=store, n_boot=-1)
        with pytest.raises(ValueError, match="'alpha' parameter of guideline_effect"):
            guideline_effect(project, rid, store=store, alpha=1.5)
        assert guideline_effect(project, g.history().iloc[0], store=store,
                                n_boot=10).attrs["revision_id"] == 1


def test_a_hostile_batch_name_is_escaped_and_indented_text_kept(tmp_path):
    bad = "<img src=x onerror=alert(1)>"
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "label": ["cat", "dog"] * 2,
                          "batch": [bad, bad, "w2", "w2"]})
    ann = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "annotator": "x",
                        "label": ["cat", "dog"] * 2,
                        "annotated_at": pd.Timestamp("2026-01-05", tz="UTC")})
    project = Project.from_frames(items=items, annotations=ann, classes=["cat", "dog"],
                                  name="n", root=tmp_path)
    g = Guidelines(project, store=TagStore(f"sqlite:///{tmp_path / 't.db'}",
                                           item_ids=items["item_id"]))
    g.revise("cat", "\n    indented code\n\nbody  \n", author="lead", reason="r",
             effective=bad)
    assert g.current("cat")["text"] == "    indented code\n\nbody"  # still a code block
    md = g.export(tmp_path / "g.md", format="md").read_text(encoding="utf-8")
    assert "<img" not in md and md.count("&lt;img src=x onerror=alert(1)>") == 2
    html = g.export(tmp_path / "g.html", format="html").read_text(encoding="utf-8")
    assert "<img src=x" not in html
