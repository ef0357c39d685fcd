"""``faceswap train``: command-line options."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from faceswap.errors import InputError

log = logging.getLogger("faceswap")

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")

#: Options that make up the stored recipe (TrainConfig fields): None when not given, so that
#: --resume keeps the stored value of every option not given again.
_RECIPE = (
    "model",
    "batch_size",
    "learning_rate",
    "beta_1",
    "beta_2",
    "loss",
    "mask_weight",
    "background_weight",
    "eye_mouth_weight",
    "target_loss",
    "save_every",
    "preview_every",
    "preview_faces",
    "seed",
    "tensorboard",
    "timelapse",
)
_AUGMENT = ("rotation", "zoom", "shift", "flip", "warp", "colour")


def parse_duration(text: str) -> float:
    """Seconds in ``90m``, ``2h``, ``1h30m``, ``45s`` or ``600`` (bare numbers are seconds)."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 45m, 2h, 1h30m, 600s)")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"the duration {text!r} must be positive")
    return total


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        parents=[parent],
        help="train a model on two folders of extracted faces",
        description=(
            "Train one shared encoder and two decoders on the aligned faces of person A and person B\n"
            "(folders made by 'faceswap extract'). Training stops when the smoothed face loss of both\n"
            "sides reaches --target-loss, after --iterations or --time, or on Ctrl-C; the model is saved\n"
            "every --save-every iterations and on stopping. Watch preview.png (original, reconstruction\n"
            "and swap of fixed faces) and loss.png in the model folder. --resume goes on exactly where\n"
            "a run stopped, with its stored settings unless given again."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  faceswap train faces/alice faces/bob -m models/alice-bob --model lite --time 30m\n"
            "  faceswap train -m models/alice-bob --resume --iterations 5000\n"
            "\n"
            "Model folder: model.keras (weights and optimizer state), state.json, best/ (the checkpoint\n"
            "with the lowest loss), preview.png, loss.png, timelapse/ and tensorboard/ when asked for.\n"
            "Memory: faces are kept at the model's input size, about 31 KB a face for the 64-px models\n"
            "(20,000 per side: 1.3 GB); the log says how much the two face sets take."
        ),
    )
    parser.add_argument(
        "faces_a",
        nargs="?",
        type=Path,
        metavar="FACES_A",
        help="folder of aligned faces of person A (default with --resume: the stored folder)",
    )
    parser.add_argument(
        "faces_b",
        nargs="?",
        type=Path,
        metavar="FACES_B",
        help="folder of aligned faces of person B (default with --resume: the stored folder)",
    )
    run_group = parser.add_argument_group("model folder and stopping")
    run_group.add_argument(
        "-m",
        "--model-dir",
        type=Path,
        metavar="DIR",
        help="model folder (default: models/<FACES_A name>-<FACES_B name>)",
    )
    run_group.add_argument(
        "--resume",
        action="store_true",
        help="go on training the model in --model-dir (iteration, optimizer state)",
    )
    run_group.add_argument(
        "--model",
        metavar="NAME",
        help="network: original (64 px, 82 M parameters, for GPUs), lite (64 px, every width halved, "
        "for CPUs) or original128 (128 px, for GPUs with 8 GB or more) (default: original; "
        "stored with the model)",
    )
    run_group.add_argument(
        "--iterations", type=int, metavar="N", help="stop after N more iterations (default: no limit)"
    )
    run_group.add_argument(
        "--time",
        type=parse_duration,
        metavar="DURATION",
        help="stop after this much training, e.g. 45m, 2h, 1h30m, 600s (default: no limit)",
    )
    run_group.add_argument(
        "--target-loss",
        type=float,
        metavar="X",
        help="stop when the face loss of both sides, averaged over the last 100 iterations, is at most X "
        "(default: 0.02; 0 never stops)",
    )
    run_group.add_argument(
        "--save-every", type=int, metavar="N", help="save the model every N iterations (default: 250)"
    )
    run_group.add_argument(
        "--preview-every",
        type=int,
        metavar="N",
        help="write preview.png and loss.png every N iterations (default: 100)",
    )
    run_group.add_argument(
        "--preview-faces", type=int, metavar="N", help="faces per side in preview.png (default: 4)"
    )
    run_group.add_argument(
        "--timelapse",
        action=argparse.BooleanOptionalAction,
        help="also keep every preview as timelapse/<iteration>.png (default: off)",
    )
    run_group.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        help="write loss scalars for TensorBoard to <model folder>/tensorboard (default: off)",
    )

    learn = parser.add_argument_group("learning (stored with the model; --resume keeps them unless given)")
    learn.add_argument(
        "-b", "--batch-size", type=int, metavar="N", help="faces per side per step (default: 16)"
    )
    learn.add_argument(
        "--learning-rate", type=float, metavar="LR", help="Adam learning rate (default: 5e-05)"
    )
    learn.add_argument("--beta-1", type=float, metavar="B", help="Adam beta_1 (default: 0.5)")
    learn.add_argument("--beta-2", type=float, metavar="B", help="Adam beta_2 (default: 0.999)")
    learn.add_argument(
        "--loss",
        choices=("mae", "ssim"),
        help="face loss: mae (mean absolute error) or ssim (structural dissimilarity) (default: mae)",
    )
    learn.add_argument(
        "--mask-weight",
        type=float,
        metavar="W",
        help="weight of the mask loss against the face loss (default: 0.1)",
    )
    learn.add_argument(
        "--background-weight",
        type=float,
        metavar="W",
        help="loss weight of pixels outside the face's landmark hull, 0 to 1 (default: 0.2)",
    )
    learn.add_argument(
        "--eye-mouth-weight",
        type=float,
        metavar="W",
        help="extra loss weight on the eyes and mouth, e.g. 2 (default: 0, none)",
    )
    learn.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="fixes weight initialisation and batches (default: random, stored)",
    )
    augment = parser.add_argument_group("augmentation (stored with the model)")
    augment.add_argument(
        "--rotation", type=float, metavar="DEG", help="largest random rotation (default: 10)"
    )
    augment.add_argument("--zoom", type=float, metavar="PCT", help="largest random zoom, %% (default: 5)")
    augment.add_argument(
        "--shift", type=float, metavar="PCT", help="largest random shift, %% of the face (default: 5)"
    )
    augment.add_argument(
        "--flip", type=float, metavar="P", help="probability of a horizontal flip (default: 0.5)"
    )
    augment.add_argument(
        "--warp",
        type=float,
        metavar="PX",
        help="random warp strength: σ in pixels of a 256-px crop's 160-px face (default: 5; 0 turns it off)",
    )
    augment.add_argument(
        "--colour",
        type=float,
        metavar="S",
        help="random contrast, brightness and colour balance, strength 0 to 1 (default: 0, off)",
    )

    hardware = parser.add_argument_group("hardware (chosen per run)")
    hardware.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        help="compute in float16 with float32 weights (default: on when a GPU is present)",
    )
    hardware.add_argument(
        "--xla",
        action="store_true",
        help="compile the training step with XLA (GPU only: it makes CPU training several times slower)",
    )
    hardware.add_argument(
        "--distribute",
        action="store_true",
        help="train on all GPUs (MirroredStrategy), or on all hosts named in TF_CONFIG "
        "(MultiWorkerMirroredStrategy); --batch-size is then the total over all devices",
    )
    parser.set_defaults(handler=run)


