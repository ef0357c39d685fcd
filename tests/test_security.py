"""Files from others are data, not code: no pickle, no shell, no unsafe model loading anywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "pickle": re.compile(r"\bpickle\b|\bcPickle\b|\bdill\b|\bjoblib\.load\b"),
    "shell=True": re.compile(r"shell\s*=\s*True"),
    "safe_mode=False": re.compile(r"safe_mode\s*=\s*False"),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "os.system / os.popen": re.compile(r"\bos\.(system|popen)\s*\("),
    "eval / exec": re.compile(r"(?<![\w.])(eval|exec)\s*\("),
    "yaml.load without SafeLoader": re.compile(r"\byaml\.load\s*\((?![^)]*SafeLoader)"),
}


def source_files() -> list[Path]:
    files = sorted((ROOT / "faceswap").rglob("*.py")) + sorted((ROOT / "scripts").rglob("*.py"))
    assert len(files) > 10  # the scan really looked at the package
    return files


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_no_unsafe_construct_in_the_package(name: str) -> None:
    pattern = FORBIDDEN[name]
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in source_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, f"{name} found:\n" + "\n".join(hits)


def test_the_scan_would_catch_them(tmp_path: Path) -> None:
    samples = {
        "pickle": "import pickle",
        "shell=True": "subprocess.run(cmd, shell=True)",
        "safe_mode=False": "keras.models.load_model(p, safe_mode=False)",
        "allow_pickle=True": "np.load(f, allow_pickle=True)",
        "os.system / os.popen": "os.system('ffmpeg ...')",
        "eval / exec": "value = eval(text)",
        "yaml.load without SafeLoader": "yaml.load(stream)",
    }
    for name, line in samples.items():
        assert FORBIDDEN[name].search(line), name
    assert not FORBIDDEN["eval / exec"].search("model.evaluate(x)")
    assert not FORBIDDEN["eval / exec"].search("self.exec_time = 1")
