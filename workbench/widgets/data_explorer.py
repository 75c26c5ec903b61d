"""DataExplorer: what is wrong with the data itself? Data issues, the map, coverage, drift."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from .. import results
from .._format import percent
from .._validation import has_two_values
from ..drift import MAX_LEVELS, drift_items, drift_summary, slice_values
from ..selection import Selection
from ._adapters import RowGrid, StatusMixin, esc, guarded
from .data_issue_list import DataIssueList
from .embedding_map import EmbeddingMap, MapPanel, _categorical, no_embeddings_note
from .vendors_guidelines import _SelectionBoard

__all__ = ["DataExplorer", "issue_colors", "default_groups"]

#: The map's colouring by data issue (added to the map's colour picker).
ISSUE_COLOR = "data_issue"
_NO_ISSUE = "no data issue"


def issue_colors(issues: pd.DataFrame, ids: Any) -> pd.Categorical:
    """The data issue of each item, as map colours: its first issue, ``leak: ...`` for leaks.

    Parameters
    ----------
    issues : DataFrame
        :func:`workbench.data_issues` rows (``item_id``, ``issue_type``, ``is_leak``), leaks
        first.
    ids : array-like of str
        The map's items in point order.

    Returns
    -------
    pandas.Categorical
        One value per id; items without an issue read ``no data issue``.
    """
    ids = np.asarray(ids, dtype=str)
    if len(issues):
        kind = np.where(issues["is_leak"].to_numpy(bool),
                        "leak: " + issues["issue_type"].astype(str).to_numpy(dtype=object),
                        issues["issue_type"].astype(str).to_numpy(dtype=object))
        first = pd.Series(kind, index=issues["item_id"].astype(str).to_numpy())
        first = first[~first.index.duplicated(keep="first")]
        values = first.reindex(ids).to_numpy(dtype=object)
    else:
        values = np.full(len(ids), None, dtype=object)
    order = sorted({str(v) for v in values if v is not None and str(v).startswith("leak: ")})
    return _categorical(values, missing=_NO_ISSUE, order=order)


def default_groups(items: pd.DataFrame, column: str) -> tuple[list[str], list[str]]:
    """Default reference and target values of ``column``: ``train`` vs the other values.

    Parameters
    ----------
    items : DataFrame
        The project's items.
    column : str
        A metadata column.

    Returns
    -------
    reference, target : list of str
        ``['train']`` and every other value when ``train`` is a value; else the most frequent
        value and the others (the last value in order when the column is ``batch``-like:
        the earlier values are the reference, the last one the target).
    """
    counts = items[column].dropna().astype(str).value_counts()
    values = sorted(counts.index)
    if len(values) < 2:
        return values, []
    if "train" in values:
        return ["train"], [v for v in values if v != "train"]
    if column in ("batch", "batch_date", "week", "date"):
        return values[:-1], values[-1:]
    top = str(counts.index[0])
    return [top], [v for v in values if v != top]


class _IssueMap(EmbeddingMap):
    """The embedding map with one more colouring: the items' data issue type."""

    def __init__(self, project: Any, selection: Selection, issues: pd.DataFrame, **kwargs):
        self._issues = issues
        super().__init__(project, selection, **kwargs)
        if self.scatter is not None:
            self.color_picker.options = [("data issue", ISSUE_COLOR),
                                         *self.color_picker.options]
            self.color_by = ISSUE_COLOR

    def _colors(self, by: str):
        if by == ISSUE_COLOR:
            key = (by, None)
            if key not in self._colors_cache:
                self._colors_cache[key] = issue_colors(self._issues, self.ids)
            return self._colors_cache[key]
        return super()._colors(by)

    def _shown(self, key: str) -> str:
        return "data issue" if key == ISSUE_COLOR else super()._shown(key)


class _MapTab(MapPanel):
    """The Map tab: the map coloured by data issue, built when the tab is first shown."""

    def __init__(self, project: Any, selection: Selection, issues: pd.DataFrame):
        self.issues = issues
        super().__init__(project, selection)
        if not getattr(project, "has_embeddings", False):
            self.message.value = no_embeddings_note(project)
        self.message.add_class("wb-data-map-message")
        self.add_class("wb-data-map")

    def build(self) -> EmbeddingMap | None:
        """Build the map once (nothing without embeddings); a failure is shown, not raised."""
        if not getattr(self.project, "has_embeddings", False):
            return None
        return super().build()

    def _make_map(self) -> EmbeddingMap:
        return _IssueMap(self.project, self.selection, self.issues)


