"""Finding faces: detect them, place their 68 landmarks, align them; in one image or through a video.

Every part of faceswap that needs faces gets them here, from one
:class:`FaceFinder` holding dlib's detector and landmark predictor (loaded
once) and the detection settings:

* :meth:`FaceFinder.find`: every face of one image, left to right (image
  folders, where frames are unrelated);
* :meth:`FaceFinder.largest`: the largest face of one image (photos of one person);
* :meth:`FaceFinder.follow`: the faces of consecutive video frames, detected
  now and then and followed in between (:class:`faceswap.track.FaceTracker`);
* :class:`LargestFaceSearch`: the largest face of each frame of a clip, each
  detected afresh at a scale adapted to the face found last (score, which must
  not inherit a tracker's behaviour from the clip it measures).

A face is a :class:`faceswap.track.Track`: landmarks and alignment matrix in
the pixels of the image, the box the landmarks were placed in, and the
detector's score (``None`` for a face followed rather than detected).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from faceswap.align import alignment_matrix
from faceswap.detect import Detection, FaceDetector, LandmarkPredictor
from faceswap.track import DETECT_INTERVAL, FaceTracker, Track

if TYPE_CHECKING:
    from faceswap.media.reader import Frame

#: Below this width (px) of the last face found, :class:`LargestFaceSearch` searches at full resolution.
SCALED_SEARCH_MIN_WIDTH = 160
#: Width (px) a face found last is scaled to for the next frame's search (HOG finds faces from about 80 px).
SCALED_SEARCH_FACE_PX = 120


class FaceFinder:
    """dlib's face detector and landmark predictor, with the settings to find faces by.

    Parameters
    ----------
    detector, predictor
        The dlib models; loaded here (HOG detector, 68-point predictor) when
        not given. Loading takes about a second, so callers that find faces
        often pass models they hold.
    upsample
        dlib's upsampling steps for detection (each finds faces half as wide).
    scale
        Detect on the image resized by this factor (``< 1`` when a minimum face
        size makes the full resolution unnecessary).
    detect_interval
        In :meth:`follow`: re-detect every this many frames (1 detects every frame).
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        predictor: LandmarkPredictor | None = None,
        *,
        upsample: int = 0,
        scale: float = 1.0,
        detect_interval: int = DETECT_INTERVAL,
    ) -> None:
        self.detector = detector if detector is not None else FaceDetector("hog")
        self.predictor = predictor if predictor is not None else LandmarkPredictor()
        self.upsample = upsample
        self.scale = scale
        self.detect_interval = detect_interval

    def detect(self, image: np.ndarray, *, scale: float | None = None) -> list[Detection]:
        """Detections in an RGB image, highest score first (boxes in the image's pixels).

        ``scale`` overrides the finder's own for this search.
        """
        scale = self.scale if scale is None else scale
        return self.detector.detect(image, upsample=self.upsample, scale=scale)

    def place(self, image: np.ndarray, detection: Detection, number: int = 0) -> Track:
        """The face of one detection: landmarks placed in its box, and their alignment matrix."""
        landmarks = self.predictor(image, detection.box)
        return Track(number, landmarks, alignment_matrix(landmarks), detection.box, detection.score)

    def find(self, image: np.ndarray) -> list[Track]:
        """Every face of an image, left to right (by leftmost landmark).

        Each face is numbered by its detection's rank (highest score 0).
        """
        faces = [self.place(image, detection, number) for number, detection in enumerate(self.detect(image))]
        return sorted(faces, key=lambda face: face.landmarks[:, 0].min())

    def largest(self, image: np.ndarray) -> Track | None:
        """The face with the widest detection box (the best scored among equals), or ``None``."""
        detections = self.detect(image)
        if not detections:
            return None
        return self.place(image, max(detections, key=lambda detection: detection.width))

    def follow(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, list[Track]]]:
        """The faces of consecutive frames of one video, followed from frame to frame.

        A fresh :class:`faceswap.track.FaceTracker` starts at the first frame,
        so the result depends on the frames given and nothing before them.
        Each frame's faces are snapshots (oldest track first), safe to keep
        while later frames are processed; a face keeps its
        :attr:`~faceswap.track.Track.number` (and shares its
        :attr:`~faceswap.track.Track.state`) for as long as it is followed.
        """
        tracker = FaceTracker(
            self.detector,
            self.predictor,
            upsample=self.upsample,
            detect_interval=self.detect_interval,
            full_scale=self.scale,
        )
        for frame in frames:
            yield frame, [dataclasses.replace(track) for track in tracker.update(frame.image)]


class LargestFaceSearch:
    """The largest face of each image of a sequence, or the one nearest a given face.

    Each image is searched afresh (no following), on a downscaled image when
    the face found last was wider than :data:`SCALED_SEARCH_MIN_WIDTH` (the
    HOG detector needs faces of about 80 px): that keeps long, high-resolution
    clips affordable without missing small faces, for when the downscaled
    search finds nothing the full-resolution one runs.
    """

    def __init__(self, finder: FaceFinder) -> None:
        self.finder = finder
        self._last_width: float | None = None

    def find(self, image: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
        """``(68, 2)`` landmarks of the largest face (or of the one nearest ``near``), or ``None``."""
        detections = []
        if self._last_width and self._last_width > SCALED_SEARCH_MIN_WIDTH:
            detections = self.finder.detect(image, scale=SCALED_SEARCH_FACE_PX / self._last_width)
        if not detections:
            detections = self.finder.detect(image, scale=1.0)
        if not detections:
            self._last_width = None
            return None
        if near is not None:
            centre = near.mean(axis=0)

            def offset(detection: Detection) -> float:
                box = detection.box
                return float(np.hypot((box[0] + box[2]) / 2 - centre[0], (box[1] + box[3]) / 2 - centre[1]))

            best = min(detections, key=offset)
        else:
            best = max(detections, key=lambda detection: detection.width)
        self._last_width = best.width
        return self.finder.predictor(image, best.box)
