"""The learning rate at each iteration: linear warm-up, then constant or a cosine decay.

A pure function of the recipe and the iteration, so a resumed run takes up
the schedule exactly where it stopped. The session sets the optimizer's
learning rate (a variable saved with it) before every step; the saved Adam
stays a plain Adam, which every faceswap version loads.

Why a warm-up: Adam's first steps divide by a second moment estimated from a
handful of gradients, and a randomly initialised network's first gradients
are its largest; a few hundred steps that grow the rate linearly let a higher
peak rate be used without the early loss spikes. Why a decay: late in
training the step size, not the model, limits how close the loss gets; a
cosine from the peak to a tenth of it over ``decay_iterations`` is the
field's common choice (it needs no step-by-step tuning).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math

from faceswap.train.config import TrainConfig

#: The cosine schedule ends at this fraction of the peak rate, and stays there.
FINAL_FRACTION = 0.1


def learning_rate_at(config: TrainConfig, iteration: int) -> float:
    """The learning rate of the step that follows ``iteration`` finished steps.

    Parameters
    ----------
    config
        The recipe: ``learning_rate`` (the peak), ``lr_schedule``, ``warmup``,
        ``decay_iterations``.
    iteration
        Steps done so far (0 for the first step).

    Returns
    -------
    float
        During the warm-up, ``learning_rate · (iteration + 1) / warmup``;
        after it, ``learning_rate`` (``"constant"``) or the cosine from
        ``learning_rate`` down to ``FINAL_FRACTION · learning_rate``, reached
        ``decay_iterations`` steps after the warm-up.
    """
    peak = config.learning_rate
    if iteration < config.warmup:
        return peak * (iteration + 1) / config.warmup
    if config.lr_schedule == "constant":
        return peak
    progress = min(1.0, (iteration - config.warmup) / config.decay_iterations)
    return peak * (FINAL_FRACTION + (1.0 - FINAL_FRACTION) * 0.5 * (1.0 + math.cos(math.pi * progress)))
