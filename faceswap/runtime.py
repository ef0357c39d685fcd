"""Keras on its backend, imported once and quietly; device discovery.

The backend (TensorFlow by default, JAX or PyTorch) is chosen before this
module is imported (:mod:`faceswap.backends`); only the TensorFlow backend
imports TensorFlow. Every module that needs Keras imports it from here::

    from faceswap.runtime import keras

and the few TensorFlow-only parts (``tf.data``, ``tf.distribute``) import
``tf`` from here too, on the TensorFlow backend alone.

TensorFlow writes several lines of C++ logging to stderr when it loads
(before its own log level applies) and when it looks for a GPU. faceswap
promises that an error is one line on stderr, so the backend is imported here
with the stderr file descriptor pointed at ``/dev/null`` for the duration of
the import, and with ``TF_CPP_MIN_LOG_LEVEL=3`` afterwards. Set
``TF_CPP_MIN_LOG_LEVEL`` yourself (e.g. ``0``) to see TensorFlow's logs when
diagnosing GPU problems.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from faceswap.backends import requested_backend

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = requested_backend()
if os.environ["KERAS_BACKEND"] != "tensorflow" and "tensorflow" not in sys.modules:
    # Keras imports TensorFlow wherever it is installed (to seed it too, to recognise tf.data), and
    # its import takes seconds and a GB; on the other backends nothing of it is used: an import of it
    # fails here as if it were absent, and everything that asks goes on without it.
    sys.modules["tensorflow"] = None  # type: ignore[assignment]


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


def _gpus(backend: str) -> tuple[Any, ...]:
    """The GPUs the backend sees (device discovery logs happen on first use: call it silenced)."""
    if backend == "tensorflow":
        import tensorflow

        return tuple(tensorflow.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return tuple(device for device in jax.devices() if device.platform == "gpu")
    import torch

    return tuple(range(torch.cuda.device_count()))


with _stderr_silenced():
    import keras

    BACKEND: str = keras.backend.backend()
    if BACKEND == "tensorflow":
        import tensorflow as tf


@functools.cache
def gpus() -> tuple[Any, ...]:
    """The GPUs the backend sees (also ``faceswap.runtime.GPUS``), looked for on first use.

    Not at import: JAX must join a cluster of hosts
    (:func:`faceswap.train.distribute.join_cluster`) before it first looks at
    its devices.
    """
    with _stderr_silenced():
        return _gpus(BACKEND)


# TensorFlow's Python warnings (AutoGraph falling back, tf.function retracing)
# are advice for its own developers, not for users; errors still show.
if BACKEND == "tensorflow" and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") in ("2", "3"):
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

__all__ = [
    "BACKEND",
    "cpu_has_bfloat16",
    "gpu_has_bfloat16",
    "gpus",
    "has_gpu",
    "keras",
    "opencv_single_threaded",
    "tf",
]


def __getattr__(name: str) -> Any:
    if name == "GPUS":
        return gpus()
    if name == "tf":
        raise AttributeError(f"faceswap.runtime.tf: TensorFlow is not loaded on the {BACKEND} backend")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def has_gpu() -> bool:
    """Whether the backend sees at least one GPU."""
    return bool(gpus())


def gpu_has_bfloat16() -> bool:
    """Whether the first GPU computes bfloat16 natively (NVIDIA compute capability 8.0, Ampere, or later)."""
    if not gpus():
        return False
    if BACKEND == "tensorflow":
        details = tf.config.experimental.get_device_details(gpus()[0])
        return tuple(details.get("compute_capability", (0, 0))) >= (8, 0)
    if BACKEND == "jax":
        capability = getattr(gpus()[0], "compute_capability", "0")
        return float(capability) >= 8.0
    import torch

    return torch.cuda.get_device_capability(0) >= (8, 0)


#: CPU flags (Linux ``/proc/cpuinfo``) of units that compute bfloat16 matrix products natively:
#: Intel AMX (Xeon Sapphire Rapids and later), which TensorFlow's oneDNN kernels use.
BFLOAT16_CPU_FLAGS = frozenset({"amx_bf16"})


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The first processor's feature flags as the Linux kernel lists them (empty elsewhere)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_has_bfloat16() -> bool:
    """Whether the backend computes bfloat16 natively on this CPU (TensorFlow with oneDNN on Intel AMX).

    Elsewhere bfloat16 is emulated and slower than float32: CPUs without
    AMX, ``TF_ENABLE_ONEDNN_OPTS=0``, and the JAX and PyTorch backends (not
    measured there).
    """
    if BACKEND != "tensorflow" or os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip() == "0":
        return False
    return bool(BFLOAT16_CPU_FLAGS & cpu_flags())


@contextlib.contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV without its own thread pool for the block, restored afterwards.

    Training (the input pipeline's parallel augmentation) and convert (its
    pipeline's stages) already keep every core busy with small images;
    OpenCV's worker threads on top of those and of the backend's would only
    fight them for the cores.
    """
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
