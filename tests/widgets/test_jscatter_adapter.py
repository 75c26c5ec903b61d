"""Contract test of ``workbench/widgets/_jscatter_adapter.py``: jupyter-scatter's internals.

Written against jupyter-scatter 1. On another major ``test_written_for_the_installed_jscatter``
fails on purpose: check the module docstring's contract against the new jupyter-scatter
(its widget's synced traits, the view's ``render``, ``pointsHandler`` and points
deserialiser), then update ``JSCATTER_MAJOR``. Until then the map keeps all its points
from the start (tested here too).
A served page drawing deferred points read by the faster deserialiser, and that
deserialiser beside jupyter-scatter's own, are tested in Chromium by
``tests/browser/test_embedding_map_browser.py``.
"""

from __future__ import annotations

from pathlib import Path

import jscatter
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.selection import Selection
from workbench.widgets import _jscatter_adapter as adapter
from workbench.widgets.embedding_map import EmbeddingMap

N = 400


@pytest.fixture
def small_threshold(monkeypatch):
    """Defer from a few hundred points (the real threshold needs 100,000)."""
    monkeypatch.setattr(adapter, "DEFER_MIN_POINTS", 100)


def _map(n: int = N, selection: Selection | None = None, **kwargs) -> EmbeddingMap:
    ids = [f"it-{i:05d}" for i in range(n)]
    rng = np.random.default_rng(0)
    project = wb.Project.from_frames(
        items=pd.DataFrame({"item_id": ids, "label": rng.choice(["a", "b"], n),
                            "site": rng.choice(["x", "y", "z"], n)}), classes=["a", "b"])
    xy = rng.normal(size=(n, 2))
    return EmbeddingMap(project, selection, layout=pd.DataFrame(
        {"item_id": ids, "x": xy[:, 0], "y": xy[:, 1]}), **kwargs)


def _bundle_text() -> str:
    """The installed jupyter-scatter's ``bundle.js``."""
    return Path(jscatter.__file__).with_name("bundle.js").read_text(encoding="utf-8")


def _view_rendered(widget) -> None:
    """What the browser sends at the end of the view's ``render``."""
    widget.set_state({"dom_element_id": "abc123"})


def test_written_for_the_installed_jscatter():
    assert adapter.installed_major() == adapter.JSCATTER_MAJOR == 1, (
        "workbench/widgets/_jscatter_adapter.py was written against jupyter-scatter "
        f"{adapter.JSCATTER_MAJOR}: check its docstring's contract against the installed "
        "one, then update JSCATTER_MAJOR (until then large maps are drawn twice).")
    assert adapter.uses_private_api()


def test_the_view_reports_its_render_and_redraws_new_points():
    text = _bundle_text()
    for marker in adapter.BUNDLE_MARKERS:
        assert marker in text, f"jupyter-scatter's bundle.js no longer has {marker!r}"
    for old, _new in adapter.REPLACEMENTS:
        assert text.count(old) == 1, f"{old!r} is not unique in jupyter-scatter's bundle.js"
    traits = jscatter.widget.JupyterScatter.class_traits(sync=True)
    for name in ("points", "selection", "dom_element_id"):
        assert name in traits, f"jupyter-scatter's widget has no synced trait {name}"
    assert "_esm" in _map(n=50).scatter.widget.traits(sync=True)  # anywidget's module


def test_the_faster_module_is_jupyter_scatters_with_its_texts_replaced():
    text = _bundle_text()
    faster = adapter.faster_bundle()
    for old, new in adapter.REPLACEMENTS:
        head, tail = text.split(old)
        text = head + new + tail
        assert faster.count(new) == 1
    assert faster == text
    assert adapter.DESERIALIZER not in faster
    assert "selectHandler(event) {\n    this.workbenchSendLasso(event.points);" in faster


def test_a_large_map_gets_the_faster_module_and_a_small_one_jscatters(small_threshold):
    text = _bundle_text()
    assert _map().scatter.widget._esm == adapter.faster_bundle()
    assert _map(n=50).scatter.widget._esm == text


def test_a_large_map_sends_one_point_then_all_once_a_view_rendered(small_threshold):
    emap = _map()
    widget = emap.scatter.widget
    assert adapter.is_deferred(emap.scatter)
    assert len(widget.points) == 1
    _view_rendered(widget)
    assert not adapter.is_deferred(emap.scatter)
    assert widget.points.shape == (N, 4)
    # the same points jupyter-scatter gives a widget it does not defer
    np.testing.assert_array_equal(widget.points, emap.scatter.get_point_list())
    _view_rendered(widget)  # a second view changes nothing
    assert widget.points.shape == (N, 4)


