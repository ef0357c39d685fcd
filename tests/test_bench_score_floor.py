"""scripts/bench_score_floor.py's perfect swap: B's detail put on A's scale, with and without A's contrast."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_score_floor import hull_contrast, perfect_swap


def test_a_perfect_swap_is_the_targets_detail_over_the_sources_and_per_unit_of_contrast() -> None:
    source = {"original": [90.0, 100.0, 110.0], "contrast": [400.0] * 3, "64": [30.0] * 3}
    target = {"original": [40.0] * 3, "contrast": [100.0] * 3, "64": [10.0, 10.0, 12.0]}
    swap = perfect_swap(source, target, 64)
    assert swap["measured"] == pytest.approx(10.0 / 100.0)
    # B's faces have a quarter of A's luminance variance: at A's contrast they hold four times the energy.
    assert swap["contrast_matched"] == pytest.approx(0.4)
    assert swap["target_ceiling"] == pytest.approx(10.0 / 40.0)
    assert swap["source_ceiling"] == pytest.approx(30.0 / 100.0)


def test_the_hull_contrast_is_the_luminance_variance_inside_the_landmarks_only() -> None:
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    landmarks = np.stack([50 + 30 * np.cos(angles), 50 + 30 * np.sin(angles)], axis=1)
    rng = np.random.default_rng(0)
    texture = rng.uniform(0, 100, (100, 100, 1)).astype(np.float32)
    frame = np.repeat(texture, 3, axis=2).astype(np.uint8)
    outside = np.hypot(*np.mgrid[:100, :100] - 50) > 32
    loud = frame.copy()
    loud[outside] = rng.integers(0, 256, (int(outside.sum()), 1), dtype=np.uint8)
    assert hull_contrast(loud, landmarks) == pytest.approx(hull_contrast(frame, landmarks))
    doubled = (2 * texture).repeat(3, axis=2).astype(np.uint8)
    assert hull_contrast(doubled, landmarks) == pytest.approx(4 * hull_contrast(frame, landmarks), rel=0.02)
