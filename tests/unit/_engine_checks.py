"""The engine-equality checks, shared by test_engine.py (DuckDB) and test_engine_spark.py.

Each ``check_*`` function compares an engine result (``tables``, from ``register_project``
on any backend) with the pandas function on the same project (``project``, opened from the
same Parquet files) and fails on the first difference. The test modules choose the projects
and the backend.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import workbench as wb
from workbench.engine import aggregates as agg
from workbench.engine import (
    engine_agreement_summary,
    engine_cell_items,
    engine_confusion_table,
    engine_discover_slices,
    engine_pairwise_agreement,
    engine_slice_items,
    engine_slice_metrics,
    register_project,
)
from workbench.synthetic import make_project

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


# --------------------------------------------------------------------------------------
# projects
# --------------------------------------------------------------------------------------


def random_project(seed: int) -> wb.Project:
    """Labels missing on some items (majority with ties), re-imported annotations with
    dates (nanosecond timestamps, some missing), numeric (binned and not), boolean and
    missing metadata, two runs (one with missing predictions)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 900))
    classes = ["cat", "dog", "eel", "fox"]
    ids = np.array([f"it{i:04d}" for i in rng.permutation(n)])
    label = rng.choice(classes, n).astype(object)
    label[rng.random(n) < 0.4] = None
    site = rng.choice(["north", "south", "east", "west", "zeta"], n, p=[.4, .3, .15, .1, .05])
    site = site.astype(object)
    site[rng.random(n) < 0.05] = None
    score = rng.normal(size=n).round(3)
    score[rng.random(n) < 0.08] = np.nan
    items = pd.DataFrame({
        "item_id": ids, "label": label, "site": site, "score": score,
        "age": rng.integers(18, 90, n), "grade": rng.integers(0, 3, n),
        "flag": rng.random(n) < 0.3, "tier": rng.choice(["a", "b"], n)})
    rows = []
    annotators = [f"ann{j}" for j in range(5)]
    t0 = np.datetime64("2026-01-01T00:00:00")
    for i, item in enumerate(ids):
        if rng.random() < 0.1:
            continue  # some items have no annotation at all
        m = int(rng.integers(1, 5))
        for a in rng.choice(annotators, m, replace=False):
            truth = label[i] if label[i] is not None else classes[i % 4]
            lab = truth if rng.random() < 0.7 else rng.choice(classes)
            rows.append((item, a, lab, t0 + np.timedelta64(int(rng.integers(0, 10**6)), "s")))
            if rng.random() < 0.1:  # a re-import: a later (or undated) label
                later = (np.datetime64("NaT") if rng.random() < 0.3
                         else t0 + np.timedelta64(2 * 10**6, "s"))
                rows.append((item, a, rng.choice(classes), later))
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label", "annotated_at"])
    ann["annotated_at"] = pd.to_datetime(ann["annotated_at"], utc=True)
    ann = ann.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    preds = []
    for run, share in (("base", 1.0), ("cand", 0.8)):
        keep = rng.random(n) < share
        preds.append(pd.DataFrame({
            "item_id": ids[keep], "run": run,
            "label": np.where(rng.random(keep.sum()) < np.where(
                (site[keep] == "east") | (items["flag"].to_numpy()[keep] & (
                    items["tier"].to_numpy()[keep] == "b")), 0.3, 0.8),
                              np.where(pd.isna(label[keep]), "cat", label[keep]),
                              rng.choice(classes, keep.sum())),
            "confidence": rng.random(keep.sum())}))
    pred = pd.concat(preds, ignore_index=True)
    return wb.Project.from_frames(items, ann, pred, classes=classes, name=f"random{seed}")


def make(name: str) -> wb.Project:
    """``sample``, ``random<seed>`` or ``synthetic<seed>`` (3,000 items)."""
    if name == "sample":
        return wb.open_project(SAMPLE)
    if name.startswith("random"):
        return random_project(int(name.removeprefix("random")))
    return make_project(3000, n_metadata=6, seed=int(name.removeprefix("synthetic")))


