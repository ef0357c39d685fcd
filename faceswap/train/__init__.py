"""``faceswap train``: teach one shared encoder and two decoders the faces of A and B.

From Python, one call (see :func:`train` for every option)::

    from faceswap.train import AugmentConfig, TrainConfig, train

    config = TrainConfig(model="lite", batch_size=8, augment=AugmentConfig(colour=0.3))
    result = train("faces/alice", "faces/bob", "models/alice-bob", config, time_limit=600)
    print(result.reason, result.iteration, result.loss_a, result.loss_b, len(result.loss_history))

The package, by concern:

``config``      :class:`TrainConfig`, the recipe stored with the model, and choosing the model
``dataset``     the faces folders, read, checked and stored small in memory
``batches``     deterministic augmented batches with their landmark masks
``pipeline``    the input pipeline that makes batches while the step trains (``tf.data``)
``loss``        face loss (MAE or SSIM) weighted by the masks, and the mask loss
``step``        the Keras model whose ``train_step`` does one step for both sides
``hardware``    how a run uses the machine, precision and jit: :class:`Hardware`
``distribute``  several devices, processes or machines (``--distribute``), per backend
``checkpoint``  saving and restoring weights with the optimizer state; the best backup
``history``     the loss history kept in ``state.json``
``monitor``     the run's Keras callback: bookkeeping, stop conditions, signals, the progress bar
``preview``     ``preview.png``, ``loss.png``, TensorBoard scalars
``session``     :class:`TrainingSession`: a whole run, started or resumed
``api``         :func:`train`: start or resume and run a session in one call

Augmentation itself lives in :mod:`faceswap.augment`, the mask polygons in
:mod:`faceswap.mask_geometry`, the networks in :mod:`faceswap.model`, the folder
layout in :mod:`faceswap.model_folder`, the trained network used for swaps in
:mod:`faceswap.swap_model`.
Importing this package does not import TensorFlow.
"""

from faceswap.augment import AugmentConfig
from faceswap.train.api import train
from faceswap.train.config import TrainConfig
from faceswap.train.hardware import Hardware
from faceswap.train.session import TrainingSession, TrainResult

__all__ = ["AugmentConfig", "Hardware", "TrainConfig", "TrainResult", "TrainingSession", "train"]
