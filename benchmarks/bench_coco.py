"""import_coco of 100,000 images / 1,000,000 boxes against json.load + pandas frames.

A synthetic COCO instances file is written once to a temporary folder, in two shapes:

- ``coco``: what COCO's own instances files hold per annotation: ``id``, ``image_id``,
  ``category_id``, ``bbox``, ``area``, ``iscrowd`` (1% crowd) and a polygon
  ``segmentation`` (four corners); images with ``file_name``, ``width``, ``height``,
  ``license``, ``date_captured``; 80 categories with COCO's non-contiguous ids, a
  ``supercategory``, and ``info`` / ``licenses`` top-level keys;
- ``boxes``: the same without ``segmentation`` (detection-only exports).

Ours: ``workbench.import_coco(path, project_dir)``: read the JSON, check it (ids, unknown
image and category ids, every bbox, every check of the project format: boxes inside their
image, sizes, labels...), build the project's frames (segmentation kept as JSON text) and
write the project (Parquet, atomically). Peer: ``json.load`` + ``pandas.DataFrame`` of
``images``, ``annotations`` and ``categories`` (no checks, nothing written), in the same run.
Target: within 3x of the peer. Each measurement runs in a fresh forked process; the best of
two interleaved rounds is kept.

Run: ``python benchmarks/bench_coco.py`` (``--scale 0.1`` for a 10x smaller file).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402

SCALE = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 1.0
N_IMAGES = int(100_000 * SCALE)
N_BOXES = int(1_000_000 * SCALE)
ROUNDS = 2
TARGET = "within 3x of json.load + pandas frames"
PEER = "json.load + pandas.DataFrame(images, annotations, categories)"
# COCO's 80 category ids (1..90 with gaps)
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def make_instances(*, segmentation: bool, seed: int = 0) -> dict:
    """A COCO instances dict: N_IMAGES images, N_BOXES annotations, 80 categories."""
    rng = np.random.default_rng(seed)
    width = rng.choice([640, 480, 427, 500], N_IMAGES)
    height = rng.choice([480, 640, 375, 333], N_IMAGES)
    image_ids = rng.choice(600_000, N_IMAGES, replace=False) + 1
    images = [{"license": int(li), "file_name": f"{i:012d}.jpg", "height": int(h),
               "width": int(w), "date_captured": "2013-11-14 17:02:52", "id": int(i)}
              for i, w, h, li in zip(image_ids, width, height, rng.integers(1, 8, N_IMAGES),
                                     strict=True)]
    at = rng.integers(0, N_IMAGES, N_BOXES)
    w = np.minimum(np.clip(np.exp(rng.normal(3.8, 0.9, N_BOXES)), 2, None), width[at] - 1)
    h = np.minimum(np.clip(w * np.exp(rng.normal(0, 0.4, N_BOXES)), 2, None), height[at] - 1)
    x = (rng.uniform(0, 1, N_BOXES) * (width[at] - w)).round(2)
    y = (rng.uniform(0, 1, N_BOXES) * (height[at] - h)).round(2)
    w, h = w.round(2), h.round(2)
    cats = np.array(COCO_IDS)[rng.integers(0, 80, N_BOXES)]
    crowd = (rng.random(N_BOXES) < 0.01).astype(int)
    area = (w * h * rng.uniform(0.5, 0.9, N_BOXES)).round(4)
    annotations = []
    rows = zip(x.tolist(), y.tolist(), w.tolist(), h.tolist(), image_ids[at].tolist(),
               cats.tolist(), crowd.tolist(), area.tolist(), strict=True)
    for k, (bx, by, bw, bh, img, cat, cr, ar) in enumerate(rows):
        ann = {"id": k + 1, "image_id": img, "category_id": cat, "bbox": [bx, by, bw, bh],
               "area": ar, "iscrowd": cr}
        if segmentation:
            x2, y2 = round(bx + bw, 2), round(by + bh, 2)
            ann["segmentation"] = [[bx, by, x2, by, x2, y2, bx, y2]]
        annotations.append(ann)
    categories = [{"supercategory": f"super{i % 12}", "id": i, "name": f"class {i}"}
                  for i in COCO_IDS]
    return {"info": {"description": "synthetic", "year": 2026},
            "licenses": [{"id": i, "name": f"licence {i}", "url": ""} for i in range(1, 8)],
            "images": images, "annotations": annotations, "categories": categories}


def peer(path: Path):
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return (pd.DataFrame(data["images"]), pd.DataFrame(data["annotations"]),
            pd.DataFrame(data["categories"]))


def ours(path: Path, project_dir: Path):
    return wb.import_coco(path, project_dir)


def _best(a: dict | None, b: dict) -> dict:
    if a is None or a.get("seconds") is None:
        return b
    if b.get("seconds") is None:
        return a
    return b if b["seconds"] < a["seconds"] else a


def bench_shape(folder: Path, shape: str) -> dict:
    t0 = time.perf_counter()
    data = make_instances(segmentation=shape == "coco")
    path = folder / f"instances_{shape}.json"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    del data
    mb = path.stat().st_size / 1e6
    print(f"{shape}: wrote {path.name} ({mb:.0f} MB) in {time.perf_counter() - t0:.0f} s",
          flush=True)
    # check once, outside the measurement, that the import is complete and lossless
    project = wb.import_coco(path, folder / "check")
    assert len(project.items) == N_IMAGES and len(project.boxes) == N_BOXES
    check = folder / "check.json"
    wb.export_coco(project, check)
    same = json.loads(check.read_text(encoding="utf-8")) == json.loads(
        path.read_text(encoding="utf-8"))
    del project
    shutil.rmtree(folder / "check")
    check.unlink()
    best_ours = best_peer = None
    for k in range(ROUNDS):
        best_peer = _best(best_peer, measure(peer, path))
        best_ours = _best(best_ours, measure(ours, path, folder / f"project{k}"))
        print(f"  round {k}: ours {best_ours}, peer {best_peer}", flush=True)
    path.unlink()
    what = ("COCO-shaped (bbox, area, iscrowd, polygon segmentation)" if shape == "coco"
            else "boxes only (no segmentation)")
    return {
        "operation": f"import_coco, {what}",
        "size": f"{N_IMAGES:,} images, {N_BOXES:,} boxes, 80 categories ({mb:.0f} MB JSON)",
        "ours": best_ours, "peer": PEER, "peer_result": best_peer, "target": TARGET,
        "notes": (f"best of {ROUNDS} interleaved rounds, each call in a fresh process; ours "
                  f"validates everything and writes the project (Parquet); export_coco of the "
                  f"import gives the same JSON: {same}"),
    }


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-coco-") as tmp:
        for shape in ("coco", "boxes"):
            rows.append(bench_shape(Path(tmp), shape))
    if SCALE == 1.0:
        print(record("coco", rows))
    else:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
