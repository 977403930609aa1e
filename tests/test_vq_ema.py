"""The EMA codebook update on a hand-made example."""

import torch

from vqblur.training.config import VQConfig
from vqblur.training.vq import VectorQuantizer


def test_ema_update_moves_codes_towards_assigned_means():
    cfg = VQConfig(ema=True, decay=0.5, restart_every=0)
    vq = VectorQuantizer(2, 2, cfg, l2_normalise=False).train()
    vq.initialised.fill_(True)  # skip k-means: a hand-made codebook
    vq.embedding.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    vq.ema_sum.copy_(vq.embedding)
    vq.ema_count.fill_(1.0)
    # three vectors near code 0 (mean (1, 1)), one near code 1 (9, 9)
    z = torch.tensor([[[[1.0], [0.0], [2.0], [9.0]], [[1.0], [2.0], [0.0], [9.0]]]])  # [B=1, D=2, H=4, W=1]
    out = vq(z)
    assert out.codes.flatten().tolist() == [0, 0, 0, 1]
    # counts: 0.5*1 + 0.5*3 = 2 ; 0.5*1 + 0.5*1 = 1
    assert torch.allclose(vq.ema_count, torch.tensor([2.0, 1.0]))
    # sums: 0.5*(0,0) + 0.5*(3,3) = (1.5,1.5) ; 0.5*(10,10) + 0.5*(9,9) = (9.5,9.5)
    n = vq.ema_count.sum()
    smoothed = (vq.ema_count + 1e-5) / (n + 2e-5) * n
    expected = torch.tensor([[1.5, 1.5], [9.5, 9.5]]) / smoothed[:, None]
    assert torch.allclose(vq.embedding, expected, atol=1e-4)
    assert torch.allclose(vq.embedding[0], torch.tensor([0.75, 0.75]), atol=1e-3)


def test_eval_mode_does_not_update():
    cfg = VQConfig(ema=True, decay=0.5)
    vq = VectorQuantizer(4, 3, cfg, l2_normalise=True).train()
    vq(torch.randn(2, 3, 5, 5))  # k-means init
    before = vq.embedding.clone()
    vq.eval()
    vq(torch.randn(2, 3, 5, 5))
    assert torch.equal(before, vq.embedding)
