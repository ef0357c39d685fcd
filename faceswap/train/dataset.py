"""Training faces: the two folders of aligned faces, checked, read and stored small in memory.

:func:`load_faces` reads one side's folder of crops (as written by
``faceswap extract``), checks it, and keeps every face in memory small: the
model's region (the square of its centering, :func:`faceswap.align.face_region`)
at the model's input size (:data:`OVERSAMPLE`), with only as much
of the crop's padding around it as augmentation can reach
(:func:`faceswap.augment.source_extent`). For a 64-px model and 256-px crops
that is 102 x 102 px (the whole crop, shrunk), 31 KB a face: 20,000 faces per
side take 1.25 GB in all, where whole 256-px crops would take 7.9 GB. Threads decode the PNGs in parallel,
each shrinking its crop at once and writing it into one preallocated array, so
loading never holds more than the final array and one crop per thread.

Each crop's 68 landmarks (stored in the PNG by extract) give the outlines of
its masks (:mod:`faceswap.mask_geometry`): the convex hull of the face (with its
forehead, :func:`faceswap.landmarks.forehead`, unless the centering is
``legacy``), and the eyes and mouth. A crop without landmarks (an image from
elsewhere) gets the mean face's shape, with a warning. Batches are made from
the stored faces by :mod:`faceswap.train.batches`.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from faceswap.align import CENTERINGS, CROP_PADDING, LEGACY, MEAN_FACE, face_region
from faceswap.augment import AugmentConfig, source_extent
from faceswap.crops import list_crop_files, read_crop
from faceswap.errors import InputError
from faceswap.file_types import IMAGE_SUFFIXES
from faceswap.landmarks import INNER
from faceswap.mask_geometry import mask_outline
from faceswap.train.split import FrameKey, frame_of

log = logging.getLogger(__name__)

#: Below this many faces on a side, training works but the model generalises poorly.
FEW_FACES = 100
#: Stored faces hold the face region at this many times the model's input size (at most: crops
#: smaller than that are kept at their own resolution). Augmentation then resamples at about 1:1.
OVERSAMPLE = 1.0
#: Stored pixels beyond the reach of augmentation, for bilinear interpolation at the edge.
_EDGE = 2


@dataclass
class FaceSet:
    """One side's faces in memory.

    Attributes
    ----------
    name
        ``"A"`` or ``"B"``, for messages.
    folder
        Where the faces came from.
    files
        The crop files, sorted by name.
    images
        ``uint8`` RGB stored faces, ``(n, s, s, 3)``: the centre of each crop,
        shrunk (see the module's description).
    landmarks
        ``(n, 68, 2)`` float32 in continuous stored-face coordinates (the jaw
        may lie outside the stored square).
    outlines
        ``(n, OUTLINE_POINTS, 2)`` the mask polygons (:func:`faceswap.mask_geometry.mask_outline`), same
        coordinates.
    face_box
        ``(start, stop)`` of the model's region in the stored faces (continuous pixels).
    frames
        Each face's frame (:func:`faceswap.train.split.frame_key`), read with its metadata:
        what holding faces back for validation groups by.
    without_landmarks
        How many crops had no metadata and use the mean face's shape.
    """

    name: str
    folder: Path
    files: list[Path]
    images: np.ndarray
    landmarks: np.ndarray
    outlines: np.ndarray
    face_box: tuple[float, float]
    frames: list[FrameKey]
    without_landmarks: int = 0

    def __len__(self) -> int:
        return len(self.files)

    @property
    def nbytes(self) -> int:
        """Memory the faces take (images, landmarks and outlines)."""
        return self.images.nbytes + self.landmarks.nbytes + self.outlines.nbytes

    def subset(self, indices: Sequence[int]) -> FaceSet:
        """The faces at ``indices`` (in that order), as a face set of their own (arrays copied)."""
        chosen = np.asarray(indices, np.int64)
        return replace(
            self,
            files=[self.files[index] for index in chosen],
            images=self.images[chosen],
            landmarks=self.landmarks[chosen],
            outlines=self.outlines[chosen],
            frames=[self.frames[index] for index in chosen],
        )


def list_faces(folder: Path | str, name: str, *, whole_tree: bool = False) -> list[Path]:
    """Face image files in ``folder`` (hidden files skipped), sorted.

    Parameters
    ----------
    folder
        A folder of aligned faces.
    name
        ``"A"`` or ``"B"`` (for messages).
    whole_tree
        Also the faces in its subfolders (:func:`faceswap.crops.list_crop_files`), as pre-training
        on many people wants: ``faceswap extract`` makes one subfolder per video of a folder of
        videos. A side of a pair takes only the folder's own files: subfolders there may be
        ``faceswap sort``'s groups of different people.

    Raises
    ------
    InputError
        When the folder is missing, is a file, or holds no face images (with the subfolders that
        do, when some do).
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"faces {name}: no such folder {folder}")
    if not folder.is_dir():
        raise InputError(f"faces {name}: {folder} is a file, expected a folder of aligned faces")
    if whole_tree:
        files = list_crop_files(folder)
    else:
        files = sorted(
            path
            for path in folder.iterdir()
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()
        )
    if not files:
        nested = sorted({path.parent.relative_to(folder).parts[0] for path in list_crop_files(folder)})
        if nested:
            shown = ", ".join(nested[:3]) + (", ..." if len(nested) > 3 else "")
            raise InputError(
                f"faces {name}: {folder} holds no face images itself, only in its subfolders ({shown}): "
                "give the subfolder of the one person to train on"
            )
        raise InputError(
            f"faces {name}: {folder} holds no face images (.png/.jpg); run faceswap extract to make them"
        )
    return files


