"""Checks of what callers pass to the tag store (pure functions, nothing is written).

Tag names and queue names are stripped and put in Unicode NFC form; control and
bidirectional formatting characters are refused everywhere (they make a name display
differently from what it is, Trojan-source style), newlines only in reasons.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from typing import Any

import pandas as pd

from ..errors import SchemaError

__all__ = ["normalize_tag", "normalize_text", "normalize_ids", "action_key", "context_json",
           "check_known_ids", "KnownIds", "write_args", "item_box_pairs", "MAX_TAG_LENGTH",
           "MAX_REASON_LENGTH", "MAX_AUTHOR_LENGTH", "MAX_KEY_LENGTH", "MAX_BOX_ID_LENGTH"]

MAX_TAG_LENGTH = 64
MAX_REASON_LENGTH = 2000
MAX_AUTHOR_LENGTH = 128
MAX_KEY_LENGTH = 200
MAX_BOX_ID_LENGTH = 256

# Bidirectional overrides/isolates and marks.
_BIDI = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)


def _bad_chars(text: str, *, allow_newlines: bool) -> list[str]:
    bad = []
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            if allow_newlines and ch in "\n\t":
                continue
            bad.append(f"U+{ord(ch):04X}")
    return sorted(set(bad))


def normalize_tag(tag: Any, *, func: str = "TagStore") -> str:
    """Normalise and validate a tag name.

    Surrounding white space is stripped and the name is put in Unicode NFC form.

    Parameters
    ----------
    tag : str
        The tag name.
    func : str, default="TagStore"
        The calling function, for messages.

    Returns
    -------
    str
        The normalised name.

    Raises
    ------
    TypeError
        If ``tag`` is not a str.
    SchemaError
        If the name is empty, longer than 64 characters, or holds control or bidirectional
        formatting characters.

    Examples
    --------
    >>> normalize_tag("  relabel ")
    'relabel'
    """
    if not isinstance(tag, str):
        raise TypeError(f"The 'tag' parameter of {func} must be a str. Got {tag!r} instead.")
    name = unicodedata.normalize("NFC", tag.strip())
    if not name:
        raise SchemaError(
            f"{func}: the tag name {tag!r} is empty. Type a name such as 'relabel' or 'blurry'."
        )
    bad = _bad_chars(name, allow_newlines=False)
    if bad:
        raise SchemaError(
            f"{func}: the tag name {tag!r} contains control or bidirectional formatting "
            f"characters {bad}. Retype the name with visible characters only."
        )
    if len(name) > MAX_TAG_LENGTH:
        raise SchemaError(
            f"{func}: the tag name {name[:20]!r}... is {len(name)} characters long; tag names "
            f"may be at most {MAX_TAG_LENGTH}. Use a short name and put details in the reason."
        )
    return name


def normalize_text(value: Any, what: str, func: str, limit: int, *, required: bool,
                   allow_newlines: bool, keep_indent: bool = False) -> str | None:
    """Normalise and validate a free-text field (author, reason).

    Parameters
    ----------
    value : str or None
        The text.
    what : str
        Its parameter name, for messages.
    func : str
        The calling function, for messages.
    limit : int
        The most characters allowed.
    required : bool
        Whether None or an empty text is refused (else both become None).
    allow_newlines : bool
        Whether newlines and tabs are allowed.
    keep_indent : bool, default=False
        Keep the first line's indentation (Markdown: an indented first line is a code
        block): only blank lines before it and whitespace at the end are dropped.

    Returns
    -------
    str or None
        The stripped NFC text, or None.

    Raises
    ------
    TypeError
        If ``value`` is not a str (nor None when not required).
    SchemaError
        If the text is empty but required, too long, or holds control or bidirectional
        formatting characters.
    """
    if value is None:
        if required:
            raise TypeError(f"The {what!r} parameter of {func} must be a str. Got None instead.")
        return None
    if not isinstance(value, str):
        raise TypeError(f"The {what!r} parameter of {func} must be a str"
                        f"{'' if required else ' or None'}. Got {value!r} instead.")
    kept = re.sub(r"\A(?:[ \t]*\r?\n)+", "", value.rstrip()) if keep_indent else value.strip()
    text = unicodedata.normalize("NFC", kept)
    if not text.strip():
        if required:
            raise SchemaError(f"{func}: the {what} is empty. Pass a non-empty {what}.")
        return None
    bad = _bad_chars(text, allow_newlines=allow_newlines)
    if bad:
        raise SchemaError(
            f"{func}: the {what} {value[:40]!r} contains control or bidirectional formatting "
            f"characters {bad}. Remove them."
        )
    if len(text) > limit:
        raise SchemaError(
            f"{func}: the {what} is {len(text)} characters long; at most {limit} are allowed. "
            f"Shorten it."
        )
    return text


def normalize_ids(item_ids: Any, func: str) -> list[str]:
    """Return the item ids as a de-duplicated list of str, in their first order.

    Parameters
    ----------
    item_ids : str, iterable of str or Selection
        The ids (a single str is one item; a ``Selection`` gives its ``ids``).
    func : str
        The calling function, for messages.

    Returns
    -------
    list of str

    Raises
    ------
    TypeError
        If ``item_ids`` is None or a DataFrame.
    SchemaError
        If an id is missing (None/NA) or empty.
    """
    if item_ids is None:
        raise TypeError(f"The 'item_ids' parameter of {func} must be a list of item ids. "
                        "Got None instead.")
    if isinstance(item_ids, str):
        item_ids = [item_ids]
    elif hasattr(item_ids, "ids") and not isinstance(item_ids, pd.DataFrame):  # a Selection
        item_ids = item_ids.ids or ()
    if isinstance(item_ids, pd.DataFrame):
        raise TypeError(f"The 'item_ids' parameter of {func} must be a list of item ids, "
                        "not a DataFrame; pass frame['item_id'].")
    if isinstance(item_ids, (list, tuple)) and all(type(v) is str for v in item_ids):
        if "" in item_ids:
            raise SchemaError(f"{func}: item_ids holds an empty id ''. Drop it.")
        return list(dict.fromkeys(item_ids))  # fast path: de-duplicate, keep order
    out: list[str] = []
    for value in item_ids:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            raise SchemaError(f"{func}: item_ids holds a missing value (None/NA). "
                              "Drop missing ids before tagging.")
        text = value if isinstance(value, str) else str(value)
        if not text:
            raise SchemaError(f"{func}: item_ids holds an empty id ''. Drop it.")
        out.append(text)
    return list(dict.fromkeys(out))


def action_key(key: Any, func: str) -> str:
    """Return the idempotency key of a write: ``key`` checked, or a fresh one if None.

    Raises
    ------
    TypeError
        If ``key`` is not a non-empty str nor None.
    ValueError
        If ``key`` is longer than 200 characters.
    """
    if key is None:
        return uuid.uuid4().hex  # one per call, reused by every retry of this call
    if not isinstance(key, str) or not key.strip():
        raise TypeError(f"The 'action_key' parameter of {func} must be a non-empty str or "
                        f"None. Got {key!r} instead.")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"The 'action_key' parameter of {func} must be at most "
                         f"{MAX_KEY_LENGTH} characters. Got {len(key)}.")
    return key


def context_json(context: Any, func: str) -> str | None:
    """Return ``context`` (a dict) as sorted-key JSON, or None.

    Raises
    ------
    TypeError
        If ``context`` is not a dict nor None.
    ValueError
        If it cannot be written as JSON.
    """
    if context is None:
        return None
    if not isinstance(context, dict):
        raise TypeError(f"The 'context' parameter of {func} must be a dict or None. "
                        f"Got {type(context).__name__} instead.")
    try:
        return json.dumps(context, default=str, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{func}: context cannot be stored as JSON ({exc}). Pass plain "
                         "str/number/list/dict values.") from exc


class KnownIds:
    """The project's item ids, hashed on the first check (not when the store is made).

    A dashboard makes its store when it opens but writes only when a curator tags, so a
    10M-item project does not pay for a set of 10M strings before anyone writes.

    Parameters
    ----------
    ids : Series or sequence of str
        The ``item_id`` column of the project's items.
    """

    def __init__(self, ids):
        self._ids = ids
        self._lookup = None

    def __len__(self) -> int:
        return len(self._ids)

    def missing(self, ids: list[str]) -> list[str]:
        """The ids (in order, repeats kept) that are not item ids of the project."""
        if not ids:
            return []
        if self._lookup is None:
            from .._ids import ItemIds

            source = self._ids
            if not isinstance(source, pd.Series):
                source = pd.Series(list(source), dtype=object)
            self._lookup = ItemIds(source.astype(str).reset_index(drop=True))
        found = self._lookup.locate(pd.Series(ids, dtype=object))
        return [i for i, f in zip(ids, found, strict=True) if f < 0]

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and not self.missing([item_id])


def check_known_ids(ids: list[str], known: KnownIds | frozenset[str] | None,
                    func: str) -> None:
    """Refuse ids outside ``known`` (the project's items); ``known=None`` accepts any id.

    Raises
    ------
    SchemaError
        Naming the first five unknown ids.
    """
    if known is None:
        return
    if isinstance(known, KnownIds):
        unknown = known.missing(ids)
    else:
        unknown = [i for i in ids if i not in known]
    if unknown:
        raise SchemaError(
            f"{func}: {len(unknown)} item id(s) are not in the project: {unknown[:5]}"
            f"{' ...' if len(unknown) > 5 else ''}. Nothing was changed. Use ids from "
            "project.items['item_id'] (check for typos or a stale selection).")


def write_args(func: str, item_ids: Any, name: Any, author: Any, reason: Any, context: Any,
               key: Any, known: KnownIds | frozenset[str] | None) -> tuple:
    """Validate the arguments of an audited write; nothing is written on a bad one.

    Returns
    -------
    tuple
        ``(ids, name, author, reason, context_json, action_key)``.
    """
    ids = normalize_ids(item_ids, func)
    name = normalize_tag(name, func=func)
    author = normalize_text(author, "author", func, MAX_AUTHOR_LENGTH, required=True,
                            allow_newlines=False)
    reason = normalize_text(reason, "reason", func, MAX_REASON_LENGTH, required=False,
                            allow_newlines=True)
    ctx = context_json(context, func)
    key = action_key(key, func)
    check_known_ids(ids, known, func)
    return ids, name, author, reason, ctx, key


def _box_id(value: Any, position: int, func: str) -> str | None:
    """Normalise one box id (None or NA = the image itself)."""
    if value is None or (pd.api.types.is_scalar(value) and not isinstance(value, str)
                         and pd.isna(value)):
        return None
    if not isinstance(value, str):
        raise TypeError(f"The 'box_ids' parameter of {func} must hold box id strs or None. "
                        f"Got {value!r} ({type(value).__name__}) at position {position} "
                        "instead.")
    box = unicodedata.normalize("NFC", value.strip())
    if not box:
        raise SchemaError(f"{func}: box_ids[{position}] is empty ({value!r}). Pass the box id "
                          "(project.boxes['box_id']), or None for an image tag.")
    bad = _bad_chars(box, allow_newlines=False)
    if bad:
        raise SchemaError(f"{func}: the box id {value!r} (box_ids[{position}]) contains "
                          f"control or bidirectional formatting characters {bad}. Use the id "
                          "as in project.boxes['box_id'].")
    if len(box) > MAX_BOX_ID_LENGTH:
        raise SchemaError(f"{func}: the box id {box[:40]!r}... (box_ids[{position}]) is "
                          f"{len(box)} characters long; at most {MAX_BOX_ID_LENGTH} are "
                          "allowed.")
    return box


def item_box_pairs(item_ids: Any, box_ids: Any, func: str) -> tuple[list[str], list[tuple]]:
    """Split parallel item ids and box ids into image-level items and (item, box) pairs.

    Parameters
    ----------
    item_ids : str or sequence of str
        The items.
    box_ids : str or sequence of (str or None)
        One entry per item: a box id, or None (NA) for a tag on the image itself.
    func : str
        The calling function, for messages.

    Returns
    -------
    images : list of str
        The items whose entry is None, de-duplicated in their first order.
    boxes : list of tuple of (str, str)
        The ``(item_id, box_id)`` pairs, de-duplicated in their first order.

    Raises
    ------
    TypeError
        If ``box_ids`` is not a sequence (nor a str), or holds other than str/None.
    ValueError
        If ``item_ids`` and ``box_ids`` differ in length.
    SchemaError
        If an item id or a box id is missing, empty, too long or holds control characters.

    Examples
    --------
    >>> item_box_pairs(["a", "a", "b"], ["a/b0", " a/b1 ", None], "f")
    (['b'], [('a', 'a/b0'), ('a', 'a/b1')])
    """
    if isinstance(item_ids, str):
        item_ids = [item_ids]
    elif hasattr(item_ids, "ids") and not isinstance(item_ids, pd.DataFrame):  # a Selection
        item_ids = item_ids.ids or ()
    if isinstance(box_ids, str):
        box_ids = [box_ids]
    if isinstance(box_ids, (dict, set, frozenset, pd.DataFrame)) or not hasattr(
            box_ids, "__len__"):
        raise TypeError(f"The 'box_ids' parameter of {func} must be a sequence parallel to "
                        f"item_ids (a box id or None per item) or None. Got "
                        f"{type(box_ids).__name__} instead.")
    if item_ids is None:
        normalize_ids(None, func)  # raises the usual TypeError
    items = list(item_ids)
    if len(items) != len(box_ids):
        raise ValueError(f"Found input variables with inconsistent numbers of samples in "
                         f"{func}: item_ids has {len(items)} and box_ids has "
                         f"{len(box_ids)}. Pass one box id (or None) per item id.")
    images: dict[str, None] = {}
    boxes: dict[tuple[str, str], None] = {}
    if not all(type(v) is str and v for v in items):  # else: checked one by one
        items = [normalize_ids([v], func)[0] for v in items]
    for position, (item, value) in enumerate(zip(items, list(box_ids), strict=True)):
        box = _box_id(value, position, func)
        if box is None:
            images[item] = None
        else:
            boxes[(item, box)] = None
    return list(images), list(boxes)
