"""MIDI for real over JACK MIDI: a python-rtmidi MidiOut sends CCs to the engine's virtual
JACK MIDI port; the knob snapshot, and the running Engine's parameters, follow. Malformed,
SysEx, non-CC and flooding messages are ignored and counted, never crash. No mocks."""

from __future__ import annotations

import os
import threading
import time

import pytest


pytestmark = pytest.mark.jack


def _wait(cond, timeout=3.0):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class Sender:
    """An rtmidi JACK MIDI output connected to the port whose name contains ``target``."""

    def __init__(self, target: str):
        import rtmidi

        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"vqtest-send-{os.getpid()}")
        ports = self.out.get_ports()
        idx = [i for i, p in enumerate(ports) if target in p]
        assert idx, f"{target} not among JACK MIDI inputs {ports}"
        self.out.open_port(idx[0], "out")
        time.sleep(0.1)  # let the connection settle

    def send(self, *msgs):
        for m in msgs:
            self.out.send_message(list(m))

    def close(self):
        self.out.close_port()
        self.out.delete()


@pytest.fixture
def midi_port(jack_server):
    from vqblur.engine.stage.midi import MidiInput

    name = f"vqmidi-{os.getpid()}-{time.monotonic_ns() % 100000}"
    m = MidiInput(api="jack", client_name=name)
    m.open_virtual("knobs")
    assert m.api_name.lower().startswith("jack")
    s = Sender(f"{name}:knobs")
    yield m, s
    s.close()
    m.close()


def test_cc_changes_zone_size_and_temperature(midi_port):
    from vqblur.engine.stage.midi import KnobReader, load_controller_map

    m, s = midi_port
    reader = KnobReader(m, load_controller_map("generic"), defaults={"zone_size": 0.0, "temperature": 0.5})
    assert reader.read()["zone_size"] == 0.0  # preset value until the control moves
    s.send([0xB0, 1, 127], [0xB3, 74, 0])  # zone = CC1 (ch 1), temperature = CC74 (ch 4; omni)
    assert _wait(lambda: m.events >= 2)
    v = reader.read()
    assert v["zone_size"] == 1.0 and v["temperature"] == 0.0
    s.send([0xB0, 1, 64], [0xB0, 74, 32])
    assert _wait(lambda: m.events >= 4)
    v = reader.read()
    assert v["zone_size"] == pytest.approx(64 / 127) and v["temperature"] == pytest.approx(32 / 127)
    assert m.ignored == 0


def test_malformed_sysex_and_flood_are_ignored_and_counted(midi_port):
    from vqblur.engine.stage.midi import KnobReader, load_controller_map

    m, s = midi_port
    reader = KnobReader(m, load_controller_map("generic"))
    s.send(
        [0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7],  # SysEx (identity request)
        [0x90, 60, 100], [0x80, 60, 0],        # note on/off
        [0xE0, 0, 64],                         # pitch bend
        [0x40, 0x10],                          # running status / stray data bytes
        [0xB0, 5],                             # truncated CC
        [0xB0, 200, 5],                        # out-of-range controller number
        [0xB0, 1, 255],                        # out-of-range value
        [0xF8], [0xFE],                        # clock, active sensing
        [0xB0, 33, 10],                        # a CC no knob uses
    )
    assert _wait(lambda: m.received >= 11)
    c = m.counters()
    assert c == {"received": 11, "cc": 1, "ignored": 11, "sysex": 1, "malformed": 4,
                 "unmapped": 1, "other": 5, "callback_errors": 0}, c
    assert reader.read().get("zone_size") is None  # nothing valid reached the zone knob

    # flood: thousands of CCs as fast as the sender can; nothing crashes, all counted
    n = 5000
    for i in range(n):
        s.out.send_message([0xB0, 1, i % 128])
    s.send([0xF0, 0x01, 0xF7])
    time.sleep(0.5)
    s.send([0xB0, 1, 42])  # after the flood the port still works
    assert _wait(lambda: m.cc_value[0, 1] == 42)
    c = m.counters()
    assert c["callback_errors"] == 0
    assert c["received"] == c["cc"] + c["ignored"] - c["unmapped"]
    assert 100 < c["cc"] <= n + 2  # JACK MIDI buffers may drop part of a flood; what arrives counts
    assert reader.read()["zone_size"] == pytest.approx(42 / 127)


