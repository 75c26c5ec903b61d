"""Benchmark: the 2-D layout of the embeddings (the map's coordinates), computed once.

Rows (each measured with its peer in the same run, in forked children, see harness.py):

1. ``layout(project, "umap")`` (the default ``random_state=None``) on 100,000 x 128
   embeddings (realistic clustered data: 30 clusters of different spreads in a
   24-dimensional subspace plus noise in all 128, rows shuffled), cold (nothing cached:
   Numba compilation, PCA to 50 dimensions, nearest-neighbour descent, optimisation on 2
   threads, cache write), against a plain ``umap.UMAP().fit_transform(X)`` on the same
   matrix (all cores, spectral start). Target < 90 s on 2 cores.
2. The same with ``random_state=0`` (reproducible; UMAP then runs on one thread): the
   opt-in, reported for comparison.
3. The second call (another kernel): the layout read from ``.workbench/cache``.
4. ``layout(project, "pca")`` against ``sklearn.decomposition.PCA(2).fit_transform``.

Every row's notes give the CPU seconds of the call and the machine's load average when it
started (the bench machines are shared), and the layout's quality: the share of each
point's 10 nearest neighbours in 2-D that come from its own cluster.

Run: ``python benchmarks/bench_layout.py`` (``--quick``: 20,000 points).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import measure, record  # noqa: E402

QUICK = "--quick" in sys.argv
N = 20_000 if QUICK else 100_000
D = 128
TIMEOUT = 900


def clustered(n: int = N, d: int = D, *, n_clusters: int = 30, seed: int = 0):
    """Clustered embeddings like a model's: (X float32 (n, d), cluster of each row)."""
    rng = np.random.default_rng(seed)
    inner = 24
    centers = rng.normal(scale=4.0, size=(n_clusters, inner))
    basis = np.linalg.qr(rng.normal(size=(d, inner)))[0].T
    cluster = rng.choice(n_clusters, size=n, p=rng.dirichlet(np.full(n_clusters, 5.0)))
    spread = rng.uniform(0.5, 1.5, n_clusters)
    Z = centers[cluster] + rng.normal(size=(n, inner)) * spread[cluster, None]
    X = Z @ basis + rng.normal(scale=0.3, size=(n, d))
    order = rng.permutation(n)  # shuffled rows: no order to exploit
    return X[order].astype(np.float32), cluster[order]


def _project(X, root: Path):
    from workbench.embeddings import embedding_frame
    from workbench.project import Project

    ids = [f"e{i:06d}" for i in range(len(X))]
    items = pd.DataFrame({"item_id": ids})
    return Project.from_frames(items, embeddings=embedding_frame(ids, X), root=root)


def _timed(fn, out: Path):
    """Wrap ``fn`` to write its CPU seconds (user + system) to ``out``."""
    def run(*args, **kwargs):
        before = resource.getrusage(resource.RUSAGE_SELF)
        result = fn(*args, **kwargs)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.write_text(json.dumps({"cpu": cpu}))
        return result
    return run


def _measure(fn, *args, tmp: Path, **kwargs) -> tuple[dict, str]:
    out = tmp / f"cpu-{time.monotonic_ns()}.json"
    load = os.getloadavg()[0]
    result = measure(_timed(fn, out), *args, timeout=TIMEOUT, **kwargs)
    cpu = json.loads(out.read_text())["cpu"] if out.exists() else None
    cpu_text = f"{cpu:.1f}" if cpu is not None else "n/a"
    return result, f"CPU {cpu_text} s, load average {load:.1f} at start"


def _purity(xy: np.ndarray, cluster: np.ndarray, k: int = 10, sample: int = 5000) -> float:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(1)
    rows = rng.choice(len(xy), size=min(sample, len(xy)), replace=False)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(xy)
    ind = nn.kneighbors(xy[rows], return_distance=False)[:, 1:]
    return float((cluster[ind] == cluster[rows, None]).mean())


def _plain_umap(X):
    import umap

    return umap.UMAP().fit_transform(X)


def _sklearn_pca(X):
    from sklearn.decomposition import PCA

    return PCA(n_components=2).fit_transform(X)


def main() -> int:
    from workbench.layout import layout

    X, cluster = clustered()
    print(f"{N:,} x {D} clustered embeddings", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-layout-") as tmp:
        tmp = Path(tmp)
        size = f"{N:,} x {D}"
        target = "< 90 s on 2 cores, computed once"
        for random_state, what in ((None, "the default: 2 threads, not bit-reproducible"),
                                   (0, "reproducible, 1 thread (UMAP's rule)")):
            root = tmp / f"project-{random_state}"
            root.mkdir()
            project = _project(X, root)
            print(f"layout umap random_state={random_state}", flush=True)
            ours, ours_note = _measure(layout, project, "umap", random_state=random_state,
                                       tmp=tmp)
            peer = peer_note = None
            if random_state is None:
                print("plain umap.UMAP().fit_transform", flush=True)
                peer, peer_note = _measure(_plain_umap, X, tmp=tmp)
            notes = f"ours: {ours_note}"
            if peer_note:
                notes += f"; peer: {peer_note}"
            frame = None
            if ours.get("error") is None:
                frame = layout(_project(X, root), "umap", random_state=random_state)
                purity = _purity(frame[["x", "y"]].to_numpy(), cluster)
                notes += f"; 2-D 10-NN cluster purity {purity:.3f}"
            rows.append({
                "operation": f"layout(project, 'umap', random_state={random_state}), cold",
                "size": size, "ours": ours,
                "peer": "umap.UMAP().fit_transform(X), all cores" if peer else None,
                "peer_result": peer, "target": target, "notes": f"{notes} ({what})"})
            if frame is not None and random_state is None:
                print("second call (cache)", flush=True)
                cached, cached_note = _measure(layout, _project(X, root), "umap",
                                               random_state=None, tmp=tmp)
                rows.append({"operation": "layout umap, second call (read from the cache)",
                             "size": size, "ours": cached, "peer": None,
                             "peer_result": None, "target": "computed once",
                             "notes": cached_note})
            record("layout", rows)
        root = tmp / "project-pca"
        root.mkdir()
        print("pca", flush=True)
        ours, ours_note = _measure(layout, _project(X, root), "pca", tmp=tmp)
        peer, peer_note = _measure(_sklearn_pca, X, tmp=tmp)
        rows.append({"operation": "layout(project, 'pca'), cold", "size": size, "ours": ours,
                     "peer": "sklearn PCA(2).fit_transform(X)", "peer_result": peer,
                     "target": "reference", "notes": f"ours: {ours_note}; peer: {peer_note}"})
    path = record("layout", rows)
    for r in rows:
        o, p = r["ours"], r.get("peer_result") or {}
        print(f"{r['operation']} [{r['size']}]: ours {o.get('seconds')} s "
              f"(err {o.get('error') and o['error'][:200]}), peer {p.get('seconds')} s "
              f"| {r['notes']}")
    print(f"wrote {path}")
    return 1 if any(r["ours"].get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
