"""``faceswap extract``: command-line options (work in progress)."""

from __future__ import annotations

import argparse

from faceswap.errors import FaceswapError


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``extract`` subcommand."""
    parser = subparsers.add_parser("extract", parents=[parent], help="(not yet available)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Not implemented yet."""
    raise FaceswapError("extract is not implemented yet")
