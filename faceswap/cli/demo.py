"""``faceswap demo``: command-line options."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from faceswap.cli.validators import finite_float

log = logging.getLogger("faceswap")

DEFAULT_OUT = Path("faceswap-demo")


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``demo`` subcommand."""
    from faceswap.demo import DEFAULT_MINUTES

    parser = subparsers.add_parser(
        "demo",
        parents=[parent],
        help="run extract, train, convert and score on two bundled portraits",
        description=(
            "Show the whole toolkit on no data of yours. The astronaut photo of scikit-image (A) and\n"
            "matplotlib's Grace Hopper sample (B), both public domain and installed with those packages,\n"
            "are filmed into short clips (pan, zoom, slight roll); their faces are extracted; the lite\n"
            "model trains for --minutes; the astronaut's clip is converted to Grace Hopper's face; and\n"
            "the swap is scored against what the untrained network makes of it."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Writes into --out: demo.mp4, demo.gif, preview.png (a frame, original beside converted),\n"
            "loss.png, score.json (trained and untrained reports), and work/ (the clips, the extracted\n"
            "faces, the model folder). Running the demo again replaces its own files there.\n"
            "\n"
            "examples:\n"
            "  faceswap demo\n"
            "  faceswap demo --out /tmp/demo --minutes 20"
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output folder (default: ./{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--minutes",
        type=finite_float(),
        default=DEFAULT_MINUTES,
        metavar="N",
        help="training time in minutes; longer gives a sharper face (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print what it made and measured."""
    from faceswap.demo import run_demo

    result = run_demo(args.out, args.minutes, progress=not args.quiet)
    print(result.format())
    return 0
