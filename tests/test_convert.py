"""``faceswap convert`` on real clips: timing and sound kept, faces changed, nothing else, steadily.

Tests that must tell a swapped face from the original use a stand-in model
that paints another man's face (:func:`tests.convert_support.other_face_model`):
an untrained network paints flat grey, which can come out close to the
original once colour-matched. The steadiness test's stand-in paints the
clip's own face, so that only the pipeline's geometry moves it. The real
Keras path (loading, batching, both decoders) runs with a ``lite`` network of
seeded random weights where only plumbing is tested. Long clips are converted
whole (the writer must keep every frame and the audio) but swap faces only in
a few frames (``--frames``), which keeps the suite fast.
"""

from __future__ import annotations

import logging
import shutil
import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceswap.alignments import Alignments
from faceswap.blend import BlendOptions, SwappedFace, face_mask
from faceswap.convert import ConvertOptions, convert, default_output
from faceswap.convert_plan import make_plan
from faceswap.fileio import TEMP_PREFIX
from faceswap.landmarks import face_hull
from faceswap.media.probe import probe_video, read_metadata
from faceswap.media.reader import VideoSource
from faceswap.media.writer import gif_frame_count, synthetic_label
from faceswap.score_measures import face_region_mask, jitter, psnr
from tests.conftest import require_data
from tests.convert_support import (
    alignments_of,
    cut_alignments,
    excerpt,
    find_alignments_now,
    fixed_face_model,
    lite_folder,
    lite_model,
    other_face_model,
)
from tests.test_writer import decode_pcm


def run(video: Path, output: Path, model: object = None, **options) -> object:
    """Convert with the other man's face painted in (or ``model``), quietly."""
    options.setdefault("progress", False)
    model = model or other_face_model()
    return convert(video, ConvertOptions(model=lite_folder(), output=output, **options), model=model)


def frames(path: Path, start: int = 0, stop: int | None = None) -> list[np.ndarray]:
    return [frame.image for frame in VideoSource(path).frames(start, stop)]


def face_interior(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The landmarks' hull, shrunk by 7 px: certainly inside the face."""
    inside = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, np.round(face_hull(landmarks)).astype(np.int32), 1)
    return cv2.erode(inside, np.ones((15, 15), np.uint8)).astype(bool)


def assert_same_timing_and_sound(original: Path, converted: Path) -> None:
    before, after = probe_video(original), probe_video(converted)
    assert after.frame_count == before.frame_count
    assert after.fps == before.fps
    assert after.size == before.size
    assert after.duration == pytest.approx(before.duration, abs=0.5 / float(before.fps))
    assert len(after.audio) == len(before.audio)
    for mine, theirs in zip(after.audio, before.audio, strict=True):
        assert mine.codec == theirs.codec
        assert mine.duration == pytest.approx(theirs.duration, abs=1e-3)
    for stream in range(len(before.audio)):
        assert decode_pcm(converted, stream) == decode_pcm(original, stream)  # copied: sample-exact


@pytest.fixture(scope="module")
def d18_converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """d18 (216 frames, silent aac) converted whole, every face swapped, from its alignments file."""
    video = require_data("video", "d18.mp4")
    output = tmp_path_factory.mktemp("d18") / "d18_swapped.mp4"
    run(video, output, alignments=alignments_of(video))
    return video, output


def test_d18_keeps_frames_rate_size_duration_and_audio(d18_converted: tuple[Path, Path]) -> None:
    video, output = d18_converted
    assert_same_timing_and_sound(video, output)
    assert read_metadata(output)["comment"] == synthetic_label()
    assert not list(output.parent.glob(f"{TEMP_PREFIX}*"))


def test_d18_changes_the_face_and_keeps_the_background(d18_converted: tuple[Path, Path]) -> None:
    video, output = d18_converted
    alignments = Alignments.load(alignments_of(video))
    for index in (0, 100, 215):
        before, after = frames(video, index, index + 1)[0], frames(output, index, index + 1)[0]
        landmarks = alignments.faces(index)[0].landmarks
        outside = ~face_region_mask(landmarks, before.shape)
        assert psnr(before, after, outside) > 40  # only the encoder's loss
        inside = face_interior(landmarks, before.shape)
        assert psnr(before, after, inside) < 30  # a different face (about 26; the encoder alone gives 45)


