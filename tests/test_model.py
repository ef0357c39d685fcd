"""The networks: PixelShuffler's pixel order, the models' sizes, the LIAE layout, saving and loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceswap.model import MODELS, PixelShuffler, build_autoencoder, model_spec, parts, side_decoder
from faceswap.model_folder import load_keras_model
from faceswap.runtime import keras, tf


def shuffle_reference(x: np.ndarray, size: int) -> np.ndarray:
    """Depth-to-space written out pixel by pixel: out[y·s+i, x·s+j, k] = in[y, x, (i·s+j)·c+k]."""
    batch, height, width, depth = x.shape
    channels = depth // size**2
    out = np.zeros((batch, height * size, width * size, channels), x.dtype)
    for y in range(height):
        for col in range(width):
            for i in range(size):
                for j in range(size):
                    block = x[:, y, col, (i * size + j) * channels : (i * size + j + 1) * channels]
                    out[:, y * size + i, col * size + j, :] = block
    return out


@pytest.mark.parametrize(("size", "channels"), [(2, 3), (2, 1), (3, 2)])
def test_pixel_shuffler_matches_numpy_reference(size: int, channels: int) -> None:
    x = np.random.default_rng(size).normal(size=(2, 3, 5, channels * size**2)).astype(np.float32)
    layer = PixelShuffler(size)
    out = np.asarray(layer(x))
    assert out.shape == (2, 3 * size, 5 * size, channels)
    assert layer.compute_output_shape(x.shape) == out.shape
    np.testing.assert_array_equal(out, shuffle_reference(x, size))


def test_pixel_shuffler_inverts_space_to_depth() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 8, 6, 5)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(PixelShuffler(2)(tf.nn.space_to_depth(image, 2))), image)
    depth = rng.normal(size=(2, 4, 3, 20)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(tf.nn.space_to_depth(PixelShuffler(2)(depth), 2)), depth)


def test_pixel_shuffler_config_round_trip() -> None:
    layer = PixelShuffler(3, name="shuffle")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, PixelShuffler) and clone.size == 3 and clone.name == "shuffle"


def count(model: keras.Model, *, without_masks: bool = False) -> int:
    total = model.count_params()
    if without_masks:
        for side in ("a", "b"):
            total -= model.get_layer(f"decoder_{side}").get_layer("mask").count_params()
    return total


def test_original_model_has_the_classic_parameter_count() -> None:
    model = build_autoencoder("original")
    assert count(model, without_masks=True) == 82_062_470
    encoder = model.get_layer("encoder").count_params()
    decoder = (
        model.get_layer("decoder_a").count_params()
        - model.get_layer("decoder_a").get_layer("mask").count_params()
    )
    assert round(encoder / 1e6, 1) == 69.7 and round(decoder / 1e6, 1) == 6.2
    assert [tuple(shape) for shape in model.output_shape] == [(None, 64, 64, 3), (None, 64, 64, 1)] * 2


def test_lite_halves_every_width() -> None:
    lite, original = model_spec("lite"), model_spec("original")
    assert lite.input_size == original.input_size
    assert lite.encoder_filters == tuple(f // 2 for f in original.encoder_filters)
    assert lite.decoder_filters == tuple(f // 2 for f in original.decoder_filters)
    assert (lite.dense, lite.bottleneck_filters) == (original.dense // 2, original.bottleneck_filters // 2)


def test_the_128_px_model_takes_and_gives_128_px_faces() -> None:
    model = build_autoencoder("original128")
    assert MODELS["original128"].input_size == 128
    assert tuple(model.get_layer("encoder").input_shape) == (None, 128, 128, 3)
    assert [tuple(shape)[1:] for shape in model.output_shape] == [(128, 128, 3), (128, 128, 1)] * 2


def test_liae_paints_both_people_with_one_decoder_and_gives_a_alone_a_code_of_its_own() -> None:
    model = build_autoencoder("liae")
    assert set(parts(model_spec("liae"))) == {"encoder", "inter_both", "inter_a", "decoder"}
    assert [layer.name for layer in model.layers].count("decoder") == 1  # called for both sides
    assert [tuple(shape)[1:] for shape in model.output_shape] == [(64, 64, 3), (64, 64, 1)] * 2
    faces = np.random.default_rng(4).random((2, 64, 64, 3), dtype=np.float32)
    before = [np.asarray(output) for output in model([faces, faces])]
    assert not np.allclose(before[0], before[2])  # A's own code makes A differ from B
    inter_a = model.get_layer("inter_a")
    inter_a.set_weights([weight * 2 for weight in inter_a.get_weights()])
    after = [np.asarray(output) for output in model([faces, faces])]
    assert not np.allclose(after[0], before[0])  # A's path goes through inter_a...
    np.testing.assert_array_equal(after[2], before[2])  # ... B's does not


def test_side_decoder_is_the_networks_own_path_of_each_side() -> None:
    faces = np.random.default_rng(5).random((2, 64, 64, 3), dtype=np.float32)
    for name in ("liae", "lite"):
        model = build_autoencoder(name)
        outputs = [np.asarray(output) for output in model([faces, faces])]
        code = model.get_layer("encoder")(faces)
        for number, side in enumerate("ab"):
            face, mask = side_decoder(model, side)(code)
            np.testing.assert_allclose(np.asarray(face), outputs[2 * number], atol=1e-6, err_msg=name)
            np.testing.assert_allclose(np.asarray(mask), outputs[2 * number + 1], atol=1e-6, err_msg=name)


def test_outputs_are_float32_in_unit_range_under_mixed_precision() -> None:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_autoencoder("lite")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    faces = np.random.default_rng(1).random((2, 64, 64, 3), dtype=np.float32)
    outputs = model([faces, faces])
    assert model.get_layer("encoder").get_layer("down0_conv").compute_dtype == "float16"
    for side in ("a", "b"):  # the output convolutions compute and keep their weights in float32
        for name in ("face", "mask"):
            layer = model.get_layer(f"decoder_{side}").get_layer(name)
            assert layer.compute_dtype == "float32" and layer.kernel.dtype == "float32"
    for output in outputs:
        assert output.dtype == "float32"
        values = np.asarray(output)
        assert values.min() >= 0 and values.max() <= 1


def test_save_load_gives_identical_predictions_in_safe_mode(tmp_path: Path) -> None:
    model = build_autoencoder("lite")
    model.compile(optimizer=keras.optimizers.Adam(5e-5))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_keras_model(path)  # safe_mode=True: custom layers must be registered, not pickled code
    assert loaded.name == "faceswap_lite"
    assert any(isinstance(layer, PixelShuffler) for layer in loaded.get_layer("decoder_b").layers)
    faces = np.random.default_rng(2).random((3, 64, 64, 3), dtype=np.float32)
    for before, after in zip(
        model.predict([faces, faces], verbose=0), loaded.predict([faces, faces], verbose=0), strict=True
    ):
        np.testing.assert_array_equal(before, after)


def test_a_saved_liae_model_loads_back_with_its_layers_still_shared(tmp_path: Path) -> None:
    model = build_autoencoder("liae")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_keras_model(path)
    assert len(loaded.weights) == len(model.weights)  # a shared layer loaded twice would have more
    faces = np.random.default_rng(6).random((2, 64, 64, 3), dtype=np.float32)
    for before, after in zip(model([faces, faces]), loaded([faces, faces]), strict=True):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    loaded.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mae")
    loaded.train_on_batch([faces, faces], [faces, faces[..., :1], faces, faces[..., :1]])
    code = loaded.get_layer("encoder")(faces)
    trained = [np.asarray(output) for output in loaded([faces, faces])]
    for number, side in enumerate("ab"):  # one step moved the one decoder both paths use
        np.testing.assert_allclose(
            np.asarray(side_decoder(loaded, side)(code)[0]), trained[2 * number], atol=1e-6
        )


def test_the_saved_iteration_rides_in_the_archive_comment(tmp_path: Path) -> None:
    import zipfile

    from faceswap.model_folder import save_keras_atomic, saved_iteration

    model = build_autoencoder("lite")
    path = tmp_path / "model.keras"
    save_keras_atomic(model, path, iteration=7)
    assert saved_iteration(path) == 7
    # Keras' own three members only: a fourth would make Keras extract the whole archive to disk.
    assert sorted(zipfile.ZipFile(path).namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
    assert load_keras_model(path).name == "faceswap_lite"
    save_keras_atomic(model, path)
    assert saved_iteration(path) is None
    for comment in (b"not json", b'{"faceswap_iteration": -1}', b'{"faceswap_iteration": true}', b"[1]"):
        with zipfile.ZipFile(path, "a") as archive:
            archive.comment = comment
        assert saved_iteration(path) is None, comment
    assert saved_iteration(tmp_path / "missing.keras") is None
