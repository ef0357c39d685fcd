"""The extract pipeline on real media: a clip, an interrupted and resumed run, images, folders, filters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.alignments import ALIGNMENTS_NAME, Alignments
from faceswap.crops import read_crop
from faceswap.errors import InputError, OutputError
from faceswap.extract import ExtractOptions, extract
from faceswap.landmarks import interocular_distance
from faceswap.media.ffmpeg import run_ffmpeg
from faceswap.track import DETECT_INTERVAL
from tests.conftest import require_data

CHUNK = 64  # the most frames per chunk: d18's 216 frames make 4 chunks of 54 all the same


def frames_json(path: Path) -> dict:
    return json.loads((path / ALIGNMENTS_NAME).read_text())["frames"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, video_d18: Path) -> tuple[Path, object]:
    output = tmp_path_factory.mktemp("full") / "d18_faces"
    summary = extract(video_d18, ExtractOptions(output=output, jobs=2, chunk_frames=CHUNK, progress=False))
    return output, summary


def test_a_clip_gives_a_face_in_every_frame_with_crops(full_run, video_d18: Path) -> None:
    output, summary = full_run
    alignments = Alignments.load(output / ALIGNMENTS_NAME)
    assert alignments.source.frame_count == 216 and alignments.source.kind == "video"
    assert alignments.missing_frames() == []
    assert summary.frames == 216 and summary.frames_with_faces >= 214
    assert alignments.settings["size"] == 256 and alignments.settings["smooth"]["radius"] == 2
    crops = sorted(output.glob("*.png"))
    assert len(crops) == summary.saved == alignments.face_count >= 214
    index, record = 100, alignments.frames[100]
    face = record.faces[0]
    assert face.crop == "d18_000100_0.png"
    pixels, info = read_crop(output / face.crop)
    assert pixels.shape == (256, 256, 3)
    assert (info.frame, info.face, info.source) == (index, 0, "d18.mp4")
    # The crop's landmarks are the frame's landmarks carried into the crop.
    from faceswap.align import crop_matrix, transform_points

    expected = transform_points(face.landmarks, crop_matrix(face.matrix, 256))
    np.testing.assert_allclose(info.landmarks, expected, atol=0.02)
    # Most frames are followed (no detector score), one in DETECT_INTERVAL or so detected.
    scores = [f.score for _, r in alignments for f in r.faces]
    assert 0 < sum(s is not None for s in scores) < len(scores) / (DETECT_INTERVAL - 1)


def test_interrupted_then_resumed_equals_one_full_run(tmp_path: Path, full_run, video_d18: Path) -> None:
    output = tmp_path / "d18_faces"

    def interrupt(finished_chunks: int) -> None:
        raise KeyboardInterrupt

    options = ExtractOptions(output=output, jobs=2, chunk_frames=CHUNK, progress=False, save_every_s=0.0)
    options.on_save = interrupt
    with pytest.raises(KeyboardInterrupt):
        extract(video_d18, options)
    partial = Alignments.load(output / ALIGNMENTS_NAME)  # a valid file ...
    done = sorted(partial.frames)
    assert 0 < len(done) < 216
    size = partial.settings["chunk_frames"]
    assert size == 54
    chunks = {index // size for index in done}  # ... of whole chunks only
    assert all(set(range(c * size, min(216, c * size + size))) <= set(done) for c in chunks)

    with pytest.raises(OutputError, match="--resume"):  # never mixed with a new run by accident
        extract(video_d18, ExtractOptions(output=output, jobs=2, chunk_frames=CHUNK, progress=False))
    summary = extract(
        video_d18, ExtractOptions(output=output, jobs=2, chunk_frames=CHUNK, progress=False, resume=True)
    )
    assert summary.skipped_frames == len(done) and summary.frames == 216 - len(done)
    assert frames_json(output) == frames_json(full_run[0])
    assert sorted(p.name for p in output.glob("*.png")) == sorted(p.name for p in full_run[0].glob("*.png"))
    with pytest.raises(OutputError, match="finished extract") as refused:  # nothing is left to resume
        extract(video_d18, ExtractOptions(output=output, jobs=2, chunk_frames=CHUNK, progress=False))
    assert "--resume" not in str(refused.value) and "--overwrite" in str(refused.value)


def test_resume_with_other_settings_is_refused(tmp_path: Path, full_run, video_d18: Path) -> None:
    output = tmp_path / "copy"
    shutil.copytree(full_run[0], output)
    with pytest.raises(InputError, match="size"):
        extract(video_d18, ExtractOptions(output=output, size=128, resume=True, progress=False))


def test_filters_drop_and_count(tmp_path: Path, video_d18: Path) -> None:
    # d18's face is 240 to 295 px wide: found (detection looks down to 110/150 of --min-size), then dropped.
    small = extract(video_d18, ExtractOptions(output=tmp_path / "a", every=20, min_size=330, progress=False))
    assert small.frames == 11 and small.too_small == 11 and small.faces == 0
    assert all(record.faces == [] for _, record in Alignments.load(tmp_path / "a" / ALIGNMENTS_NAME))
    blurry = extract(
        video_d18, ExtractOptions(output=tmp_path / "b", every=20, blur_threshold=1e9, progress=False)
    )
    assert blurry.blurry == blurry.faces == 11 and blurry.saved == 0
    records = Alignments.load(tmp_path / "b" / ALIGNMENTS_NAME)
    assert all(face.crop is None and face.blur > 0 for _, record in records for face in record.faces)
    assert list((tmp_path / "b").glob("*.png")) == []


def test_reference_keeps_only_that_person(tmp_path: Path, video_d18: Path, video_d19: Path) -> None:
    from faceswap.media.reader import VideoSource

    photos = []
    for video in (video_d18, video_d19):  # two different men (embedding distance 0.83)
        photo = tmp_path / f"{video.stem}.png"
        frame = next(iter(VideoSource(video).frames(100, 101))).image
        cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        photos.append(photo)
    options = ExtractOptions(output=tmp_path / "a", every=30, reference=[photos[0]], progress=False)
    kept = extract(video_d18, options)
    assert kept.faces == 8 and kept.wrong_person == 0
    records = Alignments.load(tmp_path / "a" / ALIGNMENTS_NAME)
    assert all(
        f.identity_distance is not None and f.identity_distance < 0.6 for _, r in records for f in r.faces
    )
    assert records.settings["reference"] == ["d18.png"] and records.settings["identity_threshold"] == 0.6
    options = ExtractOptions(output=tmp_path / "b", every=30, reference=[photos[1]], progress=False)
    dropped = extract(video_d18, options)
    assert dropped.faces == 0 and dropped.wrong_person == 8 and dropped.frames == 8


def test_image_folder_single_image_and_folder_of_videos(tmp_path: Path, astronaut: np.ndarray) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    for name in ("s25.jpg", "s39.jpg"):
        shutil.copy(require_data("images", "no_face", name), photos / name)
    summary = extract(photos, ExtractOptions(output=tmp_path / "out", progress=False))
    assert (summary.frames, summary.frames_with_faces, summary.faces) == (3, 1, 1)
    alignments = Alignments.load(tmp_path / "out" / ALIGNMENTS_NAME)
    assert alignments.source.kind == "images"
    assert [r.name for _, r in alignments] == ["astronaut.png", "s25.jpg", "s39.jpg"]
    assert alignments.faces(0)[0].crop == "photos_000000_0.png"

    single = extract(photos / "astronaut.png", ExtractOptions(output=tmp_path / "one", progress=False))
    assert single.faces == 1 and (tmp_path / "one" / "astronaut_000000_0.png").is_file()

    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(require_data("video", "d0.mp4"), videos / "d0.mp4")
    gif = run_ffmpeg(
        [
            "-i",
            str(require_data("video", "d18.mp4")),
            "-frames:v",
            "6",
            "-vf",
            "scale=240:240",
            str(videos / "d0.gif"),
        ]
    )
    assert gif.returncode == 0
    summary = extract(videos, ExtractOptions(output=tmp_path / "v", every=4, progress=False))
    assert summary.sources == 2 and summary.frames == 20 + 2
    # A gif is a video; two videos with the same stem get output folders named apart.
    for name, count in (("d0.mp4_faces", 78), ("d0.gif_faces", 6)):
        alignments = Alignments.load(tmp_path / "v" / name / ALIGNMENTS_NAME)
        assert alignments.source.frame_count == count
        assert sorted(alignments.frames) == list(range(0, count, 4))


def landmark_jitter(alignments: Alignments) -> float:
    """Mean second difference of the first face's landmarks, frame to frame, in inter-ocular distances."""
    series = np.stack([record.faces[0].landmarks for _, record in alignments if record.faces])
    second = np.linalg.norm(series[2:] - 2 * series[1:-1] + series[:-2], axis=2).mean(axis=1)
    return float(np.mean(second / np.array([interocular_distance(lm) for lm in series[1:-1]])))


