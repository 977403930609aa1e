"""Log-magnitude STFT features, identical to what the engine computes with numpy.

Frame k of a clip covers samples [(k+1)R - N, (k+1)R - 1] of the clip left-padded with
N - R zeros (docs/ARCHITECTURE.md), no centre padding, windowed by the analysis window of
``common/windows.py``: a periodic sqrt-Hann (symmetric framing), or codec v4's long asymmetric
window (``synthesis_len < n_fft``).

Codec v5's split framing (``long_n_fft > 0``, ``vqblur.common.framing``): every frame is analysed
by both windows, ending at the same sample -- the long asymmetric one (``long_n_fft`` samples,
``analysis_window(long_n_fft, n_fft)``) and the short symmetric sqrt-Hann (``n_fft``); the model
bins are ``concat(ln(|X_long[long_bins]| + eps), ln(|X_short[short_bins]| + eps))``. Without
left padding (``pad_left=False``) a clip carries ``history_samples`` samples of history: the
longest window less one hop.
"""

from __future__ import annotations

import numpy as np
import torch

from vqblur.common.windows import analysis_window as _analysis_window
from vqblur.common.windows import is_asymmetric
from vqblur.training.config import AudioConfig


def sqrt_hann(n_fft: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=dtype).sqrt()


def analysis_window(cfg: AudioConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The analysis window [n_fft] as a tensor of ``dtype``: ``common.windows.analysis_window``.

    The symmetric framing keeps torch's own sqrt-Hann (the values the v1-v3 models were trained
    on: bit-identical features; numpy's float64 window rounded to float32 differs from it in the
    last bit at about half the samples)."""
    if not is_asymmetric(cfg.n_fft, cfg.synthesis_len):
        return sqrt_hann(cfg.n_fft, dtype)
    return torch.from_numpy(_analysis_window(cfg.n_fft, cfg.synthesis_len)).to(dtype)


def history_samples(cfg: AudioConfig) -> int:
    """Samples before a clip's first frame end that its first frame sees, less one: the longest
    window less one hop (what ``pad_left`` pads, and what a ``pad_left=False`` clip carries)."""
    return max(cfg.n_fft, cfg.long_n_fft) - cfg.hop


def stft(audio: torch.Tensor, cfg: AudioConfig, pad_left: bool = True) -> torch.Tensor:
    """Complex STFT. audio [B, n] -> [B, n_bins, T] (T = n // hop when pad_left).

    The split framing: the short (``n_fft``) window's STFT, its frames ending where the long
    window's do (``pad_left=False``: the clip's first ``long_n_fft - n_fft`` samples are skipped);
    :func:`long_stft` gives the long one's."""
    if cfg.long_n_fft and not pad_left:
        audio = audio[..., cfg.long_n_fft - cfg.n_fft:]
    return _framed_stft(audio, cfg.n_fft, cfg.hop, analysis_window(cfg, audio.dtype), pad_left)


def _framed_stft(audio: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, pad_left: bool) -> torch.Tensor:
    """torch.stft with the engine's framing: frame k ends at sample (k + 1) hop - 1 (``pad_left``:
    of the clip left-padded with n_fft - hop zeros), no centre padding: [B, n_fft/2+1, T]."""
    if pad_left:
        audio = torch.nn.functional.pad(audio, (n_fft - hop, 0))
    return torch.stft(audio, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=window.to(audio.device),
                      center=False, return_complex=True)


def long_window(cfg: AudioConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The split framing's long analysis window [long_n_fft] (asymmetric, synthesis over the
    last n_fft samples)."""
    return torch.from_numpy(_analysis_window(cfg.long_n_fft, cfg.n_fft)).to(dtype)


def long_stft(audio: torch.Tensor, cfg: AudioConfig, pad_left: bool = True) -> torch.Tensor:
    """The split framing's long-window STFT: audio [B, n] -> [B, long_n_fft/2+1, T], frames
    ending where :func:`stft`'s do."""
    return _framed_stft(audio, cfg.long_n_fft, cfg.hop, long_window(cfg, audio.dtype), pad_left)


