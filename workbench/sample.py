"""The sample project: scikit-learn's handwritten digits with planted, documented problems.

:func:`build_sample` turns the 1,797 real 8x8 images of :func:`sklearn.datasets.load_digits`
into a small but realistic label-curation project (the one committed in ``data/sample/``):

- 64x64 grayscale PNGs under ``images/``;
- item metadata with real effects: three ``scanner`` s, one of which (``scanner-b``) really
  degrades its images (blur, noise, low contrast) before the models see them; two labeling
  ``vendor`` s (``quicklabel`` is worse than ``northstar``); six weekly ``batch`` es with a
  ``batch_date``; a ``split``;
- three labels per item from six annotators with their own confusions (``cho`` mixes 1 and
  7, ``dev`` mixes 4 and 9, ``eli`` is careless, the others are accurate), with
  ``annotated_at`` timestamps; ``quicklabel``'s labels on batch ``2026-W04`` are noisier;
- the dataset's current ``label`` with 3% planted label errors (the true digit is in
  ``truth.csv``, which only tests and documentation read);
- out-of-fold predictions of two real scikit-learn models trained on the noisy labels of the
  partly degraded images: run ``baseline`` (logistic regression) and run ``candidate``
  (calibrated RBF SVM), with per-class probabilities;
- ``embeddings.parquet``: the sample model's own embeddings, the 32-unit hidden layer of an
  MLP trained on the ``train`` split's noisy labels (see :mod:`workbench.embeddings`).

Everything is seeded and single-threaded, so rebuilding gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._format import percent
from ._validation import check_int

__all__ = ["build_sample", "load_sample", "SAMPLE_DIR", "DEGRADED_SCANNER"]

#: Where the committed sample lives in a source checkout (``<repo>/data/sample``).
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"

CLASSES = [str(k) for k in range(10)]
SCANNERS = ["scanner-a", "scanner-b", "scanner-c"]
SCANNER_SHARES = [0.40, 0.30, 0.30]
#: The scanner whose images are blurred, noisy and low-contrast (the planted weak slice).
DEGRADED_SCANNER = "scanner-b"
VENDORS = {"northstar": ["ana", "ben", "cho"], "quicklabel": ["dev", "eli", "fay"]}
N_BATCHES = 6
BATCH_YEAR = 2026
#: The (vendor, batch) whose labels are noisier (the planted interaction).
NOISY_VENDOR_BATCH = ("quicklabel", "2026-W04")
LABEL_ERROR_RATE = 0.03
IMAGE_SIZE = 64

# Digits that look alike: where annotators' random slips and planted label errors go.
_LOOKALIKE = {
    0: [6, 8, 9], 1: [7, 4], 2: [3, 7, 8], 3: [8, 5, 9], 4: [9, 1], 5: [6, 3, 9],
    6: [5, 0, 8], 7: [1, 2, 9], 8: [3, 0, 9], 9: [4, 7, 8],
}

# Each annotator: base slip rate and systematic confusions {true: (given, rate)}.
_ANNOTATORS = {
    "ana": {"slip": 0.010, "confuse": {}},
    "ben": {"slip": 0.015, "confuse": {}},
    "cho": {"slip": 0.015, "confuse": {1: (7, 0.30), 7: (1, 0.25)}},
    "dev": {"slip": 0.025, "confuse": {4: (9, 0.30), 9: (4, 0.25)}},
    "eli": {"slip": 0.150, "confuse": {}},
    "fay": {"slip": 0.030, "confuse": {}},
}
_NOISY_BATCH_EXTRA_SLIP = 0.15

# Degradation of DEGRADED_SCANNER, in 8x8-pixel units before upscaling.
_BLUR_SIGMA = 0.7
_NOISE_STD = 0.17
_CONTRAST = 0.75


def _rng(seed: int, stream: str) -> np.random.Generator:
    """One independent generator per purpose, so changing one part leaves the others alone."""
    return np.random.default_rng([seed, sum(ord(c) * 31**i for i, c in enumerate(stream)) % 2**32])


def _slip(true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong digit for each entry of ``true``: a look-alike, else any other digit."""
    out = np.empty_like(true)
    lookalike = rng.random(true.size) < 0.6
    pick = rng.random(true.size)
    other = (true + rng.integers(1, 10, true.size)) % 10
    for digit, similar in _LOOKALIKE.items():
        mask = true == digit
        idx = np.minimum((pick[mask] * len(similar)).astype(int), len(similar) - 1)
        out[mask] = np.where(lookalike[mask], np.asarray(similar)[idx], other[mask])
    return out


