"""``faceswap demo``: the whole toolkit, end to end, on two bundled public-domain portraits.

Identity A is scikit-image's ``astronaut`` (Eileen Collins) and identity B
matplotlib's ``grace_hopper.jpg`` sample; both are installed with those
packages, so nothing is downloaded. The demo

1. turns each portrait into a short clip: the camera pans, zooms and rolls
   slightly, so the faces move the way faces in videos do;
2. extracts the faces of both clips (:mod:`faceswap.extract`);
3. trains the ``lite`` model for a bounded time (:mod:`faceswap.train`);
4. converts A's clip so that it wears B's face, to ``demo.mp4`` and
   ``demo.gif``, and writes ``preview.png`` (one frame, original beside
   converted);
5. scores the swap (:mod:`faceswap.score`) against the same conversion by the
   *untrained* network, so the report shows what training bought.

Everything lands in one folder (``--out``); its ``work/`` subfolder keeps the
clips, the extracted faces and the model folder for a closer look.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from faceswap.alignments import ALIGNMENTS_NAME
from faceswap.errors import InputError, OutputError
from faceswap.fileio import ensure_output_dir, write_json_atomic
from faceswap.locks import lock_outputs
from faceswap.paths import guard_outputs

log = logging.getLogger("faceswap")

#: Marks a folder as the demo's own, so a second run may replace what the first wrote.
MARKER = ".faceswap-demo"
#: Side of the square demo clips, in pixels.
CLIP_SIZE = 384
#: Width of the face in the clips before zooming (HOG finds faces from about 80 px).
CLIP_FACE_WIDTH = 130.0
#: Frame rate and length of the demo clips.
CLIP_FPS = 25
CLIP_SECONDS = 4.0
#: The recipe: a small batch at a high learning rate learns two single faces fastest on a CPU.
DEMO_MODEL = "lite"
DEMO_BATCH_SIZE = 4
DEMO_LEARNING_RATE = 3e-4
DEFAULT_MINUTES = 5.0
#: The seed of the weights and batches: the same run gives the same model.
DEMO_SEED = 7
#: The writer says when a video gets no sound: the demo's own clips never have any.
NO_SOUND_LOGGER = "faceswap.media"
#: Convert says which alignments and model it uses: the demo's four converts would say it four times.
CONVERT_LOGGER = "faceswap.convert"


@dataclass(frozen=True)
class Portrait:
    """A bundled photo that plays one identity."""

    name: str
    image: np.ndarray  # RGB uint8


def bundled_portrait_files() -> list[Path]:
    """The files :func:`bundled_portraits` reads (the demo's inputs, which its output must spare)."""
    import matplotlib.cbook
    import skimage.data

    grace = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return [Path(skimage.data.__file__).parent / "astronaut.png", grace]


def bundled_portraits() -> tuple[Portrait, Portrait]:
    """Identity A (``astronaut``) and identity B (``grace_hopper``), from installed packages.

    Raises
    ------
    InputError
        When scikit-image or matplotlib (or their sample images) are missing.
    """
    try:
        import matplotlib.cbook
        from skimage import data
    except ImportError as error:  # pragma: no cover - both are dependencies
        raise InputError(f"the demo needs scikit-image and matplotlib: {error}") from None
    astronaut = np.ascontiguousarray(data.astronaut()[..., :3])
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    grace = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if grace is None:  # pragma: no cover - part of matplotlib
        raise InputError(f"{path}: matplotlib's grace_hopper.jpg sample is missing or unreadable")
    return Portrait("astronaut", astronaut), Portrait("grace_hopper", cv2.cvtColor(grace, cv2.COLOR_BGR2RGB))


def face_centre_and_width(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and width of the widest face the HOG detector finds in a photo.

    Raises
    ------
    InputError
        When the photo holds no face.
    """
    from faceswap.detect import FaceDetector

    found = FaceDetector("hog").detect(image, upsample=1)
    if not found:
        raise InputError("no face found in a demo portrait")
    face = max(found, key=lambda detection: detection.width)
    left, top, right, bottom = face.box
    return np.array([(left + right) / 2, (top + bottom) / 2]), float(right - left)


def camera_path(frame: int, frames: int) -> tuple[float, float, float, float]:
    """The demo camera at ``frame``: zoom factor, roll in degrees, and shift (x, y) as a share of the frame.

    Every term is periodic over the clip, so the gif loops without a jump.
    """
    phase = 2 * math.pi * frame / frames
    zoom = 1.0 + 0.12 * math.sin(phase)
    roll = 6.0 * math.sin(2 * phase + 0.5)
    shift_x = 0.07 * math.sin(phase + 1.0)
    shift_y = 0.04 * math.sin(2 * phase)
    return zoom, roll, shift_x, shift_y


def portrait_clip(
    image: np.ndarray, frames: int, size: int = CLIP_SIZE, face_width: float = CLIP_FACE_WIDTH
) -> Iterator[np.ndarray]:
    """Frames of a clip filmed from a photo by a camera that pans, zooms and rolls (see :func:`camera_path`).

    The face is scaled to about ``face_width`` pixels and kept a little above
    the frame's centre; parts of the view beyond the photo's edge are mirrored.
    """
    centre, width = face_centre_and_width(image)
    scale = face_width / width
    for frame in range(frames):
        zoom, roll, shift_x, shift_y = camera_path(frame, frames)
        matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), roll, scale * zoom)
        matrix[:, 2] += np.array([size * (0.5 + shift_x), size * (0.45 + shift_y)]) - centre
        yield cv2.warpAffine(
            image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101
        )


def write_clip(portrait: Portrait, path: Path, seconds: float = CLIP_SECONDS, fps: int = CLIP_FPS) -> Path:
    """Film ``portrait`` into an mp4 at ``path`` (labelled synthetic, like every output)."""
    from faceswap.media.writer import FrameSpec, Mp4Writer

    frames = round(seconds * fps)
    writer = Mp4Writer(
        path,
        FrameSpec(CLIP_SIZE, CLIP_SIZE, Fraction(fps)),
        crf=16,
        overwrite=True,
        label=f"synthetic video: a still photo filmed by faceswap demo {_version()}",
    )
    with writer:
        for image in portrait_clip(portrait.image, frames):
            writer.write(image)
    return path


def _version() -> str:
    from faceswap import __version__

    return __version__


@dataclass
class DemoResult:
    """What the demo made and measured."""

    out: Path
    video: Path
    gif: Path
    preview: Path
    loss_plot: Path
    report: Path
    iterations: int
    loss_a: float
    loss_b: float
    train_seconds: float
    trained: dict = field(default_factory=dict)
    untrained: dict = field(default_factory=dict)

    def format(self) -> str:
        """The closing lines printed after a run."""

        def share(report: dict) -> str:
            return f"{100 * transfer_share(report):.0f} %"

        return "\n".join(
            [
                f"trained the lite model for {self.iterations} iterations in "
                f"{self.train_seconds / 60:.1f} min (loss A {self.loss_a:.4f}, B {self.loss_b:.4f})",
                f"identity transfer to grace_hopper: {share(self.trained)} of frames after training, "
                f"{share(self.untrained)} with the untrained network",
                f"  distance to grace_hopper {_number(self.trained.get('target_distance'))} "
                f"(the astronaut's own face: {_number(self.trained.get('original_target_distance'))}; "
                f"same person below 0.6)",
                f"wrote {self.video}, {self.gif.name}, {self.preview.name}, {self.loss_plot.name}, "
                f"{self.report.name}",
            ]
        )


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def transfer_share(report: dict) -> float:
    """Share of the frames checked for identity where the swapped face became the target.

    Unlike the report's own ``identity_transfer`` (over frames where both clips
    show a face), a checked frame whose face the swap lost counts as a failure
    here: an untrained network paints no recognisable face at all.
    """
    checked = [row for row in report.get("per_frame", []) if row.get("identity_checked")]
    if not checked:
        return 0.0
    return sum(bool(row.get("transferred")) for row in checked) / len(checked)


def _prepare_out(out: Path) -> Path:
    """Create ``out``, or reuse it when a previous demo made it; refuse anyone else's non-empty folder."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; --out must be a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise OutputError(f"{out} already holds files that the demo did not make; choose another --out")
    ensure_output_dir(out)
    (out / MARKER).write_text("made by faceswap demo; a new demo run replaces its files here\n")
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def run_demo(
    out: Path | str,
    minutes: float = DEFAULT_MINUTES,
    *,
    progress: bool = True,
    clip_seconds: float = CLIP_SECONDS,
) -> DemoResult:
    """Run extract → train → convert → score on the bundled portraits; see the module docstring.

    Parameters
    ----------
    out
        Output folder (created; a previous demo's files in it are replaced).
    minutes
        Training time. Five minutes on two CPU cores make a blurry but clearly
        recognisable Grace Hopper; a GPU does far more in the same time.
    progress
        Show progress bars.
    clip_seconds
        Length of the two clips (tests shorten them).

    Raises
    ------
    FaceswapError
        When ``out`` cannot be used or a step fails.
    """
    if not (math.isfinite(minutes) and 0 < minutes <= 24 * 60):
        raise InputError(f"--minutes must be above 0 and at most 1440, not {minutes:g}")
    out = Path(out)
    guard_outputs(bundled_portrait_files(), [out])
    with lock_outputs([out], "demo"):
        return _run_demo(out, minutes, progress, clip_seconds)


@contextlib.contextmanager
def _details_quieted(*names: str) -> Iterator[None]:
    """Info lines of the loggers ``names`` left out (unless ``-v`` asked for details); warnings stay."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() == logging.INFO:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _run_demo(out: Path, minutes: float, progress: bool, clip_seconds: float) -> DemoResult:
    """:func:`run_demo` with ``out`` checked against the bundled photos and locked."""
    from faceswap.convert import ConvertOptions, convert
    from faceswap.extract import ExtractOptions, extract
    from faceswap.score import score
    from faceswap.train import TrainConfig, train

    work = _prepare_out(out)
    portrait_a, portrait_b = bundled_portraits()

    log.info("demo 1/5: filming the two portraits into %g-second clips", clip_seconds)
    with _details_quieted(NO_SOUND_LOGGER):
        clips = [write_clip(p, work / f"{p.name}.mp4", clip_seconds) for p in (portrait_a, portrait_b)]

    log.info("demo 2/5: extracting the faces of both clips")
    faces = [work / f"{p.name}_faces" for p in (portrait_a, portrait_b)]
    for clip, folder in zip(clips, faces, strict=True):
        extract(clip, ExtractOptions(output=folder, progress=progress))

    log.info("demo 3/5: training the %s model for %g min", DEMO_MODEL, minutes)
    config = TrainConfig(
        model=DEMO_MODEL,
        batch_size=DEMO_BATCH_SIZE,
        learning_rate=DEMO_LEARNING_RATE,
        seed=DEMO_SEED,
        preview_every=10**9,  # written once, at the end
    )
    model_dir = work / "model"
    trained = train(faces[0], faces[1], model_dir, config, time_limit=minutes * 60, progress=progress)
    if trained.signal is not None:  # Ctrl-C, SIGTERM or SIGHUP: the model is saved; stop the demo too
        from faceswap.signals import Interrupted

        raise Interrupted(trained.signal)

    log.info(
        "demo 4/5: converting the astronaut's clip to Grace Hopper's face, four times (video, gif, preview "
        "and the untrained network's video; the clips have no sound)"
    )
    alignments = faces[0] / ALIGNMENTS_NAME
    video, gif, preview = out / "demo.mp4", out / "demo.gif", out / "preview.png"
    middle = round(clip_seconds * CLIP_FPS) // 4  # the camera is closest here
    for number, (output, extra) in enumerate(
        ((video, {}), (gif, {"width": 256}), (preview, {"preview": middle}))
    ):
        options = ConvertOptions(
            model=model_dir, output=output, alignments=alignments, overwrite=True, progress=progress, **extra
        )
        with _details_quieted(NO_SOUND_LOGGER, *([CONVERT_LOGGER] if number else [])):
            convert(clips[0], options)
    untrained_video = work / "untrained.mp4"
    with _details_quieted(NO_SOUND_LOGGER, CONVERT_LOGGER):
        convert(
            clips[0],
            ConvertOptions(model=model_dir, output=untrained_video, alignments=alignments, progress=progress),
            model=_untrained_model(config.centering),
        )
    loss_plot = out / "loss.png"
    shutil.copyfile(model_dir / "loss.png", loss_plot)

    log.info("demo 5/5: scoring the swap against the untrained network's")
    targets, sources = (
        [_save_photo(p, work) for p in portraits] for portraits in ([portrait_b], [portrait_a])
    )
    from faceswap.model_folder import read_state

    stored = read_state(model_dir)
    reports = {
        name: score(
            clips[0],
            swapped,
            targets,
            sources,
            identity_every=2,
            model_size=stored.input_size,
            centering=stored.centering,
            progress=progress,
        ).to_json()
        for name, swapped in (("trained", video), ("untrained", untrained_video))
    }
    report_path = out / "score.json"
    write_json_atomic(report_path, reports, indent=1)
    return DemoResult(
        out=out,
        video=video,
        gif=gif,
        preview=preview,
        loss_plot=loss_plot,
        report=report_path,
        iterations=trained.iteration,
        loss_a=trained.loss_a,
        loss_b=trained.loss_b,
        train_seconds=trained.seconds,
        trained=reports["trained"],
        untrained=reports["untrained"],
    )


def _save_photo(portrait: Portrait, folder: Path) -> Path:
    """Save a portrait as a PNG, the reference photo of its identity for scoring."""
    path = folder / f"{portrait.name}.png"
    if not cv2.imwrite(str(path), cv2.cvtColor(portrait.image, cv2.COLOR_RGB2BGR)):
        raise OutputError(f"{path}: could not write the photo")
    return path


def _untrained_model(centering: str):
    """The demo's network as training starts it (same seed, same centering), wrapped for convert."""
    from faceswap.model import build_autoencoder, model_spec
    from faceswap.model_folder import TrainingState
    from faceswap.runtime import keras
    from faceswap.swap_model import SwapModel

    keras.utils.set_random_seed(DEMO_SEED)
    state = TrainingState(DEMO_MODEL, model_spec(DEMO_MODEL).input_size, config={"centering": centering})
    return SwapModel(build_autoencoder(DEMO_MODEL), state)
