"""The detection sample project: real handwritten digits placed in scenes, planted problems.

:func:`build_detection_sample` turns the 1,797 real 8x8 images of
:func:`sklearn.datasets.load_digits` into a small but realistic object-detection curation
project (the one committed in ``data/sample-detection/``):

- 160x120 grayscale PNG scenes under ``images/``, each with 0 to 6 digits drawn at heights of
  12 to 56 pixels (COCO ``small`` and ``medium`` boxes) on textured paper;
- image metadata with real effects: three ``camera`` s, one of which (``cam-b``) really blurs
  and adds noise before the detector sees the image; three ``site`` s (``harbor``'s paper is
  cluttered with pen strokes, so detectors fire on it); ``time_of_day`` (``night`` images are
  darker and noisier); a ``capture_week`` (no effect: a control);
- box metadata: ``occluded`` (a paper label covers part of the digit);
- the dataset's boxes with about 4% planted faults (missed objects, loose boxes, wrong class);
  the truth is in ``truth_boxes.csv``, which only tests and documentation read;
- boxes drawn by three annotators of two vendors, each with their own kind of mistake;
- predictions of a real sliding-window detector (scikit-learn classifiers of standardised
  pixels and gradient-orientation histograms over an image pyramid, non-maximum
  suppression, Platt-calibrated confidences) trained out of fold on the noisy dataset boxes:
  run ``baseline`` (logistic regression, five scales, a coarse stride, one box shape per
  class) and run ``candidate`` (a small neural network, nine scales, box regression);
- ``embeddings.parquet``: the ``candidate`` detector's own representation of each scene, its
  64 hidden units max-pooled over every window it scans (out of fold, like its detections).

Everything is seeded and single-threaded, so rebuilding gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._format import percent
from .._validation import check_int
from ..sample import _rng, _round_probs, _slip, _table

__all__ = [
    "build_detection_sample",
    "DETECTION_SAMPLE_DIR",
    "CLASSES",
    "WEAK_CAMERA",
    "CLUTTERED_SITE",
    "N_IMAGES",
    "EMBEDDING_DIM",
]

#: Where the committed detection sample lives in a source checkout.
DETECTION_SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample-detection"

CLASSES = [str(k) for k in range(10)]
WIDTH, HEIGHT = 160, 120
#: Number of scenes in the committed sample.
N_IMAGES = 800
#: Objects per scene: 0 (a negative image) to 6, with these probabilities.
N_OBJECTS_P = [0.08, 0.14, 0.19, 0.20, 0.17, 0.12, 0.10]
MIN_SIZE, MAX_SIZE = 12, 56  # object height in pixels (log-uniform)
CAMERAS = ["cam-a", "cam-b", "cam-c"]
CAMERA_SHARES = [0.40, 0.30, 0.30]
#: The camera that blurs and adds noise (the planted weak slice for misses).
WEAK_CAMERA = "cam-b"
SITES = ["north", "south", "harbor"]
SITE_SHARES = [0.40, 0.35, 0.25]
#: The site whose paper is cluttered with pen strokes (more false detections).
CLUTTERED_SITE = "harbor"
NIGHT_SHARE = 0.30
WEEK_YEAR, FIRST_WEEK, N_WEEKS = 2026, 14, 6
OCCLUDED_SHARE = 0.04
N_FOLDS = 3
#: Width of the shipped embeddings: the hidden layer of the ``candidate`` detector's network.
EMBEDDING_DIM = 64
#: The run whose network gives the embeddings.
EMBEDDING_RUN = "candidate"
#: Planted faults of the dataset's boxes, as shares of the true boxes.
FAULT_RATES = {"missed": 0.015, "loose": 0.015, "wrong_class": 0.010}
VENDORS = {"northstar": ["ana", "ben"], "quicklabel": ["dev"]}
#: What each annotator gets wrong (documented in the README).
PROFILES = {
    "ana": "misses small objects",
    "ben": "draws loose boxes",
    "dev": "swaps 1/7 and 4/9",
}
_SWAPS = {1: 7, 7: 1, 4: 9, 9: 4}

# Image formation (intensities in [0, 1], 1 = white paper).
_WEAK_BLUR, _WEAK_NOISE = 2.0, 0.10  # cam-b: Gaussian blur sigma (px), noise sd
_NIGHT_GAIN, _NIGHT_NOISE = 0.5, 0.06
_GRAIN = 0.008


# --------------------------------------------------------------------------- scenes


def _digit_pools(target: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """Split the 1,797 digits into one pool per fold, so no digit is seen by two folds."""
    order = _rng(seed, "det-pools").permutation(len(target))
    return [np.sort(order[k::n_folds]) for k in range(n_folds)]


def _items(n: int, seed: int) -> pd.DataFrame:
    rng = _rng(seed, "det-items")
    item_ids = [f"scene-{i:04d}" for i in range(n)]
    camera = np.asarray(CAMERAS)[rng.choice(len(CAMERAS), size=n, p=CAMERA_SHARES)]
    site = np.asarray(SITES)[rng.choice(len(SITES), size=n, p=SITE_SHARES)]
    night = rng.random(n) < NIGHT_SHARE
    week = FIRST_WEEK + rng.integers(0, N_WEEKS, size=n)
    day = rng.integers(0, 5, size=n)
    date = [dt.date.fromisocalendar(WEEK_YEAR, int(w), int(d) + 1).isoformat()
            for w, d in zip(week, day, strict=True)]
    return pd.DataFrame(
        {
            "item_id": item_ids,
            "filepath": [f"images/{i}.png" for i in item_ids],
            "width": WIDTH,
            "height": HEIGHT,
            "camera": camera,
            "site": site,
            "time_of_day": np.where(night, "night", "day"),
            "capture_week": [f"{WEEK_YEAR}-W{w:02d}" for w in week],
            "capture_date": date,
            "fold": np.arange(n) % N_FOLDS,
        }
    )


def _crop(digit8: np.ndarray) -> np.ndarray:
    """The digit's columns that hold ink (the 8x8 images are height-normalised already)."""
    cols = np.flatnonzero(digit8.max(axis=0) > 3)
    return digit8[:, cols[0] : cols[-1] + 1]


