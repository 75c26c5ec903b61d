"""EmbeddingMap: the items as points of a 2-D map (jupyter-scatter); lasso and click select.

The map draws every item of the project's 2-D layout (:func:`workbench.layout.layout`) with
jupyter-scatter, a WebGL anywidget made for millions of points. Its points are numpy arrays
(x, y and one categorical or float colour column); item ids are mapped to point indices
with a ``pandas.Index`` at the edge, so nothing per point is a Python object on the way
to the browser.

A lasso (shift + drag, or the toolbar's lasso) or a click on a point publishes the items to
the shared :class:`~workbench.selection.Selection` (origin: the map); a selection made by
another widget is highlighted on the map. The jupyter-scatter widget's ``selection`` trait
is the one wire between the two: the browser writes it, the kernel observes it.
"""

from __future__ import annotations

import copy
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets

from .. import results
from ..selection import Selection
from . import _jscatter_adapter
from ._adapters import StatusMixin, esc, guarded

__all__ = ["EmbeddingMap", "MapPanel", "color_options", "color_values", "item_positions",
           "no_embeddings_note"]

#: Colour options that do not depend on a metadata column: (key, what the dropdown shows).
BASE_COLORS = [("label", "label"), ("correct", "prediction correct"),
               ("label_issue", "label-issue score"), ("disagreement", "annotators disagree"),
               ("tag", "tag")]
#: A categorical colouring shows at most this many values; the rest read ``other``.
MAX_CATEGORIES = 20
_META = "meta:"
#: regl-scatterplot options of every map (jupyter-scatter's public ``regl_scatterplot_options``).
#:
#: ``actionKeyMap``: shift + drag draws a lasso. jupyter-scatter 1.0 creates its plots with
#: ``actionKeyMap={"merge": "meta", "remove": "alt"}``, which replaces regl-scatterplot's
#: default map and so drops its ``lasso: "shift"``: a shift + drag then pans the camera (the
#: points slide off-centre under the pointer) and a lasso starts only after a 750 ms long
#: press without moving. The map keeps jupyter-scatter's merge and remove keys.
#:
#: ``spatialIndexUseWorker``: regl-scatterplot draws only once its spatial index (the
#: lasso's k-d tree) is built; from 1,000,000 points on it builds it in a Web Worker, after
#: structured-cloning every point to it, which is slower than building it in place
#: (measured: the first drawing of 1,000,000 points ~2 s sooner in headless Chromium).
#:
#: ``syncEvents``: regl-scatterplot publishes its events (a lasso's ``select``) from a
#: ``setTimeout``, which a browser without a GPU runs only after the next frame, the
#: selection drawn (1.1 s for 1,000,000 points in headless Chromium). Published at once,
#: the selection starts for the kernel before that frame; a large one (100,000 points,
#: 400 kB) still arrives after it, as the page writes the rest of the message between frames,
#: so a large map's page sends the lasso's outline first (``_jscatter_adapter.on_lasso``).
REGL_OPTIONS = {"actionKeyMap": {"lasso": "shift", "merge": "meta", "remove": "alt"},
                "spatialIndexUseWorker": False, "syncEvents": True}


def no_embeddings_note(project: Any, *, html: bool = True) -> str:
    """The note shown instead of the map when a project has no embeddings.

    Parameters
    ----------
    project : Project
    html : bool, default=True
        An escaped HTML span (CSS class ``wb-map-note``); False: plain text.

    Returns
    -------
    str
    """
    root = getattr(project, "root", None)
    where = str(root) if root is not None else "PROJECT"
    text = ("No embedding map: this project has no embeddings. Compute them with "
            f"`workbench embed {where}` (an offline baseline), or add your model's vectors "
            "as embeddings.parquet (item_id + numeric columns) to the project folder, then "
            "reopen the dashboard.")
    if not html:
        return text
    return f"<span class='wb-map-note' style='color:#777;font-size:11px'>{esc(text)}</span>"


