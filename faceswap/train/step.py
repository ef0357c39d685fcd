"""One training step, as a Keras model whose ``fit()`` trains a faceswap network on any backend.

:class:`SwapTrainer` wraps the network that is saved (the functional
``faceswap_<name>`` model of :mod:`faceswap.model`) and overrides
``compute_loss``: both sides' warped faces go through the shared encoder and
their own decoder (``call``), and each side's face and mask losses are summed.
Keras' own ``train_step`` of the backend (TensorFlow's ``GradientTape``, JAX's
stateless ``value_and_grad``, PyTorch's ``backward``) takes the gradients and
Adam updates everything once. Written in ``keras.ops``, the step is the same
code on every backend; using ``fit()`` gives, without code of ours:
``tf.distribute`` strategies on TensorFlow (the step runs once per replica and
Keras sums the gradients), mixed precision (a ``LossScaleOptimizer`` scales the
float16 loss and skips steps whose gradients overflow), jit compilation (XLA
for TensorFlow and JAX) and callbacks (see :mod:`faceswap.train.monitor`).

The optimizer belongs to the *network* (``network.compile``) and is shared
with the trainer, so ``network.save()`` writes Adam's state into
``model.keras`` and ``--resume`` gets it back. The trainer itself is never
saved.
"""

from __future__ import annotations

from typing import Any

from faceswap.model import SIDES
from faceswap.runtime import BACKEND, keras
from faceswap.train.config import TrainConfig
from faceswap.train.loss import face_loss, mask_loss, pixel_weights, weighted_detail_contrast

ops = keras.ops
#: What each step logs (per side): the face loss (what ``--target-loss`` compares with) and the mask loss.
STEP_LOGS = tuple(f"{kind}_{side}" for side in SIDES for kind in ("loss", "mask"))


def make_optimizer(config: TrainConfig) -> Any:
    """Adam with the recipe's learning rate, betas and gradient clipping (``global_clipnorm``).

    The learning rate is a variable that the session sets before every step
    (see :mod:`faceswap.train.schedule`); this is its value before the first.
    """
    from faceswap.train.schedule import learning_rate_at

    return keras.optimizers.Adam(
        learning_rate=learning_rate_at(config, 0),
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        global_clipnorm=config.clip_norm or None,
        name="adam",
    )


def compile_network(network: Any, config: TrainConfig) -> None:
    """Give ``network`` its Adam optimizer (saved with it) and create the optimizer's variables.

    Always plain Adam, even under mixed precision (the trainer wraps it in a
    ``LossScaleOptimizer``): a saved model's optimizer then loads the same way
    whatever precision policy the loading process uses.
    """
    network.compile(optimizer=make_optimizer(config), auto_scale_loss=False, jit_compile=False)
    network.optimizer.build(network.trainable_variables)


def _unit_float(images):
    return ops.cast(images, "float32") * (1.0 / 255.0)


def _replicas_in_sync() -> int:
    """Devices the step runs on at once (several only under a ``tf.distribute`` strategy)."""
    if BACKEND != "tensorflow":
        return 1
    from faceswap.runtime import tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _across_workers() -> bool:
    """Whether the step runs under ``MultiWorkerMirroredStrategy`` with several workers (TensorFlow)."""
    if BACKEND != "tensorflow":
        return False
    from faceswap.runtime import tf

    strategy = tf.distribute.get_strategy()
    several = strategy.num_replicas_in_sync > 1
    return several and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


