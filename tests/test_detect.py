"""Detection and landmarks on real photos: the astronaut, dlib's reference faces, pictures without people."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from faceswap.detect import FaceDetector, LandmarkPredictor
from faceswap.landmarks import eye_centres, interocular_distance
from faceswap.media.reader import read_image
from faceswap.track import iou
from tests.conftest import require_data


@pytest.fixture(scope="module")
def models() -> tuple[FaceDetector, LandmarkPredictor]:
    return FaceDetector("hog"), LandmarkPredictor()


def test_astronaut_has_one_face_with_landmarks_in_place(astronaut: np.ndarray, models) -> None:
    detector, predictor = models
    detections = detector.detect(astronaut)
    assert len(detections) == 1
    box = detections[0].box
    assert 75 <= detections[0].width <= 100  # her face is about 87 px wide
    landmarks = predictor(astronaut, box)
    right_eye, left_eye = eye_centres(landmarks)
    # Positions read off the photo (512x512): eyes at about (203, 102) and (247, 104),
    # nose tip (225, 127), mouth corners (201, 140) and (245, 141), chin (221, 178).
    np.testing.assert_allclose(right_eye, (203, 102), atol=3)
    np.testing.assert_allclose(left_eye, (247, 104), atol=3)
    np.testing.assert_allclose(landmarks[30], (225, 127), atol=3)
    np.testing.assert_allclose(landmarks[[48, 54]], [(201, 140), (245, 141)], atol=3)
    np.testing.assert_allclose(landmarks[8], (221, 178), atol=4)
    # And the anatomy is in order: brows above eyes above nose above mouth above chin.
    y = lambda group: landmarks[group, 1].mean()  # noqa: E731
    assert y(range(17, 27)) < y(range(36, 48)) < y([30]) < y(range(48, 68)) < y([8])


def test_half_scale_detection_loses_the_small_astronaut_face(astronaut: np.ndarray, models) -> None:
    # HOG's window is 80 px: an 87-px face is lost at half scale, found again with one upsampling.
    detector, _ = models
    assert detector.detect(astronaut, scale=0.5) == []
    found = detector.detect(astronaut, scale=0.5, upsample=1)
    assert len(found) == 1 and iou(found[0].box, detector.detect(astronaut)[0].box) > 0.5


def test_downscaled_and_gray_detection_agree_with_full_colour(astronaut, models) -> None:
    import cv2

    from faceswap.detect import downscale

    small = downscale(astronaut, (231, 200))
    assert small.shape == (200, 231, 3)
    direct = cv2.resize(astronaut, (231, 200), interpolation=cv2.INTER_AREA)
    # pyrDown blurs a little more than area averaging (measured: 3.9 levels on average).
    assert np.abs(small.astype(int) - direct).mean() < 6
    detector, _ = models
    (full,) = detector.detect(astronaut)
    (gray,) = detector.detect(astronaut, gray=True)
    assert iou(gray.box, full.box) > 0.8
    # Upscaled twice so that the face (87 px) survives a downscale to 0.45 of that.
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    reference = detector.detect(big)[0]  # the best detection: hers (a weak one fires on her suit)
    scaled = detector.detect(big, scale=0.45, gray=True)[0]
    assert iou(scaled.box, reference.box) > 0.7


def test_hog_detector_is_cached_and_a_damaged_copy_rebuilt(astronaut, models, tmp_path, monkeypatch) -> None:
    import dlib

    from faceswap.detect import cache_dir, frontal_face_detector

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "faceswap"
    expected = [d.box for d in models[0].detect(astronaut)]
    frontal_face_detector()  # builds dlib's detector and saves the copy
    (cached,) = (tmp_path / "faceswap").iterdir()
    assert dlib.__version__ in cached.name
    size = cached.stat().st_size
    assert size > 100_000
    loaded = FaceDetector("hog")  # from the copy
    assert [d.box for d in loaded.detect(astronaut)] == expected
    cached.write_bytes(b"not a detector")
    assert [d.box for d in FaceDetector("hog").detect(astronaut)] == expected
    assert cached.stat().st_size == size  # rebuilt


def reference_faces(xml: Path) -> dict[str, list[tuple[tuple[float, float, float, float], np.ndarray]]]:
    faces: dict[str, list] = {}
    for image in ElementTree.parse(xml).getroot().iter("image"):
        for box in image.iter("box"):
            left, top = float(box.get("left")), float(box.get("top"))
            rect = (left, top, left + float(box.get("width")), top + float(box.get("height")))
            parts = sorted(box.iter("part"), key=lambda part: int(part.get("name")))
            points = np.array([(float(p.get("x")), float(p.get("y"))) for p in parts])
            if points.shape == (68, 2):
                faces.setdefault(image.get("file"), []).append((rect, points))
    return faces


def test_dlib_reference_landmarks_are_reproduced(models) -> None:
    folder = require_data("dlib_faces")
    reference = reference_faces(folder / "testing_with_face_landmarks.xml")
    assert sum(len(faces) for faces in reference.values()) >= 20
    detector, predictor = models
    errors, found = [], 0
    for name, faces in reference.items():
        image = read_image(folder / name)
        # These faces are about 50 px: one upsampling step finds faces from about 40 px.
        for detection in detector.detect(image, upsample=1):
            best = max(faces, key=lambda face: iou(face[0], detection.box))
            if iou(best[0], detection.box) < 0.4:
                continue
            found += 1
            landmarks = predictor(image, detection.box)
            errors.append(np.linalg.norm(landmarks - best[1], axis=1).mean())
    # Measured: all 25 found, mean error per face 0.0 to 0.9 px (median 0.26).
    assert found >= 24, f"the detector matched only {found} of the 25 reference faces"
    errors = np.array(errors)
    assert np.median(errors) <= 0.5, errors.round(2)
    assert errors.max() <= 2.0, errors.round(2)


@pytest.mark.parametrize(
    "name",
    ["dlib_faces/dogs.jpg", "images/no_face/s22.jpg", "images/no_face/s25.jpg", "images/no_face/s39.jpg"],
)
def test_pictures_without_people_have_no_face(models, name: str) -> None:
    detector, _ = models
    image = read_image(require_data(*name.split("/")))
    assert detector.detect(image) == []
    if name.startswith("dlib_faces"):
        assert detector.detect(image, upsample=1) == []


def test_people_photos_have_one_face_except_d8(models) -> None:
    # d8.jpg shows a face HOG does not find, even upsampled (a known miss, measured).
    detector, predictor = models
    for name in ("d19.jpg", "d30.jpg", "s12.jpg", "s2.jpg"):
        image = read_image(require_data("images", "people", name))
        detections = detector.detect(image)
        assert len(detections) == 1, name
        assert interocular_distance(predictor(image, detections[0].box)) > 20, name
    assert detector.detect(read_image(require_data("images", "people", "d8.jpg"))) == []
