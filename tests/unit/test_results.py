"""The result cache of the dashboards (workbench.results, workbench._cache).

Cached results equal computed ones exactly (dtypes, index, categories, attrs); an entry is
invalidated when an input file, an option or (for tag-dependent results) the tag store
changes; two processes computing the same entry leave one complete file and both get the
right result; a corrupt entry is recomputed, never trusted.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench import results
from workbench._cache import cache_entries, cache_folder, cached_value, clear_cache
from workbench.agreement import DawidSkeneResult
from workbench.project import Project, open_project
from workbench.project import write_project as write_tables
from workbench.synthetic import make_project

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _write(folder, n=600, seed=0):
    p = make_project(n, n_classes=4, n_annotators=6, labels_per_item=3, n_metadata=3,
                     n_runs=2, seed=seed)
    items = p.items.copy()
    rng = np.random.default_rng(seed)
    items["vendor"] = pd.array(rng.choice(["v1", "v2"], len(items)), dtype="str")
    items["batch"] = pd.array(rng.choice(["b1", "b2", "b3"], len(items)), dtype="str")
    ann = p.annotations.merge(items[["item_id", "vendor"]], on="item_id")
    project = Project.from_frames(items=items, annotations=p.annotations,
                                  predictions=p.predictions, classes=p.classes)
    del ann
    write_tables(project, folder)
    return folder


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("results") / "project")


@pytest.fixture
def fresh_dir(tmp_path):
    return _write(tmp_path / "project", n=300, seed=1)


def _same(a, b):
    """Exact equality of two results of any kind (frames, series, dicts, DS models)."""
    if isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame)
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_categorical=True)
        assert list(a.dtypes.astype(str)) == list(b.dtypes.astype(str))
        for col in a.columns:
            if isinstance(a[col].dtype, pd.CategoricalDtype):
                assert list(a[col].cat.categories) == list(b[col].cat.categories)
                assert a[col].cat.ordered == b[col].cat.ordered
        assert a.index.equals(b.index) and a.index.dtype == b.index.dtype
        assert a.index.name == b.index.name and a.columns.name == b.columns.name
        assert _plain(a.attrs) == _plain(b.attrs)
        for col in a.columns:
            if a[col].dtype == object:
                assert [type(v) for v in a[col]] == [type(v) for v in b[col]], col
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True)
    elif isinstance(a, DawidSkeneResult):
        _same(a.posteriors, b.posteriors)
        pd.testing.assert_series_equal(a.priors, b.priors, check_exact=True)
        assert list(a.confusion) == list(b.confusion)
        for k in a.confusion:
            _same(a.confusion[k], b.confusion[k])
        assert (a.n_iter, a.log_likelihood, a.converged) == (b.n_iter, b.log_likelihood,
                                                              b.converged)
        assert type(a.n_iter) is type(b.n_iter) and type(a.converged) is type(b.converged)
    elif type(a).__name__ == "Coverage":
        _same(a.slices, b.slices)
        assert (a.items is None) == (b.items is None)
        if a.items is not None:
            _same(a.items, b.items)
        for field in ("reference_ids", "target_ids", "k", "percentile", "threshold", "note",
                      "skipped"):
            assert getattr(a, field) == getattr(b, field), field
            assert type(getattr(a, field)) is type(getattr(b, field)), field
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert type(a[k]) is type(b[k]), k
            if isinstance(a[k], list):
                assert a[k] == b[k]
            else:
                assert _plain(a[k]) == _plain(b[k]), k
    else:
        raise AssertionError(type(a))


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


CALLS = {
    "errors": lambda p: results.errors(p),
    "errors other run": lambda p: results.errors(p, p.runs[1]),
    "label_issues": lambda p: results.label_issues(p),
    "consensus majority": lambda p: results.consensus(p, "majority"),
    "consensus dawid_skene": lambda p: results.consensus(p, "dawid_skene"),
    "dawid_skene": lambda p: results.dawid_skene(p),
    "agreement_summary": lambda p: results.agreement_summary(p),
    "pairwise_agreement": lambda p: results.pairwise_agreement(p),
    "annotator_quality": lambda p: results.annotator_quality(p),
    "disagreeing_items": lambda p: results.disagreeing_items(p),
    "confused_pairs": lambda p: results.confused_pairs(p),
    "agreement_by": lambda p: results.agreement_by(p, "batch", n_boot=20),
    "agreement_table": lambda p: results.agreement_table(p, "vendor"),
    "slice_metrics": lambda p: results.slice_metrics(p, "meta_0"),
    "slice_metrics numeric": lambda p: results.slice_metrics(p, "vendor", bins=None),
    "discover_slices": lambda p: results.discover_slices(p),
    "drift": lambda p: results.drift(p, "batch"),
    "scorecard": lambda p: results.scorecard(p),
    "coverage": lambda p: results.coverage(p, {"vendor": ["v1"]}, {"vendor": ["v2"]}),
    "data_issues": lambda p: results.data_issues(p, issue_types=["exact_duplicate"]),
}


@pytest.mark.parametrize("what", list(CALLS))
def test_cached_equals_computed(project_dir, what):
    uncached = open_project(project_dir)
    uncached.input_fingerprint = None  # as if its files changed while read: never cached
    computed = CALLS[what](uncached)
    first = CALLS[what](open_project(project_dir))  # computes and stores
    again = CALLS[what](open_project(project_dir))  # a new project object: read from disk
    assert len(cache_entries(project_dir))
    _same(first, again)
    _same(computed, again)


def _frames(p):
    return {"items": p.items, "annotations": p.annotations, "predictions": p.predictions,
            "classes": p.classes}


def test_reused_from_disk_not_recomputed(project_dir, monkeypatch):
    results.errors(open_project(project_dir))

    def boom(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr("workbench.slicing.project_errors", boom)
    p = open_project(project_dir)
    info: dict = {}
    token = results._INFO.set(info)
    try:
        frame = results.errors(p)
    finally:
        results._INFO.reset(token)
    assert info["status"] == "reused" and len(frame)
    assert results.errors(p) is frame  # the same kernel: kept in memory


def _counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_any_input_file_change_invalidates(fresh_dir, monkeypatch):
    import workbench.slicing as slicing

    calls = _counting(monkeypatch, slicing, "project_errors")
    results.errors(open_project(fresh_dir))
    results.errors(open_project(fresh_dir))
    assert len(calls) == 1
    for name in ("annotations.parquet", "predictions.parquet", "items.parquet",
                 "workbench.toml"):
        path = fresh_dir / name
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched
        before = len(calls)
        results.errors(open_project(fresh_dir))
        results.errors(open_project(fresh_dir))
        assert len(calls) == before + 1, name
    (fresh_dir / "notes.csv").write_text("a,b\n1,2\n")  # a new top-level data file
    before = len(calls)
    results.errors(open_project(fresh_dir))
    assert len(calls) == before + 1


def test_any_option_change_invalidates(fresh_dir, monkeypatch):
    import workbench.slicing as slicing

    calls = _counting(monkeypatch, slicing, "slice_metrics")
    p = open_project(fresh_dir)
    results.slice_metrics(p, "meta_0")
    results.slice_metrics(open_project(fresh_dir), "meta_0")
    assert len(calls) == 1
    for kwargs in ({"by": "meta_1"}, {"by": "meta_0", "bins": None},
                   {"by": "meta_0", "run": p.runs[1]}, {"by": "meta_0", "bins": 2}):
        before = len(calls)
        results.slice_metrics(open_project(fresh_dir), **kwargs)
        results.slice_metrics(open_project(fresh_dir), **kwargs)
        assert len(calls) == before + 1, kwargs
    names = {results.errors(p, r).attrs["run"] for r in p.runs}
    assert names == set(p.runs)


def test_release_is_part_of_the_key(fresh_dir):
    p = open_project(fresh_dir)
    key = results.project_key(p)
    assert key["release"] == 0 and key["inputs"]["files"]
    p.release = 3  # what open_project(path, release=3) sets
    assert results.project_key(open_project(fresh_dir)) == key


def test_tag_store_change_invalidates_tag_dependent_results(fresh_dir, monkeypatch):
    import workbench.scorecard as sc

    calls = _counting(monkeypatch, sc, "vendor_scorecard")
    p = open_project(fresh_dir)
    store = wb.TagStore.for_project(p)
    first = results.scorecard(open_project(fresh_dir), store=store)
    results.scorecard(open_project(fresh_dir), store=store)
    assert len(calls) == 1
    ids = p.items["item_id"].astype(str).tolist()[:40]
    store.add(ids, "gold", author="alice")  # gold items change the scorecard
    second = results.scorecard(open_project(fresh_dir), store=store)
    assert len(calls) == 2
    assert not first.equals(second) or "gold_accuracy" not in first
    store.set_status(ids[:3], "queued", queue="relabel", author="alice")
    results.scorecard(open_project(fresh_dir), store=store)
    assert len(calls) == 3
    errors_calls = _counting(monkeypatch, sys_modules("workbench.slicing"), "project_errors")
    results.errors(open_project(fresh_dir))
    store.add(ids[:2], "relabel", author="bob")
    results.errors(open_project(fresh_dir))  # not tag-dependent: read from the cache
    assert len(errors_calls) == 1


def sys_modules(name):
    import sys

    return sys.modules[name]


def test_in_memory_project_is_not_cached(tmp_path, project_dir):
    p = open_project(project_dir)
    mem = Project.from_frames(**_frames(p), root=tmp_path)  # a folder, but not its data
    assert results.project_key(mem) is None
    results.errors(mem)
    assert not cache_folder(tmp_path).exists()


def test_corrupt_entry_is_recomputed(fresh_dir, monkeypatch):
    import workbench.agreement as agreement

    p = open_project(fresh_dir)
    good = results.dawid_skene(p)
    parts = sorted(cache_folder(fresh_dir).glob("dawid_skene-*.parquet"))
    assert len(parts) >= 3  # posteriors, priors, one confusion matrix per annotator
    calls = _counting(monkeypatch, agreement, "dawid_skene")
    parts[-1].write_bytes(b"not parquet")  # a damaged part
    _same(good, results.dawid_skene(open_project(fresh_dir)))
    assert len(calls) == 1
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) // 2])  # truncated
    _same(good, results.dawid_skene(open_project(fresh_dir)))
    assert len(calls) == 2
    _same(good, results.dawid_skene(open_project(fresh_dir)))  # the rewrite is read back
    assert len(calls) == 2


def test_parts_of_two_writes_are_not_mixed(tmp_path):
    def encode(value):
        return {"a": value[0], "b": value[1]}, {}

    def decode(parts, meta):
        return parts["a"], parts["b"]

    one = (pd.DataFrame({"x": [1]}), pd.DataFrame({"y": [1]}))
    two = (pd.DataFrame({"x": [2]}), pd.DataFrame({"y": [2]}))
    cached_value(tmp_path, "pair", {"k": 1}, lambda: one, encode=encode, decode=decode)
    saved = sorted(cache_folder(tmp_path).glob("pair-*.parquet"))
    second_part = saved[1].read_bytes()
    clear_cache(tmp_path)
    cached_value(tmp_path, "pair", {"k": 1}, lambda: two, encode=encode, decode=decode)
    saved[1].write_bytes(second_part)  # a part of the first write next to the second
    got = cached_value(tmp_path, "pair", {"k": 1}, lambda: two, encode=encode, decode=decode)
    assert got[0]["x"].tolist() == [2] and got[1]["y"].tolist() == [2]


# ---- two processes computing the same entry -------------------------------------------


def _worker(root, log, delay, timeout, out):
    def compute():
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(delay)
        return pd.DataFrame({"item_id": pd.Series([f"i{k}" for k in range(20000)],
                                                  dtype="str"),
                             "x": np.arange(20000, dtype=float)})

    frame = cached_value(root, "race", {"k": 1}, compute, lock_timeout=timeout)
    frame.to_parquet(out)


def _race(tmp_path, timeout):
    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "computed.log"
    outs = [tmp_path / f"out{k}.parquet" for k in range(2)]
    procs = [ctx.Process(target=_worker, args=(tmp_path, log, 1.5, timeout, out))
             for out in outs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    expected = pd.DataFrame({"item_id": pd.Series([f"i{k}" for k in range(20000)],
                                                  dtype="str"),
                             "x": np.arange(20000, dtype=float)})
    for out in outs:
        pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
    (entry,) = cache_folder(tmp_path).glob("race-*.parquet")  # one complete file
    pd.testing.assert_frame_equal(pd.read_parquet(entry), expected)
    assert not [f for f in cache_folder(tmp_path).iterdir() if f.name.endswith(".tmp")]
    return log.read_text().split()


def test_two_processes_second_waits_for_the_first(tmp_path):
    computed = _race(tmp_path, timeout=60)
    assert len(computed) == 1  # the second process read the first one's result


def test_two_processes_computing_at_once(tmp_path):
    computed = _race(tmp_path, timeout=0)  # no waiting: both compute, both write
    assert len(computed) in (1, 2)
    assert len(set(computed)) == len(computed)


def test_lock_of_a_killed_process_is_not_stale(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "computed.log"
    proc = ctx.Process(target=_worker, args=(tmp_path, log, 60, 60, tmp_path / "x.parquet"))
    proc.start()
    deadline = time.monotonic() + 60
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # dies holding the lock
    proc.join()
    t0 = time.monotonic()
    _worker(tmp_path, log, 0, 60, tmp_path / "y.parquet")
    assert time.monotonic() - t0 < 30
    assert len(log.read_text().split()) == 2


def test_precompute_reports_each_result(fresh_dir):
    p = open_project(fresh_dir)
    report = results.precompute(p, only=["errors", "agreement_summary", "slice_metrics"])
    assert list(report.columns) == ["result", "status", "seconds", "error"]
    assert set(report["status"]) == {"computed"}, report
    assert "errors " + p.runs[0] in set(report["result"])
    again = results.precompute(open_project(fresh_dir),
                               only=["errors", "agreement_summary", "slice_metrics"])
    assert set(again["status"]) == {"reused"}
    assert list(again["result"]) == list(report["result"])
    with pytest.raises(ValueError, match="The 'only' parameter of dashboard_steps"):
        results.precompute(p, only=["nope"])
    with pytest.raises(ValueError, match="The 'runs' parameter of dashboard_steps"):
        results.precompute(p, runs=["nope"])
    for board in results.DASHBOARDS:
        steps = results.dashboard_steps(p, board)
        assert steps and all(callable(call) for _, call in steps)


def test_current_annotations_equal_latest_and_are_cached(tmp_path):
    from workbench._validation import latest_annotations

    folder = _write(tmp_path / "p", n=200, seed=4)
    p = open_project(folder)
    assert results.current_annotations(p) is p.annotations  # no re-import: every row
    first = p.annotations.assign(annotated_at=pd.Timestamp("2026-01-01", tz="UTC"))
    redo = first.iloc[:30].assign(label=p.classes[0],
                                  annotated_at=pd.Timestamp("2026-02-01", tz="UTC"))
    again = pd.concat([redo, first], ignore_index=True)  # re-imported labels: the latest counts
    again.to_parquet(folder / "annotations.parquet")
    for _ in range(2):  # computed, then read back from the cache
        q = open_project(folder)
        got = results.current_annotations(q)
        pd.testing.assert_frame_equal(got, latest_annotations(q.annotations))
        assert results.current_annotations(q) is got
    assert len(got) == len(p.annotations)
    assert list(cache_folder(folder).glob("current_rows-*.parquet"))


def test_warnings_are_raised_again_when_the_result_is_read(tmp_path):
    p = make_project(20, n_classes=3, n_annotators=6, labels_per_item=2, n_metadata=1,
                     seed=5)
    folder = write_tables(Project.from_frames(items=p.items, annotations=p.annotations,
                                              predictions=p.predictions, classes=p.classes),
                          tmp_path / "small")
    messages = []
    for _ in range(2):  # computed, then read from the cache by a new project object
        with pytest.warns(UserWarning, match="mean_cohen_kappa is NaN") as caught:
            summary = results.agreement_summary(open_project(folder))
        messages.append([str(w.message) for w in caught])
        assert math.isnan(summary["mean_cohen_kappa"])
    assert messages[0] == messages[1]
    assert list(cache_folder(folder).glob("agreement_summary-*.parquet"))


def _with_gaps(folder):
    """A project whose errors frame excludes items: no prediction, no reference label."""
    p = make_project(200, n_classes=3, n_annotators=4, labels_per_item=2, n_metadata=2,
                     n_runs=1, seed=3)
    items = p.items.copy()
    items["score"] = np.arange(len(items), dtype=float)  # a numeric metadata column
    items["site"] = pd.Categorical(np.where(np.arange(len(items)) % 2, "north", "south"))
    no_pred = set(items["item_id"].iloc[::7])
    no_ref = list(items["item_id"].iloc[3::11])
    preds = p.predictions[~p.predictions["item_id"].isin(no_pred)]
    ann = p.annotations[~p.annotations["item_id"].isin(no_ref)]
    if "label" in items:
        items.loc[items["item_id"].isin(no_ref), "label"] = None
    write_tables(Project.from_frames(items=items, annotations=ann, predictions=preds,
                                     classes=p.classes), folder)
    return folder


def test_errors_entry_keeps_only_its_own_columns(tmp_path):
    """The stored errors frame leaves out the item columns and reads them back exactly."""
    import pyarrow.parquet as pq

    folder = _with_gaps(tmp_path / "gaps")
    uncached = open_project(folder)
    uncached.input_fingerprint = None
    computed = results.errors(uncached)
    assert computed.attrs["n_excluded"] > 0  # the row map is exercised
    results.errors(open_project(folder))
    again = results.errors(open_project(folder))
    _same(computed, again)
    stored = set()
    for part in cache_folder(folder).glob("errors-*.parquet"):
        stored |= set(pq.read_schema(part).names)
    assert "item_id" not in stored and "score" not in stored and "site" not in stored
    assert {"label", "predicted", "confidence", "row"} <= stored


def test_errors_entry_that_does_not_fit_the_items_is_refused(tmp_path):
    """A stored errors frame is only joined to items of its length (else recomputed)."""
    folder = _write(tmp_path / "project", n=120, seed=4)
    p = open_project(folder)
    parts, meta = results._errors_encode(p, results.errors(p))
    assert set(parts) == {"frame"}  # every item kept: no row map
    short = {"frame": parts["frame"].iloc[:-1]}
    with pytest.raises(ValueError, match="does not fit"):
        results._errors_decode(p, short, meta)


def test_precompute_without_keep_frees_each_result(fresh_dir):
    p = open_project(fresh_dir)
    report = results.precompute(p, only=["errors", "confused_pairs"], keep=False)
    assert set(report["status"]) == {"computed"}, report
    assert not results._MEMO.get(p)  # nothing kept in this kernel
    kept = open_project(fresh_dir)
    results.precompute(kept, only=["errors", "confused_pairs"])
    assert len(results._MEMO.get(kept)) >= 2


def test_data_issues_entry_follows_the_media_files(tmp_path):
    """Exact duplicates come from the media files, which are not input files: a changed
    image gives a new entry (never a stale duplicate)."""
    folder = tmp_path / "media"
    (folder / "img").mkdir(parents=True)
    for name, data in [("a", b"same"), ("b", b"same"), ("c", b"other")]:
        (folder / "img" / f"{name}.png").write_bytes(data)
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "y", "x"],
                          "filepath": ["img/a.png", "img/b.png", "img/c.png"]})
    write_tables(Project.from_frames(items=items, classes=["x", "y"]), folder)
    first = results.data_issues(open_project(folder), issue_types=["exact_duplicate"])
    assert set(first["item_id"]) == {"a", "b"}
    again = results.data_issues(open_project(folder), issue_types=["exact_duplicate"])
    _same(first, again)
    (folder / "img" / "b.png").write_bytes(b"changed")
    os.utime(folder / "img" / "b.png", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    after = results.data_issues(open_project(folder), issue_types=["exact_duplicate"])
    assert after.empty


def test_lists_by_name_makes_a_list_only_when_read():
    ids = pd.Series(["a", "b", "c", "d"], dtype="str")
    lists = results.ListsByName(["x", "y", "z"], [1, 3, 0], ids)
    assert "y" in lists and "w" not in lists and not lists._made  # membership: no list made
    assert lists.size("y") == 3 and not lists._made
    assert lists["y"] == ["b", "c", "d"] and all(type(v) is str for v in lists["y"])
    assert dict(lists) == {"x": ["a"], "y": ["b", "c", "d"], "z": []}
    with pytest.raises(ValueError, match="do not add up"):
        results.ListsByName(["x"], [2], ids)


def test_list_columns_round_trip_exactly(tmp_path):
    """Lists of str (empty, missing, long) come back as lists of str, in column order."""
    frame = pd.DataFrame({"a": [1, 2, 3, 4],
                          "ids": [["x", "y"], [], None, [f"i{k}" for k in range(5000)]],
                          "z": pd.array(["p", None, "r", "s"], dtype="str")},
                         index=pd.Index(["w", "x", "y", "z"], name="key"))
    frame.attrs = {"note": "kept"}
    first = cached_value(tmp_path, "lists", {"v": 1}, lambda: frame)
    again = cached_value(tmp_path, "lists", {"v": 1}, lambda: pytest.fail("recomputed"))
    _same(first, again)
    assert list(again.columns) == ["a", "ids", "z"] and again["ids"].iloc[2] is None
    assert [type(v) for v in again["ids"].iloc[3]] == [str] * 5000


def test_some_columns_are_read_alone(fresh_dir, monkeypatch):
    import pyarrow.parquet as pq

    full = results.label_issues(open_project(fresh_dir))
    read = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table",
                        lambda path, columns=None, **kw: read.append(columns) or
                        real(path, columns=columns, **kw))
    p = open_project(fresh_dir)
    part = results.label_issues(p, columns=["item_id", "is_issue"])
    _same(full[["item_id", "is_issue"]], part)
    assert read == [["item_id", "is_issue"]]  # only these columns came off the disk
    assert results.label_issues(p, columns=["item_id", "is_issue"]) is part  # kept
    whole = results.label_issues(p)
    _same(full, whole)
    _same(whole[["is_issue"]], results.label_issues(p, columns=["is_issue"]))  # from memory
    assert len(read) == 2


def test_warm_checks_the_cache_without_reading_it(fresh_dir, monkeypatch):
    from workbench import slicing

    results.precompute(open_project(fresh_dir), dashboard="errors")
    p = open_project(fresh_dir)
    calls = _counting(monkeypatch, slicing, "project_errors")
    report = results.warm(p, "errors")
    assert set(report["status"]) == {"reused"} and not calls
    assert not results._MEMO.get(p)  # nothing read: the widgets read what they show
    missing = open_project(fresh_dir)
    for part in cache_folder(fresh_dir).glob("slice_metrics-*.parquet"):
        part.unlink()
    report = results.warm(missing, "errors")
    assert "computed" in set(report["status"]), report  # a missing entry is computed
    assert len(calls) == 0  # ... from the errors entry on disk

