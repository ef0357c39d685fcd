"""The sort pipeline: order or group a faces folder, to review it and delete what should not be trained on.

Orderings (``--by``), each from a measurement of every crop
(:mod:`faceswap.face_measures`), cached per crop (:mod:`faceswap.feature_cache`):

``identity``
    The people in the folder: dlib face embeddings clustered by average
    linkage (:func:`cluster_identities`), groups ``person_1``, ``person_2``, ...
    from the largest, faces of groups smaller than :data:`MIN_GROUP` in
    ``others``. Within a group, the faces nearest its mean come first.
``blur``
    Sharpest first (variance of the Laplacian of the face square).
``pose``
    By yaw in :data:`POSE_STEP` steps (face turned to the image's left first),
    by pitch within each step.
``misalign``
    The worst first: faces the detector does not find in their own crop, then
    by how far the landmarks found in the crop lie from the mean face
    (:func:`faceswap.face_measures.refit`).
``size``
    Largest face in its frame first (inter-ocular distance, from the
    ``alignments.json`` extract wrote in the folder).
``colour``
    Furthest from the folder's median face colour (CIE Lab) first: odd light
    and colour casts.
``similar``
    (``--similar-to PHOTO...``) nearest to the person on the photos first.

Orderings other than identity fill ``--bins`` numbered subfolders of equal
size (``01`` holds the top of the order). Every crop keeps its file name; the
result goes to an output folder (hard links where the file system allows,
copies elsewhere), built under a temporary name and renamed when complete,
with ``sort.csv`` listing the order, or, with ``in_place``, the crops are moved
into the subfolders of the faces folder itself.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceswap.align import CROP_PADDING
from faceswap.crops import list_crop_files
from faceswap.errors import InputError, OutputError
from faceswap.feature_cache import FeatureCache, file_key, open_cache
from faceswap.fileio import describe_os_error, link_or_copy, temporary_path, write_bytes_atomic
from faceswap.locks import lock_outputs
from faceswap.paths import check_replaceable_folder, guard_outputs, mark_folder
from faceswap.progress import progress_bar

log = logging.getLogger(__name__)

ORDERINGS = ("identity", "blur", "pose", "misalign", "size", "colour")
#: Largest embedding distance at which two faces' groups are merged (average linkage). On crops of
#: five people of ../shared/data (d3, d6, d10, d18, d19; every 6th frame, 380 faces) every threshold
#: from 0.50 to 0.60 gives five groups, each 100 % pure; 0.45 splits two of them.
IDENTITY_THRESHOLD = 0.55
#: Groups with fewer faces than this are no person to train on: their faces go to ``others``.
MIN_GROUP = 3
#: Average linkage holds every pairwise distance; above this many faces an evenly spread sample is
#: clustered and the others join the group whose mean is nearest (within the threshold).
MAX_LINKAGE_FACES = 6000
#: Yaw step (degrees) of ``--by pose``.
POSE_STEP = 10.0
DEFAULT_BINS = 10
OTHERS = "others"
ORDER_FILE = "sort.csv"


@dataclass
class SortOptions:
    """The options of ``faceswap sort``.

    Attributes
    ----------
    by
        One of :data:`ORDERINGS`, or ``None`` with ``similar_to``.
    similar_to
        Photos of a person: order by distance to them.
    output
        Output folder (default ``<faces>_sorted`` beside the faces folder).
    in_place
        Move the crops into subfolders of the faces folder instead.
    copy
        Copy the crops instead of hard-linking them.
    bins
        Subfolders of an ordering (1: one flat folder).
    threshold
        ``--by identity``'s clustering threshold (embedding distance).
    sheet
        Contact sheet to draw (``.png``), ``per_page`` faces a page.
    overwrite
        Replace an existing output folder or sheet.
    progress
        Show a progress bar on stderr.
    """

    by: str | None = None
    similar_to: list[Path] = field(default_factory=list)
    output: Path | None = None
    in_place: bool = False
    copy: bool = False
    bins: int = DEFAULT_BINS
    threshold: float = IDENTITY_THRESHOLD
    sheet: Path | None = None
    per_page: int = 192
    overwrite: bool = False
    progress: bool = True

    @property
    def ordering(self) -> str:
        """``by``, or ``"similar"`` for ``--similar-to``."""
        return self.by or "similar"

    def check(self) -> None:
        """Refuse impossible combinations with one line naming the option.

        Raises
        ------
        InputError
            For the first invalid option.
        """
        if (self.by is None) == (not self.similar_to):
            raise InputError("give one of --by or --similar-to")
        if self.by is not None and self.by not in ORDERINGS:
            raise InputError(f"--by must be one of {', '.join(ORDERINGS)}, not {self.by}")
        if not 1 <= self.bins <= 1000:
            raise InputError(f"--bins must be from 1 to 1000, not {self.bins}")
        if not 0 < self.threshold <= 2:
            raise InputError(f"--threshold must be above 0 and at most 2, not {self.threshold:g}")
        if not 12 <= self.per_page <= 5000:
            raise InputError(f"--per-page must be from 12 to 5000, not {self.per_page}")
        if self.in_place and self.output is not None:
            raise InputError("--in-place rearranges the faces folder itself: it takes no -o/--output")
        for photo in self.similar_to:
            if not photo.is_file():
                raise InputError(f"{photo}: no such photo")


@dataclass(frozen=True)
class SortedFace:
    """One crop in the result: where it was, the group it went to, its score and the sheet's label."""

    path: Path
    group: str
    score: float
    label: str


