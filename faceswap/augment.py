"""Training augmentation: random transform, random warp and colour jitter, a batch at a time.

An autoencoder trained on clean faces learns to copy pixels. Two kinds of
noise make it learn faces instead:

*Random transform* (rotation ±10°, zoom ±5 %, shift ±5 %, horizontal flip with
p = 0.5) shows each face in slightly different framings. It is applied to the
input *and* the target alike: the network must reproduce the framing it sees.

*Random warp* moves the points of a 5x5 grid laid over the face by Gaussian
noise (σ = 5 px of the 160-px face region of a 256-px crop, the classic
setting) and bends the input image with the smooth field interpolated between
them. The target is the same face *without* the warp, so the network learns to
undo small distortions of eyes, nose and mouth: exactly what it must do when it
decodes A's face with B's decoder.

*Colour* (optional): random contrast, brightness and colour balance, applied to
input and target alike, so the model does not tie an identity to one lighting.

Geometry
--------
Sources are whole aligned crops (with their padding, so rotated or shifted
views never reach past the image) in which the model's face region is the
square ``face_box = (start, stop)`` (pixels, both axes). Outputs are
``size`` x ``size`` views of that region. Coordinates are continuous (pixel
``i`` spans ``[i, i + 1)``), so with no augmentation and a source face region
of exactly twice the output size, bilinear sampling averages 2x2 blocks: the
target is then exactly ``cv2.resize(..., INTER_AREA)`` of the face region.

Everything random is drawn from the ``numpy.random.Generator`` passed in, so a
fixed seed reproduces a batch bit for bit. The per-image work is two
``cv2.remap`` calls; the geometry is computed for the whole batch with NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from faceswap.thin_plate import thin_plate_field

#: Warp grid points per side.
WARP_GRID = 5
#: Warp to landmarks evaluates its thin-plate spline on this many cells a side, then resizes.
LANDMARK_WARP_GRID = 16


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly to augment (all zero/false: no augmentation at all).

    Attributes
    ----------
    rotation
        Largest rotation in degrees (uniform in ``±rotation``).
    zoom
        Largest relative zoom (uniform scale in ``1 ± zoom``).
    shift
        Largest shift as a fraction of the face size (each axis, uniform).
    flip
        Probability of a horizontal flip.
    warp
        Standard deviation of the warp grid's movement as a fraction of the
        face size (5 px of a 160-px face region: 0.03125).
    colour
        Strength of the colour jitter, 0 to 1 (0: off).
    to_landmarks
        "Warp to landmarks": bend each input towards the landmarks of a
        similar face of the other side (a thin-plate spline) instead of the
        random grid warp, so the network learns to paint its own person's
        face shape over the other's (what it must do in convert). On by
        default: against the random warp it gave more detail and a smaller
        pose offset on both benchmark pairs (README, "What to expect").
    warp_jitter
        With ``to_landmarks``: standard deviation of a random grid warp added
        on top of the warp to landmarks, as a fraction of the face size like
        ``warp`` (0: off, the default). The landmark warp alone bends a face
        only as far as the other side's faces differ from it; the jitter
        adds the random warp's variety to it.
    """

    rotation: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    flip: float = 0.5
    warp: float = 5 / 160
    colour: float = 0.0
    to_landmarks: bool = True
    warp_jitter: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"augmentation {name} must be a finite number >= 0, got {value!r}")
        limits = {"flip": 1.0, "colour": 1.0, "zoom": 0.5, "shift": 0.5, "warp": 0.25, "warp_jitter": 0.25}
        for name, limit in limits.items():
            value = getattr(self, name)
            if value > limit:
                raise ValueError(f"augmentation {name} must be at most {limit:g}, got {value!r}")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation: the plain face region (previews, tests)."""
        return cls(rotation=0.0, zoom=0.0, shift=0.0, flip=0.0, warp=0.0, colour=0.0, to_landmarks=False)


@dataclass(frozen=True)
class AugmentedBatch:
    """One augmented batch.

    Attributes
    ----------
    warped
        The network's input: transformed and warped faces, ``uint8``
        ``(n, size, size, 3)``.
    target
        The same faces transformed but not warped, ``uint8``.
    matrices
        ``(n, 2, 3)`` matrices from source to output coordinates (continuous
        pixel coordinates), e.g. to move landmarks along with the faces.
    """

    warped: np.ndarray
    target: np.ndarray
    matrices: np.ndarray


def source_extent(config: AugmentConfig) -> float:
    """Side of the source square, centred on the face region, that augmentation can sample.

    In face-region sides (1.0: the face region alone). The output's corners
    reach furthest when the face is zoomed out by ``zoom``, rotated by
    ``rotation``, shifted by ``shift`` and warped outwards by three standard
    deviations. Beyond this square, sampling finds the border reflected
    (``cv2.BORDER_REFLECT101``). The defaults need 1.52: a 256-px crop
    (1.6 face sides) holds it all.
    """
    angle = math.radians(min(config.rotation, 45.0))
    half = 0.5 * (math.cos(angle) + math.sin(angle)) + config.shift + 3.0 * (config.warp + config.warp_jitter)
    return 2.0 * half / (1.0 - config.zoom)


def random_matrices(
    count: int, face_box: tuple[float, float], size: int, config: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Random similarity matrices (with optional mirror) from source to output coordinates.

    Parameters
    ----------
    count
        Number of matrices.
    face_box
        ``(start, stop)`` of the face region in the source, in pixels.
    size
        Side of the output.
    config, rng
        Strengths and the random generator.

    Returns
    -------
    numpy.ndarray
        ``(count, 2, 3)`` float64; with no augmentation each maps the face
        region onto ``[0, size]²``.
    """
    start, stop = face_box
    centre = (start + stop) / 2.0
    base = size / float(stop - start)
    angle = np.radians(rng.uniform(-config.rotation, config.rotation, count))
    scale = base * rng.uniform(1.0 - config.zoom, 1.0 + config.zoom, count)
    shift = rng.uniform(-config.shift, config.shift, (count, 2)) * size
    mirror = np.where(rng.random(count) < config.flip, -1.0, 1.0)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    matrices = np.empty((count, 2, 3))
    # Rotation·scale times diag(mirror, 1): mirroring flips the x column.
    matrices[:, 0, 0] = cos * mirror
    matrices[:, 0, 1] = -sin
    matrices[:, 1, 0] = sin * mirror
    matrices[:, 1, 1] = cos
    matrices[:, :, 2] = size / 2.0 + shift - matrices[:, :, :2] @ np.array([centre, centre])
    return matrices


