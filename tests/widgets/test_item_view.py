"""ItemView: one item large (content, escaping, keys, relabel tag, neighbours, text items),
and the gallery's "open" link that fills it.

Browser messages are simulated as the browser sends them: a custom message to the view's
``ItemKeys`` anywidget (``{"event": "key", "key": "ArrowRight", "item": id}``) or to the
gallery's ``CardClicks`` (``{"event": "open", "slot": i, "epoch": n}``).
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import ReadOnlyError
from workbench.selection import Selection
from workbench.tags import TagStore
from workbench.widgets.gallery import ItemGallery
from workbench.widgets.item_view import ItemView, top_classes

from .conftest import HOSTILE, _png

CLASSES = ["a", "b", "c"]
N = 12


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator-ana")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_USER_HEADER", raising=False)


def _frames(root):
    """12 items with images, a hostile metadata value and label, annotations with times,
    two runs with probabilities."""
    (root / "images").mkdir(parents=True)
    ids = [f"it-{i:02d}" for i in range(N)]
    for i, item in enumerate(ids):
        (root / "images" / f"{item}.png").write_bytes(_png(20 * i))
    labels = ["a", "b", "c"] * 4
    items = pd.DataFrame({"item_id": ids, "filepath": [f"images/{i}.png" for i in ids],
                          "label": labels,
                          "site": [HOSTILE if i == 0 else "north" for i in range(N)]})
    rng = np.random.default_rng(0)
    rows = []
    for run, noise in (("base", 0.5), ("cand", 0.2)):
        for i, item in enumerate(ids):
            p = rng.dirichlet([1, 1, 1]) * noise
            p[CLASSES.index(labels[i])] += 1 - noise
            if item == "it-04":  # confidently wrong: a label issue
                p = np.array([0.02, 0.9, 0.08])
            rows.append({"item_id": item, "run": run, "label": CLASSES[int(np.argmax(p))],
                         **{f"prob_{c}": float(v) for c, v in zip(CLASSES, p, strict=True)}})
    preds = pd.DataFrame(rows)
    ann = pd.DataFrame({
        "item_id": ["it-00", "it-00", "it-04", "it-04"],
        "annotator": ["ann<b>", "zed", "zed", "<script>x</script>"],
        "label": ["a", "b", "b", "c"],
        "annotated_at": ["2026-01-31T14:05:00Z", "2026-02-01T09:30:00Z",
                         "2026-02-02T10:00:00Z", "2026-02-03T11:15:00Z"]})
    return items, ann, preds


@pytest.fixture
def project(tmp_path):
    items, ann, preds = _frames(tmp_path / "proj")
    return wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                  classes=CLASSES, root=tmp_path / "proj", default_run="base",
                                  name="iv")


@pytest.fixture
def store(project, tmp_path):
    return TagStore(f"sqlite:///{tmp_path / 'tags.db'}", item_ids=project.items["item_id"])


def _send(view: ItemView, content: dict) -> None:
    """What the browser sends to the view's ItemKeys widget."""
    view.key_events._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                           "buffers": []})


def _key(view: ItemView, key: str, item=None) -> None:
    _send(view, {"event": "key", "key": key,
                 "item": view.item_id if item is None else item})


def test_top_classes_orders_by_probability():
    row = pd.Series({"prob_a": 0.2, "prob_b": 0.5, "prob_c": 0.3})
    assert top_classes(row, CLASSES) == [("b", 0.5), ("c", 0.3), ("a", 0.2)]


