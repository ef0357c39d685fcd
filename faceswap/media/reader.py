"""Frame sources: a video or gif (decoded by ffmpeg), a folder of images, one image.

Every source yields :class:`Frame` objects with RGB ``uint8`` pixels and a
stable index, so the alignments file, the crops and the converted frames can be
matched up again later. Video frames are decoded by an ffmpeg subprocess, which
works on another core while Python handles the previous frame; a range of
frames is reached by a frame-exact seek, so several workers can read disjoint
ranges of one video in parallel.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Protocol, TypeVar

import cv2
import ffmpeg
import numpy as np

from faceswap.errors import InputError, MediaError
from faceswap.file_types import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from faceswap.media.ffmpeg import QUIET, command, file_url, graph_args, input_options, summarize_stderr
from faceswap.media.image_check import check_image
from faceswap.media.probe import VideoInfo, check_frame_size, probe_video

log = logging.getLogger(__name__)


T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes
    ----------
    index
        Position in the source, from 0 (for videos: the frame number).
    image
        RGB pixels, ``uint8``, shape ``(height, width, 3)``.
    name
        For image folders the file name, else ``None``.
    """

    index: int
    image: np.ndarray
    name: str | None = None


class FrameSource(Protocol):
    """What the pipelines need from any source of frames (:class:`VideoSource`, :class:`ImageSource`).

    Convert and extract read everything they branch on from here: whether the
    frames are a video (``video_info`` is its probe, ``None`` for images), when
    each is shown (``frame_times``) and which image file each is (``files``).
    """

    path: Path

    @property
    def frame_count(self) -> int:
        """Number of frames."""
        ...

    @property
    def is_video(self) -> bool:
        """True for videos and gifs (frames in time order, tracking applies)."""
        ...

    @property
    def video_info(self) -> VideoInfo | None:
        """The probe of a video or gif (size, exact rate, audio); ``None`` for images."""
        ...

    @property
    def frame_times(self) -> tuple[float, ...] | None:
        """Seconds from the first frame to each frame of a video; ``None`` for images."""
        ...

    @property
    def files(self) -> Sequence[Path]:
        """The image file of each frame, in frame order (empty for a video)."""
        ...

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        """Yield frames ``start, start + step, ...`` below ``stop``."""
        ...


def _natural_key(name: str) -> list[object]:
    """Sort key that puts ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (not hidden), in natural order."""
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )


def list_videos(folder: Path) -> list[Path]:
    """Video and gif files directly inside ``folder`` (not hidden), in natural order."""
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )


class VideoSource:
    """Frames of a video or animated gif, decoded by ffmpeg into RGB."""

    is_video = True
    #: A video's frames are not image files.
    files: Sequence[Path] = ()

    def __init__(self, path: Path | str, info: VideoInfo | None = None) -> None:
        self.path = Path(path)
        self.info = info or probe_video(self.path)

    @property
    def frame_count(self) -> int:
        """Number of frames, from the probe."""
        return self.info.frame_count

    @property
    def video_info(self) -> VideoInfo:
        """The probe (:attr:`info`)."""
        return self.info

    @property
    def frame_times(self) -> tuple[float, ...]:
        """Seconds from the first frame to each frame, from the probe."""
        return self.info.frame_times

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        """Decode frames ``start, start + step, ...`` below ``stop``.

        Frames before ``start`` are skipped by seeking (frame-exact: ffmpeg
        decodes from the previous key frame and drops what precedes the target).

        Raises
        ------
        MediaError
            When ffmpeg stops before the requested frames were all decoded
            (a corrupt or truncated stream).
        """
        count = self.info.frame_count
        stop = count if stop is None else min(stop, count)
        if step < 1:
            raise ValueError("step must be at least 1")
        if start >= stop:
            return
        width, height = self.info.size
        frame_bytes = width * height * 3
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                self._command(start, stop),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                bufsize=0,
            )
            index = start
            try:
                assert process.stdout is not None
                while index < stop:
                    buffer = bytearray(frame_bytes)
                    if not _read_exactly(process.stdout, buffer):
                        break
                    if (index - start) % step == 0:
                        image = np.frombuffer(buffer, np.uint8).reshape(height, width, 3)
                        yield Frame(index, image)
                    index += 1
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
            if index < stop:
                errors.seek(0)
                message = summarize_stderr(errors.read())
                raise MediaError(
                    f"{self.path}: decoding stopped at frame {index} of {count} "
                    f"(corrupt or truncated video: {message})"
                )

    def _command(self, start: int, stop: int) -> list[str]:
        """ffmpeg arguments that write frames ``[start, stop)`` as raw RGB to stdout."""
        options: dict[str, object] = input_options()
        if start > 0:
            # Seek halfway between the wanted frame and the one before (by their own timestamps, so
            # variable-rate video too): ffmpeg keeps frames at or after the target, so rounding
            # cannot cost or add a frame.
            # -ss counts from the start of the file, where the sound may begin before the picture.
            times = self.info.frame_times
            options["ss"] = f"{self.info.video_delay + (times[start - 1] + times[start]) / 2:.6f}"
        stream = ffmpeg.input(file_url(self.path), **options)
        output = stream["v:0"].output(
            "pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough", **{"frames:v": stop - start}
        )
        return command(QUIET, graph_args(output, overwrite=False))


def _read_exactly(stream: object, buffer: bytearray) -> bool:
    """Fill ``buffer`` from ``stream``; False when the stream ends first."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        got = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            return False
        filled += got
    return True


def read_image(path: Path | str) -> np.ndarray:
    """Read one image file as RGB ``uint8``, refusing absurd sizes before decoding.

    Raises
    ------
    MediaError
        When the file is missing, not an image, or its size is out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    check_image(path, str(path), lambda width, height: check_frame_size(width, height, str(path)))
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageSource:
    """A folder of still images (or one image), read in natural name order."""

    is_video = False
    #: Images have no probe and no frame times.
    video_info = None
    frame_times = None

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            self.files = list_images(self.path)
            if not self.files:
                raise InputError(f"{self.path}: folder holds no images or videos")
        else:
            self.files = [self.path]

    @property
    def frame_count(self) -> int:
        """Number of image files."""
        return len(self.files)

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        """Read images ``start, start + step, ...``; unreadable ones are skipped with a warning."""
        stop = len(self.files) if stop is None else min(stop, len(self.files))
        for index in range(start, stop, step):
            file = self.files[index]
            try:
                image = read_image(file)
            except MediaError as error:
                if len(self.files) == 1:
                    raise
                log.warning("skipping %s", error)
                continue
            yield Frame(index, image, file.name)


def open_source(path: Path | str) -> FrameSource:
    """Open a video, gif, image, or folder of images as a frame source.

    Raises
    ------
    InputError
        When the path does not exist, is empty, or holds nothing readable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return ImageSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        read_image(path)  # validate now, so a bad image fails before any work starts
        return ImageSource(path)
    return VideoSource(path)


def prefetch(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Iterate ``items`` in a background thread, keeping up to ``depth`` ready.

    Useful when producing an item releases the GIL (file reads, OpenCV
    decoding): the consumer works on one item while the next is prepared.
    Exceptions in the producer are re-raised in the consumer.
    """
    queue: Queue[tuple[str, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put(("item", item))
        except BaseException as error:  # handed to the consumer
            queue.put(("error", error))
        else:
            queue.put(("done", None))

    thread = threading.Thread(target=produce, daemon=True, name="prefetch")
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                raise value  # type: ignore[misc]
            else:
                return
    finally:
        stop.set()
        while thread.is_alive():
            while not queue.empty():
                queue.get_nowait()
            thread.join(timeout=0.05)
