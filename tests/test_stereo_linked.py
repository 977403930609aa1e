"""Linked stereo (the default for more than one channel): one analysis, one blur, the same change
on every channel. Each channel is exactly its own input at zone 0 / detail 1; with the blur on the
left/right level difference per band stays the input's; the output does not depend on the host
block size; and stereo="independent" is the mono engine per channel."""

from __future__ import annotations

import numpy as np
import pytest

from vqblur.common.recordings import test_set as real_test_set
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.core import Engine, Params
from vqblur.measure.playability import mel_filterbank, mel_power
from vqblur.training.data.folder import read_mono

SR = 48000


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(default_bundle_path())


@pytest.fixture(scope="module")
def panned():
    """Two different held-out real recordings, panned apart: [n, 2]."""
    recs = real_test_set()
    if len(recs) < 2:
        pytest.skip("the packaged recordings are not installed")
    a = read_mono(recs[3].path, SR)[0][: 2 * SR]
    b = read_mono(recs[-4].path, SR)[0][: 2 * SR]
    n = min(len(a), len(b))
    a, b = a[:n] / np.abs(a[:n]).max(), b[:n] / np.abs(b[:n]).max()
    return (0.5 * np.stack([a + 0.25 * b, 0.25 * a + b], axis=1)).astype(np.float32)


def test_linked_is_the_default_and_runs_one_stream(bundle):
    eng = Engine(bundle, channels=2)
    assert eng.linked and len(eng.codecs) == 1 and len(eng.samplers) == 1
    assert not Engine(bundle).linked  # mono: nothing to link
    assert len(Engine(bundle, channels=2, stereo="independent").codecs) == 2
    with pytest.raises(ValueError):
        Engine(bundle, channels=2, stereo="wide")


def test_linked_zone0_detail1_is_each_channels_own_input(bundle, panned):
    eng = Engine(bundle, Params(zone_size=0.0, detail=1.0), channels=2)
    y = eng.render(panned)
    D = eng.latency_samples
    assert np.max(np.abs(y - panned)) < 2e-6
    assert D == Engine(bundle).latency_samples


def test_linked_blur_keeps_the_stereo_image(bundle, panned):
    eng = Engine(bundle, Params(zone_size=0.3, centre=0.5, temperature=0.5, detail=1.0), channels=2, seed=1)
    y = eng.render(panned)
    fb, _ = mel_filterbank(SR)
    px = [mel_power(panned[:, c], fb) for c in range(2)]
    py = [mel_power(y[:, c], fb) for c in range(2)]
    floor = 10 * np.log10(max(px[0].max(), px[1].max())) - 60  # cells with sound in both
    ok = (10 * np.log10(np.minimum(px[0], px[1]) + 1e-20) > floor)
    ix = 10 * np.log10((px[0] + 1e-20) / (px[1] + 1e-20))
    iy = 10 * np.log10((py[0] + 1e-20) / (py[1] + 1e-20))
    assert np.median(np.abs(iy - ix)[ok]) <= 0.5
    # and the blur changed the sound (the image test is not about a bypass)
    change = np.median(np.abs(10 * np.log10((py[0] + 1e-20) / (px[0] + 1e-20)))[ok])
    assert change > 0.5
    # independent channels smear it more
    ind = Engine(bundle, Params(zone_size=0.3, centre=0.5, temperature=0.5, detail=1.0), channels=2,
                 seed=1, stereo="independent").render(panned)
    pi = [mel_power(ind[:, c], fb) for c in range(2)]
    ii = 10 * np.log10((pi[0] + 1e-20) / (pi[1] + 1e-20))
    assert np.median(np.abs(ii - ix)[ok]) > np.median(np.abs(iy - ix)[ok])


@pytest.mark.parametrize("stereo", ["linked", "independent"])
def test_stereo_block_size_invariance_with_moving_knobs(bundle, panned, stereo):
    x = panned[: SR // 2]
    cut = len(x) // 2 + 13  # the knobs move here, whatever the block size

    def run(block):
        eng = Engine(bundle, Params(zone_size=0.1), channels=2, seed=2, stereo=stereo)
        out = [eng.process(x[a:min(a + block, cut)]) for a in range(0, cut, block)]
        eng.set_params(zone_size=0.4, centre=0.3, temperature=0.8)
        out += [eng.process(x[a:a + block]) for a in range(cut, len(x), block)]
        return np.concatenate(out)

    ref = run(4096)
    for block in (1, 37, 128):
        assert np.array_equal(run(block), ref)


def test_independent_is_the_mono_engine_per_channel(bundle, panned):
    p = Params(zone_size=0.3, centre=0.4, temperature=0.6)
    x = panned[: SR // 2]
    eng = Engine(bundle, p, channels=2, seed=5, stereo="independent")
    assert eng._streams is not None  # both channels' decoder streams in one run per column
    y = eng.render(x)
    for ch in range(2):
        mono = Engine(bundle, p, seed=5 + 1_000_003 * ch).render(x[:, ch])
        assert np.array_equal(y[:, ch], mono)
