"""The alignments file: every frame's faces (box, landmarks, matrix), as JSON.

``faceswap extract`` writes it beside the crops; ``convert`` reads it to swap
the faces of each frame. ``train`` does not read it: each crop carries its own
landmarks (:mod:`faceswap.crops`).

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
(:data:`~faceswap.alignments_read.MAX_FRAME_LINE_BYTES` a frame) is refused once its header is read; a
file in another layout (edited by hand, pretty-printed) is parsed whole, up to
:data:`~faceswap.alignments_read.MAX_UNSTREAMED_BYTES`.

The records (:class:`Face`, :class:`FrameRecord`, :class:`SourceInfo`) are
defined in :mod:`faceswap.alignments_records`, the reading and validation in
:mod:`faceswap.alignments_read`; both are re-exported here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceswap import __version__
from faceswap.alignments_read import FieldError, parse_document, read_document
from faceswap.alignments_records import FORMAT, VERSION, Box, Face, FrameRecord, SourceInfo
from faceswap.errors import AlignmentsError
from faceswap.fileio import atomic_write, safe_name
from faceswap.fingerprint import short

if TYPE_CHECKING:
    from faceswap.media.reader import FrameSource

__all__ = [
    "ALIGNMENTS_NAME",
    "FORMAT",
    "MAX_FILE_BYTES",
    "VERSION",
    "Alignments",
    "Box",
    "Face",
    "FrameRecord",
    "SourceInfo",
    "default_output_dir",
    "find_alignments",
]

log = logging.getLogger(__name__)

#: Name of the alignments file inside an extract output folder.
ALIGNMENTS_NAME = "alignments.json"
#: Files larger than this are refused before parsing (a 2-hour video with one
#: face per frame is about 300 MB).
MAX_FILE_BYTES = 2 * 1024**3


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
            document = read_document(path, size)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AlignmentsError(f"{path}: not a valid alignments file (corrupt JSON: {error})") from None
        except RecursionError:
            raise AlignmentsError(f"{path}: not a valid alignments file (nested too deeply)") from None
        except ValueError:  # json's own limit on the digits of a whole number (4300)
            raise AlignmentsError(
                f"{path}: not a valid alignments file (a number with too many digits)"
            ) from None
        try:
            source, settings, frames, version = parse_document(document)
        except FieldError as error:
            raise AlignmentsError(f"{path}: {error}") from None
        return cls(source=source, settings=settings, frames=frames, version=version)


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
