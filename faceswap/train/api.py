"""One call to train a model: :func:`train`.

::

    from faceswap.train import AugmentConfig, TrainConfig, train

    config = TrainConfig(model="lite", batch_size=8, learning_rate=5e-5,
                         augment=AugmentConfig(rotation=10, warp=5 / 160, colour=0.3))
    result = train("faces/alice", "faces/bob", "models/alice-bob", config,
                   time_limit=600, iterations=5000, progress=True)
    print(result.reason, result.iteration, result.loss_a, result.loss_b)
    iterations, loss_a, loss_b = zip(*result.loss_history)

For finer control (several runs on one loaded session, extra Keras
callbacks), use :class:`faceswap.train.TrainingSession` directly; this
function is a thin wrapper around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from faceswap.train.config import TrainConfig
from faceswap.train.hardware import Hardware
from faceswap.train.session import TrainingSession, TrainResult


def train(
    faces_a: Path | str | None,
    faces_b: Path | str | None,
    model_dir: Path | str,
    config: TrainConfig | None = None,
    *,
    iterations: int | None = None,
    time_limit: float | None = None,
    resume: bool = False,
    progress: bool = True,
    hardware: Hardware | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a new model (or, with ``resume``, go on training one) and save it in ``model_dir``.

    Training stops at the first of: ``iterations`` more steps, ``time_limit``
    seconds, the smoothed face loss of both sides at most
    ``config.target_loss`` (default 0.02; 0: never), Ctrl-C, SIGTERM or SIGHUP (when
    called from the main thread). The model is saved every
    ``config.save_every`` iterations and when training stops, with
    ``preview.png`` and ``loss.png``.

    Parameters
    ----------
    faces_a, faces_b
        Folders of aligned faces of person A and B (from ``faceswap extract``).
        With ``resume`` they may be ``None``: the folders the model was
        trained on.
    model_dir
        The model folder. A new model needs one without a model in it.
    config
        The recipe: model, batch size, learning rate, loss, augmentation
        (:class:`faceswap.augment.AugmentConfig`), target loss, save and
        preview intervals, seed. Default: :class:`TrainConfig`'s defaults
        (the model chosen by the hardware: ``original`` with a GPU, ``lite`` without). With
        ``resume``: ``None`` keeps the stored recipe; a config replaces it
        (its ``model`` must be the stored one or ``None``; ``seed=None`` keeps the
        stored seed).
    iterations
        Stop after this many more steps (``None``: no limit).
    time_limit
        Stop after this many seconds of training (``None``: no limit). Loading
        the faces and building the network (seconds) come on top.
    resume
        Go on training the model in ``model_dir``: iteration count, Adam's
        state, loss history and data order continue where they stopped.
    progress
        Show a progress bar on stderr (:mod:`faceswap.progress`): iterations or, with only
        ``time_limit``, time, with loss A, loss B and faces/s.
    hardware
        Mixed precision, XLA, several devices (:class:`Hardware`); its
        ``progress`` is replaced by ``progress``.
    callbacks
        Extra Keras callbacks, called after each step.

    Returns
    -------
    TrainResult
        Why and where training stopped, the smoothed losses, the whole loss
        history (``(iteration, loss_a, loss_b)`` rows, all runs), throughput.

    Raises
    ------
    InputError
        A faces folder is missing, empty or mixes crop sizes; a setting is
        invalid.
    OutputError
        A new model's folder already holds one; the folder cannot be written.
    ModelError
        ``resume`` and the folder holds no model, or a damaged one.
    TrainingDivergedError
        The loss became NaN or infinite; the last good checkpoint is kept.
    """
    from faceswap.train.distribute import model_folder_lock

    hardware = replace(hardware or Hardware(), progress=progress)
    with model_folder_lock(model_dir, hardware.distribute):
        return _train(
            model_dir, faces_a, faces_b, config, hardware, resume, iterations, time_limit, callbacks
        )


def _train(
    model_dir: Path | str,
    faces_a: Path | str | None,
    faces_b: Path | str | None,
    config: TrainConfig | None,
    hardware: Hardware,
    resume: bool,
    iterations: int | None,
    time_limit: float | None,
    callbacks: Sequence[Any],
) -> TrainResult:
    """:func:`train` with the model folder locked."""
    if resume:
        changes = {}
        if config is not None:
            changes = {item.name: getattr(config, item.name) for item in fields(TrainConfig)}
            if changes["seed"] is None:
                del changes["seed"]
        session = TrainingSession.resume(model_dir, faces_a, faces_b, hardware, **changes)
    else:
        if faces_a is None or faces_b is None:
            from faceswap.errors import InputError

            raise InputError("name the two faces folders (faces_a and faces_b) to train a new model")
        session = TrainingSession.start(model_dir, faces_a, faces_b, config or TrainConfig(), hardware)
    return session.run(iterations=iterations, time_limit=time_limit, callbacks=callbacks)
