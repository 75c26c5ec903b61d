"""GuidelinePanel: the class pairs annotators confuse, their guideline, history and effect.

A click on a pair selects its items (the gallery shows them, to pick examples), and shows
the pair's current guideline (Markdown rendered by :func:`workbench.guidelines.render_html`,
sanitised), its revisions and the effect of the latest one
(:func:`workbench.guideline_effect`). A curator writes a new revision there; the save
handler checks the session server-side (:func:`workbench.session.require_write`).
"""

from __future__ import annotations

import ipywidgets as w
import pandas as pd
import traitlets

from .. import results
from .._format import percent
from ..guidelines import Guidelines, guideline_effect, render_html
from ..selection import Selection
from ..session import can_write, current_author, require_write
from ._adapters import RowGrid, StatusMixin, esc, guarded

__all__ = ["GuidelinePanel"]


def _rate_ci(rate, low, high) -> str:
    if pd.isna(rate):
        return "–"
    return f"{percent(rate)} [{percent(low)}, {percent(high)}]"


def _stamp(when) -> str:
    return "–" if pd.isna(when) else when.strftime("%Y-%m-%d %H:%M UTC")


def _p(p) -> str:
    return "–" if pd.isna(p) else f"{p:.3g}"


def _num_ci(x, low, high) -> str:
    if pd.isna(x):
        return "–"
    lo = "–" if pd.isna(low) else f"{low:.3f}"
    hi = "–" if pd.isna(high) else f"{high:.3f}"
    return f"{x:.3f} [{lo}, {hi}]"


def _effect_row(r) -> str:
    """One row of the effect table (numbers formatted, the annotator escaped)."""
    cells = [esc(r["annotator"]), f"{int(r['n_before']):,}",
             _rate_ci(r["confusion_before"], r["confusion_before_low"],
                     r["confusion_before_high"]),
             f"{int(r['n_after']):,}",
             _rate_ci(r["confusion_after"], r["confusion_after_low"], r["confusion_after_high"]),
             _p(r["p_value"]),
             _num_ci(r["kappa_before"], r["kappa_before_low"], r["kappa_before_high"]),
             _num_ci(r["kappa_after"], r["kappa_after_low"], r["kappa_after_high"]),
             esc(r["verdict"])]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


