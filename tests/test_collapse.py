"""A collapsed network is noticed over the model's whole history, and training goes on from ``best/``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from faceswap.errors import TrainingDivergedError
from faceswap.model_folder import read_state
from faceswap.train import TrainingSession, collapse
from faceswap.train.collapse import COLLAPSE_FACTOR, COLLAPSE_MIN_STEPS, MAX_ROLLBACKS, CollapseWatch
from tests.test_recipe import QUIET, tiny, tiny_models  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("tiny_models")


def collapse_from(session: TrainingSession, first: int, last: int | None = None):
    """A Keras callback: from iteration ``first`` (to ``last``, default: for ever) decoder A paints black.

    A finite loss far above the lowest: what a collapsed network gives.
    """
    from faceswap.runtime import keras

    face = session.network.get_layer("decoder_a").get_layer("face")

    class Collapse(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if first <= session.state.iteration <= (last or 2**40):
                face.kernel.assign(np.zeros(face.kernel.shape, "float32"))
                face.bias.assign(np.full(face.bias.shape, -30.0, "float32"))

    return Collapse()


def test_the_collapse_watch_needs_a_run_of_its_own_and_a_real_jump() -> None:
    watch = CollapseWatch()
    falling = np.linspace(0.15, 0.05, 3 * COLLAPSE_MIN_STEPS)
    assert all(watch.update(value, value * 1.1) is None for value in falling)
    assert 0.055 < watch.lowest < 0.065  # side B's, the larger, a little behind (smoothed)
    jumps = [watch.update(0.4, 0.06) for _ in range(40)]  # side A paints one flat colour
    first = next(number for number, found in enumerate(jumps) if found)
    lowest, now = jumps[first]
    assert 0 < first < 30 and now > COLLAPSE_FACTOR * lowest
    # A collapse measured under a Laplacian-pyramid loss levelled off at 2.35 times the lowest: caught too.
    lap = CollapseWatch()
    assert all(lap.update(value, value) is None for value in np.linspace(0.13, 0.09, 3 * COLLAPSE_MIN_STEPS))
    assert any(lap.update(0.21, 0.21) for _ in range(60))
    # A run whose loss lies higher from its first step (another --loss) is no collapse,
    # and neither is the fast fall of the first steps.
    resumed = CollapseWatch()
    assert all(resumed.update(0.3, 0.3) is None for _ in range(2 * COLLAPSE_MIN_STEPS))
    early = CollapseWatch()
    assert all(early.update(value, value) is None for value in [0.02] * 5 + [0.3] * (COLLAPSE_MIN_STEPS - 10))


def test_the_watch_replays_the_history_so_runs_in_slices_are_watched_as_one() -> None:
    # The default recipe collapsed at step 252 of a benchmark trained in 120-second slices: each
    # slice's own watch waited 100 steps and then took the collapsing loss as its lowest.
    healthy = [(step, 0.11, 0.10) for step in range(1, 250)]
    watch = CollapseWatch(healthy)
    assert 0.10 < watch.lowest < 0.12
    jumps = [watch.update(0.42, 0.41) for _ in range(20)]
    assert any(jumps[:10])  # within a few steps of the jump, not after a new run's 100
    assert CollapseWatch().update(0.42, 0.41) is None  # a watch without the history waits


def test_a_collapse_goes_back_to_the_best_checkpoint_with_half_the_learning_rate(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr(collapse, "COLLAPSE_MIN_STEPS", 4)  # a tiny network's loss after a few steps:
    monkeypatch.setattr(collapse, "COLLAPSE_FACTOR", 1.5)  # about 0.2, and about 0.45 once it paints black
    folder = tmp_path / "m"
    config = tiny(save_every=3)
    session = TrainingSession.start(folder, faces_d18, faces_d19, config, QUIET)
    face = session.network.get_layer("decoder_a").get_layer("face")
    with caplog.at_level(logging.WARNING, logger="faceswap"):  # at iteration 6, just saved as the best
        result = session.run(iterations=30, callbacks=[collapse_from(session, 6, 6)])
    went_back = [record.getMessage() for record in caplog.records if "went back to" in record.getMessage()]
    assert len(went_back) == 1 and "the network collapsed" in went_back[0] and "best" in went_back[0]
    assert result.iteration == 30  # the run did all its iterations, counting on past the collapse
    assert np.asarray(face.bias).max() > -5  # the best checkpoint's decoder, not the black one
    assert session.config.learning_rate == pytest.approx(config.learning_rate / 2)
    stored = read_state(folder)
    assert stored.iteration == 30
    assert stored.config["learning_rate"] == pytest.approx(config.learning_rate / 2)
    assert max(row[1] for row in stored.loss_history[-5:]) < 0.4  # painting faces again
    # Resumed, the watch knows the run's lowest at once; another loss starts a new watch.
    assert TrainingSession.resume(folder, hardware=QUIET).collapse_watch.lowest < 0.4
    assert TrainingSession.resume(folder, hardware=QUIET, loss="mae").collapse_watch.lowest == float("inf")


def test_a_collapse_that_keeps_coming_back_stops_training(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr(collapse, "COLLAPSE_MIN_STEPS", 4)
    monkeypatch.setattr(collapse, "COLLAPSE_FACTOR", 1.5)
    folder = tmp_path / "m"
    session = TrainingSession.start(folder, faces_d18, faces_d19, tiny(save_every=3), QUIET)
    with (
        caplog.at_level(logging.WARNING, logger="faceswap"),
        pytest.raises(
            TrainingDivergedError, match=r"times its lowest .*: the network collapsed; .*best holds"
        ),
    ):
        session.run(iterations=200, callbacks=[collapse_from(session, 6)])  # and after every step
    assert sum("went back to" in record.getMessage() for record in caplog.records) == MAX_ROLLBACKS
    assert read_state(folder / "best").iteration in (3, 6)


def test_a_collapse_before_any_checkpoint_stops_training_and_says_so(
    tmp_path: Path, faces_d18: Path, faces_d19: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collapse, "COLLAPSE_MIN_STEPS", 4)
    monkeypatch.setattr(collapse, "COLLAPSE_FACTOR", 1.5)
    folder = tmp_path / "m"
    session = TrainingSession.start(folder, faces_d18, faces_d19, tiny(save_every=1000), QUIET)
    with pytest.raises(TrainingDivergedError, match="the network collapsed; no checkpoint was saved yet"):
        session.run(iterations=40, callbacks=[collapse_from(session, 6, 6)])
    assert not (folder / "best").exists()
