"""The training/validation split never lets a held-back face into training; validation figures respond."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.align import CROP_PADDING, DEFAULT_CENTERING, LEGACY, MEAN_FACE, face_region
from faceswap.crop_names import crop_file_name
from faceswap.crops import CropInfo, read_crop_info, write_crop
from faceswap.errors import InputError, OutputError
from faceswap.train.split import split_faces, write_split
from faceswap.train.validation import ValidationFaces, load_validation_faces, reconstruction


def fake_landmarks(size: int = 64) -> np.ndarray:
    start, stop = face_region(size)
    inner = MEAN_FACE * (stop - start) + start
    return np.concatenate([np.repeat(inner[:1], 17, axis=0), inner])


def write_faces(folder: Path, frames: dict[str, list[int]], faces_per_frame: int = 1) -> list[Path]:
    """Small crops with metadata: for each source, the given frame numbers, ``faces_per_frame`` each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = []
    for source, numbers in frames.items():
        for frame in numbers:
            for face in range(faces_per_frame):
                info = CropInfo(fake_landmarks(), 64, CROP_PADDING, source, frame, face)
                path = folder / crop_file_name(Path(source).stem, frame, face)
                write_crop(path, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), info)
                written.append(path)
    return written


def frames_of(paths: list[Path]) -> set[tuple[str, int]]:
    infos = [read_crop_info(path) for path in paths]
    return {(info.source, info.frame) for info in infos}


@pytest.mark.parametrize(("every", "block"), [(10, 1), (4, 3), (2, 1)])
def test_a_held_back_frame_never_reaches_training(tmp_path: Path, every: int, block: int) -> None:
    files = write_faces(
        tmp_path, {"x.mp4": list(range(40)), "y.mp4": list(range(0, 60, 3))}, faces_per_frame=2
    )
    split = split_faces(files, every, block)
    assert not set(split.training) & set(split.validation)
    assert sorted(split.training + split.validation) == sorted(files)
    # Whole frames: both faces of a frame are on the same side.
    assert not frames_of(split.training) & frames_of(split.validation)
    held = len(frames_of(split.validation))
    assert held == pytest.approx(60 / every, abs=block)
    if block > 1:  # held back in runs of consecutive frames of one source
        numbers = sorted(frame for source, frame in frames_of(split.validation) if source == "x.mp4")
        assert numbers[:block] == list(range(numbers[0], numbers[0] + block))


def test_the_split_follows_the_extracted_frames_not_their_numbers(tmp_path: Path) -> None:
    """Faces of every 10th frame (extract --every 10), split one in 10: still 10 % held back, not 0."""
    files = write_faces(tmp_path, {"x.mp4": list(range(0, 1000, 10))})
    split = split_faces(files, 10)
    assert len(split.validation) == 10 and len(split.training) == 90


def test_the_split_is_the_same_whatever_the_order(tmp_path: Path) -> None:
    files = write_faces(tmp_path, {"x.mp4": list(range(30))})
    assert split_faces(files[::-1], 5).validation[::-1] == split_faces(files, 5).validation


def test_images_without_metadata_are_split_too(tmp_path: Path) -> None:
    files = []
    for index in range(20):
        path = tmp_path / f"photo{index:02d}.png"
        write_crop(path, np.zeros((64, 64, 3), np.uint8))
        files.append(path)
    split = split_faces(files, 5)
    assert [path.name for path in split.validation] == [
        "photo04.png",
        "photo09.png",
        "photo14.png",
        "photo19.png",
    ]


def test_write_split_links_the_faces_into_two_new_folders(tmp_path: Path) -> None:
    source = tmp_path / "faces"
    files = write_faces(source, {"x.mp4": list(range(25))})
    (source / "alignments.json").write_text("{}")
    before = {path.name: path.stat().st_mtime_ns for path in source.iterdir()}
    split = write_split(source, tmp_path / "train", tmp_path / "val", every=5)
    assert {path.name for path in source.iterdir()} == set(before)  # the input is untouched
    assert all(path.stat().st_mtime_ns == before[path.name] for path in source.iterdir())
    train_names = {path.name for path in (tmp_path / "train").iterdir()}
    val_names = {path.name for path in (tmp_path / "val").iterdir()}
    assert train_names == {path.name for path in split.training} and len(val_names) == 5
    assert not train_names & val_names and train_names | val_names == {path.name for path in files}
    assert os.path.samefile(tmp_path / "val" / "x_000004_0.png", source / "x_000004_0.png")
    assert not list(tmp_path.glob(".faceswap-tmp-*"))


