"""``faceswap train`` as users run it: bad inputs, resume, Ctrl-C, several devices (in subprocesses)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.crops import read_crop, write_crop

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
LITE = ("--model", "lite", "--batch-size", "2", "--seed", "5", "--warmup", "0")


def faceswap(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faceswap", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("faceswap train: error: "), result.stderr
    return lines[0]


def test_bad_inputs_give_one_line_and_a_non_zero_exit(
    tmp_path: Path, faces_d18: Path, faces_d19: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no face images" in one_error_line(faceswap("train", empty, faces_d19, "-m", tmp_path / "m"))
    assert "no such folder" in one_error_line(
        faceswap("train", faces_d18, tmp_path / "nope", "-m", tmp_path / "m")
    )
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for path in sorted(faces_d18.glob("*.png"))[:3]:
        shutil.copy(path, mixed)
        image, _ = read_crop(path)
    write_crop(mixed / "half.png", cv2.resize(image, (128, 128)))
    assert "different sizes" in one_error_line(faceswap("train", mixed, faces_d19, "-m", tmp_path / "m"))
    line = one_error_line(faceswap("train", "--resume", "-m", tmp_path / "no-model"))
    assert "no such model folder" in line
    assert not (tmp_path / "m").exists() and not (tmp_path / "no-model").exists()
    assert faceswap("train", faces_d18, faces_d19, "--time", "soon").returncode == 2


def test_resume_continues_the_iteration_count_and_the_optimizer(
    tmp_path: Path, faces_d18: Path, faces_d19: Path
) -> None:
    from faceswap.model_folder import load_keras_model

    model = tmp_path / "model"
    first = faceswap("train", faces_d18, faces_d19, "-m", model, *LITE, "--iterations", "2", "-q")
    assert first.returncode == 0, first.stderr
    assert "faces A: only 40 faces; 100 or more" in first.stderr  # warnings show even with -q
    assert "faces B: only 40 faces; 100 or more" in first.stderr
    state = json.loads((model / "state.json").read_text())
    assert state["iteration"] == 2 and state["config"]["batch_size"] == 2
    second = faceswap("train", "--resume", "-m", model, "--iterations", "1", "--learning-rate", "1e-4")
    assert second.returncode == 0, second.stderr
    assert "resuming at iteration 2 the lite model" in second.stderr
    from faceswap.runtime import cpu_has_bfloat16  # the precision follows the CPU, and the log says so

    assert ("mixed precision (bfloat16)" in second.stderr) == cpu_has_bfloat16(), second.stderr
    assert ("computes bfloat16 natively (Intel AMX)" in second.stderr) == cpu_has_bfloat16()
    assert "faces A: 40 faces of 256 px from" in second.stderr
    assert re.search(r"kept at \d+ px: [\d.]+ [KMG]B in memory", second.stderr), second.stderr
    assert "stopped at iteration 3" in second.stderr
    state = json.loads((model / "state.json").read_text())
    assert state["iteration"] == 3 and [row[0] for row in state["loss_history"]] == [1, 2, 3]
    assert state["config"]["batch_size"] == 2 and state["config"]["learning_rate"] == 1e-4  # kept, changed
    network = load_keras_model(model / "model.keras", compile=True)
    assert int(np.asarray(network.optimizer.iterations)) == 3
    assert float(np.asarray(network.optimizer.learning_rate)) == pytest.approx(1e-4)
    clash = one_error_line(faceswap("train", faces_d18, faces_d19, "-m", model, *LITE))
    assert "already holds a model" in clash


def test_ctrl_c_saves_a_loadable_checkpoint(tmp_path: Path, faces_d18: Path, faces_d19: Path) -> None:
    from faceswap.model_folder import load_keras_model, load_swap_model

    model = tmp_path / "model"
    process = subprocess.Popen(
        [sys.executable, "-m", "faceswap", "train", faces_d18, faces_d19, "-m", model, *LITE],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    output = bytearray()

    def read() -> None:
        while chunk := process.stderr.read1(4096):
            output.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while b"faces/s" not in output:  # the progress bar shows the first finished step
            assert process.poll() is None and time.monotonic() < deadline, output.decode()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 128 + signal.SIGINT, output.decode()
    finally:
        if process.poll() is None:
            process.kill()
        reader.join()
    text = output.decode()
    assert "SIGINT: stopping after this step and saving" in text and "(interrupted)" in text
    assert text.strip().splitlines()[-1] == "faceswap train: interrupted (SIGINT)"
    assert "Traceback" not in text
    state = json.loads((model / "state.json").read_text())
    assert state["iteration"] >= 1
    assert load_swap_model(model).name == "lite"
    network = load_keras_model(model / "model.keras", compile=True)
    assert int(np.asarray(network.optimizer.iterations)) == state["iteration"]
    assert (model / "preview.png").is_file() and (model / "loss.png").is_file()


SPLIT_CPU = """
import sys
from faceswap.runtime import tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from faceswap.cli import main
runs = " ".join(sys.argv[1:]).split(" --- ")
sys.exit(max(main(run.split()) for run in runs))
"""


def test_distribute_trains_on_several_devices(tmp_path: Path, faces_d18: Path, faces_d19: Path) -> None:
    """The multi-device path on a CPU split into two logical devices (set before TensorFlow starts)."""
    from faceswap.model_folder import load_swap_model

    common = ["train", faces_d18, faces_d19, "--model", "lite", "--distribute"]
    odd = [*common, "-m", tmp_path / "odd", "-b", "3"]
    good = [*common, "-m", tmp_path / "model", "-b", "4", "--iterations", "2"]
    result = subprocess.run(
        [sys.executable, "-c", SPLIT_CPU, *map(str, odd), "---", *map(str, good)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 1  # the odd batch size
    assert "batch size 3 does not split evenly over 2 devices" in result.stderr
    assert "batch 4, 2 devices" in result.stderr and "stopped at iteration 2" in result.stderr
    state = json.loads((tmp_path / "model" / "state.json").read_text())
    assert state["iteration"] == 2 and all(np.isfinite(row[1:]).all() for row in state["loss_history"])
    assert load_swap_model(tmp_path / "model").name == "lite"
