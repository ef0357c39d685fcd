"""Following faces from frame to frame, so the detector runs only now and then.

The 68-point predictor needs a box that looks like a HOG detection box. In a
video the previous frame's landmarks give one (:func:`box_from_landmarks`):
placing the predictor there costs about 1 to 2 ms, where a full-resolution
HOG detection costs 20 ms or more. :class:`FaceTracker` runs the detector

* on the first frame and whenever nothing is being followed, at full
  sensitivity (the caller's scale and upsampling);
* every :data:`DETECT_INTERVAL` processed frames, on a frame downscaled so that
  the smallest followed face is still :data:`DETECTION_FACE_PX` px wide (HOG's
  smallest face is about 80 px), by a whole number of steps of HOG's own image
  pyramid (:data:`PYRAMID_STEP`), so that its boxes are nearly the boxes a
  full-resolution detection would give;
* whenever following fails (:func:`follow_failed`: the landmarks' shape is not a
  face's, the face changed size abruptly or slid out of the frame); a face the
  downscaled detector does not confirm is looked for once more at full
  sensitivity before it is let go.

Detections are matched to followed faces by box overlap (:func:`match`); a
detection that matches nothing starts a new track. Each detection also tells
where HOG puts its box on that face (:func:`placement_of`), and the face is
followed with that placement until the next detection: the predictor's
landmarks depend on its box by 2 to 3 % of the inter-ocular distance, and a box
placed as HOG places it on this face keeps them closer to per-frame
detection than the average placement does (``scripts/bench_extract.py``
measures it). A track that a detection round does not confirm is dropped:
dlib's predictor draws a face-like shape into any box, so only the detector
can say that a face is still there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from faceswap.align import MEAN_FACE, alignment_matrix, transform_points
from faceswap.landmarks import INNER

if TYPE_CHECKING:  # dlib only where faces are found: training measures crops without it
    from faceswap.detect import Box, Detection, FaceDetector, LandmarkPredictor

# Where dlib's HOG detector puts its (square) box relative to the face, in unit
# face space (see faceswap.align): centre and half side, the medians of
# full-resolution HOG detections on the test clips (scripts/fit_follow_box.py
# fits them). The half side scatters around its median because HOG box sizes
# come in the steps of its image pyramid.
BOX_CENTRE = (0.5016, 0.5343)
BOX_HALF_SIDE = 0.6540

#: A placement taken from a detection is trusted this far from the average:
#: centre within this distance (unit face space) ...
MAX_PLACEMENT_SHIFT = 0.1
#: ... and half side within this factor either way (HOG's box sizes come in steps of 1.2).
MAX_PLACEMENT_SCALE = 1.25

#: Re-detect every this many processed frames while faces are being followed.
#: Each detection renews the face's placement: the longer one is kept, the
#: further the followed landmarks drift from per-frame detection's, while a
#: downscaled detection costs only a few ms (``scripts/bench_extract.py``
#: measures both).
DETECT_INTERVAL = 4
#: Width (px) the smallest followed face keeps at least on the downscaled detection frame.
DETECTION_FACE_PX = 110
#: Scale between consecutive levels of the image pyramid dlib's HOG detector scans.
PYRAMID_STEP = 5 / 6
#: Matching: a detection and a followed face are the same face above this overlap.
MATCH_IOU = 0.3
#: Two tracks overlapping more than this follow the same face; the younger goes.
DUPLICATE_IOU = 0.5
#: Shape check: RMS distance (unit face space) of the inner landmarks from the
#: mean face after alignment. Real faces measure 0.045 (median) to 0.075 (max) in
#: the test clips; the predictor gives about 0.1 and more when it has lost the face.
MAX_SHAPE_RESIDUAL = 0.1
#: Largest change of face size from one processed frame to the next (ratio).
MAX_SCALE_CHANGE = 1.25
#: A face whose box lies less than this fraction inside the frame is let go.
MIN_INSIDE_FRACTION = 0.5


#: A box's placement relative to a face: centre (u, v) and half side in unit face space.
Placement = tuple[float, float, float]
DEFAULT_PLACEMENT: Placement = (*BOX_CENTRE, BOX_HALF_SIDE)


def box_from_landmarks(
    landmarks: np.ndarray, matrix: np.ndarray | None = None, placement: Placement = DEFAULT_PLACEMENT
) -> Box:
    """The box dlib's HOG detector would most likely give the face with ``landmarks``.

    Parameters
    ----------
    landmarks
        ``(68, 2)`` landmarks in frame pixels.
    matrix
        Their alignment matrix, when already computed.
    placement
        Where the box sits relative to the face (:func:`placement_of`); by
        default where HOG puts it on average.
    """
    if matrix is None:
        matrix = alignment_matrix(landmarks)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    centre = np.linalg.solve(matrix[:, :2], np.asarray(placement[:2]) - matrix[:, 2])
    half = placement[2] / scale
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)


def placement_of(box: Box, matrix: np.ndarray) -> Placement:
    """Where ``box`` sits relative to the face with alignment ``matrix``.

    The inverse of :func:`box_from_landmarks`; ``scripts/fit_follow_box.py``
    fits :data:`BOX_CENTRE` and :data:`BOX_HALF_SIDE` with it.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    centre = transform_points(np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]), matrix)[0]
    return (float(centre[0]), float(centre[1]), (box[2] - box[0]) / 2 * scale)


