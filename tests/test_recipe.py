"""The training recipe: schedule, clipping, losses, the residual model, the default model,
the smoothed loss the bar shows, and starting from another model (--init-from, a frozen encoder).

Sessions use tiny networks registered for this module (``tiny``, ``tiny_res``, ``tiny_liae``), so that a step
takes milliseconds; the real ``residual128`` is only built, run once and saved.
"""

from __future__ import annotations

import itertools
import logging
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.errors import InputError
from faceswap.model import MODELS, ModelSpec, build_autoencoder, default_model, model_spec, parts
from faceswap.model_folder import MODEL_FILE, load_keras_model
from faceswap.runtime import tf
from faceswap.train import Hardware, TrainConfig, TrainingSession
from faceswap.train.config import LOSSES
from faceswap.train.loss import (
    face_loss,
    laplacian_bands,
    ms_ssim_scales,
    weighted_detail_contrast,
)
from faceswap.train.schedule import FINAL_FRACTION, learning_rate_at
from faceswap.train.smoothing import DECAY, BiasCorrectedEMA, ema_curve
from faceswap.train.step import SwapTrainer, make_optimizer
from tests.test_convert import short_clip  # noqa: F401 - a fixture

QUIET = Hardware(progress=False)
TINY = ModelSpec("tiny", 64, (8, 16, 32, 64), 32, 16, (16, 8, 8), "test network")
TINY_RES = ModelSpec("tiny_res", 64, (8, 16, 32, 64), 32, 16, (16, 8, 8), "test network", residual=True)
TINY_LIAE = ModelSpec(
    "tiny_liae", 64, (8, 16, 32, 64), 32, 16, (16, 8, 8), "test network", shared_decoder=True
)
TINY_128 = ModelSpec(
    "tiny128", 128, (8, 16, 32, 64, 64), 32, 16, (16, 8, 8, 8), "test network", residual=True
)


@pytest.fixture(scope="module", autouse=True)
def tiny_models():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(MODELS, "tiny", TINY)
        patch.setitem(MODELS, "tiny_res", TINY_RES)
        patch.setitem(MODELS, "tiny128", TINY_128)
        patch.setitem(MODELS, "tiny_liae", TINY_LIAE)
        yield


def tiny(**changes) -> TrainConfig:
    return TrainConfig(
        **{"model": "tiny", "batch_size": 2, "seed": 3, "save_every": 1000, "preview_every": 1000, **changes}
    )


def weights_of(network, name: str) -> list[np.ndarray]:
    return [np.array(weight) for weight in network.get_layer(name).get_weights()]


