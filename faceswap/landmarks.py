"""The 68-point landmark scheme (iBUG 300-W), as placed by dlib's shape predictor.

Index groups, the left/right mirror permutation, and measurements that several
pipelines share (inter-ocular distance, face hull, forehead). Indices are 0-based.
"""

from __future__ import annotations

import numpy as np

JAW = range(0, 17)
RIGHT_BROW = range(17, 22)  # the subject's right: the left side of the image
LEFT_BROW = range(22, 27)
NOSE = range(27, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
MOUTH = range(48, 68)
#: The 51 points used for alignment: everything but the jaw line, which moves
#: with the mouth and is often hidden by hair or a turned head.
INNER = range(17, 68)

#: ``landmarks[MIRROR]`` gives the landmarks of the horizontally mirrored face
#: (after flipping x), so point ``i`` stays the same anatomical point.
MIRROR = np.array(
    [
        *range(16, -1, -1),  # jaw
        *range(26, 21, -1),  # brows
        *range(21, 16, -1),
        *(27, 28, 29, 30),  # nose bridge
        *(35, 34, 33, 32, 31),  # nostrils
        *(45, 44, 43, 42, 47, 46),  # right eye <- left eye
        *(39, 38, 37, 36, 41, 40),  # left eye <- right eye
        *(54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55),  # outer lip
        *(64, 63, 62, 61, 60, 67, 66, 65),  # inner lip
    ]
)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the right and left eye (image left, image right for a frontal face)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return landmarks[RIGHT_EYE].mean(axis=0), landmarks[LEFT_EYE].mean(axis=0)


def interocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the eye centres: the usual unit for landmark errors."""
    right, left = eye_centres(landmarks)
    return float(np.linalg.norm(left - right))


#: Height of the estimated forehead above the line between the jaw's ends (points 0 and 16), as a
#: fraction of the chin's distance below that line: about two thirds of the way from the brows to a
#: typical hairline, and as high as the model's square reaches with ``face`` centering.
FOREHEAD_HEIGHT = 0.5
#: Points on the forehead's arc.
FOREHEAD_POINTS = 15


def forehead(landmarks: np.ndarray, height: float = FOREHEAD_HEIGHT) -> np.ndarray:
    """Points ``(FOREHEAD_POINTS, 2)`` on an estimate of the forehead's outline, from one face's 68 landmarks.

    The 68 points stop at the brows. The forehead is taken as the upper half of
    an ellipse through the jaw's ends (points 0 and 16, beside the eyes), rising
    ``height`` times the chin's distance below that line away from the chin: it
    turns and tilts with the face, and follows a turned head's shorter side.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    right, left, chin = points[JAW.start], points[JAW.stop - 1], points[JAW.start + 8]
    centre, half = (right + left) / 2.0, (left - right) / 2.0
    across = np.hypot(*half)
    if across == 0:
        return np.repeat(centre[None], FOREHEAD_POINTS, axis=0)
    up = np.array([half[1], -half[0]]) / across  # perpendicular to the jaw line...
    depth = float((chin - centre) @ up)
    if depth > 0:  # ...on the side away from the chin
        up = -up
    rise = height * abs(depth)
    angles = np.linspace(0.0, np.pi, FOREHEAD_POINTS)
    return centre + np.cos(angles)[:, None] * half + np.sin(angles)[:, None] * rise * up


def face_hull(landmarks: np.ndarray, *, with_forehead: bool = False) -> np.ndarray:
    """Convex hull of all 68 points (and the :func:`forehead` estimate) as an ``(n, 2)`` float array.

    Counter-clockwise. The hull of the 68 points alone ends at the brows.
    """
    import cv2

    points = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    if with_forehead:
        points = np.concatenate([points, forehead(points).astype(np.float32)])
    return cv2.convexHull(points.reshape(-1, 1, 2)).reshape(-1, 2)


def bounding_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Tight box ``(left, top, right, bottom)`` around the landmarks."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    left, top = landmarks.min(axis=0)
    right, bottom = landmarks.max(axis=0)
    return float(left), float(top), float(right), float(bottom)
