"""The streaming STFT calls numpy's pocketfft gufuncs directly when this numpy has them (and
they agree with np.fft at import), else np.fft; both paths give the same audio."""

import numpy as np

from vqblur.engine import dsp
from vqblur.engine.codec import IdentityCodec
from vqblur.engine.core import Engine, Params


def test_fast_and_fallback_transforms_agree():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((2, 2, 320))
    a = dsp._rfft(frames, np.empty((2, 2, 161), np.complex128))
    b = dsp._np_rfft(frames, np.empty((2, 2, 161), np.complex128))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dsp._irfft(a, 320, np.empty((2, 2, 320))),
                                  dsp._np_irfft(b, 320, np.empty((2, 2, 320))))


def test_engine_output_is_the_same_on_the_fallback(monkeypatch):
    x = (0.4 * np.random.default_rng(1).uniform(-1, 1, (9600, 2))).astype(np.float32)  # below the limiter
    fast = Engine(IdentityCodec(), Params(), channels=2).process(x)
    monkeypatch.setattr(dsp, "_rfft", dsp._np_rfft)
    monkeypatch.setattr(dsp, "_irfft", dsp._np_irfft)
    slow = Engine(IdentityCodec(), Params(), channels=2).process(x)
    np.testing.assert_array_equal(fast, slow)
    D = 399
    assert np.max(np.abs(slow[D:] - x[:-D])) <= 1e-6
