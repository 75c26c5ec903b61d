"""Object detection: matching, metrics (and, from other modules, project I/O and the sample).

Each job is its own module; this package only re-exports their public functions.
"""

from .agreement import match_annotators
from .coco import export_coco, import_coco
from .consensus import box_consensus
from .io import DetectionProject
from .label_quality import detection_label_issues
from .label_slices import discover_label_slices, label_frame
from .matching import match_detections
from .metrics import detection_metrics
from .slicing import BACKGROUND, DetectionRunDiff, object_frame

__all__ = ["match_detections", "detection_metrics", "import_coco", "export_coco",
           "DetectionProject", "object_frame", "DetectionRunDiff", "BACKGROUND",
           "box_consensus", "detection_label_issues", "match_annotators", "label_frame",
           "discover_label_slices"]
