"""The detection sample: deterministic rebuild, and the planted problems are really there.

Every number is computed here from the committed files (``data/sample-detection``), the
detector's quality with pycocotools' ``COCOeval`` as the reference.
"""

from __future__ import annotations

import contextlib
import io
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench.detection.sample import (
    CAMERAS,
    CLASSES,
    CLUTTERED_SITE,
    DETECTION_SAMPLE_DIR,
    EMBEDDING_DIM,
    FAULT_RATES,
    HEIGHT,
    N_IMAGES,
    SITES,
    WEAK_CAMERA,
    WIDTH,
    _iou,
    build_detection_sample,
)

ROOT = DETECTION_SAMPLE_DIR
FILES = ["workbench.toml", "items.csv", "boxes.csv", "annotations.csv", "predictions.csv",
         "truth_boxes.csv", "README.md"]
RUNS = ["baseline", "candidate"]


def _read(root):
    ids = {"item_id": str, "label": str, "box_id": str, "true_id": str, "run": str,
           "annotator": str}
    items = pd.read_csv(root / "items.csv", dtype=str, keep_default_na=False)
    boxes = pd.read_csv(root / "boxes.csv", dtype=ids)
    annotations = pd.read_csv(root / "annotations.csv", dtype=ids)
    predictions = pd.read_csv(root / "predictions.csv", dtype=ids)
    truth = pd.read_csv(root / "truth_boxes.csv", dtype=ids, keep_default_na=False)
    assert truth["occluded"].dtype == bool and boxes["occluded"].dtype == bool
    return items, boxes, annotations, predictions, truth


@pytest.fixture(scope="module")
def frames():
    return _read(ROOT)


# --------------------------------------------------------------------------- COCOeval


def _coco_eval(items, boxes, predictions, run):
    """pycocotools' COCOeval (bbox) of one run against the dataset's boxes."""
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    image_id = {item: k + 1 for k, item in enumerate(items["item_id"])}
    gt = coco.COCO()
    gt.dataset = {
        "images": [{"id": image_id[i], "width": WIDTH, "height": HEIGHT}
                   for i in items["item_id"]],
        "categories": [{"id": int(c) + 1, "name": c} for c in CLASSES],
        "annotations": [
            {"id": k + 1, "image_id": image_id[r.item_id], "category_id": int(r.label) + 1,
             "bbox": [r.x, r.y, r.w, r.h], "area": r.w * r.h, "iscrowd": int(r.iscrowd)}
            for k, r in enumerate(boxes.itertuples())],
    }
    det = predictions[predictions["run"] == run]
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([
            {"image_id": image_id[r.item_id], "category_id": int(r.label) + 1,
             "bbox": [r.x, r.y, r.w, r.h], "score": r.confidence} for r in det.itertuples()])
        ev = cocoeval.COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    return ev


def _ap50(ev) -> float:
    p = ev.eval["precision"][0, :, :, 0, 2]  # IoU 0.5, all recall points, classes, area all
    valid = p[0] > -1
    return float(p[:, valid].mean())


def _recall50(ev) -> float:
    """Share of reference boxes found at IoU 0.5 (pooled over classes, area 'all')."""
    found = total = 0
    for e in ev.evalImgs:
        if e is None or e["aRng"] != ev.params.areaRng[0]:
            continue
        found += int((e["gtMatches"][0] > 0).sum())
        total += len(e["gtIds"])
    return found / total


def _confident_fp(ev, threshold=0.5) -> int:
    """Detections with confidence >= threshold not matched at IoU 0.5."""
    n = 0
    for e in ev.evalImgs:
        if e is None or e["aRng"] != ev.params.areaRng[0]:
            continue
        scores = np.asarray(e["dtScores"])
        n += int(((e["dtMatches"][0] == 0) & (scores >= threshold)).sum())
    return n


@pytest.fixture(scope="module")
def evals(frames):
    items, boxes, _, predictions, _ = frames
    return {run: _coco_eval(items, boxes, predictions, run) for run in RUNS}


def _subset(frames, column, value):
    items, boxes, _, predictions, _ = frames
    ids = set(items.loc[items[column] == value, "item_id"])
    return (items[items["item_id"].isin(ids)], boxes[boxes["item_id"].isin(ids)],
            predictions[predictions["item_id"].isin(ids)])


# --------------------------------------------------------------------------- files


