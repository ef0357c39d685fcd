"""Thin-plate spline displacement fields: the smoothest bend that moves given points onto others.

Used by "warp to landmarks" augmentation (:func:`faceswap.augment.augment_batch`):
a training face is bent so that its landmarks land where another person's
landmarks are, and the network learns to undo the bend, i.e. to paint *its own*
person's face shape over someone else's.

The spline is the classic one (Bookstein 1989): for each axis the displacement
is ``f(x) = a0 + a·x + Σ w_i U(|x - p_i|)`` with ``U(r) = r² log r``, fitted so
that ``f(p_i)`` equals the wanted displacement at every control point. Points
on the square's border are pinned (no displacement), so the bend fades out
towards the edges. A small ``smoothing`` on the kernel's diagonal turns exact
interpolation into a least-bending fit, which keeps the system well posed when
two landmarks (nearly) coincide.

Coordinates are continuous output pixels (pixel ``i`` spans ``[i, i + 1)``).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Border anchors per side of the square (corners included once).
ANCHORS_PER_SIDE = 4


def border_anchors(size: int, per_side: int = ANCHORS_PER_SIDE) -> np.ndarray:
    """``(4 * per_side, 2)`` points spaced evenly along the border of the ``[0, size]²`` square."""
    steps = np.linspace(0.0, float(size), per_side + 1)[:-1]
    top = np.stack([steps, np.zeros_like(steps)], axis=1)
    right = np.stack([np.full_like(steps, size), steps], axis=1)
    bottom = np.stack([size - steps, np.full_like(steps, size)], axis=1)
    left = np.stack([np.zeros_like(steps), size - steps], axis=1)
    return np.concatenate([top, right, bottom, left])


def _kernel(distances: np.ndarray) -> np.ndarray:
    """``U(r) = r² log r`` with ``U(0) = 0``."""
    squared = distances * distances
    with np.errstate(divide="ignore", invalid="ignore"):
        values = 0.5 * squared * np.log(squared)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def thin_plate_field(
    points: np.ndarray,
    displacements: np.ndarray,
    size: int,
    smoothing: float = 1e-3,
    grid: int | None = None,
) -> np.ndarray:
    """A dense displacement field through ``points`` with the given ``displacements``, border pinned.

    Parameters
    ----------
    points
        ``(k, 2)`` control points (x, y), continuous output pixels.
    displacements
        ``(k, 2)`` wanted displacement at each point, pixels.
    size
        Side of the square field.
    smoothing
        Added to the kernel's diagonal, in units of ``size²``: 0 interpolates
        exactly.
    grid
        Evaluate the spline on a ``grid`` x ``grid`` lattice of cell centres
        and resize that bilinearly to ``size`` (the spline is smooth, and this
        is ``(size / grid)²`` times cheaper); None: at every pixel.

    Returns
    -------
    numpy.ndarray
        ``(size, size, 2)`` float32: the displacement ``(dx, dy)`` at each
        pixel centre ``(x + 0.5, y + 0.5)``, row ``y``, column ``x``.
    """
    anchors = border_anchors(size)
    controls = np.concatenate([np.asarray(points, np.float64), anchors])
    values = np.concatenate([np.asarray(displacements, np.float64), np.zeros_like(anchors)])
    # Work in units of the square so the kernel's scale (and the smoothing) does not depend on size.
    unit = controls / float(size)
    count = len(unit)
    kernel = _kernel(np.linalg.norm(unit[:, None] - unit[None], axis=-1))
    kernel[np.diag_indices(count)] += smoothing
    affine = np.concatenate([np.ones((count, 1)), unit], axis=1)
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = kernel
    system[:count, count:] = affine
    system[count:, :count] = affine.T
    right = np.zeros((count + 3, 2))
    right[:count] = values
    if smoothing > 0:
        solution = np.linalg.solve(system, right)
    else:  # exact interpolation: coinciding points make the system singular
        solution = np.linalg.lstsq(system, right, rcond=None)[0]
    weights, coefficients = solution[:count], solution[count:]
    cells = size if grid is None else min(grid, size)
    centres = (np.arange(cells, dtype=np.float64) + 0.5) / float(cells)
    grid_x, grid_y = np.meshgrid(centres, centres)
    pixels = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    field = _kernel(np.linalg.norm(pixels[:, None] - unit[None], axis=-1)) @ weights
    field += np.concatenate([np.ones((len(pixels), 1)), pixels], axis=1) @ coefficients
    field = field.reshape(cells, cells, 2).astype(np.float32)
    if cells == size:
        return field
    return cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)
