"""Locate and run the ffmpeg binary.

faceswap uses the ffmpeg that ``imageio-ffmpeg`` installs with pip, so a fresh
``pip install`` is enough. A different binary can be named with the environment
variable ``FACESWAP_FFMPEG`` (or imageio-ffmpeg's own ``IMAGEIO_FFMPEG_EXE``).
ffprobe is not shipped, so media are probed with ffmpeg itself (see
:mod:`faceswap.media.probe`). ffmpeg is always run with an argument list,
never through a shell.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence

from faceswap.errors import FaceswapError

#: Environment variable naming an ffmpeg binary to use instead of imageio-ffmpeg's.
FFMPEG_ENV = "FACESWAP_FFMPEG"

# Lines of ffmpeg's stderr that carry no information about what went wrong.
_NOISE_PREFIXES = ("Conversion failed", "Error opening input files", "Error opening output files")


@functools.cache
def ffmpeg_exe() -> str:
    """Return the path of the ffmpeg binary to run.

    Raises
    ------
    FaceswapError
        When ``FACESWAP_FFMPEG`` names no executable, or no ffmpeg can be found.
    """
    configured = os.environ.get(FFMPEG_ENV)
    if configured:
        found = shutil.which(configured)
        if not found:
            raise FaceswapError(f"{FFMPEG_ENV}={configured} is not an executable ffmpeg")
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as error:
        found = shutil.which("ffmpeg")
        if found:
            return found
        raise FaceswapError(f"no ffmpeg binary found ({error}); reinstall imageio-ffmpeg") from error


def summarize_stderr(stderr: str | bytes, limit: int = 160) -> str:
    """Pick the most telling line of ffmpeg's stderr for a one-line error message."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_NOISE_PREFIXES)]
    if not useful:
        return "ffmpeg failed without a message"
    # ffmpeg prefixes lines with "[component @ 0x...]"; keep the message only.
    line = useful[-1]
    if line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    return line[:limit]


def run_ffmpeg(
    args: Sequence[str], *, input_bytes: bytes | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with ``args`` (without the program name) and capture its output.

    The call never raises for a non-zero exit status: callers judge the result
    (``returncode``, ``stderr``) because what counts as failure differs.
    """
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    return subprocess.run(command, input=input_bytes, capture_output=True, timeout=timeout, check=False)
