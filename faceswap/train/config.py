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
from typing import Any

from faceswap.align import CENTERINGS, DEFAULT_CENTERING
from faceswap.augment import AugmentConfig
from faceswap.errors import InputError

#: Face losses (see :mod:`faceswap.train.loss`).
LOSSES = ("mae", "ssim")


@dataclass(frozen=True)
class TrainConfig:
    """How a model learns. The defaults are the classic recipe.

    Attributes
    ----------
    model
        Network name (a key of :data:`faceswap.model.MODELS`).
    batch_size
        Faces per side per step (across all devices).
    learning_rate, beta_1, beta_2
        Adam's settings.
    loss
        Face loss, ``"mae"`` or ``"ssim"`` (see :mod:`faceswap.train.loss`).
    mask_weight
        Weight of the mask loss against the face loss.
    background_weight
        Loss weight of pixels outside the face hull (inside: 1).
    eye_mouth_weight
        Extra loss weight on the eyes and mouth (0: none).
    target_loss
        Stop when the smoothed face loss of both sides is at most this.
    save_every, preview_every
        Iterations between checkpoints, and between previews and loss plots.
    preview_faces
        Faces per side in ``preview.png``.
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
    tensorboard, timelapse
        Write TensorBoard scalars; keep every preview in ``timelapse/``.
    """

    model: str = "original"
    batch_size: int = 16
    learning_rate: float = 5e-5
    beta_1: float = 0.5
    beta_2: float = 0.999
    loss: str = "mae"
    mask_weight: float = 0.1
    background_weight: float = 0.2
    eye_mouth_weight: float = 0.0
    target_loss: float = 0.02
    save_every: int = 250
    preview_every: int = 100
    preview_faces: int = 4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    centering: str = DEFAULT_CENTERING
    seed: int | None = None

    tensorboard: bool = False
    timelapse: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):  # changes from the default augmentation
            object.__setattr__(self, "augment", _augment(AugmentConfig(), self.augment))
        if not isinstance(self.augment, AugmentConfig):
            raise InputError(f"augment must be an AugmentConfig, not {self.augment!r}")
        if not isinstance(self.model, str) or not self.model:
            raise InputError(f"model must be a name, not {self.model!r}")
        if self.centering not in CENTERINGS:
            raise InputError(f"unknown centering {self.centering!r} (choose from {', '.join(CENTERINGS)})")
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        for name in ("batch_size", "save_every", "preview_every", "preview_faces"):
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
        for name in ("mask_weight", "eye_mouth_weight", "target_loss"):
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
        stored = values.pop("augment", None)
        augment = AugmentConfig()
        if isinstance(stored, dict):
            names = {item.name for item in fields(AugmentConfig)}
            augment = _augment(augment, {key: value for key, value in stored.items() if key in names})
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
