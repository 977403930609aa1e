"""OSC palette messages without audio: ``/vqblur/palette DIR`` reaches ``on_palette`` (the live
command hands it to the audio process), a preset that names a palette switches it too, and a
bad message is counted and ignored like any other."""

from __future__ import annotations

import pytest

from tests.test_osc_control import PRESETS, check_invariants, msg
from vqblur.engine.core import KNOBS
from vqblur.engine.stage.osc import PALETTE_ADDRESS, PRESET_ADDRESS, OscControl


@pytest.fixture
def osc():
    ctl = OscControl("127.0.0.1", 0, presets=PRESETS, palettes={"wild": "/palettes/wild"})
    ctl.asked = []
    ctl.on_palette = ctl.asked.append
    yield ctl
    ctl.close()


def test_palette_message_reaches_on_palette(osc):
    osc.handle_datagram(msg(PALETTE_ADDRESS, "/some/bundle"))
    osc.handle_datagram(msg(PALETTE_ADDRESS, ""))  # the model's own tables
    assert osc.asked == ["/some/bundle", ""]
    c = check_invariants(osc.counters())
    assert c["applied"] == 2 and c["ignored"] == 0 and c["palette_requests"] == 2
    assert osc.values() == {}  # no knob moved


def test_a_preset_that_names_a_palette_switches_it(osc):
    osc.handle_datagram(msg(PRESET_ADDRESS, "calm"))  # names none: the palette stays
    assert osc.asked == [] and osc.values() == {k: 0.25 for k in KNOBS}
    osc.handle_datagram(msg(PRESET_ADDRESS, "wild"))
    assert osc.asked == ["/palettes/wild"] and osc.values() == {k: 0.75 for k in KNOBS}
    osc.add_preset("mine", {KNOBS[0]: 0.5}, "/palettes/mine")
    osc.handle_datagram(msg(PRESET_ADDRESS, "mine"))
    assert osc.asked[-1] == "/palettes/mine" and osc.values()[KNOBS[0]] == 0.5
    check_invariants(osc.counters())


@pytest.mark.parametrize("args", [(), ("/a", "/b"), (1.0,), (b"\x01",), ("x" * 2000,)],
                         ids=["none", "two", "number", "blob", "too-long"])
def test_bad_palette_messages_are_malformed(osc, args):
    osc.handle_datagram(msg(PALETTE_ADDRESS, *args))
    c = check_invariants(osc.counters())
    assert c["malformed"] == 1 and c["applied"] == 0 and osc.asked == []


def test_without_a_handler_a_palette_message_is_harmless():
    ctl = OscControl("127.0.0.1", 0, presets=PRESETS)
    try:
        ctl.handle_datagram(msg(PALETTE_ADDRESS, "/x"))
        assert ctl.applied == 1 and ctl.palette_requests == 1
    finally:
        ctl.close()
