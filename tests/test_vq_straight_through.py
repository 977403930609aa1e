"""Gradients reach the encoder through the quantiser's straight-through path."""

import torch

from vqblur.training.config import Config
from vqblur.training.model import VQVAE
from vqblur.training.train import losses


def test_gradients_reach_encoder_through_quantiser():
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.channels = [8, 8, 8]
    cfg.model.codebook_size = 16
    model = VQVAE(cfg).train()
    logmag = torch.randn(2, 160, 8) - 4
    terms = losses(model, logmag, cfg)
    # Reconstruction terms alone (no commitment): only the straight-through path links them to the encoder.
    (terms["l1"] + terms["sc"]).backward()
    first = model.encoder.net[0].conv.weight.grad
    assert first is not None and float(first.abs().sum()) > 0


def test_quantised_values_are_codebook_vectors_forward():
    torch.manual_seed(1)
    cfg = Config()
    cfg.model.channels = [8, 8, 8]
    cfg.model.codebook_size = 16
    model = VQVAE(cfg).train()
    z = torch.randn(2, cfg.model.code_dim, 20, 4, requires_grad=True)
    out = model.quantizer(z)
    expected = model.quantizer.lookup(out.codes)
    assert torch.allclose(out.z_q, expected, atol=1e-6)
    out.z_q.sum().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
