"""A still image checked from its file before any pixel is decoded: its size, and a PNG's integrity.

Two libraries would otherwise speak first, on stderr, before faceswap's one
line: Pillow warns (``DecompressionBombWarning``) about images over 89
megapixels, and libpng, under OpenCV's decoder, prints ``libpng error: ...``
for a truncated or damaged PNG. faceswap refuses frames over
:data:`faceswap.media.probe.MAX_FRAME_PIXELS` itself, and a PNG's chunk
checksums and completeness are verified here (a tenth of the cost of decoding
it), so both reach the user as one line naming the file.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

from faceswap.errors import MediaError
from faceswap.media.probe import MAX_FRAME_PIXELS


def check_image(
    file: Path | str | bytes, what: str, check_size: Callable[[int, int], None]
) -> tuple[int, int]:
    """``(width, height)`` of the image in ``file`` (a path, or the file's bytes), from its header.

    Parameters
    ----------
    file
        The image file, or its content.
    what
        How messages name the image (its path).
    check_size
        Called with the width and height from the header, before the content
        is verified: it raises the caller's own error for a size it refuses,
        which then wins over any damage further on.

    Raises
    ------
    MediaError
        When it is not an image Pillow can identify, is a truncated or damaged
        PNG, or is far too large to be one faceswap reads.
    """
    from PIL import Image, UnidentifiedImageError

    source = io.BytesIO(file) if isinstance(file, bytes) else file
    # For the whole process, not in catch_warnings: crops are read in threads, and
    # catch_warnings swaps the global filter list, which is not safe across threads.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        header = Image.open(source)  # reads the header only
    except Image.DecompressionBombError:
        raise MediaError(
            f"{what}: the image is too large (at most {MAX_FRAME_PIXELS // 1_000_000} megapixels)"
        ) from None
    except (UnidentifiedImageError, OSError) as error:
        raise MediaError(f"{what}: not a readable image ({error.__class__.__name__})") from None
    with header:
        size = header.size
        check_size(*size)
        if header.format == "PNG":
            try:
                header.verify()  # every chunk's checksum, and the end of the file
            except Exception:  # Pillow raises OSError, SyntaxError, IndexError... on bad data
                raise MediaError(f"{what}: not a readable image (a damaged or truncated PNG)") from None
    return size