def color_options(project: Any) -> list[tuple[str, str]]:
    """The colourings a project offers, as ``(shown, key)`` dropdown options.

    Parameters
    ----------
    project : Project

    Returns
    -------
    list of (str, str)
        ``label``, prediction correctness and label-issue score (when the project has
        predictions; the score needs probabilities), annotator disagreement (when it has
        annotations), tag, then one ``meta:<column>`` per metadata column.
    """
    runs = list(getattr(project, "runs", []) or [])
    has_probs = bool(runs) and bool(getattr(project, "prob_columns", []))
    has_ann = len(getattr(project, "annotations", ())) > 0
    keep = {"label": True, "correct": bool(runs), "label_issue": has_probs,
            "disagreement": has_ann, "tag": True}
    out = [(shown, key) for key, shown in BASE_COLORS if keep[key]]
    out += [(f"metadata: {c}", _META + c) for c in project.metadata_columns]
    return out


def _categorical(values: Any, *, missing: str, order: list[str] | None = None
                 ) -> pd.Categorical:
    """String values as a Categorical, NA as ``missing``, beyond MAX_CATEGORIES as ``other``.

    Vectorised: one factorisation, then integer code arithmetic (no per-value Python work).
    """
    cat = pd.Categorical(values)
    codes = cat.codes.astype(np.int64)
    names = [str(c) for c in cat.categories] + [missing]  # the last one: NA
    codes[codes < 0] = len(names) - 1
    counts = np.bincount(codes, minlength=len(names))
    present = np.flatnonzero(counts)
    if len(present) > MAX_CATEGORIES:  # keep the most frequent, the rest are "other"
        keep = present[np.argsort(-counts[present], kind="stable")[:MAX_CATEGORIES - 1]]
        names.append("other")
        remap = np.full(len(names), len(names) - 1, dtype=np.int64)
        remap[keep] = keep
        codes = remap[codes]
        present = np.append(np.sort(keep), len(names) - 1)
    # one code per distinct name (a value may already read like `missing` or `other`)
    shown = sorted({names[i] for i in present})
    if order is not None:
        first = [c for c in order if c in set(shown)]
        shown = first + [c for c in shown if c not in set(first)]
    position = {name: i for i, name in enumerate(shown)}
    lookup = np.array([position.get(name, -1) for name in names], dtype=np.int64)
    return pd.Categorical.from_codes(lookup[codes], categories=shown)


class _IdLookup:
    """Item ids -> positions with numpy (``searchsorted`` on the sorted ids), no hashing.

    Parameters
    ----------
    ids : array-like of str
        The keys, one per position (unique).
    """

    def __init__(self, ids: Any):
        self.ids = _as_str_array(ids)
        #: whether the keys are strictly increasing (then sorted positions give sorted ids)
        self.ascending = len(self.ids) < 2 or bool((self.ids[1:] > self.ids[:-1]).all())
        self._order = (np.arange(len(self.ids)) if self.ascending
                       else np.argsort(self.ids, kind="stable"))
        self._sorted = self.ids if self.ascending else self.ids[self._order]

    def duplicated(self) -> np.ndarray:
        """The ids that appear more than once."""
        if self.ascending:
            return self._sorted[:0]  # strictly increasing: none
        same = self._sorted[1:] == self._sorted[:-1]
        return np.unique(self._sorted[1:][same])

    def positions(self, query: Any) -> np.ndarray:
        """The position of each queried id (int64), -1 for an id that is not a key."""
        q = _as_str_array(query)
        if len(self._sorted) == 0 or len(q) == 0:
            return np.full(len(q), -1, dtype=np.int64)
        at = np.searchsorted(self._sorted, q)
        at_c = np.minimum(at, len(self._sorted) - 1)
        hit = self._sorted[at_c] == q
        return np.where(hit, self._order[at_c], -1).astype(np.int64)


def _as_str_array(values: Any) -> np.ndarray:
    """Ids as a 1-D numpy array of ``str``.

    A pandas string column (what ``read_parquet`` and the project give) becomes an object
    array of its ``str`` values as is (~5x faster than a fixed-width unicode copy, which
    costs ~1 s per 1,000,000 ids and delayed the first drawing of a large map); anything
    else a numpy unicode array. Both compare, sort and search alike.
    """
    if isinstance(values, (pd.Series, pd.Index)):
        if isinstance(values.dtype, pd.StringDtype) and not values.hasnans:
            return values.to_numpy(dtype=object).reshape(-1)
        values = values.to_numpy(dtype=object)
    if isinstance(values, np.ndarray) and values.dtype == object and \
            pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values.reshape(-1)  # str objects already (a map's own ids)
    elif not isinstance(values, np.ndarray):
        values = list(values)
    arr = np.asarray(values, dtype=str) if not (
        isinstance(values, np.ndarray) and values.dtype.kind == "U") else values
    return arr.reshape(-1)


