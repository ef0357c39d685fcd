"""Training data: two folders of aligned faces, their landmark masks, and augmented batches.

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

Each crop's 68 landmarks (stored in the PNG by extract) give its masks: the
convex hull of the face (with its forehead, :func:`faceswap.landmarks.forehead`,
unless the centering is ``legacy``), and the eyes and mouth. A crop without landmarks
(an image from elsewhere) gets the mean face's shape, with a warning.

:class:`BatchSource` makes batch number ``k`` of training from ``(seed, k)``
alone: every side is visited in a fresh random order each epoch, and batch
``k`` is the same whichever worker makes it and whenever. That lets batches be
made in parallel, in any order, and lets ``--resume`` continue the exact data
stream. :func:`make_dataset` wraps it in a ``tf.data`` pipeline whose parallel
map runs the augmentation while the accelerator trains on earlier batches.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceswap.align import CENTERINGS, CROP_PADDING, LEGACY, MEAN_FACE, face_region
from faceswap.augment import AugmentConfig, augment_batch, source_extent, transform_landmarks
from faceswap.crops import read_crop
from faceswap.errors import InputError
from faceswap.file_types import IMAGE_SUFFIXES
from faceswap.landmarks import FOREHEAD_POINTS, INNER, LEFT_EYE, MOUTH, RIGHT_EYE, face_hull

log = logging.getLogger(__name__)

#: Below this many faces on a side, training works but the model generalises poorly.
FEW_FACES = 100
#: Stored faces hold the face region at this many times the model's input size (at most: crops
#: smaller than that are kept at their own resolution). Augmentation then resamples at about 1:1.
OVERSAMPLE = 1.0
#: Stored pixels beyond the reach of augmentation, for bilinear interpolation at the edge.
_EDGE = 2
#: Eye and mouth regions are the landmark polygons grown by these factors around their centres.
_EYE_GROWTH, _MOUTH_GROWTH = 1.6, 1.2
#: Sub-pixel bits for polygon drawing (1/16 px).
_SHIFT = 4


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
        ``(n, OUTLINE_POINTS, 2)`` the mask polygons (:func:`mask_outline`), same coordinates.
    face_box
        ``(start, stop)`` of the model's region in the stored faces (continuous pixels).
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
    without_landmarks: int = 0

    def __len__(self) -> int:
        return len(self.files)

    @property
    def nbytes(self) -> int:
        """Memory the faces take (images, landmarks and outlines)."""
        return self.images.nbytes + self.landmarks.nbytes + self.outlines.nbytes


def list_faces(folder: Path | str, name: str) -> list[Path]:
    """Face image files in ``folder`` (not recursive, hidden files skipped), sorted.

    Raises
    ------
    InputError
        When the folder is missing, is a file, or holds no face images.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"faces {name}: no such folder {folder}")
    if not folder.is_dir():
        raise InputError(f"faces {name}: {folder} is a file, expected a folder of aligned faces")
    files = sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )
    if not files:
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
    centering: str = LEGACY

    @classmethod
    def of(
        cls, size: int, padding: float, input_size: int, extent: float, centering: str = LEGACY
    ) -> _Layout:
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