class CoverageView(StatusMixin, w.VBox):
    """Coverage of a target group by a reference group: thin slices and novel items.

    Parameters
    ----------
    project : Project
    selection : Selection
    page_size : int, default=10

    Attributes
    ----------
    result : Coverage or None
        The last :func:`workbench.coverage` result.
    slices : DataFrame
        Its slice rows (thin first).
    novel : DataFrame
        Its target items flagged novel, farthest first (empty without embeddings).
    """

    def __init__(self, project: Any, selection: Selection, *, page_size: int = 10):
        self.project, self.selection, self.page_size = project, selection, page_size
        self.result = None
        self.slices = pd.DataFrame()
        self.novel = pd.DataFrame({"item_id": [], "distance": [], "novelty": []})
        self.slice_page = self.novel_page = 0
        columns = [c for c in project.metadata_columns
                   if has_two_values(project.items[c])]
        self.columns = columns
        first = "split" if "split" in columns else (columns[0] if columns else None)
        self.column_box = w.Dropdown(options=columns, value=first, description="groups by",
                                     layout=w.Layout(width="260px"))
        self.column_box.add_class("wb-coverage-column")
        self.reference_box = w.SelectMultiple(description="reference", rows=4,
                                              layout=w.Layout(width="260px"))
        self.reference_box.add_class("wb-coverage-reference")
        self.target_box = w.SelectMultiple(description="target", rows=4,
                                           layout=w.Layout(width="260px"))
        self.target_box.add_class("wb-coverage-target")
        self.run_button = w.Button(description="compare", icon="search")
        self.run_button.add_class("wb-coverage-run")
        self.message = w.HTML("")
        self.message.add_class("wb-coverage-message")
        self.slice_table = RowGrid(["value", "column", "target share", "reference share",
                                    "thin?"], page_size, self._on_slice_row,
                                   self._go_slices, prefix="coverage",
                                   columns="minmax(110px, 220px) 120px 100px 110px 60px")
        self.novel_table = RowGrid(["item", "novelty", "distance"], page_size,
                                   self._on_novel_row, self._go_novel, prefix="novel",
                                   columns="minmax(110px, 220px) 80px 80px")
        self.novel_button = w.Button(description="select all novel items")
        self.novel_button.add_class("wb-coverage-select-novel")
        self.novel_button.on_click(self._on_select_novel)
        self.run_button.on_click(self._on_run)
        self.column_box.observe(self._on_column, names=["value"])
        super().__init__([
            w.HBox([self.column_box, self.reference_box, self.target_box, self.run_button],
                   layout=w.Layout(flex_flow="row wrap", grid_gap="4px 12px")),
            self._make_error_box(), self.message,
            w.HTML("<b>Slices of the target thin in the reference</b> (a row selects the "
                   "target's items of that slice)"),
            self.slice_table.grid, self.slice_table.pager,
            w.HTML("<b>Target items unlike anything in the reference</b> (novelty: distance "
                   "to the reference over its own spread; above 1 is novel)"),
            w.HBox([self.novel_button]), self.novel_table.grid, self.novel_table.pager])
        self.add_class("wb-coverage")
        if first is None:
            self.message.value = ("<span style='color:#a60'>No metadata column with two values "
                                  "or more: nothing to compare.</span>")
            self.run_button.disabled = True
            self._render()
            return
        self._set_groups(first)
        self.compute()

    def _set_groups(self, column: str) -> None:
        values = sorted(self.project.items[column].dropna().astype(str).unique())
        shown = values[:200]
        ref, tgt = default_groups(self.project.items, column)
        self.reference_box.options = shown
        self.target_box.options = shown
        self.reference_box.value = tuple(v for v in ref if v in shown)
        self.target_box.value = tuple(v for v in tgt if v in shown)

    def compute(self) -> Any:
        """Run :func:`workbench.coverage` on the picked groups and show its result."""
        column = self.column_box.value
        ref, tgt = list(self.reference_box.value), list(self.target_box.value)
        if not ref or not tgt:
            raise ValueError("Coverage: pick at least one reference value and one target "
                             f"value of {column!r}.")
        if set(ref) & set(tgt):
            raise ValueError(f"Coverage: {sorted(set(ref) & set(tgt))} are both reference "
                             "and target; pick each value on one side only.")
        values = self.project.items[column]
        # the filters compare with the column's own values (numbers stay numbers)
        lookup = {str(v): v for v in values.dropna().unique()}
        self.result = results.coverage(  # cached for every kernel
            self.project, {column: [lookup[v] for v in ref]},
            {column: [lookup[v] for v in tgt]})
        self.slices = self.result.slices.reset_index(drop=True)
        items = self.result.items
        self.novel = (items[items["is_novel"].to_numpy(bool)].reset_index(drop=True)
                      if items is not None else self.novel.iloc[0:0])
        self.slice_page = self.novel_page = 0
        self._render()
        return self.result

    def select_slice(self, i: int) -> list[str]:
        """Select the target's items in slice row ``i`` of :attr:`slices`."""
        r = self.slices.iloc[int(i)]
        items = self.project.items
        ids = items["item_id"].astype(str).to_numpy()
        ref = np.isin(ids, np.asarray(self.result.reference_ids, dtype=str))
        tgt = np.isin(ids, np.asarray(self.result.target_ids, dtype=str))
        values, _order = slice_values(items[r["column"]], ref, max_levels=MAX_LEVELS)
        chosen = ids[tgt & (values.astype(str).to_numpy() == str(r["value"]))].tolist()
        self.selection.select(chosen, origin=self,
                              description=f"target items with {r['column']} = {r['value']}")
        return chosen

    def select_novel(self, i: int | None = None) -> list[str]:
        """Select novel item ``i`` of :attr:`novel`, or every novel item when None."""
        if i is None:
            chosen = self.novel["item_id"].astype(str).tolist()
            what = "target items unlike the reference"
        else:
            chosen = [str(self.novel.iloc[int(i)]["item_id"])]
            what = "a target item unlike the reference"
        self.selection.select(chosen, origin=self, description=what)
        return chosen

    def _go_slices(self, page: int) -> None:
        self.slice_page = RowGrid.clip(page, len(self.slices), self.page_size)
        self._render()

    def _go_novel(self, page: int) -> None:
        self.novel_page = RowGrid.clip(page, len(self.novel), self.page_size)
        self._render()

    @guarded
    def _on_column(self, change) -> None:
        if change["new"] is not None:
            self._set_groups(change["new"])

    @guarded
    def _on_run(self, _button) -> None:
        self.compute()

    @guarded
    def _on_slice_row(self, slot: int) -> None:
        i = self.slice_table.page * self.page_size + slot
        if i < len(self.slices):
            self.select_slice(i)

    @guarded
    def _on_novel_row(self, slot: int) -> None:
        i = self.novel_table.page * self.page_size + slot
        if i < len(self.novel):
            self.select_novel(i)

    @guarded
    def _on_select_novel(self, _button) -> None:
        self.select_novel()

    def _slice_row(self, i: int) -> tuple[str, str, list[str]]:
        r = self.slices.iloc[i]
        thin = bool(r["is_thin"])
        style = " style='color:#b00020;font-weight:bold'" if thin else ""
        return (str(r["value"])[:60], "select the target's items of this slice",
                [esc(r["column"]), f"<span{style}>{percent(r['share_target'])}</span>",
                 percent(r["share_reference"]),
                 "<span style='color:#b00020'>thin</span>" if thin else ""])

    def _novel_row(self, i: int) -> tuple[str, str, list[str]]:
        r = self.novel.iloc[i]
        return (str(r["item_id"]), "select this item",
                [f"{float(r['novelty']):.2f}", f"{float(r['distance']):.3g}"])

    def _render(self) -> None:
        self.slice_table.render(self.slice_page, len(self.slices), self._slice_row,
                                noun="slices")
        self.novel_table.render(self.novel_page, len(self.novel), self._novel_row,
                                noun="novel items")
        self.novel_button.disabled = len(self.novel) == 0
        res = self.result
        if res is None:
            return
        n_thin = int(res.slices["is_thin"].sum()) if len(res.slices) else 0
        parts = [f"<span>Reference {len(res.reference_ids):,} items, target "
                 f"{len(res.target_ids):,} items: <b>{n_thin} thin slice(s)</b>"]
        if res.items is not None:
            parts.append(f", <b>{len(self.novel):,} novel item(s)</b>")
        parts.append(".</span>")
        if res.note:
            parts.append(f"<br><span style='color:#a60'>{esc(res.note)}</span>")
        if res.items is None and not getattr(self.project, "has_embeddings", False):
            parts.append(f"<br>{no_embeddings_note(self.project)}")
        self.message.value = "".join(parts)


