"""Argument types shared by every subcommand: numbers that are finite, whole where they must be, in range.

Python's own ``int`` and ``float`` accept far more than an option should:
``float("nan")``, ``float("inf")``, ``float("1e309")`` (infinite), ``int("١٢")``
(Arabic-Indic digits) and ``int("1_000")``. A ``nan`` then passes every
``value < 0`` check and surfaces at the end of a long run. These types accept
only ASCII decimal numbers and refuse anything not finite, so that a bad value
is refused before any work starts. The exact range of an option is checked once:
by its pipeline (``ExtractOptions.check``, ``TrainConfig``, ...), which API
callers go through too; a type here carries a range only for options no
pipeline bounds (train's ``--batch-size``, ``--rotation``, ...).

Each factory returns an ``argparse`` type function; its
:class:`argparse.ArgumentTypeError` messages start with ``must``, which
:class:`faceswap.cli.OneLineParser` turns into ``--option must ...``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

#: Longest number text accepted (a longer one is never a sensible option value).
MAX_NUMBER_CHARS = 40

_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_DURATION = re.compile(
    r"(?:([0-9]+(?:\.[0-9]+)?)h)?(?:([0-9]+(?:\.[0-9]+)?)m)?(?:([0-9]+(?:\.[0-9]+)?)s?)?", re.ASCII
)
#: Longest --time accepted: a year.
MAX_DURATION_S = 366 * 24 * 3600.0


def _number_text(text: str, pattern: re.Pattern[str], kind: str) -> str:
    stripped = text.strip()
    if len(stripped) > MAX_NUMBER_CHARS or not pattern.fullmatch(stripped):
        raise argparse.ArgumentTypeError(f"must be {kind}, not {text!r}")
    return stripped


def _limit(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _check_range(
    value: float, text: str, minimum: float | None, maximum: float | None, above: float | None
) -> None:
    """Refuse ``value`` outside ``[minimum, maximum]`` (or not above ``above``), quoting ``text``."""
    if (
        (above is None or value > above)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    ):
        return
    if above is not None:
        span = f"above {_limit(above)}" + ("" if maximum is None else f" and at most {_limit(maximum)}")
    elif minimum is not None and maximum is not None:
        span = f"from {_limit(minimum)} to {_limit(maximum)}"
    elif minimum is not None:
        span = f"at least {_limit(minimum)}"
    else:
        span = f"at most {_limit(maximum)}"
    raise argparse.ArgumentTypeError(f"must be {span}, not {text.strip()}")


def whole_number(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """Type of an option that takes a whole number from ``minimum`` to ``maximum`` (either may be open).

    Only ASCII digits with an optional sign: no ``1.0``, no ``1e3``, no ``1_000``.
    """

    def parse(text: str) -> int:
        value = int(_number_text(text, _WHOLE, "a whole number"))
        _check_range(value, text, minimum, maximum, None)
        return value

    parse.__name__ = "whole_number"
    return parse


def finite_float(
    minimum: float | None = None, maximum: float | None = None, *, above: float | None = None
) -> Callable[[str], float]:
    """Type of an option that takes a finite decimal number, at least ``minimum`` (or above ``above``).

    ``nan``, ``inf`` and numbers that overflow to infinity (``1e309``) are refused.
    """

    def parse(text: str) -> float:
        value = float(_number_text(text, _DECIMAL, "a finite number"))
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text.strip()}")
        _check_range(value, text, minimum, maximum, above)
        return value

    parse.__name__ = "finite_float"
    return parse


def duration(text: str) -> float:
    """Seconds in ``90m``, ``2h``, ``1h30m``, ``45s`` or ``600`` (bare numbers are seconds)."""
    cleaned = text.strip().lower()
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or len(cleaned) > MAX_NUMBER_CHARS or match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 45m, 2h, 1h30m, 600s)")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 0 < total <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"the duration {text!r} must be positive and at most a year")
    return total
