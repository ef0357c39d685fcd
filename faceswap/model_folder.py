"""The model folder: trained weights, training state, and loading a model for conversion.

Layout of ``models/<name>/``::

    model.keras     the whole network (encoder, decoder_a, decoder_b) and the
                    optimizer state, in Keras' native format
    state.json      model name and size, iteration, loss history, options
    best/           the same two files at the lowest loss seen so far
    preview.png     originals, reconstructions and swaps of fixed faces
    loss.png        both sides' loss over the iterations

Both files are written atomically (temporary name, then rename). The weights
file also records the iteration it was saved at, in its archive comment (which
Keras ignores; a member would not do: Keras extracts the whole archive to disk
when it holds more than its own three), so weights and ``state.json`` that do
not belong together, after a kill between the two renames of a save, are
recognised (:func:`saved_iteration`) and reconciled on resuming.
Models are loaded with Keras' ``safe_mode`` on (no arbitrary code runs from a
model file); faceswap's own layers are registered serialisable. Before Keras
opens a weights file, :func:`check_model_archive` measures what it would
expand to, so a small hostile file cannot take gigabytes of memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import struct
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from faceswap.align import CENTERINGS, LEGACY
from faceswap.errors import ModelError
from faceswap.fileio import commit, remove_quietly, temporary_path, write_json_atomic

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
STATE_FILE = "state.json"
BEST_DIR = "best"
FORMAT = "faceswap-model"
VERSION = 1
#: A state file larger than this is refused before parsing.
MAX_STATE_BYTES = 64 * 1024**2
#: The most a model archive may expand to: a generous multiple of the largest network's weights with
#: their optimizer state (the weights of the original128 model with Adam's two slots).
MAX_ARCHIVE_BYTES = 8 * 1024**3
#: The most each JSON member of a model archive (which Keras reads whole) may hold.
MAX_ARCHIVE_JSON_BYTES = 16 * 1024**2
#: Keras stores its members uncompressed, and weights hardly compress: a member (or an HDF5 weights
#: file's data) larger than :data:`COMPRESSION_FLOOR` and this many times its stored size is a bomb.
MAX_COMPRESSION_RATIO = 20
COMPRESSION_FLOOR = 1024**2
_WEIGHTS_MEMBER = "model.weights.h5"


@dataclass
class TrainingState:
    """Everything about a training run except the weights.

    Attributes
    ----------
    model
        Name of the network (a key of :data:`faceswap.model.MODELS`).
    input_size
        Side of the model's square input, in pixels.
    iteration
        Training steps done (each step trains both sides once).
    elapsed
        Seconds spent training, over all sessions.
    best_loss
        Lowest smoothed loss (max of both sides) saved in ``best/``.
    loss_history
        ``[iteration, loss_a, loss_b]`` rows, one per logged step.
    config
        The training options, for ``--resume`` and for the record.
    """

    model: str
    input_size: int
    iteration: int = 0
    elapsed: float = 0.0
    best_loss: float | None = None
    loss_history: list[list[float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def centering(self) -> str:
        """The square the model sees and paints (``config.centering``; see :mod:`faceswap.align`).

        Folders saved before the setting existed name none: they were trained on ``legacy``.
        """
        return self.config.get("centering", LEGACY)

    def at_iteration(self, iteration: int) -> TrainingState:
        """The state taken back (or forward) to ``iteration``: the loss history keeps the rows up to it."""
        history = [row for row in self.loss_history if row[0] <= iteration]
        return replace(self, iteration=iteration, loss_history=history)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict with the format tag and version."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, document: object, where: str) -> TrainingState:
        """Validate a parsed ``state.json``.

        Raises
        ------
        ModelError
            Naming ``where`` and the first invalid field.
        """
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ModelError(f"{where}: not a faceswap model state file")
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
            raise ModelError(f"{where}: unsupported state version {version!r}")
        from faceswap.model import MODELS

        model = document.get("model")
        if model not in MODELS:
            raise ModelError(f"{where}: unknown model {model!r}")
        input_size = document.get("input_size")
        if input_size != MODELS[model].input_size:
            raise ModelError(f"{where}: input size {input_size!r} does not match model {model!r}")
        iteration = document.get("iteration", 0)
        if not isinstance(iteration, int) or isinstance(iteration, bool) or not 0 <= iteration < 10**12:
            raise ModelError(f"{where}: invalid iteration {iteration!r}")
        elapsed = _finite(document.get("elapsed", 0.0), f"{where}: elapsed")
        best = document.get("best_loss")
        best = None if best is None else _finite(best, f"{where}: best_loss")
        history = document.get("loss_history", [])
        if not isinstance(history, list) or not all(
            isinstance(row, list)
            and len(row) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row)
            for row in history
        ):
            raise ModelError(f"{where}: loss_history must be rows of [iteration, loss_a, loss_b]")
        config = document.get("config", {})
        if not isinstance(config, dict):
            raise ModelError(f"{where}: config must be an object")
        state = cls(model, input_size, iteration, elapsed, best, history, config)
        if not isinstance(state.centering, str) or state.centering not in CENTERINGS:
            raise ModelError(f"{where}: unknown centering {state.centering!r} in config")
        return state


def _finite(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{where} must be a finite number")
    return float(value)


def read_state(folder: Path | str) -> TrainingState:
    """Read and validate ``state.json`` of a model folder.

    Raises
    ------
    ModelError
        When the folder or file is missing, too large, not JSON, or invalid.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder")
    path = folder / STATE_FILE
    if not path.is_file():
        raise ModelError(f"{folder}: not a model folder (no {STATE_FILE}; train one with faceswap train)")
    if path.stat().st_size > MAX_STATE_BYTES:
        raise ModelError(f"{path}: too large to be a state file")
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelError(f"{path}: corrupt state file (not valid JSON)") from None
    return TrainingState.from_json(document, str(path))


