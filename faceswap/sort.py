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

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from faceswap.crops import list_crop_files
from faceswap.errors import InputError, OutputError
from faceswap.feature_cache import open_cache
from faceswap.locks import lock_outputs
from faceswap.paths import guard_outputs
from faceswap.sort_measure import NEEDS, measure_folder
from faceswap.sort_order import IDENTITY_THRESHOLD, OTHERS, SortedFace, order_faces
from faceswap.sort_output import (
    check_output_folder,
    check_unique_names,
    default_output,
    is_inside,
    moved_to,
    rearrange_in_place,
    write_output,
)

log = logging.getLogger(__name__)

ORDERINGS = ("identity", "blur", "pose", "misalign", "size", "colour")
DEFAULT_BINS = 10


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
        if is_inside(options.sheet.resolve(), folder.resolve()):
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
        faces = order_faces(
            ordering,
            kept,
            values,
            folder,
            bins=options.bins,
            threshold=options.threshold,
            reference=reference,
        )
        check_unique_names(faces)
        result = SortResult(ordering, faces, output, skipped=skipped, measured=measured)
        if output is not None:
            linked = write_output(faces, output, copy=options.copy, overwrite=options.overwrite)
            log.info("%s: %d hard links, %d copies", output, linked, len(faces) - linked)
            listed = moved_to(faces, output)
        else:
            moved = rearrange_in_place(faces, folder)
            log.info("%s: %d crops moved into their subfolders", folder, moved)
            listed = moved_to(faces, folder)
        if options.sheet is not None:
            entries = [SheetEntry(f.path, f.path.name, f.label, f.group) for f in listed]
            title = f"faceswap sort --by {ordering}: {folder.name} ({len(faces)} faces)"
            result.sheets = write_sheets(
                entries, options.sheet, title=title, per_page=options.per_page, overwrite=options.overwrite
            )
    result.elapsed = time.perf_counter() - started
    return result
