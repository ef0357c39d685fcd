"""The seam: how far the pasted face's colour lies from the frame's where the blend ends.

A swap pasted with the right shape can still look stuck on: the decoder paints
its own person's shading (a paler forehead, a darker cheek), and where the
blend fades into the frame that difference shows as a step of colour, along
the mask's outline or the straight top edge of the model's square. This
measure looks there: in a band just inside the outline convert's default mask
cannot pass (the landmarks' hull with the forehead, cut to the model's
square), past the default feathering, it compares the swapped frame's colour
with the original's after a blur that leaves out texture and detail (only
colour and shading count), as the mean CIE76 colour difference (ΔE in
L*a*b*; about 2.3 is the smallest difference people notice side by side).

Everything is measured on the aligned face (the model's square of the
original face at :data:`SEAM_SIZE` px), so the figure does not depend on the
face's size in the frame. The original passed through unchanged scores 0.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceswap.align import alignment_matrix, crop_face, crop_matrix, model_padding, transform_points
from faceswap.landmarks import face_hull
from faceswap.mask import erode
from faceswap.raster import fill_convex

#: Side, in pixels, of the aligned model's square the seam is measured on.
SEAM_SIZE = 160
#: The band starts this fraction of the unit face square inside the outline (past convert's
#: default feathering of 6 %, which fades in over its outer half)...
BAND_START = 0.05
#: ...and ends this far inside.
BAND_STOP = 0.10
#: Gaussian blur before comparing, fraction of the unit face square: texture and detail do not count.
BLUR = 0.015


def seam_band(landmarks: np.ndarray, centering: str, size: int = SEAM_SIZE) -> np.ndarray:
    """Boolean ``(size, size)`` band just inside the blend's outline, on the aligned model's square."""
    return _band(landmarks, alignment_matrix(landmarks), model_padding(centering), size)


def _band(landmarks: np.ndarray, alignment: np.ndarray, padding: float, size: int) -> np.ndarray:
    """:func:`seam_band` of a face whose alignment and model padding are known."""
    hull = face_hull(np.asarray(landmarks, dtype=np.float64), with_forehead=True)
    points = transform_points(hull, crop_matrix(alignment, size, padding))
    region = fill_convex(np.zeros((size, size), np.uint8), points, 1, anti_alias=False, subpixel=False)
    unit = size * (1.0 - 2.0 * padding)  # the unit face square's side, in pixels
    return (erode(region, BAND_START * unit) > 0) & ~(erode(region, BAND_STOP * unit) > 0)


def seam_difference(
    original: np.ndarray, swapped: np.ndarray, landmarks: np.ndarray, centering: str
) -> float | None:
    """Mean ΔE (CIE76) of the blurred swapped frame against the blurred original in the seam band.

    Parameters
    ----------
    original, swapped
        RGB ``uint8`` frames of the same size.
    landmarks
        The original face's 68 landmarks in frame pixels.
    centering
        The model's centering: the square whose edge bounds the blend.

    Returns
    -------
    float or None
        ``None`` when the band is empty (a face too small or cut off).
    """
    padding = model_padding(centering)
    matrix = alignment_matrix(landmarks)
    band = _band(landmarks, matrix, padding, SEAM_SIZE)
    if not band.any():
        return None
    sigma = BLUR * SEAM_SIZE * (1.0 - 2.0 * padding)
    colours = []
    for frame in (original, swapped):
        crop = crop_face(frame, matrix, SEAM_SIZE, padding=padding).astype(np.float32) / 255.0
        crop = cv2.GaussianBlur(crop, (0, 0), sigma)
        colours.append(cv2.cvtColor(crop, cv2.COLOR_RGB2Lab)[band])
    return float(np.linalg.norm(colours[0] - colours[1], axis=1).mean())
