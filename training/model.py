"""2-D convolutional VQ-VAE over (frequency x time), causal in time, streamable.

Offline, the encoder takes normalised log-magnitudes [B, bins, T] (T a multiple of F, the
frames per code column) and folds each column's F frames into channels:
[B, F, bins, C] (C = T / F columns). Frequency is downsampled by 2 per scale, so a code
column has rows = bins / 2**scales. Time convolutions are causal (left padding), so no
input frame changes an earlier output.

Streaming, every stateful layer (a causal conv with time kernel kt > 1) keeps its last
kt - 1 input columns as an explicit state tensor [1, C_in, H, kt - 1]; `step` takes one
column and the list of states and returns the new list. Starting from zero states, the
step outputs equal the offline outputs (tests/test_model_causality.py).
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from vqblur.training.config import Config, ModelConfig
from vqblur.training.features import Normaliser
from vqblur.training.vq import VectorQuantizer, VQOutput


class CausalConv2d(nn.Module):
    """Conv over (freq, time): kernel (kf, kt), stride (sf, 1), causal in time."""

    def __init__(self, c_in: int, c_out: int, kf: int, kt: int, stride_f: int = 1) -> None:
        super().__init__()
        pad_f = (kf - stride_f) // 2 if stride_f > 1 else kf // 2
        self.conv = nn.Conv2d(c_in, c_out, (kf, kt), stride=(stride_f, 1), padding=(pad_f, 0))
        self.kt = kt

    def state_shape(self, height: int) -> tuple[int, ...] | None:
        return None if self.kt == 1 else (1, self.conv.in_channels, height, self.kt - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.kt - 1, 0)))

    def step(self, x: torch.Tensor, states: Iterator[torch.Tensor], out: list[torch.Tensor]) -> torch.Tensor:
        if self.kt == 1:
            return self.conv(x)
        full = torch.cat([next(states), x], dim=3)
        out.append(full[:, :, :, 1:])
        return self.conv(full)


class ResBlock(nn.Module):
    """x + 1x1(act(causal conv(act(x)))) with a channel bottleneck."""

    def __init__(self, channels: int, kt: int, slope: float) -> None:
        super().__init__()
        hidden = max(channels // 2, 8)
        self.conv = CausalConv2d(channels, hidden, 3, kt)
        self.proj = nn.Conv2d(hidden, channels, 1)
        self.slope = slope

    def state_shape(self, height: int) -> tuple[int, ...] | None:
        return self.conv.state_shape(height)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.leaky_relu(x, self.slope))
        return x + self.proj(F.leaky_relu(h, self.slope))

    def step(self, x: torch.Tensor, states: Iterator[torch.Tensor], out: list[torch.Tensor]) -> torch.Tensor:
        h = self.conv.step(F.leaky_relu(x, self.slope), states, out)
        return x + self.proj(F.leaky_relu(h, self.slope))


class Act(nn.Module):
    def __init__(self, slope: float) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.slope)


class StreamSequential(nn.Sequential):
    """A sequence of layers runnable offline (forward) or one column at a time (step)."""

    def state_shapes(self, height: int) -> list[tuple[int, ...]]:
        shapes = []
        for layer in self:
            shape = layer.state_shape(height) if hasattr(layer, "state_shape") else None
            if shape is not None:
                shapes.append(shape)
            height = _out_height(layer, height)
        return shapes

    def step(self, x: torch.Tensor, states: Iterator[torch.Tensor], out: list[torch.Tensor]) -> torch.Tensor:
        for layer in self:
            x = layer.step(x, states, out) if hasattr(layer, "step") else layer(x)
        return x


def _out_height(layer: nn.Module, height: int) -> int:
    conv = getattr(layer, "conv", None)
    if isinstance(layer, CausalConv2d) and conv.stride[0] > 1:
        return (height + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
    if isinstance(layer, nn.ConvTranspose2d):
        return (height - 1) * layer.stride[0] - 2 * layer.padding[0] + layer.kernel_size[0]
    return height


def _fold(x: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, bins, T] -> [B, F, bins, T/F]."""
    B, bins, T = x.shape
    return x.reshape(B, bins, T // frames, frames).permute(0, 3, 1, 2)


def _unfold(x: torch.Tensor) -> torch.Tensor:
    """[B, F, bins, C] -> [B, bins, C*F]."""
    B, frames, bins, C = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, bins, C * frames)


