"""Detail moving while the engine runs: the output still does not depend on how the stream is
cut into host blocks, the knob is smoothed per code column (one-pole, 20 ms: no click when it
jumps 0 -> 1), and it reaches its target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.core import CODEC_KNOB_TAU, Engine, Params

SR = 48000
#: (sample position, knob changes) -- applied at exactly these input positions
SCHEDULE = [(0, dict(detail=0.0, zone_size=0.3, temperature=0.6)), (7040, dict(detail=1.0)),
            (14000, dict(detail=0.35, zone_size=0.0)), (19001, dict(detail=0.8, zone_size=0.5))]


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * 330 * t) + 0.1 * np.sin(2 * np.pi * 1250 * t)
            + 0.03 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    return {"shipped": load_bundle(default_bundle_path()),
            "toy": load_bundle(make_toy_bundle(tmp_path_factory.mktemp("toy")))}


def _render(bundle, x, cuts):
    """Feed x in the blocks ``cuts`` (sizes), applying SCHEDULE at its sample positions."""
    eng = Engine(bundle, Params(**SCHEDULE[0][1]), seed=7)
    changes = dict(SCHEDULE[1:])
    out, i = [], 0
    for n in cuts:
        if i in changes:
            eng.set_params(**changes[i])
        out.append(eng.process(x[i : i + n]))
        i += n
    return np.concatenate(out)


def _cuts(total, rng):
    """Random block sizes 1..2000 that also cut at every SCHEDULE position."""
    marks = sorted({p for p, _ in SCHEDULE} | {total})
    cuts, i = [], 0
    for m in marks[1:]:
        while i < m:
            n = min(int(rng.integers(1, 2001)), m - i)
            cuts.append(n)
            i += n
    return cuts


@pytest.mark.parametrize("which", ["shipped", "toy"])
def test_block_size_invariance_with_detail_moving(bundles, which):
    x = _signal(24000)
    ref = _render(bundles[which], x, _cuts(len(x), np.random.default_rng(0)))
    for seed in (1, 2):
        got = _render(bundles[which], x, _cuts(len(x), np.random.default_rng(seed)))
        assert np.max(np.abs(got - ref)) <= 1e-6
    # ... and the detail changes did change the output
    still = Engine(bundles[which], Params(**SCHEDULE[0][1]), seed=7).process(x)
    assert np.max(np.abs(still[8000:] - ref[8000:])) > 1e-3


def test_detail_is_smoothed_per_column_and_reaches_its_target(bundles):
    eng = Engine(bundles["shipped"], Params(zone_size=0.0, detail=0.0))
    col = eng.config.column_samples
    x = _signal(SR)
    eng.process(x[: 10 * col])
    eng.set_params(detail=1.0)
    seen = []
    for i in range(10, 10 + 80):
        eng.process(x[i * col : (i + 1) * col])  # exactly one column per call
        seen.append(eng.knob("detail"))
    a = 1.0 - math.exp(-col / (CODEC_KNOB_TAU * SR))
    assert seen[0] == pytest.approx(a)  # one one-pole step, not a jump
    assert seen[1] == pytest.approx(a + a * (1 - a))
    assert all(b > s for s, b in zip(seen, seen[1:]) if s < 1.0)
    assert seen[-1] == 1.0  # snapped onto the target


def test_detail_step_does_not_click(bundles):
    """A hard switch between the detail-0 and detail-1 renders jumps; the knob does not."""
    t = np.arange(12000) / SR
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # the codec alone is not the input
    switch = 6027  # a peak of the sine: a hard level switch jumps there
    b = bundles["shipped"]
    y0 = Engine(b, Params(detail=0.0)).process(x)
    y1 = Engine(b, Params(detail=1.0)).process(x)

    def max_step(v):
        return float(np.max(np.abs(np.diff(v.astype(np.float64)))))

    eng = Engine(b, Params(detail=0.0))
    parts = [eng.process(x[:switch])]
    eng.set_params(detail=1.0)
    parts += [eng.process(x[i : i + 64]) for i in range(switch, len(x), 64)]
    y = np.concatenate(parts)
    steady = max(max_step(y0[2000:]), max_step(y1[2000:]))
    assert max_step(y[switch - 200 :]) <= 1.05 * steady
    # the two renders do differ where the knob moves (so there is something to smooth)
    assert np.max(np.abs(y0[switch - 200 : switch + 200] - y1[switch - 200 : switch + 200])) > 0.002
