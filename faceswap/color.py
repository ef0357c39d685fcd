"""Colour matching: make the swapped face take on the colours of the face it replaces.

The decoder paints faces in the lighting of its training set; pasted into
another clip they look stuck on. Each method here moves the swapped face's
colour statistics towards those of the original frame, both measured **only
within the blend mask** (background, hair and the model's square edges do not
count), and applies the change to the whole swapped face (``--color``):

``none``
    Leave the colours as the decoder made them.
``mean``
    Shift each RGB channel so its mean equals the original's.
``reinhard`` (default)
    Reinhard et al. (2001), "Color transfer between images": match mean and
    standard deviation of each channel in CIE L*a*b*, where lightness and
    the two colour axes are nearly independent.
``hist``
    Histogram matching of each RGB channel (the swapped face's cumulative
    histogram mapped onto the original's).

All functions take and return ``float32`` RGB images in ``[0, 1]`` and a
``float32`` mask of the same height and width; the mask's values weigh the
pixels (``mean`` and ``reinhard``) or, above one half, select them (``hist``).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

ColorMethod = Literal["none", "mean", "reinhard", "hist"]
COLOR_METHODS: tuple[ColorMethod, ...] = ("none", "mean", "reinhard", "hist")
DEFAULT_COLOR: ColorMethod = "reinhard"

#: Fewer masked pixels than this and the statistics mean nothing: colours are left alone.
MIN_PIXELS = 16
#: Bounds of the standard-deviation ratio in Reinhard transfer, so a flat face is not blown up.
MAX_CONTRAST_RATIO = 4.0
#: Width of the band along the mask's edge whose colour :func:`match_edge` takes from the original
#: frame, as a fraction of the side of the model's square (0.25 left a larger step: its wider blur
#: follows the frame's shading less closely).
EDGE_WIDTH = 0.15


def _weighted_stats(image: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of ``image``'s pixels, weighted by ``weights``.

    Two matrix-vector products (BLAS) in ``float32`` over every pixel, the
    second on values centred by the first: a few milliseconds less per face
    than gathering the masked pixels, and as exact (pixels of weight 0 add 0).
    """
    channels = image.shape[-1]
    values = np.ascontiguousarray(image, dtype=np.float32).reshape(-1, channels)
    w = np.ascontiguousarray(weights, dtype=np.float32).reshape(-1)
    total = float(w.sum(dtype=np.float64))
    mean = (w @ values).astype(np.float64) / total
    centred = values - mean.astype(np.float32)
    np.square(centred, out=centred)
    variance = (w @ centred).astype(np.float64) / total
    return mean, np.sqrt(np.maximum(variance, 0.0))


def _enough(mask: np.ndarray) -> bool:
    return int(np.count_nonzero(mask >= 0.5)) >= MIN_PIXELS


