"""``workbench.widgets.preload`` does the slow imports a preheated dashboard kernel needs."""

from __future__ import annotations

import subprocess
import sys


def test_preload_imports_the_heavy_modules_and_every_widget():
    code = (
        "import sys, workbench as wb\n"
        "assert 'plotly.basewidget' not in sys.modules\n"
        "wb.widgets.preload()\n"
        "mods = ['plotly.basewidget', 'scipy.stats', "
        "'cleanlab.filter', 'sqlalchemy', 'workbench.widgets.error_explorer', "
        "'workbench.widgets.disagreement_explorer', 'workbench.widgets.relabel_view', "
        "'workbench.widgets.overview']\n"
        "print([m for m in mods if m not in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_dashboards_preload_before_waiting_for_a_viewer():
    import json
    from pathlib import Path

    for path in sorted((Path(__file__).parents[2] / "notebooks").glob("0*.ipynb")):
        sources = [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                   for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        text = "\n".join(sources)
        assert "wb.widgets.preload()" in text and "wait_for_viewer()" in text, path.name
        assert text.index("wb.widgets.preload()") < text.index("wait_for_viewer()"), path.name
        assert "def " not in text and "class " not in text, path.name  # thin notebooks


def test_served_dashboards_load_plotly_once_from_the_server(tmp_path):
    from workbench.serve import _plotly_bundle

    bundle = _plotly_bundle(tmp_path / "static")
    assert bundle is not None and bundle.name.startswith("plotly-widget-")
    assert bundle.stat().st_size > 1_000_000  # plotly's whole widget bundle
    code = (
        "import os, workbench as wb\n"
        f"os.environ['WORKBENCH_PLOTLY_ESM'] = '/voila/static/{bundle.name}'\n"
        "wb.widgets.preload()\n"
        "import plotly.graph_objects as go\n"
        "from workbench.widgets._plotly_adapter import figure_widget\n"
        "fig = figure_widget()\n"
        f"print(len(fig._esm), '{bundle.name}' in fig._esm, len(go.FigureWidget()._esm))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    size, named, plain = out.stdout.split()
    assert int(size) < 500 and named == "True"
    assert int(plain) > 1_000_000  # plotly's own class is not patched process-wide


def test_without_a_server_figures_keep_plotlys_own_bundle():
    code = ("import workbench as wb; wb.widgets.preload(); "
            "from workbench.widgets._plotly_adapter import figure_widget; "
            "print(len(figure_widget()._esm))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={k: v for k, v in __import__("os").environ.items()
                                           if k != "WORKBENCH_PLOTLY_ESM"})
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 1_000_000
