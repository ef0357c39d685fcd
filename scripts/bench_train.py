"""Benchmark of training: does the data pipeline keep up with the training step?

For each model and batch size, trains (a) on the real pipeline (faces from
disk, random transform and warp, landmark masks, tf.data with parallel
workers) and (b) on one constant batch repeated, with the same network,
optimizer and step. (a)/(b) near 1 means augmentation runs entirely in the
shadow of the step; the target is within 5 %. The two are measured in
alternating rounds so that a change in machine load hits both alike.

    python scripts/bench_train.py                                  # all models, batch 16 and 64
    python scripts/bench_train.py --models lite --batch-sizes 8 16 --steps 20
    python scripts/bench_train.py --models original --batch-sizes 64 --steps 3

Faces: --faces-a/--faces-b, or (default) 40 aligned crops each made from
d18.mp4 and d19.mp4 of ../shared/data/video (as the tests do).
Faces per second count both sides' faces (2 x batch per step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["original", "lite", "original128"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case and source (default: 10)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds the steps are split into")
    parser.add_argument("--faces-a", type=Path)
    parser.add_argument("--faces-b", type=Path)
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args()


def default_faces(scratch: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import DATA_DIR, make_face_crops

    folders = []
    for name in ("d18", "d19"):
        video = DATA_DIR / "video" / f"{name}.mp4"
        if not video.is_file():
            sys.exit(f"bench_train: {video} is missing; pass --faces-a and --faces-b")
        folder = scratch / f"faces_{name}"
        make_face_crops(video, folder, 40)
        folders.append(folder)
    return folders[0], folders[1]


class StepTimer:
    """Keras callback: the duration of every step but the first of each fit() call (pipeline start-up)."""

    def __new__(cls):
        from faceswap.runtime import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.durations: list[float] = []

            def on_train_begin(self, logs=None):
                self._last = None

            def on_train_batch_end(self, batch, logs=None):
                now = time.perf_counter()
                if self._last is not None:
                    self.durations.append(now - self._last)
                self._last = now

        return Timer()


def bench_case(
    model: str, batch: int, faces: tuple[Path, Path], args: argparse.Namespace, scratch: Path
) -> dict:
    from faceswap.runtime import tf
    from faceswap.train import Hardware, TrainConfig, TrainingSession

    config = TrainConfig(model=model, batch_size=batch, seed=0, save_every=10**9, preview_every=10**9)
    hardware = Hardware(mixed_precision=args.mixed_precision, xla=args.xla, progress=False)
    session = TrainingSession.start(scratch / f"{model}-{batch}", faces[0], faces[1], config, hardware)
    one_batch = session.source.batch(0)
    constant = tf.data.Dataset.from_tensors(
        {key: tf.constant(value) for key, value in one_batch.items()}
    ).repeat()
    started = time.perf_counter()
    for _ in range(5):
        session.source.batch(1)
    augment_ms = (time.perf_counter() - started) / 5 * 1000
    timers = {"pipeline": StepTimer(), "constant": StepTimer()}
    per_round = max(1, args.steps // args.rounds)
    # Warm-up: trace the step, fill the pipeline's workers.
    session.trainer.fit(constant, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    for _ in range(args.rounds):
        for name, data in (("pipeline", session.dataset()), ("constant", constant)):
            session.trainer.fit(
                data,
                epochs=1,
                steps_per_epoch=per_round + 1,
                verbose=0,
                shuffle=False,
                callbacks=[timers[name]],
            )
    result = {
        "model": model,
        "batch": batch,
        "mixed_precision": session.mixed_precision,
        "augment_ms_per_batch": augment_ms,
    }
    for name, timer in timers.items():
        seconds = statistics.fmean(timer.durations)
        result[f"{name}_steps_per_s"] = 1 / seconds
        result[f"{name}_faces_per_s"] = 2 * batch / seconds
        result[f"{name}_steps"] = len(timer.durations)
    result["ratio"] = result["pipeline_steps_per_s"] / result["constant_steps_per_s"]
    return result


def main() -> int:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("faceswap").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as scratch_name:
        scratch = Path(scratch_name)
        faces = (args.faces_a, args.faces_b) if args.faces_a and args.faces_b else default_faces(scratch)
        from faceswap.runtime import GPUS

        device = f"GPU x{len(GPUS)}" if GPUS else f"CPU ({os.cpu_count()} cores)"
        print(f"device: {device}; load average before: {os.getloadavg()}")
        header = (
            f"{'model':<12}{'batch':>6}{'augment':>10}{'pipeline':>22}{'constant':>22}{'(a)/(b)':>9}\n"
            f"{'':<12}{'':>6}{'ms/batch':>10}{'steps/s  faces/s':>22}{'steps/s  faces/s':>22}"
        )
        print(header, flush=True)
        results = []
        for model in args.models:
            for batch in args.batch_sizes:
                r = bench_case(model, batch, faces, args, scratch)
                results.append(r)
                print(
                    f"{model:<12}{batch:>6}{r['augment_ms_per_batch']:>10.1f}"
                    f"{r['pipeline_steps_per_s']:>12.3f}{r['pipeline_faces_per_s']:>10.1f}"
                    f"{r['constant_steps_per_s']:>12.3f}{r['constant_faces_per_s']:>10.1f}{r['ratio']:>9.3f}",
                    flush=True,
                )
        print(f"load average after: {os.getloadavg()}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
