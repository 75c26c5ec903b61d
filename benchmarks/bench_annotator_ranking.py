"""Quality without gold: which score ranks annotators the way their true accuracy does?

Crowds with planted per-annotator confusion matrices (several scenarios, several seeds).
Each score is compared with the annotators' *realised* accuracy (share of their labels equal
to the planted truth) by Spearman's rank correlation (``scipy.stats.spearmanr``):

- ``majority``: ``wb.annotator_quality(ann, method="majority")["accuracy"]`` (agreement with
  the leave-one-out majority of the other annotators; the ranking before issue 13);
- ``dawid_skene``: ``wb.annotator_quality(ann, method="dawid_skene")["ds_accuracy"]`` (our
  Dawid-Skene per-annotator confusion matrices);
- peer ``crowd-kit``: ``crowdkit.aggregation.DawidSkene(n_iter=100)`` skills, i.e. the
  prior-weighted diagonal of its ``errors_`` matrices (when crowd-kit is installed).

A real crowd with gold is added: the sample project (six annotators, gold ``truth.csv``).

Usage: ``python benchmarks/bench_annotator_ranking.py [n_seeds]`` (default 5).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402

#: rows that report rank correlations only
NOT_TIMED = {"seconds": None, "peak_mb": None, "error": None}

SCENARIOS = {
    "careless": "20 annotators (accuracy 0.75-0.95) of whom 4 careless (0.30-0.45), "
                "3 labels per item, 2,000 items, 5 balanced classes",
    "careless_team": "20 annotators in 5 teams of 4 (an item goes to 3 of its team); one "
                     "team holds 2 careless annotators (0.35) who drag its majority",
    "swapper": "20 annotators (0.70-0.95); one accurate annotator swaps classes 0 and 1 "
               "(confusing, adversarial)",
    "imbalance": "classes with prevalence 60/20/10/6/4%; 20 annotators (0.55-0.95) whose "
                 "slips go to the majority class; 2,000 items",
    "sparse_20": "3 labels per item from 20 annotators (0.40-0.95), 3,000 items",
    "sparse_100": "3 labels per item from 100 annotators (0.40-0.95), 3,000 items "
                  "(about 90 labels each)",
    "shared_confusion": "8 annotators, 4 classes, 2,000 items: s1, s2 label true 0 as 1 (a "
                        "misread guideline), careless x (20% slips) misreads 0 like them; 30% "
                        "of items go to team {d, s1, s2}, 30% to {x, s1, s2}, 40% to 3 at random",
}


def _confusion(acc: float, k: int, slip_to: np.ndarray | None = None) -> np.ndarray:
    """Row-stochastic (true x given): ``acc`` on the diagonal, slips spread (or targeted)."""
    if slip_to is None:
        conf = np.full((k, k), (1 - acc) / (k - 1))
    else:
        conf = np.tile(slip_to, (k, 1)) * (1 - acc)
        conf[np.arange(k), np.arange(k)] = 0
        conf /= conf.sum(axis=1, keepdims=True)
        conf *= 1 - acc
    np.fill_diagonal(conf, acc)
    return conf


def make_planted_crowd(scenario: str, seed: int = 0):
    """Long annotations and the realised accuracy of every annotator for one scenario.

    Returns
    -------
    annotations : DataFrame
        ``item_id``, ``annotator``, ``label`` (all str).
    true_accuracy : Series
        Share of each annotator's labels equal to the planted truth, indexed by annotator.
    """
    rng = np.random.default_rng([seed, list(SCENARIOS).index(scenario)])
    if scenario == "shared_confusion":
        return _shared_confusion(rng)
    k = 5
    n_items = 3000 if scenario.startswith("sparse") else 2000
    n_ann = 100 if scenario == "sparse_100" else 20
    priors = np.full(k, 1 / k)
    if scenario == "imbalance":
        priors = np.array([0.60, 0.20, 0.10, 0.06, 0.04])
    truth = rng.choice(k, size=n_items, p=priors)
    if scenario == "careless":
        acc = rng.uniform(0.75, 0.95, n_ann)
        acc[rng.choice(n_ann, 4, replace=False)] = rng.uniform(0.30, 0.45, 4)
    elif scenario == "careless_team":
        acc = rng.uniform(0.75, 0.95, n_ann)
        acc[[0, 1]] = 0.35
    elif scenario == "swapper":
        acc = rng.uniform(0.70, 0.95, n_ann)
    elif scenario == "imbalance":
        acc = rng.uniform(0.55, 0.95, n_ann)
    else:
        acc = rng.uniform(0.40, 0.95, n_ann)
    confs = []
    for j in range(n_ann):
        if scenario == "imbalance":
            conf = _confusion(acc[j], k, slip_to=priors)
        else:
            conf = _confusion(acc[j], k)
        confs.append(conf)
    if scenario == "swapper":
        swapper = int(rng.integers(n_ann))
        conf = _confusion(0.95, k)
        conf[[0, 1]] = conf[[1, 0]]  # true 0 is labelled like true 1 and vice versa
        confs[swapper] = conf
    confs = np.stack(confs)
    # who labels what: 3 distinct annotators per item
    if scenario == "careless_team":
        team = rng.integers(0, 5, n_items)
        members = np.arange(20).reshape(5, 4)
        pick = np.argsort(rng.random((n_items, 4)), axis=1)[:, :3]
        who = members[team[:, None], pick]
    else:
        who = np.argsort(rng.random((n_items, n_ann)), axis=1)[:, :3]
    item = np.repeat(np.arange(n_items), 3)
    ann = who.ravel()
    cum = np.cumsum(confs[ann, truth[item]], axis=1)
    label = (rng.random(len(item))[:, None] > cum).sum(axis=1).clip(max=k - 1)
    frame = pd.DataFrame({
        "item_id": np.char.add("i", item.astype(str)),
        "annotator": np.char.add("a", np.char.zfill(ann.astype(str), 3)),
        "label": np.char.add("c", label.astype(str)),
    }).astype("str")
    correct = pd.Series(label == truth[item]).groupby(frame["annotator"].to_numpy()).mean()
    return frame, correct.rename("true_accuracy")


def _shared_confusion(rng: np.random.Generator, n_items: int = 2000):
    """A careless annotator who shares a team's systematic confusion (see SCENARIOS)."""
    k, n_ann = 4, 8  # 0-3 good (0.92), 4 = d (0.95), 5-6 = s1, s2, 7 = x (careless)
    truth = rng.integers(0, k, n_items)
    kind = rng.choice(3, n_items, p=[0.4, 0.3, 0.3])
    who = np.argsort(rng.random((n_items, n_ann)), axis=1)[:, :3]
    who[kind == 1] = [4, 5, 6]
    who[kind == 2] = [7, 5, 6]
    item = np.repeat(np.arange(n_items), 3)
    ann = who.ravel()
    t = truth[item]
    acc = np.array([0.92] * 4 + [0.95, 0.95, 0.95, 0.8])[ann]
    label = np.where(rng.random(len(item)) < acc, t, (t + rng.integers(1, k, len(item))) % k)
    misread = ((ann == 5) | (ann == 6)) & (t == 0)
    label = np.where(misread, np.where(rng.random(len(item)) < 0.95, 1, 0), label)
    label = np.where((ann == 7) & (t == 0), 1, label)
    names = np.array(["g1", "g2", "g3", "g4", "d", "s1", "s2", "x"])
    frame = pd.DataFrame({"item_id": np.char.add("i", item.astype(str)),
                          "annotator": names[ann],
                          "label": np.char.add("c", label.astype(str))}).astype("str")
    correct = pd.Series(label == t).groupby(frame["annotator"].to_numpy()).mean()
    return frame, correct.rename("true_accuracy")