def same(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


# -- schedule and optimizer ----------------------------------------------------------------------


def test_warmup_rises_linearly_then_the_schedule_holds_or_decays() -> None:
    constant = TrainConfig(learning_rate=1e-3, warmup=4)
    assert [learning_rate_at(constant, step) for step in range(6)] == pytest.approx(
        [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]
    )
    cosine = TrainConfig(learning_rate=1e-3, warmup=10, lr_schedule="cosine", decay_iterations=100)
    assert learning_rate_at(cosine, 9) == pytest.approx(1e-3)  # the warm-up's last step: the peak
    assert learning_rate_at(cosine, 10) == pytest.approx(1e-3)
    middle = FINAL_FRACTION + (1 - FINAL_FRACTION) * 0.5
    assert learning_rate_at(cosine, 60) == pytest.approx(1e-3 * middle)
    assert learning_rate_at(cosine, 110) == pytest.approx(1e-3 * FINAL_FRACTION)
    assert learning_rate_at(cosine, 10**6) == pytest.approx(1e-3 * FINAL_FRACTION)
    rates = [learning_rate_at(cosine, step) for step in range(10, 111)]
    assert all(later <= earlier for earlier, later in itertools.pairwise(rates))
    assert learning_rate_at(TrainConfig(learning_rate=3e-4, warmup=0), 0) == 3e-4  # no warm-up: at once
    assert learning_rate_at(TrainConfig(), 0) == pytest.approx(3e-4 / 100)  # the default: a 100-step rise


@pytest.mark.parametrize(
    "changes",
    [
        {"lr_schedule": "linear"},
        {"warmup": -1},
        {"clip_norm": -1.0},
        {"clip_norm": math.nan},
        {"decay_iterations": 0},
        {"freeze_encoder": 1.5},
        {"init_decoders": "c"},
        {"loss": "mse"},
    ],
)
def test_invalid_recipe_options_are_refused(changes: dict) -> None:
    with pytest.raises(InputError):
        TrainConfig(**changes)


def test_clip_norm_is_set_on_the_optimizer_and_bounds_the_gradients() -> None:
    assert make_optimizer(TrainConfig()).global_clipnorm is None
    optimizer = make_optimizer(TrainConfig(clip_norm=0.5, learning_rate=0.1))
    assert optimizer.global_clipnorm == 0.5
    # Plain SGD would show the clipping directly; Adam normalises, so check the clipped gradients.
    gradients = [tf.constant([30.0, 40.0]), tf.constant([0.0])]
    clipped = optimizer._clip_gradients(gradients)
    assert float(tf.linalg.global_norm(clipped)) == pytest.approx(0.5)
    np.testing.assert_allclose(np.asarray(clipped[0]), [0.3, 0.4], rtol=1e-5)


# -- losses --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("size", [64, 128])
def test_every_face_loss_is_zero_on_identical_faces_and_grows_with_the_error(name: str, size: int) -> None:
    rng = np.random.default_rng(size)
    target = tf.constant(rng.random((2, size, size, 3)), tf.float32)
    weight = tf.ones((2, size, size, 1))
    loss = face_loss(name)
    noisy = [tf.clip_by_value(target + rng.normal(0, sigma, target.shape), 0, 1) for sigma in (0.05, 0.2)]
    values = [float(loss(target, target, weight)), *(float(loss(target, image, weight)) for image in noisy)]
    assert values[0] == pytest.approx(0.0, abs=1e-5)
    assert 0 < values[1] < values[2]


def test_mae_plus_dssim_is_the_mean_of_the_two() -> None:
    rng = np.random.default_rng(1)
    target, prediction = (tf.constant(rng.random((2, 64, 64, 3)), tf.float32) for _ in range(2))
    weight = tf.constant(rng.random((2, 64, 64, 1)), tf.float32)
    parts = [float(face_loss(name)(target, prediction, weight)) for name in ("mae", "ssim")]
    assert float(face_loss("mae+dssim")(target, prediction, weight)) == pytest.approx(np.mean(parts))


def test_ms_ssim_uses_as_many_scales_as_the_size_allows() -> None:
    assert (ms_ssim_scales(64), ms_ssim_scales(128), ms_ssim_scales(256)) == (3, 4, 5)


def _astronaut_face(astronaut: np.ndarray, size: int = 64) -> np.ndarray:
    """The astronaut's face (the conftest fixture's image), ``size`` px, in [0, 1]."""
    return cv2.resize(astronaut[:256, 128:384], (size, size), interpolation=cv2.INTER_AREA) / 255.0


@pytest.mark.parametrize(("size", "levels"), [(64, 3), (128, 4)])
def test_laplacian_bands_are_band_pass_levels_down_to_8_px(
    astronaut: np.ndarray, size: int, levels: int
) -> None:
    face = tf.constant(_astronaut_face(astronaut, size)[None], tf.float32)
    bands = laplacian_bands(face)
    assert [int(band.shape[1]) for band in bands] == [size // 2**level for level in range(levels)]
    flat = tf.fill((1, size, size, 3), 0.4)
    assert all(float(tf.reduce_max(tf.abs(band))) < 1e-6 for band in laplacian_bands(flat))  # no edges


def test_the_detail_contrast_prefers_misplaced_detail_to_none_where_the_other_losses_prefer_a_blur(
    astronaut: np.ndarray,
) -> None:
    face = _astronaut_face(astronaut)
    target = tf.constant(face[None], tf.float32)
    blurred = tf.constant(cv2.GaussianBlur(face, (0, 0), 1.0)[None], tf.float32)
    shifted = tf.constant(np.roll(face, 1, axis=1)[None], tf.float32)  # every edge one pixel off
    weight = tf.ones((1, 64, 64, 1))
    assert float(weighted_detail_contrast(target, target, weight)) == pytest.approx(0.0, abs=1e-5)
    mae_dssim = face_loss("mae+dssim")
    assert float(mae_dssim(target, shifted, weight)) > float(mae_dssim(target, blurred, weight))
    assert float(weighted_detail_contrast(target, shifted, weight)) < 0.5 * float(
        weighted_detail_contrast(target, blurred, weight)
    )
    flat = tf.fill((1, 64, 64, 3), 0.5)
    assert float(weighted_detail_contrast(target, flat, weight)) > float(
        weighted_detail_contrast(target, blurred, weight)
    )
    # Only the weighted pixels count: a blur under a zero weight costs nothing.
    half = tf.concat([tf.ones((1, 32, 64, 1)), tf.zeros((1, 32, 64, 1))], axis=1)
    damaged = tf.concat([target[:, :32], blurred[:, 32:]], axis=1)
    assert float(weighted_detail_contrast(target, damaged, half)) < 0.2 * float(
        weighted_detail_contrast(target, blurred, weight)
    )
    # No NaN from the square root where the output has no variance at all.
    with tf.GradientTape() as tape:
        tape.watch(flat)
        value = weighted_detail_contrast(target, flat, weight)
    assert np.isfinite(np.asarray(tape.gradient(value, flat))).all()


def test_the_detail_weight_adds_the_detail_loss_to_the_total_but_not_to_the_logged_face_loss() -> None:
    rng = np.random.default_rng(3)
    batch = {
        f"{kind}_{side}": tf.constant(rng.integers(0, 256, (2, 64, 64, channels)), tf.uint8)
        for side in "ab"
        for kind, channels in (("warped", 3), ("target", 3), ("mask", 2))
    }
    outputs = [tf.constant(rng.random((2, 64, 64, channels)), tf.float32) for channels in (3, 1) * 2]
    totals, logs = {}, {}
    for detail in (0.0, 2.0):
        trainer = SwapTrainer(None, TrainConfig(detail_weight=detail))
        total, logs[detail] = trainer.compute_losses(batch, outputs)
        totals[detail] = float(total)
    assert float(logs[2.0]["loss_a"]) == pytest.approx(float(logs[0.0]["loss_a"]))
    assert totals[2.0] > totals[0.0]
    with pytest.raises(InputError, match="detail-weight"):
        TrainConfig(detail_weight=-1.0)


# -- the residual model --------------------------------------------------------------------------


def test_residual128_paints_128_px_faces_and_survives_a_keras_round_trip(tmp_path: Path) -> None:
    network = build_autoencoder("residual128")
    faces = np.random.default_rng(0).random((2, 128, 128, 3)).astype(np.float32)
    outputs = [np.asarray(output) for output in network([faces, faces])]
    assert [output.shape for output in outputs] == [(2, 128, 128, 3), (2, 128, 128, 1)] * 2
    decoder = network.get_layer("decoder_a")
    assert sum("res" in layer.name and layer.name.endswith("_add") for layer in decoder.layers) == 4
    # Lighter than original128, close to lite: it is meant to train on a CPU.
    assert network.count_params() < 1.1 * build_autoencoder("lite").count_params()
    path = tmp_path / "residual128.keras"
    network.save(path)
    loaded = load_keras_model(path)
    for got, expected in zip(loaded([faces, faces]), outputs, strict=True):
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)


def test_convert_and_the_training_preview_work_at_128_px(
    tmp_path: Path,
    short_clip: tuple[Path, Path],  # noqa: F811 - the fixture imported above
    faces_d18: Path,
    faces_d19: Path,
) -> None:
    from faceswap.convert import ConvertOptions, convert
    from faceswap.model_folder import load_swap_model
    from tests.convert_support import random_model_folder

    model = load_swap_model(random_model_folder(tmp_path / "res", "residual128"))
    assert model.input_size == 128
    shapes = []

    class Recording:
        input_size = model.input_size

        def predict(self, faces: np.ndarray, decoder: str):
            result = model.predict(faces, decoder)
            shapes.append((faces.shape[1:], result[0].shape[1:], result[1].shape[1:]))
            return result

    clip, alignments = short_clip
    options = ConvertOptions(
        model=tmp_path / "res", output=tmp_path / "p.png", alignments=alignments, preview=12, progress=False
    )
    convert(clip, options, model=Recording())
    assert shapes == [((128, 128, 3), (128, 128, 3), (128, 128, 1))]
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, tiny(model="tiny128"), QUIET)
    image = session.preview()
    faces = session.config.preview_faces
    assert image.shape[0] - 128 * faces in (28,) and image.shape[1] == 6 * 128 + 8  # 128-px tiles, 1:1


