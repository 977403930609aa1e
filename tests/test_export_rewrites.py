"""The export-only layer rewrites (export/fast_layers.py) compute what the layers they replace
compute: the sub-pixel ConvTranspose offline, the causal conv step with its state."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from vqblur.export.fast_layers import (  # noqa: E402
    StackedCausalConv,
    StepCausalConv,
    SubPixelConvTranspose,
    apply_rewrites,
)
from vqblur.training.model import CausalConv2d  # noqa: E402


@pytest.mark.parametrize("K", [2, 4, 6, 8])
def test_subpixel_equals_conv_transpose(K):
    torch.manual_seed(K)
    ct = nn.ConvTranspose2d(5, 3, (K, 1), stride=(2, 1), padding=((K - 2) // 2, 0))
    assert SubPixelConvTranspose.supports(ct)
    sp = SubPixelConvTranspose(ct)
    x = torch.randn(2, 5, 7, 3)
    with torch.no_grad():
        assert torch.allclose(sp(x), ct(x), atol=1e-5)


def test_unsupported_conv_transpose_is_left_alone():
    assert not SubPixelConvTranspose.supports(nn.ConvTranspose2d(4, 4, (3, 1), stride=(2, 1), padding=(1, 0)))
    assert not SubPixelConvTranspose.supports(nn.ConvTranspose2d(4, 4, (4, 2), stride=(2, 1), padding=(1, 0)))


@pytest.mark.parametrize("split", [False, True])
def test_step_causal_conv_equals_original_step(split):
    torch.manual_seed(1)
    cc = CausalConv2d(6, 4, 3, 2)
    new = StepCausalConv(cc, split=split)
    state = [torch.zeros(1, 6, 9, 1)]
    state_new = [torch.zeros(1, 6, 9, 1)]
    with torch.no_grad():
        for _ in range(5):
            x = torch.randn(1, 6, 9, 1)
            out_a, out_b = [], []
            ya = cc.step(x, iter(state), out_a)
            yb = new.step(x, iter(state_new), out_b)
            assert torch.allclose(ya, yb, atol=1e-5)
            assert torch.equal(out_a[0], out_b[0])
            state, state_new = out_a, out_b
        x = torch.randn(1, 6, 9, 11)
        assert torch.allclose(cc(x), new(x), atol=1e-6)


@pytest.mark.parametrize("kt,dilation,stride", [(2, 1, 1), (2, 3, 1), (3, 2, 1), (2, 1, 2)])
def test_stacked_causal_conv_equals_original_step(kt, dilation, stride):
    """Channel-stacked state: the same outputs column after column, and the state holds the
    original cache's columns as channel blocks, oldest first."""
    torch.manual_seed(kt * 10 + dilation)
    cc = CausalConv2d(6, 4, 4 if stride == 2 else 3, kt, stride_f=stride, dilation=dilation)
    new = StackedCausalConv(cc)
    H = 10
    assert StackedCausalConv.supports(cc) and new.state_shape(H) == (1, cc.history * 6, H, 1)
    state, state_new = [torch.zeros(cc.state_shape(H))], [torch.zeros(new.state_shape(H))]
    with torch.no_grad():
        for _ in range(7):
            x = torch.randn(1, 6, H, 1)
            out_a, out_b = [], []
            ya = cc.step(x, iter(state), out_a)
            yb = new.step(x, iter(state_new), out_b)
            assert torch.allclose(ya, yb, atol=1e-5)
            # [1, C, H, h] -> [1, h * C, H, 1], column blocks oldest first
            want = out_a[0].permute(0, 3, 1, 2).reshape(1, -1, H)[..., None]
            assert torch.equal(out_b[0], want)
            state, state_new = out_a, out_b
        x = torch.randn(1, 6, H, 11)
        assert torch.allclose(cc(x), new(x), atol=1e-6)


def test_apply_rewrites_counts():
    from vqblur.export.testing import tiny_config
    from vqblur.training.model import VQVAE

    model = VQVAE(tiny_config())
    cb = model.quantizer.codebook().clone()
    counts = apply_rewrites(model, subpixel=True, causal="noslice")
    assert counts == {"subpixel": 3, "causal": 4, "constant_codebook": 1}  # 3 upsamplers, 2+2 residual convs
    assert torch.equal(model.quantizer.codebook(), cb)
