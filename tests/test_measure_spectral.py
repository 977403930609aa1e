"""The bench's quality definitions: LSD over an 80 dB range below the loudest bin, the older
absolute-floor LSD beside it, and the output level change."""

from __future__ import annotations

import numpy as np
import pytest

from vqblur.common.spectral import (
    audio_quality,
    level_change_db,
    log_spectral_distance_db,
    lsd_range_db,
    stft_magnitude,
)

SR = 48000


def _tone(seconds: float = 1.0, f: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float64)


def test_identical_is_zero():
    x = _tone()
    q = audio_quality(x, x)
    assert q["lsd_db"] == 0.0 and q["lsd_db_floor100"] == 0.0 and q["level_change_db"] == 0.0
    assert q["sc_db"] < -200


def test_gain_is_the_lsd_and_the_level_change():
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal(SR)  # broadband: every bin well inside the 80 dB range
    q = audio_quality(x, 0.5 * x)
    assert q["level_change_db"] == pytest.approx(20 * np.log10(0.5), abs=1e-9)
    assert q["lsd_db"] == pytest.approx(-20 * np.log10(0.5), rel=1e-3)


def test_range_ignores_what_lies_more_than_80_db_down():
    """A sine's leakage floor differs between the two signals far below the peak: the 80 dB
    range LSD sees nothing, the absolute-floor LSD does."""
    x = _tone()
    rng = np.random.default_rng(1)
    y = x + 1e-6 * rng.standard_normal(len(x))  # -120 dB re the tone: outside the range
    S, Sy = stft_magnitude(x), stft_magnitude(y)
    assert lsd_range_db(S, Sy) < 0.05
    assert log_spectral_distance_db(S, Sy) > 1.0


def test_range_is_relative_to_the_reference_peak():
    """The same relative error gives the same LSD at any level (the old one does not)."""
    rng = np.random.default_rng(2)
    x = _tone(amp=0.3) + 1e-3 * rng.standard_normal(SR)
    y = 0.9 * x
    loud = lsd_range_db(stft_magnitude(x), stft_magnitude(y))
    quiet = lsd_range_db(stft_magnitude(1e-3 * x), stft_magnitude(1e-3 * y))
    assert loud == pytest.approx(quiet, rel=1e-6)


def test_level_change_of_silence_is_nan():
    assert np.isnan(level_change_db(np.zeros(100), np.ones(100)))
    assert level_change_db(np.ones(100), np.zeros(100)) == -np.inf
