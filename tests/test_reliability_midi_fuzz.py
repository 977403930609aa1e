"""MIDI input under abuse: random bytes, SysEx, running status, out-of-range values, floods.

The rtmidi callback (``vqblur.engine.stage.midi.MidiInput._callback``) must never raise, must apply
well-formed CCs and count everything else as ignored; the audio path reading the CC snapshot
once per block must keep its schedule while a flood of 10,000 messages/s arrives.

Three levels:
* the callback fed directly (exactly what rtmidi calls), with hostile events of every kind;
* the real path: a python-rtmidi ``MidiOut`` on a JACK dummy server (``tests/jack_server.py``)
  floods our virtual JACK MIDI port for 1 s while an Engine processes 128-sample blocks on a
  real-time schedule, reading the knobs through ``KnobReader`` once per block;
* the live path: a LiveRunner (PortAudio on JACK, worker thread, Engine) whose knobs come from
  a JACK MIDI port flooded by another process. It must never break, keep the wet signal, and
  receive the messages intact (no Python runs in the JACK cycle: midi.py polls rtmidi's queue).

Counter invariants checked after every run (``m.counters()``):
``received == (cc - unmapped) + ignored`` (every message is either applied or ignored) and
``ignored == sysex + malformed + unmapped + other + callback_errors``.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tests.ab_phases import excess_allowed, run_flood_ab
from tests.toy_bundle import make_toy_bundle
from vqblur.engine.core import Engine, Params
from vqblur.engine.stage.midi import KnobReader, MidiInput, load_controller_map
from vqblur.engine.stage.realtime import hold_cpu_wakeup


def _midi():
    return MidiInput(api="jack", client_name="vqfuzz")  # no port is opened


def check_invariants(m: MidiInput) -> dict:
    c = m.counters()
    assert c["received"] == c["cc"] - c["unmapped"] + c["ignored"], c
    assert c["ignored"] == (c["sysex"] + c["malformed"] + c["unmapped"] + c["other"]
                            + c["callback_errors"]), c
    assert m.cc_value.min() >= -1 and m.cc_value.max() <= 127
    return c


def _feed(m, messages):
    for msg in messages:
        m._callback((msg, 0.0), None)


# --------------------------------------------------------------------------- direct callback
def test_each_kind_of_message_is_applied_or_counted():
    m = _midi()
    reader = KnobReader(m, load_controller_map("generic"), {"zone_size": 0.25, "temperature": 0.5})
    cases = [
        ([0xB0, 1, 127], "cc"),                      # CC1 -> zone_size, channel 1
        ([0xBF, 74, 0], "cc"),                       # CC74 -> temperature, channel 16
        ([0xB3, 20, 5], "unmapped"),                 # a CC no knob uses
        ([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], "sysex"),
        ([0xF0] + [0x11] * 500 + [0xF7], "sysex"),   # long SysEx dump
        ([0xF0, 0x43, 0x12], "sysex"),               # unterminated SysEx
        ([0x90, 60, 100], "other"),                  # note on
        ([0xE0, 0, 64], "other"),                    # pitch bend
        ([0xC0, 5], "other"),                        # program change
        ([0xF8], "other"), ([0xFE], "other"), ([0xFF], "other"),  # clock, sensing, reset
        ([0xF7], "other"),                           # stray end-of-SysEx
        ([1, 64], "malformed"),                      # running status: data bytes, no status
        ([64], "malformed"),
        ([], "malformed"),
        ([0xB0, 1], "malformed"),                    # CC cut short
        ([0xB0, 1, 64, 0], "malformed"),             # CC too long
        ([0xB0, 1, 200], "malformed"),               # data byte >= 128
        ([0xB0, 128, 5], "malformed"),
        ([0xB0, -1, 5], "malformed"),
        ([0xB0, 1, 10_000_000], "malformed"),
        ([256, 1, 1], "malformed"),                  # not a byte
        ([-5, 1, 1], "malformed"),
    ]
    for msg, kind in cases:
        before = m.counters()
        m._callback((msg, 0.0), None)
        after = check_invariants(m)
        changed = {k for k in after if after[k] != before[k]} - {"received", "ignored"}
        want = {"cc"} if kind == "cc" else ({"cc", "unmapped"} if kind == "unmapped" else {kind})
        assert changed == want, (msg, changed)
    assert m.callback_errors == 0
    v = reader.read()
    assert v["zone_size"] == 1.0 and v["temperature"] == 0.0
    # a malformed CC1 (value 200) did not change zone_size
    assert m.cc_value[0, 1] == 127


def test_garbage_events_never_raise():
    """Not even what rtmidi never sends: None, strings, floats, nested junk."""
    m = _midi()
    junk = [None, (), ([],), ("abc", 0), ([None, 1, 2], 0), ([0xB0, "x", 3], 0),
            ([0xB0, 1.5, 3.2], 0), ([float("nan")], 0), ([0xB0, 1, float("inf")], 0),
            (b"\xb0\x01\x7f", 0), ([[0xB0], 1, 2], 0), (object(), 0), 12, "event"]
    for ev in junk:
        m._callback(ev, None)
        m._callback(ev)
    c = check_invariants(m)
    assert c["received"] == 2 * len(junk)


def test_random_byte_streams_and_running_status_fragments():
    """Random bytes cut into random messages (as a broken driver might deliver them)."""
    m = _midi()
    rng = np.random.default_rng(123)
    stream = rng.integers(0, 256, 200_000)
    i = 0
    n_msgs = 0
    while i < len(stream):
        k = int(rng.integers(0, 9))
        m._callback(([int(b) for b in stream[i : i + k]], 0.0), None)
        i += k
        n_msgs += 1
    # a real running-status stream: one status byte, then bare data pairs
    _feed(m, [[0xB0, 1, 10]] + [[1, v] for v in range(100)] + [[v] for v in range(100)])
    c = check_invariants(m)
    assert c["received"] == n_msgs + 201 and c["callback_errors"] == 0
    assert m.cc_value[0, 1] == 10  # the bare data bytes did not move CC1


def test_ten_thousand_messages_through_the_callback_are_cheap():
    m = _midi()
    rng = np.random.default_rng(5)
    msgs = [[0xB0 | int(rng.integers(16)), int(rng.integers(128)), int(rng.integers(128))]
            for _ in range(10_000)]
    t0 = time.perf_counter()
    _feed(m, msgs)
    dt = time.perf_counter() - t0
    c = check_invariants(m)
    assert c["cc"] == 10_000
    assert dt < 0.5, f"{dt * 1e6 / 1e4:.1f} us per message"  # 10k/s must cost well under 1 s/s


# --------------------------------------------------------------------------- real JACK MIDI
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy")


def _flood_messages(rng, n):
    """Mostly CCs (mapped and not), with SysEx, notes, real-time and running-status bytes."""
    out = []
    for i in range(n):
        k = i % 10
        if k < 5:
            out.append([0xB0 | int(rng.integers(16)), int(rng.choice([1, 74, 71, 91, 80, 7, 10])),
                        int(rng.integers(128))])
        elif k == 5:
            out.append([0xF0, 0x7D] + [int(b) for b in rng.integers(0, 128, int(rng.integers(1, 40)))]
                       + [0xF7])
        elif k == 6:
            out.append([0x90, int(rng.integers(128)), int(rng.integers(128))])
        elif k == 7:
            out.append([0xF8])
        elif k == 8:
            out.append([int(rng.integers(0, 128)), int(rng.integers(0, 128))])  # running status
        else:
            out.append([0xB0, int(rng.integers(128))])  # cut short
    return out


def test_flood_over_jack_midi_while_the_engine_keeps_its_schedule(jack_server, toy):
    import rtmidi

    m = MidiInput(api="jack", client_name=f"vqfuzz-{time.monotonic_ns() % 100000}")
    port = m.open_virtual("fuzz in")
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "vqfuzz-src")
    wake_fd = -1
    try:
        ports = out.get_ports()
        idx = [i for i, p in enumerate(ports) if p.endswith(port)]
        assert idx, ports
        out.open_port(idx[0])
        cmap = load_controller_map("generic")
        reader = KnobReader(m, cmap, Params().as_dict())
        eng = Engine(toy, Params(zone_size=0.3))
        time.sleep(0.2)
        # as the live stage does while it streams: idle CPUs must not sleep between blocks
        # (on a VM a halted vCPU wakes milliseconds late); where not permitted it runs without
        wake_fd, _ = hold_cpu_wakeup(0)

        rng = np.random.default_rng(2)
        msgs = _flood_messages(rng, 10_000)
        B, sr = 128, eng.sample_rate
        period = B / sr
        x = 0.3 * np.sin(2 * np.pi * 440 * np.arange(B) / sr)
        sent = 0
        late = 0
        blocks = 0
        busy = 0.0
        t0 = time.perf_counter()
        # 1 s: 100 bursts of 100 messages (10,000 messages/s), and the audio loop on schedule
        while sent < len(msgs) or time.perf_counter() - t0 < 1.0:
            now = time.perf_counter() - t0
            due = min(len(msgs), int(now / 0.01 + 1) * 100)
            while sent < due:
                out.send_message(msgs[sent])
                sent += 1
            deadline = (blocks + 1) * period
            if now >= blocks * period:  # this block's input is "in": process it
                tb = time.perf_counter()
                eng.set_params(**reader.read())
                y = eng.process(x)
                busy += time.perf_counter() - tb
                assert np.isfinite(y).all() and np.max(np.abs(y)) <= 1.0
                blocks += 1
                if time.perf_counter() - t0 > deadline + period:
                    late += 1
            else:
                time.sleep(0.0005)
        wall = time.perf_counter() - t0
        time.sleep(0.3)  # let the last messages arrive
        c = check_invariants(m)
    finally:
        if wake_fd >= 0:
            os.close(wake_fd)
        out.close_port()
        out.delete()
        m.close()

    print(f"flood: sent {sent} in {wall:.2f} s, counters {c}; {blocks} blocks, {late} late, "
          f"engine load {busy / max(blocks * period, 1e-9):.2f}")
    assert sent == 10_000
    assert c["callback_errors"] == 0
    assert c["received"] >= 0.9 * sent, c  # JACK may drop a little under load, never crash
    assert c["sysex"] > 0 and c["other"] > 0 and c["malformed"] > 0 and c["unmapped"] > 0
    # the audio path kept its schedule: almost every block done within one block of its deadline
    assert blocks >= 0.9 * wall / period, (blocks, wall)
    assert late <= 0.05 * blocks, f"{late} of {blocks} blocks late"
    assert busy / (blocks * period) < 0.9, f"engine load {busy / (blocks * period):.2f}"
    v = reader.read()
    assert all(0.0 <= v[k] <= 1.0 for k in v)


def test_huge_sysex_over_jack_then_a_cc_still_arrives(jack_server):
    """SysEx dumps of 100 B .. 200 kB: counted (or dropped by JACK when larger than its MIDI
    buffer), never a crash; the CC sent after each one is applied."""
    import rtmidi

    m = MidiInput(api="jack", client_name=f"vqsysex-{time.monotonic_ns() % 100000}")
    port = m.open_virtual("sysex in")
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "vqsysex-src")
    try:
        idx = [i for i, p in enumerate(out.get_ports()) if p.endswith(port)]
        assert idx
        out.open_port(idx[0])
        time.sleep(0.2)
        for k, size in enumerate((100, 1000, 10_000, 70_000, 200_000)):
            out.send_message([0xF0] + [0x11] * size + [0xF7])
            out.send_message([0xB0, 1, k + 1])
            deadline = time.monotonic() + 2.0
            while m.cc_value[0, 1] != k + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert m.cc_value[0, 1] == k + 1, (size, m.counters())
        c = check_invariants(m)
        assert c["callback_errors"] == 0 and 1 <= c["sysex"] <= 5
    finally:
        out.close_port()
        out.delete()
        m.close()


_SENDER = r"""
import sys, time
import numpy as np
import rtmidi
sys.path.insert(0, sys.argv[3])
from tests.ab_phases import send_on_schedule, wait_for_start
from tests.test_reliability_midi_fuzz import _flood_messages
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "vqflood-sender")
idx = [i for i, p in enumerate(out.get_ports()) if p == sys.argv[1]]
if not idx:
    sys.exit(f"port {sys.argv[1]!r} not found in {out.get_ports()}")
