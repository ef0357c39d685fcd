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

The detail ceiling is A's face through the model, but a swap paints B's
face, and B's footage may hold less fine structure than A's (softer focus,
flatter light, another codec). ``--target B`` measures instead, per size,
what a perfect swap to B would score: the median inner-face energy of B's
faces through the model over that of A's originals, once as measured and
once per unit of contrast (each face's energy over the variance of its
luminance in the landmark hull), which is what convert's default Reinhard
colour matching leaves, since it gives the swapped face A's contrast.

    python scripts/bench_score_floor.py                     # d18, sizes 32, 64, 128
    python scripts/bench_score_floor.py --clip d3 --sizes 64,128 --centering legacy
    python scripts/bench_score_floor.py --sizes 64 --target d19   # is 80 % of d18's ceiling in reach?

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
from faceswap.detail import detail_energy, inner_face_mask, through_model
from faceswap.faces import FaceFinder, LargestFaceSearch
from faceswap.landmarks import face_hull
from faceswap.media.reader import open_source
from faceswap.progress import progress_bar
from faceswap.raster import fill_convex
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


def clip_path(name: str) -> Path:
    """``name`` as a file, or as a clip of ``../shared/data/video``; exits with one line if neither."""
    clip = Path(name) if Path(name).is_file() else DATA_DIR / "video" / f"{name}.mp4"
    if not clip.is_file():
        sys.exit(f"bench_score_floor.py: no clip {name} (not a file, nor in {DATA_DIR / 'video'})")
    return clip


def hull_contrast(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """Variance of the luminance inside the hull of the 68 landmarks (what Reinhard matching sets)."""
    inside = fill_convex(np.zeros(frame.shape[:2], np.uint8), face_hull(landmarks), anti_alias=False) > 0
    luminance = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(luminance[inside].var())


def clip_detail(clip: Path, sizes: list[int], centering: str, every: int) -> dict[str, list[float]]:
    """Inner-face energies of each ``every``-th frame's face: ``"original"``, per size, and ``"contrast"``."""
    source = open_source(clip)
    search = LargestFaceSearch(FaceFinder())
    values: dict[str, list[float]] = {"original": [], "contrast": [], **{str(size): [] for size in sizes}}
    frames = source.frames(step=every)
    for frame in progress_bar(-(-source.frame_count // every), clip.stem, True).wrap(frames):
        landmarks = search.find(frame.image)
        if landmarks is None:
            continue
        region = inner_face_mask(landmarks)  # one region for the original and every size
        values["original"].append(detail_energy(frame.image, landmarks, region))
        values["contrast"].append(hull_contrast(frame.image, landmarks))
        for size in sizes:
            perfect = through_model(frame.image, landmarks, size, centering)
            values[str(size)].append(detail_energy(perfect, landmarks, region))
    return values


def perfect_swap(
    source: dict[str, list[float]], target: dict[str, list[float]], size: int
) -> dict[str, float]:
    """What a perfect ``size``-px swap of the source clip to the target's face scores on detail.

    ``measured``: median energy of the target's faces through the model over
    the median of the source's originals; ``contrast_matched``: the same with
    each face's energy divided by its hull contrast first; ``target_ceiling``:
    the target's own ceiling (its faces through the model over its originals).
    """
    mine, theirs = np.asarray(source["original"]), np.asarray(target[str(size)])
    per_contrast = theirs / np.maximum(target["contrast"], 1e-6)
    original_per_contrast = mine / np.maximum(source["contrast"], 1e-6)
    return {
        "measured": float(np.median(theirs) / np.median(mine)),
        "contrast_matched": float(np.median(per_contrast) / np.median(original_per_contrast)),
        "target_ceiling": float(np.median(theirs / np.maximum(target["original"], 1e-6))),
        "source_ceiling": float(np.median(np.asarray(source[str(size)]) / np.maximum(mine, 1e-6))),
    }


def perfect_swap_report(clip: Path, target: Path, sizes: list[int], centering: str, every: int) -> dict:
    """Print and return, per size, what a perfect swap of ``clip`` to ``target``'s face scores on detail."""
    source_values = clip_detail(clip, sizes, centering, every)
    target_values = clip_detail(target, sizes, centering, every)
    swaps = {}
    for size in sizes:
        swap = swaps[size] = perfect_swap(source_values, target_values, size)
        print(
            f"{size:>4} px  perfect swap to {target.stem}: detail {swap['measured']:.3f} as measured, "
            f"{swap['contrast_matched']:.3f} at {clip.stem}'s contrast (ceilings: "
            f"{clip.stem} {swap['source_ceiling']:.3f}, {target.stem} {swap['target_ceiling']:.3f})"
        )
    document = {"clip": str(clip), "target": str(target), "centering": centering, "every": every}
    return {**document, "perfect_swap": swaps}


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
    parser.add_argument(
        "--target",
        help="B's clip (name or path): measure instead the detail a perfect swap to B's face scores",
    )
    parser.add_argument(
        "--every", type=int, default=5, help="with --target: measure every N-th frame of both (default: 5)"
    )
    parser.add_argument("--out", type=Path, default=Path("score_floor"), help="result folder")
    args = parser.parse_args()
    clip = clip_path(args.clip)
    target = clip_path(args.target) if args.target else None
    try:
        sizes = [int(text) for text in args.sizes.split(",")]
    except ValueError:
        sys.exit(f"bench_score_floor.py: --sizes takes whole numbers separated by commas, not {args.sizes!r}")
    if args.every < 1:
        sys.exit(f"bench_score_floor.py: --every takes a whole number of at least 1, not {args.every}")
    if target is not None:  # the perfect swap's detail alone; the other floors come from a run without it
        write(args.out, perfect_swap_report(clip, target, sizes, args.centering, args.every))
        return
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
    write(args.out, {"clip": str(clip), "centering": args.centering, "perfect_model": rows})


def write(folder: Path, document: dict) -> None:
    """``score_floor.json`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "score_floor.json").write_text(json.dumps(document, indent=2))
    print(f"wrote {folder / 'score_floor.json'}")


if __name__ == "__main__":
    main()
