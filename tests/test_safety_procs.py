"""Promises 6 and 7 of issue 9: how a run ends, and worker processes that import the right package.

Real ``faceswap`` processes, each in a session of its own, are sent SIGINT
(to the whole group, as a terminal does), SIGTERM (to the main process, as
``kill`` does, or to the group, as systemd does) or SIGHUP (to the group, as a
closed terminal does) in the middle of their work. Every one must exit with
``128 + signal number`` and one line on stderr (no traceback), leave no
temporary file and no process of its group alive, and keep its last complete
state: extract's alignments file (and ``--resume`` finishes it), train's
checkpoint (and ``--resume`` goes on from it). An error ends the process
even when a thread would keep it alive, and a dead worker is reported as how
it died.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from faceswap.alignments import ALIGNMENTS_NAME, Alignments
from faceswap.model_folder import STATE_FILE, read_state
from faceswap.signals import EXIT_GRACE_S
from tests.conftest import require_data
from tests.convert_support import excerpt, random_model_folder
from tests.process_support import assert_group_gone, in_own_session, run_to_end, wait_until
from tests.test_faults import EXTRACT, check_extract_output, check_model_folder, temporaries

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc and POSIX signals")

CLIP_FRAMES = 64
LITE = ("--model", "lite", "--batch-size", "2", "--seed", "5", "--save-every", "1", "--preview-every", "1000")


@dataclass
class Ended:
    """How a signalled run ended."""

    returncode: int
    lines: list[str]
    stderr: str


def signalled(
    command: list[str],
    cwd: Path,
    sig: int,
    ready,
    *,
    group: bool = True,
    timeout: float = 240,
) -> Ended:
    """Run ``command`` in a new session; once ``ready()`` is true send ``sig`` (to the group or the pid).

    Asserts that the run was still going when signalled, that it ended within
    ``timeout`` s, and that no process of its group (workers, ffmpeg, fork
    server) outlived it.
    """
    log = cwd / f"stderr-{time.monotonic_ns()}.txt"
    with open(log, "wb") as stderr, in_own_session(command, cwd, stderr=stderr) as process:
        wait_until(ready, process, timeout, "never got ready for the signal", log=log)
        (os.killpg if group else os.kill)(process.pid, sig)
        process.wait(timeout=timeout)
    assert_group_gone(process.pid, "the signalled command")
    text = log.read_text(errors="replace")
    log.unlink()
    return Ended(process.returncode, text.strip().splitlines(), text)


def faceswap(*args: object) -> list[str]:
    return [sys.executable, "-m", "faceswap", *map(str, args)]


def assert_interrupted(ended: Ended, command: str, sig: int, *, only_line: bool = True) -> None:
    """Exit status 128 + signal, no traceback, and the one interruption line (the only one unless told)."""
    name = signal.Signals(sig).name
    assert ended.returncode == 128 + sig, ended.stderr
    assert "Traceback" not in ended.stderr, ended.stderr
    expected = f"faceswap {command}: interrupted ({name})"
    if only_line:
        assert ended.lines == [expected], ended.stderr
    else:
        assert ended.lines[-1] == expected and ended.lines.count(expected) == 1, ended.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("procs")
    excerpt(require_data("video", "d18.mp4"), CLIP_FRAMES, folder / "clip.mp4")
    return folder


# ----------------------------------------------------------------------------------------------
# extract: alignments saved, workers stopped, crops' temporaries gone, --resume finishes it


EXTRACT_CASES = [
    ("SIGINT", True),
    ("SIGTERM", False),
    ("SIGTERM", True),
    ("SIGHUP", True),
]


@pytest.mark.parametrize(
    ("name", "group"), EXTRACT_CASES, ids=[f"{n}-{'group' if g else 'pid'}" for n, g in EXTRACT_CASES]
)
def test_extract_signalled_saves_and_resumes(workspace: Path, name: str, group: bool) -> None:
    sig = getattr(signal, name)
    output = workspace / f"extract-{name}-{group}"
    args = ["clip.mp4", "-o", output.name, "-q", "--jobs", "2"]
    # Chunks of 8 frames, the file saved after each: signalled once the first chunk is recorded.
    ended = signalled(
        [sys.executable, "-c", EXTRACT, "extract", *args],
        workspace,
        sig,
        lambda: (output / ALIGNMENTS_NAME).exists(),
        group=group,
    )
    assert_interrupted(ended, "extract", sig)
    assert temporaries(output) == []
    alignments = check_extract_output(output)
    assert alignments is not None and 0 < len(alignments.frames) < CLIP_FRAMES
    again = run_to_end([sys.executable, "-c", EXTRACT, "extract", *args, "--resume"], workspace)
    assert again.returncode == 0, again.stderr
    finished = check_extract_output(output)
    assert finished is not None and len(finished.frames) == CLIP_FRAMES
    assert temporaries(output) == []


# ----------------------------------------------------------------------------------------------
# convert: no output, no temporary


@pytest.fixture(scope="module")
def lite(workspace: Path) -> Path:
    return random_model_folder(workspace / "lite")


@pytest.fixture(scope="module")
def clip_alignments(workspace: Path) -> Path:
    done = run_to_end(faceswap("extract", "clip.mp4", "-o", "faces", "-q", "--jobs", "2"), workspace)
    assert done.returncode == 0, done.stderr
    return workspace / "faces" / ALIGNMENTS_NAME


@pytest.mark.parametrize(("name", "group"), [("SIGINT", True), ("SIGTERM", False), ("SIGHUP", True)])
def test_convert_signalled_leaves_nothing(
    workspace: Path, lite: Path, clip_alignments: Path, name: str, group: bool
) -> None:
    sig = getattr(signal, name)
    folder = workspace / f"convert-{name}"
    folder.mkdir()
    command = faceswap(
        "convert", workspace / "clip.mp4", "-m", lite, "-a", clip_alignments, "-o", "out.mp4", "-q"
    )
    ended = signalled(command, folder, sig, lambda: bool(temporaries(folder)), group=group)
    assert_interrupted(ended, "convert", sig)
    assert temporaries(folder) == [] and not (folder / "out.mp4").exists()


# ----------------------------------------------------------------------------------------------
# train: the checkpoint of the last step is saved and resumes; the status says which signal


@pytest.mark.slow
@pytest.mark.parametrize(("name", "group"), [("SIGTERM", False), ("SIGHUP", True)])
def test_train_signalled_saves_a_checkpoint_that_resumes(
    workspace: Path, faces_d18: Path, faces_d19: Path, name: str, group: bool
) -> None:
    sig = getattr(signal, name)
    model = workspace / f"model-{name}"
    ended = signalled(
        faceswap("train", faces_d18, faces_d19, "-m", model, *LITE, "-q"),
        workspace,
        sig,
        lambda: (model / STATE_FILE).exists(),
        group=group,
    )
    # -q keeps the warnings about the small faces folders; nothing else but the one line.
    ended.lines = [line for line in ended.lines if not line.startswith("warning: faces ")]
    assert_interrupted(ended, "train", sig)
    saved = check_model_folder(model, load=False)
    assert saved is not None and saved >= 1 and read_state(model).iteration == saved
    assert temporaries(model) == []
    if sig == signal.SIGTERM:
        again = run_to_end(faceswap("train", "--resume", "-m", model, "--iterations", "1", "-q"), workspace)
        assert again.returncode == 0, again.stderr
        assert read_state(model).iteration == saved + 1


# ----------------------------------------------------------------------------------------------
# score and demo


def test_score_signalled(workspace: Path, faces_d18: Path) -> None:
    clip = workspace / "clip.mp4"
    started = time.monotonic()
    ended = signalled(
        faceswap("score", clip, clip, "--target", faces_d18, "-q", "--json", "report.json"),
        workspace,
        signal.SIGTERM,
        lambda: time.monotonic() - started > 4,
        group=False,
    )
    assert_interrupted(ended, "score", signal.SIGTERM)
    assert not (workspace / "report.json").exists() and temporaries(workspace) == []


@pytest.mark.slow
def test_demo_signalled_during_extract(workspace: Path) -> None:
    out = workspace / "demo"
    faces = out / "work" / "astronaut_faces"
    ended = signalled(
        faceswap("demo", "--out", out, "--minutes", "0.1", "-q"),
        workspace,
        signal.SIGTERM,
        lambda: faces.is_dir() and any(faces.glob("*.png")),
        group=False,
    )
    assert_interrupted(ended, "demo", signal.SIGTERM)
    assert temporaries(out) == []


# ----------------------------------------------------------------------------------------------
# An error ends the process, whatever a library leaves running


HANGING_ERROR = """
import sys, threading
from faceswap.train import monitor
step = monitor.RunMonitor.on_train_batch_end
def broken(self, batch, logs=None):
    step(self, batch, logs)
    threading.Thread(target=threading.Event().wait, name="never-ends").start()  # not a daemon
    raise RuntimeError("injected failure in a training callback")
