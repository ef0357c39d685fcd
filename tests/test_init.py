"""The front door: ``faceswap`` exports every pipeline, its options and its result, imported on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import faceswap


def test_importing_faceswap_imports_no_pipeline_and_no_tensorflow() -> None:
    code = (
        "import sys, faceswap\n"
        "print('faceswap.extract' in sys.modules, 'numpy' in sys.modules)\n"
        "for name in faceswap.__all__: getattr(faceswap, name)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "False", "False"]


def test_each_name_is_its_module_s_own() -> None:
    for name, (module, attribute) in faceswap._EXPORTS.items():
        assert getattr(faceswap, name) is getattr(importlib.import_module(module), attribute), name
    assert set(faceswap.__all__) == {"__version__", *faceswap._EXPORTS}
    assert set(faceswap.__all__) <= set(dir(faceswap))


def test_the_names_are_even() -> None:
    pipelines = {"extract_faces", "train_model", "convert_video", "sort_faces", "score_swap", "run_demo"}
    assert pipelines <= set(faceswap.__all__)
    for step in ("Extract", "Convert", "Sort"):
        assert f"{step}Options" in faceswap.__all__ and f"{step}Result" in faceswap.__all__
    for step in ("Train", "Score", "Demo"):
        assert f"{step}Result" in faceswap.__all__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'extract_everything'"):
        faceswap.extract_everything  # noqa: B018
