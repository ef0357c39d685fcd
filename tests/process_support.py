"""Real ``faceswap`` processes for the tests that signal or kill them (test_faults, test_safety_procs),
and a pool worker stopped in the middle of sending its result (:func:`send_half_a_result`).

Each runs in a session (process group) of its own, so a signal or a SIGKILL
can reach its workers and ffmpeg processes too, and a check afterwards can
tell whether any process of the group outlived it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
#: The environment of every run: this checkout's package, TensorFlow's C++ logging off.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def group_members(group: int) -> set[int]:
    """Processes (not zombies) of process group ``group``, from /proc."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.add(int(entry.name))
    return members


@contextlib.contextmanager
def in_own_session(
    command: list[str],
    cwd: Path,
    *,
    stderr: IO[Any] | int,
    stdout: IO[Any] | int = subprocess.DEVNULL,
    **popen: Any,
) -> Iterator[subprocess.Popen]:
    """``command`` started in a new session; its group is SIGKILLed after the block if it still runs."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        env=ENV,
        **popen,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def run_to_end(command: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """``command`` run to its end in ``cwd`` (at most ``timeout`` s), its output captured as text."""
    return subprocess.run(
        command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen,
    timeout: float,
    never: str,
    *,
    log: Path | None = None,
) -> None:
    """Poll ``ready()`` until it is true, asserting that ``process`` runs and ``timeout`` s have not passed.

    ``never`` says what did not happen; ``log`` is a stderr file whose text the failure shows.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        said = log.read_text(errors="replace") if log is not None else ""
        assert process.poll() is None, f"ended before it was ready ({never}): {said}"
        assert time.monotonic() < deadline, f"{never}: {said}"
        time.sleep(0.05)


def assert_group_gone(group: int, what: str) -> None:
    """Assert that no process of ``group`` is left within 10 s (workers, ffmpeg, the fork server)."""
    deadline = time.monotonic() + 10
    while (survivors := group_members(group)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not survivors, f"processes of {what} outlived it: {survivors}"


def send_half_a_result(marker: str) -> None:
    """In a ``ProcessPoolExecutor`` worker: write half a result message, touch ``marker``, hang.

    This is the pipe as a worker leaves it when it is stopped in the middle of
    sending a large result (the executor's reader then waits for the rest).
    """
    import struct
    import sys

    frame = sys._getframe()
    while "result_queue" not in frame.f_locals:  # the executor's worker loop, up the stack
        frame = frame.f_back
    writer = frame.f_locals["result_queue"]._writer
    os.write(writer.fileno(), struct.pack("!i", 1 << 20) + b"half of it")
    Path(marker).touch()
    time.sleep(600)
