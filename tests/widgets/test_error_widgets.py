"""Error widgets without a browser: clicks are simulated through the adapters and buttons,
then the shared selection, the other widgets and the gallery are checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plotly.callbacks import Points

import workbench as wb
from workbench.selection import Selection
from workbench.widgets import (
    ConfusionMatrix,
    ErrorExplorer,
    ItemGallery,
    RunComparison,
    SliceTable,
)
from workbench.widgets._adapters import grid_point_to_cell, points_to_ids

from .conftest import HOSTILE


def _points(*inds):
    return Points(point_inds=list(inds), xs=[], ys=[], trace_name="grid", trace_index=1)


def _click_cell(cm: ConfusionMatrix, true: str, pred: str) -> None:
    k = len(cm.classes)
    i = cm.classes.index(true) * k + cm.classes.index(pred)
    cm._on_click(cm.figure.data[1], _points(i), None)


class _Counter:
    def __init__(self, selection):
        self.n = 0
        selection.observe(self, names=["ids"])

    def __call__(self, change):
        self.n += 1


# ---- adapters -------------------------------------------------------------------------


def test_adapters_translate_points():
    assert points_to_ids(_points(2, 0), ["a", "b", "c"]) == ["c", "a"]
    assert points_to_ids([5], ["a"]) == []
    assert grid_point_to_cell(_points(5), ["x", "y", "z"]) == ("y", "z")
    assert grid_point_to_cell(_points(), ["x"]) is None
    assert grid_point_to_cell(_points(99), ["x"]) is None
    assert grid_point_to_cell(_points([2, 0]), ["x", "y", "z"]) == ("z", "x")  # heatmap


# ---- ConfusionMatrix ------------------------------------------------------------------


def test_confusion_click_selects_cell_items(sample_project):
    sel = Selection()
    cm = ConfusionMatrix(sample_project, sel)
    errors = sample_project.errors()
    table = wb.confusion_table(errors)
    # the off-diagonal cell with the most items
    off = table.to_numpy().copy()
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(off.argmax(), off.shape)
    t, p = table.index[i], table.columns[j]
    counter = _Counter(sel)
    _click_cell(cm, t, p)
    assert sel.ids == tuple(sorted(wb.cell_items(errors, t, p)))
    assert len(sel.ids) == table.loc[t, p] > 0
    assert sel.source == "ConfusionMatrix" and sel.description == f"true {t}, predicted {p}"
    assert cm.cell == (t, p)
    shape = cm.figure.layout.shapes[0]
    assert (shape.x0 + 0.5, shape.y0 + 0.5) == (j, i)  # the selected cell is outlined
    assert counter.n == 1  # one notification, no echo
    _click_cell(cm, t, p)
    assert counter.n == 1  # same selection again: nobody notified
    cm.figure.data[0]._dispatch_on_click(_points([int(j), int(i)]), None)  # on the heatmap
    assert cm.cell == (p, t) and len(sel.ids) == table.loc[p, t]


def test_confusion_matches_table_and_options(sample_project):
    errors = sample_project.errors()
    cm = ConfusionMatrix(errors, hide_diagonal=True, normalize="true")
    z = np.array(cm.figure.data[0].z, dtype=float)
    k = len(sample_project.classes)
    assert np.isnan(np.diag(z)).all()
    rates = wb.confusion_table(errors, normalize="true").to_numpy()
    off = ~np.eye(k, dtype=bool)
    np.testing.assert_allclose(z[off], rates[off])
    assert cm.figure.data[0].text[0][1] == f"{rates[0, 1]:.2f}"
    cm.diag_box.value = False  # the checkbox drives the trait and the view
    cm.norm_box.value = "counts"
    assert cm.hide_diagonal is False and cm.normalize is None
    z = np.array(cm.figure.data[0].z, dtype=float)
    np.testing.assert_array_equal(z, wb.confusion_table(errors).to_numpy())
    assert cm.figure.data[0].text[0][0] == str(int(z[0, 0]))
    assert len(cm.figure.data[1].x) == k * k  # the transparent click grid


def test_confusion_clears_cell_when_selection_comes_from_elsewhere(sample_project):
    sel = Selection()
    cm = ConfusionMatrix(sample_project, sel)
    _click_cell(cm, "1", "8")
    sel.select(["digit-0000"], source="other")
    assert cm.cell is None and cm.figure.layout.shapes == ()


def test_confusion_rejects_bad_input(sample_project):
    with pytest.raises(ValueError, match="The 'normalize' parameter of ConfusionMatrix"):
        ConfusionMatrix(sample_project, normalize="rows")
    with pytest.raises(TypeError, match="Expected a workbench Project or an errors DataFrame"):
        ConfusionMatrix([1, 2, 3])


# ---- SliceTable -----------------------------------------------------------------------


def test_slice_table_row_click_selects_slice(sample_project):
    from workbench.sample import DEGRADED_SCANNER

    sel = Selection()
    st = SliceTable(sample_project, sel, column="scanner")
    assert st.frame["bin"].iloc[0] == DEGRADED_SCANNER  # worst error rate first
    assert st.rows[0].button.description == DEGRADED_SCANNER
    st.rows[0].button.click()
    items = sample_project.items
    assert sel.ids == tuple(sorted(items.loc[items["scanner"] == DEGRADED_SCANNER, "item_id"]))
    assert sel.description == f"scanner={DEGRADED_SCANNER}"
    assert st.selected_row == 0 and st.rows[0].button.button_style == "info"
    # hidden rows beyond the data
    assert st.rows[3].button.layout.display == "none"


def test_slice_table_sort_column_and_pages(sample_project):
    st = SliceTable(sample_project, page_size=4)
    st.column_picker.value = "batch"
    assert st.column == "batch" and set(st.frame["column"]) == {"batch"}
    st.sort_picker.value = ("n", False)
    assert list(st.frame["n"]) == sorted(st.frame["n"], reverse=True)
    assert "page 1 of 2" in st.page_label.value
    st.next_button.click()
    assert st.page == 1 and st.rows[0].button.description == st.frame["bin"].iloc[4]
    sel = st.selection
    st.rows[0].button.click()
    assert sel.description == f"batch={st.frame['bin'].iloc[4]}"
    assert len(sel.ids) == st.frame["n"].iloc[4]


def test_slice_table_numeric_column_rows_select_their_bin(tiny_project):
    st = SliceTable(tiny_project, column="score")
    assert st.frame["bin"].str.startswith("[").all()
    st.sort_picker.value = ("bin", True)
    st.rows[0].button.click()
    ids = st.selection.ids
    scores = tiny_project.items.set_index("item_id").loc[list(ids), "score"]
    assert len(ids) == st.frame["n"].iloc[0] and scores.max() < scores.min() + 3.1


def test_slice_table_discovered_slices(sample_project):
    from workbench.sample import DEGRADED_SCANNER

    sel = Selection()
    st = SliceTable(sample_project, sel)
    st.discovered_toggle.value = True
    assert st.discovered and st.sort == ("score", False)
    assert st.rows[0].button.description == f"scanner={DEGRADED_SCANNER}"
    st.rows[0].button.click()
    assert len(sel.ids) == st.frame["n"].iloc[0]
    assert sel.description == f"scanner={DEGRADED_SCANNER}"


# ---- ItemGallery ----------------------------------------------------------------------


def test_gallery_pages_through_a_fixed_pool(sample_project):
    sel = Selection()
    g = ItemGallery(sample_project, sel, page_size=5, errors_first=False)
    assert "No selection" in g.status.value
    assert all(c.box.layout.display == "none" for c in g.cards)
    pool = [c.box for c in g.cards]
    ids = sorted(sample_project.items["item_id"])[:12]
    sel.select(ids, description="twelve")
    assert g.ids_on_page == ids[:5]
    assert g.status.value.startswith("12 selected, page 1 of 3")
    g.next_button.click()
    g.next_button.click()
    assert g.ids_on_page == ids[10:] and "page 3 of 3" in g.status.value
    assert [c.box.layout.display for c in g.cards] == [None, None, "none", "none", "none"]
    assert [c.box for c in g.cards] == pool  # the same widgets, reused
    sel.select(ids[:1])
    assert g.page == 0 and g.ids_on_page == ids[:1]
    card = g.cards[0]
    assert bytes(card.image.value).startswith(b"\x89PNG") and card.image.layout.display is None
    assert "wb-card" in card.box._dom_classes
    assert "wb-gallery-status" in g.status._dom_classes
    sel.select([])
    assert g.status.value.startswith("0 selected, page 1 of 1") and g.ids_on_page == []


def test_gallery_escapes_text_and_shows_placeholders(tiny_project):
    sel = Selection()
    g = ItemGallery(tiny_project, sel)
    sel.select(["it-00", "it-01", "it-02", "it-03", "it-04"])
    captions = {c.item_id: c for c in g.cards if c.item_id}
    html = captions["it-00"].caption.value
    assert HOSTILE not in html and "<img" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "ann&lt;b&gt;=a" in html and "zed=b" in html  # annotators' labels, escaped
    assert "pred:" in html and "(0.50)" in html
    for missing in ("it-01", "it-02", "it-03"):  # missing, corrupt, outside the project
        card = captions[missing]
        assert card.image.layout.display == "none"
        assert card.placeholder.layout.display is None
    ok = captions["it-04"]
    assert bytes(ok.image.value).startswith(b"\x89PNG") and ok.placeholder.layout.display == "none"
    for c in g.cards:  # bytes in the kernel, never a file URL
        assert "/files" not in c.caption.value and "voila/files" not in c.caption.value


def test_gallery_follows_run(tiny_project):
    sel = Selection()
    g = ItemGallery(tiny_project, sel)
    sel.select(["it-03"])
    assert "pred: <span style='color:#1b5e20'><b>a</b>" in g.cards[0].caption.value
    g.run = "cand"  # this run is wrong on it-03: shown in red
    assert "pred: <span style='color:#b00020'><b>b</b>" in g.cards[0].caption.value


# ---- RunComparison --------------------------------------------------------------------


def test_run_comparison_selects_flips_and_slices(sample_project):
    sel = Selection()
    rc = RunComparison(sample_project, sel, base="baseline", candidate="candidate")
    diff = wb.compare_runs(sample_project, "baseline", "candidate")
    assert rc.fixed_button.description == f"fixed ({len(diff.fixed)})"
    rc.fixed_button.click()
    assert sel.ids == tuple(sorted(diff.fixed_ids))
    rc.broken_button.click()
    assert sel.ids == tuple(sorted(diff.broken_ids))
    assert "broken" in sel.description
    rc.column_picker.value = "scanner"
    first = rc.rows_frame.iloc[0]
    assert first["delta"] == rc.rows_frame["delta"].max()
    rc._row_buttons[0].click()
    items = sample_project.items
    assert sel.ids == tuple(sorted(items.loc[items["scanner"] == first["value"], "item_id"]))
    # a column with more slices than a page: the pager shows the rest
    small = RunComparison(sample_project, sel, base="baseline", candidate="candidate",
                          column="scanner", page_size=2)
    assert len(small.rows_frame) == 3 and "page 1 of 2" in small.table.page_label.value
    small.table.next_button.click()
    assert small.table.rows[0].layout.display is None
    assert small.table.rows[1].layout.display == "none"
    small.table.rows[0].button.click()
    last = small.rows_frame.iloc[2]
    assert sel.ids == tuple(sorted(items.loc[items["scanner"] == last["value"], "item_id"]))


def test_run_comparison_swaps_runs(tiny_project):
    rc = RunComparison(tiny_project)
    assert (rc.base, rc.candidate) == ("base", "cand")
    n_fixed = len(rc.diff.fixed)
    rc.base_picker.value = "cand"
    rc.candidate_picker.value = "base"
    assert len(rc.diff.broken) == n_fixed and rc.error_box.value == ""


def test_gallery_shows_the_model_errors_of_a_selection_first(sample_project):
    errors = sample_project.errors("candidate")
    wrong = set(errors.loc[~errors["correct"].astype(bool), "item_id"])
    ids = sorted(sample_project.items["item_id"])[:60]
    n_wrong = sum(i in wrong for i in ids)
    assert 0 < n_wrong < 24  # the fixture: some errors among the first 60 items
    sel = Selection()
    g = ItemGallery(sample_project, sel, page_size=24, run="candidate")
    sel.select(ids)
    expected = [i for i in ids if i in wrong] + [i for i in ids if i not in wrong]
    assert g.ids_on_page == expected[:24]
    assert "model errors first" in g.status.value
    g.go(2)
    assert g.ids_on_page == expected[48:]
    # another run: its own errors come first
    g.run = "baseline"
    base = sample_project.errors("baseline")
    wrong_b = set(base.loc[~base["correct"].astype(bool), "item_id"])
    expected_b = [i for i in ids if i in wrong_b] + [i for i in ids if i not in wrong_b]
    assert g._ids == expected_b


# ---- ErrorExplorer --------------------------------------------------------------------


def test_error_explorer_links_everything(sample_project):
    app = ErrorExplorer(sample_project)
    assert {"wb-error-explorer", "wb-ready"} <= set(app._dom_classes)
    assert "wb-status" in app.status._dom_classes
    sel = app.selection
    _click_cell(app.confusion, "1", "8")
    n = len(sel.ids)
    assert app.status.value == f"{n} items: true 1, predicted 8"
    assert app.gallery.ids_on_page == list(sel.ids)[:app.gallery.page_size]
    assert app.gallery.status.value.startswith(f"{n} selected")
    app.slices.rows[0].button.click()
    assert app.confusion.cell is None
    assert app.status.value.startswith(f"{len(sel.ids)} items: ")
    app.clear_button.click()
    assert sel.ids is None and app.status.value.startswith("No selection")


def test_error_explorer_run_picker_updates_children(sample_project):
    app = ErrorExplorer(sample_project, run="candidate")
    before = app.confusion.table.copy()
    app.run_picker.value = "baseline"
    assert app.errors.attrs["run"] == "baseline" and app.gallery.run == "baseline"
    after = wb.confusion_table(sample_project.errors("baseline"))
    assert app.confusion.table.equals(after) and not before.equals(after)
    assert app.slices.errors.attrs["run"] == "baseline"
    assert app.error_box.value == ""


def test_error_explorer_works_with_one_run(tiny_project):
    one = wb.Project.from_frames(
        items=tiny_project.items, annotations=tiny_project.annotations,
        predictions=tiny_project.predictions[tiny_project.predictions["run"] == "base"],
        classes=tiny_project.classes, root=tiny_project.root)
    app = ErrorExplorer(one)
    assert app.runs is None and "wb-ready" in app._dom_classes


def test_error_explorer_without_predictions(tiny_project):
    bare = wb.Project.from_frames(items=tiny_project.items, classes=tiny_project.classes,
                                  root=tiny_project.root)
    app = ErrorExplorer(bare)
    assert "wb-ready" in app._dom_classes and app.confusion is None
    assert "no model predictions" in app.status.value
    app.selection.select(["it-04"])
    assert app.gallery.ids_on_page == ["it-04"]


# ---- what a view opened late receives (Voila renders after the cell ran) ---------------


def test_confusion_initial_state_holds_the_counts_and_follows_changes(sample_project):
    cm = ConfusionMatrix(sample_project, run="candidate")
    k = len(sample_project.classes)
    data, layout = cm.figure._widget_data, cm.figure._widget_layout
    counts = wb.confusion_table(sample_project.errors("candidate")).to_numpy()
    np.testing.assert_array_equal(np.array(data[0]["z"], dtype=float), counts)
    assert data[0]["text"][0][0] == str(int(counts[0, 0]))
    assert list(data[0]["x"]) == list(sample_project.classes)
    assert layout["xaxis"]["title"]["text"] == "predicted"
    assert layout["yaxis"]["title"]["text"] == "true"
    # the axes fit the cells: no empty band around the heatmap, row 0 at the top
    assert layout["xaxis"]["range"] == [-0.5, k - 0.5]
    assert layout["yaxis"]["range"] == [k - 0.5, -0.5]
    # after a change (another run, hide diagonal, a clicked cell) a view opened later
    # shows the current figure, not the one of the constructor
    cm.set_errors(sample_project.errors("baseline"))
    base = wb.confusion_table(sample_project.errors("baseline")).to_numpy()
    np.testing.assert_array_equal(np.array(cm.figure._widget_data[0]["z"], dtype=float), base)
    cm.hide_diagonal = True
    assert np.isnan(np.diag(np.array(cm.figure._widget_data[0]["z"], dtype=float))).all()
    _click_cell(cm, "1", "8")
    assert len(cm.figure._widget_layout["shapes"]) == 1


def test_confusion_shows_markup_in_class_names_as_text():
    errors = pd.DataFrame({
        "item_id": ["a", "b", "c"], "label": ["<b>x</b>", "y", "y"],
        "predicted": ["y", "y", "<b>x</b>"], "correct": [False, True, False]})
    sel = Selection()
    cm = ConfusionMatrix(errors, sel)
    names = list(cm.figure._widget_data[0]["x"])
    assert "&lt;b&gt;x&lt;/b&gt;" in names and "<b>x</b>" not in names
    # clicks still map back to the real class names
    cm._on_click(cm.figure.data[1], Points(point_inds=[1], xs=[], ys=[], trace_name="",
                                           trace_index=1))
    assert cm.cell == ("<b>x</b>", "y") and sel.ids == ("a",)


def test_error_explorer_layout_keeps_the_gallery_full_width(sample_project):
    app = ErrorExplorer(sample_project)
    bottom = app.children[-1]
    actions = bottom.children[0]
    assert "wb-actions" in actions._dom_classes
    assert app.gallery in bottom.children and app.gallery not in actions.children
    assert all(x in actions.children for x in (app.tags, app.fiftyone) if x is not None)
    top = app.children[3]
    assert top.children[0] is app.confusion and top.layout.flex_flow == "row wrap"