def test_content_of_an_item(project, store):
    store.add(["it-04"], "check", author="bob", reason="blurry <i>scan</i>")
    store.remove(["it-04"], "check", author="bob")
    store.add(["it-04"], "hard", author="bob")
    sel = Selection()
    sel.select(project.items["item_id"].tolist())
    view = ItemView(project, sel, store=store)
    assert view.layout.display == "none"  # nothing open yet
    view.show("it-04")
    assert view.layout.display is None and view.item_id == "it-04"
    assert "<b>it-04</b>" in view.title.value and "5 of 12" in view.title.value
    assert bytes(view.image.value) == (project.root / "images" / "it-04.png").read_bytes()
    assert view.image.layout.display is None and view.text.layout.display == "none"
    d = view.details.value
    assert "dataset label: <b>b</b>" in d
    # every annotator with time, escaped
    assert "&lt;script&gt;x&lt;/script&gt;" in d and "<script>" not in d
    assert "2026-02-02 10:00" in d and "2026-02-03 11:15" in d
    # every run's top 3 with probabilities (formatted by _format.percent)
    assert "<td>base</td>" in d and "<td>cand</td>" in d
    assert "<b>b</b> 90.0%" in d and "<b>c</b> 8.0%" in d and "<b>a</b> 2.0%" in d
    # label issue score: it-04 is confidently predicted 'b', labelled 'b': not flagged; the
    # score and rank are there either way
    assert "wb-item-label-issue" in d and "label quality" in d and "rank" in d
    assert "Label issue (run base)" in d
    assert "wb-item-data-issues" in d
    tags = view.tags_html.value
    assert "<b>hard</b>" in tags and "<b>check</b>" in tags  # current + history
    assert "removed <b>check</b>" in tags and "added <b>hard</b>" in tags
    assert "blurry &lt;i&gt;scan&lt;/i&gt;" in tags and "<i>scan</i>" not in tags
    current = tags.split("<ul")[0]
    assert "check" not in current  # removed: only in the history


def test_label_issue_flagged_and_computed_once(project, store, monkeypatch):
    import workbench.label_quality as lq

    calls = []
    real = lq.label_issues

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(lq, "label_issues", counting)
    items = project.items.copy()
    items.loc[items["item_id"] == "it-04", "label"] = "a"  # the model says b at 90%
    items2, ann, preds = items, project.annotations, project.predictions
    proj = wb.Project.from_frames(items=items2, annotations=ann, predictions=preds,
                                  classes=CLASSES, root=project.root, default_run="base")
    view = ItemView(proj, store=TagStore(item_ids=proj.items["item_id"]))
    view.show("it-04")
    assert "flagged as a likely label error" in view.details.value
    assert "suggested: <b>b</b>" in view.details.value
    view.show("it-05")
    view.show("it-06")
    assert len(calls) == 1


def test_hostile_metadata_and_labels_are_escaped(tmp_path):
    items, ann, preds = _frames(tmp_path / "p")
    bad = "<img src=y onerror=alert(2)>"
    classes = ["a", "b", bad]
    items["label"] = items["label"].replace("c", bad)
    ann["label"] = ann["label"].replace("c", bad)
    preds["label"] = preds["label"].replace("c", bad)
    preds = preds.rename(columns={"prob_c": f"prob_{bad}"})
    proj = wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                  classes=classes, root=tmp_path / "p", default_run="base")
    view = ItemView(proj, store=TagStore(item_ids=proj.items["item_id"]))
    view.show("it-00")  # hostile site
    html = view.details.value + view.title.value + view.tags_html.value
    assert HOSTILE not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "ann&lt;b&gt;" in html
    view.show("it-02")  # hostile label
    html = view.details.value
    assert "<img" not in html and "&lt;img src=y onerror=alert(2)&gt;" in html


def test_next_prev_through_the_selection_and_keys(project, store):
    sel = Selection()
    sel.select(["it-01", "it-03", "it-07"])
    view = ItemView(project, sel, store=store)
    view.show("it-03")
    _key(view, "ArrowRight")
    assert view.item_id == "it-07" and "3 of 3" in view.title.value
    assert view.next_button.disabled and not view.prev_button.disabled
    _key(view, "ArrowRight")  # clipped at the end
    assert view.item_id == "it-07"
    _key(view, "ArrowLeft", item="it-03")  # stale: the browser still showed it-03
    assert view.item_id == "it-07"
    view.prev()
    view.prev()
    assert view.item_id == "it-01" and view.prev_button.disabled
    view.prev_button.click()
    assert view.item_id == "it-01"
    view.next_button.click()
    assert view.item_id == "it-03"
    sel.select(["it-03", "it-09"])  # a new selection: move through it
    view.next()
    assert view.item_id == "it-09"
    view.close_item()
    assert view.item_id is None and view.layout.display == "none"


