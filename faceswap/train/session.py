"""A training run: load the faces, build or resume the model, train, save, report.

The one-call API is :func:`faceswap.train.train`; a session gives finer control::

    from faceswap.train import TrainConfig, TrainingSession

    session = TrainingSession.start("models/me-you", "faces/me", "faces/you",
                                    TrainConfig(model="lite", batch_size=8))
    result = session.run(time_limit=300)         # train for 5 minutes
    result = session.run(iterations=500)         # and 500 iterations more
    session = TrainingSession.resume("models/me-you")   # later, in another process

:meth:`TrainingSession.run` trains until the first of: ``iterations`` more
steps, ``time_limit`` seconds, the smoothed face loss of both sides (a
bias-corrected moving average, see :mod:`faceswap.train.smoothing`) at most
``config.target_loss``, Ctrl-C (SIGINT), SIGTERM or SIGHUP. The model is saved every
``config.save_every`` iterations and when the run stops; a NaN or infinite
loss stops it with :class:`faceswap.errors.TrainingDivergedError`, leaving
the last checkpoint as it was; a collapse (:mod:`faceswap.train.collapse`)
goes back to the best checkpoint with a lower learning rate, and stops the
same way when there is none, after a few such returns, or in a run of
several processes. With ``--distribute`` over several processes see
:mod:`faceswap.train.distribute`: all stop together, the chief alone writes.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.errors import ClusterError, InputError, ModelError, TrainingDivergedError
from faceswap.fileio import ensure_output_dir, remove_stale_temporaries
from faceswap.model_folder import STATE_FILE, TrainingState, read_state_of_weights
from faceswap.paths import guard_outputs
from faceswap.signals import stop_requests
from faceswap.train.batches import BatchSource
from faceswap.train.collapse import LOSS_SETTINGS, MAX_ROLLBACKS, CollapseWatch, roll_back_to_best
from faceswap.train.config import TrainConfig, choose_model, resumed_config
from faceswap.train.dataset import FEW_FACES, FaceSet, check_two_sides, list_faces, load_faces
from faceswap.train.distribute import Devices, devices_for
from faceswap.train.hardware import FLOAT32, Hardware, compute_settings, precision_policy
from faceswap.train.history import append_loss
from faceswap.train.monitor import monitor_class
from faceswap.train.smoothing import BiasCorrectedEMA
from faceswap.train.validation import hold_back_sides

log = logging.getLogger(__name__)

#: The smoothed loss is compared with the target only with at least this many steps behind it.
MIN_SMOOTHING = 20


#: The coverage check (:mod:`faceswap.coverage`) is left out when more than this share of a
#: side's faces lack landmarks (they stand in as the mean face: mouth shut, facing the camera).
MAX_SHARE_WITHOUT_LANDMARKS = 0.1


def _warn_of_coverage(faces: tuple[FaceSet, FaceSet], *, mirrored: bool) -> None:
    """Log what each side's faces do not show of the other's (turns, an open mouth, closed eyes)."""
    from faceswap.coverage import coverage_warnings

    if any(len(side.landmarks) < FEW_FACES for side in faces):
        return  # the few-faces warning has said it: a range of so few faces says little
    if any(side.without_landmarks > MAX_SHARE_WITHOUT_LANDMARKS * len(side.landmarks) for side in faces):
        log.info("coverage of poses and expressions not checked: faces without landmarks")
        return
    for line in coverage_warnings(faces[0].landmarks, faces[1].landmarks, mirrored=mirrored):
        log.warning("%s", line)


def _check_sides(faces_a: Path | str, faces_b: Path | str, config: TrainConfig) -> None:
    """Refuse missing or empty faces folders, and one folder for both sides of a pair (not pre-training).

    Pre-training reads the whole tree of its one folder (many people, e.g. one subfolder a video).
    """
    list_faces(faces_a, "A", whole_tree=config.pretrain)
    list_faces(faces_b, "B", whole_tree=config.pretrain)
    if not config.pretrain:
        check_two_sides(faces_a, faces_b)


def _load_sides(
    faces_a: Path | str, faces_b: Path | str, input_size: int, config: TrainConfig
) -> tuple[FaceSet, FaceSet]:
    """Both sides' faces in memory; pre-training reads its one folder once, for both sides."""
    side_a = load_faces(
        faces_a, "A", input_size, config.augment, centering=config.centering, whole_tree=config.pretrain
    )
    if config.pretrain:
        return side_a, replace(side_a, name="B")  # the same faces: read once, split once
    return side_a, load_faces(faces_b, "B", input_size, config.augment, centering=config.centering)