class DriftView(StatusMixin, w.VBox):
    """Per batch, which metadata columns and predicted classes drifted from the baseline.

    Parameters
    ----------
    project : Project
    selection : Selection
    page_size : int, default=12

    Attributes
    ----------
    frame : DataFrame
        :func:`workbench.drift.drift_summary` rows, drifted first.
    """

    def __init__(self, project: Any, selection: Selection, *, page_size: int = 12):
        self.project, self.selection, self.page_size = project, selection, page_size
        self.page = 0
        self.frame = pd.DataFrame()
        options = [c for c in project.metadata_columns
                   if has_two_values(project.items[c])]
        first = "batch" if "batch" in options else (options[0] if options else None)
        self.by_box = w.Dropdown(options=options, value=first, description="batches by",
                                 layout=w.Layout(width="260px"))
        self.by_box.add_class("wb-drift-by")
        self.message = w.HTML("")
        self.message.add_class("wb-drift-message")
        self.table = RowGrid(["batch", "column", "PSI", "q-value", "value moved most",
                              "share (baseline → batch)"], page_size, self._on_row, self.go,
                             prefix="drift",
                             columns="minmax(100px, 160px) 110px 60px 70px "
                                     "minmax(100px, 200px) 150px")
        super().__init__([self.by_box, self._make_error_box(), self.message,
                          self.table.grid, self.table.pager])
        self.add_class("wb-drift")
        self.by_box.observe(self._on_by, names=["value"])
        if first is None:
            self.message.value = ("<span style='color:#a60'>No metadata column with two values "
                                  "or more: no batches to compare.</span>")
            self._render()
            return
        self.compute()

    @property
    def by(self) -> str | None:
        """The column whose values are the batches."""
        return self.by_box.value

    def compute(self) -> pd.DataFrame:
        """Run :func:`workbench.drift` by the picked column and list its summary."""
        self.frame = drift_summary(results.drift(self.project, self.by))  # cached
        self.page = 0
        self._render()
        return self.frame

    def go(self, page: int) -> None:
        """Show page ``page`` (clipped)."""
        self.page = RowGrid.clip(page, len(self.frame), self.page_size)
        self._render()

    def select_row(self, i: int) -> list[str]:
        """Select the items of row ``i``'s batch behind its most moved value.

        When that value vanished from the batch (share 0: no item to show), the items of
        the value that grew most are selected instead.
        """
        r = self.frame.iloc[int(i)]
        value = r["value"] if pd.notna(r["share"]) and float(r["share"]) > 0 else None
        items = drift_items(self.project, r["batch"], r["column"], value, by=self.by)
        ids = items["item_id"].astype(str).tolist()
        shown = items.attrs.get("value", value)
        self.selection.select(ids, origin=self, description=(
            f"{self.by} {r['batch']}: {r['column']} = {shown}"))
        return ids

    @guarded
    def _on_by(self, change) -> None:
        if change["new"] is not None:
            self.compute()

    @guarded
    def _on_row(self, slot: int) -> None:
        i = self.page * self.page_size + slot
        if i < len(self.frame):
            self.select_row(i)

    def _row(self, i: int) -> tuple[str, str, list[str]]:
        r = self.frame.iloc[i]
        red = bool(r["drifted"])
        style = " style='color:#b00020;font-weight:bold'" if red else ""
        return (str(r["batch"])[:60], "select this batch's items behind the value moved most",
                [f"<span{style}>{esc(r['column'])}</span>",
                 f"<span{style}>{float(r['psi']):.2f}</span>",
                 f"{float(r['q_value']):.3g}" if pd.notna(r["q_value"]) else "",
                 f"<span{style}>{esc(r['value'])}</span>",
                 f"{percent(r['share_baseline'])} → {percent(r['share'])}"])

    def _render(self) -> None:
        self.table.render(self.page, len(self.frame), self._row, noun="rows")
        if not len(self.frame) or self.by is None:
            if self.by is not None:
                self.message.value = "<span>No batch to compare with the baseline.</span>"
            return
        n = int(self.frame["drifted"].sum())
        base = self.frame.attrs.get("baseline")
        against = f" against baseline {esc(base)}" if base is not None else ""
        self.message.value = (f"<span>Batches by {esc(self.by)}{against}: <b>{n} drifted "
                              "(batch, column) pair(s)</b> in red (PSI above 0.2 and a "
                              "significant chi-square test).</span>")


