"""Synthetic projects of any size, with planted weak slices whose strength is known.

:func:`make_project` builds a :class:`~workbench.project.Project` in memory with fully
vectorised numpy (a million items with three labels each builds in seconds). What was planted
is recorded in ``project.info``, so tests and benchmarks can check that the workbench finds
it:

- ``info["planted_slices"]``: a list of dicts such as
  ``{"conditions": {"meta_1": "b"}, "target": "correct", "error_rate": 0.4, ...}`` (items
  where the model's error rate is ``error_rate`` instead of the base rate) and
  ``{"conditions": {...}, "target": "agreement", "annotator_error_rate": 0.35, ...}`` (items
  where every annotator errs that often, so annotators disagree more);
- ``info["truth"]``: the true class of every item (a Series indexed by ``item_id``);
- ``info["base_error_rate"]``, ``info["label_noise"]``, ``info["annotator_error_rates"]``,
  ``info["seed"]`` and the other generator parameters.

:func:`write_project` writes the project (``workbench.project.write_project``) plus that
record (``synthetic.json`` and ``truth.<format>``, which the project loader ignores);
:func:`read_planted` reads it back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_fraction, check_int, check_option
from .project import Project
from .project import write_project as _write_tables

__all__ = ["make_project", "write_project", "read_planted", "default_planted_slices"]

_LEVEL_COUNTS = (4, 5, 3, 6, 8, 4, 7, 3, 5, 6)
_LETTERS = "abcdefgh"
_EPOCH = np.datetime64("2026-01-01T00:00:00", "s")
_ANNOTATION_SPAN_S = 90 * 86400
_IMAGE_SIZE = 32
_FUNC = "make_project"


def _levels(j: int) -> list[str]:
    return list(_LETTERS[: _LEVEL_COUNTS[j % len(_LEVEL_COUNTS)]])


def _level_shares(j: int) -> np.ndarray:
    """Uneven but never tiny shares: level k has weight 1/sqrt(k+1)."""
    w = 1.0 / np.sqrt(np.arange(len(_levels(j))) + 1.0)
    return w / w.sum()


def default_planted_slices(n_metadata: int = 10) -> list[dict]:
    """The weak slices :func:`make_project` plants when ``planted_slices=None``.

    With at least 6 metadata columns: model errors on ``meta_1=b`` (order 1, error rate
    0.40) and on ``meta_3=c & meta_5=a`` (order 2, error rate 0.45), and more annotator
    disagreement on ``meta_2=c`` (each annotator wrong 35% of the time). With fewer columns,
    the same kinds of slices on the columns available (none without metadata).

    Parameters
    ----------
    n_metadata : int, default=10
        Number of metadata columns ``meta_0`` ... ``meta_{n_metadata-1}``.

    Returns
    -------
    list of dict
        Each with ``conditions`` (column -> level), ``target`` (``'correct'`` or
        ``'agreement'``) and ``error_rate`` or ``annotator_error_rate``.

    Examples
    --------
    >>> default_planted_slices(10)[0]
    {'conditions': {'meta_1': 'b'}, 'target': 'correct', 'error_rate': 0.4}
    """
    n_metadata = check_int(n_metadata, "n_metadata", "default_planted_slices", minimum=0)
    if n_metadata == 0:
        return []
    if n_metadata >= 6:
        one, two, agree = 1, (3, 5), 2
    else:
        one = 1 if n_metadata > 1 else 0
        rest = [j for j in range(n_metadata) if j != one]
        two = tuple(rest[:2]) if len(rest) >= 2 else None
        agree = rest[0] if rest else None
    out = [{"conditions": {f"meta_{one}": "b"}, "target": "correct", "error_rate": 0.40}]
    if two is not None:
        out.append({"conditions": {f"meta_{two[0]}": "c", f"meta_{two[1]}": "a"},
                    "target": "correct", "error_rate": 0.45})
    if agree is not None:
        out.append({"conditions": {f"meta_{agree}": "c"}, "target": "agreement",
                    "annotator_error_rate": 0.35})
    return out


def _check_slices(planted, n_metadata: int, base_error_rate: float, label_noise: float,
                  n_classes: int) -> list[dict]:
    if planted is None:
        return default_planted_slices(n_metadata)
    if not isinstance(planted, list | tuple):
        raise TypeError(f"The 'planted_slices' parameter of {_FUNC} must be a list of dicts or "
                        f"None. Got {type(planted).__name__} instead.")
    out = []
    for k, spec in enumerate(planted):
        if not isinstance(spec, dict) or not isinstance(spec.get("conditions"), dict) \
                or not spec["conditions"]:
            raise ValueError(f"planted_slices[{k}] must be a dict with a non-empty "
                             f"'conditions' dict (column -> level). Got {spec!r} instead.")
        for col, level in spec["conditions"].items():
            j = int(col[5:]) if col.startswith("meta_") and col[5:].isdigit() else -1
            if not 0 <= j < n_metadata:
                raise ValueError(f"planted_slices[{k}] uses the column {col!r}, which is not "
                                 f"among meta_0 ... meta_{n_metadata - 1}. Use an existing "
                                 f"column or raise n_metadata.")
            if level not in _levels(j):
                raise ValueError(f"planted_slices[{k}] uses the level {level!r} of {col!r}, "
                                 f"whose levels are {_levels(j)}.")
        target = check_option(spec.get("target", "correct"), "target", _FUNC,
                              ["correct", "agreement"])
        key = "error_rate" if target == "correct" else "annotator_error_rate"
        rate = check_fraction(spec.get(key), key, _FUNC)
        if target == "correct" and not _reachable(rate, label_noise, n_classes):
            raise ValueError(f"planted_slices[{k}] asks for error_rate={rate}, which cannot "
                             f"be reached with label_noise={label_noise}: pick an error rate "
                             f"between {label_noise} and 1.")
        out.append({**spec, "conditions": dict(spec["conditions"]), "target": target, key: rate})
    return out


# ---- model errors against the (noisy) labels ---------------------------------------------
#
# The model predicts the true class with probability 1 - p; a wrong prediction is the class's
# "partner" half of the time, else any other class. The label is the true class with
# probability 1 - q, else any other class (uniformly). So the prediction disagrees with the
# label with probability  e = q + p * ((1 - q) - q / (K - 1)),  and we solve for p.


def _model_error_for(rate, q: float, k: int):
    return (np.asarray(rate, dtype=float) - q) / ((1.0 - q) - q / (k - 1))


def _reachable(rate: float, q: float, k: int) -> bool:
    return 0.0 <= float(_model_error_for(rate, q, k)) <= 1.0


def _partner(t: np.ndarray, k: int) -> np.ndarray:
    """The class a wrong answer most often confuses ``t`` with: 0<->1, 2<->3, ..."""
    p = t ^ 1
    return np.where(p >= k, t - 1, p)


def _wrong(t: np.ndarray, k: int, rng: np.random.Generator, partner_share: float) -> np.ndarray:
    """A class different from each ``t``: its partner with ``partner_share``, else uniform."""
    other = (t + rng.integers(1, k, size=t.size)) % k
    if partner_share <= 0:
        return other
    use = rng.random(t.size) < partner_share
    return np.where(use, _partner(t, k), other)


def _as_str(codes: np.ndarray, names: list[str]) -> pd.Series:
    return pd.Series(pd.Categorical.from_codes(codes, names)).astype("str")


def _distinct_annotators(n: int, a: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, m)`` annotator indices, distinct within each row, uniform over subsets."""
    if m == 0:
        return np.empty((n, 0), dtype=np.int64)
    if m * m > a:  # collisions would be common: take a random permutation's prefix
        out = np.empty((n, m), dtype=np.int64)
        chunk = max(1, 8_000_000 // a)  # bounded memory: at most 8M floats at a time
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            out[start:stop] = np.argsort(rng.random((stop - start, a)), axis=1)[:, :m]
        return out
    # few annotators per item among many: draw, then redraw the rows with a repeat
    out = rng.integers(0, a, size=(n, m))
    while True:
        srt = np.sort(out, axis=1)
        bad = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if not bad.any():
            return out
        out[bad] = rng.integers(0, a, size=(int(bad.sum()), m))


def _probabilities(pred: np.ndarray, truth: np.ndarray, correct: np.ndarray, k: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Softmax rows whose argmax is ``pred``; confident when right, hesitant when wrong."""
    n = len(pred)
    rows = np.arange(n)
    logits = rng.normal(0.0, 0.8, size=(n, k))
    # a wrong prediction usually keeps the true class as runner-up
    runner = ~correct & (rng.random(n) < 0.7)
    logits[rows[runner], truth[runner]] = logits[runner].max(axis=1) + 0.05
    logits[rows, pred] = -np.inf
    top = logits.max(axis=1)
    margin = np.where(correct, 2.0 + rng.exponential(2.5, n), 0.2 + rng.exponential(0.8, n))
    logits[rows, pred] = top + margin
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def _write_images(directory: Path, item_ids: pd.Series, truth: np.ndarray, k: int,
                  rng: np.random.Generator) -> None:
    """Small grayscale PNGs: a fixed random 8x8 pattern per class, upscaled, plus noise."""
    from PIL import Image

    folder = directory / "images"
    folder.mkdir(parents=True, exist_ok=True)
    templates = rng.random((k, 8, 8)) ** 2
    scale = _IMAGE_SIZE // 8
    ids = item_ids.to_numpy()
    for start in range(0, len(ids), 10_000):
        stop = min(len(ids), start + 10_000)
        base = templates[truth[start:stop]].repeat(scale, axis=1).repeat(scale, axis=2)
        noisy = base + rng.normal(0.0, 0.15, base.shape)
        pixels = np.rint(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)
        for item_id, img in zip(ids[start:stop], pixels, strict=True):
            Image.fromarray(img).save(folder / f"{item_id}.png", format="PNG", compress_level=1)


def make_project(n_items=10_000, *, n_classes=10, n_annotators=5, labels_per_item=3,
                 n_metadata=10, n_runs=1, planted_slices=None, with_probs=True, images=False,
                 directory=None, seed=0, base_error_rate=0.10, label_noise=0.02) -> Project:
    """Build a synthetic project with planted weak slices.

    Items get categorical metadata ``meta_0`` ... ``meta_{n_metadata-1}`` (3 to 8 levels
    ``'a'``, ``'b'``, ... each, unevenly used), a true class, and a ``label`` equal to the true
    class except for a ``label_noise`` share of random errors. Annotators label from the
    true class with their own error rate (one of them is careless). Each run predicts with
    the base error rate, except inside the planted slices.

    Parameters
    ----------
    n_items : int, default=10_000
        Number of items (``item-0000000`` ...).
    n_classes : int, default=10
        Classes ``'0'`` ... ``'9'`` (zero-padded beyond 10 classes, so they sort).
    n_annotators : int, default=5
        Annotators ``ann_00`` ... ; 0 for no annotations.
    labels_per_item : int, default=3
        Distinct annotators per item, at most ``n_annotators``.
    n_metadata : int, default=10
        Number of categorical metadata columns.
    n_runs : int, default=1
        Prediction runs ``run_0`` ... ; each later run is slightly better at the base rate
        (the planted slices stay weak in every run). 0 for no predictions.
    planted_slices : list of dict, optional
        What to plant; default :func:`default_planted_slices`. Each dict has
        ``conditions`` (``{"meta_1": "b"}``) and either ``target="correct"`` with
        ``error_rate`` (the rate at which predictions disagree with ``label`` on those items)
        or ``target="agreement"`` with ``annotator_error_rate`` (every annotator's error rate
        on those items). Where model slices overlap, the higher rate applies. Pass ``[]``
        for none.
    with_probs : bool, default=True
        Give predictions ``prob_<class>`` columns (rows sum to 1) besides ``confidence``.
    images : bool, default=False
        Write a small PNG per item under ``directory/images`` and add ``filepath``.
    directory : path-like, optional
        Project folder for the images and the project's ``root``. Required with
        ``images=True``. Tables are not written: use :func:`write_project`.
    seed : int, default=0
        Same seed, same project.
    base_error_rate : float, default=0.10
        Rate at which ``run_0``'s predictions disagree with ``label`` outside the slices.
    label_noise : float, default=0.02
        Share of items whose ``label`` is not their true class.

    Returns
    -------
    Project
        With ``info["planted_slices"]`` (the slices, each with its ``error_rate`` or
        ``annotator_error_rate`` and ``n_items``), ``info["truth"]`` (true class per item)
        and the generator's parameters.

    Raises
    ------
    ValueError
        If a parameter is out of range, a planted slice names an unknown column or level,
        or ``images=True`` without ``directory``.

    See Also
    --------
    write_project : Write it to disk with the planted record.
    workbench.sample.build_sample : The small real sample project.

    Examples
    --------
    >>> project = make_project(2_000, seed=1)
    >>> project.items.shape
    (2000, 12)
    >>> project.info["planted_slices"][0]["conditions"]
    {'meta_1': 'b'}
    """
    n = check_int(n_items, "n_items", _FUNC, minimum=1)
    k = check_int(n_classes, "n_classes", _FUNC, minimum=2)
    a = check_int(n_annotators, "n_annotators", _FUNC, minimum=0)
    m = check_int(labels_per_item, "labels_per_item", _FUNC, minimum=0)
    n_meta = check_int(n_metadata, "n_metadata", _FUNC, minimum=0)
    n_runs = check_int(n_runs, "n_runs", _FUNC, minimum=0)
    seed = check_int(seed, "seed", _FUNC, minimum=0)
    base = check_fraction(base_error_rate, "base_error_rate", _FUNC)
    q = check_fraction(label_noise, "label_noise", _FUNC, high=0.5)
    for name, flag in (("with_probs", with_probs), ("images", images)):
        if not isinstance(flag, bool):
            raise TypeError(f"The {name!r} parameter of {_FUNC} must be a bool. "
                            f"Got {flag!r} instead.")
    if a and m > a:
        raise ValueError(f"The 'labels_per_item' parameter of {_FUNC} must be an int in the "
                         f"range [0, n_annotators={a}]. Got {m!r} instead.")
    if a == 0:
        m = 0
    if not _reachable(base, q, k):
        raise ValueError(f"The 'base_error_rate' parameter of {_FUNC} must be at least "
                         f"label_noise={q}. Got {base!r} instead.")
    if directory is not None and not isinstance(directory, str | os.PathLike):
        raise TypeError(f"The 'directory' parameter of {_FUNC} must be a str, path-like or "
                        f"None. Got {directory!r} instead.")
    if images and directory is None:
        raise ValueError(f"{_FUNC}(images=True) writes PNG files, so it needs a folder: pass "
                         f"directory=... (or images=False).")
    planted = _check_slices(planted_slices, n_meta, base, q, k)

    rng = np.random.default_rng(seed)
    width = max(len(str(k - 1)), 1)
    classes = [str(c).zfill(width) for c in range(k)]
    ids = "item-" + pd.Series(np.arange(n)).astype("str").str.zfill(max(7, len(str(n - 1))))

    # items: metadata, truth, noisy labels
    meta_codes = {}
    items = {"item_id": ids}
    for j in range(n_meta):
        shares = _level_shares(j)
        codes = np.searchsorted(np.cumsum(shares), rng.random(n), side="right")
        codes = np.minimum(codes, len(shares) - 1)
        meta_codes[f"meta_{j}"] = codes
    class_shares = rng.dirichlet(np.full(k, 20.0))
    truth = np.minimum(np.searchsorted(np.cumsum(class_shares), rng.random(n), side="right"),
                       k - 1)
    label = truth.copy()
    noisy = rng.random(n) < q
    label[noisy] = _wrong(truth[noisy], k, rng, partner_share=0.0)
    if images:
        items["filepath"] = "images/" + ids + ".png"
    items["label"] = _as_str(label, classes)
    for j in range(n_meta):
        items[f"meta_{j}"] = _as_str(meta_codes[f"meta_{j}"], _levels(j))
    items = pd.DataFrame(items)

    def in_slice(spec) -> np.ndarray:
        mask = np.ones(n, dtype=bool)
        for col, level in spec["conditions"].items():
            j = int(col[5:])
            mask &= meta_codes[col] == _levels(j).index(level)
        return mask

    masks = [in_slice(spec) for spec in planted]

    # annotations
    ann_rates = np.clip(rng.uniform(0.03, 0.12, size=a), 0, 1)
    if a:
        ann_rates[a - 1] = 0.30  # the careless one
    ann_names = [f"ann_{i:0{max(2, len(str(a - 1)))}d}" for i in range(a)]
    if m:
        who = _distinct_annotators(n, a, m, rng).ravel()
        row_item = np.repeat(np.arange(n), m)
        rate = ann_rates[who]
        for spec, mask in zip(planted, masks, strict=True):
            if spec["target"] == "agreement":
                rate = np.where(mask[row_item], np.maximum(rate, spec["annotator_error_rate"]),
                                rate)
        given = truth[row_item]
        slip = rng.random(given.size) < rate
        given[slip] = _wrong(given[slip], k, rng, partner_share=0.5)
        seconds = rng.integers(0, _ANNOTATION_SPAN_S, size=given.size)
        annotations = pd.DataFrame({
            "item_id": ids.take(row_item).reset_index(drop=True),
            "annotator": _as_str(who, ann_names),
            "label": _as_str(given, classes),
            "annotated_at": pd.to_datetime(_EPOCH + seconds.astype("timedelta64[s]"), utc=True)
            .astype("datetime64[us, UTC]"),
        })
        del who, row_item, rate, given, slip, seconds
    else:
        annotations = None

    # predictions
    model_slices = [(spec, mask) for spec, mask in zip(planted, masks, strict=True)
                    if spec["target"] == "correct"]
    runs, base_rates = [], []
    frames = []
    for r in range(n_runs):
        run_base = max(q, base * (1.0 - 0.15 * r))
        target = np.full(n, run_base)
        for spec, mask in model_slices:
            target = np.where(mask, np.maximum(target, spec["error_rate"]), target)
        p_model = np.clip(_model_error_for(target, q, k), 0.0, 1.0)
        correct = rng.random(n) >= p_model
        pred = truth.copy()
        pred[~correct] = _wrong(truth[~correct], k, rng, partner_share=0.5)
        cols: dict[str, Any] = {"item_id": ids, "run": f"run_{r}",
                                "label": _as_str(pred, classes)}
        if with_probs:
            probs = _probabilities(pred, truth, correct, k, rng)
            cols["confidence"] = probs.max(axis=1)
            for c, name in enumerate(classes):
                cols[f"prob_{name}"] = probs[:, c]
            del probs
        else:
            cols["confidence"] = np.where(correct, rng.beta(8, 2, n), rng.beta(3, 3, n))
        frames.append(pd.DataFrame(cols))
        runs.append(f"run_{r}")
        base_rates.append(run_base)
    predictions = pd.concat(frames, ignore_index=True) if frames else None
    del frames

    if images:
        _write_images(Path(directory), ids, truth, k, rng)

    recorded = []
    for spec, mask in zip(planted, masks, strict=True):
        recorded.append({**spec, "n_items": int(mask.sum()), "support": float(mask.mean())})
    info = {
        "generator": "workbench.synthetic.make_project",
        "seed": seed,
        "planted_slices": recorded,
        "truth": pd.Series(_as_str(truth, classes).to_numpy(), index=pd.Index(ids, name="item_id"),
                           name="true_label"),
        "base_error_rate": base,
        "run_base_error_rates": dict(zip(runs, base_rates, strict=True)),
        "label_noise": q,
        "annotator_error_rates": dict(zip(ann_names, ann_rates.round(4).tolist(), strict=True)),
        "careless_annotator": ann_names[-1] if a else None,
        "params": {"n_items": n, "n_classes": k, "n_annotators": a, "labels_per_item": m,
                   "n_metadata": n_meta, "n_runs": n_runs, "with_probs": with_probs,
                   "images": images},
    }
    return Project.from_frames(
        items=items, annotations=annotations, predictions=predictions, classes=classes,
        name=f"synthetic-{n}", default_run=runs[0] if runs else None,
        root=Path(directory) if directory is not None else None, info=info)


def write_project(project: Project, directory, *, format="parquet") -> Path:
    """Write a project to ``directory``, with the planted record of a synthetic one.

    Writes the tables and ``workbench.toml`` (:func:`workbench.project.write_project`). When
    ``project.info`` holds what :func:`make_project` planted, also writes
    ``synthetic.json`` (planted slices and generator parameters) and ``truth.<format>``
    (``item_id``, ``true_label``); the project loader ignores both. Read them back with
    :func:`read_planted`.

    Parameters
    ----------
    project : Project
    directory : path-like
        Created if missing.
    format : {'csv', 'parquet'}, default='parquet'

    Returns
    -------
    pathlib.Path
        The project folder.
    """
    check_option(format, "format", "write_project", ["csv", "parquet"])
    root = _write_tables(project, directory, format=format)
    info = getattr(project, "info", None) or {}
    # drop the answer key of whatever project was in the folder before
    for stale in (root / "synthetic.json", root / "truth.csv", root / "truth.parquet"):
        if stale.exists():
            stale.unlink()
    if "planted_slices" in info:
        record = {key: value for key, value in info.items() if key != "truth"}
        text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
        (root / "synthetic.json").write_text(text, encoding="utf-8")
    truth = info.get("truth")
    if isinstance(truth, pd.Series):
        frame = truth.rename("true_label").rename_axis("item_id").reset_index()
        if format == "csv":
            frame.to_csv(root / "truth.csv", index=False)
        else:
            frame.to_parquet(root / "truth.parquet", index=False)
    return root


def read_planted(directory) -> dict:
    """What :func:`write_project` recorded about a synthetic project folder.

    Parameters
    ----------
    directory : path-like
        A folder written by :func:`write_project` (for example by ``workbench synth``).

    Returns
    -------
    dict
        The ``info`` of the generated project: ``planted_slices``, parameters, and
        ``truth`` (Series indexed by ``item_id``) when ``truth.<format>`` exists.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``synthetic.json``.
    """
    root = Path(directory)
    path = root / "synthetic.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {root} was not written by "
                                f"workbench.synthetic.write_project (workbench synth).")
    info = json.loads(path.read_text(encoding="utf-8"))
    for name, reader in (("truth.parquet", pd.read_parquet), ("truth.csv", pd.read_csv)):
        if (root / name).is_file():
            frame = reader(root / name, dtype=str) if name.endswith("csv") else reader(root / name)
            info["truth"] = pd.Series(frame["true_label"].astype("str").to_numpy(),
                                      index=pd.Index(frame["item_id"].astype("str"),
                                                     name="item_id"), name="true_label")
            break
    return info
