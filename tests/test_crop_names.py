"""Crop file names: written and read back by one module."""

from __future__ import annotations

from faceswap.crop_names import CropName, crop_file_name, is_crop_of, parse_crop_name


def test_crop_names_are_safe_and_lead_back_to_the_frame() -> None:
    assert crop_file_name("clip", 12, 1) == "clip_000012_1.png"
    hostile = crop_file_name("../../etc/pass\nwd", 3, 0)
    assert "/" not in hostile and "\n" not in hostile and not hostile.startswith(".")
    assert hostile.endswith("_000003_0.png")


def test_a_name_reads_back_what_was_written() -> None:
    assert parse_crop_name(crop_file_name("my clip", 1_234_567, 2)) == CropName("my_clip", 1_234_567, 2)
    assert parse_crop_name("take_2_000010_0.png") == CropName("take_2", 10, 0)


def test_other_files_are_not_crops() -> None:
    names = ("alignments.json", "clip_12_0.png", "clip_000012_0.jpg", "clip_000012_.png", "_000012_0.png")
    for name in names:
        assert parse_crop_name(name) is None


def test_crops_of_one_source_only() -> None:
    assert is_crop_of("my_clip_000003_1.png", "my clip")
    assert not is_crop_of("my_clip_000003_1.png", "my")
    assert not is_crop_of("other_000003_1.png", "my clip")
    assert not is_crop_of("my_clip_000003_1.png.bak", "my clip")
