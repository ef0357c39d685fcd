"""Temporal smoothing of landmarks and transforms across video frames.

dlib's landmarks jitter by a pixel or so from frame to frame even when the face
is still; pasted faces and crops inherit that jitter. Two filters take it away:

* the **One-Euro filter** (Casiez, Roussel and Vogel, CHI 2012;
  :class:`OneEuroFilter`, and :func:`smooth_sequence` run forwards and
  backwards for a whole clip, as convert does): a low-pass filter whose cut-off
  frequency rises with the speed of the signal, so a still face is smoothed
  strongly while a moving face is followed with little lag. Speeds are divided
  by a ``scale`` given with each sample (for faces: the inter-ocular distance),
  so the same parameters suit small and large faces;
* a **bilateral window** (:func:`smooth_window`, :func:`smooth_in_window`, as
  extract does while it streams frames): a centred average over
  :data:`SMOOTH_RADIUS` frames on each side, per point, whose weights fall with
  the distance in time and with how far that point moved, so sub-pixel jitter
  is averaged away while a mouth that opens fast is not blurred. Being
  centred, it has no lag; frames wait :data:`SMOOTH_RADIUS` frames for it.

Convert smooths a whole face track (:func:`smooth_track`) in the coordinates
of :class:`FaceMotion`: the pose of the face square and the face's shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from faceswap.align import invert, similarity_from_parameters, similarity_parameters, transform_points
from faceswap.landmarks import interocular_distance

#: Defaults for landmarks measured in inter-ocular distances per second.
DEFAULT_MIN_CUTOFF = 1.5
DEFAULT_BETA = 2.0
DEFAULT_DERIVATIVE_CUTOFF = 1.0


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over arrays of any shape (all elements filtered independently).

    Parameters
    ----------
    min_cutoff
        Cut-off frequency (Hz) for a still signal: lower removes more jitter.
    beta
        How fast the cut-off rises with speed: higher means less lag when the
        signal moves.
    derivative_cutoff
        Cut-off frequency (Hz) of the speed estimate.
    """

    def __init__(
        self,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        derivative_cutoff: float = DEFAULT_DERIVATIVE_CUTOFF,
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time: float | None = None

    def __call__(self, value: np.ndarray, time: float, scale: float = 1.0) -> np.ndarray:
        """Filter one sample taken at ``time`` (seconds); returns the smoothed value."""
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._time is None or time <= self._time:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), time
            return value.copy()
        dt = time - self._time
        speed = (value - self._value) / dt / max(scale, 1e-9)
        alpha_speed = _alpha(self.derivative_cutoff, dt)
        self._speed = self._speed + alpha_speed * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        alpha = _alpha(cutoff, dt)
        self._value = self._value + alpha * (value - self._value)
        self._time = time
        return self._value.copy()


def smooth_sequence(
    values: np.ndarray,
    times: np.ndarray,
    scales: np.ndarray | None = None,
    *,
    min_cutoff: float = DEFAULT_MIN_CUTOFF,
    beta: float = DEFAULT_BETA,
    derivative_cutoff: float = DEFAULT_DERIVATIVE_CUTOFF,
) -> np.ndarray:
    """Smooth a whole sequence without lag (offline use, e.g. in convert).

    The One-Euro filter runs forwards and backwards in time and the two
    results are averaged: their lags have opposite signs and cancel, so the
    smoothed sequence does not trail the motion.

    Parameters
    ----------
    values
        Samples, shape ``(n, ...)``, in time order.
    times
        Sample times in seconds, shape ``(n,)``, increasing.
    scales
        Per-sample speed scale (see module docstring); 1 if omitted.
    """
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(values) < 3:
        return values.copy()
    scales = np.ones(len(values)) if scales is None else np.asarray(scales, dtype=np.float64)
    settings = {"min_cutoff": min_cutoff, "beta": beta, "derivative_cutoff": derivative_cutoff}
    forward = OneEuroFilter(**settings)
    backward = OneEuroFilter(**settings)
    ahead = np.stack([forward(v, t, s) for v, t, s in zip(values, times, scales, strict=True)])
    end = times[-1]
    behind = np.stack(
        [backward(v, end - t, s) for v, t, s in zip(values[::-1], times[::-1], scales[::-1], strict=True)]
    )[::-1]
    return (ahead + behind) / 2.0


