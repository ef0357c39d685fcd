"""Which of the recorded faces convert swaps: those whose crops survived curation, of the chosen person.

Curation
    After extract, users delete the crops of wrong people, half faces and
    blurred frames (by hand, or after ``faceswap sort``). A face whose crop is
    recorded in the alignments file but is no longer in the faces folder
    (searched with its subfolders, so crops sorted into ``person_1/`` still
    count) is not swapped. Faces extract recorded without saving a crop
    (``--blur-threshold``) are still swapped: nobody deleted them.

The person (``--reference``)
    Faces are followed from frame to frame (:func:`faceswap.convert_plan.link_tracks`)
    and each track is decided as a whole: up to :data:`SAMPLES_PER_TRACK`
    faces, evenly spread along it, are compared with the reference identity,
    and the track is swapped when most of them are within the threshold. A
    face therefore does not switch between people within a shot, and a
    frame where the recogniser misses (a turned head, motion blur) is not
    left unswapped in the middle of a swapped shot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceswap.alignments import Face
from faceswap.convert_plan import link_tracks
from faceswap.crops import list_crop_files
from faceswap.errors import InputError
from faceswap.media.reader import FrameSource
from faceswap.progress import progress_bar

log = logging.getLogger(__name__)

#: Faces of a track compared with the reference (evenly spread along it).
SAMPLES_PER_TRACK = 7

Frames = dict[int, list[Face]]


def drop_deleted_crops(frames: Frames, folder: Path) -> tuple[Frames, int]:
    """The faces whose recorded crop is still in ``folder`` (or was never saved); and how many went.

    Raises
    ------
    InputError
        When the alignments record crops and not one of them is left in ``folder``.
    """
    present = {path.name for path in list_crop_files(folder)}
    recorded = sum(face.crop is not None for faces in frames.values() for face in faces)
    kept = {
        index: [f for f in faces if f.crop is None or f.crop in present] for index, faces in frames.items()
    }
    left = sum(face.crop is not None for faces in kept.values() for face in faces)
    if recorded and not left:
        raise InputError(
            f"none of the {recorded} face crops the alignments file records is left in {folder}: every "
            "face would be skipped (give --faces the folder where the crops you kept are)"
        )
    return kept, recorded - left


@dataclass(frozen=True)
class PersonChoice:
    """What :func:`keep_person` decided: tracks and faces of the person, of everybody."""

    tracks: int
    kept_tracks: int
    faces: int
    kept_faces: int

    def format(self) -> str:
        """One line for the log."""
        return (
            f"reference: {self.kept_tracks} of {self.tracks} face tracks are the person on the photos "
            f"({self.kept_faces} of {self.faces} faces swapped; the others are left as they are)"
        )


def keep_person(
    frames: Frames,
    source: FrameSource,
    reference: np.ndarray,
    threshold: float,
    *,
    progress: bool = True,
) -> tuple[Frames, PersonChoice]:
    """Only the faces of tracks whose sampled faces are mostly within ``threshold`` of ``reference``.

    Raises
    ------
    InputError
        When no track is the reference person (the line names the nearest distance).
    """
    from faceswap.identity import FaceEmbedder

    tracks = link_tracks(frames)
    samples: dict[int, list[tuple[int, int]]] = {}
    for number, track in enumerate(tracks):
        picks = np.unique(
            np.linspace(0, len(track) - 1, min(len(track), SAMPLES_PER_TRACK)).round().astype(int)
        )
        for pick in picks:
            index, face = track[pick]
            samples.setdefault(index, []).append((number, face))
    distances: list[list[float]] = [[] for _ in tracks]
    if samples:
        embedder = FaceEmbedder()
        with progress_bar(len(samples), "recognising faces", progress) as bar:
            for frame in source.frames(min(samples), max(samples) + 1):
                picked = samples.get(frame.index)
                if not picked:
                    continue
                faces = [frames[frame.index][face].landmarks for _, face in picked]
                embeddings = embedder.embed_many(frame.image, faces)
                for (number, _), embedding in zip(picked, embeddings, strict=True):
                    distances[number].append(float(np.linalg.norm(embedding - reference)))
                bar.update(1)
    chosen = [bool(found) and 2 * sum(d <= threshold for d in found) > len(found) for found in distances]
    kept: Frames = {index: [] for index in frames}
    for number, track in enumerate(tracks):
        if chosen[number]:
            for index, face in track:
                kept[index].append(frames[index][face])
    choice = PersonChoice(
        tracks=len(tracks),
        kept_tracks=sum(chosen),
        faces=sum(len(track) for track in tracks),
        kept_faces=sum(len(track) for track, keep in zip(tracks, chosen, strict=True) if keep),
    )
    if tracks and not choice.kept_tracks:
        nearest = min(float(np.median(found)) for found in distances if found)
        raise InputError(
            f"no face in {source.path.name} is the person on the reference photos (the nearest track's "
            f"median distance is {nearest:.2f}, above --identity-threshold {threshold:g})"
        )
    return kept, choice
