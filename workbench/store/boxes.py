"""Which image each box of a project belongs to: the check behind box tags.

A box tag names ``(item_id, box_id)``. A store opened with :meth:`TagStore.for_project`
refuses a box id the project does not have, or one that belongs to another image. The box
ids of a detection project are ``project.boxes['box_id']`` (the reference boxes),
``project.annotations['box_id']`` (each annotator's boxes) and
``project.predictions['pred_id']`` (the model's boxes), generated when a file has none
(``{item_id}/b{k}``, ``{item_id}/{annotator}/a{k}``, ``{item_id}/{run}/p{k}``).
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from ..errors import SchemaError

__all__ = ["ProjectBoxes", "BOX_SOURCES"]

#: (attribute, id column) of the frames of a detection project that hold box ids.
BOX_SOURCES = (("boxes", "box_id"), ("annotations", "box_id"), ("predictions", "pred_id"))


class ProjectBoxes:
    """Look up the image of a project's box ids (lazily, cached per frame).

    Parameters
    ----------
    project : Project
        The project (held by a weak reference: the store does not keep it alive).

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> p = SimpleNamespace(boxes=pd.DataFrame({"box_id": ["a/b0"], "item_id": ["a"]}))
    >>> ProjectBoxes(p).check([("a", "a/b0")], "TagStore.add")
    """

    def __init__(self, project):
        try:
            self._project = weakref.ref(project)
        except TypeError:  # not weak-referenceable: keep it
            self._project = lambda: project
        self._owners: dict[str, tuple[int, pd.Series]] = {}

    def _lookups(self, project) -> list[tuple[str, pd.Series]]:
        """``(source name, Series item_id indexed by box id)`` of each frame with boxes."""
        out = []
        for attr, col in BOX_SOURCES:
            frame = getattr(project, attr, None)
            if not isinstance(frame, pd.DataFrame) or col not in frame.columns \
                    or "item_id" not in frame.columns:
                continue
            cached = self._owners.get(attr)
            if cached is None or cached[0] != id(frame):
                rows = frame[[col, "item_id"]].drop_duplicates(col)
                series = pd.Series(rows["item_id"].astype(str).to_numpy(dtype=object),
                                   index=pd.Index(rows[col].astype(str).to_numpy(dtype=object)))
                cached = (id(frame), series)
                self._owners[attr] = cached
            out.append((f"project.{attr}['{col}']", cached[1]))
        return out

    def check(self, pairs: list[tuple[str, str]], func: str, *,
              allow_unknown: bool = False) -> None:
        """Refuse box ids unknown to the project or belonging to another item.

        Parameters
        ----------
        pairs : list of tuple of (str, str)
            ``(item_id, box_id)`` pairs.
        func : str
            The calling function, for messages.
        allow_unknown : bool, default=False
            Accept box ids the project does not have (``remove`` does: the tag of a box
            deleted since, say by a vendor's relabelling, must stay removable).

        Raises
        ------
        SchemaError
            Naming the first bad box id and its item; nothing was written.
        """
        project = self._project()
        if project is None or not pairs:
            return
        lookups = self._lookups(project)
        if not lookups:
            if allow_unknown:
                return
            raise SchemaError(
                f"{func}: the project has no boxes, so the box id {pairs[0][1]!r} (item "
                f"{pairs[0][0]!r}) cannot be tagged. Nothing was changed. Box tags need a "
                "detection project; tag the image instead (box_ids=None).")
        boxes = np.asarray([b for _, b in pairs], dtype=object)
        owner = np.full(len(pairs), None, dtype=object)
        for _, series in lookups:
            todo = np.flatnonzero(pd.isna(owner))
            if not len(todo):
                break
            pos = series.index.get_indexer(boxes[todo])
            hit = pos >= 0
            owner[todo[hit]] = series.to_numpy()[pos[hit]]
        for (item, box), found in zip(pairs, owner, strict=True):
            if found is None:
                if allow_unknown:
                    continue
                where = ", ".join(name for name, _ in lookups)
                raise SchemaError(
                    f"{func}: the box id {box!r} (item {item!r}) is not a box of the project "
                    f"(looked in {where}). Nothing was changed. Use the ids of the project's "
                    "boxes (check for typos or a stale selection).")
            if found != item:
                raise SchemaError(
                    f"{func}: the box id {box!r} belongs to item {found!r}, not to item "
                    f"{item!r}. Nothing was changed. Pass each box with its own image's id.")
