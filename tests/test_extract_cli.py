"""``faceswap extract`` as users run it: a real run, Ctrl-C, and one line for each bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceswap.alignments import ALIGNMENTS_NAME, Alignments
from tests.conftest import require_data


def run_extract(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faceswap", "extract", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_help_lists_every_option() -> None:
    result = run_extract("--help")
    assert result.returncode == 0
    for option in (
        "--output",
        "--every",
        "--min-size",
        "--max-faces",
        "--size",
        "--detector",
        "--upsample",
        "--reference",
        "--identity-threshold",
        "--blur-threshold",
        "--smooth",
        "--no-smooth",
        "--resume",
        "--overwrite",
        "--jobs",
    ):
        assert option in result.stdout, option


def test_a_run_writes_the_default_output_and_a_summary(tmp_path: Path) -> None:
    video = require_data("video", "d0.mp4")
    result = run_extract(str(video), "--every", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = tmp_path / "d0_faces"
    alignments = Alignments.load(output / ALIGNMENTS_NAME)
    assert sorted(alignments.frames) == list(range(0, 78, 6))
    assert "frames read: 13" in result.stderr and "faces dropped:" in result.stderr
    assert "Traceback" not in result.stderr
    # A second run into the same folder is refused rather than mixed in; nothing is left to resume.
    again = run_extract(str(video), "--every", "6", cwd=tmp_path)
    assert again.returncode == 1 and len(again.stderr.splitlines()) == 1
    assert "finished extract" in again.stderr and "--overwrite" in again.stderr
    assert "--resume" not in again.stderr


# Bad inputs (missing, empty, text, truncated, no media, bad options, references):
# see the table in tests/test_bad_inputs.py, which checks every subcommand alike.


def child_processes(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find child processes")
def test_ctrl_c_leaves_a_valid_file_and_no_processes(tmp_path: Path) -> None:
    video = require_data("video", "d6.mp4")
    output = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "faceswap", "extract", str(video), "-o", str(output), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(output.glob("*.png"))) < 20:
        time.sleep(0.1)
    children = child_processes(process.pid)
    assert children, "the workers should be running"
    # As a terminal does: the whole process group gets SIGINT (workers and their ffmpegs too).
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["faceswap extract: interrupted (SIGINT)"]
    # Valid, with whole chunks only; not written at all while no chunk had finished.
    saved = output / ALIGNMENTS_NAME
    if saved.exists():
        frames = len(Alignments.load(saved).frames)
        assert frames > 0 and frames % 250 == 0
    time.sleep(0.5)
    alive = {pid for pid in children if Path(f"/proc/{pid}").exists()}
    zombies = {
        pid
        for pid in alive
        if (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    }
    assert alive - zombies == set(), "worker or ffmpeg processes outlived the command"