def test_committed_sample_has_every_file_and_image(frames):
    items = frames[0]
    assert {p.name for p in ROOT.iterdir()} >= set(FILES) | {"images"}
    assert len(items) == N_IMAGES
    assert sorted(p.name for p in (ROOT / "images").glob("*.png")) == sorted(
        f"{i}.png" for i in items["item_id"])
    assert (items["filepath"] == "images/" + items["item_id"] + ".png").all()
    with Image.open(ROOT / items["filepath"].iloc[0]) as img:
        assert (img.format, img.mode, img.size) == ("PNG", "L", (WIDTH, HEIGHT))


def test_committed_sample_stays_small():
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 15 * 2**20


def test_committed_sample_ships_the_detectors_embeddings(frames):
    import workbench as wb

    items = frames[0]
    emb = pd.read_parquet(ROOT / "embeddings.parquet")
    assert list(emb.columns) == ["item_id"] + [f"e{k}" for k in range(EMBEDDING_DIM)]
    assert emb["item_id"].tolist() == items["item_id"].tolist()
    X = emb.drop(columns="item_id").to_numpy()
    assert X.dtype == np.float32 and np.isfinite(X).all()
    assert (X >= 0).all() and (X.std(axis=0) > 0).all()  # pooled ReLU units, none dead
    project = wb.open_project(ROOT)  # validated like any project's embeddings
    assert project.has_embeddings
    ids, M = project.embedding_matrix()
    assert M.shape == (N_IMAGES, EMBEDDING_DIM) and list(ids) == items["item_id"].tolist()


def test_embeddings_see_the_scene_not_the_control(frames):
    """Each scene's 5 nearest scenes share its light, camera and number of objects far more
    often than chance; its capture week (a control with no effect on the images) at chance."""
    from sklearn.neighbors import NearestNeighbors

    items, boxes = frames[0], frames[1]
    X = pd.read_parquet(ROOT / "embeddings.parquet").drop(columns="item_id").to_numpy()
    near = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X, return_distance=False)[:, 1:]

    def same(col):
        v = items[col].to_numpy()
        chance = float((items[col].value_counts(normalize=True) ** 2).sum())
        return float((v[near] == v[:, None]).mean()), chance

    for col, lift in (("time_of_day", 0.15), ("camera", 0.10), ("site", 0.05)):
        share, chance = same(col)
        assert share > chance + lift, (col, share, chance)
    share, chance = same("capture_week")
    assert share < chance + 0.05, (share, chance)
    n = boxes.groupby("item_id").size().reindex(items["item_id"], fill_value=0).to_numpy()
    assert np.corrcoef(n, n[near].mean(axis=1))[0, 1] > 0.4


def test_workbench_toml_declares_a_detection_project():
    toml = tomllib.loads((ROOT / "workbench.toml").read_text("utf-8"))
    assert toml["task"] == "detection"
    assert toml["classes"] == CLASSES
    assert toml["name"] == "digits-detection-sample"


def test_items_metadata(frames):
    items = frames[0]
    assert list(items.columns) == ["item_id", "filepath", "width", "height", "camera", "site",
                                   "time_of_day", "capture_week"]
    assert items["item_id"].is_unique
    assert set(items["width"]) == {str(WIDTH)} and set(items["height"]) == {str(HEIGHT)}
    assert set(items["camera"]) == set(CAMERAS)
    assert set(items["site"]) == set(SITES)
    assert set(items["time_of_day"]) == {"day", "night"}
    assert 0.2 < (items["time_of_day"] == "night").mean() < 0.4
    assert items["capture_week"].str.fullmatch(r"2026-W(1[4-9])").all()
    assert items["camera"].value_counts().min() > 150


def test_boxes_follow_the_project_format(frames):
    items, boxes, *_ = frames
    assert list(boxes.columns) == ["item_id", "label", "x", "y", "w", "h", "box_id", "iscrowd",
                                   "occluded"]
    assert boxes["item_id"].isin(items["item_id"]).all()
    assert boxes["label"].isin(CLASSES).all()
    assert (boxes[["w", "h"]] > 0).all().all()
    assert (boxes["x"] >= 0).all() and (boxes["y"] >= 0).all()
    assert (boxes["x"] + boxes["w"] <= WIDTH).all() and (boxes["y"] + boxes["h"] <= HEIGHT).all()
    k = boxes.groupby("item_id").cumcount().astype(str)
    assert (boxes["box_id"] == boxes["item_id"] + "/b" + k).all()  # = the generated ids
    assert not boxes["iscrowd"].any()
    per_image = boxes.groupby("item_id").size().reindex(items["item_id"], fill_value=0)
    assert per_image.max() <= 6
    assert (per_image == 0).sum() >= 30  # negative images
    area = boxes["w"] * boxes["h"]
    assert (area < 32**2).mean() > 0.5 and (area >= 32**2).sum() > 200  # small and medium


