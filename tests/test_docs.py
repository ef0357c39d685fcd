"""README.md stays true: its two commands are the ones CI and users run, and it covers every subcommand."""

from __future__ import annotations

import re
from pathlib import Path

from faceswap.cli import COMMANDS, build_parser

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
