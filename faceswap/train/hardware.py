"""How a run uses the machine: devices, distribution over them, precision and jit compilation.

None of this is stored with the model: a model trained with mixed precision
on four GPUs resumes in float32 on a CPU, and one trained on JAX resumes on
TensorFlow (see :mod:`faceswap.train.checkpoint`).

Precision: float32 on a CPU; on a GPU, mixed precision (float32 weights)
computing in bfloat16 where the GPU does so natively (NVIDIA Ampere and
later), else in float16 with loss scaling. Jit compilation: XLA with JAX
always (JAX runs nothing fast without it), XLA with TensorFlow and
``torch.compile`` with PyTorch when asked for (``--xla``), on a GPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from faceswap.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hardware:
    """How to use the machine (not stored with the model).

    Attributes
    ----------
    mixed_precision
        Compute in bfloat16 or float16 with float32 weights (``None``: when a GPU is present).
    xla
        Jit-compile the step (XLA, or ``torch.compile`` on PyTorch; GPU only,
        ignored with a warning on a CPU; always on with JAX).
    distribute
        Train on all GPUs (``MirroredStrategy``), or on all workers of
        ``TF_CONFIG`` (``MultiWorkerMirroredStrategy``); TensorFlow only.
    progress
        Show a progress bar on stderr.
    """

    mixed_precision: bool | None = None
    xla: bool = False
    distribute: bool = False
    progress: bool = True


class OneDevice:
    """The strategy of the backends without ``tf.distribute``: one device, nothing to scope."""

    num_replicas_in_sync = 1

    def scope(self) -> contextlib.AbstractContextManager[None]:
        """A context that changes nothing (``tf.distribute`` strategies place variables in theirs)."""
        return contextlib.nullcontext()


def make_strategy(distribute: bool) -> Any:
    """The ``tf.distribute`` strategy for this run (:class:`OneDevice` on the other backends).

    With ``distribute``: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is
    set; otherwise ``MirroredStrategy`` over all GPUs, or over the CPU's
    logical devices when there is no GPU and the CPU has been split into
    several (how the tests exercise this path). Without it, or with a single
    device, the default strategy.

    Raises
    ------
    InputError
        With ``distribute`` on a backend other than TensorFlow.
    """
    from faceswap.runtime import BACKEND

    if BACKEND != "tensorflow":
        if distribute:
            raise InputError(f"--distribute runs on the tensorflow backend only, not on {BACKEND}")
        return OneDevice()
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


#: Keras' dtype policies: weights and compute in float32, or float32 weights computing in half precision.
FLOAT32, MIXED_BFLOAT16, MIXED_FLOAT16 = "float32", "mixed_bfloat16", "mixed_float16"


@contextlib.contextmanager
def precision_policy(policy: str) -> Iterator[None]:
    """Keras' global dtype policy (:data:`FLOAT32`, ...) for building the network, restored afterwards."""
    from faceswap.runtime import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@dataclass(frozen=True)
class ComputeSettings:
    """What :class:`Hardware` comes to on this machine and backend.

    Attributes
    ----------
    policy
        Keras' dtype policy: :data:`FLOAT32`, :data:`MIXED_BFLOAT16` or :data:`MIXED_FLOAT16`.
    jit
        Whether the step is jit-compiled.
    """

    policy: str
    jit: bool

    @property
    def mixed_precision(self) -> bool:
        """Whether the compute is in half precision."""
        return self.policy != FLOAT32

    @property
    def loss_scaling(self) -> bool:
        """Whether the loss is scaled (float16 gradients underflow; bfloat16 ones do not)."""
        return self.policy == MIXED_FLOAT16


def compute_settings(hardware: Hardware) -> ComputeSettings:
    """The precision and jit compilation of a run with ``hardware`` on this machine.

    Mixed precision defaults to on where a GPU is present, in bfloat16 where
    the GPU computes it natively, else in float16. XLA is refused on a CPU
    (with a warning), where it made a TensorFlow step 6.5 times slower; JAX
    always compiles.
    """
    from faceswap.runtime import BACKEND, gpu_has_bfloat16, has_gpu

    mixed = has_gpu() if hardware.mixed_precision is None else hardware.mixed_precision
    if mixed and not has_gpu():
        log.warning("mixed precision on a CPU is slow; it pays off on GPUs with tensor cores")
    policy = (MIXED_BFLOAT16 if gpu_has_bfloat16() else MIXED_FLOAT16) if mixed else FLOAT32
    if BACKEND == "jax":
        return ComputeSettings(policy, jit=True)
    if hardware.xla and not has_gpu():
        log.warning("--xla ignored: it speeds up GPUs, but made a CPU step 6.5x slower")
    return ComputeSettings(policy, jit=hardware.xla and has_gpu())
