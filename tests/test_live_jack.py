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
import time
import warnings

import numpy as np
import pytest


pytestmark = pytest.mark.jack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 48000
BLOCK = 128


def blocks_matching(live: np.ndarray, off: np.ndarray, B: int, atol: float):
    """Compare a recording with its reference block by block -> (per-block max error, share of
    blocks matching at the declared alignment, share matching there or at a shift of up to 4
    whole periods). A test client that misses a JACK cycle (a machine xrun) shifts the rest of
    the recording by whole periods; a block equal to the reference at such a shift is correct."""
    m = min(len(live), len(off))
    nb = m // B
    diff = np.abs(live[:nb * B] - off[:nb * B]).reshape(nb, B, -1).max(axis=(1, 2))
    best = diff.copy()
    for k in (-4, -3, -2, -1, 1, 2, 3, 4):
        sh = k * B
        a, b = max(0, -sh), min(m, len(off) - sh)  # live[i] vs off[i + sh]
        if b - a < B:
            continue
        lo, hi = (a + B - 1) // B, min(b // B, nb)
        if hi <= lo:
            continue
        d = np.abs(live[lo * B:hi * B] - off[lo * B + sh:hi * B + sh]).reshape(hi - lo, B, -1).max(axis=(1, 2))
        best[lo:hi] = np.minimum(best[lo:hi], d)
    return diff, float(np.mean(diff <= atol)), float(np.mean(best <= atol))


def retry_once_after_machine_xruns(attempt) -> None:
    """Run ``attempt(seen)`` (which runs audio through JACK, stores the run's xrun report in
    ``seen["xruns"]``, then asserts). If it fails and the JACK server logged xruns during that
    run -- the machine, not our code, was late -- measure once more; the second run must pass
    as it is. So does a worker held off its core (``stats.stalled_chunks``: chunks that took over
    a period while their thread ran for under half of it), if the attempt stores its stats in
    ``seen["stats"]``. Any other failure fails at once. Strict mode never retries."""
    seen: dict = {}
    try:
        attempt(seen)
        return
    except AssertionError as first:
        total = int((seen.get("xruns") or {}).get("total", 0))
        stalled = int(getattr(seen.get("stats"), "stalled_chunks", 0))
        if STRICT or total + stalled == 0:
            raise
        warnings.warn(f"JACK run failed after {total} machine xrun(s) and {stalled} stalled worker "
                      f"chunk(s) ({first!s:.200}); measuring once more")
    attempt({})


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


def signal_has_played(runner, seconds: float) -> bool:
    """True once the runner's captured input has carried a signal for ``seconds`` (the first
    nonzero sample marks its start; the worker is writing the capture, so read a copy)."""
    nz = np.flatnonzero(runner.capture_in[:, 0].copy())
    return len(nz) > 0 and runner.frames - nz[0] > seconds * SR


