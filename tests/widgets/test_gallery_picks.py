"""Picking gallery cards and tagging only the picks: gallery + tag panel on the sample project.

Clicks are simulated as the browser sends them: a custom message to the gallery's
``CardClicks`` widget (``{"event": "click", "slot": i, "shift": bool, "epoch": n}``); the
tags land in a real SQLite TagStore in a temporary folder.
"""

from __future__ import annotations

import pytest
import traitlets

from workbench.selection import Selection
from workbench.tags import TagStore
from workbench.widgets._picks import CardClicks, range_pick, toggle_pick
from workbench.widgets.gallery import ItemGallery
from workbench.widgets.tag_panel import TagPanel

SCANNER = "scanner-b"  # 540 items of the sample project


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "curator-ana")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_USER_HEADER", raising=False)


@pytest.fixture
def store(sample_project, tmp_path):
    return TagStore(f"sqlite:///{tmp_path / 'tags.db'}",
                    item_ids=sample_project.items["item_id"])


@pytest.fixture
def board(sample_project, store):
    """A gallery (24 cards a page) and a tag panel on one Selection, a slice selected."""
    sel = Selection()
    gallery = ItemGallery(sample_project, sel, page_size=24, run="baseline")
    panel = TagPanel(sample_project, sel, store=store, context={"run": "baseline"})
    items = sample_project.items
    ids = items.loc[items["scanner"] == SCANNER, "item_id"].tolist()
    assert len(ids) == 540
    sel.select(ids, description=f"scanner={SCANNER}")
    return sel, gallery, panel


def _click(gallery: ItemGallery, slot: int, *, shift: bool = False, epoch=None) -> None:
    """What the browser sends when card ``slot`` is clicked (shift held or not)."""
    clicks = gallery.card_clicks
    content = {"event": "click", "slot": slot, "shift": shift,
               "epoch": clicks.epoch if epoch is None else epoch}
    clicks._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def _picked_cards(gallery: ItemGallery) -> list[str]:
    return [c.item_id for c in gallery.cards if "wb-picked" in c.box._dom_classes]


def test_pick_three_of_24_cards_and_tag_exactly_those(board, store):
    sel, gallery, panel = board
    assert len(gallery.ids_on_page) == 24 and gallery.picked == ()
    assert "Tag all 540 selected" in panel.status.value
    assert panel.add_button.description == "Tag all 540 selected"
    page = list(gallery.ids_on_page)
    _click(gallery, 3)
    _click(gallery, 20)
    _click(gallery, 20)  # a second click unpicks
    _click(gallery, 10)
    _click(gallery, 11, shift=True)  # from the last card clicked (10) to this one
    expected = sorted([page[3], page[10], page[11]])
    assert gallery.picked == sel.picked == tuple(expected)
    assert sorted(_picked_cards(gallery)) == expected
    assert "<b>3 picked</b>" in gallery.status.value
    assert "Tag 3 picked item(s) only" in panel.status.value
    assert panel.add_button.description == "Tag 3 picked"
    assert panel.remove_button.description == "Untag 3 picked"
    panel.tag_box.value = "relabel"
    panel.reason_box.value = "digit looks like a 7"
    panel.add_button.click()
    assert panel.error_box.value == "" and panel.last_written == 3
    assert store.items_with("relabel") == expected
    assert "Tagged 3 item(s) relabel (the 3 picked)" in panel.status.value
    hist = store.history()
    assert len(hist) == 3 and set(hist["author"]) == {"curator-ana"}
    assert hist["context"].iloc[0]["picked"] == "3 of 540"
    # the picks stay after tagging; remove acts on them too
    panel.remove_button.click()
    assert store.items_with("relabel") == [] and "of the 3 picked" in panel.status.value
    # without picks the whole selection is tagged
    gallery.pick_none_button.click()
    assert gallery.picked == () and _picked_cards(gallery) == []
    assert "Tag all 540 selected items" in panel.status.value
    panel.add_button.click()
    assert panel.last_written == 540
    assert store.items_with("relabel") == list(sel.ids)
    assert "picked" not in store.history()["context"].iloc[-1]


def test_shift_click_picks_a_range_across_pages_in_gallery_order(board):
    sel, gallery, _panel = board
    order = list(gallery._ids)  # the model's errors first: not sorted by id
    assert order != sorted(order)
    _click(gallery, 22)
    gallery.next_button.click()
    _click(gallery, 1, shift=True)
    assert sel.picked == tuple(sorted(order[22:26]))
    assert sorted(_picked_cards(gallery)) == sorted(order[24:26])
    gallery.prev_button.click()
    assert sorted(_picked_cards(gallery)) == sorted(order[22:24])
    # backwards: from the card clicked last (position 5) to position 2
    gallery.pick_none()
    _click(gallery, 5)
    _click(gallery, 2, shift=True)
    assert sel.picked == tuple(sorted(order[2:6]))
    # a shift-click with nothing clicked before picks just that card
    gallery.pick_none()
    _click(gallery, 7, shift=True)
    assert sel.picked == (order[7],)


def test_a_click_on_a_replaced_page_or_an_empty_card_is_ignored(board, sample_project):
    sel, gallery, _panel = board
    stale = gallery.card_clicks.epoch
    gallery.next_button.click()
    _click(gallery, 0, epoch=stale)  # sent before the browser saw page 2
    assert sel.picked == ()
    _click(gallery, 99)
    _click(gallery, "0")
    gallery.card_clicks._handle_msg({"content": {"data": {"method": "custom", "content": {
        "event": "hover", "slot": 0, "epoch": gallery.card_clicks.epoch}}}, "buffers": []})
    assert sel.picked == () and gallery.error_box.value == ""
    sel.select(sel.ids[:2])
    _click(gallery, 5)  # the page shows two cards
    assert sel.picked == ()


