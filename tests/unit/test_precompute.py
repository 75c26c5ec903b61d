"""``workbench precompute``: fills the result cache, says what it computed or reused."""

from __future__ import annotations

import re

import pytest

from workbench import serve
from workbench._cache import cache_entries
from workbench.cli import main
from workbench.project import Project, validate_project
from workbench.project import write_project as write_tables
from workbench.synthetic import make_project


@pytest.fixture
def project_dir(tmp_path):
    p = make_project(400, n_classes=3, n_annotators=4, labels_per_item=3, n_metadata=2,
                     n_runs=2, seed=3)
    return write_tables(Project.from_frames(items=p.items, annotations=p.annotations,
                                            predictions=p.predictions, classes=p.classes),
                        tmp_path / "project")


def _lines(text):
    return [ln for ln in text.splitlines()
            if re.match(r"^\S.*\s(computed|reused|failed)\s+[\d.]+ s", ln)]


def test_precompute_computes_then_reuses(project_dir, capsys):
    assert main(["precompute", str(project_dir)]) == 0
    out = capsys.readouterr().out
    first = _lines(out)
    assert first and all(" computed " in ln for ln in first), out
    names = [ln.split("  ")[0].strip() for ln in first]
    assert "errors run_0" in names and "errors run_1" in names
    assert "consensus dawid_skene" in names and "label_issues run_0" in names
    assert re.search(r"\d+ computed, 0 reused, 0 failed in [\d.]+ s", out)
    assert len(cache_entries(project_dir)) >= len(first)
    assert main(["precompute", str(project_dir)]) == 0
    again = _lines(capsys.readouterr().out)
    assert [ln.split("  ")[0].strip() for ln in again] == names
    assert all(" reused " in ln for ln in again), again


def test_precompute_runs_and_only(project_dir, capsys):
    assert main(["precompute", str(project_dir), "--runs", "run_1", "--only", "errors",
                 "slice_metrics"]) == 0
    names = [ln.split("  ")[0].strip() for ln in _lines(capsys.readouterr().out)]
    assert names[0] == "errors run_1"
    assert all(n.startswith(("errors run_1", "slice_metrics run_1")) for n in names), names
    assert main(["precompute", str(project_dir), "--clear", "--only", "errors"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"cleared \d+ cached file", out) and " computed " in out


def test_precompute_errors(project_dir, tmp_path, capsys):
    assert main(["precompute", str(project_dir), "--runs", "nope"]) == 2
    assert "unknown run(s) ['nope']" in capsys.readouterr().err
    assert main(["precompute", str(project_dir), "--only", "everything"]) == 2
    assert "unknown result(s) ['everything']" in capsys.readouterr().err
    missing = tmp_path / "missing"
    assert main(["precompute", str(missing)]) == 1
    err = capsys.readouterr().err
    expected = [f"error: {p}" for p in validate_project(missing) if p.severity == "error"]
    assert expected and all(line in err for line in expected)
    assert "nothing computed" in err
    # a data error: the same message as `workbench validate`
    ann = project_dir / "annotations.parquet"
    import pandas as pd

    frame = pd.read_parquet(ann)
    frame.loc[0, "label"] = "not-a-class"
    frame.to_parquet(ann)
    assert main(["precompute", str(project_dir)]) == 1
    err = capsys.readouterr().err
    expected = [f"error: {p}" for p in validate_project(project_dir) if p.severity == "error"]
    assert expected and all(line in err for line in expected)
    assert "not-a-class" in err


def test_served_warm_cell_has_no_timeout_and_progressive_rendering():
    timeout_of = serve.voila_config(timeout=30).VoilaExecutor.timeout_func
    assert timeout_of({"source": 'report = warm(project, "errors")'}) is None
    assert timeout_of({"source": "app = wb.widgets.ErrorExplorer(project)"}) == 30
    argv = serve.voila_argv("x", port=1, ip="127.0.0.1", pool_size=0, progressive=True)
    assert "--VoilaConfiguration.progressive_rendering=True" in argv
    assert "--VoilaConfiguration.progressive_rendering=True" not in serve.voila_argv(
        "x", port=1, ip="127.0.0.1", pool_size=0)
    with pytest.raises(ValueError, match="progressive rendering needs pool_size=0"):
        serve.voila_argv("x", port=1, ip="127.0.0.1", pool_size=1, progressive=True)