def test_planted_faults(frames):
    _, boxes, _, _, truth = frames
    share = (truth["fault"] != "").mean()
    assert 0.03 <= share <= 0.05
    counts = truth["fault"].value_counts()
    for fault, rate in FAULT_RATES.items():
        assert counts[fault] == round(rate * len(truth))
    missed = truth["fault"] == "missed"
    assert (truth.loc[missed, "box_id"] == "").all()
    assert len(boxes) == len(truth) - missed.sum()
    kept = truth[~missed].merge(boxes, on="box_id", suffixes=("_true", ""))
    assert len(kept) == len(boxes)
    xywh = ["x", "y", "w", "h"]
    iou = np.diag(_iou(kept[[c + "_true" for c in xywh]].to_numpy(float),
                       kept[xywh].to_numpy(float)))
    fault = kept["fault"].to_numpy()
    assert np.all((iou[fault == "loose"] >= 0.4) & (iou[fault == "loose"] <= 0.7))
    assert np.all(iou[fault != "loose"] == 1.0)
    wrong = fault == "wrong_class"
    assert (kept["label_true"].to_numpy()[wrong] != kept["label"].to_numpy()[wrong]).all()
    assert (kept["label_true"].to_numpy()[~wrong] == kept["label"].to_numpy()[~wrong]).all()
    assert (kept["occluded_true"] == kept["occluded"]).all()
    assert kept["occluded"].sum() > 50


def test_annotators_make_their_own_mistakes(frames):
    _, _, annotations, _, truth = frames
    assert list(annotations.columns) == ["item_id", "annotator", "label", "x", "y", "w", "h",
                                         "annotated_at"]
    assert set(annotations["annotator"]) == {"ana", "ben", "dev"}
    assert (annotations[["w", "h"]] > 0).all().all()
    assert (annotations["x"] + annotations["w"] <= WIDTH).all()
    assert pd.to_datetime(annotations["annotated_at"], format="%Y-%m-%dT%H:%M:%SZ").notna().all()

    def best(annotator):
        """Per true box: the annotator's best IoU and the label of that box (or NaN/None)."""
        a = annotations[annotations["annotator"] == annotator]
        out_iou, out_label = [], []
        mine = a.groupby("item_id").indices
        for item, t in truth.groupby("item_id", sort=False):
            rows = a.iloc[mine.get(item, [])]
            if not len(rows):
                out_iou += [0.0] * len(t)
                out_label += [None] * len(t)
                continue
            o = _iou(t[["x", "y", "w", "h"]].to_numpy(float),
                     rows[["x", "y", "w", "h"]].to_numpy(float))
            out_iou += list(o.max(axis=1))
            out_label += list(rows["label"].to_numpy()[o.argmax(axis=1)])
        order = truth.groupby("item_id", sort=False).indices
        index = np.concatenate(list(order.values()))
        iou, label = np.empty(len(truth)), np.empty(len(truth), dtype=object)
        iou[index], label[index] = out_iou, out_label
        return iou, label

    small = truth["h"].to_numpy() < 20
    true = truth["label"].to_numpy()
    stats = {}
    for name in ["ana", "ben", "dev"]:
        iou, label = best(name)
        drawn = iou >= 0.3
        stats[name] = {
            "small_drawn": drawn[small].mean(),
            "tight": (iou[drawn] >= 0.7).mean(),
            "swap": np.mean(label[drawn & (true == "1")] == "7"),
        }
    assert stats["ana"]["small_drawn"] < 0.7 < min(stats["ben"]["small_drawn"],
                                                     stats["dev"]["small_drawn"])
    assert stats["ben"]["tight"] < 0.7 < min(stats["ana"]["tight"], stats["dev"]["tight"])
    assert stats["dev"]["swap"] > 0.15 > max(stats["ana"]["swap"], stats["ben"]["swap"])


