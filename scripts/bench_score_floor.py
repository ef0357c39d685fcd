"""What ``faceswap score`` gives a perfect model: the floor of every measure at a model size.

A swap is never scored against 1.0 of the original: a model that paints its
face at 64 px loses the detail above 64 px, and the landmarks that pose,
expression and jitter are measured on move when the face they are placed on
is that soft. This script scores the *original* clip after a perfect model of
each ``--sizes`` (every face cut to the model's input, as convert cuts it, and
warped back: :func:`faceswap.detail.through_model`), with the very
``faceswap score`` a real swap gets. What it reports is the best a model of
that size can score on each measure (identity aside: the face is still A's).

Small sizes (24, 32) stand for a model that paints softer than its input
size allows: read a blurry swap's pose, expression and jitter against the
size whose detail its own detail matches, to see how much of them its blur
alone explains.

    python scripts/bench_score_floor.py                     # d18, sizes 32, 64, 128
    python scripts/bench_score_floor.py --clip d3 --sizes 64,128 --centering legacy

Outputs: the table on the terminal and ``score_floor.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import bench_support  # noqa: F401  (puts the project root on sys.path)
import cv2
import numpy as np

from faceswap.align import CENTERINGS, DEFAULT_CENTERING
from faceswap.detail import through_model
from faceswap.faces import FaceFinder, LargestFaceSearch
from faceswap.media.reader import open_source
from faceswap.progress import progress_bar
from faceswap.score import ScoreResult, score
from tests.conftest import DATA_DIR


def perfect_model_frames(clip: Path, folder: Path, size: int, centering: str) -> int:
    """Write each frame of ``clip`` as a perfect ``size``-px model would paint it, as PNGs in ``folder``.

    Frames without a face are written unchanged. Returns the frame count.
    """
    source = open_source(clip)
    search = LargestFaceSearch(FaceFinder())
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for frame in progress_bar(source.frame_count, f"{size} px", True).wrap(source.frames()):
        landmarks = search.find(frame.image)
        image = frame.image if landmarks is None else through_model(frame.image, landmarks, size, centering)
        cv2.imwrite(str(folder / f"{frame.index:06d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        count += 1
    return count


def figures(report: ScoreResult) -> dict[str, float | None]:
    """The report's figures that a perfect model does not make trivially perfect."""
    row: dict[str, float | None] = {"detail": report.detail}
    for axis in ("yaw", "pitch", "roll"):
        row[f"pose_{axis}"] = report.pose_error[axis]
        row[f"motion_{axis}"] = report.pose_tracking_error[axis]
    row.update(expression=report.expression_error, steadiness=report.steadiness, lost=report.lost_faces)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", default="d18", help="name in ../shared/data/video or a path (default: d18)")
    parser.add_argument("--sizes", default="32,64,128", help="model sizes in px, comma-separated")
    parser.add_argument("--centering", default=DEFAULT_CENTERING, choices=sorted(CENTERINGS))
    parser.add_argument("--out", type=Path, default=Path("score_floor"), help="result folder")
    args = parser.parse_args()
    clip = Path(args.clip) if Path(args.clip).is_file() else DATA_DIR / "video" / f"{args.clip}.mp4"
    if not clip.is_file():
        sys.exit(f"bench_score_floor.py: no clip {args.clip} (not a file, nor in {DATA_DIR / 'video'})")
    try:
        sizes = [int(text) for text in args.sizes.split(",")]
    except ValueError:
        sys.exit(f"bench_score_floor.py: --sizes takes whole numbers separated by commas, not {args.sizes!r}")
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            folder = Path(scratch) / f"perfect_{size}"
            perfect_model_frames(clip, folder, size, args.centering)
            # Identity is not what this measures: a placeholder target, and the embedder on frame 0 only.
            report = score(
                clip,
                folder,
                (),
                identity_every=10**9,
                model_size=size,
                centering=args.centering,
                identities=(np.zeros(128), None),
            )
            rows[size] = figures(report)
            print(
                f"{size:>4} px  " + "  ".join(f"{k} {v:.3f}" for k, v in rows[size].items() if v is not None)
            )
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"clip": str(clip), "centering": args.centering, "perfect_model": rows}
    (args.out / "score_floor.json").write_text(json.dumps(document, indent=2))
    print(f"wrote {args.out / 'score_floor.json'}")


if __name__ == "__main__":
    main()
