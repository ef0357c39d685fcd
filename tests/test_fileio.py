"""Atomic writes, safe names, and a full disk reported as an error instead of corruption."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from faceswap.errors import OutputError
from faceswap.fileio import (
    TEMP_PREFIX,
    atomic_write,
    check_output_file,
    ensure_output_dir,
    folder_in_the_making,
    remove_stale_temporaries,
    safe_name,
    write_bytes_atomic,
    write_json_atomic,
)


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"iteration": 1})
    with pytest.raises(RuntimeError), atomic_write(path, "w") as handle:
        handle.write('{"iteration": 2')
        raise RuntimeError("crash in the middle")
    assert path.read_text().strip() == '{"iteration": 1}'
    assert temporaries(tmp_path) == []


def test_temporary_names_keep_the_suffix_and_are_hidden(tmp_path: Path) -> None:
    seen = []
    with atomic_write(tmp_path / "video.mp4") as handle:
        seen.append(Path(handle.name))
        handle.write(b"data")
    assert seen[0].name.startswith(TEMP_PREFIX) and seen[0].suffix == ".mp4"
    assert list(tmp_path.glob("*.mp4")) == [tmp_path / "video.mp4"]


def test_json_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "x.json", {"loss": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_an_error_and_keeps_the_previous_file(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes fail with EFBIG, as a full disk would fail with ENOSPC."""
    target = tmp_path / "checkpoint.bin"
    target.write_bytes(b"previous good checkpoint")
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from faceswap.errors import OutputError
        from faceswap.fileio import write_bytes_atomic
        try:
            write_bytes_atomic({str(target)!r}, b"x" * 100_000)
        except OutputError as error:
            print(error)
            sys.exit(3)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "file size limit" in result.stdout and str(target) in result.stdout
    assert target.read_bytes() == b"previous good checkpoint"
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("clip", "clip"),
        ("my clip (1)", "my_clip_1"),
        ("../../etc/passwd", "etc_passwd"),
        ("line\nbreak", "line_break"),
        ("..", "unnamed"),
        (".hidden", "hidden"),
        ("", "unnamed"),
        ("é" * 10, "é" * 10),  # letters of every script are kept (issue 9)
    ],
)
def test_safe_name(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


def test_safe_name_is_bounded() -> None:
    assert len(safe_name("a" * 1000)) == 80


def test_output_checks(tmp_path: Path) -> None:
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError, match="--overwrite"):
        check_output_file(existing, overwrite=False)
    assert check_output_file(existing, overwrite=True) == existing
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, overwrite=True)
    with pytest.raises(OutputError, match="not a folder"):
        ensure_output_dir(existing)
    nested = ensure_output_dir(tmp_path / "a" / "b")
    assert nested.is_dir()


@pytest.mark.skipif(
    sys.platform == "win32" or __import__("os").geteuid() == 0, reason="root ignores permissions"
)
def test_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="permission denied"):
        write_bytes_atomic(locked / "x.bin", b"x")


def test_unwritable_folder_as_root_uses_a_file_in_the_way(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="cannot"):
        write_bytes_atomic(blocker / "x.bin", b"x")
    with pytest.raises(OutputError):
        ensure_output_dir(blocker / "sub")


def test_remove_stale_temporaries(tmp_path: Path) -> None:
    (tmp_path / f"{TEMP_PREFIX}abcd-x.png").write_bytes(b"half")
    (tmp_path / "keep.png").write_bytes(b"whole")
    assert remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_remove_stale_temporaries_of_one_output(tmp_path: Path) -> None:
    """A rerun removes what a killed writer of the same output left, and nothing else."""
    from faceswap.fileio import remove_stale_temporaries_of

    (tmp_path / f"{TEMP_PREFIX}0123abcd-out.mp4").write_bytes(b"half a video")
    (tmp_path / f"{TEMP_PREFIX}89abcdef-out.mkv").write_bytes(b"half a gif's intermediate")
    (tmp_path / f"{TEMP_PREFIX}00000000-out").mkdir()  # a frames folder being built
    (tmp_path / f"{TEMP_PREFIX}00000000-out" / "frame_000000.png").write_bytes(b"png")
    (tmp_path / f"{TEMP_PREFIX}11111111-other.mp4").write_bytes(b"another output's")
    (tmp_path / "out.mp4").write_bytes(b"the previous complete output")
    assert remove_stale_temporaries_of(tmp_path / "out.mp4") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{TEMP_PREFIX}11111111-other.mp4", "out.mp4"]


def test_a_folder_in_the_making_is_renamed_or_removed(tmp_path: Path) -> None:
    final = tmp_path / "out"
    with folder_in_the_making(final) as temp:
        (temp / "a.txt").write_text("a")
        temp.rename(final)
    assert (final / "a.txt").read_text() == "a" and temporaries(tmp_path) == []
    with pytest.raises(OutputError, match="out2"), folder_in_the_making(tmp_path / "out2") as temp:
        (temp / "b.txt").write_text("b")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(KeyboardInterrupt), folder_in_the_making(tmp_path / "out3"):
        raise KeyboardInterrupt
    assert temporaries(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
