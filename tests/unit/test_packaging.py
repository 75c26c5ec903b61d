"""The repository's set-up files agree with each other and with the README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def _pyproject_requirements() -> set[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in ("test", "bench", "postgres"):
        reqs += meta["optional-dependencies"][extra]
    return {_norm(r) for r in reqs}


def _environment_requirements() -> set[str]:
    text = (REPO / "environment.yml").read_text()
    block = text.split("- pip:", 1)[1]
    reqs = [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]
    return {_norm(r) for r in reqs if r != "-e ."}


def test_environment_yml_mirrors_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_environment_yml_pins_the_python_of_pyproject():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.11"
    assert "python>=3.11" in (REPO / "environment.yml").read_text()


def test_design_card_dependencies_are_declared():
    names = {re.split(r"[<>=!\[; ]", r, maxsplit=1)[0] for r in _pyproject_requirements()}
    for pkg in ("jupyterlab", "ipywidgets", "anywidget", "voila", "jupyter-server", "pandas",
                "pyarrow", "plotly", "scikit-learn", "fiftyone", "sqlalchemy", "nbval", "pytest",
                "cleanlab", "statsmodels"):
        assert pkg in names, pkg


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.M)
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^serve:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_layout_of_the_design_card():
    for path in ("notebooks", "workbench", "workbench/widgets", "data/sample", "environment.yml",
                 "tests", "README.md", "pyproject.toml", "Makefile", "benchmarks", ".ci/run"):
        assert (REPO / path).exists(), path
