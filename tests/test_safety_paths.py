"""Issue 9, items 1-3: outputs never harm inputs, names never collapse, one run per output.

The property table: for every subcommand and every form of ``-o`` (the input
file itself, the folder that holds it, the input folder itself, a symbolic
link to the input, a hard link, ``.``), the run is refused with one line that
names both paths, before any work, and every file of the inputs is unchanged
byte for byte (hashes before and after) with nothing written beside them.
Then the names that extract, convert and train write in any script, and two
runs on one output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from faceswap.alignments import ALIGNMENTS_NAME, Alignments, default_output_dir
from faceswap.cli import main
from faceswap.crop_names import crop_file_name
from faceswap.errors import OutputError
from faceswap.fileio import (
    TEMP_PREFIX,
    is_safe_name,
    remove_stale_temporaries,
    remove_stale_temporaries_of,
    safe_name,
    temporary_path,
    unique_safe_names,
)
from faceswap.locks import OutputLock, lock_path
from faceswap.media.ffmpeg import run_ffmpeg
from faceswap.paths import FOLDER_MARKER, check_replaceable_folder, guard_outputs
from tests.test_bad_inputs import run_in_process, snapshot

ROOT = Path(__file__).resolve().parents[1]
REFUSED = "faceswap never writes over its inputs"


# ----------------------------------------------------------------------------------------------
# A small world of inputs: a clip, photos, faces, a model folder, links to the clip


def tiny_clip(path: Path, frames: int = 5) -> Path:
    lavfi = ["-f", "lavfi", "-i", "testsrc=s=64x64:r=10", "-frames:v", str(frames)]
    made = run_ffmpeg([*lavfi, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(path)])
    assert made.returncode == 0, made.stderr
    return path


def png(path: Path, value: int = 128) -> Path:
    import cv2

    cv2.imwrite(str(path), np.full((64, 64, 3), value, np.uint8))
    return path


@dataclass
class World:
    root: Path

    def __getattr__(self, name: str) -> Path:
        if name not in _PLACES:
            raise AttributeError(name)
        return self.root / _PLACES[name]


_PLACES = {
    "clip": "in/x.mp4",
    "folder": "in",
    "photos": "photos",
    "faces_a": "faces_a",
    "faces_b": "faces_b",
    "model": "model",
    "target": "target",
    "symlink": "link.mp4",
    "hardlink": "hard.mp4",
    "folder_link": "in_link",
    "faces_link": "faces_link",
}


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    for folder in ("in", "photos", "faces_a", "faces_b", "model", "target"):
        (tmp_path / folder).mkdir()
    tiny_clip(w.clip)
    (w.folder / "notes.txt").write_text("an unrelated file of the user's, next to the video")
    png(w.photos / "p1.png", 10)
    png(w.photos / "p2.png", 20)
    tiny_clip(w.photos / "old.mp4", 2)  # a user's video among the photos
    for side in (w.faces_a, w.faces_b):
        png(side / "f0.png")
        png(side / "f1.png", 90)
    (w.model / "state.json").write_text("{}")
    (w.model / "model.keras").write_bytes(b"weights")
    png(w.target / "face.png", 60)
    w.symlink.symlink_to(w.clip)
    os.link(w.clip, w.hardlink)
    w.folder_link.symlink_to(w.folder, target_is_directory=True)
    w.faces_link.symlink_to(w.faces_a, target_is_directory=True)
    return w


def sample_data() -> Path:
    from faceswap.demo import bundled_portrait_files

    return bundled_portrait_files()[1].parent


# ----------------------------------------------------------------------------------------------
# The property table: name -> (arguments, folder to run in (None: anywhere))


@dataclass(frozen=True)
class Overlap:
    build: Callable[[World], list]
    cwd: Callable[[World], Path] | None = None


def convert(w: World, source: Path, output: object, *extra: object) -> list:
    return ["convert", source, "-m", w.model, "-o", output, "--overwrite", *extra]


def extract(source: Path, output: object, *extra: object) -> list:
    return ["extract", source, "-o", output, "--jobs", "1", *extra]


def score(w: World, json_path: object) -> list:
    return ["score", w.clip, w.hardlink, "--target", w.target, "--json", json_path, "--overwrite"]


def train(w: World, model: object) -> list:
    return ["train", w.faces_a, w.faces_b, "-m", model, "--iterations", "1"]


OVERLAPS: dict[str, Overlap] = {
    # --- extract: the faces folder (and its alignments file)
    "extract: -o the input file": Overlap(lambda w: extract(w.clip, w.clip)),
    "extract: -o the folder holding the input": Overlap(lambda w: extract(w.clip, w.folder, "--overwrite")),
    "extract: -o the input folder itself": Overlap(lambda w: extract(w.photos, w.photos, "--overwrite")),
    "extract: -o a symlink to the input": Overlap(lambda w: extract(w.clip, w.symlink)),
    "extract: -o a hard link to the input": Overlap(lambda w: extract(w.clip, w.hardlink)),
    "extract: -o a symlink to the input's folder": Overlap(lambda w: extract(w.clip, w.folder_link)),
    "extract: -o .": Overlap(lambda w: extract(Path("x.mp4"), "."), cwd=lambda w: w.folder),
    "extract: -o the folder of a --reference photo": Overlap(
        lambda w: extract(w.clip, w.photos, "--reference", w.photos / "p1.png")
    ),
    # --- convert: a video, a frames folder, a preview
    "convert: -o the input file": Overlap(lambda w: convert(w, w.clip, w.clip)),
    "convert: -o the folder holding the input": Overlap(lambda w: convert(w, w.clip, w.folder)),
    "convert: photos onto themselves": Overlap(lambda w: convert(w, w.photos, w.photos)),
    "convert: -o a symlink to the input": Overlap(lambda w: convert(w, w.clip, w.symlink)),
    "convert: -o a hard link to the input": Overlap(lambda w: convert(w, w.clip, w.hardlink)),
    "convert: -o .": Overlap(lambda w: convert(w, Path("x.mp4"), "."), cwd=lambda w: w.folder),
    "convert: --preview onto a photo": Overlap(
        lambda w: convert(w, w.photos, w.photos / "p1.png", "--preview", "0")
    ),
    "convert: -o a file among the input photos": Overlap(
        lambda w: convert(w, w.photos, w.photos / "old.mp4")
    ),
    "convert: -o the model folder": Overlap(lambda w: convert(w, w.clip, w.model)),
    "convert: -o the model's weights": Overlap(lambda w: convert(w, w.clip, w.model / "model.keras")),
    # --- score: the --json report
    "score: --json the original": Overlap(lambda w: score(w, w.clip)),
    "score: --json a symlink to the original": Overlap(lambda w: score(w, w.symlink)),
    "score: --json the target folder": Overlap(lambda w: score(w, w.target)),
    "score: --json a target photo": Overlap(lambda w: score(w, w.target / "face.png")),
    # --- train: the model folder
    "train: -m the faces folder itself": Overlap(lambda w: train(w, w.faces_a)),
    "train: -m the folder holding the faces": Overlap(lambda w: train(w, w.root)),
    "train: -m a symlink to the faces": Overlap(lambda w: train(w, w.faces_link)),
    "train: -m .": Overlap(lambda w: train(w, "."), cwd=lambda w: w.root),
    # --- demo: --out
    "demo: --out the bundled photos' folder": Overlap(lambda w: ["demo", "--out", sample_data()]),
    "demo: --out the folder above them": Overlap(lambda w: ["demo", "--out", sample_data().parent]),
}


@pytest.mark.parametrize("name", list(OVERLAPS))
def test_an_output_over_an_input_is_refused_and_the_inputs_stay(
    name: str, world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = OVERLAPS[name]
    if case.cwd is not None:
        monkeypatch.chdir(case.cwd(world))
    before = snapshot(world.root)
    bundled = {path: path.read_bytes() for path in sample_data().iterdir() if path.is_file()}
    args = case.build(world)
    code, stderr = run_in_process(args, capsys)
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1, f"{name}: exit {code}\n{stderr}"
    assert lines[0].startswith(f"faceswap {args[0]}: error: output ") and REFUSED in lines[0], lines[0]
    assert snapshot(world.root) == before, f"{name}: an input changed, or a file was written"
    assert all(path.read_bytes() == data for path, data in bundled.items())


def test_the_table_covers_every_subcommand_and_form() -> None:
    commands = {name.split(":")[0] for name in OVERLAPS}
    assert commands == {"extract", "convert", "score", "train", "demo"}
    assert len(OVERLAPS) >= 12
    for form in ("the input file", "holding the input", "itself", "symlink", "hard link", "-o ."):
        assert sum(form in name for name in OVERLAPS) >= 2, form


def test_refused_before_the_model_loads(world: World) -> None:
    """convert -o INPUT --overwrite: one line, and TensorFlow is never imported."""
    script = (
        "import sys; from faceswap.cli import main; "
        f"code = main(['convert', {str(world.clip)!r}, '-m', {str(world.model)!r}, '-o', "
        f"{str(world.clip)!r}, '--overwrite', '-q']); "
        "print('tensorflow' in sys.modules, code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.stdout.split() == ["False", "1"], result.stdout + result.stderr
    assert REFUSED in result.stderr and len(result.stderr.strip().splitlines()) == 1


GUARD = [
    # (output relative to the world, input, refused?)
    ("in/new.mp4", "in", False),  # a new file inside an input folder replaces nothing
    ("in/sub_faces", "in", False),  # nor does a new folder
    ("in/notes.txt", "in", True),  # an existing file inside it might be an input
    ("elsewhere.mp4", "in/x.mp4", False),
    ("hard.mp4", "in/x.mp4", True),
    ("in_link/x.mp4", "in/x.mp4", True),  # through a symlinked folder
    ("in", "in/x.mp4", True),
    ("in_link", "in/x.mp4", True),
]


@pytest.mark.parametrize(("output", "source", "refused"), GUARD)
def test_guard_outputs(world: World, output: str, source: str, refused: bool) -> None:
    if refused:
        with pytest.raises(OutputError, match=REFUSED) as error:
            guard_outputs([world.root / source], [world.root / output])
        assert str(world.root / output) in str(error.value) and str(world.root / source) in str(error.value)
    else:
        guard_outputs([world.root / source, None, world.root / "missing"], [world.root / output, None])


# ----------------------------------------------------------------------------------------------
# --overwrite replaces a folder only when faceswap made it, with nothing else in it


def test_overwrite_replaces_only_a_folder_faceswap_made(tmp_path: Path) -> None:
    from faceswap.media.writer import FramesWriter

    frames = [np.full((16, 16, 3), value, np.uint8) for value in (0, 255)]
    out = tmp_path / "frames"
    for overwrite in (False, True):
        with FramesWriter(out, overwrite=overwrite) as writer:
            for frame in frames:
                writer.write(frame)
    assert json.loads((out / FOLDER_MARKER).read_text())["files"] == ["frame_000000.png", "frame_000001.png"]
    (out / "mine.txt").write_text("the user's")
    with pytest.raises(OutputError, match=r"holds mine\.txt"):
        FramesWriter(out, overwrite=True)
    assert (out / "mine.txt").read_text() == "the user's"
    (out / "mine.txt").unlink()
    (out / FOLDER_MARKER).unlink()
    with pytest.raises(OutputError, match="did not make"):
        check_replaceable_folder(out)
    check_replaceable_folder(tmp_path / "absent")


def test_frames_named_alike_ignoring_case_are_kept_apart(tmp_path: Path) -> None:
    from faceswap.media.writer import FramesWriter

    with FramesWriter(tmp_path / "out") as writer:
        for number, name in enumerate(("Photo.jpg", "photo.png", "frame_000002.jpg", "x.jpg")):
            writer.write(np.full((8, 8, 3), number, np.uint8), name)
    names = sorted(p.name.casefold() for p in (tmp_path / "out").glob("*.png"))
    assert len(names) == len(set(names)) == 4


# ----------------------------------------------------------------------------------------------
# Names in any script


NAMES = [
    ("clip", "clip"),
    ("视频一", "视频一"),
    ("видео", "видео"),
    ("cafe\u0301", "café"),  # NFD (macOS) becomes NFC
    ("नमस्ते", "नमस्ते"),  # combining vowel signs are kept
    ("a/b\\c", "a_b_c"),
    ("line\nbreak\x00", "line_break"),
    ("..hidden", "hidden"),
    ("--option", "option"),
    ("../../etc/passwd", "etc_passwd"),
    ("", "unnamed"),
    ("日" * 200, "日" * 33),  # at most 100 UTF-8 bytes
]


@pytest.mark.parametrize(("raw", "expected"), NAMES)
def test_safe_name_keeps_letters_of_every_script(raw: str, expected: str) -> None:
    name = safe_name(raw)
    assert name == expected
    assert is_safe_name(name) and is_safe_name(crop_file_name(raw, 12, 0))
    assert safe_name(name) == name


def test_two_sources_never_share_a_name() -> None:
    names = unique_safe_names(["a b", "a_b", "A_B", "视频", "видео", "clip"])
    assert names == ["a_b", "a_b_2", "A_B_3", "视频", "видео", "clip"]
    assert len({name.casefold() for name in names}) == len(names)


def test_unicode_names_round_trip_through_extract_convert_and_train(tmp_path: Path) -> None:
    """extract writes crops named after a Chinese file name; its alignments load; train lists them."""
    from skimage import data

    from faceswap.demo import Portrait, write_clip
    from faceswap.train.dataset import list_faces

    clip = write_clip(Portrait("a", data.astronaut()), tmp_path / "宇航员.mp4", seconds=0.2)
    code = main(["extract", str(clip), "-o", str(tmp_path / "faces"), "--jobs", "1", "-q"])
    assert code == 0
    alignments = Alignments.load(tmp_path / "faces" / ALIGNMENTS_NAME)  # convert's check of crop names
    crops = sorted(face.crop for _, record in alignments for face in record.faces if face.crop)
    assert crops and all(crop.startswith("宇航员_") for crop in crops)
    assert [path.name for path in list_faces(tmp_path / "faces", "A")] == crops
    assert default_output_dir(clip) == Path("宇航员_faces")


def test_a_folder_of_videos_whose_names_collapse_gets_one_output_each(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a b.mp4", "a_b.mp4", "视频.mp4", "видео.mp4"):
        tiny_clip(videos / name, 3)
    code = main(["extract", str(videos), "-o", str(tmp_path / "out"), "--jobs", "1", "-q"])
    assert code == 0
    made = sorted(path.name for path in (tmp_path / "out").iterdir() if path.is_dir())
    assert made == sorted(["a_b_faces", "a_b_2_faces", "视频_faces", "видео_faces"])
    sources = {Alignments.load(tmp_path / "out" / name / ALIGNMENTS_NAME).source.path for name in made}
    assert len(sources) == 4


# ----------------------------------------------------------------------------------------------
# One run per output


def test_a_second_lock_names_the_first_owner(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with OutputLock(out, "convert"):
        assert f"pid {os.getpid()} (faceswap convert)" in lock_path(out).read_text()
        with pytest.raises(OutputError, match=f"in use by another faceswap run \\(pid {os.getpid()} "):
            OutputLock(tmp_path / "." / "out.mp4", "extract").acquire()
    assert not lock_path(out).exists()  # removed on release
    with OutputLock(out, "convert"):
        pass


def test_the_lock_of_a_killed_run_does_not_hold(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from faceswap.locks import OutputLock; OutputLock({str(out)!r}, 'x').acquire()"
            "; import time; print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputError, match=f"pid {holder.pid} "):
        OutputLock(out, "extract").acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock_path(out).exists()  # left behind by the kill, and no obstacle
    with OutputLock(out, "extract"):
        assert f"pid {os.getpid()} " in lock_path(out).read_text()


def test_two_extracts_on_one_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The second run fails at once with one line naming the first's pid; the first completes."""
    from skimage import data

    from faceswap.demo import Portrait, write_clip

    clip = write_clip(Portrait("a", data.astronaut()), tmp_path / "clip.mp4", seconds=2.0)
    out = tmp_path / "faces"
    first = subprocess.Popen(
        [sys.executable, "-m", "faceswap", "extract", str(clip), "-o", str(out), "--jobs", "1", "-q"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while f"pid {first.pid} " not in (lock_path(out).read_text() if lock_path(out).exists() else ""):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
        time.sleep(0.05)
    code, stderr = run_in_process(["extract", clip, "-o", out, "--jobs", "1"], capsys)
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1, stderr
    assert f"output {out} is in use by another faceswap run (pid {first.pid} (faceswap extract))" in lines[0]
    _, first_errors = first.communicate(timeout=300)
    assert first.returncode == 0, first_errors
    alignments = Alignments.load(out / ALIGNMENTS_NAME)
    assert len(alignments.frames) == 50 and alignments.face_count >= 40
    assert sorted(p.name for p in out.glob("*.png")) == sorted(
        face.crop for _, record in alignments for face in record.faces
    )
    assert not lock_path(out).exists()


# ----------------------------------------------------------------------------------------------
# Clean-up removes only temporaries whose writer is gone


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_carry_their_writers_pid(tmp_path: Path) -> None:
    assert temporary_path(tmp_path / "x.mp4").name.startswith(f"{TEMP_PREFIX}p{os.getpid()}-")
    assert temporary_path(tmp_path / "x.mp4").suffix == ".mp4"


def test_clean_up_spares_the_temporaries_of_a_live_run(tmp_path: Path) -> None:
    live = tmp_path / f"{TEMP_PREFIX}p{os.getpid()}-0123abcd-clip_000001_0.png"
    dead = tmp_path / f"{TEMP_PREFIX}p{dead_pid()}-0123abcd-clip_000002_0.png"
    legacy = tmp_path / f"{TEMP_PREFIX}89abcdef-clip_000003_0.png"  # before pids: its owner is unknown
    for path in (live, dead, legacy):
        path.write_bytes(b"half a crop")
    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(tmp_path.iterdir()) == [live]


def test_clean_up_of_one_output_spares_a_live_writer(tmp_path: Path) -> None:
    live = temporary_path(tmp_path / "out.mp4")
    dead = tmp_path / f"{TEMP_PREFIX}p{dead_pid()}-0123abcd-out.mkv"
    folder = tmp_path / f"{TEMP_PREFIX}p{dead_pid()}-00000000-out"
    for path in (live, dead):
        path.write_bytes(b"half")
    folder.mkdir()
    (folder / "frame_000000.png").write_bytes(b"png")
    assert remove_stale_temporaries_of(tmp_path / "out.mp4") == 2
    assert sorted(tmp_path.iterdir()) == [live]


def test_a_zombie_owns_nothing(tmp_path: Path) -> None:
    """An exited writer not yet reaped (as orphans stay in a container whose init never reaps) is gone."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stale = tmp_path / f"{TEMP_PREFIX}p{child.pid}-0123abcd-x.png"
        stale.write_bytes(b"half")
        assert remove_stale_temporaries(tmp_path) == 1
    finally:
        child.wait()
