"""What a file is, by its ending: the one list of image and video suffixes every module reads.

Images are whatever OpenCV decodes (:func:`faceswap.media.reader.read_image`,
:func:`faceswap.crops.read_crop`); videos whatever ffmpeg demuxes. Suffixes are
lower case; compare them with ``path.suffix.lower()``.
"""

from __future__ import annotations

#: File endings read as still images (photo folders, face crops, faces folders).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
#: File endings read as videos when a folder of videos is given.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".gif", ".wmv"})
