"""OSC knobs without audio: every knob's address over real UDP loopback, presets, bad input
counted and ignored (never raised), and OSC + MIDI merged with the last message winning.

Knob names are never spelled out here: the tests iterate over ``vqblur.engine.core.KNOBS``."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from vqblur.engine.stage.control import KnobMux
from vqblur.engine.core import KNOBS, Params
from vqblur.engine.stage.osc import PRESET_ADDRESS, OscControl, address_table, knob_address

PRESETS = {"calm": {k: 0.25 for k in KNOBS}, "wild": {k: 0.75 for k in KNOBS}}


def _wait(cond, timeout=3.0):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def check_invariants(c: dict) -> dict:
    assert c["received"] == c["applied"] + c["ignored"], c
    assert c["ignored"] == (c["malformed"] + c["out_of_range"] + c["unknown"] + c["bad_preset"]
                            + c["errors"]), c
    return c


def msg(address: str, *args, types: str | None = None) -> bytes:
    b = OscMessageBuilder(address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


@pytest.fixture
def osc():
    ctl = OscControl("127.0.0.1", 0, presets=PRESETS).start()
    yield ctl
    ctl.close()


def test_address_table_is_derived_from_the_knobs():
    addrs = [a for a, _, _ in address_table()]
    assert addrs == [f"/vqblur/{k}" for k in KNOBS] + ["/vqblur/preset", "/vqblur/palette"]


def test_every_knob_over_udp_loopback(osc):
    client = SimpleUDPClient("127.0.0.1", osc.port)
    for i, k in enumerate(KNOBS):
        client.send_message(knob_address(k), 0.1 + 0.1 * i)
    assert _wait(lambda: osc.applied == len(KNOBS)), osc.counters()
    assert osc.values() == {k: pytest.approx(0.1 + 0.1 * i) for i, k in enumerate(KNOBS)}
    # ints and OSC true/false are numbers too; 0 and 1 are in range
    client.send_message(knob_address(KNOBS[0]), 1)
    client.send_message(knob_address(KNOBS[1]), False)
    assert _wait(lambda: osc.applied == len(KNOBS) + 2)
    assert osc.values()[KNOBS[0]] == 1.0 and osc.values()[KNOBS[1]] == 0.0
    check_invariants(osc.counters())
    assert osc.ignored == 0


def test_preset_sets_all_its_knobs_in_one_snapshot(osc):
    client = SimpleUDPClient("127.0.0.1", osc.port)
    client.send_message(PRESET_ADDRESS, "wild")
    assert _wait(lambda: osc.applied == 1)
    snap = osc.snapshot
    assert set(snap.seq) == {snap.serial} and all(v == 0.75 for v in snap.value)
    client.send_message(PRESET_ADDRESS, "../../etc/passwd")  # never a path from the network
    client.send_message(PRESET_ADDRESS, "no-such-preset")
    client.send_message(PRESET_ADDRESS, 3.0)
    assert _wait(lambda: osc.received == 4)
    assert osc.bad_preset == 2 and osc.malformed == 1
    assert osc.values() == {k: 0.75 for k in KNOBS}


def test_shipped_presets_are_loaded_by_default():
    from vqblur.engine.presets import list_presets, load_preset

    ctl = OscControl("127.0.0.1", 0)
    try:
        name = list_presets()[0]
        ctl.handle_datagram(msg(PRESET_ADDRESS, name))
        assert ctl.values() == load_preset(name).params.as_dict()
    finally:
        ctl.close()


def test_bad_input_is_counted_and_ignored(osc):
    k0 = knob_address(KNOBS[0])
    cases = [
        (msg(k0, 1.5), "out_of_range"),
        (msg(k0, -0.01), "out_of_range"),
        (msg(k0, float("nan")), "out_of_range"),
        (msg(k0, float("inf")), "out_of_range"),
        (msg(k0, 7), "out_of_range"),
        (msg(k0, 2 ** 40, types="h"), "out_of_range"),
        (msg(k0), "malformed"),                      # no argument
        (msg(k0, 0.5, 0.5), "malformed"),            # two arguments
        (msg(k0, "0.5"), "malformed"),               # a string
        (msg(k0, b"\x01\x02"), "malformed"),         # a blob
        (msg("/vqblur/zone"), "unknown"),
        (msg("/vqblur/ZONE_SIZE", 0.5), "unknown"),  # addresses are case-sensitive
        (msg("/vqblur/*", 0.5), "unknown"),          # patterns are not expanded
        (msg("/other/app", 1.0), "unknown"),
        (b"", "malformed"),
        (b"hello world", "malformed"),
        (b"/vqblur/mix\x00", "malformed"),           # address without a type tag / padding
        (k0.encode() + b"\x00\x00\x00,f\x00\x00\x3f", "malformed"),  # truncated float
        (k0.encode() + b"\x00\x00\x00,f\x00\x00", "malformed"),  # the float missing
        (k0.encode() + b"\x00\x00\x00,i\x00\x00\x00\x00\x00", "malformed"),  # int cut short
        (b"#bundle\x00" + b"\x00" * 4, "malformed"),  # truncated bundle
        (bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)), "malformed"),
    ]
    for data, kind in cases:
        before = osc.counters()
        osc.handle_datagram(data)
        after = osc.counters()
        check_invariants(after)
        changed = {k for k in after if after[k] != before[k]} - {"received", "ignored"}
        assert changed == {kind}, (data[:40], changed)
    assert osc.values() == {} and osc.snapshot.serial == 0
    assert osc.errors == 0


def test_random_datagrams_over_udp_never_stop_the_server(osc):
    """10,000 random datagrams (random bytes, cut and mutated valid messages), then a valid one."""
    rng = np.random.default_rng(7)
    good = msg(knob_address(KNOBS[0]), 0.5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        n = 10_000
        for i in range(n):
            if i % 3 == 0:
                d = bytes(rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8))
            elif i % 3 == 1:
                d = good[: int(rng.integers(0, len(good)))]
            else:
                b = bytearray(good)
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
                d = bytes(b)
            s.sendto(d, ("127.0.0.1", osc.port))
            if i % 200 == 0:
                time.sleep(0.002)  # a burst at a time: loopback UDP drops what overflows the socket
        s.sendto(msg(knob_address(KNOBS[-1]), 0.125), ("127.0.0.1", osc.port))
        assert _wait(lambda: osc.values().get(KNOBS[-1]) == 0.125, 10.0), osc.counters()
    finally:
        s.close()
    c = osc.counters()
    check_invariants(c)
    assert c["errors"] == 0
    assert c["received"] + c["dropped_os"] >= n + 1 - 10, c  # every datagram counted (or the OS's drop)
    assert all(0.0 <= v <= 1.0 for v in osc.values().values())


def test_bundles_apply_their_messages_in_order(osc):
    bb = OscBundleBuilder(IMMEDIATELY)
    for v in (0.1, 0.2, 0.3):
        m = OscMessageBuilder(knob_address(KNOBS[0]))
        m.add_arg(v)
        bb.add_content(m.build())
    m = OscMessageBuilder("/nope")
    bb.add_content(m.build())
    osc.handle_datagram(bb.build().dgram)
    assert osc.values()[KNOBS[0]] == pytest.approx(0.3)
    assert osc.applied == 3 and osc.unknown == 1


def test_port_in_use_and_bad_host_are_user_errors(osc):
    from vqblur.common.errors import UserError

    with pytest.raises(UserError, match="cannot listen"):
        OscControl("127.0.0.1", osc.port)
    with pytest.raises(UserError, match="cannot resolve"):
        OscControl("no-such-host.invalid", 0)


# ------------------------------------------------------------------ OSC + MIDI together
def _midi_reader():
    from vqblur.engine.stage.midi import KnobReader, MidiInput, load_controller_map

    m = MidiInput(api="auto", client_name="vqosc-test")  # no port opened: we feed its parser
    cmap = load_controller_map("generic")
    return m, cmap, KnobReader(m, cmap, defaults=Params().as_dict())


def test_last_message_wins_between_midi_and_osc():
    m, cmap, reader = _midi_reader()
    knob = next(k for k, b in cmap.bindings.items() if not b.toggle)
    b = cmap.bindings[knob]
    ch = 0 if b.channel is None else b.channel
    osc = OscControl("127.0.0.1", 0, presets=PRESETS)
    try:
        mux = KnobMux(Params().as_dict(), midi_reader=reader, osc=osc)
        assert mux.read() == Params().as_dict()
        m._callback(([0xB0 | ch, b.cc, 127], 0.0))  # MIDI moves the knob ...
        assert mux.read()[knob] == 1.0
        osc.handle_datagram(msg(knob_address(knob), 0.25))  # ... then OSC: OSC holds it
        assert mux.read()[knob] == 0.25
        assert mux.read()[knob] == 0.25  # and keeps it while MIDI is silent
        m._callback(([0xB0 | ch, b.cc, 127], 0.0))  # MIDI again, even the same value: MIDI
        assert mux.read()[knob] == 1.0
        osc.handle_datagram(msg(PRESET_ADDRESS, "calm"))  # a preset: every knob
        assert mux.read() == {k: 0.25 for k in KNOBS}
        m._callback(([0xB0 | ch, b.cc, 0], 0.0))
        v = mux.read()
        assert v[knob] == 0.0 and all(v[k] == 0.25 for k in KNOBS if k != knob)
        osc.handle_datagram(msg(knob_address(knob), 5.0))  # out of range: ignored
        assert mux.read()[knob] == 0.0
    finally:
        osc.close()


def test_mux_without_sources_is_the_preset():
    p = Params().as_dict()
    assert KnobMux(p).read() == p


def test_datagrams_the_os_dropped_are_counted():
    """More than the socket buffer holds, sent before the thread reads: the kernel drops the
    rest and says how many (SO_RXQ_OVFL, Linux) with the next datagram it delivers."""
    ctl = OscControl("127.0.0.1", 0, presets=PRESETS)
    if not ctl._ancillary:
        ctl.close()
        pytest.skip("no SO_RXQ_OVFL on this system")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        n = 50_000
        data = msg(knob_address(KNOBS[0]), 0.5)
        for _ in range(n):
            s.sendto(data, ("127.0.0.1", ctl.port))
        ctl.start()
        assert _wait(lambda: ctl.received > 0)
        time.sleep(0.2)
        s.sendto(msg(knob_address(KNOBS[0]), 0.75), ("127.0.0.1", ctl.port))
        assert _wait(lambda: ctl.values().get(KNOBS[0]) == 0.75)
    finally:
        s.close()
        ctl.close()
    c = ctl.counters()
    assert c["dropped_os"] > 0, c
    assert c["received"] + c["dropped_os"] == n + 1, c


def test_cli_lists_the_osc_addresses(capsys):
    from vqblur.cli import main

    assert main(["live", "--list-osc"]) == 0
    out = capsys.readouterr().out
    for k in KNOBS:
        assert f"/vqblur/{k} " in out
    assert "/vqblur/preset" in out
