"""Compare training recipes (learning rate, schedule, loss, model) after equal training time.

Every recipe trains its own new model on the same faces, in the same process,
in alternating short rounds (the order rotates each round), so that the
shared machine's load falls on all of them alike. After every round each
model is measured on held-back faces it never trained on (every 5th face of
each clip): MAE and DSSIM of its own side's reconstruction, inside the face
hull, at the model's size. Losses of different recipes are not comparable
(``mae+dssim`` is not on MAE's scale), these held-back figures are.

The table reports, per recipe, iterations, wall and CPU seconds spent in its
steps, and the held-back MAE and DSSIM after each round; the last round's
figures compare recipes at equal wall time.

    python scripts/bench_recipe.py --recipe lr5e-5 learning_rate=5e-5 \\
        --recipe lr2e-4 learning_rate=2e-4 --rounds 4 --round-seconds 30
    python scripts/bench_recipe.py --recipe mae loss=mae --recipe mix loss=mae+dssim
    python scripts/bench_recipe.py --recipe lite model=lite --recipe res model=residual128

Every recipe starts from ``model=lite``, ``batch_size=16``, ``seed=1`` and the
defaults of :class:`faceswap.train.TrainConfig`; ``key=value`` changes one
field (values are read as JSON when they parse, else as text). Faces:
--faces-a/--faces-b (the held-back faces are taken out of them), or by
default the first --frames frames of d18.mp4 and d19.mp4 of ../shared/data/video.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_support import faces_to_train

#: One face in this many is held back for measuring.
HOLD_OUT = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--recipe",
        nargs="+",
        action="append",
        metavar=("NAME", "KEY=VALUE"),
        required=True,
        help="a recipe: its name, then the TrainConfig fields it changes",
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds per recipe (default: 4)")
    parser.add_argument(
        "--round-seconds", type=float, default=30.0, help="wall seconds of training per round (default: 30)"
    )
    parser.add_argument("--frames", type=int, default=120, help="frames of each clip to take faces from")
    parser.add_argument("--faces-a", type=Path, help="faces folder A (default: crops of d18.mp4)")
    parser.add_argument("--faces-b", type=Path, help="faces folder B (default: crops of d19.mp4)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args()


def split_faces(folder: Path, scratch: Path, name: str) -> tuple[Path, Path]:
    """Copy ``folder``'s crops into a training and a held-back folder (every HOLD_OUT-th face)."""
    train, held = scratch / f"{name}_train", scratch / f"{name}_held"
    train.mkdir()
    held.mkdir()
    crops = sorted(path for path in folder.iterdir() if path.suffix.lower() == ".png")
    for number, path in enumerate(crops):
        shutil.copy2(path, (held if number % HOLD_OUT == HOLD_OUT - 1 else train) / path.name)
    return train, held


def parse_recipe(words: list[str]) -> tuple[str, dict]:
    name, changes = words[0], {}
    for word in words[1:]:
        key, _, text = word.partition("=")
        try:
            changes[key] = json.loads(text)
        except json.JSONDecodeError:
            changes[key] = text
    return name, changes


class Contender:
    """One recipe's session, trained step by step, and its held-back faces."""

    def __init__(
        self, name: str, changes: dict, faces: tuple[Path, Path], held: tuple[Path, Path], scratch: Path
    ):
        from faceswap.train import Hardware, TrainConfig, TrainingSession
        from faceswap.train.batches import BatchSource
        from faceswap.train.dataset import load_faces

        config = TrainConfig(**{"model": "lite", "batch_size": 16, "seed": 1, **changes})
        self.name = name
        self.session = TrainingSession.start(
            scratch / f"model_{name}", faces[0], faces[1], config, Hardware(progress=False)
        )
        size = self.session.state.input_size
        held_faces = tuple(
            load_faces(folder, side, size, config.augment, centering=config.centering)
            for folder, side in zip(held, "AB", strict=True)
        )
        source = BatchSource(held_faces, 1, size)
        self.held = [source.plain(side, range(len(held_faces[side]))) for side in (0, 1)]
        self.iterator = iter(self.session.dataset())
        self.session.trainer.make_train_function()
        self.step = self.session.trainer.train_function
        self.wall = self.cpu = 0.0
        self.rows: list[dict] = []
        self._one_step()  # traced and compiled here, outside the timed rounds

    def _one_step(self) -> None:
        self.session.before_step()
        logs = self.step(self.iterator)
        self.session.record({key: float(value) for key, value in logs.items()}, 0.0)

    def train(self, seconds: float) -> None:
        begin_wall, begin_cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - begin_wall < seconds:
            self._one_step()
        self.wall += time.perf_counter() - begin_wall
        self.cpu += time.process_time() - begin_cpu

    def measure(self) -> dict:
        import numpy as np

        from faceswap.model import side_decoder
        from faceswap.runtime import tf
        from faceswap.train.loss import pixel_weights, weighted_dssim, weighted_mae

        encoder = self.session.network.get_layer("encoder")
        figures = {}
        for side, letter in enumerate("ab"):
            faces = self.held[side]["face"].astype(np.float32) / 255.0
            weight = pixel_weights(tf.constant(self.held[side]["mask"], tf.float32) / 255.0, 0.0, 0.0)
            decoder = side_decoder(self.session.network, letter)
            output = decoder(encoder(faces, training=False), training=False)[0]
            figures[f"mae_{letter}"] = float(weighted_mae(faces, output, weight))
            figures[f"dssim_{letter}"] = float(weighted_dssim(faces, output, weight))
        row = {
            "iteration": self.session.state.iteration,
            "wall": round(self.wall, 1),
            "cpu": round(self.cpu, 1),
            "loss": [round(value, 5) for value in self.session.smoothed_losses()],
            "mae": round((figures["mae_a"] + figures["mae_b"]) / 2, 5),
            "dssim": round((figures["dssim_a"] + figures["dssim_b"]) / 2, 5),
        }
        self.rows.append(row)
        return row


def main() -> int:
    args = parse_args()
    import os

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_recipe_") as scratch_name:
        scratch = Path(scratch_name)
        sources = faces_to_train(args.faces_a, args.faces_b, scratch, args.frames, "bench_recipe")
        splits = [split_faces(folder, scratch, name) for folder, name in zip(sources, "ab", strict=True)]
        faces = (splits[0][0], splits[1][0])
        held = (splits[0][1], splits[1][1])
        contenders = [Contender(*parse_recipe(words), faces, held, scratch) for words in args.recipe]
        for number in range(args.rounds):
            order = contenders[number % len(contenders) :] + contenders[: number % len(contenders)]
            for contender in order:
                contender.train(args.round_seconds)
            for contender in contenders:
                row = contender.measure()
                print(f"round {number + 1} {contender.name:>12}: {json.dumps(row)}", flush=True)
    print(f"\nload average at the start {load:.1f}; held-back faces: every {HOLD_OUT}th; recipes:")
    print(
        f"{'recipe':>12} | {'iter':>5} | {'wall s':>6} | {'CPU s':>6} | {'held MAE':>8} | {'held DSSIM':>10}"
    )
    for contender in contenders:
        last = contender.rows[-1]
        print(
            f"{contender.name:>12} | {last['iteration']:>5} | {last['wall']:>6} | {last['cpu']:>6} | "
            f"{last['mae']:>8.4f} | {last['dssim']:>10.4f}"
        )
    if args.json:
        document = {
            "load_average": load,
            "recipes": {
                c.name: {"changes": dict(parse_recipe(w)[1]), "rounds": c.rows}
                for c, w in zip(contenders, args.recipe, strict=True)
            },
        }
        args.json.write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
