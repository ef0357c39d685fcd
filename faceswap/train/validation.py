"""Validation: how well a model rebuilds faces it was never trained on.

Each held-back face (see :mod:`faceswap.train.split`), unaugmented and at the
model's input size, goes through the shared encoder and its own side's
decoder; the reconstruction is compared with the face inside the face's
landmark hull (the region convert pastes), with the training losses'
own definitions (:mod:`faceswap.train.loss`): the mean absolute error, and
the SSIM over an 11-px Gaussian window. Both are pooled over all faces.

Beside them, *detail kept*: the fine structure (Laplacian energy, see
:mod:`faceswap.detail`) of the reconstructions inside the hull, away from its
edge, over the faces' own at the model's size. SSIM rises long before the
eyes and mouth sharpen; this tells an under-trained model (soft
reconstructions) from one that rebuilds its own person but not the other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from faceswap.augment import AugmentConfig

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from faceswap.train.dataset import FaceSet

#: Faces per forward pass.
BATCH = 64
#: ``faceswap train`` holds faces back only from a side with at least this many.
MIN_FACES_TO_HOLD_BACK = 200
#: Consecutive frames held back together by ``faceswap train``.
HELD_BLOCK = 5
#: Held-back faces a side that ``faceswap train``'s validation loss is measured on.
MAX_HELD_FACES = 64
#: Detail is measured inside the hull eroded by this fraction of the face's side (the
#: hull's edge, where face meets background, would count the background's change).
DETAIL_EROSION = 0.06


class Reconstructor(Protocol):
    """What validation needs of a model (:class:`faceswap.swap_model.SwapModel`)."""

    input_size: int

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        """Faces and masks, ``float32`` in ``[0, 1]``, for ``uint8`` aligned faces."""
        ...


@dataclass(frozen=True)
class ValidationFaces:
    """One side's held-back faces as the model sees them.

    Attributes
    ----------
    faces
        ``uint8`` ``(n, s, s, 3)`` at the model's input size ``s``.
    hulls
        ``float32`` ``(n, s, s, 1)`` in ``[0, 1]``: each face's landmark hull.
    """

    faces: np.ndarray
    hulls: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)


@dataclass(frozen=True)
class Reconstruction:
    """Validation figures of one side.

    ``mae`` (lower is better), ``ssim`` (1 is perfect) and ``detail``: the
    reconstructions' detail over the faces' own (:func:`mean_detail`; 1 keeps
    it all, a blur less).
    """

    mae: float
    ssim: float
    faces: int
    detail: float


def load_validation_faces(folder: Path | str, name: str, input_size: int, centering: str) -> ValidationFaces:
    """Read a folder of held-back faces as a model of ``input_size`` px and ``centering`` sees them.

    The centering has no default on purpose: a model shown another square of
    the face (a tighter or wider crop) than it was trained on rebuilds it
    badly, and its figures measure the mismatch, not the model.

    Raises
    ------
    InputError
        As :func:`faceswap.train.dataset.load_faces`.
    """
    from faceswap.train.dataset import load_faces

    faces = load_faces(
        folder, name, input_size, AugmentConfig.none(), centering=centering, few_faces_warning=False
    )
    return validation_faces(faces, input_size)


def validation_faces(faces: FaceSet, input_size: int) -> ValidationFaces:
    """A face set's faces as validation sees them: unaugmented, at ``input_size``, with their hulls."""
    from faceswap.train.batches import BatchSource

    source = BatchSource((faces, faces), batch_size=1, input_size=input_size, augment=AugmentConfig.none())
    plain = source.plain(0, range(len(faces)))
    return ValidationFaces(plain["face"], plain["mask"][..., :1].astype(np.float32) / 255.0)


def hold_back(faces: FaceSet, every: int) -> tuple[FaceSet, FaceSet | None]:
    """Split one side's faces for ``faceswap train``: ``(training, held back)``.

    One run of :data:`HELD_BLOCK` consecutive frames in every ``every`` runs
    is held back (:func:`faceswap.train.split.split_faces`: whole frames, so
    no near copy of a held-back face is trained on), and at most
    :data:`MAX_HELD_FACES` of those, evenly spread, are kept for the
    validation loss. Nothing is held back when ``every`` is 0 or the side has
    fewer than :data:`MIN_FACES_TO_HOLD_BACK` faces (each face counts more
    there than a validation curve is worth); the second item is then None.
    """
    from faceswap.train.split import held_back_frames

    if every == 0 or len(faces) < MIN_FACES_TO_HOLD_BACK:
        return faces, None
    held = held_back_frames(faces.frames, every, HELD_BLOCK)
    kept = [index for index, out in enumerate(held) if not out]
    out = [index for index, out in enumerate(held) if out]
    if not out or not kept:
        return faces, None
    spread = np.linspace(0, len(out) - 1, min(MAX_HELD_FACES, len(out))).round().astype(int)
    return faces.subset(kept), faces.subset([out[index] for index in spread])


