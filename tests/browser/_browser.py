"""Constants and helpers shared by the browser tests and their conftest."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.serve import ROLE_NOTEBOOKS

REPO = Path(__file__).resolve().parents[2]
ERROR_CELL = "There was an error when executing cell"
XSS = '<img src=x onerror="window.__xss=1;alert(1)">'


def is_local(url: str) -> bool:
    """A request that stays on this machine (the test servers listen on 127.0.0.1)."""
    return url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:",
                           "blob:http://127.0.0.1:", "about:"))


def curator_notebooks_present() -> bool:
    """Whether the curator dashboards are all in the repository's notebooks/."""
    return all((REPO / "notebooks" / nb).is_file() for nb in ROLE_NOTEBOOKS["curator"])


def write_notebooks(folder: Path, sources: dict[str, str]) -> Path:
    """``folder`` with one single-cell notebook per ``{file name: cell source}``; returned."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c0",
                         "metadata": {}, "outputs": [], "source": source}],
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                          "language": "python"}},
              "nbformat": 4, "nbformat_minor": 5}
        (folder / name).write_text(json.dumps(nb))
    return folder