monitor.RunMonitor.on_train_batch_end = broken
from faceswap.cli import main
sys.exit(main())
"""


@pytest.mark.slow
def test_an_error_in_training_ends_the_process(workspace: Path, faces_d18: Path, faces_d19: Path) -> None:
    log = workspace / "hang.txt"
    error_run = ["-m", str(workspace / "model-error"), *LITE]
    command = [
        sys.executable,
        "-c",
        HANGING_ERROR,
        "train",
        *map(str, (faces_d18, faces_d19)),
        "-q",
        *error_run,
    ]
    with open(log, "wb") as stderr, in_own_session(command, workspace, stderr=stderr) as process:
        wait_until(lambda: "internal error" in log.read_text(), process, 240, "no internal error", log=log)
        printed = time.monotonic()
        code = process.wait(timeout=EXIT_GRACE_S + 30)
    assert code == 1
    assert time.monotonic() - printed < EXIT_GRACE_S + 30
    text = log.read_text()
    assert "injected failure in a training callback" in text and "Traceback" not in text


# ----------------------------------------------------------------------------------------------
# Workers import the installed package whatever the current folder; a dead worker is named


RUNNER = 'import sys\nfrom faceswap.cli import main\nif __name__ == "__main__":\n    sys.exit(main())\n'


def test_workers_ignore_a_faceswap_folder_in_the_current_folder(workspace: Path, tmp_path: Path) -> None:
    here = tmp_path / "clone"
    (here / "faceswap").mkdir(parents=True)
    (here / "faceswap" / "__init__.py").write_text('raise RuntimeError("the wrong faceswap was imported")\n')
    runner = tmp_path / "bin" / "faceswap_runner.py"  # as the console script runs: not from the cwd
    runner.parent.mkdir()
    runner.write_text(RUNNER)
    output = tmp_path / "faces"
    quiet_2 = ["-q", "--jobs", "2"]
    done = run_to_end(
        [sys.executable, str(runner), "extract", str(workspace / "clip.mp4"), "-o", str(output), *quiet_2],
        here,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(Alignments.load(output / ALIGNMENTS_NAME).frames) == CLIP_FRAMES


def _workers_of(pid: int) -> set[int]:
    """Worker processes of an extract: the children of its fork server."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    servers = [child for child in children.get(pid, []) if "forkserver" in commands.get(child, "")]
    return {worker for server in servers for worker in children.get(server, [])}