def trusted_placement(placement: Placement) -> Placement:
    """``placement`` held within :data:`MAX_PLACEMENT_SHIFT` and :data:`MAX_PLACEMENT_SCALE` of the average.

    A detection box far off its usual place (a pyramid step too large, a box
    that caught half the face) then misplaces the following less.
    """
    u, v, half = placement
    mean_u, mean_v, mean_half = DEFAULT_PLACEMENT
    return (
        float(np.clip(u, mean_u - MAX_PLACEMENT_SHIFT, mean_u + MAX_PLACEMENT_SHIFT)),
        float(np.clip(v, mean_v - MAX_PLACEMENT_SHIFT, mean_v + MAX_PLACEMENT_SHIFT)),
        float(np.clip(half, mean_half / MAX_PLACEMENT_SCALE, mean_half * MAX_PLACEMENT_SCALE)),
    )


def pyramid_scale(wanted: float, base: float = 1.0) -> float:
    """The scale ``base · PYRAMID_STEP**k`` (k a whole number >= 0) nearest above ``wanted``.

    HOG's boxes on a frame downscaled by whole pyramid steps come in the same
    sizes as on the full frame (measured: within 3 to 4 px of them for a face
    of 260 px), while an arbitrary scale shifts every box size.
    """
    if wanted >= base:
        return base
    steps = math.floor(math.log(wanted / base) / math.log(PYRAMID_STEP) + 1e-9)  # exact steps stay
    return base * PYRAMID_STEP**steps


def box_width(box: Box) -> float:
    """Width of a box in pixels."""
    return box[2] - box[0]


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return inter / (union - inter)


def inside_fraction(box: Box, width: int, height: int) -> float:
    """Fraction of the box's area that lies inside a ``width`` x ``height`` frame."""
    inner = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], width), min(box[3], height))
    area = (box[2] - box[0]) * (box[3] - box[1])
    if inner[2] <= inner[0] or inner[3] <= inner[1] or area <= 0:
        return 0.0
    return (inner[2] - inner[0]) * (inner[3] - inner[1]) / area


def shape_residual(landmarks: np.ndarray, matrix: np.ndarray) -> float:
    """RMS distance of the aligned inner landmarks from the mean face (unit face space)."""
    aligned = transform_points(landmarks[INNER.start : INNER.stop], matrix)
    return float(np.sqrt(((aligned - MEAN_FACE) ** 2).sum(axis=1).mean()))


