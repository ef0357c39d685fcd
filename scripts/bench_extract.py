"""Benchmark of ``faceswap extract`` against a naive loop and against decoding alone.

In one run, on one video (default ``../shared/data/video/d6.mp4``):

(a) the naive loop: decode, full-resolution HOG and 68 landmarks on every frame, one process;
(b) ``faceswap extract`` as users run it: the command in a subprocess, writing crops, from start-up
    to exit (the start-up alone, the same command on one frame, is printed too); ``--no-smooth``
    passes that option on;
(c) decoding alone, every frame into Python.

Prints frames/s of each, the ratios b/a and b/c, and the difference between the landmarks of (a)
and (b) in % of the inter-ocular distance (mean, median, 95th percentile). The naive loop's own
landmarks are not ground truth: its box size jumps between steps of HOG's image pyramid, and the
landmarks jump with it, so the difference is also shown separately for frames whose naive box
has its most common size, and next to it the predictor's own sensitivity to its box (every 4th
frame, landmarks placed in the naive box against landmarks placed in a box derived from those
landmarks with the average placement, faceswap.track.box_from_landmarks).

CPU time is that of every process involved: on Linux the benchmark adopts extract's orphaned
fork server and workers (PR_SET_CHILD_SUBREAPER) and waits for them, so their model loading
counts too. The machine's load average is printed before and after: wall-clock ratios mean
little when other jobs share the cores, CPU time per frame much more.

``--tune-smoothing`` instead follows the faces once without smoothing and prints the frame-to-frame
jitter and the distance to the naive loop for extract's smoothing (a centred bilateral average,
faceswap.smooth.smooth_window) and for a grid of One-Euro settings (the causal filter).

    python scripts/bench_extract.py [VIDEO] [--jobs N] [--no-smooth] [--tune-smoothing]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "d6.mp4"


#: CPU seconds (this process and its waited-for children) spent by each measurement.
CPU: dict[str, float] = {}
#: Wall milliseconds of the naive loop's two stages, measured inside it.
STAGE_MS: dict[str, float] = {}


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished child processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def adopt_orphans() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where it cannot."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_orphans() -> None:
    """Wait for every adopted process (extract's fork server and workers) to exit."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


ADOPTS = False


def decode_only(video: Path) -> float:
    from faceswap.media.reader import VideoSource

    source = VideoSource(video)
    started, cpu = time.perf_counter(), cpu_seconds()
    count = sum(1 for _ in source.frames())
    CPU["c"] = (cpu_seconds() - cpu) / count
    return count / (time.perf_counter() - started)


def naive_loop(video: Path) -> tuple[float, dict[int, list[tuple[tuple, np.ndarray]]]]:
    """Frames/s of the naive loop (models loaded before the clock starts) and its faces per frame."""
    from faceswap.detect import FaceDetector, LandmarkPredictor
    from faceswap.media.reader import VideoSource

    detector, predictor = FaceDetector("hog"), LandmarkPredictor()
    source = VideoSource(video)
    faces: dict[int, list[tuple[tuple, np.ndarray]]] = {}
    detecting = placing = 0.0
    started, cpu = time.perf_counter(), cpu_seconds()
    for frame in source.frames():
        before = time.perf_counter()
        detections = detector.detect(frame.image)
        between = time.perf_counter()
        faces[frame.index] = [(d.box, predictor(frame.image, d.box)) for d in detections]
        detecting, placing = detecting + between - before, placing + time.perf_counter() - between
    CPU["a"] = (cpu_seconds() - cpu) / len(faces)
    STAGE_MS["HOG, full resolution, per frame"] = detecting / len(faces) * 1000
    STAGE_MS["68 landmarks, per face"] = placing / max(1, sum(map(len, faces.values()))) * 1000
    return len(faces) / (time.perf_counter() - started), faces


def run_extract(video: Path, output: Path, jobs: int | None, *extra: str) -> tuple[float, int]:
    """Wall-clock seconds of the command and the number of frames it read."""
    command = [
        sys.executable,
        "-m",
        "faceswap",
        "extract",
        str(video),
        "-o",
        str(output),
        "--overwrite",
        *extra,
    ]
    if jobs:
        command += ["--jobs", str(jobs)]
    started, cpu = time.perf_counter(), cpu_seconds()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if ADOPTS:
        reap_orphans()
        used = cpu_seconds() - cpu
    else:
        # Workers are not this process's children (a fork server starts them): they report their own
        # CPU, without their start-up.
        workers = re.search(r"\(([\d.]+) s of CPU in the workers", result.stderr)
        used = cpu_seconds() - cpu + (float(workers.group(1)) if workers else 0.0)
    CPU["b start-up" if "--every" in extra else "b"] = used
    if result.returncode != 0:
        sys.exit(f"faceswap extract failed: {result.stderr.strip().splitlines()[-1:]}")
    return wall, int(re.search(r"frames read: (\d+)", result.stderr).group(1))


def landmark_differences(naive, alignments) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per-frame difference (% IOD) of matched faces, whether the naive box had its usual size, counts."""
    from faceswap.landmarks import interocular_distance
    from faceswap.track import iou

    widths = [round(box[2] - box[0]) for faces in naive.values() for box, _ in faces]
    usual = max(set(widths), key=widths.count) if widths else None
    differences, usual_box = [], []
    for index, faces in naive.items():
        mine = alignments.faces(index)
        for box, landmarks in faces:
            best = max(mine, key=lambda face: iou(face.box, box), default=None)
            if best is None or iou(best.box, box) < 0.3:
                continue
            error = np.linalg.norm(best.landmarks - landmarks, axis=1).mean()
            differences.append(100 * error / interocular_distance(landmarks))
            usual_box.append(round(box[2] - box[0]) == usual)
    with_face_a = sum(bool(faces) for faces in naive.values())
    with_face_b = sum(bool(record.faces) for _, record in alignments)
    return np.array(differences), np.array(usual_box, dtype=bool), with_face_a, with_face_b


def box_sensitivity(video: Path, naive) -> np.ndarray:
    """% IOD between landmarks placed in the naive box and in the average-placement box (every 4th frame)."""
    from faceswap.detect import LandmarkPredictor
    from faceswap.landmarks import interocular_distance
    from faceswap.media.reader import VideoSource
    from faceswap.track import box_from_landmarks

    predictor = LandmarkPredictor()
    moved = []
    for frame in VideoSource(video).frames(0, None, 4):
        for _, landmarks in naive.get(frame.index, []):
            replaced = predictor(frame.image, box_from_landmarks(landmarks))
            error = np.linalg.norm(replaced - landmarks, axis=1).mean()
            moved.append(100 * error / interocular_distance(landmarks))
    return np.array(moved)


def tune_smoothing(video: Path, naive) -> None:
    from faceswap.detect import FaceDetector, LandmarkPredictor
    from faceswap.landmarks import interocular_distance
    from faceswap.media.reader import VideoSource
    from faceswap.smooth import SMOOTH_RADIUS, OneEuroFilter, smooth_window
    from faceswap.track import FaceTracker

    source = VideoSource(video)
    fps = float(source.info.fps)
    tracker = FaceTracker(FaceDetector("hog"), LandmarkPredictor())
    followed = {}
    for frame in source.frames():
        tracks = tracker.update(frame.image)
        if tracks and naive.get(frame.index):
            followed[frame.index] = tracks[0].landmarks
    indices = sorted(followed)
    raw = np.stack([followed[i] for i in indices])
    reference = np.stack([max(naive[i], key=lambda f: f[0][2] - f[0][0])[1] for i in indices])
    iod = np.array([interocular_distance(r) for r in reference])

    def jitter(sequence: np.ndarray) -> float:
        second = sequence[2:] - 2 * sequence[1:-1] + sequence[:-2]
        return float((np.linalg.norm(second, axis=2).mean(axis=1) / iod[1:-1]).mean() * 100)

    def distance(sequence: np.ndarray) -> float:
        return float((np.linalg.norm(sequence - reference, axis=2).mean(axis=1) / iod).mean() * 100)

    print(f"{'min_cutoff':>10} {'beta':>6} {'jitter %':>9} {'diff %':>7}")
    print(f"{'raw':>10} {'':>6} {jitter(raw):9.3f} {distance(raw):7.3f}")
    print(f"{'naive':>10} {'':>6} {jitter(reference):9.3f} {0:7.3f}")
    radius = SMOOTH_RADIUS
    centred = np.stack(
        [
            smooth_window(raw[max(0, t - radius) : t + radius + 1], min(t, radius), iod[t])
            for t in range(len(raw))
        ]
    )
    print(f"{'bilateral':>10} {radius:>6} {jitter(centred):9.3f} {distance(centred):7.3f}")
    for min_cutoff in (0.5, 1.0, 1.5, 2.0, 3.0, 5.0):
        for beta in (0.5, 1.0, 2.0, 4.0, 8.0):
            smoother = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)
            smoothed = np.stack(
                [smoother(lm, i / fps, interocular_distance(lm)) for i, lm in zip(indices, raw, strict=True)]
            )
            print(f"{min_cutoff:10.1f} {beta:6.1f} {jitter(smoothed):9.3f} {distance(smoothed):7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--jobs", type=int, help="passed to faceswap extract (default: its own)")
    parser.add_argument("--no-smooth", action="store_true", help="run (b) with --no-smooth")
    parser.add_argument("--tune-smoothing", action="store_true", help="print the One-Euro tuning table")
    args = parser.parse_args()
    if not args.video.is_file():
        sys.exit(f"{args.video}: no such video (the benchmark reads ../shared/data/video/)")
    sys.path.insert(0, str(ROOT))
    from faceswap.alignments import ALIGNMENTS_NAME, Alignments

    global ADOPTS
    ADOPTS = adopt_orphans()
    load_before = os.getloadavg()
    print(f"video: {args.video}")
    fps_a, naive = naive_loop(args.video)
    if args.tune_smoothing:
        tune_smoothing(args.video, naive)
        return
    fps_c = decode_only(args.video)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "faces"
        smooth = ("--no-smooth",) if args.no_smooth else ()
        wall, frames = run_extract(args.video, output, args.jobs, *smooth)
        crops = len(list(output.glob("*.png")))
        alignments = Alignments.load(output / ALIGNMENTS_NAME)
        # Start-up (interpreter, worker processes, model loading, probing, one frame):
        # the same command asked for frame 0 only.
        startup, _ = run_extract(args.video, Path(folder) / "one", args.jobs, *smooth, "--every", str(10**6))
    load_after = os.getloadavg()
    fps_b = frames / wall
    differences, usual, with_a, with_b = landmark_differences(naive, alignments)

    print(
        f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f} "
        f"on {os.cpu_count()} cores" + ("" if ADOPTS else "; CPU of extract's workers without their start-up")
    )
    print(f"frames: {frames}, crops written by (b){' with --no-smooth' if args.no_smooth else ''}: {crops}")
    print(f"(a) naive loop (decode + full HOG + landmarks): {fps_a:8.1f} frames/s")
    print(f"(b) faceswap extract, whole command:           {fps_b:8.1f} frames/s")
    print(
        f"    (start-up, measured as the same command on one frame: {startup:.1f} s of {wall:.1f} s; "
        f"without it {frames / max(wall - startup, 1e-9):.1f} frames/s)"
    )
    print(f"(c) decode only:                                {fps_c:8.1f} frames/s")
    per_frame_b = (CPU["b"] - CPU["b start-up"]) / frames
    print(
        f"CPU time per frame, all processes: (a) {CPU['a'] * 1000:.1f} ms, "
        f"(b) {per_frame_b * 1000:.1f} ms + {CPU['b start-up']:.1f} s start-up "
        f"(whole command: {CPU['b'] / frames * 1000:.1f} ms), (c) {CPU['c'] * 1000:.2f} ms"
    )
    print("stage costs in (a): " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in STAGE_MS.items()))
    # Work (b) cannot skip: decode every frame and place the landmarks of every face, on every core.
    faces_per_frame = sum(map(len, naive.values())) / len(naive)
    floor_ms = CPU["c"] * 1000 + STAGE_MS["68 landmarks, per face"] * faces_per_frame
    ceiling = (os.cpu_count() or 1) / floor_ms * 1000
    print(
        f"ceiling for (b) on {os.cpu_count()} cores from decoding and landmarks alone "
        f"({floor_ms:.2f} ms a frame): {ceiling:.0f} frames/s, "
        f"b/a <= {ceiling / fps_a:.1f}, b/c <= {ceiling / fps_c:.2f}"
    )
    print(f"b/a = {fps_b / fps_a:.2f}   (target >= 10)")
    print(f"b/c = {fps_b / fps_c:.2f}   (target >= 0.3)")
    print(
        f"CPU-time ratios (less sensitive to load): a/b {CPU['a'] / per_frame_b:.2f} per frame, "
        f"{CPU['a'] * frames / CPU['b']:.2f} with start-up; c/b {CPU['c'] / per_frame_b:.2f} per frame"
    )
    print(f"frames with a face: (a) {with_a}, (b) {with_b}; faces compared: {len(differences)}")
    if len(differences):
        print(
            f"landmark difference a vs b, % of inter-ocular distance: mean {differences.mean():.2f} "
            f"(target <= 2), median {np.median(differences):.2f}, p95 {np.percentile(differences, 95):.2f}"
        )
        if usual.any() and (~usual).any():
            print(
                f"  frames whose naive box has its usual size ({usual.mean():.0%}): "
                f"mean {differences[usual].mean():.2f}, p95 {np.percentile(differences[usual], 95):.2f}; "
                f"other frames: mean {differences[~usual].mean():.2f}"
            )
        moved = box_sensitivity(args.video, naive)
        if len(moved):
            print(
                f"  for scale: the naive landmarks move by mean {moved.mean():.2f}, median "
                f"{np.median(moved):.2f}, p95 {np.percentile(moved, 95):.2f} when only their box moves "
                "(HOG's box -> the average-placement box on the same frame)"
            )


if __name__ == "__main__":
    main()