def reconstruction(model: Reconstructor, faces: ValidationFaces, side: str) -> Reconstruction:
    """Rebuild ``faces`` with the decoder of their own ``side`` (``"a"`` or ``"b"``) and compare.

    Raises
    ------
    ValueError
        When the faces are not of the model's input size.
    """
    from faceswap.runtime import keras
    from faceswap.train.loss import weighted_dssim, weighted_mae

    rebuilt = decoded(model, faces, side)
    predicted = keras.ops.convert_to_tensor(rebuilt)
    target = keras.ops.convert_to_tensor(faces.faces.astype(np.float32) / 255.0)
    hulls = keras.ops.convert_to_tensor(faces.hulls)
    mae = float(weighted_mae(target, predicted, hulls))
    ssim = 1.0 - 2.0 * float(weighted_dssim(target, predicted, hulls))
    detail = mean_detail(rebuilt, faces.hulls) / max(mean_detail(faces.faces, faces.hulls), 1e-6)
    return Reconstruction(mae=mae, ssim=ssim, faces=len(faces), detail=detail)


def decoded(model: Reconstructor, faces: ValidationFaces, side: str) -> np.ndarray:
    """``faces`` through the decoder of ``side``, :data:`BATCH` at a time: ``float32`` in ``[0, 1]``."""
    outputs = [
        model.predict(faces.faces[start : start + BATCH], side)[0] for start in range(0, len(faces), BATCH)
    ]
    return np.concatenate(outputs).astype(np.float32)


def mean_detail(images: np.ndarray, hulls: np.ndarray) -> float:
    """Mean Laplacian energy (0-255 luminance, no smoothing: the model's own pixels) inside each eroded hull.

    ``images``: ``uint8`` faces or a model's ``float`` output in ``[0, 1]``,
    ``(n, s, s, 3)``; ``hulls``: ``(n, s, s, 1)`` in ``[0, 1]``.
    """
    import cv2

    from faceswap.detail import laplacian_energy

    size = images.shape[1]
    erode = max(1, round(DETAIL_EROSION * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
    energies = [
        laplacian_energy(face, cv2.erode((hull[..., 0] > 0.5).astype(np.uint8), kernel).astype(bool), 0.0)
        for face, hull in zip(images, hulls, strict=True)
    ]
    return float(np.mean(energies)) if energies else 0.0


def hold_back_sides(
    faces: tuple[FaceSet, FaceSet], every: int, input_size: int
) -> tuple[tuple[FaceSet, FaceSet], tuple[ValidationFaces | None, ValidationFaces | None]]:
    """:func:`hold_back` on both sides: the faces to train on, and each side's validation faces (or None).

    Two sides holding the same arrays (pre-training reads its folder once for both) are split
    once and keep sharing them: a large pre-training folder takes its memory once, not twice.
    """
    if faces[1].images is faces[0].images:
        training, held = _hold_back_side(faces[0], every, input_size, "A and B (the same faces)")
        return (training, replace(training, name=faces[1].name)), (held, held)
    (training_a, held_a), (training_b, held_b) = (
        _hold_back_side(side, every, input_size, side.name) for side in faces
    )
    return (training_a, training_b), (held_a, held_b)


def _hold_back_side(
    faces: FaceSet, every: int, input_size: int, label: str
) -> tuple[FaceSet, ValidationFaces | None]:
    """:func:`hold_back` of one side, its held-back faces as validation sees them, and a log line."""
    training, part = hold_back(faces, every)
    if part is None:
        return training, None
    log.info(
        "faces %s: %d faces of held-back frames measure the validation loss; %d train",
        label,
        len(part),
        len(training),
    )
    return training, validation_faces(part, input_size)


class _Decoders:
    """Compiled decoders (:func:`faceswap.swap_model.decoding_functions`) as a :class:`Reconstructor`."""

    def __init__(self, decoders: dict[str, Any], input_size: int) -> None:
        self._decoders = decoders
        self.input_size = input_size

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        face, mask = self._decoders[decoder](faces.astype(np.float32) / 255.0)
        return np.asarray(face), np.asarray(mask)


def held_back_errors(
    decoders: dict[str, Any], held_back: Sequence[ValidationFaces | None]
) -> list[float | None]:
    """Each side's reconstruction MAE inside the hull on its held-back faces (None: a side without any).

    ``decoders`` are a training session's compiled decoders by side; rounded
    to 6 decimals, as ``state.json`` keeps them.
    """
    from faceswap.model import SIDES

    sizes = [part.faces.shape[1] for part in held_back if part is not None]
    model = _Decoders(decoders, sizes[0] if sizes else 0)
    return [
        None if part is None else round(reconstruction(model, part, side).mae, 6)
        for side, part in zip(SIDES, held_back, strict=True)
    ]
