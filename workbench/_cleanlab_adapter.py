"""cleanlab's ``Datalab`` checks on arrays and one shared nearest-neighbour graph.

:func:`find_issues` wraps the public ``Datalab(data, label_name=...).find_issues(features=,
pred_probs=, knn_graph=, issue_types=)`` and reads ``get_issues`` / ``get_info`` back into a
:class:`Findings`. ``Datalab`` needs the Hugging Face ``datasets`` package, which the
``cleanlab[datalab]`` dependency installs. A check that fails is reported in
:attr:`Findings.errors` (``Datalab`` prints "Error in <issue>" and carries on the same way),
so one failing check never hides the others.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Findings", "find_issues"]


@dataclass
class Findings:
    """What the checks found: per issue type, cleanlab's issues frame and info dict."""

    issues: dict[str, pd.DataFrame] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    engine: str = ""


def _run_datalab(types: list[str], *, k: int, features, knn_graph, labels, pred_probs
                 ) -> Findings:
    from cleanlab import Datalab

    out = Findings(engine="cleanlab Datalab")
    # Datalab needs one column; cleanlab reads the labels row by row through a `datasets`
    # table, so the labels alone (no placeholder column to format beside them per row)
    data: dict[str, Any] = ({"label": labels} if labels is not None
                            else {"row": np.arange(knn_graph.shape[0])})
    lab = Datalab(data, label_name="label" if labels is not None else None, verbosity=0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        # the graph is what the checks use; the features are there for the outlier check
        warnings.filterwarnings("ignore", message="Both `features` and `knn_graph`")
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
                ) -> Findings:
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

    Returns
    -------
    Findings
    """
    return _run_datalab(list(types), k=k, features=features, knn_graph=knn_graph,
                        labels=labels, pred_probs=pred_probs)
