"""Temporal smoothing of landmarks and transforms across video frames.

dlib's landmarks jitter by a pixel or so from frame to frame even when the face
is still; pasted faces and crops inherit that jitter. The One-Euro filter
(Casiez, Roussel and Vogel, CHI 2012) removes it: a low-pass filter whose
cut-off frequency rises with the speed of the signal, so a still face is
smoothed strongly while a moving face is followed with little lag.

Speeds are divided by a ``scale`` given with each sample (for faces: the
inter-ocular distance), so the same parameters suit small and large faces.
"""

from __future__ import annotations

import math

import numpy as np

#: Defaults for landmarks measured in inter-ocular distances per second.
DEFAULT_MIN_CUTOFF = 1.5
DEFAULT_BETA = 2.0
DEFAULT_DERIVATIVE_CUTOFF = 1.0


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over arrays of any shape (all elements filtered independently).

    Parameters
    ----------
    min_cutoff
        Cut-off frequency (Hz) for a still signal: lower removes more jitter.
    beta
        How fast the cut-off rises with speed: higher means less lag when the
        signal moves.
    derivative_cutoff
        Cut-off frequency (Hz) of the speed estimate.
    """

    def __init__(
        self,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        derivative_cutoff: float = DEFAULT_DERIVATIVE_CUTOFF,
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time: float | None = None

    def __call__(self, value: np.ndarray, time: float, scale: float = 1.0) -> np.ndarray:
        """Filter one sample taken at ``time`` (seconds); returns the smoothed value."""
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._time is None or time <= self._time:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), time
            return value.copy()
        dt = time - self._time
        speed = (value - self._value) / dt / max(scale, 1e-9)
        alpha_speed = _alpha(self.derivative_cutoff, dt)
        self._speed = self._speed + alpha_speed * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        alpha = _alpha(cutoff, dt)
        self._value = self._value + alpha * (value - self._value)
        self._time = time
        return self._value.copy()


def smooth_sequence(
    values: np.ndarray,
    times: np.ndarray,
    scales: np.ndarray | None = None,
    *,
    min_cutoff: float = DEFAULT_MIN_CUTOFF,
    beta: float = DEFAULT_BETA,
    derivative_cutoff: float = DEFAULT_DERIVATIVE_CUTOFF,
) -> np.ndarray:
    """Smooth a whole sequence without lag (offline use, e.g. in convert).

    The One-Euro filter runs forwards and backwards in time and the two
    results are averaged: their lags have opposite signs and cancel, so the
    smoothed sequence does not trail the motion.

    Parameters
    ----------
    values
        Samples, shape ``(n, ...)``, in time order.
    times
        Sample times in seconds, shape ``(n,)``, increasing.
    scales
        Per-sample speed scale (see module docstring); 1 if omitted.
    """
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(values) < 3:
        return values.copy()
    scales = np.ones(len(values)) if scales is None else np.asarray(scales, dtype=np.float64)
    settings = {"min_cutoff": min_cutoff, "beta": beta, "derivative_cutoff": derivative_cutoff}
    forward = OneEuroFilter(**settings)
    backward = OneEuroFilter(**settings)
    ahead = np.stack([forward(v, t, s) for v, t, s in zip(values, times, scales, strict=True)])
    end = times[-1]
    behind = np.stack(
        [backward(v, end - t, s) for v, t, s in zip(values[::-1], times[::-1], scales[::-1], strict=True)]
    )[::-1]
    return (ahead + behind) / 2.0
