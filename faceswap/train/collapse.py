"""A collapsed network: noticing it, and going on from the best checkpoint with a lower learning rate.

A network collapses when one bad update saturates its outputs: every face it
paints becomes flat colour (seen at batch 8, under a Laplacian-pyramid loss,
and once with the default recipe at step 252, 4 December 2026: the face loss
from 0.11 to 0.42 in three steps, both sides at once, the sigmoid outputs
pure yellow and red). The losses stay finite, so the NaN check misses it,
and training on does not bring it back: the saturated outputs pass no
gradient.

:class:`CollapseWatch` notices it from the smoothed face loss, over the whole
history of the model (a resumed run, or one trained in slices, is watched as
one run). :func:`roll_back_to_best` then puts the checkpoint of the lowest
loss (``best/``) back into the network and cuts the learning rate, and
training goes on (:meth:`faceswap.train.session.TrainingSession.run`, at most
:data:`MAX_ROLLBACKS` times a run); without a best checkpoint the run stops
and says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from faceswap.train.smoothing import BiasCorrectedEMA

if TYPE_CHECKING:
    from faceswap.train.session import TrainingSession

#: A smoothed face loss this many times the lowest of the run means the network has collapsed.
#: Measured: healthy runs of 1,150 and 4,500 steps peak at 1.16 and 1.10 times their lowest after
#: the first 100 steps; collapses under a Laplacian-pyramid loss (tried on 3 December 2026, dropped)
#: levelled off at 2.35 and 2.76 (0.09 to 0.21, 0.10 to 0.27), one at batch 8 under ``mae+dssim`` at 6.5,
#: one of the default recipe at 3.7.
COLLAPSE_FACTOR = 2.0
#: Steps of a run before its lowest smoothed loss counts (the first ones fall fast).
COLLAPSE_MIN_STEPS = 100
#: Roll-backs a run makes before it gives up and stops.
MAX_ROLLBACKS = 3
#: Each roll-back multiplies the learning rate by this.
LEARNING_RATE_CUT = 0.5
#: Face-loss settings whose change on resuming starts a new watch (the loss then lies elsewhere).
LOSS_SETTINGS = ("loss", "mask_weight", "background_weight", "eye_mouth_weight", "faces_a", "faces_b")


class CollapseWatch:
    """Notices a collapsed network: its smoothed face loss far above the lowest it reached.

    Parameters
    ----------
    history
        Rows ``(iteration, loss_a, loss_b)`` already trained (a resumed
        model's loss history), replayed as if seen now.
    """

    def __init__(self, history: Iterable[tuple[float, float, float]] = ()) -> None:
        self.lowest = math.inf
        self.restart()
        for row in history:
            self.update(row[1], row[2])

    def restart(self) -> None:
        """Forget the smoothed loss, keep the lowest (after a roll-back: the collapsed steps do not count)."""
        self.averages = (BiasCorrectedEMA(), BiasCorrectedEMA())

    def update(self, loss_a: float, loss_b: float) -> tuple[float, float] | None:
        """Add one step's face losses; ``(lowest, now)`` once the loss has collapsed, else ``None``."""
        now = max(
            average.update(value) for average, value in zip(self.averages, (loss_a, loss_b), strict=True)
        )
        if self.averages[0].count < COLLAPSE_MIN_STEPS:
            return None
        self.lowest = min(self.lowest, now)
        return (self.lowest, now) if now > COLLAPSE_FACTOR * self.lowest else None


def roll_back_to_best(session: TrainingSession) -> str | None:
    """Put ``best/``'s weights and optimizer state into the session's network and cut its learning rate.

    The iteration count goes on (the batches, the schedule and the loss
    history stay in step; ``loss.png`` shows the collapse and the return).

    Returns
    -------
    str or None
        What was done, for the log; ``None`` when there is no usable best
        checkpoint (nothing changed).
    """
    from faceswap.errors import ModelError
    from faceswap.model_folder import BEST_DIR, STATE_FILE, read_state_of_weights
    from faceswap.train.checkpoint import copy_training_state, load_checkpoint

    best = session.model_dir / BEST_DIR
    if not (best / STATE_FILE).exists():
        return None
    try:
        state = read_state_of_weights(best)
        copy_training_state(load_checkpoint(best, state), session.network, str(best))
    except ModelError:
        return None
    rate = session.config.learning_rate * LEARNING_RATE_CUT
    session.config = replace(session.config, learning_rate=rate)
    session.state.config = {**session.state.config, "learning_rate": rate}
    session.losses = (BiasCorrectedEMA(), BiasCorrectedEMA())
    session.collapse_watch.restart()
    return (
        f"went back to {best} (iteration {state.iteration}); "
        f"training goes on with the learning rate cut to {rate:.3g}"
    )
