"""The networks: a shared encoder and a decoder per identity (or one for both), upscaling with PixelShuffler.

The classic deepfakes autoencoder. The encoder squeezes an aligned face into a
code that holds what all faces share (pose, expression, lighting); decoder A
learns to paint identity A from that code, decoder B identity B. Swapping is
decoding A's code with B's decoder. Each decoder also predicts a mask (where
the face is), used to blend the swapped face into the frame.

Models (``--model``):

``original``
    64x64 input. Encoder Conv2D 128, 256, 512, 1024 (kernel 5, stride 2,
    LeakyReLU 0.1), Flatten, Dense 1024, Dense 4·4·1024, Reshape, Upscale 512.
    Decoder Upscale 256, 128, 64, then Conv2D(3, 5, sigmoid) for the face and
    Conv2D(1, 5, sigmoid) for the mask. 82,062,470 parameters without the
    mask heads (encoder 69.7 M, each decoder 6.2 M).
``lite``
    The same with every width halved (encoder, code and decoders): about a
    quarter of the arithmetic, for CPU-only users, the demo and tests.
``original128``
    128x128 input: one more stride-2 convolution in the encoder and one more
    upscale in each decoder.
``residual128``
    128x128 input and output with a light encoder (Conv2D 32 to 512, Dense
    512) and narrow decoders (Upscale 128, 64, 32, 16) whose every upscale is
    followed by a residual block (two 3x3 convolutions added back to their
    input, as in faceswap's dfaker and DeepFaceLab's SAEHD): four times the
    pixels of ``lite`` for about twice its arithmetic, so it trains on a CPU.
``liae``
    ``lite``'s widths laid out as DeepFaceLab's LIAE: *one* decoder paints
    both people. The encoder (convolutions only) feeds two dense codes,
    ``inter_both`` (trained on both sides' faces) and ``inter_a`` (A's own);
    A is painted from ``inter_a`` beside ``inter_both``, B from
    ``inter_both`` twice. Swapping A to B feeds A's face down B's path: the
    decoder that paints B has painted A's poses and mouths too, where two
    separate decoders each paint only their own person's (the swap B to A,
    through ``inter_a``, is the weaker way). About 0.8 times ``lite``'s steps.

The sub-models of a network are listed by :func:`parts`; the path from the
encoder's code to one side's face and mask is :func:`side_decoder`.

All models take RGB faces scaled to ``[0, 1]`` (the face region of an aligned
crop, ``padding=0``; see :mod:`faceswap.align`) and return faces and masks in
``[0, 1]``. The output convolutions stay ``float32`` under mixed precision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from faceswap.runtime import keras

layers = keras.layers

ENCODER = "encoder"
SIDES = ("a", "b")


def decoder_name(side: str) -> str:
    """Layer name of the decoder of ``side`` (``"a"`` or ``"b"``)."""
    return f"decoder_{side}"


@keras.saving.register_keras_serializable(package="faceswap")
class PixelShuffler(keras.layers.Layer):
    """Depth-to-space upscaling (sub-pixel convolution, Shi et al. 2016).

    Moves blocks of ``size**2`` channels into ``size x size`` spatial blocks:
    ``(n, h, w, c·size²)`` becomes ``(n, h·size, w·size, c)``. Channels-last,
    with the channel order of ``tf.nn.depth_to_space``: output pixel
    ``(y·size + i, x·size + j)`` channel ``k`` is input channel
    ``(i·size + j)·c + k``.
    """

    def __init__(self, size: int = 2, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, inputs):  # noqa: D102 - Keras API
        return keras.ops.depth_to_space(inputs, self.size, data_format="channels_last")

    def compute_output_shape(self, input_shape):  # noqa: D102 - Keras API
        batch, height, width, channels = input_shape
        scale = self.size

        def grow(dim):
            return None if dim is None else dim * scale

        return (batch, grow(height), grow(width), None if channels is None else channels // scale**2)

    def get_config(self) -> dict[str, object]:  # noqa: D102 - Keras API
        return {**super().get_config(), "size": self.size}


def upscale(x, filters: int, name: str):
    """Upscale block: Conv2D(4·filters, 3, same) → LeakyReLU(0.1) → PixelShuffler(2)."""
    x = layers.Conv2D(filters * 4, 3, padding="same", name=f"{name}_conv")(x)
    x = layers.LeakyReLU(0.1, name=f"{name}_act")(x)
    return PixelShuffler(2, name=f"{name}_shuffle")(x)


def downscale(x, filters: int, name: str):
    """Downscale block: Conv2D(filters, 5, stride 2, same) → LeakyReLU(0.1)."""
    x = layers.Conv2D(filters, 5, strides=2, padding="same", name=f"{name}_conv")(x)
    return layers.LeakyReLU(0.1, name=f"{name}_act")(x)


def residual_block(x, filters: int, name: str):
    """Residual block: x + Conv2D(3) → LeakyReLU(0.2) → Conv2D(3), then LeakyReLU(0.2).

    The second convolution starts at zero, so a new block passes its input
    through unchanged and learns only a correction on top of the upscale.
    """
    shortcut = x
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(x)
    x = layers.LeakyReLU(0.2, name=f"{name}_act1")(x)
    x = layers.Conv2D(filters, 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv2")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.LeakyReLU(0.2, name=f"{name}_act2")(x)


@dataclass(frozen=True)
class ModelSpec:
    """Shape of one network family.

    ``residual``: a residual block after every decoder upscale.
    ``shared_decoder``: the LIAE layout (one decoder, per-side dense codes);
    ``dense`` and ``bottleneck_filters`` are then each code's.
    """

    name: str
    input_size: int
    encoder_filters: tuple[int, ...]
    dense: int
    bottleneck_filters: int
    decoder_filters: tuple[int, ...]
    description: str
    residual: bool = False
    shared_decoder: bool = False


_LITE = ModelSpec(
    "lite",
    64,
    (64, 128, 256, 512),
    512,
    256,
    (128, 64, 32),
    "64 px, every width halved: several times faster, for CPUs and quick tests",
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "original",
            64,
            (128, 256, 512, 1024),
            1024,
            512,
            (256, 128, 64),
            "classic 64-px model, 82 M parameters; train on a GPU",
        ),
        _LITE,
        replace(
            _LITE,
            name="liae",
            description="64 px, lite's widths, one decoder shared by both people (DeepFaceLab's LIAE)",
            shared_decoder=True,
        ),
        ModelSpec(
            "original128",
            128,
            (128, 256, 512, 1024, 1024),
            1024,
            512,
            (512, 256, 128, 64),
            "128-px model for sharper faces; needs a GPU with 8 GB or more",
        ),
        ModelSpec(
            "residual128",
            128,
            (32, 64, 128, 256, 512),
            512,
            256,
            (128, 64, 32, 16),
            "128 px, light encoder, residual decoders: sharper than lite at about half its speed",
            residual=True,
        ),
    )
}

#: Sub-models of the LIAE layout: the shared dense code, A's own, and the one decoder.
INTER_BOTH = "inter_both"
INTER_A = "inter_a"
DECODER = "decoder"


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` called ``name``; ``KeyError`` lists the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r} (choose from {', '.join(MODELS)})") from None


def build_encoder(spec: ModelSpec) -> keras.Model:
    """The shared encoder: face → ``(8, 8, bottleneck_filters)`` code (4·4 before the last upscale).

    With ``spec.shared_decoder`` it stops at the flattened convolutions: the
    dense codes are :func:`build_inter`'s.
    """
    face = keras.Input((spec.input_size, spec.input_size, 3), name="face")
    x = face
    for number, filters in enumerate(spec.encoder_filters):
        x = downscale(x, filters, f"down{number}")
    x = layers.Flatten(name="flatten")(x)
    if not spec.shared_decoder:
        x = _dense_code(x, spec)
    return keras.Model(face, x, name=ENCODER)


def _dense_code(x, spec: ModelSpec):
    x = layers.Dense(spec.dense, name="dense_code")(x)
    x = layers.Dense(4 * 4 * spec.dense, name="dense_expand")(x)
    x = layers.Reshape((4, 4, spec.dense), name="reshape")(x)
    return upscale(x, spec.bottleneck_filters, "up_code")


def build_inter(spec: ModelSpec, name: str, features: int) -> keras.Model:
    """A dense code of the LIAE layout: the encoder's ``features`` → ``(8, 8, bottleneck_filters)``."""
    flat = keras.Input((features,), name="features")
    return keras.Model(flat, _dense_code(flat, spec), name=name)


