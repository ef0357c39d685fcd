"""Time to a convincing swap: train one or two recipes on a pair of clips and measure the swap on the way.

Extracts the faces of clip A and clip B (default d18.mp4 and d19.mp4 of ../shared/data/video, two
men; --pair d3,d6 for the two women), holds back whole frames of each side for validation (one in
--validation-every, in runs of --validation-block consecutive frames: neighbouring frames are near
copies; see faceswap/train/split.py) and trains each --recipe on the rest. At fixed points of the
budget (--points, default 1/8, 1/4, 1/2 and 1 of each recipe's share) it records:

* validation reconstruction of both sides: MAE and SSIM inside the face hull, on the held-back faces;
* the swap: A's clip (or its first --score-frames frames) converted to B's face and scored with
  faceswap score against B's and A's training faces: identity transfer (raw, and counting only
  detailed frames), inner-face detail against the model-size ceiling, distances to B and to A,
  pose drift per axis, expression drift (all frames, and those whose expression B's faces show),
  steadiness (jitter), lost faces.

Two recipes share the budget: each gets --minutes / 2 of training, in alternating slices of at most
--slice-seconds, so that the machine's load falls on both alike and their curves compare. Evaluation
time (convert, score) comes on top of the budget and is reported.

Training time is counted by --clock: ``cpu`` (the default) counts the CPU time of the training
slices over the cores this process may use, so that a budget buys the same training on a busy
machine as on an idle one; ``wall`` counts seconds on the clock. Both, and the load average, are
recorded at each point.

Outputs, in --out: bench_quality.json (every figure, rewritten after each point), curves.png (identity
transfer and validation SSIM against training minutes, one colour per recipe) and strip.png (the same
swapped faces at each point, beside the original), and the table on the terminal.

    python scripts/bench_quality.py --minutes 20
    python scripts/bench_quality.py --pair d3,d6 --minutes 40
    python scripts/bench_quality.py --minutes 40 --recipe "--model lite" --recipe "--model lite -b 32"
    python scripts/bench_quality.py --recipe "--model lite" --minutes 1 --every 4 --score-frames 30  # smoke

A recipe is a string of faceswap train options (model, learning and augmentation); stopping options
(--iterations, --time, --target-loss unless given, -m, --resume) belong to the benchmark. The faces
are extracted once into --work and reused by later runs with the same --every.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from bench_quality_eval import (  # noqa: E402
    Yardstick,
    evaluate,
    identities_of,
    strip_geometry,
    swap_and_score,
)
from bench_quality_report import cell, plot_curves, table, write_strip  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "video"
POINTS = (1 / 8, 1 / 4, 1 / 2, 1.0)
#: Recipe options that the benchmark sets itself.
RUN_OPTIONS = (
    "--iterations",
    "--time",
    "-m",
    "--model-dir",
    "--resume",
    "--distribute",
    "--validation-every",
)


# -- inputs -------------------------------------------------------------------------------------------------


def clip_path(name: str) -> Path:
    """A clip named as in ../shared/data/video (``d18``) or by its path."""
    path = Path(name)
    if path.suffix:
        return path
    return VIDEOS / f"{name}.mp4"


def parse_recipe(text: str) -> tuple[Any, Any]:
    """``(TrainConfig, Hardware)`` of a string of ``faceswap train`` options.

    The benchmark's own defaults: no target loss (train for the whole
    budget), checkpoints only at the end of each slice, no preview, no
    validation split of train's own.
    """
    from faceswap.cli import build_parser
    from faceswap.cli.train import settings
    from faceswap.train import Hardware, TrainConfig

    words = shlex.split(text)
    for word in words:
        if word.split("=")[0] in RUN_OPTIONS:
            sys.exit(f"recipe {text!r}: {word} is set by the benchmark, not by a recipe")
    args = build_parser().parse_args(["train", "faces_a", "faces_b", *words])
    given = settings(args)
    # The benchmark holds back its own validation frames (split_of): train holds back none more.
    defaults = {"target_loss": 0.0, "save_every": 10**9, "preview_every": 10**9, "validation_every": 0}
    config = TrainConfig(**{**defaults, **given})
    hardware = Hardware(mixed_precision=args.mixed_precision, xla=args.xla, progress=False)
    return config, hardware


def faces_of(video: Path, work: Path, every: int) -> Path:
    """Aligned faces of ``video`` (every ``every``-th frame), extracted unless a previous run left them."""
    from faceswap.alignments import ALIGNMENTS_NAME
    from faceswap.extract import ExtractOptions, extract

    folder = work / f"{video.stem}_every{every}_faces"
    if not (folder / ALIGNMENTS_NAME).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        summary = extract(video, ExtractOptions(output=folder, every=every, progress=False))
        print(f"{video.name}: {summary.saved} faces extracted (every {every} frames)", flush=True)
    return folder


def split_of(faces: Path, every: int, block: int) -> tuple[Path, Path]:
    """Training and validation folders of ``faces``, made unless a previous run left them."""
    from faceswap.train.split import write_split

    base = faces.with_name(f"{faces.name}_split{every}x{block}")
    training, validation = base / "train", base / "validation"
    if not (training.is_dir() and validation.is_dir()):
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        split = write_split(faces, training, validation, every, block)
        print(
            f"{faces.name}: {len(split.training)} faces to train on, {len(split.validation)} held back",
            flush=True,
        )
    return training, validation


def score_clip(video: Path, faces: Path, every: int, frames: int | None, work: Path) -> tuple[Path, Path]:
    """The clip to convert and score, and its alignments file.

    The whole clip when ``frames`` is ``None``, else its first ``frames``
    frames, re-encoded (near-lossless) and extracted for their alignments.
    """
    from faceswap.alignments import ALIGNMENTS_NAME
    from faceswap.media.reader import VideoSource
    from faceswap.media.writer import FrameSpec, Mp4Writer

    source = VideoSource(video)
    if frames is None or frames >= source.frame_count:
        if every == 1:
            return video, faces / ALIGNMENTS_NAME
        return video, faces_of(video, work, 1) / ALIGNMENTS_NAME
    clip = work / f"{video.stem}_first{frames}.mp4"
    if not clip.is_file():
        width, height = source.info.size
        with Mp4Writer(
            clip, FrameSpec(width, height, source.info.fps), crf=4, label=f"first frames of {video.name}"
        ) as writer:
            for frame in source.frames(0, frames):
                writer.write(frame.image)
    return clip, faces_of(clip, work, 1) / ALIGNMENTS_NAME


# -- training in fair slices --------------------------------------------------------------------------------


@dataclass
class Contender:
    """One recipe being trained."""

    name: str
    recipe: str
    session: Any
    trained: float = 0.0  # budget seconds spent, by the benchmark's clock (wall, or CPU over cores)
    wall: float = 0.0  # wall-clock seconds of training
    cpu: float = 0.0  # CPU seconds of training (all threads of this process)
    points: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None  # why training stopped early (a collapse, a NaN): evaluated as it is

    @property
    def model_dir(self) -> Path:
        return self.session.model_dir


def train_until(contenders: list[Contender], seconds: float, slice_seconds: float, clock: str) -> None:
    """Train every contender to ``seconds`` of training, alternating slices (order rotated each round).

    With ``clock="cpu"`` a contender's training time is the CPU time its
    slices took (this process, all threads) divided by the cores this
    process may use: on a machine shared with other work this counts what
    the recipe got, not how long it waited, so a budget means the same on a
    busy and on an idle machine (it is at most the idle machine's wall time:
    a step that keeps the cores only partly busy gets more wall time).
    """
    from faceswap.errors import TrainingDivergedError

    cores = len(os.sched_getaffinity(0))
    turn = 0
    while True:
        behind = [c for c in contenders if c.stopped is None and seconds - c.trained > 0.5]
        if not behind:
            return
        order = behind[turn % len(behind) :] + behind[: turn % len(behind)]
        turn += 1
        for contender in order:
            cpu_before = time.process_time()
            try:
                result = contender.session.run(time_limit=min(slice_seconds, seconds - contender.trained))
            except TrainingDivergedError as error:  # the other recipe goes on; this one stays as it is
                contender.stopped = str(error)
                print(f"{contender.name} stopped training: {error}", flush=True)
                continue
            if result.reason == "interrupted":
                raise KeyboardInterrupt
            cpu = time.process_time() - cpu_before
            contender.wall += result.seconds
            contender.cpu += cpu
            contender.trained += result.seconds if clock == "wall" else cpu / cores


# -- main ---------------------------------------------------------------------------------------------------


def recipes_joined(argv: list[str]) -> list[str]:
    """``--recipe VALUE`` as ``--recipe=VALUE``: argparse takes a lone ``--flip`` value for an option."""
    joined, words = [], iter(argv)
    for word in words:
        value = next(words, None) if word == "--recipe" else None
        joined.append(word if value is None else f"--recipe={value}")
    return joined


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pair",
        default="d18,d19",
        help="clips A,B: names in ../shared/data/video or paths (default: %(default)s)",
    )
    parser.add_argument(
        "--recipe",
        action="append",
        metavar="OPTIONS",
        help="faceswap train options, quoted; give it twice to compare two (default: one "
        "recipe, the train defaults)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        help="training budget in minutes, shared by the recipes (default: %(default)s)",
    )
    parser.add_argument(
        "--points",
        default="0.125,0.25,0.5,1",
        help="fractions of each recipe's share at which to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--slice-seconds",
        type=float,
        default=120.0,
        help="longest stretch one recipe trains before the other's turn (default: %(default)s)",
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        help="extract every Nth frame for training and validation (default: %(default)s)",
    )
    parser.add_argument(
        "--validation-every",
        type=int,
        default=10,
        help="hold back one run of frames in N for validation (default: %(default)s)",
    )
    parser.add_argument(
        "--validation-block",
        type=int,
        default=5,
        help="consecutive extracted frames held back together (default: %(default)s)",
    )
    parser.add_argument(
        "--score-frames",
        type=int,
        metavar="N",
        help="convert and score only the first N frames of A (default: the whole clip)",
    )
    parser.add_argument(
        "--identity-every", type=int, default=2, help="score's --identity-every (default: %(default)s)"
    )
    parser.add_argument(
        "--strip", type=int, default=4, help="faces in strip.png per point (default: %(default)s)"
    )
    parser.add_argument(
        "--work", type=Path, help="faces, models and swapped clips (default: a temporary folder, removed)"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what the budget counts: cpu (CPU time of training over the cores: the same on a busy machine) "
        "or wall (seconds on the clock) (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="result folder (default: ./bench_quality-<A>-<B>-<time>)")
    parser.add_argument(
        "--record-inputs",
        type=Path,
        metavar="FILE",
        help="only write the faces that convert feeds the (first) recipe's model for A's clip, to FILE "
        "(.npz), for a machine that trains and decodes without converting (scripts/gpu_check.py curve)",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="DIR",
        help="instead of training, score the points of a curve trained elsewhere: DIR holds curve.json "
        "and curve_<iteration>.npz of scripts/gpu_check.py curve; needs --inputs",
    )
    parser.add_argument("--inputs", type=Path, metavar="FILE", help="the --record-inputs file of --replay")
    parser.add_argument("-v", "--verbose", action="store_true", help="log training details")
    args = parser.parse_args(recipes_joined(sys.argv[1:] if argv is None else argv))
    try:
        args.fractions = sorted({float(x) for x in args.points.split(",")})
    except ValueError:
        parser.error(f"--points must be fractions separated by commas, not {args.points!r}")
    if not args.fractions or not all(0 < f <= 1 for f in args.fractions):
        parser.error("--points must lie in (0, 1]")
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        parser.error("--minutes must be above 0")
    for name in ("every", "identity_every", "strip", "validation_block"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.validation_every < 2:
        parser.error("--validation-every must be at least 2")
    if args.score_frames is not None and args.score_frames < 3:
        parser.error("--score-frames must be at least 3 (jitter needs three frames in a row)")
    if not args.slice_seconds > 0:
        parser.error("--slice-seconds must be above 0")
    names = args.pair.split(",")
    if len(names) != 2:
        parser.error(f"--pair takes two clips, A,B, not {args.pair!r}")
    args.clips = [clip_path(name) for name in names]
    for clip in args.clips:
        if not clip.is_file():
            parser.error(f"{clip}: no such clip (names are looked up in {VIDEOS})")
    args.recipe = args.recipe or [""]
    if args.replay is not None and not (args.inputs and args.inputs.is_file()):
        parser.error("--replay needs --inputs FILE, the faces that --record-inputs wrote")
    if args.replay is not None and not (args.replay / "curve.json").is_file():
        parser.error(f"--replay {args.replay}: no curve.json there")
    if len(args.recipe) > 4:
        parser.error("at most four recipes in one run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from faceswap.cli import configure_logging
    from faceswap.errors import FaceswapError

    configure_logging(args.verbose, not args.verbose)
    recipes = [parse_recipe(text) for text in args.recipe]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or Path(f"bench_quality-{args.clips[0].stem}-{args.clips[1].stem}-{stamp}")
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} already holds files; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    scratch = None
    if args.work is None:
        scratch = tempfile.TemporaryDirectory(prefix="bench_quality-")
        args.work = Path(scratch.name)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        return run(args, recipes, out, stamp, started)
    except FaceswapError as error:
        sys.exit(f"bench_quality: error: {error}")
    except KeyboardInterrupt:
        print("interrupted; the figures so far are in", out, file=sys.stderr)
        return 130
    finally:
        if scratch is not None:
            scratch.cleanup()


def run(
    args: argparse.Namespace, recipes: list[tuple[Any, Any]], out: Path, stamp: str, started: float
) -> int:
    from faceswap.fileio import write_json_atomic
    from faceswap.runtime import GPUS
    from faceswap.train import TrainingSession

    clip_a, clip_b = args.clips
    faces = [faces_of(clip, args.work, args.every) for clip in args.clips]
    splits = [split_of(folder, args.validation_every, args.validation_block) for folder in faces]
    clip, alignments = score_clip(clip_a, faces[0], args.every, args.score_frames, args.work)
    if args.record_inputs is not None:
        return record_inputs(recipes[0][0], clip, alignments, args.record_inputs, args.work)
    strip_frames, strip_matrices, strip_original = strip_geometry(clip, args.strip)
    training = (splits[0][0], splits[1][0])
    yardstick = Yardstick(
        clip=clip,
        alignments=alignments,
        training=training,
        validation=(splits[0][1], splits[1][1]),
        identity_every=args.identity_every,
        identities=identities_of(*training),
        strip_frames=strip_frames,
        strip_matrices=strip_matrices,
    )
    if args.replay is not None:
        return replay(args, yardstick, out, strip_original)
    contenders = []
    for number, ((config, hardware), text) in enumerate(zip(recipes, args.recipe, strict=True), start=1):
        name = f"R{number}"
        session = TrainingSession.start(
            args.work / f"{name}-{stamp}", yardstick.training[0], yardstick.training[1], config, hardware
        )
        # The first step traces and compiles the network (tens of seconds on a CPU): not training time.
        session.run(iterations=1)
        contenders.append(Contender(name, text, session))
        print(
            f"{name}: {text or '(train defaults)'} -> {session.state.model}, {session.state.input_size} px",
            flush=True,
        )
    share = args.minutes * 60 / len(contenders)
    device = f"GPU x{len(GPUS)}" if GPUS else "CPU"
    document: dict[str, Any] = {
        "pair": [clip_a.name, clip_b.name],
        "scored_clip": {"path": str(clip), "frames": args.score_frames},
        "minutes": args.minutes,
        "minutes_per_recipe": share / 60,
        "clock": args.clock,
        "device": device,
        "validation": {
            "every": args.validation_every,
            "block": args.validation_block,
            "extract_every": args.every,
        },
        "strip_frames": strip_frames,
        "recipes": [],
    }
    columns: list[tuple[str, np.ndarray]] = []
    title = f"{clip_a.stem} -> {clip_b.stem}, {device}, {args.minutes:g} min shared by {len(contenders)}"
    for point, fraction in enumerate(args.fractions):
        train_until(contenders, fraction * share, args.slice_seconds, args.clock)
        for contender in contenders:
            row, crops = evaluate(contender, point, yardstick, args.work)
            row["fraction"] = fraction
            row["stopped"] = contender.stopped
            contender.points.append(row)
            columns.append((f"{contender.name} {row['minutes']:.1f}m", crops))
            s = row["score"]
            detailed = cell(s["identity_transfer_with_detail"], "{:.0%}")
            print(
                f"{contender.name} at {row['minutes']:.2f} min (iteration {row['iteration']}): identity "
                f"{cell(s['identity_transfer'], '{:.0%}')} ({detailed} with detail), validation SSIM "
                f"{row['validation']['a']['ssim']:.3f}/"
                f"{row['validation']['b']['ssim']:.3f}; evaluated in {row['evaluation_seconds']:.0f} s",
                flush=True,
            )
        document["recipes"] = [
            {"name": c.name, "recipe": c.recipe, "config": c.session.config.to_json(), "points": c.points}
            for c in contenders
        ]
        document["wall_minutes"] = (time.perf_counter() - started) / 60
        write_json_atomic(out / "bench_quality.json", document, indent=1)
        plot_curves(out / "curves.png", contenders, title)
        if strip_original:
            write_strip(out / "strip.png", strip_original, columns)
    print(table(contenders))
    print(f"wall time {(time.perf_counter() - started) / 60:.1f} min; results in {out}")
    return 0


def record_inputs(config: Any, clip: Path, alignments: Path, path: Path, work: Path) -> int:
    """Convert ``clip`` once with a recording stand-in of the recipe's size; write its faces to ``path``."""
    from bench_quality_replay import RecordingModel

    from faceswap.convert import ConvertOptions, convert
    from faceswap.paths import guard_outputs
    from faceswap.train.config import choose_model

    guard_outputs([clip, alignments], [path])
    config = choose_model(config)[0]  # the model train would choose here
    recorder = RecordingModel(config.check_model(), config.centering)
    options = ConvertOptions(
        output=work / "recorded.mp4", alignments=alignments, overwrite=True, progress=False
    )
    convert(clip, options, model=recorder)
    count = recorder.save(path)
    print(
        f"{path}: {count} faces of {clip.name} at {recorder.input_size} px ({recorder.centering} centering)"
    )
    return 0


