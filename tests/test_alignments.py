"""The alignments file: round trip, atomic saves, and refusal of damaged or hostile files."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from faceswap import alignments as alignments_module
from faceswap.alignments import (
    Alignments,
    Face,
    FrameRecord,
    SourceInfo,
    default_output_dir,
    find_alignments,
)
from faceswap.errors import AlignmentsError, OutputError
from faceswap.fileio import TEMP_PREFIX


def make_face(seed: int = 0) -> Face:
    rng = np.random.default_rng(seed)
    landmarks = rng.uniform(100, 300, (68, 2)).round(2)
    return Face(
        box=(100.0, 110.0, 300.0, 310.0),
        landmarks=landmarks,
        matrix=np.array([[0.01, 0.001, -1.0], [-0.001, 0.01, -1.1]]),
        blur=123.456,
        score=1.25,
        identity_distance=0.31,
        crop=f"clip_{seed:06d}_0.png",
    )


def make_alignments() -> Alignments:
    source = SourceInfo("clip.mp4", "video", 10, 480, 360, Fraction(30000, 1001), 0.33)
    result = Alignments(source=source, settings={"detector": "hog", "size": 256})
    result.frames[0] = FrameRecord([make_face(0), make_face(1)])
    result.frames[3] = FrameRecord([])
    result.frames[9] = FrameRecord([make_face(9)])
    return result


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    original = make_alignments()
    path = tmp_path / "alignments.json"
    original.save(path)
    loaded = Alignments.load(path)
    assert loaded.source == original.source
    assert loaded.source.fps == Fraction(30000, 1001)
    assert loaded.settings == original.settings
    assert sorted(loaded.frames) == [0, 3, 9]
    assert loaded.face_count == 3
    for index, record in original:
        for mine, theirs in zip(record.faces, loaded.faces(index), strict=True):
            np.testing.assert_allclose(theirs.landmarks, mine.landmarks)
            np.testing.assert_allclose(theirs.matrix, mine.matrix, rtol=1e-8)
            assert theirs.box == mine.box and theirs.crop == mine.crop
            assert theirs.score == mine.score and theirs.identity_distance == mine.identity_distance
    assert loaded.missing_frames() == [1, 2, 4, 5, 6, 7, 8]
    assert loaded.missing_frames(step=3) == [6]


def test_file_is_one_frame_per_line(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    make_alignments().save(path)
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines if re.match(r'^"\d+": ', line)] == ['"0"', '"3"', '"9"']
    json.loads(path.read_text())  # and still plain JSON


def test_failed_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "alignments.json"
    good = make_alignments()
    good.save(path)
    before = path.read_bytes()
    broken = make_alignments()
    broken.frames[9].faces[0].landmarks[0, 0] = np.nan  # not JSON: the writer refuses mid-file
    with pytest.raises(ValueError):
        broken.save(path)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_save_into_a_missing_folder_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write"):
        make_alignments().save(tmp_path / "missing" / "alignments.json")


def test_source_mismatch_names_both_sources() -> None:
    alignments = make_alignments()
    other = SourceInfo("other.mp4", "video", 11, 480, 360)
    with pytest.raises(AlignmentsError, match=r"clip\.mp4 \(10 frames at 480x360\).*other\.mp4 \(11 frames"):
        alignments.check_source(other, "alignments.json")
    resized = SourceInfo("clip.mp4", "video", 10, 640, 360)
    with pytest.raises(AlignmentsError):
        alignments.check_source(resized, "alignments.json")
    alignments.check_source(SourceInfo("copy.mp4", "video", 10, 480, 360), "alignments.json")


def document() -> dict:
    return json.loads(json.dumps(_serialised()))


def _serialised() -> dict:
    alignments = make_alignments()
    return {
        "format": "faceswap-alignments",
        "version": 1,
        "source": alignments.source.to_json(),
        "settings": {},
        "frames": {str(i): r.to_json() for i, r in alignments},
    }


def face0(doc: dict) -> dict:
    return doc["frames"]["0"]["faces"][0]


HOSTILE = {
    "not an object": (lambda d: [1, 2, 3], "not a faceswap alignments file"),
    "another format": (lambda d: {**d, "format": "something"}, "not a faceswap alignments file"),
    "newer version": (lambda d: {**d, "version": 2}, "newer faceswap"),
    "version as text": (lambda d: {**d, "version": "1"}, "version"),
    "version zero": (lambda d: {**d, "version": 0}, "unknown version"),
    "negative frame": (lambda d: {**d, "frames": {"-5": {"faces": []}}}, "not a frame number"),
    "frame beyond the end": (lambda d: {**d, "frames": {"10": {"faces": []}}}, "beyond"),
    "frames as a list": (lambda d: {**d, "frames": []}, "frames must be an object"),
    "huge frame count": (lambda d: _set(d, ["source", "frame_count"], 10**12), "frame_count"),
    "zero frame count": (lambda d: _set(d, ["source", "frame_count"], 0), "frame_count"),
    "width as text": (lambda d: _set(d, ["source", "width"], "480"), "width"),
    "zero fps": (lambda d: _set(d, ["source", "fps"], "0/1"), "fps"),
    "bad fps": (lambda d: _set(d, ["source", "fps"], "fast"), "fps"),
    "bad kind": (lambda d: _set(d, ["source", "kind"], "webcam"), "kind"),
    "67 landmarks": (lambda d: _face(d, "landmarks", face0(d)["landmarks"][:67]), "landmarks"),
    "3-d landmarks": (lambda d: _face(d, "landmarks", [[1, 2, 3]] * 68), "landmarks"),
    "text landmarks": (lambda d: _face(d, "landmarks", [["1", "2"]] * 68), "numbers"),
    "boolean landmarks": (lambda d: _face(d, "landmarks", [[True, False]] * 68), "numbers"),
    "far-away landmarks": (lambda d: _face(d, "landmarks", [[1e9, 0]] * 68), "out of range"),
    "huge landmark array": (lambda d: _face(d, "landmarks", [[0, 0]] * 100_000), "landmarks"),
    "degenerate matrix": (lambda d: _face(d, "matrix", [[0, 0, 1], [0, 0, 1]]), "degenerate"),
    "short matrix": (lambda d: _face(d, "matrix", [[1, 0, 0]]), "matrix"),
    "box of three": (lambda d: _face(d, "box", [1, 2, 3]), "box"),
    "negative blur": (lambda d: _face(d, "blur", -1), "blur"),
    "crop escaping the folder": (lambda d: _face(d, "crop", "../../etc/passwd"), "plain file name"),
    "crop with a newline": (lambda d: _face(d, "crop", "a\nb.png"), "plain file name"),
    "too many faces": (lambda d: _set(d, ["frames", "0", "faces"], [face0(d)] * 65), "more than 64"),
    "faces not a list": (lambda d: _set(d, ["frames", "0", "faces"], {"a": 1}), "faces must be a list"),
}


def _set(doc: dict, keys: list[str], value: object) -> dict:
    target = doc
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return doc


def _face(doc: dict, key: str, value: object) -> dict:
    face0(doc)[key] = value
    return doc


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_are_refused_with_a_named_reason(tmp_path: Path, case: str) -> None:
    mutate, expected = HOSTILE[case]
    path = tmp_path / "alignments.json"
    path.write_text(json.dumps(mutate(document())))
    with pytest.raises(AlignmentsError) as raised:
        Alignments.load(path)
    message = str(raised.value)
    assert expected in message
    assert str(path) in message and "\n" not in message


def test_nan_written_by_another_tool_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alignments.json"
    text = json.dumps(document()).replace('"blur": 123.456', '"blur": NaN', 1)
    path.write_text(text)
    with pytest.raises(AlignmentsError, match="blur"):
        Alignments.load(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe garbage", b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "truncated", "binary", "deeply nested"],
)
def test_corrupt_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "alignments.json"
    path.write_bytes(content)
    with pytest.raises(AlignmentsError, match="alignments"):
        Alignments.load(path)


def test_truncated_real_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alignments.json"
    make_alignments().save(path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(AlignmentsError, match="corrupt JSON"):
        Alignments.load(path)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "alignments.json"
    make_alignments().save(path)
    monkeypatch.setattr(alignments_module, "MAX_FILE_BYTES", 100)
    with pytest.raises(AlignmentsError, match="larger than"):
        Alignments.load(path)


def test_missing_file() -> None:
    with pytest.raises(AlignmentsError, match="no such alignments file"):
        Alignments.load("/nonexistent/alignments.json")


def test_find_alignments_looks_beside_the_input_then_here(tmp_path: Path, monkeypatch) -> None:
    video = tmp_path / "videos" / "my clip.mp4"
    video.parent.mkdir()
    video.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert find_alignments(video) is None
    here = default_output_dir(video) / "alignments.json"
    here.parent.mkdir()
    here.write_text("{}")
    assert find_alignments(video) == here
    beside = video.parent / default_output_dir(video) / "alignments.json"
    beside.parent.mkdir()
    beside.write_text("{}")
    assert find_alignments(video) == beside
    assert default_output_dir(video).name == "my_clip_faces"
