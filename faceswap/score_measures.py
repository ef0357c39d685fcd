"""The per-frame measures of ``faceswap score``, each comparing an original face with its swap.

Landmarks are ``(68, 2)`` arrays in frame pixels; images RGB ``uint8``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from faceswap.align import CENTERINGS, alignment_matrix, invert, transform_points, umeyama
from faceswap.landmarks import INNER, face_hull, interocular_distance
from faceswap.pose import angle_difference
from faceswap.raster import fill_convex

#: The axes of :func:`pose_drift`'s figures, in the order of :meth:`faceswap.pose.HeadPose.as_array`.
POSE_AXES = ("yaw", "pitch", "roll")

#: PSNR reported when the background is identical (JSON has no infinity).
PSNR_IDENTICAL = 100.0
#: The face region is grown by this fraction of the inter-ocular distance, so a
#: feathered blend edge counts as face, not as background.
FACE_REGION_MARGIN = 0.35


def face_region_mask(landmarks: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of the face region: hull of the landmarks and the aligned face square, grown.

    Covers everything a convert could have changed (the model's face square
    pasted back, the blend's feathered edge), so what lies outside it should
    be untouched background.
    """
    height, width = frame_shape[:2]
    mask = np.zeros((height, width), np.uint8)
    # The widest square any centering paints, and the hull with the forehead
    # that hull masks reach: the region of every model, old or new.
    margin = (max(CENTERINGS.values()) - 1.0) / 2.0
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64) * (1 + 2 * margin) - margin
    quad = transform_points(square, invert(alignment_matrix(landmarks)))
    for polygon in (face_hull(landmarks, with_forehead=True), quad):
        fill_convex(mask, polygon, 1, anti_alias=False, subpixel=False)
    grow = max(1, round(FACE_REGION_MARGIN * interocular_distance(landmarks)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(mask, kernel).astype(bool)


def psnr(first: np.ndarray, second: np.ndarray, where: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images over the pixels where ``where`` is true."""
    if not where.any():
        return float("nan")
    error = (first[where].astype(np.float64) - second[where].astype(np.float64)) ** 2
    mse = float(error.mean())
    return PSNR_IDENTICAL if mse == 0 else min(PSNR_IDENTICAL, 10 * math.log10(255.0**2 / mse))


def expression_difference(original: np.ndarray, swapped: np.ndarray) -> float:
    """Mean inner-landmark distance after similarity alignment, in % of the inter-ocular distance."""
    inner = slice(INNER.start, INNER.stop)
    aligned = transform_points(swapped[inner], umeyama(swapped[inner], original[inner]))
    error = np.linalg.norm(aligned - original[inner], axis=1).mean()
    return float(100 * error / interocular_distance(original))


def jitter(sequence: list[np.ndarray | None]) -> float | None:
    """High-frequency landmark motion: mean |second difference| per point, in inter-ocular distances.

    Only runs of three consecutive frames with a face count. Smooth motion
    (constant speed) scores 0; frame-to-frame shaking scores high.
    """
    values = []
    for before, now, after in zip(sequence, sequence[1:], sequence[2:], strict=False):
        if before is None or now is None or after is None:
            continue
        second = np.linalg.norm(after - 2 * now + before, axis=1).mean()
        values.append(second / interocular_distance(now))
    return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class PoseDrift:
    """How far a swap's head pose is from the original's, per axis (degrees; ``None``: no frame).

    Attributes
    ----------
    error
        Mean absolute difference, swapped minus original.
    offset
        Its steady part: the median signed difference.
    tracking_error
        The rest: mean absolute difference once the offset is taken away, i.e.
        how well the swap follows the original head's motion.
    """

    error: dict[str, float | None]
    offset: dict[str, float | None]
    tracking_error: dict[str, float | None]


def pose_drift(original: np.ndarray, swapped: np.ndarray) -> PoseDrift:
    """Compare ``(n, 3)`` yaw, pitch and roll of the original and swapped faces of the same frames.

    The pose comes from six landmarks fitted to one generic 3-D face
    (:mod:`faceswap.pose`), so two people in the same pose can differ by
    several degrees, above all in pitch, where the proportions of eyes, nose,
    mouth and chin read as a tilt. A swap that shows the new person's
    proportions therefore has a steady ``offset`` even where it follows the
    head exactly; ``tracking_error`` is what the offset cannot explain. A
    real steady turn of the head also shows as offset: read the two together.
    Frames with a NaN angle (pose not found) are left out.
    """
    differences = angle_difference(np.asarray(swapped, np.float64), np.asarray(original, np.float64))
    differences = differences.reshape(-1, 3)
    differences = differences[np.isfinite(differences).all(axis=1)]
    if not len(differences):
        nothing: dict[str, float | None] = dict.fromkeys(POSE_AXES)
        return PoseDrift(nothing, dict(nothing), dict(nothing))
    offset = np.median(differences, axis=0)
    figures = (np.abs(differences).mean(axis=0), offset, np.abs(differences - offset).mean(axis=0))
    error, steady, tracking = (
        {axis: round(float(value), 3) for axis, value in zip(POSE_AXES, values, strict=True)}
        for values in figures
    )
    return PoseDrift(error, steady, tracking)
