"""AnnotatorTable: per-annotator quality; clicking an annotator selects their disagreements.

For detection annotations, ``AnnotatorTable(...)`` returns a :class:`DetectionAnnotatorTable`:
miss rate, extra-box rate, tightness (mean IoU), class accuracy and worst class against the
consensus boxes (or gold boxes), and a click selects that annotator's missed, extra, loose
or wrongly classed boxes.
"""

from __future__ import annotations

import warnings
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets

from .. import results
from .._format import MISSING, percent
from .._validation import check_int
from ..agreement import annotator_quality, disagreeing_items, disagreeing_items_by_annotator
from ..selection import Selection
from ._adapters import RowGrid, StatusMixin, esc, guarded
from .agreement_matrix import annotations_from, is_detection

__all__ = ["AnnotatorTable", "DetectionAnnotatorTable"]

_HEADERS = ["annotator", "labels", "accuracy", "kappa", "worst class", "disagrees on"]


def _fmt(x: Any) -> str:
    return MISSING if x is None or pd.isna(x) else f"{x:.2f}"


class AnnotatorTable(StatusMixin, w.VBox):
    """One row per annotator (best first); clicking a name selects their disagreeing items.

    Scores come from :func:`workbench.annotator_quality` (by default each label against the
    leave-one-out majority of the other annotators of the item).

    Parameters
    ----------
    project_or_annotations : Project or DataFrame
        A project or a long annotations frame.
    selection : Selection, default=None
        The shared selection; a new one when None.
    reference : Series, DataFrame, str or None, default=None
        Passed to :func:`workbench.annotator_quality` (gold labels, ``'majority'``,
        ``'dawid_skene'`` or None).
    page_size : int, default=15
        Annotators per page (a crowd of hundreds is paged, not drawn at once).

    Attributes
    ----------
    quality : DataFrame
        The :func:`workbench.annotator_quality` frame shown, plus ``n_disagreements``.
    annotator : str or None
        The annotator whose items are selected.
    buttons : list of ipywidgets.Button
        One per annotator of the page shown, in display order (CSS class
        ``wb-annotator-row``).
    """

    annotator = traitlets.Unicode(None, allow_none=True)
    #: Column titles and the grid's column widths.
    _headers = _HEADERS
    _columns = "minmax(90px, 1fr) 55px 75px 50px 95px 105px"

    def __new__(cls, project_or_annotations: Any = None, *args: Any, **kwargs: Any):
        """A :class:`DetectionAnnotatorTable` for boxes, else an AnnotatorTable."""
        if cls is AnnotatorTable and is_detection(project_or_annotations):
            return DetectionAnnotatorTable(project_or_annotations, *args, **kwargs)
        return super().__new__(cls, project_or_annotations, *args, **kwargs)

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 reference=None, page_size: int = 15):
        self.project, self.annotations = annotations_from(project_or_annotations)
        self.selection = selection if selection is not None else Selection()
        self.reference = reference
        self.page_size = check_int(page_size, "page_size", "AnnotatorTable", minimum=1)
        self.page = 0
        self.caption = w.HTML("")
        self.caption.add_class("wb-annotator-caption")
        self._compute()
        # no more row widgets than annotators: six annotators are six rows
        self.table = RowGrid(self._headers, max(1, min(self.page_size, len(self.quality))),
                             self._on_row, self.go, prefix="annotator", columns=self._columns)
        self.grid = self.table.grid
        super().__init__([self._make_error_box(), *self._controls(), self.caption, self.grid,
                          self.table.pager])
        self.add_class("wb-annotator-table")
        self.selection.observe(self._on_selection, names=["ids"])
        self._render()

    def _controls(self) -> list:
        """Widgets above the caption (none here)."""
        return []

    def _compute(self) -> None:
        self._cache: dict[str, list[str]] = {}
        if len(self.annotations) == 0:
            self.quality = pd.DataFrame(columns=["annotator", "n_labels", "accuracy", "kappa",
                                                 "worst_class", "n_disagreements"])
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self.project is not None and self.reference is None:  # cached
                q = results.annotator_quality(self.project).copy()  # shared: copy to add to
            else:
                q = annotator_quality(self.annotations, self.reference)
        self._warnings = [str(c.message) for c in caught]
        lists = (results.disagreeing_items(self.project) if self.project is not None
                 else disagreeing_items_by_annotator(self.annotations))
        self._cache = {}
        self._lists = lists  # read from the cache: each list made when clicked
        q["n_disagreements"] = [lists.size(str(a)) if hasattr(lists, "size") and str(a) in lists
                                else len(self.items_of(a)) for a in q["annotator"]]
        self.quality = q

    def items_of(self, annotator: str) -> list[str]:
        """Items where ``annotator`` disagrees with at least one other annotator."""
        key = str(annotator)
        if key not in self._cache:
            lists = getattr(self, "_lists", {})
            self._cache[key] = (lists[key] if key in lists
                                else disagreeing_items(self.annotations, key))
        return self._cache[key]

    def select_annotator(self, annotator: str) -> list[str]:
        """Select the items where ``annotator`` disagrees with others (what a click does)."""
        ids = self.items_of(annotator)
        self.annotator = str(annotator)
        self.selection.select(ids, origin=self,
                              description=f"{annotator} disagrees with another annotator")
        return ids

    @guarded
    def _on_row(self, slot: int) -> None:
        """Adapter: a click on the annotator button of row ``slot`` of the page."""
        i = self.page * self.page_size + slot
        if i < len(self.quality):
            self.select_annotator(self.quality["annotator"].iloc[i])

    def go(self, page: int) -> None:
        """Show page ``page`` of the annotators (clipped to the valid range)."""
        page = RowGrid.clip(page, len(self.quality), self.page_size)
        if page != self.page:
            self.page = page
            self._render_rows()

    @property
    def buttons(self) -> list:
        """The annotator buttons of the page shown, in display order."""
        n = len(self.quality) - self.page * self.page_size
        return [r.button for r in self.table.rows[:max(0, n)]]

    @guarded
    def _on_selection(self, change) -> None:
        if self.annotator is not None and self.selection.origin is not self:
            self.annotator = None

    @traitlets.observe("annotator")
    def _on_annotator(self, change) -> None:
        if hasattr(self, "table"):
            self._render_highlight()

    def _is_selected(self, i: int) -> bool:
        return str(self.quality["annotator"].iat[i]) == self.annotator

    def _render_highlight(self) -> None:
        self.table.highlight(self._is_selected)

    def _row_content(self, i: int) -> tuple[str, str, list[str]]:
        """Button label, tooltip and cells of annotator ``i`` of :attr:`quality`."""
        row = self.quality.iloc[i]
        worst = "" if pd.isna(row["worst_class"]) else (
            f"{esc(row['worst_class'])} ({percent(row['worst_class_recall'])})")
        return (str(row["annotator"]),
                f"select the {row['n_disagreements']} items where {row['annotator']} "
                "disagrees with another annotator",
                [f"{row['n_labels']}", percent(row["accuracy"]), _fmt(row["kappa"]), worst,
                 f"{row['n_disagreements']}"])

    def _render_rows(self) -> None:
        self.table.render(self.page, len(self.quality), self._row_content,
                          selected=self._is_selected, noun="annotators")

    def _render(self) -> None:
        self._render_rows()
        ref = ("gold labels" if isinstance(self.reference, (pd.Series, pd.DataFrame)) else
               "the other annotators' majority" if self.reference is None else
               f"the {self.reference} consensus")
        notes = "".join(f"<br><span style='color:#a60'>{esc(m)}</span>"
                        for m in getattr(self, "_warnings", []))
        self.caption.value = (
            f"<span>How often each annotator agrees with {esc(ref)} (<i>accuracy</i>, and "
            "<i>kappa</i>: the same corrected for chance, 1 = perfect); <i>worst class</i> is "
            "the class they get right least often. Click an annotator to see the items where "
            f"they disagree with the others.</span>{notes}")

    def __repr__(self) -> str:
        return f"AnnotatorTable({len(self.quality)} annotators, annotator={self.annotator!r})"


