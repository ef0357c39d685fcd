"""Probing and reading media: exact frame rates, frame-exact seeking, refusal of bad files."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.errors import InputError, MediaError
from faceswap.media.ffmpeg import run_ffmpeg, summarize_stderr
from faceswap.media.probe import probe_video
from faceswap.media.reader import ImageSource, VideoSource, open_source, prefetch, read_image
from tests.conftest import require_data


def make_video(
    path: Path, *, rate: str = "30000/1001", size: str = "64x48", frames: int = 12, audio: bool = True
):
    """A small synthetic clip from ffmpeg's lavfi sources (temporal noise, so frames differ; a sine tone)."""
    args = ["-f", "lavfi", "-i", f"color=c=gray:s={size}:r={rate},noise=alls=80:allf=t+u"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    args += ["-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv444p", "-g", "5"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    result = run_ffmpeg([*args, "-y", str(path)])
    assert result.returncode == 0, summarize_stderr(result.stderr)
    return path


@pytest.fixture(scope="module")
def ntsc_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "ntsc.mp4", frames=24)


def test_probe_keeps_a_rational_frame_rate_exact(ntsc_clip: Path) -> None:
    info = probe_video(ntsc_clip)
    assert info.fps == Fraction(30000, 1001)
    assert info.frame_count == 24
    assert (info.width, info.height) == (64, 48)
    assert info.duration == pytest.approx(24 * 1001 / 30000, abs=1e-3)
    assert not info.variable_frame_rate
    assert len(info.frame_times) == 24 and info.frame_times[1] == pytest.approx(1001 / 30000)
    assert info.has_audio and info.audio[0].codec == "aac" and info.audio[0].index == 0


def test_probe_real_videos() -> None:
    d18 = probe_video(require_data("video", "d18.mp4"))
    assert (d18.frame_count, d18.fps, d18.size) == (216, 30, (480, 480))
    assert d18.has_audio and d18.audio[0].duration == pytest.approx(7.2, abs=0.05)
    d0 = probe_video(require_data("video", "d0.mp4"))
    assert (d0.frame_count, d0.fps, d0.has_audio) == (78, 25, False)


def test_probe_odd_sizes_and_gifs(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "odd.mp4", size="45x33", rate="25", frames=5, audio=False)
    assert probe_video(clip).size == (45, 33)
    gif = tmp_path / "anim.gif"
    assert run_ffmpeg(["-i", str(clip), "-y", str(gif)]).returncode == 0
    info = probe_video(gif)
    assert (info.frame_count, info.size) == (5, (45, 33))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.mp4", b"", "empty file"),
        ("text.mp4", b"this is not a video\n" * 20, "not a readable video"),
        (
            "random.mp4",
            bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
            "not a readable",
        ),
    ],
)
def test_probe_refuses_non_videos(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError, match=message) as raised:
        probe_video(path)
    assert "\n" not in str(raised.value)


