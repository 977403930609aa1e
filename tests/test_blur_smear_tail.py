"""A smeared tail into digital silence: a one-shot whose file ends (or is padded) with zeros.

The engine's synthesis keeps the input's phases; digital silence has none, and phase 0 puts a
frame's energy at its first sample, where the synthesis window is 0. With the smear knob up the
analysis carries each silent bin's phase on from its last frame (``StreamingStft.carry_phase``),
so the tail the smear paints rings on: the short one-shots of the held-out recordings, with
1 s of zeros after them (what ``vqblur process --tail`` renders), keep their energy. Where the
input sounds, the carry changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vqblur.common.recordings import test_set as real_test_set
from vqblur.engine.blur.shaping import SMEAR_TAU
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.core import Engine
from vqblur.engine.dsp import SignalConfig, StreamingStft
from vqblur.measure import playability as P
from vqblur.training.data.folder import read_mono

SR = 48000
BASE = {"zone_size": 0.3, "centre": 0.5, "temperature": 0.5, "detail": 1.0, "scale": 0.0, "smear": 1.0}
DECAY_DB = 10 * np.log10(np.e) * 0.8 / SMEAR_TAU  # a power one-pole's fall over 0.8 s
SETTINGS = [dict(BASE, zone_size=0.1, centre=0.15), dict(BASE), dict(BASE, zone_size=1.0, temperature=0.9)]


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(default_bundle_path())


@pytest.fixture(scope="module")
def one_shots():
    recs = [r for r in real_test_set() if sf.info(r.path).duration < 0.2]
    if len(recs) < 3:
        pytest.skip("the packaged recordings are not installed")
    return [(r.name, np.concatenate([P.normalise(read_mono(r.path, SR)[0]), np.zeros(SR, np.float32)]))
            for r in recs]


def _stft(bundle) -> StreamingStft:
    return StreamingStft(SignalConfig.from_bundle(bundle), 1, 1024)


def test_one_shots_keep_their_energy_with_the_smear_tail(bundle, one_shots):
    eng = Engine(bundle, seed=0)
    levels = []
    for s in SETTINGS:
        for name, x in one_shots:
            y = P.render(eng, x, s)
            assert np.all(np.isfinite(y))
            levels.append(10 * np.log10(np.sum(np.square(y, dtype=np.float64)) / np.sum(np.square(x, dtype=np.float64))))
            end = len(x) - SR  # the tail rings down at the one-pole's rate (30 dB/s at 150 ms)
            early, late = (np.sqrt(np.mean(np.square(y[a:a + SR // 5], dtype=np.float64)))
                           for a in (end, end + 4 * SR // 5))
            assert 20 * np.log10(early / late) >= 0.75 * DECAY_DB, name
    levels = np.array(levels)
    assert np.abs(levels).max() <= 1.5, levels.round(2)  # phase 0 lost up to 6.5 dB here
    assert np.median(np.abs(levels)) <= 0.5, levels.round(2)


def test_the_carry_leaves_sounding_input_alone(bundle):
    """Input without exact zeros: the analysis and the synthesis are bit-identical with the
    carry on."""
    x = (np.random.default_rng(1).normal(0, 0.1, (4000, 1))).astype(np.float64)
    outs = []
    for carry in (False, True):
        st = _stft(bundle)
        st.carry_phase = carry
        st.push(x)
        lms, spec = [], []
        while st.column_ready():
            lm = st.analyse_column()
            lms.append(lm.copy())
            spec.append(st._spec.copy())
            st.synthesise_column(lm + 0.1)
        outs.append((np.array(lms), np.array(spec), st.pull(st.available())))
    for a, b in zip(*outs):
        assert np.array_equal(a, b)


def test_a_band_painted_into_silence_comes_out_as_its_bins_tones(bundle):
    """Digital silence in, a band of bins given a steady magnitude: with the carry the output
    is steady and lies in that band; with phase 0 (carry off) the frames are pulses at their
    first sample, where the synthesis window is 0, and nearly all of it is lost."""
    band = slice(18, 26)  # 2.7 - 3.75 kHz
    rms = {}
    for carry in (True, False):
        st = _stft(bundle)
        st.carry_phase = carry
        st.push(np.zeros((SR // 2, 1)))
        while st.column_ready():
            lm = st.analyse_column().copy()
            lm[..., band] = 0.0  # |X| = 1 in the band, every frame
            st.synthesise_column(lm)
        y = st.pull(st.available())[SR // 10:, 0]
        rms[carry] = float(np.sqrt(np.mean(y ** 2)))
        if carry:
            spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
            f = np.fft.rfftfreq(len(y), 1 / SR)
            lo, hi = (band.start - 0.5) * SR / st.N, (band.stop - 0.5) * SR / st.N
            assert spec[(f >= lo) & (f <= hi)].sum() > 0.99 * spec.sum()
            quarters = np.sqrt(np.mean(y[: len(y) // 4 * 4].reshape(4, -1) ** 2, axis=1))
            assert 20 * np.log10(quarters.max() / quarters.min()) < 0.2  # steady
    assert rms[True] > 0.0 and rms[False] < 0.2 * rms[True], rms  # 19 dB lost


def _analysis_peak(bundle, carry: bool) -> int:
    """The largest transient allocation of one ``analyse_column`` over sound then digital
    silence, in bytes."""
    import tracemalloc

    st = _stft(bundle)
    st.carry_phase = carry
    st.push(np.random.default_rng(2).normal(0, 0.1, (3000, 1)))
    st.push(np.zeros((3000, 1)))
    for _ in range(3):
        st.synthesise_column(st.analyse_column())
    tracemalloc.start()
    peak = 0
    try:
        while st.column_ready():
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            lm = st.analyse_column()
            peak = max(peak, tracemalloc.get_traced_memory()[1] - base)
            st.synthesise_column(lm)
    finally:
        tracemalloc.stop()
    return peak


def test_the_carry_allocates_no_buffers(bundle):
    """The carry works in preallocated buffers (it runs per column in the audio callback): it
    adds at most numpy's small ufunc state to the analysis (one [channels, bins] buffer would
    be 2.6 kB)."""
    off, on = _analysis_peak(bundle, False), _analysis_peak(bundle, True)
    assert on - off < 1024, (on, off)