out.open_port(idx[0])
time.sleep(0.2)
msgs = _flood_messages(np.random.default_rng(4), int(sys.argv[2]))
send_on_schedule(out.send_message, msgs, wait_for_start())
time.sleep(0.2)
out.close_port()
out.delete()
"""


@pytest.fixture
def live_flood(jack_server, toy):
    """LiveRunner (PortAudio on JACK, worker thread, the toy Engine) whose knobs come from a JACK
    MIDI port; another process (a controller gone mad) sends it 10,000 hostile messages at
    10,000/s, in ten 0.1 s floods between quiet phases (tests/ab_phases.py). Returns what
    happened. One flood per test (not per module), so the suite's rerun of a JACK test after a
    failure (tests/conftest.py) measures afresh instead of re-reading the same flood."""
    import os
    import sys

    from vqblur.engine.stage.runner import LiveRunner

    class _Recording(MidiInput):
        """Keeps a copy of every message handed to the parser (to check nothing was altered)."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.log = []

        def _callback(self, event, data=None):
            try:
                self.log.append(list(event[0]))
            except Exception:
                self.log.append(None)
            super()._callback(event, data)

    tag = f"{os.getpid()}-{time.monotonic_ns() % 100000}"
    eng = Engine(toy, Params(zone_size=0.3))
    m = _Recording(api="jack", client_name=f"vqflood-{tag}")
    port = m.open_virtual("knobs")
    reader = KnobReader(m, load_controller_map("generic"), eng.params.as_dict())
    runner = LiveRunner(eng, samplerate=48000, blocksize=0, channels=1, input_device="system",
                        output_device="system", knobs=reader.read,
                        jack_client_name=f"vqflood-audio-{tag}", worker_priority=3)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runner.start()
    try:
        time.sleep(0.5)
        log0 = jack_server.log_size()
        ab = run_flood_ab(runner, [sys.executable, "-c", _SENDER, f"vqflood-{tag}:{port}", "10000", root])
        time.sleep(0.3)  # the last messages
        xr = jack_server.xrun_report(log0, dut=runner.jack_client_name, upstream="system")
        res = dict(ab=ab, machine_xruns=xr["machine"], active=runner.active, worker_error=runner.worker_error,
                   counters=check_invariants(m), params=eng.params.as_dict(), log=m.log,
                   sent=_flood_messages(np.random.default_rng(4), 10_000))
    finally:
        runner.stop()
        m.close()
    print(f"live flood: {ab.summary()}; machine xruns {res['machine_xruns']}, counters {res['counters']}")
    return res