def check_two_sides(faces_a: Path | str, faces_b: Path | str) -> None:
    """Refuse one folder for both sides (also through a link): the model would learn no swap.

    Raises
    ------
    InputError
        When ``faces_a`` and ``faces_b`` are the same folder.
    """
    if os.path.samefile(faces_a, faces_b):
        raise InputError(
            f"faces A ({faces_a}) and faces B ({faces_b}) are one folder: a model trained on one "
            "person for both sides learns no swap; give each side its own person's faces"
        )


def _mean_face_landmarks(size: int, padding: float) -> np.ndarray:
    """68 points (index coordinates of a ``size`` crop) from the mean face; the jaw repeats a brow point."""
    start, stop = face_region(size, padding)
    inner = MEAN_FACE * (stop - start) + start - 0.5
    return np.concatenate([np.repeat(inner[:1], INNER.start, axis=0), inner]).astype(np.float64)


@dataclass(frozen=True)
class _Layout:
    """Size and padding shared by a folder's crops, and how each is stored.

    A crop is shrunk as a whole to ``resized`` pixels (``cv2.INTER_AREA``),
    then its central ``stored`` x ``stored`` square is kept, starting at
    ``offset`` on both axes. The model's region is centred in every crop
    (:func:`faceswap.align.face_region`), so it is centred in the square too.
    """

    size: int
    padding: float
    resized: int
    stored: int
    centering: str

    @classmethod
    def of(cls, size: int, padding: float, input_size: int, extent: float, centering: str) -> _Layout:
        """The layout of ``size``-px crops with ``padding`` for a model of ``input_size`` and ``centering``.

        ``extent``: the side of the square augmentation reaches, in model-region sides.
        """
        start, stop = face_region(size, padding, centering)
        face_px = min(OVERSAMPLE * input_size, stop - start)
        resized = round(size * face_px / (stop - start))
        stored = min(resized, math.ceil(extent * face_px) + 2 * _EDGE)
        stored += (resized - stored) % 2  # the same margin on both sides
        return cls(size, round(padding, 4), resized, stored, centering)

    @property
    def scale(self) -> float:
        """Stored pixels per crop pixel (exact: ``cv2.resize`` scales coordinates by it)."""
        return self.resized / self.size

    @property
    def offset(self) -> int:
        """First resized pixel (both axes) of the stored square."""
        return (self.resized - self.stored) // 2

    @property
    def face_box(self) -> tuple[float, float]:
        start, stop = face_region(self.size, self.padding, self.centering)
        return start * self.scale - self.offset, stop * self.scale - self.offset

    def store(self, image: np.ndarray, out: np.ndarray) -> None:
        """Shrink a crop and write its stored square into ``out``."""
        resized = cv2.resize(image, (self.resized, self.resized), interpolation=cv2.INTER_AREA)
        end = self.offset + self.stored
        out[...] = resized[self.offset : end, self.offset : end]

    def points(self, landmarks: np.ndarray) -> np.ndarray:
        """Crop pixel-index coordinates → continuous stored-face coordinates."""
        return (landmarks + 0.5) * self.scale - self.offset


