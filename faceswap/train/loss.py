"""Losses: face reconstruction weighted by the landmark masks, fine detail, and the mask.

Each side's loss is computed on its decoder's output against the unwarped
target face:

*face loss* (``--loss``): ``mae`` (mean absolute error, the classic choice),
``ssim`` (structural dissimilarity ``(1 - SSIM) / 2``, 11-px Gaussian window),
``mae+dssim`` (their mean: the default of DeepFaceLab and faceswap, MAE for
colour, DSSIM for edges and texture, which MAE alone averages into a blur) or
``ms-ssim`` (multi-scale SSIM, Wang et al. 2003: contrast and structure at
each scale of a 2x pyramid down to the window's size, luminance at the
coarsest; as many of its five scales as the input allows, three at 64 px and
four at 128, weights renormalised; ``(1 - MS-SSIM) / 2``). Each is
averaged with a per-pixel weight ``background + (1 - background)·hull +
eye_mouth·features`` and divided by the mean weight, so it stays on the scale
of a plain MAE (``--target-loss 0.02`` means about 2 % mean error inside the
face). The weight concentrates the network on the face the mask will paste,
and (``eye_mouth``, 2 by default) more on the eyes and mouth, where people look first.

*detail loss* (``--detail-weight``, off by default): how far the amount of
fine detail differs, not where it lies. Each band-pass level of a Laplacian
pyramid (64, 32 and 16 px of a 64-px face) is compared by SSIM's contrast term
alone, ``c = (2 σt σp + C) / (σt² + σp² + C)`` of the two bands' local standard
deviations, and ``1 - c`` is averaged under the same per-pixel weight. The face
losses above all pay most for a flat guess where the detail cannot be
predicted to the pixel (an edge one pixel off costs MAE+DSSIM twice what a
blur of σ 1 px does, and an L1 of the bands the same): that is the soft face.
This term pays for detail present, and leaves its place to the face loss; its
weight decides how much misplaced detail is worth against a blur (at 0.3 an
edge one pixel off beats the blur, noise of σ 0.015 on the blur does not).

*mask loss*: mean absolute error between the decoder's mask and the face's
landmark hull, scaled by ``mask_weight`` (default 0.1). It trains the mask
convert blends with. The mask head shares its decoder's layers with the face:
at weight 1 its early error (about 0.5, against 0.1 for the face) dominated
them and the face loss rose for dozens of steps before it fell; at 0.1 the
mask still learns (error 0.49 to 0.13 in 60 lite steps) and the face loss
falls from the start.

All functions take ``float32`` tensors in ``[0, 1]``, shaped
``(batch, size, size, channels)``, and return one scalar per call (the mean
over the batch). They are written in ``keras.ops``, so they run on every backend.
"""

from __future__ import annotations

import numpy as np

from faceswap.runtime import keras
from faceswap.train.config import LOSSES

ops = keras.ops

#: SSIM constants for images in [0, 1] (Wang et al. 2004).
_C1, _C2 = 0.01**2, 0.03**2
_SSIM_WINDOW, _SSIM_SIGMA = 11, 1.5


def pixel_weights(masks, background: float, eye_mouth: float):
    """Per-pixel loss weight ``(b, s, s, 1)`` from the hull (channel 0) and eyes/mouth (channel 1)."""
    hull, features = masks[..., :1], masks[..., 1:2]
    return background + (1.0 - background) * hull + eye_mouth * features


def weighted_mae(target, prediction, weight):
    """Mean absolute error weighted per pixel, normalised by the mean weight."""
    error = ops.mean(ops.abs(target - prediction), axis=-1, keepdims=True)
    return ops.sum(error * weight) / ops.maximum(ops.sum(weight), 1e-6)


def _gaussian_kernel(channels: int):
    offsets = np.arange(_SSIM_WINDOW, dtype=np.float64) - (_SSIM_WINDOW - 1) / 2
    line = np.exp(-(offsets**2) / (2 * _SSIM_SIGMA**2))
    line /= line.sum()
    kernel = np.outer(line, line).astype(np.float32)
    return ops.convert_to_tensor(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)))


def ssim_map(target, prediction):
    """Per-pixel, per-channel SSIM over an 11-px Gaussian window (valid positions only)."""
    luminance, structure = _ssim_terms(target, prediction)
    return luminance * structure


def _window_mean(x, kernel):
    """Per-channel mean of ``x`` over the window ``kernel`` (:func:`_gaussian_kernel`), valid positions."""
    return ops.depthwise_conv(x, kernel, strides=1, padding="valid")


def _ssim_terms(target, prediction):
    """SSIM's luminance term and its contrast-structure term, per pixel and channel (valid positions)."""
    kernel = _gaussian_kernel(target.shape[-1])

    def blur(x):
        return _window_mean(x, kernel)

    mean_t, mean_p = blur(target), blur(prediction)
    var_t = blur(target * target) - mean_t * mean_t
    var_p = blur(prediction * prediction) - mean_p * mean_p
    covariance = blur(target * prediction) - mean_t * mean_p
    luminance = (2 * mean_t * mean_p + _C1) / (mean_t * mean_t + mean_p * mean_p + _C1)
    structure = (2 * covariance + _C2) / (var_t + var_p + _C2)
    return luminance, structure


