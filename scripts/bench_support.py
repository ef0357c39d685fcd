"""What the benchmark scripts share: the faces they train on when given none.

Run from ``scripts/`` (``python scripts/bench_train.py``), so this module is
found beside them; the project root goes on ``sys.path`` for ``faceswap`` and
``tests`` alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The two people of the default faces, clips of ../shared/data/video.
DEFAULT_CLIPS = ("d18", "d19")


def faces_to_train(
    faces_a: Path | None, faces_b: Path | None, scratch: Path, frames: int, script: str
) -> tuple[Path, Path]:
    """The folders of ``--faces-a`` and ``--faces-b`` when both are given, else :func:`default_faces`."""
    if faces_a and faces_b:
        return faces_a, faces_b
    return default_faces(scratch, frames, script)


def default_faces(scratch: Path, frames: int, script: str) -> tuple[Path, Path]:
    """Aligned crops (with metadata) of the first ``frames`` frames of d18.mp4 and d19.mp4, as the tests make.

    Exits with one line naming ``script`` when a clip is missing.
    """
    from tests.conftest import DATA_DIR, make_face_crops

    folders = []
    for name in DEFAULT_CLIPS:
        video = DATA_DIR / "video" / f"{name}.mp4"
        if not video.is_file():
            sys.exit(f"{script}: {video} is missing; pass --faces-a and --faces-b")
        folder = scratch / f"faces_{name}"
        make_face_crops(video, folder, frames)
        folders.append(folder)
    return folders[0], folders[1]
