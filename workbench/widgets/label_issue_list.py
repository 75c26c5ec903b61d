"""LabelIssueList: items ranked by label quality (most suspicious first); clicking selects."""

from __future__ import annotations

import warnings
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from .. import results
from .._format import percent
from .._validation import check_int
from ..selection import Selection
from ._adapters import PagedFrameMixin, RowGrid, StatusMixin, esc, guarded

__all__ = ["LabelIssueList"]

#: The columns of a project's label issues the list reads and shows.
SHOWN_COLUMNS = ["item_id", "given_label", "suggested_label", "label_quality", "is_issue",
                 "annotator_agreement", "n_labels", "rank"]

_HEADERS = ["item", "label → suggested", "label quality", "annotators agreeing", "flagged"]


def _quality(q: Any) -> str:
    """A label-quality score (0 = surely wrong, 1 = surely right) for a reader."""
    if q is None or pd.isna(q):
        return "–"
    return "&lt; 0.01" if q < 0.01 else f"{q:.2f}"


def _agreeing(agree: Any, n_labels: Any) -> str:
    """``'1 of 3'``: how many of the item's annotators gave the current label."""
    if agree is None or pd.isna(agree):
        return "–"
    n = 0 if n_labels is None or pd.isna(n_labels) else int(n_labels)
    if n <= 0:
        return percent(agree, 0)
    return f"{int(round(agree * n))} of {n}"