@pytest.mark.parametrize("name", ["d6", "d10"])
def test_audible_clips_keep_timing_and_sound(tmp_path: Path, name: str, caplog) -> None:
    """Whole clips (d6: 1008 frames) with audible audio; faces found now, swapped in 20 frames."""
    video = require_data("video", f"{name}.mp4")
    output = tmp_path / f"{name}.mp4"
    with caplog.at_level(logging.INFO, logger="faceswap"):
        # Colours as painted: the swapped frames then differ from the input by about 6 (mean over the
        # frame) against 1.5 for the encoder's loss in the others.
        summary = run(video, output, frames="100-119", blend=BlendOptions(color="none"))
    assert "finding faces now" in caplog.text
    assert "copied from the input (aac)" in caplog.text
    assert summary.frames == probe_video(video).frame_count and summary.swapped_frames == 20
    assert_same_timing_and_sound(video, output)
    before, after = frames(video, 90, 130), frames(output, 90, 130)
    difference = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(before, after, strict=True)]
    swapped = difference[10:30]
    kept = difference[:10] + difference[30:]
    assert min(swapped) > 2 * max(kept)  # only the selected frames were swapped


def test_a_clip_without_audio_converts_to_video_only(tmp_path: Path, caplog) -> None:
    video = require_data("video", "d0.mp4")
    output = tmp_path / "d0.mp4"
    with caplog.at_level(logging.INFO, logger="faceswap"):
        run(video, output, frames="0-9")
    assert "no audio" in caplog.text
    info = probe_video(output)
    assert not info.has_audio and info.frame_count == 78 and info.fps == 25


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 20 frames of d18, and their alignments (geometry from d18's own file)."""
    d18 = require_data("video", "d18.mp4")
    folder = tmp_path_factory.mktemp("short")
    clip = excerpt(d18, 20, folder / "short.mp4")
    alignments = cut_alignments(Alignments.load(alignments_of(d18)), clip, 20)
    alignments.frames[8].faces = []  # as if nobody were in frame 8
    path = folder / "short_alignments.json"
    alignments.save(path)
    return clip, path


def test_frames_outside_ranges_or_without_faces_are_unchanged(
    tmp_path: Path, short_clip: tuple[Path, Path]
) -> None:
    clip, alignments_path = short_clip
    output = tmp_path / "frames"
    summary = run(clip, output, alignments=alignments_path, frames="5-14")
    assert summary.swapped_frames == 9  # 5 to 14, less frame 8
    files = sorted(output.glob("*.png"))  # and the hidden marker that faceswap made the folder
    assert [f.name for f in files] == [f"frame_{i:06d}.png" for i in range(20)]
    alignments = Alignments.load(alignments_path)
    for index, (original, file) in enumerate(zip(frames(clip), files, strict=True)):
        converted = np.asarray(Image.open(file))
        if index < 5 or index > 14 or index == 8:
            np.testing.assert_array_equal(converted, original)  # bit for bit
            continue
        landmarks = alignments.faces(index)[0].landmarks
        outside = ~face_region_mask(landmarks, original.shape)
        np.testing.assert_array_equal(converted[outside], original[outside])
        assert psnr(original, converted, face_interior(landmarks, original.shape)) < 30


def test_gif_output_loops_with_the_expected_frames_and_label(
    tmp_path: Path, short_clip: tuple[Path, Path]
) -> None:
    clip, alignments_path = short_clip
    output = tmp_path / "short.gif"
    run(clip, output, alignments=alignments_path, fps=10, width=240)
    info = probe_video(output)
    assert info.frame_count == gif_frame_count(20, Fraction(30), 10) == 7
    assert info.size == (240, 240)
    with Image.open(output) as image:
        assert image.info["loop"] == 0
    assert read_metadata(output)["comment"] == synthetic_label()


def test_preview_shows_original_beside_converted(tmp_path: Path, short_clip: tuple[Path, Path]) -> None:
    clip, alignments_path = short_clip
    output = tmp_path / "preview.png"
    run(clip, output, alignments=alignments_path, preview=12)
    image = np.asarray(Image.open(output))
    original = frames(clip, 12, 13)[0]
    assert image.shape == (480, 960, 3)
    np.testing.assert_array_equal(image[:, :480], original)
    assert not np.array_equal(image[:, 480:], original)
    assert default_output(clip, preview=12).name == "short_preview12.png"
    assert default_output(clip).name == "short_swapped.mp4"
    lite = tmp_path / "a2b.png"
    run(clip, lite, model=lite_model(), alignments=alignments_path, preview=12)  # a real network
    other = tmp_path / "b2a.png"
    run(clip, other, model=lite_model(), alignments=alignments_path, preview=12, direction="b2a")
    lite_image = np.asarray(Image.open(lite))
    assert not np.array_equal(lite_image[:, 480:], original)
    b2a_image = np.asarray(Image.open(other))
    assert not np.array_equal(b2a_image[:, 480:], lite_image[:, 480:])  # the other decoder painted


def test_alignments_beside_the_input_are_found(tmp_path: Path, short_clip: tuple[Path, Path], caplog) -> None:
    """Without -a, the file extract writes next to the input (<name>_faces/alignments.json) is used."""
    clip, alignments_path = short_clip
    video = tmp_path / "clip.mp4"
    shutil.copy(clip, video)
    beside = tmp_path / "clip_faces" / "alignments.json"
    beside.parent.mkdir()
    shutil.copy(alignments_path, beside)
    with caplog.at_level(logging.INFO, logger="faceswap"):
        summary = run(video, tmp_path / "preview.png", preview=8)  # frame 8: no face in this file
    assert f"alignments: {beside}" in caplog.text and "finding faces now" not in caplog.text
    assert summary.faces == 0


def changed_pixels(clip: Path, output: Path, alignments: Path, **blend: object) -> np.ndarray:
    """Where the preview of frame 12 converted with ``blend`` options differs from the original."""
    run(clip, output, alignments=alignments, preview=12, overwrite=True, blend=BlendOptions(**blend))
    image = np.asarray(Image.open(output)).astype(int)
    return np.abs(image[:, 480:] - image[:, :480]).sum(axis=2) > 0


def test_mask_and_colour_options_change_the_output(tmp_path: Path, short_clip: tuple[Path, Path]) -> None:
    """--erode shrinks the pasted region (negative grows it), --blur, --color, --edge-color, --seamless
    and --sharpen each change the result; every mask kind stays within the face region."""
    clip, alignments_path = short_clip
    output = tmp_path / "preview.png"
    landmarks = Alignments.load(alignments_path).faces(12)[0].landmarks
    region = face_region_mask(landmarks, (480, 480))

    def changed(**blend: object) -> np.ndarray:
        where = changed_pixels(clip, output, alignments_path, **blend)
        assert not where[~region].any()  # nothing outside the face region
        return where

    plain = {"mask": "hull", "blur": 0, "color": "none", "edge_color": False}  # the geometry alone
    hull = changed(**plain)
    grown = changed(**plain, erode=-5)
    shrunk = changed(**plain, erode=5)
    # The edge of the model's square (this model's is legacy) bounds both: the hull, forehead included,
    # reaches past its top, so only its other sides move (about -8 % and +1 % here).
    assert shrunk.sum() < 0.95 * hull.sum() and grown.sum() > 1.005 * hull.sum()
    assert not (shrunk & ~hull).any() and not (hull & ~grown).any()  # eroding only takes pixels away
    learned = changed(mask="learned", blur=0, color="none", edge_color=False)
    assert (learned != hull).any()  # the square, cut to its pixels
    images = {}
    for name, blend in {
        "none": {"color": "none"},
        "none, no edge colour": {"color": "none", "edge_color": False},
        "mean": {"color": "mean"},
        "reinhard": {"color": "reinhard"},
        "hist": {"color": "hist"},
        "seamless": {"seamless": True},
        "sharpen": {"sharpen": 1.0},
        "sharp edge": {"blur": 0},
    }.items():
        changed(**blend)
        images[name] = np.asarray(Image.open(output))[:, 480:]
    names = list(images)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not np.array_equal(images[first], images[second]), (first, second)


def test_convert_leaves_no_thread_behind(tmp_path: Path, short_clip: tuple[Path, Path]) -> None:
    """Every stage's thread ends with the run (a lingering one would make a later fork unsafe)."""
    clip, alignments_path = short_clip
    before = set(threading.enumerate())
    run(clip, tmp_path / "out.mp4", model=lite_model(), alignments=alignments_path)
    run(clip, tmp_path / "found.mp4", model=lite_model(), frames="0-3")  # faces found now: detection too
    assert set(threading.enumerate()) <= before


class _FailingModel:
    """Paints the other man's face, then fails on its second batch (as a model out of memory would)."""

    def __init__(self) -> None:
        self.inner = other_face_model()
        self.input_size = self.inner.input_size
        self.calls = 0

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("the model failed")
        return self.inner.predict(faces, decoder)


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ""])
def test_a_failure_half_way_leaves_nothing_behind(
    tmp_path: Path, short_clip: tuple[Path, Path], suffix: str
) -> None:
    clip, alignments_path = short_clip
    output = tmp_path / f"out{suffix}"
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="the model failed"):
        run(clip, output, model=_FailingModel(), alignments=alignments_path, batch_size=4)
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file
    assert set(threading.enumerate()) <= before


