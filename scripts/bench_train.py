"""Benchmark of training: does the data pipeline keep up with the training step?

For each model and batch size, trains (a) on the real pipeline (faces from
disk, random transform and warp, landmark masks, and the backend's pipeline
with parallel workers: tf.data on TensorFlow, a threaded PyDataset on JAX and
PyTorch, ``--backend``) and (b) on one constant batch repeated, with the same
network, optimizer and step, in the same process. (a)/(b) near 1 means augmentation
runs entirely in the shadow of the step; the target is within 5 %.

Machine load changes while a benchmark runs (other people's jobs on a shared
machine), so (a) and (b) are measured in alternating rounds, (a) first in
odd rounds and (b) first in even ones, and the table reports each source's
*median* step time over all rounds and the ratio of the medians; the spread
of the per-round ratios shows how much the load moved. Each round starts a
fresh pipeline (and fit() call), whose start-up costs (a) a few hundred ms of
CPU: where a round has several steps, its first is run but not timed; where
steps are so long that a round has one, that step is timed, start-up and all. "Pipeline CPU" is the CPU
time the tf.data pipeline takes per batch when run alone (augmentation,
masks, tf.data): divided by a step's CPU time ("share") it bounds what the
pipeline can take from the step, a figure the machine's load hardly moves.

Each round runs enough steps for about --round-seconds (at least
--min-steps), judged from a warm-up step, and a case runs at most --rounds
rounds, fewer when they would take more than --case-seconds (at least one):
on 2 CPU cores a batch-64 step of the original model takes 8 s or more, so
that case gets one round.

    python scripts/bench_train.py                          # every model, batch 16 and 64
    python scripts/bench_train.py --models lite --batch-sizes 8 16 --rounds 5
    python scripts/bench_train.py --models original --batch-sizes 64 --steps 2
    python scripts/bench_train.py --backend jax --models lite --batch-sizes 16

Faces: --faces-a/--faces-b, or (default) 40 aligned crops each made from
d18.mp4 and d19.mp4 of ../shared/data/video (as the tests do).
Faces per second count both sides' faces (2 x batch per step). "CPU/step"
is this process's CPU time per step (all threads): (a) minus (b) is what
the data pipeline costs.
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

from bench_support import faces_to_train

SOURCES = ("pipeline", "constant")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["lite", "original", "original128"],
        help="(default: lite original original128)",
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 64], help="(default: 16 64)")
    parser.add_argument(
        "--rounds", type=int, default=4, help="alternating rounds per case at most (default: 4)"
    )
    parser.add_argument(
        "--case-seconds",
        type=float,
        default=120.0,
        help="fewer rounds when they would take longer than this, judged from the warm-up (default: 120)",
    )
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=15.0,
        help="timed seconds per source and round, judged from the warm-up (default: 15)",
    )
    parser.add_argument(
        "--min-steps", type=int, default=1, help="timed steps per round at least (default: 1)"
    )
    parser.add_argument(
        "--max-steps", type=int, default=30, help="timed steps per round at most (default: 30)"
    )
    parser.add_argument(
        "--steps", type=int, help="timed steps per source and round (default: from --round-seconds)"
    )
    parser.add_argument("--workers", type=int, help="pipeline workers (default: the training default)")
    parser.add_argument("--faces-a", type=Path, help="faces folder A (default: 40 crops of d18.mp4)")
    parser.add_argument("--faces-b", type=Path, help="faces folder B (default: 40 crops of d19.mp4)")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--backend", help="tensorflow (default), jax or torch (default: KERAS_BACKEND)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args()


def step_timer():
    """A Keras callback recording the wall and CPU seconds of every step."""
    from faceswap.runtime import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []

        skip_first = False

        def on_train_begin(self, logs=None):
            self._skip = self.skip_first

        def on_train_batch_begin(self, batch, logs=None):
            self._start = (time.perf_counter(), time.process_time())

        def on_train_batch_end(self, batch, logs=None):
            if self._skip:  # fit()'s and the pipeline's start-up
                self._skip = False
                return
            self.wall.append(time.perf_counter() - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])

    return StepTimer()


def pipeline_cpu_ms(dataset, batches: int = 10) -> float:
    """CPU milliseconds per batch of this process while ``dataset`` makes ``batches`` batches alone.

    CPU time, unlike wall time, hardly depends on what else the machine runs:
    divided by a step's CPU time it bounds what the pipeline can take from
    the step, however loaded the machine.
    """
    iterator = iter(dataset)
    next(iterator)
    started = time.process_time()
    for _ in range(batches):
        next(iterator)
    return (time.process_time() - started) / batches * 1000


def constant_batches(batch: dict):
    """One batch, repeated without end, in the backend's own form (tf.data on TensorFlow)."""
    from faceswap.runtime import BACKEND

    def forever():
        while True:
            yield (batch,)  # a generator must give a tuple: (inputs,)

    if BACKEND != "tensorflow":
        return forever()
    from faceswap.runtime import tf

    return tf.data.Dataset.from_tensors({key: tf.constant(value) for key, value in batch.items()}).repeat()


