"""Contract test of ``workbench/widgets/_plotly_adapter.py``: plotly's internals it relies on.

Written against plotly 6. On another plotly major ``test_written_for_the_installed_plotly``
fails on purpose: check each private use listed in the adapter's docstring against the new
plotly (the tests below say which one broke), then update ``PLOTLY_MAJOR``. Until then the
widgets take the public fallback at run time (tested here too).
"""

from __future__ import annotations

import re

import plotly
import plotly.graph_objects as go
import pytest

from workbench.widgets import _plotly_adapter as adapter

SERVED = "/voila/static/plotly-widget-0123456789abcdef.js"


@pytest.fixture
def another_plotly(monkeypatch):
    """Pretend a plotly major the adapter was not written for is installed."""
    monkeypatch.setattr(plotly, "__version__", f"{adapter.PLOTLY_MAJOR + 1}.0.0")
    assert not adapter.uses_private_api()


@pytest.fixture
def served(monkeypatch):
    monkeypatch.setenv(adapter.ESM_ENV, SERVED)


def test_written_for_the_installed_plotly():
    assert adapter.installed_major() == adapter.PLOTLY_MAJOR == 6, (
        f"workbench/widgets/_plotly_adapter.py was written against plotly "
        f"{adapter.PLOTLY_MAJOR}, plotly {plotly.__version__} is installed: check every "
        "private use listed in its docstring against this plotly, then update PLOTLY_MAJOR "
        "(until then the widgets use the public fallbacks).")
    assert adapter.uses_private_api()


# ---- the private contract (plotly 6) --------------------------------------------------------


def test_figure_state_traits_are_synced_and_fed_from_the_figure():
    traits = go.FigureWidget.class_traits(sync=True)
    for name in ("_widget_layout", "_widget_data", "_config"):
        assert name in traits, f"plotly's FigureWidget has no synced trait {name}"
    fig = go.FigureWidget()
    fig.add_scatter(x=[1, 2], y=[3, 4], name="late")
    fig.update_layout(title={"text": "late title"})
    # the state a later view starts from is stale until synced (why the adapter exists)
    assert fig._widget_data == [] and "title" not in fig._widget_layout
    assert isinstance(fig._layout_obj._props, dict) and isinstance(fig._data, list)
    adapter.sync_figure_state(fig)
    assert fig._widget_layout["title"] == {"text": "late title"}
    assert [t["name"] for t in fig._widget_data] == ["late"]
    assert fig._widget_layout is not fig._layout_obj._props  # a copy, not the live dict


def test_hide_modebar_sets_the_synced_config():
    fig = adapter.hide_modebar(go.FigureWidget())
    assert fig._config["displayModeBar"] is False and fig._config["displaylogo"] is False
    assert "modebar" not in fig.to_plotly_json()["layout"]


def test_plotlys_widget_bundle_exports_what_the_served_module_imports():
    bundle = adapter.widget_bundle()
    assert bundle is not None and bundle.stat().st_size > 1_000_000
    exports = re.findall(rb"\bexport\s*\{([^}]*)\}", bundle.read_bytes())
    assert len(exports) == 1, "plotly's widget bundle no longer has one export list"
    names = {part.split(b" as ")[-1].strip().decode() for part in exports[0].split(b",")}
    assert {"FigureModel", "FigureView", "default"} <= names


def test_served_figures_import_the_bundle_once(served):
    fig = adapter.figure_widget(data=[go.Bar(y=[1, 2])])
    assert isinstance(fig, adapter.figure_widget_class()) and isinstance(fig, go.FigureWidget)
    assert len(fig._esm) < 500 and SERVED in fig._esm
    for name in ("FigureModel", "FigureView", "default"):
        assert name in fig._esm
    assert len(go.FigureWidget()._esm) > 1_000_000  # plotly's class is left alone
    assert adapter.figure_widget_class() is adapter.figure_widget_class()  # one class
    assert list(fig.data[0].y) == [1, 2]


def test_an_unknown_server_path_is_ignored(monkeypatch):
    monkeypatch.setenv(adapter.ESM_ENV, "https://cdn.example.com/plotly.js")
    assert adapter.figure_widget_class() is go.FigureWidget


def test_the_dashboards_use_the_adapter(served, sample_project):
    from workbench.widgets.agreement_matrix import AgreementMatrix
    from workbench.widgets.confusion import ConfusionMatrix

    for widget in (ConfusionMatrix(sample_project), AgreementMatrix(sample_project)):
        fig = widget.figure
        assert SERVED in fig._esm and fig._config["displayModeBar"] is False
        assert fig._widget_data == fig._data  # synced: a later view shows the figure


# ---- the public fallback on another plotly ---------------------------------------------------


def test_fallback_syncs_through_the_display_protocol(another_plotly):
    fig = go.FigureWidget()
    fig.add_scatter(x=[1], y=[2], name="late")
    adapter.sync_figure_state(fig)
    assert [t["name"] for t in fig._widget_data] == ["late"]


def test_fallback_hides_the_modebar_through_the_layout(another_plotly):
    fig = go.FigureWidget()
    before = dict(fig._config)
    adapter.hide_modebar(fig)
    assert fig._config == before
    removed = set(fig.layout.modebar.remove)
    assert {"zoom", "pan", "select", "lasso", "toimage", "autoscale"} <= removed


def test_fallback_figures_carry_plotlys_own_bundle(another_plotly, served):
    assert adapter.widget_bundle() is None
    assert adapter.figure_widget_class() is go.FigureWidget
    assert len(adapter.figure_widget()._esm) > 1_000_000


def test_fallback_widgets_still_work(another_plotly, served, sample_project):
    from workbench.widgets.confusion import ConfusionMatrix

    cm = ConfusionMatrix(sample_project)
    assert len(cm.figure._esm) > 1_000_000 and cm.figure.layout.modebar.remove
    c = cm.classes[0]
    cm.select_cell(c, c)
    assert len(cm.figure._widget_layout["shapes"]) == 1  # the highlight reached the state