def split_magnitude(audio: torch.Tensor, cfg: AudioConfig, pad_left: bool = True) -> torch.Tensor:
    """The split framing's model-bin magnitudes |X| [B, model_bins, T] (the long window's bins
    below the crossover, then the short window's), in ``audio``'s dtype."""
    layout = cfg.split_layout()
    # the long window in float64, as the engine computes it: in float32 its 1280-point sums
    # round enough (up to 1.7e-5) to flip codes at near ties (export parity)
    lo = long_stft(audio.to(torch.float64), cfg, pad_left)[:, : len(layout.long_bins)].abs().to(audio.dtype)
    hi = stft(audio, cfg, pad_left)[:, int(layout.short_bins[0]): int(layout.short_bins[-1]) + 1]
    return torch.cat([lo, hi.abs()], dim=1)


def log_magnitude(audio: torch.Tensor, cfg: AudioConfig, pad_left: bool = True) -> torch.Tensor:
    """audio [B, n] -> model log-magnitude [B, model_bins, T] = ln(|X| + eps) (the split
    framing: the long window's bins below the crossover, then the short window's)."""
    if cfg.long_n_fft:
        return torch.log(split_magnitude(audio, cfg, pad_left) + cfg.log_eps)
    spec = stft(audio, cfg, pad_left)[:, : cfg.model_bins]
    return torch.log(spec.abs() + cfg.log_eps)


class Normaliser(torch.nn.Module):
    """Per-bin standardisation of log-magnitudes; the statistics travel with the model."""

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(bins))
        self.register_buffer("std", torch.ones(bins))

    @torch.no_grad()
    def fit(self, logmag: torch.Tensor) -> None:
        """logmag [B, F, T]."""
        flat = logmag.transpose(0, 1).reshape(logmag.shape[1], -1)
        self.mean.copy_(flat.mean(dim=1))
        self.std.copy_(flat.std(dim=1).clamp_min(1e-3))

    def forward(self, logmag: torch.Tensor) -> torch.Tensor:
        return (logmag - self.mean[:, None]) / self.std[:, None]

    def inverse(self, norm: torch.Tensor) -> torch.Tensor:
        return norm * self.std[:, None] + self.mean[:, None]


def _numpy_split_log_magnitude(audio: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    layout = cfg.split_layout()
    a = audio.astype(np.float64)
    parts = []
    for n, win, bins in ((cfg.long_n_fft, _analysis_window(cfg.long_n_fft, cfg.n_fft), layout.long_bins),
                         (cfg.n_fft, _analysis_window(cfg.n_fft), layout.short_bins)):
        x = np.concatenate([np.zeros(n - cfg.hop), a])
        frames = (len(x) - n) // cfg.hop + 1
        idx = np.arange(n)[None, :] + cfg.hop * np.arange(frames)[:, None]
        parts.append(np.abs(np.fft.rfft(x[idx] * win, axis=1)[:, bins]))
    return np.log(np.concatenate(parts, axis=1) + cfg.log_eps).T.astype(np.float32)


def numpy_log_magnitude(audio: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Reference numpy version (the engine's maths): audio [n] -> [model_bins, T]."""
    if cfg.long_n_fft:
        return _numpy_split_log_magnitude(audio, cfg)
    x = np.concatenate([np.zeros(cfg.n_fft - cfg.hop, dtype=np.float64), audio.astype(np.float64)])
    n_frames = (len(x) - cfg.n_fft) // cfg.hop + 1
    idx = np.arange(cfg.n_fft)[None, :] + cfg.hop * np.arange(n_frames)[:, None]
    win = _analysis_window(cfg.n_fft, cfg.synthesis_len)  # float64 (the symmetric one as before)
    spec = np.fft.rfft(x[idx] * win, axis=1)[:, : cfg.model_bins]
    return np.log(np.abs(spec) + cfg.log_eps).T.astype(np.float32)
