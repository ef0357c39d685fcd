"""faceswap: swap faces in video from the command line.

Three pipelines share this package: ``extract`` (find and align faces),
``train`` (a shared encoder with one decoder per identity) and ``convert``
(swap the faces of every frame and write a video). ``sort`` orders and groups
a faces folder so it can be curated before training, ``score`` measures a swap
and ``demo`` runs everything on bundled public-domain portraits.

From Python, every pipeline is here, with its options and its result::

    import faceswap

    faceswap.extract_faces("a.mp4", faceswap.ExtractOptions(output=Path("faces/a")))  # -> ExtractResult
    faceswap.extract_faces("b.mp4", faceswap.ExtractOptions(output=Path("faces/b")))
    faceswap.train_model("faces/a", "faces/b", "models/a-b", faceswap.TrainConfig(), time_limit=600)
    faceswap.convert_video("a.mp4", faceswap.ConvertOptions(model=Path("models/a-b")))  # -> ConvertResult
    faceswap.sort_faces("faces/a", faceswap.SortOptions(by="identity"))  # -> SortResult
    faceswap.score_swap("a.mp4", "a_swapped.mp4", targets=["b.jpg"])  # -> ScoreResult
    faceswap.run_demo(Path("faceswap-demo"))  # -> DemoResult

(The functions are ``extract.extract``, ``train.train``, ``convert.convert``,
``sort.sort_faces``, ``score.score`` and ``demo.run_demo``: a package's
attribute cannot share the name of its submodule.) The names are imported on
first use (PEP 562), so ``import faceswap`` and ``faceswap --help`` stay fast
and TensorFlow loads only when a model is built.

Conventions used throughout the package:

* Images are ``numpy.uint8`` arrays of shape ``(height, width, 3)`` in **RGB**
  order. Conversion to OpenCV's BGR happens only at OpenCV's file I/O.
* Landmarks are ``float`` arrays of shape ``(68, 2)`` in ``(x, y)`` pixel
  coordinates of the frame they were found in (iBUG 300-W scheme).
* Errors a user can fix are raised as :class:`faceswap.errors.FaceswapError`
  with a one-line message; the command line prints it and exits non-zero.
"""

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# TensorFlow prints several lines of C++ logging on import; a user-facing error
# must stay one line. Respect an explicit setting from the user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Public name -> (module, name in that module).
_EXPORTS = {
    "extract_faces": ("faceswap.extract", "extract"),
    "ExtractOptions": ("faceswap.extract", "ExtractOptions"),
    "ExtractResult": ("faceswap.extract", "ExtractResult"),
    "train_model": ("faceswap.train.api", "train"),
    "TrainConfig": ("faceswap.train.config", "TrainConfig"),
    "AugmentConfig": ("faceswap.augment", "AugmentConfig"),
    "Hardware": ("faceswap.train.session", "Hardware"),
    "TrainResult": ("faceswap.train.session", "TrainResult"),
    "convert_video": ("faceswap.convert", "convert"),
    "ConvertOptions": ("faceswap.convert", "ConvertOptions"),
    "ConvertResult": ("faceswap.convert", "ConvertResult"),
    "sort_faces": ("faceswap.sort", "sort_faces"),
    "SortOptions": ("faceswap.sort", "SortOptions"),
    "SortResult": ("faceswap.sort", "SortResult"),
    "score_swap": ("faceswap.score", "score"),
    "ScoreResult": ("faceswap.score", "ScoreResult"),
    "run_demo": ("faceswap.demo", "run_demo"),
    "DemoResult": ("faceswap.demo", "DemoResult"),
    "FaceswapError": ("faceswap.errors", "FaceswapError"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'faceswap' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
