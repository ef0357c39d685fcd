"""Contact sheets: pages of face thumbnails with their names and scores, to review a folder at a glance.

A page holds :data:`DEFAULT_PER_PAGE` faces in :data:`COLUMNS` columns, in the
order given; each group (``person_1``, a bin of an ordering) starts on a new
row under a band that names it and counts its faces. One page is written
under the name asked for; several become ``<name>_001.png``,
``<name>_002.png``, ... Each page is written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceswap.errors import OutputError
from faceswap.fileio import write_bytes_atomic

#: Side of a thumbnail, in pixels.
THUMB = 112
#: Thumbnails per row.
COLUMNS = 12
#: Faces per page, unless told otherwise (a page is then about 1400 x 2500 px).
DEFAULT_PER_PAGE = 192
_LABEL_HEIGHT = 30
_GAP = 4
_BAND = 26
_TITLE = 34
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (245, 245, 245)
_INK = (20, 20, 20)
_BAND_COLOUR = (60, 90, 140)


@dataclass(frozen=True)
class SheetEntry:
    """One face on a sheet: where to read it, and the two lines written under it."""

    path: Path
    name: str
    label: str
    group: str = ""


def page_paths(path: Path, pages: int) -> list[Path]:
    """The file names of a sheet of ``pages`` pages (``path`` itself for one page)."""
    if pages <= 1:
        return [path]
    return [path.with_name(f"{path.stem}_{number:03d}{path.suffix}") for number in range(1, pages + 1)]


def _fit_text(text: str, width: int, scale: float) -> str:
    """``text``, shortened from the left (its end names frame and face) to fit ``width`` px."""
    text = text.encode("ascii", "replace").decode("ascii")
    while len(text) > 3 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        text = ".." + text[3:]
    return text


def _layout(entries: Sequence[SheetEntry], per_page: int) -> list[list[tuple[str, list[SheetEntry]]]]:
    """Pages of rows; a row is ``(band text or "", its entries)``; groups start on a new row."""
    rows: list[tuple[str, list[SheetEntry]]] = []
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.group] = counts.get(entry.group, 0) + 1
    current = None
    for entry in entries:
        if entry.group != current or len(rows[-1][1]) == COLUMNS:
            band = ""
            if entry.group != current and entry.group:
                faces = counts[entry.group]
                band = f"{entry.group}: {faces} face{'s' if faces != 1 else ''}"
            rows.append((band, []))
            current = entry.group
        rows[-1][1].append(entry)
    rows_per_page = max(1, per_page // COLUMNS)
    pages = [rows[i : i + rows_per_page] for i in range(0, len(rows), rows_per_page)]
    for page in pages[1:]:
        band, first = page[0]
        if not band and first[0].group:  # a group carried over from the previous page
            page[0] = (f"{first[0].group} (continued)", first)
    return pages


def _draw_page(
    rows: list[tuple[str, list[SheetEntry]]], title: str, thumbnail: Callable[[Path], np.ndarray]
) -> np.ndarray:
    cell_w, cell_h = THUMB + _GAP, THUMB + _LABEL_HEIGHT + _GAP
    width = COLUMNS * cell_w + _GAP
    height = _TITLE + sum(cell_h + (_BAND if band else 0) for band, _ in rows) + _GAP
    page = np.full((height, width, 3), _BACKGROUND, np.uint8)
    cv2.putText(page, _fit_text(title, width - 12, 0.6), (8, 23), _FONT, 0.6, _INK, 1, cv2.LINE_AA)
    y = _TITLE
    for band, entries in rows:
        if band:
            cv2.rectangle(page, (0, y), (width, y + _BAND - 4), _BAND_COLOUR, -1)
            cv2.putText(page, band, (8, y + 16), _FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            y += _BAND
        for column, entry in enumerate(entries):
            x = _GAP + column * cell_w
            page[y : y + THUMB, x : x + THUMB] = thumbnail(entry.path)
            for line, text in enumerate((entry.name, entry.label)):
                text = _fit_text(text, THUMB, 0.33)
                cv2.putText(page, text, (x, y + THUMB + 12 + 12 * line), _FONT, 0.33, _INK, 1, cv2.LINE_AA)
        y += cell_h
    return page


def _read_thumbnail(path: Path) -> np.ndarray:
    """A square RGB thumbnail of an image file; a grey square when it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return np.full((THUMB, THUMB, 3), 128, np.uint8)
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.cvtColor(cv2.resize(square, (THUMB, THUMB), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def check_sheet_path(path: Path, *, overwrite: bool) -> None:
    """Refuse a sheet name that is not a ``.png`` or whose pages exist (without ``overwrite``).

    Raises
    ------
    OutputError
        When ``path`` does not end in ``.png``, its folder does not exist, or
        it (or its first numbered page) exists and ``overwrite`` is false.
    """
    if path.suffix.lower() != ".png":
        raise OutputError(f"--sheet writes PNG pages: give a name ending in .png, not {path}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"--sheet {path}: folder {folder} does not exist")
    if overwrite:
        return
    for candidate in (path, *page_paths(path, 2)[:1]):
        if candidate.exists():
            raise OutputError(f"sheet page {candidate} already exists; pass --overwrite to replace it")


def write_sheets(
    entries: Sequence[SheetEntry],
    path: Path,
    *,
    title: str,
    per_page: int = DEFAULT_PER_PAGE,
    overwrite: bool = False,
    thumbnail: Callable[[Path], np.ndarray] = _read_thumbnail,
) -> list[Path]:
    """Draw the entries, in order, onto pages and write them as PNG files.

    Parameters
    ----------
    entries
        The faces, in the order to show them; consecutive entries of one
        ``group`` are shown under one band.
    path
        Name of the sheet (``.png``); several pages are numbered (:func:`page_paths`).
    title
        Written at the top of every page, followed by the page number.
    per_page
        Faces per page, rounded down to whole rows (at least one row).

    Returns
    -------
    list of Path
        The pages written.

    Raises
    ------
    OutputError
        When a page exists and ``overwrite`` is false, or cannot be written.
    """
    pages = _layout(entries, per_page) or [[]]
    paths = page_paths(path, len(pages))
    if not overwrite:
        for page_path in paths:
            if page_path.exists():
                raise OutputError(f"sheet page {page_path} already exists; pass --overwrite to replace it")
    for number, (rows, page_path) in enumerate(zip(pages, paths, strict=True), start=1):
        heading = f"{title}  (page {number}/{len(pages)})" if len(pages) > 1 else title
        image = _draw_page(rows, heading, thumbnail)
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OutputError(f"cannot encode sheet page {page_path}")
        write_bytes_atomic(page_path, encoded.tobytes())
    return paths
