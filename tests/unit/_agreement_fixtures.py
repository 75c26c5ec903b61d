"""Shared fixtures of the agreement / label-quality tests (imported by those test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory):
    """The sample project: data/sample when it is built, else a fresh build in a temp dir."""
    root = REPO / "data" / "sample"
    if not (root / "items.csv").exists() or not (root / "truth.csv").exists():
        root = tmp_path_factory.mktemp("sample")
        wb.build_sample(root)
    return wb.open_project(root)


@pytest.fixture(scope="session")
def sample_truth(sample_project):
    truth = pd.read_csv(sample_project.root / "truth.csv", dtype=str)
    truth["is_label_error"] = truth["is_label_error"].str.lower().eq("true")
    return truth


def long_from_matrix(rows, missing=None):
    """Annotations from a units x coders matrix (None/``missing`` = no label)."""
    recs = []
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is None or value == missing or (isinstance(value, float) and np.isnan(value)):
                continue
            recs.append((f"u{i:03d}", f"c{j:03d}", str(value)))
    return pd.DataFrame(recs, columns=["item_id", "annotator", "label"]).astype("str")


def simulate(n_items=400, n_annotators=8, labels_per_item=3, n_classes=4, seed=0,
             accuracies=None):
    """Crowd labels with per-annotator accuracy; returns (annotations, truth Series)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    acc = (np.asarray(accuracies) if accuracies is not None
           else rng.uniform(0.55, 0.95, n_annotators))
    recs = []
    for i in range(n_items):
        who = rng.choice(n_annotators, size=labels_per_item, replace=False)
        for a in who:
            if rng.random() < acc[a]:
                lab = truth[i]
            else:
                lab = rng.choice([c for c in range(n_classes) if c != truth[i]])
            recs.append((f"i{i:04d}", f"a{a}", f"k{lab}"))
    ann = pd.DataFrame(recs, columns=["item_id", "annotator", "label"]).astype("str")
    gold = pd.Series([f"k{t}" for t in truth], index=[f"i{i:04d}" for i in range(n_items)],
                     name="label")
    return ann, gold
