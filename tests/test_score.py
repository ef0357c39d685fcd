"""faceswap score: every metric responds to the fault it is meant to catch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.detect import FaceDetector, LandmarkPredictor
from faceswap.errors import InputError
from faceswap.identity import SAME_PERSON_THRESHOLD, FaceEmbedder, distance
from faceswap.media.reader import VideoSource
from faceswap.pose import FACE_MODEL_MM, POSE_LANDMARKS, head_pose
from faceswap.score import score
from tests.conftest import make_face_crops, require_data

FRAMES = 30


def write_frames(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"frame{index:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    video = require_data("video", "d18.mp4")
    return [frame.image for frame in VideoSource(video).frames(0, FRAMES)]


@pytest.fixture(scope="module")
def still(tmp_path_factory: pytest.TempPathFactory, clip_frames: list[np.ndarray]) -> Path:
    return write_frames(tmp_path_factory.mktemp("still"), clip_frames)


@pytest.fixture(scope="module")
def other_person(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("d19_faces")
    make_face_crops(require_data("video", "d19.mp4"), folder, 3)
    return folder


@pytest.fixture(scope="module")
def models() -> tuple[FaceDetector, LandmarkPredictor, FaceEmbedder]:
    return FaceDetector(), LandmarkPredictor(), FaceEmbedder()


def landmarks_of(image: np.ndarray, models) -> np.ndarray:
    detector, predictor, _ = models
    return predictor(image, detector.detect(image)[0].box)


# -- identity ---------------------------------------------------------------------------------------------


def test_same_person_is_closer_than_different_people(models) -> None:
    embed = models[2].embed
    frames = {
        (name, index): frame.image
        for name in ("d18", "d19", "d3")
        for frame in VideoSource(require_data("video", f"{name}.mp4")).frames(0, 151, 150)
        for index in [frame.index]
    }
    embeddings = {key: embed(image, landmarks_of(image, models)) for key, image in frames.items()}
    for name in ("d18", "d19", "d3"):
        same = distance(embeddings[(name, 0)], embeddings[(name, 150)])
        assert same < SAME_PERSON_THRESHOLD
        for other in {"d18", "d19", "d3"} - {name}:
            assert distance(embeddings[(name, 0)], embeddings[(other, 0)]) > max(same, SAME_PERSON_THRESHOLD)


def test_unswapped_clip_scores_no_identity_transfer(still: Path, other_person: Path) -> None:
    report = score(still, still, [other_person], identity_every=10, progress=False)
    assert report.identity_frames == 3
    assert [row.frame for row in report.per_frame if row.identity_checked] == [0, 10, 20]
    assert report.identity_transfer == 0.0
    assert report.target_distance > SAME_PERSON_THRESHOLD
    assert report.source_distance == 0.0
    assert report.lost_faces == 0 and report.frames_with_face == FRAMES
    assert report.steadiness == pytest.approx(1.0)
    assert report.background_psnr == 100.0
    assert report.expression_error == 0.0
    assert all(value == 0.0 for value in report.pose_error.values())


def test_expression_is_also_reported_on_the_frames_the_target_shows(tmp_path: Path) -> None:
    """d18's mouth is shut in frames 0-62 and wide open from 63: a target of shut mouths covers the first."""
    video = require_data("video", "d18.mp4")
    clip = write_frames(tmp_path / "clip", [frame.image for frame in VideoSource(video).frames(50, 90)])
    closed = tmp_path / "closed_mouths"
    make_face_crops(video, closed, 20)
    report = score(clip, clip, [closed], identity_every=1000, progress=False)
    covered = {row.frame: row.covered for row in report.per_frame}
    assert all(covered[index] for index in range(0, 10))  # frames 50-59
    assert not any(covered[index] for index in range(16, 40))  # frames 66-89, the mouth wide open
    assert 0.25 < report.covered_frames < 0.45
    assert report.expression_error_covered == 0.0  # an unswapped clip keeps every expression
    # Photos without landmarks tell nothing about coverage.
    photos = write_frames(tmp_path / "photos", [next(VideoSource(video).frames(0, 1)).image])
    bare = score(clip, clip, [photos], identity_every=1000, progress=False)
    assert bare.covered_frames is None and bare.expression_error_covered is None


