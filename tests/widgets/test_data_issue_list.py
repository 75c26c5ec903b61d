"""DataIssueList: leaks first, type filter, clicks select the item and its duplicates, tags
carry the issue as their reason into the relabel queue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import ReadOnlyError
from workbench.selection import Selection
from workbench.tags import TagStore
from workbench.widgets.data_issue_list import DataIssueList, issue_reason

from ..unit.test_data_issues import N, _planted, _preds
from .conftest import HOSTILE, dom_classes


@pytest.fixture
def project(tmp_path):
    items, emb, y, X, root = _planted(tmp_path)
    correct = np.ones(N, dtype=bool)
    test_ids = items.loc[items["split"] == "test", "item_id"]
    correct[items["item_id"].isin(test_ids.iloc[5:15]).to_numpy()] = False
    return wb.Project.from_frames(items=items, predictions=_preds(items, y, correct),
                                  embeddings=emb, root=root)


def test_rows_leaks_first_and_click_selects_duplicates(project):
    sel = Selection()
    lst = DataIssueList(project, sel, page_size=4)
    assert {"wb-data-issues", "wb-data-issue-type", "wb-data-issue-relabel"} <= dom_classes(lst)
    leak = lst.frame["is_leak"].to_numpy()
    assert leak[: leak.sum()].all() and leak.sum() >= 4
    assert lst.rows[0].button.description == lst.frame["item_id"].iloc[0]
    assert "⚠" in lst.rows[0].cells[0].value and "test | train" in lst.rows[0].cells[3].value
    first = lst.frame.iloc[0]
    lst.rows[0].button.click()
    assert sel.ids == tuple(sorted([first["item_id"], *first["related_ids"]]))
    assert lst.row == 0 and sel.origin is lst
    assert lst.reason == issue_reason(first) and "leak across test | train" in lst.reason
    assert sel.description == lst.reason
    # the message tells the inflation of the test error rate
    assert "error rate on test" in lst.message.value and "without" in lst.message.value
    # a selection made elsewhere clears the clicked row
    sel.select(["i100"], origin="elsewhere")
    assert lst.row is None and lst.reason == ""


def test_filter_by_type_and_pages(project):
    lst = DataIssueList(project, page_size=2)
    lst.type_box.value = "outlier"
    assert lst.issue_type == "outlier" and (lst.frame["issue_type"] == "outlier").all()
    assert "i010" in set(lst.frame["item_id"])
    lst.next_button.click()
    assert lst.page == (1 if lst.n_pages > 1 else 0)
    lst.issue_type = "non_iid"
    assert lst.page == 0 and lst.row is None
    lst.issue_type = "exact_duplicate"
    assert set(lst.frame["item_id"]) == {"i000", "i001"}
    assert lst.select_listed() == ["i000", "i001"]
    labels = [label for label, _ in lst.type_box.options]
    assert labels[0].startswith("all (") and any(x.startswith("outlier (") for x in labels)


def test_send_to_queue_records_the_reason(project):
    store = TagStore.for_project(project)
    sel = Selection()
    lst = DataIssueList(project, sel, store=store)
    lst.issue_type = "exact_duplicate"
    lst.rows[0].button.click()
    n = lst.send_to_queue()
    assert n == 2  # the item and its duplicate
    queue = wb.RelabelQueue(project, store=store).frame()
    reasons = dict(zip(queue["item_id"], queue["reason"], strict=True))
    assert set(reasons) == {"i000", "i001"}
    assert reasons["i000"].startswith("exact_duplicate (severity 1.00) of ")
    assert "leak across test | train" in reasons["i000"]
    # nothing clicked: every listed issue, each with its own reason
    lst.issue_type = "outlier"
    lst.relabel_button.click()
    queue = wb.RelabelQueue(project, store=store).frame()
    assert queue.set_index("item_id").loc["i010", "reason"].startswith("outlier (severity")


def test_read_only_session_has_no_relabel_button(project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    lst = DataIssueList(project)
    assert "wb-data-issue-relabel" not in dom_classes(lst)
    with pytest.raises(ReadOnlyError):
        lst.send_to_queue()


def test_without_embeddings_lists_exact_duplicates_and_says_why(tmp_path):
    items, _, y, _, root = _planted(tmp_path)
    p = wb.Project.from_frames(items=items, root=root)
    lst = DataIssueList(p)
    assert set(lst.issues["item_id"]) == {"i000", "i001"}
    assert "workbench embed" in lst.message.value


def test_hostile_values_are_escaped():
    frame = pd.DataFrame({"item_id": [HOSTILE], "issue_type": ["near_duplicate"],
                          "score": [0.9], "related": [HOSTILE], "related_ids": [[HOSTILE]],
                          "split_pair": [f"{HOSTILE} | test"], "is_leak": [True]})
    lst = DataIssueList(frame)
    cells = "".join(c.value for c in lst.rows[0].cells)
    assert "<img" not in cells and "&lt;img" in cells


def test_bad_parameters(project):
    with pytest.raises(ValueError, match="The 'page_size' parameter of DataIssueList"):
        DataIssueList(project, page_size=0)
    with pytest.raises(TypeError, match="The 'selection' parameter of DataIssueList"):
        DataIssueList(project, selection="everything")
