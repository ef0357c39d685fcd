"""How a run uses the machine: precision and jit compilation (several devices: :mod:`.distribute`).

None of this is stored with the model: a model trained with mixed precision
on four GPUs resumes in float32 on a CPU, and one trained on JAX resumes on
TensorFlow (see :mod:`faceswap.train.checkpoint`).

Precision: mixed precision (float32 weights) computing in bfloat16 where the
hardware does so natively: NVIDIA GPUs from Ampere on, and CPUs with Intel's
AMX units (Xeon Sapphire Rapids and later) through TensorFlow's oneDNN
kernels; float16 with loss scaling on older GPUs; float32 on other CPUs,
where half precision is emulated and slower. Jit compilation: XLA with JAX
always (JAX runs nothing fast without it), XLA with TensorFlow and
``torch.compile`` with PyTorch when asked for (``--xla``), on a GPU.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hardware:
    """How to use the machine (not stored with the model).

    Attributes
    ----------
    mixed_precision
        Compute in bfloat16 or float16 with float32 weights (``None``: when a GPU is
        present, or a CPU that computes bfloat16 natively).
    xla
        Jit-compile the step (XLA, or ``torch.compile`` on PyTorch; GPU only,
        ignored with a warning on a CPU; always on with JAX).
    distribute
        Train on all devices, or on all processes of a cluster (see
        :mod:`faceswap.train.distribute`); TensorFlow and JAX.
    progress
        Show a progress bar on stderr.
    """

    mixed_precision: bool | None = None
    xla: bool = False
    distribute: bool = False
    progress: bool = True


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
    the GPU computes it natively, else in float16; and on a CPU that computes
    bfloat16 natively (:func:`faceswap.runtime.cpu_has_bfloat16`), in bfloat16.
    Asked for on another CPU, it computes in float16, slowly (with a warning).
    XLA is refused on a CPU (with a warning), where it made a TensorFlow step
    6.5 times slower; JAX always compiles.
    """
    from faceswap.runtime import BACKEND, cpu_has_bfloat16, gpu_has_bfloat16, has_gpu

    gpu = has_gpu()
    mixed = hardware.mixed_precision
    if mixed is None:
        mixed = gpu or cpu_has_bfloat16()
        if mixed and not gpu:
            log.info(  # the gain measured in the README's "What to expect"
                "this CPU computes bfloat16 natively (Intel AMX): training computes in bfloat16 with "
                "float32 weights, about 1.5 times the steps a minute (--no-mixed-precision for float32)"
            )
    if not mixed:
        policy = FLOAT32
    elif gpu:
        policy = MIXED_BFLOAT16 if gpu_has_bfloat16() else MIXED_FLOAT16
    elif cpu_has_bfloat16():
        policy = MIXED_BFLOAT16
    else:
        log.warning(
            "mixed precision on a CPU without bfloat16 units (Intel AMX) is slow; "
            "it pays off on GPUs with tensor cores"
        )
        policy = MIXED_FLOAT16
    if BACKEND == "jax":
        return ComputeSettings(policy, jit=True)
    if hardware.xla and not gpu:
        log.warning("--xla ignored: it speeds up GPUs, but made a CPU step 6.5x slower")
    return ComputeSettings(policy, jit=hardware.xla and gpu)
