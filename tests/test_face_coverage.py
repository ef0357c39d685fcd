"""Coverage of poses and expressions: does one side's set of faces show what the other's does?

Faces are the mean face with a jaw (generated), a mouth opened by moving the
lower inner lip, eyes shut by moving the lids, a head turned by moving the
nose tip across (what the pose solver reads as yaw).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from faceswap.align import MEAN_FACE
from faceswap.coverage import (
    REPORTED_SHARE,
    coverage_gaps,
    coverage_warnings,
    crop_landmarks,
    describe_gaps,
    eye_opening,
    face_traits,
    mouth_opening,
)
from faceswap.landmarks import interocular_distance

SIZE = 200
LOWER_INNER_LIP = [65, 66, 67]
UPPER_LIDS, LOWER_LIDS = [37, 38, 43, 44], [41, 40, 47, 46]


def mean_face() -> np.ndarray:
    """68 landmarks: the mean face's inner points plus a jaw, in a 200-px face."""
    angles = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    jaw = np.stack([100 + 62 * np.cos(angles), 95 + 75 * np.sin(angles)], axis=1)
    return np.concatenate([jaw, MEAN_FACE * 100 + 50])


def face(mouth: float = 0.0, nose: float = 0.0, shut: bool = False) -> np.ndarray:
    """The mean face with the mouth opened by ``mouth`` px, the nose tip moved ``nose`` px to the right."""
    points = mean_face()
    points[LOWER_INNER_LIP, 1] += mouth
    points[30, 0] += nose
    if shut:  # lids onto the line between the corners
        for eye in (range(36, 42), range(42, 48)):
            points[list(eye)[1:3] + list(eye)[4:6], 1] = points[[eye[0], eye[3]], 1].mean()
    return points


def faces(**spread: np.ndarray) -> np.ndarray:
    """One face per value: e.g. ``faces(mouth=[0, 0, 20])``."""
    (name, values), *_ = spread.items()
    return np.stack([face(**{name: float(value)}) for value in values])


def test_mouth_opening_grows_by_the_lip_gap_over_the_eye_distance() -> None:
    closed, opened = mean_face(), face(mouth=12.0)
    growth = mouth_opening(opened)[0] - mouth_opening(closed)[0]
    assert growth == pytest.approx(12.0 / interocular_distance(closed), rel=1e-6)


def test_shut_eyes_read_far_below_open_ones() -> None:
    assert eye_opening(mean_face())[0] > 0.2
    assert eye_opening(face(shut=True))[0] < 0.02


def test_moving_the_nose_across_reads_as_yaw_of_its_sign() -> None:
    yaw = face_traits(np.stack([face(nose=-6), face(), face(nose=6)]))["yaw"]
    assert yaw[0] < yaw[1] - 5 and yaw[2] > yaw[1] + 5


def test_open_mouths_the_other_side_never_shows_are_a_gap_of_their_share() -> None:
    source = face_traits(faces(mouth=[0] * 7 + [25] * 3))
    target = face_traits(faces(mouth=[0, 0.5, 1, 0, 0.5]))
    gaps = coverage_gaps(source, target, mirrored=True)
    assert [(gap.trait, gap.share) for gap in gaps] == [("mouth", pytest.approx(0.3))]
    assert gaps[0].reach > gaps[0].covered
    # The other way round: open mouths cover closed ones.
    assert coverage_gaps(target, source, mirrored=True) == []


def test_closed_eyes_are_checked_but_wider_open_ones_are_the_person() -> None:
    blinking = face_traits(np.stack([face()] * 8 + [face(shut=True)] * 2))
    open_eyed = face_traits(np.stack([face()] * 5))
    assert [gap.trait for gap in coverage_gaps(blinking, open_eyed, mirrored=False)] == ["eyes"]
    assert coverage_gaps(open_eyed, blinking, mirrored=False) == []


