"""ScorecardTable: the vendor scorecard as a paged table; a row click selects its items."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from .._format import percent
from ..selection import Selection
from ._adapters import RowGrid, StatusMixin, esc, guarded

__all__ = ["ScorecardTable", "scorecard_items"]

_HEADERS = ["vendor", "annotator", "batch", "labels", "gold accuracy", "kappa",
            "DS accuracy", "worst class", "worst pair", "rework", "trend"]


def _num(x: Any) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.3f}"


def _column_of(project, col: str, ids: np.ndarray) -> np.ndarray | None:
    """Per label (item ids ``ids``): the value of ``col`` from the annotations or items."""
    ann = project.annotations
    if col in ann.columns:
        return ann[col].astype(str).to_numpy()
    items = project.items
    if col in items.columns:
        values = pd.Series(items[col].astype(str).to_numpy(),
                           index=items["item_id"].astype(str).to_numpy())
        return values.reindex(ids).to_numpy()
    return None


def scorecard_items(project, card: pd.DataFrame, row: int) -> list[str]:
    """Return the items behind row ``row`` of a :func:`workbench.vendor_scorecard` frame.

    A vendor row: the items its annotators (the scorecard's annotator rows of that vendor)
    labelled in that batch; an annotator row: the items that annotator labelled in that
    batch. Without a batch column: every batch.

    Parameters
    ----------
    project : Project
        The project the scorecard was computed from.
    card : DataFrame
        :func:`workbench.vendor_scorecard` (its ``attrs["by"]`` name the columns).
    row : int
        Position of the row in ``card``.

    Returns
    -------
    list of str
        Sorted item ids.
    """
    by = tuple(card.attrs.get("by", ("vendor", "batch")))
    vendor_col = by[0]
    batch_col = by[1] if len(by) > 1 else None
    r = card.iloc[int(row)]
    ann = project.annotations
    ids = ann["item_id"].astype(str).to_numpy()
    names = ann["annotator"].astype(str).to_numpy()
    if r["level"] == "annotator":
        who = names == str(r["annotator"])
    else:
        members = card.loc[(card["level"] == "annotator")
                           & (card[vendor_col] == r[vendor_col]), "annotator"]
        who = np.isin(names, members.astype(str).unique())
    if vendor_col in ann.columns:  # a vendor per label
        who &= ann[vendor_col].astype(str).to_numpy() == str(r[vendor_col])
    if batch_col is not None:
        batches = _column_of(project, batch_col, ids)
        if batches is not None:
            who &= batches == str(r[batch_col])
    return sorted(set(ids[who].tolist()))


class ScorecardTable(StatusMixin, w.VBox):
    """Per vendor (or annotator) per batch: labels, gold accuracy, kappa, rework, trend.

    Rows are :func:`workbench.vendor_scorecard`; a batch whose quality dropped beyond chance
    (``drop_flag``) is drawn in red. Clicking a row selects its items (what that vendor or
    annotator labelled in that batch) in the shared selection.

    Parameters
    ----------
    project : Project
        A classification project with annotations and a vendor column.
    selection : Selection, default=None
        The shared selection; a new one when None.
    by : tuple of str, default=('vendor', 'batch')
        Passed to :func:`workbench.vendor_scorecard` (the batch is dropped when the project
        has no such column).
    card : DataFrame, optional
        A scorecard already computed (else computed here).
    page_rows : int, default=12

    Attributes
    ----------
    card : DataFrame
        The whole scorecard (empty when it cannot be computed: ``note`` says why).
    frame : DataFrame
        The rows shown (the level picked: vendors or annotators).
    note : str
        Why there is no scorecard ("" when there is one).

    Notes
    -----
    CSS classes: ``wb-scorecard`` (root), ``wb-scorecard-level``, ``wb-scorecard-summary``,
    ``wb-scorecard-grid``/``-row``/``-cell``, ``wb-scorecard-drop`` (flagged cells).
    """

    def __init__(self, project, selection: Selection | None = None, *,
                 by=("vendor", "batch"), card: pd.DataFrame | None = None,
                 page_rows: int = 12):
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.note = ""
        self.page = 0
        self._selected: int | None = None
        self.card = card if card is not None else self._compute(tuple(by))
        self.level_picker = w.ToggleButtons(options=[("vendors", "vendor"),
                                                     ("annotators", "annotator")],
                                            value="vendor")
        self.level_picker.add_class("wb-scorecard-level")
        self.summary = w.HTML("")
        self.summary.add_class("wb-scorecard-summary")
        self.rows = RowGrid(_HEADERS, page_rows, self._on_row, self._go, prefix="scorecard",
                            columns="minmax(110px, 200px) minmax(60px, 120px) 90px 60px 110px "
                                    "60px 80px 80px 90px 60px 120px")
        super().__init__([self._make_error_box(), self.summary, self.level_picker,
                          self.rows.grid, self.rows.pager])
        self.add_class("wb-scorecard")
        self.level_picker.observe(self._on_level, names=["value"])
        self.selection.observe(self._on_selection, names=["ids"])
        self._filter()

    def _compute(self, by: tuple) -> pd.DataFrame:
        from .. import results

        cols = set(self.project.items.columns) | set(self.project.annotations.columns)
        if len(by) > 1 and by[1] not in cols:
            by = by[:1]
        try:
            return results.scorecard(self.project, by=by)  # cached for every kernel
        except Exception as exc:  # e.g. no vendor column, no annotations: say why
            self.note = str(exc)
            return pd.DataFrame()

    def _filter(self) -> None:
        card = self.card
        if card.empty:
            self.frame = card
            self.summary.value = f"<i>No scorecard: {esc(self.note)}</i>"
        else:
            self.frame = card[card["level"] == self.level_picker.value]
            flagged = card.attrs.get("flagged", [])
            drops = int(card["drop_flag"].sum())
            text = ("No batch dropped beyond chance." if not drops else
                    f"<b style='color:#b00020'>{drops} batch(es) dropped beyond chance</b> "
                    f"(vendors flagged: {esc(', '.join(map(str, flagged))) or 'none'}).")
            self.summary.value = (
                "<span>Labels delivered per vendor (or annotator) and batch; gold accuracy "
                "on the items tagged <code>gold</code>; kappa against the consensus; "
                "Dawid-Skene accuracy, worst class and pair; rework (labels changed through "
                f"the relabel loop); trend against earlier batches. {text} Click a row to "
                "see its items.</span>")
        self.page, self._selected = 0, None
        self._render()

    def _content(self, i: int) -> tuple[str, str, list[str]]:
        r = self.frame.iloc[i]
        by = tuple(self.card.attrs.get("by", ("vendor", "batch")))
        batch = str(r[by[1]]) if len(by) > 1 else "all"
        red = bool(r["drop_flag"])
        trend = "–" if pd.isna(r["trend_change"]) else f"{r['trend_change'] * 100:+.1f} pt"
        if red:
            trend = (f"<b class='wb-scorecard-drop' style='color:#b00020'>{esc(trend)} "
                     "drop</b>")
        cells = [esc(r["annotator"]) if r["level"] == "annotator" else "(all)", esc(batch),
                 f"{int(r['n_labels']):,}", percent(r["gold_accuracy"]), _num(r["kappa"]),
                 percent(r["ds_accuracy"]), esc(r["worst_class"]), esc(r["worst_pair"]),
                 percent(r["rework_rate"]), trend]
        if red:
            cells = [f"<span style='color:#b00020'>{c}</span>" for c in cells[:-1]] + [trend]
        vendor = str(r[by[0]])
        return vendor, f"select the items of {vendor}, batch {batch}", cells

    def _render(self) -> None:
        self.rows.render(self.page, len(self.frame), self._content,
                         selected=lambda i: i == self._selected, noun="rows")

    def _go(self, page: int) -> None:
        page = RowGrid.clip(page, len(self.frame), self.rows.page_rows)
        if page != self.page:
            self.page = page
            self._render()

    @guarded
    def _on_row(self, slot: int) -> None:
        i = self.page * self.rows.page_rows + slot
        if i < len(self.frame):
            self.select_row(i)

    def select_row(self, i: int) -> list[str]:
        """Select the items of row ``i`` of :attr:`frame` (what a click does); return them."""
        pos = self.card.index.get_loc(self.frame.index[int(i)])
        ids = scorecard_items(self.project, self.card, pos)
        r = self.frame.iloc[int(i)]
        by = tuple(self.card.attrs.get("by", ("vendor", "batch")))
        who = r[by[0]] if r["level"] == "vendor" else f"{r['annotator']} ({r[by[0]]})"
        batch = f", batch {r[by[1]]}" if len(by) > 1 else ""
        self.selection.select(ids, origin=self, description=f"labelled by {who}{batch}")
        self._selected = int(i)
        self.rows.highlight(lambda k: k == self._selected)
        return ids

    @guarded
    def _on_level(self, change) -> None:
        self._filter()

    def _on_selection(self, change) -> None:
        if self._selected is not None and self.selection.origin is not self:
            self._selected = None
            self.rows.highlight(None)

    def __repr__(self) -> str:
        return f"ScorecardTable({len(self.card)} rows, {self.selection!r})"