def test_training_reads_no_validation_face(tmp_path: Path, faces_d18: Path) -> None:
    """The split's training folder, loaded by train, holds exactly the training faces."""
    from faceswap.train.dataset import load_faces

    split = write_split(faces_d18, tmp_path / "train", tmp_path / "val", every=4, block=2)
    loaded = load_faces(tmp_path / "train", "A", 64, centering=LEGACY)
    names = {path.name for path in loaded.files}
    assert names == {path.name for path in split.training}
    assert not names & {path.name for path in split.validation}
    assert len(split.validation) == 10


def test_bad_splits_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "faces"
    files = write_faces(source, {"x.mp4": list(range(3))})
    with pytest.raises(InputError, match="at least 2"):
        split_faces(files, 1)
    with pytest.raises(InputError, match="at least 1"):
        split_faces(files, 10, 0)
    with pytest.raises(InputError, match="too few"):
        write_split(source, tmp_path / "t", tmp_path / "v", every=10)
    write_faces(source, {"x.mp4": list(range(3, 20))})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.png").write_bytes(b"")
    with pytest.raises(OutputError, match="not an empty folder"):
        write_split(source, tmp_path / "t", tmp_path / "busy", every=10)
    assert not (tmp_path / "t").exists()
    with pytest.raises(InputError, match="no such folder"):
        write_split(tmp_path / "missing", tmp_path / "t", tmp_path / "v")


# -- validation figures -------------------------------------------------------------------------------------


class FixedModel:
    """A stand-in for a trained model: returns the faces given, blurred by ``sigma`` (0: unchanged)."""

    input_size = 64

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma
        self.sides: list[str] = []

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        self.sides.append(decoder)
        out = faces if not self.sigma else np.stack([cv2.GaussianBlur(f, (0, 0), self.sigma) for f in faces])
        return out.astype(np.float32) / 255.0, np.ones((*faces.shape[:3], 1), np.float32)


def test_validation_figures_rank_a_blurred_reconstruction_below_a_perfect_one(faces_d18: Path) -> None:
    faces = load_validation_faces(faces_d18, "A", 64, DEFAULT_CENTERING)
    assert faces.faces.shape == (40, 64, 64, 3) and faces.hulls.shape == (40, 64, 64, 1)
    assert 0.5 < faces.hulls.mean() < 0.99 and not faces.hulls[:, 0, 0].any()  # the face, not its corners
    perfect = reconstruction(FixedModel(0), faces, "a")
    assert perfect.mae == pytest.approx(0, abs=1e-6) and perfect.ssim == pytest.approx(1, abs=1e-4)
    assert perfect.detail == pytest.approx(1, abs=1e-3)  # a float copy keeps every bit of detail
    blurred = [reconstruction(FixedModel(sigma), faces, "b") for sigma in (1, 3)]
    assert 0 < blurred[0].mae < blurred[1].mae and 1 > blurred[0].ssim > blurred[1].ssim
    assert 0.6 > blurred[0].detail > blurred[1].detail > 0  # a blur of 1 px already halves it
    assert blurred[0].faces == 40


def test_validation_uses_the_sides_own_decoder_in_batches(faces_d18: Path, monkeypatch) -> None:
    import faceswap.train.validation as validation

    monkeypatch.setattr(validation, "BATCH", 16)
    faces = load_validation_faces(faces_d18, "B", 64, DEFAULT_CENTERING)
    model = FixedModel(0)
    reconstruction(model, ValidationFaces(faces.faces, faces.hulls), "b")
    assert model.sides == ["b", "b", "b"]


def test_validation_faces_are_the_square_the_model_was_trained_on(faces_d18: Path) -> None:
    """The held-back faces are cut as the model's centering cuts its training faces.

    A face-centred model shown the legacy square (a 1.5 times closer crop)
    rebuilds it badly; the benchmark measured that mismatch, not the model,
    until the centering became a required argument.
    """
    from faceswap.augment import AugmentConfig
    from faceswap.train.dataset import load_faces
    from faceswap.train.validation import validation_faces

    for centering in (DEFAULT_CENTERING, LEGACY):
        trained = load_faces(faces_d18, "A", 64, AugmentConfig(), centering=centering)
        held = load_validation_faces(faces_d18, "A", 64, centering)
        np.testing.assert_array_equal(held.faces, validation_faces(trained, 64).faces)
    face, legacy = (load_validation_faces(faces_d18, "A", 64, name) for name in (DEFAULT_CENTERING, LEGACY))
    assert face.hulls.mean() < 0.8 * legacy.hulls.mean()  # the wider square: the face covers less of it