# -- the LIAE layout (one decoder for both people) -------------------------------------------------


@pytest.fixture(scope="module")
def liae_source(tmp_path_factory: pytest.TempPathFactory, faces_d18: Path, faces_d19: Path) -> Path:
    """A tiny LIAE model trained 3 iterations, saved."""
    folder = tmp_path_factory.mktemp("liae") / "m"
    TrainingSession.start(folder, faces_d18, faces_d19, tiny(model="tiny_liae", seed=5), QUIET).run(
        iterations=3
    )
    return folder


def test_a_liae_session_trains_the_one_decoder_resumes_and_converts(
    tmp_path: Path,
    liae_source: Path,
    short_clip: tuple[Path, Path],  # noqa: F811 - the fixture imported above
) -> None:
    from faceswap.convert import ConvertOptions, convert
    from faceswap.model_folder import load_swap_model

    source = load_keras_model(liae_source / MODEL_FILE)
    folder = tmp_path / "m"
    shutil.copytree(liae_source, folder)
    resumed = TrainingSession.resume(folder, hardware=QUIET)
    assert resumed.state.iteration == 3 and resumed.config.model == "tiny_liae"
    assert same(weights_of(resumed.network, "decoder"), weights_of(source, "decoder"))
    resumed.run(iterations=2)
    assert resumed.state.iteration == 5
    for name in ("encoder", "inter_both", "inter_a", "decoder"):
        assert not same(weights_of(resumed.network, name), weights_of(source, name)), name
    model = load_swap_model(folder)
    faces = (np.random.default_rng(8).random((2, 64, 64, 3)) * 255).astype(np.uint8)
    swapped, _ = model.predict(faces, "b")
    _, _, network_b, _ = load_keras_model(folder / MODEL_FILE)([faces / 255.0] * 2)
    np.testing.assert_allclose(swapped, np.asarray(network_b), atol=1e-5)  # B's path, as trained
    clip, alignments = short_clip
    output = tmp_path / "swapped.png"
    options = ConvertOptions(model=folder, output=output, alignments=alignments, preview=12, progress=False)
    convert(clip, options)
    assert cv2.imread(str(output)) is not None


