"""The video writer: converted frames out as an mp4, a gif, or a folder of PNGs.

Every writer takes RGB ``uint8`` frames one at a time (:meth:`write`) and
publishes its output only when :meth:`close` has checked it: everything is
written under hidden temporary names (:func:`faceswap.fileio.temporary_path`,
suffix kept) beside the output and renamed at the end, so a crash, Ctrl-C or
full disk never leaves a half-written file under the output's name. Used as a
context manager, a writer closes on success and removes its temporaries on an
exception.

mp4 (:class:`Mp4Writer`)
    H.264 through ffmpeg in its own process (so encoding runs on another core
    while Python prepares the next frame), ``yuv420p`` (BT.601 limited range,
    tagged so), ``+faststart``, constant rate factor ``crf``. The frame rate is passed as
    the exact rational (30000/1001 stays 30000/1001), so frame count, rate and
    duration equal the input's. **Odd frame sizes**: 4:2:0 chroma needs even
    sides (H.264 can only crop a 4:2:0 picture in steps of two pixels), and
    padding or cropping would change the size, so an odd-sized output is
    encoded ``yuv444p`` (H.264 High 4:4:4) at exactly the input's size, with a
    log line. An odd-sized input cannot be 4:2:0 either, so nothing that
    played the input is lost.
    **Audio**: the input's audio streams (all of them, found by type, never by
    position) are copied into the output in a second, stream-copy pass; a
    codec that mp4 players do not commonly play (see :data:`MP4_AUDIO_CODECS`)
    or that the muxer refuses is re-encoded to AAC instead, with a log line.
    The video keeps the input's delay relative to the audio, so they stay in
    sync. After muxing, the result is probed: a missing or shortened audio
    stream is an error, never silently dropped. No audio in the input gives a
    video-only output and a log line.
gif (:class:`GifWriter`)
    A palette made for the clip (``palettegen``) and ordered dithering
    (``paletteuse`` with Bayer dither, which does not crawl from frame to frame
    as error diffusion does), loops forever, frame rate capped at ``max_fps``
    (frames dropped evenly; duration kept), optional ``width``. The frames go
    through a lossless FFV1 intermediate so a long clip is never held in memory.
frames folder (:class:`FramesWriter`)
    One PNG per frame.

Every mp4 and gif carries :func:`synthetic_label` in its metadata (``comment``
tag in mp4; a GIF Comment Extension, which ffmpeg reads back as ``comment``),
and every PNG a ``Comment`` text chunk: the output shows faces that were not
there, and anyone who finds the file should be able to tell.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Literal

import cv2
import ffmpeg
import numpy as np

from faceswap import __version__
from faceswap.errors import OutputError
from faceswap.fileio import (
    check_output_file,
    commit,
    describe_os_error,
    ensure_output_dir,
    fsync_directory,
    remove_quietly,
    remove_stale_temporaries_of,
    temporary_path,
)
from faceswap.media.ffmpeg import (
    ffmpeg_exe,
    file_url,
    input_args,
    input_options,
    run_ffmpeg,
    summarize_stderr,
)
from faceswap.media.probe import VideoInfo, probe_video
from faceswap.media.timing import constant_rate_repeats
from faceswap.paths import check_replaceable_folder, mark_folder

log = logging.getLogger(__name__)

OutputKind = Literal["mp4", "gif", "frames"]

#: Default x264 constant rate factor: visually lossless for most footage.
DEFAULT_CRF = 18
#: Default x264 preset: about three times faster than ``medium`` at a similar size for a given CRF.
DEFAULT_PRESET = "veryfast"
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
#: Default frame-rate cap of gif output (gif delays are in 1/100 s; 15 fps keeps files small).
DEFAULT_GIF_FPS = 15
#: Audio codecs copied into mp4 as they are: those mp4 players commonly play. Anything else (PCM,
#: Vorbis, ...) is re-encoded to AAC: recent ffmpeg can put PCM into mp4, but few players read it.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
#: Bitrate of AAC when the input's audio is not copied.
FALLBACK_AUDIO_BITRATE = "192k"
#: Largest accepted difference between the input's and the output's audio duration (seconds).
AUDIO_DURATION_TOLERANCE = 0.05
#: Text subtitle codecs (ffmpeg's names), which mp4 holds once converted to ``mov_text`` (3GPP timed
#: text). Picture subtitles (DVD, Blu-ray, DVB) cannot be converted, and are left out with a log line.
TEXT_SUBTITLE_CODECS = frozenset(
    {"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text", "microdvd", "subviewer", "mpl2", "realtext"}
)


def synthetic_label() -> str:
    """The metadata text that marks every output as synthetic."""
    return f"synthetic video: faces replaced by faceswap {__version__}"


def output_kind(path: Path | str) -> OutputKind:
    """What ``path`` asks for: ``.mp4``, ``.gif``, or (no suffix, or an existing folder) a frames folder.

    Raises
    ------
    OutputError
        For any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or not suffix:
        return "frames"
    if suffix in (".mp4", ".gif"):
        return suffix[1:]  # type: ignore[return-value]
    raise OutputError(f"output {path}: end it in .mp4 or .gif, or name a folder for PNG frames")


