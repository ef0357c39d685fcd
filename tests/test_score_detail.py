"""faceswap score: the pose that does not flip, and the inner-face detail that a blur cannot fool."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.detail import face_detail, through_model
from faceswap.faces import FaceFinder
from faceswap.media.reader import VideoSource
from faceswap.pose import angle_difference, head_pose
from faceswap.score import score
from faceswap.score_measures import face_region_mask
from tests.conftest import make_face_crops, require_data
from tests.test_score import run_cli, write_frames

# -- pose ---------------------------------------------------------------------------------------------------


def test_upright_faces_looking_down_are_not_flipped() -> None:
    """d3, frames 239-270: the solver started from nothing gave roll 167-179° on half of them."""
    video = require_data("video", "d3.mp4")
    finder = FaceFinder()
    rolls = []
    for frame in VideoSource(video).frames(239, 271):
        face = finder.largest(frame.image)
        assert face is not None, f"no face in d3 frame {frame.index}"
        pose = head_pose(face.landmarks, (frame.image.shape[1], frame.image.shape[0]))
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


# -- detail -------------------------------------------------------------------------------------------------


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


@pytest.fixture(scope="module")
def d18_face() -> tuple[np.ndarray, np.ndarray]:
    """A d18 frame and its face's landmarks."""
    frame = next(iter(VideoSource(require_data("video", "d18.mp4")).frames(30, 31))).image
    face = FaceFinder().largest(frame)
    assert face is not None
    return frame, face.landmarks


def test_detail_ranks_a_blur_below_the_sharp_face_and_the_ceiling_between(d18_face) -> None:
    frame, landmarks = d18_face
    sharp = face_detail(frame, frame, landmarks, 64)
    assert sharp.ratio == pytest.approx(1.0) and sharp.detailed()
    ratios = [face_detail(frame, blur(frame, sigma), landmarks, 64).ratio for sigma in (1, 2, 3)]
    assert ratios[0] < 1 and ratios[0] > ratios[1] > ratios[2]
    # A 3-px blur is below what a 64-px model can show; the ceiling lies below the original.
    assert ratios[2] < sharp.ceiling_ratio < 1
    assert not face_detail(frame, blur(frame, 3), landmarks, 64).detailed()
    # Larger models reach higher.
    ceilings = [face_detail(frame, frame, landmarks, size).ceiling_ratio for size in (32, 64, 128)]
    assert ceilings[0] < ceilings[1] < ceilings[2] < 1


def test_a_perfect_model_of_the_size_reaches_the_ceiling(d18_face) -> None:
    frame, landmarks = d18_face
    perfect = face_detail(frame, through_model(frame, landmarks, 64), landmarks, 64)
    assert perfect.ratio == pytest.approx(perfect.ceiling_ratio, rel=1e-6)
    assert perfect.detailed()
    # A 128-px model's ceiling is out of a 64-px model's reach.
    assert not face_detail(frame, through_model(frame, landmarks, 64), landmarks, 128).detailed()


def test_detail_is_measured_on_the_inner_face_only(d18_face) -> None:
    """A blur (or a blend's feathered edge) outside the face does not move the measure; inside it does."""
    frame, landmarks = d18_face
    face = face_region_mask(landmarks, frame.shape)
    outside = np.where(face[..., None], frame, blur(frame, 4))
    assert face_detail(frame, outside, landmarks, 64).ratio == pytest.approx(1.0, abs=0.02)
    hull = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, np.round(cv2.convexHull(landmarks.astype(np.float32))).astype(np.int32), 1)
    inside = np.where(hull[..., None].astype(bool), blur(frame, 4), frame)
    assert face_detail(frame, inside, landmarks, 64).ratio < 0.2


@pytest.fixture(scope="module")
def swap_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """d18 as the original; d19 (the target person) as a perfect "swap", sharp and blurred; d19's faces."""
    folder = tmp_path_factory.mktemp("swap_pair")
    original = [f.image for f in VideoSource(require_data("video", "d18.mp4")).frames(0, 4)]
    target = [f.image for f in VideoSource(require_data("video", "d19.mp4")).frames(100, 104)]
    faces = folder / "d19_faces"
    make_face_crops(require_data("video", "d19.mp4"), faces, 3)
    return {
        "original": write_frames(folder / "original", original),
        "sharp": write_frames(folder / "sharp", target),
        "blurred": write_frames(folder / "blurred", [blur(image, 3) for image in target]),
        "faces": faces,
    }


