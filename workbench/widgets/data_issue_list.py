"""DataIssueList: duplicates, leaks, outliers and other data issues; a click selects them."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from .. import results
from .._format import percent
from .._validation import check_int
from ..data_issues import ISSUE_TYPES, leakage_inflation
from ..selection import Selection
from ..session import can_write, current_author, require_write
from ..tags import TagStore
from ._adapters import PagedFrameMixin, RowGrid, StatusMixin, esc, guarded

__all__ = ["DataIssueList", "issue_reason"]

_HEADERS = ["item", "issue", "severity", "related items", "splits"]
_EMPTY = pd.DataFrame({"item_id": pd.Series(dtype="str"), "issue_type": pd.Series(dtype="str"),
                       "score": pd.Series(dtype=float), "related": pd.Series(dtype="str"),
                       "related_ids": pd.Series(dtype=object),
                       "split_pair": pd.Series(dtype="str"), "is_leak": pd.Series(dtype=bool)})


def issue_reason(row: Any) -> str:
    """The reason recorded with a tag for one issue row: its type, severity, related items.

    Parameters
    ----------
    row : mapping or Series
        A row of :func:`workbench.data_issues` (``issue_type``, ``score``, ``related``,
        ``split_pair``, ``is_leak``).

    Returns
    -------
    str
        E.g. ``"near_duplicate (severity 0.97) of img-7; leak across test | train"``.
    """
    text = f"{row['issue_type']} (severity {float(row['score']):.2f})"
    related = row.get("related")
    if isinstance(related, str) and related:
        text += f" of {related}" if row["issue_type"] in ("exact_duplicate",
                                                          "near_duplicate") else f", {related}"
    if bool(row.get("is_leak", False)):
        text += f"; leak across {row['split_pair']}"
    return text[:2000]


class DataIssueList(StatusMixin, PagedFrameMixin, w.VBox):
    """Data issues beyond labels, leaks first; a click selects the item and its duplicates.

    Rows come from :func:`workbench.data_issues` (exact and near duplicates, outliers,
    non-iid data, underperforming groups) and are listed leaks first (duplicates across
    ``split`` values), then by issue type, most severe first. A filter shows one issue type.
    Clicking a row selects its item and the related duplicates in the shared selection and
    sets :attr:`reason` (the issue type, severity and related items), which
    :meth:`send_to_queue` records with the ``relabel`` tag: the relabel queue
    (:class:`workbench.RelabelQueue`, ``reason`` column) shows why each item is there. Link
    it into a :class:`TagPanel` with ``ipywidgets.dlink((issues, "reason"),
    (panel.reason_box, "value"))`` to tag with any other tag name.

    Parameters
    ----------
    project_or_issues : Project or DataFrame
        A project (``data_issues(project, k=k)`` is computed; without embeddings only exact
        duplicates are listed and the message says how to add embeddings) or a ready frame.
    selection : Selection, default=None
        The shared selection; a new one when None.
    k : int, default=10
        Neighbours of the shared nearest-neighbour graph.
    page_size : int, default=15
        Rows per page.
    store : TagStore, default=None
        Where :meth:`send_to_queue` writes (default: ``TagStore.for_project(project)``).
    tag : str, default='relabel'
        The queue's tag.

    Attributes
    ----------
    issues : DataFrame
        Every issue row.
    frame : DataFrame
        The rows listed (``issues`` filtered by :attr:`issue_type`).
    inflation : DataFrame or None
        :func:`workbench.data_issues.leakage_inflation` on the ``test`` split, when the
        project has one, predictions and leaks.

    Notes
    -----
    CSS classes: ``wb-data-issues`` (root), ``wb-data-issue-type`` (filter),
    ``wb-data-issue-message``, ``wb-data-issue-select-all``, ``wb-data-issue-relabel``,
    ``wb-data-issue-status``, ``wb-dataissue-grid`` / ``-row`` / ``-prev`` / ``-next``.
    In a read-only session the relabel button is not built into the view and
    :meth:`send_to_queue` refuses.

    Examples
    --------
    >>> wb.widgets.DataIssueList(project, selection)  # doctest: +SKIP
    """

    issue_type = traitlets.Unicode("all")
    #: The row clicked (its position in :attr:`frame`), None when none.
    row = traitlets.Int(None, allow_none=True)
    #: Why the clicked issue is a problem (what a tag records as its reason).
    reason = traitlets.Unicode("")

    def __init__(self, project_or_issues: Any, selection: Selection | None = None, *,
                 k: int = 10, page_size: int = 15, store: TagStore | None = None,
                 tag: str = "relabel"):
        if selection is not None and not isinstance(selection, Selection):
            raise TypeError("The 'selection' parameter of DataIssueList must be a workbench "
                            f"Selection or None. Got {type(selection).__name__} instead.")
        self.page_size = check_int(page_size, "page_size", "DataIssueList", minimum=1)
        self.k = check_int(k, "k", "DataIssueList", minimum=1)
        self.selection = selection if selection is not None else Selection()
        self.project = None if isinstance(project_or_issues, pd.DataFrame) else \
            project_or_issues
        self._store = store
        self.tag = tag
        self.raise_errors = False
        self.read_only = not can_write()
        self.message = w.HTML("")
        self.message.add_class("wb-data-issue-message")
        self.type_box = w.Dropdown(options=[("all", "all")], value="all",
                                   description="Issue", layout=w.Layout(width="280px"))
        self.type_box.add_class("wb-data-issue-type")
        self.select_all_button = w.Button(description="select all listed")
        self.select_all_button.add_class("wb-data-issue-select-all")
        self.relabel_button = w.Button(description=f"send to {tag} queue", icon="tag",
                                       tooltip="Tag the clicked issue's items (or every listed "
                                               "issue) with the issue as the reason")
        self.relabel_button.add_class("wb-data-issue-relabel")
        self.status = w.HTML("")
        self.status.add_class("wb-data-issue-status")
        self.table = RowGrid(_HEADERS, self.page_size, self._on_row, self.go,
                             prefix="dataissue",
                             columns="minmax(110px, 200px) 150px 70px minmax(120px, 260px) "
                                     "110px")
        self.rows, self.grid = self.table.rows, self.table.grid
        self.prev_button, self.next_button = self.table.prev_button, self.table.next_button
        buttons = [self.type_box, self.select_all_button]
        if not self.read_only:
            buttons.append(self.relabel_button)
        super().__init__([w.HBox(buttons), self._make_error_box(), self.message, self.status,
                          self.grid, self.table.pager])
        self.add_class("wb-data-issues")
        self.select_all_button.on_click(self._on_select_all)
        self.relabel_button.on_click(self._on_relabel)
        self._load(project_or_issues)
        counts = self.issues["issue_type"].value_counts()
        self.type_box.options = [(f"all ({len(self.issues):,})", "all")] + [
            (f"{t} ({int(counts.get(t, 0)):,})", t) for t in ISSUE_TYPES]
        w.link((self.type_box, "value"), (self, "issue_type"))
        self.selection.observe(self._on_selection, names=["ids"])
        self._refilter()

    # ---- state ------------------------------------------------------------------------
    @property
    def store(self) -> TagStore:
        """The tag store :meth:`send_to_queue` writes to."""
        if self._store is None:
            self._store = TagStore.for_project(self.project)
        return self._store

    def _load(self, project_or_issues) -> None:
        self.unavailable = None
        self.inflation = None
        if isinstance(project_or_issues, pd.DataFrame):
            self.issues = project_or_issues.reset_index(drop=True)
            return
        project = project_or_issues
        # cached for every kernel; no embeddings: exact duplicates only, and say why
        self.issues, self.unavailable = results.data_issues_shown(project, k=self.k)
        self.skipped = dict(self.issues.attrs.get("skipped", {}))
        leaks = self.issues[self.issues["is_leak"]]
        split = project.items.get("split")
        if len(leaks) and split is not None and (split.astype(str) == "test").any() \
                and getattr(project, "runs", None):
            leaks = leaks.assign(split=leaks["item_id"].map(
                dict(zip(project.items["item_id"].astype(str), split.astype(str),
                         strict=True))))
            self.inflation = leakage_inflation(project, split="test", leaks=leaks)

    def _refilter(self) -> None:
        frame = self.issues
        if self.issue_type != "all":
            frame = frame[frame["issue_type"] == self.issue_type]
        self.frame = frame.reset_index(drop=True) if len(frame) else _EMPTY.copy()
        self.row = None
        self.page = 0
        self._render()

    def select_issue(self, i: int) -> list[str]:
        """Select the item of row ``i`` of :attr:`frame` and its related duplicates."""
        r = self.frame.iloc[int(i)]
        ids = [str(r["item_id"]), *map(str, r["related_ids"])]
        self.reason = issue_reason(r)
        self.row = int(i)
        self.selection.select(ids, origin=self, description=self.reason)
        return ids

    def select_listed(self) -> list[str]:
        """Select every item listed (and their related duplicates)."""
        ids = sorted({str(x) for r in self.frame.itertuples()
                      for x in [r.item_id, *r.related_ids]})
        self.row = None
        kind = "data issues" if self.issue_type == "all" else self.issue_type
        self.reason = ""
        self.selection.select(ids, origin=self, description=f"all listed {kind}")
        return ids

    def send_to_queue(self) -> int:
        """Tag the clicked issue's items (else every listed issue's) with its reason.

        Each issue's item and related duplicates get the tag (:attr:`tag`, ``relabel`` by
        default) with :func:`issue_reason` as the reason, so the relabel queue says why.

        Returns
        -------
        int
            Tag events written (items already tagged are left alone).
        """
        require_write("send data issues to the relabel queue")
        frame = self.frame if self.row is None else self.frame.iloc[[self.row]]
        if not len(frame):
            raise ValueError("No data issue listed: nothing to send (nothing was changed).")
        by_reason: dict[str, list[str]] = {}
        for _, r in frame.iterrows():
            by_reason.setdefault(issue_reason(r), []).extend(
                [str(r["item_id"]), *map(str, r["related_ids"])])
        n = 0
        for reason, ids in by_reason.items():
            n += self.store.add(sorted(set(ids)), self.tag, author=current_author(),
                                reason=reason, context={"view": "DataIssueList"})
        self.status.value = (f"<span>Tagged {n} item(s) {esc(self.tag)} with the issue as "
                             f"the reason ({len(frame)} issue(s)).</span>")
        return n

    @guarded
    def _on_row(self, slot: int) -> None:
        """Adapter: a click on row ``slot`` of the page."""
        i = self.page * self.page_size + slot
        if i < len(self.frame):
            self.select_issue(i)

    @guarded
    def _on_select_all(self, _button) -> None:
        self.select_listed()

    @guarded
    def _on_relabel(self, _button) -> None:
        self.send_to_queue()

    @guarded
    def _on_selection(self, change) -> None:
        if self.row is not None and self.selection.origin is not self:
            self.row = None
            self.reason = ""

    @traitlets.observe("issue_type")
    def _on_type(self, change) -> None:
        if getattr(self, "frame", None) is not None:
            self._safe(self._refilter)

    @traitlets.observe("row")
    def _on_row_change(self, change) -> None:
        if getattr(self, "frame", None) is not None:
            self.table.highlight(self._is_selected)

    def _is_selected(self, i: int) -> bool:
        return self.row is not None and i == self.row

    # ---- view -------------------------------------------------------------------------
    def _row_content(self, i: int) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of row ``i`` of :attr:`frame`."""
        r = self.frame.iloc[i]
        leak = bool(r["is_leak"])
        related = r["related"] if isinstance(r["related"], str) else ""
        shown = related if len(related) <= 80 else related[:77] + "…"
        return (str(r["item_id"]), "select this item and its related items",
                [("⚠ " if leak else "") + esc(r["issue_type"]), f"{float(r['score']):.2f}",
                 esc(shown), esc(r["split_pair"]) if leak else ""])

    def _render(self) -> None:
        self.table.render(self.page, len(self.frame), self._row_content,
                          selected=self._is_selected)
        n_leaks = int(self.issues["is_leak"].sum()) if len(self.issues) else 0
        n_items = self.issues["item_id"].nunique() if len(self.issues) else 0
        parts = [f"<span>{len(self.issues):,} data issue(s) on {n_items:,} item(s); "
                 f"<b>{n_leaks:,} leak(s)</b> (duplicates across splits) listed first. "
                 "<i>Severity</i>: 1 = surely an issue.</span>"]
        if self.inflation is not None:
            for r in self.inflation.itertuples():
                parts.append(
                    f"<br><span>Run {esc(r.run)}: error rate on {esc(r.split)} "
                    f"{percent(r.error_rate)} with its {r.n_leaked} leaked item(s), "
                    f"{percent(r.error_rate_without_leaks)} without "
                    f"(accuracy inflated by {percent(r.inflation, signed=True)}).</span>")
        if self.unavailable:
            parts.append(f"<br><span style='color:#a60'>{esc(self.unavailable)}</span>")
        for kind, why in getattr(self, "skipped", {}).items():
            parts.append(f"<br><span style='color:#a60'>{esc(kind)} not checked: "
                         f"{esc(why)}</span>")
        self.message.value = "".join(parts)
        self.select_all_button.disabled = len(self.frame) == 0
        self.relabel_button.disabled = len(self.frame) == 0

    def __repr__(self) -> str:
        return (f"DataIssueList({len(self.frame)} rows, issue_type={self.issue_type!r}, "
                f"page {self.page + 1}/{self.n_pages}, row={self.row!r})")
