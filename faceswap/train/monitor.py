"""Watching a training run: the Keras callback that keeps the books, stops the run, saves, and shows a bar.

:class:`RunMonitor` is called by ``fit()`` around every step. It hands each
step's losses to the session (:meth:`faceswap.train.session.TrainingSession.record`),
stops the run on a NaN, a stop condition or a signal (:meth:`RunMonitor.request_stop`,
installed by :func:`faceswap.signals.stop_requests`), saves and writes the
preview on schedule, and keeps the progress bar (:meth:`RunMonitor.progress_bar`
opens it, ``_show`` updates it: the only two places that touch it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from faceswap.progress import progress_bar
from faceswap.signals import signal_name

if TYPE_CHECKING:
    from faceswap.train.session import TrainingSession

log = logging.getLogger(__name__)

#: Why a run stops, least urgent first (``None``: it goes on).
STOP_REASONS = (None, "iterations", "time", "target", "interrupted")


def format_duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@functools.cache
def monitor_class() -> type:
    """:class:`RunMonitor` as a Keras callback (made on first use, so this module imports without Keras)."""
    from faceswap.runtime import keras

    class Monitor(RunMonitor, keras.callbacks.Callback):
        pass

    return Monitor


class RunMonitor:
    """The session's Keras callback: bookkeeping, stop conditions, saves, previews, progress bar."""

    def __init__(self, session: TrainingSession, iterations: int | None, time_limit: float | None) -> None:
        super().__init__()
        self.session = session
        self.start_iteration = session.state.iteration
        self.stop_iteration = None if iterations is None else self.start_iteration + iterations
        self.time_limit = time_limit
        self.reason: str | None = None
        self.diverged: str | None = None
        #: ``(lowest, now)`` smoothed face loss once the network collapsed (:mod:`faceswap.train.collapse`).
        self.collapsed: tuple[float, float] | None = None
        self.seconds = 0.0
        self.faces_per_second = 0.0
        self._step_seconds: float | None = None
        self._begin: float | None = None
        self._bar: Any = None
        #: The signal that asked the run to stop (see :meth:`request_stop`).
        self.stop_signal: int | None = None
        self._frozen = None
        if session.config.freeze_encoder:
            from faceswap.train.reuse import FrozenEncoder

            config = session.config
            self._frozen = FrozenEncoder(
                session.network, config.freeze_encoder, config.warmup, session.state.iteration
            )

    # -- stop requests ---------------------------------------------------------------------------

    def request_stop(self, signum: int) -> None:
        """Called from a signal handler: finish this step, save, stop."""
        self.stop_signal = signum
        log.info(
            "%s: stopping after this step and saving (press Ctrl-C again to quit at once)",
            signal_name(signum),
        )

    @contextlib.contextmanager
    def progress_bar(self) -> Iterator[None]:
        """The bar (when enabled): towards the last iteration, or the time limit, when there is one."""
        session = self.session
        enabled = session.hardware.progress and session.chief
        description = f"train {session.config.model}"
        if self.stop_iteration is None and self.time_limit is not None:
            bar = progress_bar(self.time_limit, description, enabled, timed=True)
        else:
            bar = progress_bar(
                self.stop_iteration, description, enabled, unit="it", initial=self.start_iteration
            )
        with bar as self._bar:
            yield

    # -- Keras callback hooks --------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:  # noqa: D102 - Keras API
        # After a roll-back fit() begins again: the run's time goes on from its first begin.
        self._last = time.monotonic()
        self._begin = self._last if self._begin is None else self._begin
        if self._frozen is not None:  # after a roll-back the weights (and maybe the moments) are the best's
            self._frozen.begin()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102 - Keras API
        _ = self.model  # on JAX, this puts the last step's state back into the variables
        self.session.before_step()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:  # noqa: D102 - Keras API
        _ = self.model  # on JAX, the weights are the step's only once synced: saves and previews read them
        session = self.session
        now = time.monotonic()
        seconds, self._last = now - self._last, now
        self.seconds = now - self._begin
        # The step's own losses; Keras' "loss" is their weighted sum averaged over the run so far.
        logs = {key: float(value) for key, value in (logs or {}).items() if key != "loss"}
        bad = [key for key, value in logs.items() if not math.isfinite(value)]
        if bad:
            self.diverged = session.divergence_message(bad[0], logs[bad[0]])
            self.model.stop_training = True
            return
        self.collapsed = session.collapse_watch.update(logs["loss_a"], logs["loss_b"])
        if self.collapsed:
            self.model.stop_training = True
            return
        session.record(logs, seconds)
        self._update_speed(seconds)
        iteration = session.state.iteration
        if self._frozen is not None:
            self._frozen.after_step(iteration)
        self._show(logs)
        if iteration % session.config.save_every == 0:
            session.save()
        if iteration % session.config.preview_every == 0:
            session.write_feedback()
        # Every process of a distributed run stops after the same step, for the most urgent reason of any.
        urgency = session.devices.agreed_max(STOP_REASONS.index(self._stop_reason(iteration, now)))
        self.reason = STOP_REASONS[urgency]
        if self.reason:
            self.model.stop_training = True

    # -- helpers ---------------------------------------------------------------------------------

    def _update_speed(self, seconds: float) -> None:
        """Exponential average of the step time; the first step (tracing, compiling) does not count."""
        session = self.session
        if session.state.iteration == self.start_iteration + 1:
            return
        self._step_seconds = (
            seconds if self._step_seconds is None else 0.9 * self._step_seconds + 0.1 * seconds
        )
        self.faces_per_second = 2 * session.config.batch_size / max(self._step_seconds, 1e-9)

    def _show(self, logs: dict[str, float]) -> None:
        if self._bar is None or self._bar.disable:
            return
        loss_a, loss_b = self.session.smoothed_losses()
        text = f"loss A {loss_a:.4f} B {loss_b:.4f} | {self.faces_per_second:.1f} faces/s"
        if self.stop_iteration is None and self.time_limit is not None:  # a bar in seconds
            self._bar.set_postfix_str(f"it {self.session.state.iteration} | {text}")
            self._bar.advance_to(min(int(self.seconds), self.time_limit))
        else:
            self._bar.set_postfix_str(text)
            self._bar.update(1)

    def _stop_reason(self, iteration: int, now: float) -> str | None:
        if self.stop_signal is not None:
            return "interrupted"
        if self.session.reached_target():
            return "target"
        if self.stop_iteration is not None and iteration >= self.stop_iteration:
            return "iterations"
        if self.time_limit is not None and now - self._begin >= self.time_limit:
            return "time"
        return None
