"""The video writer: exact rates and sizes, audio copied and checked, gif palettes and loops, labels."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceswap.errors import OutputError
from faceswap.fileio import TEMP_PREFIX
from faceswap.media.ffmpeg import run_ffmpeg
from faceswap.media.probe import probe_video, read_metadata, video_delay
from faceswap.media.reader import VideoSource
from faceswap.media.writer import (
    FrameSpec,
    FramesWriter,
    GifWriter,
    Mp4Writer,
    add_gif_comment,
    gif_frame_count,
    open_writer,
    output_kind,
    synthetic_label,
)
from faceswap.paths import FOLDER_MARKER
from tests.test_media import make_video


def decode_pcm(path: Path, stream: int = 0) -> bytes:
    """The decoded samples of one audio stream, as 16-bit PCM."""
    result = run_ffmpeg(["-i", str(path), "-map", f"0:a:{stream}", "-f", "s16le", "-"])
    assert result.returncode == 0, result.stderr[-300:]
    return result.stdout


def frames_of(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth moving gradients (compress like video, unlike noise)."""
    y, x = np.mgrid[0:height, 0:width]
    return [
        np.dstack(
            [(x * 3 + 10 * i) % 256, (y * 3 + 7 * i) % 256, ((x + y) * 2 + seed) % 256],
        ).astype(np.uint8)
        for i in range(count)
    ]


def write_all(writer, frames: list[np.ndarray]) -> None:
    with writer:
        for frame in frames:
            writer.write(frame)


def no_temporaries(folder: Path) -> bool:
    return not list(folder.glob(f"{TEMP_PREFIX}*"))


def test_exact_rational_rate_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "ntsc.mp4"
    spec = FrameSpec(64, 48, Fraction(30000, 1001))
    write_all(Mp4Writer(out, spec), frames_of(30, 64, 48))
    info = probe_video(out)
    assert info.fps == Fraction(30000, 1001)
    assert (info.frame_count, info.size) == (30, (64, 48))
    assert info.duration == pytest.approx(30 * 1001 / 30000, abs=1e-3)
    assert not info.has_audio
    assert no_temporaries(tmp_path)


def test_pixels_survive_the_encoder(tmp_path: Path) -> None:
    out = tmp_path / "q.mp4"
    frames = frames_of(10, 96, 64)
    write_all(Mp4Writer(out, FrameSpec(96, 64, Fraction(25)), crf=10), frames)
    decoded = [frame.image for frame in VideoSource(out).frames()]
    assert len(decoded) == 10
    error = np.abs(decoded[5].astype(int) - frames[5].astype(int))
    assert error.mean() < 4  # colours decode as written (BT.709 tagged and used)


@pytest.mark.parametrize("size", [(45, 33), (64, 33), (45, 48)])
def test_odd_sizes_keep_their_exact_size(tmp_path: Path, size: tuple[int, int], caplog) -> None:
    width, height = size
    out = tmp_path / "odd.mp4"
    with caplog.at_level(logging.INFO, logger="faceswap"):
        write_all(Mp4Writer(out, FrameSpec(width, height, Fraction(25))), frames_of(8, width, height))
    info = probe_video(out)
    assert (info.width, info.height, info.frame_count) == (width, height, 8)
    assert "yuv444p" in caplog.text
    decoded = next(VideoSource(out).frames()).image
    assert decoded.shape == (height, width, 3)


def test_audio_is_copied_sample_exact(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mp4", rate="30000/1001", frames=45, size="64x48")
    info = probe_video(source)
    out = tmp_path / "out.mp4"
    frames = [frame.image for frame in VideoSource(source).frames()]
    write_all(Mp4Writer(out, FrameSpec(64, 48, info.fps), audio_source=info), frames)
    result = probe_video(out)
    assert len(result.audio) == 1 and result.audio[0].codec == "aac"
    assert result.audio[0].duration == pytest.approx(info.audio[0].duration, abs=1e-3)
    assert decode_pcm(out) == decode_pcm(source)
    assert result.frame_count == 45 and result.fps == Fraction(30000, 1001)


def test_every_audio_stream_is_kept_wherever_it_sits(tmp_path: Path) -> None:
    """Audio first, video last, two audio streams: nothing assumes audio is stream 1."""
    video = make_video(tmp_path / "v.mp4", rate="25", frames=25, audio=False)
    mixed = tmp_path / "mixed.mp4"
    tones = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:duration=1",
    ]
    streams = ["-map", "0:a", "-map", "1:a", "-map", "2:v", "-c:v", "copy", "-c:a", "aac"]
    result = run_ffmpeg([*tones, "-i", str(video), *streams, str(mixed)])
    assert result.returncode == 0
    info = probe_video(mixed)
    assert len(info.audio) == 2
    out = tmp_path / "out.mp4"
    write_all(Mp4Writer(out, FrameSpec(64, 48, info.fps), audio_source=info), frames_of(25, 64, 48))
    assert len(probe_video(out).audio) == 2
    for stream in (0, 1):
        assert decode_pcm(out, stream) == decode_pcm(mixed, stream)
    assert decode_pcm(out, 0) != decode_pcm(out, 1)


