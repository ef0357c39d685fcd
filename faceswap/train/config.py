"""The training recipe: every option that shapes the model's learning, stored in ``state.json``.

A :class:`TrainConfig` is saved with each checkpoint (``state.json``,
``config``) and read back by ``--resume``, so a resumed run learns exactly as
the first one did unless an option is given again. Options about the machine
or the session (iterations, time limit, mixed precision, XLA, devices) are not
part of it: they belong to each run.

Nothing here imports TensorFlow: options are checked before the slow start.
The model name is checked by :meth:`TrainConfig.check_model`, which does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from faceswap.align import CENTERINGS, DEFAULT_CENTERING
from faceswap.augment import AugmentConfig
from faceswap.errors import InputError

if TYPE_CHECKING:
    from faceswap.model_folder import TrainingState

#: Face losses (see :mod:`faceswap.train.loss`).
LOSSES = ("mae", "ssim", "mae+dssim", "ms-ssim")
#: Learning-rate schedules after the warm-up (see :mod:`faceswap.train.schedule`).
SCHEDULES = ("constant", "cosine")
#: Which decoders ``--init-from`` copies (each from the source's decoder of the same side).
INIT_DECODERS = ("none", "a", "b", "a,b")


@dataclass(frozen=True)
class TrainConfig:
    """How a model learns. The defaults are the classic recipe.

    Attributes
    ----------
    model
        Network name (a key of :data:`faceswap.model.MODELS`); ``None``: chosen
        when training starts, by the hardware (see
        :func:`faceswap.model.default_model`), or the ``init_from`` model's.
    batch_size
        Faces per side per step (across all devices).
    learning_rate, beta_1, beta_2
        Adam's settings (``learning_rate``: the peak of the schedule).
    lr_schedule, warmup, decay_iterations
        The learning rate rises linearly from ``learning_rate / warmup`` to
        ``learning_rate`` over the first ``warmup`` iterations, then stays
        (``"constant"``) or falls along a half cosine to a tenth of it over
        ``decay_iterations`` more and stays there (``"cosine"``).
    clip_norm
        Rescale each step's gradients so that their global norm is at most
        this (0: no clipping).
    loss
        Face loss, one of :data:`LOSSES` (see :mod:`faceswap.train.loss`).
    mask_weight
        Weight of the mask loss against the face loss.
    detail_weight
        Weight of the detail loss (:func:`faceswap.train.loss.weighted_detail_contrast`)
        added to the face loss (0: off). Not part of ``loss_a``/``loss_b``, so
        ``target_loss`` means the same with it or without.
    background_weight
        Loss weight of pixels outside the face hull (inside: 1).
    eye_mouth_weight
        Extra loss weight on the eyes and mouth (0: none; 2, the default, makes
        them count three times, as faceswap's eye and DeepFaceLab's eyes-mouth
        priority do: measured ahead of 0 on identity, detail, head motion and
        jitter, see the README's "What to expect").
    target_loss
        Stop when the smoothed face loss of both sides is at most this.
    save_every, preview_every
        Iterations between checkpoints, and between previews and loss plots.
    preview_faces
        Faces per side in ``preview.png``.
    validation_every
        Hold back one run of 5 frames in every this many of each side with
        200 faces or more, and plot their reconstruction error in
        ``loss.png`` beside the training loss (0: train on every face;
        :func:`faceswap.train.validation.hold_back`).
    augment
        Augmentation strengths.
    centering
        The square the model sees and paints (:data:`faceswap.align.CENTERINGS`): ``face``
        (with the forehead and chin) or ``legacy`` (brows to lower lip). Fixed when a model
        starts: resuming keeps the stored one, ``legacy`` for folders saved before the
        setting existed (:attr:`faceswap.model_folder.TrainingState.centering`).
    seed
        Fixes the weight initialisation and every batch (``None``: a random
        seed, chosen when training starts and stored).
    init_from, init_decoders
        A model folder whose encoder (and the decoders named by
        ``init_decoders``, one of :data:`INIT_DECODERS`) a new model starts
        from; kept for the record (resuming never reloads it).
    freeze_encoder
        The encoder does not change in the first this many iterations; then it
        trains with Adam moments of its own, its steps grown over ``warmup``
        (:class:`faceswap.train.reuse.FrozenEncoder`).
    pretrain
        Both sides train on one folder of many people's faces (``--pretrain``):
        the one case where faces A and B may be the same folder.
    tensorboard, timelapse
        Write TensorBoard scalars; keep every preview in ``timelapse/``.
    """

    model: str | None = None
    batch_size: int = 16
    learning_rate: float = 3e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    lr_schedule: str = "constant"
    warmup: int = 100
    decay_iterations: int = 20000
    clip_norm: float = 0.0
    loss: str = "mae+dssim"
    mask_weight: float = 0.1
    detail_weight: float = 0.0
    background_weight: float = 0.2
    eye_mouth_weight: float = 2.0
    target_loss: float = 0.02
    save_every: int = 250
    preview_every: int = 100
    preview_faces: int = 4
    validation_every: int = 20
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    centering: str = DEFAULT_CENTERING
    seed: int | None = None
    init_from: str | None = None
    init_decoders: str = "a,b"
    freeze_encoder: int = 0
    pretrain: bool = False

    tensorboard: bool = False
    timelapse: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):  # changes from the default augmentation
            object.__setattr__(self, "augment", _augment(AugmentConfig(), self.augment))
        if not isinstance(self.augment, AugmentConfig):
            raise InputError(f"augment must be an AugmentConfig, not {self.augment!r}")
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise InputError(f"model must be a name, not {self.model!r}")
        if not isinstance(self.pretrain, bool):
            raise InputError(f"pretrain must be true or false, not {self.pretrain!r}")
        if self.centering not in CENTERINGS:
            raise InputError(f"unknown centering {self.centering!r} (choose from {', '.join(CENTERINGS)})")
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        if self.lr_schedule not in SCHEDULES:
            raise InputError(f"unknown lr-schedule {self.lr_schedule!r} (choose from {', '.join(SCHEDULES)})")
        if self.init_decoders not in INIT_DECODERS:
            raise InputError(
                f"init-decoders must be one of {', '.join(INIT_DECODERS)}, not {self.init_decoders!r}"
            )
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise InputError(f"init-from must be a model folder, not {self.init_from!r}")
        for name in ("warmup", "freeze_encoder"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name.replace('_', '-')} must be a whole number >= 0, not {value!r}")
        if (
            isinstance(self.validation_every, bool)
            or not isinstance(self.validation_every, int)
            or self.validation_every < 0
            or self.validation_every == 1
        ):
            raise InputError(
                "validation-every must be 0 (off) or a whole number of at least 2, "
                f"not {self.validation_every!r}"
            )
        for name in ("batch_size", "save_every", "preview_every", "preview_faces", "decay_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f"{name.replace('_', '-')} must be a whole number of at least 1, not {value!r}"
                )
        if not 0 < self.learning_rate < 1 or not math.isfinite(self.learning_rate):
            raise InputError(f"learning-rate must be between 0 and 1, not {self.learning_rate!r}")
        for name in ("beta_1", "beta_2"):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(f"{name.replace('_', '-')} must be in [0, 1), not {getattr(self, name)!r}")
        for name in ("mask_weight", "detail_weight", "eye_mouth_weight", "target_loss", "clip_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name.replace('_', '-')} must be a number >= 0, not {value!r}")
        if not 0 <= self.background_weight <= 1:
            raise InputError(f"background-weight must be in [0, 1], not {self.background_weight!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63
        ):
            raise InputError(f"seed must be a whole number >= 0, not {self.seed!r}")

    def check_model(self) -> int:
        """Check the model name (this imports TensorFlow); return the model's input size.

        Raises
        ------
        InputError
            When no model has that name.
        """
        from faceswap.model import MODELS

        if self.model is None:
            raise InputError("no model chosen yet (see faceswap.model.default_model)")
        if self.model not in MODELS:
            raise InputError(f"unknown model {self.model!r} (choose from {', '.join(MODELS)})")
        return MODELS[self.model].input_size

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``augment`` nested)."""
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Rebuild a config stored by :meth:`to_json`, then apply ``overrides``.

        Unknown keys (from a newer version) are ignored; missing ones take the
        defaults. An ``augment`` override may be a dict: it changes only the
        fields it names.

        Raises
        ------
        InputError
            When a stored or overriding value is invalid.
        """
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in document.items() if key in known}
        if "model" in document and "validation_every" not in document:
            # Stored before the setting existed: that model trained on every face, and still does.
            values["validation_every"] = 0
        if "model" in document and "eye_mouth_weight" not in document:
            values["eye_mouth_weight"] = 0.0  # likewise: stored before the weight existed, it trained without
        stored = values.pop("augment", None)
        augment = AugmentConfig()
        if isinstance(stored, dict):
            names = {item.name for item in fields(AugmentConfig)}
            kept = {key: value for key, value in stored.items() if key in names}
            # Stored before warp to landmarks became the default: that model trained with the random warp.
            kept.setdefault("to_landmarks", False)
            augment = _augment(augment, kept)
        changes = overrides.pop("augment", None)
        if isinstance(changes, dict):
            augment = _augment(augment, changes)
        elif changes is not None:
            augment = changes
        try:
            return replace(cls(**values, augment=augment), **overrides)
        except TypeError as error:
            raise InputError(f"invalid training settings: {error}") from None


def _augment(base: AugmentConfig, changes: dict[str, Any]) -> AugmentConfig:
    """``base`` with ``changes``; an invalid value is an :class:`InputError`."""
    try:
        return replace(base, **changes)
    except (TypeError, ValueError) as error:
        raise InputError(f"invalid augmentation setting: {error}") from None


def choose_model(config: TrainConfig) -> tuple[TrainConfig, str | None]:
    """``config`` with its model chosen, when not given: the ``--init-from`` model's, or by the hardware.

    Returns the config and the line that says which and why (``None`` when
    ``--model`` was given), for the caller to log once the inputs are checked,
    so that a refused run says only why. Raises :class:`InputError` when
    ``--init-from`` holds another network.
    """
    if config.init_from is not None:
        from faceswap.train.reuse import source_state

        source = source_state(config.init_from, config.model)
        if config.model is None:
            why = f"no --model given: the {source.model!r} model of --init-from {config.init_from}"
            return replace(config, model=source.model), why
        return config, None
    if config.model is not None:
        return config, None
    from faceswap.model import default_model
    from faceswap.runtime import gpus

    model, why = default_model(len(gpus()))
    return replace(config, model=model), f"no --model given: {why}"


def resumed_config(state: TrainingState, where: str, changes: dict[str, Any]) -> TrainConfig:
    """The recipe of a resumed run: the stored one with ``changes`` (:class:`TrainConfig` fields) applied.

    ``model`` and ``centering`` may be given only as stored (``None``: not given).

    Raises
    ------
    InputError
        When ``changes`` asks for another model or centering, or holds an invalid value.
    """
    changes = dict(changes)
    if changes.get("model") is None:  # not given: the stored one
        changes.pop("model", None)
    if changes.get("model", state.model) != state.model:
        raise InputError(f"{where} holds a {state.model!r} model; it cannot resume as {changes['model']!r}")
    changes.pop("model", None)
    if changes.get("centering", state.centering) != state.centering:
        raise InputError(
            f"{where} was trained with {state.centering} centering; "
            f"it cannot resume with --centering {changes['centering']}"
        )
    changes["centering"] = state.centering  # a folder from before the setting: legacy
    config = TrainConfig.from_json(state.config, **changes)
    return config if config.model == state.model else replace(config, model=state.model)
