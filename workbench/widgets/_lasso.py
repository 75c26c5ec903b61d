"""The points inside a map's lasso, found in the kernel exactly as the browser finds them.

A lasso of 100,000 points out of 1,000,000 reaches the kernel as a message of 400 kB (the
point indices). A browser writes such a message to its WebSocket in chunks between frames,
so it arrives after the next frame, the one that draws the selection: more than 1 s later in
a browser without a GPU, and longer again over a slow network to a team's server. The lasso's
outline is a few kilobytes. The map's page sends it first, together with a checksum of the
indices the browser found, and the kernel finds the same points itself from the positions
it sent to the page (:func:`points_in_lasso`). The kernel trusts its own result only when
its checksum matches the browser's (:func:`checksum`). Otherwise (a merged or subtracted
lasso, a brush) it waits for the indices, which still follow.

regl-scatterplot's rule, reproduced here: the points in the polygon's bounding box (bounds
included) whose winding number around the polygon is not zero. The polygon is the lasso's
vertices in order, closed from the last vertex back to the first. Both sides compute in
IEEE double precision on the same values: the positions as the page has them (float32) and
the vertices exactly as the page sent them (JSON keeps a double exactly).

>>> import numpy as np
>>> xy = np.array([[0.0, 0.0], [0.5, 0.5], [2.0, 2.0]])
>>> square = [-1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0]
>>> points_in_lasso(xy, square).tolist()
[0, 1]
>>> checksum([0, 1])[:2]
(2, 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["HASH_MULTIPLIER", "MESSAGE_TYPE", "points_in_lasso", "checksum",
           "parse_lasso_message"]

#: The multiplier of the integer hash in :func:`checksum` (``Math.imul`` in the page).
HASH_MULTIPLIER = 0x45D9F3B
#: The ``type`` of the page's lasso message (jupyter-scatter's own messages have other types).
MESSAGE_TYPE = "workbench-lasso"


def points_in_lasso(xy: Any, polygon: Any) -> np.ndarray:
    """Indices of the points inside a lasso polygon, as regl-scatterplot selects them.

    Parameters
    ----------
    xy : array-like of shape (n_points, 2)
        The points' positions in the map's normalised space (the values the page draws).
    polygon : sequence of float
        The lasso's vertices, flat: ``[x0, y0, x1, y1, ...]``.

    Returns
    -------
    numpy.ndarray of int64
        The indices of the points inside, ascending (empty for a polygon of fewer than 3
        vertices or with an empty bounding box).
    """
    xy = np.asarray(xy, dtype=np.float64)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(poly) < 3 or not np.isfinite(poly).all():
        return np.array([], dtype=np.int64)
    (x_min, y_min), (x_max, y_max) = poly.min(axis=0), poly.max(axis=0)
    if not (x_max - x_min > 0 and y_max - y_min > 0):
        return np.array([], dtype=np.int64)
    x, y = xy[:, 0], xy[:, 1]
    idx = np.flatnonzero((x >= x_min) & (x <= x_max) & (y >= y_min) & (y <= y_max))
    order = np.argsort(y[idx], kind="stable")
    idx = idx[order]
    px, py = x[idx], y[idx]
    winding = np.zeros(len(idx), dtype=np.int64)
    # edge (vertex i, vertex j = the one before it); an edge counts for the points whose y
    # is in [lower end, upper end): a contiguous run of the points sorted by y
    prev = np.roll(poly, 1, axis=0)
    for (x1, y1), (x2, y2) in zip(poly.tolist(), prev.tolist(), strict=True):
        if y1 == y2:
            continue
        lo, hi = (y1, y2) if y1 < y2 else (y2, y1)
        a, b = np.searchsorted(py, lo, side="left"), np.searchsorted(py, hi, side="left")
        if a == b:
            continue
        cross = (x2 - x1) * (py[a:b] - y1) - (px[a:b] - x1) * (y2 - y1)
        if y1 < y2:  # upward: y1 <= py < y2
            winding[a:b] += cross > 0
        else:  # downward: y2 <= py < y1
            winding[a:b] -= cross < 0
    return np.sort(idx[winding != 0])


def checksum(points: Any) -> tuple[int, int, int]:
    """``(count, sum, hash)`` of point indices, the same in the page and in the kernel.

    ``hash`` is the sum, modulo 2**32, of an integer hash of each index (two rounds of
    ``x = (x ^ (x >> 16)) * HASH_MULTIPLIER`` modulo 2**32, then ``x ^ (x >> 16)``), so two
    sets with the same count and sum still differ. The order of the indices does not matter.

    Parameters
    ----------
    points : array-like of int
        Point indices (below 2**32).

    Returns
    -------
    tuple of int
    """
    idx = np.asarray(points, dtype=np.uint64).ravel()
    mask, mult, shift = np.uint64(0xFFFFFFFF), np.uint64(HASH_MULTIPLIER), np.uint64(16)
    x = ((idx ^ (idx >> shift)) * mult) & mask
    x = ((x ^ (x >> shift)) * mult) & mask
    x ^= x >> shift
    return len(idx), int(idx.sum(dtype=np.uint64)), int(x.sum(dtype=np.uint64) & mask)


def parse_lasso_message(content: Any) -> tuple[list[float], tuple[int, int, int]] | None:
    """The polygon and checksum of a page's lasso message; None for any other message.

    Parameters
    ----------
    content : object
        A custom message's content from the map's view.

    Returns
    -------
    tuple or None
        ``(polygon, (count, sum, hash))``; None when ``content`` is not a well-formed lasso
        message (a page may send anything: nothing malformed is used).
    """
    if not isinstance(content, dict) or content.get("type") != MESSAGE_TYPE:
        return None
    polygon, sums = content.get("polygon"), (content.get("n"), content.get("sum"),
                                             content.get("hash"))
    if not isinstance(polygon, list) or len(polygon) % 2 or len(polygon) > 200_000:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in sums):
        return None
    return [float(v) for v in polygon], (sums[0], sums[1], sums[2])
