"""The convert plan: faces linked into tracks, tracks smoothed and filled in, frames kept."""

from __future__ import annotations

import numpy as np

from faceswap.align import invert, transform_points
from faceswap.convert_plan import MAX_GAP, link_tracks, make_plan
from tests.synthetic_faces import face_at

FPS = 30.0


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