class GuidelinePanel(StatusMixin, w.VBox):
    """Confused class pairs; a click shows the pair's guideline, its history and its effect.

    Parameters
    ----------
    project : Project
        A classification project with annotations.
    selection : Selection, default=None
        The shared selection; a new one when None. A pair click selects the items where
        annotators disagree between its two classes; the gallery's picked cards
        (``selection.picked``) are what "add picked as do / don't" adds as examples.
    guidelines : Guidelines, optional
        Default: ``Guidelines(project)`` (the project's store).
    page_rows : int, default=10
    n_boot : int, default=500
        Bootstrap resamples of the effect's kappa intervals.

    Attributes
    ----------
    pairs : DataFrame
        :func:`workbench.confused_pairs` of the current annotations (read through
        :mod:`workbench.results`), plus pairs that have a guideline.
    target : str or None
        The pair shown (``"a|b"``).
    examples : dict
        The examples of the revision being written (item id -> ``"do"``/``"don't"``).
    effect : DataFrame or None
        :func:`workbench.guideline_effect` of the pair's latest revision.
    last_revision : int
        The revision written by the last save (-1 before any).

    Notes
    -----
    In a read-only session the editor is not built into the view (a ``wb-readonly`` note
    replaces it) and :meth:`save` still refuses: a browser can send messages to hidden
    widgets. CSS classes: ``wb-guideline-panel``, ``wb-guideline-pairs-grid``/``-row``,
    ``wb-guideline-html``, ``wb-guideline-history``, ``wb-guideline-effect``,
    ``wb-guideline-text``, ``wb-guideline-reason``, ``wb-guideline-effective``,
    ``wb-guideline-examples``, ``wb-guideline-add-do``, ``wb-guideline-add-dont``,
    ``wb-guideline-save``, ``wb-readonly``.
    """

    last_revision = traitlets.Int(-1)

    def __init__(self, project, selection: Selection | None = None, *,
                 guidelines: Guidelines | None = None, page_rows: int = 10,
                 n_boot: int = 500):
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.guidelines = guidelines if guidelines is not None else Guidelines(project)
        self.n_boot = int(n_boot)
        self.read_only = not can_write()
        self.raise_errors = False
        self.target: str | None = None
        self.examples: dict[str, str] = {}
        self.effect: pd.DataFrame | None = None
        self.page = 0
        self._compute_pairs()
        self.rows = RowGrid(["pair", "annotator pairs", "items", "rate", "guideline"],
                            page_rows, self._on_row, self._go, prefix="guideline-pairs",
                            columns="minmax(80px, 140px) 110px 60px 70px 120px")
        self.title = w.HTML("<i>Click a pair to see its guideline.</i>")
        self.title.add_class("wb-guideline-title")
        self.html = w.HTML("")
        self.html.add_class("wb-guideline-html")
        self.history_html = w.HTML("")
        self.history_html.add_class("wb-guideline-history")
        self.effect_html = w.HTML("")
        self.effect_html.add_class("wb-guideline-effect")
        self.text_box = w.Textarea(placeholder="The guideline, in Markdown",
                                   layout=w.Layout(width="100%", height="140px"))
        self.text_box.add_class("wb-guideline-text")
        self.reason_box = w.Text(placeholder="why it changes (optional)", description="Reason",
                                 layout=w.Layout(width="420px"))
        self.reason_box.add_class("wb-guideline-reason")
        batches = self._batches()
        self.effective_box = w.Combobox(options=batches, ensure_option=False,
                                        placeholder="batch or date (optional: now)",
                                        description="Applies from",
                                        style={"description_width": "initial"},
                                        layout=w.Layout(width="320px"))
        self.effective_box.add_class("wb-guideline-effective")
        self.examples_html = w.HTML("")
        self.examples_html.add_class("wb-guideline-examples")
        self.add_do_button = w.Button(description="add picked as DO", icon="check",
                                      layout=w.Layout(width="auto"))
        self.add_do_button.add_class("wb-guideline-add-do")
        self.add_dont_button = w.Button(description="add picked as DON'T", icon="times",
                                        layout=w.Layout(width="auto"))
        self.add_dont_button.add_class("wb-guideline-add-dont")
        self.clear_examples_button = w.Button(description="clear examples",
                                              layout=w.Layout(width="auto"))
        self.clear_examples_button.add_class("wb-guideline-clear-examples")
        self.show_examples_button = w.Button(description="show examples in the gallery",
                                             layout=w.Layout(width="auto"))
        self.show_examples_button.add_class("wb-guideline-show-examples")
        self.save_button = w.Button(description="Save revision", button_style="primary",
                                    icon="save", layout=w.Layout(width="auto"))
        self.save_button.add_class("wb-guideline-save")
        self.save_status = w.HTML("")
        self.save_status.add_class("wb-guideline-save-status")
        self.add_do_button.on_click(lambda _b: self.add_picked("do"))
        self.add_dont_button.on_click(lambda _b: self.add_picked("don't"))
        self.clear_examples_button.on_click(lambda _b: self.clear_examples())
        self.show_examples_button.on_click(lambda _b: self.show_examples())
        self.save_button.on_click(lambda _b: self.save())
        if self.read_only:
            editor: w.Widget = w.HTML("<span>Read-only session: guidelines are shown but "
                                      "cannot be revised here.</span>")
            editor.add_class("wb-readonly")
        else:
            editor = w.VBox([
                w.HTML("<b>Revise</b> (Markdown; examples: pick cards in the gallery, then "
                       "add them as DO or DON'T)"),
                self.text_box, w.HBox([self.reason_box, self.effective_box]),
                w.HBox([self.add_do_button, self.add_dont_button,
                        self.clear_examples_button]),
                self.examples_html, w.HBox([self.save_button, self.save_status])])
            editor.add_class("wb-guideline-editor")
        self.editor = editor
        detail = w.VBox([self.title, self.html, self.show_examples_button, self.effect_html,
                         self.history_html, editor],
                        layout=w.Layout(flex="1 1 480px", min_width="0"))
        pairs = w.VBox([w.HTML("<b>Class pairs annotators confuse</b>"), self.rows.grid,
                        self.rows.pager], layout=w.Layout(flex="0 0 auto"))
        super().__init__([self._make_error_box(),
                          w.HBox([pairs, detail],
                                 layout=w.Layout(flex_flow="row wrap", grid_gap="8px 24px",
                                                 align_items="flex-start"))])
        self.add_class("wb-guideline-panel")
        self.selection.observe(self._on_picked, names=["picked"])
        self._render_rows()
        self._render_examples()
        self._show_target()

    # ---- data -------------------------------------------------------------------------
    def _batches(self) -> list[str]:
        items = self.project.items
        if "batch" not in items.columns:
            return []
        return sorted(items["batch"].dropna().astype(str).unique().tolist())

    def _compute_pairs(self) -> None:
        cols = ["class_a", "class_b", "n_pairs", "n_items", "share", "rate", "item_ids"]
        pairs = (results.confused_pairs(self.project)  # cached for every kernel
                 if len(self.project.annotations) else pd.DataFrame(columns=cols))
        pairs = pairs.assign(target=["|".join(sorted((str(a), str(b)))) for a, b in zip(
            pairs["class_a"], pairs["class_b"], strict=True)])
        written = [t for t in self.guidelines.targets() if "|" in t
                   and t not in set(pairs["target"])]
        extra = pd.DataFrame({"class_a": [t.split("|")[0] for t in written],
                              "class_b": [t.split("|")[1] for t in written],
                              "n_pairs": 0, "n_items": 0, "share": 0.0, "rate": 0.0,
                              "item_ids": [[] for _ in written], "target": written})
        self.pairs = (pd.concat([pairs, extra], ignore_index=True) if written
                      else pairs.reset_index(drop=True))
        hist = self.guidelines.history()
        self._latest = hist.groupby("target")["revision_id"].max().to_dict() if len(
            hist) else {}

    # ---- pairs table ------------------------------------------------------------------
    def _content(self, i: int) -> tuple[str, str, list[str]]:
        r = self.pairs.iloc[i]
        rev = self._latest.get(r["target"])
        g = f"revision {int(rev)}" if rev is not None else "<i>none yet</i>"
        return (f"{r['class_a']} vs {r['class_b']}",
                f"show the guideline of {r['class_a']} vs {r['class_b']} and select its items",
                [f"{int(r['n_pairs']):,}", f"{int(r['n_items']):,}", percent(r["rate"]), g])

    def _render_rows(self) -> None:
        self.rows.render(self.page, len(self.pairs), self._content,
                         selected=lambda i: self.pairs.iloc[i]["target"] == self.target,
                         noun="pairs")

    def _go(self, page: int) -> None:
        page = RowGrid.clip(page, len(self.pairs), self.rows.page_rows)
        if page != self.page:
            self.page = page
            self._render_rows()

    @guarded
    def _on_row(self, slot: int) -> None:
        i = self.page * self.rows.page_rows + slot
        if i < len(self.pairs):
            self.select_pair(i)

    def select_pair(self, i: int) -> str:
        """Show pair ``i`` of :attr:`pairs` and select its items (what a click does)."""
        r = self.pairs.iloc[int(i)]
        self.target = str(r["target"])
        self.selection.select(list(r["item_ids"]), origin=self,
                              description=f"annotators disagree between {r['class_a']} "
                                          f"and {r['class_b']}")
        self._show_target(fill_editor=True)
        self.rows.highlight(lambda k: self.pairs.iloc[k]["target"] == self.target)
        return self.target

    # ---- the pair shown ---------------------------------------------------------------
    def _show_target(self, fill_editor: bool = False) -> None:
        self.effect = None
        if self.target is None:
            self.html.value = self.history_html.value = self.effect_html.value = ""
            self.show_examples_button.layout.display = "none"
            self.editor.layout.display = "none"
            return
        a, b = self.target.split("|")
        self.editor.layout.display = None
        current = self.guidelines.current(self.target)
        self.title.value = f"<h4 style='margin:4px 0'>Guideline: {esc(a)} vs {esc(b)}</h4>"
        if current is None:
            self.html.value = "<i>No guideline for this pair yet: write the first one below.</i>"
            self.history_html.value = ""
            self.effect_html.value = ""
            self.show_examples_button.layout.display = "none"
            if fill_editor:
                self.text_box.value, self.examples = "", {}
        else:
            ex = current["examples"] or {}
            examples = "".join(f"<li>{esc(k.upper())}: {esc(i)}</li>" for i, k in ex.items())
            meta = (f"<div style='color:#555'>revision {int(current['revision_id'])} by "
                    f"{esc(current['author'])}, applies from "
                    f"{esc(self._when(current))}</div>")
            body = render_html(current["text"])  # sanitised: raw HTML in the text stays text
            self.html.value = (f"{meta}<div class='wb-guideline-body'>{body}</div>"
                               + (f"<div>Examples:<ul>{examples}</ul></div>" if ex else ""))
            self.show_examples_button.layout.display = None if ex else "none"
            self._render_history()
            self._render_effect(int(current["revision_id"]))
            if fill_editor:
                self.text_box.value = str(current["text"])
                self.examples = dict(ex)
        if fill_editor:
            self.reason_box.value = ""
            self._render_examples()

    @staticmethod
    def _when(row) -> str:
        batch = row["effective_batch"]
        at = _stamp(row["effective_at"])
        return f"batch {batch} ({at})" if isinstance(batch, str) and batch else at

    def _render_history(self) -> None:
        hist = self.guidelines.history(self.target)
        rows = "".join(
            f"<tr><td>{int(r['revision_id'])}</td><td>{esc(_stamp(r['created_at']))}</td>"
            f"<td>{esc(r['author'])}</td><td>{esc(r['reason'])}</td>"
            f"<td>{esc(self._when(r))}</td><td>{len(r['examples'] or {})}</td></tr>"
            for _, r in hist.iloc[::-1].iterrows())
        self.history_html.value = (
            "<b>History</b><table class='wb-guideline-history-table'><tr><th>revision</th>"
            "<th>written</th><th>author</th><th>reason</th><th>applies from</th>"
            f"<th>examples</th></tr>{rows}</table>")

    def _render_effect(self, revision: int) -> None:
        try:
            effect = guideline_effect(self.project, revision, n_boot=self.n_boot,
                                      store=self.guidelines.store)
        except Exception as exc:  # e.g. labels cannot be placed in time: say why
            self.effect_html.value = (f"<b>Effect of revision {revision}</b>: "
                                      f"<i>{esc(exc)}</i>")
            return
        self.effect = effect
        pooled = effect.iloc[0]
        rows = "".join(_effect_row(r) for _, r in effect.iterrows())
        colour = {"helped": "#1a7f37", "worse": "#b00020"}.get(pooled["verdict"], "#555")
        self.effect_html.value = (
            f"<b>Effect of revision {revision}</b> (labels split by "
            f"{esc(effect.attrs.get('split_by'))}; 95% intervals): "
            f"<span class='wb-guideline-verdict' style='color:{colour}'>"
            f"{esc(pooled['summary'])}</span>"
            "<table class='wb-guideline-effect-table'><tr><th>annotator</th><th>labels before"
            "</th><th>confusion before</th><th>labels after</th><th>confusion after</th>"
            "<th>p</th><th>kappa before</th><th>kappa after</th><th>verdict</th></tr>"
            f"{rows}</table>")

    # ---- examples ---------------------------------------------------------------------
    def _on_picked(self, change) -> None:
        n = len(self.selection.picked)
        self.add_do_button.description = f"add {n} picked as DO" if n else "add picked as DO"
        self.add_dont_button.description = (f"add {n} picked as DON'T" if n
                                            else "add picked as DON'T")

    @guarded
    def add_picked(self, kind: str) -> dict:
        """Add the gallery's picked cards as examples marked ``kind`` ("do"/"don't")."""
        picked = list(self.selection.picked)
        if not picked:
            raise ValueError("No card is picked: click cards in the gallery to pick them, "
                             "then add them as examples.")
        for item_id in picked:
            self.examples[str(item_id)] = kind
        self._render_examples()
        return self.examples

    def clear_examples(self) -> None:
        """Drop the examples of the revision being written."""
        self.examples = {}
        self._render_examples()

    @guarded
    def show_examples(self) -> list[str]:
        """Select the current revision's examples (the gallery shows them)."""
        current = self.guidelines.current(self.target) if self.target else None
        ids = sorted((current["examples"] or {}) if current is not None else {})
        self.selection.select(ids, origin=self,
                              description=f"examples of the guideline {self.target}")
        return ids

    def _render_examples(self) -> None:
        if not self.examples:
            self.examples_html.value = "<i>No examples.</i>"
            return
        items = "".join(f"<li>{esc(k.upper())}: {esc(i)}</li>"
                        for i, k in sorted(self.examples.items()))
        self.examples_html.value = f"Examples of the new revision:<ul>{items}</ul>"

    # ---- write ------------------------------------------------------------------------
    @guarded
    def save(self) -> int | None:
        """Write the editor's text as a new revision of the pair shown (the Save button).

        The session is checked here, server-side: a read-only session refuses even when a
        crafted message clicks the hidden button. The author is the session's
        (:func:`workbench.current_author`), never a widget value.

        Returns
        -------
        int or None
            The new ``revision_id``.
        """
        require_write("revise guidelines")
        if self.target is None:
            raise ValueError("No class pair is shown: click a pair first, then write its "
                             "guideline.")
        effective = self.effective_box.value.strip() or None
        reason = self.reason_box.value.strip() or None
        rid = self.guidelines.revise(self.target, self.text_box.value, author=current_author(),
                                     reason=reason, effective=effective,
                                     examples=dict(self.examples) or None)
        self.last_revision = int(rid)
        self._latest[self.target] = int(rid)
        self.save_status.value = f"<span>Saved revision {int(rid)}.</span>"
        self._show_target()
        self._render_rows()
        return int(rid)

    def __repr__(self) -> str:
        return f"GuidelinePanel({len(self.pairs)} pairs, target={self.target!r})"
