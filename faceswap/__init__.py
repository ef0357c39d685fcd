"""faceswap: swap faces in video from the command line.

Three pipelines share this package: ``extract`` (find and align faces),
``train`` (a shared encoder with one decoder per identity) and ``convert``
(swap the faces of every frame and write a video). ``sort`` orders and groups
a faces folder so it can be curated before training, ``score`` measures a swap
and ``demo`` runs everything on bundled public-domain portraits.

Conventions used throughout the package:

* Images are ``numpy.uint8`` arrays of shape ``(height, width, 3)`` in **RGB**
  order. Conversion to OpenCV's BGR happens only at OpenCV's file I/O.
* Landmarks are ``float`` arrays of shape ``(68, 2)`` in ``(x, y)`` pixel
  coordinates of the frame they were found in (iBUG 300-W scheme).
* Errors a user can fix are raised as :class:`faceswap.errors.FaceswapError`
  with a one-line message; the command line prints it and exits non-zero.
"""

import os

__version__ = "0.1.0"

# TensorFlow prints several lines of C++ logging on import; a user-facing error
# must stay one line. Respect an explicit setting from the user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
