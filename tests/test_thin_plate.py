"""Thin-plate fields and warp to landmarks: through its points, pinned at the border, features moved."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from faceswap.augment import AugmentConfig, augment_batch, landmark_warp_fields, transform_landmarks
from faceswap.thin_plate import border_anchors, thin_plate_field

SIZE = 64
BOX = (64.0, 192.0)


def test_the_field_passes_through_its_points_and_is_pinned_at_the_border() -> None:
    rng = np.random.default_rng(0)
    points = rng.choice(np.arange(16, 48), (12, 2), replace=False) + 0.5  # pixel centres
    moves = rng.normal(0, 3, (12, 2))
    field = thin_plate_field(points, moves, SIZE, smoothing=0.0)
    for (x, y), move in zip(points, moves, strict=True):
        np.testing.assert_allclose(field[int(y), int(x)], move, atol=1e-3)
    border = np.concatenate([field[0], field[-1], field[:, 0], field[:, -1]])
    assert np.abs(border).max() < 0.5 * np.abs(moves).max()
    assert np.abs(field).max() > 1.0  # it does bend


def test_no_displacement_gives_no_field() -> None:
    field = thin_plate_field(np.array([[20.0, 30.0], [40.0, 35.0]]), np.zeros((2, 2)), SIZE)
    assert np.abs(field).max() < 1e-6


def test_anchors_lie_on_the_border() -> None:
    anchors = border_anchors(SIZE)
    on_edge = np.isclose(anchors, 0).any(axis=1) | np.isclose(anchors, SIZE).any(axis=1)
    assert on_edge.all() and len(np.unique(anchors, axis=0)) == len(anchors)


def test_warp_to_the_same_landmarks_is_no_warp() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (3, 256, 256, 3), dtype=np.uint8)
    images = cv2.GaussianBlur(images.reshape(256 * 3, 256, 3), (0, 0), 3).reshape(3, 256, 256, 3)
    landmarks = rng.uniform(90, 170, (3, 68, 2))
    config = AugmentConfig()
    batch = augment_batch(images, BOX, SIZE, config, np.random.default_rng(2), warp_to=(landmarks, landmarks))
    assert np.abs(batch.warped.astype(int) - batch.target).max() <= 1
    plain = augment_batch(images, BOX, SIZE, replace(config, warp=0.0), np.random.default_rng(2))
    np.testing.assert_array_equal(batch.target, plain.target)  # the target is never warped


def test_a_feature_lands_on_the_partners_landmark() -> None:
    """A dot at the face's own landmark appears, in the warped input, where the partner's landmark is."""
    own_point, partner_point = np.array([120.5, 140.5]), np.array([132.5, 128.5])
    image = np.zeros((4, 256, 256, 3), np.uint8)
    cv2.circle(image[0], (120, 140), 3, (255, 255, 255), -1)
    image[1:] = image[0]
    frame = np.array([[96.0, 96.0], [160.0, 96.0], [96.0, 176.0], [160.0, 176.0]])  # fixed in both faces
    own = np.broadcast_to(np.concatenate([[own_point], frame]), (4, 5, 2))
    partner = np.broadcast_to(np.concatenate([[partner_point], frame]), (4, 5, 2))
    config = AugmentConfig(rotation=10, zoom=0.05, shift=0.05, flip=0.5, warp=0.0)
    batch = augment_batch(image, BOX, SIZE, config, np.random.default_rng(3), warp_to=(own, partner))
    expected = transform_landmarks(partner[:, :1], batch.matrices)[:, 0]
    for warped, where in zip(batch.warped, expected, strict=True):
        weights = warped[..., 0].astype(np.float64)
        ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
        centre = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
        assert np.linalg.norm(centre - where) < 0.75, (centre, where)


def test_fields_have_one_per_face() -> None:
    own = np.random.default_rng(4).uniform(10, 50, (5, 68, 2))
    fields = landmark_warp_fields(own, own + 1.0, SIZE)
    assert fields.shape == (5, SIZE, SIZE, 2) and fields.dtype == np.float32


def test_warp_jitter_adds_a_random_warp_on_top_of_the_landmark_warp() -> None:
    """The jitter bends the input by about its σ where warp to landmarks alone would bend nothing."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 255, (8, 256, 256, 3), dtype=np.uint8)
    images = np.stack([cv2.GaussianBlur(image, (0, 0), 2) for image in images])
    landmarks = rng.uniform(90, 170, (8, 68, 2))
    same = (landmarks, landmarks)
    config = AugmentConfig(warp_jitter=0.0)
    plain = augment_batch(images, BOX, SIZE, config, np.random.default_rng(6), warp_to=same)
    jittered = augment_batch(
        images, BOX, SIZE, replace(config, warp_jitter=0.05), np.random.default_rng(6), warp_to=same
    )
    np.testing.assert_array_equal(jittered.matrices, plain.matrices)
    np.testing.assert_array_equal(jittered.target, plain.target)  # the target stays unwarped
    assert np.abs(plain.warped.astype(int) - plain.target).max() <= 1
    assert np.abs(jittered.warped.astype(int) - jittered.target).mean() > 5


def test_warp_jitter_is_an_augmentation_setting() -> None:
    assert AugmentConfig().warp_jitter == 0.0  # off by default: the default recipe is unchanged
    for bad in (-0.01, 0.3, float("nan")):
        with pytest.raises(ValueError, match="warp_jitter"):
            AugmentConfig(warp_jitter=bad)