def test_audio_the_container_cannot_hold_is_reencoded(tmp_path: Path, caplog) -> None:
    video = make_video(tmp_path / "v.mp4", rate="25", frames=25, audio=False)
    pcm = tmp_path / "pcm.mkv"
    args = ["-i", str(video), "-f", "lavfi", "-i", "sine=frequency=440:duration=1"]
    assert run_ffmpeg([*args, "-c:v", "copy", "-c:a", "pcm_s16le", str(pcm)]).returncode == 0
    info = probe_video(pcm)
    assert info.audio[0].codec.startswith("pcm")
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="faceswap"):
        write_all(Mp4Writer(out, FrameSpec(64, 48, info.fps), audio_source=info), frames_of(25, 64, 48))
    assert "re-encoding to AAC" in caplog.text
    result = probe_video(out)
    assert result.audio[0].codec == "aac"
    assert result.audio[0].duration == pytest.approx(1.0, abs=0.05)


def test_video_delay_against_the_audio_is_kept(tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", rate="25", frames=50)
    delayed = tmp_path / "delayed.mp4"
    args = [
        "-itsoffset",
        "0.2",
        "-i",
        str(plain),
        "-i",
        str(plain),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
    ]
    assert run_ffmpeg([*args, str(delayed)]).returncode == 0
    assert video_delay(delayed) == pytest.approx(0.2, abs=1e-3)
    assert video_delay(plain) == pytest.approx(0.0, abs=1e-3)
    info = probe_video(delayed)
    out = tmp_path / "out.mp4"
    write_all(Mp4Writer(out, FrameSpec(64, 48, info.fps), audio_source=info), frames_of(50, 64, 48))
    assert video_delay(out) == pytest.approx(0.2, abs=1e-3)
    assert decode_pcm(out) == decode_pcm(delayed)


def test_no_audio_gives_a_video_only_file_and_says_so(tmp_path: Path, caplog) -> None:
    silent = make_video(tmp_path / "silent.mp4", rate="25", frames=10, audio=False)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="faceswap"):
        write_all(
            Mp4Writer(out, FrameSpec(64, 48, Fraction(25)), audio_source=probe_video(silent)),
            frames_of(10, 64, 48),
        )
    assert not probe_video(out).has_audio
    assert "no audio" in caplog.text


def test_mp4_and_gif_are_labelled_synthetic(tmp_path: Path) -> None:
    spec = FrameSpec(64, 48, Fraction(25))
    mp4, gif = tmp_path / "a.mp4", tmp_path / "a.gif"
    write_all(Mp4Writer(mp4, spec), frames_of(5, 64, 48))
    write_all(GifWriter(gif, spec), frames_of(5, 64, 48))
    for path in (mp4, gif):
        assert read_metadata(path)["comment"] == synthetic_label()
    assert "faceswap" in synthetic_label() and "synthetic" in synthetic_label()
    with Image.open(gif) as image:
        assert image.info["comment"].decode() == synthetic_label()


def test_gif_loops_caps_the_rate_and_scales(tmp_path: Path) -> None:
    out = tmp_path / "a.gif"
    spec = FrameSpec(96, 64, Fraction(30000, 1001))
    write_all(GifWriter(out, spec, max_fps=10, width=48), frames_of(45, 96, 64))
    expected = gif_frame_count(45, Fraction(30000, 1001), 10)
    assert expected == 15
    info = probe_video(out)
    assert info.frame_count == expected and info.size == (48, 32)
    assert info.duration == pytest.approx(45 * 1001 / 30000, abs=0.1)
    with Image.open(out) as image:
        assert image.info["loop"] == 0  # NETSCAPE2.0 extension: loop forever
        assert image.n_frames == expected
    assert no_temporaries(tmp_path)


def test_gif_keeps_slow_rates_and_every_frame(tmp_path: Path) -> None:
    out = tmp_path / "slow.gif"
    write_all(GifWriter(out, FrameSpec(64, 48, Fraction(10))), frames_of(12, 64, 48))
    assert probe_video(out).frame_count == 12


