"""jupyter-scatter's widget internals the map relies on, in one module (jupyter-scatter 1).

Three things have no public API: **a large map drawn once, not twice, when a page opens**,
**its points read in a tenth of the time**, and **a lasso known to the kernel before its
points arrive**.

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
measures the page). The replaced text is :data:`DESERIALIZER`.

Lasso first: a lasso of 100,000 points reaches the kernel as 400 kB of point indices, which
a browser without a GPU delivers only after its next frame (the selection drawn, over 1 s for
1,000,000 points). The faster module's view also keeps the lasso's outline (a subscription
to regl-scatterplot's public ``lassoExtend`` event, added at :data:`LASSO_SUBSCRIBE`) and, in
its ``selectHandler`` (:data:`SELECT_HANDLER`), sends the outline and a checksum of the points
first, a message of a few kB. :func:`on_lasso` finds the same points in the kernel
(:mod:`workbench.widgets._lasso`) and hands them on when the checksums agree. The
``selection`` trait follows as before; nothing else in the bundle changes
(:data:`REPLACEMENTS`). jupyter-scatter's widget overrides ipywidgets' dispatch of custom
messages with its tooltip handler (so ``on_msg`` never reaches it); :func:`on_lasso` chains
its own handler before it on the widget instance.

The contract: the widget's synced traits ``points``, ``selection``, ``dom_element_id`` and
``_esm`` (anywidget's module source), its custom messages (anywidget's ``model.send``,
ipywidgets' ``Widget._handle_custom_msg``), and the places of ``bundle.js`` named in
:data:`BUNDLE_MARKERS`; ``tests/widgets/test_jscatter_adapter.py`` checks them, and
``tests/browser/test_embedding_map_browser.py`` serves a deferred, faster-read map in Chromium
and lassoes it.

Public fallback: the widget keeps all its points from the start and jupyter-scatter's own
module (drawn twice, read as jupyter-scatter reads them, a lasso known to the kernel when
its points arrive); taken on any other jupyter-scatter major than :data:`JSCATTER_MAJOR`,
when the bundle no longer reads as above, and for maps smaller than :data:`DEFER_MIN_POINTS`
(drawn and read in a fraction of a second, a lasso of a few kB, either way).
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import _lasso

__all__ = ["JSCATTER_MAJOR", "DEFER_MIN_POINTS", "installed_major", "uses_private_api",
           "prepare_large_map", "faster_bundle", "is_deferred", "select", "selected",
           "on_lasso"]

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
#: Where the map's view follows a lasso: jupyter-scatter's view subscribes to
#: regl-scatterplot's public events here; the view of the faster module also keeps the lasso's
#: outline (regl-scatterplot's ``lassoExtend`` event; the last one before the lasso ends is
#: published empty, when the lasso is cleared, and is not kept).
LASSO_SUBSCRIBE = """      this.scatterplot.subscribe("lassoEnd", this.lassoEndHandlerBound);
"""
#: Its replacement: the same subscription, then the outline's.
LASSO_SUBSCRIBE_PATCHED = LASSO_SUBSCRIBE + """\
      this.scatterplot.subscribe("lassoStart", () => { this.workbenchLasso = null; });
      this.scatterplot.subscribe("lassoExtend", (event) => {
        if (event.coordinates.length > 2) this.workbenchLasso = event.coordinates;
      });
      this.scatterplot.subscribe("lassoEnd", () => { this.workbenchLasso = null; });