def test_a_killed_worker_is_reported_as_killed(workspace: Path, tmp_path: Path) -> None:
    output = tmp_path / "faces"
    command = [sys.executable, "-c", EXTRACT, "extract", "clip.mp4", "-o", str(output), "-q", "--jobs", "2"]
    with in_own_session(command, workspace, stderr=subprocess.PIPE, text=True) as process:

        def workers() -> set[int]:
            return _workers_of(process.pid) if any(output.glob("*.png")) else set()

        wait_until(lambda: bool(workers()), process, 120, "no worker started")
        os.kill(min(workers()), signal.SIGKILL)  # as the kernel's out-of-memory killer does
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert stderr.strip().splitlines() == [
        "faceswap extract: error: a worker process was killed by SIGKILL (out of memory? try fewer --jobs)"
    ]


# ----------------------------------------------------------------------------------------------
# The mechanism itself, in this process


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_termination_signals_raise_interrupted_and_handlers_come_back(name: str) -> None:
    from faceswap.signals import Interrupted, termination_raises

    sig = getattr(signal, name)
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as caught, termination_raises():
        os.kill(os.getpid(), sig)
        time.sleep(5)  # the handler raises long before
    assert caught.value.signum == sig and caught.value.exit_code == 128 + sig
    assert isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(sig) == before


def test_a_stop_request_comes_first_and_a_second_signal_raises() -> None:
    from faceswap.signals import Interrupted, stop_requests

    requested: list[int] = []
    with pytest.raises(Interrupted) as caught, stop_requests(requested.append):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        assert requested == [signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert caught.value.signum == signal.SIGTERM


def test_workers_stopped_while_sending_a_result_leave_no_thread_behind(tmp_path: Path) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from faceswap.extract_pool import stop_at_once

    from .process_support import send_half_a_result

    executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    marker = tmp_path / "sent"
    executor.submit(send_half_a_result, str(marker))
    manager = executor._executor_manager_thread
    results = executor._result_queue
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        time.sleep(0.2)  # the manager thread reads the half message and waits for the rest
        assert manager.is_alive()
        stop_at_once(executor)
        # Left waiting, the interpreter would wait for it at exit, for ever.
        assert not manager.is_alive()
    finally:
        results._writer.close()  # lets a failed run of this test end


def test_a_worker_start_failure_is_kept_as_one_line() -> None:
    import multiprocessing

    from faceswap.extract_worker import report_failure

    buffer = multiprocessing.get_context("spawn").Array("c", 64)
    report_failure(buffer, OSError("model file\nunreadable: " + "x" * 100))
    report_failure(buffer, RuntimeError("a later failure"))  # the first one is what went wrong
    line = buffer.value.decode()
    assert line.startswith("OSError: model file unreadable: x") and "\n" not in line and len(line) == 63
