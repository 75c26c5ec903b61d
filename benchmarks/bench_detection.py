"""Benchmark: detection evaluation at scale against pycocotools and faster-coco-eval.

One row per peer, on the same synthetic data in the same run (forked children, see
harness.py): 100,000 images, 1,000,000 reference boxes (about 1% crowd), 1,500,000
detections, 80 classes, rows shuffled. Detections are reference boxes perturbed in position
and size (some with the wrong class), plus background boxes; scores are rounded to 3
decimals, as many detectors' result files are, so there are ties.

* ours: ``match_detections`` + ``detection_metrics`` on the frames (everything: the
  outcome of every box, and AP50 / AP@[.5:.95] / precision / recall / counts per class).
* pycocotools: ``COCOeval(gt, dt, 'bbox')`` ``evaluate()`` + ``accumulate()``. Building its
  inputs (``COCO()`` index of the ground truth and ``loadRes`` of the detections) is done
  before the measured call and **excluded**; the conversion of our frames to COCO dicts is
  excluded too.
* faster-coco-eval: ``COCOeval_faster`` ``evaluate()`` + ``accumulate()``, same exclusions.

AP per class and overall is compared with each peer (max absolute difference in the notes).
Target: ours < 10 s and >= 5x faster than pycocotools.

Run: ``python benchmarks/bench_detection.py`` (full size; pycocotools takes several
minutes). ``--scale 0.1`` runs a 10x smaller size (10,000 images).
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RESULTS_DIR, measure, record  # noqa: E402

from workbench.detection import detection_metrics, match_detections  # noqa: E402
from workbench.detection.matching import item_order  # noqa: E402

SCALE = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 1.0
N_IMAGES = int(100_000 * SCALE)
N_BOXES = int(1_000_000 * SCALE)
N_DETS = int(1_500_000 * SCALE)
N_CLASSES = 80
PEER_TIMEOUT = 3000


def make_frames(seed: int = 0):
    """Synthetic boxes and detections: realistic sizes, perturbed copies, background."""
    rng = np.random.default_rng(seed)
    classes = [f"class_{k:02d}" for k in range(N_CLASSES)]
    items = np.array([f"{i:06d}" for i in range(N_IMAGES)], dtype=object)
    width = rng.choice([640, 1280, 1920], N_IMAGES)
    height = (width * 0.75).astype(int)
    # reference boxes: class frequencies skewed like COCO, log-normal sizes
    g_item = rng.integers(0, N_IMAGES, N_BOXES)
    freq = rng.dirichlet(np.full(N_CLASSES, 0.7))
    g_cls = rng.choice(N_CLASSES, N_BOXES, p=freq)
    gw = np.clip(np.exp(rng.normal(3.8, 0.9, N_BOXES)), 4, None)
    gh = np.clip(gw * np.exp(rng.normal(0, 0.4, N_BOXES)), 4, None)
    gw = np.minimum(gw, width[g_item] - 1)
    gh = np.minimum(gh, height[g_item] - 1)
    gx = rng.uniform(0, 1, N_BOXES) * (width[g_item] - gw)
    gy = rng.uniform(0, 1, N_BOXES) * (height[g_item] - gh)
    crowd = rng.random(N_BOXES) < 0.01
    boxes = pd.DataFrame({"item_id": items[g_item], "label": np.array(classes)[g_cls],
                          "x": gx.round(2), "y": gy.round(2), "w": gw.round(2),
                          "h": gh.round(2), "iscrowd": crowd})
    # detections: 1.1 per reference box on average (misses and duplicates), the rest
    # background; positions jittered by a fraction of the size, 5% with a wrong class
    n_hit = int(N_BOXES * 1.1)
    src = rng.integers(0, N_BOXES, n_hit)
    jit = rng.normal(0, 0.12, (n_hit, 4))
    dw = np.clip(gw[src] * np.exp(jit[:, 2]), 2, None)
    dh = np.clip(gh[src] * np.exp(jit[:, 3]), 2, None)
    dx = gx[src] + jit[:, 0] * gw[src]
    dy = gy[src] + jit[:, 1] * gh[src]
    d_cls = np.where(rng.random(n_hit) < 0.05, rng.integers(0, N_CLASSES, n_hit), g_cls[src])
    score = rng.beta(4, 2, n_hit)
    n_bg = N_DETS - n_hit
    b_item = rng.integers(0, N_IMAGES, n_bg)
    bw = np.clip(np.exp(rng.normal(3.5, 0.9, n_bg)), 2, None)
    bh = np.clip(bw * np.exp(rng.normal(0, 0.4, n_bg)), 2, None)
    preds = pd.DataFrame({
        "item_id": items[np.r_[g_item[src], b_item]],
        "run": "model",
        "label": np.array(classes)[np.r_[d_cls, rng.choice(N_CLASSES, n_bg, p=freq)]],
        "x": np.r_[dx, rng.uniform(0, 1, n_bg) * width[b_item]].round(2),
        "y": np.r_[dy, rng.uniform(0, 1, n_bg) * height[b_item]].round(2),
        "w": np.r_[dw, bw].round(2), "h": np.r_[dh, bh].round(2),
        "confidence": np.r_[score, rng.beta(2, 4, n_bg)].round(3),
    })
    boxes = boxes.sample(frac=1, random_state=seed).reset_index(drop=True)
    preds = preds.sample(frac=1, random_state=seed + 1).reset_index(drop=True)
    items_frame = pd.DataFrame({"item_id": items, "filepath": [f"{i}.jpg" for i in items],
                                "width": width, "height": height})
    return {"items": items_frame, "boxes": boxes, "predictions": preds, "classes": classes}


def coco_inputs(frames):
    """COCO instances and results dicts of the frames (image ids in our image order)."""
    items = frames["items"]["item_id"].to_numpy(dtype=object)
    image_id = pd.Series(item_order(items) + 1, index=items)
    cat_id = {c: k + 1 for k, c in enumerate(frames["classes"])}
    b, p = frames["boxes"], frames["predictions"]
    bi = image_id.reindex(b["item_id"]).to_numpy().tolist()
    bc = b["label"].map(cat_id).to_numpy().tolist()
    bb = b[["x", "y", "w", "h"]].to_numpy().tolist()
    area = (b["w"] * b["h"]).to_numpy().tolist()
    crowd = b["iscrowd"].astype(int).to_numpy().tolist()
    rows = zip(bi, bc, bb, area, crowd, strict=True)
    anns = [{"id": n + 1, "image_id": i, "category_id": c, "bbox": bx, "area": a,
             "iscrowd": cr} for n, (i, c, bx, a, cr) in enumerate(rows)]
    gt = {"images": [{"id": int(v)} for v in image_id.to_numpy()], "annotations": anns,
          "categories": [{"id": v, "name": k} for k, v in cat_id.items()]}
    pi = image_id.reindex(p["item_id"]).to_numpy().tolist()
    pc = p["label"].map(cat_id).to_numpy().tolist()
    pb = p[["x", "y", "w", "h"]].to_numpy().tolist()
    ps = p["confidence"].to_numpy().tolist()
    dt = [{"image_id": i, "category_id": c, "bbox": bx, "score": s}
          for i, c, bx, s in zip(pi, pc, pb, ps, strict=True)]
    return gt, dt


def ours(frames):
    m = match_detections(frames)
    return m, detection_metrics(frames)


def _quiet(fn):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn()


def coco_objects(gt, dt, lib):
    if lib == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        def build():
            cg = COCO()
            cg.dataset = gt
            cg.createIndex()
            return COCOeval(cg, cg.loadRes(dt), "bbox")
    else:
        import faster_coco_eval

        def build():
            cg = faster_coco_eval.COCO(gt)
            return faster_coco_eval.COCOeval_faster(cg, cg.loadRes(dt), "bbox")
    return _quiet(build)


def peer_eval(e, save=None):
    """evaluate + accumulate; the child saves the precision array for the AP comparison."""
    _quiet(lambda: (e.evaluate(), e.accumulate()))
    if save is not None:
        np.save(save, e.eval["precision"])
    return e


def peer_ap(prec_all, n_classes):
    """(AP50, AP) per class and overall (stats[0]) from COCOeval's precision array."""
    prec = prec_all[:, :, :, 0, -1]
    ap = np.array([prec[:, :, k].mean() if (prec[:, :, k] > -1).any() else np.nan
                   for k in range(n_classes)])
    ap50 = np.array([prec[0, :, k].mean() if (prec[0, :, k] > -1).any() else np.nan
                     for k in range(n_classes)])
    overall = prec[prec > -1].mean() if (prec > -1).any() else -1
    return ap50, ap, overall


