"""The output is always finite and within [-1, 1]; NaN/Inf input samples become silence."""

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.codec import IdentityCodec
from vqblur.engine.core import LIMIT_KNEE, Engine, Params, soft_limit
from vqblur.engine.resample import make_engine


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy"))


def test_soft_limit_is_transparent_below_knee_and_bounded_above():
    y = np.linspace(-100, 100, 20001)
    out = soft_limit(y.copy())
    assert np.all(np.abs(out) <= 1.0)
    small = np.abs(y) <= LIMIT_KNEE
    assert np.array_equal(out[small], y[small])
    assert np.all(np.diff(out) >= 0)  # monotonic: no fold-over


@pytest.mark.parametrize("kind", ["identity", "toy"])
def test_hot_input_stays_within_full_scale(kind, toy):
    eng = Engine(IdentityCodec() if kind == "identity" else toy, Params(mix=0.5))
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(8000) * 20).astype(np.float32)
    x[::97] = 1e30
    y = eng.process(x)
    assert np.isfinite(y).all() and np.max(np.abs(y)) <= 1.0


@pytest.mark.parametrize("kind", ["identity", "toy"])
def test_nan_and_inf_input_become_zero_and_engine_recovers(kind, toy):
    eng = Engine(IdentityCodec() if kind == "identity" else toy, channels=2)
    rng = np.random.default_rng(1)
    x = (0.2 * rng.standard_normal((6000, 2))).astype(np.float32)
    bad = x.copy()
    bad[100:200, 0] = np.nan
    bad[300, 1] = np.inf
    bad[301, 1] = -np.inf
    y = eng.process(bad)
    assert np.isfinite(y).all() and np.max(np.abs(y)) <= 1.0
    if kind == "identity":
        D = eng.latency_samples
        clean = x.copy()
        clean[100:200, 0] = 0.0
        clean[300:302, 1] = 0.0
        assert np.max(np.abs(y[D:] - clean[:-D])) <= 1e-6
    # afterwards a normal block is processed normally (no poisoned state)
    z = eng.process(x)
    assert np.isfinite(z).all() and np.max(np.abs(z[2000:])) > 0.05


def test_all_nan_block_through_resampler():
    eng = make_engine(IdentityCodec(), sample_rate=44100)
    y = eng.process(np.full(5000, np.nan, np.float32))
    assert np.isfinite(y).all() and np.max(np.abs(y)) == 0.0