@dataclass
class SortResult:
    """What a sort did: the faces in order, and what was written."""

    ordering: str
    faces: list[SortedFace]
    output: Path | None
    sheets: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    measured: int = 0
    elapsed: float = 0.0

    @property
    def groups(self) -> dict[str, int]:
        """Faces per group, in the order of the result."""
        counts: dict[str, int] = {}
        for face in self.faces:
            counts[face.group] = counts.get(face.group, 0) + 1
        return counts

    def format(self) -> str:
        """The closing line printed after a run."""
        groups = self.groups
        if self.ordering == "identity":
            people = [name for name in groups if name != OTHERS]
            shape = f"{len(people)} people ({', '.join(str(groups[n]) for n in people)} faces)"
            if OTHERS in groups:
                shape += f", {groups[OTHERS]} faces in {OTHERS}/"
        else:
            shape = (
                f"in {len(groups)} bin{'s' if len(groups) != 1 else ''}" if len(groups) > 1 else "in order"
            )
        where = f": {self.output}" if self.output is not None else ""
        skipped = f"; {len(self.skipped)} files skipped (not face crops)" if self.skipped else ""
        sheets = f"; sheet: {', '.join(str(p) for p in self.sheets)}" if self.sheets else ""
        return (
            f"sorted {len(self.faces)} faces by {self.ordering} {shape} in {self.elapsed:.1f} s "
            f"({self.measured} measured, the others from the cache){skipped}{where}{sheets}"
        )


# ----------------------------------------------------------------------------------------------
# Inputs and measurements


#: Measurements each ordering needs (see :data:`faceswap.feature_cache.FEATURES`).
NEEDS = {
    "identity": ("embedding",),
    "similar": ("embedding",),
    "blur": ("sharpness",),
    "colour": ("colour",),
    "pose": ("pose",),
    "misalign": ("found", "misalignment"),
    "size": (),
}


class _Measurer:
    """Measures crops, loading each model only when a measurement needs it."""

    def __init__(self) -> None:
        self._models: dict[str, object] = {}

    def _model(self, name: str):
        if name not in self._models:
            from faceswap.detect import FaceDetector, LandmarkPredictor
            from faceswap.identity import FaceEmbedder

            factory = {"detector": FaceDetector, "predictor": LandmarkPredictor, "embedder": FaceEmbedder}
            self._models[name] = factory[name]()
        return self._models[name]

    def measure(self, path: Path, wanted: Sequence[str]) -> dict[str, np.ndarray | float]:
        """The ``wanted`` measurements of one crop (and any made on the way)."""
        from faceswap.crops import read_crop
        from faceswap.face_measures import crop_pose, mean_colour, refit, sharpness

        image, info = read_crop(path)
        padding = info.padding if info is not None else CROP_PADDING
        values: dict[str, np.ndarray | float] = {}
        landmarks = info.landmarks if info is not None else None
        if "found" in wanted or "misalignment" in wanted or landmarks is None:
            fit = refit(image, padding, self._model("detector"), self._model("predictor"))
            values.update(found=float(fit.found), misalignment=fit.misalignment, landmarks=fit.landmarks)
            landmarks = landmarks if landmarks is not None else fit.landmarks
        if "sharpness" in wanted:
            values["sharpness"] = sharpness(image, padding)
        if "colour" in wanted:
            values["colour"] = mean_colour(image, padding)
        if "pose" in wanted:
            values["pose"] = crop_pose(landmarks, image.shape[0])
        if "embedding" in wanted:
            values["embedding"] = self._model("embedder").embed(image, landmarks)
        return values


