"""The alignments file: every frame's faces (box, landmarks, matrix), as JSON.

``faceswap extract`` writes it beside the crops; ``convert`` reads it to swap
the faces of each frame; ``train`` uses it to find each crop's landmarks.

Format (``version`` 1)::

    {"format": "faceswap-alignments", "version": 1, "created_by": "faceswap 0.1.0",
     "source": {"path": "clip.mp4", "kind": "video", "frame_count": 216,
                "width": 480, "height": 480, "fps": "30000/1001", "duration": 7.2,
                "fingerprint": "sample-blake2b:1048576:0123456789abcdef0123456789abcdef"},
     "settings": {...the extract options...},
     "frames": {
       "0": {"faces": [{"box": [l, t, r, b], "landmarks": [[x, y], ... 68],
                        "matrix": [[a, b, c], [d, e, f]], "blur": 153.2,
                        "score": 1.53, "identity_distance": null,
                        "crop": "clip_000000_0.png"}]},
       "1": {"faces": []},
       ...}}

Keys of ``frames`` are frame indices; a frame that is missing was not
processed yet (``extract --resume`` does it), a frame with ``"faces": []`` was
processed and has no face. ``matrix`` maps frame pixels to unit face space
(:func:`faceswap.align.alignment_matrix`); ``crop`` names the saved crop in the
same folder, or is null when the face was not saved (blurry, other person).
For image folders each frame also has ``"name"``, the image's file name.
``fingerprint`` (:mod:`faceswap.fingerprint`) identifies a video's file, so
that convert and ``extract --resume`` refuse the alignments of another video
of the same frame count and size; files written before it was recorded have
none and are accepted with a warning.

The file is data from possibly untrusted hands: :meth:`Alignments.load`
validates every field (types, shapes, ranges, frame indices) and refuses files
over :data:`MAX_FILE_BYTES` before parsing them. It is written atomically,
one frame per line, so it stays readable and diffable, and so it is read: one
line at a time, each frame turned into arrays before the next is read, so
memory holds the faces, never the whole text and its parse tree (fifteen times
the file). A file larger than its frame count can need
(:data:`MAX_FRAME_LINE_BYTES` a frame) is refused once its header is read; a
file in another layout (edited by hand, pretty-printed) is parsed whole, up to
:data:`MAX_UNSTREAMED_BYTES`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from faceswap import __version__
from faceswap.errors import AlignmentsError, MediaError
from faceswap.fileio import atomic_write, is_safe_name, safe_name
from faceswap.fingerprint import PATTERN as FINGERPRINT_PATTERN
from faceswap.fingerprint import file_fingerprint, short
from faceswap.media.probe import MAX_FRAME_PIXELS, MAX_FRAMES, VideoInfo

if TYPE_CHECKING:
    from faceswap.media.reader import FrameSource

log = logging.getLogger(__name__)

FORMAT = "faceswap-alignments"
VERSION = 1
#: Name of the alignments file inside an extract output folder.
ALIGNMENTS_NAME = "alignments.json"
#: Files larger than this are refused before parsing (a 2-hour video with one
#: face per frame is about 300 MB).
MAX_FILE_BYTES = 2 * 1024**3
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

Box = tuple[float, float, float, float]


@dataclass
class Face:
    """One face in one frame.

    Attributes
    ----------
    box
        Detector-style box ``(left, top, right, bottom)`` in frame pixels.
    landmarks
        ``(68, 2)`` float landmarks in frame pixels.
    matrix
        ``2x3`` alignment matrix, frame pixels to unit face space.
    blur
        Variance of the Laplacian of the aligned face (higher is sharper).
    score
        Detector confidence, or ``None`` when the face was followed from the
        previous frame instead of detected.
    identity_distance
        Distance of the face's embedding to the reference identity, when
        extract was given ``--reference`` photos.
    crop
        File name of the saved crop beside the alignments file, or ``None``.
    """

    box: Box
    landmarks: np.ndarray
    matrix: np.ndarray
    blur: float = 0.0
    score: float | None = None
    identity_distance: float | None = None
    crop: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (landmarks rounded to 1/100 px)."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "landmarks": np.round(self.landmarks, 2).tolist(),
            "matrix": [[float(f"{v:.9g}") for v in row] for row in self.matrix],
            "blur": round(float(self.blur), 3),
            "score": None if self.score is None else round(float(self.score), 4),
            "identity_distance": (
                None if self.identity_distance is None else round(float(self.identity_distance), 4)
            ),
            "crop": self.crop,
        }


@dataclass
class FrameRecord:
    """The faces found in one frame (possibly none), and the image name for image folders."""

    faces: list[Face] = field(default_factory=list)
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        record: dict[str, Any] = {"faces": [face.to_json() for face in self.faces]}
        if self.name is not None:
            record["name"] = self.name
        return record


@dataclass
class SourceInfo:
    """The media an alignments file was made from."""

    path: str
    kind: Literal["video", "images"]
    frame_count: int
    width: int | None = None
    height: int | None = None
    fps: Fraction | None = None
    duration: float | None = None
    #: :func:`faceswap.fingerprint.file_fingerprint` of a video (``None``: not recorded).
    fingerprint: str | None = None

    @classmethod
    def of(cls, source: FrameSource) -> SourceInfo:
        """What an alignments file records of ``source``: see :meth:`of_video`; images: their count.

        Raises
        ------
        MediaError
            When a video's file cannot be read.
        """
        if source.video_info is not None:
            return cls.of_video(source.path, source.video_info)
        return cls(str(source.path), "images", source.frame_count)

    @classmethod
    def of_video(cls, path: Path | str, info: VideoInfo) -> SourceInfo:
        """What an alignments file records of a probed video: frames, size, timing and fingerprint.

        Raises
        ------
        MediaError
            When the file cannot be read.
        """
        try:
            fingerprint = file_fingerprint(path)
        except OSError as error:
            raise MediaError(f"{path}: cannot read ({error.strerror or error})") from None
        return cls(
            str(path),
            "video",
            info.frame_count,
            info.width,
            info.height,
            info.fps,
            info.duration,
            fingerprint,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (fps as an exact ``"num/den"`` string)."""
        return {
            "path": self.path,
            "kind": self.kind,
            "frame_count": self.frame_count,
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else f"{self.fps.numerator}/{self.fps.denominator}",
            "duration": self.duration,
            "fingerprint": self.fingerprint,
        }

    def describe(self) -> str:
        """Short description for error messages: ``216 frames at 480x480``."""
        size = f" at {self.width}x{self.height}" if self.width else ""
        return f"{self.frame_count} frames{size}"


