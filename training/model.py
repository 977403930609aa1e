"""2-D convolutional VQ-VAE over (frequency x time), causal in time, streamable.

Offline, the encoder takes normalised log-magnitudes [B, bins, T] (T a multiple of F, the
frames per code column), resampled onto the rows' axis (``row_warp`` "log": ``points`` warped
points, ``model.row_points``, 0 = as many as the bins; "linear": the bins themselves), and folds
each column's F frames into channels: [B, F, points, C] (C = T / F columns). Frequency is
downsampled by 2 per scale, so a code column has rows = points / 2**scales. The decoder gives
[B, F, points, C] back, warped back onto the model bins. The normaliser is per model bin.
Time convolutions are causal (left padding), so no input frame changes an earlier output.

Streaming, every stateful layer (a causal conv with time kernel kt > 1) keeps its last
kt - 1 input columns as an explicit state tensor [1, C_in, H, kt - 1]; `step` takes one
column and the list of states and returns the new list. Starting from zero states, the
step outputs equal the offline outputs (tests/test_model_causality.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from vqblur.common.freqaxis import row_warp_matrices, warp_matrices_for_bins
from vqblur.training.config import Config, ModelConfig
from vqblur.training.features import Normaliser
from vqblur.training.vq import VectorQuantizer, VQOutput


def model_warp_matrices(cfg: Config):
    """The log row warp of a config: ``(analysis [points, bins], synthesis [bins, points])``
    float32 numpy; the split framing's (codec v5) from its model bins' own frequencies
    (``vqblur.common.framing``), the one-window framings' from the rfft's."""
    a, m = cfg.audio, cfg.model
    layout = a.split_layout()
    if layout is not None:
        return warp_matrices_for_bins(layout.bin_hz(), layout.bin_width_hz(), cfg.row_points,
                                      m.row_warp_break_hz)
    return row_warp_matrices(a.sample_rate, a.n_fft, a.model_bins, m.row_warp_break_hz,
                             points=cfg.row_points)


class CausalConv2d(nn.Module):
    """Conv over (freq, time): kernel (kf, kt), stride (sf, 1), causal in time."""

    def __init__(self, c_in: int, c_out: int, kf: int, kt: int, stride_f: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad_f = (kf - stride_f) // 2 if stride_f > 1 else kf // 2
        self.conv = nn.Conv2d(c_in, c_out, (kf, kt), stride=(stride_f, 1), padding=(pad_f, 0),
                              dilation=(1, dilation))
        self.kt = kt
        self.dilation = dilation
        self.history = (kt - 1) * dilation  # past columns the conv sees (= state width)

    def state_shape(self, height: int) -> tuple[int, ...] | None:
        return None if self.kt == 1 else (1, self.conv.in_channels, height, self.history)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.history, 0)))

    def step(self, x: torch.Tensor, states: Iterator[torch.Tensor], out: list[torch.Tensor]) -> torch.Tensor:
        if self.kt == 1:
            return self.conv(x)
        full = torch.cat([next(states), x], dim=3)
        out.append(full[:, :, :, 1:])
        return self.conv(full)


class ResBlock(nn.Module):
    """x + 1x1(act(causal conv(act(x)))) with a channel bottleneck."""

    def __init__(self, channels: int, kt: int, slope: float, dilation: int = 1) -> None:
        super().__init__()
        hidden = max(channels // 2, 8)
        self.conv = CausalConv2d(channels, hidden, 3, kt, dilation=dilation)
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


def res_dilations(cfg: ModelConfig) -> list[int]:
    """Time dilation of each residual block (cycling ``cfg.res_dilations``; all 1 when empty)."""
    d = [int(v) for v in cfg.res_dilations] or [1]
    return [d[i % len(d)] for i in range(cfg.res_blocks)]


def _fold(x: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, bins, T] -> [B, F, bins, T/F]."""
    B, bins, T = x.shape
    return x.reshape(B, bins, T // frames, frames).permute(0, 3, 1, 2)


def _unfold(x: torch.Tensor) -> torch.Tensor:
    """[B, F, bins, C] -> [B, bins, C*F]."""
    B, frames, bins, C = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, bins, C * frames)


