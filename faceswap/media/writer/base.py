"""What every writer shares: the frame spec, the :class:`FrameWriter` protocol and the base classes.

:class:`BaseWriter` holds the context manager, the frame checks and the refusal
to clobber; :class:`PipeWriter` adds the ffmpeg pipe of the mp4 and gif writers
and the constant-rate resampling of variable-rate input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from faceswap.errors import OutputError
from faceswap.fileio import commit, remove_quietly, remove_stale_temporaries_of
from faceswap.media.probe import VideoInfo
from faceswap.media.timing import constant_rate_repeats
from faceswap.media.writer.encoder import Encoder
from faceswap.media.writer.output import check_output

log = logging.getLogger(__name__)


class FrameWriter(Protocol):
    """What the pipelines need from any writer: frames in, then close (or abort) once."""

    path: Path
    frames_written: int

    def write(self, image: np.ndarray, name: str | None = None) -> None:
        """Append one RGB ``uint8`` frame, shape ``(height, width, 3)``; ``name``: a file name hint."""
        ...

    def close(self) -> None:
        """Finish, check and publish the output."""
        ...

    def abort(self) -> None:
        """Remove everything written so far."""
        ...

    def frames_shown(self, count: int) -> list[bool]:
        """For each of ``count`` frames written in order, whether the output shows it.

        A gif whose rate is capped drops frames; a frame the output does not
        show need not be converted (it may be written as it is).
        """
        ...


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


class BaseWriter:
    """Shared behaviour: context manager, frame checks, refusing to clobber."""

    path: Path

    def __init__(self, path: Path, overwrite: bool) -> None:
        self.path = Path(path)
        self.frames_written = 0
        self._closed = False
        check_output(self.path, overwrite=overwrite)
        remove_stale_temporaries_of(self.path)  # what a killed run writing this output left

    def __enter__(self) -> BaseWriter:
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

    def frames_shown(self, count: int) -> list[bool]:
        """Whether the output shows each of ``count`` frames written in order (see :class:`FrameWriter`)."""
        return [True] * count

    def close(self) -> None:
        """Finish, check and publish the output."""
        raise NotImplementedError

    def abort(self) -> None:
        """Remove everything written so far; the output's previous content (if any) is untouched."""
        raise NotImplementedError


class PipeWriter(BaseWriter):
    """A writer whose frames go down a pipe into ffmpeg (mp4, gif); subclasses finish the file.

    Subclasses set :attr:`spec`, start :attr:`_encoder`, list every temporary
    file in :attr:`_temporaries` and implement :meth:`_finish`, which turns
    the encoder's output into a checked :attr:`_final_temp`.
    """

    spec: FrameSpec
    _encoder: Encoder | None
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
        repeats = self._constant_rate_repeats()
        if repeats is None:
            return 1
        index = self.frames_written
        return repeats[index] if index < len(repeats) else 1

    def _constant_rate_repeats(self) -> list[int] | None:
        """How often each frame is shown at the spec's constant rate; ``None`` when the rate is constant."""
        spec = self.spec
        if spec.frame_times is None or spec.duration is None:
            return None
        if self._repeats is None:
            self._repeats = constant_rate_repeats(spec.frame_times, spec.duration, spec.fps)
            log.info(
                "variable frame rate: written at a constant %s fps, frames repeated or dropped to keep "
                "their times (%d frames in, %d out)",
                rate_text(spec.fps),
                len(spec.frame_times),
                sum(self._repeats),
            )
        return self._repeats

    def frames_shown(self, count: int) -> list[bool]:
        """Whether each frame is shown: all are, but those a variable rate drops."""
        repeats = self._constant_rate_repeats() or []
        return [index >= len(repeats) or repeats[index] > 0 for index in range(count)]

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


def rate_text(fps: Fraction) -> str:
    """A frame rate for a log line: ``30`` for whole rates, else three decimals (``29.970``)."""
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.3f}"
