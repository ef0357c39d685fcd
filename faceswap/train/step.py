"""One training step, as a Keras model whose ``fit()`` trains a faceswap network.

:class:`SwapTrainer` wraps the network that is saved (the functional
``faceswap_<name>`` model of :mod:`faceswap.model`) and overrides
``train_step``: both sides' warped faces go through the shared encoder and
their own decoder, each side's face and mask losses are summed, and Adam
updates everything once. Using ``fit()`` gives, without code of ours:
``tf.distribute`` strategies (the step runs once per replica and Keras sums
the gradients), mixed precision (a ``LossScaleOptimizer`` scales the loss and
skips steps whose gradients overflow), XLA compilation (``jit_compile``) and
callbacks (see :mod:`faceswap.train.monitor`).

The optimizer belongs to the *network* (``network.compile``) and is shared
with the trainer, so ``network.save()`` writes Adam's state into
``model.keras`` and ``--resume`` gets it back. The trainer itself is never
saved.
"""

from __future__ import annotations

from typing import Any

from faceswap.model import SIDES
from faceswap.runtime import keras, tf
from faceswap.train.config import TrainConfig
from faceswap.train.loss import face_loss, mask_loss, pixel_weights


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
    return tf.cast(images, tf.float32) * (1.0 / 255.0)


class SwapTrainer(keras.Model):
    """Trains ``network`` on batches of :data:`faceswap.train.batches.BATCH_KEYS` through ``fit()``.

    Parameters
    ----------
    network
        A compiled network from :func:`faceswap.model.build_autoencoder`
        (see :func:`compile_network`); its optimizer does the updates.
    config
        Loss settings.

    Each step returns ``loss_a`` and ``loss_b`` (face losses, what
    ``--target-loss`` compares with) and ``mask_a`` and ``mask_b``.
    """

    def __init__(self, network: Any, config: TrainConfig, **kwargs: Any) -> None:
        super().__init__(name="swap_trainer", **kwargs)
        self.network = network
        self.face_loss = face_loss(config.loss)
        self.mask_weight = float(config.mask_weight)
        self.background_weight = float(config.background_weight)
        self.eye_mouth_weight = float(config.eye_mouth_weight)
        self.built = True  # the network is built; fit() need not trace call() to build it

    def compile(self, *, mixed_precision: bool = False, jit_compile: bool = False) -> None:  # type: ignore[override]
        """Compile with the network's optimizer (no Keras loss: ``train_step`` computes it).

        Under mixed precision the optimizer is wrapped in a
        ``LossScaleOptimizer``, which scales the loss so float16 gradients do
        not underflow, and skips (and lowers the scale after) steps whose
        gradients overflow.
        """
        optimizer = self.network.optimizer
        if mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
        super().compile(optimizer=optimizer, auto_scale_loss=False, jit_compile=jit_compile)
        optimizer.build(self.network.trainable_variables)

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
            face_value = self.face_loss(target, tf.cast(face, tf.float32), weight)
            mask_value = mask_loss(masks[..., :1], tf.cast(mask, tf.float32))
            total += face_value + self.mask_weight * mask_value
            logs[f"loss_{side}"] = face_value
            logs[f"mask_{side}"] = mask_value
        return total, logs

    def train_step(self, data):  # noqa: D102 - Keras API
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.network.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self(data, training=True)
            total, logs = self.compute_losses(data, outputs)
            # Each replica's loss is its local mean; gradients are summed over replicas.
            scaled = self.optimizer.scale_loss(total / replicas)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        return logs