def test_learn_assigns_the_next_control_that_moves(midi_port):
    from vqblur.engine.stage.midi import KnobReader, learn

    m, s = midi_port
    s.send([0xB0, 99, 1])  # a control moved before learning starts: not taken
    assert _wait(lambda: m.events >= 1)
    prompts = []

    def prompt(text):
        prompts.append(text)
        if "move the control for 'zone_size'" in text:
            threading.Timer(0.3, s.send, args=([0xB2, 20, 10], [0xB2, 20, 11])).start()
        elif "move the control for 'temperature'" in text:
            # the zone knob's control still moving a little, then the new one
            threading.Timer(0.3, s.send, args=([0xB2, 20, 12], [0xB2, 21, 90])).start()

    cmap = learn(m, ["zone_size", "temperature"], prompt=prompt, timeout_s=5, settle_s=0.1)
    assert cmap.bindings["zone_size"].cc == 20 and cmap.bindings["zone_size"].channel == 2
    assert cmap.bindings["temperature"].cc == 21 and cmap.bindings["temperature"].channel == 2
    r = KnobReader(m, cmap)
    assert r.read()["temperature"] == pytest.approx(90 / 127)


def test_open_port_by_name_and_unknown_name(jack_server):
    from vqblur.engine.stage.midi import MidiInput
    from vqblur.common.errors import UserError

    import rtmidi

    src = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"vqtest-ctl-{os.getpid()}")
    src.open_virtual_port("nanoKONTROL2 fake")
    try:
        m = MidiInput(api="jack", client_name=f"vqopen-{os.getpid()}")
        name = m.open_port("nanokontrol2 FAKE")  # case-insensitive substring
        assert "nanoKONTROL2 fake" in name
        time.sleep(0.1)
        src.send_message([0xB0, 16, 77])
        assert _wait(lambda: m.cc_value[0, 16] == 77)
        m.close()
        with pytest.raises(UserError) as e:
            MidiInput(api="jack").open_port("no such controller")
        assert "nanoKONTROL2 fake" in str(e.value)  # lists what exists
        with pytest.raises(UserError):
            MidiInput(api="jack").open_port(999)
    finally:
        src.close_port()
        src.delete()


def test_midi_knobs_reach_the_running_engine(jack_server, tmp_path):
    """The live runner (real Engine, toy bundle) on JACK audio, knobs from JACK MIDI:
    the engine's parameter snapshot follows the CCs within a few blocks."""
    from tests.toy_bundle import make_toy_bundle
    from vqblur.engine.core import Params
    from vqblur.engine.stage.runner import LiveRunner
    from vqblur.engine.stage.midi import KnobReader, MidiInput, load_controller_map
    from vqblur.engine.resample import make_engine

    eng = make_engine(make_toy_bundle(tmp_path / "toy"), sample_rate=48000,
                      params=Params(zone_size=0.0, temperature=0.5))
    name = f"vqlm-{os.getpid()}"
    m = MidiInput(api="jack", client_name=name)
    m.open_virtual("knobs")
    cmap = load_controller_map("korg_nanokontrol2")
    reader = KnobReader(m, cmap, defaults=eng.params.as_dict())
    runner = LiveRunner(eng, samplerate=48000, blocksize=0, channels=1, input_device="system",
                        output_device="system", knobs=reader.read, jack_client_name=name + "-audio",
                        worker_priority=3)
    s = Sender(f"{name}:knobs")
    runner.start()
    try:
        time.sleep(0.3)
        s.send([0xB0, 0, 0], [0xB0, 16, 127])  # nanoKONTROL2: fader 1 = zone, knob 1 = temperature
        assert _wait(lambda: eng.params.temperature == 1.0 and eng.params.zone_size == 0.0)
        s.send([0xB0, 0, 38], [0xB0, 16, 13])
        assert _wait(lambda: eng.params.zone_size == pytest.approx(38 / 127)
                     and eng.params.temperature == pytest.approx(13 / 127))
        s.send([0xB5, 0, 127])  # channel 6: the nanoKONTROL2 map is channel 1 only
        time.sleep(0.2)
        assert eng.params.zone_size == pytest.approx(38 / 127)
        assert m.unmapped >= 1
        s.send([0xB0, 48, 127], [0xB0, 48, 0])  # M1 pressed and released: bypass toggles on
        assert _wait(lambda: eng.params.bypass == 1.0)
        assert runner.active and runner.callbacks > 0
        assert runner.knob_values["zone_size"] == pytest.approx(38 / 127)
    finally:
        runner.stop()
        s.close()
        m.close()
