"""The curated recipes of ``notebooks/explore/``: thin, public API only, real outputs, never served.

nbval runs them (``make test`` collects ``notebooks/``) and compares the cells tagged
``nbval-check-output``; these tests check what nbval does not: their structure, that they
name the dashboard doing the same without code, and that ``workbench serve`` never copies
them.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

import workbench
import workbench.widgets
from workbench import serve

REPO = Path(__file__).resolve().parents[2]
EXPLORE = REPO / "notebooks" / "explore"

# recipe -> the served dashboard that does the same without code
RECIPES = {
    "01_where_the_model_fails.ipynb": "01_error_explorer.ipynb",
    "02_suspect_labels_and_annotators.ipynb": "02_disagreements.ipynb",
    "03_relabel_round_trip.ipynb": "03_relabel_queue.ipynb",
    "04_detection_errors.ipynb": "01_error_explorer.ipynb",
    "05_data_issues_and_the_map.ipynb": "05_see_the_data.ipynb",
}
DASHBOARD_NAMES = {
    "01_error_explorer.ipynb": "Dashboard 01, the Error Explorer",
    "02_disagreements.ipynb": "Dashboard 02, the Disagreement Explorer",
    "03_relabel_queue.ipynb": "Dashboard 03, the Relabel Queue",
    "05_see_the_data.ipynb": "Dashboard 05, See the Data",
}


def _load(name: str) -> dict:
    return json.loads((EXPLORE / name).read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code(nb: dict) -> list[str]:
    return [_source(c) for c in nb["cells"] if c["cell_type"] == "code"]


def _is_widget_cell(cell: dict) -> bool:
    return cell.get("metadata", {}).get("keep_output") is False


def test_every_recipe_is_there_and_nothing_else():
    assert sorted(p.name for p in EXPLORE.glob("*.ipynb")) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_tells_its_question_and_names_its_dashboard(name):
    nb = _load(name)
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown"
    intro = _source(first)
    assert re.match(r"# \S", intro), "the recipe starts with a title"
    assert "**The question.**" in intro
    dashboard = RECIPES[name]
    assert dashboard in serve.ROLE_NOTEBOOKS["curator"]  # a dashboard that is really served
    assert "**Without code.**" in intro
    assert f"{DASHBOARD_NAMES[dashboard]}" in intro
    assert "does this without code" in intro
    assert f"notebooks/{dashboard}" in intro


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_is_thin_and_uses_the_public_api_only(name):
    code = "\n".join(_code(_load(name)))
    assert not re.search(r"^\s*(async\s+)?(def|class)\s", code, re.M), "no def/class in a recipe"
    assert "lambda" not in code
    assert "import workbench as wb" in code
    assert not re.search(r"^\s*import\s+workbench\.", code, re.M)
    # `from workbench.<module> import ...`: a public module, names from its __all__ only
    for module, names in re.findall(r"^\s*from\s+workbench\.(\S+)\s+import\s+(.+)$", code, re.M):
        assert not any(part.startswith("_") for part in module.split(".")), module
        public = set(importlib.import_module(f"workbench.{module}").__all__)
        assert {n.strip() for n in names.split(",")} <= public, (module, names)
    for names in re.findall(r"^\s*from\s+workbench\s+import\s+(.+)$", code, re.M):
        assert {n.strip() for n in names.split(",")} <= set(workbench.__all__), names
    assert not re.search(r"\bwb(\.\w+)*\._", code), "no private names"
    widget_names = set(re.findall(r"\bwb\.widgets\.(\w+)", code))
    assert widget_names, "each recipe shows a widget beside the functions"
    assert widget_names <= set(workbench.widgets.__all__), widget_names
    names = set(re.findall(r"\bwb\.(\w+)", code)) - {"widgets"}
    assert names <= set(workbench.__all__), names - set(workbench.__all__)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_explains_between_code_cells(name):
    kinds = [c["cell_type"] for c in _load(name)["cells"]]
    runs = "".join("c" if k == "code" else "m" for k in kinds)
    assert "cccc" not in runs, "markdown explains the output at least every third code cell"
    assert kinds.count("markdown") >= 6


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_keeps_its_real_outputs(name):
    nb = _load(name)
    assert nb["metadata"].get("keep_output") is True  # nbstripout keeps them
    assert "widgets" not in nb["metadata"]  # no saved widget state (megabytes, no view)
    checked = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        # nbval refuses stored outputs of a cell without an execution count
        assert cell.get("execution_count") is not None, _source(cell)[:60]
        assert not any(o.get("output_type") == "error" for o in outputs), _source(cell)[:60]
        if _is_widget_cell(cell):
            assert outputs == [], "a widget view is not stored: it shows when run"
        else:
            assert outputs, f"no stored output: {_source(cell)[:60]!r}"
        checked += "nbval-check-output" in cell.get("metadata", {}).get("tags", [])
    assert checked >= 3, "nbval compares the recipe's key numbers"
    assert any(_is_widget_cell(c) for c in nb["cells"])
    text = (EXPLORE / name).read_text(encoding="utf-8")
    assert str(REPO) not in text and "/tmp/" not in text, "no machine paths in the outputs"


def test_the_relabel_recipe_writes_only_to_a_temporary_copy():
    nb = _load("03_relabel_round_trip.ipynb")
    code = _code(nb)
    setup = code[0]
    assert "tempfile.mkdtemp(" in setup and "shutil.copytree(sample, root" in setup
    assert 'os.environ.pop("WORKBENCH_DB_URL", None)' in setup  # never a team database
    assert "wb.open_project(root)" in setup and "wb.TagStore.for_project(project)" in setup
    joined = "\n".join(code)
    assert "wb.open_project()" not in joined
    assert "data/sample" not in joined and '"sample"' not in joined
    for call in ("store.add(", "wb.export_relabel_queue(", "wb.import_labels(",
                 "queue.mark(", "release_labels("):
        assert call in joined, call
    last = [c for c in nb["cells"] if c["cell_type"] == "code"][-1]
    assert "shutil.rmtree(work)" in _source(last)
    assert "nbval-check-output" in last["metadata"].get("tags", [])
    out = "".join(_source({"source": o.get("text", "")}) for o in last["outputs"])
    assert out.strip() == "sample unchanged: True"


@pytest.mark.parametrize("role", sorted(serve.ROLE_NOTEBOOKS))
def test_workbench_serve_never_serves_a_recipe(role, tmp_path):
    assert not set(serve.ROLE_NOTEBOOKS[role]) & set(RECIPES)
    out = serve.prepare_serve_dir(role, REPO / "notebooks", dest=tmp_path / role)
    served = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert served == sorted(serve.ROLE_NOTEBOOKS[role])
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not any(Path(recipe).stem in text for recipe in RECIPES)


@pytest.mark.parametrize("role", sorted(serve.ROLE_NOTEBOOKS))
def test_the_explore_folder_is_not_a_dashboards_folder(role, tmp_path):
    # `workbench serve --notebooks notebooks/explore` refuses: none of the vetted names is there
    with pytest.raises(FileNotFoundError, match="Pass --notebooks DIR"):
        serve.prepare_serve_dir(role, EXPLORE, dest=tmp_path / role)


def test_nbstripout_hook_leaves_the_recipes_outputs():
    config = (REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    hook = config[config.index("id: nbstripout"):]
    assert re.search(r"exclude:\s*\^notebooks/explore/", hook)
