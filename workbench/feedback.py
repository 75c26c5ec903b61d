"""Vendor feedback: one self-contained HTML report per vendor, with nobody else's data in it.

:func:`vendor_feedback` writes what a data-operations team sends a labeling vendor when
quality drops: the vendor's rows of :func:`workbench.vendor_scorecard` (the vendor and its
annotators, per batch), the classes and class pairs they get wrong most (the scorecard's
Dawid-Skene worst class and pair, and their own labels against the consensus) with example
images of their mistakes, the current guideline of each weak pair or class
(:class:`workbench.Guidelines`), and their trend across batches as an inline SVG.

The document is safe to mail: every plain text is escaped with :func:`html.escape`, guideline
Markdown goes through :func:`workbench.guidelines.render_html`, images are inlined as
``data:`` URIs (only files inside the project folder are read), there is no script and no
external asset, and a Content-Security-Policy forbids fetching anything. Other vendors'
names, annotators, numbers and items never enter it: everything is computed from the
scorecard rows and the labels of the one vendor (the consensus label of an item they
labelled is shown, not who else labelled it).
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_write
from .errors import SchemaError
from .guidelines import Guidelines, _data_uri
from .scorecard import encoded_labels, vendor_scorecard

__all__ = ["vendor_feedback"]

_FUNC = "vendor_feedback"
#: Characters of a text item shown as an example in the report.
_EXAMPLE_CHARS = 600
_VENDOR, _BATCH = "vendor", "batch"

#: Scorecard columns shown in the report, with their headings.
SCORECARD_COLUMNS = {
    "level": "Level", "annotator": "Annotator", "batch": "Batch", "n_labels": "Labels",
    "n_gold": "Gold labels", "gold_accuracy": "Gold accuracy",
    "consensus_agreement": "Agreement with consensus", "kappa": "Kappa vs consensus",
    "ds_accuracy": "Estimated accuracy (Dawid-Skene)", "worst_class": "Worst class",
    "worst_class_recall": "Worst class recall", "worst_pair": "Worst pair",
    "worst_pair_rate": "Worst pair swap rate", "n_reworked": "Reworked labels",
    "rework_rate": "Rework rate", "trend_change": "Change vs earlier batches",
    "trend_p_value": "Drop p-value", "drop_flag": "Drop flagged",
}


def format_value(value) -> str:
    """How a scorecard value is written in the report (floats with 3 decimals).

    Examples
    --------
    >>> format_value(0.91234), format_value(12), format_value(float("nan")), format_value(True)
    ('0.912', '12', '-', 'yes')
    """
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "-" if math.isnan(value) else f"{float(value):.3f}"
    return str(value)


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The 'path' parameter of {_FUNC} must be a path (str or "
                        f"os.PathLike). Got {type(path).__name__} instead.")
    target = Path(os.fspath(path))
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{_FUNC}: the folder {str(target.parent)!r} does not exist. "
                                "Create it first (the report is written into an existing "
                                "folder); nothing was written.")
    if target.is_dir():
        raise IsADirectoryError(f"{_FUNC}: {str(target)!r} is a folder; pass the path of the "
                                "HTML file to write, e.g. 'feedback/vendor.html'.")
    return target


def _pick(card: pd.DataFrame, vendor, batch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The vendor's scorecard rows (all batches) and those in scope (``batch`` or all)."""
    if not isinstance(vendor, str) or not vendor:
        raise TypeError(f"The 'vendor' parameter of {_FUNC} must be a non-empty str (a vendor "
                        f"name). Got {vendor!r} instead.")
    vendors = sorted(set(card[_VENDOR].astype(str)))
    if vendor not in vendors:
        raise SchemaError(f"{_FUNC}: unknown vendor {vendor!r}; the project's vendors are "
                          f"{vendors}. Nothing was written.")
    mine = card[card[_VENDOR].astype(str) == vendor]
    if batch is None:
        return mine, mine
    if not isinstance(batch, str):
        raise TypeError(f"The 'batch' parameter of {_FUNC} must be a batch name (str) or "
                        f"None. Got {batch!r} instead.")
    batches = sorted(set(card[_BATCH].astype(str)))
    if batch not in batches:
        raise SchemaError(f"{_FUNC}: unknown batch {batch!r}; the project's batches are "
                          f"{batches}. Nothing was written.")
    theirs = sorted(set(mine[_BATCH].astype(str)))
    if batch not in theirs:
        raise SchemaError(f"{_FUNC}: vendor {vendor!r} delivered no labels in batch "
                          f"{batch!r}; their batches are {theirs}. Nothing was written.")
    return mine, mine[mine[_BATCH].astype(str) == batch]


