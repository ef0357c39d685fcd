"""One list of image suffixes: photo folders, crop folders and faces folders see the same files."""

from __future__ import annotations

from pathlib import Path

from faceswap.crops import list_crop_files
from faceswap.file_types import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from faceswap.media.reader import list_images
from faceswap.train.dataset import list_faces


def test_every_folder_listing_reads_the_same_image_types(tmp_path: Path) -> None:
    for suffix in sorted(IMAGE_SUFFIXES):
        (tmp_path / f"face{suffix.upper()}").write_bytes(b"")
    for other in ("notes.txt", "clip.mp4", ".hidden.png"):
        (tmp_path / other).write_bytes(b"")
    names = {path.name for path in list_images(tmp_path)}
    assert len(names) == len(IMAGE_SUFFIXES)
    assert {path.name for path in list_crop_files(tmp_path)} == names
    assert {path.name for path in list_faces(tmp_path, "A")} == names


def test_suffixes_are_lower_case_and_images_are_not_videos() -> None:
    for suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        assert suffix.startswith(".") and suffix == suffix.lower()
    assert not IMAGE_SUFFIXES & VIDEO_SUFFIXES
