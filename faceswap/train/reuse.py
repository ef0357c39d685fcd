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

Nor is the encoder let go all at once. While its weights stand still its
gradients hardly change, so Adam's moments all point one way, and released
at once every weight takes a full step the same way: the loss tripled within
three steps (d18 -> d19 from a pre-trained model, 300 frozen iterations:
0.036 -> 0.11 - 0.16, which the collapse watch took for a collapse). Its
steps grow back instead, linearly from nothing to full over ``--warmup``
iterations, as the learning rate does at the start of training.
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
    """Keeps the encoder's weights until an iteration, then lets its steps grow back to full.

    Parameters
    ----------
    network
        The network being trained.
    until
        The last iteration (steps done) at which the encoder still has its
        weights of now.
    thaw
        Iterations after ``until`` over which the encoder's steps grow
        linearly from nothing to full (0: full at once).
    """

    def __init__(self, network: Any, until: int, thaw: int = 0) -> None:
        self.until = until
        self.thaw = thaw
        self.variables = network.get_layer(ENCODER).weights
        #: The encoder's weights before the next step.
        self.values = [np.array(variable.numpy()) for variable in self.variables]

    @property
    def last_iteration(self) -> int:
        """The last iteration whose step is cut (after it, the encoder trains freely)."""
        return self.until + self.thaw - 1 if self.thaw else self.until

    def step_share(self, iteration: int) -> float:
        """The share of its step the encoder keeps at ``iteration`` (steps done, this one included)."""
        if iteration <= self.until:
            return 0.0
        return min(1.0, (iteration - self.until) / self.thaw) if self.thaw else 1.0

    def after_step(self, iteration: int) -> None:
        """Cut the step just taken to its :meth:`step_share` (0: the weights put back)."""
        if iteration > self.last_iteration:
            return
        share = self.step_share(iteration)
        for index, variable in enumerate(self.variables):
            before = self.values[index]
            kept = before if share == 0.0 else before + share * (np.array(variable.numpy()) - before)
            variable.assign(kept)
            self.values[index] = kept
        if iteration == self.until:
            log.info(
                "iteration %d: the encoder trains from now on%s",
                iteration,
                f", its steps growing to full over {self.thaw} iterations" if self.thaw else "",
            )
