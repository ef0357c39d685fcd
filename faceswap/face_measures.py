"""Measurements of one aligned face crop: sharpness, colour, head pose, and how well it is aligned.

``faceswap sort`` orders a faces folder by these; extract measures the same
sharpness when it decides a face is too blurry to save. Every function takes
the crop's pixels and its layout (size and padding, from its metadata, see
:mod:`faceswap.crops`), so a crop without metadata is measured as a default
extract crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from faceswap.align import CROP_PADDING, MEAN_FACE, crop_matrix, face_region, invert, transform_points
from faceswap.landmarks import INNER
from faceswap.pose import head_pose
from faceswap.track import BOX_CENTRE, BOX_HALF_SIDE

if TYPE_CHECKING:  # dlib only where faces are found: training measures crops without it
    from faceswap.detect import FaceDetector, LandmarkPredictor


def sharpness(crop: np.ndarray, padding: float = CROP_PADDING) -> float:
    """Variance of the Laplacian of the face square of an RGB crop (higher is sharper).

    Sharp 256-px crops measure about 100 to 1000; a Gaussian blur of a few
    pixels brings them below 20.
    """
    start, stop = face_region(crop.shape[0], padding)
    gray = cv2.cvtColor(np.ascontiguousarray(crop[start:stop, start:stop]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def mean_colour(crop: np.ndarray, padding: float = CROP_PADDING) -> np.ndarray:
    """Mean CIE Lab colour (L in 0-100, a and b around 0) of the centre of the face square.

    The central half of the face square (cheeks, nose, eyes) is measured, so
    hair and background barely count.
    """
    start, stop = face_region(crop.shape[0], padding)
    quarter = (stop - start) // 4
    centre = np.ascontiguousarray(crop[start + quarter : stop - quarter, start + quarter : stop - quarter])
    lab = cv2.cvtColor(centre.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab.reshape(-1, 3).mean(axis=0).astype(np.float64)


def crop_to_unit(size: int, padding: float) -> np.ndarray:
    """``2x3`` matrix from crop pixels to unit face space (the inverse of the crop's layout)."""
    return invert(crop_matrix(np.eye(2, 3), size, padding))


def expected_box(size: int, padding: float) -> tuple[float, float, float, float]:
    """Where dlib's HOG detector would put its box on a well-aligned face in this crop layout."""
    span = size * (1.0 - 2.0 * padding)
    offset = size * padding
    centre_x, centre_y = (offset + span * BOX_CENTRE[0], offset + span * BOX_CENTRE[1])
    half = span * BOX_HALF_SIDE
    return centre_x - half, centre_y - half, centre_x + half, centre_y + half


@dataclass(frozen=True)
class Fit:
    """The face that detection finds in a crop again, and how far it lies from the mean face.

    Attributes
    ----------
    landmarks
        ``(68, 2)`` landmarks found in the crop now (crop pixels).
    found
        Whether the detector found a face in the crop; without one the
        landmarks were placed where an aligned face should be, and are
        whatever shape the predictor draws there.
    misalignment
        RMS distance of the found inner landmarks from the mean face, in unit
        face space, without fitting them again: the shape's own deviation
        (a half face, slipped landmarks) plus any shift, turn or scale of the
        face away from where the crop's alignment put it. Well-aligned faces
        measure about 0.03 to 0.07.
    """

    landmarks: np.ndarray
    found: bool
    misalignment: float


def refit(crop: np.ndarray, padding: float, detector: FaceDetector, predictor: LandmarkPredictor) -> Fit:
    """Detect the face of a crop again, place its landmarks, and measure its misalignment.

    The detection nearest the centre of the box an aligned face would have is
    used; the predictor runs in that detection's box, so a shifted or turned
    face is followed where it really is.
    """
    size = crop.shape[0]
    expected = expected_box(size, padding)
    detections = detector.detect(crop)
    found = bool(detections)
    box = expected
    if detections:
        centre = np.array([(expected[0] + expected[2]) / 2, (expected[1] + expected[3]) / 2])

        def offset(detection) -> float:
            left, top, right, bottom = detection.box
            return float(np.hypot((left + right) / 2 - centre[0], (top + bottom) / 2 - centre[1]))

        box = min(detections, key=offset).box
    landmarks = predictor(crop, box)
    unit = transform_points(landmarks[INNER.start : INNER.stop], crop_to_unit(size, padding))
    misalignment = float(np.sqrt(((unit - MEAN_FACE) ** 2).sum(axis=1).mean()))
    return Fit(landmarks, found, misalignment)


def crop_pose(landmarks: np.ndarray, size: int) -> np.ndarray:
    """``[yaw, pitch, roll]`` in degrees of a crop's face, from its landmarks in crop pixels."""
    return head_pose(landmarks, (size, size)).as_array()
