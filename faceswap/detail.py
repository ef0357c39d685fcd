"""Inner-face detail: how much fine structure (eyes, nose, mouth) a face shows.

A blurry model paints an even, featureless average face that a face
recogniser may still place near the right person. This measure catches it:
the high-frequency energy (variance of the Laplacian of Gaussian of the
luminance) of the inner face, measured on the aligned face at a fixed
resolution (:data:`DETAIL_SIZE` px for the unit face square), over the hull of
the eyes, nose and mouth eroded away from its edge, where a convert's blend
never fades.

A swapped face is measured in the original face's geometry (the swap is
pasted there), so both energies come from the same region, and reported
relative to the original's. Beside it, the **ceiling**: the same ratio for the
original face passed through a perfect model of ``model_size`` pixels (cut to
the model's input as convert does, warped back into the frame, measured
again). A model of that size cannot show more than that, so a swap is judged
against the ceiling, not against 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceswap.align import (
    LEGACY,
    alignment_matrix,
    crop_face,
    crop_matrix,
    model_padding,
    transform_points,
    warp_to_frame,
)
from faceswap.raster import fill_convex

#: Side, in pixels, of the aligned unit face square that detail is measured on.
DETAIL_SIZE = 128
#: Eyes, nose and mouth (landmarks 27-67): the brows lie at the top edge of the
#: model's square, where the blend of many a convert fades out.
INNER_FACE = range(27, 68)
#: The inner-face hull is eroded by this fraction of :data:`DETAIL_SIZE`.
EROSION = 0.04
#: Gaussian smoothing (px at :data:`DETAIL_SIZE`) before the Laplacian: the band it
#: measures is the one models of 64 to 128 px paint; the single-pixel band
#: above it holds mostly resampling loss and video-codec noise.
SMOOTHING_SIGMA = 1.0
#: A swapped face counts as detailed when its ratio is at least this fraction of the ceiling's.
DETAIL_GATE = 0.8


@dataclass(frozen=True)
class FaceDetail:
    """Inner-face detail energies of one face (see :func:`detail_energy`; luminance 0-255).

    Attributes
    ----------
    original
        The original face's.
    swapped
        The swapped face's, in the original face's region.
    ceiling
        The original face's after a perfect model of the given size.
    """

    original: float
    swapped: float
    ceiling: float

    @property
    def ratio(self) -> float | None:
        """``swapped / original``; ``None`` when the original shows no detail at all."""
        return self.swapped / self.original if self.original > 0 else None

    @property
    def ceiling_ratio(self) -> float | None:
        """``ceiling / original``: what a perfect model of that size reaches."""
        return self.ceiling / self.original if self.original > 0 else None

    def detailed(self, gate: float = DETAIL_GATE) -> bool | None:
        """Whether the swap reaches ``gate`` of the ceiling's ratio (``None`` without a reference)."""
        if self.ratio is None or self.ceiling_ratio is None:
            return None
        return self.ratio >= gate * self.ceiling_ratio


def inner_face_mask(landmarks: np.ndarray, size: int = DETAIL_SIZE) -> np.ndarray:
    """Boolean mask of the eroded inner-face hull in the aligned ``size``-px face square of ``landmarks``."""
    matrix = crop_matrix(alignment_matrix(landmarks), size, padding=0.0)
    points = transform_points(np.asarray(landmarks, dtype=np.float64)[list(INNER_FACE)], matrix)
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(points.astype(np.float32))[:, 0]
    fill_convex(mask, hull, 1, anti_alias=False, subpixel=False)
    erode = max(1, round(EROSION * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
    return cv2.erode(mask, kernel).astype(bool)


def detail_energy(frame: np.ndarray, landmarks: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Inner-face detail of the face at ``landmarks`` in RGB ``frame``: variance of its Laplacian of Gaussian.

    ``mask`` (from :func:`inner_face_mask` of the same landmarks) may be passed
    to save recomputing it.
    """
    size = DETAIL_SIZE
    if mask is None:
        mask = inner_face_mask(landmarks, size)
    crop = crop_face(frame, alignment_matrix(landmarks), size, padding=0.0)
    return laplacian_energy(crop, mask, SMOOTHING_SIGMA)


def laplacian_energy(image: np.ndarray, mask: np.ndarray, sigma: float) -> float:
    """Variance over ``mask`` of the Laplacian of Gaussian (``sigma`` px; 0: none) of RGB luminance.

    ``image`` is ``uint8``, or float in ``[0, 1]`` (a model's output), rounded
    to ``uint8`` first as convert writes it. An empty mask has no detail: 0.
    """
    if image.dtype != np.uint8:
        image = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    luminance = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if sigma > 0:
        luminance = cv2.GaussianBlur(luminance, (0, 0), sigma)
    values = cv2.Laplacian(luminance, cv2.CV_32F, ksize=3)[mask]
    return float(values.var()) if values.size else 0.0


def through_model(
    frame: np.ndarray, landmarks: np.ndarray, model_size: int, centering: str = LEGACY
) -> np.ndarray:
    """The frame with the face as a perfect ``model_size``-px model would give it back.

    The face's model input, made as convert makes it (the square of
    ``centering``), is warped back into the frame over that square; the rest
    of the frame is unchanged. A wider centering spreads the model's pixels
    over more of the head, so its ceiling is lower at the same size.
    """
    from faceswap.convert_pipeline import model_input

    matrix = alignment_matrix(landmarks)
    face = model_input(frame, matrix, model_size, centering)
    size = (frame.shape[1], frame.shape[0])
    padding = model_padding(centering)
    pasted = warp_to_frame(face, matrix, size, padding=padding)
    square = np.ones((model_size, model_size), np.float32)
    inside = warp_to_frame(square, matrix, size, padding=padding) > 0.999
    result = frame.copy()
    result[inside] = pasted[inside]
    return result


def face_detail(
    original: np.ndarray,
    swapped: np.ndarray,
    landmarks: np.ndarray,
    model_size: int,
    centering: str = LEGACY,
) -> FaceDetail:
    """Detail of the original, the swapped and the ceiling face, all in the original's geometry.

    Parameters
    ----------
    original, swapped
        RGB frames of the same size.
    landmarks
        The original face's 68 landmarks in frame pixels.
    model_size, centering
        Side of the model's input in pixels and the square it sees (together
        they set the ceiling).
    """
    mask = inner_face_mask(landmarks)
    return FaceDetail(
        original=detail_energy(original, landmarks, mask),
        swapped=detail_energy(swapped, landmarks, mask),
        ceiling=detail_energy(through_model(original, landmarks, model_size, centering), landmarks, mask),
    )
