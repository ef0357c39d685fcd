"""Training on several devices, processes or machines (``--distribute``), with each backend's own engine.

==========  =================================================================
backend     what ``--distribute`` uses
==========  =================================================================
TensorFlow  ``MultiWorkerMirroredStrategy`` over the workers named in
            ``TF_CONFIG`` (one process per machine); otherwise
            ``MirroredStrategy`` over the local GPUs (or over a CPU split into
            logical devices, as the tests do)
JAX         ``keras.distribution.DataParallel`` over every device; over several
            machines once :func:`join_cluster` has joined them through
            ``jax.distributed`` (``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
            ``KERAS_DISTRIBUTION_NUM_PROCESSES``, ``KERAS_DISTRIBUTION_PROCESS_ID``)
PyTorch     refused: Keras' PyTorch backend has no distribution engine
==========  =================================================================

However many processes take part, they train as one: every step each process
makes its own share of the batch (its own input pipeline, so no two make the
same faces), the gradients are summed over all devices, and all weights stay
identical. The *chief* (TensorFlow's chief, or worker 0; JAX's process 0) is
the only process that writes the model folder: the other processes read it
(to resume) and write nothing, so the folder can be shared storage or a copy.
The decision to stop (time limit, target loss, Ctrl-C or SIGTERM on any
process) is agreed on at every step (:meth:`Devices.agreed_max`), so that all
stop after the same step; a process that dies or becomes unreachable makes
the others stop with :class:`faceswap.errors.ClusterError`, keeping the last
checkpoint as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from faceswap.errors import InputError

log = logging.getLogger(__name__)

#: Words of a backend's error that say a peer process is gone or unreachable.
_LOST_CONTACT = re.compile(r"connection|peer|unavailable|deadline|heartbeat|gloo|is down", re.IGNORECASE)

#: Keras' own variables that name the hosts of a JAX cluster (see ``keras.distribution.initialize``).
JAX_CLUSTER_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


def _tf_config() -> dict[str, Any] | None:
    """``TF_CONFIG`` read, or ``None`` when unset.

    Raises
    ------
    InputError
        When it is not a JSON object with a ``cluster``.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"TF_CONFIG is not valid JSON ({error.msg}, character {error.pos})") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise InputError('TF_CONFIG must be a JSON object with a "cluster" (and a "task")')
    return config


def _jax_cluster() -> tuple[int, int] | None:
    """``(process_id, num_processes)`` from :data:`JAX_CLUSTER_VARIABLES`, or ``None`` when not set.

    Raises
    ------
    InputError
        When only some are set, or the numbers are not numbers.
    """
    values = [os.environ.get(name, "").strip() for name in JAX_CLUSTER_VARIABLES]
    if not any(values):
        return None
    if not all(values):
        missing = [name for name, value in zip(JAX_CLUSTER_VARIABLES, values, strict=True) if not value]
        needed = ", ".join(JAX_CLUSTER_VARIABLES)
        raise InputError(f"a JAX cluster needs all of {needed}; {missing[0]} is not set")
    try:
        count, index = int(values[1]), int(values[2])
    except ValueError:
        raise InputError(
            f"{JAX_CLUSTER_VARIABLES[1]} and {JAX_CLUSTER_VARIABLES[2]} must be whole numbers"
        ) from None
    if not 0 <= index < count:
        raise InputError(f"{JAX_CLUSTER_VARIABLES[2]} must lie in 0..{count - 1}, not {index}")
    return index, count


def writes_model_folder(distribute: bool) -> bool:
    """Whether this process is the chief of its run: the one that locks and writes the model folder.

    Known from the environment before the cluster forms (the model folder is
    locked first): every process, except the non-chief processes of a run over
    several processes.
    """
    if not distribute:
        return True
    from faceswap.backends import requested_backend

    backend = requested_backend()
    if backend == "tensorflow":
        config = _tf_config()
        task = (config or {}).get("task") or {}
        if not config or not task:
            return True
        kind, index = task.get("type"), task.get("index", 0)
        if "chief" in config["cluster"]:
            return kind == "chief"
        return kind == "worker" and index == 0
    if backend == "jax":
        cluster = _jax_cluster()
        return cluster is None or cluster[0] == 0
    return True


