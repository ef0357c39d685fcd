"""The extract worker pool: processes forked from a fork server that has the models loaded.

A worker that dies (killed, out of memory) or cannot start becomes one line
that says how (:meth:`WorkerPool.death`); the pool is stopped for good on any
exit path (:meth:`WorkerPool.close`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from faceswap.errors import FaceswapError
from faceswap.extract_worker import WorkerConfig, initialise
from faceswap.signals import hangup_ignored, signal_name


class WorkerPool:
    """Worker processes with the models loaded; stopped for good on any exit path."""

    def __init__(self, config: WorkerConfig, jobs: int, with_identity: bool) -> None:
        # Not fork: a forked child of a parent whose OpenCV (or any other) thread
        # pool has started can deadlock on the pool's locks. A fork server imports
        # the worker module once, then forks each worker from that clean process.
        self.forkserver = "forkserver" in multiprocessing.get_all_start_methods()
        if self.forkserver:
            context = multiprocessing.get_context("forkserver")
            # The server also loads the models, once, for every worker it forks.
            context.set_forkserver_preload(["faceswap.extract_worker", "faceswap.extract_preload"])
        else:
            context = multiprocessing.get_context("spawn")
        with hangup_ignored():  # the shared arrays' locks start multiprocessing's resource tracker
            self.progress = context.Array("q", 2)
            #: A worker that cannot start writes why here (one line), see :func:`initialise`.
            self.start_error = context.Array("c", 512)
        self.executor = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=initialise,
            initargs=(config, self.progress, with_identity, self.start_error),
        )
        self._workers: dict[int, Any] = {}

    def warm_up(self) -> None:
        """Start loading the models without waiting for them.

        The fork server loads them before it forks anything (a submit would wait
        for that); started by hand, it loads them while the caller goes on. Without
        a fork server, a first task starts a worker, which loads its own.
        """
        if self.forkserver:
            _start_forkserver()
        else:
            self.submit(os.getpid)

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        """Queue a call in a worker."""
        try:
            future = self.executor.submit(function, *args)
        except BrokenProcessPool:
            raise FaceswapError(self.death()) from None
        self._workers.update(getattr(self.executor, "_processes", None) or {})
        return future

    def result(self, future: Future) -> Any:
        """A worker's result; a worker that died becomes one line that says how."""
        try:
            return future.result()
        except BrokenProcessPool:
            raise FaceswapError(self.death()) from None

    def death(self) -> str:
        """What became of the worker that broke the pool: its own one-line error, or how it ended."""
        line = self.start_error.value.decode("utf-8", "replace")
        if line:
            return f"a worker process could not start: {line}"
        self._workers.update(getattr(self.executor, "_processes", None) or {})
        codes = [process.exitcode for process in self._workers.values()]
        # The pool terminates (SIGTERM) the other workers once one has died.
        died = [code for code in codes if code not in (None, 0, -signal.SIGTERM)] or [
            code for code in codes if code == -signal.SIGTERM
        ]
        if not died:
            return "a worker process ended unexpectedly"
        code = died[0]
        if code < 0:
            name = signal_name(-code)
            hint = " (out of memory? try fewer --jobs)" if code == -signal.SIGKILL else ""
            return f"a worker process was killed by {name}{hint}"
        return f"a worker process exited with status {code}"

    def close(self, *, cancel: bool) -> None:
        """Stop the workers: at once (and without waiting for running chunks) when ``cancel``."""
        if cancel:
            stop_at_once(self.executor)
        else:
            self.executor.shutdown(wait=True)


def stop_at_once(executor: ProcessPoolExecutor) -> None:
    """Stop an executor's workers without waiting for their running calls, and its manager thread.

    A worker stopped while it sends a result leaves half a message in the
    result pipe. The executor's manager thread then waits for the rest for
    ever, and so does the interpreter, which joins that thread at exit: the
    process would never end. Once the workers are gone this process holds the
    pipe's last write end; closing it ends that wait. (``shutdown(wait=True)``
    after ``shutdown(wait=False)`` joins nothing: the first call forgets the
    thread.)
    """
    processes = list((getattr(executor, "_processes", None) or {}).values())
    manager = getattr(executor, "_executor_manager_thread", None)
    results = getattr(executor, "_result_queue", None)
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    if results is not None:
        with contextlib.suppress(Exception):
            results._writer.close()
    if manager is not None:
        manager.join(timeout=30)
    if results is not None and not (manager and manager.is_alive()):
        with contextlib.suppress(Exception):
            results.close()


def _start_forkserver() -> None:
    """Start the fork server in the folder that holds this ``faceswap`` package.

    The server runs ``python -c``, so its module search starts with its current
    folder (and Python 3.11 and older ignore the parent's ``sys.path`` there):
    started in a folder that holds another ``faceswap`` (a clone of this
    repository, say), it would preload that one, and every worker with it. The
    workers themselves still run in the caller's folder (relative paths hold).
    """
    package_root = Path(__file__).resolve().parent.parent
    here = os.getcwd()
    with hangup_ignored():  # the server and the resource tracker outlive a hangup (see there)
        try:
            os.chdir(package_root)
        except OSError:  # an unreadable install folder: start it where we are
            multiprocessing.forkserver.ensure_running()
            return
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            os.chdir(here)
