"""A mistyped option is reported by its subcommand with the nearest option named, and the knob
table's own spelling (``--zone_size``) is read as the flag (``--zone-size``)."""

import subprocess
import sys

import pytest

from vqblur.cli import build_parser, hyphenate_options, unrecognized_message


@pytest.fixture(scope="module")
def parser():
    return build_parser()


def _error(parser, capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err, err  # one line, no usage block
    return err


@pytest.mark.parametrize("argv, command, hint", [
    (["process", "in.wav", "out.wav", "--zone-sise", "0.3"], "process", "--zone-size"),
    (["process", "in.wav", "out.wav", "--zone_sise=0.3"], "process", "--zone-size"),
    (["blur", "in.wav", "out.wav", "--time", "0:1", "--tempreature", "0.3"], "blur", "--temperature"),
    (["bench", "--quik"], "bench", "--quick"),
    (["live", "--list-midis"], "live", "--list-midi"),
])
def test_typo_names_the_subcommand_and_the_nearest_option(parser, capsys, argv, command, hint):
    err = _error(parser, capsys, argv)
    assert err.startswith(f"vqblur {command}: error: unrecognized arguments: "), err
    assert f"did you mean {hint}?" in err, err
    assert f"(see `vqblur {command} --help`)" in err, err
    assert "(see `vqblur --help`)" not in err


def test_unknown_positional_has_no_made_up_hint(parser, capsys):
    err = _error(parser, capsys, ["process", "in.wav", "out.wav", "extra"])
    assert err == "vqblur process: error: unrecognized arguments: extra (see `vqblur process --help`)\n"


def test_mistyped_command_names_the_nearest_command(parser, capsys):
    err = _error(parser, capsys, ["procss", "in.wav", "out.wav"])
    assert "did you mean process?" in err and "(see `vqblur --help`)" in err, err


@pytest.mark.parametrize("spelling", [["--zone_size", "0.3"], ["--zone_size=0.3"]])
def test_knob_table_spelling_is_the_flag(parser, spelling):
    ns = parser.parse_args(["process", "in.wav", *spelling, "out.wav"])
    assert ns.zone_size == 0.3 and ns.input == "in.wav" and ns.output == "out.wav"
    ns = parser.parse_args(["bench", "--real_clips", "2", "--deadline_seconds", "1"])
    assert ns.real_clips == 2 and ns.deadline_seconds == 1.0


def test_underscore_spelling_still_checks_the_value(parser, capsys):
    err = _error(parser, capsys, ["process", "in.wav", "out.wav", "--zone_size", "2"])
    assert err.startswith("vqblur process: error: --zone-size must be in 0..1"), err


def test_hyphenation_leaves_values_and_positionals_alone(parser):
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices
               and "process" in a.choices).choices["process"]
    argv = ["my_in.wav", "--preset", "--odd_name.toml", "--zone_size", "0.1", "--",
            "--zone_size"]
    out = hyphenate_options(argv, sub)
    # "--odd_name.toml" is no option of process's: unchanged; after "--" nothing changes
    assert out == ["my_in.wav", "--preset", "--odd_name.toml", "--zone-size", "0.1", "--",
                   "--zone_size"]
    assert unrecognized_message(["--bogus-thing"], sub) == "unrecognized arguments: --bogus-thing"


def test_as_a_user_types_it():
    r = subprocess.run([sys.executable, "-m", "vqblur", "process", "in.wav", "out.wav",
                        "--zone-sise", "0.3"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("vqblur process: error: unrecognized arguments: --zone-sise 0.3; "
                        "did you mean --zone-size? (see `vqblur process --help`)\n"), r.stderr
