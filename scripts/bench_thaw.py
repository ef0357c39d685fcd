"""The face loss around ``--freeze-encoder``'s thaw, against the same start never frozen.

A new model starts twice from one trained model (``--init-from``), with the
same seed and faces: once as the default recipe, once with the encoder held
still for ``--freeze`` iterations. The table gives each recipe's face loss
(the higher of the two sides) per window of ``--window`` steps: its mean and
its highest. What to look for: the frozen run's loss falling on through the
thaw as the other's does, not rising (at the thaw the encoder starts Adam
moments of its own: :class:`faceswap.train.reuse.FrozenEncoder`), and the
gap between the two at the end (what the freeze costs or gains). A run that
collapses is rolled back (:mod:`faceswap.train.collapse`); its line says so.

The losses are per step, so the machine's load does not change them; the
recipes run one after the other.

    python scripts/bench_thaw.py --init-from models/pretrained              # new decoders
    python scripts/bench_thaw.py --init-from models/pretrained --init-decoders a,b --freeze 300

Faces: --faces-a/--faces-b, or by default the first --frames frames of d18.mp4
and d19.mp4 of ../shared/data/video. Outputs: the table on the terminal and,
with --json, every step's losses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench_support import faces_to_train


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--init-from", type=Path, required=True, help="the trained model folder both start from"
    )
    parser.add_argument(
        "--init-decoders",
        default="none",
        choices=("none", "a", "b", "a,b"),
        help="decoders copied from it: none, a, b or a,b (default: none)",
    )
    parser.add_argument(
        "--freeze", type=int, default=120, help="iterations the encoder is held (default: 120)"
    )
    parser.add_argument(
        "--steps", type=int, help="iterations each recipe trains (default: --freeze plus 140)"
    )
    parser.add_argument("--window", type=int, default=20, help="steps per line of the table (default: 20)")
    parser.add_argument("--seed", type=int, default=7, help="seed of both runs (default: 7)")
    parser.add_argument("--frames", type=int, default=120, help="frames of each clip to take faces from")
    parser.add_argument("--faces-a", type=Path, help="faces folder A (default: crops of d18.mp4)")
    parser.add_argument("--faces-b", type=Path, help="faces folder B (default: crops of d19.mp4)")
    parser.add_argument("--json", type=Path, help="also write every step's face losses as JSON")
    return parser.parse_args()


def face_losses(
    faces: tuple[Path, Path], folder: Path, freeze: int, args: argparse.Namespace
) -> tuple[list, str]:
    """Train one recipe; its per-step face loss (the higher side) and what became of the run."""
    from faceswap.errors import TrainingDivergedError
    from faceswap.train import TrainConfig, train

    config = TrainConfig(
        init_from=str(args.init_from),
        init_decoders=args.init_decoders,
        freeze_encoder=freeze,
        seed=args.seed,
        target_loss=0.0,
        validation_every=0,
        save_every=10**6,
        preview_every=10**6,
    )
    try:
        result = train(*faces, folder, config, iterations=args.steps, progress=False)
        outcome = f"{result.iteration} steps"
    except TrainingDivergedError as error:
        return [], f"collapsed and stopped: {error}"
    state = json.loads((folder / "state.json").read_text())
    if state["config"]["learning_rate"] < config.learning_rate:  # each roll-back cuts the rate
        outcome += f", rolled back after a collapse (rate cut to {state['config']['learning_rate']:.3g})"
    return [max(row[1], row[2]) for row in state["loss_history"]], outcome


def main() -> int:
    args = parse_args()
    args.steps = args.steps or args.freeze + 140
    if not (args.init_from / "state.json").is_file():
        sys.exit(f"bench_thaw: {args.init_from} holds no model")
    with tempfile.TemporaryDirectory(prefix="bench_thaw_") as scratch_name:
        scratch = Path(scratch_name)
        faces = faces_to_train(args.faces_a, args.faces_b, scratch, args.frames, "bench_thaw")
        runs = {}
        for name, freeze in (("never frozen", 0), (f"frozen {args.freeze}", args.freeze)):
            runs[name] = face_losses(faces, scratch / name.replace(" ", "_"), freeze, args)
            print(f"{name}: {runs[name][1]}", file=sys.stderr)
    names = list(runs)
    print(f"face loss per {args.window} steps (mean / highest); the thaw after step {args.freeze}")
    print(f"{'steps':>11} | " + " | ".join(f"{name:>17}" for name in names))
    for start in range(0, args.steps, args.window):
        cells = []
        for name in names:
            window = runs[name][0][start : start + args.window]
            cells.append(f"{sum(window) / len(window):.4f} / {max(window):.4f}" if window else "-")
        print(f"{start + 1:>5}-{start + args.window:<5} | " + " | ".join(f"{cell:>17}" for cell in cells))
    if args.json:
        args.json.write_text(
            json.dumps({name: {"losses": runs[name][0], "outcome": runs[name][1]} for name in names})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
