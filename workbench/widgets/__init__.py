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
    "ItemView": "item_view",
    "RunComparison": "run_comparison",
    "ErrorExplorer": "error_explorer",
    "DetectionErrorExplorer": "detection_explorer",
    "PrecisionRecallCurve": "detection_pr_curve",
    "APTable": "detection_ap_table",
    "ObjectSliceTable": "detection_slices",
    "AgreementMatrix": "agreement_matrix",
    "ConfusedPairs": "confused_pairs",
    "AnnotatorTable": "annotator_table",
    "LabelIssueList": "label_issue_list",
    "DetectionIssueList": "detection_issue_list",
    "DataIssueList": "data_issue_list",
    "DataExplorer": "data_explorer",
    "Dashboard": "dashboard",
    "DisagreementExplorer": "disagreement_explorer",
    "EmbeddingMap": "embedding_map",
    "DetectionDisagreementExplorer": "detection_disagreement",
    "TagPanel": "tag_panel",
    "RelabelQueueView": "relabel_view",
    "FiftyOneButton": "fiftyone_button",
    "OverviewDashboard": "overview",
    "ReleasePanel": "release_panel",
    "ScorecardTable": "scorecard_table",
    "GuidelinePanel": "guideline_panel",
    "QcRoundView": "qc_round_view",
    "VendorsAndGuidelines": "vendors_guidelines",
}

__all__ = sorted(_API) + ["preload"]


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

    from ._plotly_adapter import figure_widget_class

    go.FigureWidget  # noqa: B018 - a lazy attribute: imports plotly's widget machinery
    figure_widget_class()  # the class the dashboards build (the served bundle's, if any)
    # plotly reads its validators (a JSON file of several MB) when the first figure is made
    go.Figure([go.Heatmap(z=[[0]]), go.Scatter(x=[0], y=[0]), go.Bar(x=[0], y=[0])])
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
