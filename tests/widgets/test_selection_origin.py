"""Widgets recognise their own selection by identity (``Selection.origin``), not class name.

Two widgets of the same class side by side on one Selection: selecting in one clears the
other's highlight, and the one that selected keeps its own.
"""

from __future__ import annotations

import pytest

from workbench.selection import Selection
from workbench.widgets.agreement_matrix import AgreementMatrix
from workbench.widgets.annotator_table import AnnotatorTable
from workbench.widgets.confused_pairs import ConfusedPairs
from workbench.widgets.confusion import ConfusionMatrix
from workbench.widgets.disagreement_explorer import DisagreementExplorer
from workbench.widgets.label_issue_list import LabelIssueList
from workbench.widgets.slice_table import SliceTable


def _highlighted_buttons(rows) -> list[str]:
    return [r.button.description for r in rows if r.button.button_style == "info"]


# ---- Selection ------------------------------------------------------------------------


def test_select_records_the_origin_and_a_readable_source():
    sel = Selection()
    assert sel.origin is None and sel.source == ""
    owner = object()
    sel.select(["b", "a"], origin=owner, description="two items")
    assert sel.origin is owner and sel.source == "object" and sel.ids == ("a", "b")
    sel.select(["c"], source="fiftyone")
    assert sel.origin is None and sel.source == "fiftyone"
    sel.select(["c"], origin=owner, source="the App")
    assert sel.origin is owner and sel.source == "the App"
    sel.clear(origin=owner)
    assert sel.ids is None and sel.origin is owner and sel.description == ""


def test_a_rejected_selection_changes_nothing():
    sel = Selection()
    first = object()
    sel.select(["a"], origin=first, description="one")
    with pytest.raises(TypeError, match="wrap it in a list"):
        sel.select("abc", origin=object(), description="three?")
    assert sel.ids == ("a",) and sel.origin is first and sel.description == "one"


# ---- two widgets of one class on one Selection -------------------------------------------


def test_two_confusion_matrices_clear_each_other(sample_project):
    sel = Selection()
    errors = sample_project.errors()
    a, b = ConfusionMatrix(errors, sel), ConfusionMatrix(errors, sel)
    c0, c1 = a.classes[0], a.classes[1]
    assert a.items_of(c0, c0) != a.items_of(c1, c1)
    a.select_cell(c0, c0)
    assert sel.origin is a and a.cell == (c0, c0) and len(a.figure.layout.shapes) == 1
    b.select_cell(c1, c1)
    assert sel.origin is b and sel.source == "ConfusionMatrix"
    assert a.cell is None and len(a.figure.layout.shapes) == 0
    assert b.cell == (c1, c1) and len(b.figure.layout.shapes) == 1
    a.select_cell(c0, c0)
    assert b.cell is None and a.cell == (c0, c0)


def test_two_agreement_matrices_clear_each_other(sample_project):
    sel = Selection()
    a, b = AgreementMatrix(sample_project, sel), AgreementMatrix(sample_project, sel)
    names = sorted(sample_project.annotators)
    assert a.items_of(names[0], names[1]) != a.items_of(names[0], names[2])
    a.select_pair(names[0], names[1])
    b.select_pair(names[0], names[2])
    assert a.cell is None and len(a.figure.layout.shapes) == 0
    assert b.cell == (names[0], names[2]) and len(b.figure.layout.shapes) == 1
    assert sel.origin is b


def test_two_confused_pairs_clear_each_other(sample_project):
    sel = Selection()
    a, b = ConfusedPairs(sample_project, sel), ConfusedPairs(sample_project, sel)
    (a0, a1), (b0, b1) = [(r.class_a, r.class_b) for r in a.pairs.head(2).itertuples()]
    a.select_pair(a0, a1)
    b.select_pair(b0, b1)
    assert a.cell is None and b.cell == (b0, b1) and sel.origin is b


def test_two_label_issue_lists_clear_each_other(sample_project):
    sel = Selection()
    a, b = LabelIssueList(sample_project, sel), LabelIssueList(sample_project, sel)
    first, second = a.page_ids()[:2]
    a.select_item(first)
    assert _highlighted_buttons(a.rows) == [first]
    b.select_item(second)
    assert a.item_id is None and _highlighted_buttons(a.rows) == []
    assert b.item_id == second and _highlighted_buttons(b.rows) == [second]
    assert sel.origin is b and sel.ids == (second,)


def test_two_annotator_tables_clear_each_other(sample_project):
    sel = Selection()
    a, b = AnnotatorTable(sample_project, sel), AnnotatorTable(sample_project, sel)
    first, second = a.quality["annotator"].iloc[:2]
    a.select_annotator(first)
    b.select_annotator(second)
    assert a.annotator is None and _highlighted_buttons(a.table.rows) == []
    assert b.annotator == second and _highlighted_buttons(b.table.rows) == [second]


def test_two_slice_tables_clear_each_other(sample_project):
    sel = Selection()
    a = SliceTable(sample_project, sel, column="scanner")
    b = SliceTable(sample_project, sel, column="scanner")
    assert a.items_of_row(0) != a.items_of_row(1)
    a.select_row(0)
    assert a.selected_row == 0 and len(_highlighted_buttons(a.rows)) == 1
    b.select_row(1)
    assert a.selected_row is None and _highlighted_buttons(a.rows) == []
    assert b.selected_row == 1 and _highlighted_buttons(b.rows) == [b.rows[1].button.description]
    # the table that selected keeps its row when the selection changes under it otherwise
    b.select_row(1)
    assert b.selected_row == 1


def test_two_disagreement_explorers_clear_each_other(sample_project):
    sel = Selection()
    a = DisagreementExplorer(sample_project, sel)
    b = DisagreementExplorer(sample_project, sel)
    assert len(a.slice_frame) >= 2
    a.select_slice(0)
    assert _highlighted_buttons(a.slice_rows.rows) == [a.slice_buttons[0].description]
    b.select_slice(1)
    assert a._slice_selected is None and _highlighted_buttons(a.slice_rows.rows) == []
    assert b._slice_selected == 1 and sel.origin is b
    assert "(from DisagreementExplorer)" in a.status.value
