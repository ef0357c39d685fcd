"""convert follows the curation and the chosen person: deleted crops, --reference, per-track decisions.

Material: a clip of two men side by side (d18.mp4 beside d19.mp4, 30 frames,
built here with ffmpeg's hstack) and a stand-in model that paints a third
person's face (d6's woman) over every face it is given, so a swapped half of
the frame measurably changes and an unswapped one stays as encoded.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.cli import main
from faceswap.convert import ConvertOptions, convert
from faceswap.media.ffmpeg import run_ffmpeg, summarize_stderr
from faceswap.media.reader import VideoSource
from tests.conftest import require_data
from tests.convert_support import find_alignments_now, fixed_face_model, workspace

FRAMES = 30


@functools.cache
def two_people() -> Path:
    """d18 (left) beside d19 (right), their first 30 frames, 960x480, nearly lossless."""
    left, right = require_data("video", "d18.mp4"), require_data("video", "d19.mp4")
    path = workspace() / "two_people.mp4"
    graph = "[0:v][1:v]hstack=inputs=2[v]"
    args = ["-i", str(left), "-i", str(right), "-filter_complex", graph, "-map", "[v]"]
    args += ["-frames:v", str(FRAMES), "-c:v", "libx264", "-crf", "8", "-pix_fmt", "yuv420p", "-y", str(path)]
    result = run_ffmpeg(args)
    assert result.returncode == 0, summarize_stderr(result.stderr)
    return path


@functools.cache
def third_person_model():
    """A stand-in that paints d6's face over every face."""
    video = require_data("video", "d6.mp4")
    return fixed_face_model(video, find_alignments_now(video, range(1)))


def reference_photo(video: str, frame: int) -> Path:
    """One frame of a shared clip, outside the 30 of the test clip, as a PNG photo."""
    path = workspace() / f"{video}_{frame}.png"
    if not path.exists():
        image = next(VideoSource(require_data("video", f"{video}.mp4")).frames(frame, frame + 1)).image
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def half_differences(original: Path, converted: Path) -> np.ndarray:
    """Mean absolute difference of the left and the right half, per frame: shape ``(frames, 2)``."""
    rows = []
    for before, after in zip(VideoSource(original).frames(), VideoSource(converted).frames(), strict=True):
        diff = np.abs(before.image.astype(np.int16) - after.image.astype(np.int16))
        middle = diff.shape[1] // 2
        rows.append([diff[:, :middle].mean(), diff[:, middle:].mean()])
    return np.array(rows)


def test_reference_swaps_only_that_persons_half(tmp_path: Path) -> None:
    clip = two_people()
    output = tmp_path / "left_only.mp4"
    options = ConvertOptions(output=output, crf=0, reference=[reference_photo("d18", 150)], progress=False)
    summary = convert(clip, options, model=third_person_model())
    diff = half_differences(clip, output)
    assert summary.frames == FRAMES and summary.faces == FRAMES  # one face a frame: d18's
    assert summary.other_people == FRAMES  # d19's face in every frame was left alone
    assert diff[:, 0].min() > 2.0  # d18's half is swapped in every frame, not just most
    assert diff[:, 1].max() < 1.5  # d19's half is only re-encoded
    assert (diff[:, 0] > 2 * diff[:, 1]).all()


def test_without_reference_both_faces_are_swapped(tmp_path: Path) -> None:
    clip = two_people()
    output = tmp_path / "both.mp4"
    summary = convert(clip, ConvertOptions(output=output, crf=0, progress=False), model=third_person_model())
    diff = half_differences(clip, output)
    assert summary.faces == 2 * FRAMES and summary.other_people == 0
    assert diff.min() > 2.0


def test_reference_with_an_alignments_file_picks_the_other_person(tmp_path: Path) -> None:
    clip = two_people()
    alignments = tmp_path / "alignments.json"
    find_alignments_now(clip).save(alignments)
    output = tmp_path / "right_only.mp4"
    options = ConvertOptions(
        output=output, crf=0, alignments=alignments, reference=[reference_photo("d19", 200)], progress=False
    )
    summary = convert(clip, options, model=third_person_model())
    diff = half_differences(clip, output)
    assert summary.faces == FRAMES
    assert diff[:, 1].min() > 2.0 and diff[:, 0].max() < 1.5