def _render_images(images8: np.ndarray, degraded: np.ndarray, seed: int) -> np.ndarray:
    """Upscale the 8x8 images (0..16, ink high) to dark-on-light uint8 ``IMAGE_SIZE`` squares."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    x = images8.astype(np.float64) / 16.0
    bad = x[degraded]
    bad = gaussian_filter(bad, sigma=(0, _BLUR_SIGMA, _BLUR_SIGMA), mode="constant")
    bad = bad / np.maximum(bad.max(axis=(1, 2), keepdims=True), 1e-9)
    bad = bad + _rng(seed, "scanner-noise").normal(0.0, _NOISE_STD, bad.shape)
    bad = (1 - _CONTRAST) / 2 + _CONTRAST * bad
    x[degraded] = bad
    small = np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)
    size = (IMAGE_SIZE, IMAGE_SIZE)
    out = np.empty((len(small), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i, img in enumerate(small):
        out[i] = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))
    return 255 - out


def _features(images: np.ndarray) -> np.ndarray:
    """What the models see: the saved pixels, ink-high, average-pooled to 16x16."""
    n = len(images)
    k = IMAGE_SIZE // 16
    pooled = images.reshape(n, 16, k, 16, k).mean(axis=(2, 4)).reshape(n, -1)
    return 1.0 - pooled / 255.0


def _items(n: int, seed: int) -> pd.DataFrame:
    rng = _rng(seed, "items")
    item_ids = [f"digit-{i:04d}" for i in range(n)]
    scanner = rng.choice(len(SCANNERS), size=n, p=SCANNER_SHARES)
    vendor = rng.integers(0, len(VENDORS), size=n)
    week = rng.integers(1, N_BATCHES + 1, size=n)
    split = rng.choice(3, size=n, p=[0.70, 0.15, 0.15])
    vendors = list(VENDORS)
    monday = {w: dt.date.fromisocalendar(BATCH_YEAR, w, 1).isoformat()
              for w in range(1, N_BATCHES + 1)}
    return pd.DataFrame(
        {
            "item_id": item_ids,
            "filepath": [f"images/{i}.png" for i in item_ids],
            "label": "",  # filled by the caller
            "scanner": np.asarray(SCANNERS)[scanner],
            "vendor": np.asarray(vendors)[vendor],
            "batch": [f"{BATCH_YEAR}-W{w:02d}" for w in week],
            "batch_date": [monday[int(w)] for w in week],
            "split": np.asarray(["train", "val", "test"])[split],
        }
    )


def _plant_label_errors(truth: np.ndarray, rng: np.random.Generator, slip,
                        rate: float = LABEL_ERROR_RATE) -> tuple[np.ndarray, np.ndarray]:
    """``truth`` (as an object array) with exactly ``rate`` of it replaced by ``slip``.

    Shared by the digits and the text sample. ``slip(true, rng)`` gives a plausible wrong
    class per entry of ``true``. Returns the labels and the planted-error mask.
    """
    n = len(truth)
    is_error = np.zeros(n, dtype=bool)
    is_error[rng.choice(n, size=round(rate * n), replace=False)] = True
    label = truth.astype(object)
    label[is_error] = slip(truth[is_error], rng)
    return label, is_error


def _labels(truth: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's current labels: the truth with exactly 3% planted (plausible) errors."""
    label, is_error = _plant_label_errors(truth, _rng(seed, "label-errors"), _slip)
    return label.astype(truth.dtype), is_error


