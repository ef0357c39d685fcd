"""Benchmark ``faceswap convert`` against the two limits it cannot beat, in one run.

1. **passthrough**: decode the clip and encode it again with the same writer
   settings, nothing else (frames/s);
2. **forward**: the model's forward pass alone on aligned faces, at the
   convert batch size (faces/s);
3. **convert**: the whole pipeline on the same clip, one face per frame
   (frames/s), with the faces planned beforehand (alignments found once and
   saved, as after ``faceswap extract``), so face detection is not timed.

The pipeline overlaps decoding, prediction, blending and encoding on
different cores; the target is convert ≥ 0.7 × min(passthrough, forward).
The three are measured in turns (``--repeat`` rounds), so a busy spell on a
shared machine hits all three alike; medians are reported, with the load
average before and after.

Usage::

    python scripts/bench_convert.py [--video ../shared/data/video/d18.mp4] [--model lite|DIR]

``--model lite`` (default) builds a ``lite`` network with random weights in a
temporary folder: speed does not depend on what the weights have learned.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceswap.alignments import Alignments, FrameRecord, SourceInfo  # noqa: E402
from faceswap.convert import ConvertOptions, convert, model_input  # noqa: E402
from faceswap.convert_plan import detect_faces  # noqa: E402
from faceswap.media.reader import VideoSource  # noqa: E402
from faceswap.media.writer import FrameSpec, Mp4Writer  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "d18.mp4"


def random_model_folder(folder: Path, name: str) -> Path:
    from faceswap.model import build_autoencoder, model_spec
    from faceswap.model_folder import TrainingState, save_keras_atomic, write_state

    folder.mkdir(parents=True, exist_ok=True)
    save_keras_atomic(build_autoencoder(name), folder / "model.keras")
    write_state(folder, TrainingState(name, model_spec(name).input_size))
    return folder


def save_alignments(video: Path, path: Path) -> Alignments:
    """Faces of every frame, found once (as extract would) and saved where convert is told to look."""
    source = VideoSource(video)
    found = detect_faces(source, [range(source.frame_count)], progress=False)
    alignments = Alignments(
        SourceInfo.of(source), frames={index: FrameRecord(faces) for index, faces in found.items()}
    )
    alignments.save(path)
    return alignments


class Measure:
    """Wall time and CPU time (this process and its ffmpeg children) of a block."""

    def __enter__(self) -> Measure:
        self.times = os.times()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        after = os.times()
        self.wall = time.perf_counter() - self.started
        self.cpu = sum(
            getattr(after, k) - getattr(self.times, k)
            for k in ("user", "system", "children_user", "children_system")
        )


def bench_passthrough(video: Path, output: Path, preset: str) -> tuple[float, float]:
    """Decode and encode with the convert writer (audio included); frames/s and CPU ms per frame."""
    source = VideoSource(video)
    info = source.info
    with Measure() as measure:
        spec = FrameSpec(info.width, info.height, info.fps)
        with Mp4Writer(output, spec, audio_source=info, preset=preset, overwrite=True) as writer:
            for frame in source.frames():
                writer.write(frame.image)
    return info.frame_count / measure.wall, 1000 * measure.cpu / info.frame_count


def bench_forward(model, faces: np.ndarray, batch: int, seconds: float = 6.0) -> tuple[float, float]:
    """The model's forward pass alone, as convert calls it; faces/s and CPU ms per face."""
    model.predict(faces[:batch], "b")  # trace once
    done = 0
    with Measure() as measure:
        while time.perf_counter() - measure.started < seconds:
            for i in range(0, len(faces), batch):
                model.predict(faces[i : i + batch], "b")
                done += len(faces[i : i + batch])
    return done / measure.wall, 1000 * measure.cpu / done


def bench_convert(video: Path, options: ConvertOptions, model) -> tuple[float, float]:
    """The whole pipeline (faces planned from a saved alignments file); frames/s and CPU ms per frame."""
    with Measure() as measure:
        summary = convert(video, options, model=model)
    return summary.frames / measure.wall, 1000 * measure.cpu / summary.frames


