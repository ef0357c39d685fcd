"""The worker side of ``faceswap extract``: one chunk of frames in, frame records out.

Each worker process loads the dlib models once (:func:`initialise`) and then
processes chunks: a run of consecutive video frames (decoded by its own ffmpeg
from a frame-exact seek, detected at the start and followed from there, see
:mod:`faceswap.track`) or a batch of independent images (full detection on
each). For every face kept it writes the aligned crop and returns the face's
record; the parent process only merges records into the alignments file.

A chunk's result depends on nothing but the chunk (the tracker and the
smoothing filters start afresh at its first frame), so the same chunk gives the
same records whichever worker runs it, and an interrupted run finished with
``--resume`` equals one uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceswap.align import alignment_matrix, crop_face, crop_matrix, transform_points
from faceswap.alignments import Face, FrameRecord
from faceswap.crop_names import crop_file_name
from faceswap.crops import CropInfo, write_crop
from faceswap.detect import FaceDetector, LandmarkPredictor
from faceswap.errors import FaceswapError, MediaError
from faceswap.face_measures import sharpness
from faceswap.identity import FaceEmbedder, distance, identity_of_photos
from faceswap.landmarks import interocular_distance
from faceswap.media.probe import VideoInfo
from faceswap.media.reader import VideoSource, prefetch, read_image
from faceswap.signals import ignore_termination_in_worker
from faceswap.track import DETECT_INTERVAL, FaceTracker, Track, box_width

# Temporal smoothing of landmarks: a centred, edge-preserving (bilateral)
# average over SMOOTH_RADIUS processed frames on each side, computed per point:
# a neighbour's weight falls with its distance in time (Gaussian, SMOOTH_SIGMA_FRAMES)
# and with how far that point moved (Gaussian, SMOOTH_SIGMA_IOD inter-ocular
# distances), so sub-pixel jitter is averaged away while a mouth that opens
# fast is not blurred. Being centred, it has no lag (frames leave the worker
# SMOOTH_RADIUS frames late). Measured with scripts/bench_extract.py
# --tune-smoothing (followed landmarks; jitter = mean second difference,
# distance = mean distance to per-frame detection, both in % of the
# inter-ocular distance): jitter d18 1.88 -> 0.44, d3 1.52 -> 0.45,
# d6 5.00 -> 2.62 while the distance did not grow (d18 1.92 -> 1.85,
# d3 0.88 -> 0.84, d6 3.01 -> 3.00). Since faces are followed in boxes placed
# as HOG placed them (faceswap.track), d6 measures jitter 5.00 -> 2.71 and
# distance 1.86 -> 1.92: per-frame detection's own jitter (4.87) is what the
# smoothing takes away. The causal One-Euro filter
# (faceswap.smooth, best setting min_cutoff 3, beta 4) lags instead: jitter
# d3 0.66, d6 2.20 but distance d3 1.61, d6 3.83.
SMOOTH_RADIUS = 2
SMOOTH_SIGMA_FRAMES = 1.0
SMOOTH_SIGMA_IOD = 0.08


def smooth_window(window: np.ndarray, centre: int, interocular: float) -> np.ndarray:
    """Bilateral temporal average of one face's landmarks (see :data:`SMOOTH_RADIUS`).

    Parameters
    ----------
    window
        ``(n, 68, 2)`` landmarks of consecutive processed frames.
    centre
        Position in ``window`` of the frame being smoothed.
    interocular
        The face's inter-ocular distance in that frame (px).
    """
    offsets = np.arange(len(window)) - centre
    moved = np.linalg.norm(window - window[centre], axis=2) / max(interocular, 1e-6)
    weights = np.exp(
        -(offsets[:, None] ** 2) / (2 * SMOOTH_SIGMA_FRAMES**2) - moved**2 / (2 * SMOOTH_SIGMA_IOD**2)
    )
    return (weights[:, :, None] * window).sum(axis=0) / weights.sum(axis=0)[:, None]


#: How often (frames) a worker adds its progress to the shared counters.
PROGRESS_EVERY = 8


@dataclass(frozen=True)
class WorkerConfig:
    """What every chunk of one extract run shares (sent once to each worker)."""

    detector: str = "hog"
    upsample: int = 0
    size: int = 256
    padding: float = 0.1875
    min_size: float = 0.0
    max_faces: int | None = None
    blur_threshold: float = 0.0
    smooth: bool = True
    identity_threshold: float = 0.6
    detect_interval: int = DETECT_INTERVAL
    full_scale: float = 1.0


@dataclass(frozen=True)
class Chunk:
    """A unit of work: frames ``[start, stop)`` (every ``step``-th) of a video, or a list of images."""

    number: int
    source: str
    out_dir: str
    stem: str
    start: int = 0
    stop: int = 0
    step: int = 1
    images: tuple[tuple[int, str], ...] = ()
    fps: float = 30.0
    reference: tuple[float, ...] | None = None
    #: The video's probe (``None``: the worker probes it).
    info: VideoInfo | None = None


@dataclass
class ChunkResult:
    """Records of a chunk's frames and what was counted on the way."""

    number: int
    records: dict[int, FrameRecord] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


