"""Peers of the embedding map: Renumics Spotlight's similarity map on the same points.

The map's own figures (1,000,000 points drawn in headless Chromium, the lasso) are measured
by ``bench_embedding_map.py``. This script measures the peers the issue names, on the same
points (``bench_embedding_map.make_data``: 10 clusters of 100,000, one in the middle, nine
on a ring), each in its own virtualenv so that the workbench's environment is never touched:

- **Renumics Spotlight** (``pip install renumics-spotlight`` in a separate virtualenv; its
  Python is ``$WORKBENCH_SPOTLIGHT_PYTHON``, default ``/tmp/wb-spotlight-venv/bin/python``).
  ``spotlight.show`` serves a DataFrame with the points as a 2-D ``Embedding`` column and a
  layout holding only a similarity map (``reduction_method="pca"``, so the map is the points
  themselves, rotated at most; UMAP on 1,000,000 points would measure UMAP, not the map).
  Measured: the server's start (the DataFrame read until the port answers), then seconds
  from ``page.goto`` to the points drawn (a screenshot of the map's canvas holds at least
  ``MIN_INK`` pixels clearly darker than the canvas's background; polled every 0.5 s; the
  loading screen before it is a uniform grey and does not count), and the external
  requests the page made.
- **FiftyOne's embeddings panel**: not measured (see ``FIFTYONE_NOTE``).

Our map's figure from the latest ``bench_embedding_map.py`` run is copied into each row as
``ours`` with its date in the notes (that bench serves our dashboard the same way on the
same points; running both maps here would double a 10-minute bench on a 2-core machine).

Usage: ``python benchmarks/bench_embedding_peers.py [n_points ...]`` (default 1,000,000);
``python benchmarks/bench_embedding_peers.py --refresh-ours`` copies the latest
``bench_embedding_map.py`` figure into the rows already measured (the peers' figures and
their date are kept as they are; Spotlight at 1,000,000 points takes over 10 minutes).
Bounded: the server gets ``SERVER_TIMEOUT`` s to answer, the page ``PAGE_TIMEOUT`` s to draw.
Results: ``benchmarks/results/embedding_peers.json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import RESULTS_DIR, record  # noqa: E402

SPOTLIGHT_PYTHON = os.environ.get("WORKBENCH_SPOTLIGHT_PYTHON",
                                  "/tmp/wb-spotlight-venv/bin/python")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
        "--disable-backgrounding-occluded-windows", "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling"]
SERVER_TIMEOUT = 600.0
PAGE_TIMEOUT = 180.0
#: Pixels of the map's canvas darker than its background (by ``INK_DELTA`` in the darkest
#: channel) that count as points drawn (10,000 points draw about 175,000 of them).
MIN_INK = 5000
INK_DELTA = 15
FIFTYONE_NOTE = (
    "not measured: FiftyOne's embeddings panel needs one MongoDB document per point "
    "(a 1,000,000-sample dataset; bench_embedding_map.py measures that step alone), a "
    "fiftyone-brain visualization run holding the points (compute_visualization with "
    "points=...), and the App's Embeddings panel opened and drawn in Chromium; driving the "
    "panel in the App was not built within this round's time box")

LATE_NOTE = ("past the page bound: the page answered no screenshot while it computed, so "
             "the figure is when it first answered with the points drawn")

SERVER = r'''
import sys, time
import numpy as np
import pandas as pd
from renumics import spotlight

path, port = sys.argv[1], int(sys.argv[2])
pts = pd.read_parquet(path)
df = pd.DataFrame({"item_id": pts["item_id"], "label": pts["label"]})
df["embedding"] = list(pts[["x", "y"]].to_numpy(np.float32))
layout = spotlight.layout.layout([[spotlight.layout.similaritymap(
    name="map", columns=["embedding"], reduction_method="pca", color_by_column="label")]])
spotlight.show(df, host="127.0.0.1", port=port, no_browser=True, wait="forever",
               dtype={"embedding": spotlight.Embedding, "label": spotlight.Category},
               layout=layout)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _points(n: int, tmp: Path) -> Path:
    """The points of bench_embedding_map.py (its make_data), as item_id, label, x, y."""
    from bench_embedding_map import make_data

    root, _ = make_data(tmp / "project", n)
    items = pd.read_parquet(root / "items.parquet")
    xy = pd.read_parquet(root / "layout.parquet")
    out = tmp / "points.parquet"
    pd.DataFrame({"item_id": xy["item_id"], "label": items["label"], "x": xy["x"],
                  "y": xy["y"]}).to_parquet(out)
    return out


def _ink(png: bytes) -> int:
    """Pixels clearly darker than the image's most common shade (its background)."""
    import io

    from PIL import Image

    darkest = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).min(axis=2)
    background = int(np.bincount(darkest.ravel(), minlength=256).argmax())
    return int((darkest < background - INK_DELTA).sum())


