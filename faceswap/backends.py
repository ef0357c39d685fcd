"""Which Keras backend runs the networks: TensorFlow (the default), JAX or PyTorch.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so the choice
is made before :mod:`faceswap.runtime` imports it: by ``--backend`` (see
:func:`choose_backend`) or by the environment variable. Nothing here imports
Keras or a backend, so the command line can choose without loading one.
"""

from __future__ import annotations

import argparse
import os
import sys

from faceswap.errors import InputError

#: The Keras backends faceswap runs on; the first is the default.
BACKENDS = ("tensorflow", "jax", "torch")
#: What to install for each backend (the package's extras).
_EXTRAS = {"tensorflow": "faceswap", "jax": "faceswap[jax]", "torch": "faceswap[torch]"}


def requested_backend() -> str:
    """The backend ``KERAS_BACKEND`` names (the default when unset).

    Raises
    ------
    InputError
        When it names a backend faceswap does not run on.
    """
    name = os.environ.get("KERAS_BACKEND") or BACKENDS[0]
    if name not in BACKENDS:
        raise InputError(f"KERAS_BACKEND={name}: faceswap runs on {', '.join(BACKENDS)}")
    return name


def choose_backend(name: str | None) -> str:
    """Make ``name`` (``None``: ``KERAS_BACKEND``, else TensorFlow) the backend of this process.

    Returns the backend chosen.

    Raises
    ------
    InputError
        When ``name`` is unknown, when Keras was already loaded with another
        backend, or when the backend's package is not installed.
    """
    if name is not None:
        if name not in BACKENDS:
            raise InputError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
        loaded = sys.modules.get("keras")
        if loaded is not None and loaded.backend.backend() != name:
            raise InputError(f"--backend {name}: Keras is already running on {loaded.backend.backend()}")
        os.environ["KERAS_BACKEND"] = name
    name = requested_backend()
    import importlib.util

    if importlib.util.find_spec(name) is None:
        raise InputError(f"the {name} backend is not installed: pip install '{_EXTRAS[name]}'")
    return name


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """The ``--backend`` option of the commands that run a network (train, convert)."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="the Keras backend that runs the network (default: KERAS_BACKEND, else tensorflow); "
        "a model trained on one runs on any",
    )
