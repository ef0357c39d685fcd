"""``--distribute`` over several processes, as on several machines: two processes on 127.0.0.1.

TensorFlow's ``MultiWorkerMirroredStrategy`` (``TF_CONFIG``) and JAX's
``DataParallel`` over a ``jax.distributed`` cluster (``KERAS_DISTRIBUTION_*``),
each process in its own subprocess with one CPU device.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceswap.errors import InputError
from faceswap.train.distribute import Devices, model_folder_lock, writes_model_folder

ROOT = Path(__file__).resolve().parents[1]

#: One process of a run, through the API: train, then print the weights' digest.
PROCESS = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
from faceswap.train import Hardware, TrainConfig, TrainingSession

model_dir, faces_a, faces_b, iterations = sys.argv[1:]
hardware = Hardware(distribute=True, progress=False)
if (Path(model_dir) / "state.json").exists():
    session = TrainingSession.resume(model_dir, hardware=hardware)
else:
    # The encoder held for the first step: the thaw (moments set to zero, the next step cut) runs too.
    config = TrainConfig(model="lite", batch_size=4, warmup=0, freeze_encoder=1)
    session = TrainingSession.start(model_dir, faces_a, faces_b, config, hardware)
result = session.run(iterations=int(iterations))
weights = b"".join(np.asarray(w).tobytes() for w in session.network.get_weights())
print(json.dumps({"iteration": result.iteration, "chief": session.chief, "replicas": session.replicas,
                  "digest": hashlib.sha256(weights).hexdigest()}))
"""


@pytest.mark.parametrize(
    ("cluster", "task", "chief"),
    [
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
        ({"worker": ["a:1"]}, None, True),
    ],
)
def test_the_chief_of_a_tensorflow_cluster_is_known_before_it_forms(
    monkeypatch: pytest.MonkeyPatch, cluster: dict, task: dict | None, chief: bool
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, **({"task": task} if task else {})}))
    assert writes_model_folder(True) is chief
    assert writes_model_folder(False)  # without --distribute TF_CONFIG means nothing


def test_only_process_0_of_a_jax_cluster_writes_and_a_half_set_cluster_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:1234")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    for index, chief in (("0", True), ("1", False)):
        monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", index)
        assert writes_model_folder(True) is chief
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "2")
    with pytest.raises(InputError, match=r"must lie in 0\.\.1"):
        writes_model_folder(True)
    monkeypatch.delenv("KERAS_DISTRIBUTION_PROCESS_ID")
    with pytest.raises(InputError, match="KERAS_DISTRIBUTION_PROCESS_ID is not set"):
        writes_model_folder(True)


def test_a_malformed_tf_config_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TF_CONFIG", "{cluster: 1}")
    with pytest.raises(InputError, match="TF_CONFIG is not valid JSON"):
        writes_model_folder(True)
    monkeypatch.setenv("TF_CONFIG", '["worker"]')
    with pytest.raises(InputError, match='with a "cluster"'):
        writes_model_folder(True)


