"""scripts/bench_quality.py's command line: recipes are strings of train options, a lone flag too."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_quality import recipes_joined


def test_a_recipe_that_is_one_flag_is_taken_as_the_recipe() -> None:
    argv = ["--minutes", "4", "--recipe", "--warp-to-landmarks", "--recipe", "", "--recipe", "-b 8"]
    assert recipes_joined(argv) == [
        "--minutes",
        "4",
        "--recipe=--warp-to-landmarks",
        "--recipe=",
        "--recipe=-b 8",
    ]


@pytest.mark.parametrize("argv", [["--recipe"], ["--recipe=--flip 0"], ["--pair", "d3,d6"]])
def test_other_words_pass_unchanged(argv: list[str]) -> None:
    assert recipes_joined(argv) == argv
