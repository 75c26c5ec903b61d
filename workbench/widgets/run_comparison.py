"""RunComparison: per-slice error deltas between two runs and the fixed/broken items."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .._format import percent, points
from .._validation import check_int
from ..detection.slicing import DetectionRunDiff
from ..selection import Selection
from ..slicing import RunDiff, _encode, compare_runs
from ._adapters import RowGrid, StatusMixin, esc, guarded, ids_where

__all__ = ["RunComparison"]

_HEADERS = ["slice", "n", "base", "candidate", "delta", "fixed", "broken"]


class RunComparison(StatusMixin, w.VBox):
    """Compare two runs: overall and per-slice error rates, and the items that flipped.

    Parameters
    ----------
    project : Project
        A project with at least two runs.
    selection : Selection, default=None
        The shared selection; a new one when None.
    base, candidate : str, default=None
        Runs to compare (default: the first two of ``project.runs``; the candidate defaults
        to the default run when it is not the base).
    column : str, default=None
        Metadata column of the slice rows (default: the first).
    page_size : int, default=10
        Slice rows per page (a fixed pool of row widgets, reused when paging).

    Attributes
    ----------
    diff : RunDiff
        The result of :func:`workbench.compare_runs`.
    rows_frame : DataFrame
        The slice rows shown (``diff.by_slice`` for the chosen column, worst delta first).
    """

    base = traitlets.Unicode(None, allow_none=True)
    candidate = traitlets.Unicode(None, allow_none=True)
    column = traitlets.Unicode(None, allow_none=True)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 base: str | None = None, candidate: str | None = None,
                 column: str | None = None, page_size: int = 10):
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.page_size = check_int(page_size, "page_size", "RunComparison", minimum=1)
        runs = list(project.runs)
        if base is None:
            base = runs[0] if runs else None
        if candidate is None:
            others = [r for r in runs if r != base]
            default = getattr(project, "default_run", None)
            candidate = default if default in others else (others[0] if others else base)
        self._ready = False
        self.diff: RunDiff | None = None
        self.rows_frame = pd.DataFrame()
        self.base_picker = w.Dropdown(options=runs, value=base, description="base",
                                      layout=w.Layout(width="200px"))
        self.candidate_picker = w.Dropdown(options=runs, value=candidate,
                                           description="candidate",
                                           layout=w.Layout(width="220px"))
        self.column_picker = w.Dropdown(description="column", layout=w.Layout(width="220px"))
        self.base_picker.add_class("wb-run-base")
        self.candidate_picker.add_class("wb-run-candidate")
        self.column_picker.add_class("wb-run-column")
        self.summary = w.HTML("")
        self.summary.add_class("wb-run-summary")
        self.fixed_button = w.Button(description="fixed", button_style="success")
        self.broken_button = w.Button(description="broken", button_style="danger")
        self.fixed_button.add_class("wb-run-fixed")
        self.broken_button.add_class("wb-run-broken")
        self.fixed_button.on_click(lambda _b: self._click("fixed"))
        self.broken_button.on_click(lambda _b: self._click("broken"))
        self.page = 0
        self.table = RowGrid(_HEADERS, self.page_size, self._click_row, self.go, prefix="run",
                             columns="minmax(140px, 2fr) 60px 70px 80px 70px 60px 60px")
        self.grid = self.table.grid
        self._row_buttons = [r.button for r in self.table.rows]
        super().__init__([
            w.HBox([self.base_picker, self.candidate_picker, self.column_picker],
                   layout=w.Layout(flex_flow="row wrap")),
            self._make_error_box(), self.summary,
            w.HBox([self.fixed_button, self.broken_button]), self.grid, self.table.pager,
        ])
        self.add_class("wb-run-comparison")
        self.base, self.candidate, self.column = base, candidate, column
        w.link((self.base_picker, "value"), (self, "base"))
        w.link((self.candidate_picker, "value"), (self, "candidate"))
        self._ready = True
        self._safe(self.compute)
        w.link((self.column_picker, "value"), (self, "column"))

    # ---- state ------------------------------------------------------------------------

    def compute(self) -> None:
        """Compare the chosen runs and show the result."""
        if self.base is None or self.candidate is None:
            self.summary.value = "This project needs two prediction runs to compare."
            return
        self.diff = compare_runs(self.project, self.base, self.candidate)
        self._ids = self.diff.errors["item_id"]  # made str only where selected
        self._encodings: dict = {}
        columns = list(self.diff.by_slice["column"].unique()) if len(self.diff.by_slice) else []
        keep = self.column if self.column in columns else (columns[0] if columns else None)
        self.column_picker.options = columns
        self.column_picker.value = keep
        self.column = keep
        self._render()

    @traitlets.observe("base", "candidate")
    def _on_runs(self, change) -> None:
        if self._ready and change["old"] != change["new"]:
            self._safe(self.compute)

    @traitlets.observe("column")
    def _on_column(self, change) -> None:
        if self._ready and self.diff is not None:
            self._safe(self._render)

    def items_of(self, what: str) -> list[str]:
        """Ids of the ``"fixed"`` or ``"broken"`` items."""
        if self.diff is None:
            return []
        return self.diff.fixed_ids if what == "fixed" else self.diff.broken_ids

    def select_flips(self, what: str) -> list[str]:
        """Select the fixed or broken items (what the buttons do), and their boxes in detection."""
        if what not in ("fixed", "broken"):
            raise ValueError("The 'what' parameter of RunComparison.select_flips must be a str "
                             f"among {{'fixed', 'broken'}}. Got {what!r} instead.")
        ids = self.items_of(what)
        verb = "fixed" if what == "fixed" else "broken"
        boxes = None  # a detection diff also selects the flipped boxes themselves
        if isinstance(self.diff, DetectionRunDiff):
            boxes = self.diff.fixed_box_ids if what == "fixed" else self.diff.broken_box_ids
        self.selection.select(ids, box_ids=boxes, origin=self,
                              description=f"{verb} by {self.candidate} vs {self.base}")
        return ids

    def items_of_row(self, i: int) -> list[str]:
        """Ids of the items in slice row ``i`` of :attr:`rows_frame`."""
        row = self.rows_frame.iloc[int(i)]
        col = row["column"]
        if col not in self._encodings:
            self._encodings[col] = _encode(self.diff.errors[col], 4)
        return ids_where(self._ids, self._encodings[col].codes == int(row["_code"]))

    def select_row(self, i: int) -> list[str]:
        """Select the items of slice row ``i`` (what clicking a row does)."""
        ids = self.items_of_row(i)
        row = self.rows_frame.iloc[int(i)]
        self.selection.select(ids, origin=self,
                              description=f"{row['column']}={row['bin']}")
        return ids

    @guarded
    def _click(self, what: str) -> None:
        self.select_flips(what)

    @guarded
    def _click_row(self, k: int) -> None:
        i = self.page * self.page_size + k
        if i < len(self.rows_frame):
            self.select_row(i)

    def go(self, page: int) -> None:
        """Show page ``page`` of the slice rows (clipped to the valid range)."""
        page = RowGrid.clip(page, len(self.rows_frame), self.page_size)
        if page != self.page:
            self.page = page
            self._render_rows()

    # ---- view -------------------------------------------------------------------------

    def _render(self) -> None:
        d = self.diff
        o = d.overall.iloc[0]
        better = "better" if o["delta"] < 0 else ("worse" if o["delta"] > 0 else "unchanged")
        self.summary.value = (
            f"<b>{esc(self.candidate)}</b> vs <b>{esc(self.base)}</b> on {int(o['n']):,} items: "
            f"error rate {percent(o['base_error_rate'])} &rarr; "
            f"{percent(o['candidate_error_rate'])}"
            f" ({better}; McNemar p = {o['p_value']:.2g}: the chance of a change this large "
            "if both runs were equally good). <b>fixed</b>: wrong in the base run, right in "
            "the candidate; <b>broken</b>: the other way round. Click a button or a slice to "
            "see those items.")
        self.fixed_button.description = f"fixed ({int(o['n_fixed'])})"
        self.broken_button.description = f"broken ({int(o['n_broken'])})"
        frame = d.by_slice
        if self.column is not None and len(frame):
            frame = frame[frame["column"] == self.column].copy()
            frame["_code"] = np.arange(len(frame))
            frame = frame.sort_values("delta", ascending=False, kind="stable")
        self.rows_frame = frame.reset_index(drop=True)
        self.page = 0
        self._render_rows()

    def _row_content(self, i: int) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of slice row ``i`` of :attr:`rows_frame`."""
        r = self.rows_frame.iloc[i]
        color = "#b00020" if r["delta"] > 0 else "#1b5e20"
        return (str(r["bin"]), f"{r['column']}={r['bin']}",
                [f"{int(r['n']):,}", percent(r["base_error_rate"]),
                 percent(r["candidate_error_rate"]),
                 f"<span style='color:{color}'>{points(r['delta'])}</span>",
                 str(int(r["n_fixed"])), str(int(r["n_broken"]))])

    def _render_rows(self) -> None:
        self.table.render(self.page, len(self.rows_frame), self._row_content, noun="slices")

    def __repr__(self) -> str:
        return f"RunComparison({self.diff!r})"
