"""How a run uses the machine: devices, distribution over them, and the precision of the compute.

None of this is stored with the model: a model trained with mixed precision
on four GPUs resumes in float32 on a CPU (see :mod:`faceswap.train.checkpoint`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hardware:
    """How to use the machine (not stored with the model).

    Attributes
    ----------
    mixed_precision
        Compute in float16 with float32 weights (``None``: when a GPU is present).
    xla
        Compile the step with XLA (GPU only; ignored with a warning on a CPU).
    distribute
        Train on all GPUs (``MirroredStrategy``), or on all workers of
        ``TF_CONFIG`` (``MultiWorkerMirroredStrategy``).
    progress
        Show a progress bar on stderr.
    """

    mixed_precision: bool | None = None
    xla: bool = False
    distribute: bool = False
    progress: bool = True


def make_strategy(distribute: bool) -> Any:
    """The ``tf.distribute`` strategy for this run.

    With ``distribute``: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is
    set; otherwise ``MirroredStrategy`` over all GPUs, or over the CPU's
    logical devices when there is no GPU and the CPU has been split into
    several (how the tests exercise this path). Without it, or with a single
    device, the default strategy.
    """
    from faceswap.runtime import tf

    if not distribute:
        return tf.distribute.get_strategy()
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        log.warning("--distribute: only one device (%s); training on it alone", devices[0].name)
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def is_chief(strategy: Any) -> bool:
    """Whether this process writes the model folder (always, except non-chief multi-worker processes)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Keras' global dtype policy for building the network, restored afterwards."""
    from faceswap.runtime import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def compute_settings(hardware: Hardware) -> tuple[bool, bool]:
    """Whether this run computes in mixed precision and compiles with XLA, on this machine.

    Mixed precision defaults to on where a GPU is present; XLA is refused on a
    CPU (with a warning), where it made a step 6.5 times slower.
    """
    from faceswap.runtime import has_gpu

    mixed = has_gpu() if hardware.mixed_precision is None else hardware.mixed_precision
    if mixed and not has_gpu():
        log.warning("mixed precision on a CPU is slow; it pays off on GPUs with tensor cores")
    xla = hardware.xla and has_gpu()
    if hardware.xla and not has_gpu():
        log.warning("--xla ignored: it speeds up GPUs, but made a CPU step 6.5x slower")
    return mixed, xla
