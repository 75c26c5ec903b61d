"""Suspected label errors (cleanlab + annotator votes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import SchemaError
from workbench.label_quality import find_label_issues_frame

try:
    from ._agreement_fixtures import sample_project, sample_truth  # noqa: F401
except ImportError:
    from _agreement_fixtures import sample_project, sample_truth  # noqa: F401


def _errors(truth):
    return set(truth.loc[truth["is_label_error"], "item_id"])


@pytest.mark.parametrize("run", ["baseline", "candidate"])
def test_planted_errors_found(sample_project, sample_truth, run):
    planted = _errors(sample_truth)
    assert len(planted) > 0
    issues = wb.label_issues(sample_project, run=run)
    k = len(planted)
    top_k = set(issues["item_id"].head(k))
    assert len(top_k & planted) / k >= 0.8
    flagged = set(issues.loc[issues["is_issue"], "item_id"])
    assert len(flagged & planted) / k >= 0.8
    assert issues["label_quality"].is_monotonic_increasing
    assert list(issues["rank"]) == list(range(1, len(issues) + 1))
    # the suggested label of a found planted error is mostly the true digit
    true = sample_truth.set_index("item_id")["true_label"]
    found = issues[issues["item_id"].isin(planted) & issues["is_issue"]]
    assert (found["suggested_label"].to_numpy() == true.reindex(found["item_id"]).to_numpy()
            ).mean() > 0.8


def test_model_only_matches_cleanlab(sample_project):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    issues = wb.label_issues(sample_project, run="baseline", use_annotations=False)
    assert "annotator_agreement" not in issues.columns
    ids, probs = sample_project.pred_probs("baseline")
    given = pd.Index(sample_project.classes).get_indexer(
        sample_project.reference_labels().reindex(ids).to_numpy())
    expected_issue = find_label_issues(given, probs)
    expected_quality = get_label_quality_scores(given, probs)
    got = issues.set_index("item_id").reindex(ids)
    np.testing.assert_array_equal(got["is_issue"].to_numpy(), expected_issue)
    np.testing.assert_allclose(got["label_quality"].to_numpy(), expected_quality)
    np.testing.assert_array_equal(got["suggested_label"].to_numpy(),
                                  np.asarray(sample_project.classes)[probs.argmax(1)])


def test_combined_columns(sample_project):
    issues = wb.label_issues(sample_project)
    cols = ["item_id", "given_label", "suggested_label", "label_quality", "is_issue",
            "model_quality", "model_issue", "annotator_agreement", "consensus_label",
            "annotator_issue", "rank"]
    assert set(cols) <= set(issues.columns)
    assert issues["annotator_agreement"].between(0, 1).all()
    assert (issues["is_issue"] == (issues["model_issue"] | issues["annotator_issue"])).all()
    # an item whose annotators all reject the given label scores lower than the model alone
    rejected = issues[issues["annotator_agreement"] == 0]
    assert (rejected["label_quality"] <= rejected["model_quality"]).all()


def test_frame_forms_agree():
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    n = 300
    truth = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 3 * np.eye(3)[truth]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    given = truth.copy()
    flip = rng.choice(n, 15, replace=False)
    given[flip] = (given[flip] + 1) % 3
    ids = np.array([f"i{i}" for i in range(n)])
    labels = pd.Series(np.asarray(classes)[given], index=ids)
    a = find_label_issues_frame(labels, (ids, probs), classes=classes)
    frame = pd.DataFrame(probs, index=ids, columns=[f"prob_{c}" for c in classes])
    b = find_label_issues_frame(labels.rename_axis("item_id").reset_index(name="label"), frame)
    pd.testing.assert_frame_equal(a, b)
    assert len(set(a["item_id"].head(15)) & set(ids[flip])) >= 10


def test_bad_inputs():
    ids = np.array(["x", "y", "z"])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    labels = pd.Series(["a", "b", "q"], index=ids)
    with pytest.raises(SchemaError, match=r"\['q'\] which are not in classes"):
        find_label_issues_frame(labels, (ids, probs), classes=["a", "b"])
    ok = pd.Series(["a", "b", "a"], index=ids)
    with pytest.raises(ValueError, match="'filter_by' parameter of find_label_issues_frame"):
        find_label_issues_frame(ok, (ids, probs), classes=["a", "b"], filter_by="magic")
    with pytest.raises(SchemaError, match="sum to 1"):
        find_label_issues_frame(ok, (ids, probs * 2), classes=["a", "b"])
    with pytest.raises(SchemaError, match="no row for any labelled item"):
        find_label_issues_frame(ok, (np.array(["p", "q", "r"]), probs), classes=["a", "b"])
    with pytest.raises(TypeError, match="'labels' parameter"):
        find_label_issues_frame(["a", "b"], (ids, probs), classes=["a", "b"])
    with pytest.warns(UserWarning, match="1 labelled item"):
        out = find_label_issues_frame(ok, (ids[:2], probs[:2]), classes=["a", "b"])
    assert set(out["item_id"]) == {"x", "y"}


def test_project_without_probabilities(sample_project):
    no_probs = sample_project.predictions.drop(columns=sample_project.prob_columns)
    project = wb.Project.from_frames(items=sample_project.items,
                                     annotations=sample_project.annotations,
                                     predictions=no_probs, classes=sample_project.classes)
    with pytest.raises(SchemaError, match="no probability columns"):
        wb.label_issues(project)


def test_integer_class_columns_and_labels():
    ids = np.array(["x", "y", "z", "w"])
    probs = pd.DataFrame([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]], index=ids,
                         columns=[0, 1])
    labels = pd.Series([0, 1, 1, 1], index=ids)  # integers are compared as strings
    out = find_label_issues_frame(labels, probs)
    assert out["item_id"].iloc[0] == "z" and out["given_label"].iloc[0] == "1"
    assert out["suggested_label"].iloc[0] == "0"


def _reference_mix(project, weight=1.0, quality_method="self_confidence"):
    """The annotator mix of the module docstring, on whole arrays (the pre-block code)."""
    from cleanlab.rank import get_label_quality_scores

    labels = project.reference_labels().dropna()
    ids, probs = project.pred_probs()
    probs = pd.DataFrame(probs, index=ids).reindex(labels.index).to_numpy()
    classes = project.classes
    given = pd.Index(classes).get_indexer(labels.to_numpy())
    quality = get_label_quality_scores(given, probs, method=quality_method)
    ann = project.annotations
    counts = pd.crosstab(ann["item_id"], pd.Categorical(ann["label"], categories=classes),
                         dropna=False).reindex(labels.index).fillna(0).to_numpy(float)
    n = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / n[:, None]
        agreement = np.where(n > 0, counts[np.arange(len(n)), given] / n, np.nan)
    wn = weight * n
    mixed = (probs + wn[:, None] * np.nan_to_num(shares)) / (1 + wn)[:, None]
    return pd.DataFrame({
        "item_id": labels.index.astype(str),
        "suggested_label": np.asarray(classes, dtype=object)[mixed.argmax(axis=1)],
        "label_quality": (quality + wn * np.nan_to_num(agreement)) / (1 + wn),
        "annotator_agreement": agreement,
        "n_labels": n.astype(np.int64),
    }).set_index("item_id")


@pytest.mark.parametrize("rows", [7, 1_000, 1 << 20])
@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_annotator_mix_in_blocks_gives_the_whole_array_numbers(sample_project, monkeypatch,
                                                               rows, weight):
    from workbench import label_quality

    monkeypatch.setattr(label_quality, "_MIX_ROWS", rows)
    got = wb.label_issues(sample_project, annotator_weight=weight).set_index("item_id")
    expected = _reference_mix(sample_project, weight)
    got = got.reindex(expected.index)
    np.testing.assert_array_equal(got["label_quality"].to_numpy(),
                                  expected["label_quality"].to_numpy())
    np.testing.assert_array_equal(got["annotator_agreement"].to_numpy(),
                                  expected["annotator_agreement"].to_numpy())
    assert (got["n_labels"].to_numpy() == expected["n_labels"].to_numpy()).all()
    assert (got["suggested_label"].astype(str).to_numpy()
            == expected["suggested_label"].astype(str).to_numpy()).all()


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin",
                                    "confidence_weighted_entropy"])
def test_model_quality_is_cleanlabs_label_quality_score(sample_project, method):
    from cleanlab.rank import get_label_quality_scores

    got = wb.label_issues(sample_project, quality_method=method, use_annotations=False)
    labels = sample_project.reference_labels().dropna()
    ids, probs = sample_project.pred_probs()
    probs = pd.DataFrame(probs, index=ids).reindex(labels.index).to_numpy()
    given = pd.Index(sample_project.classes).get_indexer(labels.to_numpy())
    expected = pd.Series(get_label_quality_scores(given, probs, method=method),
                         index=labels.index.astype(str))
    got = got.set_index("item_id")["model_quality"].reindex(expected.index)
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
