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
    A palette made for the clip (``palettegen``, 128 colours weighted to what
    moves) and ordered dithering (``paletteuse`` with Bayer dither, which does
    not crawl from frame to frame as error diffusion does), loops forever, frame
    rate capped at ``max_fps`` (frames dropped evenly by the writer, which says
    which beforehand, :meth:`GifWriter.frames_shown`, so they are not converted;
    duration kept), optional ``width``. The frames go through a lossless FFV1
    intermediate so a long clip is never held in memory.

The writers, one a module: :mod:`.mp4`, :mod:`.gif`, :mod:`.frames`, on
:mod:`.base` (the :class:`FrameWriter` protocol, the frame spec, the shared
base classes); :mod:`.encoder` runs the ffmpeg process, :mod:`.output` checks
an output path and the encoder settings before any work.
frames folder (:class:`FramesWriter`)
    One PNG per frame.

Every mp4 and gif carries :func:`synthetic_label` in its metadata (``comment``
tag in mp4; a GIF Comment Extension, which ffmpeg reads back as ``comment``),
and every PNG a ``Comment`` text chunk: the output shows faces that were not
there, and anyone who finds the file should be able to tell.
"""

from __future__ import annotations

import logging
from pathlib import Path

from faceswap.media.probe import VideoInfo
from faceswap.media.writer.base import BaseWriter, FrameSpec, FrameWriter, PipeWriter, video_frame_spec
from faceswap.media.writer.frames import FramesWriter, encode_png
from faceswap.media.writer.gif import GifWriter, add_gif_comment, gif_frame_count
from faceswap.media.writer.mp4 import (
    AUDIO_DURATION_TOLERANCE,
    FALLBACK_AUDIO_BITRATE,
    MP4_AUDIO_CODECS,
    TEXT_SUBTITLE_CODECS,
    Mp4Writer,
)
from faceswap.media.writer.output import (
    DEFAULT_CRF,
    DEFAULT_GIF_FPS,
    DEFAULT_PRESET,
    X264_PRESETS,
    OutputKind,
    check_output,
    check_settings,
    output_kind,
    synthetic_label,
)

__all__ = [
    "AUDIO_DURATION_TOLERANCE",
    "DEFAULT_CRF",
    "DEFAULT_GIF_FPS",
    "DEFAULT_PRESET",
    "FALLBACK_AUDIO_BITRATE",
    "MP4_AUDIO_CODECS",
    "TEXT_SUBTITLE_CODECS",
    "X264_PRESETS",
    "BaseWriter",
    "FrameSpec",
    "FrameWriter",
    "FramesWriter",
    "GifWriter",
    "Mp4Writer",
    "OutputKind",
    "PipeWriter",
    "add_gif_comment",
    "check_output",
    "check_settings",
    "encode_png",
    "gif_frame_count",
    "open_writer",
    "output_kind",
    "synthetic_label",
    "video_frame_spec",
]

log = logging.getLogger(__name__)


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
