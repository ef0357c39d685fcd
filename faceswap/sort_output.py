"""Where ``faceswap sort`` puts its result: a new output folder, or the faces folder rearranged.

An output folder is built under a temporary name (hard links, or copies) with
``sort.csv`` and renamed into place when complete; ``--in-place`` moves each
crop into its group's subfolder with one rename, so an interrupted run leaves
every crop whole and running the sort again finishes it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from faceswap.errors import InputError, OutputError
from faceswap.fileio import folder_in_the_making, link_or_copy, temporary_path, write_bytes_atomic
from faceswap.paths import check_replaceable_folder, mark_folder
from faceswap.sort_order import SortedFace

ORDER_FILE = "sort.csv"


def default_output(folder: Path) -> Path:
    """``<faces folder>_sorted`` beside the faces folder (``.`` is named after the current folder)."""
    if not folder.name or folder.name == "..":
        folder = folder.resolve()
    return folder.parent / f"{folder.name}_sorted"


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both resolved, or both as given)."""
    return path == folder or folder in path.parents


def check_output_folder(output: Path, folder: Path, *, overwrite: bool) -> None:
    """Refuse an output folder that overlaps the faces folder, or exists without ``overwrite``.

    Raises
    ------
    OutputError
        When the output is the faces folder, lies inside it or holds it, is a
        file, or is a folder with files in it and ``overwrite`` is false.
    """
    resolved, source = output.resolve(), folder.resolve()
    if is_inside(resolved, source) or is_inside(source, resolved):
        raise OutputError(
            f"output {output} overlaps the faces folder {folder}: choose a folder outside it "
            "(or --in-place to rearrange the faces folder itself)"
        )
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise OutputError(f"output {output} already exists; pass --overwrite to replace it")
        check_replaceable_folder(output)
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot create output {output}: folder {parent} does not exist")


def _order_csv(faces: Sequence[SortedFace]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["rank", "group", "name", "score", "label"])
    for rank, face in enumerate(faces, start=1):
        writer.writerow([rank, face.group, face.path.name, f"{face.score:.6g}", face.label])
    return text.getvalue().encode("utf-8")


def check_unique_names(faces: Sequence[SortedFace]) -> None:
    """Refuse two crops of one name in one group: every crop keeps its name in the output."""
    seen: dict[tuple[str, str], Path] = {}
    for face in faces:
        key = (face.group, face.path.name)
        if key in seen:
            raise InputError(
                f"two crops named {face.path.name} ({seen[key]} and {face.path}): every crop keeps its "
                "name, so rename one first"
            )
        seen[key] = face.path


def write_output(faces: Sequence[SortedFace], output: Path, *, copy: bool, overwrite: bool) -> int:
    """Build the output folder under a temporary name and rename it into place; returns links made.

    Raises
    ------
    OutputError
        When a file cannot be linked, copied or written (nothing is left behind).
    """
    linked = 0
    with folder_in_the_making(output) as temp:
        for face in faces:
            folder = temp / face.group if face.group else temp
            folder.mkdir(exist_ok=True)
            linked += link_or_copy(face.path, folder / face.path.name, copy=copy)
        write_bytes_atomic(temp / ORDER_FILE, _order_csv(faces), durable=False)
        mark_folder(temp, [entry.name for entry in temp.iterdir()], "sort")
        if output.exists():
            if not overwrite:
                raise OutputError(f"output {output} already exists; pass --overwrite to replace it")
            check_replaceable_folder(output)  # again: it may have changed since the run began
            old = temporary_path(output)
            os.replace(output, old)
            os.replace(temp, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, output)
    return linked


def rearrange_in_place(faces: Sequence[SortedFace], folder: Path) -> int:
    """Move each crop into its group's subfolder of ``folder``; returns how many moved.

    Every target is checked before anything moves (an existing other file
    stops the run); each move is one rename, so an interrupted run leaves
    every crop whole, in its old place or its new one, and running the sort
    again finishes it. Subfolders left empty are removed.
    """
    moves = []
    for face in faces:
        target = (folder / face.group / face.path.name) if face.group else folder / face.path.name
        if target == face.path:
            continue
        if target.exists():
            raise OutputError(f"cannot move {face.path} to {target}: a file of that name is there")
        moves.append((face.path, target))
    old_folders = {source.parent for source, _ in moves}
    for source, target in moves:
        try:
            target.parent.mkdir(exist_ok=True)
            os.rename(source, target)
        except OSError as error:
            raise OutputError(f"cannot move {source} to {target}: {error.strerror or error}") from error
    for old in sorted(old_folders, key=lambda path: len(path.parts), reverse=True):
        if old != folder and is_inside(old, folder):
            with contextlib.suppress(OSError):
                old.rmdir()  # only when empty
    write_bytes_atomic(folder / ORDER_FILE, _order_csv(moved_to(faces, folder)), durable=False)
    return len(moves)


def moved_to(faces: Sequence[SortedFace], folder: Path) -> list[SortedFace]:
    """``faces`` as they lie once placed in their groups' subfolders of ``folder``."""
    return [
        SortedFace(
            (folder / f.group / f.path.name) if f.group else folder / f.path.name, f.group, f.score, f.label
        )
        for f in faces
    ]
