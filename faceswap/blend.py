"""The blender: paste swapped faces back into their frame.

For each face the decoder's output (the model's square: the unit face square
for ``legacy`` centering, the whole face with its forehead for ``face``; see
:mod:`faceswap.align`) is warped back onto the frame with the inverse of the
face's alignment (:func:`faceswap.align.warp_to_frame`), together with the
decoder's mask and the square's own coverage. Then, within a small region of the frame around the
face (nothing outside it is touched, so the rest of the frame stays
bit-identical):

1. the blend mask is built (:func:`faceswap.mask.build_mask`: learned, hull or
   combined, eroded or dilated, feathered along its outline and seen through
   the model's square, feathered too: the weight is 0 on the square's edge);
2. the swapped face's colours are matched to the original's within that mask
   (:func:`faceswap.color.match_color`), on the model's face square, to which
   the original and the mask are resampled (:func:`match_face_color`: the
   cost does not grow with the face's size in the frame), and then, near the
   mask's edge, to the original's local colour (:func:`faceswap.color.match_edge`,
   ``--edge-color``, not with ``--seamless``: no step of colour where the
   blend fades); the face is then warped onto the frame;
3. optionally sharpened (an unsharp mask as wide as the model's upscaling,
   ``--sharpen``);
4. optionally Poisson-blended into the frame (``--seamless``,
   :func:`cv2.seamlessClone`), which carries the frame's shading across the
   face;
5. alpha-blended: ``frame + mask · (face - frame)``, so wherever the mask is 0
   the frame keeps its exact pixels.

The geometry used (alignment matrix and landmarks) should be the *smoothed*
geometry of the face (see :mod:`faceswap.convert_plan`): the face, its mask
and the mask's edge then all move together, and no more than the face moved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from faceswap.align import LEGACY, crop_matrix, invert, model_padding, transform_points, warp_to_frame
from faceswap.color import DEFAULT_COLOR, ColorMethod, match_color, match_edge
from faceswap.mask import DEFAULT_BLUR, DEFAULT_ERODE, MaskKind, build_mask
from faceswap.raster import fill_convex

#: Pixels around the face square's bounding box included in the blend region.
REGION_MARGIN = 2
#: The face square's edge left out of the blend, in the decoder's pixels (bilinear interpolation
#: blends the outermost one with the black outside).
COVERAGE_INSET = 1.0


@dataclass(frozen=True)
class BlendOptions:
    """How faces are pasted (the ``convert`` options of the same names)."""

    mask: MaskKind = "combined"
    erode: float = DEFAULT_ERODE
    blur: float = DEFAULT_BLUR
    color: ColorMethod = DEFAULT_COLOR
    seamless: bool = False
    sharpen: float = 0.0
    edge_color: bool = True


@dataclass(frozen=True)
class SwappedFace:
    """One face to paste.

    Attributes
    ----------
    face
        The decoder's face, ``float32`` RGB in ``[0, 1]``, shape ``(s, s, 3)``.
    mask
        The decoder's mask, ``float32`` in ``[0, 1]``, shape ``(s, s)`` or ``(s, s, 1)``.
    matrix
        Alignment matrix (frame pixels to unit face space) the face was cropped with.
    landmarks
        The face's 68 landmarks in frame pixels (for the hull mask).
    centering
        The model's centering (:data:`faceswap.align.CENTERINGS`): which square ``face`` covers.
    """

    face: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    centering: str = LEGACY

    @property
    def padding(self) -> float:
        """Where the unit face square lies in ``face`` (:func:`faceswap.align.model_padding`)."""
        return model_padding(self.centering)


def face_size(matrix: np.ndarray) -> float:
    """Side of the unit face square in frame pixels."""
    return 1.0 / math.sqrt(abs(float(np.linalg.det(np.asarray(matrix)[:, :2]))))


def square_corners(matrix: np.ndarray, padding: float = 0.0, inset: float = 0.0) -> np.ndarray:
    """Frame points ``(4, 2)`` of the model's square's corners (``padding``), inset by ``inset`` of a side."""
    square = inset + np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float) * (1.0 - 2.0 * inset)
    return transform_points(square, invert(crop_matrix(matrix, 1, padding)))


def paste_region(
    matrix: np.ndarray, frame_size: tuple[int, int], padding: float = 0.0
) -> tuple[int, int, int, int] | None:
    """Bounding box ``(left, top, right, bottom)`` of the model's square in the frame; ``None`` if outside."""
    width, height = frame_size
    corners = square_corners(matrix, padding)
    left, top = np.floor(corners.min(axis=0)).astype(int) - REGION_MARGIN
    right, bottom = np.ceil(corners.max(axis=0)).astype(int) + REGION_MARGIN + 1
    left, top = max(int(left), 0), max(int(top), 0)
    right, bottom = min(int(right), width), min(int(bottom), height)
    if right - left < 2 or bottom - top < 2:
        return None
    return left, top, right, bottom