def score_majority(annotations: pd.DataFrame) -> pd.Series:
    q = wb.annotator_quality(annotations, method="majority")
    return q.set_index("annotator")["accuracy"]


def score_dawid_skene(annotations: pd.DataFrame) -> pd.Series:
    q = wb.annotator_quality(annotations, method="dawid_skene")
    return q.set_index("annotator")["ds_accuracy"]


def score_crowdkit(annotations: pd.DataFrame) -> pd.Series:
    from crowdkit.aggregation import DawidSkene

    ds = DawidSkene(n_iter=100).fit(
        annotations.rename(columns={"item_id": "task", "annotator": "worker"}))
    errors, priors = ds.errors_, ds.priors_
    skill = {}
    for worker, block in errors.groupby(level=0):
        block = block.droplevel(0)  # index: given label, columns: true label
        diag = np.array([block.at[c, c] if c in block.index else 0.0 for c in priors.index])
        skill[worker] = float((priors.to_numpy() * diag).sum())
    return pd.Series(skill)


def _crowdkit_available() -> bool:
    try:
        import crowdkit.aggregation  # noqa: F401
    except ImportError:
        return False
    return True


def rank_correlation(score: pd.Series, truth: pd.Series) -> float:
    """Spearman's rho of a score with the true accuracy (unscored annotators rank last)."""
    s = score.reindex(truth.index).fillna(-np.inf)
    return float(spearmanr(s.to_numpy(), truth.to_numpy()).statistic)


