"""The ffmpeg process of a writer: raw frames in on stdin, errors kept for a one-line message."""

from __future__ import annotations

import contextlib
import errno
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import numpy as np

from faceswap.errors import OutputError
from faceswap.fileio import describe_os_error
from faceswap.media.ffmpeg import QUIET, command, graph_args, run_ffmpeg, summarize_stderr


class Encoder:
    """An ffmpeg process reading raw RGB frames on stdin; stderr kept in a file for error messages."""

    def __init__(self, command: list[str], what: Path) -> None:
        self.what = what
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish() or kill()
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errors
            )
        except OSError as error:
            self._errors.close()
            raise OutputError(f"cannot start ffmpeg to write {what}: {error.strerror or error}") from error

    def write(self, image: np.ndarray) -> None:
        """Send one frame's bytes; ffmpeg having stopped is an :class:`OutputError`."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(memoryview(np.ascontiguousarray(image)).cast("B"))
        except (BrokenPipeError, OSError):
            code = self.process.wait()
            raise ffmpeg_failed(self.what, code, self.stderr(), "stopped") from None

    def stderr(self) -> str:
        """The most telling line of what ffmpeg printed so far."""
        self._errors.seek(0)
        return summarize_stderr(self._errors.read())

    def finish(self) -> None:
        """Close stdin and wait; a non-zero exit is an :class:`OutputError`."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.process.stdin.close()
        code = self.process.wait()
        try:
            if code != 0:
                raise ffmpeg_failed(self.what, code, self.stderr())
        finally:
            self._errors.close()

    def kill(self) -> None:
        """Stop ffmpeg at once (on abort) and release its pipe and error file."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        self.process.wait()
        self._errors.close()


def ffmpeg_failed(what: Path, code: int | None, summary: str, verb: str = "failed") -> OutputError:
    """The one-line error for an ffmpeg that could not write ``what``.

    A full disk or the file size limit (RLIMIT_FSIZE, which kills ffmpeg with
    SIGXFSZ before it can say anything) are named as such.
    """
    if code == -signal.SIGXFSZ or "File too large" in summary:
        return OutputError(describe_os_error(OSError(errno.EFBIG, "File too large"), what))
    if "No space left" in summary:
        return OutputError(describe_os_error(OSError(errno.ENOSPC, "No space left on device"), what))
    return OutputError(f"cannot write {what}: ffmpeg {verb} ({summary})")


def quiet_args(stream: object) -> list[str]:
    """The arguments of an ffmpeg-python graph (after the program name), quiet but for errors."""
    return [*QUIET, *graph_args(stream)]


def graph_command(stream: object) -> list[str]:
    """The whole command line of an ffmpeg-python graph, on faceswap's ffmpeg."""
    return command(quiet_args(stream))


def run_graph(stream: object, what: Path) -> subprocess.CompletedProcess[bytes]:
    """Run an ffmpeg-python graph to completion; a failure is an :class:`OutputError`."""
    result = run_ffmpeg(quiet_args(stream))
    if result.returncode != 0:
        raise ffmpeg_failed(what, result.returncode, summarize_stderr(result.stderr))
    return result