class DataExplorer(_SelectionBoard, StatusMixin, w.VBox):
    """What is wrong with the data itself: data issues, the map, coverage and drift.

    Composes a :class:`~workbench.widgets.data_issue_list.DataIssueList` (duplicates,
    leaks first with the test-error inflation, outliers...), an
    :class:`~workbench.widgets.embedding_map.EmbeddingMap` coloured by data issue type
    (built when its tab is first shown), a coverage view (:func:`workbench.coverage` of a
    target group against a reference group: thin slices and novel items) and a drift view
    (:func:`workbench.drift.drift_summary`, drifted rows in red), linked by one
    :class:`~workbench.selection.Selection` to the ``ItemGallery`` and the ``TagPanel``
    below (the clicked issue is the tag's reason, so the relabel queue says why).

    Parameters
    ----------
    project : Project
        A classification project (embeddings optional: without them only exact duplicates
        are found, and the map and novelty say how to compute them). A detection project
        gets a note, not the explorer.
    selection : Selection, default=None
        The shared selection; a new one when None.

    Attributes
    ----------
    issues : DataIssueList
    map_tab : the Map tab (``map_tab.map`` is the EmbeddingMap once built)
    coverage : CoverageView
    drift : DriftView
    gallery : ItemGallery
    tag_panel : TagPanel
    status : ipywidgets.HTML
        The status line (CSS class ``wb-status``).
    """

    _EMPTY_STATUS = "No selection: click a data issue, a map point, a slice or a drift row."

    def __init__(self, project: Any, selection: Selection | None = None):
        if selection is not None and not isinstance(selection, Selection):
            raise TypeError("The 'selection' parameter of DataExplorer must be a workbench "
                            f"Selection or None. Got {type(selection).__name__} instead.")
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self._make_header("See the data", "wb-data-header")
        super().__init__([self._make_error_box(), self.header, self.status])
        self.add_class("wb-data-explorer")
        if getattr(project, "task", "classification") == "detection":
            self.header.value += (
                "<div class='wb-data-unsupported' style='color:#a60'>Data issues, coverage "
                "and drift are not supported for detection projects yet: open the Error "
                "Explorer or the Disagreement Explorer for boxes.</div>")
            self.children = [self.error_box, self.header]
            self.add_class("wb-ready")
            return
        self._build_and_link()

    def _build(self) -> None:
        project, sel = self.project, self.selection
        self.issues = DataIssueList(project, sel)
        self.map_tab = _MapTab(project, sel, self.issues.issues)
        self.coverage = CoverageView(project, sel)
        self.drift = DriftView(project, sel)
        self.tabs = w.Tab(children=[self.issues, self.map_tab, self.coverage, self.drift])
        for i, title in enumerate(["Data issues", "Map", "Coverage", "Drift"]):
            self.tabs.set_title(i, title)
        self.tabs.add_class("wb-data-tabs")
        self.tabs.observe(self._on_tab, names=["selected_index"])
        self._lay_out({"dashboard": "see_the_data"})
        w.dlink((self.issues, "reason"), (self.tag_panel.reason_box, "value"))

    @guarded
    def _on_tab(self, change) -> None:
        if change["new"] == 1:
            self.map_tab.build()

    def __repr__(self) -> str:
        return f"DataExplorer({self.project!r}, {self.selection!r})"
