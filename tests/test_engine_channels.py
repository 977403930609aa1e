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


def test_independent_blur_on_equals_mono_engines_batched_or_not(tmp_path):
    """With the blur on, an independent 3-channel engine is three mono engines with the seeds
    seed + 1_000_003 * channel, bit for bit, whether its decoder streams run in one batched run
    (a decoder with a dynamic batch: ``engine._streams``) or a channel at a time (fixed batch);
    encode_codes gives each channel's mono grid."""
    import pytest

    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal((9000, 3))).astype(np.float32)
    p = Params(zone_size=0.3, temperature=0.6, centre=0.4)
    for dynamic in (True, False):
        toy = make_toy_bundle(tmp_path / f"toy{dynamic}", dynamic_batch=dynamic)
        eng = Engine(toy, p, channels=3, seed=7, stereo="independent")
        assert (eng._streams is not None) == dynamic
        y = eng.render(x, block=256)
        grids = eng.encode_codes(x)
        for ch in range(3):
            mono = Engine(toy, p, seed=7 + 1_000_003 * ch)
            assert np.array_equal(y[:, ch], mono.render(x[:, ch], block=256)), (dynamic, ch)
            assert np.array_equal(grids[ch], mono.encode_codes(x[:, ch])[0])
        if not dynamic:
            continue
        with pytest.raises(AssertionError):  # the test can fail: the seeds matter
            assert np.array_equal(y[:, 1], Engine(toy, p, seed=7).render(x[:, 1], block=256))
