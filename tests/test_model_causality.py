"""Causality in time, and streaming (one column per step, explicit state) == offline, for the
v1 layout (one quantiser) and codec v2 (macro map, residual levels, dilated time context).

Modelled on cached_conv's offline-vs-streaming equality test.
"""

import pytest
import torch

from vqblur.training.config import Config
from vqblur.training.model import CodeStack, VQVAE

V2 = {"rvq_levels": 3, "macro_factor": 4, "down_time_kernel": 2, "res_dilations": [1, 3],
      "code_dim": 8, "l2_normalise": False, "quantizer_dropout": 0.3}


def _model(seed: int = 0, **model_kw) -> VQVAE:
    torch.manual_seed(seed)
    cfg = Config()
    cfg.model.channels = [8, 12, 16]
    cfg.model.codebook_size = 32
    for k, v in model_kw.items():
        setattr(cfg.model, k, v)
    model = VQVAE(cfg)
    model.train()
    model(torch.randn(2, 160, 16) - 4)  # k-means initialises the codebooks
    return model.eval()


@pytest.mark.parametrize("kw", [{}, V2], ids=["v1", "v2"])
def test_no_input_frame_changes_an_earlier_output(kw):
    model = _model(**kw)
    x = torch.randn(1, 160, 24) - 4
    codes = model.encode_all(x)
    recon = model.decode_all(codes)
    for t in (4, 11, 17):  # perturb frame t (column t // 2) onwards
        y = x.clone()
        y[:, :, t:] += 3 * torch.randn_like(y[:, :, t:])
        col = t // 2
        codes_y = model.encode_all(y)
        assert torch.equal(codes_y.micro[..., :col], codes.micro[..., :col])
        if codes.macro is not None:
            assert torch.equal(codes_y.macro[..., :col], codes.macro[..., :col])
        recon_y = model.decode_all(codes_y)
        assert torch.allclose(recon_y[:, :, : 2 * col], recon[:, :, : 2 * col], atol=1e-6)
        # ... and the perturbation does reach the later outputs
        assert not torch.allclose(recon_y[:, :, 2 * col :], recon[:, :, 2 * col :], atol=1e-3)


@pytest.mark.parametrize("kw", [{}, V2], ids=["v1", "v2"])
def test_streaming_steps_equal_offline(kw):
    model = _model(1, **kw)
    x = torch.randn(1, 160, 32) - 4
    codes_off = model.encode_all(x)
    recon_off = model.decode_all(codes_off)
    enc_states = [torch.zeros(s) for s in model.encoder_state_shapes()]
    # the decoder runs a batch of two identical streams: both must equal the offline model
    dec_states = [torch.zeros((2, *s[1:])) for s in model.decoder_state_shapes()]
    micro, macro, frames = [], [], []
    with torch.no_grad():
        for c in range(16):
            col = x[:, :, 2 * c : 2 * c + 2].transpose(1, 2)  # [1, F, bins]
            mi, ma, enc_states = model.encoder_step(col, enc_states)
            out, dec_states = model.decoder_step(mi.expand(2, -1, -1),
                                                 None if ma is None else ma.expand(2, -1), dec_states)
            micro.append(mi)
            macro.append(ma)
            frames.append(out.transpose(1, 2))
    assert torch.equal(torch.stack(micro, dim=-1), codes_off.micro)
    if codes_off.macro is not None:
        assert torch.equal(torch.stack(macro, dim=-1), codes_off.macro)
    y = torch.cat(frames, dim=-1)
    assert torch.allclose(y[:1], recon_off, atol=1e-5) and torch.allclose(y[1:], recon_off, atol=1e-5)
    assert len(enc_states) > 0 and len(dec_states) > 0  # the model really has time memory


def test_v2_receptive_field_is_six_columns():
    """Dilated time context: a change in column c reaches the codes of columns c..c+5 at most."""
    model = _model(2, **V2)
    x = torch.randn(1, 160, 40) - 4
    base = model.encode_all(x).micro
    y = x.clone()
    y[:, :, 10:12] += 4.0  # column 5 only
    changed = (model.encode_all(y).micro != base).any(dim=1).any(dim=1)[0]  # [C]
    assert not changed[:5].any() and changed[5]
    assert not changed[11:].any()  # 5 columns of history: nothing past column 10 changes


def test_dropped_levels_decode_as_zero_vectors():
    """A micro code K is a dropped level: decoding [c0, K, K] equals decoding level 0 alone."""
    model = _model(3, **V2)
    x = torch.randn(1, 160, 16) - 4
    codes = model.encode_all(x)
    K = model.K
    dropped = codes.micro.clone()
    dropped[:, 1:] = K
    z_drop = model._micro_vectors(dropped)
    z0 = model.quantizer.codebook()[codes.micro[:, 0]].permute(0, 3, 1, 2)
    assert torch.allclose(z_drop, z0)
    full = model.decode_all(codes)
    part = model.decode_all(CodeStack(micro=dropped, macro=codes.macro))
    assert not torch.allclose(full, part, atol=1e-4)  # the finer levels do carry something


def test_residual_levels_reduce_the_latent_error():
    """Each residual level quantises what the previous ones left: the error falls per level."""
    model = _model(4, **V2)
    model.train()
    for _ in range(3):
        model(torch.randn(4, 160, 16) - 4)
    model.eval()
    x = torch.randn(2, 160, 16) - 4
    from vqblur.training.model import _fold

    with torch.no_grad():
        z = model.encoder(_fold(model.normaliser(x), model.frames))
        _, base = model._macro_codes(z)
        codes = model._micro_codes(z - base)
    errs = []
    for k in range(1, model.levels + 1):
        part = codes.clone()
        part[:, k:] = model.K
        with torch.no_grad():
            errs.append(float((model._micro_vectors(part) - (z - base)).pow(2).mean()))
    assert errs == sorted(errs, reverse=True) and errs[-1] < 0.8 * errs[0]
