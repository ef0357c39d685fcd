"""The convert pipeline: every frame's faces swapped, blended back, and written out.

Before any frame is converted, everything that can be wrong is checked, in
the order that fails fastest: the options, the output (exists without
``--overwrite``? writable?), the input, the alignments file (another video's?),
the model (missing? another size than its ``state.json`` says?). Then:

1. **plan** (:mod:`faceswap.convert_plan`): the faces of every frame, from the
   alignments file (``-a``, or next to the input where extract puts it) or,
   without one, found now with extract's tracker; linked into tracks and
   smoothed over the whole clip;
2. **decode and crop** (a thread): ffmpeg decodes frames in its own process,
   OpenCV cuts each planned face out with its smoothed alignment;
3. **predict** (the main thread): faces of many frames at once go through the
   encoder and the chosen decoder (``--direction``), ``--batch-size`` at a time;
4. **blend and write** (a thread): :mod:`faceswap.blend` pastes the faces
   back, the writer (:mod:`faceswap.media.writer`) hands the frame to the
   ffmpeg encoder, again in its own process.

TensorFlow, OpenCV and the pipes to ffmpeg release the GIL, so the stages run
at the same time on different cores. Frames without faces, and frames outside
``--frames``, pass through unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from faceswap.align import DEFAULT_CROP_SIZE, LEGACY, crop_face, face_region, model_padding
from faceswap.alignments import Alignments, Face, find_alignments
from faceswap.blend import BlendOptions, SwappedFace, paste_faces
from faceswap.color import COLOR_METHODS
from faceswap.convert_plan import (
    FaceGeometry,
    Plan,
    detect_faces,
    detect_image_faces,
    detection_windows,
    make_plan,
    parse_frame_ranges,
    progress_bar,
)
from faceswap.convert_select import drop_deleted_crops, keep_person
from faceswap.errors import InputError, ModelError, OutputError
from faceswap.fileio import check_output_file, safe_name, write_bytes_atomic
from faceswap.identity import SAME_PERSON_THRESHOLD, identity_of_photos
from faceswap.locks import lock_outputs
from faceswap.mask import MASK_KINDS
from faceswap.media.reader import IMAGE_SUFFIXES, Frame, FrameSource, open_source, prefetch
from faceswap.media.writer import (
    DEFAULT_CRF,
    DEFAULT_GIF_FPS,
    DEFAULT_PRESET,
    FrameSpec,
    FrameWriter,
    check_output,
    check_settings,
    encode_png,
    open_writer,
    video_frame_spec,
)
from faceswap.paths import guard_outputs

log = logging.getLogger(__name__)

Direction = Literal["a2b", "b2a"]
#: Frame rate of a video made from a folder of images, unless ``--fps`` says otherwise.
DEFAULT_IMAGES_FPS = 25
DEFAULT_BATCH_SIZE = 32
#: Decoded frames held in the pipeline at once stay below about this many bytes (4K frames: 10 a stage).
IN_FLIGHT_BYTES = 768 * 1024**2


class FaceModel(Protocol):
    """What convert needs of a model (:class:`faceswap.model_folder.SwapModel`).

    ``centering`` names the square it sees and paints (:data:`faceswap.align.CENTERINGS`);
    a stand-in without one is taken as ``legacy``.
    """

    input_size: int
    centering: str

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        """Faces and masks, ``float32`` in ``[0, 1]``, for ``uint8`` aligned faces."""
        ...


@dataclass
class ConvertOptions:
    """The options of ``faceswap convert``, for the Python API (the command line builds the same).

    Example::

        from faceswap.blend import BlendOptions
        from faceswap.convert import ConvertOptions, convert

        convert("clip.mp4", ConvertOptions(model=Path("models/me2you"), output=Path("demo.mp4")))
        convert("clip.mp4", ConvertOptions(model=..., output=Path("demo.gif"), fps=12, width=320))
        convert("clip.mp4", ConvertOptions(model=..., output=Path("frame120.png"), preview=120))

    Attributes
    ----------
    model
        Trained model folder (``model.keras`` and ``state.json``); required
        unless a loaded model is passed to :func:`convert`.
    output
        ``.mp4``, ``.gif``, a folder (PNG frames), or with ``preview`` a
        ``.png``; default :func:`default_output`.
    alignments
        Alignments file from ``faceswap extract``; default: the one next to
        the input, else faces are found now.
    direction
        ``"a2b"`` (the input shows person A and gets B's face) or ``"b2a"``.
    frames
        Frames to swap, as ``"10-50,90-120"``; the others are copied unchanged.
    blend
        Mask, erosion, feathering, colour matching, seamless cloning and
        sharpening (:class:`faceswap.blend.BlendOptions`).
    smooth
        Smooth each face's geometry over the clip (steady face and mask edge).
    crf, preset
        x264 quality (0 to 51, lower is better) and speed preset, for mp4.
    fps
        gif: highest frame rate (default 15); image folders: their frame rate.
    width
        gif: width in pixels (height follows).
    batch_size
        Faces per forward pass of the model.
    preview
        Convert only this frame and write it beside the original as one PNG.
    faces
        Faces folder whose crops say which recorded faces to swap (default:
        the alignments file's folder); faces whose crops were deleted are not
        swapped (:mod:`faceswap.convert_select`).
    reference
        Photos of the one person to swap; other people's faces stay as they are.
    identity_threshold
        Largest embedding distance to the reference that is still that person.
    overwrite
        Replace an existing output (only once the new one is complete).
    progress
        Show a progress bar on stderr.
    """

    model: Path | None = None
    output: Path | None = None
    alignments: Path | None = None
    direction: Direction = "a2b"
    frames: str | None = None
    blend: BlendOptions = field(default_factory=BlendOptions)
    smooth: bool = True
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    fps: float | None = None
    width: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    preview: int | None = None
    faces: Path | None = None
    reference: list[Path] = field(default_factory=list)
    identity_threshold: float = SAME_PERSON_THRESHOLD
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Refuse impossible values with one line naming the option.

        Raises
        ------
        InputError, OutputError
            For the first invalid option.
        """
        blend = self.blend
        if self.direction not in ("a2b", "b2a"):
            raise InputError(f"--direction must be a2b or b2a, not {self.direction}")
        if blend.mask not in MASK_KINDS:
            raise InputError(f"--mask must be one of {', '.join(MASK_KINDS)}, not {blend.mask}")
        if blend.color not in COLOR_METHODS:
            raise InputError(f"--color must be one of {', '.join(COLOR_METHODS)}, not {blend.color}")
        if not -50 <= blend.erode <= 50:
            raise InputError(f"--erode must be from -50 to 50 (% of the face size), not {blend.erode:g}")
        if not 0 <= blend.blur <= 50:
            raise InputError(f"--blur must be from 0 to 50 (% of the face size), not {blend.blur:g}")
        if not 0 <= blend.sharpen <= 5:
            raise InputError(f"--sharpen must be from 0 to 5, not {blend.sharpen:g}")
        if not 1 <= self.batch_size <= 1024:
            raise InputError(f"--batch-size must be from 1 to 1024, not {self.batch_size}")
        if self.fps is not None and not 0 < self.fps <= 1000:
            raise InputError(f"--fps must be above 0 and at most 1000, not {self.fps:g}")
        gif_fps = self.fps if self.output is not None and self.output.suffix.lower() == ".gif" else None
        check_settings(
            crf=self.crf, preset=self.preset, gif_fps=gif_fps or DEFAULT_GIF_FPS, gif_width=self.width
        )
        if self.preview is not None and self.preview < 0:
            raise InputError(f"--preview must be a frame number (0 or more), not {self.preview}")
        if not 0 < self.identity_threshold <= 2:
            raise InputError(
                f"--identity-threshold must be above 0 and at most 2, not {self.identity_threshold:g}"
            )
        for photo in self.reference:
            if not photo.is_file():
                raise InputError(f"{photo}: no such reference photo")
        if self.faces is not None and not self.faces.is_dir():
            raise InputError(f"--faces {self.faces}: no such folder")

    @property
    def decoder(self) -> str:
        """The decoder that paints the new faces: B's for a2b, A's for b2a."""
        return "b" if self.direction == "a2b" else "a"


@dataclass
class ConvertSummary:
    """What a convert run did."""

    output: Path
    frames: int = 0
    swapped_frames: int = 0
    faces: int = 0
    deleted: int = 0
    other_people: int = 0
    elapsed: float = 0.0

    def format(self) -> str:
        """The closing line printed after a run."""
        rate = self.frames / self.elapsed if self.elapsed > 0 else 0.0
        left = []
        if self.deleted:
            left.append(f"{self.deleted} whose crops were deleted")
        if self.other_people:
            left.append(f"{self.other_people} of other people")
        unchanged = f"; faces left as they are: {', '.join(left)}" if left else ""
        return (
            f"converted {self.frames} frames ({self.swapped_frames} with swapped faces, {self.faces} faces"
            f"{unchanged}) in {self.elapsed:.1f} s ({rate:.1f} frames/s): {self.output}"
        )


# ----------------------------------------------------------------------------------------------
# Checks and set-up


def default_output(input_path: Path, preview: int | None = None) -> Path:
    """Where the output goes without ``-o``: in the current folder, named after the input.

    ``<name>_swapped.mp4`` for a video, ``<name>_swapped.gif`` for a gif,
    a folder ``<name>_swapped`` for images, ``<name>_preview<N>.png`` with ``--preview N``.
    """
    stem = safe_name(input_path.name if input_path.is_dir() else input_path.stem)
    suffix = input_path.suffix.lower()
    if preview is not None:
        return Path(f"{stem}_preview{preview}.png")
    if input_path.is_dir() or suffix in IMAGE_SUFFIXES:
        return Path(f"{stem}_swapped")
    return Path(f"{stem}_swapped{'.gif' if suffix == '.gif' else '.mp4'}")


def load_alignments(path: Path, source: FrameSource) -> Alignments:
    """Load an alignments file and check it was made from ``source``.

    Raises
    ------
    AlignmentsError
        When it is missing, invalid, or of another video (frame count, size, or image names).
    """
    alignments = Alignments.load(path)
    alignments.check_made_from(source, path)
    return alignments


def _faces(
    source: FrameSource,
    alignments: Alignments | None,
    ranges: list[range] | None,
    wanted: set[int] | None,
    progress: bool,
) -> dict[int, list[Face]]:
    """Every processed frame's faces: from the alignments file, or found now (as extract does)."""
    if alignments is not None:
        frames = {index: record.faces for index, record in alignments}
        missing = source.frame_count - len(frames)
        log.info(
            "alignments: %d faces in %d frames%s",
            alignments.face_count,
            len(frames),
            f"; {missing} frames not recorded: faces there are interpolated between recorded neighbours"
            if missing
            else "",
        )
        return frames
    log.info(
        "no alignments file given or found next to %s: finding faces now, as extract does "
        "(run 'faceswap extract' first to reuse them)",
        source.path.name,
    )
    if source.is_video:
        return detect_faces(source, detection_windows(ranges, source.frame_count), progress=progress)
    return detect_image_faces(
        (frame.index, frame.image) for frame in source.frames() if wanted is None or frame.index in wanted
    )


def _frame_spec(source: FrameSource, options: ConvertOptions) -> FrameSpec:
    """The size and rate of the frames written: a video's own; images: the first one's size at ``--fps``."""
    if source.video_info is not None:
        return video_frame_spec(source.video_info)
    first = next(source.frames(0, 1))
    rate = Fraction(options.fps or DEFAULT_IMAGES_FPS).limit_denominator(1001)
    return FrameSpec(first.image.shape[1], first.image.shape[0], rate)


def _load_model(options: ConvertOptions) -> FaceModel:
    from faceswap.model_folder import load_swap_model  # imports TensorFlow: only when needed

    if options.model is None:
        raise ModelError("no model given: name a trained model folder with -m/--model")
    model = load_swap_model(options.model)
    log.info(
        "model: %s (%s, %d px, %s centering, iteration %d), decoder %s (%s)",
        options.model,
        model.name,
        model.input_size,
        model.centering,
        model.state.iteration,
        options.decoder.upper(),
        options.direction,
    )
    return model


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


# ----------------------------------------------------------------------------------------------
# The pipeline


@dataclass
class _Item:
    """One frame on its way through the pipeline."""

    frame: Frame
    faces: list[FaceGeometry]
    crops: np.ndarray | None = None
    swapped: list[SwappedFace] = field(default_factory=list)


def _decode(
    source: FrameSource,
    plan: Plan,
    model: FaceModel,
    frames: range | None = None,
    shown: list[bool] | None = None,
) -> Iterator[_Item]:
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
        yield _Item(frame, faces, crops)


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

    def put(self, item: _Item) -> None:
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


def _predict(items: list[_Item], model: FaceModel, decoder: str, batch_size: int) -> None:
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
    items: Iterator[_Item],
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
    pending: list[_Item] = []
    pending_faces = 0
    try:
        for item in prefetch(items, depth=depth):
            pending.append(item)
            pending_faces += len(item.faces)
            counts[0] += 1
            counts[1] += bool(item.faces)
            counts[2] += len(item.faces)
            if pending_faces >= options.batch_size or len(pending) >= depth:
                _predict(pending, model, options.decoder, options.batch_size)
                for ready in pending:
                    stage3.put(ready)
                pending, pending_faces = [], 0
        _predict(pending, model, options.decoder, options.batch_size)
        for ready in pending:
            stage3.put(ready)
        stage3.finish()
    except BaseException:
        stage3.stop()
        raise
    return counts[0], counts[1], counts[2]


# ----------------------------------------------------------------------------------------------
# Entry point


def convert(
    input_path: Path | str, options: ConvertOptions | None = None, *, model: FaceModel | None = None
) -> ConvertSummary:
    """Convert a video, gif, image or folder of images; see the module docstring.

    Parameters
    ----------
    input_path
        What to convert.
    options
        The command-line options.
    model
        A loaded model, instead of loading ``options.model`` (for tests and benchmarks).

    Returns
    -------
    ConvertSummary
        The output path and the counts of frames, frames with swapped faces and faces.

    Raises
    ------
    FaceswapError
        For bad inputs, options, alignments or models (before anything is
        written) and for failures on the way (the output is then not created).
    """
    options = options or ConvertOptions()
    input_path = Path(input_path)
    output = options.output or default_output(input_path, options.preview)
    # Checked against the output it will be (a gif input makes a gif: --fps then applies).
    replace(options, output=output).check()
    started = time.perf_counter()
    if not input_path.exists():
        raise InputError(f"{input_path}: no such file or folder")
    alignments_path = options.alignments or find_alignments(input_path)
    guard_outputs([input_path, options.model, alignments_path], [output])
    with lock_outputs([output], "convert"):
        return _convert(input_path, output, alignments_path, options, model, started)


def _convert(
    input_path: Path,
    output: Path,
    alignments_path: Path | None,
    options: ConvertOptions,
    model: FaceModel | None,
    started: float,
) -> ConvertSummary:
    """:func:`convert` once the output is known to spare the inputs, and is locked."""
    if options.preview is None:
        check_output(output, overwrite=options.overwrite)
    elif output.suffix.lower() != ".png":
        raise OutputError(f"--preview writes one PNG: give -o a name ending in .png, not {output}")
    else:
        check_output_file(output, overwrite=options.overwrite)
    source = open_source(input_path)
    ranges = parse_frame_ranges(options.frames, source.frame_count) if options.frames else None
    if options.preview is not None:
        if options.preview >= source.frame_count:
            raise InputError(
                f"--preview {options.preview}: the input has {source.frame_count} frames (0 to "
                f"{source.frame_count - 1})"
            )
        ranges = [range(options.preview, options.preview + 1)]
    alignments = None
    if alignments_path is not None:
        alignments = load_alignments(alignments_path, source)
        log.info("alignments: %s", alignments_path)
    elif options.faces is not None:
        raise InputError(
            f"--faces {options.faces} says which faces of an alignments file to swap, and no alignments "
            f"file was given (-a) or found next to {input_path.name}"
        )
    reference = identity_of_photos(options.reference) if options.reference else None
    wanted = None if ranges is None else {i for r in ranges for i in r}
    frames = None
    deleted = other_people = 0
    if alignments is not None and alignments_path is not None:  # read now: checked before the model loads
        frames = _faces(source, alignments, ranges, wanted, options.progress)
        faces_folder = options.faces or alignments_path.parent
        frames, deleted = drop_deleted_crops(frames, faces_folder)
        if deleted:
            log.info("%d faces not swapped: their crops were deleted from %s", deleted, faces_folder)
    if model is None:
        model = _load_model(options)
    if frames is None:
        frames = _faces(source, alignments, ranges, wanted, options.progress)
    if reference is not None:
        frames, choice = keep_person(
            frames, source, reference, options.identity_threshold, progress=options.progress
        )
        other_people = choice.faces - choice.kept_faces
        log.info("%s", choice.format())
    plan = make_plan(frames, source.frame_times, smooth=options.smooth, wanted=wanted)
    # The plan is all the pipeline needs: the records (a few kB a frame) go before it starts.
    del frames, alignments
    summary = ConvertSummary(output, deleted=deleted, other_people=other_people)
    from faceswap.runtime import opencv_single_threaded

    with opencv_single_threaded():
        if options.preview is not None:
            _preview(source, plan, model, options, output)
            summary.frames = 1
            summary.faces = len(plan.get(options.preview, []))
            summary.swapped_frames = int(summary.faces > 0)
        else:
            spec = _frame_spec(source, options)
            writer = open_writer(
                output,
                spec,
                audio_source=source.video_info,
                crf=options.crf,
                preset=options.preset,
                gif_fps=options.fps or DEFAULT_GIF_FPS,
                gif_width=options.width,
                overwrite=options.overwrite,
            )
            with writer:
                items = _decode(source, plan, model, shown=writer.frames_shown(source.frame_count))
                depth = pipeline_depth(spec.width * spec.height * 3, options.batch_size)
                counts = run_pipeline(items, model, writer, options, source.frame_count, depth)
            summary.frames, summary.swapped_frames, summary.faces = counts
    summary.elapsed = time.perf_counter() - started
    return summary


def _preview(
    source: FrameSource, plan: Plan, model: FaceModel, options: ConvertOptions, output: Path
) -> None:
    """Write frame ``options.preview``, original beside converted, as one PNG."""
    assert options.preview is not None
    index = options.preview
    item = next(_decode(source, plan, model, range(index, index + 1)))
    _predict([item], model, options.decoder, options.batch_size)
    converted = (
        paste_faces(item.frame.image, item.swapped, options.blend) if item.swapped else item.frame.image
    )
    if not item.swapped:
        log.warning("frame %d has no face to swap: the preview shows it unchanged", index)
    write_bytes_atomic(output, encode_png(np.hstack([item.frame.image, converted])))
    log.info("preview of frame %d (original | converted): %s", index, output)