def model_folder_lock(model_dir: Any, distribute: bool) -> contextlib.AbstractContextManager[Any]:
    """The run's lock on ``model_dir`` (see :mod:`faceswap.locks`): taken by the chief alone.

    The other processes of a distributed run write nothing there, and may
    share the folder with the chief (network storage).
    """
    if not writes_model_folder(distribute):
        return contextlib.nullcontext()
    from faceswap.locks import lock_outputs

    return lock_outputs([model_dir], "train")


def join_cluster(distribute: bool) -> None:
    """Join the JAX cluster of :data:`JAX_CLUSTER_VARIABLES` (``--distribute`` on JAX only).

    Blocks until every process has joined. Must run before JAX first looks at
    its devices (before :func:`faceswap.runtime.gpus`); a second call does
    nothing. TensorFlow's workers join when their strategy is made.
    """
    from faceswap.backends import requested_backend

    if not distribute or requested_backend() != "jax":
        return
    cluster = _jax_cluster()
    if cluster is None:
        return
    import jax

    if jax.distributed.is_initialized():
        return
    index, count = cluster
    address = os.environ[JAX_CLUSTER_VARIABLES[0]].split(",")[0]
    log.info("process %d of %d: waiting for the other processes at %s", index, count, address)
    from faceswap.runtime import keras

    keras.distribution.initialize()


@dataclass
class Devices:
    """The devices and processes one run trains on (made by :func:`devices_for`).

    Attributes
    ----------
    replicas
        Devices whose gradients are summed each step (over all processes).
    processes
        Processes that train together (machines, usually).
    index
        This process's number, ``0 .. processes - 1`` (its input pipeline).
    chief
        Whether this process writes the model folder.
    strategy
        The ``tf.distribute`` strategy on TensorFlow, else ``None``.
    distribution
        The ``keras.distribution`` of JAX, else ``None``.
    """

    replicas: int = 1
    processes: int = 1
    index: int = 0
    chief: bool = True
    strategy: Any = None
    distribution: Any = None
    _agree: Any = field(default=None, repr=False)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where the network's variables must be made (the strategy's or distribution's scope)."""
        if self.strategy is not None:
            return self.strategy.scope()
        if self.distribution is not None:
            return self.distribution.scope()
        return contextlib.nullcontext()

    def input_batch(self, batch_size: int) -> int:
        """Faces per side in each element of an input pipeline (what :class:`BatchSource` makes).

        TensorFlow's pipelines yield one device's share; JAX's one process's
        share, which Keras splits over that process's devices.

        Raises
        ------
        InputError
            When ``batch_size`` does not split evenly over the devices.
        """
        if batch_size % self.replicas:
            raise InputError(f"batch size {batch_size} does not split evenly over {self.replicas} devices")
        if self.strategy is not None:
            return batch_size // self.replicas
        return batch_size // self.processes

    @property
    def collective_reads(self) -> bool:
        """Whether reading the weights is a collective: every process must save and predict with the chief.

        So on JAX over several processes (JAX checks that the processes hold
        the same values); the others' checkpoints go to a temporary folder.
        """
        return self.distribution is not None and self.processes > 1

    def agreed_max(self, value: int) -> int:
        """The largest of every process's ``value`` (``value`` itself in a run of one process).

        Called by every process at the same point of every step; this is how
        they agree on stopping, and check that they resume at one iteration.
        """
        if self.processes == 1:
            return value
        return int(self._agree(int(value)))

    def describe(self) -> str:
        """``""``, ``", 2 devices"`` or ``", 4 devices in 2 processes (this is process 0)"``, for the log."""
        if self.replicas == 1:
            return ""
        if self.processes == 1:
            return f", {self.replicas} devices"
        return f", {self.replicas} devices in {self.processes} processes (this is process {self.index})"

    @property
    def lost_contact_errors(self) -> tuple[type[BaseException], ...]:
        """The backend's errors that say another process died or cannot be reached (none in one process)."""
        if self.processes == 1:
            return ()
        from faceswap.runtime import BACKEND

        if BACKEND == "tensorflow":
            from faceswap.runtime import tf

            errors = tf.errors
            return (
                errors.UnavailableError,
                errors.DeadlineExceededError,
                errors.FailedPreconditionError,
                errors.CancelledError,
                errors.AbortedError,
            )
        import jax

        return (jax.errors.JaxRuntimeError,)

    def lost_contact(self, error: BaseException) -> str | None:
        """The line of ``error`` that says another process is gone (``None``: some other failure).

        TensorFlow's error types say it themselves; JAX's runtime error covers
        every failure, so its message must name the connection.
        """
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        telling = [line for line in lines if _LOST_CONTACT.search(line)]
        if telling:
            return telling[0][:160]
        from faceswap.runtime import BACKEND

        return type(error).__name__ if BACKEND == "tensorflow" else None


