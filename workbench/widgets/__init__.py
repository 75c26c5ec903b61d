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

__all__ = sorted(_API)


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
