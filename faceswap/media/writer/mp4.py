"""The mp4 writer: H.264 through ffmpeg, the input's audio and text subtitles muxed in and checked."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import ffmpeg
import numpy as np

from faceswap.errors import OutputError
from faceswap.fileio import remove_quietly, temporary_path
from faceswap.media.ffmpeg import file_url, input_options, run_ffmpeg, summarize_stderr
from faceswap.media.probe import VideoInfo, probe_video
from faceswap.media.writer.base import FrameSpec, PipeWriter
from faceswap.media.writer.encoder import Encoder, graph_command, quiet_args
from faceswap.media.writer.output import DEFAULT_CRF, DEFAULT_PRESET, check_settings, synthetic_label

log = logging.getLogger(__name__)

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


class Mp4Writer(PipeWriter):
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
        self._encoder: Encoder | None = Encoder(graph_command(output), self.path)

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
            result = run_ffmpeg(quiet_args(self._mux(source, {"acodec": "copy"})))
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
            quiet_args(self._mux(source, {"acodec": "aac", "audio_bitrate": FALLBACK_AUDIO_BITRATE}))
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