def measure_folder(
    crops: Sequence[Path], wanted: Sequence[str], cache: FeatureCache, progress: bool
) -> tuple[list[Path], dict[str, np.ndarray], list[str], int]:
    """Measurements of every crop, from the cache where it has them.

    Returns
    -------
    tuple
        The crops that could be measured, one array per wanted measurement
        (a row per crop), the names of files skipped (not readable face crops),
        and how many crops were measured now.
    """
    measurer = _Measurer()
    kept: list[Path] = []
    rows: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    skipped: list[str] = []
    measured = 0
    keys = set()
    with progress_bar(len(crops), "measuring faces", progress, unit="face") as bar:
        for path in crops:
            try:
                key = file_key(path)
            except OSError:
                skipped.append(path.name)
                bar.update(1)
                continue
            keys.add(key)
            values = {name: cache.get(key, name) for name in wanted}
            if any(value is None for value in values.values()):
                try:
                    fresh = measurer.measure(path, wanted)
                except InputError as error:
                    log.warning("skipping %s", error)
                    skipped.append(path.name)
                    bar.update(1)
                    continue
                for name, value in fresh.items():
                    cache.put(key, name, value)
                values = {name: cache.get(key, name) for name in wanted}
                measured += 1
            kept.append(path)
            for name in wanted:
                rows[name].append(np.asarray(values[name], dtype=np.float64))
            bar.update(1)
    cache.keep_only(keys)
    cache.save()
    arrays = {name: np.array(rows[name]).reshape(len(kept), -1) for name in wanted}
    return kept, arrays, skipped, measured


# ----------------------------------------------------------------------------------------------
# Orderings


