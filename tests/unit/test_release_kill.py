"""Kill test of label releases: SIGKILL during a release, 50 times; the last release survives.

A forked child opens a synthetic project and writes releases in a loop (each from a new batch
of curator decisions); the parent kills it with SIGKILL at a random moment, then checks that
every numbered release opens with its hash matching, that none was lost, and that the next
release cleans up what the killed one left behind. The child's disk writes are slowed a
little (a sleep after each file) so that many kills land while a release is being written.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time

import numpy as np
import pytest

import workbench as wb
from workbench import releases
from workbench.project import write_project
from workbench.releases import RELEASES_DIR, read_release
from workbench.tags import TagStore

N_KILLS = 50


def _release_forever(root, ready, released, seed):
    os.environ["WORKBENCH_USER"] = "killer"
    write = releases._write_synced

    def slow_disk(path, data):  # widen the window in which a kill lands mid-write
        write(path, data)
        time.sleep(0.02)

    releases._write_synced = slow_disk
    project = wb.open_project(root)
    store = TagStore.for_project(project)
    rng = np.random.default_rng(seed)
    ids = project.items["item_id"].to_numpy()

    def decide_some():
        pick = rng.choice(ids, size=200, replace=False)
        store.decisions.add(list(pick), list(rng.choice(project.classes, size=200)),
                            author="killer")

    decide_some()
    ready.set()  # from here on the child is releasing, and deciding between releases
    k = 0
    while True:
        project.release_labels(f"loop {seed}.{k}", author="killer", accept="decided")
        released.set()
        k += 1
        decide_some()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    mem = wb.make_project(20_000, n_annotators=0, n_runs=0, n_metadata=3, seed=3)
    return write_project(mem, tmp_path_factory.mktemp("kill") / "p", format="parquet")


def test_sigkill_during_release_always_leaves_the_previous_release_intact(root, monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "killer")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    folder = root / RELEASES_DIR
    project = wb.open_project(root)
    ctx = mp.get_context("fork")
    rnd = random.Random(0)
    latest, mid_release = 0, 0
    for n in range(N_KILLS):
        ready, released = ctx.Event(), ctx.Event()
        child = ctx.Process(target=_release_forever, args=(root, ready, released, n))
        child.start()
        assert ready.wait(30), "the child did not start"
        if n % 2:  # every other child finishes a release first, whatever the machine's load
            assert released.wait(60), "the child made no release"
        time.sleep(rnd.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        mid_release += any(folder.glob(".tmp-*"))
        numbers = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
        assert numbers == list(range(1, len(numbers) + 1))  # no gap, nothing half-numbered
        assert not numbers or numbers[-1] >= latest  # no release lost
        if numbers:
            latest = numbers[-1]
            labels, manifest = read_release(project, latest)  # hash checked
            assert manifest["number"] == latest and len(labels) == 20_000
            at = wb.open_project(root, release=latest)
            assert at.release == latest
            assert at.items["label"].tolist() == labels["label"].tolist()
    print(f"{latest} releases, {mid_release} kills mid-write")
    assert latest >= N_KILLS // 2, f"only {latest} release(s) in {N_KILLS} runs"
    assert mid_release >= 1, "no kill landed while a release was being written"
    # every release still opens, and its parent is the previous one
    for n in range(1, latest + 1):
        assert read_release(project, n)[1]["parent"] == n - 1
