"""The evaluation of scripts/bench_quality.py: validation and the scored swap at one point of the budget.

:func:`evaluate` takes a contender's model as saved now: it rebuilds both
sides' held-back faces (validation MAE and SSIM inside the hull), converts A's
clip with B's decoder and scores it with ``faceswap score``, and crops the
strip's faces from the swapped clip.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Side of a face in strip.png.
STRIP_TILE = 128

# -- evaluation ---------------------------------------------------------------------------------------------


@dataclass
class Yardstick:
    """What every evaluation uses: the clip, its alignments, the identities, the held-back faces."""

    clip: Path
    alignments: Path
    training: tuple[Path, Path]
    validation: tuple[Path, Path]
    identity_every: int
    identities: tuple[np.ndarray, np.ndarray]
    strip_frames: list[int]
    strip_matrices: list[np.ndarray]
    _validation_faces: dict[tuple[str, int, str], Any] = field(default_factory=dict)

    def validation_faces(self, side: str, input_size: int, centering: str) -> Any:
        from faceswap.train.validation import load_validation_faces

        key = (side, input_size, centering)
        if key not in self._validation_faces:
            folder = self.validation["ab".index(side)]
            self._validation_faces[key] = load_validation_faces(folder, side.upper(), input_size, centering)
        return self._validation_faces[key]


def identities_of(faces_a: Path, faces_b: Path) -> tuple[np.ndarray, np.ndarray]:
    """B's identity (the target) and A's (the source), from their training faces, once for all scores."""
    from faceswap.faces import FaceFinder
    from faceswap.identity import FaceEmbedder
    from faceswap.score import identity_of

    finder, embedder = FaceFinder(upsample=1), FaceEmbedder()
    return identity_of([faces_b], finder, embedder, "target"), identity_of(
        [faces_a], finder, embedder, "source"
    )


def strip_geometry(clip: Path, count: int) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    """Frames evenly spread over ``clip`` that show a face: indices, alignment matrices, original crops."""
    from faceswap.align import crop_face
    from faceswap.faces import FaceFinder
    from faceswap.media.reader import VideoSource

    source = VideoSource(clip)
    finder = FaceFinder()
    frames, matrices, crops = [], [], []
    for index in np.linspace(0, source.frame_count - 1, count + 2)[1:-1].round().astype(int):
        image = next(iter(source.frames(int(index), int(index) + 1))).image
        face = finder.largest(image)
        if face is not None:
            frames.append(int(index))
            matrices.append(face.matrix)
            crops.append(crop_face(image, face.matrix, STRIP_TILE))
    return frames, matrices, crops


def swapped_crops(video: Path, yardstick: Yardstick) -> np.ndarray:
    """The strip's faces in a swapped clip, cut where the original's faces are."""
    from faceswap.align import crop_face
    from faceswap.media.reader import VideoSource

    source = VideoSource(video)
    crops = []
    for index, matrix in zip(yardstick.strip_frames, yardstick.strip_matrices, strict=True):
        image = next(iter(source.frames(index, index + 1))).image
        crops.append(crop_face(image, matrix, STRIP_TILE))
    return np.stack(crops)


def swap_and_score(model: Any, swapped: Path, yardstick: Yardstick) -> tuple[dict, np.ndarray, dict]:
    """Convert A's clip with ``model`` (B's decoder) into ``swapped`` and score it.

    Returns the score report (without its per-frame rows), the strip's crops of
    the swapped clip, and the seconds that convert and score took.
    """
    from faceswap.convert import ConvertOptions, convert
    from faceswap.score import score

    begun = time.perf_counter()
    options = ConvertOptions(output=swapped, alignments=yardstick.alignments, overwrite=True, progress=False)
    convert(yardstick.clip, options, model=model)
    converted = time.perf_counter()
    report = score(
        yardstick.clip,
        swapped,
        [yardstick.training[1]],
        [yardstick.training[0]],
        identity_every=yardstick.identity_every,
        model_size=model.input_size,
        centering=model.centering,
        identities=yardstick.identities,
        progress=False,
    ).to_json()
    report.pop("per_frame")
    timings = {"convert": round(converted - begun, 2), "score": round(time.perf_counter() - converted, 2)}
    return report, swapped_crops(swapped, yardstick), timings


def swap_detail(model: Any, faces_a: Any, faces_b: Any) -> float:
    """The detail of A's held-back faces swapped by B's decoder over B's own faces', at the model's size.

    Beside the reconstructions' detail (``validation.b.detail``): a swap as
    sharp as B rebuilt means the model paints B from A's code as well as from
    B's, and what is missing is training; a softer swap, that it does not.
    """
    from faceswap.train.validation import decoded, mean_detail

    return mean_detail(decoded(model, faces_a, "b"), faces_a.hulls) / max(
        mean_detail(faces_b.faces, faces_b.hulls), 1e-6
    )


def evaluate(contender: Any, point: int, yardstick: Yardstick, work: Path) -> tuple[dict, np.ndarray]:
    """Validation and score of a contender's model as saved now; and its strip crops."""
    from faceswap.model_folder import load_swap_model
    from faceswap.train.validation import reconstruction

    started = time.perf_counter()
    model = load_swap_model(contender.model_dir)
    loaded = time.perf_counter()
    held = {side: yardstick.validation_faces(side, model.input_size, model.centering) for side in "ab"}
    validation: dict[str, Any] = {side: asdict(reconstruction(model, held[side], side)) for side in "ab"}
    validation["swap_detail"] = swap_detail(model, held["a"], held["b"])
    timings = {"load": round(loaded - started, 2), "validation": round(time.perf_counter() - loaded, 2)}
    swapped = work / contender.name / f"point{point}.mp4"
    report, crops, scored = swap_and_score(model, swapped, yardstick)
    loss_a, loss_b = contender.session.smoothed_losses()
    row = {
        "minutes": contender.trained / 60,
        "wall_minutes": contender.wall / 60,
        "cpu_minutes": contender.cpu / 60,
        "load_average": os.getloadavg()[0],
        "iteration": contender.session.state.iteration,
        "learning_rate": contender.session.config.learning_rate,  # halved at each return from a collapse
        "loss_a": loss_a,
        "loss_b": loss_b,
        "validation": validation,
        "score": report,
        "evaluation_seconds": time.perf_counter() - started,
        "evaluation_timings": {**timings, **scored},
    }
    return row, crops
