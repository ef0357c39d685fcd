"""The blender: faces go back exactly where they were cut from; nothing outside them changes."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from faceswap.align import crop_face
from faceswap.blend import BlendOptions, SwappedFace, paste_faces, paste_region
from faceswap.mask import hull_mask

HEIGHT, WIDTH = 240, 320


def frame() -> np.ndarray:
    """A smooth, colourful frame (resampling it loses little, so geometry errors show)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    image = np.dstack(
        [128 + 100 * np.sin(x / 23), 128 + 100 * np.cos(y / 19), 128 + 60 * np.sin((x + y) / 31)]
    )
    return image.astype(np.uint8)


def matrix(centre=(150.0, 110.0), size=120.0, angle=0.2) -> np.ndarray:
    """Alignment matrix whose face square (side ``size`` px) is centred on ``centre``, turned by ``angle``."""
    scale = 1.0 / size
    rotation = scale * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    result = np.zeros((2, 3))
    result[:, :2] = rotation
    result[:, 2] = 0.5 - rotation @ np.asarray(centre)
    return result


def landmarks_for(align: np.ndarray) -> np.ndarray:
    """68 points spread over the inner part of the face square (so the hull is most of it)."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    unit = 0.5 + 0.42 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    inverse = cv2.invertAffineTransform(align)
    return unit @ inverse[:, :2].T + inverse[:, 2]


def swapped(align: np.ndarray, face: np.ndarray, mask_value: float = 1.0) -> SwappedFace:
    side = face.shape[0]
    return SwappedFace(face, np.full((side, side, 1), mask_value, np.float32), align, landmarks_for(align))


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=2)


def test_outside_the_face_nothing_changes_inside_the_face_does() -> None:
    image, align = frame(), matrix()
    red = np.zeros((64, 64, 3), np.float32)
    red[..., 0] = 1.0
    result = paste_faces(image, [swapped(align, red)], BlendOptions(color="none"))
    left, top, right, bottom = paste_region(align, (WIDTH, HEIGHT))
    outside = np.ones((HEIGHT, WIDTH), bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(result[outside], image[outside])
    hull = hull_mask(landmarks_for(align), (HEIGHT, WIDTH))
    np.testing.assert_array_equal(result[hull == 0], image[hull == 0])  # the mask limits the change
    centre = result[100:120, 140:160]
    assert np.all(centre[..., 0] == 255) and np.all(centre[..., 1:] == 0)  # fully swapped in the middle
    assert image is not result and not changed(image, frame()).any()  # the input is not modified


def test_warping_back_inverts_the_crop() -> None:
    """A face cut out along its alignment and pasted back unchanged reproduces the frame."""
    image, align = frame(), matrix(size=100.0, angle=-0.35)
    crop = crop_face(image, align, 128, padding=0.0).astype(np.float32) / 255.0
    options = BlendOptions(mask="learned", blur=0.0, color="none")
    inside = hull_mask(landmarks_for(align), (HEIGHT, WIDTH)) == 1

    def error(result: np.ndarray) -> float:
        return float(np.abs(result.astype(int) - image.astype(int))[inside].mean())

    in_place = error(paste_faces(image, [swapped(align, crop)], options))
    shifted = align.copy()
    shifted[0, 2] += 0.5 / 100  # half a frame pixel off, as a wrong pixel-centre convention would be
    assert in_place < 0.1
    assert error(paste_faces(image, [swapped(shifted, crop)], options)) > 5 * in_place


def test_half_mask_blends_half_way() -> None:
    image, align = frame(), matrix()
    white = np.ones((64, 64, 3), np.float32)
    result = paste_faces(image, [swapped(align, white, 0.5)], BlendOptions(mask="learned", color="none"))
    expected = (image[110, 150].astype(float) + 255) / 2
    np.testing.assert_allclose(result[110, 150], expected, atol=1.0)


def test_seamless_clone_stays_in_place_and_adapts_the_colour() -> None:
    image, align = frame(), matrix()
    face = crop_face(image, align, 64, padding=0.0).astype(np.float32) / 255.0
    face = np.clip(face * 0.6, 0, 1)  # darker than the frame
    plain = paste_faces(image, [swapped(align, face)], BlendOptions(color="none", edge_color=False))
    seamless = paste_faces(image, [swapped(align, face)], BlendOptions(color="none", seamless=True))
    left, top, right, bottom = paste_region(align, (WIDTH, HEIGHT))
    outside = np.ones((HEIGHT, WIDTH), bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(seamless[outside], image[outside])
    inside = changed(plain, image)
    plain_error = np.abs(plain.astype(int) - image.astype(int))[inside].mean()
    seamless_error = np.abs(seamless.astype(int) - image.astype(int))[inside].mean()
    assert seamless_error < 0.5 * plain_error  # Poisson blending restores the frame's brightness


def test_the_edge_takes_the_frames_colour_and_the_inner_face_keeps_its_own() -> None:
    """A face whose upper half is paler than the frame (a decoder's forehead): no step where it ends."""
    image, align = frame(), matrix(angle=0.0)
    face = crop_face(image, align, 64, padding=0.0).astype(np.float32) / 255.0
    face[:32] = np.clip(face[:32] + 0.25, 0, 1)
    options = BlendOptions(mask="hull", color="none")
    plain = paste_faces(image, [swapped(align, face)], replace(options, edge_color=False))
    matched = paste_faces(image, [swapped(align, face)], options)
    hull = hull_mask(landmarks_for(align), (HEIGHT, WIDTH))
    band = (hull > 0.99) & (cv2.erode(hull, np.ones((9, 9), np.uint8)) < 0.99)  # just inside the edge
    band[110:, :] = False  # the pale upper half

    def step(result: np.ndarray) -> float:
        return float(np.abs(result.astype(int) - image.astype(int))[band].mean())

    assert step(plain) > 15 and step(matched) < 0.3 * step(plain)
    # The middle of the face (beyond the band) keeps the decoder's colours exactly.
    np.testing.assert_array_equal(matched[95:105, 140:160], plain[95:105, 140:160])
    # With --seamless the Poisson blend matches the edge; the two do not add up.
    both = BlendOptions(mask="hull", color="none", seamless=True)
    np.testing.assert_array_equal(
        paste_faces(image, [swapped(align, face)], both),
        paste_faces(image, [swapped(align, face)], replace(both, edge_color=False)),
    )


def test_sharpening_adds_detail() -> None:
    image, align = frame(), matrix()
    rng = np.random.default_rng(0)
    face = cv2.GaussianBlur(rng.random((64, 64, 3)).astype(np.float32), (0, 0), 1.5)
    options = BlendOptions(mask="learned", color="none", blur=0.0)
    soft = paste_faces(image, [swapped(align, face)], options)
    sharp = paste_faces(
        image, [swapped(align, face)], BlendOptions(mask="learned", color="none", blur=0.0, sharpen=1.0)
    )

    def detail(result: np.ndarray) -> float:
        return float(
            cv2.Laplacian(cv2.cvtColor(result[90:130, 130:170], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
        )

    assert detail(sharp) > 1.5 * detail(soft)


def test_faces_at_or_beyond_the_frame_edge() -> None:
    image = frame()
    white = np.ones((64, 64, 3), np.float32)
    far = matrix(centre=(-500.0, -500.0))
    assert paste_region(far, (WIDTH, HEIGHT)) is None
    np.testing.assert_array_equal(paste_faces(image, [swapped(far, white)], BlendOptions()), image)
    edge = matrix(centre=(10.0, HEIGHT - 5.0))
    for seamless in (False, True):
        result = paste_faces(image, [swapped(edge, white)], BlendOptions(color="none", seamless=seamless))
        assert result.shape == image.shape and changed(result, image).any()


@pytest.mark.parametrize("color", ["none", "mean", "reinhard", "hist"])
def test_two_faces_in_one_frame(color: str) -> None:
    image = frame()
    grey = np.full((64, 64, 3), 0.5, np.float32)
    faces = [
        swapped(matrix(centre=(80.0, 100.0), size=70), grey),
        swapped(matrix(centre=(240.0, 130.0), size=70), grey),
    ]
    result = paste_faces(image, faces, BlendOptions(color=color))
    region = changed(result, image)
    assert region[:, :160].any() and region[:, 160:].any()
