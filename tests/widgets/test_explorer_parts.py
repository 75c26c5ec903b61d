"""The explorers build their tag panel, gallery and FiftyOne button directly.

A missing optional package (FiftyOne) is the only reason to show a note instead of a widget;
any other error while building one is raised, not hidden behind a grey note.
"""

from __future__ import annotations

import sys

import pytest

from workbench.selection import Selection
from workbench.widgets.disagreement_explorer import DisagreementExplorer
from workbench.widgets.error_explorer import ErrorExplorer
from workbench.widgets.fiftyone_button import FiftyOneButton
from workbench.widgets.gallery import ItemGallery
from workbench.widgets.tag_panel import TagPanel


@pytest.fixture
def fiftyone_importable():
    """Only where FiftyOne is installed (the button is built then)."""
    from workbench.fiftyone_bridge import _fiftyone_installed

    if not _fiftyone_installed():
        pytest.skip("FiftyOne is not installed here")


@pytest.fixture
def without_fiftyone(monkeypatch):
    """Make ``import fiftyone`` fail, as in a core-only installation."""
    monkeypatch.setitem(sys.modules, "fiftyone", None)


def test_error_explorer_builds_its_companions(sample_project, fiftyone_importable):
    sel = Selection()
    app = ErrorExplorer(sample_project, sel)
    assert isinstance(app.tags, TagPanel) and app.tags.selection is sel
    assert isinstance(app.gallery, ItemGallery) and app.gallery.selection is sel
    assert isinstance(app.fiftyone, FiftyOneButton) and app.fiftyone.selection is sel
    assert app.tags.context == {"source": "ErrorExplorer", "run": app.run}
    assert app.notes.value == ""


def test_disagreement_explorer_builds_its_companions(sample_project, fiftyone_importable):
    sel = Selection()
    app = DisagreementExplorer(sample_project, sel)
    assert isinstance(app.tag_panel, TagPanel) and app.tag_panel.selection is sel
    assert isinstance(app.gallery, ItemGallery) and app.gallery.selection is sel
    assert isinstance(app.fiftyone_button, FiftyOneButton)
    assert app.tag_panel.context == {"dashboard": "disagreements"}
    assert "FiftyOne" not in app.header.value


def test_without_fiftyone_the_explorers_say_how_to_install_it(sample_project,
                                                              without_fiftyone):
    app = ErrorExplorer(sample_project)
    assert app.fiftyone is None and isinstance(app.tags, TagPanel)
    assert "FiftyOne is not installed" in app.notes.value
    assert "workbench[fiftyone]" in app.notes.value
    board = DisagreementExplorer(sample_project)
    assert board.fiftyone_button is None and isinstance(board.tag_panel, TagPanel)
    assert isinstance(board.gallery, ItemGallery)
    assert "workbench[fiftyone]" in board.header.value


@pytest.mark.parametrize("explorer", [ErrorExplorer, DisagreementExplorer])
def test_a_broken_companion_is_an_error_not_a_note(sample_project, monkeypatch, explorer):
    def broken(self, *args, **kwargs):
        raise TypeError("TagPanel.__init__() got an unexpected keyword argument 'context'")

    monkeypatch.setattr(TagPanel, "__init__", broken)
    with pytest.raises(TypeError, match="unexpected keyword argument 'context'"):
        explorer(sample_project)


def test_a_broken_gallery_is_an_error_not_a_note(sample_project, monkeypatch):
    def broken(self, *args, **kwargs):
        raise AttributeError("no attribute 'media_path'")

    monkeypatch.setattr(ItemGallery, "__init__", broken)
    with pytest.raises(AttributeError, match="media_path"):
        DisagreementExplorer(sample_project)