@dataclass
class Replayed:
    """A curve trained elsewhere, as the report's functions take a contender."""

    name: str
    recipe: str
    points: list[dict[str, Any]] = field(default_factory=list)


def replay(args: argparse.Namespace, yardstick: Yardstick, out: Path, strip_original: list) -> int:
    """Convert and score each point of a curve trained elsewhere (``gpu_check.py curve``)."""
    import json

    from bench_quality_replay import ReplayModel, load_recorded

    from faceswap.fileio import write_json_atomic

    curve = json.loads((args.replay / "curve.json").read_text())
    inputs, input_size, centering = load_recorded(args.inputs)
    if (input_size, centering) != (curve["input_size"], curve["centering"]):
        sys.exit(f"{args.inputs} holds {input_size}-px faces, the curve's model takes {curve['input_size']}")
    config = curve["config"]
    recipe = f"--model {config['model']} -b {config['batch_size']} ({curve['backend']}, {curve['device']})"
    replayed = Replayed("GPU", recipe)
    columns: list[tuple[str, np.ndarray]] = []
    for row in curve["points"]:
        path = args.replay / row["decoded"]
        if not path.is_file():
            continue  # not kept: the files that come back from a GPU machine are limited
        with np.load(path) as decoded:
            model = ReplayModel(inputs, decoded["faces"], decoded["masks"], centering)
        swapped = args.work / "replay" / f"iteration{row['iteration']}.mp4"
        report, crops, timings = swap_and_score(model, swapped, yardstick)
        point = {**row, "minutes": row["train_s"] / 60, "score": report, "evaluation_timings": timings}
        replayed.points.append(point)
        columns.append((f"{row['iteration']} it", crops))
        s = report
        print(
            f"iteration {row['iteration']} ({point['minutes']:.1f} GPU min): identity "
            f"{cell(s['identity_transfer'], '{:.0%}')} ({cell(s['identity_transfer_with_detail'], '{:.0%}')} "
            f"with detail), detail {cell(s['detail'], '{:.2f}')}/{cell(s['detail_ceiling'], '{:.2f}')}",
            flush=True,
        )
        write_json_atomic(
            out / "bench_quality.json", {"replayed": curve, "points": replayed.points}, indent=1
        )
    title = f"{yardstick.clip.stem} -> B, trained on {curve['device']} ({curve['backend']})"
    plot_curves(out / "curves.png", [replayed], title)
    if strip_original and columns:
        write_strip(out / "strip.png", strip_original, columns)
    print(table([replayed]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
