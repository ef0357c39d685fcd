"""The progress-bar factory: line-based and throttled in files, sane in odd terminals, silent when off."""

from __future__ import annotations

import fcntl
import io
import os
import struct
import termios
import threading

import pytest

from faceswap import progress
from faceswap.progress import progress_bar, terminal_shape


def test_a_file_gets_whole_throttled_lines() -> None:
    stream = io.StringIO()
    with progress_bar(10_000, "score", stream=stream) as bar:
        for _ in range(10_000):
            bar.update(1)
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert len(lines) <= 3  # the first line and the last, with LINE_INTERVAL_S between any others
    assert lines[-1].startswith("score: 100%")
    assert "10000/10000" in lines[-1]


def test_lines_come_at_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 0.0)
    stream = io.StringIO()
    with progress_bar(3, "extract", stream=stream) as bar:
        for _ in range(3):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    # (closing draws the last line again, with the overall rate)
    assert list(dict.fromkeys(line.split("|")[0] for line in lines)) == [
        "extract:   0%",
        "extract:  33%",
        "extract:  67%",
        "extract: 100%",
    ]


def test_the_postfix_shown_is_the_one_of_the_count_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 0.0)
    stream = io.StringIO()
    with progress_bar(4, "extract", stream=stream) as bar:
        bar.advance_to(2, faces=3)
        bar.advance_to(2, faces=3)  # no move, no line
        bar.advance_to(4, faces=7)
    lines = stream.getvalue().splitlines()
    assert "2/4" in lines[1] and "faces=3" in lines[1]
    assert "4/4" in lines[-1] and "faces=7" in lines[-1]
    assert not any("2/4" in line for line in lines[2:])


def test_a_timed_bar_shows_time_left_not_seconds_per_second() -> None:
    stream = io.StringIO()
    with progress_bar(600, "train original", timed=True, stream=stream) as bar:
        bar.set_postfix_str("it 12 | loss A 0.0500")
        bar.advance_to(60)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("train original:  10%")
    assert "<" in last and "it 12 | loss A 0.0500" in last
    assert "s/s" not in last and "60/600" not in last


def test_no_total_no_percentage() -> None:
    stream = io.StringIO()
    with progress_bar(None, "train", unit="it", initial=5, stream=stream) as bar:
        bar.update(1)
    assert stream.getvalue().splitlines()[-1].startswith("train: 6it")


def test_switched_off_it_writes_nothing_and_starts_no_thread() -> None:
    threads = threading.active_count()
    bar = progress_bar(10, "quiet", enabled=False)
    with bar:
        bar.update(3)
        bar.advance_to(5, faces=1)
        bar.set_postfix_str("ignored")
    assert bar.disable and bar.n == 0
    assert list(bar.wrap(range(3))) == [0, 1, 2]
    assert threading.active_count() == threads


def test_wrap_counts_each_item_handled() -> None:
    stream = io.StringIO()
    assert list(progress_bar(3, "sort", unit="face", stream=stream).wrap("abc")) == ["a", "b", "c"]
    assert "3/3" in stream.getvalue().splitlines()[-1]


def read_all(leader: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed (one read may return a part)."""
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end is closed and everything has been read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks).decode()


def test_a_terminal_of_zero_columns_still_shows_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    with os.fdopen(follower, "w") as terminal:
        assert terminal_shape(terminal) == (progress.FALLBACK_COLUMNS - 1, progress.FALLBACK_LINES - 1)
        with progress_bar(5, "demo", stream=terminal) as bar:
            bar.update(5)
        terminal.flush()
    shown = read_all(leader)
    assert "demo: 100%" in shown and "5/5" in shown
    assert max(len(line) for line in shown.replace("\r", "\n").splitlines()) <= progress.FALLBACK_COLUMNS


def test_columns_from_the_environment_when_the_terminal_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    assert terminal_shape(io.StringIO())[0] == 119
