"""Offline listening-grade evaluation of a trained model (PyTorch), used by the ablation.

The model's log-magnitudes are put back with the input's own phase (as the engine does),
overlap-added with the framing's synthesis window (the sqrt-Hann pair, or codec v4's asymmetric
one), and compared with the input on audio. Codec v5's split framing is resynthesised as the
engine does it (:func:`resynthesise_split`): the input plus each path's change, ``X (G - 1)``
weighted by the crossover, G the decoded / input magnitude interpolated onto the path's bins.
Then:

* spectral convergence (dB) and log-spectral distance over an 80 dB range below the clip's
  loudest bin (dB), both on a Hann STFT with n_fft 2048, hop 512, and the level change
  (output RMS against input RMS, dB): the bench's own definitions (``measure_pair``).

``detail`` applies the engine's detail formula ``dec(b) + detail * (L_in - dec(c))``; here
no zone is blurred (b = c), so detail 1 is the identity and this evaluates detail 0.
"""

from __future__ import annotations

import numpy as np
import torch

from vqblur.common.spectral import audio_quality
from vqblur.common.windows import is_asymmetric, synthesis_window
from vqblur.training.features import log_magnitude, long_stft, split_magnitude, stft
from vqblur.training.model import VQVAE


def measure_pair(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """The bench's definitions (vqblur.common.spectral): SC, LSD over 80 dB, level change."""
    q = audio_quality(ref, est)
    return {"sc_db": q["sc_db"], "lsd_db": q["lsd_db"], "level_db": q["level_change_db"]}


def interp_matrix(f_out: np.ndarray, f_in: np.ndarray) -> np.ndarray:
    """Linear interpolation in frequency as a matrix [len(f_out), len(f_in)] (``f_in``
    increasing): ``M @ v`` = ``np.interp(f_out, f_in, v)`` for ``f_out`` inside ``f_in``'s range;
    rows for frequencies above the top (or below the bottom) of ``f_in`` are zero."""
    f_out = np.asarray(f_out, np.float64)
    f_in = np.asarray(f_in, np.float64)
    M = np.zeros((len(f_out), len(f_in)))
    inside = (f_out >= f_in[0]) & (f_out <= f_in[-1])
    j = np.clip(np.searchsorted(f_in, f_out, side="right") - 1, 0, len(f_in) - 2)
    frac = np.clip((f_out - f_in[j]) / (f_in[j + 1] - f_in[j]), 0.0, 1.0)
    r = np.arange(len(f_out))[inside]
    M[r, j[inside]] = 1.0 - frac[inside]
    M[r, j[inside] + 1] += frac[inside]
    return M


def _overlap_add(spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray, n: int) -> np.ndarray:
    """Complex frames [bins, T] -> audio [n] aligned with the analysis (frame k ends at sample
    (k + 1) hop - 1 of the clip, left-padded by n_fft - hop): ``window`` includes the gain."""
    frames = np.fft.irfft(spec.T, n=n_fft, axis=1)  # [T, n_fft] (in the spectrum's precision)
    frames *= window
    T = frames.shape[0]
    y = np.zeros((T - 1) * hop + n_fft)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(T)[:, None]
    np.add.at(y, idx, frames)
    return y[n_fft - hop: n_fft - hop + n]


def split_changes(cfg, audio: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """The split framing's resynthesis of a change (codec v5), as the engine does it
    (``vqblur.engine.split_stft.SplitStft``): ``audio [n]`` (n a multiple of hop) and the gain
    per model bin ``ratio [model_bins, T]`` (decoded over input magnitude, T = n / hop) ->
    ``audio + ISTFT_long(X_long (G_long - 1) c) + ISTFT_short(X_short (G_short - 1) (1 - c))``
    [n] (float64): G the gain interpolated linearly in frequency onto each path's rfft bins (the
    long path's up to where c ends, the short path's from where 1 - c starts to its last model
    bin; the Nyquist bin keeps gain 1), c the crossover weight (``SplitLayout.crossover_weight``);
    the long path's synthesis is the asymmetric window over each frame's last n_fft samples."""
    layout = cfg.split_layout()
    n = len(audio)
    x = torch.from_numpy(np.asarray(audio, np.float64))[None]  # the engine's STFTs are float64
    out = np.asarray(audio, np.float64).copy()
    f_model = layout.bin_hz()
    for n_fft, spec, window, long_path in (
            (cfg.long_n_fft, long_stft(x, cfg)[0].numpy(), synthesis_window(cfg.long_n_fft, cfg.hop, cfg.n_fft), True),
            (cfg.n_fft, stft(x, cfg)[0].numpy(), synthesis_window(cfg.n_fft, cfg.hop), False)):
        f = np.arange(n_fft // 2 + 1) * cfg.sample_rate / n_fft
        c = layout.crossover_weight(f)
        share = c if long_path else 1.0 - c
        used = (share > 0) & (f <= f_model[-1])
        g = interp_matrix(f[used], f_model) @ ratio  # [used bins, T]
        change = np.zeros(spec.shape, np.complex128)
        change[used] = spec[used] * (g - 1.0) * share[used, None]
        out += _overlap_add(change, n_fft, cfg.hop, window, n)
    return out


@torch.no_grad()
def resynthesise_split(model: VQVAE, audio: np.ndarray) -> np.ndarray:
    """:func:`resynthesise` for the split framing (codec v5): the input plus the two paths' changes
    (:func:`split_changes`), the gain the decoded magnitude (``exp(logmag) - eps``, the engine's
    clamps) over the input's, at most the engine's ``RATIO_MAX``."""
    from vqblur.common.windows import analysis_window
    from vqblur.engine.split_stft import RATIO_MAX

    cfg = model.cfg.audio
    F = cfg.frames_per_column
    n = len(audio)
    x = np.pad(np.asarray(audio, np.float32), (0, (-n) % (cfg.hop * F)))
    lm = log_magnitude(torch.from_numpy(x)[None], cfg)  # [1, model_bins, T]
    model.eval()
    dec = model.decode_all(model.encode_all(lm))[0].double().numpy()
    logmag_max = float(np.log(4.0 * analysis_window(cfg.long_n_fft, cfg.n_fft).sum()))
    mag = np.maximum(np.exp(np.clip(dec, np.log(cfg.log_eps), logmag_max)) - cfg.log_eps, 0.0)
    absx = np.maximum(split_magnitude(torch.from_numpy(x.astype(np.float64))[None], cfg)[0].numpy(), 1e-300)
    ratio = np.minimum(mag / absx, RATIO_MAX)
    return split_changes(cfg, x, ratio)[:n].astype(np.float32)


@torch.no_grad()
def resynthesise(model: VQVAE, audio: np.ndarray) -> np.ndarray:
    """audio [n] -> the codec's resynthesis [n] with the input's phase (zone 0, detail 0)."""
    cfg = model.cfg.audio
    if cfg.long_n_fft:
        return resynthesise_split(model, audio)
    F = cfg.frames_per_column
    x = torch.from_numpy(audio.astype(np.float32))[None]
    n = x.shape[1]
    pad = (-n) % (cfg.hop * F)
    x = torch.nn.functional.pad(x, (0, pad))
    spec = stft(x, cfg)[0]  # [n_bins, T] complex
    lm = log_magnitude(x, cfg)  # [1, model_bins, T]
    model.eval()
    dec = model.decode_all(model.encode_all(lm))[0]  # [model_bins, T]
    mag = spec.abs().clone()
    mag[: cfg.model_bins] = torch.clamp(torch.exp(dec) - cfg.log_eps, min=0.0)
    out_spec = torch.polar(mag, torch.angle(spec)).numpy()
    if is_asymmetric(cfg.n_fft, cfg.synthesis_len):  # codec v4: common/windows.py (gain included)
        y = _overlap_add(out_spec, cfg.n_fft, cfg.hop, synthesis_window(cfg.n_fft, cfg.hop, cfg.synthesis_len), n)
    else:
        win = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft))
        y = _overlap_add(out_spec, cfg.n_fft, cfg.hop, win, n) / ((cfg.n_fft / cfg.hop) / 2.0)  # the pair's OLA gain
    return y.astype(np.float32)


def evaluate_clips(model: VQVAE, clips: list[np.ndarray]) -> dict[str, float]:
    """Medians over clips of :func:`measure_pair` on the codec's resynthesis."""
    rows = [measure_pair(c, resynthesise(model, c)) for c in clips if len(c) >= 2048]
    return {k: float(np.median([r[k] for r in rows])) for k in ("sc_db", "lsd_db", "level_db")} | {"clips": len(rows)}
