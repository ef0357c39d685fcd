"""Derive faceswap's mean-face template from dlib's 300-W landmark files.

The template in ``faceswap/align.py`` (``MEAN_FACE``) was printed by this
script. It is the generalised Procrustes mean of the 51 inner landmarks of all
faces in ``../shared/data/dlib_faces/{training,testing}_with_face_landmarks.xml``
(landmarks that dlib's own 68-point predictor placed), made exactly
left/right symmetric, turned so the eyes are level, and scaled uniformly so the
larger side of its bounding box spans the unit square, centred in it.

Usage: ``python scripts/make_mean_face.py [DATA_DIR]``
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from faceswap.align import umeyama
from faceswap.landmarks import INNER, LEFT_EYE, MIRROR, RIGHT_EYE


def read_faces(xml_file: Path) -> list[np.ndarray]:
    faces = []
    for box in ET.parse(xml_file).getroot().iter("box"):
        parts = sorted(box.iter("part"), key=lambda p: int(p.get("name")))
        if len(parts) == 68:
            faces.append(np.array([[float(p.get("x")), float(p.get("y"))] for p in parts]))
    return faces


def normalise(shape: np.ndarray) -> np.ndarray:
    centred = shape - shape.mean(axis=0)
    return centred / np.sqrt((centred**2).sum(axis=1).mean())


def procrustes_mean(shapes: list[np.ndarray], rounds: int = 20) -> np.ndarray:
    mean = normalise(shapes[0])
    for _ in range(rounds):
        aligned = []
        for shape in shapes:
            matrix = umeyama(shape, mean)
            aligned.append(shape @ matrix[:, :2].T + matrix[:, 2])
        mean = normalise(np.mean(aligned, axis=0))
    return mean


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "../shared/data"
    folder = data / "dlib_faces"
    faces = read_faces(folder / "training_with_face_landmarks.xml")
    faces += read_faces(folder / "testing_with_face_landmarks.xml")
    # Mirror every face too, so the mean is exactly symmetric.
    mirrored = [np.column_stack([-f[:, 0], f[:, 1]])[MIRROR] for f in faces]
    mean68 = procrustes_mean(faces + mirrored)
    # Level the eyes.
    right, left = mean68[list(RIGHT_EYE)].mean(0), mean68[list(LEFT_EYE)].mean(0)
    angle = np.arctan2(left[1] - right[1], left[0] - right[0])
    rotation = np.array([[np.cos(-angle), -np.sin(-angle)], [np.sin(-angle), np.cos(-angle)]])
    mean68 = mean68 @ rotation.T
    inner = mean68[list(INNER)]
    low, high = inner.min(axis=0), inner.max(axis=0)
    scale = (high - low).max()
    inner = (inner - low) / scale + (1 - (high - low) / scale) / 2
    print(f"# {len(faces)} faces (+ mirrored) from {folder}")
    print("MEAN_FACE = np.array([")
    for x, y in inner:
        print(f"    [{x:.6f}, {y:.6f}],")
    print("])")


if __name__ == "__main__":
    main()
