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
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import multiprocessing.forkserver
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceswap.align import CROP_PADDING, DEFAULT_CROP_SIZE
from faceswap.alignments import (
    ALIGNMENTS_NAME,
    Alignments,
    SourceInfo,
    default_output_dir,
)
from faceswap.errors import FaceswapError, InputError, OutputError
from faceswap.extract_worker import (
    SMOOTH_RADIUS,
    SMOOTH_SIGMA_FRAMES,
    SMOOTH_SIGMA_IOD,
    Chunk,
    ChunkResult,
    WorkerConfig,
    initialise,
    reference_identity,
    run_chunk,
)
from faceswap.fileio import (
    ensure_output_dir,
    remove_quietly,
    remove_stale_temporaries,
    safe_name,
    unique_safe_names,
)
from faceswap.identity import SAME_PERSON_THRESHOLD
from faceswap.locks import lock_outputs, lock_path
from faceswap.media.reader import FrameSource, VideoSource, list_images, list_videos, open_source
from faceswap.paths import guard_outputs
from faceswap.signals import hangup_ignored, signal_name
from faceswap.track import DETECT_INTERVAL, DETECTION_FACE_PX

log = logging.getLogger(__name__)

#: Most frames per video chunk (fixed: resuming relies on the same boundaries).
CHUNK_FRAMES = 250
#: Fewest frames per video chunk (each chunk starts with a full-resolution detection).
MIN_CHUNK_FRAMES = 32
#: Images per chunk of an image folder.
CHUNK_IMAGES = 8
#: Seconds between saves of the alignments file during a run, at least.
SAVE_EVERY_S = 10.0
#: ... and at most this share of the run goes to saving it: the file is rewritten whole, and for
#: a feature-length video it holds hundreds of megabytes, so saves grow further apart as it grows.
SAVE_SHARE = 0.05
#: Smallest and largest crop side (px).
MIN_CROP_SIZE, MAX_CROP_SIZE = 64, 2048
#: Most worker processes: each holds the models (about 100 MB), and a long video has as many
#: chunks as it has seconds / 8, so a huge --jobs would start that many.
MAX_JOBS = 256


@dataclass
class ExtractOptions:
    """The options of ``faceswap extract`` (see its ``--help`` for each)."""

    output: Path | None = None
    every: int = 1
    min_size: float = 0.0
    size: int = DEFAULT_CROP_SIZE
    detector: str = "hog"
    upsample: int = 0
    reference: list[Path] = field(default_factory=list)
    identity_threshold: float = SAME_PERSON_THRESHOLD
    max_faces: int | None = None
    blur_threshold: float = 0.0
    smooth: bool = True
    resume: bool = False
    overwrite: bool = False
    jobs: int | None = None
    progress: bool = True
    #: Not a command-line option: the most frames per chunk (tests shorten it).
    chunk_frames: int = CHUNK_FRAMES
    #: Not a command-line option: called after each save with the number of finished chunks.
    on_save: Callable[[int], None] | None = None
    save_every_s: float = SAVE_EVERY_S

    def check(self) -> None:
        """Refuse impossible values with one line naming the option.

        Raises
        ------
        InputError
            For the first invalid option.
        """
        if self.every < 1:
            raise InputError(f"--every must be at least 1, not {self.every}")
        if not MIN_CROP_SIZE <= self.size <= MAX_CROP_SIZE:
            raise InputError(f"--size must be from {MIN_CROP_SIZE} to {MAX_CROP_SIZE} px, not {self.size}")
        if not (math.isfinite(self.min_size) and self.min_size >= 0):
            raise InputError(f"--min-size must be a finite number of at least 0, not {self.min_size:g}")
        if self.max_faces is not None and self.max_faces < 1:
            raise InputError(f"--max-faces must be at least 1, not {self.max_faces}")
        if not (math.isfinite(self.blur_threshold) and self.blur_threshold >= 0):
            raise InputError(
                f"--blur-threshold must be a finite number of at least 0, not {self.blur_threshold:g}"
            )
        if not 0 < self.identity_threshold <= 2:
            raise InputError(
                f"--identity-threshold must be above 0 and at most 2, not {self.identity_threshold:g}"
            )
        if self.detector not in ("hog", "cnn"):
            raise InputError(f"--detector must be hog or cnn, not {self.detector}")
        if not 0 <= self.upsample <= 3:
            raise InputError(f"--upsample must be from 0 to 3, not {self.upsample}")
        if self.jobs is not None and not 1 <= self.jobs <= MAX_JOBS:
            raise InputError(f"--jobs must be at least 1 and at most {MAX_JOBS}, not {self.jobs}")
        if self.resume and self.overwrite:
            raise InputError("--resume and --overwrite contradict each other: choose one")
        for photo in self.reference:
            if not photo.is_file():
                raise InputError(f"{photo}: no such reference photo")

    def settings(self) -> dict[str, Any]:
        """What the alignments file records: every option that changes its content."""
        return {
            "every": self.every,
            "min_size": self.min_size,
            "size": self.size,
            "padding": CROP_PADDING,
            "detector": self.detector,
            "upsample": self.upsample,
            "reference": [photo.name for photo in self.reference],
            "identity_threshold": self.identity_threshold if self.reference else None,
            "max_faces": self.max_faces,
            "blur_threshold": self.blur_threshold,
            "smooth": (
                {
                    "method": "bilateral",
                    "radius": SMOOTH_RADIUS,
                    "sigma_frames": SMOOTH_SIGMA_FRAMES,
                    "sigma_iod": SMOOTH_SIGMA_IOD,
                }
                if self.smooth
                else None
            ),
            "detect_interval": DETECT_INTERVAL,
            # Faces are followed in boxes placed as the last detection placed its box.
            "follow_box": "detection placement",
        }