def test_a_selection_waits_for_the_points_and_a_lasso_still_publishes(small_threshold):
    sel = Selection()
    emap = _map(selection=sel)
    sel.select(("it-00003", "it-00010"), description="elsewhere")
    widget = emap.scatter.widget
    assert len(widget.selection) == 0  # held: the browser has one point yet
    assert "<b>2</b> selected" in emap.info.value
    _view_rendered(widget)
    assert widget.selection.tolist() == [3, 10]
    assert sel.ids == ("it-00003", "it-00010")  # the echo did not republish
    widget.selection = np.array([5, 7, 9], dtype=np.uint32)  # a lasso in the browser
    assert sel.ids == ("it-00005", "it-00007", "it-00009")
    assert sel.origin is emap


def test_a_selection_cleared_before_any_view_leaves_the_widget_unselected(small_threshold):
    emap = _map()
    widget = emap.scatter.widget
    widget.selection = np.array([1, 2], dtype=np.uint32)  # as a browser would write it
    assert emap.selection.ids == ("it-00001", "it-00002")
    emap.selection.clear()
    assert len(widget.selection) == 0  # the same lasso again is a change again
    widget.selection = np.array([1, 2], dtype=np.uint32)
    assert emap.selection.ids == ("it-00001", "it-00002")


def test_a_recolour_before_the_view_is_not_overwritten_by_the_held_points(small_threshold):
    emap = _map()
    emap.color_by = "meta:site"
    recoloured = emap.scatter.widget.points.copy()
    assert len(recoloured) == N  # jupyter-scatter sent every point with the new colours
    _view_rendered(emap.scatter.widget)
    np.testing.assert_array_equal(emap.scatter.widget.points, recoloured)


def test_small_maps_and_other_majors_keep_every_point(small_threshold, monkeypatch):
    assert len(_map(n=50).scatter.widget.points) == 50  # under the threshold
    monkeypatch.setattr(adapter, "installed_major", lambda: adapter.JSCATTER_MAJOR + 1)
    emap = _map()
    assert not adapter.is_deferred(emap.scatter)
    assert len(emap.scatter.widget.points) == N
    assert adapter.DESERIALIZER in emap.scatter.widget._esm  # jupyter-scatter's own module


def test_a_bundle_that_reads_otherwise_keeps_jscatters_module(small_threshold, monkeypatch):
    text = _bundle_text()
    changed = text.replace(adapter.DESERIALIZER, adapter.DESERIALIZER.replace("map(", "map (", 1))
    monkeypatch.setattr(adapter, "_bundle", lambda: changed)
    emap = _map()
    assert not adapter.is_deferred(emap.scatter)
    assert emap.scatter.widget._esm == text  # the widget's own, not the changed text


def _send(widget, content: dict) -> None:
    """A custom message from the view, as ipywidgets dispatches one arriving from a comm."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def _lasso_message(polygon: list[float], points) -> dict:
    from workbench.widgets import _lasso

    n, total, hashed = _lasso.checksum(points)
    return {"type": _lasso.MESSAGE_TYPE, "polygon": polygon, "n": n, "sum": total,
            "hash": hashed}


def test_a_lasso_outline_selects_before_its_points_arrive(small_threshold):
    from workbench.widgets import _lasso

    emap = _map()
    widget = emap.scatter.widget
    _view_rendered(widget)
    xy = widget.points[:, :2].astype(np.float32)  # as the page has them
    square = [-0.5, -0.5, 0.5, -0.5, 0.5, 0.5, -0.5, 0.5]
    inside = _lasso.points_in_lasso(xy, square)
    assert 10 < len(inside) < N
    changes = []
    emap.selection.observe(lambda change: changes.append(change["new"]), names=["ids"])
    _send(widget, _lasso_message(square, inside))
    assert emap.selection.ids == tuple(emap.ids[inside])  # before the points arrived
    assert emap.selection.origin is emap
    assert f"<b>{len(inside)}</b> selected" in emap.info.value
    assert len(widget.selection) == 0
    widget.selection = inside[::-1].astype(np.uint32)  # then the browser's points: the same
    assert len(changes) == 1
    assert f"<b>{len(inside)}</b> selected" in emap.info.value


def test_a_lasso_outline_the_kernel_disagrees_with_is_not_used(small_threshold):
    emap = _map()
    widget = emap.scatter.widget
    _view_rendered(widget)
    square = [-0.5, -0.5, 0.5, -0.5, 0.5, 0.5, -0.5, 0.5]
    merged = np.array([0, 1, 2, 3, 4])  # a merged lasso: the page's points differ
    for content in (_lasso_message(square, merged),
                    {**_lasso_message(square, merged), "polygon": "not a polygon"},
                    {"type": "tooltip", "index": 3, "properties": [], "preview": None}):
        _send(widget, content)
        assert emap.selection.ids is None
    widget.selection = merged.astype(np.uint32)  # the browser's points decide
    assert emap.selection.ids == tuple(emap.ids[merged])


def test_jscatters_tooltips_still_get_their_messages(small_threshold, monkeypatch):
    emap = _map()
    widget = emap.scatter.widget
    sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    _send(widget, {"type": jscatter.widget.EVENT_TYPES["TOOLTIP"], "index": 3,
                   "properties": ["x"], "preview": None})
    assert [m["index"] for m in sent] == [3]  # jupyter-scatter answered its tooltip
