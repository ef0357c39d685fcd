"""The alignment transform: Umeyama, the mean face, crops and the way back."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from faceswap.align import (
    CROP_PADDING,
    MEAN_FACE,
    alignment_matrix,
    crop_face,
    crop_matrix,
    face_region,
    invert,
    similarity_from_parameters,
    similarity_parameters,
    transform_points,
    umeyama,
    warp_to_frame,
)
from faceswap.detect import FaceDetector, LandmarkPredictor
from faceswap.landmarks import INNER, MIRROR


def similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[cos, -sin, tx], [sin, cos, ty]])


@pytest.mark.parametrize("seed", range(5))
def test_umeyama_recovers_a_known_similarity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.uniform(-50, 50, (51, 2))
    truth = similarity(rng.uniform(0.2, 5), rng.uniform(-np.pi, np.pi), *rng.uniform(-100, 100, 2))
    estimated = umeyama(points, transform_points(points, truth))
    np.testing.assert_allclose(estimated, truth, atol=1e-9)


def test_umeyama_agrees_with_scikit_image_under_noise() -> None:
    rng = np.random.default_rng(7)
    points = rng.uniform(0, 200, (51, 2))
    target = transform_points(points, similarity(0.7, 0.4, 10, -3)) + rng.normal(0, 2, (51, 2))
    reference = SimilarityTransform.from_estimate(points, target).params[:2]
    np.testing.assert_allclose(umeyama(points, target), reference, atol=1e-8)


def test_umeyama_never_returns_a_reflection() -> None:
    points = np.random.default_rng(1).uniform(0, 10, (20, 2))
    mirrored = points * [-1, 1]
    matrix = umeyama(points, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_mean_face_fills_the_unit_square_and_is_symmetric() -> None:
    assert MEAN_FACE.shape == (51, 2)
    assert MEAN_FACE.min() >= 0 and MEAN_FACE.max() <= 1
    # One side touches both borders (uniform scaling), the other is centred.
    low, high = MEAN_FACE.min(axis=0), MEAN_FACE.max(axis=0)
    assert np.isclose((high - low).max(), 1.0)
    np.testing.assert_allclose((low + high) / 2, [0.5, 0.5], atol=1e-6)
    full = np.zeros((68, 2))
    full[INNER.start :] = MEAN_FACE
    mirrored = np.column_stack([1 - full[:, 0], full[:, 1]])[MIRROR]
    np.testing.assert_allclose(mirrored[INNER.start :], MEAN_FACE, atol=1e-9)


def test_mirror_permutation_is_an_involution() -> None:
    assert sorted(MIRROR) == list(range(68))
    np.testing.assert_array_equal(MIRROR[MIRROR], np.arange(68))


def test_alignment_matrix_maps_a_transformed_mean_face_back() -> None:
    truth = similarity(3.0, 0.3, 120, 80)  # unit face -> frame
    landmarks = np.zeros((68, 2))
    landmarks[INNER.start :] = transform_points(MEAN_FACE, truth)
    landmarks[: INNER.start] = [500, 500]  # the jaw must not matter
    np.testing.assert_allclose(alignment_matrix(landmarks), invert(truth), atol=1e-9)


def test_alignment_matrix_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="68"):
        alignment_matrix(np.zeros((5, 2)))


def test_classic_layout_face_region() -> None:
    assert face_region(256) == (48, 208)
    assert face_region(128) == (24, 104)
    matrix = crop_matrix(np.hstack([np.eye(2), np.zeros((2, 1))]), 256)
    np.testing.assert_allclose(transform_points([[0, 0], [1, 1]], matrix), [[48, 48], [208, 208]])


@pytest.fixture(scope="module")
def astronaut_landmarks(astronaut: np.ndarray) -> np.ndarray:
    detection = FaceDetector().detect(astronaut)[0]
    return LandmarkPredictor()(astronaut, detection.box)


def test_crop_then_inverse_lands_landmarks_where_they_were(astronaut_landmarks: np.ndarray) -> None:
    matrix = alignment_matrix(astronaut_landmarks)
    to_crop = crop_matrix(matrix, 256)
    in_crop = transform_points(astronaut_landmarks, to_crop)
    # Inner landmarks sit inside the central face region of the crop.
    start, stop = face_region(256)
    inner = in_crop[INNER.start :]
    assert inner.min() > start - 10 and inner.max() < stop + 10
    np.testing.assert_allclose(transform_points(in_crop, invert(to_crop)), astronaut_landmarks, atol=1e-9)


def test_crop_is_upright_and_warps_back_onto_the_frame(
    astronaut: np.ndarray, astronaut_landmarks: np.ndarray
) -> None:
    matrix = alignment_matrix(astronaut_landmarks)
    crop = crop_face(astronaut, matrix, 256)
    in_crop = transform_points(astronaut_landmarks, crop_matrix(matrix, 256))
    right_eye, left_eye = in_crop[36:42].mean(0), in_crop[42:48].mean(0)
    assert abs(right_eye[1] - left_eye[1]) < 3  # eyes level
    assert right_eye[0] < 128 < left_eye[0]  # either side of the centre line
    # Warp the face region back: where it lands, it matches the original pixels.
    start, stop = face_region(256)
    region = np.ascontiguousarray(crop[start:stop, start:stop])
    back = warp_to_frame(region, matrix, (astronaut.shape[1], astronaut.shape[0]), padding=0.0)
    covered = warp_to_frame(np.full_like(region, 255), matrix, (512, 512), padding=0.0)[..., 0] == 255
    assert covered.sum() > 2000
    error = np.abs(back[covered].astype(float) - astronaut[covered].astype(float)).mean()
    assert error < 12, error  # two bilinear resamplings, no misplacement


def test_similarity_parameters_round_trip() -> None:
    matrix = similarity(1.7, -2.5, 30, -4)
    np.testing.assert_allclose(similarity_from_parameters(similarity_parameters(matrix)), matrix, atol=1e-12)


def test_crop_padding_is_the_classic_value() -> None:
    assert CROP_PADDING * 256 == 48