def _per_item(series: pd.Series, ids: np.ndarray) -> np.ndarray:
    """``series`` (indexed by item_id) aligned to ``ids``; NA where an id is absent."""
    keys = _as_str_array(series.index)
    values = series.to_numpy(dtype=object)
    if len(keys) == len(ids) and np.array_equal(keys, ids):
        return values
    pos = _IdLookup(keys).positions(ids)
    out = np.full(len(ids), None, dtype=object)
    hit = pos >= 0
    out[hit] = values[pos[hit]]
    return out


def item_positions(project: Any, ids: Any) -> np.ndarray:
    """The row of each id in ``project.items`` (int64, -1 for an id that is not an item).

    Parameters
    ----------
    project : Project
    ids : array-like of str

    Returns
    -------
    ndarray of int64
    """
    items = project.items["item_id"]
    if isinstance(ids, pd.Series) and len(ids) == len(items):
        same = ids if isinstance(ids.dtype, pd.StringDtype) else ids.astype(str)
        if same.reset_index(drop=True).equals(items.reset_index(drop=True)):
            return np.arange(len(ids), dtype=np.int64)  # the layout is in items order
    ids = _as_str_array(ids)
    keys = _as_str_array(items)
    if len(keys) == len(ids) and np.array_equal(keys, ids):
        return np.arange(len(ids), dtype=np.int64)
    return _IdLookup(keys).positions(ids)


