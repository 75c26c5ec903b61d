"""A dashboard built before its viewer arrives, and built again if its data changed meanwhile.

``workbench serve`` keeps a preheated kernel per dashboard. A kernel that only made its
imports ahead and read the data when a viewer opened the page would have the viewer wait for
``open_project``, the results and the widgets (1 to 2 s at 1,000,000 items), and hold back
the page's JavaScript meanwhile: Voila sends the end of the page, with its scripts, only
after the last cell ran. A :class:`Dashboard` reads the data and builds the widgets in the
preheated kernel; when the viewer arrives (:meth:`Dashboard.wait_for_viewer`) it checks that
nothing it read changed (:func:`workbench.results.data_state`: the input files, the label
releases, the tag store) and builds again only if something did, so the page never shows
stale data.

Each kernel then holds its dashboard's data while it waits: about 0.7 GB for 1,000,000
items, 3 to 5 GB for 10,000,000 (``benchmarks/bench_scale.py``), for each of the six
dashboards of a curator. So by default (``WORKBENCH_BUILD_AHEAD=auto``) a project of more
than :data:`BUILD_AHEAD_MAX_ITEMS` items is read when the viewer arrives;
``workbench serve --build-ahead always|never`` chooses for every project.

A dashboard notebook (after its imports and ``wb.widgets.preload()``)::

    board = wb.widgets.Dashboard(wb.widgets.DataExplorer, "data")  # ahead of the viewer
    app = board.wait_for_viewer()  # the widget, built again if the data changed meanwhile
    project = board.project
    app
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._progress import progress_off
from .._validation import check_option
from ..serve import in_preheated_kernel

__all__ = ["Dashboard", "BUILD_AHEAD_ENV", "BUILD_AHEAD_MAX_ITEMS", "build_ahead_mode",
           "builds_ahead", "count_items"]

#: The environment variable ``workbench serve --build-ahead`` sets: ``auto``, ``always`` or
#: ``never``.
BUILD_AHEAD_ENV = "WORKBENCH_BUILD_AHEAD"
#: ``auto`` builds ahead for projects of at most this many items (see the module docstring).
BUILD_AHEAD_MAX_ITEMS = 2_000_000
BUILD_AHEAD_MODES = ("auto", "always", "never")


def build_ahead_mode() -> str:
    """``WORKBENCH_BUILD_AHEAD`` (``auto`` when unset); an unknown value is an error."""
    mode = os.environ.get(BUILD_AHEAD_ENV, "auto").strip().lower() or "auto"
    check_option(mode, BUILD_AHEAD_ENV, "Dashboard", list(BUILD_AHEAD_MODES))
    return mode


def count_items(root: str | os.PathLike) -> int | None:
    """The number of items of the project folder ``root``, read cheaply (None: no items file).

    ``items.parquet``: its footer's row count. ``items.csv``: its lines but the header (a
    quoted value holding a line break counts twice; this is a size estimate).
    """
    folder = Path(root)
    parquet, csv = folder / "items.parquet", folder / "items.csv"
    if parquet.is_file():
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(parquet).metadata.num_rows)
    if csv.is_file():
        lines, last = 0, b"\n"
        with open(csv, "rb") as fh:
            while chunk := fh.read(1 << 24):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        return max(lines + (last != b"\n") - 1, 0)
    return None


def builds_ahead(path: str | os.PathLike | None = None) -> bool:
    """Whether a :class:`Dashboard` of the project at ``path`` reads its data ahead.

    Always outside a preheated kernel (JupyterLab, nbval: nobody waits there). In a preheated
    kernel, per :func:`build_ahead_mode`: ``auto`` up to :data:`BUILD_AHEAD_MAX_ITEMS` items.
    """
    if not in_preheated_kernel():
        return True
    mode = build_ahead_mode()
    if mode != "auto":
        return mode == "always"
    from ..project import _default_path

    n = count_items(path if path is not None else _default_path())
    return n is not None and n <= BUILD_AHEAD_MAX_ITEMS


def _close_tree(widget: Any) -> None:
    """Close ``widget`` and the widgets it shows (their models leave the kernel and the page)."""
    for child in getattr(widget, "children", ()) or ():
        _close_tree(child)
    widget.close()


class Dashboard:
    """Reads a project and builds a dashboard's widget, ahead of the viewer where it can.

    Parameters
    ----------
    view : callable
        Builds the dashboard's widget from the project: ``view(project)``, a widget class
        such as :class:`~workbench.widgets.DataExplorer`.
    results : str or None, default=None
        The dashboard's key of :data:`workbench.results.DASHBOARDS`, read or computed first
        (:func:`workbench.results.warm`); None: none.
    path : path-like or None, default=None
        The project folder (None: ``$WORKBENCH_PROJECT``, else the sample project).

    Attributes
    ----------
    project : Project or None
        The project shown (None until built).
    report : DataFrame or None
        What :func:`workbench.results.warm` returned.
    view : widget or None
        The dashboard's widget (None until built).
    built : int
        How many times it was built (twice: the data changed before the viewer came).
    """

    def __init__(self, view: Callable[[Any], Any], results: str | None = None, *,
                 path: str | os.PathLike | None = None) -> None:
        self._make_view, self._results, self._path = view, results, path
        self.project = self.report = self.view = None
        self.built = 0
        self._state: dict | None = None
        if not in_preheated_kernel():
            self._build()  # nobody waits here (JupyterLab, nbval): an error is raised now
        elif builds_ahead(path):
            try:
                # nobody watches a bar before the viewer: its closed widget would stay in the
                # page as "Error displaying widget: model not found"
                with progress_off():
                    self._build()
            except Exception:  # noqa: BLE001 - raised again, shown, when the viewer arrives
                self.view = None

    def wait_for_viewer(self) -> Any:
        """Wait for the viewer (:func:`workbench.serve.wait_for_viewer`); the current widget.

        Builds the dashboard if it was not built ahead, or again if anything it read changed
        since (:func:`workbench.results.data_state`; the stale widget is closed).

        Returns
        -------
        widget
            :attr:`view`, to display.
        """
        from ..results import data_state
        from ..serve import wait_for_viewer

        wait_for_viewer()
        if (self.view is None or self._state is None
                or data_state(self.project) != self._state):
            self._build()
        return self.view

    def _build(self) -> None:
        from ..project import open_project
        from ..results import _forget, data_state, warm

        old_view, old_project = self.view, self.project
        project = open_project(self._path)
        # read before the results and widgets are: a write in between shows as a change
        state = data_state(project, opened=True)
        report = warm(project, self._results) if self._results is not None else None
        view = self._make_view(project)
        self.project, self.report, self.view, self._state = project, report, view, state
        self.built += 1
        if old_view is not None:
            _close_tree(old_view)
        if old_project is not None:
            _forget(old_project)
