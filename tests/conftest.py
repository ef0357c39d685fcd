"""Shared fixtures: the real test material in ../shared/data, and small generated inputs.

Tests that need ``../shared/data`` (real videos and photos, never committed)
skip with a clear reason when it is absent, so a fresh clone still passes. In
CI (``CI=true``) a missing folder fails the run instead: there the data must
be present, and a silently skipped suite would prove nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FACESWAP_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not DATA_DIR.is_dir():
        raise pytest.UsageError(f"CI=true but the test data folder {DATA_DIR} is missing")


def require_data(*parts: str) -> Path:
    """Path of a file or folder under ../shared/data; skip (or fail in CI) when absent."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        message = f"test data {path} is absent (real media live in ../shared/data, next to the project)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The ../shared/data folder."""
    return require_data()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (512x512 RGB, one face of about 87 px)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def video_d18() -> Path:
    """A 7.2 s, 480x480, 30 fps talking head with (silent) audio."""
    return require_data("video", "d18.mp4")


@pytest.fixture(scope="session")
def video_d19() -> Path:
    """Another man, 8.3 s, 480x480, 30 fps."""
    return require_data("video", "d19.mp4")


def make_face_crops(video: Path, folder: Path, frames: int, size: int = 256, start: int = 0) -> list[Path]:
    """Aligned crops (with metadata) of the largest face in ``frames`` frames of ``video`` from ``start``.

    Built from the foundation modules alone (the largest face found afresh in
    every frame, :meth:`faceswap.faces.FaceFinder.largest`), so tests of train
    and convert do not depend on the extract pipeline.
    """
    from faceswap.align import CROP_PADDING, crop_face, crop_matrix, transform_points
    from faceswap.crop_names import crop_file_name
    from faceswap.crops import CropInfo, write_crop
    from faceswap.faces import FaceFinder
    from faceswap.media.reader import VideoSource

    folder.mkdir(parents=True, exist_ok=True)
    finder = FaceFinder()
    written = []
    for frame in VideoSource(video).frames(start, start + frames):
        face = finder.largest(frame.image)
        if face is None:
            continue
        crop = crop_face(frame.image, face.matrix, size)
        info = CropInfo(
            landmarks=transform_points(face.landmarks, crop_matrix(face.matrix, size, CROP_PADDING)),
            size=size,
            padding=CROP_PADDING,
            source=video.name,
            frame=frame.index,
            face=0,
        )
        path = folder / crop_file_name(video.stem, frame.index, 0)
        write_crop(path, crop, info)
        written.append(path)
    return written


@pytest.fixture(scope="session")
def faces_d18(tmp_path_factory: pytest.TempPathFactory, video_d18: Path) -> Path:
    """Folder of 40 aligned 256-px crops of d18.mp4 (identity A of the tests)."""
    folder = tmp_path_factory.mktemp("faces_d18")
    make_face_crops(video_d18, folder, 40)
    return folder


@pytest.fixture(scope="session")
def faces_d19(tmp_path_factory: pytest.TempPathFactory, video_d19: Path) -> Path:
    """Folder of 40 aligned 256-px crops of d19.mp4 (identity B of the tests)."""
    folder = tmp_path_factory.mktemp("faces_d19")
    make_face_crops(video_d19, folder, 40)
    return folder
