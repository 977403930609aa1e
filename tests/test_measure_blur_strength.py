"""Blur strength: the zone's frequency bands are the code rows the sampler may resample, and on
the shipped bundle the blur changes them much more than the rest of the spectrum."""

from __future__ import annotations

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.measure.quality import blur_strength, zone_bins


def test_zone_bins_follow_the_rows(tmp_path):
    b = load_bundle(make_toy_bundle(tmp_path / "toy"))  # 20 rows of 8 bins x 150 Hz = 1.2 kHz
    freqs = np.arange(1025) * 48000 / 2048
    inside, rows = zone_bins(b, 0.25, 0.5)  # centre row 9.5, half-height 5 -> rows 5..14
    assert np.array_equal(inside, (freqs >= 6000) & (freqs < 18000))
    assert np.array_equal(rows, freqs < 24000)  # Nyquist lies above the model's rows
    assert not zone_bins(b, 0.0, 0.5)[0].any()
    low, _ = zone_bins(b, 0.1, 0.0)  # centre row 0, half-height 2 -> rows 0..1
    assert np.array_equal(low, freqs < 2400)


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
