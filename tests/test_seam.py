"""The seam measure: it sees a step of colour where the blend ends, not changes of the inner face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap.align import alignment_matrix
from faceswap.blend import face_size
from faceswap.faces import FaceFinder
from faceswap.mask import hull_mask
from faceswap.seam import BAND_STOP, seam_band, seam_difference


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    found = FaceFinder().largest(astronaut)
    assert found is not None
    return astronaut, found.landmarks


def brighter(image: np.ndarray, where: np.ndarray, amount: float = 40.0) -> np.ndarray:
    return np.clip(image.astype(np.float32) + amount * where[..., None], 0, 255).astype(np.uint8)


def test_a_step_at_the_edge_is_seen_a_change_inside_is_not(face) -> None:
    image, landmarks = face
    assert seam_difference(image, image, landmarks, "face") == 0.0
    hull = hull_mask(landmarks, image.shape[:2])
    pasted = brighter(image, hull)  # a face pasted paler up to its outline
    step = seam_difference(image, pasted, landmarks, "face")
    assert step is not None and step > 10
    # The same change kept well inside the band (eyes, nose, mouth) leaves the seam alone.
    margin = round(1.5 * BAND_STOP * face_size(alignment_matrix(landmarks)))
    inner = cv2.erode(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    assert inner.sum() > 0.2 * hull.sum()
    assert seam_difference(image, brighter(image, inner), landmarks, "face") < 0.1 * step


def test_the_band_lies_inside_the_models_square(face) -> None:
    _, landmarks = face
    for centering in ("face", "legacy"):
        band = seam_band(landmarks, centering)
        assert band.any()
        assert not band[0].any() and not band[-1].any() and not band[:, 0].any() and not band[:, -1].any()