def _labels(project) -> pd.DataFrame:
    """Every current label with its vendor, batch and the scorecard's consensus.

    The same encoding, vendor assignment (per label, or the annotator's home vendor) and
    Dawid-Skene consensus as :func:`workbench.vendor_scorecard`.
    """
    enc, _, vendor_code, vendors, batch_code, batches, post = encoded_labels(
        project, _VENDOR, _BATCH, _FUNC)
    cls = np.asarray(enc.classes, dtype=object)
    return pd.DataFrame({
        "item_id": np.asarray(enc.items, dtype=object)[enc.item].astype(str),
        "annotator": np.asarray(enc.annotators, dtype=object)[enc.annotator].astype(str),
        "label": cls[enc.label].astype(str),
        "consensus": cls[np.argmax(post, axis=1)[enc.item]].astype(str),
        _VENDOR: np.asarray(vendors, dtype=object)[vendor_code].astype(str),
        _BATCH: np.asarray(batches, dtype=object)[batch_code].astype(str),
    })


# --------------------------------------------------------------------------------------
# weak classes and pairs (the vendor's own labels against the consensus)
# --------------------------------------------------------------------------------------
def _pair_key(a: str, b: str, order: dict[str, int]) -> tuple[str, str]:
    return tuple(sorted((a, b), key=lambda c: (order.get(c, len(order)), c)))  # type: ignore


def _class_table(labels: pd.DataFrame, min_support: int) -> pd.DataFrame:
    """Per consensus class: their labels, how many match (recall), most common mistake."""
    rows = []
    for cls, grp in labels.groupby("consensus", sort=False):
        wrong = grp[grp["label"] != grp["consensus"]]
        top = wrong["label"].value_counts()
        rows.append({"class": cls, "n": len(grp), "right": int(len(grp) - len(wrong)),
                     "recall": (len(grp) - len(wrong)) / len(grp),
                     "mistaken_for": top.index[0] if len(top) else None,
                     "n_mistaken_for": int(top.iloc[0]) if len(top) else 0})
    out = pd.DataFrame(rows, columns=["class", "n", "right", "recall", "mistaken_for",
                                      "n_mistaken_for"])
    out = out[out["n"] >= min_support]
    return out.sort_values(["recall", "class"], kind="stable").reset_index(drop=True)


def _pair_table(labels: pd.DataFrame, order: dict[str, int]) -> pd.DataFrame:
    """Per unordered class pair: their swaps against the consensus and the swap rate."""
    wrong = labels[labels["label"] != labels["consensus"]]
    if wrong.empty:
        return pd.DataFrame(columns=["a", "b", "swaps", "n", "rate"])
    keys = [_pair_key(a, b, order) for a, b in zip(wrong["label"], wrong["consensus"],
                                                   strict=True)]
    swaps = pd.Series(keys).value_counts()
    per_class = labels["consensus"].value_counts()
    rows = []
    for (a, b), n_swaps in swaps.items():
        n = int(per_class.get(a, 0) + per_class.get(b, 0))
        rows.append({"a": a, "b": b, "swaps": int(n_swaps), "n": n,
                     "rate": n_swaps / n if n else float("nan")})
    out = pd.DataFrame(rows)
    return out.sort_values(["swaps", "rate", "a", "b"], ascending=[False, False, True, True],
                           kind="stable").reset_index(drop=True)


def _parse_pair(text) -> tuple[str, str] | None:
    if not isinstance(text, str) or " <-> " not in text:
        return None
    a, b = text.split(" <-> ", 1)
    return a, b


