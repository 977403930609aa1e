"""Live faults on the JACK dummy server: the MIDI controller disappears mid-stream.

The audio keeps running (callbacks on schedule, no worker error, no burst of under-runs),
the knobs keep their last values, a controller that comes back under the same name can be
opened again, and closing our MIDI input afterwards does not raise.

(The other live faults are the live engineer's tests: the server dying ->
tests/test_live_cli.py::test_server_dying_is_reported_and_exits; a worker deadline miss ->
tests/test_live_jack.py::test_slow_processor_falls_back_to_aligned_dry.)
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from tests.jack_server import _reclaim_jack_slot, _registry

pytestmark = pytest.mark.jack


def _wait(pred, timeout=3.0):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_midi_controller_disappears_audio_keeps_running(jack_server, tmp_path):
    import rtmidi

    from tests.toy_bundle import make_toy_bundle
    from vqblur.engine.core import Params
    from vqblur.engine.stage.runner import LiveRunner
    from vqblur.engine.stage.midi import KnobReader, MidiInput, load_controller_map
    from vqblur.engine.resample import make_engine

    tag = f"{os.getpid()}-{time.monotonic_ns() % 100000}"
    eng = make_engine(make_toy_bundle(tmp_path / "toy"), sample_rate=48000,
                      params=Params(zone_size=0.0, temperature=0.5))
    # the "hardware controller": another JACK MIDI client with an output port
    ctl = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"vqctl-{tag}")
    ctl.open_virtual_port("out")
    m = MidiInput(api="jack", client_name=f"vqdut-{tag}")
    m.open_port(f"vqctl-{tag}")
    reader = KnobReader(m, load_controller_map("generic"), defaults=eng.params.as_dict())
    runner = LiveRunner(eng, samplerate=48000, blocksize=0, channels=1, input_device="system",
                        output_device="system", knobs=reader.read,
                        jack_client_name=f"vqdut-audio-{tag}", worker_priority=3)
    runner.start()
    closed_ctl = False
    try:
        time.sleep(0.3)
        ctl.send_message([0xB0, 1, 64])    # CC1 -> zone_size
        ctl.send_message([0xB0, 74, 127])  # CC74 -> temperature
        assert _wait(lambda: eng.params.zone_size == pytest.approx(64 / 127)
                     and eng.params.temperature == 1.0), eng.params

        # the controller is unplugged: its client and port vanish
        cb0, under0 = runner.callbacks, runner.underruns
        log0 = jack_server.log_size()
        t0 = time.monotonic()
        ctl.close_port()
        ctl.delete()
        closed_ctl = True
        time.sleep(1.5)
        dt = time.monotonic() - t0
        cbs = runner.callbacks - cb0
        assert runner.active and runner.worker_error is None
        # 375 callbacks/s at 128 frames / 48 kHz: allow a loaded machine some slack
        assert cbs >= 0.7 * 375 * dt, (cbs, dt)
        # a quiet machine's odd under-run, plus (as the other JACK tests allow) a few around each
        # xrun the server logged for the machine itself (its own cycle late, or the whole graph)
        xr = jack_server.xrun_report(log0, dut=runner.jack_client_name, upstream="system")
        assert runner.underruns - under0 <= 5 + 3 * xr["machine"], (runner.stats(), xr)
        assert eng.params.zone_size == pytest.approx(64 / 127) and eng.params.temperature == 1.0
        assert m.callback_errors == 0

        # it is plugged in again (same name): a fresh input can open it and knobs move again
        ctl2 = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"vqctl-{tag}")
        ctl2.open_virtual_port("out")
        m2 = MidiInput(api="jack", client_name=f"vqdut2-{tag}")
        try:
            m2.open_port(f"vqctl-{tag}")
            reader2 = KnobReader(m2, load_controller_map("generic"), defaults=eng.params.as_dict())
            time.sleep(0.2)
            ctl2.send_message([0xB0, 1, 0])
            assert _wait(lambda: reader2.read()["zone_size"] == 0.0)
        finally:
            m2.close()
            ctl2.close_port()
            ctl2.delete()
        assert runner.active
    finally:
        runner.stop()
        m.close()  # closing an input whose source vanished must not raise
        if not closed_ctl:
            ctl.close_port()
            ctl.delete()
    s = runner.stats()
    assert s.callbacks > 0 and np.isfinite(s.worker_busy_s)


class _StallingEngine:
    """The real Engine (its output is limited to 0 dBFS), but every ``every``-th call stalls
    for ``stall_s``: a worker that misses deadlines now and then."""

    def __init__(self, eng, every=120, stall_s=0.012):
        self.eng, self.every, self.stall_s, self.calls = eng, every, stall_s, 0
        self.latency_samples = eng.latency_samples

    def process(self, x):
        self.calls += 1
        if self.calls % self.every == 0:
            time.sleep(self.stall_s)
        return self.eng.process(x)


@pytest.mark.parametrize("bad", ["hot", "nan"])
def test_deadline_miss_with_hot_or_nan_input_stays_within_full_scale(jack_server, tmp_path, bad):
    """Under-runs make the callback play the latency-aligned dry input. A JACK port can carry
    +12 dBFS floats or NaN; the safety limit (finite, |y| <= 1.0) must hold for those blocks
    too, not only for the Engine's own output."""
    from tests.test_live_jack import make_signal, run_through_jack
    from tests.toy_bundle import make_toy_bundle
    from vqblur.engine.core import Engine, Params

    sig = 4.0 * make_signal(3.0, channels=1, seed=3)  # peaks about +12 dBFS
    if bad == "nan":
        sig[SR_NAN_AT::4801] = np.nan
    eng = Engine(make_toy_bundle(tmp_path / "toy"), Params(zone_size=0.2, mix=1.0))
    runner, stats, rec, xruns = run_through_jack(_StallingEngine(eng), sig, blocksize=0,
                                                 tmp_path=str(tmp_path), server=jack_server)
    print(f"{bad}: {stats}")
    assert stats.underruns >= 2 and stats.deadline_misses >= 2, stats  # the fault did happen
    assert np.sqrt(np.nanmean(rec ** 2)) > 0.05  # and the output is not silent
    n_nan = int(np.sum(~np.isfinite(rec)))
    n_over = int(np.sum(np.abs(np.nan_to_num(rec)) > 1.0))
    assert n_nan == 0 and n_over == 0, (
        f"{n_nan} non-finite and {n_over} above-0-dBFS output samples (max |y| "
        f"{np.nanmax(np.abs(rec)):.2f}) over {stats.underruns} under-runs: the callback's "
        "dry fallback (engine/stage/runner.py LiveRunner._callback) plays the raw input unlimited")