"""
#: jupyter-scatter's view publishing a selection to the kernel (the ``selection`` trait).
SELECT_HANDLER = """  selectHandler(event) {
    this.selectionChangedByJs = true;
"""
#: Its replacement: a lasso's outline and checksum go first, in a message of a few kB
#: (:mod:`workbench.widgets._lasso`); the selection follows as before.
SELECT_HANDLER_PATCHED = f"""  workbenchSendLasso(points) {{
    const lasso = this.workbenchLasso;
    this.workbenchLasso = null;
    if (!lasso || lasso.length < 3) return;
    let sum = 0, hash = 0;
    for (const i of points) {{
      sum += i;
      let x = Math.imul(i ^ (i >>> 16), {_lasso.HASH_MULTIPLIER});
      x = Math.imul(x ^ (x >>> 16), {_lasso.HASH_MULTIPLIER});
      hash = (hash + (x ^ (x >>> 16))) >>> 0;
    }}
    this.model.send({{
      type: "{_lasso.MESSAGE_TYPE}", polygon: lasso.flat(), n: points.length, sum, hash
    }});
  }}
  selectHandler(event) {{
    this.workbenchSendLasso(event.points);
    this.selectionChangedByJs = true;
"""
#: The faster module's replacements of ``bundle.js``'s texts (each found exactly once).
REPLACEMENTS = ((DESERIALIZER, FAST_DESERIALIZER), (LASSO_SUBSCRIBE, LASSO_SUBSCRIBE_PATCHED),
                (SELECT_HANDLER, SELECT_HANDLER_PATCHED))
#: What ``bundle.js`` must contain for the deferral, the faster reading and the lasso's
#: outline to hold (see the module docstring); each replaced text exactly once.
BUNDLE_MARKERS = ('this.model.set("dom_element_id", this.randomStr);',
                  "pointsHandler(newPoints) {",
                  "if (newPoints.length === this.scatterplot.get(\"points\").length) {",
                  "points: Numpy2D(\"float32\"),",
                  *(old for old, _new in REPLACEMENTS))
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
            and all(text.count(old) == 1 for old, _new in REPLACEMENTS))


@functools.lru_cache(maxsize=1)
def faster_bundle() -> str:
    """jupyter-scatter's ``bundle.js`` with the texts of :data:`REPLACEMENTS` replaced."""
    text = _bundle()
    for old, new in REPLACEMENTS:
        text = text.replace(old, new)
    return text


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


def on_lasso(scatter: Any, callback: Any) -> None:
    """Call ``callback(points)`` when the page sends a lasso's outline the kernel agrees with.

    The faster module's view sends a lasso's outline and a checksum of the points it found
    before it sends the points themselves (see :mod:`workbench.widgets._lasso`). The
    kernel finds the points inside the outline from the positions it sent to the page and
    calls ``callback`` with them (ascending point indices) only when their checksum is the
    page's. The ``selection`` trait still follows with the same points.

    Parameters
    ----------
    scatter : jscatter.Scatter
        The map's scatter.
    callback : callable
        Called with a numpy array of point indices.
    """
    widget = scatter.widget
    cache: dict = {}

    def positions() -> np.ndarray | None:
        points = widget.points
        if points is None or len(points) == 0:
            return None
        if cache.get("points") is not points:  # the page's float32 values, kept as float64
            xy = np.asarray(points)[:, :2].astype(np.float32).astype(np.float64)
            cache.update(points=points, xy=xy)
        return cache["xy"]

    def handle(content: Any) -> bool:
        message = _lasso.parse_lasso_message(content)
        if message is None:
            return False
        xy = positions()
        if xy is not None:
            polygon, sums = message
            found = _lasso.points_in_lasso(xy, polygon)
            if _lasso.checksum(found) == sums:
                callback(found)
        return True

    _also_handle_custom_messages(widget, handle)


def _also_handle_custom_messages(widget: Any, handler: Any) -> None:
    """Have ``handler(content)`` see the widget's custom messages before jupyter-scatter.

    ipywidgets hands a custom message to ``Widget._handle_custom_msg``, which would call the
    callbacks registered with ``on_msg``. jupyter-scatter's widget overrides that method
    with its tooltip handler, and its own ``on_msg`` registration of the same handler fails
    (a callback gets three arguments), so ``on_msg`` callbacks are never called on it. The
    instance's method is chained instead: ``handler`` first; a message it does not take
    (it returns False) goes on to jupyter-scatter's.
    """
    original = widget._handle_custom_msg

    def handle(content: Any, buffers: Any) -> None:
        if not handler(content):
            original(content, buffers)

    widget._handle_custom_msg = handle
