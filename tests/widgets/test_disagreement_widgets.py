"""Disagreement widgets: clicks (simulated plotly/ipywidgets callbacks) drive the Selection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from plotly.callbacks import Points

import workbench as wb
from workbench import results
from workbench.agreement import disagreeing_items
from workbench.selection import Selection
from workbench.widgets.agreement_matrix import AgreementMatrix
from workbench.widgets.annotator_table import AnnotatorTable
from workbench.widgets.confused_pairs import ConfusedPairs
from workbench.widgets.disagreement_explorer import DisagreementExplorer
from workbench.widgets.label_issue_list import LabelIssueList

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = REPO / "data" / "sample"
    if not (root / "items.csv").exists():
        root = tmp_path_factory.mktemp("sample")
        wb.build_sample(root)
    return wb.open_project(root)


def _points(*inds):
    return Points(point_inds=list(inds), xs=[], ys=[], trace_name="", trace_index=1)


class Counter:
    def __init__(self, selection):
        self.n = 0
        selection.observe(self, names=["ids"])

    def __call__(self, change):
        self.n += 1


def test_agreement_matrix_click_selects_disagreements(project):
    sel = Selection()
    calls = Counter(sel)
    m = AgreementMatrix(project, sel)
    names = sorted(project.annotators)
    k = len(names)
    assert list(m.figure.data[0].x) == names and len(m.figure.data[1].x) == k * k
    # click the grid point of cell (row 'ana', column 'ben')
    i, j = names.index("ana"), names.index("ben")
    m._on_click(m.figure.data[1], _points(i * k + j))
    assert m.cell == ("ana", "ben")
    assert sel.ids == tuple(disagreeing_items(project.annotations, "ana", "ben"))
    assert sel.source == "AgreementMatrix" and calls.n == 1
    assert len(m.figure.layout.shapes) == 1
    # the same click again changes nothing (no notification loop)
    m._on_click(m.figure.data[1], _points(i * k + j))
    assert calls.n == 1
    # the diagonal: the annotator against everyone
    d = names.index("eli")
    m._on_click(m.figure.data[1], _points(d * k + d))
    assert sel.ids == tuple(disagreeing_items(project.annotations, "eli"))
    # a selection from elsewhere clears the cell highlight
    sel.select(["digit-0001"], source="other")
    assert m.cell is None and len(m.figure.layout.shapes) == 0
    # the matrix shows kappa by default, agreement on request
    kappa = m.matrix.loc["ana", "ben"]
    m.value = "agreement"
    assert m.matrix.loc["ana", "ben"] != kappa and 0 <= m.matrix.loc["ana", "ben"] <= 1
    assert "AgreementMatrix(" in repr(m)


def test_agreement_matrix_click_errors_are_shown(project):
    m = AgreementMatrix(project.annotations)
    m.items_of = None  # break the lookup: the callback must report, not swallow
    m._on_click(m.figure.data[1], _points(1))
    assert "Error" in m.error_box.value and m.error_box.layout.display is None


def test_confused_pairs_click(project):
    sel = Selection()
    c = ConfusedPairs(project, sel)
    classes = project.classes
    k = len(classes)
    i, j = classes.index("1"), classes.index("7")
    c._on_click(c.figure.data[1], _points(i * k + j))
    pairs = wb.confused_pairs(project.annotations, classes=classes)
    expected = pairs[(pairs["class_a"] == "1") & (pairs["class_b"] == "7")]["item_ids"].item()
    assert sel.ids == tuple(sorted(expected)) and c.cell == ("1", "7")
    assert c.matrix.loc["7", "1"] == c.matrix.loc["1", "7"] > 0
    # every selected item really has a 1 and a 7 among its labels
    ann = project.annotations[project.annotations["item_id"].isin(sel.ids)]
    per_item = ann.groupby("item_id")["label"].agg(set)
    assert all({"1", "7"} <= s for s in per_item)
    # the diagonal does nothing
    before = sel.ids
    c._on_click(c.figure.data[1], _points(i * k + i))
    assert sel.ids == before
    tops = [b.description for b in c.top_buttons if b.layout.display is None]
    assert len(tops) == 5 and tops[0].startswith(("1 ↔ 7", "4 ↔ 9"))
    first = c.pairs.iloc[0]
    assert "item_ids" not in c.pairs.columns  # read from the cache when a pair is clicked
    c.top_buttons[0].click()  # the list selects like the cell
    assert c.cell == (first["class_a"], first["class_b"])
    full = results.confused_pairs(project)
    assert set(c.selection.ids) == set(full.iloc[0]["item_ids"]) == set(
        c.items_of(first["class_a"], first["class_b"]))


def test_annotator_table_click(project):
    sel = Selection()
    t = AnnotatorTable(project, sel)
    assert [b.description for b in t.buttons][-1] == "eli"  # careless annotator last
    t.buttons[-1].click()
    assert t.annotator == "eli"
    assert sel.ids == tuple(disagreeing_items(project.annotations, "eli"))
    assert t.buttons[-1].button_style == "info"
    sel.clear(source="test")
    assert t.annotator is None and t.buttons[-1].button_style == ""


def test_annotator_table_pages_a_crowd():
    import numpy as np

    rng = np.random.default_rng(3)
    names = [f"crowd{k:02d}" for k in range(40)]
    rows = [(f"i{i}", a, str(rng.integers(0, 3))) for i in range(60)
            for a in rng.choice(names, size=5, replace=False)]
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    sel = Selection()
    t = AnnotatorTable(ann, sel, page_size=15)
    assert len(t.buttons) == 15 and "page 1 of 3 (40 annotators)" in t.table.page_label.value
    t.table.next_button.click()
    t.table.next_button.click()
    assert t.page == 2 and len(t.buttons) == 10 and t.table.next_button.disabled
    expected = t.quality["annotator"].iloc[31]
    t.buttons[1].click()  # row 31 of the table
    assert t.annotator == expected and t.buttons[1].button_style == "info"
    assert sel.ids == tuple(disagreeing_items(ann, expected))
    t.table.prev_button.click()
    assert all(b.button_style == "" for b in t.buttons)  # the selected one is on page 3
    assert [b.description for b in t.buttons] == t.quality["annotator"].iloc[15:30].tolist()


def test_label_issue_list_pages_and_clicks(project):
    sel = Selection()
    li = LabelIssueList(project, sel, page_size=5)
    assert li.frame["is_issue"].all() and li.frame["label_quality"].is_monotonic_increasing
    first = li.frame["item_id"].iloc[0]
    li.rows[0].button.click()
    assert sel.ids == (first,) and li.item_id == first
    li.next_button.click()
    assert li.page == 1 and li.rows[0].button.description == li.frame["item_id"].iloc[5]
    li.select_page_button.click()
    assert sel.ids == tuple(sorted(li.frame["item_id"].iloc[5:10]))
    li.select_all_button.click()
    assert len(sel.ids) == int(li.issues["is_issue"].sum())
    li.go(10_000)
    assert li.page == li.n_pages - 1
    li.issues_only = False
    assert len(li.frame) == len(li.issues) and li.page == 0


def test_label_issue_list_without_probabilities(project):
    no_probs = project.predictions.drop(columns=project.prob_columns)
    p = wb.Project.from_frames(items=project.items, annotations=project.annotations,
                               predictions=no_probs, classes=project.classes)
    li = LabelIssueList(p)
    assert li.unavailable and "probabilities" in li.message.value
    assert len(li.frame) == 0 and li.select_all_button.disabled


def test_explorer_links_everything(project):
    sel = Selection()
    app = DisagreementExplorer(project, sel)
    assert {"wb-disagreement-explorer", "wb-ready"} <= set(app._dom_classes)
    assert "wb-status" in app.status._dom_classes
    assert "No selection" in app.status.value
    assert app.summary["n_annotators"] == len(project.annotators)
    app.annotators.select_annotator("eli")
    assert f"{len(sel.ids)} items selected" in app.status.value
    if app.gallery is not None:
        assert set(app.gallery.selection.ids) == set(sel.ids)
    # a click in one view clears the others' highlights
    app.matrix.select_pair("cho", "dev")
    assert app.annotators.annotator is None and app.matrix.cell == ("cho", "dev")
    app.clear_button.click()
    assert sel.ids is None and "No selection" in app.status.value
    # agreement by another column
    app.slice_picker.value = "vendor"
    assert "quicklabel" in [b.description for b in app.slice_buttons]
    assert "<b>vendor</b>" in app.slice_table.value


def test_explorer_without_annotations(project):
    p = wb.Project.from_frames(items=project.items, predictions=project.predictions,
                               classes=project.classes)
    app = DisagreementExplorer(p)
    assert "wb-ready" in app._dom_classes
    assert "no annotations" in app.header.value
    assert len(app.issues.issues) == len(project.items)


def test_widgets_accept_annotation_frames():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["x", "y"] * 2,
                        "label": ["1", "2", "1", "1"]}).astype("str")
    sel = Selection()
    m = AgreementMatrix(ann, sel)
    m.select_pair("x", "y")
    assert sel.ids == ("a",)
    c = ConfusedPairs(ann, sel)
    assert c.select_pair("2", "1") == ["a"]
    with pytest.raises(TypeError, match="Expected a workbench Project or an annotations"):
        AgreementMatrix(42)


def test_heatmaps_ship_their_data_in_the_initial_state(project):
    # Voila creates the view after the cell ran: the figure's synced initial state must
    # already hold the heatmap, not the placeholder it was constructed with.
    for widget in (AgreementMatrix(project), ConfusedPairs(project)):
        data = widget.figure._widget_data
        assert len(data) == 2 and data[0]["type"] == "heatmap"
        assert len(data[0]["z"]) == len(widget._labels) > 1
        assert len(data[1]["x"]) == len(widget._labels) ** 2
        assert widget.figure._widget_layout["xaxis"]["type"] == "category"


def test_heatmaps_state_follows_changes_and_fits_the_cells(project):
    m = AgreementMatrix(project)
    k = len(m._labels)
    layout = m.figure._widget_layout
    assert layout["xaxis"]["range"] == [-0.5, k - 0.5]  # no empty band around the cells
    assert layout["yaxis"]["range"] == [k - 0.5, -0.5]
    kappa = [row[:] for row in m.figure._widget_data[0]["z"]]
    m.value = "agreement"  # the toggle: a view opened later shows the new values
    assert m.figure._widget_data[0]["z"] != kappa
    assert m.figure._widget_data[0]["z"][0][1] == pytest.approx(m.matrix.iat[0, 1])
    m.select_pair(m._labels[0], m._labels[1])
    assert len(m.figure._widget_layout["shapes"]) == 1
    c = ConfusedPairs(project)
    c.value = "rate"
    z = c.figure._widget_data[0]["z"]
    assert max(v for row in z for v in row if v == v) <= 1.0
    assert c.figure._config.get("displayModeBar") is False


HOSTILE_NAME = "<img src=q onerror=alert(4)>"


def test_annotator_names_with_markup_are_shown_as_text():
    # "<b>x</b>" labels with others; HOSTILE_NAME shares no item with anyone
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "b", "c"],
                        "annotator": ["<b>x</b>", "y", "<b>x</b>", "y", HOSTILE_NAME],
                        "label": ["1", "2", "1", "1", "1"]}).astype("str")
    sel = Selection()
    m = AgreementMatrix(ann, sel)
    assert "Annotators sharing no item" in m.caption.value
    assert "<img" not in m.caption.value and "&lt;img src=q" in m.caption.value
    shown = list(m.figure._widget_data[0]["x"])
    assert "&lt;b&gt;x&lt;/b&gt;" in shown and "<b>x</b>" not in shown
    assert not any("<" in str(v) for v in m.figure._widget_data[1]["customdata"])
    i, j = m._labels.index("<b>x</b>"), m._labels.index("y")
    m._on_click(m.figure.data[1], _points(i * len(m._labels) + j))
    assert m.cell == ("<b>x</b>", "y") and sel.ids == ("a",)
    t = AnnotatorTable(ann, sel)
    assert "<img" not in t.caption.value
    assert {b.description for b in t.buttons} == {"<b>x</b>", "y", HOSTILE_NAME}


def test_label_issue_cells_read_plainly(project):
    from workbench.widgets.label_issue_list import _agreeing, _quality

    assert _quality(5e-07) == "&lt; 0.01" and _quality(0.456) == "0.46"
    assert _quality(float("nan")) == "–"
    assert _agreeing(0.0, 3) == "0 of 3" and _agreeing(2 / 3, 3) == "2 of 3"
    assert _agreeing(None, 3) == "–" and _agreeing(0.5, 0) == "50%"
    li = LabelIssueList(project)
    top = li.frame.iloc[0]
    assert li.rows[0].cells[2].value == _agreeing(top["annotator_agreement"], top["n_labels"])
    assert "0 = surely wrong" in li.message.value


def test_explorer_status_counts_items_in_plain_words(project):
    app = DisagreementExplorer(project)
    share = f"{100 * app.summary['percent_agreement']:.1f}%"
    assert f"same label <b>{share}</b> of the time" in app.header.value
    app.selection.select(["digit-0001"], source="test", description="one")
    assert app.status.value.startswith("<span>1 item selected: one")
    app.selection.select(["digit-0001", "digit-0002"], source="test")
    assert "2 items selected" in app.status.value
    actions = [c for c in app.children if "wb-actions" in getattr(c, "_dom_classes", ())]
    assert len(actions) == 1 and app.gallery not in actions[0].children
    assert app.children[-1] is app.gallery


def test_agreement_by_slice_rows_select_their_disagreements(project):
    app = DisagreementExplorer(project, slice_by="batch")
    frame = app.slice_frame
    assert list(frame["batch"]) == [b.description for b in app.slice_buttons]
    worst = frame.loc[frame["fleiss_kappa"].idxmin(), "batch"]
    assert f"batch={worst}" in app.slice_table.value  # the dip is named
    k = list(frame["batch"]).index(worst)
    app.slice_buttons[k].click()
    ids = set(app.selection.ids)
    items = project.items.set_index("item_id")
    n_labels = project.annotations.groupby("item_id")["label"].nunique()
    in_batch = set(items.index[items["batch"] == worst])
    assert ids and ids == {i for i in in_batch if n_labels.get(i, 0) > 1}
    assert app.slice_buttons[k].button_style == "info"
    assert f"batch={worst}, annotators disagree" in app.status.value
    app.annotators.select_annotator("eli")  # a selection from elsewhere clears the mark
    assert app.slice_buttons[k].button_style == ""


def test_agreement_by_slice_pages_many_values():
    import numpy as np

    rng = np.random.default_rng(5)
    ids = [f"i{k:03d}" for k in range(400)]
    items = pd.DataFrame({"item_id": ids, "batch": [f"b{k % 20:02d}" for k in range(400)]})
    ann = pd.DataFrame([(i, a, str(rng.integers(0, 3))) for i in ids for a in ("x", "y", "z")],
                       columns=["item_id", "annotator", "label"])
    project = wb.Project.from_frames(items=items, annotations=ann, name="many")
    app = DisagreementExplorer(project, slice_by="batch")
    frame = app.slice_frame
    assert len(frame) == 20 and len(app.slice_buttons) == 15
    assert "page 1 of 2" in app.slice_rows.page_label.value
    assert app.slice_rows.headers[0].value == "<b>batch</b>"
    app.slice_rows.next_button.click()
    assert [b.description for b in app.slice_buttons] == list(frame["batch"].iloc[15:])
    app.slice_buttons[2].click()  # row 17 of the table
    value = frame["batch"].iloc[17]
    n_labels = ann.groupby("item_id")["label"].nunique()
    assert set(app.selection.ids) == {i for i in items.loc[items["batch"] == value, "item_id"]
                                      if n_labels[i] > 1}
    assert app.slice_buttons[2].button_style == "info"
    app.slice_rows.prev_button.click()
    assert all(b.button_style == "" for b in app.slice_buttons)  # the mark is on page 2
    app.slice_rows.next_button.click()
    assert app.slice_buttons[2].button_style == "info"
