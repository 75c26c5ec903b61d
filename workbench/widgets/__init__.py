"""Widgets: thin state + view over the pure functions, linked by one shared ``Selection``.

Imported lazily so that ``import workbench.widgets`` does not pull in plotly until a widget
is built.
"""

from __future__ import annotations

import importlib
from typing import Any

_API: dict[str, str] = {
    "ConfusionMatrix": "confusion",
    "SliceTable": "slice_table",
    "ItemGallery": "gallery",
    "RunComparison": "run_comparison",
    "ErrorExplorer": "error_explorer",
    "AgreementMatrix": "agreement_matrix",
    "ConfusedPairs": "confused_pairs",
    "AnnotatorTable": "annotator_table",
    "LabelIssueList": "label_issue_list",
    "DisagreementExplorer": "disagreement_explorer",
    "TagPanel": "tag_panel",
    "RelabelQueueView": "relabel_view",
    "FiftyOneButton": "fiftyone_button",
    "OverviewDashboard": "overview",
}

__all__ = sorted(_API) + ["preload"]

def _use_served_plotly_bundle(figure_class) -> None:
    """Point FigureWidgets at plotly's bundle served by ``workbench serve`` (if it does).

    anywidget sends a widget's ``_esm`` source to the browser with every model; plotly's is
    5 MB, so a page with several figures transfers and parses it several times. When the
    server publishes the bundle as a static file (``WORKBENCH_PLOTLY_ESM``, a path on the
    same origin), the figures get a small module that imports it from there instead: the
    browser fetches and parses it once per page, and caches it.
    """
    import json
    import os

    path = os.environ.get("WORKBENCH_PLOTLY_ESM", "")
    if not path.startswith("/voila/static/plotly-widget-") or not path.endswith(".js"):
        return
    figure_class._esm = (
        f"const mod = await import(new URL({json.dumps(path)}, document.baseURI).href);\n"
        "export const FigureModel = mod.FigureModel;\n"
        "export const FigureView = mod.FigureView;\n"
        "export default mod.default;\n"
    )


def preload() -> None:
    """Import every widget and the heavy modules they use, without building anything.

    A dashboard calls this before :func:`workbench.serve.wait_for_viewer`, so a preheated
    Voila kernel has paid for the imports (plotly's ``FigureWidget`` alone pulls in nbformat
    and jsonschema; scipy.stats takes seconds) before a viewer arrives, and
    only the data is read when the page is requested.
    """
    from ..serve import preload as import_modules

    import_modules()  # workbench.serve.PRELOAD_MODULES (a missing extra is skipped)
    import plotly.graph_objects as go

    go.FigureWidget  # noqa: B018 - a lazy attribute: imports plotly's widget machinery
    _use_served_plotly_bundle(go.FigureWidget)
    for name in _API:
        try:
            __getattr__(name)
        except ImportError:
            continue


def __getattr__(name: str) -> Any:
    try:
        module = _API[name]
    except KeyError:
        raise AttributeError(f"module 'workbench.widgets' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
