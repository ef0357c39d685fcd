"""Hostile and unusual media: file names ffmpeg would read as URLs, small files that expand to
gigabytes, and frame timing (Matroska time bases, variable frame rates, subtitles and other streams).

Inputs are built with ffmpeg (imageio-ffmpeg's binary). The memory cases run in a subprocess under
``RLIMIT_AS``, so a regression fails with a MemoryError instead of swapping the machine.
"""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from faceswap.alignments import Alignments, Face, FrameRecord, SourceInfo
from faceswap.convert import ConvertOptions, convert
from faceswap.errors import AlignmentsError, MediaError, ModelError
from faceswap.media.ffmpeg import run_ffmpeg, summarize_stderr
from faceswap.media.probe import probe_video
from faceswap.media.reader import VideoSource
from faceswap.media.timing import constant_rate_repeats, exact_frame_rate
from faceswap.media.writer import Mp4Writer, video_frame_spec
from faceswap.model_archive import check_model_archive
from faceswap.model_folder import STATE_FILE, TrainingState
from tests.convert_support import FixedFaceModel

ROOT = Path(__file__).resolve().parents[1]
#: Protocols (and protocol-like prefixes) that ffmpeg knows; each is tried as the start of a file name.
PREFIXES = ("concat:", "pipe:", "file:", "http:", "data:", "subfile:", "crypto:", "tee:", "cache:", "async:")


def ffmpeg(*args: str) -> None:
    result = run_ffmpeg([*args, "-y"])
    assert result.returncode == 0, summarize_stderr(result.stderr)


def clip(
    path: Path, *, rate: str = "30", frames: int = 15, audio: bool = True, codec: str = "libx264"
) -> Path:
    """A small clip of noise (frames differ) with a sine tone as long as the picture."""
    seconds = float(Fraction(frames) / Fraction(rate))
    args = ["-f", "lavfi", "-i", f"color=c=gray:s=64x48:r={rate},noise=alls=80:allf=t+u"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-frames:v", str(frames), "-c:v", codec, "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac"]
    ffmpeg(*args, str(path))
    return path


def decoded(path: Path) -> list[np.ndarray]:
    return [frame.image for frame in VideoSource(path).frames()]


def rewrite(source: Path, output: Path) -> Path:
    """Decode ``source`` and write it back as an mp4 the way convert does (its spec, its streams)."""
    video = VideoSource(source)
    with Mp4Writer(
        output, video_frame_spec(video.info), audio_source=video.info, preset="ultrafast"
    ) as writer:
        for frame in video.frames():
            writer.write(frame.image)
    return output


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("safety_media")
    clip(folder / "plain.mp4")
    clip(folder / "decoy.mp4", frames=5, audio=False)
    return folder


# ----------------------------------------------------------------------------------------------
# 4. File names are files, never URLs


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_file_named_like_a_url_is_read_and_written_as_a_file(
    prefix: str, material: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative names, as a user types them: the prober, the reader and the writer (mux included)."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(material / "decoy.mp4", "b.mp4")  # what "concat:b.mp4" would read as a URL
    name = f"{prefix}b.mp4"
    shutil.copy(material / "plain.mp4", name)
    info = probe_video(name)
    assert (info.frame_count, info.has_audio) == (15, True)
    assert len(decoded(Path(name))) == 15
    assert np.array_equal(next(VideoSource(name).frames(7, 8)).image, decoded(material / "plain.mp4")[7])
    output = Path(f"{prefix}out.mp4")
    rewrite(Path(name), output)
    written = probe_video(output)
    assert (written.frame_count, written.has_audio) == (15, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["b.mp4", name, output.name])


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ("ffconcat version 1.0\nfile decoy.mp4\n", "names other files"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\ndecoy.mp4\n#EXT-X-ENDLIST\n", "not a readable"),
        ("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\n", "not a"),
    ],
    ids=["concat-script", "hls-playlist", "sdp"],
)
def test_a_file_whose_content_names_other_files_is_refused(
    content: str, expect: str, material: Path, tmp_path: Path
) -> None:
    shutil.copy(material / "decoy.mp4", tmp_path / "decoy.mp4")
    hostile = tmp_path / "video.mp4"
    hostile.write_text(content)
    with pytest.raises(MediaError, match=expect):
        probe_video(hostile)


# ----------------------------------------------------------------------------------------------
# 5. Small files that expand to gigabytes


def run_limited(code: str, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run python ``code`` under ``RLIMIT_AS`` = ``limit`` bytes (address space)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        preexec_fn=apply,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)},
    )


