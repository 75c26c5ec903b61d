"""QC rounds: measure annotators and vendors on a batch with hidden gold items.

A QC round is a batch of items, each to be labelled by ``overlap`` annotators, with **gold
items** (items whose label curators verified: the ``gold`` tag, or a gold file) mixed in and
indistinguishable from the others in the export.

* :func:`plan_qc_round` picks the batch (focus: disagreement, model uncertainty, confused
  class pairs or random; optionally stratified by a metadata column, proportionally),
  shuffles gold and non-gold items together and records the round in the project's store
  (``store.qc_rounds``: one row per item and annotator slot, ``is_gold`` kept there only).
* :func:`export_qc_round` writes it for the vendor (Label Studio tasks or CSV), atomically,
  without the dataset label, the model prediction or any trace of which items are gold.
* :func:`qc_report` scores the labels that came back (``project.annotations`` on the round's
  items, made at or after the round was planned): per annotator and per vendor, gold
  accuracy with a Wilson interval, Cohen's kappa against the other annotators of the round,
  the worst class and the worst pair on gold, and pass/fail against the ``[qc]`` thresholds
  of ``workbench.toml``, with the item ids behind every number.

Every choice is a pure function of the project, the store's tags and the seed.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_write
from ._validation import check_fraction, check_int, check_option, latest_annotations
from .errors import SchemaError
from .project import QC_DEFAULTS, qc_table_problems
from .relabel import restore_cell

__all__ = ["QCRound", "plan_qc_round", "export_qc_round", "qc_report", "qc_thresholds",
           "FOCUSES", "EXPORT_FORMATS"]

#: How :func:`plan_qc_round` chooses the non-gold items.
FOCUSES = ("disagreement", "uncertain", "confused_pairs", "random")
#: Formats of :func:`export_qc_round`.
EXPORT_FORMATS = ("labelstudio", "csv")
_GOLD_TAG = "gold"
_HOW_TO_TAG = ("Tag verified items as gold first, e.g. wb.TagStore.for_project(project).add("
               "item_ids, 'gold', author='you', reason='label verified'), or pass a gold file "
               "with gold='gold.csv' (columns item_id,label)")


@dataclass(frozen=True)
class QCRound:
    """A planned QC round (returned by :func:`plan_qc_round`).

    Attributes
    ----------
    round_id : int
        Its id in the store (``store.qc_rounds``).
    name : str
    items : DataFrame
        One row per item and annotator slot, in batch order: ``round_id``, ``item_id``,
        ``slot`` (the item's position in the batch), ``annotator_slot`` (0 .. overlap-1),
        ``is_gold`` (bool; never exported).
    params : dict
        How it was planned (``n``, ``overlap``, ``gold_share``, ``n_gold``, ``focus``,
        ``stratify_by``, ``seed``, ``gold_source``, ``gold_labels``...).
    created_at : pandas.Timestamp
        When it was recorded (UTC); labels made since then are the round's.

    A round is immutable once recorded, so :func:`export_qc_round` and :func:`qc_report`
    given a ``QCRound`` use it as it is (they need the store only for a round id).
    """

    round_id: int
    name: str
    items: pd.DataFrame = field(repr=False)
    params: dict = field(repr=False)
    created_at: pd.Timestamp | None = None

    @property
    def item_ids(self) -> list[str]:
        """The batch's item ids, in batch order."""
        return list(dict.fromkeys(self.items["item_id"]))

    @property
    def gold_ids(self) -> list[str]:
        """The gold items of the batch, in batch order."""
        return list(dict.fromkeys(self.items.loc[self.items["is_gold"], "item_id"]))


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _check_project(project, func: str) -> None:
    if getattr(project, "task", None) == "detection":
        raise SchemaError(f"{func}: QC rounds cover classification projects; this is a "
                          f"detection project.")
    if not isinstance(getattr(project, "items", None), pd.DataFrame):
        raise TypeError(f"The 'project' parameter of {func} must be a workbench Project. Got "
                        f"{type(project).__name__} instead.")


def _store(project, store):
    if store is None:
        from .tags import TagStore

        store = TagStore.for_project(project)
    return store


def _read_gold(gold, project, func: str) -> dict[str, str]:
    """``{item_id: label}`` of a gold file or frame (columns item_id, label), checked."""
    if isinstance(gold, pd.DataFrame):
        frame, where = gold, "the gold frame"
    elif isinstance(gold, (str, os.PathLike)):
        path = Path(gold)
        if not path.is_file():
            raise FileNotFoundError(f"{func}: no gold file {path}.")
        where = f"gold file {path.name}"
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            # a CSV the workbench wrote (a release, a vendor batch) guards formula-like
            # cells with a leading ': undone exactly as on import (relabel.restore_cell)
            frame = frame.map(restore_cell)
    else:
        raise TypeError(f"The 'gold' parameter of {func} must be a path, a DataFrame "
                        f"(item_id, label) or None. Got {type(gold).__name__} instead.")
    missing = [c for c in ("item_id", "label") if c not in frame.columns]
    if missing:
        raise SchemaError(f"{func}: {where} lacks the column(s) {missing}; it needs item_id "
                          f"and label (the verified label). Nothing was written.")
    known = set(project.items["item_id"].astype(str))
    raw = frame["item_id"].astype(str)
    ids = raw.where(raw.isin(known), raw.str.strip())  # an id as written wins over stripped
    labels = frame["label"].astype(str).str.strip()
    blank = (ids == "") | (labels == "") | frame["label"].isna().to_numpy()
    if blank.any():
        rows = (np.flatnonzero(blank.to_numpy()) + 2).tolist()[:5]
        raise SchemaError(f"{func}: {where} has an empty item_id or label on line(s) {rows}. "
                          f"Fill them or drop those rows; nothing was written.")
    unknown = sorted(set(ids) - known)
    if unknown:
        raise SchemaError(f"{func}: {where} names {len(unknown)} item(s) not in the project: "
                          f"{unknown[:5]}. Nothing was written.")
    classes = set(map(str, project.classes))
    bad = sorted(set(labels) - classes)
    if bad:
        raise SchemaError(f"{func}: {where} has label(s) {bad[:5]} that are not classes of the "
                          f"project {sorted(classes)[:20]}. Nothing was written.")
    pairs = pd.DataFrame({"item_id": ids, "label": labels}).drop_duplicates()
    dup = pairs["item_id"].duplicated(keep=False)
    if dup.any():
        twice = sorted(set(pairs.loc[dup, "item_id"]))[:5]
        raise SchemaError(f"{func}: {where} gives item(s) {twice} "
                          f"two different labels. Keep one verified label per item; nothing "
                          f"was written.")
    return dict(zip(pairs["item_id"], pairs["label"], strict=True))


def _gold_from_tags(project, store) -> dict[str, str]:
    """``{item_id: label}`` of the items tagged gold (their dataset label is the truth)."""
    ids = set(map(str, store.items_with(_GOLD_TAG)))
    if not ids or "label" not in project.items.columns:
        return {}
    items = project.items[["item_id", "label"]]
    items = items[items["item_id"].astype(str).isin(ids) & items["label"].notna()]
    return dict(zip(items["item_id"].astype(str), items["label"].astype(str), strict=True))


# --------------------------------------------------------------------------------------
# choosing items
# --------------------------------------------------------------------------------------
def _focus_scores(project, focus: str, candidates: pd.Index, run, func: str) -> np.ndarray:
    """Priority of each candidate (higher first); ties are broken by the seed later."""
    if focus == "random":
        return np.zeros(len(candidates))
    if focus == "uncertain":
        run = project.default_run if run is None else run
        pred = project.predictions
        if run is None or pred.empty:
            raise SchemaError(f"{func}: focus='uncertain' needs model predictions (with "
                              f"confidence); the project has none. Use focus='random' or "
                              f"'disagreement', or add predictions.csv.")
        if run not in set(project.runs):
            raise ValueError(f"The 'run' parameter of {func} must be a str among "
                             f"{project.runs}. Got {run!r} instead.")
        conf = pred.loc[pred["run"] == run].drop_duplicates("item_id", keep="last")
        conf = pd.Series(conf["confidence"].to_numpy(dtype=float),
                         index=conf["item_id"].astype(str))
        if conf.isna().all():
            raise SchemaError(f"{func}: run {run!r} has no confidence values; focus="
                              f"'uncertain' needs a confidence or prob_<class> columns.")
        # lowest confidence first; items without a prediction go last
        return -conf.reindex(candidates).fillna(np.inf).to_numpy()
    ann = project.annotations
    if ann.empty:
        raise SchemaError(f"{func}: focus={focus!r} needs annotations; the project has none. "
                          f"Use focus='random' or 'uncertain'.")
    if focus == "disagreement":
        from .agreement import disagreement_frame

        dis = disagreement_frame(latest_annotations(ann), classes=project.classes)
        score = dis.set_index("item_id")["disagreement"] + \
            1e-3 * dis.set_index("item_id")["n_distinct"]
        return score.reindex(candidates).fillna(-1.0).to_numpy()
    # confused_pairs: items of the most-confused pairs; swapped items before lookalikes
    from .agreement import confused_pairs

    pairs = confused_pairs(latest_annotations(ann), classes=project.classes)
    if pairs.empty:
        raise SchemaError(f"{func}: focus='confused_pairs' found no class pair the annotators "
                          f"swap (they never disagree). Use focus='random' or 'uncertain'.")
    ref = project.reference_labels().reindex(candidates).astype(object).to_numpy()
    n_pairs = len(pairs)
    score = np.full(len(candidates), -1.0)
    pos = pd.Index(candidates)
    for rank, (a, b, ids) in enumerate(zip(pairs["class_a"], pairs["class_b"],
                                           pairs["item_ids"], strict=True)):
        base = 2.0 * (n_pairs - rank)  # the most-confused pair first
        member = np.isin(ref, [a, b])
        score = np.where(member, np.maximum(score, base), score)
        hit = pos.get_indexer(list(ids))
        hit = hit[hit >= 0]
        score[hit] = np.maximum(score[hit], base + 1.0)
    return score


def _allocate(available: np.ndarray, k: int) -> np.ndarray:
    """Proportional allocation of ``k`` over strata (largest remainder, capped, refilled)."""
    available = np.asarray(available, dtype=np.int64)
    total = available.sum()
    take = np.zeros(len(available), dtype=np.int64)
    if k <= 0 or total == 0:
        return take
    quota = k * available / total
    take = np.minimum(np.floor(quota).astype(np.int64), available)
    rest = k - take.sum()
    order = np.lexsort((np.arange(len(available)), -(quota - np.floor(quota))))
    while rest > 0:
        moved = False
        for s in order:
            if rest == 0:
                break
            if take[s] < available[s]:
                take[s] += 1
                rest -= 1
                moved = True
        if not moved:
            break
    return take


def _pick(candidates: pd.Index, score: np.ndarray, k: int, strata: np.ndarray | None,
          rng: np.random.Generator) -> list[str]:
    """The ``k`` best candidates by score (random tie-break), proportionally per stratum."""
    tie = rng.random(len(candidates))
    order = np.lexsort((tie, -score))  # best first
    if strata is None:
        return [str(candidates[i]) for i in order[:k]]
    codes, uniques = pd.factorize(pd.Series(strata, dtype=object), sort=True,
                                  use_na_sentinel=False)
    take = _allocate(np.bincount(codes, minlength=len(uniques)), k)
    chosen = []
    for s in range(len(uniques)):
        members = order[codes[order] == s]
        chosen.extend(members[:take[s]])
    chosen = np.asarray(chosen, dtype=np.int64)
    chosen = chosen[np.argsort(np.argsort(order)[chosen], kind="stable")]
    return [str(candidates[i]) for i in chosen]


def plan_qc_round(project, n: int, *, overlap: int = 2, gold_share: float = 0.1,
                  focus: str = "disagreement", stratify_by: str | None = None, seed: int = 0,
                  name: str | None = None, author: str | None = None, gold=None,
                  run: str | None = None, store=None) -> QCRound:
    """Plan a QC round: ``n`` items, ``overlap`` annotators each, hidden gold mixed in.

    The batch holds ``n_gold = round(n * gold_share)`` gold items (at least one when
    ``gold_share > 0``) drawn at random from the gold pool, and ``n - n_gold`` other items
    chosen by ``focus`` among the items not in the gold pool. Both parts are allocated
    proportionally over the values of ``stratify_by`` when given (largest remainder). The
    batch is then shuffled, so gold items sit anywhere. Everything is a function of the
    project, the store's ``gold`` tag and ``seed``: the same call plans the same batch.

    Parameters
    ----------
    project : Project
        A classification project.
    n : int
        Items in the batch (gold included), at least 1 and at most the project's items.
    overlap : int, default=2
        Annotators per item (assignment slots ``annotator_slot`` 0 .. overlap-1).
    gold_share : float, default=0.1
        Share of gold items in the batch, in [0, 1).
    focus : {'disagreement', 'uncertain', 'confused_pairs', 'random'}, default='disagreement'
        How the non-gold items are chosen: where the annotators disagree most
        (:func:`workbench.disagreement_frame`), the lowest confidence of the default run (or
        ``run``), items whose labels fall in the most-confused class pairs
        (:func:`workbench.confused_pairs`: items the annotators swapped first, then items
        whose reference label is in the pair), or at random.
    stratify_by : str, optional
        An item metadata column: each of its values (missing values form one stratum) gets a
        share of the batch proportional to its share of the eligible items.
    seed : int, default=0
        Seed of the tie-breaks, the gold draw and the shuffle.
    name : str, optional
        The round's name (default: ``"QC <focus> n=<n> seed=<seed>"``).
    author : str, optional
        Who plans it (default: :func:`workbench.session.current_author`).
    gold : path-like or DataFrame, optional
        A gold file (CSV or Parquet) or frame with ``item_id`` and ``label`` (the verified
        label). Default: the items tagged ``gold`` in the store, whose dataset ``label`` is
        the truth.
    run : str, optional
        The run of ``focus='uncertain'`` (default: the project's default run).
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Returns
    -------
    QCRound
        ``round_id``, ``name``, ``items`` (slots, ``is_gold``), ``params``. The gold truth
        is kept in ``params["gold_labels"]`` for :func:`qc_report`.

    Raises
    ------
    ValueError
        Bad parameters (``n`` or ``overlap`` below 1, ``gold_share`` outside [0, 1), unknown
        ``focus`` or ``stratify_by``).
    SchemaError
        A round larger than the project, not enough gold items, an unusable focus or gold
        file. Nothing is written.
    ReadOnlyError
        In a read-only session.

    Examples
    --------
    >>> import workbench as wb
    >>> r = wb.plan_qc_round(project, 200, overlap=2, gold_share=0.1)  # doctest: +SKIP
    >>> len(r.item_ids), len(r.gold_ids)  # doctest: +SKIP
    (200, 20)
    """
    func = "plan_qc_round"
    _check_project(project, func)
    check_int(n, "n", func, minimum=1)
    check_int(overlap, "overlap", func, minimum=1)
    check_int(seed, "seed", func, minimum=0)
    check_option(focus, "focus", func, FOCUSES)
    import numbers

    if isinstance(gold_share, bool) or not isinstance(gold_share, numbers.Real) or \
            not 0 <= gold_share < 1:
        raise ValueError(f"The 'gold_share' parameter of {func} must be a float in the range "
                         f"[0, 1). Got {gold_share!r} instead.")
    items = project.items
    if stratify_by is not None and (not isinstance(stratify_by, str) or stratify_by not in
                                    project.metadata_columns):
        raise ValueError(f"The 'stratify_by' parameter of {func} must be an item metadata "
                         f"column among {project.metadata_columns} or None. Got "
                         f"{stratify_by!r} instead.")
    n_items = len(items)
    if n > n_items:
        raise SchemaError(f"{func}: a round of {n} items is larger than the project "
                          f"({n_items} items). Plan at most {n_items}; nothing was written.")
    n_gold = 0 if gold_share == 0 else min(n, max(1, int(np.floor(n * gold_share + 0.5))))
    store = _store(project, store)
    if gold is not None:
        gold_labels, gold_source = _read_gold(gold, project, func), "file"
    else:
        gold_labels, gold_source = _gold_from_tags(project, store), "tag"
    if n_gold > len(gold_labels):
        have = len(gold_labels)
        raise SchemaError(
            f"{func}: gold_share={gold_share} of {n} items needs {n_gold} gold item(s), but "
            f"{'none are' if have == 0 else f'only {have} are'} available"
            f"{' in the gold file' if gold_source == 'file' else ' (tagged gold with a label)'}"
            f". {_HOW_TO_TAG}, or lower gold_share (0 plans a round without gold). Nothing "
            f"was written.")
    ids = items["item_id"].astype(str)
    pool = set(gold_labels)
    candidates = pd.Index(ids[~ids.isin(pool)].to_numpy(), dtype=object)
    n_other = n - n_gold
    if n_other > len(candidates):
        raise SchemaError(f"{func}: a round of {n} items with {n_gold} gold needs {n_other} "
                          f"non-gold items, but the project has only {len(candidates)} items "
                          f"outside the gold pool ({n_items} items, {len(pool)} gold): the "
                          f"round is larger than the project. Plan fewer items; nothing was "
                          f"written.")
    rng = np.random.default_rng(seed)
    strata_of = None
    if stratify_by is not None:
        col = items.set_index(ids)[stratify_by]
        strata_of = lambda idx: col.reindex(idx).astype(object).to_numpy()  # noqa: E731
    score = _focus_scores(project, focus, candidates, run, func) if n_other else np.zeros(0)
    chosen = _pick(candidates, score, n_other, None if strata_of is None
                   else strata_of(candidates), rng)
    gold_index = pd.Index(sorted(pool), dtype=object)
    gold_chosen = _pick(gold_index, np.zeros(len(gold_index)), n_gold,
                        None if strata_of is None else strata_of(gold_index), rng)
    batch = np.asarray(chosen + gold_chosen, dtype=object)
    is_gold = np.r_[np.zeros(len(chosen), bool), np.ones(len(gold_chosen), bool)]
    perm = rng.permutation(len(batch))
    batch, is_gold = batch[perm], is_gold[perm]
    plan = pd.DataFrame({
        "item_id": np.repeat(batch, overlap),
        "slot": np.repeat(np.arange(len(batch)), overlap),
        "annotator_slot": np.tile(np.arange(overlap), len(batch)),
        "is_gold": np.repeat(is_gold, overlap),
    })
    params = {"n": int(n), "overlap": int(overlap), "gold_share": float(gold_share),
              "n_gold": int(n_gold), "focus": focus, "stratify_by": stratify_by,
              "seed": int(seed), "run": (run or project.default_run) if focus == "uncertain"
              else None, "gold_source": gold_source,
              "gold_labels": {i: gold_labels[i] for i in gold_chosen}}
    from .session import current_author, require_write

    require_write("plan a QC round")
    name = name if name is not None else f"QC {focus} n={n} seed={seed}"
    round_id = store.qc_rounds.create(name, plan, author=author or current_author(),
                                      params=params)
    return _load_round(store, round_id, func)


# --------------------------------------------------------------------------------------
# reading a round back
# --------------------------------------------------------------------------------------
def _load_round(store, round_ref, func: str) -> QCRound:
    """The round ``round_ref`` (a QCRound as it is, or a round id read from the store)."""
    if isinstance(round_ref, QCRound):
        return round_ref
    rid = round_ref
    if isinstance(rid, bool) or not isinstance(rid, (int, np.integer)):
        raise TypeError(f"The 'round' parameter of {func} must be a round id (int) or a "
                        f"QCRound. Got {rid!r} instead.")
    rounds = store.qc_rounds.frame()
    hit = rounds[rounds["round_id"] == int(rid)]
    if hit.empty:
        known = [f"{r} ({nm!r})" for r, nm in zip(rounds["round_id"], rounds["name"],
                                                  strict=True)]
        raise SchemaError(f"{func}: no QC round {int(rid)} in the store; known rounds: "
                          f"{', '.join(known) if known else 'none (plan one with '}"
                          f"{'' if known else 'wb.plan_qc_round)'}.")
    row = hit.iloc[0]
    params = row["params"] if isinstance(row["params"], dict) else {}
    return QCRound(round_id=int(rid), name=str(row["name"]),
                   items=store.qc_rounds.items(int(rid)), params=params,
                   created_at=pd.Timestamp(row["created_at"]))


def export_qc_round(project, round_id, path, format: str = "labelstudio", *,
                    url_prefix: str | None = None, from_name: str = "label",
                    to_name: str | None = None, store=None) -> Path:
    """Write a QC round for the vendor, with nothing that tells gold items apart.

    Items come in the round's (shuffled) batch order. No dataset label, prediction or gold
    flag is written: gold items look like every other item.

    Parameters
    ----------
    project : Project
    round_id : int or QCRound
    path : path-like
        The file to write, atomically (a killed export leaves the previous file).
    format : {'labelstudio', 'csv'}, default='labelstudio'
        Label Studio task import JSON, one task per item (``data.item_id``, ``data.image``,
        ``data.qc_round``, ``data.task``; no pre-annotations: set the Label Studio
        project's overlap to the round's ``overlap``), or CSV with one row per item and
        annotator slot (``qc_round``, ``task``, ``annotator_slot``, ``item_id``,
        ``filepath``, ``text`` in a text project, and empty ``annotator`` and ``label``
        for the vendor to fill;
        formula-like cells guarded, see :func:`workbench.relabel.neutralize_cell`). Both
        read back with :func:`workbench.import_labels`.
    url_prefix : str, optional
        Label Studio ``data.image`` = ``url_prefix + filepath`` (default: the relative path).
    from_name, to_name : str
        Kept for symmetry with the relabel export (the tasks carry no pre-annotation).
    store : TagStore, optional

    Returns
    -------
    pathlib.Path
    """
    func = "export_qc_round"
    check_option(format, "format", func, EXPORT_FORMATS)
    _check_project(project, func)
    store = _store(project, store)
    qc_round = _load_round(store, round_id, func)
    rid, plan = qc_round.round_id, qc_round.items
    order = plan.drop_duplicates("item_id").sort_values("slot", kind="stable")
    batch = pd.DataFrame({"item_id": order["item_id"].astype(str).to_numpy()})
    if "filepath" in project.items.columns:
        fp = project.items.set_index(project.items["item_id"].astype(str))["filepath"]
        batch["filepath"] = fp.reindex(batch["item_id"]).to_numpy()
    is_text = bool(getattr(project, "is_text", False))
    if is_text:  # the vendor reads the text itself (docs/text.md)
        batch["text"] = [project.item_text(i) for i in batch["item_id"]]
    to_name = ("text" if is_text else "image") if to_name is None else to_name
    path = Path(os.fspath(path))
    if format == "labelstudio":
        from .relabel import _labelstudio_tasks

        tasks = _labelstudio_tasks(batch, project, url_prefix, from_name, to_name)
        for task_no, task in enumerate(tasks, start=1):
            task["data"]["qc_round"] = rid
            task["data"]["task"] = task_no
            task.pop("predictions", None)
        atomic_write(path, lambda fh: json.dump(tasks, fh, ensure_ascii=False, indent=1))
        return path
    slots = plan.sort_values(["slot", "annotator_slot"], kind="stable")
    task_no = {i: k for k, i in enumerate(order["item_id"].astype(str), start=1)}
    fp = dict(zip(batch["item_id"], batch["filepath"], strict=True)) \
        if "filepath" in batch.columns else {}
    texts = dict(zip(batch["item_id"], batch["text"], strict=True)) if is_text else {}
    rows = []
    for item, a in zip(slots["item_id"].astype(str), slots["annotator_slot"], strict=True):
        value = fp.get(item)
        rows.append({"qc_round": str(rid), "task": str(task_no[item]),
                     "annotator_slot": str(int(a)), "item_id": item,
                     "filepath": "" if value is None or pd.isna(value) else str(value),
                     **({"text": texts.get(item) or ""} if is_text else {}),
                     "annotator": "", "label": ""})
    atomic_write(path, lambda fh: _write_csv(rows, fh))
    return path


def _write_csv(rows: list[dict], fh) -> None:
    from .relabel import neutralize_cell

    fields = ["qc_round", "task", "annotator_slot", "item_id", "filepath", "annotator",
              "label"]
    if rows and "text" in rows[0]:  # a text project: the text after the item
        fields.insert(5, "text")
    cells = [{k: neutralize_cell(r[k]) for k in fields} for r in rows]
    cr = any("\r" in v for r in cells for v in r.values())
    writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\r\n" if cr else "\n")
    writer.writeheader()
    writer.writerows(cells)


# --------------------------------------------------------------------------------------
# thresholds
# --------------------------------------------------------------------------------------
def qc_thresholds(project) -> dict:
    """The pass/fail thresholds of QC reports: ``[qc]`` of ``workbench.toml``, else defaults.

    ``min_gold_accuracy`` (default 0.9) and ``min_kappa`` (default 0.6). The table is
    checked when the project is opened (:func:`workbench.open_project`); an in-memory project
    may carry it as ``info={"qc": {...}}``, checked here.

    Returns
    -------
    dict
        ``min_gold_accuracy``, ``min_kappa`` (floats) and ``source`` (``'workbench.toml'``
        or ``'default'``).

    Raises
    ------
    SchemaError
        A bad ``[qc]`` table (the message names the key and the fix).
    """
    table = (getattr(project, "info", None) or {}).get("qc")
    if table is None:
        return {**QC_DEFAULTS, "source": "default"}
    problems = qc_table_problems(table)
    if problems:
        raise SchemaError("workbench.toml: " + " ".join(msg for _, msg in problems))
    return {**QC_DEFAULTS, **{k: float(v) for k, v in table.items()},
            "source": "workbench.toml"}


# --------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------
def _home_vendors(project, vendor: str, labels: pd.DataFrame) -> pd.Series | None:
    """Each annotator's vendor: the scorecard's rule (per label, else the items' majority)."""
    ann = project.annotations
    if vendor in ann.columns:
        per = pd.concat([ann[["annotator", vendor]], labels[["annotator", vendor]]]) \
            if vendor in labels.columns else ann[["annotator", vendor]]
    elif vendor in project.items.columns:
        meta = project.items.set_index(project.items["item_id"].astype(str))[vendor]
        both = pd.concat([ann[["item_id", "annotator"]], labels[["item_id", "annotator"]]])
        per = pd.DataFrame({"annotator": both["annotator"].astype(str).to_numpy(),
                            vendor: meta.reindex(both["item_id"].astype(str)).to_numpy()})
    else:
        return None
    per = per.dropna()
    if per.empty:
        return None
    counts = per.astype(str).groupby(["annotator", vendor]).size().reset_index(name="n")
    counts = counts.sort_values(["annotator", "n", vendor], ascending=[True, False, True],
                                kind="stable")
    return counts.drop_duplicates("annotator").set_index("annotator")[vendor]


def _worst(truth: np.ndarray, given: np.ndarray, items: np.ndarray, classes: list[str]):
    """Worst class (lowest gold recall) and worst pair (most gold swaps), with their items."""
    if truth.size == 0:
        return None, np.nan, [], None, 0, []
    wrong = truth != given
    frame = pd.DataFrame({"t": truth, "g": given, "i": items, "w": wrong})
    per = frame.groupby("t").agg(n=("w", "size"), miss=("w", "sum"))
    per["recall"] = 1 - per["miss"] / per["n"]
    per["order"] = pd.Index(classes).get_indexer(per.index)
    per = per[per["miss"] > 0].sort_values(["recall", "miss", "order"],
                                           ascending=[True, False, True])
    if per.empty:
        worst_class, recall, class_items = None, np.nan, []
    else:
        worst_class = str(per.index[0])
        recall = float(per["recall"].iloc[0])
        class_items = sorted(frame.loc[(frame["t"] == worst_class) & frame["w"], "i"])
    miss = frame[frame["w"]]
    if miss.empty:
        return worst_class, recall, class_items, None, 0, []
    rank = {c: k for k, c in enumerate(classes)}
    lo = np.where(miss["t"].map(rank) <= miss["g"].map(rank), miss["t"], miss["g"])
    hi = np.where(miss["t"].map(rank) <= miss["g"].map(rank), miss["g"], miss["t"])
    pairs = pd.DataFrame({"a": lo, "b": hi, "i": miss["i"].to_numpy()})
    counts = pairs.groupby(["a", "b"]).size().reset_index(name="n")
    counts["oa"] = counts["a"].map(rank)
    counts["ob"] = counts["b"].map(rank)
    top = counts.sort_values(["n", "oa", "ob"], ascending=[False, True, True]).iloc[0]
    pair_items = sorted(pairs.loc[(pairs["a"] == top["a"]) & (pairs["b"] == top["b"]), "i"])
    return (worst_class, recall, class_items, f"{top['a']} <-> {top['b']}", int(top["n"]),
            pair_items)


def _group_row(sub: pd.DataFrame, classes: list[str], thresholds: dict, alpha: float) -> dict:
    from .agreement import _kappa_from_confusion
    from .slicing import wilson_interval

    k = len(classes)
    gold = sub[sub["truth"].notna()]
    n_gold = len(gold)
    right = int((gold["label"] == gold["truth"]).sum())
    low, high = wilson_interval([right], [n_gold], alpha=alpha)
    acc = right / n_gold if n_gold else np.nan
    comp = sub[sub["others"] >= 0]
    cm = np.zeros((1, k, k), dtype=np.int64)
    np.add.at(cm, (0, comp["others"].to_numpy(dtype=np.int64),
                   comp["code"].to_numpy(dtype=np.int64)), 1)
    kappa = float(_kappa_from_confusion(cm)[0]) if len(comp) else np.nan
    agree = comp["others"].to_numpy() == comp["code"].to_numpy()
    wc, wc_recall, wc_items, wp, wp_n, wp_items = _worst(
        gold["truth"].to_numpy(dtype=object), gold["label"].to_numpy(dtype=object),
        gold["item_id"].to_numpy(dtype=object), classes)
    reasons = []
    if n_gold == 0:
        reasons.append("no gold item labelled")
    elif acc < thresholds["min_gold_accuracy"]:
        reasons.append(f"gold accuracy {acc:.3f} < {thresholds['min_gold_accuracy']:g}")
    if len(comp) == 0 or np.isnan(kappa):
        reasons.append("no kappa (no item shared with another annotator, or one class only)")
    elif kappa < thresholds["min_kappa"]:
        reasons.append(f"kappa {kappa:.3f} < {thresholds['min_kappa']:g}")
    return {
        "n_labels": len(sub),
        "n_gold": n_gold,
        "n_gold_correct": right,
        "gold_accuracy": acc,
        "gold_ci_low": float(low[0]),
        "gold_ci_high": float(high[0]),
        "n_compared": len(comp),
        "agreement": float(agree.mean()) if len(comp) else np.nan,
        "kappa": kappa,
        "worst_class": wc,
        "worst_class_recall": wc_recall,
        "worst_pair": wp,
        "worst_pair_misses": wp_n,
        "passed": not reasons,
        "fail_reasons": "; ".join(reasons),
        "item_ids": sorted(sub["item_id"]),
        "gold_item_ids": sorted(gold["item_id"]),
        "gold_miss_ids": sorted(gold.loc[gold["label"] != gold["truth"], "item_id"]),
        "disagree_item_ids": sorted(comp.loc[~agree, "item_id"]),
        "worst_class_item_ids": wc_items,
        "worst_pair_item_ids": wp_items,
    }


def _given_labels(labels, project, func: str) -> pd.DataFrame:
    """The vendor's labels of a round: a file (read as import_labels reads it) or a frame."""
    if isinstance(labels, pd.DataFrame):
        missing = [c for c in ("item_id", "annotator", "label") if c not in labels.columns]
        if missing:
            raise SchemaError(f"{func}: the labels frame lacks the column(s) {missing}; it "
                              f"needs item_id, annotator, label.")
        frame = labels
    elif isinstance(labels, (str, os.PathLike)):
        from .relabel import read_labels

        path = Path(labels)
        fmt = {".json": "labelstudio", ".csv": "csv", ".jsonl": "jsonl"}.get(
            path.suffix.lower())
        if fmt is None:
            raise ValueError(f"The 'labels' parameter of {func} must be a .json (Label "
                             f"Studio), .csv or .jsonl file or a DataFrame. Got {path.name!r}.")
        frame = read_labels(path, format=fmt, classes=project.classes,
                            item_ids=project.items["item_id"])
    else:
        raise TypeError(f"The 'labels' parameter of {func} must be a path, a DataFrame or "
                        f"None. Got {type(labels).__name__} instead.")
    frame = frame.copy()
    if "annotated_at" in frame.columns and frame["annotated_at"].isna().all():
        frame = frame.drop(columns="annotated_at")
    return frame


def qc_report(project, round, *, labels=None, vendor: str = "vendor", alpha: float = 0.05,
              min_gold_accuracy: float | None = None, min_kappa: float | None = None,
              store=None) -> pd.DataFrame:
    """Score the labels of a QC round per annotator and per vendor.

    The round's labels are the project's annotations on the round's items made at or after
    the round was planned (``annotated_at``; :func:`workbench.import_labels` stamps labels
    without a time with the import time), one current label per item and annotator. Or
    pass the vendor's file as ``labels``: :func:`workbench.import_labels` skips a label equal
    to the one the same annotator gave the item before, so when the round went to
    annotators who had labelled its items already, the file is the complete record.

    * **Gold accuracy**: the share of their labels on the round's gold items equal to the
      verified label (kept with the round), with a Wilson interval
      (:func:`workbench.slicing.wilson_interval`, as ``statsmodels``' ``proportion_confint(...,
      method="wilson")``).
    * **Agreement with the others**: each label against the majority of the *other*
      annotators' labels of the item in the round (ties by class order; items nobody else
      labelled are left out): plain agreement and Cohen's kappa.
    * **What they miss** on gold: the worst class (lowest recall among classes they missed)
      and the worst pair (the two classes they swap most, truth and label either way).
    * **Pass/fail**: ``gold_accuracy >= min_gold_accuracy`` and ``kappa >= min_kappa``
      (``[qc]`` of ``workbench.toml``, defaults 0.9 and 0.6; see :func:`qc_thresholds`);
      a group without gold labels or without a kappa fails, and ``fail_reasons`` says why.

    Parameters
    ----------
    project : Project
        The project with the round's labels imported (re-open it after the import).
    round : int or QCRound
        The round.
    labels : path-like or DataFrame, optional
        The round's labels as returned by the vendor: a file :func:`workbench.import_labels`
        reads (``.json`` Label Studio export, ``.csv``, ``.jsonl``) or a frame with
        ``item_id``, ``annotator``, ``label`` [, vendor column]. Only the round's items
        count. Default: the project's annotations made since the round was planned.
    vendor : str, default='vendor'
        The vendor column: per label in the annotations, else the item metadata, where each
        annotator belongs to the vendor owning most of the items they labelled (the rule of
        :func:`workbench.vendor_scorecard`). Without it, no vendor rows.
    alpha : float, default=0.05
        One minus the coverage of the Wilson interval.
    min_gold_accuracy, min_kappa : float, optional
        Override the thresholds of ``workbench.toml``.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Returns
    -------
    DataFrame
        Vendor rows first (``level == 'vendor'``, ``annotator`` missing), then annotator rows
        (``level == 'annotator'``), each ranked by gold accuracy (best first; then kappa,
        then name; NaN last), so the last row is the weakest annotator. Columns ``level``,
        ``vendor``, ``annotator``, ``n_labels``, ``n_gold``, ``n_gold_correct``,
        ``gold_accuracy``, ``gold_ci_low``, ``gold_ci_high``, ``n_compared``, ``agreement``,
        ``kappa``, ``worst_class``, ``worst_class_recall``, ``worst_pair`` (``"a <-> b"``),
        ``worst_pair_misses``, ``passed``, ``fail_reasons``, and the items behind the numbers:
        ``item_ids`` (labelled), ``gold_item_ids``, ``gold_miss_ids``,
        ``disagree_item_ids`` (differ from the others' majority), ``worst_class_item_ids``,
        ``worst_pair_item_ids``. ``frame.attrs``: ``round_id``, ``thresholds``, ``n_items``,
        ``n_gold_items``, ``n_labels``, ``n_ignored`` (labels on the round's items made
        before it), ``unlabelled_item_ids``.

    Raises
    ------
    SchemaError
        Unknown round (the message lists the rounds), a bad ``[qc]`` table.
    """
    func = "qc_report"
    _check_project(project, func)
    alpha = check_fraction(alpha, "alpha", func, low=1e-9, high=0.5)
    thresholds = qc_thresholds(project)
    for key, value in (("min_gold_accuracy", min_gold_accuracy), ("min_kappa", min_kappa)):
        if value is not None:
            low = 0.0 if key == "min_gold_accuracy" else -1.0
            thresholds[key] = check_fraction(value, key, func, low=low, high=1.0)
            thresholds["source"] = "argument"
    store = _store(project, store)
    qc_round = _load_round(store, round, func)
    rid, plan, params = qc_round.round_id, qc_round.items, qc_round.params or {}
    round_items = list(dict.fromkeys(plan["item_id"].astype(str)))
    gold_ids = set(plan.loc[plan["is_gold"], "item_id"].astype(str))
    gold_labels = {str(k): str(v) for k, v in (params.get("gold_labels") or {}).items()}
    if gold_ids - set(gold_labels) and "label" in project.items.columns:
        ref = project.items.set_index(project.items["item_id"].astype(str))["label"]
        for i in gold_ids - set(gold_labels):
            if pd.notna(ref.get(i)):
                gold_labels[i] = str(ref[i])
    ann = project.annotations if labels is None else _given_labels(labels, project, func)
    on_round = ann[ann["item_id"].astype(str).isin(set(round_items))]
    created = qc_round.created_at
    if labels is not None:
        after = np.ones(len(on_round), dtype=bool)
    elif created is None:
        raise SchemaError(f"{func}: the round has no creation time (created_at), so its "
                          f"labels cannot be told from earlier ones. Pass its round id, or "
                          f"the vendor's labels with labels=.")
    elif "annotated_at" in on_round.columns:
        t = pd.to_datetime(on_round["annotated_at"], utc=True)
        after = (t >= created).fillna(False).to_numpy(dtype=bool)
    else:
        after = np.zeros(len(on_round), dtype=bool)
    n_ignored = int((~after).sum())
    labels = latest_annotations(on_round[after]) if after.any() else on_round.iloc[:0]
    labels = labels.assign(item_id=labels["item_id"].astype(str),
                           annotator=labels["annotator"].astype(str),
                           label=labels["label"].astype(str)).reset_index(drop=True)
    classes = [str(c) for c in project.classes]
    extra = sorted(set(labels["label"]) - set(classes))
    classes = classes + extra
    code = pd.Index(classes).get_indexer(labels["label"])
    # the others' majority per label (leave one out), ties by class order
    item_codes, item_index = pd.factorize(labels["item_id"])
    k = len(classes)
    counts = np.zeros((len(item_index), k), dtype=np.int64)
    np.add.at(counts, (item_codes, code), 1)
    others = counts[item_codes].copy()
    others[np.arange(len(labels)), code] -= 1
    has_other = others.sum(axis=1) > 0
    others_code = np.where(has_other, np.argmax(others == others.max(axis=1, keepdims=True),
                                                axis=1), -1)
    labels["code"] = code
    labels["others"] = others_code
    labels["truth"] = labels["item_id"].map(
        {i: gold_labels[i] for i in gold_ids if i in gold_labels}).astype(object)
    homes = _home_vendors(project, vendor, labels)
    if vendor in labels.columns:
        labels["_vendor"] = labels[vendor].astype(object)
    else:
        labels["_vendor"] = labels["annotator"].map(homes) if homes is not None else None
    rows = []
    if labels["_vendor"].notna().any():
        for v, sub in labels[labels["_vendor"].notna()].groupby("_vendor", sort=True):
            rows.append({"level": "vendor", "vendor": str(v), "annotator": None,
                         **_group_row(sub, classes, thresholds, alpha)})
    for a, sub in labels.groupby("annotator", sort=True):
        v = sub["_vendor"].dropna()
        rows.append({"level": "annotator", "vendor": str(v.mode().iloc[0]) if len(v) else None,
                     "annotator": str(a), **_group_row(sub, classes, thresholds, alpha)})
    columns = ["level", "vendor", "annotator", "n_labels", "n_gold", "n_gold_correct",
               "gold_accuracy", "gold_ci_low", "gold_ci_high", "n_compared", "agreement",
               "kappa", "worst_class", "worst_class_recall", "worst_pair", "worst_pair_misses",
               "passed", "fail_reasons", "item_ids", "gold_item_ids", "gold_miss_ids",
               "disagree_item_ids", "worst_class_item_ids", "worst_pair_item_ids"]
    out = pd.DataFrame(rows, columns=columns)
    if not out.empty:
        out["_lvl"] = (out["level"] == "annotator").astype(int)
        out["_acc"] = out["gold_accuracy"].fillna(-1.0)
        out["_kap"] = out["kappa"].fillna(-2.0)
        out = out.sort_values(["_lvl", "_acc", "_kap", "vendor", "annotator"],
                              ascending=[True, False, False, True, True], kind="stable",
                              na_position="last").drop(columns=["_lvl", "_acc", "_kap"])
    out = out.reset_index(drop=True)
    for col in ("level", "vendor", "annotator", "worst_class", "worst_pair", "fail_reasons"):
        out[col] = pd.array(out[col].tolist(), dtype="str")
    out = out.astype({"n_labels": "int64", "n_gold": "int64", "n_gold_correct": "int64",
                      "n_compared": "int64", "worst_pair_misses": "int64", "passed": bool,
                      "gold_accuracy": float, "gold_ci_low": float, "gold_ci_high": float,
                      "agreement": float, "kappa": float, "worst_class_recall": float})
    labelled = set(labels["item_id"])
    out.attrs.update({
        "round_id": rid,
        "thresholds": thresholds,
        "n_items": len(round_items),
        "n_gold_items": len(gold_ids),
        "n_labels": len(labels),
        "n_ignored": n_ignored,
        "unlabelled_item_ids": [i for i in round_items if i not in labelled],
    })
    return out