def match(
    tracked: Sequence[Box], detected: Sequence[Box], min_iou: float = MATCH_IOU
) -> list[tuple[int, int]]:
    """Pair followed faces with detections, greedily by overlap.

    Returns
    -------
    list of (track index, detection index)
        Each index used at most once; pairs overlap by at least ``min_iou``.
    """
    candidates = sorted(
        (
            (iou(track_box, detection_box), t, d)
            for t, track_box in enumerate(tracked)
            for d, detection_box in enumerate(detected)
        ),
        reverse=True,
    )
    pairs: list[tuple[int, int]] = []
    used_tracks: set[int] = set()
    used_detections: set[int] = set()
    for overlap, t, d in candidates:
        if overlap < min_iou:
            break
        if t in used_tracks or d in used_detections:
            continue
        pairs.append((t, d))
        used_tracks.add(t)
        used_detections.add(d)
    return pairs


def follow_failed(
    landmarks: np.ndarray, matrix: np.ndarray, previous_width: float, box: Box, frame_size: tuple[int, int]
) -> bool:
    """Whether landmarks placed from the previous frame's box have lost the face.

    Parameters
    ----------
    landmarks, matrix
        The new landmarks and their alignment matrix.
    previous_width
        Width of the face's box in the previous processed frame.
    box
        The box derived from the new landmarks.
    frame_size
        ``(width, height)`` of the frame.
    """
    if shape_residual(landmarks, matrix) > MAX_SHAPE_RESIDUAL:
        return True
    ratio = box_width(box) / max(previous_width, 1e-6)
    if not 1 / MAX_SCALE_CHANGE <= ratio <= MAX_SCALE_CHANGE:
        return True
    return inside_fraction(box, *frame_size) < MIN_INSIDE_FRACTION


@dataclass
class Track:
    """One face being followed.

    Attributes
    ----------
    number
        Unique within one :class:`FaceTracker` (in order of appearance).
    landmarks
        The predictor's landmarks in the last processed frame (not smoothed).
    matrix
        Their alignment matrix.
    box
        HOG-like box derived from them (where the next frame's search starts).
    score
        Detector score when the face was detected in the last processed frame,
        ``None`` when it was followed.
    placement
        Where the last detection put its box on this face (see
        :func:`placement_of`); ``box`` is placed so.
    state
        Free slot for the caller (extract keeps the identity decision there).
    """

    number: int
    landmarks: np.ndarray
    matrix: np.ndarray
    box: Box
    score: float | None
    placement: Placement = DEFAULT_PLACEMENT
    state: dict[str, object] = field(default_factory=dict)


