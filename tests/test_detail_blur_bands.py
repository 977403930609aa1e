"""At detail 1 the blur changes the zone's bands and leaves the rest of the spectrum alone
(shipped bundle, the bundled demo clip): the long-term level of each band (one code row = 8
model bins) against the zone-0 output (= the input) moves by more than 3 dB on average over
the zone's core rows, and by less than 0.5 dB on average over the rows outside the zone."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
import soundfile as sf

from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.core import Engine, Params
from vqblur.engine.dsp import sqrt_hann


@pytest.fixture(scope="module")
def setup():
    bundle = load_bundle(default_bundle_path())
    clip = importlib.resources.files("vqblur.presets") / "clips" / "demo.wav"
    x, sr = sf.read(str(clip), dtype="float32", always_2d=True)
    return bundle, x[: 2 * sr, 0].copy()


def _render(bundle, x, p: Params) -> np.ndarray:
    eng = Engine(bundle, p, seed=3)
    D = eng.latency_samples
    return eng.process(np.concatenate([x, np.zeros(D, np.float32)]))[D:]


def _band_levels(y: np.ndarray, cfg) -> np.ndarray:
    """Long-term level (dB) of each code row's band: [rows]."""
    N, R, mb = cfg.n_fft, cfg.hop, cfg.model_bins
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), N)[::R] * sqrt_hann(N)
    P = np.abs(np.fft.rfft(frames, axis=-1))[:, :mb] ** 2
    return 10 * np.log10(P.reshape(len(P), cfg.rows, mb // cfg.rows).sum(-1).mean(0) + 1e-12)


@pytest.mark.parametrize("zone,centre", [(0.25, 0.5), (0.15, 0.5)])
def test_blur_at_detail1_changes_the_zone_and_only_the_zone(setup, zone, centre):
    bundle, x = setup
    eng = Engine(bundle)
    cfg = eng.config
    ref = _render(bundle, x, Params(zone_size=0.0, detail=1.0))
    D = eng.latency_samples
    assert np.max(np.abs(ref[: len(x) - D] - x[: len(x) - D])) < 1e-6  # zone 0 = the input
    y = _render(bundle, x, Params(zone_size=zone, temperature=0.5, centre=centre, detail=1.0))
    change = np.abs(_band_levels(y, cfg) - _band_levels(ref, cfg))
    h, c = zone * cfg.rows, centre * (cfg.rows - 1)
    d = np.abs(np.arange(cfg.rows) - c)
    core, outside = d <= h / 2, d >= h  # the zone's core (resampled for sure); never resampled
    assert core.sum() >= 3 and outside.sum() >= 8
    assert change[core].mean() > 3.0, change
    assert change[outside].mean() < 0.5, change