def _interpolation_matrix(size: int) -> np.ndarray:
    """``(size, WARP_GRID)`` weights that interpolate grid values smoothly over ``size`` pixels."""
    return cv2.resize(np.eye(WARP_GRID, dtype=np.float32), (WARP_GRID, size), interpolation=cv2.INTER_CUBIC)


def _warp_grids(count: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian offsets of the 5x5 grid points, ``(2, count, 5, 5)`` (x and y)."""
    return rng.normal(0.0, 1.0, (2, count, WARP_GRID, WARP_GRID)).astype(np.float32) * np.float32(sigma)


def _interpolate(grids: np.ndarray, size: int) -> np.ndarray:
    """``(2, n, 5, 5)`` grid values → ``(2, n, size, size)`` smooth fields (bicubic)."""
    weights = _interpolation_matrix(size)
    return weights @ grids @ weights.T


def random_warp_fields(count: int, size: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacement fields, ``(count, size, size, 2)`` float32 in output pixels.

    A 5x5 grid of Gaussian offsets with standard deviation ``sigma`` (output
    pixels), interpolated bicubically over the whole output.
    """
    return np.moveaxis(_interpolate(_warp_grids(count, sigma, rng), size), 0, -1)


def inverse_index_matrices(matrices: np.ndarray) -> np.ndarray:
    """Matrices from output to source *pixel-index* coordinates (``cv2.WARP_INVERSE_MAP``), ``(n, 2, 3)``.

    Pixel ``i`` has its centre at continuous coordinate ``i + 0.5``.
    """
    inverse = np.empty_like(matrices)
    inverse[:, :, :2] = np.linalg.inv(matrices[:, :, :2])
    inverse[:, :, 2] = np.einsum("nij,nj->ni", inverse[:, :, :2], 0.5 - matrices[:, :, 2]) - 0.5
    return inverse


def _warped_maps(inverse: np.ndarray, size: int, grids: np.ndarray) -> np.ndarray:
    """``cv2.remap`` maps ``(2, n, size, size)``: each output pixel, moved by the warp, in the source.

    The warp's grid offsets (output pixels) are turned into source pixels first
    (a 2x2 product per grid point), so interpolation yields source offsets
    directly, and the map is that plus the affine part.
    """
    linear = inverse[:, :, :2].astype(np.float32)
    source_grids = np.einsum("nij,jnyx->inyx", linear, grids)
    return _plus_affine(_interpolate(source_grids, size), inverse, size)


def _field_maps(inverse: np.ndarray, fields: np.ndarray) -> np.ndarray:
    """``cv2.remap`` maps ``(2, n, size, size)`` of dense displacements ``(n, size, size, 2)`` (output px)."""
    linear = inverse[:, :, :2].astype(np.float32)
    offsets = np.einsum("nij,nyxj->inyx", linear, fields.astype(np.float32))
    return _plus_affine(offsets, inverse, fields.shape[1])


def _plus_affine(maps: np.ndarray, inverse: np.ndarray, size: int) -> np.ndarray:
    """Source offsets ``(2, n, size, size)`` plus the affine part of each output pixel's source position."""
    linear = inverse[:, :, :2].astype(np.float32)
    pixels = np.arange(size, dtype=np.float32)
    for axis in (0, 1):
        maps[axis] += linear[:, axis, 0, None, None] * pixels[None, None, :]
        maps[axis] += linear[:, axis, 1, None, None] * pixels[None, :, None]
        maps[axis] += inverse[:, axis, 2, None, None].astype(np.float32)
    return maps


def landmark_warp_fields(own: np.ndarray, partner: np.ndarray, size: int) -> np.ndarray:
    """Fields that bend each face so that its landmarks land on its partner's, ``(n, size, size, 2)``.

    Parameters
    ----------
    own, partner
        ``(n, k, 2)`` landmarks of each face and of the face it is warped
        towards, in continuous *output* pixels (after the random transform).
    size
        Side of the output.

    Returns
    -------
    numpy.ndarray
        Displacements in output pixels: sampling the unwarped view at
        ``x + field(x)`` puts the feature found at ``own[i]`` at ``partner[i]``
        (a thin-plate spline through the landmarks, the border pinned).
    """
    return np.stack(
        [
            thin_plate_field(targets, sources - targets, size, grid=LANDMARK_WARP_GRID)
            for sources, targets in zip(np.asarray(own), np.asarray(partner), strict=True)
        ]
    )


def colour_jitter(
    images: tuple[np.ndarray, ...], strength: float, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """The same random contrast, brightness and colour balance applied to each image batch.

    At ``strength`` 1: contrast ×(1 ± 0.3), brightness ± 0.15, per-channel
    offsets ± 0.08 (of the full range), drawn once per face.
    """
    count = len(images[0])
    contrast = 1.0 + rng.uniform(-0.3, 0.3, (count, 1, 1, 1)) * strength
    offset = (
        (rng.uniform(-0.15, 0.15, (count, 1, 1, 1)) + rng.uniform(-0.08, 0.08, (count, 1, 1, 3)))
        * strength
        * 255.0
    )
    results = []
    for batch in images:
        values = batch.astype(np.float32)
        mean = values.mean(axis=(1, 2, 3), keepdims=True)
        values = (values - mean) * contrast.astype(np.float32) + mean + offset.astype(np.float32)
        results.append(np.clip(values + 0.5, 0, 255).astype(np.uint8))
    return tuple(results)


def augment_batch(
    images: np.ndarray | Sequence[np.ndarray],
    face_box: tuple[float, float],
    size: int,
    config: AugmentConfig,
    rng: np.random.Generator,
    warp_to: tuple[np.ndarray, np.ndarray] | None = None,
) -> AugmentedBatch:
    """Augment a batch of aligned crops into network inputs and targets.

    Parameters
    ----------
    images
        ``uint8`` RGB sources (whole crops, padding included): an array
        ``(n, h, w, 3)``, or a sequence of such images (views: no copy).
    face_box
        ``(start, stop)`` of the face region in the sources, pixels.
    size
        Side of the outputs (the model's input size).
    config
        Augmentation strengths.
    rng
        The only source of randomness.
    warp_to
        "Warp to landmarks": ``(own, partner)``, each ``(n, k, 2)`` landmarks
        in source coordinates, of each face and of a face (of the other
        person) to bend it towards. The input is then bent by that
        thin-plate warp instead of the random grid (``config.warp`` unused;
        a random grid of ``config.warp_jitter`` is added to it); the target
        stays unwarped.

    Returns
    -------
    AugmentedBatch
        Warped inputs, unwarped targets and the transform of each face.
    """
    count = len(images)
    matrices = random_matrices(count, face_box, size, config, rng)
    inverse = inverse_index_matrices(matrices)
    if warp_to is not None:
        own, partner = (transform_landmarks(np.asarray(points, np.float64), matrices) for points in warp_to)
        fields = landmark_warp_fields(own, partner, size)
        if config.warp_jitter > 0:
            fields += random_warp_fields(count, size, config.warp_jitter * size, rng)
        maps = _field_maps(inverse, fields)
    elif config.warp > 0:
        maps = _warped_maps(inverse, size, _warp_grids(count, config.warp * size, rng))
    else:
        maps = None
    target = np.empty((count, size, size, 3), np.uint8)
    warped = np.empty_like(target) if maps is not None else target
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for index in range(count):
        image = images[index]
        cv2.warpAffine(
            image,
            inverse[index],
            (size, size),
            dst=target[index],
            flags=flags,
            borderMode=cv2.BORDER_REFLECT101,
        )
        if maps is not None:
            cv2.remap(
                image,
                maps[0, index],
                maps[1, index],
                dst=warped[index],
                interpolation=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT101,
            )
    if maps is None:
        warped = target.copy()
    if config.colour > 0:
        warped, target = colour_jitter((warped, target), config.colour, rng)
    return AugmentedBatch(warped=warped, target=target, matrices=matrices)


def transform_landmarks(landmarks: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Move ``(n, k, 2)`` points (continuous source coordinates) through ``(n, 2, 3)`` matrices."""
    return landmarks @ np.swapaxes(matrices[:, :, :2], 1, 2) + matrices[:, None, :, 2]