def test_relabel_key_writes_a_tag(project, store):
    sel = Selection()
    sel.select(["it-01", "it-02"])
    view = ItemView(project, sel, store=store)
    view.show("it-02")
    _key(view, "r")
    tags = store.tags(["it-02"])
    assert tags["tag"].tolist() == ["relabel"] and tags["author"].tolist() == ["curator-ana"]
    assert store.history("it-02")["context"].iloc[0]["view"] == "ItemView"
    assert "<b>relabel</b>" in view.tags_html.value
    assert store.tags(["it-01"]).empty  # only the item shown
    assert not any("wb-readonly" in c._dom_classes for c in view.children[0].children)


def test_relabel_refused_in_read_only_session(project, store, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    view = ItemView(project, store=store)
    view.show("it-02")
    header = view.children[0].children
    assert view.relabel_button not in header  # not built into the view
    assert any("wb-readonly" in c._dom_classes for c in header)
    _key(view, "r")  # a crafted message still arrives: refused in the kernel
    assert store.tags(["it-02"]).empty
    assert "ReadOnlyError" in view.error_box.value
    view.raise_errors = True
    with pytest.raises(ReadOnlyError, match="read-only"):
        view.tag_relabel()
    assert store.history().empty


def test_no_embeddings_shows_a_note(project, store):
    view = ItemView(project, store=store)
    view.show("it-01")
    assert view.neighbour_ids == []
    assert "no embeddings" in view.neighbours_note.value
    assert "workbench embed" in view.neighbours_note.value
    assert all(c[0].layout.display == "none" for c in view.neighbour_cards)


def test_neighbours_with_embeddings(tmp_path):
    if "embeddings" not in inspect.signature(wb.Project.from_frames).parameters:
        pytest.skip("Project.from_frames(..., embeddings=) is not there yet (issue 14, H1)")
    items, ann, preds = _frames(tmp_path / "p")
    ids = items["item_id"].tolist()
    # items on a line: it-05's neighbours are it-04/it-06, then it-03/it-07, ...
    emb = pd.DataFrame({"item_id": ids, "e0": np.arange(N, dtype=float) ** 1.01,
                        "e1": np.zeros(N)})
    proj = wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                  classes=CLASSES, root=tmp_path / "p", default_run="base",
                                  embeddings=emb)
    assert proj.has_embeddings
    view = ItemView(proj, store=TagStore(item_ids=proj.items["item_id"]))
    view.show("it-05")
    assert len(view.neighbour_ids) == 8 and "it-05" not in view.neighbour_ids
    assert set(view.neighbour_ids[:2]) == {"it-04", "it-06"}
    assert set(view.neighbour_ids) == {f"it-{i:02d}" for i in range(1, 10)} - {"it-05"}
    shown = [c for c in view.neighbour_cards if c[0].layout.display is None]
    assert len(shown) == 8
    first = view.neighbour_ids[0]
    label = proj.items.set_index("item_id").at[first, "label"]
    assert f"<b>{first}</b>" in shown[0][2].value and f"label: <b>{label}</b>" in shown[0][2].value
    assert bytes(shown[0][1].value).startswith(b"\x89PNG")
    _send(view, {"event": "open", "slot": 0, "item": "it-05"})  # a click on a neighbour card
    assert view.item_id == first


def test_text_item(tmp_path):
    text = "Dear <b>team</b>,\nthe line & the \"quote\"\n" + "long " * 400
    items = pd.DataFrame({"item_id": ["t1", "t2"], "text": [text, "short one"],
                          "label": ["spam", "ham"]})
    preds = pd.DataFrame({"item_id": ["t1", "t2"], "run": ["m", "m"], "label": ["spam", "ham"],
                          "confidence": [0.9, 0.6]})
    proj = wb.Project.from_frames(items=items, predictions=preds, classes=["ham", "spam"])
    assert proj.is_text
    view = ItemView(proj)
    view.show("t1")
    assert view.image.layout.display == "none" and view.text.layout.display is None
    body = view.text.value
    assert "<b>team</b>" not in body and "&lt;b&gt;team&lt;/b&gt;" in body
    assert "the line &amp; the" in body and "overflow:auto" in body
    assert body.count("long") == 400  # all of it, in a scrollable box
    assert "<b>spam</b> 90.0%" in view.details.value  # no probabilities: label + confidence


