"""The frames-folder writer: one PNG per frame, labelled synthetic, the folder renamed into place."""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from faceswap.errors import OutputError
from faceswap.fileio import describe_os_error, fsync_directory, temporary_path
from faceswap.media.writer.base import BaseWriter
from faceswap.media.writer.output import synthetic_label
from faceswap.paths import check_replaceable_folder, mark_folder

log = logging.getLogger(__name__)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image, labelled synthetic in a ``Comment`` text chunk (fast zlib level 1)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", synthetic_label())
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG", compress_level=1, pnginfo=info)
    return buffer.getvalue()


class FramesWriter(BaseWriter):
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
