"""Output must not depend on how the input is cut: random blocks of 1..4096 == one call."""

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.codec import IdentityCodec
from vqblur.engine.core import Engine, Params


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy"))


def _signal(n, channels, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 48000.0
    x = 0.3 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((n, channels))
    return x.astype(np.float32) if channels > 1 else x[:, 0].astype(np.float32)


def _random_blocks(eng, x, seed):
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 4097))
        out.append(eng.process(x[i : i + n]))
        i += n
    return np.concatenate(out)


def _fixed_blocks(eng, x, n):
    return np.concatenate([eng.process(x[i : i + n]) for i in range(0, len(x), n)])


def _make(kind, toy, channels, params=None):
    if kind == "identity":
        return Engine(IdentityCodec(), params=params, channels=channels)
    return Engine(toy, params=params, channels=channels, seed=3)


@pytest.mark.parametrize("kind", ["identity", "toy"])
@pytest.mark.parametrize("channels", [1, 2])
def test_random_block_sizes_match_one_call(kind, toy, channels):
    x = _signal(24000, channels)
    ref = _make(kind, toy, channels).process(x)
    eng = _make(kind, toy, channels)
    got = _random_blocks(eng, x, seed=channels)
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= 1e-6
    # fixed odd sizes too, after a reset of the same engine
    for n in (1, 37, 128):
        eng.reset()
        got = _fixed_blocks(eng, x[:6000], n)
        assert np.max(np.abs(got - ref[:6000])) <= 1e-6, n


@pytest.mark.parametrize("smear", [0.0, 1.0], ids=["no smear", "smear"])
def test_invariance_with_blur_and_knobs(toy, smear):
    """Zone > 0 (sampler, seeded), mix and a non-default centre (and the time smear): still
    invariant."""
    p = Params(zone_size=0.4, temperature=0.7, centre=0.3, mix=0.8, smear=smear)
    x = _signal(4000, 1, seed=5)
    ref = _make("toy", toy, 1, p).process(x)
    got = _random_blocks(_make("toy", toy, 1, p), x, seed=9)
    assert np.max(np.abs(got - ref)) <= 1e-6


def test_reset_restarts_identically(toy):
    x = _signal(4000, 1)
    eng = _make("toy", toy, 1, Params(zone_size=0.3))
    a = eng.process(x)
    eng.reset()
    b = eng.process(x)
    assert np.max(np.abs(a - b)) <= 1e-6
