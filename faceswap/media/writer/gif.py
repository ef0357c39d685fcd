"""The gif writer: a palette made for the clip, ordered dithering, a Comment Extension label."""

from __future__ import annotations

import logging
import os
import shutil
from fractions import Fraction
from pathlib import Path

import ffmpeg

from faceswap.errors import OutputError
from faceswap.fileio import describe_os_error, temporary_path
from faceswap.media.ffmpeg import file_url
from faceswap.media.probe import probe_video
from faceswap.media.writer.base import FrameSpec, PipeWriter, rate_text
from faceswap.media.writer.encoder import Encoder, graph_command, run_graph
from faceswap.media.writer.output import DEFAULT_GIF_FPS, check_settings, synthetic_label

log = logging.getLogger(__name__)


def gif_frame_count(frames: int, fps: Fraction, max_fps: float) -> int:
    """Frames of a gif made from ``frames`` frames at ``fps`` with rate cap ``max_fps``.

    ffmpeg's ``fps`` filter keeps the frame nearest each output tick and rounds
    the last tick half up: ``floor(frames · cap / fps + 1/2)``.
    """
    cap = Fraction(max_fps).limit_denominator(1001)
    if fps <= cap:
        return frames
    return int(Fraction(frames) * cap / fps + Fraction(1, 2))


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


class GifWriter(PipeWriter):
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
        self._encoder: Encoder | None = Encoder(
            graph_command(ffmpeg.merge_outputs(palette, lossless)), self.path
        )

    def _finish(self) -> None:
        """Write the gif with the clip's palette, label it and check its frames."""
        clip, palette = ffmpeg.input(file_url(self._intermediate)), ffmpeg.input(file_url(self._palette))
        gif = ffmpeg.filter(
            [clip, palette], "paletteuse", dither="bayer", bayer_scale=3, diff_mode="rectangle"
        ).output(file_url(self._plain), loop=0)
        run_graph(gif, self.path)
        add_gif_comment(self._plain, self._final_temp, synthetic_label())
        expected = gif_frame_count(self.frames_encoded, self.spec.fps, self.max_fps)
        info = probe_video(self._final_temp)
        if info.frame_count != expected:
            raise OutputError(
                f"the written {self.path.name} is wrong: {info.frame_count} frames instead of {expected}"
            )
        if self.spec.fps > Fraction(self.max_fps).limit_denominator(1001):
            log.info("gif: %s fps capped at %g fps (--fps)", rate_text(self.spec.fps), self.max_fps)
