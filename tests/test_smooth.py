"""Temporal smoothing: less jitter when still, little lag when moving."""

from __future__ import annotations

import numpy as np
import pytest

from faceswap.align import invert, similarity_parameters, transform_points
from faceswap.smooth import OneEuroFilter, smooth_sequence, smooth_track
from tests.synthetic_faces import face_at

FPS = 30.0


def test_one_euro_removes_jitter_of_a_still_point() -> None:
    rng = np.random.default_rng(0)
    times = np.arange(300) / FPS
    noisy = 100 + rng.normal(0, 1.0, (300, 2))
    filt = OneEuroFilter()
    smoothed = np.array([filt(v, t, scale=60.0) for v, t in zip(noisy, times, strict=True)])
    assert np.std(np.diff(smoothed[30:], axis=0)) < 0.3 * np.std(np.diff(noisy[30:], axis=0))


def test_one_euro_follows_fast_motion_with_small_lag() -> None:
    times = np.arange(120) / FPS
    moving = np.stack([200 * times, np.zeros_like(times)], axis=1)  # 200 px/s, about 3 face widths per second

    def lag(filt: OneEuroFilter) -> float:
        smoothed = np.array([filt(v, t, scale=60.0) for v, t in zip(moving, times, strict=True)])
        return float(np.abs(smoothed[60:, 0] - moving[60:, 0]).mean())

    adaptive, fixed = lag(OneEuroFilter()), lag(OneEuroFilter(beta=0.0))
    assert adaptive < 0.3 * fixed  # the speed-dependent cut-off is what keeps lag down
    assert adaptive < 0.08 * 60  # under 8 % of the face scale at 3 face scales per second


def test_reset_and_repeated_time_pass_through() -> None:
    filt = OneEuroFilter()
    filt(np.array([0.0]), 0.0)
    filt(np.array([10.0]), 1 / FPS)
    filt.reset()
    np.testing.assert_array_equal(filt(np.array([5.0]), 2 / FPS), [5.0])
    np.testing.assert_array_equal(
        filt(np.array([7.0]), 2 / FPS), [7.0]
    )  # same time: restart, no division by 0


def test_offline_smoothing_has_no_lag_on_a_ramp_and_removes_noise() -> None:
    rng = np.random.default_rng(1)
    times = np.arange(200) / FPS
    truth = np.stack([50 * times, 20 * np.sin(times)], axis=1)
    noisy = truth + rng.normal(0, 1.0, truth.shape)
    smoothed = smooth_sequence(noisy, times, np.full(200, 60.0))
    inner = slice(20, -20)
    assert np.abs((smoothed - truth)[inner].mean(axis=0)).max() < 0.3  # no systematic lag
    assert np.sqrt(((smoothed - truth)[inner] ** 2).mean()) < 0.6 * np.sqrt(
        ((noisy - truth)[inner] ** 2).mean()
    )


def test_short_sequences_pass_through() -> None:
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(smooth_sequence(values, np.array([0.0, 0.1])), values)


def test_bilateral_window_averages_jitter_and_keeps_a_fast_move() -> None:
    from faceswap.smooth import SMOOTH_RADIUS, smooth_in_window, smooth_window

    rng = np.random.default_rng(1)
    face = rng.uniform(100, 200, (68, 2))
    interocular = 60.0
    still = np.stack([face + rng.normal(0, 0.3, face.shape) for _ in range(2 * SMOOTH_RADIUS + 1)])
    smoothed = smooth_window(still, SMOOTH_RADIUS, interocular)
    assert np.abs(smoothed - face).mean() < 0.7 * np.abs(still[SMOOTH_RADIUS] - face).mean()
    jumped = still.copy()
    jumped[SMOOTH_RADIUS:] += 20.0  # a third of the inter-ocular distance: motion, not jitter
    assert np.abs(smooth_window(jumped, SMOOTH_RADIUS, interocular) - jumped[SMOOTH_RADIUS]).max() < 0.5

    from faceswap.landmarks import interocular_distance

    frames = [{7: points} for points in still]
    expected = smooth_window(still, SMOOTH_RADIUS, interocular_distance(still[SMOOTH_RADIUS]))
    np.testing.assert_array_equal(smooth_in_window(frames, SMOOTH_RADIUS, 7), expected)
    first = still[0]
    alone = [{7: first}, {3: still[1]}]
    assert smooth_in_window(alone, 0, 7) is first  # no neighbour with the face: its own landmarks


def test_smoothing_removes_jitter_but_follows_motion() -> None:
    """dlib-like noise (a shift of the whole face plus each point's own), on a face moving to and fro."""
    rng = np.random.default_rng(1)
    count = 90
    times = np.arange(count) / FPS
    path_x = 200 + 60 * np.sin(times * 2)  # up to 120 px/s, about one face width per second
    clean = [face_at(x, 150, 120, 0.1 * np.sin(t)) for x, t in zip(path_x, times, strict=True)]
    noisy = [
        face_at(x, 150, 120, 0.1 * np.sin(t), noise=rng.normal(0, 1.0, (68, 2)) + rng.normal(0, 0.8, (1, 2)))
        for x, t in zip(path_x, times, strict=True)
    ]
    matrices = np.array([face.matrix for face in noisy])
    landmarks = np.array([face.landmarks for face in noisy])
    smooth_matrices, smooth_landmarks = smooth_track(times, matrices, landmarks)
    assert smooth_matrices.shape == matrices.shape and smooth_landmarks.shape == landmarks.shape

    def centres(ms: np.ndarray) -> np.ndarray:
        return np.array([transform_points(np.array([[0.5, 0.5]]), invert(m))[0] for m in ms])

    truth = centres(np.array([face.matrix for face in clean]))
    raw_error = np.linalg.norm(centres(matrices) - truth, axis=1).mean()
    smooth_error = np.linalg.norm(centres(smooth_matrices) - truth, axis=1).mean()
    assert smooth_error < 0.7 * raw_error  # closer to the true path: jitter removed, no lag added

    def jitter(ms: np.ndarray) -> float:
        return float(np.linalg.norm(np.diff(centres(ms), 2, axis=0), axis=1).mean())

    assert jitter(smooth_matrices) < 0.4 * jitter(matrices)
    angle_error = np.abs(
        np.array([similarity_parameters(m)[1] for m in smooth_matrices])
        - np.array([similarity_parameters(face.matrix)[1] for face in clean])
    )
    assert angle_error.mean() < 0.01  # radians
    hull_jitter = np.abs(np.diff(smooth_landmarks[:, :17], 2, axis=0)).mean()
    assert hull_jitter < 0.4 * np.abs(np.diff(landmarks[:, :17], 2, axis=0)).mean()


def test_smoothed_matrices_stay_similarities_and_short_tracks_pass() -> None:
    faces = [face_at(100 + i, 100, 90 + i, 0.02 * i) for i in range(10)]
    matrices, _ = smooth_track(
        np.arange(10) / FPS, np.array([f.matrix for f in faces]), np.array([f.landmarks for f in faces])
    )
    for m in matrices:
        a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
        assert a == pytest.approx(d) and b == pytest.approx(-c)  # rotation and uniform scale only
    two = np.array([faces[0].matrix, faces[1].matrix])
    same, _ = smooth_track(np.arange(2) / FPS, two, np.array([faces[0].landmarks, faces[1].landmarks]))
    np.testing.assert_array_equal(same, two)
