"""The file names of saved face crops: ``<source>_<frame:06d>_<face>.png``, written and read here.

``<source>`` is the source's file stem made safe (:func:`faceswap.fileio.safe_name`),
``<frame>`` its frame index (images of a folder count as frames, in order),
``<face>`` the face's index in that frame, left to right. Crops keep their
names wherever they are sorted to, so a name leads back to its frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from faceswap.fileio import safe_name

#: The file type of saved crops.
CROP_SUFFIX = ".png"
#: Digits of the frame index in a crop name (more for frames past 999 999).
FRAME_DIGITS = 6

_CROP_NAME = re.compile(rf"(.+)_(\d{{{FRAME_DIGITS},}})_(\d+){re.escape(CROP_SUFFIX)}")


@dataclass(frozen=True)
class CropName:
    """What a crop's file name says: the (safe) source stem, the frame index and the face index."""

    source: str
    frame: int
    face: int


def crop_file_name(source_stem: str, frame_index: int, face_index: int, suffix: str = CROP_SUFFIX) -> str:
    """Name of a saved crop: ``<source>_<frame:06d>_<face>.png``, safe for any source name."""
    return f"{safe_name(source_stem)}_{frame_index:0{FRAME_DIGITS}d}_{face_index}{suffix}"


def parse_crop_name(name: str) -> CropName | None:
    """The parts of a crop file name, or ``None`` when ``name`` is not one.

    The frame and face are the last two ``_`` fields, so a source stem that
    itself ends in digits is read back whole.
    """
    match = _CROP_NAME.fullmatch(name)
    if match is None:
        return None
    return CropName(match[1], int(match[2]), int(match[3]))


def is_crop_of(name: str, source_stem: str) -> bool:
    """Whether ``name`` is the name of a crop extract saves for the source of ``source_stem``."""
    parsed = parse_crop_name(name)
    return parsed is not None and parsed.source == safe_name(source_stem)
