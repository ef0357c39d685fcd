"""``faceswap sort``: command-line options."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from faceswap.cli.options import options_from

log = logging.getLogger("faceswap")

# Repeated here (not imported) so that --help does not load OpenCV or dlib;
# tests/test_sort.py checks that they equal the pipeline's own.
ORDERINGS = ("identity", "blur", "pose", "misalign", "size", "colour")
IDENTITY_THRESHOLD = 0.55
DEFAULT_BINS = 10
PER_PAGE = 192


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``sort`` subcommand."""
    parser = subparsers.add_parser(
        "sort",
        parents=[parent],
        help="order or group a faces folder (people, blur, pose, misalignment, ...) and draw contact sheets",
        description=(
            "Order or group the face crops of a folder, to review them and delete the ones not to train "
            "on. --by identity finds the people (dlib face embeddings, average-linkage clusters) and "
            "groups them as person_1/, person_2/, ... from the largest, with faces of no group in "
            "others/; every other ordering fills --bins numbered subfolders (01/ holds the top of the "
            "order). The result goes to an output folder (hard links where the file system allows, "
            "copies elsewhere) with sort.csv listing the order; the faces folder is not changed unless "
            "--in-place is given. Every crop keeps its name, so it still leads back to its video, frame "
            "and face. Measurements are cached, so sorting the same folder again is fast. Faces "
            "deleted afterwards from the faces folder (or from the folder given to convert --faces) "
            "are not swapped by convert."
        ),
        epilog=(
            "Examples: 'faceswap sort me_faces --by identity --sheet people.png' writes "
            "me_faces_sorted/person_1/ ... and people.png; 'faceswap sort me_faces --by misalign --bins "
            "1 --sheet check.png' puts the worst-aligned faces first; 'faceswap sort me_faces "
            "--similar-to me.jpg' orders by likeness to your photo."
        ),
    )
    parser.add_argument(
        "faces", type=Path, help="folder of face crops from faceswap extract (subfolders too)"
    )
    choice = parser.add_argument_group("ordering (one of)")
    choice.add_argument(
        "--by",
        choices=ORDERINGS,
        help="identity: people, largest group first; blur: sharpest first; pose: by yaw in 10-degree "
        "steps, pitch within each; misalign: faces the detector does not find in their own crop, then "
        "the landmarks furthest from the mean face; size: largest face in its frame first (needs the "
        "folder's alignments.json); colour: furthest from the folder's typical face colour first",
    )
    choice.add_argument(
        "--similar-to",
        nargs="+",
        type=Path,
        default=[],
        metavar="PHOTO",
        help="order by likeness to the person on these photos (dlib embedding distance), nearest first",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="output folder; must not overlap the faces folder (default: <faces>_sorted beside it)",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="move the crops into the subfolders of the faces folder itself instead of an output folder",
    )
    parser.add_argument(
        "--copy",
        action="store_true",
        help="copy the crops into the output instead of hard-linking them (links take no space; "
        "deleting a linked crop from the output leaves the original)",
    )
    parser.add_argument(
        "--bins",
        type=int,
        default=DEFAULT_BINS,
        metavar="N",
        help="orderings other than identity: numbered subfolders of equal size; 1 puts every crop in "
        "one folder, in the order sort.csv and the sheet show (default: %(default)s)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=IDENTITY_THRESHOLD,
        metavar="D",
        help="--by identity: largest mean embedding distance within one person; lower splits more "
        "(default: %(default)s, measured on five people of the test clips: 0.50-0.60 all exact)",
    )
    parser.add_argument(
        "--sheet",
        type=Path,
        metavar="PNG",
        help="draw a contact sheet: thumbnails in the sorted order with name and score, a band per "
        "group; several pages are numbered (NAME_001.png, ...)",
    )
    parser.add_argument(
        "--per-page",
        type=int,
        default=PER_PAGE,
        metavar="N",
        help="faces per sheet page, 12 to 5000 (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output folder or sheet pages"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the sort pipeline with the parsed options and log the summary."""
    from faceswap.sort import SortOptions, sort_faces

    options = options_from(args, SortOptions, similar_to=list(args.similar_to))
    result = sort_faces(args.faces, options)
    log.info("%s", result.format())
    return 0
