"""Safe file output: atomic writes, sanitised names, clear errors on a full disk.

Every file faceswap produces goes through :func:`atomic_write` (or a helper
built on it): the data is written to a hidden temporary file in the same
folder, flushed to disk, and renamed over the final name only when complete.
A crash, a SIGKILL or a full disk therefore never leaves a half-written file
under a final name, and never damages the previous version of that file.

A temporary's name carries the pid of the process writing it, so that the
clean-up of what a killed run left (:func:`remove_stale_temporaries`) removes
only temporaries whose writer is gone, never those of a run still going.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from faceswap.errors import OutputError

log = logging.getLogger(__name__)

#: Temporary files start with this prefix, so they are hidden and never match a
#: final name's glob (``*.png``, ``*.json``) while they are being written.
TEMP_PREFIX = ".faceswap-tmp-"

#: What follows :data:`TEMP_PREFIX`: ``p<pid>-`` (absent in names of faceswap before 0.9), 8 hex digits.
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(?:p(\d+)-)?[0-9a-f]{8}-(.*)", re.DOTALL)
#: Characters a name keeps besides letters, digits and combining marks (of any script).
_KEPT_PUNCTUATION = frozenset("._-")
#: Longest name :func:`safe_name` makes, in UTF-8 bytes (two of them, a crop suffix or
#: ``_swapped.mp4`` still fit in the 255 bytes most file systems allow).
MAX_NAME_BYTES = 100


def temporary_path(final: Path) -> Path:
    """Return a unique hidden temporary name beside ``final``, owned by this process.

    The suffix of ``final`` is kept last so tools that choose a format from the
    file name (ffmpeg, OpenCV) still see it; the pid lets a clean-up tell a
    live run's temporary from a dead one's (:func:`temporary_owner_alive`).
    """
    final = Path(final) if Path(final).name else Path(final).absolute()  # "." has no name of its own
    return final.with_name(f"{TEMP_PREFIX}p{os.getpid()}-{secrets.token_hex(4)}-{final.name}")


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and waits to be reaped: it answers signals, but writes nothing.

    An orphan stays so in a container whose init never reaps. Linux only; elsewhere ``False``.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def temporary_owner_alive(name: str) -> bool:
    """Whether the process that made the temporary ``name`` still runs (a name without a pid: no)."""
    match = _TEMP_NAME.fullmatch(name)
    return match is not None and match.group(1) is not None and process_alive(int(match.group(1)))


def describe_os_error(error: OSError, path: Path | str) -> str:
    """Turn an ``OSError`` from writing ``path`` into one readable line."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full while writing {path}; the previous version (if any) is untouched"
    if error.errno == errno.EFBIG:
        return f"file size limit reached while writing {path}; the previous version (if any) is untouched"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: permission denied"
    return f"cannot write {path}: {error.strerror or error}"


def fsync_path(path: Path) -> None:
    """Flush what was written to the file or folder ``path`` to disk (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_directory(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (best effort; not all systems allow it)."""
    fsync_path(folder)


def commit(temp: Path, final: Path, *, durable: bool = True) -> None:
    """Rename a finished temporary file over ``final`` (atomic on POSIX).

    With ``durable``, the temporary's data reaches the disk before the rename
    and the rename after it, so a power cut leaves the old file or the whole
    new one, never a renamed file whose data was still in the page cache
    (files written by Keras or ffmpeg were never synced by their writers).
    """
    if durable:
        fsync_path(temp)
    try:
        os.replace(temp, final)
    except OSError as error:
        remove_quietly(temp)
        raise OutputError(describe_os_error(error, final)) from error
    if durable:
        fsync_directory(Path(final).parent)


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists, ignoring every error."""
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def folder_in_the_making(final: Path) -> Iterator[Path]:
    """A new folder under a temporary name beside ``final``, for the block to fill and rename to ``final``.

    Raises
    ------
    OutputError
        When the block (or making the folder) fails with an ``OSError``. On any
        failure the temporary folder and what it holds are removed.
    """
    temp = temporary_path(final)
    try:
        temp.mkdir()
        yield temp
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        raise OutputError(describe_os_error(error, final)) from error
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_write(path: Path | str, mode: str = "wb", *, durable: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path
        Final file name. Its folder must exist.
    mode
        ``"wb"`` or ``"w"`` (text is written as UTF-8).
    durable
        ``fsync`` the data and the folder before returning. Turn it off only for
        many small files whose loss in a power cut is acceptable (face crops),
        never for state that a resume depends on.

    Raises
    ------
    OutputError
        When the data cannot be written (full disk, permissions, size limit);
        the temporary file is removed and ``path`` keeps its previous content.
    """
    final = Path(path)
    temp = temporary_path(final)
    encoding = None if "b" in mode else "utf-8"
    try:
        handle = open(temp, mode, encoding=encoding)  # noqa: SIM115 - closed below, on every path
    except OSError as error:
        raise OutputError(describe_os_error(error, final)) from error
    try:
        with handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
    except OSError as error:
        remove_quietly(temp)
        raise OutputError(describe_os_error(error, final)) from error
    except BaseException:
        remove_quietly(temp)
        raise
    commit(temp, final, durable=durable)


