"""THE alignment transform: mean face, Umeyama fit, aligned crops and the way back.

extract, train and convert all align faces through this module, so a face
cropped by one lines up exactly with what the others expect.

Coordinates
-----------
*Unit face space* is where the mean face :data:`MEAN_FACE` lives: its 51 inner
landmarks fill the unit square ``[0, 1]²`` (brows at the top, lower lip at the
bottom). :func:`alignment_matrix` fits the similarity transform (rotation,
uniform scale, translation; no shear) that carries a face's inner landmarks
onto the mean face in the least-squares sense (Umeyama, 1991).

A *crop* of ``size`` pixels with ``padding`` places the unit square at
``[padding·size, (1 - padding)·size]``. The default padding
:data:`CROP_PADDING` = 48/256 is the classic layout: in a 256-px crop the face
fills the central 160 px, and that central region, resized to 64 px, is the
classic 64-px training input (see :func:`face_region`).

*Centering* names the square a model sees and paints, centred on the unit
square (:data:`CENTERINGS`). ``legacy`` is the unit square itself: brows to
lower lip, no forehead, no chin. ``face`` is 1.5 unit sides (the central
15/16 of a saved crop): the chin and the forehead up to the estimate of
:func:`faceswap.landmarks.forehead`, as DeepFaceLab's "whole face" and
deepfakes/faceswap's "face" centering do. A model crops its square with
``padding = model_padding(centering)`` (0 for legacy).

All matrices are ``2x3`` float64 arrays acting on column vectors ``(x, y, 1)``,
as OpenCV's ``warpAffine`` expects.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceswap.landmarks import INNER

#: Padding of a saved crop on each side, as a fraction of its size (48 px of 256).
CROP_PADDING = 48 / 256
#: Default side of saved aligned crops, in pixels.
DEFAULT_CROP_SIZE = 256

#: Side of each centering's model square, in unit face sides (see the module's description).
CENTERINGS = {"legacy": 1.0, "face": 1.5}
#: The centering of models trained before the setting existed.
LEGACY = "legacy"
#: The centering of new models.
DEFAULT_CENTERING = "face"

#: Mean positions of the 51 inner landmarks (points 17-67) in unit face space.
#: Generalised Procrustes mean of the faces of dlib's 300-W landmark files, made
#: left/right symmetric; reproduce with ``scripts/make_mean_face.py``.
MEAN_FACE = np.array(
    [
        [0.000000, 0.136973],
        [0.071329, 0.063467],
        [0.174205, 0.034355],
        [0.283276, 0.043123],
        [0.387572, 0.083938],
        [0.612428, 0.083938],
        [0.716724, 0.043123],
        [0.825795, 0.034355],
        [0.928671, 0.063467],
        [1.000000, 0.136973],
        [0.500000, 0.224190],
        [0.500000, 0.326922],
        [0.500000, 0.428565],
        [0.500000, 0.536675],
        [0.373010, 0.608450],
        [0.433988, 0.632937],
        [0.500000, 0.653374],
        [0.566012, 0.632937],
        [0.626990, 0.608450],
        [0.128123, 0.254872],
        [0.194406, 0.220180],
        [0.268980, 0.219176],
        [0.334051, 0.259744],
        [0.266890, 0.271547],
        [0.191730, 0.271759],
        [0.665949, 0.259744],
        [0.731020, 0.219176],
        [0.805594, 0.220180],
        [0.871877, 0.254872],
        [0.808270, 0.271759],
        [0.733110, 0.271547],
        [0.238926, 0.814860],
        [0.328862, 0.766084],
        [0.429847, 0.751358],
        [0.500000, 0.761936],
        [0.570153, 0.751358],
        [0.671138, 0.766084],
        [0.761074, 0.814860],
        [0.676611, 0.919584],
        [0.576507, 0.959308],
        [0.500000, 0.965645],
        [0.423493, 0.959308],
        [0.323389, 0.919584],
        [0.276014, 0.820254],
        [0.428999, 0.794277],
        [0.500000, 0.802073],
        [0.571001, 0.794277],
        [0.723986, 0.820254],
        [0.573926, 0.885010],
        [0.500000, 0.894485],
        [0.426074, 0.885010],
    ],
    dtype=np.float64,
)


def umeyama(source: np.ndarray, target: np.ndarray, *, scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform carrying ``source`` points onto ``target``.

    Umeyama, "Least-squares estimation of transformation parameters between
    two point patterns", IEEE PAMI 13(4), 1991. The reflection case is
    excluded, so the result is always a proper rotation.

    Parameters
    ----------
    source, target
        Corresponding points, shape ``(n, 2)``, ``n >= 2``.
    scale
        Estimate a uniform scale (similarity); otherwise rotation and
        translation only.

    Returns
    -------
    numpy.ndarray
        ``2x3`` matrix ``M`` with ``target ≈ source @ M[:, :2].T + M[:, 2]``.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean = source.mean(axis=0)
    target_mean = target.mean(axis=0)
    source_centred = source - source_mean
    target_centred = target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    factor = 1.0
    if scale:
        variance = (source_centred**2).sum() / len(source)
        factor = float(singular @ sign / variance) if variance > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = factor * rotation
    matrix[:, 2] = target_mean - matrix[:, :2] @ source_mean
    return matrix


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """Matrix from frame pixels to unit face space, fitted on the 51 inner landmarks.

    Parameters
    ----------
    landmarks
        The face's 68 landmarks in frame pixels, shape ``(68, 2)``.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {landmarks.shape}")
    return umeyama(landmarks[INNER.start : INNER.stop], MEAN_FACE)