class LabelIssueList(StatusMixin, PagedFrameMixin, w.VBox):
    """Suspected label errors, ranked and paginated; a click selects the item.

    Rows come from :func:`workbench.label_issues` (cleanlab on the run's out-of-sample
    probabilities, combined with annotator votes). Buttons select the current page or every
    flagged item.

    Parameters
    ----------
    project_or_issues : Project or DataFrame
        A project (``label_issues(project, run)`` is computed) or a ready label-issues frame.
    selection : Selection, default=None
        The shared selection; a new one when None.
    run : str, default=None
        The model run (None: the project's default run).
    page_size : int, default=15
        Rows per page.
    issues_only : bool, default=True
        List only the flagged items (``is_issue``); otherwise every item, most suspicious
        first.

    Attributes
    ----------
    issues : DataFrame
        The label-issues frame given, or of a project the columns the list uses
        (:data:`SHOWN_COLUMNS`, read alone from the project's cache; the whole frame is
        ``workbench.results.label_issues(project)``). Empty with a message when the project
        has no model probabilities.
    frame : DataFrame
        The rows listed (``issues`` or its flagged part).
    item_id : str or None
        The item selected by a click.

    Notes
    -----
    For a detection project (``task == "detection"``), ``LabelIssueList(project, ...)``
    returns a :class:`~workbench.widgets.detection_issue_list.DetectionIssueList` (one row
    per suspected missing, mislocated or wrong-class box; a click selects the image and
    the box).
    """

    issues_only = traitlets.Bool(True)
    item_id = traitlets.Unicode(None, allow_none=True)

    def __new__(cls, project_or_issues: Any = None, *args: Any, **kwargs: Any):
        """A :class:`DetectionIssueList` for a detection project, else a LabelIssueList."""
        if cls is LabelIssueList and getattr(project_or_issues, "task", None) == "detection":
            from .detection_issue_list import DetectionIssueList

            return DetectionIssueList(project_or_issues, *args, **kwargs)
        return super().__new__(cls, project_or_issues, *args, **kwargs)

    def __init__(self, project_or_issues: Any, selection: Selection | None = None, *,
                 run: str | None = None, page_size: int = 15, issues_only: bool = True):
        self.page_size = check_int(page_size, "page_size", "LabelIssueList", minimum=1)
        self.selection = selection if selection is not None else Selection()
        self.project = None if isinstance(project_or_issues, pd.DataFrame) else \
            project_or_issues
        self.run = run
        self.message = w.HTML("")
        self.message.add_class("wb-issue-message")
        self.only_box = w.Checkbox(value=issues_only, description="flagged only",
                                   indent=False)
        self.only_box.add_class("wb-issue-only")
        self.select_page_button = w.Button(description="select page")
        self.select_page_button.add_class("wb-issue-select-page")
        self.select_all_button = w.Button(description="select all flagged")
        self.select_all_button.add_class("wb-issue-select-all")
        self.table = RowGrid(_HEADERS, self.page_size, self._on_row, self.go, prefix="issue",
                             columns="minmax(110px, 220px) 140px 90px 110px 50px")
        self.rows, self.grid = self.table.rows, self.table.grid
        self.prev_button, self.next_button = self.table.prev_button, self.table.next_button
        self.page_label = self.table.page_label
        super().__init__([
            w.HBox([self.only_box, self.select_page_button, self.select_all_button]),
            self._make_error_box(), self.message, self.grid, self.table.pager,
        ])
        self.add_class("wb-label-issues")
        self.select_page_button.on_click(self._on_select_page)
        self.select_all_button.on_click(self._on_select_all)
        self._load(project_or_issues)
        self.issues_only = issues_only
        w.link((self.only_box, "value"), (self, "issues_only"))
        self.selection.observe(self._on_selection, names=["ids"])
        self._refilter()

    # ---- state ------------------------------------------------------------------------
    def _load(self, project_or_issues) -> None:
        self.unavailable = None
        if isinstance(project_or_issues, pd.DataFrame):
            self.issues = project_or_issues.reset_index(drop=True)
            return
        self.notes: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.issues = results.label_issues(project_or_issues, self.run,
                                                   columns=SHOWN_COLUMNS)
            self.notes = [str(c.message) for c in caught if issubclass(c.category, UserWarning)]
        except Exception as exc:  # no predictions / no probabilities: say so, keep working
            self.unavailable = f"{type(exc).__name__}: {exc}"
            self.issues = pd.DataFrame(columns=["item_id", "given_label", "suggested_label",
                                                "label_quality", "is_issue", "rank"])

    def _refilter(self) -> None:
        frame = self.issues
        if self.issues_only and len(frame):
            frame = frame[frame["is_issue"].astype(bool)]
        self.frame = frame.reset_index(drop=True)
        self.page = 0
        self._render()

    def page_ids(self) -> list[str]:
        """Item ids listed on the current page."""
        start = self.page * self.page_size
        return self.frame["item_id"].iloc[start:start + self.page_size].astype(str).tolist()

    def flagged_ids(self) -> list[str]:
        """Every flagged item id."""
        if not len(self.issues):
            return []
        return self.issues.loc[self.issues["is_issue"].astype(bool), "item_id"].astype(
            str).tolist()

    def select_item(self, item_id: str) -> list[str]:
        """Select one item (what clicking its row does)."""
        self.item_id = str(item_id)
        row = self.issues[self.issues["item_id"].astype(str) == str(item_id)]
        desc = f"suspected label error {item_id}"
        if len(row):
            r = row.iloc[0]
            desc = (f"suspected label error {item_id}: given {r['given_label']}, "
                    f"suggested {r['suggested_label']}")
        self.selection.select([str(item_id)], origin=self, description=desc)
        return [str(item_id)]

    def select_page(self) -> list[str]:
        """Select every item on the current page."""
        ids = self.page_ids()
        self.item_id = None
        self.selection.select(ids, origin=self,
                              description=f"suspected label errors, page {self.page + 1}")
        return ids

    def select_flagged(self) -> list[str]:
        """Select every flagged item."""
        ids = self.flagged_ids()
        self.item_id = None
        self.selection.select(ids, origin=self,
                              description="all suspected label errors")
        return ids

    @guarded
    def _on_row(self, slot: int) -> None:
        """Adapter: a click on row ``slot`` of the page."""
        ids = self.page_ids()
        if slot < len(ids):
            self.select_item(ids[slot])

    @guarded
    def _on_select_page(self, _button) -> None:
        self.select_page()

    @guarded
    def _on_select_all(self, _button) -> None:
        self.select_flagged()

    @guarded
    def _on_selection(self, change) -> None:
        if self.item_id is not None and self.selection.origin is not self:
            self.item_id = None

    @traitlets.observe("issues_only")
    def _on_only(self, change) -> None:
        if getattr(self, "frame", None) is not None:
            try:
                self._refilter()
            except Exception as exc:  # shown, not swallowed
                self.show_error(exc)

    @traitlets.observe("item_id")
    def _on_item(self, change) -> None:
        if getattr(self, "frame", None) is not None:
            self.table.highlight(self._is_selected)

    def _is_selected(self, i: int) -> bool:
        return self.item_id is not None and str(self.frame["item_id"].iat[i]) == self.item_id

    # ---- view -------------------------------------------------------------------------
    def _row_content(self, i: int) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of row ``i`` of :attr:`frame`."""
        row = self.frame.iloc[i]
        agree = row["annotator_agreement"] if "annotator_agreement" in row.index else None
        return (str(row["item_id"]), f"rank {row.get('rank', '')}: select this item",
                [f"{esc(row['given_label'])} → <b>{esc(row['suggested_label'])}</b>",
                 _quality(row["label_quality"]), _agreeing(agree, row.get("n_labels", 0)),
                 "⚑" if bool(row["is_issue"]) else ""])

    def _render(self) -> None:
        self.table.render(self.page, len(self.frame), self._row_content,
                          selected=self._is_selected)
        n_flagged = int(self.issues["is_issue"].astype(bool).sum()) if len(self.issues) else 0
        if self.unavailable:
            self.message.value = (
                "<span style='color:#a60'>Label issues need a model run with class "
                f"probabilities (prob_&lt;class&gt; columns). {esc(self.unavailable)}</span>")
        else:
            run = f" (run {esc(self.run or getattr(self.project, 'default_run', '') or '')})" \
                if self.project is not None else ""
            notes = "".join(f"<br><span style='color:#a60'>{esc(m)}</span>"
                            for m in getattr(self, "notes", []))
            self.message.value = (
                f"<span>{n_flagged:,} of {len(self.issues):,} items flagged as suspected "
                f"label errors{run}, most suspicious first. <i>Label quality</i> combines "
                "the model's confidence in the current label with the annotators' votes: "
                "0 = surely wrong, 1 = surely right. <i>Suggested</i> is the label the "
                f"evidence points to.</span>{notes}")
        self.select_all_button.disabled = n_flagged == 0

    def __repr__(self) -> str:
        return (f"LabelIssueList({len(self.frame)} rows, page {self.page + 1}/{self.n_pages}, "
                f"item_id={self.item_id!r})")
