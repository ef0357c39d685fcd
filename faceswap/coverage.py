"""Whether one person's faces show the poses and expressions the other's will be asked to paint.

A decoder paints only what its own person's faces showed it. Swap A to B and
every one of A's faces is painted as B: where A opens the mouth wider, turns
the head further or closes the eyes as none of B's faces does, the swap
shows B's nearest face instead, the mouth shut and the head turned back,
however long the model trains. That is data, not training, and the cure is
footage of B that shows it.

:func:`coverage_gaps` measures it from the landmarks alone, on three traits
of each face (:func:`face_traits`): the head's yaw (:mod:`faceswap.pose`), the
mouth's opening and the eyes' opening. B covers one of A's faces on a trait
when the value lies within B's range (its 1st to 99th percentile, so that a
single odd frame does not count as coverage) widened by a tolerance.

Yaw is compared as turns away from each person's own median pose: read
through one generic 3-D face, two people in the same pose differ by many
degrees, so absolute angles would call two frontal faces uncovered. With
random flips in training, B's mirrored turns count too. Pitch is left out:
the pose solver reads it from the chin and the mouth corners among its six
points, so a mouth opening wide reads as the head tilting up by several
degrees, and pitch would flag the expression a second time. The mouth is
checked for opening wider, the eyes for closing further (a blink): how wide a
person's open eyes are, or how shut a closed mouth, is the person, not the
expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceswap.align import DEFAULT_CROP_SIZE, alignment_matrix, crop_matrix, transform_points
from faceswap.face_measures import crop_pose
from faceswap.landmarks import interocular_distance

#: Percentiles of the covering side's values that bound what it covers.
RANGE_PERCENTILES = (1.0, 99.0)
#: How far beyond the covering side's range a face still counts as covered, per trait.
TOLERANCE = {"yaw": 4.0, "mouth": 0.05, "eyes": 0.04}
#: Which ends of each trait's range are checked ("above", "below").
CHECKED_ENDS = {
    "yaw": ("above", "below"),
    "mouth": ("above",),
    "eyes": ("below",),
}
#: Traits compared as departures from each side's own median.
RELATIVE = ("yaw",)
#: What each trait is called in a message, and its unit.
TRAIT_WORDS = {
    "yaw": ("the head turns from its usual pose by", "°"),
    "mouth": ("the mouth opens to", " of the eye distance"),
    "eyes": ("the eyes close to", " of their width"),
}
#: At most this many faces of a side are measured, evenly spread (the pose solver takes about 1 ms a face).
MAX_FACES = 1000
#: A side is reported as not covering the other when at least this share of the other's faces lie outside.
REPORTED_SHARE = 0.05


def evenly_spread(count: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` items, evenly spread from the first to the last."""
    return np.linspace(0, count - 1, min(limit, count)).round().astype(int) if count else np.zeros(0, int)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Gap between the inner lips' middles (points 62, 66) over the inter-ocular distance, per face."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 68, 2)
    gap = np.linalg.norm(points[:, 66] - points[:, 62], axis=1)
    return gap / np.array([interocular_distance(face) for face in points])


def eye_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mean eye aspect ratio of both eyes (lid to lid over corner to corner), per face.

    About 0.3 for open eyes, under 0.15 for shut ones.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 68, 2)

    def ratio(corner_a: int, upper: tuple[int, int], corner_b: int, lower: tuple[int, int]) -> np.ndarray:
        lids = sum(
            np.linalg.norm(points[:, u] - points[:, v], axis=1) for u, v in zip(upper, lower, strict=True)
        )
        return lids / (2 * np.linalg.norm(points[:, corner_b] - points[:, corner_a], axis=1))

    return (ratio(36, (37, 38), 39, (41, 40)) + ratio(42, (43, 44), 45, (47, 46))) / 2


def crop_landmarks(inputs: Sequence[Path | str], limit: int = MAX_FACES) -> np.ndarray | None:
    """Landmarks ``(n, 68, 2)`` of the crops among ``inputs`` (crop files, folders of crops) that carry them.

    At most ``limit`` files are read, evenly spread (metadata only, no
    pixels). ``None`` when no file carries landmarks (photos, crops made
    elsewhere).
    """
    from faceswap.crops import list_crop_files, read_crop_info

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        files += list_crop_files(path) if path.is_dir() else [path]
    infos = [read_crop_info(files[index]) for index in evenly_spread(len(files), limit)]
    found = [info.landmarks for info in infos if info is not None]
    return np.stack(found) if found else None


def face_traits(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Yaw (degrees), mouth and eye opening of ``(n, 68, 2)`` landmarks.

    The landmarks may be in any pixels (a frame's, a crop's): each face is
    first placed as in a standard aligned crop (:data:`faceswap.align.DEFAULT_CROP_SIZE`
    px with :data:`faceswap.align.CROP_PADDING`), so faces from frames and
    from crops of any layout read alike. Faces whose pose the solver cannot
    place get a NaN yaw (left out of the comparison).
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 68, 2)
    aligned = np.array(
        [transform_points(face, crop_matrix(alignment_matrix(face), DEFAULT_CROP_SIZE)) for face in points]
    ).reshape(-1, 68, 2)
    poses = np.array([crop_pose(face, DEFAULT_CROP_SIZE) for face in aligned]).reshape(-1, 3)
    return {
        "yaw": poses[:, 0],
        "mouth": mouth_opening(points),
        "eyes": eye_opening(points),
    }


