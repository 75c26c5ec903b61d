"""``workbench/widgets/_lasso.py``: the lasso's points found in the kernel from its outline.

The vectorised :func:`points_in_lasso` is checked against a line-by-line port of
regl-scatterplot's ``isPointInPolygon`` (below) on concave, self-intersecting and
degenerate polygons, with points on vertices and edges; the port against the JavaScript
itself runs in Chromium (``tests/browser/test_embedding_map_browser.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.widgets._lasso import (
    HASH_MULTIPLIER,
    MESSAGE_TYPE,
    checksum,
    parse_lasso_message,
    points_in_lasso,
)


def _regl_inside(polygon: list[float], px: float, py: float) -> bool:
    """regl-scatterplot's ``isPointInPolygon``, line by line (winding number)."""
    winding = 0
    j = len(polygon) - 2
    for i in range(0, len(polygon), 2):
        x1, y1, x2, y2 = polygon[i], polygon[i + 1], polygon[j], polygon[j + 1]
        cross = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
        if y1 <= py:
            if y2 > py and cross > 0:
                winding += 1
        elif y2 <= py and cross < 0:
            winding -= 1
        j = i
    return winding != 0


def _regl_points(xy: np.ndarray, polygon: list[float]) -> list[int]:
    """regl-scatterplot's ``findPointsInLasso`` without its spatial index: bounding box
    (bounds included, an empty box selects nothing), then the winding rule."""
    xs, ys = polygon[0::2], polygon[1::2]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if not (x1 - x0 > 0 and y1 - y0 > 0):
        return []
    return [i for i, (x, y) in enumerate(xy.tolist())
            if x0 <= x <= x1 and y0 <= y <= y1 and _regl_inside(polygon, x, y)]


def _polygons(rng) -> list[list[float]]:
    """Lassos: a circle, a concave star, a figure eight, a bow tie, a spiral that crosses
    itself, random scribbles, and a degenerate (flat) one."""
    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    star_r = np.where(np.arange(120) % 2, 0.3, 0.9)
    spiral_t = np.linspace(0, 5 * np.pi, 200)
    shapes = [np.c_[0.6 * np.cos(t), 0.6 * np.sin(t)],
              np.c_[star_r * np.cos(t), star_r * np.sin(t)],
              np.c_[0.8 * np.sin(t), 0.5 * np.sin(2 * t)],
              np.array([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5], [-0.5, 0.5]]),
              np.c_[spiral_t / 16 * np.cos(spiral_t), spiral_t / 16 * np.sin(spiral_t)],
              np.array([[-0.5, 0.2], [0.5, 0.2], [0.1, 0.2]])]
    shapes += [rng.uniform(-1, 1, (k, 2)) for k in (3, 7, 40)]
    return [s.astype(np.float32).astype(np.float64).ravel().tolist() for s in shapes]


def _points(rng, polygon: list[float]) -> np.ndarray:
    """float32 points: random, on the polygon's vertices and midway along its edges."""
    poly = np.asarray(polygon).reshape(-1, 2)
    mid = (poly + np.roll(poly, 1, axis=0)) / 2
    xy = np.vstack([rng.uniform(-1, 1, (3000, 2)), poly, mid, [[0.0, 0.0]]])
    return xy.astype(np.float32).astype(np.float64)


def test_points_in_lasso_is_regl_scatterplots_rule():
    rng = np.random.default_rng(7)
    for polygon in _polygons(rng):
        xy = _points(rng, polygon)
        assert points_in_lasso(xy, polygon).tolist() == _regl_points(xy, polygon)


def test_a_figure_eight_selects_both_loops_and_a_bow_tie_both_triangles():
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    eight = np.c_[0.8 * np.sin(t), 0.5 * np.sin(2 * t)].ravel().tolist()
    xy = np.array([[-0.4, 0.0], [0.4, 0.0], [0.0, 0.45], [0.95, 0.0]])
    assert points_in_lasso(xy, eight).tolist() == [0, 1]
    bow = [-0.5, -0.5, 0.5, 0.5, 0.5, -0.5, -0.5, 0.5]
    assert points_in_lasso([[-0.4, 0.0], [0.4, 0.0], [0.0, 0.4]], bow).tolist() == [0, 1]


@pytest.mark.parametrize("polygon", [[], [0.0, 0.0, 1.0, 1.0], [0, 0, 1, 0, 0.5, 0],
                                     [0, 0, 1, 0, float("nan"), 1]])
def test_no_points_in_a_lasso_without_an_area(polygon):
    assert points_in_lasso([[0.5, 0.0], [0.2, 0.1]], polygon).tolist() == []


def test_the_checksum_is_the_pages():
    rng = np.random.default_rng(1)
    points = rng.choice(2_000_000, 5000, replace=False)
    count, total, hashed = 0, 0, 0
    for i in points.tolist():  # the page's loop; Math.imul and >>> 0: modulo 2**32
        x = ((i ^ (i >> 16)) * HASH_MULTIPLIER) % 2**32
        x = ((x ^ (x >> 16)) * HASH_MULTIPLIER) % 2**32
        count, total = count + 1, total + i
        hashed = (hashed + (x ^ (x >> 16))) % 2**32
    assert checksum(points) == (count, total, hashed)
    assert checksum(points[::-1]) == checksum(points)  # the order does not count
    other = points.copy()
    other[0], other[1] = other[0] + 1, other[1] - 1  # the same count and sum
    assert checksum(other)[:2] == checksum(points)[:2] and checksum(other) != checksum(points)
    assert checksum([]) == (0, 0, 0)


def test_only_a_well_formed_lasso_message_is_read():
    good = {"type": MESSAGE_TYPE, "polygon": [0, 0, 1, 0, 1, 1.5], "n": 2, "sum": 3,
            "hash": 12}
    assert parse_lasso_message(good) == ([0.0, 0.0, 1.0, 0.0, 1.0, 1.5], (2, 3, 12))
    for bad in [None, [], {"type": "tooltip"}, {**good, "type": "other"},
                {**good, "polygon": [0, 0, 1]}, {**good, "polygon": "0,0,1,1"},
                {**good, "polygon": [0, 0, True, 1]}, {**good, "polygon": [0, "1"]},
                {**good, "n": -1}, {**good, "sum": 1.5}, {**good, "hash": None},
                {**good, "n": True}]:
        assert parse_lasso_message(bad) is None, bad
