"""Probe a video or gif with ffmpeg alone (ffprobe is not shipped with imageio-ffmpeg).

The probe asks ffmpeg to copy the streams into its ``framecrc`` muxer, which
lists every packet with its timestamps and, in header lines, each stream's
type, codec, size and time base. Nothing is decoded, so probing a long video
takes a fraction of a second, and the result is exact:

* the frame count is the number of video packets (one frame each),
* the frame rate is the exact :class:`fractions.Fraction` that every packet
  timestamp fits (:mod:`faceswap.media.timing`), so 30000/1001 stays
  30000/1001 and a 30 fps Matroska file (1 ms ticks) is 30 fps; a stream no
  constant rate fits is marked variable, and ``fps`` is the rate to write it at,
* truncated files (ffmpeg reports ``partial file``) are detected up front.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from faceswap.errors import MediaError
from faceswap.media.ffmpeg import input_args, run_ffmpeg, summarize_stderr
from faceswap.media.timing import exact_frame_rate, rates_printed_as, reported_rate

#: Frames larger than this are refused before anything is decoded into memory.
MAX_FRAME_PIXELS = 8192 * 8192
#: Frames smaller than this on either side cannot hold a detectable face.
MIN_FRAME_SIDE = 32
#: Hard limit on the number of frames of one input (about 9 hours at 60 fps).
MAX_FRAMES = 2_000_000

_NOPTS = -(2**63)
_DISCARD_FLAG = 0x4
_HEADER = re.compile(r"^#(\w+) (\d+):\s*(.*)$")
_START = re.compile(r"Duration: [^,]+, start: (-?[\d.]+)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (\w+): (\w+)(.*)$")


@dataclass(frozen=True)
class AudioStream:
    """One audio stream of a media file.

    ``index`` counts audio streams only (ffmpeg's ``a:N`` specifier), so it does
    not depend on where the audio sits among the file's streams.
    """

    index: int
    codec: str
    sample_rate: int | None
    channels: str | None
    duration: float | None


@dataclass(frozen=True)
class VideoInfo:
    """What faceswap needs to know about a video or animated gif.

    ``fps`` is the exact constant rate of the frames; for a variable-rate
    stream (``variable_frame_rate``) it is the rate to write them at, and
    ``frame_times`` (seconds from the first frame) say when each is shown.
    ``video_delay`` is how far the first frame lies after the start of the
    file (its earliest stream): usually 0, positive when the sound starts first.
    ``subtitles`` holds the codec of each subtitle stream (ffmpeg's ``s:N``
    order); ``other_streams`` describes the streams that are neither the
    video, audio nor subtitles (data, attachments, more video), one text each.
    """

    path: Path
    codec: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration: float
    start_time: float
    frame_times: tuple[float, ...] = field(repr=False)
    video_delay: float = 0.0
    variable_frame_rate: bool = False
    audio: tuple[AudioStream, ...] = ()
    subtitles: tuple[str, ...] = ()
    other_streams: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """Frame size as ``(width, height)``."""
        return self.width, self.height

    @property
    def has_audio(self) -> bool:
        """Whether the file has at least one audio stream."""
        return bool(self.audio)


def check_frame_size(width: int, height: int, what: str) -> None:
    """Refuse frames too small to hold a face or too large to decode safely.

    Raises
    ------
    MediaError
        With a message naming ``what`` and the offending size.
    """
    if width < MIN_FRAME_SIDE or height < MIN_FRAME_SIDE:
        raise MediaError(
            f"{what}: frame size {width}x{height} is too small to hold a face "
            f"(at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE})"
        )
    if width * height > MAX_FRAME_PIXELS:
        raise MediaError(
            f"{what}: frame size {width}x{height} is too large "
            f"(at most {MAX_FRAME_PIXELS // 1_000_000} megapixels)"
        )


def probe_video(path: Path | str) -> VideoInfo:
    """Probe a video or gif file.

    Raises
    ------
    MediaError
        When the path is missing or empty, the file is not a video ffmpeg can
        read, has no video stream, is truncated, reports no usable frame rate,
        or has a frame size outside the accepted range.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")

    result = run_ffmpeg(
        [*input_args(path), "-map", "0:v:0?", "-map", "0:a?", "-c", "copy", "-f", "framecrc", "-"]
    )
    stderr = result.stderr.decode("utf-8", "replace")
    if result.returncode != 0:
        raise MediaError(f"{path}: not a readable video ({summarize_stderr(stderr)})")
    if "partial file" in stderr:
        raise MediaError(f"{path}: the file is truncated ({summarize_stderr(stderr)})")

    streams, packets = _parse_framecrc(result.stdout.decode("utf-8", "replace"))
    video_ids = [sid for sid, meta in streams.items() if meta.get("media_type") == "video"]
    if not video_ids:
        raise MediaError(f"{path}: has no video stream")
    video_id = video_ids[0]
    meta = streams[video_id]
    width, height = _parse_dimensions(meta.get("dimensions", ""), path)
    if _rotation_swaps_sides(stderr):
        width, height = height, width
    check_frame_size(width, height, str(path))

    time_base = _parse_fraction(meta.get("tb", ""), path)
    video = [(pts, duration) for sid, pts, duration, _ in packets if sid == video_id]
    if not video:
        raise MediaError(f"{path}: the video stream has no frames")
    if len(video) > MAX_FRAMES:
        raise MediaError(f"{path}: {len(video)} frames is more than faceswap accepts ({MAX_FRAMES})")
    reported = reported_rate(stderr)
    fps, variable = _frame_rate(video, time_base, path, rates_printed_as(reported) if reported else ())

    start_match = _START.search(stderr)
    start_time = float(start_match.group(1)) if start_match else 0.0
    first_pts = min(pts for pts, _ in video)
    video_delay = max(0.0, float(first_pts * time_base) - start_time)
    frame_times = tuple(float((pts - first_pts) * time_base) for pts, _ in sorted(video))
    last_pts, last_duration = max(video)
    duration = float((last_pts - first_pts + (last_duration or 0)) * time_base)
    if duration <= 0:
        duration = float(len(video) / fps)

    audio = []
    for number, (sid, audio_meta) in enumerate(
        (sid, m) for sid, m in streams.items() if m.get("media_type") == "audio"
    ):
        tb = _parse_fraction(audio_meta.get("tb", "1/1"), path)
        spans = [(pts, dur) for s, pts, dur, _ in packets if s == sid]
        audio_duration = None
        if spans:
            audio_duration = float((max(p + d for p, d in spans) - min(p for p, _ in spans)) * tb)
        rate = audio_meta.get("sample_rate")
        audio.append(
            AudioStream(
                index=number,
                codec=audio_meta.get("codec_id", "unknown"),
                sample_rate=int(rate) if rate and rate.isdigit() else None,
                channels=audio_meta.get("channel_layout_name"),
                duration=audio_duration,
            )
        )

    subtitles, other_streams = _other_streams(stderr)
    return VideoInfo(
        path=path,
        codec=meta.get("codec_id", "unknown"),
        width=width,
        height=height,
        fps=fps,
        frame_count=len(video),
        duration=duration,
        start_time=start_time,
        frame_times=frame_times,
        video_delay=video_delay,
        variable_frame_rate=variable,
        audio=tuple(audio),
        subtitles=subtitles,
        other_streams=other_streams,
    )


def _other_streams(stderr: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Subtitle codecs and descriptions of the other non-audio streams, from ffmpeg's listing of the input."""
    listing = stderr.split("Stream mapping:", 1)[0].split("Output #0", 1)[0]
    subtitles: list[str] = []
    others: list[str] = []
    videos = 0
    for line in listing.splitlines():
        match = _STREAM.match(line)
        if not match:
            continue
        kind, codec, rest = match.group(1).lower(), match.group(2), match.group(3)
        if kind == "subtitle":
            subtitles.append(codec)
        elif kind == "video":
            videos += 1
            if videos > 1:
                others.append(f"video {codec}" + (" (attached picture)" if "attached pic" in rest else ""))
        elif kind != "audio":
            others.append(f"{kind} {codec}")
    return tuple(subtitles), tuple(others)


def _parse_framecrc(text: str) -> tuple[dict[int, dict[str, str]], list[tuple[int, int, int, int]]]:
    """Split framecrc output into per-stream header fields and kept packets.

    Returns ``(streams, packets)`` where each packet is ``(stream, pts,
    duration, flags)``; packets the decoder would discard are left out.
    """
    streams: dict[int, dict[str, str]] = {}
    packets: list[tuple[int, int, int, int]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            match = _HEADER.match(line)
            if match:
                key, sid, value = match.groups()
                streams.setdefault(int(sid), {})[key] = value.strip()
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 6 or not parts[0].isdigit():
            continue
        try:
            sid, pts, duration = int(parts[0]), int(parts[2]), int(parts[3])
        except ValueError:
            continue
        flags = 0
        for extra in parts[6:]:
            if extra.startswith("F="):
                flags = int(extra[2:], 16)
        if pts == _NOPTS or flags & _DISCARD_FLAG:
            continue
        packets.append((sid, pts, duration, flags))
    return streams, packets


def _parse_dimensions(text: str, path: Path) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise MediaError(f"{path}: the video stream reports no frame size")
    return int(match.group(1)), int(match.group(2))


def _parse_fraction(text: str, path: Path) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise MediaError(f"{path}: unreadable time base {text!r}") from None
    if value <= 0:
        raise MediaError(f"{path}: invalid time base {text!r}")
    return value


def _frame_rate(
    video: list[tuple[int, int]], time_base: Fraction, path: Path, hints: Sequence[Fraction] = ()
) -> tuple[Fraction, bool]:
    """The exact frame rate (see :func:`~faceswap.media.timing.exact_frame_rate`) and whether it varies.

    ``hints`` are the rates ffmpeg reports for the stream, tried first. A
    single frame falls back to its own duration.
    """
    stamps = sorted(pts for pts, _ in video)
    fps, resample = exact_frame_rate(stamps, time_base, hints)
    variable = fps is None and resample is not None
    rate = fps or resample
    if rate is None:
        step = max((duration for _, duration in video), default=0)
        if step <= 0:
            raise MediaError(f"{path}: the video reports no usable frame rate (0 fps)")
        rate = 1 / (step * time_base)
    if not 0.1 <= rate <= 1000:
        raise MediaError(f"{path}: implausible frame rate {float(rate):.3g} fps")
    return rate, variable


def _rotation_swaps_sides(stderr: str) -> bool:
    """Whether display-matrix rotation makes ffmpeg's decoded frames portrait/landscape-swapped."""
    match = _ROTATION.search(stderr)
    if not match:
        return False
    return round(abs(float(match.group(1)))) % 180 == 90


def read_metadata(path: Path | str) -> dict[str, str]:
    """The global metadata tags of a media file, as ffmpeg reads them (keys lower-case)."""
    result = run_ffmpeg([*input_args(path), "-f", "ffmetadata", "-"])
    tags: dict[str, str] = {}
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        if "=" in line and not line.startswith((";", "[")):
            key, value = line.split("=", 1)
            tags[key.strip().lower()] = value
    return tags


def video_delay(path: Path | str) -> float:
    """Seconds from the start of ``path`` (its earliest stream) to its first video frame (see the probe)."""
    return probe_video(path).video_delay