def test_predictions_follow_the_project_format(frames):
    items, _, _, predictions, _ = frames
    prob = [f"prob_{c}" for c in CLASSES]
    assert list(predictions.columns) == ["item_id", "run", "label", "x", "y", "w", "h",
                                         "confidence", *prob]
    assert list(dict.fromkeys(predictions["run"])) == RUNS
    assert predictions["item_id"].isin(items["item_id"]).all()
    assert predictions["confidence"].between(0, 1).all()
    assert (predictions[["w", "h"]] > 0).all().all()
    assert (predictions["x"] + predictions["w"] <= WIDTH + 0.01).all()
    assert (predictions["y"] + predictions["h"] <= HEIGHT + 0.01).all()
    probs = predictions[prob].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (np.asarray(CLASSES)[probs.argmax(axis=1)] == predictions["label"]).all()
    assert predictions.groupby(["run", "item_id"]).size().max() <= 12


# --------------------------------------------------------------------------- the detector


def test_detector_detects_and_candidate_is_stronger(evals):
    ap = {run: _ap50(ev) for run, ev in evals.items()}
    assert ap["baseline"] > 0.25
    assert ap["candidate"] > ap["baseline"] + 0.1
    coco_ap = {run: ev.eval["precision"][:, :, :, 0, 2] for run, ev in evals.items()}
    ap_5095 = {run: p[:, :, p[0, 0] > -1].mean() for run, p in coco_ap.items()}
    assert ap_5095["candidate"] > ap_5095["baseline"] > 0.05


def test_readme_numbers_are_cocoeval_numbers(evals):
    """The README's AP table (written by the build) agrees with pycocotools."""
    readme = (ROOT / "README.md").read_text("utf-8")
    for run, ev in evals.items():
        row = re.search(rf"^\| {run} \| ([\d.]+)% \| ([\d.]+)% \|", readme, re.M)
        assert row, f"no AP row for {run} in the README"
        assert float(row.group(1)) == pytest.approx(100 * _ap50(ev), abs=0.051)
        p = ev.eval["precision"][:, :, :, 0, 2]
        assert float(row.group(2)) == pytest.approx(100 * p[:, :, p[0, 0] > -1].mean(),
                                                    abs=0.051)


@pytest.mark.parametrize("run", RUNS)
def test_weak_camera_misses_more(frames, run):
    recall, ap = {}, {}
    for camera in CAMERAS:
        ev = _coco_eval(*_subset(frames, "camera", camera), run)
        recall[camera], ap[camera] = _recall50(ev), _ap50(ev)
    others = [c for c in CAMERAS if c != WEAK_CAMERA]
    assert recall[WEAK_CAMERA] < min(recall[c] for c in others) - 0.08
    assert ap[WEAK_CAMERA] < min(ap[c] for c in others) - 0.1


def test_night_and_occlusion_hurt_recall(frames, evals):
    items, boxes, _, predictions, _ = frames
    night = _recall50(_coco_eval(*_subset(frames, "time_of_day", "night"), "candidate"))
    day = _recall50(_coco_eval(*_subset(frames, "time_of_day", "day"), "candidate"))
    assert night < day - 0.02
    ev = evals["candidate"]
    found = {}
    for e in ev.evalImgs:
        if e is not None and e["aRng"] == ev.params.areaRng[0]:
            found.update(zip(e["gtIds"], e["gtMatches"][0] > 0, strict=True))
    hit = np.array([found[k + 1] for k in range(len(boxes))])
    occluded = boxes["occluded"].to_numpy()
    assert occluded.sum() > 50
    assert hit[occluded].mean() < hit[~occluded].mean() - 0.1


def test_cluttered_site_draws_confident_false_detections(frames):
    rate = {}
    for site in SITES:
        sub = _subset(frames, "site", site)
        rate[site] = _confident_fp(_coco_eval(*sub, "candidate")) / len(sub[0])
    others = [s for s in SITES if s != CLUTTERED_SITE]
    assert rate[CLUTTERED_SITE] > 1.5 * max(rate[s] for s in others)


def test_confidence_is_calibrated(frames, evals):
    """Confidence ~ the chance that a detection is correct (matched at IoU 0.5)."""
    for run, ev in evals.items():
        conf, correct = [], []
        for e in ev.evalImgs:
            if e is not None and e["aRng"] == ev.params.areaRng[0]:
                conf += list(e["dtScores"])
                correct += list(e["dtMatches"][0] > 0)
        conf, correct = np.asarray(conf), np.asarray(correct)
        assert len(conf) == (frames[3]["run"] == run).sum()
        assert abs(conf.mean() - correct.mean()) < 0.03
        for lo, hi in [(0.0, 0.25), (0.5, 1.01)]:
            m = (conf >= lo) & (conf < hi)
            assert abs(conf[m].mean() - correct[m].mean()) < 0.1