def _spotlight_page(port: int) -> dict:
    """Seconds from goto to points drawn in Spotlight's similarity map, in Chromium."""
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda r: external.append(r.url) if not r.url.startswith(
                ("http://127.0.0.1", "data:", "blob:")) else None)
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", timeout=PAGE_TIMEOUT * 1000)
            ink = 0
            canvas = page.locator("canvas").first
            while time.perf_counter() - t0 < PAGE_TIMEOUT:
                if canvas.count() and canvas.is_visible():
                    ink = _ink(canvas.screenshot(timeout=PAGE_TIMEOUT * 1000))
                if ink >= MIN_INK:
                    seconds = time.perf_counter() - t0
                    page.screenshot(path=str(RESULTS_DIR / "embedding_peers_spotlight.png"))
                    return {"seconds": seconds, "ink": ink, "external": external}
                time.sleep(0.5)
            page.screenshot(path=str(RESULTS_DIR / "embedding_peers_spotlight.png"))
            busy = page.get_by_text("Computing").all_inner_texts()  # e.g. "Computing pca"
            shown = f"; the map pane still shows {busy[0]!r}" if busy else ""
            return {"seconds": None, "ink": ink, "external": external,
                    "error": f"points not drawn within {PAGE_TIMEOUT:.0f} s "
                             f"({ink} dark pixels on the map's canvas){shown}"}
        finally:
            browser.close()