#: What a click on an annotator of a detection table selects: (outcomes, button label).
DETECTION_KINDS = {"all": (("missed", "extra", "loose", "wrong_class"), "all problems"),
                   "missed": (("missed",), "missed"), "extra": (("extra",), "extra"),
                   "loose": (("loose",), "loose"), "wrong_class": (("wrong_class",),
                                                                   "wrong class")}
_KIND_TEXT = {"all": "missed objects, extra, loose and wrong-class boxes",
              "missed": "objects missed", "extra": "extra boxes", "loose": "loose boxes",
              "wrong_class": "boxes of the wrong class"}
_DETECTION_HEADERS = ["annotator", "boxes", "miss rate", "extra boxes", "tightness",
                      "class acc.", "worst class", "problems"]


class DetectionAnnotatorTable(AnnotatorTable):
    """One row per annotator of boxes; clicking a name selects their problem boxes.

    Scores come from :func:`workbench.annotator_quality` on boxes: against the
    majority-consensus boxes (drawn by more than half of the annotators) by default, or
    gold boxes. The boxes behind them come from
    :func:`workbench.detection.agreement.annotator_box_outcomes`: a click on an annotator
    selects the images and boxes of the kind picked above the table: the consensus objects
    they **missed** (``selection.box_ids`` then holds the other annotators' boxes of that
    object), their **extra** boxes (matching no consensus box), **loose** boxes (right
    class, IoU below ``loose_iou``) and **wrong class** boxes, or all four.

    Parameters
    ----------
    project_or_annotations : DetectionProject or DataFrame
        A detection project or its annotations.
    selection : Selection, default=None
        The shared selection; a new one when None.
    reference : DataFrame, 'majority' or None, default=None
        Gold boxes (``item_id``, ``label``, ``x``, ``y``, ``w``, ``h`` [, ``box_id``]), or
        None / ``'majority'`` for the consensus.
    page_size : int, default=15
        Annotators per page.
    iou : float, default=0.5
        Minimum IoU of a match.
    loose_iou : float, default=0.7
        A matched box of the right class below this IoU is loose.
    kind : {'all', 'missed', 'extra', 'loose', 'wrong_class'}, default='all'
        What a click selects (the toggle above the table, CSS class
        ``wb-annotator-kind``).

    Attributes
    ----------
    quality : DataFrame
        :func:`workbench.annotator_quality` of the boxes, plus ``n_problems``.
    outcomes : DataFrame
        :func:`workbench.detection.agreement.annotator_box_outcomes` of the boxes.
    annotator : str or None
        The annotator whose boxes are selected.
    """

    kind = traitlets.Unicode("all")
    _headers = _DETECTION_HEADERS
    _columns = "minmax(80px, 1fr) 50px 60px 60px 70px 60px 90px 70px"

    def __init__(self, project_or_annotations: Any, selection: Selection | None = None, *,
                 reference=None, page_size: int = 15, iou: float = 0.5,
                 loose_iou: float = 0.7, kind: str = "all"):
        from .._validation import check_option

        check_option(kind, "kind", "AnnotatorTable", tuple(DETECTION_KINDS))
        self.iou, self.loose_iou = iou, loose_iou
        self.kind_picker = w.ToggleButtons(
            options=[(label, k) for k, (_o, label) in DETECTION_KINDS.items()], value=kind,
            description="a click selects", style={"description_width": "initial",
                                                  "button_width": "auto"})
        self.kind_picker.add_class("wb-annotator-kind")
        super().__init__(project_or_annotations, selection, reference=reference,
                         page_size=page_size)
        self.kind = kind
        w.link((self.kind_picker, "value"), (self, "kind"))
        self.add_class("wb-detection-annotator-table")

    def _controls(self) -> list:
        return [self.kind_picker]

    def _compute(self) -> None:
        from ..detection.agreement import annotator_box_outcomes

        self._cache = {}
        self._warnings = []
        ann = self.annotations
        if len(ann) == 0 or ann["annotator"].nunique() < (1 if self._gold() else 2):
            self.quality = pd.DataFrame(columns=[
                "annotator", "n_boxes", "miss_rate", "extra_rate", "mean_iou",
                "class_accuracy", "worst_class", "worst_class_recall", "n_problems"])
            self.outcomes = pd.DataFrame(columns=["annotator", "item_id", "box_id",
                                                  "reference_box_ids", "outcome"])
            return
        classes = [str(c) for c in (getattr(self.project, "classes", None) or [])] or None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            q = annotator_quality(ann, self.reference, iou=self.iou, classes=classes)
            self.outcomes = annotator_box_outcomes(ann, self.reference, iou=self.iou,
                                                   loose_iou=self.loose_iou, classes=classes)
        self._warnings = [str(c.message) for c in caught]
        problems = self.outcomes[self.outcomes["outcome"].astype(str) != "match"]
        counts = problems.groupby("annotator").size()
        q["n_problems"] = [int(counts.get(a, 0)) for a in q["annotator"]]
        self.quality = q

    def _gold(self) -> bool:
        return isinstance(self.reference, pd.DataFrame)

    def boxes_of(self, annotator: str, kind: str | None = None
                 ) -> tuple[list[str], list[str]]:
        """``(images, boxes)`` of ``annotator``'s problems of ``kind`` (default: the toggle).

        Missed objects contribute the other annotators' boxes of that object (or the gold
        box); every other kind the annotator's own boxes.
        """
        kind = self.kind if kind is None else kind
        key = (str(annotator), kind)
        if key not in self._cache:
            o = self.outcomes
            rows = o[(o["annotator"] == key[0])
                     & o["outcome"].astype(str).isin(DETECTION_KINDS[kind][0])]
            boxes = set(rows["box_id"].dropna().astype(str))
            missed = rows[rows["outcome"].astype(str) == "missed"]
            for members, ref in zip(missed["reference_box_ids"], missed["reference_id"],
                                    strict=True):
                boxes.update(map(str, members) if len(members) else [str(ref)])
            self._cache[key] = (sorted(set(rows["item_id"].astype(str))), sorted(boxes))
        return self._cache[key]

    def items_of(self, annotator: str) -> list[str]:
        """Images with a problem of the chosen kind for ``annotator``."""
        return self.boxes_of(annotator)[0]

    def select_annotator(self, annotator: str) -> list[str]:
        """Select ``annotator``'s problem images and boxes of the chosen kind (a click)."""
        ids, boxes = self.boxes_of(annotator)
        self.annotator = str(annotator)
        self.selection.select(ids, box_ids=boxes, origin=self,
                              description=f"{annotator}: {_KIND_TEXT[self.kind]}")
        return ids

    @traitlets.observe("kind")
    def _on_kind(self, change) -> None:
        if self.annotator is not None and self.selection.origin is self:
            try:
                self.select_annotator(self.annotator)  # the same annotator, the new kind
                self.clear_error()
            except Exception as exc:  # shown, not swallowed
                self.show_error(exc)

    def _row_content(self, i: int) -> tuple[str, str, list[str]]:
        row = self.quality.iloc[i]
        worst = "" if pd.isna(row["worst_class"]) or row["worst_class"] in ("None", "nan") \
            else f"{esc(row['worst_class'])} ({percent(row['worst_class_recall'])})"
        return (str(row["annotator"]),
                f"select the images of {row['annotator']}'s missed, extra, loose or "
                "wrongly classed boxes (the kind chosen above)",
                [f"{row['n_boxes']}", percent(row["miss_rate"]), percent(row["extra_rate"]),
                 _fmt(row["mean_iou"]), percent(row["class_accuracy"]), worst,
                 f"{row['n_problems']}"])

    def _render(self) -> None:
        self._render_rows()
        ref = "gold boxes" if self._gold() else (
            "the consensus boxes (drawn by more than half of the annotators)")
        notes = "".join(f"<br><span style='color:#a60'>{esc(m)}</span>"
                        for m in self._warnings)
        self.caption.value = (
            "<div style='white-space:normal;line-height:1.35;margin-bottom:4px'>"
            f"Each annotator's boxes against {esc(ref)}, matched one to one at IoU "
            f"&ge; {self.iou:.2f}: <i>miss rate</i> (objects they did not draw), <i>extra "
            "boxes</i> (their boxes matching nothing), <i>tightness</i> (mean IoU of matched "
            "boxes, 1 = exact), <i>class acc.</i> (matched boxes of the right class) and "
            "the <i>worst class</i> (lowest recall). <i>problems</i> counts missed, extra, "
            f"loose (IoU &lt; {self.loose_iou:.2f}) and wrong-class boxes. Click an annotator "
            f"to see them.{notes}</div>")

    def __repr__(self) -> str:
        return (f"DetectionAnnotatorTable({len(self.quality)} annotators, "
                f"annotator={self.annotator!r}, kind={self.kind!r})")
