"""Swaps decoded on another machine: record the faces convert feeds a model, replay a decoder's answers.

A GPU machine without dlib, ffmpeg or the shared clips can train and decode,
but it cannot convert or score. So the quality curve of a long GPU run is
measured in three steps:

1. here, ``bench_quality.py --record-inputs FACES.npz`` converts A's clip once
   with a :class:`RecordingModel` and saves every distinct aligned face that
   convert asked the model for (``uint8``, the model's input size);
2. there, ``gpu_check.py curve`` trains and, at each point, decodes those faces
   with B's decoder (:func:`save_decoded`);
3. here, ``bench_quality.py --replay DIR`` converts A's clip again with a
   :class:`ReplayModel` of each point, which answers convert with the faces
   decoded there, and scores it as a model trained here would be scored.

Faces are matched by their bytes, so a replay refuses a clip, alignments or
code that crops differently from the recording instead of scoring wrong faces.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np


def face_key(face: np.ndarray) -> bytes:
    """A digest of one aligned face's pixels (``uint8``, ``(s, s, 3)``)."""
    return hashlib.blake2b(np.ascontiguousarray(face).tobytes(), digest_size=16).digest()


class RecordingModel:
    """A stand-in model that keeps every distinct face convert gives it and answers with grey faces.

    Parameters
    ----------
    input_size, centering
        Those of the model whose inputs are recorded (the recipe's model).
    """

    def __init__(self, input_size: int, centering: str) -> None:
        self.input_size = input_size
        self.centering = centering
        self._faces: dict[bytes, np.ndarray] = {}

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        for face in faces:
            self._faces.setdefault(face_key(face), face.copy())
        count, size = len(faces), self.input_size
        return np.full((count, size, size, 3), 0.5, np.float32), np.zeros((count, size, size, 1), np.float32)

    def save(self, path: Path) -> int:
        """Write the faces to ``path`` (``.npz``); returns how many."""
        faces = np.stack(list(self._faces.values())) if self._faces else np.zeros((0, 1, 1, 3), np.uint8)
        _write_npz(path, faces=faces, input_size=self.input_size, centering=self.centering)
        return len(faces)


def load_recorded(path: Path) -> tuple[np.ndarray, int, str]:
    """``(faces, input_size, centering)`` of a file :meth:`RecordingModel.save` wrote."""
    with np.load(path) as recorded:
        return recorded["faces"], int(recorded["input_size"]), str(recorded["centering"])


def save_decoded(path: Path, faces: np.ndarray, masks: np.ndarray) -> None:
    """Write the decoded faces and masks of one point (``float16``: far finer than a pixel's 1/255)."""
    _write_npz(path, faces=faces.astype(np.float16), masks=masks.astype(np.float16))


def _write_npz(path: Path, **arrays: object) -> None:
    """A compressed ``.npz`` written under a temporary name and renamed when complete."""
    from faceswap.fileio import write_bytes_atomic

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue(), durable=False)


class ReplayModel:
    """A stand-in model that answers convert with faces decoded elsewhere from the recorded inputs.

    Parameters
    ----------
    inputs
        The recorded faces, ``uint8`` ``(n, s, s, 3)``.
    faces, masks
        What the decoder made of each, ``(n, s, s, 3)`` and ``(n, s, s, 1)`` in ``[0, 1]``.
    centering
        The trained model's centering.
    """

    def __init__(self, inputs: np.ndarray, faces: np.ndarray, masks: np.ndarray, centering: str) -> None:
        if not len(inputs) == len(faces) == len(masks):
            raise ValueError(f"{len(inputs)} inputs, but {len(faces)} faces and {len(masks)} masks decoded")
        self.input_size = int(inputs.shape[1])
        self.centering = centering
        self._index = {face_key(face): number for number, face in enumerate(inputs)}
        self._faces = faces.astype(np.float32)
        self._masks = masks.astype(np.float32)

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            rows = [self._index[face_key(face)] for face in faces]
        except KeyError:
            raise ValueError(
                "convert asked for a face that was not recorded: the clip, its alignments or the cropping "
                "changed since --record-inputs; record again and decode again"
            ) from None
        return self._faces[rows], self._masks[rows]
