"""The convert pipeline's stages: decode and crop, predict, blend and write (see :mod:`faceswap.convert`).

Stage 1 (:func:`decode`) runs in a prefetch thread, stage 2 (:func:`predict`)
in the caller's, stage 3 (:class:`_BlendWriter`) in its own thread; each holds
at most :func:`pipeline_depth` frames.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from faceswap.align import DEFAULT_CROP_SIZE, LEGACY, crop_face, face_region, model_padding
from faceswap.blend import BlendOptions, SwappedFace, paste_faces
from faceswap.convert_options import ConvertOptions
from faceswap.convert_plan import FaceGeometry, Plan
from faceswap.media.reader import Frame, FrameSource, prefetch
from faceswap.media.writer import FrameWriter
from faceswap.progress import progress_bar

#: Decoded frames held in the pipeline at once stay below about this many bytes (4K frames: 10 a stage).
IN_FLIGHT_BYTES = 768 * 1024**2


class FaceModel(Protocol):
    """What convert needs of a model (:class:`faceswap.swap_model.SwapModel`).

    ``centering`` names the square it sees and paints (:data:`faceswap.align.CENTERINGS`);
    a stand-in without one is taken as ``legacy``.
    """

    input_size: int
    centering: str

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        """Faces and masks, ``float32`` in ``[0, 1]``, for ``uint8`` aligned faces."""
        ...


def centering_of(model: FaceModel) -> str:
    """The model's centering; ``legacy`` for a stand-in that names none."""
    return getattr(model, "centering", LEGACY)


def model_input(
    frame: np.ndarray, matrix: np.ndarray, input_size: int, centering: str = LEGACY
) -> np.ndarray:
    """The model's input for one face: the square of its ``centering``, ``input_size`` px, ``uint8``.

    Cut at the size that square has in a default extract crop, then resized with
    area averaging, as training faces are.
    """
    start, stop = face_region(DEFAULT_CROP_SIZE, centering=centering)
    size = max(input_size, stop - start)
    crop = crop_face(frame, matrix, size, padding=model_padding(centering))
    if size == input_size:
        return crop
    return cv2.resize(crop, (input_size, input_size), interpolation=cv2.INTER_AREA)


@dataclass
class Item:
    """One frame on its way through the pipeline."""

    frame: Frame
    faces: list[FaceGeometry]
    crops: np.ndarray | None = None
    swapped: list[SwappedFace] = field(default_factory=list)


def decode(
    source: FrameSource,
    plan: Plan,
    model: FaceModel,
    frames: range | None = None,
    shown: list[bool] | None = None,
) -> Iterator[Item]:
    """Stage 1: decoded frames with their planned faces cut out for the model.

    ``shown`` says, per frame in the order decoded, whether the output shows
    it (:meth:`FrameWriter.frames_shown`): a frame it drops is passed on as it is.
    """
    input_size, centering = model.input_size, centering_of(model)
    start, stop = (frames.start, frames.stop) if frames is not None else (0, None)
    for position, frame in enumerate(source.frames(start, stop)):
        hidden = shown is not None and position < len(shown) and not shown[position]
        faces = [] if hidden else plan.get(frame.index, [])
        crops = None
        if faces:
            crops = np.stack([model_input(frame.image, face.matrix, input_size, centering) for face in faces])
        yield Item(frame, faces, crops)


class _BlendWriter:
    """Stage 3, in its own thread: paste the predicted faces and hand frames to the writer."""

    _STOP = object()

    def __init__(
        self, writer: FrameWriter, blend: BlendOptions, total: int, progress: bool, depth: int
    ) -> None:
        self.writer = writer
        self.blend = blend
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.bar = progress_bar(total, "converting", progress)
        self.thread = threading.Thread(target=self._run, name="blend-write", daemon=True)
        self.thread.start()

    def put(self, item: Item) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is self._STOP:
                    return
                image = item.frame.image
                if item.swapped:
                    image = paste_faces(image, item.swapped, self.blend)
                self.writer.write(image, item.frame.name)
                self.bar.update(1)
        except BaseException as error:  # handed to the main thread
            self.error = error
            with contextlib.suppress(queue.Empty):
                while True:  # unblock a producer waiting on a full queue
                    self.queue.get_nowait()

    def finish(self) -> None:
        """Wait for every queued frame to be written; re-raise a failure of the thread."""
        if self.error is None:
            self.put(self._STOP)  # type: ignore[arg-type]
        self.thread.join()
        self.bar.close()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Abandon the queue (after a failure elsewhere) and end the thread."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(self._STOP)
        self.thread.join(timeout=30)
        self.bar.close()


def predict(items: list[Item], model: FaceModel, decoder: str, batch_size: int) -> None:
    """Stage 2: run the faces of ``items`` through the model, ``batch_size`` at a time."""
    crops = [item.crops for item in items if item.crops is not None]
    if not crops:
        return
    faces = np.concatenate(crops)
    results = [model.predict(faces[i : i + batch_size], decoder) for i in range(0, len(faces), batch_size)]
    predicted = np.concatenate([face for face, _ in results])
    masks = np.concatenate([mask for _, mask in results])
    centering = centering_of(model)
    position = 0
    for item in items:
        for geometry in item.faces:
            item.swapped.append(
                SwappedFace(
                    predicted[position], masks[position], geometry.matrix, geometry.landmarks, centering
                )
            )
            position += 1


def pipeline_depth(frame_bytes: int, batch_size: int) -> int:
    """Frames each stage may hold: two batches, unless that would pass :data:`IN_FLIGHT_BYTES` in all."""
    return max(4, min(2 * batch_size, IN_FLIGHT_BYTES // (3 * max(frame_bytes, 1))))


def run_pipeline(
    items: Iterator[Item],
    model: FaceModel,
    writer: FrameWriter,
    options: ConvertOptions,
    total: int,
    depth: int,
) -> tuple[int, int, int]:
    """Decode → predict → blend → write; returns (frames, frames with swapped faces, faces).

    Each stage holds at most ``depth`` frames (see :func:`pipeline_depth`).
    """
    stage3 = _BlendWriter(writer, options.blend, total, options.progress, depth)
    counts = [0, 0, 0]
    pending: list[Item] = []
    pending_faces = 0
    try:
        for item in prefetch(items, depth=depth):
            pending.append(item)
            pending_faces += len(item.faces)
            counts[0] += 1
            counts[1] += bool(item.faces)
            counts[2] += len(item.faces)
            if pending_faces >= options.batch_size or len(pending) >= depth:
                predict(pending, model, options.decoder, options.batch_size)
                for ready in pending:
                    stage3.put(ready)
                pending, pending_faces = [], 0
        predict(pending, model, options.decoder, options.batch_size)
        for ready in pending:
            stage3.put(ready)
        stage3.finish()
    except BaseException:
        stage3.stop()
        raise
    return counts[0], counts[1], counts[2]
