"""A trained network used for swapping: encode with the shared encoder, decode with one side's decoder.

Convert loads one with :func:`faceswap.model_folder.load_swap_model`; training
uses :func:`decoding_functions` for its preview.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from faceswap.model import ENCODER, SIDES, side_decoder

if TYPE_CHECKING:
    from faceswap.model_folder import TrainingState


def decoding_functions(network: Any) -> dict[str, Callable[[np.ndarray], Any]]:
    """Compiled ``faces → (face, mask)`` through the encoder and each side's decoder, by side.

    ``network`` is a network of :func:`faceswap.model.build_autoencoder`. The
    functions take float faces in ``[0, 1]``, ``(n, s, s, 3)`` at the model's
    input size, and return tensors of faces ``(n, s, s, 3)`` and masks
    ``(n, s, s, 1)`` in ``[0, 1]``, in inference mode.
    """
    from faceswap.runtime import BACKEND, keras

    encoder = network.get_layer(ENCODER)
    size = encoder.input_shape[1]
    functions = {}
    for side in SIDES:
        decoder = side_decoder(network, side)
        face = keras.Input((size, size, 3))
        graph = keras.Model(face, decoder(encoder(face)))
        if BACKEND == "tensorflow":
            from faceswap.runtime import tf

            functions[side] = tf.function(
                lambda x, graph=graph: graph(x, training=False), reduce_retracing=True, autograph=False
            )
        else:  # Keras compiles it where the backend can (jax.jit), once per batch shape
            functions[side] = graph.predict_on_batch
    return functions


class SwapModel:
    """A trained model ready for conversion: encode with the shared encoder, decode with one side.

    Use :func:`faceswap.model_folder.load_swap_model` to get one.
    """

    def __init__(self, network: Any, state: TrainingState) -> None:
        self.state = state
        self.name = state.model
        self.input_size = state.input_size
        self.centering = state.centering
        self._predict = decoding_functions(network)

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        """Decode aligned faces with the decoder of side ``decoder`` (``"a"`` or ``"b"``).

        Parameters
        ----------
        faces
            ``uint8`` RGB, shape ``(n, input_size, input_size, 3)``: the face
            region of each aligned face (``padding=0``).

        Returns
        -------
        tuple of numpy.ndarray
            Faces ``(n, s, s, 3)`` and masks ``(n, s, s, 1)``, float32 in ``[0, 1]``.
        """
        if faces.ndim != 4 or faces.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"expected faces of shape (n, {self.input_size}, {self.input_size}, 3)")
        batch = faces.astype(np.float32) / 255.0
        face, mask = self._predict[decoder](batch)
        return np.asarray(face), np.asarray(mask)