def check_settings(
    *,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    gif_fps: float = DEFAULT_GIF_FPS,
    gif_width: int | None = None,
) -> None:
    """Refuse encoder settings out of range, naming the option.

    Raises
    ------
    OutputError
        For the first setting out of range.
    """
    if not 0 <= crf <= 51:
        raise OutputError(f"--crf must be from 0 to 51, not {crf}")
    if preset not in X264_PRESETS:
        raise OutputError(f"unknown x264 preset {preset!r} (choose from {', '.join(X264_PRESETS)})")
    if not 0 < gif_fps <= 50:
        raise OutputError(f"--fps for a gif must be above 0 and at most 50, not {gif_fps:g}")
    if gif_width is not None and not 16 <= gif_width <= 4096:
        raise OutputError(f"--width must be from 16 to 4096 px, not {gif_width}")


def check_output(path: Path | str, *, overwrite: bool) -> OutputKind:
    """Refuse an output that cannot be written, before any work is done; returns its kind.

    Raises
    ------
    OutputError
        For an unknown suffix, an existing output without ``overwrite`` (an
        empty folder counts as absent), or a folder that cannot be created or
        written to.
    """
    path = Path(path)
    kind = output_kind(path)
    if kind != "frames":
        check_output_file(path, overwrite=overwrite)
        return kind
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(f"output {path} already holds files; pass --overwrite to replace them")
    check_replaceable_folder(path)
    ensure_output_dir(path.parent)
    return kind


def gif_frame_count(frames: int, fps: Fraction, max_fps: float) -> int:
    """Frames of a gif made from ``frames`` frames at ``fps`` with rate cap ``max_fps``.

    ffmpeg's ``fps`` filter keeps the frame nearest each output tick and rounds
    the last tick half up: ``floor(frames · cap / fps + 1/2)``.
    """
    cap = Fraction(max_fps).limit_denominator(1001)
    if fps <= cap:
        return frames
    return int(Fraction(frames) * cap / fps + Fraction(1, 2))


def read_metadata(path: Path | str) -> dict[str, str]:
    """The global metadata tags of a media file, as ffmpeg reads them (keys lower-case)."""
    result = run_ffmpeg([*input_args(path), "-f", "ffmetadata", "-"])
    tags: dict[str, str] = {}
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        if "=" in line and not line.startswith((";", "[")):
            key, value = line.split("=", 1)
            tags[key.strip().lower()] = value
    return tags