def _read_one(
    path: Path,
    input_size: int,
    extent: float,
    expected: _Layout | None,
    out: np.ndarray | None,
    centering: str = LEGACY,
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
    return _Crop(path, layout, layout.points(points), measured)


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
    centering: str = LEGACY,
    workers: int | None = None,
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
        square of each crop it sees.
    workers
        Threads decoding PNGs (default: the CPU count, at most 8).

    Raises
    ------
    InputError
        When the folder is missing or empty, no file is readable, or the
        faces differ in size or layout (crops of different extractions), or
        the crops do not hold the whole square of ``centering``.
    """
    if centering not in CENTERINGS:
        raise InputError(f"unknown centering {centering!r} (choose from {', '.join(CENTERINGS)})")
    files = list_faces(folder, name)
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
    if len(crops) < FEW_FACES:
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
    odd = next(crop.path for crop in crops if crop.layout == rarest)
    sizes = ", ".join(f"{count} of {layout.size} px" for layout, count in layouts.most_common())
    raise InputError(
        f"faces {name}: {folder} mixes faces of different sizes or layouts ({sizes}; e.g. {odd.name}); "
        "use faces from one extraction (same --size), or move the odd ones out"
    )


#: Slots of the face hull in a mask outline: enough for every landmark and forehead point.
_HULL_POINTS = 68 + FOREHEAD_POINTS
#: Where each polygon lies in a mask outline (see :func:`mask_outline`).
_OUTLINE = {
    "hull": slice(0, _HULL_POINTS),
    "right_eye": slice(_HULL_POINTS, _HULL_POINTS + 6),
    "left_eye": slice(_HULL_POINTS + 6, _HULL_POINTS + 12),
    "mouth": slice(_HULL_POINTS + 12, _HULL_POINTS + 24),
}
OUTLINE_POINTS = _HULL_POINTS + 24


def _convex(points: np.ndarray, count: int, with_forehead: bool = False) -> np.ndarray:
    """Convex hull vertices of ``points`` in order, padded to ``count`` by repeating the last one."""
    hull = face_hull(points, with_forehead=with_forehead)
    return np.concatenate([hull, np.repeat(hull[-1:], count - len(hull), axis=0)])


def _grown(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(axis=0)
    return centre + (points - centre) * factor


def mask_outline(landmarks: np.ndarray, with_forehead: bool = False) -> np.ndarray:
    """The polygons the masks are drawn from, as ``(OUTLINE_POINTS, 2)`` points, from one face's 68 landmarks.

    Face hull, with the forehead if asked (68 + ``FOREHEAD_POINTS`` slots), each
    eye and the mouth grown around their centres (6, 6 and 12 slots); each polygon
    convex, in order, padded by repeating its last vertex. Affine maps keep
    all of this true, so outlines are made once per face and moved with the
    face's augmentation.
    """
    landmarks = np.asarray(landmarks, np.float64)
    return np.concatenate(
        [
            _convex(landmarks, _HULL_POINTS, with_forehead),
            _convex(_grown(landmarks[RIGHT_EYE.start : RIGHT_EYE.stop], _EYE_GROWTH), 6),
            _convex(_grown(landmarks[LEFT_EYE.start : LEFT_EYE.stop], _EYE_GROWTH), 6),
            _convex(_grown(landmarks[MOUTH.start : MOUTH.start + 12], _MOUTH_GROWTH), 12),
        ]
    )


def landmark_masks(outlines: np.ndarray, size: int) -> np.ndarray:
    """Masks from outlines (:func:`mask_outline`): channel 0 the face hull, channel 1 the eyes and mouth.

    Parameters
    ----------
    outlines
        ``(n, OUTLINE_POINTS, 2)`` continuous coordinates on the ``size`` x ``size`` grid.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(n, size, size, 2)``, anti-aliased, 255 inside.
    """
    fixed = np.round((np.asarray(outlines) - 0.5) * (1 << _SHIFT)).astype(
        np.int32
    )  # to pixel-index coordinates
    masks = np.zeros((len(fixed), 2, size, size), np.uint8)
    for index, points in enumerate(fixed):
        for name, part in _OUTLINE.items():
            canvas = masks[index, 0 if name == "hull" else 1]
            cv2.fillConvexPoly(canvas, points[part], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    return np.ascontiguousarray(masks.transpose(0, 2, 3, 1))


#: Names and dtypes of the arrays in a training batch (all ``uint8``, per side ``a`` and ``b``):
#: ``warped`` (the input), ``target`` (unwarped) and ``mask`` (hull, eyes and mouth).
BATCH_KEYS = tuple(f"{kind}_{side}" for side in ("a", "b") for kind in ("warped", "target", "mask"))


@dataclass
class BatchSource:
    """Deterministic augmented batches of both sides.

    Attributes
    ----------
    faces
        The two sides' :class:`FaceSet`.
    batch_size
        Faces per side per batch.
    input_size
        The model's input size.
    augment
        Augmentation strengths.
    seed
        With the batch number (and the input pipeline), fixes every batch.
    """

    faces: tuple[FaceSet, FaceSet]
    batch_size: int
    input_size: int
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        self._order = functools.lru_cache(maxsize=16)(self._epoch_order)

    def _epoch_order(self, pipeline: int, side: int, epoch: int) -> np.ndarray:
        count = len(self.faces[side])
        return np.random.default_rng([self.seed, pipeline, side, epoch, 1]).permutation(count)

    def indices(self, number: int, side: int, pipeline: int = 0) -> np.ndarray:
        """Which faces of ``side`` batch ``number`` uses: each epoch visits all in a new order."""
        count = len(self.faces[side])
        positions = number * self.batch_size + np.arange(self.batch_size)
        epochs, offsets = np.divmod(positions, count)
        return np.array(
            [self._order(pipeline, side, int(e))[o] for e, o in zip(epochs, offsets, strict=True)], np.int64
        )

    def batch(self, number: int, pipeline: int = 0) -> dict[str, np.ndarray]:
        """Batch ``number`` of input pipeline ``pipeline``: arrays named as in :data:`BATCH_KEYS`."""
        result = {}
        for side, (letter, faces) in enumerate(zip("ab", self.faces, strict=True)):
            rng = np.random.default_rng([self.seed, pipeline, side, int(number)])
            chosen = self.indices(number, side, pipeline)
            result.update(self._side(faces, chosen, self.augment, rng, letter))
        return result

    def _side(
        self,
        faces: FaceSet,
        chosen: np.ndarray,
        augment: AugmentConfig,
        rng: np.random.Generator,
        letter: str,
    ) -> dict[str, np.ndarray]:
        images = [faces.images[index] for index in chosen]  # views, not a copy of the batch
        batch = augment_batch(images, faces.face_box, self.input_size, augment, rng)
        outlines = transform_landmarks(faces.outlines[chosen].astype(np.float64), batch.matrices)
        return {
            f"warped_{letter}": batch.warped,
            f"target_{letter}": batch.target,
            f"mask_{letter}": landmark_masks(outlines, self.input_size),
        }

    def plain(self, side: int, indices: Iterable[int]) -> dict[str, np.ndarray]:
        """Faces of ``side`` without augmentation (previews): ``face`` and ``mask`` arrays."""
        chosen = np.asarray(list(indices), np.int64)
        arrays = self._side(self.faces[side], chosen, AugmentConfig.none(), np.random.default_rng(0), "x")
        return {"face": arrays["target_x"], "mask": arrays["mask_x"]}


def default_workers() -> int:
    """Parallel batch makers: half the CPU cores (the step needs the rest), 1 to 8."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def make_dataset(source: BatchSource, start: int = 0, pipeline: int = 0, workers: int | None = None):
    """An endless ``tf.data.Dataset`` of ``source``'s batches ``start, start + 1, ...``.

    Batches are made by ``workers`` parallel calls (default:
    :func:`default_workers`) and prefetched, so augmentation overlaps the
    training step; the order stays deterministic. Elements are dicts of
    ``uint8`` tensors (:data:`BATCH_KEYS`).
    """
    from faceswap.runtime import tf

    workers = workers or default_workers()
    size, count = source.input_size, source.batch_size
    shapes = {key: (count, size, size, 2 if key.startswith("mask") else 3) for key in BATCH_KEYS}

    def make(number):
        batch = source.batch(int(number), pipeline)
        return [batch[key] for key in BATCH_KEYS]

    def to_dict(number):
        arrays = tf.numpy_function(make, [number], [tf.uint8] * len(BATCH_KEYS), stateful=False)
        for array, key in zip(arrays, BATCH_KEYS, strict=True):
            array.set_shape(shapes[key])
        return dict(zip(BATCH_KEYS, arrays, strict=True))

    dataset = tf.data.Dataset.range(start, 2**62)
    dataset = dataset.map(to_dict, num_parallel_calls=workers, deterministic=True)
    dataset = dataset.prefetch(max(2, workers))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)
