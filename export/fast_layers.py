"""Export-only rewrites of the step graphs that give the same numbers with fewer, cheaper ops.

Applied to the (deep-copied) model just before tracing; the training code is untouched and
the parity check (export/parity.py) compares against the *original* model, so any mistake
here shows up as a parity failure.

* :class:`SubPixelConvTranspose` -- a frequency ConvTranspose (stride 2, kernel K, padding
  (K-2)/2, time kernel 1) as one ordinary Conv producing both output phases (2 x C_out
  channels) followed by an interleave (Reshape/Transpose/Reshape). onnxruntime's
  ConvTranspose has no NCHWc kernel and is the decoder's most expensive op at these sizes.
* :class:`StepCausalConv` -- a causal conv with time kernel 2 whose streaming state is the
  previous column. The stock step concatenates (state, x), convolves, and slices the new
  state out of the concatenation; here the new state *is* x (no Slice), and the variant
  ``"split"`` also replaces Concat + Conv(kt=2) by Conv(state) + Conv(x).
* :class:`StackedCausalConv` (the default) -- every causal conv (any time kernel, any
  dilation) with its state stacked along channels, so the step's Concat/Slice move whole
  contiguous blocks instead of a few floats per (channel, row).

* constant codebook -- ``quantizer.codebook()`` (the l2-normalised embedding) is computed
  once in PyTorch and baked in as a constant, so neither graph re-normalises the codebook
  (and the encoder does not recompute its squared norms) on every call; the values are the
  very ones the offline model uses.

``apply_rewrites(model, ...)`` swaps the modules in place (call it on a copy).
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from vqblur.training.model import CausalConv2d


class SubPixelConvTranspose(nn.Module):
    """Exact replacement of ``nn.ConvTranspose2d`` with stride (2, 1), kernel (K, 1),
    padding ((K-2)/2, 0), no output padding / groups / dilation: output height 2 H."""

    def __init__(self, ct: nn.ConvTranspose2d) -> None:
        super().__init__()
        K = ct.kernel_size[0]
        p = ct.padding[0]
        w = ct.weight.detach()  # [C_in, C_out, K, 1]
        c_in, c_out = w.shape[0], w.shape[1]
        taps: dict[tuple[int, int], int] = {}  # (phase, input offset d) -> kernel index k
        for phase in (0, 1):
            for k in range(K):
                if (k - phase - p) % 2 == 0:
                    taps[(phase, (phase + p - k) // 2)] = k
        ds = [d for _, d in taps]
        self.dmin, self.dmax = min(ds), max(ds)
        width = self.dmax - self.dmin + 1
        weight = torch.zeros(2 * c_out, c_in, width, 1, dtype=w.dtype)
        for (phase, d), k in taps.items():
            weight[phase * c_out:(phase + 1) * c_out, :, d - self.dmin, 0] = w[:, :, k, 0].t()
        self.symmetric = -self.dmin == self.dmax
        self.conv = nn.Conv2d(c_in, 2 * c_out, (width, 1),
                              padding=(self.dmax, 0) if self.symmetric else 0,
                              bias=ct.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            if ct.bias is not None:
                self.conv.bias.copy_(torch.cat([ct.bias.detach(), ct.bias.detach()]))
        self.c_out = c_out

    @staticmethod
    def supports(ct: nn.Module) -> bool:
        if not isinstance(ct, nn.ConvTranspose2d):
            return False
        K, kt = ct.kernel_size
        return (ct.stride == (2, 1) and kt == 1 and ct.padding[1] == 0 and ct.groups == 1
                and ct.dilation == (1, 1) and ct.output_padding == (0, 0)
                and K - 2 * ct.padding[0] == 2 and K >= 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            x = F.pad(x, (0, 0, -self.dmin, self.dmax))
        z = self.conv(x)  # [B, 2*C_out, H, W]
        B, _, H, W = z.shape
        z = z.reshape(B, 2, self.c_out, H, W).permute(0, 2, 3, 1, 4)  # [B, C_out, H, 2, W]
        return z.reshape(B, self.c_out, 2 * H, W)


class StepCausalConv(CausalConv2d):
    """A ``CausalConv2d`` with time kernel 2 whose step hands x itself on as the new state
    (a subclass, so the model's height bookkeeping still sees a strided causal conv)."""

    def __init__(self, cc: CausalConv2d, split: bool = False) -> None:
        nn.Module.__init__(self)
        self.conv = cc.conv
        self.kt, self.dilation, self.history = cc.kt, cc.dilation, cc.history
        self.split = split
        if split:
            c = cc.conv
            kf = c.kernel_size[0]
            self.conv_state = nn.Conv2d(c.in_channels, c.out_channels, (kf, 1), stride=c.stride,
                                        padding=c.padding, bias=False)
            self.conv_x = nn.Conv2d(c.in_channels, c.out_channels, (kf, 1), stride=c.stride,
                                    padding=c.padding, bias=c.bias is not None)
            with torch.no_grad():
                self.conv_state.weight.copy_(c.weight[..., 0:1])
                self.conv_x.weight.copy_(c.weight[..., 1:2])
                if c.bias is not None:
                    self.conv_x.bias.copy_(c.bias)

    @staticmethod
    def supports(m: nn.Module) -> bool:
        return type(m) is CausalConv2d and m.kt == 2 and getattr(m, "dilation", 1) == 1

    def state_shape(self, height: int):
        return (1, self.conv.in_channels, height, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.kt - 1, 0)))

    def step(self, x: torch.Tensor, states: Iterator[torch.Tensor], out: list[torch.Tensor]) -> torch.Tensor:
        s = next(states)
        out.append(x)
        if self.split:
            return self.conv_x(x) + self.conv_state(s)
        return self.conv(torch.cat([s, x], dim=3))


