"""How long training takes to reach the target loss on a real pair of clips.

Extracts the faces of two clips (default d3.mp4 and d6.mp4 of ../shared/data/video, the natural
pair of two women with similar framing), then trains a model on them until the smoothed face loss
of both sides reaches --target-loss (0.02, the figure users train to), or --time runs out. Prints
the wall time and iterations to each loss threshold passed on the way (0.08, 0.05, 0.03, 0.02),
throughput, and the device. Faces are extracted once into --work and reused by later runs.

This is the GPU figure issue 3 asks for (time to 0.02 with the original model at batch 64, with
and without mixed precision); on 2 CPU cores the original model does not get near 0.02 within
hours, so a CPU run reports how far it got by --time.

    python scripts/time_to_target.py --model original --batch-size 64 --time 4h
    python scripts/time_to_target.py --model original --batch-size 64 --no-mixed-precision
    python scripts/time_to_target.py --model lite --batch-size 16 --time 10m      # a CPU smoke run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceswap.cli.validators import duration as parse_duration  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "video"
THRESHOLDS = (0.08, 0.05, 0.03, 0.02)


def faces_of(video: Path, work: Path) -> Path:
    """Aligned faces of ``video`` in ``work``, extracted unless a previous run left them complete."""
    from faceswap.alignments import ALIGNMENTS_NAME
    from faceswap.extract import ExtractOptions, extract

    folder = work / f"{video.stem}_faces"
    if not (folder / ALIGNMENTS_NAME).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        summary = extract(video, ExtractOptions(output=folder))
        print(f"{video.name}: {summary.saved} faces extracted", flush=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--a", type=Path, default=VIDEOS / "d3.mp4", help="clip of person A (default: d3.mp4)"
    )
    parser.add_argument(
        "--b", type=Path, default=VIDEOS / "d6.mp4", help="clip of person B (default: d6.mp4)"
    )
    parser.add_argument("--model", default="original", help="(default: original)")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: 64)")
    parser.add_argument("--target-loss", type=float, default=0.02, help="(default: 0.02)")
    parser.add_argument("--time", type=parse_duration, default=parse_duration("8h"), help="(default: 8h)")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument(
        "--work", type=Path, help="where faces and the model go (default: a temporary folder)"
    )
    args = parser.parse_args()
    for video in (args.a, args.b):
        if not video.is_file():
            sys.exit(f"{video}: no such clip (the script reads ../shared/data/video/ by default)")

    from faceswap.runtime import GPUS
    from faceswap.train import Hardware, TrainConfig, train

    scratch = None
    if args.work is None:
        scratch = tempfile.TemporaryDirectory()
        args.work = Path(scratch.name)
    args.work.mkdir(parents=True, exist_ok=True)
    faces_a, faces_b = faces_of(args.a, args.work), faces_of(args.b, args.work)
    model_dir = args.work / f"model-{args.model}-b{args.batch_size}-{time.strftime('%Y%m%d-%H%M%S')}"
    config = TrainConfig(model=args.model, batch_size=args.batch_size, target_loss=args.target_loss)
    hardware = Hardware(mixed_precision=args.mixed_precision)
    started = time.perf_counter()
    result = train(faces_a, faces_b, model_dir, config, time_limit=args.time, hardware=hardware)
    device = f"GPU x{len(GPUS)}" if GPUS else "CPU"
    print(
        f"device: {device}; model {args.model}, batch {args.batch_size}; stopped by {result.reason} after "
        f"{result.iteration} iterations, {result.seconds / 60:.1f} min of training "
        f"({(time.perf_counter() - started) / 60:.1f} min with loading); "
        f"{result.faces_per_second:.1f} faces/s"
    )
    print(f"smoothed loss at the end: A {result.loss_a:.4f}, B {result.loss_b:.4f}")
    seconds_per_iteration = result.seconds / max(1, result.iteration)
    for threshold in THRESHOLDS:
        reached = reached_at(result.loss_history, threshold)
        when = (
            "not reached"
            if reached is None
            else (f"iteration {reached}, about {reached * seconds_per_iteration / 60:.1f} min")
        )
        print(f"  both sides at or below {threshold}: {when}")
    if scratch is not None:
        scratch.cleanup()
    return 0


def reached_at(
    history: tuple[tuple[int, float, float], ...], threshold: float, window: int = 100
) -> int | None:
    """First iteration where the mean of the last ``window`` losses of both sides is at most ``threshold``."""
    import numpy as np

    if not history:
        return None
    rows = np.asarray(history, dtype=np.float64)
    worst = np.maximum(rows[:, 1], rows[:, 2])
    kernel = np.ones(min(window, len(worst))) / min(window, len(worst))
    smoothed = np.convolve(worst, kernel, mode="valid")
    hits = np.flatnonzero(smoothed <= threshold)
    return None if not len(hits) else int(rows[hits[0] + len(kernel) - 1, 0])


if __name__ == "__main__":
    sys.exit(main())
