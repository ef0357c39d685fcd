"""Head pose (yaw, pitch, roll) from 68 landmarks with ``cv2.solvePnP``.

Six landmarks (nose tip, chin, outer eye corners, mouth corners) are matched
to a generic 3-D face of average adult proportions, with a pinhole camera
whose focal length equals the frame width and whose centre is the frame
centre. The absolute angles carry the error of that generic model (a few
degrees), but differences between two frames of the same face, which is what
``faceswap score`` reports, are much more precise.

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


def head_pose(landmarks: np.ndarray, frame_size: tuple[int, int]) -> HeadPose:
    """Estimate the head pose of a face.

    Parameters
    ----------
    landmarks
        The face's 68 landmarks in frame pixels.
    frame_size
        ``(width, height)`` of the frame (sets the camera model).
    """
    width, height = frame_size
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    image_points = np.asarray(landmarks, dtype=np.float64)[list(POSE_LANDMARKS)]
    ok, rotation_vector, _ = cv2.solvePnP(
        FACE_MODEL_MM, image_points, camera, None, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        return HeadPose(float("nan"), float("nan"), float("nan"))
    rotation, _ = cv2.Rodrigues(rotation_vector)
    pitch, yaw, roll = _euler_xyz(rotation)
    return HeadPose(yaw=-yaw, pitch=-pitch, roll=roll)


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
