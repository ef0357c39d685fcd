"""Starting a new model from a trained one: ``--init-from``, and the encoder held still at first.

The shared encoder learns what all faces have in common (pose, expression,
lighting), so an encoder trained on other people, or on many (``faceswap
train --pretrain``), is a better start than random weights; a decoder may be
taken too (one trained on the same person, or a pretrained one). While the
new decoders are still random their gradients would scramble the encoder,
so ``--freeze-encoder N`` keeps it as loaded for the first ``N`` iterations.

Freezing keeps the encoder's weights, not its optimizer state: each frozen
step runs as usual (Adam's moments follow the encoder's gradients) and the
encoder's weights are then put back. Excluding the encoder from the updates
instead would leave its moments at zero, and at the unfreezing Adam's bias
correction (which counts all steps) would turn the first gradients into
steps up to 16 times the learning rate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.errors import InputError
from faceswap.model import ENCODER, SIDES, decoder_name
from faceswap.model_folder import TrainingState

log = logging.getLogger(__name__)


def source_state(folder: Path | str, model: str | None) -> TrainingState:
    """The state of the ``--init-from`` model folder, checked against the model to train.

    Parameters
    ----------
    folder
        The source model folder.
    model
        The model to train (``None``: not chosen; the source's will be).

    Raises
    ------
    ModelError
        When the folder holds no model, or a damaged one.
    InputError
        When its network is not ``model``.
    """
    from faceswap.model_folder import read_state_of_weights

    state = read_state_of_weights(folder)
    if model is not None and state.model != model:
        raise InputError(
            f"--init-from {folder} holds a {state.model!r} model, but this one is {model!r}: "
            f"the architectures must match (give --model {state.model} or leave --model out)"
        )
    return state


def decoder_sides(init_decoders: str) -> tuple[str, ...]:
    """The sides whose decoders ``init_decoders`` (``"none"``, ``"a"``, ``"b"``, ``"a,b"``) copies."""
    return tuple(side for side in init_decoders.split(",") if side in SIDES)


def initialise_from(network: Any, folder: Path | str, init_decoders: str) -> tuple[str, ...]:
    """Copy the encoder, and the decoders of ``init_decoders``, of the model in ``folder`` into ``network``.

    Returns
    -------
    tuple of str
        The names of the sub-models copied.

    Raises
    ------
    ModelError
        When the source's weights are missing, damaged or of another network.
    """
    from faceswap.model_folder import MODEL_FILE, check_model_matches_state, load_keras_model

    folder = Path(folder)
    state = source_state(folder, network.name.removeprefix("faceswap_"))
    source = load_keras_model(folder / MODEL_FILE)
    check_model_matches_state(source, state, str(folder))
    names = (ENCODER, *(decoder_name(side) for side in decoder_sides(init_decoders)))
    for name in names:
        network.get_layer(name).set_weights(source.get_layer(name).get_weights())
    return names


class FrozenEncoder:
    """Puts the encoder's weights back after each step, until an iteration is reached.

    Parameters
    ----------
    network
        The network being trained.
    until
        The last iteration (steps done) at which the encoder still has its
        weights of now.
    """

    def __init__(self, network: Any, until: int) -> None:
        self.until = until
        self.variables = network.get_layer(ENCODER).weights
        self.values = [np.asarray(variable) for variable in self.variables]

    def after_step(self, iteration: int) -> None:
        """Restore the weights if ``iteration`` (steps done, this one included) is at most ``until``."""
        if iteration > self.until:
            return
        for variable, value in zip(self.variables, self.values, strict=True):
            variable.assign(value)
        if iteration == self.until:
            log.info("iteration %d: the encoder trains from now on", iteration)