@pytest.mark.parametrize(("count", "fps", "cap"), [(45, Fraction(30000, 1001), 10), (20, Fraction(30), 12.5)])
def test_a_capped_gif_shows_only_the_frames_it_says_it_keeps(
    tmp_path: Path, count: int, fps: Fraction, cap: float
) -> None:
    """Frames the cap drops never reach the encoder, so the converter may leave them unconverted."""
    out = tmp_path / "capped.gif"
    writer = GifWriter(out, FrameSpec(64, 48, fps), max_fps=cap)
    shown = writer.frames_shown(count)
    assert sum(shown) == gif_frame_count(count, fps, cap) < count
    frames = frames_of(count, 64, 48)
    write_all(
        writer, [frame if keep else np.zeros_like(frame) for frame, keep in zip(frames, shown, strict=True)]
    )
    with Image.open(out) as image:
        assert image.n_frames == sum(shown)
        for number in range(image.n_frames):
            image.seek(number)
            assert np.asarray(image.convert("RGB")).mean() > 40  # no dropped (black) frame is shown


def test_gif_frame_count_follows_ffmpeg_rounding() -> None:
    assert gif_frame_count(216, Fraction(30), 15) == 108
    assert gif_frame_count(215, Fraction(30), 15) == 108
    assert gif_frame_count(78, Fraction(25), 15) == 47
    assert gif_frame_count(7, Fraction(30), 15) == 4
    assert gif_frame_count(20, Fraction(12), 15) == 20


def test_gif_comment_needs_a_gif(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gif"
    fake.write_bytes(b"GIF87a" + bytes(20))
    with pytest.raises(OutputError, match="GIF89a"):
        add_gif_comment(fake, tmp_path / "out.gif", "x")


def test_frames_folder_one_labelled_png_per_frame(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    frames = frames_of(4, 40, 30)
    with FramesWriter(out) as writer:
        for number, frame in enumerate(frames):
            writer.write(frame, name=None if number < 3 else "photo.jpg")
    names = sorted(p.name for p in out.iterdir())
    assert names == [FOLDER_MARKER, "frame_000000.png", "frame_000001.png", "frame_000002.png", "photo.png"]
    with Image.open(out / "frame_000001.png") as image:
        assert image.info["Comment"] == synthetic_label()
        np.testing.assert_array_equal(np.asarray(image), frames[1])
    assert no_temporaries(tmp_path)


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path) -> None:
    spec = FrameSpec(64, 48, Fraction(25))
    out = tmp_path / "a.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="--overwrite"):
        Mp4Writer(out, spec)
    assert out.read_bytes() == b"precious"
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"precious")
    with pytest.raises(OutputError, match="--overwrite"):
        FramesWriter(folder)
    write_all(Mp4Writer(out, spec, overwrite=True), frames_of(3, 64, 48))
    assert probe_video(out).frame_count == 3
    # A folder faceswap did not make is not replaced, even with --overwrite (issue 9) ...
    with pytest.raises(OutputError, match="did not make"):
        FramesWriter(folder, overwrite=True)
    assert (folder / "x.png").read_bytes() == b"precious"
    # ... one it made is.
    made = tmp_path / "made"
    write_all(FramesWriter(made), frames_of(3, 64, 48))
    write_all(FramesWriter(made, overwrite=True), frames_of(2, 64, 48))
    assert sorted(p.name for p in made.iterdir() if not p.name.startswith(".")) == [
        "frame_000000.png",
        "frame_000001.png",
    ]
    assert no_temporaries(tmp_path)


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ""])
def test_a_failure_leaves_nothing_behind(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    spec = FrameSpec(64, 48, Fraction(25))
    writer = open_writer(out, spec)
    with pytest.raises(RuntimeError), writer:
        writer.write(frames_of(1, 64, 48)[0])
        raise RuntimeError("interrupted")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_size_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with (
        pytest.raises(OutputError, match="one size"),
        Mp4Writer(out, FrameSpec(64, 48, Fraction(25))) as writer,
    ):
        writer.write(frames_of(1, 64, 48)[0])
        writer.write(frames_of(1, 32, 48)[0])
    assert list(tmp_path.iterdir()) == []


def test_output_kind_and_bad_suffix(tmp_path: Path) -> None:
    assert output_kind(tmp_path / "a.MP4") == "mp4"
    assert output_kind(tmp_path / "a.gif") == "gif"
    assert output_kind(tmp_path / "frames") == "frames"
    with pytest.raises(OutputError, match=r"\.mp4 or \.gif"):
        output_kind(tmp_path / "a.avi")
