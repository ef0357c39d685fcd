"""``faceswap score``: command-line options."""

from __future__ import annotations

import argparse
from pathlib import Path

from faceswap.cli.train import CENTERINGS
from faceswap.cli.validators import whole_number
from faceswap.errors import InputError


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``score`` subcommand."""
    parser = subparsers.add_parser(
        "score",
        parents=[parent],
        help="measure a swap: identity, detail, pose, expression, steadiness, background",
        description=(
            "Compare a swapped clip with its original frame by frame and report identity transfer "
            "(dlib face embeddings), the inner face's detail against what a perfect model of the "
            "model's input size reaches, pose and expression kept, added jitter, background PSNR and "
            "lost faces. Identity transfer is also given counting only frames whose face is detailed. "
            "Prints a table; --json writes all figures and per-frame values."
        ),
    )
    parser.add_argument("original", type=Path, help="the original video, gif or folder of frames")
    parser.add_argument("swapped", type=Path, help="its swapped version (same number and size of frames)")
    parser.add_argument(
        "--target",
        nargs="+",
        type=Path,
        required=True,
        metavar="PATH",
        help=(
            "photos, or folders of photos or extracted faces, of the person whose face was put in; "
            "the identity is the mean embedding of at most 64 of them, evenly spread; extracted "
            "faces also tell which frames' expression and turn the person's faces show (expression "
            "kept 'where shown')"
        ),
    )
    parser.add_argument(
        "--source",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="photos or faces of the person who was replaced (default: each frame's original face)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON to FILE")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.add_argument(
        "--identity-every",
        type=whole_number(),
        default=1,
        metavar="N",
        help="compute face embeddings (about 0.1 s per face on a CPU) on every Nth frame only "
        "(default: %(default)s, every frame)",
    )
    parser.add_argument(
        "--upsample",
        type=whole_number(),
        default=0,
        choices=(0, 1, 2),
        help="detector upsampling for small faces in the clips (default: %(default)s)",
    )
    parser.add_argument(
        "-m",
        "--model",
        "--model-dir",
        dest="model",
        type=Path,
        metavar="DIR",
        help="the model folder that made the swap: its input size sets the detail ceiling",
    )
    parser.add_argument(
        "--model-size",
        type=whole_number(),
        metavar="PX",
        help="input size of the model that made the swap, for the detail ceiling "
        "(default: the one stored in -m's folder, else 64)",
    )
    parser.add_argument(
        "--centering",
        choices=CENTERINGS,
        help="the square that model sees and paints, for the detail ceiling "
        "(default: the one stored in -m's folder, else face)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check the inputs, score, print the table and write the JSON report."""
    from faceswap.locks import lock_outputs
    from faceswap.paths import guard_outputs

    inputs = (args.original, args.swapped, *args.target, *args.source)
    inputs += (args.model,) if args.model is not None else ()
    for path in inputs:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    if args.identity_every < 1:
        raise InputError(f"--identity-every must be at least 1, not {args.identity_every}")
    if args.model_size is not None and args.model_size < 8:
        raise InputError(f"--model-size must be at least 8 px, not {args.model_size}")
    guard_outputs(inputs, [args.json])
    with lock_outputs([args.json], "score"):
        return _score(args)


def _score(args: argparse.Namespace) -> int:
    """Score and report, once the --json output is checked and locked."""
    from faceswap.fileio import check_output_file, write_json_atomic

    if args.json is not None:
        check_output_file(args.json, overwrite=args.overwrite)

    from faceswap.align import DEFAULT_CENTERING
    from faceswap.score import DEFAULT_MODEL_SIZE, format_report, score

    model_size, centering = args.model_size, args.centering
    if args.model is not None and (model_size is None or centering is None):
        from faceswap.model_folder import read_state

        state = read_state(args.model)
        model_size = state.input_size if model_size is None else model_size
        centering = state.centering if centering is None else centering
    model_size = DEFAULT_MODEL_SIZE if model_size is None else model_size
    centering = DEFAULT_CENTERING if centering is None else centering

    report = score(
        args.original,
        args.swapped,
        args.target,
        args.source,
        identity_every=args.identity_every,
        upsample=args.upsample,
        model_size=model_size,
        centering=centering,
        progress=not args.quiet,
    )
    print(format_report(report))
    if args.json is not None:
        write_json_atomic(args.json, report.to_json(), indent=1)
    return 0
