"""Key figures for the manager dashboard: pure functions, DataFrames in, DataFrames out.

The manager overview (:class:`workbench.widgets.OverviewDashboard`, notebook
``00_overview``) shows, read-only:

* the project at a glance (:func:`project_summary`);
* the model's error rate per run and its change from the previous run
  (:func:`error_rate_table`);
* how consistent the labels are per vendor and per batch (:func:`agreement_table`);
* the share of suspected label errors (:func:`label_issue_rate`);
* the relabel queue by status (:func:`relabel_status_counts`);
* trends over batches (:func:`batch_trends`) and the worst slices (:func:`worst_slices`);
* the vendor scorecards per batch with the flagged drops (:func:`scorecard_table`,
  :func:`scorecard_flags`, from :func:`workbench.vendor_scorecard`; computed once per project
  load, :func:`cached_scorecard`);
* the label releases with what each changed (:func:`release_table`, from
  :func:`workbench.list_releases`);
* data drift per batch against the first batch (:func:`workbench.drift.drift_summary` of
  :func:`workbench.drift`, by the trend column) and its headline, the most drifted batch and
  column (:func:`drift_headline`).

For a detection project (``task == "detection"``) the model's figure is the detector's AP
per run and its change (:func:`ap_table`, from :func:`workbench.detection_metrics`), the
trends are AP per batch (:func:`ap_trends`) and the worst slices are those where boxes are
missed most (``discover_slices`` with target ``is_fn``) and the label-issue figure is the
share of images with at least one suspected missing, mislocated or wrong-class box
(:func:`image_issue_rate` of :func:`workbench.label_issues`); label agreement, which is about
one label per image, is reported as not computed.

:func:`overview_kpis` computes them all from a project; a section that cannot be computed
(no predictions, no annotations, a module missing) is reported in ``problems`` instead of
failing the whole dashboard.
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_columns, check_int
from .tags import STATUSES

__all__ = [
    "OverviewKPIs",
    "project_summary",
    "error_rate_table",
    "ap_table",
    "ap_trends",
    "agreement_table",
    "label_issue_rate",
    "image_issue_rate",
    "relabel_status_counts",
    "batch_trends",
    "worst_slices",
    "scorecard_table",
    "scorecard_flags",
    "cached_scorecard",
    "release_table",
    "drift_headline",
    "overview_kpis",
    "STATUS_ORDER",
]

#: Relabel-queue statuses in workflow order: :data:`workbench.tags.STATUSES` itself.
STATUS_ORDER = STATUSES


def project_summary(project: Any) -> dict:
    """Summarise a project: sizes, classes, annotators and runs.

    Parameters
    ----------
    project : Project
        An open project.

    Returns
    -------
    dict
        ``name``, ``n_items``, ``n_labeled`` (items with their own ``label``), ``n_classes``,
        ``classes``, ``n_annotators``, ``annotators``, ``n_annotations``, ``runs``,
        ``default_run``, ``metadata_columns``.
    """
    items = project.items
    ann = project.annotations
    n_labeled = int(items["label"].notna().sum()) if "label" in items.columns else 0
    annotators = sorted(map(str, pd.unique(ann["annotator"]))) if len(ann) else []
    return {
        "name": str(getattr(project, "name", "")),
        "n_items": int(len(items)),
        "n_labeled": n_labeled,
        "n_classes": len(project.classes),
        "classes": list(project.classes),
        "n_annotators": len(annotators),
        "annotators": annotators,
        "n_annotations": int(len(ann)),
        "runs": list(project.runs),
        "default_run": project.default_run,
        "metadata_columns": list(getattr(project, "metadata_columns", [])),
    }


def error_rate_table(errors: pd.DataFrame, runs: list[str] | None = None) -> pd.DataFrame:
    """Error rate of each run and its change from the previous run.

    Parameters
    ----------
    errors : DataFrame
        Per-item outcomes of every run: ``run`` and ``correct`` (bool) columns, e.g. the
        frames of :func:`workbench.slicing.project_errors` concatenated with a ``run``.
    runs : list of str, default=None
        Run order (the change is measured from the previous run in this order); default:
        order of first appearance.

    Returns
    -------
    DataFrame
        ``run``, ``n``, ``errors``, ``error_rate``, ``change`` (error rate minus the previous
        run's; NaN for the first run), one row per run in order.

    Examples
    --------
    >>> errors = pd.DataFrame({"run": ["a", "a", "b", "b"],
    ...                        "correct": [True, False, True, True]})
    >>> error_rate_table(errors)[["run", "error_rate", "change"]]
      run  error_rate  change
    0   a         0.5     NaN
    1   b         0.0    -0.5
    """
    check_columns(errors, ["run", "correct"], what="errors", func="error_rate_table")
    order = list(pd.unique(errors["run"].astype(str))) if runs is None else list(runs)
    run = errors["run"].astype(str)
    bad = ~errors["correct"].astype(bool)
    grouped = pd.DataFrame({"run": run, "bad": bad}).groupby("run", sort=False)["bad"]
    n = grouped.size().reindex(order).fillna(0).astype(int)
    e = grouped.sum().reindex(order).fillna(0).astype(int)
    rate = (e / n.replace(0, np.nan)).astype(float)
    out = pd.DataFrame({"run": order, "n": n.to_numpy(), "errors": e.to_numpy(),
                        "error_rate": rate.to_numpy()})
    out["change"] = out["error_rate"].diff()
    return out


def _all_rows(metrics: pd.DataFrame, func: str) -> pd.DataFrame:
    """The ``all`` rows of :func:`workbench.detection_metrics`, with a ``run`` column."""
    from .detection.io import RESERVED_CLASS

    check_columns(metrics, ["class", "ap", "ap50"], what="metrics", func=func)
    rows = metrics[metrics["class"].astype(str) == RESERVED_CLASS].copy()
    if "run" not in rows.columns:
        runs = metrics.attrs.get("runs") or [None]
        rows.insert(0, "run", runs[0] if len(runs) == 1 else None)
    return rows


def ap_table(metrics: pd.DataFrame, runs: list[str] | None = None) -> pd.DataFrame:
    """A detector's AP per run and its change from the previous run.

    Parameters
    ----------
    metrics : DataFrame
        :func:`workbench.detection_metrics` of a project (every run): its ``all`` rows are
        used (COCO's mean over classes).
    runs : list of str, default=None
        Run order (the change is measured from the previous run in this order); default:
        the order of the frame.

    Returns
    -------
    DataFrame
        ``run``, ``ap`` (AP over IoU 0.50:0.95), ``ap50``, ``precision``, ``recall`` (at the
        metrics' IoU), ``n_boxes``, ``n_predictions``, ``change`` and ``change50`` (AP and
        AP50 minus the previous run's; NaN for the first run), one row per run in order.

    Examples
    --------
    >>> metrics = pd.DataFrame({"run": ["a", "a", "b", "b"], "class": ["cat", "all"] * 2,
    ...                         "ap": [.3, .3, .4, .4], "ap50": [.5, .5, .7, .7],
    ...                         "precision": .5, "recall": .5, "n_boxes": 10,
    ...                         "n_predictions": 12})
    >>> ap_table(metrics)[["run", "ap", "change"]].round(2)
      run   ap  change
    0   a  0.3     NaN
    1   b  0.4     0.1
    """
    rows = _all_rows(metrics, "ap_table")
    if runs is not None:
        rows = rows.set_index(rows["run"].astype(str)).reindex(list(runs)).reset_index(drop=True)
        rows["run"] = list(runs)
    cols = ["run", "ap", "ap50", "precision", "recall", "n_boxes", "n_predictions"]
    out = rows[[c for c in cols if c in rows.columns]].reset_index(drop=True)
    out["change"] = out["ap"].astype(float).diff()
    out["change50"] = out["ap50"].astype(float).diff()
    return out


def ap_trends(metrics: pd.DataFrame, *, by: str = "batch") -> pd.DataFrame:
    """AP per run along the values of an image metadata column, as one long frame.

    Parameters
    ----------
    metrics : DataFrame
        :func:`workbench.detection_metrics` of a project with ``by=by``.
    by : str, default='batch'
        The column (its values sort as text, e.g. ISO weeks).

    Returns
    -------
    DataFrame
        ``by``, ``series`` (``"AP: <run>"``), ``value`` (AP over IoU 0.50:0.95), ``n``
        (reference boxes), sorted by series then ``by``; the frame of :func:`batch_trends`.
    """
    check_columns(metrics, [by], what="metrics", func="ap_trends")
    rows = _all_rows(metrics, "ap_trends")
    rows = rows[rows[by].notna().to_numpy()]
    out = pd.DataFrame({by: rows[by].astype(str).to_numpy(),
                        "series": ("AP: " + rows["run"].astype(str)).to_numpy(),
                        "value": rows["ap"].astype(float).to_numpy(),
                        "n": rows["n_boxes"].astype(int).to_numpy()})
    return out.sort_values(["series", by], kind="stable").reset_index(drop=True)


def agreement_table(annotations: pd.DataFrame, items: pd.DataFrame, by: str, *,
                    n_boot: int = 0, seed: int = 0) -> pd.DataFrame:
    """Label agreement per value of one metadata column (vendor, batch, ...).

    Uses :func:`workbench.agreement.agreement_by`.

    Parameters
    ----------
    annotations : DataFrame
        Long annotations ``item_id``, ``annotator``, ``label``.
    items : DataFrame
        ``item_id`` and the ``by`` column.
    by : str
        The metadata column.
    n_boot : int, default=0
        Bootstrap resamples for the intervals (0: none, fastest).
    seed : int, default=0

    Returns
    -------
    DataFrame
        ``by``, ``n_items``, ``percent_agreement``, ``fleiss_kappa`` (and ``*_low/_high``
        when ``n_boot > 0``), sorted by ``by``.
    """
    from .agreement import agreement_by

    check_columns(items, ["item_id", by], what="items", func="agreement_table")
    n_boot = check_int(n_boot, "n_boot", "agreement_table", minimum=0)
    frame = agreement_by(annotations, items, by, n_boot=n_boot, seed=seed)
    cols = [by, "n_items", "percent_agreement", "fleiss_kappa"]
    if n_boot:
        cols += ["percent_agreement_low", "percent_agreement_high"]
    return frame[cols].reset_index(drop=True)


def label_issue_rate(issues: pd.DataFrame) -> dict:
    """Share of items flagged as suspected label errors.

    Parameters
    ----------
    issues : DataFrame
        Output of :func:`workbench.label_issues`: one row per item with a boolean
        ``is_issue`` column.

    Returns
    -------
    dict
        ``n_items``, ``n_issues``, ``rate`` (NaN without items).

    Examples
    --------
    >>> label_issue_rate(pd.DataFrame({"is_issue": [True, False, False, False]}))
    {'n_items': 4, 'n_issues': 1, 'rate': 0.25}
    """
    check_columns(issues, ["is_issue"], what="issues", func="label_issue_rate")
    n = int(len(issues))
    k = int(issues["is_issue"].astype(bool).sum())
    return {"n_items": n, "n_issues": k, "rate": (k / n) if n else float("nan")}


def relabel_status_counts(tags: pd.DataFrame, statuses: pd.DataFrame, *,
                          queue: str = "relabel") -> pd.DataFrame:
    """Count the items of the relabel queue by status (as :class:`workbench.RelabelQueue`).

    The queue holds the items that currently carry the queue's tag. An item's status is its
    latest status event in the queue; an item never given one, or tagged again after it
    (``tagged_at`` later than ``updated_at``, when both columns are present), is
    ``queued`` (the rule of :func:`workbench.relabel.queue_statuses`, shared with the
    queue). Items with a status but no tag any more are not in the queue.

    Parameters
    ----------
    tags : DataFrame
        Current tags: ``item_id``, ``tag`` [, ``tagged_at``] (:meth:`workbench.TagStore.tags`).
    statuses : DataFrame
        Current statuses of the queue: ``item_id``, ``status`` [, ``updated_at``]
        (:meth:`workbench.TagStore.statuses`).
    queue : str, default='relabel'
        The queue's tag.

    Returns
    -------
    DataFrame
        ``status`` (every status of :data:`STATUS_ORDER`, in workflow order, then any other),
        ``n_items``.

    Examples
    --------
    >>> tags = pd.DataFrame({"item_id": ["a", "b", "c"], "tag": ["relabel"] * 2 + ["blurry"]})
    >>> statuses = pd.DataFrame({"item_id": ["b", "c"], "status": ["sent", "verified"]})
    >>> relabel_status_counts(tags, statuses).set_index("status")["n_items"].to_dict()
    {'queued': 1, 'sent': 1, 'relabeled': 0, 'verified': 0}
    """
    check_columns(tags, ["item_id", "tag"], what="tags", func="relabel_status_counts")
    check_columns(statuses, ["item_id", "status"], what="statuses",
                  func="relabel_status_counts")
    tagged = tags[tags["tag"].astype(str) == queue]
    if "tagged_at" in tagged.columns:  # an image with box tags: its latest tag counts
        tagged = tagged.sort_values("tagged_at", kind="stable")
    tagged = tagged.drop_duplicates("item_id", keep="last")
    keep = ["item_id", "status"] + (["updated_at"] if "updated_at" in statuses.columns else [])
    st = statuses[keep].drop_duplicates("item_id", keep="last")
    frame = tagged.assign(item_id=tagged["item_id"].astype(str)).merge(
        st.assign(item_id=st["item_id"].astype(str)), on="item_id", how="left")
    from .relabel import queue_statuses  # at call time: one rule, shared with the queue

    times = "tagged_at" in frame.columns and "updated_at" in frame.columns
    status = queue_statuses(frame["status"], frame["tagged_at"] if times else None,
                            frame["updated_at"] if times else None)
    counts = pd.Series(status, dtype=object).value_counts()
    order = list(STATUS_ORDER) + sorted(set(counts.index) - set(STATUS_ORDER))
    return pd.DataFrame({"status": order, "n_items": [int(counts.get(s, 0)) for s in order]})


def batch_trends(errors: pd.DataFrame, agreement: pd.DataFrame | None = None, *,
                 by: str = "batch") -> pd.DataFrame:
    """Error rate per run and label agreement along the batches, as one long frame.

    Parameters
    ----------
    errors : DataFrame
        ``run``, ``correct`` and the ``by`` column (see :func:`error_rate_table`).
    agreement : DataFrame, default=None
        :func:`agreement_table` by the same column (adds a ``percent_agreement`` series).
    by : str, default='batch'
        The ordered metadata column (batches sort as text, e.g. ISO weeks).

    Returns
    -------
    DataFrame
        ``by``, ``series`` (``"error rate: <run>"`` or ``"label agreement"``), ``value``,
        ``n``, sorted by series then ``by``.
    """
    check_columns(errors, ["run", "correct", by], what="errors", func="batch_trends")
    frame = pd.DataFrame({"run": errors["run"].astype(str), by: errors[by].astype(str),
                          "bad": ~errors["correct"].astype(bool)})
    frame = frame[errors[by].notna().to_numpy()]
    g = frame.groupby(["run", by], sort=False)["bad"].agg(["mean", "size"]).reset_index()
    parts = [pd.DataFrame({by: g[by], "series": "error rate: " + g["run"],
                           "value": g["mean"].astype(float), "n": g["size"].astype(int)})]
    if agreement is not None and len(agreement):
        check_columns(agreement, [by, "percent_agreement", "n_items"], what="agreement",
                      func="batch_trends")
        parts.append(pd.DataFrame({by: agreement[by].astype(str), "series": "label agreement",
                                   "value": agreement["percent_agreement"].astype(float),
                                   "n": agreement["n_items"].astype(int)}))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["series", by], kind="stable").reset_index(drop=True)


def worst_slices(errors: pd.DataFrame, *, top: int = 5, max_order: int = 2,
                 features: list[str] | None = None) -> pd.DataFrame:
    """The slices where the model errs most (:func:`workbench.slicing.discover_slices`).

    Parameters
    ----------
    errors : DataFrame
        One run's errors (:func:`workbench.slicing.project_errors`).
    top : int, default=5
        Most slices returned.
    max_order : int, default=2
        Most conditions per slice.
    features : list of str, default=None
        Metadata columns to slice on (default: every metadata column).

    Returns
    -------
    DataFrame
        ``slice``, ``n``, ``errors``, ``error_rate``, ``lift``, ``q_value``, best first
        (only slices significantly worse than the rest).
    """
    from .slicing import discover_slices

    top = check_int(top, "top", "worst_slices", minimum=1)
    if features is None and max_order == 2:  # cached when errors came from results.errors
        from . import results

        found = results.discover_slices(errors, top=top)
    else:
        found = discover_slices(errors, features=features, max_order=max_order, top=top)
    cols = [c for c in ("slice", "n", "errors", "error_rate", "lift", "q_value")
            if c in found.columns]
    return found[cols].reset_index(drop=True)


#: Columns of the vendor-level scorecard shown on the overview (those present are kept).
SCORECARD_COLUMNS = ("n_labels", "gold_accuracy", "consensus_agreement", "kappa",
                     "worst_pair", "rework_rate", "trend_change", "drop_flag")


def scorecard_table(card: pd.DataFrame) -> pd.DataFrame:
    """The vendor-level rows of a scorecard, one per vendor and batch.

    Parameters
    ----------
    card : DataFrame
        :func:`workbench.vendor_scorecard` (its ``attrs["by"]`` names the vendor and batch
        columns; default ``('vendor', 'batch')``).

    Returns
    -------
    DataFrame
        ``<vendor>``, ``<batch>`` (when the card has one) and the columns of
        :data:`SCORECARD_COLUMNS` the card has, sorted by vendor then batch.

    Examples
    --------
    >>> card = pd.DataFrame({"vendor": ["a", "a", "a"], "annotator": [None, None, "x"],
    ...                      "batch": ["w1", "w2", "w1"],
    ...                      "level": ["vendor", "vendor", "annotator"],
    ...                      "n_labels": [10, 12, 10], "drop_flag": [False, True, False]})
    >>> scorecard_table(card)
      vendor batch  n_labels  drop_flag
    0      a    w1        10      False
    1      a    w2        12       True
    """
    by = tuple(card.attrs.get("by") or ("vendor", "batch"))
    check_columns(card, ["level", by[0]], what="card", func="scorecard_table")
    keys = [c for c in by if c in card.columns]
    rows = card[card["level"].astype(str) == "vendor"]
    cols = keys + [c for c in SCORECARD_COLUMNS if c in rows.columns]
    return rows[cols].sort_values(keys, kind="stable").reset_index(drop=True)


def scorecard_flags(table: pd.DataFrame, *, by: tuple[str, ...] = ("vendor", "batch")
                    ) -> pd.DataFrame:
    """The vendors and batches whose quality dropped beyond chance (``drop_flag``).

    Parameters
    ----------
    table : DataFrame
        :func:`scorecard_table` (or a scorecard's vendor rows) with ``drop_flag``.
    by : tuple of str, default=('vendor', 'batch')
        The vendor and batch columns (a missing batch column is left out).

    Returns
    -------
    DataFrame
        ``<vendor>``, ``<batch>``, ``trend_change`` (when present), one row per flagged
        vendor and batch, in the table's order.

    Examples
    --------
    >>> table = pd.DataFrame({"vendor": ["a", "a", "b"], "batch": ["w1", "w2", "w2"],
    ...                       "trend_change": [float("nan"), -0.1, 0.0],
    ...                       "drop_flag": [False, True, False]})
    >>> scorecard_flags(table)
      vendor batch  trend_change
    0      a    w2          -0.1
    """
    check_columns(table, ["drop_flag", by[0]], what="table", func="scorecard_flags")
    cols = [c for c in (*by, "trend_change") if c in table.columns]
    flagged = table["drop_flag"].fillna(False).astype(bool).to_numpy()
    return table.loc[flagged, cols].reset_index(drop=True)


_SCORECARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_scorecard(project: Any, *, store: Any = None,
                     by: tuple[str, ...] = ("vendor", "batch")) -> pd.DataFrame:
    """:func:`workbench.vendor_scorecard` of a project, computed once per project load.

    The result is kept for the project object (reopen the project, ``project.reload()``,
    to see new gold tags or rework); a read-only overview never creates a tag store: a
    project without one is scored without gold and rework.

    Parameters
    ----------
    project : Project
    store : TagStore, default=None
        Default: the project's store if it exists, else an empty in-memory one.
    by : tuple of str, default=('vendor', 'batch')

    Returns
    -------
    DataFrame
        The scorecard (do not modify it: it is shared).
    """
    from . import results

    by = tuple(by)
    try:
        cache = _SCORECARDS.setdefault(project, {})
    except TypeError:  # not weak-referenceable: no cache
        cache = {}
    key = (by, id(store))
    if key not in cache:
        # cached on disk under the tag store's state (a new gold tag gives a new entry)
        cache[key] = results.scorecard(project, by=by, store=store)
    return cache[key]


def release_table(releases: pd.DataFrame) -> pd.DataFrame:
    """The label releases as the overview lists them, newest first.

    Parameters
    ----------
    releases : DataFrame
        :func:`workbench.list_releases`.

    Returns
    -------
    DataFrame
        ``release``, ``created_at`` (UTC, ``YYYY-MM-DD HH:MM``), ``author``, ``message``,
        ``n_changed``, ``changes`` (net change per class, e.g. ``"1 +3, 7 -3"``; classes
        with no net change are left out).

    Examples
    --------
    >>> releases = pd.DataFrame({"release": [1], "created_at": [pd.Timestamp(
    ...     "2026-01-05 10:00", tz="UTC")], "author": ["ann"], "message": ["fix 1/7"],
    ...     "n_changed": [3], "changed_per_class": [{"1": 3, "7": -3}]})
    >>> release_table(releases).iloc[0].to_dict()["changes"]
    '1 +3, 7 -3'
    """
    check_columns(releases, ["release", "created_at", "author", "message", "n_changed",
                             "changed_per_class"], what="releases", func="release_table")

    def changes(per_class) -> str:
        if not isinstance(per_class, dict):
            return ""
        return ", ".join(f"{c} {int(v):+d}" for c, v in per_class.items() if int(v))

    times = pd.to_datetime(releases["created_at"], utc=True)
    out = pd.DataFrame({
        "release": releases["release"].astype(int).to_numpy(),
        "created_at": times.dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
        "author": releases["author"].astype(str).to_numpy(),
        "message": releases["message"].astype(str).to_numpy(),
        "n_changed": releases["n_changed"].astype(int).to_numpy(),
        "changes": [changes(v) for v in releases["changed_per_class"]]})
    return out.sort_values("release", ascending=False, kind="stable").reset_index(drop=True)


def drift_headline(summary: pd.DataFrame) -> dict | None:
    """The overview's drift row: the most drifted (batch, column) and how many drifted.

    Parameters
    ----------
    summary : DataFrame
        :func:`workbench.drift.drift_summary` (drifted pairs first, then by PSI).

    Returns
    -------
    dict or None
        ``by``, ``baseline`` (from the summary's ``attrs``), ``batch``, ``column``, ``psi``,
        ``drifted``, ``value``, ``share_baseline``, ``share`` of the first row (the most
        drifted pair, or the largest PSI when none drifted), ``n_drifted``, ``n_pairs``,
        ``flagged`` (the drifted pairs as ``"<batch> <column>"``), ``psi_threshold`` and
        ``alpha`` (the summary's thresholds); None without any pair.

    Examples
    --------
    >>> summary = pd.DataFrame({"batch": ["w3", "w2"], "column": ["scanner", "vendor"],
    ...     "psi": [0.41, 0.05], "drifted": [True, False], "value": ["c", "x"],
    ...     "share_baseline": [0.1, 0.5], "share": [0.4, 0.45]})
    >>> h = drift_headline(summary)
    >>> h["batch"], h["column"], h["psi"], h["n_drifted"], h["n_pairs"], h["flagged"]
    ('w3', 'scanner', 0.41, 1, 2, ['w3 scanner'])
    """
    check_columns(summary, ["batch", "column", "psi", "drifted"], what="summary",
                  func="drift_headline")
    if not len(summary):
        return None
    top = summary.iloc[0]
    drifted = summary["drifted"].fillna(False).astype(bool).to_numpy()
    return {
        "by": summary.attrs.get("by", "batch"), "baseline": summary.attrs.get("baseline"),
        "batch": str(top["batch"]), "column": str(top["column"]), "psi": float(top["psi"]),
        "drifted": bool(top["drifted"]),
        "value": None if pd.isna(top.get("value")) else str(top.get("value")),
        "share_baseline": top.get("share_baseline"), "share": top.get("share"),
        "n_drifted": int(drifted.sum()), "n_pairs": int(len(summary)),
        "psi_threshold": summary.attrs.get("psi_threshold"),
        "alpha": summary.attrs.get("alpha"),
        "flagged": [f"{b} {c}" for b, c in zip(summary["batch"][drifted],
                                                summary["column"][drifted], strict=True)],
    }


# --------------------------------------------------------------------------- orchestration


@dataclasses.dataclass
class OverviewKPIs:
    """Everything the manager overview shows; a missing section is None with a reason."""

    summary: dict
    error_rates: pd.DataFrame | None = None
    #: Detection projects: :func:`ap_table` (instead of ``error_rates``).
    ap: pd.DataFrame | None = None
    task: str = "classification"
    agreement: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    agreement_overall: dict | None = None
    label_issues: dict | None = None
    relabel: pd.DataFrame | None = None
    trends: pd.DataFrame | None = None
    worst: pd.DataFrame | None = None
    run: str | None = None
    #: :func:`scorecard_table` and :func:`scorecard_flags` (None when not computed).
    scorecard: pd.DataFrame | None = None
    scorecard_flagged: pd.DataFrame | None = None
    #: :func:`release_table` (empty: no release yet; None: the project cannot have releases).
    releases: pd.DataFrame | None = None
    #: :func:`workbench.drift.drift_summary` by the trend column (None when not computed).
    drift: pd.DataFrame | None = None
    problems: dict[str, str] = dataclasses.field(default_factory=dict)


def _store_exists(project: Any) -> bool:
    if os.environ.get("WORKBENCH_DB_URL"):
        return True
    root = getattr(project, "root", None)
    if root is None:
        return True  # in-memory store shared in this kernel
    return (Path(root) / ".workbench" / "workbench.db").exists()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]


def overview_kpis(project: Any, *, store: Any = None, by: tuple[str, ...] = ("vendor", "batch"),
                  trend_by: str = "batch", queue: str = "relabel", top: int = 5,
                  issues: bool = True) -> OverviewKPIs:
    """Compute every section of the manager overview; failures become ``problems``.

    Parameters
    ----------
    project : Project
        An open project.
    store : TagStore, default=None
        The tag store; default :meth:`workbench.TagStore.for_project` (only if the project
        already has one: a read-only overview never creates a database).
    by : tuple of str, default=('vendor', 'batch')
        Metadata columns to measure agreement on (those absent are skipped).
    trend_by : str, default='batch'
        Column of the trend chart.
    queue : str, default='relabel'
        The relabel queue's tag.
    top : int, default=5
        Worst slices shown.
    issues : bool, default=True
        Run the label-issue check (cleanlab) on the default run.

    Returns
    -------
    OverviewKPIs
    """
    top = check_int(top, "top", "overview_kpis", minimum=1)
    out = OverviewKPIs(summary=project_summary(project), run=project.default_run)
    if getattr(project, "task", "classification") == "detection":
        _detection_kpis(project, out, trend_by=trend_by, top=top, issues=issues)
        _relabel_kpis(project, out, store, queue)
        out.problems["scorecard"] = "vendor scorecards cover classification projects only"
        _drift_kpis(project, out, trend_by)
        return out
    meta = [c for c in by if c in project.items.columns]

    # model errors per run, trends, worst slices
    per_run = []
    if project.runs:
        try:
            from . import results

            for run in project.runs:
                e = results.errors(project, run)  # cached for every kernel
                per_run.append(e.assign(run=run))
            long = pd.concat(per_run, ignore_index=True)
            out.error_rates = error_rate_table(long, runs=list(project.runs))
        except Exception as exc:  # noqa: BLE001 - shown on the dashboard
            out.problems["error_rates"] = _reason(exc)
    else:
        out.problems["error_rates"] = "the project has no predictions"

    # agreement per vendor / batch
    ann = project.annotations
    if len(ann):
        try:
            from . import results

            out.agreement_overall = results.agreement_summary(project)
        except Exception as exc:  # noqa: BLE001
            out.problems["agreement"] = _reason(exc)
        for col in meta:
            try:
                from . import results

                out.agreement[col] = results.agreement_table(project, col)
            except Exception as exc:  # noqa: BLE001
                out.problems[f"agreement_{col}"] = _reason(exc)
    else:
        out.problems["agreement"] = "the project has no annotations"

    if per_run and trend_by not in project.items.columns:
        out.problems["trends"] = f"the items have no {trend_by!r} column"
    elif per_run:
        try:
            long = pd.concat(per_run, ignore_index=True)
            if trend_by not in long.columns:
                long = long.merge(project.items[["item_id", trend_by]], on="item_id",
                                  how="left")
            out.trends = batch_trends(long, out.agreement.get(trend_by), by=trend_by)
        except Exception as exc:  # noqa: BLE001
            out.problems["trends"] = _reason(exc)

    if per_run:
        try:
            default = project.default_run or project.runs[0]
            from . import results

            out.worst = worst_slices(results.errors(project, default), top=top)
        except Exception as exc:  # noqa: BLE001
            out.problems["worst"] = _reason(exc)

    if issues and project.runs and getattr(project, "prob_columns", []):
        try:
            from . import results

            out.label_issues = label_issue_rate(results.label_issues(
                project, project.default_run, columns=["is_issue"]))  # one column read
        except Exception as exc:  # noqa: BLE001
            out.problems["label_issues"] = _reason(exc)
    elif issues:
        out.problems["label_issues"] = "needs a run with class probabilities"

    _relabel_kpis(project, out, store, queue)
    _scorecard_kpis(project, out, store, by)
    _release_kpis(project, out)
    _drift_kpis(project, out, trend_by)
    return out


def image_issue_rate(issues: pd.DataFrame, item_ids) -> dict:
    """Share of images with at least one suspected box label error (detection projects).

    Parameters
    ----------
    issues : DataFrame
        Output of :func:`workbench.label_issues` on a detection project: one row per
        scored box with ``item_id`` and a boolean ``is_issue``.
    item_ids : sequence of str
        Every image of the project (images without a row count as clean).

    Returns
    -------
    dict
        As :func:`label_issue_rate` over images: ``n_items`` (images), ``n_issues``
        (images with a flagged box), ``rate``; and ``n_boxes`` (flagged boxes).

    Examples
    --------
    >>> issues = pd.DataFrame({"item_id": ["a", "a", "b"], "is_issue": [True, True, False]})
    >>> image_issue_rate(issues, ["a", "b", "c", "d"])
    {'n_items': 4, 'n_issues': 1, 'rate': 0.25, 'n_boxes': 2}
    """
    check_columns(issues, ["item_id", "is_issue"], what="issues", func="image_issue_rate")
    flagged = issues["is_issue"].astype(bool).to_numpy()
    images = pd.Index(pd.Series(list(item_ids), dtype=object).astype(str)).unique()
    bad = set(issues.loc[flagged, "item_id"].astype(str)) & set(images)
    per_image = pd.DataFrame({"is_issue": images.isin(list(bad))})
    return {**label_issue_rate(per_image), "n_boxes": int(flagged.sum())}


def _detection_kpis(project: Any, out: OverviewKPIs, *, trend_by: str, top: int,
                    issues: bool = True) -> None:
    """AP per run, AP trends, the slices where boxes are missed most, the box label issues."""
    from .detection import detection_metrics

    out.task = "detection"
    out.summary["n_boxes"] = int(len(project.boxes))
    out.problems["agreement"] = ("not computed for detection projects (it compares one "
                                 "label per image)")
    if not project.runs:
        out.problems["ap"] = "the project has no detections"
        out.problems["label_issues"] = "needs a run with detections"
        return
    if issues:  # share of images with a suspected missing / mislocated / wrong-class box
        try:
            from .label_quality import label_issues

            default = project.default_run or project.runs[0]
            out.label_issues = image_issue_rate(label_issues(project, default),
                                                project.items["item_id"])
        except Exception as exc:  # noqa: BLE001 - shown on the dashboard
            out.problems["label_issues"] = _reason(exc)
    try:
        out.ap = ap_table(detection_metrics(project), runs=list(project.runs))
    except Exception as exc:  # noqa: BLE001 - shown on the dashboard
        out.problems["ap"] = _reason(exc)
    if trend_by not in project.items.columns:
        out.problems["trends"] = f"the items have no {trend_by!r} column"
    else:
        try:
            out.trends = ap_trends(detection_metrics(project, by=trend_by), by=trend_by)
        except Exception as exc:  # noqa: BLE001
            out.problems["trends"] = _reason(exc)
    try:
        from .detection import match_detections
        from .slicing import discover_slices

        default = project.default_run or project.runs[0]
        found = discover_slices(match_detections(project, default), target="is_fn", top=top)
        cols = [c for c in ("slice", "n", "errors", "error_rate", "lift", "q_value")
                if c in found.columns]
        out.worst = found[cols].reset_index(drop=True)
    except Exception as exc:  # noqa: BLE001
        out.problems["worst"] = _reason(exc)


def _relabel_kpis(project: Any, out: OverviewKPIs, store: Any, queue: str) -> None:
    """The relabel queue by status (never creates a store)."""
    try:
        if store is None and _store_exists(project):
            from .tags import TagStore

            store = TagStore.for_project(project)
        if store is None:
            out.relabel = relabel_status_counts(
                pd.DataFrame({"item_id": [], "tag": []}),
                pd.DataFrame({"item_id": [], "status": []}), queue=queue)
        else:
            out.relabel = relabel_status_counts(store.tags(), store.statuses(queue),
                                                queue=queue)
    except Exception as exc:  # noqa: BLE001
        out.problems["relabel"] = _reason(exc)


def _scorecard_kpis(project: Any, out: OverviewKPIs, store: Any, by: tuple[str, ...]) -> None:
    """The vendor scorecards per batch (cached per project load) and the flagged drops."""
    cols = tuple(c for c in by if c in project.items.columns
                 or c in project.annotations.columns)[:2]
    if not cols:
        out.problems["scorecard"] = (f"neither the items nor the annotations have a "
                                     f"{by[0]!r} column")
        return
    if not len(project.annotations):
        out.problems["scorecard"] = "the project has no annotations"
        return
    try:
        card = cached_scorecard(project, store=store, by=cols)
        out.scorecard = scorecard_table(card)
        out.scorecard_flagged = scorecard_flags(out.scorecard, by=cols)
    except Exception as exc:  # noqa: BLE001 - shown on the dashboard
        out.problems["scorecard"] = _reason(exc)


def _release_kpis(project: Any, out: OverviewKPIs) -> None:
    """The label releases (a project without a folder has none and cannot have any)."""
    if getattr(project, "root", None) is None:
        return
    try:
        from .releases import list_releases

        out.releases = release_table(list_releases(project))
    except Exception as exc:  # noqa: BLE001 - shown on the dashboard
        out.problems["releases"] = _reason(exc)


def _drift_kpis(project: Any, out: OverviewKPIs, by: str) -> None:
    """Drift per batch (by the trend column) against the first batch, most drifted first."""
    if by not in project.items.columns:
        out.problems["drift"] = f"the items have no {by!r} column"
        return
    try:
        from . import results
        from .drift import drift_summary

        out.drift = drift_summary(results.drift(project, by))
    except Exception as exc:  # noqa: BLE001 - shown on the dashboard
        out.problems["drift"] = _reason(exc)
