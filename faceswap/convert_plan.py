"""The plan of a convert: which faces to swap in which frame, with steadied geometry.

Input is every frame's faces, from the alignments file that ``faceswap
extract`` wrote or, without one, found now with the same tracker extract
uses (:func:`detect_faces`). Output is, for each frame to convert, a list of
:class:`FaceGeometry`: the alignment matrix to crop and paste the face with,
and the landmarks its hull mask is drawn from.

Steadiness
----------
dlib's landmarks jitter by a pixel or so between frames; a face pasted with
raw per-frame transforms shakes, and so does its mask edge. Faces are
therefore linked into tracks across consecutive frames (by box overlap,
:func:`link_tracks`) and each track is smoothed offline over the whole clip
(:func:`faceswap.smooth.smooth_track`, forward-backward One-Euro):

* the **pose** of the face square, as centre (in inter-ocular distances),
  log scale and angle: what places the pasted face;
* the **shape**, the landmarks in unit face space (pose removed): what the
  hull mask is drawn from, mapped back into the frame with the smoothed pose.

Face and mask edge are thus derived from the same smoothed geometry and move
together. Frames an alignments file skips (``extract --every N``) get their
geometry interpolated between their neighbours in the same coordinates, so the
swapped face does not blink. Image folders are neither smoothed nor filled in
(their frames are unrelated).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from faceswap.alignments import Face
from faceswap.landmarks import bounding_box
from faceswap.media.reader import VideoSource
from faceswap.progress import progress_bar
from faceswap.smooth import FaceMotion, smooth_track

if TYPE_CHECKING:
    from faceswap.track import Track

#: Two faces in consecutive frames belong to one track above this box overlap.
LINK_IOU = 0.3
#: Most unprocessed frames (absent from the alignments) a track is followed across and filled in.
MAX_GAP = 8


@dataclass(frozen=True)
class FaceGeometry:
    """Where one face of one frame is: its alignment matrix and landmarks (frame pixels)."""

    matrix: np.ndarray
    landmarks: np.ndarray


Plan = dict[int, list[FaceGeometry]]


# ----------------------------------------------------------------------------------------------
# Tracks


def link_tracks(frames: dict[int, list[Face]]) -> list[list[tuple[int, int]]]:
    """Link the faces of consecutive processed frames into tracks, by landmark-box overlap.

    Parameters
    ----------
    frames
        Faces of each processed frame. A frame absent from the dict was not
        processed (``extract --every N``); tracks continue across up to
        :data:`MAX_GAP` of them. A processed frame without faces ends every track.

    Returns
    -------
    list of tracks
        Each track is a list of ``(frame index, face index)`` in frame order.
    """
    from faceswap.track import match

    tracks: list[list[tuple[int, int]]] = []
    active: list[tuple[int, tuple[float, float, float, float]]] = []  # (track number, last box)
    previous = None
    for index in sorted(frames):
        boxes = [bounding_box(face.landmarks) for face in frames[index]]
        if previous is None or index - previous > MAX_GAP + 1:
            active = []
        pairs = match([box for _, box in active], boxes, LINK_IOU)
        continued = {d: active[t][0] for t, d in pairs}
        next_active = []
        for number, box in enumerate(boxes):
            track = continued.get(number)
            if track is None:
                track = len(tracks)
                tracks.append([])
            tracks[track].append((index, number))
            next_active.append((track, box))
        active = next_active
        previous = index
    return tracks


def interpolate_track(
    times: np.ndarray, matrices: np.ndarray, landmarks: np.ndarray, between: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A track's geometry at the times ``between`` its frames (linear in pose and shape)."""
    motion = FaceMotion.of(matrices, landmarks)
    pose = np.column_stack([np.interp(between, times, column) for column in motion.pose.T])
    flat = motion.shapes.reshape(len(times), -1)
    shapes = np.column_stack([np.interp(between, times, column) for column in flat.T])
    return FaceMotion(pose, shapes.reshape(len(between), -1, 2), motion.eye).geometry()


def make_plan(
    frames: dict[int, list[Face]],
    frame_times: Sequence[float] | None,
    *,
    smooth: bool,
    wanted: Iterable[int] | None = None,
) -> Plan:
    """Geometry of every face to swap, per frame.

    Parameters
    ----------
    frames
        Faces of each processed frame.
    frame_times
        Time of every frame of the source (seconds); ``None`` for image
        folders, which are neither smoothed nor interpolated.
    smooth
        Smooth each track over time (``--smooth``).
    wanted
        Frames to convert (``None``: all); others are used for smoothing only.

    Frames a track skips because they were not processed (``extract --every
    N``) get geometry interpolated between their neighbours, so a sparse
    alignments file does not make the face blink on and off.
    """
    keep = None if wanted is None else set(wanted)
    plan: Plan = {}
    for track in link_tracks(frames):
        indices = [index for index, _ in track]
        faces = [frames[index][number] for index, number in track]
        matrices = np.array([face.matrix for face in faces])
        landmarks = np.array([face.landmarks for face in faces])
        if frame_times is not None:
            times = np.array([frame_times[index] for index in indices])
            if smooth:
                matrices, landmarks = smooth_track(times, matrices, landmarks)
            skipped = [i for a, b in itertools.pairwise(indices) for i in range(a + 1, b) if i not in frames]
            if skipped:
                between = np.array([frame_times[index] for index in skipped])
                filled = interpolate_track(times, matrices, landmarks, between)
                indices += skipped
                matrices = np.concatenate([matrices, filled[0]])
                landmarks = np.concatenate([landmarks, filled[1]])
        for index, matrix, points in zip(indices, matrices, landmarks, strict=True):
            if keep is None or index in keep:
                plan.setdefault(index, []).append(FaceGeometry(matrix, points))
    return plan


# ----------------------------------------------------------------------------------------------
# Faces found now, without an alignments file


def detect_faces(
    source: VideoSource, windows: Sequence[range], *, progress: bool = True
) -> dict[int, list[Face]]:
    """Find and follow the faces of ``windows`` of a video, as extract does with its defaults.

    Each window is followed afresh (:meth:`faceswap.faces.FaceFinder.follow`).
    """
    from faceswap.faces import FaceFinder

    finder = FaceFinder()
    found: dict[int, list[Face]] = {}
    total = sum(len(window) for window in windows)
    with progress_bar(total, "finding faces", progress) as bar:
        for window in windows:
            for frame, tracks in finder.follow(source.frames(window.start, window.stop)):
                found[frame.index] = [_face(track) for track in tracks]
                bar.update(1)
    return found


def detect_image_faces(images: Iterable[tuple[int, np.ndarray]]) -> dict[int, list[Face]]:
    """Find the faces of unrelated images (full detection on each, left to right)."""
    from faceswap.faces import FaceFinder

    finder = FaceFinder()
    return {index: [_face(track) for track in finder.find(image)] for index, image in images}


def _face(track: Track) -> Face:
    """An alignments-file face from a face found now."""
    return Face(track.box, track.landmarks, track.matrix, score=track.score)