def test_picks_clear_on_a_new_selection(board, sample_project):
    sel, gallery, panel = board
    _click(gallery, 0)
    _click(gallery, 4, shift=True)
    assert len(sel.picked) == 5
    sel.description = "renamed"  # not a new selection
    assert len(sel.picked) == 5
    items = sample_project.items
    sel.select(items.loc[items["scanner"] == "scanner-a", "item_id"], description="a")
    assert sel.picked == () and gallery.picked == ()
    assert _picked_cards(gallery) == []
    assert "picked" not in gallery.status.value
    assert "Tag all 702 selected" in panel.add_button.description
    _click(gallery, 3, shift=True)  # the old anchor is gone: one card only
    assert sel.picked == (gallery.ids_on_page[3],)
    sel.clear()
    assert sel.picked == () and "Select items" in panel.status.value
    assert panel.add_button.description == "Add tag"


def test_select_page_and_select_none(board):
    sel, gallery, panel = board
    assert gallery.pick_none_button.disabled and not gallery.pick_page_button.disabled
    gallery.pick_page_button.click()
    first = list(gallery.ids_on_page)
    assert sel.picked == tuple(sorted(first)) and len(first) == 24
    assert sorted(_picked_cards(gallery)) == sorted(first)
    assert not gallery.pick_none_button.disabled
    gallery.next_button.click()
    assert _picked_cards(gallery) == []
    gallery.pick_page_button.click()
    assert sel.picked == tuple(sorted(first + gallery.ids_on_page))
    assert panel.add_button.description == "Tag 48 picked"
    _click(gallery, 0)  # unpick one card of page 2
    assert len(sel.picked) == 47
    gallery.pick_none_button.click()
    assert sel.picked == () and gallery.pick_none_button.disabled
    sel.select([])
    assert gallery.pick_page_button.disabled


def test_read_only_session_picks_but_cannot_tag(sample_project, store, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    sel = Selection()
    gallery = ItemGallery(sample_project, sel, page_size=24)
    panel = TagPanel(sample_project, sel, store=store)
    sel.select(sample_project.items["item_id"][:100])
    _click(gallery, 0)
    _click(gallery, 2, shift=True)
    assert len(sel.picked) == 3  # picking is view state
    # the hidden button still reaches the kernel (a crafted message): refused there
    panel.tag_box.value = "relabel"
    panel.add_button.click()
    assert "read-only" in panel.error_box.value
    assert panel.add_tags() is None and panel.remove_tags() is None
    assert store.history().empty


def test_picks_must_be_selected_items():
    sel = Selection()
    with pytest.raises(ValueError, match=r"\['a'\] is not selected"):
        sel.picked = ["a"]
    sel.select(["a", "b", "c"])
    sel.picked = ["c", "a", "a"]
    assert sel.picked == ("a", "c")
    with pytest.raises(ValueError, match=r"\['x', 'y'\] are not selected \(3 selected\)"):
        sel.picked = ["a", "x", "y"]
    assert sel.picked == ("a", "c")
    with pytest.raises(traitlets.TraitError):
        sel.picked = "a"
    with pytest.raises(traitlets.TraitError):
        sel.picked = None


def test_gallery_pick_refuses_an_item_it_does_not_show(board):
    _sel, gallery, _panel = board
    with pytest.raises(ValueError, match="'digit-9999' is not in the gallery"):
        gallery.pick("digit-9999")


def test_pick_rules_and_card_clicks_widget():
    assert toggle_pick([], "a") == ["a"] and toggle_pick(["a"], "a") == []
    order = ["d", "c", "b", "a"]
    assert range_pick(["a"], order, "c", "a") == ["a", "c", "b"]
    assert range_pick([], order, "a", "c") == ["c", "b", "a"]
    assert range_pick([], order, "gone", "b") == ["b"]
    assert range_pick(["x"], order, "c", "gone") == ["x"]
    seen = []
    clicks = CardClicks(lambda slot, shift: seen.append((slot, shift)), hint="<b>x</b>")
    clicks._handle_custom_msg({"event": "click", "slot": 2, "shift": True, "epoch": 0}, [])
    clicks._handle_custom_msg({"event": "click", "slot": 3, "shift": "yes", "epoch": 0}, [])
    clicks._handle_custom_msg(["click"], [])
    assert seen == [(2, True), (3, False)]
    # the browser code ships with the widget and asks for nothing: no import, no URL
    assert "import" not in clicks._esm and "http" not in clicks._esm
    assert "textContent" in clicks._esm and "innerHTML" not in clicks._esm  # hint as text


def test_cards_share_one_caption_style_and_layout(board):
    _sel, gallery, _panel = board
    assert len({id(c.caption.style) for c in gallery.cards}) == 1
    assert len({id(c.caption.layout) for c in gallery.cards}) == 1
    assert len({id(c.placeholder.style) for c in gallery.cards}) == 1
    slots = [[k for k in c.box._dom_classes if k.startswith("wb-slot-")] for c in gallery.cards]
    assert slots == [[f"wb-slot-{i}"] for i in range(24)]