@dataclass
class FaceMotion:
    """A track's geometry in coordinates where averaging and interpolating are meaningful.

    The **pose** (what places the pasted face) and the **shape** (what its
    hull mask is drawn from, pose removed) are kept apart, so each is averaged
    in units that mean the same for small and large faces.

    ``pose`` holds, per frame, the face square's centre (in units of ``eye``,
    the track's median inter-ocular distance in pixels), its log scale and its
    angle (unwrapped); ``shapes`` the landmarks in unit face space.
    """

    pose: np.ndarray
    shapes: np.ndarray
    eye: float

    @classmethod
    def of(cls, matrices: np.ndarray, landmarks: np.ndarray) -> FaceMotion:
        """The motion of ``(n, 2, 3)`` alignment matrices and ``(n, 68, 2)`` frame-pixel landmarks."""
        centres = np.array([transform_points(_CENTRE, invert(m))[0] for m in matrices])
        parameters = np.array([similarity_parameters(m) for m in matrices])
        eye = float(np.median([interocular_distance(points) for points in landmarks]))
        pose = np.column_stack([centres / eye, parameters[:, 0], np.unwrap(parameters[:, 1])])
        shapes = np.array(
            [transform_points(points, m) for points, m in zip(landmarks, matrices, strict=True)]
        )
        return cls(pose, shapes, eye)

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Alignment matrices and frame-pixel landmarks."""
        matrices = np.empty((len(self.pose), 2, 3))
        landmarks = np.empty_like(self.shapes)
        for i, (centre_x, centre_y, log_scale, angle) in enumerate(self.pose):
            matrix = similarity_from_parameters(np.array([log_scale, angle, 0.0, 0.0]))
            matrix[:, 2] = _CENTRE[0] - matrix[:, :2] @ (np.array([centre_x, centre_y]) * self.eye)
            matrices[i] = matrix
            landmarks[i] = transform_points(self.shapes[i], invert(matrix))
        return matrices, landmarks


_CENTRE = np.array([[0.5, 0.5]])


def smooth_track(
    times: np.ndarray, matrices: np.ndarray, landmarks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth one track's pose and shape over time, without lag (:func:`smooth_sequence`).

    The pose places the face and the shape draws its mask, so both move together.

    Parameters
    ----------
    times
        Frame times in seconds, shape ``(n,)``, increasing.
    matrices
        Alignment matrices, shape ``(n, 2, 3)``.
    landmarks
        Landmarks in frame pixels, shape ``(n, 68, 2)``.

    Returns
    -------
    tuple of numpy.ndarray
        Smoothed matrices and landmarks, same shapes.
    """
    if len(times) < 3:
        return matrices, landmarks
    motion = FaceMotion.of(matrices, landmarks)
    shape_scale = np.array([interocular_distance(shape) for shape in motion.shapes])
    motion.pose = smooth_sequence(motion.pose, times)
    motion.shapes = smooth_sequence(motion.shapes, times, shape_scale)
    return motion.geometry()


# The bilateral window's settings, tuned with ``scripts/bench_extract.py --tune-smoothing`` (it
# prints jitter and distance to per-frame detection for these and the One-Euro filter's settings).
#: Frames on each side of the smoothed frame.
SMOOTH_RADIUS = 2
#: Gaussian fall-off of a neighbour's weight with its distance in time (frames).
SMOOTH_SIGMA_FRAMES = 1.0
#: Gaussian fall-off of a point's weight with how far it moved (inter-ocular distances).
SMOOTH_SIGMA_IOD = 0.08


def smooth_window(window: np.ndarray, centre: int, interocular: float) -> np.ndarray:
    """Bilateral temporal average of one face's landmarks (see the module docstring).

    Parameters
    ----------
    window
        ``(n, 68, 2)`` landmarks of consecutive processed frames.
    centre
        Position in ``window`` of the frame being smoothed.
    interocular
        The face's inter-ocular distance in that frame (px).

    Returns
    -------
    numpy.ndarray
        ``(68, 2)`` smoothed landmarks of the frame at ``centre``.
    """
    offsets = np.arange(len(window)) - centre
    moved = np.linalg.norm(window - window[centre], axis=2) / max(interocular, 1e-6)
    weights = np.exp(
        -(offsets[:, None] ** 2) / (2 * SMOOTH_SIGMA_FRAMES**2) - moved**2 / (2 * SMOOTH_SIGMA_IOD**2)
    )
    return (weights[:, :, None] * window).sum(axis=0) / weights.sum(axis=0)[:, None]


def smooth_in_window(frames: Sequence[Mapping[int, np.ndarray]], position: int, face: int) -> np.ndarray:
    """Landmarks of one face in one frame, smoothed with that face's landmarks in the frames around it.

    Parameters
    ----------
    frames
        Landmarks (``(68, 2)``, frame pixels) of consecutive processed frames,
        keyed by the face's track number.
    position
        The frame to smooth, an index into ``frames``.
    face
        The track number of the face (a key of ``frames[position]``).

    Returns
    -------
    numpy.ndarray
        The smoothed landmarks; the frame's own array itself (not a copy) when
        no neighbour within :data:`SMOOTH_RADIUS` has the face.
    """
    own = frames[position][face]
    nearby = frames[max(0, position - SMOOTH_RADIUS) : position + SMOOTH_RADIUS + 1]
    window = [landmarks[face] for landmarks in nearby if face in landmarks]
    if len(window) < 2:
        return own
    centre = next(i for i, points in enumerate(window) if points is own)
    return smooth_window(np.stack(window), centre, interocular_distance(own))
