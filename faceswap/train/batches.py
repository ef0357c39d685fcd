"""Deterministic augmented training batches of both sides.

:class:`BatchSource` makes batch number ``k`` of training from ``(seed, k)``
alone: every side is visited in a fresh random order each epoch, and batch
``k`` is the same whichever worker makes it and whenever. That lets batches be
made in parallel, in any order, and lets ``--resume`` continue the exact data
stream. :mod:`faceswap.train.pipeline` feeds them to the training step.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from faceswap.augment import AugmentConfig, augment_batch, transform_landmarks
from faceswap.mask_geometry import landmark_masks
from faceswap.train.dataset import FaceSet

#: Names and dtypes of the arrays in a training batch (all ``uint8``, per side ``a`` and ``b``):
#: ``warped`` (the input), ``target`` (unwarped) and ``mask`` (hull, eyes and mouth).
#: Warp to landmarks picks each face's partner at random among this many most similar faces of the other side.
PARTNERS = 10

BATCH_KEYS = tuple(f"{kind}_{side}" for side in ("a", "b") for kind in ("warped", "target", "mask"))


@dataclass
class BatchSource:
    """Deterministic augmented batches of both sides.

    Attributes
    ----------
    faces
        The two sides' :class:`FaceSet`.
    batch_size
        Faces per side per batch.
    input_size
        The model's input size.
    augment
        Augmentation strengths.
    seed
        With the batch number (and the input pipeline), fixes every batch.
    """

    faces: tuple[FaceSet, FaceSet]
    batch_size: int
    input_size: int
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        self._order = functools.lru_cache(maxsize=16)(self._epoch_order)

    def _epoch_order(self, pipeline: int, side: int, epoch: int) -> np.ndarray:
        count = len(self.faces[side])
        return np.random.default_rng([self.seed, pipeline, side, epoch, 1]).permutation(count)

    def indices(self, number: int, side: int, pipeline: int = 0) -> np.ndarray:
        """Which faces of ``side`` batch ``number`` uses: each epoch visits all in a new order."""
        count = len(self.faces[side])
        positions = number * self.batch_size + np.arange(self.batch_size)
        epochs, offsets = np.divmod(positions, count)
        return np.array(
            [self._order(pipeline, side, int(e))[o] for e, o in zip(epochs, offsets, strict=True)], np.int64
        )

    def batch(self, number: int, pipeline: int = 0) -> dict[str, np.ndarray]:
        """Batch ``number`` of input pipeline ``pipeline``: arrays named as in :data:`BATCH_KEYS`."""
        result = {}
        for side, (letter, faces) in enumerate(zip("ab", self.faces, strict=True)):
            rng = np.random.default_rng([self.seed, pipeline, side, int(number)])
            chosen = self.indices(number, side, pipeline)
            warp_to = self._partners(side, chosen, rng) if self.augment.to_landmarks else None
            result.update(self._side(faces, chosen, self.augment, rng, letter, warp_to))
        return result

    @functools.cached_property
    def _nearest(self) -> tuple[np.ndarray, np.ndarray]:
        """For each face of each side, the :data:`PARTNERS` most similar faces of the other side."""
        a, b = self.faces
        return nearest_faces(a, b), nearest_faces(b, a)

    def _partners(
        self, side: int, chosen: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(own, partner)`` landmarks for warp to landmarks, both in the coordinates of ``side``'s crops."""
        own, other = self.faces[side], self.faces[1 - side]
        candidates = self._nearest[side][chosen]
        partners = candidates[np.arange(len(chosen)), rng.integers(0, candidates.shape[1], len(chosen))]
        scale = (own.face_box[1] - own.face_box[0]) / (other.face_box[1] - other.face_box[0])
        moved = (other.landmarks[partners] - other.face_box[0]) * scale + own.face_box[0]
        return own.landmarks[chosen], moved

    def _side(
        self,
        faces: FaceSet,
        chosen: np.ndarray,
        augment: AugmentConfig,
        rng: np.random.Generator,
        letter: str,
        warp_to: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        images = [faces.images[index] for index in chosen]  # views, not a copy of the batch
        batch = augment_batch(images, faces.face_box, self.input_size, augment, rng, warp_to)
        outlines = transform_landmarks(faces.outlines[chosen].astype(np.float64), batch.matrices)
        return {
            f"warped_{letter}": batch.warped,
            f"target_{letter}": batch.target,
            f"mask_{letter}": landmark_masks(outlines, self.input_size),
        }

    def plain(self, side: int, indices: Iterable[int]) -> dict[str, np.ndarray]:
        """Faces of ``side`` without augmentation (previews): ``face`` and ``mask`` arrays."""
        chosen = np.asarray(list(indices), np.int64)
        arrays = self._side(self.faces[side], chosen, AugmentConfig.none(), np.random.default_rng(0), "x")
        return {"face": arrays["target_x"], "mask": arrays["mask_x"]}


def _shapes(faces: FaceSet) -> np.ndarray:
    """Each face's landmarks in face-region units, flattened: ``(n, 136)`` (comparable across sides)."""
    start, stop = faces.face_box
    return ((faces.landmarks - start) / (stop - start)).reshape(len(faces), -1).astype(np.float32)


def _key_ids(faces: FaceSet, others: FaceSet, part: slice) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids of a part of each face's frame key (one numbering for both sets)."""
    numbering: dict[object, int] = {}
    return tuple(
        np.array([numbering.setdefault(key[part], len(numbering)) for key in side.frames], np.int64)
        for side in (faces, others)
    )


def nearest_faces(faces: FaceSet, others: FaceSet, count: int = PARTNERS, chunk: int = 512) -> np.ndarray:
    """``(len(faces), k)`` indices of the faces of ``others`` whose landmarks lie closest to each face's.

    ``k`` is ``count`` or all of ``others`` if fewer. Distances are between
    aligned landmarks in face-region units; computed a chunk of rows at a time
    so that thousands of faces a side stay small in memory.

    A partner never comes from the face's own source (video or photo) where
    ``others`` holds ``k`` faces of other sources, and never from its own
    frame: pre-training gives both sides one set of many people, where the
    nearest faces would be the face itself and its neighbouring frames, a warp
    that bends nothing. The two sides of a pair come from different videos,
    so there this changes nothing.
    """
    own, theirs = _shapes(faces), _shapes(others)
    k = min(count, len(theirs))
    own_source, their_source = _key_ids(faces, others, slice(0, 1))
    own_frame, their_frame = _key_ids(faces, others, slice(0, 3))
    rows = []
    for start in range(0, len(own), chunk):
        block = slice(start, start + chunk)
        distances = (own[block] ** 2).sum(1)[:, None] - 2 * own[block] @ theirs.T + (theirs**2).sum(1)[None]
        allowed = own_source[block, None] != their_source[None]
        few = allowed.sum(1) < k  # one source (or nearly): only the face's own frame is left out
        allowed[few] = own_frame[block][few, None] != their_frame[None]
        distances[~allowed] = np.inf
        rows.append(np.argpartition(distances, k - 1, axis=1)[:, :k])
    return np.concatenate(rows).astype(np.int64)


def default_workers() -> int:
    """Parallel batch makers: half the CPU cores (the step needs the rest), 1 to 8."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))
