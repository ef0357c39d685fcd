"""The records of an alignments file: faces, frames and the source they came from.

:mod:`faceswap.alignments` holds the file (:class:`~faceswap.alignments.Alignments`),
:mod:`faceswap.alignments_read` reads and validates it into these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from faceswap.errors import MediaError
from faceswap.fingerprint import file_fingerprint
from faceswap.media.probe import VideoInfo

if TYPE_CHECKING:
    from faceswap.media.reader import FrameSource

#: The ``format`` and ``version`` an alignments file starts with.
FORMAT = "faceswap-alignments"
VERSION = 1
#: A face's box ``(left, top, right, bottom)`` in frame pixels.
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
