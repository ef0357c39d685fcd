"""Head pose (yaw, pitch, roll) from 68 landmarks with ``cv2.solvePnP``.

Six landmarks (nose tip, chin, outer eye corners, mouth corners) are matched
to a generic 3-D face of average adult proportions, with a pinhole camera
whose focal length equals the frame width and whose centre is the frame
centre. The absolute angles carry the error of that generic model (a few
degrees), but differences between two frames of the same face, which is what
``faceswap score`` reports, are much more precise.

The six points are almost coplanar, so a solver started from nothing can
land on the mirror solution: the face behind the camera, seen upside down
(roll near 180° on an upright face). The solver therefore starts from a face
in front of the camera, facing it, rolled as its eye line, and a result that
does not face the camera is refused (NaN angles).

Angles are in degrees. For a face looking straight at the camera all three
are near 0. **Yaw** is positive when the face turns towards the image's right,
**pitch** positive when it tilts up, **roll** positive when it leans
clockwise in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Landmark indices used for the pose: nose tip, chin, outer eye corners, mouth corners.
POSE_LANDMARKS = (30, 8, 36, 45, 48, 54)

#: The same six points on an average adult face, in millimetres, in camera-like
#: axes (x to the image's right, y down, z away from the camera), nose tip at the origin.
FACE_MODEL_MM = np.array(
    [
        [0.0, 0.0, 0.0],  # nose tip
        [0.0, 63.6, 12.5],  # chin
        [-43.3, -32.7, 26.0],  # outer corner of the eye on the image's left
        [43.3, -32.7, 26.0],  # outer corner of the eye on the image's right
        [-28.9, 28.9, 24.1],  # mouth corner on the image's left
        [28.9, 28.9, 24.1],  # mouth corner on the image's right
    ]
)


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees (see the module docstring for the signs)."""

    yaw: float
    pitch: float
    roll: float

    def as_array(self) -> np.ndarray:
        """``[yaw, pitch, roll]``."""
        return np.array([self.yaw, self.pitch, self.roll])


#: What a face with no plausible pose gets.
_NO_POSE = HeadPose(float("nan"), float("nan"), float("nan"))
#: Stopping rule of the final Levenberg-Marquardt descent.
_CONVERGED = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 200, 1e-10)


def head_pose(landmarks: np.ndarray, frame_size: tuple[int, int]) -> HeadPose:
    """Estimate the head pose of a face.

    Parameters
    ----------
    landmarks
        The face's 68 landmarks in frame pixels.
    frame_size
        ``(width, height)`` of the frame (sets the camera model).

    Returns
    -------
    HeadPose
        NaN angles when no pose with the face in front of the camera, facing
        it, fits the landmarks.
    """
    width, height = frame_size
    focal = float(width)
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    image_points = np.asarray(landmarks, dtype=np.float64)[list(POSE_LANDMARKS)]
    rotation_guess, translation_guess = _facing_guess(image_points, camera)
    ok, rotation_vector, translation = cv2.solvePnP(
        FACE_MODEL_MM,
        image_points,
        camera,
        None,
        rotation_guess,
        translation_guess,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return _NO_POSE
    # solvePnP stops after 20 steps, a degree or two short of the minimum on a
    # real face (the generic model never fits exactly): finish the descent.
    rotation_vector, translation = cv2.solvePnPRefineLM(
        FACE_MODEL_MM, image_points, camera, None, rotation_vector, translation, criteria=_CONVERGED
    )
    rotation, _ = cv2.Rodrigues(rotation_vector)
    # In front of the camera, and the face's front (model -z) turned towards it.
    if translation[2, 0] <= 0 or rotation[2, 2] <= 0:
        return _NO_POSE
    pitch, yaw, roll = _euler_xyz(rotation)
    return HeadPose(yaw=-yaw, pitch=-pitch, roll=roll)


def angle_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``first - second`` in degrees, wrapped to [-180, 180): 179° and -179° are 2° apart, not 358°."""
    difference = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    return (difference + 180.0) % 360.0 - 180.0


def _facing_guess(image_points: np.ndarray, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solver start: the face facing the camera, rolled as its eye line, as far as its size says.

    ``image_points`` are the :data:`POSE_LANDMARKS`, in that order.
    """
    nose, _, eye_left, eye_right = image_points[:4]
    across = eye_right - eye_left
    roll = np.arctan2(across[1], across[0])  # clockwise in the image (y down) is positive
    model_eyes = float(np.linalg.norm(FACE_MODEL_MM[3] - FACE_MODEL_MM[2]))
    focal, centre = camera[0, 0], camera[:2, 2]
    depth = focal * model_eyes / max(float(np.linalg.norm(across)), 1e-6)
    offset = (nose - centre) * depth / focal
    rotation = np.array([[0.0], [0.0], [roll]])
    translation = np.array([[offset[0]], [offset[1]], [depth]])
    return rotation, translation


def _euler_xyz(rotation: np.ndarray) -> tuple[float, float, float]:
    """Angles (degrees) about x, y, z for ``R = Rz · Ry · Rx``, each in (-180, 180]."""
    sy = np.hypot(rotation[0, 0], rotation[1, 0])
    if sy > 1e-6:
        x = np.arctan2(rotation[2, 1], rotation[2, 2])
        y = np.arctan2(-rotation[2, 0], sy)
        z = np.arctan2(rotation[1, 0], rotation[0, 0])
    else:  # gimbal lock: looking straight up or down
        x = np.arctan2(-rotation[1, 2], rotation[1, 1])
        y = np.arctan2(-rotation[2, 0], sy)
        z = 0.0
    return float(np.degrees(x)), float(np.degrees(y)), float(np.degrees(z))
