"""``pip install workbench`` alone (no extras) computes everything and builds the widgets.

A fresh virtualenv gets the package without extras, at the versions of
``requirements/lock.txt`` (``make upgrade-check`` sets ``WORKBENCH_UPGRADE_CHECK=1``: then
the newest versions allowed). A script run there opens the sample project, runs the pure
functions and builds a widget, checks that FiftyOne and Voila are not installed (nor
imported), and that a FiftyOne feature says which extra to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import importlib.util
    import json
    import sys

    import workbench as wb

    project_dir = sys.argv[1]
    assert wb.__file__.startswith(sys.prefix), wb.__file__  # the installed copy
    project = wb.open_project(project_dir)
    errors = project.errors()
    table = wb.confusion_table(errors)
    metrics = wb.slice_metrics(errors, ["scanner", "vendor"])
    slices = wb.discover_slices(errors)
    agreement = wb.agreement_summary(project.annotations)
    issues = wb.label_issues(project)

    explorer = wb.widgets.ErrorExplorer(project)
    matrix = wb.widgets.ConfusionMatrix(errors)

    absent = {m: importlib.util.find_spec(m) is None
              for m in ("fiftyone", "voila", "pymongo", "statsmodels")}
    imported = sorted({m.split(".")[0] for m in sys.modules}
                      & {"fiftyone", "voila", "pymongo", "statsmodels", "jupyter_server"})
    try:
        project.to_fiftyone()
    except wb.MissingDependencyError as exc:
        fiftyone_error = str(exc)
    else:
        fiftyone_error = None
    print(json.dumps({
        "n_items": len(errors), "table_total": int(table.to_numpy().sum()),
        "metric_rows": len(metrics), "top_slice": slices["slice"].iloc[0],
        "agreement_keys": sorted(agreement), "n_issue_rows": len(issues),
        "explorer": type(explorer).__name__, "matrix": type(matrix).__name__,
        "absent": absent, "imported": imported, "fiftyone_error": fiftyone_error,
    }))
""")


def _pip_install(python: Path, *args: str) -> None:
    out = subprocess.run([str(python), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", "--progress-bar", "off", *args],
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, f"pip install {' '.join(args)} failed:\n{out.stderr[-4000:]}"


def test_the_core_alone_computes_and_shows_widgets(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    if os.environ.get("WORKBENCH_UPGRADE_CHECK"):
        _pip_install(python, "--upgrade", str(REPO))
    else:
        _pip_install(python, "-c", str(LOCK), str(REPO))

    # a copy of the sample: the widgets keep their tag store in <project>/.workbench/
    project = tmp_path / "sample"
    shutil.copytree(REPO / "data" / "sample", project,
                    ignore=shutil.ignore_patterns(".workbench", "exports", "imports"))
    script = tmp_path / "core_only.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    out = subprocess.run([str(python), str(script), str(project)], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    import json

    from workbench.sample import DEGRADED_SCANNER

    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["n_items"] == 1797 and got["table_total"] == 1797
    assert got["metric_rows"] > 0 and got["top_slice"] == f"scanner={DEGRADED_SCANNER}"
    assert "fleiss_kappa" in got["agreement_keys"] and got["n_issue_rows"] > 0
    assert got["explorer"] == "ErrorExplorer" and got["matrix"] == "ConfusionMatrix"
    assert got["absent"] == {"fiftyone": True, "voila": True, "pymongo": True,
                             "statsmodels": True}
    assert got["imported"] == []
    assert got["fiftyone_error"] is not None, "to_fiftyone() raised no MissingDependencyError"
    assert "workbench[fiftyone]" in got["fiftyone_error"]
