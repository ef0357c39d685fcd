"""``faceswap score``: a reproducible quality report for a face swap.

Compares an original clip with its swapped version, frame by frame, on eight
measures (see README, "Scoring a swap"):

1. **identity transfer**: distance of the swapped face's dlib ResNet embedding
   to the target identity and to the source identity; a frame counts as
   transferred when the swapped face is closer to the target than to the
   source *and* within dlib's same-person threshold (0.6); reported raw and
   gated by detail (a transferred frame counts only when its face is detailed);
2. **detail**: the inner face's high-frequency energy relative to the
   original's, beside the ceiling a perfect model of the given input size
   reaches (:mod:`faceswap.detail`); a blur scores low however well it is
   recognised;
3. **pose kept**: mean absolute difference of head yaw, pitch and roll, and
   its two parts: a steady offset and how well the head's motion is followed
   (:func:`faceswap.score_measures.pose_drift`);
4. **expression kept**: inner-landmark difference after similarity alignment,
   in % of the inter-ocular distance; beside it the same on the frames whose
   pose and expression the target's faces show (:mod:`faceswap.coverage`: a
   model cannot paint the target's open mouth if no face of the target opens
   it), when the target is given as extracted crops;
5. **steadiness**: high-frequency landmark motion (second differences) of the
   swapped face relative to the original's; 1.0 adds no jitter;
6. **background kept**: PSNR outside the face region;
7. **seam**: the colour difference (ΔE) to the original just inside where the
   blend ends (:mod:`faceswap.seam`): a pasted face whose shading steps there
   looks stuck on;
8. **lost faces**: frames where the original has a face and the swap has none.

The measures themselves are in :mod:`faceswap.score_measures`. Faces are
found with the same detector and landmark predictor as extract
(:mod:`faceswap.faces`), each frame afresh.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from faceswap import __version__
from faceswap.align import CENTERINGS, DEFAULT_CENTERING
from faceswap.coverage import covered_faces, crop_landmarks, face_traits
from faceswap.detail import DETAIL_GATE, face_detail
from faceswap.errors import InputError
from faceswap.faces import FaceFinder, LargestFaceSearch
from faceswap.identity import SAME_PERSON_THRESHOLD, FaceEmbedder, distance, identity_of_photos
from faceswap.media.reader import Frame, list_images, open_source
from faceswap.pose import head_pose
from faceswap.progress import progress_bar
from faceswap.score_measures import expression_difference, face_region_mask, jitter, pose_drift, psnr
from faceswap.seam import seam_difference

log = logging.getLogger(__name__)

#: An identity (--target, --source) is the mean embedding of at most this many of its faces, evenly
#: spread: embedding costs about 0.1 s a face on a CPU, and a folder of extracted faces holds thousands.
MAX_IDENTITY_FACES = 64
#: Detail above this multiple of the ceiling is flagged in the text report: a model of that size
#: cannot paint it, so it was added after the model (convert's ``--sharpen`` at 2 reads 2.2 times
#: the ceiling on d18 -> d19, with the 64-px model's pixel grid showing; 0.5 to 1 reads 0.8 to 1.2).
OVER_CEILING = 1.25
#: Model input size assumed for the detail ceiling when neither a model nor a size is given.
DEFAULT_MODEL_SIZE = 64


@dataclass
class FrameScore:
    """Per-frame values of the report (``None`` where a value does not apply)."""

    frame: int
    original_face: bool
    swapped_face: bool
    #: Whether identity was to be measured on this frame (an ``--identity-every`` frame with an
    #: original face), even if the swap lost the face there.
    identity_checked: bool = False
    target_distance: float | None = None
    source_distance: float | None = None
    original_target_distance: float | None = None
    transferred: bool | None = None
    #: Transferred and detailed (see ``detailed``).
    transferred_with_detail: bool | None = None
    #: Inner-face detail of the swapped face relative to the original's.
    detail: float | None = None
    #: The same for a perfect model of the report's ``model_size``.
    detail_ceiling: float | None = None
    #: ``detail`` is at least ``detail_gate`` of ``detail_ceiling``.
    detailed: bool | None = None
    pose_original: list[float] | None = None
    pose_swapped: list[float] | None = None
    expression_error: float | None = None
    #: Whether the target's faces show this face's pose and expression (None: no crops to tell).
    covered: bool | None = None
    background_psnr: float | None = None
    #: Colour difference (ΔE) to the original just inside where the blend ends.
    seam: float | None = None


@dataclass
class ScoreResult:
    """Summary figures and per-frame values."""

    frames: int
    frames_with_face: int
    lost_faces: int
    identity_frames: int
    identity_transfer: float | None
    identity_transfer_with_detail: float | None
    detail: float | None
    detail_ceiling: float | None
    detailed_frames: float | None
    model_size: int
    target_distance: float | None
    source_distance: float | None
    original_target_distance: float | None
    pose_error: dict[str, float | None]
    pose_offset: dict[str, float | None]
    pose_tracking_error: dict[str, float | None]
    expression_error: float | None
    #: Share of the compared frames whose pose and expression the target's faces show.
    covered_frames: float | None
    #: ``expression_error`` over those frames only.
    expression_error_covered: float | None
    steadiness: float | None
    jitter_original: float | None
    jitter_swapped: float | None
    background_psnr: float | None
    seam: float | None = None
    per_frame: list[FrameScore] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict, with the tool version for reproducibility."""
        document = asdict(self)
        document["created_by"] = f"faceswap {__version__}"
        document["same_person_threshold"] = SAME_PERSON_THRESHOLD
        document["detail_gate"] = DETAIL_GATE
        return document