def test_probe_refuses_missing_and_folders(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        probe_video(tmp_path / "nope.mp4")
    with pytest.raises(MediaError, match="not a file"):
        probe_video(tmp_path)


def test_probe_detects_truncation(tmp_path: Path, ntsc_clip: Path) -> None:
    faststart = tmp_path / "faststart.mp4"
    assert (
        run_ffmpeg(["-i", str(ntsc_clip), "-c", "copy", "-movflags", "+faststart", str(faststart)]).returncode
        == 0
    )
    data = faststart.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError, match="truncated"):
        probe_video(truncated)
    cut_header = tmp_path / "cut_header.mp4"
    cut_header.write_bytes(ntsc_clip.read_bytes()[: len(data) // 3])  # index at the end: unreadable
    with pytest.raises(MediaError):
        probe_video(cut_header)


def test_probe_refuses_audio_only_and_tiny_frames(tmp_path: Path) -> None:
    audio = tmp_path / "tone.m4a"
    assert run_ffmpeg(["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(audio)]).returncode == 0
    with pytest.raises(MediaError, match="no video stream"):
        probe_video(audio)
    for size in ("1x1", "8x6"):
        tiny = make_video(tmp_path / f"tiny{size}.mp4", size=size, rate="25", frames=3, audio=False)
        with pytest.raises(MediaError, match="too small"):
            probe_video(tiny)


def test_seeking_is_frame_exact(ntsc_clip: Path) -> None:
    source = VideoSource(ntsc_clip)
    everything = [frame.image for frame in source.frames()]
    assert len(everything) == 24 and everything[0].shape == (48, 64, 3)
    assert not np.array_equal(everything[0], everything[1])  # a moving pattern
    for start in (1, 5, 6, 11, 23):  # key frames every 5
        got = list(source.frames(start, start + 2))
        assert [frame.index for frame in got] == list(range(start, min(start + 2, 24)))
        for frame in got:
            np.testing.assert_array_equal(frame.image, everything[frame.index])
    assert [frame.index for frame in source.frames(2, 20, step=7)] == [2, 9, 16]


def test_seeking_in_a_real_video() -> None:
    source = VideoSource(require_data("video", "d18.mp4"))
    reference = {frame.index: frame.image for frame in source.frames(95, 105)}
    for start in (97, 100, 104):
        first = next(iter(source.frames(start, start + 1)))
        np.testing.assert_array_equal(first.image, reference[start])


def test_corrupt_stream_mid_video_raises_instead_of_ending_quietly(tmp_path: Path, ntsc_clip: Path) -> None:
    faststart = tmp_path / "fs.mp4"
    run_ffmpeg(["-i", str(ntsc_clip), "-c", "copy", "-movflags", "+faststart", str(faststart)])
    source = VideoSource(faststart)
    faststart.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])  # damaged after probing
    with pytest.raises(MediaError, match="decoding stopped at frame"):
        list(source.frames())


def write_png(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def test_image_folder_in_natural_order_skipping_unreadable(tmp_path: Path, astronaut: np.ndarray) -> None:
    small = cv2.resize(astronaut, (64, 64))
    for name in ("frame10.png", "frame2.png", "frame1.jpg"):
        write_png(tmp_path / name, small)
    (tmp_path / "frame3.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.png").write_bytes(b"ignored")
    source = open_source(tmp_path)
    assert isinstance(source, ImageSource) and not source.is_video
    assert [p.name for p in source.files] == ["frame1.jpg", "frame2.png", "frame3.png", "frame10.png"]
    frames = list(source.frames())
    assert [f.name for f in frames] == ["frame1.jpg", "frame2.png", "frame10.png"]
    assert [f.index for f in frames] == [0, 1, 3]
    np.testing.assert_array_equal(frames[1].image, small)  # RGB, lossless


def test_single_image_and_bad_images(tmp_path: Path, astronaut: np.ndarray) -> None:
    photo = write_png(tmp_path / "photo.png", astronaut)
    source = open_source(photo)
    assert source.frame_count == 1
    np.testing.assert_array_equal(next(iter(source.frames())).image, astronaut)
    text = tmp_path / "fake.jpg"
    text.write_text("hello")
    with pytest.raises(MediaError, match="not a readable image"):
        open_source(text)
    with pytest.raises(InputError, match="no such file"):
        open_source(tmp_path / "missing.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no images"):
        open_source(empty)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims a size, with no real pixel data (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_absurd_image_sizes_are_refused_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        read_image(png_header_only(tmp_path / "bomb.png", 60000, 60000))
    with pytest.raises(MediaError, match="too small"):
        read_image(png_header_only(tmp_path / "dot.png", 1, 1))
    with pytest.raises(MediaError, match="too small"):
        read_image(write_png(tmp_path / "tiny.png", np.zeros((5, 7, 3), np.uint8)))


def test_prefetch_keeps_order_and_reraises() -> None:
    assert list(prefetch(range(100), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise RuntimeError("boom")

    iterator = prefetch(failing())
    assert next(iterator) == 1
    with pytest.raises(RuntimeError, match="boom"):
        next(iterator)


def test_a_video_without_a_usable_frame_rate_is_refused() -> None:
    """Packets that all share one timestamp and claim no duration: a 0-fps stream."""
    from faceswap.media.probe import _frame_rate

    with pytest.raises(MediaError, match="no usable frame rate"):
        _frame_rate([(0, 0), (0, 0), (0, 0)], Fraction(1, 90000), Path("zero.mp4"))
    with pytest.raises(MediaError, match="implausible frame rate"):
        _frame_rate([(0, 1), (1, 1), (2, 1)], Fraction(1, 90000), Path("fast.mp4"))
    assert _frame_rate([(0, 3003), (3003, 3003), (6006, 3003)], Fraction(1, 90000), Path("ntsc.mp4")) == (
        Fraction(30000, 1001),
        False,
    )


def test_a_video_of_absurd_size_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "huge.mp4"
    source = ["-f", "lavfi", "-i", "color=c=gray:s=9000x8000:r=1", "-frames:v", "1"]
    made = run_ffmpeg([*source, "-c:v", "libx264", "-preset", "ultrafast", "-y", str(path)])
    assert made.returncode == 0, made.stderr
    with pytest.raises(MediaError, match="9000x8000 is too large"):
        VideoSource(path)