def _simulate_annotations(items: pd.DataFrame, truth: np.ndarray, rng: np.random.Generator, *,
                          vendors: dict, annotators: dict, slip, noisy_vendor_batch: tuple,
                          noisy_extra_slip: float) -> pd.DataFrame:
    """Three labels per item: two by the item's vendor, one cross-check by the other vendor.

    Shared by the digits and the text sample.

    Parameters
    ----------
    items : DataFrame
        ``item_id``, ``vendor``, ``batch`` and ``batch_date`` per item.
    truth : ndarray
        True class per item.
    rng : numpy.random.Generator
    vendors : dict
        Vendor name -> its annotators (exactly two vendors).
    annotators : dict
        Annotator -> ``{"slip": rate, "confuse": {true: (given, rate)}}``.
    slip : callable
        ``slip(true, rng)``: a plausible wrong class per entry of ``true``.
    noisy_vendor_batch : tuple
        ``(vendor, batch)`` whose labels slip ``noisy_extra_slip`` more often.
    noisy_extra_slip : float

    Returns
    -------
    DataFrame
        ``item_id``, ``annotator``, ``label`` (text), ``annotated_at``: three rows per item.
    """
    n = len(items)
    names = list(vendors)
    own = items["vendor"].to_numpy()
    rows_item, rows_ann = [], []
    for i in range(n):
        mine = vendors[own[i]]
        other = vendors[names[1 - names.index(own[i])]]
        pair = rng.choice(len(mine), size=2, replace=False)
        check = rng.integers(len(other))
        for annotator in (mine[pair[0]], mine[pair[1]], other[check]):
            rows_item.append(i)
            rows_ann.append(annotator)
    idx = np.asarray(rows_item)
    annotator = np.asarray(rows_ann)
    true = truth[idx]

    # Who labels what, and how: each annotator's slips and systematic confusions.
    given = true.astype(object)
    slip_rate = np.array([annotators[a]["slip"] for a in annotator])
    noisy_vendor, noisy_batch = noisy_vendor_batch
    ann_vendor = np.array([next(v for v, anns in vendors.items() if a in anns) for a in annotator])
    noisy = (ann_vendor == noisy_vendor) & (items["batch"].to_numpy()[idx] == noisy_batch)
    slip_rate = slip_rate + noisy * noisy_extra_slip
    u = rng.random(len(idx))
    for name, spec in annotators.items():
        for cls, (wrong, rate) in spec["confuse"].items():
            hit = (annotator == name) & (true == cls) & (u < rate)
            given[hit] = wrong
    confused = given != true
    slipped = ~confused & (rng.random(len(idx)) < slip_rate)
    given[slipped] = slip(true[slipped], rng)

    # When: vendor labels on the batch's working days, the cross-check one to three days later.
    # (rows come in threes per item: two vendor labels, then the cross-check)
    start = pd.to_datetime(items["batch_date"].to_numpy()[idx]).to_numpy()
    own_days = rng.integers(0, 4, size=(n, 2))
    check_day = own_days.max(axis=1) + rng.integers(1, 4, size=n)
    day = np.column_stack([own_days, check_day]).ravel()
    second = rng.integers(8 * 3600, 18 * 3600, len(idx))
    when = start + (day * 86400 + second).astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "item_id": items["item_id"].to_numpy()[idx],
            "annotator": annotator,
            "label": given.astype(str),
            "annotated_at": pd.Series(when).dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(),
        }
    )


def _annotations(items: pd.DataFrame, truth: np.ndarray, seed: int) -> pd.DataFrame:
    """Three labels per item: two by the item's vendor, one cross-check by the other vendor."""
    return _simulate_annotations(
        items, truth, _rng(seed, "annotations"), vendors=VENDORS, annotators=_ANNOTATORS,
        slip=_slip, noisy_vendor_batch=NOISY_VENDOR_BATCH,
        noisy_extra_slip=_NOISY_BATCH_EXTRA_SLIP)


def _round_probs(probs: np.ndarray, decimals: int = 6) -> np.ndarray:
    """Round to ``decimals`` and put the residual on each row's argmax, so rows sum to 1."""
    out = np.round(probs, decimals)
    top = out.argmax(axis=1)
    rows = np.arange(len(out))
    out[rows, top] = np.round(out[rows, top] + (1.0 - out.sum(axis=1)), decimals)
    return out


def _run_frame(probs: np.ndarray, classes: list[str], run: str, item_ids) -> pd.DataFrame:
    """A run's ``predictions.csv`` rows; shared by the digits and the text sample.

    ``item_id``, ``run``, ``label`` (the argmax), ``confidence`` and ``prob_<class>``
    (``probs`` columns in ``classes`` order).
    """
    frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in classes])
    frame.insert(0, "confidence", probs.max(axis=1))
    frame.insert(0, "label", np.asarray(classes)[probs.argmax(axis=1)])
    frame.insert(0, "run", run)
    frame.insert(0, "item_id", item_ids)
    return frame