@dataclass
class Summary:
    """What an extract run did (added up over all sources)."""

    sources: int = 0
    frames: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    saved: int = 0
    blurry: int = 0
    too_small: int = 0
    wrong_person: int = 0
    extra: int = 0
    skipped_frames: int = 0
    cpu_ms: int = 0
    elapsed: float = 0.0
    outputs: list[Path] = field(default_factory=list)

    def add(self, counts: dict[str, int]) -> None:
        """Add a chunk's counts."""
        for key, value in counts.items():
            setattr(self, key, getattr(self, key) + value)

    def format(self) -> str:
        """The closing lines printed after a run."""
        rate = self.frames / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"frames read: {self.frames} ({rate:.0f} frames/s)"
            + (f", {self.skipped_frames} already done (--resume)" if self.skipped_frames else ""),
            f"frames with faces: {self.frames_with_faces}",
            f"faces recorded: {self.faces}, crops saved: {self.saved}",
            f"faces dropped: {self.blurry} blurry (crop not saved), {self.too_small} too small, "
            f"{self.wrong_person} wrong person"
            + (f", {self.extra} beyond --max-faces" if self.extra else ""),
            f"elapsed: {self.elapsed:.1f} s "
            f"({self.cpu_ms / 1000:.1f} s of CPU in the workers and their decoders)",
            "output: " + ", ".join(str(path) for path in self.outputs),
        ]
        return "\n".join(lines)


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


_CROP_PATTERN = r"_\d{6,}_\d+\.png"


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
        raise OutputError(
            f"{source.out_dir} already holds an extract ({ALIGNMENTS_NAME}); "
            "pass --resume to finish it or --overwrite to start again"
        )
    pattern = re.compile(re.escape(safe_name(Path(info.path).stem)) + _CROP_PATTERN)
    for old in source.out_dir.iterdir():
        if old.name == ALIGNMENTS_NAME or pattern.fullmatch(old.name):
            remove_quietly(old)
    return fresh


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
# The pool