SR_NAN_AT = 1000


def test_server_killed_mid_stream_with_midi_open_exits_cleanly(tmp_path):
    """The JACK server crashes (SIGKILL, not a polite stop) while `vqblur live` has its audio
    stream and a JACK MIDI port open: the command says so and exits (code 1) without hanging
    and without a traceback. (A polite stop is tests/test_live_cli.py's.)"""
    import signal
    import subprocess
    import sys

    from tests.jack_server import start_jack_server, stop_jack_server
    from tests.toy_bundle import make_toy_bundle

    toy = str(make_toy_bundle(tmp_path / "toy"))
    server = start_jack_server(log_dir=str(tmp_path))
    killed = False
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = None
    try:
        env = dict(os.environ, JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
        p = subprocess.Popen([sys.executable, "-m", "vqblur", "live", "--bundle", toy,
                              "--duration", "60", "--jack-name", f"vqkill-{os.getpid()}",
                              "--midi-virtual", f"vqkill midi {os.getpid()}"],
                             cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        time.sleep(3.0)
        assert p.poll() is None, p.communicate()[1]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        killed = True
        t = time.monotonic()
        out, err = p.communicate(timeout=25)
        assert time.monotonic() - t < 20
    finally:
        stop_jack_server(server)
        if p is not None and p.poll() is None:
            p.kill()
        if killed:
            _reclaim_jack_slot(server.name, str(tmp_path))
    assert p.returncode == 1, err
    assert "audio stream stopped" in err or "no audio for" in err, err
    assert "Traceback" not in err
    assert not [n for _, n in _registry() if f":{server.name}:" in n], _registry()