def main() -> int:
    t0 = time.perf_counter()
    frames = make_frames()
    size = (f"{N_IMAGES:,} images, {len(frames['boxes']):,} boxes, "
            f"{len(frames['predictions']):,} detections, {N_CLASSES} classes")
    print(f"built {size} in {time.perf_counter() - t0:.1f} s", flush=True)
    m, met = ours(frames)
    per = met[met["class"] != "all"].set_index("class").loc[frames["classes"]]
    print(f"ours: AP {met.iloc[-1]['ap']:.4f}, AP50 {met.iloc[-1]['ap50']:.4f}; outcomes "
          f"{m['outcome'].value_counts().to_dict()}", flush=True)
    result = measure(ours, frames, repeat=1)
    print(f"ours: {result}", flush=True)
    t0 = time.perf_counter()
    gt, dt = coco_inputs(frames)
    print(f"COCO dicts in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = []
    for lib in ("pycocotools", "faster-coco-eval"):
        try:
            t0 = time.perf_counter()
            e = coco_objects(gt, dt, lib)
            build = time.perf_counter() - t0
        except ImportError as exc:
            rows.append({"operation": "match_detections + detection_metrics", "size": size,
                         "ours": result, "peer": lib, "peer_result": None,
                         "target": "< 10 s, >= 5x faster than pycocotools",
                         "notes": f"{lib} not installed: {exc}"})
            continue
        save = RESULTS_DIR / f".{lib}-precision.npy"
        peer = measure(peer_eval, e, save, timeout=PEER_TIMEOUT)
        notes = (f"peer's evaluate()+accumulate() only; its COCO index + loadRes "
                 f"({build:.1f} s) excluded; ")
        if peer.get("error") is None:
            # the measured run is forked: it saved its precision array
            ap50, ap, overall = peer_ap(np.load(save), N_CLASSES)
            save.unlink()
            d50 = np.nanmax(np.abs(per["ap50"].to_numpy() - ap50))
            d = np.nanmax(np.abs(per["ap"].to_numpy() - ap))
            same_nan = bool((np.isnan(ap) == per["ap"].isna().to_numpy()).all())
            notes += (f"max abs(AP50 - peer) per class {d50:.1e}, abs(AP - peer) {d:.1e}, "
                      f"overall AP ours {met.iloc[-1]['ap']:.6f} vs peer {overall:.6f} "
                      f"(diff {abs(met.iloc[-1]['ap'] - overall):.1e}); classes without "
                      f"boxes agree: {same_nan}; ")
        if result.get("seconds") and peer.get("seconds"):
            notes += f"speed-up {peer['seconds'] / result['seconds']:.1f}x; "
        notes += ("ours includes the outcome of every box (match_detections) and all "
                  "metrics from the frames")
        rows.append({"operation": "match_detections + detection_metrics (AP50, AP@[.5:.95], "
                                  "counts per class)", "size": size, "ours": result,
                     "peer": f"{lib} COCOeval evaluate + accumulate", "peer_result": peer,
                     "target": "< 10 s, >= 5x faster than pycocotools", "notes": notes})
        print(f"{lib}: {peer} | {notes}", flush=True)
        del e
        record("detection", rows)  # keep partial results
    path = record("detection", rows)
    print(f"wrote {path}")
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
