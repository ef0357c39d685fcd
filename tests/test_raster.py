"""Filling convex polygons: sub-pixel vertices, anti-aliased or hard edges, whole-pixel rounding."""

from __future__ import annotations

import numpy as np

from faceswap.raster import fill_convex

SQUARE = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]])


def moved(dx: float) -> np.ndarray:
    return SQUARE + np.array([dx, 0.0])


def canvas() -> np.ndarray:
    return np.zeros((48, 48), np.uint8)


def test_a_sub_pixel_move_moves_the_anti_aliased_edge_smoothly() -> None:
    areas = [fill_convex(canvas(), moved(dx)).astype(float).sum() for dx in (0, 0.25, 0.5)]
    np.testing.assert_allclose(areas, areas[0], rtol=0.02)  # same area wherever it sits
    edges = [fill_convex(canvas(), moved(dx))[20, 31].item() for dx in (0, 0.25, 0.5, 0.75)]
    assert edges == sorted(edges) and edges[0] < edges[-1]  # the edge pixel fills as the square moves in


def test_hard_edges_and_whole_pixel_vertices() -> None:
    hard = fill_convex(canvas(), moved(0.3), 1, anti_alias=False)
    assert set(np.unique(hard)) == {0, 1}
    rounded = fill_convex(canvas(), moved(0.3), 1, anti_alias=False, subpixel=False)
    np.testing.assert_array_equal(rounded, fill_convex(canvas(), SQUARE, 1, anti_alias=False, subpixel=False))
    assert rounded[10:31, 10:31].all() and rounded.sum() == 21 * 21  # vertices' pixels included


def test_it_fills_in_place_and_returns_the_canvas() -> None:
    grid = canvas()
    assert fill_convex(grid, SQUARE) is grid and grid[20, 20] == 255