def test_a_folder_of_photos_keeps_its_names(tmp_path: Path, short_clip: tuple[Path, Path]) -> None:
    clip, _ = short_clip
    photos = tmp_path / "photos"
    photos.mkdir()
    for index, image in zip((3, 11), frames(clip, 3, 12)[::8], strict=True):
        Image.fromarray(image).save(photos / f"still{index}.png")
    output = tmp_path / "swapped"
    summary = run(photos, output)
    assert summary.swapped_frames == 2
    assert sorted(p.name for p in output.glob("*.png")) == ["still11.png", "still3.png"]


def test_swapped_faces_move_no_more_than_the_real_ones(tmp_path: Path) -> None:
    """Steadiness: landmarks found on the pasted face shake no more than those found on the input's face.

    The stand-in model paints one fixed real face, so the pasted face moves
    exactly as the pipeline places it. Landmarks are found on both clips the
    same way (extract's detector and tracker) and compared by their
    frame-to-frame jitter (second differences, as ``faceswap score`` does).
    """
    video = require_data("video", "d18.mp4")
    alignments_path = alignments_of(video)
    model = fixed_face_model(video, Alignments.load(alignments_path))
    output = tmp_path / "steady.mp4"
    blend = BlendOptions(mask="hull", color="none")
    options = ConvertOptions(
        output=output, alignments=alignments_path, frames="0-59", blend=blend, progress=False
    )
    convert(video, options, model=model)

    def landmark_jitter(path: Path) -> float:
        found = find_alignments_now(path, range(60))
        assert all(len(found.faces(index)) == 1 for index in range(60))
        value = jitter([found.faces(index)[0].landmarks for index in range(60)])
        assert value is not None
        return value

    assert landmark_jitter(output) <= landmark_jitter(video)


