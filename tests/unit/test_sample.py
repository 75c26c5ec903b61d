"""The sample project: deterministic rebuild, and the planted problems are really there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench.project import open_project
from workbench.sample import (
    DEGRADED_SCANNER,
    NOISY_VENDOR_BATCH,
    SAMPLE_DIR,
    VENDORS,
    _items,
    _labels,
    _render_images,
    _round_probs,
    build_sample,
    load_sample,
)

EXACT_FILES = ["items.csv", "annotations.csv", "truth.csv", "workbench.toml", "README.md"]
N_ITEMS = 1797


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    return build_sample(tmp_path_factory.mktemp("sample") / "digits")


@pytest.fixture(scope="module")
def frames():
    read = {"dtype": str, "keep_default_na": False}
    items = pd.read_csv(SAMPLE_DIR / "items.csv", **read)
    annotations = pd.read_csv(SAMPLE_DIR / "annotations.csv", **read)
    predictions = pd.read_csv(SAMPLE_DIR / "predictions.csv",
                              dtype={"item_id": str, "run": str, "label": str})
    truth = pd.read_csv(SAMPLE_DIR / "truth.csv", dtype={"item_id": str, "true_label": str})
    return items, annotations, predictions, truth


def test_build_returns_path_with_all_files(rebuilt):
    names = {p.name for p in rebuilt.iterdir()}
    assert {"items.csv", "annotations.csv", "predictions.csv", "truth.csv", "workbench.toml",
            "README.md", "images"} <= names
    assert len(list((rebuilt / "images").glob("digit-*.png"))) == N_ITEMS


@pytest.mark.parametrize("name", EXACT_FILES)
def test_rebuild_matches_committed_files_byte_for_byte(rebuilt, name):
    assert (rebuilt / name).read_bytes() == (SAMPLE_DIR / name).read_bytes()


def test_rebuild_matches_committed_predictions(rebuilt):
    # Same machine: byte-identical. Across CPUs, BLAS kernels may move the 6th decimal of
    # the logistic regression, so compare numbers with a tolerance and labels exactly
    # wherever the top two probabilities are not tied at that precision.
    new = pd.read_csv(rebuilt / "predictions.csv", dtype={"item_id": str, "run": str, "label": str})
    old = pd.read_csv(SAMPLE_DIR / "predictions.csv",
                      dtype={"item_id": str, "run": str, "label": str})
    assert list(new.columns) == list(old.columns)
    pd.testing.assert_frame_equal(new[["item_id", "run"]], old[["item_id", "run"]])
    probs = [c for c in old.columns if c.startswith("prob_") or c == "confidence"]
    np.testing.assert_allclose(new[probs].to_numpy(), old[probs].to_numpy(), rtol=0, atol=1e-5)
    top2 = np.sort(old[[c for c in probs if c != "confidence"]].to_numpy(), axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-5
    assert (new["label"].to_numpy()[clear] == old["label"].to_numpy()[clear]).all()


@pytest.mark.parametrize("item_id", ["digit-0000", "digit-0002", "digit-0900", "digit-1796"])
def test_rebuild_gives_identical_image_bytes(rebuilt, item_id):
    new = (rebuilt / "images" / f"{item_id}.png").read_bytes()
    assert new == (SAMPLE_DIR / "images" / f"{item_id}.png").read_bytes()


def test_images_are_64px_grayscale_pngs():
    with Image.open(SAMPLE_DIR / "images" / "digit-0005.png") as img:
        assert (img.format, img.mode, img.size) == ("PNG", "L", (64, 64))
        pixels = np.asarray(img)
    assert pixels.min() < 60 and pixels.max() > 200  # dark ink on a light background


def test_only_the_degraded_scanner_images_differ_from_a_clean_rendering(frames):
    from sklearn.datasets import load_digits

    items = frames[0]
    clean = _render_images(load_digits().images, np.zeros(N_ITEMS, dtype=bool), seed=0)
    for scanner, group in items.groupby("scanner"):
        for i in group.index[:25]:
            with Image.open(SAMPLE_DIR / items.at[i, "filepath"]) as img:
                diff = np.abs(np.asarray(img, dtype=float) - clean[i]).mean()
            if scanner == DEGRADED_SCANNER:
                assert diff > 15, (scanner, i, diff)  # blur, noise and low contrast
            else:
                assert diff == 0, (scanner, i, diff)


def test_sample_opens_with_open_project():
    project = open_project(SAMPLE_DIR)
    assert project.name == "digits-sample"
    assert project.classes == [str(k) for k in range(10)]
    assert project.runs == ["baseline", "candidate"]
    assert project.default_run == "candidate"
    assert len(project.items) == N_ITEMS
    assert len(project.annotations) == 3 * N_ITEMS
    assert len(project.predictions) == 2 * N_ITEMS
    assert {"scanner", "vendor", "batch", "batch_date", "split"} <= set(project.metadata_columns)
    assert "true_label" not in project.items.columns  # truth.csv is not part of the project
    assert project.prob_columns == [f"prob_{k}" for k in range(10)]
    assert project.media_path("digit-0001") == (SAMPLE_DIR / "images" / "digit-0001.png").resolve()
    assert str(project.annotations["annotated_at"].dtype).startswith("datetime64")


def test_load_sample_is_the_committed_sample():
    project = load_sample()
    assert project.root == SAMPLE_DIR.resolve()
    assert project.items["item_id"].iloc[-1] == "digit-1796"


def test_item_ids_and_metadata(frames):
    items = frames[0]
    assert items["item_id"].tolist() == [f"digit-{i:04d}" for i in range(N_ITEMS)]
    assert (items["filepath"] == "images/" + items["item_id"] + ".png").all()
    assert sorted(items["scanner"].unique()) == ["scanner-a", "scanner-b", "scanner-c"]
    assert sorted(items["vendor"].unique()) == sorted(VENDORS)
    assert sorted(items["batch"].unique()) == [f"2026-W{w:02d}" for w in range(1, 7)]
    assert items.groupby("batch")["batch_date"].nunique().eq(1).all()
    dates = pd.to_datetime(items["batch_date"])
    assert (dates.dt.dayofweek == 0).all()  # batches start on Mondays
    assert set(items["split"]) == {"train", "val", "test"}


def _errors(frames):
    items, _, predictions, _ = frames
    merged = predictions.merge(items[["item_id", "label", "scanner"]], on="item_id",
                               suffixes=("_pred", ""))
    merged["error"] = merged["label_pred"] != merged["label"]
    return merged


@pytest.mark.parametrize("run", ["baseline", "candidate"])
def test_degraded_scanner_error_rate_is_at_least_twice_the_others(frames, run):
    merged = _errors(frames)
    rates = merged[merged["run"] == run].groupby("scanner")["error"].mean()
    others = rates.drop(DEGRADED_SCANNER)
    assert rates[DEGRADED_SCANNER] >= 2 * others.max()
    assert rates.idxmax() == DEGRADED_SCANNER


def test_candidate_beats_baseline(frames):
    rates = _errors(frames).groupby("run")["error"].mean()
    assert rates["candidate"] < rates["baseline"]
    assert 0.03 < rates["candidate"] < 0.15


def test_about_three_percent_label_errors(frames):
    items, _, _, truth = frames
    assert truth["item_id"].tolist() == items["item_id"].tolist()
    wrong = items["label"].to_numpy() != truth["true_label"].to_numpy()
    assert wrong.sum() == round(0.03 * N_ITEMS) == 54
    assert (truth["is_label_error"].to_numpy() == wrong).all()


def test_six_annotators_three_distinct_labels_per_item(frames):
    items, annotations, _, _ = frames
    assert annotations["annotator"].nunique() == 6
    per_item = annotations.groupby("item_id")["annotator"].agg(["size", "nunique"])
    assert (per_item["size"] == 3).all() and (per_item["nunique"] == 3).all()
    assert set(per_item.index) == set(items["item_id"])
    # two labels from the item's own vendor, one cross-check from the other
    vendor_of = {a: v for v, names in VENDORS.items() for a in names}
    merged = annotations.merge(items[["item_id", "vendor"]], on="item_id")
    own = (merged["annotator"].map(vendor_of) == merged["vendor"]).groupby(merged["item_id"]).sum()
    assert (own == 2).all()
    assert annotations["annotated_at"].str.endswith("Z").all()
    merged["when"] = pd.to_datetime(merged["annotated_at"])
    merged["own"] = merged["annotator"].map(vendor_of) == merged["vendor"]
    last_own = merged[merged["own"]].groupby("item_id")["when"].max()
    check = merged[~merged["own"]].set_index("item_id")["when"]
    lag = (check - last_own.reindex(check.index)).dt.total_seconds() / 86400
    assert (lag > 0).all() and (lag < 4).all()  # the cross-check comes 1 to 3 days later
    merged = merged.merge(items[["item_id", "batch_date"]], on="item_id", suffixes=("", "_b"))
    since = (merged["when"].dt.tz_localize(None) - pd.to_datetime(merged["batch_date"])).dt.days
    assert since.between(0, 6).all()  # within the batch's week


def _annotator_frame(frames):
    items, annotations, _, truth = frames
    merged = annotations.merge(truth, on="item_id").merge(items[["item_id", "batch"]],
                                                          on="item_id")
    merged["correct"] = merged["label"] == merged["true_label"]
    return merged


def test_annotator_accuracy_ordering(frames):
    acc = _annotator_frame(frames).groupby("annotator")["correct"].mean()
    assert acc.idxmin() == "eli"  # the careless one is the worst
    assert acc["eli"] < 0.88
    assert min(acc["ana"], acc["ben"]) > 0.97  # the accurate ones
    assert acc["fay"] > max(acc["cho"], acc["dev"])
    vendor_of = {a: v for v, names in VENDORS.items() for a in names}
    by_vendor = _annotator_frame(frames).assign(
        label_vendor=lambda f: f["annotator"].map(vendor_of)).groupby("label_vendor")["correct"]
    assert by_vendor.mean()["quicklabel"] < by_vendor.mean()["northstar"] - 0.03


@pytest.mark.parametrize(("annotator", "true", "given"),
                         [("cho", "1", "7"), ("cho", "7", "1"),
                          ("dev", "4", "9"), ("dev", "9", "4")])
def test_annotators_have_their_own_confusions(frames, annotator, true, given):
    merged = _annotator_frame(frames)
    on_digit = merged[merged["true_label"] == true]
    rate = (on_digit["label"] == given).groupby(on_digit["annotator"]).mean()
    assert rate[annotator] > 0.15
    assert rate[annotator] > 2 * rate.drop(annotator).max()


def test_planted_vendor_batch_interaction(frames):
    vendor, batch = NOISY_VENDOR_BATCH
    vendor_of = {a: v for v, names in VENDORS.items() for a in names}
    merged = _annotator_frame(frames)
    theirs = merged[merged["annotator"].map(vendor_of) == vendor]
    acc = theirs.groupby("batch")["correct"].mean()
    assert acc.idxmin() == batch
    assert acc[batch] < acc.drop(batch).min() - 0.08


def test_probabilities_are_consistent(frames):
    predictions = frames[2]
    probs = predictions[[f"prob_{k}" for k in range(10)]].to_numpy()
    assert np.abs(probs.sum(axis=1) - 1).max() <= 1e-6
    assert (probs >= 0).all()
    assert (predictions["label"].to_numpy() == probs.argmax(axis=1).astype(str)).all()
    np.testing.assert_array_equal(predictions["confidence"].to_numpy(), probs.max(axis=1))
    assert (np.round(probs, 6) == probs).all()


def test_round_probs_keeps_rows_summing_to_one():
    rng = np.random.default_rng(3)
    raw = rng.dirichlet(np.full(10, 0.3), size=500)
    out = _round_probs(raw)
    assert np.abs(out.sum(axis=1) - 1).max() <= 1e-9
    assert np.abs(out - raw).max() < 1e-5
    assert (out.argmax(axis=1) == raw.argmax(axis=1)).all()


def test_seed_changes_the_draws_and_is_deterministic():
    a0, a1, b0 = _items(200, 0), _items(200, 0), _items(200, 1)
    pd.testing.assert_frame_equal(a0, a1)
    assert not a0["scanner"].equals(b0["scanner"])
    truth = np.arange(200) % 10
    l0, e0 = _labels(truth, 0)
    l1, e1 = _labels(truth, 1)
    assert e0.sum() == e1.sum() == 6
    assert not np.array_equal(e0, e1)


def test_build_sample_parameter_errors(tmp_path):
    with pytest.raises(TypeError, match="'directory' parameter of build_sample"):
        build_sample(123)
    with pytest.raises(ValueError, match="'seed' parameter of build_sample"):
        build_sample(tmp_path, seed=-1)
    with pytest.raises(TypeError, match="'seed' parameter of build_sample"):
        build_sample(tmp_path, seed=1.5)
