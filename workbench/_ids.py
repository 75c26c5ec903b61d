"""The item ids of a project, hashed once: every id check asks one :class:`ItemIds`.

Loading a project checks that item ids are unique and that every annotation and
prediction names a known item, and the pair checks (one label per item and annotator,
one prediction per item and run) need each row's item as an integer. All of it comes from
one hash of the item ids:

- ids of one byte length whose varying byte columns hold a few distinct bytes each
  (zero-padded counters such as ``img-0000123``) are slots of a direct table: each byte's
  rank in its column, in mixed radix, is one-to-one, so a lookup is a few byte gathers and
  one table read, with no hashing (:class:`_Direct`);
- other ids of a few byte lengths (UUIDs, hashes: most other exports) are read
  straight from the Arrow buffers as 64-bit words. The byte columns every item id shares
  (``img-0``, the dashes of a UUID) are checked once per looked-up id; the rest is
  fingerprinted, the item fingerprints are hashed once (a ``pandas.Index``) and every
  other id is one integer probe, confirmed on its words, so the answer is exact.
  Probes release the GIL and run on a thread pool when one is given;
- other ids go through ``pyarrow.compute.index_in``, or pandas without Arrow strings.

Why not the library for every id: ``benchmarks/bench_load.py`` measures the same checks
(duplicate item ids, the item of every annotation and prediction, unknown ids) on 1M items,
3M annotations and 1M predictions against one pyarrow ``dictionary_encode`` of all ids
(checks on its integer codes) and against ``pyarrow.compute.index_in`` on the same thread
pool, answers checked equal; see the "id checks alone" rows of the load section of
``benchmarks/RESULTS.md``. Arrow hashes each string (about 150 ns a row here), pandas'
``Index.get_indexer`` on strings is slower still (2.2 s for these lookups).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ItemIds", "arrow_strings", "blank_strings", "locate_ids", "rows_with",
           "string_buffers",
           "worker_count"]

#: Item ids of at most this many distinct byte lengths, each at most _MAX_ID_BYTES long,
#: are packed into 64-bit words; others go through Arrow's string hashing.
_MAX_ID_WIDTHS = 8
_MAX_ID_BYTES = 64
#: Rows looked up per thread at least.
_MIN_PART = 250_000
#: Fingerprints per partition of the hash (about what fits the CPU cache).
_PARTITION_ROWS = 1 << 14
_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Ids of one byte length whose varying byte columns each hold a few distinct bytes (the
#: digits of a zero-padded counter) are looked up in a direct table, one slot per
#: combination of those bytes, when it has at most this many slots per item id ...
_DIRECT_SLOTS_PER_ID = 4
#: ... and at most this many slots in all.
_DIRECT_MAX_SLOTS = 1 << 26


def worker_count() -> int:
    """Threads for the id lookups: as many as Arrow's reader uses (at most 8)."""
    try:
        import pyarrow as pa

        return max(1, min(pa.cpu_count(), 8))
    except ImportError:
        import os

        return max(1, min(os.cpu_count() or 1, 8))


def arrow_strings(series: pd.Series):
    """The Arrow strings behind a string Series (a ChunkedArray), or None.

    Parameters
    ----------
    series : Series

    Returns
    -------
    pyarrow.ChunkedArray or None
        The ``string`` or ``large_string`` values when the Series is a string dtype that
        Arrow backs (pandas' default ``str``), else None.
    """
    if not pd.api.types.is_string_dtype(series.dtype) \
            or pd.api.types.is_object_dtype(series.dtype):
        return None
    arrow = getattr(series.array, "__arrow_array__", None)
    if arrow is None:
        return None
    import pyarrow as pa

    values = arrow()
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], type=values.type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return None
    return values


