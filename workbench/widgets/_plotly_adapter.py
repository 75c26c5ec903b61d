"""Every use of plotly's private internals, in one module (written against plotly 6).

plotly's ``FigureWidget`` has no public API for three things the dashboards need; each has a
private path (plotly 6) and a public fallback:

- *A view opened later shows the current figure* (Voila renders after the cell ran):
  :func:`sync_figure_state` copies ``_layout_obj._props``/``_data`` into the synced traits
  ``_widget_layout``/``_widget_data``. Fallback: the IPython display protocol
  (``_repr_mimebundle_``), where plotly syncs the same state (it also probes the parent
  process for version warnings on every call).
- *No mode bar over the small heatmaps*: :func:`hide_modebar` sets the synced ``_config``
  trait (``displayModeBar``, ``displaylogo``). Fallback: the public ``layout.modebar.remove``
  with every button (plotly's logo stays).
- *plotly's 5 MB bundle fetched once per page* under ``workbench serve``:
  :func:`figure_widget` builds a ``FigureWidget`` subclass whose anywidget ``_esm`` imports
  the bundle the server publishes (:func:`widget_bundle`: ``plotly/package_data/
  widgetbundle.js``, exporting ``FigureModel``, ``FigureView`` and ``default``). Fallback:
  plotly's own class, which sends the bundle with every figure.

The private path is taken only on the plotly major this module was written against
(:data:`PLOTLY_MAJOR`); on any other the public fallback is used, and
``tests/widgets/test_plotly_adapter.py`` fails loudly until each item above is checked
against the new plotly. plotly is imported inside the functions (``import workbench.widgets``
stays light).
"""

from __future__ import annotations

import functools
import json
import os
from copy import deepcopy
from pathlib import Path
from typing import Any

__all__ = [
    "PLOTLY_MAJOR",
    "ESM_ENV",
    "installed_major",
    "uses_private_api",
    "figure_widget",
    "figure_widget_class",
    "sync_figure_state",
    "hide_modebar",
    "widget_bundle",
]

#: The plotly major version whose internals this module uses.
PLOTLY_MAJOR = 6
#: Where ``workbench serve`` tells the kernels it serves plotly's widget bundle (a same-origin
#: path ``/voila/static/plotly-widget-<hash>.js``).
ESM_ENV = "WORKBENCH_PLOTLY_ESM"
#: Every mode-bar button of a 2-D cartesian figure, for ``layout.modebar.remove``.
_MODEBAR_BUTTONS = ["toimage", "zoom", "pan", "select", "lasso", "zoomin", "zoomout",
                    "autoscale", "resetscale", "resetview", "resetviews", "togglespikelines",
                    "togglehover", "hovercompare", "hoverclosest"]


def installed_major() -> int | None:
    """The installed plotly's major version (None when it cannot be read)."""
    import plotly

    try:
        return int(str(plotly.__version__).split(".")[0])
    except (AttributeError, ValueError):
        return None


def uses_private_api() -> bool:
    """Whether the installed plotly is the major this module was written against."""
    return installed_major() == PLOTLY_MAJOR


# ---- the served bundle ---------------------------------------------------------------------


def widget_bundle() -> Path | None:
    """The ``FigureWidget`` JavaScript bundle of plotly, for ``workbench serve`` to publish.

    None on another plotly major or when the file is not where plotly 6 keeps it: the server
    then publishes nothing and every figure carries plotly's own bundle.
    """
    if not uses_private_api():
        return None
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"
    return path if path.is_file() else None


def _served_path() -> str | None:
    path = os.environ.get(ESM_ENV, "")
    if path.startswith("/voila/static/plotly-widget-") and path.endswith(".js"):
        return path
    return None


@functools.lru_cache(maxsize=4)
def _served_figure_class(path: str) -> type:
    """A ``FigureWidget`` whose anywidget module imports the bundle served at ``path``.

    anywidget sends a widget's ``_esm`` source with every model; plotly's is 5 MB, so a page
    with several figures would transfer and parse it several times. This subclass's module
    (a few hundred bytes) imports the served file instead: the browser fetches, parses and
    caches it once per page. ``_esm`` on a subclass is anywidget's public API; that the
    bundle exports ``FigureModel``, ``FigureView`` and ``default`` is plotly 6's layout.
    """
    import plotly.graph_objects as go

    esm = (f"const mod = await import(new URL({json.dumps(path)}, document.baseURI).href);\n"
           "export const FigureModel = mod.FigureModel;\n"
           "export const FigureView = mod.FigureView;\n"
           "export default mod.default;\n")
    return type("FigureWidget", (go.FigureWidget,),
                {"_esm": esm, "__module__": __name__,
                 "__doc__": "plotly's FigureWidget, loading the bundle the server publishes."})


def figure_widget_class() -> type:
    """The ``FigureWidget`` class the dashboards build (see :func:`figure_widget`)."""
    import plotly.graph_objects as go

    path = _served_path()
    if path is None or not uses_private_api():
        return go.FigureWidget
    return _served_figure_class(path)


def figure_widget(*args: Any, **kwargs: Any) -> Any:
    """A ``plotly.graph_objects.FigureWidget`` (arguments as plotly's).

    Under ``workbench serve`` (``WORKBENCH_PLOTLY_ESM`` set) on plotly 6 the figure loads
    plotly's bundle from the server, once per page; otherwise it is plotly's own class.
    Nothing process-wide is patched: ``go.FigureWidget`` itself is left as plotly made it.
    """
    return figure_widget_class()(*args, **kwargs)


# ---- figure state --------------------------------------------------------------------------


def sync_figure_state(fig: Any) -> Any:
    """Copy a FigureWidget's current data and layout into its synced initial state.

    plotly 6's ``FigureWidget`` sends changes made after construction (``add_trace``,
    ``update_layout``, assignments) as one-off delta messages that only a live view applies;
    a view created later (Voila renders after the cell ran) starts from the *constructor's*
    state and shows an empty figure. Calling this once the figure is built and before it is
    displayed makes the first view complete; later changes still go as deltas. Returns
    ``fig``.
    """
    if uses_private_api():
        fig._widget_layout = deepcopy(fig._layout_obj._props)
        fig._widget_data = deepcopy(fig._data)
    else:  # the IPython display protocol: plotly syncs the same state there
        fig._repr_mimebundle_()
    return fig


def hide_modebar(fig: Any) -> Any:
    """Hide the mode bar (zoom, pan, download... and plotly's logo) of a FigureWidget.

    The figure's ``config`` has no public setter on a ``FigureWidget``; on another plotly
    major the public ``layout.modebar.remove`` drops every button instead (the logo stays).
    Returns ``fig``.
    """
    if uses_private_api():
        fig._config = {**(fig._config or {}), "displayModeBar": False, "displaylogo": False}
    else:
        fig.update_layout(modebar={"remove": list(_MODEBAR_BUTTONS)})
    return fig
