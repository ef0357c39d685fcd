"""``faceswap convert``: command-line options."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from faceswap.backends import add_backend_option, choose_backend
from faceswap.cli.options import add_person_options, options_from
from faceswap.cli.validators import finite_float, whole_number

log = logging.getLogger("faceswap")

# Defaults are repeated here (not imported) so that --help does not load OpenCV or TensorFlow;
# tests/test_convert_cli.py checks that they equal the pipeline's own.
MASKS = ("learned", "hull", "combined")
COLORS = ("none", "mean", "reinhard", "hist")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Add the ``convert`` subcommand."""
    parser = subparsers.add_parser(
        "convert",
        parents=[parent],
        help="swap the faces of a video, gif or photos with a trained model",
        description=(
            "Replace every face of a video, gif, photo or folder of photos with the face a trained model "
            "paints (faces of person A become person B with --direction a2b). Faces come from the "
            "alignments file that extract wrote (found next to the input by default) or, without one, "
            "are found now. Each face is cut out along its smoothed alignment, decoded, warped back, "
            "colour-matched and blended in under a feathered mask. The output keeps the input's size, "
            "exact frame rate, frame count and audio; it is written under a temporary name and renamed "
            "when complete, and is labelled as synthetic in its metadata."
        ),
        epilog=(
            "Examples: 'faceswap convert clip.mp4 -m models/me-you' writes ./clip_swapped.mp4; "
            "'faceswap convert clip.mp4 -m models/me-you --preview 120' writes one PNG to judge the "
            "options by; 'faceswap convert clip.mp4 -m models/me-you -o clip.gif --fps 12 --width 320' "
            "makes a small gif."
        ),
    )
    parser.add_argument("input", type=Path, help="a video or gif, a photo, or a folder of photos")
    parser.add_argument(
        "-m",
        "--model",
        "--model-dir",
        dest="model",
        type=Path,
        required=True,
        metavar="DIR",
        help="trained model folder (with model.keras and state.json), as written by faceswap train "
        "(--model-dir is the same option, under train's name for it)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="output ending in .mp4 or .gif, or a folder for PNG frames; with --preview, a .png "
        "(default: ./<input name>_swapped.mp4, .gif for a gif input, a folder for photos)",
    )
    parser.add_argument(
        "-a",
        "--alignments",
        type=Path,
        metavar="FILE",
        help="alignments file of the input, from faceswap extract (default: "
        "<input name>_faces/alignments.json next to the input or in the current folder; without one, "
        "faces are found now, with extract's detector and tracker)",
    )
    parser.add_argument(
        "--faces",
        type=Path,
        metavar="DIR",
        help="faces folder whose crops say which recorded faces to swap: a face whose crop was deleted "
        "from it (or from its subfolders) after extract is left as it is, and convert says how many "
        "(default: the alignments file's folder)",
    )
    add_person_options(
        parser,
        "photos of the one person to swap: every other face is left as it is. Decided per face "
        "track (up to 7 faces of each compared, most must match), so a face never switches person "
        "within a shot (default: swap everybody)",
    )
    parser.add_argument(
        "--direction",
        choices=("a2b", "b2a"),
        default="a2b",
        help="a2b: the input shows person A (the model's side A) and gets B's face; b2a the other way "
        "round (default: %(default)s)",
    )
    parser.add_argument(
        "--frames",
        metavar="RANGES",
        help="swap faces only in these frames, e.g. 10-50,90-120 or 300- (0-based, inclusive); all "
        "other frames are written unchanged (default: all frames)",
    )
    group = parser.add_argument_group("blending")
    group.add_argument(
        "--mask",
        choices=MASKS,
        default="combined",
        help="blend mask: the decoder's learned mask, the convex hull of the landmarks, or both "
        "(their intersection) (default: %(default)s)",
    )
    group.add_argument(
        "--erode",
        type=finite_float(),
        default=0.0,
        metavar="PCT",
        help="shrink the mask by PCT %% of the face size; negative values grow it (default: %(default)s)",
    )
    group.add_argument(
        "--blur",
        type=finite_float(),
        default=6.0,
        metavar="PCT",
        help="feather the mask edge over PCT %% of the face size, inwards (default: %(default)s)",
    )
    group.add_argument(
        "--color",
        choices=COLORS,
        default="reinhard",
        help="match the new face's colours to the original face, measured within the mask: none, "
        "channel means, Reinhard transfer in Lab (mean and spread), or histogram matching "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--edge-color",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="near the mask's edge, give the new face the original's local colour, fading to none "
        "15%% of the face inside, so the paste ends without a step of colour (a paler forehead, "
        "a darker cheek); the inner face keeps --color's colours; --seamless matches the edge "
        "its own way instead (default: on)",
    )
    group.add_argument(
        "--seamless",
        action="store_true",
        help="Poisson blending (OpenCV seamlessClone): carries the frame's shading across the face; "
        "about 20 ms more per face (default: off)",
    )
    group.add_argument(
        "--sharpen",
        type=finite_float(),
        default=0.0,
        metavar="AMOUNT",
        help="unsharp-mask strength for the upscaled face, 0 to 5; 0.5 to 1 suits most models "
        "(default: %(default)s, off)",
    )
    group.add_argument(
        "--smooth",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="smooth each face's position, size, angle and shape over the whole clip so the pasted "
        "face and its mask edge do not shake (default: on)",
    )
    group = parser.add_argument_group("output")
    group.add_argument(
        "--crf",
        type=whole_number(),
        default=18,
        metavar="N",
        help="mp4: H.264 constant rate factor, 0 (lossless) to 51; lower is better and larger "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--preset",
        choices=PRESETS,
        default="veryfast",
        help="mp4: x264 speed preset; slower presets make smaller files at the same quality "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--fps",
        type=finite_float(),
        metavar="FPS",
        help="gif: the highest frame rate, frames are dropped evenly (default: 15); a folder of photos "
        "to mp4 or gif: its frame rate (default: 25)",
    )
    group.add_argument(
        "--width",
        type=whole_number(),
        metavar="PX",
        help="gif: width in pixels, height follows (default: the input's width)",
    )
    group.add_argument(
        "--preview",
        type=whole_number(),
        metavar="N",
        help="only convert frame N and write it beside the original as one PNG, to tune the options "
        "quickly (default: off)",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output (only once the new one is complete)",
    )
    parser.add_argument(
        "--batch-size",
        type=whole_number(),
        default=32,
        metavar="N",
        help="faces per forward pass of the model (default: %(default)s)",
    )
    add_backend_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the convert pipeline with the parsed options and log the summary."""
    choose_backend(args.backend)
    from faceswap.blend import BlendOptions
    from faceswap.convert import ConvertOptions, convert

    blend = options_from(args, BlendOptions)
    options = options_from(args, ConvertOptions, blend=blend, reference=list(args.reference))
    summary = convert(args.input, options)
    if args.preview is None:
        log.info("%s", summary.format())
    return 0