def measure_spotlight(n: int, tmp: Path) -> dict:
    """Start Spotlight's server on the points, wait for it, time the page; always stop it."""
    if not Path(SPOTLIGHT_PYTHON).exists():
        return {"error": f"not installed: no {SPOTLIGHT_PYTHON} (python -m venv DIR && "
                         "DIR/bin/pip install renumics-spotlight; then set "
                         "WORKBENCH_SPOTLIGHT_PYTHON=DIR/bin/python)"}
    version = subprocess.run(
        [SPOTLIGHT_PYTHON, "-c", "import renumics.spotlight as s; print(s.__version__)"],
        capture_output=True, text=True, timeout=300)
    if version.returncode != 0:
        return {"error": "not importable: " + version.stderr.strip()[-500:]}
    points = _points(n, tmp)
    script = tmp / "spotlight_server.py"
    script.write_text(SERVER)
    port = _free_port()
    log = (tmp / "spotlight.log").open("w")
    t0 = time.perf_counter()
    # its own process group: Spotlight runs uvicorn and workers in child processes, which
    # outlive a terminated parent; the whole group is stopped at the end
    proc = subprocess.Popen([SPOTLIGHT_PYTHON, str(script), str(points), str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
                            start_new_session=True)
    out: dict = {"version": version.stdout.strip().splitlines()[-1]}
    try:
        while not _answers(port):
            if proc.poll() is not None:
                tail = (tmp / "spotlight.log").read_text()[-800:]
                return {**out, "error": f"server exited ({proc.returncode}): {tail}"}
            if time.perf_counter() - t0 > SERVER_TIMEOUT:
                return {**out, "error": f"server did not answer within {SERVER_TIMEOUT:.0f} s"}
            time.sleep(0.5)
        out["server_seconds"] = time.perf_counter() - t0
        out.update(_spotlight_page(port))
        try:
            import psutil

            out["server_rss_mb"] = psutil.Process(proc.pid).memory_info().rss / 2**20
        except Exception:  # noqa: BLE001 - psutil is optional here
            pass
        return out
    finally:
        _stop_group(proc)
        log.close()


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop the server and every process it started (its process group): TERM, then KILL."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    time.sleep(2.0)  # the children's graceful shutdown
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def _ours(n: int) -> tuple[dict, str]:
    """Our map's page-usable figure from the latest bench_embedding_map.py run, at ``n``."""
    path = RESULTS_DIR / "embedding_map.json"
    if not path.exists():
        return ({"seconds": None, "peak_mb": None, "error": "run bench_embedding_map.py"},
                "ours: not measured yet")
    data = json.loads(path.read_text())
    row = next((r for r in data["rows"] if r["operation"].startswith("map page usable")), None)
    if row is None:
        return ({"seconds": None, "peak_mb": None, "error": "no page-usable row"}, "")
    if not row["size"].startswith(f"{n:,} points"):
        return ({"seconds": None, "peak_mb": None, "error": None},
                f"ours: bench_embedding_map.py measured {row['size']}, not this size")
    return row["ours"], (f"ours: workbench EmbeddingMap {row['size']}, from "
                         f"bench_embedding_map.py of {data['meta']['when']}")


def refresh_ours() -> Path:
    """Copy our latest map figure into the peers' rows, keeping their figures and date."""
    path = RESULTS_DIR / "embedding_peers.json"
    data = json.loads(path.read_text())
    for row in data["rows"]:
        n = int(row["size"].split()[0].replace(",", ""))
        ours, ours_note = _ours(n)
        row["ours"] = ours
        rest = [part for part in row["notes"].split("; ") if not part.startswith("ours:")]
        row["notes"] = "; ".join([ours_note, *rest] if ours_note else rest)
    data["meta"]["ours_refreshed"] = time.strftime("%Y-%m-%d %H:%M:%S")
    path.write_text(json.dumps(data, indent=2))
    return path


def main(argv: list[str]) -> int:
    if argv == ["--refresh-ours"]:
        print(f"wrote {refresh_ours()}")
        return 0
    sizes = [int(a) for a in argv] or [1_000_000]
    rows = []
    for n in sizes:
        ours, ours_note = _ours(n)
        print(f"spotlight, {n:,} points", flush=True)
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
            res = measure_spotlight(n, Path(tmp))
        print(res, flush=True)
        peer = {"seconds": res.get("seconds"), "peak_mb": res.get("server_rss_mb"),
                "error": res.get("error")}
        notes = [ours_note, f"Spotlight {res.get('version', '?')}: similarity map "
                 "(reduction pca) of a 2-D Embedding column"]
        if res.get("server_seconds") is not None:
            notes.append(f"its server took {res['server_seconds']:.1f} s to answer (not "
                         "counted; peak_mb is the server's resident set)")
        if (res.get("seconds") or 0) > PAGE_TIMEOUT:
            notes.append(LATE_NOTE)
        if "external" in res:
            notes.append(f"external requests: {len(res['external'])}")
        notes.append(f"load average {load:.1f} at start")
        rows.append({"operation": "map page usable (goto to points drawn), peer Spotlight",
                     "size": f"{n:,} points, 10 clusters", "ours": ours,
                     "peer": "Renumics Spotlight similarity map", "peer_result": peer,
                     "target": "< 5 s", "notes": "; ".join(n for n in notes if n)})
        record("embedding_peers", rows)
    ours, ours_note = _ours(sizes[0])
    rows.append({"operation": "map page usable, peer FiftyOne embeddings panel",
                 "size": f"{sizes[0]:,} points", "ours": ours,
                 "peer": "FiftyOne App embeddings panel",
                 "peer_result": {"seconds": None, "peak_mb": None, "error": FIFTYONE_NOTE},
                 "target": "< 5 s", "notes": ours_note})
    path = record("embedding_peers", rows)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
