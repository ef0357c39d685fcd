"""The gif writer: a palette made for the clip, ordered dithering, a Comment Extension label.

The frames a capped rate drops are chosen here, not by ffmpeg's ``fps`` filter,
so the converter can leave them unconverted (:meth:`GifWriter.frames_shown`)
and the encoder never sees them. The palette settings were chosen by size at
equal or better quality (SSIM, PSNR against the scaled frames): on 354 frames
of a 30 fps clip at 320 px and 12 fps, ``stats_mode=diff``, 128 colours and
Bayer scale 5 make a gif 28-31 % smaller than ``stats_mode=full``, 256
colours and Bayer scale 3, with a higher SSIM.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from faceswap.errors import OutputError
from faceswap.fileio import describe_os_error, temporary_path
from faceswap.media.ffmpeg import file_url
from faceswap.media.probe import probe_video
from faceswap.media.writer.base import FrameSpec, PipeWriter, rate_text
from faceswap.media.writer.encoder import Encoder, graph_command, run_graph
from faceswap.media.writer.output import DEFAULT_GIF_FPS, check_settings, synthetic_label

log = logging.getLogger(__name__)

#: Palette size: 128 colours dithered make smaller frames than 256 at a higher SSIM (module docstring).
PALETTE_COLOURS = 128
#: Bayer matrix scale of the ordered dither (0 strongest pattern … 5 weakest).
BAYER_SCALE = 5


def rate_cap(max_fps: float) -> Fraction:
    """The cap ``max_fps`` as the exact rate the gif is written at (``12.5`` is 25/2)."""
    return Fraction(max_fps).limit_denominator(1001)


def slot_shown(slot: int, fps: Fraction, max_fps: float) -> bool:
    """Whether frame ``slot`` of a constant ``fps`` stream is one a gif capped at ``max_fps`` keeps.

    Output frame ``k`` (at ``k / cap`` seconds) shows the frame nearest its
    time, ``floor(k · fps / cap + 1/2)``; this is True when some ``k`` lands on
    ``slot``. The last ones are kept only up to :func:`gif_frame_count`.
    """
    cap = rate_cap(max_fps)
    if fps <= cap:
        return True
    step = fps / cap
    first = math.ceil((slot - Fraction(1, 2)) / step)
    return first * step < slot + Fraction(1, 2)


def gif_frame_count(frames: int, fps: Fraction, max_fps: float) -> int:
    """Frames of a gif made from ``frames`` frames at ``fps`` with rate cap ``max_fps``.

    ffmpeg's ``fps`` filter keeps the frame nearest each output tick and rounds
    the last tick half up: ``floor(frames · cap / fps + 1/2)``.
    """
    cap = rate_cap(max_fps)
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
        Frame-rate cap; faster input drops frames evenly (:func:`slot_shown`).
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
        #: Frames at the spec's constant rate so far (a variable rate repeats or drops frames).
        self._slots = 0
        #: Frames kept but not yet sent: the last ones are sent once the count allows them.
        self._held: list[np.ndarray] = []
        self._intermediate = temporary_path(self.path.with_suffix(".mkv"))
        self._palette = temporary_path(self.path.with_suffix(".png"))
        self._plain = temporary_path(self.path)
        self._final_temp = temporary_path(self.path)
        self._temporaries = (self._intermediate, self._palette, self._plain, self._final_temp)
        rate = min(spec.fps, rate_cap(max_fps))
        frames = ffmpeg.input(
            "pipe:",
            format="rawvideo",
            pix_fmt="rgb24",
            s=f"{spec.width}x{spec.height}",
            framerate=f"{rate.numerator}/{rate.denominator}",
        )
        if width is not None and width != spec.width:
            frames = frames.filter("scale", width, -1, flags="lanczos")
        split = frames.filter_multi_output("split")
        palette = (
            split[0]
            .filter("palettegen", stats_mode="diff", max_colors=PALETTE_COLOURS)
            .output(file_url(self._palette), **{"frames:v": 1, "update": 1})
        )
        lossless = split[1].output(file_url(self._intermediate), vcodec="ffv1")
        self._encoder: Encoder | None = Encoder(
            graph_command(ffmpeg.merge_outputs(palette, lossless)), self.path
        )

    def frames_shown(self, count: int) -> list[bool]:
        """Whether the gif shows each of ``count`` frames written in order (the cap drops some)."""
        repeats = self._constant_rate_repeats() or []
        slots = [repeats[index] if index < len(repeats) else 1 for index in range(count)]
        limit = gif_frame_count(sum(slots), self.spec.fps, self.max_fps)
        shown, slot, kept = [], 0, 0
        for times in slots:
            keeps = 0
            for _ in range(times):
                if kept < limit and slot_shown(slot, self.spec.fps, self.max_fps):
                    kept += 1
                    keeps += 1
                slot += 1
            shown.append(keeps > 0)
        return shown

    def write(self, image: np.ndarray, name: str | None = None) -> None:
        """Keep one frame as often as the capped rate shows it; frames it drops are never encoded."""
        self._check(image, self.spec)
        assert self._encoder is not None
        for _ in range(self._times_encoded()):
            if slot_shown(self._slots, self.spec.fps, self.max_fps):
                self._held.append(image)
            self._slots += 1
        self.frames_written += 1
        # Sent once the frames so far make a gif that long: the count rounds, so the last may not be.
        limit = gif_frame_count(self._slots, self.spec.fps, self.max_fps)
        while self._held and self.frames_encoded < limit:
            self._encoder.write(self._raw(self._held.pop(0)))
            self.frames_encoded += 1

    def _finish(self) -> None:
        """Write the gif with the clip's palette, label it and check its frames."""
        self._held.clear()
        clip, palette = ffmpeg.input(file_url(self._intermediate)), ffmpeg.input(file_url(self._palette))
        gif = ffmpeg.filter(
            [clip, palette], "paletteuse", dither="bayer", bayer_scale=BAYER_SCALE, diff_mode="rectangle"
        ).output(file_url(self._plain), loop=0)
        run_graph(gif, self.path)
        add_gif_comment(self._plain, self._final_temp, synthetic_label())
        expected = gif_frame_count(self._slots, self.spec.fps, self.max_fps)
        info = probe_video(self._final_temp)
        if info.frame_count != expected:
            raise OutputError(
                f"the written {self.path.name} is wrong: {info.frame_count} frames instead of {expected}"
            )
        if self.spec.fps > rate_cap(self.max_fps):
            log.info("gif: %s fps capped at %g fps (--fps)", rate_text(self.spec.fps), self.max_fps)
