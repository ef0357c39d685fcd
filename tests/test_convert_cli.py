"""``faceswap convert`` on the command line: a bad input is one line, a non-zero exit, nothing written."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faceswap.alignments import Alignments, SourceInfo
from faceswap.cli import main
from faceswap.fileio import TEMP_PREFIX
from tests.conftest import require_data
from tests.convert_support import alignments_of, lite_folder
from tests.test_cli import subcommand_parsers


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["convert", "-q", *map(str, args)])
    lines = capsys.readouterr().err.strip().splitlines()
    return code, lines


def assert_refused(capsys, output: Path, *args: str, message: str) -> None:
    code, lines = run_main(capsys, *args, "-o", output)
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("faceswap convert: error:") and message in lines[0], lines[0]
    assert "Traceback" not in lines[0]
    assert not output.exists()
    if output.parent.is_dir():
        assert not list(output.parent.glob(f"{TEMP_PREFIX}*"))


def linked_model(folder: Path, state: str) -> Path:
    """The random lite weights under a state.json that claims network ``state``."""
    from faceswap.model import model_spec
    from faceswap.model_folder import TrainingState, write_state

    folder.mkdir()
    os.symlink(lite_folder() / "model.keras", folder / "model.keras")
    write_state(folder, TrainingState(state, model_spec(state).input_size))
    return folder


def test_missing_model(tmp_path: Path, capsys) -> None:
    video = require_data("video", "d0.mp4")
    assert_refused(
        capsys, tmp_path / "out.mp4", video, "-m", tmp_path / "nowhere", message="no such model folder"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused(capsys, tmp_path / "out.mp4", video, "-m", empty, message="not a model folder")
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"precious")  # the missing model is what is said, not the existing output
    code, lines = run_main(capsys, video, "-m", tmp_path / "nowhere", "-o", existing)
    assert code == 1 and len(lines) == 1 and "no such model folder" in lines[0], lines


@pytest.mark.parametrize("claimed", ["original", "original128"])
def test_a_model_of_another_kind_or_size_than_its_state_says(tmp_path: Path, capsys, claimed: str) -> None:
    video = require_data("video", "d0.mp4")
    model = linked_model(tmp_path / "model", claimed)
    assert_refused(capsys, tmp_path / "out.mp4", video, "-m", model, message="state.json says")


def test_alignments_of_another_video(tmp_path: Path, capsys) -> None:
    d18 = require_data("video", "d18.mp4")
    d19 = require_data("video", "d19.mp4")  # same size, other frame count
    assert_refused(
        capsys,
        tmp_path / "out.mp4",
        d19,
        "-m",
        lite_folder(),
        "-a",
        alignments_of(d18),
        message="was made for",
    )
    resized = Alignments.load(alignments_of(d18))
    source = resized.source
    resized.source = SourceInfo(
        source.path, "video", source.frame_count, 640, 360, source.fps, source.duration
    )
    other_size = tmp_path / "other_size.json"
    resized.save(other_size)
    assert_refused(
        capsys, tmp_path / "out.mp4", d18, "-m", lite_folder(), "-a", other_size, message="640x360"
    )
    assert_refused(
        capsys,
        tmp_path / "out.mp4",
        d18,
        "-m",
        lite_folder(),
        "-a",
        tmp_path / "none.json",
        message="no such",
    )


def test_unwritable_or_existing_output(tmp_path: Path, capsys) -> None:
    video = require_data("video", "d0.mp4")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert_refused(capsys, blocker / "out.mp4", video, "-m", lite_folder(), message="not a folder")
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"precious")
    code, lines = run_main(capsys, video, "-m", lite_folder(), "-o", existing)
    assert code == 1 and len(lines) == 1 and "--overwrite" in lines[0]
    assert existing.read_bytes() == b"precious"
    assert_refused(capsys, tmp_path / "out.avi", video, "-m", lite_folder(), message=".mp4 or .gif")


def test_bad_options(tmp_path: Path, capsys) -> None:
    video = require_data("video", "d0.mp4")
    out = tmp_path / "out.mp4"
    assert_refused(capsys, out, video, "-m", lite_folder(), "--frames", "50-20", message="ends before")
    assert_refused(capsys, out, video, "-m", lite_folder(), "--frames", "500", message="after the last frame")
    assert_refused(capsys, out, video, "-m", lite_folder(), "--blur", "80", message="--blur")
    assert_refused(
        capsys, tmp_path / "p.png", video, "-m", lite_folder(), "--preview", "500", message="78 frames"
    )
    assert_refused(capsys, out, video, "-m", lite_folder(), "--preview", "5", message="ending in .png")
    assert_refused(capsys, out, tmp_path / "missing.mp4", "-m", lite_folder(), message="no such file")


def test_a_gif_input_without_output_checks_the_gif_options_first(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gif input makes ./<name>_swapped.gif: a bad --fps is refused before any model is loaded."""
    from faceswap.media.ffmpeg import run_ffmpeg

    gif = tmp_path / "clip.gif"
    made = run_ffmpeg(["-i", str(require_data("video", "d0.mp4")), "-frames:v", "3", "-y", str(gif)])
    assert made.returncode == 0, made.stderr
    monkeypatch.chdir(tmp_path)
    code, lines = run_main(capsys, gif, "-m", tmp_path / "no-model-here", "--fps", "60")
    assert code == 1 and len(lines) == 1 and "--fps for a gif must be" in lines[0], lines
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.gif"]


