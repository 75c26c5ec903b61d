"""jupyter-scatter's widget internals the map relies on, in one module (jupyter-scatter 1).

Two things have no public API: **a large map drawn once, not twice, when a page opens**, and
**its points read in a tenth of the time**.

Drawn once: jupyter-scatter's view (its ``bundle.js``) creates the regl-scatterplot, whose
``init`` asks for a redraw on the next animation frame, then draws the points it was created
with. With 1,000,000 points building the spatial index holds the page past that frame, so
the points are drawn, then drawn again: in a browser without a GPU (headless Chromium, a
remote desktop) each drawing of 1,000,000 points takes 0.5 to 1.4 s (traced in headless
Chromium on 2 cores; ``benchmarks/bench_embedding_map.py``'s page was about 1 s faster
without it).

For a large map :func:`prepare_large_map` keeps the full points in the kernel and gives the
widget its first point only; when a view reports it was rendered (the synced trait
``dom_element_id``, which the view sets at the end of ``render``), the kernel sends every
point, and the view draws them once (its ``pointsHandler``: a new number of points is a
fresh ``draw``). A selection made meanwhile (:func:`select`) is sent after the points.

Read faster: the view turns the points it gets (one binary array) into one JavaScript array
per point with ``Array.from({length}).map((_, i) => Array.from(arr.subarray(...)))``: a
typed-array view and two iterator conversions per point, 1.0 to 1.3 s for 1,000,000 points
in Node 20 and again as much in garbage collection in the page. :func:`prepare_large_map`
also gives the widget its own copy of ``bundle.js`` whose deserialiser fills the same arrays
(the same numbers, one plain array per point, as regl-scatterplot needs) with a loop: 70 to
200 ms in Node, about 25 ms in a page traced in Chromium (``benchmarks/bench_embedding_map.py``
measures the page). The one replaced text is :data:`DESERIALIZER`; nothing else in the
bundle changes.

The contract: the widget's synced traits ``points``, ``selection``, ``dom_element_id`` and
``_esm`` (anywidget's module source), and the places of ``bundle.js`` named in
:data:`BUNDLE_MARKERS`; ``tests/widgets/test_jscatter_adapter.py`` checks them, and
``tests/browser/test_embedding_map_browser.py`` serves a deferred, faster-read map in Chromium.

Public fallback: the widget keeps all its points from the start and jupyter-scatter's own
module (drawn twice, read as jupyter-scatter reads them); taken on any other jupyter-scatter
major than :data:`JSCATTER_MAJOR`, when the bundle no longer reads as above, and for maps
smaller than :data:`DEFER_MIN_POINTS` (drawn and read in a fraction of a second either way).
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["JSCATTER_MAJOR", "DEFER_MIN_POINTS", "installed_major", "uses_private_api",
           "prepare_large_map", "faster_bundle", "is_deferred", "select", "selected"]

#: The jupyter-scatter major version whose internals this module uses.
JSCATTER_MAJOR = 1
#: Maps with fewer points keep jupyter-scatter's own behaviour.
DEFER_MIN_POINTS = 100_000
#: jupyter-scatter's points deserialiser (``Numpy2D``), the one text the faster module replaces.
DESERIALIZER = """      const points = Array.from({ length: height }).map(
        (_, i) => Array.from(arr.subarray(i * width, (i + 1) * width))
      );"""
#: Its replacement: the same arrays (one plain array of ``width`` numbers per point), by a loop.
FAST_DESERIALIZER = """      const points = new Array(height);
      if (width === 4) {
        for (let i = 0, k = 0; i < height; i++, k += 4) {
          points[i] = [arr[k], arr[k + 1], arr[k + 2], arr[k + 3]];
        }
      } else {
        for (let i = 0, k = 0; i < height; i++, k += width) {
          const row = [];
          for (let j = 0; j < width; j++) row.push(arr[k + j]);
          points[i] = row;
        }
      }"""
#: What ``bundle.js`` must contain for the deferral and the faster reading to hold (see the
#: module docstring); the deserialiser exactly once.
BUNDLE_MARKERS = ('this.model.set("dom_element_id", this.randomStr);',
                  "pointsHandler(newPoints) {",
                  "if (newPoints.length === this.scatterplot.get(\"points\").length) {",
                  "points: Numpy2D(\"float32\"),",
                  DESERIALIZER)
_PENDING = "_workbench_deferred"


def installed_major() -> int | None:
    """The installed jupyter-scatter's major version (None when it cannot be read)."""
    try:
        return int(metadata.version("jupyter-scatter").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def _bundle() -> str | None:
    """jupyter-scatter's ``bundle.js`` (None when it cannot be read)."""
    import jscatter

    try:
        return Path(jscatter.__file__).with_name("bundle.js").read_text(encoding="utf-8")
    except OSError:
        return None


def _bundle_reads_as_expected() -> bool:
    text = _bundle()
    return (text is not None and all(marker in text for marker in BUNDLE_MARKERS)
            and text.count(DESERIALIZER) == 1)


@functools.lru_cache(maxsize=1)
def faster_bundle() -> str:
    """jupyter-scatter's ``bundle.js`` with :data:`FAST_DESERIALIZER` for its deserialiser."""
    return _bundle().replace(DESERIALIZER, FAST_DESERIALIZER)


def uses_private_api() -> bool:
    """Whether large maps use it (the installed jupyter-scatter is the one it knows)."""
    return installed_major() == JSCATTER_MAJOR and _bundle_reads_as_expected()


def prepare_large_map(scatter: Any) -> bool:
    """Have a large map's points read faster and drawn once (see the module docstring).

    Parameters
    ----------
    scatter : jscatter.Scatter
        A scatter whose widget (``scatter.widget``) was just created and not shown yet.

    Returns
    -------
    bool
        Whether it was done (False: the public fallback, nothing changed).
    """
    points = scatter.widget.points
    if points is None or len(points) < DEFER_MIN_POINTS or not uses_private_api():
        return False
    scatter.widget._esm = faster_bundle()
    _defer_points(scatter)
    return True


def _defer_points(scatter: Any) -> None:
    """Give the widget its first point now and every point once a view rendered."""
    widget = scatter.widget
    points = widget.points
    pending = {"points": points, "selection": widget.selection}

    def on_rendered(change: dict) -> None:
        widget.unobserve(on_rendered, names=["dom_element_id"])
        setattr(scatter, _PENDING, None)
        if widget.points is not None and len(widget.points) == 1:  # not replaced meanwhile
            widget.points = pending["points"]
        selection = pending["selection"]
        if selection is not None and len(selection):
            scatter.selection(selection)

    setattr(scatter, _PENDING, pending)
    with widget.hold_sync():
        _unselect(widget)
        widget.points = points[:1]
    widget.observe(on_rendered, names=["dom_element_id"])


def select(scatter: Any, points: np.ndarray | None) -> None:
    """``scatter.selection(points)``, kept for after the points while they are deferred."""
    pending = getattr(scatter, _PENDING, None)
    if pending is None:
        scatter.selection(points)
        return
    pending["selection"] = points
    _unselect(scatter.widget)  # shown nowhere yet


def _unselect(widget: Any) -> None:
    """Empty the widget's selection trait (a no-op when it is empty already)."""
    if widget.selection is None or len(widget.selection):
        widget.selection = np.array([], dtype=np.uint32)  # jupyter-scatter's SELECTION_DTYPE


def selected(scatter: Any) -> np.ndarray | None:
    """The widget's selected point indices, the one kept for after deferred points included."""
    pending = getattr(scatter, _PENDING, None)
    return pending["selection"] if pending is not None else scatter.widget.selection


def is_deferred(scatter: Any) -> bool:
    """Whether the scatter's points wait for a view to be rendered."""
    return getattr(scatter, _PENDING, None) is not None
