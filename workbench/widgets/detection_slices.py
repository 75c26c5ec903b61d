"""ObjectSliceTable: the slice table on a detection run's boxes (misses or false detections).

A :class:`~workbench.widgets.SliceTable` over the object-level rows of a matches frame
(:func:`workbench.detection.object_frame`): ``is_fn`` counts the reference boxes missed,
``is_fp`` the predictions that are false detections; the columns are the image metadata,
the box metadata (misses only) and the box ``size``. A row selects the slice's bad boxes
(its misses, or its false detections) as ``Selection.box_ids``, and their images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._format import percent
from ..selection import Selection
from ._adapters import esc, ids_where
from .slice_table import SliceTable

__all__ = ["ObjectSliceTable"]

_WHAT = {"is_fn": ("missed boxes", "miss rate", "reference boxes"),
         "is_fp": ("false detections", "false-detection rate", "predicted boxes")}


class ObjectSliceTable(SliceTable):
    """Miss rate (``is_fn``) or false-detection rate (``is_fp``) per slice of a detection run.

    Parameters
    ----------
    matches : DataFrame
        :func:`workbench.match_detections` of one run.
    selection : Selection, default=None
        The shared selection; a new one when None.
    target : {'is_fn', 'is_fp'}, default='is_fn'
        What is counted: missed reference boxes, or false detections.
    **kwargs
        As :class:`~workbench.widgets.SliceTable` (``column``, ``discovered``,
        ``page_size``, ``bins``).

    Attributes
    ----------
    errors : DataFrame
        The object-level rows (:func:`workbench.detection.object_frame`).
    """

    def __init__(self, matches: pd.DataFrame, selection: Selection | None = None, *,
                 target: str = "is_fn", **kwargs):
        from .._validation import check_option

        check_option(target, "target", "ObjectSliceTable", list(_WHAT))
        self.target = target
        super().__init__(self._objects(matches), selection, **kwargs)
        self.add_class(f"wb-object-slices-{'misses' if target == 'is_fn' else 'false'}")

    def _objects(self, matches: pd.DataFrame) -> pd.DataFrame:
        from ..detection import object_frame

        return object_frame(matches, self.target)

    def set_errors(self, matches: pd.DataFrame) -> None:
        """Show another run or IoU threshold (a new matches frame)."""
        super().set_errors(self._objects(matches))

    def _set_errors(self, errors: pd.DataFrame, column: str | None = None) -> None:
        super()._set_errors(errors, column)
        id_col = errors.attrs.get("id_column", "box_id" if self.target == "is_fn"
                                  else "pred_id")
        self._box_ids = errors[id_col].astype(str).to_numpy()
        self._bad = errors[self.target].to_numpy(dtype=bool)
        self._bad_ids = set(self._box_ids[self._bad].tolist())

    def boxes_of_row(self, i: int) -> tuple[list[str], list[str]]:
        """``(item ids, box ids)`` of the bad boxes of row ``i`` of :attr:`frame`."""
        row = self.frame.iloc[int(i)]
        if self.discovered:
            col = self._discovered_frame.attrs.get("id_column", "box_ids") \
                if self._discovered_frame is not None else "box_ids"
            ids = [b for b in row[col] if b in self._bad_ids]
            mask = np.isin(self._box_ids, ids)
        else:
            col = row["column"]
            if col not in self._encodings:
                from ..slicing import _encode

                self._encodings[col] = _encode(self.errors[col], self.bins)
            mask = (self._encodings[col].codes == int(row["_code"])) & self._bad
        items = list(dict.fromkeys(ids_where(self._ids, mask)))
        return items, self._box_ids[mask].tolist()

    def select_row(self, i: int) -> list[str]:
        """Select the misses (or false detections) of row ``i`` (what a click does)."""
        items, boxes = self.boxes_of_row(i)
        self.selected_row = int(i)
        what = _WHAT[self.target][0]
        self.selection.select(items, box_ids=boxes, origin=self,
                              description=f"{what} in {self.describe_row(i)}")
        self._render_highlight()
        return items

    def _overall(self) -> float:
        if len(self.errors) == 0:
            return float("nan")
        return float(self._bad.mean())

    def _render(self) -> None:
        super()._render()
        what, rate, rows = _WHAT[self.target]
        where = ("discovered slices (up to 2 conditions, FDR 5%)" if self.discovered
                 else f"slices of <b>{esc(self.column)}</b>")
        self.summary.value = (
            f"{what.capitalize()}: {where}; overall {rate} {percent(self._overall())} over "
            f"{len(self.errors):,} {rows}. <span style='color:#555'><i>n</i> counts "
            f"{rows}, <i>errors</i> the {what}; <i>lift</i>: the slice's rate over the "
            "overall one; * = worse than the rest beyond chance (q &le; 0.05). A row "
            f"selects its {what}.</span>")

    def __repr__(self) -> str:
        mode = "discovered" if self.discovered else f"column={self.column!r}"
        return (f"ObjectSliceTable(target={self.target!r}, {mode}, {len(self.frame)} rows, "
                f"selected_row={self.selected_row})")