def _predictions(features: np.ndarray, labels: np.ndarray, item_ids, seed: int) -> pd.DataFrame:
    """Out-of-fold class probabilities of two real models trained on the given labels."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    models = {
        "baseline": make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=5000)),
        "candidate": make_pipeline(
            StandardScaler(), CalibratedClassifierCV(SVC(), ensemble=False)
        ),
    }
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    frames = []
    with threadpool_limits(limits=1):
        for run, model in models.items():
            probs = cross_val_predict(model, features, labels, cv=folds, method="predict_proba")
            probs = _round_probs(probs)
            frames.append(_run_frame(probs, CLASSES, run, item_ids))
    return pd.concat(frames, ignore_index=True)


#: Width of the sample's embeddings: the hidden layer of its MLP.
EMBEDDING_DIM = 32


def _embeddings(features: np.ndarray, labels: np.ndarray, train: np.ndarray, item_ids,
                seed: int) -> pd.DataFrame:
    """The sample's own model's embeddings: a small MLP's hidden layer, for every item.

    A one-hidden-layer :class:`~sklearn.neural_network.MLPClassifier` (``EMBEDDING_DIM``
    ReLU units) is trained on the ``train`` split's noisy labels, on the same features as
    the prediction runs; each item's embedding is its hidden-layer activation (what a team
    would take from the penultimate layer of its own network). Seeded and single-threaded.
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from .embeddings import embedding_frame

    with threadpool_limits(limits=1):
        scaler = StandardScaler().fit(features[train])
        Z = scaler.transform(features)
        mlp = MLPClassifier(hidden_layer_sizes=(EMBEDDING_DIM,), alpha=1e-3, max_iter=400,
                            random_state=seed)
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(Z[train], labels[train])
        hidden = np.maximum(Z @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)
    return embedding_frame(item_ids, np.round(hidden, 4))


def _table(frame: pd.DataFrame) -> str:
    """A small markdown table (shares as percentages); the index becomes the first column."""
    head = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, row in frame.iterrows():
        cells = [percent(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(key)] + cells) + " |")
    return "\n".join(lines)