def read_state_of_weights(folder: Path | str) -> TrainingState:
    """``state.json`` of a model folder, taken to the iteration its weights record.

    They differ only after a kill between the two renames of a save (see
    :mod:`faceswap.train.checkpoint`); the state is then one save ahead, and
    its loss history holds every row up to the weights' iteration.

    Raises
    ------
    ModelError
        As :func:`read_state`.
    """
    folder = Path(folder)
    state = read_state(folder)
    saved = saved_iteration(folder / MODEL_FILE)
    if saved is not None and saved != state.iteration:
        log.warning(
            "%s: the weights are of iteration %d but %s says %d (a save was cut off between the two); "
            "going on from the weights' iteration",
            folder,
            saved,
            STATE_FILE,
            state.iteration,
        )
        state = state.at_iteration(saved)
    return state


def write_state(folder: Path | str, state: TrainingState) -> None:
    """Write ``state.json`` atomically."""
    write_json_atomic(Path(folder) / STATE_FILE, state.to_json())


def save_keras_temporary(model: Any, path: Path | str, iteration: int | None = None) -> Path:
    """Save a Keras model (with its optimizer state, if compiled) under a temporary name beside ``path``.

    Returns the temporary file, complete, for the caller to :func:`faceswap.fileio.commit`
    to ``path``. ``iteration``, when given, is recorded in the file (see
    :func:`saved_iteration`).

    Raises
    ------
    OutputError
        When the disk is full or the folder is not writable; nothing is left behind.
    """
    from faceswap.errors import OutputError
    from faceswap.fileio import describe_os_error

    path = Path(path)
    temp = temporary_path(path)  # keeps the ".keras" suffix Keras insists on
    try:
        model.save(temp)
        if iteration is not None:
            with zipfile.ZipFile(temp, "a") as archive:  # rewrites only the end record
                archive.comment = json.dumps({"faceswap_iteration": int(iteration)}).encode()
    except OSError as error:
        remove_quietly(temp)
        raise OutputError(describe_os_error(error, path)) from error
    except BaseException:
        remove_quietly(temp)
        raise
    return temp


def save_keras_atomic(model: Any, path: Path | str, iteration: int | None = None) -> None:
    """Save a Keras model atomically (see :func:`save_keras_temporary`); on failure the old file stays."""
    commit(save_keras_temporary(model, path, iteration), Path(path))


