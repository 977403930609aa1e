"""At detail 1 the blur changes the zone and leaves the rest of the spectrum alone, and the zone
keeps its level (shipped bundle, the bundled demo clip). Against the zone-0 output (= the
input), frame by frame at the model's bins (an 80 dB range): inside the zone (weight >= 1/2 on the perceptual
axis) the spectrum moves by more than 3 dB on average; outside it (weight 0, two bins clear of
its edge) by less than 0.5 dB; and the zone's energy over the clip stays within 1 dB (blur v2
is level-true)."""

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


def _frames_db(y: np.ndarray, cfg) -> np.ndarray:
    """Power (dB) per frame and model bin: [frames, model_bins]."""
    N, R, mb = cfg.n_fft, cfg.hop, cfg.model_bins
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), N)[::R] * sqrt_hann(N)
    return 10 * np.log10(np.abs(np.fft.rfft(frames, axis=-1))[:, :mb] ** 2 + 1e-12)


@pytest.mark.parametrize("zone,centre", [(0.25, 0.5), (0.15, 0.5)])
def test_blur_at_detail1_changes_the_zone_and_only_the_zone(setup, zone, centre):
    bundle, x = setup
    eng = Engine(bundle)
    cfg = eng.config
    ref = _render(bundle, x, Params(zone_size=0.0, detail=1.0))
    D = eng.latency_samples
    assert np.max(np.abs(ref[: len(x) - D] - x[: len(x) - D])) < 1e-6  # zone 0 = the input
    y = _render(bundle, x, Params(zone_size=zone, temperature=0.5, centre=centre, detail=1.0))
    eng.zone.update(zone, centre)
    w = eng.zone.bin_weight
    inside = w >= 0.5
    near = np.convolve((w > 0).astype(float), np.ones(5), "same") > 0  # the zone and 2 bins around
    outside = ~near
    assert inside.sum() >= 10 and outside.sum() >= 20
    P0, P1 = _frames_db(ref, cfg), _frames_db(y, cfg)
    floor = P0.max() - 80.0  # an 80 dB range, as the playability figures use
    loud = P0.max(axis=1) > P0.max() - 60  # frames with something in them
    change = np.abs(np.maximum(P1, floor) - np.maximum(P0, floor))[loud]
    assert change[:, inside].mean() > 3.0, change.mean(axis=0)
    assert change[:, outside].mean() < 0.5, change.mean(axis=0)
    zone_bins = w > 0  # the level is held over the zone (its bands' zone part), edges included
    e0 = np.sum(10 ** (P0[:, zone_bins] / 10))
    e1 = np.sum(10 ** (P1[:, zone_bins] / 10))
    assert abs(10 * np.log10(e1 / e0)) < 1.0
