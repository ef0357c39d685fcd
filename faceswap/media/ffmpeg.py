"""Locate and run the ffmpeg binary.

faceswap uses the ffmpeg that ``imageio-ffmpeg`` installs with pip, so a fresh
``pip install`` is enough. A different binary can be named with the environment
variable ``FACESWAP_FFMPEG`` (or imageio-ffmpeg's own ``IMAGEIO_FFMPEG_EXE``).
ffprobe is not shipped, so media are probed with ffmpeg itself (see
:mod:`faceswap.media.probe`). ffmpeg is always run with an argument list,
never through a shell.

**File names are not URLs.** ffmpeg reads ``concat:a.mp4|b.mp4``,
``pipe:1``, ``data:...``, ``subfile,...`` and ``http://...`` as instructions,
so every path faceswap hands it goes through :func:`file_url` (``file:`` and
the absolute path, which ffmpeg opens as it is). A user's media file is opened
with :func:`input_args` (or :func:`input_options`): only the ``file``
protocol and only the container formats of :data:`INPUT_FORMATS`, so a file
whose *content* is a playlist, a concat script or an SDP description cannot
make ffmpeg read another file or the network either.

**One command builder.** Every ffmpeg command line faceswap runs (reader,
writers, prober) is put together here from small pieces: :func:`command` (the
binary and its fixed prefix), :data:`QUIET`, :func:`input_args` and
:func:`graph_args` (the arguments of an ffmpeg-python graph).
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import ffmpeg

from faceswap.errors import FaceswapError

#: Environment variable naming an ffmpeg binary to use instead of imageio-ffmpeg's.
FFMPEG_ENV = "FACESWAP_FFMPEG"

#: Demuxers a user's video may be read with (ffmpeg's names): the containers of real videos and gifs.
#: Left out on purpose: playlists and scripts that name other files or URLs (hls, dash, concat, imf,
#: sdp, rtsp), image sequences (image2) and raw streams guessed from content.
INPUT_FORMATS = (
    "mov",  # also mp4, m4v, 3gp
    "matroska",  # also webm
    "avi",
    "gif",
    "mpeg",
    "mpegts",
    "asf",  # wmv
    "flv",
    "ogg",
    "nut",
    "mxf",
    "ivf",
    "dv",
    "yuv4mpegpipe",
)

# Lines of ffmpeg's stderr that carry no information about what went wrong (the last two name
# the file as the URL faceswap made of it, which says less than the caller's message).
_NOISE_PREFIXES = (
    "Conversion failed",
    "Error opening input files",
    "Error opening output files",
    "Error opening input file ",
    "Error opening output file ",
)
_REFUSED_FORMAT = "Format not on whitelist"

#: What every command starts with after the binary: no banner, never read the terminal.
PREFIX = ("-hide_banner", "-nostdin")
#: Print errors only (progress and stream listings would fill the captured stderr).
QUIET = ("-loglevel", "error")


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


def command(*parts: Sequence[str]) -> list[str]:
    """The whole command line: faceswap's ffmpeg, :data:`PREFIX`, then ``parts`` in order."""
    return [ffmpeg_exe(), *PREFIX, *itertools.chain.from_iterable(parts)]


def graph_args(stream: object, *, overwrite: bool = True) -> list[str]:
    """The arguments (after the program name) of an ffmpeg-python graph ``stream``.

    ``overwrite`` adds ``-y``: faceswap writes only to temporary names of its own
    or to a pipe, so ffmpeg must never stop to ask.
    """
    return ffmpeg.compile(stream, cmd="ffmpeg", overwrite_output=overwrite)[1:]


def file_url(path: Path | str) -> str:
    """The name to give ffmpeg for the local file ``path``: ``file:`` and the absolute path.

    ffmpeg's file protocol takes the rest of the string as it is (no
    percent-decoding), so any file name, ``concat:b.mp4`` or ``pipe:x.mp4``
    included, is read as the file it names.
    """
    return f"file:{Path(path).absolute()}"


def input_options() -> dict[str, str]:
    """ffmpeg input options that confine reading a user's media file to itself (ffmpeg-python form)."""
    return {"protocol_whitelist": "file", "format_whitelist": ",".join(INPUT_FORMATS)}


def input_args(path: Path | str) -> list[str]:
    """``-i`` and the options of :func:`input_options` for the user's media file ``path``."""
    options = [item for key, value in input_options().items() for item in (f"-{key}", value)]
    return [*options, "-i", file_url(path)]


def summarize_stderr(stderr: str | bytes, limit: int = 160) -> str:
    """Pick the most telling line of ffmpeg's stderr for a one-line error message."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any(_REFUSED_FORMAT in line for line in lines):
        return "a playlist, script or other format that names other files, which faceswap does not read"
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
    return subprocess.run(command(args), input=input_bytes, capture_output=True, timeout=timeout, check=False)
