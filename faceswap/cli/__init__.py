"""The ``faceswap`` command line: argument parsing and error reporting only.

Each subcommand lives in its own module (``faceswap/cli/<command>.py``) with a
``register(subparsers)`` function that declares its options and a ``run(args)``
that imports and calls the pipeline. Pipelines are imported lazily, so
``faceswap extract --help`` answers without loading TensorFlow.

Exit status: 0 success, 1 a problem with the input or the machine (one line on
stderr, see :mod:`faceswap.errors`), 2 a usage error, 128 + the signal's number
when SIGINT, SIGTERM or SIGHUP stopped it (130 for Ctrl-C; see :mod:`faceswap.signals`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from faceswap import __version__
from faceswap.errors import FaceswapError
from faceswap.signals import exit_guard, interruption, signal_name, termination_raises

#: Subcommands in the order ``--help`` lists them (module names in this package).
COMMANDS = ("extract", "sort", "train", "convert", "score", "demo")

log = logging.getLogger("faceswap")

_OPTION_MUST = re.compile(r"^argument ([^:]+): must ")
_NEGATIVE_NUMBER = re.compile(
    r"^-(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$|^-(?:inf|infinity|nan)$", re.IGNORECASE
)


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line, like every other faceswap error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes "-1e-3" and "-inf" for options ("expected one argument"): let them
        # reach the option's type, which accepts the one and names what is wrong with the other.
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``<prog>: error: <message>`` and exit with status 2.

        argparse's ``argument --every: must be ...`` (from :mod:`faceswap.cli.validators`)
        reads ``--every must be ...``, as the pipelines' own option errors do.
        """
        message = _OPTION_MUST.sub(r"\1 must ", message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (``-v``, ``-q``)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="log details, and show a traceback with any error"
    )
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings and errors; no progress bar"
    )
    return parent


def build_parser() -> OneLineParser:
    """The complete parser with every subcommand registered."""
    parser = OneLineParser(
        prog="faceswap",
        description="Swap faces in videos: extract faces, train a model, convert a video, score the result.",
        epilog="Run 'faceswap COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"faceswap {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    parent = common_options()
    for name in COMMANDS:
        module = importlib.import_module(f"faceswap.cli.{name}")
        module.register(subparsers, parent)
    return parser


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Send log records to stderr as plain lines (``warning: ...`` for warnings)."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    root = logging.getLogger("faceswap")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not what it was when logging was set up.

    A caller (a test, a notebook) that swaps ``sys.stderr`` and later closes its
    stand-in would otherwise leave every later record writing to a closed file.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``faceswap`` console script; returns the exit status.

    Without ``argv`` (a program: the arguments come from ``sys.argv``) the
    process is also sure to end once the status is known (:func:`faceswap.signals.exit_guard`).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, a usage error: return its status, as documented
        return stop.code if isinstance(stop.code, int) else 2
    verbose = getattr(args, "verbose", False)
    configure_logging(verbose, getattr(args, "quiet", False))
    with termination_raises():
        code = _run(args, f"faceswap {args.command}", verbose)
    if argv is None:
        exit_guard(code)
    return code


def _run(args: argparse.Namespace, prog: str, verbose: bool) -> int:
    """Run the subcommand; every way it can end becomes an exit status (and at most one line)."""
    try:
        return int(args.handler(args) or 0)
    except FaceswapError as error:
        if verbose:
            traceback.print_exc()
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as error:  # Ctrl-C, SIGTERM or SIGHUP: the pipeline has cleaned up
        stopped = interruption(error)
        print(f"{prog}: interrupted ({signal_name(stopped.signum)})", file=sys.stderr)
        return stopped.exit_code
    except MemoryError:
        print(f"{prog}: error: out of memory (try a smaller --batch-size or fewer --jobs)", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: still one line unless -v asks for more
        if verbose:
            traceback.print_exc()
        detail = " ".join(str(error).split())[:200]
        print(
            f"{prog}: internal error: {type(error).__name__}: {detail} (run with -v for the traceback)",
            file=sys.stderr,
        )
        return 1
