"""How training is going, in files: the preview image, the loss plot, TensorBoard scalars.

``preview.png`` shows the same faces of each side every time: for A, the
original, A's reconstruction (decoder A) and the swap (decoder B); then the
same for B. Early on the reconstructions are blurry blobs; when they show the
person sharply and the swaps show the *other* person in the same pose and
expression, the model is ready for convert. With ``--timelapse`` every preview
is also kept as ``timelapse/<iteration>.png``.

``loss.png`` plots both sides' face loss per iteration (faint) and its
bias-corrected moving average (bold, the value the progress bar shows and the
target is compared with; see :mod:`faceswap.train.smoothing`) against the
target, on a log scale.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceswap.fileio import write_bytes_atomic

PREVIEW_FILE = "preview.png"
LOSS_PLOT_FILE = "loss.png"
TIMELAPSE_DIR = "timelapse"
TENSORBOARD_DIR = "tensorboard"
#: Previews show each face at least this large (64-px models are upscaled).
MIN_TILE = 128
_HEADER = 28
_GAP = 8
_BACKGROUND = 32


def _label(canvas: np.ndarray, text: str, x: int, width: int) -> None:
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (text_width, _), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (x + max(0, (width - text_width) // 2), _HEADER - 9)
    cv2.putText(canvas, text, origin, font, scale, (230, 230, 230), thickness, cv2.LINE_AA)


def render_preview(columns: Sequence[tuple[str, np.ndarray]], groups: int = 2) -> np.ndarray:
    """Arrange columns of faces into one labelled RGB image.

    Parameters
    ----------
    columns
        ``(label, faces)`` pairs; faces are ``(n, s, s, 3)`` in ``[0, 1]``
        (float) or ``uint8``, the same ``s`` for all; ``n`` may differ (a side
        with fewer faces than ``--preview-faces`` leaves its lower rows empty).
    groups
        The columns form this many equal groups, separated by a gap.

    Returns
    -------
    numpy.ndarray
        ``uint8`` RGB image.
    """
    size = columns[0][1].shape[1]
    count = max(len(faces) for _, faces in columns)
    tile = max(size, MIN_TILE)
    per_group = len(columns) // groups
    width = len(columns) * tile + (groups - 1) * _GAP
    canvas = np.full((_HEADER + count * tile, width, 3), _BACKGROUND, np.uint8)
    for number, (label, faces) in enumerate(columns):
        x = number * tile + (number // per_group) * _GAP
        _label(canvas, label, x, tile)
        if faces.dtype != np.uint8:
            faces = np.clip(np.asarray(faces, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        for row, face in enumerate(faces):
            if tile != size:
                face = cv2.resize(face, (tile, tile), interpolation=cv2.INTER_CUBIC)
            canvas[_HEADER + row * tile : _HEADER + (row + 1) * tile, x : x + tile] = face
    return canvas


def render_swaps(decoders: dict[str, Any], originals: Sequence[np.ndarray]) -> np.ndarray:
    """The training preview: for each side's ``uint8`` faces, original, reconstruction and swap.

    ``decoders`` are the session's compiled decoders by side
    (:func:`faceswap.swap_model.decoding_functions`).
    """
    from faceswap.model import SIDES

    faces = [face.astype(np.float32) / 255.0 for face in originals]
    recon_a, swap_a = (np.asarray(decoders[side](faces[0])[0]) for side in SIDES)
    swap_b, recon_b = (np.asarray(decoders[side](faces[1])[0]) for side in SIDES)
    return render_preview(
        [
            ("A", originals[0]),
            ("A > A", recon_a),
            ("A > B", swap_a),
            ("B", originals[1]),
            ("B > B", recon_b),
            ("B > A", swap_b),
        ]
    )


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def write_preview(folder: Path, image: np.ndarray, iteration: int, timelapse: bool) -> Path:
    """Write ``preview.png`` (and the timelapse frame) atomically; returns the preview's path."""
    data = encode_png(image)
    path = folder / PREVIEW_FILE
    write_bytes_atomic(path, data, durable=False)
    if timelapse:
        frames = folder / TIMELAPSE_DIR
        frames.mkdir(exist_ok=True)
        write_bytes_atomic(frames / f"{iteration:09d}.png", data, durable=False)
    return path