@dataclass(frozen=True)
class FrameSpec:
    """Size and rate of the frames a writer receives.

    For frames of a variable-rate video, ``frame_times`` (seconds from the
    first frame) and ``duration`` say when each frame is shown; the mp4 and gif
    writers then write them at the constant ``fps`` by repeating or dropping
    frames (:func:`~faceswap.media.timing.constant_rate_repeats`), so the
    picture ends with the audio, within a frame.
    """

    width: int
    height: int
    fps: Fraction
    frame_times: tuple[float, ...] | None = field(default=None, repr=False)
    duration: float | None = None


def video_frame_spec(info: VideoInfo) -> FrameSpec:
    """The spec of the frames of video ``info``: size, exact rate, and the frame times if the rate varies."""
    if info.variable_frame_rate:
        return FrameSpec(info.width, info.height, info.fps, info.frame_times, info.duration)
    return FrameSpec(info.width, info.height, info.fps)


class _Writer:
    """Shared behaviour: context manager, frame checks, refusing to clobber."""

    path: Path

    def __init__(self, path: Path, overwrite: bool) -> None:
        self.path = Path(path)
        self.frames_written = 0
        self._closed = False
        check_output(self.path, overwrite=overwrite)
        remove_stale_temporaries_of(self.path)  # what a killed run writing this output left

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _check(self, image: np.ndarray, spec: FrameSpec | None) -> None:
        if self._closed:
            raise ValueError("write() after close()")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 frame, got {image.dtype} {image.shape}")
        if spec is not None and image.shape[:2] != (spec.height, spec.width):
            raise OutputError(
                f"frame {self.frames_written} is {image.shape[1]}x{image.shape[0]}, but the output is "
                f"{spec.width}x{spec.height} (all frames of a video must have one size)"
            )

    def write(self, image: np.ndarray, name: str | None = None) -> None:
        """Append one RGB frame (``name``: a file name hint, used by frames folders)."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish, check and publish the output."""
        raise NotImplementedError

    def abort(self) -> None:
        """Remove everything written so far; the output's previous content (if any) is untouched."""
        raise NotImplementedError


