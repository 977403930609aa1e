"""Knob automation: JSON breakpoints (linear) and MIDI-file CCs (held), evaluated per block."""

import json

import mido
import pytest

from vqblur.engine.automation import DEFAULT_CC_MAP, load_automation, parse_breakpoints
from vqblur.common.errors import UserError


def test_json_breakpoints_interpolate_linearly_and_hold(tmp_path):
    f = tmp_path / "a.json"
    f.write_text(json.dumps([
        {"time": 0.0, "zone_size": 0.0},
        {"time": 1.0, "zone_size": 1.0, "mix": 0.5},
        {"time": 2.0, "mix": 1.0},
    ]))
    a = load_automation(f)
    assert a.knobs == ["mix", "zone_size"]
    assert a.values_at(0.5) == pytest.approx({"zone_size": 0.5, "mix": 0.5})
    assert a.values_at(1.5) == pytest.approx({"zone_size": 1.0, "mix": 0.75})
    assert a.values_at(9.0) == pytest.approx({"zone_size": 1.0, "mix": 1.0})


@pytest.mark.parametrize(
    "points,match",
    [
        ([{"zone_size": 0.2}], "breakpoint 0 must be an object with a 'time'"),
        ([{"time": 0, "volume": 0.2}], "unknown knob 'volume'"),
        ([{"time": 0, "mix": 2}], "'mix' = 2 is out of range"),
        ([{"time": -1, "mix": 0.2}], "'time' must be a number of seconds"),
        ([], "non-empty JSON list"),
    ],
)
def test_bad_breakpoints(points, match):
    with pytest.raises(UserError, match=match):
        parse_breakpoints(points, "auto.json")


def test_midi_cc_automation_uses_generic_map(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 120 bpm: 1 beat = 0.5 s
    tr.append(mido.Message("control_change", control=1, value=0, time=0))
    tr.append(mido.Message("control_change", control=74, value=127, time=0))
    tr.append(mido.Message("control_change", control=1, value=127, time=960))  # t = 1.0 s
    tr.append(mido.Message("control_change", control=80, value=100, time=480))  # t = 1.5 s
    tr.append(mido.Message("control_change", control=7, value=10, time=0))  # unmapped: ignored
    f = tmp_path / "knobs.mid"
    mid.save(f)
    a = load_automation(f)
    assert DEFAULT_CC_MAP[1] == "zone_size" and DEFAULT_CC_MAP[74] == "temperature"
    assert a.values_at(0.9)["zone_size"] == 0.0  # held, not ramped
    assert a.values_at(1.0)["zone_size"] == 1.0
    assert a.values_at(0.0)["temperature"] == 1.0
    assert a.values_at(1.6)["bypass"] == 1.0


def test_bad_automation_files(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("[{")
    with pytest.raises(UserError, match=r"x\.json: not valid JSON"):
        load_automation(f)
    g = tmp_path / "x.mid"
    g.write_bytes(b"not midi")
    with pytest.raises(UserError, match=r"x\.mid: not a readable MIDI file"):
        load_automation(g)
    with pytest.raises(UserError, match="not found"):
        load_automation(tmp_path / "missing.json")