# --------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------
def vendor_feedback(project, vendor: str, path, *, batch: str | None = None, store=None,
                    max_pairs: int = 3, examples_per_pair: int = 4,
                    min_support: int = 5) -> Path:
    """Write a self-contained HTML feedback report for one vendor.

    The report holds, for ``batch`` (or all batches):

    * the vendor's rows of :func:`workbench.vendor_scorecard` (``by=('vendor', 'batch')``):
      the vendor level and each of its annotators, values as in the scorecard (floats with
      three decimals);
    * their weakest classes (lowest share of their labels equal to the consensus, among
      classes with at least ``min_support`` of their labels) and weakest class pairs: the
      scorecard's Dawid-Skene worst pair and worst class first, then the pairs they swap most
      against the consensus on the items they labelled;
    * for each weak pair (at most ``max_pairs``): up to ``examples_per_pair`` of their labels
      that swap the pair, with the image inlined (``data:`` URI; only images inside the
      project folder are read), the item id, the annotator, their label and the consensus,
      and the pair's current guideline (:meth:`workbench.Guidelines.current`, rendered by
      :func:`workbench.guidelines.render_html`); the worst class's guideline too;
    * their trend across all their batches: agreement with the consensus per batch as an
      inline SVG and a table, batches with a flagged drop marked.

    Nothing about another vendor is written: no other vendor's name, annotators, numbers
    or items (only items this vendor labelled appear, with the consensus label, never the
    other labels). Plain text is escaped, there is no script and no external URL, and a
    Content-Security-Policy forbids any request. The file is written atomically.

    Parameters
    ----------
    project : Project
        A classification project whose vendor and batch are columns of the annotations or
        the item metadata (see :func:`workbench.vendor_scorecard`).
    vendor : str
        The vendor the report is for.
    path : path-like
        The HTML file to write; its folder must exist.
    batch : str, optional
        Only this batch (the trend still shows all their batches). Default: all batches.
    store : TagStore, optional
        The store with the gold tag, the relabel queue and the guidelines. Default: the
        project's (``TagStore.for_project(project)``).
    max_pairs : int, default=3
        How many weak pairs get examples and a guideline.
    examples_per_pair : int, default=4
        Example items per weak pair.
    min_support : int, default=5
        Smallest number of their labels of a class for it to count as a weak class (and as
        in :func:`workbench.vendor_scorecard`).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    SchemaError
        Unknown vendor (the message lists the vendors), unknown batch (lists the batches),
        a batch the vendor has no labels in, or a project the scorecard cannot score.
    FileNotFoundError
        The folder of ``path`` does not exist.

    Examples
    --------
    >>> import workbench as wb
    >>> wb.vendor_feedback(wb.load_sample(), "quicklabel", "quicklabel.html",
    ...                    batch="2026-W04")  # doctest: +SKIP
    """
    from ._validation import check_int

    target = _check_path(path)
    for name, value, low in (("max_pairs", max_pairs, 0),
                             ("examples_per_pair", examples_per_pair, 0),
                             ("min_support", min_support, 1)):
        check_int(value, name, _FUNC, minimum=low)
    if store is None:
        from .tags import TagStore

        store = TagStore.for_project(project)
    card = vendor_scorecard(project, (_VENDOR, _BATCH), store=store, min_support=min_support)
    mine, scope = _pick(card, vendor, batch)
    if batch is None:
        overall = vendor_scorecard(project, (_VENDOR,), store=store, min_support=min_support)
        summary = overall[(overall["level"] == "vendor")
                          & (overall[_VENDOR].astype(str) == vendor)].iloc[0]
    else:
        summary = scope[scope["level"] == "vendor"].iloc[0]
    labels = _labels(project)
    labels = labels[labels[_VENDOR] == vendor]
    if batch is not None:
        labels = labels[labels[_BATCH] == batch]
    labels = labels.drop(columns=[_VENDOR]).reset_index(drop=True)
    classes = [str(c) for c in (getattr(project, "classes", None) or [])]
    order = {c: k for k, c in enumerate(classes)}
    pairs = _pair_table(labels, order)
    weak_classes = _class_table(labels, min_support)
    chosen: list[tuple[str, str]] = []
    ds_pair = _parse_pair(summary["worst_pair"])
    if ds_pair is not None:
        chosen.append(_pair_key(*ds_pair, order))
    for a, b in zip(pairs["a"], pairs["b"], strict=True):
        if (a, b) not in chosen:
            chosen.append((a, b))
    chosen = chosen[:max_pairs]
    guidelines = Guidelines(project, store=store)
    doc = _document(project, vendor, batch, mine, scope, summary, labels, pairs, weak_classes,
                    chosen, guidelines, examples_per_pair, classes)
    return atomic_write(target, lambda fh: fh.write(doc))


