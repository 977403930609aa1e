"""Every subcommand's --help explains itself: examples, and a description for every option."""

import argparse
import subprocess
import sys

import pytest

from vqblur.cli import COMMAND_MODULES, build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", list(COMMAND_MODULES))
def test_command_has_examples_and_described_options(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    sub = _subparsers()[name]
    text = sub.format_help()
    head, _, tail = text.partition("examples:")
    long = [line for line in head.splitlines() if len(line) > 80]
    long += [line for line in tail.splitlines() if len(line) > 80 and not line[:1].isspace()]
    assert not long, f"vqblur {name} --help: prose wider than the terminal: {long}"
    assert "examples:" in text and f"vqblur {name}" in text.split("examples:", 1)[1], text
    for action in sub._actions:
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help and action.help.strip(), f"vqblur {name}: {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("name, words", [
    ("demo", ["examples:", "vqblur demo --input", "level change"]),
    ("report", ["--quiet", "no progress lines"]),
])
def test_help_as_a_user_sees_it(name, words):
    r = subprocess.run([sys.executable, "-m", "vqblur", name, "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    for w in words:
        assert w in r.stdout, r.stdout