def crop_matrix(alignment: np.ndarray, size: int, padding: float = CROP_PADDING) -> np.ndarray:
    """Matrix from frame pixels to the pixels of a ``size``-px crop with ``padding``."""
    span = size * (1.0 - 2.0 * padding)
    offset = size * padding
    matrix = np.asarray(alignment, dtype=np.float64) * span
    matrix[:, 2] += offset
    return matrix


def crop_face(
    frame: np.ndarray,
    alignment: np.ndarray,
    size: int,
    padding: float = CROP_PADDING,
    *,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Cut the aligned face out of ``frame`` as a ``size`` x ``size`` image.

    Pixels outside the frame are filled by reflecting the border, so a face
    near the frame's edge does not get a black wedge a model would learn.
    """
    matrix = crop_matrix(alignment, size, padding)
    return cv2.warpAffine(frame, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REFLECT101)


def check_centering(centering: str) -> str:
    """``centering`` if it is a key of :data:`CENTERINGS`; otherwise a ``ValueError`` listing them."""
    if centering not in CENTERINGS:
        raise ValueError(f"unknown centering {centering!r} (choose from {', '.join(CENTERINGS)})")
    return centering


def model_padding(centering: str) -> float:
    """The ``padding`` that places the unit face square in a model's square of ``centering``.

    0 for ``legacy``; 1/6 for ``face`` (the unit square is the central 2/3).
    """
    return (1.0 - 1.0 / CENTERINGS[check_centering(centering)]) / 2.0


def face_region(crop_size: int, padding: float = CROP_PADDING, centering: str = LEGACY) -> tuple[int, int]:
    """Pixel bounds ``(start, stop)``, on both axes, of a model's square of ``centering`` in a saved crop.

    For the classic 256-px crop this is ``(48, 208)`` with ``legacy`` (the unit
    face square: the region a 64-px model sees) and ``(8, 248)`` with ``face``.
    """
    start = round(crop_size * padding)
    half = CENTERINGS[check_centering(centering)] * (crop_size - 2 * start) / 2.0
    return round(crop_size / 2.0 - half), round(crop_size / 2.0 + half)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a ``2x3`` matrix to ``(n, 2)`` points."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a ``2x3`` affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def warp_to_frame(
    image: np.ndarray,
    alignment: np.ndarray,
    frame_size: tuple[int, int],
    padding: float = 0.0,
    *,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Warp an aligned image (a face, a mask) back onto the frame's pixel grid.

    Parameters
    ----------
    image
        Square aligned image of any size; ``padding`` says where its unit face
        square lies (0 for model outputs).
    alignment
        The face's matrix from :func:`alignment_matrix`.
    frame_size
        ``(width, height)`` of the frame.

    Returns
    -------
    numpy.ndarray
        The image in frame coordinates; outside the crop it is 0.
    """
    size = image.shape[0]
    matrix = crop_matrix(alignment, size, padding)
    return cv2.warpAffine(
        image,
        matrix,
        frame_size,
        flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def similarity_parameters(matrix: np.ndarray) -> np.ndarray:
    """Decompose a similarity matrix into ``(log_scale, angle, tx, ty)``.

    A parameterisation in which averaging is meaningful, used to smooth
    transforms over time (see :func:`similarity_from_parameters`).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    a, b = matrix[0, 0], matrix[1, 0]
    return np.array([np.log(np.hypot(a, b)), np.arctan2(b, a), matrix[0, 2], matrix[1, 2]])


def similarity_from_parameters(parameters: np.ndarray) -> np.ndarray:
    """Inverse of :func:`similarity_parameters`."""
    log_scale, angle, tx, ty = parameters
    scale = np.exp(log_scale)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[cos, -sin, tx], [sin, cos, ty]])
