"""Identity codec: the STFT analysis/synthesis pair reconstructs the input, delayed by D."""

import numpy as np
import pytest

from vqblur.engine.codec import IdentityCodec
from vqblur.engine.core import Engine, Params
from vqblur.engine.dsp import SignalConfig, ola_gain, sqrt_hann


def test_window_pair_overlap_adds_to_one():
    w = sqrt_hann(320)
    assert ola_gain(w, 80) == pytest.approx(0.5)


@pytest.mark.parametrize("channels", [1, 3])
def test_output_is_input_delayed_by_declared_latency(channels):
    rng = np.random.default_rng(1)
    x = (0.2 * rng.uniform(-1, 1, (20000, channels))).astype(np.float32)
    eng = Engine(IdentityCodec(), channels=channels)
    D = eng.latency_samples
    assert D == 399  # N - 1 + (F - 1) R for the default framing
    y = eng.process(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.max(np.abs(y[:D])) == 0.0
    assert np.max(np.abs(y[D:] - x[:-D])) <= 1e-6


def test_other_framing_also_reconstructs():
    cfg = SignalConfig(n_fft=256, hop=64, frames_per_column=3, model_bins=128, rows=16)
    eng = Engine(IdentityCodec(cfg))
    assert eng.latency_samples == 255 + 2 * 64
    x = np.random.default_rng(2).uniform(-0.5, 0.5, 5000).astype(np.float32)
    y = eng.process(x)
    D = eng.latency_samples
    assert np.max(np.abs(y[D:] - x[:-D])) <= 1e-6


def test_dry_mix_and_bypass_are_also_the_delayed_input():
    x = np.random.default_rng(3).uniform(-0.5, 0.5, 6000).astype(np.float32)
    for p in (Params(mix=0.0), Params(mix=0.5), Params(bypass=1.0)):
        eng = Engine(IdentityCodec(), params=p)
        y = eng.process(x)
        D = eng.latency_samples
        assert np.max(np.abs(y[D:] - x[:-D])) <= 1e-6


def test_identity_codec_on_a_v2_bundle_runs_its_blur_and_reconstructs():
    """An IdentityCodec made from a codec-v2 bundle takes the bundle's flat code layout, so the
    engine can run the bundle's blur on its (all-zero) codes; the audio is still the input."""
    from vqblur.engine.bundle import default_bundle_path, load_bundle

    b = load_bundle(default_bundle_path())
    assert b.n_codes > b.rows  # levels and a macro map
    codec = IdentityCodec(b)
    assert codec.n_codes == b.n_codes
    x = (0.2 * np.random.default_rng(2).uniform(-1, 1, 8000)).astype(np.float32)
    eng = Engine(codec, Params(zone_size=0.5))
    assert eng.blur_available
    y = np.concatenate([eng.process(x[i:i + 256]) for i in range(0, len(x), 256)])
    D = eng.latency_samples
    assert np.max(np.abs(y[D:] - x[:-D])) <= 1e-6