def lite_state(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_text(json.dumps(TrainingState("lite", 64).to_json()))
    return folder


def keras_like(path: Path, members: dict[str, bytes], bomb: tuple[str, int] | None = None) -> Path:
    """A ``.keras``-shaped zip of ``members``; ``bomb`` adds a deflated member of that many spaces."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in members.items():
            archive.writestr(name, data, zipfile.ZIP_STORED)
        if bomb is not None:
            chunk = b" " * (1 << 20)
            with archive.open(bomb[0], "w", force_zip64=True) as stream:
                for _ in range(bomb[1] >> 20):
                    stream.write(chunk)
    return path


@pytest.fixture(scope="module")
def config_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder whose 1-MB-odd model.keras holds a config.json of 512 MiB."""
    folder = lite_state(tmp_path_factory.mktemp("bomb") / "model")
    keras_like(folder / "model.keras", {"metadata.json": b"{}"}, bomb=("config.json", 512 << 20))
    assert (folder / "model.keras").stat().st_size < 8 << 20
    return folder


def test_a_model_archive_that_expands_to_gigabytes_is_one_line_under_a_memory_limit(
    config_bomb: Path,
) -> None:
    """Keras read the 512 MiB member whole (about 3 GB for 1 GiB); the archive check refuses it first."""
    code = (
        "import sys\n"
        "from faceswap.errors import FaceswapError\n"
        "from faceswap.model_folder import load_swap_model\n"
        "try:\n"
        "    load_swap_model(sys.argv[1])\n"
        "except FaceswapError as error:\n"
        "    print(error, file=sys.stderr)\n"
        "    sys.exit(1)\n"
    )
    result = run_limited(code, 3 << 30, str(config_bomb))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr[-2000:]
    assert "config.json" in lines[0] and "far more than a model description needs" in lines[0]


def test_hdf5_weights_that_read_as_gigabytes_are_refused(tmp_path: Path) -> None:
    """An unwritten HDF5 array of 1 GiB takes a few bytes on disk and reads as its fill value."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as weights:
        weights.create_dataset("layers/dense/vars/0", shape=(1 << 28,), dtype="f4", fillvalue=0.5)
    path = keras_like(tmp_path / "model.keras", {"config.json": b"{}", "model.weights.h5": buffer.getvalue()})
    assert path.stat().st_size < 64 << 10
    with pytest.raises(ModelError, match=r"weights expand from \d+ bytes to 1\.00 GiB"):
        check_model_archive(path)


def test_a_deflated_member_far_beyond_its_size_is_refused(tmp_path: Path) -> None:
    path = keras_like(tmp_path / "model.keras", {"config.json": b"{}"}, bomb=("model.weights.h5", 64 << 20))
    with pytest.raises(ModelError, match="compression bomb"):
        check_model_archive(path)


def face(index: int) -> Face:
    rng = np.random.default_rng(index)
    matrix = np.array([[0.004, 0.0001, -0.3], [-0.0001, 0.004, -0.3]])
    return Face((100.0, 100.0, 300.0, 300.0), rng.uniform(100, 300, (68, 2)), matrix, 10.0, 1.0, None, None)


def alignments_of_frames(count: int) -> Alignments:
    source = SourceInfo("clip.mp4", "video", count, 480, 480, Fraction(30), count / 30)
    return Alignments(source, frames={i: FrameRecord([face(i)]) for i in range(count)})


def test_an_alignments_file_larger_than_its_frames_can_need_is_one_line_under_a_memory_limit(
    tmp_path: Path,
) -> None:
    """200 MB for 216 frames: refused from the header line, before anything else is read."""
    path = tmp_path / "alignments.json"
    alignments_of_frames(216).save(path)
    text = path.read_bytes()
    padded = text.replace(b'"faces": [', b'"name": "' + b"a" * (200 << 20) + b'", "faces": [', 1)
    path.write_bytes(padded)
    code = (
        "import sys\n"
        "from faceswap.alignments import Alignments\n"
        "from faceswap.errors import FaceswapError\n"
        "try:\n"
        "    Alignments.load(sys.argv[1])\n"
        "except FaceswapError as error:\n"
        "    print(error, file=sys.stderr)\n"
        "    sys.exit(1)\n"
    )
    result = run_limited(code, 1 << 30, str(path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr[-2000:]
    assert "more than the alignments of 216 frames can need" in lines[0]


def test_alignments_are_parsed_a_frame_at_a_time(tmp_path: Path) -> None:
    """Peak memory of loading is about the faces' arrays, not the text's parse tree (~11x the file)."""
    path = tmp_path / "alignments.json"
    alignments_of_frames(1500).save(path)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        loaded = Alignments.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.face_count == 1500
    assert np.allclose(loaded.faces(700)[0].landmarks, np.round(face(700).landmarks, 2))
    assert peak < 3 * size, f"peak {peak} bytes for a {size}-byte file"


def test_alignments_in_another_layout_are_read_whole_only_when_small(tmp_path: Path) -> None:
    path = tmp_path / "alignments.json"
    alignments_of_frames(3).save(path)
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(json.loads(path.read_text()), indent=2))
    assert Alignments.load(pretty).face_count == 3
    pretty.write_text(json.dumps(json.loads(path.read_text()), indent=2) + " " * (17 << 20))
    with pytest.raises(AlignmentsError, match="not in the layout faceswap writes"):
        Alignments.load(pretty)
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(AlignmentsError, match="truncated"):
        Alignments.load(truncated)


# ----------------------------------------------------------------------------------------------
# 9. Timing and streams


def test_matroska_millisecond_time_base_keeps_the_exact_rate(tmp_path: Path) -> None:
    """30 fps in 1-ms ticks steps 33, 33, 34 ms: the rate is 30, not 1000/33, and it is written so."""
    for rate, expected in (("30", Fraction(30)), ("30000/1001", Fraction(30000, 1001)), ("25", Fraction(25))):
        source = clip(tmp_path / "in.mkv", rate=rate, frames=45)
        info = probe_video(source)
        assert (info.fps, info.variable_frame_rate, info.frame_count) == (expected, False, 45)
        output = rewrite(source, tmp_path / "out.mp4")
        written = probe_video(output)
        assert (written.fps, written.frame_count) == (expected, 45)
        assert written.duration == pytest.approx(45 / float(expected), abs=1e-3)
        output.unlink()
    webm = clip(tmp_path / "in.webm", rate="24", frames=10, audio=False, codec="libvpx")
    assert probe_video(webm).fps == 24


def test_rate_from_timestamps_alone() -> None:
    millis = [round(i * 1000 / 30) for i in range(300)]
    assert exact_frame_rate(millis, Fraction(1, 1000)) == (Fraction(30), None)
    ntsc = [i * 3003 for i in range(10)]
    assert exact_frame_rate(ntsc, Fraction(1, 90000)) == (Fraction(30000, 1001), None)
    mixed = [i * 50 for i in range(30)] + [1500 + i * 25 for i in range(60)]
    assert exact_frame_rate(mixed, Fraction(1, 1000), [Fraction(40)]) == (None, Fraction(40))
    repeats = constant_rate_repeats([i / 1000 for i in mixed], 3.0, Fraction(40))
    assert sum(repeats) == 120 and repeats[:30] == [2] * 30 and repeats[30:] == [1] * 60


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.5 s at 20 fps then 1.5 s at 40 fps (90 frames in 3.0 s), with 3.0 s of sound."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    sources = (
        "-f lavfi -i testsrc=s=64x48:r=20:d=1.5 -f lavfi -i testsrc=s=64x48:r=40:d=1.5 -f lavfi -i sine=d=3"
    )
    joined = "-filter_complex [0:v][1:v]concat=n=2:v=1[v] -map [v] -map 2:a -fps_mode vfr"
    encode = "-c:v libx264 -pix_fmt yuv420p -c:a aac"
    ffmpeg(*sources.split(), *joined.split(), *encode.split(), str(path))
    return path


def test_variable_frame_rate_keeps_its_timing_through_convert(vfr_clip: Path, tmp_path: Path, caplog) -> None:
    info = probe_video(vfr_clip)
    assert info.variable_frame_rate and info.fps == 40 and info.frame_count == 90
    output = tmp_path / "out.mp4"
    model = FixedFaceModel(np.zeros((64, 64, 3), np.uint8))
    with caplog.at_level(logging.INFO, logger="faceswap"):
        convert(vfr_clip, ConvertOptions(model=tmp_path, output=output, progress=False), model=model)
    assert "variable frame rate" in caplog.text
    written = probe_video(output)
    audio = written.audio[0].duration
    assert written.fps == 40 and not written.variable_frame_rate
    assert audio is not None and abs(written.duration - audio) <= 1 / 40
    assert abs(written.duration - info.duration) <= 1 / 40
    # frame 1 of the 20 fps part is shown for two ticks: output frames 2 and 3 are input frame 1
    source, result = decoded(vfr_clip), decoded(output)
    assert np.abs(result[2].astype(int) - source[1]).mean() < 4
    assert np.abs(result[3].astype(int) - source[1]).mean() < 4


def test_seeking_is_frame_exact_in_variable_rate_and_delayed_video(vfr_clip: Path, tmp_path: Path) -> None:
    """Extract's workers read chunks by seeking: a seek must land on its frame whatever the timing."""
    delayed = tmp_path / "delayed.mp4"
    sources = "-itsoffset 0.5 -f lavfi -i testsrc=s=64x48:r=30:d=2 -f lavfi -i sine=d=3"
    encode = "-map 0:v -map 1:a -c:v libx264 -pix_fmt yuv444p -c:a aac"
    ffmpeg(*sources.split(), *encode.split(), str(delayed))
    assert probe_video(delayed).video_delay == pytest.approx(0.5, abs=0.01)
    for path in (vfr_clip, delayed):
        every = decoded(path)
        source = VideoSource(path)
        for index in (1, 29, 30, 31, 59):
            seeked = next(source.frames(index, index + 1)).image
            assert np.array_equal(seeked, every[index]), (path.name, index)


def test_text_subtitles_are_kept_and_what_mp4_cannot_hold_is_named(
    material: Path, tmp_path: Path, caplog
) -> None:
    subtitles = tmp_path / "s.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n\n2\n00:00:00,400 --> 00:00:00,500\nbye\n")
    with_subs = tmp_path / "subs.mp4"
    inputs = ["-i", str(material / "plain.mp4"), "-i", str(subtitles)]
    streams = "-map 0 -map 1 -c:v copy -c:a copy -c:s mov_text"
    ffmpeg(*inputs, *streams.split(), str(with_subs))
    assert probe_video(with_subs).subtitles == ("mov_text",)
    written = probe_video(rewrite(with_subs, tmp_path / "out.mp4"))
    assert written.subtitles == ("mov_text",) and written.has_audio
    mkv = tmp_path / "subs.mkv"
    attach = ["-attach", str(subtitles), "-metadata:s:t", "mimetype=text/plain"]
    ffmpeg(
        "-i",
        str(material / "decoy.mp4"),
        "-i",
        str(subtitles),
        *attach,
        *["-map", "0", "-map", "1", "-c", "copy"],
        str(mkv),
    )
    assert probe_video(mkv).other_streams == ("attachment none",)
    with caplog.at_level(logging.INFO, logger="faceswap"):
        written = probe_video(rewrite(mkv, tmp_path / "from_mkv.mp4"))
    assert written.subtitles == ("mov_text",) and not written.has_audio
    assert "not kept from the input: attachment" in caplog.text
