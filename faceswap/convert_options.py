"""The options of ``faceswap convert``, their checks, the output's default name, and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from faceswap.blend import BlendOptions
from faceswap.color import COLOR_METHODS
from faceswap.errors import InputError
from faceswap.file_types import IMAGE_SUFFIXES
from faceswap.fileio import safe_name
from faceswap.identity import SAME_PERSON_THRESHOLD
from faceswap.mask import MASK_KINDS
from faceswap.media.writer import DEFAULT_CRF, DEFAULT_GIF_FPS, DEFAULT_PRESET, check_settings

Direction = Literal["a2b", "b2a"]
#: Frame rate of a video made from a folder of images, unless ``--fps`` says otherwise.
DEFAULT_IMAGES_FPS = 25
DEFAULT_BATCH_SIZE = 32


@dataclass
class ConvertOptions:
    """The options of ``faceswap convert``, for the Python API (the command line builds the same).

    Example::

        from faceswap.blend import BlendOptions
        from faceswap.convert import ConvertOptions, convert

        convert("clip.mp4", ConvertOptions(model=Path("models/me-you"), output=Path("demo.mp4")))
        convert("clip.mp4", ConvertOptions(model=..., output=Path("demo.gif"), fps=12, width=320))
        convert("clip.mp4", ConvertOptions(model=..., output=Path("frame120.png"), preview=120))

    Attributes
    ----------
    model
        Trained model folder (``model.keras`` and ``state.json``); required
        unless a loaded model is passed to :func:`convert`.
    output
        ``.mp4``, ``.gif``, a folder (PNG frames), or with ``preview`` a
        ``.png``; default :func:`default_output`.
    alignments
        Alignments file from ``faceswap extract``; default: the one next to
        the input, else faces are found now.
    direction
        ``"a2b"`` (the input shows person A and gets B's face) or ``"b2a"``.
    frames
        Frames to swap, as ``"10-50,90-120"``; the others are copied unchanged.
    blend
        Mask, erosion, feathering, colour matching, seamless cloning and
        sharpening (:class:`faceswap.blend.BlendOptions`).
    smooth
        Smooth each face's geometry over the clip (steady face and mask edge).
    crf, preset
        x264 quality (0 to 51, lower is better) and speed preset, for mp4.
    fps
        gif: highest frame rate (default 15); image folders: their frame rate.
    width
        gif: width in pixels (height follows).
    batch_size
        Faces per forward pass of the model.
    preview
        Convert only this frame and write it beside the original as one PNG.
    faces
        Faces folder whose crops say which recorded faces to swap (default:
        the alignments file's folder); faces whose crops were deleted are not
        swapped (:mod:`faceswap.convert_select`).
    reference
        Photos of the one person to swap; other people's faces stay as they are.
    identity_threshold
        Largest embedding distance to the reference that is still that person.
    overwrite
        Replace an existing output (only once the new one is complete).
    progress
        Show a progress bar on stderr.
    """

    model: Path | None = None
    output: Path | None = None
    alignments: Path | None = None
    direction: Direction = "a2b"
    frames: str | None = None
    blend: BlendOptions = field(default_factory=BlendOptions)
    smooth: bool = True
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    fps: float | None = None
    width: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    preview: int | None = None
    faces: Path | None = None
    reference: list[Path] = field(default_factory=list)
    identity_threshold: float = SAME_PERSON_THRESHOLD
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Refuse impossible values with one line naming the option.

        Raises
        ------
        InputError, OutputError
            For the first invalid option.
        """
        blend = self.blend
        if self.direction not in ("a2b", "b2a"):
            raise InputError(f"--direction must be a2b or b2a, not {self.direction}")
        if blend.mask not in MASK_KINDS:
            raise InputError(f"--mask must be one of {', '.join(MASK_KINDS)}, not {blend.mask}")
        if blend.color not in COLOR_METHODS:
            raise InputError(f"--color must be one of {', '.join(COLOR_METHODS)}, not {blend.color}")
        if not -50 <= blend.erode <= 50:
            raise InputError(f"--erode must be from -50 to 50 (% of the face size), not {blend.erode:g}")
        if not 0 <= blend.blur <= 50:
            raise InputError(f"--blur must be from 0 to 50 (% of the face size), not {blend.blur:g}")
        if not 0 <= blend.sharpen <= 5:
            raise InputError(f"--sharpen must be from 0 to 5, not {blend.sharpen:g}")
        if not 1 <= self.batch_size <= 1024:
            raise InputError(f"--batch-size must be from 1 to 1024, not {self.batch_size}")
        if self.fps is not None and not 0 < self.fps <= 1000:
            raise InputError(f"--fps must be above 0 and at most 1000, not {self.fps:g}")
        gif_fps = self.fps if self.output is not None and self.output.suffix.lower() == ".gif" else None
        check_settings(
            crf=self.crf, preset=self.preset, gif_fps=gif_fps or DEFAULT_GIF_FPS, gif_width=self.width
        )
        if self.preview is not None and self.preview < 0:
            raise InputError(f"--preview must be a frame number (0 or more), not {self.preview}")
        if not 0 < self.identity_threshold <= 2:
            raise InputError(
                f"--identity-threshold must be above 0 and at most 2, not {self.identity_threshold:g}"
            )
        for photo in self.reference:
            if not photo.is_file():
                raise InputError(f"{photo}: no such reference photo")
        if self.faces is not None and not self.faces.is_dir():
            raise InputError(f"--faces {self.faces}: no such folder")

    @property
    def decoder(self) -> str:
        """The decoder that paints the new faces: B's for a2b, A's for b2a."""
        return "b" if self.direction == "a2b" else "a"


@dataclass
class ConvertResult:
    """What a convert run did."""

    output: Path
    frames: int = 0
    swapped_frames: int = 0
    faces: int = 0
    deleted: int = 0
    other_people: int = 0
    elapsed: float = 0.0

    def format(self) -> str:
        """The closing line printed after a run."""
        rate = self.frames / self.elapsed if self.elapsed > 0 else 0.0
        left = []
        if self.deleted:
            left.append(f"{self.deleted} whose crops were deleted")
        if self.other_people:
            left.append(f"{self.other_people} of other people")
        unchanged = f"; faces left as they are: {', '.join(left)}" if left else ""
        return (
            f"converted {self.frames} frames ({self.swapped_frames} with swapped faces, {self.faces} faces"
            f"{unchanged}) in {self.elapsed:.1f} s ({rate:.1f} frames/s): {self.output}"
        )


def default_output(input_path: Path, preview: int | None = None) -> Path:
    """Where the output goes without ``-o``: in the current folder, named after the input.

    ``<name>_swapped.mp4`` for a video, ``<name>_swapped.gif`` for a gif,
    a folder ``<name>_swapped`` for images, ``<name>_preview<N>.png`` with ``--preview N``.
    """
    stem = safe_name(input_path.name if input_path.is_dir() else input_path.stem)
    suffix = input_path.suffix.lower()
    if preview is not None:
        return Path(f"{stem}_preview{preview}.png")
    if input_path.is_dir() or suffix in IMAGE_SUFFIXES:
        return Path(f"{stem}_swapped")
    return Path(f"{stem}_swapped{'.gif' if suffix == '.gif' else '.mp4'}")
