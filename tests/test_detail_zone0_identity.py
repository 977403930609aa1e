"""Detail 1 with zone 0: the output is the input delayed by the declared latency, on the
shipped bundle and on the toy one, mono and stereo, any block size (below the limiter's knee).

Why this tolerance: with b == c the engine decodes once, so ``dec(b) + (L_in - dec(c))`` is
``L_in`` up to float64 rounding (~1e-15); the STFT/OLA runs in float64 and reconstructs to
~1e-15; the output is then cast to float32. So the error is at most one float32 rounding of
a sample: half an ulp, ``2**-25`` for samples below 0.5 (and ``2**-24`` below the knee)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.core import LIMIT_KNEE, Engine, Params

SR = 48000
ULP_BELOW_KNEE = 2.0 ** -24  # a float32 ulp for |x| in [0.5, 1)


def _signal(n, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = (0.35 * np.sin(2 * np.pi * 196 * t)[:, None] * (1 + 0.3 * np.sin(2 * np.pi * 2.5 * t))[:, None]
         + 0.08 * rng.standard_normal((n, channels)))
    x *= 0.85 * LIMIT_KNEE / np.abs(x).max()  # loud, but below the knee
    return x.astype(np.float32) if channels > 1 else x[:, 0].astype(np.float32)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    return {"shipped": load_bundle(default_bundle_path()),
            "toy": load_bundle(make_toy_bundle(tmp_path_factory.mktemp("toy")))}


@pytest.mark.parametrize("which", ["shipped", "toy"])
@pytest.mark.parametrize("channels", [1, 2])
def test_zone0_detail1_is_the_delayed_input(bundles, which, channels):
    x = _signal(SR // 2, channels)
    eng = Engine(bundles[which], Params(zone_size=0.0, detail=1.0), channels=channels, seed=2)
    D = eng.latency_samples
    rng = np.random.default_rng(channels)
    out, i = [], 0
    while i < len(x):  # random host blocks
        n = int(rng.integers(1, 1500))
        out.append(eng.process(x[i : i + n]))
        i += n
    y = np.concatenate(out)
    assert y.shape == x.shape
    assert np.all(y[:D] == 0.0)
    err = np.max(np.abs(y[D:] - x[: len(x) - D]))
    assert err <= ULP_BELOW_KNEE, err


def test_zone0_detail0_is_not_the_input(bundles):
    """The check above can fail: the codec alone (detail 0) is far from the input."""
    x = _signal(SR // 4)
    eng = Engine(bundles["shipped"], Params(zone_size=0.0, detail=0.0))
    D = eng.latency_samples
    y = eng.process(x)
    assert np.max(np.abs(y[D:] - x[: len(x) - D])) > 1e-2