def saved_iteration(path: Path | str) -> int | None:
    """The training iteration recorded in a weights file by :func:`save_keras_temporary`.

    ``None`` when the file records none (saved by another program or an
    older faceswap) or cannot be read; loading it reports such problems.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            record = json.loads(archive.comment or b"{}")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    iteration = record.get("faceswap_iteration") if isinstance(record, dict) else None
    if isinstance(iteration, int) and not isinstance(iteration, bool) and iteration >= 0:
        return iteration
    return None


def load_keras_model(path: Path | str, *, compile: bool = False) -> Any:
    """Load a ``.keras`` file in safe mode.

    Raises
    ------
    ModelError
        When the file is missing, truncated or not a Keras model.
    """
    path = Path(path)
    check_model_archive(path)  # before TensorFlow is imported: a refused file costs nothing
    import faceswap.model  # noqa: F401 - registers faceswap's layers, which safe mode needs to rebuild them
    from faceswap.runtime import keras

    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # Keras raises many types for damaged files
        detail = " ".join(str(error).split())[:120]
        raise ModelError(f"{path}: cannot load the model ({type(error).__name__}: {detail})") from None


def check_model_archive(path: Path) -> None:
    """Refuse a ``.keras`` file that would expand to far more than any faceswap model needs.

    Checks, from the archive's directory alone, that the members together stay
    under :data:`MAX_ARCHIVE_BYTES`, the JSON members under
    :data:`MAX_ARCHIVE_JSON_BYTES`, and no member is compressed more than
    :data:`MAX_COMPRESSION_RATIO` times; then, from the weights file's HDF5
    metadata (nothing is read), that its arrays are no larger than that ratio
    allows either (HDF5 compresses on its own, and an unwritten array reads as
    its fill value).

    Raises
    ------
    ModelError
        When the file is missing, not a zip archive, or fails a check.
    """
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: damaged or truncated model file (not a Keras archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > MAX_ARCHIVE_BYTES:
                raise ModelError(
                    f"{path}: the archive expands to {_gib(total)}, more than any faceswap model "
                    f"({_gib(MAX_ARCHIVE_BYTES)} at most)"
                )
            for member in members:
                _check_member(path, member)
            weights = next((m for m in members if m.filename == _WEIGHTS_MEMBER), None)
            if weights is not None:
                _check_weights(path, archive, weights)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as error:
        raise ModelError(f"{path}: damaged model file ({type(error).__name__})") from None


def _check_member(path: Path, member: zipfile.ZipInfo) -> None:
    if member.filename.endswith(".json") and member.file_size > MAX_ARCHIVE_JSON_BYTES:
        raise ModelError(
            f"{path}: its {member.filename} holds {_gib(member.file_size)}, far more than a model "
            f"description needs ({MAX_ARCHIVE_JSON_BYTES // 1024**2} MiB at most)"
        )
    if member.file_size > max(COMPRESSION_FLOOR, MAX_COMPRESSION_RATIO * member.compress_size):
        raise ModelError(
            f"{path}: its {member.filename} expands from {member.compress_size} bytes to "
            f"{_gib(member.file_size)} (a compression bomb, not a saved model)"
        )


def _check_weights(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Refuse an HDF5 weights file whose arrays add up to far more than the file holds."""
    import h5py  # Keras' own dependency for its weights files

    sizes: list[int] = []

    def measure(_: str, item: object) -> None:
        if isinstance(item, h5py.Dataset):
            sizes.append(int(item.size) * item.dtype.itemsize)

    with contextlib.ExitStack() as stack:
        if member.compress_type == zipfile.ZIP_STORED:  # as Keras writes it: read in place, quickly
            stream: IO[bytes] = stack.enter_context(_StoredMember(path, member))
        else:  # seeking in a compressed member decompresses again from its start: slow, but rare
            stream = stack.enter_context(archive.open(member))
        try:
            with h5py.File(stream, "r") as weights:
                weights.visititems(measure)
        except OSError:
            return  # not HDF5: Keras reports that, and reads nothing large on the way
    data = sum(sizes)
    if data > max(COMPRESSION_FLOOR, MAX_COMPRESSION_RATIO * member.file_size):
        raise ModelError(
            f"{path}: its weights expand from {member.file_size} bytes to {_gib(data)} "
            "(a compression bomb, not a saved model)"
        )


