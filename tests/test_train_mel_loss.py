"""The fine-tune's mel loss (vqblur.training.mel_loss): its filterbank is the card's
(vqblur.measure.mel), it is zero for identical spectra and grows with a level shift as the
card's mel-LSD does, it equals the card's figure on the card's own STFT, no gradient flows
below its floor, and train.mel_weight adds it to the training loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vqblur.measure import mel as card_mel
from vqblur.training.mel_loss import MelLoss, mel_filterbank


@pytest.mark.parametrize("n_fft", [320, 2048])
def test_filterbank_is_the_cards(n_fft):
    np.testing.assert_array_equal(mel_filterbank(48000, n_fft), card_mel.mel_filterbank(48000, n_fft))


def _logmag(seed: int = 0, shape=(3, 160, 64)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 2.0 - 4.0


def test_zero_for_identical_and_grows_with_a_shift():
    loss = MelLoss(48000, 320, 160)
    ref = _logmag()
    assert float(loss(ref, ref)) == 0.0
    # a uniform gain of g dB moves every band by g dB: the mel-LSD is g (cells near the floor less)
    d6 = float(loss(ref + math.log(10 ** (6 / 20)), ref))
    d12 = float(loss(ref + math.log(10 ** (12 / 20)), ref))
    assert 5.5 < d6 <= 6.0 + 1e-4 and 11.0 < d12 <= 12.0 + 1e-4 and d12 > d6
    # a spectrum shifted along frequency is farther than a slightly perturbed one
    near = float(loss(ref + 0.05 * _logmag(1), ref))
    shifted = float(loss(torch.roll(ref, 8, dims=1), ref))
    assert 0 < near < shifted


def test_equals_the_cards_mel_lsd_on_its_stft():
    """On the card's own STFT (Hann, n_fft 2048) the loss is the card's mel-LSD of the clip."""
    from vqblur.common.spectral import stft_magnitude

    rng = np.random.default_rng(0)
    t = np.arange(48000) / 48000
    ref = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    est = (0.25 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    want = card_mel.mel_lsd_db(ref, est, 48000)
    lm = [torch.from_numpy(np.log(np.maximum(stft_magnitude(x), 1e-30)))[None] for x in (est, ref)]
    got = float(MelLoss(48000, 2048, 1025).double()(*[x.double() for x in lm]))
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6)


def test_no_gradient_below_the_floor():
    loss = MelLoss(48000, 320, 160)
    ref = _logmag()
    pred = (ref + 0.3).clone().requires_grad_(True)
    with torch.no_grad():
        pred[:, 60:] = -60.0  # far below the 80 dB floor
    loss(pred, ref).backward()
    g = pred.grad
    assert torch.isfinite(g).all()
    assert g[:, 70:].abs().max() == 0  # bins only under floored bands: nothing to learn there
    assert g[:, :40].abs().max() > 0


def test_mel_weight_adds_the_term():
    from vqblur.training.config import load_config
    from vqblur.training.model import VQVAE
    from vqblur.training.train import losses

    cfg = load_config("training/configs/tiny.toml")
    torch.manual_seed(0)
    model = VQVAE(cfg)
    lm = torch.randn(2, cfg.audio.model_bins, cfg.data.segment_frames) - 4.0
    torch.manual_seed(1)
    off = losses(model, lm, cfg)
    assert "mel" not in off
    cfg.train.mel_weight = 0.5
    torch.manual_seed(1)
    on = losses(model, lm, cfg)
    assert float(on["mel"].detach()) > 0
    assert float(on["loss"].detach()) == pytest.approx(float(off["loss"].detach()) + 0.5 * float(on["mel"].detach()),
                                                      rel=1e-4)