class _PipeWriter(_Writer):
    """A writer whose frames go down a pipe into ffmpeg (mp4, gif); subclasses finish the file.

    Subclasses set :attr:`spec`, start :attr:`_encoder`, list every temporary
    file in :attr:`_temporaries` and implement :meth:`_finish`, which turns
    the encoder's output into a checked :attr:`_final_temp`.
    """

    spec: FrameSpec
    _encoder: _Encoder | None
    _final_temp: Path
    _temporaries: tuple[Path, ...]
    #: Frames sent to the encoder: more or fewer than written when a variable rate is made constant.
    frames_encoded: int = 0
    _repeats: list[int] | None = None

    def _raw(self, image: np.ndarray) -> np.ndarray:
        """The bytes the encoder reads for one frame (RGB unless a subclass converts)."""
        return image

    def _times_encoded(self) -> int:
        """How many times the next frame goes to the encoder (1 unless the spec has frame times)."""
        spec = self.spec
        if spec.frame_times is None or spec.duration is None:
            return 1
        if self._repeats is None:
            self._repeats = constant_rate_repeats(spec.frame_times, spec.duration, spec.fps)
            log.info(
                "variable frame rate: written at a constant %s fps, frames repeated or dropped to keep "
                "their times (%d frames in, %d out)",
                _rate_text(spec.fps),
                len(spec.frame_times),
                sum(self._repeats),
            )
        index = self.frames_written
        return self._repeats[index] if index < len(self._repeats) else 1

    def write(self, image: np.ndarray, name: str | None = None) -> None:
        """Encode one frame (as often as its display time at the spec's rate asks)."""
        self._check(image, self.spec)
        assert self._encoder is not None
        repeats = self._times_encoded()
        if repeats:
            raw = self._raw(image)
            for _ in range(repeats):
                self._encoder.write(raw)
        self.frames_encoded += repeats
        self.frames_written += 1

    def _finish(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish encoding, complete and check the file, and rename it into place.

        Raises
        ------
        OutputError
            When ffmpeg fails, or the finished file is not what was written
            (frames, rate, size, audio); no file is left behind.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self.frames_encoded == 0:
                raise OutputError(f"cannot write {self.path}: no frames to write")
            assert self._encoder is not None
            encoder, self._encoder = self._encoder, None
            encoder.finish()
            self._finish()
            commit(self._final_temp, self.path)
        except BaseException:
            self.abort()
            raise
        finally:
            for temp in self._temporaries:
                remove_quietly(temp)

    def abort(self) -> None:
        """Stop ffmpeg and remove the temporary files."""
        self._closed = True
        if self._encoder is not None:
            self._encoder.kill()
            self._encoder = None
        for temp in self._temporaries:
            remove_quietly(temp)


class _Encoder:
    """An ffmpeg process reading raw RGB frames on stdin; stderr kept in a file for error messages."""

    def __init__(self, command: list[str], what: Path) -> None:
        self.what = what
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish() or kill()
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errors
            )
        except OSError as error:
            self._errors.close()
            raise OutputError(f"cannot start ffmpeg to write {what}: {error.strerror or error}") from error

    def write(self, image: np.ndarray) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(memoryview(np.ascontiguousarray(image)).cast("B"))
        except (BrokenPipeError, OSError):
            code = self.process.wait()
            raise _ffmpeg_failed(self.what, code, self.stderr(), "stopped") from None

    def stderr(self) -> str:
        self._errors.seek(0)
        return summarize_stderr(self._errors.read())

    def finish(self) -> None:
        """Close stdin and wait; a non-zero exit is an :class:`OutputError`."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.process.stdin.close()
        code = self.process.wait()
        try:
            if code != 0:
                raise _ffmpeg_failed(self.what, code, self.stderr())
        finally:
            self._errors.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        self.process.wait()
        self._errors.close()


def _ffmpeg_failed(what: Path, code: int | None, summary: str, verb: str = "failed") -> OutputError:
    """The one-line error for an ffmpeg that could not write ``what``.

    A full disk or the file size limit (RLIMIT_FSIZE, which kills ffmpeg with
    SIGXFSZ before it can say anything) are named as such.
    """
    if code == -signal.SIGXFSZ or "File too large" in summary:
        return OutputError(describe_os_error(OSError(errno.EFBIG, "File too large"), what))
    if "No space left" in summary:
        return OutputError(describe_os_error(OSError(errno.ENOSPC, "No space left on device"), what))
    return OutputError(f"cannot write {what}: ffmpeg {verb} ({summary})")


def _compile(stream: object) -> list[str]:
    """The arguments of an ffmpeg-python graph (after the program name), quiet but for errors."""
    return ["-loglevel", "error", *ffmpeg.compile(stream, cmd=["ffmpeg"], overwrite_output=True)[1:]]


def _command(stream: object) -> list[str]:
    """The whole command line of an ffmpeg-python graph, on faceswap's ffmpeg."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", *_compile(stream)]


def _run(stream: object, what: Path) -> subprocess.CompletedProcess[bytes]:
    """Run an ffmpeg-python graph to completion; a failure is an :class:`OutputError`."""
    result = run_ffmpeg(_compile(stream))
    if result.returncode != 0:
        raise _ffmpeg_failed(what, result.returncode, summarize_stderr(result.stderr))
    return result


# ----------------------------------------------------------------------------------------------
# mp4


def video_delay(path: Path | str) -> float:
    """Seconds from the start of ``path`` (its earliest stream) to its first video frame (see the probe)."""
    return probe_video(path).video_delay


