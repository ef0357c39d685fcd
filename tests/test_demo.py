"""``faceswap demo``: its clips, its folder rules, and one short run end to end.

The short run trains for seconds, so it checks that every step runs and every
file is written and labelled, not how good the swap is: the quality of the
default five-minute run is recorded in the README and measured by running
``faceswap demo`` itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceswap.demo import (
    CLIP_FACE_WIDTH,
    CLIP_FPS,
    CLIP_SIZE,
    MARKER,
    bundled_portraits,
    camera_path,
    face_centre_and_width,
    portrait_clip,
    run_demo,
    transfer_share,
)
from faceswap.errors import InputError, OutputError
from faceswap.media.probe import probe_video, read_metadata
from faceswap.media.writer import synthetic_label


def test_bundled_portraits_are_two_different_people() -> None:
    from faceswap.detect import LandmarkPredictor
    from faceswap.identity import FaceEmbedder, distance

    embedder, predictor = FaceEmbedder(), LandmarkPredictor()
    embeddings = []
    for portrait in bundled_portraits():
        assert portrait.image.dtype == np.uint8 and portrait.image.shape[2] == 3
        centre, width = face_centre_and_width(portrait.image)
        half = width / 2
        box = (int(centre[0] - half), int(centre[1] - half), int(centre[0] + half), int(centre[1] + half))
        embeddings.append(embedder.embed(portrait.image, predictor(portrait.image, box)))
    assert distance(*embeddings) > 0.6  # dlib's same-person threshold


def test_camera_path_loops_and_moves() -> None:
    frames = round(4 * CLIP_FPS)  # the default 4-second clip
    path = np.array([camera_path(i, frames) for i in range(frames + 1)])
    np.testing.assert_allclose(path[0], path[-1], atol=1e-9)  # the gif loops without a jump
    zoom, roll, shift_x, shift_y = path.T
    assert (
        zoom.max() - zoom.min() > 0.2
        and np.ptp(roll) > 10
        and np.ptp(shift_x) > 0.1
        and np.ptp(shift_y) > 0.05
    )
    assert np.abs(np.diff(path, axis=0)).max() < 1.0  # smooth: under a degree (or 1 %) a frame


def test_portrait_clip_keeps_a_detectable_face_of_the_planned_size() -> None:
    astronaut = bundled_portraits()[0].image
    frames = list(portrait_clip(astronaut, 8))
    assert all(frame.shape == (CLIP_SIZE, CLIP_SIZE, 3) and frame.dtype == np.uint8 for frame in frames)
    widths = []
    for frame in frames:
        centre, width = face_centre_and_width(frame)
        widths.append(width)
        assert (
            0.3 * CLIP_SIZE < centre[0] < 0.7 * CLIP_SIZE and 0.25 * CLIP_SIZE < centre[1] < 0.65 * CLIP_SIZE
        )
    assert min(widths) > 0.7 * CLIP_FACE_WIDTH and max(widths) < 1.4 * CLIP_FACE_WIDTH
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 5  # the camera moves


def test_transfer_share_counts_a_lost_face_as_a_failure() -> None:
    # Identity checked on every 2nd frame: transferred, not, lost (no swapped face), transferred.
    checked = [
        {"identity_checked": True, "transferred": True},
        {"identity_checked": True, "transferred": False},
        {"identity_checked": True, "transferred": None},
        {"identity_checked": True, "transferred": True},
    ]
    between = {"identity_checked": False, "transferred": None}
    report = {"per_frame": [row for pair in zip(checked, [between] * 4, strict=True) for row in pair]}
    assert transfer_share(report) == 0.5
    assert transfer_share({"per_frame": [{**row, "transferred": True} for row in checked]}) == 1.0
    assert transfer_share({"frames_with_face": 0, "per_frame": []}) == 0.0


def test_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"not mine")
    with pytest.raises(OutputError, match="did not make"):
        run_demo(tmp_path, 0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["holiday.jpg"]


@pytest.mark.parametrize("minutes", [0.0, -1.0, float("nan"), 1e6])
def test_refuses_impossible_training_times(tmp_path: Path, minutes: float) -> None:
    with pytest.raises(InputError, match="--minutes"):
        run_demo(tmp_path / "out", minutes)
    assert not (tmp_path / "out").exists()


def test_a_short_demo_writes_every_output(tmp_path: Path) -> None:
    """The command itself, with 1-second clips and a few seconds of training."""
    out = tmp_path / "demo"
    out.mkdir()
    (out / MARKER).write_text("an earlier run")
    (out / "demo.mp4").write_bytes(b"an earlier, broken output")  # replaced, not refused
    code = (
        "import logging, sys\n"
        "from faceswap.demo import run_demo\n"
        "if __name__ == '__main__':\n"
        "    logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        f"    print(run_demo({str(out)!r}, 0.1, progress=False, clip_seconds=1.0).format())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "identity transfer to grace_hopper" in result.stdout
    said = result.stderr.splitlines()
    assert not any("no audio" in line for line in said)  # the demo's own clips: it says so once itself
    assert sum(line.startswith("model: ") for line in said) == 1  # not once for each of four converts

    clip = probe_video(out / "work" / "astronaut.mp4")
    video = probe_video(out / "demo.mp4")
    assert clip.frame_count == video.frame_count == CLIP_FPS
    assert video.fps == clip.fps == CLIP_FPS and video.size == (CLIP_SIZE, CLIP_SIZE)
    assert read_metadata(out / "demo.mp4")["comment"] == synthetic_label()
    assert "still photo filmed by faceswap demo" in read_metadata(out / "work" / "astronaut.mp4")["comment"]
    with Image.open(out / "demo.gif") as gif:
        assert gif.info["loop"] == 0 and gif.size == (256, 256)
    with Image.open(out / "preview.png") as preview:
        assert preview.size == (2 * CLIP_SIZE, CLIP_SIZE)  # original | converted
    with Image.open(out / "loss.png") as plot:
        assert plot.size[0] > 100
    reports = json.loads((out / "score.json").read_text())
    assert set(reports) == {"trained", "untrained"}
    for report in reports.values():
        assert report["frames"] == CLIP_FPS and report["frames_with_face"] == CLIP_FPS
        assert 0.0 <= transfer_share(report) <= 1.0
    assert len(list((out / "work" / "astronaut_faces").glob("*.png"))) == CLIP_FPS
