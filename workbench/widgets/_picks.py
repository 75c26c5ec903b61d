"""Picking gallery cards: the browser side (clicks with their shift key) and the pick rules.

ipywidgets' ``Button`` and ``Box`` report no modifier keys, so a card click with the shift key
held comes through :class:`CardClicks`, a small anywidget (an inline ES module, nothing
loaded from elsewhere). It lives in the gallery, listens for clicks on the gallery's own cards
and sends ``{"event": "click", "slot": i, "shift": bool, "epoch": n}`` to the kernel (a click
on a card's "open" link sends ``{"event": "open", ...}`` instead: the item view); the
kernel decides what is picked (:func:`toggle_pick`, :func:`range_pick`) and writes it to
``Selection.picked``, which every widget on the shared selection can read.
"""

from __future__ import annotations

from collections.abc import Sequence

import anywidget
import traitlets

__all__ = ["CardClicks", "toggle_pick", "range_pick", "SLOT_CLASS", "PICKED_CLASS"]

#: CSS class prefix that numbers the cards of a gallery (``wb-slot-0`` ...).
SLOT_CLASS = "wb-slot-"
#: CSS class of a picked card.
PICKED_CLASS = "wb-picked"

_ESM = """
function onCardClick(model, el, event) {
  const gallery = el.closest(".wb-gallery");
  if (!gallery || !gallery.contains(event.target)) return;  // another gallery's card
  const card = event.target.closest(".wb-card");
  if (!card || !gallery.contains(card)) return;
  const slot = [...card.classList].find((c) => c.startsWith("wb-slot-"));
  if (slot === undefined) return;
  if (event.target.closest("summary")) return;  // a text card's "more": it expands, no pick
  const open = event.target.closest(".wb-card-open");
  if (open && card.contains(open)) {  // the card's "open" link: the item view, not a pick
    model.send({event: "open", slot: Number(slot.slice(8)), epoch: model.get("epoch")});
    return;
  }
  const selected = window.getSelection ? String(window.getSelection()) : "";
  if (selected && !event.shiftKey) return;  // the end of a text selection, not a pick
  if (event.shiftKey && window.getSelection) window.getSelection().removeAllRanges();
  model.send({event: "click", slot: Number(slot.slice(8)), shift: !!event.shiftKey,
              epoch: model.get("epoch")});
}

export default {
  render({model, el}) {
    el.classList.add("wb-pick-hint");
    const show = () => { el.textContent = model.get("hint"); };
    show();
    model.on("change:hint", show);
    const listener = (event) => onCardClick(model, el, event);
    document.addEventListener("click", listener);
    return () => document.removeEventListener("click", listener);
  },
};
"""

_CSS = """
.wb-gallery .wb-card { cursor: pointer; }
.wb-gallery .wb-card.wb-picked { box-shadow: inset 0 0 0 3px #1565c0; background: #e3f2fd; }
.wb-pick-hint { font-size: 11px; color: #555; align-self: center; }
.wb-gallery .wb-card-open { color: #1565c0; text-decoration: underline; cursor: pointer; }
"""


class CardClicks(anywidget.AnyWidget):
    """Reports clicks on the cards of the gallery it is placed in, with the shift key.

    It shows ``hint`` as plain text. A card is recognised by its CSS classes ``wb-card``
    and ``wb-slot-<i>``; only cards inside the same ``wb-gallery`` element count, so two
    galleries on a page (or two views of one) never answer each other's clicks.

    Parameters
    ----------
    on_click : callable
        ``on_click(slot, shift)`` for every click on card ``slot`` made while the browser
        showed page ``epoch`` (a click on a page the kernel has already replaced is dropped).
    hint : str
        Text shown in the view.
    on_open : callable, optional
        ``on_open(slot)`` for a click on the "open" link (CSS class ``wb-card-open``) of
        card ``slot`` (the gallery opens the item view); such a click picks nothing.
    """

    _esm = _ESM
    _css = _CSS
    hint = traitlets.Unicode("").tag(sync=True)
    #: Bumped by the gallery whenever the cards show other items.
    epoch = traitlets.Int(0).tag(sync=True)

    def __init__(self, on_click, *, hint: str = "", on_open=None, **kwargs):
        super().__init__(hint=hint, **kwargs)
        self._on_click = on_click
        self._on_open = on_open
        self.on_msg(self._handle_click)

    def _handle_click(self, _widget, content, _buffers) -> None:
        """Adapter: browser message -> ``on_click(slot, shift)`` / ``on_open(slot)``.

        Anything else (another event, a bad slot, a stale epoch) is ignored.
        """
        if not isinstance(content, dict) or content.get("event") not in ("click", "open"):
            return
        slot, epoch = content.get("slot"), content.get("epoch")
        if type(slot) is not int or epoch != self.epoch:
            return
        if content["event"] == "open":
            if self._on_open is not None:
                self._on_open(slot)
            return
        self._on_click(slot, content.get("shift") is True)


def toggle_pick(picked: Sequence[str], item_id: str) -> list[str]:
    """``picked`` with ``item_id`` added, or removed when it was already there.

    Examples
    --------
    >>> toggle_pick(["a", "b"], "c")
    ['a', 'b', 'c']
    >>> toggle_pick(["a", "b"], "a")
    ['b']
    """
    return [i for i in picked if i != item_id] if item_id in picked else [*picked, item_id]


def range_pick(picked: Sequence[str], order: Sequence[str], anchor: str | None,
               item_id: str) -> list[str]:
    """``picked`` plus every item from ``anchor`` to ``item_id`` (both included) in ``order``.

    A shift-click: the range runs across ``order`` (the gallery's order, every page), in
    either direction. Without a usable anchor (none, or no longer shown) only ``item_id`` is
    added.

    Examples
    --------
    >>> range_pick(["x"], ["a", "b", "c", "d"], "d", "b")
    ['x', 'b', 'c', 'd']
    >>> range_pick([], ["a", "b"], None, "b")
    ['b']
    """
    try:
        end = order.index(item_id)
    except ValueError:
        return list(picked)
    try:
        start = order.index(anchor) if anchor is not None else end
    except ValueError:
        start = end
    lo, hi = sorted((start, end))
    have = set(picked)
    return [*picked, *(i for i in order[lo:hi + 1] if i not in have)]
