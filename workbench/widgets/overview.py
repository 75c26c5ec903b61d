"""OverviewDashboard: the manager's read-only overview (KPIs, trends, scorecards, releases)."""

from __future__ import annotations

import math
import time
from typing import Any

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

try:  # the label-issue check runs on every build: import cleanlab with the module, so a
    # preheated Voila kernel (workbench serve) has it loaded before a viewer arrives
    import cleanlab.filter  # noqa: F401
    import cleanlab.rank  # noqa: F401
except ImportError:  # pragma: no cover - reported on the dashboard when missing
    pass

from .._format import percent, points
from ..kpis import SCORECARD_COLUMNS, OverviewKPIs, drift_headline, overview_kpis
from ..selection import Selection
from ._adapters import StatusMixin, esc, guarded, plot_text
from ._plotly_adapter import figure_widget

__all__ = ["OverviewDashboard"]

_STYLE = """
<style>
.wb-overview .wb-cards { display: flex; flex-wrap: wrap; gap: 12px; }
.wb-overview .wb-card { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 14px;
  min-width: 190px; background: #fff; }
.wb-overview .wb-kpi-title { color: #57606a; font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.wb-overview .wb-kpi-value { font-size: 26px; font-weight: 600; line-height: 1.3; }
.wb-overview .wb-kpi-sub { color: #57606a; font-size: 12px; }
.wb-overview .wb-better { color: #1a7f37; } .wb-overview .wb-worse { color: #cf222e; }
.wb-overview table.wb-table { border-collapse: collapse; font-size: 12px; }
.wb-overview table.wb-table th, .wb-overview table.wb-table td { padding: 2px 8px;
  border-bottom: 1px solid #eaeef2; text-align: right; }
.wb-overview table.wb-table th:first-child, .wb-overview table.wb-table td:first-child {
  text-align: left; }
.wb-overview .wb-section-title { font-weight: 600; margin: 6px 0 2px 0; }
.wb-overview tr.wb-flagged td { background: #ffebe9; color: #cf222e; font-weight: 600; }
.wb-overview .wb-scorecard-flags { color: #cf222e; margin: 2px 0 4px 0; }
.wb-overview .wb-drift-flagged { color: #cf222e; font-weight: 600; }
.wb-overview .wb-readonly { background: #ddf4ff; color: #0969da; border-radius: 10px;
  padding: 1px 8px; font-size: 11px; margin-left: 8px; }
</style>
"""


def _num(x: Any, digits: int = 2) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(x):
        return "–"
    return f"{x:,.0f}" if digits == 0 else f"{x:.{digits}f}"