# Per-process state, set by initialise().
_models: dict[str, Any] = {}
_progress: Any = None
_videos: dict[str, VideoSource] = {}
# The HOG detector and the landmark predictor, when the fork server that forks
# the workers loaded them before forking (see preload_models).
_preloaded: dict[str, Any] = {}


def preload_models() -> None:
    """Load the HOG detector and the 68-point predictor into this process, once.

    ``faceswap extract`` has its fork server do this (by importing
    :mod:`faceswap.extract_preload`): every worker forked from it then starts
    with the models in memory (shared copy-on-write) instead of spending about
    a second of CPU loading its own.
    """
    if not _preloaded:
        _preloaded["hog"] = FaceDetector("hog")
        _preloaded["predictor"] = LandmarkPredictor()


#: Exit status of a worker whose start failed; its one-line reason is in the shared error buffer.
START_FAILED = 3


def initialise(config: WorkerConfig, progress: Any, with_identity: bool, error: Any = None) -> None:
    """Load the models once per worker process (pool initializer).

    Ctrl-C and SIGHUP are left to the parent, which saves the finished chunks
    and then stops the workers (see :func:`faceswap.signals.ignore_termination_in_worker`);
    OpenCV runs single-threaded because the workers already use every core.
    A failure is written, as one line, to ``error`` (a shared character
    array) and ends the worker with :data:`START_FAILED`, for the parent to
    report instead of a traceback.
    """
    ignore_termination_in_worker()
    try:
        _load_models(config, progress, with_identity)
    except BaseException as failure:
        report_failure(error, failure)
        os._exit(START_FAILED)


def report_failure(buffer: Any, failure: BaseException) -> None:
    """Write ``failure`` as one line into the shared character array ``buffer`` (first failure wins)."""
    if buffer is None:
        return
    line = " ".join(f"{type(failure).__name__}: {failure}".split()).encode("utf-8", "replace")
    with buffer.get_lock():
        if not buffer.value:
            buffer.value = line[: len(buffer) - 1]


def _load_models(config: WorkerConfig, progress: Any, with_identity: bool) -> None:
    cv2.setNumThreads(1)
    global _progress
    _progress = progress
    _models["config"] = config
    hog = config.detector == "hog" and "hog" in _preloaded
    _models["detector"] = _preloaded["hog"] if hog else FaceDetector(config.detector)  # type: ignore[arg-type]
    _models["predictor"] = _preloaded.get("predictor") or LandmarkPredictor()
    _models["embedder"] = FaceEmbedder() if with_identity else None


