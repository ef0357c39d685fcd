"""One run per output: an exclusive lock held on each output for the whole run.

:func:`lock_outputs` takes, for every output, a hidden lock file beside it
(``.<name>.faceswap-lock``) and holds an exclusive ``flock`` on it until the
run ends; the file names the owner (pid and command), so that a second run on
the same output stops at once with one line naming the first. The kernel drops
the lock when its process dies, however it dies (SIGKILL, power cut aside), so
a lock is never stale; the file is removed when the run ends.

Written on ``fcntl`` rather than the ``filelock`` package: the owner's pid must
be written into the locked file and read by the refused run, and the file
removed on release without a race (a run that opened the file just before it
was unlinked checks, once it holds the lock, that the path still names the file
it locked, and otherwise starts over); ``filelock`` offers neither, and
faceswap runs on POSIX systems only (it needs ffmpeg pipes and a fork server).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from faceswap.errors import OutputError
from faceswap.fileio import describe_os_error, ensure_output_dir

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".faceswap-lock"
#: Errors of a file system that has no locks (some network and FUSE mounts).
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def lock_path(output: Path | str) -> Path:
    """The lock file of ``output``: hidden, beside it (one per output, whatever the spelling of its path)."""
    output = Path(output).absolute()
    real = output.parent.resolve() / output.name
    return real.parent / f".{real.name or 'output'}{LOCK_SUFFIX}"


def _owner(fd: int) -> str:
    """What the lock file says about its owner (one line), or ``unknown``."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
        if text:
            return " ".join(text.split())
    return "pid unknown"


def _describe_self(command: str) -> bytes:
    return f"pid {os.getpid()} (faceswap {command})\n".encode()


class OutputLock:
    """An exclusive lock on one output, taken at once or refused (see the module docstring)."""

    def __init__(self, output: Path | str, command: str) -> None:
        self.output = Path(output)
        self.path = lock_path(self.output)
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises
        ------
        OutputError
            When another run holds it (naming that run's pid and command), or
            the lock file cannot be written.
        """
        ensure_output_dir(self.path.parent)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise OutputError(describe_os_error(error, self.path)) from error
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(fd)
                os.close(fd)
                raise OutputError(
                    f"output {self.output} is in use by another faceswap run ({owner}); wait for it to "
                    "end or choose another output"
                ) from None
            except OSError as error:
                os.close(fd)
                if error.errno not in _NO_LOCKS:
                    raise OutputError(describe_os_error(error, self.path)) from error
                log.info("%s: no locks on this file system; a second run would not be stopped", self.output)
                return
            if self._still_named(fd):
                break
            os.close(fd)  # a run releasing the lock removed the file after we opened it: again
        os.ftruncate(fd, 0)
        os.pwrite(fd, _describe_self(self.command), 0)
        self._fd = fd

    def _still_named(self, fd: int) -> bool:
        try:
            named, held = os.stat(self.path), os.fstat(fd)
        except OSError:
            return False
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        """Remove the lock file and drop the lock (removed first, so a waiting run starts over)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def lock_outputs(outputs: Iterable[Path | str | None], command: str) -> Iterator[None]:
    """Hold an exclusive lock on every output for the block; refuse at once if another run holds one.

    Raises
    ------
    OutputError
        Naming the output and the other run's pid; locks already taken are released.
    """
    with contextlib.ExitStack() as stack:
        for output in outputs:
            if output is not None:
                stack.enter_context(OutputLock(output, command))
        yield
