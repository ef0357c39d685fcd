"""The loss history kept in ``state.json``: one ``[iteration, loss_a, loss_b]`` row per step, bounded."""

from __future__ import annotations

import numpy as np

#: Above this many rows, the loss history is halved by averaging neighbours (older rows first).
MAX_HISTORY = 20000


def append_loss(
    history: list[list[float]], iteration: int, loss_a: float, loss_b: float
) -> list[list[float]]:
    """``history`` with one step's row appended (in place), halved past :data:`MAX_HISTORY` rows."""
    history.append([iteration, float(loss_a), float(loss_b)])
    return halve(history) if len(history) > MAX_HISTORY else history


def halve(history: list[list[float]]) -> list[list[float]]:
    """Average neighbouring rows (keeping the later iteration number): half the rows, the same curve."""
    rows = np.asarray(history, np.float64)
    pairs = len(rows) // 2 * 2
    merged = np.column_stack([rows[1:pairs:2, 0], (rows[0:pairs:2, 1:] + rows[1:pairs:2, 1:]) / 2])
    result = [[int(row[0]), float(row[1]), float(row[2])] for row in merged]
    return result + [list(row) for row in history[pairs:]]
