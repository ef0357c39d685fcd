"""faceswap sort on real crops: people recovered, corrupted and blurred crops found, inputs untouched.

Material: crops of three people extracted here from three shared clips
(d18, d19, d6; 20 frames of each, spread over the clip with --every), mixed
in one folder.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap.cli import main
from faceswap.crops import read_crop, write_crop
from faceswap.errors import OutputError
from faceswap.sort import SortOptions, sort_faces
from tests.conftest import require_data

PEOPLE = {"d18": 11, "d19": 12, "d6": 50}  # clip: --every (about 20 faces each)


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory):
    """Measurements cached in a folder of this test module's, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder holding the extracted crops of d18, d19 and d6 (names lead back to the clip)."""
    from faceswap.extract import ExtractOptions, extract

    work = tmp_path_factory.mktemp("extracts")
    folder = work / "mixed"
    folder.mkdir()
    for clip, every in PEOPLE.items():
        out = work / clip
        extract(
            require_data("video", f"{clip}.mp4"),
            ExtractOptions(output=out, every=every, jobs=1, progress=False),
        )
        for crop in out.glob("*.png"):
            shutil.copy2(crop, folder / crop.name)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def read_order(output: Path) -> list[dict[str, str]]:
    with open(output / "sort.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_identity_recovers_three_people(tmp_path: Path, mixed: Path, capsys) -> None:
    before = snapshot(mixed)
    output, sheet = tmp_path / "people", tmp_path / "people.png"
    code = main(["sort", str(mixed), "--by", "identity", "-o", str(output), "--sheet", str(sheet), "-q"])
    assert code == 0, capsys.readouterr().err
    groups = sorted(p.name for p in output.iterdir() if p.is_dir())
    assert groups == ["person_1", "person_2", "person_3"]
    found = set()
    for group in groups:
        clips = [name.split("_")[0] for name in (p.name for p in (output / group).iterdir())]
        majority = max(set(clips), key=clips.count)
        assert clips.count(majority) / len(clips) >= 0.95, (group, clips)
        found.add(majority)
    assert found == set(PEOPLE)
    assert snapshot(mixed) == before  # the faces folder is untouched
    linked = output / "person_1" / next((output / "person_1").iterdir()).name
    assert linked.stat().st_ino == (mixed / linked.name).stat().st_ino  # a hard link, no copy
    page = cv2.imread(str(sheet))
    assert page is not None and page.shape[1] > 1000  # one page: a few dozen faces fit
    assert not list(tmp_path.glob(".faceswap-tmp-*"))


def test_second_sort_comes_from_the_cache(tmp_path: Path, mixed: Path) -> None:
    first = sort_faces(mixed, SortOptions(by="identity", output=tmp_path / "a", progress=False))
    second = sort_faces(mixed, SortOptions(by="identity", output=tmp_path / "b", progress=False))
    assert second.measured == 0
    assert [f.path.name for f in second.faces] == [f.path.name for f in first.faces]
    touched = mixed / first.faces[0].path.name
    touched.write_bytes(touched.read_bytes())  # a changed file (new mtime) is measured again
    third = sort_faces(mixed, SortOptions(by="identity", output=tmp_path / "c", progress=False))
    assert third.measured == 1


def test_similar_to_puts_that_person_first(tmp_path: Path, mixed: Path) -> None:
    from faceswap.media.reader import VideoSource

    frame = next(VideoSource(require_data("video", "d19.mp4")).frames(100, 101)).image
    photo = tmp_path / "d19.png"
    cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = sort_faces(
        mixed, SortOptions(similar_to=[photo], output=tmp_path / "out", bins=1, progress=False)
    )
    count = sum(f.path.name.startswith("d19_") for f in result.faces)
    assert all(f.path.name.startswith("d19_") for f in result.faces[:count])


def corrupted_folder(mixed: Path, folder: Path) -> tuple[list[str], list[str]]:
    """Crops of d18 and d19, plus a shifted, a rotated and a non-face crop, and blurred copies of three."""
    folder.mkdir()
    crops = sorted(p for p in mixed.glob("*.png") if not p.name.startswith("d6_"))
    for crop in crops:
        shutil.copy2(crop, folder / crop.name)
    image, info = read_crop(crops[3])
    size = image.shape[0]
    shifted = np.roll(image, (size // 7, size // 8), axis=(0, 1))
    turn = cv2.getRotationMatrix2D((size / 2, size / 2), 30, 1.0)
    rotated = cv2.warpAffine(image, turn, (size, size), borderMode=cv2.BORDER_REFLECT101)
    dog = cv2.cvtColor(cv2.imread(str(require_data("images", "no_face", "s25.jpg"))), cv2.COLOR_BGR2RGB)
    write_crop(folder / "bad_shifted.png", shifted, info)  # metadata still says "aligned"
    write_crop(folder / "bad_rotated.png", rotated, info)
    write_crop(folder / "bad_not_a_face.png", cv2.resize(dog, (size, size)))
    blurred = []
    for crop in crops[5:8]:
        image, info = read_crop(crop)
        write_crop(folder / f"blurred_{crop.name}", cv2.GaussianBlur(image, (0, 0), 3), info)
        blurred.append(f"blurred_{crop.name}")
    return ["bad_shifted.png", "bad_rotated.png", "bad_not_a_face.png"], blurred


def test_misalign_and_blur_find_the_bad_crops(tmp_path: Path, mixed: Path) -> None:
    bad, blurred = corrupted_folder(mixed, tmp_path / "faces")
    misalign = sort_faces(
        tmp_path / "faces", SortOptions(by="misalign", output=tmp_path / "m", progress=False)
    )
    assert {f.path.name for f in misalign.faces[:3]} == set(bad)
    assert misalign.faces[0].path.name == "bad_not_a_face.png"  # no face found at all: first
    assert [row["name"] for row in read_order(tmp_path / "m")][:3] == [
        f.path.name for f in misalign.faces[:3]
    ]
    assert (tmp_path / "m" / "01" / "bad_shifted.png").is_file()  # the top bin
    blur = sort_faces(
        tmp_path / "faces", SortOptions(by="blur", output=tmp_path / "b", bins=1, progress=False)
    )
    assert {f.path.name for f in blur.faces[-3:]} == set(blurred)
    assert (tmp_path / "b" / blurred[0]).is_file()  # one flat folder with --bins 1


def test_pose_size_and_colour_orderings(tmp_path: Path, mixed: Path) -> None:
    from faceswap.landmarks import MIRROR

    folder = tmp_path / "faces"
    folder.mkdir()
    crops = sorted(mixed.glob("d18_*.png"))
    for crop in crops:
        shutil.copy2(crop, folder / crop.name)
    pose = sort_faces(folder, SortOptions(by="pose", output=tmp_path / "p", bins=1, progress=False))
    yaws = [f.score for f in pose.faces]
    assert np.all(np.diff(np.floor(np.array(yaws) / 10)) >= 0)  # by yaw, in 10-degree steps
    turned = max(pose.faces, key=lambda f: abs(f.score)).path  # the most turned face; its mirror image
    image, info = read_crop(turned)  # turns as far the other way
    mirrored = info.landmarks[MIRROR].copy()
    mirrored[:, 0] = image.shape[1] - 1 - mirrored[:, 0]
    write_crop(folder / "mirrored.png", image[:, ::-1], dataclasses.replace(info, landmarks=mirrored))
    pose = sort_faces(
        folder, SortOptions(by="pose", output=tmp_path / "p", bins=1, overwrite=True, progress=False)
    )
    scores = {f.path.name: f.score for f in pose.faces}
    assert abs(scores["mirrored.png"] + scores[turned.name]) < 3.0  # the same turn, the other way
    end = pose.faces[0] if scores[turned.name] > 0 else pose.faces[-1]
    assert np.floor(end.score / 10) == np.floor(scores["mirrored.png"] / 10)  # at that end of the order
    (folder / "mirrored.png").unlink()
    extract_folder = next(p for p in mixed.parent.iterdir() if p.name == "d18")  # has its alignments.json
    size = sort_faces(extract_folder, SortOptions(by="size", output=tmp_path / "s", bins=1, progress=False))
    assert np.all(np.diff([f.score for f in size.faces]) <= 0)
    dark = folder / "dark.png"
    image, info = read_crop(crops[0])
    write_crop(dark, (image * 0.4).astype(np.uint8), info)
    colour = sort_faces(folder, SortOptions(by="colour", output=tmp_path / "c", bins=1, progress=False))
    assert colour.faces[0].path.name == "dark.png"


def test_in_place_moves_crops_into_groups(tmp_path: Path, mixed: Path) -> None:
    folder = tmp_path / "faces"
    shutil.copytree(mixed, folder)
    names = sorted(p.name for p in folder.glob("*.png"))
    result = sort_faces(folder, SortOptions(by="identity", in_place=True, progress=False))
    assert result.output is None
    assert sorted(p.name for p in folder.rglob("*.png")) == names  # every crop kept its name
    assert not list(folder.glob("*.png"))  # all moved into person_N/
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 3
    again = sort_faces(folder, SortOptions(by="identity", output=tmp_path / "out", progress=False))
    assert again.measured == 0  # moved crops are the same files: their measurements are kept
    sort_faces(folder, SortOptions(by="blur", in_place=True, bins=2, progress=False))
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["1", "2"]  # person_N/ emptied, removed
    assert sorted(p.name for p in folder.rglob("*.png")) == names


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_output_overlapping_the_faces_is_refused(tmp_path: Path, mixed: Path, capsys, where: str) -> None:
    faces = tmp_path / "faces"
    shutil.copytree(mixed, faces)
    before = snapshot(faces)
    output = {"same": faces, "inside": faces / "sorted", "around": tmp_path}[where]
    code = main(["sort", str(faces), "--by", "blur", "-o", str(output), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "overlaps the faces folder" in err[0]
    assert snapshot(faces) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "blur", "--similar-to", "x.png"], "give one of --by or --similar-to"),
        (["--by", "blur", "--bins", "0"], "--bins must be"),
        (["--by", "identity", "--threshold", "0"], "--threshold must be"),
        (["--by", "blur", "--sheet", "sheet.jpg"], "ending in .png"),
        (["--by", "blur", "--in-place", "-o", "out"], "takes no -o"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, mixed: Path, capsys, args: list[str], message: str) -> None:
    code = main(["sort", str(mixed), *args, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(err) == 1 and message in err[0], err


def test_empty_folder_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "faces").mkdir()
    code = main(["sort", str(tmp_path / "faces"), "--by", "blur", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no face crops" in err[0]


def test_help_states_the_pipeline_defaults() -> None:
    from faceswap import sort
    from faceswap.cli import sort as cli

    assert cli.ORDERINGS == sort.ORDERINGS and cli.IDENTITY_THRESHOLD == sort.IDENTITY_THRESHOLD
    assert cli.DEFAULT_BINS == sort.DEFAULT_BINS and SortOptions().per_page == cli.PER_PAGE


def test_similar_to_a_photo_without_a_face_is_one_line(tmp_path: Path, mixed: Path, capsys) -> None:
    photo = require_data("images", "no_face", "s22.jpg")
    code = main(["sort", str(mixed), "--similar-to", str(photo), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no face found" in err[0]
    assert not (tmp_path / "out").exists()


def test_sheet_pages_are_numbered_and_not_overwritten(tmp_path: Path) -> None:
    from faceswap.errors import OutputError
    from faceswap.sheet import THUMB, SheetEntry, write_sheets

    entries = []
    for number in range(30):
        path = tmp_path / f"face_{number:02d}.png"
        cv2.imwrite(str(path), np.full((64, 64, 3), number * 8, np.uint8))
        entries.append(
            SheetEntry(path, path.name, f"score {number}", "person_1" if number < 20 else "others")
        )
    pages = write_sheets(entries, tmp_path / "sheet.png", title="test", per_page=12)
    assert [p.name for p in pages] == ["sheet_001.png", "sheet_002.png", "sheet_003.png"]
    first = cv2.imread(str(pages[0]))
    assert first.shape[1] > 12 * THUMB and first.shape[0] > THUMB
    with pytest.raises(OutputError, match="already exists"):
        write_sheets(entries, tmp_path / "sheet.png", title="test", per_page=12)
    assert len(write_sheets(entries[:5], tmp_path / "one.png", title="test")) == 1
    assert (tmp_path / "one.png").is_file()


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    from faceswap.feature_cache import cache_file

    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for number in range(4):
        noise = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        write_crop(folder / f"face_{number}.png", cv2.GaussianBlur(noise, (0, 0), number + 0.5))
    cache = cache_file(folder)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(b"not a cache")
    result = sort_faces(folder, SortOptions(by="blur", output=tmp_path / "out", bins=1, progress=False))
    assert result.measured == 4 and result.faces[0].path.name == "face_0.png"
    again = sort_faces(
        folder, SortOptions(by="blur", output=tmp_path / "out", overwrite=True, progress=False)
    )
    listed = sorted(path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith("."))
    assert again.measured == 0 and listed[0] == "1"


def test_overwrite_replaces_only_an_output_that_sort_made(tmp_path: Path) -> None:
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for number in range(3):
        write_crop(folder / f"face_{number}.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"a user's own file")
    with pytest.raises(OutputError, match="faceswap did not make"):
        sort_faces(folder, SortOptions(by="blur", output=mine, overwrite=True, progress=False))
    assert (mine / "holiday.jpg").read_bytes() == b"a user's own file"
    made = tmp_path / "made"
    sort_faces(folder, SortOptions(by="blur", output=made, progress=False))
    (made / "note.txt").write_text("added by the user")
    with pytest.raises(OutputError, match=r"note\.txt"):
        sort_faces(folder, SortOptions(by="blur", output=made, overwrite=True, progress=False))
    (made / "note.txt").unlink()
    sort_faces(folder, SortOptions(by="blur", output=made, overwrite=True, progress=False))
    assert (made / "sort.csv").is_file()
