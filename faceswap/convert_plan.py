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
(:func:`smooth_track`, forward-backward One-Euro, :func:`faceswap.smooth.smooth_sequence`):

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
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from faceswap.align import (
    alignment_matrix,
    invert,
    similarity_from_parameters,
    similarity_parameters,
    transform_points,
)
from faceswap.alignments import Face
from faceswap.errors import InputError
from faceswap.landmarks import bounding_box, interocular_distance
from faceswap.media.reader import VideoSource
from faceswap.progress import progress_bar
from faceswap.smooth import smooth_sequence

log = logging.getLogger(__name__)

#: Two faces in consecutive frames belong to one track above this box overlap.
LINK_IOU = 0.3
#: Frames detected before and after each ``--frames`` range, so smoothing has context there.
SMOOTH_CONTEXT = 15
#: Most unprocessed frames (absent from the alignments) a track is followed across and filled in.
MAX_GAP = 8

_RANGE = re.compile(r"^(\d+)(?:-(\d*))?$")


@dataclass(frozen=True)
class FaceGeometry:
    """Where one face of one frame is: its alignment matrix and landmarks (frame pixels)."""

    matrix: np.ndarray
    landmarks: np.ndarray


Plan = dict[int, list[FaceGeometry]]


# ----------------------------------------------------------------------------------------------
# --frames


def parse_frame_ranges(text: str, frame_count: int) -> list[range]:
    """Parse ``--frames`` (``"10-50,90-120"``, ``"7"``, ``"300-"``): inclusive, 0-based frame numbers.

    Ranges reaching past the last frame are cut there, with a warning.

    Raises
    ------
    InputError
        For malformed text, a reversed range, or a range starting past the last frame.
    """
    ranges = []
    for part in text.replace(" ", "").split(","):
        match = _RANGE.match(part)
        if not match:
            raise InputError(f"--frames: {part!r} is not a frame number or range such as 10-50")
        start = int(match.group(1))
        end = frame_count - 1 if match.group(2) == "" else int(match.group(2) or start)
        if end < start:
            raise InputError(f"--frames: range {part} ends before it starts")
        if start >= frame_count:
            raise InputError(f"--frames: {part} starts after the last frame ({frame_count - 1})")
        if end >= frame_count:
            log.warning("--frames: %s cut at the last frame (%d)", part, frame_count - 1)
            end = frame_count - 1
        ranges.append(range(start, end + 1))
    return ranges


def detection_windows(ranges: Sequence[range] | None, frame_count: int) -> list[range]:
    """Frames to detect faces in: the selected ranges widened by :data:`SMOOTH_CONTEXT`, merged."""
    if ranges is None:
        return [range(frame_count)]
    spans = sorted(
        (max(0, r.start - SMOOTH_CONTEXT), min(frame_count, r.stop + SMOOTH_CONTEXT)) for r in ranges
    )
    merged = [list(spans[0])]
    for start, stop in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [range(start, stop) for start, stop in merged]


# ----------------------------------------------------------------------------------------------
# Tracks and smoothing


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


