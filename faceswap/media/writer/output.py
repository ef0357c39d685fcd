"""Output checks and encoder settings: what an output path asks for, and refusing bad ones early."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from faceswap import __version__
from faceswap.errors import OutputError
from faceswap.fileio import check_output_file, ensure_output_dir
from faceswap.paths import check_replaceable_folder

OutputKind = Literal["mp4", "gif", "frames"]

#: Default x264 constant rate factor: visually lossless for most footage.
DEFAULT_CRF = 18
#: Default x264 preset: about three times faster than ``medium`` at a similar size for a given CRF.
DEFAULT_PRESET = "veryfast"
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
#: Default frame-rate cap of gif output (gif delays are in 1/100 s; 15 fps keeps files small).
DEFAULT_GIF_FPS = 15


def synthetic_label() -> str:
    """The metadata text that marks every output as synthetic."""
    return f"synthetic video: faces replaced by faceswap {__version__}"


def output_kind(path: Path | str) -> OutputKind:
    """What ``path`` asks for: ``.mp4``, ``.gif``, or (no suffix, or an existing folder) a frames folder.

    Raises
    ------
    OutputError
        For any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or not suffix:
        return "frames"
    if suffix in (".mp4", ".gif"):
        return suffix[1:]  # type: ignore[return-value]
    raise OutputError(f"output {path}: end it in .mp4 or .gif, or name a folder for PNG frames")


def check_settings(
    *,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    gif_fps: float = DEFAULT_GIF_FPS,
    gif_width: int | None = None,
) -> None:
    """Refuse encoder settings out of range, naming the option.

    Raises
    ------
    OutputError
        For the first setting out of range.
    """
    if not 0 <= crf <= 51:
        raise OutputError(f"--crf must be from 0 to 51, not {crf}")
    if preset not in X264_PRESETS:
        raise OutputError(f"unknown x264 preset {preset!r} (choose from {', '.join(X264_PRESETS)})")
    if not 0 < gif_fps <= 50:
        raise OutputError(f"--fps for a gif must be above 0 and at most 50, not {gif_fps:g}")
    if gif_width is not None and not 16 <= gif_width <= 4096:
        raise OutputError(f"--width must be from 16 to 4096 px, not {gif_width}")


def check_output(path: Path | str, *, overwrite: bool) -> OutputKind:
    """Refuse an output that cannot be written, before any work is done; returns its kind.

    Raises
    ------
    OutputError
        For an unknown suffix, an existing output without ``overwrite`` (an
        empty folder counts as absent), or a folder that cannot be created or
        written to.
    """
    path = Path(path)
    kind = output_kind(path)
    if kind != "frames":
        check_output_file(path, overwrite=overwrite)
        return kind
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(f"output {path} already holds files; pass --overwrite to replace them")
    check_replaceable_folder(path)
    ensure_output_dir(path.parent)
    return kind