# -- the default model ---------------------------------------------------------------------------


def test_the_default_model_follows_the_hardware() -> None:
    assert default_model(0)[0] == "lite" and "no GPU" in default_model(0)[1]
    assert default_model(2)[0] == "original" and "2 GPUs" in default_model(2)[1]
    assert TrainConfig().model is None


def test_a_session_without_a_model_takes_the_default_and_says_why(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    import faceswap.model
    import faceswap.runtime

    monkeypatch.setattr(faceswap.runtime, "gpus", lambda: ())
    monkeypatch.setattr(
        faceswap.model, "DEFAULT_ON_CPU", "tiny"
    )  # the real default, lite, is slower to build
    with caplog.at_level(logging.INFO, logger="faceswap"):
        session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, tiny(model=None), QUIET)
    assert session.config.model == session.state.model == "tiny"
    # The faces are checked first (a refused run says only why), then the choice is the first word.
    messages = [record.getMessage() for record in caplog.records]
    first = next(message for message in messages if not message.startswith("faces "))
    assert first.startswith("no --model given: no GPU found: the 'tiny' model"), messages
    assert sum(message.startswith("no --model given") for message in messages) == 1


# -- the smoothed loss -----------------------------------------------------------------------------


def test_the_moving_average_is_bias_corrected() -> None:
    values = [0.5, 0.3, 0.2, 0.25, 0.1]
    average = BiasCorrectedEMA(0.9)
    got = [average.update(value) for value in values]
    for n in range(1, len(values) + 1):
        weights = 0.9 ** np.arange(n - 1, -1, -1)
        assert got[n - 1] == pytest.approx(np.dot(weights, values[:n]) / weights.sum())
    assert got[0] == 0.5  # not pulled towards 0 at the start
    np.testing.assert_allclose(ema_curve(values, 0.9), got)
    assert math.isnan(BiasCorrectedEMA().value)


