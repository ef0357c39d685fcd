"""Safety of a ``.keras`` file before Keras opens it: what the archive would expand to, from its directory.

Keras reads a model archive's JSON members whole and its HDF5 weights into
memory; a small hostile file (a zip or HDF5 compression bomb) could take
gigabytes. :func:`check_model_archive` refuses such a file from metadata alone.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zipfile
from pathlib import Path
from typing import IO, Any

from faceswap.errors import ModelError

#: The most a model archive may expand to: a generous multiple of the largest network's weights with
#: their optimizer state (the weights of the original128 model with Adam's two slots).
MAX_ARCHIVE_BYTES = 8 * 1024**3
#: The most each JSON member of a model archive (which Keras reads whole) may hold.
MAX_ARCHIVE_JSON_BYTES = 16 * 1024**2
#: Keras stores its members uncompressed, and weights hardly compress: a member (or an HDF5 weights
#: file's data) larger than :data:`COMPRESSION_FLOOR` and this many times its stored size is a bomb.
MAX_COMPRESSION_RATIO = 20
COMPRESSION_FLOOR = 1024**2
_WEIGHTS_MEMBER = "model.weights.h5"


def check_model_archive(path: Path) -> None:
    """Refuse a ``.keras`` file that would expand to far more than any faceswap model needs.

    Checks, from the archive's directory alone, that the members together stay
    under :data:`MAX_ARCHIVE_BYTES`, the JSON members under
    :data:`MAX_ARCHIVE_JSON_BYTES`, and no member is compressed more than
    :data:`MAX_COMPRESSION_RATIO` times; then, from the weights file's HDF5
    metadata (nothing is read), that its arrays are no larger than that ratio
    allows either (HDF5 compresses on its own, and an unwritten array reads as
    its fill value).

    Raises
    ------
    ModelError
        When the file is missing, not a zip archive, or fails a check.
    """
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: damaged or truncated model file (not a Keras archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > MAX_ARCHIVE_BYTES:
                raise ModelError(
                    f"{path}: the archive expands to {_gib(total)}, more than any faceswap model "
                    f"({_gib(MAX_ARCHIVE_BYTES)} at most)"
                )
            for member in members:
                _check_member(path, member)
            weights = next((m for m in members if m.filename == _WEIGHTS_MEMBER), None)
            if weights is not None:
                _check_weights(path, archive, weights)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as error:
        raise ModelError(f"{path}: damaged model file ({type(error).__name__})") from None


def _check_member(path: Path, member: zipfile.ZipInfo) -> None:
    if member.filename.endswith(".json") and member.file_size > MAX_ARCHIVE_JSON_BYTES:
        raise ModelError(
            f"{path}: its {member.filename} holds {_gib(member.file_size)}, far more than a model "
            f"description needs ({MAX_ARCHIVE_JSON_BYTES // 1024**2} MiB at most)"
        )
    if member.file_size > max(COMPRESSION_FLOOR, MAX_COMPRESSION_RATIO * member.compress_size):
        raise ModelError(
            f"{path}: its {member.filename} expands from {member.compress_size} bytes to "
            f"{_gib(member.file_size)} (a compression bomb, not a saved model)"
        )


def _check_weights(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Refuse an HDF5 weights file whose arrays add up to far more than the file holds."""
    import h5py  # Keras' own dependency for its weights files

    sizes: list[int] = []

    def measure(_: str, item: object) -> None:
        if isinstance(item, h5py.Dataset):
            sizes.append(int(item.size) * item.dtype.itemsize)

    with contextlib.ExitStack() as stack:
        if member.compress_type == zipfile.ZIP_STORED:  # as Keras writes it: read in place, quickly
            stream: IO[bytes] = stack.enter_context(_StoredMember(path, member))
        else:  # seeking in a compressed member decompresses again from its start: slow, but rare
            stream = stack.enter_context(archive.open(member))
        try:
            with h5py.File(stream, "r") as weights:
                weights.visititems(measure)
        except OSError:
            return  # not HDF5: Keras reports that, and reads nothing large on the way
    data = sum(sizes)
    if data > max(COMPRESSION_FLOOR, MAX_COMPRESSION_RATIO * member.file_size):
        raise ModelError(
            f"{path}: its weights expand from {member.file_size} bytes to {_gib(data)} "
            "(a compression bomb, not a saved model)"
        )


class _StoredMember(io.RawIOBase):
    """An uncompressed zip member read in place, with cheap seeks (``ZipExtFile`` re-reads from the start)."""

    def __init__(self, path: Path, member: zipfile.ZipInfo) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._file.seek(member.header_offset)
        header = self._file.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            self._file.close()
            raise zipfile.BadZipFile("bad local file header")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        self._start = member.header_offset + 30 + name_length + extra_length
        self._size = member.file_size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = max(0, min(len(buffer), self._size - self._position))
        self._file.seek(self._start + self._position)
        got = self._file.readinto(memoryview(buffer)[:wanted])
        self._position += got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


def _gib(size: int) -> str:
    return f"{size / 1024**3:.2f} GiB" if size >= 1024**3 else f"{size / 1024**2:.1f} MiB"
