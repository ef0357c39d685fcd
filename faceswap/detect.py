"""Face detection and 68-point landmarks with dlib.

Model files come from the ``face_recognition_models`` package, located with
:mod:`importlib` (its ``__init__`` imports ``pkg_resources``, which recent
setuptools releases no longer ship, so it is never imported). Nothing is
downloaded at run time.

Detectors
---------
``hog``
    dlib's frontal-face HOG detector: fast on a CPU (about 20 ms for a 512x512
    frame), finds faces of about 80 px and larger at ``upsample=0`` (each
    upsample step halves that, at four times the cost).
``cnn``
    dlib's MMOD CNN detector: finds turned and smaller faces, but takes seconds
    per frame on a CPU.

Boxes are ``(left, top, right, bottom)`` floats in the pixels of the image that
was passed in, whatever scale the detector ran at internally; ``right`` and
``bottom`` are exclusive, so ``right - left`` is the width.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import dlib
import numpy as np

from faceswap.errors import FaceswapError

DetectorKind = Literal["hog", "cnn"]
Box = tuple[float, float, float, float]

MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}


@functools.cache
def model_file(name: str) -> Path:
    """Path of one of dlib's model files (keys of :data:`MODEL_FILES`).

    Raises
    ------
    FaceswapError
        When ``face_recognition_models`` is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceswapError("the face_recognition_models package is not installed (pip install faceswap)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILES[name]
    if not path.is_file():
        raise FaceswapError(f"dlib model file {path.name} is missing from face_recognition_models")
    return path


def cache_dir() -> Path:
    """Folder for files faceswap rebuilds at will: ``$XDG_CACHE_HOME/faceswap`` or ``~/.cache/faceswap``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "faceswap"


def frontal_face_detector() -> dlib.fhog_object_detector:
    """dlib's HOG frontal face detector, loaded from a cached copy when there is one.

    dlib builds this detector from text compiled into the library, which takes
    0.5 to 0.9 s of CPU (every extract worker pays it at start-up); the same
    detector saved in dlib's own format loads in about 2 ms. The copy is
    written to :func:`cache_dir` on first use, named after dlib's version; an
    unreadable copy is rebuilt, and a cache folder that cannot be written is
    simply not used.
    """
    cached = cache_dir() / f"dlib-{dlib.__version__}-frontal-face-hog.svm"
    if cached.is_file():
        try:
            return dlib.fhog_object_detector(str(cached))
        except RuntimeError:  # a damaged copy: rebuild it below
            pass
    detector = dlib.get_frontal_face_detector()
    temporary = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        detector.save(str(temporary))
        os.replace(temporary, cached)
    except (OSError, RuntimeError):
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
    return detector


@dataclass(frozen=True)
class Detection:
    """A face found by a detector: its box and the detector's confidence."""

    box: Box
    score: float

    @property
    def width(self) -> float:
        """Width of the box in pixels."""
        return self.box[2] - self.box[0]


def rectangle(box: Box) -> dlib.rectangle:
    """dlib rectangle nearest to a float box.

    Our boxes are half-open (``right`` and ``bottom`` lie just outside, as in
    NumPy slicing); dlib's rectangles include their right and bottom edges.
    """
    left, top, right, bottom = (round(v) for v in box)
    return dlib.rectangle(left, top, right - 1, bottom - 1)


class FaceDetector:
    """dlib face detector (HOG or CNN) that can run on a downscaled frame.

    Parameters
    ----------
    kind
        ``"hog"`` (default) or ``"cnn"``.
    """

    def __init__(self, kind: DetectorKind = "hog") -> None:
        if kind not in ("hog", "cnn"):
            raise FaceswapError(f"unknown detector {kind!r} (choose hog or cnn)")
        self.kind = kind
        if kind == "hog":
            self._hog = frontal_face_detector()
        else:
            self._cnn = dlib.cnn_face_detection_model_v1(str(model_file("cnn")))

    def detect(
        self, image: np.ndarray, *, upsample: int = 0, scale: float = 1.0, gray: bool = False
    ) -> list[Detection]:
        """Find faces in an RGB (or grayscale) image.

        Parameters
        ----------
        image
            ``uint8`` pixels.
        upsample
            dlib's upsampling steps; each finds faces half as large, at about
            four times the cost.
        scale
            Run the detector on the image resized by this factor (``< 1`` is
            faster but misses faces smaller than about ``80 / scale`` px).
            Boxes are returned in the coordinates of ``image``.
        gray
            Run on the gray image: HOG then computes one gradient per pixel
            instead of three (about 17 % faster); its boxes differ a little
            from those on the colour image.

        Returns
        -------
        list of Detection
            Highest score first.
        """
        work = image
        if scale != 1.0:
            height, width = image.shape[:2]
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if scale < 1:
                work = downscale(image, size)
            else:
                work = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        if gray and work.ndim == 3:
            work = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
        if self.kind == "hog":
            rects, scores, _ = self._hog.run(work, upsample, 0.0)
            found = [(r, float(s)) for r, s in zip(rects, scores, strict=True)]
        else:
            found = [(d.rect, float(d.confidence)) for d in self._cnn(work, upsample)]
        detections = [
            Detection(
                box=(r.left() / scale, r.top() / scale, (r.right() + 1) / scale, (r.bottom() + 1) / scale),
                score=score,
            )
            for r, score in found
        ]
        return sorted(detections, key=lambda d: d.score, reverse=True)


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` shrunk to ``size`` (width, height): halved by ``pyrDown`` while it can, then area-averaged.

    Area averaging straight from a 480-px frame to 231 px costs 1.3 ms; halving
    first (0.15 ms) leaves it a quarter of the pixels.
    """
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.pyrDown(image)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class LandmarkPredictor:
    """dlib's 68-point shape predictor (iBUG 300-W scheme).

    The predictor refines a mean shape placed in the given box, so the box
    should look like a HOG detector box (see :mod:`faceswap.track` for boxes
    derived from a previous frame's landmarks).
    """

    def __init__(self) -> None:
        self._predictor = dlib.shape_predictor(str(model_file("landmarks68")))

    def __call__(self, image: np.ndarray, box: Box) -> np.ndarray:
        """Landmarks of the face in ``box`` as a ``(68, 2)`` float64 array (pixels)."""
        shape = self._predictor(image, rectangle(box))
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)

    def full_object_detection(self, image: np.ndarray, box: Box) -> dlib.full_object_detection:
        """The raw dlib result, for dlib functions that need it (face embeddings)."""
        return self._predictor(image, rectangle(box))
