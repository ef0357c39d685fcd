"""Promise 2 of issue 6: a bad input gets one line naming it, a non-zero exit, and nothing written.

One table of bad inputs across the subcommands. Each case builds its input in
a fresh folder, runs the command (in-process through :func:`faceswap.cli.main`
where that is faithful; in a subprocess for the full-disk cases, which need
``RLIMIT_FSIZE``, and for extract's bad input files with its default worker
pool, whose shutdown at interpreter exit must add nothing to stderr), and checks:

* the exit status is non-zero,
* stderr is exactly one line, ``faceswap <command>: error: ...``, naming the problem,
* no traceback, no "internal error",
* nothing was written under a final name: every file present before is
  unchanged, and no file appeared (faceswap's temporaries included).

Other bad inputs are tested where their module is (hostile alignments
documents field by field in ``test_alignments.py``, damaged media in
``test_media.py``); this table checks that each kind reaches the user as one
line through every command that reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.alignments import ALIGNMENTS_NAME
from faceswap.cli import main
from faceswap.crops import read_crop, write_crop
from faceswap.media.ffmpeg import run_ffmpeg
from tests.conftest import require_data
from tests.convert_support import excerpt, find_alignments_now, lite_folder, random_model_folder

ROOT = Path(__file__).resolve().parents[1]
CLIP_FRAMES = 12


# ----------------------------------------------------------------------------------------------
# Shared material (built once)


@dataclass
class Material:
    folder: Path
    clip: Path  # 12 frames of d18.mp4 with its audio
    alignments: dict  # the clip's alignments document
    faces_a: Path
    faces_b: Path
    trained: Path  # a model folder after one real training step (with its optimizer)


def hundred_faces(source: Path, folder: Path) -> Path:
    """100 crops (copies of ``source``'s): enough that train warns about nothing."""
    folder.mkdir()
    crops = sorted(source.glob("*.png"))
    for number in range(100):
        shutil.copy(crops[number % len(crops)], folder / f"face_{number:03d}.png")
    return folder


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory, faces_d18: Path, faces_d19: Path) -> Material:
    folder = tmp_path_factory.mktemp("bad_material")
    clip = excerpt(require_data("video", "d18.mp4"), CLIP_FRAMES, folder / "clip.mp4")
    alignments = find_alignments_now(clip)
    alignments.save(folder / "clip_alignments.json")
    document = json.loads((folder / "clip_alignments.json").read_text())
    faces_a, faces_b = hundred_faces(faces_d18, folder / "A"), hundred_faces(faces_d19, folder / "B")
    trained = folder / "trained"
    lite = ["--model", "lite", "-b", "2", "--iterations", "1", "--seed", "1", "-q"]
    result = subprocess.run(
        [sys.executable, "-m", "faceswap", "train", faces_a, faces_b, "-m", trained, *lite],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return Material(folder, clip, document, faces_a, faces_b, trained)


# ----------------------------------------------------------------------------------------------
# Inputs the cases build


def write_alignments(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def hostile(material: Material, change: Callable[[dict], object]) -> dict:
    document = json.loads(json.dumps(material.alignments))
    result = change(document)
    return document if result is None else result


def first_face(document: dict) -> dict:
    return next(record["faces"][0] for record in document["frames"].values() if record["faces"])


def ffmpeg_make(path: Path, *args: str) -> Path:
    result = run_ffmpeg([*args, "-y", str(path)])
    assert result.returncode == 0, result.stderr
    return path


def copy_model(material: Material, folder: Path) -> Path:
    shutil.copytree(material.trained, folder, ignore=shutil.ignore_patterns("best", "*.png"))
    return folder


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def mixed_sizes(material: Material, folder: Path) -> Path:
    folder.mkdir()
    crops = sorted(material.faces_a.glob("*.png"))[:3]
    for crop in crops:
        shutil.copy(crop, folder)
    image, _info = read_crop(crops[0])
    write_crop(folder / "small.png", cv2.resize(image, (128, 128)), None)
    return folder


def only_text(folder: Path) -> Path:
    folder.mkdir()
    (folder / "face.png").write_text("not a picture")
    return folder


def several_faces() -> Path:
    return require_data("dlib_faces", "bald_guys.jpg")


# ----------------------------------------------------------------------------------------------
# The table: name -> (builder of the arguments, text the error line must contain)

Build = Callable[[Material, Path], list]


@dataclass(frozen=True)
class Case:
    build: Build
    expect: str
    fsize_limit: int | None = None  # run in a subprocess under RLIMIT_FSIZE (bytes)
    subprocess: bool = False  # run as users do, in a subprocess (stderr of workers and exit handlers too)


def convert(m: Material, t: Path, *extra: object, alignments: object = None) -> list:
    """convert the clip with the random lite model, into t/out.mp4."""
    args = ["convert", m.clip, "-m", lite_folder(), "-o", t / "out.mp4", *extra]
    if alignments is not None:
        args += ["-a", write_alignments(t / "a.json", alignments)]
    return args


def extract(t: Path, source: object, *extra: object) -> list:
    return ["extract", source, "-o", t / "out", "--jobs", "1", *extra]


def extract_as_users_do(t: Path, source: object) -> list:
    """extract with its default worker pool (the pool's shutdown must add nothing to stderr)."""
    return ["extract", source, "-o", t / "out"]


def resume_extract(m: Material, t: Path, document: object) -> list:
    """extract --resume into a folder whose alignments file is ``document``."""
    write_alignments(t / "out" / ALIGNMENTS_NAME, document)
    return extract(t, m.clip, "--resume")


def resume_train(t: Path, model: Path) -> list:
    return ["train", "--resume", "-m", model, "--iterations", "1"]


def lying_state(m: Material, t: Path, change: Callable[[dict], None]) -> Path:
    model = copy_model(m, t / "model")
    state = json.loads((model / "state.json").read_text())
    change(state)
    (model / "state.json").write_text(json.dumps(state))
    return model


def blocker(t: Path) -> Path:
    path = t / "blocker"
    path.write_text("a file where a folder should be")
    return path


def audio_only(t: Path, m: Material) -> Path:
    return ffmpeg_make(t / "sound.mp4", "-i", str(m.clip), "-vn", "-c:a", "copy")


def tiny_video(t: Path) -> Path:
    return ffmpeg_make(
        t / "tiny.mp4",
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=7x5:r=25",
        "-frames:v",
        "5",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv444p",
    )


def image(path: Path, width: int, height: int) -> Path:
    cv2.imwrite(str(path), np.full((height, width, 3), 128, np.uint8))
    return path


def text_file(path: Path, content: str | bytes = "this is not media\n") -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def truncated_clip(m: Material, t: Path) -> Path:
    path = t / "half.mp4"
    shutil.copy(m.clip, path)
    truncate(path)
    return path


def empty_dir(path: Path) -> Path:
    path.mkdir()
    return path


CASES: dict[str, Case] = {
    # --- extract: the input
    "extract: missing path": Case(
        lambda m, t: extract_as_users_do(t, t / "nowhere.mp4"), "no such file", subprocess=True
    ),
    "extract: empty file": Case(
        lambda m, t: extract_as_users_do(t, text_file(t / "e.mp4", b"")), "empty file", subprocess=True
    ),
    "extract: text named .mp4": Case(
        lambda m, t: extract_as_users_do(t, text_file(t / "n.mp4")), "not a readable video", subprocess=True
    ),
    "extract: truncated video": Case(
        lambda m, t: extract_as_users_do(t, truncated_clip(m, t)), "not a readable video", subprocess=True
    ),
    "extract: no video stream": Case(lambda m, t: extract(t, audio_only(t, m)), "no video stream"),
    "extract: folder without media": Case(
        lambda m, t: extract_as_users_do(t, empty_dir(t / "docs")),
        "holds no images or videos",
        subprocess=True,
    ),
    "extract: 1x1 image": Case(lambda m, t: extract(t, image(t / "dot.png", 1, 1)), "1x1 is too small"),
    "extract: 7x5 video": Case(lambda m, t: extract(t, tiny_video(t)), "7x5 is too small"),
    "extract: broken image named .png": Case(
        lambda m, t: extract(t, text_file(t / "photo.png")), "not a readable image"
    ),
    # --- extract: options
    "extract: --every 0": Case(lambda m, t: extract(t, m.clip, "--every", "0"), "--every must be at least 1"),
    "extract: --size 10": Case(lambda m, t: extract(t, m.clip, "--size", "10"), "--size must be from"),
    "extract: --jobs 0": Case(lambda m, t: extract(t, m.clip, "--jobs", "0"), "--jobs must be at least 1"),
    "extract: --resume with --overwrite": Case(
        lambda m, t: extract(t, m.clip, "--resume", "--overwrite"), "contradict"
    ),
    # --- extract: --reference
    "extract: missing reference photo": Case(
        lambda m, t: extract(t, m.clip, "--reference", t / "me.jpg"), "no such reference photo"
    ),
    "extract: reference without a face": Case(
        lambda m, t: extract(t, m.clip, "--reference", require_data("images", "no_face", "s25.jpg")),
        "no face",
    ),
    "extract: reference with several faces": Case(
        lambda m, t: extract(t, m.clip, "--reference", several_faces()), "faces of similar size"
    ),
    # --- extract: the alignments file it would resume
    "extract --resume: truncated alignments": Case(
        lambda m, t: resume_extract(m, t, json.dumps(m.alignments)[:-100]), "corrupt JSON"
    ),
    "extract --resume: newer version": Case(
        lambda m, t: resume_extract(m, t, hostile(m, lambda d: d.update(version=99))), "newer faceswap"
    ),
    "extract --resume: another video's": Case(
        lambda m, t: resume_extract(
            m, t, hostile(m, lambda d: d["source"].update(frame_count=500, width=640, height=360))
        ),
        "640x360",
    ),
    # --- extract: the output
    "extract: output is a file": Case(
        lambda m, t: ["extract", m.clip, "-o", blocker(t), "--jobs", "1"], "not a folder"
    ),
    "extract: disk full": Case(lambda m, t: extract(t, m.clip), "file size limit", fsize_limit=30_000),
    # --- train
    "train: empty faces folder": Case(
        lambda m, t: ["train", empty_dir(t / "A"), m.faces_b, "-m", t / "m", "--iterations", "1"],
        "no face images",
    ),
    "train: missing faces folder": Case(
        lambda m, t: ["train", t / "A", m.faces_b, "-m", t / "m", "--iterations", "1"], "no such folder"
    ),
    "train: faces of mixed sizes": Case(
        lambda m, t: ["train", mixed_sizes(m, t / "A"), m.faces_b, "-m", t / "m", "--iterations", "1"],
        "different sizes",
    ),
    "train: no readable crop": Case(
        lambda m, t: ["train", only_text(t / "A"), m.faces_b, "-m", t / "m", "--iterations", "1"],
        "none of the 1 images",
    ),
    "train: a video instead of a faces folder": Case(
        lambda m, t: ["train", m.clip, m.faces_b, "-m", t / "m", "--iterations", "1"], "folder"
    ),
    "train --resume: no such model": Case(lambda m, t: resume_train(t, t / "none"), "no such model folder"),
    "train --resume: truncated weights": Case(
        lambda m, t: resume_train(t, truncate_in(copy_model(m, t / "model"), "model.keras")),
        "truncated model file",
    ),
    "train --resume: state of another model": Case(
        lambda m, t: resume_train(t, lying_state(m, t, lambda s: s.update(model="original"))),
        "state.json says 'original'",
    ),
    "train --resume: state lies about the size": Case(
        lambda m, t: resume_train(t, lying_state(m, t, lambda s: s.update(input_size=128))),
        "input size 128",
    ),
    "train --resume: negative iteration": Case(
        lambda m, t: resume_train(t, lying_state(m, t, lambda s: s.update(iteration=-3))), "iteration"
    ),
    "train --resume: faces folder that is not a name": Case(
        lambda m, t: resume_train(t, lying_state(m, t, lambda s: s["config"].update(faces_a=[1, 2]))),
        "config.faces_a is not a folder name",
    ),
    "train --resume: corrupt state": Case(
        lambda m, t: resume_train(t, truncate_in(copy_model(m, t / "model"), "state.json")), "corrupt"
    ),
    "train: model folder under a file": Case(
        lambda m, t: ["train", m.faces_a, m.faces_b, "-m", blocker(t) / "m", "--iterations", "1"], "blocker"
    ),
    "train: disk full at the checkpoint": Case(
        lambda m, t: [*resume_train(t, copy_model(m, t / "model")), "--save-every", "1"],
        "file size limit",
        fsize_limit=20_000_000,
    ),
    # --- convert
    "convert: missing model": Case(
        lambda m, t: ["convert", m.clip, "-m", t / "none", "-o", t / "out.mp4"], "no such model folder"
    ),
    "convert: model folder of another model": Case(
        lambda m, t: [
            "convert",
            m.clip,
            "-m",
            random_model_folder(t / "m", "lite", "original128"),
            "-o",
            t / "out.mp4",
        ],
        "state.json says 'original128'",
    ),
    "convert: truncated weights": Case(
        lambda m, t: [
            "convert",
            m.clip,
            "-m",
            truncate_in(copy_model(m, t / "m"), "model.keras"),
            "-o",
            t / "out.mp4",
        ],
        "truncated model file",
    ),
    "convert: empty input": Case(
        lambda m, t: ["convert", text_file(t / "e.mp4", b""), "-m", lite_folder(), "-o", t / "o.mp4"],
        "empty file",
    ),
    "convert: no video stream": Case(
        lambda m, t: ["convert", audio_only(t, m), "-m", lite_folder(), "-o", t / "o.mp4"], "no video stream"
    ),
    "convert: truncated alignments": Case(
        lambda m, t: convert(m, t, alignments=json.dumps(m.alignments)[: len(json.dumps(m.alignments)) // 2]),
        "corrupt JSON",
    ),
    "convert: alignments not JSON": Case(
        lambda m, t: convert(m, t, alignments="\x00\xff binary junk"), "alignments"
    ),
    "convert: alignments of version 0": Case(
        lambda m, t: convert(m, t, alignments=hostile(m, lambda d: d.update(version=0))), "unknown version"
    ),
    "convert: landmarks as text": Case(
        lambda m, t: convert(
            m, t, alignments=hostile(m, lambda d: first_face(d).update(landmarks=[["1", "2"]] * 68))
        ),
        "numbers",
    ),
    "convert: huge landmark array": Case(
        lambda m, t: convert(
            m, t, alignments=hostile(m, lambda d: first_face(d).update(landmarks=[[0, 0]] * 200_000))
        ),
        "landmarks",
    ),
    "convert: negative frame number": Case(
        lambda m, t: convert(
            m, t, alignments=hostile(m, lambda d: d["frames"].update({"-1": {"faces": []}}))
        ),
        "not a frame number",
    ),
    "convert: 0-fps alignments": Case(
        lambda m, t: convert(m, t, alignments=hostile(m, lambda d: d["source"].update(fps="0/1"))), "fps"
    ),
    "convert: alignments of another video": Case(
        lambda m, t: convert(m, t, alignments=hostile(m, lambda d: d["source"].update(frame_count=99))),
        "was made for",
    ),
    "convert: output under a file": Case(
        lambda m, t: ["convert", m.clip, "-m", lite_folder(), "-o", blocker(t) / "o.mp4"], "not a folder"
    ),
    "convert: output of unknown kind": Case(
        lambda m, t: ["convert", m.clip, "-m", lite_folder(), "-o", t / "o.avi"], ".mp4 or .gif"
    ),
    "convert: disk full": Case(
        lambda m, t: [
            *convert(m, t, "--overwrite", alignments=m.alignments),
            "-o",
            previous_output(t / "kept.mp4"),
        ],
        "file size limit",
        fsize_limit=8_000,
    ),
    # --- score
    "score: missing swapped video": Case(
        lambda m, t: ["score", m.clip, t / "none.mp4", "--target", m.faces_b], "no such file"
    ),
    "score: --identity-every 0": Case(
        lambda m, t: ["score", m.clip, m.clip, "--target", m.faces_b, "--identity-every", "0"],
        "--identity-every",
    ),
}


def truncate_in(folder: Path, name: str) -> Path:
    truncate(folder / name)
    return folder


def previous_output(path: Path) -> Path:
    path.write_bytes(b"a previous output that must survive")
    return path


# ----------------------------------------------------------------------------------------------
# Running a case and checking the promise


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its content."""
    return {
        str(path.relative_to(folder)): hashlib.sha1(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main([args[0], "-q", *map(str, args[1:])])
    return code, capsys.readouterr().err


def limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def run_subprocess(args: list[str], limit: int | None) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "faceswap", args[0], "-q", *map(str, args[1:])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        preexec_fn=None if limit is None else limit_file_size(limit),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return result.returncode, result.stderr


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, material: Material, tmp_path: Path, capsys) -> None:
    case = CASES[name]
    args = case.build(material, tmp_path)
    before = snapshot(tmp_path)
    if case.fsize_limit is None and not case.subprocess:
        code, stderr = run_in_process(args, capsys)
    else:
        code, stderr = run_subprocess(args, case.fsize_limit)
    # Warnings about the material itself (coverage of the faces, say) may come first, a line each.
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert code != 0, f"{name}: exit status 0\n{stderr}"
    assert len(lines) == 1, f"{name}: expected one error line on stderr, got:\n{stderr}"
    assert stderr.strip().endswith(lines[0]), f"{name}: the error is not the last line:\n{stderr}"
    command = args[0]
    assert lines[0].startswith(f"faceswap {command}: error: "), lines[0]
    assert "Traceback" not in stderr and "internal error" not in stderr, lines[0]
    assert case.expect in lines[0], f"{name}: {case.expect!r} not in {lines[0]!r}"
    assert snapshot(tmp_path) == before, f"{name}: files were written or changed"


def test_the_table_is_large_and_spread() -> None:
    commands = [name.split(":")[0].split()[0] for name in CASES]
    counts = {command: commands.count(command) for command in dict.fromkeys(commands)}
    print(f"bad inputs by subcommand: {counts} (total {len(CASES)})")
    assert len(CASES) >= 30 and counts["extract"] >= 10 and counts["train"] >= 8 and counts["convert"] >= 10


def test_a_side_with_fewer_faces_than_the_preview_still_previews() -> None:
    """Three faces on side A, four on B (--preview-faces 4): rows of A's columns stay empty."""
    from faceswap.train.preview import render_preview

    three, four = np.full((3, 64, 64, 3), 200, np.uint8), np.full((4, 64, 64, 3), 100, np.uint8)
    image = render_preview([("A", three), ("A > B", three), ("B", four), ("B > A", four)])
    assert image.dtype == np.uint8 and image.ndim == 3
    assert (image == 200).all(axis=2).sum() > 0 and (image == 100).all(axis=2).sum() > 0
