"""How a run ends: termination signals, and an exit that cannot hang.

SIGINT (Ctrl-C), SIGTERM (``kill``, ``timeout``, systemd, container runtimes)
and SIGHUP (a closed terminal or ssh session) all take one path: the signal
raises :class:`Interrupted`, a :class:`KeyboardInterrupt` that remembers the
signal, in the main thread. Every pipeline already cleans up on
``KeyboardInterrupt`` (``finally`` blocks save the last complete state, stop
the worker processes and remove temporaries), so all three signals behave as
Ctrl-C does, and the command line exits with ``128 + signal number``.

A second signal while the first is being handled does not interrupt that
clean-up (it is bounded: workers get a few seconds to stop); training, which
asks for a clean stop first, keeps its own "press Ctrl-C again to quit at once"
(:func:`stop_requests`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: The signals that end a run the way Ctrl-C does (SIGHUP where the platform has it).
TERMINATION_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: Seconds the interpreter may take to shut down (leftover threads, exit handlers) before the
#: process ends anyway, with the status it was going to have.
EXIT_GRACE_S = 10.0


class Interrupted(KeyboardInterrupt):
    """A run stopped by a termination signal; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal_name(signum))
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 plus the signal number (130 for Ctrl-C)."""
        return 128 + self.signum


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 99`` for a number without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def interruption(error: KeyboardInterrupt) -> Interrupted:
    """``error`` as an :class:`Interrupted` (a plain ``KeyboardInterrupt`` is Python's own SIGINT)."""
    return error if isinstance(error, Interrupted) else Interrupted(signal.SIGINT)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handled(handler: Any, signals: Sequence[int]) -> Iterator[None]:
    """``handler`` for ``signals`` within the block, the previous handlers restored afterwards.

    Outside the main thread (where Python cannot install handlers) it does nothing.
    """
    if not (signals and _in_main_thread()):
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def termination_raises() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread.

    The handlers in place before are restored afterwards, so this can wrap a
    call of :func:`faceswap.cli.main` inside another program (or a test). Only
    the first signal raises; later ones are ignored while the run cleans up.
    Outside the main thread (where Python cannot install handlers) it does
    nothing.
    """
    raised: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if raised:
            return
        raised.append(signum)
        raise Interrupted(signum)

    with _handled(handler, TERMINATION_SIGNALS):
        yield


@contextlib.contextmanager
def stop_requests(request: Callable[[int], None]) -> Iterator[None]:
    """Within the block, a first termination signal calls ``request(signum)``; a second raises.

    For work that can stop cleanly at its next step (training): ``request``
    asks it to; the second signal raises :class:`Interrupted` at once. The
    previous handlers are restored afterwards. Outside the main thread it does
    nothing.
    """
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) > 1:
            raise Interrupted(received[0])
        request(signum)

    with _handled(handler, TERMINATION_SIGNALS):
        yield


def ignore_termination_in_worker() -> None:
    """In a worker process: leave SIGINT and SIGHUP to the parent, which stops the workers itself.

    A terminal sends both to its whole process group; the parent saves what
    the workers finished and then terminates them (SIGTERM, left at its
    default so that it does).
    """
    for sig in TERMINATION_SIGNALS:
        if sig != signal.SIGTERM:
            signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def hangup_ignored() -> Iterator[None]:
    """SIGHUP ignored for the block: helper processes started in it (and their children) ignore it for good.

    An ignored signal stays ignored across ``exec``. multiprocessing's
    resource tracker and fork server ignore SIGINT (and the tracker SIGTERM)
    but not SIGHUP, which a closed terminal sends to the whole process group:
    they would die before the parent could stop its workers, and a new
    tracker would then print tracebacks about resources it never saw.
    Outside the main thread it does nothing.
    """
    with _handled(signal.SIG_IGN, (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()):
        yield


def exit_guard(code: int, grace: float = EXIT_GRACE_S) -> None:
    """Make sure the process ends within ``grace`` seconds, with status ``code``.

    Called once the run is over and its one line printed: if the interpreter's
    shutdown then waits on something that never ends (a thread a library left
    running, an exit handler blocked on a dead pipe), a daemon thread ends the
    process anyway. Only for a program's own process, never for a library call.
    """

    def end() -> None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(grace, end)
    timer.daemon = True
    timer.start()