def median_run(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median rate of ``runs`` (rate, CPU ms) and the median CPU time."""
    return float(np.median([r for r, _ in runs])), float(np.median([c for _, c in runs]))


def format_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--model", default="lite", help="a model folder, or a model name for random weights")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of the three measurements; medians are reported (default: 3)",
    )
    args = parser.parse_args()
    if not args.video.is_file():
        print(f"no video at {args.video} (real media live in ../shared/data)", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING)
    from faceswap.model_folder import load_swap_model

    with tempfile.TemporaryDirectory(prefix="bench_convert_") as temp:
        work = Path(temp)
        folder = Path(args.model)
        weights = str(folder)
        if not folder.is_dir():
            folder = random_model_folder(work / "model", args.model)
            weights = "random weights"
        model = load_swap_model(folder)
        alignments_path = work / "alignments.json"
        alignments = save_alignments(args.video, alignments_path)
        source = VideoSource(args.video)
        faces = np.stack(
            [
                model_input(frame.image, face.matrix, model.input_size, model.centering)
                for frame in source.frames()
                for face in alignments.faces(frame.index)
            ]
        )
        options = ConvertOptions(
            model=folder,
            output=work / "converted.mp4",
            alignments=alignments_path,
            batch_size=args.batch_size,
            preset=args.preset,
            progress=False,
            overwrite=True,
        )
        load_before = os.getloadavg()
        convert(args.video, options, model=model)  # warm-up: traces the model at every batch shape
        results: dict[str, list[tuple[float, float]]] = {"passthrough": [], "forward": [], "convert": []}
        for _ in range(args.repeat):  # interleaved, so a busy spell on the machine hits all three alike
            results["passthrough"].append(
                bench_passthrough(args.video, work / "passthrough.mp4", args.preset)
            )
            results["forward"].append(bench_forward(model, faces, args.batch_size))
            results["convert"].append(bench_convert(args.video, options, model))
        load_after = os.getloadavg()
    (passthrough, passthrough_cpu), (forward, forward_cpu), (converted, convert_cpu) = (
        median_run(results[name]) for name in ("passthrough", "forward", "convert")
    )
    info = source.info
    per_frame = len(faces) / info.frame_count
    cores = len(os.sched_getaffinity(0))
    # Convert must at least do both limits' work: with all cores busy, it cannot beat this.
    ceiling = 1000 * cores / (passthrough_cpu + per_frame * forward_cpu)
    limit = min(passthrough, forward / per_frame)
    print(
        f"video: {args.video.name}, {info.frame_count} frames, {info.width}x{info.height}, "
        f"{len(faces)} faces; model: {model.name} ({weights}); batch {args.batch_size}; "
        f"x264 preset {args.preset}; {cores} CPU cores; medians of {args.repeat} interleaved rounds"
    )
    print(f"load average (1, 5, 15 min) before: {format_load(load_before)}, after: {format_load(load_after)}")
    for name, runs in results.items():
        print(f"  {name} runs: {', '.join(f'{rate:.1f}' for rate, _ in runs)}")
    print(
        f"passthrough (decode + encode): {passthrough:7.1f} frames/s  ({passthrough_cpu:5.1f} CPU ms/frame)"
    )
    print(f"forward pass alone:            {forward:7.1f} faces/s   ({forward_cpu:5.1f} CPU ms/face)")
    print(f"convert (whole pipeline):      {converted:7.1f} frames/s  ({convert_cpu:5.1f} CPU ms/frame)")
    print(f"convert / min(passthrough, forward) = {converted / limit:.2f} (target >= 0.7)")
    print(
        f"CPU-bound ceiling for convert, both limits' work on {cores} cores: {ceiling:.1f} frames/s "
        f"= {ceiling / limit:.2f} of the limit; convert reaches {converted / ceiling:.0%} of it"
    )
    # With no idle core (a busy machine, or a forward pass that already fills every core), frames/s
    # follow CPU time: convert can then reach at most this share of the forward pass's rate.
    cpu_share = per_frame * forward_cpu / convert_cpu
    print(f"CPU per frame, forward pass / convert = {cpu_share:.2f} (the ratio with no idle core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
