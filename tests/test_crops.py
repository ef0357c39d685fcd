"""Crop files: lossless pixels, metadata that travels with the file, refusal of non-crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.crops import CropInfo, encode_crop, read_crop, read_crop_info, write_crop
from faceswap.errors import InputError
from tests.test_media import png_header_only


def make_info() -> CropInfo:
    landmarks = np.random.default_rng(3).uniform(40, 200, (68, 2)).round(2)
    return CropInfo(landmarks=landmarks, size=256, padding=0.1875, source="clip.mp4", frame=7, face=1)


@pytest.fixture()
def crop(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(astronaut, (256, 256)))


def test_pixels_and_metadata_round_trip(tmp_path: Path, crop: np.ndarray) -> None:
    path = tmp_path / "clip_000007_1.png"
    info = make_info()
    write_crop(path, crop, info)
    image, loaded = read_crop(path)
    np.testing.assert_array_equal(image, crop)
    assert loaded is not None
    np.testing.assert_allclose(loaded.landmarks, info.landmarks)
    assert (loaded.size, loaded.padding, loaded.source, loaded.frame, loaded.face) == (
        256,
        0.1875,
        "clip.mp4",
        7,
        1,
    )
    header_only = read_crop_info(path)
    assert header_only is not None and header_only.frame == 7
    np.testing.assert_allclose(header_only.landmarks, info.landmarks)


def test_metadata_survives_other_png_readers(tmp_path: Path, crop: np.ndarray) -> None:
    from PIL import Image

    path = tmp_path / "c.png"
    write_crop(path, crop, make_info())
    with Image.open(path) as image:
        assert "faceswap" in image.text
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), crop)


def test_crop_without_metadata(tmp_path: Path, crop: np.ndarray) -> None:
    path = tmp_path / "plain.png"
    path.write_bytes(encode_crop(crop))
    image, info = read_crop(path)
    assert info is None and image.shape == (256, 256, 3)
    jpg = tmp_path / "user.jpg"
    cv2.imwrite(str(jpg), crop)
    assert read_crop(jpg)[1] is None


def test_damaged_metadata_counts_as_absent(tmp_path: Path, crop: np.ndarray) -> None:
    data = encode_crop(crop, make_info())
    start = data.find(b"faceswap\x00") + 9
    broken = data[:start] + b"{not json" + data[start + 9 :]
    path = tmp_path / "broken.png"
    path.write_bytes(broken)
    assert read_crop_info(path) is None


def test_non_crops_are_refused(tmp_path: Path, crop: np.ndarray) -> None:
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), crop[:100])
    with pytest.raises(InputError, match="not an aligned face crop"):
        read_crop(wide)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a readable image"):
        read_crop(text)
    with pytest.raises(InputError, match="not an aligned face crop"):
        read_crop(png_header_only(tmp_path / "large.png", 3000, 3000))
    with pytest.raises(InputError):
        read_crop(png_header_only(tmp_path / "bomb.png", 40000, 40000))


@pytest.mark.parametrize("shape", [(37, 41, 3), (1, 1, 3), (256, 256, 3)])
def test_png_is_lossless_for_any_reader(shape: tuple[int, int, int]) -> None:
    import io

    from PIL import Image

    pixels = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    data = encode_crop(pixels)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), pixels)
    with Image.open(io.BytesIO(data)) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)
