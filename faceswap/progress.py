"""Progress bars: the one factory every pipeline draws its bar from (on tqdm).

What the bar looks like depends on where it goes:

* **a terminal**: a bar redrawn in place, as wide as the terminal (or
  :data:`FALLBACK_COLUMNS` where the terminal reports no width, as some
  containers and CI consoles do: tqdm would then draw nothing at all), with
  log lines printed above it;
* **a file or a pipe**: whole lines, at most one every :data:`LINE_INTERVAL_S`
  seconds plus the last, in ASCII (a night of training writes kilobytes, not
  one line per iteration);
* **switched off** (``-q``): nothing, and no tqdm monitor thread either.

Whenever the stop is known the bar has a total, hence a percentage and an
estimate of the time left; a run that stops on a clock (``train --time``)
gets a bar in seconds (``timed=True``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")

#: Seconds between two progress lines written to a file or a pipe.
LINE_INTERVAL_S = 30.0
#: Seconds between two redraws in a terminal.
TERMINAL_INTERVAL_S = 0.1
#: Columns assumed when a terminal reports a width of 0 and ``COLUMNS`` is not set.
FALLBACK_COLUMNS = 80
#: Lines assumed when a terminal reports a height of 0.
FALLBACK_LINES = 24
#: The layout of a bar in seconds: elapsed and left, without counts and rates of seconds.
TIMED_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"


def progress_bar(
    total: float | None,
    description: str,
    enabled: bool = True,
    *,
    unit: str = "frame",
    initial: float = 0,
    timed: bool = False,
    stream: IO[str] | None = None,
) -> ProgressBar:
    """A progress bar on ``stream`` (stderr by default), or one that shows nothing.

    Parameters
    ----------
    total
        Where the count stops (``None`` where the stop is not known: no
        percentage, no estimate).
    description
        The words before the bar.
    enabled
        ``False`` (``--quiet``) gives a bar that shows nothing.
    unit
        What is counted ("frame", "face", "it").
    initial
        The count the bar starts from (a resumed training run).
    timed
        ``total`` and the count are seconds: the bar shows elapsed and left
        time only.
    stream
        Where the bar goes; whether it is a terminal decides its kind.

    Returns
    -------
    ProgressBar
        Use it in a ``with`` block (log lines are then printed above a
        terminal bar) or call :meth:`ProgressBar.close` when done.
    """
    if not enabled:
        return ProgressBar(None)
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    terminal = _is_terminal(stream)
    columns, lines = terminal_shape(stream) if terminal else (None, None)
    bar = tqdm(
        total=total,
        initial=initial,
        desc=description,
        unit=unit,
        file=stream if terminal else _LineWriter(stream),
        mininterval=TERMINAL_INTERVAL_S if terminal else LINE_INTERVAL_S,
        # tqdm's monitor thread redraws a bar left alone this long: no more often than a line.
        maxinterval=10.0 if terminal else LINE_INTERVAL_S,
        ncols=columns,
        nrows=lines,
        ascii=None if terminal else True,
        bar_format=TIMED_FORMAT if timed else None,
        leave=True,
    )
    if terminal:
        # tqdm's own dynamic width reads a width of 0 as -1 and then draws nothing;
        # this one follows resizes and falls back to a sane width.
        bar.dynamic_ncols = terminal_shape
    return ProgressBar(bar, redirect_logs=terminal)


class ProgressBar:
    """A tqdm bar, or nothing (``bar=None``), behind the few calls the pipelines make.

    Parameters
    ----------
    bar
        The tqdm bar to drive; ``None`` for a bar that shows nothing.
    redirect_logs
        While in a ``with`` block, print the ``faceswap`` loggers' lines above
        the bar (through ``tqdm.write``) rather than through it.
    """

    def __init__(self, bar: Any, *, redirect_logs: bool = False) -> None:
        self._bar = bar
        self._redirect_logs = redirect_logs
        self._redirect: Any = None

    @property
    def disable(self) -> bool:
        """Whether the bar shows nothing (``--quiet``)."""
        return self._bar is None

    @property
    def n(self) -> float:
        """The count so far (0 for a bar that shows nothing)."""
        return 0 if self._bar is None else self._bar.n

    def update(self, count: float = 1) -> None:
        """Add ``count`` to the count (redrawn when the bar's interval has passed)."""
        if self._bar is not None:
            self._bar.update(count)

    def advance_to(self, count: float, **postfix: Any) -> None:
        """Move the count up to ``count`` (never down), with ``postfix`` shown after the bar.

        The postfix is set before the count moves, so the redraw shows both.
        """
        if self._bar is None:
            return
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        if count > self._bar.n:
            self._bar.update(count - self._bar.n)

    def set_postfix_str(self, text: str) -> None:
        """Show ``text`` after the bar from the next redraw on."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def wrap(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items``, counting one for each handled; the bar closes when they end."""
        with self:
            for item in items:
                yield item
                self.update(1)

    def close(self) -> None:
        """Draw the bar a last time and leave it on screen."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        if self._bar is not None and self._redirect_logs:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm(loggers=[logging.getLogger("faceswap")])
            self._redirect.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            if self._redirect is not None:
                self._redirect.__exit__(None, None, None)
                self._redirect = None


def terminal_shape(stream: IO[str]) -> tuple[int, int]:
    """The columns and lines a bar on ``stream`` may use (tqdm's ``dynamic_ncols`` contract).

    One column less than the terminal (a full-width line wraps in some
    terminals); ``COLUMNS`` or :data:`FALLBACK_COLUMNS` where the terminal
    reports a width of 0 or cannot be asked.
    """
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        columns, lines = 0, 0
    if columns <= 0:
        try:
            columns = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            columns = 0
        columns = columns if columns > 0 else FALLBACK_COLUMNS
    lines = lines if lines > 0 else FALLBACK_LINES
    return columns - 1, lines - 1


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class _LineWriter:
    """The file tqdm writes to when the bar goes to a file: each redraw becomes one whole line.

    tqdm redraws with a carriage return and pads with spaces; a file keeps
    every redraw, so each is written as a plain line and the blank ones
    (clearing, the final newline) and repeated ones not at all.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last = ""

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line and line != self._last:  # closing redraws the last line once more
            self._stream.write(line + "\n")
            self._last = line
        return len(text)

    def flush(self) -> None:
        self._stream.flush()
