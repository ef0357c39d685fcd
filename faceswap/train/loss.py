"""Losses: face reconstruction weighted by the landmark masks, and the mask itself.

Each side's loss is computed on its decoder's output against the unwarped
target face:

*face loss* (``--loss``): ``mae`` (mean absolute error, the classic choice) or
``ssim`` (structural dissimilarity ``(1 - SSIM) / 2``, 11-px Gaussian window),
averaged with a per-pixel weight ``background + (1 - background)·hull +
eye_mouth·features`` and divided by the mean weight, so it stays on the scale
of a plain MAE (``--target-loss 0.02`` means about 2 % mean error inside the
face). The weight concentrates the network on the face the mask will paste,
and optionally more on the eyes and mouth, where people look first.

*mask loss*: mean absolute error between the decoder's mask and the face's
landmark hull, scaled by ``mask_weight`` (default 0.1). It trains the mask
convert blends with. The mask head shares its decoder's layers with the face:
at weight 1 its early error (about 0.5, against 0.1 for the face) dominated
them and the face loss rose for dozens of steps before it fell; at 0.1 the
mask still learns (error 0.49 to 0.13 in 60 lite steps) and the face loss
falls from the start.

All functions take ``float32`` tensors in ``[0, 1]``, shaped
``(batch, size, size, channels)``, and return one scalar per call (the mean
over the batch).
"""

from __future__ import annotations

import numpy as np

from faceswap.runtime import tf
from faceswap.train.config import LOSSES

#: SSIM constants for images in [0, 1] (Wang et al. 2004).
_C1, _C2 = 0.01**2, 0.03**2
_SSIM_WINDOW, _SSIM_SIGMA = 11, 1.5


def pixel_weights(masks, background: float, eye_mouth: float):
    """Per-pixel loss weight ``(b, s, s, 1)`` from the hull (channel 0) and eyes/mouth (channel 1)."""
    hull, features = masks[..., :1], masks[..., 1:2]
    return background + (1.0 - background) * hull + eye_mouth * features


def weighted_mae(target, prediction, weight):
    """Mean absolute error weighted per pixel, normalised by the mean weight."""
    error = tf.reduce_mean(tf.abs(target - prediction), axis=-1, keepdims=True)
    return tf.reduce_sum(error * weight) / tf.maximum(tf.reduce_sum(weight), 1e-6)


def _gaussian_kernel(channels: int):
    offsets = np.arange(_SSIM_WINDOW, dtype=np.float64) - (_SSIM_WINDOW - 1) / 2
    line = np.exp(-(offsets**2) / (2 * _SSIM_SIGMA**2))
    line /= line.sum()
    kernel = np.outer(line, line).astype(np.float32)
    return tf.constant(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)))


def ssim_map(target, prediction):
    """Per-pixel, per-channel SSIM over an 11-px Gaussian window (valid positions only)."""
    kernel = _gaussian_kernel(target.shape[-1])

    def blur(x):
        return tf.nn.depthwise_conv2d(x, kernel, strides=(1, 1, 1, 1), padding="VALID")

    mean_t, mean_p = blur(target), blur(prediction)
    var_t = blur(target * target) - mean_t * mean_t
    var_p = blur(prediction * prediction) - mean_p * mean_p
    covariance = blur(target * prediction) - mean_t * mean_p
    numerator = (2 * mean_t * mean_p + _C1) * (2 * covariance + _C2)
    denominator = (mean_t * mean_t + mean_p * mean_p + _C1) * (var_t + var_p + _C2)
    return numerator / denominator


def weighted_dssim(target, prediction, weight):
    """Structural dissimilarity ``(1 - SSIM) / 2`` weighted per pixel, normalised by the mean weight."""
    margin = (_SSIM_WINDOW - 1) // 2
    dissimilarity = tf.reduce_mean((1.0 - ssim_map(target, prediction)) / 2.0, axis=-1, keepdims=True)
    weight = weight[:, margin:-margin, margin:-margin, :]
    return tf.reduce_sum(dissimilarity * weight) / tf.maximum(tf.reduce_sum(weight), 1e-6)


def face_loss(name: str):
    """The face loss called ``name`` (one of :data:`LOSSES`)."""
    if name == "mae":
        return weighted_mae
    if name == "ssim":
        return weighted_dssim
    raise ValueError(f"unknown loss {name!r} (choose from {', '.join(LOSSES)})")


def mask_loss(hull, prediction):
    """Mean absolute error between a predicted mask and the landmark hull."""
    return tf.reduce_mean(tf.abs(hull - prediction))
