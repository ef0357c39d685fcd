"""``faceswap extract``: command-line options."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from faceswap.cli.options import add_person_options, options_from
from faceswap.cli.validators import finite_float, whole_number

log = logging.getLogger("faceswap")


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``extract`` subcommand."""
    parser = subparsers.add_parser(
        "extract",
        parents=[parent],
        help="find, align and crop the faces of a video, gif, photo or folder",
        description=(
            "Find the faces in every frame of a video or gif (or in every image of a folder), place 68 "
            "landmarks, align each face to the mean face and save it as a square PNG crop. Everything "
            "found is recorded in alignments.json inside the output folder, which train and convert "
            "read. In a video, faces are detected now and then and followed from frame to frame in "
            "between, on all cores."
        ),
        epilog=(
            "Examples: 'faceswap extract clip.mp4' writes ./clip_faces/; "
            "'faceswap extract clip.mp4 --reference me.jpg --min-size 100' keeps only your face; "
            "'faceswap extract clip.mp4 --resume' finishes an interrupted run."
        ),
    )
    parser.add_argument(
        "input",
        type=Path,
        help="a video or gif, a photo, a folder of photos, or a folder of videos (one output "
        "subfolder per video)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="output folder for the crops and alignments.json (default: ./<input name>_faces, "
        "where convert looks for it)",
    )
    parser.add_argument(
        "--every",
        type=whole_number(),
        default=1,
        metavar="N",
        help="process only every Nth frame (default: %(default)s, every frame)",
    )
    parser.add_argument(
        "--min-size",
        type=finite_float(),
        default=0,
        metavar="PX",
        help="ignore faces narrower than PX pixels in the frame; counted as 'too small'. Above 110, "
        "detection also runs on a frame downscaled to suit, so much smaller faces are not even looked "
        "for, which is faster (default: %(default)s, keep all)",
    )
    parser.add_argument(
        "--max-faces",
        type=whole_number(),
        metavar="N",
        help="keep at most the N largest faces of each frame (default: all)",
    )
    parser.add_argument(
        "--size",
        type=whole_number(),
        default=256,
        metavar="PX",
        help="side of the saved crops in pixels, 64 to 2048; the face fills the central 5/8 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--detector",
        choices=("hog", "cnn"),
        default="hog",
        help="face detector: hog is fast (about 20 ms for a 512x512 frame) and finds frontal faces "
        "from about 80 px; cnn (dlib's MMOD) also finds turned and smaller faces but takes about "
        "2 s per frame on a CPU (default: %(default)s)",
    )
    parser.add_argument(
        "--upsample",
        type=whole_number(),
        default=0,
        choices=(0, 1, 2, 3),
        help="detector upsampling steps when looking for new faces: each finds faces half as large "
        "(1: from about 40 px) at four times the cost (default: %(default)s)",
    )
    add_person_options(
        parser,
        "photos of the person to keep: faces of anyone else are not recorded and are counted "
        "as 'wrong person' (dlib face embeddings; default: keep everybody)",
    )
    parser.add_argument(
        "--blur-threshold",
        type=finite_float(),
        default=0.0,
        metavar="V",
        help="faces whose variance of the Laplacian (measured on the face region of the crop) is "
        "below V are recorded but their crop is not saved; counted as 'blurry'. Sharp 256-px "
        "crops measure about 100-1000 (default: %(default)s, keep all)",
    )
    parser.add_argument(
        "--smooth",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="smooth landmarks over time in videos to remove frame-to-frame jitter: an "
        "edge-preserving average over 2 frames on each side, without lag (default: on)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted extract: frames already in the output's alignments.json are "
        "skipped (the options must be the same)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start again when the output folder already holds an extract: its alignments.json and "
        "crops are deleted first",
    )
    parser.add_argument(
        "--jobs",
        type=whole_number(),
        metavar="N",
        help="worker processes (default: the number of CPU cores)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the extract pipeline with the parsed options and log the summary."""
    from faceswap.extract import ExtractOptions, extract

    options = options_from(args, ExtractOptions, reference=list(args.reference))
    summary = extract(args.input, options)
    log.info("%s", summary.format())
    return 0