def reference_identity(photos: tuple[str, ...], upsample: int) -> tuple[float, ...]:
    """Mean embedding of the reference photos (run in a worker, whose models are loaded)."""
    embedding = identity_of_photos(
        photos,
        detector=_models["detector"],
        predictor=_models["predictor"],
        embedder=_models["embedder"],
        upsample=max(1, upsample),
    )
    return tuple(float(v) for v in embedding)


def run_chunk(chunk: Chunk) -> ChunkResult:
    """Process one chunk; user-fixable problems come back as ``error`` lines, never as exceptions."""
    cpu = _cpu_seconds()
    try:
        result = _ChunkRun(chunk).images() if chunk.images else _ChunkRun(chunk).video()
    except FaceswapError as error:
        return ChunkResult(chunk.number, error=str(error))
    except MemoryError:
        return ChunkResult(chunk.number, error="out of memory in a worker (try fewer --jobs)")
    result.counts["cpu_ms"] = round((_cpu_seconds() - cpu) * 1000)
    return result


def _cpu_seconds() -> float:
    """CPU time of this worker and of its finished children (its ffmpeg decoders)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _add_progress(frames: int, faces: int) -> None:
    if _progress is None:
        return
    with _progress.get_lock():
        _progress[0] += frames
        _progress[1] += faces


class _ChunkRun:
    """State of one chunk being processed."""

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk
        self.config: WorkerConfig = _models["config"]
        self.detector: FaceDetector = _models["detector"]
        self.predictor: LandmarkPredictor = _models["predictor"]
        self.embedder: FaceEmbedder | None = _models["embedder"]
        self.reference = None if chunk.reference is None else np.asarray(chunk.reference)
        self.result = ChunkResult(chunk.number)
        self.counts = dict.fromkeys(
            ("frames", "frames_with_faces", "faces", "saved", "blurry", "too_small", "wrong_person", "extra"),
            0,
        )
        self.result.counts = self.counts
        self._pending = [0, 0]

    # -- sources ---------------------------------------------------------------------------------

    def video(self) -> ChunkResult:
        chunk, config = self.chunk, self.config
        source = _videos.get(chunk.source)
        if source is None:
            # The parent's probe comes with the chunk: probing again would cost each worker 0.1-0.2 s.
            source = _videos[chunk.source] = VideoSource(chunk.source, chunk.info)
        tracker = FaceTracker(
            self.detector,
            self.predictor,
            upsample=config.upsample,
            detect_interval=config.detect_interval,
            full_scale=config.full_scale,
        )
        # Frames wait SMOOTH_RADIUS frames for their smoothing window to fill.
        recent: deque[tuple[int, np.ndarray, dict[int, Track]]] = deque(maxlen=2 * SMOOTH_RADIUS + 1)
        for frame in prefetch(source.frames(chunk.start, chunk.stop, chunk.step), depth=4):
            tracks = {track.number: dataclasses.replace(track) for track in tracker.update(frame.image)}
            recent.append((frame.index, frame.image, tracks))
            if len(recent) > SMOOTH_RADIUS:
                self._finish_frame(recent, len(recent) - 1 - SMOOTH_RADIUS)
        for position in range(max(0, len(recent) - SMOOTH_RADIUS), len(recent)):
            self._finish_frame(recent, position)
        self._flush_progress()
        return self.result

    def _finish_frame(self, recent: deque, position: int) -> None:
        """Smooth and record the frame at ``position`` of the recent frames."""
        index, image, tracks = recent[position]
        faces = []
        for number, track in tracks.items():
            landmarks = track.landmarks
            if self.config.smooth:
                window = [
                    entry[2][number].landmarks
                    for entry in list(recent)[max(0, position - SMOOTH_RADIUS) : position + SMOOTH_RADIUS + 1]
                    if number in entry[2]
                ]
                if len(window) > 1:
                    centre = next(i for i, lm in enumerate(window) if lm is track.landmarks)
                    landmarks = smooth_window(np.stack(window), centre, interocular_distance(track.landmarks))
            faces.append((track, landmarks))
        self._record(index, image, faces, None)

    def images(self) -> ChunkResult:
        config = self.config
        for index, file in self.chunk.images:
            name = Path(file).name
            try:
                image = read_image(file)
            except MediaError as error:
                self.result.warnings.append(f"skipping {error}")
                self.result.records[index] = FrameRecord([], name=name)
                continue
            detections = self.detector.detect(image, upsample=config.upsample, scale=config.full_scale)
            faces = []
            for number, detection in enumerate(detections):
                landmarks = self.predictor(image, detection.box)
                track = Track(number, landmarks, alignment_matrix(landmarks), detection.box, detection.score)
                faces.append((track, landmarks))
            faces.sort(key=lambda pair: pair[1][:, 0].min())  # left to right
            self._record(index, image, faces, name)
        self._flush_progress()
        return self.result

    # -- one frame -------------------------------------------------------------------------------

    def _identity(self, image: np.ndarray, track: Track) -> float | None:
        """Distance of the track's face to the reference, computed once per track."""
        if self.reference is None or self.embedder is None:
            return None
        if "identity" not in track.state:
            embedding = self.embedder.embed(image, track.landmarks)
            track.state["identity"] = distance(embedding, self.reference)
        return track.state["identity"]  # type: ignore[return-value]

    def _record(
        self, index: int, image: np.ndarray, faces: list[tuple[Track, np.ndarray]], name: str | None
    ) -> None:
        config, counts = self.config, self.counts
        counts["frames"] += 1
        kept = []
        for track, landmarks in faces:
            identity = self._identity(image, track)
            if identity is not None and identity > config.identity_threshold:
                counts["wrong_person"] += 1
            elif box_width(track.box) < config.min_size:
                counts["too_small"] += 1
            else:
                kept.append((track, landmarks, identity))
        if config.max_faces is not None and len(kept) > config.max_faces:
            largest = sorted(kept, key=lambda item: box_width(item[0].box), reverse=True)[: config.max_faces]
            counts["extra"] += len(kept) - len(largest)
            kept = [item for item in kept if any(item is other for other in largest)]
        record = FrameRecord([], name=name)
        for face_index, (track, landmarks, identity) in enumerate(kept):
            record.faces.append(self._face(index, face_index, image, track, landmarks, identity))
        counts["faces"] += len(record.faces)
        counts["frames_with_faces"] += bool(record.faces)
        self.result.records[index] = record
        self._pending[0] += 1
        self._pending[1] += len(record.faces)
        if self._pending[0] >= PROGRESS_EVERY:
            self._flush_progress()

    def _face(
        self,
        index: int,
        face_index: int,
        image: np.ndarray,
        track: Track,
        landmarks: np.ndarray,
        identity: float | None,
    ) -> Face:
        config, chunk = self.config, self.chunk
        matrix = track.matrix if landmarks is track.landmarks else alignment_matrix(landmarks)
        crop = crop_face(image, matrix, config.size, config.padding)
        blur = sharpness(crop, config.padding)
        crop_name = None
        if blur < config.blur_threshold:
            self.counts["blurry"] += 1
        else:
            crop_name = crop_file_name(chunk.stem, index, face_index)
            info = CropInfo(
                landmarks=transform_points(landmarks, crop_matrix(matrix, config.size, config.padding)),
                size=config.size,
                padding=config.padding,
                source=Path(chunk.source).name,
                frame=index,
                face=face_index,
            )
            write_crop(Path(chunk.out_dir) / crop_name, crop, info)
            self.counts["saved"] += 1
        return Face(
            box=track.box,
            landmarks=landmarks,
            matrix=matrix,
            blur=blur,
            score=track.score,
            identity_distance=identity,
            crop=crop_name,
        )

    def _flush_progress(self) -> None:
        _add_progress(*self._pending)
        self._pending = [0, 0]