def measured_latency(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """Lag (samples) maximising the cross-correlation of y against x (first channel)."""
    from vqblur.measure.latency import measure_delay

    return measure_delay(x[:, 0].astype(np.float64), y[:, 0].astype(np.float64), max_lag)


def run_through_jack(processor, signal: np.ndarray, *, blocksize: int = BLOCK,
                     tail_s: float = 0.3, knobs=None, tmp_path=None, server=None,
                     prefill_blocks: int = 1):
    """Play ``signal`` through a LiveRunner(processor) on the JACK server, with the JACK
    player/recorder in a process of their own. Returns (runner, stats, record, xruns);
    ``record[i]`` is the runner's output during the JACK cycle that played ``signal[i]``."""
    from vqblur.engine.stage.realtime import realtime_thread
    from vqblur.engine.stage.runner import LiveRunner

    channels = signal.shape[1]
    name = f"vqblur-live-{os.getpid()}"
    seconds = len(signal) / SR
    runner = LiveRunner(processor, samplerate=SR, blocksize=blocksize, channels=channels,
                        input_device="system", output_device="system",
                        jack_client_name=name, capture_seconds=seconds + 5.0, knobs=knobs,
                        worker_priority=3, prefill_blocks=prefill_blocks)
    sig_path = os.path.join(tmp_path, "signal.npy")
    out_path = os.path.join(tmp_path, "record.npz")
    np.save(sig_path, signal)
    log0 = server.log_size() if server is not None else 0
    runner.start()
    try:
        with realtime_thread(1):
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
    xruns = {"total": int(data["xruns"])}
    if server is not None:
        xruns.update(server.xrun_report(log0, dut=name, upstream="vqtest-player"))
    return runner, stats, data["record"], xruns


STRICT = os.environ.get("VQTEST_STRICT_XRUNS") == "1"


def xrun_total(xruns: dict) -> int:
    """All the xruns of a run: the recorder's count or the server log's, whichever is larger."""
    return max(xruns["total"], xruns.get("driver", 0) + xruns.get("graph_env", 0) + xruns.get("dut", 0))


def check_against_offline(runner, stats, rec, signal, offline_processor, atol, xruns=None):
    """Returns the measured latency (samples). Three comparisons:

    1. in the runner: the worker's output stream == the offline render of exactly the input
       the callback received (whatever JACK delivered), at the declared offset -- always
       exact, xruns or not;
    2. end to end, JACK port to JACK port: the recorder's signal == that same offline render,
       aligned by the declared latency. A JACK xrun the machine causes (the server's own
       cycle late) can drop a test client's cycle and shift the rest of the recording by
       whole periods, so blocks are compared one by one: all must match at the declared
       alignment in strict mode (VQTEST_STRICT_XRUNS=1); otherwise 99 % must match at it or
       at a shift of a few whole periods, and every block beyond that 1 % must be explained
       by the run's own xruns (``xruns``: a few blocks around each) or under-runs (the block
       played dry and the crossfade back in the next);
    3. the latency measured by cross-correlation (JACK input port -> JACK output port)
       equals the declared one within one host block (we see equality).
    """
    P = runner.latency_samples - runner.engine_latency  # prefill (+ PortAudio adapter)
    assert np.sqrt(np.mean(rec ** 2)) > 0.01, "live output is silent"
    cap_in, cap_out = runner.capture_in, runner.capture_out
    nz = np.flatnonzero(np.abs(cap_in[:, 0]) > 0)
    assert len(nz), "engine received only silence"
    pos0 = int(nz[0])
    n_in = min(pos0 + len(signal), runner.capture_frames - runner.prefill)
    y_off = np.asarray(offline_processor.process(cap_in[:n_in].copy()), np.float32).reshape(n_in, -1)
    # 1. worker output (written at position n + prefill) == offline render
    Pw = runner.prefill
    err_worker = np.max(np.abs(cap_out[Pw:Pw + n_in] - y_off))
    assert err_worker <= atol, f"live worker output differs from the offline render by {err_worker:g}"
    # 2. end to end, block by block
    assert np.array_equal(cap_in[pos0:pos0 + 4096], signal[:4096]), "input start not found"
    m = min(len(rec), n_in - pos0 + P)
    live = rec[:m]
    off = y_off[pos0 - P:pos0 - P + m]
    B = 128
    nb = m // B
    diff, good, good_shifted = blocks_matching(live, off, B, atol)
    runner.test_blocks_matching = good
    runner.test_blocks_matching_shifted = good_shifted
    if good < 1.0 and os.environ.get("VQTEST_DEBUG_DIR"):
        np.savez(os.path.join(os.environ["VQTEST_DEBUG_DIR"], f"live-{os.getpid()}-{len(signal)}.npz"),
                 rec=rec, cap_in=cap_in, cap_out=cap_out, signal=signal, y_off=y_off, pos0=pos0, P=P,
                 diff=diff)
    if STRICT:
        assert good == 1.0, f"{np.sum(diff > atol)} of {nb} recorded blocks differ from the offline render"
    else:
        explained = 2 * stats.underruns + 3 * (xrun_total(xruns) if xruns else 0)
        bad = round((1.0 - good_shifted) * nb)
        assert bad <= 0.01 * nb + explained, (
            f"only {good_shifted:.2%} of recorded blocks match the offline render ({good:.2%} "
            f"without a whole-period shift): {bad} of {nb} differ, {explained} explained by "
            f"{stats.underruns} under-runs and {xrun_total(xruns) if xruns else 0} xruns")
    # 3. latency: cross-correlate the recording with what the live client received from
    # the player (its captured input from the signal's start), over the first second
    # -- a test-client cycle lost to a machine xrun later on cannot bias it.
    w = min(SR, len(rec) - SR // 10)
    lat = measured_latency(cap_in[pos0:pos0 + w], rec[:w + SR // 10], max_lag=SR // 10)
    assert abs(lat - runner.latency_samples) <= stats.host_block, (lat, runner.latency_samples)
    return lat


def check_clean(stats, xruns):
    """Strict mode (VQTEST_STRICT_XRUNS=1, for a quiet machine or CI runner): no JACK xrun, no
    under-run, over-run or deadline miss at all. Default: the runner must keep up (under-runs
    only around xruns, no over-run or resync) and xruns are reported -- on a busy
    shared VM the dummy server's own cycle is late now and then even with no client at all
    (measured: 6 xruns in 20 s of an idle server while other jobs used both cores)."""
    rate = stats.callbacks / stats.elapsed_s
    assert abs(rate - SR / stats.host_block) < 0.1 * SR / stats.host_block, rate
    assert stats.overruns == 0 and stats.resyncs == 0, stats
    total = xrun_total(xruns)
    summary = (f"{total} JACK xrun(s) (server driver late {xruns.get('driver')}, whole graph late "
               f"{xruns.get('graph_env')}, live client late {xruns.get('dut')}); runner under-runs "
               f"{stats.underruns} of {stats.callbacks} callbacks, slowest chunk "
               f"{1000 * stats.worker_max_chunk_s:.2f} ms, {stats.slow_chunks} slow chunk(s) of which "
               f"{stats.stalled_chunks} stalled ({stats.stall_periods} period(s))")
    print(summary)
    if STRICT:
        assert total == 0, summary
        assert stats.underruns == 0 and stats.deadline_misses == 0, summary
        assert stats.status_flags == 0, "PortAudio reported under/overflow"
    else:
        # A late server cycle is often followed by back-to-back cycles that leave the worker
        # no time: allow a few under-runs per xrun, and 0.2 % of callbacks besides. Likewise for
        # a worker held off its core by the machine (a 2-vCPU VM stalls one vCPU for up to 50 ms
        # while the server runs on the other, so no xrun is logged): two under-runs per period
        # it spanned, counted only for chunks whose thread ran for under half their wall time.
        # A worker that cannot keep up (its chunks busy on the CPU) under-runs on most callbacks
        # and fails this.
        allowed = 3 * total + 2 * stats.stall_periods + 0.002 * stats.callbacks
        assert stats.underruns <= allowed, summary
        if total or stats.underruns:
            warnings.warn("live run not clean (busy machine?): " + summary)


def test_passthrough_stereo_exact_latency(jack_server, tmp_path):
    """Identity processor: output is exactly the input delayed by one host block."""
    from vqblur.engine.stage.runner import PassThrough

    sig = make_signal(float(os.environ.get('VQTEST_SECONDS', 3.0)), channels=2)

    def attempt(seen):
        runner, stats, rec, xruns = run_through_jack(PassThrough(), sig, blocksize=0, tmp_path=str(tmp_path), server=jack_server)
        seen["xruns"], seen["stats"] = xruns, stats
        print(f"passthrough: {stats}, xruns {xruns}, worker realtime {runner.worker_realtime}, last under-run at {runner.last_underrun_pos}")
        assert runner.latency_samples == BLOCK
        lat = check_against_offline(runner, stats, rec, sig, PassThrough(), atol=0.0, xruns=xruns)
        assert lat == BLOCK
        check_clean(stats, xruns)

    retry_once_after_machine_xruns(attempt)


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory):
    from tests.toy_bundle import make_toy_bundle

    return make_toy_bundle(tmp_path_factory.mktemp("bundle") / "toy")


def _engine(bundle, **knobs):
    from vqblur.engine.core import Params
    from vqblur.engine.resample import make_engine

    return make_engine(bundle, sample_rate=SR, params=Params(**knobs), channels=1, seed=3)


@pytest.mark.slow
def test_engine_live_matches_offline_20s(jack_server, toy_bundle, tmp_path):
    """20 s of audio through the real Engine (toy bundle, zone size 0) on JACK in real time:
    output == offline render, measured latency == declared (engine 399 + one 128 block),
    no xruns, under-runs or over-runs."""
    seconds = float(os.environ.get("VQTEST_LIVE_SECONDS", 20.0))
    sig = make_signal(seconds, channels=1, seed=5)

    def attempt(seen):
        eng = _engine(toy_bundle, zone_size=0.0, temperature=0.5)
        runner, stats, rec, xruns = run_through_jack(eng, sig, blocksize=0, tmp_path=str(tmp_path), server=jack_server)
        seen["xruns"], seen["stats"] = xruns, stats
        print(f"engine: {stats}, xruns {xruns}, worker realtime {runner.worker_realtime}, "
              f"callbacks/s {stats.callbacks / stats.elapsed_s:.1f}")
        assert runner.engine_latency == 399
        assert runner.latency_samples == 399 + BLOCK
        lat = check_against_offline(runner, stats, rec, sig, _engine(toy_bundle, zone_size=0.0, temperature=0.5),
                                    atol=1e-5, xruns=xruns)
        print(f"measured latency {lat} samples, declared {runner.latency_samples}; "
              f"{runner.test_blocks_matching:.2%} of recorded 128-sample blocks == offline render "
              f"({runner.test_blocks_matching_shifted:.2%} allowing whole-period shifts)")
        check_clean(stats, xruns)

    retry_once_after_machine_xruns(attempt)


def test_fixed_blocksize_counts_portaudio_adapter(jack_server, toy_bundle, tmp_path):
    """An explicit blocksize on JACK puts PortAudio's block adapter in the path: one more
    block of latency, which the declared figure counts (measured == declared)."""
    sig = make_signal(3.0, channels=1, seed=6)
    knobs = dict(zone_size=0.0, temperature=0.5)

    def attempt(seen):
        runner, stats, rec, xruns = run_through_jack(_engine(toy_bundle, **knobs), sig, blocksize=BLOCK,
                                                     tmp_path=str(tmp_path), server=jack_server)
        seen["xruns"], seen["stats"] = xruns, stats
        assert runner.latency_samples == 399 + 2 * BLOCK
        lat = check_against_offline(runner, stats, rec, sig, _engine(toy_bundle, **knobs), atol=1e-5, xruns=xruns)
        print(f"blocksize {BLOCK}: measured latency {lat}, declared {runner.latency_samples}")
        check_clean(stats, xruns)

    retry_once_after_machine_xruns(attempt)


def test_engine_live_with_blur(jack_server, toy_bundle, tmp_path):
    """Blur engaged (zone 0.4, temperature 0.6): the live output is the offline render with the
    same seed. Needs an engine that runs in real time with the blur on."""
    import time as _t

    knobs = dict(zone_size=0.4, temperature=0.6, centre=0.5)
    probe = _engine(toy_bundle, **knobs)
    x = make_signal(0.5, channels=1, seed=7)
    t0 = _t.perf_counter()
    probe.process(x)
    rtf = (_t.perf_counter() - t0) / 0.5
    if rtf > 0.5:
        pytest.skip(f"the engine with the blur on runs at real-time factor {rtf:.1f} here: "
                    "it cannot keep up live (the live path then under-runs to the dry signal; "
                    "see test_slow_processor_falls_back_to_aligned_dry)")
    sig = make_signal(3.0, channels=1, seed=6)

    def attempt(seen):
        runner, stats, rec, xruns = run_through_jack(_engine(toy_bundle, **knobs), sig, blocksize=0,
                                                     tmp_path=str(tmp_path), server=jack_server)
        seen["xruns"], seen["stats"] = xruns, stats
        check_against_offline(runner, stats, rec, sig, _engine(toy_bundle, **knobs), atol=1e-5, xruns=xruns)
        check_clean(stats, xruns)

    retry_once_after_machine_xruns(attempt)


class SlowPassThrough:
    """Identity, but every ``every``-th call stalls for ``stall_s`` (a worker that misses
    deadlines now and then)."""

    latency_samples = 0

    def __init__(self, every=150, stall_s=0.012):
        self.every, self.stall_s, self.calls = every, stall_s, 0

    def process(self, x):
        import time as _t

        self.calls += 1
        if self.calls % self.every == 0:
            _t.sleep(self.stall_s)
        return np.array(x, dtype=np.float32, copy=True)


def test_slow_processor_falls_back_to_aligned_dry(jack_server, tmp_path):
    """When the worker is late the callback plays the latency-aligned dry input (crossfaded),
    counts the under-runs and deadline misses, and the latency does not move: with an
    identity processor the output is the input delayed by one block throughout."""
    sig = make_signal(4.0, channels=1, seed=8)

    def attempt(seen):
        runner, stats, rec, xruns = run_through_jack(SlowPassThrough(), sig, blocksize=0,
                                                     tmp_path=str(tmp_path), server=jack_server)
        seen["xruns"], seen["stats"] = xruns, stats
        print(f"slow: {stats}")
        assert stats.underruns >= 3 and stats.deadline_misses >= 3, stats
        assert stats.resyncs == 0 and stats.overruns == 0
        P = runner.latency_samples
        assert P == BLOCK
        cap = runner.capture_in
        pos0 = int(np.flatnonzero(cap[:, 0])[0])
        ref = cap[pos0 - P:pos0 - P + len(sig)]  # what the live client received, one block earlier
        n = len(sig)
        _, good, _ = blocks_matching(rec[:n], ref[:n], BLOCK, 1e-6)
        assert good >= (1.0 if STRICT else 0.95), f"{good:.1%} of blocks are the delayed input"
        # no gap: the output is never silent where the input is not
        env_in = np.abs(ref[:n, 0]).reshape(-1, BLOCK).max(axis=1)
        env_out = np.abs(rec[:n, 0]).reshape(-1, BLOCK).max(axis=1)
        assert np.all(env_out[env_in > 0.05] > 0.01)

    retry_once_after_machine_xruns(attempt)


def test_engine_slower_than_real_time_gives_back_realtime_priority(jack_server):
    """A processor that needs more than real time: the worker drops its real-time priority
    (so it cannot starve the machine), under-runs are counted, and the stream keeps going."""
    from vqblur.engine.stage.runner import LiveRunner
    from vqblur.engine.stage.status import format_status

    class Hog:
        latency_samples = 0

        def process(self, x):
            t = time.perf_counter()
            while time.perf_counter() - t < 1.2 * len(x) / SR:
                time.sleep(0.0002)
            return np.array(x, dtype=np.float32, copy=True)

    runner = LiveRunner(Hog(), samplerate=SR, blocksize=0, input_device="system",
                        output_device="system", worker_priority=3,
                        jack_client_name=f"vqhog-{os.getpid()}")
    runner.start()
    try:
        time.sleep(2.5)
        assert runner.active
        st = runner.stats()
    finally:
        runner.stop()
    if not runner.worker_demoted and not runner.worker_realtime:
        pytest.skip("no real-time priority available here")
    assert runner.worker_demoted and not runner.worker_realtime
    assert st.underruns > 0.5 * st.callbacks
    assert "engine slower than real time" in format_status(runner)


@pytest.mark.parametrize("stereo", ["linked", "independent"])
def test_stereo_engine_live_matches_offline(jack_server, tmp_path, stereo):
    """Two channels through the shipped model with the blur on (zone 0.3), linked and
    independent, on JACK in real time at 48 kHz / 128 frames: the output is the offline render
    of the same engine (block-size invariance in stereo), the latency as declared, no under-runs
    beyond what the server's xruns explain.

    With two blocks of slack (``--prefill-blocks 2``, latency + 2.7 ms): independent stereo runs
    two streams (about 0.85 ms of a 2.67 ms period), and on a 2-vCPU VM one block of slack missed
    20-40 of 1950 callbacks to chunks of 3-7 ms with no xrun logged (the host's, counted as the
    thread's CPU time). The one-block deadline is the mono engine tests' job."""
    from vqblur.engine.bundle import default_bundle_path
    from vqblur.engine.core import Params
    from vqblur.engine.resample import make_engine

    sig = make_signal(4.0, channels=2, seed=7)

    def engine():
        return make_engine(default_bundle_path(), sample_rate=SR, channels=2, seed=3, stereo=stereo,
                           params=Params(zone_size=0.3, temperature=0.5, centre=0.45))

    def attempt(seen):
        eng = engine()
        assert eng.linked == (stereo == "linked")
        runner, stats, rec, xruns = run_through_jack(eng, sig, blocksize=0, tmp_path=str(tmp_path), server=jack_server,
                                                     prefill_blocks=2)
        seen["xruns"], seen["stats"] = xruns, stats
        assert runner.prefill == 2 * BLOCK
        print(f"stereo {stereo}: {stats}, xruns {xruns}")
        lat = check_against_offline(runner, stats, rec, sig, engine(), atol=1e-5, xruns=xruns)
        assert lat == runner.latency_samples
        check_clean(stats, xruns)

    retry_once_after_machine_xruns(attempt)
