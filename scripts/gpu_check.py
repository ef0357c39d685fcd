"""The stages of scripts/gpu_check.sh: throughput per setting, time to a loss, the report.

Run by ``gpu_check.sh``, one process per backend (Keras picks its backend once,
at import)::

    python scripts/gpu_check.py throughput --backend torch --budget 140 --out RESULTS.jsonl
    python scripts/gpu_check.py target --results RESULTS.jsonl --budget 110 --model-dir DIR --out TARGET.json
    python scripts/gpu_check.py report --results RESULTS.jsonl --target TARGET.json --out REPORT.json

``throughput`` times the training step on one constant batch (the GPU's own
speed, not the input pipeline's) for each model, batch size, precision and
jit setting, most telling first, and starts no case that its estimate says
would end past ``--budget`` seconds; each finished case is appended to the
JSON-lines file at once, so a stage killed by its outer timeout keeps what
it measured. FLOPs per step are counted by hand from the network's
convolutions and dense layers (multiply-adds x 2, forward x 3 for forward and
backward, both sides' faces), and divided by the dense bfloat16 peak of the
GPU found by name in :data:`PEAK_BF16_TFLOPS`.

``target`` trains the fastest ``original`` setting found on the d18/d19 training faces
with the real input pipeline until the loss reaches 0.02 or ``--budget``
seconds pass, and records when 0.05, 0.03 and 0.02 were reached.

``GPU_CHECK_TINY=1`` shrinks everything (the ``lite`` model, batch 8, 2 timed
steps, seconds-long budgets) to test the script on a CPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

from bench_support import ROOT  # noqa: E402  (puts the project root on sys.path)

TINY = os.environ.get("GPU_CHECK_TINY") == "1"
#: The models timed, and the one trained to the target loss (``lite`` in tiny runs: fast on a CPU).
MODELS = ("lite",) if TINY else ("original", "residual128")
TARGET_MODEL = MODELS[0]
BATCHES = (8,) if TINY else (64, 128, 256)
THRESHOLDS = (0.05, 0.03, 0.02)
#: Dense (no sparsity) bfloat16 tensor-core peak in TFLOP/s, by a piece of the GPU's name (first match).
PEAK_BF16_TFLOPS = (
    ("H200", 989.0),
    ("H100", 989.0),
    ("H800", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("A6000", 155.0),
    ("A40", 150.0),
    ("A10", 125.0),
    ("L4", 121.0),
    ("4090", 165.0),
    ("3090", 71.0),
    ("V100", 125.0),  # float16: no bfloat16 tensor cores
    ("T4", 65.0),  # float16
)
FACES = ROOT / ".gpu_faces"
#: The faces the throughput and target stages train on (made by gpu_check_prepare.sh).
TRAINING_FACES = (FACES / "d18" / "train", FACES / "d19" / "train")


def peak_tflops(gpu_name: str) -> float | None:
    """The dense bf16 peak of ``gpu_name`` from :data:`PEAK_BF16_TFLOPS` (``None``: unknown or a CPU)."""
    for piece, tflops in PEAK_BF16_TFLOPS:
        if piece.lower() in gpu_name.lower():
            return tflops
    return None


def device_name() -> str:
    """The first GPU's name as the backend reports it, else ``"CPU"``."""
    from faceswap.runtime import BACKEND, GPUS

    if not GPUS:
        return "CPU"
    if BACKEND == "torch":
        import torch

        return torch.cuda.get_device_name(0)
    return str(getattr(GPUS[0], "device_kind", GPUS[0]))