def test_smoothing_steadies_the_geometry_of_a_real_clip() -> None:
    """The geometry faces are pasted with (and masks drawn from) shakes far less than dlib's landmarks."""
    video = require_data("video", "d18.mp4")
    alignments = Alignments.load(alignments_of(video))
    faces = {index: record.faces for index, record in alignments}
    times = probe_video(video).frame_times
    smoothed = make_plan(faces, times, smooth=True)
    raw = make_plan(faces, times, smooth=False)
    frames_with_face = [index for index in range(216) if len(raw.get(index, [])) == 1]
    assert len(frames_with_face) == 216

    def geometry_jitter(plan) -> float:
        value = jitter([plan[index][0].landmarks for index in frames_with_face])
        assert value is not None
        return value

    assert geometry_jitter(smoothed) < 0.4 * geometry_jitter(raw)


def test_smoothing_steadies_the_mask_edge_of_a_real_clip() -> None:
    """The blend mask drawn from the smoothed geometry flickers far less than one drawn from raw landmarks.

    Flicker is each pixel's second difference across frames (shaking counts,
    steady motion does not), averaged over the frame: the mask edge moving
    back and forth shows up there, the face turning slowly hardly at all.
    """
    video = require_data("video", "d18.mp4")
    alignments = Alignments.load(alignments_of(video))
    faces = {index: record.faces for index, record in alignments}
    times = probe_video(video).frame_times
    size = probe_video(video).size
    blend = BlendOptions(mask="combined")  # the learned part is 1 here: the hull, eroded and feathered
    face, learned = np.zeros((64, 64, 3), np.float32), np.ones((64, 64), np.float32)

    def mask_flicker(plan) -> float:
        masks = []
        for index in range(216):
            geometry = plan[index][0]
            mask = face_mask(SwappedFace(face, learned, geometry.matrix, geometry.landmarks), size, blend)
            assert mask is not None
            left, top, right, bottom = mask.region
            full = np.zeros(size[::-1], np.float32)
            full[top:bottom, left:right] = mask.alpha
            masks.append(full)
        stack = np.stack(masks)
        return float(np.abs(stack[2:] - 2 * stack[1:-1] + stack[:-2]).mean())

    smoothed = mask_flicker(make_plan(faces, times, smooth=True))
    raw = mask_flicker(make_plan(faces, times, smooth=False))
    # Measured 0.42 on d18: what remains is the jaw and lips moving as he talks, which the mask must follow.
    assert smoothed < 0.6 * raw


def test_frames_the_output_does_not_show_skip_the_model() -> None:
    """A capped gif drops frames: decode passes them on without faces, so they are never predicted."""
    from types import SimpleNamespace

    from faceswap.convert_pipeline import decode
    from faceswap.media.reader import Frame

    image = np.zeros((64, 64, 3), np.uint8)
    source = SimpleNamespace(frames=lambda start, stop: (Frame(index, image) for index in range(4)))
    face = SimpleNamespace(matrix=np.array([[32.0, 0, 16], [0, 32.0, 16]]))
    plan = {index: [face] for index in range(4)}
    model = SimpleNamespace(input_size=16, centering="legacy")
    items = list(decode(source, plan, model, shown=[True, False, True, False]))
    assert [len(item.faces) for item in items] == [1, 0, 1, 0]
    assert [item.crops is None for item in items] == [False, True, False, True]
