"""Benchmark: slicing model errors at scale, and click-to-gallery latency.

Rows (each measured with its peer in the same run, in forked children, see harness.py):

1. ``slice_metrics`` over all 10 metadata columns of a 1,000,000-item synthetic project,
   against a plain pandas ``groupby().agg`` of the error rate per column. Target < 1 s.
2. ``discover_slices(max_order=2)`` against the ``sliceline`` package (``Slicefinder``,
   ``max_l=2``, same ``min_sup``, ``k=10``) on the same data: at 100k and 300k items and at
   1M when sliceline finishes within the timeout. Target < 10 s at 1M, finding the planted
   slices, faster than sliceline.
3. Click a confusion-matrix cell / a slice row to a rendered first gallery page (24 cards,
   images read in the kernel) in an ``ErrorExplorer`` on the sample project, against the
   bare minimum (a pandas mask of the cell plus reading the 24 image files). Target < 200 ms.
   Each click is measured once in a fresh fork (cold: the cell's ids are not cached yet),
   after clearing the selection (inside the measured time). The same click is also
   measured on the 1M-item project (no images).

Run: ``python benchmarks/bench_slicing.py`` (about 5-10 minutes on 2 cores; ``--quick``
uses 100k items and skips the largest sliceline run).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402

QUICK = "--quick" in sys.argv
N_BIG = 100_000 if QUICK else 1_000_000
SLICELINE_SIZES = [100_000] if QUICK else [100_000, 300_000, 1_000_000]
SLICELINE_TIMEOUT = 600


def _make(n: int):
    t0 = time.perf_counter()
    project = wb.make_project(n, n_metadata=10, n_annotators=0, n_runs=1, with_probs=False,
                              seed=0)
    errors = project.errors()
    print(f"  built {n:,} items in {time.perf_counter() - t0:.1f} s", flush=True)
    return project, errors


def _planted(project) -> list[dict]:
    return [p["conditions"] for p in project.info["planted_slices"]
            if p["target"] == "correct"]


def _pandas_groupby(errors, columns):
    err = ~errors["correct"]
    return [err.groupby(errors[c], observed=True).agg(["size", "sum", "mean"])
            for c in columns]


def _sliceline(errors, columns, min_sup):
    from sliceline.slicefinder import Slicefinder

    X = errors[columns].to_numpy(dtype=object)
    y = (~errors["correct"]).to_numpy(dtype=float)
    sf = Slicefinder(alpha=0.95, k=10, max_l=2, min_sup=min_sup, verbose=False)
    sf.fit(X, y)
    return sf, columns


def _sliceline_found(errors, columns, min_sup, planted) -> str:
    sf, cols = _sliceline(errors, columns, min_sup)
    found = []
    for row in sf.top_slices_:
        found.append({c: v for c, v in zip(cols, row, strict=True) if v is not None})
    ranks = [found.index(p) + 1 if p in found else None for p in planted]
    return f"sliceline top-10 ranks of the planted slices: {ranks}"


def bench_metrics(errors, project) -> dict:
    columns = errors.attrs["metadata_columns"]
    ours = measure(wb.slice_metrics, errors, columns, repeat=3)
    peer = measure(_pandas_groupby, errors, columns, repeat=3)
    return {"operation": "slice_metrics, all 10 metadata columns", "size": f"{len(errors):,}",
            "ours": ours, "peer": "pandas groupby().agg per column", "peer_result": peer,
            "target": "< 1 s", "notes": "ours adds Wilson CIs, z/Fisher tests and BH q-values"}


def bench_discover(n: int, cache: dict) -> dict:
    project, errors = cache.get(n) or _make(n)
    columns = errors.attrs["metadata_columns"]
    planted = _planted(project)
    d = wb.discover_slices(errors, max_order=2, top=10)
    min_sup = int(d.attrs["min_support"])
    found = d["conditions"].tolist()
    ranks = [found.index(p) + 1 if p in found else None for p in planted]
    ours = measure(wb.discover_slices, errors, max_order=2, top=10, repeat=1)
    peer = None
    notes = (f"planted {planted}; our ranks {ranks} of {len(d)} reported; "
             f"min_support={min_sup}")
    if n in SLICELINE_SIZES:
        peer = measure(_sliceline, errors, columns, min_sup, timeout=SLICELINE_TIMEOUT)
        if peer.get("error") is None:
            notes += "; " + _sliceline_found(errors, columns, min_sup, planted)
        elif peer.get("error"):
            notes += f"; sliceline did not finish at {n:,} items"
    return {"operation": "discover_slices(max_order=2, top=10)", "size": f"{n:,}",
            "ours": ours, "peer": "sliceline Slicefinder(max_l=2, k=10, same min_sup)"
            if peer is not None else None, "peer_result": peer,
            "target": "< 10 s at 1M, planted found, faster than sliceline", "notes": notes}


def _minimal_click(project, errors, t, p, n_cards=24):
    ids = errors["item_id"].to_numpy()[((errors["label"].astype(str) == t)
                                        & (errors["predicted"].astype(str) == p)).to_numpy()]
    for item_id in sorted(ids)[:n_cards]:
        path = project.media_path(item_id)
        if path is not None:
            path.read_bytes()
    return ids


def bench_clicks() -> list[dict]:
    from plotly.callbacks import Points

    project = wb.open_project()
    app = wb.widgets.ErrorExplorer(project)
    errors = app.errors
    table = wb.confusion_table(errors)
    # the biggest cells: a diagonal one (many items, a full first page) and the worst error
    diag = max(table.index, key=lambda c: table.loc[c, c])
    off = table.to_numpy().copy()
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(off.argmax(), off.shape)
    rows = []
    for t, p in ((diag, diag), (table.index[i], table.columns[j])):
        k = len(app.confusion.classes)
        point = app.confusion.classes.index(t) * k + app.confusion.classes.index(p)

        def click(point=point):
            app.selection.clear()  # a real change (counted in the time)
            app.confusion._on_click(app.confusion.figure.data[1],
                                    Points(point_inds=[point], xs=[], ys=[], trace_name=None,
                                           trace_index=1), None)
            assert app.gallery.ids_on_page, "the gallery shows the cell"

        ours = measure(click)
        peer = measure(_minimal_click, project, errors, t, p)
        rows.append({"operation": f"click confusion cell (true {t}, predicted {p}) -> first "
                                  "gallery page rendered", "size": f"{int(table.loc[t, p])} "
                                                                   "items in the cell",
                     "ours": ours, "peer": "pandas mask + read 24 image files",
                     "peer_result": peer, "target": "< 200 ms",
                     "notes": f"sample project ({len(errors):,} items), 24 cards, "
                              "kernel only (no browser)"})

    def click_row():
        app.selection.clear()
        app.slices.rows[0].button.click()
        assert app.gallery.ids_on_page

    ours = measure(click_row)
    col = app.slices.column
    value = app.slices.frame["bin"].iloc[0]

    def minimal_row():
        ids = errors["item_id"].to_numpy()[(errors[col] == value).to_numpy()]
        for item_id in sorted(ids)[:24]:
            path = project.media_path(item_id)
            if path is not None:
                path.read_bytes()

    peer = measure(minimal_row)
    rows.append({"operation": f"click slice row ({col}={value}) -> first gallery page",
                 "size": f"{int(app.slices.frame['n'].iloc[0])} items in the slice",
                 "ours": ours, "peer": "pandas mask + read 24 image files",
                 "peer_result": peer, "target": "< 200 ms",
                 "notes": "sample project, kernel only (no browser)"})
    return rows


def bench_click_big(project) -> dict:
    """Click an off-diagonal confusion cell in an ErrorExplorer over the big project."""
    from plotly.callbacks import Points

    t0 = time.perf_counter()
    app = wb.widgets.ErrorExplorer(project)
    build = time.perf_counter() - t0
    errors = app.errors
    table = wb.confusion_table(errors)
    off = table.to_numpy().copy()
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(off.argmax(), off.shape)
    t, p = table.index[i], table.columns[j]
    k = len(app.confusion.classes)
    point = int(i) * k + int(j)

    def click():
        app.selection.clear()
        app.confusion._on_click(app.confusion.figure.data[1],
                                Points(point_inds=[point], xs=[], ys=[], trace_name=None,
                                       trace_index=1), None)
        assert app.gallery.ids_on_page

    ours = measure(click)
    peer = measure(_minimal_click, project, errors, t, p)
    return {"operation": "click confusion cell -> first gallery page (no images)",
            "size": f"{len(errors):,} items, {int(table.loc[t, p]):,} in the cell",
            "ours": ours, "peer": "pandas mask of the cell", "peer_result": peer,
            "target": "< 200 ms (informative at this size)",
            "notes": f"ErrorExplorer built in {build:.1f} s; synthetic project without images"}


def main() -> int:
    rows = []
    print("clicks on the sample project", flush=True)
    rows += bench_clicks()
    cache: dict = {}
    print(f"synthetic project, {N_BIG:,} items", flush=True)
    big = _make(N_BIG)
    cache[N_BIG] = big
    rows.append(bench_metrics(big[1], big[0]))
    print("click at scale", flush=True)
    rows.append(bench_click_big(big[0]))
    for n in sorted(set(SLICELINE_SIZES) | {N_BIG}):
        print(f"discover_slices vs sliceline at {n:,}", flush=True)
        rows.append(bench_discover(n, cache))
        record("slicing", rows)  # keep partial results
    path = record("slicing", rows)
    for r in rows:
        o, p = r["ours"], r.get("peer_result") or {}
        print(f"{r['operation']} [{r['size']}]: ours {o.get('seconds')} s "
              f"(err {o.get('error') and o['error'][:80]}), peer {p.get('seconds')} s "
              f"(err {p.get('error') and p['error'][:80]}) | {r['notes']}")
    print(f"wrote {path}")
    failed = [r for r in rows if r["ours"].get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
