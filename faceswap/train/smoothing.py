"""The smoothed loss shown in the progress bar, plotted in ``loss.png`` and compared with the target.

An exponential moving average with Adam's bias correction: after ``n``
values ``x_1 .. x_n`` it is ``Σ d^(n-k) x_k / Σ d^(n-k)``, a weighted mean
whose weights fall by ``d`` per step into the past. Unlike a mean over the
last 100 steps it follows the current loss (at iteration 30 it is not held
up by the first, largest values) and it has no window edge (the curve does
not drop when the early values leave a window). Unlike a plain EMA started
at 0 it is not pulled towards 0 in the first steps.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

#: Weight of the previous average per step: about the last 1 / (1 - DECAY) = 20 steps count.
DECAY = 0.95


class BiasCorrectedEMA:
    """A running bias-corrected exponential moving average of one series.

    Parameters
    ----------
    decay
        Weight kept by the past at each step, in ``[0, 1)``.
    values
        Values to start from (e.g. a resumed run's loss history).
    """

    def __init__(self, decay: float = DECAY, values: Iterable[float] = ()) -> None:
        self.decay = decay
        self.count = 0
        self._average = 0.0
        for value in values:
            self.update(value)

    def update(self, value: float) -> float:
        """Add one value; return the new average."""
        self.count += 1
        self._average = self.decay * self._average + (1.0 - self.decay) * float(value)
        return self.value

    @property
    def value(self) -> float:
        """The bias-corrected average (NaN before any value)."""
        if self.count == 0:
            return math.nan
        return self._average / (1.0 - self.decay**self.count)


def ema_curve(values: Iterable[float], decay: float = DECAY) -> np.ndarray:
    """The bias-corrected EMA after each of ``values`` (what :class:`BiasCorrectedEMA` reports)."""
    average = BiasCorrectedEMA(decay)
    return np.array([average.update(value) for value in values], np.float64)
