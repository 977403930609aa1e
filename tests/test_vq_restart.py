"""Dead-code restarts revive unused codes from the batch's encodings."""

import torch

from vqblur.training.config import VQConfig
from vqblur.training.vq import VectorQuantizer


def test_restart_revives_codes_nobody_uses():
    torch.manual_seed(0)
    cfg = VQConfig(ema=True, decay=0.9, restart_every=0, restart_threshold=1.0)
    vq = VectorQuantizer(8, 2, cfg, l2_normalise=False).train()
    vq.initialised.fill_(True)
    far = torch.full((8, 2), 100.0)
    far[0] = 0.0  # one useful code, seven far away from the data
    vq.embedding.copy_(far)
    vq.ema_sum.copy_(far)
    vq.ema_count.fill_(1.0)
    z = torch.randn(1, 2, 16, 16)  # data near the origin
    for _ in range(20):
        out = vq(z)
    assert out.usage.item() <= 1 / 8 + 1e-6  # collapsed onto code 0
    n_dead = vq.restart_dead(z.permute(0, 2, 3, 1).reshape(-1, 2))
    assert n_dead == 7
    out = vq(z)
    assert out.codes.unique().numel() >= 6  # the revived codes now win some encodings
    assert float(vq.embedding.abs().max()) < 10


def test_kmeans_init_uses_the_data():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, VQConfig(restart_every=0), l2_normalise=False).train()
    centres = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    pts = (centres[torch.arange(400) % 4] + 0.1 * torch.randn(400, 2)).T.reshape(1, 2, 20, 20)
    out = vq(pts)
    assert out.codes.unique().numel() == 4
    assert torch.cdist(vq.embedding, centres).min(dim=0).values.max() < 1.0
