"""The text sample project: Python standard-library docstrings sorted into eight areas.

:func:`build_text_sample` turns the docstrings that ship with Python itself (modules,
classes, functions and methods of a fixed list of standard-library modules, read with
:func:`inspect.getdoc`) into a small, real text-curation project (the one committed in
``data/sample-text/``). The task: which area of the standard library does a docstring
belong to (``text``, ``files``, ``network``, ``data_formats``, ``concurrency``, ``math``,
``debugging``, ``datetime``). Around it, the same planted, documented problems as the digits
sample (:mod:`workbench.sample`):

- item metadata with a real effect: ``kind`` (``module``, ``class``, ``function``,
  ``method``; module and class docstrings are few and range over their whole module, so
  the models err more on them);
  two labeling ``vendor`` s; six weekly ``batch`` es with a ``batch_date``; a ``split``;
- three labels per item from six annotators with their own confusions (``cho`` mixes
  ``files`` and ``data_formats``, ``dev`` mixes ``network`` and ``concurrency``, ``eli`` is
  careless), with ``annotated_at`` timestamps; ``quicklabel``'s labels on ``2026-W04`` are
  noisier;
- the dataset's current ``label`` with 3% planted label errors (the true area is in
  ``truth.csv``);
- out-of-fold predictions of two real scikit-learn models trained on the noisy labels: run
  ``baseline`` (TF-IDF + logistic regression) and run ``candidate`` (TF-IDF + calibrated
  linear SVM), with per-class probabilities;
- ``embeddings.parquet``: the model's own representation, TF-IDF + TruncatedSVD(64)
  (latent semantic analysis), float32.

The docstrings depend on the Python version, so the committed files are authoritative; the
build is seeded and single-threaded, and a rebuild on the same Python minor version gives
byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ._format import percent
from ._validation import check_int
from .sample import (
    _annotator_tables,
    _plant_label_errors,
    _rng,
    _round_probs,
    _run_frame,
    _simulate_annotations,
    _table,
    _write_tables,
)

__all__ = ["build_text_sample", "TEXT_SAMPLE_DIR", "AREAS"]

#: Where the committed text sample lives in a source checkout (``<repo>/data/sample-text``).
TEXT_SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample-text"

#: The eight areas (classes) and the standard-library modules whose docstrings they hold.
AREAS = {
    "text": ["string", "re", "textwrap", "difflib", "unicodedata", "codecs", "locale",
             "gettext", "shlex", "html", "pprint", "reprlib", "stringprep", "encodings"],
    "files": ["os", "os.path", "pathlib", "shutil", "glob", "fnmatch", "tempfile", "filecmp",
              "io", "stat", "fileinput", "zipfile", "tarfile", "gzip", "bz2", "lzma", "mmap",
              "zipimport"],
    "network": ["socket", "ssl", "http.client", "http.server", "http.cookies",
                "http.cookiejar", "urllib.request", "urllib.parse", "smtplib", "ftplib",
                "imaplib", "poplib", "ipaddress", "socketserver", "xmlrpc.client",
                "xmlrpc.server", "email.message", "email.utils", "mailbox"],
    "data_formats": ["json", "csv", "pickle", "configparser", "xml.etree.ElementTree",
                     "xml.dom.minidom", "xml.sax", "html.parser", "base64", "binascii",
                     "struct", "plistlib", "tomllib", "marshal", "shelve", "sqlite3",
                     "quopri", "uu"],
    "concurrency": ["threading", "multiprocessing", "multiprocessing.pool",
                    "multiprocessing.connection", "multiprocessing.managers",
                    "multiprocessing.synchronize", "multiprocessing.shared_memory",
                    "concurrent.futures", "concurrent.futures.thread",
                    "concurrent.futures.process", "asyncio", "asyncio.events",
                    "asyncio.base_events", "asyncio.tasks", "asyncio.streams", "asyncio.locks",
                    "asyncio.queues", "asyncio.subprocess", "asyncio.futures",
                    "asyncio.runners", "queue", "subprocess", "sched", "selectors",
                    "contextvars", "signal"],
    "math": ["math", "cmath", "decimal", "fractions", "random", "statistics", "numbers"],
    "debugging": ["unittest", "unittest.mock", "doctest", "pdb", "bdb", "traceback",
                  "logging", "logging.handlers", "warnings", "trace", "timeit", "cProfile",
                  "profile", "pstats", "faulthandler", "tracemalloc", "dis"],
    "datetime": ["datetime", "time", "calendar", "zoneinfo", "email._parseaddr"],
}
CLASSES = list(AREAS)
KINDS = ["module", "class", "function", "method"]
VENDORS = {"northstar": ["ana", "ben", "cho"], "quicklabel": ["dev", "eli", "fay"]}
N_BATCHES = 6
BATCH_YEAR = 2026
NOISY_VENDOR_BATCH = ("quicklabel", "2026-W04")
LABEL_ERROR_RATE = 0.03
#: Docstrings shorter or longer than this (characters) are left out.
MIN_CHARS, MAX_CHARS = 60, 3000
#: Dimensions of the shipped embeddings (TF-IDF + TruncatedSVD).
EMBEDDING_DIM = 64

# Areas that read alike: where random slips and planted label errors go.
_LOOKALIKE = {
    "text": ["data_formats", "files"], "files": ["data_formats", "concurrency"],
    "network": ["concurrency", "data_formats"], "data_formats": ["files", "text"],
    "concurrency": ["network", "debugging"], "math": ["datetime", "text"],
    "debugging": ["concurrency", "files"], "datetime": ["math", "network"],
}
_ANNOTATORS = {
    "ana": {"slip": 0.010, "confuse": {}},
    "ben": {"slip": 0.015, "confuse": {}},
    "cho": {"slip": 0.015, "confuse": {"files": ("data_formats", 0.30),
                                       "data_formats": ("files", 0.25)}},
    "dev": {"slip": 0.025, "confuse": {"network": ("concurrency", 0.30),
                                       "concurrency": ("network", 0.25)}},
    "eli": {"slip": 0.150, "confuse": {}},
    "fay": {"slip": 0.030, "confuse": {}},
}
_PROFILES = {"ana": "accurate", "ben": "accurate", "cho": "mixes files and data_formats",
             "dev": "mixes network and concurrency", "eli": "careless (random slips)",
             "fay": "accurate"}
_NOISY_BATCH_EXTRA_SLIP = 0.15
_ACCELERATORS = {"os": ("posix",), "time": ("time",), "math": ("math",)}


def _members(module) -> list[tuple[str, str, object]]:
    """(qualified name, kind, object) of a module, its public classes, functions, methods."""
    name = module.__name__
    # members defined here or in the module's C accelerator (json and _json, os and posix)
    own = {name, "_" + name.rsplit(".", 1)[-1], *_ACCELERATORS.get(name, ())}
    out = [(name, "module", module)]
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) not in own:
            continue
        if inspect.isclass(obj):
            out.append((f"{name}.{attr}", "class", obj))
            for meth, fn in sorted(vars(obj).items()):
                routine = (inspect.isfunction(fn) or inspect.ismethoddescriptor(fn)
                           or isinstance(fn, classmethod | staticmethod))
                if meth.startswith("_") or not routine:
                    continue
                out.append((f"{name}.{attr}.{meth}", "method", fn))
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            out.append((f"{name}.{attr}", "function", obj))
    return out


def _docstring(obj) -> str | None:
    if isinstance(obj, classmethod | staticmethod):
        obj = obj.__func__
    doc = obj.__doc__ if inspect.ismodule(obj) else inspect.getdoc(obj)
    if not isinstance(doc, str):
        return None
    doc = inspect.cleandoc(doc).replace("\r\n", "\n").strip()
    return doc if MIN_CHARS <= len(doc) <= MAX_CHARS else None


def collect_docstrings() -> pd.DataFrame:
    """The docstrings of :data:`AREAS`, deduplicated, in a fixed order.

    Returns
    -------
    DataFrame
        ``qualname``, ``module``, ``area``, ``kind``, ``text``; sorted by area (in
        :data:`CLASSES` order), module (as listed) and name. A text seen twice (an alias, an
        inherited method) is kept once, at its first place.
    """
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated modules (uu) warn on import
        for area, modules in AREAS.items():
            for modname in modules:
                try:
                    module = importlib.import_module(modname)
                except ImportError:  # a module gone in this Python version
                    continue
                for qualname, kind, obj in _members(module):
                    text = _docstring(obj)
                    if text is not None:
                        rows.append((qualname, modname, area, kind, text))
    frame = pd.DataFrame(rows, columns=["qualname", "module", "area", "kind", "text"])
    key = frame["text"].str.split().str.join(" ")
    frame = frame[~key.duplicated() & ~frame["qualname"].duplicated()]
    return frame.reset_index(drop=True)


def _slip(true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong area for each entry of ``true``: a look-alike, else any other."""
    k = len(CLASSES)
    codes = np.array([CLASSES.index(t) for t in true], dtype=np.int64)
    other = (codes + rng.integers(1, k, codes.size)) % k
    lookalike = rng.random(codes.size) < 0.6
    pick = rng.random(codes.size)
    out = np.asarray(CLASSES, dtype=object)[other]
    for i, t in enumerate(true):
        if lookalike[i]:
            similar = _LOOKALIKE[t]
            out[i] = similar[min(int(pick[i] * len(similar)), len(similar) - 1)]
    return out.astype(str)


