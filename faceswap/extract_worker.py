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
from faceswap.faces import FaceFinder
from faceswap.identity import FaceEmbedder, distance, identity_of_photos
from faceswap.media.probe import VideoInfo
from faceswap.media.reader import VideoSource, prefetch, read_image
from faceswap.signals import ignore_termination_in_worker
from faceswap.smooth import SMOOTH_RADIUS, smooth_in_window
from faceswap.track import Track, box_width

#: How often (frames) a worker adds its progress to the shared counters.
PROGRESS_EVERY = 8


@dataclass(frozen=True)
class WorkerConfig:
    """What every chunk of one extract run shares (sent once to each worker).

    Every field is given by :func:`faceswap.extract.extract`, from its
    :class:`~faceswap.extract.ExtractOptions`: the defaults live there alone.
    """

    detector: str
    upsample: int
    size: int
    padding: float
    min_size: float
    max_faces: int | None
    blur_threshold: float
    smooth: bool
    identity_threshold: float
    detect_interval: int
    full_scale: float


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
    detector = _preloaded["hog"] if hog else FaceDetector(config.detector)  # type: ignore[arg-type]
    _models["finder"] = FaceFinder(
        detector,
        _preloaded.get("predictor") or LandmarkPredictor(),
        upsample=config.upsample,
        scale=config.full_scale,
        detect_interval=config.detect_interval,
    )
    _models["embedder"] = FaceEmbedder() if with_identity else None


def reference_identity(photos: tuple[str, ...], upsample: int) -> tuple[float, ...]:
    """Mean embedding of the reference photos (run in a worker, whose models are loaded)."""
    models: FaceFinder = _models["finder"]
    finder = FaceFinder(models.detector, models.predictor, upsample=max(1, upsample))
    embedding = identity_of_photos(photos, finder=finder, embedder=_models["embedder"])
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
        self.finder: FaceFinder = _models["finder"]
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
        chunk = self.chunk
        source = _videos.get(chunk.source)
        if source is None:
            # The parent's probe comes with the chunk: probing again would cost each worker 0.1-0.2 s.
            source = _videos[chunk.source] = VideoSource(chunk.source, chunk.info)
        # Frames wait SMOOTH_RADIUS frames for their smoothing window to fill.
        recent: deque[tuple[int, np.ndarray, dict[int, Track]]] = deque(maxlen=2 * SMOOTH_RADIUS + 1)
        frames = prefetch(source.frames(chunk.start, chunk.stop, chunk.step), depth=4)
        for frame, tracks in self.finder.follow(frames):
            recent.append((frame.index, frame.image, {track.number: track for track in tracks}))
            if len(recent) > SMOOTH_RADIUS:
                self._finish_frame(recent, len(recent) - 1 - SMOOTH_RADIUS)
        for position in range(max(0, len(recent) - SMOOTH_RADIUS), len(recent)):
            self._finish_frame(recent, position)
        self._flush_progress()
        return self.result

    def _finish_frame(self, recent: deque, position: int) -> None:
        """Smooth and record the frame at ``position`` of the recent frames."""
        index, image, tracks = recent[position]
        if self.config.smooth:
            landmarks = [{number: track.landmarks for number, track in entry[2].items()} for entry in recent]
            faces = [(track, smooth_in_window(landmarks, position, n)) for n, track in tracks.items()]
        else:
            faces = [(track, track.landmarks) for track in tracks.values()]
        self._record(index, image, faces, None)

    def images(self) -> ChunkResult:
        for index, file in self.chunk.images:
            name = Path(file).name
            try:
                image = read_image(file)
            except MediaError as error:
                self.result.warnings.append(f"skipping {error}")
                self.result.records[index] = FrameRecord([], name=name)
                continue
            faces = [(face, face.landmarks) for face in self.finder.find(image)]
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