def _annotator_tables(items, annotations, truth, vendors: dict, profiles: dict
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The README's measured annotator tables, shared by the digits and the text sample.

    Returns the accuracy per annotator (with its vendor and planted ``profiles``) and per
    labelling vendor and batch, against ``truth``'s ``true_label``.
    """
    ann = annotations.merge(truth[["item_id", "true_label"]], on="item_id").merge(
        items[["item_id", "batch"]], on="item_id")
    ann["correct"] = ann["label"] == ann["true_label"]
    who = {a: v for v, names in vendors.items() for a in names}
    per_ann = ann.groupby("annotator").agg(labels=("correct", "size"),
                                           accuracy=("correct", "mean"))
    per_ann.insert(0, "vendor", [who[a] for a in per_ann.index])
    per_ann["labels"] = per_ann["labels"].astype(int).astype(str)
    per_ann["profile"] = [profiles[a] for a in per_ann.index]
    ann["label_vendor"] = ann["annotator"].map(who)
    by_batch = ann.pivot_table(index="label_vendor", columns="batch", values="correct",
                               aggfunc="mean")
    by_batch.index.name = "labels by (accuracy)"
    return per_ann, by_batch


def _readme(items, annotations, predictions, truth, seed: int) -> str:
    """``README.md`` of a built sample, with the measured effects of what was planted."""
    from string import Template

    merged = predictions.merge(items[["item_id", "label", "scanner"]], on="item_id",
                               suffixes=("_pred", ""))
    merged["error"] = merged["label_pred"] != merged["label"]
    by_scanner = merged.pivot_table(index="run", columns="scanner", values="error",
                                    aggfunc="mean")
    by_scanner["all"] = merged.groupby("run")["error"].mean()
    by_scanner.index.name = "run (error rate)"
    per_ann, by_batch = _annotator_tables(items, annotations, truth, VENDORS, _PROFILES)
    template = Template(Path(__file__).with_name("_sample_readme.md").read_text("utf-8"))
    return template.substitute(
        seed=seed,
        n_items=f"{len(items):,}",
        n_annotations=f"{len(annotations):,}",
        n_errors=int(truth["is_label_error"].sum()),
        error_share=percent(truth["is_label_error"].mean()),
        degraded=DEGRADED_SCANNER,
        noisy_vendor=NOISY_VENDOR_BATCH[0],
        noisy_batch=NOISY_VENDOR_BATCH[1],
        scanner_counts=_table(items["scanner"].value_counts().sort_index().to_frame("items")),
        vendor_counts=_table(items["vendor"].value_counts().sort_index().to_frame("items")),
        batch_counts=_table(items.groupby("batch").agg(batch_date=("batch_date", "first"),
                                                       items=("item_id", "size"))),
        split_counts=_table(items["split"].value_counts().sort_index().to_frame("items")),
        error_table=_table(by_scanner),
        annotator_table=_table(per_ann),
        batch_table=_table(by_batch),
    )


_PROFILES = {
    "ana": "accurate",
    "ben": "accurate",
    "cho": "mixes 1 and 7",
    "dev": "mixes 4 and 9",
    "eli": "careless (random slips)",
    "fay": "accurate",
}

_TOML = """\
# The workbench sample project, generated by `workbench sample` (workbench.sample.build_sample).
# See README.md for the schema, how it was made and the planted problems.
name = "digits-sample"
classes = [{classes}]
default_run = "candidate"
"""


def _write_tables(root: Path, classes: list[str], toml: str, **frames: pd.DataFrame) -> None:
    """Write a built sample's tables and ``workbench.toml``; shared with the text sample.

    ``frames``: ``items``, ``annotations``, ``predictions``, ``truth`` (CSV with LF line
    ends, no index) and ``embeddings`` (Parquet); ``toml`` is formatted with ``classes``.
    """
    csv = {"index": False, "lineterminator": "\n"}
    for name in ("items", "annotations", "predictions", "truth"):
        frames[name].to_csv(root / f"{name}.csv", **csv)
    frames["embeddings"].to_parquet(root / "embeddings.parquet", index=False)
    quoted = ", ".join(f'"{c}"' for c in classes)
    (root / "workbench.toml").write_text(toml.format(classes=quoted), encoding="utf-8")


def build_sample(directory, *, seed=0) -> Path:
    """Write the sample project (scikit-learn digits with planted problems) to ``directory``.

    The build is deterministic: the same ``seed`` gives byte-identical files (tables and
    images). It takes a few seconds and writes ``workbench.toml``, ``items.csv``,
    ``annotations.csv``, ``predictions.csv``, ``truth.csv``, ``embeddings.parquet``,
    ``README.md`` and ``images/digit-NNNN.png`` (1,797 images). Existing files of those
    names are replaced.

    Parameters
    ----------
    directory : str or path-like
        Folder to write to; created if missing.
    seed : int, default=0
        Seed of every random choice (metadata, annotators, label errors, noise, folds).
        The committed ``data/sample`` uses ``seed=0``.

    Returns
    -------
    pathlib.Path
        The project folder, ready for :func:`workbench.open_project`.

    See Also
    --------
    load_sample : Open the committed sample.

    Examples
    --------
    >>> import workbench as wb
    >>> root = wb.build_sample("my-sample")  # doctest: +SKIP
    >>> wb.open_project(root).items.shape  # doctest: +SKIP
    (1797, 8)
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    seed = check_int(seed, "seed", "build_sample", minimum=0)
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(
            "The 'directory' parameter of build_sample must be a str or path-like. "
            f"Got {directory!r} instead."
        )
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)

    digits = load_digits()
    truth = digits.target.astype(np.int64)
    n = len(truth)

    items = _items(n, seed)
    label, is_error = _labels(truth, seed)
    items["label"] = label.astype(str)
    degraded = items["scanner"].to_numpy() == DEGRADED_SCANNER
    images = _render_images(digits.images, degraded, seed)
    annotations = _annotations(items, truth, seed)
    features = _features(images)
    predictions = _predictions(features, label, items["item_id"].to_numpy(), seed)
    embeddings = _embeddings(features, label, (items["split"] == "train").to_numpy(),
                             items["item_id"].to_numpy(), seed)
    truth_frame = pd.DataFrame(
        {"item_id": items["item_id"], "true_label": truth.astype(str), "is_label_error": is_error}
    )

    for item_id, pixels in zip(items["item_id"], images, strict=True):
        Image.fromarray(pixels).save(root / "images" / f"{item_id}.png", format="PNG")
    _write_tables(root, CLASSES, _TOML, items=items, annotations=annotations,
                  predictions=predictions, truth=truth_frame, embeddings=embeddings)
    readme = _readme(items, annotations, predictions, truth_frame, seed)
    (root / "README.md").write_text(readme, encoding="utf-8")
    return root


def load_sample():
    """Open the sample project (``data/sample`` of the source checkout).

    When the package is installed without its source tree, the sample is built once into
    ``~/.cache/workbench/sample`` (or ``$XDG_CACHE_HOME/workbench/sample``) and opened from
    there.

    Returns
    -------
    Project
        The digits sample: 1,797 items, 5,391 annotations, runs ``baseline`` and
        ``candidate``.

    See Also
    --------
    build_sample : Write the sample to any folder.

    Examples
    --------
    >>> import workbench as wb
    >>> project = wb.load_sample()
    >>> project.runs
    ['baseline', 'candidate']
    """
    from .project import open_project

    root = SAMPLE_DIR
    if not (root / "workbench.toml").is_file():
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = cache / "workbench" / "sample"
        if not (root / "workbench.toml").is_file():
            build_sample(root)
    return open_project(root)
