"""Training for real, in-process: the loss falls, files are written, resume is exact, guards hold."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.align import LEGACY
from faceswap.augment import AugmentConfig
from faceswap.errors import InputError, OutputError, TrainingDivergedError
from faceswap.model_folder import load_keras_model, load_swap_model, read_state, saved_iteration
from faceswap.train import Hardware, TrainConfig, TrainingSession, train
from faceswap.train import session as session_module
from faceswap.train.batches import BatchSource
from faceswap.train.dataset import load_faces
from faceswap.train.smoothing import ema_curve

pytestmark = pytest.mark.slow
QUIET = Hardware(progress=False)


def lite(**changes) -> TrainConfig:
    return TrainConfig(
        model="lite",
        # No warm-up: these runs are a few dozen steps; the default 100-step rise would barely move them.
        **{"batch_size": 2, "seed": 1, "save_every": 1000, "preview_every": 1000, "warmup": 0, **changes},
    )


def assert_same_training(one: list[np.ndarray], two: list[np.ndarray]) -> None:
    """Two runs' arrays agree as far as TensorFlow on a CPU can repeat itself.

    Its CPU kernels sum in the order their threads finish, so on a busy
    machine two identical runs differ in the last bits (a median of 1e-8 on
    the weights), and Adam magnifies that on the few weights whose gradients
    are near zero (up to 3e-5 seen, in 4 of a million). Measured after 2 + 2
    steps: a lost optimizer state or a shifted batch stream changes more than
    half of the weights and of Adam's moments by over 0.1 % (a median of 0.1 %
    to 49 %).
    """
    assert len(one) == len(two)
    relative = np.concatenate(
        [(np.abs(a - b) / (np.abs(a) + np.abs(b) + 1e-30)).ravel() for a, b in zip(one, two, strict=True)]
    )
    assert np.median(relative) < 1e-5
    assert np.mean(relative > 1e-3) < 0.05


def tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    from faceswap.runtime import tf

    scalars: dict[str, list[float]] = {}
    for events in sorted(folder.glob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name in ("scalars", "")
                scalars.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return scalars


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, faces_d18: Path, faces_d19: Path):
    """40 iterations of the lite model on d18 (A) and d19 (B), batch 4, with every output switched on.

    40, not fewer: over the first 20 the loss of a batch of 4 falls by less than its noise (a change in
    OpenCV's rounding of warped pixels was enough to turn a 10 % fall into none); by 40 it falls by
    about 30 % whatever the seed.

    Through the one-call API (:func:`faceswap.train.train`), as the demo uses it.
    """
    folder = tmp_path_factory.mktemp("models") / "d18-d19"
    config = lite(batch_size=4, save_every=20, preview_every=20, tensorboard=True, timelapse=True)
    return train(faces_d18, faces_d19, folder, config, iterations=40, time_limit=3600, progress=False)


def test_a_short_real_run_lowers_the_loss_of_both_sides(trained) -> None:
    result = trained
    assert result.reason == "iterations" and result.iteration == 40
    history = np.array(result.loss_history)
    assert history.shape == (40, 3) and list(history[:, 0]) == list(range(1, 41))
    first, last = history[:5, 1:].mean(axis=0), history[-5:, 1:].mean(axis=0)
    assert (last < 0.85 * first).all(), (first, last)  # mae+dssim: its SSIM part falls slower than MAE
    smoothed = tuple(ema_curve(history[:, column])[-1] for column in (1, 2))  # what the bar shows
    assert (result.loss_a, result.loss_b) == pytest.approx(smoothed)
    assert result.faces_per_second > 0


def test_the_run_leaves_a_complete_model_folder(trained, faces_d18: Path) -> None:
    result = trained
    folder = result.model_dir
    preview = cv2.imread(str(folder / "preview.png"))
    assert preview.shape == (
        28 + 4 * 128,
        6 * 128 + 8,
        3,
    )  # header + 4 faces; A and B triplets of 128-px tiles
    assert preview[28:, :128].std() > 20  # real faces in the first column
    plot = cv2.imread(str(folder / "loss.png"))
    assert plot is not None and plot.shape[0] > 200 and plot.shape[1] > 400
    assert sorted(path.name for path in (folder / "timelapse").iterdir()) == [
        "000000020.png",
        "000000040.png",
    ]
    assert tensorboard_scalars(folder / "tensorboard")["loss_a"] == [
        pytest.approx(row[1]) for row in result.loss_history
    ]
    state = read_state(folder)
    assert [tuple(row) for row in state.loss_history] == list(result.loss_history)
    assert state.model == "lite" and state.input_size == 64 and state.iteration == 40
    assert state.config["batch_size"] == 4 and state.config["seed"] == 1
    assert Path(state.config["faces_a"]).name.startswith("faces_d18")
    assert read_state(folder / "best").iteration in (20, 40)
    assert load_swap_model(folder / "best").name == "lite"
    # Convert's loader takes it (safe mode), and the optimizer state travels in model.keras.
    swap = load_swap_model(folder)
    stored = load_faces(faces_d18, "A", 64, centering=swap.centering)
    faces = BatchSource((stored, stored), 3, 64, AugmentConfig.none()).plain(0, range(3))["face"]
    swapped, mask = swap.predict(faces, "b")
    assert swapped.shape == (3, 64, 64, 3) and mask.shape == (3, 64, 64, 1)
    network = load_keras_model(folder / "model.keras", compile=True)
    assert int(np.asarray(network.optimizer.iterations)) == 40


def test_resume_continues_exactly_where_training_stopped(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """4 iterations in one go and 2 + 2 with a resume in between give the same weights and Adam state."""
    straight = TrainingSession.start(tmp_path / "straight", faces_d18, faces_d19, lite(), QUIET)
    straight.run(iterations=4)
    TrainingSession.start(tmp_path / "split", faces_d18, faces_d19, lite(), QUIET).run(iterations=2)
    shutil.copy(tmp_path / "split" / "model.keras", tmp_path / "weights_at_2.keras")
    resumed = TrainingSession.resume(tmp_path / "split", hardware=QUIET)
    assert resumed.state.iteration == 2 and int(np.asarray(resumed.network.optimizer.iterations)) == 2
    assert resumed.run(iterations=1).iteration == 3
    # A kill between the two renames of the save at iteration 3: state.json of 3, the weights of 2.
    shutil.copy(tmp_path / "weights_at_2.keras", tmp_path / "split" / "model.keras")
    assert saved_iteration(tmp_path / "split" / "model.keras") == 2
    assert read_state(tmp_path / "split").iteration == 3
    # The one-call API resumes too: the stored folders and recipe, without naming them.
    with caplog.at_level("WARNING", logger="faceswap"):
        again = train(None, None, tmp_path / "split", iterations=2, resume=True, progress=False)
    assert "the weights are of iteration 2 but state.json says 3" in caplog.text
    assert again.iteration == 4 and [row[0] for row in again.loss_history] == [1, 2, 3, 4]
    one = load_keras_model(tmp_path / "straight" / "model.keras", compile=True)
    two = load_keras_model(tmp_path / "split" / "model.keras", compile=True)
    assert_same_training(one.get_weights(), two.get_weights())
    assert_same_training(
        *([np.asarray(v, np.float64) for v in model.optimizer.variables] for model in (one, two))
    )
    assert int(np.asarray(one.optimizer.iterations)) == int(np.asarray(two.optimizer.iterations)) == 4
    split_history = read_state(tmp_path / "split").loss_history
    straight_history = read_state(tmp_path / "straight").loss_history
    assert [row[0] for row in split_history] == [row[0] for row in straight_history]
    assert np.asarray(split_history) == pytest.approx(np.asarray(straight_history), rel=1e-4)
    with pytest.raises(InputError, match="cannot resume as 'original'"):
        TrainingSession.resume(tmp_path / "split", hardware=QUIET, model="original")
    with pytest.raises(OutputError, match="already holds a model"):
        TrainingSession.start(tmp_path / "split", faces_d18, faces_d19, lite(), QUIET)


def test_target_and_time_limits_stop_training(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, lite(target_loss=0.5), QUIET)
    monkeypatch.setattr(session_module, "MIN_SMOOTHING", 2)
    result = session.run(iterations=50)
    assert result.reason == "target" and result.iteration == 2
    session.config = lite(target_loss=0.0)
    result = session.run(time_limit=0.01)
    assert result.reason == "time" and result.iteration == 3
    assert read_state(tmp_path / "m").iteration == 3


def test_a_nan_loss_stops_training_and_keeps_the_last_checkpoint(
    tmp_path: Path, faces_d18: Path, faces_d19: Path
) -> None:
    from faceswap.runtime import keras

    folder = tmp_path / "m"
    session = TrainingSession.start(folder, faces_d18, faces_d19, lite(save_every=2), QUIET)
    saved: dict[str, str] = {}

    class Poison(keras.callbacks.Callback):
        """After iteration 3 (checkpoint at 2), one weight of the shared encoder becomes NaN."""

        def on_train_batch_end(self, batch, logs=None):
            if session.state.iteration == 3:
                saved.update(model=digest(folder / "model.keras"), state=digest(folder / "state.json"))
                kernel = session.network.get_layer("encoder").get_layer("dense_code").kernel
                kernel.assign(np.where(np.eye(*kernel.shape, dtype=bool), np.nan, np.asarray(kernel)))

    with pytest.raises(
        TrainingDivergedError, match=r"loss a became nan at iteration 4.*checkpoint \(iteration 2\)"
    ):
        session.run(iterations=10, callbacks=[Poison()])
    assert (
        digest(folder / "model.keras") == saved["model"] and digest(folder / "state.json") == saved["state"]
    )
    assert read_state(folder).iteration == 2
    # Weights poisoned while the loss was still finite are refused at saving time, too.
    session.state.iteration = 5
    with pytest.raises(TrainingDivergedError, match="NaN or infinite"):
        session.save()
    assert digest(folder / "model.keras") == saved["model"]


@pytest.mark.parametrize(
    ("amx", "compute", "optimizer"), [(False, "float16", "LossScaleOptimizer"), (True, "bfloat16", "Adam")]
)
def test_mixed_precision_trains_and_saves_a_float32_model(
    tmp_path: Path,
    faces_d18: Path,
    faces_d19: Path,
    monkeypatch: pytest.MonkeyPatch,
    amx: bool,
    compute: str,
    optimizer: str,
) -> None:
    """On a CPU without bfloat16 units mixed precision is float16 with loss scaling; with them, bfloat16."""
    from faceswap import runtime
    from faceswap.runtime import keras

    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: amx)
    folder = tmp_path / "m"
    session = TrainingSession.start(
        folder, faces_d18, faces_d19, lite(), Hardware(mixed_precision=True, progress=False)
    )
    assert session.network.get_layer("encoder").get_layer("down0_conv").compute_dtype == compute
    assert type(session.trainer.optimizer).__name__ == optimizer
    session.run(iterations=1)
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy does not leak
    saved = load_keras_model(folder / "model.keras", compile=True)
    assert saved.get_layer("encoder").get_layer("down0_conv").compute_dtype == "float32"
    assert type(saved.optimizer).__name__ == "Adam" and int(np.asarray(saved.optimizer.iterations)) == 1
    resumed = TrainingSession.resume(folder, hardware=Hardware(mixed_precision=False, progress=False))
    assert not resumed.mixed_precision and resumed.run(iterations=1).iteration == 2
    assert json.loads((folder / "state.json").read_text())["iteration"] == 2


def test_train_holds_back_whole_frames_and_plots_their_error(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --validation-every, held-back frames are never trained on and their error is recorded."""
    from faceswap.train import validation
    from faceswap.train.split import frame_key, split_faces

    monkeypatch.setattr(validation, "MIN_FACES_TO_HOLD_BACK", 10)  # the test folders hold 40 faces
    every_face = load_faces(faces_d18, "A", 64, centering=LEGACY)
    kept, held = validation.hold_back(every_face, every=4)
    assert held is not None and len(kept) + len(held) == len(every_face) and len(held) >= 5
    assert not {frame_key(path) for path in kept.files} & {frame_key(path) for path in held.files}
    # Grouped by the frames read with the faces, as the split of the files on disk groups them.
    assert every_face.frames == [frame_key(path) for path in every_face.files]
    assert set(split_faces(every_face.files, 4, validation.HELD_BLOCK).validation) >= set(held.files)
    assert validation.hold_back(every_face, every=0) == (every_face, None)
    folder = tmp_path / "model"
    session = TrainingSession.start(folder, faces_d18, faces_d19, lite(validation_every=4), QUIET)
    assert len(session.faces[0]) == len(kept) and all(part is not None for part in session.held_back)
    session.run(iterations=3)
    state = read_state(folder)
    assert [row[0] for row in state.validation_history] == [3]
    assert all(0 < value < 1 for value in state.validation_history[0][1:])
    assert (folder / "loss.png").is_file()
    # Resuming keeps the same split and the history.
    again = TrainingSession.resume(folder, hardware=QUIET)
    assert [path.name for path in again.faces[0].files] == [path.name for path in session.faces[0].files]
    assert again.state.validation_history == state.validation_history
