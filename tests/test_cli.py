"""The command line as users meet it: entry points, --help of every subcommand, one-line errors."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from faceswap import __version__
from faceswap.cli import COMMANDS, build_parser


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faceswap", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version_from_module_and_console_script() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"faceswap {__version__}"
    script = subprocess.run(
        [sys.executable, "-c", "import sys; from faceswap.cli import main; sys.exit(main(['--version']))"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert script.stdout == result.stdout


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_registered() -> None:
    assert set(subcommand_parsers()) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_is_documented(command: str) -> None:
    parser = subcommand_parsers()[command]
    assert parser.description, f"{command} has no description"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, (
            f"{command} {action.option_strings} lacks help"
        )
        # Defaults that matter are stated: any non-trivial default appears in the help text.
        default = action.default
        if action.option_strings and default not in (None, False, True, [], argparse.SUPPRESS):
            assert "%(default)s" in action.help or str(default) in action.help, (
                f"{command} {action.option_strings[0]} does not state its default {default!r}"
            )


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_zero(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: faceswap {command}")
    assert "-v, --verbose" in result.stdout and "-q, --quiet" in result.stdout


def test_help_does_not_load_tensorflow() -> None:
    code = (
        "import sys; from faceswap.cli import build_parser; build_parser(); "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "False"


def test_usage_errors_are_one_line() -> None:
    for args in (["bogus"], ["extract", "--no-such-option"], []):
        result = run_cli(*args)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "error:" in lines[0], result.stderr
        assert "Traceback" not in result.stderr


def test_the_shared_identity_threshold_is_the_pipelines() -> None:
    from faceswap.cli.options import IDENTITY_THRESHOLD
    from faceswap.convert import ConvertOptions
    from faceswap.extract import ExtractOptions
    from faceswap.identity import SAME_PERSON_THRESHOLD

    assert IDENTITY_THRESHOLD == SAME_PERSON_THRESHOLD
    assert ExtractOptions().identity_threshold == ConvertOptions().identity_threshold == SAME_PERSON_THRESHOLD


def test_log_lines_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set up under one sys.stderr, logging writes to its successor, and a closed predecessor is harmless."""
    import io
    import logging

    from faceswap.cli import configure_logging

    logger = logging.getLogger("faceswap")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging(verbose=False, quiet=False)
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("faceswap.train").warning("only %d faces", 40)
    assert second.getvalue() == "warning: only 40 faces\n"