@dataclass(frozen=True)
class Gap:
    """Faces of one side that the other's do not cover on one trait.

    Attributes
    ----------
    trait
        A key of :data:`TOLERANCE`.
    share
        The share of the side's faces beyond the other's range on this trait.
    reach
        The side's most extreme value beyond that range (its 1st or 99th percentile).
    covered
        The bound of the other's range on that side (for yaw both are
        departures from each side's median).
    """

    trait: str
    share: float
    reach: float
    covered: float


@dataclass(frozen=True)
class _Outside:
    """The source faces beyond one end of the target's range on one trait (see :func:`_outside_ends`)."""

    trait: str
    faces: np.ndarray  # bool per source face; False where the trait is NaN
    share: float  # of the source faces with a value
    bound: float
    reach: float


def _outside_ends(
    source: dict[str, np.ndarray], target: dict[str, np.ndarray], *, mirrored: bool
) -> list[_Outside]:
    """Each checked end of each trait: which source faces lie beyond the target's range there."""
    ends = []
    for trait, tolerance in TOLERANCE.items():
        values, have = np.asarray(source[trait], np.float64), np.asarray(target[trait], np.float64)
        known = np.isfinite(values)
        have = have[np.isfinite(have)]
        if not known.any() or not len(have):
            continue
        if trait in RELATIVE:
            values, have = values - np.median(values[known]), have - np.median(have)
        if trait == "yaw" and mirrored:
            have = np.concatenate([have, -have])
        low, high = np.percentile(have, RANGE_PERCENTILES)
        with np.errstate(invalid="ignore"):  # NaN compares False: an unknown value is never outside
            beyond = {"above": values > high + tolerance, "below": values < low - tolerance}
        reach = {
            "above": np.percentile(values[known], RANGE_PERCENTILES[1]),
            "below": np.percentile(values[known], RANGE_PERCENTILES[0]),
        }
        for end in CHECKED_ENDS[trait]:
            faces = beyond[end]
            ends.append(
                _Outside(
                    trait,
                    faces,
                    float(faces[known].mean()),
                    float(high if end == "above" else low),
                    reach[end],
                )
            )
    return ends


def coverage_gaps(
    source: dict[str, np.ndarray], target: dict[str, np.ndarray], *, mirrored: bool
) -> list[Gap]:
    """Where ``target``'s faces (:func:`face_traits`) do not cover ``source``'s, the largest share first.

    ``mirrored`` counts ``target``'s turns mirrored as well (training flips
    faces at random). Only gaps of at least :data:`REPORTED_SHARE` are returned.
    """
    gaps = [
        Gap(end.trait, end.share, float(end.reach), end.bound)
        for end in _outside_ends(source, target, mirrored=mirrored)
        if end.share >= REPORTED_SHARE
    ]
    return sorted(gaps, key=lambda gap: -gap.share)


def covered_faces(
    source: dict[str, np.ndarray], target: dict[str, np.ndarray], *, mirrored: bool
) -> np.ndarray:
    """Per ``source`` face: whether ``target``'s faces cover it on every trait (as :func:`coverage_gaps`)."""
    count = len(next(iter(source.values())))
    outside = np.zeros(count, bool)
    for end in _outside_ends(source, target, mirrored=mirrored):
        outside |= end.faces
    return ~outside


def describe_gaps(gaps: list[Gap], source: str, target: str) -> str | None:
    """One sentence for the log (``None``: no gaps); ``source`` and ``target`` name the two sides."""
    if not gaps:
        return None
    parts = []
    for gap in gaps:
        words, unit = TRAIT_WORDS[gap.trait]
        figure = "{:+.0f}" if unit == "°" else "{:.2f}"
        parts.append(
            f"in {100 * gap.share:.0f} % {words} {figure.format(gap.reach)}{unit} "
            f"({target}'s faces: {figure.format(gap.covered)})"
        )
    return (
        f"faces {target} do not show all that faces {source} do: " + "; ".join(parts) + f". A swap of "
        f"{source} to {target} paints {target}'s nearest face there instead, however long it trains: "
        f"add footage of {target} that shows it"
    )


def coverage_warnings(landmarks_a: np.ndarray, landmarks_b: np.ndarray, *, mirrored: bool) -> list[str]:
    """What each side's faces do not cover of the other's, as log lines (empty: both cover).

    Parameters
    ----------
    landmarks_a, landmarks_b
        ``(n, 68, 2)`` landmarks of each side's faces.
    mirrored
        Whether training flips faces at random.
    """
    traits_a, traits_b = (
        face_traits(np.asarray(side)[evenly_spread(len(side), MAX_FACES)])
        for side in (landmarks_a, landmarks_b)
    )
    lines = (
        describe_gaps(coverage_gaps(traits_a, traits_b, mirrored=mirrored), "A", "B"),
        describe_gaps(coverage_gaps(traits_b, traits_a, mirrored=mirrored), "B", "A"),
    )
    return [line for line in lines if line is not None]
