"""A bad option value reads like every other user error: one line `vqblur CMD: error: ...`,
the flag named once, no usage block, exit code 2 (run as a user runs it, in a subprocess)."""

import subprocess
import sys

import pytest

from vqblur.cli import clean_usage_message


def _vqblur(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vqblur", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, flag, value", [
    (["process", "in.wav", "out.wav", "--zone-size", "1.5"], "--zone-size", "1.5"),
    (["blur", "in.wav", "out.wav", "--temperature", "x"], "--temperature", "'x'"),
    (["process", "in.wav", "out.wav", "--block", "0"], "--block", "0"),
])
def test_bad_option_value_is_one_clean_line(args, flag, value):
    r = _vqblur(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    err = r.stderr
    assert err.count("\n") == 1 and err.endswith("\n"), err  # one line
    assert err.startswith(f"vqblur {args[0]}: error: {flag}"), err
    assert err.count(flag) == 1 and "argument " not in err, err  # the flag named once
    assert "usage:" not in err and "Traceback" not in err
    assert value in err


def test_missing_argument_is_one_line_pointing_at_help():
    r = _vqblur("process", "in.wav")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "usage:" not in r.stderr
    assert r.stderr.startswith("vqblur process: error: the following arguments are required: OUT")
    assert "`vqblur process --help`" in r.stderr


def test_message_cleaning():
    assert clean_usage_message("argument --zone-size: --zone-size must be in 0..1, got 2.0") == \
        "--zone-size must be in 0..1, got 2.0"
    assert clean_usage_message("argument --block: expected a positive integer, got 0") == \
        "--block: expected a positive integer, got 0"
    assert clean_usage_message("argument --neighbourhood/--neighborhood: bad") == "--neighborhood: bad"
    assert clean_usage_message("unrecognized arguments: --foo") == "unrecognized arguments: --foo"