def test_a_blurred_swap_is_recognised_but_does_not_count_with_detail(swap_pair) -> None:
    """The blur of the target still looks like the target to dlib: only the detail gate catches it."""
    sharp = score(swap_pair["original"], swap_pair["sharp"], [swap_pair["faces"]], progress=False)
    blurred = score(swap_pair["original"], swap_pair["blurred"], [swap_pair["faces"]], progress=False)
    assert sharp.identity_transfer == 1.0 and sharp.identity_transfer_with_detail == 1.0
    assert blurred.identity_transfer == 1.0
    assert blurred.identity_transfer_with_detail == 0.0 and blurred.detailed_frames == 0.0
    assert blurred.detail < 0.8 * blurred.detail_ceiling < sharp.detail
    assert blurred.model_size == 64 and blurred.detail_ceiling == pytest.approx(sharp.detail_ceiling)
    # The full-resolution "swap" shows more than a 64-px model paints: the report says so.
    from faceswap.score import OVER_CEILING, format_report

    assert sharp.detail > OVER_CEILING * sharp.detail_ceiling and "above the ceiling" in format_report(sharp)
    assert "above the ceiling" not in format_report(blurred)
    # Identities made once (as a benchmark scoring many swaps does) give the same report.
    from faceswap.identity import FaceEmbedder
    from faceswap.score import identity_of

    finder = FaceFinder(upsample=1)
    target = identity_of([swap_pair["faces"]], finder, FaceEmbedder(), "target")
    again = score(swap_pair["original"], swap_pair["blurred"], [], identities=(target, None), progress=False)
    assert again.target_distance == pytest.approx(blurred.target_distance)
    assert again.identity_transfer_with_detail == 0.0


def test_cli_reports_detail_with_the_model_folders_size(tmp_path: Path, swap_pair) -> None:
    from faceswap.model_folder import TrainingState, write_state

    model = tmp_path / "model"
    model.mkdir()
    write_state(model, TrainingState(model="original128", input_size=128))
    original, swapped, faces = (str(swap_pair[k]) for k in ("original", "blurred", "faces"))
    reports = {}
    for name, extra in (("default", []), ("folder", ["-m", str(model)]), ("option", ["--model-size", "32"])):
        path = tmp_path / f"{name}.json"
        result = run_cli(original, swapped, "--target", faces, "--json", str(path), "-q", *extra)
        assert result.returncode == 0, result.stderr
        assert "with detail" in result.stdout and "ceiling at" in result.stdout
        reports[name] = json.loads(path.read_text())
    assert [reports[n]["model_size"] for n in ("default", "folder", "option")] == [64, 128, 32]
    assert reports["option"]["detail_ceiling"] < reports["default"]["detail_ceiling"]
    assert reports["default"]["detail_ceiling"] < reports["folder"]["detail_ceiling"]
    assert reports["default"]["identity_transfer"] == 1.0
    assert reports["default"]["identity_transfer_with_detail"] == 0.0
    assert reports["default"]["detail_gate"] == 0.8
    row = reports["default"]["per_frame"][0]
    assert row["transferred"] is True and row["detailed"] is False and row["transferred_with_detail"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--model-size", "4"], "at least 8"), (["-m", "{tmp}"], "not a model folder")],
)
def test_cli_bad_model_size_is_one_line(tmp_path: Path, swap_pair, extra: list[str], message: str) -> None:
    original = str(swap_pair["original"])
    result = run_cli(original, original, "--target", original, *[a.format(tmp=tmp_path) for a in extra])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_the_report_wraps_pose_differences() -> None:
    """A roll of 179° against -179° is 2° of drift, not 358°."""
    from faceswap.score import FrameScore, _summarise

    rows = [
        FrameScore(
            frame=i,
            original_face=True,
            swapped_face=True,
            pose_original=[0, 0, 179],
            pose_swapped=[1, 0, -179],
        )
        for i in range(3)
    ]
    tracks = [None] * 3  # no landmarks: jitter is not measured
    report = _summarise(rows, tracks, tracks, 64)
    assert report.pose_error == {"yaw": 1.0, "pitch": 0.0, "roll": 2.0}
    assert (
        report.pose_offset == {"yaw": 1.0, "pitch": 0.0, "roll": 2.0}
        and report.pose_tracking_error["roll"] == 0.0
    )


def test_pose_drift_splits_a_steady_offset_from_motion_not_followed() -> None:
    """A swap tilted 10° throughout follows the head; one that stays still while the head turns does not."""
    from faceswap.score_measures import pose_drift

    turning = np.stack([np.linspace(-20, 20, 9), np.zeros(9), np.zeros(9)], axis=1)
    tilted = pose_drift(turning, turning + np.array([0, 10, 0]))
    assert tilted.error == {"yaw": 0.0, "pitch": 10.0, "roll": 0.0}
    assert tilted.offset == {"yaw": 0.0, "pitch": 10.0, "roll": 0.0}
    assert tilted.tracking_error == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    still = pose_drift(turning, np.zeros_like(turning))
    assert still.offset["yaw"] == 0.0 and still.tracking_error["yaw"] == still.error["yaw"] == round(
        100 / 9, 3
    )
    with_nan = pose_drift(np.vstack([turning, [np.nan] * 3]), np.vstack([turning, [0, 0, 0]]))
    assert with_nan.error["yaw"] == 0.0  # a frame without a pose is left out
    assert pose_drift(np.empty((0, 3)), np.empty((0, 3))).error == {"yaw": None, "pitch": None, "roll": None}