class Encoder(nn.Module):
    """Normalised log-magnitude columns on the rows' axis [B, F, points, C] -> latents
    [B, code_dim, rows, C] (rows = points / 2**scales)."""

    def __init__(self, cfg: ModelConfig, frames: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = frames
        for i, c in enumerate(cfg.channels):
            kt = cfg.down_time_kernel if i == len(cfg.channels) - 1 else 1
            layers += [CausalConv2d(c_in, c, cfg.kernel_freq, kt, stride_f=2), Act(cfg.leaky_slope)]
            c_in = c
        layers += [ResBlock(c_in, cfg.time_kernel, cfg.leaky_slope, d) for d in res_dilations(cfg)]
        layers += [Act(cfg.leaky_slope), nn.Conv2d(c_in, cfg.code_dim, 1)]
        self.net = StreamSequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Code vectors [B, code_dim, rows, C] -> normalised log-magnitude columns on the rows' axis
    [B, F, points, C]."""

    def __init__(self, cfg: ModelConfig, frames: int) -> None:
        super().__init__()
        chans = list(reversed(cfg.channels))
        first: nn.Module = (CausalConv2d(cfg.code_dim, chans[0], 3, cfg.down_time_kernel)
                            if cfg.down_time_kernel > 1 else nn.Conv2d(cfg.code_dim, chans[0], 1))
        layers: list[nn.Module] = [first]
        layers += [ResBlock(chans[0], cfg.time_kernel, cfg.leaky_slope, d) for d in res_dilations(cfg)]
        outs = chans[1:] + [frames]
        for c_in, c_out in zip(chans, outs):
            layers += [
                Act(cfg.leaky_slope),
                nn.ConvTranspose2d(c_in, c_out, (cfg.kernel_freq, 1), stride=(2, 1), padding=((cfg.kernel_freq - 2) // 2, 0)),
            ]
        self.net = StreamSequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@dataclass
class CodeStack:
    """All codes of a clip or a column.

    micro [B, L, rows, C] int64 (L residual levels; value K = "level dropped", decodes as 0)
    macro [B, rows_macro, C] int64 or None (no macro map)
    """

    micro: torch.Tensor
    macro: torch.Tensor | None = None


@dataclass
class ForwardOut:
    """What the training loss needs from one forward pass."""

    vq: VQOutput  # micro level 0 (perplexity/usage as in v1)
    commitment: torch.Tensor  # sum over every quantiser
    level_stats: list[tuple[float, float]]  # (perplexity, usage) per micro level, then macro


class VQVAE(nn.Module):
    """The whole model: normaliser, encoder, quantisers (macro map, micro residual levels), decoder.

    v1 (``rvq_levels = 1``, ``macro_factor = 0``) is one quantiser on the encoder output.
    v2: the encoder output z [B, D, rows, C] is first coded coarsely in frequency by the macro
    quantiser (a strided conv to rows / macro_factor rows, VQ, a transposed conv back up);
    the micro map codes the residual ``z - up(q_macro)`` with ``rvq_levels`` residual
    quantisers. The decoder sees ``up(q_macro) + sum of the kept micro levels``: the micro
    level is conditioned on the macro level in the encoder (it codes what the macro left) and
    in the decoder (the sum). Everything is per column, so no latency is added.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        self.frames = cfg.audio.frames_per_column
        self.bins = cfg.audio.model_bins
        self.points = cfg.row_points  # height of the encoder's input (= bins unless warped onto fewer)
        self.rows = cfg.rows
        self.levels = int(m.rvq_levels)
        self.K = int(m.codebook_size)
        self.macro_factor = int(m.macro_factor)
        self.normaliser = Normaliser(self.bins)
        self.encoder = Encoder(m, self.frames)
        self.quantizer = VectorQuantizer(m.codebook_size, m.code_dim, cfg.vq, m.l2_normalise)
        self.residual_quantizers = nn.ModuleList(
            [VectorQuantizer(m.codebook_size, m.code_dim, cfg.vq, False) for _ in range(self.levels - 1)])
        if self.macro_factor:
            f = self.macro_factor
            self.macro_down = nn.Conv2d(m.code_dim, m.code_dim, (f, 1), stride=(f, 1))
            self.macro_quantizer = VectorQuantizer(m.codebook_size, m.code_dim, cfg.vq, False)
            self.macro_up = nn.ConvTranspose2d(m.code_dim, m.code_dim, (f, 1), stride=(f, 1))
        self.decoder = Decoder(m, self.frames)
        # the fixed row warp (codec v3): not parameters, not saved (derived from the config)
        self.row_warp = m.row_warp
        if m.row_warp not in ("linear", "log"):
            raise ValueError(f"model.row_warp must be 'linear' or 'log', not {m.row_warp!r}")
        if m.row_warp == "log":
            ana, syn = model_warp_matrices(cfg)  # [points, bins], [bins, points]
            self.register_buffer("warp_in", torch.from_numpy(ana), persistent=False)
            self.register_buffer("warp_out", torch.from_numpy(syn), persistent=False)

    def normalise_column(self, logmag_col: torch.Tensor) -> torch.Tensor:
        """One streaming column: raw logmag [B, F, bins] -> what the encoder sees (normalised, on
        the rows' axis), [B, F, points]."""
        x = (logmag_col - self.normaliser.mean) / self.normaliser.std
        return x if self.row_warp == "linear" else torch.matmul(x, self.warp_in.T)

    def denormalise_column(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`normalise_column` for the decoder's output [B, F, points]
        -> raw logmag [B, F, bins]."""
        if self.row_warp != "linear":
            y = torch.matmul(y, self.warp_out.T)
        return y * self.normaliser.std + self.normaliser.mean

    def _to_rows_axis(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log-magnitudes, bins on dim -2 ([B, bins, T]) -> the warped axis [B, points, T]."""
        return x if self.row_warp == "linear" else torch.matmul(self.warp_in, x)

    def _from_rows_axis(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`_to_rows_axis`: [B, points, T] -> [B, bins, T]."""
        return x if self.row_warp == "linear" else torch.matmul(self.warp_out, x)

    @property
    def rows_macro(self) -> int:
        return self.rows // self.macro_factor if self.macro_factor else 0

    def micro_quantizers(self) -> list[VectorQuantizer]:
        return [self.quantizer, *self.residual_quantizers]

    # -- training forward --------------------------------------------------------------------
    def forward(self, logmag: torch.Tensor) -> tuple[torch.Tensor, ForwardOut]:
        """logmag [B, bins, T] (raw ln|X|) -> (normalised reconstruction [B, bins, T], ForwardOut)."""
        x = _fold(self._to_rows_axis(self.normaliser(logmag)), self.frames)
        z = self.encoder(x)  # [B, D, rows, C]
        B, D, H, W = z.shape
        commitment = z.new_zeros(())
        stats: list[tuple[float, float]] = []
        base = torch.zeros_like(z)
        if self.macro_factor:
            mq = self.macro_quantizer(self.macro_down(z))
            base = self.macro_up(mq.z_q)
            commitment = commitment + mq.commitment
        resid = z - base.detach()
        # per-cell quantiser dropout: keep the first k micro levels (k = 0 only with a macro map)
        keep = torch.full((B, 1, H, W), self.levels, device=z.device)
        p = self.cfg.model.quantizer_dropout
        if self.training and p > 0:
            lo = 0 if self.macro_factor else 1
            drop = torch.rand(B, 1, H, W, device=z.device) < p
            k = torch.randint(lo, self.levels + (1 if lo == 0 else 0), (B, 1, H, W), device=z.device)
            keep = torch.where(drop, k, keep)
        r = resid
        total = torch.zeros_like(z)
        first: VQOutput | None = None
        for level, q in enumerate(self.micro_quantizers()):
            out = q(r)
            if first is None:
                first = out
            qv = out.z_q.detach()  # the code vectors (as prepared by that quantiser)
            total = total + qv * (keep > level)
            r = r - qv
            commitment = commitment + out.commitment
            stats.append((float(out.perplexity), float(out.usage)))
        if self.macro_factor:
            stats.append((float(mq.perplexity), float(mq.usage)))
        prepared = resid if not self.quantizer.l2 else F.normalize(resid, dim=1)
        micro = (prepared + (total - prepared).detach()) * (keep > 0)  # straight-through; dropped cells give 0
        y = self.decoder(base + micro)
        return self._from_rows_axis(_unfold(y)), ForwardOut(vq=first, commitment=commitment, level_stats=stats)

    # -- offline coding -----------------------------------------------------------------------
    @torch.no_grad()
    def encode_all(self, logmag: torch.Tensor) -> CodeStack:
        """logmag [B, bins, T] -> CodeStack (micro [B, L, rows, C], macro [B, Rm, C] | None)."""
        z = self.encoder(_fold(self._to_rows_axis(self.normaliser(logmag)), self.frames))
        macro, base = self._macro_codes(z)
        return CodeStack(micro=self._micro_codes(z - base), macro=macro)

    def _macro_codes(self, z: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        if not self.macro_factor:
            return None, torch.zeros_like(z)
        m = self.macro_down(z)
        B, D, H, W = m.shape
        codes = self.macro_quantizer.nearest(m.permute(0, 2, 3, 1).reshape(-1, D)).reshape(B, H, W)
        return codes, self.macro_up(self.macro_quantizer.lookup(codes))

    def _micro_codes(self, r: torch.Tensor) -> torch.Tensor:
        B, D, H, W = r.shape
        flat = r.permute(0, 2, 3, 1).reshape(-1, D)
        out = []
        for q in self.micro_quantizers():
            flat = q._prepare(flat)
            c = q.nearest(flat)
            out.append(c.reshape(B, H, W))
            flat = flat - q.codebook()[c]
        return torch.stack(out, dim=1)

    def _micro_vectors(self, micro: torch.Tensor) -> torch.Tensor:
        """micro [B, L, rows, C] (K = dropped) -> [B, D, rows, C]."""
        total = None
        for level, q in enumerate(self.micro_quantizers()):
            cb = torch.cat([q.codebook(), q.codebook().new_zeros(1, q.dim)])  # row K = dropped
            v = cb[micro[:, level]].permute(0, 3, 1, 2)
            total = v if total is None else total + v
        return total

    @torch.no_grad()
    def decode_all(self, codes: CodeStack) -> torch.Tensor:
        """CodeStack -> raw log-magnitude [B, bins, C*F]."""
        z = self._micro_vectors(codes.micro)
        if self.macro_factor:
            z = z + self.macro_up(self.macro_quantizer.lookup(codes.macro))
        return self.normaliser.inverse(self._from_rows_axis(_unfold(self.decoder(z))))

    @torch.no_grad()
    def encode(self, logmag: torch.Tensor) -> torch.Tensor:
        """logmag [B, bins, T] -> first micro level's codes [B, rows, T/F] (what the NB table models)."""
        return self.encode_all(logmag).micro[:, 0]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, rows, C] (v1 layout) or [B, L, rows, C] -> raw log-magnitude [B, bins, C*F]."""
        if codes.dim() == 3:
            codes = codes[:, None]
        if self.macro_factor:
            raise ValueError("a model with a macro map decodes a CodeStack: use decode_all")
        if codes.shape[1] < self.levels:  # missing levels are dropped
            pad = codes.new_full((codes.shape[0], self.levels - codes.shape[1], *codes.shape[2:]), self.K)
            codes = torch.cat([codes, pad], dim=1)
        return self.decode_all(CodeStack(micro=codes))

    # -- streaming -------------------------------------------------------------------------------
    def encoder_state_shapes(self) -> list[tuple[int, ...]]:
        return self.encoder.net.state_shapes(self.points)

    def decoder_state_shapes(self) -> list[tuple[int, ...]]:
        return self.decoder.net.state_shapes(self.rows)

    def encoder_step(self, logmag_col: torch.Tensor, states: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        """One column: raw logmag [1, F, bins] -> micro codes [1, L, rows], macro codes
        [1, Rm] (or None) and the new states."""
        x = self.normalise_column(logmag_col)  # [1, F, points]
        new: list[torch.Tensor] = []
        z = self.encoder.net.step(x[..., None], iter(states), new)  # [1, D, rows, 1]
        macro, base = self._macro_codes(z)
        micro = self._micro_codes(z - base)  # [1, L, rows, 1]
        return micro[..., 0], (macro[..., 0] if macro is not None else None), new

    def decoder_step(self, micro: torch.Tensor, macro: torch.Tensor | None, states: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One column for a batch of B streams: micro codes [B, L, rows] (K = dropped), macro
        [B, Rm] or None, states (each [B, ...]) -> raw logmag [B, F, bins] and new states."""
        z = self._micro_vectors(micro[..., None])  # [B, D, rows, 1]
        if self.macro_factor:
            z = z + self.macro_up(self.macro_quantizer.lookup(macro[..., None]))
        new: list[torch.Tensor] = []
        y = self.decoder.net.step(z, iter(states), new)[..., 0]  # [B, F, points]
        return self.denormalise_column(y), new


def count_macs_per_column(model: VQVAE) -> dict[str, int]:
    """Multiply-accumulates per code column (one stream): encoder convs, the quantisers' nearest-
    code searches (rows x K x D per level), decoder convs. For the docs, manifest and bench."""
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

    for tag, mods in (("encoder", [model.encoder] + ([model.macro_down] if model.macro_factor else [])),
                      ("decoder", [model.decoder] + ([model.macro_up] if model.macro_factor else []))):
        for net in mods:
            for module in net.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    hooks.append(module.register_forward_hook(hook(tag)))
    with torch.no_grad():
        model.eval()
        lm = torch.zeros(1, model.bins, model.frames)
        codes = model.encode_all(lm)
        model.decode_all(codes)
    for h in hooks:
        h.remove()
    D, K = model.cfg.model.code_dim, model.K
    macs["encoder"] += model.levels * model.rows * K * D + model.rows_macro * K * D
    return macs
