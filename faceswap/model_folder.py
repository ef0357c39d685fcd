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
opens a weights file, :func:`faceswap.model_archive.check_model_archive`
measures what it would expand to, so a small hostile file cannot take
gigabytes of memory. A loaded folder is used through
:class:`faceswap.swap_model.SwapModel`.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceswap.align import CENTERINGS, LEGACY
from faceswap.errors import ModelError
from faceswap.fileio import commit, remove_quietly, temporary_path, write_json_atomic
from faceswap.model_archive import check_model_archive

if TYPE_CHECKING:
    from faceswap.swap_model import SwapModel

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
STATE_FILE = "state.json"
BEST_DIR = "best"
FORMAT = "faceswap-model"
VERSION = 1
#: A state file larger than this is refused before parsing.
MAX_STATE_BYTES = 64 * 1024**2


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
    validation_history
        ``[iteration, mae_a, mae_b]`` rows: the reconstruction error of the
        held-back faces inside their hulls, at each preview (None: a side
        without held-back faces).
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
    validation_history: list[list[float | None]] = field(default_factory=list)

    @property
    def centering(self) -> str:
        """The square the model sees and paints (``config.centering``; see :mod:`faceswap.align`).

        Folders saved before the setting existed name none: they were trained on ``legacy``.
        """
        return self.config.get("centering", LEGACY)

    def at_iteration(self, iteration: int) -> TrainingState:
        """The state taken back (or forward) to ``iteration``: the loss history keeps the rows up to it."""
        history = [row for row in self.loss_history if row[0] <= iteration]
        validation = [row for row in self.validation_history if row[0] <= iteration]
        return replace(self, iteration=iteration, loss_history=history, validation_history=validation)

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
        if not _rows_of_three(history, allow_none=False):
            raise ModelError(f"{where}: loss_history must be rows of [iteration, loss_a, loss_b]")
        validation = document.get("validation_history", [])
        if not _rows_of_three(validation, allow_none=True):
            raise ModelError(f"{where}: validation_history must be rows of [iteration, mae_a, mae_b]")
        config = document.get("config", {})
        if not isinstance(config, dict):
            raise ModelError(f"{where}: config must be an object")
        state = cls(model, input_size, iteration, elapsed, best, history, config, validation)
        if not isinstance(state.centering, str) or state.centering not in CENTERINGS:
            raise ModelError(f"{where}: unknown centering {state.centering!r} in config")
        return state


def _rows_of_three(rows: object, allow_none: bool) -> bool:
    """Whether ``rows`` is a list of ``[iteration, a, b]`` finite-number rows (None as a or b if allowed)."""

    def number(value: object, none: bool) -> bool:
        if value is None:
            return none
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    return isinstance(rows, list) and all(
        isinstance(row, list)
        and len(row) == 3
        and number(row[0], False)
        and all(number(value, allow_none) for value in row[1:])
        for row in rows
    )


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
    from faceswap.model import ENCODER, model_spec, parts

    try:
        for name in parts(model_spec(state.model)):
            model.get_layer(name)
    except (KeyError, ValueError):
        raise ModelError(f"{where}: the model file lacks the encoder or a decoder") from None
    encoder = model.get_layer(ENCODER)
    size = encoder.input_shape[1]
    if size != state.input_size:
        raise ModelError(f"{where}: the weights take {size}-px faces, but state.json says {state.input_size}")


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
    from faceswap.swap_model import SwapModel

    return SwapModel(network, state)
