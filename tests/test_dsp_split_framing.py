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

SR = 48000
V5 = SignalConfig(model_bins=190, long_n_fft=1280, crossover_hz=1500.0)


def _run(x: np.ndarray, edit=None, blocks=(17, 500, 4096, 33, 1000)) -> np.ndarray:
    """x [n, C] through the split STFT in uneven host blocks; ``edit(logmag)`` changes each
    column's model log-magnitudes [C, F, 190] in place."""
    st = make_stft(V5, x.shape[1])
    assert isinstance(st, SplitStft)
    out, pos, i = [], 0, 0
    while pos < len(x):
        n = min(blocks[i % len(blocks)], len(x) - pos)
        st.push(x[pos:pos + n])
        pos, i = pos + n, i + 1
        while st.column_ready():
            lm = st.analyse_column().copy()
            if edit is not None:
                edit(lm)
            st.synthesise_column(lm, measure_levels=True)
            if edit is None:
                assert np.allclose(st.level_out, st.level_in, rtol=1e-12, atol=1e-20)
        out.append(st.pull(n))
    return np.concatenate(out)


@pytest.mark.parametrize("channels", [1, 2])
def test_unchanged_bins_give_the_input_back_exactly_at_the_v3_latency(channels):
    assert V5.latency_samples == 399
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (12000, channels))
    y = _run(x)
    assert np.abs(y[:399]).max() == 0.0
    assert np.abs(y[399:] - x[:-399]).max() < 1e-12


def test_the_engine_runs_the_split_framing():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 9000).astype(np.float32)
    eng = Engine(IdentityCodec(V5))
    assert eng.latency_samples == 399
    assert np.abs(eng.process(x)[399:] - x[:-399]).max() <= 1e-6
    f = eng.zone.bin_hz
    assert f[39] == 1462.5 and f[40] == 1500.0 and f[-1] == 23850.0 and len(f) == 190


def _tone(f: float, n: int = 24000) -> np.ndarray:
    return np.sin(2 * np.pi * f * np.arange(n) / SR)


def _peak_bin(f: float) -> int:
    st = make_stft(V5, 1)
    st.push(_tone(f)[:, None])
    for _ in range(40):
        lm = st.analyse_column()
    return int(np.argmax(lm[0, -1]))


def test_model_bins_are_fine_below_the_crossover_and_v3s_above():
    for f in (75.0, 112.5, 187.5, 1012.5):
        assert _peak_bin(f) == round(f / 37.5)
    for f in (3000.0, 9000.0):
        assert _peak_bin(f) == 40 + round(f / 150.0) - 10


def _level_db(y: np.ndarray, f: float) -> float:
    seg = y[6000:6000 + 19200]
    return 20 * np.log10(abs(np.dot(seg, np.exp(-2j * np.pi * f * np.arange(len(seg)) / SR))) / len(seg) * 2)


def _cut(lo: int, hi: int, db: float = 40.0):
    def edit(lm):
        lm[..., lo:hi] -= db / 8.685889638065035
    return edit


@pytest.mark.parametrize("band, hit, kept", [((3, 7), 150.0, 300.0), ((7, 10), 300.0, 150.0),
                                             ((68, 73), 6000.0, 3000.0)],
                         ids=["112-225 Hz", "262-337 Hz", "5.7-6.3 kHz"])
def test_a_change_lands_where_its_bins_are(band, hit, kept):
    x = (0.3 * _tone(hit) + 0.3 * _tone(kept))[:, None]
    y = _run(x, _cut(*band))[399:, 0]
    ref = _level_db(x[:, 0], kept)
    assert _level_db(y, hit) < ref - 12.0
    assert abs(_level_db(y, kept) - ref) < 1.0


@pytest.mark.parametrize("f", [1200.0, 1425.0, 1500.0, 1575.0, 1800.0])
def test_the_crossover_is_seamless(f):
    """A 6 dB cut on every model bin comes out as 6 dB at tones across the crossover."""
    x = (0.3 * _tone(f))[:, None]
    y = _run(x, _cut(0, 190, 6.0))[399:, 0]
    assert _level_db(y, f) - _level_db(x[:, 0], f) == pytest.approx(-6.0, abs=0.3)