def locate_ids(haystack: pd.Series, needles) -> np.ndarray:
    """Position of the first row of ``haystack`` equal to each of ``needles``, -1 when none.

    The needles are hashed, not the haystack: a few ids (a relabel queue, a selection)
    found among 10M rows cost one pass over the haystack's Arrow strings
    (``pyarrow.compute.index_in``), not a hash table of 10M ids.

    Parameters
    ----------
    haystack : Series of str
        An ``item_id`` column.
    needles : sequence of str
        The ids to find (repeats and missing values allowed).

    Returns
    -------
    ndarray of int64, shape (len(needles),)

    Examples
    --------
    >>> locate_ids(pd.Series(["a", "b", "a", "c"], dtype="str"), ["c", "a", "x", "c"]).tolist()
    [3, 0, -1, 3]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    needles = pd.Series(np.asarray(needles, dtype=object), dtype=object)
    out = np.full(len(needles), -1, dtype=np.int64)
    known = needles.notna().to_numpy()
    if not len(needles) or not known.any() or not len(haystack):
        return out
    codes, uniques = pd.factorize(needles[known].astype(str))
    hay = arrow_strings(haystack)
    if hay is None:
        hay = pa.chunked_array([pa.array(haystack.to_numpy(dtype=object), type=pa.large_string(),
                                         from_pandas=True)])
    value_set = pa.array(np.asarray(uniques, dtype=object), type=hay.type)
    where = pc.index_in(hay, value_set=value_set)
    valid = where.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(valid)
    which = where.drop_null().to_numpy(zero_copy_only=False)
    first = np.full(len(uniques), -1, dtype=np.int64)
    found, at = np.unique(which, return_index=True)  # rows ascend: the first row of each
    first[found] = rows[at]
    out[known] = first[codes]
    return out


class ItemIds:
    """The item ids of a project, hashed once; every id check asks this object.

    Parameters
    ----------
    ids : Series of str
        The ``item_id`` column of items.
    pool : concurrent.futures.Executor, optional
        Runs :meth:`locate_async` lookups, split in parts. Default: in the caller.

    Attributes
    ----------
    first : ndarray of int, shape (len(ids),)
        For each item row, the position of the first row with the same id: a row whose
        value differs from its own position repeats an earlier id.

    Notes
    -----
    Missing ids match a missing item id, as equal strings do.
    """

    def __init__(self, ids: pd.Series, pool: Executor | None = None):
        self._ids = ids
        self._pool = pool
        self._arrow = arrow_strings(ids) if len(ids) else None
        self._packed = _Packed.build(self._arrow) if self._arrow is not None else None
        self._index = None  # for lookups in pandas: the unique ids, the first row of each
        if self._packed is not None:
            self.first = np.arange(len(ids))
        elif self._arrow is not None:
            self.first = _index_in(self._arrow, self._arrow)
        else:
            codes, _ = self._pandas_index(codes=True)
            self.first = self._index[1][codes]

    def _pandas_index(self, codes=False):
        if self._index is None or codes:
            found, uniques = pd.factorize(self._ids, use_na_sentinel=False)
            _, first_of_code = np.unique(found, return_index=True)  # codes: 0 .. n_unique - 1
            self._index = (pd.Index(uniques), first_of_code)
            return found, self._index
        return None, self._index

    def locate(self, values: pd.Series) -> np.ndarray:
        """Position of the first item row with each of ``values``, -1 when none.

        Parameters
        ----------
        values : Series of str
            An ``item_id`` column (annotations, predictions).

        Returns
        -------
        ndarray of int, shape (len(values),)
        """
        return self.locate_async(values).result()

    def locate_async(self, values: pd.Series) -> _Pending:
        """:meth:`locate` on the pool; call ``.result()`` on the answer to wait for it."""
        theirs = arrow_strings(values) if self._arrow is not None else None
        if self._packed is not None and theirs is not None:
            return self._packed.locate(theirs, self._pool)
        if self._arrow is not None and theirs is not None:
            return _Pending.run(self._pool, [(0, len(values))], _index_in, theirs, self._arrow)
        _, (index, first_of_code) = self._pandas_index()
        missing = np.flatnonzero(self._ids.isna().to_numpy())
        first_missing = missing[0] if len(missing) else -1

        def lookup(values=values):
            hit = index.get_indexer(values)
            found = np.where(hit >= 0, first_of_code[np.maximum(hit, 0)], -1)
            found[values.isna().to_numpy()] = first_missing  # missing matches missing
            return found

        return _Pending.run(None, [(0, len(values))], lookup)


class _Pending:
    """The parts of a lookup, on a pool or done already; ``result()`` joins them."""

    def __init__(self, n: int, parts: list):
        self._n = n
        self._parts = parts  # (start, stop, future or ndarray)

    @classmethod
    def run(cls, pool: Executor | None, ranges, fn, *args) -> _Pending:
        n = ranges[-1][1] if ranges else 0
        if pool is None:
            return cls(n, [(0, n, fn(*args))])
        return cls(n, [(0, n, pool.submit(fn, *args))])

    def result(self) -> np.ndarray:
        if len(self._parts) == 1 and self._parts[0][:2] == (0, self._n):
            part = self._parts[0][2]
            return part if isinstance(part, np.ndarray) else part.result()
        out = np.empty(self._n, dtype=np.int64)
        for start, stop, part in self._parts:
            out[start:stop] = part if isinstance(part, np.ndarray) else part.result()
        return out


def _index_in(values, value_set) -> np.ndarray:
    """Position of each of ``values`` in ``value_set`` (first occurrence), -1 when absent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = pa.large_string()
    found = pc.index_in(values.cast(typ), value_set=value_set.cast(typ).combine_chunks())
    return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int64)


