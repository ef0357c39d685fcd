"""Fit where dlib's HOG box sits relative to a face (faceswap.track.BOX_CENTRE, BOX_HALF_SIDE).

Runs full-resolution HOG (upsample 0) and the 68-point predictor on every 7th frame of the clips in
../shared/data/video/ except d6.mp4 (kept out: the extract benchmark runs on it), expresses each
detection box in the unit face space of its landmarks (faceswap.track.placement_of) and prints the
medians, the values faceswap.track keeps.

    python scripts/fit_follow_box.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "video"
CLIPS = ("d0", "d3", "d10", "d18", "d19", "s20", "s32")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from faceswap.faces import FaceFinder
    from faceswap.media.reader import VideoSource
    from faceswap.track import placement_of

    finder = FaceFinder()
    placements = []
    for clip in CLIPS:
        for frame in VideoSource(VIDEOS / f"{clip}.mp4").frames(0, None, 7):
            for face in finder.find(frame.image):
                placements.append(placement_of(face.box, face.matrix))
    values = np.array(placements)
    median = np.median(values, axis=0)
    print(f"{len(values)} detections")
    print(f"BOX_CENTRE = ({median[0]:.4f}, {median[1]:.4f})")
    print(f"BOX_HALF_SIDE = {median[2]:.4f}  (std {values[:, 2].std() / median[2]:.0%} of it)")


if __name__ == "__main__":
    main()