class _StoredMember(io.RawIOBase):
    """An uncompressed zip member read in place, with cheap seeks (``ZipExtFile`` re-reads from the start)."""

    def __init__(self, path: Path, member: zipfile.ZipInfo) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._file.seek(member.header_offset)
        header = self._file.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            self._file.close()
            raise zipfile.BadZipFile("bad local file header")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        self._start = member.header_offset + 30 + name_length + extra_length
        self._size = member.file_size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = max(0, min(len(buffer), self._size - self._position))
        self._file.seek(self._start + self._position)
        got = self._file.readinto(memoryview(buffer)[:wanted])
        self._position += got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


def _gib(size: int) -> str:
    return f"{size / 1024**3:.2f} GiB" if size >= 1024**3 else f"{size / 1024**2:.1f} MiB"


def check_model_matches_state(model: Any, state: TrainingState, where: str) -> None:
    """Refuse a weights file whose network is not the one ``state.json`` describes.

    Raises
    ------
    ModelError
        When the network's name, sub-models or input size differ.
    """
    expected = f"faceswap_{state.model}"
    if model.name != expected:
        raise ModelError(f"{where}: the weights are of {model.name!r}, but state.json says {state.model!r}")
    try:
        encoder = model.get_layer("encoder")
        model.get_layer("decoder_a")
        model.get_layer("decoder_b")
    except ValueError:
        raise ModelError(f"{where}: the model file lacks the encoder or a decoder") from None
    size = encoder.input_shape[1]
    if size != state.input_size:
        raise ModelError(f"{where}: the weights take {size}-px faces, but state.json says {state.input_size}")


class SwapModel:
    """A trained model ready for conversion: encode with the shared encoder, decode with one side.

    Use :func:`load_swap_model` to get one.
    """

    def __init__(self, network: Any, state: TrainingState) -> None:
        from faceswap.runtime import keras, tf

        self.state = state
        self.name = state.model
        self.input_size = state.input_size
        self.centering = state.centering
        encoder = network.get_layer("encoder")
        self._predict = {}
        for side in ("a", "b"):
            decoder = network.get_layer(f"decoder_{side}")
            face = keras.Input((self.input_size, self.input_size, 3))
            graph = keras.Model(face, decoder(encoder(face)))
            self._predict[side] = tf.function(
                lambda x, graph=graph: graph(x, training=False), reduce_retracing=True, autograph=False
            )

    def predict(self, faces: np.ndarray, decoder: str) -> tuple[np.ndarray, np.ndarray]:
        """Decode aligned faces with the decoder of side ``decoder`` (``"a"`` or ``"b"``).

        Parameters
        ----------
        faces
            ``uint8`` RGB, shape ``(n, input_size, input_size, 3)``: the face
            region of each aligned face (``padding=0``).

        Returns
        -------
        tuple of numpy.ndarray
            Faces ``(n, s, s, 3)`` and masks ``(n, s, s, 1)``, float32 in ``[0, 1]``.
        """
        if faces.ndim != 4 or faces.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"expected faces of shape (n, {self.input_size}, {self.input_size}, 3)")
        batch = faces.astype(np.float32) / 255.0
        face, mask = self._predict[decoder](batch)
        return np.asarray(face), np.asarray(mask)


def load_swap_model(folder: Path | str) -> SwapModel:
    """Load a trained model folder for conversion.

    Raises
    ------
    ModelError
        When the folder is missing, its state is invalid, the weights are
        damaged, or the weights do not match the state.
    """
    folder = Path(folder)
    state = read_state_of_weights(folder)
    network = load_keras_model(folder / MODEL_FILE)
    check_model_matches_state(network, state, str(folder))
    return SwapModel(network, state)
