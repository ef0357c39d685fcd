"""``--frames``: frame ranges parsed, and the frames to find faces in around them."""

from __future__ import annotations

import pytest

from faceswap.errors import InputError
from faceswap.frame_ranges import SMOOTH_CONTEXT, detection_windows, parse_frame_ranges


def test_frame_ranges() -> None:
    assert parse_frame_ranges("10-50,90-120", 200) == [range(10, 51), range(90, 121)]
    assert parse_frame_ranges("7", 10) == [range(7, 8)]
    assert parse_frame_ranges("5-", 10) == [range(5, 10)]
    assert parse_frame_ranges(" 0-2 , 4 ", 10) == [range(0, 3), range(4, 5)]
    assert parse_frame_ranges("8-100", 10) == [range(8, 10)]  # cut at the end, with a warning
    for bad, message in [
        ("a-b", "not a frame number"),
        ("5-3", "ends before"),
        ("12", "after the last"),
        ("", "not"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_frame_ranges(bad, 10)
    assert parse_frame_ranges("2-3,8", 10) == [range(2, 4), range(8, 9)]


def test_detection_windows_widen_and_merge() -> None:
    assert detection_windows(None, 100) == [range(100)]
    windows = detection_windows([range(40, 45), range(50, 52), range(200, 210)], 300)
    assert windows == [
        range(40 - SMOOTH_CONTEXT, 52 + SMOOTH_CONTEXT),
        range(200 - SMOOTH_CONTEXT, 210 + SMOOTH_CONTEXT),
    ]
    assert detection_windows([range(0, 3)], 10) == [range(0, 10)]
