"""The blend mask: where the swapped face replaces the frame, and how softly its edge fades.

Masks are ``float32`` images in ``[0, 1]`` on the pixel grid of the frame (or
of a region of it), 1 where the swapped face is pasted. Three sources
(``--mask``):

``learned``
    The decoder's own mask (trained to cover the face), warped into the frame.
``hull``
    The convex hull of the 68 landmarks and the forehead above them (the
    landmarks stop at the brows; :func:`faceswap.landmarks.forehead`), drawn
    with sub-pixel precision.
``combined`` (default)
    Both at once (their minimum): the hull bounds the learned mask, so a
    poorly trained mask can never reach into the background.

Then ``--erode`` shrinks the mask (a negative value grows it) and ``--blur``
feathers its edge. Both are percentages of the face's size (the side of its
unit face square in the frame), so the same setting suits small and large
faces. Feathering goes inwards: the mask is eroded by the feather width
before the Gaussian blur, so the blurred edge fades out at the hard edge and
never reaches past it.

The swapped face exists only inside the model's square (``coverage``), so the
feathered mask is seen through that square feathered the same way: the weight
fades along the mask's own outline, and is 0 on the square's edge wherever the
mask reaches it, so the square's straight edge never shows as a step.

Steadiness: the mask is drawn from the same smoothed geometry that places the
face (the smoothed alignment and smoothed landmarks of
:mod:`faceswap.convert_plan`), anti-aliased at 1/16 px, so its edge moves no
more than the face does.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from faceswap.landmarks import face_hull
from faceswap.raster import fill_convex

MaskKind = Literal["learned", "hull", "combined"]
MASK_KINDS: tuple[MaskKind, ...] = ("learned", "hull", "combined")

#: Default feather width, % of the face size.
DEFAULT_BLUR = 6.0
#: Default erosion, % of the face size.
DEFAULT_ERODE = 0.0


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Anti-aliased hull of ``landmarks`` (pixels) and the forehead on a ``(height, width)`` grid.

    Drawn at sub-pixel precision (:func:`faceswap.raster.fill_convex`): the hull edge moves
    smoothly with the landmarks, not in 1-px steps.
    """
    canvas = fill_convex(np.zeros(shape, np.uint8), face_hull(landmarks, with_forehead=True))
    return canvas.astype(np.float32) / 255.0


def _ellipse(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def erode(mask: np.ndarray, pixels: float) -> np.ndarray:
    """Shrink ``mask`` by ``pixels`` (grow it when negative); grey-level morphology keeps soft edges."""
    radius = round(abs(pixels))
    if radius == 0:
        return mask
    operation = cv2.erode if pixels > 0 else cv2.dilate
    return operation(mask, _ellipse(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0)


def feather(mask: np.ndarray, pixels: float) -> np.ndarray:
    """Soften the edge of ``mask`` over about ``pixels``, inwards (the result stays within ``mask``).

    The mask is eroded by half the width and blurred with a Gaussian whose
    sigma is a quarter of it: the fade runs from the eroded edge (about 0.5)
    out to the original edge (about 0), reaching 1 about half the width inside.
    """
    if pixels < 1:
        return mask
    inner = erode(mask, pixels / 2)
    blurred = cv2.GaussianBlur(inner, (0, 0), sigmaX=pixels / 4, borderType=cv2.BORDER_CONSTANT)
    return np.minimum(blurred, mask)


def build_mask(
    kind: MaskKind,
    *,
    learned: np.ndarray | None,
    landmarks: np.ndarray | None,
    coverage: np.ndarray,
    face_size: float,
    erode_percent: float = DEFAULT_ERODE,
    blur_percent: float = DEFAULT_BLUR,
) -> np.ndarray:
    """The blend mask of one face, on the grid of ``coverage``.

    Parameters
    ----------
    kind
        ``"learned"``, ``"hull"`` or ``"combined"``.
    learned
        The decoder's mask warped onto the grid (needed unless ``kind`` is ``"hull"``).
    landmarks
        The face's 68 landmarks in the grid's pixels (needed unless ``kind`` is ``"learned"``).
    coverage
        Where the swapped face exists on the grid (the model's square warped, 1 inside).
    face_size
        Side of the unit face square in pixels: the unit of ``erode_percent`` and ``blur_percent``.
    erode_percent, blur_percent
        ``--erode`` (negative dilates) and ``--blur``, in % of ``face_size``.

    Returns
    -------
    numpy.ndarray
        ``float32`` mask in ``[0, 1]``, zero outside the model's square and on its edge.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask {kind!r} (choose from {', '.join(MASK_KINDS)})")
    parts = []
    if kind in ("learned", "combined"):
        if learned is None:
            raise ValueError(f"a {kind} mask needs the decoder's mask")
        parts.append(np.clip(learned, 0.0, 1.0).astype(np.float32, copy=False))
    if kind in ("hull", "combined"):
        if landmarks is None:
            raise ValueError(f"a {kind} mask needs landmarks")
        parts.append(hull_mask(landmarks, coverage.shape[:2]))
    mask = parts[0] if len(parts) == 1 else np.minimum(*parts)
    mask = erode(mask, erode_percent / 100.0 * face_size)
    width = blur_percent / 100.0 * face_size
    # The window: where the square covers whole pixels, feathered inwards like the mask.
    window = feather((coverage > 0.999).astype(np.float32), width)
    return feather(mask, width) * window
