"""A cache of the measurements ``faceswap sort`` makes of each crop, so a second sort is fast.

A face embedding costs tens of milliseconds of CPU, a detection and landmarks
on the crop a few: a folder of thousands of crops takes minutes to measure
once, and should not take them again. Measurements are stored per crop in one
``.npz`` file per faces folder, keyed by the crop's file name, size in bytes
and modification time (nanoseconds): a crop that is replaced, edited or
touched is measured again, a crop that is only moved (within the folder, into
``person_1/`` say) is not.

The file lives in faceswap's cache folder (:func:`faceswap.detect.cache_dir`,
``sort/`` below it), named after the faces folder's absolute path: sorting
never writes into the folder it sorts unless asked to sort in place. It is
plain arrays (no pickles, read with ``allow_pickle=False``); a damaged or
outdated file is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from faceswap.detect import cache_dir
from faceswap.errors import OutputError
from faceswap.fileio import write_bytes_atomic

log = logging.getLogger(__name__)

#: Bump when a measurement changes meaning: older caches are then ignored.
VERSION = 1
#: Width of each stored measurement (a missing one is stored as NaN).
FEATURES = {
    "sharpness": 1,
    "colour": 3,
    "pose": 3,
    "found": 1,
    "misalignment": 1,
    "landmarks": 136,
    "embedding": 128,
}

Key = tuple[str, int, int]


def file_key(path: Path) -> Key:
    """``(name, size, mtime_ns)`` of a crop file: what says it is the same file as before."""
    status = path.stat()
    return path.name, status.st_size, status.st_mtime_ns


def cache_file(folder: Path) -> Path:
    """Where the cache of a faces folder is kept."""
    digest = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return cache_dir() / "sort" / f"{digest}.npz"


class FeatureCache:
    """Measurements of crops, by :func:`file_key`; :meth:`save` writes them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[Key, dict[str, np.ndarray]] = {}
        self.changed = False
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if int(data["version"]) != VERSION:
                    return
                names, sizes, mtimes = data["names"], data["sizes"], data["mtimes"]
                columns = {name: data[name] for name in FEATURES}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            log.debug("ignoring unreadable sort cache %s", self.path)
            return
        for row, key in enumerate(zip(names.tolist(), sizes.tolist(), mtimes.tolist(), strict=True)):
            values = {}
            for name, column in columns.items():
                value = column[row]
                if not np.isnan(value).all():
                    values[name] = value
            self.rows[(str(key[0]), int(key[1]), int(key[2]))] = values

    def get(self, key: Key, feature: str) -> np.ndarray | None:
        """A stored measurement, or ``None`` when this file was not measured so."""
        return self.rows.get(key, {}).get(feature)

    def put(self, key: Key, feature: str, value: np.ndarray | float) -> None:
        """Store one measurement of one file."""
        array = np.asarray(value, dtype=np.float32).reshape(FEATURES[feature])
        self.rows.setdefault(key, {})[feature] = array
        self.changed = True

    def keep_only(self, keys: set[Key]) -> None:
        """Forget files that are no longer in the folder."""
        stale = [key for key in self.rows if key not in keys]
        for key in stale:
            del self.rows[key]
        self.changed = self.changed or bool(stale)

    def save(self) -> None:
        """Write the cache (atomically); a cache that cannot be written is only logged."""
        if not self.changed:
            return
        keys = list(self.rows)
        arrays: dict[str, np.ndarray] = {
            "version": np.array(VERSION),
            "names": np.array([key[0] for key in keys], dtype=str),
            "sizes": np.array([key[1] for key in keys], dtype=np.int64),
            "mtimes": np.array([key[2] for key in keys], dtype=np.int64),
        }
        for name, width in FEATURES.items():
            column = np.full((len(keys), width), np.nan, dtype=np.float32)
            for row, key in enumerate(keys):
                value = self.rows[key].get(name)
                if value is not None:
                    column[row] = value
            arrays[name] = column
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            os.makedirs(self.path.parent, exist_ok=True)
            write_bytes_atomic(self.path, buffer.getvalue(), durable=False)
        except (OSError, OutputError) as error:
            log.debug("sort cache not written: %s", error)
            return
        self.changed = False


def open_cache(folder: Path) -> FeatureCache:
    """The cache of a faces folder (empty when there is none yet)."""
    return FeatureCache(cache_file(folder))