def sample_crowd():
    """The sample project's annotations and each annotator's accuracy against truth.csv."""
    project = wb.open_project(Path(__file__).resolve().parents[1] / "data" / "sample")
    truth_path = Path(__file__).resolve().parents[1] / "data" / "sample" / "truth.csv"
    gold = pd.read_csv(truth_path, dtype=str).set_index("item_id")["true_label"]
    ann = project.annotations[["item_id", "annotator", "label"]].astype("str")
    correct = pd.Series(ann["label"].to_numpy() == gold.reindex(ann["item_id"]).to_numpy())
    return ann, correct.groupby(ann["annotator"].to_numpy()).mean()


def main(n_seeds: int = 5) -> None:
    methods = {"majority": score_majority, "dawid_skene": score_dawid_skene}
    if _crowdkit_available():
        methods["crowd-kit"] = score_crowdkit
    rows, summary = [], {}
    for scenario, description in SCENARIOS.items():
        rhos: dict[str, list[float]] = {m: [] for m in methods}
        last: dict[str, int] = {m: 0 for m in methods}
        for seed in range(n_seeds):
            ann, truth = make_planted_crowd(scenario, seed)
            worst = truth.idxmin()
            for name, fn in methods.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    score = fn(ann)
                rhos[name].append(rank_correlation(score, truth))
                last[name] += int(score.reindex(truth.index).fillna(-np.inf).idxmin() == worst)
        summary[scenario] = {m: float(np.mean(v)) for m, v in rhos.items()}
        ann, _ = make_planted_crowd(scenario, 0)
        ours = measure(score_dawid_skene, ann, timeout=300)
        peer = measure(score_crowdkit, ann, timeout=600) if "crowd-kit" in methods else None
        notes = "; ".join(
            f"{m}: mean Spearman rho {np.mean(v):.3f} (min {np.min(v):.3f}), truly worst "
            f"annotator ranked last in {last[m]}/{n_seeds}" for m, v in rhos.items())
        rows.append({"operation": f"annotator ranking: {scenario}",
                     "size": f"{description}; {n_seeds} seeds",
                     "ours": ours, "peer": "majority-vote ranking; crowd-kit DawidSkene skills",
                     "peer_result": peer, "target": "dawid_skene rho >= majority rho",
                     "notes": notes, "mean_rho": summary[scenario]})
        print(scenario, notes, flush=True)
    ann, truth = sample_crowd()
    res = {}
    for name, fn in methods.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res[name] = rank_correlation(fn(ann), truth)
    notes = "; ".join(f"{m}: Spearman rho {v:.3f}" for m, v in res.items())
    rows.append({"operation": "annotator ranking: sample project (gold truth.csv)",
                 "size": f"{len(ann):,} labels, 6 annotators", "ours": NOT_TIMED,
                 "peer": "majority-vote ranking; crowd-kit DawidSkene skills",
                 "peer_result": None, "target": "dawid_skene rho >= majority rho",
                 "notes": notes, "mean_rho": res})
    print("sample", notes, flush=True)
    overall = {m: float(np.mean([summary[s][m] for s in summary])) for m in methods}
    print("overall mean rho", overall, flush=True)
    rows.append({"operation": "annotator ranking: mean over the planted scenarios",
                 "size": f"{len(SCENARIOS)} scenarios x {n_seeds} seeds", "ours": NOT_TIMED,
                 "peer": "majority-vote ranking; crowd-kit DawidSkene skills",
                 "peer_result": None, "target": "the default is the best mean rho",
                 "notes": "; ".join(f"{m}: {v:.3f}" for m, v in overall.items()),
                 "mean_rho": overall})
    print(record("annotator_ranking", rows))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