class _PrintIndex:
    """Fingerprints hashed once, in partitions small enough for the CPU cache.

    A probe into one hash table of a million fingerprints misses the cache almost every
    time; split by their top bits into tables of some ten thousand, the probes of one
    partition stay in cache. Answers what ``pandas.Index(prints).get_indexer`` would.
    """

    def __init__(self, prints: np.ndarray):
        bits = int(np.ceil(np.log2(max(len(prints), 1) / _PARTITION_ROWS)))
        self._bits = min(max(bits, 0), 12)
        if not self._bits:
            self._order, self._starts, self._tables = None, None, [pd.Index(prints)]
        else:
            self._order, self._starts = self._partition(prints)
            ordered = prints[self._order]
            self._tables = [pd.Index(ordered[a:b])
                            for a, b in zip(self._starts[:-1], self._starts[1:], strict=True)]
        self.is_unique = all(table.is_unique for table in self._tables)

    def _partition(self, prints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part = (prints >> np.uint64(64 - self._bits)).astype(np.uint16)
        order = np.argsort(part, kind="stable")  # a radix sort on 16 bits
        starts = np.zeros((1 << self._bits) + 1, dtype=np.int64)
        np.cumsum(np.bincount(part, minlength=1 << self._bits), out=starts[1:])
        return order, starts

    def get_indexer(self, prints: np.ndarray) -> np.ndarray:
        """Position of each fingerprint among the indexed ones, -1 when absent."""
        if self._order is None:
            return self._tables[0].get_indexer(prints)
        order, starts = self._partition(prints)
        ordered = prints[order]
        hit = np.empty(len(prints), dtype=np.int64)
        for p, table in enumerate(self._tables):
            a, b = starts[p], starts[p + 1]
            if a < b:
                found = table.get_indexer(ordered[a:b])
                hit[a:b] = np.where(found >= 0, self._order[self._starts[p] + found], -1)
        out = np.empty(len(prints), dtype=np.int64)
        out[order] = hit
        return out


@dataclass
class _Packed:
    """The item ids as fingerprints of their packed bytes, hashed once."""

    groups: list  # one _Width per byte length
    index: _PrintIndex | None  # the fingerprints (unique); None: one group, looked up directly

    @classmethod
    def build(cls, items) -> _Packed | None:
        """None when the ids do not suit (missing, too many lengths or too long, repeated)."""
        lengths, present = _byte_lengths(items)
        if not present.all():
            return None
        widths = [int(lengths[0])] if lengths.min() == lengths.max() else \
            [int(w) for w in np.unique(lengths)]
        if len(widths) > _MAX_ID_WIDTHS or widths[-1] > _MAX_ID_BYTES:
            return None
        n = len(lengths)
        if len(widths) == 1:
            group = _Width.of(items, None, widths[0], direct=True)
            if group.direct is not None:
                return cls([group], None)
            if group.repeated:
                return None
        prints = np.empty(n, dtype=np.uint64)
        groups = []
        for width in widths:
            if len(widths) == 1:
                rows, among = None, None
            else:
                rows = np.flatnonzero(lengths == width)
                among = np.full(n, -1, dtype=np.int64)
                among[rows] = np.arange(len(rows))
            group = _Width.of(items, rows, width, among)
            prints[slice(None) if rows is None else rows] = _fingerprint(width, group.words)
            groups.append(group)
        index = _PrintIndex(prints)
        if not index.is_unique:  # a repeated id (the caller reports it) or a shared print
            return None
        return cls(groups, index)

    def locate(self, values, pool: Executor | None) -> _Pending:
        n = len(values)
        step = max(-(-n // worker_count()), _MIN_PART) if pool is not None else max(n, 1)
        parts = []
        for start in range(0, n, step):
            stop = min(start + step, n)
            part = values.slice(start, stop - start)
            parts.append((start, stop, pool.submit(_find, self.groups, part, self.index)
                          if pool is not None else _find(self.groups, part, self.index)))
        return _Pending(n, parts)


def _byte_lengths(values) -> tuple[np.ndarray, np.ndarray]:
    """Byte length of every string of a ChunkedArray, and which ones are not missing."""
    lengths, present = [], []
    for chunk in values.chunks:
        offsets = _offsets(chunk)
        lengths.append(np.diff(offsets))
        present.append(np.ones(len(chunk), dtype=bool) if chunk.null_count == 0
                       else ~np.asarray(chunk.is_null().to_numpy(zero_copy_only=False)))
    if not lengths:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    return np.concatenate(lengths).astype(np.int64, copy=False), np.concatenate(present)


def _offsets(chunk) -> np.ndarray:
    import pyarrow as pa

    dtype = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    buf = chunk.buffers()[1]
    return np.frombuffer(buf, dtype=dtype, count=len(chunk) + 1,
                         offset=chunk.offset * np.dtype(dtype).itemsize)


def string_buffers(chunk) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (``len(chunk) + 1``) and the UTF-8 bytes of an Arrow string array."""
    buffer = chunk.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else \
        np.zeros(0, dtype=np.uint8)
    return _offsets(chunk), data


#: Lead bytes of the UTF-8 encodings of the Unicode whitespace characters (the ones
#: ``str.strip`` removes): a blank string starts with one of them.
_SPACE_LEAD = np.zeros(256, dtype=bool)
_SPACE_LEAD[[*range(0x09, 0x0E), *range(0x1C, 0x21), 0xC2, 0xE1, 0xE2, 0xE3]] = True


def blank_strings(values) -> np.ndarray:
    """Which strings of a ChunkedArray are missing, empty or only whitespace.

    The same answer as ``str.strip() == ''`` (Arrow's ``utf8_is_space`` on the few strings
    whose first byte can start a whitespace character; the others are not blank).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.empty(len(values), dtype=bool)
    start = 0
    for chunk in values.chunks:
        offsets, data = string_buffers(chunk)
        blank = offsets[1:] == offsets[:-1]
        if len(data):
            lead = data[np.minimum(offsets[:-1], len(data) - 1)]
            maybe = np.flatnonzero(~blank & _SPACE_LEAD[lead])
            if len(maybe):
                spaces = pc.fill_null(pc.utf8_is_space(chunk.take(pa.array(maybe))), False)
                blank[maybe] = np.asarray(spaces.to_numpy(zero_copy_only=False), dtype=bool)
        if chunk.null_count:
            blank |= np.asarray(chunk.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        out[start:start + len(chunk)] = blank
        start += len(chunk)
    return out


def rows_with(values, needle: bytes, *, at_start: bool = False) -> np.ndarray:
    """Which strings of a ChunkedArray contain the bytes ``needle`` (or start with them).

    A scan of the bytes themselves; missing strings contain nothing.
    """
    out = np.zeros(len(values), dtype=bool)
    start = 0
    for chunk in values.chunks:
        offsets, data = string_buffers(chunk)
        first, stop = int(offsets[0]), int(offsets[-1])
        if at_start:
            fits = offsets[1:] - offsets[:-1] >= len(needle)
            heads = np.flatnonzero(fits)
            found = np.ones(len(heads), dtype=bool)
            for k, byte in enumerate(needle):
                found &= data[offsets[:-1][heads] + k] == byte
            hit = np.zeros(len(chunk), dtype=bool)
            hit[heads[found]] = True
        else:
            body = data[first:stop]
            match = body[:len(body) - len(needle) + 1] == needle[0] if len(body) else body
            for k, byte in enumerate(needle[1:], 1):
                match &= body[k:len(body) - len(needle) + 1 + k] == byte
            at = np.flatnonzero(match) + first
            row = np.searchsorted(offsets, at, side="right") - 1
            inside = at + len(needle) <= offsets[row + 1]  # not across two strings
            hit = np.zeros(len(chunk), dtype=bool)
            hit[row[inside]] = True
        if chunk.null_count:
            hit &= ~np.asarray(chunk.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        out[start:start + len(chunk)] = hit
        start += len(chunk)
    return out


def _pieces(values, rows: np.ndarray | None, width: int):
    """The bytes of the strings at ``rows`` (sorted, each ``width`` bytes long), per chunk.

    ``rows=None`` takes every string.

    Yields ``(data, begin, count)``: ``count`` strings back to back in the uint8 array
    ``data`` from ``begin``, with at least 8 readable bytes after the last one (so a
    64-bit word can be read at any of their bytes). Whole chunks are not copied.
    """
    import pyarrow as pa

    start = 0
    for chunk in values.chunks:
        stop = start + len(chunk)
        if rows is not None:
            lo, hi = np.searchsorted(rows, [start, stop])
            take = rows[lo:hi] - start
            if len(take) != len(chunk):  # a contiguous copy of the rows we want
                keep = np.zeros(len(chunk), dtype=bool)
                keep[take] = True
                chunk = chunk.filter(pa.array(keep))
        start = stop
        if not len(chunk):
            continue
        buffer = chunk.buffers()[2]
        data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else \
            np.zeros(0, dtype=np.uint8)
        begin = int(_offsets(chunk)[0])
        end = begin + len(chunk) * width
        if len(data) < end + 8:
            data = np.concatenate([data[begin:end], np.zeros(8, dtype=np.uint8)])
            begin = 0
        yield data, begin, len(chunk)


def _segments(columns: np.ndarray) -> tuple[list[tuple[int, int, int, int]], int]:
    """How to pack the bytes of ``columns`` into 64-bit words.

    Returns the segments ``(column, n_bytes, word, byte_in_word)`` (each at most 8
    consecutive columns) and the number of words.
    """
    segments, word, used = [], 0, 0
    breaks = np.flatnonzero(np.diff(columns) != 1) + 1
    for run in np.split(columns, breaks) if len(columns) else []:
        column, left = int(run[0]), len(run)
        while left:
            n = min(left, 8 - used)
            segments.append((column, n, word, used))
            column, left, used = column + n, left - n, used + n
            if used == 8:
                word, used = word + 1, 0
    return segments, word + (used > 0)


def _pack(data: np.ndarray, begin: int, count: int, width: int, segments, n_words: int,
          out: np.ndarray | None = None) -> np.ndarray:
    """Pack the bytes of ``count`` strings into ``(n_words, count)`` little-endian words.

    Each segment is one strided read of 64-bit words straight from ``data``, masked to
    its bytes and shifted into place: no per-byte work.
    """
    if out is None:
        out = np.zeros((n_words, count), dtype=np.uint64)
    for column, n, word, shift in segments:
        read = np.ndarray((count,), dtype="<u8", buffer=data, offset=begin + column,
                          strides=(width,))
        part = read & np.uint64((1 << (8 * n)) - 1)
        if shift:
            part <<= np.uint64(8 * shift)
        out[word] |= part
    return out


def _fingerprint(width: int, words: np.ndarray) -> np.ndarray:
    """A 64-bit fingerprint of each string from its length and words.

    Each step is invertible, so strings of one length that fit one word get distinct
    fingerprints; with more words two strings may share one (the caller confirms).
    """
    h = np.full(words.shape[1], width + 1, dtype=np.uint64)
    h *= _MIX
    for word in words:
        h ^= word
        h *= _MIX
        h ^= h >> np.uint64(29)
    return h


@dataclass
class _Width:
    """The item ids of one byte length, packed for lookups.

    The byte columns every item id shares (a prefix such as ``img-0``, a suffix, the
    dashes of a UUID) are checked once per looked-up id; only the columns that vary are
    fingerprinted, so zero-padded counters fit one word, whose fingerprint is exact.
    """

    width: int
    fixed: list  # segments of the shared columns ...
    fixed_words: np.ndarray  # ... and their packed bytes
    varying: list  # segments of the columns that vary ...
    n_words: int  # ... how many words they take ...
    words: np.ndarray  # ... and every item id's varying words, shape (n_words, n)
    among: np.ndarray | None  # item position -> column of ``words`` (None: the same)
    direct: _Direct | None = None  # the direct table, when the ids suit one
    repeated: bool = False  # the direct table found an id twice (words are not packed)

    @classmethod
    def of(cls, values, rows: np.ndarray | None, width: int, among=None,
           direct: bool = False) -> _Width:
        """The ids at ``rows`` (None: all), of ``width`` bytes; ``direct``: try a table."""
        pieces = list(_pieces(values, rows, width))
        data, begin, _ = pieces[0]
        first = data[begin:begin + width]
        shared = np.ones(width, dtype=bool)
        for data, begin, count in pieces:
            shared &= (data[begin:begin + count * width].reshape(count, width) == first) \
                .all(axis=0)
        fixed, _ = _segments(np.flatnonzero(shared))
        varying, n_words = _segments(np.flatnonzero(~shared))
        fixed_words = _pack(*pieces[0][:2], 1, width, fixed, len(fixed))[:, 0]
        n = sum(count for _, _, count in pieces)
        table = _Direct.build(pieces, width, np.flatnonzero(~shared), n) if direct else None
        if table is not None:  # no words needed, or the ids repeat: no words wanted
            return cls(width, fixed, fixed_words, varying, n_words,
                       np.zeros((n_words, 0), dtype=np.uint64), among,
                       direct=table if table.table is not None else None,
                       repeated=table.table is None)
        words = np.zeros((n_words, n), dtype=np.uint64)
        filled = 0
        for data, begin, count in pieces:
            _pack(data, begin, count, width, varying, n_words,
                  out=words[:, filled:filled + count])
            filled += count
        return cls(width, fixed, fixed_words, varying, n_words, words, among)

    def find(self, values, rows: np.ndarray | None,
             index: _PrintIndex) -> tuple[np.ndarray, np.ndarray]:
        """Which of the strings at ``rows`` (None: all) are item ids, and their positions."""
        n = len(values) if rows is None else len(rows)
        same = np.ones(n, dtype=bool)
        pieces = list(_pieces(values, rows, self.width))
        theirs = np.zeros((self.n_words if self.direct is None else 0, n), dtype=np.uint64)
        filled = 0
        for data, begin, count in pieces:
            part = slice(filled, filled + count)
            fixed = _pack(data, begin, count, self.width, self.fixed, len(self.fixed))
            for word, expected in zip(fixed, self.fixed_words, strict=True):
                same[part] &= word == expected
            if self.direct is None:
                _pack(data, begin, count, self.width, self.varying, self.n_words,
                      out=theirs[:, part])
            filled += count
        if self.direct is not None:
            hit = self.direct.locate(pieces, n)
            return same & (hit >= 0), hit
        hit = index.get_indexer(_fingerprint(self.width, theirs))
        same &= hit >= 0
        mine = np.maximum(hit, 0)
        if self.among is not None:
            mine = self.among[mine]
            same &= mine >= 0
            mine = np.maximum(mine, 0)
        if self.n_words > 1:  # a fingerprint names one item: confirm it holds this string
            for word, their in zip(self.words, theirs, strict=True):
                same &= np.take(word, mine) == their
        return same, hit


@dataclass
class _Direct:
    """Item ids of one length as slots of a direct table: no hashing, no confirmation.

    Each varying byte column holds a few distinct bytes among the items (ten digits in a
    zero-padded counter); a string's slot numbers its bytes' ranks in mixed radix, which
    is one-to-one, so the table gives the item position itself. Used when the table has
    at most :data:`_DIRECT_SLOTS_PER_ID` slots per item id.
    """

    width: int
    columns: np.ndarray  # the varying byte columns
    ranks: np.ndarray  # (len(columns), 256): a byte's rank in its column, -1 when unseen
    scale: np.ndarray  # the mixed-radix place value of each column
    table: np.ndarray | None  # slot -> item position, -1 for none; None: an id repeats

    @classmethod
    def build(cls, pieces: list, width: int, columns: np.ndarray, n: int) -> _Direct | None:
        """The table of ``n`` ids (``pieces`` as :func:`_pieces` yields), or None."""
        seen = np.zeros((len(columns), 256), dtype=bool)
        for data, begin, count in pieces:
            for k, column in enumerate(columns):
                seen[k] |= np.bincount(_column(data, begin, count, width, column),
                                       minlength=256) > 0
        radix = seen.sum(axis=1)
        slots = int(np.prod(radix.astype(object))) if len(radix) else 1
        if slots > max(_DIRECT_SLOTS_PER_ID * n, 1 << 16) or slots > _DIRECT_MAX_SLOTS:
            return None
        ranks = np.where(seen, np.cumsum(seen, axis=1) - 1, -1).astype(np.int32)
        scale = np.cumprod(np.concatenate([[1], radix[::-1][:-1]]))[::-1].astype(np.int32) \
            if len(radix) else np.zeros(0, dtype=np.int32)
        direct = cls(width, columns, ranks, scale, None)
        slot, _ = direct.slots(pieces, n)
        dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
        table = np.full(slots, -1, dtype=dtype)
        positions = np.arange(n, dtype=dtype)
        table[slot] = positions
        if not np.array_equal(table[slot], positions):  # two rows on one slot: a repeat
            return direct
        direct.table = table
        return direct

    def slots(self, pieces, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Each of ``n`` strings' slot, and which hold a byte no item id has there."""
        width = self.width
        slot = np.zeros(n, dtype=np.int32)
        unseen = np.zeros(n, dtype=bool)
        filled = 0
        for data, begin, count in pieces:
            part = slice(filled, filled + count)
            for column, ranks, scale in zip(self.columns, self.ranks, self.scale,
                                            strict=True):
                rank = ranks[_column(data, begin, count, width, column)]
                unseen[part] |= rank < 0
                slot[part] += rank * scale
            filled += count
        slot[unseen] = 0
        return slot, unseen

    def locate(self, pieces, n: int) -> np.ndarray:
        """Item position of each of ``n`` strings of the table's length, -1 when none."""
        slot, unseen = self.slots(pieces, n)
        hit = self.table[slot]
        hit[unseen] = -1
        return hit


def _column(data: np.ndarray, begin: int, count: int, width: int, column: int) -> np.ndarray:
    """Byte ``column`` of each of ``count`` strings of ``width`` bytes from ``begin``."""
    return np.ndarray((count,), dtype=np.uint8, buffer=data, offset=begin + column,
                      strides=(width,))


def _find(groups: list[_Width], values, index: _PrintIndex) -> np.ndarray:
    """Positions of the item ids ``values`` (a ChunkedArray) among the items, -1 if absent."""
    lengths, present = _byte_lengths(values)
    where = np.full(len(values), -1, dtype=np.int64)
    for group in groups:
        match = present & (lengths == group.width)
        rows = None if match.all() else np.flatnonzero(match)
        if rows is not None and not len(rows):
            continue
        same, hit = group.find(values, rows, index)
        if rows is None:
            where = np.where(same, hit, -1)
        else:
            where[rows[same]] = hit[same]
    return where

