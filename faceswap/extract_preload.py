"""Imported by the fork server of ``faceswap extract``: loads the dlib models before any worker is forked.

Workers forked from the server then share the loaded models (see
:func:`faceswap.extract_worker.preload_models`) instead of loading their own.
"""

from faceswap.extract_worker import preload_models

preload_models()
