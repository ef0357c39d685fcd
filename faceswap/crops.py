"""Aligned face crops on disk: PNG pixels plus the face's metadata in the same file.

Each crop carries a ``tEXt`` chunk named ``faceswap`` holding JSON: where it
came from (source, frame, face), its layout (size, padding) and its 68
landmarks in crop pixels. Users sort, delete and move crops between folders
before training; with the metadata inside the file, a crop never loses its
landmarks (train needs them for the mask and the eye/mouth weights).

PNG is written here rather than by OpenCV because it is the largest cost of
extracting a face: rows get PNG's ``Up`` filter (a NumPy subtraction) and are
deflated at level 1 by ISA-L (the ``isal`` package), which measured 1.2 ms for
a 256-px face crop against 3.2 ms for OpenCV's fastest PNG settings, for files
about 3 % larger. The file is the four standard chunks (IHDR, tEXt, IDAT,
IEND), each length, type, data and CRC-32; any PNG reader opens it.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceswap.errors import InputError
from faceswap.file_types import IMAGE_SUFFIXES
from faceswap.fileio import write_bytes_atomic
from faceswap.media.image_check import check_image

METADATA_KEY = b"faceswap"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2
#: Crops larger than this are refused when read (a crop is a face, not a photo).
MAX_CROP_SIDE = 2048


@dataclass(frozen=True)
class CropInfo:
    """Metadata stored in a crop file.

    Attributes
    ----------
    landmarks
        ``(68, 2)`` landmarks in crop pixels.
    size, padding
        The crop's layout (see :mod:`faceswap.align`).
    source, frame, face
        Where the crop came from: source file name, frame index, face index.
    """

    landmarks: np.ndarray
    size: int
    padding: float
    source: str
    frame: int
    face: int

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "version": 1,
            "source": self.source,
            "frame": self.frame,
            "face": self.face,
            "size": self.size,
            "padding": self.padding,
            "landmarks": np.round(self.landmarks, 2).tolist(),
        }


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_crop(image: np.ndarray, info: CropInfo | None = None) -> bytes:
    """PNG bytes of an RGB ``uint8`` crop, with ``info`` embedded when given."""
    from isal import isal_zlib

    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got shape {image.shape}")
    height, width = image.shape[:2]
    rows = image.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), np.uint8)
    filtered[:, 0] = _FILTER_UP  # each row stores its difference to the row above
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # wraps modulo 256, as PNG wants
    chunks = [_PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    if info is not None:
        text = json.dumps(info.to_json(), separators=(",", ":")).encode("latin-1")
        chunks.append(_chunk(b"tEXt", METADATA_KEY + b"\x00" + text))
    chunks.append(_chunk(b"IDAT", isal_zlib.compress(filtered.tobytes(), 1)))
    chunks.append(_chunk(b"IEND", b""))
    return b"".join(chunks)


def write_crop(path: Path | str, image: np.ndarray, info: CropInfo | None = None) -> None:
    """Write a crop atomically (not fsynced: a crop lost in a power cut is redone by ``--resume``)."""
    write_bytes_atomic(path, encode_crop(image, info), durable=False)


def read_crop_info(path: Path | str) -> CropInfo | None:
    """Metadata of a crop file without decoding its pixels; ``None`` if it has none.

    Malformed metadata is treated as absent (the pixels may still be usable).
    """
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return _parse_info(data)


def _parse_info(data: bytes) -> CropInfo | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"tEXt" and body.startswith(METADATA_KEY + b"\x00"):
            return _validate_info(body[len(METADATA_KEY) + 1 :])
        if kind == b"IEND":
            return None
        position += 12 + length
    return None


def _validate_info(payload: bytes) -> CropInfo | None:
    try:
        meta = json.loads(payload.decode("latin-1"))
        landmarks = np.asarray(meta["landmarks"], dtype=np.float64)
        size = int(meta["size"])
        padding = float(meta["padding"])
        frame, face = int(meta["frame"]), int(meta["face"])
        source = str(meta["source"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
    if (
        landmarks.shape != (68, 2)
        or not np.isfinite(landmarks).all()
        or not 8 <= size <= MAX_CROP_SIDE
        or not 0 <= padding < 0.5
    ):
        return None
    return CropInfo(landmarks=landmarks, size=size, padding=padding, source=source, frame=frame, face=face)


def read_crop(path: Path | str) -> tuple[np.ndarray, CropInfo | None]:
    """Pixels (RGB) and metadata of a crop file.

    Raises
    ------
    InputError
        When the file is not a readable image or is not square.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None

    def check_size(width: int, height: int) -> None:
        if height != width or height > MAX_CROP_SIDE:
            raise InputError(f"{path}: {width}x{height} is not an aligned face crop (expected a square)")

    check_image(data, str(path), check_size)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), _parse_info(data)


def list_crop_files(folder: Path | str) -> list[Path]:
    """Image files in ``folder`` and its subfolders, hidden ones left out, by file name.

    Crops keep their names wherever they are sorted to (``person_1/``, bins),
    so a faces folder is its whole tree.
    """
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    return sorted(found, key=lambda path: (path.name, str(path)))
