"""No private attribute of plotly, jupyter-scatter, anywidget, Voila, ipywidgets or FiftyOne
outside its adapter module.

Where a library has no public API for something workbench needs, the private use lives in one
adapter module per library, with a contract test naming the version it was written against
and a public fallback at run time:

- plotly: ``workbench/widgets/_plotly_adapter.py`` (tests/widgets/test_plotly_adapter.py)
- jupyter-scatter: ``workbench/widgets/_jscatter_adapter.py``
  (tests/widgets/test_jscatter_adapter.py)
- anywidget's module source (``_esm``) of another library's widget: those two adapters
- FiftyOne: ``workbench/_fiftyone_adapter.py``
- Voila: ``workbench/_voila_adapter.py``
- cleanlab, ipywidgets: none (only their public APIs are used; ``workbench/_cleanlab_adapter.py``
  calls the public ``Datalab``)

This test greps every module of the package for the private names those libraries are known
to tempt with, and fails naming the file, line and library of each use elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "workbench"

#: library -> (the modules allowed to use its internals, or None; patterns)
PRIVATE = {
    "plotly": ("widgets/_plotly_adapter.py", [
        r"\._config\b",             # FigureWidget's synced config trait
        r"\b_widget_data\b",        # FigureWidget's synced initial data
        r"\b_widget_layout\b",      # ... and layout
        r"\b_layout_obj\b",         # the figure's layout object
        r"\b_props\b",              # ... and its raw property dict
        r"\bwidgetbundle\b",        # plotly's bundle file inside its package
        r"\._data\b(?!\w)",         # BaseFigure's raw trace dicts
        r"\bplotly\.basewidget\b",  # plotly's private widget module
    ]),
    "jupyter-scatter": ("widgets/_jscatter_adapter.py", [
        r"\bdom_element_id\b",      # the view's render report (a synced trait)
        r"\bbundle\.js\b",          # jupyter-scatter's module inside its package
        r"\bNumpy2D\b",             # its points deserialiser
    ]),
    "anywidget": (("widgets/_plotly_adapter.py", "widgets/_jscatter_adapter.py"), [
        r"\._esm\b",                # another library's widget's module source, patched
    ]),
    "ipywidgets": (None, [
        r"\bwidget_string\b",        # where the unexported HTMLStyle lives
        r"\bipywidgets\.widgets\.",  # any submodule import (only the top level is public)
        r"\bHTMLStyle\s*\(",         # building the unexported style class
    ]),
    "Voila": ("_voila_adapter.py", [
        r"\bRequestInfoSocketHandler\b",
        r"\bvoila\.request_info_handler\b",
    ]),
    "cleanlab": (None, [
        r"\bcleanlab\.datalab\.internal\b",  # Datalab's issue managers: use Datalab
    ]),
    "FiftyOne": ("_fiftyone_adapter.py", [
        r"\b_sample_collection\b",  # the raw MongoDB collection of a dataset
        r"[\"']_cls[\"']",          # raw document layout of embedded labels
        r"\b_rand\b",               # raw sample field
        r"\b_dataset_id\b",         # raw sample field
        r"\b_media_type\b",         # raw sample field
    ]),
}


def _modules(adapter: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return () if adapter is None else (adapter,) if isinstance(adapter, str) else adapter


def _uses() -> list[tuple[str, str, int, str]]:
    """``(library, file, line number, line)`` of every private use outside its adapter."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for library, (adapter, patterns) in PRIVATE.items():
            if rel in _modules(adapter):
                continue
            for pattern in patterns:
                rx = re.compile(pattern)
                found += [(library, rel, n, line.strip()) for n, line in enumerate(lines, 1)
                          if rx.search(line)]
    return found


def test_private_library_internals_only_in_their_adapter_module():
    offenders = sorted(set(_uses()))
    message = "\n".join(
        f"  workbench/{rel}:{n}: {library} internals ({line[:90]}); move this into "
        + (" or ".join(f"workbench/{m}" for m in _modules(PRIVATE[library][0]))
           if PRIVATE[library][0] else
           f"a public {library} API (workbench has no {library} adapter)")
        for library, rel, n, line in offenders)
    assert not offenders, f"private library internals outside their adapter:\n{message}"


@pytest.mark.parametrize("library", sorted(lib for lib, (adapter, _) in PRIVATE.items()
                                            if adapter is not None))
def test_the_adapter_modules_exist(library):
    for adapter in _modules(PRIVATE[library][0]):
        assert (PACKAGE / adapter).is_file(), f"workbench/{adapter} is missing"


def test_the_grep_finds_what_it_looks_for(tmp_path, monkeypatch):
    """The patterns catch the uses this test exists for (so it cannot pass vacuously)."""
    fake = tmp_path / "workbench"
    (fake / "widgets").mkdir(parents=True)
    (fake / "widgets" / "confusion.py").write_text(
        "fig._config = {}\nfig._widget_layout = deepcopy(fig._layout_obj._props)\n"
        "go.FigureWidget._esm = src\n"
        "from ipywidgets.widgets.widget_string import HTMLStyle\n"
        "emap.scatter.widget.observe(rendered, names=['dom_element_id'])\n")
    (fake / "fiftyone_bridge.py").write_text(
        "coll = ds._sample_collection\ndoc = {'_cls': 'Classification', '_rand': 1.0}\n")
    (fake / "serve.py").write_text("from voila.request_info_handler import "
                                   "RequestInfoSocketHandler\n")
    (fake / "widgets" / "_plotly_adapter.py").write_text("fig._config = {}\n")
    (fake / "widgets" / "_picks.py").write_text("class Picks:\n    _esm = ESM\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    libraries = {(lib, rel) for lib, rel, _n, _line in _uses()}
    assert libraries == {("plotly", "widgets/confusion.py"),
                         ("anywidget", "widgets/confusion.py"),
                         ("jupyter-scatter", "widgets/confusion.py"),
                         ("ipywidgets", "widgets/confusion.py"),
                         ("FiftyOne", "fiftyone_bridge.py"), ("Voila", "serve.py")}
    lines = {(rel, n) for _lib, rel, n, _line in _uses()}
    assert {("widgets/confusion.py", n) for n in (1, 2, 3, 4, 5)} <= lines
