"""The measurements ``faceswap sort`` orders by, made once per crop and cached.

Each crop's measurements (:data:`faceswap.feature_cache.FEATURES`) are kept in
the folder's feature cache, keyed by file name, size and time, so sorting a
folder again measures only the crops that are new or changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceswap.align import CROP_PADDING
from faceswap.errors import InputError
from faceswap.feature_cache import FeatureCache, file_key
from faceswap.progress import progress_bar

log = logging.getLogger(__name__)

#: Measurements each ordering needs (see :data:`faceswap.feature_cache.FEATURES`).
NEEDS = {
    "identity": ("embedding",),
    "similar": ("embedding",),
    "blur": ("sharpness",),
    "colour": ("colour",),
    "pose": ("pose",),
    "misalign": ("found", "misalignment"),
    "size": (),
}


class _Measurer:
    """Measures crops, loading each model only when a measurement needs it."""

    def __init__(self) -> None:
        self._models: dict[str, object] = {}

    def _model(self, name: str):
        if name not in self._models:
            from faceswap.detect import FaceDetector, LandmarkPredictor
            from faceswap.identity import FaceEmbedder

            factory = {"detector": FaceDetector, "predictor": LandmarkPredictor, "embedder": FaceEmbedder}
            self._models[name] = factory[name]()
        return self._models[name]

    def measure(self, path: Path, wanted: Sequence[str]) -> dict[str, np.ndarray | float]:
        """The ``wanted`` measurements of one crop (and any made on the way)."""
        from faceswap.crops import read_crop
        from faceswap.face_measures import crop_pose, mean_colour, refit, sharpness

        image, info = read_crop(path)
        padding = info.padding if info is not None else CROP_PADDING
        values: dict[str, np.ndarray | float] = {}
        landmarks = info.landmarks if info is not None else None
        if "found" in wanted or "misalignment" in wanted or landmarks is None:
            fit = refit(image, padding, self._model("detector"), self._model("predictor"))
            values.update(found=float(fit.found), misalignment=fit.misalignment, landmarks=fit.landmarks)
            landmarks = landmarks if landmarks is not None else fit.landmarks
        if "sharpness" in wanted:
            values["sharpness"] = sharpness(image, padding)
        if "colour" in wanted:
            values["colour"] = mean_colour(image, padding)
        if "pose" in wanted:
            values["pose"] = crop_pose(landmarks, image.shape[0])
        if "embedding" in wanted:
            values["embedding"] = self._model("embedder").embed(image, landmarks)
        return values


def measure_folder(
    crops: Sequence[Path], wanted: Sequence[str], cache: FeatureCache, progress: bool
) -> tuple[list[Path], dict[str, np.ndarray], list[str], int]:
    """Measurements of every crop, from the cache where it has them.

    Returns
    -------
    tuple
        The crops that could be measured, one array per wanted measurement
        (a row per crop), the names of files skipped (not readable face crops),
        and how many crops were measured now.
    """
    measurer = _Measurer()
    kept: list[Path] = []
    rows: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    skipped: list[str] = []
    measured = 0
    keys = set()
    with progress_bar(len(crops), "measuring faces", progress, unit="face") as bar:
        for path in crops:
            try:
                key = file_key(path)
            except OSError:
                skipped.append(path.name)
                bar.update(1)
                continue
            keys.add(key)
            values = {name: cache.get(key, name) for name in wanted}
            if any(value is None for value in values.values()):
                try:
                    fresh = measurer.measure(path, wanted)
                except InputError as error:
                    log.warning("skipping %s", error)
                    skipped.append(path.name)
                    bar.update(1)
                    continue
                for name, value in fresh.items():
                    cache.put(key, name, value)
                values = {name: cache.get(key, name) for name in wanted}
                measured += 1
            kept.append(path)
            for name in wanted:
                rows[name].append(np.asarray(values[name], dtype=np.float64))
            bar.update(1)
    cache.keep_only(keys)
    cache.save()
    arrays = {name: np.array(rows[name]).reshape(len(kept), -1) for name in wanted}
    return kept, arrays, skipped, measured
