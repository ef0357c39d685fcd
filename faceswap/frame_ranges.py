"""``--frames``: which frames of a video to convert, and which to find faces in around them.

Frame numbers are 0-based and ranges inclusive (``"10-50,90-120"``, ``"7"``,
``"300-"``). Faces are found a little beyond each range
(:data:`SMOOTH_CONTEXT`), so that smoothing has context at its ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from faceswap.errors import InputError

log = logging.getLogger(__name__)

#: Frames detected before and after each ``--frames`` range, so smoothing has context there.
SMOOTH_CONTEXT = 15

_RANGE = re.compile(r"^(\d+)(?:-(\d*))?$")


def parse_frame_ranges(text: str, frame_count: int) -> list[range]:
    """Parse ``--frames`` (``"10-50,90-120"``, ``"7"``, ``"300-"``): inclusive, 0-based frame numbers.

    Ranges reaching past the last frame are cut there, with a warning.

    Raises
    ------
    InputError
        For malformed text, a reversed range, or a range starting past the last frame.
    """
    ranges = []
    for part in text.replace(" ", "").split(","):
        match = _RANGE.match(part)
        if not match:
            raise InputError(f"--frames: {part!r} is not a frame number or range such as 10-50")
        start = int(match.group(1))
        end = frame_count - 1 if match.group(2) == "" else int(match.group(2) or start)
        if end < start:
            raise InputError(f"--frames: range {part} ends before it starts")
        if start >= frame_count:
            raise InputError(f"--frames: {part} starts after the last frame ({frame_count - 1})")
        if end >= frame_count:
            log.warning("--frames: %s cut at the last frame (%d)", part, frame_count - 1)
            end = frame_count - 1
        ranges.append(range(start, end + 1))
    return ranges


def detection_windows(ranges: Sequence[range] | None, frame_count: int) -> list[range]:
    """Frames to detect faces in: the selected ranges widened by :data:`SMOOTH_CONTEXT`, merged."""
    if ranges is None:
        return [range(frame_count)]
    spans = sorted(
        (max(0, r.start - SMOOTH_CONTEXT), min(frame_count, r.stop + SMOOTH_CONTEXT)) for r in ranges
    )
    merged = [list(spans[0])]
    for start, stop in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [range(start, stop) for start, stop in merged]
