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
``--frames``, pass through unchanged; so do frames the output does not show
(a gif capped at ``--fps``): they are never sent through the model.

The options and the summary are in :mod:`faceswap.convert_options`, the
stages in :mod:`faceswap.convert_pipeline`; this module checks and runs them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceswap.alignments import Alignments, Face, find_alignments
from faceswap.blend import paste_faces
from faceswap.convert_options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_IMAGES_FPS,
    ConvertOptions,
    ConvertResult,
    Direction,
    default_output,
)
from faceswap.convert_pipeline import FaceModel, decode, model_input, pipeline_depth, predict, run_pipeline
from faceswap.convert_plan import (
    Plan,
    detect_faces,
    detect_image_faces,
    make_plan,
)
from faceswap.convert_select import drop_deleted_crops, keep_person
from faceswap.errors import InputError, ModelError, OutputError
from faceswap.fileio import check_output_file, write_bytes_atomic
from faceswap.frame_ranges import detection_windows, parse_frame_ranges
from faceswap.identity import identity_of_photos
from faceswap.locks import lock_outputs
from faceswap.media.reader import FrameSource, open_source
from faceswap.media.writer import (
    DEFAULT_GIF_FPS,
    FrameSpec,
    check_output,
    encode_png,
    open_writer,
    video_frame_spec,
)
from faceswap.paths import guard_outputs

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ConvertOptions",
    "ConvertResult",
    "Direction",
    "FaceModel",
    "convert",
    "default_output",
    "load_alignments",
    "model_input",
]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# Checks and set-up


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


def _check_model_folder(options: ConvertOptions) -> None:
    """Refuse a missing model, or a folder without a readable ``state.json``, without loading TensorFlow."""
    from faceswap.model_folder import read_state

    if options.model is None:
        raise ModelError("no model given: name a trained model folder with -m/--model")
    read_state(options.model)


def _load_model(options: ConvertOptions) -> FaceModel:
    from faceswap.model_folder import load_swap_model  # imports TensorFlow: only when needed

    _check_model_folder(options)
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


# ----------------------------------------------------------------------------------------------
# Entry point


def convert(
    input_path: Path | str, options: ConvertOptions | None = None, *, model: FaceModel | None = None
) -> ConvertResult:
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
    ConvertResult
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
) -> ConvertResult:
    """:func:`convert` once the output is known to spare the inputs, and is locked."""
    if options.preview is not None and output.suffix.lower() != ".png":
        raise OutputError(f"--preview writes one PNG: give -o a name ending in .png, not {output}")
    try:
        if options.preview is None:
            check_output(output, overwrite=options.overwrite)
        else:
            check_output_file(output, overwrite=options.overwrite)
    except OutputError:
        if model is None:  # a missing model is worth saying before an existing output
            _check_model_folder(options)
        raise
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
    summary = ConvertResult(output, deleted=deleted, other_people=other_people)
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
                items = decode(source, plan, model, shown=writer.frames_shown(source.frame_count))
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
    item = next(decode(source, plan, model, range(index, index + 1)))
    predict([item], model, options.decoder, options.batch_size)
    converted = (
        paste_faces(item.frame.image, item.swapped, options.blend) if item.swapped else item.frame.image
    )
    if not item.swapped:
        log.warning("frame %d has no face to swap: the preview shows it unchanged", index)
    write_bytes_atomic(output, encode_png(np.hstack([item.frame.image, converted])))
    log.info("preview of frame %d (original | converted): %s", index, output)