def _take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values[positions]`` with None where a position is -1."""
    if _is_identity(positions, len(values)):
        return values
    out = np.full(len(positions), None, dtype=object)
    hit = positions >= 0
    out[hit] = values[positions[hit]]
    return out


def _is_identity(positions: np.ndarray, n: int) -> bool:
    """Whether ``positions`` is ``0, 1, ..., n - 1`` (the points are the items in order)."""
    return len(positions) == n and (n == 0 or (
        positions[0] == 0 and positions[-1] == n - 1
        and bool((positions == np.arange(n)).all())))


def color_values(project: Any, by: str, ids: Any, *, run: str | None = None,
                 store: Any = None, positions: np.ndarray | None = None
                 ) -> pd.Categorical | np.ndarray:
    """The colour of each point: a Categorical (a legend of values) or floats in [0, 1].

    Parameters
    ----------
    project : Project
    by : str
        ``'label'`` (the reference label), ``'correct'`` (the run's prediction: correct,
        wrong, no prediction), ``'label_issue'`` (``1 - label_quality`` of
        :func:`workbench.label_issues`; 0 for items without a score), ``'disagreement'``
        (annotators disagree, agree, or fewer than two labels), ``'tag'`` (the item's current
        tags joined by ``+``, or ``untagged``) or ``'meta:<column>'`` (a metadata column;
        numeric columns give floats scaled to [0, 1], infinite values at the finite
        extremes; a numeric column with missing values gives quantile bins and ``missing``).
    ids : array-like of str
        The items in point order.
    run : str, default=None
        The model run of ``'correct'`` and ``'label_issue'`` (None: the default run).
    store : TagStore, default=None
        The tag store of ``'tag'`` (None: ``TagStore.for_project(project)``).
    positions : ndarray of int, default=None
        :func:`item_positions` of ``ids`` when the caller has them (a map reuses them for
        every colouring); None: computed here.

    Returns
    -------
    pandas.Categorical or ndarray of float32
        One value per id.

    Raises
    ------
    ValueError
        If ``by`` is not an option of :func:`color_options`.
    """
    ids = _as_str_array(ids)
    keys = [k for _s, k in color_options(project)]
    if by not in keys:
        raise ValueError(f"The 'by' parameter of EmbeddingMap must be a str among "
                         f"{{{', '.join(repr(k) for k in keys)}}}. Got {by!r} instead.")
    if by == "label" or by.startswith(_META):
        if positions is None:
            positions = item_positions(project, ids)
    if by == "label":  # reference_labels() is in items order
        labels = project.reference_labels()
        if not _is_identity(positions, len(labels)):
            labels = _take(labels.to_numpy(dtype=object), positions)
        return _categorical(labels, missing="unlabeled", order=list(project.classes))
    if by == "correct":
        err = results.errors(project, run)  # cached for every kernel
        correct = pd.Series(np.where(err["correct"].to_numpy(dtype=bool), "correct", "wrong"),
                            index=err["item_id"].astype(str).to_numpy())
        return _categorical(_per_item(correct, ids), missing="no prediction",
                            order=["wrong", "correct"])
    if by == "label_issue":
        issues = results.label_issues(project, run,  # cached; two columns read
                                      columns=["item_id", "label_quality"])
        score = 1.0 - pd.Series(issues["label_quality"].to_numpy(dtype=float),
                                index=issues["item_id"].astype(str).to_numpy())
        values = _per_item(score, ids)
        return np.nan_to_num(values.astype(float), nan=0.0).clip(0, 1).astype(np.float32)
    if by == "disagreement":
        ann = results.current_annotations(project)  # the latest labels, once per kernel
        per = ann.groupby("item_id")["label"].agg(["nunique", "size"])
        state = np.where(per["nunique"].to_numpy() > 1, "annotators disagree",
                         np.where(per["size"].to_numpy() >= 2, "annotators agree",
                                  "fewer than 2 labels"))
        return _categorical(_per_item(pd.Series(state, index=per.index), ids),
                            missing="fewer than 2 labels",
                            order=["annotators disagree", "annotators agree"])
    if by == "tag":
        if store is None:
            from ..tags import TagStore

            store = TagStore.for_project(project)
        tags = store.tags()
        joined = (tags.groupby("item_id")["tag"].agg(lambda t: "+".join(sorted(set(t))))
                  if len(tags) else pd.Series(dtype=object))
        return _categorical(_per_item(joined, ids), missing="untagged")
    column = project.items[by[len(_META):]]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        colors = _numeric_colors(_take(column.to_numpy(dtype=float), positions))
        if colors is not None:
            return colors
    return _categorical(_take(column.to_numpy(dtype=object), positions), missing="missing")


#: Bins of a numeric colouring that has missing values (quantiles of the present ones).
NUMERIC_BINS = 8


def _numeric_colors(values: np.ndarray) -> np.ndarray | pd.Categorical | None:
    """A numeric column's colours: floats in [0, 1], bins when values are missing, or None.

    Infinite values take the colour of the finite extreme on their side (one ``inf`` does not
    flatten the scale). Without missing values the scale is continuous; with them it is
    :data:`NUMERIC_BINS` quantile bins of the present values plus ``missing``, so a missing
    value never reads as the smallest one. None when no value is finite.
    """
    finite = np.isfinite(values)
    if not finite.any():
        return None
    lo, hi = float(values[finite].min()), float(values[finite].max())
    clipped = np.clip(values, lo, hi)  # NaN stays NaN
    if not np.isnan(values).any():
        scaled = (clipped - lo) / (hi - lo) if hi > lo else np.zeros_like(clipped)
        return scaled.astype(np.float32)
    present = clipped[~np.isnan(clipped)]
    if hi > lo:
        bins = pd.qcut(clipped, q=min(NUMERIC_BINS, len(np.unique(present))),
                       duplicates="drop", precision=3)
    else:  # one value and missing ones
        bins = pd.Categorical(np.where(np.isnan(clipped), None, f"{lo:g}"))
    return _categorical(_bin_names(bins), missing="missing",
                        order=[str(c) for c in bins.categories])


def _bin_names(bins: pd.Categorical) -> np.ndarray:
    """The bins' names per value (None where the value is missing)."""
    names = np.array([str(c) for c in bins.categories] + [None], dtype=object)
    return names[np.where(bins.codes < 0, len(names) - 1, bins.codes)]