def test_the_bar_and_the_result_show_the_bias_corrected_average(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, capsys
) -> None:
    config = tiny(learning_rate=2e-3, warmup=3, lr_schedule="cosine", decay_iterations=10)
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, config, Hardware(progress=True))
    result = session.run(iterations=6)
    history = np.asarray(result.loss_history)
    expected = [ema_curve(history[:, column], DECAY)[-1] for column in (1, 2)]
    assert (result.loss_a, result.loss_b) == pytest.approx(expected)
    assert f"loss A {expected[0]:.4f} B {expected[1]:.4f}" in capsys.readouterr().err
    # The schedule set the rate of the last step (the sixth: 5 steps done before it).
    assert float(session.network.optimizer.learning_rate) == pytest.approx(learning_rate_at(config, 5))
    resumed = TrainingSession.resume(tmp_path / "m", hardware=QUIET)
    assert resumed.smoothed_losses() == pytest.approx(expected)


def test_a_run_on_a_clock_has_a_bar_in_time_with_the_time_left(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, capsys
) -> None:
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, tiny(), Hardware(progress=True))
    result = session.run(time_limit=3.0)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"train {session.config.model}:") and "%|" in last and "<" in last
    assert f"it {result.iteration} | loss A" in last and "it/s" not in last


# -- starting from another model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def source_model(tmp_path_factory: pytest.TempPathFactory, faces_d18: Path, faces_d19: Path) -> Path:
    """A tiny model trained 3 iterations, saved."""
    folder = tmp_path_factory.mktemp("source") / "m"
    TrainingSession.start(folder, faces_d18, faces_d19, tiny(seed=7), QUIET).run(iterations=3)
    return folder