def sharpen(face: np.ndarray, amount: float, radius: float) -> np.ndarray:
    """Unsharp mask: ``face + amount · (face - blur(face))`` with a Gaussian of sigma ``radius``."""
    if amount <= 0:
        return face
    blurred = cv2.GaussianBlur(face, (0, 0), sigmaX=max(radius, 0.5))
    return np.clip(face + amount * (face - blurred), 0.0, 1.0)


def seamless_clone(face: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson-blend ``face`` into ``original`` where ``mask`` is set (``cv2.seamlessClone``)."""
    hard = np.where(mask > 0, 255, 0).astype(np.uint8)
    hard[0, :] = hard[-1, :] = 0  # the clone region must not touch the image border
    hard[:, 0] = hard[:, -1] = 0
    if not hard.any():
        return face
    x, y, w, h = cv2.boundingRect(hard)
    # seamlessClone centres the mask's bounding box on ``centre``: this centre keeps it in place.
    centre = (x + w // 2, y + h // 2)
    cloned = cv2.seamlessClone(
        cv2.convertScaleAbs(face, alpha=255.0), original, hard, centre, cv2.NORMAL_CLONE
    )
    return cloned.astype(np.float32) / 255.0


def _coverage(matrix: np.ndarray, side: int, shape: tuple[int, int], padding: float) -> np.ndarray:
    """Where the warped model's square holds only face pixels, as a hard ``0``/``1`` mask.

    The square's edge, which interpolation blends with the black outside, is
    left out: the square is inset by :data:`COVERAGE_INSET` of its pixels.
    """
    corners = square_corners(matrix, padding, COVERAGE_INSET / side)
    canvas = fill_convex(np.zeros(shape, np.uint8), corners, 1, anti_alias=False)
    return canvas.astype(np.float32)


@dataclass(frozen=True)
class FaceMask:
    """Where one swapped face goes in its frame, and its blend mask there.

    Attributes
    ----------
    region
        ``(left, top, right, bottom)`` of the region of the frame the face may change.
    matrix
        The face's alignment on the region's pixel grid (region pixels to unit face space).
    alpha
        The blend mask on the region's grid, ``float32`` in ``[0, 1]``.
    padding
        Where the unit face square lies in the model's square (see :class:`SwappedFace`).
    """

    region: tuple[int, int, int, int]
    matrix: np.ndarray
    alpha: np.ndarray
    padding: float = 0.0

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the region."""
        left, top, right, bottom = self.region
        return right - left, bottom - top


def face_mask(swapped: SwappedFace, frame_size: tuple[int, int], options: BlendOptions) -> FaceMask | None:
    """The region of a frame of ``frame_size`` (width, height) where ``swapped`` goes, and its blend mask.

    ``None`` when the face square lies outside the frame.
    """
    padding = swapped.padding
    region = paste_region(swapped.matrix, frame_size, padding)
    if region is None:
        return None
    left, top, right, bottom = region
    size = (right - left, bottom - top)
    # The alignment of the region's pixel grid: frame point p is region point p - (left, top).
    matrix = np.array(swapped.matrix, dtype=np.float64)
    matrix[:, 2] += matrix[:, :2] @ np.array([left, top], dtype=np.float64)
    side = swapped.face.shape[0]
    learned = None
    if options.mask != "hull":
        learned = warp_to_frame(
            np.asarray(swapped.mask, np.float32).reshape(side, side), matrix, size, padding
        )
    alpha = build_mask(
        options.mask,
        learned=learned,
        landmarks=np.asarray(swapped.landmarks) - np.array([left, top]),
        coverage=_coverage(matrix, side, (size[1], size[0]), padding),
        face_size=face_size(swapped.matrix),
        erode_percent=options.erode,
        blur_percent=options.blur,
    )
    return FaceMask(region, matrix, alpha, padding)


def _to_face_space(image: np.ndarray, mask: FaceMask, side: int) -> np.ndarray:
    """``image`` (on the region's grid) resampled onto the model's ``side``-px square; 0 outside."""
    return cv2.warpAffine(
        image,
        crop_matrix(mask.matrix, side, mask.padding),
        (side, side),
        flags=cv2.INTER_LINEAR,
        borderValue=0,
    )


def match_face_color(
    face: np.ndarray, original: np.ndarray, mask: FaceMask, method: ColorMethod, *, edge: bool = False
) -> np.ndarray:
    """Colour-match the decoder's ``face`` to the ``original`` region's pixels under ``mask``.

    ``method`` matches the whole face's statistics; ``edge`` then gives the
    band along the mask's edge the original's local colour
    (:func:`faceswap.color.match_edge`). Done on the model's face square
    (``s`` x ``s``), where the original and the mask are resampled to: the
    same statistics as on the frame (the alignment is a similarity, so every
    face pixel stands for the same area), at a cost that does not grow with
    the face's size in the frame.
    """
    if method == "none" and not edge:
        return face
    side = face.shape[0]
    target = _to_face_space(original, mask, side).astype(np.float32) / 255.0
    weights = _to_face_space(mask.alpha, mask, side)
    matched = match_color(face, target, weights, method)
    return match_edge(matched, target, weights) if edge else matched


def paste_face(frame: np.ndarray, swapped: SwappedFace, options: BlendOptions) -> None:
    """Paste one swapped face into ``frame`` (RGB ``uint8``, modified in place)."""
    height, width = frame.shape[:2]
    mask = face_mask(swapped, (width, height), options)
    if mask is None or not mask.alpha.any():
        return
    left, top, right, bottom = mask.region
    alpha = mask.alpha
    original = frame[top:bottom, left:right]
    face = match_face_color(
        np.asarray(swapped.face, np.float32),
        original,
        mask,
        options.color,
        edge=options.edge_color and not options.seamless,  # Poisson matches the edge itself
    )
    face = warp_to_frame(face, mask.matrix, mask.size, mask.padding)
    model_pixel = face_size(swapped.matrix) / (1.0 - 2.0 * mask.padding) / swapped.face.shape[0]
    face = sharpen(face, options.sharpen, model_pixel)
    if options.seamless:
        face = seamless_clone(face, original, alpha)
    # (alpha · face + (1 - alpha) · frame) in one OpenCV pass; where alpha is 0 the frame's exact pixels.
    frame[top:bottom, left:right] = cv2.blendLinear(
        cv2.convertScaleAbs(face, alpha=255.0), original, alpha, 1.0 - alpha
    )


def paste_faces(frame: np.ndarray, faces: Sequence[SwappedFace], options: BlendOptions) -> np.ndarray:
    """A copy of ``frame`` with every face of ``faces`` pasted in (in order)."""
    result = np.array(frame, copy=True)
    for swapped in faces:
        paste_face(result, swapped, options)
    return result