class EmbeddingMap(StatusMixin, w.VBox):
    """The items on a 2-D map of their embeddings; lasso or click selects, colour by a choice.

    Parameters
    ----------
    project : Project
        A project with embeddings (``project.has_embeddings``), or any project when
        ``layout`` is given.
    selection : Selection, default=None
        The shared selection; a new one when None.
    layout : DataFrame, default=None
        ``item_id``, ``x``, ``y`` (one row per point). None: ``workbench.layout.layout(
        project, method=method)`` (computed once and cached in the project's state folder).
    color_by : str, default='label'
        The first colouring (see :func:`color_options`).
    run : str, default=None
        The model run of the ``correct`` and ``label_issue`` colourings (None: default run).
    method : {'umap', 'pca', 'tsne'}, default='umap'
        The layout method when ``layout`` is None.
    height : int, default=460
        Height of the map in pixels.

    Attributes
    ----------
    scatter : jscatter.Scatter or None
        None when the project has no embeddings (the widget then shows how to get them).
    ids : ndarray of str
        The item id of each point, in point order.
    color_picker : ipywidgets.Dropdown
        The colouring (CSS class ``wb-map-color``).
    info : ipywidgets.HTML
        What the map shows and how many points are selected (CSS class ``wb-map-info``).

    Examples
    --------
    >>> m = EmbeddingMap(wb.open_project(), color_by="correct")  # doctest: +SKIP
    >>> m  # doctest: +SKIP
    """

    color_by = traitlets.Unicode("label")
    run = traitlets.Unicode(None, allow_none=True)

    def __init__(self, project: Any, selection: Selection | None = None, *,
                 layout: pd.DataFrame | None = None, color_by: str = "label",
                 run: str | None = None, method: str = "umap", height: int = 460):
        self.project = project
        self.selection = selection if selection is not None else Selection()
        self.scatter = None
        self._pushing = False
        self._pushed = np.array([], dtype=np.int64)
        self._colors_cache: dict = {}
        self.info = w.HTML("")
        self.info.add_class("wb-map-info")
        if layout is None and not getattr(project, "has_embeddings", False):
            self.ids = np.array([], dtype=str)
            self.color_picker = w.Dropdown(options=[], disabled=True)
            self.info.value = no_embeddings_note(project)
            super().__init__([self.info])
            self.add_class("wb-map")
            self.add_class("wb-map-empty")
            return
        if layout is None:
            from ..layout import layout as compute_layout

            layout = compute_layout(project, method=method)
        self._set_points(layout)
        options = color_options(project)
        keys = [k for _s, k in options]
        if color_by not in keys:
            raise ValueError(f"The 'color_by' parameter of EmbeddingMap must be a str among "
                             f"{{{', '.join(repr(k) for k in keys)}}}. Got {color_by!r} "
                             "instead.")
        self.run = run if run is not None else getattr(project, "default_run", None)
        self.color_by = color_by
        self._build(height)
        self.color_picker = w.Dropdown(options=options, value=color_by, description="colour",
                                       layout=w.Layout(width="300px"))
        self.color_picker.add_class("wb-map-color")
        w.link((self.color_picker, "value"), (self, "color_by"))
        header = w.HBox([self.color_picker, self.info],
                        layout=w.Layout(align_items="center", grid_gap="12px"))
        super().__init__([header, self._make_error_box(), self.scatter.widget])
        self.add_class("wb-map")
        self.scatter.widget.observe(self._on_points_selected, names=["selection"])
        _jscatter_adapter.on_lasso(self.scatter, self._on_lasso)
        self.selection.observe(self._on_selection, names=["ids"])
        self._push_selection()
        self._render_info()

    # ---- build ------------------------------------------------------------------------

    def _set_points(self, layout: pd.DataFrame) -> None:
        if not isinstance(layout, pd.DataFrame):
            raise TypeError("The 'layout' parameter of EmbeddingMap must be a pandas DataFrame "
                            f"(item_id, x, y). Got {type(layout).__name__} instead.")
        missing = [c for c in ("item_id", "x", "y") if c not in layout.columns]
        if missing:
            raise ValueError(f"EmbeddingMap: the layout has no column {missing}; it needs "
                             "item_id, x and y (workbench.layout.layout(project) makes one).")
        self._positions = item_positions(self.project, layout["item_id"])
        self._lookup = _IdLookup(layout["item_id"])
        self.ids = self._lookup.ids
        dup = self._lookup.duplicated()
        if len(dup):
            raise ValueError(f"EmbeddingMap: item ids {dup[:5].tolist()} appear more than once "
                             "in the layout; give one row per item.")
        xy = layout[["x", "y"]].to_numpy(dtype=np.float32)
        bad = ~np.isfinite(xy).all(axis=1)
        if bad.any():
            raise ValueError(f"EmbeddingMap: the layout has non-finite x/y for items "
                             f"{self.ids[bad][:5].tolist()}; recompute the layout.")
        self._frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})

    def _build(self, height: int) -> None:
        import jscatter

        self._color_column = self._shown(self.color_by)
        self._frame[self._color_column] = self._colors(self.color_by)
        # the colouring and the regl options given at creation: every later call re-encodes
        # and copies all the points (~0.3 s per call at 1,000,000 points)
        self.scatter = jscatter.Scatter(
            x="x", y="y", data=self._frame, height=height, axes=False, legend=True,
            legend_position="top-right", tooltip=True, tooltip_properties=["color"],
            size=self._point_size(), opacity_unselected=0.25, zoom_on_selection=False,
            lasso_initiator=False, lasso_on_long_press=True,
            options=copy.deepcopy(REGL_OPTIONS), **self._color_options())
        # a large map is read faster and drawn once when its page opens (see the adapter)
        _jscatter_adapter.prepare_large_map(self.scatter)

    def _point_size(self) -> float:
        n = len(self.ids)
        return 6 if n < 5_000 else 3 if n < 100_000 else 1

    def _colors(self, by: str):
        key = (by, self.run if by in ("correct", "label_issue") else None)
        if key not in self._colors_cache:
            self._colors_cache[key] = color_values(self.project, by, self.ids, run=self.run,
                                                   positions=self._positions)
        return self._colors_cache[key]

    def _shown(self, key: str) -> str:
        """What the dropdown shows for a colouring (the legend's title)."""
        return dict((k, s) for s, k in color_options(self.project)).get(key, key)

    def _color_options(self) -> dict:
        """The jupyter-scatter colour encoding of the current colour column."""
        column = self._color_column
        if isinstance(self._frame[column].dtype, pd.CategoricalDtype):
            return {"color_by": column, "color_map": "auto", "color_norm": None}
        return {"color_by": column, "color_map": "magma_r", "color_norm": (0.0, 1.0)}

    def _apply_color(self) -> None:
        opts = self._color_options()
        self.scatter.color(by=opts["color_by"], map=opts["color_map"], norm=opts["color_norm"])

    # ---- state ------------------------------------------------------------------------

    @traitlets.observe("color_by", "run")
    def _on_color(self, change) -> None:
        if self.scatter is None or change["old"] == change["new"]:
            return
        if change["name"] == "run" and self.color_by not in ("correct", "label_issue"):
            return
        self._safe(self._recolor)

    def _recolor(self) -> None:
        column = self._shown(self.color_by)
        values = self._colors(self.color_by)
        if column != self._color_column:
            del self._frame[self._color_column]
        self._frame[column] = values
        self._color_column = column
        self._apply_color()
        self._render_info()

    def refresh(self) -> None:
        """Recompute the colours (after tags or labels changed)."""
        self._colors_cache.clear()
        self._safe(self._recolor)

    def ids_of(self, points: Any) -> np.ndarray:
        """The item ids of point indices (what the browser sends)."""
        idx = np.asarray(points if points is not None else [], dtype=np.int64)
        return self.ids[idx]

    def points_of(self, ids: Any) -> np.ndarray:
        """The point indices of item ids (ids not on the map are left out), as uint32."""
        if ids is None:
            return np.array([], dtype=np.uint32)
        pos = self._lookup.positions(ids)
        return np.sort(pos[pos >= 0]).astype(np.uint32)

    def select_points(self, points: Any) -> None:
        """Publish the items of point indices to the shared selection (lasso and click)."""
        ids = self.ids_of(points)
        if len(ids) == 0:
            if self.selection.ids is not None and self.selection.origin is self:
                self.selection.clear(origin=self)  # a click on empty space deselects
            return
        what = (f"item {ids[0]} on the map" if len(ids) == 1
                else f"{len(ids):,} items lassoed on the map")
        idx = np.asarray(points, dtype=np.int64)
        if not (self._lookup.ascending and bool((idx[1:] > idx[:-1]).all())):
            ids = np.unique(ids)  # increasing points of increasing ids need no sort
        # sorted and unique, so the Selection's canonical form is this tuple (no re-sort)
        self.selection.select(tuple(ids.tolist()), origin=self, description=what)

    @guarded
    def _on_points_selected(self, change) -> None:
        """Adapter: the browser's point indices -> the shared selection."""
        if self._pushing:
            return
        new = np.sort(np.asarray(change["new"] if change["new"] is not None else [],
                                 dtype=np.int64))
        if self.selection.origin is not self and np.array_equal(new, self._pushed):
            return  # the browser echoed what the kernel highlighted
        self.select_points(new)
        self._render_info()

    @guarded
    def _on_lasso(self, points: np.ndarray) -> None:
        """Adapter: a lasso's points, found in the kernel from its outline -> the selection.

        The browser's ``selection`` trait follows with the same points and changes nothing.
        """
        self.select_points(points)
        self._render_info(n_selected=len(points))

    @guarded
    def _on_selection(self, change) -> None:
        if self.selection.origin is not self:
            self._push_selection()
        self._render_info()

    def _push_selection(self) -> None:
        """Highlight the shared selection on the map, without publishing it back."""
        points = self.points_of(self.selection.ids)
        self._pushed = points.astype(np.int64)
        self._pushing = True
        try:
            _jscatter_adapter.select(self.scatter, points if len(points) else None)
        finally:
            self._pushing = False

    # ---- view -------------------------------------------------------------------------

    def _render_info(self, n_selected: int | None = None) -> None:
        """The map's line; ``n_selected``: the selected points when the widget's trait lags."""
        shown = self._color_column
        if n_selected is None:
            selected = _jscatter_adapter.selected(self.scatter)
            n_selected = len(selected) if selected is not None else 0
        sel = (f"; <b>{n_selected:,}</b> selected" if n_selected else
               "; shift + drag (or the lasso button) to select, click a point to pick it")
        self.info.value = (f"<span>{len(self.ids):,} items, coloured by "
                           f"<b>{esc(shown)}</b>{sel}.</span>")

    def __repr__(self) -> str:
        n = len(self.ids)
        return f"EmbeddingMap({n} points, color_by={self.color_by!r}, {self.selection!r})"


