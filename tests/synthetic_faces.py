"""Synthetic faces for tests of geometry over time: the mean face placed, turned and shaken at will."""

from __future__ import annotations

import numpy as np

from faceswap.align import MEAN_FACE, alignment_matrix
from faceswap.alignments import Face


def face_at(x: float, y: float, size: float = 100.0, angle: float = 0.0, noise=None) -> Face:
    """A face whose 68 landmarks are the mean face (plus a jaw) placed at (x, y)."""
    jaw_angles = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    unit = np.concatenate(
        [np.stack([0.5 + 0.6 * np.cos(jaw_angles), 0.45 + 0.6 * np.sin(jaw_angles)], 1), MEAN_FACE]
    )
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (unit - 0.5) @ rotation.T * size + [x, y]
    if noise is not None:
        points = points + noise
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    return Face((left, top, right, bottom), points, alignment_matrix(points))
