"""Suspected label errors: cleanlab's confident learning, combined with annotator votes.

:func:`find_label_issues_frame` works on plain frames (labels + out-of-sample model
probabilities [+ annotations]); :func:`label_issues` takes them from a project.

How the scores are combined
---------------------------
cleanlab gives ``model_quality`` (``get_label_quality_scores``, by default the model's
probability of the given label, "self-confidence") and ``model_issue``
(``find_label_issues``, by default ``filter_by='prune_by_noise_rate'``). When annotations
exist, each item's annotator votes are turned into class shares ``s_k`` and mixed with the
model probabilities ``p_k`` like extra, equally trusted opinions::

    q_k = (p_k + w * n * s_k) / (1 + w * n)     # n = number of annotator labels, w = weight

``label_quality`` is ``q`` at the given label when the quality method is self-confidence
(in general: ``(model_quality + w * n * annotator_agreement) / (1 + w * n)``), and
``suggested_label`` is ``argmax q``. Without annotations ``label_quality ==
model_quality`` and ``suggested_label`` is the model's top class. ``is_issue`` is
``model_issue`` or ``annotator_issue`` (at least two annotator labels and fewer than half of
them equal the given label).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ._progress import progress
from ._validation import check_columns, check_option
from .agreement import _align_pred_probs, _encode
from .errors import MissingDependencyError, SchemaError

__all__ = ["label_issues", "find_label_issues_frame", "FILTERS", "QUALITY_METHODS"]

FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
           "predicted_neq_given", "low_normalized_margin", "low_self_confidence")
QUALITY_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")


def _string_index(index: pd.Index) -> pd.Index:
    """The index as strings, without converting when it already holds strings."""
    if isinstance(index.dtype, pd.StringDtype) or (index.dtype == object
                                                   and index.inferred_type == "string"):
        return index
    return index.astype(str)


def _labels_series(labels: Any, func: str) -> pd.Series:
    if isinstance(labels, pd.DataFrame):
        check_columns(labels, ["item_id", "label"], what="labels", func=func)
        ser = pd.Series(labels["label"].array, index=pd.Index(labels["item_id"]),
                        name="label")
    elif isinstance(labels, pd.Series):
        ser = labels
    else:
        raise TypeError(
            f"The 'labels' parameter of {func} must be a Series indexed by item_id or a "
            f"DataFrame with item_id and label. Got {type(labels).__name__} instead."
        )
    index = _string_index(ser.index)
    if index is not ser.index:
        ser = ser.set_axis(index)
    if index.hasnans:
        unique = len(pd.factorize(index)[1]) == len(index)
    else:  # the hash table of the index, kept by it (a project's item index: built once)
        unique = index.is_unique
    if not unique:
        dup = index[index.duplicated()].unique()[:5].tolist()
        raise SchemaError(f"{func}: labels has several rows for item(s) {dup}.")
    return ser


def _same_ids(index: pd.Index, ids: Any) -> bool:
    """Whether ``ids`` is exactly ``index`` (same ids, same order), checked in Arrow."""
    if len(index) != len(ids):
        return False
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        left = pa.array(index)
        right = pa.array(np.asarray(ids))
        if not pa.types.is_string(left.type) and not pa.types.is_large_string(left.type):
            return False
        if not pa.types.is_string(right.type) and not pa.types.is_large_string(right.type):
            return False
        eq = pc.equal(left, right)
        return bool(pc.all(eq).as_py()) and eq.null_count == 0
    except Exception:  # any type trouble: take the general path
        return False


#: Rows per block when the model is mixed with the annotator votes: a few (rows, classes)
#: arrays of one block at a time instead of the whole project's (small enough to stay in
#: the CPU cache: 2.5x faster than blocks of a million rows).
_MIX_ROWS = 1 << 16


def _mix_annotations(item_counts, pos, given, probs, model_quality, weight):
    """Mix the model with each item's annotator votes (see the module docstring).

    ``item_counts`` (annotated items x classes) are the votes, ``pos`` each labelled item's
    row in it (-1: no annotation). Computed in blocks of :data:`_MIX_ROWS` rows, element for
    element as on the whole arrays (the same numbers), so the memory is a few blocks.

    Returns
    -------
    n_labels, annotator_agreement, suggested, label_quality, consensus (codes) : ndarray
    """
    n, k = probs.shape
    n_lab = np.empty(n)
    agreement = np.empty(n)
    suggested = np.empty(n, dtype=np.intp)
    quality = np.empty(n)
    cons = np.empty(n, dtype=np.intp)
    for start in range(0, n, _MIX_ROWS):
        rows = slice(start, min(n, start + _MIX_ROWS))
        at = pos[rows]
        has_ann = at >= 0
        counts = np.zeros((len(at), k))
        counts[has_ann] = item_counts[at[has_ann]]
        labels = counts.sum(axis=1)
        voted = labels > 0
        # the shares of the votes, 0 without votes (what nan_to_num makes of 0 / 0)
        shares = np.divide(counts, labels[:, None], out=np.zeros_like(counts),
                           where=voted[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            agree = np.where(voted, counts[np.arange(len(at)), given[rows]] / labels, np.nan)
        wn = weight * labels
        mixed = (probs[rows] + wn[:, None] * shares) / (1 + wn)[:, None]
        suggested[rows] = mixed.argmax(axis=1)
        quality[rows] = (model_quality[rows] + wn * np.where(voted, agree, 0.0)) / (1 + wn)
        cons[rows] = counts.argmax(axis=1)  # the first class with the most votes
        n_lab[rows] = labels
        agreement[rows] = agree
    return n_lab, agreement, suggested, quality, cons


def find_label_issues_frame(labels: Any, pred_probs: Any, *, classes=None,
                            annotations: pd.DataFrame | None = None,
                            filter_by: str = "prune_by_noise_rate",
                            quality_method: str = "self_confidence",
                            annotator_weight: float = 1.0,
                            n_jobs: int | None = None) -> pd.DataFrame:
    """Rank items by how likely their given label is wrong.

    Parameters
    ----------
    labels : Series or DataFrame
        Given labels: a Series indexed by ``item_id`` or a frame with ``item_id`` and
        ``label``. Missing labels (NA) are skipped.
    pred_probs : DataFrame or tuple (item_ids, array)
        **Out-of-sample** model probabilities (e.g. cross-validated): a DataFrame indexed by
        ``item_id`` (or with an ``item_id`` column) with one column per class (``<class>``
        or ``prob_<class>``), or ``(item_ids, array)`` with columns in ``classes`` order
        (``project.pred_probs(run)``).
    classes : sequence of str, optional
        Class order. Default: sorted given labels (then ``pred_probs`` must be a DataFrame
        with a column per class, or an array with exactly that many columns).
    annotations : DataFrame, optional
        Long annotations (``item_id``, ``annotator``, ``label``) to combine with the model.
    filter_by : str, default='prune_by_noise_rate'
        cleanlab's ``find_label_issues`` filter (its default).
    quality_method : {'self_confidence', 'normalized_margin', 'confidence_weighted_entropy'},
        default='self_confidence'
        cleanlab's ``get_label_quality_scores`` method.
    annotator_weight : float, default=1.0
        Weight ``w`` of one annotator label relative to the model (see module docstring).
    n_jobs : int, optional
        Passed to cleanlab's ``find_label_issues``. None: cleanlab's default (all cores),
        except 1 below 50,000 items, where worker processes cost more than they save.

    Returns
    -------
    DataFrame
        One row per labelled item with probabilities, sorted by ``label_quality``
        ascending (most suspicious first): ``item_id``, ``given_label``,
        ``suggested_label``, ``label_quality``, ``is_issue``, ``model_quality``,
        ``model_issue``, ``model_label`` (model's top class), ``rank`` (1 = most
        suspicious); with annotations also ``n_labels``, ``consensus_label``,
        ``annotator_agreement`` (share of annotator labels equal to the given label, NaN
        without labels) and ``annotator_issue``.

    Raises
    ------
    SchemaError
        If labels are outside ``classes``, probabilities are missing for every item, or
        no item is left.
    """
    func = "find_label_issues_frame"
    check_option(filter_by, "filter_by", func, FILTERS)
    check_option(quality_method, "quality_method", func, QUALITY_METHODS)
    if isinstance(annotator_weight, bool) or not isinstance(annotator_weight, (int, float)) \
            or annotator_weight < 0:
        raise ValueError(f"The 'annotator_weight' parameter of {func} must be a float in the "
                         f"range [0, inf). Got {annotator_weight!r} instead.")
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import (
            get_confidence_weighted_entropy_for_each_label,
            get_normalized_margin_for_each_label,
            get_self_confidence_for_each_label,
        )
    except ImportError as exc:  # pragma: no cover - core dependency
        raise MissingDependencyError("label issues need cleanlab: pip install cleanlab") from exc

    ser = _labels_series(labels, func)
    if ser.hasnans:
        ser = ser[ser.notna()]
    codes, uniques = pd.factorize(ser.array)
    uniques = [str(u) for u in uniques]
    if classes is None:
        classes = sorted(set(uniques))
        if isinstance(pred_probs, tuple) and np.asarray(pred_probs[1]).shape[1] != len(classes):
            raise SchemaError(
                f"{func}: pred_probs has {np.asarray(pred_probs[1]).shape[1]} columns but the "
                f"labels use {len(classes)} classes; pass classes= in the model's column order.")
    classes = [str(c) for c in classes]
    class_of_unique = pd.Index(classes).get_indexer(uniques)
    if (class_of_unique < 0).any():
        unknown = sorted(u for u, c in zip(uniques, class_of_unique, strict=True) if c < 0)
        raise SchemaError(
            f"{func}: labels use {unknown[:10]} which are not in classes {classes[:20]}. "
            f"Add them to classes or fix the labels.")
    given = class_of_unique[codes]
    index = ser.index
    if isinstance(pred_probs, tuple) and len(pred_probs) == 2 and \
            _same_ids(index, pred_probs[0]):
        probs = np.asarray(pred_probs[1], dtype=np.float64)  # already aligned: no copy
        if probs.ndim != 2 or probs.shape[1] != len(classes):
            raise SchemaError(f"{func}: pred_probs has shape {probs.shape}; expected "
                              f"({len(index)}, {len(classes)}) (one column per class).")
        if not np.isfinite(probs).all():
            raise SchemaError(f"{func}: pred_probs holds NaN or infinite values.")
    else:
        ids_obj = index.to_numpy(dtype=object)
        probs = _align_pred_probs(pred_probs, ids_obj, classes, func, require_all=False)
        has = ~np.isnan(probs).any(axis=1)
        if not has.all():
            if not has.any():
                raise SchemaError(f"{func}: pred_probs has no row for any labelled item "
                                  f"(e.g. {list(ids_obj[:3])}). Check the item ids.")
            warnings.warn(
                f"{func}: {int((~has).sum())} labelled item(s) have no model probabilities "
                f"(e.g. {list(ids_obj[~has][:3])}) and are left out.", stacklevel=2)
            index, given, probs = index[has], given[has], probs[has]
    if len(index) == 0:
        raise SchemaError(f"{func}: no labelled item is left to check.")
    if np.any(np.abs(probs.sum(axis=1) - 1) > 1e-3):
        raise SchemaError(f"{func}: pred_probs rows must sum to 1 (some are off by more than "
                          f"1e-3); pass probabilities, not scores or logits.")

    bar = progress(total=3 if annotations is not None and len(annotations) else 2,
                   desc="label issues", unit="stage")
    bar.set_postfix_str("cleanlab find_label_issues")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n_jobs is None and len(given) < 50_000:
            n_jobs = 1  # worker processes cost more than they save on small inputs
        model_issue = find_label_issues(given, probs, filter_by=filter_by, n_jobs=n_jobs)
        bar.update()
        bar.set_postfix_str("cleanlab label quality scores")
        # what get_label_quality_scores(given, probs, method=quality_method) returns, without
        # its second pass of input checks over every label (find_label_issues made them)
        scores = {"self_confidence": get_self_confidence_for_each_label,
                  "normalized_margin": get_normalized_margin_for_each_label,
                  "confidence_weighted_entropy": get_confidence_weighted_entropy_for_each_label}
        model_quality = scores[quality_method](given, probs)
        bar.update()
    model_label = probs.argmax(axis=1)
    n = len(index)
    quality = model_quality
    suggested = model_label
    extra: dict[str, Any] = {}
    if annotations is not None and len(annotations):
        bar.set_postfix_str("annotator votes")
        enc = _encode(annotations, func, classes=classes)
        items_index = pd.Index(enc.items)
        if isinstance(items_index.dtype, pd.StringDtype) and \
                isinstance(index.dtype, pd.StringDtype):
            pos = items_index.get_indexer(index)  # string to string, no Python objects
        else:
            pos = pd.Index(enc.items.astype(str)).get_indexer(index.to_numpy(dtype=object))
        n_lab, agreement, suggested, quality, cons = _mix_annotations(
            enc.counts, pos, given, probs, model_quality, annotator_weight)
        cons_label = pd.array(classes, dtype="str").take(np.where(n_lab > 0, cons, -1),
                                                          allow_fill=True)
        annotator_issue = (n_lab >= 2) & (np.nan_to_num(agreement, nan=1.0) < 0.5)
        extra = {
            "n_labels": n_lab.astype(np.int64),
            "consensus_label": cons_label,
            "annotator_agreement": agreement,
            "annotator_issue": annotator_issue,
        }
        is_issue = model_issue | annotator_issue
        bar.update()
    else:
        is_issue = model_issue
    # sorted by label quality, ties in input order; strings via Arrow takes (no Python loop)
    order = np.argsort(np.asarray(quality, dtype=np.float64), kind="stable")
    names = pd.array(classes, dtype="str")
    item_ids = index.take(order)
    out = pd.DataFrame({
        "item_id": item_ids.array if isinstance(item_ids.dtype, pd.StringDtype)
        else pd.array(item_ids.astype(str), dtype="str"),
        "given_label": names.take(given[order]),
        "suggested_label": names.take(suggested[order]),
        "label_quality": np.asarray(quality, dtype=np.float64)[order],
        "is_issue": np.asarray(is_issue, dtype=bool)[order],
        "model_quality": np.asarray(model_quality, dtype=np.float64)[order],
        "model_issue": np.asarray(model_issue, dtype=bool)[order],
        "model_label": names.take(model_label[order]),
        **{k: (v.take(order) if hasattr(v, "take") and not isinstance(v, np.ndarray)
               else v[order]) for k, v in extra.items()},
    })
    out["rank"] = np.arange(1, n + 1)
    bar.close()
    return out


def label_issues(project, run: str | None = None, *, use_annotations: bool = True,
                 filter_by: str = "prune_by_noise_rate",
                 quality_method: str = "self_confidence", annotator_weight: float = 1.0,
                 n_jobs: int | None = None, **detection_options) -> pd.DataFrame:
    """Suspected label errors of a project: its labels checked against a model run.

    A detection project (``project.task == 'detection'``) is handed to
    :func:`workbench.detection.label_quality.detection_label_issues` (one row per suspected
    missing, mislocated or wrong-class box, scored by ``cleanlab.object_detection``); the
    classification options below are then not used.

    Parameters
    ----------
    project : Project
        The given labels are ``project.reference_labels()`` (the item's ``label``, else the
        annotators' majority); probabilities come from ``project.pred_probs(run)``, which
        must be out of sample (cross-validated) for the scores to mean anything.
    run : str, optional
        Model run; default the project's default run.
    use_annotations : bool, default=True
        Combine with annotator votes when the project has annotations (for detection
        projects: with the annotators' consensus boxes; ``False`` = cleanlab alone).
    filter_by, quality_method, annotator_weight, n_jobs
        See :func:`find_label_issues_frame`.
    **detection_options
        Detection projects only: ``threshold``, ``top_k``, ``high_probability_threshold``,
        ``low_probability_threshold`` of ``detection_label_issues``.

    Returns
    -------
    DataFrame
        See :func:`find_label_issues_frame`; sorted by ``label_quality`` ascending.

    See Also
    --------
    find_label_issues_frame : the same on plain frames.

    Examples
    --------
    >>> import workbench as wb  # doctest: +SKIP
    >>> issues = wb.label_issues(wb.open_project(), run="candidate")  # doctest: +SKIP
    >>> issues[issues["is_issue"]].head()  # doctest: +SKIP
    """
    if getattr(project, "task", None) == "detection":
        from .detection.label_quality import detection_label_issues

        return detection_label_issues(project, run, use_annotations=use_annotations,
                                      **detection_options)
    if detection_options:
        raise TypeError(f"label_issues got options {sorted(detection_options)} that are for "
                        f"detection projects only; this project's task is "
                        f"{getattr(project, 'task', 'classification')!r}.")
    labels = project.reference_labels()
    probs = project.pred_probs(run)
    ann = project.annotations if use_annotations and len(project.annotations) else None
    return find_label_issues_frame(labels, probs, classes=project.classes, annotations=ann,
                                   filter_by=filter_by, quality_method=quality_method,
                                   annotator_weight=annotator_weight, n_jobs=n_jobs)