def test_unswapped_clip_against_a_named_source_scores_no_transfer(
    tmp_path: Path, still: Path, other_person: Path
) -> None:
    """With --source photos of the same man (other frames), the source distance is not trivially 0."""
    source = tmp_path / "d18_faces"
    make_face_crops(require_data("video", "d18.mp4"), source, 3, start=150)
    report = score(still, still, [other_person], [source], identity_every=10, progress=False)
    assert report.identity_frames == 3
    assert 0.0 < report.source_distance < SAME_PERSON_THRESHOLD < report.target_distance
    assert report.identity_transfer == 0.0


def test_the_target_itself_scores_full_transfer(tmp_path: Path, other_person: Path) -> None:
    """A "swap" that shows the target person everywhere transfers identity in every frame."""
    images = [frame.image for frame in VideoSource(require_data("video", "d18.mp4")).frames(0, 4)]
    targets = [frame.image for frame in VideoSource(require_data("video", "d19.mp4")).frames(100, 104)]
    original = write_frames(tmp_path / "original", images)
    swapped = write_frames(tmp_path / "swapped", targets)
    report = score(original, swapped, [other_person], progress=False)
    assert report.identity_transfer == 1.0
    assert report.target_distance < SAME_PERSON_THRESHOLD < report.original_target_distance


# -- pose -------------------------------------------------------------------------------------------------


def project(yaw: float, pitch: float, roll: float, size: int = 640) -> np.ndarray:
    """Landmarks of the generic face model turned by the given angles (degrees), seen by the score camera."""
    rotation = _axis(2, np.radians(roll)) @ _axis(1, np.radians(-yaw)) @ _axis(0, np.radians(-pitch))
    camera = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1.0]])
    points = (FACE_MODEL_MM @ rotation.T) + [0, 0, 600]
    projected = points @ camera.T
    landmarks = np.zeros((68, 2))
    landmarks[list(POSE_LANDMARKS)] = projected[:, :2] / projected[:, 2:]
    return landmarks


def _axis(axis: int, angle: float) -> np.ndarray:
    """Right-handed rotation by ``angle`` (radians) about coordinate axis 0, 1 or 2."""
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.eye(3)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


@pytest.mark.parametrize(("yaw", "pitch", "roll"), [(0, 0, 0), (25, 0, 0), (-15, 10, 5), (5, -20, -12)])
def test_pose_recovers_known_angles(yaw: float, pitch: float, roll: float) -> None:
    pose = head_pose(project(yaw, pitch, roll), (640, 640))
    np.testing.assert_allclose(pose.as_array(), [yaw, pitch, roll], atol=0.5)


def test_pose_sign_conventions() -> None:
    turned_right = project(25, 0, 0)
    eyes_middle = (turned_right[36] + turned_right[45]) / 2
    assert turned_right[30, 0] > eyes_middle[0]  # positive yaw: the nose swings to the image's right
    looking_up = project(0, 20, 0)
    level = project(0, 0, 0)
    # positive pitch: the face tilts up, so the eyes sink towards the nose tip in the image
    assert looking_up[30, 1] - looking_up[36, 1] < level[30, 1] - level[36, 1]


def test_mirrored_and_rotated_frames_move_the_pose(astronaut: np.ndarray, models) -> None:
    size = (astronaut.shape[1], astronaut.shape[0])
    pose = head_pose(landmarks_of(astronaut, models), size)
    mirrored = head_pose(landmarks_of(np.ascontiguousarray(astronaut[:, ::-1]), models), size)
    assert abs(pose.yaw) > 5 and np.sign(mirrored.yaw) == -np.sign(pose.yaw)
    assert abs(pose.yaw + mirrored.yaw) < 3 and abs(pose.pitch - mirrored.pitch) < 3
    for angle in (-15, 10):
        matrix = cv2.getRotationMatrix2D((256, 256), angle, 1.0)  # positive: counter-clockwise
        rotated = head_pose(landmarks_of(cv2.warpAffine(astronaut, matrix, size), models), size)
        assert rotated.roll - pose.roll == pytest.approx(-angle, abs=2.0)
        assert abs(rotated.yaw - pose.yaw) < 3


# -- steadiness, expression, background, lost faces -------------------------------------------------------


