"""Whole-face coverage: the model's square (centering), masks with the forehead, a blend fading along them.

The astronaut (scikit-image's photo) gives real landmarks; d18/d19 give a model
trained for a few iterations with ``face`` centering.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceswap.align import (
    CENTERINGS,
    CROP_PADDING,
    alignment_matrix,
    crop_face,
    crop_matrix,
    face_region,
    invert,
    model_padding,
    transform_points,
)
from faceswap.augment import AugmentConfig
from faceswap.blend import BlendOptions, SwappedFace, face_mask, face_size, paste_faces, square_corners
from faceswap.convert import model_input
from faceswap.errors import InputError, ModelError
from faceswap.landmarks import LEFT_BROW, RIGHT_BROW, face_hull
from faceswap.mask import MASK_KINDS
from faceswap.model_folder import STATE_FILE, TrainingState, read_state

SIDE = 64  # the decoder's output size in the blend tests


@pytest.fixture(scope="module")
def astronaut_face(astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's 68 landmarks (frame pixels) and alignment matrix."""
    from faceswap.detect import FaceDetector, LandmarkPredictor

    detection = max(FaceDetector("hog").detect(astronaut), key=lambda d: d.width)
    landmarks = LandmarkPredictor()(astronaut, detection.box)
    return landmarks, alignment_matrix(landmarks)


