"""README.md stays true: its two commands are the ones CI and users run, and it covers every subcommand."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from faceswap.cli import COMMANDS, build_parser
from tests.test_cli import subcommand_parsers

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)


def test_the_test_command_is_what_ci_runs() -> None:
    command = next(block for block in shell_blocks(README) if "pytest" in block).strip()
    steps = [step.strip() for step in command.split("&&")]
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    for step in steps[2:]:  # after creating and activating the environment
        assert any(line.endswith(step) for line in ci), f"README test step {step!r} is not in .ci/run"
    assert ci[-1] == steps[-1] == "pytest"


def test_the_first_command_installs_and_runs_the_demo() -> None:
    first = shell_blocks(README)[0].strip()
    assert "pip install ." in first and first.endswith("faceswap demo")


def test_every_subcommand_and_option_group_is_documented() -> None:
    parser = build_parser()
    for command in COMMANDS:
        assert f"faceswap {command}" in README, command
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for command, subparser in subparsers.choices.items():
        for action in subparser._actions:
            long = [
                o
                for o in action.option_strings
                if o.startswith("--") and o not in ("--help", "--verbose", "--quiet")
            ]
            if long:
                name = long[0].removeprefix("--no-")
                assert name.removeprefix("--") in README, f"README does not mention {command} {long[0]}"


def test_readme_covers_what_users_ask_about() -> None:
    for topic in ("Troubleshooting", "Ethics", "synthetic", "Dockerfile", "pip install '.[gpu]'", "--resume"):
        assert topic in README, topic


# -- every option the README names, against each command's --help ---------------------------------

_OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def command_paragraphs() -> dict[str, str]:
    """The option paragraph of each command (``**extract** — ...`` up to the next blank line)."""
    found = re.findall(r"^\*\*(\w+)\*\* — (.*?)(?:\n\n|\Z)", README, flags=re.DOTALL | re.MULTILINE)
    return dict(found)


def options_of(command: str) -> dict[str, argparse.Action]:
    parser = subcommand_parsers()[command]
    return {name: action for action in parser._actions for name in action.option_strings}


def readme_command_lines() -> list[list[str]]:
    """Every ``faceswap COMMAND ...`` line of the README's shell blocks, split as a shell would."""
    lines = []
    for block in shell_blocks(README):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            for start, word in enumerate(words):
                if word == "faceswap" and start + 1 < len(words) and words[start + 1] in COMMANDS:
                    lines.append(words[start + 1 :])
    return lines


def test_each_command_paragraph_names_only_its_own_options_and_all_of_them() -> None:
    paragraphs = command_paragraphs()
    assert set(paragraphs) == set(COMMANDS)
    for command, text in paragraphs.items():
        known = options_of(command)
        named = {name for word in _OPTION.findall(text) for name in word.split("/")}
        unknown = sorted(
            name for name in named if name not in known and name.replace("--no-", "--") not in known
        )
        assert not unknown, f"README's {command} paragraph names options {command} does not have: {unknown}"
        for name, action in known.items():
            if name.startswith("--") and name not in ("--help", "--verbose", "--quiet"):
                short = [other for other in action.option_strings if other != name]
                assert name in named or any(other in named for other in short), (
                    f"README's {command} paragraph leaves out {name}"
                )


def mentions(name: str, text: str) -> list[re.Match[str]]:
    """Where ``text`` names option ``name`` (``--model``, not the start of ``--model-size``)."""
    return list(re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text))


def written_with_value(name: str, text: str) -> bool:
    """Whether ``text`` writes option ``name`` at least once with a value after it.

    ``--erode PCT``, ``--by identity`` and ``--bins N`` inside the backticks, ``--threshold` 0.55``
    or ``--identity-threshold` (0.6)`` after them.
    """
    for match in mentions(name, text):
        after = re.match(r"`?\s*(\S+)", text[match.end() :])
        if after and not re.match(r"[,.;:)\]`]|and\b|or\b|-", after[1]):
            return True
    return False


def test_options_that_take_a_value_are_written_with_one() -> None:
    """An option written alone (`--sharpen`) reads as a switch: a value or a default stands beside it."""
    missing = [
        f"{command} {name}"
        for command, text in command_paragraphs().items()
        for name, action in options_of(command).items()
        if action.nargs != 0
        and name.startswith("--")
        and mentions(name, text)
        and not written_with_value(name, text)
    ]
    assert not missing, f"README writes these options without their value: {missing}"


def test_every_readme_command_line_parses() -> None:
    lines = readme_command_lines()
    assert len(lines) > 10
    for words in lines:
        parser = subcommand_parsers()[words[0]]
        try:
            parser.parse_args(words[1:])
        except SystemExit:
            raise AssertionError(f"README command does not parse: faceswap {' '.join(words)}") from None


def test_help_examples_use_the_readme_names() -> None:
    for command, parser in subcommand_parsers().items():
        for folder in re.findall(r"models/[\w-]+", parser.format_help()):
            assert folder in README, f"faceswap {command} --help says {folder}, the README does not"
