"""The orderings of ``faceswap sort``: clustering people, and sort keys from each crop's measurements.

See :mod:`faceswap.sort` for what each ordering does. Input is a row per crop
of each measurement (:mod:`faceswap.sort_measure`); output the crops in order,
as :class:`SortedFace` (group, score, the contact sheet's label).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceswap.errors import InputError

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
OTHERS = "others"


@dataclass(frozen=True)
class SortedFace:
    """One crop in the result: where it was, the group it went to, its score and the sheet's label."""

    path: Path
    group: str
    score: float
    label: str


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


def order_faces(
    ordering: str,
    crops: list[Path],
    values: dict[str, np.ndarray],
    folder: Path,
    *,
    bins: int,
    threshold: float,
    reference: np.ndarray | None,
) -> list[SortedFace]:
    """The crops in the order of ``ordering``, each with its group, score and label.

    ``values`` holds a row per crop of each measurement the ordering needs
    (:data:`faceswap.sort_measure.NEEDS`); ``bins`` numbered groups for an
    ordering other than identity (1: none), ``threshold`` identity's clustering
    distance, ``reference`` the embedding ``similar`` orders by.
    """
    if ordering == "identity":
        return _by_identity(crops, values["embedding"], threshold)
    key, score, labels = _scores(ordering, values, folder, crops, reference)
    order = np.argsort(key, kind="stable")
    bins = min(bins, len(crops))
    width = len(str(bins))
    faces = []
    for rank, index in enumerate(order):
        group = "" if bins <= 1 else f"{rank * bins // len(crops) + 1:0{width}d}"
        faces.append(SortedFace(crops[index], group, float(score[index]), labels[index]))
    return faces
