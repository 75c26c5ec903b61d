"""cleanlab's Datalab checks on arrays, with or without the Hugging Face ``datasets`` package.

``cleanlab.Datalab`` needs ``datasets`` (the ``cleanlab[datalab]`` extra) only to wrap the
data in a Hugging Face ``Dataset``; the checks themselves are cleanlab's *issue managers*,
which take arrays (features, a nearest-neighbour graph, probabilities). The workbench does
not depend on ``datasets`` (a large download with its own pins), so:

* when ``datasets`` is installed, :func:`find_issues` calls the public
  ``Datalab(data, label_name=...).find_issues(features=, pred_probs=, knn_graph=,
  issue_types=)`` and reads ``get_issues`` / ``get_info``;
* otherwise it runs the **same issue managers** (``cleanlab.datalab.internal``) in the same
  order with the same arguments and shares the graph between them the way ``Datalab`` does
  (each manager's ``info['statistics']`` is merged into the statistics the next one reads),
  through a minimal stand-in for the ``Datalab`` object (``labels`` and ``get_info``).

The second path touches cleanlab internals: it was written against cleanlab
:data:`WRITTEN_FOR` and ``tests/unit/test_data_issues.py`` checks it against ``Datalab``
whenever ``datasets`` is installed. A manager that fails is reported in
:attr:`Findings.errors` (``Datalab`` prints "Error in <issue>" and carries on the same way).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Findings", "find_issues", "has_datalab", "WRITTEN_FOR"]

#: The cleanlab version the stand-in path was written against.
WRITTEN_FOR = "2.9.0"

_MANAGERS = {
    "near_duplicate": ("duplicate", "NearDuplicateIssueManager"),
    "outlier": ("outlier", "OutlierIssueManager"),
    "non_iid": ("noniid", "NonIIDIssueManager"),
    "underperforming_group": ("underperforming_group", "UnderperformingGroupIssueManager"),
}


def has_datalab() -> bool:
    """True when ``cleanlab.Datalab`` can run (the ``datasets`` package is installed)."""
    return importlib.util.find_spec("datasets") is not None


@dataclass
class Findings:
    """What the checks found: per issue type, cleanlab's issues frame and info dict."""

    issues: dict[str, pd.DataFrame] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    engine: str = ""


class _Lab:
    """The part of ``Datalab`` the issue managers read: ``labels`` and ``get_info``."""

    def __init__(self, labels: np.ndarray | None):
        self.labels = labels
        self._info: dict[str, dict] = {"statistics": {}}

    def get_info(self, issue_name: str) -> dict:
        return self._info.setdefault(issue_name, {})


def _run_managers(types: list[str], *, k: int, features, knn_graph, labels, pred_probs
                  ) -> Findings:
    out = Findings(engine="cleanlab issue managers")
    lab = _Lab(labels)
    for name in types:
        module, cls = _MANAGERS[name]
        manager_cls = getattr(importlib.import_module(
            f"cleanlab.datalab.internal.issue_manager.{module}"), cls)
        args: dict[str, Any] = {"features": features, "knn_graph": knn_graph}
        if pred_probs is not None:
            args["pred_probs"] = pred_probs
        try:
            manager = manager_cls(datalab=lab, k=k)
            manager.find_issues(**args)
        except Exception as exc:  # as Datalab: report the failed check, run the others
            out.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        lab.get_info("statistics").update(manager.info.get("statistics", {}))
        out.issues[name] = manager.issues.reset_index(drop=True)
        out.info[name] = manager.info
    return out


def _run_datalab(types: list[str], *, k: int, features, knn_graph, labels, pred_probs
                 ) -> Findings:
    from cleanlab import Datalab

    out = Findings(engine="cleanlab Datalab")
    data: dict[str, Any] = {"row": np.arange(knn_graph.shape[0])}
    if labels is not None:
        data["label"] = labels
    lab = Datalab(data, label_name="label" if labels is not None else None, verbosity=0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        lab.find_issues(features=features, pred_probs=pred_probs, knn_graph=knn_graph,
                        issue_types={t: {"k": k} for t in types})
    ran = set(lab.issue_summary["issue_type"])
    lines = printed.getvalue().splitlines()
    for name in types:
        if name not in ran:
            out.errors[name] = next((ln for ln in lines if name in ln), "not run by Datalab")
            continue
        out.issues[name] = lab.get_issues(name).reset_index(drop=True)
        out.info[name] = lab.get_info(name)
    return out


def find_issues(types: list[str], *, k: int, features: np.ndarray, knn_graph,
                labels: np.ndarray | None = None, pred_probs: np.ndarray | None = None,
                engine: str = "auto") -> Findings:
    """Run cleanlab's checks ``types`` on one shared nearest-neighbour graph.

    Parameters
    ----------
    types : list of str
        Among ``near_duplicate``, ``outlier``, ``non_iid``, ``underperforming_group``.
    k : int
        Neighbours each check uses (at most the graph's).
    features : ndarray of shape (n, d)
    knn_graph : scipy.sparse.csr_matrix of shape (n, n)
        cleanlab's format: each row's ``k`` nearest neighbours, distances ascending.
    labels : ndarray of int, optional
        0..K-1 (``underperforming_group``).
    pred_probs : ndarray of shape (n, K), optional
    engine : {'auto', 'datalab', 'managers'}, default='auto'
        ``auto``: ``Datalab`` when ``datasets`` is installed, else the issue managers.

    Returns
    -------
    Findings
    """
    if engine == "auto":
        engine = "datalab" if has_datalab() else "managers"
    run = _run_datalab if engine == "datalab" else _run_managers
    return run(list(types), k=k, features=features, knn_graph=knn_graph, labels=labels,
               pred_probs=pred_probs)