def devices_for(distribute: bool) -> Devices:
    """The :class:`Devices` of this run (one device without ``distribute``), its cluster joined.

    Call it before anything computes: TensorFlow's and JAX's clusters form at
    program start-up.

    Raises
    ------
    InputError
        With ``distribute`` on PyTorch, or a malformed ``TF_CONFIG`` or JAX cluster.
    """
    join_cluster(distribute)
    from faceswap.runtime import BACKEND

    if BACKEND == "tensorflow":
        return _tensorflow_devices(distribute)
    if BACKEND == "jax":
        return _jax_devices(distribute)
    if distribute:
        raise InputError(
            "--distribute runs on the tensorflow and jax backends: Keras has no distribution engine for torch"
        )
    return Devices()


def _tensorflow_devices(distribute: bool) -> Devices:
    from faceswap.runtime import tf

    if not distribute:
        return Devices(strategy=tf.distribute.get_strategy())
    config = _tf_config()
    if config is not None:
        workers = sum(len(addresses) for addresses in config["cluster"].values())
        task = config.get("task") or {}
        log.info(
            "%s %s of TF_CONFIG: waiting for all %d workers to join",
            task.get("type", "worker"),
            task.get("index", 0),
            workers,
        )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        resolver = strategy.cluster_resolver
        index = _worker_number(config["cluster"], resolver.task_type, resolver.task_id)
        return Devices(
            replicas=strategy.num_replicas_in_sync,
            processes=workers,
            index=index,
            chief=writes_model_folder(True),
            strategy=strategy,
            _agree=_tensorflow_agreement(strategy),
        )
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        log.warning("--distribute: only one device (%s); training on it alone", devices[0].name)
        return Devices(strategy=tf.distribute.get_strategy())
    strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    return Devices(replicas=strategy.num_replicas_in_sync, strategy=strategy)


def _worker_number(cluster: dict[str, list[str]], kind: str, index: int) -> int:
    """Where task ``kind`` ``index`` comes among ``cluster``'s tasks, chief first: its input pipeline."""
    order = [(job, number) for job in ("chief", "worker") for number in range(len(cluster.get(job, [])))]
    return order.index((kind, index)) if (kind, index) in order else 0


def _tensorflow_agreement(strategy: Any) -> Any:
    """A function: an int of this worker -> the largest over all workers (an all-reduce)."""
    from faceswap.runtime import tf

    @tf.function
    def largest(value):
        def replica(local):  # all_reduce has no MAX
            gathered = tf.distribute.get_replica_context().all_gather(tf.reshape(local, [1]), axis=0)
            return tf.reduce_max(gathered)

        return strategy.run(replica, args=(value,))

    def agree(value: int) -> int:
        result = largest(tf.constant(value, tf.int64))
        return int(strategy.experimental_local_results(result)[0])

    return agree


def _jax_devices(distribute: bool) -> Devices:
    from faceswap.runtime import keras

    if not distribute:
        keras.distribution.set_distribution(None)
        return Devices()
    import jax

    devices = jax.devices()
    if len(devices) < 2:
        log.warning("--distribute: only one device (%s); training on it alone", devices[0])
        keras.distribution.set_distribution(None)
        return Devices()
    # each process's pipeline makes its own share of the batch (see faceswap.train.pipeline)
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    # fit() shards each batch by the distribution in force, not by the one variables were made in
    keras.distribution.set_distribution(distribution)
    processes, index = jax.process_count(), jax.process_index()
    return Devices(
        replicas=len(devices),
        processes=processes,
        index=index,
        chief=index == 0,
        distribution=distribution,
        _agree=_jax_agreement if processes > 1 else None,
    )


def _jax_agreement(value: int) -> int:
    import numpy as np
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.int64(value))))