@dataclass
class Alignments:
    """All faces of all processed frames of one source."""

    source: SourceInfo
    settings: dict[str, Any] = field(default_factory=dict)
    frames: dict[int, FrameRecord] = field(default_factory=dict)
    version: int = VERSION

    def __iter__(self) -> Iterator[tuple[int, FrameRecord]]:
        """Frames in index order."""
        return iter(sorted(self.frames.items()))

    def faces(self, index: int) -> list[Face]:
        """Faces of frame ``index`` (empty when none or not processed)."""
        record = self.frames.get(index)
        return record.faces if record else []

    @property
    def face_count(self) -> int:
        """Total number of faces in all frames."""
        return sum(len(record.faces) for record in self.frames.values())

    def missing_frames(self, step: int = 1) -> list[int]:
        """Frames ``0, step, 2·step, ...`` that are not recorded yet."""
        return [i for i in range(0, self.source.frame_count, step) if i not in self.frames]

    def check_source(self, other: SourceInfo, file: Path | str) -> None:
        """Refuse to apply these alignments to a source of another frame count, size or content.

        The content is compared by fingerprint when both sources have one (videos);
        a file that records none (written by an older faceswap) is accepted with
        a warning.

        Raises
        ------
        AlignmentsError
            Naming both sources' frame counts and sizes, or both fingerprints.
        """
        mine = self.source
        same_size = (
            mine.width is None
            or other.width is None
            or (mine.width, mine.height)
            == (
                other.width,
                other.height,
            )
        )
        if mine.frame_count != other.frame_count or not same_size:
            raise AlignmentsError(
                f"{file} was made for {mine.path} ({mine.describe()}), "
                f"not for {other.path} ({other.describe()})"
            )
        if mine.kind != "video" or other.fingerprint is None:
            return
        comparable = (
            mine.fingerprint is not None
            and mine.fingerprint.split(":", 1)[0] == other.fingerprint.split(":", 1)[0]
        )
        if not comparable:
            log.warning(
                "%s records no fingerprint of its video that this faceswap can compare (it was "
                "written by another version): only its frame count and size show that it belongs to %s",
                file,
                other.path,
            )
        elif mine.fingerprint != other.fingerprint:
            raise AlignmentsError(
                f"{file} was made for another video of the same frame count and size: {mine.path} "
                f"(content {short(mine.fingerprint)}), not for {other.path} "
                f"(content {short(other.fingerprint)})"
            )

    def check_made_from(self, source: FrameSource, file: Path | str) -> None:
        """Refuse to apply these alignments to ``source`` unless they were made from it.

        :meth:`check_source` on its :meth:`SourceInfo.of`, and for images each
        recorded file name against the image of that frame.

        Raises
        ------
        AlignmentsError
            Naming what differs.
        """
        self.check_source(SourceInfo.of(source), file)
        for index, record in self:
            if (
                record.name is not None
                and index < len(source.files)
                and record.name != source.files[index].name
            ):
                raise AlignmentsError(
                    f"{file} was made for other images (frame {index} is {record.name}, "
                    f"here it is {source.files[index].name})"
                )

    def save(self, path: Path | str) -> None:
        """Write the file atomically: a crash leaves the previous version intact."""
        header = {
            "format": FORMAT,
            "version": self.version,
            "created_by": f"faceswap {__version__}",
            "source": self.source.to_json(),
            "settings": self.settings,
        }
        head = json.dumps(header, allow_nan=False, ensure_ascii=False)
        with atomic_write(path, "w") as handle:
            handle.write(head[:-1] + ',\n"frames": {')
            for number, (index, record) in enumerate(self):
                separator = "\n" if number == 0 else ",\n"
                handle.write(f'{separator}"{index}": {json.dumps(record.to_json(), allow_nan=False)}')
            handle.write("\n}}\n")

    @classmethod
    def load(cls, path: Path | str) -> Alignments:
        """Read and validate an alignments file.

        Raises
        ------
        AlignmentsError
            When the file is missing, too large, not JSON, of another format or
            version, or any field has the wrong type, shape or range. The
            message names the file and the first offending field.
        """
        path = Path(path)
        if not path.is_file():
            raise AlignmentsError(f"{path}: no such alignments file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AlignmentsError(f"{path}: {size} bytes is larger than an alignments file can be")
        try:
            document = _read_document(path, size)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AlignmentsError(f"{path}: not a valid alignments file (corrupt JSON: {error})") from None
        except RecursionError:
            raise AlignmentsError(f"{path}: not a valid alignments file (nested too deeply)") from None
        except ValueError:  # json's own limit on the digits of a whole number (4300)
            raise AlignmentsError(
                f"{path}: not a valid alignments file (a number with too many digits)"
            ) from None
        try:
            return _parse_document(document)
        except _FieldError as error:
            raise AlignmentsError(f"{path}: {error}") from None


def crop_file_name(source_stem: str, frame_index: int, face_index: int, suffix: str = ".png") -> str:
    """Name of a saved crop: ``<source>_<frame:06d>_<face>.png``, safe for any source name."""
    return f"{safe_name(source_stem)}_{frame_index:06d}_{face_index}{suffix}"


def default_output_dir(source: Path | str) -> Path:
    """Default extract output for a source: ``./<source name>_faces``."""
    return Path(f"{safe_name(Path(source).stem)}_faces")


def find_alignments(source: Path | str) -> Path | None:
    """Look for the alignments file of ``source`` where extract puts it by default.

    Tries ``<source folder>/<name>_faces/alignments.json``, then
    ``./<name>_faces/alignments.json``; returns ``None`` when neither exists.
    """
    source = Path(source)
    folder_name = default_output_dir(source).name
    for candidate in (source.parent / folder_name / ALIGNMENTS_NAME, Path(folder_name) / ALIGNMENTS_NAME):
        if candidate.is_file():
            return candidate
    return None


# ----------------------------------------------------------------------------------------------
# Reading


_FRAMES_LINE = b'"frames": {'


def _read_document(path: Path, size: int) -> dict[str, Any]:
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
                    raise _FieldError(f"line {number} is longer than a frame can be")
                entry = line.strip().removesuffix(b",")
                if entry == b"}}":
                    break
                if not entry:
                    if not line:
                        raise _FieldError("the file ends inside frames (truncated)")
                    continue
                try:
                    value = json.loads(b"{" + entry + b"}")
                except (UnicodeDecodeError, ValueError, RecursionError):
                    raise _FieldError(f"line {number} is not a frame (corrupt JSON)") from None
                yield from value.items()
            if handle.read(64).strip():
                raise _FieldError("unexpected data after the frames")


# ----------------------------------------------------------------------------------------------
# Validation


class _FieldError(Exception):
    """A field of the document is invalid; the message says which and why."""


def _parse_document(document: object) -> Alignments:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _FieldError("not a faceswap alignments file")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _FieldError("has no valid version number")
    if version > VERSION:
        raise _FieldError(f"version {version} was written by a newer faceswap (this one reads {VERSION})")
    if version < 1:
        raise _FieldError(f"unknown version {version}")
    source = _parse_source(document.get("source"))
    settings = document.get("settings", {})
    if not isinstance(settings, dict):
        raise _FieldError("settings must be an object")
    frames_in = document.get("frames")
    if not isinstance(frames_in, dict):
        raise _FieldError("frames must be an object keyed by frame number")
    frames: dict[int, FrameRecord] = {}
    for key, value in frames_in.items():
        if not (isinstance(key, str) and _FRAME_KEY.fullmatch(key)):
            raise _FieldError(f"frame key {key[:20]!r} is not a frame number (ASCII digits, no leading zero)")
        index = int(key)
        if index >= source.frame_count:
            raise _FieldError(f"frame {index} is beyond the source's {source.frame_count} frames")
        frames[index] = _parse_frame(value, f"frame {index}")
    return Alignments(source=source, settings=settings, frames=frames, version=version)


def _parse_source(value: object) -> SourceInfo:
    if not isinstance(value, dict):
        raise _FieldError("source must be an object")
    path = _text(value.get("path"), "source.path")
    kind = value.get("kind")
    if kind not in ("video", "images"):
        raise _FieldError("source.kind must be 'video' or 'images'")
    frame_count = _integer(value.get("frame_count"), "source.frame_count", 1, MAX_FRAMES)
    width = height = None
    if value.get("width") is not None or kind == "video":
        width = _integer(value.get("width"), "source.width", 1, MAX_FRAME_PIXELS)
        height = _integer(value.get("height"), "source.height", 1, MAX_FRAME_PIXELS)
        if width * height > MAX_FRAME_PIXELS:
            raise _FieldError(f"source size {width}x{height} is out of range")
    fps = None
    if value.get("fps") is not None:
        text = value["fps"] if isinstance(value["fps"], str) else None
        if isinstance(value["fps"], int) and not isinstance(value["fps"], bool):
            text = str(value["fps"])
        if text is None or not _FPS.fullmatch(text):
            raise _FieldError("source.fps must be a fraction such as '30000/1001'")
        try:
            fps = Fraction(text)
        except ZeroDivisionError:
            raise _FieldError("source.fps must be a fraction such as '30000/1001'") from None
        if not 0 < fps <= 1000:
            raise _FieldError("source.fps is out of range")
    duration = value.get("duration")
    if duration is not None:
        duration = _number(duration, "source.duration", 0.0, 1e7)
    fingerprint = value.get("fingerprint")
    if fingerprint is not None and not (
        isinstance(fingerprint, str) and FINGERPRINT_PATTERN.fullmatch(fingerprint)
    ):
        raise _FieldError("source.fingerprint must be a fingerprint such as 'sample-blake2b:<size>:<hex>'")
    return SourceInfo(path, kind, frame_count, width, height, fps, duration, fingerprint)


def _parse_frame(value: object, where: str) -> FrameRecord:
    if not isinstance(value, dict):
        raise _FieldError(f"{where} must be an object")
    faces_in = value.get("faces")
    if not isinstance(faces_in, list):
        raise _FieldError(f"{where}: faces must be a list")
    if len(faces_in) > MAX_FACES_PER_FRAME:
        raise _FieldError(f"{where}: {len(faces_in)} faces is more than {MAX_FACES_PER_FRAME}")
    name = value.get("name")
    if name is not None:
        name = _text(name, f"{where}: name")
        if "/" in name or "\\" in name:
            raise _FieldError(f"{where}: name must be a file name, not a path")
    faces = [_parse_face(face, f"{where}, face {number}") for number, face in enumerate(faces_in)]
    return FrameRecord(faces=faces, name=name)


def _parse_face(value: object, where: str) -> Face:
    if not isinstance(value, dict):
        raise _FieldError(f"{where} must be an object")
    box = _array(value.get("box"), (4,), f"{where}: box")
    landmarks = _array(value.get("landmarks"), (68, 2), f"{where}: landmarks")
    matrix = _array(value.get("matrix"), (2, 3), f"{where}: matrix")
    limit = 4 * math.sqrt(MAX_FRAME_PIXELS)
    if np.abs(landmarks).max() > limit or np.abs(box).max() > limit:
        raise _FieldError(f"{where}: coordinates are out of range")
    if not (box[0] <= box[2] and box[1] <= box[3]):
        raise _FieldError(
            f"{where}: box must be [left, top, right, bottom] with left <= right, top <= bottom"
        )
    _check_matrix(matrix, limit, where)
    crop = value.get("crop")
    if crop is not None and (not isinstance(crop, str) or not is_safe_name(crop)):
        raise _FieldError(f"{where}: crop must be a plain file name")
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
        raise _FieldError(f"{where}: matrix values are out of range")
    linear = matrix[:, :2]
    scale = abs(float(linear[0, 0] * linear[1, 1] - linear[0, 1] * linear[1, 0]))
    if not 1e-12 <= scale <= 1e4:
        raise _FieldError(f"{where}: matrix is degenerate")
    centre = np.linalg.solve(linear, np.array([0.5, 0.5]) - matrix[:, 2])
    if np.abs(centre).max() > limit:
        raise _FieldError(f"{where}: matrix puts the face outside the frame")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _FieldError(f"{where} must be a string")
    if len(value) > MAX_NAME_CHARS or _CONTROL.search(value):
        raise _FieldError(f"{where} must be at most {MAX_NAME_CHARS} characters, without control characters")
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _FieldError(f"{where} must be a whole number from {low} to {high}")
    return value


def _number(value: object, where: str, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _FieldError(f"{where} must be a number")
    try:
        number = float(value)
    except OverflowError:  # a whole number beyond float's range
        raise _FieldError(f"{where} is out of range") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise _FieldError(f"{where} is out of range")
    return number


def _array(value: object, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A finite float array of exactly ``shape`` from nested JSON lists."""
    if not isinstance(value, list) or len(value) != shape[0]:
        raise _FieldError(f"{where} must be a list of {shape[0]}")
    if len(shape) == 2 and not all(isinstance(row, list) and len(row) == shape[1] for row in value):
        raise _FieldError(f"{where} must be {shape[0]} rows of {shape[1]}")
    flat = value if len(shape) == 1 else [item for row in value for item in row]
    if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in flat):
        raise _FieldError(f"{where} must hold numbers only")
    try:
        array = np.asarray(value, dtype=np.float64)
    except OverflowError:  # a whole number beyond float's range
        raise _FieldError(f"{where} must hold finite numbers") from None
    if not np.isfinite(array).all():
        raise _FieldError(f"{where} must hold finite numbers")
    return array
