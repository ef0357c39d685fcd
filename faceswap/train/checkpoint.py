"""Checkpoints: save the network with its optimizer, keep the best, restore both exactly.

A checkpoint is the model folder's ``model.keras`` (network weights and the
Adam state: step count, learning rate, both moment estimates; and the
iteration, see :func:`faceswap.model_folder.saved_iteration`) plus
``state.json`` (:class:`faceswap.model_folder.TrainingState`). The weights are
written first under a temporary name (a full disk there changes nothing), then
``state.json`` is replaced, then the weights are renamed into place. A kill
between the two renames leaves a state one save ahead of the weights:
resuming then takes the state back to the weights' iteration (its loss
history holds every row up to it), so training goes on exactly from the
weights. ``best/`` holds copies of both from the save with the lowest
smoothed loss.

Resuming does not train the loaded file's objects directly: a fresh network
is built for this run (with this run's precision policy and devices), and the
saved weights and optimizer variables are copied into it. So a model trained
with mixed precision on a GPU resumes on a CPU in float32, and one trained on
one GPU resumes on four. For the same reason the saved file always holds a
float32 network with a plain Adam optimizer (a mixed-precision run saves a
float32 copy): convert then runs it at the precision it chooses.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.errors import ModelError, TrainingDivergedError
from faceswap.fileio import commit, remove_quietly, temporary_path
from faceswap.model_folder import (
    BEST_DIR,
    MODEL_FILE,
    STATE_FILE,
    TrainingState,
    check_model_matches_state,
    load_keras_model,
    save_keras_temporary,
    write_state,
)

log = logging.getLogger(__name__)


def weights_finite(network: Any) -> bool:
    """Whether every weight of ``network`` is finite (a NaN step can poison them with a finite loss)."""
    return all(np.isfinite(np.asarray(weight)).all() for weight in network.get_weights())


def save_checkpoint(folder: Path, network: Any, state: TrainingState) -> None:
    """Save the network (with its optimizer) and the state; the state's rename comes first.

    Raises
    ------
    TrainingDivergedError
        When a weight is NaN or infinite; nothing is written.
    OutputError
        When the disk is full or the folder is not writable.
    """
    if not weights_finite(network):
        raise TrainingDivergedError(
            f"the weights became NaN or infinite by iteration {state.iteration}; "
            f"the last good checkpoint in {folder} is untouched (resume with a lower --learning-rate)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    # The large write first, under a temporary name: a full disk there changes nothing.
    weights = save_keras_temporary(network, folder / MODEL_FILE, state.iteration)
    try:
        write_state(folder, state)
    except BaseException:
        remove_quietly(weights)
        raise
    commit(weights, folder / MODEL_FILE)


def _copy_atomic(source: Path, target: Path) -> None:
    """Put a copy of ``source`` at ``target`` atomically: a hard link where possible, else a real copy.

    A link is free (an original model with its optimizer is about 1 GB) and
    safe: checkpoints replace files by renaming new ones into place, never by
    writing into them, so the linked file never changes.
    """
    temp = temporary_path(target)
    try:
        try:
            os.link(source, temp)
        except OSError:  # another file system, or links not supported
            shutil.copyfile(source, temp)
    except BaseException:
        remove_quietly(temp)
        raise
    commit(temp, target)


def backup_best(folder: Path) -> None:
    """Copy the checkpoint just saved in ``folder`` into ``folder/best`` (state first, each atomically)."""
    from faceswap.errors import OutputError
    from faceswap.fileio import describe_os_error

    best = folder / BEST_DIR
    try:
        best.mkdir(exist_ok=True)
        _copy_atomic(folder / STATE_FILE, best / STATE_FILE)
        _copy_atomic(folder / MODEL_FILE, best / MODEL_FILE)
    except OSError as error:
        raise OutputError(describe_os_error(error, best)) from error


def load_checkpoint(folder: Path, state: TrainingState) -> Any:
    """The saved network of a model folder (compiled, with its optimizer), for resuming.

    ``state`` is the folder's state as :func:`faceswap.model_folder.read_state_of_weights`
    read it (once, by the caller); the network must match it.

    Raises
    ------
    ModelError
        When the weights are missing or damaged, or do not match ``state``.
    """
    network = load_keras_model(folder / MODEL_FILE, compile=True)
    check_model_matches_state(network, state, str(folder))
    return network


def copy_training_state(saved: Any, network: Any, where: str) -> bool:
    """Copy weights and optimizer variables of ``saved`` into ``network`` (whose optimizer is built).

    Used to resume (from the loaded file into this run's network) and to save
    a float32 copy of a mixed-precision network. Variables are matched by
    position (both networks are built by the same code) and checked by shape.
    Returns whether optimizer state was copied: a model file without it (not
    saved by training) restarts Adam's moments with a warning.

    Raises
    ------
    ModelError
        When the weights do not fit the network.
    """
    saved_weights, weights = saved.weights, network.weights
    if len(saved_weights) != len(weights) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(saved_weights, weights, strict=True)
    ):
        raise ModelError(f"{where}: the saved weights do not fit the {network.name} network")
    for source, target in zip(saved_weights, weights, strict=True):
        target.assign(np.asarray(source))
    saved_optimizer = getattr(saved, "optimizer", None)
    if saved_optimizer is None or not saved_optimizer.built:
        log.warning("%s: the model file holds no optimizer state; Adam starts afresh", where)
        return False
    source_vars = saved_optimizer.variables
    target_vars = network.optimizer.variables
    if len(source_vars) != len(target_vars) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(source_vars, target_vars, strict=True)
    ):
        raise ModelError(f"{where}: the saved optimizer state does not fit the network")
    for source, target in zip(source_vars, target_vars, strict=True):
        target.assign(np.asarray(source))
    return True