class MapPanel(w.VBox):
    """An explorer's "Map" tab: the :class:`EmbeddingMap`, built when the tab is first shown.

    Building the map needs the 2-D layout (UMAP the first time, cached afterwards), so the
    explorers build it when the curator opens the tab, not when the dashboard loads.

    Parameters
    ----------
    project : Project
        A project with embeddings.
    selection : Selection
        The explorer's shared selection.
    run : str, default=None
        The run of the map's correctness and label-issue colourings.
    color_by : str, default='label'
        The first colouring.

    Attributes
    ----------
    map : EmbeddingMap or None
        None until :meth:`build` (or the tab being shown) built it.
    """

    def __init__(self, project: Any, selection: Selection, *, run: str | None = None,
                 color_by: str = "label"):
        self.project = project
        self.selection = selection
        self.run = run
        self.color_by = color_by
        self.map: EmbeddingMap | None = None
        self.message = w.HTML("<span style='color:#777'>Building the map (the 2-D layout of "
                              "the embeddings is computed once, then cached)...</span>")
        self.message.add_class("wb-map-loading")
        super().__init__([self.message])
        self.add_class("wb-map-panel")

    def build(self) -> EmbeddingMap | None:
        """Build the map if it is not built yet; a failure is shown in the tab, not raised."""
        if self.map is None:
            try:
                self.map = self._make_map()
            except Exception as exc:  # shown to the curator, never swallowed
                self.message.value = (f"<span style='color:#b00020'>The map could not be "
                                      f"built: {esc(type(exc).__name__)}: {esc(exc)}</span>")
                return None
            self.children = [self.map]
        return self.map

    def _make_map(self) -> EmbeddingMap:
        """The map this panel shows (a subclass may show another kind)."""
        return EmbeddingMap(self.project, self.selection, run=self.run, color_by=self.color_by)

    def set_run(self, run: str | None) -> None:
        """Follow the explorer's run (the map's correctness colouring)."""
        self.run = run
        if self.map is not None:
            self.map.run = run

    def follow(self, tabs: w.Tab, index: int) -> None:
        """Build the map when ``tabs`` shows this panel (tab ``index``)."""
        def on_tab(change):
            if change["new"] == index:
                self.build()

        tabs.observe(on_tab, names=["selected_index"])
