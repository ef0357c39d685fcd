"""Issue 9, items 10 and 11: every option and every file value is checked before any work starts.

One table, run with the machinery of ``test_bad_inputs.py``: each case must
give a non-zero exit, exactly one line ``faceswap <command>: error: ...``
naming the problem, no traceback or "internal error", and write nothing.
It covers numeric options that are not finite or not ASCII numbers, values
far out of range, malformed values of an alignments file, oversized and
damaged images, one faces folder for both sides of train, and the
alignments of another video of the same frame count and size (its
fingerprint differs), for convert and for ``extract --resume``.

Everything here is generated (two 10-frame lavfi clips, synthetic faces), so
no case needs ``../shared/data``, and no model is loaded: convert checks its
alignments file before it opens the model folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.align import MEAN_FACE, alignment_matrix
from faceswap.alignments import ALIGNMENTS_NAME, Alignments, Face, FrameRecord, SourceInfo
from faceswap.cli import main
from faceswap.extract import ExtractOptions, extract
from faceswap.landmarks import INNER
from faceswap.media.ffmpeg import run_ffmpeg
from faceswap.media.reader import VideoSource
from tests.test_bad_inputs import run_in_process, run_subprocess, snapshot
from tests.test_media import png_header_only

FRAMES, SIDE = 10, 96


# ----------------------------------------------------------------------------------------------
# Material: two clips that differ only in content, the alignments of the first


@dataclass
class Material:
    clip_a: Path
    clip_b: Path  # same frame count, size, rate and duration as clip_a; other pictures
    document: dict  # a valid alignments document of clip_a, with one face in frame 0
    extracted: Path  # a finished extract of clip_a (alignments.json of the real pipeline)


def lavfi_clip(path: Path, pattern: str) -> Path:
    source = f"{pattern}=size={SIDE}x{SIDE}:rate=25"
    args = ["-f", "lavfi", "-i", source, "-frames:v", str(FRAMES), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    result = run_ffmpeg([*args, "-y", str(path)])
    assert result.returncode == 0, result.stderr
    return path


def synthetic_face() -> Face:
    """A face whose inner landmarks are the mean face, 40 px wide, in the middle of the frame."""
    landmarks = np.full((68, 2), 48.0)
    landmarks[INNER] = MEAN_FACE * 40 + 28
    return Face(box=(28.0, 28.0, 68.0, 68.0), landmarks=landmarks, matrix=alignment_matrix(landmarks))


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    folder = tmp_path_factory.mktemp("safety_material")
    clip_a = lavfi_clip(folder / "a.mp4", "testsrc")
    clip_b = lavfi_clip(folder / "b.mp4", "testsrc2")
    source = SourceInfo.of_video(clip_a, VideoSource(clip_a).info)
    alignments = Alignments(source, frames={0: FrameRecord([synthetic_face()]), 1: FrameRecord([])})
    alignments.save(folder / "a.json")
    document = json.loads((folder / "a.json").read_text())
    extracted = folder / "a_faces"
    extract(clip_a, ExtractOptions(output=extracted, jobs=1, progress=False))
    return Material(clip_a, clip_b, document, extracted)


def test_the_two_clips_differ_only_in_content(material: Material) -> None:
    """What makes the fingerprint the only thing that can tell their alignments apart."""
    a, b = VideoSource(material.clip_a).info, VideoSource(material.clip_b).info
    assert (a.frame_count, a.size, a.fps, a.duration) == (b.frame_count, b.size, b.fps, b.duration)
    assert material.clip_a.read_bytes() != material.clip_b.read_bytes()
    recorded = Alignments.load(material.extracted / ALIGNMENTS_NAME).source
    assert recorded.fingerprint is not None and recorded.fingerprint.startswith("sample-blake2b:")


# ----------------------------------------------------------------------------------------------
# Inputs the cases build


def hostile(material: Material, change: Callable[[dict], object]) -> dict:
    document = json.loads(json.dumps(material.document))
    change(document)
    return document


def face0(document: dict) -> dict:
    return document["frames"]["0"]["faces"][0]


def replace_first_landmark(material: Material, literal: str) -> str:
    """The document as text with its first landmark coordinate replaced by ``literal`` (not JSON's)."""
    text = json.dumps(material.document)
    first = json.dumps(face0(material.document)["landmarks"][0][0])
    marker = f'"landmarks": [[{first}'
    assert marker in text
    return text.replace(marker, f'"landmarks": [[{literal}', 1)


def convert_with(m: Material, t: Path, document: object) -> list:
    """convert clip A with alignments ``document`` (the model folder is never reached)."""
    path = t / "a.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return ["convert", m.clip_a, "-m", t / "no-model", "-o", t / "out.mp4", "-a", path]


def extract_clip(m: Material, t: Path, *options: object) -> list:
    return ["extract", m.clip_a, "-o", t / "out", "--jobs", "1", *options]


def convert_clip(m: Material, t: Path, *options: object) -> list:
    return ["convert", m.clip_a, "-m", t / "no-model", "-o", t / "out.mp4", *options]


def faces_folder(folder: Path) -> Path:
    folder.mkdir()
    cv2.imwrite(str(folder / "face_0.png"), np.full((64, 64, 3), 128, np.uint8))
    return folder


def train_args(a: Path, b: Path, t: Path) -> list:
    return ["train", a, b, "-m", t / "model", "--iterations", "1"]


def linked(target: Path, link: Path) -> Path:
    link.symlink_to(target, target_is_directory=True)
    return link


def damaged_png(path: Path, cut: bool) -> Path:
    """A photo-like PNG, truncated (``cut``) or with one byte flipped in its pixel data."""
    pixels = np.random.default_rng(3).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    data = bytearray(cv2.imencode(".png", pixels)[1].tobytes())
    if cut:
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def resume_with(m: Material, t: Path, clip: Path) -> list:
    """extract --resume of ``clip`` into a copy of clip A's finished extract."""
    shutil.copytree(m.extracted, t / "out")
    return ["extract", clip, "-o", t / "out", "--jobs", "1", "--resume"]


# ----------------------------------------------------------------------------------------------
# The table: name -> (builder of the arguments, text the error line must contain)


@dataclass(frozen=True)
class Case:
    build: Callable[[Material, Path], list]
    expect: str
    subprocess: bool = False  # stderr as users see it: C libraries and Python warnings included


CASES: dict[str, Case] = {
    # --- numeric options: not finite, not ASCII, not whole, out of range
    "extract --min-size nan": Case(lambda m, t: extract_clip(m, t, "--min-size", "nan"), "finite number"),
    "extract --blur-threshold inf": Case(
        lambda m, t: extract_clip(m, t, "--blur-threshold", "inf"), "--blur-threshold must be a finite"
    ),
    "extract --identity-threshold -inf": Case(
        lambda m, t: extract_clip(m, t, "--identity-threshold", "-inf"), "finite number"
    ),
    "extract --min-size 1e309": Case(lambda m, t: extract_clip(m, t, "--min-size", "1e309"), "finite number"),
    "extract --every in Arabic-Indic digits": Case(
        lambda m, t: extract_clip(m, t, "--every", "١٢"), "--every must be a whole number"
    ),
    "extract --size 1e3": Case(lambda m, t: extract_clip(m, t, "--size", "1e3"), "whole number"),
    "extract --jobs 100000": Case(lambda m, t: extract_clip(m, t, "--jobs", "100000"), "at most 256"),
    "extract --max-faces -1": Case(lambda m, t: extract_clip(m, t, "--max-faces", "-1"), "--max-faces"),
    "convert --erode nan": Case(
        lambda m, t: convert_clip(m, t, "--erode", "nan"), "--erode must be a finite"
    ),
    "convert --fps inf": Case(lambda m, t: convert_clip(m, t, "--fps", "inf"), "finite number"),
    "convert --sharpen -1e309": Case(lambda m, t: convert_clip(m, t, "--sharpen", "-1e309"), "finite number"),
    "convert --crf 1_8": Case(
        lambda m, t: convert_clip(m, t, "--crf", "1_8"), "--crf must be a whole number"
    ),
    "convert --batch-size 0": Case(lambda m, t: convert_clip(m, t, "--batch-size", "0"), "--batch-size"),
    "train --learning-rate nan": Case(
        lambda m, t: [*train_args(t / "A", t / "B", t), "--learning-rate", "nan"], "finite number"
    ),
    "train --rotation 1e300": Case(
        lambda m, t: [*train_args(t / "A", t / "B", t), "--rotation", "1e300"], "at most 180"
    ),
    "train --batch-size 1000000": Case(
        lambda m, t: [*train_args(t / "A", t / "B", t), "-b", "1000000"], "at most 1024"
    ),
    "train --mask-weight 1e12": Case(
        lambda m, t: [*train_args(t / "A", t / "B", t), "--mask-weight", "1e12"], "at most 100"
    ),
    "train --time of 1e9 hours": Case(
        lambda m, t: [*train_args(t / "A", t / "B", t), "--time", "1000000000h"], "at most a year"
    ),
    "train --seed in Arabic-Indic digits": Case(
        lambda m, t: [*train_args(t / "A", t / "B", t), "--seed", "٣"], "whole number"
    ),
    "score --identity-every nan": Case(
        lambda m, t: ["score", m.clip_a, m.clip_b, "--target", m.clip_a, "--identity-every", "nan"],
        "whole number",
    ),
    "demo --minutes inf": Case(lambda m, t: ["demo", "--out", t / "demo", "--minutes", "inf"], "finite"),
    "demo --minutes -inf": Case(lambda m, t: ["demo", "--out", t / "demo", "--minutes", "-inf"], "finite"),
    # --- alignments values
    "convert: frame key in Arabic-Indic digits": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: d["frames"].update({"١": {"faces": []}}))),
        "frame key '١' is not a frame number",
    ),
    "convert: frame key in superscript": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: d["frames"].update({"²": {"faces": []}}))),
        "is not a frame number",
    ),
    "convert: frame key with a leading zero": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: d["frames"].update({"01": {"faces": []}}))),
        "is not a frame number",
    ),
    "convert: matrix of 1e300": Case(
        lambda m, t: convert_with(
            m, t, hostile(m, lambda d: face0(d).update(matrix=[[1e300, 0, 0], [0, 1e300, 0]]))
        ),
        "frame 0, face 0: matrix values are out of range",
    ),
    "convert: matrix that puts the face far away": Case(
        lambda m, t: convert_with(
            m, t, hostile(m, lambda d: face0(d).update(matrix=[[1e-5, 0, 9e5], [0, 1e-5, 0]]))
        ),
        "frame 0, face 0: matrix puts the face outside the frame",
    ),
    "convert: NaN landmark": Case(
        lambda m, t: convert_with(m, t, replace_first_landmark(m, "NaN")),
        "landmarks must hold finite numbers",
    ),
    "convert: landmark of 10**400": Case(
        lambda m, t: convert_with(m, t, replace_first_landmark(m, "1" + "0" * 400)),
        "landmarks must hold finite numbers",
    ),
    "convert: a number of 5000 digits": Case(
        lambda m, t: convert_with(m, t, replace_first_landmark(m, "1" * 5000)), "too many digits"
    ),
    "convert: landmarks nested one level too deep": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: face0(d).update(landmarks=[[[1], [2]]] * 68))),
        "frame 0, face 0: landmarks must hold numbers only",
    ),
    "convert: box upside down": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: face0(d).update(box=[68, 68, 28, 28]))),
        "frame 0, face 0: box must be",
    ),
    "convert: blur of 10**400": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: face0(d).update(blur=10**400))),
        "frame 0, face 0: blur is out of range",
    ),
    "convert: fps in Arabic-Indic digits": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: d["source"].update(fps="٢٥"))), "source.fps"
    ),
    "convert: fingerprint that is not one": Case(
        lambda m, t: convert_with(m, t, hostile(m, lambda d: d["source"].update(fingerprint=["x"]))),
        "source.fingerprint",
    ),
    # --- the alignments of another video (same frame count and size)
    "convert: alignments of another clip": Case(
        lambda m, t: [
            "convert",
            m.clip_b,
            "-m",
            t / "none",
            "-o",
            t / "b.mp4",
            "-a",
            m.extracted / ALIGNMENTS_NAME,
        ],
        "was made for another video of the same frame count and size",
    ),
    "extract --resume: alignments of another clip": Case(
        lambda m, t: resume_with(m, t, m.clip_b),
        "was made for another video of the same frame count and size",
    ),
    # --- images: the imaging libraries must not speak first
    "extract: 100-megapixel PNG": Case(
        lambda m, t: [
            "extract",
            png_header_only(t / "big.png", 10_000, 10_000),
            "-o",
            t / "out",
            "--jobs",
            "1",
        ],
        "10000x10000 is too large",
        subprocess=True,
    ),
    "extract: 400-megapixel PNG": Case(
        lambda m, t: [
            "extract",
            png_header_only(t / "huge.png", 20_000, 20_000),
            "-o",
            t / "out",
            "--jobs",
            "1",
        ],
        "the image is too large",
        subprocess=True,
    ),
    "extract: truncated PNG": Case(
        lambda m, t: ["extract", damaged_png(t / "cut.png", cut=True), "-o", t / "out", "--jobs", "1"],
        "damaged or truncated PNG",
        subprocess=True,
    ),
    "extract: PNG with a flipped byte": Case(
        lambda m, t: ["extract", damaged_png(t / "flip.png", cut=False), "-o", t / "out", "--jobs", "1"],
        "damaged or truncated PNG",
        subprocess=True,
    ),
    # --- train: one folder for both sides
    "train A A": Case(lambda m, t: train_args(faces_folder(t / "A"), t / "A", t), "are one folder"),
    "train A and a link to A": Case(
        lambda m, t: train_args(faces_folder(t / "A"), linked(t / "A", t / "B"), t), "are one folder"
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_refused_before_any_work(name: str, material: Material, tmp_path: Path, capsys) -> None:
    case = CASES[name]
    args = case.build(material, tmp_path)
    before = snapshot(tmp_path)
    if case.subprocess:
        code, stderr = run_subprocess(args, None)
    else:
        code, stderr = run_in_process(args, capsys)
    lines = stderr.strip().splitlines()
    assert code != 0, f"{name}: exit status 0\n{stderr}"
    assert len(lines) == 1, f"{name}: expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith(f"faceswap {args[0]}: error: "), lines[0]
    assert "Traceback" not in stderr and "internal error" not in stderr, lines[0]
    assert case.expect in lines[0], f"{name}: {case.expect!r} not in {lines[0]!r}"
    assert snapshot(tmp_path) == before, f"{name}: files were written or changed"


def test_the_table_is_large() -> None:
    assert len(CASES) >= 15


# ----------------------------------------------------------------------------------------------
# What is accepted: the same clip, a file without a fingerprint, the valid base document


def test_the_clips_own_alignments_pass_the_check(material: Material, tmp_path: Path, capsys) -> None:
    """convert of clip A with A's alignments gets past them, to the (missing) model: the control case."""
    code, stderr = run_in_process(
        [
            "convert",
            material.clip_a,
            "-m",
            tmp_path / "none",
            "-o",
            tmp_path / "a.mp4",
            "-a",
            material.extracted / ALIGNMENTS_NAME,
        ],
        capsys,
    )
    assert code == 1 and "no such model folder" in stderr and "was made for" not in stderr, stderr
    code, stderr = run_in_process(convert_with(material, tmp_path, material.document), capsys)
    assert code == 1 and "no such model folder" in stderr, stderr


def test_extract_resume_of_the_same_clip_goes_on(material: Material, tmp_path: Path, capsys) -> None:
    shutil.copytree(material.extracted, tmp_path / "out")
    code = main(
        ["extract", "-q", str(material.clip_a), "-o", str(tmp_path / "out"), "--jobs", "1", "--resume"]
    )
    assert code == 0, capsys.readouterr().err


def test_an_old_file_without_fingerprint_is_accepted_with_a_warning(
    material: Material, tmp_path: Path, capsys
) -> None:
    document = hostile(material, lambda d: d["source"].pop("fingerprint"))
    capsys.readouterr()
    code = main([str(arg) for arg in convert_with(material, tmp_path, document)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "no such model folder" in lines[-1], lines
    assert any("records no fingerprint" in line for line in lines[:-1]), lines


def test_the_fingerprint_reads_a_few_mebibytes_of_any_file(tmp_path: Path) -> None:
    """Start, middle and end: a change anywhere in them, or of the size, changes it; the name does not."""
    from faceswap.fingerprint import SAMPLE_BYTES, file_fingerprint

    big = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 5 * SAMPLE_BYTES, dtype=np.uint8).tobytes())
    big.write_bytes(bytes(data))
    first = file_fingerprint(big)
    renamed = big.rename(tmp_path / "renamed.bin")
    assert file_fingerprint(renamed) == first
    for offset in (10, len(data) // 2, len(data) - 10):
        changed = bytearray(data)
        changed[offset] ^= 1
        renamed.write_bytes(bytes(changed))
        assert file_fingerprint(renamed) != first, offset
    renamed.write_bytes(bytes(data) + b"\0")
    assert file_fingerprint(renamed) != first


def test_validators_accept_what_they_should() -> None:
    from faceswap.cli.validators import duration, finite_float, whole_number

    assert finite_float()("-1e-3") == -0.001 and finite_float(0)(" 2.5 ") == 2.5
    assert whole_number(1)("+7") == 7 and duration("1h30m") == 5400.0