_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2rem}.meta{color:#555;font-size:.9rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}tr.vendor td{font-weight:600}
tr.flag td{background:#fde8e8}.examples{display:flex;flex-wrap:wrap;gap:.8rem}
.ex{text-align:center;font-size:.85rem}.ex img{width:96px;height:96px;
image-rendering:pixelated;border:3px solid #c33}.guideline{background:#f6f8fa;
padding:.3rem 1rem;border-left:4px solid #2a7}.none{color:#777;font-style:italic}"""


def _e(value) -> str:
    return html.escape(format_value(value))


def _scorecard_html(rows: pd.DataFrame) -> list[str]:
    cols = [c for c in SCORECARD_COLUMNS if c in rows.columns]
    out = ['<table id="scorecard"><tr>'
           + "".join(f"<th>{html.escape(SCORECARD_COLUMNS[c])}</th>" for c in cols) + "</tr>"]
    for _, r in rows.iterrows():
        css = ["vendor" if r["level"] == "vendor" else "annotator"]
        if bool(r["drop_flag"]):
            css.append("flag")
        cells = "".join(f'<td data-col="{c}">{_e(r[c])}</td>' for c in cols)
        out.append(f'<tr class="{" ".join(css)}">{cells}</tr>')
    out.append("</table>")
    return out


def _trend_svg(trend: pd.DataFrame, selected: str | None) -> str:
    """Agreement with the consensus per batch: a polyline, flagged batches in red."""
    n = len(trend)
    width, height, pad = max(240, 80 * n), 160, 30
    values = trend["consensus_agreement"].to_numpy(dtype=float)
    low = min(float(np.nanmin(values)) - 0.02, 0.9) if n else 0.0
    low = max(0.0, math.floor(low * 20) / 20)
    span = max(1.0 - low, 1e-9)
    xs = [pad + (width - 2 * pad) * (k / (n - 1) if n > 1 else 0.5) for k in range(n)]
    ys = [pad + (height - 2 * pad) * (1 - (v - low) / span) if not math.isnan(v) else
          height - pad for v in values]
    out = [f'<svg id="trend" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="Agreement with the consensus per batch">',
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
           'stroke="#999"/>',
           f'<text x="2" y="{pad - 8}" font-size="10">{1.0:.2f}</text>',
           f'<text x="2" y="{height - pad + 4}" font-size="10">{low:.2f}</text>']
    if n > 1:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        out.append(f'<polyline points="{points}" fill="none" stroke="#2a7" stroke-width="2"/>')
    for x, y, (_, r) in zip(xs, ys, trend.iterrows(), strict=True):
        flagged = bool(r["drop_flag"])
        colour = "#c33" if flagged else "#2a7"
        radius = 6 if str(r[_BATCH]) == selected else 4
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}">'
                   f'<title>{_e(r[_BATCH])}: {_e(r["consensus_agreement"])}'
                   f'{" (drop flagged)" if flagged else ""}</title></circle>')
        out.append(f'<text x="{x:.1f}" y="{height - 8}" font-size="10" '
                   f'text-anchor="middle">{_e(r[_BATCH])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _guideline_html(guidelines: Guidelines, target, title: str) -> list[str]:
    row = guidelines.current(target)
    if row is None:
        return [f'<p class="none">No guideline for {html.escape(title)} yet.</p>']
    when = row["effective_at"].strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(row["effective_batch"], str) and row["effective_batch"]:
        when = f"batch {row['effective_batch']} ({when})"
    return [f'<div class="guideline"><p class="meta">Current guideline for '
            f"{html.escape(title)}: revision {int(row['revision_id'])}, applies from "
            f"{html.escape(when)}</p>", row["html"], "</div>"]


def _document(project, vendor, batch, mine, scope, summary, labels, pairs, weak_classes,
              chosen, guidelines, examples_per_pair, classes) -> str:
    e = html.escape
    name = str(getattr(project, "name", "") or "")
    scope_text = f"batch {batch}" if batch is not None else "all batches"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
           'img-src data:; style-src \'unsafe-inline\'">',
           f"<title>Labeling feedback for {e(vendor)}</title><style>{_CSS}</style></head><body>",
           f"<h1>Labeling feedback for {e(vendor)}</h1>",
           f'<p class="meta">Project {e(name)}; {e(scope_text)}; written {e(now)}. '
           "The consensus is the Dawid-Skene estimate from all labels of each item.</p>"]
    # scorecard
    out.append("<h2>Scorecard</h2>")
    flagged = scope[(scope["level"] == "vendor") & scope["drop_flag"]]
    if len(flagged):
        out.append('<p class="flag">Quality dropped beyond chance in '
                   + ", ".join(e(str(b)) for b in flagged[_BATCH]) + ".</p>")
    out += _scorecard_html(scope)
    # weak classes and pairs
    out.append("<h2>Weakest classes and pairs</h2>")
    out.append(f'<p id="summary">Dawid-Skene worst class: <b>{_e(summary["worst_class"])}</b> '
               f'(recall {_e(summary["worst_class_recall"])}); worst pair: '
               f'<b>{_e(summary["worst_pair"])}</b> (swap rate '
               f'{_e(summary["worst_pair_rate"])}).</p>')
    out.append('<table id="classes"><tr><th>Class (consensus)</th><th>Your labels</th>'
               "<th>Labelled as the consensus</th><th>Most often labelled instead</th></tr>")
    for _, r in weak_classes.head(5).iterrows():
        instead = "-" if r["mistaken_for"] is None else \
            f"{r['mistaken_for']} ({int(r['n_mistaken_for'])})"
        out.append(f"<tr><td>{e(str(r['class']))}</td><td>{int(r['n'])}</td>"
                   f"<td>{_e(r['recall'])}</td><td>{e(instead)}</td></tr>")
    out.append("</table>")
    out.append('<table id="pairs"><tr><th>Pair</th><th>Swaps against the consensus</th>'
               "<th>Your labels of either class</th><th>Swap rate</th></tr>")
    for _, r in pairs.head(10).iterrows():
        out.append(f"<tr><td>{e(r['a'])} &lt;-&gt; {e(r['b'])}</td><td>{int(r['swaps'])}</td>"
                   f"<td>{int(r['n'])}</td><td>{_e(r['rate'])}</td></tr>")
    out.append("</table>")
    if isinstance(summary["worst_class"], str) and summary["worst_class"] in classes:
        out += _guideline_html(guidelines, summary["worst_class"],
                               f"class {summary['worst_class']}")
    # examples per weak pair
    for a, b in chosen:
        title = f"{a} vs {b}"
        out.append(f'<section class="pair"><h2>{e(title)}</h2>')
        out += _guideline_html(guidelines, (a, b), title)
        swapped = labels[((labels["label"] == a) & (labels["consensus"] == b))
                         | ((labels["label"] == b) & (labels["consensus"] == a))]
        swapped = swapped.sort_values(["item_id", "annotator"], kind="stable")
        if swapped.empty or examples_per_pair == 0:
            out.append('<p class="none">No example of this swap in your labels.</p>')
        else:
            out.append(f"<p>{len(swapped)} of your labels swap {e(title)}; examples:</p>"
                       '<div class="examples">')
            for _, r in swapped.head(examples_per_pair).iterrows():
                uri = _data_uri(project, r["item_id"])
                img = f'<img alt="{e(r["item_id"])}" src="{uri}">' if uri else \
                    "<em>(no image)</em>"
                text = (project.item_text(r["item_id"])
                        if getattr(project, "is_text", False) else None)
                if text is not None:  # a text item: its text, escaped (docs/text.md)
                    more = "&#8230;" if len(text) > _EXAMPLE_CHARS else ""
                    img = (f'<blockquote class="text" style="white-space:pre-wrap">'
                           f"{e(text[:_EXAMPLE_CHARS])}{more}</blockquote>")
                out.append(f'<div class="ex">{img}<br>{e(r["item_id"])}<br>'
                           f'{e(r["annotator"])} labelled <b>{e(r["label"])}</b>; consensus '
                           f'<b>{e(r["consensus"])}</b></div>')
            out.append("</div>")
        out.append("</section>")
    # trend
    trend = mine[mine["level"] == "vendor"].reset_index(drop=True)
    out.append("<h2>Trend across batches</h2>")
    out.append(_trend_svg(trend, batch))
    out.append('<table id="trend-table"><tr><th>Batch</th><th>Labels</th>'
               "<th>Agreement with consensus</th><th>Change vs earlier batches</th>"
               "<th>Drop p-value</th><th>Drop flagged</th></tr>")
    for _, r in trend.iterrows():
        css = ' class="flag"' if bool(r["drop_flag"]) else ""
        out.append(f"<tr{css}><td>{_e(r[_BATCH])}</td><td>{_e(r['n_labels'])}</td>"
                   f"<td>{_e(r['consensus_agreement'])}</td><td>{_e(r['trend_change'])}</td>"
                   f"<td>{_e(r['trend_p_value'])}</td><td>{_e(r['drop_flag'])}</td></tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)