def test_a_recogniser_miss_does_not_leave_a_frame_unswapped(tmp_path: Path, monkeypatch) -> None:
    """One sampled face of the track far from the reference: the track's majority still swaps it."""
    from faceswap import convert_select

    real = convert_select.SAMPLES_PER_TRACK
    calls = {"count": 0}
    original_embed = None

    from faceswap.identity import FaceEmbedder

    original_embed = FaceEmbedder.embed_many

    def flaky(self, image, faces):
        embeddings = original_embed(self, image, faces)
        calls["count"] += 1
        if calls["count"] == 2:  # the recogniser misses on one sampled frame
            embeddings = embeddings + 1.0
        return embeddings

    monkeypatch.setattr(FaceEmbedder, "embed_many", flaky)
    clip = two_people()
    output = tmp_path / "left.mp4"
    options = ConvertOptions(output=output, crf=0, reference=[reference_photo("d18", 150)], progress=False)
    summary = convert(clip, options, model=third_person_model())
    assert calls["count"] >= real  # every sampled frame was looked at
    assert summary.faces == FRAMES  # all 30 of d18's faces, the missed frame's too
    assert half_differences(clip, output)[:, 0].min() > 2.0


@pytest.mark.parametrize("photo", ["no_face", "two_faces"])
def test_unclear_reference_photo_is_one_line(tmp_path: Path, capsys, photo: str) -> None:
    if photo == "no_face":
        path = require_data("images", "no_face", "s22.jpg")
    else:
        left, right = (
            cv2.imread(str(reference_photo("d18", 150))),
            cv2.imread(str(reference_photo("d19", 200))),
        )
        path = tmp_path / "two.png"
        cv2.imwrite(str(path), np.hstack([left, right]))
    output = tmp_path / "out.mp4"
    code = main(
        [
            "convert",
            str(two_people()),
            "-m",
            str(tmp_path / "no_model"),
            "-o",
            str(output),
            "--reference",
            str(path),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert ("no face found" in err[0]) if photo == "no_face" else ("2 faces of similar size" in err[0])
    assert not output.exists()


# ----------------------------------------------------------------------------------------------
# Deleted crops


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An excerpt of d18 (20 frames) and its real extract: crops and alignments.json."""
    from faceswap.extract import ExtractOptions, extract
    from tests.convert_support import excerpt

    folder = tmp_path_factory.mktemp("deleted")
    clip = excerpt(require_data("video", "d18.mp4"), 20, folder / "d18_short.mp4")
    extract(clip, ExtractOptions(output=folder / "d18_short_faces", jobs=1, progress=False))
    return clip, folder / "d18_short_faces"


def test_deleted_crops_are_not_swapped(tmp_path: Path, extracted: tuple[Path, Path]) -> None:
    clip, faces = extracted
    kept = tmp_path / "kept"
    kept.mkdir()
    for crop in sorted(faces.glob("*.png")):
        frame = int(crop.stem.split("_")[-2])
        if not 5 <= frame <= 9:  # the user deleted the crops of frames 5 to 9 (here: left them out)
            (kept / "person_1").mkdir(exist_ok=True)
            (kept / "person_1" / crop.name).write_bytes(crop.read_bytes())  # sorted into a subfolder
    output = tmp_path / "out.mp4"
    options = ConvertOptions(
        output=output, crf=0, alignments=faces / "alignments.json", faces=kept, progress=False
    )
    summary = convert(clip, options, model=third_person_model())
    assert summary.deleted == 5 and summary.faces == 15
    assert "5 whose crops were deleted" in summary.format()
    change = np.array(
        [
            np.abs(a.image.astype(int) - b.image.astype(int)).mean()
            for a, b in zip(VideoSource(clip).frames(), VideoSource(output).frames(), strict=True)
        ]
    )
    assert change[5:10].max() < 1.5 and np.delete(change, range(5, 10)).min() > 2.0


def test_no_crop_left_is_one_line(tmp_path: Path, capsys, extracted: tuple[Path, Path]) -> None:
    clip, faces = extracted
    empty = tmp_path / "empty"
    empty.mkdir()
    output = tmp_path / "out.mp4"
    code = main(
        [
            "convert",
            str(clip),
            "-m",
            str(tmp_path / "no_model"),
            "-a",
            str(faces / "alignments.json"),
            "--faces",
            str(empty),
            "-o",
            str(output),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "none of the 20 face crops" in err[0]
    assert not output.exists()


def test_help_states_the_pipeline_defaults() -> None:
    from faceswap.cli import build_parser
    from faceswap.identity import SAME_PERSON_THRESHOLD

    parser = build_parser()
    convert_parser = parser._subparsers._group_actions[0].choices["convert"]
    defaults = {action.dest: action.default for action in convert_parser._actions}
    assert defaults["identity_threshold"] == SAME_PERSON_THRESHOLD == ConvertOptions().identity_threshold
    assert defaults["reference"] == [] and defaults["faces"] is None
