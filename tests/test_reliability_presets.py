"""Hostile preset, controller-map and automation files: a PresetError/UserError naming the file
and what is wrong, never a traceback.

Complements tests/test_presets.py, tests/test_controller_maps.py and tests/test_automation.py
(unknown keys/knobs, out-of-range values, malformed TOML/JSON, missing files): here the files
are binary, non-UTF-8, nested absurdly deep, NaN/inf, dates, folders, damaged MIDI files, and
the whole `vqblur process --preset/--automation` path answers with one line and exit code 2.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vqblur.cli import main
from vqblur.engine.automation import load_automation
from vqblur.engine.stage.midi import load_controller_map
from vqblur.engine.presets import load_preset
from vqblur.common.errors import PresetError, UserError


@pytest.mark.parametrize(
    "data,pattern",
    [
        (b"\xff\xfe[knobs]\nzone_size = 0.2\n", "UTF-8"),
        (b"\x00\x01\x02\x03" * 50, "malformed TOML"),
        (b"[knobs]\nzone_size = nan\n", r"'knobs\.zone_size' must be a number"),
        (b"[knobs]\nzone_size = inf\n", r"'knobs\.zone_size' = inf is out of range"),
        (b"[knobs]\nzone_size = 1e400\n", "out of range"),
        (b"[knobs]\nzone_size = -0.1\n", "out of range"),
        (b"[knobs]\nzone_size = 1979-05-27\n", r"'knobs\.zone_size' must be a number"),
        (b"[knobs]\nzone_size = [[[[1]]]]\n", r"'knobs\.zone_size' must be a number"),
        (b"[knobs]\nmix = 0.1\nmix = 0.2\n", "malformed TOML"),
        (b"[knobs]\n" + b"x" * 100_000 + b" = 1\n", "unknown knob"),
        (b"name = 3\n", "'name' must be a string"),
        (b"[controller]\nmap = 3\n", "'controller.map'"),
        (b"[knobs]\nbypass = true\n", r"'knobs\.bypass' must be a number"),
    ],
    ids=["not-utf8", "binary", "nan", "inf", "1e400", "negative", "date", "nested", "duplicate",
         "huge-key", "name-int", "map-int", "bool"],
)
def test_hostile_preset_files(tmp_path, data, pattern):
    f = tmp_path / "hostile.toml"
    f.write_bytes(data)
    with pytest.raises(PresetError, match=pattern) as ei:
        load_preset(f)
    assert "hostile.toml" in str(ei.value)


def test_preset_with_a_bom_and_an_empty_preset_load(tmp_path):
    f = tmp_path / "bom.toml"
    f.write_bytes("\ufeff[knobs]\nzone_size = 0.2\n".encode())
    assert load_preset(f).params.zone_size == 0.2
    e = tmp_path / "empty.toml"
    e.write_bytes(b"")
    assert load_preset(e).params.zone_size == 0.0  # every knob at its default


def test_a_folder_named_like_a_preset(tmp_path):
    d = tmp_path / "folder.toml"
    d.mkdir()
    with pytest.raises(PresetError, match=r"folder\.toml: is a folder"):
        load_preset(d)


@pytest.mark.parametrize(
    "data,pattern",
    [
        (b"\xff[knobs]\nzone_size = 1\n", "cannot read|UTF-8|utf-8"),
        (b"[knobs]\nzone_size = nan\n", "CC number"),
        (b"[knobs]\nzone_size = 1.5\n", "CC number"),
        (b"[knobs]\nzone_size = -1\n", "CC number"),
        (b"\x00" * 64, "not valid TOML"),
        (b"", "missing key 'knobs'"),
    ],
    ids=["not-utf8", "nan", "float", "negative", "binary", "empty"],
)
def test_hostile_controller_maps(tmp_path, data, pattern):
    f = tmp_path / "ctl.toml"
    f.write_bytes(data)
    with pytest.raises(PresetError, match=pattern) as ei:
        load_controller_map(str(f))
    assert "ctl.toml" in str(ei.value)


_GOOD_MID_HEAD = b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0"


@pytest.mark.parametrize(
    "name,data,pattern",
    [
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("bytes.json", b"\xff\xfe\x00", "not valid JSON"),
        ("nan.json", b'[{"time": NaN, "mix": 0.5}]', "'time' must be"),
        ("inf.json", b'[{"time": 0, "mix": Infinity}]', "out of range"),
        ("obj.json", b'{"breakpoints": 3}', "non-empty JSON list"),
        ("cut.mid", _GOOD_MID_HEAD + b"MTrk\x00\x00\x00\x10\x00\xb0\x01", "not a readable MIDI file"),
        ("junk.mid", bytes(range(256)) * 4, "not a readable MIDI file"),
        ("runstat.mid", _GOOD_MID_HEAD + b"MTrk\xff\xff\xff\xff" + b"\x01\x02" * 100,
         "not a readable MIDI file"),
        ("empty.mid", b"", "not a readable MIDI file"),
    ],
)
def test_hostile_automation_files(tmp_path, name, data, pattern):
    f = tmp_path / name
    f.write_bytes(data)
    with pytest.raises(UserError, match=pattern) as ei:
        load_automation(f)
    assert name in str(ei.value)


def test_mutated_midi_files_never_escape_as_tracebacks(tmp_path):
    """300 random mutations of a valid automation .mid: each loads or is a UserError."""
    import mido

    mid = mido.MidiFile()
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    for i in range(40):
        tr.append(mido.Message("control_change", control=[1, 74, 71, 91, 80][i % 5], value=i, time=10))
    good = tmp_path / "good.mid"
    mid.save(str(good))
    base = good.read_bytes()
    rng = np.random.default_rng(0)
    f = tmp_path / "fz.mid"
    for _ in range(300):
        b = bytearray(base)
        k = rng.integers(0, 3)
        if k == 0:
            for i in rng.integers(0, len(b), rng.integers(1, 8)):
                b[i] = rng.integers(0, 256)
        elif k == 1:
            b = b[: rng.integers(0, len(b))]
        else:
            i = rng.integers(0, len(b))
            b[i:i] = rng.bytes(int(rng.integers(1, 16)))
        f.write_bytes(bytes(b))
        try:
            a = load_automation(f)
        except UserError:
            continue
        for v in a.values_at(0.5).values():
            assert 0.0 <= v <= 1.0


@pytest.mark.parametrize("opt,name,data", [
    ("--preset", "bad.toml", b"\xff\xfe\x00\x00"),
    ("--preset", "nan.toml", b"[knobs]\nmix = nan\n"),
    ("--automation", "deep.json", b"[" * 50_000),
    ("--automation", "cut.mid", _GOOD_MID_HEAD + b"MTrk\x00\x00\x00\x10\x00\xb0"),
])
def test_process_with_hostile_preset_or_automation_is_one_line_exit_2(tmp_path, capsys, opt, name,
                                                                      data):
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(4800), 48000, subtype="PCM_16")
    f = tmp_path / name
    f.write_bytes(data)
    rc = main(["process", str(src), str(tmp_path / "out.wav"), opt, str(f), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqblur process: error:") and name in lines[0]
    assert not (tmp_path / "out.wav").exists()
