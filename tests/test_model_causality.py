"""Causality in time, and streaming (one column per step, explicit state) == offline.

Modelled on cached_conv's offline-vs-streaming equality test.
"""

import torch

from vqblur.training.config import Config
from vqblur.training.model import VQVAE


def _model(seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    cfg = Config()
    cfg.model.channels = [8, 12, 16]
    cfg.model.codebook_size = 32
    model = VQVAE(cfg)
    model.train()
    model(torch.randn(2, 160, 16) - 4)  # k-means initialises the codebook
    return model.eval()


def test_no_input_frame_changes_an_earlier_output():
    model = _model()
    x = torch.randn(1, 160, 24) - 4
    codes = model.encode(x)
    recon = model.decode(codes)
    for t in (4, 11, 17):  # perturb frame t (column t // 2) onwards
        y = x.clone()
        y[:, :, t:] += 3 * torch.randn_like(y[:, :, t:])
        col = t // 2
        codes_y = model.encode(y)
        assert torch.equal(codes_y[:, :, :col], codes[:, :, :col])
        recon_y = model.decode(codes_y)
        assert torch.allclose(recon_y[:, :, : 2 * col], recon[:, :, : 2 * col], atol=1e-6)
        # ... and the perturbation does reach the later outputs
        assert not torch.allclose(recon_y[:, :, 2 * col :], recon[:, :, 2 * col :], atol=1e-3)


def test_streaming_steps_equal_offline():
    model = _model(1)
    x = torch.randn(1, 160, 32) - 4
    codes_off = model.encode(x)
    recon_off = model.decode(codes_off)
    enc_states = [torch.zeros(s) for s in model.encoder_state_shapes()]
    dec_states = [torch.zeros(s) for s in model.decoder_state_shapes()]
    codes, frames = [], []
    with torch.no_grad():
        for c in range(16):
            col = x[:, :, 2 * c : 2 * c + 2].transpose(1, 2)  # [1, F, bins]
            code, enc_states = model.encoder_step(col, enc_states)
            out, dec_states = model.decoder_step(code, dec_states)
            codes.append(code)
            frames.append(out.transpose(1, 2))
    assert torch.equal(torch.stack(codes, dim=-1), codes_off)
    assert torch.allclose(torch.cat(frames, dim=-1), recon_off, atol=1e-5)
    assert len(enc_states) > 0 and len(dec_states) > 0  # the model really has time memory