def test_a_steady_difference_in_pose_is_not_a_gap_but_a_wider_turn_is() -> None:
    target = face_traits(faces(nose=[-2, -1, 0, 1, 2]))
    shifted = face_traits(faces(nose=[4, 5, 6, 7, 8]))  # the same spread about another median
    assert coverage_gaps(shifted, target, mirrored=False) == []
    wider = face_traits(faces(nose=[-8, -1, 0, 0, 0, 1, 8]))
    trait_ends = {(gap.trait, np.sign(gap.reach)) for gap in coverage_gaps(wider, target, mirrored=False)}
    assert trait_ends == {("yaw", 1.0), ("yaw", -1.0)}


def test_flips_in_training_cover_turns_to_the_other_side() -> None:
    one_way = face_traits(faces(nose=[0, 0, 0, 4, 8]))
    other_way = face_traits(faces(nose=[-8, -4, 0, 0, 0]))
    assert any(gap.trait == "yaw" for gap in coverage_gaps(other_way, one_way, mirrored=False))
    assert coverage_gaps(other_way, one_way, mirrored=True) == []


def test_gaps_under_the_reported_share_are_left_out() -> None:
    count = round(1 / REPORTED_SHARE) * 4
    rare = face_traits(faces(mouth=[0] * (count - 1) + [25]))
    closed = face_traits(faces(mouth=[0] * 5))
    assert coverage_gaps(rare, closed, mirrored=True) == []


def test_the_warning_names_the_share_the_reach_and_the_cure() -> None:
    opened, closed = faces(mouth=[0] * 6 + [25] * 4), faces(mouth=[0] * 6)
    lines = coverage_warnings(opened, closed, mirrored=True)
    assert len(lines) == 1
    assert "in 40 % the mouth opens to" in lines[0] and "add footage of B" in lines[0]
    assert describe_gaps([], "A", "B") is None


def test_training_logs_gaps_but_not_for_few_faces_or_without_landmarks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from faceswap.train.session import _warn_of_coverage

    def side(landmarks: np.ndarray, without: int = 0) -> SimpleNamespace:
        return SimpleNamespace(
            landmarks=landmarks, images=np.zeros((len(landmarks), SIZE, SIZE, 3)), without_landmarks=without
        )

    opened, closed = faces(mouth=[0] * 60 + [25] * 40), faces(mouth=[0] * 100)
    with caplog.at_level(logging.INFO, logger="faceswap.train.session"):
        _warn_of_coverage((side(opened[:10]), side(closed[:10])), mirrored=True)
    assert not caplog.records  # too few faces to say: the few-faces warning speaks
    with caplog.at_level(logging.INFO, logger="faceswap.train.session"):
        _warn_of_coverage((side(opened), side(closed)), mirrored=True)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "faces B do not show all that faces A do" in caplog.records[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="faceswap.train.session"):
        _warn_of_coverage((side(opened, without=50), side(closed)), mirrored=True)
    assert "not checked" in caplog.text and not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_traits_read_alike_in_any_pixels() -> None:
    """A frame's landmarks and a crop's of one face (here: turned, scaled, moved) give the same traits."""
    points = face(mouth=10, nose=4)
    angle = np.radians(20)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (points - 100) @ turn.T * 2.7 + [640, 360]
    first, second = face_traits(points), face_traits(moved)
    for trait in first:
        assert second[trait] == pytest.approx(first[trait], abs=1e-3)


def test_crop_landmarks_come_from_crop_metadata_only(tmp_path) -> None:
    from faceswap.crops import CropInfo, write_crop

    faces_folder, photos = tmp_path / "faces", tmp_path / "photos"
    faces_folder.mkdir()
    photos.mkdir()
    image = np.zeros((64, 64, 3), np.uint8)
    for index in range(3):
        landmarks = face(mouth=index) * 64 / SIZE
        info = CropInfo(landmarks=landmarks, size=64, padding=0.2, source="v.mp4", frame=index, face=0)
        write_crop(faces_folder / f"v_{index:06d}_0.png", image, info)
    write_crop(photos / "plain.png", image)  # no metadata
    found = crop_landmarks([faces_folder, photos / "plain.png"])
    assert found.shape == (3, 68, 2)
    assert mouth_opening(found) == pytest.approx(
        mouth_opening(faces(mouth=[0, 1, 2])), rel=1e-2
    )  # stored to 0.01 px
    assert crop_landmarks([photos]) is None
