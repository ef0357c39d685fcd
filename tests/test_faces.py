"""The one face finder: faces of an image left to right, the largest face, faces followed through a video."""

from __future__ import annotations

import numpy as np
import pytest

from faceswap.faces import SCALED_SEARCH_FACE_PX, FaceFinder, LargestFaceSearch
from faceswap.media.reader import VideoSource
from faceswap.track import FaceTracker
from tests.conftest import require_data


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    return FaceFinder()


@pytest.fixture(scope="module")
def two_astronauts(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut twice, side by side: two faces of one size, 512 px apart."""
    return np.ascontiguousarray(np.concatenate([astronaut, astronaut], axis=1))


def test_find_gives_every_face_left_to_right(finder: FaceFinder, two_astronauts: np.ndarray) -> None:
    faces = finder.find(two_astronauts)
    lefts = [face.landmarks[:, 0].min() for face in faces]
    assert lefts == sorted(lefts)
    assert min(lefts) < 512 < max(lefts)  # both halves' faces
    scores = [detection.score for detection in finder.detect(two_astronauts)]
    assert [scores[face.number] for face in faces] == [face.score for face in faces]  # numbered by rank
    for face in faces:
        assert face.score is not None and face.box[0] <= face.landmarks[:, 0].mean() <= face.box[2]
        np.testing.assert_array_equal(face.landmarks, finder.predictor(two_astronauts, face.box))


def test_largest_is_the_widest_detection(finder: FaceFinder, astronaut: np.ndarray) -> None:
    detections = finder.detect(astronaut)
    face = finder.largest(astronaut)
    assert face is not None and face.box == max(detections, key=lambda d: d.width).box
    assert finder.largest(np.zeros((200, 200, 3), np.uint8)) is None


def test_follow_is_the_tracker_afresh_with_snapshots(finder: FaceFinder) -> None:
    frames = list(VideoSource(require_data("video", "d18.mp4")).frames(0, 10))
    tracker = FaceTracker(finder.detector, finder.predictor)
    expected = [[track.landmarks.copy() for track in tracker.update(frame.image)] for frame in frames]
    for _ in range(2):  # a second run starts afresh and gives the same faces
        followed = list(finder.follow(frames))
        assert [frame.index for frame, _ in followed] == [frame.index for frame in frames]
        for (_, faces), landmarks in zip(followed, expected, strict=True):
            assert len(faces) == len(landmarks) == 1
            np.testing.assert_array_equal(faces[0].landmarks, landmarks[0])
        snapshots = [faces[0] for _, faces in followed]
        assert len({id(face) for face in snapshots}) == len(snapshots)  # kept faces do not change later
        assert {face.number for face in snapshots} == {0}
        assert all(face.state is snapshots[0].state for face in snapshots)  # one face, one state


def test_largest_face_search_picks_the_face_near_a_given_one(
    finder: FaceFinder, two_astronauts: np.ndarray
) -> None:
    faces = finder.find(two_astronauts)
    search = LargestFaceSearch(finder)
    for wanted in (faces[0], faces[-1]):
        found = search.find(two_astronauts, near=wanted.landmarks)
        assert found is not None and abs(found[:, 0].mean() - wanted.landmarks[:, 0].mean()) < 2
    assert search.find(np.zeros((200, 200, 3), np.uint8)) is None


def test_largest_face_search_scales_down_after_a_large_face(astronaut: np.ndarray) -> None:
    import cv2

    large = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)  # a face of about 260 px
    finder = FaceFinder()
    scales = []
    detect = finder.detect

    def recording(image: np.ndarray, *, scale: float | None = None):
        scales.append(scale)
        return detect(image, scale=scale)

    finder.detect = recording  # type: ignore[method-assign]
    search = LargestFaceSearch(finder)
    first = search.find(large)
    second = search.find(large)
    assert first is not None and second is not None
    width = finder.largest(large).box[2] - finder.largest(large).box[0]  # type: ignore[union-attr]
    assert scales[0] == 1.0 and scales[1] == pytest.approx(SCALED_SEARCH_FACE_PX / width)
    assert np.abs(second - first).mean() < 0.05 * width
