"""Declared latency == latency measured by cross-correlation (zone size 0), also resampled."""

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.codec import IdentityCodec
from vqblur.engine.core import Engine, Params
from vqblur.engine.resample import ResampledEngine, make_engine


def measured_lag(x, y, max_lag=2000):
    """Lag (samples) maximising the cross-correlation of y against x (FFT based)."""
    n = len(x) + len(y)
    nfft = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(y, nfft) * np.conj(np.fft.rfft(x, nfft)), nfft)
    return int(np.argmax(xc[: max_lag + 1]))


def _noise(n, sr, seed=0):
    # band-limited noise (below 0.4 of the lower Nyquist) so resamplers pass it unchanged
    rng = np.random.default_rng(seed)
    X = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    X[f > 8000] = 0
    x = np.fft.irfft(X, n)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def test_identity_declared_equals_measured():
    eng = Engine(IdentityCodec())
    x = _noise(24000, 48000)
    assert measured_lag(x, eng.process(x)) == eng.latency_samples == 399


def test_toy_bundle_declared_equals_measured(tmp_path):
    eng = Engine(make_toy_bundle(tmp_path / "toy"), Params(zone_size=0.0))
    assert eng.latency_samples == 399
    assert eng.latency_samples / eng.sample_rate < 0.010  # under 10 ms
    x = _noise(48000, 48000, seed=1)
    assert measured_lag(x, eng.process(x)) == eng.latency_samples


@pytest.mark.parametrize("io_rate", [44100, 96000, 32000])
def test_resampled_declared_equals_measured(io_rate):
    eng = make_engine(IdentityCodec(), sample_rate=io_rate)
    assert isinstance(eng, ResampledEngine)
    x = _noise(io_rate // 2, io_rate, seed=2)
    y = eng.process(x)
    L = eng.latency_samples
    assert measured_lag(x, y) == L
    assert L / io_rate < 0.010
    # and it is a pure delay: the band-limited input comes back
    assert np.max(np.abs(y[L + 100 : -100] - x[100 : -100 - L])) < 1e-3


def test_resampled_is_block_size_invariant():
    eng = make_engine(IdentityCodec(), sample_rate=44100, channels=2)
    x = np.stack([_noise(20000, 44100, 3), _noise(20000, 44100, 4)], axis=1)
    ref = eng.process(x)
    eng.reset()
    rng = np.random.default_rng(0)
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 4097))
        out.append(eng.process(x[i : i + n]))
        i += n
    assert np.max(np.abs(np.concatenate(out) - ref)) <= 1e-6
    assert eng.underruns == 0


def test_same_rate_is_a_plain_engine():
    assert isinstance(make_engine(IdentityCodec(), sample_rate=48000), Engine)