def _weighted_mean_valid(values, weight):
    """Mean of a valid-positions map ``values`` under the full-size per-pixel ``weight``."""
    margin = (_SSIM_WINDOW - 1) // 2
    values = ops.mean(values, axis=-1, keepdims=True)
    weight = weight[:, margin:-margin, margin:-margin, :]
    return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1e-6)


def weighted_dssim(target, prediction, weight):
    """Structural dissimilarity ``(1 - SSIM) / 2`` weighted per pixel, normalised by the mean weight."""
    return _weighted_mean_valid((1.0 - ssim_map(target, prediction)) / 2.0, weight)


def weighted_mae_dssim(target, prediction, weight):
    """The mean of :func:`weighted_mae` and :func:`weighted_dssim`."""
    return 0.5 * (weighted_mae(target, prediction, weight) + weighted_dssim(target, prediction, weight))


#: Weights of MS-SSIM's five scales (Wang, Simoncelli and Bovik 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_scales(size: int) -> int:
    """How many scales of MS-SSIM an image of ``size`` px allows (each halves it; the window must fit)."""
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and size // 2**scales >= _SSIM_WINDOW:
        scales += 1
    return scales


def weighted_ms_dssim(target, prediction, weight):
    """``(1 - MS-SSIM) / 2``, each scale's terms weighted per pixel like :func:`weighted_dssim`.

    Terms below a small positive floor are raised to it before the power, so
    that a negative contrast term early in training neither flips the
    product's sign nor gives an infinite gradient.
    """
    scales = ms_ssim_scales(int(target.shape[1]))
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], np.float64)
    weights = weights / weights.sum()
    similarity = 1.0
    for scale, exponent in enumerate(weights):
        if scale:
            target, prediction, weight = (
                ops.average_pool(image, 2, 2, "valid") for image in (target, prediction, weight)
            )
        luminance, structure = _ssim_terms(target, prediction)
        term = structure if scale < scales - 1 else luminance * structure
        similarity *= ops.power(ops.maximum(_weighted_mean_valid(term, weight), 1e-4), float(exponent))
    return (1.0 - similarity) / 2.0


_FACE_LOSSES = {
    "mae": weighted_mae,
    "ssim": weighted_dssim,
    "mae+dssim": weighted_mae_dssim,
    "ms-ssim": weighted_ms_dssim,
}


def face_loss(name: str):
    """The face loss called ``name`` (one of :data:`LOSSES`)."""
    if name in _FACE_LOSSES:
        return _FACE_LOSSES[name]
    raise ValueError(f"unknown loss {name!r} (choose from {', '.join(LOSSES)})")


def laplacian_bands(image, smallest: int = 8) -> list:
    """Band-pass levels of ``image``: each level minus its 2x-downsampled copy scaled back up.

    Levels halve the size until the next would be smaller than ``smallest``
    px: three at 64 px (64, 32 and 16 px), four at 128. The coarse remainder
    is left out (the face loss covers it).
    """
    bands = []
    size = int(image.shape[1])
    while size // 2 >= smallest:
        low = ops.average_pool(image, 2, 2, "valid")
        bands.append(image - ops.image.resize(low, (size, size), interpolation="bilinear"))
        image, size = low, size // 2
    return bands


def _pooled_to(weight, size: int):
    """A per-pixel weight average-pooled by 2 until it is ``size`` px."""
    while int(weight.shape[1]) > size:
        weight = ops.average_pool(weight, 2, 2, "valid")
    return weight


#: Stabiliser of the detail loss's contrast ratio, as SSIM's C2 but for band-pass levels: their
#: local variance on a 64-px face is about 2e-4 (finest level) to 6e-4, under SSIM's 9e-4.
_DETAIL_C = 0.005**2
#: Floor under a local variance before its square root (a standard deviation of at least 0.001),
#: so that the root's gradient stays finite where a band has no variance (a flat output).
_VARIANCE_FLOOR = 1e-6


def weighted_detail_contrast(target, prediction, weight):
    """Mean over the Laplacian pyramid's levels of ``1 - c``, SSIM's contrast term of each level.

    ``c = (2 σt σp + C) / (σt² + σp² + C)`` compares the local standard
    deviations of the target's and the prediction's band (11-px Gaussian
    window), not where their edges lie: a prediction as detailed as the
    target scores 1 wherever its detail sits, a flat one ``C / (σt² + C)``.
    Every other face loss pays most for a flat guess where the fine detail
    cannot be predicted exactly; this term pays for the amount of detail, and
    leaves where it goes to them. ``weight`` is pooled to each level.
    """
    kernel = _gaussian_kernel(target.shape[-1])

    def deviation(band):
        mean = _window_mean(band, kernel)
        return ops.sqrt(ops.maximum(_window_mean(band * band, kernel) - mean * mean, 0.0) + _VARIANCE_FLOOR)

    levels = []
    for band_t, band_p in zip(laplacian_bands(target), laplacian_bands(prediction), strict=True):
        band_weight = _pooled_to(weight, int(band_t.shape[1]))
        sigma_t, sigma_p = deviation(band_t), deviation(band_p)
        contrast = (2 * sigma_t * sigma_p + _DETAIL_C) / (sigma_t * sigma_t + sigma_p * sigma_p + _DETAIL_C)
        levels.append(_weighted_mean_valid(1.0 - contrast, band_weight))
    return sum(levels) / len(levels)


def mask_loss(hull, prediction):
    """Mean absolute error between a predicted mask and the landmark hull."""
    return ops.mean(ops.abs(hull - prediction))
