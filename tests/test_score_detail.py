"""faceswap score: the pose that does not flip, and the inner-face detail that a blur cannot fool."""

from __future__ import annotations

import numpy as np
import pytest

from faceswap.detect import FaceDetector, LandmarkPredictor
from faceswap.media.reader import VideoSource
from faceswap.pose import angle_difference, head_pose
from tests.conftest import require_data

# -- pose ---------------------------------------------------------------------------------------------------


def test_upright_faces_looking_down_are_not_flipped() -> None:
    """d3, frames 239-270: the solver started from nothing gave roll 167-179° on half of them."""
    video = require_data("video", "d3.mp4")
    detector, predictor = FaceDetector("hog"), LandmarkPredictor()
    rolls = []
    for frame in VideoSource(video).frames(239, 271):
        detections = detector.detect(frame.image)
        assert detections, f"no face in d3 frame {frame.index}"
        landmarks = predictor(frame.image, max(detections, key=lambda d: d.width).box)
        pose = head_pose(landmarks, (frame.image.shape[1], frame.image.shape[0]))
        rolls.append(pose.roll)
        assert abs(pose.yaw) < 60 and abs(pose.pitch) < 60, f"frame {frame.index}: {pose}"
    assert len(rolls) == 32
    assert np.all(np.abs(rolls) < 30), rolls
    # An upright face sways a little: neighbouring frames agree within a few degrees.
    assert np.abs(np.diff(rolls)).max() < 5


def test_a_face_behind_the_camera_gets_no_pose() -> None:
    """Landmarks only a face turned away could make (mirrored top to bottom) give NaN, not angles."""
    from tests.test_score import project

    upright = project(0, 0, 0)
    upside_down = upright.copy()
    upside_down[:, 1] = 640 - upright[:, 1]  # mirrored top to bottom: no rotation makes this
    pose = head_pose(upside_down, (640, 640))
    assert np.isnan(pose.as_array()).all()
    assert np.isfinite(head_pose(upright, (640, 640)).as_array()).all()


@pytest.mark.parametrize("roll", [100.0, 170.0, -150.0])
def test_a_strongly_rolled_face_keeps_its_roll(roll: float) -> None:
    """The solver starts rolled as the eye line, so a face on its side or upside down is found as it is."""
    from tests.test_score import project

    pose = head_pose(project(10, -5, roll), (640, 640))
    assert angle_difference(pose.roll, roll) == pytest.approx(0, abs=0.5)
    assert pose.yaw == pytest.approx(10, abs=0.5) and pose.pitch == pytest.approx(-5, abs=0.5)


def test_angle_differences_wrap() -> None:
    np.testing.assert_allclose(
        angle_difference([179.0, -179.0, 10.0, 180.0], [-179.0, 179.0, -10.0, 0.0]), [-2.0, 2.0, 20.0, -180.0]
    )