def write_bytes_atomic(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb", durable=durable) as handle:
        handle.write(data)


def write_json_atomic(path: Path | str, document: Any, *, indent: int | None = None) -> None:
    """Write ``document`` as UTF-8 JSON to ``path`` atomically and durably.

    ``NaN`` and infinities are refused: they are not JSON and would make the file
    unreadable by other tools.
    """
    text = json.dumps(document, indent=indent, allow_nan=False, ensure_ascii=False)
    with atomic_write(path, "w") as handle:
        handle.write(text)
        handle.write("\n")


def _kept(char: str) -> bool:
    return char in _KEPT_PUNCTUATION or unicodedata.category(char)[0] in "LNM"


def safe_name(text: str, *, max_length: int = 80) -> str:
    """Make ``text`` usable as one file-name component, in any script.

    Letters, digits and combining marks of every script are kept (in NFC, so
    a name typed on macOS and one typed elsewhere agree), with ``.``, ``_`` and
    ``-``. Each run of anything else (path separators, control characters,
    spaces, punctuation that some file systems refuse) becomes one ``_``;
    leading and trailing dots, dashes and underscores are removed, so the name
    is neither hidden, nor relative, nor taken for an option. At most
    ``max_length`` characters and :data:`MAX_NAME_BYTES` bytes; never empty.
    """
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join(char if _kept(char) else "\0" for char in text)
    cleaned = re.sub("\0+", "_", cleaned).strip("._-")[:max_length]
    while len(cleaned.encode("utf-8")) > MAX_NAME_BYTES:
        cleaned = cleaned[:-1]
    return cleaned.rstrip("._-") or "unnamed"


def is_safe_name(text: str) -> bool:
    """Whether ``text`` is a plain file name of the kind faceswap makes (what extract writes, it reads).

    Letters, digits and marks of any script (NFC) and ``._-``, not starting
    with a dot or a dash, at most 255 bytes.
    """
    return (
        0 < len(text.encode("utf-8")) <= 255
        and all(map(_kept, text))
        and text[0] not in ".-"
        and unicodedata.normalize("NFC", text) == text
    )


def unique_safe_names(texts: Iterable[str], *, max_length: int = 80) -> list[str]:
    """:func:`safe_name` of each of ``texts``, made unique: no two sources share an output name.

    A name already taken (compared case-insensitively, as macOS and Windows
    file systems compare them) gets ``_2``, ``_3``, ... and a log line says so.
    """
    taken: set[str] = set()
    names = []
    for text in texts:
        base = safe_name(text, max_length=max_length)
        name, number = base, 1
        while name.casefold() in taken:
            number += 1
            name = f"{base}_{number}"
        if name != base:
            log.info("%r and an earlier name both make %r: writing %r instead", text, base, name)
        taken.add(name.casefold())
        names.append(name)
    return names


def ensure_output_dir(folder: Path | str) -> Path:
    """Create ``folder`` (and parents) and check that it is writable.

    Raises
    ------
    OutputError
        When the folder cannot be created, is a file, or is not writable.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create output folder {folder}: {error.strerror or error}") from error
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=TEMP_PREFIX):
            pass
    except OSError as error:
        raise OutputError(describe_os_error(error, folder)) from error
    return folder


def check_output_file(path: Path | str, *, overwrite: bool) -> Path:
    """Check that an output file may be written: folder writable, no clobbering.

    Raises
    ------
    OutputError
        When ``path`` exists (and ``overwrite`` is false), is a folder, or its
        folder cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output {path} is a folder, expected a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists; pass --overwrite to replace it")
    ensure_output_dir(path.parent if str(path.parent) else Path("."))
    return path


def remove_stale_temporaries(folder: Path | str) -> int:
    """Delete temporary files that an interrupted run left in ``folder``.

    Returns the number of files removed. Only names made by
    :func:`temporary_path` are touched, and only those whose writer is gone.
    """
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for stale in folder.glob(f"{TEMP_PREFIX}*"):
        if stale.is_file() and not temporary_owner_alive(stale.name):
            remove_quietly(stale)
            removed += 1
    return removed


def remove_stale_temporaries_of(final: Path | str) -> int:
    """Delete what a killed writer of ``final`` left: its temporaries, files or folders.

    Matches the names :func:`temporary_path` gives ``final`` and its siblings
    with another suffix (a gif writer's ``.mkv`` and palette ``.png``), and
    nothing else in the folder, so other outputs' temporaries are left alone;
    those of a writer still running are kept too. Returns the number removed.
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    own = re.escape(TEMP_PREFIX) + r"(?:p\d+-)?[0-9a-f]{8}-" + re.escape(final.stem)
    pattern = re.compile(own + r"(\.[A-Za-z0-9]+)?")
    removed = 0
    with contextlib.suppress(OSError):
        for stale in folder.iterdir():
            if not pattern.fullmatch(stale.name) or temporary_owner_alive(stale.name):
                continue
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                remove_quietly(stale)
            removed += 1
    return removed


def link_or_copy(source: Path, target: Path, *, copy: bool = False) -> bool:
    """Hard-link ``source`` as ``target``, or copy it where a link is not possible; True if linked.

    A hard link costs no space and keeps the crop's bytes; it fails across
    file systems and where links are not allowed, and then a copy is made.
    ``copy`` asks for a copy straight away.
    """
    if not copy:
        try:
            os.link(source, target)
            return True
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
    shutil.copy2(source, target)
    return False
