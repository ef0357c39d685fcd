"""Who is this? Face embeddings with dlib's ResNet face recogniser.

dlib's model maps a face to a 128-number embedding; two photos of the same
person lie closer than :data:`SAME_PERSON_THRESHOLD` (0.6, dlib's own
threshold, 99.38 % on the LFW benchmark) far more often than photos of two
people. extract uses it to keep only the faces of a reference person
(``--reference``); score uses it to measure identity transfer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import dlib
import numpy as np

from faceswap.detect import FaceDetector, LandmarkPredictor, model_file
from faceswap.errors import InputError
from faceswap.landmarks import bounding_box

#: Distances below this mean "the same person" (dlib's recommendation).
SAME_PERSON_THRESHOLD = 0.6
#: A reference photo is refused when its second largest face is at least this
#: fraction of the largest's width: which person is meant is then a guess.
AMBIGUOUS_REFERENCE = 0.5


class FaceEmbedder:
    """128-D face embeddings from an image and the face's 68 landmarks."""

    def __init__(self) -> None:
        self._model = dlib.face_recognition_model_v1(str(model_file("recognition")))

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Embedding of the face with ``landmarks`` (frame pixels) in RGB ``image``."""
        return self.embed_many(image, [landmarks])[0]

    def embed_many(self, image: np.ndarray, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of several faces of one image, shape ``(n, 128)``."""
        if not faces:
            return np.zeros((0, 128))
        shapes = dlib.full_object_detections()
        for landmarks in faces:
            left, top, right, bottom = (round(v) for v in bounding_box(landmarks))
            points = dlib.points([dlib.point(round(x), round(y)) for x, y in landmarks])
            shapes.append(dlib.full_object_detection(dlib.rectangle(left, top, right, bottom), points))
        descriptors = self._model.compute_face_descriptor(np.ascontiguousarray(image), shapes)
        return np.array([np.array(d) for d in descriptors], dtype=np.float64)


def distance(first: np.ndarray, second: np.ndarray) -> float:
    """Euclidean distance between two embeddings (0 = identical)."""
    return float(np.linalg.norm(np.asarray(first) - np.asarray(second)))


def identity_of_photos(
    photos: Iterable[Path | str],
    *,
    detector: FaceDetector | None = None,
    predictor: LandmarkPredictor | None = None,
    embedder: FaceEmbedder | None = None,
    upsample: int = 1,
) -> np.ndarray:
    """Mean embedding of the largest face in each photo: one person's identity.

    Raises
    ------
    InputError
        When a photo cannot be read, shows no face, or shows several faces
        whose sizes do not make the person clear (the second largest at least
        :data:`AMBIGUOUS_REFERENCE` of the largest's width), or no photo was given.
    """
    from faceswap.media.reader import read_image

    detector = detector or FaceDetector("hog")
    predictor = predictor or LandmarkPredictor()
    embedder = embedder or FaceEmbedder()
    embeddings = []
    for photo in photos:
        image = read_image(photo)
        detections = detector.detect(image, upsample=upsample)
        if not detections:
            raise InputError(f"{photo}: no face found in this reference photo")
        largest = max(detections, key=lambda d: d.width)
        rivals = [
            d for d in detections if d is not largest and d.width >= AMBIGUOUS_REFERENCE * largest.width
        ]
        if rivals:
            raise InputError(
                f"{photo}: {len(rivals) + 1} faces of similar size in this reference photo; "
                "crop it to the one person to keep"
            )
        embeddings.append(embedder.embed(image, predictor(image, largest.box)))
    if not embeddings:
        raise InputError("no reference photos were given")
    return np.mean(embeddings, axis=0)
