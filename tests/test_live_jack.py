"""The live path for real: sounddevice on a JACK dummy server, no mocks.

A JACK player client plays a known signal into the live runner's input port and a JACK
recorder client records its output port, sample-accurately by JACK frame time. We check
that the output is not silent, that it is the offline render of the same input through the
same processor (aligned by the declared latency), that no xrun/under-run/over-run happened,
and that the latency measured by cross-correlation equals the declared one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.jack_server import jack_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.jack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 48000
BLOCK = 128


def make_signal(seconds: float, channels: int = 1, seed: int = 1) -> np.ndarray:
    """Tones + band-limited noise bursts, first sample nonzero (marks the start)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros((n, channels), np.float32)
    for ch in range(channels):
        f0 = 110.0 * (1 + ch)
        x = 0.15 * np.cos(2 * np.pi * f0 * t) + 0.08 * np.cos(2 * np.pi * 3.01 * f0 * t + ch)
        noise = rng.standard_normal(n)
        noise = np.convolve(noise, np.ones(8) / 8, mode="same")
        env = (np.sin(2 * np.pi * 1.3 * t + ch) > 0.3).astype(float)
        x += 0.2 * noise * env
        out[:, ch] = x
    out[0] = 0.25
    return out


def measured_latency(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """Lag (samples) maximising the cross-correlation of y against x (first channel)."""
    x = x[:, 0].astype(np.float64)
    y = y[:, 0].astype(np.float64)
    n = len(x) + len(y)
    nfft = 1 << int(np.ceil(np.log2(n)))
    c = np.fft.irfft(np.fft.rfft(y, nfft) * np.conj(np.fft.rfft(x, nfft)), nfft)
    return int(np.argmax(c[:max_lag + 1]))


def run_through_jack(processor, signal: np.ndarray, *, blocksize: int = BLOCK,
                     tail_s: float = 0.3, knobs=None, tmp_path=None):
    """Play ``signal`` through a LiveRunner(processor) on the JACK server, with the JACK
    player/recorder in a process of their own. Returns (runner, stats, record, xruns);
    ``record[i]`` is the runner's output during the JACK cycle that played ``signal[i]``."""
    from vqblur.engine.live import LiveRunner, realtime_thread

    channels = signal.shape[1]
    name = f"vqblur-live-{os.getpid()}"
    seconds = len(signal) / SR
    runner = LiveRunner(processor, samplerate=SR, blocksize=blocksize, channels=channels,
                        input_device="system", output_device="system",
                        jack_client_name=name, capture_seconds=seconds + 5.0, knobs=knobs,
                        worker_priority=5)
    sig_path = os.path.join(tmp_path, "signal.npy")
    out_path = os.path.join(tmp_path, "record.npz")
    np.save(sig_path, signal)
    runner.start()
    try:
        with realtime_thread(2):
            proc = subprocess.run(
                [sys.executable, "-m", "tests.jack_server", "playrec", sig_path, out_path,
                 "--dut", name, "--tail", str(tail_s)],
                cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60,
            )
        assert runner.active, "the live stream stopped"
        stats = runner.stats()
    finally:
        runner.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    data = np.load(out_path)
    return runner, stats, data["record"], int(data["xruns"])


def check_against_offline(runner, stats, rec, signal, offline_processor, atol):
    # 1. not silent
    assert np.sqrt(np.mean(rec ** 2)) > 0.01, "live output is silent"
    # 2. the input path is bit-exact: find the signal in what the engine received
    cap = runner.capture_in
    nz = np.flatnonzero(np.abs(cap[:, 0]) > 0)
    assert len(nz), "engine received only silence"
    pos0 = int(nz[0])
    np.testing.assert_array_equal(cap[pos0:pos0 + len(signal)], signal)
    # 3. live output == offline render of the same input stream, aligned by the prefill
    n_in = min(pos0 + len(rec) - runner.prefill, runner.capture_frames)
    y_off = np.asarray(offline_processor.process(cap[:n_in].copy()), np.float32).reshape(n_in, -1)
    P = runner.prefill
    m = min(len(rec), n_in - pos0 + P)
    live = rec[:m]
    off = y_off[pos0 - P:pos0 - P + m]
    err = np.max(np.abs(live - off))
    if err > atol:
        bad = np.flatnonzero(np.any(np.abs(live - off) > atol, axis=1))
        print("DEBUG lag", measured_latency(signal, rec, SR // 10), "pos0", pos0, "P", P,
              "bad", bad[:5], len(bad), "of", m)
    assert err <= atol, f"live output differs from the offline render by {err:g} (> {atol:g})"
    # 4. latency: measured by cross-correlation == declared, within one host block
    lat = measured_latency(signal, rec, max_lag=SR // 10)
    assert abs(lat - runner.latency_samples) <= stats.host_block, (lat, runner.latency_samples)
    return lat


def check_clean(stats, xruns):
    assert xruns == 0, f"{xruns} JACK xruns"
    assert stats.underruns == 0, f"{stats.underruns} under-runs"
    assert stats.overruns == 0, f"{stats.overruns} over-runs"
    assert stats.deadline_misses == 0 and stats.resyncs == 0
    assert stats.status_flags == 0, "PortAudio reported under/overflow"
    rate = stats.callbacks / stats.elapsed_s
    assert abs(rate - SR / stats.host_block) < 0.1 * SR / stats.host_block, rate


def test_passthrough_stereo_exact_latency(jack_server, tmp_path):
    """Identity processor: output is exactly the input delayed by one host block."""
    from vqblur.engine.live import PassThrough

    sig = make_signal(float(os.environ.get('VQTEST_SECONDS', 3.0)), channels=2)
    runner, stats, rec, xruns = run_through_jack(PassThrough(), sig, blocksize=0, tmp_path=str(tmp_path))
    print(f"passthrough: {stats}, xruns {xruns}, worker realtime {runner.worker_realtime}, last under-run at {runner.last_underrun_pos}")
    assert runner.latency_samples == BLOCK
    lat = check_against_offline(runner, stats, rec, sig, PassThrough(), atol=0.0)
    assert lat == BLOCK
    np.testing.assert_array_equal(rec[BLOCK:len(sig)], sig[:len(sig) - BLOCK])
    check_clean(stats, xruns)
