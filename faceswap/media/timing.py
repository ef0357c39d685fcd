"""Frame timing: the exact frame rate of a stream, and constant-rate resampling of a variable one.

A container's time base is not the frame rate: Matroska and WebM count in
milliseconds, so a 30 fps video steps 33, 33, 34 ms, and the most common step
(33 ms) would claim 1000/33 fps, 36 s of drift an hour. The rate is instead
the simplest exact rate that *every* timestamp agrees with (within one tick
of the time base, or a tenth of a frame): first the rate ffmpeg reports for
the stream (its ``tbr``, ``r_frame_rate``), then the most common step, then
the standard rates near the mean. A stream no constant rate fits is variable;
its frames are written at a constant rate by repeating or dropping frames
(:func:`constant_rate_repeats`), so the picture keeps its timing against the
audio to within one frame.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np

#: How far a frame may sit from a constant-rate grid, as a fraction of a frame, and still count as on it.
GRID_TOLERANCE = Fraction(1, 10)
#: Rates libavformat itself guesses from (``get_std_framerate``): twelfths of a frame per second up
#: to 30, whole rates up to 60, 80, 120, 240, and the NTSC rates (n·1000/1001).
STANDARD_RATES = tuple(
    sorted(
        {Fraction(n, 12) for n in range(1, 361)}
        | {Fraction(n) for n in (*range(31, 61), 80, 120, 240)}
        | {Fraction(n * 1000, 1001) for n in (12, 15, 24, 30, 48, 60, 120, 240)}
    )
)
_TBR = re.compile(r"Stream #0:\d+.*?: Video: .*?(\d+(?:\.\d+)?)(k?) tbr")


def reported_rate(stderr: str) -> str | None:
    """The frame rate ffmpeg prints for the first video stream (``tbr``, rounded), as text."""
    match = _TBR.search(stderr)
    if not match:
        return None
    return match.group(1) + match.group(2)


def rates_printed_as(text: str) -> list[Fraction]:
    """Exact rates that ffmpeg prints as ``text`` (it rounds to two decimals: ``29.97`` is 30000/1001)."""
    if text.endswith("k"):
        return [Fraction(text[:-1]) * 1000]
    printed = Fraction(text)
    near = [rate for rate in STANDARD_RATES if _print_fps(rate) == text]
    return near + ([printed] if printed not in near else [])


def _print_fps(rate: Fraction) -> str:
    """ffmpeg's ``print_fps``: a whole rate without decimals, otherwise two."""
    hundredths = round(rate * 100)
    if hundredths % 100:
        return f"{float(rate):3.2f}"
    return f"{float(rate):1.0f}"


def exact_frame_rate(
    stamps: Sequence[int], time_base: Fraction, hints: Iterable[Fraction] = ()
) -> tuple[Fraction | None, Fraction | None]:
    """The constant rate every timestamp fits, and a rate to resample at when none does.

    Parameters
    ----------
    stamps
        Presentation timestamps of the frames, in ``time_base`` ticks, sorted.
    time_base
        Seconds per tick.
    hints
        Rates to try first, in order (what ffmpeg reports for the stream).

    Returns
    -------
    (rate, resample_rate)
        ``rate`` is the exact constant rate, or ``None`` for a variable-rate
        stream; then ``resample_rate`` is the rate to write it at: the first
        hint that lies between the mean rate and the fastest frame-to-frame
        rate (ffmpeg's ``r_frame_rate`` is the lowest rate that holds every
        timestamp), else the most common step's rate.
        Both are ``None`` when the timestamps give no rate at all (a single frame).
    """
    hints = [rate for rate in hints if rate > 0]
    steps = Counter(b - a for a, b in itertools.pairwise(stamps) if b > a)
    if not steps:
        return (hints[0], None) if hints else (None, None)
    common = 1 / (steps.most_common(1)[0][0] * time_base)
    span = (stamps[-1] - stamps[0]) * time_base
    mean = (len(stamps) - 1) / span
    near_mean = [rate for rate in STANDARD_RATES if abs(rate - mean) <= mean / 100]
    ticks = np.asarray(stamps, dtype=np.float64) - stamps[0]
    candidates = list(dict.fromkeys([*hints, common, *sorted(near_mean, key=lambda r: abs(r - mean))]))
    for lenient in (False, True):  # a rate all frames fit to the tick beats one they fit loosely
        for rate in candidates:
            if _fits(ticks, rate, time_base, lenient):
                return rate, None
    fastest = 1 / (min(steps) * time_base)
    for rate in hints:
        if mean <= rate <= fastest * Fraction(101, 100):
            return None, rate
    return None, common


def _fits(ticks: np.ndarray, rate: Fraction, time_base: Fraction, lenient: bool) -> bool:
    """Whether every frame lies on the ``rate`` grid: within a tick (or, ``lenient``, a tenth of a frame)."""
    ticks_per_frame = 1 / (rate * time_base)
    tolerance = float(max(Fraction(1), GRID_TOLERANCE * ticks_per_frame)) if lenient else 1.0
    grid = np.arange(len(ticks), dtype=np.float64) * float(ticks_per_frame)
    return bool(np.max(np.abs(ticks - grid)) <= tolerance)


def constant_rate_repeats(times: Sequence[float], duration: float, rate: Fraction) -> list[int]:
    """How often to write each frame so that frames at ``times`` play at the constant ``rate``.

    Output tick ``k`` (at ``k / rate`` s) shows the frame on screen then: frame
    ``i`` covers the ticks from ``round(times[i] · rate)`` to the next frame's,
    the last one up to ``round(duration · rate)``. Frames closer together than
    a tick are written 0 times (dropped); the total is the duration in ticks, so
    the written video ends within half a frame of the input's.

    Parameters
    ----------
    times
        Presentation time of each frame in seconds from the first, ascending.
    duration
        The input's video duration in seconds (to the end of the last frame).
    rate
        The constant output rate.
    """
    if not times:
        return []
    starts = [round(Fraction(t).limit_denominator(10**9) * rate) for t in times]
    end = max(round(Fraction(duration).limit_denominator(10**9) * rate), starts[-1] + 1)
    bounds = [*starts[1:], end]
    repeats = []
    shown = 0
    for bound in bounds:
        count = max(0, bound - shown)
        repeats.append(count)
        shown += count
    return repeats
