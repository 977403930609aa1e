"""Codec v5's split framing (vqblur.common.framing, vqblur.engine.split_stft): model bins 37.5 Hz
apart below 1.5 kHz (a 1280-sample asymmetric window) and 150 Hz apart above (the 320-sample
window), resynthesised as the input plus each path's change: the input comes back bit for bit
at the v3 latency, a change lands where its bins are, and the crossover is seamless."""

import numpy as np
import pytest

from vqblur.engine.codec import IdentityCodec
from vqblur.engine.core import Engine
from vqblur.engine.dsp import SignalConfig
from vqblur.engine.split_stft import SplitStft, make_stft

from tests.stft_stream import cut, level_db, stream, tone

V5 = SignalConfig(model_bins=190, long_n_fft=1280, crossover_hz=1500.0)


@pytest.mark.parametrize("channels", [1, 2])
def test_unchanged_bins_give_the_input_back_exactly_at_the_v3_latency(channels):
    assert V5.latency_samples == 399
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (12000, channels))
    y = stream(V5, x)
    assert np.abs(y[:399]).max() == 0.0
    assert np.abs(y[399:] - x[:-399]).max() < 1e-12


def test_the_engine_runs_the_split_framing():
    assert isinstance(make_stft(V5), SplitStft)
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 9000).astype(np.float32)
    eng = Engine(IdentityCodec(V5))
    assert eng.latency_samples == 399
    assert np.abs(eng.process(x)[399:] - x[:-399]).max() <= 1e-6
    f = eng.zone.bin_hz
    assert f[39] == 1462.5 and f[40] == 1500.0 and f[-1] == 23850.0 and len(f) == 190


def _peak_bin(f: float) -> int:
    st = make_stft(V5, 1)
    st.push(tone(f)[:, None])
    for _ in range(40):
        lm = st.analyse_column()
    return int(np.argmax(lm[0, -1]))


def test_model_bins_are_fine_below_the_crossover_and_v3s_above():
    for f in (75.0, 112.5, 187.5, 1012.5):
        assert _peak_bin(f) == round(f / 37.5)
    for f in (3000.0, 9000.0):
        assert _peak_bin(f) == 40 + round(f / 150.0) - 10


@pytest.mark.parametrize("band, hit, kept", [((3, 7), 150.0, 300.0), ((7, 10), 300.0, 150.0),
                                             ((68, 73), 6000.0, 3000.0)],
                         ids=["112-225 Hz", "262-337 Hz", "5.7-6.3 kHz"])
def test_a_change_lands_where_its_bins_are(band, hit, kept):
    x = (0.3 * tone(hit) + 0.3 * tone(kept))[:, None]
    y = stream(V5, x, cut(*band))[399:, 0]
    ref = level_db(x[:, 0], kept)
    assert level_db(y, hit) < ref - 12.0
    assert abs(level_db(y, kept) - ref) < 1.0


@pytest.mark.parametrize("f", [1200.0, 1425.0, 1500.0, 1575.0, 1800.0])
def test_the_crossover_is_seamless(f):
    """A 6 dB cut on every model bin comes out as 6 dB at tones across the crossover."""
    x = (0.3 * tone(f))[:, None]
    y = stream(V5, x, cut(0, 190, 6.0))[399:, 0]
    assert level_db(y, f) - level_db(x[:, 0], f) == pytest.approx(-6.0, abs=0.3)
