"""One model, three backends: a model saved on one resumes and converts on another, without TensorFlow.

The process's backend is fixed when Keras is first imported, so the other
backends run in a child process (``KERAS_BACKEND``), and this one (TensorFlow)
checks what they saved. PyTorch is optional: its test skips where it is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceswap.backends import choose_backend, requested_backend
from faceswap.errors import InputError
from faceswap.train import Hardware, TrainConfig, TrainingSession

CHILD = """
import json, sys
import numpy as np
from faceswap.model_folder import load_swap_model
from faceswap.runtime import BACKEND
from faceswap.train import Hardware, TrainingSession

folder, faces, out = sys.argv[1:]
result = TrainingSession.resume(folder, hardware=Hardware(progress=False)).run(iterations=2)
face, mask = load_swap_model(folder).predict(np.load(faces), "b")
np.save(out, face)
print(json.dumps({
    "backend": BACKEND,
    "iteration": result.iteration,
    "loss_a": result.loss_a,
    "tensorflow": sys.modules.get("tensorflow") is not None,
}))
"""


@pytest.fixture(scope="module")
def tensorflow_model(tmp_path_factory: pytest.TempPathFactory, faces_d18: Path, faces_d19: Path) -> Path:
    """A ``lite`` model folder trained one step on TensorFlow, its encoder held still until step 2.

    The other backends resume it for two steps: the last frozen one (the
    encoder's weights put back, its Adam moments set to zero) and the first
    after the thaw (its step cut to its own Adam's), which touch the
    optimizer's variables between steps (JAX donates the buffers it is given).
    """
    folder = tmp_path_factory.mktemp("backends") / "tf-model"
    config = TrainConfig(
        model="lite", batch_size=2, seed=1, save_every=1000, preview_every=1000, freeze_encoder=2
    )
    TrainingSession.start(folder, faces_d18, faces_d19, config, Hardware(progress=False)).run(iterations=1)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_model_moves_between_backends(backend: str, tensorflow_model: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"the {backend} backend is not installed (pip install '.[{backend}]')")
    from faceswap.model_folder import load_swap_model, read_state

    folder = tmp_path / "model"
    shutil.copytree(tensorflow_model, folder)
    faces = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "faces.npy", faces)
    env = {**os.environ, "KERAS_BACKEND": backend}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(tmp_path / "faces.npy"), str(tmp_path / "out.npy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    # Resumed where TensorFlow stopped, trained, saved; TensorFlow never loaded.
    assert report == {**report, "backend": backend, "iteration": 3, "tensorflow": False}
    assert 0 < report["loss_a"] < 1
    assert read_state(folder).iteration == 3 and (folder / "preview.png").is_file()
    # What it saved converts here, on TensorFlow, as it did there.
    face, _ = load_swap_model(folder).predict(faces, "b")
    np.testing.assert_allclose(face, np.load(tmp_path / "out.npy"), atol=2e-3)


def test_the_backend_is_checked_before_keras_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    with pytest.raises(InputError, match="runs on tensorflow, jax, torch"):
        requested_backend()
    with pytest.raises(InputError, match="unknown backend 'mxnet'"):
        choose_backend("mxnet")
    with pytest.raises(InputError, match="already running on tensorflow"):
        choose_backend("jax")  # this process's Keras runs on TensorFlow
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert choose_backend(None) == "tensorflow"


def test_precision_follows_the_gpu_and_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from faceswap import runtime
    from faceswap.train.hardware import FLOAT32, MIXED_BFLOAT16, MIXED_FLOAT16, compute_settings

    monkeypatch.setattr(runtime, "gpus", lambda: ())
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: False)
    assert compute_settings(Hardware()).policy == FLOAT32  # a CPU without AMX: float32
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    amx = compute_settings(Hardware())
    assert amx.policy == MIXED_BFLOAT16 and not amx.loss_scaling  # one with AMX: bfloat16
    assert compute_settings(Hardware(mixed_precision=False)).policy == FLOAT32
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: False)
    monkeypatch.setattr(runtime, "gpus", lambda: ("gpu:0",))
    monkeypatch.setattr(runtime, "gpu_has_bfloat16", lambda: True)
    ampere = compute_settings(Hardware())
    assert ampere.policy == MIXED_BFLOAT16 and not ampere.loss_scaling
    monkeypatch.setattr(runtime, "gpu_has_bfloat16", lambda: False)
    older = compute_settings(Hardware())
    assert older.policy == MIXED_FLOAT16 and older.loss_scaling
    assert compute_settings(Hardware(mixed_precision=False)).policy == FLOAT32


def test_mixed_precision_on_a_cpu_is_bfloat16_where_it_has_amx_units(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from faceswap import runtime
    from faceswap.train.hardware import MIXED_BFLOAT16, MIXED_FLOAT16, compute_settings

    monkeypatch.setattr(runtime, "gpus", lambda: ())
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    amx = compute_settings(Hardware(mixed_precision=True))
    assert amx.policy == MIXED_BFLOAT16 and not amx.loss_scaling
    assert "slow" not in caplog.text
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: False)
    emulated = compute_settings(Hardware(mixed_precision=True))
    assert emulated.policy == MIXED_FLOAT16 and "slow" in caplog.text


def test_cpu_bfloat16_units_are_read_from_the_kernels_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceswap import runtime

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n\nflags: sse\n")
    assert runtime.cpu_flags(str(cpuinfo)) == {"fpu", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert runtime.cpu_flags(str(tmp_path / "missing")) == frozenset()
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    runtime.cpu_has_bfloat16.cache_clear()
    try:
        assert runtime.cpu_has_bfloat16()
        runtime.cpu_has_bfloat16.cache_clear()
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN off: TensorFlow's own kernels emulate it
        assert not runtime.cpu_has_bfloat16()
        runtime.cpu_has_bfloat16.cache_clear()
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
        monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
        assert not runtime.cpu_has_bfloat16()  # bfloat16 dot products without AMX: not measured
    finally:
        runtime.cpu_has_bfloat16.cache_clear()


def test_training_on_jax_loads_neither_dlib_nor_tensorflow() -> None:
    """A GPU box with JAX or PyTorch and without dlib trains: the training modules load without it.

    dlib and TensorFlow are made unimportable in the child process, as on such a machine.
    """
    code = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('dlib', 'face_recognition_models', 'tensorflow'):\n"
        "            raise ImportError(f'{name} is not installed here')\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import faceswap.train.session, faceswap.train.validation, faceswap.coverage, faceswap.swap_model\n"
        "from faceswap.runtime import BACKEND\n"
        "print(BACKEND, *(sys.modules.get(name) is not None for name in ('dlib', 'tensorflow')))\n"
    )
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["jax", "False", "False"]