def test_gallery_open_link_opens_the_item_view(project, store):
    sel = Selection()
    gallery = ItemGallery(project, sel, page_size=6)
    sel.select(project.items["item_id"].tolist())
    assert gallery.item_view is None
    assert all("wb-card-open" in c.caption.value for c in gallery.cards if c.item_id)
    slot = 2
    item = gallery.cards[slot].item_id
    clicks = gallery.card_clicks
    content = {"event": "open", "slot": slot, "epoch": clicks.epoch}
    clicks._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})
    view = gallery.item_view
    assert isinstance(view, ItemView) and view.item_id == item
    assert gallery.picked == ()  # opening picks nothing
    assert view in gallery.item_view_box.children and gallery.item_view_box in gallery.children
    # left/right follow the gallery's order (model errors first), across pages
    order = list(gallery._ids)
    view.next()
    assert view.item_id == order[order.index(item) + 1]
    stale = {"event": "open", "slot": 0, "epoch": clicks.epoch - 1}
    clicks._handle_msg({"content": {"data": {"method": "custom", "content": stale}},
                        "buffers": []})
    assert view.item_id == order[order.index(item) + 1]
    gallery.open_item("it-11")
    assert view.item_id == "it-11" and gallery.item_view is view  # one view, reused


def test_item_view_refuses_detection_and_bad_input(det_project, project):
    with pytest.raises(ValueError, match="detection"):
        ItemView(det_project)
    with pytest.raises(TypeError, match="'selection' parameter of ItemView"):
        ItemView(project, selection=["it-01"])
    view = ItemView(project)
    with pytest.raises(ValueError, match="'nope' is not in the project"):
        view.show("nope")


def test_data_issues_shown_for_an_exact_duplicate(tmp_path):
    items, ann, preds = _frames(tmp_path / "p")
    images = tmp_path / "p" / "images"
    (images / "it-07.png").write_bytes((images / "it-03.png").read_bytes())  # same file
    proj = wb.Project.from_frames(items=items, annotations=ann, predictions=preds,
                                  classes=CLASSES, root=tmp_path / "p", default_run="base")
    view = ItemView(proj, store=TagStore(item_ids=proj.items["item_id"]))
    view.show("it-03")
    html = view.details.value.split("wb-item-data-issues")[1]
    assert "exact_duplicate" in html and "it-07" in html and "100.0%" in html
    if not getattr(proj, "has_embeddings", False):
        assert "Only exact duplicates were checked" in html
    view.show("it-04")
    assert "none found" in view.details.value.split("wb-item-data-issues")[1]


def test_an_error_while_moving_by_key_stays_shown(project, store, monkeypatch):
    sel = Selection()
    sel.select(["it-03", "it-07"])
    view = ItemView(project, sel, store=store)
    view.show("it-03")
    details = view._details

    def broken(item_id):
        if item_id == "it-07":
            raise RuntimeError("cannot read it-07")
        return details(item_id)

    monkeypatch.setattr(view, "_details", broken)
    _key(view, "ArrowRight")  # the key handler and the render it calls are both guarded
    assert view.item_id == "it-07"
    assert view.error_box.layout.display is None and "cannot read it-07" in view.error_box.value
    assert view.details.value == ""  # not it-03's details under it-07's title
    _key(view, "ArrowLeft")
    assert view.item_id == "it-03" and view.error_box.value == ""
    assert "it-03" in view.title.value and view.details.value


def test_data_issues_on_a_project_with_few_embedded_items(tmp_path):
    items, ann, preds = _frames(tmp_path / "p")
    items = items.iloc[:4]
    emb = pd.DataFrame({"item_id": items["item_id"], "e0": [0.0, 1.0, 2.0, 2.0],
                        "e1": [0.0, 1.0, 0.0, 0.0]})
    proj = wb.Project.from_frames(items=items, classes=CLASSES, root=tmp_path / "p",
                                  embeddings=emb)
    view = ItemView(proj, store=TagStore(item_ids=proj.items["item_id"]))
    view.show("it-02")
    html = view.details.value.split("wb-item-data-issues")[1]
    assert "No data-issue scores" not in html and "parameter" not in html
    assert "near_duplicate" in html and "it-03" in html  # k = 3, not the default 10
