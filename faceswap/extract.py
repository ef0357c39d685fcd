"""The extract pipeline: faces out of videos, gifs and photos, aligned, cropped and recorded.

``faceswap extract`` splits each source into chunks with fixed boundaries
(:data:`CHUNK_FRAMES` frames of a video, :data:`CHUNK_IMAGES` images of a
folder) and lets a pool of ``--jobs`` worker processes run them
(:mod:`faceswap.extract_worker`). Each video chunk is decoded by the worker's
own ffmpeg from a frame-exact seek, so decoding runs in parallel too. The
parent merges the finished chunks into the alignments file and saves it
atomically every :data:`SAVE_EVERY_S` seconds or more (see :data:`SAVE_SHARE`)
and at the end, always whole chunks: an interrupted run leaves a valid file,
and ``--resume`` redoes exactly the missing chunks, giving the same file as one
uninterrupted run.

Chunk boundaries depend only on the source (not on ``--jobs``, see
:func:`chunk_frames`). 250 frames matches x264's default key-frame interval, so
a chunk's seek usually starts at a key frame instead of decoding frames it
throws away; a short clip is cut into four chunks so that it uses several
cores all the same.

The options and the summary are in :mod:`faceswap.extract_options`, the
worker pool in :mod:`faceswap.extract_pool`, a chunk's work in
:mod:`faceswap.extract_worker`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

from faceswap.align import CROP_PADDING
from faceswap.alignments import (
    ALIGNMENTS_NAME,
    Alignments,
    SourceInfo,
    default_output_dir,
)
from faceswap.crop_names import is_crop_of
from faceswap.errors import FaceswapError, InputError, OutputError
from faceswap.extract_options import (
    CHUNK_FRAMES,
    CHUNK_IMAGES,
    MIN_CHUNK_FRAMES,
    SAVE_EVERY_S,
    SAVE_SHARE,
    ExtractOptions,
    ExtractResult,
)
from faceswap.extract_pool import WorkerPool
from faceswap.extract_worker import (
    Chunk,
    ChunkResult,
    WorkerConfig,
    reference_identity,
    run_chunk,
)
from faceswap.fileio import (
    ensure_output_dir,
    remove_quietly,
    remove_stale_temporaries,
    unique_safe_names,
)
from faceswap.locks import lock_outputs, lock_path
from faceswap.media.reader import FrameSource, VideoSource, list_images, list_videos, open_source
from faceswap.paths import guard_outputs
from faceswap.progress import progress_bar
from faceswap.track import DETECT_INTERVAL, DETECTION_FACE_PX

__all__ = [
    "CHUNK_FRAMES",
    "CHUNK_IMAGES",
    "SAVE_EVERY_S",
    "ExtractOptions",
    "ExtractResult",
    "extract",
    "plan_sources",
]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# Inputs


@dataclass
class _Source:
    """One source to extract (a video, or a set of images) and the folder its output goes to."""

    out_dir: Path
    media: FrameSource

    @property
    def path(self) -> Path:
        """The video, image or folder of images."""
        return self.media.path


def plan_sources(input_path: Path, output: Path | None) -> list[_Source]:
    """What to extract from ``input_path`` and where each source's output goes.

    Raises
    ------
    InputError
        When the path is missing, empty, or holds no media (probe errors of a
        video are raised here too, before any work starts).
    """
    if not input_path.exists():
        raise InputError(f"{input_path}: no such file or folder")
    out = output or default_output_dir(input_path)
    if input_path.is_dir() and not list_images(input_path):
        videos = list_videos(input_path)
        if not videos:
            raise InputError(f"{input_path}: folder holds no images or videos")
        stems = [video.stem for video in videos]
        # <name>_faces as for one video; clip.mp4 and clip.mov get clip.mp4_faces and clip.mov_faces,
        # and two names that make one safe name are told apart (a b.mp4, a_b.mp4: a_b_faces, a_b_2_faces).
        names = unique_safe_names(
            video.stem if stems.count(video.stem) == 1 else video.name for video in videos
        )
        return [
            _Source(out / f"{name}_faces", VideoSource(video))
            for video, name in zip(videos, names, strict=True)
        ]
    return [_Source(out, open_source(input_path))]  # a bad image or video fails now, with its own message


def _prepare_output(source: _Source, info: SourceInfo, options: ExtractOptions) -> Alignments:
    """Create the output folder; load the file to resume, or refuse to mix two runs."""
    ensure_output_dir(source.out_dir)
    remove_stale_temporaries(source.out_dir)
    path = source.out_dir / ALIGNMENTS_NAME
    settings = options.settings()
    if info.kind == "video":
        settings["chunk_frames"] = chunk_frames(info.frame_count, options.chunk_frames)
    fresh = Alignments(source=info, settings=settings)
    if not path.exists():
        if options.resume:
            log.info("%s: nothing to resume, starting from the beginning", path)
        return fresh
    if options.resume:
        previous = Alignments.load(path)
        previous.check_source(info, path)
        if previous.settings != settings:
            changed = sorted(k for k in settings if previous.settings.get(k) != settings[k])
            raise InputError(
                f"{path} was made with other settings ({', '.join(changed)}); "
                "rerun with those options, or start again with --overwrite"
            )
        return previous
    if not options.overwrite:
        if _finished(source, info, settings, options, path):
            raise OutputError(
                f"{source.out_dir} already holds a finished extract ({ALIGNMENTS_NAME}); "
                "pass --overwrite to start again"
            )
        raise OutputError(
            f"{source.out_dir} already holds an extract ({ALIGNMENTS_NAME}); "
            "pass --resume to finish it or --overwrite to start again"
        )
    stem = Path(info.path).stem
    for old in source.out_dir.iterdir():
        if old.name == ALIGNMENTS_NAME or is_crop_of(old.name, stem):
            remove_quietly(old)
    return fresh


def _finished(source: _Source, info: SourceInfo, settings: dict, options: ExtractOptions, path: Path) -> bool:
    """Whether the alignments file at ``path`` is a finished extract of this source with these settings."""
    try:
        previous = Alignments.load(path)
        previous.check_source(info, path)
    except FaceswapError:
        return False
    return previous.settings == settings and not _chunks(source, previous, options, None)


def chunk_frames(frame_count: int, most: int = CHUNK_FRAMES) -> int:
    """Frames per chunk of a video of ``frame_count`` frames.

    At most ``most``; a short clip still gets four chunks (of no fewer than
    :data:`MIN_CHUNK_FRAMES` frames), so that it runs on several cores.
    """
    return max(1, min(most, max(MIN_CHUNK_FRAMES, -(-frame_count // 4))))


def _chunks(source: _Source, alignments: Alignments, options: ExtractOptions, reference) -> list[Chunk]:
    """Chunks that still have unrecorded frames, in order."""
    done = alignments.frames
    stem = Path(alignments.source.path).stem
    common = {
        "source": str(source.path),
        "out_dir": str(source.out_dir),
        "stem": stem,
        "reference": reference,
    }
    chunks = []
    info = source.media.video_info
    if info is not None:
        size = alignments.settings["chunk_frames"]
        for number, start in enumerate(range(0, info.frame_count, size)):
            stop = min(start + size, info.frame_count)
            first = -(-start // options.every) * options.every
            wanted = range(first, stop, options.every)
            if wanted and any(index not in done for index in wanted):
                chunks.append(
                    Chunk(
                        number,
                        start=first,
                        stop=stop,
                        step=options.every,
                        fps=float(info.fps),
                        info=info,
                        **common,
                    )
                )
        return chunks
    files = [
        (index, str(path)) for index, path in enumerate(source.media.files) if index % options.every == 0
    ]
    for number, offset in enumerate(range(0, len(files), CHUNK_IMAGES)):
        batch = tuple(files[offset : offset + CHUNK_IMAGES])
        if any(index not in done for index, _ in batch):
            chunks.append(Chunk(number, images=batch, **common))
    return chunks


# ----------------------------------------------------------------------------------------------
# The run


def extract(input_path: Path | str, options: ExtractOptions | None = None) -> ExtractResult:
    """Extract the faces of a video, gif, image, folder of images or folder of videos.

    Returns
    -------
    ExtractResult
        Counts over all sources; each source's alignments file and crops are in
        its output folder (``summary.outputs``).

    Worker processes start the way ``spawn`` starts them (from a fork server),
    so a script that calls this must do so under ``if __name__ == "__main__":``.

    Raises
    ------
    FaceswapError
        For bad inputs and options (before any work starts), and for problems
        met on the way (a corrupt frame, a full disk); the alignments file then
        holds every chunk finished before.
    """
    options = options or ExtractOptions()
    options.check()
    started = time.perf_counter()
    input_path = Path(input_path)
    if not input_path.exists():
        raise InputError(f"{input_path}: no such file or folder")
    inputs = [input_path, *options.reference]
    output = options.output or default_output_dir(input_path)
    guard_outputs(inputs, [output])
    jobs = options.jobs or os.cpu_count() or 1
    config = WorkerConfig(
        detector=options.detector,
        upsample=options.upsample,
        size=options.size,
        padding=CROP_PADDING,
        min_size=options.min_size,
        max_faces=options.max_faces,
        blur_threshold=options.blur_threshold,
        smooth=options.smooth,
        identity_threshold=options.identity_threshold,
        detect_interval=DETECT_INTERVAL,
        # Faces narrower than --min-size are dropped anyway: detect at a scale
        # that still finds faces of that size, and no larger.
        full_scale=min(1.0, DETECTION_FACE_PX / options.min_size)
        if options.min_size > DETECTION_FACE_PX
        else 1.0,
    )
    summary = ExtractResult()
    # Held until the workers are gone (they write into the outputs); taken before they start.
    with contextlib.ExitStack() as locks:
        locks.enter_context(lock_outputs([output], "extract"))
        pool = WorkerPool(config, jobs, bool(options.reference))
        cancel = True
        try:
            # The models load (about a second) while the inputs are probed.
            pool.warm_up()
            sources = plan_sources(input_path, options.output)
            outputs = [
                path for source in sources for path in (source.out_dir, source.out_dir / ALIGNMENTS_NAME)
            ]
            guard_outputs(inputs, outputs)
            # A folder of videos: each video's own folder too (another run may write one of them alone).
            others = [source.out_dir for source in sources if lock_path(source.out_dir) != lock_path(output)]
            locks.enter_context(lock_outputs(others, "extract"))
            summary.sources = len(sources)
            reference = None
            if options.reference:
                photos = tuple(str(photo) for photo in options.reference)
                reference = pool.result(pool.submit(reference_identity, photos, options.upsample))
            for source in sources:
                _extract_source(source, options, pool, reference, summary)
            cancel = False
        finally:
            pool.close(cancel=cancel)
            if cancel:  # the stopped workers' half-written crops
                for folder in summary.outputs:
                    remove_stale_temporaries(folder)
    summary.elapsed = time.perf_counter() - started
    return summary


def _extract_source(
    source: _Source, options: ExtractOptions, pool: WorkerPool, reference, summary: ExtractResult
) -> None:
    info = SourceInfo.of(source.media)
    alignments = _prepare_output(source, info, options)
    path = source.out_dir / ALIGNMENTS_NAME
    summary.outputs.append(source.out_dir)
    chunks = _chunks(source, alignments, options, reference)
    wanted = sum(len(range(c.start, c.stop, c.step)) if not c.images else len(c.images) for c in chunks)
    total = len(range(0, info.frame_count, options.every))
    summary.skipped_frames += total - wanted
    futures = {pool.submit(run_chunk, chunk): chunk for chunk in chunks}
    finished = 0
    last_save, save_interval = time.monotonic(), options.save_every_s
    with _progress_bar(source.path.name, wanted, options.progress, pool) as update:
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                update()
                for future in done:
                    result: ChunkResult = pool.result(future)
                    if result.error:
                        raise FaceswapError(result.error)
                    for warning in result.warnings:
                        log.warning("%s", warning)
                    alignments.frames.update(result.records)
                    summary.add(result.counts)
                    finished += 1
                if done and time.monotonic() - last_save >= save_interval:
                    saving = time.monotonic()
                    alignments.save(path)
                    last_save = time.monotonic()
                    save_interval = max(options.save_every_s, (last_save - saving) / SAVE_SHARE)
                    if options.on_save is not None:
                        options.on_save(finished)
        finally:
            # Whatever stopped the run (an error, Ctrl-C), keep every finished chunk. A run
            # that finished none (a full disk at the first crop) leaves the file as it was
            # (or absent): an empty file would only make the next run ask for --resume.
            if finished or not chunks:
                alignments.save(path)


@contextlib.contextmanager
def _progress_bar(name: str, total: int, enabled: bool, pool: WorkerPool) -> Iterator[Callable[[], None]]:
    """A progress bar fed from the workers' shared counters; yields its update function."""
    with pool.progress.get_lock():
        pool.progress[0] = pool.progress[1] = 0

    with progress_bar(total, name, enabled) as bar:

        def update() -> None:
            bar.advance_to(pool.progress[0], faces=pool.progress[1])

        yield update
        update()
