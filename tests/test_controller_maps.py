"""Controller maps (presets/controllers/*.toml): the shipped maps, the loader's errors, the
CC -> knob snapshot, and the MIDI callback's counting (fed raw messages directly)."""

from __future__ import annotations

import pytest

from vqblur.engine.stage.midi import (KNOBS, Binding, ControllerMap, KnobReader, MidiInput,
                                list_controller_maps, load_controller_map,
                                save_controller_map)
from vqblur.common.errors import PresetError

# CC numbers from the manufacturers' documentation (see the comment at the top of each file)
EXPECTED = {
    "generic": {"zone_size": 1, "temperature": 74, "centre": 71, "mix": 91, "bypass": 80,
                "detail": 75, "scale": 76, "smear": 77},
    # faders CC 0-7, knobs CC 16-23, M buttons CC 48-55 (channel 1)
    "korg_nanokontrol2": {"zone_size": 0, "temperature": 16, "centre": 17, "mix": 1, "bypass": 48,
                          "detail": 18, "scale": 32, "smear": 2},
    # knobs K1-K8 = CC 70-77
    "akai_mpk_mini": {"zone_size": 70, "temperature": 71, "centre": 72, "mix": 73, "bypass": 77,
                      "detail": 74, "scale": 75, "smear": 76},
    # factory template: send A 13-20, send B 29-36, pan 49-56, faders 77-84
    "novation_launch_control_xl": {"zone_size": 77, "temperature": 13, "centre": 29, "mix": 78,
                                   "bypass": 56, "detail": 49, "scale": 55, "smear": 79},
}


def test_shipped_maps_load_with_documented_ccs():
    assert set(EXPECTED) <= set(list_controller_maps())
    for name, ccs in EXPECTED.items():
        cm = load_controller_map(name)
        assert set(cm.bindings) == set(KNOBS), name
        assert {k: b.cc for k, b in cm.bindings.items()} == ccs, name
        assert cm.source, f"{name}: no documentation source recorded"
    nk = load_controller_map("korg_nanokontrol2")
    assert all(b.channel == 0 for b in nk.bindings.values())
    assert nk.bindings["bypass"].toggle
    lcxl = load_controller_map("novation_launch_control_xl")
    assert all(b.channel is None for b in lcxl.bindings.values())  # omni: any template channel
    fader_ccs = range(77, 85)
    assert all(lcxl.bindings[k].cc in fader_ccs for k in ("zone_size", "mix", "smear"))


def test_load_by_path_and_roundtrip(tmp_path):
    cm = ControllerMap("mine", {"zone_size": Binding(10, 3), "bypass": Binding(11, None, True)})
    p = save_controller_map(cm, tmp_path / "mine.toml")
    back = load_controller_map(str(p))
    assert back.bindings == cm.bindings and back.name == "mine"


@pytest.mark.parametrize("text, key", [
    ('[knobs]\nzone_size = 128\n', "knobs.zone_size"),
    ('[knobs]\nzone_size = "one"\n', "knobs.zone_size"),
    ('[knobs]\nwarp = 3\n', "knobs.warp"),
    ('channel = 17\n[knobs]\nmix = 3\n', "channel"),
    ('[knobs]\nmix = { cc = 3, channel = 0 }\n', "knobs.mix.channel"),
    ('[knobs]\nmix = { channel = 2 }\n', "knobs.mix"),
    ('[knobs]\nmix = { cc = 3, toggle = "yes" }\n', "knobs.mix.toggle"),
    ('[knobs]\nmix = { cc = 3, curve = 2 }\n', "knobs.mix.curve"),
    ('[knobs]\nmix = 3\ncentre = 3\n', "knobs.centre"),
    ('name = "x"\n', "knobs"),
    ('colour = "red"\n[knobs]\nmix = 3\n', "colour"),
])
def test_bad_map_names_file_and_key(tmp_path, text, key):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(PresetError) as e:
        load_controller_map(str(p))
    msg = str(e.value)
    assert str(p) in msg and f"'{key}'" in msg, msg


def test_malformed_toml_and_unknown_name(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("[knobs\nmix = 3\n")
    with pytest.raises(PresetError, match="broken.toml.*not valid TOML"):
        load_controller_map(str(p))
    with pytest.raises(PresetError, match="korg_nanokontrol2"):  # lists the shipped maps
        load_controller_map("no_such_controller")
    with pytest.raises(PresetError, match="not found"):
        load_controller_map(str(tmp_path / "missing.toml"))


def _feed(m: MidiInput, *msgs):
    for msg in msgs:
        m._callback((list(msg), 0.0))


def test_snapshot_maps_cc_to_knobs_per_channel_and_omni():
    m = MidiInput()  # not opened: the callback is fed directly
    nk = KnobReader(m, load_controller_map("korg_nanokontrol2"), defaults={"zone_size": 0.2})
    assert nk.read()["zone_size"] == 0.2  # until the fader moves
    _feed(m, [0xB1, 0, 127])  # channel 2: nanoKONTROL2 map listens on channel 1 only
    assert nk.read()["zone_size"] == 0.2
    _feed(m, [0xB0, 0, 127], [0xB0, 16, 0])
    v = nk.read()
    assert v["zone_size"] == 1.0 and v["temperature"] == 0.0

    m2 = MidiInput()
    gen = KnobReader(m2, load_controller_map("generic"))
    _feed(m2, [0xB0, 1, 10], [0xB7, 1, 100])  # omni: the latest on any channel wins
    assert gen.read()["zone_size"] == pytest.approx(100 / 127)
    _feed(m2, [0xB0, 1, 20])
    assert gen.read()["zone_size"] == pytest.approx(20 / 127)
    # bypass toggles on each press of a momentary button
    _feed(m2, [0xB0, 80, 127], [0xB0, 80, 0])
    assert gen.read()["bypass"] == 1.0
    _feed(m2, [0xB0, 80, 127], [0xB0, 80, 0])
    assert gen.read()["bypass"] == 0.0


def test_callback_counts_and_never_raises():
    m = MidiInput()
    KnobReader(m, load_controller_map("generic"))
    _feed(m, [], [0x40], [0xB0, 1], [0xB0, 1, 2, 3], [0xB0, 300, 1], [0xB0, 1, -1],
          [0xF0, 1, 2, 0xF7], [0x90, 1, 2], [0xFA], [0xB0, 2, 5], [0xB0, 1, 64])
    m._callback(None)          # garbage events must not raise either
    m._callback(("bad", 0))
    c = m.counters()
    assert c["received"] == 13 and c["cc"] == 2
    assert c["sysex"] == 1 and c["other"] == 2 and c["unmapped"] == 1
    assert c["malformed"] == 6 and c["callback_errors"] == 2
    assert c["ignored"] == 6 + 1 + 2 + 1 + 2  # malformed, sysex, other, unmapped, errors