def identity_of(
    inputs: Sequence[Path | str],
    finder: FaceFinder,
    embedder: FaceEmbedder,
    what: str,
) -> np.ndarray:
    """Mean embedding of the faces in photos, folders of photos, or folders of extracted crops.

    At most :data:`MAX_IDENTITY_FACES` files are read, evenly spread; each
    gives one face as :func:`faceswap.identity.identity_of_photos` (not
    ``strict``) finds it: the landmarks a crop carries, else its largest face.

    Raises
    ------
    InputError
        When an input is missing or no face is found in any of them.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"{what} {path}: no such file or folder")
        files += list_images(path) if path.is_dir() else [path]
    if len(files) > MAX_IDENTITY_FACES:
        # Evenly spread over the folders: the mean of this many embeddings hardly moves with more.
        picks = np.linspace(0, len(files) - 1, MAX_IDENTITY_FACES).round().astype(int)
        log.info("%s: the identity is the mean of %d of its %d faces", what, MAX_IDENTITY_FACES, len(files))
        files = [files[index] for index in picks]
    named = f"{what} ({', '.join(str(p) for p in inputs)})"
    return identity_of_photos(files, finder=finder, embedder=embedder, strict=False, what=named)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def paired_frames(original: Path, swapped: Path) -> tuple[Iterator[tuple[Frame, Frame]], int]:
    """Frames of both inputs side by side, and their count.

    Raises
    ------
    InputError
        When the two inputs differ in frame count.
    """
    first, second = open_source(original), open_source(swapped)
    if first.frame_count != second.frame_count:
        raise InputError(
            f"{swapped} has {second.frame_count} frames but {original} has {first.frame_count}; "
            "score compares a clip with its own swapped version"
        )
    return zip(first.frames(), second.frames(), strict=True), first.frame_count


def score(
    original: Path | str,
    swapped: Path | str,
    targets: Sequence[Path | str],
    sources: Sequence[Path | str] = (),
    *,
    identity_every: int = 1,
    upsample: int = 0,
    model_size: int = DEFAULT_MODEL_SIZE,
    centering: str = DEFAULT_CENTERING,
    identities: tuple[np.ndarray, np.ndarray | None] | None = None,
    progress: bool = True,
) -> ScoreResult:
    """Score a swapped clip against its original.

    Parameters
    ----------
    original, swapped
        Videos, gifs or image folders with the same number of frames.
    targets
        Photos, folders of photos or of extracted faces of the person whose
        face was put in (the target identity).
    sources
        The same for the person who was replaced; when empty, each frame's
        original face is the source.
    identity_every
        Compute face embeddings (the slow part, ~0.1 s per face on a CPU) on
        every Nth frame only; the other measures use every frame.
    model_size
        Side in pixels of the input of the model that made the swap: the
        detail ceiling is what a perfect model of that size reaches.
    centering
        The square that model sees and paints (:data:`faceswap.align.CENTERINGS`),
        for the same ceiling.
    identities
        The target's and the source's mean embeddings (:func:`identity_of`;
        the source's may be ``None``), made once for scoring several swaps:
        ``targets`` and ``sources`` are then not read.

    Raises
    ------
    InputError
        When inputs are missing, differ in frame count or size, or no face is
        found in the target (or source) photos.
    """
    if identity_every < 1:
        raise InputError("--identity-every must be at least 1")
    if model_size < 8:
        raise InputError(f"--model-size must be at least 8 px, not {model_size}")
    if centering not in CENTERINGS:
        raise InputError(f"--centering must be one of {', '.join(CENTERINGS)}, not {centering!r}")
    finder, embedder = FaceFinder(upsample=upsample), FaceEmbedder()
    if identities is not None:
        target, source = identities
    else:
        photo_finder = FaceFinder(finder.detector, finder.predictor, upsample=1)
        target = identity_of(targets, photo_finder, embedder, "target")
        source = identity_of(sources, photo_finder, embedder, "source") if sources else None
    target_landmarks = crop_landmarks(targets)
    pairs, count = paired_frames(Path(original), Path(swapped))
    original_finder, swapped_finder = LargestFaceSearch(finder), LargestFaceSearch(finder)

    rows: list[FrameScore] = []
    original_track: list[np.ndarray | None] = []
    swapped_track: list[np.ndarray | None] = []
    for number, (first, second) in enumerate(progress_bar(count, "score", progress).wrap(pairs)):
        if first.image.shape != second.image.shape:
            raise InputError(
                f"frame {first.index}: the swapped frame is {second.image.shape[1]}x{second.image.shape[0]}, "
                f"the original {first.image.shape[1]}x{first.image.shape[0]}"
            )
        size = (first.image.shape[1], first.image.shape[0])
        mine = original_finder.find(first.image)
        theirs = (
            swapped_finder.find(second.image, near=mine)
            if mine is not None
            else swapped_finder.find(second.image)
        )
        original_track.append(mine)
        swapped_track.append(theirs)
        row = FrameScore(frame=first.index, original_face=mine is not None, swapped_face=theirs is not None)
        rows.append(row)
        if mine is None:
            continue
        row.identity_checked = number % identity_every == 0
        if theirs is None:
            continue
        row.pose_original = head_pose(mine, size).as_array().round(2).tolist()
        row.pose_swapped = head_pose(theirs, size).as_array().round(2).tolist()
        row.expression_error = round(expression_difference(mine, theirs), 3)
        row.background_psnr = round(
            psnr(first.image, second.image, ~face_region_mask(mine, first.image.shape)), 3
        )
        seam = seam_difference(first.image, second.image, mine, centering)
        row.seam = None if seam is None else round(seam, 3)
        detail = face_detail(first.image, second.image, mine, model_size, centering)
        if detail.ratio is not None and detail.ceiling_ratio is not None:
            row.detail, row.detail_ceiling = round(detail.ratio, 4), round(detail.ceiling_ratio, 4)
            row.detailed = detail.detailed()
        if row.identity_checked:
            swapped_embedding = embedder.embed(second.image, theirs)
            original_embedding = embedder.embed(first.image, mine)
            row.target_distance = round(distance(swapped_embedding, target), 4)
            reference = source if source is not None else original_embedding
            row.source_distance = round(distance(swapped_embedding, reference), 4)
            row.original_target_distance = round(distance(original_embedding, target), 4)
            row.transferred = bool(
                row.target_distance < row.source_distance and row.target_distance < SAME_PERSON_THRESHOLD
            )
            row.transferred_with_detail = row.transferred and bool(row.detailed)
    _mark_covered(rows, original_track, target_landmarks)
    return _summarise(rows, original_track, swapped_track, model_size)


def _mark_covered(
    rows: list[FrameScore], original_track: list[np.ndarray | None], target_landmarks: np.ndarray | None
) -> None:
    """Set each compared row's ``covered``: do the target's faces show this face's pose and expression.

    Training flips faces by default, so the target's mirrored turns count.
    """
    compared = [index for index, row in enumerate(rows) if row.original_face and row.swapped_face]
    if target_landmarks is None or not compared:
        return
    source = np.stack([original_track[index] for index in compared])
    covered = covered_faces(face_traits(source), face_traits(target_landmarks), mirrored=True)
    for index, flag in zip(compared, covered, strict=True):
        rows[index].covered = bool(flag)


def _share(flags: list[bool | None]) -> float | None:
    """Share of true values among those that are not ``None``."""
    kept = [bool(flag) for flag in flags if flag is not None]
    return sum(kept) / len(kept) if kept else None


def _summarise(
    rows: list[FrameScore],
    original_track: list[np.ndarray | None],
    swapped_track: list[np.ndarray | None],
    model_size: int,
) -> ScoreResult:
    with_face = [r for r in rows if r.original_face]
    both = [r for r in with_face if r.swapped_face]
    identity_rows = [r for r in both if r.transferred is not None]
    drift = pose_drift(
        np.array([r.pose_original for r in both]).reshape(-1, 3),
        np.array([r.pose_swapped for r in both]).reshape(-1, 3),
    )
    # Jitter is compared on the frames where both clips have a face, so a lost
    # face does not make one side look steadier than the other.
    paired = [
        (o, s) if o is not None and s is not None else (None, None)
        for o, s in zip(original_track, swapped_track, strict=True)
    ]
    jitter_original = jitter([o for o, _ in paired])
    jitter_swapped = jitter([s for _, s in paired])
    steadiness = None
    if jitter_original and jitter_swapped is not None:
        steadiness = jitter_swapped / jitter_original
    return ScoreResult(
        frames=len(rows),
        frames_with_face=len(with_face),
        lost_faces=len(with_face) - len(both),
        identity_frames=len(identity_rows),
        identity_transfer=_share([r.transferred for r in identity_rows]),
        identity_transfer_with_detail=_share([r.transferred_with_detail for r in identity_rows]),
        detail=_mean([r.detail for r in both]),
        detail_ceiling=_mean([r.detail_ceiling for r in both]),
        detailed_frames=_share([r.detailed for r in both]),
        model_size=model_size,
        target_distance=_mean([r.target_distance for r in identity_rows]),
        source_distance=_mean([r.source_distance for r in identity_rows]),
        original_target_distance=_mean([r.original_target_distance for r in identity_rows]),
        pose_error=drift.error,
        pose_offset=drift.offset,
        pose_tracking_error=drift.tracking_error,
        expression_error=_mean([r.expression_error for r in both]),
        covered_frames=_share([r.covered for r in both]),
        expression_error_covered=_mean([r.expression_error for r in both if r.covered]),
        steadiness=steadiness,
        jitter_original=jitter_original,
        jitter_swapped=jitter_swapped,
        background_psnr=_mean([r.background_psnr for r in both]),
        seam=_mean([r.seam for r in both]),
        per_frame=rows,
    )


def format_report(report: ScoreResult) -> str:
    """The report as a readable table for the terminal."""

    def show(value: float | None, pattern: str) -> str:
        return "n/a" if value is None else pattern.format(value)

    def percent(share: float | None) -> str:
        return show(None if share is None else 100 * share, "{:.1f} %")

    pose = report.pose_error
    detail_of_ceiling = (
        report.detail / report.detail_ceiling if report.detail is not None and report.detail_ceiling else None
    )
    lines = [
        ("frames compared", f"{report.frames} ({report.frames_with_face} with a face in the original)"),
        ("lost faces", f"{report.lost_faces} (no face found in the swapped frame)"),
        (
            "identity transfer",
            percent(report.identity_transfer)
            + f"  of {report.identity_frames} frames nearer the target than the source"
            f" and under {SAME_PERSON_THRESHOLD}",
        ),
        (
            "  with detail",
            percent(report.identity_transfer_with_detail)
            + f"  of them transferred and detailed (at least {100 * DETAIL_GATE:.0f} % of the ceiling)",
        ),
        (
            "  distance to target",
            show(report.target_distance, "{:.3f}")
            + f"  (original face: {show(report.original_target_distance, '{:.3f}')})",
        ),
        ("  distance to source", show(report.source_distance, "{:.3f}")),
        (
            "pose kept",
            "yaw {}°, pitch {}°, roll {}° mean abs. difference".format(
                *(show(pose[a], "{:.2f}") for a in ("yaw", "pitch", "roll"))
            ),
        ),
        (
            "  steady offset",
            "yaw {}°, pitch {}°, roll {}° (median swapped minus original)".format(
                *(show(report.pose_offset[a], "{:+.2f}") for a in ("yaw", "pitch", "roll"))
            ),
        ),
        (
            "  head motion",
            "yaw {}°, pitch {}°, roll {}° mean abs. difference without that offset".format(
                *(show(report.pose_tracking_error[a], "{:.2f}") for a in ("yaw", "pitch", "roll"))
            ),
        ),
        (
            "detail",
            show(report.detail, "{:.2f}")
            + f"  of the original's inner face (ceiling at {report.model_size} px: "
            + show(report.detail_ceiling, "{:.2f}")
            + f"; {show(None if detail_of_ceiling is None else 100 * detail_of_ceiling, '{:.0f} %')} of it)"
            + f"; {percent(report.detailed_frames)} of frames detailed"
            + (
                f"; above the ceiling: more than a {report.model_size}-px model paints (sharpened, noise, "
                "or not the model's face)"
                if detail_of_ceiling is not None and detail_of_ceiling > OVER_CEILING
                else ""
            ),
        ),
        ("expression kept", show(report.expression_error, "{:.2f} %") + " of inter-ocular distance"),
        (
            "  where shown",
            show(report.expression_error_covered, "{:.2f} %")
            + f"  on the {percent(report.covered_frames)} of frames whose pose and expression"
            " the target's faces show",
        ),
        ("steadiness", show(report.steadiness, "{:.2f}") + "  (1.00 = no added jitter; lower is steadier)"),
        ("background kept", show(report.background_psnr, "{:.1f} dB") + " PSNR outside the face"),
        (
            "seam",
            show(report.seam, "{:.2f}")
            + " ΔE to the original just inside where the blend ends (0 = no step; about 2 is noticed)",
        ),
    ]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in lines)