def _layout(items: pd.DataFrame, images8: np.ndarray, target: np.ndarray, seed: int):
    """Where each true object goes: one row per object (digit index, box, occlusion)."""
    rng = _rng(seed, "det-layout")
    pools = _digit_pools(target, N_FOLDS, seed)
    rows = []
    for i, fold in enumerate(items["fold"].to_numpy()):
        k = rng.choice(len(N_OBJECTS_P), p=N_OBJECTS_P)
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(k):
            digit = int(rng.choice(pools[fold]))
            h = int(round(np.exp(rng.uniform(np.log(MIN_SIZE), np.log(MAX_SIZE)))))
            w = max(3, int(round(h * _crop(images8[digit]).shape[1] / 8)))
            for _attempt in range(40):
                x = int(rng.integers(1, WIDTH - w - 1))
                y = int(rng.integers(1, HEIGHT - h - 1))
                if all(x + w + 3 <= px or px + pw + 3 <= x or y + h + 3 <= py or py + ph + 3 <= y
                       for px, py, pw, ph in placed):
                    placed.append((x, y, w, h))
                    break
            else:
                continue
            rows.append((i, digit, int(target[digit]), x, y, w, h))
    layout = pd.DataFrame(rows, columns=["item", "digit", "true", "x", "y", "w", "h"])
    layout["occluded"] = rng.random(len(layout)) < OCCLUDED_SHARE
    layout["occlusion_side"] = rng.integers(0, 4, len(layout))
    layout["occlusion_share"] = rng.uniform(0.15, 0.25, len(layout))
    return layout


