"""Colour matching moves the swapped face's statistics towards the original's, measured within the mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap.color import COLOR_METHODS, EDGE_WIDTH, match_color, match_edge

SHAPE = (60, 80)


def images(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bluish, flat 'face', a warm textured 'original', and a mask over the middle."""
    rng = np.random.default_rng(seed)
    face = np.clip(rng.normal([0.35, 0.45, 0.6], 0.05, (*SHAPE, 3)), 0, 1).astype(np.float32)
    target = np.clip(rng.normal([0.8, 0.55, 0.45], 0.1, (*SHAPE, 3)), 0, 1).astype(np.float32)
    mask = np.zeros(SHAPE, np.float32)
    mask[10:50, 15:65] = 1.0
    return face, target, mask


def masked_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = image[mask > 0.5]
    return values.mean(axis=0), values.std(axis=0)


@pytest.mark.parametrize("method", ["mean", "reinhard", "hist"])
def test_statistics_move_towards_the_original(method: str) -> None:
    face, target, mask = images()
    result = match_color(face, target, mask, method)
    assert result.dtype == np.float32 and result.shape == face.shape
    assert result.min() >= 0 and result.max() <= 1
    before, _ = masked_stats(face, mask)
    after, _ = masked_stats(result, mask)
    wanted, _ = masked_stats(target, mask)
    assert np.abs(after - wanted).max() < 0.02
    assert np.abs(after - wanted).max() < 0.1 * np.abs(before - wanted).max()


@pytest.mark.parametrize("method", ["reinhard", "hist"])
def test_spread_is_matched_too(method: str) -> None:
    face, target, mask = images()
    result = match_color(face, target, mask, method)
    if method == "reinhard":  # mean and spread in Lab
        to_lab = cv2.COLOR_RGB2Lab
        _, spread = masked_stats(cv2.cvtColor(result, to_lab), mask)
        _, wanted = masked_stats(cv2.cvtColor(target, to_lab), mask)
    else:
        _, spread = masked_stats(result, mask)
        _, wanted = masked_stats(target, mask)
    np.testing.assert_allclose(spread, wanted, rtol=0.1)


@pytest.mark.parametrize("method", COLOR_METHODS)
def test_only_pixels_inside_the_mask_count(method: str) -> None:
    face, target, mask = images()
    changed_outside = target.copy()
    changed_outside[mask == 0] = [0.0, 1.0, 0.0]  # bright green background
    changed_face = face.copy()
    changed_face[mask == 0] = 1.0
    a = match_color(face, target, mask, method)
    b = match_color(changed_face, changed_outside, mask, method)
    inside = mask > 0.5
    np.testing.assert_allclose(a[inside], b[inside], atol=1e-5)


def test_none_and_empty_masks_leave_the_face_alone() -> None:
    face, target, mask = images()
    assert match_color(face, target, mask, "none") is face
    empty = np.zeros(SHAPE, np.float32)
    for method in COLOR_METHODS:
        np.testing.assert_array_equal(match_color(face, target, empty, method), face)


def test_histogram_matching_is_monotonic() -> None:
    _, target, mask = images()
    gradient = np.repeat(np.linspace(0, 1, SHAPE[1], dtype=np.float32)[None, :, None], SHAPE[0], 0)
    gradient = np.repeat(gradient, 3, axis=2)
    result = match_color(gradient, target, mask, "hist")
    assert np.all(np.diff(result[0, :, 0]) >= -1e-6)


def test_unknown_method() -> None:
    face, target, mask = images()
    with pytest.raises(ValueError, match="unknown colour method"):
        match_color(face, target, mask, "sepia")  # type: ignore[arg-type]


def test_the_edge_match_reads_only_the_masked_original_and_leaves_the_middle_alone() -> None:
    face, target, mask = images()
    result = match_edge(face, target, mask)
    # On the mask's edge the face takes the original's local colour; in the middle nothing changes.
    edge, middle = (slice(10, 12), slice(30, 50)), (30, 40)

    def colour(image: np.ndarray) -> np.ndarray:
        return image[edge].mean(axis=(0, 1))

    assert np.abs(colour(face) - colour(target)).max() > 0.3
    assert np.abs(colour(result) - colour(target)).max() < 0.05
    assert EDGE_WIDTH * SHAPE[0] < 20  # the middle lies beyond the band
    np.testing.assert_array_equal(result[middle], face[middle])
    # The original outside the mask (hair, background) does not count.
    other = target.copy()
    other[mask == 0] = [0.0, 1.0, 0.0]
    np.testing.assert_allclose(match_edge(face, other, mask), result, atol=1e-6)
    np.testing.assert_array_equal(match_edge(face, target, np.zeros(SHAPE, np.float32)), face)