def plot_loss(
    path: Path,
    history: Sequence[Sequence[float]],
    *,
    target: float,
    title: str,
    validation: Sequence[Sequence[float | None]] = (),
) -> None:
    """Plot the training loss and the validation error into a PNG (matplotlib's Agg backend, no display).

    Parameters
    ----------
    history
        ``[iteration, loss_a, loss_b]`` rows of every step: drawn faint, with
        their bias-corrected EMA on top.
    validation
        ``[iteration, mae_a, mae_b]`` rows (None: a side without held-back
        faces), drawn dashed with markers: the error on faces never trained
        on. A gap that opens between the two curves is overfitting.
    """
    from matplotlib.figure import Figure

    from faceswap.train.smoothing import ema_curve

    rows = np.asarray(history, np.float64).reshape(-1, 3)
    held = np.asarray([[np.nan if v is None else v for v in row] for row in validation], np.float64)
    held = held.reshape(-1, 3)
    figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for column, (name, colour) in enumerate((("A", "tab:blue"), ("B", "tab:orange")), start=1):
        if len(rows):
            axes.plot(rows[:, 0], rows[:, column], color=colour, alpha=0.25, linewidth=0.8)
            axes.plot(
                rows[:, 0], ema_curve(rows[:, column]), color=colour, linewidth=2, label=f"loss {name} (EMA)"
            )
        shown = np.isfinite(held[:, column])
        if shown.any():
            axes.plot(
                held[shown, 0],
                held[shown, column],
                color=colour,
                linestyle="--",
                marker="o",
                markersize=3,
                linewidth=1.2,
                label=f"validation {name} (MAE in the face, held-back faces)",
            )
    if target > 0:
        axes.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g}")
    if len(rows) and (rows[:, 1:] > 0).all() and not (held[:, 1:] <= 0).any():
        axes.set_yscale("log")
    axes.set_xlabel("iteration")
    axes.set_ylabel("face loss")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue(), durable=False)


class TensorBoardLog:
    """Scalars for TensorBoard in ``<model folder>/tensorboard``.

    On TensorFlow, written with TensorFlow's own summary writer and the scalar
    plugin's metadata, so training does not need the ``tensorboard`` package;
    on the other backends with the ``tensorboard`` package's event writer
    (:func:`check_tensorboard` says when it is missing). Viewing needs the
    package either way (``pip install 'faceswap[tensorboard]'``, then
    ``tensorboard --logdir models/NAME``).
    """

    def __init__(self, folder: Path) -> None:
        from faceswap.runtime import BACKEND

        self.folder = folder / TENSORBOARD_DIR
        if BACKEND == "tensorflow":
            from faceswap.runtime import tf

            self._tf = tf
            self._writer = tf.summary.create_file_writer(str(self.folder))
            self._metadata = tf.compat.v1.SummaryMetadata(data_class="DATA_CLASS_SCALAR")
            self._metadata.plugin_data.plugin_name = "scalars"
        else:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self._tf = None
            self._writer = EventFileWriter(str(self.folder))

    def scalars(self, iteration: int, values: dict[str, float]) -> None:
        """Record ``values`` at step ``iteration``."""
        tf = self._tf
        if tf is None:
            import time

            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary

            summary = Summary(
                value=[Summary.Value(tag=name, simple_value=value) for name, value in values.items()]
            )
            self._writer.add_event(Event(wall_time=time.time(), step=iteration, summary=summary))
            return
        with self._writer.as_default(step=iteration):
            for name, value in values.items():
                tf.summary.write(name, tf.constant(value, tf.float32), metadata=self._metadata)

    def flush(self) -> None:
        """Write buffered records to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


def check_tensorboard() -> None:
    """Refuse ``--tensorboard`` where its events cannot be written (another backend, no ``tensorboard``).

    Raises
    ------
    InputError
        When the backend is not TensorFlow and the ``tensorboard`` package is not installed.
    """
    import importlib.util

    from faceswap.runtime import BACKEND

    if BACKEND != "tensorflow" and importlib.util.find_spec("tensorboard") is None:
        from faceswap.errors import InputError

        raise InputError(
            f"--tensorboard on the {BACKEND} backend needs the tensorboard package: "
            "pip install 'faceswap[tensorboard]'"
        )