def cluster_identities(embeddings: np.ndarray, threshold: float = IDENTITY_THRESHOLD) -> np.ndarray:
    """Cluster face embeddings into people: a label per face, ``0`` for the largest group, ...

    Average linkage (UPGMA): two groups merge while the mean distance between
    their faces is below ``threshold``. It keeps one person together through
    changes of pose and light better than single linkage (which chains
    people) and complete linkage (which splits a person into poses).

    Returns
    -------
    numpy.ndarray
        Integer labels, groups numbered by size (largest first); ``-1`` for a
        face that joined no group (only when more than
        :data:`MAX_LINKAGE_FACES` faces are clustered).
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    count = len(embeddings)
    if count == 0:
        return np.zeros(0, dtype=int)
    if count == 1:
        return np.zeros(1, dtype=int)
    sample = np.arange(count)
    if count > MAX_LINKAGE_FACES:
        sample = np.linspace(0, count - 1, MAX_LINKAGE_FACES).round().astype(int)
    raw = fcluster(linkage(embeddings[sample], "average"), threshold, "distance")
    labels = np.full(count, -1)
    labels[sample] = raw
    if count > MAX_LINKAGE_FACES:
        names = np.unique(raw)
        means = np.array([embeddings[sample][raw == name].mean(axis=0) for name in names])
        rest = np.setdiff1d(np.arange(count), sample)
        distances = np.linalg.norm(embeddings[rest][:, None] - means[None], axis=2)
        nearest = distances.argmin(axis=1)
        close = distances[np.arange(len(rest)), nearest] <= threshold
        labels[rest[close]] = names[nearest[close]]
    names, sizes = np.unique(labels[labels >= 0], return_counts=True)
    renumber = {int(name): rank for rank, name in enumerate(names[np.argsort(-sizes, kind="stable")])}
    return np.array([renumber.get(int(label), -1) for label in labels])


def _by_identity(crops: list[Path], embeddings: np.ndarray, threshold: float) -> list[SortedFace]:
    labels = cluster_identities(embeddings, threshold)
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, int)
    people = [label for label in range(len(sizes)) if sizes[label] >= MIN_GROUP]
    means = {label: embeddings[labels == label].mean(axis=0) for label in people}
    faces: list[SortedFace] = []
    for rank, label in enumerate(people, start=1):
        members = np.flatnonzero(labels == label)
        distances = np.linalg.norm(embeddings[members] - means[label], axis=1)
        for index in members[np.argsort(distances, kind="stable")]:
            distance = float(np.linalg.norm(embeddings[index] - means[label]))
            faces.append(SortedFace(crops[index], f"person_{rank}", distance, f"d {distance:.2f}"))
    rest = [index for index in range(len(crops)) if labels[index] not in means]
    nearest = []
    for index in rest:
        distances = [float(np.linalg.norm(embeddings[index] - mean)) for mean in means.values()]
        nearest.append(min(distances) if distances else float("nan"))
    for index, distance in sorted(zip(rest, nearest, strict=True), key=lambda pair: pair[1]):
        label = f"nearest {distance:.2f}" if np.isfinite(distance) else "alone"
        faces.append(SortedFace(crops[index], OTHERS, distance, label))
    return faces


def _face_sizes(folder: Path, crops: list[Path]) -> np.ndarray:
    """Inter-ocular distance (frame pixels) of each crop's face, from the folder's alignments file."""
    from faceswap.alignments import ALIGNMENTS_NAME, Alignments
    from faceswap.landmarks import interocular_distance

    path = folder / ALIGNMENTS_NAME
    if not path.is_file():
        raise InputError(
            f"--by size needs the {ALIGNMENTS_NAME} that extract wrote in {folder} (the crops do not "
            "record the size of their face in the frame)"
        )
    sizes: dict[str, float] = {}
    for _, record in Alignments.load(path):
        for face in record.faces:
            if face.crop is not None:
                sizes[face.crop] = interocular_distance(face.landmarks)
    return np.array([sizes.get(crop.name, np.nan) for crop in crops])


def _scores(ordering: str, values: dict[str, np.ndarray], folder: Path, crops: list[Path], reference):
    """Sort keys (ascending = first) and the sheet's labels, for an ordering other than identity."""
    if ordering == "blur":
        score = values["sharpness"][:, 0]
        return -score, score, [f"sharp {v:.0f}" for v in score]
    if ordering == "colour":
        colour = values["colour"]
        score = np.linalg.norm(colour - np.median(colour, axis=0), axis=1)
        return -score, score, [f"dE {v:.1f}  L {c[0]:.0f}" for v, c in zip(score, colour, strict=True)]
    if ordering == "pose":
        yaw, pitch = values["pose"][:, 0], values["pose"][:, 1]
        key = np.floor(yaw / POSE_STEP) * 1000 + pitch
        return key, yaw, [f"yaw {y:+.0f} pitch {p:+.0f}" for y, p in zip(yaw, pitch, strict=True)]
    if ordering == "misalign":
        score = values["misalignment"][:, 0] * 100
        found = values["found"][:, 0] > 0.5
        key = -(score + np.where(found, 0.0, 1e6))
        labels = [f"off {v:.1f}%" if f else f"no face {v:.0f}%" for v, f in zip(score, found, strict=True)]
        return key, score, labels
    if ordering == "size":
        score = _face_sizes(folder, crops)
        return (
            np.where(np.isfinite(score), -score, np.inf),
            score,
            [f"eyes {v:.0f} px" if np.isfinite(v) else "size unknown" for v in score],
        )
    score = np.linalg.norm(values["embedding"] - reference, axis=1)  # similar
    return score, score, [f"d {v:.2f}" for v in score]


