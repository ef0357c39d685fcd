"""The never-touch-an-input rule: which paths a run may write, and which folders it may remove.

Every subcommand names its inputs and its outputs to :func:`guard_outputs`
before any work starts (before a model loads). An output is refused, with one
line naming both paths, when it

* **is** an input: the same path after resolving symbolic links, or the same
  file under another name (a hard link: same device and inode);
* **holds** an input: a folder output that an input lies inside (``-o .``,
  ``-o`` the folder of the video), which a rename or an ``--overwrite`` of
  the folder would take with it;
* **replaces a file inside an input folder**: an existing file anywhere under
  a folder that is an input (a photo of the folder being converted, a crop of
  the faces folder being scored against). New files and folders inside an
  input folder are allowed: they replace nothing.

``--overwrite`` replaces exactly the output. A folder output is replaced only
when faceswap made it: :func:`mark_folder` leaves a hidden marker listing the
files it wrote, and :func:`check_replaceable_folder` refuses a folder without
that marker, or with anything in it the marker does not list.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from faceswap.errors import OutputError

#: The hidden file that says faceswap made a folder, and which files it wrote there.
FOLDER_MARKER = ".faceswap-output"

PathLike = Path | str


def _same_file(first: Path, second: Path) -> bool:
    """Whether two existing paths name one file (hard links and symbolic links included)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    """Whether the resolved ``path`` lies strictly inside the resolved ``folder``."""
    return path != folder and path.is_relative_to(folder)


def overlap(output: PathLike, input_path: PathLike) -> str | None:
    """Why writing ``output`` could harm ``input_path``, in a few words; ``None`` when it cannot.

    ``input_path`` must exist (a missing input harms nothing; it fails on its own).
    """
    output, input_path = Path(output), Path(input_path)
    real_output, real_input = output.resolve(), input_path.resolve()
    if real_output == real_input or (output.exists() and _same_file(output, input_path)):
        return "is the input"
    if _inside(real_input, real_output):
        return "holds the input"
    if input_path.is_dir() and _inside(real_output, real_input) and output.exists() and not output.is_dir():
        return "would replace a file inside the input folder"
    return None


def guard_outputs(inputs: Iterable[PathLike | None], outputs: Iterable[PathLike | None]) -> None:
    """Refuse any output that is, holds, or would replace a file inside, one of the inputs.

    Parameters
    ----------
    inputs
        Every file and folder the run reads (``None`` and missing paths are skipped).
    outputs
        Every file and folder the run writes, renames or removes, existing or not.

    Raises
    ------
    OutputError
        One line naming the output, the input and how they overlap.
    """
    existing = [Path(path) for path in inputs if path is not None and Path(path).exists()]
    for output in outputs:
        if output is None:
            continue
        for input_path in existing:
            why = overlap(output, input_path)
            if why is not None:
                raise OutputError(
                    f"output {output} {why} {input_path}; faceswap never writes over its inputs: "
                    "choose another output"
                )


def mark_folder(folder: PathLike, files: Iterable[str], command: str) -> None:
    """Record in ``folder`` that faceswap ``command`` made it and wrote ``files`` there."""
    document = {"made_by": f"faceswap {command}", "files": sorted(files)}
    (Path(folder) / FOLDER_MARKER).write_text(json.dumps(document, ensure_ascii=False) + "\n", "utf-8")


def _marked_files(folder: Path) -> set[str] | None:
    """The files the marker of ``folder`` lists, or ``None`` without a readable marker."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        document = json.loads((folder / FOLDER_MARKER).read_text("utf-8"))
        files = document.get("files")
        if isinstance(files, list) and all(isinstance(name, str) for name in files):
            return set(files)
    return None


def check_replaceable_folder(folder: PathLike) -> None:
    """Refuse to replace ``folder`` unless it is absent, empty, or holds only what faceswap wrote there.

    Raises
    ------
    OutputError
        When ``folder`` is a file, has no faceswap marker, or holds a file the
        marker does not list (named in the message).
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputError(f"output {folder} is a file, expected a folder")
    entries = {entry.name for entry in folder.iterdir()}
    if not entries:
        return
    marked = _marked_files(folder)
    if marked is None:
        raise OutputError(
            f"output {folder} already holds files that faceswap did not make; choose another output "
            "(--overwrite replaces only a folder faceswap made)"
        )
    others = sorted(entries - marked - {FOLDER_MARKER})
    if others:
        raise OutputError(
            f"output {folder} holds {others[0]}, which faceswap did not write there; move it or choose "
            "another output (--overwrite replaces only what faceswap made)"
        )
