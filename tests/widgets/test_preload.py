"""``workbench.widgets.preload`` does the slow imports a preheated dashboard kernel needs."""

from __future__ import annotations

import subprocess
import sys


def test_preload_imports_the_heavy_modules_and_every_widget():
    code = (
        "import sys, workbench as wb\n"
        "assert 'plotly.basewidget' not in sys.modules\n"
        "wb.widgets.preload()\n"
        "mods = ['plotly.basewidget', 'scipy.stats', 'statsmodels.stats.proportion', "
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
