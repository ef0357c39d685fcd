"""Augmentation: shapes and ranges, the geometry of the transform, an unwarped target, reproducibility."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from faceswap.augment import (
    AugmentConfig,
    _warp_grids,
    _warped_maps,
    augment_batch,
    inverse_index_matrices,
    random_matrices,
    random_warp_fields,
    source_extent,
    transform_landmarks,
)

SIZE = 64
#: A 256-px source whose face region (64..192) is exactly twice the output size.
BOX = (64.0, 192.0)


@pytest.fixture(scope="module")
def sources() -> np.ndarray:
    """Four textured 256-px images (smooth gradients plus detail, so warps and shifts show)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    images = []
    for index in range(4):
        base = np.stack([x, y, (x + y) / 2], axis=-1) * (0.6 + 0.1 * index)
        detail = cv2.GaussianBlur(rng.normal(0, 40, (256, 256, 3)).astype(np.float32), (0, 0), 2)
        images.append(np.clip(base + detail, 0, 255).astype(np.uint8))
    return np.stack(images)


def test_shapes_types_and_ranges(sources: np.ndarray) -> None:
    config = replace(AugmentConfig(), colour=1.0)
    batch = augment_batch(sources, BOX, SIZE, config, np.random.default_rng(1))
    for images in (batch.warped, batch.target):
        assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == np.uint8
        assert images.std() > 10  # real content, not a constant or a black border
    assert batch.matrices.shape == (4, 2, 3)


def test_no_augmentation_is_the_area_resized_face_region(sources: np.ndarray) -> None:
    batch = augment_batch(sources, BOX, SIZE, AugmentConfig.none(), np.random.default_rng(0))
    start, stop = int(BOX[0]), int(BOX[1])
    for source, target in zip(sources, batch.target, strict=True):
        expected = cv2.resize(source[start:stop, start:stop], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        assert np.abs(target.astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(batch.warped, batch.target)


def test_the_target_is_not_warped(sources: np.ndarray) -> None:
    warped_config = AugmentConfig()  # transform and warp
    plain_config = replace(warped_config, warp=0.0)  # the same transform, no warp
    warped = augment_batch(sources, BOX, SIZE, warped_config, np.random.default_rng(5))
    plain = augment_batch(sources, BOX, SIZE, plain_config, np.random.default_rng(5))
    np.testing.assert_array_equal(warped.matrices, plain.matrices)
    np.testing.assert_array_equal(warped.target, plain.target)  # the warp leaves the target alone
    np.testing.assert_array_equal(plain.warped, plain.target)
    difference = np.abs(warped.warped.astype(int) - warped.target).mean()
    assert difference > 2  # ... while the input is visibly bent
    # A vanishing warp bends nothing: the warped input is the target, pixel for pixel (± rounding).
    tiny = augment_batch(sources, BOX, SIZE, replace(warped_config, warp=1e-7), np.random.default_rng(5))
    np.testing.assert_array_equal(tiny.target, plain.target)
    assert np.abs(tiny.warped.astype(int) - tiny.target).max() <= 1


def test_warp_moves_pixels_by_about_sigma() -> None:
    sigma = 5 / 160 * SIZE
    fields = random_warp_fields(200, SIZE, sigma, np.random.default_rng(3))
    assert fields.shape == (200, SIZE, SIZE, 2)
    spread = fields.std()
    assert 0.5 * sigma < spread < 1.3 * sigma
    # Smooth: neighbouring pixels move almost alike.
    assert np.abs(np.diff(fields, axis=1)).max() < sigma


def test_image_and_landmarks_move_together(sources: np.ndarray) -> None:
    """A dot placed at a point lands where transform_landmarks sends that point (masks depend on it)."""
    config = AugmentConfig(rotation=10, zoom=0.05, shift=0.05, flip=0.5, warp=0.0)
    dot = np.zeros((16, 256, 256, 3), np.uint8)
    point = np.array([100.5, 150.5])  # continuous coordinates: the centre of pixel (100, 150)
    cv2.circle(dot[0], (100, 150), 3, (255, 255, 255), -1)
    dot[1:] = dot[0]
    batch = augment_batch(dot, BOX, SIZE, config, np.random.default_rng(11))
    moved = transform_landmarks(np.broadcast_to(point, (16, 1, 2)), batch.matrices)[:, 0]
    mirrored = batch.matrices[:, 0, 0] * batch.matrices[:, 1, 1] < 0
    assert 0 < mirrored.sum() < 16  # some flipped, some not
    for image, expected in zip(batch.target, moved, strict=True):
        weights = image[..., 0].astype(np.float64)
        ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
        centre = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
        assert np.linalg.norm(centre - expected) < 0.5


@pytest.mark.parametrize(
    "config",
    [AugmentConfig(), AugmentConfig(rotation=30, zoom=0.2, shift=0.1, warp=0.06)],
    ids=["default", "strong"],
)
def test_source_extent_bounds_every_sampled_pixel(config: AugmentConfig) -> None:
    """Faces are stored with source_extent() of padding: augmentation must never sample beyond it."""
    count, side = 500, BOX[1] - BOX[0]
    rng = np.random.default_rng(7)
    inverse = inverse_index_matrices(random_matrices(count, BOX, SIZE, config, rng))
    maps = _warped_maps(inverse, SIZE, _warp_grids(count, config.warp * SIZE, rng))
    centre = (BOX[0] + BOX[1]) / 2 - 0.5  # pixel-index coordinates
    reach = np.abs(maps - centre).max() / (side / 2)  # in face-region sides
    extent = source_extent(config)
    assert reach <= extent and reach > 0.85 * extent, (reach, extent)  # a bound, and not a loose one
    assert source_extent(AugmentConfig.none()) == 1.0


def test_flip_mirrors_the_face(sources: np.ndarray) -> None:
    flipped = augment_batch(
        sources, BOX, SIZE, replace(AugmentConfig.none(), flip=1.0), np.random.default_rng(0)
    )
    plain = augment_batch(sources, BOX, SIZE, AugmentConfig.none(), np.random.default_rng(0))
    np.testing.assert_array_equal(flipped.target, plain.target[:, :, ::-1])


def test_colour_jitter_changes_input_and_target_alike(sources: np.ndarray) -> None:
    config = replace(AugmentConfig.none(), colour=1.0)
    jittered = augment_batch(sources, BOX, SIZE, config, np.random.default_rng(2))
    plain = augment_batch(sources, BOX, SIZE, AugmentConfig.none(), np.random.default_rng(2))
    np.testing.assert_array_equal(jittered.warped, jittered.target)
    assert np.abs(jittered.target.astype(int) - plain.target).mean() > 3


def test_a_fixed_seed_reproduces_a_batch(sources: np.ndarray) -> None:
    config = replace(AugmentConfig(), colour=0.5)
    first = augment_batch(sources, BOX, SIZE, config, np.random.default_rng(42))
    again = augment_batch(sources, BOX, SIZE, config, np.random.default_rng(42))
    other = augment_batch(sources, BOX, SIZE, config, np.random.default_rng(43))
    np.testing.assert_array_equal(first.warped, again.warped)
    np.testing.assert_array_equal(first.target, again.target)
    assert not np.array_equal(first.warped, other.warped)


@pytest.mark.parametrize(
    "changes", [{"rotation": -1}, {"zoom": 0.9}, {"flip": 1.5}, {"warp": float("nan")}, {"colour": 2}]
)
def test_invalid_strengths_are_refused(changes: dict) -> None:
    with pytest.raises(ValueError, match="augmentation"):
        replace(AugmentConfig(), **changes)