@dataclass
class _Motion:
    """A track's geometry in coordinates where averaging and interpolating are meaningful.

    ``pose`` holds, per frame, the face square's centre (in units of ``eye``,
    the track's median inter-ocular distance in pixels), its log scale and its
    angle (unwrapped); ``shapes`` the landmarks in unit face space.
    """

    pose: np.ndarray
    shapes: np.ndarray
    eye: float

    @classmethod
    def of(cls, matrices: np.ndarray, landmarks: np.ndarray) -> _Motion:
        centres = np.array([transform_points(_CENTRE, invert(m))[0] for m in matrices])
        parameters = np.array([similarity_parameters(m) for m in matrices])
        eye = float(np.median([interocular_distance(points) for points in landmarks]))
        pose = np.column_stack([centres / eye, parameters[:, 0], np.unwrap(parameters[:, 1])])
        shapes = np.array(
            [transform_points(points, m) for points, m in zip(landmarks, matrices, strict=True)]
        )
        return cls(pose, shapes, eye)

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Alignment matrices and frame-pixel landmarks."""
        matrices = np.empty((len(self.pose), 2, 3))
        landmarks = np.empty_like(self.shapes)
        for i, (centre_x, centre_y, log_scale, angle) in enumerate(self.pose):
            matrix = similarity_from_parameters(np.array([log_scale, angle, 0.0, 0.0]))
            matrix[:, 2] = _CENTRE[0] - matrix[:, :2] @ (np.array([centre_x, centre_y]) * self.eye)
            matrices[i] = matrix
            landmarks[i] = transform_points(self.shapes[i], invert(matrix))
        return matrices, landmarks


_CENTRE = np.array([[0.5, 0.5]])


def smooth_track(
    times: np.ndarray, matrices: np.ndarray, landmarks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth one track's pose and shape over time (see the module docstring).

    Parameters
    ----------
    times
        Frame times in seconds, shape ``(n,)``, increasing.
    matrices
        Alignment matrices, shape ``(n, 2, 3)``.
    landmarks
        Landmarks in frame pixels, shape ``(n, 68, 2)``.

    Returns
    -------
    tuple of numpy.ndarray
        Smoothed matrices and landmarks, same shapes.
    """
    if len(times) < 3:
        return matrices, landmarks
    motion = _Motion.of(matrices, landmarks)
    shape_scale = np.array([interocular_distance(shape) for shape in motion.shapes])
    motion.pose = smooth_sequence(motion.pose, times)
    motion.shapes = smooth_sequence(motion.shapes, times, shape_scale)
    return motion.geometry()


def interpolate_track(
    times: np.ndarray, matrices: np.ndarray, landmarks: np.ndarray, between: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A track's geometry at the times ``between`` its frames (linear in pose and shape)."""
    motion = _Motion.of(matrices, landmarks)
    pose = np.column_stack([np.interp(between, times, column) for column in motion.pose.T])
    flat = motion.shapes.reshape(len(times), -1)
    shapes = np.column_stack([np.interp(between, times, column) for column in flat.T])
    return _Motion(pose, shapes.reshape(len(between), -1, 2), motion.eye).geometry()


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
    """Find and follow the faces of ``windows`` of a video, as extract does (detector + tracker).

    Uses :class:`faceswap.track.FaceTracker` with extract's defaults (HOG
    detector, no upsampling); each window is tracked afresh.
    """
    from faceswap.detect import FaceDetector, LandmarkPredictor
    from faceswap.track import FaceTracker

    detector, predictor = FaceDetector("hog"), LandmarkPredictor()
    found: dict[int, list[Face]] = {}
    total = sum(len(window) for window in windows)
    with progress_bar(total, "finding faces", progress) as bar:
        for window in windows:
            tracker = FaceTracker(detector, predictor)
            for frame in source.frames(window.start, window.stop):
                faces = []
                for track in tracker.update(frame.image):
                    faces.append(Face(track.box, track.landmarks, track.matrix, score=track.score))
                found[frame.index] = faces
                bar.update(1)
    return found


def detect_image_faces(images: Iterable[tuple[int, np.ndarray]]) -> dict[int, list[Face]]:
    """Find the faces of unrelated images (full detection on each, left to right)."""
    from faceswap.detect import FaceDetector, LandmarkPredictor

    detector, predictor = FaceDetector("hog"), LandmarkPredictor()
    found: dict[int, list[Face]] = {}
    for index, image in images:
        faces = []
        for detection in detector.detect(image):
            points = predictor(image, detection.box)
            faces.append(Face(detection.box, points, alignment_matrix(points), score=detection.score))
        found[index] = sorted(faces, key=lambda face: face.landmarks[:, 0].min())
    return found
