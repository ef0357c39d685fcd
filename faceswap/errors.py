"""Errors a user can act on.

Every module raises these (never ``SystemExit``) for problems with the user's
input, files or machine. The command line turns them into one line on stderr
and a non-zero exit status; anything else is a bug and is reported as one.
"""


class FaceswapError(Exception):
    """A problem the user can fix; ``str(error)`` is one line that names it."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # A message must stay one line: the CLI promises exactly one line.
        super().__init__(" ".join(str(message).split()))


class InputError(FaceswapError):
    """A missing, empty, unreadable or unsuitable input (file, folder, option)."""


class MediaError(InputError):
    """A video, gif or image that cannot be probed or decoded."""


class AlignmentsError(InputError):
    """An alignments file that is missing, corrupt, of another version or of another video."""


class ModelError(InputError):
    """A model folder that is missing, of another model, or damaged."""


class OutputError(FaceswapError):
    """An output that cannot be written (permissions, full disk, existing file)."""


class ClusterError(FaceswapError):
    """A process of a distributed run died or became unreachable; the last checkpoint is kept."""


class TrainingDivergedError(FaceswapError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""
