"""The convert plan: frame ranges, faces linked into tracks, and tracks smoothed without lag."""

from __future__ import annotations

import numpy as np
import pytest

from faceswap.align import MEAN_FACE, alignment_matrix, invert, similarity_parameters, transform_points
from faceswap.alignments import Face
from faceswap.convert_plan import (
    MAX_GAP,
    SMOOTH_CONTEXT,
    detection_windows,
    link_tracks,
    make_plan,
    parse_frame_ranges,
    smooth_track,
)
from faceswap.errors import InputError

FPS = 30.0


def face_at(x: float, y: float, size: float = 100.0, angle: float = 0.0, noise=None) -> Face:
    """A face whose 68 landmarks are the mean face (plus a jaw) placed at (x, y)."""
    jaw_angles = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    unit = np.concatenate(
        [np.stack([0.5 + 0.6 * np.cos(jaw_angles), 0.45 + 0.6 * np.sin(jaw_angles)], 1), MEAN_FACE]
    )
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (unit - 0.5) @ rotation.T * size + [x, y]
    if noise is not None:
        points = points + noise
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    return Face((left, top, right, bottom), points, alignment_matrix(points))


def test_frame_ranges() -> None:
    assert parse_frame_ranges("10-50,90-120", 200) == [range(10, 51), range(90, 121)]
    assert parse_frame_ranges("7", 10) == [range(7, 8)]
    assert parse_frame_ranges("5-", 10) == [range(5, 10)]
    assert parse_frame_ranges(" 0-2 , 4 ", 10) == [range(0, 3), range(4, 5)]
    assert parse_frame_ranges("8-100", 10) == [range(8, 10)]  # cut at the end, with a warning
    for bad, message in [
        ("a-b", "not a frame number"),
        ("5-3", "ends before"),
        ("12", "after the last"),
        ("", "not"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_frame_ranges(bad, 10)
    assert parse_frame_ranges("2-3,8", 10) == [range(2, 4), range(8, 9)]


def test_detection_windows_widen_and_merge() -> None:
    assert detection_windows(None, 100) == [range(100)]
    windows = detection_windows([range(40, 45), range(50, 52), range(200, 210)], 300)
    assert windows == [
        range(40 - SMOOTH_CONTEXT, 52 + SMOOTH_CONTEXT),
        range(200 - SMOOTH_CONTEXT, 210 + SMOOTH_CONTEXT),
    ]
    assert detection_windows([range(0, 3)], 10) == [range(0, 10)]


def test_link_tracks_follows_two_faces_across_skipped_frames() -> None:
    frames = {}
    for i in range(6):
        frames[i] = [face_at(100 + 2 * i, 100), face_at(400 - 2 * i, 120)]
    frames[2] = frames[2][::-1]  # listed in the other order: still the same people
    frames[7] = [face_at(114, 100)]  # frame 6 was not processed: the left face goes on
    frames[8] = []  # processed, nobody there: every track ends
    frames[9] = [face_at(118, 100)]
    frames[9 + MAX_GAP + 2] = [face_at(118, 100)]  # too long unprocessed: a new track
    tracks = link_tracks(frames)
    assert len(tracks) == 4
    left = next(t for t in tracks if t[0] == (0, 0))
    right = next(t for t in tracks if t[0] == (0, 1))
    assert left == [(0, 0), (1, 0), (2, 1), (3, 0), (4, 0), (5, 0), (7, 0)]
    assert right == [(0, 1), (1, 1), (2, 0), (3, 1), (4, 1), (5, 1)]
    assert [(9, 0)] in tracks and [(9 + MAX_GAP + 2, 0)] in tracks


def test_frames_skipped_by_a_sparse_alignments_file_are_filled_in() -> None:
    """extract --every 3: the frames in between get geometry between their neighbours, not a blink."""
    frames = {i: [face_at(100 + 3 * i, 100, 100 + i, 0.01 * i)] for i in range(0, 30, 3)}
    times = list(np.arange(30) / FPS)
    for smooth in (False, True):
        plan = make_plan(frames, times, smooth=smooth)
        assert sorted(plan) == list(range(28))  # 28, 29 lie after the last processed frame
        truth = face_at(100 + 3 * 4, 100, 100 + 4, 0.04)
        centre = transform_points(np.array([[0.5, 0.5]]), invert(plan[4][0].matrix))[0]
        expected = transform_points(np.array([[0.5, 0.5]]), invert(truth.matrix))[0]
        assert np.linalg.norm(centre - expected) < 0.5
        np.testing.assert_allclose(plan[4][0].landmarks, truth.landmarks, atol=1.0)
    assert sorted(make_plan(frames, None, smooth=True)) == list(range(0, 30, 3))  # images: nothing to fill


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


def test_plan_keeps_wanted_frames_and_does_not_smooth_images() -> None:
    rng = np.random.default_rng(2)
    frames = {i: [face_at(100, 100, noise=rng.normal(0, 1, (68, 2)))] for i in range(20)}
    times = list(np.arange(20) / FPS)
    plan = make_plan(frames, times, smooth=True, wanted={3, 4, 5})
    assert sorted(plan) == [3, 4, 5]
    assert not np.allclose(plan[4][0].matrix, frames[4][0].matrix)  # smoothed
    images = make_plan(frames, None, smooth=True)
    assert sorted(images) == list(range(20))
    np.testing.assert_array_equal(images[4][0].matrix, frames[4][0].matrix)  # left alone
    unsmoothed = make_plan(frames, times, smooth=False)
    np.testing.assert_array_equal(unsmoothed[4][0].landmarks, frames[4][0].landmarks)