@dataclass(frozen=True)
class _Crop:
    """What reading one crop found: its layout and landmarks (its pixels went into the face set)."""

    path: Path
    layout: _Layout
    landmarks: np.ndarray | None = None  # continuous stored-face coordinates; None: not stored
    measured: bool = True  # False: no metadata, the mean face stands in
    frame: FrameKey | None = None  # the frame it was cut from (see faceswap.train.split.frame_key)


def _read_one(
    path: Path,
    input_size: int,
    extent: float,
    expected: _Layout | None,
    out: np.ndarray | None,
    centering: str,
) -> _Crop | str:
    """Read one crop and, when its layout is ``expected`` (or none is), store it into ``out``.

    Returns the crop's layout and landmarks, or why the file cannot be used.
    """
    try:
        image, info = read_crop(path)
    except InputError as error:
        return str(error)
    measured = info is not None and info.size == image.shape[0]
    padding = info.padding if measured else CROP_PADDING
    layout = _Layout.of(image.shape[0], padding, input_size, extent, centering)
    if expected is not None and layout != expected:
        return _Crop(path, layout)
    points = info.landmarks if measured else _mean_face_landmarks(layout.size, padding)
    if out is not None:
        layout.store(image, out)
    return _Crop(path, layout, layout.points(points), measured, frame_of(path, info))


