"""DetectionIssueList: suspected box label errors (missing, mislocated, wrong class), ranked.

The rows are :func:`workbench.label_issues` of a detection project (cleanlab's
``object_detection`` scores combined with the annotators' consensus boxes, see
:mod:`workbench.detection.label_quality`), most suspicious first. A click selects the image
and the box in question, which the gallery draws highlighted.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from .._validation import check_int
from ..detection.label_quality import ISSUE_TYPES
from ..selection import Selection
from ._adapters import PagedFrameMixin, RowGrid, StatusMixin, esc, guarded
from ._detection_data import DetectionData, detection_data

__all__ = ["DetectionIssueList", "row_box_ids"]

_HEADERS = ["image", "issue", "box: label → suggested", "score", "evidence"]
_ISSUE_TEXT = {"missing": "missing box", "mislocated": "mislocated", "wrong_class": "wrong class"}
_ALL = "all"


def _score(s: Any) -> str:
    """A box score (0 = surely an error, 1 = no evidence of one) for a reader."""
    if s is None or pd.isna(s):
        return "–"
    return "&lt; 0.01" if s < 0.01 else f"{float(s):.2f}"


def _present(value: Any) -> bool:
    return value is not None and not pd.isna(value) and str(value) != ""


def row_box_ids(row: Any, members: dict | None = None) -> list[str]:
    """The box ids a click on one label-issue row selects.

    The box in question (``box_id``); for a ``missing`` row (no box) the detection that
    suggests it (``pred_id``), or, when only the annotators suggest it, the annotators'
    boxes behind the consensus box (``members[consensus_id]``).

    Parameters
    ----------
    row : mapping or Series
        One row of :func:`workbench.label_issues` of a detection project.
    members : dict, default=None
        ``{consensus_id: (annotator box ids...)}``.

    Returns
    -------
    list of str
    """
    out = []
    if _present(row.get("box_id")):
        out.append(str(row["box_id"]))
    if str(row.get("issue_type")) == "missing":
        if _present(row.get("pred_id")):
            out.append(str(row["pred_id"]))
        elif members and _present(row.get("consensus_id")):
            out.extend(members.get(str(row["consensus_id"]), ()))
    return out


class DetectionIssueList(StatusMixin, PagedFrameMixin, w.VBox):
    """Suspected box label errors of a detection project, ranked and paginated.

    Every row is one box in question: a ``missing`` box (a confident detection, or a box
    most annotators drew, where the dataset has none), a ``mislocated`` box or a box of the
    ``wrong_class``, with its score (lower = more likely an error) and who argues against it
    (``cleanlab``: the model's detections; ``annotators``: their consensus boxes).

    Parameters
    ----------
    project : DetectionProject
        A project with ``task == "detection"`` and at least one prediction run.
    selection : Selection, default=None
        The shared selection; a new one when None.
    data : DetectionData, default=None
        The frames shared with the other widgets of the dashboard: the label issues are
        computed once per run on it (:meth:`DetectionData.label_issues`). A new one when
        None.
    run : str, default=None
        The model run (None: the project's default run).
    page_size : int, default=15
        Rows per page.
    issues_only : bool, default=True
        List only the flagged boxes (``is_issue``); otherwise every scored box.

    Attributes
    ----------
    issues : DataFrame
        The full label-issues frame (empty, with a message, when it cannot be computed).
    frame : DataFrame
        The rows listed: ``issues`` filtered by ``issues_only`` and ``issue_type``, in rank
        order (most suspicious first).
    issue_type : str
        ``"all"`` or one of ``missing``, ``mislocated``, ``wrong_class`` (dropdown
        ``wb-issue-type``).
    row : int or None
        The row of ``issues`` selected by a click (its index label), else None.

    Notes
    -----
    A click on a row selects its image (``selection.ids``) and its boxes
    (``selection.box_ids``, see :func:`row_box_ids`); "select page" selects the images and
    boxes of the page, "select all listed" those of every listed row. CSS classes:
    ``wb-detection-issues``, rows ``wb-issue-row``, ``wb-issue-select-page``,
    ``wb-issue-select-all``, ``wb-issue-only``, ``wb-issue-message``.

    Examples
    --------
    >>> issues = DetectionIssueList(wb.open_project("data/sample-detection"))  # doctest: +SKIP
    """

    issues_only = traitlets.Bool(True)
    issue_type = traitlets.Unicode(_ALL)
    row = traitlets.Int(None, allow_none=True)

    def __init__(self, project: Any, selection: Selection | None = None,
                 data: DetectionData | None = None, *, run: str | None = None,
                 page_size: int = 15, issues_only: bool = True):
        if getattr(project, "task", None) != "detection":
            raise TypeError(
                "DetectionIssueList needs a detection project (task = \"detection\" in "
                f"workbench.toml). Got {type(project).__name__} with task "
                f"{getattr(project, 'task', None)!r}; use LabelIssueList for classification.")
        if data is not None and not isinstance(data, DetectionData):
            raise TypeError("The 'data' parameter of DetectionIssueList must be a "
                            f"DetectionData or None. Got {type(data).__name__} instead.")
        if not isinstance(issues_only, bool):
            raise ValueError("The 'issues_only' parameter of DetectionIssueList must be a "
                             f"bool. Got {issues_only!r} instead.")
        self.page_size = check_int(page_size, "page_size", "DetectionIssueList", minimum=1)
        self.project = project
        self.data = detection_data(project, data)
        self.selection = selection if selection is not None else Selection()
        self.run = run if run is not None else self.data.default_run()
        self._members: dict | None = None
        self.message = w.HTML("")
        self.message.add_class("wb-issue-message")
        self.only_box = w.Checkbox(value=issues_only, description="flagged only",
                                   indent=False, layout=w.Layout(width="110px"))
        self.only_box.add_class("wb-issue-only")
        self.type_picker = w.Dropdown(options=[("all issue types", _ALL)],
                                      value=_ALL, description="issue",
                                      layout=w.Layout(width="260px"))
        self.type_picker.add_class("wb-issue-type")
        self.select_page_button = w.Button(description="select page")
        self.select_page_button.add_class("wb-issue-select-page")
        self.select_all_button = w.Button(description="select all listed")
        self.select_all_button.add_class("wb-issue-select-all")
        self.table = RowGrid(_HEADERS, self.page_size, self._on_row, self.go, prefix="issue",
                             columns="minmax(110px, 200px) 100px minmax(140px, 220px) 70px 90px")
        self.rows, self.grid = self.table.rows, self.table.grid
        self.prev_button, self.next_button = self.table.prev_button, self.table.next_button
        self.page_label = self.table.page_label
        super().__init__([
            w.HBox([self.type_picker, self.only_box, self.select_page_button,
                    self.select_all_button], layout=w.Layout(flex_flow="row wrap",
                                                             align_items="center")),
            self._make_error_box(), self.message, self.grid, self.table.pager,
        ])
        self.add_class("wb-label-issues")
        self.add_class("wb-detection-issues")
        self.select_page_button.on_click(self._on_select_page)
        self.select_all_button.on_click(self._on_select_all)
        self._load()
        self.issues_only = issues_only
        w.link((self.only_box, "value"), (self, "issues_only"))
        w.link((self.type_picker, "value"), (self, "issue_type"))
        self.selection.observe(self._on_selection, names=["ids", "box_ids"])
        self._refilter()

    # ---- state ------------------------------------------------------------------------
    def _load(self) -> None:
        self.unavailable = None
        self.notes: list[str] = []
        try:
            self.issues = self.data.label_issues(self.run).reset_index(drop=True)
            self.notes = self.data.label_issue_notes(self.run)
        except Exception as exc:  # no run / no detections: say so, keep working
            self.unavailable = f"{type(exc).__name__}: {exc}"
            self.issues = pd.DataFrame(columns=["item_id", "box_id", "pred_id", "issue_type",
                                                "score", "label", "suggested_label",
                                                "evidence", "consensus_id", "rank",
                                                "is_issue"])
        self._update_picker()

    def _update_picker(self) -> None:
        """Dropdown options with the number of rows of each type (under ``issues_only``)."""
        frame = self._flagged()
        counts = frame["issue_type"].astype(str).value_counts() if len(frame) else {}
        options = [(f"all issue types ({len(frame):,})", _ALL)] + [
            (f"{_ISSUE_TEXT[t]} ({int(counts.get(t, 0)):,})", t) for t in ISSUE_TYPES]
        current = self.issue_type  # new options reset the dropdown (and the linked trait)
        self.type_picker.options = options
        self.type_picker.value = current
        self.issue_type = current

    @traitlets.validate("issue_type")
    def _check_type(self, proposal) -> str:
        value = proposal["value"]
        if value != _ALL and value not in ISSUE_TYPES:
            raise traitlets.TraitError(
                f"issue_type must be one of {[_ALL, *ISSUE_TYPES]}. Got {value!r} instead.")
        return value

    def _flagged(self) -> pd.DataFrame:
        frame = self.issues
        if self.issues_only and len(frame):
            frame = frame[frame["is_issue"].astype(bool).to_numpy()]
        return frame

    def _refilter(self) -> None:
        frame = self._flagged()
        if self.issue_type != _ALL and len(frame):
            frame = frame[(frame["issue_type"].astype(str) == self.issue_type).to_numpy()]
        if "rank" in frame.columns and len(frame):
            frame = frame.sort_values("rank", kind="stable")
        self.frame = frame
        self.page = 0
        self._render()

    @property
    def item_id(self) -> str | None:
        """The image of the row selected by a click (None when none is)."""
        if self.row is None or self.row not in self.issues.index:
            return None
        return str(self.issues.at[self.row, "item_id"])

    def _page_rows(self) -> pd.DataFrame:
        start = self.page * self.page_size
        return self.frame.iloc[start:start + self.page_size]

    def page_ids(self) -> list[str]:
        """Image ids of the rows on the current page (in row order, repeated if needed)."""
        return self._page_rows()["item_id"].astype(str).tolist()

    def members(self) -> dict:
        """``{consensus_id: annotator box ids}`` of the annotators' consensus boxes.

        The same consensus :func:`workbench.label_issues` compares with (majority, IoU
        0.55, every annotation), computed once when a row needs it.
        """
        if self._members is None:
            from ..detection.consensus import box_consensus

            ann = self.project.annotations
            self._members = {}
            if len(ann):
                cons = box_consensus(ann, "majority", items=self.project,
                                     classes=[str(c) for c in self.project.classes])
                self._members = {str(c): tuple(b) for c, b in zip(
                    cons["consensus_id"].tolist(), cons["box_ids"].tolist(), strict=True)}
        return self._members

    def _box_ids(self, rows: pd.DataFrame) -> list[str]:
        members = None
        if "consensus_id" in rows.columns and len(rows):
            needs = ((rows["issue_type"].astype(str) == "missing").to_numpy()
                     & rows["pred_id"].isna().to_numpy() & rows["consensus_id"].notna().to_numpy())
            members = self.members() if needs.any() else None
        out: list[str] = []
        for r in rows.to_dict("records"):
            out.extend(row_box_ids(r, members))
        return out

    def select_row(self, row: Any) -> tuple[list[str], list[str]]:
        """Select the image and boxes of one row of :attr:`issues` (what a click does).

        Parameters
        ----------
        row : index label of :attr:`issues`

        Returns
        -------
        (ids, box_ids) : (list of str, list of str)
        """
        if row not in self.issues.index:
            raise ValueError(f"Row {row!r} is not a row of the label issues (index "
                             f"0..{len(self.issues) - 1}).")
        r = self.issues.loc[[row]]
        item = str(r["item_id"].iat[0])
        boxes = self._box_ids(r)
        kind = _ISSUE_TEXT.get(str(r["issue_type"].iat[0]), str(r["issue_type"].iat[0]))
        label, suggested = r["label"].iat[0], r["suggested_label"].iat[0]
        what = f"label {label} → {suggested}" if _present(label) else f"suggested {suggested}"
        desc = f"suspected {kind} on {item}: {what}"
        self.row = int(row)
        self.selection.select([item], box_ids=boxes, origin=self, description=desc)
        return [item], boxes

    def select_page(self) -> tuple[list[str], list[str]]:
        """Select the images and boxes of every row on the current page."""
        return self._select(self._page_rows(),
                            f"suspected box errors, page {self.page + 1}")

    def select_listed(self) -> tuple[list[str], list[str]]:
        """Select the images and boxes of every listed row (all pages)."""
        what = "" if self.issue_type == _ALL else f" ({_ISSUE_TEXT[self.issue_type]})"
        return self._select(self.frame, f"all listed suspected box errors{what}")

    def _select(self, rows: pd.DataFrame, description: str) -> tuple[list[str], list[str]]:
        ids = list(dict.fromkeys(rows["item_id"].astype(str).tolist()))
        boxes = list(dict.fromkeys(self._box_ids(rows)))
        self.row = None
        self.selection.select(ids, box_ids=boxes, origin=self, description=description)
        return ids, boxes

    @guarded
    def _on_row(self, slot: int) -> None:
        """Adapter: a click on row ``slot`` of the page."""
        rows = self._page_rows()
        if slot < len(rows):
            self.select_row(rows.index[slot])

    @guarded
    def _on_select_page(self, _button) -> None:
        self.select_page()

    @guarded
    def _on_select_all(self, _button) -> None:
        self.select_listed()

    @guarded
    def _on_selection(self, change) -> None:
        if self.row is not None and self.selection.origin is not self:
            self.row = None

    @traitlets.observe("issues_only", "issue_type")
    def _on_filter(self, change) -> None:
        if getattr(self, "frame", None) is None:
            return
        try:
            if change["name"] == "issues_only":
                self._update_picker()
            self._refilter()
        except Exception as exc:  # shown, not swallowed
            self.show_error(exc)

    @traitlets.observe("row")
    def _on_row_change(self, change) -> None:
        if getattr(self, "frame", None) is not None:
            self.table.highlight(self._is_selected)

    def _is_selected(self, i: int) -> bool:
        return self.row is not None and self.frame.index[i] == self.row

    # ---- view -------------------------------------------------------------------------
    def _row_content(self, i: int) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of row ``i`` of :attr:`frame`."""
        r = self.frame.iloc[i]
        kind = str(r["issue_type"])
        box = r["box_id"] if _present(r["box_id"]) else r.get("pred_id")
        label = esc(r["label"]) if _present(r["label"]) else "<i>none</i>"
        suggested = esc(r["suggested_label"]) if _present(r["suggested_label"]) else "–"
        flag = " ⚑" if bool(r.get("is_issue", False)) else ""
        tooltip = f"rank {r.get('rank', '')}: select this image and box"
        if _present(box):
            tooltip += f" {box}"
        return (str(r["item_id"]), tooltip,
                [f"<span class='wb-issue-kind' data-issue='{esc(kind)}'>"
                 f"{esc(_ISSUE_TEXT.get(kind, kind))}{flag}</span>",
                 f"{label} → <b>{suggested}</b>",
                 _score(r["score"]), esc(r.get("evidence", ""))])

    def _render(self) -> None:
        self.table.render(self.page, len(self.frame), self._row_content,
                          selected=self._is_selected, noun="boxes")
        n_flagged = int(self.issues["is_issue"].astype(bool).sum()) if len(self.issues) else 0
        if self.unavailable:
            self.message.value = (
                "<span style='color:#a60'>Suspected box errors need a model run with "
                f"detections (predictions.*). {esc(self.unavailable)}</span>")
        else:
            notes = "".join(f"<br><span style='color:#a60'>{esc(m)}</span>"
                            for m in self.notes)
            n_images = self.issues.loc[self.issues["is_issue"].astype(bool).to_numpy(),
                                       "item_id"].nunique() if n_flagged else 0
            self.message.value = (
                f"<span>{n_flagged:,} boxes on {n_images:,} images flagged as suspected "
                f"label errors (run {esc(self.run or '')}), most suspicious first. "
                "<i>Score</i>: 0 = surely an error, 1 = no evidence of one; <i>evidence</i>: "
                "cleanlab (the model's detections) or the annotators (their consensus "
                "boxes). A click selects the image and the box in question.</span>"
                f"{notes}")
        self.select_page_button.disabled = len(self.frame) == 0
        self.select_all_button.disabled = len(self.frame) == 0

    def __repr__(self) -> str:
        return (f"DetectionIssueList({len(self.frame)} rows, page {self.page + 1}/"
                f"{self.n_pages}, issue_type={self.issue_type!r}, row={self.row!r})")
