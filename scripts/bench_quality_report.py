"""The outputs of scripts/bench_quality.py: the terminal table, curves.png and strip.png.

Each takes the benchmark's contenders (a name and the points measured, as
:func:`bench_quality.evaluate` records them) and writes or returns one view.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

# -- output -------------------------------------------------------------------------------------------------


def cell(value: float | None, pattern: str) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and not math.isfinite(value))
        else pattern.format(value)
    )


def table(contenders: list[Any]) -> str:
    """The terminal table: one line per recipe and point."""
    header = (
        f"{'recipe':<6} {'min':>6} {'iter':>6} {'valSSIM A/B':>11} {'valMAE A/B':>11} {'kept A/B':>9} "
        f"{'swap':>4} {'ident':>6} "
        f"{'+detail':>7} {'detail/ceil':>11} {'d(B)':>5} {'d(A)':>5} {'yaw/pitch/roll °':>16} "
        f"{'motion °':>14} {'expr%':>5} {'shown':>5} {'jitter':>6} {'seam':>5} {'lost':>4}"
    )
    lines = [header]
    for contender in contenders:
        for row in contender.points:
            s, v = row["score"], row["validation"]
            pose = s["pose_error"]
            motion = s.get("pose_tracking_error", {})  # not in reports of older versions

            def percent(value):
                return cell(None if value is None else 100 * value, "{:.0f}%")

            lines.append(
                f"{contender.name:<6} {row['minutes']:>6.2f} {row['iteration']:>6} "
                f"{v['a']['ssim']:>5.3f}/{v['b']['ssim']:<5.3f} {v['a']['mae']:>5.3f}/{v['b']['mae']:<5.3f} "
                # detail kept by the reconstructions and by the swap (not in older reports)
                f"{cell(v['a'].get('detail'), '{:.2f}'):>4}/{cell(v['b'].get('detail'), '{:.2f}'):<4} "
                f"{cell(v.get('swap_detail'), '{:.2f}'):>4} "
                f"{percent(s['identity_transfer']):>6} {percent(s['identity_transfer_with_detail']):>7} "
                f"{cell(s['detail'], '{:.2f}'):>5}/{cell(s['detail_ceiling'], '{:.2f}'):<5} "
                f"{cell(s['target_distance'], '{:.2f}'):>5} {cell(s['source_distance'], '{:.2f}'):>5} "
                f"{'/'.join(cell(pose[a], '{:.1f}') for a in ('yaw', 'pitch', 'roll')):>16} "
                f"{'/'.join(cell(motion.get(a), '{:.1f}') for a in ('yaw', 'pitch', 'roll')):>14} "
                f"{cell(s['expression_error'], '{:.2f}'):>5} "
                f"{cell(s.get('expression_error_covered'), '{:.2f}'):>5} "  # not in older reports
                f"{cell(s['steadiness'], '{:.2f}'):>6} "
                f"{cell(s.get('seam'), '{:.2f}'):>5} "  # not in older reports
                f"{s['lost_faces']:>4}"
            )
    legend = [f"{c.name}: {c.recipe or '(train defaults)'}" for c in contenders]
    return "\n".join(lines + legend)


def plot_curves(path: Path, contenders: list[Any], title: str) -> None:
    """Identity transfer (raw and with detail) and validation SSIM (A and B) against training minutes."""
    from matplotlib.figure import Figure

    from faceswap.fileio import write_bytes_atomic

    figure = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    identity, ssim = figure.subplots(1, 2)
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for contender, colour in zip(contenders, colours, strict=False):
        minutes = [row["minutes"] for row in contender.points]

        def series(get, rows=contender.points):
            return [np.nan if get(row) is None else get(row) for row in rows]

        identity.plot(
            minutes,
            series(lambda r: 100 * (r["score"]["identity_transfer"] or 0)),
            "o-",
            color=colour,
            label=f"{contender.name} identity",
        )
        identity.plot(
            minutes,
            series(lambda r: 100 * (r["score"]["identity_transfer_with_detail"] or 0)),
            "s--",
            color=colour,
            label=f"{contender.name} with detail",
        )
        ssim.plot(
            minutes,
            series(lambda r: r["validation"]["a"]["ssim"]),
            "o-",
            color=colour,
            label=f"{contender.name} A",
        )
        ssim.plot(
            minutes,
            series(lambda r: r["validation"]["b"]["ssim"]),
            "s--",
            color=colour,
            label=f"{contender.name} B",
        )
    identity.set_ylim(-3, 103)
    identity.set_ylabel("identity transfer, % of scored frames")
    ssim.set_ylabel("validation SSIM inside the face")
    for axes in (identity, ssim):
        axes.set_xlabel("training minutes (per recipe)")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="best", fontsize=8)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue(), durable=False)


def write_strip(path: Path, original: list[np.ndarray], columns: list[tuple[str, np.ndarray]]) -> None:
    """The strip: the original faces, then each recipe's swapped faces at each point (one column each)."""
    from faceswap.fileio import write_bytes_atomic
    from faceswap.train.preview import encode_png, render_preview

    image = render_preview([("original", np.stack(original)), *columns], groups=1)
    write_bytes_atomic(path, encode_png(image), durable=False)