@pytest.mark.parametrize(
    ("source", "init_decoders", "copied"),
    [
        ("source_model", "a,b", {"decoder_a", "decoder_b"}),
        ("source_model", "b", {"decoder_b"}),
        ("source_model", "none", set()),
        # LIAE: a part that paints both sides is copied only when both are asked for
        ("liae_source", "a,b", {"inter_both", "inter_a", "decoder"}),
        ("liae_source", "a", {"inter_a"}),
        ("liae_source", "b", set()),
        ("liae_source", "none", set()),
    ],
)
def test_init_from_copies_the_encoder_and_the_decoders_asked_for(
    tmp_path: Path,
    faces_d18: Path,
    faces_d19: Path,
    request: pytest.FixtureRequest,
    source: str,
    init_decoders: str,
    copied: set,
) -> None:
    folder = request.getfixturevalue(source)
    network = load_keras_model(folder / MODEL_FILE)
    config = tiny(model=None, init_from=str(folder), init_decoders=init_decoders)
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, config, QUIET)
    assert session.config.model == network.name.removeprefix("faceswap_")  # taken from the source
    assert same(weights_of(session.network, "encoder"), weights_of(network, "encoder"))
    for name in parts(model_spec(session.config.model)):
        if name != "encoder":
            assert same(weights_of(session.network, name), weights_of(network, name)) == (name in copied), (
                name
            )
    assert session.state.iteration == 0


def test_init_from_another_architecture_is_one_clear_error(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, source_model: Path
) -> None:
    config = tiny(model="tiny_res", init_from=str(source_model))
    with pytest.raises(InputError, match=r"holds a 'tiny' model, but this one is 'tiny_res'"):
        TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, config, QUIET)
    assert not (tmp_path / "m").exists()


def test_a_frozen_encoder_keeps_its_weights_while_the_decoders_learn_then_trains(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, source_model: Path
) -> None:
    source = load_keras_model(source_model / MODEL_FILE)
    config = tiny(init_from=str(source_model), freeze_encoder=3, learning_rate=1e-3)
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, config, QUIET)
    decoders = {side: weights_of(session.network, f"decoder_{side}") for side in "ab"}
    session.run(iterations=3)
    assert same(weights_of(session.network, "encoder"), weights_of(source, "encoder"))
    for side in "ab":
        assert not same(weights_of(session.network, f"decoder_{side}"), decoders[side]), side
    # The saved model holds the frozen encoder; resuming goes on from there and the encoder trains.
    saved = load_keras_model(tmp_path / "m" / MODEL_FILE)
    assert same(weights_of(saved, "encoder"), weights_of(source, "encoder"))
    resumed = TrainingSession.resume(tmp_path / "m", hardware=QUIET)
    assert resumed.config.freeze_encoder == 3 and resumed.config.init_from == str(source_model)
    resumed.run(iterations=2)
    assert not same(weights_of(resumed.network, "encoder"), weights_of(source, "encoder"))


def encoder_moments(network) -> list[np.ndarray]:
    optimizer = network.optimizer
    found = []
    for variable in network.get_layer("encoder").trainable_weights:
        index = optimizer._get_variable_index(variable)
        found += [np.array(optimizer._momentums[index]), np.array(optimizer._velocities[index])]
    return found


@pytest.mark.parametrize(("warmup", "share"), [(0, 1.0), (4, 0.25)])
def test_a_thawed_encoder_takes_the_first_step_of_an_adam_of_its_own(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, source_model: Path, warmup: int, share: float
) -> None:
    # A fresh Adam's first step moves every weight by the learning rate (m/sqrt(v) = g/|g|); the
    # moments gathered while the encoder stood still, or Keras' bias correction by the optimizer's
    # count (6 here, not 1), would make it another size: 1.24 times with zeroed moments.
    config = tiny(init_from=str(source_model), freeze_encoder=5, warmup=warmup, learning_rate=1e-3)
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, config, QUIET)
    session.run(iterations=5)
    assert all(not moment.any() for moment in encoder_moments(session.network))  # set to zero at the thaw
    frozen = weights_of(session.network, "encoder")
    session.run(iterations=1)
    moved = np.concatenate(
        [
            np.abs(now - then).ravel()
            for now, then in zip(weights_of(session.network, "encoder"), frozen, strict=True)
        ]
    )
    moved = moved[moved > 1e-6]
    step = 1e-3 * share
    assert moved.size > 100
    # Adam's epsilon shortens the steps of the smallest gradients; the largest take the whole step.
    assert moved.max() == pytest.approx(step, rel=0.01)


