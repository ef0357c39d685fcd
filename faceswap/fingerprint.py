"""A cheap fingerprint of a file's content, to tell one video from another.

Frame count and frame size do not tell two clips apart (two exports of one
edit, two cameras of one shoot). The fingerprint is a BLAKE2b digest of the
file's size and of three samples of :data:`SAMPLE_BYTES` bytes at its start,
middle and end (the whole file when it is smaller than the three). It reads
3 MiB whatever the file's length (milliseconds for a two-hour video) and
identifies the file itself: a copy or a renamed file keeps it, while a
re-encode or a remux gets another one.

The text form is ``"sample-blake2b:<size in bytes>:<32 hex digits>"``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: Bytes read at each of the three places.
SAMPLE_BYTES = 1024 * 1024
#: Name of the method, the first field of a fingerprint.
METHOD = "sample-blake2b"
#: What a fingerprint of any method looks like (checked when one is read from a file).
PATTERN = re.compile(r"[a-z0-9-]{1,32}:[0-9]{1,20}:[0-9a-f]{32}", re.ASCII)


def file_fingerprint(path: Path | str) -> str:
    """The fingerprint of the file at ``path``.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        digest.update(size.to_bytes(8, "little"))
        if size <= 3 * SAMPLE_BYTES:
            offsets = [0]
            length = size
        else:
            offsets = [0, (size - SAMPLE_BYTES) // 2, size - SAMPLE_BYTES]
            length = SAMPLE_BYTES
        for offset in offsets:
            handle.seek(offset)
            digest.update(handle.read(length))
    return f"{METHOD}:{size}:{digest.hexdigest()}"


def short(fingerprint: str) -> str:
    """The first 8 hex digits, enough to tell two fingerprints apart in a message."""
    return fingerprint.rsplit(":", 1)[-1][:8]
