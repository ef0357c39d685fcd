"""Mask polygons from landmarks, for training: the face hull, the eyes and the mouth, moved and drawn.

The blend masks of convert are in :mod:`faceswap.mask`; these are the masks
training weighs its loss with. A face's outline (:func:`mask_outline`) is a
fixed-size array of polygon vertices made once from its 68 landmarks; an
affine map keeps every polygon convex and in order, so augmentation moves the
outline with the face (:func:`faceswap.augment.transform_landmarks`) and
:func:`landmark_masks` draws it on the model's grid. Coordinates are
continuous pixels (the centre of pixel ``(0, 0)`` at ``(0.5, 0.5)``), ``(x, y)``.
"""

from __future__ import annotations

import numpy as np

from faceswap.landmarks import FOREHEAD_POINTS, LEFT_EYE, MOUTH, RIGHT_EYE, face_hull
from faceswap.raster import fill_convex

#: Eye and mouth regions are the landmark polygons grown by these factors around their centres.
_EYE_GROWTH, _MOUTH_GROWTH = 1.6, 1.2
#: Slots of the face hull in a mask outline: enough for every landmark and forehead point.
_HULL_POINTS = 68 + FOREHEAD_POINTS
#: Where each polygon lies in a mask outline (see :func:`mask_outline`).
_OUTLINE = {
    "hull": slice(0, _HULL_POINTS),
    "right_eye": slice(_HULL_POINTS, _HULL_POINTS + 6),
    "left_eye": slice(_HULL_POINTS + 6, _HULL_POINTS + 12),
    "mouth": slice(_HULL_POINTS + 12, _HULL_POINTS + 24),
}
OUTLINE_POINTS = _HULL_POINTS + 24


def _convex(points: np.ndarray, count: int, with_forehead: bool = False) -> np.ndarray:
    """Convex hull vertices of ``points`` in order, padded to ``count`` by repeating the last one."""
    hull = face_hull(points, with_forehead=with_forehead)
    return np.concatenate([hull, np.repeat(hull[-1:], count - len(hull), axis=0)])


def _grown(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(axis=0)
    return centre + (points - centre) * factor


def mask_outline(landmarks: np.ndarray, with_forehead: bool = False) -> np.ndarray:
    """The polygons the masks are drawn from, as ``(OUTLINE_POINTS, 2)`` points, from one face's 68 landmarks.

    Face hull, with the forehead if asked (68 + ``FOREHEAD_POINTS`` slots), each
    eye and the mouth grown around their centres (6, 6 and 12 slots); each polygon
    convex, in order, padded by repeating its last vertex. Affine maps keep
    all of this true, so outlines are made once per face and moved with the
    face's augmentation.
    """
    landmarks = np.asarray(landmarks, np.float64)
    return np.concatenate(
        [
            _convex(landmarks, _HULL_POINTS, with_forehead),
            _convex(_grown(landmarks[RIGHT_EYE.start : RIGHT_EYE.stop], _EYE_GROWTH), 6),
            _convex(_grown(landmarks[LEFT_EYE.start : LEFT_EYE.stop], _EYE_GROWTH), 6),
            _convex(_grown(landmarks[MOUTH.start : MOUTH.start + 12], _MOUTH_GROWTH), 12),
        ]
    )


def landmark_masks(outlines: np.ndarray, size: int) -> np.ndarray:
    """Masks from outlines (:func:`mask_outline`): channel 0 the face hull, channel 1 the eyes and mouth.

    Parameters
    ----------
    outlines
        ``(n, OUTLINE_POINTS, 2)`` continuous coordinates on the ``size`` x ``size`` grid.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(n, size, size, 2)``, anti-aliased, 255 inside.
    """
    indexed = np.asarray(outlines, dtype=np.float64) - 0.5  # to pixel-index coordinates
    masks = np.zeros((len(indexed), 2, size, size), np.uint8)
    for index, points in enumerate(indexed):
        for name, part in _OUTLINE.items():
            fill_convex(masks[index, 0 if name == "hull" else 1], points[part])
    return np.ascontiguousarray(masks.transpose(0, 2, 3, 1))