def test_flood_into_the_live_runner_never_breaks_it(live_flood):
    r = live_flood
    ab = r["ab"]
    assert ab.sender_rc == 0, ab.sender_err
    assert r["active"] and r["worker_error"] is None
    c = r["counters"]
    assert c["received"] >= 9000 and c["callback_errors"] == 0, c
    assert ab.callbacks >= 0.8 * 375 * ab.wall, ab.summary()  # the audio callbacks kept their rate
    assert all(0.0 <= v <= 1.0 for v in r["params"].values())


def test_flood_into_the_live_runner_keeps_the_wet_signal(live_flood):
    """Under-runs (the callback falling back to dry): no more while flooding than in the quiet
    phases between the floods, beyond what the machine's own stalls explain (tests/ab_phases.py;
    the OSC flood test measures the same way)."""
    ab = live_flood["ab"]
    assert ab.excess <= excess_allowed(ab), ab.summary()


def test_flood_into_the_live_runner_delivers_every_message_intact(live_flood):
    """Lose nothing: with the audio running, the parser sees exactly the messages sent, in order."""
    got, sent = live_flood["log"], live_flood["sent"]
    if got != sent:
        i = next((i for i, (a, b) in enumerate(zip(got, sent)) if a != b), min(len(got), len(sent)))
        raise AssertionError(f"{len(got)} messages parsed, {len(sent)} sent; first difference at "
                             f"{i}: sent {sent[i:i + 3]}, parsed {got[i:i + 3]} (JACK logged "
                             f"{live_flood['machine_xruns']} machine xruns meanwhile)")