class FaceTracker:
    """Detect faces now and then and follow them in between (one sequence of frames).

    Parameters
    ----------
    detector, predictor
        dlib models (loaded once by the caller).
    upsample
        Upsampling for full-sensitivity detection.
    detect_interval
        Re-detect every this many processed frames (1 detects every frame).
    full_scale
        Scale of "full sensitivity" detection (``< 1`` when a minimum face size
        makes the full resolution unnecessary).
    """

    def __init__(
        self,
        detector: FaceDetector,
        predictor: LandmarkPredictor,
        *,
        upsample: int = 0,
        detect_interval: int = DETECT_INTERVAL,
        full_scale: float = 1.0,
    ) -> None:
        self.detector = detector
        self.predictor = predictor
        self.upsample = upsample
        self.detect_interval = max(1, detect_interval)
        self.full_scale = full_scale
        self.tracks: list[Track] = []
        self._since_detection = 0
        self._next_number = 0
        #: Detector runs so far (full sensitivity, downscaled), for statistics.
        self.detections = {"full": 0, "scaled": 0}

    def reset(self) -> None:
        """Forget every track (the next frame is detected at full sensitivity)."""
        self.tracks = []
        self._since_detection = 0

    def _detect(self, image: np.ndarray, full: bool) -> tuple[list[Detection], bool]:
        """Run the detector; returns the detections and whether it ran at full sensitivity."""
        scale, upsample = self.full_scale, self.upsample
        if not full and self.tracks:
            smallest = min(box_width(track.box) for track in self.tracks)
            # Each upsampling step lets the detector find faces half as wide.
            base = scale * 2**upsample
            scaled = pyramid_scale(DETECTION_FACE_PX / max(smallest, 1.0), base)
            if scaled < base:
                scale, upsample = scaled, 0
        full = scale == self.full_scale and upsample == self.upsample
        self.detections["full" if full else "scaled"] += 1
        # Downscaled rounds run on the gray frame: cheaper, and as close to per-frame detection.
        return self.detector.detect(image, upsample=upsample, scale=scale, gray=not full), full

    def _new_track(self, image: np.ndarray, detection: Detection) -> Track:
        track = Track(self._next_number, np.zeros((68, 2)), np.zeros((2, 3)), detection.box, None)
        self._next_number += 1
        return self._place(track, image, detection)

    def _place(self, track: Track, image: np.ndarray, detection: Detection) -> Track:
        """Landmarks in the detection's box, and the placement the face is followed with from here."""
        track.landmarks = self.predictor(image, detection.box)
        track.matrix = alignment_matrix(track.landmarks)
        track.score = detection.score
        # The placement is renewed at every detection round, and held near the
        # average: a box a pyramid step off, kept for a whole chunk, would
        # misplace the face by a quarter of its inter-ocular distance or more.
        track.placement = trusted_placement(placement_of(detection.box, track.matrix))
        track.box = box_from_landmarks(track.landmarks, track.matrix, track.placement)
        return track

    def update(self, image: np.ndarray) -> list[Track]:
        """Process the next frame; returns the faces in it (tracks, oldest first).

        Tracks that end are simply absent from the result; a new track has a
        new :attr:`Track.number`.
        """
        self._since_detection += 1
        if not self.tracks or self._since_detection >= self.detect_interval:
            # A detection round places each face's landmarks in its detection box,
            # so they are not predicted twice.
            self._detection_round(image, full=not self.tracks)
            return list(self.tracks)
        height, width = image.shape[:2]
        followed: list[Track] = []
        for track in self.tracks:
            landmarks = self.predictor(image, track.box)
            matrix = alignment_matrix(landmarks)
            box = box_from_landmarks(landmarks, matrix, track.placement)
            if not follow_failed(landmarks, matrix, box_width(track.box), box, (width, height)):
                track.landmarks, track.matrix, track.box, track.score = landmarks, matrix, box, None
                followed.append(track)
        if len(followed) < len(self.tracks):
            # A face lost while following is looked for at full sensitivity at once.
            self.tracks = followed
            self._detection_round(image, full=True, followed=True)
        return list(self.tracks)

    def _detection_round(self, image: np.ndarray, full: bool, followed: bool = False) -> None:
        """Detect, confirm the tracks the detector finds, drop the others, start new ones.

        ``followed`` says that the tracks' landmarks are already this frame's;
        otherwise they are the previous frame's, and each confirmed face's
        landmarks are placed in its detection box (as per-frame detection would).
        """
        self._since_detection = 0
        detections, was_full = self._detect(image, full)
        pairs = match([track.box for track in self.tracks], [d.box for d in detections])
        if len(pairs) < len(self.tracks) and not was_full:
            # A followed face the downscaled detector did not confirm: look once
            # more at full sensitivity before letting it go.
            detections, was_full = self._detect(image, full=True)
            pairs = match([track.box for track in self.tracks], [d.box for d in detections])
        confirmed = []
        for t, d in pairs:
            track = self.tracks[t]
            if followed:
                track.score = detections[d].score
                # Follow on with the box placed where HOG placed it this time.
                track.placement = trusted_placement(placement_of(detections[d].box, track.matrix))
                track.box = box_from_landmarks(track.landmarks, track.matrix, track.placement)
            else:
                self._place(track, image, detections[d])
            confirmed.append(track)
        matched = {d for _, d in pairs}
        for d, detection in enumerate(detections):
            if d in matched:
                continue
            track = self._new_track(image, detection)
            if all(iou(track.box, other.box) <= DUPLICATE_IOU for other in confirmed):
                confirmed.append(track)
        self.tracks = sorted(confirmed, key=lambda track: track.number)