def blend_weight(
    astronaut: np.ndarray,
    astronaut_face: tuple[np.ndarray, np.ndarray],
    kind: str,
    centering: str,
    **options: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The blend weight of the astronaut's face on the whole frame, and the face's alignment.

    The decoder's mask is all ones: the worst case, where only the model's square bounds it.
    """
    landmarks, matrix = astronaut_face
    face = SwappedFace(
        np.zeros((SIDE, SIDE, 3), np.float32),
        np.ones((SIDE, SIDE, 1), np.float32),
        matrix,
        landmarks,
        centering,
    )
    height, width = astronaut.shape[:2]
    mask = face_mask(face, (width, height), BlendOptions(mask=kind, **options))
    assert mask is not None
    left, top, right, bottom = mask.region
    weight = np.zeros((height, width), np.float32)
    weight[top:bottom, left:right] = mask.alpha
    return weight, matrix


def forehead_point(landmarks: np.ndarray, rise: float) -> np.ndarray:
    """The frame point ``rise`` unit-face sides above the highest brow point, midway between the brows."""
    matrix = alignment_matrix(landmarks)
    brows = transform_points(landmarks[RIGHT_BROW.start : LEFT_BROW.stop], matrix)
    point = np.array([[brows[:, 0].mean(), brows[:, 1].min() - rise]])
    return transform_points(point, invert(matrix))[0]


def at(image: np.ndarray, point: np.ndarray) -> float:
    x, y = np.round(point).astype(int)
    return float(image[y, x])


# -- the model's square -------------------------------------------------------------------------


def test_legacy_is_the_classic_square_and_face_reaches_the_chin_and_forehead(
    astronaut_face: tuple[np.ndarray, np.ndarray],
) -> None:
    assert face_region(256) == face_region(256, CROP_PADDING, "legacy") == (48, 208)
    assert face_region(256, CROP_PADDING, "face") == (8, 248)  # inside the saved crop
    assert model_padding("legacy") == 0.0 and model_padding("face") == pytest.approx(1 / 6)
    landmarks, matrix = astronaut_face
    unit = transform_points(landmarks, matrix)
    chin = unit[8]
    top, bottom = -model_padding("face") / (1 - 2 * model_padding("face")), 1.25
    assert 1.0 < chin[1] < bottom + 0.01  # the legacy square cuts the chin off; face's reaches its tip
    assert top < unit[RIGHT_BROW.start : LEFT_BROW.stop, 1].min() - 0.2
    with pytest.raises(ValueError, match="unknown centering 'head'"):
        model_padding("head")


def test_train_and_convert_cut_the_same_square(
    tmp_path: Path, astronaut: np.ndarray, astronaut_face: tuple[np.ndarray, np.ndarray]
) -> None:
    """What training shows the model (a saved crop's region) is what convert feeds it (cut from the frame)."""
    from faceswap.crops import CropInfo, write_crop
    from faceswap.train.batches import BatchSource
    from faceswap.train.dataset import load_faces

    landmarks, matrix = astronaut_face
    crop = crop_face(astronaut, matrix, 256)
    info = CropInfo(
        landmarks=transform_points(landmarks, crop_matrix(matrix, 256, CROP_PADDING)),
        size=256,
        padding=CROP_PADDING,
        source="astronaut.png",
        frame=0,
        face=0,
    )
    write_crop(tmp_path / "astronaut_000000_0.png", crop, info)
    inputs = {}
    for centering in CENTERINGS:
        faces = load_faces(tmp_path, "A", 64, centering=centering)
        plain = BatchSource((faces, faces), 1, 64, AugmentConfig.none()).plain(0, [0])
        converted = model_input(astronaut, matrix, 64, centering)
        difference = np.abs(plain["face"][0].astype(float) - converted.astype(float)).mean()
        assert difference < 3.0, (centering, difference)
        inputs[centering] = converted
        if centering == "face":  # the mask the decoder learns covers the forehead too
            point = transform_points(forehead_point(landmarks, 0.12)[None], crop_matrix(matrix, 64, 1 / 6))[0]
            assert at(plain["mask"][0, ..., 0], point) == 255
    assert np.abs(inputs["face"].astype(float) - inputs["legacy"].astype(float)).mean() > 20


def test_crops_too_tight_for_face_centering_are_refused(
    tmp_path: Path, astronaut: np.ndarray, astronaut_face: tuple[np.ndarray, np.ndarray]
) -> None:
    from faceswap.crops import CropInfo, write_crop
    from faceswap.train.dataset import load_faces

    landmarks, matrix = astronaut_face
    padding = 0.1  # the face square fills 80 % of the crop: no room for 1.5 times it
    info = CropInfo(
        transform_points(landmarks, crop_matrix(matrix, 128, padding)), 128, padding, "x.png", 0, 0
    )
    write_crop(tmp_path / "x_000000_0.png", crop_face(astronaut, matrix, 128, padding), info)
    assert len(load_faces(tmp_path, "A", 64, centering="legacy")) == 1
    with pytest.raises(InputError, match="too little around the face for face centering"):
        load_faces(tmp_path, "A", 64, centering="face")


# -- masks with the forehead --------------------------------------------------------------------


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_the_mask_covers_the_forehead_above_the_brows(
    astronaut: np.ndarray, astronaut_face: tuple[np.ndarray, np.ndarray], kind: str
) -> None:
    landmarks, _ = astronaut_face
    weight, _ = blend_weight(astronaut, astronaut_face, kind, "face")
    above_brows = forehead_point(landmarks, 0.12)  # frown lines and the lower forehead
    assert at(weight, above_brows) > 0.95
    # The 68 points alone stop at the brows: the hull without the forehead leaves the point out.
    import cv2

    hull = face_hull(landmarks).astype(np.float32).reshape(-1, 1, 2)
    assert cv2.pointPolygonTest(hull, tuple(float(v) for v in above_brows), False) < 0
    # Legacy models paint nothing there: their square ends at the brows.
    legacy, _ = blend_weight(astronaut, astronaut_face, kind, "legacy")
    assert at(legacy, above_brows) == 0.0


def test_the_forehead_turns_with_the_face(astronaut_face: tuple[np.ndarray, np.ndarray]) -> None:
    from faceswap.landmarks import forehead

    landmarks, _ = astronaut_face
    centre = landmarks.mean(axis=0)
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = (landmarks - centre) @ rotation.T + centre
    np.testing.assert_allclose(
        forehead(turned), (forehead(landmarks) - centre) @ rotation.T + centre, atol=1e-6
    )


# -- the blend fades along the mask, and never shows the square's edge ---------------------------


@pytest.mark.parametrize("centering", list(CENTERINGS))
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_no_row_of_the_blend_weight_steps(
    astronaut: np.ndarray, astronaut_face: tuple[np.ndarray, np.ndarray], kind: str, centering: str
) -> None:
    """The weight's vertical gradient stays that of the feather, wherever the mask or the square ends.

    A Gaussian fade of sigma w/4 (w: the feather width) rises at most 1.6/w a pixel; a
    hard edge rises about 1 in one pixel, which the same measure finds with --blur 0.
    """
    matrix = astronaut_face[1]
    width = 6.0 / 100 * face_size(matrix)  # the default --blur of 6 %
    weight, _ = blend_weight(astronaut, astronaut_face, kind, centering)
    steepest = np.abs(np.diff(weight, axis=0)).max()
    assert steepest < 2.5 / width, (steepest, 2.5 / width)
    hard, _ = blend_weight(astronaut, astronaut_face, kind, centering, blur=0.0)
    assert np.abs(np.diff(hard, axis=0)).max() > 0.5


@pytest.mark.parametrize("centering", list(CENTERINGS))
@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("erode", [0.0, -20.0])
def test_the_pasted_weight_is_zero_on_the_edge_of_the_models_square(
    astronaut: np.ndarray,
    astronaut_face: tuple[np.ndarray, np.ndarray],
    kind: str,
    centering: str,
    erode: float,
) -> None:
    weight, matrix = blend_weight(astronaut, astronaut_face, kind, centering, erode=erode)
    corners = square_corners(matrix, model_padding(centering))
    steps = np.linspace(0.0, 1.0, 400, endpoint=False)[:, None]
    edge = np.concatenate(
        [a + steps * (b - a) for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True)]
    )
    pixels = np.unique(np.round(edge).astype(int), axis=0)  # every pixel the edge passes through
    assert weight[pixels[:, 1], pixels[:, 0]].max() == 0.0
    assert weight.max() > 0.99  # and the face itself is pasted


def test_paste_leaves_the_frame_exact_on_the_square_edge(
    astronaut: np.ndarray, astronaut_face: tuple[np.ndarray, np.ndarray]
) -> None:
    landmarks, matrix = astronaut_face
    white = np.ones((SIDE, SIDE, 3), np.float32)
    face = SwappedFace(white, np.ones((SIDE, SIDE, 1), np.float32), matrix, landmarks, "face")
    result = paste_faces(astronaut, [face], BlendOptions(mask="learned", color="none"))
    corners = square_corners(matrix, model_padding("face"))
    edge = np.concatenate(
        [
            a + np.linspace(0, 1, 400)[:, None] * (b - a)
            for a, b in zip(corners, np.roll(corners, -1, 0), strict=True)
        ]
    )
    x, y = np.unique(np.round(edge).astype(int), axis=0).T
    np.testing.assert_array_equal(result[y, x], astronaut[y, x])
    centre = np.round(transform_points(np.array([[0.5, 0.5]]), invert(matrix))[0]).astype(int)
    assert (result[centre[1], centre[0]] == 255).all()


# -- stored with the model ----------------------------------------------------------------------


def test_old_model_folders_load_with_legacy_centering(tmp_path: Path) -> None:
    """A state.json written before the setting names no centering: legacy (convert: see the slow test)."""
    from faceswap.model_folder import write_state

    assert TrainingState("lite", 64).centering == "legacy"
    assert TrainingState("lite", 64, config={"centering": "face"}).centering == "face"
    tmp_path.joinpath("old").mkdir()
    write_state(tmp_path / "old", TrainingState("lite", 64, iteration=5, config={"batch_size": 16}))
    document = json.loads((tmp_path / "old" / STATE_FILE).read_text())
    assert "centering" not in document["config"]
    assert read_state(tmp_path / "old").centering == "legacy"
    document["config"]["centering"] = "head"
    (tmp_path / "old" / STATE_FILE).write_text(json.dumps(document))
    with pytest.raises(ModelError, match="unknown centering 'head'"):
        read_state(tmp_path / "old")


def test_the_command_line_offers_every_centering() -> None:
    from faceswap.cli.train import CENTERINGS as OFFERED
    from faceswap.train import TrainConfig

    assert sorted(OFFERED) == sorted(CENTERINGS)
    assert TrainConfig().centering == "face"  # new models see the whole face
    with pytest.raises(InputError, match="unknown centering"):
        TrainConfig(centering="head")


@pytest.fixture(scope="module")
def face_model(tmp_path_factory: pytest.TempPathFactory, faces_d18: Path, faces_d19: Path) -> Path:
    """Three iterations of the lite model with face centering on d18 (A) and d19 (B)."""
    from faceswap.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("coverage") / "d18-d19"
    config = TrainConfig(
        model="lite", centering="face", batch_size=2, seed=1, save_every=1000, preview_every=1000
    )
    train(faces_d18, faces_d19, folder, config, iterations=3, time_limit=600, progress=False)
    return folder


def convert_frame(model_dir: Path, video: Path, output: Path, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Convert one frame (``--preview``) with the hull mask: the original and the converted frame, RGB."""
    import cv2

    from faceswap.convert import ConvertOptions, convert
    from tests.convert_support import alignments_of

    blend = BlendOptions(mask="hull", color="none")
    options = ConvertOptions(
        model=model_dir,
        output=output,
        alignments=alignments_of(video),
        preview=frame,
        blend=blend,
        progress=False,
    )
    convert(video, options)
    both = cv2.cvtColor(cv2.imread(str(output)), cv2.COLOR_BGR2RGB)
    return both[:, : both.shape[1] // 2], both[:, both.shape[1] // 2 :]


@pytest.mark.slow
def test_a_model_trained_with_face_centering_converts_with_it(
    face_model: Path, video_d18: Path, tmp_path: Path
) -> None:
    import shutil

    from faceswap.alignments import Alignments
    from faceswap.model_folder import load_swap_model
    from faceswap.train import TrainingSession
    from tests.convert_support import alignments_of

    assert read_state(face_model).centering == "face"
    assert load_swap_model(face_model).centering == "face"
    # The same weights in a folder whose state names no centering: a legacy model.
    legacy = tmp_path / "legacy"
    shutil.copytree(face_model, legacy)
    document = json.loads((legacy / STATE_FILE).read_text())
    del document["config"]["centering"]
    (legacy / STATE_FILE).write_text(json.dumps(document))
    landmarks = np.asarray(Alignments.load(alignments_of(video_d18)).faces(30)[0].landmarks)
    x, y = np.round(forehead_point(landmarks, 0.12)).astype(int)
    patch = (slice(y - 2, y + 3), slice(x - 2, x + 3))
    for folder, painted in ((face_model, True), (legacy, False)):
        original, converted = convert_frame(folder, video_d18, tmp_path / f"{folder.name}.png", 30)
        forehead_changed = (converted[patch] != original[patch]).any()
        assert forehead_changed == painted, folder.name
        assert (converted != original).any()
    with pytest.raises(InputError, match="trained with face centering"):
        TrainingSession.resume(face_model, centering="legacy")