def format_bytes(count: float) -> str:
    """``512 KB``, ``1.3 MB``, ``624 MB``, ``1.2 GB`` (powers of 1000; 2 significant digits or more)."""
    for unit in ("B", "KB", "MB"):
        if count < 999.5:
            return f"{count:.1f} {unit}" if count < 9.95 and unit != "B" else f"{count:.0f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def load_faces(
    folder: Path | str,
    name: str,
    input_size: int,
    augment: AugmentConfig | None = None,
    *,
    centering: str,
    workers: int | None = None,
    few_faces_warning: bool = True,
    whole_tree: bool = False,
) -> FaceSet:
    """Read, check and store one side's faces.

    Parameters
    ----------
    folder
        A folder of aligned faces from ``faceswap extract``.
    name
        ``"A"`` or ``"B"`` (for messages).
    input_size
        The model's input size: the stored faces hold the model's region at
        :data:`OVERSAMPLE` times this.
    augment
        The augmentation the faces are for (default: the default
        augmentation): it decides how much padding around the face region
        is kept (:func:`faceswap.augment.source_extent`).
    centering
        The model's centering (:data:`faceswap.align.CENTERINGS`): which
        square of each crop it sees. No default: faces cut for another
        centering than the model's are another crop of the face.
    workers
        Threads decoding PNGs (default: the CPU count, at most 8).
    few_faces_warning
        Warn when the folder holds fewer than :data:`FEW_FACES` faces (training
        faces); off for held-back validation faces.
    whole_tree
        Read the faces of the subfolders too (pre-training; see :func:`list_faces`).

    Raises
    ------
    InputError
        When the folder is missing or empty, no file is readable, or the
        faces differ in size or layout (crops of different extractions), or
        the crops do not hold the whole square of ``centering``.
    """
    if centering not in CENTERINGS:
        raise InputError(f"unknown centering {centering!r} (choose from {', '.join(CENTERINGS)})")
    files = list_faces(folder, name, whole_tree=whole_tree)
    extent = source_extent(augment or AugmentConfig())
    results: list[_Crop | str] = []
    for path in files:  # the first usable crop sets the folder's layout
        results.append(_read_one(path, input_size, extent, None, None, centering))
        if isinstance(results[-1], _Crop):
            break
    if not isinstance(results[-1], _Crop):
        raise InputError(f"faces {name}: none of the {len(files)} images in {folder} is a usable face crop")
    expected = results[-1].layout
    start, stop = face_region(expected.size, expected.padding, centering)
    if start < 0 or stop > expected.size:
        raise InputError(
            f"faces {name}: the crops of {folder} hold too little around the face for {centering} "
            "centering; extract them again with faceswap extract, or train with --centering legacy"
        )
    images = np.empty((len(files), expected.stored, expected.stored, 3), np.uint8)
    first = len(results) - 1
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        results[first:] = pool.map(
            lambda index: _read_one(files[index], input_size, extent, expected, images[index], centering),
            range(first, len(files)),
        )
    problems = [result for result in results if isinstance(result, str)]
    if problems:
        log.warning(
            "faces %s: skipped %d unusable file(s) of %d, e.g. %s",
            name,
            len(problems),
            len(files),
            problems[0],
        )
    crops = [result for result in results if not isinstance(result, str)]
    _check_uniform(crops, name, Path(folder))
    kept = [index for index, result in enumerate(results) if not isinstance(result, str)]
    for position, index in enumerate(kept):  # close the gaps of skipped files, in place
        if position != index:
            images[position] = images[index]
    images = images[: len(kept)]
    missing = sum(not crop.measured for crop in crops)
    if missing:
        log.warning(
            "faces %s: %d of %d crops carry no landmarks (not made by faceswap extract); "
            "their masks use the average face shape",
            name,
            missing,
            len(crops),
        )
    start, stop = face_region(expected.size, expected.padding, centering)
    if stop - start < input_size:
        log.warning(
            "faces %s: the model's region fills only %d px of these %d-px crops, less than its %d-px input: "
            "faces are enlarged and the model learns blur (extract with --size %d or more)",
            name,
            stop - start,
            expected.size,
            input_size,
            math.ceil(input_size * expected.size / (stop - start)),
        )
    if few_faces_warning and len(crops) < FEW_FACES:
        log.warning(
            "faces %s: only %d faces; %d or more, in varied poses and expressions, train a far better model",
            name,
            len(crops),
            FEW_FACES,
        )
    landmarks = np.stack([crop.landmarks for crop in crops]).astype(np.float32)
    # Legacy models keep the masks they were trained with: their square ends at the brows anyway.
    forehead = centering != LEGACY
    outlines = np.stack([mask_outline(points, forehead) for points in landmarks]).astype(np.float32)
    faces = FaceSet(
        name=name,
        folder=Path(folder),
        files=[crop.path for crop in crops],
        images=images,
        landmarks=landmarks,
        outlines=outlines,
        face_box=expected.face_box,
        frames=[crop.frame for crop in crops],
        without_landmarks=missing,
    )
    region_start, region_stop = expected.face_box
    log.info(
        "faces %s: %d faces of %d px from %s, kept at %d px: %s in memory (the %d-px region the model "
        "sees, plus the margin that augmentation's rotation, zoom and shift reach)",
        name,
        len(faces),
        expected.size,
        folder,
        expected.stored,
        format_bytes(faces.nbytes),
        round(region_stop - region_start),
    )
    return faces


def _check_uniform(crops: list[_Crop], name: str, folder: Path) -> None:
    """All crops must share one size and padding: a mixed folder means mixed extractions."""
    layouts = Counter(crop.layout for crop in crops)
    if len(layouts) == 1:
        return
    rarest = layouts.most_common()[-1][0]
    odd = next(crop.path for crop in crops if crop.layout == rarest).relative_to(folder)
    sizes = ", ".join(f"{count} of {layout.size} px" for layout, count in layouts.most_common())
    raise InputError(
        f"faces {name}: {folder} mixes faces of different sizes or layouts ({sizes}; e.g. {odd}); "
        "use faces from one extraction (same --size), or move the odd ones out"
    )