class Mp4Writer(_PipeWriter):
    """H.264 mp4 with the input's audio copied in (see the module docstring).

    Parameters
    ----------
    path
        Output file (``.mp4``).
    spec
        Size and exact rate of the frames.
    audio_source
        The probed input whose audio streams go into the output; ``None`` (or
        an input without audio) gives a video-only file.
    crf, preset
        x264 quality (0 lossless … 51 worst) and speed preset.
    overwrite
        Replace an existing output (only once the new one is complete).
    label
        The metadata comment (default: :func:`synthetic_label`); for other
        synthetic material, such as the demo's clips filmed from photos.
    """

    def __init__(
        self,
        path: Path | str,
        spec: FrameSpec,
        *,
        audio_source: VideoInfo | None = None,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        overwrite: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(Path(path), overwrite)
        check_settings(crf=crf, preset=preset)
        self.spec = spec
        self.label = label or synthetic_label()
        self.audio_source = audio_source if audio_source is not None and _carried(audio_source) else None
        self._video_temp = temporary_path(self.path)
        self._final_temp = temporary_path(self.path) if self.audio_source else self._video_temp
        self._temporaries = (self._video_temp, self._final_temp)
        self._even = spec.width % 2 == 0 and spec.height % 2 == 0
        rate = f"{spec.fps.numerator}/{spec.fps.denominator}"
        if self._even:
            # OpenCV converts RGB to 4:2:0 BT.601 limited-range YUV several times faster than
            # ffmpeg's swscale, and the pipe carries half the bytes.
            frames = ffmpeg.input(
                "pipe:", format="rawvideo", pix_fmt="yuv420p", s=f"{spec.width}x{spec.height}", framerate=rate
            )
        else:
            log.info(
                "odd frame size %dx%d: encoding yuv444p (H.264 High 4:4:4) to keep the exact size; "
                "4:2:0 needs even sides",
                spec.width,
                spec.height,
            )
            frames = ffmpeg.input(
                "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{spec.width}x{spec.height}", framerate=rate
            ).filter("scale", out_color_matrix="bt601", out_range="tv")
        output = frames.output(
            file_url(self._video_temp),
            vcodec="libx264",
            pix_fmt="yuv420p" if self._even else "yuv444p",
            crf=crf,
            preset=preset,
            # The matrix and range the pixels were converted with, so players decode the colours meant.
            colorspace="smpte170m",
            color_range="tv",
            movflags="+faststart",
            **{"metadata:g:0": f"comment={self.label}"},
        )
        self._encoder: _Encoder | None = _Encoder(_command(output), self.path)

    def _raw(self, image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420) if self._even else image

    def _finish(self) -> None:
        """Mux the audio and subtitles in (if any) and check the result."""
        if self.audio_source is None or not self.audio_source.has_audio:
            log.info("the input has no audio: writing a file without sound")
        if self.audio_source is not None:
            self._mux_streams(self.audio_source)
        self._verify()

    def _mux(self, source: VideoInfo, audio_codec: dict[str, str]) -> object:
        delay = source.video_delay
        video = ffmpeg.input(
            file_url(self._video_temp), **({"itsoffset": f"{delay:.6f}"} if delay > 0.0005 else {})
        )
        original = ffmpeg.input(file_url(source.path), **input_options())
        streams = [video["v:0"]]
        if source.has_audio:
            streams.append(original["a"])  # every audio stream, wherever it sits in the file
        streams += [original[f"s:{index}"] for index in _text_subtitles(source)]
        subtitle_codec = {"c:s": "mov_text"} if _text_subtitles(source) else {}
        output = ffmpeg.output(
            *streams,
            file_url(self._final_temp),
            vcodec="copy",
            movflags="+faststart",
            **(audio_codec if source.has_audio else {}),
            **subtitle_codec,
            **{"metadata:g:0": f"comment={self.label}"},
        )
        return output

    def _mux_streams(self, source: VideoInfo) -> None:
        """Copy the audio and text subtitles in; audio is re-encoded to AAC if players could not play it."""
        codecs = ", ".join(stream.codec for stream in source.audio)
        reason = f"{codecs} in mp4 is not widely playable"
        if all(stream.codec in MP4_AUDIO_CODECS for stream in source.audio):
            result = run_ffmpeg(_compile(self._mux(source, {"acodec": "copy"})))
            if result.returncode == 0:
                if source.has_audio:
                    log.info("audio: %d stream(s) copied from the input (%s)", len(source.audio), codecs)
                self._log_subtitles(source)
                return
            if not source.has_audio:
                raise OutputError(
                    f"cannot add the input's subtitles to {self.path} ({summarize_stderr(result.stderr)})"
                )
            reason = f"mp4 refused {codecs} ({summarize_stderr(result.stderr)})"
            remove_quietly(self._final_temp)
        log.info("audio: %s; re-encoding to AAC %s", reason, FALLBACK_AUDIO_BITRATE)
        result = run_ffmpeg(
            _compile(self._mux(source, {"acodec": "aac", "audio_bitrate": FALLBACK_AUDIO_BITRATE}))
        )
        if result.returncode != 0:
            raise OutputError(
                f"cannot add the input's audio to {self.path} ({reason}; "
                f"AAC: {summarize_stderr(result.stderr)})"
            )
        self._log_subtitles(source)

    @staticmethod
    def _log_subtitles(source: VideoInfo) -> None:
        subtitles = _text_subtitles(source)
        if subtitles:
            log.info("subtitles: %d stream(s) copied as mp4 timed text (mov_text)", len(subtitles))

    def _verify(self) -> None:
        """Probe the finished file: frames, rate, size, every audio and subtitle stream must be there."""
        info = probe_video(self._final_temp)
        spec = self.spec
        problems = []
        if info.frame_count != self.frames_encoded:
            problems.append(f"{info.frame_count} frames instead of {self.frames_encoded}")
        if info.fps != spec.fps:
            problems.append(f"{info.fps} fps instead of {spec.fps}")
        if info.size != (spec.width, spec.height):
            problems.append(f"size {info.width}x{info.height} instead of {spec.width}x{spec.height}")
        expected = self.audio_source.audio if self.audio_source is not None else ()
        subtitles = len(_text_subtitles(self.audio_source)) if self.audio_source is not None else 0
        if len(info.subtitles) != subtitles:
            problems.append(f"{len(info.subtitles)} subtitle stream(s) instead of {subtitles}")
        if len(info.audio) != len(expected):
            problems.append(f"{len(info.audio)} audio stream(s) instead of {len(expected)}")
        else:
            for mine, theirs in zip(info.audio, expected, strict=True):
                if (
                    mine.duration is not None
                    and theirs.duration is not None
                    and abs(mine.duration - theirs.duration) > AUDIO_DURATION_TOLERANCE
                ):
                    problems.append(
                        f"audio stream {mine.index} lasts {mine.duration:.3f} s "
                        f"instead of {theirs.duration:.3f} s"
                    )
        if problems:
            raise OutputError(f"the written {self.path.name} is wrong: {'; '.join(problems)}")


def _text_subtitles(source: VideoInfo) -> list[int]:
    """Indexes (``s:N``) of the subtitle streams of ``source`` that mp4 can hold (text subtitles)."""
    return [index for index, codec in enumerate(source.subtitles) if codec in TEXT_SUBTITLE_CODECS]


def _carried(source: VideoInfo) -> bool:
    """Whether an mp4 written from ``source`` carries more than the video, logging what it cannot hold."""
    dropped = [
        f"subtitle {codec} (pictures)" for codec in source.subtitles if codec not in TEXT_SUBTITLE_CODECS
    ]
    dropped += list(source.other_streams)
    if dropped:
        log.info(
            "not kept from the input: %s (an mp4 of faceswap holds one video, audio and text subtitles)",
            ", ".join(dropped),
        )
    return source.has_audio or bool(_text_subtitles(source))


# ----------------------------------------------------------------------------------------------
# gif


def add_gif_comment(source: Path, target: Path, text: str) -> None:
    """Copy the gif ``source`` to ``target`` with a Comment Extension holding ``text``.

    The extension goes right after the global colour table, before any frame
    (GIF89a, section 24); ffmpeg, Pillow and browsers read past it.

    Raises
    ------
    OutputError
        When ``source`` is not a GIF89a file, or ``target`` cannot be written.
    """
    payload = text.encode("ascii", "replace")
    blocks = b"".join(
        bytes([len(payload[i : i + 255])]) + payload[i : i + 255] for i in range(0, len(payload), 255)
    )
    try:
        with open(source, "rb") as reader, open(target, "wb") as writer:
            head = reader.read(13)
            if len(head) != 13 or head[:6] != b"GIF89a":
                raise OutputError(f"cannot label {target}: ffmpeg did not write a GIF89a file")
            flags = head[10]
            table = 3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0
            writer.write(head + reader.read(table))
            writer.write(b"\x21\xfe" + blocks + b"\x00")
            shutil.copyfileobj(reader, writer, 1 << 20)
            writer.flush()
            os.fsync(writer.fileno())
    except OSError as error:
        raise OutputError(describe_os_error(error, target)) from error


class GifWriter(_PipeWriter):
    """Animated gif with a palette made for the clip, looping forever (see the module docstring).

    Parameters
    ----------
    path
        Output file (``.gif``).
    spec
        Size and rate of the frames.
    max_fps
        Frame-rate cap; faster input drops frames evenly.
    width
        Output width in pixels (height follows the aspect ratio); ``None`` keeps the input's.
    overwrite
        Replace an existing output (only once the new one is complete).
    """

    def __init__(
        self,
        path: Path | str,
        spec: FrameSpec,
        *,
        max_fps: float = DEFAULT_GIF_FPS,
        width: int | None = None,
        overwrite: bool = False,
    ) -> None:
        super().__init__(Path(path), overwrite)
        check_settings(gif_fps=max_fps, gif_width=width)
        self.spec = spec
        self.max_fps = max_fps
        self.width = width
        self._intermediate = temporary_path(self.path.with_suffix(".mkv"))
        self._palette = temporary_path(self.path.with_suffix(".png"))
        self._plain = temporary_path(self.path)
        self._final_temp = temporary_path(self.path)
        self._temporaries = (self._intermediate, self._palette, self._plain, self._final_temp)
        rate = f"{spec.fps.numerator}/{spec.fps.denominator}"
        frames = ffmpeg.input(
            "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{spec.width}x{spec.height}", framerate=rate
        )
        if spec.fps > Fraction(max_fps).limit_denominator(1001):
            frames = frames.filter("fps", fps=f"{max_fps:g}")
        if width is not None and width != spec.width:
            frames = frames.filter("scale", width, -1, flags="lanczos")
        split = frames.filter_multi_output("split")
        palette = (
            split[0]
            .filter("palettegen", stats_mode="full")
            .output(file_url(self._palette), **{"frames:v": 1, "update": 1})
        )
        lossless = split[1].output(file_url(self._intermediate), vcodec="ffv1")
        self._encoder: _Encoder | None = _Encoder(
            _command(ffmpeg.merge_outputs(palette, lossless)), self.path
        )

    def _finish(self) -> None:
        """Write the gif with the clip's palette, label it and check its frames."""
        clip, palette = ffmpeg.input(file_url(self._intermediate)), ffmpeg.input(file_url(self._palette))
        gif = ffmpeg.filter(
            [clip, palette], "paletteuse", dither="bayer", bayer_scale=3, diff_mode="rectangle"
        ).output(file_url(self._plain), loop=0)
        _run(gif, self.path)
        add_gif_comment(self._plain, self._final_temp, synthetic_label())
        expected = gif_frame_count(self.frames_encoded, self.spec.fps, self.max_fps)
        info = probe_video(self._final_temp)
        if info.frame_count != expected:
            raise OutputError(
                f"the written {self.path.name} is wrong: {info.frame_count} frames instead of {expected}"
            )
        if self.spec.fps > Fraction(self.max_fps).limit_denominator(1001):
            log.info("gif: %s fps capped at %g fps (--fps)", _rate_text(self.spec.fps), self.max_fps)


def _rate_text(fps: Fraction) -> str:
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.3f}"


