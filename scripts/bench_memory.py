"""Peak memory of ``faceswap extract`` and ``convert`` on a short and a long version of one clip.

Extract and convert stream their frames, so their peak memory should not grow
with the length of the video. The clip (default ``d18.mp4``, 7.2 s) is joined
to itself (ffmpeg's concat demuxer, stream copy: no re-encoding) into a
``--short`` and a ``--long`` version in a temporary folder; each version is
extracted (``--jobs``) and then converted with a ``lite`` network of random
weights (speed and memory do not depend on what the weights learned).

Each command runs as a child process. Its memory is sampled from ``/proc``
every 50 ms: the summed resident memory of the command and all its
descendants (workers, fork server, ffmpeg) at the moment, peak over the run
(a sum of resident sets counts the models the workers share twice: an upper
bound). Targets (issue 9): the long version under 1.5 GB and within about
10 % of the short one.

Usage::

    python scripts/bench_memory.py                          # 60 s against 600 s (the lead's run)
    python scripts/bench_memory.py --short 20 --long 60     # a quick check
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_convert import random_model_folder  # noqa: E402

from faceswap.media.ffmpeg import run_ffmpeg, summarize_stderr  # noqa: E402
from faceswap.media.probe import probe_video  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "d18.mp4"
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024**2
TARGET_BYTES = 1.5 * 1024**3
TARGET_GROWTH = 0.10


def join_clip(video: Path, seconds: float, path: Path) -> Path:
    """``video`` repeated and cut to ``seconds``, by stream copy."""
    info = probe_video(video)
    repeats = int(seconds // info.duration) + 1
    listing = path.with_suffix(".txt")
    listing.write_text("".join(f"file '{video.resolve()}'\n" for _ in range(repeats)))
    args = [
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(listing),
        "-c",
        "copy",
        "-t",
        f"{seconds:g}",
        "-y",
        str(path),
    ]
    result = run_ffmpeg(args)
    if result.returncode != 0:
        raise SystemExit(f"ffmpeg could not join {video}: {summarize_stderr(result.stderr)}")
    return path


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {pid}, {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def resident(pid: int) -> int:
    """Resident bytes of one process (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class Peak:
    """Peak memory of one command."""

    tree: int  # summed over the process tree, at the worst moment
    seconds: float


def measure(command: list[str], cwd: Path) -> Peak:
    """Run ``command``; sample its process tree's memory until it ends."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree = 0
    while process.poll() is None:
        tree = max(tree, sum(resident(pid) for pid in descendants(process.pid)))
        time.sleep(0.05)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:4])} failed ({process.returncode}): {stderr.strip()[-300:]}")
    return Peak(tree, time.monotonic() - started)


def faceswap(*args: object) -> list[str]:
    return [sys.executable, "-m", "faceswap", *map(str, args)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--video", type=Path, default=DEFAULT_VIDEO, help="the clip to join (default d18.mp4)"
    )
    parser.add_argument("--short", type=float, default=60.0, help="seconds of the short version (60)")
    parser.add_argument("--long", type=float, default=600.0, help="seconds of the long version (600)")
    parser.add_argument("--jobs", type=int, default=2, help="extract's worker processes (2)")
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such clip (real media live in ../shared/data)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    with tempfile.TemporaryDirectory(prefix="faceswap-bench-memory-") as scratch:
        work = Path(scratch)
        model = random_model_folder(work / "lite", "lite")
        results: dict[str, dict[float, Peak]] = {"extract": {}, "convert": {}}
        for seconds in (args.short, args.long):
            clip = join_clip(args.video, seconds, work / f"clip{seconds:g}.mp4")
            faces = work / f"faces{seconds:g}"
            results["extract"][seconds] = measure(
                faceswap("extract", clip, "-o", faces, "-q", "--jobs", args.jobs), work
            )
            alignments = faces / "alignments.json"
            convert = faceswap("convert", clip, "-m", model, "-a", alignments, "-o", work / "out.mp4", "-q")
            results["convert"][seconds] = measure([*convert, "--overwrite"], work)
            (work / "out.mp4").unlink(missing_ok=True)
            clip.unlink()
    print(f"load average {os.getloadavg()[0]:.1f}; clip {args.video.name}; extract --jobs {args.jobs}")
    print(f"{'command':<8} {'seconds':>8} {'tree peak MB':>13} {'run s':>7}")
    failed = False
    for command, peaks in results.items():
        for seconds, peak in peaks.items():
            print(f"{command:<8} {seconds:>8g} {peak.tree / MB:>13.0f} {peak.seconds:>7.1f}")
        short, long = peaks[args.short].tree, peaks[args.long].tree
        growth = long / short - 1
        ok = long < TARGET_BYTES and growth <= TARGET_GROWTH
        failed |= not ok
        print(
            f"{command}: long/short {1 + growth:.3f} (target <= {1 + TARGET_GROWTH:.2f}, under 1.5 GB): "
            + ("ok" if ok else "MISSED")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
