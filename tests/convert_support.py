"""Shared material for the convert tests: model folders, a fake model, alignments of real clips.

Built once per test process (cached), in a temporary folder removed at exit, so
several test modules can share them without conftest fixtures.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from faceswap.align import crop_face
from faceswap.alignments import Alignments, FrameRecord, SourceInfo
from faceswap.media.ffmpeg import run_ffmpeg, summarize_stderr
from faceswap.media.reader import VideoSource
from tests.conftest import require_data


@functools.cache
def workspace() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="faceswap-convert-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def random_model_folder(
    folder: Path, name: str = "lite", state_name: str | None = None, seed: int = 0
) -> Path:
    """A model folder with random weights of network ``name``; ``state_name`` can make state.json lie.

    The weights come from ``seed``, so every run of the tests sees the same model.
    """
    from faceswap.model import build_autoencoder, model_spec
    from faceswap.model_folder import TrainingState, save_keras_atomic, write_state
    from faceswap.runtime import keras

    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    save_keras_atomic(build_autoencoder(name), folder / "model.keras")
    claimed = state_name or name
    write_state(folder, TrainingState(claimed, model_spec(claimed).input_size))
    return folder


@functools.cache
def lite_folder() -> Path:
    """A ``lite`` model folder with random (seeded) weights, for plumbing tests.

    An untrained network paints a flat grey face (about 0.5 everywhere) under
    a mask of about 0.5: enough to exercise loading, batching and both
    decoders, not to prove that a face was replaced (see :func:`other_face_model`).
    """
    return random_model_folder(workspace() / "lite")


@functools.cache
def lite_model():
    """The loaded :class:`faceswap.swap_model.SwapModel` of :func:`lite_folder`."""
    from faceswap.model_folder import load_swap_model

    return load_swap_model(lite_folder())


class FixedFaceModel:
    """A stand-in model that paints one fixed face (a real one) whatever it is shown.

    The pasted face then moves only as the pipeline's geometry moves it: what
    the steadiness test needs to measure.
    """

    def __init__(self, face: np.ndarray) -> None:
        self.input_size = face.shape[0]
        self.face = face.astype(np.float32) / 255.0

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        count = len(faces)
        masks = np.ones((count, self.input_size, self.input_size, 1), np.float32)
        return np.repeat(self.face[None], count, axis=0), masks


def fixed_face_model(video: Path, alignments: Alignments, frame: int = 0, size: int = 128) -> FixedFaceModel:
    image = next(VideoSource(video).frames(frame, frame + 1)).image
    return FixedFaceModel(crop_face(image, alignments.faces(frame)[0].matrix, size, padding=0.0))


@functools.cache
def other_face_model() -> FixedFaceModel:
    """A stand-in that paints another man's face (d19's first frame) over every face.

    What tests need to prove that faces were replaced (and only where
    asked): unlike an untrained network, it paints a certainly different,
    face-like image, the same on every run.
    """
    video = require_data("video", "d19.mp4")
    return fixed_face_model(video, find_alignments_now(video, range(1)))


def find_alignments_now(video: Path, frames: range | None = None) -> Alignments:
    """Alignments of a clip (every frame, or ``frames``), found with convert's own detection."""
    from faceswap.alignments import SourceInfo
    from faceswap.convert_plan import detect_faces

    source = VideoSource(video)
    found = detect_faces(source, [frames or range(source.frame_count)], progress=False)
    return Alignments(
        SourceInfo.of(source), frames={index: FrameRecord(faces) for index, faces in found.items()}
    )


@functools.cache
def alignments_of(video: Path) -> Path:
    """An alignments file of every frame of ``video``, saved once."""
    path = workspace() / f"{video.stem}_alignments.json"
    find_alignments_now(video).save(path)
    return path


def excerpt(video: Path, frames: int, path: Path) -> Path:
    """The first ``frames`` frames of ``video`` (with its audio), re-encoded nearly losslessly."""
    args = ["-i", str(video), "-frames:v", str(frames), "-c:v", "libx264", "-crf", "8", "-pix_fmt", "yuv420p"]
    result = run_ffmpeg([*args, "-c:a", "copy", "-shortest", "-y", str(path)])
    assert result.returncode == 0, summarize_stderr(result.stderr)
    return path


def cut_alignments(alignments: Alignments, video: Path, frames: int) -> Alignments:
    """The first ``frames`` frames of ``alignments``, as the alignments of an excerpt ``video``."""
    source = alignments.source
    info = SourceInfo(str(video), "video", frames, source.width, source.height, source.fps, None)
    return Alignments(info, frames={i: r for i, r in alignments.frames.items() if i < frames})
