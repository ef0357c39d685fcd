"""The alignments file: every frame's faces (box, landmarks, matrix), as JSON.

``faceswap extract`` writes it beside the crops; ``convert`` reads it to swap
the faces of each frame; ``train`` uses it to find each crop's landmarks.

Format (``version`` 1)::

    {"format": "faceswap-alignments", "version": 1, "created_by": "faceswap 0.1.0",
     "source": {"path": "clip.mp4", "kind": "video", "frame_count": 216,
                "width": 480, "height": 480, "fps": "30000/1001", "duration": 7.2},
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

The file is data from possibly untrusted hands: :meth:`Alignments.load`
validates every field (types, shapes, ranges, frame indices) and refuses files
over :data:`MAX_FILE_BYTES` before parsing them. It is written atomically,
one frame per line, so it stays readable and diffable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from faceswap import __version__
from faceswap.errors import AlignmentsError
from faceswap.fileio import atomic_write, is_safe_name, safe_name
from faceswap.media.probe import MAX_FRAME_PIXELS, MAX_FRAMES

FORMAT = "faceswap-alignments"
VERSION = 1
#: Name of the alignments file inside an extract output folder.
ALIGNMENTS_NAME = "alignments.json"
#: Files larger than this are refused before parsing (a 2-hour video with one
#: face per frame is about 300 MB).
MAX_FILE_BYTES = 2 * 1024**3
#: Most faces accepted in one frame.
MAX_FACES_PER_FRAME = 64

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
        """Refuse to apply these alignments to a source of another frame count or size.

        Raises
        ------
        AlignmentsError
            Naming both sources' frame counts and sizes.
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
            document = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AlignmentsError(f"{path}: not a valid alignments file (corrupt JSON: {error})") from None
        except RecursionError:
            raise AlignmentsError(f"{path}: not a valid alignments file (nested too deeply)") from None
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
        if not (isinstance(key, str) and key.isdigit() and len(key) <= 9):
            raise _FieldError(f"frame key {key!r} is not a frame number")
        index = int(key)
        if index >= source.frame_count:
            raise _FieldError(f"frame {index} is beyond the source's {source.frame_count} frames")
        frames[index] = _parse_frame(value, f"frame {index}")
    return Alignments(source=source, settings=settings, frames=frames, version=version)


def _parse_source(value: object) -> SourceInfo:
    if not isinstance(value, dict):
        raise _FieldError("source must be an object")
    path = value.get("path")
    kind = value.get("kind")
    if not isinstance(path, str):
        raise _FieldError("source.path must be a string")
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
        try:
            fps = Fraction(str(value["fps"]))
        except (ValueError, ZeroDivisionError):
            raise _FieldError("source.fps must be a fraction such as '30000/1001'") from None
        if not 0 < fps <= 1000:
            raise _FieldError("source.fps is out of range")
    duration = value.get("duration")
    if duration is not None:
        duration = _number(duration, "source.duration", 0.0, 1e7)
    return SourceInfo(path, kind, frame_count, width, height, fps, duration)


def _parse_frame(value: object, where: str) -> FrameRecord:
    if not isinstance(value, dict):
        raise _FieldError(f"{where} must be an object")
    faces_in = value.get("faces")
    if not isinstance(faces_in, list):
        raise _FieldError(f"{where}: faces must be a list")
    if len(faces_in) > MAX_FACES_PER_FRAME:
        raise _FieldError(f"{where}: {len(faces_in)} faces is more than {MAX_FACES_PER_FRAME}")
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        raise _FieldError(f"{where}: name must be a string")
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
    if abs(np.linalg.det(matrix[:, :2])) < 1e-12:
        raise _FieldError(f"{where}: matrix is degenerate")
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


def _integer(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _FieldError(f"{where} must be a whole number from {low} to {high}")
    return value


def _number(value: object, where: str, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _FieldError(f"{where} must be a number")
    number = float(value)
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
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise _FieldError(f"{where} must hold finite numbers")
    return array