def bench_case(
    model: str, batch: int, faces: tuple[Path, Path], args: argparse.Namespace, scratch: Path
) -> dict:
    from faceswap.runtime import BACKEND, opencv_single_threaded
    from faceswap.train import Hardware, TrainConfig, TrainingSession
    from faceswap.train.batches import default_workers
    from faceswap.train.pipeline import training_batches

    config = TrainConfig(model=model, batch_size=batch, seed=0, save_every=10**9, preview_every=10**9)
    hardware = Hardware(mixed_precision=args.mixed_precision, xla=args.xla, progress=False)
    session = TrainingSession.start(scratch / f"{model}-{batch}", faces[0], faces[1], config, hardware)
    workers = args.workers or default_workers()
    one_batch = session.source.batch(0)
    constant = constant_batches(one_batch)
    with opencv_single_threaded():
        augment_ms = pipeline_cpu_ms(training_batches(session.source, 10**7, workers))

    def fit(data, steps: int, callbacks=()) -> None:
        session.trainer.fit(
            data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=list(callbacks)
        )

    timers = {name: step_timer() for name in SOURCES}
    per_round: dict[str, list[float]] = {name: [] for name in SOURCES}
    next_batch = 0
    with opencv_single_threaded():  # as TrainingSession.run() trains
        # Warm-up: trace the step (both sources give the same input signature), then time one step.
        warm = step_timer()
        fit(constant, 1, [warm])
        if args.steps is None and warm.wall[0] < args.round_seconds:
            fit(constant, 1, [warm])
        steps = args.steps or round(args.round_seconds / warm.wall[-1])
        steps = max(args.min_steps, min(args.max_steps, steps))
        rounds = max(1, min(args.rounds, int(args.case_seconds // (2 * steps * warm.wall[-1]))))
        for number in range(rounds):
            order = SOURCES if number % 2 == 0 else SOURCES[::-1]
            for name in order:
                timer = timers[name]
                done = len(timer.wall)
                if name == "pipeline":
                    data = training_batches(session.source, next_batch, workers)
                    next_batch += steps
                else:
                    data = constant
                timer.skip_first = steps > 1
                fit(data, steps + timer.skip_first, [timer])
                per_round[name].append(statistics.median(timer.wall[done:]))
    result = {
        "backend": BACKEND,
        "model": model,
        "batch": batch,
        "mixed_precision": session.mixed_precision,
        "workers": workers,
        "pipeline_cpu_ms_per_batch": augment_ms,
        "steps_per_round": steps,
        "rounds": rounds,
    }
    for name, timer in timers.items():
        seconds = statistics.median(timer.wall)
        result[f"{name}_s_per_step"] = seconds
        result[f"{name}_steps_per_s"] = 1 / seconds
        result[f"{name}_faces_per_s"] = 2 * batch / seconds
        result[f"{name}_cpu_s_per_step"] = statistics.median(timer.cpu)
        result[f"{name}_steps"] = len(timer.wall)
    result["ratio"] = result["pipeline_steps_per_s"] / result["constant_steps_per_s"]
    result["pipeline_share"] = augment_ms / 1000 / result["constant_cpu_s_per_step"]
    result["round_ratios"] = [
        constant / pipeline
        for pipeline, constant in zip(per_round["pipeline"], per_round["constant"], strict=True)
    ]
    return result


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def main() -> int:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from faceswap.backends import choose_backend

    backend = choose_backend(args.backend)
    import logging

    logging.getLogger("faceswap").setLevel(logging.ERROR)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as scratch_name:
        scratch = Path(scratch_name)
        faces = faces_to_train(args.faces_a, args.faces_b, scratch, 40, "bench_train")
        from faceswap.runtime import GPUS

        device = f"GPU x{len(GPUS)}" if GPUS else f"CPU ({os.cpu_count()} cores)"
        print(f"backend: {backend}; device: {device}; load average before: {load()}")
        print(
            f"{'model':<10}{'batch':>6}{'pipeline':>9}{'steps':>7}"
            f"{'(a) real pipeline':>29}{'(b) constant batch':>29}{'(a)/(b)':>9}{'share':>7}  per round"
        )
        print(
            f"{'':<10}{'':>6}{'CPU ms':>9}{'x rnd':>7}" + f"{'steps/s':>10}{'faces/s':>9}{'CPU/step':>10}" * 2
        )
        results = []
        for model in args.models:
            for batch in args.batch_sizes:
                r = bench_case(model, batch, faces, args, scratch)
                results.append(r)
                rounds = " ".join(f"{value:.3f}" for value in r["round_ratios"])
                print(
                    f"{model:<10}{batch:>6}{r['pipeline_cpu_ms_per_batch']:>9.0f}"
                    f"{r['steps_per_round']:>4} x{r['rounds']:<2}"
                    + "".join(
                        f"{r[f'{name}_steps_per_s']:>10.3f}{r[f'{name}_faces_per_s']:>9.1f}"
                        f"{r[f'{name}_cpu_s_per_step']:>9.2f}s"
                        for name in SOURCES
                    )
                    + f"{r['ratio']:>9.3f}{r['pipeline_share']:>7.1%}  {rounds}",
                    flush=True,
                )
        print(f"load average after: {load()}; {(time.perf_counter() - started) / 60:.1f} min in all")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