class _Pool:
    """Worker processes with the models loaded; stopped for good on any exit path."""

    def __init__(self, config: WorkerConfig, jobs: int, with_identity: bool) -> None:
        # Not fork: a forked child of a parent whose OpenCV (or any other) thread
        # pool has started can deadlock on the pool's locks. A fork server imports
        # the worker module once, then forks each worker from that clean process.
        self.forkserver = "forkserver" in multiprocessing.get_all_start_methods()
        if self.forkserver:
            context = multiprocessing.get_context("forkserver")
            # The server also loads the models, once, for every worker it forks.
            context.set_forkserver_preload(["faceswap.extract_worker", "faceswap.extract_preload"])
        else:
            context = multiprocessing.get_context("spawn")
        with hangup_ignored():  # the shared arrays' locks start multiprocessing's resource tracker
            self.progress = context.Array("q", 2)
            #: A worker that cannot start writes why here (one line), see :func:`initialise`.
            self.start_error = context.Array("c", 512)
        self.executor = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=initialise,
            initargs=(config, self.progress, with_identity, self.start_error),
        )
        self._workers: dict[int, Any] = {}

    def warm_up(self) -> None:
        """Start loading the models without waiting for them.

        The fork server loads them before it forks anything (a submit would wait
        for that); started by hand, it loads them while the caller goes on. Without
        a fork server, a first task starts a worker, which loads its own.
        """
        if self.forkserver:
            _start_forkserver()
        else:
            self.submit(os.getpid)

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        """Queue a call in a worker."""
        try:
            future = self.executor.submit(function, *args)
        except BrokenProcessPool:
            raise FaceswapError(self.death()) from None
        self._workers.update(getattr(self.executor, "_processes", None) or {})
        return future

    def result(self, future: Future) -> Any:
        """A worker's result; a worker that died becomes one line that says how."""
        try:
            return future.result()
        except BrokenProcessPool:
            raise FaceswapError(self.death()) from None

    def death(self) -> str:
        """What became of the worker that broke the pool: its own one-line error, or how it ended."""
        line = self.start_error.value.decode("utf-8", "replace")
        if line:
            return f"a worker process could not start: {line}"
        self._workers.update(getattr(self.executor, "_processes", None) or {})
        codes = [process.exitcode for process in self._workers.values()]
        # The pool terminates (SIGTERM) the other workers once one has died.
        died = [code for code in codes if code not in (None, 0, -signal.SIGTERM)] or [
            code for code in codes if code == -signal.SIGTERM
        ]
        if not died:
            return "a worker process ended unexpectedly"
        code = died[0]
        if code < 0:
            name = signal_name(-code)
            hint = " (out of memory? try fewer --jobs)" if code == -signal.SIGKILL else ""
            return f"a worker process was killed by {name}{hint}"
        return f"a worker process exited with status {code}"

    def close(self, *, cancel: bool) -> None:
        """Stop the workers: at once (and without waiting for running chunks) when ``cancel``."""
        if not cancel:
            self.executor.shutdown(wait=True)
            return
        processes = list(getattr(self.executor, "_processes", {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(timeout=5)
                if process.is_alive():
                    process.kill()
                    process.join(timeout=5)
        # Join the executor's manager thread now that its workers are gone: left
        # running, it races the interpreter's exit hook, which then prints a
        # traceback about a closed pipe under the one-line error.
        with contextlib.suppress(Exception):
            self.executor.shutdown(wait=True)


def _start_forkserver() -> None:
    """Start the fork server in the folder that holds this ``faceswap`` package.

    The server runs ``python -c``, so its module search starts with its current
    folder (and Python 3.11 and older ignore the parent's ``sys.path`` there):
    started in a folder that holds another ``faceswap`` (a clone of this
    repository, say), it would preload that one, and every worker with it. The
    workers themselves still run in the caller's folder (relative paths hold).
    """
    package_root = Path(__file__).resolve().parent.parent
    here = os.getcwd()
    with hangup_ignored():  # the server and the resource tracker outlive a hangup (see there)
        try:
            os.chdir(package_root)
        except OSError:  # an unreadable install folder: start it where we are
            multiprocessing.forkserver.ensure_running()
            return
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            os.chdir(here)


# ----------------------------------------------------------------------------------------------
# The run


def extract(input_path: Path | str, options: ExtractOptions | None = None) -> Summary:
    """Extract the faces of a video, gif, image, folder of images or folder of videos.

    Returns
    -------
    Summary
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
    summary = Summary()
    # Held until the workers are gone (they write into the outputs); taken before they start.
    with contextlib.ExitStack() as locks:
        locks.enter_context(lock_outputs([output], "extract"))
        pool = _Pool(config, jobs, bool(options.reference))
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
    source: _Source, options: ExtractOptions, pool: _Pool, reference, summary: Summary
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
def _progress_bar(name: str, total: int, enabled: bool, pool: _Pool) -> Iterator[Callable[[], None]]:
    """A tqdm bar on stderr fed from the workers' shared counters; yields its update function."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with pool.progress.get_lock():
        pool.progress[0] = pool.progress[1] = 0
    bar = tqdm(
        total=total,
        desc=name,
        unit="frame",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
    )

    def update() -> None:
        frames, faces = pool.progress[0], pool.progress[1]
        if frames > bar.n:
            bar.update(frames - bar.n)
            bar.set_postfix(faces=faces, refresh=False)

    with bar, logging_redirect_tqdm(loggers=[logging.getLogger("faceswap")]):
        yield update
        update()
