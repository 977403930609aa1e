"""Linked stereo below detail 1 keeps each channel's own level per band (engine/balance.py): the
codec resynthesises the channels' shared analysis, and without the balance every channel played
it -- a source panned 20 dB to the left came out 17 dB louder on the right at detail 0, and the
left/right difference per mel band was 12-20 dB off the input's. Identical channels are the mono
engine; a silent channel stays silent."""

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


def _db(p):
    return 10 * np.log10(p + 1e-20)


@pytest.fixture(scope="module")
def pairs():
    """Three pairs of held-out real recordings (1.5 s each), peak-normalised: [(a, b)]."""
    recs = real_test_set()
    if len(recs) < 8:
        pytest.skip("the packaged recordings are not installed")
    out = []
    for i, j in ((3, -4), (0, 5), (7, -1)):
        a = read_mono(recs[i].path, SR)[0][: 3 * SR // 2]
        b = read_mono(recs[j].path, SR)[0][: 3 * SR // 2]
        n = min(len(a), len(b))
        out.append((a[:n] / np.abs(a[:n]).max(), b[:n] / np.abs(b[:n]).max()))
    return out


def _image_and_levels(x, y):
    """(median |output's L/R difference - input's| over mel cells with sound in both channels,
    each channel's level change in dB)."""
    fb, _ = mel_filterbank(SR)
    px = [mel_power(x[:, c], fb) for c in range(2)]
    py = [mel_power(y[:, c], fb) for c in range(2)]
    ok = _db(np.minimum(px[0], px[1])) > _db(max(px[0].max(), px[1].max())) - 60
    err = np.abs((_db(py[0]) - _db(py[1])) - (_db(px[0]) - _db(px[1])))[ok]
    return float(np.median(err)), [float(_db(py[c].sum()) - _db(px[c].sum())) for c in range(2)]


@pytest.mark.parametrize("mix", ["two-sources", "panned-left"])
@pytest.mark.parametrize("detail,zone", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.3)])
def test_linked_below_detail_1_keeps_the_image(bundle, pairs, mix, detail, zone):
    for a, b in pairs:
        if mix == "two-sources":  # each source mostly on its own side
            x = 0.5 * np.stack([a + 0.25 * b, 0.25 * a + b], axis=1)
        else:  # one source, 20 dB lower on the right
            x = 0.5 * np.stack([a, 0.1 * a], axis=1)
        x = x.astype(np.float32)
        y = Engine(bundle, Params(zone_size=zone, centre=0.5, detail=detail), channels=2, seed=3).render(x)
        image, levels = _image_and_levels(x, y)
        # before the balance: 12-20 dB at detail 0, 6-10 dB at 0.5; each channel up to +17 dB
        assert image <= 1.0, (mix, detail, zone, image, levels)
        assert max(abs(v) for v in levels) <= 1.0, (mix, detail, zone, image, levels)


def test_identical_channels_are_the_mono_engine(bundle, pairs):
    a = pairs[0][0].astype(np.float32)
    p = Params(zone_size=0.3, centre=0.4, detail=0.0)
    y = Engine(bundle, p, channels=2, seed=4).render(np.stack([a, a], axis=1))
    mono = Engine(bundle, p, seed=4).render(a)
    assert np.array_equal(y[:, 0], y[:, 1])
    assert np.max(np.abs(y[:, 0] - mono)) < 1e-5


def test_a_silent_channel_stays_silent(bundle, pairs):
    a = pairs[1][0].astype(np.float32)
    x = np.stack([0.5 * a, np.zeros_like(a)], axis=1)
    y = Engine(bundle, Params(detail=0.0), channels=2).render(x)
    left, right = float(np.sum(y[:, 0] ** 2)), float(np.sum(y[:, 1] ** 2))
    assert abs(_db(left) - _db(float(np.sum(x[:, 0] ** 2)))) <= 1.0
    assert right <= 1e-8 * left  # at least 80 dB down (it played the mid: 3 dB below the left)
