"""Reading an alignments file: streamed one frame per line, every field validated.

The file is data from possibly untrusted hands: :func:`parse_document` checks
every field (types, shapes, ranges, frame indices) and names the first that is
wrong in a :class:`FieldError`; :func:`read_document` refuses a file larger
than its frame count can need before parsing it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.alignments_records import FORMAT, VERSION, Face, FrameRecord, SourceInfo
from faceswap.errors import AlignmentsError
from faceswap.fileio import is_safe_name
from faceswap.fingerprint import PATTERN as FINGERPRINT_PATTERN
from faceswap.media.probe import MAX_FRAME_PIXELS, MAX_FRAMES

#: Most faces accepted in one frame.
MAX_FACES_PER_FRAME = 64
#: Longest header line (format, source, settings) and frame line of the layout :meth:`Alignments.save`
#: writes: a frame of :data:`MAX_FACES_PER_FRAME` faces, each well under 4 KiB, and a long image name.
MAX_HEADER_BYTES = 1024**2
MAX_FRAME_LINE_BYTES = 512 * 1024
#: Largest file in another layout, which is parsed whole (its parse tree takes about 15 times the file).
MAX_UNSTREAMED_BYTES = 16 * 1024**2

#: A frame number as extract writes it: ASCII digits, no sign, no leading zero ("012" would be 12 twice).
_FRAME_KEY = re.compile(r"0|[1-9][0-9]{0,8}", re.ASCII)
#: A frame rate as extract writes it ("30000/1001"), or a whole number.
_FPS = re.compile(r"[0-9]{1,10}(?:/[0-9]{1,10})?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Longest source path and image name accepted (they are quoted in messages).
MAX_NAME_CHARS = 4096
#: Largest magnitude of a matrix entry: a face of a millionth of a pixel, or a million pixels off.
_MAX_MATRIX_ENTRY = 1e6


# ----------------------------------------------------------------------------------------------
# Reading


_FRAMES_LINE = b'"frames": {'


def read_document(path: Path, size: int) -> dict[str, Any]:
    """The parsed document; in :meth:`Alignments.save`'s layout its frames are read as they are iterated.

    Raises
    ------
    AlignmentsError
        When the file is larger than its frame count can need, or, in another
        layout, larger than :data:`MAX_UNSTREAMED_BYTES`.
    json.JSONDecodeError, UnicodeDecodeError
        When the header is not JSON.
    """
    with open(path, "rb") as handle:
        head = handle.readline(MAX_HEADER_BYTES + 1)
        second = handle.readline(len(_FRAMES_LINE) + 2)
    if head.endswith(b",\n") and second.rstrip(b"\r\n") == _FRAMES_LINE:
        header = json.loads(head[:-2] + b"}")
        if isinstance(header, dict) and "frames" not in header:
            _check_size(path, size, header)
            header["frames"] = _StreamedFrames(path, len(head) + len(second))
            return header
    if size > MAX_UNSTREAMED_BYTES:
        raise AlignmentsError(
            f"{path}: {size} bytes, and not in the layout faceswap writes (one frame per line), which is "
            f"read only up to {MAX_UNSTREAMED_BYTES // 1024**2} MiB"
        )
    document = json.loads(path.read_bytes())
    if isinstance(document, dict):
        _check_size(path, size, document)
    return document


def _check_size(path: Path, size: int, header: dict[str, Any]) -> None:
    """Refuse a file larger than the frame count its header claims can need."""
    source = header.get("source")
    count = source.get("frame_count") if isinstance(source, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_FRAMES:
        return  # validation names the field
    need = MAX_HEADER_BYTES + count * MAX_FRAME_LINE_BYTES
    if size > need:
        raise AlignmentsError(
            f"{path}: {size} bytes is more than the alignments of {count} frames can need "
            f"({need} bytes at most)"
        )


class _StreamedFrames(dict):  # type: ignore[type-arg]
    """The ``frames`` object of a file in :meth:`Alignments.save`'s layout, read one line per frame.

    It stands in for the parsed object (it is empty): :meth:`items` reads the
    file from ``offset`` and yields each frame's key and parsed value in turn,
    so only one frame's parse tree exists at a time.
    """

    def __init__(self, path: Path, offset: int) -> None:
        super().__init__()
        self._path = path
        self._offset = offset

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """Yield ``(key, frame)`` for each frame line, then check that the document ends."""
        with open(self._path, "rb") as handle:
            handle.seek(self._offset)
            number = 2
            while True:
                line = handle.readline(MAX_FRAME_LINE_BYTES + 1)
                number += 1
                if len(line) > MAX_FRAME_LINE_BYTES:
                    raise FieldError(f"line {number} is longer than a frame can be")
                entry = line.strip().removesuffix(b",")
                if entry == b"}}":
                    break
                if not entry:
                    if not line:
                        raise FieldError("the file ends inside frames (truncated)")
                    continue
                try:
                    value = json.loads(b"{" + entry + b"}")
                except (UnicodeDecodeError, ValueError, RecursionError):
                    raise FieldError(f"line {number} is not a frame (corrupt JSON)") from None
                yield from value.items()
            if handle.read(64).strip():
                raise FieldError("unexpected data after the frames")


# ----------------------------------------------------------------------------------------------
# Validation


class FieldError(Exception):
    """A field of the document is invalid; the message says which and why."""


def parse_document(
    document: object,
) -> tuple[SourceInfo, dict[str, Any], dict[int, FrameRecord], int]:
    """The source, settings, frames and version of a parsed document, each field checked.

    Raises
    ------
    FieldError
        Naming the first field that is missing, of the wrong type, shape or range.
    """
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FieldError("not a faceswap alignments file")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FieldError("has no valid version number")
    if version > VERSION:
        raise FieldError(f"version {version} was written by a newer faceswap (this one reads {VERSION})")
    if version < 1:
        raise FieldError(f"unknown version {version}")
    source = _parse_source(document.get("source"))
    settings = document.get("settings", {})
    if not isinstance(settings, dict):
        raise FieldError("settings must be an object")
    frames_in = document.get("frames")
    if not isinstance(frames_in, dict):
        raise FieldError("frames must be an object keyed by frame number")
    frames: dict[int, FrameRecord] = {}
    for key, value in frames_in.items():
        if not (isinstance(key, str) and _FRAME_KEY.fullmatch(key)):
            raise FieldError(f"frame key {key[:20]!r} is not a frame number (ASCII digits, no leading zero)")
        index = int(key)
        if index >= source.frame_count:
            raise FieldError(f"frame {index} is beyond the source's {source.frame_count} frames")
        frames[index] = _parse_frame(value, f"frame {index}")
    return source, settings, frames, version


def _parse_source(value: object) -> SourceInfo:
    if not isinstance(value, dict):
        raise FieldError("source must be an object")
    path = _text(value.get("path"), "source.path")
    kind = value.get("kind")
    if kind not in ("video", "images"):
        raise FieldError("source.kind must be 'video' or 'images'")
    frame_count = _integer(value.get("frame_count"), "source.frame_count", 1, MAX_FRAMES)
    width = height = None
    if value.get("width") is not None or kind == "video":
        width = _integer(value.get("width"), "source.width", 1, MAX_FRAME_PIXELS)
        height = _integer(value.get("height"), "source.height", 1, MAX_FRAME_PIXELS)
        if width * height > MAX_FRAME_PIXELS:
            raise FieldError(f"source size {width}x{height} is out of range")
    fps = None
    if value.get("fps") is not None:
        text = value["fps"] if isinstance(value["fps"], str) else None
        if isinstance(value["fps"], int) and not isinstance(value["fps"], bool):
            text = str(value["fps"])
        if text is None or not _FPS.fullmatch(text):
            raise FieldError("source.fps must be a fraction such as '30000/1001'")
        try:
            fps = Fraction(text)
        except ZeroDivisionError:
            raise FieldError("source.fps must be a fraction such as '30000/1001'") from None
        if not 0 < fps <= 1000:
            raise FieldError("source.fps is out of range")
    duration = value.get("duration")
    if duration is not None:
        duration = _number(duration, "source.duration", 0.0, 1e7)
    fingerprint = value.get("fingerprint")
    if fingerprint is not None and not (
        isinstance(fingerprint, str) and FINGERPRINT_PATTERN.fullmatch(fingerprint)
    ):
        raise FieldError("source.fingerprint must be a fingerprint such as 'sample-blake2b:<size>:<hex>'")
    return SourceInfo(path, kind, frame_count, width, height, fps, duration, fingerprint)


def _parse_frame(value: object, where: str) -> FrameRecord:
    if not isinstance(value, dict):
        raise FieldError(f"{where} must be an object")
    faces_in = value.get("faces")
    if not isinstance(faces_in, list):
        raise FieldError(f"{where}: faces must be a list")
    if len(faces_in) > MAX_FACES_PER_FRAME:
        raise FieldError(f"{where}: {len(faces_in)} faces is more than {MAX_FACES_PER_FRAME}")
    name = value.get("name")
    if name is not None:
        name = _text(name, f"{where}: name")
        if "/" in name or "\\" in name:
            raise FieldError(f"{where}: name must be a file name, not a path")
    faces = [_parse_face(face, f"{where}, face {number}") for number, face in enumerate(faces_in)]
    return FrameRecord(faces=faces, name=name)


def _parse_face(value: object, where: str) -> Face:
    if not isinstance(value, dict):
        raise FieldError(f"{where} must be an object")
    box = _array(value.get("box"), (4,), f"{where}: box")
    landmarks = _array(value.get("landmarks"), (68, 2), f"{where}: landmarks")
    matrix = _array(value.get("matrix"), (2, 3), f"{where}: matrix")
    limit = 4 * math.sqrt(MAX_FRAME_PIXELS)
    if np.abs(landmarks).max() > limit or np.abs(box).max() > limit:
        raise FieldError(f"{where}: coordinates are out of range")
    if not (box[0] <= box[2] and box[1] <= box[3]):
        raise FieldError(f"{where}: box must be [left, top, right, bottom] with left <= right, top <= bottom")
    _check_matrix(matrix, limit, where)
    crop = value.get("crop")
    if crop is not None and (not isinstance(crop, str) or not is_safe_name(crop)):
        raise FieldError(f"{where}: crop must be a plain file name")
    score = value.get("score")
    identity = value.get("identity_distance")
    return Face(
        box=tuple(float(v) for v in box),  # type: ignore[arg-type]
        landmarks=landmarks,
        matrix=matrix,
        blur=_number(value.get("blur", 0.0), f"{where}: blur", 0.0, 1e12),
        score=None if score is None else _number(score, f"{where}: score", -1e6, 1e6),
        identity_distance=(
            None if identity is None else _number(identity, f"{where}: identity_distance", 0, 1e3)
        ),
        crop=crop,
    )


def _check_matrix(matrix: np.ndarray, limit: float, where: str) -> None:
    """A matrix of sane magnitude (no overflow below), invertible, that puts the face inside ``limit``."""
    if np.abs(matrix).max() > _MAX_MATRIX_ENTRY:
        raise FieldError(f"{where}: matrix values are out of range")
    linear = matrix[:, :2]
    scale = abs(float(linear[0, 0] * linear[1, 1] - linear[0, 1] * linear[1, 0]))
    if not 1e-12 <= scale <= 1e4:
        raise FieldError(f"{where}: matrix is degenerate")
    centre = np.linalg.solve(linear, np.array([0.5, 0.5]) - matrix[:, 2])
    if np.abs(centre).max() > limit:
        raise FieldError(f"{where}: matrix puts the face outside the frame")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise FieldError(f"{where} must be a string")
    if len(value) > MAX_NAME_CHARS or _CONTROL.search(value):
        raise FieldError(f"{where} must be at most {MAX_NAME_CHARS} characters, without control characters")
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FieldError(f"{where} must be a whole number from {low} to {high}")
    return value


def _number(value: object, where: str, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise FieldError(f"{where} must be a number")
    try:
        number = float(value)
    except OverflowError:  # a whole number beyond float's range
        raise FieldError(f"{where} is out of range") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise FieldError(f"{where} is out of range")
    return number


def _array(value: object, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A finite float array of exactly ``shape`` from nested JSON lists."""
    if not isinstance(value, list) or len(value) != shape[0]:
        raise FieldError(f"{where} must be a list of {shape[0]}")
    if len(shape) == 2 and not all(isinstance(row, list) and len(row) == shape[1] for row in value):
        raise FieldError(f"{where} must be {shape[0]} rows of {shape[1]}")
    flat = value if len(shape) == 1 else [item for row in value for item in row]
    if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in flat):
        raise FieldError(f"{where} must hold numbers only")
    try:
        array = np.asarray(value, dtype=np.float64)
    except OverflowError:  # a whole number beyond float's range
        raise FieldError(f"{where} must hold finite numbers") from None
    if not np.isfinite(array).all():
        raise FieldError(f"{where} must hold finite numbers")
    return array
