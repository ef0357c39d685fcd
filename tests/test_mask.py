"""Blend masks: hull, learned and combined; erosion, dilation and feathering behave monotonically."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faceswap.align import MEAN_FACE
from faceswap.mask import MASK_KINDS, build_mask, erode, feather, hull_mask

SIZE = 200


def face_landmarks() -> np.ndarray:
    """68 plausible landmarks: the mean face's inner points plus a jaw, scaled into a 200-px grid."""
    inner = MEAN_FACE * 100 + 50
    angles = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    jaw = np.stack([100 + 62 * np.cos(angles), 95 + 75 * np.sin(angles)], axis=1)
    return np.concatenate([jaw, inner])


def square_coverage(margin: int = 20) -> np.ndarray:
    coverage = np.zeros((SIZE, SIZE), np.float32)
    coverage[margin:-margin, margin:-margin] = 1
    return coverage


def mask(kind="hull", erode_percent=0.0, blur_percent=0.0, learned=None) -> np.ndarray:
    return build_mask(
        kind,
        learned=np.ones((SIZE, SIZE), np.float32) if learned is None else learned,
        landmarks=face_landmarks(),
        coverage=square_coverage(),
        face_size=100.0,
        erode_percent=erode_percent,
        blur_percent=blur_percent,
    )


def test_hull_mask_fills_the_landmarks_hull() -> None:
    points = face_landmarks()
    hull = hull_mask(points, (SIZE, SIZE))
    assert hull.dtype == np.float32 and hull.max() == 1.0 and hull.min() == 0.0
    centre = np.round(points.mean(axis=0)).astype(int)
    assert hull[centre[1], centre[0]] == 1.0
    assert hull[5, 5] == 0.0 and hull[-5, -5] == 0.0
    assert 0 < hull.sum() < SIZE * SIZE


def test_sub_pixel_shift_moves_the_edge_smoothly() -> None:
    """Anti-aliased, sub-pixel drawing: a 0.25-px shift changes the covered area by about 0.25 px per row."""
    points = face_landmarks()
    areas = [hull_mask(points + np.array([dx, 0]), (SIZE, SIZE)).sum() for dx in (0, 0.25, 0.5)]
    assert areas[0] == pytest.approx(areas[1], rel=0.01) == pytest.approx(areas[2], rel=0.01)
    left = [
        hull_mask(points + np.array([dx, 0]), (SIZE, SIZE))[100, :100].sum() for dx in (0, 0.25, 0.5, 0.75)
    ]
    steps = np.diff(left)
    assert np.all(steps < 0) and np.allclose(steps, -0.25, atol=0.15)


def test_erosion_shrinks_and_negative_erosion_grows_monotonically() -> None:
    areas = [mask(erode_percent=value).sum() for value in (-10, -5, 0, 5, 10)]
    assert all(a > b for a, b in itertools.pairwise(areas))


def test_every_mask_stays_inside_the_face_square() -> None:
    outside = square_coverage() == 0
    for kind in MASK_KINDS:
        for erode_percent in (-20, 0, 10):
            for blur_percent in (0, 10):
                result = mask(kind, erode_percent, blur_percent)
                assert result.dtype == np.float32
                assert result[outside].max() == 0.0
                assert result.min() >= 0.0 and result.max() <= 1.0


def test_feathering_softens_inwards_and_more_with_more_blur() -> None:
    hard = mask(blur_percent=0)
    soft_band = []
    for blur_percent in (2, 6, 12):
        soft = mask(blur_percent=blur_percent)
        assert np.all(soft <= hard + 1e-6)  # inwards: never beyond the hard edge
        assert soft.max() == pytest.approx(1.0, abs=1e-3)  # the middle stays fully swapped
        soft_band.append(int(np.count_nonzero((soft > 0.02) & (soft < 0.98))))
    assert soft_band[0] < soft_band[1] < soft_band[2]


def test_feather_and_erode_leave_a_mask_alone_at_zero() -> None:
    base = mask()
    np.testing.assert_array_equal(erode(base, 0), base)
    np.testing.assert_array_equal(feather(base, 0.5), base)


def test_combined_is_the_overlap_of_learned_and_hull() -> None:
    learned = np.zeros((SIZE, SIZE), np.float32)
    learned[:, : SIZE // 2] = 0.8
    combined = mask("combined", learned=learned)
    hull = mask("hull")
    np.testing.assert_allclose(combined, np.minimum(hull, learned))
    np.testing.assert_allclose(mask("learned", learned=learned), learned * square_coverage())


def test_unknown_or_incomplete_requests_fail() -> None:
    with pytest.raises(ValueError, match="unknown mask"):
        mask("oval")
    with pytest.raises(ValueError, match="decoder's mask"):
        build_mask("learned", learned=None, landmarks=None, coverage=square_coverage(), face_size=100)
    with pytest.raises(ValueError, match="landmarks"):
        build_mask("hull", learned=None, landmarks=None, coverage=square_coverage(), face_size=100)
