"""Labeling guidelines with versions, rendered safely, and whether a revision helped.

Curators write the labeling instructions for a class, or for a pair of classes annotators
confuse, in Markdown. Each revision is kept in the project's store (next to the tags, same
SQLite/PostgreSQL database, append-only: ``store.guidelines``) with its author, reason, the
time or batch from which it applies and example items ("do" / "don't").

* :class:`Guidelines` writes and reads revisions and exports a self-contained guideline
  document for a vendor (HTML with the example images inlined, or Markdown).
* :func:`render_html` turns a revision's Markdown into HTML that is safe to show anywhere:
  markdown-it-py with raw HTML disabled (``<script>`` or ``onerror=`` typed in a revision
  stays text), then the nh3 sanitiser (an allow-list of tags and attributes; images and
  anything that would fetch from elsewhere are dropped).
* :func:`guideline_effect` compares the annotators' confusion between the revision's classes
  and their Cohen's kappa against the consensus, among labels made before and after the
  revision took effect.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import atomic_write
from ._validation import check_option
from .errors import SchemaError
from .session import require_write

__all__ = ["Guidelines", "render_html", "guideline_effect", "EXAMPLE_KINDS", "VERDICTS"]

#: What an example item shows: how to label it (``do``) or a mistake to avoid (``don't``).
EXAMPLE_KINDS = ("do", "don't")
#: The verdicts of :func:`guideline_effect`.
VERDICTS = ("helped", "no significant change", "worse", "not enough labels")

# Tags a rendered guideline may hold: what CommonMark produces, minus images (an image
# would be fetched from wherever its URL points; example images are inlined by ``export``).
_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre",
         "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
         "del", "s"}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"},
               "code": {"class"}}
_IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
                "WEBP": "image/webp", "BMP": "image/bmp"}


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------


def render_html(text: str | None) -> str:
    r"""Render guideline Markdown to sanitised HTML (safe to show in any widget or page).

    Raw HTML in the text is not interpreted (markdown-it-py with ``html`` disabled): a
    ``<script>`` or an ``<img onerror=...>`` typed in a revision shows as text. The result
    then goes through nh3 (the Rust ``ammonia`` sanitiser) with an allow-list: headings,
    paragraphs, emphasis, lists, tables, code, quotes and links (``http``, ``https``,
    ``mailto``; ``rel="noopener noreferrer"``). Images are dropped: nothing is fetched from
    elsewhere when the guideline is shown.

    Parameters
    ----------
    text : str or None
        Markdown. None gives an empty string.

    Returns
    -------
    str
        HTML.

    Examples
    --------
    >>> render_html("**Bar** on top <script>alert(1)</script>")
    '<p><strong>Bar</strong> on top &lt;script&gt;alert(1)&lt;/script&gt;</p>\n'
    """
    import nh3
    from markdown_it import MarkdownIt

    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"The 'text' parameter of render_html must be a str or None. Got "
                        f"{type(text).__name__} instead.")
    md = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")
    return nh3.clean(md.render(text), tags=_TAGS, attributes=_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer")


def _escape_markdown_html(text: str) -> str:
    """Markdown whose raw HTML shows as text in any renderer (``<`` becomes ``&lt;``)."""
    return text.replace("<", "&lt;")


# --------------------------------------------------------------------------------------
# targets, examples, effective times
# --------------------------------------------------------------------------------------


def _classes(project) -> list[str]:
    return [str(c) for c in getattr(project, "classes", [])]


def normalize_target(project, target: Any, func: str = "Guidelines") -> str:
    """Return the store's form of a target: a class, or a sorted pair ``"a|b"``.

    Parameters
    ----------
    project : Project
        Its ``classes`` are the known classes.
    target : str, int, tuple or list
        A class (``"7"`` or ``7``), a pair of classes (``("1", "7")``, ``[1, 7]``) or
        ``"1|7"``.
    func : str
        The calling function, for messages.

    Raises
    ------
    SchemaError
        A class the project does not have (the message lists the known classes), or a pair
        of one class twice.
    TypeError
        Anything else.
    """
    classes = _classes(project)
    if isinstance(target, (tuple, list)):
        parts = [str(v).strip() for v in target]
        if len(parts) != 2:
            raise SchemaError(f"{func}: a target is one class or a pair of two classes; got "
                              f"{len(parts)} classes {parts}.")
    elif isinstance(target, (str, int, np.integer)):
        text = str(target).strip()
        parts = [text] if text in classes or "|" not in text else \
            [p.strip() for p in text.split("|")]
        if len(parts) > 2:
            raise SchemaError(f"{func}: the target {text!r} names {len(parts)} classes; a "
                              "target is one class or a pair 'a|b'.")
    else:
        raise TypeError(f"The 'target' parameter of {func} must be a class (str), a pair of "
                        f"classes (tuple or list) or 'a|b'. Got {target!r} instead.")
    unknown = [p for p in parts if p not in classes]
    if unknown:
        raise SchemaError(f"{func}: {', '.join(repr(u) for u in unknown)} "
                          f"{'is not a class' if len(unknown) == 1 else 'are not classes'} of "
                          f"the project; its classes are {classes}. Nothing was written.")
    if len(parts) == 2 and parts[0] == parts[1]:
        raise SchemaError(f"{func}: the pair names the class {parts[0]!r} twice. Pass two "
                          "different classes, or the class alone.")
    return "|".join(sorted(parts))


def _target_classes(target: str, classes: list[str]) -> list[str]:
    return [target] if target in classes else target.split("|")


def _check_examples(project, examples, func: str) -> dict[str, str] | None:
    if examples is None:
        return None
    if not isinstance(examples, dict):
        raise TypeError(f"The 'examples' parameter of {func} must be a dict mapping item ids "
                        f"to 'do' or \"don't\", or None. Got {type(examples).__name__} "
                        "instead.")
    out = {str(k).strip(): v for k, v in examples.items()}
    bad = {k: v for k, v in out.items() if v not in EXAMPLE_KINDS}
    if bad:
        first = next(iter(bad.items()))
        raise SchemaError(f"{func}: example {first[0]!r} is marked {first[1]!r}; each "
                          "example must be 'do' or \"don't\". Nothing was written.")
    known = set(project.items["item_id"].astype(str))
    unknown = [k for k in out if k not in known]
    if unknown:
        raise SchemaError(f"{func}: example item(s) {unknown[:5]} are not in the project "
                          f"{getattr(project, 'name', '')!r}. Nothing was written. Use ids "
                          "from project.items['item_id'].")
    return out or None


def _batches(project) -> pd.Series:
    """The batch of each item (index item_id), or an empty Series without batches."""
    ann = project.annotations
    if "batch" in project.items.columns:
        items = project.items
        return pd.Series(items["batch"].astype(str).to_numpy(),
                         index=items["item_id"].astype(str).to_numpy())
    if isinstance(ann, pd.DataFrame) and "batch" in ann.columns:
        first = ann.drop_duplicates("item_id")
        return pd.Series(first["batch"].astype(str).to_numpy(),
                         index=first["item_id"].astype(str).to_numpy())
    return pd.Series(dtype=object)


def _batch_order(project) -> list[str]:
    """Batches in time order: by their earliest ``batch_date`` if items have one, else name."""
    batches = _batches(project)
    names = sorted(set(batches.to_numpy().tolist()))
    items = project.items
    if "batch" in items.columns and "batch_date" in items.columns:
        dates = pd.to_datetime(items["batch_date"], errors="coerce", utc=True)
        first = dates.groupby(items["batch"].astype(str).to_numpy()).min()
        return sorted(names, key=lambda b: (first.get(b, pd.NaT) is pd.NaT,
                                            first.get(b, pd.NaT), b))
    return names


def _batch_start(project, batch: str) -> pd.Timestamp:
    """When a batch starts: its earliest ``batch_date``, else its earliest label."""
    items = project.items
    if "batch_date" in items.columns and "batch" in items.columns:
        dates = pd.to_datetime(items.loc[items["batch"].astype(str) == batch, "batch_date"],
                               errors="coerce", utc=True).dropna()
        if len(dates):
            return dates.min()
    ann = project.annotations
    if isinstance(ann, pd.DataFrame) and "annotated_at" in ann.columns:
        ids = set(_batches(project).loc[lambda s: s == batch].index)
        times = pd.to_datetime(ann.loc[ann["item_id"].astype(str).isin(ids), "annotated_at"],
                               errors="coerce", utc=True).dropna()
        if len(times):
            return times.min()
    return pd.Timestamp.now(tz="UTC")


def _effective(project, effective, func: str) -> tuple[pd.Timestamp, str | None]:
    """``(time, batch or None)`` of ``effective``: None (now), a batch name or a time."""
    if effective is None:
        return pd.Timestamp.now(tz="UTC"), None
    if isinstance(effective, str) and effective.strip() in set(_batches(project)):
        batch = effective.strip()
        return _batch_start(project, batch), batch
    if isinstance(effective, (str, dt.datetime, dt.date, pd.Timestamp, np.datetime64)):
        try:
            when = pd.Timestamp(effective)
        except (ValueError, TypeError):
            when = pd.NaT
        if when is not pd.NaT and not pd.isna(when):
            return (when.tz_localize("UTC") if when.tzinfo is None
                    else when.tz_convert("UTC")), None
        known = _batch_order(project)
        raise SchemaError(f"{func}: effective={effective!r} is neither a batch of the project "
                          f"({known[:10]}{' ...' if len(known) > 10 else ''}) nor a date/time "
                          "(e.g. '2026-01-19' or '2026-01-19T09:00Z'). Nothing was written.")
    raise TypeError(f"The 'effective' parameter of {func} must be a batch name, a date/time "
                    f"or None. Got {type(effective).__name__} instead.")


def _to_us(when: pd.Timestamp) -> int:
    return int(when.value // 1000)


# --------------------------------------------------------------------------------------
# Guidelines
# --------------------------------------------------------------------------------------


class Guidelines:
    """A project's labeling guidelines: versioned Markdown per class or class pair.

    Parameters
    ----------
    project : Project
        The project (its classes, items and images).
    store : TagStore, optional
        Default: ``TagStore.for_project(project)`` (the project's store).

    Examples
    --------
    >>> import workbench as wb
    >>> project = wb.load_sample()                                      # doctest: +SKIP
    >>> g = wb.Guidelines(project)                                      # doctest: +SKIP
    >>> g.revise((1, 7), "A **7** has a bar on top; a 1 does not.", author="lead",
    ...          reason="cho mixes them", effective="2026-W04",
    ...          examples={"digit-0001": "do"})                         # doctest: +SKIP
    >>> g.current("1|7")["text"]                                        # doctest: +SKIP
    >>> g.export("guidelines.html")                                     # doctest: +SKIP
    """

    def __init__(self, project, *, store=None):
        if store is None:
            from .tags import TagStore

            store = TagStore.for_project(project)
        self.project = project
        self.store = store

    def revise(self, target, text: str, *, author: str, reason: str | None = None,
               effective=None, examples: dict | None = None) -> int:
        """Write a new revision of the guideline of a class or a class pair.

        Parameters
        ----------
        target : str, int, tuple or list
            A class of the project, or a pair of classes (``("1", "7")`` or ``"1|7"``).
        text : str
            The guideline, Markdown (raw HTML in it is shown as text).
        author : str
            Who writes it (``workbench.current_author()`` in widgets).
        reason : str, optional
            Why it changed.
        effective : str, datetime or None, default=None
            From when labels should follow it: a batch of the project (``"2026-W04"``),
            a date/time (naive = UTC), or None for now.
        examples : dict of str to {'do', "don't"}, optional
            Example items of the project: how to label (``do``) or a mistake (``don't``).

        Returns
        -------
        int
            The new ``revision_id``.

        Raises
        ------
        SchemaError
            Unknown class (the message lists the project's classes), empty text, unknown
            example items, bad effective batch/time; nothing is written.
        ReadOnlyError
            In a read-only session (manager, viewer).
        """
        func = "Guidelines.revise"
        require_write("revise guidelines")
        key = normalize_target(self.project, target, func)
        if not isinstance(text, str):
            raise TypeError(f"The 'text' parameter of {func} must be a str (Markdown). Got "
                            f"{type(text).__name__} instead.")
        if not text.strip():
            raise SchemaError(f"{func}: the guideline text for {key!r} is empty. Write the "
                              "instructions (Markdown); nothing was written.")
        ex = _check_examples(self.project, examples, func)
        when, batch = _effective(self.project, effective, func)
        return self.store.guidelines.add(key, text, author=author, reason=reason,
                                         effective_at=_to_us(when), effective_batch=batch,
                                         examples=ex)

    def current(self, target) -> pd.Series | None:
        """Return the latest revision of a target (a row of :meth:`history` plus ``html``).

        Returns None when the target has no guideline yet.
        """
        key = normalize_target(self.project, target, "Guidelines.current")
        rows = self.store.guidelines.frame(key)
        if rows.empty:
            return None
        row = rows.iloc[-1].copy()
        row["html"] = render_html(row["text"])
        return row

    def history(self, target=None) -> pd.DataFrame:
        """Return the revisions, oldest first (of one target, or all).

        Returns
        -------
        DataFrame
            ``revision_id``, ``target`` (a class or ``"a|b"``), ``text`` (Markdown as
            typed), ``author``, ``reason``, ``effective_batch``, ``effective_at``,
            ``created_at`` (UTC), ``examples`` (dict item_id -> 'do'/"don't").
        """
        key = None if target is None else normalize_target(self.project, target,
                                                           "Guidelines.history")
        return self.store.guidelines.frame(key)

    def targets(self) -> list[str]:
        """Return the targets that have a guideline, in the order they were first written."""
        return list(dict.fromkeys(self.store.guidelines.frame()["target"].tolist()))

    def export(self, path, format: str = "html", *, targets=None) -> Path:
        """Write the current guidelines as one document for a vendor.

        Each target's latest revision: its text (HTML: rendered and sanitised; Markdown:
        raw HTML escaped), when it applies, and its example images inlined as ``data:``
        URIs (only images inside the project folder are read, as ``project.media_path``
        confines them); then the revision history. Nothing in the document is fetched from
        elsewhere (the HTML also carries a Content-Security-Policy that forbids it). The
        file is written atomically.

        Parameters
        ----------
        path : path-like
            The file to write.
        format : {'html', 'md'}, default='html'
        targets : list, optional
            Only these targets (default: every target with a guideline).

        Returns
        -------
        pathlib.Path
        """
        check_option(format, "format", "Guidelines.export", ("html", "md"))
        hist = self.store.guidelines.frame()
        if targets is not None:
            keys = [normalize_target(self.project, t, "Guidelines.export") for t in targets]
            hist = hist[hist["target"].isin(keys)]
        if hist.empty:
            raise SchemaError("Guidelines.export: there is no guideline to export"
                              f"{'' if targets is None else f' for {targets}'}. Write one "
                              "with Guidelines.revise first; nothing was written.")
        render = _html_document if format == "html" else _md_document
        doc = render(self.project, hist)
        return atomic_write(Path(os.fspath(path)), lambda fh: fh.write(doc))

    def __repr__(self) -> str:
        return (f"Guidelines({getattr(self.project, 'name', '?')!r}, "
                f"{len(self.targets())} targets)")


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


def _title(target: str, classes: list[str]) -> str:
    parts = _target_classes(target, classes)
    return f"Class {parts[0]}" if len(parts) == 1 else f"{parts[0]} vs {parts[1]}"


def _data_uri(project, item_id: str) -> str | None:
    """The item's image as a ``data:`` URI, if it is an image inside the project folder."""
    from PIL import Image, UnidentifiedImageError

    path = project.media_path(item_id) if hasattr(project, "media_path") else None
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            mime = _IMAGE_TYPES.get(img.format or "")
        data = path.read_bytes() if mime else None
    except (OSError, UnidentifiedImageError):
        return None
    if data is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _when(row) -> str:
    at = row["effective_at"].strftime("%Y-%m-%d %H:%M UTC")
    batch = row["effective_batch"]
    return f"batch {batch} ({at})" if isinstance(batch, str) and batch else at


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2rem}.meta{color:#555;font-size:.9rem}
.examples{display:flex;flex-wrap:wrap;gap:.8rem}.ex{text-align:center;font-size:.85rem}
.ex img{width:96px;height:96px;image-rendering:pixelated;border:3px solid #2a7}
.ex.dont img{border-color:#c33}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}"""


def _example_text(project, item_id: str, limit: int = 600) -> str | None:
    """A text item's text for an example (its first ``limit`` characters), or None."""
    if not getattr(project, "is_text", False):
        return None
    text = project.item_text(item_id)
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + "\u2026"


def _html_document(project, hist: pd.DataFrame) -> str:
    e = html.escape
    classes = _classes(project)
    name = str(getattr(project, "name", "") or "")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
           'img-src data:; style-src \'unsafe-inline\'">',
           f"<title>Labeling guidelines {e(name)}</title><style>{_CSS}</style></head><body>",
           f"<h1>Labeling guidelines: {e(name)}</h1>"]
    for target, rows in hist.groupby("target", sort=False):
        row = rows.iloc[-1]
        out.append(f"<section><h2>{e(_title(target, classes))}</h2>")
        out.append(f'<p class="meta">Revision {int(row["revision_id"])}, applies from '
                   f"{e(_when(row))}, by {e(str(row['author']))}</p>")
        out.append(render_html(row["text"]))
        if row["examples"]:
            out.append('<div class="examples">')
            for item_id, kind in row["examples"].items():
                uri = _data_uri(project, item_id)
                css = "do" if kind == "do" else "dont"
                img = f'<img alt="{e(item_id)}" src="{uri}">' if uri else \
                    "<em>(no image)</em>"
                text = _example_text(project, item_id)
                if text is not None:  # a text item: its text, escaped (docs/text.md)
                    img = f'<blockquote class="text" style="white-space:pre-wrap">{e(text)}' \
                          "</blockquote>"
                out.append(f'<div class="ex {css}">{img}<br>{e(kind.upper())}: '
                           f"{e(item_id)}</div>")
            out.append("</div>")
        out.append("<h3>History</h3><table><tr><th>Revision</th><th>Applies from</th>"
                   "<th>Author</th><th>Reason</th></tr>")
        for _, r in rows.iterrows():
            reason = r["reason"] if isinstance(r["reason"], str) else ""
            out.append(f"<tr><td>{int(r['revision_id'])}</td><td>{e(_when(r))}</td>"
                       f"<td>{e(str(r['author']))}</td><td>{e(reason)}</td></tr>")
        out.append("</table></section>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return _escape_markdown_html(text).replace("|", "\\|").replace("\n", " ")


def _md_document(project, hist: pd.DataFrame) -> str:
    classes = _classes(project)
    name = str(getattr(project, "name", "") or "")
    out = [f"# Labeling guidelines: {_md_cell(name)}", ""]
    for target, rows in hist.groupby("target", sort=False):
        row = rows.iloc[-1]
        out += [f"## {_md_cell(_title(target, classes))}", "",
                f"*Revision {int(row['revision_id'])}, applies from {_md_cell(_when(row))}, by "
                f"{_md_cell(str(row['author']))}*", "", _escape_markdown_html(row["text"]), ""]
        for item_id, kind in (row["examples"] or {}).items():
            uri = _data_uri(project, item_id)
            label = f"{kind.upper()}: {_md_cell(item_id).replace(']', '')}"
            text = _example_text(project, item_id)
            if text is not None:  # a text item: quoted, its markup escaped
                out += [f"*{label}*", "", *("> " + _md_cell(line) for line in
                                            text.splitlines() or [""]), ""]
                continue
            out += [f"![{label}]({uri})" if uri else f"*{label} (no image)*", ""]
        out += ["### History", "", "| Revision | Applies from | Author | Reason |",
                "| --- | --- | --- | --- |"]
        for _, r in rows.iterrows():
            reason = r["reason"] if isinstance(r["reason"], str) else ""
            out.append(f"| {int(r['revision_id'])} | {_md_cell(_when(r))} "
                       f"| {_md_cell(str(r['author']))} "
                       f"| {_md_cell(reason)} |")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# effect of a revision
# --------------------------------------------------------------------------------------


def _revision_row(store, revision) -> pd.Series:
    if isinstance(revision, (pd.Series, dict)):
        revision = revision["revision_id"]
    if isinstance(revision, bool) or not isinstance(revision, (int, np.integer)):
        raise TypeError("The 'revision' parameter of guideline_effect must be a revision_id "
                        f"(int) or a row of Guidelines.history(). Got {revision!r} instead.")
    hist = store.guidelines.frame()
    hit = hist[hist["revision_id"] == int(revision)]
    if hit.empty:
        known = hist["revision_id"].tolist()
        raise SchemaError(f"guideline_effect: no guideline revision {int(revision)} in the "
                          f"store; known revisions: {known[:20]}"
                          f"{' ...' if len(known) > 20 else ''}.")
    return hit.iloc[0]


def _periods(project, ann: pd.DataFrame, row) -> tuple[np.ndarray, str]:
    """``after`` (bool per label, NA-free rows only) and how labels were split."""
    batch = row["effective_batch"]
    batches = _batches(project)
    ids = ann["item_id"].astype(str).to_numpy()
    if isinstance(batch, str) and batch and len(batches):
        order = {b: k for k, b in enumerate(_batch_order(project))}
        rank = batches.reindex(ids).map(order).to_numpy(dtype=float)
        return rank >= order[batch], "batch"
    eff = row["effective_at"]
    if "annotated_at" in ann.columns:
        when = pd.to_datetime(ann["annotated_at"], errors="coerce", utc=True)
        return (when >= eff).to_numpy() & when.notna().to_numpy(), "annotated_at"
    items = project.items
    if len(batches) and "batch_date" in items.columns:
        dates = pd.to_datetime(items["batch_date"], errors="coerce", utc=True)
        start = pd.Series(dates.to_numpy(), index=items["item_id"].astype(str).to_numpy())
        return (start.reindex(ids) >= eff).to_numpy(), "batch"
    raise SchemaError("guideline_effect: the annotations have no 'annotated_at' column and "
                      "the items no 'batch' with a 'batch_date', so labels cannot be placed "
                      "before or after the revision. Add annotated_at to the annotations, or "
                      "give the revision an effective batch.")


def _two_proportion_p(c1: int, n1: int, c2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (statsmodels' default)."""
    from scipy import stats

    if min(n1, n2) == 0:
        return float("nan")
    pooled = (c1 + c2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs((c1 / n1 - c2 / n2) / se)))


def _kappa_ci(truth: np.ndarray, given: np.ndarray, k: int, n_boot: int, alpha: float,
              rng: np.random.Generator) -> tuple[float, float, float]:
    """Cohen's kappa of ``given`` against ``truth`` (codes < k), with a bootstrap interval."""
    from .agreement import _kappa_from_confusion

    n = len(truth)
    if n == 0:
        return (float("nan"),) * 3
    counts = np.bincount(truth * k + given, minlength=k * k)
    point = _kappa_from_confusion(counts.reshape(1, k, k))[0]
    if n_boot <= 0:
        return float(point), float("nan"), float("nan")
    # resampling n labels with replacement = a multinomial draw over the k*k cells
    cms = rng.multinomial(n, counts / n, size=n_boot)
    boot = _kappa_from_confusion(cms.reshape(n_boot, k, k))
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return float(point), float("nan"), float("nan")
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(point), float(low), float(high)


def guideline_effect(project, revision, *, annotators=None, alpha: float = 0.05,
                     n_boot: int = 1000, seed: int = 0, store=None) -> pd.DataFrame:
    """Measure whether a guideline revision reduced the confusion it was written for.

    Labels are split into those made before and after the revision took effect: by batch
    order when the revision was given an effective batch and the items have batches
    (batches ordered by ``batch_date``, else by name), else by ``annotated_at`` (else the
    items' ``batch_date``). The consensus (majority vote of all labels) stands in for the
    truth. For a pair ``a|b``: among labels whose item's consensus is ``a`` or ``b``, the
    **confusion rate** is the share labelled with the other class of the pair, and Cohen's
    **kappa** compares those labels with the consensus. For one class ``c``: among labels
    where the consensus or the label is ``c``, the share where they differ; kappa of "is
    ``c``" against the consensus over all labels.

    Parameters
    ----------
    project : Project
        A classification project with annotations.
    revision : int or Series
        A ``revision_id`` (or a row of :meth:`Guidelines.history`).
    annotators : str or list of str, optional
        Only these annotators (default: all). The first row pools them.
    alpha : float, default=0.05
        Significance level of the test and 1 - coverage of the intervals.
    n_boot : int, default=1000
        Bootstrap resamples (of labels) for the kappa intervals.
    seed : int, default=0
        Seed of the bootstrap.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.

    Returns
    -------
    DataFrame
        One row for the annotators pooled (``annotator`` = ``"all"``), then one per
        annotator with labels of the involved classes: ``target``, ``annotator``,
        ``n_before``, ``confused_before``, ``confusion_before`` (rate) with
        ``confusion_before_low``/``_high`` (Wilson interval), the same ``*_after``,
        ``change`` (after - before), ``p_value`` (two-sided pooled two-proportion z-test),
        ``kappa_before``/``_low``/``_high`` and ``kappa_after``/``_low``/``_high``
        (bootstrap percentile interval), ``verdict`` ("helped", "no significant change",
        "worse", or "not enough labels" when a period has none) and ``summary`` (a
        sentence). ``attrs`` hold ``revision_id``, ``effective_at``, ``effective_batch``
        and ``split_by`` ('batch' or 'annotated_at').

    Raises
    ------
    SchemaError
        Unknown revision, no annotations, or no way to place labels in time.
    """
    from .agreement import consensus
    from .slicing import wilson_interval

    func = "guideline_effect"
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter of {func} must be a float in (0, 1). Got "
                         f"{alpha!r} instead.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"The 'n_boot' parameter of {func} must be an int >= 0. Got "
                         f"{n_boot!r} instead.")
    if store is None:
        from .tags import TagStore

        store = TagStore.for_project(project)
    if getattr(project, "task", "classification") != "classification":
        raise SchemaError(f"{func}: guideline effects are measured on class labels; this is "
                          f"a {project.task} project.")
    row = _revision_row(store, revision)
    classes = _classes(project)
    involved = _target_classes(row["target"], classes)
    gone = [c for c in involved if c not in classes]
    if gone:
        raise SchemaError(f"{func}: revision {int(row['revision_id'])} is about {gone}, which "
                          f"the project's classes {classes} no longer hold.")
    ann = project.annotations
    if not isinstance(ann, pd.DataFrame) or ann.empty:
        raise SchemaError(f"{func}: the project has no annotations to measure.")
    ann = ann.assign(item_id=ann["item_id"].astype(str), label=ann["label"].astype(str),
                     annotator=ann["annotator"].astype(str))
    cons = consensus(ann, classes=classes)
    truth = pd.Series(cons["label"].astype(str).to_numpy(),
                      index=cons["item_id"].astype(str).to_numpy())
    after, split_by = _periods(project, ann, row)
    ann = ann.assign(consensus=truth.reindex(ann["item_id"].to_numpy()).to_numpy(),
                     after=after)
    if annotators is not None:
        wanted = [annotators] if isinstance(annotators, str) else [str(a) for a in annotators]
        missing = sorted(set(wanted) - set(ann["annotator"]))
        if missing:
            raise SchemaError(f"{func}: annotator(s) {missing} have no labels in the project; "
                              f"annotators: {sorted(set(ann['annotator']))}.")
        ann = ann[ann["annotator"].isin(wanted)]
    code = {c: k for k, c in enumerate(classes)}
    lab = ann["label"].map(code).to_numpy(dtype=float)
    con = ann["consensus"].map(code).to_numpy(dtype=float)
    ok = ~np.isnan(lab) & ~np.isnan(con)
    ann, lab, con = ann[ok], lab[ok].astype(np.int64), con[ok].astype(np.int64)
    codes = [code[c] for c in involved]
    if len(codes) == 2:
        rows_in = np.isin(con, codes)
        confused = rows_in & np.isin(lab, codes) & (lab != con)
        kap_rows, k_truth, k_given, k = rows_in, con, lab, len(classes)
    else:
        c = codes[0]
        rows_in = (con == c) | (lab == c)
        confused = rows_in & (lab != con)
        kap_rows = np.ones(len(con), dtype=bool)
        k_truth, k_given, k = (con == c).astype(np.int64), (lab == c).astype(np.int64), 2
    rng = np.random.default_rng(seed)
    after = ann["after"].to_numpy(dtype=bool)
    names = ann["annotator"].to_numpy()
    scopes = [("all", np.ones(len(ann), dtype=bool))]
    scopes += [(a, names == a) for a in sorted(set(names[rows_in]))]
    title = " vs ".join(involved)
    records = []
    for name, mask in scopes:
        rec: dict[str, Any] = {"target": row["target"], "annotator": name}
        counts = []
        for period, sel in (("before", mask & ~after), ("after", mask & after)):
            n = int((sel & rows_in).sum())
            c = int((sel & confused).sum())
            low, high = wilson_interval([c], [n], alpha)
            kap = _kappa_ci(k_truth[sel & kap_rows], k_given[sel & kap_rows], k, n_boot,
                            alpha, rng)
            rec.update({f"n_{period}": n, f"confused_{period}": c,
                        f"confusion_{period}": c / n if n else float("nan"),
                        f"confusion_{period}_low": float(low[0]),
                        f"confusion_{period}_high": float(high[0]),
                        f"kappa_{period}": kap[0], f"kappa_{period}_low": kap[1],
                        f"kappa_{period}_high": kap[2]})
            counts += [c, n]
        rec["change"] = rec["confusion_after"] - rec["confusion_before"]
        rec["p_value"] = _two_proportion_p(*counts)
        rec["verdict"], rec["summary"] = _verdict(rec, title, alpha)
        records.append(rec)
    cols = ["target", "annotator", "n_before", "confused_before", "confusion_before",
            "confusion_before_low", "confusion_before_high", "n_after", "confused_after",
            "confusion_after", "confusion_after_low", "confusion_after_high", "change",
            "p_value", "kappa_before", "kappa_before_low", "kappa_before_high", "kappa_after",
            "kappa_after_low", "kappa_after_high", "verdict", "summary"]
    out = pd.DataFrame(records, columns=cols)
    out.attrs.update({"revision_id": int(row["revision_id"]),
                      "effective_at": row["effective_at"],
                      "effective_batch": row["effective_batch"]
                      if isinstance(row["effective_batch"], str) else None,
                      "split_by": split_by})
    return out


def _verdict(rec: dict, title: str, alpha: float) -> tuple[str, str]:
    who = "the annotators" if rec["annotator"] == "all" else rec["annotator"]
    if rec["n_before"] == 0 or rec["n_after"] == 0:
        missing = "before" if rec["n_before"] == 0 else "after"
        return "not enough labels", (f"{who.capitalize() if who[0].islower() else who} made "
                                     f"no labels of {title} {missing} the revision: its "
                                     "effect cannot be measured yet.")
    before, after, p = rec["confusion_before"], rec["confusion_after"], rec["p_value"]
    change = (f"the confusion of {title} by {who} went from {before:.1%} to {after:.1%} "
              f"(p = {p:.3g})")
    if p < alpha and after < before:
        return "helped", f"The revision helped: {change}."
    if p < alpha and after > before:
        return "worse", f"Worse after the revision: {change}."
    return "no significant change", (f"No significant change: {change}; the revision did "
                                     "not measurably help.")

