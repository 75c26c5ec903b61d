"""Progress bars for the calls that can take more than a few seconds (open, consensus, ...).

One place decides how they look and when they are quiet: :func:`progress` returns a
``tqdm.auto`` bar (a widget in notebooks and Voila, text in a terminal), silenced by the
``WORKBENCH_PROGRESS`` environment variable (``0``, ``false``, ``off`` or ``no``; the test
suite sets it) or by ``disable=True``.

>>> [step for step in progress(["read", "validate", "index"], desc="open", disable=True)]
['read', 'validate', 'index']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

__all__ = ["progress", "progress_enabled", "progress_off"]

_OFF = {"0", "false", "off", "no"}


def progress_enabled() -> bool:
    """False when ``WORKBENCH_PROGRESS`` is ``0``, ``false``, ``off`` or ``no``."""
    return os.environ.get("WORKBENCH_PROGRESS", "1").strip().lower() not in _OFF


@contextlib.contextmanager
def progress_off() -> Iterator[None]:
    """Show no progress bar inside the block (``WORKBENCH_PROGRESS=0`` while it runs)."""
    before = os.environ.get("WORKBENCH_PROGRESS")
    os.environ["WORKBENCH_PROGRESS"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("WORKBENCH_PROGRESS", None)
        else:
            os.environ["WORKBENCH_PROGRESS"] = before


def progress(iterable: Iterable | None = None, *, total: int | None = None,
             desc: str | None = None, unit: str = "it", disable: bool | None = None,
             leave: bool = False):
    """A ``tqdm.auto`` progress bar, quiet when progress is switched off.

    Parameters
    ----------
    iterable : iterable, optional
        Wrapped and iterated as ``tqdm(iterable)`` does; None for a manual bar (``update``).
    total : int, optional
        The number of steps (taken from ``len(iterable)`` when it has one).
    desc : str, optional
        The label in front of the bar (``"consensus"``).
    unit : str, default='it'
        What one step is (``"items"``, ``"steps"``).
    disable : bool, optional
        True hides the bar; None shows it unless ``WORKBENCH_PROGRESS`` switches it off.
    leave : bool, default=False
        Keep the finished bar on screen.

    Returns
    -------
    tqdm.auto.tqdm
    """
    from tqdm.auto import tqdm

    if disable is None:
        disable = not progress_enabled()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=bool(disable),
                leave=leave, dynamic_ncols=True)