def build_decoder(spec: ModelSpec, name: str, code_filters: int) -> keras.Model:
    """A decoder: ``(8, 8, code_filters)`` code → (face ``[0, 1]`` RGB, mask ``[0, 1]``)."""
    code = keras.Input((8, 8, code_filters), name="code")
    x = code
    for number, filters in enumerate(spec.decoder_filters):
        x = upscale(x, filters, f"up{number}")
        if spec.residual:
            x = residual_block(x, filters, f"res{number}")
    face = layers.Conv2D(3, 5, padding="same", activation="sigmoid", dtype="float32", name="face")(x)
    mask = layers.Conv2D(1, 5, padding="same", activation="sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(code, [face, mask], name=name)


def parts(spec: ModelSpec) -> dict[str, tuple[str, ...]]:
    """The sub-models of ``spec``'s network, each with the sides whose faces it paints.

    The encoder serves both sides; in the classic layout each decoder one;
    in the LIAE layout ``inter_a`` serves A, the shared code and the decoder
    both. ``--init-decoders`` copies a part when it names all of its sides.
    """
    if spec.shared_decoder:
        return {ENCODER: SIDES, INTER_BOTH: SIDES, INTER_A: ("a",), DECODER: SIDES}
    return {ENCODER: SIDES, **{decoder_name(side): (side,) for side in SIDES}}


def _liae_paint(liae_parts: dict[str, keras.Model], side: str, features, name: str | None = None):
    """The LIAE path of ``side`` from the encoder's ``features``: A's own code beside the shared one for A."""
    shared = liae_parts[INTER_BOTH](features)
    first = liae_parts[INTER_A](features) if side == "a" else shared
    joined = layers.Concatenate(name=name)([first, shared])
    return liae_parts[DECODER](joined)


def side_decoder(network: keras.Model, side: str) -> keras.Model:
    """The path from the encoder's output to ``side``'s (face, mask), as a model.

    The decoder of ``side`` itself in the classic layout; in the LIAE layout a
    model built on ``network``'s own layers (it shares their weights).
    """
    if not _is_shared_decoder(network):
        return network.get_layer(decoder_name(side))
    encoder = network.get_layer(ENCODER)
    features = keras.Input(encoder.output.shape[1:], name="features")
    liae_parts = {name: network.get_layer(name) for name in (INTER_BOTH, INTER_A, DECODER)}
    return keras.Model(features, _liae_paint(liae_parts, side, features), name=f"path_{side}")


def _is_shared_decoder(network: keras.Model) -> bool:
    return any(layer.name == DECODER for layer in network.layers)


def build_autoencoder(name: str) -> keras.Model:
    """The whole network for training: inputs ``(face_a, face_b)``.

    Outputs ``(face_a, mask_a, face_b, mask_b)``: each side reconstructed
    through the shared encoder and its own path (:func:`side_decoder`).
    Sub-models are reachable by the names :func:`parts` lists:
    ``model.get_layer("encoder")``, ``"decoder_a"``, ``"decoder_b"`` (LIAE:
    ``"inter_both"``, ``"inter_a"``, ``"decoder"``).
    """
    spec = model_spec(name)
    encoder = build_encoder(spec)
    shape = (spec.input_size, spec.input_size, 3)
    inputs = [keras.Input(shape, name=f"face_{side}") for side in SIDES]
    if spec.shared_decoder:
        outputs = _liae_outputs(spec, encoder, inputs)
    else:
        outputs = []
        for side, face in zip(SIDES, inputs, strict=True):
            decoder = build_decoder(spec, decoder_name(side), spec.bottleneck_filters)
            outputs.extend(decoder(encoder(face)))
    return keras.Model(inputs, outputs, name=f"faceswap_{name}")


def _liae_outputs(spec: ModelSpec, encoder: keras.Model, inputs: list) -> list:
    """Both sides' faces and masks through the LIAE parts, called at the network's own level.

    A layer shared by two nested models would not load back as one (Keras
    builds each nested model's layers anew), so there is no ``decoder_a``:
    :func:`side_decoder` rebuilds a side's path from the network's layers.
    """
    features = int(encoder.output.shape[-1])
    liae_parts = {
        INTER_BOTH: build_inter(spec, INTER_BOTH, features),
        INTER_A: build_inter(spec, INTER_A, features),
        DECODER: build_decoder(spec, DECODER, 2 * spec.bottleneck_filters),
    }
    outputs = []
    for side, face in zip(SIDES, inputs, strict=True):
        outputs.extend(_liae_paint(liae_parts, side, encoder(face), f"joined_{side}"))
    return outputs


#: The model trained when none is named, by hardware, with the reason the first log line gives.
DEFAULT_ON_GPU = "original"
DEFAULT_ON_CPU = "lite"


def default_model(gpus: int) -> tuple[str, str]:
    """The model to train when ``--model`` is not given, and why, for ``gpus`` GPUs found.

    Returns
    -------
    tuple of str
        The model's name and a sentence for the log.
    """
    if gpus:
        return DEFAULT_ON_GPU, (
            f"{gpus} GPU{'s' if gpus > 1 else ''} found: the {DEFAULT_ON_GPU!r} model "
            f"({MODELS[DEFAULT_ON_GPU].description})"
        )
    return DEFAULT_ON_CPU, (
        f"no GPU found: the {DEFAULT_ON_CPU!r} model ({MODELS[DEFAULT_ON_CPU].description}); "
        f"'original' takes about 7 s an iteration on 2 CPU cores"
    )