def both(name: str, directory: Path, backend=None):
    """(the project written to Parquet in ``directory`` and opened by pandas, its tables
    registered in the engine on ``backend``)."""
    wb.write_project(make(name), directory, format="parquet")
    return wb.open_project(directory), register_project(directory, backend=backend)


def assert_frames(engine: pd.DataFrame, pandas: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(engine, pandas)
    assert engine.attrs == pandas.attrs


def _runs(project, runs):
    return project.runs if runs is None else runs


# --------------------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------------------


def check_confusion_table(project, tables, normalize=None, runs=None) -> None:
    for run in _runs(project, runs):
        errors = project.errors(run)
        assert_frames(engine_confusion_table(tables, run, normalize),
                      wb.confusion_table(errors, normalize))
        for true, pred in ((project.classes[0], project.classes[1]),
                           (project.classes[1], None), (None, project.classes[0])):
            assert engine_cell_items(tables, run, true, pred) == \
                wb.cell_items(errors, true, pred)


def check_reference_labels(project, tables) -> None:
    ref = agg.reference_table(tables).select("item_id", "label").execute()
    got = ref.set_index("item_id")["label"].reindex(project.items["item_id"])
    want = project.reference_labels()
    assert got.isna().tolist() == want.isna().tolist()
    assert got.dropna().tolist() == want.dropna().tolist()


def check_slice_metrics(project, tables, bins=4, runs=None) -> None:
    for run in _runs(project, runs):
        assert_frames(engine_slice_metrics(tables, run, bins=bins),
                      wb.slice_metrics(project.errors(run), bins=bins))


def check_slice_metrics_per_class_recall(project, tables) -> None:
    assert_frames(engine_slice_metrics(tables, "cand", ["site", "score"],
                                       per_class_recall=True),
                  wb.slice_metrics(project.errors("cand"), ["site", "score"],
                                   per_class_recall=True))


def check_discover_slices(project, tables, prune, runs=None, item_ids=True) -> None:
    """``item_ids=False``: everything but the slices' items (one query per slice)."""
    for run in _runs(project, runs):
        errors = project.errors(run)
        want = wb.discover_slices(errors, max_order=2, min_support=10, top=None,
                                  prune_explained=prune, alpha=0.2)
        got = engine_discover_slices(tables, run, max_order=2, min_support=10, top=None,
                                     prune_explained=prune, alpha=0.2, item_ids=item_ids)
        if not item_ids:
            assert got["item_ids"].isna().all()
            got, want = got.drop(columns="item_ids"), want.drop(columns="item_ids")
        assert_frames(got, want)


def check_discover_pair_queries(project, tables) -> None:
    """Beyond max_cells (no joint table) each feature pair is counted by its own query."""
    errors = project.errors("base")
    want = wb.discover_slices(errors, min_support=5, prune_explained=False, alpha=0.3)
    assert len(want) > 1  # pairs of conditions among them
    got = engine_discover_slices(tables, "base", min_support=5, prune_explained=False,
                                 alpha=0.3, max_cells=1)
    assert got["item_ids"].isna().all()  # fetched only when asked for
    assert_frames(got.drop(columns="item_ids"), want.drop(columns="item_ids"))


def check_slice_items(project, tables, columns=("site", "score", "flag")) -> None:
    """The items of every level of ``columns`` (one query each), of a conjunction with a
    missing value, and the first two of them."""
    errors = project.errors("cand")
    metrics = wb.slice_metrics(errors, list(columns))
    for value, col in zip(metrics["value"], metrics["column"], strict=True):
        assert engine_slice_items(tables, "cand", {col: value}) == \
            wb.slice_items(errors, {col: value})
    cond = {"tier": "a", "site": None}
    assert engine_slice_items(tables, "cand", cond) == wb.slice_items(errors, cond)
    assert engine_slice_items(tables, "cand", cond, limit=2) == \
        wb.slice_items(errors, cond)[:2]


def check_pairwise_agreement(project, tables) -> None:
    for min_shared in (1, 20):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = wb.pairwise_agreement(project.annotations, min_shared=min_shared)
            got = engine_pairwise_agreement(tables, min_shared=min_shared)
        pd.testing.assert_frame_equal(got, want)


def check_agreement_summary(project, tables) -> None:
    """Counts and mean kappa equal; the other measures up to the order of a float sum."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = wb.agreement_summary(project.annotations)
        got = engine_agreement_summary(tables)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if isinstance(value, int):
            assert got[key] == value, key
        else:
            np.testing.assert_allclose(got[key], value, rtol=1e-12, err_msg=key)


def check_label_counts(project, tables) -> None:
    """The item x class count table of agreement, row for row."""
    from workbench.agreement import _encode

    enc = _encode(project.annotations, "test", classes=project.classes)
    item, label = np.nonzero(enc.counts)
    want = pd.DataFrame({"item_id": enc.items[item].astype(str),
                         "label": np.asarray(enc.classes, dtype=object)[label],
                         "n": enc.counts[item, label].astype(np.int64)})
    got = (agg.label_counts(tables).execute().astype({"n": np.int64})
           .sort_values(["item_id", "label"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(got[["item_id", "label", "n"]].astype(
        {"item_id": object, "label": object}), want.astype({"item_id": object,
                                                            "label": object}))


def check_prepared(project, tables) -> None:
    """``prepare`` computes the errors table once; the calls reuse it; ``release`` drops it."""
    tables.prepare("cand")
    try:
        assert tables.prepared("cand") is not None
        errors = project.errors("cand")
        assert_frames(engine_slice_metrics(tables, "cand"), wb.slice_metrics(errors))
        assert_frames(engine_discover_slices(tables, "cand", min_support=10, alpha=0.2,
                                             item_ids=True),
                      wb.discover_slices(errors, min_support=10, alpha=0.2))
        # the joint counts kept for the run serve other options and column subsets too
        for kw in ({"bins": 3}, {"by": ["flag", "score"]}, {"bins": None}):
            assert_frames(engine_slice_metrics(tables, "cand", **kw),
                          wb.slice_metrics(errors, kw.get("by"), bins=kw.get("bins", 4)))
        assert_frames(engine_discover_slices(tables, "cand", ["flag", "score", "site"],
                                             bins=3, min_support=5, alpha=0.3,
                                             prune_explained=False, item_ids=True),
                      wb.discover_slices(errors, ["flag", "score", "site"], bins=3,
                                         min_support=5, alpha=0.3, prune_explained=False))
        assert len(tables._cubes) >= 4
    finally:
        tables.release()
    assert tables.prepared("cand") is None


def check_public_functions(project, tables, run) -> None:
    """The public slicing functions given ``tables.errors(run)`` count in the engine."""
    errors = project.errors(run)
    where = tables.errors(run)
    assert_frames(wb.confusion_table(where, "true"), wb.confusion_table(errors, "true"))
    assert_frames(wb.confusion_table(tables, run=run), wb.confusion_table(errors))
    true, pred = project.classes[0], project.classes[1]
    assert wb.cell_items(where, true, pred) == wb.cell_items(errors, true, pred)
    assert_frames(wb.slice_metrics(where, bins=3), wb.slice_metrics(errors, bins=3))
    got = wb.discover_slices(where, min_support=10, alpha=0.2)
    want = wb.discover_slices(errors, min_support=10, alpha=0.2)
    assert got["item_ids"].isna().all()  # a slice's items are fetched when it is opened
    assert_frames(got.drop(columns="item_ids"), want.drop(columns="item_ids"))
    for conditions, ids in zip(got["conditions"], want["item_ids"], strict=True):
        assert wb.slice_items(where, conditions) == ids