def test_own_step_share_is_the_warm_up_times_the_ratio_of_bias_corrections() -> None:
    from faceswap.train.reuse import own_step_share

    assert own_step_share(7, 7, 0, 0.5, 0.999) == pytest.approx(1.0)  # moments as old as the optimizer's
    assert own_step_share(7, 7, 100, 0.5, 0.999) == pytest.approx(0.07)
    # One step after a thaw at 300: Keras divides by (1 - 0.999**301), a fresh Adam by 0.001.
    first = own_step_share(301, 1, 0, 0.5, 0.999)
    assert first == pytest.approx(math.sqrt(0.001 / (1 - 0.999**301)) * 1 / 0.5)
    shares = [own_step_share(300 + own, own, 100, 0.5, 0.999) for own in (1, 50, 100, 1000, 5000)]
    assert shares == sorted(shares) and shares[-1] == pytest.approx(1.0, abs=0.01)


def test_a_roll_back_to_before_the_thaw_sets_the_encoder_moments_to_zero_again(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, source_model: Path
) -> None:
    from faceswap.train.reuse import FrozenEncoder

    config = tiny(init_from=str(source_model), freeze_encoder=2, warmup=0)
    session = TrainingSession.start(tmp_path / "m", faces_d18, faces_d19, config, QUIET)
    session.run(iterations=4)
    network, optimizer = session.network, session.network.optimizer
    frozen = FrozenEncoder(network, until=2, warmup=0, iteration=4)  # as on resuming at iteration 4
    assert frozen.thawed_at == 2
    assert any(moment.any() for moment in encoder_moments(network))  # two steps of its own
    frozen.begin()  # a new fit() with the moments of after the thaw: nothing to do
    assert any(moment.any() for moment in encoder_moments(network)) and frozen.thawed_at == 2
    optimizer.iterations.assign(1)  # a checkpoint of iteration 1 came back, with the frozen moments
    frozen.begin()
    assert frozen.thawed_at == 1
    assert all(not moment.any() for moment in encoder_moments(network))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--pretrain", "faces", "more_faces"), "--pretrain names the one faces folder"),
        (("-m", "models/x", "--resume", "--init-from", "models/y"), "--init-from starts a new model"),
        (("a", "b", "--init-from", "no/such/model"), "no/such/model: no such model folder"),
    ],
)
def test_conflicting_reuse_options_are_one_line(arguments: tuple[str, ...], message: str) -> None:
    from tests.test_train_cli import faceswap, one_error_line

    assert message in one_error_line(faceswap("train", *arguments))


def test_pretrain_alone_takes_one_folder_for_both_sides(tmp_path: Path, faces_d18: Path) -> None:
    with pytest.raises(InputError, match="are one folder"):
        TrainingSession.start(tmp_path / "pair", faces_d18, faces_d18, tiny(), QUIET)
    session = TrainingSession.start(tmp_path / "pre", faces_d18, faces_d18, tiny(pretrain=True), QUIET)
    session.run(iterations=1)
    resumed = TrainingSession.resume(tmp_path / "pre", hardware=QUIET)
    assert resumed.config.pretrain and resumed.state.iteration == 1


def test_pretrain_reads_a_folder_of_faces_folders_once_for_both_sides(
    tmp_path: Path, faces_d18: Path, faces_d19: Path
) -> None:
    # What extract makes of a folder of two videos: one faces folder each, nothing at the top.
    many = tmp_path / "many_faces"
    for source in (faces_d18, faces_d19):
        shutil.copytree(source, many / f"{source.name}_faces")
    with pytest.raises(InputError, match=r"only in its subfolders \(faces_d18.*_faces, faces_d19"):
        TrainingSession.start(tmp_path / "pair", many, faces_d19, tiny(), QUIET)
    session = TrainingSession.start(tmp_path / "pre", many, many, tiny(pretrain=True), QUIET)
    side_a, side_b = session.faces
    assert len(side_a.files) == len(list(faces_d18.glob("*.png"))) + len(list(faces_d19.glob("*.png")))
    assert side_b.images is side_a.images and side_b.name == "B"  # read once, not twice
    session.run(iterations=1)
    resumed = TrainingSession.resume(tmp_path / "pre", hardware=QUIET)
    assert resumed.state.iteration == 1


