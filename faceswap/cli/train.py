"""``faceswap train``: command-line options."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from faceswap.backends import add_backend_option, choose_backend
from faceswap.cli.options import options_from
from faceswap.cli.validators import duration, finite_float, whole_number
from faceswap.errors import InputError
from faceswap.train.config import INIT_DECODERS, LOSSES, SCHEDULES

log = logging.getLogger("faceswap")

#: Largest --batch-size and --preview-faces accepted: beyond them a run only ends in running out of memory.
MAX_BATCH_SIZE = 1024
MAX_PREVIEW_FACES = 64
#: Largest --mask-weight and --eye-mouth-weight: larger ones overflow float16 losses.
MAX_LOSS_WEIGHT = 100.0
#: Repeated here (not imported) so that --help does not load OpenCV; tests/test_coverage.py checks it.
CENTERINGS = ("face", "legacy")

#: Options that make up the stored recipe (TrainConfig fields): None when not given, so that
#: --resume keeps the stored value of every option not given again.
_RECIPE = (
    "model",
    "centering",
    "batch_size",
    "learning_rate",
    "beta_1",
    "beta_2",
    "lr_schedule",
    "warmup",
    "decay_iterations",
    "clip_norm",
    "loss",
    "mask_weight",
    "detail_weight",
    "background_weight",
    "eye_mouth_weight",
    "target_loss",
    "save_every",
    "preview_every",
    "preview_faces",
    "validation_every",
    "seed",
    "init_from",
    "init_decoders",
    "freeze_encoder",
    "tensorboard",
    "timelapse",
)
_AUGMENT = ("rotation", "zoom", "shift", "flip", "warp", "colour", "to_landmarks", "warp_jitter")


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        parents=[parent],
        help="train a model on two folders of extracted faces",
        description=(
            "Train one shared encoder and two decoders on the aligned faces of person A and person B\n"
            "(folders made by 'faceswap extract'). Training stops when the smoothed face loss of both\n"
            "sides reaches --target-loss, after --iterations or --time, or on Ctrl-C (or SIGTERM, SIGHUP:\n"
            "exit status 128 + the signal number); the model is saved\n"
            "every --save-every iterations and on stopping. Watch preview.png (original, reconstruction\n"
            "and swap of fixed faces) and loss.png in the model folder. --resume goes on exactly where\n"
            "a run stopped, with its stored settings unless given again."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  faceswap train me_faces you_faces -m models/me-you --model lite --time 30m\n"
            "  faceswap train -m models/me-you --resume --iterations 5000\n"
            "  faceswap train --pretrain many_faces -m models/pretrained --time 2h\n"
            "  faceswap train me_faces them_faces --init-from models/pretrained\n"
            "  faceswap train me_faces them_faces --init-from models/me-you --init-decoders none "
            "--freeze-encoder 200\n"
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
        "for CPUs), liae (lite's widths with one decoder for both people, as DeepFaceLab's LIAE; about "
        "0.8 times lite's speed; convert's --direction b2a is its weaker way), "
        "original128 (128 px, for GPUs with 8 GB or more) or residual128 (128 px, light encoder, "
        "residual decoders; about half lite's speed) (default: original with a GPU, lite without; "
        "with --init-from, its model; stored with the model)",
    )
    run_group.add_argument(
        "--centering",
        choices=CENTERINGS,
        help="the square the model sees and paints: face (the whole face with its chin and forehead, "
        "1.5 times as wide as legacy) or legacy (brows to lower lip, the classic crop; models trained "
        "before this option) (default: face; fixed when a model starts)",
    )
    run_group.add_argument(
        "--iterations",
        type=whole_number(),
        metavar="N",
        help="stop after N more iterations (default: no limit)",
    )
    run_group.add_argument(
        "--time",
        type=duration,
        metavar="DURATION",
        help="stop after this much training, e.g. 45m, 2h, 1h30m, 600s (default: no limit)",
    )
    run_group.add_argument(
        "--target-loss",
        type=finite_float(),
        metavar="X",
        help="stop when the smoothed face loss of both sides (the moving average the progress bar "
        "shows, about the last 20 iterations) is at most X (default: 0.02; 0 never stops)",
    )
    run_group.add_argument(
        "--save-every",
        type=whole_number(),
        metavar="N",
        help="save the model every N iterations (default: 250)",
    )
    run_group.add_argument(
        "--preview-every",
        type=whole_number(),
        metavar="N",
        help="write preview.png and loss.png every N iterations (default: 100)",
    )
    run_group.add_argument(
        "--preview-faces",
        type=whole_number(maximum=MAX_PREVIEW_FACES),
        metavar="N",
        help="faces per side in preview.png, at most 64 (default: 4)",
    )
    run_group.add_argument(
        "--validation-every",
        type=whole_number(minimum=0),
        metavar="N",
        help="hold back one run of 5 frames in every N of a side with 200 faces or more and plot their "
        "reconstruction error in loss.png beside the training loss; 0 trains on every face (default: 20)",
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
        "-b",
        "--batch-size",
        type=whole_number(maximum=MAX_BATCH_SIZE),
        metavar="N",
        help="faces per side per step, at most 1024 (default: 16)",
    )
    learn.add_argument(
        "--learning-rate",
        type=finite_float(),
        metavar="LR",
        help="Adam learning rate, the peak of the schedule (default: 3e-04)",
    )
    learn.add_argument("--beta-1", type=finite_float(), metavar="B", help="Adam beta_1 (default: 0.5)")
    learn.add_argument("--beta-2", type=finite_float(), metavar="B", help="Adam beta_2 (default: 0.999)")
    learn.add_argument(
        "--lr-schedule",
        choices=SCHEDULES,
        help="after the warm-up, keep --learning-rate (constant) or let it fall along a half cosine "
        "to a tenth of it over --decay-iterations (cosine) (default: constant)",
    )
    learn.add_argument(
        "--warmup",
        type=whole_number(),
        metavar="N",
        help="raise the learning rate linearly from 0 over the first N iterations (default: 100)",
    )
    learn.add_argument(
        "--decay-iterations",
        type=whole_number(),
        metavar="N",
        help="iterations of the cosine decay, after the warm-up (default: 20000)",
    )
    learn.add_argument(
        "--clip-norm",
        type=finite_float(),
        metavar="X",
        help="scale each step's gradients down to a global norm of at most X (default: 0, no clipping)",
    )
    learn.add_argument(
        "--loss",
        choices=LOSSES,
        help="face loss: mae (mean absolute error), ssim (structural dissimilarity), mae+dssim (their "
        "mean) or ms-ssim (multi-scale structural dissimilarity) (default: mae+dssim)",
    )
    learn.add_argument(
        "--mask-weight",
        type=finite_float(maximum=MAX_LOSS_WEIGHT),
        metavar="W",
        help="weight of the mask loss against the face loss, at most 100 (default: 0.1)",
    )
    learn.add_argument(
        "--detail-weight",
        type=finite_float(maximum=MAX_LOSS_WEIGHT),
        metavar="W",
        help="weight of a detail loss added to the face loss, at most 100: it compares how much fine "
        "detail the face shows, not where (the contrast of each Laplacian pyramid band); 0.3 is "
        "strong (default: 0, off)",
    )
    learn.add_argument(
        "--background-weight",
        type=finite_float(),
        metavar="W",
        help="loss weight of pixels outside the face's landmark hull, 0 to 1 (default: 0.2)",
    )
    learn.add_argument(
        "--eye-mouth-weight",
        type=finite_float(maximum=MAX_LOSS_WEIGHT),
        metavar="W",
        help="extra loss weight on the eyes and mouth, at most 100: 2 makes them count three times, "
        "0 like the rest of the face (default: 2)",
    )
    learn.add_argument(
        "--seed",
        type=whole_number(),
        metavar="N",
        help="fixes weight initialisation and batches (default: random, stored)",
    )
    reuse = parser.add_argument_group("starting from another model")
    reuse.add_argument(
        "--init-from",
        type=Path,
        metavar="MODEL_DIR",
        help="start a new model from the encoder (and the decoders of --init-decoders) of this trained "
        "model folder; the architectures must match",
    )
    reuse.add_argument(
        "--init-decoders",
        choices=INIT_DECODERS,
        metavar="|".join(INIT_DECODERS),
        help="which decoders --init-from copies, each from the same side of the source; for liae, "
        "its shared code and decoder come only with a,b, its inter_a with a (default: a,b)",
    )
    reuse.add_argument(
        "--freeze-encoder",
        type=whole_number(),
        metavar="N",
        help="keep the encoder unchanged for the first N iterations while the decoders learn; then it "
        "trains with Adam moments of its own, its steps growing to full over --warmup iterations "
        "(default: 0)",
    )
    reuse.add_argument(
        "--pretrain",
        type=Path,
        metavar="FACES",
        help="pre-train on one folder of many people's faces (both decoders on the same faces), "
        "to be used with --init-from by later pairs; replaces FACES_A and FACES_B. Its subfolders "
        "count too: 'faceswap extract' of a folder of videos makes one per video",
    )
    augment = parser.add_argument_group("augmentation (stored with the model)")
    augment.add_argument(
        "--rotation",
        type=finite_float(maximum=180),
        metavar="DEG",
        help="largest random rotation, at most 180 (default: 10)",
    )
    augment.add_argument(
        "--zoom", type=finite_float(), metavar="PCT", help="largest random zoom, %% (default: 5)"
    )
    augment.add_argument(
        "--shift",
        type=finite_float(),
        metavar="PCT",
        help="largest random shift, %% of the face (default: 5)",
    )
    augment.add_argument(
        "--flip", type=finite_float(), metavar="P", help="probability of a horizontal flip (default: 0.5)"
    )
    augment.add_argument(
        "--warp",
        type=finite_float(),
        metavar="PX",
        help="random warp strength: σ in pixels of a 256-px crop's 160-px face, used with "
        "--no-warp-to-landmarks (default: 5; 0 turns it off)",
    )
    augment.add_argument(
        "--warp-to-landmarks",
        dest="to_landmarks",
        action=argparse.BooleanOptionalAction,
        help="bend each input towards the landmarks of a similar face of the other person (a thin-plate "
        "spline) instead of the random warp; --no-warp-to-landmarks for the random warp (default: on)",
    )
    augment.add_argument(
        "--warp-jitter",
        type=finite_float(),
        metavar="PX",
        help="with warp to landmarks: a random warp of σ PX (of a 256-px crop's 160-px face, as --warp) "
        "added on top of it (default: 0, off)",
    )
    augment.add_argument(
        "--colour",
        type=finite_float(),
        metavar="S",
        help="random contrast, brightness and colour balance, strength 0 to 1 (default: 0, off)",
    )

    hardware = parser.add_argument_group("hardware (chosen per run)")
    hardware.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        help="compute in bfloat16 (float16 on older GPUs) with float32 weights "
        "(default: on when a GPU is present, or a CPU with Intel AMX units, which compute bfloat16 "
        "natively; elsewhere on a CPU half precision is emulated and slow)",
    )
    hardware.add_argument(
        "--xla",
        action="store_true",
        help="compile the training step with XLA (GPU only: it makes CPU training several times slower)",
    )
    hardware.add_argument(
        "--distribute",
        action="store_true",
        help="train on all devices, or with other machines: on tensorflow, all GPUs (MirroredStrategy) "
        "or the workers named in TF_CONFIG (MultiWorkerMirroredStrategy); on jax, all devices "
        "(DataParallel), over the machines named by KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES "
        "and _PROCESS_ID; --batch-size is the total over all devices; only the chief (worker 0) "
        "writes the model folder (see README, 'Training on several machines')",
    )
    add_backend_option(hardware)
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
    if getattr(args, "pretrain", None) is not None:
        given["pretrain"] = True
    if "init_from" in given:
        given["init_from"] = str(given["init_from"])
    scaled = {"zoom": 0.01, "shift": 0.01, "warp": 1 / 160, "warp_jitter": 1 / 160}
    changes = {
        name: getattr(args, name) * scaled[name] if name in scaled else getattr(args, name)
        for name in _AUGMENT
        if getattr(args, name) is not None
    }
    if changes:
        given["augment"] = changes
    return given


def run(args: argparse.Namespace) -> int:
    """Start or resume training, and report how it ended."""
    choose_backend(args.backend)
    if args.iterations is not None and args.iterations < 1:
        raise InputError(f"--iterations must be at least 1, not {args.iterations}")
    if args.pretrain is not None:
        if args.faces_a is not None or args.faces_b is not None or args.resume:
            raise InputError("--pretrain names the one faces folder: give no FACES_A, FACES_B or --resume")
        args.faces_a = args.faces_b = args.pretrain
    if args.resume and args.init_from is not None:
        raise InputError("--init-from starts a new model; --resume goes on with the one in --model-dir")
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
    from faceswap.train.distribute import model_folder_lock

    with model_folder_lock(model_dir, args.distribute):
        return _train(args, model_dir)


def _train(args: argparse.Namespace, model_dir: Path) -> int:
    """Train with the model folder locked (see :func:`run`)."""
    from faceswap.train import Hardware, TrainConfig, TrainingSession

    hardware = options_from(args, Hardware)
    if args.resume:
        session = TrainingSession.resume(model_dir, args.faces_a, args.faces_b, hardware, **settings(args))
    else:
        config = TrainConfig(**settings(args))
        session = TrainingSession.start(model_dir, args.faces_a, args.faces_b, config, hardware)
    faces_a, faces_b = session.faces
    config = session.config
    if args.warp is not None and config.augment.to_landmarks:
        log.warning("--warp is unused with warp to landmarks: add --no-warp-to-landmarks for the random warp")
    if args.warp_jitter and not config.augment.to_landmarks:
        log.warning("--warp-jitter is unused without warp to landmarks: --warp sets the random warp")
    log.info(
        "%s %s model (%d px) in %s: %d faces A, %d faces B, batch %d%s%s; Ctrl-C stops and saves",
        f"resuming at iteration {session.state.iteration} the" if args.resume else "training a new",
        config.model,
        session.state.input_size,
        model_dir,
        len(faces_a),
        len(faces_b),
        config.batch_size,
        session.devices.describe(),
        f", mixed precision ({session.compute.policy.removeprefix('mixed_')})"
        if session.mixed_precision
        else "",
    )
    from faceswap.train.monitor import format_duration

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
        model_dir if session.chief else f"{model_dir} by the chief process",
    )
    if result.signal is not None:  # saved; the exit status still says a signal stopped it
        from faceswap.signals import Interrupted

        raise Interrupted(result.signal)
    return 0
