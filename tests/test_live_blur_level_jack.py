"""The blur wide open, live: the shipped model on the JACK dummy server in real time (48 kHz,
128-frame periods), three held-out real recordings (each its loudest 2 s, peaking at -3 dBFS,
each followed by half a second of silence). At zone 1 / temperature 1 (and at zone 0.4 / centre
0.2, where a guitar's body sits, and at zone 1 with the smear knob at 1) what JACK carried is as
loud as the input within 1 dB, audibly changed, and the limiter all but idle: at most 0.2 % of
the samples above its knee. Not none: at zone 1 / temperature 1 the draws' re-texture raises one
transient of the first recording (t = 1.22 s) by up to 3 dB in some draws, and which draw a live
run gets depends on how much silence the engine heard before the music (offline, 16 draws with
0-100 ms of lead-in: 3 of 16 peak over the knee, 0.93-1.0 before the limiter, for at most 180
samples = 3.8 ms, 0.07 % of the run; smear 1: 2 of 16). A single-sample peak check passed or
failed by that luck (it failed in CI at 0.91 and 0.98)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_live_jack import SR, check_clean, retry_once_after_machine_xruns, run_through_jack

pytestmark = pytest.mark.jack


@pytest.fixture(scope="module")
def recordings() -> np.ndarray:
    """Three held-out recordings, each its loudest 2 s at -3 dBFS, each followed by 0.5 s of
    silence (a player's pause; cut hard into one another, a sustained sound into a drum hit,
    the blur's smoothed change overshoots the hit by up to 3 dB and the limiter catches it:
    docs/BLUR.md): [n, 1]."""
    from vqblur.common.recordings import test_set as real_test_set
    from vqblur.measure import playability as P
    from vqblur.training.data.folder import read_mono

    recs = real_test_set()
    if len(recs) < 8:
        pytest.skip("the packaged recordings are not installed")
    picked = [recs[i] for i in np.linspace(1, len(recs) - 2, 3).astype(int)]
    clips = P.pick_clips([(r.name, read_mono(r.path, SR)[0]) for r in picked], 3, 2.0, SR)
    gap = np.zeros(SR // 2, np.float32)
    x = np.concatenate([part for _, a in clips for part in (P.normalise(a), gap)])
    x[0] = 0.25 if x[0] == 0 else x[0]  # the first sample marks the start for the recorder
    return x[:, None].astype(np.float32)


@pytest.mark.parametrize("knobs", [dict(zone_size=1.0, temperature=1.0),
                                   dict(zone_size=0.4, centre=0.2, temperature=0.5),
                                   dict(zone_size=1.0, temperature=1.0, smear=1.0)],
                         ids=["zone-1-temp-1", "zone-0.4-centre-0.2", "zone-1-temp-1-smear-1"])
def test_the_live_blur_keeps_the_level_and_the_limiter_idle(jack_server, tmp_path, recordings, knobs):
    from vqblur.engine.bundle import default_bundle_path
    from vqblur.engine.core import LIMIT_KNEE, Params
    from vqblur.engine.resample import make_engine
    from vqblur.measure import playability as P

    def attempt(seen):
        eng = make_engine(default_bundle_path(), sample_rate=SR, channels=1, seed=3, params=Params(**knobs))
        runner, stats, rec, xruns = run_through_jack(eng, recordings, blocksize=0, tmp_path=str(tmp_path),
                                                     server=jack_server)
        seen["xruns"], seen["stats"] = xruns, stats
        L = runner.latency_samples
        n = min(len(recordings), len(rec) - L)
        x, y = recordings[:n, 0].astype(np.float64), rec[L:L + n, 0].astype(np.float64)
        peak = float(np.abs(rec).max())
        over = float(np.mean(np.abs(rec) > LIMIT_KNEE))
        level = 10 * np.log10(np.sum(y * y) / np.sum(x * x))
        change = P.compare(x, y, SR)["change_db"]
        print(f"{knobs}: peak {peak:.3f} ({100 * over:.3f} % of samples over the knee), level {level:+.2f} dB, "
              f"change {change:.2f} dB; {stats.underruns} under-runs")
        assert over <= 0.002, f"{100 * over:.2f} % of the output was over the limiter's knee (peak {peak:.3f})"
        assert abs(level) <= 1.0, f"the live output is {level:+.2f} dB from the input"
        assert change >= 1.0, f"the blur changed the sound by only {change:.2f} dB"
        check_clean(stats, xruns)

    retry_once_after_machine_xruns(attempt)
