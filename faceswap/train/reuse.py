"""Starting a new model from a trained one: ``--init-from``, and the encoder held still at first.

The shared encoder learns what all faces have in common (pose, expression,
lighting), so an encoder trained on other people, or on many (``faceswap
train --pretrain``), is a better start than random weights; a decoder may be
taken too (one trained on the same person, or a pretrained one). While the
new decoders are still random their gradients would scramble the encoder,
so ``--freeze-encoder N`` keeps it as loaded for the first ``N`` iterations.

Freezing keeps the encoder's weights: each frozen step runs as usual and the
encoder's weights are then put back. At the thaw the encoder starts an Adam
of its own, as if it began training then (:class:`FrozenEncoder`): its
moments are set to zero, its steps are corrected for its own count of steps
(Keras' Adam corrects every variable's moments by the optimizer's count, which
at the thaw is ``N`` steps ahead: uncorrected, the first step after a freeze of
300 would be 8 times the learning rate), and they grow from nothing to full
over ``--warmup`` iterations, as the learning rate does at the start. The
cut costs about 5 % of a step's time (``lite`` on 2 CPU cores) until the
steps are whole (:data:`SHARE_TOLERANCE`).

Why not keep the moments gathered while the encoder stood still: its
gradients then are small beside those once it moves (Adam's ratio
``|m| / sqrt(v)`` reached 5 at the 99th percentile, against 1.3 in a run
never frozen), so its steps were two to three times
the learning rate and the loss rose fivefold within ten steps (d18 -> d19,
new decoders, ``--freeze-encoder 120``, 7 December); a ramp over 100 steps
on those moments held the loss level only until the steps were whole, and
then it collapsed as well. With moments of its own the loss falls straight
on through the thaw.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.errors import InputError
from faceswap.model import ENCODER, SIDES, model_spec, parts
from faceswap.model_folder import TrainingState
from faceswap.runtime import keras

log = logging.getLogger(__name__)

#: The encoder's steps are whole (no longer cut) once their share is this near to 1 (about 1,300
#: steps after a thaw at iteration 300, with the default betas: the bias correction is the slow part).
SHARE_TOLERANCE = 0.05


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

    A part that paints both sides (the LIAE layout's shared code and
    decoder, see :func:`faceswap.model.parts`) is copied when
    ``init_decoders`` names both.

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
    chosen = set(decoder_sides(init_decoders))
    spec = model_spec(state.model)
    names = tuple(name for name, sides in parts(spec).items() if name == ENCODER or chosen.issuperset(sides))
    for name in names:
        network.get_layer(name).set_weights(source.get_layer(name).get_weights())
    return names


def own_step_share(steps: int, own_steps: int, warmup: int, beta_1: float, beta_2: float) -> float:
    """The share of Keras' Adam step that makes it the step of an Adam begun ``own_steps`` steps ago.

    Parameters
    ----------
    steps
        The optimizer's count of steps, this one included (Keras corrects
        the moments' bias by it).
    own_steps
        The steps since the variable's moments were set to zero, this one
        included.
    warmup
        Steps over which the share grows linearly from nothing (0: none).
    beta_1, beta_2
        Adam's decay rates.

    Returns
    -------
    float
        ``min(1, own_steps / warmup)`` times the ratio of the bias
        corrections: ``sqrt((1 - beta_2**own_steps) / (1 - beta_2**steps))
        * (1 - beta_1**steps) / (1 - beta_1**own_steps)``; 1 when
        ``own_steps == steps`` and there is no warm-up.
    """
    ramp = min(1.0, own_steps / warmup) if warmup else 1.0
    correction = math.sqrt((1 - beta_2**own_steps) / (1 - beta_2**steps))
    return ramp * correction * (1 - beta_1**steps) / (1 - beta_1**own_steps)


class FrozenEncoder:
    """Keeps the encoder's weights until an iteration, then lets it train with Adam moments of its own.

    Parameters
    ----------
    network
        The network being trained (compiled: its optimizer does the steps).
    until
        The last iteration (steps done) at which the encoder still has its
        weights of now.
    warmup
        Steps after the thaw over which the encoder's steps grow linearly
        from nothing to full (0: full at once).
    iteration
        Steps done now (on resuming after the thaw: how far the thaw is).

    The encoder's own count of Adam steps is the optimizer's count since the
    thaw (``thawed_at``). A roll-back to a checkpoint of before the thaw
    (:func:`faceswap.train.collapse.roll_back_to_best`) brings the frozen
    moments back; :meth:`begin` sees the optimizer's count behind the thaw and
    sets them to zero again.
    """

    def __init__(self, network: Any, until: int, warmup: int, iteration: int) -> None:
        self.until = until
        self.warmup = warmup
        self.optimizer = network.optimizer
        encoder = network.get_layer(ENCODER)
        self.variables = encoder.weights
        self.trainable = encoder.trainable_weights
        #: The optimizer's count of steps at the thaw (``None`` before it).
        self.thawed_at: int | None = None
        if iteration >= until:  # resumed after the thaw (never before the optimizer's first step)
            self.thawed_at = max(0, self._optimizer_steps() - (iteration - until))
        self.finished = False
        self.values: list[Any] = []
        self.begin()

    def _optimizer_steps(self) -> int:
        return int(np.asarray(self.optimizer.iterations))

    def begin(self) -> None:
        """Take the weights of now as the ones to keep (at the start of each ``fit()``)."""
        self.values = [keras.ops.copy(variable.value) for variable in self.variables]
        if self.thawed_at is not None and self._optimizer_steps() < self.thawed_at:
            self._reset_moments()

    def _reset_moments(self) -> None:
        # Keras 3's Adam keeps its moments in these lists, one entry per variable (no public accessor).
        for variable in self.trainable:
            index = self.optimizer._get_variable_index(variable)
            for moments in (self.optimizer._momentums, self.optimizer._velocities):
                moments[index].assign(keras.ops.zeros(moments[index].shape, moments[index].dtype))
        self.thawed_at = self._optimizer_steps()
        self.finished = False

    def after_step(self, iteration: int) -> None:
        """After the step that made ``iteration`` steps done: undo it, or cut it to the encoder's own."""
        if self.finished:
            return
        if iteration <= self.until:
            for variable, value in zip(self.variables, self.values, strict=True):
                variable.assign(keras.ops.copy(value))  # JAX's step donates (frees) what it is given
            if iteration == self.until:
                self._reset_moments()
                log.info("iteration %d: the encoder trains from now on", iteration)
            return
        steps = self._optimizer_steps()
        if steps <= self.thawed_at:  # a float16 step skipped for overflow: the encoder did not move
            return
        beta_1, beta_2 = float(self.optimizer.beta_1), float(self.optimizer.beta_2)
        share = own_step_share(steps, steps - self.thawed_at, self.warmup, beta_1, beta_2)
        if abs(share - 1.0) < SHARE_TOLERANCE:
            self.finished = True
            return
        for index, variable in enumerate(self.variables):
            before = self.values[index]
            kept = before + share * (variable.value - before)
            variable.assign(keras.ops.copy(kept))
            self.values[index] = kept
