"""The options of ``faceswap extract``: their checks, what the alignments file records, and the summary."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceswap.align import CROP_PADDING, DEFAULT_CROP_SIZE
from faceswap.errors import InputError
from faceswap.identity import SAME_PERSON_THRESHOLD
from faceswap.smooth import SMOOTH_RADIUS, SMOOTH_SIGMA_FRAMES, SMOOTH_SIGMA_IOD
from faceswap.track import DETECT_INTERVAL

#: Most frames per video chunk (fixed: resuming relies on the same boundaries).
CHUNK_FRAMES = 250
#: Fewest frames per video chunk (each chunk starts with a full-resolution detection).
MIN_CHUNK_FRAMES = 32
#: Images per chunk of an image folder.
CHUNK_IMAGES = 8
#: Seconds between saves of the alignments file during a run, at least.
SAVE_EVERY_S = 10.0
#: ... and at most this share of the run goes to saving it: the file is rewritten whole, and for
#: a feature-length video it holds hundreds of megabytes, so saves grow further apart as it grows.
SAVE_SHARE = 0.05
#: Smallest and largest crop side (px).
MIN_CROP_SIZE, MAX_CROP_SIZE = 64, 2048
#: Most worker processes: each holds the models (about 100 MB), and a long video has as many
#: chunks as it has seconds / 8, so a huge --jobs would start that many.
MAX_JOBS = 256


@dataclass
class ExtractOptions:
    """The options of ``faceswap extract`` (see its ``--help`` for each)."""

    output: Path | None = None
    every: int = 1
    min_size: float = 0.0
    size: int = DEFAULT_CROP_SIZE
    detector: str = "hog"
    upsample: int = 0
    reference: list[Path] = field(default_factory=list)
    identity_threshold: float = SAME_PERSON_THRESHOLD
    max_faces: int | None = None
    blur_threshold: float = 0.0
    smooth: bool = True
    resume: bool = False
    overwrite: bool = False
    jobs: int | None = None
    progress: bool = True
    #: Not a command-line option: the most frames per chunk (tests shorten it).
    chunk_frames: int = CHUNK_FRAMES
    #: Not a command-line option: called after each save with the number of finished chunks.
    on_save: Callable[[int], None] | None = None
    save_every_s: float = SAVE_EVERY_S

    def check(self) -> None:
        """Refuse impossible values with one line naming the option.

        Raises
        ------
        InputError
            For the first invalid option.
        """
        if self.every < 1:
            raise InputError(f"--every must be at least 1, not {self.every}")
        if not MIN_CROP_SIZE <= self.size <= MAX_CROP_SIZE:
            raise InputError(f"--size must be from {MIN_CROP_SIZE} to {MAX_CROP_SIZE} px, not {self.size}")
        if not (math.isfinite(self.min_size) and self.min_size >= 0):
            raise InputError(f"--min-size must be a finite number of at least 0, not {self.min_size:g}")
        if self.max_faces is not None and self.max_faces < 1:
            raise InputError(f"--max-faces must be at least 1, not {self.max_faces}")
        if not (math.isfinite(self.blur_threshold) and self.blur_threshold >= 0):
            raise InputError(
                f"--blur-threshold must be a finite number of at least 0, not {self.blur_threshold:g}"
            )
        if not 0 < self.identity_threshold <= 2:
            raise InputError(
                f"--identity-threshold must be above 0 and at most 2, not {self.identity_threshold:g}"
            )
        if self.detector not in ("hog", "cnn"):
            raise InputError(f"--detector must be hog or cnn, not {self.detector}")
        if not 0 <= self.upsample <= 3:
            raise InputError(f"--upsample must be from 0 to 3, not {self.upsample}")
        if self.jobs is not None and not 1 <= self.jobs <= MAX_JOBS:
            raise InputError(f"--jobs must be at least 1 and at most {MAX_JOBS}, not {self.jobs}")
        if self.resume and self.overwrite:
            raise InputError("--resume and --overwrite contradict each other: choose one")
        for photo in self.reference:
            if not photo.is_file():
                raise InputError(f"{photo}: no such reference photo")

    def settings(self) -> dict[str, Any]:
        """What the alignments file records: every option that changes its content."""
        return {
            "every": self.every,
            "min_size": self.min_size,
            "size": self.size,
            "padding": CROP_PADDING,
            "detector": self.detector,
            "upsample": self.upsample,
            "reference": [photo.name for photo in self.reference],
            "identity_threshold": self.identity_threshold if self.reference else None,
            "max_faces": self.max_faces,
            "blur_threshold": self.blur_threshold,
            "smooth": (
                {
                    "method": "bilateral",
                    "radius": SMOOTH_RADIUS,
                    "sigma_frames": SMOOTH_SIGMA_FRAMES,
                    "sigma_iod": SMOOTH_SIGMA_IOD,
                }
                if self.smooth
                else None
            ),
            "detect_interval": DETECT_INTERVAL,
            # Faces are followed in boxes placed as the last detection placed its box.
            "follow_box": "detection placement",
        }


@dataclass
class ExtractResult:
    """What an extract run did (added up over all sources)."""

    sources: int = 0
    frames: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    saved: int = 0
    blurry: int = 0
    too_small: int = 0
    wrong_person: int = 0
    extra: int = 0
    skipped_frames: int = 0
    cpu_ms: int = 0
    elapsed: float = 0.0
    outputs: list[Path] = field(default_factory=list)

    def add(self, counts: dict[str, int]) -> None:
        """Add a chunk's counts."""
        for key, value in counts.items():
            setattr(self, key, getattr(self, key) + value)

    def format(self) -> str:
        """The closing lines printed after a run."""
        rate = self.frames / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"frames read: {self.frames} ({rate:.0f} frames/s)"
            + (f", {self.skipped_frames} already done (--resume)" if self.skipped_frames else ""),
            f"frames with faces: {self.frames_with_faces}",
            f"faces recorded: {self.faces}, crops saved: {self.saved}",
            f"faces dropped: {self.blurry} blurry (crop not saved), {self.too_small} too small, "
            f"{self.wrong_person} wrong person"
            + (f", {self.extra} beyond --max-faces" if self.extra else ""),
            f"elapsed: {self.elapsed:.1f} s "
            f"({self.cpu_ms / 1000:.1f} s of CPU in the workers and their decoders)",
            "output: " + ", ".join(str(path) for path in self.outputs),
        ]
        return "\n".join(lines)