# ----------------------------------------------------------------------------------------------
# frames folder


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image, labelled synthetic in a ``Comment`` text chunk (fast zlib level 1)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", synthetic_label())
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG", compress_level=1, pnginfo=info)
    return buffer.getvalue()


class FramesWriter(_Writer):
    """A folder of PNG frames, built under a temporary name and renamed into place when complete.

    Files are named ``frame_000000.png`` by frame index, or after ``name``
    (with the ``.png`` suffix) when the writer is given names that are all
    different, as for a folder of photos.
    """

    def __init__(self, path: Path | str, *, overwrite: bool = False) -> None:
        super().__init__(Path(path), overwrite)
        self._temp = temporary_path(self.path)
        try:
            self._temp.mkdir()
        except OSError as error:
            raise OutputError(describe_os_error(error, self.path)) from error
        self._names: set[str] = set()
        self._taken: set[str] = set()  # the names, case-folded (a macOS or Windows disk ignores case)

    def write(self, image: np.ndarray, name: str | None = None) -> None:
        """Write one frame as a PNG (see :func:`encode_png`)."""
        self._check(image, None)
        file = self._free_name(name)
        self._names.add(file)
        self._taken.add(file.casefold())
        try:
            (self._temp / file).write_bytes(encode_png(image))
        except OSError as error:
            raise OutputError(describe_os_error(error, self.path / file)) from error
        self.frames_written += 1

    def _free_name(self, name: str | None) -> str:
        """``name`` as a PNG, or ``frame_<index>.png``: never one already written (ignoring case)."""
        taken = self._taken
        if name is not None:
            candidate = Path(name).stem + ".png"
            if candidate.casefold() not in taken and not candidate.startswith("."):
                return candidate
            log.info("frame %d: %s is taken, writing it under a frame number", self.frames_written, candidate)
        number = self.frames_written
        while f"frame_{number:06d}.png" in taken:
            number += 1
        return f"frame_{number:06d}.png"

    def close(self) -> None:
        """Rename the finished folder into place (an old one is removed only after that)."""
        if self._closed:
            return
        self._closed = True
        old = temporary_path(self.path) if self.path.exists() else None
        try:
            mark_folder(self._temp, self._names, "convert")
            check_replaceable_folder(self.path)  # again: files may have been put there since the start
            if old is not None:
                os.replace(self.path, old)
            os.replace(self._temp, self.path)
        except OutputError:
            self.abort()
            raise
        except OSError as error:
            if old is not None and old.exists() and not self.path.exists():
                os.replace(old, self.path)
            self.abort()
            raise OutputError(describe_os_error(error, self.path)) from error
        fsync_directory(self.path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove the temporary folder."""
        self._closed = True
        shutil.rmtree(self._temp, ignore_errors=True)


def open_writer(
    path: Path | str,
    spec: FrameSpec,
    *,
    audio_source: VideoInfo | None = None,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    gif_fps: float = DEFAULT_GIF_FPS,
    gif_width: int | None = None,
    overwrite: bool = False,
) -> Mp4Writer | GifWriter | FramesWriter:
    """The writer that ``path``'s suffix asks for (see :func:`output_kind`)."""
    kind = output_kind(path)
    if kind == "mp4":
        return Mp4Writer(path, spec, audio_source=audio_source, crf=crf, preset=preset, overwrite=overwrite)
    if audio_source is not None and (audio_source.has_audio or audio_source.subtitles):
        log.info(
            "the input's audio and subtitles are not kept: a %s cannot hold them",
            "gif" if kind == "gif" else "PNG folder",
        )
    if kind == "gif":
        return GifWriter(path, spec, max_fps=gif_fps, width=gif_width, overwrite=overwrite)
    return FramesWriter(path, overwrite=overwrite)
