"""``faceswap score``: command-line options."""

from __future__ import annotations

import argparse
from pathlib import Path

from faceswap.errors import InputError


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``score`` subcommand."""
    parser = subparsers.add_parser(
        "score",
        parents=[parent],
        help="measure a swap: identity, pose, expression, steadiness, background",
        description=(
            "Compare a swapped clip with its original frame by frame and report identity transfer "
            "(dlib face embeddings), pose and expression kept, added jitter, background PSNR and lost "
            "faces. Prints a table; --json writes all figures and per-frame values."
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
            "the identity is the mean embedding of at most 64 of them, evenly spread"
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
        type=int,
        default=1,
        metavar="N",
        help="compute face embeddings (about 0.1 s per face on a CPU) on every Nth frame only "
        "(default: %(default)s, every frame)",
    )
    parser.add_argument(
        "--upsample",
        type=int,
        default=0,
        choices=(0, 1, 2),
        help="detector upsampling for small faces in the clips (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check the inputs, score, print the table and write the JSON report."""
    from faceswap.locks import lock_outputs
    from faceswap.paths import guard_outputs

    inputs = (args.original, args.swapped, *args.target, *args.source)
    for path in inputs:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    if args.identity_every < 1:
        raise InputError(f"--identity-every must be at least 1, not {args.identity_every}")
    guard_outputs(inputs, [args.json])
    with lock_outputs([args.json], "score"):
        return _score(args)


def _score(args: argparse.Namespace) -> int:
    """Score and report, once the --json output is checked and locked."""
    from faceswap.fileio import check_output_file, write_json_atomic

    if args.json is not None:
        check_output_file(args.json, overwrite=args.overwrite)

    from faceswap.score import format_report, score

    report = score(
        args.original,
        args.swapped,
        args.target,
        args.source,
        identity_every=args.identity_every,
        upsample=args.upsample,
        progress=not args.quiet,
    )
    print(format_report(report))
    if args.json is not None:
        write_json_atomic(args.json, report.to_json(), indent=1)
    return 0
