"""stereo="independent": each channel is its own stream (own STFT history, codec state and
sampler), exactly the mono engine per channel."""

import numpy as np

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.core import Engine, Params


def test_channels_are_independent_streams_in_independent_mode(tmp_path):
    toy = make_toy_bundle(tmp_path / "toy")
    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal((6000, 3))).astype(np.float32)
    multi = Engine(toy, Params(zone_size=0.0), channels=3, stereo="independent").process(x)
    for ch in range(3):
        mono = Engine(toy, Params(zone_size=0.0)).process(x[:, ch])
        assert np.max(np.abs(multi[:, ch] - mono)) <= 1e-6
    # the codec's forks share the ONNX sessions, not the state
    eng = Engine(toy, channels=2, stereo="independent")
    assert eng.codecs[0]._s is eng.codecs[1]._s
    assert eng.codecs[0]._enc_bufs[0][0] is not eng.codecs[1]._enc_bufs[0][0]
    assert not np.shares_memory(eng.codecs[0]._dec_bufs[0][0], eng.codecs[1]._dec_bufs[0][0])