class LastValue(keras.metrics.Metric):
    """A metric that reports the value of the latest step (Keras' own average over the epoch)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.latest = self.add_variable(shape=(), initializer="zeros", aggregation="mean", name="latest")

    def update_state(self, value: Any) -> None:  # noqa: D102 - Keras API
        self.latest.assign(ops.cast(value, self.dtype))

    def result(self) -> Any:  # noqa: D102 - Keras API
        return ops.convert_to_tensor(self.latest)


class SwapTrainer(keras.Model):
    """Trains ``network`` on batches of :data:`faceswap.train.batches.BATCH_KEYS` through ``fit()``.

    Parameters
    ----------
    network
        A compiled network from :func:`faceswap.model.build_autoencoder`
        (see :func:`compile_network`); its optimizer does the updates.
    config
        Loss settings.

    Each step logs :data:`STEP_LOGS`: ``loss_a`` and ``loss_b`` (face losses,
    what ``--target-loss`` compares with), ``mask_a`` and ``mask_b``, and
    Keras' ``loss`` (their weighted sum, averaged over the run).
    """

    def __init__(self, network: Any, config: TrainConfig, **kwargs: Any) -> None:
        super().__init__(name="swap_trainer", **kwargs)
        self.network = network
        self.face_loss = face_loss(config.loss)
        self.mask_weight = float(config.mask_weight)
        self.detail_weight = float(config.detail_weight)
        self.background_weight = float(config.background_weight)
        self.eye_mouth_weight = float(config.eye_mouth_weight)
        self.step_logs = [LastValue(name) for name in STEP_LOGS]
        self.built = True  # the network is built; fit() need not trace call() to build it

    def compile(self, *, loss_scaling: bool = False, jit_compile: bool = False) -> None:  # type: ignore[override]
        """Compile with the network's optimizer (no Keras loss: :meth:`compute_loss` computes it).

        With ``loss_scaling`` (float16 compute) the optimizer is wrapped in a
        ``LossScaleOptimizer``, which scales the loss so float16 gradients do
        not underflow, and skips (and lowers the scale after) steps whose
        gradients overflow.
        """
        optimizer = self.network.optimizer
        if loss_scaling:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
        super().compile(optimizer=optimizer, auto_scale_loss=False, jit_compile=jit_compile)
        optimizer.build(self.network.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None) -> None:
        """Skip Keras' shape probe of the first batch (TensorFlow trainer only): all is built already.

        Under a ``tf.distribute`` strategy Keras all-reduces a first batch to
        learn the input shapes; ``MultiWorkerMirroredStrategy`` cannot reduce a
        dict of tensors (``ValueError``), and the network, its optimizer and
        the step's metrics are built before ``fit()`` (see :meth:`compile`).
        """

    def train_step(self, *args):  # noqa: D102 - Keras API
        logs = super().train_step(*args)
        if _across_workers():  # Keras averages each log over the workers along axis 0: give it one
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def call(self, inputs, training=False):  # noqa: D102 - Keras API
        return self.network(
            [_unit_float(inputs["warped_a"]), _unit_float(inputs["warped_b"])], training=training
        )

    def compute_losses(self, data, outputs) -> tuple[Any, dict[str, Any]]:
        """Total loss and the per-side logs for one batch and the network's outputs."""
        total = 0.0
        logs = {}
        for number, side in enumerate(SIDES):
            face, mask = outputs[2 * number], outputs[2 * number + 1]
            target = _unit_float(data[f"target_{side}"])
            masks = _unit_float(data[f"mask_{side}"])
            weight = pixel_weights(masks, self.background_weight, self.eye_mouth_weight)
            face = ops.cast(face, "float32")
            face_value = self.face_loss(target, face, weight)
            mask_value = mask_loss(masks[..., :1], ops.cast(mask, "float32"))
            total += face_value + self.mask_weight * mask_value
            if self.detail_weight:
                total += self.detail_weight * weighted_detail_contrast(target, face, weight)
            logs[f"loss_{side}"] = face_value
            logs[f"mask_{side}"] = mask_value
        return total, logs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):  # noqa: D102 - Keras API
        total, logs = self.compute_losses(x, y_pred)
        for metric in self.step_logs:
            metric.update_state(logs[metric.name])
        # Each replica's loss is its local mean; Keras sums the gradients over replicas.
        return total / _replicas_in_sync()