class Encoder(nn.Module):
    """Normalised log-magnitude columns [B, F, bins, C] -> latents [B, code_dim, rows, C]."""

    def __init__(self, cfg: ModelConfig, frames: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = frames
        for c in cfg.channels:
            layers += [CausalConv2d(c_in, c, cfg.kernel_freq, 1, stride_f=2), Act(cfg.leaky_slope)]
            c_in = c
        layers += [ResBlock(c_in, cfg.time_kernel, cfg.leaky_slope) for _ in range(cfg.res_blocks)]
        layers += [Act(cfg.leaky_slope), nn.Conv2d(c_in, cfg.code_dim, 1)]
        self.net = StreamSequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Code vectors [B, code_dim, rows, C] -> normalised log-magnitude columns [B, F, bins, C]."""

    def __init__(self, cfg: ModelConfig, frames: int) -> None:
        super().__init__()
        chans = list(reversed(cfg.channels))
        layers: list[nn.Module] = [nn.Conv2d(cfg.code_dim, chans[0], 1)]
        layers += [ResBlock(chans[0], cfg.time_kernel, cfg.leaky_slope) for _ in range(cfg.res_blocks)]
        outs = chans[1:] + [frames]
        for c_in, c_out in zip(chans, outs):
            layers += [
                Act(cfg.leaky_slope),
                nn.ConvTranspose2d(c_in, c_out, (cfg.kernel_freq, 1), stride=(2, 1), padding=((cfg.kernel_freq - 2) // 2, 0)),
            ]
        self.net = StreamSequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class VQVAE(nn.Module):
    """The whole model: normaliser, encoder, quantiser, decoder."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.frames = cfg.audio.frames_per_column
        self.bins = cfg.audio.model_bins
        self.rows = cfg.rows
        self.normaliser = Normaliser(self.bins)
        self.encoder = Encoder(cfg.model, self.frames)
        self.quantizer = VectorQuantizer(cfg.model.codebook_size, cfg.model.code_dim, cfg.vq, cfg.model.l2_normalise)
        self.decoder = Decoder(cfg.model, self.frames)

    def forward(self, logmag: torch.Tensor) -> tuple[torch.Tensor, VQOutput]:
        """logmag [B, bins, T] (raw ln|X|) -> (normalised reconstruction [B, bins, T], VQ output)."""
        x = _fold(self.normaliser(logmag), self.frames)
        vq = self.quantizer(self.encoder(x))
        return _unfold(self.decoder(vq.z_q)), vq

    @torch.no_grad()
    def encode(self, logmag: torch.Tensor) -> torch.Tensor:
        """logmag [B, bins, T] -> codes [B, rows, T/F]."""
        z = self.encoder(_fold(self.normaliser(logmag), self.frames))
        B, D, H, W = z.shape
        flat = self.quantizer._prepare(z.permute(0, 2, 3, 1).reshape(-1, D))
        return self.quantizer.nearest(flat).reshape(B, H, W)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, rows, C] -> raw log-magnitude [B, bins, C*F]."""
        return self.normaliser.inverse(_unfold(self.decoder(self.quantizer.lookup(codes))))

    def encoder_state_shapes(self) -> list[tuple[int, ...]]:
        return self.encoder.net.state_shapes(self.bins)

    def decoder_state_shapes(self) -> list[tuple[int, ...]]:
        return self.decoder.net.state_shapes(self.rows)

    def encoder_step(self, logmag_col: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One column: raw logmag [1, F, bins] -> codes [1, rows] and new states."""
        x = (logmag_col - self.normaliser.mean) / self.normaliser.std  # [1, F, bins]
        new: list[torch.Tensor] = []
        z = self.encoder.net.step(x[..., None], iter(states), new)  # [1, D, rows, 1]
        flat = self.quantizer._prepare(z[..., 0].permute(0, 2, 1).reshape(-1, z.shape[1]))
        return self.quantizer.nearest(flat).reshape(1, -1), new

    def decoder_step(self, codes: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One column: codes [1, rows] -> raw logmag [1, F, bins] and new states."""
        z = self.quantizer.codebook()[codes].permute(0, 2, 1)[..., None]  # [1, D, rows, 1]
        new: list[torch.Tensor] = []
        y = self.decoder.net.step(z, iter(states), new)[..., 0]  # [1, F, bins]
        return y * self.normaliser.std + self.normaliser.mean, new


def count_macs_per_column(model: VQVAE) -> dict[str, int]:
    """Multiply-accumulates per code column of the encoder and decoder (for the docs/bench)."""
    macs = {"encoder": 0, "decoder": 0}
    hooks = []

    def hook(tag: str):
        def fn(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            kf, kt = mod.kernel_size
            if isinstance(mod, nn.ConvTranspose2d):
                macs[tag] += inp[0].numel() * mod.out_channels * kf * kt // mod.groups
            else:
                macs[tag] += out.numel() * (mod.in_channels // mod.groups) * kf * kt
        return fn

    for tag, net in (("encoder", model.encoder), ("decoder", model.decoder)):
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                hooks.append(module.register_forward_hook(hook(tag)))
    with torch.no_grad():
        model.eval()
        T = model.frames
        model(torch.zeros(1, model.bins, T))
    for h in hooks:
        h.remove()
    return macs
