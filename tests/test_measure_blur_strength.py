"""Blur strength: the zone's frequency bands lie on the perceptual knob axis (as the engine
places them), and on the shipped bundle the blur changes them much more than the rest of the
spectrum."""

from __future__ import annotations

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.measure.quality import blur_strength, zone_bins


def test_zone_bins_follow_the_perceptual_axis(tmp_path):
    from vqblur.engine.knobs import centre_hz

    b = load_bundle(make_toy_bundle(tmp_path / "toy"))  # 160 model bins x 150 Hz
    freqs = np.arange(1025) * 48000 / 2048
    f_max = 159 * 150.0
    inside, model = zone_bins(b, 0.25, 0.5)
    # weight >= 1/2: the core (half of the half-height) plus sqrt(2 ln 2) of the edge's sigma
    half = 0.25 * (0.5 + 0.25 * np.sqrt(2 * np.log(2)))
    lo, hi = centre_hz(0.5 - half, f_max), centre_hz(0.5 + half, f_max)
    got = freqs[inside]
    assert abs(got.min() - lo) < 24 and abs(got.max() - hi) < 24 and inside[(freqs > lo) & (freqs < hi)].all()
    assert 700 < lo < 800 and 5500 < hi < 6000  # about 740 Hz .. 5.8 kHz around 2.2 kHz
    assert np.array_equal(model, freqs < 23925)  # Nyquist lies above the model's bins
    assert not zone_bins(b, 0.0, 0.5)[0].any()
    low, _ = zone_bins(b, 0.1, 0.1)  # centre 0.1 (~150 Hz): weight >= 1/2 from ~25 to ~317 Hz
    assert low[(freqs > 30) & (freqs < 300)].all() and not low[freqs > 330].any()


def test_inside_changes_more_than_outside_on_the_shipped_bundle():
    import importlib.resources

    import soundfile as sf

    clip = importlib.resources.files("vqblur.presets") / "clips" / "demo.wav"
    a, sr = sf.read(str(clip), dtype="float32")
    b = load_bundle(default_bundle_path())
    if not b.manifest.get("nb"):
        pytest.skip("no NB table")
    pts = blur_strength(b, a[: sr], (0.0, 0.25), {})
    z0, z = pts
    assert z0["outside_db"] == 0.0 and z0["inside_db"] is None
    assert z["inside_db"] > 2.0 and z["inside_db"] > 3 * z["outside_db"]