# --------------------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def small_builds(tmp_path_factory):
    base = tmp_path_factory.mktemp("detection-sample")
    return [build_detection_sample(base / name, n_images=36) for name in ("a", "b")]


def test_build_is_deterministic(small_builds):
    a, b = small_builds
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert len([n for n in names if n.startswith("images/")]) == 36
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_small_build_is_a_complete_project(small_builds):
    items, boxes, annotations, predictions, truth = _read(small_builds[0])
    assert len(items) == 36
    assert set(predictions["run"]) == set(RUNS)
    emb = pd.read_parquet(small_builds[0] / "embeddings.parquet")
    assert emb.shape == (36, 1 + EMBEDDING_DIM) and emb["item_id"].tolist() == items[
        "item_id"].tolist()
    assert len(boxes) == (truth["box_id"] != "").sum()
    assert "a reduced build: 36 scenes" in (small_builds[0] / "README.md").read_text("utf-8")


def test_seed_changes_the_scenes(tmp_path, small_builds):
    other = build_detection_sample(tmp_path / "seed1", seed=1, n_images=36)
    assert (other / "boxes.csv").read_bytes() != (small_builds[0] / "boxes.csv").read_bytes()


def test_build_parameter_errors(tmp_path):
    with pytest.raises(ValueError, match=r"'n_images' parameter of build_detection_sample"):
        build_detection_sample(tmp_path, n_images=5)
    with pytest.raises(ValueError, match=r"'seed' parameter of build_detection_sample"):
        build_detection_sample(tmp_path, seed=-1)
    with pytest.raises(TypeError, match=r"'directory' parameter of build_detection_sample"):
        build_detection_sample(3)


def test_cli_sample_task_option(tmp_path, monkeypatch):
    from workbench import cli
    from workbench import sample as classification_sample
    from workbench.detection import sample as detection_sample

    calls = []
    monkeypatch.setattr(detection_sample, "build_detection_sample",
                        lambda d, seed: calls.append(("detection", d, seed)) or d)
    monkeypatch.setattr(classification_sample, "build_sample",
                        lambda d, seed: calls.append(("classification", d, seed)) or d)
    assert cli.main(["sample", "--task", "detection", str(tmp_path / "d"), "--seed", "3"]) == 0
    assert cli.main(["sample", str(tmp_path / "c")]) == 0
    assert calls == [("detection", tmp_path / "d", 3), ("classification", tmp_path / "c", 0)]
    with pytest.raises(SystemExit):
        cli.main(["sample", "--task", "segmentation", str(tmp_path)])


@pytest.mark.slow
def test_committed_sample_matches_a_full_rebuild(tmp_path):
    """The committed folder is what the code builds.

    The scenes, boxes, annotations and images are equal byte for byte. What the trained
    detectors give (predictions, embeddings and the figures the README quotes) is equal on
    the machine that built the sample, and close on another: training the detectors runs
    through BLAS, whose kernels differ between CPUs (AVX2, AVX-512) in the last bits, and a
    few thousand training steps carry that into the weights.
    """
    new = build_detection_sample(tmp_path / "full")
    for name in FILES:
        if name not in ("predictions.csv", "README.md"):
            assert (new / name).read_bytes() == (ROOT / name).read_bytes(), name
    text = [re.sub(r"\d[\d,.]*", "#", (r / "README.md").read_text()) for r in (new, ROOT)]
    assert text[0] == text[1]  # the same README but for its figures
    images = sorted(p.name for p in (ROOT / "images").iterdir())
    assert images == sorted(p.name for p in (new / "images").iterdir())
    for name in images:
        assert (new / "images" / name).read_bytes() == (ROOT / "images" / name).read_bytes()
    old_p, new_p = _read(ROOT)[3], _read(new)[3]
    assert list(new_p.columns) == list(old_p.columns)
    n_old, n_new = old_p.groupby("run").size(), new_p.groupby("run").size()
    assert (abs(n_new - n_old) <= 0.01 * n_old).all(), (n_old, n_new)
    conf = [p.groupby("run")["confidence"].mean() for p in (old_p, new_p)]
    assert (abs(conf[0] - conf[1]) < 0.01).all(), conf
    old_e, new_e = (pd.read_parquet(r / "embeddings.parquet") for r in (ROOT, new))
    assert new_e["item_id"].tolist() == old_e["item_id"].tolist()
    a, b = (e.drop(columns="item_id").to_numpy().ravel() for e in (old_e, new_e))
    assert np.corrcoef(a, b)[0, 1] > 0.98
