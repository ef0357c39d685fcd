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
from typing import TYPE_CHECKING

import dlib
import numpy as np

from faceswap.detect import model_file
from faceswap.errors import InputError
from faceswap.landmarks import bounding_box

if TYPE_CHECKING:
    from faceswap.faces import FaceFinder, LargestFaceSearch

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
    finder: FaceFinder | None = None,
    embedder: FaceEmbedder | None = None,
    upsample: int = 1,
    strict: bool = True,
    what: str = "reference photos",
) -> np.ndarray:
    """Mean embedding of one face in each photo: one person's identity.

    Parameters
    ----------
    photos
        Image files.
    finder
        Finds the faces (made with ``upsample`` when not given).
    embedder
        Loaded when not given.
    strict
        ``True`` (a ``--reference`` of extract, convert and sort): every photo
        must show one clear face, its largest. ``False`` (score's ``--target``
        and ``--source``): a crop written by ``faceswap extract`` gives the
        landmarks it carries (a tight crop is often too close to its border for
        the detector), other photos their largest face
        (:class:`faceswap.faces.LargestFaceSearch`), and photos without a face
        are left out.
    what
        The photos as the error messages name them.

    Raises
    ------
    InputError
        When no face is found in any photo, or no photo was given. When
        ``strict``, also when a photo shows no face, or several faces whose
        sizes do not make the person clear (the second largest at least
        :data:`AMBIGUOUS_REFERENCE` of the largest's width).
    MediaError
        When a photo cannot be read.
    """
    from faceswap.faces import FaceFinder, LargestFaceSearch

    finder = finder or FaceFinder(upsample=upsample)
    embedder = embedder or FaceEmbedder()
    search = LargestFaceSearch(finder)
    embeddings = []
    for photo in photos:
        image, landmarks = _clear_face(photo, finder) if strict else _face_or_crop(photo, search)
        if landmarks is not None:
            embeddings.append(embedder.embed(image, landmarks))
    if not embeddings:
        raise InputError(f"no {what} were given" if strict else f"no face found in the {what}")
    return np.mean(embeddings, axis=0)


def _clear_face(photo: Path | str, finder: FaceFinder) -> tuple[np.ndarray, np.ndarray]:
    """A photo and the landmarks of its one clear face (see :func:`identity_of_photos`, ``strict``)."""
    from faceswap.media.reader import read_image

    image = read_image(photo)
    detections = finder.detect(image)
    if not detections:
        raise InputError(f"{photo}: no face found in this reference photo")
    largest = max(detections, key=lambda d: d.width)
    rivals = [d for d in detections if d is not largest and d.width >= AMBIGUOUS_REFERENCE * largest.width]
    if rivals:
        raise InputError(
            f"{photo}: {len(rivals) + 1} faces of similar size in this reference photo; "
            "crop it to the one person to keep"
        )
    return image, finder.place(image, largest).landmarks


def _face_or_crop(photo: Path | str, search: LargestFaceSearch) -> tuple[np.ndarray, np.ndarray | None]:
    """A photo and the landmarks a crop carries, else those of its largest face (``None``: no face)."""
    from faceswap.crops import read_crop
    from faceswap.media.reader import read_image

    try:
        image, info = read_crop(photo)
        if info is not None:
            return image, info.landmarks
    except InputError:  # not a square crop: a photo
        image = read_image(photo)
    return image, search.find(image)
