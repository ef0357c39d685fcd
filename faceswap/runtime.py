"""TensorFlow and Keras, imported once and quietly; device discovery.

TensorFlow writes several lines of C++ logging to stderr when it loads
(before its own log level applies) and when it looks for a GPU. faceswap
promises that an error is one line on stderr, so TensorFlow is imported here
with the stderr file descriptor pointed at ``/dev/null`` for the duration of
the import, and with ``TF_CPP_MIN_LOG_LEVEL=3`` afterwards. Set
``TF_CPP_MIN_LOG_LEVEL`` yourself (e.g. ``0``) to see TensorFlow's logs when
diagnosing GPU problems.

Every module that needs TensorFlow or Keras imports them from here::

    from faceswap.runtime import keras, tf
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (C++ libraries write there directly)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") not in ("2", "3"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreter, pytest capture)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _stderr_silenced():
    import keras
    import tensorflow as tf

    # Device discovery logs (cuInit and friends) happen on first use: do it now.
    GPUS = tuple(tf.config.list_physical_devices("GPU"))

# TensorFlow's Python warnings (AutoGraph falling back, tf.function retracing)
# are advice for its own developers, not for users; errors still show.
if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in ("2", "3"):
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

__all__ = ["GPUS", "has_gpu", "keras", "opencv_single_threaded", "tf"]


def has_gpu() -> bool:
    """Whether TensorFlow sees at least one GPU."""
    return bool(GPUS)


@contextlib.contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV without its own thread pool for the block, restored afterwards.

    Training (tf.data's parallel augmentation) and convert (its pipeline's
    stages) already keep every core busy with small images; OpenCV's worker
    threads on top of those and of TensorFlow's would only fight them for the
    cores.
    """
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
