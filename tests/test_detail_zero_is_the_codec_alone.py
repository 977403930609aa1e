"""Detail 0 is the codec alone (with its level held to the input's per band: that hold has its
own test, tests/test_detail_zero_holds_the_level.py). With the zone shut and the hold off
(``hold_codec_level=False``) it gives exactly (bit for bit) what the engine gave before the
detail knob: the codes through one decoder stream, nothing else (the reference is the same
Engine driving a codec with no second stream: its ``decode_pair`` decodes once and returns
that twice); with the hold on, the two engines agree too (the hold reads only the input and
that resynthesis). With the zone open, blur v2 adds the blur's change to that resynthesis
level-true: the output is as loud as the zone-0 codec output (within 1.5 dB), where the
pre-v2 ``out = decode(blurred codes)`` was not."""

from __future__ import annotations

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.codec import OnnxCodec
from vqblur.engine.core import Engine, Params

SR = 48000


class SingleStream:
    """The codec interface as it was: one decoder stream (``decode``) and nothing else."""

    def __init__(self, inner: OnnxCodec):
        self.inner = inner
        self.config = inner.config
        self.bundle = inner.bundle

    def encode(self, logmag):
        return self.inner.encode(logmag)

    def decode_pair(self, blurred, clean):
        y = self.inner.decode(blurred)
        return y, y

    def reset(self):
        self.inner.reset()

    def fork(self):
        return SingleStream(self.inner.fork())


def _signal(n, channels, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = 0.3 * np.sin(2 * np.pi * 247 * t)[:, None] + 0.06 * rng.standard_normal((n, channels))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    return {"shipped": load_bundle(default_bundle_path()),
            "toy": load_bundle(make_toy_bundle(tmp_path_factory.mktemp("toy")))}


@pytest.mark.parametrize("which", ["shipped", "toy"])
@pytest.mark.parametrize("knobs", [dict(zone_size=0.0, mix=0.8), dict(zone_size=0.0, temperature=0.9)],
                         ids=["zone0-mix", "zone0-temperature"])
@pytest.mark.parametrize("hold", [False, True], ids=["codec-level", "level-held"])
def test_detail0_equals_one_decoder_stream(bundles, which, knobs, hold):
    channels = 2
    x = _signal(SR // 2, channels)
    p = Params(detail=0.0, **knobs)
    new = Engine(bundles[which], p, channels=channels, seed=4, hold_codec_level=hold)
    old = Engine(SingleStream(OnnxCodec(bundles[which])), p, channels=channels, seed=4,
                 hold_codec_level=hold)
    y_new = np.concatenate([new.process(x[i : i + 480]) for i in range(0, len(x), 480)])
    y_old = np.concatenate([old.process(x[i : i + 480]) for i in range(0, len(x), 480)])
    assert np.array_equal(y_new, y_old)
    # and the test can tell: at detail 1 the same knobs give another output
    one = Engine(bundles[which], p.replace(detail=1.0), channels=channels, seed=4).process(x)
    assert np.max(np.abs(one - y_old)) > 1e-3


@pytest.mark.parametrize("zone", [0.2, 0.4, 1.0])
def test_detail0_blur_keeps_the_codecs_level(bundles, zone):
    x = _signal(SR, 1)[:, 0]
    codec = Engine(bundles["shipped"], Params(detail=0.0, zone_size=0.0), seed=4).process(x)
    blurred = Engine(bundles["shipped"], Params(detail=0.0, zone_size=zone, temperature=0.7, centre=0.4),
                     seed=4).process(x)
    skip = SR // 10  # past the first knob and level windows
    level = 10 * np.log10(np.mean(blurred[skip:] ** 2) / np.mean(codec[skip:] ** 2))
    assert abs(level) < 1.5, level  # one synthetic signal: within the grid's worst-case bound (3 dB), by half
    assert np.max(np.abs(blurred - codec)) > 1e-3  # and the blur did something
