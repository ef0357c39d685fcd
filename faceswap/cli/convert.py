"""``faceswap convert``: command-line options (work in progress)."""

from __future__ import annotations

import argparse

from faceswap.errors import FaceswapError


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``convert`` subcommand."""
    parser = subparsers.add_parser("convert", parents=[parent], help="(not yet available)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Not implemented yet."""
    raise FaceswapError("convert is not implemented yet")
