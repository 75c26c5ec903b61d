"""QcRoundView: the project's QC rounds; a round's report with pass/fail; a row selects items."""

from __future__ import annotations

import ipywidgets as w
import pandas as pd

from .._format import percent
from ..selection import Selection
from ._adapters import RowGrid, StatusMixin, esc, guarded

__all__ = ["QcRoundView"]


def _num(x) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.3f}"


class QcRoundView(StatusMixin, w.VBox):
    """QC rounds (``store.qc_rounds.frame()``) and the selected round's :func:`qc_report`.

    Clicking a round shows its report per vendor and annotator: gold accuracy with its
    interval, agreement and kappa with the others, what they miss, and pass/fail against
    the ``[qc]`` thresholds. Clicking a report row selects its items (the labelled items of
    the round) in the shared selection.

    Parameters
    ----------
    project : Project
    selection : Selection, default=None
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Attributes
    ----------
    rounds : DataFrame
        ``store.qc_rounds.frame()``.
    report : DataFrame
        :func:`workbench.qc_report` of the round shown (empty before a click).

    Notes
    -----
    CSS classes: ``wb-qc-rounds``, ``wb-qc-round-grid``/``-row``, ``wb-qc-report-grid``/
    ``-row``/``-cell``, ``wb-qc-summary``, ``wb-qc-pass``, ``wb-qc-fail``.
    """

    def __init__(self, project, selection: Selection | None = None, *, store=None):
        from ..tags import TagStore

        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.store = store if store is not None else TagStore.for_project(project)
        self.raise_errors = False
        self.round_id: int | None = None
        self.report = pd.DataFrame()
        self.rounds = self.store.qc_rounds.frame()
        self.round_page = self.report_page = 0
        self.round_rows = RowGrid(["round", "name", "author", "planned", "items", "gold"], 8,
                                  self._on_round, self._go_rounds, prefix="qc-round",
                                  columns="60px minmax(100px, 220px) 120px 150px 60px 60px")
        self.summary = w.HTML("")
        self.summary.add_class("wb-qc-summary")
        self.report_rows = RowGrid(
            ["level", "vendor", "annotator", "labels", "gold accuracy [95% CI]", "kappa",
             "worst class", "worst pair", "result"], 12, self._on_report_row,
            self._go_report, prefix="qc-report",
            columns="80px minmax(80px, 160px) minmax(60px, 120px) 60px 190px 60px 80px "
                    "90px minmax(120px, 320px)")
        super().__init__([self._make_error_box(), w.HTML("<b>QC rounds</b>"),
                          self.round_rows.grid, self.round_rows.pager, self.summary,
                          self.report_rows.grid, self.report_rows.pager])
        self.add_class("wb-qc-rounds")
        self._render_rounds()
        self._render_report()

    # ---- rounds -------------------------------------------------------------------------
    def _round_content(self, i: int):
        r = self.rounds.iloc[i]
        when = r["created_at"]
        when = "–" if pd.isna(when) else when.strftime("%Y-%m-%d %H:%M")
        return (str(int(r["round_id"])), f"show the report of round {int(r['round_id'])}",
                [esc(r["name"]), esc(r["author"]), esc(when),
                 f"{int(r.get('n_items', 0) or 0):,}", f"{int(r.get('n_gold', 0) or 0):,}"])

    def _render_rounds(self) -> None:
        self.round_rows.render(self.round_page, len(self.rounds), self._round_content,
                               selected=lambda i: int(self.rounds.iloc[i]["round_id"])
                               == self.round_id, noun="rounds")
        if self.rounds.empty:
            self.summary.value = ("<i>No QC round yet: plan one with "
                                  "<code>wb.plan_qc_round(project, n)</code>.</i>")

    def _go_rounds(self, page: int) -> None:
        self.round_page = RowGrid.clip(page, len(self.rounds), self.round_rows.page_rows)
        self._render_rounds()

    @guarded
    def _on_round(self, slot: int) -> None:
        i = self.round_page * self.round_rows.page_rows + slot
        if i < len(self.rounds):
            self.show_round(int(self.rounds.iloc[i]["round_id"]))

    def show_round(self, round_id: int) -> pd.DataFrame:
        """Show the report of round ``round_id`` (what a click on a round does)."""
        from ..qc import qc_report

        self.round_id = int(round_id)
        self.report_page = 0
        try:
            self.report = qc_report(self.project, self.round_id, store=self.store)
        except Exception as exc:  # e.g. no labels imported for the round yet: say why
            self.report = pd.DataFrame()
            self.summary.value = f"<b>Round {self.round_id}</b>: <i>{esc(exc)}</i>"
        else:
            a = self.report.attrs
            th = a.get("thresholds", {})
            failed = int((~self.report["passed"].astype(bool)).sum())
            self.summary.value = (
                f"<b>Round {self.round_id}</b>: {a.get('n_items', '–')} items "
                f"({a.get('n_gold_items', '–')} gold), {a.get('n_labels', '–')} labels. Pass: "
                f"gold accuracy &ge; {esc(th.get('min_gold_accuracy'))} and kappa &ge; "
                f"{esc(th.get('min_kappa'))}. {failed} row(s) fail. Click a row to see its "
                "items.")
        self._render_rounds()
        self._render_report()
        return self.report

    # ---- report ---------------------------------------------------------------------------
    def _report_content(self, i: int):
        r = self.report.iloc[i]
        gold = ("–" if pd.isna(r["gold_accuracy"]) else
                f"{percent(r['gold_accuracy'])} [{percent(r['gold_ci_low'])}, "
                f"{percent(r['gold_ci_high'])}]")
        if bool(r["passed"]):
            result = "<b class='wb-qc-pass' style='color:#1a7f37'>PASS</b>"
        else:
            reasons = r["fail_reasons"]
            reasons = "; ".join(map(str, reasons)) if isinstance(reasons, (list, tuple)) \
                else ("" if reasons is None or (isinstance(reasons, float) and pd.isna(reasons))
                      else str(reasons))
            result = (f"<b class='wb-qc-fail' style='color:#b00020'>FAIL</b> "
                      f"<span style='color:#b00020'>{esc(reasons)}</span>")
        return (str(r["level"]), "select the items behind this row",
                [esc(r["vendor"]), esc(r["annotator"]), f"{int(r['n_labels']):,}", gold,
                 _num(r["kappa"]), esc(r["worst_class"]), esc(r["worst_pair"]), result])

    def _render_report(self) -> None:
        self.report_rows.render(self.report_page, len(self.report), self._report_content,
                                noun="rows")

    def _go_report(self, page: int) -> None:
        self.report_page = RowGrid.clip(page, len(self.report), self.report_rows.page_rows)
        self._render_report()

    @guarded
    def _on_report_row(self, slot: int) -> None:
        i = self.report_page * self.report_rows.page_rows + slot
        if i < len(self.report):
            self.select_row(i)

    def select_row(self, i: int) -> list[str]:
        """Select the items labelled by row ``i`` of the report in the round."""
        r = self.report.iloc[int(i)]
        ids = sorted(map(str, r["item_ids"]))
        who = r["annotator"] if r["level"] == "annotator" else r["vendor"]
        self.selection.select(ids, origin=self,
                              description=f"QC round {self.round_id}: labelled by {who}")
        return ids

    def __repr__(self) -> str:
        return f"QcRoundView({len(self.rounds)} rounds, round_id={self.round_id!r})"