def test_shaken_clip_scores_worse_steadiness_and_background(
    tmp_path: Path, clip_frames: list[np.ndarray], still: Path, other_person: Path
) -> None:
    rng = np.random.default_rng(0)
    shaken = []
    for image in clip_frames:
        dx, dy = rng.uniform(-4, 4, 2)
        shaken.append(
            cv2.warpAffine(
                image, np.float64([[1, 0, dx], [0, 1, dy]]), (480, 480), borderMode=cv2.BORDER_REFLECT
            )
        )
    report = score(
        still, write_frames(tmp_path / "shaken", shaken), [other_person], identity_every=100, progress=False
    )
    assert report.steadiness > 2.0
    assert report.jitter_swapped > report.jitter_original
    assert report.background_psnr < 35


def test_lost_faces_are_counted(tmp_path: Path, clip_frames: list[np.ndarray], other_person: Path) -> None:
    original = write_frames(tmp_path / "original", clip_frames[:6])
    damaged = [image.copy() for image in clip_frames[:6]]
    for image in damaged[::2]:
        image[60:420, 60:420] = cv2.GaussianBlur(image[60:420, 60:420], (0, 0), 25)  # no face left
    report = score(original, write_frames(tmp_path / "damaged", damaged), [other_person], progress=False)
    assert report.lost_faces == 3
    assert [row.swapped_face for row in report.per_frame] == [False, True] * 3


def test_mismatched_inputs_are_refused(tmp_path: Path, clip_frames, still: Path, other_person: Path) -> None:
    shorter = write_frames(tmp_path / "short", clip_frames[:5])
    with pytest.raises(InputError, match="frames"):
        score(still, shorter, [other_person], progress=False)
    empty = tmp_path / "no_face_photos"
    write_frames(empty, [np.full((100, 100, 3), 128, np.uint8)])
    with pytest.raises(InputError, match="no face found in the target"):
        score(still, still, [empty], progress=False)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faceswap", "score", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_prints_a_table_and_writes_json(tmp_path: Path, clip_frames, other_person: Path) -> None:
    clip = write_frames(tmp_path / "clip", clip_frames[:5])
    report = tmp_path / "report.json"
    result = run_cli(str(clip), str(clip), "--target", str(other_person), "--json", str(report), "-q")
    assert result.returncode == 0, result.stderr
    assert "identity transfer" in result.stdout and "steadiness" in result.stdout
    document = json.loads(report.read_text())
    assert document["frames"] == 5 and len(document["per_frame"]) == 5
    assert document["identity_transfer"] == 0.0
    again = run_cli(str(clip), str(clip), "--target", str(other_person), "--json", str(report), "-q")
    assert again.returncode == 1 and "--overwrite" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.mp4", "missing2.mp4", "--target", "x.jpg"], "no such file"),
        (["{clip}", "{clip}", "--target", "{clip}/nope.jpg"], "no such file"),
        (["{clip}", "{clip}", "--target", "{clip}", "--identity-every", "0"], "at least 1"),
    ],
)
def test_cli_bad_inputs_are_one_line(tmp_path: Path, clip_frames, args: list[str], message: str) -> None:
    clip = write_frames(tmp_path / "clip", clip_frames[:2])
    result = run_cli(*[a.format(clip=clip) for a in args])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_a_large_identity_folder_is_sampled_evenly(tmp_path: Path, monkeypatch, models) -> None:
    """The identity of a folder of many faces is the mean of MAX_IDENTITY_FACES of them, spread over it."""
    import faceswap.score as score_module
    from faceswap.faces import FaceFinder
    from faceswap.score import identity_of

    folder = tmp_path / "d19_faces"
    make_face_crops(require_data("video", "d19.mp4"), folder, 9)
    embedded = []

    class CountingEmbedder:
        def embed(self, image, landmarks):
            embedded.append(landmarks)
            return models[2].embed(image, landmarks)

    finder = FaceFinder(models[0], models[1])
    whole = identity_of([folder], finder, CountingEmbedder(), "target")
    assert len(embedded) == 9
    monkeypatch.setattr(score_module, "MAX_IDENTITY_FACES", 3)
    embedded.clear()
    sampled = identity_of([folder], finder, CountingEmbedder(), "target")
    assert len(embedded) == 3
    assert distance(sampled, whole) < 0.1 < SAME_PERSON_THRESHOLD
