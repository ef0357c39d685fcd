"""The measures of faceswap score: expression, jitter, PSNR and the face region."""

from __future__ import annotations

import numpy as np
import pytest

from faceswap.faces import FaceFinder
from faceswap.media.reader import VideoSource
from faceswap.score_measures import expression_difference, jitter, psnr
from tests.conftest import require_data


def test_expression_and_pose_differences_grow_with_a_different_frame() -> None:
    frame = next(VideoSource(require_data("video", "d18.mp4")).frames(0, 1)).image
    first = FaceFinder().largest(frame).landmarks  # type: ignore[union-attr]
    assert expression_difference(first, first) == pytest.approx(0.0, abs=1e-9)
    moved = first * 1.3 + [40, -10]  # a similarity: same expression
    assert expression_difference(first, moved) == pytest.approx(0.0, abs=1e-6)
    opened = first.copy()
    opened[57:60, 1] += 12  # lower lip drops: mouth opens
    opened[65:68, 1] += 12
    assert expression_difference(first, opened) > 2.0


def test_jitter_and_psnr_building_blocks() -> None:
    steady = [np.full((68, 2), 0.0) + i for i in range(10)]  # constant speed
    for points in steady:
        points[36:48, 0] += np.linspace(0, 60, 12)  # some inter-ocular distance
    assert jitter(steady) == pytest.approx(0.0)
    shaky = [p + (3 if i % 2 else -3) for i, p in enumerate(steady)]
    assert jitter(shaky) > 0.1
    assert jitter([None, steady[0], None]) is None
    image = np.zeros((10, 10, 3), np.uint8)
    assert psnr(image, image, np.ones((10, 10), bool)) == 100.0
    assert psnr(image, image + 16, np.ones((10, 10), bool)) == pytest.approx(24.05, abs=0.01)
