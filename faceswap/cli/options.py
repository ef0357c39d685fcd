"""Options that several commands share, and from parsed arguments to a pipeline's options dataclass."""

from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path
from typing import Any, TypeVar

from faceswap.cli.validators import finite_float

T = TypeVar("T")

#: dlib's own same-person distance (:data:`faceswap.identity.SAME_PERSON_THRESHOLD`), repeated so that
#: --help does not load dlib; tests/test_cli.py checks it.
IDENTITY_THRESHOLD = 0.6


def add_person_options(parser: argparse.ArgumentParser, reference_help: str) -> None:
    """``--reference PHOTO...`` (what it does here: ``reference_help``) and ``--identity-threshold``."""
    parser.add_argument("--reference", nargs="+", type=Path, default=[], metavar="PHOTO", help=reference_help)
    parser.add_argument(
        "--identity-threshold",
        type=finite_float(),
        default=IDENTITY_THRESHOLD,
        metavar="D",
        help="largest embedding distance to the reference that still counts as the same person; "
        "lower is stricter (default: %(default)s, dlib's own threshold)",
    )


def options_from(args: argparse.Namespace, options: type[T], **given: Any) -> T:
    """``options`` (a dataclass) made from the arguments of the same names, ``progress`` from ``-q``.

    ``given`` sets the fields whose value is not the argument as parsed (a
    list made of a tuple, a nested dataclass); fields that no argument names
    keep their defaults. ``options`` may also be a :func:`functools.partial`
    of the dataclass (the fault tests patch one in).
    """
    made = options.func if isinstance(options, functools.partial) else options  # a partial: its dataclass
    fields = {field.name for field in dataclasses.fields(made)}  # type: ignore[arg-type]
    values = {name: value for name, value in vars(args).items() if name in fields}
    if "progress" in fields:
        values["progress"] = not args.quiet
    return options(**{**values, **given})
