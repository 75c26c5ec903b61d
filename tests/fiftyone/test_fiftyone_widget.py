"""FiftyOneButton without the App: construction, state, display mode (no FiftyOne needed)."""

from __future__ import annotations

import sys

import pytest


def test_button_builds_without_touching_fiftyone(tiny_project, monkeypatch):
    import workbench as wb

    before = "fiftyone" in sys.modules
    sel = wb.Selection()
    button = wb.widgets.FiftyOneButton(tiny_project, sel)
    assert button.selection is sel
    assert ("fiftyone" in sys.modules) == before  # building the widget imports nothing
    assert "wb-fiftyone" in button._dom_classes
    assert "wb-fiftyone-button" in button.button._dom_classes
    assert "wb-fiftyone-status" in button.status._dom_classes
    assert "all items" in button.status.value
    sel.select(["i01", "i02"], source="test")
    assert "2 selected item(s)" in button.status.value
    assert button.n_open == -1 and button.url == ""
    assert "FiftyOneButton(" in repr(button)


def test_button_creates_a_selection_when_none_given(tiny_project):
    import workbench as wb

    button = wb.widgets.FiftyOneButton(tiny_project)
    assert isinstance(button.selection, wb.Selection) and button.selection.ids is None
    with pytest.raises(TypeError, match="'selection' parameter of FiftyOneButton"):
        wb.widgets.FiftyOneButton(tiny_project, selection=["i01"])


def test_display_mode_is_a_link_in_voila_and_outside_notebooks(tiny_project, monkeypatch):
    import workbench as wb

    button = wb.widgets.FiftyOneButton(tiny_project)
    assert button._mode() == "link"  # plain python: no notebook
    monkeypatch.setenv("VOILA_SERVER_URL", "/")
    assert button._mode() == "link"
    assert wb.widgets.FiftyOneButton(tiny_project, display="inline")._mode() == "inline"


def test_link_is_escaped(tiny_project):
    import workbench as wb

    button = wb.widgets.FiftyOneButton(tiny_project)
    button.url = 'http://h/"><script>alert(1)</script>'
    link = button._link()
    assert "<script>" not in link and "&lt;script&gt;" in link and "&quot;" in link


def test_pull_tags_hidden_in_read_only_session(tiny_project, monkeypatch):
    import workbench as wb

    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    button = wb.widgets.FiftyOneButton(tiny_project)
    assert button.pull_tags_button.layout.display == "none"
    monkeypatch.delenv("WORKBENCH_ROLE")
    assert wb.widgets.FiftyOneButton(tiny_project).pull_tags_button.layout.display != "none"
