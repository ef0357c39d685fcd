"""Time ``faceswap sort`` on N real face crops: cold (every crop measured) and warm (from the cache).

The crops are extracted first (not timed) from the shared clips d3, d6, d10,
d18 and d19 (five people), every frame until N faces are reached, then:

* ``--by identity`` cold: embeddings of every crop, clustering, the output folder;
* ``--by identity`` warm: the same folder again, every measurement from the cache;
* ``--by misalign`` cold: a detection and landmarks on every crop;
* purity of the identity groups (share of each group's majority clip).

Figures: wall seconds, CPU seconds of this process, faces/s, and the load
average (the machines are shared). ``--faces 30`` makes a short run.

    python scripts/bench_sort.py --faces 1000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("d3", "d6", "d10", "d18", "d19")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def gather(work: Path, faces: int, data: Path) -> Path:
    """``faces`` crops of the five clips, as evenly as the clips allow, in one folder."""
    from faceswap.extract import ExtractOptions, extract
    from faceswap.media.probe import probe_video

    folder = work / "faces"
    folder.mkdir()
    share = -(-faces // len(CLIPS))
    for clip in CLIPS:
        video = data / "video" / f"{clip}.mp4"
        frames = probe_video(video).frame_count
        every = max(1, frames // share)
        out = work / clip
        extract(video, ExtractOptions(output=out, every=every, jobs=2, progress=False))
        for crop in sorted(out.glob("*.png"))[:share]:
            os.link(crop, folder / crop.name)
    crops = sorted(folder.glob("*.png"))
    for extra in crops[faces:]:
        extra.unlink()
    return folder


def timed(label: str, folder: Path, by: str, output: Path) -> tuple[float, object]:
    from faceswap.sort import SortOptions, sort_faces

    wall, cpu = time.perf_counter(), cpu_seconds()
    result = sort_faces(folder, SortOptions(by=by, output=output, overwrite=True, progress=False))
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    count = len(result.faces)
    print(
        f"{label:22s} {count:5d} faces  {wall:7.1f} s wall  {cpu:7.1f} s CPU  {count / wall:7.1f} faces/s  "
        f"measured {result.measured:5d}  load {os.getloadavg()[0]:.1f}"
    )
    return wall, result


def purity(result) -> list[tuple[str, int, float]]:
    groups: dict[str, list[str]] = {}
    for face in result.faces:
        groups.setdefault(face.group, []).append(face.path.name.split("_")[0])
    rows = []
    for name, clips in groups.items():
        majority = max(set(clips), key=clips.count)
        rows.append((f"{name} ({majority})", len(clips), clips.count(majority) / len(clips)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faces", type=int, default=1000, help="crops to sort (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sort-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # a cold cache of our own
    try:
        folder = gather(work, args.faces, args.data)
        print(f"{len(list(folder.glob('*.png')))} crops of {', '.join(CLIPS)}; {os.cpu_count()} CPUs")
        _, result = timed("identity, cold", folder, "identity", work / "out")
        timed("identity, warm", folder, "identity", work / "out")
        timed("misalign, cold", folder, "misalign", work / "out")
        for name, count, share in purity(result):
            print(f"  {name:22s} {count:5d} faces  {100 * share:5.1f} % pure")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