def _ordered(
    ordering: str,
    crops: list[Path],
    values: dict[str, np.ndarray],
    folder: Path,
    options: SortOptions,
    reference,
) -> list[SortedFace]:
    if ordering == "identity":
        return _by_identity(crops, values["embedding"], options.threshold)
    key, score, labels = _scores(ordering, values, folder, crops, reference)
    order = np.argsort(key, kind="stable")
    bins = min(options.bins, len(crops))
    width = len(str(bins))
    faces = []
    for rank, index in enumerate(order):
        group = "" if bins <= 1 else f"{rank * bins // len(crops) + 1:0{width}d}"
        faces.append(SortedFace(crops[index], group, float(score[index]), labels[index]))
    return faces


# ----------------------------------------------------------------------------------------------
# Output


def default_output(folder: Path) -> Path:
    """``<faces folder>_sorted`` beside the faces folder (``.`` is named after the current folder)."""
    if not folder.name or folder.name == "..":
        folder = folder.resolve()
    return folder.parent / f"{folder.name}_sorted"


def _inside(path: Path, folder: Path) -> bool:
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
    if _inside(resolved, source) or _inside(source, resolved):
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


def _check_names(faces: Sequence[SortedFace]) -> None:
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
    temp = temporary_path(output)
    linked = 0
    try:
        temp.mkdir()
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
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        raise OutputError(describe_os_error(error, output)) from error
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
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
        if old != folder and _inside(old, folder):
            with contextlib.suppress(OSError):
                old.rmdir()  # only when empty
    write_bytes_atomic(folder / ORDER_FILE, _order_csv(_moved(faces, folder)), durable=False)
    return len(moves)


def _moved(faces: Sequence[SortedFace], folder: Path) -> list[SortedFace]:
    return [
        SortedFace(
            (folder / f.group / f.path.name) if f.group else folder / f.path.name, f.group, f.score, f.label
        )
        for f in faces
    ]


# ----------------------------------------------------------------------------------------------
# Entry point


def sort_faces(folder: Path | str, options: SortOptions) -> SortResult:
    """Order or group the crops of a faces folder; see the module docstring.

    Raises
    ------
    FaceswapError
        For a missing or empty folder, bad options, an output that overlaps
        the faces folder or exists, a reference photo without one clear face,
        or a failure while writing (the output is then not created).
    """
    from faceswap.sheet import SheetEntry, check_sheet_path, write_sheets

    started = time.perf_counter()
    options.check()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such faces folder")
    output = None if options.in_place else options.output or default_output(folder)
    if output is not None:
        check_output_folder(output, folder, overwrite=options.overwrite)
    if options.sheet is not None:
        check_sheet_path(options.sheet, overwrite=options.overwrite)
        if _inside(options.sheet.resolve(), folder.resolve()):
            raise OutputError(
                f"--sheet {options.sheet} lies inside the faces folder {folder}: put it outside"
            )
    guard_outputs([folder, *options.similar_to], [output, options.sheet])
    with lock_outputs([output or folder], "sort"):
        crops = list_crop_files(folder)
        if not crops:
            raise InputError(f"{folder}: no face crops (PNG or JPEG files) in this folder")
        reference = None
        if options.similar_to:
            from faceswap.identity import identity_of_photos

            reference = identity_of_photos(options.similar_to)
        ordering = options.ordering
        kept, values, skipped, measured = measure_folder(
            crops, NEEDS[ordering], open_cache(folder), options.progress
        )
        if not kept:
            raise InputError(f"{folder}: none of its {len(crops)} images is a readable face crop")
        faces = _ordered(ordering, kept, values, folder, options, reference)
        _check_names(faces)
        result = SortResult(ordering, faces, output, skipped=skipped, measured=measured)
        if output is not None:
            linked = write_output(faces, output, copy=options.copy, overwrite=options.overwrite)
            log.info("%s: %d hard links, %d copies", output, linked, len(faces) - linked)
            listed = _moved(faces, output)
        else:
            moved = rearrange_in_place(faces, folder)
            log.info("%s: %d crops moved into their subfolders", folder, moved)
            listed = _moved(faces, folder)
        if options.sheet is not None:
            entries = [SheetEntry(f.path, f.path.name, f.label, f.group) for f in listed]
            title = f"faceswap sort --by {ordering}: {folder.name} ({len(faces)} faces)"
            result.sheets = write_sheets(
                entries, options.sheet, title=title, per_page=options.per_page, overwrite=options.overwrite
            )
    result.elapsed = time.perf_counter() - started
    return result