def _items(docs: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = _rng(seed, "text-items")
    n = len(docs)
    vendors = list(VENDORS)
    vendor = rng.integers(0, len(vendors), size=n)
    week = rng.integers(1, N_BATCHES + 1, size=n)
    split = rng.choice(3, size=n, p=[0.70, 0.15, 0.15])
    monday = {w: dt.date.fromisocalendar(BATCH_YEAR, w, 1).isoformat()
              for w in range(1, N_BATCHES + 1)}
    return pd.DataFrame({
        "item_id": [f"doc-{i:04d}" for i in range(n)],
        "text": docs["text"].to_numpy(),
        "label": "",  # filled by the caller
        "kind": docs["kind"].to_numpy(),
        "vendor": np.asarray(vendors)[vendor],
        "batch": [f"{BATCH_YEAR}-W{w:02d}" for w in week],
        "batch_date": [monday[int(w)] for w in week],
        "split": np.asarray(["train", "val", "test"])[split],
    })


def _labels(truth: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    label, is_error = _plant_label_errors(truth, _rng(seed, "text-label-errors"), _slip,
                                          LABEL_ERROR_RATE)
    return label.astype(str), is_error


def _annotations(items: pd.DataFrame, truth: np.ndarray, seed: int) -> pd.DataFrame:
    """Three labels per item: two by the item's vendor, one cross-check by the other."""
    return _simulate_annotations(
        items, truth, _rng(seed, "text-annotations"), vendors=VENDORS, annotators=_ANNOTATORS,
        slip=_slip, noisy_vendor_batch=NOISY_VENDOR_BATCH,
        noisy_extra_slip=_NOISY_BATCH_EXTRA_SLIP)


def _tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.5, ngram_range=(1, 2),
                           token_pattern=r"(?u)\b[A-Za-z_][A-Za-z_0-9]+\b")


def _predictions(texts, labels: np.ndarray, item_ids, seed: int) -> pd.DataFrame:
    """Out-of-fold class probabilities of two real text models trained on the given labels."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC
    from threadpoolctl import threadpool_limits

    models = {
        "baseline": make_pipeline(_tfidf(), LogisticRegression(C=10.0, max_iter=5000)),
        "candidate": make_pipeline(_tfidf(), CalibratedClassifierCV(
            LinearSVC(C=0.5, random_state=seed), ensemble=False)),
    }
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    frames = []
    with threadpool_limits(limits=1):
        for run, model in models.items():
            probs = cross_val_predict(model, texts, labels, cv=folds, method="predict_proba")
            # cross_val_predict orders the columns by the sorted labels; put them in CLASSES order
            order = [sorted(CLASSES).index(c) for c in CLASSES]
            probs = _round_probs(probs[:, order])
            frames.append(_run_frame(probs, CLASSES, run, item_ids))
    return pd.concat(frames, ignore_index=True)


def _embeddings(texts, item_ids, seed: int) -> pd.DataFrame:
    """TF-IDF + TruncatedSVD (latent semantic analysis), L2-normalised, float32."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        tfidf = _tfidf().fit_transform(texts)
        svd = TruncatedSVD(EMBEDDING_DIM, algorithm="randomized", n_iter=7, random_state=seed)
        x = normalize(svd.fit_transform(tfidf)).astype(np.float32)
    # a sign convention per component, so a rebuild cannot flip a column
    x = x * np.where(x.sum(axis=0) < 0, -1, 1).astype(np.float32)
    frame = pd.DataFrame(np.round(x, 6), columns=[f"e{k}" for k in range(EMBEDDING_DIM)])
    frame.insert(0, "item_id", item_ids)
    return frame


def _readme(items, annotations, predictions, truth, seed: int) -> str:
    from string import Template

    merged = predictions.merge(items[["item_id", "label", "kind"]], on="item_id",
                               suffixes=("_pred", ""))
    merged["error"] = merged["label_pred"] != merged["label"]
    by_kind = merged.pivot_table(index="run", columns="kind", values="error", aggfunc="mean")
    by_kind = by_kind[[k for k in KINDS if k in by_kind.columns]]
    by_kind["all"] = merged.groupby("run")["error"].mean()
    by_kind.index.name = "run (error rate)"
    per_ann, by_batch = _annotator_tables(items, annotations, truth, VENDORS, _PROFILES)
    area_counts = truth["true_label"].value_counts().reindex(CLASSES).to_frame("items")
    area_counts.insert(0, "modules", [", ".join(f"`{m}`" for m in AREAS[a]) for a in CLASSES])
    area_counts["items"] = area_counts["items"].astype(str)
    area_counts.index.name = "area (true)"
    template = Template(Path(__file__).with_name("_text_sample_readme.md").read_text("utf-8"))
    return template.substitute(
        seed=seed, python=f"{sys.version_info.major}.{sys.version_info.minor}",
        n_items=f"{len(items):,}", n_annotations=f"{len(annotations):,}",
        n_errors=int(truth["is_label_error"].sum()),
        error_share=percent(truth["is_label_error"].mean()),
        noisy_vendor=NOISY_VENDOR_BATCH[0], noisy_batch=NOISY_VENDOR_BATCH[1],
        min_chars=MIN_CHARS, max_chars=MAX_CHARS, dim=EMBEDDING_DIM,
        area_table=_table(area_counts),
        kind_counts=_table(items["kind"].value_counts().reindex(KINDS).to_frame("items")
                           .astype(str)),
        split_counts=_table(items["split"].value_counts().sort_index().to_frame("items")),
        error_table=_table(by_kind),
        annotator_table=_table(per_ann),
        batch_table=_table(by_batch),
    )


_TOML = """\
# The workbench text sample, generated by `workbench sample --task text`
# (workbench.text_sample.build_text_sample). See README.md for how it was made.
name = "stdlib-docs-sample"
classes = [{classes}]
default_run = "candidate"
"""


def build_text_sample(directory, *, seed=0) -> Path:
    """Write the text sample (standard-library docstrings in eight areas) to ``directory``.

    Deterministic for a given ``seed`` and Python minor version (the docstrings come from
    the running Python). Writes ``workbench.toml``, ``items.csv`` (with a ``text`` column),
    ``annotations.csv``, ``predictions.csv``, ``embeddings.parquet``, ``truth.csv`` and
    ``README.md``; existing files of those names are replaced. Takes about half a minute.

    Parameters
    ----------
    directory : str or path-like
        Folder to write to; created if missing.
    seed : int, default=0
        Seed of every random choice (metadata, annotators, label errors, folds, SVD).

    Returns
    -------
    pathlib.Path
        The project folder, ready for :func:`workbench.open_project`.

    Examples
    --------
    >>> import workbench as wb
    >>> from workbench.text_sample import build_text_sample
    >>> root = build_text_sample("my-text-sample")  # doctest: +SKIP
    >>> wb.open_project(root).is_text  # doctest: +SKIP
    True
    """
    seed = check_int(seed, "seed", "build_text_sample", minimum=0)
    if not isinstance(directory, str | os.PathLike):
        raise TypeError("The 'directory' parameter of build_text_sample must be a str or "
                        f"path-like. Got {directory!r} instead.")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    docs = collect_docstrings()
    truth = docs["area"].to_numpy().astype(str)
    items = _items(docs, seed)
    label, is_error = _labels(truth, seed)
    items["label"] = label
    annotations = _annotations(items, truth, seed)
    texts = items["text"].tolist()
    ids = items["item_id"].to_numpy()
    predictions = _predictions(texts, label, ids, seed)
    embeddings = _embeddings(texts, ids, seed)
    truth_frame = pd.DataFrame({"item_id": ids, "true_label": truth,
                                "module": docs["module"].to_numpy(),
                                "name": docs["qualname"].to_numpy(),
                                "is_label_error": is_error})
    _write_tables(root, CLASSES, _TOML, items=items, annotations=annotations,
                  predictions=predictions, truth=truth_frame, embeddings=embeddings)
    (root / "README.md").write_text(_readme(items, annotations, predictions, truth_frame, seed),
                                    encoding="utf-8")
    return root
