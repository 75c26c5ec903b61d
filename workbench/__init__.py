"""workbench: slice model errors, view annotator disagreements, tag items to relabel.

The public API is imported lazily (PEP 562), so ``import workbench`` is cheap and has no
side effects; heavy dependencies (cleanlab, FiftyOne, SQLAlchemy) load only when used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_API: dict[str, str] = {
    # project format and loading
    "open_project": "project",
    "Project": "project",
    "validate_project": "project",
    "Problem": "project",
    "build_sample": "sample",
    "load_sample": "sample",
    "make_project": "synthetic",
    "write_project": "project",
    # model errors
    "project_errors": "slicing",
    "confusion_table": "slicing",
    "cell_items": "slicing",
    "slice_metrics": "slicing",
    "discover_slices": "slicing",
    "compare_runs": "slicing",
    "slice_items": "slicing",
    "RunDiff": "slicing",
    # object detection
    "match_detections": "detection",
    "detection_metrics": "detection",
    "import_coco": "detection",
    "export_coco": "detection",
    "DetectionProject": "detection",
    "object_frame": "detection",
    "DetectionRunDiff": "detection",
    "match_annotators": "detection",
    "label_frame": "detection",
    # disagreements and label quality
    "agreement_summary": "agreement",
    "pairwise_agreement": "agreement",
    "agreement_by": "agreement",
    "consensus": "agreement",
    "annotator_quality": "agreement",
    "confused_pairs": "agreement",
    "disagreement_frame": "agreement",
    "label_issues": "label_quality",
    "find_label_issues_frame": "label_quality",
    "pivot_pairwise": "agreement",
    "dawid_skene": "agreement",
    "disagreeing_items": "agreement",
    "confused_pairs_matrix": "agreement",
    "vendor_scorecard": "scorecard",
    # QC rounds
    "plan_qc_round": "qc",
    "export_qc_round": "qc",
    "qc_report": "qc",
    "qc_thresholds": "qc",
    "QCRound": "qc",
    "vendor_feedback": "feedback",
    # data issues beyond labels (duplicates, leakage, outliers)
    "data_issues": "data_issues",
    # coverage and drift
    "coverage": "coverage",
    "Coverage": "coverage",
    "drift": "drift",
    "drift_items": "drift",
    # tags and the relabel loop
    "TagStore": "tags",
    "RelabelQueue": "relabel",
    "ImportReport": "relabel",
    "BoxImportReport": "detection.vendor",
    "export_relabel_queue": "relabel",
    "import_labels": "relabel",
    "current_author": "session",
    "can_write": "session",
    # labeling guidelines
    "Guidelines": "guidelines",
    "guideline_effect": "guidelines",
    "render_html": "guidelines",
    # versioned label releases
    "label_diff": "releases",
    "trace": "releases",
    "export_release": "releases",
    "list_releases": "releases",
    "read_release_export": "releases",
    "ReleaseError": "releases",
    # FiftyOne
    "to_fiftyone": "fiftyone_bridge",
    "fiftyone_session": "fiftyone_bridge",
    "open_in_fiftyone": "fiftyone_bridge",
    "sync_tags_from_fiftyone": "fiftyone_bridge",
    "sync_project": "fiftyone_bridge",
    "SyncStats": "fiftyone_bridge",
    "selection_from_fiftyone": "fiftyone_bridge",
    "push_tags": "fiftyone_bridge",
    # linking and errors
    "Selection": "selection",
    "WorkbenchError": "errors",
    "SchemaError": "errors",
    "MissingDependencyError": "errors",
    "ReadOnlyError": "errors",
    "StoreError": "errors",
}

__all__ = sorted(_API) + ["widgets"]


def __getattr__(name: str) -> Any:
    if name == "widgets":
        return importlib.import_module(".widgets", __name__)
    try:
        module = _API[name]
    except KeyError:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """The package's module type: ``workbench.drift`` stays the function ``drift``.

    A submodule named like the function it exports (``coverage``, ``drift``) would
    otherwise replace the function on the package when it is first imported (the import
    system sets the submodule as an attribute of its package). ``from workbench.drift
    import psi`` still reaches the module.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if (isinstance(value, types.ModuleType) and _API.get(name) == name
                and value.__name__ == f"{__name__}.{name}" and hasattr(value, name)):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