def test_the_real_command_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    video = require_data("video", "d0.mp4")
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "faceswap",
            "convert",
            str(video),
            "-m",
            str(tmp_path / "nope"),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such model folder" in result.stderr
    assert not output.exists()


def test_preview_from_the_command_line(tmp_path: Path, capsys) -> None:
    video = require_data("video", "d18.mp4")
    output = tmp_path / "preview.png"
    code, lines = run_main(
        capsys, video, "-m", lite_folder(), "-a", alignments_of(video), "--preview", "30", "-o", output
    )
    assert code == 0 and lines == []
    assert output.is_file()


def test_help_states_the_pipeline_defaults() -> None:
    from faceswap.blend import BlendOptions
    from faceswap.color import COLOR_METHODS
    from faceswap.convert import DEFAULT_BATCH_SIZE, ConvertOptions
    from faceswap.mask import MASK_KINDS
    from faceswap.media.writer import DEFAULT_CRF, DEFAULT_PRESET, X264_PRESETS

    parser = subcommand_parsers()["convert"]
    defaults = {
        action.dest: action for action in parser._actions if not isinstance(action, argparse._HelpAction)
    }
    blend, options = BlendOptions(), ConvertOptions()
    assert defaults["mask"].default == blend.mask and tuple(defaults["mask"].choices) == MASK_KINDS
    assert defaults["color"].default == blend.color and tuple(defaults["color"].choices) == COLOR_METHODS
    assert defaults["erode"].default == blend.erode and defaults["blur"].default == blend.blur
    assert defaults["sharpen"].default == blend.sharpen
    assert defaults["crf"].default == DEFAULT_CRF and defaults["preset"].default == DEFAULT_PRESET
    assert tuple(defaults["preset"].choices) == X264_PRESETS
    assert defaults["batch_size"].default == DEFAULT_BATCH_SIZE == options.batch_size
    assert defaults["direction"].default == options.direction and defaults["smooth"].default is options.smooth
    for name in ("output", "model", "alignments", "overwrite"):
        assert name in defaults  # the same names as extract and train use
    assert defaults["output"].option_strings == ["-o", "--output"]
    assert defaults["model"].option_strings[:2] == ["-m", "--model"]
    assert "--model-dir" in defaults["model"].option_strings  # what train calls it
    assert defaults["alignments"].option_strings == ["-a", "--alignments"]


def test_every_option_reaches_the_pipeline(tmp_path: Path, monkeypatch, capsys) -> None:
    """The command line builds exactly the ConvertOptions the Python API (and the demo) would."""
    import faceswap.convert
    from faceswap.blend import BlendOptions
    from faceswap.convert import ConvertOptions, ConvertResult

    seen: list[tuple[Path, ConvertOptions]] = []

    def fake_convert(input_path: Path, options: ConvertOptions) -> ConvertResult:
        seen.append((input_path, options))
        return ConvertResult(options.output or Path("x"))

    monkeypatch.setattr(faceswap.convert, "convert", fake_convert)
    args = ["in.mp4", "-m", "model", "-o", "out.gif", "-a", "al.json", "--direction", "b2a"]
    args += ["--frames", "1-3,9", "--mask", "hull", "--erode", "-5", "--blur", "3", "--color", "hist"]
    args += ["--seamless", "--sharpen", "0.5", "--no-smooth", "--crf", "23", "--preset", "fast"]
    args += ["--fps", "12", "--width", "320", "--batch-size", "8", "--overwrite"]
    code, _ = run_main(capsys, *args)
    assert code == 0
    assert seen == [
        (
            Path("in.mp4"),
            ConvertOptions(
                model=Path("model"),
                output=Path("out.gif"),
                alignments=Path("al.json"),
                direction="b2a",
                frames="1-3,9",
                blend=BlendOptions(mask="hull", erode=-5, blur=3, color="hist", seamless=True, sharpen=0.5),
                smooth=False,
                crf=23,
                preset="fast",
                fps=12,
                width=320,
                batch_size=8,
                overwrite=True,
                progress=False,
            ),
        )
    ]
