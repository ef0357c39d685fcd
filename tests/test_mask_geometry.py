"""Mask polygons for training (faceswap.mask_geometry)."""

from __future__ import annotations

import numpy as np

from faceswap.mask_geometry import OUTLINE_POINTS, landmark_masks, mask_outline


def test_landmark_masks_are_anti_aliased_polygons() -> None:
    # 68 points on the square [8, 24]², eyes and mouth at its centre.
    corners = [[8.0, 8.0], [24.0, 8.0], [24.0, 24.0], [8.0, 24.0]]
    landmarks = np.array(corners * 17)
    landmarks[36:42] = [[14, 14], [15, 13], [16, 13], [17, 14], [16, 15], [15, 15]]
    landmarks[42:48] = landmarks[36:42] + np.array([0, 4])
    landmarks[48:68] = [[12, 20], [20, 20], [20, 22], [12, 22]] * 5
    outline = mask_outline(landmarks)
    assert outline.shape == (OUTLINE_POINTS, 2)
    masks = landmark_masks(outline[None], 32)
    assert masks.shape == (1, 32, 32, 2) and masks.dtype == np.uint8
    hull, features = masks[0, ..., 0], masks[0, ..., 1]
    assert hull[16, 16] == 255 and hull[2, 2] == 0 and hull[8:24, 8:24].min() == 255
    assert hull[:7].max() == 0 and hull[26:].max() == 0 and hull[:, 26:].max() == 0  # sharp, within a pixel
    assert features[14, 15] == 255 and features[21, 16] == 255 and features[10, 10] == 0
    # Moving the outline moves the masks.
    shifted = landmark_masks(outline[None] + [3, 0], 32)
    np.testing.assert_array_equal(shifted[0, :, 3:], masks[0, :, :-3])