def test_smoothing_removes_jitter_without_moving_the_face(tmp_path: Path, full_run, video_d18: Path) -> None:
    smoothed = Alignments.load(full_run[0] / ALIGNMENTS_NAME)
    output = tmp_path / "raw"
    options = ExtractOptions(output=output, jobs=2, chunk_frames=CHUNK, smooth=False, progress=False)
    extract(video_d18, options)
    raw = Alignments.load(output / ALIGNMENTS_NAME)
    assert raw.settings["smooth"] != smoothed.settings["smooth"]
    # On d18 the followed landmarks jitter by about 1.9 % of the inter-ocular distance; smoothed, 0.4 %.
    assert landmark_jitter(smoothed) < 0.5 * landmark_jitter(raw)
    # A smoothing that lagged or blurred the face would move its landmarks away from the raw ones.
    for index in (10, 100, 200):
        moved = np.linalg.norm(smoothed.faces(index)[0].landmarks - raw.faces(index)[0].landmarks, axis=1)
        assert moved.mean() < 0.03 * interocular_distance(raw.faces(index)[0].landmarks)


def test_max_faces_keeps_the_largest(tmp_path: Path) -> None:
    photo = require_data("dlib_faces", "bald_guys.jpg")
    every = extract(photo, ExtractOptions(output=tmp_path / "all", upsample=1, progress=False))
    assert every.faces >= 3
    two = extract(photo, ExtractOptions(output=tmp_path / "two", upsample=1, max_faces=2, progress=False))
    assert two.faces == 2 and two.extra == every.faces - 2

    def widths(folder: str) -> list[float]:
        faces = Alignments.load(tmp_path / folder / ALIGNMENTS_NAME).faces(0)
        return sorted(face.box[2] - face.box[0] for face in faces)

    assert widths("two") == widths("all")[-2:]


def test_the_cnn_detector_finds_the_faces_hog_finds(tmp_path: Path, astronaut: np.ndarray, video_d18) -> None:
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    hog = extract(photo, ExtractOptions(output=tmp_path / "hog", progress=False))
    cnn = extract(photo, ExtractOptions(output=tmp_path / "cnn", detector="cnn", progress=False))
    assert hog.faces == cnn.faces == 1
    by_hog = Alignments.load(tmp_path / "hog" / ALIGNMENTS_NAME).faces(0)[0].landmarks
    by_cnn = Alignments.load(tmp_path / "cnn" / ALIGNMENTS_NAME).faces(0)[0].landmarks
    # MMOD's box is placed a little differently; the predictor lands within ~1 % of the IOD of HOG's.
    assert np.linalg.norm(by_cnn - by_hog, axis=1).mean() < 0.03 * interocular_distance(by_hog)
    options = ExtractOptions(output=tmp_path / "clip", detector="cnn", every=54, progress=False)
    clip = extract(video_d18, options)
    assert clip.frames == clip.frames_with_faces == 4
    assert Alignments.load(tmp_path / "clip" / ALIGNMENTS_NAME).settings["detector"] == "cnn"
