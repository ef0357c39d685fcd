"""Filling convex polygons (a face's hull, a face square) on a pixel grid.

Points are ``(x, y)`` in pixel-index coordinates: pixel ``(column, row)`` is
centred on ``x = column, y = row`` (as landmarks are; a grid whose pixel
centres lie at ``+ 0.5``, such as a training crop's outline, subtracts 0.5
first). Vertices are kept to 1/2**:data:`SUBPIXEL_BITS` px, so a polygon that
moves by a fraction of a pixel moves its edge by as much, not in whole-pixel
steps; with anti-aliasing, edge pixels get the share of them it covers.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Fractional bits of vertex coordinates (1/16 px).
SUBPIXEL_BITS = 4


def fill_convex(
    canvas: np.ndarray,
    polygon: np.ndarray,
    value: int = 255,
    *,
    anti_alias: bool = True,
    subpixel: bool = True,
) -> np.ndarray:
    """Fill a convex polygon into ``canvas`` in place, and return ``canvas``.

    Parameters
    ----------
    canvas
        ``(height, width)`` ``uint8`` grid.
    polygon
        ``(n, 2)`` vertices in order, pixel-index coordinates.
    value
        Value inside (edge pixels get a share of it when ``anti_alias``).
    anti_alias
        Soft edge; otherwise each pixel is in or out.
    subpixel
        Vertices at 1/16 px; ``False`` rounds them to whole pixels (a coarse
        region whose edge need not move smoothly).
    """
    bits = SUBPIXEL_BITS if subpixel else 0
    points = np.round(np.asarray(polygon, dtype=np.float64) * (1 << bits)).astype(np.int32)
    line = cv2.LINE_AA if anti_alias else cv2.LINE_8
    cv2.fillConvexPoly(canvas, points, value, lineType=line, shift=bits)
    return canvas