class StackedCausalConv(CausalConv2d):
    """A ``CausalConv2d`` (any time kernel kt >= 2, any dilation d) stepped with its state
    stacked along the *channel* axis: state ``[B, h * C_in, H, 1]`` holds the last
    ``h = (kt - 1) d`` input columns, oldest first, as channel blocks.

    One step concatenates the kt - 1 tapped blocks and x along channels (whole contiguous
    blocks) and runs a Conv with kernel (kf, 1) over ``kt * C_in`` channels whose weights are
    the original time taps side by side; the new state drops the oldest block and appends x.
    The stock step concatenates and slices along the last (time) axis, which onnxruntime
    copies a few floats at a time (Concat/Slice over [.., 64, 20, 4] cost about as much as the
    convolution). Same multiply-accumulates, same numbers; ``forward`` is the original."""

    def __init__(self, cc: CausalConv2d) -> None:
        nn.Module.__init__(self)
        self.conv = cc.conv  # kept for forward() and the height bookkeeping (stride, padding)
        self.kt, self.dilation, self.history = cc.kt, cc.dilation, cc.history
        c = cc.conv
        kf = c.kernel_size[0]
        self.c_in = c.in_channels
        self.conv_stacked = nn.Conv2d(self.kt * c.in_channels, c.out_channels, (kf, 1), stride=c.stride,
                                      padding=c.padding, bias=c.bias is not None)
        with torch.no_grad():
            # [C_out, C_in, kf, kt] -> [C_out, kt * C_in, kf, 1]: tap j's weights in block j
            w = c.weight.permute(0, 3, 1, 2).reshape(c.out_channels, self.kt * c.in_channels, kf, 1)
            self.conv_stacked.weight.copy_(w)
            if c.bias is not None:
                self.conv_stacked.bias.copy_(c.bias)

    @staticmethod
    def supports(m: nn.Module) -> bool:
        return type(m) is CausalConv2d and m.kt >= 2 and m.conv.kernel_size[1] == m.kt

    def state_shape(self, height: int) -> tuple[int, ...]:
        return (1, self.history * self.c_in, height, 1)

    def step(self, x: torch.Tensor, states: Iterator[torch.Tensor], out: list[torch.Tensor]) -> torch.Tensor:
        s = next(states)  # [B, h * C, H, 1], columns t-h .. t-1
        C, d = self.c_in, self.dilation
        taps = [s[:, j * d * C:(j * d + 1) * C] for j in range(self.kt - 1)]  # columns t-(kt-1-j)d
        out.append(torch.cat([s[:, C:], x], dim=1) if self.history > 1 else x)
        return self.conv_stacked(torch.cat([*taps, x], dim=1))


def apply_rewrites(model: nn.Module, subpixel: bool = True, causal: str | None = "stacked",
                   constant_codebook: bool = True) -> dict[str, int]:
    """Swap supported modules in place. ``causal``: None, "noslice", "split" or "stacked"
    (every causal conv; changes the state layout, so take the state shapes from the rewritten
    model). Returns how many modules of each kind were replaced."""
    counts = {"subpixel": 0, "causal": 0, "constant_codebook": 0}
    q = getattr(model, "quantizer", None)
    if constant_codebook and q is not None and hasattr(q, "codebook"):
        with torch.no_grad():
            cb = q.codebook().detach().clone()
        q.codebook = lambda: cb  # instance attribute shadows the method; traced as a constant
        counts["constant_codebook"] = 1
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if subpixel and SubPixelConvTranspose.supports(child):
                setattr(parent, name, SubPixelConvTranspose(child))
                counts["subpixel"] += 1
            elif causal == "stacked" and StackedCausalConv.supports(child):
                setattr(parent, name, StackedCausalConv(child))
                counts["causal"] += 1
            elif causal in ("noslice", "split") and StepCausalConv.supports(child):
                setattr(parent, name, StepCausalConv(child, split=(causal == "split")))
                counts["causal"] += 1
    return counts