def _paper(rng: np.random.Generator, site: str) -> np.ndarray:
    """A textured background: uneven paper, faint ruling (south), pen clutter (harbor)."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = rng.uniform(0.82, 0.94)
    blotch = gaussian_filter(rng.normal(0.0, 1.0, (HEIGHT, WIDTH)), 8.0, mode="wrap")
    paper = base + 0.5 * blotch + 0.03 * (xx / WIDTH - 0.5) * rng.normal()
    if site == "south":  # ruled form paper
        gap = int(rng.integers(14, 22))
        rule = (yy - int(rng.integers(0, gap))) % gap == 0
        paper = paper - 0.12 * rule
    ink = np.zeros((HEIGHT, WIDTH))
    n_strokes = {"north": 0, "south": 1, "harbor": 7}[site]
    for _ in range(int(rng.integers(0, n_strokes + 1)) + (2 if site == "harbor" else 0)):
        # a pen scribble: a curved line as thick as a digit's strokes
        t = np.linspace(0, 1, 120)
        x0, y0 = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        length = rng.uniform(15, 60)
        angle, bend = rng.uniform(0, 2 * np.pi), rng.uniform(-6.0, 6.0)
        a = angle + bend * t
        px = x0 + np.cumsum(np.cos(a)) * length / len(t)
        py = y0 + np.cumsum(np.sin(a)) * length / len(t)
        ok = (px >= 0) & (px < WIDTH - 1) & (py >= 0) & (py < HEIGHT - 1)
        layer = np.zeros((HEIGHT, WIDTH))
        layer[py[ok].astype(int), px[ok].astype(int)] = 1.0
        layer = gaussian_filter(layer, rng.uniform(0.6, 1.4))
        ink = np.maximum(ink, np.minimum(layer / max(layer.max(), 1e-9) * 1.6, 1.0)
                         * rng.uniform(0.5, 0.85))
    return paper * (1.0 - ink)


def _render(items: pd.DataFrame, layout: pd.DataFrame, images8: np.ndarray,
            seed: int) -> np.ndarray:
    """Every scene as uint8 (n, HEIGHT, WIDTH): paper, digits, occluders, camera, light."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rng = _rng(seed, "det-render")
    out = np.empty((len(items), HEIGHT, WIDTH), dtype=np.uint8)
    by_item = layout.groupby("item").indices
    for i, (site, camera, tod) in enumerate(
        zip(items["site"], items["camera"], items["time_of_day"], strict=True)
    ):
        img = _paper(rng, site)
        for r in layout.iloc[by_item.get(i, [])].itertuples():
            glyph = _crop(images8[r.digit]).astype(np.float32) / 16.0
            glyph = np.asarray(Image.fromarray(glyph, mode="F").resize(
                (r.w, r.h), Image.Resampling.BILINEAR))
            darkness = rng.uniform(0.75, 0.95)
            patch = img[r.y : r.y + r.h, r.x : r.x + r.w]
            patch *= 1.0 - darkness * np.clip(glyph, 0.0, 1.0)
            if r.occluded:  # a paper label stuck over one side of the digit
                cover = max(2, int(round(r.occlusion_share * (r.h if r.occlusion_side < 2
                                                              else r.w))))
                tone = rng.uniform(0.90, 0.97)
                if r.occlusion_side == 0:
                    patch[:cover, :] = tone
                elif r.occlusion_side == 1:
                    patch[-cover:, :] = tone
                elif r.occlusion_side == 2:
                    patch[:, :cover] = tone
                else:
                    patch[:, -cover:] = tone
        if camera == WEAK_CAMERA:
            img = gaussian_filter(img, _WEAK_BLUR, mode="nearest")
            img = img + rng.normal(0.0, _WEAK_NOISE, img.shape)
        elif camera == "cam-c":
            img = 0.96 * img + 0.02
        if tod == "night":
            img = _NIGHT_GAIN * img + rng.normal(0.0, _NIGHT_NOISE, img.shape)
        img = img + rng.normal(0.0, _GRAIN, img.shape)
        out[i] = np.rint(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- boxes


def _truth_frame(items: pd.DataFrame, layout: pd.DataFrame) -> pd.DataFrame:
    item_ids = items["item_id"].to_numpy()[layout["item"].to_numpy()]
    k = layout.groupby("item").cumcount().to_numpy()
    return pd.DataFrame(
        {
            "true_id": [f"{i}/t{j}" for i, j in zip(item_ids, k, strict=True)],
            "item_id": item_ids,
            "label": layout["true"].astype(str).to_numpy(),
            "x": layout["x"].to_numpy(),
            "y": layout["y"].to_numpy(),
            "w": layout["w"].to_numpy(),
            "h": layout["h"].to_numpy(),
            "occluded": layout["occluded"].to_numpy(),
        }
    )


def _iou_one(a, b) -> float:
    """IoU of two [x, y, w, h] boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _loosen(box, rng: np.random.Generator, low: float, high: float) -> list[int]:
    """An enlarged and shifted copy of ``box`` inside the image with IoU in [low, high]."""
    x, y, w, h = box
    for _ in range(200):
        grow = rng.uniform(0.15, 0.8, 4) * np.array([w, h, w, h])
        shift = rng.uniform(-0.25, 0.25, 2) * np.array([w, h])
        x0 = int(round(max(0, x - grow[0] + shift[0])))
        y0 = int(round(max(0, y - grow[1] + shift[1])))
        x1 = int(round(min(WIDTH, x + w + grow[2] + shift[0])))
        y1 = int(round(min(HEIGHT, y + h + grow[3] + shift[1])))
        cand = [x0, y0, x1 - x0, y1 - y0]
        if cand[2] > 0 and cand[3] > 0 and low <= _iou_one(cand, box) <= high:
            return cand
    raise RuntimeError("could not loosen a box")  # pragma: no cover (never seen)


def _dataset_boxes(truth: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset's boxes: the truth with planted faults; the truth gains its fault column."""
    rng = _rng(seed, "det-faults")
    n = len(truth)
    fault = np.full(n, "", dtype=object)
    order = rng.permutation(n)
    start = 0
    for name, rate in FAULT_RATES.items():
        m = round(rate * n)
        fault[order[start : start + m]] = name
        start += m
    labels = truth["label"].to_numpy().astype(int)
    given = labels.copy()
    wrong = fault == "wrong_class"
    given[wrong] = _slip(labels[wrong], rng)
    boxes = truth[["x", "y", "w", "h"]].to_numpy().tolist()
    for j in np.flatnonzero(fault == "loose"):
        boxes[j] = _loosen(boxes[j], rng, 0.40, 0.70)
    keep = fault != "missed"
    xywh = np.asarray(boxes)[keep]
    data = pd.DataFrame(
        {
            "item_id": truth["item_id"].to_numpy()[keep],
            "label": given[keep].astype(str),
            "x": xywh[:, 0],
            "y": xywh[:, 1],
            "w": xywh[:, 2],
            "h": xywh[:, 3],
        }
    )
    k = data.groupby("item_id", sort=False).cumcount().to_numpy()
    data["box_id"] = [f"{i}/b{j}" for i, j in zip(data["item_id"], k, strict=True)]
    data["iscrowd"] = False
    data["occluded"] = truth["occluded"].to_numpy()[keep]
    truth = truth.copy()
    box_id = np.full(n, "", dtype=object)
    box_id[keep] = data["box_id"].to_numpy()
    truth.insert(1, "box_id", box_id)
    truth["fault"] = fault
    return data, truth


def _annotations(items: pd.DataFrame, truth: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every annotator draws every image, each with their own kind of mistake."""
    rng = _rng(seed, "det-annotations")
    labels = truth["label"].to_numpy().astype(int)
    xywh = truth[["x", "y", "w", "h"]].to_numpy().astype(float)
    dates = dict(zip(items["item_id"], items["capture_date"], strict=True))
    frames = []
    for offset, annotator in enumerate(["ana", "ben", "dev"]):
        n = len(truth)
        keep = rng.random(n) >= 0.01  # everyone misses the odd box
        if annotator == "ana":  # misses small objects
            keep &= ~((xywh[:, 3] < 20) & (rng.random(n) < 0.45))
        box = xywh + rng.integers(-1, 2, size=(n, 4))  # a pixel of hand jitter
        box[:, 2:] = np.maximum(box[:, 2:], 2)
        if annotator == "ben":  # loose boxes: every side pushed out by 3-20% of the size
            pad = rng.uniform(0.03, 0.20, size=(n, 4)) * xywh[:, [2, 3, 2, 3]]
            box[:, 0] -= pad[:, 0]
            box[:, 1] -= pad[:, 1]
            box[:, 2] += pad[:, 0] + pad[:, 2]
            box[:, 3] += pad[:, 1] + pad[:, 3]
            box = np.rint(box)
        x0 = np.clip(box[:, 0], 0, WIDTH - 1)
        y0 = np.clip(box[:, 1], 0, HEIGHT - 1)
        x1 = np.clip(box[:, 0] + box[:, 2], x0 + 1, WIDTH)
        y1 = np.clip(box[:, 1] + box[:, 3], y0 + 1, HEIGHT)
        given = labels.copy()
        if annotator == "dev":  # swaps the confusable pairs
            swap = np.isin(labels, list(_SWAPS)) & (rng.random(n) < 0.30)
            given[swap] = [_SWAPS[v] for v in labels[swap]]
        slip = rng.random(n) < 0.01
        given[slip] = _slip(labels[slip], rng)
        days = rng.integers(1, 6, n)
        seconds = rng.integers(8 * 3600, 18 * 3600, n)
        when = [
            (dt.datetime.fromisoformat(dates[i]) + dt.timedelta(days=int(d), seconds=int(s)))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            for i, d, s in zip(truth["item_id"], days, seconds, strict=True)
        ]
        frame = pd.DataFrame(
            {
                "item_id": truth["item_id"].to_numpy(),
                "annotator": annotator,
                "label": given.astype(str),
                "x": x0.astype(int),
                "y": y0.astype(int),
                "w": (x1 - x0).astype(int),
                "h": (y1 - y0).astype(int),
                "annotated_at": when,
                "true_id": truth["true_id"].to_numpy(),
                "_order": np.arange(n) * 3 + offset,
            }
        )
        frames.append(frame[keep])
    out = pd.concat(frames).sort_values("_order", kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- the detector


#: The sliding windows: square windows of these sides (pixels), each resampled to a
#: PATCH x PATCH patch, every STRIDE patch pixels (a sixth of the window).
SCALES = (12.0, 14.4, 17.3, 20.7, 24.9, 29.9, 35.8, 43.0, 51.6)
PATCH, STRIDE = 12, 2
_BINS, _CELL = 6, 4  # gradient histograms: 6 orientations in 4x4-pixel cells (3x3 per patch)
_POSITIVE, _HARD = 0.65, 0.45  # window IoU: positive at or above, hard negative below
_NMS_IOU, _MAX_DETECTIONS, _MIN_SCORE = 0.3, 12, 0.1
_BACKGROUND = 10  # class index of "no digit"


def _windows(image: np.ndarray):
    """Every sliding window of a scene: features, box [x, y, side, side], scale, row, col.

    Features: the patch's pixels standardised (144), its contrast (1), and histograms of
    gradient orientation (54).
    """
    from PIL import Image

    img = Image.fromarray(1.0 - image.astype(np.float32) / 255.0, mode="F")
    feats, boxes, where = [], [], []
    for k, side in enumerate(SCALES):
        f = PATCH / side
        wr, hr = int(round(WIDTH * f)), int(round(HEIGHT * f))
        small = np.asarray(img.resize((wr, hr), Image.Resampling.BILINEAR), dtype=np.float32)
        win = np.lib.stride_tricks.sliding_window_view(small, (PATCH, PATCH))[::STRIDE, ::STRIDE]
        ny, nx = win.shape[:2]
        patches = win.reshape(ny * nx, PATCH * PATCH)
        mean = patches.mean(axis=1, keepdims=True)
        std = patches.std(axis=1, keepdims=True)
        feats.append(np.hstack([(patches - mean) / (std + 0.05), std, _hog(small, ny, nx)]))
        row, col = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        sx, sy = WIDTH / wr, HEIGHT / hr
        boxes.append(np.column_stack([col.ravel() * STRIDE * sx, row.ravel() * STRIDE * sy,
                                      np.full(ny * nx, PATCH * sx),
                                      np.full(ny * nx, PATCH * sy)]))
        where.append(np.column_stack([np.full(ny * nx, k), row.ravel(), col.ravel()]))
    return np.vstack(feats), np.vstack(boxes), np.vstack(where)


def _hog(small: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """Histograms of gradient orientation in the 3x3 cells of each window, L2-normalised."""
    gy, gx = np.gradient(small)
    mag = np.hypot(gx, gy)
    b = np.minimum((np.mod(np.arctan2(gy, gx), np.pi) * (_BINS / np.pi)).astype(np.intp),
                   _BINS - 1)
    onehot = np.zeros(small.shape + (_BINS,), dtype=np.float32)
    np.put_along_axis(onehot, b[..., None], mag[..., None], axis=2)
    c = np.pad(onehot.cumsum(0).cumsum(1), ((1, 0), (1, 0), (0, 0)))
    cells = c[_CELL:, _CELL:] - c[:-_CELL, _CELL:] - c[_CELL:, :-_CELL] + c[:-_CELL, :-_CELL]
    n = PATCH // _CELL
    oy = np.arange(ny)[:, None, None, None] * STRIDE + np.arange(n)[None, None, :, None] * _CELL
    ox = np.arange(nx)[None, :, None, None] * STRIDE + np.arange(n)[None, None, None, :] * _CELL
    hog = cells[oy, ox].reshape(ny * nx, -1)
    return hog / (np.linalg.norm(hog, axis=1, keepdims=True) + 0.1)


def _square(boxes: np.ndarray) -> np.ndarray:
    """The square of side h centred on each [x, y, w, h] box (what a window should cover)."""
    cx = boxes[:, 0] + boxes[:, 2] / 2
    cy = boxes[:, 1] + boxes[:, 3] / 2
    s = boxes[:, 3]
    return np.column_stack([cx - s / 2, cy - s / 2, s, s])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of [x, y, w, h] boxes: (len(a), len(b))."""
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1) - np.maximum(a[:, 0, None], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1) - np.maximum(a[:, 1, None], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    return inter / np.maximum(union, 1e-12)


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, limit: int) -> np.ndarray:
    """Greedy non-maximum suppression (class-agnostic): indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        order = rest[_iou(boxes[i : i + 1], boxes[rest])[0] < threshold]
    return np.asarray(keep, dtype=np.int64)


class _Spec:
    """One detector configuration: which windows it looks at, its classifier, box regression.

    Parameters
    ----------
    name : str
        The run name.
    scales : tuple of int
        Indices into ``SCALES`` of the window sizes it scans.
    step : int
        1 = every window position, 2 = every other one (a coarser stride).
    regress : bool
        Whether boxes are refined by a linear regression on the window's features (else
        each class has one box shape, the mean of its training boxes).
    make_model : callable
        Returns an unfitted scikit-learn classifier with ``predict_proba``.
    """

    def __init__(self, name, scales, step, regress, make_model):
        self.name, self.scales, self.step = name, tuple(scales), step
        self.regress, self.make_model = regress, make_model

    def mask(self, where: np.ndarray) -> np.ndarray:
        """Which of the windows (rows of ``where``: scale, row, col) this detector scans."""
        return (np.isin(where[:, 0], self.scales) & (where[:, 1] % self.step == 0)
                & (where[:, 2] % self.step == 0))


def _specs(seed: int) -> list[_Spec]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        _Spec("baseline", (0, 2, 4, 6, 8), 2, False, lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=300))),
        _Spec("candidate", tuple(range(len(SCALES))), 1, True, lambda: make_pipeline(
            StandardScaler(), MLPClassifier((EMBEDDING_DIM,), alpha=1e-3, max_iter=80,
                                            random_state=seed))),
    ]


def _training_rows(feats, wins, gt: np.ndarray, labels: np.ndarray, rng):
    """Training windows of one scene: positives and sampled negatives (background).

    Positives get the class of the box they cover and where the box lies in the window
    (dx, dy, log w, log h: the box regression's target).
    """
    if len(gt):
        overlap = _iou(wins, _square(gt))
        best, arg = overlap.max(axis=1), overlap.argmax(axis=1)
    else:
        best, arg = np.zeros(len(wins)), np.zeros(len(wins), dtype=np.intp)
    pos = np.flatnonzero(best >= _POSITIVE)
    g, wv = gt[arg[pos]], wins[pos]
    shift = np.column_stack([
        (g[:, 0] + g[:, 2] / 2 - wv[:, 0] - wv[:, 2] / 2) / wv[:, 2],
        (g[:, 1] + g[:, 3] / 2 - wv[:, 1] - wv[:, 3] / 2) / wv[:, 3],
        np.log(g[:, 2] / wv[:, 2]), np.log(g[:, 3] / wv[:, 3])])
    hard = np.flatnonzero((best >= 0.1) & (best < _HARD))
    easy = np.flatnonzero(best < 0.1)
    neg = np.concatenate([rng.choice(hard, min(len(hard), 15), replace=False),
                          rng.choice(easy, min(len(easy), 30), replace=False)])
    X = np.vstack([feats[pos], feats[neg]])
    y = np.concatenate([labels[arg[pos]], np.full(len(neg), _BACKGROUND)])
    return X, y, np.vstack([shift, np.full((len(neg), 4), np.nan)])


class _Detector:
    """A fitted sliding-window detector: window classifier, box regression, NMS."""

    def __init__(self, spec: _Spec):
        self.spec = spec

    def fit(self, X, y, shift):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = self.spec.make_model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(X, y)
        pos = y != _BACKGROUND
        if self.spec.regress:
            self.regressor = make_pipeline(StandardScaler(), Ridge(alpha=30.0))
            self.regressor.fit(X[pos], shift[pos])
        else:  # one box shape per class: the mean over its training windows
            self.shape = np.array([shift[y == c].mean(axis=0) for c in range(10)])
        return self

    def hidden(self, feats: np.ndarray) -> np.ndarray | None:
        """The window classifier's hidden-layer activations (ReLU) of each window.

        None when the classifier has no hidden layer (the logistic-regression baseline).
        """
        mlp = self.model[-1]
        if not hasattr(mlp, "coefs_"):
            return None
        Z = self.model[:-1].transform(feats)
        return np.maximum(Z @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)

    def detect(self, feats: np.ndarray, wins: np.ndarray):
        """Boxes [x, y, w, h] and the 11 probabilities of each detection kept by NMS."""
        probs = self.model.predict_proba(feats)
        cand = np.flatnonzero(probs[:, :10].max(axis=1) >= _MIN_SCORE)
        probs, wins = probs[cand], wins[cand]
        if self.spec.regress:
            t = self.regressor.predict(feats[cand]) if len(cand) else np.zeros((0, 4))
        else:
            t = self.shape[probs[:, :10].argmax(axis=1)]
        w, h = np.exp(t[:, 2]) * wins[:, 2], np.exp(t[:, 3]) * wins[:, 3]
        cx = wins[:, 0] + wins[:, 2] * (0.5 + t[:, 0])
        cy = wins[:, 1] + wins[:, 3] * (0.5 + t[:, 1])
        x0, y0 = np.clip(cx - w / 2, 0, WIDTH), np.clip(cy - h / 2, 0, HEIGHT)
        x1, y1 = np.clip(cx + w / 2, 0, WIDTH), np.clip(cy + h / 2, 0, HEIGHT)
        boxes = np.column_stack([x0, y0, x1 - x0, y1 - y0])
        keep = _nms(boxes, probs[:, :10].max(axis=1), _NMS_IOU, _MAX_DETECTIONS)
        return boxes[keep], probs[keep]


def _detections(items: pd.DataFrame, images: np.ndarray, boxes: pd.DataFrame, seed: int):
    """Out-of-fold detections of every run and the scenes' embeddings.

    Returns ``({run: (frame of item/fold/box, probabilities)}, embeddings)``. Two passes
    over the scenes: the first collects each detector's training windows (from the
    dataset's boxes, faults included), the second scans each scene with the models of the
    folds that did not train on it. In the second pass, each scene's embedding is the
    :data:`EMBEDDING_RUN` network's hidden layer max-pooled over every window that network
    scans (global max pooling, as a convolutional detector's backbone is pooled into one
    vector per image): ``(n_images, EMBEDDING_DIM)``.
    """
    specs = _specs(seed)
    folds = items["fold"].to_numpy()
    item_pos = pd.Series(np.arange(len(items)), index=items["item_id"])
    box_item = item_pos.loc[boxes["item_id"]].to_numpy()
    rows_of = pd.Series(np.arange(len(boxes))).groupby(box_item).indices
    xywh = boxes[["x", "y", "w", "h"]].to_numpy(float)
    labels = boxes["label"].to_numpy().astype(int)
    rngs = [_rng(seed, f"det-train-{spec.name}") for spec in specs]
    rows: list[list] = [[] for _ in specs]
    for i in range(len(items)):
        feats, wins, where = _windows(images[i])
        r = rows_of.get(i, np.zeros(0, dtype=np.intp))
        for spec, rng, out in zip(specs, rngs, rows, strict=True):
            m = spec.mask(where)
            X, y, shift = _training_rows(feats[m], wins[m], xywh[r], labels[r], rng)
            out.append((np.full(len(y), folds[i]), X, y, shift))
    detectors = []
    for spec, out in zip(specs, rows, strict=True):
        fold = np.concatenate([o[0] for o in out])
        X = np.vstack([o[1] for o in out])
        y = np.concatenate([o[2] for o in out])
        shift = np.vstack([o[3] for o in out])
        detectors.append([_Detector(spec).fit(X[fold != k], y[fold != k], shift[fold != k])
                          for k in range(N_FOLDS)])
    found: list[list] = [[] for _ in specs]
    embeddings = np.zeros((len(items), EMBEDDING_DIM))
    for i in range(len(items)):
        feats, wins, where = _windows(images[i])
        for spec, fitted, out in zip(specs, detectors, found, strict=True):
            m = spec.mask(where)
            b, p = fitted[folds[i]].detect(feats[m], wins[m])
            out.append((np.full(len(b), i), b, p))
            if spec.name == EMBEDDING_RUN:
                embeddings[i] = fitted[folds[i]].hidden(feats[m]).max(axis=0)
    result = {}
    for spec, out in zip(specs, found, strict=True):
        item = np.concatenate([o[0] for o in out])
        b = np.vstack([o[1] for o in out])
        frame = pd.DataFrame({"item": item, "fold": folds[item],
                              "x": b[:, 0], "y": b[:, 1], "w": b[:, 2], "h": b[:, 3]})
        result[spec.name] = (frame, np.vstack([o[2] for o in out]))
    return result, embeddings


def _greedy_match(det: pd.DataFrame, ref: pd.DataFrame, iou: float = 0.5,
                  score: str = "confidence") -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching of detections to reference boxes of their class.

    By image, detections by decreasing score each take the unmatched reference box of their
    class with the highest IoU >= ``iou``. Returns whether each detection is a true
    positive and whether each reference box was found. (Only for the calibration of the
    raw scores during the build; every number in the README comes from
    :func:`workbench.detection.match_detections` and
    :func:`workbench.detection.detection_metrics`.)
    """
    tp = np.zeros(len(det), dtype=bool)
    hit = np.zeros(len(ref), dtype=bool)
    ref_rows = ref.groupby("item_id", sort=False).indices
    ref_box = ref[["x", "y", "w", "h"]].to_numpy(float)
    ref_label = ref["label"].to_numpy()
    det_box = det[["x", "y", "w", "h"]].to_numpy(float)
    det_label = det["label"].to_numpy()
    det_score = det[score].to_numpy()
    for item, rows in det.groupby("item_id", sort=False).indices.items():
        r = ref_rows.get(item)
        if r is None:
            continue
        rows = rows[np.argsort(-det_score[rows], kind="stable")]
        overlap = _iou(det_box[rows], ref_box[r])
        overlap[det_label[rows][:, None] != ref_label[r][None, :]] = -1.0
        taken = np.zeros(len(r), dtype=bool)
        for j, row in enumerate(rows):
            cand = np.where(taken, -1.0, overlap[j])
            best = int(cand.argmax())
            if cand[best] >= iou:
                taken[best] = True
                tp[row] = True
        hit[r] = taken
    return tp, hit


def _calibrate(det: pd.DataFrame, ref: pd.DataFrame) -> np.ndarray:
    """Platt scaling cross-fitted over folds: raw scores to calibrated confidences.

    Each fold's raw scores are mapped to the probability of being a correct detection
    (IoU >= 0.5, right class, against the dataset's boxes) by a logistic fit on the other
    folds' detections.
    """
    from sklearn.linear_model import LogisticRegression

    tp, _ = _greedy_match(det, ref, 0.5, score="score")
    s = np.clip(det["score"].to_numpy(), 1e-6, 1 - 1e-6)
    logit = np.log(s / (1 - s))[:, None]
    folds = det["fold"].to_numpy()
    out = np.empty(len(det))
    for k in range(N_FOLDS):
        mine = folds == k
        platt = LogisticRegression(C=1e4).fit(logit[~mine], tp[~mine])
        out[mine] = platt.predict_proba(logit[mine])[:, 1]
    return out


def _predictions(items, images, boxes, seed) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The predictions and the embeddings of the scenes.

    predictions.csv: every run's detections with calibrated confidences and class probs;
    embeddings.parquet: the :data:`EMBEDDING_RUN` network's pooled hidden layer, rounded to 4
    decimals (see :func:`_detections`).
    """
    from threadpoolctl import threadpool_limits

    from ..embeddings import embedding_frame

    frames = []
    with threadpool_limits(limits=1):
        found, pooled = _detections(items, images, boxes, seed)
        for run, (det, probs) in found.items():
            digit = _round_probs(probs[:, :10] / probs[:, :10].sum(axis=1, keepdims=True))
            det["item_id"] = items["item_id"].to_numpy()[det["item"].to_numpy()]
            det["label"] = np.asarray(CLASSES)[digit.argmax(axis=1)]
            det["score"] = probs[:, :10].max(axis=1)
            conf = np.round(_calibrate(det, boxes), 6)
            frame = pd.DataFrame(
                {
                    "item_id": det["item_id"].to_numpy(),
                    "run": run,
                    "label": det["label"].to_numpy(),
                    "x": np.round(det["x"].to_numpy(), 2),
                    "y": np.round(det["y"].to_numpy(), 2),
                    "w": np.round(det["w"].to_numpy(), 2),
                    "h": np.round(det["h"].to_numpy(), 2),
                    "confidence": conf,
                }
            )
            for c, name in enumerate(CLASSES):
                frame[f"prob_{name}"] = digit[:, c]
            order = np.lexsort((-conf, det["item"].to_numpy()))
            frames.append(frame.iloc[order])
    embeddings = embedding_frame(items["item_id"].to_numpy(), np.round(pooled, 4))
    return pd.concat(frames, ignore_index=True), embeddings


# --------------------------------------------------------------------------- README


def _size(boxes: pd.DataFrame) -> np.ndarray:
    area = boxes["w"].to_numpy(float) * boxes["h"].to_numpy(float)
    return np.where(area < 32**2, "small", np.where(area < 96**2, "medium", "large"))


def _evaluate(items, boxes, predictions, by=None) -> pd.DataFrame:
    """The ``all`` rows of :func:`workbench.detection_metrics` (per slice of ``by``)."""
    from .io import RESERVED_CLASS
    from .metrics import detection_metrics

    frames = {"items": items[["item_id", "camera", "site", "time_of_day"]], "boxes": boxes,
              "predictions": predictions, "classes": CLASSES}
    out = detection_metrics(frames, by)
    out = out[out["class"] == RESERVED_CLASS]
    return out.set_index(by) if by else out


def _run_tables(items, boxes, predictions):
    """AP and recall per run, overall and per slice, against the dataset's boxes.

    Every number is :func:`workbench.detection_metrics` (COCO's AP, matching at IoU 0.5).
    """
    runs = list(dict.fromkeys(predictions["run"]))
    overall, by_camera, by_light, by_site = {}, {}, {}, {}
    n_img = items["site"].value_counts()
    for run in runs:
        det = predictions[predictions["run"] == run]
        sure = det[det["confidence"] >= 0.5]
        every = _evaluate(items, boxes, det).iloc[0]
        confident = _evaluate(items, boxes, sure).iloc[0]
        overall[run] = {"AP50": every["ap50"], "AP 50:95": every["ap"],
                        "recall": every["recall"],
                        "recall (conf >= 0.5)": confident["recall"],
                        "precision (conf >= 0.5)": confident["precision"]}
        camera = _evaluate(items, boxes, det, "camera")
        for cam in CAMERAS:
            by_camera.setdefault(f"{run}: AP50", {})[cam] = camera.loc[cam, "ap50"]
            by_camera.setdefault(f"{run}: recall", {})[cam] = camera.loc[cam, "recall"]
        light = _evaluate(items, boxes, det, "time_of_day")
        for name in ["day", "night"]:
            by_light.setdefault(f"{run}: recall", {})[name] = light.loc[name, "recall"]
        site = _evaluate(items, boxes, sure, "site")
        false = site["n_predictions"] - site["n_tp"]
        for name in SITES:
            by_site.setdefault(f"{run}: false detections per image (conf >= 0.5)", {})[
                name] = f"{false.get(name, 0) / max(int(n_img.get(name, 0)), 1):.2f}"
        occluded = _evaluate(items, boxes, det, "occluded")
        by_light.setdefault(f"{run}: recall", {})["occluded"] = occluded.loc[True, "recall"]
        by_light.setdefault(f"{run}: recall", {})["not occluded"] = occluded.loc[False,
                                                                                 "recall"]

    def frame(d, name):
        out = pd.DataFrame(d).T
        out.index.name = name
        return out

    return (frame(overall, "run"), frame(by_camera, "run (per camera)"),
            frame(by_light, "run (per box)"), frame(by_site, "run (per site)"))


def _calibration_table(predictions, boxes):
    """Share of correct detections per confidence band (:func:`match_detections`, IoU 0.5)."""
    from .matching import match_detections

    rows = {}
    edges = [0.0, 0.25, 0.5, 0.75, 1.0001]
    for run in dict.fromkeys(predictions["run"]):
        det = predictions[predictions["run"] == run]
        m = match_detections({"boxes": boxes, "predictions": det, "classes": CLASSES}, run)
        m = m[m["pred_id"].notna()]
        tp = (m["outcome"] == "tp").to_numpy()
        conf = m["confidence"].to_numpy()
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            k = (conf >= lo) & (conf < hi)
            key = f"[{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}"
            rows[(run, key)] = {"detections": f"{int(k.sum()):,}",
                                "mean confidence": conf[k].mean() if k.any() else np.nan,
                                "correct": tp[k].mean() if k.any() else np.nan}
    out = pd.DataFrame(rows).T
    out.index = [f"{run} {key}" for run, key in out.index]
    out.index.name = "run, confidence"
    return out


def _annotator_table(annotations, truth):
    """Each annotator against the truth: recall (IoU >= 0.5), mean IoU, right class."""
    true = truth.set_index("true_id")
    rows = {}
    small = _size(truth) == "small"
    for name in ["ana", "ben", "dev"]:
        a = annotations[annotations["annotator"] == name]
        t = true.loc[a["true_id"]]
        iou = np.array([_iou_one(p, q) for p, q in zip(
            a[["x", "y", "w", "h"]].to_numpy(float), t[["x", "y", "w", "h"]].to_numpy(float),
            strict=True)])
        drawn = truth["true_id"].isin(a["true_id"]).to_numpy()
        rows[name] = {
            "vendor": next(v for v, names in VENDORS.items() if name in names),
            "boxes": f"{len(a):,}",
            "drawn (small)": drawn[small].mean(),
            "drawn (other)": drawn[~small].mean(),
            "mean IoU": f"{iou.mean():.2f}",
            "IoU < 0.7": (iou < 0.7).mean(),
            "right class": (a["label"].to_numpy() == t["label"].to_numpy()).mean(),
            "profile": PROFILES[name],
        }
    out = pd.DataFrame(rows).T
    out.index.name = "annotator"
    return out


def _readme(items, truth, boxes, annotations, predictions, seed, n_images) -> str:
    """``README.md`` of a built sample, with the measured effects of what was planted."""
    from string import Template

    faults = truth["fault"].replace("", "none").value_counts()
    fault_table = pd.DataFrame({
        "true boxes": [f"{int(faults.get(k, 0)):,}" for k in FAULT_RATES],
        "share": [faults.get(k, 0) / len(truth) for k in FAULT_RATES]},
        index=list(FAULT_RATES))
    fault_table.index.name = "fault"
    overall, by_camera, by_box, by_site = _run_tables(items, boxes, predictions)
    counts = boxes.groupby("item_id").size().reindex(items["item_id"], fill_value=0)
    per_image = counts.value_counts().sort_index().to_frame("images")
    per_image.index.name = "boxes per image"
    per_image["images"] = per_image["images"].map("{:,}".format)
    sizes = pd.Series(_size(truth)).value_counts().reindex(["small", "medium"], fill_value=0)
    n_runs = predictions.groupby("run", sort=False).size()
    template = Template(Path(__file__).with_name("_sample_readme.md").read_text("utf-8"))
    return template.substitute(
        seed=seed,
        n_images=f"{len(items):,}",
        n_negative=f"{int((counts == 0).sum()):,}",
        n_true=f"{len(truth):,}",
        n_boxes=f"{len(boxes):,}",
        n_small=f"{int(sizes['small']):,}",
        n_medium=f"{int(sizes['medium']):,}",
        n_annotations=f"{len(annotations):,}",
        n_faults=f"{int((truth['fault'] != '').sum()):,}",
        fault_share=percent((truth["fault"] != "").mean()),
        n_occluded=f"{int(truth['occluded'].sum()):,}",
        n_predictions=", ".join(f"{n:,} for `{r}`" for r, n in n_runs.items()),
        weak=WEAK_CAMERA,
        cluttered=CLUTTERED_SITE,
        size_note="" if n_images == N_IMAGES else f" (a reduced build: {n_images} scenes)",
        fault_table=_table(fault_table),
        per_image_table=_table(per_image),
        camera_counts=_table(items["camera"].value_counts().sort_index().to_frame("images")),
        site_counts=_table(items["site"].value_counts().sort_index().to_frame("images")),
        light_counts=_table(items["time_of_day"].value_counts().sort_index()
                            .to_frame("images")),
        week_counts=_table(items["capture_week"].value_counts().sort_index()
                           .to_frame("images")),
        run_table=_table(overall),
        camera_table=_table(by_camera),
        box_table=_table(by_box),
        site_table=_table(by_site),
        calibration_table=_table(_calibration_table(predictions, boxes)),
        annotator_table=_table(_annotator_table(annotations, truth)),
    )


_TOML = """\
# The workbench detection sample, generated by `workbench sample --task detection`
# (workbench.detection.sample.build_detection_sample). See README.md.
name = "digits-detection-sample"
task = "detection"
classes = [{classes}]
default_run = "candidate"
"""


def build_detection_sample(directory, *, seed=0, n_images=N_IMAGES) -> Path:
    """Write the detection sample project (digits placed in scenes, planted problems).

    The build is deterministic: the same ``seed`` and ``n_images`` give byte-identical
    files (tables and images) with the same versions of numpy and scikit-learn. The full
    build (800 scenes) takes about a minute on one core (two passes of a sliding-window
    detector over every scene). It writes ``workbench.toml``, ``items.csv``,
    ``boxes.csv``, ``annotations.csv``, ``predictions.csv``, ``truth_boxes.csv``,
    ``embeddings.parquet`` (the ``candidate`` detector's own 64-dimensional representation
    of each scene), ``README.md`` and ``images/scene-NNNN.png``. Existing files of those
    names are replaced.

    Parameters
    ----------
    directory : str or path-like
        Folder to write to; created if missing.
    seed : int, default=0
        Seed of every random choice (scenes, faults, annotators, noise, detector training).
        The committed ``data/sample-detection`` uses ``seed=0``.
    n_images : int, default=800
        Number of scenes (at least 30; the committed sample has 800). Smaller builds are
        for quick tests: the planted effects are the same but measured on fewer boxes.

    Returns
    -------
    pathlib.Path
        The project folder.

    See Also
    --------
    workbench.sample.build_sample : The classification sample.

    Examples
    --------
    >>> from workbench.detection.sample import build_detection_sample
    >>> root = build_detection_sample("my-detection-sample")  # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())  # doctest: +SKIP
    ['README.md', 'annotations.csv', 'boxes.csv', 'embeddings.parquet', 'images', 'items.csv',
     'predictions.csv', 'truth_boxes.csv', 'workbench.toml']
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    func = "build_detection_sample"
    seed = check_int(seed, "seed", func, minimum=0)
    n_images = check_int(n_images, "n_images", func, minimum=30)
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(
            f"The 'directory' parameter of {func} must be a str or path-like. "
            f"Got {directory!r} instead."
        )
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)

    digits = load_digits()
    items = _items(n_images, seed)
    layout = _layout(items, digits.images, digits.target, seed)
    images = _render(items, layout, digits.images, seed)
    boxes, truth = _dataset_boxes(_truth_frame(items, layout), seed)
    annotations = _annotations(items, truth, seed)
    predictions, embeddings = _predictions(items, images, boxes, seed)

    for item_id, pixels in zip(items["item_id"], images, strict=True):
        Image.fromarray(pixels).save(root / "images" / f"{item_id}.png", format="PNG",
                                     optimize=True)
    csv = {"index": False, "lineterminator": "\n"}
    items.drop(columns=["fold", "capture_date"]).to_csv(root / "items.csv", **csv)
    boxes.to_csv(root / "boxes.csv", **csv)
    annotations.drop(columns="true_id").to_csv(root / "annotations.csv", **csv)
    predictions.to_csv(root / "predictions.csv", **csv)
    truth.to_csv(root / "truth_boxes.csv", **csv)
    embeddings.to_parquet(root / "embeddings.parquet", index=False)
    classes = ", ".join(f'"{c}"' for c in CLASSES)
    (root / "workbench.toml").write_text(_TOML.format(classes=classes), encoding="utf-8")
    readme = _readme(items, truth, boxes, annotations, predictions, seed, n_images)
    (root / "README.md").write_text(readme, encoding="utf-8")
    return root