def default_model_dir(faces_a: Path, faces_b: Path) -> Path:
    """``models/<A name>-<B name>`` (names made safe for a file name)."""
    from faceswap.fileio import safe_name

    def name(folder: Path) -> str:
        return safe_name(folder.resolve().name or "faces")

    return Path("models") / f"{name(faces_a)}-{name(faces_b)}"


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe options given on the command line (TrainConfig fields), augmentation included."""
    given = {name: getattr(args, name) for name in _RECIPE if getattr(args, name) is not None}
    scaled = {"zoom": 0.01, "shift": 0.01, "warp": 1 / 160}
    changes = {
        name: getattr(args, name) * scaled.get(name, 1.0)
        for name in _AUGMENT
        if getattr(args, name) is not None
    }
    if changes:
        given["augment"] = changes
    return given


def run(args: argparse.Namespace) -> int:
    """Start or resume training, and report how it ended."""
    if args.iterations is not None and args.iterations < 1:
        raise InputError(f"--iterations must be at least 1, not {args.iterations}")
    if args.resume:
        if args.model_dir is None:
            if args.faces_a is None or args.faces_b is None:
                raise InputError(
                    "--resume needs --model-dir (or FACES_A and FACES_B to find the default one)"
                )
            args.model_dir = default_model_dir(args.faces_a, args.faces_b)
    elif args.faces_a is None or args.faces_b is None:
        raise InputError("name the two faces folders, FACES_A and FACES_B (or pass --resume)")
    model_dir = args.model_dir or default_model_dir(args.faces_a, args.faces_b)
    from faceswap.locks import lock_outputs

    with lock_outputs([model_dir], "train"):
        return _train(args, model_dir)


def _train(args: argparse.Namespace, model_dir: Path) -> int:
    """Train with the model folder locked (see :func:`run`)."""
    from faceswap.train import Hardware, TrainConfig, TrainingSession

    hardware = Hardware(
        mixed_precision=args.mixed_precision,
        xla=args.xla,
        distribute=args.distribute,
        progress=not args.quiet,
    )
    if args.resume:
        session = TrainingSession.resume(model_dir, args.faces_a, args.faces_b, hardware, **settings(args))
    else:
        config = TrainConfig(**settings(args))
        session = TrainingSession.start(model_dir, args.faces_a, args.faces_b, config, hardware)
    faces_a, faces_b = session.faces
    config = session.config
    log.info(
        "%s %s model (%d px) in %s: %d faces A, %d faces B, batch %d%s%s; Ctrl-C stops and saves",
        f"resuming at iteration {session.state.iteration} the" if args.resume else "training a new",
        config.model,
        session.state.input_size,
        model_dir,
        len(faces_a),
        len(faces_b),
        config.batch_size,
        ", mixed precision" if session.mixed_precision else "",
        f", {session.replicas} devices" if session.replicas > 1 else "",
    )
    from faceswap.train.session import format_duration

    result = session.run(iterations=args.iterations, time_limit=args.time)
    why = {
        "target": f"reached the target loss {config.target_loss:g}",
        "iterations": "done the iterations asked for",
        "time": "time is up",
        "interrupted": "interrupted",
    }[result.reason]
    log.info(
        "stopped at iteration %d (%s) after %s, %.1f faces/s: loss A %.4f, B %.4f; saved to %s",
        result.iteration,
        why,
        format_duration(result.seconds),
        result.faces_per_second,
        result.loss_a,
        result.loss_b,
        model_dir,
    )
    return 0
