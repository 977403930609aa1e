"""Vector quantiser with straight-through gradients, EMA codebook, restarts, k-means init.

Shapes: z [B, D, H, W] (D = code_dim) -> z_q [B, D, H, W], codes [B, H, W].
Under DistributedDataParallel the codebook statistics are all-reduced and restarts are
broadcast from rank 0, so every replica keeps an identical codebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vqblur.training.config import VQConfig


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@dataclass
class VQOutput:
    z_q: torch.Tensor  # [B, D, H, W], straight-through
    codes: torch.Tensor  # [B, H, W] int64
    commitment: torch.Tensor  # scalar
    codebook_loss: torch.Tensor  # scalar (0 with EMA)
    perplexity: torch.Tensor  # scalar, of this batch's code histogram
    usage: torch.Tensor  # scalar, fraction of codes used in this batch


class VectorQuantizer(nn.Module):
    def __init__(self, codebook_size: int, dim: int, cfg: VQConfig, l2_normalise: bool = True) -> None:
        super().__init__()
        self.K, self.dim, self.cfg, self.l2 = codebook_size, dim, cfg, l2_normalise
        init = torch.randn(codebook_size, dim)
        if cfg.ema:
            self.register_buffer("embedding", init)
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("ema_count", torch.ones(codebook_size))
        self.register_buffer("ema_sum", init.clone())
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long))

    # -- lookup -------------------------------------------------------------------------
    def codebook(self) -> torch.Tensor:
        """The vectors codes stand for, [K, D] (l2-normalised when configured)."""
        return F.normalize(self.embedding, dim=1) if self.l2 else self.embedding

    def _prepare(self, flat: torch.Tensor) -> torch.Tensor:
        return F.normalize(flat, dim=1) if self.l2 else flat

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """flat [N, D] (already prepared) -> codes [N]."""
        cb = self.codebook()
        dist_sq = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ cb.t() + cb.pow(2).sum(1)[None, :]
        return dist_sq.argmin(dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, H, W] -> [B, D, H, W]."""
        return self.codebook()[codes].permute(0, 3, 1, 2)

    # -- training-time maintenance ------------------------------------------------------
    def _kmeans_plus_plus(self, data: torch.Tensor) -> torch.Tensor:
        """k-means++ seeding: each new centre drawn with probability ~ squared distance. [N, D] -> [K, D]."""
        n = data.shape[0]
        sample = data[torch.randperm(n, device=data.device)[: min(n, 16 * self.K)]]
        centres = [sample[torch.randint(0, sample.shape[0], (1,))].squeeze(0)]
        d2 = (sample - centres[0]).pow(2).sum(1)
        for _ in range(1, self.K):
            probs = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full_like(d2, 1.0 / len(d2))
            pick = sample[torch.multinomial(probs, 1)].squeeze(0)
            centres.append(pick)
            d2 = torch.minimum(d2, (sample - pick).pow(2).sum(1))
        return torch.stack(centres) + 1e-4 * torch.randn(self.K, self.dim, device=data.device)

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        data = flat.detach()
        if _distributed() and dist.get_rank() != 0:
            centroids = torch.empty(self.K, self.dim, device=flat.device)
        else:
            n = data.shape[0]
            centroids = self._kmeans_plus_plus(data)
            for _ in range(self.cfg.kmeans_init_iters):
                cb = self._prepare(centroids)
                assign = (data @ cb.t()).argmax(1) if self.l2 else torch.cdist(data, cb).argmin(1)
                sums = torch.zeros_like(centroids).index_add_(0, assign, data)
                counts = torch.bincount(assign, minlength=self.K).float()
                empty = counts == 0
                centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
                if empty.any():  # re-seed empty clusters from random points
                    centroids[empty] = data[torch.randint(0, n, (int(empty.sum()),), device=data.device)]
        if _distributed():
            dist.broadcast(centroids, 0)
        centroids = self._prepare(centroids)
        self.embedding.data.copy_(centroids)
        self.ema_sum.copy_(centroids)
        self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        counts = torch.bincount(codes, minlength=self.K).float()
        sums = torch.zeros(self.K, self.dim, device=flat.device).index_add_(0, codes, flat.detach())
        if _distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        d = self.cfg.decay
        self.ema_count.mul_(d).add_(counts, alpha=1 - d)
        self.ema_sum.mul_(d).add_(sums, alpha=1 - d)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (n + self.K * 1e-5) * n
        self.embedding.data.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor) -> int:
        """Replace codes whose EMA count fell below the threshold by random encodings of the batch."""
        dead = self.ema_count < self.cfg.restart_threshold
        n_dead = int(dead.sum())
        if n_dead:
            if not _distributed() or dist.get_rank() == 0:
                pick = torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)
                fresh = flat.detach()[pick] + 1e-3 * torch.randn(n_dead, self.dim, device=flat.device)
                self.embedding.data[dead] = self._prepare(fresh)
                self.ema_sum[dead] = self.embedding.data[dead] * self.cfg.restart_threshold
                self.ema_count[dead] = self.cfg.restart_threshold
            if _distributed():
                for buf in (self.embedding.data, self.ema_sum, self.ema_count):
                    dist.broadcast(buf, 0)
        return n_dead

    # -- forward ------------------------------------------------------------------------
    def forward(self, z: torch.Tensor) -> VQOutput:
        B, D, H, W = z.shape
        flat = self._prepare(z.permute(0, 2, 3, 1).reshape(-1, D))
        if self.training and not bool(self.initialised):
            self._kmeans_init(flat)
        codes = self.nearest(flat.detach())
        q = self.codebook()[codes]
        commitment = F.mse_loss(flat, q.detach())
        if self.cfg.ema:
            codebook_loss = flat.new_zeros(())
            if self.training:
                self._ema_update(flat, codes)
                self.steps += 1
                if self.cfg.restart_every and int(self.steps) % self.cfg.restart_every == 0:
                    self.restart_dead(flat)
        else:
            codebook_loss = F.mse_loss(q, flat.detach())
        z_q = flat + (q - flat).detach()  # straight-through
        counts = torch.bincount(codes, minlength=self.K).float()
        probs = counts / counts.sum()
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        return VQOutput(
            z_q=z_q.reshape(B, H, W, D).permute(0, 3, 1, 2),
            codes=codes.reshape(B, H, W),
            commitment=commitment,
            codebook_loss=codebook_loss,
            perplexity=perplexity,
            usage=(counts > 0).float().mean(),
        )
