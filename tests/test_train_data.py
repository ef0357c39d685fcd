"""Training data and losses: faces folders, landmark masks, deterministic batches, the tf.data pipeline."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.align import LEGACY
from faceswap.augment import AugmentConfig, source_extent
from faceswap.crops import read_crop, write_crop
from faceswap.errors import InputError
from faceswap.train.batches import BATCH_KEYS, BatchSource, nearest_faces
from faceswap.train.dataset import format_bytes, list_faces, load_faces


@pytest.fixture(scope="module")
def faces_a(faces_d18: Path) -> object:
    return load_faces(faces_d18, "A", 64, centering=LEGACY)


@pytest.fixture(scope="module")
def faces_b(faces_d19: Path) -> object:
    return load_faces(faces_d19, "B", 64, centering=LEGACY)


def test_faces_are_stored_at_the_input_size_with_the_margin_augmentation_reaches(faces_a) -> None:
    assert len(faces_a) == 40 and faces_a.without_landmarks == 0
    start, stop = faces_a.face_box
    assert stop - start == pytest.approx(64, abs=0.5)  # the face region at the model's input size
    size = faces_a.images.shape[1]
    assert faces_a.images.shape == (40, size, size, 3) and faces_a.images.dtype == np.uint8
    # Enough padding for the default augmentation (1.52 face sides), centred, and no more than the crop.
    assert size >= source_extent(AugmentConfig()) * 64 and size <= 256 * 64 / 160 + 1
    assert start == pytest.approx(size - stop, abs=0.01)
    # The inner landmarks (brows to lips) fill the face region.
    inner = faces_a.landmarks[:, 17:]
    assert inner.min() > start - 0.05 * (stop - start) and inner.max() < stop + 0.05 * (stop - start)
    # Unaugmented, a stored face is the crop's face region shrunk to the input size.
    image, _ = read_crop(faces_a.files[0])
    expected = cv2.resize(image[48:208, 48:208], (64, 64), interpolation=cv2.INTER_AREA)
    plain = BatchSource((faces_a, faces_a), 1, 64, AugmentConfig.none()).plain(0, [0])["face"][0]
    assert np.abs(plain.astype(int) - expected).mean() < 1.0


def test_no_augmentation_keeps_only_the_face_region(faces_d18: Path) -> None:
    faces = load_faces(faces_d18, "A", 64, AugmentConfig.none(), centering=LEGACY)
    assert faces.images.shape[1] <= 64 + 6  # the face region and an interpolation edge


def test_loading_holds_no_more_than_the_stored_faces(tmp_path: Path, faces_d18: Path, caplog) -> None:
    """200 crops: peak memory is the final array and a crop or two per thread, not a copy of the set."""
    import tracemalloc

    folder = tmp_path / "many"
    folder.mkdir()
    crops = sorted(faces_d18.glob("*.png"))
    for number in range(200):
        target = folder / f"{number:04d}.png"
        try:
            os.link(crops[number % len(crops)], target)
        except OSError:
            shutil.copy(crops[number % len(crops)], target)
    tracemalloc.start()
    try:
        with caplog.at_level(logging.INFO, logger="faceswap"):
            faces = load_faces(folder, "A", 64, workers=2, centering=LEGACY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(faces) == 200
    per_face = faces.nbytes / 200
    assert per_face < 256 * 256 * 3 / 6  # a sixth of a whole 256-px crop
    assert peak < faces.nbytes + 3e6, (peak, faces.nbytes)
    size = faces.images.shape[1]
    memory = format_bytes(faces.nbytes)
    assert f"200 faces of 256 px from {folder}, kept at {size} px: {memory} in memory" in caplog.text
    assert format_bytes(faces.nbytes) == f"{faces.nbytes / 1e6:.1f} MB"


def test_masks_follow_the_landmarks(faces_a) -> None:
    source = BatchSource((faces_a, faces_a), 4, 64, AugmentConfig.none(), seed=0)
    plain = source.plain(0, range(4))
    hull, features = plain["mask"][..., 0] / 255.0, plain["mask"][..., 1] / 255.0
    assert 0.75 < hull.mean() < 0.99  # the face fills most of the face region, not all of it
    assert features.mean() > 0.03 and (features * (1 - hull)).sum() < 0.02 * features.sum()
    # The mask is drawn from the landmarks: the eye centres are inside both masks.
    start, stop = source.faces[0].face_box
    eye = (
        (source.faces[0].landmarks[0, 36:42].mean(axis=0) - start) * 64 / (stop - start)
    )  # working copy → 64 px
    x, y = np.floor(eye).astype(int)
    assert hull[0, y, x] == 1 and features[0, y, x] > 0.9


def test_batches_are_deterministic_and_cover_every_face(faces_a, faces_b) -> None:
    source = BatchSource((faces_a, faces_b), 8, 64, AugmentConfig(), seed=3)
    first, again, next_batch = source.batch(7), source.batch(7), source.batch(8)
    assert set(first) == set(BATCH_KEYS)
    for key in BATCH_KEYS:
        np.testing.assert_array_equal(first[key], again[key])
        assert first[key].dtype == np.uint8 and first[key].shape[:3] == (8, 64, 64)
    assert not np.array_equal(first["warped_a"], next_batch["warped_a"])
    # One epoch (5 batches of 8 out of 40) visits every face exactly once, in a new order each epoch.
    epoch = np.concatenate([source.indices(number, 0) for number in range(5)])
    assert sorted(epoch) == list(range(40))
    assert not np.array_equal(epoch, np.concatenate([source.indices(number, 0) for number in range(5, 10)]))
    other_seed = BatchSource((faces_a, faces_b), 8, 64, AugmentConfig(), seed=4)
    assert not np.array_equal(other_seed.batch(7)["warped_a"], first["warped_a"])


def test_warp_to_landmarks_pairs_similar_faces_and_keeps_the_target(faces_a, faces_b) -> None:
    nearest = nearest_faces(faces_a, faces_b, count=3, chunk=7)  # chunks smaller than the side
    assert nearest.shape == (len(faces_a), 3) and nearest.max() < len(faces_b)

    # Brute force: the three closest B faces in face-region units are the ones found.
    def units(faces):
        start, stop = faces.face_box
        return ((faces.landmarks - start) / (stop - start)).reshape(len(faces), -1)

    distances = ((units(faces_a)[:, None] - units(faces_b)[None]) ** 2).sum(-1)
    for row, found in zip(distances, nearest, strict=True):
        assert set(found) == set(np.argsort(row)[:3])
    plain = BatchSource((faces_a, faces_b), 8, 64, AugmentConfig(to_landmarks=False), seed=3)
    warped = BatchSource((faces_a, faces_b), 8, 64, AugmentConfig(), seed=3)  # the default
    first, again = warped.batch(7), warped.batch(7)
    for key in BATCH_KEYS:
        np.testing.assert_array_equal(first[key], again[key])  # still deterministic
    # The input is bent differently from the random warp; the same faces and framing are chosen (the
    # targets differ only because choosing partners draws from the same random stream first).
    assert not np.array_equal(first["warped_a"], plain.batch(7)["warped_a"])
    np.testing.assert_array_equal(warped.indices(7, 0), plain.indices(7, 0))
    assert np.abs(first["warped_a"].astype(int) - first["target_a"]).mean() > 1.0


def test_the_tf_data_pipeline_yields_the_source_batches(faces_a, faces_b) -> None:
    from faceswap.train.pipeline import make_dataset

    source = BatchSource((faces_a, faces_b), 4, 64, AugmentConfig(), seed=1)
    dataset = make_dataset(source, start=10, workers=2)
    for offset, element in enumerate(dataset.take(3)):
        expected = source.batch(10 + offset)
        for key in BATCH_KEYS:
            np.testing.assert_array_equal(element[key].numpy(), expected[key])


def test_warp_to_landmarks_pairs_a_face_with_another_source_or_at_least_another_frame(
    tmp_path: Path, faces_a, faces_d18: Path, faces_d19: Path
) -> None:
    # Pre-training: one set of many people for both sides (here two videos, one person each).
    for source in (faces_d18, faces_d19):
        shutil.copytree(source, tmp_path / "many" / source.name)
    many = load_faces(tmp_path / "many", "A", 64, centering=LEGACY, whole_tree=True)
    assert len(many) == 80
    sources = np.array([key[0] for key in many.frames])
    assert len(set(sources)) == 2
    partners = nearest_faces(many, many, count=5)
    assert (sources[partners] != sources[:, None]).all()  # the other video's faces, never its own
    # One source only: the nearest faces of other frames, never the face itself.
    alone = nearest_faces(faces_a, faces_a, count=5)
    frames = np.array([key[1] for key in faces_a.frames])
    assert (frames[alone] != frames[:, None]).all()
    assert (alone != np.arange(len(faces_a))[:, None]).all()


def test_missing_empty_and_mixed_folders_are_refused(tmp_path: Path, faces_d18: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        list_faces(tmp_path / "missing", "A")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no faces here")
    with pytest.raises(InputError, match="no face images"):
        list_faces(tmp_path / "empty", "A")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    files = sorted(faces_d18.glob("*.png"))[:3]
    for path in files:
        shutil.copy(path, mixed)
    image, _ = read_crop(files[0])
    write_crop(mixed / "small.png", cv2.resize(image, (128, 128)))
    with pytest.raises(InputError, match=r"different sizes.*small\.png"):
        load_faces(mixed, "A", 64, centering=LEGACY)


def test_crops_without_landmarks_use_the_mean_face(tmp_path: Path, faces_d18: Path, caplog) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for path in sorted(faces_d18.glob("*.png"))[:2]:
        image, _ = read_crop(path)
        write_crop(folder / path.name, image)  # no metadata
    (folder / "broken.png").write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING, logger="faceswap"):
        faces = load_faces(folder, "B", 64, centering=LEGACY)
    assert len(faces) == 2 and faces.without_landmarks == 2
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "skipped 1 unusable" in messages and "no landmarks" in messages and "only 2 faces" in messages
    hull = BatchSource((faces, faces), 2, 64, AugmentConfig.none()).plain(0, [0])["mask"][0, ..., 0]
    assert 0.3 < hull.mean() / 255 < 0.8


def test_crops_too_small_for_the_model_are_warned_about(faces_d18: Path, caplog) -> None:
    # 256-px crops hold a 160-px face: enough for a 128-px model, not for a 256-px input.
    with caplog.at_level(logging.WARNING, logger="faceswap"):
        load_faces(faces_d18, "A", 128, centering=LEGACY)
    assert "enlarged" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="faceswap"):
        load_faces(faces_d18, "A", 256, centering=LEGACY)
    assert "fills only 160 px of these 256-px crops" in caplog.text and "--size 410" in caplog.text


def test_losses() -> None:
    from faceswap.runtime import tf
    from faceswap.train.loss import face_loss, mask_loss, pixel_weights

    rng = np.random.default_rng(0)
    target = tf.constant(rng.random((2, 32, 32, 3), dtype=np.float32))
    noisy = tf.clip_by_value(target + rng.normal(0, 0.1, (2, 32, 32, 3)).astype(np.float32), 0, 1)
    ones = tf.ones((2, 32, 32, 1))
    mae = face_loss("mae")
    assert float(mae(target, noisy, ones)) == pytest.approx(
        float(tf.reduce_mean(tf.abs(target - noisy))), rel=1e-5
    )
    assert float(mae(target, target, ones)) == 0
    dssim = face_loss("ssim")
    assert float(dssim(target, target, ones)) == pytest.approx(0, abs=1e-5)
    reference = float(
        tf.reduce_mean(tf.image.ssim(target, noisy, max_val=1.0, filter_size=11, filter_sigma=1.5))
    )
    assert float(dssim(target, noisy, ones)) == pytest.approx((1 - reference) / 2, rel=1e-3)
    assert float(dssim(target, noisy, ones)) > 0.01
    # The weight decides where errors count: an error only outside the hull costs background_weight.
    masks = np.zeros((2, 32, 32, 2), np.float32)
    masks[:, 8:24, 8:24, 0] = 1
    weights = pixel_weights(tf.constant(masks), 0.0, 0.0)
    outside = target.numpy().copy()
    outside[:, :4] = 1 - outside[:, :4]
    assert float(mae(target, tf.constant(outside), weights)) == 0
    assert float(mae(target, tf.constant(outside), pixel_weights(tf.constant(masks), 0.5, 0.0))) > 0.01
    assert float(mask_loss(tf.constant(masks[..., :1]), tf.constant(masks[..., :1]))) == 0
    with pytest.raises(ValueError, match="unknown loss"):
        face_loss("mse")