def _table(frame: pd.DataFrame | None, formats: dict[str, Any], *, css: str,
           row_css: Any = None) -> str:
    """An HTML table with every cell escaped (metadata may hold HTML).

    ``row_css``: optional sequence of CSS classes, one per row ("" for none).
    """
    if frame is None or not len(frame):
        return "<i>nothing to show</i>"
    cols = [c for c in formats if c in frame.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    classes = list(row_css) if row_css is not None else [""] * len(frame)
    for rec, cls in zip(frame[cols].itertuples(index=False), classes, strict=True):
        cells = "".join(f"<td>{esc(formats[c](v) if formats[c] else v)}</td>"
                        for c, v in zip(cols, rec, strict=True))
        rows.append(f"<tr class='{esc(cls)}'>{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    return f"<table class='wb-table {css}'><tr>{head}</tr>{''.join(rows)}</table>"


class OverviewDashboard(StatusMixin, w.VBox):
    """The manager overview: how the model, the labels and the relabel queue are doing.

    Read-only by construction: it has no control that writes (only *Refresh*, which
    re-reads the project's tag store and recomputes). Every text that comes from the data
    (run, vendor, batch, slice names) is HTML-escaped, in the cards, the tables and the
    chart's labels and hover text.

    Parameters
    ----------
    project : Project
        An open project.
    selection : Selection, default=None
        Accepted for symmetry with the other widgets (the overview does not select).
    store : TagStore, default=None
        Where the relabel queue is read; default the project's store if it exists.
    by : tuple of str, default=('vendor', 'batch')
        Metadata columns to measure label agreement on.
    trend_by : str, default='batch'
        Column of the trend chart.
    queue : str, default='relabel'
        Tag of the relabel queue.
    top : int, default=5
        Worst slices listed.

    Attributes
    ----------
    kpis : OverviewKPIs
        The figures shown (see :func:`workbench.kpis.overview_kpis`).
    figure : plotly.graph_objects.FigureWidget or None
        The trend chart (None when there is nothing to plot).

    Notes
    -----
    CSS classes: ``wb-overview`` (root, plus ``wb-ready`` once built), ``wb-cards``,
    ``wb-card`` and ``wb-kpi-<name>`` (``error-rate``, ``agreement``, ``label-issues``,
    ``relabel``, ``project``; a detection project shows ``ap`` - the detector's AP per run
    and its change - instead of ``error-rate``), ``wb-overview-trends``, ``wb-overview-tables``,
    ``wb-overview-worst``, ``wb-overview-scorecard`` (vendor-level scorecard per batch,
    ``wb-scorecard-table``; rows with a drop beyond chance have ``wb-flagged``, and
    ``wb-scorecard-flags`` names them), ``wb-overview-releases`` (``wb-releases-table``, or
    ``wb-no-release``), ``wb-overview-drift`` (one line: the most drifted batch and column
    against the first batch and its PSI, ``wb-drift-flagged`` when it drifted;
    :func:`workbench.drift`), ``wb-status``, ``wb-overview-refresh``, ``wb-error``.

    The scorecard (:func:`workbench.vendor_scorecard`) is computed once per project load
    (:func:`workbench.kpis.cached_scorecard`); *Refresh* re-reads the releases and the
    relabel queue.

    Examples
    --------
    >>> import workbench as wb  # doctest: +SKIP
    >>> wb.widgets.OverviewDashboard(wb.open_project())  # doctest: +SKIP
    """

    def __init__(self, project: Any, selection: Selection | None = None, *, store: Any = None,
                 by: tuple[str, ...] = ("vendor", "batch"), trend_by: str = "batch",
                 queue: str = "relabel", top: int = 5):
        super().__init__()
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self._store = store
        self._by = tuple(by)
        self._trend_by = trend_by
        self._queue = queue
        self._top = top
        self.kpis: OverviewKPIs | None = None
        self.figure = None

        self.header = w.HTML()
        self.header.add_class("wb-overview-header")
        self.cards = w.HTML()
        self.cards.add_class("wb-overview-cards")
        self.trends = w.VBox()
        self.trends.add_class("wb-overview-trends")
        self.tables = w.HTML()
        self.tables.add_class("wb-overview-tables")
        self.worst = w.HTML()
        self.worst.add_class("wb-overview-worst")
        self.scorecard = w.HTML()
        self.scorecard.add_class("wb-overview-scorecard")
        self.releases = w.HTML()
        self.releases.add_class("wb-overview-releases")
        self.drift = w.HTML()
        self.drift.add_class("wb-overview-drift")
        self.status = w.HTML()
        self.status.add_class("wb-status")
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="Re-read the project and the tag store")
        self.refresh_button.add_class("wb-overview-refresh")
        self.refresh_button.on_click(self._on_refresh)
        self._make_error_box()
        self.children = [w.HTML(_STYLE), self.header, self.cards, self.drift, self.trends,
                         self.tables,
                         self.worst, self.scorecard, self.releases,
                         w.HBox([self.refresh_button, self.status]), self.error_box]
        self.add_class("wb-overview")
        self.refresh()
        self.add_class("wb-ready")

    # ---------------------------------------------------------------- state

    def refresh(self) -> None:
        """Recompute every figure and redraw (reads only)."""
        t0 = time.perf_counter()
        self.kpis = overview_kpis(self.project, store=self._store, by=self._by,
                                  trend_by=self._trend_by, queue=self._queue, top=self._top)
        self._render(time.perf_counter() - t0)

    @guarded
    def _on_refresh(self, _button=None) -> None:
        self.refresh()

    # ---------------------------------------------------------------- view

    def _render(self, seconds: float) -> None:
        k = self.kpis
        s = k.summary
        from ..session import can_write

        badge = "" if can_write() else "<span class='wb-readonly'>read-only</span>"
        self.header.value = (
            f"<h2 style='margin:4px 0'>{esc(s['name'])} — overview{badge}</h2>")
        self.cards.value = self._cards_html(k)
        self.drift.value = self._drift_html(k)
        self._render_trends(k)
        self.tables.value = self._tables_html(k)
        worst = ("Where run {} misses most boxes (slices significantly worse than the rest)"
                 if k.task == "detection" else
                 "Worst slices of run {} (significantly worse than the rest)")
        self.worst.value = (
            f"<div class='wb-section-title'>{worst.format(esc(k.run))}</div>"
            + (_table(k.worst, {"slice": None, "n": lambda v: _num(v, 0),
                                "errors": lambda v: _num(v, 0), "error_rate": percent,
                                "lift": lambda v: _num(v, 2),
                                "q_value": lambda v: f"{float(v):.2g}"}, css="wb-worst-table")
               if k.worst is not None else f"<i>{esc(k.problems.get('worst', 'none'))}</i>"))
        self.scorecard.value = self._scorecard_html(k)
        self.releases.value = self._releases_html(k)
        notes = "; ".join(f"{esc(key)}: {esc(msg)}" for key, msg in k.problems.items())
        self.status.value = (
            f"<span>Computed in {seconds:.1f} s at {time.strftime('%H:%M:%S')}.</span>"
            + (f" <span class='wb-problems'>Not shown: {notes}</span>" if notes else ""))

    @staticmethod
    def _card(key: str, title: str, value: str, sub: str) -> str:
        return (f"<div class='wb-card wb-kpi wb-kpi-{key}'>"
                f"<div class='wb-kpi-title'>{esc(title)}</div>"
                f"<div class='wb-kpi-value'>{value}</div>"
                f"<div class='wb-kpi-sub'>{sub}</div></div>")

    def _ap_card(self, k: OverviewKPIs) -> str:
        """Detection: the default run's AP (COCO, IoU .50:.95) and its change."""
        ap = k.ap
        if ap is None or not len(ap):
            return self._card("ap", "Detector AP", "–", esc(k.problems.get("ap", "")))
        default = k.run if k.run in set(ap["run"]) else ap["run"].iloc[-1]
        pos = list(ap["run"]).index(default)
        row = ap.iloc[pos]
        sub = f"run {esc(default)} · AP50 {esc(_num(row['ap50'], 3))}"
        if pos > 0 and not math.isnan(row["change"]):
            d = float(row["change"])
            cls = "wb-better" if d > 0 else "wb-worse" if d < 0 else ""
            sub += (f" · <span class='{cls}'>{d:+.3f}</span> vs "
                    f"{esc(ap['run'].iloc[pos - 1])}")
        return self._card("ap", "Detector AP", esc(_num(row["ap"], 3)), sub)

    def _cards_html(self, k: OverviewKPIs) -> str:
        s = k.summary
        cards = []
        er = k.error_rates
        if k.task == "detection":
            cards.append(self._ap_card(k))
        elif er is not None and len(er):
            default = k.run if k.run in set(er["run"]) else er["run"].iloc[-1]
            row = er[er["run"] == default].iloc[0]
            pos = list(er["run"]).index(default)
            if pos > 0 and not math.isnan(row["change"]):
                prev = er["run"].iloc[pos - 1]
                d = row["change"]
                cls = "wb-better" if d < 0 else "wb-worse" if d > 0 else ""
                sub = (f"run {esc(default)} · <span class='{cls}'>{points(d)}</span> "
                       f"vs {esc(prev)}")
            else:
                sub = f"run {esc(default)}"
            cards.append(self._card("error-rate", "Model error rate",
                                    esc(percent(row["error_rate"])), sub))
        else:
            cards.append(self._card("error-rate", "Model error rate", "–",
                                    esc(k.problems.get("error_rates", ""))))
        ag = k.agreement_overall
        if ag:
            cards.append(self._card(
                "agreement", "Label agreement", esc(percent(ag.get("percent_agreement"))),
                f"Fleiss κ {esc(_num(ag.get('fleiss_kappa')))} · "
                f"{esc(ag.get('n_annotators', ''))} annotators"))
        else:
            cards.append(self._card("agreement", "Label agreement", "–",
                                    esc(k.problems.get("agreement", ""))))
        li = k.label_issues
        if li and k.task == "detection":
            cards.append(self._card(
                "label-issues", "Suspected box label errors", esc(percent(li["rate"])),
                f"{li['n_issues']:,} of {li['n_items']:,} images, {li['n_boxes']:,} boxes "
                f"(run {esc(k.run)})"))
        elif li:
            cards.append(self._card(
                "label-issues", "Suspected label errors", esc(percent(li["rate"])),
                f"{li['n_issues']:,} of {li['n_items']:,} items (run {esc(k.run)})"))
        else:
            cards.append(self._card("label-issues", "Suspected label errors", "–",
                                    esc(k.problems.get("label_issues", ""))))
        rq = k.relabel
        if rq is not None:
            total = int(rq["n_items"].sum())
            parts = " · ".join(f"{esc(r.status)} {int(r.n_items)}" for r in rq.itertuples())
            cards.append(self._card("relabel", "Relabel queue", f"{total:,}", parts))
        else:
            cards.append(self._card("relabel", "Relabel queue", "–",
                                    esc(k.problems.get("relabel", ""))))
        boxes = f" · {s['n_boxes']:,} boxes" if "n_boxes" in s else ""
        noun = "images" if k.task == "detection" else "items"
        cards.append(self._card(
            "project", "Project", f"{s['n_items']:,} {noun}",
            f"{s['n_classes']} classes{boxes} · {s['n_annotators']} annotators · "
            f"{len(s['runs'])} runs ({esc(', '.join(map(str, s['runs'])))})"))
        return f"<div class='wb-cards'>{''.join(cards)}</div>"

    def _tables_html(self, k: OverviewKPIs) -> str:
        blocks = []
        if k.ap is not None:
            blocks.append(("AP per run (COCO)", _table(
                k.ap, {"run": None, "ap": lambda v: _num(v, 3), "ap50": lambda v: _num(v, 3),
                       "recall": percent, "n_boxes": lambda v: _num(v, 0),
                       "change": lambda v: "–" if pd.isna(v) else f"{float(v):+.3f}"},
                css="wb-ap-table")))
        if k.error_rates is not None:
            blocks.append(("Error rate per run", _table(
                k.error_rates, {"run": None, "n": lambda v: _num(v, 0),
                                "errors": lambda v: _num(v, 0), "error_rate": percent,
                                "change": points},
                css="wb-error-rate-table")))
        for col, frame in k.agreement.items():
            blocks.append((f"Label agreement per {col}", _table(
                frame, {col: None, "n_items": lambda v: _num(v, 0),
                        "percent_agreement": percent, "fleiss_kappa": lambda v: _num(v, 2)},
                css=f"wb-agreement-table wb-agreement-{esc(col)}")))
        if k.relabel is not None:
            blocks.append(("Relabel queue by status", _table(
                k.relabel, {"status": None, "n_items": lambda v: _num(v, 0)},
                css="wb-overview-relabel-table")))
        cells = "".join(f"<div><div class='wb-section-title'>{esc(t)}</div>{body}</div>"
                        for t, body in blocks)
        return f"<div style='display:flex;flex-wrap:wrap;gap:24px'>{cells}</div>"

    def _scorecard_html(self, k: OverviewKPIs) -> str:
        title = "<div class='wb-section-title'>Vendor scorecards per batch</div>"
        table = k.scorecard
        if table is None:
            return title + f"<i>{esc(k.problems.get('scorecard', 'not computed'))}</i>"
        cols = [c for c in table.columns if c not in SCORECARD_COLUMNS]
        flags = k.scorecard_flagged
        if flags is not None and len(flags):
            named = ", ".join(" ".join(str(v) for v in rec)
                              for rec in flags[cols].itertuples(index=False))
            line = f"Quality dropped beyond chance: {named}."
        else:
            line = "No vendor's quality dropped beyond chance."
        pct = {"gold_accuracy": percent, "consensus_agreement": percent,
               "rework_rate": percent, "trend_change": points}
        fmt = {"n_labels": lambda v: _num(v, 0), **pct, "kappa": lambda v: _num(v, 2),
               "worst_pair": lambda v: "–" if pd.isna(v) else v,
               "drop_flag": lambda v: "drop" if bool(v) else ""}
        formats = {c: fmt.get(c) for c in table.columns}
        rows = ["wb-flagged" if bool(v) else "" for v in table["drop_flag"].fillna(False)]
        return (title + f"<div class='wb-scorecard-flags'>{esc(line)}</div>"
                + _table(table, formats, css="wb-scorecard-table", row_css=rows))

    def _drift_html(self, k: OverviewKPIs) -> str:
        """One line: the most drifted batch and column against the baseline, and its PSI."""
        head = drift_headline(k.drift) if k.drift is not None else None
        if head is None:
            why = k.problems.get("drift", "no batch to compare")
            return f"<div class='wb-drift-line'><b>Data drift:</b> <i>{esc(why)}</i></div>"
        by = esc(head["by"])
        alpha = float(head["alpha"]) if head["alpha"] is not None else float("nan")
        rule = f"PSI &gt; {esc(_num(head['psi_threshold']))} and q &lt; {alpha:g}"
        share = ""
        if head["value"] is not None:
            share = (f" ({esc(head['value'])}: {esc(percent(head['share_baseline']))} → "
                     f"{esc(percent(head['share']))})")
        top = (f"{by} {esc(head['batch'])}, {esc(head['column'])}, PSI "
               f"{esc(_num(head['psi']))}{share}")
        if head["n_drifted"]:
            flagged = ", ".join(head["flagged"][:5]) + (" ..." if head["n_drifted"] > 5 else "")
            body = (f"<span class='wb-drift-flagged'>{head['n_drifted']} of {head['n_pairs']} "
                    f"{by}/column pairs drifted</span> ({rule}): "
                    f"{esc(flagged)}. Most: {top}.")
        else:
            body = f"no {by} drifted ({rule}). Largest change: {top}."
        return (f"<div class='wb-drift-line'><b>Data drift</b> against {by} "
                f"{esc(head['baseline'])}: {body}</div>")

    def _releases_html(self, k: OverviewKPIs) -> str:
        title = "<div class='wb-section-title'>Label releases</div>"
        rel = k.releases
        if rel is None and "releases" in k.problems:
            return title + f"<i>{esc(k.problems['releases'])}</i>"
        if rel is None or not len(rel):
            why = "" if rel is not None else " (releases need a project opened from a folder)"
            return title + f"<i class='wb-no-release'>No release yet{esc(why)}.</i>"
        return title + _table(rel, {"release": None, "created_at": None, "author": None,
                                    "message": None, "n_changed": lambda v: _num(v, 0),
                                    "changes": None}, css="wb-releases-table")

    def _render_trends(self, k: OverviewKPIs) -> None:
        if k.trends is None or not len(k.trends):
            self.figure = None
            note = k.problems.get("trends", "no batches to plot")
            self.trends.children = [w.HTML(f"<i>Trends: {esc(note)}</i>")]
            return
        by = self._trend_by
        fmt = ".3f" if k.task == "detection" else ".1%"
        unit = "boxes" if k.task == "detection" else "items"
        order = sorted(pd.unique(k.trends[by].astype(str)))
        traces = []
        for series, part in k.trends.groupby("series", sort=True):
            part = part.set_index(by).reindex(order)
            name = plot_text(series)
            traces.append(go.Scatter(
                x=[plot_text(v) for v in order], y=part["value"].tolist(),
                customdata=part["n"].fillna(0).astype(int).tolist(),
                mode="lines+markers", name=name,
                hovertemplate=(f"{plot_text(by)} %{{x}}<br>{name}: %{{y:{fmt}}}"
                               f"<br>%{{customdata}} {unit}"
                               "<extra></extra>")))
        layout = go.Layout(
            title=f"Trends over {plot_text(by)}", height=320,
            margin={"l": 50, "r": 20, "t": 40, "b": 40},
            yaxis={"tickformat": ".2f" if k.task == "detection" else ".0%",
                   "rangemode": "tozero"},
            xaxis={"type": "category", "categoryorder": "array",
                   "categoryarray": [plot_text(v) for v in order]},
            legend={"orientation": "h", "y": -0.2})
        if self.figure is None:
            fig = figure_widget(data=traces, layout=layout)
        else:
            fig = self.figure
            with fig.batch_update():
                fig.data = []
                fig.add_traces(traces)
                fig.layout = layout
        self.figure = fig
        self.trends.children = [fig]

    def __repr__(self) -> str:
        name = getattr(self.project, "name", "?")
        return f"OverviewDashboard(project={name!r}, run={getattr(self.kpis, 'run', None)!r})"