def test_pretraining_splits_its_faces_once_for_both_sides(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceswap.train import validation

    monkeypatch.setattr(validation, "MIN_FACES_TO_HOLD_BACK", 10)  # the test folder holds 40 faces
    session = TrainingSession.start(
        tmp_path / "pre", faces_d18, faces_d18, tiny(pretrain=True, validation_every=4), QUIET
    )
    side_a, side_b = session.faces
    held_a, held_b = session.held_back
    every_face = len(list(faces_d18.glob("*.png")))
    assert held_a is not None and len(held_a) > 0 and len(side_a) + len(held_a) <= every_face
    assert side_b.images is side_a.images and side_b.name == "B" and held_b is held_a  # one copy, not two
    # A pair's two sides are split on their own.
    pair = TrainingSession.start(tmp_path / "pair", faces_d18, faces_d19, tiny(validation_every=4), QUIET)
    assert pair.faces[1].images is not pair.faces[0].images and pair.held_back[1] is not pair.held_back[0]


def test_a_model_stored_before_validation_existed_keeps_training_on_every_face() -> None:
    stored = TrainConfig(model="lite").to_json()
    assert stored["validation_every"] == 20
    del stored["validation_every"]  # as state.json was written before the setting existed
    assert TrainConfig.from_json(stored).validation_every == 0
    assert TrainConfig.from_json({**stored, "validation_every": 10}).validation_every == 10


def test_a_model_stored_before_the_eye_mouth_weight_keeps_training_without_it() -> None:
    stored = TrainConfig(model="lite").to_json()
    assert stored["eye_mouth_weight"] == 2.0  # the default now
    assert TrainConfig.from_json(stored).eye_mouth_weight == 2.0
    del stored["eye_mouth_weight"]  # as state.json was written before the setting existed
    assert TrainConfig.from_json(stored).eye_mouth_weight == 0.0
    assert TrainConfig.from_json(stored, eye_mouth_weight=2.0).eye_mouth_weight == 2.0  # unless asked for


def test_a_model_stored_before_warp_to_landmarks_keeps_its_random_warp() -> None:
    stored = TrainConfig(model="lite").to_json()
    assert stored["augment"]["to_landmarks"] is True  # the default now
    assert TrainConfig.from_json(stored).augment.to_landmarks
    del stored["augment"]["to_landmarks"]  # as state.json was written before the setting existed
    assert not TrainConfig.from_json(stored).augment.to_landmarks
    resumed = TrainConfig.from_json(stored, augment={"to_landmarks": True})  # unless asked for
    assert resumed.augment.to_landmarks and resumed.augment.rotation == stored["augment"]["rotation"]


def test_warp_jitter_reaches_the_stored_recipe() -> None:
    """``--warp-jitter PX`` is σ in pixels of the 160-px face, stored as a fraction; older models read 0."""
    from faceswap.cli import build_parser
    from faceswap.cli.train import settings

    args = build_parser().parse_args(["train", "A", "B", "--warp-jitter", "4"])
    config = TrainConfig(**settings(args))
    assert config.augment.warp_jitter == pytest.approx(4 / 160) and config.augment.to_landmarks
    stored = config.to_json()
    assert TrainConfig.from_json(stored).augment.warp_jitter == pytest.approx(4 / 160)
    del stored["augment"]["warp_jitter"]  # as state.json was written before the setting existed
    assert TrainConfig.from_json(stored).augment.warp_jitter == 0.0