def test_a_worker_takes_no_lock_on_a_shared_model_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from faceswap.locks import lock_path

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    cluster = {"worker": ["a:1", "b:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    with model_folder_lock(tmp_path / "model", True):
        assert not lock_path(tmp_path / "model").exists()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    with model_folder_lock(tmp_path / "model", True):
        assert lock_path(tmp_path / "model").exists()


def test_each_input_pipeline_makes_its_share_of_the_batch() -> None:
    assert Devices().input_batch(8) == 8
    tensorflow_style = Devices(replicas=4, processes=2, strategy=object())
    assert tensorflow_style.input_batch(8) == 2  # one device's share per element
    jax_style = Devices(replicas=4, processes=2, distribution=object())
    assert jax_style.input_batch(8) == 4  # one process's share, split over its devices by Keras
    assert jax_style.collective_reads and not tensorflow_style.collective_reads
    with pytest.raises(InputError, match="batch size 6 does not split evenly over 4 devices"):
        jax_style.input_batch(6)
    assert Devices().agreed_max(3) == 3
    assert Devices(replicas=4, processes=2).describe() == ", 4 devices in 2 processes (this is process 0)"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for item in sockets:
        item.bind(("127.0.0.1", 0))
    ports = [item.getsockname()[1] for item in sockets]
    for item in sockets:
        item.close()
    return ports


def tf_cluster(ports: list[int]) -> list[dict[str, str]]:
    """The environment of each worker of a TensorFlow cluster on ``ports``."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        for index in range(len(ports))
    ]


def start(command: list[str], environment: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **environment},
    )


def finish(processes: list[subprocess.Popen[str]], timeout: float = 240) -> list[tuple[int, str, str]]:
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs, strict=True)]


def digests(results: list[tuple[int, str, str]]) -> list[dict]:
    for code, _, err in results:
        assert code == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]


def folder_digest(folder: Path) -> str:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return hashlib.sha256(b"".join(path.name.encode() + path.read_bytes() for path in files)).hexdigest()


@pytest.mark.slow
def test_tensorflow_workers_train_as_one_and_stop_cleanly_when_one_dies(
    tmp_path: Path, faces_d18: Path, faces_d19: Path
) -> None:
    """Two ``TF_CONFIG`` workers: only the chief writes, a killed worker stops the chief, resume goes on."""
    from faceswap.model_folder import load_swap_model

    model, elsewhere = tmp_path / "model", tmp_path / "worker-model"
    train = ["-m", "faceswap", "train", str(faces_d18), str(faces_d19), "--model", "lite", "-b", "4"]
    train += ["--distribute", "--warmup", "0", "--iterations", "500", "--save-every", "2"]
    # 1. a new model; the worker is given a folder of its own, which it must never write
    environments = tf_cluster(free_ports(2))
    chief = start([*train, "-m", str(model)], environments[0])
    worker = start([*train, "-m", str(elsewhere)], environments[1])
    deadline = time.monotonic() + 200
    while not (model / "state.json").exists() and chief.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (model / "state.json").exists(), finish([chief, worker], 5)[0][2][-3000:]
    worker.send_signal(signal.SIGKILL)
    (code, _, err), _ = finish([chief, worker], timeout=120)
    assert code == 1, err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("faceswap train: error: process 0 of 2 lost contact with the others"), last
    assert "is kept" in last and "--resume" in last
    assert "2 devices in 2 processes" in err
    assert not elsewhere.exists()  # the worker wrote nothing
    kept = json.loads((model / "state.json").read_text())["iteration"]
    assert kept >= 2 and kept % 2 == 0
    assert load_swap_model(model).name == "lite"  # the checkpoint is intact

    # 2. both resume from the chief's folder (shared, as on network storage: the worker takes no lock)
    environments = tf_cluster(free_ports(2))
    processes = [start(["-c", PROCESS, str(model), "", "", "2"], environment) for environment in environments]
    first, second = digests(finish(processes))
    assert first["chief"] and not second["chief"] and first["replicas"] == second["replicas"] == 2
    assert first["iteration"] == second["iteration"] == kept + 2
    assert first["digest"] == second["digest"]  # gradients summed over both: the same weights
    assert json.loads((model / "state.json").read_text())["iteration"] == kept + 2


@pytest.mark.slow
def test_jax_processes_of_a_cluster_hold_the_same_weights(
    tmp_path: Path, faces_d18: Path, faces_d19: Path
) -> None:
    """Two JAX processes joined by ``jax.distributed``: one model over both, written by process 0 alone."""
    pytest.importorskip("jax")
    (port,) = free_ports(1)
    processes = []
    for index in range(2):
        environment = {
            "KERAS_BACKEND": "jax",
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
            "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
        }
        folder = tmp_path / f"model{index}"
        processes.append(
            start(["-c", PROCESS, str(folder), str(faces_d18), str(faces_d19), "2"], environment)
        )
    first, second = digests(finish(processes))
    assert first["chief"] and not second["chief"] and first["replicas"] == second["replicas"] == 2
    assert first["iteration"] == second["iteration"] == 2
    assert first["digest"] == second["digest"]
    assert json.loads((tmp_path / "model0" / "state.json").read_text())["iteration"] == 2
    assert not (tmp_path / "model1").exists()


@pytest.mark.slow
def test_distribute_on_torch_is_one_clear_error(tmp_path: Path, faces_d18: Path, faces_d19: Path) -> None:
    pytest.importorskip("torch")
    command = ["-m", "faceswap", "train", str(faces_d18), str(faces_d19), "-m", str(tmp_path / "model")]
    ((code, _, err),) = finish([start([*command, "--backend", "torch", "--distribute"], {})])
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "faceswap train: error: --distribute runs on the tensorflow and jax backends: "
        "Keras has no distribution engine for torch"
    )
    assert not (tmp_path / "model").exists()


def test_a_lost_peer_is_told_apart_from_other_failures() -> None:
    devices = Devices(replicas=2, processes=2)
    error = RuntimeError(
        "Graph execution error:\n\nCollective ops is aborted by: recvmsg:Connection reset by peer\nmore"
    )
    assert devices.lost_contact(error) == "Collective ops is aborted by: recvmsg:Connection reset by peer"
    assert devices.lost_contact(RuntimeError("Graph execution error:")) == "RuntimeError"  # TF's types say it
    assert Devices().lost_contact_errors == ()  # one process: nothing to lose