def forward_flops(model) -> int:
    """FLOPs (2 x multiply-adds) of one face through ``model``'s Conv2D and Dense layers, nested ones too.

    Activations, pixel shuffles and additions are left out: under 1 % of the
    arithmetic of these networks.
    """
    from faceswap.runtime import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += 2 * height * width * _product(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * _product(layer.kernel.shape)
    return total


def _product(shape) -> int:
    result = 1
    for dim in shape:
        result *= int(dim)
    return result


def step_flops(network) -> int:
    """FLOPs of one training step per face pair: each side's face through the encoder and its decoder, x 3.

    ``network`` holds the encoder and both decoders once each; a face goes
    through the encoder and one decoder, so a pair costs the whole network's
    forward plus the encoder's once more. Backward costs twice the forward.
    """
    encoder = forward_flops(network.get_layer("encoder"))
    return 3 * (forward_flops(network) + encoder)


def settings(backend: str) -> list[tuple[str, int, bool, bool]]:
    """(model, batch, mixed precision, jit) cases, the quickest to a figure first (JAX always compiles).

    Mixed precision comes first on a GPU; in tiny runs float32 does (a CPU
    computes "mixed" in float16, some 100 times slower).
    """
    jits = (True,) if backend == "jax" else (False, True)  # torch.compile takes a minute: eager first
    precisions = (False, True) if TINY else (True, False)
    cases = []
    for model in MODELS:
        for jit in jits:
            for mixed in precisions:
                cases.extend((model, batch, mixed, jit) for batch in BATCHES)
    return cases


def time_case(model: str, batch: int, mixed: bool, jit: bool, scratch: Path, seconds: float) -> dict:
    """Faces/s of one setting on a constant batch: two untimed steps (compile), then ``seconds`` of steps.

    The caller releases the network afterwards (:func:`release`).
    """
    from bench_train import constant_batches

    from faceswap.train import Hardware, TrainConfig, TrainingSession

    config = TrainConfig(
        model=model, batch_size=batch, seed=0, save_every=10**9, preview_every=10**9, validation_every=0
    )
    hardware = Hardware(mixed_precision=mixed, xla=jit, progress=False)
    folder = scratch / f"{model}-{batch}-{int(mixed)}{int(jit)}"
    started = time.perf_counter()
    session = TrainingSession.start(folder, *TRAINING_FACES, config, hardware)
    data = constant_batches(session.source.batch(0))

    def fit(steps: int) -> float:
        begun = time.perf_counter()
        session.trainer.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        return time.perf_counter() - begun

    warm = fit(2)
    one = fit(1)
    steps = 2 if TINY else max(3, min(200, round(seconds / max(one, 1e-3))))
    wall = fit(steps)
    per_step = wall / steps
    flops = step_flops(session.network) * batch
    result = {
        "model": model,
        "batch": batch,
        "mixed_precision": session.compute.mixed_precision,
        "policy": session.compute.policy,
        "jit": session.compute.jit,
        "asked_jit": jit,
        "steps": steps,
        "s_per_step": per_step,
        "faces_per_s": 2 * batch / per_step,
        "tflops": flops / per_step / 1e12,
        "gflop_per_step": flops / 1e9,
        "warm_s": warm,
        "case_s": time.perf_counter() - started,
    }
    return result


def release() -> None:
    """Free the last case's network and the memory the backend holds for it."""
    from faceswap.runtime import BACKEND, keras

    keras.backend.clear_session()
    gc.collect()
    if BACKEND == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def throughput(args: argparse.Namespace) -> int:
    """The ``throughput`` stage: every setting that fits in ``--budget`` seconds, appended to ``--out``."""
    from faceswap.backends import choose_backend

    backend = choose_backend(args.backend)
    from faceswap.runtime import BACKEND

    deadline = time.perf_counter() + args.budget
    name = device_name()
    peak = peak_tflops(name)
    timed = 0.5 if TINY else 4.0
    # (model, jit) -> seconds of the last such case; a new kind is judged by the longest so far
    estimates: dict[tuple[str, bool], float] = {}
    print(f"{name}: dense bf16 peak {peak or 'unknown'} TFLOP/s\n{TABLE_HEAD}", flush=True)
    with args.out.open("a") as out, tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        for model, batch, mixed, jit in settings(backend):
            left = deadline - time.perf_counter()
            estimate = estimates.get((model, jit), max(estimates.values(), default=0.0))
            if estimate > left:
                row = {"skipped": f"budget: needs about {estimate:.0f} s, {max(left, 0):.0f} s left"}
            else:
                try:
                    row = time_case(model, batch, mixed, jit, Path(scratch), timed)
                except Exception as error:  # an out-of-memory batch must not end the stage
                    row = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
                else:
                    estimates[(model, jit)] = row["case_s"] * 1.1
                release()
            row = {
                "backend": BACKEND,
                "device": name,
                "model": model,
                "batch": batch,
                "mixed_precision": mixed,
                "asked_jit": jit,
                **row,
            }
            if "tflops" in row and peak:
                row["share_of_peak"] = row["tflops"] / peak
            row["tensorflow_loaded"] = sys.modules.get("tensorflow") is not None
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(format_row(row), flush=True)
    return 0


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSON-lines results file (none when it is missing)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fastest(rows: list[dict], model: str = TARGET_MODEL) -> dict | None:
    """The measured row of ``model`` with the most faces/s."""
    measured = [row for row in rows if row.get("model") == model and "faces_per_s" in row]
    return max(measured, key=lambda row: row["faces_per_s"], default=None)


def target(args: argparse.Namespace) -> int:
    """The ``target`` stage: train the fastest setting to loss 0.02 or for ``--budget`` seconds; save it."""
    rows = [row for path in args.results for row in read_rows(path)]
    best = fastest(rows) or {
        "backend": args.backend or "torch",
        "batch": BATCHES[0],
        "mixed_precision": True,
        "jit": True,
    }
    from faceswap.backends import choose_backend

    choose_backend(best["backend"])
    from time_to_target import reached_at

    from faceswap.train import Hardware, TrainConfig, train

    batch = BATCHES[0] if TINY else best["batch"]
    config = TrainConfig(
        model=TARGET_MODEL,
        batch_size=batch,
        target_loss=THRESHOLDS[-1],
        seed=0,
        save_every=10**9,
        preview_every=10**9,
    )
    hardware = Hardware(mixed_precision=best["mixed_precision"], xla=best.get("jit", True))
    started = time.perf_counter()
    result = train(
        *TRAINING_FACES,
        args.model_dir,
        config,
        time_limit=args.budget,
        hardware=hardware,
        progress=False,
    )
    per_iteration = result.seconds / max(1, result.iteration)
    reached = {}
    for threshold in THRESHOLDS:
        iteration = reached_at(result.loss_history, threshold, window=20 if TINY else 100)
        reached[str(threshold)] = (
            None if iteration is None else {"iteration": iteration, "seconds": iteration * per_iteration}
        )
    summary = {
        "backend": best["backend"],
        "model": TARGET_MODEL,
        "batch": batch,
        "mixed_precision": best["mixed_precision"],
        "jit": best.get("jit", True),
        "stopped_by": result.reason,
        "iterations": result.iteration,
        "train_s": result.seconds,
        "with_loading_s": time.perf_counter() - started,
        "faces_per_s": result.faces_per_second,
        "loss_a": result.loss_a,
        "loss_b": result.loss_b,
        "reached": reached,
        "model_dir": str(args.model_dir),
        "tensorflow_loaded": sys.modules.get("tensorflow") is not None,
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(format_target(summary), flush=True)
    return 0


def curve_points(first: int = 500) -> list[int]:
    """Iterations at which the curve stage measures: ``first`` doubling on (500, 1000, 2000, ...)."""
    return [first * 2**k for k in range(12)]


def curve(args: argparse.Namespace) -> int:
    """The ``curve`` stage: train a recipe on A/B, and at doubling iterations decode the recorded faces.

    At each point it writes ``curve_<iteration>.npz`` (B's decoder's faces and
    masks for the faces of ``--inputs``, see ``bench_quality_replay.py``) and
    rewrites ``curve.json`` (iterations, seconds, losses, validation MAE and
    SSIM of both sides); ``bench_quality.py --replay`` then converts and
    scores each point on a machine with dlib and the clips. Only the points
    whose files fit ``--max-files`` and ``--max-mib`` in all are kept (what
    comes back from a GPU machine is limited): later points replace the
    earliest.
    """
    from faceswap.backends import choose_backend

    choose_backend(args.backend)
    from bench_quality_replay import load_recorded, save_decoded
    from time_to_target import reached_at

    from faceswap.fileio import write_json_atomic
    from faceswap.runtime import BACKEND
    from faceswap.swap_model import SwapModel
    from faceswap.train import Hardware, TrainConfig, TrainingSession
    from faceswap.train.validation import load_validation_faces, reconstruction

    inputs, input_size, centering = load_recorded(args.inputs)
    config = TrainConfig(
        model=args.model,
        batch_size=args.batch_size,
        seed=0,
        target_loss=0.0,
        save_every=10**9,
        preview_every=10**9,
        validation_every=0,
    )
    hardware = Hardware(mixed_precision=args.mixed_precision, xla=True, progress=False)
    faces = [args.faces / side for side in args.sides]
    session = TrainingSession.start(args.model_dir, faces[0] / "train", faces[1] / "train", config, hardware)
    if session.state.input_size != input_size or session.state.centering != centering:
        sys.exit(
            f"curve: {args.inputs} holds {input_size}-px {centering} faces, the model takes "
            f"{session.state.input_size}-px {session.state.centering} ones: record them with this recipe"
        )
    validation = {
        side: load_validation_faces(folder / "validation", side.upper(), input_size, centering)
        for side, folder in zip("ab", faces, strict=True)
        if (folder / "validation").is_dir()
    }
    started = time.perf_counter()
    session.run(iterations=1)  # traces and compiles: not training time
    compile_s, compiled_at = time.perf_counter() - started, session.state.elapsed
    deadline = time.perf_counter() + args.budget
    document = {
        "backend": BACKEND,
        "device": device_name(),
        "config": config.to_json(),
        "mixed_precision": session.compute.mixed_precision,
        "input_size": input_size,
        "centering": centering,
        "faces": [str(folder) for folder in faces],
        "compile_s": compile_s,
        "points": [],
    }
    kept: list[Path] = []
    for point in curve_points(args.first):
        left = deadline - time.perf_counter()
        if left < 1:
            break
        if point <= session.state.iteration:
            continue
        result = session.run(iterations=point - session.state.iteration, time_limit=left)
        begun = time.perf_counter()
        model = SwapModel(session.network, session.state)
        decoded = [model.predict(inputs[i : i + 256], "b") for i in range(0, len(inputs), 256)]
        path = args.out / f"curve_{session.state.iteration}.npz"
        save_decoded(
            path, np.concatenate([face for face, _ in decoded]), np.concatenate([mask for _, mask in decoded])
        )
        kept.append(path)
        while len(kept) > args.max_files or (
            len(kept) > 1 and sum(p.stat().st_size for p in kept) > args.max_mib * 2**20
        ):
            kept.pop(0).unlink()  # the latest points tell most
        loss_a, loss_b = session.smoothed_losses()
        row = {
            "iteration": session.state.iteration,
            "train_s": session.state.elapsed - compiled_at,
            "stopped_by": result.reason,
            "faces_per_s": result.faces_per_second,
            "loss_a": loss_a,
            "loss_b": loss_b,
            "validation": {s: asdict(reconstruction(model, held, s)) for s, held in validation.items()},
            "decoded": path.name,
            "evaluation_s": time.perf_counter() - begun,
        }
        document["points"].append(row)
        document["kept"] = [p.name for p in kept]
        document["reached"] = {str(t): reached_at(result.loss_history, t) for t in THRESHOLDS}
        write_json_atomic(args.out / "curve.json", document, indent=1)
        validated = " ".join(f"{s} {v['ssim']:.3f}" for s, v in row["validation"].items())
        print(
            f"curve: iteration {row['iteration']} after {row['train_s']:.0f} s, {row['faces_per_s']:.0f} "
            f"faces/s, loss {loss_a:.4f}/{loss_b:.4f}, validation SSIM {validated}",
            flush=True,
        )
    return 0


def format_row(row: dict) -> str:
    """One line of the throughput table."""
    head = (
        f"{row['backend']:<8}{row['model']:<12}{row['batch']:>6}  "
        f"{'mixed' if row['mixed_precision'] else 'fp32':<6}{'jit' if row['asked_jit'] else 'eager':<6}"
    )
    if "faces_per_s" not in row:
        return head + f"  {row.get('skipped') or row.get('error')}"
    share = f"{row['share_of_peak']:>7.1%}" if "share_of_peak" in row else f"{'n/a':>7}"
    jit_note = "" if row["jit"] == row["asked_jit"] else " (jit not applied here)"
    return head + (
        f"{row['faces_per_s']:>10.1f}{row['s_per_step'] * 1000:>10.1f}{row['tflops']:>9.1f}"
        f"{share}{row['gflop_per_step']:>10.0f}{jit_note}"
    )


TABLE_HEAD = (
    f"{'backend':<8}{'model':<12}{'batch':>6}  {'prec':<6}{'jit':<6}"
    f"{'faces/s':>10}{'ms/step':>10}{'TFLOP/s':>9}{'peak':>7}{'GFLOP/st':>10}"
)


def format_target(summary: dict) -> str:
    """The time-to-target lines."""
    lines = [
        f"time to target: {summary['model']}, batch {summary['batch']}, {summary['backend']}, "
        f"{'mixed' if summary['mixed_precision'] else 'fp32'}, {'jit' if summary['jit'] else 'eager'}: "
        f"stopped by {summary['stopped_by']} after {summary['iterations']} iterations, "
        f"{summary['train_s']:.0f} s of training ({summary['with_loading_s']:.0f} s with loading), "
        f"{summary['faces_per_s']:.0f} faces/s; loss A {summary['loss_a']:.4f}, B {summary['loss_b']:.4f}"
    ]
    for threshold, hit in summary["reached"].items():
        when = "not reached" if hit is None else f"iteration {hit['iteration']}, about {hit['seconds']:.0f} s"
        lines.append(f"  loss {threshold}: {when}")
    return "\n".join(lines)


def format_curve(curve: dict | None) -> list[str]:
    """The quality curve's lines: one per point."""
    if not curve or not curve.get("points"):
        return ["quality curve: no point finished"]
    config = curve["config"]
    lines = [
        f"quality curve: {config['model']}, batch {config['batch_size']}, {curve['backend']}, "
        f"{'mixed' if curve['mixed_precision'] else 'fp32'}, compiled in {curve['compile_s']:.0f} s; "
        f"loss reached at iteration {curve.get('reached')}"
    ]
    for row in curve["points"]:
        validated = ", ".join(f"{s} {v['ssim']:.3f}" for s, v in row["validation"].items())
        lines.append(
            f"  iteration {row['iteration']:>6} after {row['train_s']:>5.0f} s: {row['faces_per_s']:>6.0f} "
            f"faces/s, loss {row['loss_a']:.4f}/{row['loss_b']:.4f}, validation SSIM {validated}"
        )
    return lines


def report(args: argparse.Namespace) -> int:
    """The ``report`` stage: one JSON of every stage, and the readable table."""
    rows = [row for path in args.results for row in read_rows(path)]
    summary = json.loads(args.target.read_text()) if args.target and args.target.is_file() else None
    lines = [TABLE_HEAD, *(format_row(row) for row in rows)]
    lines.append(
        format_target(summary) if summary else "time to target: not run, or not finished in its budget"
    )
    curve = json.loads(args.curve.read_text()) if args.curve and args.curve.is_file() else None
    lines.extend(format_curve(curve))
    args.out.write_text(json.dumps({"throughput": rows, "target": summary, "curve": curve}, indent=2))
    print("\n".join(lines))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stages = parser.add_subparsers(dest="stage", required=True)
    stage = stages.add_parser("throughput")
    stage.add_argument("--backend", required=True)
    stage.add_argument("--budget", type=float, required=True, help="seconds")
    stage.add_argument("--out", type=Path, required=True, help="JSON-lines file, appended to")
    stage = stages.add_parser("target")
    stage.add_argument("--results", type=Path, nargs="+", required=True)
    stage.add_argument("--backend", help="when no setting was measured (default: torch)")
    stage.add_argument("--budget", type=float, required=True, help="seconds of training")
    stage.add_argument("--model-dir", type=Path, required=True)
    stage.add_argument("--out", type=Path, required=True)
    stage = stages.add_parser("report")
    stage.add_argument("--results", type=Path, nargs="+", required=True)
    stage.add_argument("--target", type=Path)
    stage.add_argument("--curve", type=Path)
    stage.add_argument("--out", type=Path, required=True)
    stage = stages.add_parser("curve")
    stage.add_argument("--backend", required=True)
    stage.add_argument("--budget", type=float, required=True, help="seconds of training")
    stage.add_argument("--inputs", type=Path, required=True, help="faces recorded by bench_quality.py")
    stage.add_argument("--faces", type=Path, default=FACES, help="folder of the sides' faces")
    stage.add_argument("--sides", nargs=2, default=("d18", "d19"), help="A and B under --faces")
    stage.add_argument("--model", default="lite")
    stage.add_argument("--batch-size", type=int, default=16)
    stage.add_argument("--mixed-precision", action="store_true")
    stage.add_argument("--first", type=int, default=500, help="first point's iteration (then doubling)")
    stage.add_argument("--max-mib", type=float, default=44.0, help="decoded points kept, MiB in all")
    stage.add_argument("--max-files", type=int, default=4, help="decoded points kept, files")
    stage.add_argument("--model-dir", type=Path, required=True)
    stage.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import logging

    logging.getLogger("faceswap").setLevel(logging.ERROR)
    run_stage = {"throughput": throughput, "target": target, "report": report, "curve": curve}
    return run_stage[args.stage](args)


if __name__ == "__main__":
    sys.exit(main())