def match_mean(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift each channel of ``face`` so its masked mean equals that of ``target``."""
    if not _enough(mask):
        return face
    face_mean, _ = _weighted_stats(face, mask)
    target_mean, _ = _weighted_stats(target, mask)
    return np.clip(face + (target_mean - face_mean).astype(np.float32), 0.0, 1.0)


def match_reinhard(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match mean and standard deviation of each L*a*b* channel within the mask (Reinhard transfer)."""
    if not _enough(mask):
        return face
    face_lab = cv2.cvtColor(np.ascontiguousarray(face, dtype=np.float32), cv2.COLOR_RGB2Lab)
    inside = mask > 0
    # Of the original, only the masked pixels are needed (as a one-row image).
    target_lab = cv2.cvtColor(np.ascontiguousarray(target[inside][None], dtype=np.float32), cv2.COLOR_RGB2Lab)
    face_mean, face_std = _weighted_stats(face_lab, mask)
    target_mean, target_std = _weighted_stats(target_lab[0], mask[inside])
    ratio = np.clip(target_std / np.maximum(face_std, 1e-6), 1 / MAX_CONTRAST_RATIO, MAX_CONTRAST_RATIO)
    moved = (face_lab - face_mean.astype(np.float32)) * ratio.astype(np.float32) + target_mean.astype(
        np.float32
    )
    return np.clip(cv2.cvtColor(moved, cv2.COLOR_Lab2RGB), 0.0, 1.0)


def match_histogram(face: np.ndarray, target: np.ndarray, mask: np.ndarray, levels: int = 256) -> np.ndarray:
    """Map each channel of ``face`` so its distribution within the mask matches ``target``'s.

    A value at quantile ``q`` of the swapped face (within the mask) becomes
    the value at quantile ``q`` of the original; the mapping is tabulated on
    ``levels`` values and interpolated, so it stays monotonic and smooth.
    """
    inside = mask >= 0.5
    if int(np.count_nonzero(inside)) < MIN_PIXELS:
        return face
    grid = np.linspace(0.0, 1.0, levels)
    result = np.empty_like(face, dtype=np.float32)
    for channel in range(face.shape[-1]):
        source = np.sort(face[..., channel][inside])
        reference = np.sort(target[..., channel][inside])
        # Mid-rank quantile of each grid value among the swapped face's pixels.
        ranks = (np.searchsorted(source, grid, "left") + np.searchsorted(source, grid, "right")) / 2
        quantiles = ranks / len(source)
        mapped = np.interp(quantiles, np.linspace(0.0, 1.0, len(reference)), reference)
        result[..., channel] = np.interp(face[..., channel], grid, mapped).astype(np.float32)
    return result


def match_edge(
    face: np.ndarray, target: np.ndarray, mask: np.ndarray, width: float = EDGE_WIDTH
) -> np.ndarray:
    """Give the swapped face the original's local colour along the mask's edge, fading to none inside.

    Matching the statistics of the whole face leaves local differences: a
    decoder that paints its person's forehead paler than the cheeks meets a
    frame whose forehead is not, and the paste ends in a step of colour
    where the mask fades (at the forehead, the model's square's edge). Here
    the difference to the original is smoothed over the mask (normalised
    convolution: a Gaussian of ``width / 2`` of the side, pixels weighted by
    the mask, so the background never counts) and added in full over the
    outer half of a band ``width`` of the side wide along the mask's edge
    (where the blend fades), linearly less over its inner half, and not at
    all further in: the eyes, nose and mouth keep the decoder's
    colours (and the global matching's), only the band the blend fades
    through takes the frame's.

    Parameters
    ----------
    face, target
        ``float32`` RGB in ``[0, 1]``, ``(s, s, 3)``: the (already matched) swapped face and
        the original under it.
    mask
        ``float32`` ``(s, s)`` blend weights.
    width
        Width of the band, as a fraction of the side.
    """
    if not _enough(mask):
        return face
    side = face.shape[0]
    weights = np.clip(mask, 0.0, 1.0).astype(np.float32)
    sigma = max(width * side / 2.0, 0.5)
    blur = {"ksize": (0, 0), "sigmaX": sigma, "borderType": cv2.BORDER_CONSTANT}
    total = cv2.GaussianBlur(weights, **blur)
    difference = cv2.GaussianBlur((target - face) * weights[..., None], **blur)
    smooth = difference / np.maximum(total, 1e-3)[..., None]
    inside = cv2.distanceTransform((weights >= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    ramp = np.clip(2.0 * (1.0 - inside / (width * side)), 0.0, 1.0)
    return np.clip(face + smooth * ramp[..., None], 0.0, 1.0).astype(np.float32)


def match_color(face: np.ndarray, target: np.ndarray, mask: np.ndarray, method: ColorMethod) -> np.ndarray:
    """Apply colour matching ``method`` (one of :data:`COLOR_METHODS`)."""
    if method == "none":
        return face
    if method == "mean":
        return match_mean(face, target, mask)
    if method == "reinhard":
        return match_reinhard(face, target, mask)
    if method == "hist":
        return match_histogram(face, target, mask)
    raise ValueError(f"unknown colour method {method!r} (choose from {', '.join(COLOR_METHODS)})")
