"""The record-and-replay of scripts/bench_quality_replay.py: a swap decoded elsewhere, scored here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_quality_replay import (
    RecordingModel,
    ReplayModel,
    load_recorded,
    save_decoded,
)


def decoder(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in decoder whose answer depends on each face: inverted colours, mask of the mean."""
    scaled = faces.astype(np.float32) / 255.0
    return 1.0 - scaled, scaled.mean(axis=-1, keepdims=True)


@pytest.fixture
def faces() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)


def test_recording_keeps_each_distinct_face_once_in_order(faces, tmp_path):
    recorder = RecordingModel(16, "face")
    answer, mask = recorder.predict(faces[:4], "b")
    recorder.predict(np.concatenate([faces[2:], faces[:1]]), "b")  # repeats and new ones
    assert answer.shape == (4, 16, 16, 3) and mask.shape == (4, 16, 16, 1)
    assert recorder.save(tmp_path / "inputs.npz") == 7
    recorded, size, centering = load_recorded(tmp_path / "inputs.npz")
    assert (size, centering) == (16, "face")
    np.testing.assert_array_equal(recorded, faces)


def test_replay_answers_as_the_decoder_did_in_any_batch_order(faces, tmp_path):
    decoded_faces, decoded_masks = decoder(faces)
    save_decoded(tmp_path / "point.npz", decoded_faces, decoded_masks)
    with np.load(tmp_path / "point.npz") as decoded:
        replay = ReplayModel(faces, decoded["faces"], decoded["masks"], "face")
    assert replay.input_size == 16 and replay.centering == "face"
    order = [5, 0, 5, 3]
    answer, mask = replay.predict(faces[order], "b")
    expected_face, expected_mask = decoder(faces[order])
    assert answer.dtype == np.float32 and mask.shape == (4, 16, 16, 1)
    np.testing.assert_allclose(answer, expected_face, atol=1e-3)  # float16 on the way: far below 1/255
    np.testing.assert_allclose(mask, expected_mask, atol=1e-3)


def test_replay_refuses_a_face_that_was_not_recorded(faces):
    replay = ReplayModel(faces[:3], *decoder(faces[:3]), "face")
    changed = faces[:1].copy()
    changed[0, 0, 0, 0] ^= 1  # one bit of one pixel: another crop
    with pytest.raises(ValueError, match="not recorded"):
        replay.predict(changed, "b")


def test_replay_refuses_answers_that_do_not_match_the_inputs(faces):
    face, mask = decoder(faces)
    with pytest.raises(ValueError, match="7 inputs"):
        ReplayModel(faces, face[:6], mask[:6], "face")
