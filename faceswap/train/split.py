"""Training and validation faces: hold back whole frames, never trained on.

A validation figure means something only if the network never saw those
faces. Faces are grouped by the frame they were cut from (``source`` and
``frame`` in each crop's metadata, see :mod:`faceswap.crops`), so every face
of a held-back frame is held back. The frames of a folder are ranked in
order (by source, then frame number) and every ``every``-th run of ``block``
consecutive frames goes to validation: with ``every=10, block=1`` frames
#9, #19, #29, ... of the extracted ones, whatever ``extract --every`` was.
Neighbouring frames of a video are near copies, so a ``block`` of several
frames makes validation measure what the model learnt, not what it
remembers of the frame beside.

A crop without metadata (an image from elsewhere) is a frame of its own,
ranked by file name among the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceswap.crops import CropInfo, read_crop_info
from faceswap.errors import InputError, OutputError
from faceswap.fileio import ensure_output_dir, folder_in_the_making, link_or_copy

#: Hold back one frame in this many by default.
DEFAULT_EVERY = 10


@dataclass(frozen=True)
class Split:
    """Face files, divided.

    Attributes
    ----------
    training, validation
        Disjoint lists of face files (each in the input's order); together all of them.
    """

    training: list[Path]
    validation: list[Path]


#: What groups the faces of one frame (see :func:`frame_key`).
FrameKey = tuple[str, int, str]


def frame_key(path: Path) -> FrameKey:
    """What groups faces of one frame: ``(source, frame, "")``, or ``(name, -1, name)`` without metadata."""
    try:
        info = read_crop_info(path)
    except InputError:
        info = None
    return frame_of(path, info)


def frame_of(path: Path, info: CropInfo | None) -> FrameKey:
    """:func:`frame_key` of a crop whose metadata (``None``: none) has been read already."""
    if info is None:
        return (path.name, -1, path.name)
    return (info.source, info.frame, "")


def check_split(every: int, block: int) -> None:
    """Refuse split settings that hold back nothing or everything.

    Raises
    ------
    InputError
        When ``every`` is below 2 or ``block`` below 1.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 2:
        raise InputError(f"--validation-every must be a whole number of at least 2, not {every!r}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise InputError(f"--validation-block must be a whole number of at least 1, not {block!r}")


def split_faces(files: Sequence[Path | str], every: int = DEFAULT_EVERY, block: int = 1) -> Split:
    """Divide face files into training and validation by the frame they come from.

    Parameters
    ----------
    files
        Face crops (from ``faceswap extract``).
    every
        One run of ``block`` frames in every ``every`` runs is held back.
    block
        Consecutive frames held back together.

    Raises
    ------
    InputError
        For invalid ``every`` or ``block``.
    """
    paths = [Path(file) for file in files]
    held = held_back_frames([frame_key(path) for path in paths], every, block)
    return Split(
        training=[path for path, out in zip(paths, held, strict=True) if not out],
        validation=[path for path, out in zip(paths, held, strict=True) if out],
    )


def held_back_frames(keys: Sequence[FrameKey], every: int, block: int = 1) -> list[bool]:
    """Which faces, by their frames' :func:`frame_key`, are held back (see :func:`split_faces`).

    Raises
    ------
    InputError
        For invalid ``every`` or ``block``.
    """
    check_split(every, block)
    ranks = {key: rank for rank, key in enumerate(sorted(set(keys)))}
    return [(ranks[key] // block) % every == every - 1 for key in keys]


def write_split(
    folder: Path | str,
    training_dir: Path | str,
    validation_dir: Path | str,
    every: int = DEFAULT_EVERY,
    block: int = 1,
) -> Split:
    """Split a faces folder into two new folders of hard links (copies where links cannot be made).

    The input folder is not touched. Each output folder must not exist yet,
    or be empty; it is filled under a hidden temporary name and renamed when
    complete. ``faceswap train`` then reads the training folder like any
    faces folder.

    Returns
    -------
    Split
        The files of the two new folders.

    Raises
    ------
    InputError
        When ``folder`` holds no faces or too few to split, or the settings are invalid.
    OutputError
        When an output folder holds files or cannot be written.
    """
    from faceswap.train.dataset import list_faces

    check_split(every, block)
    files = list_faces(folder, str(folder))
    split = split_faces(files, every, block)
    if not split.training or not split.validation:
        raise InputError(
            f"{folder}: {len(files)} faces are too few to hold back one frame in {every} "
            f"(runs of {block}) and keep some for training"
        )
    targets = (Path(training_dir), Path(validation_dir))
    for target in targets:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise OutputError(f"{target} already exists and is not an empty folder; the split makes new ones")
    written = Split([], [])
    for target, chosen, out in zip(
        targets, (split.training, split.validation), (written.training, written.validation), strict=True
    ):
        ensure_output_dir(target.parent)
        with folder_in_the_making(target) as temporary:
            for path in chosen:
                link_or_copy(path, temporary / path.name)
            if target.exists():
                target.rmdir()  # empty, checked above
            temporary.rename(target)
        out.extend(target / path.name for path in chosen)
    return written
