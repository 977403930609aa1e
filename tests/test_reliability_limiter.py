"""The safety limiter holds whatever the knobs and the input do: every output sample is finite
and |y| <= 1.0 (0 dBFS).

Hostile knobs: a random jump of every knob at every block (zone 0 <-> 1, temperature 1, centre
anywhere, mix 0/1/anything, bypass toggling), also from another thread while the audio runs.
Hot input: +12 dBFS noise, full-scale squares, NaN/Inf bursts, the largest float64 values
(whose spectra overflow), denormals. Blocks of random size 1..2048. Engines: the toy ONNX
bundle (mono, stereo), the identity codec, and the resampling wrapper at 44.1 and 96 kHz.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.codec import IdentityCodec
from vqblur.engine.core import Engine, Params, soft_limit
from vqblur.engine.resample import make_engine

F64_MAX = np.finfo(np.float64).max


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy")


def _hostile_block(rng, n, channels):
    kind = rng.integers(0, 9)
    if kind == 0:  # +12 dBFS Gaussian noise (rms 4)
        x = 4.0 * rng.standard_normal((n, channels))
    elif kind == 1:  # full-scale square
        x = np.sign(np.sin(np.arange(n) * 0.05 + rng.random()))[:, None] * np.ones(channels)
    elif kind == 2:  # noise with a NaN burst
        x = 4.0 * rng.standard_normal((n, channels))
        a = rng.integers(0, n)
        x[a : a + rng.integers(1, 300)] = np.nan
    elif kind == 3:  # +-Inf sprinkled
        x = rng.standard_normal((n, channels))
        x[rng.random((n, channels)) < 0.05] = np.inf
        x[rng.random((n, channels)) < 0.05] = -np.inf
    elif kind == 4:  # the largest float64 values, alternating sign (rfft and wet-dry overflow)
        x = F64_MAX * np.where(np.arange(n) % 2, 1.0, -1.0)[:, None] * np.ones(channels)
    elif kind == 5:  # huge but finite
        x = 1e300 * rng.standard_normal((n, channels))
    elif kind == 6:  # denormals
        x = 1e-310 * rng.standard_normal((n, channels))
    elif kind == 7:  # silence
        x = np.zeros((n, channels))
    else:  # DC at full scale
        x = np.full((n, channels), rng.choice([-1.0, 1.0]))
    return x


def _hostile_knobs(rng):
    return dict(
        zone_size=float(rng.choice([0.0, 1.0, rng.random()])),
        temperature=float(rng.choice([1.0, rng.random()])),
        centre=float(rng.random()),
        mix=float(rng.choice([0.0, 1.0, rng.random()])),
        bypass=float(rng.integers(0, 2)),
    )


def _drive(eng, channels, seed, n_blocks):
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i in range(n_blocks):
        n = int(np.exp(rng.uniform(0, np.log(2048))))
        eng.set_params(**_hostile_knobs(rng))
        x = _hostile_block(rng, n, channels)
        with np.errstate(all="ignore"):
            y = eng.process(x[:, 0] if channels == 1 and rng.random() < 0.5 else x)
        assert len(y) == n
        assert np.isfinite(y).all(), f"block {i}: non-finite output"
        m = float(np.max(np.abs(y)))
        assert m <= 1.0, f"block {i}: |y| = {m} > 1"
        worst = max(worst, m)
    return worst


ENGINES = {
    "toy-mono": lambda toy: (Engine(toy, Params(zone_size=1, temperature=1), seed=1), 1),
    "toy-stereo": lambda toy: (Engine(toy, Params(zone_size=1, temperature=1), channels=2), 2),
    "identity": lambda toy: (Engine(IdentityCodec(), Params(mix=0.5)), 1),
    "toy-44k1": lambda toy: (make_engine(toy, sample_rate=44100, params=Params(zone_size=1)), 1),
    "toy-96k-stereo": lambda toy: (make_engine(toy, sample_rate=96000, channels=2), 2),
}


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_hostile_knobs_and_hot_input_never_exceed_full_scale(toy, name):
    eng, channels = ENGINES[name](toy)
    worst = _drive(eng, channels, seed=hash(name) % 1000, n_blocks=150)
    assert worst > 0.5  # the hot input did reach the limiter
    # afterwards an ordinary signal comes through (nothing stuck at NaN or silence)
    eng.set_params(zone_size=0.0, mix=1.0, bypass=0.0)
    t = np.arange(24000) / eng.sample_rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    x = x if channels == 1 else np.stack([x] * channels, 1)
    y = eng.process(x)
    assert np.isfinite(y).all() and np.max(np.abs(y[8000:])) > 0.05


@pytest.mark.parametrize("mix", [0.0, 0.5, 1.0])
def test_largest_float64_values(toy, mix):
    """+-1.8e308: the STFT overflows to inf, wet - dry overflows; the output must not be NaN."""
    eng = Engine(toy, Params(mix=mix, zone_size=0.5, temperature=1.0))
    x = 0.2 * np.random.default_rng(0).standard_normal(6000)
    x[1000:1100] = F64_MAX
    x[1100:1200:2] = -F64_MAX
    with np.errstate(all="ignore"):
        y = eng.process(x)
    assert np.isfinite(y).all() and np.max(np.abs(y)) <= 1.0
    z = eng.process(0.2 * np.random.default_rng(1).standard_normal(6000))
    assert np.isfinite(z).all() and np.max(np.abs(z)) <= 1.0


def test_knob_jumps_from_another_thread_while_audio_runs(toy):
    eng = Engine(toy, Params(zone_size=1, temperature=1), channels=2)
    stop = threading.Event()
    errors = []

    def hammer():
        rng = np.random.default_rng(7)
        try:
            while not stop.is_set():
                eng.set_params(**_hostile_knobs(rng))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    th = threading.Thread(target=hammer, daemon=True)
    th.start()
    try:
        rng = np.random.default_rng(8)
        for _ in range(60):
            n = int(rng.integers(1, 1500))
            y = eng.process(4.0 * rng.standard_normal((n, 2)))
            assert np.isfinite(y).all() and np.max(np.abs(y)) <= 1.0
    finally:
        stop.set()
        th.join(5)
    assert not errors


def test_soft_limit_maps_nan_and_inf_into_range():
    y = np.array([np.nan, np.inf, -np.inf, 5.0, -5.0, 0.1, F64_MAX, -F64_MAX])
    out = soft_limit(y)
    assert np.isfinite(out).all() and np.max(np.abs(out)) <= 1.0
    assert out[0] == 0.0 and out[5] == 0.1 and out[1] > 0.95 and out[2] < -0.95
