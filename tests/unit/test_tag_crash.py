"""Crash safety: 8 processes tag concurrently and are SIGKILLed at random, then restarted.

Each worker adds 300 tags, one call per tag, each with its own action key, and appends the
key to its own log only after the call returned (acknowledged). Workers are killed at random
and restarted; a restarted worker replays every key it has not logged. At the end nothing
acknowledged is lost, nothing is duplicated and the store passes its integrity check.

Workers are forked from the test process (modules already imported), so a restart costs
milliseconds rather than a fresh interpreter.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
import traceback
from pathlib import Path

import pytest

N_WORKERS = 8
N_TAGS = 300
DEADLINE = 120  # seconds; each test usually takes 5-20 s on 2 cores


def _worker(url: str, wid: int, n: int, logdir: str) -> None:
    try:
        _work(url, wid, n, logdir)
    except BaseException:
        (Path(logdir) / f"w{wid}.err").write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)


def _work(url: str, wid: int, n: int, logdir: str) -> None:
    from workbench.tags import TagStore

    log = Path(logdir) / f"w{wid}.log"
    done = set()
    if log.exists():
        done = {line for line in log.read_text().split("\n")[:-1]}  # complete lines only
    store = TagStore(url)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for i in range(n):
        key = f"w{wid}-{i}"
        if key in done:
            continue
        store.add([f"w{wid}-item{i}"], f"tag-{wid}", author=f"worker-{wid}", action_key=key)
        os.write(fd, (key + "\n").encode())  # acknowledged only after the commit returned
        os.fsync(fd)
    os.close(fd)
    (Path(logdir) / f"w{wid}.done").write_text("ok")


def _spawn(url: str, wid: int, logdir: Path):
    proc = mp.get_context("fork").Process(target=_worker, args=(url, wid, N_TAGS, str(logdir)))
    proc.start()
    return proc


def _run_with_kills(url: str, logdir: Path, seed: int) -> int:
    from workbench.tags import TagStore

    TagStore(url).close()  # create the schema once, like the first user would
    rng = random.Random(seed)
    procs = {w: _spawn(url, w, logdir) for w in range(N_WORKERS)}
    kills = 0
    start = time.monotonic()
    next_kill = start + rng.uniform(0.1, 0.4)
    while True:
        alive = {w: p for w, p in procs.items() if p.is_alive()}
        for w, p in list(procs.items()):
            if not p.is_alive() and not (logdir / f"w{w}.done").exists():
                p.join()
                if p.exitcode != -9:
                    err = logdir / f"w{w}.err"
                    raise AssertionError(f"worker {w} failed (exit {p.exitcode}): "
                                         f"{err.read_text()[-3000:] if err.exists() else ''}")
                procs[w] = _spawn(url, w, logdir)  # killed: restart it
        if all((logdir / f"w{w}.done").exists() for w in range(N_WORKERS)):
            break
        if time.monotonic() > start + DEADLINE:
            for p in procs.values():
                p.kill()
                p.join()
            raise AssertionError(f"workers did not finish within {DEADLINE} s")
        if alive and time.monotonic() >= next_kill and kills < 25:
            victim = rng.choice(sorted(alive))
            alive[victim].kill()  # SIGKILL
            alive[victim].join()
            kills += 1
            next_kill = time.monotonic() + rng.uniform(0.05, 0.4)
        time.sleep(0.02)
    for p in procs.values():
        p.join(10)
    return kills


def _check(url: str, logdir: Path) -> None:
    from workbench.tags import TagStore

    acked = set()
    for w in range(N_WORKERS):
        acked |= set((logdir / f"w{w}.log").read_text().split("\n")[:-1])
    assert len(acked) == N_WORKERS * N_TAGS
    store = TagStore(url)
    hist = store.history()
    per_key = hist.groupby("action_key").size()
    assert set(per_key.index) >= acked, "an acknowledged tag was lost"
    assert per_key.max() == 1, "an event was duplicated"
    assert len(hist) == N_WORKERS * N_TAGS
    assert (hist["action"] == "add").all()
    cur = store.tags()
    assert len(cur) == N_WORKERS * N_TAGS
    assert store.counts()["n_items"].tolist() == [N_TAGS] * N_WORKERS
    assert store.integrity_check() == "ok"


@pytest.mark.slow
def test_sigkill_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    logdir = tmp_path / "logs"
    logdir.mkdir()
    kills = _run_with_kills(url, logdir, seed=1)
    assert kills >= 3
    _check(url, logdir)
    import sqlite3

    con = sqlite3.connect(tmp_path / "crash.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_postgresql(pg_url, tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    kills = _run_with_kills(pg_url, logdir, seed=2)
    assert kills >= 3
    _check(pg_url, logdir)