@dataclass(frozen=True)
class TrainResult:
    """How a run ended.

    Attributes
    ----------
    iteration
        Iterations done in total (all runs).
    loss_a, loss_b
        Smoothed face losses at the end.
    reason
        ``"target"``, ``"iterations"``, ``"time"`` or ``"interrupted"``.
    seconds
        Training time of this run.
    faces_per_second
        Throughput of this run (both sides' faces).
    model_dir
        Where the model was saved.
    loss_history
        ``(iteration, loss_a, loss_b)`` of every step of all runs (per-step
        face losses; beyond 20,000 steps older rows are averaged in pairs).
    signal
        With ``reason`` ``"interrupted"``: the number of the signal that stopped it.
    """

    iteration: int
    loss_a: float
    loss_b: float
    reason: str
    seconds: float
    faces_per_second: float
    model_dir: Path
    loss_history: tuple[tuple[int, float, float], ...] = ()
    signal: int | None = None


class TrainingSession:
    """A model folder being trained: faces loaded, network built, ready to :meth:`run`.

    Create one with :meth:`start` (a new model) or :meth:`resume`.
    """

    def __init__(
        self,
        model_dir: Path,
        faces: tuple[FaceSet, FaceSet],
        config: TrainConfig,
        state: TrainingState,
        hardware: Hardware,
        saved_network: Any = None,
        devices: Devices | None = None,
    ) -> None:
        from faceswap.runtime import keras

        if config.tensorboard:
            from faceswap.train.preview import check_tensorboard

            check_tensorboard()
        self.model_dir = model_dir
        faces, self.held_back = hold_back_sides(faces, config.validation_every, state.input_size)
        self.faces = faces
        self.config = config
        self.state = state
        self.hardware = hardware
        #: The devices and processes of this run (several with ``--distribute``).
        self.devices = devices or devices_for(hardware.distribute)
        input_batch = self.devices.input_batch(config.batch_size)
        self.replicas = self.devices.replicas
        #: Whether this process writes the model folder (all but the other processes of a cluster).
        self.chief = self.devices.chief
        self._check_same_iteration(state.iteration)
        if self.devices.processes > 1 and config.seed is not None:  # JAX's processes must agree on weights
            self.config = config = replace(config, seed=self.devices.agreed_max(config.seed))
            state.config["seed"] = config.seed
        if self.chief and not config.pretrain:
            _warn_of_coverage(faces, mirrored=config.augment.flip > 0)
        self.compute = compute_settings(hardware)
        #: Whether this run computes in half precision (bfloat16 or float16, :attr:`compute`).
        self.mixed_precision = self.compute.mixed_precision
        self.source = BatchSource(faces, input_batch, state.input_size, config.augment, config.seed or 0)
        self._build(saved_network, keras)
        self._preview_indices = [
            np.linspace(0, len(side) - 1, min(config.preview_faces, len(side))).round().astype(int)
            for side in faces
        ]
        self.losses = tuple(
            BiasCorrectedEMA(values=(row[column] for row in state.loss_history)) for column in (1, 2)
        )
        #: Watches the smoothed loss for a collapse, over the model's whole history.
        self.collapse_watch = CollapseWatch(state.loss_history)
        self._saved_iteration = state.iteration if saved_network is not None else -1
        self._tensorboard = None

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        model_dir: Path | str,
        faces_a: Path | str,
        faces_b: Path | str,
        config: TrainConfig | None = None,
        hardware: Hardware | None = None,
    ) -> TrainingSession:
        """Prepare a new model in ``model_dir`` (which must not hold one yet).

        Raises
        ------
        InputError
            When a faces folder is missing, empty or mixed, or a setting is invalid.
        OutputError
            When ``model_dir`` already holds a model or cannot be written.
        """
        from faceswap.errors import OutputError

        config = config or TrainConfig()
        hardware = hardware or Hardware()
        devices = devices_for(hardware.distribute)  # first: a cluster forms before any computation
        model_dir = Path(model_dir)
        guard_outputs([faces_a, faces_b, config.init_from], [model_dir])
        config, model_choice = choose_model(config)
        if (model_dir / STATE_FILE).exists():
            raise OutputError(
                f"{model_dir} already holds a model; pass --resume to go on training it, "
                "or choose another --model-dir"
            )
        _check_sides(faces_a, faces_b, config)
        if config.seed is None:
            config = replace(config, seed=secrets.randbelow(2**31))
        input_size = config.check_model()
        faces = _load_sides(faces_a, faces_b, input_size, config)
        if model_choice is not None:
            log.info("%s", model_choice)
        if devices.chief:
            ensure_output_dir(model_dir)
        state = TrainingState(model=config.model, input_size=input_size, config=_stored(config, faces))
        session = cls(model_dir, faces, config, state, hardware, devices=devices)
        if config.init_from is not None:
            from faceswap.train.reuse import initialise_from

            copied = initialise_from(session.network, config.init_from, config.init_decoders)
            log.info("started from %s of %s", ", ".join(copied), config.init_from)
        return session

    @classmethod
    def resume(
        cls,
        model_dir: Path | str,
        faces_a: Path | str | None = None,
        faces_b: Path | str | None = None,
        hardware: Hardware | None = None,
        **changes: Any,
    ) -> TrainingSession:
        """Reopen a model folder to train on, exactly where it stopped.

        Parameters
        ----------
        model_dir
            The model folder.
        faces_a, faces_b
            Faces folders (default: those it was trained on).
        hardware
            How to use the machine.
        **changes
            :class:`TrainConfig` fields to change (e.g. ``learning_rate``);
            the others keep their stored values. ``model`` cannot change.

        Raises
        ------
        ModelError
            When the folder holds no model or a damaged one.
        """
        hardware = hardware or Hardware()
        devices = devices_for(hardware.distribute)  # first: a cluster forms before any computation
        model_dir = Path(model_dir)
        state = read_state_of_weights(model_dir)
        config = resumed_config(state, str(model_dir), changes)
        for key in ("faces_a", "faces_b"):
            if not isinstance(state.config.get(key, ""), str):
                raise ModelError(f"{model_dir / STATE_FILE}: config.{key} is not a folder name")
        faces_a = faces_a or state.config.get("faces_a")
        faces_b = faces_b or state.config.get("faces_b")
        if not faces_a or not faces_b:
            raise InputError(f"{model_dir}: its state does not say which faces it was trained on; name them")
        guard_outputs([faces_a, faces_b], [model_dir])
        _check_sides(faces_a, faces_b, config)
        from faceswap.train.checkpoint import load_checkpoint

        saved = load_checkpoint(model_dir, state)
        faces = _load_sides(faces_a, faces_b, state.input_size, config)
        if devices.chief:  # the chief's: on shared storage they may be in use
            remove_stale_temporaries(model_dir)
        stored, state.config = state.config, _stored(config, faces)
        session = cls(model_dir, faces, config, state, hardware, saved_network=saved, devices=devices)
        if any(stored.get(key) != state.config[key] for key in LOSS_SETTINGS):
            session.collapse_watch = CollapseWatch()  # another loss: its values lie elsewhere
        return session

    def _build(self, saved: Any, keras: Any) -> None:
        from faceswap.model import build_autoencoder
        from faceswap.swap_model import decoding_functions
        from faceswap.train.checkpoint import copy_training_state
        from faceswap.train.step import SwapTrainer, compile_network

        if saved is None:
            keras.utils.set_random_seed(self.config.seed or 0)
        with precision_policy(self.compute.policy), self.devices.scope():
            self.network = build_autoencoder(self.config.model)
            compile_network(self.network, self.config)
            if saved is not None:
                copy_training_state(saved, self.network, str(self.model_dir))
            self.trainer = SwapTrainer(self.network, self.config)
            self.trainer.compile(loss_scaling=self.compute.loss_scaling, jit_compile=self.compute.jit)
        self._decoders = decoding_functions(self.network)
        self._float32_copy = None
        if self.mixed_precision:  # saved as float32 (see faceswap.train.checkpoint), kept in host memory
            with precision_policy(FLOAT32), keras.device("cpu:0"):
                self._float32_copy = build_autoencoder(self.config.model)
                compile_network(self._float32_copy, self.config)

    # -- training ----------------------------------------------------------------------------------

    def dataset(self) -> Any:
        """The training batches from the current iteration on, distributed over the devices when several."""
        from faceswap.train.pipeline import make_dataset, training_batches

        strategy = self.devices.strategy
        if strategy is None or self.replicas == 1:  # JAX: Keras splits each process's batch over its devices
            return training_batches(self.source, self.state.iteration, pipeline=self.devices.index)
        start = self.state.iteration * len(strategy.extended.worker_devices)
        return strategy.distribute_datasets_from_function(
            lambda context: make_dataset(self.source, start, context.input_pipeline_id)
        )

    def run(
        self,
        iterations: int | None = None,
        time_limit: float | None = None,
        callbacks: Sequence[Any] = (),
    ) -> TrainResult:
        """Train until a stop condition; save and write the preview and plot at the end.

        Parameters
        ----------
        iterations
            Stop after this many more steps (``None``: no limit).
        time_limit
            Stop after this many seconds of training (``None``: no limit).
        callbacks
            Extra Keras callbacks (called after the session's own at each step).

        Raises
        ------
        TrainingDivergedError
            When a loss or weight became NaN or infinite; nothing is saved.
        """
        if iterations is not None and iterations < 1:
            raise InputError(f"iterations must be at least 1, not {iterations}")
        if time_limit is not None and not time_limit > 0:
            raise InputError(f"the time limit must be positive, not {time_limit}")
        monitor = monitor_class()(self, iterations, time_limit)
        # The final save runs under the same Ctrl-C handling: a first Ctrl-C there changes nothing.
        from faceswap.runtime import opencv_single_threaded

        with stop_requests(monitor.request_stop), opencv_single_threaded():
            with monitor.progress_bar():
                for rollback in range(MAX_ROLLBACKS + 1):
                    stop = monitor.stop_iteration
                    self._fit(2**40 if stop is None else stop - self.state.iteration, [monitor, *callbacks])
                    if monitor.collapsed is None:
                        break
                    alone = self.devices.processes == 1  # several would each have to go back alike
                    done = roll_back_to_best(self) if rollback < MAX_ROLLBACKS and alone else None
                    if done is None:
                        monitor.diverged = self.collapse_message(*monitor.collapsed)
                        break
                    log.warning("%s; %s", self.collapse_message(*monitor.collapsed, stopped=False), done)
                    monitor.collapsed = None
            if monitor.diverged:
                raise TrainingDivergedError(monitor.diverged)
            if self.chief or self.devices.collective_reads:
                self.measure_validation()  # before the save, so that state.json holds it
            self.save()
            self.write_feedback()
            if self._tensorboard is not None:
                self._tensorboard.flush()
        loss_a, loss_b = self.smoothed_losses()
        return TrainResult(
            iteration=self.state.iteration,
            loss_a=loss_a,
            loss_b=loss_b,
            reason=monitor.reason or "iterations",
            seconds=monitor.seconds,
            faces_per_second=monitor.faces_per_second,
            model_dir=self.model_dir,
            loss_history=tuple(
                (int(row[0]), float(row[1]), float(row[2])) for row in self.state.loss_history
            ),
            signal=monitor.stop_signal,
        )

    def _fit(self, steps: int, callbacks: list[Any]) -> None:
        """``steps`` training steps from the current iteration (fewer when a callback stops them)."""
        try:
            self.trainer.fit(
                self.dataset(), epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=callbacks
            )
        except self.devices.lost_contact_errors as error:
            detail = self.devices.lost_contact(error)
            if detail is None:
                raise
            raise ClusterError(self._lost_contact_message(detail)) from None

    def smoothed_losses(self) -> tuple[float, float]:
        """Bias-corrected moving average of each side's face loss (NaN before any step)."""
        return self.losses[0].value, self.losses[1].value

    def before_step(self) -> None:
        """Set the learning rate of the coming step (see :mod:`faceswap.train.schedule`)."""
        from faceswap.train.schedule import learning_rate_at

        self.network.optimizer.learning_rate.assign(learning_rate_at(self.config, self.state.iteration))

    def record(self, logs: dict[str, float], seconds: float) -> None:
        """Account for one finished step."""
        state = self.state
        state.iteration += 1
        state.elapsed += seconds
        state.loss_history = append_loss(state.loss_history, state.iteration, logs["loss_a"], logs["loss_b"])
        self.losses[0].update(float(logs["loss_a"]))
        self.losses[1].update(float(logs["loss_b"]))
        if self.config.tensorboard and self.chief:
            if self._tensorboard is None:
                from faceswap.train.preview import TensorBoardLog

                self._tensorboard = TensorBoardLog(self.model_dir)
            self._tensorboard.scalars(state.iteration, {**logs, "seconds_per_step": seconds})

    def reached_target(self) -> bool:
        """Whether the smoothed face loss of both sides is at most the target."""
        if min(average.count for average in self.losses) < MIN_SMOOTHING:
            return False
        return max(self.smoothed_losses()) <= self.config.target_loss

    def divergence_message(self, name: str, value: float) -> str:
        """What to tell the user when ``name`` (e.g. ``loss_a``) became ``value`` (NaN or infinite)."""
        where = f"{name.replace('_', ' ')} became {value} at iteration {self.state.iteration + 1}"
        return f"{where}: training diverged; {self._kept()}; try again with a lower --learning-rate"

    def collapse_message(self, lowest: float, now: float, stopped: bool = True) -> str:
        """What to tell the user when the smoothed face loss rose from ``lowest`` to ``now`` (a collapse).

        With ``stopped`` false, only what happened (the caller says what it did about it).
        """
        from faceswap.model_folder import BEST_DIR

        best = self.model_dir / BEST_DIR
        what = (
            f"at iteration {self.state.iteration + 1} the smoothed face loss is {now:.4f}, "
            f"{now / lowest:.1f} times its lowest ({lowest:.4f}): the network collapsed"
        )
        if not stopped:
            return what
        keep = (
            f"{best} holds the checkpoint of the lowest loss"
            if (best / STATE_FILE).exists()
            else self._kept()
        )
        return (
            f"{what}; {keep} "
            "(convert it, or resume it with its own --model-dir); to avoid it, train with a lower "
            "--learning-rate, --clip-norm 1 or a larger --batch-size"
        )

    def _kept(self) -> str:
        """What is kept of the model when a run stops on an error."""
        if self._saved_iteration < 0:
            return f"no checkpoint was saved yet in {self.model_dir}"
        return f"the last good checkpoint (iteration {self._saved_iteration}) in {self.model_dir} is kept"

    def _lost_contact_message(self, detail: str) -> str:
        """What to tell the user when another process of a distributed run died or cannot be reached."""
        return (
            f"process {self.devices.index} of {self.devices.processes} lost contact with the others at "
            f"iteration {self.state.iteration + 1} ({detail}); training stopped; {self._kept()}; "
            "start every process again with --resume"
        )

    def _check_same_iteration(self, iteration: int) -> None:
        """Refuse to train when the processes of a run would start from different checkpoints.

        Raises
        ------
        ModelError
            When another process resumes at another iteration (a stale copy of the model folder).
        """
        highest, lowest = self.devices.agreed_max(iteration), -self.devices.agreed_max(-iteration)
        if highest != lowest:
            raise ModelError(
                f"{self.model_dir}: this process resumes at iteration {iteration}, but the processes of "
                f"the run resume between iterations {lowest} and {highest}: give every process the same "
                "model folder (shared, or copied from the chief's)"
            )

    # -- output ------------------------------------------------------------------------------------

    def save(self) -> None:
        """Save a checkpoint (unless this iteration is saved), and back it up as the best if it is."""
        from faceswap.train.checkpoint import backup_best, copy_training_state, save_checkpoint

        if self._saved_iteration == self.state.iteration:
            return
        if not (self.chief or self.devices.collective_reads):  # the chief writes for all
            self._saved_iteration = self.state.iteration
            return
        loss = max(self.smoothed_losses()) if all(average.count for average in self.losses) else math.inf
        better = math.isfinite(loss) and (self.state.best_loss is None or loss < self.state.best_loss)
        if better:
            self.state.best_loss = loss
        network = self.network
        if self._float32_copy is not None:
            copy_training_state(self.network, self._float32_copy, str(self.model_dir))
            network = self._float32_copy
        if self.chief:
            save_checkpoint(self.model_dir, network, self.state)
            if better:
                backup_best(self.model_dir)
        else:  # a JAX process takes part in the chief's reads: its own copy goes to a folder removed at once
            import tempfile

            with tempfile.TemporaryDirectory() as scratch:
                save_checkpoint(Path(scratch), network, self.state)
        self._saved_iteration = self.state.iteration

    def preview(self) -> np.ndarray:
        """The preview image: for each side, original, reconstruction and swap of fixed faces."""
        from faceswap.train.preview import render_swaps

        originals = [self.source.plain(side, self._preview_indices[side])["face"] for side in (0, 1)]
        return render_swaps(self._decoders, originals)

    def measure_validation(self) -> tuple[float | None, float | None]:
        """Record the held-back faces' reconstruction error (MAE inside the hull) at this iteration.

        Returns ``(mae_a, mae_b)``, None for a side without held-back faces;
        nothing is recorded when neither side has any, or twice for one iteration.
        """
        from faceswap.train.validation import held_back_errors

        if all(part is None for part in self.held_back):
            return None, None
        history = self.state.validation_history
        if not history or history[-1][0] != self.state.iteration:
            history.append([self.state.iteration, *held_back_errors(self._decoders, self.held_back)])
        return history[-1][1], history[-1][2]

    def write_feedback(self) -> None:
        """Write ``preview.png`` (and the timelapse frame) and ``loss.png`` (the chief alone writes)."""
        if not (self.chief or self.devices.collective_reads):
            return
        from faceswap.train.preview import LOSS_PLOT_FILE, plot_loss, write_preview

        preview = self.preview()
        self.measure_validation()
        if not self.chief:
            return
        write_preview(self.model_dir, preview, self.state.iteration, self.config.timelapse)
        loss_a, loss_b = self.smoothed_losses()
        plot_loss(
            self.model_dir / LOSS_PLOT_FILE,
            self.state.loss_history,
            validation=self.state.validation_history,
            target=self.config.target_loss,
            title=f"{self.config.model} · iteration {self.state.iteration} · "
            f"loss A {loss_a:.4f}, B {loss_b:.4f}",
        )


def _stored(config: TrainConfig, faces: tuple[FaceSet, FaceSet]) -> dict[str, Any]:
    """What ``state.json`` keeps of the run's settings: the recipe and the faces folders."""
    return {
        **config.to_json(),
        "faces_a": str(faces[0].folder.resolve()),
        "faces_b": str(faces[1].folder.resolve()),
    }
